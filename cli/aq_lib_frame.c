/* libaquifer's frames (aquifer.h): the list of frames, parse, frame rm, and a frame's columns read
 * into typed arrays.
 *
 * Columns travel as the column chunks the nodes stored (aq_csv_col encoding), never as CSV. A
 * fetch asks for every selected (chunk, column) key at once, up to FETCH_WINDOW in flight, spread
 * over the live replicas of each (digest checked by the key operation, the next replica when one
 * fails or lacks it); a chunk is handed to the fetch's decoder thread as soon as it arrives and
 * decoded into its column's arrays there while the client's thread keeps the window full, and its
 * reply freed, so memory stays the arrays plus a window of chunks and a bounded decode queue.
 * Invariants of a fetched column: rows values at 64-byte aligned addresses, missing rows flagged in
 * na and holding the type's missing value (aquifer.h), categorical codes indexing the frame's
 * levels (every chunk of a categorical column holds the frame's whole domain after the parse; a
 * chunk that does not is recoded here). String columns are assembled once every chunk of them is in
 * (their byte offsets depend on the chunks before).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aq_csv_col.h"
#include "aq_csv_domain.h"
#include "aq_lib.h"
#include "cli_parse.h"

/* Column chunks in flight at once: enough to keep every node busy, a bounded memory. */
#define FETCH_WINDOW 24
/* Replies received and waiting for the decoder: the loop keeps fetching while it decodes, and a
 * decoder slower than the wire holds back the loop instead of letting replies pile up. */
#define DECODE_QUEUE 16

/* A column's arrays: 64-byte aligned, at least one byte (so a 0-row column still has an
 * address), freed with arr_free. An array of ARR_HUGE or more is a mapping of its own asking for
 * transparent huge pages: the decoder writes a column front to back right after making it, and
 * where each page fault is costly (a virtual machine's) faulting in 4 KiB pages one by one was
 * a large part of a fetch. A 64-byte header before the array says how it was made. */
#define ARR_HEAD 64
#define ARR_HUGE ((size_t)2 << 20)

static void *arr_alloc(size_t n) {
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t sz = ((n ? n : 1) + 63) / 64 * 64 + ARR_HEAD;
    uint8_t *b;
    size_t maplen = 0;
    if (sz >= ARR_HUGE) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        maplen = (sz + page - 1) / page * page;
        /* A huge page more than needed, so the start can be moved to a huge-page boundary; the
         * rest is unmapped again. */
        uint8_t *m = mmap(NULL, maplen + ARR_HUGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        size_t lead = (ARR_HUGE - (uintptr_t)m % ARR_HUGE) % ARR_HUGE;
        if (lead)
            munmap(m, lead);
        munmap(m + lead + maplen, ARR_HUGE - lead);
        b = m + lead;
        /* Only whole huge pages: a partly used one at the end would hold up to 2 MiB for a few
         * bytes. Advice: without THP, small pages serve. */
        (void)madvise(b, sz / ARR_HUGE * ARR_HUGE, MADV_HUGEPAGE);
    } else {
        b = aligned_alloc(64, sz);
        if (!b)
            return NULL;
    }
    memcpy(b, &maplen, sizeof maplen);
    return b + ARR_HEAD;
}

static void arr_free(void *p) {
    if (!p)
        return;
    uint8_t *b = (uint8_t *)p - ARR_HEAD;
    size_t maplen;
    memcpy(&maplen, b, sizeof maplen);
    if (maplen)
        munmap(b, maplen);
    else
        free(b);
}

const char *aquifer_type_name(aquifer_type t) {
    return t <= AQUIFER_STR ? aq_csv_type_name((aq_csv_type)t) : "unknown";
}

/* ---- the list of frames ---- */

static char *dup_str(const char *s) {
    return strdup(s ? s : "");
}

int aquifer_frames(aquifer *a, aquifer_frame_info **out, size_t *n) {
    *out = NULL;
    *n = 0;
    aq_lib_begin(a, "frames", NULL);
    int err = aq_lib_ready(a);
    if (err)
        return err;
    aq_frame_meta *all;
    size_t nall;
    int rc = cli_frames_collect(&a->c, &all, &nall);
    if (rc)
        return aq_lib_end(a, rc);
    aquifer_frame_info *v = calloc(nall ? nall : 1, sizeof *v);
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < nall; i++) {
        v[i].name = dup_str(all[i].name);
        v[i].source = dup_str(all[i].source);
        ok = v[i].name && v[i].source;
        v[i].source_size = all[i].source_size;
        v[i].rows = all[i].total_rows;
        v[i].ncols = all[i].ncols;
        v[i].chunks = all[i].nchunks;
        v[i].repaired_rows = all[i].repaired;
    }
    cli_frames_free(all, nall);
    if (!ok) {
        aquifer_frames_free(v, nall);
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    }
    *out = v;
    *n = nall;
    return aq_lib_end(a, 0);
}

void aquifer_frames_free(aquifer_frame_info *v, size_t n) {
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].source);
    }
    free(v);
}

/* ---- parse and frame rm ---- */

static void parse_done(cli *c, const cli_parse_done *d, void *ud) {
    (void)c;
    aquifer_parse_result *res = ud;
    snprintf(res->name, sizeof res->name, "%s", d->name);
    res->rows = d->meta->total_rows;
    res->ncols = d->meta->ncols;
    res->chunks = d->chunks;
    res->repaired_rows = d->meta->repaired;
    res->bytes = d->bytes;
    res->seconds = d->seconds;
}

int aquifer_parse(aquifer *a, const char *const *paths, size_t npaths,
                  const aquifer_parse_opts *opts, aquifer_parse_result *res) {
    aq_lib_begin(a, "parse", npaths ? paths[0] : NULL);
    int err = aq_lib_ready(a);
    if (err)
        return err;
    if (!paths || npaths == 0)
        return aq_lib_fail(a, AQ_EINVAL, "no file to parse");
    for (size_t i = 0; i < npaths; i++)
        if (!paths[i])
            return aq_lib_fail(a, AQ_EINVAL, "file %zu of %zu is NULL", i + 1, npaths);
    aquifer_parse_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    cli *c = &a->c;
    memset(&c->fo, 0, sizeof c->fo);
    if (opts) {
        c->fo = (cli_frame_opts){.name = opts->name,
                                 .sep = opts->sep,
                                 .header = opts->header,
                                 .na = opts->na,
                                 .types = opts->types,
                                 .encoding = opts->encoding,
                                 .quote = opts->quote,
                                 .escape = opts->escape,
                                 .comment = opts->comment,
                                 .skip = opts->skip,
                                 .decimal = opts->decimal,
                                 .fill = opts->fill != 0,
                                 .strict = opts->strict != 0};
    }
    int rc = cli_parse_run(c, paths, npaths, parse_done, res);
    memset(&c->fo, 0, sizeof c->fo);
    return aq_lib_end(a, rc);
}

int aquifer_frame_rm(aquifer *a, const char *name) {
    aq_lib_begin(a, "frame rm", name);
    int err = aq_lib_ready(a);
    if (err)
        return err;
    if (!name)
        return aq_lib_fail(a, AQ_EINVAL, "no frame name given");
    return aq_lib_end(a, cli_cmd_frame_rm(&a->c, name));
}

/* ---- a frame's columns ---- */

struct aquifer_frame {
    aquifer *a;
    aq_frame_meta m;
    uint64_t *row0;       /* first row of chunk i; row0[nchunks] = rows */
    aquifer_column *cols; /* per column; values NULL until fetched */
    bool *fetched;
    /* CAT: levels as the column owns them (the first chunk's domain) */
    aq_csv_strs *levels;
    const char **level_ptrs;
    char **level_mem;
    /* STR: each chunk's strings until the column is assembled */
    aq_csv_strs **str_parts;
    void **mem; /* what to free per column: values, na, offsets, bytes */
};

int aquifer_frame_open(aquifer *a, const char *name, aquifer_frame **out) {
    *out = NULL;
    aq_lib_begin(a, "frame", name);
    int err = aq_lib_ready(a);
    if (err)
        return err;
    if (!name)
        return aq_lib_fail(a, AQ_EINVAL, "no frame name given");
    aquifer_frame *f = calloc(1, sizeof *f);
    if (!f)
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    f->a = a;
    int rc = cli_frame_meta_get(&a->c, name, &f->m);
    if (rc) {
        free(f);
        return aq_lib_end(a, rc);
    }
    uint32_t nc = f->m.ncols;
    f->row0 = calloc((size_t)f->m.nchunks + 1, sizeof *f->row0);
    f->cols = calloc(nc ? nc : 1, sizeof *f->cols);
    f->fetched = calloc(nc ? nc : 1, sizeof *f->fetched);
    f->levels = calloc(nc ? nc : 1, sizeof *f->levels);
    f->level_mem = calloc(nc ? nc : 1, sizeof *f->level_mem);
    f->str_parts = calloc(nc ? nc : 1, sizeof *f->str_parts);
    f->mem = calloc((size_t)(nc ? nc : 1) * 4, sizeof *f->mem);
    if (!f->row0 || !f->cols || !f->fetched || !f->levels || !f->level_mem || !f->str_parts ||
        !f->mem) {
        aquifer_frame_close(f);
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    }
    uint64_t rows = 0;
    for (uint32_t i = 0; i < f->m.nchunks; i++) {
        f->row0[i] = rows;
        rows += f->m.rows[i];
    }
    f->row0[f->m.nchunks] = rows;
    if (rows != f->m.total_rows) {
        aquifer_frame_close(f);
        return aq_lib_fail(a, AQ_EPROTO, "the metadata of frame %s is inconsistent (rows)", name);
    }
    for (uint32_t j = 0; j < nc; j++) {
        if (f->m.types[j] > AQ_CSV_T_STR) {
            aquifer_frame_close(f);
            return aq_lib_fail(a, AQ_EPROTO, "column %u of frame %s has an unknown type %u", j + 1,
                               name, f->m.types[j]);
        }
        f->cols[j].name = f->m.cols[j];
        f->cols[j].type = (aquifer_type)f->m.types[j];
        f->cols[j].rows = rows;
    }
    *out = f;
    return aq_lib_end(a, 0);
}

static void free_strs_parts(aquifer_frame *f, uint32_t j) {
    if (!f->str_parts[j])
        return;
    for (uint32_t i = 0; i < f->m.nchunks; i++)
        aq_csv_strs_free(&f->str_parts[j][i]);
    free(f->str_parts[j]);
    f->str_parts[j] = NULL;
}

void aquifer_frame_close(aquifer_frame *f) {
    if (!f)
        return;
    for (uint32_t j = 0; j < f->m.ncols; j++) {
        if (f->str_parts)
            free_strs_parts(f, j);
        if (f->levels)
            aq_csv_strs_free(&f->levels[j]);
        if (f->level_mem)
            free(f->level_mem[j]);
        for (int k = 0; f->mem && k < 4; k++)
            arr_free(f->mem[(size_t)j * 4 + k]);
    }
    free(f->row0);
    free(f->cols);
    free(f->fetched);
    free(f->levels);
    free(f->level_mem);
    free(f->str_parts);
    free(f->mem);
    aq_frame_meta_free(&f->m);
    free(f);
}

uint64_t aquifer_frame_nrows(const aquifer_frame *f) {
    return f->m.total_rows;
}

uint32_t aquifer_frame_ncols(const aquifer_frame *f) {
    return f->m.ncols;
}

const char *aquifer_frame_col_name(const aquifer_frame *f, uint32_t j) {
    return j < f->m.ncols ? f->m.cols[j] : NULL;
}

aquifer_type aquifer_frame_col_type(const aquifer_frame *f, uint32_t j) {
    return j < f->m.ncols ? (aquifer_type)f->m.types[j] : AQUIFER_NONE;
}

/* The arrays of column j, before its first chunk lands: na all clear, values by type. */
static int col_alloc(aquifer_frame *f, uint32_t j) {
    aquifer_column *col = &f->cols[j];
    uint64_t rows = col->rows;
    size_t nab = (size_t)((rows + 7) / 8);
    uint8_t *na = arr_alloc(nab);
    if (!na)
        return AQ_ENOMEM;
    memset(na, col->type == AQUIFER_NONE ? 0xff : 0, nab);
    f->mem[(size_t)j * 4] = na;
    col->na = na;
    col->na_count = col->type == AQUIFER_NONE ? rows : 0;
    if (col->type == AQUIFER_INT || col->type == AQUIFER_FLOAT || col->type == AQUIFER_TIME ||
        col->type == AQUIFER_CAT) {
        size_t w = col->type == AQUIFER_CAT ? 4 : 8;
        void *v = arr_alloc((size_t)rows * w);
        if (!v)
            goto nomem;
        f->mem[(size_t)j * 4 + 1] = v;
        col->values = v;
    } else if (col->type == AQUIFER_STR) {
        f->str_parts[j] = calloc(f->m.nchunks ? f->m.nchunks : 1, sizeof *f->str_parts[j]);
        if (!f->str_parts[j])
            goto nomem;
    }
    return 0;
nomem:
    /* a column is allocated whole or not at all: the next fetch sees na NULL and starts again */
    arr_free(na);
    f->mem[(size_t)j * 4] = NULL;
    col->na = NULL;
    col->na_count = 0;
    return AQ_ENOMEM;
}

/* The NA bits of a chunk (rows n) into the column's bitmap at row r0; returns how many are set. */
static uint64_t na_copy(uint8_t *dst, uint64_t r0, const uint8_t *src, uint32_t n) {
    uint64_t count = 0;
    if (r0 % 8 == 0) {
        size_t full = n / 8;
        memcpy(dst + r0 / 8, src, full);
        for (size_t b = 0; b < full; b++)
            count += (uint64_t)__builtin_popcount(src[b]);
        for (uint32_t i = (uint32_t)full * 8; i < n; i++)
            if ((src[i >> 3] >> (i & 7)) & 1) {
                dst[(r0 + i) >> 3] |= (uint8_t)(1u << ((r0 + i) & 7));
                count++;
            }
        return count;
    }
    for (uint32_t i = 0; i < n; i++)
        if ((src[i >> 3] >> (i & 7)) & 1) {
            dst[(r0 + i) >> 3] |= (uint8_t)(1u << ((r0 + i) & 7));
            count++;
        }
    return count;
}

static bool strs_equal(const aq_csv_strs *a, const aq_csv_strs *b) {
    if (a->n != b->n || a->off[a->n] != b->off[b->n])
        return false;
    return memcmp(a->off, b->off, (a->n + 1) * sizeof *a->off) == 0 &&
           memcmp(a->bytes, b->bytes, a->off[a->n]) == 0;
}

/* The levels of column j become d (taken over). */
static int set_levels(aquifer_frame *f, uint32_t j, aq_csv_strs *d) {
    const char **ptrs = arr_alloc((size_t)d->n * sizeof *ptrs); /* a mem slot: arr_free */
    /* NUL-terminated copies: the domain's bytes are one run without terminators. */
    char *mem = malloc((size_t)d->off[d->n] + d->n + 1);
    if (!ptrs || !mem) {
        arr_free(ptrs);
        free(mem);
        return AQ_ENOMEM;
    }
    char *w = mem;
    for (uint32_t l = 0; l < d->n; l++) {
        size_t len = d->off[l + 1] - d->off[l];
        memcpy(w, d->bytes + d->off[l], len);
        w[len] = 0;
        ptrs[l] = w;
        w += len + 1;
    }
    f->levels[j] = *d;
    memset(d, 0, sizeof *d);
    f->level_mem[j] = mem;
    f->mem[(size_t)j * 4 + 2] = (void *)ptrs;
    f->cols[j].nlevels = f->levels[j].n;
    f->cols[j].levels = ptrs;
    return 0;
}

/* dst[r] = v for every NA row r of c, walking the set bits of its bitmap. */
#define NA_FILL(c, dst, v)                                                                         \
    do {                                                                                           \
        for (uint32_t b_ = 0; b_ < ((c)->rows + 7) / 8; b_++)                                      \
            for (unsigned m_ = (c)->na[b_]; m_; m_ &= m_ - 1)                                      \
                (dst)[b_ * 8 + (uint32_t)__builtin_ctz(m_)] = (v);                                 \
    } while (0)

/* Chunk i of column j (decoded in c) into the column's arrays. */
static int col_take(aquifer_frame *f, uint32_t i, uint32_t j, aq_csv_col *c) {
    aquifer_column *col = &f->cols[j];
    uint64_t r0 = f->row0[i];
    uint32_t n = c->rows;
    if (c->type != (aq_csv_type)col->type && c->type != AQ_CSV_T_NONE &&
        (aq_csv_col_widen(c, (aq_csv_type)col->type) != 0 || c->type != (aq_csv_type)col->type))
        return AQ_EPROTO;
    if (c->type == AQ_CSV_T_NONE) {
        /* Every row missing: the type's missing value in every slot. */
        for (uint32_t r = 0; r < n; r++)
            ((uint8_t *)col->na)[(r0 + r) >> 3] |= (uint8_t)(1u << ((r0 + r) & 7));
        if (col->type != AQUIFER_NONE)
            col->na_count += n;
        switch (col->type) {
        case AQUIFER_INT:
            memset((int64_t *)col->values + r0, 0, (size_t)n * 8);
            break;
        case AQUIFER_FLOAT:
            for (uint32_t r = 0; r < n; r++)
                ((double *)col->values)[r0 + r] = NAN;
            break;
        case AQUIFER_TIME:
            for (uint32_t r = 0; r < n; r++)
                ((int64_t *)col->values)[r0 + r] = INT64_MIN;
            break;
        case AQUIFER_CAT:
            memset((int32_t *)col->values + r0, 0xff, (size_t)n * 4);
            break;
        case AQUIFER_STR:
            f->str_parts[j][i].n = n;
            f->str_parts[j][i].off = calloc((size_t)n + 1, sizeof(uint32_t));
            f->str_parts[j][i].bytes = malloc(1);
            if (!f->str_parts[j][i].off || !f->str_parts[j][i].bytes)
                return AQ_ENOMEM;
            break;
        default:
            break;
        }
        return 0;
    }
    uint64_t nas = na_copy((uint8_t *)col->na, r0, c->na, n);
    col->na_count += nas;
    switch (col->type) {
    case AQUIFER_INT: {
        int64_t *dst = (int64_t *)col->values + r0;
        switch (c->width) {
        case 1:
            for (uint32_t r = 0; r < n; r++)
                dst[r] = ((const int8_t *)c->vals)[r];
            break;
        case 2:
            for (uint32_t r = 0; r < n; r++)
                dst[r] = ((const int16_t *)c->vals)[r];
            break;
        case 4:
            for (uint32_t r = 0; r < n; r++)
                dst[r] = ((const int32_t *)c->vals)[r];
            break;
        case 8:
            memcpy(dst, c->vals, (size_t)n * 8);
            break;
        default:
            return AQ_EPROTO;
        }
        break;
    }
    case AQUIFER_FLOAT: {
        double *dst = (double *)col->values + r0;
        memcpy(dst, c->vals, (size_t)n * 8);
        if (nas)
            NA_FILL(c, dst, NAN);
        break;
    }
    case AQUIFER_TIME: {
        int64_t *dst = (int64_t *)col->values + r0;
        memcpy(dst, c->vals, (size_t)n * 8);
        if (nas)
            NA_FILL(c, dst, INT64_MIN);
        break;
    }
    case AQUIFER_CAT: {
        if (!col->levels) {
            int err = set_levels(f, j, &c->text);
            if (err)
                return err;
        } else if (!strs_equal(&c->text, &f->levels[j])) {
            /* Not the frame's domain (the parse recodes every chunk to it): recode. */
            if (aq_csv_col_recode(c, &f->levels[j]) != 0)
                return AQ_EPROTO;
        }
        int32_t *dst = (int32_t *)col->values + r0;
        const uint32_t *codes = c->vals;
        if (!codes) {
            memset(dst, 0xff, (size_t)n * 4);
            break;
        }
        /* NA rows hold code 0 (the decoder and the recode see to it), so the largest code over
         * all rows bounds the valid ones. */
        uint32_t max = 0;
        for (uint32_t r = 0; r < n; r++) {
            dst[r] = (int32_t)codes[r];
            max = codes[r] > max ? codes[r] : max;
        }
        if (n && nas < n && max >= col->nlevels)
            return AQ_EPROTO;
        if (nas)
            NA_FILL(c, dst, -1);
        break;
    }
    case AQUIFER_STR:
        f->str_parts[j][i] = c->text;
        memset(&c->text, 0, sizeof c->text);
        break;
    default:
        break;
    }
    return 0;
}

int aquifer_column_join(const aquifer_column *c, char sep, void *out, size_t cap) {
    if (!c || c->type != AQUIFER_STR || !c->offsets)
        return AQ_EINVAL;
    if (c->rows == 0)
        return 0;
    uint64_t need = c->offsets[c->rows] - c->offsets[0] + c->rows - 1;
    if (need > cap || !out)
        return AQ_EINVAL;
    uint8_t *w = out;
    for (uint64_t r = 0; r < c->rows; r++) {
        size_t len = (size_t)(c->offsets[r + 1] - c->offsets[r]);
        if (len)
            memcpy(w, c->bytes + c->offsets[r], len);
        w += len;
        if (r + 1 < c->rows)
            *w++ = (uint8_t)sep;
    }
    return 0;
}

/* Once every chunk of string column j is in: one offsets array and one byte run. */
static int str_assemble(aquifer_frame *f, uint32_t j) {
    aquifer_column *col = &f->cols[j];
    uint64_t total = 0;
    for (uint32_t i = 0; i < f->m.nchunks; i++) {
        const aq_csv_strs *s = &f->str_parts[j][i];
        total += s->off ? s->off[s->n] : 0;
    }
    uint64_t *off = arr_alloc(((size_t)col->rows + 1) * sizeof *off);
    char *bytes = arr_alloc((size_t)total);
    if (!off || !bytes) {
        arr_free(off);
        arr_free(bytes);
        return AQ_ENOMEM;
    }
    uint64_t at = 0, row = 0;
    for (uint32_t i = 0; i < f->m.nchunks; i++) {
        const aq_csv_strs *s = &f->str_parts[j][i];
        if (s->n != f->m.rows[i]) {
            arr_free(off);
            arr_free(bytes);
            return AQ_EPROTO;
        }
        for (uint32_t r = 0; r < s->n; r++)
            off[row++] = at + s->off[r];
        uint32_t len = s->n ? s->off[s->n] : 0;
        memcpy(bytes + at, s->bytes, len);
        at += len;
    }
    off[row] = at;
    f->mem[(size_t)j * 4 + 2] = off;
    f->mem[(size_t)j * 4 + 3] = bytes;
    col->offsets = off;
    col->bytes = bytes;
    free_strs_parts(f, j);
    return 0;
}

/* Starts k at candidate (turn mod live replicas), keeping the rest in order after it: the chunks
 * of a frame are read from all their replicas at once, not all from the first; one that lacks a
 * chunk still passes the call on to the next. */
static void rotate_candidates(cli_kop *k, uint64_t turn) {
    size_t n = k->ncand;
    if (n < 2)
        return;
    size_t r = (size_t)(turn % n);
    uint32_t tmp[AQ_NODE_CONFIG_MAX_NODES];
    for (size_t x = 0; x < n; x++)
        tmp[x] = k->cand[(x + r) % n];
    memcpy(k->cand, tmp, n * sizeof *tmp);
}

typedef struct fetch_job {
    cli_kop *k;
    uint32_t chunk, col;
} fetch_job;

/* A GET reply (digest already checked on the loop thread) waiting to be decoded. */
typedef struct decode_item {
    uint8_t *rep;
    size_t replen;
    uint32_t chunk, col, node;
} decode_item;

/* The decoder thread of one fetch. Decoding (the column codec, widening, recoding, the copies
 * into the arrays) runs here while the client's thread keeps the loop and the fetch window
 * going. One decoder per fetch, so col_take's per-column state is only ever touched by it;
 * the client's thread touches the arrays again only after the join. */
typedef struct decoder {
    aquifer_frame *f;
    pthread_mutex_t mu;
    pthread_cond_t work, room;
    decode_item q[DECODE_QUEUE];
    size_t head, n;
    bool closing;
    int err; /* the first failure; items after it are freed undecoded */
    char why[600];
} decoder;

static void decode_one(decoder *d, const decode_item *it) {
    aquifer_frame *f = d->f;
    const aq_node_config_node *node = &f->a->c.conf->nodes[it->node];
    const char *cname = f->m.cols[it->col];
    uint8_t kind;
    aq_node_digest dg;
    const uint8_t *v;
    size_t vlen;
    aq_csv_col col;
    memset(&col, 0, sizeof col);
    char why[600] = "";
    int err = 0;
    if (aq_node_get_rep_decode(it->rep, it->replen, &kind, &dg, &v, &vlen) != 0 ||
        aq_csv_col_decode(v, vlen, &col) != 0 || col.rows != f->m.rows[it->chunk]) {
        err = AQ_EPROTO;
        snprintf(why, sizeof why, "column %s of chunk %u from %s (%s) is malformed", cname,
                 it->chunk, node->name, node->address);
        free(it->rep);
    } else {
        free(it->rep); /* the reply's memory goes before the arrays grow */
        err = col_take(f, it->chunk, it->col, &col);
        if (err)
            snprintf(why, sizeof why, "column %s of chunk %u from %s (%s): %s", cname, it->chunk,
                     node->name, node->address,
                     err == AQ_ENOMEM ? "out of memory"
                                      : "does not fit the frame's type or levels");
    }
    aq_csv_col_free(&col);
    if (err) {
        pthread_mutex_lock(&d->mu);
        if (!d->err) {
            d->err = err;
            memcpy(d->why, why, sizeof why);
        }
        pthread_mutex_unlock(&d->mu);
    }
}

static void *decoder_main(void *arg) {
    decoder *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (d->n == 0 && !d->closing)
            pthread_cond_wait(&d->work, &d->mu);
        if (d->n == 0)
            break;
        decode_item it = d->q[d->head];
        d->head = (d->head + 1) % DECODE_QUEUE;
        d->n--;
        bool failed = d->err != 0;
        pthread_cond_signal(&d->room);
        pthread_mutex_unlock(&d->mu);
        if (failed)
            free(it.rep);
        else
            decode_one(d, &it);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Hands a reply to the decoder (taking rep), waiting while its queue is full. */
static void decoder_push(decoder *d, decode_item it) {
    pthread_mutex_lock(&d->mu);
    while (d->n == DECODE_QUEUE)
        pthread_cond_wait(&d->room, &d->mu);
    d->q[(d->head + d->n) % DECODE_QUEUE] = it;
    d->n++;
    pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
}

static int decoder_failed(decoder *d) {
    pthread_mutex_lock(&d->mu);
    int err = d->err;
    pthread_mutex_unlock(&d->mu);
    return err;
}

/* Lets the decoder finish what is queued, then joins it. */
static void decoder_close(decoder *d, pthread_t th) {
    pthread_mutex_lock(&d->mu);
    d->closing = true;
    pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
    pthread_join(th, NULL);
}

int aquifer_frame_fetch(aquifer_frame *f, const uint32_t *cols, size_t ncols) {
    aquifer *a = f->a;
    aq_lib_begin(a, "frame", f->m.name);
    cli *c = &a->c;
    uint32_t nc = f->m.ncols;
    size_t nsel = cols ? ncols : nc;
    bool *want = calloc(nc ? nc : 1, sizeof *want);
    if (!want)
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    for (size_t s = 0; s < nsel; s++) {
        uint32_t j = cols ? cols[s] : (uint32_t)s;
        if (j >= nc) {
            free(want);
            return aq_lib_fail(a, AQ_EINVAL, "column %u: the frame has %u columns", j, nc);
        }
        want[j] = !f->fetched[j];
    }
    int err = 0;
    for (uint32_t j = 0; j < nc && !err; j++)
        if (want[j] && !f->cols[j].na)
            err = col_alloc(f, j);
    if (err) {
        free(want);
        return aq_lib_fail(a, err, "out of memory for the columns of frame %s", f->m.name);
    }
    int rc = cli_need_live(c);
    if (rc) {
        free(want);
        return aq_lib_end(a, rc);
    }
    /* Every (chunk, column) to fetch, in chunk order so early rows arrive first. */
    uint32_t nwant = 0;
    for (uint32_t j = 0; j < nc; j++)
        nwant += want[j] && f->cols[j].type != AQUIFER_NONE;
    uint64_t total = (uint64_t)nwant * f->m.nchunks, next = 0, done = 0;
    fetch_job win[FETCH_WINDOW];
    memset(win, 0, sizeof win);
    char why[600] = "";
    size_t nlen = strlen(f->m.name);
    uint32_t *order = calloc(nwant ? nwant : 1, sizeof *order);
    if (!order) {
        free(want);
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    }
    for (uint32_t j = 0, o = 0; j < nc; j++)
        if (want[j] && f->cols[j].type != AQUIFER_NONE)
            order[o++] = j;
    decoder dec;
    memset(&dec, 0, sizeof dec);
    dec.f = f;
    pthread_t th;
    bool threaded = total > 0 && pthread_mutex_init(&dec.mu, NULL) == 0;
    if (threaded && pthread_cond_init(&dec.work, NULL) != 0) {
        pthread_mutex_destroy(&dec.mu);
        threaded = false;
    }
    if (threaded && pthread_cond_init(&dec.room, NULL) != 0) {
        pthread_cond_destroy(&dec.work);
        pthread_mutex_destroy(&dec.mu);
        threaded = false;
    }
    if (threaded && pthread_create(&th, NULL, decoder_main, &dec) != 0) {
        pthread_cond_destroy(&dec.room);
        pthread_cond_destroy(&dec.work);
        pthread_mutex_destroy(&dec.mu);
        threaded = false;
    }
    if (total > 0 && !threaded) {
        err = AQ_ENOMEM;
        snprintf(why, sizeof why, "cannot start the decoder thread");
        total = 0;
    }
    while (done < total) {
        bool progress = false;
        if (!err && (err = decoder_failed(&dec)) != 0)
            why[0] = 0; /* the decoder's sentence is taken after the join */
        for (size_t s = 0; s < FETCH_WINDOW; s++) {
            fetch_job *w = &win[s];
            if (w->k && w->k->done) {
                cli_kop *k = w->k;
                const char *cname = f->m.cols[w->col];
                if (err) {
                    /* draining after a failure */
                } else if (k->err) {
                    err = k->err;
                    snprintf(why, sizeof why, "column %s of chunk %u: %s", cname, w->chunk,
                             err == AQ_ENOTFOUND ? "not found on any live node" : k->msg);
                } else {
                    decoder_push(&dec, (decode_item){k->rep, k->replen, w->chunk, w->col,
                                                     (uint32_t)k->node});
                    k->rep = NULL;
                    k->replen = 0;
                }
                cli_kop_free(k);
                w->k = NULL;
                done++;
                progress = true;
            }
            if (!w->k && next < total && !err) {
                uint32_t i = (uint32_t)(next / nwant), j = order[next % nwant];
                next++;
                uint8_t key[AQ_NODE_KEY_MAX];
                size_t klen = aq_frame_key(key, f->m.name, nlen, i, j);
                cli_kop *k = cli_kop_new(c);
                if (!k || cli_kop_key(c, k, AQ_M_GET, key, klen, true) != 0) {
                    cli_kop_free(k);
                    err = AQ_ENOMEM;
                    snprintf(why, sizeof why, "out of memory");
                    done++;
                    continue;
                }
                k->next_on_notfound = true;
                k->verify = true;
                rotate_candidates(k, i + j);
                *w = (fetch_job){k, i, j};
                cli_kop_start(k);
                progress = true;
            } else if (!w->k && next < total && err) {
                /* nothing more is started after a failure: count the rest as done */
                done += total - next;
                next = total;
            }
        }
        if (!progress && done < total)
            cli_step(c);
    }
    if (threaded) {
        decoder_close(&dec, th);
        if (dec.err && (!err || !why[0])) {
            err = dec.err;
            memcpy(why, dec.why, sizeof why);
        }
        pthread_cond_destroy(&dec.room);
        pthread_cond_destroy(&dec.work);
        pthread_mutex_destroy(&dec.mu);
    }
    free(order);
    for (uint32_t j = 0; j < nc && !err; j++) {
        if (!want[j])
            continue;
        if (f->cols[j].type == AQUIFER_STR && (err = str_assemble(f, j)) != 0)
            snprintf(why, sizeof why, "column %s: %s", f->m.cols[j],
                     err == AQ_ENOMEM ? "out of memory" : "a chunk holds the wrong number of rows");
        else
            f->fetched[j] = true;
    }
    if (err) {
        /* A column half filled is filled again by the next fetch. */
        for (uint32_t j = 0; j < nc; j++) {
            if (!want[j] || f->fetched[j])
                continue;
            free_strs_parts(f, j);
            for (int k = 0; k < 4; k++) {
                arr_free(f->mem[(size_t)j * 4 + k]);
                f->mem[(size_t)j * 4 + k] = NULL;
            }
            aq_csv_strs_free(&f->levels[j]);
            free(f->level_mem[j]);
            f->level_mem[j] = NULL;
            aquifer_column *col = &f->cols[j];
            *col = (aquifer_column){col->name, col->type, col->rows, NULL, 0,
                                    NULL,      0,         NULL,      NULL, NULL};
        }
    }
    free(want);
    if (err)
        return aq_lib_fail(a, err, "%s", why[0] ? why : aq_strerror(err));
    return aq_lib_end(a, 0);
}

const aquifer_column *aquifer_frame_column(aquifer_frame *f, uint32_t j) {
    if (j >= f->m.ncols) {
        aq_lib_begin(f->a, "frame", f->m.name);
        aq_lib_fail(f->a, AQ_EINVAL, "column %u: the frame has %u columns", j, f->m.ncols);
        return NULL;
    }
    if (!f->fetched[j] && aquifer_frame_fetch(f, &j, 1) != 0)
        return NULL;
    return &f->cols[j];
}
