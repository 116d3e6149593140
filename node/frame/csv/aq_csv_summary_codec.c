/* Wire form of partial column summaries. */
#include "aq_csv_summary.h"

#include "aq_bytes.h"
#include "aq_envelope.h"
#include "aq_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "aq_xxh.h"

#define SUM_MAGIC   0x55435141u /* "AQCU" */
#define SUM_VERSION 1

static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static double bitsd(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int aq_csv_sum_encode(const aq_csv_sum *s, uint8_t **out, size_t *len) {
    aq_wr w;
    aq_wr_init(&w);
    aq_env_begin(&w, SUM_MAGIC, SUM_VERSION);
    aq_wr_u8(&w, (uint8_t)s->type);
    aq_wr_u64(&w, s->rows);
    aq_wr_u64(&w, s->na);
    aq_wr_u64(&w, s->n);
    aq_wr_u64(&w, dbits(s->min));
    aq_wr_u64(&w, dbits(s->max));
    aq_wr_u64(&w, dbits(s->mean));
    aq_wr_u64(&w, dbits(s->m2));
    aq_wr_u32(&w, s->nlev);
    for (uint32_t i = 0; i < s->nlev; i++) {
        aq_wr_u32(&w, s->lev_len[i]);
        aq_wr_bytes(&w, s->lev[i], s->lev_len[i]);
        aq_wr_u64(&w, s->count[i]);
    }
    return aq_env_finish(&w, out, len);
}

int aq_csv_sum_decode(const uint8_t *p, size_t len, aq_csv_sum *out) {
    aq_rd r;
    uint8_t ver;
    if (aq_env_open(p, len, SUM_MAGIC, &r, &ver) != 0)
        return AQ_EPROTO;
    aq_csv_sum s;
    memset(&s, 0, sizeof s);
    uint8_t type = aq_rd_u8(&r);
    s.rows = aq_rd_u64(&r);
    s.na = aq_rd_u64(&r);
    s.n = aq_rd_u64(&r);
    s.min = bitsd(aq_rd_u64(&r));
    s.max = bitsd(aq_rd_u64(&r));
    s.mean = bitsd(aq_rd_u64(&r));
    s.m2 = bitsd(aq_rd_u64(&r));
    uint32_t nlev = aq_rd_u32(&r);
    /* each level takes at least 12 bytes: a bound on nlev before allocating */
    if (!r.ok || ver != SUM_VERSION || type > AQ_CSV_T_STR || s.na > s.rows ||
        s.n > s.rows - s.na || nlev > r.n / 12 || !(s.m2 >= 0 || isnan(s.m2)))
        return AQ_EPROTO;
    s.type = (aq_csv_type)type;
    int rc = AQ_ENOMEM;
    s.lev = calloc((size_t)nlev + 1, sizeof *s.lev);
    s.lev_len = calloc((size_t)nlev + 1, sizeof *s.lev_len);
    s.count = calloc((size_t)nlev + 1, sizeof *s.count);
    if (!s.lev || !s.lev_len || !s.count)
        goto fail;
    uint64_t total = 0;
    for (uint32_t i = 0; i < nlev; i++) {
        rc = AQ_EPROTO;
        uint32_t l = aq_rd_u32(&r);
        const uint8_t *b = aq_rd_bytes(&r, l);
        uint64_t c = aq_rd_u64(&r);
        if (!b || c == 0 || c > s.n - total)
            goto fail;
        total += c;
        rc = AQ_ENOMEM;
        if (!(s.lev[i] = malloc((size_t)l + 1)))
            goto fail;
        memcpy(s.lev[i], b, l);
        s.lev[i][l] = 0;
        s.lev_len[i] = l;
        s.count[i] = c;
        s.nlev = i + 1;
        if (i) {
            uint32_t la = s.lev_len[i - 1];
            int cmp = memcmp(s.lev[i - 1], s.lev[i], la < l ? la : l);
            if (cmp > 0 || (cmp == 0 && la >= l)) {
                rc = AQ_EPROTO;
                goto fail;
            }
        }
    }
    rc = AQ_EPROTO;
    if (!aq_rd_done(&r))
        goto fail;
    *out = s;
    return 0;
fail:
    aq_csv_sum_free(&s);
    return rc;
}
