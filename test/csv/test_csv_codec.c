/* Serialized chunks and observations: exact round trips; bad bytes refused, never a crash. */
#include "aq_csv_col.h"
#include "aq_csv_domain.h"
#include "aq_csv_summary.h"
#include "csv_frame.h"

#include "aq_error.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* One chunk of every type, with NAs, from a small file. */
static void sample_frame(csv_frame *f) {
    const char *s = "i8,i64,f,t,cat,str,none\n"
                    "1,5000000000,1.5,2015-01-02,red,\"a \"\"q\"\"\",\n"
                    "NA,-1,NA,2015-01-02 03:04:05.123,NA,NA,NA\n"
                    "-3,7,-0.25,NA,blue,\"x,y\",\n"
                    "4,8,1e300,1970-01-01,red,zz,\n";
    aq_csv_type_opt t[] = {{"str", AQ_CSV_T_STR}};
    aq_csv_opts o = aq_csv_opts_default();
    o.types = t;
    o.ntypes = 1;
    aq_csv_err err = {0};
    cr_assert_eq(csv_frame_load(s, strlen(s), &o, 1 << 20, f, &err), 0, "%s", err.msg);
    const aq_csv_type want[] = {AQ_CSV_T_INT, AQ_CSV_T_INT, AQ_CSV_T_FLOAT, AQ_CSV_T_TIME,
                                AQ_CSV_T_CAT, AQ_CSV_T_STR, AQ_CSV_T_NONE};
    for (int j = 0; j < 7; j++)
        cr_assert_eq(f->chunks[0][j].type, want[j], "col %d is %s", j,
                     aq_csv_type_name(f->chunks[0][j].type));
}

static bool same_col(const aq_csv_col *a, const aq_csv_col *b) {
    if (a->type != b->type || a->rows != b->rows)
        return false;
    for (uint32_t r = 0; r < a->rows; r++) {
        if (aq_csv_col_is_na(a, r) != aq_csv_col_is_na(b, r))
            return false;
        if (aq_csv_col_is_na(a, r))
            continue;
        size_t la = 0, lb = 0;
        const char *pa = aq_csv_col_str(a, r, &la), *pb = aq_csv_col_str(b, r, &lb);
        double x = aq_csv_col_num(a, r), y = aq_csv_col_num(b, r);
        if (aq_csv_col_int(a, r) != aq_csv_col_int(b, r) || la != lb ||
            (pa && memcmp(pa, pb, la) != 0) || (!isnan(x) && x != y))
            return false;
    }
    return true;
}

Test(csv_codec, every_type_round_trips) {
    csv_frame f;
    sample_frame(&f);
    for (int j = 0; j < 7; j++) {
        uint8_t *buf;
        size_t len;
        cr_assert_eq(aq_csv_col_encode(&f.chunks[0][j], &buf, &len), 0);
        aq_csv_col c;
        cr_assert_eq(aq_csv_col_decode(buf, len, &c), 0, "col %d", j);
        cr_assert(same_col(&f.chunks[0][j], &c), "col %d", j);
        cr_assert_eq(c.width, f.chunks[0][j].width);
        /* encoding is deterministic */
        uint8_t *buf2;
        size_t len2;
        cr_assert_eq(aq_csv_col_encode(&c, &buf2, &len2), 0);
        cr_assert(len2 == len && memcmp(buf, buf2, len) == 0);
        aq_csv_col_free(&c);
        free(buf);
        free(buf2);
    }
    csv_frame_free(&f);
}

Test(csv_codec, observations_round_trip_and_merge_the_same) {
    csv_frame f;
    sample_frame(&f);
    for (int j = 0; j < 7; j++) {
        uint8_t *buf;
        size_t len;
        cr_assert_eq(aq_csv_obs_encode(&f.chunks[0][j].obs, &buf, &len), 0);
        aq_csv_obs *o = malloc(sizeof *o);
        cr_assert_eq(aq_csv_obs_decode(buf, len, o), 0);
        cr_assert_eq(aq_csv_obs_final(o), aq_csv_obs_final(&f.chunks[0][j].obs));
        cr_assert_eq(o->na, f.chunks[0][j].obs.na);
        cr_assert_eq(o->nsketch, f.chunks[0][j].obs.nsketch);
        for (size_t cut = 0; cut < len; cut++)
            cr_assert_eq(aq_csv_obs_decode(buf, cut, o), AQ_EPROTO);
        free(o);
        free(buf);
    }
    csv_frame_free(&f);
}

Test(csv_codec, repaired_rows_travel_with_the_observations) {
    aq_csv_obs *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *o = calloc(1, sizeof *o);
    a->repaired = 150;
    a->nrepair = AQ_CSV_REPAIR_LINES;
    for (uint32_t i = 0; i < AQ_CSV_REPAIR_LINES; i++)
        a->repair_line[i] = 1000 + 2 * i;
    b->repaired = 3;
    b->nrepair = 3;
    b->repair_line[0] = 7;
    b->repair_line[1] = 1001;
    b->repair_line[2] = 999999;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(aq_csv_obs_encode(a, &buf, &len), 0);
    cr_assert_eq(aq_csv_obs_decode(buf, len, o), 0);
    cr_assert_eq(o->repaired, 150);
    cr_assert_eq(o->nrepair, AQ_CSV_REPAIR_LINES);
    cr_assert_eq(o->repair_line[99], 1198);
    free(buf);
    aq_csv_obs_merge(o, b);
    cr_assert_eq(o->repaired, 153);
    cr_assert_eq(o->nrepair, AQ_CSV_REPAIR_LINES, "the first 100 lines only");
    cr_assert_eq(o->repair_line[0], 7);
    cr_assert_eq(o->repair_line[1], 1000);
    cr_assert_eq(o->repair_line[2], 1001);
    cr_assert_eq(o->repair_line[3], 1002);
    cr_assert_eq(o->repair_line[99], 1194);
    /* lines out of order, or more lines than rows, are refused */
    b->repair_line[1] = 5;
    cr_assert_eq(aq_csv_obs_encode(b, &buf, &len), 0);
    cr_assert_eq(aq_csv_obs_decode(buf, len, o), AQ_EPROTO);
    free(buf);
    b->repair_line[1] = 1001;
    b->repaired = 2;
    cr_assert_eq(aq_csv_obs_encode(b, &buf, &len), 0);
    cr_assert_eq(aq_csv_obs_decode(buf, len, o), AQ_EPROTO);
    free(buf);
    free(a);
    free(b);
    free(o);
}

Test(csv_codec, truncated_and_bit_flipped_chunks_are_refused) {
    csv_frame f;
    sample_frame(&f);
    for (int j = 0; j < 7; j++) {
        uint8_t *buf;
        size_t len;
        cr_assert_eq(aq_csv_col_encode(&f.chunks[0][j], &buf, &len), 0);
        aq_csv_col c;
        for (size_t cut = 0; cut < len; cut++)
            cr_assert_eq(aq_csv_col_decode(buf, cut, &c), AQ_EPROTO, "col %d cut %zu", j, cut);
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit += 3) {
                buf[i] ^= (uint8_t)(1u << bit);
                cr_assert_eq(aq_csv_col_decode(buf, len, &c), AQ_EPROTO, "col %d byte %zu", j, i);
                buf[i] ^= (uint8_t)(1u << bit);
            }
        free(buf);
    }
    cr_assert_eq(aq_csv_col_decode(NULL, 0, NULL), AQ_EPROTO);
    csv_frame_free(&f);
}

/* The checksum of a chunk whose bytes a test changed (the last 8 bytes, as the envelope has it). */
static void fix_checksum(uint8_t *m, size_t len) {
    uint64_t h = XXH3_64bits(m, len - 8);
    for (int b = 0; b < 8; b++)
        m[len - 8 + (size_t)b] = (uint8_t)(h >> (8 * b));
}

/* Values the decoder must refuse even under a valid checksum: an NA row holding a value (int,
 * float, time, categorical), a NaN that is not the one quiet NaN, a code past the levels. */
Test(csv_codec, bad_values_under_a_valid_checksum_are_refused) {
    csv_frame f;
    sample_frame(&f);
    for (int j = 0; j < 5; j++) {
        /* Row 0 as stored, and as NA: the first byte that differs is row 0's NA bit. */
        aq_csv_col *c = &f.chunks[0][j];
        uint8_t *a, *b;
        size_t alen, blen;
        cr_assert_eq(aq_csv_col_encode(c, &a, &alen), 0);
        c->na[0] |= 1;
        cr_assert_eq(aq_csv_col_encode(c, &b, &blen), 0);
        c->na[0] &= (uint8_t)~1u;
        cr_assert_eq(alen, blen);
        size_t at = 0;
        while (at < alen && a[at] == b[at])
            at++;
        cr_assert_lt(at, alen - 8, "col %d", j);
        a[at] = b[at];
        fix_checksum(a, alen);
        aq_csv_col d;
        cr_assert_eq(aq_csv_col_decode(a, alen, &d), AQ_EPROTO, "col %d: NA row with a value", j);
        free(a);
        free(b);
    }
    uint8_t *buf;
    size_t len;
    cr_assert_eq(aq_csv_col_encode(&f.chunks[0][2], &buf, &len), 0);
    const double one_half = 1.5;
    uint8_t *p = memmem(buf, len, &one_half, sizeof one_half);
    cr_assert_not_null(p);
    const uint64_t signalling = 0x7FF0000000000001ull;
    memcpy(p, &signalling, sizeof signalling);
    fix_checksum(buf, len);
    aq_csv_col d;
    cr_assert_eq(aq_csv_col_decode(buf, len, &d), AQ_EPROTO, "a NaN other than the quiet one");
    free(buf);
    /* The categorical's codes (one byte each, 2 levels) end just before the checksum. */
    aq_csv_col *cat = &f.chunks[0][4];
    cr_assert_eq(cat->text.n, 2);
    cr_assert_eq(aq_csv_col_encode(cat, &buf, &len), 0);
    cr_assert_eq(aq_csv_col_decode(buf, len, &d), 0);
    aq_csv_col_free(&d);
    buf[len - 8 - cat->rows] = 2;
    fix_checksum(buf, len);
    cr_assert_eq(aq_csv_col_decode(buf, len, &d), AQ_EPROTO, "a code past the levels");
    free(buf);
    csv_frame_free(&f);
}

/* Changes bytes and then fixes the checksum, so the structural checks themselves are exercised:
 * every decode either refuses or yields a chunk that is internally consistent. */
Test(csv_codec, structurally_bad_chunks_with_valid_checksums_never_crash) {
    csv_frame f;
    sample_frame(&f);
    srand(99);
    int refused = 0, accepted = 0;
    for (int j = 0; j < 7; j++) {
        uint8_t *buf;
        size_t len;
        cr_assert_eq(aq_csv_col_encode(&f.chunks[0][j], &buf, &len), 0);
        uint8_t *m = malloc(len);
        for (int iter = 0; iter < 3000; iter++) {
            memcpy(m, buf, len);
            int flips = 1 + rand() % 3;
            for (int k = 0; k < flips; k++)
                m[(size_t)rand() % (len - 8)] = (uint8_t)rand();
            uint64_t h = XXH3_64bits(m, len - 8);
            for (int b = 0; b < 8; b++)
                m[len - 8 + (size_t)b] = (uint8_t)(h >> (8 * b));
            aq_csv_col c;
            int rc = aq_csv_col_decode(m, len, &c);
            if (rc) {
                cr_assert_eq(rc, AQ_EPROTO);
                refused++;
                continue;
            }
            accepted++;
            /* whatever was accepted can be read completely and re-encoded */
            for (uint32_t r = 0; r < c.rows; r++) {
                size_t l;
                const char *p = aq_csv_col_str(&c, r, &l);
                if (p)
                    cr_assert(l < len);
                (void)aq_csv_col_num(&c, r);
            }
            uint8_t *again;
            size_t alen;
            cr_assert_eq(aq_csv_col_encode(&c, &again, &alen), 0);
            free(again);
            aq_csv_col_free(&c);
        }
        free(m);
        free(buf);
    }
    cr_assert_gt(refused, 1000);
    cr_log_info("structural fuzz: %d refused, %d accepted", refused, accepted);
    csv_frame_free(&f);
}

Test(csv_codec, random_bytes_are_refused) {
    srand(5);
    uint8_t buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand();
        if (len >= 4 && iter % 2) {
            memcpy(buf, "AQCC", 4); /* a right magic gets past the first check */
            uint64_t h = XXH3_64bits(buf, len >= 8 ? len - 8 : 0);
            if (len >= 8)
                for (int b = 0; b < 8; b++)
                    buf[len - 8 + (size_t)b] = (uint8_t)(h >> (8 * b));
        }
        aq_csv_col c;
        int rc = aq_csv_col_decode(buf, len, &c);
        if (rc == 0)
            aq_csv_col_free(&c);
        else
            cr_assert_eq(rc, AQ_EPROTO);
        aq_csv_obs *o = malloc(sizeof *o);
        rc = aq_csv_obs_decode(buf, len, o);
        cr_assert(rc == AQ_EPROTO || rc == 0);
        free(o);
    }
}

/* --- summaries --- */

/* The summary of column 0 of csv, its pieces cut at about piece bytes, merged in order. */
static aq_csv_sum summary_of(const char *csv, size_t piece, size_t *npieces) {
    csv_frame f;
    aq_csv_err err = {0};
    cr_assert_eq(csv_frame_load(csv, strlen(csv), NULL, piece, &f, &err), 0, "%s", err.msg);
    aq_csv_sum total;
    for (size_t i = 0; i < f.npieces; i++) {
        aq_csv_sum p;
        cr_assert_eq(aq_csv_sum_col(&f.chunks[i][0], &p), 0);
        if (i == 0) {
            total = p;
        } else {
            cr_assert_eq(aq_csv_sum_merge(&total, &p), 0);
            aq_csv_sum_free(&p);
        }
    }
    *npieces = f.npieces;
    csv_frame_free(&f);
    return total;
}

Test(csv_summary, merge_is_exact_for_offset_data_in_many_chunks) {
    /* values 1e9 + small noise: sum-of-squares would lose every digit of the variance */
    size_t cap = 20000 * 24 + 16;
    char *s = malloc(cap);
    size_t o = (size_t)sprintf(s, "v\n");
    srand(3);
    long double vals[20000];
    for (int i = 0; i < 20000; i++) {
        double v = 1e9 + (rand() % 100000) / 1000.0;
        vals[i] = v;
        o += (size_t)sprintf(s + o, "%.17g\n", v);
    }
    size_t np = 0;
    aq_csv_sum total = summary_of(s, 8192, &np);
    cr_assert_gt(np, 20);
    long double sum = 0, m2 = 0;
    for (int i = 0; i < 20000; i++)
        sum += vals[i];
    long double mean = sum / 20000;
    for (int i = 0; i < 20000; i++)
        m2 += (vals[i] - mean) * (vals[i] - mean);
    double sd = (double)sqrtl(m2 / 19999);
    cr_assert_eq(total.n, 20000);
    cr_assert_lt(fabs(total.mean - (double)mean) / (double)mean, 1e-15);
    cr_assert_lt(fabs(aq_csv_sum_sd(&total) - sd) / sd, 1e-9, "sd %.17g vs %.17g",
                 aq_csv_sum_sd(&total), sd);
    long double lo = vals[0], hi = vals[0];
    for (int i = 1; i < 20000; i++) {
        lo = vals[i] < lo ? vals[i] : lo;
        hi = vals[i] > hi ? vals[i] : hi;
    }
    cr_assert_eq(total.min, (double)lo);
    cr_assert_eq(total.max, (double)hi);
    aq_csv_sum_free(&total);
    free(s);
}

/* Equal, both NaN, or within 1e-12 of each other. */
static bool about(double got, double want) {
    if (isnan(want) || isinf(want))
        return isnan(want) ? isnan(got) : got == want;
    return fabs(got - want) <= 1e-12 * fabs(want);
}

/* An infinity is a value: min and max take it; the mean is what the values' sum gives (an
 * infinity, or NaN for both signs) and the sd is NaN, never 0 (no spread), in one chunk and
 * merged across chunks alike, as pandas computes them. A NaN the file wrote is left out. Finite
 * values near the largest double keep a finite mean (pandas' sum overflows to inf there) and an
 * sd of inf, their squares overflowing. */
Test(csv_summary, infinities_are_values_with_no_spread_to_measure) {
    const struct {
        const char *csv;
        double min, max, mean, sd;
    } cases[] = {
        {"v\ninf\n5\n-inf\n1\n", -INFINITY, INFINITY, NAN, NAN},
        {"v\n7\n5\ninf\n1\n", 1, INFINITY, INFINITY, NAN},
        {"v\n-Infinity\n5\n2\n1\n", -INFINITY, 5, -INFINITY, NAN},
        {"v\n2\nNaN\nNaN\n4\n", 2, 4, 3, 1.4142135623730951},
        {"v\n1e308\n1e308\n-1e308\n", -1e308, 1e308, 1e308 / 3, INFINITY},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int cut = 0; cut < 2; cut++) {
            size_t np = 0;
            aq_csv_sum s = summary_of(cases[c].csv, cut ? 10 : 1 << 20, &np);
            if (cut)
                cr_assert_gt(np, 1, "case %zu is cut into pieces", c);
            cr_assert_eq(s.min, cases[c].min, "case %zu cut %d: min %g", c, cut, s.min);
            cr_assert_eq(s.max, cases[c].max, "case %zu cut %d: max %g", c, cut, s.max);
            cr_assert(about(s.mean, cases[c].mean), "case %zu cut %d: mean %.17g", c, cut, s.mean);
            cr_assert(about(aq_csv_sum_sd(&s), cases[c].sd), "case %zu cut %d: sd %.17g", c, cut,
                      aq_csv_sum_sd(&s));
            aq_csv_sum_free(&s);
        }
    }
}

Test(csv_summary, level_counts_merge_by_string_across_local_domains) {
    size_t np = 0;
    aq_csv_sum total = summary_of("k\nb\na\nb\nNA\nc\nb\na\nd\nb\n", 6, &np);
    cr_assert_gt(np, 3);
    cr_assert_eq(total.nlev, 4);
    const char *lev[] = {"a", "b", "c", "d"};
    const uint64_t cnt[] = {2, 4, 1, 1};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(total.lev[i], lev[i]);
        cr_assert_eq(total.count[i], cnt[i], "%s", lev[i]);
    }
    cr_assert_eq(total.na, 1);
    cr_assert_eq(total.rows, 9);
    aq_csv_sum_free(&total);
}

/* --- setups and domains on the wire --- */

Test(csv_codec, setup_round_trips_and_bad_bytes_are_refused) {
    csv_frame f;
    sample_frame(&f);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(aq_csv_setup_encode(&f.setup, &buf, &len), 0);
    aq_csv_setup s;
    cr_assert_eq(aq_csv_setup_decode(buf, len, &s), 0);
    cr_assert_eq(s.ncols, f.setup.ncols);
    cr_assert_eq(s.d.sep, f.setup.d.sep);
    cr_assert_eq(s.header, f.setup.header);
    cr_assert_eq(s.nna, f.setup.nna);
    for (uint32_t j = 0; j < s.ncols; j++) {
        cr_assert_str_eq(s.names[j], f.setup.names[j]);
        cr_assert_eq(s.types[j], f.setup.types[j]);
        cr_assert_eq(s.forced[j], f.setup.forced[j]);
    }
    /* a piece parsed with the decoded setup gives the same chunks */
    aq_csv_piece pc = {f.piece[0], f.piece_len[0], 1, true};
    aq_csv_col *cols;
    cr_assert_eq(aq_csv_parse(&pc, &s, NULL, NULL, &cols, NULL), 0);
    for (uint32_t j = 0; j < s.ncols; j++)
        cr_assert(same_col(&cols[j], &f.chunks[0][j]), "col %u", j);
    aq_csv_cols_free(cols, s.ncols);
    aq_csv_setup_free(&s);
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_eq(aq_csv_setup_decode(buf, cut, &s), AQ_EPROTO);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x40;
        cr_assert_eq(aq_csv_setup_decode(buf, len, &s), AQ_EPROTO);
        buf[i] ^= 0x40;
    }
    /* mutations behind a fixed-up checksum exercise the structural checks */
    srand(11);
    uint8_t *m = malloc(len);
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(m, buf, len);
        m[(size_t)rand() % (len - 8)] = (uint8_t)rand();
        uint64_t h = XXH3_64bits(m, len - 8);
        for (int b = 0; b < 8; b++)
            m[len - 8 + (size_t)b] = (uint8_t)(h >> (8 * b));
        int rc = aq_csv_setup_decode(m, len, &s);
        cr_assert(rc == 0 || rc == AQ_EPROTO);
        if (rc == 0)
            aq_csv_setup_free(&s);
    }
    free(m);
    free(buf);
    csv_frame_free(&f);
}

static aq_csv_strs strs(const char *const *v, uint32_t n) {
    aq_csv_strs s;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += strlen(v[i]);
    s.n = n;
    s.off = malloc((n + 1) * sizeof *s.off);
    s.bytes = malloc(total + 1);
    s.off[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(s.bytes + s.off[i], v[i], strlen(v[i]));
        s.off[i + 1] = s.off[i] + (uint32_t)strlen(v[i]);
    }
    return s;
}

Test(csv_codec, domains_merge_sorted_and_chunks_recode) {
    const char *s = "k\nb\nd\nb\nNA\na\nc\na\nd\n";
    csv_frame f;
    aq_csv_err err = {0};
    cr_assert_eq(csv_frame_load(s, strlen(s), NULL, 8, &f, &err), 0, "%s", err.msg);
    cr_assert_gt(f.npieces, 2);
    aq_csv_strs dom = {0};
    for (size_t i = 0; i < f.npieces; i++) {
        aq_csv_strs local, u;
        cr_assert_eq(aq_csv_domain_of(&f.chunks[i][0], &local), 0);
        cr_assert_eq(aq_csv_domain_union(&dom, &local, &u), 0);
        aq_csv_strs_free(&dom);
        aq_csv_strs_free(&local);
        dom = u;
    }
    const char *want[] = {"a", "b", "c", "d"};
    cr_assert_eq(dom.n, 4);
    for (uint32_t i = 0; i < 4; i++)
        cr_assert(dom.off[i + 1] - dom.off[i] == 1 && dom.bytes[dom.off[i]] == want[i][0]);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(aq_csv_domain_encode(&dom, &buf, &len), 0);
    aq_csv_strs back;
    cr_assert_eq(aq_csv_domain_decode(buf, len, &back), 0);
    cr_assert_eq(back.n, 4);
    aq_csv_strs tmp;
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_eq(aq_csv_domain_decode(buf, cut, &tmp), AQ_EPROTO);
    free(buf);
    /* every chunk re-coded: the same string has the same code everywhere */
    const int code_of_row[] = {1, 3, 1, -1, 0, 2, 0, 3};
    uint64_t row = 0;
    for (size_t i = 0; i < f.npieces; i++) {
        aq_csv_col *c = &f.chunks[i][0];
        cr_assert_eq(aq_csv_col_recode(c, &back), 0);
        for (uint32_t r = 0; r < c->rows; r++, row++) {
            if (code_of_row[row] < 0)
                cr_assert(aq_csv_col_is_na(c, r));
            else
                cr_assert_eq(((uint32_t *)c->vals)[r], (uint32_t)code_of_row[row], "row %llu",
                             (unsigned long long)row);
        }
    }
    /* A chunk re-coded against the frame's domain carries levels it never uses: its summary
     * counts only the levels it holds, and that partial crosses the wire (a zero count is
     * refused by the decoder; the command once failed a whole summary on it). */
    for (size_t i = 0; i < f.npieces; i++) {
        aq_csv_sum sum, back_sum;
        cr_assert_eq(aq_csv_sum_col(&f.chunks[i][0], &sum), 0);
        uint32_t used = 0;
        for (uint32_t l = 0; l < sum.nlev; l++)
            used += sum.count[l] > 0;
        cr_assert_eq(used, sum.nlev, "piece %zu: a level with no occurrence", i);
        cr_assert_lt(sum.nlev, 4, "piece %zu holds fewer than the 4 levels", i);
        cr_assert_eq(aq_csv_sum_encode(&sum, &buf, &len), 0);
        cr_assert_eq(aq_csv_sum_decode(buf, len, &back_sum), 0, "piece %zu", i);
        free(buf);
        aq_csv_sum_free(&sum);
        aq_csv_sum_free(&back_sum);
    }
    /* a domain missing a level is refused and the chunk is unchanged */
    const char *partial[] = {"a", "c"};
    aq_csv_strs p = strs(partial, 2);
    cr_assert_eq(aq_csv_col_recode(&f.chunks[0][0], &p), AQ_EINVAL);
    cr_assert_eq(f.chunks[0][0].text.n, 4);
    /* an unsorted domain on the wire is refused */
    const char *unsorted[] = {"b", "a"};
    aq_csv_strs u = strs(unsorted, 2);
    cr_assert_eq(aq_csv_domain_encode(&u, &buf, &len), 0);
    cr_assert_eq(aq_csv_domain_decode(buf, len, &tmp), AQ_EPROTO);
    free(buf);
    aq_csv_strs_free(&p);
    aq_csv_strs_free(&u);
    aq_csv_strs_free(&back);
    aq_csv_strs_free(&dom);
    csv_frame_free(&f);
}

Test(csv_codec, summary_partials_survive_the_wire) {
    const char *s = "x,k\n1.5,b\n2.5,a\nNA,b\n4,NA\n-1,c\n";
    csv_frame f;
    aq_csv_err err = {0};
    cr_assert_eq(csv_frame_load(s, strlen(s), NULL, 12, &f, &err), 0, "%s", err.msg);
    cr_assert_gt(f.npieces, 2);
    for (uint32_t j = 0; j < 2; j++) {
        aq_csv_sum direct, wired;
        for (size_t i = 0; i < f.npieces; i++) {
            aq_csv_sum p, q;
            cr_assert_eq(aq_csv_sum_col(&f.chunks[i][j], &p), 0);
            uint8_t *buf;
            size_t len;
            cr_assert_eq(aq_csv_sum_encode(&p, &buf, &len), 0);
            cr_assert_eq(aq_csv_sum_decode(buf, len, &q), 0);
            aq_csv_sum tmp;
            for (size_t cut = 0; cut < len; cut++)
                cr_assert_eq(aq_csv_sum_decode(buf, cut, &tmp), AQ_EPROTO);
            free(buf);
            if (i == 0) {
                direct = p;
                wired = q;
            } else {
                cr_assert_eq(aq_csv_sum_merge(&direct, &p), 0);
                cr_assert_eq(aq_csv_sum_merge(&wired, &q), 0);
                aq_csv_sum_free(&p);
                aq_csv_sum_free(&q);
            }
        }
        cr_assert_eq(wired.n, direct.n);
        cr_assert_eq(wired.na, direct.na);
        cr_assert_eq(wired.rows, 5);
        cr_assert(memcmp(&wired.mean, &direct.mean, sizeof(double)) == 0);
        cr_assert(memcmp(&wired.m2, &direct.m2, sizeof(double)) == 0);
        cr_assert_eq(wired.nlev, direct.nlev);
        for (uint32_t i = 0; i < wired.nlev; i++) {
            cr_assert_str_eq(wired.lev[i], direct.lev[i]);
            cr_assert_eq(wired.count[i], direct.count[i]);
        }
        if (j == 0) {
            cr_assert_eq(direct.n, 4);
            cr_assert_float_eq(direct.mean, 1.75, 1e-15);
            cr_assert_eq(direct.min, -1);
            cr_assert_eq(direct.max, 4);
        } else {
            cr_assert_eq(direct.nlev, 3);
            cr_assert_eq(direct.count[1], 2, "b twice");
        }
        aq_csv_sum_free(&direct);
        aq_csv_sum_free(&wired);
    }
    csv_frame_free(&f);
}

static int cmp_lev(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t lx = strlen(x), ly = strlen(y);
    int c = memcmp(x, y, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* n sorted unique levels (each its own allocation) as a domain. */
static aq_csv_strs strs_of(char **lev, uint32_t n) {
    aq_csv_strs s = {0};
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += strlen(lev[i]);
    s.off = malloc((n + 1) * sizeof *s.off);
    s.bytes = malloc(bytes + 1);
    cr_assert(s.off && s.bytes);
    s.off[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(lev[i]);
        memcpy(s.bytes + s.off[i], lev[i], l);
        s.off[i + 1] = s.off[i] + (uint32_t)l;
    }
    s.n = n;
    return s;
}

/* Merging compares levels by their first 8 bytes as words: levels of 0 to 20 bytes over a few
 * byte values, high ones (unsigned order) among them, that differ anywhere, sharing prefixes of
 * every length. The union must be the sorted set of both, and a chunk's levels must re-code
 * against it. */
Test(csv_codec, domains_of_long_and_short_levels_merge_in_byte_order) {
    const char alpha[] = {'a', 'b', 'z', (char)0x80, (char)0xFE};
    uint64_t seed = 3;
    enum { N = 3000 };
    char **all = malloc(2 * N * sizeof *all);
    cr_assert(all);
    for (uint32_t i = 0; i < 2 * N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t len = (uint32_t)(seed >> 59) % 21;
        all[i] = malloc(len + 1);
        uint64_t r = seed;
        for (uint32_t k = 0; k < len; k++) {
            if (k % 12 == 11) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                r = seed;
            }
            all[i][k] = alpha[(r >> (33 + 2 * (k % 12) % 30)) % 5];
        }
        all[i][len] = 0;
    }
    /* two sets, each sorted and unique; the want: both together */
    char **sets[2] = {malloc(N * sizeof(char *)), malloc(N * sizeof(char *))};
    cr_assert(sets[0] && sets[1]);
    memcpy(sets[0], all, N * sizeof(char *));
    memcpy(sets[1], all + N, N * sizeof(char *));
    uint32_t cnt[2];
    for (int h = 0; h < 2; h++) {
        qsort(sets[h], N, sizeof(char *), cmp_lev);
        uint32_t m = 0;
        for (uint32_t i = 0; i < N; i++)
            if (m == 0 || cmp_lev(&sets[h][i], &sets[h][m - 1]) != 0)
                sets[h][m++] = sets[h][i];
        cnt[h] = m;
    }
    char **want = malloc(2 * N * sizeof *want);
    uint32_t nw = 0;
    for (int h = 0; h < 2; h++)
        for (uint32_t i = 0; i < cnt[h]; i++)
            want[nw++] = sets[h][i];
    qsort(want, nw, sizeof *want, cmp_lev);
    uint32_t m = 0;
    for (uint32_t i = 0; i < nw; i++)
        if (m == 0 || cmp_lev(&want[i], &want[m - 1]) != 0)
            want[m++] = want[i];
    aq_csv_strs a = strs_of(sets[0], cnt[0]), b = strs_of(sets[1], cnt[1]), u;
    cr_assert_eq(aq_csv_domain_union(&a, &b, &u), 0);
    cr_assert_eq(u.n, m);
    for (uint32_t i = 0; i < m; i++) {
        size_t l = strlen(want[i]);
        cr_assert(u.off[i + 1] - u.off[i] == l && memcmp(u.bytes + u.off[i], want[i], l) == 0,
                  "level %u", i);
    }
    /* a chunk holding b's levels (one row each) re-codes to their places in the union */
    aq_csv_col c;
    memset(&c, 0, sizeof c);
    c.type = AQ_CSV_T_CAT;
    c.rows = b.n;
    c.na = calloc((b.n + 7) / 8 + 1, 1);
    c.vals = malloc((b.n + 1) * sizeof(uint32_t));
    cr_assert(c.na && c.vals);
    for (uint32_t r = 0; r < b.n; r++)
        ((uint32_t *)c.vals)[r] = r;
    cr_assert_eq(aq_csv_domain_of(&(aq_csv_col){.type = AQ_CSV_T_CAT, .text = b}, &c.text), 0);
    cr_assert_eq(aq_csv_col_recode(&c, &u), 0);
    for (uint32_t r = 0; r < b.n; r++) {
        size_t len;
        const char *s = aq_csv_col_str(&c, r, &len);
        cr_assert(s && len == strlen(sets[1][r]) && memcmp(s, sets[1][r], len) == 0, "row %u", r);
    }
    aq_csv_col_free(&c);
    aq_csv_strs_free(&a);
    aq_csv_strs_free(&b);
    aq_csv_strs_free(&u);
    for (uint32_t i = 0; i < 2 * N; i++)
        free(all[i]);
    free(all);
    free(sets[0]);
    free(sets[1]);
    free(want);
}
