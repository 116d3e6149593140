/* Helpers shared by the chunk store tests: temporary data dirs, deterministic bytes, reports. */
#ifndef CHUNK_TEST_UTIL_H
#define CHUNK_TEST_UTIL_H

#include "aq_chunk.h"
#include "aq_error.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline char *tu_mkdtemp(void) {
    char *d = strdup("/tmp/aq_chunk_test.XXXXXX");
    cr_assert_not_null(d);
    cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
    return d;
}

static int tu_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tu_rmrf(char *dir) {
    if (dir)
        nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Deterministic bytes from a seed (xorshift), so a reader can regenerate what a writer stored. */
static inline void tu_fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static inline uint8_t *tu_bytes(size_t n, uint64_t seed) {
    uint8_t *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    tu_fill(p, n, seed);
    return p;
}

/* Collects what the store reports. */
typedef struct tu_reports {
    int n;
    char file[32][128];
    char reason[32][512];
} tu_reports;

static inline void tu_report(void *ud, const char *file, const char *reason) {
    tu_reports *r = ud;
    if (r->n < 32) {
        snprintf(r->file[r->n], sizeof r->file[0], "%s", file);
        snprintf(r->reason[r->n], sizeof r->reason[0], "%s", reason);
    }
    r->n++;
}

/* Index of the first report about file, or -1. */
static inline int tu_find_report(const tu_reports *r, const char *file) {
    for (int i = 0; i < r->n && i < 32; i++)
        if (strcmp(r->file[i], file) == 0)
            return i;
    return -1;
}

static inline aq_chunk_store *tu_open(const char *dir, uint64_t memory_max, tu_reports *rep) {
    aq_chunk_opts o = {dir, memory_max, rep ? tu_report : NULL, rep};
    aq_chunk_store *s = NULL;
    int err = aq_chunk_store_open(&o, &s);
    cr_assert_eq(err, 0, "open failed: %s", aq_strerror(err));
    return s;
}

static inline aq_chunk_stats tu_stats(aq_chunk_store *s) {
    aq_chunk_stats st;
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    return st;
}

/* Asserts key holds exactly want[0..n). */
static inline void tu_expect(aq_chunk_store *s, const char *key, size_t klen, const uint8_t *want,
                             size_t n) {
    aq_chunk_ref *r = NULL;
    int err = aq_chunk_get(s, key, klen, &r);
    cr_assert_eq(err, 0, "get %.*s: %s", (int)klen, key, aq_strerror(err));
    cr_assert_eq(aq_chunk_ref_len(r), n);
    cr_assert_not_null(aq_chunk_ref_data(r));
    cr_assert(n == 0 || memcmp(aq_chunk_ref_data(r), want, n) == 0, "bytes differ");
    cr_assert(aq_chunk_digest_equal(aq_chunk_ref_digest(r), aq_chunk_digest_of(want, n)));
    aq_chunk_ref_release(r);
}

#endif
