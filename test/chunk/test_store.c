/* Memory-only store behaviour: sizes, overwrite, references, the memory cap, stat and iterate. */
#include "chunk_test_util.h"

#include <jemalloc/jemalloc.h>

#define K(s) (s), sizeof(s) - 1

Test(store, sizes_0_1_4MiB_and_one_more) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    size_t sizes[] = {0, 1, AQ_CHUNK_VALUE_MAX};
    const char *keys[] = {"zero", "one", "max"};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *p = tu_bytes(sizes[i], i);
        aq_chunk_digest d;
        cr_assert_eq(aq_chunk_put(s, keys[i], strlen(keys[i]), p, sizes[i], &d), 0);
        cr_expect(aq_chunk_digest_equal(d, aq_chunk_digest_of(p, sizes[i])));
        tu_expect(s, keys[i], strlen(keys[i]), p, sizes[i]);
        free(p);
    }
    cr_expect_eq(AQ_CHUNK_VALUE_MAX, 4194304u);
    uint8_t *big = tu_bytes(AQ_CHUNK_VALUE_MAX + 1, 9);
    cr_expect_eq(aq_chunk_put(s, K("big"), big, AQ_CHUNK_VALUE_MAX + 1, NULL), AQ_ETOOBIG);
    aq_chunk_digest d = aq_chunk_digest_of(big, AQ_CHUNK_VALUE_MAX + 1);
    cr_expect_eq(aq_chunk_put_verified(s, K("big"), big, AQ_CHUNK_VALUE_MAX + 1, 0, &d),
                 AQ_ETOOBIG);
    /* Refusing an overwrite leaves the old value in place. */
    cr_expect_eq(aq_chunk_put(s, K("one"), big, AQ_CHUNK_VALUE_MAX + 1, NULL), AQ_ETOOBIG);
    free(big);
    cr_expect_eq(aq_chunk_get(s, K("big"), &(aq_chunk_ref *){NULL}), AQ_ENOTFOUND);
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.chunks, 3u);
    cr_expect_eq(st.bytes, 1u + AQ_CHUNK_VALUE_MAX);
    cr_expect_geq(st.allocated, st.bytes, "allocated %llu", (unsigned long long)st.allocated);
    uint64_t size = 99;
    cr_expect_eq(aq_chunk_stat(s, K("one"), &size, NULL), 0);
    cr_expect_eq(size, 1u);
    aq_chunk_store_close(s);
}

Test(store, bad_arguments_change_nothing) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    aq_chunk_ref *r;
    cr_expect_eq(aq_chunk_put(s, K("a\0b"), "x", 1, NULL), AQ_EKEY);
    cr_expect_eq(aq_chunk_put(s, K("\xc0\xaf"), "x", 1, NULL), AQ_EKEY);
    cr_expect_eq(aq_chunk_put(s, "", 0, "x", 1, NULL), AQ_EKEY);
    cr_expect_eq(aq_chunk_put(s, K("k"), NULL, 5, NULL), AQ_EINVAL);
    cr_expect_eq(aq_chunk_put_verified(s, K("k"), "x", 1, 0, NULL), AQ_EINVAL);
    cr_expect_eq(aq_chunk_get(s, K("\xed\xa0\x80"), &r), AQ_EKEY);
    cr_expect_eq(aq_chunk_rm(s, K("\xff")), AQ_EKEY);
    cr_expect_eq(aq_chunk_rm(s, K("absent")), AQ_ENOTFOUND);
    cr_expect_eq(aq_chunk_stat(s, K("absent"), NULL, NULL), AQ_ENOTFOUND);
    cr_expect_eq(tu_stats(s).chunks, 0u);
    cr_expect_eq(aq_chunk_put(s, K("k"), NULL, 0, NULL), 0, "NULL data with len 0 is fine");
    aq_chunk_store_close(s);
}

Test(store, overwrite_replaces_and_counts_once) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    uint8_t *a = tu_bytes(1000, 1), *b = tu_bytes(300, 2);
    cr_assert_eq(aq_chunk_put(s, K("k"), a, 1000, NULL), 0);
    cr_assert_eq(aq_chunk_put(s, K("k"), b, 300, NULL), 0);
    tu_expect(s, K("k"), b, 300);
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.chunks, 1u);
    cr_expect_eq(st.bytes, 300u);
    free(a);
    free(b);
    aq_chunk_store_close(s);
}

Test(store, put_verified_checks_the_digest_and_keeps_kind) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    uint8_t *a = tu_bytes(5000, 1), *b = tu_bytes(5000, 2);
    aq_chunk_digest da = aq_chunk_digest_of(a, 5000);
    cr_assert_eq(aq_chunk_put_verified(s, K("k"), a, 5000, 1, &da), 0);
    /* b with a's digest: refused, and a is still there untouched. */
    cr_expect_eq(aq_chunk_put_verified(s, K("k"), b, 5000, 0, &da), AQ_ECORRUPT);
    cr_expect_eq(aq_chunk_put_verified(s, K("other"), b, 5000, 0, &da), AQ_ECORRUPT);
    tu_expect(s, K("k"), a, 5000);
    cr_expect_eq(aq_chunk_stat(s, K("other"), NULL, NULL), AQ_ENOTFOUND);
    aq_chunk_ref *r;
    cr_assert_eq(aq_chunk_get(s, K("k"), &r), 0);
    cr_expect_eq(aq_chunk_ref_kind(r), 1);
    size_t kl;
    const uint8_t *kp = aq_chunk_ref_key(r, &kl);
    cr_expect(kl == 1 && kp[0] == 'k');
    aq_chunk_ref_release(r);
    cr_expect_eq(tu_stats(s).bytes, 5000u);
    free(a);
    free(b);
    aq_chunk_store_close(s);
}

/* Reader holds the old bytes; rm and overwrite do not touch them; release frees them. */
Test(store, rm_and_overwrite_under_a_held_reference) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    size_t n = 3u << 20;
    uint8_t *a = tu_bytes(n, 1), *b = tu_bytes(n, 2);
    cr_assert_eq(aq_chunk_put(s, K("k"), a, n, NULL), 0);
    aq_chunk_ref *r1;
    cr_assert_eq(aq_chunk_get(s, K("k"), &r1), 0);
    const uint8_t *p1 = aq_chunk_ref_data(r1);
    uint64_t alloc_one = tu_stats(s).allocated;

    cr_assert_eq(aq_chunk_put(s, K("k"), b, n, NULL), 0); /* overwrite while held */
    aq_chunk_ref *r2;
    cr_assert_eq(aq_chunk_get(s, K("k"), &r2), 0);
    cr_assert_eq(aq_chunk_rm(s, K("k")), 0); /* and rm while both are held */
    cr_expect_eq(aq_chunk_get(s, K("k"), &(aq_chunk_ref *){NULL}), AQ_ENOTFOUND);
    cr_expect_eq(tu_stats(s).chunks, 0u);
    cr_expect_eq(tu_stats(s).bytes, 0u, "held bytes are not counted");

    cr_expect_eq(aq_chunk_ref_data(r1), p1);
    cr_expect_eq(aq_chunk_ref_len(r1), n);
    cr_expect(memcmp(aq_chunk_ref_data(r1), a, n) == 0, "old bytes changed under the reader");
    cr_expect(aq_chunk_digest_equal(aq_chunk_ref_digest(r1), aq_chunk_digest_of(a, n)));
    cr_expect(memcmp(aq_chunk_ref_data(r2), b, n) == 0);

    uint64_t alloc_two = tu_stats(s).allocated;
    aq_chunk_ref_release(r1);
    uint64_t alloc_after1 = tu_stats(s).allocated;
    aq_chunk_ref_release(r2);
    uint64_t alloc_after2 = tu_stats(s).allocated;
    if (alloc_one) { /* jemalloc has statistics */
        cr_expect_geq(alloc_one, n);
        cr_expect_geq(alloc_two, 2 * n, "both versions are alive while held");
        cr_expect_leq(alloc_after1 + n, alloc_two, "first release frees the old bytes");
        cr_expect_lt(alloc_after2, n, "last release frees the rest");
    }
    free(a);
    free(b);
    aq_chunk_store_close(s);
}

Test(store, memory_cap_at_its_exact_boundary) {
    const uint64_t cap = 10000;
    aq_chunk_store *s = tu_open(NULL, cap, NULL);
    uint8_t *p = tu_bytes(cap + 1, 3);
    cr_assert_eq(aq_chunk_put(s, K("a"), p, 6000, NULL), 0);
    cr_assert_eq(aq_chunk_put(s, K("b"), p, 4000, NULL), 0, "exactly reaching the cap is allowed");
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.bytes, cap);

    cr_expect_eq(aq_chunk_put(s, K("c"), p, 1, NULL), AQ_EFULL, "one more byte");
    cr_expect_eq(aq_chunk_put(s, K("a"), p, 6001, NULL), AQ_EFULL, "growing overwrite");
    aq_chunk_digest d = aq_chunk_digest_of(p, 1);
    cr_expect_eq(aq_chunk_put_verified(s, K("c"), p, 1, 0, &d), AQ_EFULL);
    cr_expect_eq(aq_chunk_put(s, K("c"), p, cap + 1, NULL), AQ_EFULL, "larger than the cap");
    aq_chunk_stats st2 = tu_stats(s);
    cr_expect_eq(st2.chunks, 2u);
    cr_expect_eq(st2.bytes, cap);
    cr_expect_eq(aq_chunk_stat(s, K("c"), NULL, NULL), AQ_ENOTFOUND);
    tu_expect(s, K("a"), p, 6000);

    cr_expect_eq(aq_chunk_put(s, K("c"), NULL, 0, NULL), 0, "an empty value fits at the cap");
    cr_expect_eq(aq_chunk_put(s, K("a"), p + 1, 6000, NULL), 0, "same-size overwrite at the cap");
    tu_expect(s, K("a"), p + 1, 6000);
    cr_expect_eq(aq_chunk_put(s, K("a"), p, 1000, NULL), 0, "shrinking overwrite at the cap");
    cr_expect_eq(tu_stats(s).bytes, 5000u);
    cr_expect_eq(aq_chunk_put(s, K("d"), p, 5000, NULL), 0, "freed room is usable again");
    cr_expect_eq(tu_stats(s).bytes, cap);
    cr_expect_eq(aq_chunk_rm(s, K("b")), 0);
    cr_expect_eq(aq_chunk_put(s, K("e"), p, 4000, NULL), 0);
    cr_expect_eq(aq_chunk_put(s, K("f"), p, 1, NULL), AQ_EFULL);
    free(p);
    aq_chunk_store_close(s);
}

typedef struct seen {
    int n;
    char keys[16][16];
    uint64_t sizes[16];
    int stop_after;
} seen;

static int collect(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                   uint8_t kind) {
    (void)d;
    (void)kind;
    seen *s = ud;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)klen, (const char *)key);
    s->sizes[s->n] = size;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

Test(store, iterate_by_prefix_in_key_order) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    const char *keys[] = {"b/2", "a/1", "b/10", "b", "c", "b/1", "B/1"};
    for (size_t i = 0; i < 7; i++)
        cr_assert_eq(aq_chunk_put(s, keys[i], strlen(keys[i]), "xyz", i % 4, NULL), 0);
    seen a = {0};
    cr_assert_eq(aq_chunk_iterate(s, "b/", 2, collect, &a), 0);
    cr_assert_eq(a.n, 3);
    cr_expect_str_eq(a.keys[0], "b/1");
    cr_expect_str_eq(a.keys[1], "b/10");
    cr_expect_str_eq(a.keys[2], "b/2");
    cr_expect_eq(a.sizes[2], 0u);
    seen all = {0};
    cr_assert_eq(aq_chunk_iterate(s, NULL, 0, collect, &all), 0);
    cr_expect_eq(all.n, 7);
    cr_expect_str_eq(all.keys[0], "B/1");
    seen stop = {.stop_after = 2};
    cr_expect_eq(aq_chunk_iterate(s, NULL, 0, collect, &stop), 0);
    cr_expect_eq(stop.n, 2, "a non-zero return stops the walk");
    seen none = {0};
    cr_expect_eq(aq_chunk_iterate(s, "zz", 2, collect, &none), 0);
    cr_expect_eq(none.n, 0);
    aq_chunk_store_close(s);
}

static int rm_during_walk(void *ud, const uint8_t *key, size_t klen, uint64_t size,
                          aq_chunk_digest d, uint8_t kind) {
    (void)size;
    (void)d;
    (void)kind;
    aq_chunk_store *s = ud;
    cr_expect_eq(aq_chunk_rm(s, key, klen), 0);
    return 0;
}

Test(store, iterate_snapshot_survives_removal_from_the_callback) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%d", i);
        cr_assert_eq(aq_chunk_put(s, k, (size_t)kl, k, (size_t)kl, NULL), 0);
    }
    cr_assert_eq(aq_chunk_iterate(s, "k", 1, rm_during_walk, s), 0);
    cr_expect_eq(tu_stats(s).chunks, 0u);
    cr_expect_eq(tu_stats(s).bytes, 0u);
    aq_chunk_store_close(s);
}

/* Each store destroys its arena at close, so opening and closing stores does not pile up arenas. */
Test(store, close_returns_the_arena) {
    unsigned before = 0, after = 0;
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    aq_chunk_store_close(s);
    size_t sz = sizeof before;
    cr_assert_eq(mallctl("arenas.narenas", &before, &sz, NULL, 0), 0);
    uint8_t *p = tu_bytes(1 << 20, 1);
    for (int i = 0; i < 100; i++) {
        s = tu_open(NULL, 0, NULL);
        cr_assert_eq(aq_chunk_put(s, K("k"), p, 1 << 20, NULL), 0);
        aq_chunk_store_close(s);
    }
    free(p);
    cr_assert_eq(mallctl("arenas.narenas", &after, &sz, NULL, 0), 0);
    cr_expect_leq(after, before + 1, "arenas grew from %u to %u", before, after);
}

/* Last writer wins by version: an older or equal version changes nothing, a newer one replaces. */
Test(store, versioned_writes_keep_the_newest) {
    aq_chunk_store *s = NULL;
    aq_chunk_opts o = {0};
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    aq_chunk_digest d5 = aq_chunk_digest_of("five", 4), d3 = aq_chunk_digest_of("three", 5);
    cr_assert_eq(aq_chunk_put_versioned(s, "k", 1, "five", 4, 0, &d5, 5), 0);
    cr_expect_eq(aq_chunk_put_versioned(s, "k", 1, "three", 5, 0, &d3, 3), AQ_ESTALE);
    cr_expect_eq(aq_chunk_put_versioned(s, "k", 1, "five", 4, 0, &d5, 5), 0, "the same write");
    aq_chunk_ref *r;
    cr_assert_eq(aq_chunk_get(s, "k", 1, &r), 0);
    cr_expect_eq(aq_chunk_ref_len(r), 4, "an older version replaced a newer one");
    cr_expect_eq(aq_chunk_ref_version(r), 5);
    aq_chunk_ref_release(r);
    cr_expect_eq(aq_chunk_rm_older(s, "k", 1, 5), AQ_ESTALE, "a removal no newer than the value");
    cr_expect_eq(aq_chunk_rm_older(s, "k", 1, 6), 0);
    cr_expect_eq(aq_chunk_rm_older(s, "k", 1, 7), AQ_ENOTFOUND);
    cr_expect_eq(aq_chunk_put_versioned(s, "k", 1, "three", 5, 0, &d3, 3), 0,
                 "absent: any version");
    aq_chunk_store_close(s);
}

/* A removal of one confirmed write: never a newer one, also of the same version. */
Test(store, rm_upto_removes_that_write_or_older) {
    aq_chunk_store *s = NULL;
    aq_chunk_opts o = {0};
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    aq_chunk_digest da = aq_chunk_digest_of("a", 1), db = aq_chunk_digest_of("b", 1);
    aq_chunk_digest lo = da, hi = db;
    const char *vlo = "a", *vhi = "b";
    if (aq_chunk_write_cmp(5, da, 0, 5, db, 0) > 0) {
        lo = db, hi = da;
        vlo = "b", vhi = "a";
    }
    /* Stored: version 5 with the greater digest. Removing the lesser one of version 5, or
     * anything older, must leave it. */
    cr_assert_eq(aq_chunk_put_versioned(s, "k", 1, vhi, 1, 0, &hi, 5), 0);
    cr_expect_eq(aq_chunk_rm_upto(s, "k", 1, 5, lo, 0), AQ_ESTALE, "same version, lesser digest");
    cr_expect_eq(aq_chunk_rm_upto(s, "k", 1, 4, hi, 0), AQ_ESTALE, "older version");
    cr_expect_eq(aq_chunk_rm_upto(s, "k", 1, 5, hi, 0), 0, "that very write");
    cr_expect_eq(aq_chunk_rm_upto(s, "k", 1, 5, hi, 0), AQ_ENOTFOUND);
    /* Stored: the lesser digest; a removal up to the greater one of the same version takes it. */
    cr_assert_eq(aq_chunk_put_versioned(s, "k", 1, vlo, 1, 0, &lo, 5), 0);
    cr_expect_eq(aq_chunk_rm_upto(s, "k", 1, 5, hi, 0), 0);
    aq_chunk_store_close(s);
}

static bool digest_gt(aq_chunk_digest a, aq_chunk_digest b) {
    return a.hi != b.hi ? a.hi > b.hi : a.lo > b.lo;
}

/* Equal versions from two writers: whichever order the writes arrive in, both stores keep the one
 * with the greater digest; a tombstone (empty digest) is ordered the same way. */
Test(store, equal_versions_converge_by_digest) {
    aq_chunk_store *a = NULL, *b = NULL;
    aq_chunk_opts o = {0};
    cr_assert_eq(aq_chunk_store_open(&o, &a), 0);
    cr_assert_eq(aq_chunk_store_open(&o, &b), 0);
    aq_chunk_digest dx = aq_chunk_digest_of("x", 1), dy = aq_chunk_digest_of("y", 1);
    aq_chunk_digest de = aq_chunk_digest_of(NULL, 0);
    const char *win = digest_gt(dx, dy) ? "x" : "y";
    aq_chunk_digest dwin = digest_gt(dx, dy) ? dx : dy;
    cr_assert_eq(aq_chunk_put_versioned(a, "k", 1, "x", 1, 0, &dx, 7), 0);
    int ea = aq_chunk_put_versioned(a, "k", 1, "y", 1, 0, &dy, 7);
    cr_assert_eq(aq_chunk_put_versioned(b, "k", 1, "y", 1, 0, &dy, 7), 0);
    int eb = aq_chunk_put_versioned(b, "k", 1, "x", 1, 0, &dx, 7);
    cr_expect_eq(ea == 0, digest_gt(dy, dx), "store a: y %s", ea ? "refused" : "taken");
    cr_expect_eq(eb == 0, digest_gt(dx, dy), "store b: x %s", eb ? "refused" : "taken");
    uint64_t held = 0;
    cr_expect_eq(aq_chunk_put_versioned_held(a, "k", 1, NULL, 0, 2, &de, 7, &held),
                 digest_gt(de, dwin) ? 0 : AQ_ESTALE);
    cr_expect_eq(held, digest_gt(de, dwin) ? 0u : 7u, "a STALE answer names the stored version");
    aq_chunk_store *st[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        aq_chunk_ref *r;
        cr_assert_eq(aq_chunk_get(st[i], "k", 1, &r), 0);
        if (!digest_gt(de, dwin))
            cr_expect_eq(aq_chunk_ref_data(r)[0], (uint8_t)win[0], "store %d diverged", i);
        aq_chunk_ref_release(r);
    }
    aq_chunk_store_close(a);
    aq_chunk_store_close(b);
}

/* A coordinator's write goes above the stored version, atomically; it is never stale. */
Test(store, put_above_goes_over_the_stored_version) {
    aq_chunk_store *s = NULL;
    aq_chunk_opts o = {0};
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    aq_chunk_digest d = aq_chunk_digest_of("v", 1);
    uint64_t v = 10;
    cr_assert_eq(aq_chunk_put_above(s, "k", 1, "v", 1, 0, &d, &v), 0);
    cr_expect_eq(v, 10, "absent: the version asked for");
    cr_assert_eq(aq_chunk_put_versioned(s, "k", 1, "v", 1, 0, &d, 1000), 0);
    v = 20;
    cr_assert_eq(aq_chunk_put_above(s, "k", 1, "v", 1, 0, &d, &v), 0);
    cr_expect_eq(v, 1001, "one above the stored version");
    v = 5000;
    cr_assert_eq(aq_chunk_put_above(s, "k", 1, "v", 1, 0, &d, &v), 0);
    cr_expect_eq(v, 5000, "already above: kept");
    aq_chunk_ref *r;
    cr_assert_eq(aq_chunk_get(s, "k", 1, &r), 0);
    cr_expect_eq(aq_chunk_ref_version(r), 5000);
    aq_chunk_ref_release(r);
    v = 0;
    cr_expect_eq(aq_chunk_put_above(s, "k", 1, "v", 1, 0, &d, &v), AQ_EINVAL);
    aq_chunk_store_close(s);
}

Test(store, stats_count_chunks_per_kind) {
    aq_chunk_store *s = NULL;
    aq_chunk_opts o = {0};
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    aq_chunk_digest d = aq_chunk_digest_of("", 0);
    cr_assert_eq(aq_chunk_put_versioned(s, "a", 1, "", 0, 2, &d, 1), 0);
    cr_assert_eq(aq_chunk_put_versioned(s, "b", 1, "", 0, 2, &d, 1), 0);
    cr_assert_eq(aq_chunk_put(s, "c", 1, "x", 1, NULL), 0);
    aq_chunk_stats st;
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    cr_expect_eq(st.chunks, 3);
    cr_expect_eq(st.by_kind[2], 2);
    cr_expect_eq(st.by_kind[0], 1);
    aq_chunk_digest dx = aq_chunk_digest_of("x", 1);
    cr_assert_eq(aq_chunk_put_versioned(s, "a", 1, "x", 1, 0, &dx, 2), 0); /* kind 2 -> 0 */
    cr_assert_eq(aq_chunk_rm(s, "b", 1), 0);
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    cr_expect_eq(st.by_kind[2], 0);
    cr_expect_eq(st.by_kind[0], 2);
    aq_chunk_store_close(s);
}
