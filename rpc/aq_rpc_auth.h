/* aq_rpc_auth: message authentication and payload encryption for the rpc wire (internal to rpc/).
 *
 * With a cluster secret, every datagram and pipe frame carries a 16-byte tag right after its
 * 64-byte header (header flag AQ_RPC_FLAG_MAC), and the header's last 8 bytes carry the sender's
 * packet counter instead of an xxh3 checksum (aq_rpc_wire.h). Counter and sender incarnation make
 * every header an endpoint sends unique, retransmits of the same bytes included.
 *
 * Authenticated only: the tag is Poly1305 over the header bytes as sent followed by the fragment
 * bytes, under a one-time key derived per packet: BLAKE2b-256 keyed with the cluster key over the
 * 64 header bytes. A unique header gives a unique one-time key.
 *
 * Encrypted (AQ_RPC_FLAG_ENC, CALL and REPLY fragments of a sender configured to encrypt): the
 * fragment is XChaCha20-Poly1305-IETF ciphertext under the encryption key, with the 64 header
 * bytes as associated data and the nonce src_inc (8, little-endian) || packet counter (8) ||
 * "aqrpcenc"; the AEAD tag sits in the MAC slot. A unique header gives a unique nonce. Receivers
 * check the tag before they decrypt or act; the streaming form (begin_open, update, check_open,
 * decrypt) computes exactly what libsodium's one-shot function does, so a pipe fragment read in
 * pieces is verified without holding it twice.
 *
 * Poly1305 and ChaCha20 run in libsodium for short messages and, from AQ_RPC_POLY_BIG bytes of
 * fragment, in OpenSSL's libcrypto: the same functions (RFC 8439: the same tag and keystream for
 * the same key and bytes), but libsodium 1.0.18 (Debian 12) has no vectorised Poly1305 and runs
 * both at a third of libcrypto's AVX-512 speed on this hardware, which made authentication cost a
 * third of 4 MiB throughput. Keys, key derivation (BLAKE2b, HChaCha20) and tag comparison stay in
 * libsodium; tests hold both paths to libsodium's one-shot results.
 *
 * Keys: the cluster key is BLAKE2b-256 of the secret, keyed by BLAKE2b of the cluster id, so one
 * secret file gives different keys to different clusters; the encryption key is BLAKE2b-256 of a
 * label keyed with the cluster key, so the MAC and the cipher never share a key. Tags are compared
 * in constant time.
 */
#ifndef AQ_RPC_AUTH_H
#define AQ_RPC_AUTH_H

#include <openssl/evp.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_RPC_TAG_LEN         16u
#define AQ_RPC_SECRET_MIN      32u /* bytes of secret at least */
#define AQ_RPC_FINGERPRINT_LEN 8u
/* Fragments this long or longer are authenticated with libcrypto's Poly1305 (see above). */
#define AQ_RPC_POLY_BIG 4096u

typedef struct aq_rpc_auth {
    bool on;
    uint8_t key[32];
    uint8_t enc_key[32];
    /* A public digest of the key: an AUTH notice carries it so a client can tell "my secret is
     * wrong" from a forged notice. It reveals nothing usable about the key. */
    uint8_t fingerprint[AQ_RPC_FINGERPRINT_LEN];
    EVP_MAC *poly;      /* libcrypto's Poly1305, or NULL (then libsodium's for every length) */
    EVP_CIPHER *chacha; /* libcrypto's ChaCha20, or NULL (likewise) */
} aq_rpc_auth;

/* A stream holds a libcrypto context while it runs; aq_rpc_auth_final, _check, _check_open and
 * _stream_wipe release it. Start from a zeroed stream; begin may be called again at any time. */
typedef struct aq_rpc_auth_stream {
    crypto_onetimeauth_state st;
    EVP_MAC_CTX *mac;
    bool aead;
    uint64_t len;       /* AEAD: ciphertext bytes seen */
    uint8_t subkey[32]; /* AEAD: the HChaCha20 subkey and ChaCha20 nonce, kept to decrypt */
    uint8_t npub[12];
    const EVP_CIPHER *chacha; /* AEAD: the auth's, for decrypt */
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

/* AEAD, streaming, for a fragment flagged AQ_RPC_FLAG_ENC: begin_open, then aq_rpc_auth_update
 * with the ciphertext as it arrives, then check_open; only when it returns true, decrypt the
 * fragment (all of it, from its first byte; in place is fine), then wipe. */
void aq_rpc_auth_begin_open(const aq_rpc_auth *a, aq_rpc_auth_stream *s, const uint8_t hdr[64]);
bool aq_rpc_auth_check_open(aq_rpc_auth_stream *s, const uint8_t tag[AQ_RPC_TAG_LEN]);
void aq_rpc_auth_decrypt(const aq_rpc_auth_stream *s, uint8_t *buf, size_t len);
void aq_rpc_auth_stream_wipe(aq_rpc_auth_stream *s);

/* AEAD, one-shot: encrypt m (len bytes) into c (c == m allowed) with hdr as associated data and
 * the nonce from hdr; the tag goes to tag. */
void aq_rpc_auth_seal(const aq_rpc_auth *a, const uint8_t hdr[64], const void *m, size_t len,
                      uint8_t *c, uint8_t tag[AQ_RPC_TAG_LEN]);
/* Verify and decrypt c into m (m == c allowed); false (m untouched) when the tag is wrong. */
bool aq_rpc_auth_open(const aq_rpc_auth *a, const uint8_t hdr[64], const uint8_t *c, size_t len,
                      const uint8_t tag[AQ_RPC_TAG_LEN], uint8_t *m);

/* One-shot: tag over hdr and frag. */
void aq_rpc_auth_tag(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                     uint8_t tag[AQ_RPC_TAG_LEN]);
bool aq_rpc_auth_verify(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                        const uint8_t tag[AQ_RPC_TAG_LEN]);

#endif
