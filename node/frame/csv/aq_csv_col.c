#include "aq_csv_col.h"

#include "aq_csv_bits.h"
#include "aq_csv_kmv.h"
#include "aq_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The field index of a piece: 8 bytes per field. off's top bit says the bytes are in the arena
 * (an unescaped quoted field), len's top bit that the field was quoted; a padded field (fill
 * mode) has off == PAD. */
#define F_ARENA  0x80000000u
#define F_QUOTED 0x80000000u
#define F_PAD    0xFFFFFFFFu

typedef struct fidx {
    uint32_t off, len;
} fidx;

/* Where the separators and LFs are, 64 bytes at a time. Walking a field to its end byte by byte
 * chains every field's end on the previous one and exits the loop on a mispredicted branch; the
 * mask is computed a block ahead of that chain, and a field's end is then one ctz away. */
typedef struct stops {
    const char *blk; /* the block the bits describe */
    uint64_t bits;   /* its stops not yet consumed */
    const char *at;  /* the state is valid for a row starting here (NULL: recompute) */
} stops;

typedef struct pctx {
    const char *piece;
    char *arena;
    size_t arena_len, arena_cap;
    fidx *f; /* column-major: field (r, j) at f[j * cap_rows + r], so a column reads in order */
    size_t rows, cap_rows;
    uint32_t ncols;
    aq_csv_na na;
    /* what observe_col found for each row of the current column, so build_col parses nothing
     * twice: the kind and the value (int64 for INT and TIME, double for FLOAT) */
    uint8_t *kind;
    union cval {
        int64_t i;
        double d;
    } * val;
    uint64_t *hash;    /* per row of the current column: the hash of its text (unset for NA rows) */
    aq_csv_kmv *kmv;   /* the current column's sketch */
    bool hashed;       /* hash holds the current column's hashes */
    stops stops;       /* plain_row's separator mask, kept from one row to the next */
    const char *nextq; /* plain_row: the first quote at or after an earlier row start, or NULL */
    /* plain_row: the current row's LFs inside quotes and doubled quotes' bytes (rare: kept
     * here, out of the field loop's registers) */
    uint64_t row_lfs;
    uint32_t row_dq;
    uint8_t tfrac; /* observe_col: bit n set when a time of the column had n fraction digits */
    /* repaired rows: how many, and the first lines (ascending) */
    uint64_t repaired;
    uint32_t nrepair;
    uint64_t repair_line[AQ_CSV_REPAIR_LINES];
    /* the setup's: rows on lines 1..skip or from stop_line are not read; the decimal mark */
    uint64_t skip, stop_line;
    char decimal;
} pctx;

static inline bool f_pad(fidx f) {
    return f.off == F_PAD;
}
static inline const char *f_ptr(const pctx *x, fidx f) {
    return (f.off & F_ARENA) ? x->arena + (f.off & ~F_ARENA) : x->piece + f.off;
}
static inline size_t f_len(fidx f) {
    return f.len & ~F_QUOTED;
}
static inline bool f_quoted(fidx f) {
    return (f.len & F_QUOTED) != 0;
}

static inline fidx *fcell(const pctx *x, size_t r, uint32_t j) {
    return &x->f[(size_t)j * x->cap_rows + r];
}

/* Room for more rows: each column moves to its place in a larger array. Needed only when the
 * piece's later rows are shorter than its first 256 KiB promised (see index_piece). */
static int grow_rows(pctx *x) {
    size_t cap = x->cap_rows ? x->cap_rows * 2 : 1024;
    fidx *nf = malloc(cap * x->ncols * sizeof *nf);
    if (!nf)
        return AQ_ENOMEM;
    for (uint32_t j = 0; j < x->ncols && x->rows; j++)
        memcpy(nf + (size_t)j * cap, x->f + (size_t)j * x->cap_rows, x->rows * sizeof *nf);
    free(x->f);
    x->f = nf;
    x->cap_rows = cap;
    return 0;
}

/* The first byte at or after p that is a or b, or end (quoted fields: the closing quote). */
static inline const char *scan_to(const char *p, const char *end, char a, char b) {
#ifdef __SSE2__
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)));
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && *p != a && *p != b)
        p++;
    return p;
}

/* Bit i set: p[i] is the separator or LF (i < 64, p + i < end). */
static inline uint64_t stop_bits(const char *p, const char *end, char sep) {
    char tail[64];
    if (end - p < 64) {
        memset(tail, 0, sizeof tail); /* NUL is never the separator */
        memcpy(tail, p, (size_t)(end - p));
        p = tail;
    }
    return aq_csv_eq64_2(p, sep, '\n');
}

static inline void stops_at(stops *k, const char *p, const char *end, char sep) {
    k->blk = p;
    k->bits = p < end ? stop_bits(p, end, sep) : 0;
}

/* The next unconsumed stop (consumed now), or end. */
static inline const char *stops_next(stops *k, const char *end, char sep) {
    while (!k->bits) {
        k->blk += 64;
        if (k->blk >= end)
            return end;
        k->bits = stop_bits(k->blk, end, sep);
    }
    const char *r = k->blk + __builtin_ctzll(k->bits);
    k->bits &= k->bits - 1;
    return r;
}

/* Appends n bytes to the arena; its offset in *off. AQ_ENOMEM, or AQ_ETOOBIG past F_ARENA. */
static int arena_put(pctx *x, const char *p, size_t n, uint32_t *off) {
    if (x->arena_len + n >= F_ARENA)
        return AQ_ETOOBIG;
    if (x->arena_len + n > x->arena_cap) {
        size_t cap = x->arena_cap ? x->arena_cap : 4096;
        while (cap < x->arena_len + n)
            cap *= 2;
        char *na = realloc(x->arena, cap);
        if (!na)
            return AQ_ENOMEM;
        x->arena = na;
        x->arena_cap = cap;
    }
    memcpy(x->arena + x->arena_len, p, n);
    *off = (uint32_t)x->arena_len;
    x->arena_len += n;
    return 0;
}

/* Indexes the row at t->p straight into x->f when it is a plain one: not blank, no comment,
 * exactly ncols fields, every quoted field closed right before the separator or the line end and
 * no quote in an unquoted field. A quoted field may hold separators, newlines and doubled
 * quotes: one with doubled quotes is unescaped straight into the arena (the tokenizer would
 * build it in its scratch and copy it there). 1: done (t advanced past it); 0: leave the row to
 * the tokenizer, which knows every case and reports errors (the arena as it was); AQ_ENOMEM.
 * Whatever this indexes, aq_csv_tok_next would have split the same way. */
static int plain_row_at(pctx *x, aq_csv_tok *t);

/* plain_row's quoted field from s (after its opening quote) when *pp, its first quote or LF, is
 * an LF or a doubled quote: on to the closing quote, counting LFs into x->row_lfs and the doubled
 * quotes' bytes into x->row_dq; a field with doubled quotes goes to the arena unescaped. *f: the
 * field; *pp: the closing quote. 1, 0 (not plain), or AQ_ENOMEM. Kept out of plain_row so that
 * the common field (closed at its first quote) keeps its registers. */
static __attribute__((noinline)) int quoted_rest(pctx *x, const char *s, const char **pp,
                                                 const char *end, char q, fidx *f) {
    const char *p = *pp, *seg = s;
    bool arena = false;
    uint32_t aoff = 0, alen = 0;
    for (;;) {
        if (p == end)
            return 0;
        if (*p == '\n') {
            x->row_lfs++;
            p = scan_to(p + 1, end, q, '\n');
            continue;
        }
        if (p + 1 < end && p[1] == q) { /* a doubled quote: one quote of the value */
            uint32_t o;
            int rc = arena_put(x, seg, (size_t)(p + 1 - seg), &o);
            if (rc)
                return rc == AQ_ENOMEM ? rc : 0;
            if (!arena)
                aoff = o;
            arena = true;
            alen += (uint32_t)(p + 1 - seg);
            x->row_dq += 2;
            seg = p + 2;
            p = scan_to(seg, end, q, '\n');
            continue;
        }
        break; /* the closing quote */
    }
    *f = (fidx){(uint32_t)(s - x->piece), (uint32_t)(p - s) | F_QUOTED};
    if (arena) {
        uint32_t o;
        int rc = arena_put(x, seg, (size_t)(p - seg), &o);
        if (rc)
            return rc == AQ_ENOMEM ? rc : 0;
        *f = (fidx){aoff | F_ARENA, (alen + (uint32_t)(p - seg)) | F_QUOTED};
    }
    *pp = p;
    return 1;
}

static int plain_row(pctx *x, aq_csv_tok *t) {
    size_t arena0 = x->arena_len;
    int rc = plain_row_at(x, t);
    if (rc <= 0)
        x->arena_len = arena0;
    return rc;
}

static int plain_row_at(pctx *x, aq_csv_tok *t) {
    const char *p = t->p, *end = t->end, *row0 = p;
    const char sep = t->d.sep, q = t->d.quote;
    if (p >= end || *p == '\n' || *p == '\r' || (t->d.comment && *p == t->d.comment) ||
        x->rows == UINT32_MAX || t->d.escape || t->d.skipsp ||
        (x->stop_line && t->line >= x->stop_line) || t->line <= x->skip)
        return 0;
    uint32_t nquoted = 0;
    x->row_lfs = 0;
    x->row_dq = 0;
    if (x->rows == x->cap_rows && grow_rows(x) != 0)
        return AQ_ENOMEM;
    stops *k = &x->stops;
    if (k->at != p) /* the tokenizer took the rows since: start over here */
        stops_at(k, p, end, sep);
    k->at = NULL;
    fidx *row = x->f + x->rows; /* field j at row[j * cap_rows] */
    const size_t stride = x->cap_rows;
    uint32_t j = 0;
    for (;;) {
        const char *s = p;
        if (j == x->ncols)
            return 0;
        if (q && p < end && *p == q) {
            /* a quoted field closed right before the separator or the line end (a quote never
             * closed, or bytes after the closing one, are the tokenizer's) */
            s = ++p;
            p = scan_to(p, end, q, '\n');
            if (p == end)
                return 0;
            fidx f = {(uint32_t)(s - x->piece), (uint32_t)(p - s) | F_QUOTED};
            if (*p != q || (p + 1 < end && p[1] == q)) {
                int rc = quoted_rest(x, s, &p, end, q, &f);
                if (rc <= 0)
                    return rc;
            }
            p++;
            if (p < end && *p == '\r' && (p + 1 == end || p[1] == '\n'))
                p++;
            if (p < end && *p != sep && *p != '\n')
                return 0;
            row[j++ * stride] = f;
            nquoted++;
            /* the quotes may have held separators: the mask restarts at the closing one's stop */
            stops_at(k, p, end, sep);
            stops_next(k, end, sep);
        } else {
            p = stops_next(k, end, sep);
            row[j++ * stride] = (fidx){(uint32_t)(s - x->piece), (uint32_t)(p - s)};
            if (p < end && *p == sep) {
                p++;
                continue;
            }
            /* the row's last field: a CR before its LF (or the end) is no part of it */
            if (p > s && p[-1] == '\r')
                row[(j - 1) * stride].len--;
            break;
        }
        if (p < end && *p == sep) {
            p++;
            continue;
        }
        break;
    }
    if (j != x->ncols)
        return 0;
    if (q) {
        /* every quote must be one of the quoted fields' two: any other is out of place, and the
         * tokenizer notes the row as repaired. x->nextq is the first quote at or after some
         * earlier row start, so rows without quotes cost nothing and the piece is searched
         * about once in all. */
        if (!x->nextq || x->nextq < row0) {
            const char *a = memchr(row0, q, (size_t)(end - row0));
            x->nextq = a ? a : end;
        }
        const char *a = x->nextq;
        for (uint32_t nq = 0; a < p;) {
            if (++nq > 2 * nquoted + x->row_dq)
                return 0;
            const char *b = memchr(a + 1, q, (size_t)(end - a - 1));
            a = b ? b : end;
        }
        x->nextq = a;
    }
    t->line += x->row_lfs;
    if (p < end) {
        p++;
        t->line++;
    }
    t->p = p;
    k->at = p;
    x->rows++;
    return 1;
}

static int index_piece(pctx *x, const aq_csv_piece *pc, const aq_csv_setup *s, aq_csv_err *err) {
    /* Rows end at LFs: the LFs of the first 256 KiB, scaled to the piece, size the index, and it
     * grows (rarely, and only by re-laying the columns) when the rest has shorter rows. */
    size_t head = pc->len < (256u << 10) ? pc->len : (256u << 10), nl = 0;
    for (size_t i = 0; i < head; i++)
        nl += pc->p[i] == '\n';
    x->cap_rows = (size_t)((double)nl * ((double)pc->len / (double)(head ? head : 1)) * 1.05) + 64;
    x->f = malloc(x->cap_rows * x->ncols * sizeof *x->f);
    if (!x->f)
        return AQ_ENOMEM;
    aq_csv_tok t;
    aq_csv_tok_init(&t, pc->p, pc->len, &s->d, pc->first_line, pc->file_start);
    t.lenient = !s->strict;
    bool skip_header = pc->file_start && s->header;
    int rc;
    for (;;) {
        if (!skip_header && (rc = plain_row(x, &t)) != 0) {
            if (rc < 0)
                break;
            continue;
        }
        if ((rc = aq_csv_tok_next(&t, err)) != 1)
            break;
        if (s->stop_line && t.row_line >= s->stop_line) {
            rc = 0;
            break;
        }
        if (t.row_line <= s->skip)
            continue; /* the lines before the table (a preamble) */
        if (skip_header) {
            skip_header = false;
            continue;
        }
        if (t.nfields != s->ncols || t.repair) {
            if (s->strict) {
                if (t.nfields != s->ncols)
                    aq_csv_err_set(err, t.row_line, "line %llu: %zu fields, expected %u",
                                   (unsigned long long)t.row_line, t.nfields, s->ncols);
                else
                    aq_csv_err_set(err, t.row_line, "line %llu: %s", (unsigned long long)t.row_line,
                                   t.repair);
                rc = AQ_EPARSE;
                break;
            }
            if (t.nfields > s->ncols) {
                /* the extra fields stay: the last column holds the rest of the row as written */
                const aq_csv_field *f = &t.fields[s->ncols - 1];
                t.fields[s->ncols - 1] =
                    (aq_csv_field){f->raw, (size_t)(t.row_end - f->raw), false, f->raw};
                t.soff[s->ncols - 1] = SIZE_MAX;
            }
            if (x->nrepair < AQ_CSV_REPAIR_LINES)
                x->repair_line[x->nrepair++] = t.row_line;
            x->repaired++;
        }
        if (x->rows == UINT32_MAX) {
            aq_csv_err_set(err, t.row_line, "line %llu: more than %u rows in one piece",
                           (unsigned long long)t.row_line, UINT32_MAX);
            rc = AQ_ETOOBIG;
            break;
        }
        if (x->rows == x->cap_rows && (rc = grow_rows(x)) != 0)
            break;
        for (uint32_t j = 0; j < x->ncols; j++) {
            fidx *cell = fcell(x, x->rows, j);
            if (j >= t.nfields) {
                *cell = (fidx){F_PAD, 0};
                continue;
            }
            const aq_csv_field *f = &t.fields[j];
            uint32_t qb = f->quoted ? F_QUOTED : 0;
            if (t.soff[j] == SIZE_MAX) { /* points into the piece */
                *cell = (fidx){(uint32_t)(f->p - pc->p), (uint32_t)f->len | qb};
                continue;
            }
            if (x->arena_len + f->len > x->arena_cap) {
                size_t cap = x->arena_cap ? x->arena_cap : 4096;
                while (cap < x->arena_len + f->len)
                    cap *= 2;
                char *na = realloc(x->arena, cap);
                if (!na) {
                    rc = AQ_ENOMEM;
                    goto out;
                }
                x->arena = na;
                x->arena_cap = cap;
            }
            if (x->arena_len + f->len >= F_ARENA) {
                rc = AQ_ETOOBIG;
                goto out;
            }
            memcpy(x->arena + x->arena_len, f->p, f->len);
            *cell = (fidx){(uint32_t)x->arena_len | F_ARENA, (uint32_t)f->len | qb};
            x->arena_len += f->len;
        }
        x->rows++;
    }
out:
    aq_csv_tok_free(&t);
    return rc < 0 ? rc : 0;
}

/* --- the distinct-value sketch (built by aq_csv_kmv) --- */

double aq_csv_obs_distinct(const aq_csv_obs *o) {
    if (o->nsketch < AQ_CSV_SKETCH)
        return o->nsketch;
    /* KMV: the k-th smallest of n uniform hashes sits near k / n of the range */
    double kth = (double)o->sketch[AQ_CSV_SKETCH - 1] / 18446744073709551616.0;
    return kth > 0 ? (AQ_CSV_SKETCH - 1) / kth : (double)AQ_CSV_SKETCH;
}

void aq_csv_obs_merge(aq_csv_obs *a, const aq_csv_obs *b) {
    bool a_vals = a->numeric || a->time, b_vals = b->numeric || b->time;
    if (b_vals) {
        a->min = a_vals && a->min <= b->min ? a->min : b->min;
        a->max = a_vals && a->max >= b->max ? a->max : b->max;
    }
    if (b->kind == AQ_CSV_T_STR || a->kind == AQ_CSV_T_STR)
        a->kind = AQ_CSV_T_STR;
    else if (b->kind > a->kind)
        a->kind = b->kind;
    a->rows += b->rows;
    a->na += b->na;
    a->invalid += b->invalid;
    a->fractional |= b->fractional;
    a->numeric |= b->numeric;
    if (b->time) {
        bool adt = a->time && (a->tshape & AQ_CSV_TS_TIME), bdt = b->tshape & AQ_CSV_TS_TIME;
        a->tmixed |= b->tmixed || (adt && bdt && a->tshape != b->tshape);
        if (bdt)
            a->tshape = b->tshape;
        a->tdates |= b->tdates;
    }
    a->time |= b->time;
    a->text |= b->text;
    a->nan |= b->nan;
    a->bigint |= b->bigint;
    /* the smallest repaired lines of both (pieces hold different lines) */
    uint64_t m[AQ_CSV_REPAIR_LINES];
    uint32_t n = 0, i = 0, k = 0;
    while (n < AQ_CSV_REPAIR_LINES && (i < a->nrepair || k < b->nrepair)) {
        if (k >= b->nrepair || (i < a->nrepair && a->repair_line[i] <= b->repair_line[k]))
            m[n++] = a->repair_line[i++];
        else
            m[n++] = b->repair_line[k++];
    }
    memcpy(a->repair_line, m, n * sizeof *m);
    a->nrepair = n;
    a->repaired += b->repaired;
    aq_csv_kmv_merge(a, b);
}

aq_csv_type aq_csv_obs_final(const aq_csv_obs *o) {
    if (o->kind == AQ_CSV_T_STR)
        return AQ_CSV_T_STR;
    /* NaN spellings are NaN only in a column that is otherwise numeric; with no number anywhere
     * they are the text they were (the airport code NAN) */
    bool fl = o->numeric && (o->fractional || o->kind == AQ_CSV_T_FLOAT);
    /* integers past 2^53 among floats would lose digits as doubles: the column is text */
    if (o->text || (o->time && (o->numeric || o->nan)) || o->kind == AQ_CSV_T_CAT ||
        (o->nan && !o->numeric) || (fl && o->bigint) || (o->time && o->tmixed))
        return aq_csv_obs_distinct(o) <= AQ_CSV_CAT_MAX ? AQ_CSV_T_CAT : AQ_CSV_T_STR;
    if (o->time)
        return AQ_CSV_T_TIME;
    if (o->numeric)
        return fl ? AQ_CSV_T_FLOAT : AQ_CSV_T_INT;
    return AQ_CSV_T_NONE;
}

/* --- building chunks --- */

static void set_na(aq_csv_col *c, uint32_t r) {
    c->na[r >> 3] |= (uint8_t)(1u << (r & 7));
}

static uint8_t int_width(int64_t lo, int64_t hi) {
    if (lo >= INT8_MIN && hi <= INT8_MAX)
        return 1;
    if (lo >= INT16_MIN && hi <= INT16_MAX)
        return 2;
    if (lo >= INT32_MIN && hi <= INT32_MAX)
        return 4;
    return 8;
}

/* vals[0..n) = iv[0..n) at width w (each value fits): one loop per width, not a switch per value.
 */
static void narrow_ints(void *vals, uint8_t w, const int64_t *iv, uint32_t n) {
    switch (w) {
    case 1:
        for (uint32_t r = 0; r < n; r++)
            ((int8_t *)vals)[r] = (int8_t)iv[r];
        break;
    case 2:
        for (uint32_t r = 0; r < n; r++)
            ((int16_t *)vals)[r] = (int16_t)iv[r];
        break;
    case 4:
        for (uint32_t r = 0; r < n; r++)
            ((int32_t *)vals)[r] = (int32_t)iv[r];
        break;
    default:
        memcpy(vals, iv, (size_t)n * sizeof *iv);
    }
}

int64_t aq_csv_col_int(const aq_csv_col *c, uint32_t r) {
    if (r >= c->rows || aq_csv_col_is_na(c, r))
        return 0;
    if (c->type == AQ_CSV_T_TIME)
        return ((const int64_t *)c->vals)[r];
    if (c->type != AQ_CSV_T_INT)
        return 0;
    switch (c->width) {
    case 1:
        return ((const int8_t *)c->vals)[r];
    case 2:
        return ((const int16_t *)c->vals)[r];
    case 4:
        return ((const int32_t *)c->vals)[r];
    default:
        return ((const int64_t *)c->vals)[r];
    }
}

double aq_csv_col_num(const aq_csv_col *c, uint32_t r) {
    if (r >= c->rows || aq_csv_col_is_na(c, r))
        return NAN;
    switch (c->type) {
    case AQ_CSV_T_INT:
    case AQ_CSV_T_TIME:
        return (double)aq_csv_col_int(c, r);
    case AQ_CSV_T_FLOAT:
        return ((const double *)c->vals)[r];
    default:
        return NAN;
    }
}

const char *aq_csv_col_str(const aq_csv_col *c, uint32_t r, size_t *len) {
    if (r >= c->rows || aq_csv_col_is_na(c, r))
        return NULL;
    uint32_t i;
    if (c->type == AQ_CSV_T_STR)
        i = r;
    else if (c->type == AQ_CSV_T_CAT)
        i = ((const uint32_t *)c->vals)[r];
    else
        return NULL;
    *len = c->text.off[i + 1] - c->text.off[i];
    return c->text.bytes + c->text.off[i];
}

void aq_csv_col_free(aq_csv_col *c) {
    if (!c)
        return;
    free(c->na);
    free(c->vals);
    free(c->text.off);
    free(c->text.bytes);
    c->na = NULL;
    c->vals = NULL;
    c->text.off = NULL;
    c->text.bytes = NULL;
}

void aq_csv_cols_free(aq_csv_col *cols, uint32_t n) {
    if (!cols)
        return;
    for (uint32_t i = 0; i < n; i++)
        aq_csv_col_free(&cols[i]);
    free(cols);
}

/* A text value as kept: NA rows are empty. */
typedef struct sref {
    const char *p;
    uint32_t len;
} sref;

/* Equal bytes, for the short strings most levels are: two overlapping loads instead of a call. */
static inline bool same_bytes(const char *a, const char *b, uint32_t n) {
    uint64_t x, y, u, v;
    if (n > 16 && n <= 32)
        return same_bytes(a, b, 16) && same_bytes(a + n - 16, b + n - 16, 16);
    if (n >= 8 && n <= 16) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&u, a + n - 8, 8);
        memcpy(&v, b + n - 8, 8);
        return ((x ^ y) | (u ^ v)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t x4, y4, u4, v4;
        memcpy(&x4, a, 4);
        memcpy(&y4, b, 4);
        memcpy(&u4, a + n - 4, 4);
        memcpy(&v4, b + n - 4, 4);
        return ((x4 ^ y4) | (u4 ^ v4)) == 0;
    }
    if (n < 4) {
        for (uint32_t i = 0; i < n; i++)
            if (a[i] != b[i])
                return false;
        return true;
    }
    return memcmp(a, b, n) == 0;
}

/* A level while the domain is sorted: its bytes, its first-occurrence id, and its first 16 bytes
 * as two big-endian numbers (zero-padded), which order nearly every pair without a memcmp. */
typedef struct slev {
    uint64_t pre, pre2;
    const char *p;
    uint32_t len, id;
} slev;

static uint64_t prefix_be(const char *p, uint32_t len, uint32_t from) {
    if (len >= from + 8) {
        uint64_t w;
        memcpy(&w, p + from, 8);
        return __builtin_bswap64(w);
    }
    uint64_t v = 0;
    for (uint32_t i = from; i < from + 8; i++)
        v = v << 8 | (i < len ? (uint8_t)p[i] : 0);
    return v;
}

static int cmp_slev(const void *a, const void *b) {
    const slev *x = a, *y = b;
    if (x->pre != y->pre)
        return x->pre < y->pre ? -1 : 1;
    if (x->pre2 != y->pre2)
        return x->pre2 < y->pre2 ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* A level in the radix sort: 8 bytes of its prefix (the pass's key) and its first-occurrence id;
 * half the size of a slev, so each pass moves half the bytes. */
typedef struct rkey {
    uint64_t key;
    uint32_t id, pad;
} rkey;

/* One stable counting pass of an LSD radix sort over byte b (0: lowest) of the key; false when
 * every level has the same byte there and the order stands. */
static bool radix_pass(const rkey *src, rkey *dst, uint32_t n, int b, const uint32_t cnt[256]) {
    if (cnt[(src[0].key >> (8 * b)) & 0xFF] == n)
        return false;
    uint32_t pos[256], sum = 0;
    for (int v = 0; v < 256; v++) {
        pos[v] = sum;
        sum += cnt[v];
    }
    for (uint32_t i = 0; i < n; i++)
        dst[pos[(src[i].key >> (8 * b)) & 0xFF]++] = src[i];
    return true;
}

/* Sorts the n levels uniq[0..n) into out[0..n) (their ids in bytewise order): a stable LSD radix
 * sort on the first 16 bytes (bytes 8..15 first, then 0..7), which differ between nearly every
 * pair of levels, then cmp_slev only inside runs that share them. glibc's qsort with its indirect
 * comparator took 5% of a cluster parse on 5,000-level columns, and more on free text whose
 * values share their first bytes. */
static int sort_levels(const sref *uniq, uint32_t n, uint32_t *out) {
    uint64_t *pre = malloc(((size_t)n + 1) * 2 * sizeof *pre), *pre2 = pre ? pre + n + 1 : NULL;
    rkey *a = malloc(((size_t)n + 1) * 2 * sizeof *a);
    uint32_t(*cnt)[256] = malloc(16 * sizeof *cnt);
    if (!pre || !a || !cnt) {
        free(pre);
        free(a);
        free(cnt);
        return AQ_ENOMEM;
    }
    memset(cnt, 0, 16 * sizeof *cnt);
    for (uint32_t i = 0; i < n; i++) {
        pre[i] = prefix_be(uniq[i].p, uniq[i].len, 0);
        pre2[i] = prefix_be(uniq[i].p, uniq[i].len, 8);
        a[i] = (rkey){pre2[i], i, 0};
        for (int b = 0; b < 8; b++) {
            cnt[b][(pre2[i] >> (8 * b)) & 0xFF]++;
            cnt[8 + b][(pre[i] >> (8 * b)) & 0xFF]++;
        }
    }
    rkey *src = a, *dst = a + n + 1;
    for (int k = 0; k < 16 && n; k++) {
        if (k == 8) /* bytes 8..15 are in order: on to bytes 0..7 */
            for (uint32_t i = 0; i < n; i++)
                src[i].key = pre[src[i].id];
        if (radix_pass(src, dst, n, k & 7, cnt[k])) {
            rkey *t = src;
            src = dst;
            dst = t;
        }
    }
    free(cnt);
    int rc = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i + 1, id0 = src[i].id;
        while (j < n && pre[src[j].id] == pre[id0] && pre2[src[j].id] == pre2[id0])
            j++;
        if (j - i > 1) { /* the levels share their first 16 bytes: compare them whole */
            slev *run = malloc((j - i) * sizeof *run);
            if (!run) {
                rc = AQ_ENOMEM;
                break;
            }
            for (uint32_t k = i; k < j; k++) {
                const sref *u = &uniq[src[k].id];
                run[k - i] = (slev){pre[id0], pre2[id0], u->p, u->len, src[k].id};
            }
            qsort(run, j - i, sizeof *run, cmp_slev);
            for (uint32_t k = i; k < j; k++)
                src[k].id = run[k - i].id;
            free(run);
        }
        i = j;
    }
    for (uint32_t i = 0; i < n && rc == 0; i++)
        out[i] = src[i].id;
    free(pre);
    free(a);
    return rc;
}

/* Builds a text chunk from refs[rows] (p == NULL: NA): CAT when want_cat and the distinct count
 * is at most AQ_CSV_CAT_MAX (any count with force_cat), else STR. hashes: NULL, or aq_csv_hash
 * of each non-NA row's text (computed by the caller already). est: the distinct count expected
 * (0: unknown), which sizes the table of levels. */
static int build_text(aq_csv_col *c, const sref *refs, const uint64_t *hashes, uint32_t rows,
                      uint32_t est, bool want_cat, bool force_cat) {
    if (want_cat) {
        /* distinct values through an open-addressing table of first occurrences; the table
         * keeps each level's hash beside its id, so a probe compares bytes only on a match.
         * It is sized for the levels (the sketch's estimate, when there is one), not the rows,
         * and doubles at half full: a table of the rows would be megabytes, each probe a cache
         * miss, for a few thousand levels. */
        size_t cap = 64;
        while (cap < (size_t)est * 2 && cap < (size_t)rows * 2)
            cap *= 2;
        typedef struct slot {
            uint64_t h;
            uint32_t id, len; /* len: the level's, so short levels need no look at their bytes */
        } slot;
        slot *tab = malloc(cap * sizeof *tab);
        uint32_t *id = malloc(((size_t)rows + 1) * sizeof *id);
        sref *uniq = malloc(((size_t)rows + 1) * sizeof *uniq);
        if (!tab || !id || !uniq) {
            free(tab);
            free(id);
            free(uniq);
            return AQ_ENOMEM;
        }
        for (size_t i = 0; i < cap; i++)
            tab[i].id = UINT32_MAX;
        uint32_t nu = 0;
        for (uint32_t r = 0; r < rows; r++) {
            const sref *v = &refs[r];
            if (!v->p) {
                id[r] = UINT32_MAX;
                continue;
            }
            uint64_t h = hashes ? hashes[r] : aq_csv_hash(v->p, v->len);
            size_t i = (size_t)h & (cap - 1);
            /* up to 8 bytes, the hash and the length determine the bytes (aq_csv_hash): a probe
             * of a short level reads the slot alone, not the level's bytes elsewhere */
            while (tab[i].id != UINT32_MAX) {
                if (tab[i].h == h && tab[i].len == v->len &&
                    (v->len <= 8 || same_bytes(uniq[tab[i].id].p, v->p, v->len)))
                    break;
                i = (i + 1) & (cap - 1);
            }
            if (tab[i].id == UINT32_MAX) {
                tab[i] = (slot){h, nu, v->len};
                uniq[nu++] = *v;
                id[r] = nu - 1;
                if ((size_t)nu * 2 > cap) {
                    size_t ncap = cap * 2;
                    slot *nt = malloc(ncap * sizeof *nt);
                    if (!nt) {
                        free(tab);
                        free(id);
                        free(uniq);
                        return AQ_ENOMEM;
                    }
                    for (size_t k = 0; k < ncap; k++)
                        nt[k].id = UINT32_MAX;
                    for (size_t k = 0; k < cap; k++) {
                        if (tab[k].id == UINT32_MAX)
                            continue;
                        size_t m = (size_t)tab[k].h & (ncap - 1);
                        while (nt[m].id != UINT32_MAX)
                            m = (m + 1) & (ncap - 1);
                        nt[m] = tab[k];
                    }
                    free(tab);
                    tab = nt;
                    cap = ncap;
                }
                continue;
            }
            id[r] = tab[i].id;
        }
        free(tab);
        if (nu > AQ_CSV_CAT_MAX && !force_cat) {
            free(id);
            free(uniq);
            return build_text(c, refs, NULL, rows, 0, false, false);
        }
        /* sort the levels and map first-occurrence ids to sorted codes; the domain's bytes are
         * the levels', not the rows' */
        size_t lbytes = 0;
        for (uint32_t i = 0; i < nu; i++)
            lbytes += uniq[i].len;
        if (lbytes > UINT32_MAX) {
            free(id);
            free(uniq);
            return AQ_ETOOBIG;
        }
        uint32_t *order = malloc(((size_t)nu + 1) * 2 * sizeof *order), *sorted = order + nu + 1;
        c->vals = malloc(((size_t)rows + 1) * sizeof(uint32_t));
        c->text.off = malloc(((size_t)nu + 1) * sizeof(uint32_t));
        c->text.bytes = malloc(lbytes + 1);
        int rc = !order || !c->vals || !c->text.off || !c->text.bytes
                     ? AQ_ENOMEM
                     : sort_levels(uniq, nu, sorted);
        if (rc) {
            free(order);
            free(id);
            free(uniq);
            return rc;
        }
        uint32_t o = 0;
        for (uint32_t i = 0; i < nu; i++) {
            const sref *u = &uniq[sorted[i]];
            order[sorted[i]] = i;
            c->text.off[i] = o;
            memcpy(c->text.bytes + o, u->p, u->len);
            o += u->len;
        }
        c->text.off[nu] = o;
        c->text.n = nu;
        uint32_t *codes = c->vals;
        for (uint32_t r = 0; r < rows; r++)
            codes[r] = id[r] == UINT32_MAX ? 0 : order[id[r]];
        free(order);
        free(id);
        free(uniq);
        c->type = AQ_CSV_T_CAT;
        return 0;
    }
    size_t total = 0;
    for (uint32_t r = 0; r < rows; r++)
        total += refs[r].p ? refs[r].len : 0;
    if (total > UINT32_MAX)
        return AQ_ETOOBIG;
    c->text.off = malloc(((size_t)rows + 1) * sizeof(uint32_t));
    c->text.bytes = malloc(total + 1);
    if (!c->text.off || !c->text.bytes)
        return AQ_ENOMEM;
    uint32_t o = 0;
    for (uint32_t r = 0; r < rows; r++) {
        c->text.off[r] = o;
        if (refs[r].p) {
            memcpy(c->text.bytes + o, refs[r].p, refs[r].len);
            o += refs[r].len;
        }
    }
    c->text.off[rows] = o;
    c->text.n = rows;
    c->type = AQ_CSV_T_STR;
    return 0;
}

/* Parses column j of the index into c, as `type` (never NONE unless every row is NA). */
static int build_col(const pctx *x, uint32_t j, aq_csv_type type, bool forced, aq_csv_col *c) {
    uint32_t rows = (uint32_t)x->rows;
    aq_csv_obs *o = &c->obs;
    c->rows = rows;
    c->na = calloc(((size_t)rows + 7) / 8 + 1, 1);
    if (!c->na)
        return AQ_ENOMEM;
    if (o->na == rows)
        type = AQ_CSV_T_NONE;
    c->type = type;
    o->kind = type;
    switch (type) {
    case AQ_CSV_T_NONE:
        memset(c->na, 0xFF, ((size_t)rows + 7) / 8);
        if (rows & 7)
            c->na[rows / 8] = (uint8_t)((1u << (rows & 7)) - 1);
        return 0;
    case AQ_CSV_T_INT:
    case AQ_CSV_T_FLOAT:
    case AQ_CSV_T_TIME: {
        /* malloc, not calloc: jemalloc zeroes a reused large extent for calloc by dropping its
         * pages (madvise), so every parse would fault them in again; the loop writes each row */
        int64_t *iv = type != AQ_CSV_T_FLOAT ? malloc(((size_t)rows + 1) * sizeof *iv) : NULL;
        double *dv = type == AQ_CSV_T_FLOAT ? malloc(((size_t)rows + 1) * sizeof *dv) : NULL;
        if (!iv && !dv)
            return AQ_ENOMEM;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        o->na = 0;
        for (uint32_t r = 0; r < rows; r++) {
            uint8_t k = x->kind[r];
            int64_t i = 0;
            double d = 0;
            bool ok = false;
            if (k != AQ_CSV_V_NA) {
                if (type == AQ_CSV_T_INT) {
                    ok = k == AQ_CSV_V_INT;
                    i = x->val[r].i;
                } else if (type == AQ_CSV_T_TIME) {
                    ok = k == AQ_CSV_V_TIME;
                    i = x->val[r].i;
                } else {
                    ok = k == AQ_CSV_V_INT || k == AQ_CSV_V_FLOAT;
                    d = k == AQ_CSV_V_INT ? (double)x->val[r].i : x->val[r].d;
                }
                if (!ok)
                    o->invalid++;
            }
            if (!ok) {
                set_na(c, r);
                o->na++;
                if (dv)
                    dv[r] = 0;
                else
                    iv[r] = 0;
                continue;
            }
            if (dv) {
                dv[r] = d;
            } else {
                iv[r] = i;
                lo = i < lo ? i : lo;
                hi = i > hi ? i : hi;
            }
        }
        if (type == AQ_CSV_T_INT) {
            c->width = o->na == rows ? 1 : int_width(lo, hi);
            c->vals = malloc(((size_t)rows + 1) * c->width);
            if (!c->vals) {
                free(iv);
                return AQ_ENOMEM;
            }
            narrow_ints(c->vals, c->width, iv, rows);
            free(iv);
        } else {
            c->width = 8;
            c->vals = dv ? (void *)dv : (void *)iv;
            if (type == AQ_CSV_T_TIME && (o->tshape & AQ_CSV_TS_TIME)) {
                /* one count of fraction digits in this chunk: that count; several: as few as
                 * each value needs (".42" beside ".533"), which gives back what writers that
                 * drop trailing zeros wrote; dates alone beside: midnight is a date */
                uint8_t fr = x->tfrac;
                c->tshape = o->tshape | (o->tdates ? AQ_CSV_TS_DATES : 0);
                if (fr && !(fr & (fr - 1)))
                    c->tshape |= AQ_CSV_TS_FRAC(__builtin_ctz(fr));
                else if (o->tshape & AQ_CSV_TS_SEC)
                    c->tshape |= AQ_CSV_TS_TRIM;
            }
        }
        return 0;
    }
    case AQ_CSV_T_CAT:
    case AQ_CSV_T_STR: {
        sref *refs = malloc(((size_t)rows + 1) * sizeof *refs);
        if (!refs)
            return AQ_ENOMEM;
        o->na = 0;
        for (uint32_t r = 0; r < rows; r++) {
            fidx f = *fcell(x, r, j);
            /* observe_col classified the column's values already (NA: padded or an NA) */
            if (x->hashed ? x->kind[r] == AQ_CSV_V_NA
                          : f_pad(f) || aq_csv_is_na(f_ptr(x, f), f_len(f), f_quoted(f), &x->na)) {
                refs[r] = (sref){NULL, 0};
                set_na(c, r);
                o->na++;
            } else {
                refs[r] = (sref){f_ptr(x, f), (uint32_t)f_len(f)};
            }
        }
        int rc = build_text(c, refs, x->hashed ? x->hash : NULL, rows,
                            x->hashed ? (uint32_t)fmin(aq_csv_obs_distinct(o), (double)rows) : 0,
                            type == AQ_CSV_T_CAT, forced);
        free(refs);
        o->kind = c->type;
        return rc;
    }
    }
    return AQ_EINVAL;
}

/* Whether the field is NA (aq_csv_is_na), deciding most fields inline: a field of a length no
 * spelling has, with no blank at either end, is a value. */
static inline bool is_na_quick(const char *p, size_t len, bool quoted, const aq_csv_na *na) {
    if (len && !quoted && !(na->lens >> (len < 63 ? len : 63) & 1) && p[0] != ' ' && p[0] != '\t' &&
        p[len - 1] != ' ' && p[len - 1] != '\t')
        return false;
    return aq_csv_is_na(p, len, quoted, na);
}

/* Looks at every value of column j: fills obs (counts, kinds, min/max, sketch) and answers the
 * chunk's own type. text_ok: the chunk will be built as text once a value is text (its type is
 * not forced to a number or a time); then, from the first text value on, the rest are only told
 * NA or text and hashed: a column with text is categorical or string whatever else it holds
 * (aq_csv_obs_final), so classifying them would change nothing but the numbers' min and max,
 * which no one reads for a text column. */
static aq_csv_type observe_col(pctx *x, uint32_t j, bool text_ok, aq_csv_obs *o,
                               uint32_t *ndistinct) {
    memset(o, 0, sizeof *o);
    o->rows = x->rows;
    aq_csv_kmv_reset(x->kmv);
    x->hashed = true;
    unsigned seen = 0;                    /* bit k: a value of kind k */
    double mn = INFINITY, mx = -INFINITY; /* of the numbers and times (a NaN compares false) */
    uint8_t tshape = 0; /* of the times, and whether they came in several shapes */
    bool tseen = false, tmixed = false, tdates = false;
    x->tfrac = 0;
    /* in locals: the loop's byte stores to x->kind could alias them, so each would be loaded
     * again at every value */
    const bool dec = x->decimal == ',';
    const aq_csv_na *na = &x->na;
    for (size_t r = 0; r < x->rows; r++) {
        fidx f = *fcell(x, r, j);
        x->kind[r] = AQ_CSV_V_NA;
        if (f_pad(f)) {
            o->na++;
            continue;
        }
        const char *p = f_ptr(x, f);
        size_t len = f_len(f);
        int64_t iv = 0;
        double dv = 0;
        aq_csv_vkind k = dec ? aq_csv_classify_dec(p, len, f_quoted(f), na, ',', &iv, &dv)
                             : aq_csv_classify(p, len, f_quoted(f), na, &iv, &dv);
        x->kind[r] = (uint8_t)k;
        /* bit 5: a NaN the file wrote, which makes a column float only beside real numbers */
        unsigned bit = 1u << k;
        if (k == AQ_CSV_V_FLOAT) {
            x->val[r].d = dv;
            if (dv != dv)
                bit = 1u << 5;
        } else {
            x->val[r].i = iv;
        }
        if (k == AQ_CSV_V_NA) {
            o->na++;
            continue;
        }
        uint64_t h = aq_csv_hash(p, len);
        x->hash[r] = h;
        aq_csv_kmv_add(x->kmv, h);
        seen |= bit;
        if (k == AQ_CSV_V_TEXT && text_ok) {
            for (r++; r < x->rows; r++) {
                fidx g = *fcell(x, r, j);
                /* A pad field has no bytes: its offset points nowhere, not even for arithmetic. */
                const char *q = f_pad(g) ? "" : f_ptr(x, g);
                size_t n = f_pad(g) ? 0 : f_len(g);
                if (f_pad(g) || is_na_quick(q, n, f_quoted(g), na)) {
                    x->kind[r] = AQ_CSV_V_NA;
                    o->na++;
                    continue;
                }
                x->kind[r] = AQ_CSV_V_TEXT;
                uint64_t hg = aq_csv_hash(q, n);
                x->hash[r] = hg;
                aq_csv_kmv_add(x->kmv, hg);
            }
            break;
        }
        if (k == AQ_CSV_V_TIME) { /* its shape came in dv; fraction digits may vary */
            uint8_t sh = (uint8_t)dv;
            if (sh & AQ_CSV_TS_TIME) {
                x->tfrac |= (uint8_t)(1u << AQ_CSV_TS_FRAC_OF(sh));
                sh &= (uint8_t)~AQ_CSV_TS_FRAC_MASK;
                tmixed |= tseen && sh != tshape;
                tshape = sh;
                tseen = true;
            } else {
                tdates = true;
            }
            dv = 0;
        }
        if (k != AQ_CSV_V_TEXT) { /* without branches: which way a value goes is data */
            double v = k == AQ_CSV_V_TIME ? (double)iv : dv;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
    /* bit 6: an integer a double cannot hold exactly (beyond 2^53). Rare, so looked for only when
     * the range says it may be there: an integer just past 2^53 rounds to 2^53 as a double, so
     * the range reaching 2^53 is the sign to read the integers again. */
    if ((seen >> AQ_CSV_V_INT & 1) && (mx >= 0x1p53 || mn <= -0x1p53))
        for (size_t r = 0; r < x->rows; r++)
            if (x->kind[r] == AQ_CSV_V_INT && (uint64_t)x->val[r].i + (1ull << 53) > (1ull << 54))
                seen |= 1u << 6;
    bool ints = seen >> AQ_CSV_V_INT & 1, floats = seen >> AQ_CSV_V_FLOAT & 1,
         times = seen >> AQ_CSV_V_TIME & 1, texts = seen >> AQ_CSV_V_TEXT & 1, nans = seen >> 5 & 1;
    o->numeric = ints || floats;
    o->fractional = floats || nans;
    o->time = times;
    o->text = texts;
    o->nan = nans;
    o->bigint = seen >> 6 & 1;
    o->tshape = tshape;
    o->tmixed = tmixed;
    o->tdates = tdates;
    if (o->numeric || o->time) {
        o->min = mn;
        o->max = mx;
    }
    aq_csv_kmv_finish(x->kmv, o);
    *ndistinct = o->nsketch;
    if (texts || (times && (ints || floats || nans)))
        return AQ_CSV_T_CAT;
    if (times)
        return AQ_CSV_T_TIME;
    if (floats || nans)
        return AQ_CSV_T_FLOAT; /* NaN alone: float here; the frame decides (aq_csv_obs_final) */
    if (ints)
        return AQ_CSV_T_INT;
    return AQ_CSV_T_NONE;
}

int aq_csv_parse(const aq_csv_piece *pc, const aq_csv_setup *s, const aq_csv_type *force,
                 const bool *str_hint, aq_csv_col **out, aq_csv_err *err) {
    if (!pc || !s || !out || s->ncols == 0)
        return AQ_EINVAL;
    if (pc->len >= F_ARENA) {
        aq_csv_err_set(err, pc->first_line, "piece of %zu bytes is larger than 2 GiB", pc->len);
        return AQ_ETOOBIG;
    }
    pctx x;
    memset(&x, 0, sizeof x);
    x.piece = pc->p;
    x.ncols = s->ncols;
    x.na = aq_csv_setup_na(s);
    x.skip = s->skip;
    x.stop_line = s->stop_line;
    x.decimal = s->decimal;
    aq_csv_col *cols = calloc(s->ncols, sizeof *cols);
    if (!cols)
        return AQ_ENOMEM;
    int rc = index_piece(&x, pc, s, err);
    if (rc == 0) {
        x.kind = malloc(x.rows + 1);
        x.val = malloc((x.rows + 1) * sizeof *x.val);
        x.hash = malloc((x.rows + 1) * sizeof *x.hash);
        x.kmv = malloc(sizeof *x.kmv);
        if (!x.kind || !x.val || !x.hash || !x.kmv)
            rc = AQ_ENOMEM;
        else
            aq_csv_kmv_init(x.kmv);
    }
    for (uint32_t j = 0; j < s->ncols && rc == 0; j++) {
        if (str_hint && str_hint[j] && !force && !s->forced[j]) {
            /* string in the frame whatever this piece holds: no types, no sketch, no domain */
            aq_csv_obs *o = &cols[j].obs;
            memset(o, 0, sizeof *o);
            o->rows = x.rows;
            x.hashed = false;
            rc = build_col(&x, j, AQ_CSV_T_STR, false, &cols[j]);
            o->text = o->na < o->rows;
            continue;
        }
        uint32_t nd;
        aq_csv_type ft = force ? force[j] : s->forced[j] ? s->types[j] : AQ_CSV_T_CAT;
        aq_csv_type own =
            observe_col(&x, j, ft == AQ_CSV_T_CAT || ft == AQ_CSV_T_STR, &cols[j].obs, &nd);
        aq_csv_type t = force ? force[j] : s->forced[j] ? s->types[j] : own;
        if ((unsigned)t > AQ_CSV_T_STR) {
            rc = AQ_EINVAL;
            break;
        }
        if (t == AQ_CSV_T_NONE && cols[j].obs.na != x.rows)
            t = own; /* forcing NONE cannot drop values */
        if (t == AQ_CSV_T_CAT && !force && !s->forced[j] && nd >= AQ_CSV_SKETCH &&
            aq_csv_obs_distinct(&cols[j].obs) > 4.0 * AQ_CSV_CAT_MAX)
            t = AQ_CSV_T_STR; /* surely too many levels: skip building the table */
        rc = build_col(&x, j, t, force || s->forced[j], &cols[j]);
    }
    free(x.f);
    free(x.arena);
    free(x.kind);
    free(x.val);
    free(x.hash);
    free(x.kmv);
    if (rc) {
        aq_csv_cols_free(cols, s->ncols);
        return rc;
    }
    cols[0].obs.repaired = x.repaired;
    cols[0].obs.nrepair = x.nrepair;
    memcpy(cols[0].obs.repair_line, x.repair_line, x.nrepair * sizeof *x.repair_line);
    *out = cols;
    return 0;
}

int aq_csv_col_widen(aq_csv_col *c, aq_csv_type to) {
    if (c->type == to)
        return 0;
    uint32_t rows = c->rows;
    if (c->type == AQ_CSV_T_NONE) {
        switch (to) {
        case AQ_CSV_T_INT:
            c->width = 1;
            c->vals = calloc((size_t)rows + 1, 1);
            break;
        case AQ_CSV_T_FLOAT:
        case AQ_CSV_T_TIME:
            c->width = 8;
            c->vals = calloc((size_t)rows + 1, 8);
            break;
        case AQ_CSV_T_CAT:
            c->vals = calloc((size_t)rows + 1, sizeof(uint32_t));
            c->text.off = calloc(1, sizeof(uint32_t));
            c->text.bytes = malloc(1);
            c->text.n = 0;
            break;
        case AQ_CSV_T_STR:
            c->text.off = calloc((size_t)rows + 1, sizeof(uint32_t));
            c->text.bytes = malloc(1);
            c->text.n = rows;
            break;
        default:
            return AQ_EINVAL;
        }
        if ((to != AQ_CSV_T_STR && !c->vals) ||
            ((to == AQ_CSV_T_CAT || to == AQ_CSV_T_STR) && (!c->text.off || !c->text.bytes))) {
            free(c->vals);
            free(c->text.off);
            free(c->text.bytes);
            c->vals = NULL;
            c->text.off = NULL;
            c->text.bytes = NULL;
            return AQ_ENOMEM;
        }
        c->type = to;
        c->obs.kind = to;
        return 0;
    }
    if (c->type == AQ_CSV_T_INT && to == AQ_CSV_T_FLOAT) {
        double *d = calloc((size_t)rows + 1, sizeof *d);
        if (!d)
            return AQ_ENOMEM;
        for (uint32_t r = 0; r < rows; r++)
            d[r] = aq_csv_col_is_na(c, r) ? 0 : (double)aq_csv_col_int(c, r);
        free(c->vals);
        c->vals = d;
        c->width = 8;
        c->type = to;
        c->obs.kind = to;
        return 0;
    }
    if (c->type == AQ_CSV_T_CAT && to == AQ_CSV_T_STR) {
        sref *refs = malloc(((size_t)rows + 1) * sizeof *refs);
        if (!refs)
            return AQ_ENOMEM;
        for (uint32_t r = 0; r < rows; r++) {
            size_t len = 0;
            const char *p = aq_csv_col_str(c, r, &len);
            refs[r] = (sref){p, (uint32_t)len};
        }
        aq_csv_col n;
        memset(&n, 0, sizeof n);
        int rc = build_text(&n, refs, NULL, rows, 0, false, false);
        free(refs);
        if (rc) {
            aq_csv_col_free(&n);
            return rc;
        }
        free(c->vals);
        free(c->text.off);
        free(c->text.bytes);
        c->vals = NULL;
        c->text = n.text;
        c->width = 0;
        c->type = to;
        c->obs.kind = to;
        return 0;
    }
    return AQ_EINVAL;
}
