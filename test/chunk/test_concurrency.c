/* Several threads put, get and rm shared keys while another iterates and reads stats. Values are
 * derived from a seed stored in their first 8 bytes, so any reader can check what it got. */
#include "chunk_test_util.h"

#include <pthread.h>
#include <stdatomic.h>

#define NKEYS 48

typedef struct shared {
    aq_chunk_store *s;
    uint64_t memory_max;
    int ops;
    size_t max_len;
    atomic_int writers_left;
    atomic_long puts, gets, rms, full, walks;
} shared;

typedef struct worker {
    shared *sh;
    uint64_t rng;
} worker;

static uint64_t next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static size_t key_of(int i, char *k) {
    return (size_t)snprintf(k, 32, "key/%02d", i);
}

/* Value: 8-byte seed then tu_fill(seed) bytes. len < 8 values are all zero bytes. */
static uint8_t *make_value(uint64_t seed, size_t len) {
    uint8_t *v = calloc(1, len + 8);
    cr_assert_not_null(v);
    if (len >= 8) {
        memcpy(v, &seed, 8);
        tu_fill(v + 8, len - 8, seed);
    }
    return v;
}

static void check_value(const uint8_t *p, size_t len, aq_chunk_digest d) {
    cr_assert(aq_chunk_digest_equal(d, aq_chunk_digest_of(p, len)), "digest does not match bytes");
    if (len < 8) {
        for (size_t i = 0; i < len; i++)
            cr_assert_eq(p[i], 0);
        return;
    }
    uint64_t seed;
    memcpy(&seed, p, 8);
    uint8_t *want = make_value(seed, len);
    cr_assert(memcmp(p, want, len) == 0, "bytes are not what any writer stored");
    free(want);
}

static void *writer(void *arg) {
    worker *w = arg;
    shared *sh = w->sh;
    char k[32];
    for (int op = 0; op < sh->ops; op++) {
        uint64_t r = next(&w->rng);
        size_t kl = key_of((int)(r % NKEYS), k);
        switch ((r >> 8) % 4) {
        case 0:
        case 1: {
            size_t len = (size_t)(next(&w->rng) % sh->max_len);
            uint8_t *v = make_value(next(&w->rng), len);
            aq_chunk_digest d;
            int err = aq_chunk_put(sh->s, k, kl, v, len, &d);
            cr_assert(err == 0 || (err == AQ_EFULL && sh->memory_max), "put: %s", aq_strerror(err));
            if (err == 0) {
                cr_assert(aq_chunk_digest_equal(d, aq_chunk_digest_of(v, len)));
                atomic_fetch_add(&sh->puts, 1);
            } else {
                atomic_fetch_add(&sh->full, 1);
            }
            free(v);
            break;
        }
        case 2: {
            aq_chunk_ref *ref;
            int err = aq_chunk_get(sh->s, k, kl, &ref);
            cr_assert(err == 0 || err == AQ_ENOTFOUND, "get: %s", aq_strerror(err));
            if (err == 0) {
                check_value(aq_chunk_ref_data(ref), aq_chunk_ref_len(ref),
                            aq_chunk_ref_digest(ref));
                size_t rk;
                const uint8_t *kp = aq_chunk_ref_key(ref, &rk);
                cr_assert(rk == kl && memcmp(kp, k, kl) == 0);
                aq_chunk_ref_release(ref);
                atomic_fetch_add(&sh->gets, 1);
            }
            break;
        }
        default: {
            int err = aq_chunk_rm(sh->s, k, kl);
            cr_assert(err == 0 || err == AQ_ENOTFOUND, "rm: %s", aq_strerror(err));
            if (err == 0)
                atomic_fetch_add(&sh->rms, 1);
        }
        }
    }
    atomic_fetch_sub(&sh->writers_left, 1);
    return NULL;
}

typedef struct walk {
    shared *sh;
    int n;
    uint64_t bytes;
    uint8_t last[256];
    size_t last_len;
} walk;

static int walk_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                   uint8_t kind) {
    walk *w = ud;
    cr_assert_eq(kind, 0);
    cr_assert(klen == 6 && memcmp(key, "key/", 4) == 0, "unexpected key");
    cr_assert_lt(size, w->sh->max_len);
    /* Snapshot order is strictly ascending. */
    if (w->n)
        cr_assert_lt(memcmp(w->last, key, klen), 0);
    memcpy(w->last, key, klen);
    w->n++;
    w->bytes += size;
    /* The chunk may have changed since the snapshot; if it has not, it must match. */
    aq_chunk_ref *r;
    if (aq_chunk_get(w->sh->s, key, klen, &r) == 0) {
        if (aq_chunk_digest_equal(aq_chunk_ref_digest(r), d))
            cr_assert_eq(aq_chunk_ref_len(r), size);
        aq_chunk_ref_release(r);
    }
    return 0;
}

static void *iterator(void *arg) {
    shared *sh = arg;
    while (atomic_load(&sh->writers_left) > 0) {
        walk w = {.sh = sh};
        cr_assert_eq(aq_chunk_iterate(sh->s, "key/", 4, walk_cb, &w), 0);
        cr_assert_leq(w.n, NKEYS);
        if (sh->memory_max)
            cr_assert_leq(w.bytes, sh->memory_max, "a snapshot passed the cap");
        aq_chunk_stats st;
        cr_assert_eq(aq_chunk_store_stats(sh->s, &st), 0);
        cr_assert_leq(st.chunks, NKEYS);
        if (sh->memory_max)
            cr_assert_leq(st.bytes, sh->memory_max, "counted bytes passed the cap");
        atomic_fetch_add(&sh->walks, 1);
    }
    return NULL;
}

/* After the threads: what get sees is what iterate and stats say. */
static void check_final(aq_chunk_store *s, uint64_t *bytes_out) {
    uint64_t n = 0, bytes = 0;
    char k[32];
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = key_of(i, k);
        aq_chunk_ref *r;
        if (aq_chunk_get(s, k, kl, &r) == 0) {
            check_value(aq_chunk_ref_data(r), aq_chunk_ref_len(r), aq_chunk_ref_digest(r));
            n++;
            bytes += aq_chunk_ref_len(r);
            aq_chunk_ref_release(r);
        }
    }
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.chunks, n);
    cr_expect_eq(st.bytes, bytes);
    if (bytes_out)
        *bytes_out = bytes;
}

static void run(aq_chunk_store *s, uint64_t memory_max, int nwriters, int ops, size_t max_len) {
    shared sh = {.s = s, .memory_max = memory_max, .ops = ops, .max_len = max_len};
    atomic_init(&sh.writers_left, nwriters);
    pthread_t t[8], it;
    worker w[8];
    cr_assert_leq(nwriters, 8);
    for (int i = 0; i < nwriters; i++) {
        w[i] = (worker){&sh, 0x1234567ull * (uint64_t)(i + 1)};
        cr_assert_eq(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    cr_assert_eq(pthread_create(&it, NULL, iterator, &sh), 0);
    for (int i = 0; i < nwriters; i++)
        pthread_join(t[i], NULL);
    pthread_join(it, NULL);
    cr_expect_gt(atomic_load(&sh.puts), 0);
    cr_expect_gt(atomic_load(&sh.gets), 0);
    cr_expect_gt(atomic_load(&sh.rms), 0);
    cr_expect_gt(atomic_load(&sh.walks), 0);
    if (memory_max)
        cr_expect_gt(atomic_load(&sh.full), 0, "the cap was never reached: test too weak");
    check_final(s, NULL);
}

Test(concurrency, put_get_rm_while_iterating, .timeout = 200) {
    aq_chunk_store *s = tu_open(NULL, 0, NULL);
    run(s, 0, 4, 3000, 64 << 10);
    aq_chunk_store_close(s);
}

Test(concurrency, the_cap_holds_under_concurrent_puts, .timeout = 200) {
    uint64_t cap = 8 * (64 << 10);
    aq_chunk_store *s = tu_open(NULL, cap, NULL);
    run(s, cap, 4, 3000, 64 << 10);
    cr_expect_leq(tu_stats(s).bytes, cap);
    aq_chunk_store_close(s);
}

typedef struct snap {
    int n;
    aq_chunk_digest d[NKEYS];
    char k[NKEYS][8];
} snap;

static int snap_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                   uint8_t kind) {
    (void)size;
    (void)kind;
    snap *s = ud;
    cr_assert_lt(s->n, NKEYS);
    memcpy(s->k[s->n], key, klen);
    s->k[s->n][klen] = 0;
    s->d[s->n++] = d;
    return 0;
}

/* With files, a put spends long between reserving and committing: the window the reservation
 * must cover. */
Test(concurrency, the_cap_holds_while_puts_write_files, .timeout = 200) {
    char *dir = tu_mkdtemp();
    uint64_t cap = 6 * (64 << 10);
    aq_chunk_store *s = tu_open(dir, cap, NULL);
    run(s, cap, 4, 150, 64 << 10);
    cr_expect_leq(tu_stats(s).bytes, cap);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}

/* Disk and memory agree on the last write of every key, even with writers racing on one key. */
Test(concurrency, persistent_store_agrees_with_disk_after_races, .timeout = 200) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    run(s, 0, 3, 80, 16 << 10);
    snap before = {0};
    cr_assert_eq(aq_chunk_iterate(s, NULL, 0, snap_cb, &before), 0);
    aq_chunk_store_close(s);
    tu_reports rep = {0};
    s = tu_open(dir, 0, &rep);
    cr_expect_eq(rep.n, 0, "reports on reload: %s: %s", rep.file[0], rep.reason[0]);
    snap after = {0};
    cr_assert_eq(aq_chunk_iterate(s, NULL, 0, snap_cb, &after), 0);
    cr_assert_eq(after.n, before.n);
    for (int i = 0; i < before.n; i++) {
        cr_expect_str_eq(after.k[i], before.k[i]);
        cr_expect(aq_chunk_digest_equal(after.d[i], before.d[i]), "%s differs", before.k[i]);
    }
    check_final(s, NULL);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}
