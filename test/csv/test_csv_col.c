/* Edge cases of the whole pipeline (setup, cut, parse, type agreement) on files written here. */
#include "aq_csv_export.h"
#include "aq_csv_value.h"
#include "csv_frame.h"

#include "aq_error.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_str(const char *s, const aq_csv_opts *o, size_t max_piece, csv_frame *f,
                    aq_csv_err *err) {
    return csv_frame_load(s, strlen(s), o, max_piece, f, err);
}

static void load_ok(const char *s, const aq_csv_opts *o, size_t max_piece, csv_frame *f) {
    aq_csv_err err = {0};
    int rc = load_str(s, o, max_piece, f, &err);
    cr_assert_eq(rc, 0, "%s: %s", aq_strerror(rc), err.msg);
}

static const aq_csv_col *cell(const csv_frame *f, uint64_t row, uint32_t col, uint32_t *r) {
    size_t p;
    cr_assert_eq(csv_frame_locate(f, row, &p, r), 0, "row %llu", (unsigned long long)row);
    return &f->chunks[p][col];
}

static int64_t cell_int(const csv_frame *f, uint64_t row, uint32_t col) {
    uint32_t r;
    const aq_csv_col *c = cell(f, row, col, &r);
    return aq_csv_col_int(c, r);
}

static double cell_num(const csv_frame *f, uint64_t row, uint32_t col) {
    uint32_t r;
    const aq_csv_col *c = cell(f, row, col, &r);
    return aq_csv_col_num(c, r);
}

static bool cell_na(const csv_frame *f, uint64_t row, uint32_t col) {
    uint32_t r;
    const aq_csv_col *c = cell(f, row, col, &r);
    return aq_csv_col_is_na(c, r);
}

static bool str_is(const csv_frame *f, uint64_t row, uint32_t col, const char *want) {
    uint32_t r;
    const aq_csv_col *c = cell(f, row, col, &r);
    size_t len;
    const char *p = aq_csv_col_str(c, r, &len);
    return p && len == strlen(want) && memcmp(p, want, len) == 0;
}

Test(csv_col, values_classify_as_expected) {
    aq_csv_na na = aq_csv_na_default();
    int64_t iv;
    double dv;
    cr_assert_eq(aq_csv_classify("42", 2, false, &na, &iv, &dv), AQ_CSV_V_INT);
    cr_assert_eq(iv, 42);
    cr_assert_eq(aq_csv_classify(" -7 ", 4, false, &na, &iv, &dv), AQ_CSV_V_INT);
    cr_assert_eq(iv, -7);
    cr_assert_eq(aq_csv_classify("9223372036854775807", 19, false, &na, &iv, &dv), AQ_CSV_V_INT);
    cr_assert_eq(aq_csv_classify("9223372036854775808", 19, false, &na, &iv, &dv), AQ_CSV_V_TEXT,
                 "beyond int64 is text: a double would drop digits");
    cr_assert_eq(aq_csv_classify("007", 3, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("-01", 3, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("00.5", 4, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("08123", 5, true, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("1e400", 5, false, &na, &iv, &dv), AQ_CSV_V_TEXT,
                 "out of a double's range: text, not Inf");
    cr_assert_eq(aq_csv_classify("-2.5e-400", 9, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("0", 1, false, &na, &iv, &dv), AQ_CSV_V_INT);
    cr_assert_eq(aq_csv_classify("-0", 2, false, &na, &iv, &dv), AQ_CSV_V_INT);
    cr_assert_eq(aq_csv_classify("0.5", 3, false, &na, &iv, &dv), AQ_CSV_V_FLOAT);
    cr_assert_eq(aq_csv_classify("  ", 2, false, &na, &iv, &dv), AQ_CSV_V_TEXT,
                 "blanks alone are a value");
    cr_assert_eq(aq_csv_classify("2015-01-02 03:04:05.1234", 24, false, &na, &iv, &dv),
                 AQ_CSV_V_TEXT, "a fraction past milliseconds would be lost");
    cr_assert_eq(aq_csv_classify("-.6e-01", 7, false, &na, &iv, &dv), AQ_CSV_V_FLOAT);
    cr_assert_eq(dv, -0.06);
    cr_assert_eq(aq_csv_classify("1e", 2, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("0x10", 4, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("-Inf", 4, false, &na, &iv, &dv), AQ_CSV_V_FLOAT);
    cr_assert(isinf(dv) && dv < 0);
    cr_assert_eq(aq_csv_classify("NA", 2, false, &na, &iv, &dv), AQ_CSV_V_NA);
    cr_assert_eq(aq_csv_classify("nan", 3, false, &na, &iv, &dv), AQ_CSV_V_FLOAT);
    cr_assert(isnan(dv));
    cr_assert_eq(aq_csv_classify("NAN", 3, false, &na, &iv, &dv), AQ_CSV_V_FLOAT);
    cr_assert_eq(aq_csv_classify("", 0, false, &na, &iv, &dv), AQ_CSV_V_NA);
    cr_assert_eq(aq_csv_classify("", 0, true, &na, &iv, &dv), AQ_CSV_V_NA);
    cr_assert_eq(aq_csv_classify("NA", 2, true, &na, &iv, &dv), AQ_CSV_V_TEXT,
                 "a quoted NA is the string");
    cr_assert_eq(aq_csv_classify("2015-01-02", 10, false, &na, &iv, &dv), AQ_CSV_V_TIME);
    cr_assert_eq(iv, 1420156800000LL);
    cr_assert_eq(aq_csv_classify("2015-01-02 03:04:05", 19, false, &na, &iv, &dv), AQ_CSV_V_TIME);
    cr_assert_eq(iv, 1420167845000LL);
    cr_assert_eq(aq_csv_classify("2015-01-02T03:04:05.123Z", 24, false, &na, &iv, &dv),
                 AQ_CSV_V_TIME);
    cr_assert_eq(iv, 1420167845123LL);
    cr_assert_eq(aq_csv_classify("2015-02-29", 10, false, &na, &iv, &dv), AQ_CSV_V_TEXT);
    cr_assert_eq(aq_csv_classify("1969-12-31 23:59:59.999", 23, false, &na, &iv, &dv),
                 AQ_CSV_V_TIME);
    cr_assert_eq(iv, -1);
    char buf[48];
    aq_csv_format_time(-1, buf);
    cr_assert_str_eq(buf, "1969-12-31 23:59:59.999");
    aq_csv_format_time(1420156800000LL, buf);
    cr_assert_str_eq(buf, "2015-01-02");
}

Test(csv_col, doubles_print_shortest_and_read_back_identical) {
    srand(7);
    char buf[48];
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
        double d;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            continue;
        int n = aq_csv_format_double(d, buf);
        double back;
        cr_assert(aq_csv_parse_float(buf, (size_t)n, &back), "%s", buf);
        cr_assert(memcmp(&back, &d, sizeof d) == 0, "%s", buf);
    }
    aq_csv_format_double(0.1, buf);
    cr_assert_str_eq(buf, "0.1");
    aq_csv_format_double(3.0, buf);
    cr_assert_str_eq(buf, "3.0");
    aq_csv_format_double(-0.0, buf);
    cr_assert_str_eq(buf, "-0.0");
    aq_csv_format_double(1e300, buf);
    cr_assert_str_eq(buf, "1e+300");
}

/* Short decimals take a fast path (Clinger) instead of strtod: every spelling must still read as
 * the very double strtod reads, at the edges of that path (2^53, 10^22, 19 digits) too. */
Test(csv_col, decimals_read_exactly_as_strtod_reads_them) {
    srand(11);
    const char *edge[] = {
        "9007199254740992", "9007199254740993", "9007199254740992e22", "9007199254740993e-22",
        "1e22", "1e23", "1e-22", "1e-23", "1234567890123456789", "12345678901234567890", "0.1",
        "-0.0", "+.5", "5.", "0000000000000000000000123.25", "0.000000000000000000000001",
        "4.9e-324", "1.7976931348623157e308", "123456789012345678e-5",
        /* 17-19 digits: exact integer rounding, ties to even */
        "13.649697581270862", "0.30000000000000004", "18014398509481989", "18014398509481990",
        "9999999999999999999e-19", "9999999999999999999e19", "1.000000000000000055511151231257827",
        "1.0000000000000001110223024625156540e0", "4611686018427387905e-19"};
    char buf[64];
    for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 200000; i++) {
        const char *t = buf;
        if (i < sizeof edge / sizeof edge[0]) {
            t = edge[i];
        } else {
            /* up to 20 digits, a point somewhere or none, sometimes an exponent of -30..30 */
            int nd = 1 + rand() % 20, dot = rand() % (nd + 2), n = 0;
            if (rand() % 4 == 0)
                buf[n++] = rand() % 2 ? '-' : '+';
            for (int d = 0; d < nd; d++) {
                if (d == dot)
                    buf[n++] = '.';
                buf[n++] = (char)('0' + rand() % 10);
            }
            if (rand() % 3 == 0)
                n += snprintf(buf + n, sizeof buf - (size_t)n, "e%d", rand() % 61 - 30);
            buf[n] = 0;
        }
        double got, want = strtod(t, NULL);
        cr_assert(aq_csv_parse_float(t, strlen(t), &got), "%s", t);
        cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s: %.17g, strtod %.17g", t, got, want);
    }
}

Test(csv_col, int_widths_follow_the_range) {
    csv_frame f;
    load_ok("a,b,c,d\n1,300,70000,5000000000\n-128,-32768,-2147483648,-1\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.chunks[0][0].width, 1);
    cr_assert_eq(f.chunks[0][1].width, 2);
    cr_assert_eq(f.chunks[0][2].width, 4);
    cr_assert_eq(f.chunks[0][3].width, 8);
    cr_assert_eq(aq_csv_col_int(&f.chunks[0][3], 0), 5000000000LL);
    cr_assert_eq(aq_csv_col_int(&f.chunks[0][2], 1), INT32_MIN);
    csv_frame_free(&f);
}

/* Builds "x,y\n" then rows of i, i*3 with a twist in the last row. */
static char *numbers(int rows, const char *last) {
    char *s = malloc((size_t)rows * 24 + 64);
    size_t o = (size_t)sprintf(s, "x,y\n");
    for (int i = 0; i < rows - 1; i++)
        o += (size_t)sprintf(s + o, "%d,%d\n", i, i * 3);
    sprintf(s + o, "%s\n", last);
    return s;
}

Test(csv_col, int_column_turns_float_at_its_last_row) {
    char *s = numbers(5000, "4999,2.5");
    csv_frame f;
    load_ok(s, NULL, 4096, &f);
    cr_assert_gt(f.npieces, 5);
    cr_assert_eq(f.final[0], AQ_CSV_T_INT);
    cr_assert_eq(f.final[1], AQ_CSV_T_FLOAT);
    cr_assert_eq(f.reparsed, 0, "int -> float widens in memory");
    for (size_t i = 0; i < f.npieces; i++)
        cr_assert_eq(f.chunks[i][1].type, AQ_CSV_T_FLOAT);
    cr_assert_eq(cell_num(&f, 4999, 1), 2.5);
    cr_assert_eq(cell_num(&f, 100, 1), 300.0);
    csv_frame_free(&f);
    free(s);
}

Test(csv_col, numeric_column_with_one_word_at_the_end_becomes_categorical_keeping_text) {
    char *s = numbers(3000, "2999,oops");
    /* leading zeros and a float in the earlier rows must survive as text */
    s[4] = '0';
    csv_frame f;
    load_ok(s, NULL, 4096, &f);
    cr_assert_eq(f.final[1], AQ_CSV_T_CAT);
    cr_assert_gt(f.reparsed, 0, "numbers -> text re-parses the pieces");
    cr_assert(str_is(&f, 2999, 1, "oops"));
    cr_assert(str_is(&f, 10, 1, "30"));
    for (size_t i = 0; i < f.npieces; i++)
        cr_assert_eq(f.chunks[i][1].type, AQ_CSV_T_CAT);
    csv_frame_free(&f);
    free(s);
}

Test(csv_col, categorical_cap_100000_levels_is_string_1000_is_categorical) {
    size_t cap = 100000 * 16 + 64;
    char *s = malloc(cap);
    size_t o = (size_t)sprintf(s, "id,name\n");
    for (int i = 0; i < 100000; i++)
        o += (size_t)sprintf(s + o, "%d,lvl%d\n", i, i);
    csv_frame f;
    load_ok(s, NULL, 256 << 10, &f);
    cr_assert_gt(f.npieces, 3);
    cr_assert_eq(f.final[1], AQ_CSV_T_STR, "estimated %.0f levels", aq_csv_obs_distinct(&f.obs[1]));
    double est = aq_csv_obs_distinct(&f.obs[1]);
    cr_assert(est > 90000 && est < 110000, "estimate %.0f", est);
    for (size_t i = 0; i < f.npieces; i++)
        cr_assert_eq(f.chunks[i][1].type, AQ_CSV_T_STR);
    cr_assert(str_is(&f, 99999, 1, "lvl99999"));
    csv_frame_free(&f);

    o = (size_t)sprintf(s, "id,name\n");
    for (int i = 0; i < 100000; i++)
        o += (size_t)sprintf(s + o, "%d,lvl%d\n", i, i % 1000);
    load_ok(s, NULL, 256 << 10, &f);
    cr_assert_eq(f.final[1], AQ_CSV_T_CAT);
    cr_assert_eq(aq_csv_obs_distinct(&f.obs[1]), 1000.0, "exact below the sketch size");
    cr_assert_eq(f.chunks[0][1].text.n, 1000);
    csv_frame_free(&f);
    free(s);
}

Test(csv_col, ragged_rows_are_repaired_and_counted_unless_strict) {
    const char *s = "a,b,c\n1,2,3\n\n4,5\n6,7,8\n";
    csv_frame f;
    aq_csv_err err = {0};
    aq_csv_opts o = aq_csv_opts_default();
    o.strict = true;
    cr_assert_eq(load_str(s, &o, 1 << 20, &f, &err), AQ_EPARSE);
    cr_assert_eq(err.line, 4);
    cr_assert_str_eq(err.msg, "line 4: 2 fields, expected 3");
    load_ok(s, NULL, 1 << 20, &f);
    cr_assert_eq(f.rows, 3);
    cr_assert(cell_na(&f, 1, 2));
    cr_assert_eq(cell_int(&f, 1, 1), 5);
    cr_assert_eq(f.obs[0].repaired, 1);
    cr_assert_eq(f.obs[0].nrepair, 1);
    cr_assert_eq(f.obs[0].repair_line[0], 4);
    csv_frame_free(&f);
    /* a row wider than the setup keeps its extra fields in the last column, as written */
    load_ok("a,b\n1,2\n", NULL, 1 << 20, &f);
    const char *later = "3,4\n5,6,\"7\",8\r\n";
    aq_csv_piece pc = {later, strlen(later), 41, false};
    aq_csv_col *cols;
    cr_assert_eq(aq_csv_parse(&pc, &f.setup, NULL, NULL, &cols, &err), 0);
    size_t len;
    const char *v = aq_csv_col_str(&cols[1], 1, &len);
    cr_assert(v && len == 7 && memcmp(v, "6,\"7\",8", 7) == 0, "got %.*s", (int)len, v);
    cr_assert_eq(cols[0].obs.repaired, 1);
    cr_assert_eq(cols[0].obs.repair_line[0], 42);
    aq_csv_cols_free(cols, 2);
    f.setup.strict = true;
    cr_assert_eq(aq_csv_parse(&pc, &f.setup, NULL, NULL, &cols, &err), AQ_EPARSE);
    cr_assert_str_eq(err.msg, "line 42: 4 fields, expected 2");
    csv_frame_free(&f);
}

Test(csv_col, quotes_out_of_place_are_bytes_and_counted) {
    csv_frame f;
    /* a stray quote, bytes after a closing quote, and a quote never closed at the end (the
     * quote is given: with so many out of place, the guess would read the file unquoted) */
    aq_csv_opts dq = aq_csv_opts_default();
    dq.quote = '"';
    load_ok("h,w\nann,5'10\"\nbob,\"6\"ft\nx,1\ncy,\"7,8\n9,10\n", &dq, 1 << 20, &f);
    cr_assert_eq(f.rows, 5);
    cr_assert(str_is(&f, 0, 1, "5'10\""));
    cr_assert(str_is(&f, 1, 1, "6ft"));
    cr_assert(str_is(&f, 3, 1, "\"7,8"), "the unclosed quote is a byte (and the row folded)");
    cr_assert(str_is(&f, 3, 0, "cy"));
    cr_assert(str_is(&f, 4, 0, "9"), "rows after it are rows again");
    cr_assert_eq(f.obs[0].repaired, 3, "got %llu", (unsigned long long)f.obs[0].repaired);
    cr_assert_eq(f.obs[0].repair_line[0], 2);
    cr_assert_eq(f.obs[0].repair_line[1], 3);
    cr_assert_eq(f.obs[0].repair_line[2], 5);
    csv_frame_free(&f);
    dq.strict = true;
    aq_csv_err err = {0};
    cr_assert_eq(load_str("h,w\nann,5'10\"\n", &dq, 1 << 20, &f, &err), AQ_EPARSE);
    cr_assert_str_eq(err.msg, "line 2: a quote inside an unquoted field");
}

Test(csv_col, line_numbers_in_later_pieces_count_quoted_newlines) {
    char s[20000];
    size_t o = (size_t)sprintf(s, "a,b\n");
    for (int i = 0; i < 300; i++)
        o += (size_t)sprintf(s + o, "\"multi\nline %d\",%d\n", i, i);
    sprintf(s + o, "x\n");
    csv_frame f;
    aq_csv_err err = {0};
    aq_csv_opts op = aq_csv_opts_default();
    op.strict = true;
    cr_assert_eq(load_str(s, &op, 1024, &f, &err), AQ_EPARSE);
    cr_assert_eq(err.line, 602, "%s", err.msg);
    load_ok(s, NULL, 1024, &f);
    cr_assert_eq(f.obs[0].repaired, 1);
    cr_assert_eq(f.obs[0].repair_line[0], 602, "the short row's line, counted across pieces");
    csv_frame_free(&f);
}

Test(csv_col, bom_crlf_no_final_newline_blank_lines_at_end) {
    csv_frame f;
    load_ok("\xEF\xBB\xBFname,val\r\nx,1\r\n\"y\r\nz\",2\r\nw,3\r\n\r\n\r\n\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_str_eq(f.setup.names[0], "name");
    cr_assert_eq(f.rows, 3);
    cr_assert(str_is(&f, 1, 0, "y\r\nz"));
    csv_frame_free(&f);
    load_ok("name,val\nx,1\ny,2", NULL, 1 << 20, &f);
    cr_assert_eq(f.rows, 2);
    cr_assert_eq(cell_int(&f, 1, 1), 2);
    csv_frame_free(&f);
}

Test(csv_col, header_only_file) {
    csv_frame f;
    load_ok("alpha,beta,gamma\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 3);
    cr_assert_eq(f.rows, 0);
    cr_assert_str_eq(f.setup.names[2], "gamma");
    cr_assert_eq(f.final[0], AQ_CSV_T_NONE);
    csv_frame_free(&f);
}

Test(csv_col, one_column) {
    csv_frame f;
    load_ok("v\n1\n2\nNA\n4\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.ncols, 1);
    cr_assert(f.setup.header);
    cr_assert_eq(f.rows, 4);
    cr_assert_eq(f.final[0], AQ_CSV_T_INT);
    cr_assert(cell_na(&f, 2, 0));
    /* export writes the NA row as "" so it is not a skipped blank line */
    aq_wr w;
    aq_wr_init(&w);
    aq_csv_export_opts eo = {.sep = ',', .header = true};
    cr_assert_eq(aq_csv_export(f.chunks[0], 1, (const char *const *)f.setup.names, 0, 4, &eo, &w),
                 0);
    cr_assert(w.len == 11 && memcmp(w.p, "v\n1\n2\n\"\"\n4\n", 11) == 0, "%.*s", (int)w.len, w.p);
    aq_wr_free(&w);
    csv_frame_free(&f);
}

Test(csv_col, one_thousand_columns) {
    size_t cap = 1000 * 12 * 52;
    char *s = malloc(cap);
    size_t o = 0;
    for (int j = 0; j < 1000; j++)
        o += (size_t)sprintf(s + o, "%sc%d", j ? "," : "", j);
    s[o++] = '\n';
    for (int r = 0; r < 50; r++) {
        for (int j = 0; j < 1000; j++)
            o += (size_t)sprintf(s + o,
                                 j % 3 == 2   ? "%s%d.5"
                                 : j % 3 == 1 ? "%sk%d"
                                              : "%s%d",
                                 j ? "," : "", r * j % 97);
        s[o++] = '\n';
    }
    s[o] = 0;
    csv_frame f;
    load_ok(s, NULL, 64 << 10, &f);
    cr_assert_eq(f.setup.ncols, 1000);
    cr_assert_eq(f.rows, 50);
    cr_assert_str_eq(f.setup.names[999], "c999");
    for (int j = 0; j < 1000; j++)
        cr_assert_eq(f.final[j],
                     j % 3 == 2   ? AQ_CSV_T_FLOAT
                     : j % 3 == 1 ? AQ_CSV_T_CAT
                                  : AQ_CSV_T_INT,
                     "c%d", j);
    cr_assert_eq(cell_num(&f, 49, 998), 49 * 998 % 97 + 0.5);
    csv_frame_free(&f);
    free(s);
}

Test(csv_col, names_trimmed_generated_and_deduplicated) {
    csv_frame f;
    load_ok(" a ,a,,a_2,a\n1,2,3,4,5\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_str_eq(f.setup.names[0], "a");
    cr_assert_str_eq(f.setup.names[1], "a_2");
    cr_assert_str_eq(f.setup.names[2], "C3");
    cr_assert_str_eq(f.setup.names[3], "a_2_2");
    cr_assert_str_eq(f.setup.names[4], "a_3");
    csv_frame_free(&f);
}

Test(csv_col, header_guess_and_overrides) {
    csv_frame f;
    /* all text, first row distinct and never repeated: a header */
    load_ok("color,size\nred,big\nblue,small\nred,small\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    csv_frame_free(&f);
    /* first row repeats below: data */
    load_ok("red,big\nblue,small\nred,big\n", NULL, 1 << 20, &f);
    cr_assert_not(f.setup.header);
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    /* all numbers: data */
    load_ok("1,2\n3,4\n", NULL, 1 << 20, &f);
    cr_assert_not(f.setup.header);
    csv_frame_free(&f);
    aq_csv_opts o = aq_csv_opts_default();
    o.header = AQ_CSV_HEADER_YES;
    load_ok("1,2\n3,4\n", &o, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_str_eq(f.setup.names[0], "1");
    cr_assert_eq(f.rows, 1);
    csv_frame_free(&f);
    o.header = AQ_CSV_HEADER_NO;
    load_ok("a,b\n3,4\n", &o, 1 << 20, &f);
    cr_assert_eq(f.rows, 2);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT);
    csv_frame_free(&f);
}

/* A header of numbers: years over columns of text, column numbers (pandas writes 0, 1, 2 ... and
 * an empty name for its index) no data row repeats; and a header one field shorter or longer
 * than the rows (a trailing separator on the rows or on the header) is the header, not a
 * preamble line. */
Test(csv_col, header_of_numbers_and_a_header_one_field_off) {
    csv_frame f;
    load_ok("2019,2020,2021\nalpha,beta,gamma\ndelta,eps,zeta\nx,y,z\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_str_eq(f.setup.names[1], "2020");
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    load_ok(",0,1,2\n0,0.5,7,3\n1,1.5,8,4\n2,2.5,9,5\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_str_eq(f.setup.names[0], "C1");
    cr_assert_str_eq(f.setup.names[3], "2");
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    /* consecutive numbers in the data rows too: the first row is data */
    load_ok("1,2,3\n4,5,6\n7,8,9\n", NULL, 1 << 20, &f);
    cr_assert_not(f.setup.header);
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    load_ok("a;b;c\n1;2;3;\n4;5;6;\n7;8;9;\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.skip, 0);
    cr_assert_eq(f.setup.ncols, 4);
    cr_assert_str_eq(f.setup.names[2], "c");
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    load_ok("a,b,c,\n1,2,3\n4,5,6\n7,8,9\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.skip, 0);
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    /* a header naming more columns than the rows fill: every name is kept, rows padded */
    load_ok("a,b,c,d\n1,2\n3,4\n5,6\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 4);
    cr_assert_str_eq(f.setup.names[3], "d");
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    /* the same shape without a header: the wide first row is data, a long row */
    load_ok("7,3,9,4\n1,2\n3,4\n5,6\n", NULL, 1 << 20, &f);
    cr_assert_not(f.setup.header);
    cr_assert_eq(f.setup.ncols, 2);
    csv_frame_free(&f);
    /* a first line alone starting with '#' is a row (numpy's savetxt header), not a comment */
    load_ok("# x, y\n0.5, 1\n1.5, 2\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.d.comment, 0);
    cr_assert(f.setup.header);
    cr_assert_str_eq(f.setup.names[0], "# x");
    cr_assert_eq(f.rows, 2);
    csv_frame_free(&f);
    load_ok("# a note\nx,y\n#c\n1,2\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.d.comment, '#');
    cr_assert_eq(f.rows, 1);
    csv_frame_free(&f);
    /* a title with a separator in it over a header of text: the title is the preamble */
    load_ok("Created as New Dataset,Date Saturday, February 11 2017\ncm-1,%T\n4000.00,98.78\n"
            "3999.00,98.80\n",
            NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.skip, 1);
    cr_assert_str_eq(f.setup.names[1], "%T");
    cr_assert_eq(f.setup.ncols, 2);
    csv_frame_free(&f);
    /* a header and one row a field wider (a quoted newline after a last separator): the row
     * keeps its fields, the frame its names */
    load_ok("\"a\";\"b\"\n\"x\";\"1440\";\"\n\"\n", NULL, 1 << 20, &f);
    cr_assert(f.setup.header);
    cr_assert_eq(f.setup.ncols, 3);
    cr_assert_str_eq(f.setup.names[1], "b");
    cr_assert_eq(f.rows, 1);
    csv_frame_free(&f);
    /* a title padded to the table's width, and an empty row, before a header */
    load_ok("PREAMBLE,,,\n,,,\nw,x,y,z\n1,2,3,4\n5,6,7,8\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.skip, 2);
    cr_assert_str_eq(f.setup.names[0], "w");
    cr_assert_eq(f.rows, 2);
    csv_frame_free(&f);
    /* ... but a sparse first row of data over data is data */
    load_ok(",,,9\n1,2,3,4\n5,6,7,8\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.skip, 0);
    cr_assert_eq(f.rows, 3);
    csv_frame_free(&f);
    /* a title line of one field before the header is still a preamble */
    load_ok("Sales 2020\na,b,c\n1,2,3\n4,5,6\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.skip, 1);
    cr_assert_str_eq(f.setup.names[0], "a");
    csv_frame_free(&f);
}

/* A second, wider table right after the first (no blank line): its header of text over rows
 * with numbers, and none of the first table's width after it; ragged last rows end nothing. */
Test(csv_col, wider_second_table_without_a_blank_line) {
    char in[4096];
    size_t o = (size_t)sprintf(in, "a,b,c\n");
    for (int i = 0; i < 10; i++)
        o += (size_t)sprintf(in + o, "%d,x%d,%d.5\n", i, i, i);
    o += (size_t)sprintf(in + o, "a,b,c,d\n");
    for (int i = 0; i < 6; i++)
        o += (size_t)sprintf(in + o, "%d,y%d,%d,z\n", i, i, i);
    csv_frame f;
    load_ok(in, NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.ncols, 3);
    cr_assert_eq(f.setup.stop_line, 12);
    cr_assert_eq(f.rows, 10);
    csv_frame_free(&f);
    o = (size_t)sprintf(in, "a,b,c\n");
    for (int i = 0; i < 10; i++)
        o += (size_t)sprintf(in + o, "%d,x%d,%d.5\n", i, i, i);
    for (int i = 0; i < 4; i++)
        o += (size_t)sprintf(in + o, "%d,y%d,%d,more\n", i, i, i);
    load_ok(in, NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.stop_line, 0);
    cr_assert_eq(f.rows, 14);
    csv_frame_free(&f);
}

/* Two tables of other widths, with times and URLs (whose colons cut every row in three) and
 * apostrophes in unquoted text: the separator is the comma. */
Test(csv_col, separator_of_two_tables_with_times_and_apostrophes) {
    char in[4096];
    size_t o = (size_t)sprintf(in, "date,time,item,url\n");
    for (int i = 0; i < 12; i++)
        o += (size_t)sprintf(in + o, "%d/01/2018,00:%02d,Men's boots,http://x.org/%d\n", i + 1, i,
                             i);
    o += (size_t)sprintf(in + o, "date,time,item,url,note,extra\n");
    for (int i = 0; i < 12; i++)
        o += (size_t)sprintf(in + o, "%d/02/2018,01:%02d,Kids' hat,http://y.org/%d,n,e\n", i + 1, i,
                             i);
    csv_frame f;
    load_ok(in, NULL, 1 << 20, &f);
    cr_assert_eq(f.setup.d.sep, ',', "sep %c", f.setup.d.sep);
    cr_assert_eq(f.setup.d.quote, '"');
    /* a file that quotes a column, with one quote never closed: still quoted by '"' */
    o = (size_t)sprintf(in, "id,name,v\n");
    for (int i = 1; i < 60; i++)
        o += (size_t)sprintf(in + o, i == 30 ? "%d,\"never closed,%d\n" : "%d,\"n%d\",3\n", i, i);
    csv_frame g;
    load_ok(in, NULL, 1 << 20, &g);
    cr_assert_eq(g.setup.d.quote, '"');
    csv_frame_free(&g);
    /* no blank line between them: the first is read, the second (longer) one is not */
    cr_assert_eq(f.setup.ncols, 4);
    cr_assert_eq(f.setup.skip, 0);
    cr_assert_eq(f.setup.stop_line, 14);
    cr_assert_eq(f.rows, 12);
    csv_frame_free(&f);
}

Test(csv_col, separator_guess_and_override) {
    const struct {
        const char *in;
        char sep;
        uint32_t ncols;
    } cases[] = {
        {"a;b;c\n1,5;2;3\n4;5;6\n", ';', 3},
        {"a\tb\n1 2\t3\n", '\t', 2},
        {"a|b|c|d\n1|2|3|4\n", '|', 4},
        {"x y\n1 2\n3 4\n", ' ', 2},
        {"name,note\nx,\"a;b;c|d\"\ny,\"e;f\"\n", ',', 2},
        {"single\nrow one\nrow two\n", ',', 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        csv_frame f;
        load_ok(cases[i].in, NULL, 1 << 20, &f);
        cr_assert_eq(f.setup.d.sep, cases[i].sep, "case %zu: sep %d", i, f.setup.d.sep);
        cr_assert_eq(f.setup.ncols, cases[i].ncols, "case %zu", i);
        csv_frame_free(&f);
    }
    aq_csv_opts o = aq_csv_opts_default();
    o.sep = ';';
    csv_frame f;
    load_ok("a,b;c\n1,2;3\n", &o, 1 << 20, &f);
    cr_assert_eq(f.setup.ncols, 2);
    csv_frame_free(&f);
}

Test(csv_col, types_forced_by_name_and_index_bad_values_become_na) {
    aq_csv_type_opt t[] = {{"b", AQ_CSV_T_STR}, {"1", AQ_CSV_T_FLOAT}, {"c", AQ_CSV_T_INT}};
    aq_csv_opts o = aq_csv_opts_default();
    o.types = t;
    o.ntypes = 3;
    csv_frame f;
    load_ok("a,b,c\n1,2,3\n4,5,x\n", &o, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_FLOAT);
    cr_assert_eq(f.final[1], AQ_CSV_T_STR);
    cr_assert_eq(f.final[2], AQ_CSV_T_INT);
    cr_assert(str_is(&f, 1, 1, "5"));
    cr_assert(cell_na(&f, 1, 2));
    cr_assert_eq(f.obs[2].invalid, 1);
    csv_frame_free(&f);
    aq_csv_type_opt bad[] = {{"nosuch", AQ_CSV_T_INT}};
    o.types = bad;
    o.ntypes = 1;
    aq_csv_err err = {0};
    cr_assert_eq(load_str("a,b\n1,2\n", &o, 1 << 20, &f, &err), AQ_EINVAL);
    cr_assert(strstr(err.msg, "nosuch") != NULL);
    aq_csv_type ty;
    cr_assert_eq(aq_csv_type_parse("enum", &ty), 0);
    cr_assert_eq(ty, AQ_CSV_T_CAT);
    cr_assert_eq(aq_csv_type_parse("bogus", &ty), AQ_EINVAL);
}

Test(csv_col, na_list_and_quoted_na) {
    const char *na[] = {"-", "missing"};
    aq_csv_opts o = aq_csv_opts_default();
    o.na = na;
    o.nna = 2;
    csv_frame f;
    load_ok("a,b\n1,x\n-,\"NA\"\nmissing,y\n4,\n", &o, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_INT);
    cr_assert_eq(f.obs[0].na, 2);
    /* with "" not in the list, an empty field is an empty string */
    cr_assert(str_is(&f, 3, 1, ""));
    cr_assert(str_is(&f, 1, 1, "NA"));
    csv_frame_free(&f);
    load_ok("a,b\n1,x\nNA,\"NA\"\n,y\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.obs[0].na, 2);
    cr_assert(str_is(&f, 1, 1, "NA"), "a quoted NA stays a string");
    csv_frame_free(&f);
}

Test(csv_col, all_na_chunk_takes_the_final_type) {
    char s[20000];
    size_t o = (size_t)sprintf(s, "a,b\n");
    for (int i = 0; i < 1000; i++)
        o += (size_t)sprintf(s + o, "%d,%s\n", i, i < 900 ? "NA" : "2.5");
    csv_frame f;
    load_ok(s, NULL, 2048, &f);
    cr_assert_eq(f.final[1], AQ_CSV_T_FLOAT);
    for (size_t i = 0; i < f.npieces; i++)
        cr_assert_eq(f.chunks[i][1].type, AQ_CSV_T_FLOAT);
    cr_assert_eq(f.obs[1].na, 900);
    csv_frame_free(&f);
}

Test(csv_col, round_trip_of_awkward_text) {
    const char *s = "t,n\n"
                    "\"a,b\",1\n"
                    "\"say \"\"hi\"\"\",2\n"
                    "\" lead\",3\n"
                    "\"#hash\",4\n"
                    "\"two\nlines\",5\n"
                    "\"NA\",6\n"
                    "\"12\",7\n"
                    "plain,8\n";
    csv_frame a, b;
    load_ok(s, NULL, 1 << 20, &a);
    cr_assert_eq(a.final[0], AQ_CSV_T_CAT);
    aq_wr w;
    aq_wr_init(&w);
    aq_csv_export_opts eo = {.sep = ',', .header = true};
    cr_assert_eq(aq_csv_export(a.chunks[0], 2, (const char *const *)a.setup.names, 0,
                               a.chunks[0][0].rows, &eo, &w),
                 0);
    aq_wr_u8(&w, 0);
    load_ok((const char *)w.p, NULL, 1 << 20, &b);
    cr_assert_eq(b.rows, 8);
    const char *want[] = {"a,b", "say \"hi\"", " lead", "#hash", "two\nlines", "NA", "12", "plain"};
    for (int i = 0; i < 8; i++)
        cr_assert(str_is(&b, (uint64_t)i, 0, want[i]), "row %d in %s", i, (const char *)w.p);
    aq_wr_free(&w);
    csv_frame_free(&a);
    csv_frame_free(&b);
}

Test(csv_col, fill_mode_takes_the_widest_row) {
    aq_csv_opts o = aq_csv_opts_default();
    o.fill = true;
    csv_frame f;
    load_ok("1,2\n3\n4,5,6\n7,8\n", &o, 1 << 20, &f);
    cr_assert_eq(f.setup.ncols, 3);
    cr_assert_eq(f.rows, 4);
    cr_assert(cell_na(&f, 1, 1));
    cr_assert_eq(cell_int(&f, 2, 2), 6);
    csv_frame_free(&f);
}

/* Random bytes and mutated real pieces through tokenizer and parser: errors are fine, crashes
 * and sanitizer reports are not. */
Test(csv_col, random_and_mutated_input_never_crashes, .timeout = 60) {
    csv_frame f;
    load_ok("a,b,c\n1,x,2.5\n2,\"y\"\"z\",3\n", NULL, 1 << 20, &f);
    srand(2024);
    const char alphabet[] = ",\"\n\r;#\t 0123456789.eE-+NAabc\xEF\xBB\xBF";
    char buf[600];
    for (int iter = 0; iter < 4000; iter++) {
        size_t len = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = iter % 3 ? alphabet[rand() % (int)(sizeof alphabet - 1)] : (char)rand();
        aq_csv_piece pc = {buf, len, 1 + (uint64_t)(rand() % 100), iter % 2 == 0};
        aq_csv_col *cols;
        aq_csv_err err = {0};
        f.setup.fill = iter % 4 == 0;
        f.setup.d.comment = iter % 5 == 0 ? '#' : 0;
        aq_csv_type force[3] = {(aq_csv_type)(rand() % 6), (aq_csv_type)(rand() % 6),
                                (aq_csv_type)(rand() % 6)};
        int rc = aq_csv_parse(&pc, &f.setup, iter % 2 ? force : NULL, NULL, &cols, &err);
        if (rc == 0) {
            for (uint32_t j = 0; j < 3; j++) {
                aq_wr w;
                aq_wr_init(&w);
                cr_assert_eq(aq_csv_export(cols, 3, NULL, 0, cols[0].rows, NULL, &w), 0);
                aq_wr_free(&w);
                uint8_t *enc;
                size_t elen;
                cr_assert_eq(aq_csv_col_encode(&cols[j], &enc, &elen), 0);
                aq_csv_col back;
                cr_assert_eq(aq_csv_col_decode(enc, elen, &back), 0);
                aq_csv_col_free(&back);
                free(enc);
            }
            aq_csv_cols_free(cols, 3);
        } else {
            cr_assert(rc == AQ_EPARSE, "rc %d", rc);
            cr_assert(err.msg[0] != 0);
        }
        /* the setup guesser on the same bytes */
        aq_csv_sample sm = {buf, len, true};
        aq_csv_setup s;
        rc = aq_csv_setup_guess(&sm, 1, NULL, &s, &err);
        if (rc == 0)
            aq_csv_setup_free(&s);
        else
            cr_assert_eq(rc, AQ_EPARSE);
    }
    csv_frame_free(&f);
}

Test(csv_col, float_column_of_whole_numbers_stays_float_through_export) {
    aq_csv_type_opt t[] = {{"v", AQ_CSV_T_FLOAT}};
    aq_csv_opts o = aq_csv_opts_default();
    o.types = t;
    o.ntypes = 1;
    csv_frame a, b;
    load_ok("v,w\n1,x\n-0.0,y\n2,z\n", &o, 1 << 20, &a);
    aq_wr w;
    aq_wr_init(&w);
    aq_csv_export_opts eo = {.sep = ',', .header = true};
    cr_assert_eq(aq_csv_export(a.chunks[0], 2, (const char *const *)a.setup.names, 0, 3, &eo, &w),
                 0);
    aq_wr_u8(&w, 0);
    cr_assert_str_eq((const char *)w.p, "v,w\n1.0,x\n-0.0,y\n2.0,z\n");
    load_ok((const char *)w.p, NULL, 1 << 20, &b);
    cr_assert_eq(b.final[0], AQ_CSV_T_FLOAT);
    double z = cell_num(&b, 1, 0);
    cr_assert(z == 0 && signbit(z), "-0.0 keeps its sign");
    aq_wr_free(&w);
    csv_frame_free(&a);
    csv_frame_free(&b);
}

Test(csv_col, quoted_newlines_across_the_4mib_boundary, .timeout = 60) {
    const size_t lim = 4u << 20;
    size_t cap = lim + (1u << 20);
    char *s = malloc(cap + 1);
    size_t o = (size_t)sprintf(s, "id,text\n");
    int id = 0;
    while (o < lim - 100)
        o += (size_t)sprintf(s + o, "%d,row %d\n", id, id), id++;
    /* this row starts before the 4 MiB mark and ends well after it */
    size_t big_start = o;
    uint64_t big_line = 2 + (uint64_t)id;
    o += (size_t)sprintf(s + o, "%d,\"", id++);
    for (int k = 0; k < 40; k++)
        o += (size_t)sprintf(s + o, "para %d, with \"\"quotes\"\"\n", k);
    o += (size_t)sprintf(s + o, "end\"\n");
    cr_assert_gt(o, lim, "the quoted field crosses the limit");
    while (o < cap - 100)
        o += (size_t)sprintf(s + o, "%d,row %d\n", id, id), id++;
    s[o] = 0;
    csv_frame f;
    load_ok(s, NULL, lim, &f);
    cr_assert_eq(f.npieces, 2);
    cr_assert_eq(f.piece_len[0], big_start, "the cut goes right before the multi-line row");
    cr_assert_eq(f.first_line[1], big_line);
    cr_assert_eq(f.rows, (uint64_t)id);
    cr_assert_eq(f.final[0], AQ_CSV_T_INT);
    uint32_t r;
    const aq_csv_col *c = cell(&f, big_line - 2, 1, &r);
    size_t len;
    const char *p = aq_csv_col_str(c, r, &len);
    cr_assert(p && len > 40 * 20 && memcmp(p, "para 0, with \"quotes\"\npara 1", 28) == 0);
    cr_assert(memcmp(p + len - 4, "\nend", 4) == 0);
    csv_frame_free(&f);
    free(s);
}

/* Levels sorted bytewise, shorter first on a shared prefix, whatever their first 8 bytes share:
 * the domain sort radix-sorts on 8-byte prefixes and compares in full only inside ties. */
Test(csv_col, categorical_domain_sorts_bytewise_across_shared_prefixes) {
    enum { LEVELS = 3000, ROWS = 12000 };
    char(*lev)[40] = malloc(LEVELS * sizeof *lev);
    uint64_t seed = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < LEVELS; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        unsigned v = (unsigned)(seed >> 33);
        switch (i % 6) {
        case 0: /* shares 16 bytes and more: decided by memcmp */
            sprintf(lev[i], "terminal-B-gate-%u", v % 100000);
            break;
        case 1: /* shares 8 bytes, differs in the second 8 */
            sprintf(lev[i], "shared8_%u", v % 100000);
            break;
        case 2: /* short, one a prefix of another */
            sprintf(lev[i], "%u", v % 1000);
            break;
        case 3: /* bytes above 0x7F (UTF-8) sort after ASCII */
            sprintf(lev[i], "\xc3\xa9t\xc3\xa9-%u", v % 100000);
            break;
        case 4:
            sprintf(lev[i], "N%u", v % 100000);
            break;
        default:
            sprintf(lev[i], "terminal-B-gate-%u-annex", v % 1000);
            break;
        }
    }
    char *s = malloc((size_t)ROWS * 48 + 16);
    size_t o = (size_t)sprintf(s, "id,name\n");
    for (int r = 0; r < ROWS; r++)
        o += (size_t)sprintf(s + o, "%d,%s\n", r, lev[(r * 7919) % LEVELS]);
    aq_csv_type_opt t[] = {{"name", AQ_CSV_T_CAT}};
    aq_csv_opts opts = aq_csv_opts_default();
    opts.types = t;
    opts.ntypes = 1;
    csv_frame f;
    load_ok(s, &opts, 4 << 20, &f);
    cr_assert_eq(f.npieces, 1);
    const aq_csv_col *c = &f.chunks[0][1];
    cr_assert_eq(c->type, AQ_CSV_T_CAT);
    cr_assert_gt(c->text.n, 2000, "distinct levels: %u", c->text.n);
    for (uint32_t i = 1; i < c->text.n; i++) {
        const char *a = c->text.bytes + c->text.off[i - 1], *b = c->text.bytes + c->text.off[i];
        size_t la = c->text.off[i] - c->text.off[i - 1], lb = c->text.off[i + 1] - c->text.off[i];
        int cmp = memcmp(a, b, la < lb ? la : lb);
        cr_assert(cmp < 0 || (cmp == 0 && la < lb), "levels %u and %u out of order: %.*s | %.*s",
                  i - 1, i, (int)la, a, (int)lb, b);
    }
    for (int r = 0; r < ROWS; r++)
        cr_assert(str_is(&f, (uint64_t)r, 1, lev[(r * 7919) % LEVELS]), "row %d", r);
    csv_frame_free(&f);
    free(s);
    free(lev);
}

Test(csv_col, nan_spellings_are_float_beside_numbers_and_text_alone) {
    /* a piece of NaN spellings only, then a piece with numbers: the column is float */
    char s[8000];
    size_t o = (size_t)sprintf(s, "a,b\n");
    for (int i = 0; i < 200; i++)
        o += (size_t)sprintf(s + o, "%d,%s\n", i, i % 2 ? "NaN" : "nan");
    for (int i = 0; i < 200; i++)
        o += (size_t)sprintf(s + o, "%d,%d.5\n", i, i);
    csv_frame f;
    load_ok(s, NULL, 1024, &f);
    cr_assert_gt(f.npieces, 2);
    cr_assert_eq(f.final[1], AQ_CSV_T_FLOAT);
    cr_assert(isnan(cell_num(&f, 0, 1)) && !cell_na(&f, 0, 1));
    cr_assert_eq(cell_num(&f, 200, 1), 0.5);
    csv_frame_free(&f);
    /* NaN spellings and no number anywhere: the text they were */
    o = (size_t)sprintf(s, "a,b\n");
    for (int i = 0; i < 300; i++)
        o += (size_t)sprintf(s + o, "%d,%s\n", i, i % 3 ? "NAN" : "nan");
    load_ok(s, NULL, 1024, &f);
    cr_assert_eq(f.final[1], AQ_CSV_T_CAT);
    cr_assert(str_is(&f, 0, 1, "nan"));
    cr_assert(str_is(&f, 299, 1, "NAN"));
    csv_frame_free(&f);
}

Test(csv_col, integers_past_2_53_beside_floats_keep_their_digits) {
    csv_frame f;
    load_ok("a,b\n1.5,12345678901234567\n2,9007199254740993\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_FLOAT);
    cr_assert_eq(f.final[1], AQ_CSV_T_INT, "integers alone stay exact int64");
    csv_frame_free(&f);
    load_ok("a\n1.5\n12345678901234567\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT, "a double would print 12345678901234568");
    cr_assert(str_is(&f, 1, 0, "12345678901234567"));
    csv_frame_free(&f);
    load_ok("a\n1.5\n9007199254740992\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_FLOAT, "2^53 itself is exact");
    csv_frame_free(&f);
    /* 2^53 + 1 is 2^53 as a double: the column's range alone cannot tell it from 2^53 */
    load_ok("a\n1.5\n9007199254740993\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT, "2^53 + 1 would print as 2^53");
    csv_frame_free(&f);
    load_ok("a\n-1.5\n-9007199254740993\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT, "-(2^53 + 1) would print as -2^53");
    csv_frame_free(&f);
}

Test(csv_col, rows_ending_at_cr_alone_are_rows) {
    csv_frame f;
    char s[20000];
    size_t o = (size_t)sprintf(s, "k,v\r");
    for (int i = 0; i < 1000; i++)
        o += (size_t)sprintf(s + o, "%d,x%d\r", i, i % 7);
    load_ok(s, NULL, 1024, &f);
    cr_assert(f.setup.cr_rows);
    cr_assert(f.setup.header);
    cr_assert_eq(f.rows, 1000);
    cr_assert_eq(cell_int(&f, 999, 0), 999);
    cr_assert(str_is(&f, 999, 1, "x5"));
    csv_frame_free(&f);
}

Test(csv_col, times_write_back_in_the_shape_they_were_read) {
    static const char *const shapes[] = {"2015-01-02",
                                         "2015-01-02 03:04",
                                         "2015-01-02T03:04:05",
                                         "2015-01-02T03:04:05Z",
                                         "2015-01-02 03:04:05.1",
                                         "2015-01-02 03:04:05.12",
                                         "1969-12-31 23:59:59.999"};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t ms;
        uint8_t sh;
        char buf[48];
        cr_assert(aq_csv_parse_time_shape(shapes[i], strlen(shapes[i]), &ms, &sh), "%s", shapes[i]);
        cr_assert(aq_csv_time_shape_ok(sh));
        aq_csv_format_time_shape(ms, sh, buf);
        cr_assert_str_eq(buf, shapes[i]);
    }
    csv_frame f;
    /* fraction digits that vary: as few as each value needs; dates beside date-times */
    const char *s = "t,d\n2011-09-01 23:44:52.533,2024-01-05\n2011-09-05 12:25:37.42,2024-01-06 "
                    "10:00:00\n2011-08-24 12:56:58,2024-01-07 00:00:01\n";
    load_ok(s, NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_TIME);
    cr_assert_eq(f.final[1], AQ_CSV_T_TIME);
    size_t len;
    char *out = NULL;
    aq_wr w;
    aq_wr_init(&w);
    aq_csv_export_opts eo = {',', true, NULL};
    cr_assert_eq(aq_csv_export(f.chunks[0], 2, (const char *const *)f.setup.names, 0,
                               f.chunks[0][0].rows, &eo, &w),
                 0);
    out = (char *)w.p;
    len = w.len;
    cr_assert(len == strlen(s) && memcmp(out, s, len) == 0, "got %.*s", (int)len, out);
    aq_wr_free(&w);
    csv_frame_free(&f);
    /* T and space in one column: text, as written */
    load_ok("t\n2024-01-05T10:00:00\n2024-01-05 10:00:00\n", NULL, 1 << 20, &f);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT);
    csv_frame_free(&f);
}
