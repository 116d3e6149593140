#include "aq_rpc_auth.h"

#include <string.h>

#include "aq_error.h"

int aq_rpc_auth_init(aq_rpc_auth *a, const void *secret, size_t len, uint64_t cluster_id) {
    memset(a, 0, sizeof *a);
    if (!secret)
        return 0;
    if (len < AQ_RPC_SECRET_MIN)
        return AQ_EINVAL;
    if (sodium_init() < 0)
        return AQ_EIO;
    uint8_t ctx[32], id[8];
    for (int i = 0; i < 8; i++)
        id[i] = (uint8_t)(cluster_id >> (8 * i));
    static const char label[] = "aquifer rpc key v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof ctx);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
    crypto_generichash_update(&st, id, sizeof id);
    crypto_generichash_final(&st, ctx, sizeof ctx);
    crypto_generichash(a->key, sizeof a->key, secret, len, ctx, sizeof ctx);
    static const char fp_label[] = "aquifer rpc key fingerprint v1";
    crypto_generichash(a->fingerprint, sizeof a->fingerprint, (const uint8_t *)fp_label,
                       sizeof fp_label - 1, a->key, sizeof a->key);
    static const char enc_label[] = "aquifer rpc payload encryption key v1";
    crypto_generichash(a->enc_key, sizeof a->enc_key, (const uint8_t *)enc_label,
                       sizeof enc_label - 1, a->key, sizeof a->key);
    a->on = true;
    return 0;
}

void aq_rpc_auth_wipe(aq_rpc_auth *a) {
    sodium_memzero(a, sizeof *a);
}

void aq_rpc_auth_begin(const aq_rpc_auth *a, aq_rpc_auth_stream *s, const uint8_t hdr[64]) {
    uint8_t otk[crypto_onetimeauth_KEYBYTES];
    crypto_generichash(otk, sizeof otk, hdr, 64, a->key, sizeof a->key);
    crypto_onetimeauth_init(&s->st, otk);
    sodium_memzero(otk, sizeof otk);
    s->aead = false;
    s->len = 0;
    crypto_onetimeauth_update(&s->st, hdr, 64);
}

void aq_rpc_auth_update(aq_rpc_auth_stream *s, const void *data, size_t len) {
    s->len += len;
    if (len)
        crypto_onetimeauth_update(&s->st, data, len);
}

void aq_rpc_auth_final(aq_rpc_auth_stream *s, uint8_t tag[AQ_RPC_TAG_LEN]) {
    crypto_onetimeauth_final(&s->st, tag);
}

bool aq_rpc_auth_check(aq_rpc_auth_stream *s, const uint8_t tag[AQ_RPC_TAG_LEN]) {
    uint8_t mine[AQ_RPC_TAG_LEN];
    crypto_onetimeauth_final(&s->st, mine);
    return crypto_verify_16(mine, tag) == 0;
}

void aq_rpc_auth_tag(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                     uint8_t tag[AQ_RPC_TAG_LEN]) {
    aq_rpc_auth_stream s;
    aq_rpc_auth_begin(a, &s, hdr);
    aq_rpc_auth_update(&s, frag, len);
    aq_rpc_auth_final(&s, tag);
}

bool aq_rpc_auth_verify(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                        const uint8_t tag[AQ_RPC_TAG_LEN]) {
    aq_rpc_auth_stream s;
    aq_rpc_auth_begin(a, &s, hdr);
    aq_rpc_auth_update(&s, frag, len);
    return aq_rpc_auth_check(&s, tag);
}

/* The nonce is read from the header as sent, so sender and receiver cannot disagree about it. */
static void nonce_of(const uint8_t hdr[64],
                     uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES]) {
    static const char label[8] = {'a', 'q', 'r', 'p', 'c', 'e', 'n', 'c'};
    memcpy(n, hdr + 16, 8);     /* src_inc */
    memcpy(n + 8, hdr + 56, 8); /* packet counter */
    memcpy(n + 16, label, 8);
}

void aq_rpc_auth_seal(const aq_rpc_auth *a, const uint8_t hdr[64], const void *m, size_t len,
                      uint8_t *c, uint8_t tag[AQ_RPC_TAG_LEN]) {
    uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    unsigned long long tlen;
    nonce_of(hdr, n);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(c, tag, &tlen, m, len, hdr, 64, NULL, n,
                                                        a->enc_key);
}

bool aq_rpc_auth_open(const aq_rpc_auth *a, const uint8_t hdr[64], const uint8_t *c, size_t len,
                      const uint8_t tag[AQ_RPC_TAG_LEN], uint8_t *m) {
    uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    nonce_of(hdr, n);
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(m, NULL, c, len, tag, hdr, 64, n,
                                                               a->enc_key) == 0;
}

/* What libsodium's xchacha20poly1305_ietf does, split so the ciphertext can come in pieces: an
 * HChaCha20 subkey from the first 16 nonce bytes, ChaCha20-IETF with nonce 0^4 || the last 8;
 * keystream block 0 keys Poly1305 over ad || pad || c || pad || len(ad) || len(c); the message is
 * the keystream from block 1 on. */
void aq_rpc_auth_begin_open(const aq_rpc_auth *a, aq_rpc_auth_stream *s, const uint8_t hdr[64]) {
    uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    uint8_t block0[64];
    nonce_of(hdr, n);
    s->aead = true;
    s->len = 0;
    crypto_core_hchacha20(s->subkey, n, a->enc_key, NULL);
    memset(s->npub, 0, 4);
    memcpy(s->npub + 4, n + crypto_core_hchacha20_INPUTBYTES, 8);
    crypto_stream_chacha20_ietf(block0, sizeof block0, s->npub, s->subkey);
    crypto_onetimeauth_poly1305_init(&s->st, block0);
    sodium_memzero(block0, sizeof block0);
    crypto_onetimeauth_poly1305_update(&s->st, hdr, 64); /* 64: no padding needed */
}

bool aq_rpc_auth_check_open(aq_rpc_auth_stream *s, const uint8_t tag[AQ_RPC_TAG_LEN]) {
    static const uint8_t pad[16];
    uint8_t lens[16], mine[AQ_RPC_TAG_LEN];
    crypto_onetimeauth_poly1305_update(&s->st, pad, (16 - (s->len & 15)) & 15);
    for (int i = 0; i < 8; i++) {
        lens[i] = (uint8_t)((uint64_t)64 >> (8 * i));
        lens[8 + i] = (uint8_t)(s->len >> (8 * i));
    }
    crypto_onetimeauth_poly1305_update(&s->st, lens, sizeof lens);
    crypto_onetimeauth_poly1305_final(&s->st, mine);
    return crypto_verify_16(mine, tag) == 0;
}

void aq_rpc_auth_decrypt(const aq_rpc_auth_stream *s, uint8_t *buf, size_t len) {
    if (len)
        crypto_stream_chacha20_ietf_xor_ic(buf, buf, len, s->npub, 1u, s->subkey);
}

void aq_rpc_auth_stream_wipe(aq_rpc_auth_stream *s) {
    sodium_memzero(s, sizeof *s);
}
