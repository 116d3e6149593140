/* The h2o smalldata files: known facts, sensible types, and parse -> export -> parse. */
#include "aq_csv_export.h"
#include "aq_csv_summary.h"
#include "csv_frame.h"

#include "aq_error.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load(const char *name, const aq_csv_opts *o, size_t max_piece, csv_frame *f) {
    char *path = csv_data_path(name);
    size_t len;
    char *data = csv_read_file(path, &len);
    cr_assert(data, "cannot read %s (AQ_DATA_DIR)", path);
    aq_csv_err err = {0};
    int rc = csv_frame_load(data, len, o, max_piece, f, &err);
    cr_assert_eq(rc, 0, "%s: %s (%s)", name, aq_strerror(rc), err.msg);
    free(data);
    free(path);
}

static int col_index(const csv_frame *f, const char *name) {
    for (uint32_t j = 0; j < f->setup.ncols; j++)
        if (strcmp(f->setup.names[j], name) == 0)
            return (int)j;
    cr_assert_fail("no column %s", name);
    return -1;
}

Test(csv_data, iris_150_rows_5_cols_class_has_3_levels) {
    csv_frame f;
    load("iris_wheader.csv", NULL, 4u << 20, &f);
    cr_assert_eq(f.setup.d.sep, ',');
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 5);
    cr_assert_eq(f.rows, 150);
    cr_assert_str_eq(f.setup.names[0], "sepal_len");
    for (int j = 0; j < 4; j++)
        cr_assert_eq(f.final[j], AQ_CSV_T_FLOAT, "col %d is %s", j, aq_csv_type_name(f.final[j]));
    cr_assert_eq(f.final[4], AQ_CSV_T_CAT);
    aq_csv_col *cls = &f.chunks[0][4];
    cr_assert_eq(cls->text.n, 3);
    size_t len;
    const char *s = aq_csv_col_str(cls, 0, &len);
    cr_assert(len == 11 && memcmp(s, "Iris-setosa", 11) == 0);
    cr_assert_float_eq(aq_csv_col_num(&f.chunks[0][0], 0), 5.1, 0);
    csv_frame_free(&f);
}

Test(csv_data, prostate_380_rows_9_numeric_cols) {
    csv_frame f;
    load("prostate.csv", NULL, 4u << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 9);
    cr_assert_eq(f.rows, 380);
    for (uint32_t j = 0; j < 9; j++)
        cr_assert(f.final[j] == AQ_CSV_T_INT || f.final[j] == AQ_CSV_T_FLOAT, "%s is %s",
                  f.setup.names[j], aq_csv_type_name(f.final[j]));
    cr_assert_eq(f.final[col_index(&f, "PSA")], AQ_CSV_T_FLOAT);
    cr_assert_eq(f.final[col_index(&f, "ID")], AQ_CSV_T_INT);
    /* IDs 1..380 need two bytes, CAPSULE 0/1 one */
    cr_assert_eq(f.chunks[0][col_index(&f, "ID")].width, 2);
    cr_assert_eq(f.chunks[0][col_index(&f, "CAPSULE")].width, 1);
    csv_frame_free(&f);
}

Test(csv_data, allyears_43978_rows_31_cols_with_na) {
    csv_frame f;
    load("allyears2k_headers.csv", NULL, 4u << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 31);
    cr_assert_eq(f.rows, 43978);
    cr_assert_geq(f.npieces, 2, "4.6 MB must be cut into at least two 4 MiB pieces");
    for (size_t i = 0; i < f.npieces; i++)
        cr_assert_leq(f.piece_len[i], 4u << 20);
    int tail = col_index(&f, "TailNum"), carrier = col_index(&f, "UniqueCarrier"),
        dep = col_index(&f, "DepTime"), year = col_index(&f, "Year"),
        arr = col_index(&f, "IsArrDelayed");
    cr_assert_eq(f.final[year], AQ_CSV_T_INT);
    cr_assert_eq(f.final[dep], AQ_CSV_T_INT);
    cr_assert_eq(f.final[carrier], AQ_CSV_T_CAT);
    cr_assert_eq(f.final[arr], AQ_CSV_T_CAT);
    cr_assert(f.final[tail] == AQ_CSV_T_CAT || f.final[tail] == AQ_CSV_T_STR);
    cr_assert_gt(f.obs[dep].na, 0, "DepTime has NA");
    cr_assert_lt(f.obs[dep].na, f.rows);
    /* the levels of IsArrDelayed across all chunks are exactly NO and YES */
    aq_csv_sum total;
    for (size_t i = 0; i < f.npieces; i++) {
        aq_csv_sum s;
        cr_assert_eq(aq_csv_sum_col(&f.chunks[i][arr], &s), 0);
        if (i == 0) {
            total = s;
        } else {
            cr_assert_eq(aq_csv_sum_merge(&total, &s), 0);
            aq_csv_sum_free(&s);
        }
    }
    cr_assert_eq(total.nlev, 2);
    cr_assert_str_eq(total.lev[0], "NO");
    cr_assert_str_eq(total.lev[1], "YES");
    cr_assert_eq(total.count[0] + total.count[1] + total.na, 43978);
    aq_csv_sum_free(&total);
    csv_frame_free(&f);
}

Test(csv_data, covtype_20000_rows_55_int_cols_no_header) {
    csv_frame f;
    load("covtype.20k.data", NULL, 1u << 20, &f);
    cr_assert_not(f.setup.header);
    cr_assert_eq(f.setup.ncols, 55);
    cr_assert_eq(f.rows, 20000);
    cr_assert_str_eq(f.setup.names[0], "C1");
    cr_assert_str_eq(f.setup.names[54], "C55");
    for (uint32_t j = 0; j < 55; j++)
        cr_assert_eq(f.final[j], AQ_CSV_T_INT, "C%u is %s", j + 1, aq_csv_type_name(f.final[j]));
    cr_assert_eq(aq_csv_col_int(&f.chunks[0][0], 0), 2596);
    cr_assert_eq(aq_csv_col_int(&f.chunks[0][4], 1), -6);
    csv_frame_free(&f);
}

Test(csv_data, is_na_space_separated_with_question_marks) {
    csv_frame f;
    load("is_NA.csv", NULL, 4u << 20, &f);
    cr_assert_eq(f.setup.d.sep, ' ');
    cr_assert_eq(f.setup.ncols, 3);
    cr_assert_not(f.setup.header);
    cr_assert_eq(f.rows, 25);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT, "'?' is text by default");
    csv_frame_free(&f);
    /* with "?" declared missing, the third column is numbers and NA */
    const char *na[] = {"", "NA", "?"};
    aq_csv_opts o = aq_csv_opts_default();
    o.na = na;
    o.nna = 3;
    load("is_NA.csv", &o, 4u << 20, &f);
    cr_assert_eq(f.final[2], AQ_CSV_T_INT, "C3 is %s", aq_csv_type_name(f.final[2]));
    cr_assert_eq(f.obs[2].na, 4);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT, "'?,' and '??,' are still text");
    csv_frame_free(&f);
}

Test(csv_data, test_quote_keeps_single_quotes_literally) {
    csv_frame f;
    load("test_quote.csv", NULL, 4u << 20, &f);
    cr_assert_eq(f.setup.d.sep, ',');
    cr_assert_eq(f.setup.ncols, 11);
    cr_assert_eq(f.rows, 7);
    cr_assert_not(f.setup.header);
    size_t len;
    const char *s = aq_csv_col_str(&f.chunks[0][4], 2, &len);
    cr_assert(s && len == 7 && memcmp(s, "'1'0eE'", 7) == 0, "got %.*s", (int)len, s);
    csv_frame_free(&f);
}

Test(csv_data, test_parse_mix_comments_ctrl_a_separator_and_number_spellings) {
    csv_frame f;
    load("test_parse_mix.csv", NULL, 4u << 20, &f);
    cr_assert_eq(f.setup.d.sep, '\x01');
    cr_assert_eq(f.setup.d.comment, '#');
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 4);
    cr_assert_str_eq(f.setup.names[0], "FirstName");
    cr_assert_eq(f.rows, 34);
    for (int j = 0; j < 3; j++)
        cr_assert_eq(f.final[j], AQ_CSV_T_FLOAT);
    cr_assert_eq(f.final[3], AQ_CSV_T_INT);
    /* "NaN" is a float NaN (the column is numeric), an empty field is NA; "-.6e102" is a number */
    cr_assert_not(aq_csv_col_is_na(&f.chunks[0][1], 1));
    cr_assert(isnan(aq_csv_col_num(&f.chunks[0][1], 1)));
    cr_assert(aq_csv_col_is_na(&f.chunks[0][1], 2));
    cr_assert_float_eq(aq_csv_col_num(&f.chunks[0][0], 33), -0.6e102, 1e88);
    csv_frame_free(&f);
}

Test(csv_data, test_time_quoted_timestamps_to_ms) {
    csv_frame f;
    load("test_time.csv", NULL, 4u << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 6);
    cr_assert_eq(f.rows, 19);
    cr_assert_eq(f.final[col_index(&f, "click_time")], AQ_CSV_T_TIME);
    cr_assert_eq(f.final[col_index(&f, "query_time")], AQ_CSV_T_TIME);
    cr_assert_eq(f.final[col_index(&f, "sku")], AQ_CSV_T_INT);
    /* 2011-09-01 23:44:52.533 UTC */
    cr_assert_eq(aq_csv_col_int(&f.chunks[0][col_index(&f, "click_time")], 0), 1314920692533LL);
    csv_frame_free(&f);
}

/* Exports every chunk of f as one CSV text. */
static char *export_frame(const csv_frame *f, size_t *len) {
    aq_wr w;
    aq_wr_init(&w);
    aq_csv_export_opts eo = {.sep = ',', .header = true};
    for (size_t i = 0; i < f->npieces; i++) {
        eo.header = i == 0 && f->setup.header;
        int rc = aq_csv_export(f->chunks[i], f->setup.ncols, (const char *const *)f->setup.names, 0,
                               f->chunks[i][0].rows, &eo, &w);
        cr_assert_eq(rc, 0);
    }
    *len = w.len;
    return (char *)w.p;
}

static bool same_value(const aq_csv_col *a, uint32_t ra, const aq_csv_col *b, uint32_t rb) {
    if (aq_csv_col_is_na(a, ra) || aq_csv_col_is_na(b, rb))
        return aq_csv_col_is_na(a, ra) == aq_csv_col_is_na(b, rb);
    switch (a->type) {
    case AQ_CSV_T_INT:
    case AQ_CSV_T_TIME:
        return aq_csv_col_int(a, ra) == aq_csv_col_int(b, rb);
    case AQ_CSV_T_FLOAT: {
        double x = aq_csv_col_num(a, ra), y = aq_csv_col_num(b, rb);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case AQ_CSV_T_CAT:
    case AQ_CSV_T_STR: {
        size_t la, lb;
        const char *pa = aq_csv_col_str(a, ra, &la), *pb = aq_csv_col_str(b, rb, &lb);
        return la == lb && memcmp(pa, pb, la) == 0;
    }
    default:
        return true;
    }
}

static void round_trip(const char *name, const aq_csv_opts *o) {
    csv_frame a, b;
    load(name, o, 1u << 20, &a);
    size_t len;
    char *text = export_frame(&a, &len);
    aq_csv_err err = {0};
    aq_csv_opts o2 = aq_csv_opts_default();
    o2.sep = ',';
    o2.header = a.setup.header ? AQ_CSV_HEADER_YES : AQ_CSV_HEADER_NO;
    if (o) {
        o2.na = o->na;
        o2.nna = o->nna;
    }
    int rc = csv_frame_load(text, len, &o2, 1u << 20, &b, &err);
    cr_assert_eq(rc, 0, "%s re-read: %s", name, err.msg);
    cr_assert_eq(b.setup.ncols, a.setup.ncols, "%s", name);
    cr_assert_eq(b.rows, a.rows, "%s", name);
    for (uint32_t j = 0; j < a.setup.ncols; j++) {
        cr_assert_str_eq(b.setup.names[j], a.setup.names[j]);
        cr_assert_eq(b.final[j], a.final[j], "%s col %s: %s then %s", name, a.setup.names[j],
                     aq_csv_type_name(a.final[j]), aq_csv_type_name(b.final[j]));
    }
    for (uint64_t r = 0; r < a.rows; r++) {
        size_t pa, pb;
        uint32_t ra, rb;
        cr_assert_eq(csv_frame_locate(&a, r, &pa, &ra), 0);
        cr_assert_eq(csv_frame_locate(&b, r, &pb, &rb), 0);
        for (uint32_t j = 0; j < a.setup.ncols; j++)
            cr_assert(same_value(&a.chunks[pa][j], ra, &b.chunks[pb][j], rb),
                      "%s row %llu col %s differs", name, (unsigned long long)r, a.setup.names[j]);
    }
    free(text);
    csv_frame_free(&a);
    csv_frame_free(&b);
}

Test(csv_data, round_trip_every_smalldata_file, .timeout = 120) {
    const char *files[] = {"iris_wheader.csv",   "prostate.csv", "allyears2k_headers.csv",
                           "covtype.20k.data",   "is_NA.csv",    "test_quote.csv",
                           "test_parse_mix.csv", "test_time.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        round_trip(files[i], NULL);
}

/* pandas' mean and std (ddof=1) of each prostate column, computed here independently: two
 * passes in long double over values read with strtod. */
Test(csv_data, prostate_summary_matches_independent_two_pass) {
    csv_frame f;
    load("prostate.csv", NULL, 1024, &f); /* small pieces: the merge does the work */
    cr_assert_gt(f.npieces, 5);
    char *path = csv_data_path("prostate.csv");
    size_t len;
    char *data = csv_read_file(path, &len);
    for (uint32_t j = 0; j < 9; j++) {
        long double vals[400];
        size_t n = 0;
        char *save = NULL, *copy = strdup(data);
        char *line = strtok_r(copy, "\n", &save); /* header */
        while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
            char *p = line;
            for (uint32_t k = 0; k < j; k++)
                p = strchr(p, ',') + 1;
            vals[n++] = strtod(p, NULL);
        }
        free(copy);
        long double sum = 0, m2 = 0;
        for (size_t i = 0; i < n; i++)
            sum += vals[i];
        long double mean = sum / n;
        for (size_t i = 0; i < n; i++)
            m2 += (vals[i] - mean) * (vals[i] - mean);
        double sd = (double)sqrtl(m2 / (n - 1));

        aq_csv_sum total;
        for (size_t i = 0; i < f.npieces; i++) {
            aq_csv_sum s;
            cr_assert_eq(aq_csv_sum_col(&f.chunks[i][j], &s), 0);
            if (i == 0) {
                total = s;
            } else {
                cr_assert_eq(aq_csv_sum_merge(&total, &s), 0);
                aq_csv_sum_free(&s);
            }
        }
        cr_assert_eq(total.n, 380);
        cr_assert_eq(total.na, 0);
        double rel_mean = fabs(total.mean - (double)mean) / fabs((double)mean);
        double rel_sd = fabs(aq_csv_sum_sd(&total) - sd) / sd;
        cr_assert_lt(rel_mean, 1e-12, "%s mean %.17g vs %.17g", f.setup.names[j], total.mean,
                     (double)mean);
        cr_assert_lt(rel_sd, 1e-12, "%s sd %.17g vs %.17g", f.setup.names[j], aq_csv_sum_sd(&total),
                     sd);
        aq_csv_sum_free(&total);
    }
    free(data);
    free(path);
    csv_frame_free(&f);
}
