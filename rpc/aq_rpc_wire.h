/* aq_rpc_wire: the 64-byte header every datagram and pipe frame starts with (internal to rpc/).
 *
 * Layout (little-endian): magic u16 0x5141, version u8, kind u8, flags u16, method u16, cluster_id
 * u64, src_inc u64, dst_inc u64, task u64, msg_len u32, frag_off u32, frag_len u32, status i32,
 * then a u64 whose meaning depends on AQ_RPC_FLAG_MAC:
 *  - without it, the checksum: XXH3_64bits over the header (that field zero) and the fragment,
 *    or over the header alone with AQ_RPC_FLAG_E2E;
 *  - with it, the sender's packet counter: 1 for the first datagram or pipe fragment an
 *    incarnation sends, one more for each after, never reused by that incarnation (a retransmit of
 *    the same bytes gets a new number). No xxh3 is computed or checked then: the 16-byte tag that
 *    follows the header covers header and fragment (aq_rpc_auth.h), and the counter makes every
 *    header, hence its one-time key and nonce, unique.
 * Then frag_len payload bytes (ciphertext with AQ_RPC_FLAG_ENC). Decoding checks every field
 * before anything trusts it: magic, version, kind, flags (only known bits; ENC only with MAC and
 * only on CALL and REPLY; E2E only without MAC, only on CALL and REPLY and never in a datagram;
 * E2E_OK only on CALL), msg_len <= AQ_RPC_MAX_PAYLOAD, frag_off + frag_len <= msg_len without
 * overflow; the datagram decoder also checks the total length, that the datagram carries the whole
 * message and, without a MAC, the checksum. With a MAC the caller verifies the tag, in constant
 * time, before it trusts any field beyond these structural checks. Pipe frames check checksum or
 * tag once their bytes are in.
 */
#ifndef AQ_RPC_WIRE_H
#define AQ_RPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define AQ_RPC_WIRE_MAGIC   0x5141u
#define AQ_RPC_WIRE_VERSION 1u
#define AQ_RPC_HDR_LEN      64u
/* Flag bit 0: a 16-byte MAC follows the header (see aq_rpc_auth.h), then the fragment. */
#define AQ_RPC_FLAG_MAC 0x0001u
/* Flag bit 1 (only with bit 0, only on CALL and REPLY): the fragment is XChaCha20 ciphertext and
 * the MAC is the AEAD tag (see aq_rpc_auth.h). */
#define AQ_RPC_FLAG_ENC 0x0002u
/* Flag bit 2 (only without bit 0, only on CALL and REPLY pipe frames): the checksum covers the
 * header alone. The fragment's bytes lie in its message's end-to-end tail (aq_rpc_call_e2e), which
 * the receiving application checks against a digest of its own; the receiver's core takes them
 * only for a call whose handler said it does (aq_rpc_method_e2e) or a reply to a call that asked
 * (bit 3). Fragments never straddle the tail's start, so every byte before it is checksummed. */
#define AQ_RPC_FLAG_E2E 0x0004u
/* Flag bit 3 (only on CALL): the caller checks its reply's end-to-end tail itself
 * (aq_rpc_call_e2e), so the reply's tail may travel with bit 2. */
#define AQ_RPC_FLAG_E2E_OK 0x0008u
#define AQ_RPC_FLAGS_KNOWN 0x000fu
#define AQ_RPC_MAC_LEN     16u

enum aq_rpc_kind {
    AQ_RPC_K_CALL = 1,
    AQ_RPC_K_REPLY = 2,
    AQ_RPC_K_ACKACK = 3, /* payload: u64 task numbers, little-endian */
    AQ_RPC_K_PENDING = 4,
    AQ_RPC_K_BUSY = 5,  /* status: retry-after in ms */
    AQ_RPC_K_NACK = 6,  /* status: aq error code (AQ_ERESTARTED, AQ_ENOMETHOD, AQ_ETIMEDOUT) */
    AQ_RPC_K_HELLO = 7, /* pipe only; payload: u16 listen port of the sender */
    AQ_RPC_K_NOTIFY = 8,
    AQ_RPC_K_AUTH = 9, /* never MACed: "your packet failed authentication here"; payload: the
                          8-byte fingerprint of the sender's key (zeros: it has none) */
    AQ_RPC_K_MAX = 9,
};

typedef struct aq_rpc_hdr {
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint16_t method;
    uint64_t cluster_id;
    uint64_t src_inc;
    uint64_t dst_inc;
    uint64_t task;
    uint32_t msg_len;
    uint32_t frag_off;
    uint32_t frag_len;
    int32_t status;
    uint64_t checksum;
} aq_rpc_hdr;

/* Writes the 64 header bytes. Without AQ_RPC_FLAG_MAC, h->checksum is set to the xxh3 checksum
 * over them and the fragment `frag` (frag_len bytes; none with AQ_RPC_FLAG_E2E); with it,
 * h->checksum (the packet counter) is written as given and frag is not read. */
void aq_rpc_hdr_encode(aq_rpc_hdr *h, const void *frag, uint8_t out[AQ_RPC_HDR_LEN]);

/* Parses and checks the header fields (not the checksum). 0 or AQ_EPROTO. */
int aq_rpc_hdr_decode(const uint8_t in[AQ_RPC_HDR_LEN], aq_rpc_hdr *h);

/* The checksum of a header (its checksum bytes taken as zero) followed by frag. */
uint64_t aq_rpc_hdr_checksum(const uint8_t hdr[AQ_RPC_HDR_LEN], const void *frag, size_t frag_len);

/* A whole datagram: header checks, length == 64 (+ 16 with the MAC flag) + frag_len, frag_off == 0,
 * frag_len == msg_len, and the checksum when there is no MAC. On success *payload points into data
 * (after the MAC, which the caller must verify: it is at data + 64). 0 or AQ_EPROTO. */
int aq_rpc_dgram_decode(const uint8_t *data, size_t len, aq_rpc_hdr *h, const uint8_t **payload);

#endif
