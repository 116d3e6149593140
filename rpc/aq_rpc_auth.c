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
    crypto_onetimeauth_update(&s->st, hdr, 64);
}

void aq_rpc_auth_update(aq_rpc_auth_stream *s, const void *data, size_t len) {
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
