#include "aq_csv_domain.h"

#include "aq_bytes.h"
#include "aq_envelope.h"
#include "aq_error.h"

#include <stdlib.h>
#include <string.h>
#include "aq_xxh.h"

#define DOM_MAGIC   0x44435141u /* "AQCD" */
#define DOM_VERSION 1

void aq_csv_strs_free(aq_csv_strs *s) {
    free(s->off);
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

/* Bytewise order of a's level i and b's level j. Levels are mostly short codes: their first 8
 * bytes, compared as big-endian words, or a few single bytes, settle nearly every pair without a
 * call to memcmp (which merging and re-coding make once per level). */
static int cmp_at(const aq_csv_strs *a, uint32_t i, const aq_csv_strs *b, uint32_t j) {
    uint32_t la = a->off[i + 1] - a->off[i], lb = b->off[j + 1] - b->off[j];
    uint32_t n = la < lb ? la : lb;
    const unsigned char *pa = (const unsigned char *)a->bytes + a->off[i],
                        *pb = (const unsigned char *)b->bytes + b->off[j];
    if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, pa, 8);
        memcpy(&y, pb, 8);
        if (x != y)
            return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
        int c = memcmp(pa + 8, pb + 8, n - 8);
        if (c)
            return c;
    } else {
        for (uint32_t k = 0; k < n; k++)
            if (pa[k] != pb[k])
                return pa[k] < pb[k] ? -1 : 1;
    }
    return (la > lb) - (la < lb);
}

static int alloc_strs(aq_csv_strs *s, uint64_t n, uint64_t bytes) {
    if (n >= UINT32_MAX || bytes > UINT32_MAX)
        return AQ_ETOOBIG;
    s->off = malloc((size_t)(n + 1) * sizeof *s->off);
    s->bytes = malloc((size_t)bytes + 1);
    if (!s->off || !s->bytes) {
        aq_csv_strs_free(s);
        return AQ_ENOMEM;
    }
    s->n = 0;
    s->off[0] = 0;
    return 0;
}

/* o = a copy of s (allocated by alloc_strs for s's size): the two arrays at once. */
static void copy_strs(aq_csv_strs *o, const aq_csv_strs *s) {
    if (s->n) {
        memcpy(o->off, s->off, ((size_t)s->n + 1) * sizeof *o->off);
        memcpy(o->bytes, s->bytes, s->off[s->n]);
    }
    o->n = s->n;
}

static void append(aq_csv_strs *o, const aq_csv_strs *s, uint32_t i) {
    uint32_t len = s->off[i + 1] - s->off[i];
    memcpy(o->bytes + o->off[o->n], s->bytes + s->off[i], len);
    o->off[o->n + 1] = o->off[o->n] + len;
    o->n++;
}

int aq_csv_domain_union(const aq_csv_strs *a, const aq_csv_strs *b, aq_csv_strs *out) {
    aq_csv_strs o = {0};
    uint64_t ab = a->n ? a->off[a->n] : 0, bb = b->n ? b->off[b->n] : 0;
    int rc = alloc_strs(&o, (uint64_t)a->n + b->n, ab + bb);
    if (rc)
        return rc;
    uint32_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : cmp_at(a, i, b, j);
        if (c <= 0)
            append(&o, a, i++);
        else
            append(&o, b, j++);
        if (c == 0)
            j++;
    }
    *out = o;
    return 0;
}

int aq_csv_domain_of(const aq_csv_col *c, aq_csv_strs *out) {
    aq_csv_strs o = {0};
    bool cat = c->type == AQ_CSV_T_CAT;
    uint32_t n = cat ? c->text.n : 0;
    int rc = alloc_strs(&o, n, cat ? c->text.off[n] : 0);
    if (rc)
        return rc;
    if (n)
        copy_strs(&o, &c->text);
    *out = o;
    return 0;
}

int aq_csv_col_recode(aq_csv_col *c, const aq_csv_strs *dom) {
    if (c->type != AQ_CSV_T_CAT)
        return AQ_EINVAL;
    /* both domains are sorted: one merge-like walk maps every local code */
    uint32_t *map = malloc(((size_t)c->text.n + 1) * sizeof *map);
    if (!map)
        return AQ_ENOMEM;
    uint32_t j = 0;
    for (uint32_t i = 0; i < c->text.n; i++) {
        while (j < dom->n && cmp_at(dom, j, &c->text, i) < 0)
            j++;
        if (j == dom->n || cmp_at(dom, j, &c->text, i) != 0) {
            free(map);
            return AQ_EINVAL;
        }
        map[i] = j;
    }
    aq_csv_strs copy = {0};
    int rc = alloc_strs(&copy, dom->n, dom->n ? dom->off[dom->n] : 0);
    if (rc) {
        free(map);
        return rc;
    }
    copy_strs(&copy, dom);
    uint32_t *codes = c->vals;
    for (uint32_t r = 0; r < c->rows; r++)
        codes[r] = aq_csv_col_is_na(c, r) ? 0 : map[codes[r]];
    free(map);
    aq_csv_strs_free(&c->text);
    c->text = copy;
    return 0;
}

int aq_csv_domain_encode(const aq_csv_strs *d, uint8_t **out, size_t *len) {
    aq_wr w;
    aq_wr_init(&w);
    aq_env_begin(&w, DOM_MAGIC, DOM_VERSION);
    aq_wr_u32(&w, d->n);
    aq_wr_u32(&w, d->n ? d->off[d->n] : 0);
    for (uint32_t i = 0; i <= d->n && d->n; i++)
        aq_wr_u32(&w, d->off[i]);
    if (d->n)
        aq_wr_bytes(&w, d->bytes, d->off[d->n]);
    return aq_env_finish(&w, out, len);
}

int aq_csv_domain_decode(const uint8_t *p, size_t len, aq_csv_strs *out) {
    aq_rd r;
    uint8_t ver;
    if (aq_env_open(p, len, DOM_MAGIC, &r, &ver) != 0)
        return AQ_EPROTO;
    uint32_t n = aq_rd_u32(&r), nbytes = aq_rd_u32(&r);
    if (!r.ok || ver != DOM_VERSION || n == UINT32_MAX ||
        (n ? (n + 1ull) * 4 : 0) + nbytes != r.n || (n == 0 && nbytes))
        return AQ_EPROTO;
    aq_csv_strs d = {0};
    int rc = alloc_strs(&d, n, nbytes);
    if (rc)
        return rc;
    d.n = n;
    for (uint32_t i = 0; n && i <= n; i++) {
        d.off[i] = aq_rd_u32(&r);
        if (i == 0 ? d.off[0] != 0 : d.off[i] < d.off[i - 1])
            goto bad;
    }
    if (n && d.off[n] != nbytes)
        goto bad;
    const uint8_t *b = aq_rd_bytes(&r, nbytes);
    if (!b || !aq_rd_done(&r))
        goto bad;
    memcpy(d.bytes, b, nbytes);
    for (uint32_t i = 1; i < n; i++)
        if (cmp_at(&d, i - 1, &d, i) >= 0)
            goto bad;
    *out = d;
    return 0;
bad:
    aq_csv_strs_free(&d);
    return AQ_EPROTO;
}
