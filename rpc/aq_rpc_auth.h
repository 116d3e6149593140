/* aq_rpc_auth: message authentication for the rpc wire (internal to rpc/).
 *
 * With a cluster secret, every datagram and pipe frame carries a 16-byte tag right after its
 * 64-byte header (header flag AQ_RPC_FLAG_MAC). The tag is Poly1305 over the header bytes as sent
 * (flags and checksum included) followed by the fragment bytes, under a one-time key derived per
 * message: BLAKE2b-256 keyed with the cluster key over the 64 header bytes. The header names the
 * sender's incarnation, the destination's, the task, kind, fragment offset and length, and the xxh3
 * checksum of the fragment, so two different messages never share a one-time key (short of an xxh3
 * collision between two messages that agree on every other header field). The cluster key is
 * BLAKE2b-256 of the secret, keyed by BLAKE2b of the cluster id, so one secret file gives different
 * keys to different clusters. Tags are compared in constant time.
 */
#ifndef AQ_RPC_AUTH_H
#define AQ_RPC_AUTH_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_RPC_TAG_LEN         16u
#define AQ_RPC_SECRET_MIN      32u /* bytes of secret at least */
#define AQ_RPC_FINGERPRINT_LEN 8u

typedef struct aq_rpc_auth {
    bool on;
    uint8_t key[32];
    /* A public digest of the key: an AUTH notice carries it so a client can tell "my secret is
     * wrong" from a forged notice. It reveals nothing usable about the key. */
    uint8_t fingerprint[AQ_RPC_FINGERPRINT_LEN];
} aq_rpc_auth;

typedef struct aq_rpc_auth_stream {
    crypto_onetimeauth_state st;
} aq_rpc_auth_stream;

/* secret == NULL: authentication off. 0, or AQ_EINVAL (secret shorter than AQ_RPC_SECRET_MIN),
 * AQ_EIO (libsodium failed to initialise). */
int aq_rpc_auth_init(aq_rpc_auth *a, const void *secret, size_t len, uint64_t cluster_id);
void aq_rpc_auth_wipe(aq_rpc_auth *a);

/* The tag of a header and its fragment given as iov pieces (after the header). */
void aq_rpc_auth_begin(const aq_rpc_auth *a, aq_rpc_auth_stream *s, const uint8_t hdr[64]);
void aq_rpc_auth_update(aq_rpc_auth_stream *s, const void *data, size_t len);
void aq_rpc_auth_final(aq_rpc_auth_stream *s, uint8_t tag[AQ_RPC_TAG_LEN]);
/* true when the stream's tag equals tag (constant time). */
bool aq_rpc_auth_check(aq_rpc_auth_stream *s, const uint8_t tag[AQ_RPC_TAG_LEN]);

/* One-shot: tag over hdr and frag. */
void aq_rpc_auth_tag(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                     uint8_t tag[AQ_RPC_TAG_LEN]);
bool aq_rpc_auth_verify(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                        const uint8_t tag[AQ_RPC_TAG_LEN]);

#endif
