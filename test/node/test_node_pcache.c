/* The parse cache keeps a piece's columns from PARSE to FINISH: found only by the exact identity
 * (key, piece digest, setup hash), within its byte budget, and not past its age limit. */
#include "aq_error.h"
#include "aq_node_pcache.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n int64 columns of rows rows each, values v. */
static aq_csv_col *cols_of(uint32_t n, uint32_t rows, int64_t v) {
    aq_csv_col *c = calloc(n, sizeof *c);
    cr_assert_not_null(c);
    for (uint32_t i = 0; i < n; i++) {
        c[i].type = AQ_CSV_T_INT;
        c[i].width = 8;
        c[i].rows = rows;
        c[i].na = calloc((rows + 7) / 8 + 1, 1);
        int64_t *x = calloc(rows + 1, sizeof *x);
        cr_assert(c[i].na && x);
        for (uint32_t r = 0; r < rows; r++)
            x[r] = v;
        c[i].vals = x;
    }
    return c;
}

static const aq_chunk_digest D1 = {1, 2}, D2 = {1, 3};
#define K(s) (const uint8_t *)(s), strlen(s)

Test(pcache, taken_once_by_exact_identity_only) {
    aq_node_pcache *pc;
    cr_assert_eq(aq_node_pcache_new(1 << 20, 1000000, &pc), 0);
    cr_assert_eq(aq_node_pcache_put(pc, K("f/0"), D1, 7, cols_of(2, 100, 42), 2, 0), 0);
    /* another piece digest, setup, key or column count: not this entry */
    cr_assert_null(aq_node_pcache_take(pc, K("f/0"), D2, 7, 2));
    cr_assert_null(aq_node_pcache_take(pc, K("f/0"), D1, 8, 2));
    cr_assert_null(aq_node_pcache_take(pc, K("f/1"), D1, 7, 2));
    aq_csv_col *c = aq_node_pcache_take(pc, K("f/0"), D1, 7, 2);
    cr_assert_not_null(c);
    cr_assert_eq(((int64_t *)c[1].vals)[99], 42);
    aq_csv_cols_free(c, 2);
    cr_assert_null(aq_node_pcache_take(pc, K("f/0"), D1, 7, 2), "taken twice");
    aq_node_pcache_stats st;
    aq_node_pcache_stats_get(pc, &st);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.hits, 1);
    aq_node_pcache_free(pc);
}

Test(pcache, a_column_count_mismatch_drops_the_entry) {
    aq_node_pcache *pc;
    cr_assert_eq(aq_node_pcache_new(1 << 20, 1000000, &pc), 0);
    cr_assert_eq(aq_node_pcache_put(pc, K("f/0"), D1, 7, cols_of(2, 10, 1), 2, 0), 0);
    cr_assert_null(aq_node_pcache_take(pc, K("f/0"), D1, 7, 3));
    aq_node_pcache_stats st;
    aq_node_pcache_stats_get(pc, &st);
    cr_assert_eq(st.entries, 0);
    aq_node_pcache_free(pc);
}

Test(pcache, budget_drops_the_oldest_and_refuses_what_never_fits) {
    aq_csv_col *probe = cols_of(1, 1000, 0);
    size_t one = aq_node_pcache_cols_bytes(probe, 1);
    aq_csv_cols_free(probe, 1);
    aq_node_pcache *pc;
    cr_assert_eq(aq_node_pcache_new(3 * one + one / 2, 1000000, &pc), 0);
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "f/%d", i);
        cr_assert_eq(aq_node_pcache_put(pc, K(key), D1, 7, cols_of(1, 1000, i), 1, (uint64_t)i), 0);
        aq_node_pcache_stats st;
        aq_node_pcache_stats_get(pc, &st);
        cr_assert_leq(st.bytes, 3 * one + one / 2, "over budget after put %d", i);
    }
    /* f/0 and f/1 made room for f/3 and f/4 */
    cr_assert_null(aq_node_pcache_take(pc, K("f/0"), D1, 7, 1));
    cr_assert_null(aq_node_pcache_take(pc, K("f/1"), D1, 7, 1));
    for (int i = 2; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "f/%d", i);
        aq_csv_col *c = aq_node_pcache_take(pc, K(key), D1, 7, 1);
        cr_assert_not_null(c, "f/%d", i);
        cr_assert_eq(((int64_t *)c[0].vals)[0], i);
        aq_csv_cols_free(c, 1);
    }
    /* bigger than the whole budget: refused, the caller keeps its columns */
    aq_csv_col *big = cols_of(4, 1000, 9);
    cr_assert_eq(aq_node_pcache_put(pc, K("f/9"), D1, 7, big, 4, 10), AQ_ETOOBIG);
    aq_csv_cols_free(big, 4);
    aq_node_pcache_free(pc);
}

Test(pcache, entries_expire_and_a_repeat_replaces) {
    aq_node_pcache *pc;
    cr_assert_eq(aq_node_pcache_new(1 << 20, 1000, &pc), 0);
    cr_assert_eq(aq_node_pcache_put(pc, K("old"), D1, 7, cols_of(1, 10, 1), 1, 0), 0);
    cr_assert_eq(aq_node_pcache_put(pc, K("f/0"), D1, 7, cols_of(1, 10, 1), 1, 5000), 0);
    cr_assert_eq(aq_node_pcache_put(pc, K("f/0"), D1, 7, cols_of(1, 10, 2), 1, 5001), 0);
    aq_node_pcache_stats st;
    aq_node_pcache_stats_get(pc, &st);
    cr_assert_eq(st.entries, 1, "the expired entry and the replaced one are gone");
    cr_assert_eq(st.dropped, 2);
    aq_csv_col *c = aq_node_pcache_take(pc, K("f/0"), D1, 7, 1);
    cr_assert_not_null(c);
    cr_assert_eq(((int64_t *)c[0].vals)[0], 2, "the newer columns");
    aq_csv_cols_free(c, 1);
    aq_node_pcache_free(pc); /* frees nothing twice: ASan would say */
}

/* String-column notes: shared by one parse id and setup only, they accumulate, they expire with
 * age, and the oldest goes when there are too many. */
Test(pcache, string_notes_are_per_parse_and_expire) {
    aq_node_pcache *pc;
    cr_assert_eq(aq_node_pcache_new(1 << 20, 1000, &pc), 0);
    bool a[3] = {false, true, false}, b[3] = {true, false, false}, got[3] = {0};
    aq_node_pcache_str_known(pc, 7, 1, got, 3);
    cr_assert(!got[0] && !got[1] && !got[2], "nothing known before anything was learned");
    aq_node_pcache_str_learn(pc, 7, 1, a, 3, 100);
    aq_node_pcache_str_learn(pc, 7, 1, b, 3, 200);
    aq_node_pcache_str_known(pc, 7, 1, got, 3);
    cr_assert(got[0] && got[1] && !got[2], "what two jobs learned, together");
    bool other[3] = {0};
    aq_node_pcache_str_known(pc, 8, 1, other, 3);
    aq_node_pcache_str_known(pc, 7, 2, other, 3);
    aq_node_pcache_str_known(pc, 7, 1, other, 2);
    cr_assert(!other[0] && !other[1], "another parse, setup or column count sees nothing");
    /* a learn 2 ms later finds the 1 ms note expired: only its own columns remain */
    bool c[3] = {false, false, true}, after[3] = {0};
    aq_node_pcache_str_learn(pc, 9, 1, c, 3, 2200);
    aq_node_pcache_str_learn(pc, 7, 1, c, 3, 2300);
    aq_node_pcache_str_known(pc, 7, 1, after, 3);
    cr_assert(!after[0] && !after[1] && after[2], "an expired note is gone");
    /* past AQ_NODE_PCACHE_NOTES parses the oldest note goes first */
    for (uint64_t id = 100; id < 100 + AQ_NODE_PCACHE_NOTES; id++)
        aq_node_pcache_str_learn(pc, id, 1, a, 3, 2400);
    bool first[3] = {0}, last[3] = {0};
    aq_node_pcache_str_known(pc, 9, 1, first, 3);
    aq_node_pcache_str_known(pc, 100 + AQ_NODE_PCACHE_NOTES - 1, 1, last, 3);
    cr_assert(!first[2], "the oldest note was dropped for room");
    cr_assert(last[1], "the newest note is kept");
    aq_node_pcache_free(pc);
}

/* Columns PARSE stored already travel with the entry: take_done hands back which, with their
 * chunks' digests; the plain take, which could not tell, answers nothing for such an entry. */
Test(pcache, stored_columns_come_back_with_their_digests) {
    aq_node_pcache *pc;
    cr_assert_eq(aq_node_pcache_new(1 << 20, 1000000, &pc), 0);
    aq_node_pcache_done done[3] = {{false, {0, 0}}, {true, {9, 8}}, {false, {0, 0}}};
    aq_csv_col *in = cols_of(3, 10, 5);
    aq_csv_col_free(&in[1]);
    memset(&in[1], 0, sizeof in[1]);
    cr_assert_eq(aq_node_pcache_put_done(pc, K("f/0"), D1, 7, in, done, 3, 0), 0);
    aq_node_pcache_done got[3];
    memset(got, 0xAB, sizeof got);
    aq_csv_col *c = aq_node_pcache_take_done(pc, K("f/0"), D1, 7, 3, got);
    cr_assert_not_null(c);
    cr_assert(!got[0].stored && got[1].stored && !got[2].stored);
    cr_assert(aq_chunk_digest_equal(got[1].digest, (aq_chunk_digest){9, 8}));
    cr_assert_eq(((int64_t *)c[2].vals)[9], 5);
    aq_csv_cols_free(c, 3);
    /* an entry without stored columns: every stored flag false */
    cr_assert_eq(aq_node_pcache_put(pc, K("f/1"), D1, 7, cols_of(3, 10, 6), 3, 0), 0);
    memset(got, 0xAB, sizeof got);
    c = aq_node_pcache_take_done(pc, K("f/1"), D1, 7, 3, got);
    cr_assert_not_null(c);
    cr_assert(!got[0].stored && !got[1].stored && !got[2].stored);
    aq_csv_cols_free(c, 3);
    /* the plain take meets a stored column: nothing, and the entry is gone */
    in = cols_of(3, 10, 7);
    aq_csv_col_free(&in[1]);
    memset(&in[1], 0, sizeof in[1]);
    cr_assert_eq(aq_node_pcache_put_done(pc, K("f/2"), D1, 7, in, done, 3, 0), 0);
    cr_assert_null(aq_node_pcache_take(pc, K("f/2"), D1, 7, 3));
    aq_node_pcache_stats st;
    aq_node_pcache_stats_get(pc, &st);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    aq_node_pcache_free(pc);
}
