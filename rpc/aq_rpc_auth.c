#include "aq_rpc_auth.h"

#include <limits.h>
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
    /* Without libcrypto's Poly1305 everything still works, through libsodium, only slower. */
    a->poly = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    a->chacha = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL);
    a->on = true;
    return 0;
}

void aq_rpc_auth_wipe(aq_rpc_auth *a) {
    EVP_MAC_free(a->poly);
    EVP_CIPHER_free(a->chacha);
    sodium_memzero(a, sizeof *a);
}

/* The fragment length, from the header bytes (offset 48, little-endian). */
static uint32_t hdr_frag_len(const uint8_t hdr[64]) {
    return (uint32_t)hdr[48] | (uint32_t)hdr[49] << 8 | (uint32_t)hdr[50] << 16 |
           (uint32_t)hdr[51] << 24;
}

/* Poly1305 under key for a message of about `expect` bytes: libcrypto's for long ones. */
static void poly_init(const aq_rpc_auth *a, aq_rpc_auth_stream *s, const uint8_t key[32],
                      size_t expect) {
    if (s->mac) {
        EVP_MAC_CTX_free(s->mac);
        s->mac = NULL;
    }
    if (expect >= AQ_RPC_POLY_BIG && a->poly && (s->mac = EVP_MAC_CTX_new(a->poly)) != NULL &&
        EVP_MAC_init(s->mac, key, 32, NULL) != 1) {
        EVP_MAC_CTX_free(s->mac);
        s->mac = NULL;
    }
    if (!s->mac)
        crypto_onetimeauth_poly1305_init(&s->st, key);
}

static void poly_update(aq_rpc_auth_stream *s, const void *p, size_t n) {
    if (n == 0)
        return;
    /* EVP_MAC_update of a live Poly1305 context only fails on a NULL context. */
    if (s->mac)
        (void)EVP_MAC_update(s->mac, p, n);
    else
        crypto_onetimeauth_poly1305_update(&s->st, p, n);
}

static void poly_final(aq_rpc_auth_stream *s, uint8_t tag[AQ_RPC_TAG_LEN]) {
    if (s->mac) {
        size_t tl = 0;
        if (EVP_MAC_final(s->mac, tag, &tl, AQ_RPC_TAG_LEN) != 1 || tl != AQ_RPC_TAG_LEN)
            randombytes_buf(tag, AQ_RPC_TAG_LEN); /* never a tag that could match */
        EVP_MAC_CTX_free(s->mac);
        s->mac = NULL;
    } else {
        crypto_onetimeauth_poly1305_final(&s->st, tag);
    }
}

/* out = in XOR the ChaCha20-IETF keystream from block ic (out == in allowed). */
static void chacha_xor(const EVP_CIPHER *cipher, uint8_t *out, const uint8_t *in, size_t len,
                       const uint8_t npub[12], uint32_t ic, const uint8_t key[32]) {
    if (len == 0)
        return;
    if (len >= AQ_RPC_POLY_BIG && cipher && len <= INT_MAX) {
        /* libcrypto's IV: the 32-bit block counter (little-endian), then the 96-bit nonce. */
        uint8_t iv[16] = {(uint8_t)ic, (uint8_t)(ic >> 8), (uint8_t)(ic >> 16),
                          (uint8_t)(ic >> 24)};
        memcpy(iv + 4, npub, 12);
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int ol = 0;
        bool ok = ctx && EVP_EncryptInit_ex2(ctx, cipher, key, iv, NULL) == 1 &&
                  EVP_EncryptUpdate(ctx, out, &ol, in, (int)len) == 1 && (size_t)ol == len;
        EVP_CIPHER_CTX_free(ctx);
        if (ok)
            return;
        /* libcrypto's ChaCha20 fails, if ever, at set-up (allocation), before writing a byte:
         * then libsodium does the work, in place or not. */
    }
    crypto_stream_chacha20_ietf_xor_ic(out, in, len, npub, ic, key);
}

void aq_rpc_auth_begin(const aq_rpc_auth *a, aq_rpc_auth_stream *s, const uint8_t hdr[64]) {
    uint8_t otk[crypto_onetimeauth_KEYBYTES];
    crypto_generichash(otk, sizeof otk, hdr, 64, a->key, sizeof a->key);
    poly_init(a, s, otk, hdr_frag_len(hdr));
    sodium_memzero(otk, sizeof otk);
    s->aead = false;
    s->len = 0;
    poly_update(s, hdr, 64);
}

void aq_rpc_auth_update(aq_rpc_auth_stream *s, const void *data, size_t len) {
    s->len += len;
    poly_update(s, data, len);
}

void aq_rpc_auth_final(aq_rpc_auth_stream *s, uint8_t tag[AQ_RPC_TAG_LEN]) {
    poly_final(s, tag);
}

bool aq_rpc_auth_check(aq_rpc_auth_stream *s, const uint8_t tag[AQ_RPC_TAG_LEN]) {
    uint8_t mine[AQ_RPC_TAG_LEN];
    poly_final(s, mine);
    return crypto_verify_16(mine, tag) == 0;
}

void aq_rpc_auth_tag(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                     uint8_t tag[AQ_RPC_TAG_LEN]) {
    aq_rpc_auth_stream s;
    memset(&s, 0, sizeof s);
    aq_rpc_auth_begin(a, &s, hdr);
    aq_rpc_auth_update(&s, frag, len);
    aq_rpc_auth_final(&s, tag);
}

bool aq_rpc_auth_verify(const aq_rpc_auth *a, const uint8_t hdr[64], const void *frag, size_t len,
                        const uint8_t tag[AQ_RPC_TAG_LEN]) {
    aq_rpc_auth_stream s;
    memset(&s, 0, sizeof s);
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

static void aead_tail(aq_rpc_auth_stream *s, uint8_t tag[AQ_RPC_TAG_LEN]);

/* libsodium's xchacha20poly1305_ietf encryption, built from its parts (see begin_open below) so
 * that long fragments run on libcrypto's ChaCha20 and Poly1305; the result is byte for byte
 * libsodium's (test_rpc_auth checks). */
void aq_rpc_auth_seal(const aq_rpc_auth *a, const uint8_t hdr[64], const void *m, size_t len,
                      uint8_t *c, uint8_t tag[AQ_RPC_TAG_LEN]) {
    aq_rpc_auth_stream s;
    memset(&s, 0, sizeof s);
    aq_rpc_auth_begin_open(a, &s, hdr);
    chacha_xor(a->chacha, c, m, len, s.npub, 1u, s.subkey);
    aq_rpc_auth_update(&s, c, len);
    aead_tail(&s, tag);
    aq_rpc_auth_stream_wipe(&s);
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
    s->chacha = a->chacha;
    memset(s->npub, 0, 4);
    memcpy(s->npub + 4, n + crypto_core_hchacha20_INPUTBYTES, 8);
    crypto_stream_chacha20_ietf(block0, sizeof block0, s->npub, s->subkey);
    poly_init(a, s, block0, hdr_frag_len(hdr));
    sodium_memzero(block0, sizeof block0);
    poly_update(s, hdr, 64); /* 64: no padding needed */
}

/* The AEAD tag once every ciphertext byte went through aq_rpc_auth_update. */
static void aead_tail(aq_rpc_auth_stream *s, uint8_t mine[AQ_RPC_TAG_LEN]) {
    static const uint8_t pad[16];
    uint8_t lens[16];
    poly_update(s, pad, (16 - (s->len & 15)) & 15);
    for (int i = 0; i < 8; i++) {
        lens[i] = (uint8_t)((uint64_t)64 >> (8 * i));
        lens[8 + i] = (uint8_t)(s->len >> (8 * i));
    }
    poly_update(s, lens, sizeof lens);
    poly_final(s, mine);
}

bool aq_rpc_auth_check_open(aq_rpc_auth_stream *s, const uint8_t tag[AQ_RPC_TAG_LEN]) {
    uint8_t mine[AQ_RPC_TAG_LEN];
    aead_tail(s, mine);
    return crypto_verify_16(mine, tag) == 0;
}

void aq_rpc_auth_decrypt(const aq_rpc_auth_stream *s, uint8_t *buf, size_t len) {
    chacha_xor(s->chacha, buf, buf, len, s->npub, 1u, s->subkey);
}

void aq_rpc_auth_stream_wipe(aq_rpc_auth_stream *s) {
    EVP_MAC_CTX_free(s->mac);
    sodium_memzero(s, sizeof *s);
}
