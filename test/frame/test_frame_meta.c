/* A frame's stored metadata (node/frame/aq_frame_meta.c): round trips of both versions, and every
 * truncation, trailing byte, unknown type and lying count refused with AQ_EPROTO. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aq_bytes.h"
#include "aq_csv_setup.h"
#include "aq_error.h"
#include "aq_frame_meta.h"

static char *cols[2] = {"sepal", "class"};
static uint8_t types[2] = {AQ_CSV_T_FLOAT, AQ_CSV_T_CAT};
static uint32_t rows[3] = {50, 60, 40};
static uint8_t setup[4] = {1, 2, 3, 4};
static uint64_t lines[2] = {7, 90};

static aq_frame_meta sample(void) {
    aq_frame_meta m = {.name = "iris",
                       .source = "iris.csv",
                       .source_size = 4551,
                       .ncols = 2,
                       .cols = cols,
                       .types = types,
                       .nchunks = 3,
                       .rows = rows,
                       .setup = setup,
                       .slen = sizeof setup,
                       .repaired = 3,
                       .nrepair = 2,
                       .repair_line = lines,
                       .unread_from = 200,
                       .unread_to = 210};
    return m;
}

static void encode(const aq_frame_meta *m, uint8_t **p, size_t *n) {
    cr_assert_eq(aq_frame_meta_encode(m, p, n), 0);
}

Test(frame_meta, round_trip) {
    aq_frame_meta m = sample(), d;
    uint8_t *p;
    size_t n;
    encode(&m, &p, &n);
    cr_assert_eq(aq_frame_meta_decode(p, n, &d), 0);
    cr_expect_str_eq(d.name, "iris");
    cr_expect_str_eq(d.source, "iris.csv");
    cr_expect_eq(d.source_size, 4551);
    cr_assert_eq(d.ncols, 2);
    cr_expect_str_eq(d.cols[1], "class");
    cr_expect_eq(d.types[1], AQ_CSV_T_CAT);
    cr_assert_eq(d.nchunks, 3);
    cr_expect_eq(d.rows[2], 40);
    cr_expect_eq(d.total_rows, 150);
    cr_assert_eq(d.slen, sizeof setup);
    cr_expect_eq(memcmp(d.setup, setup, sizeof setup), 0);
    cr_expect_eq(d.repaired, 3);
    cr_assert_eq(d.nrepair, 2);
    cr_expect_eq(d.repair_line[1], 90);
    cr_expect_eq(d.unread_from, 200);
    cr_expect_eq(d.unread_to, 210);
    aq_frame_meta_free(&d);
    free(p);
}

/* Version 1 is version 2 without the repairs and unread lines: it still reads, as none. */
Test(frame_meta, version_1_reads) {
    aq_frame_meta m = sample(), d;
    uint8_t *p;
    size_t n;
    encode(&m, &p, &n);
    p[4] = 1;
    size_t v1 = n - (8 + 4 + 2 * 8 + 8 + 8);
    cr_assert_eq(aq_frame_meta_decode(p, v1, &d), 0);
    cr_expect_eq(d.total_rows, 150);
    cr_expect_eq(d.repaired, 0);
    cr_expect_eq(d.nrepair, 0);
    cr_expect_eq(d.unread_from, 0);
    aq_frame_meta_free(&d);
    cr_expect_eq(aq_frame_meta_decode(p, n, &d), AQ_EPROTO, "v1 with v2's tail: trailing bytes");
    free(p);
}

Test(frame_meta, every_truncation_and_trailing_byte_refused) {
    aq_frame_meta m = sample(), d;
    uint8_t *p;
    size_t n;
    encode(&m, &p, &n);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(aq_frame_meta_decode(p, i, &d), AQ_EPROTO, "cut at %zu", i);
    uint8_t *q = malloc(n + 1);
    memcpy(q, p, n);
    q[n] = 0;
    cr_expect_eq(aq_frame_meta_decode(q, n + 1, &d), AQ_EPROTO);
    free(q);
    free(p);
}

Test(frame_meta, lies_refused) {
    aq_frame_meta m = sample(), d;
    uint8_t *p;
    size_t n;
    uint8_t bad_types[2] = {AQ_CSV_T_FLOAT, AQ_CSV_T_STR + 1};
    m.types = bad_types;
    encode(&m, &p, &n);
    cr_expect_eq(aq_frame_meta_decode(p, n, &d), AQ_EPROTO, "unknown type");
    free(p);
    m = sample();
    m.repaired = 1; /* two repair lines for one repaired row */
    encode(&m, &p, &n);
    cr_expect_eq(aq_frame_meta_decode(p, n, &d), AQ_EPROTO, "more lines than repairs");
    free(p);
    m = sample();
    m.unread_from = 300; /* past unread_to */
    encode(&m, &p, &n);
    cr_expect_eq(aq_frame_meta_decode(p, n, &d), AQ_EPROTO, "unread range backwards");
    free(p);
    m = sample();
    encode(&m, &p, &n);
    p[4] = 3;
    cr_expect_eq(aq_frame_meta_decode(p, n, &d), AQ_EPROTO, "a version from the future");
    p[4] = 2;
    p[0] ^= 1;
    cr_expect_eq(aq_frame_meta_decode(p, n, &d), AQ_EPROTO, "not AQFM");
    free(p);
}
