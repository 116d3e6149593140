#include "aq_frame_meta.h"

#include <stdlib.h>
#include <string.h>

#include "aq_bytes.h"
#include "aq_csv_setup.h"
#include "aq_error.h"
#include "aq_frame_proto.h"

#define META_MAGIC   0x4d465141u /* "AQFM" */
#define META_VERSION 2           /* 2: repaired rows and unread lines; 1 is still read */

int aq_frame_meta_encode(const aq_frame_meta *m, uint8_t **out, size_t *len) {
    aq_wr w;
    aq_wr_init(&w);
    aq_wr_u32(&w, META_MAGIC);
    aq_wr_u8(&w, META_VERSION);
    aq_wr_str8(&w, m->name, strlen(m->name));
    aq_wr_str16(&w, m->source, strlen(m->source));
    aq_wr_u64(&w, m->source_size);
    aq_wr_u32(&w, m->ncols);
    for (uint32_t i = 0; i < m->ncols; i++) {
        aq_wr_str16(&w, m->cols[i], strlen(m->cols[i]));
        aq_wr_u8(&w, m->types[i]);
    }
    aq_wr_u32(&w, m->nchunks);
    for (uint32_t i = 0; i < m->nchunks; i++)
        aq_wr_u32(&w, m->rows[i]);
    aq_frame_blob_put(&w, m->setup, m->slen);
    aq_wr_u64(&w, m->repaired);
    aq_wr_u32(&w, m->nrepair);
    for (uint32_t i = 0; i < m->nrepair; i++)
        aq_wr_u64(&w, m->repair_line[i]);
    aq_wr_u64(&w, m->unread_from);
    aq_wr_u64(&w, m->unread_to);
    if (!w.ok) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

static char *dup_n(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

void aq_frame_meta_free(aq_frame_meta *m) {
    for (uint32_t i = 0; m->cols && i < m->ncols; i++)
        free(m->cols[i]);
    free(m->cols);
    free(m->types);
    free(m->rows);
    free(m->name);
    free(m->source);
    free(m->setup);
    free(m->repair_line);
    memset(m, 0, sizeof *m);
}

int aq_frame_meta_decode(const uint8_t *p, size_t n, aq_frame_meta *out) {
    aq_rd r = aq_rd_init(p, n);
    aq_frame_meta m;
    memset(&m, 0, sizeof m);
    if (aq_rd_u32(&r) != META_MAGIC)
        return AQ_EPROTO;
    uint8_t ver = aq_rd_u8(&r);
    if (!r.ok || ver < 1 || ver > META_VERSION)
        return AQ_EPROTO;
    size_t l;
    const uint8_t *s = aq_rd_str8(&r, &l);
    if (!r.ok || !(m.name = dup_n(s, l)))
        goto bad;
    s = aq_rd_str16(&r, &l);
    if (!r.ok || !(m.source = dup_n(s, l)))
        goto bad;
    m.source_size = aq_rd_u64(&r);
    m.ncols = aq_rd_u32(&r);
    if (!r.ok || m.ncols == 0 || m.ncols > r.n / 3)
        goto bad;
    m.cols = calloc(m.ncols, sizeof *m.cols);
    m.types = calloc(m.ncols, 1);
    if (!m.cols || !m.types)
        goto bad;
    for (uint32_t i = 0; i < m.ncols; i++) {
        s = aq_rd_str16(&r, &l);
        m.types[i] = aq_rd_u8(&r);
        if (!r.ok || m.types[i] > AQ_CSV_T_STR || !(m.cols[i] = dup_n(s, l)))
            goto bad;
    }
    m.nchunks = aq_rd_u32(&r);
    if (!r.ok || m.nchunks > r.n / 4)
        goto bad;
    m.rows = calloc(m.nchunks + 1, sizeof *m.rows);
    if (!m.rows)
        goto bad;
    for (uint32_t i = 0; i < m.nchunks; i++) {
        m.rows[i] = aq_rd_u32(&r);
        m.total_rows += m.rows[i];
    }
    const uint8_t *su;
    if (aq_frame_blob_next(&r, &su, &m.slen) != 0)
        goto bad;
    m.setup = malloc(m.slen + 1);
    if (!m.setup)
        goto bad;
    memcpy(m.setup, su, m.slen);
    if (ver >= 2) {
        m.repaired = aq_rd_u64(&r);
        m.nrepair = aq_rd_u32(&r);
        if (!r.ok || m.nrepair > AQ_FRAME_META_REPAIR_MAX || m.nrepair > m.repaired ||
            !(m.repair_line = calloc(m.nrepair + 1, sizeof *m.repair_line)))
            goto bad;
        for (uint32_t i = 0; i < m.nrepair; i++)
            m.repair_line[i] = aq_rd_u64(&r);
        m.unread_from = aq_rd_u64(&r);
        m.unread_to = aq_rd_u64(&r);
        if (!r.ok || m.unread_from > m.unread_to)
            goto bad;
    }
    if (!aq_rd_done(&r))
        goto bad;
    *out = m;
    return 0;
bad:
    aq_frame_meta_free(&m);
    return AQ_EPROTO;
}
