#include "aq_csv_summary.h"

#include "aq_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void aq_csv_sum_free(aq_csv_sum *s) {
    for (uint32_t i = 0; i < s->nlev; i++)
        free(s->lev[i]);
    free(s->lev);
    free(s->lev_len);
    free(s->count);
    memset(s, 0, sizeof *s);
}

static int lcmp(const char *a, uint32_t la, const char *b, uint32_t lb) {
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

typedef struct lref {
    const char *p;
    uint32_t len;
    uint64_t count;
} lref;

static int cmp_lref(const void *a, const void *b) {
    const lref *x = a, *y = b;
    return lcmp(x->p, x->len, y->p, y->len);
}

/* Builds the level table from (string, count) pairs: sorts, folds duplicates, copies. */
static int set_levels(aq_csv_sum *s, lref *l, uint32_t n) {
    qsort(l, n, sizeof *l, cmp_lref);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m && cmp_lref(&l[m - 1], &l[i]) == 0)
            l[m - 1].count += l[i].count;
        else
            l[m++] = l[i];
    }
    /* A chunk carries the frame's whole domain, so some levels may not occur in it: a level
     * counts only where it occurs (partials merge by level string, and decoding refuses a zero
     * count). */
    uint32_t used = 0;
    for (uint32_t i = 0; i < m; i++)
        if (l[i].count)
            l[used++] = l[i];
    m = used;
    char **lev = calloc((size_t)m + 1, sizeof *lev);
    uint32_t *len = calloc((size_t)m + 1, sizeof *len);
    uint64_t *cnt = calloc((size_t)m + 1, sizeof *cnt);
    if (!lev || !len || !cnt)
        goto nomem;
    for (uint32_t i = 0; i < m; i++) {
        if (!(lev[i] = malloc((size_t)l[i].len + 1)))
            goto nomem;
        memcpy(lev[i], l[i].p, l[i].len);
        lev[i][l[i].len] = 0;
        len[i] = l[i].len;
        cnt[i] = l[i].count;
    }
    for (uint32_t i = 0; i < s->nlev; i++)
        free(s->lev[i]);
    free(s->lev);
    free(s->lev_len);
    free(s->count);
    s->lev = lev;
    s->lev_len = len;
    s->count = cnt;
    s->nlev = m;
    return 0;
nomem:
    if (lev)
        for (uint32_t i = 0; i < m; i++)
            free(lev[i]);
    free(lev);
    free(len);
    free(cnt);
    return AQ_ENOMEM;
}

int aq_csv_sum_col(const aq_csv_col *c, aq_csv_sum *s) {
    memset(s, 0, sizeof *s);
    s->type = c->type;
    s->rows = c->rows;
    for (uint32_t r = 0; r < c->rows; r++)
        s->na += aq_csv_col_is_na(c, r);
    s->n = s->rows - s->na;
    switch (c->type) {
    case AQ_CSV_T_INT:
    case AQ_CSV_T_FLOAT:
    case AQ_CSV_T_TIME: {
        double sum = 0;
        bool first = true;
        for (uint32_t r = 0; r < c->rows; r++) {
            if (aq_csv_col_is_na(c, r))
                continue;
            double v = aq_csv_col_num(c, r);
            if (isnan(v)) { /* a NaN the file wrote: a value, but no number to count */
                s->n--;
                continue;
            }
            sum += v;
            if (first || v < s->min)
                s->min = v;
            if (first || v > s->max)
                s->max = v;
            first = false;
        }
        if (s->n == 0)
            return 0;
        double mean = sum / (double)s->n, corr = 0, m2 = 0;
        if (isinf(mean) && isfinite(s->min) && isfinite(s->max)) {
            /* Finite values whose sum overflowed: their mean is finite, summed scaled. */
            mean = 0;
            for (uint32_t r = 0; r < c->rows; r++)
                if (!aq_csv_col_is_na(c, r) && !isnan(aq_csv_col_num(c, r)))
                    mean += aq_csv_col_num(c, r) / (double)s->n;
        }
        if (!isfinite(mean)) { /* an infinity among the values: no spread to measure */
            s->mean = mean;
            s->m2 = NAN;
            return 0;
        }
        /* second pass, with the compensation term that absorbs the rounding of mean */
        for (uint32_t r = 0; r < c->rows; r++) {
            if (aq_csv_col_is_na(c, r) || isnan(aq_csv_col_num(c, r)))
                continue;
            double d = aq_csv_col_num(c, r) - mean;
            corr += d;
            m2 += d * d;
        }
        s->mean = mean + corr / (double)s->n;
        s->m2 = isinf(m2) ? m2 : m2 - corr * corr / (double)s->n; /* inf: the squares overflowed */
        return 0;
    }
    case AQ_CSV_T_CAT: {
        lref *l = calloc((size_t)c->text.n + 1, sizeof *l);
        if (!l)
            return AQ_ENOMEM;
        for (uint32_t i = 0; i < c->text.n; i++)
            l[i] = (lref){c->text.bytes + c->text.off[i], c->text.off[i + 1] - c->text.off[i], 0};
        for (uint32_t r = 0; r < c->rows; r++)
            if (!aq_csv_col_is_na(c, r))
                l[((const uint32_t *)c->vals)[r]].count++;
        int rc = set_levels(s, l, c->text.n);
        free(l);
        return rc;
    }
    case AQ_CSV_T_STR:
        /* No levels: a string column has up to one distinct value per row, so counting them
         * would carry the column itself up the reduction tree to one place. Rows and NA only. */
        return 0;
    default:
        return 0;
    }
}

static bool numeric(aq_csv_type t) {
    return t == AQ_CSV_T_INT || t == AQ_CSV_T_FLOAT || t == AQ_CSV_T_TIME;
}

int aq_csv_sum_merge(aq_csv_sum *a, const aq_csv_sum *b) {
    aq_csv_type ta = a->type, tb = b->type;
    bool text_a = ta == AQ_CSV_T_CAT || ta == AQ_CSV_T_STR,
         text_b = tb == AQ_CSV_T_CAT || tb == AQ_CSV_T_STR;
    bool num_ok = (numeric(ta) || ta == AQ_CSV_T_NONE) && (numeric(tb) || tb == AQ_CSV_T_NONE) &&
                  !(ta == AQ_CSV_T_TIME && (tb == AQ_CSV_T_INT || tb == AQ_CSV_T_FLOAT)) &&
                  !(tb == AQ_CSV_T_TIME && (ta == AQ_CSV_T_INT || ta == AQ_CSV_T_FLOAT));
    bool txt_ok = (text_a || ta == AQ_CSV_T_NONE) && (text_b || tb == AQ_CSV_T_NONE);
    if (!num_ok && !txt_ok)
        return AQ_EINVAL;
    if (txt_ok && (text_a || text_b)) {
        uint64_t n = (uint64_t)a->nlev + b->nlev;
        lref *l = calloc(n + 1, sizeof *l);
        if (!l)
            return AQ_ENOMEM;
        for (uint32_t i = 0; i < a->nlev; i++)
            l[i] = (lref){a->lev[i], a->lev_len[i], a->count[i]};
        for (uint32_t i = 0; i < b->nlev; i++)
            l[a->nlev + i] = (lref){b->lev[i], b->lev_len[i], b->count[i]};
        int rc = set_levels(a, l, (uint32_t)n);
        free(l);
        if (rc)
            return rc;
        if (ta == AQ_CSV_T_NONE || tb == AQ_CSV_T_STR)
            a->type = tb;
    } else if (b->n) {
        if (a->n == 0) {
            a->min = b->min;
            a->max = b->max;
            a->mean = b->mean;
            a->m2 = b->m2;
        } else {
            double na = (double)a->n, nb = (double)b->n, n = na + nb;
            double delta = b->mean - a->mean;
            if (!isfinite(delta)) {
                /* The weighted sum gives what the values' own sum would: an infinity stays,
                 * opposite infinities make NaN. Two finite means too far apart to subtract
                 * (values near the largest double) keep a finite mean, and a spread whose
                 * squares overflow. */
                bool finite = isfinite(a->mean) && isfinite(b->mean);
                a->mean = a->mean * (na / n) + b->mean * (nb / n);
                a->m2 = finite ? INFINITY : NAN;
            } else {
                a->mean += delta * (nb / n);
                a->m2 += b->m2 + delta * delta * (na * nb / n);
            }
            a->min = b->min < a->min ? b->min : a->min;
            a->max = b->max > a->max ? b->max : a->max;
        }
        if (ta == AQ_CSV_T_NONE || (ta == AQ_CSV_T_INT && tb == AQ_CSV_T_FLOAT))
            a->type = tb;
    }
    a->rows += b->rows;
    a->na += b->na;
    a->n += b->n;
    return 0;
}

double aq_csv_sum_sd(const aq_csv_sum *s) {
    if (s->n < 2)
        return NAN;
    double v = s->m2 / (double)(s->n - 1);
    if (isnan(v))
        return NAN; /* an infinity among the values: not "no spread" */
    return sqrt(v > 0 ? v : 0);
}
