#include "aq_frame_proto.h"

#include <stdio.h>
#include <string.h>

#include "aq_error.h"

void aq_frame_blob_put(aq_wr *w, const void *p, size_t n) {
    aq_wr_u32(w, (uint32_t)n);
    aq_wr_bytes(w, p, n);
}

int aq_frame_blob_next(aq_rd *r, const uint8_t **p, size_t *n) {
    size_t len = aq_rd_u32(r);
    *p = aq_rd_bytes(r, len);
    *n = len;
    return r->ok ? 0 : AQ_EPROTO;
}

void aq_frame_req_encode(aq_wr *w, const aq_frame_req *r) {
    aq_wr_str8(w, r->name, r->nlen);
    aq_frame_blob_put(w, r->setup, r->slen);
    aq_wr_u32(w, r->ncols);
    aq_wr_u8(w, r->types != NULL);
    if (r->types)
        aq_wr_bytes(w, r->types, r->ncols);
    aq_frame_blob_put(w, r->blobs, r->blen);
    aq_wr_u32(w, r->npieces);
    aq_wr_bytes(w, r->pieces, (size_t)r->npieces * AQ_FRAME_PIECE_REC);
}

int aq_frame_req_decode(const uint8_t *p, size_t n, aq_frame_req *out) {
    aq_rd r = aq_rd_init(p, n);
    aq_frame_req q;
    memset(&q, 0, sizeof q);
    q.name = aq_rd_str8(&r, &q.nlen);
    if (aq_frame_blob_next(&r, &q.setup, &q.slen) != 0)
        return AQ_EPROTO;
    q.ncols = aq_rd_u32(&r);
    uint8_t has_types = aq_rd_u8(&r);
    if (!r.ok || has_types > 1)
        return AQ_EPROTO;
    if (has_types)
        q.types = aq_rd_bytes(&r, q.ncols);
    if (aq_frame_blob_next(&r, &q.blobs, &q.blen) != 0)
        return AQ_EPROTO;
    q.npieces = aq_rd_u32(&r);
    if (!r.ok || q.npieces > (r.n / AQ_FRAME_PIECE_REC))
        return AQ_EPROTO;
    q.pieces = aq_rd_bytes(&r, (size_t)q.npieces * AQ_FRAME_PIECE_REC);
    if (!r.ok || !aq_rd_done(&r) || q.nlen == 0)
        return AQ_EPROTO;
    *out = q;
    return 0;
}

void aq_frame_req_piece(const aq_frame_req *r, uint32_t i, uint32_t *index, uint64_t *first_line) {
    aq_rd rd = aq_rd_init(r->pieces + (size_t)i * AQ_FRAME_PIECE_REC, AQ_FRAME_PIECE_REC);
    *index = aq_rd_u32(&rd);
    *first_line = aq_rd_u64(&rd);
}

int aq_frame_rep_decode(const uint8_t *p, size_t n, aq_frame_rep *out) {
    aq_rd r = aq_rd_init(p, n);
    aq_frame_rep q;
    memset(&q, 0, sizeof q);
    q.status = (int32_t)aq_rd_u32(&r);
    q.msg = aq_rd_str16(&r, &q.mlen);
    q.npieces = aq_rd_u32(&r);
    if (!r.ok || q.npieces > r.n / 8)
        return AQ_EPROTO;
    q.pieces = aq_rd_bytes(&r, (size_t)q.npieces * 8);
    q.nblobs = aq_rd_u32(&r);
    if (!r.ok)
        return AQ_EPROTO;
    q.blobs = r.p;
    q.blen = r.n;
    /* Walk the blobs once so later readers can trust the framing. */
    for (uint32_t i = 0; i < q.nblobs; i++) {
        const uint8_t *b;
        size_t bl;
        if (aq_frame_blob_next(&r, &b, &bl) != 0)
            return AQ_EPROTO;
    }
    if (!aq_rd_done(&r))
        return AQ_EPROTO;
    *out = q;
    return 0;
}

void aq_frame_rep_piece(const aq_frame_rep *r, uint32_t i, uint32_t *index, uint32_t *rows) {
    aq_rd rd = aq_rd_init(r->pieces + (size_t)i * 8, 8);
    *index = aq_rd_u32(&rd);
    *rows = aq_rd_u32(&rd);
}

bool aq_frame_name_ok(const void *name, size_t nlen) {
    return nlen <= AQ_FRAME_NAME_MAX && aq_node_user_key_ok(name, nlen) && !memchr(name, '/', nlen);
}

size_t aq_frame_key(uint8_t out[AQ_NODE_KEY_MAX], const void *name, size_t nlen, uint32_t index,
                    int64_t col) {
    char tail[40];
    int t = col < 0 ? snprintf(tail, sizeof tail, "/%u\x1ep", index)
                    : snprintf(tail, sizeof tail,
                               "/%u\x1e"
                               "c%u",
                               index, (uint32_t)col);
    out[0] = 0x1f;
    out[1] = 'F';
    memcpy(out + 2, name, nlen);
    memcpy(out + 2 + nlen, tail, (size_t)t);
    return 2 + nlen + (size_t)t;
}

bool aq_frame_key_is_piece(const uint8_t *key, size_t klen) {
    /* column keys end in a digit, metadata keys start "\x1fM" */
    return klen >= 5 && key[0] == 0x1f && key[1] == 'F' && key[klen - 2] == 0x1e &&
           key[klen - 1] == 'p';
}

size_t aq_frame_meta_key(uint8_t out[AQ_NODE_KEY_MAX], const void *name, size_t nlen) {
    out[0] = 0x1f;
    out[1] = 'M';
    memcpy(out + 2, name, nlen);
    return 2 + nlen;
}
