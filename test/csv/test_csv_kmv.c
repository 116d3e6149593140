/* The sketch builder against the obvious one (insert each hash into the sorted array, keep the
 * AQ_CSV_SKETCH smallest): equal results for streams of every cardinality, with repeats, with
 * the hash 0, and for merges; and the hint that builds a known-string column at once. */
#include "aq_csv_col.h"
#include "aq_csv_kmv.h"
#include "csv_frame.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void naive_add(aq_csv_obs *o, uint64_t h) {
    uint32_t n = o->nsketch, lo = 0;
    while (lo < n && o->sketch[lo] < h)
        lo++;
    if (lo < n && o->sketch[lo] == h)
        return;
    if (lo == AQ_CSV_SKETCH)
        return;
    if (n == AQ_CSV_SKETCH)
        n--;
    memmove(o->sketch + lo + 1, o->sketch + lo, (n - lo) * sizeof o->sketch[0]);
    o->sketch[lo] = h;
    o->nsketch = n + 1;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* distinct values drawn n times at random from a pool of `card` hashes (some small ones, and 0
 * when with_zero, so the edges of the threshold and the empty-slot marker are exercised) */
static void check_stream(uint32_t card, uint32_t n, bool with_zero, uint64_t seed) {
    uint64_t *pool = malloc((card + 1) * sizeof *pool);
    for (uint32_t i = 0; i < card; i++)
        pool[i] = i % 7 == 0 ? (uint64_t)i : rng_next(&seed);
    if (with_zero && card)
        pool[card / 2] = 0;
    static aq_csv_kmv k;
    static aq_csv_obs want, got;
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    aq_csv_kmv_reset(&k);
    for (uint32_t i = 0; i < n && card; i++) {
        uint64_t h = pool[rng_next(&seed) % card];
        naive_add(&want, h);
        aq_csv_kmv_add(&k, h);
    }
    aq_csv_kmv_finish(&k, &got);
    cr_assert_eq(got.nsketch, want.nsketch, "card %u n %u: %u entries, want %u", card, n,
                 got.nsketch, want.nsketch);
    for (uint32_t i = 0; i < want.nsketch; i++)
        cr_assert_eq(got.sketch[i], want.sketch[i], "card %u n %u: entry %u differs", card, n, i);
    free(pool);
}

Test(kmv, equals_naive_sketch) {
    uint32_t cards[] = {0, 1, 2, 100, 1023, 1024, 1025, 2047, 2048, 2049, 5000, 30000, 200000};
    for (size_t i = 0; i < sizeof cards / sizeof cards[0]; i++) {
        check_stream(cards[i], cards[i] * 3 + 10, false, 1 + i);
        check_stream(cards[i], cards[i] * 3 + 10, true, 100 + i);
    }
}

Test(kmv, merge_equals_naive) {
    uint64_t seed = 7;
    for (int round = 0; round < 40; round++) {
        static aq_csv_obs a, b, want;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        memset(&want, 0, sizeof want);
        uint32_t na = (uint32_t)(rng_next(&seed) % 3000), nb = (uint32_t)(rng_next(&seed) % 3000);
        for (uint32_t i = 0; i < na; i++) {
            uint64_t h = rng_next(&seed) % 5000; /* overlapping values */
            naive_add(&a, h);
            naive_add(&want, h);
        }
        for (uint32_t i = 0; i < nb; i++) {
            uint64_t h = rng_next(&seed) % 5000;
            naive_add(&b, h);
            naive_add(&want, h);
        }
        aq_csv_kmv_merge(&a, &b);
        cr_assert_eq(a.nsketch, want.nsketch);
        cr_assert_eq(memcmp(a.sketch, want.sketch, want.nsketch * sizeof want.sketch[0]), 0,
                     "round %d", round);
    }
}

/* A column hinted as string is string with its exact bytes and NA rows; the others are
 * unchanged by the hint. */
Test(kmv, str_hint_builds_string_at_once) {
    const char *text = "a,b,c\n1,x,2.5\n2,NA,3\n3,\"q,r\",\n";
    csv_frame f;
    aq_csv_err err = {0};
    cr_assert_eq(csv_frame_load(text, strlen(text), NULL, 1u << 20, &f, &err), 0, "%s", err.msg);
    aq_csv_piece pc = {f.piece[0], f.piece_len[0], f.first_line[0], true};
    bool hint[3] = {false, true, false};
    aq_csv_col *cols;
    cr_assert_eq(aq_csv_parse(&pc, &f.setup, NULL, hint, &cols, &err), 0, "%s", err.msg);
    cr_assert_eq(cols[0].type, AQ_CSV_T_INT);
    cr_assert_eq(cols[2].type, AQ_CSV_T_FLOAT);
    cr_assert_eq(cols[1].type, AQ_CSV_T_STR);
    cr_assert_eq(cols[1].obs.kind, AQ_CSV_T_STR);
    cr_assert_eq(cols[1].obs.rows, 3);
    cr_assert_eq(cols[1].obs.na, 1);
    size_t len;
    const char *s = aq_csv_col_str(&cols[1], 0, &len);
    cr_assert(s && len == 1 && s[0] == 'x');
    cr_assert(aq_csv_col_is_na(&cols[1], 1));
    s = aq_csv_col_str(&cols[1], 2, &len);
    cr_assert(s && len == 3 && memcmp(s, "q,r", 3) == 0);
    cr_assert_eq(aq_csv_obs_final(&cols[1].obs), AQ_CSV_T_STR);
    aq_csv_cols_free(cols, 3);
    csv_frame_free(&f);
}

/* The finishing sort places values by the top bits of their spread: hashes that are not uniform
 * (one far outlier beside a tight cluster, runs of neighbours, equal high halves) must come out
 * sorted all the same. */
Test(kmv, skewed_hashes_sorted) {
    uint64_t seed = 11;
    for (int shape = 0; shape < 3; shape++) {
        static aq_csv_kmv k;
        static aq_csv_obs want, got;
        memset(&want, 0, sizeof want);
        memset(&got, 0, sizeof got);
        aq_csv_kmv_reset(&k);
        for (uint32_t i = 0; i < 5000; i++) {
            uint64_t r = rng_next(&seed), h;
            if (shape == 0)
                h = i == 17 ? UINT64_MAX - 1 : 1000 + r % 3000;
            else if (shape == 1)
                h = (r % 64) << 40 | (r >> 50);
            else
                h = 0xABCDEF0000000000ull | (r & 0xFFFFFF);
            naive_add(&want, h);
            aq_csv_kmv_add(&k, h);
        }
        aq_csv_kmv_finish(&k, &got);
        cr_assert_eq(got.nsketch, want.nsketch, "shape %d", shape);
        for (uint32_t i = 0; i < want.nsketch; i++)
            cr_assert_eq(got.sketch[i], want.sketch[i], "shape %d: entry %u differs", shape, i);
    }
}

typedef struct hrec {
    uint64_t h;
    uint8_t b[8];
} hrec;

static int cmp_hrec(const void *a, const void *b) {
    const hrec *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return memcmp(x->b, y->b, 8);
}

/* The table of levels compares no bytes for levels of up to 8 bytes: their hash and length must
 * determine them. Every string of 0 to 2 bytes, every one of 3 bytes over 16 byte values (NUL and
 * 0xFF among them), and random ones of 4 to 8 bytes over 4 byte values (so the two overlapping
 * loads see many near twins): equal hashes within a length only for equal bytes. */
Test(kmv, short_hash_determines_bytes) {
    const uint8_t few[16] = {0,   1,   2,   ' ', ',',  '"',  '0',  '9',
                             'A', 'B', 'a', 'b', 0x7F, 0x80, 0xFE, 0xFF};
    const uint8_t four[4] = {0, 'a', 'b', 0xFF};
    uint64_t seed = 5;
    size_t cap = 1u << 17;
    hrec *v = malloc(cap * sizeof *v);
    cr_assert(v);
    for (size_t len = 0; len <= 8; len++) {
        size_t n = 0;
        if (len <= 2) {
            for (uint32_t c = 0; c < (1u << (8 * len)); c++) {
                memset(v[n].b, 0, 8);
                for (size_t i = 0; i < len; i++)
                    v[n].b[i] = (uint8_t)(c >> (8 * i));
                n++;
            }
        } else if (len == 3) {
            for (uint32_t c = 0; c < 16 * 16 * 16; c++) {
                memset(v[n].b, 0, 8);
                for (size_t i = 0; i < 3; i++)
                    v[n].b[i] = few[(c >> (4 * i)) & 15];
                n++;
            }
        } else {
            for (; n < 100000; n++) {
                memset(v[n].b, 0, 8);
                uint64_t r = rng_next(&seed);
                for (size_t i = 0; i < len; i++)
                    v[n].b[i] = four[(r >> (2 * i)) & 3];
            }
        }
        for (size_t i = 0; i < n; i++)
            v[i].h = aq_csv_hash((const char *)v[i].b, len);
        qsort(v, n, sizeof *v, cmp_hrec);
        for (size_t i = 1; i < n; i++)
            if (v[i].h == v[i - 1].h)
                cr_assert_eq(memcmp(v[i].b, v[i - 1].b, 8), 0,
                             "length %zu: two strings share the hash %016llx", len,
                             (unsigned long long)v[i].h);
    }
    free(v);
}

/* Levels that differ in one byte anywhere (the middle byte of 3, 5 and 7-byte codes, the bytes
 * between the two loads of 9 to 16-byte ones, the middle of long ones), in a column whose first
 * value is text so the rest are told only NA or text (NA spellings with blanks, a quoted "NA" that
 * is text, a field of blanks that is text, numbers that are text here): every row reads back as
 * written and the domain holds each level once, sorted. Pieces of 4 KiB, so the chunks' domains
 * are merged and every chunk re-coded. */
Test(kmv, levels_that_differ_in_one_byte) {
    enum { NLEV = 600, ROWS = 6000 };
    static char lev[NLEV][40];
    const int lens[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31};
    uint32_t nlev = 0;
    for (int li = 0; li < 12; li++)
        for (int k = 0; k < 50; k++) {
            int len = lens[li];
            memset(lev[nlev], 'm', (size_t)len);
            lev[nlev][k % len] = (char)('A' + k % 26);
            lev[nlev][0] = (char)('a' + k / 26 + li);
            lev[nlev][len] = 0;
            nlev++;
        }
    const char *odd[] = {"NA", "\"\"", " NA ", "\"NA\"", "  ", "12", "x,y"};
    size_t cap = (size_t)ROWS * 48 + 64, n = 0;
    char *text = malloc(cap);
    const char **want = malloc(ROWS * sizeof *want);
    cr_assert(text && want);
    n += (size_t)sprintf(text + n, "c\n");
    uint64_t seed = 9;
    for (uint32_t r = 0; r < ROWS; r++) {
        uint64_t x = rng_next(&seed);
        if (r > 0 && x % 10 == 0) {
            uint32_t o = (uint32_t)(x >> 8) % 7;
            const char *w[] = {NULL, NULL, NULL, "NA", "  ", "12", "x,y"};
            want[r] = w[o];
            n += (size_t)sprintf(text + n, o == 6 ? "\"%s\"\n" : "%s\n", odd[o]);
        } else {
            want[r] = lev[(x >> 8) % nlev];
            n += (size_t)sprintf(text + n, "%s\n", want[r]);
        }
    }
    aq_csv_opts opt = aq_csv_opts_default();
    opt.header = AQ_CSV_HEADER_YES;
    opt.sep = ',';
    opt.quote = '"';
    opt.skipsp = 0;
    csv_frame f;
    aq_csv_err err = {0};
    cr_assert_eq(csv_frame_load(text, n, &opt, 4096, &f, &err), 0, "%s", err.msg);
    cr_assert_gt(f.npieces, 10);
    cr_assert_eq(f.final[0], AQ_CSV_T_CAT);
    cr_assert_eq(f.rows, ROWS);
    const aq_csv_strs *dom = &f.chunks[0][0].text;
    for (uint32_t i = 1; i < dom->n; i++) {
        uint32_t la = dom->off[i] - dom->off[i - 1], lb = dom->off[i + 1] - dom->off[i];
        int c = memcmp(dom->bytes + dom->off[i - 1], dom->bytes + dom->off[i], la < lb ? la : lb);
        cr_assert(c < 0 || (c == 0 && la < lb), "domain not strictly sorted at %u", i);
    }
    for (uint32_t r = 0; r < ROWS; r++) {
        size_t p, len;
        uint32_t pr;
        cr_assert_eq(csv_frame_locate(&f, r, &p, &pr), 0);
        const char *s = aq_csv_col_str(&f.chunks[p][0], pr, &len);
        if (!want[r]) {
            cr_assert_null(s, "row %u should be NA", r);
            continue;
        }
        cr_assert(s && len == strlen(want[r]) && memcmp(s, want[r], len) == 0,
                  "row %u: got '%.*s', want '%s'", r, s ? (int)len : 0, s ? s : "", want[r]);
    }
    csv_frame_free(&f);
    free(want);
    free(text);
}

/* Reset empties the set by clearing the runs of slots its entries sit in: one column's hashes
 * that crowd one home slot (and the slots after it), then another column holding some of the
 * same hashes. Any entry left behind would read as a repeat and drop a hash from the second
 * sketch. Both sizes of the first column: the cleared runs, and the whole set cleared. */
Test(kmv, reset_forgets_crowded_slots) {
    static aq_csv_kmv k;
    static aq_csv_obs want, got;
    aq_csv_kmv_init(&k);
    for (uint32_t crowd = 8; crowd <= 1000; crowd = crowd * 5) {
        uint64_t first[1000];
        for (uint32_t i = 0; i < crowd; i++) /* every one's home is slot 5 or 6 */
            first[i] = ((uint64_t)(i + 1) << 20) | (5 + (i & 1));
        for (uint32_t i = 0; i < crowd; i++)
            aq_csv_kmv_add(&k, first[i]);
        aq_csv_kmv_finish(&k, &got);
        aq_csv_kmv_reset(&k);
        memset(&want, 0, sizeof want);
        memset(&got, 0, sizeof got);
        for (uint32_t i = 0; i < crowd; i += 3) {
            naive_add(&want, first[i]);
            aq_csv_kmv_add(&k, first[i]);
            naive_add(&want, first[i] + 7);
            aq_csv_kmv_add(&k, first[i] + 7);
        }
        aq_csv_kmv_finish(&k, &got);
        cr_assert_eq(got.nsketch, want.nsketch, "crowd %u: %u entries, want %u", crowd, got.nsketch,
                     want.nsketch);
        for (uint32_t i = 0; i < want.nsketch; i++)
            cr_assert_eq(got.sketch[i], want.sketch[i], "crowd %u: entry %u differs", crowd, i);
        aq_csv_kmv_reset(&k);
    }
}
