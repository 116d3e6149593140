/* Puts that adopt the caller's buffer: the stored chunk is that buffer (no copy), it survives an
 * overwrite or removal while a reader holds it, and it is released exactly once -- after the last
 * reference, or before the put returns when nothing was stored (refused, corrupt, stale, identical
 * or empty). Under AddressSanitizer a release too early or twice is also a use after free or a
 * double free. */
#include "aq_chunk_int.h"
#include "chunk_test_util.h"

#define LEN ((size_t)4 << 20)

typedef struct lent {
    uint8_t *buf;
    int released;
} lent;

static void lent_release(void *ctx) {
    lent *l = ctx;
    l->released++;
    free(l->buf);
    l->buf = NULL;
}

/* A buffer with a few head bytes before the value, as a request carries it. */
static lent *lend(size_t len, uint64_t seed) {
    lent *l = calloc(1, sizeof *l);
    cr_assert_not_null(l);
    l->buf = malloc(16 + (len ? len : 1));
    cr_assert_not_null(l->buf);
    tu_fill(l->buf + 16, len, seed);
    return l;
}

static aq_chunk_adopt adopt_of(lent *l) {
    return (aq_chunk_adopt){lent_release, l};
}

static aq_chunk_store *mem_store(uint64_t cap) {
    aq_chunk_opts o = {.memory_max = cap};
    aq_chunk_store *s = NULL;
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    return s;
}

Test(adopt, the_stored_chunk_is_the_buffer_until_its_last_reference) {
    aq_chunk_store *s = mem_store(0);
    lent *a = lend(LEN, 1);
    uint8_t *value = a->buf + 16;
    aq_chunk_digest d = aq_chunk_digest_of(value, LEN);
    aq_chunk_adopt ad = adopt_of(a);
    cr_assert_eq(aq_chunk_put_versioned_adopt(s, "k", 1, value, LEN, 0, &d, 7, NULL, &ad, 0), 0);
    cr_assert_eq(a->released, 0);
    aq_chunk_stats st;
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    cr_assert_geq(st.allocated, LEN, "adopted bytes are memory the store holds");

    aq_chunk_ref *r = NULL;
    cr_assert_eq(aq_chunk_get(s, "k", 1, &r), 0);
    cr_assert_eq(aq_chunk_ref_data(r), value, "stored in place, not copied");
    cr_assert_eq(aq_chunk_ref_version(r), 7);

    /* Overwritten while read: the reader's bytes stay. */
    lent *b = lend(100, 2);
    aq_chunk_digest db = aq_chunk_digest_of(b->buf + 16, 100);
    aq_chunk_adopt bd = adopt_of(b);
    cr_assert_eq(aq_chunk_put_versioned_adopt(s, "k", 1, b->buf + 16, 100, 0, &db, 8, NULL, &bd, 0),
                 0);
    cr_assert_eq(a->released, 0, "released under a reader");
    cr_assert(aq_chunk_digest_equal(aq_chunk_digest_of(aq_chunk_ref_data(r), LEN), d));
    aq_chunk_ref_release(r);
    cr_assert_eq(a->released, 1);

    cr_assert_eq(aq_chunk_rm(s, "k", 1), 0);
    cr_assert_eq(b->released, 1, "a removed chunk gives its buffer back");
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    cr_assert_lt(st.allocated, LEN, "released bytes are no longer counted");
    aq_chunk_store_close(s);
    cr_assert_eq(a->released, 1);
    cr_assert_eq(b->released, 1);
    free(a);
    free(b);
}

Test(adopt, a_put_that_stores_nothing_releases_before_it_returns) {
    aq_chunk_store *s = mem_store(LEN);
    lent *v = lend(1000, 3);
    aq_chunk_digest d = aq_chunk_digest_of(v->buf + 16, 1000);
    aq_chunk_adopt vd = adopt_of(v);
    cr_assert_eq(
        aq_chunk_put_versioned_adopt(s, "k", 1, v->buf + 16, 1000, 0, &d, 10, NULL, &vd, 0), 0);

    /* Each refusal: released once, and the stored chunk unchanged. */
    struct {
        const char *key;
        size_t len;
        int flip;         /* corrupt a byte after computing the digest */
        uint64_t version; /* 0: put_above with version 0 (invalid) */
        int want;
    } cases[] = {
        {"k", 1000, 1, 11, AQ_ECORRUPT}, {"", 1000, 0, 11, AQ_EKEY},
        {"k", 500, 0, 9, AQ_ESTALE},     {"k", LEN + 1, 0, 11, AQ_ETOOBIG},
        {"k", 1000, 0, 0, AQ_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lent *l = lend(cases[i].len, 100 + i);
        aq_chunk_digest dl = aq_chunk_digest_of(l->buf + 16, cases[i].len);
        if (cases[i].flip)
            l->buf[16 + 17] ^= 1;
        aq_chunk_adopt a = adopt_of(l);
        uint64_t held = 0, ver = cases[i].version;
        int err =
            ver ? aq_chunk_put_versioned_adopt(s, cases[i].key, strlen(cases[i].key), l->buf + 16,
                                               cases[i].len, 0, &dl, ver, &held, &a, 0)
                : aq_chunk_put_above_adopt(s, "k", 1, l->buf + 16, cases[i].len, 0, &dl, &ver, &a,
                                           0);
        cr_assert_eq(err, cases[i].want, "case %zu: %d", i, err);
        cr_assert_eq(l->released, 1, "case %zu: released %d times", i, l->released);
        if (err == AQ_ESTALE)
            cr_assert_eq(held, 10);
        free(l);
    }
    /* The same write again: success, stores nothing, gives the new buffer back. */
    lent *same = lend(1000, 3);
    aq_chunk_adopt sd = adopt_of(same);
    cr_assert_eq(
        aq_chunk_put_versioned_adopt(s, "k", 1, same->buf + 16, 1000, 0, &d, 10, NULL, &sd, 0), 0);
    cr_assert_eq(same->released, 1);
    cr_assert_eq(v->released, 0);
    /* Over the cap: AQ_EFULL, released. */
    lent *big = lend(LEN, 4);
    aq_chunk_digest dbig = aq_chunk_digest_of(big->buf + 16, LEN);
    aq_chunk_adopt bd = adopt_of(big);
    cr_assert_eq(
        aq_chunk_put_versioned_adopt(s, "k2", 2, big->buf + 16, LEN, 0, &dbig, 1, NULL, &bd, 0),
        AQ_EFULL);
    cr_assert_eq(big->released, 1);
    /* An empty value has nothing to adopt: released at once, stored all the same. */
    lent *e = lend(0, 5);
    aq_chunk_digest de = aq_chunk_digest_of(NULL, 0);
    aq_chunk_adopt ed = adopt_of(e);
    cr_assert_eq(aq_chunk_put_versioned_adopt(s, "e", 1, e->buf + 16, 0, 0, &de, 1, NULL, &ed, 0),
                 0);
    cr_assert_eq(e->released, 1);
    uint64_t size = 1;
    cr_assert_eq(aq_chunk_stat(s, "e", 1, &size, NULL), 0);
    cr_assert_eq(size, 0);

    aq_chunk_ref *r = NULL;
    cr_assert_eq(aq_chunk_get(s, "k", 1, &r), 0);
    cr_assert_eq(aq_chunk_ref_data(r), v->buf + 16);
    cr_assert_eq(aq_chunk_ref_version(r), 10);
    aq_chunk_ref_release(r);
    aq_chunk_store_close(s);
    cr_assert_eq(v->released, 1, "close gives the stored buffer back");
    free(v);
    free(same);
    free(big);
    free(e);
}

Test(adopt, put_above_adopts_and_persists_the_adopted_bytes) {
    char *dir = tu_mkdtemp();
    aq_chunk_opts o = {.data_dir = dir};
    aq_chunk_store *s = NULL;
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    lent *v = lend(LEN, 6);
    uint8_t want_first = v->buf[16];
    aq_chunk_digest d = aq_chunk_digest_of(v->buf + 16, LEN);
    aq_chunk_adopt vd = adopt_of(v);
    uint64_t version = 5;
    cr_assert_eq(aq_chunk_put_above_adopt(s, "p", 1, v->buf + 16, LEN, 3, &d, &version, &vd, 0), 0);
    cr_assert_eq(version, 5);
    cr_assert_eq(v->released, 0);
    aq_chunk_store_close(s);
    cr_assert_eq(v->released, 1);

    s = NULL;
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    aq_chunk_ref *r = NULL;
    cr_assert_eq(aq_chunk_get(s, "p", 1, &r), 0);
    cr_assert_eq(aq_chunk_ref_len(r), LEN);
    cr_assert_eq(aq_chunk_ref_kind(r), 3);
    cr_assert_eq(aq_chunk_ref_data(r)[0], want_first);
    cr_assert(aq_chunk_digest_equal(aq_chunk_ref_digest(r), d));
    aq_chunk_ref_release(r);
    aq_chunk_store_close(s);
    free(v);
    tu_rmrf(dir);
}

/* AQ_CHUNK_NOWAIT: where the put would wait for a lock another holder has (the index, or the
 * key's writer stripe), it answers AQ_EBUSY at once, stores nothing and releases the buffer once;
 * with the locks free it stores as usual. The locks are held here through the store's internals,
 * by this very thread (trylock refuses a lock its own thread holds too). */
Test(adopt, nowait_refuses_a_held_lock_and_stores_nothing) {
    aq_chunk_store *s = mem_store(0);
    uint64_t ver = 5;
    lent *a = lend(1000, 3);
    aq_chunk_digest d = aq_chunk_digest_of(a->buf + 16, 1000);
    aq_chunk_adopt ad = adopt_of(a);
    pthread_rwlock_rdlock(&s->lock); /* a scan of the index */
    cr_assert_eq(
        aq_chunk_put_above_adopt(s, "k", 1, a->buf + 16, 1000, 0, &d, &ver, &ad, AQ_CHUNK_NOWAIT),
        AQ_EBUSY);
    pthread_rwlock_unlock(&s->lock);
    cr_expect_eq(a->released, 1);
    cr_expect_eq(ver, 5, "the version was touched by a put that stored nothing");
    aq_chunk_ref *r = NULL;
    cr_expect_eq(aq_chunk_get(s, "k", 1, &r), AQ_ENOTFOUND);

    lent *b = lend(1000, 3);
    aq_chunk_adopt bd = adopt_of(b);
    for (size_t i = 0; i < AQ_CHUNK_STRIPES; i++) /* another writer of the key */
        pthread_mutex_lock(&s->stripes[i]);
    cr_assert_eq(aq_chunk_put_versioned_adopt(s, "k", 1, b->buf + 16, 1000, 0, &d, 7, NULL, &bd,
                                              AQ_CHUNK_NOWAIT),
                 AQ_EBUSY);
    for (size_t i = 0; i < AQ_CHUNK_STRIPES; i++)
        pthread_mutex_unlock(&s->stripes[i]);
    cr_expect_eq(b->released, 1);
    cr_expect_eq(aq_chunk_get(s, "k", 1, &r), AQ_ENOTFOUND);

    lent *c = lend(1000, 3);
    aq_chunk_adopt cd = adopt_of(c);
    cr_assert_eq(
        aq_chunk_put_above_adopt(s, "k", 1, c->buf + 16, 1000, 0, &d, &ver, &cd, AQ_CHUNK_NOWAIT),
        0);
    cr_assert_eq(aq_chunk_get(s, "k", 1, &r), 0);
    cr_expect_eq(aq_chunk_ref_data(r), c->buf + 16, "the stored chunk is not the adopted buffer");
    aq_chunk_ref_release(r);
    cr_expect_eq(c->released, 0);
    aq_chunk_store_close(s);
    cr_expect_eq(c->released, 1);
    free(a);
    free(b);
    free(c);
}

Test(adopt, nowait_never_writes_a_file) {
    char *dir = tu_mkdtemp();
    aq_chunk_opts o = {.data_dir = dir};
    aq_chunk_store *s = NULL;
    cr_assert_eq(aq_chunk_store_open(&o, &s), 0);
    lent *a = lend(100, 4);
    aq_chunk_digest d = aq_chunk_digest_of(a->buf + 16, 100);
    aq_chunk_adopt ad = adopt_of(a);
    cr_expect_eq(aq_chunk_put_versioned_adopt(s, "k", 1, a->buf + 16, 100, 0, &d, 3, NULL, &ad,
                                              AQ_CHUNK_NOWAIT),
                 AQ_EBUSY);
    cr_expect_eq(a->released, 1);
    aq_chunk_ref *r = NULL;
    cr_expect_eq(aq_chunk_get(s, "k", 1, &r), AQ_ENOTFOUND);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
    free(a);
}
