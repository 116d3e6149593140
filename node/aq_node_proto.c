#include "aq_node_proto.h"

#include <ctype.h>
#include <string.h>

#include "aq_error.h"
#include "aq_node_config.h"
#include "aq_order.h"

const char *aq_node_method_name(uint16_t m) {
    switch (m) {
    case AQ_M_PUT:
        return "PUT";
    case AQ_M_GET:
        return "GET";
    case AQ_M_RM:
        return "RM";
    case AQ_M_STAT:
        return "STAT";
    case AQ_M_LIST:
        return "LIST";
    case AQ_M_STATUS:
        return "STATUS";
    case AQ_M_HEARTBEAT:
        return "HEARTBEAT";
    case AQ_M_OFFER:
        return "OFFER";
    case AQ_M_FRAME_PARSE:
        return "FRAME_PARSE";
    case AQ_M_FRAME_FINISH:
        return "FRAME_FINISH";
    case AQ_M_MSTAT:
        return "MSTAT";
    case AQ_M_MGET:
        return "MGET";
    case AQ_M_MPUT:
        return "MPUT";
    case AQ_M_FRAME_SUMMARY:
        return "FRAME_SUMMARY";
    default:
        return "UNKNOWN";
    }
}

const char *aq_node_member_state_name(int s) {
    switch (s) {
    case AQ_MEMBER_SELF:
        return "self";
    case AQ_MEMBER_UP:
        return "up";
    case AQ_MEMBER_SUSPECT:
        return "suspect";
    case AQ_MEMBER_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

bool aq_node_user_key_ok(const void *key, size_t len) {
    const uint8_t *k = key;
    if (len == 0 || len > AQ_NODE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (k[i] < 0x20 || k[i] == 0x7f)
            return false;
    /* UTF-8 validity is the store's check (aq_chunk rejects invalid keys with AQ_EKEY). */
    return true;
}

static void wr_digest(aq_wr *w, aq_node_digest d) {
    aq_wr_u64(w, d.hi);
    aq_wr_u64(w, d.lo);
}

static aq_node_digest rd_digest(aq_rd *r) {
    aq_node_digest d;
    d.hi = aq_rd_u64(r);
    d.lo = aq_rd_u64(r);
    return d;
}

static const uint8_t *rd_key(aq_rd *r, size_t *klen) {
    const uint8_t *k = aq_rd_str8(r, klen);
    if (k && *klen == 0)
        r->ok = false;
    return k;
}

void aq_node_put_req_head_vd(aq_wr *w, uint8_t flags, uint8_t kind, const void *key, size_t klen,
                             aq_node_digest d, uint64_t version, uint64_t deadline) {
    aq_wr_u8(w, flags);
    aq_wr_u8(w, kind);
    aq_wr_str8(w, key, klen);
    wr_digest(w, d);
    aq_wr_u64(w, version);
    aq_wr_u64(w, deadline);
}

void aq_node_put_req_head_v(aq_wr *w, uint8_t flags, uint8_t kind, const void *key, size_t klen,
                            aq_node_digest d, uint64_t version) {
    aq_node_put_req_head_vd(w, flags, kind, key, klen, d, version, 0);
}

void aq_node_put_req_head(aq_wr *w, uint8_t flags, uint8_t kind, const void *key, size_t klen,
                          aq_node_digest d) {
    aq_node_put_req_head_vd(w, flags, kind, key, klen, d, 0, 0);
}

void aq_node_u64_at(uint8_t *msg, size_t off, uint64_t v) {
    for (int i = 0; i < 8; i++)
        msg[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

void aq_node_put_req_set_version(uint8_t *msg, const aq_node_put_req *r, uint64_t version) {
    aq_node_u64_at(msg, r->version_off, version);
}

size_t aq_node_put_req_deadline_off(size_t klen) {
    return 1 + 1 + 1 + klen + 16 + 8; /* flags, kind, key length, key, digest, version */
}

int aq_node_put_req_decode(const uint8_t *p, size_t n, aq_node_put_req *out) {
    aq_rd r = aq_rd_init(p, n);
    out->flags = aq_rd_u8(&r);
    out->kind = aq_rd_u8(&r);
    out->key = rd_key(&r, &out->klen);
    out->digest = rd_digest(&r);
    out->version_off = n - r.n;
    out->version = aq_rd_u64(&r);
    out->deadline = aq_rd_u64(&r);
    if (!r.ok || out->kind > AQ_KIND_TOMBSTONE || out->flags & ~AQ_PUT_REPLICA)
        return AQ_EPROTO;
    out->value = r.p;
    out->vlen = r.n;
    return 0;
}

void aq_node_put_rep_encode(aq_wr *w, const aq_node_put_rep *rep) {
    aq_wr_u8(w, rep->copies);
    aq_wr_u8(w, rep->wanted);
    aq_wr_u8(w, rep->flags);
    aq_wr_u64(w, rep->version);
    aq_wr_u64(w, rep->clock);
    aq_wr_u8(w, rep->nholders);
    for (uint8_t i = 0; i < rep->nholders; i++)
        aq_wr_u16(w, rep->holders[i]);
}

int aq_node_put_rep_decode(const uint8_t *p, size_t n, aq_node_put_rep *out) {
    aq_rd r = aq_rd_init(p, n);
    memset(out, 0, sizeof *out);
    out->copies = aq_rd_u8(&r);
    out->wanted = aq_rd_u8(&r);
    out->flags = aq_rd_u8(&r);
    out->version = aq_rd_u64(&r);
    out->clock = aq_rd_u64(&r);
    out->nholders = aq_rd_u8(&r); /* a u8: never more than AQ_PUT_REP_HOLDERS_MAX */
    for (uint8_t i = 0; i < out->nholders; i++)
        out->holders[i] = aq_rd_u16(&r);
    return aq_rd_done(&r) && out->nholders == out->copies && out->copies <= out->wanted ? 0
                                                                                        : AQ_EPROTO;
}

void aq_node_refusal_encode(aq_wr *w, const char *name) {
    aq_wr_str8(w, name, strlen(name));
}

int aq_node_refusal_decode(const uint8_t *p, size_t n, char *name) {
    aq_rd r = aq_rd_init(p, n);
    size_t len;
    const uint8_t *s = aq_rd_str8(&r, &len);
    name[0] = 0;
    if (!aq_rd_done(&r) || !s || len == 0 || len > AQ_NODE_NAME_MAX)
        return AQ_EPROTO;
    for (size_t i = 0; i < len; i++) /* names are [A-Za-z0-9_.-]: print nothing else */
        if (!(isalnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return AQ_EPROTO;
    memcpy(name, s, len);
    name[len] = 0;
    return 0;
}

void aq_node_key_req_encode(aq_wr *w, uint8_t flags, const void *key, size_t klen) {
    aq_wr_u8(w, flags);
    aq_wr_str8(w, key, klen);
}

int aq_node_key_req_decode(const uint8_t *p, size_t n, uint8_t *flags, const uint8_t **key,
                           size_t *klen) {
    aq_rd r = aq_rd_init(p, n);
    *flags = aq_rd_u8(&r);
    *key = rd_key(&r, klen);
    return aq_rd_done(&r) && !(*flags & ~(AQ_PUT_REPLICA | AQ_READ_TOMBSTONES)) ? 0 : AQ_EPROTO;
}

void aq_node_rm_req_encode(aq_wr *w, uint8_t flags, const void *key, size_t klen, uint64_t version,
                           uint64_t deadline) {
    aq_node_key_req_encode(w, flags, key, klen);
    aq_wr_u64(w, version);
    aq_wr_u64(w, deadline);
}

size_t aq_node_rm_req_deadline_off(size_t klen) {
    return 1 + 1 + klen + 8; /* flags, key length, key, version */
}

int aq_node_rm_req_decode(const uint8_t *p, size_t n, uint8_t *flags, const uint8_t **key,
                          size_t *klen, uint64_t *version, uint64_t *deadline) {
    aq_rd r = aq_rd_init(p, n);
    *flags = aq_rd_u8(&r);
    *key = rd_key(&r, klen);
    *version = r.n >= 8 ? aq_rd_u64(&r) : 0;
    *deadline = r.n == 8 ? aq_rd_u64(&r) : 0;
    /* A removal only-if-held is a replica's job with a version the coordinator assigned. */
    bool if_held_ok = !(*flags & AQ_RM_IF_HELD) || ((*flags & AQ_PUT_REPLICA) && *version);
    return aq_rd_done(&r) && !(*flags & ~(AQ_PUT_REPLICA | AQ_RM_IF_HELD)) && if_held_ok
               ? 0
               : AQ_EPROTO;
}

void aq_node_get_rep_head(aq_wr *w, uint8_t kind, aq_node_digest d, uint64_t version) {
    aq_wr_u8(w, kind);
    wr_digest(w, d);
    aq_wr_u64(w, version);
}

int aq_node_get_rep_decode_v(const uint8_t *p, size_t n, uint8_t *kind, aq_node_digest *d,
                             uint64_t *version, const uint8_t **v, size_t *vlen) {
    aq_rd r = aq_rd_init(p, n);
    *kind = aq_rd_u8(&r);
    *d = rd_digest(&r);
    *version = aq_rd_u64(&r);
    /* A removal marker holds no bytes. */
    if (!r.ok || *kind > AQ_KIND_TOMBSTONE || (*kind == AQ_KIND_TOMBSTONE && r.n))
        return AQ_EPROTO;
    *v = r.p;
    *vlen = r.n;
    return 0;
}

int aq_node_get_rep_decode(const uint8_t *p, size_t n, uint8_t *kind, aq_node_digest *d,
                           const uint8_t **v, size_t *vlen) {
    uint64_t version;
    return aq_node_get_rep_decode_v(p, n, kind, d, &version, v, vlen);
}

void aq_node_stat_rep_encode(aq_wr *w, uint8_t kind, uint64_t size, aq_node_digest d,
                             uint64_t version) {
    aq_wr_u8(w, kind);
    aq_wr_u64(w, size);
    wr_digest(w, d);
    aq_wr_u64(w, version);
}

int aq_node_stat_rep_decode_v(const uint8_t *p, size_t n, uint8_t *kind, uint64_t *size,
                              aq_node_digest *d, uint64_t *version) {
    aq_rd r = aq_rd_init(p, n);
    *kind = aq_rd_u8(&r);
    *size = aq_rd_u64(&r);
    *d = rd_digest(&r);
    *version = aq_rd_u64(&r);
    return aq_rd_done(&r) && *kind <= AQ_KIND_TOMBSTONE &&
                   (*kind != AQ_KIND_TOMBSTONE || *size == 0)
               ? 0
               : AQ_EPROTO;
}

int aq_node_stat_rep_decode(const uint8_t *p, size_t n, uint8_t *kind, uint64_t *size,
                            aq_node_digest *d) {
    uint64_t version;
    return aq_node_stat_rep_decode_v(p, n, kind, size, d, &version);
}

void aq_node_mstat_req_head(aq_wr *w, uint8_t flags, uint16_t count) {
    aq_wr_u8(w, flags);
    aq_wr_u16(w, count);
}

void aq_node_mstat_req_key(aq_wr *w, const void *key, size_t klen) {
    aq_wr_str8(w, key, klen);
}

int aq_node_mstat_req_begin(aq_rd *r, const uint8_t *p, size_t n, uint8_t *flags, uint32_t *count) {
    *r = aq_rd_init(p, n);
    *flags = aq_rd_u8(r);
    *count = aq_rd_u16(r);
    /* Each key takes at least 2 bytes (its length and one byte). */
    if (!r->ok || *flags & ~AQ_READ_TOMBSTONES || *count == 0 || *count > AQ_MSTAT_MAX ||
        *count > r->n / 2)
        return AQ_EPROTO;
    return 0;
}

int aq_node_mstat_req_next(aq_rd *r, const uint8_t **key, size_t *klen) {
    *key = rd_key(r, klen);
    return r->ok ? 0 : AQ_EPROTO;
}

void aq_node_mstat_rep_head(aq_wr *w, uint16_t count) {
    aq_wr_u16(w, count);
}

void aq_node_mstat_rep_entry(aq_wr *w, int err, uint8_t kind, uint64_t size, aq_node_digest d,
                             uint64_t version) {
    aq_wr_u32(w, (uint32_t)(int32_t)err);
    if (err == 0)
        aq_node_stat_rep_encode(w, kind, size, d, version);
}

int aq_node_mstat_rep_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count) {
    *r = aq_rd_init(p, n);
    *count = aq_rd_u16(r);
    /* Each answer takes at least its 4-byte code. */
    if (!r->ok || *count == 0 || *count > AQ_MSTAT_MAX || *count > r->n / 4)
        return AQ_EPROTO;
    return 0;
}

int aq_node_mstat_rep_next(aq_rd *r, int *err, uint8_t *kind, uint64_t *size, aq_node_digest *d,
                           uint64_t *version) {
    *err = (int)(int32_t)aq_rd_u32(r);
    if (!r->ok || *err > 0 || *err < -32767)
        return AQ_EPROTO;
    if (*err)
        return 0;
    *kind = aq_rd_u8(r);
    *size = aq_rd_u64(r);
    *d = rd_digest(r);
    *version = aq_rd_u64(r);
    return r->ok && *kind <= AQ_KIND_TOMBSTONE && (*kind != AQ_KIND_TOMBSTONE || *size == 0)
               ? 0
               : AQ_EPROTO;
}

#define GET_REP_HEAD (1 + 16 + 8) /* kind, digest, version */

size_t aq_node_mget_rep_entry_len(size_t vlen) {
    return 4 + 4 + GET_REP_HEAD + vlen;
}

void aq_node_mget_rep_entry(aq_wr *w, int err, uint8_t kind, aq_node_digest d, uint64_t version,
                            const void *v, size_t vlen) {
    aq_wr_u32(w, (uint32_t)(int32_t)err);
    if (err)
        return;
    aq_wr_u32(w, (uint32_t)(GET_REP_HEAD + vlen));
    aq_node_get_rep_head(w, kind, d, version);
    aq_wr_bytes(w, v, vlen);
}

int aq_node_mget_rep_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count) {
    return aq_node_mstat_rep_begin(r, p, n, count);
}

int aq_node_mget_rep_next(aq_rd *r, int *err, const uint8_t **rep, size_t *replen) {
    *err = (int)(int32_t)aq_rd_u32(r);
    if (!r->ok || *err > 0 || *err < -32767)
        return AQ_EPROTO;
    if (*err)
        return 0;
    uint32_t len = aq_rd_u32(r);
    *rep = r->ok && len >= GET_REP_HEAD ? aq_rd_bytes(r, len) : NULL;
    *replen = len;
    return *rep ? 0 : AQ_EPROTO;
}

void aq_node_mput_req_head(aq_wr *w, uint16_t count) {
    aq_wr_u16(w, count);
}

void aq_node_mput_req_item(aq_wr *w, const void *put_req, size_t len) {
    aq_wr_u32(w, (uint32_t)len);
    aq_wr_bytes(w, put_req, len);
}

int aq_node_mput_req_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count) {
    *r = aq_rd_init(p, n);
    *count = aq_rd_u16(r);
    /* Each item takes at least its 4-byte length. */
    if (!r->ok || *count == 0 || *count > AQ_MSTAT_MAX || *count > r->n / 4)
        return AQ_EPROTO;
    return 0;
}

int aq_node_mput_req_next(aq_rd *r, const uint8_t **item, size_t *len) {
    uint32_t l = aq_rd_u32(r);
    *item = r->ok ? aq_rd_bytes(r, l) : NULL;
    *len = l;
    return *item ? 0 : AQ_EPROTO;
}

void aq_node_mput_rep_entry(aq_wr *w, int status, const void *body, size_t len) {
    aq_wr_u32(w, (uint32_t)(int32_t)status);
    aq_wr_u32(w, (uint32_t)len);
    aq_wr_bytes(w, body, len);
}

size_t aq_node_mput_rep_entry_len(size_t len) {
    return 4 + 4 + len;
}

int aq_node_mput_rep_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count) {
    *r = aq_rd_init(p, n);
    *count = aq_rd_u16(r);
    /* Each answer takes at least its code and length. */
    if (!r->ok || *count == 0 || *count > AQ_MSTAT_MAX || *count > r->n / 8)
        return AQ_EPROTO;
    return 0;
}

int aq_node_mput_rep_next(aq_rd *r, int *status, const uint8_t **body, size_t *len) {
    *status = (int)(int32_t)aq_rd_u32(r);
    uint32_t l = aq_rd_u32(r);
    if (!r->ok || *status > 0 || *status < -32767)
        return AQ_EPROTO;
    *body = aq_rd_bytes(r, l);
    *len = l;
    return *body ? 0 : AQ_EPROTO;
}

void aq_node_list_req_encode(aq_wr *w, const aq_node_list_req *q) {
    aq_wr_u8(w, q->flags);
    aq_wr_str8(w, q->prefix, q->plen);
    aq_wr_str8(w, q->after, q->alen);
    aq_wr_u32(w, q->max);
}

int aq_node_list_req_decode(const uint8_t *p, size_t n, aq_node_list_req *out) {
    aq_rd r = aq_rd_init(p, n);
    out->flags = aq_rd_u8(&r);
    out->prefix = aq_rd_str8(&r, &out->plen);
    out->after = aq_rd_str8(&r, &out->alen);
    out->max = aq_rd_u32(&r);
    return aq_rd_done(&r) && !(out->flags & ~(AQ_LIST_INTERNAL | AQ_LIST_TOMBSTONES)) ? 0
                                                                                      : AQ_EPROTO;
}

void aq_node_list_rep_head(aq_wr *w, bool more, uint32_t count) {
    aq_wr_u8(w, more ? 1 : 0);
    aq_wr_u32(w, count);
}

void aq_node_list_rep_entry(aq_wr *w, const aq_node_list_entry *e) {
    aq_wr_u8(w, e->kind);
    aq_wr_str8(w, e->key, e->klen);
    aq_wr_u64(w, e->size);
    wr_digest(w, e->digest);
    aq_wr_u64(w, e->version);
}

int aq_node_list_rep_begin(aq_rd *r, const uint8_t *p, size_t n, bool *more, uint32_t *count) {
    *r = aq_rd_init(p, n);
    *more = aq_rd_u8(r) != 0;
    *count = aq_rd_u32(r);
    return r->ok ? 0 : AQ_EPROTO;
}

int aq_node_list_rep_next(aq_rd *r, aq_node_list_entry *e) {
    e->kind = aq_rd_u8(r);
    e->key = rd_key(r, &e->klen);
    e->size = aq_rd_u64(r);
    e->digest = rd_digest(r);
    e->version = aq_rd_u64(r);
    return r->ok && e->kind <= AQ_KIND_TOMBSTONE ? 0 : AQ_EPROTO;
}

void aq_node_offer_req_head(aq_wr *w, uint32_t count) {
    aq_wr_u32(w, count);
}

void aq_node_offer_req_entry(aq_wr *w, const void *key, size_t klen, aq_node_digest d,
                             uint64_t version, uint8_t kind, uint8_t flags) {
    aq_wr_str8(w, key, klen);
    wr_digest(w, d);
    aq_wr_u64(w, version);
    aq_wr_u8(w, kind);
    aq_wr_u8(w, flags);
}

int aq_node_offer_req_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count) {
    *r = aq_rd_init(p, n);
    *count = aq_rd_u32(r);
    /* Each entry takes at least 1 + 1 + 16 + 8 + 1 + 1 bytes: refuse a count the bytes cannot
     * hold. */
    if (!r->ok || *count > r->n / 28)
        return AQ_EPROTO;
    return 0;
}

int aq_node_offer_req_next(aq_rd *r, const uint8_t **key, size_t *klen, aq_node_digest *d,
                           uint64_t *version, uint8_t *kind, uint8_t *flags) {
    *key = rd_key(r, klen);
    *d = rd_digest(r);
    *version = aq_rd_u64(r);
    *kind = aq_rd_u8(r);
    *flags = aq_rd_u8(r);
    return r->ok && *kind <= AQ_KIND_TOMBSTONE &&
                   !(*flags & ~(AQ_OFFER_TARGET | AQ_OFFER_COLLECTIBLE))
               ? 0
               : AQ_EPROTO;
}

void aq_node_offer_rep_head(aq_wr *w, uint32_t count) {
    aq_wr_u32(w, count);
}

int aq_node_offer_rep_decode(const uint8_t *p, size_t n, uint32_t *count, const uint8_t **status) {
    aq_rd r = aq_rd_init(p, n);
    *count = aq_rd_u32(&r);
    if (!r.ok || r.n != *count)
        return AQ_EPROTO;
    for (size_t i = 0; i < r.n; i++)
        if (r.p[i] > AQ_OFFER_OLDER)
            return AQ_EPROTO;
    *status = r.p;
    return 0;
}

int aq_node_copy_cmp(uint64_t va, aq_node_digest da, uint8_t ka, uint64_t vb, aq_node_digest db,
                     uint8_t kb) {
    return aq_order_write_cmp(va, da.hi, da.lo, ka, vb, db.hi, db.lo, kb);
}

void aq_node_heartbeat_encode(aq_wr *w, const aq_node_heartbeat *h) {
    aq_wr_str8(w, h->name, h->nlen);
    aq_wr_u64(w, h->uptime_ms);
    aq_wr_u64(w, h->chunks);
    aq_wr_u64(w, h->bytes);
    aq_wr_u64(w, h->clock);
    aq_wr_u64(w, h->mono_us);
}

int aq_node_heartbeat_decode(const uint8_t *p, size_t n, aq_node_heartbeat *out) {
    aq_rd r = aq_rd_init(p, n);
    out->name = aq_rd_str8(&r, &out->nlen);
    out->uptime_ms = aq_rd_u64(&r);
    out->chunks = aq_rd_u64(&r);
    out->bytes = aq_rd_u64(&r);
    out->clock = aq_rd_u64(&r);
    out->mono_us = aq_rd_u64(&r);
    return aq_rd_done(&r) ? 0 : AQ_EPROTO;
}

static void wr_cstr(aq_wr *w, const char *s) {
    aq_wr_str8(w, s, strnlen(s, 63));
}

static void rd_cstr(aq_rd *r, char *dst, size_t cap) {
    size_t n;
    const uint8_t *s = aq_rd_str8(r, &n);
    if (!s || n >= cap) {
        r->ok = false;
        dst[0] = 0;
        return;
    }
    memcpy(dst, s, n);
    dst[n] = 0;
}

void aq_node_status_rep_node(aq_wr *w, const aq_node_status_node *s) {
    wr_cstr(w, s->name);
    wr_cstr(w, s->address);
    aq_wr_u64(w, s->incarnation);
    aq_wr_u64(w, s->uptime_ms);
    aq_wr_u64(w, s->chunks);
    aq_wr_u64(w, s->bytes);
    aq_wr_u64(w, s->allocated);
    aq_wr_u64(w, s->memory_max);
    /* One byte of flags: bit 0 authenticated, bit 1 encrypted (older readers see bit 0 only). */
    aq_wr_u8(w, (uint8_t)((s->authenticated ? 1 : 0) | (s->encrypted ? 2 : 0)));
    aq_wr_u64(w, s->dropped_malformed);
    aq_wr_u64(w, s->dropped_foreign);
    aq_wr_u64(w, s->dropped_auth);
    aq_wr_u64(w, s->handled_total);
    aq_wr_u64(w, s->handled_client);
    aq_wr_u64(w, s->conns_inbound);
    aq_wr_u64(w, s->conns_refused);
    aq_wr_u64(w, s->hello_timeouts);
    aq_wr_u64(w, s->hello_evicted);
    aq_wr_u64(w, s->mono_us);
    aq_wr_u32(w, s->npeers);
}

void aq_node_status_rep_peer(aq_wr *w, const aq_node_status_peer *p) {
    wr_cstr(w, p->name);
    wr_cstr(w, p->address);
    aq_wr_u8(w, p->state);
    aq_wr_u64(w, p->incarnation);
    aq_wr_u64(w, p->since_heard_ms);
    aq_wr_u64(w, p->rtt_us);
    aq_wr_u64(w, p->calls);
    aq_wr_u64(w, p->retransmits);
    aq_wr_u64(w, p->dup_suppressed);
    aq_wr_u64(w, p->busy_seen);
    aq_wr_u64(w, p->timeouts);
    aq_wr_u64(w, p->pipe_connects);
    aq_wr_u64(w, p->pipe_failures);
    aq_wr_u64(w, p->bytes_out);
    aq_wr_u64(w, p->bytes_in);
}

int aq_node_status_rep_begin(aq_rd *r, const uint8_t *p, size_t n, aq_node_status_node *s) {
    *r = aq_rd_init(p, n);
    rd_cstr(r, s->name, sizeof s->name);
    rd_cstr(r, s->address, sizeof s->address);
    s->incarnation = aq_rd_u64(r);
    s->uptime_ms = aq_rd_u64(r);
    s->chunks = aq_rd_u64(r);
    s->bytes = aq_rd_u64(r);
    s->allocated = aq_rd_u64(r);
    s->memory_max = aq_rd_u64(r);
    uint8_t traffic = aq_rd_u8(r);
    s->authenticated = traffic & 1;
    s->encrypted = (traffic >> 1) & 1;
    s->dropped_malformed = aq_rd_u64(r);
    s->dropped_foreign = aq_rd_u64(r);
    s->dropped_auth = aq_rd_u64(r);
    s->handled_total = aq_rd_u64(r);
    s->handled_client = aq_rd_u64(r);
    s->conns_inbound = aq_rd_u64(r);
    s->conns_refused = aq_rd_u64(r);
    s->hello_timeouts = aq_rd_u64(r);
    s->hello_evicted = aq_rd_u64(r);
    s->mono_us = aq_rd_u64(r);
    s->npeers = aq_rd_u32(r);
    return r->ok && s->npeers <= 4096 ? 0 : AQ_EPROTO;
}

int aq_node_status_rep_next(aq_rd *r, aq_node_status_peer *p) {
    rd_cstr(r, p->name, sizeof p->name);
    rd_cstr(r, p->address, sizeof p->address);
    p->state = aq_rd_u8(r);
    p->incarnation = aq_rd_u64(r);
    p->since_heard_ms = aq_rd_u64(r);
    p->rtt_us = aq_rd_u64(r);
    p->calls = aq_rd_u64(r);
    p->retransmits = aq_rd_u64(r);
    p->dup_suppressed = aq_rd_u64(r);
    p->busy_seen = aq_rd_u64(r);
    p->timeouts = aq_rd_u64(r);
    p->pipe_connects = aq_rd_u64(r);
    p->pipe_failures = aq_rd_u64(r);
    p->bytes_out = aq_rd_u64(r);
    p->bytes_in = aq_rd_u64(r);
    return r->ok && p->state <= AQ_MEMBER_DOWN ? 0 : AQ_EPROTO;
}

void aq_node_status_rep_self(aq_wr *w, uint32_t self) {
    aq_wr_u32(w, self);
}

int aq_node_status_rep_self_read(aq_rd *r, uint32_t *self) {
    if (r->ok && r->n == 0)
        return AQ_ENOTFOUND;
    *self = aq_rd_u32(r);
    return aq_rd_done(r) ? 0 : AQ_EPROTO;
}

void aq_node_status_rep_features(aq_wr *w, uint32_t features) {
    aq_wr_u32(w, features);
}

int aq_node_status_rep_self_features_read(aq_rd *r, uint32_t *self, uint32_t *features) {
    *features = 0;
    if (r->ok && r->n == 0)
        return AQ_ENOTFOUND;
    *self = aq_rd_u32(r);
    if (r->ok && r->n > 0)
        *features = aq_rd_u32(r);
    return aq_rd_done(r) ? 0 : AQ_EPROTO;
}
