#include "aq_rpc_wire.h"

#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include "aq_xxh.h"

#include "aq_error.h"
#include "aq_rpc.h"

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint64_t aq_rpc_hdr_checksum(const uint8_t hdr[AQ_RPC_HDR_LEN], const void *frag, size_t frag_len) {
    uint8_t tmp[AQ_RPC_HDR_LEN];
    memcpy(tmp, hdr, AQ_RPC_HDR_LEN);
    memset(tmp + 56, 0, 8);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, tmp, sizeof tmp);
    if (frag_len)
        XXH3_64bits_update(&st, frag, frag_len);
    return XXH3_64bits_digest(&st);
}

void aq_rpc_hdr_encode(aq_rpc_hdr *h, const void *frag, uint8_t out[AQ_RPC_HDR_LEN]) {
    put16(out, AQ_RPC_WIRE_MAGIC);
    out[2] = h->version ? h->version : AQ_RPC_WIRE_VERSION;
    out[3] = h->kind;
    put16(out + 4, h->flags);
    put16(out + 6, h->method);
    put64(out + 8, h->cluster_id);
    put64(out + 16, h->src_inc);
    put64(out + 24, h->dst_inc);
    put64(out + 32, h->task);
    put32(out + 40, h->msg_len);
    put32(out + 44, h->frag_off);
    put32(out + 48, h->frag_len);
    put32(out + 52, (uint32_t)h->status);
    if (!(h->flags & AQ_RPC_FLAG_MAC)) {
        put64(out + 56, 0);
        h->checksum =
            aq_rpc_hdr_checksum(out, frag, (h->flags & AQ_RPC_FLAG_E2E) ? 0 : h->frag_len);
    }
    put64(out + 56, h->checksum);
}

int aq_rpc_hdr_decode(const uint8_t in[AQ_RPC_HDR_LEN], aq_rpc_hdr *h) {
    if (get16(in) != AQ_RPC_WIRE_MAGIC || in[2] != AQ_RPC_WIRE_VERSION)
        return AQ_EPROTO;
    uint8_t kind = in[3];
    uint16_t flags = get16(in + 4);
    if (kind < AQ_RPC_K_CALL || kind > AQ_RPC_K_MAX || (flags & ~AQ_RPC_FLAGS_KNOWN))
        return AQ_EPROTO;
    if ((flags & AQ_RPC_FLAG_ENC) &&
        (!(flags & AQ_RPC_FLAG_MAC) || (kind != AQ_RPC_K_CALL && kind != AQ_RPC_K_REPLY)))
        return AQ_EPROTO;
    if ((flags & AQ_RPC_FLAG_E2E) &&
        ((flags & AQ_RPC_FLAG_MAC) || (kind != AQ_RPC_K_CALL && kind != AQ_RPC_K_REPLY)))
        return AQ_EPROTO;
    if ((flags & AQ_RPC_FLAG_E2E_OK) && kind != AQ_RPC_K_CALL)
        return AQ_EPROTO;
    uint32_t msg_len = get32(in + 40), off = get32(in + 44), flen = get32(in + 48);
    if (msg_len > AQ_RPC_MAX_PAYLOAD || off > msg_len || flen > msg_len - off)
        return AQ_EPROTO;
    h->version = in[2];
    h->kind = kind;
    h->flags = flags;
    h->method = get16(in + 6);
    h->cluster_id = get64(in + 8);
    h->src_inc = get64(in + 16);
    h->dst_inc = get64(in + 24);
    h->task = get64(in + 32);
    h->msg_len = msg_len;
    h->frag_off = off;
    h->frag_len = flen;
    h->status = (int32_t)get32(in + 52);
    h->checksum = get64(in + 56);
    return 0;
}

int aq_rpc_dgram_decode(const uint8_t *data, size_t len, aq_rpc_hdr *h, const uint8_t **payload) {
    if (!data || len < AQ_RPC_HDR_LEN || len > AQ_RPC_DGRAM_MAX)
        return AQ_EPROTO;
    if (aq_rpc_hdr_decode(data, h) != 0)
        return AQ_EPROTO;
    size_t mac = (h->flags & AQ_RPC_FLAG_MAC) ? AQ_RPC_MAC_LEN : 0;
    /* A datagram's payload is always checksummed (or MACed) with its header. */
    if (h->flags & AQ_RPC_FLAG_E2E)
        return AQ_EPROTO;
    if (h->frag_off != 0 || h->frag_len != h->msg_len || len != AQ_RPC_HDR_LEN + mac + h->frag_len)
        return AQ_EPROTO;
    /* With a MAC the field is a counter and the tag (checked by the caller) protects the bytes. */
    if (!mac && aq_rpc_hdr_checksum(data, data + AQ_RPC_HDR_LEN, h->frag_len) != h->checksum)
        return AQ_EPROTO;
    *payload = data + AQ_RPC_HDR_LEN + mac;
    return 0;
}
