/* libFuzzer entry for the CSV layer (cmake -DAQ_FUZZ=ON with clang). The first byte picks a target:
 *   0-3  the bytes as a file: guess a setup, parse it as one piece; what parses must export and
 *        parse back (same setup, types forced) to the same values; encoded chunks decode back
 *   4    split into pieces (limit from byte 1): concatenated pieces equal the input, and each
 *        piece tokenizes on its own into rows that add up to the rows of the whole
 *   5-9  the bytes as an encoded chunk, observation, setup, domain or summary: refused with
 * AQ_EPROTO or accepted and re-encodable; with the first byte's top bit set the trailing checksum
 * is fixed up first, so the structural checks behind it get fuzzed too Anything else is a crash
 * (abort), caught by libFuzzer with ASan and UBSan. */
#include "aq_csv_col.h"
#include "aq_csv_cut.h"
#include "aq_csv_domain.h"
#include "aq_csv_export.h"
#include "aq_csv_setup.h"
#include "aq_csv_summary.h"

#include "aq_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const aq_csv_col *a, const aq_csv_col *b, uint32_t r) {
    if (aq_csv_col_is_na(a, r) != aq_csv_col_is_na(b, r))
        return false;
    if (aq_csv_col_is_na(a, r))
        return true;
    size_t la = 0, lb = 0;
    const char *pa = aq_csv_col_str(a, r, &la), *pb = aq_csv_col_str(b, r, &lb);
    if ((pa == NULL) != (pb == NULL) || la != lb || (pa && memcmp(pa, pb, la) != 0))
        return false;
    double x = aq_csv_col_num(a, r), y = aq_csv_col_num(b, r);
    return (isnan(x) && isnan(y)) || memcmp(&x, &y, sizeof x) == 0;
}

static void file_target(const char *p, size_t n) {
    aq_csv_sample sm = {p, n, true};
    aq_csv_setup s;
    aq_csv_err err;
    if (aq_csv_setup_guess(&sm, 1, NULL, &s, &err) != 0)
        return;
    aq_csv_piece pc = {p, n, 1, true};
    aq_csv_col *cols;
    if (aq_csv_parse(&pc, &s, NULL, NULL, &cols, &err) == 0) {
        aq_wr w;
        aq_wr_init(&w);
        aq_csv_na na = aq_csv_setup_na(&s);
        aq_csv_export_opts eo = {',', s.header, &na};
        if (aq_csv_export(cols, s.ncols, (const char *const *)s.names, 0, cols[0].rows, &eo, &w))
            abort();
        aq_csv_type *types = malloc(s.ncols * sizeof *types);
        for (uint32_t j = 0; j < s.ncols; j++)
            types[j] = cols[j].type;
        /* The export is plain CSV whatever the file's dialect was: read it back as such. */
        aq_csv_setup s2 = s;
        s2.d = (aq_csv_dialect){.sep = ',', .quote = '"'};
        s2.skip = 0;
        s2.stop_line = 0;
        s2.decimal = '.';
        s2.cr_rows = false;
        aq_csv_piece pc2 = {(const char *)w.p, w.len, 1, true};
        aq_csv_col *back;
        if (aq_csv_parse(&pc2, &s2, types, NULL, &back, &err) != 0)
            abort();
        for (uint32_t j = 0; j < s.ncols; j++) {
            if (back[j].rows != cols[j].rows)
                abort();
            for (uint32_t r = 0; r < cols[j].rows; r++)
                if (!same(&cols[j], &back[j], r))
                    abort();
            uint8_t *enc;
            size_t elen;
            aq_csv_col dec;
            if (aq_csv_col_encode(&cols[j], &enc, &elen) || aq_csv_col_decode(enc, elen, &dec))
                abort();
            aq_csv_col_free(&dec);
            free(enc);
        }
        aq_csv_cols_free(back, s.ncols);
        free(types);
        aq_wr_free(&w);
        aq_csv_cols_free(cols, s.ncols);
    }
    aq_csv_setup_free(&s);
}

typedef struct acc {
    aq_wr w;
    size_t max;
    aq_csv_dialect d;
    uint64_t rows; /* rows the tokenizer finds in the pieces, each read on its own */
    bool tok_failed;
} acc;

/* Rows in a buffer; -1 when the tokenizer fails. */
static long count_rows(const char *p, size_t len, const aq_csv_dialect *d, bool file_start) {
    aq_csv_tok t;
    aq_csv_tok_init(&t, p, len, d, 1, file_start);
    long n = 0;
    int rc;
    while ((rc = aq_csv_tok_next(&t, NULL)) == 1)
        n++;
    aq_csv_tok_free(&t);
    return rc == 0 ? n : -1;
}

static int on_piece(void *ctx, const char *p, size_t len, uint64_t first_line, uint64_t i) {
    acc *a = ctx;
    if (len > a->max || len == 0)
        abort();
    long n = count_rows(p, len, &a->d, i == 0);
    if (n < 0)
        a->tok_failed = true;
    else
        a->rows += (uint64_t)n;
    aq_wr_bytes(&a->w, p, len);
    return 0;
}

static void split_target(const uint8_t *p, size_t n) {
    if (n < 2)
        return;
    acc a;
    memset(&a, 0, sizeof a);
    aq_wr_init(&a.w);
    a.max = 1 + p[0] % 64;
    aq_csv_dialect d = {',', '"', p[0] & 0x80 ? '#' : 0, 0, false};
    a.d = d;
    aq_csv_split s;
    aq_csv_err err;
    aq_csv_split_init(&s, &d, a.max, on_piece, &a);
    int rc = aq_csv_split_push(&s, p + 1, n - 1, &err);
    if (rc == 0)
        rc = aq_csv_split_finish(&s, &err);
    if (rc == 0 && (a.w.len != n - 1 || (n > 1 && memcmp(a.w.p, p + 1, n - 1) != 0)))
        abort();
    /* cutter and tokenizer agree: the pieces hold exactly the rows of the whole */
    if (rc == 0 &&
        (a.tok_failed || (long)a.rows != count_rows((const char *)p + 1, n - 1, &d, true)))
        abort();
    if (rc != 0 && rc != AQ_ETOOBIG && rc != AQ_EPARSE)
        abort();
    aq_csv_split_free(&s);
    aq_wr_free(&a.w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint8_t *fixed = NULL;
    if ((data[0] & 0x80) && data[0] % 10 >= 5 && n >= 8) {
        fixed = malloc(n);
        memcpy(fixed, p, n);
        uint64_t h = XXH3_64bits(fixed, n - 8);
        for (int b = 0; b < 8; b++)
            fixed[n - 8 + (size_t)b] = (uint8_t)(h >> (8 * b));
        p = fixed;
    }
    int rc;
    switch (data[0] % 10) {
    case 4:
        split_target(p, n);
        break;
    case 5: {
        aq_csv_col c;
        rc = aq_csv_col_decode(p, n, &c);
        if (rc == 0) {
            uint8_t *e;
            size_t el;
            if (aq_csv_col_encode(&c, &e, &el) || el != n || memcmp(e, p, n) != 0)
                abort(); /* decoding is strict enough that an accepted encoding is canonical */
            free(e);
            aq_csv_col_free(&c);
        } else if (rc != AQ_EPROTO) {
            abort();
        }
        break;
    }
    case 6: {
        aq_csv_obs *o = malloc(sizeof *o);
        rc = aq_csv_obs_decode(p, n, o);
        if (rc != 0 && rc != AQ_EPROTO)
            abort();
        free(o);
        break;
    }
    case 7: {
        aq_csv_setup s;
        rc = aq_csv_setup_decode(p, n, &s);
        if (rc == 0)
            aq_csv_setup_free(&s);
        else if (rc != AQ_EPROTO)
            abort();
        break;
    }
    case 8: {
        aq_csv_strs d;
        rc = aq_csv_domain_decode(p, n, &d);
        if (rc == 0)
            aq_csv_strs_free(&d);
        else if (rc != AQ_EPROTO)
            abort();
        break;
    }
    case 9: {
        aq_csv_sum s;
        rc = aq_csv_sum_decode(p, n, &s);
        if (rc == 0) {
            aq_csv_sum again;
            memset(&again, 0, sizeof again);
            again.type = s.type;
            if (aq_csv_sum_merge(&again, &s) == AQ_ENOMEM)
                abort();
            aq_csv_sum_free(&again);
            aq_csv_sum_free(&s);
        } else if (rc != AQ_EPROTO) {
            abort();
        }
        break;
    }
    default:
        file_target((const char *)p, n);
    }
    free(fixed);
    return 0;
}
