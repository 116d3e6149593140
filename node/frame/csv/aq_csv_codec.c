/* Wire and storage form of column chunks and type observations. */
#include "aq_csv_col.h"

#include "aq_bytes.h"
#include "aq_envelope.h"
#include "aq_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "aq_xxh.h"

#define COL_MAGIC     0x43435141u /* "AQCC" */
#define OBS_MAGIC     0x4F435141u /* "AQCO" */
#define CODEC_VERSION 1
#define OBS_VERSION   2 /* 2: repairs, the NaN and big-integer flags, time shapes */

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

static uint8_t code_width(uint32_t nlev) {
    return nlev <= 0x100 ? 1 : nlev <= 0x10000 ? 2 : 4;
}

static void put_strs_offsets(aq_wr *w, const aq_csv_strs *s, uint32_t n) {
    if (!aq_wr_reserve(w, ((size_t)n + 1) * 4))
        return;
    uint8_t *o = w->p + w->len;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(o, s->off, ((size_t)n + 1) * 4);
#else
    for (uint32_t i = 0; i <= n; i++)
        for (int b = 0; b < 4; b++)
            o[4 * i + b] = (uint8_t)(s->off[i] >> (8 * b));
#endif
    w->len += ((size_t)n + 1) * 4;
}

/* rows values of width bytes each, little-endian, NA rows as 0: one copy of the array (values are
 * kept in host order), then the NA rows cleared, whatever they held. */
static void put_values(aq_wr *w, const aq_csv_col *c, const void *vals, uint8_t width) {
    size_t n = (size_t)c->rows * width;
    if (!aq_wr_reserve(w, n))
        return;
    uint8_t *o = w->p + w->len;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(o, vals, n);
#else
    for (uint32_t r = 0; r < c->rows; r++) {
        uint64_t v = 0;
        memcpy((uint8_t *)&v + 8 - width, (const uint8_t *)vals + (size_t)r * width, width);
        for (int b = 0; b < width; b++)
            o[(size_t)r * width + b] = (uint8_t)(v >> (8 * b));
    }
#endif
    for (uint32_t i = 0; i < (c->rows + 7) / 8; i++)
        if (c->na[i])
            for (uint32_t r = i * 8; r < i * 8 + 8 && r < c->rows; r++)
                if (aq_csv_col_is_na(c, r))
                    memset(o + (size_t)r * width, 0, width);
    w->len += n;
}

/* CAT codes narrowed to cw bytes, little-endian, NA rows as 0. */
static void put_codes(aq_wr *w, const aq_csv_col *c, uint8_t cw) {
    size_t n = (size_t)c->rows * cw;
    if (!aq_wr_reserve(w, n))
        return;
    uint8_t *o = w->p + w->len;
    const uint32_t *codes = c->vals;
    for (uint32_t r = 0; r < c->rows; r++) {
        uint32_t v = aq_csv_col_is_na(c, r) ? 0 : codes[r];
        switch (cw) {
        case 1:
            o[r] = (uint8_t)v;
            break;
        case 2:
            o[2 * (size_t)r] = (uint8_t)v;
            o[2 * (size_t)r + 1] = (uint8_t)(v >> 8);
            break;
        default:
            for (int b = 0; b < 4; b++)
                o[4 * (size_t)r + b] = (uint8_t)(v >> (8 * b));
        }
    }
    w->len += n;
}

int aq_csv_col_encode_room(const aq_csv_col *c, size_t room, uint8_t **buf, size_t *len) {
    if ((unsigned)c->type > AQ_CSV_T_STR || room > SIZE_MAX / 4)
        return AQ_EINVAL;
    aq_wr w;
    aq_wr_init(&w);
    /* the whole encoding at once, so the writes below never move it */
    size_t est = 32 + ((size_t)c->rows + 7) / 8 + (size_t)c->rows * 8 + 8;
    if (c->type == AQ_CSV_T_CAT || c->type == AQ_CSV_T_STR) {
        uint32_t n = c->type == AQ_CSV_T_CAT ? c->text.n : c->rows;
        est += ((size_t)n + 1) * 4 + c->text.off[n];
    }
    if (!aq_wr_reserve(&w, room + est)) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    w.len = room; /* the caller's, written later: not part of the encoding nor its checksum */
    aq_env_begin(&w, COL_MAGIC, CODEC_VERSION);
    aq_wr_u8(&w, (uint8_t)c->type);
    aq_wr_u8(&w, c->type == AQ_CSV_T_INT ? c->width : 0);
    aq_wr_u8(&w, c->type == AQ_CSV_T_TIME ? c->tshape : 0); /* 0 before shapes were kept */
    aq_wr_u32(&w, c->rows);
    aq_wr_bytes(&w, c->na, ((size_t)c->rows + 7) / 8);
    switch (c->type) {
    case AQ_CSV_T_NONE:
        break;
    case AQ_CSV_T_INT:
        put_values(&w, c, c->vals, c->width);
        break;
    case AQ_CSV_T_FLOAT:
    case AQ_CSV_T_TIME:
        put_values(&w, c, c->vals, 8);
        break;
    case AQ_CSV_T_CAT: {
        uint8_t cw = code_width(c->text.n);
        aq_wr_u32(&w, c->text.n);
        aq_wr_u32(&w, c->text.off[c->text.n]);
        put_strs_offsets(&w, &c->text, c->text.n);
        aq_wr_bytes(&w, c->text.bytes, c->text.off[c->text.n]);
        aq_wr_u8(&w, cw);
        put_codes(&w, c, cw);
        break;
    }
    case AQ_CSV_T_STR:
        aq_wr_u32(&w, c->text.off[c->rows]);
        put_strs_offsets(&w, &c->text, c->rows);
        aq_wr_bytes(&w, c->text.bytes, c->text.off[c->rows]);
        break;
    }
    if (w.ok)
        aq_wr_u64(&w, XXH3_64bits(w.p + room, w.len - room));
    if (!w.ok) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    *buf = w.p;
    *len = w.len - room;
    return 0;
}

int aq_csv_col_encode(const aq_csv_col *c, uint8_t **out, size_t *len) {
    return aq_csv_col_encode_room(c, 0, out, len);
}

/* 0, AQ_EPROTO or AQ_ENOMEM. Lengths are checked against the input before anything is allocated. */
static int read_strs(aq_rd *r, aq_csv_strs *s, uint32_t n, uint32_t nbytes, bool sorted) {
    if (!r->ok || (n + 1ull) * 4 + nbytes > r->n)
        return AQ_EPROTO;
    s->off = malloc(((size_t)n + 1) * sizeof *s->off);
    s->bytes = malloc((size_t)nbytes + 1);
    if (!s->off || !s->bytes)
        return AQ_ENOMEM;
    s->n = n;
    for (uint32_t i = 0; i <= n; i++) {
        s->off[i] = aq_rd_u32(r);
        if (i == 0 ? s->off[0] != 0 : s->off[i] < s->off[i - 1])
            return AQ_EPROTO;
    }
    if (s->off[n] != nbytes)
        return AQ_EPROTO;
    const uint8_t *b = aq_rd_bytes(r, nbytes);
    if (!b)
        return AQ_EPROTO;
    memcpy(s->bytes, b, nbytes);
    if (sorted)
        for (uint32_t i = 1; i < n; i++) {
            uint32_t la = s->off[i] - s->off[i - 1], lb = s->off[i + 1] - s->off[i];
            int cmp = memcmp(s->bytes + s->off[i - 1], s->bytes + s->off[i], la < lb ? la : lb);
            if (cmp > 0 || (cmp == 0 && la >= lb))
                return AQ_EPROTO; /* the domain must be strictly increasing */
        }
    return r->ok ? 0 : AQ_EPROTO;
}

/* Value i (width w, little-endian) of src, zero-extended. */
static inline uint64_t le_uint(const uint8_t *src, size_t i, uint8_t w) {
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, src + i * w, w);
#else
    for (uint8_t b = 0; b < w; b++)
        v |= (uint64_t)src[i * w + b] << (8 * b);
#endif
    return v;
}

/* True when every NA row of c holds 0 in vals (element width w). Rows are checked a bitmap byte
 * at a time so a column without NA costs one pass over the bitmap. */
static bool na_rows_zero(const aq_csv_col *c, const uint8_t *src, uint8_t w) {
    for (uint32_t b = 0; b < (c->rows + 7) / 8; b++) {
        uint8_t m = c->na[b];
        while (m) {
            uint32_t i = b * 8 + (uint32_t)__builtin_ctz(m);
            m &= (uint8_t)(m - 1);
            if (le_uint(src, i, w) != 0)
                return false;
        }
    }
    return true;
}

/* The rows values of an INT, FLOAT or TIME column (width c->width, little-endian, INT signed)
 * from src into c->vals, checked: NA rows hold 0, and a FLOAT NaN is the one quiet NaN. */
static bool load_values(aq_csv_col *c, const uint8_t *src, uint64_t nacount) {
    uint8_t w = c->width;
    if (nacount && !na_rows_zero(c, src, w))
        return false;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The stored layout is the host's: two's complement ints and IEEE doubles, same width. */
    memcpy(c->vals, src, (size_t)c->rows * w);
#else
    for (uint32_t i = 0; i < c->rows; i++) {
        uint64_t v = le_uint(src, i, w);
        switch (w) {
        case 1:
            ((uint8_t *)c->vals)[i] = (uint8_t)v;
            break;
        case 2:
            ((uint16_t *)c->vals)[i] = (uint16_t)v;
            break;
        case 4:
            ((uint32_t *)c->vals)[i] = (uint32_t)v;
            break;
        default:
            ((uint64_t *)c->vals)[i] = v;
        }
    }
#endif
    if (c->type == AQ_CSV_T_FLOAT) {
        /* a NaN the file wrote is the one quiet NaN; NA is in the bitmap */
        const uint64_t *u = c->vals;
        bool bad = false;
        for (uint32_t i = 0; i < c->rows; i++)
            bad |= (u[i] & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull &&
                   u[i] != 0x7FF8000000000000ull;
        if (bad)
            return false;
    }
    return true;
}

/* The codes (width cw) of a CAT column into c->vals as uint32, checked: NA rows hold 0, the
 * others index the nlev levels. */
static bool load_codes(aq_csv_col *c, const uint8_t *src, uint8_t cw, uint32_t nlev,
                       uint64_t nacount) {
    if (nacount && !na_rows_zero(c, src, cw))
        return false;
    uint32_t *dst = c->vals;
    uint32_t max = 0;
    switch (cw) {
    case 1:
        for (uint32_t i = 0; i < c->rows; i++) {
            dst[i] = src[i];
            max = dst[i] > max ? dst[i] : max;
        }
        break;
    case 2:
        for (uint32_t i = 0; i < c->rows; i++) {
            dst[i] = (uint32_t)le_uint(src, i, 2);
            max = dst[i] > max ? dst[i] : max;
        }
        break;
    default:
        for (uint32_t i = 0; i < c->rows; i++) {
            dst[i] = (uint32_t)le_uint(src, i, 4);
            max = dst[i] > max ? dst[i] : max;
        }
    }
    /* NA rows hold 0, so the largest code is a non-NA row's unless every row is NA. */
    return c->rows == 0 || nacount == c->rows || max < nlev;
}

int aq_csv_col_decode(const uint8_t *p, size_t len, aq_csv_col *out) {
    aq_rd r;
    uint8_t ver;
    if (aq_env_open(p, len, COL_MAGIC, &r, &ver) != 0)
        return AQ_EPROTO;
    aq_csv_col c;
    memset(&c, 0, sizeof c);
    int rc = AQ_EPROTO;
    uint8_t type = aq_rd_u8(&r), width = aq_rd_u8(&r), resv = aq_rd_u8(&r);
    c.rows = aq_rd_u32(&r);
    if (!r.ok || ver != CODEC_VERSION || type > AQ_CSV_T_STR || (resv && type != AQ_CSV_T_TIME) ||
        !aq_csv_time_shape_ok(resv))
        goto fail;
    c.tshape = resv;
    c.type = (aq_csv_type)type;
    size_t nab = ((size_t)c.rows + 7) / 8;
    const uint8_t *na = aq_rd_bytes(&r, nab);
    if (!na || ((c.rows & 7) && (na[nab - 1] >> (c.rows & 7))))
        goto fail;
    rc = AQ_ENOMEM;
    if (!(c.na = malloc(nab + 1)))
        goto fail;
    memcpy(c.na, na, nab);
    rc = AQ_EPROTO;
    uint64_t nacount = 0;
    for (size_t i = 0; i < nab; i++)
        nacount += (uint64_t)__builtin_popcount(c.na[i]);
    switch (c.type) {
    case AQ_CSV_T_NONE:
        if (width || nacount != c.rows)
            goto fail;
        break;
    case AQ_CSV_T_INT:
    case AQ_CSV_T_FLOAT:
    case AQ_CSV_T_TIME: {
        if (c.type == AQ_CSV_T_INT ? (width != 1 && width != 2 && width != 4 && width != 8)
                                   : width != 0)
            goto fail;
        c.width = c.type == AQ_CSV_T_INT ? width : 8;
        if ((uint64_t)c.rows * c.width > r.n)
            goto fail;
        rc = AQ_ENOMEM;
        if (!(c.vals = calloc((size_t)c.rows + 1, c.width)))
            goto fail;
        rc = AQ_EPROTO;
        const uint8_t *src = aq_rd_bytes(&r, (size_t)c.rows * c.width);
        if (!src || !load_values(&c, src, nacount))
            goto fail;
        break;
    }
    case AQ_CSV_T_CAT: {
        uint32_t nlev = aq_rd_u32(&r), nbytes = aq_rd_u32(&r);
        if (width || !r.ok || nlev == UINT32_MAX)
            goto fail;
        if ((rc = read_strs(&r, &c.text, nlev, nbytes, true)) != 0)
            goto fail;
        rc = AQ_EPROTO;
        uint8_t cw = aq_rd_u8(&r);
        if (!r.ok || cw != code_width(nlev) || (uint64_t)c.rows * cw > r.n)
            goto fail;
        rc = AQ_ENOMEM;
        if (!(c.vals = calloc((size_t)c.rows + 1, sizeof(uint32_t))))
            goto fail;
        rc = AQ_EPROTO;
        const uint8_t *src = aq_rd_bytes(&r, (size_t)c.rows * cw);
        if (!src || !load_codes(&c, src, cw, nlev, nacount))
            goto fail;
        break;
    }
    case AQ_CSV_T_STR: {
        uint32_t nbytes = aq_rd_u32(&r);
        if (width || !r.ok || c.rows == UINT32_MAX)
            goto fail;
        if ((rc = read_strs(&r, &c.text, c.rows, nbytes, false)) != 0)
            goto fail;
        rc = AQ_EPROTO;
        for (uint32_t i = 0; i < c.rows; i++)
            if (aq_csv_col_is_na(&c, i) && c.text.off[i + 1] != c.text.off[i])
                goto fail;
        break;
    }
    }
    if (!aq_rd_done(&r))
        goto fail;
    c.obs.kind = c.type;
    c.obs.rows = c.rows;
    c.obs.na = nacount;
    *out = c;
    return 0;
fail:
    aq_csv_col_free(&c);
    return rc;
}

int aq_csv_obs_encode(const aq_csv_obs *o, uint8_t **out, size_t *len) {
    aq_wr w;
    aq_wr_init(&w);
    aq_env_begin(&w, OBS_MAGIC, OBS_VERSION);
    aq_wr_u8(&w, (uint8_t)o->kind);
    aq_wr_u8(&w, (uint8_t)(o->fractional | o->numeric << 1 | o->time << 2 | o->text << 3 |
                           o->nan << 4 | o->bigint << 5));
    aq_wr_u64(&w, o->rows);
    aq_wr_u64(&w, o->na);
    aq_wr_u64(&w, o->invalid);
    aq_wr_u64(&w, dbits(o->min));
    aq_wr_u64(&w, dbits(o->max));
    aq_wr_u32(&w, o->nsketch);
    for (uint32_t i = 0; i < o->nsketch && i < AQ_CSV_SKETCH; i++)
        aq_wr_u64(&w, o->sketch[i]);
    aq_wr_u8(&w, o->tshape);
    aq_wr_u8(&w, (uint8_t)(o->tmixed | o->tdates << 1));
    aq_wr_u64(&w, o->repaired);
    aq_wr_u32(&w, o->nrepair);
    for (uint32_t i = 0; i < o->nrepair && i < AQ_CSV_REPAIR_LINES; i++)
        aq_wr_u64(&w, o->repair_line[i]);
    return aq_env_finish(&w, out, len);
}

int aq_csv_obs_decode(const uint8_t *p, size_t len, aq_csv_obs *out) {
    aq_rd r;
    uint8_t ver;
    if (aq_env_open(p, len, OBS_MAGIC, &r, &ver) != 0)
        return AQ_EPROTO;
    aq_csv_obs *o = calloc(1, sizeof *o);
    if (!o)
        return AQ_ENOMEM;
    int rc = AQ_EPROTO;
    uint8_t kind = aq_rd_u8(&r), flags = aq_rd_u8(&r);
    o->rows = aq_rd_u64(&r);
    o->na = aq_rd_u64(&r);
    o->invalid = aq_rd_u64(&r);
    o->min = bitsd(aq_rd_u64(&r));
    o->max = bitsd(aq_rd_u64(&r));
    o->nsketch = aq_rd_u32(&r);
    if (!r.ok || ver != OBS_VERSION || kind > AQ_CSV_T_STR || flags > 63 || o->na > o->rows ||
        o->nsketch > AQ_CSV_SKETCH)
        goto out;
    o->kind = (aq_csv_type)kind;
    o->fractional = flags & 1;
    o->numeric = flags & 2;
    o->time = flags & 4;
    o->text = flags & 8;
    o->nan = flags & 16;
    o->bigint = flags & 32;
    for (uint32_t i = 0; i < o->nsketch; i++) {
        o->sketch[i] = aq_rd_u64(&r);
        if (i && r.ok && o->sketch[i] <= o->sketch[i - 1])
            goto out;
    }
    o->tshape = aq_rd_u8(&r);
    uint8_t tm = aq_rd_u8(&r);
    if (!r.ok || tm > 3 || !aq_csv_time_shape_ok(o->tshape))
        goto out;
    o->tmixed = tm & 1;
    o->tdates = tm & 2;
    o->repaired = aq_rd_u64(&r);
    o->nrepair = aq_rd_u32(&r);
    if (!r.ok || o->nrepair > AQ_CSV_REPAIR_LINES || o->nrepair > o->repaired)
        goto out;
    for (uint32_t i = 0; i < o->nrepair; i++) {
        o->repair_line[i] = aq_rd_u64(&r);
        if (i && r.ok && o->repair_line[i] <= o->repair_line[i - 1])
            goto out;
    }
    if (!aq_rd_done(&r))
        goto out;
    *out = *o;
    rc = 0;
out:
    free(o);
    return rc;
}
