/* Wire form of a parse setup. */
#include "aq_csv_setup.h"

#include "aq_bytes.h"
#include "aq_envelope.h"
#include "aq_error.h"

#include <stdlib.h>
#include <string.h>
#include "aq_xxh.h"

#define SETUP_MAGIC   0x53435141u /* "AQCS" */
#define SETUP_VERSION 2           /* 2: escape, strict, skip, stop line; 1 is still read */
/* Bounds on what a decoder accepts, far above real files, so a hostile length allocates little. */
#define SETUP_MAX_COLS (1u << 24)
#define SETUP_MAX_NA   4096u
#define SETUP_MAX_STR  (1u << 20)

static void put_str(aq_wr *w, const char *s) {
    size_t n = strlen(s);
    aq_wr_u32(w, (uint32_t)n);
    aq_wr_bytes(w, s, n);
}

int aq_csv_setup_encode(const aq_csv_setup *s, uint8_t **out, size_t *len) {
    if (s->ncols > SETUP_MAX_COLS || s->nna > SETUP_MAX_NA)
        return AQ_EINVAL;
    aq_wr w;
    aq_wr_init(&w);
    aq_env_begin(&w, SETUP_MAGIC, SETUP_VERSION);
    aq_wr_u8(&w, (uint8_t)s->d.sep);
    aq_wr_u8(&w, (uint8_t)s->d.quote);
    aq_wr_u8(&w, (uint8_t)s->d.comment);
    aq_wr_u8(&w, (uint8_t)(s->header | s->fill << 1 | s->strict << 2 | s->d.skipsp << 3 |
                           s->cr_rows << 4));
    aq_wr_u8(&w, (uint8_t)s->d.escape);
    aq_wr_u8(&w, (uint8_t)s->decimal);
    aq_wr_u64(&w, s->skip);
    aq_wr_u64(&w, s->stop_line);
    aq_wr_u32(&w, s->ncols);
    for (uint32_t j = 0; j < s->ncols; j++) {
        aq_wr_u8(&w, (uint8_t)(s->types[j] | (s->forced[j] ? 0x80 : 0)));
        put_str(&w, s->names[j]);
    }
    aq_wr_u32(&w, (uint32_t)s->nna);
    for (size_t i = 0; i < s->nna; i++)
        put_str(&w, s->na[i]);
    return aq_env_finish(&w, out, len);
}

/* NULL on a short read, a NUL inside, or an over-long string; *nomem on allocation failure. */
static char *get_str(aq_rd *r, bool *nomem) {
    uint32_t n = aq_rd_u32(r);
    if (!r->ok || n > SETUP_MAX_STR || n > r->n)
        return NULL;
    const uint8_t *p = aq_rd_bytes(r, n);
    if (!p || memchr(p, 0, n))
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        *nomem = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int aq_csv_setup_decode(const uint8_t *p, size_t len, aq_csv_setup *out) {
    aq_rd r;
    uint8_t ver;
    if (aq_env_open(p, len, SETUP_MAGIC, &r, &ver) != 0)
        return AQ_EPROTO;
    aq_csv_setup s;
    memset(&s, 0, sizeof s);
    bool nomem = false;
    s.d.sep = (char)aq_rd_u8(&r);
    s.d.quote = (char)aq_rd_u8(&r);
    s.d.comment = (char)aq_rd_u8(&r);
    uint8_t flags = aq_rd_u8(&r);
    if (ver >= 2) {
        s.d.escape = (char)aq_rd_u8(&r);
        s.decimal = (char)aq_rd_u8(&r);
        s.skip = aq_rd_u64(&r);
        s.stop_line = aq_rd_u64(&r);
    }
    uint32_t ncols = aq_rd_u32(&r);
    if (!r.ok || ver < 1 || ver > SETUP_VERSION || flags > 31 || (ver == 1 && flags > 3) ||
        (ver >= 2 && s.decimal != '.' && s.decimal != ',') || ncols == 0 || s.d.escape == '\n' ||
        (s.d.escape && (s.d.escape == s.d.sep || s.d.escape == s.d.quote)) ||
        ncols > SETUP_MAX_COLS || ncols > r.n / 5 || !s.d.sep || s.d.sep == '\n' ||
        s.d.sep == '\r' || s.d.sep == s.d.quote)
        return AQ_EPROTO;
    if (ver == 1)
        s.decimal = '.';
    s.header = flags & 1;
    s.fill = flags & 2;
    s.strict = flags & 4;
    s.d.skipsp = flags & 8;
    s.cr_rows = flags & 16;
    s.names = calloc(ncols, sizeof *s.names);
    s.types = calloc(ncols, sizeof *s.types);
    s.forced = calloc(ncols, sizeof *s.forced);
    s.ncols = ncols;
    if (!s.names || !s.types || !s.forced) {
        nomem = true;
        goto bad;
    }
    for (uint32_t j = 0; j < ncols; j++) {
        uint8_t ty = aq_rd_u8(&r);
        if (!r.ok || (ty & 0x7F) > AQ_CSV_T_STR)
            goto bad;
        s.types[j] = (aq_csv_type)(ty & 0x7F);
        s.forced[j] = ty & 0x80;
        if (!(s.names[j] = get_str(&r, &nomem)))
            goto bad;
    }
    uint32_t nna = aq_rd_u32(&r);
    if (!r.ok || nna > SETUP_MAX_NA || nna > r.n / 4)
        goto bad;
    s.na = calloc(nna ? nna : 1, sizeof *s.na);
    if (!s.na) {
        nomem = true;
        goto bad;
    }
    for (uint32_t i = 0; i < nna; i++) {
        if (!(s.na[i] = get_str(&r, &nomem)))
            goto bad;
        s.nna = i + 1;
    }
    if (!aq_rd_done(&r))
        goto bad;
    *out = s;
    return 0;
bad:
    aq_csv_setup_free(&s);
    return nomem ? AQ_ENOMEM : AQ_EPROTO;
}
