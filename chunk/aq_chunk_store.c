/* The store's operations: open/close, put, get, rm, stat, iterate, stats. */
#include "aq_chunk_int.h"
#include "aq_error.h"
#include "aq_order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include "aq_xxh.h"

/* Copy and hash in cache-sized blocks, hashing the store's own copy while it is still in cache:
 * the source is read once from memory instead of twice. */
#define COPY_BLOCK (64u << 10)

static void ref_put(aq_chunk_ref *r) {
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        aq_chunk_obj_free(r);
}

static void ref_get(aq_chunk_ref *r) {
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static pthread_mutex_t *stripe(aq_chunk_store *s, uint64_t khash) {
    /* The index uses the low bits; the stripes use high ones so they spread independently. */
    return &s->stripes[(khash >> 58) % AQ_CHUNK_STRIPES];
}

int aq_chunk_store_open(const aq_chunk_opts *opts, aq_chunk_store **out) {
    if (!opts || !out)
        return AQ_EINVAL;
    aq_chunk_store *s = calloc(1, sizeof *s);
    if (!s)
        return AQ_ENOMEM;
    s->memory_max = opts->memory_max;
    s->report = opts->report;
    s->report_ud = opts->report_ud;
    s->dirfd = s->lockfd = -1;
    int err = aq_chunk_index_init(&s->index);
    if (err) {
        free(s);
        return err;
    }
    err = aq_chunk_mem_open(&s->arena);
    if (err) {
        aq_chunk_index_fini(&s->index);
        free(s);
        return err;
    }
    pthread_rwlock_init(&s->lock, NULL);
    for (size_t i = 0; i < AQ_CHUNK_STRIPES; i++)
        pthread_mutex_init(&s->stripes[i], NULL);
    if (opts->data_dir) {
        err = aq_chunk_persist_open(s, opts->data_dir);
        if (!err)
            err = aq_chunk_persist_load(s);
        if (err) {
            aq_chunk_store_close(s);
            return err;
        }
    }
    *out = s;
    return 0;
}

void aq_chunk_store_close(aq_chunk_store *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->index.nbuckets; i++) {
        aq_chunk_ref *r = s->index.buckets[i];
        while (r) {
            aq_chunk_ref *next = r->next;
            ref_put(r);
            r = next;
        }
    }
    aq_chunk_index_fini(&s->index);
    aq_chunk_persist_close(s);
    aq_chunk_mem_close(s->arena);
    pthread_rwlock_destroy(&s->lock);
    for (size_t i = 0; i < AQ_CHUNK_STRIPES; i++)
        pthread_mutex_destroy(&s->stripes[i]);
    free(s);
}

int aq_chunk_write_cmp(uint64_t va, aq_chunk_digest da, uint8_t ka, uint64_t vb, aq_chunk_digest db,
                       uint8_t kb) {
    return aq_order_write_cmp(va, da.hi, da.lo, ka, vb, db.hi, db.lo, kb);
}

enum commit_mode { COMMIT_ALWAYS, COMMIT_IF_NEWER, COMMIT_ABOVE };

/* Stores r (refs = 1, bytes and digest filled in) under its key. COMMIT_IF_NEWER: only when no
 * chunk is stored under the key or r orders after it (else AQ_ESTALE, and *held is the stored
 * version; an identical write returns 1 and stores nothing, r stays the caller's). COMMIT_ABOVE:
 * r's version is raised to one above the stored one when it is not already above it. *assigned
 * (when not NULL) gets the version r is stored with. */
static int commit(aq_chunk_store *s, aq_chunk_ref *r, enum commit_mode mode, uint64_t *held,
                  uint64_t *assigned, bool nowait) {
    pthread_mutex_t *m = stripe(s, r->khash);
    if (nowait && s->dirfd >= 0)
        return AQ_EBUSY; /* it would wait for the disk */
    if (!nowait) {
        pthread_mutex_lock(m);
        pthread_rwlock_wrlock(&s->lock);
    } else if (pthread_mutex_trylock(m) != 0) {
        return AQ_EBUSY;
    } else if (pthread_rwlock_trywrlock(&s->lock) != 0) {
        pthread_mutex_unlock(m);
        return AQ_EBUSY;
    }
    /* Reserve the growth first so a put that cannot fit never touches the disk. Holding the
     * stripe, no one else changes this key, so the old length read here stays true. */
    aq_chunk_ref *old = aq_chunk_index_find(&s->index, r->key, r->klen, r->khash);
    if (mode == COMMIT_ABOVE && old && old->version >= r->version)
        r->version = old->version + 1;
    int order = old ? aq_chunk_write_cmp(r->version, r->digest, r->kind, old->version, old->digest,
                                         old->kind)
                    : 1;
    if (mode == COMMIT_IF_NEWER && order <= 0) {
        if (held)
            *held = old->version;
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(m);
        return order == 0 ? 1 : AQ_ESTALE;
    }
    if (assigned)
        *assigned = r->version;
    uint64_t oldlen = old ? old->len : 0;
    uint64_t growth = r->len > oldlen ? r->len - oldlen : 0;
    if (s->memory_max && growth &&
        (s->bytes + s->reserved > s->memory_max ||
         growth > s->memory_max - s->bytes - s->reserved)) {
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(m);
        return AQ_EFULL;
    }
    if (s->dirfd < 0) {
        /* Nothing to write: store it in the same hold of the lock. */
        old = aq_chunk_index_put(&s->index, r);
        s->bytes = s->bytes - (old ? old->len : 0) + r->len;
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(m);
        ref_put(old);
        return 0;
    }
    s->reserved += growth;
    pthread_rwlock_unlock(&s->lock);

    int err = aq_chunk_persist_write(s, r);

    pthread_rwlock_wrlock(&s->lock);
    s->reserved -= growth;
    if (!err) {
        old = aq_chunk_index_put(&s->index, r);
        s->bytes = s->bytes - (old ? old->len : 0) + r->len;
    } else {
        old = NULL; /* still the index's: a failed overwrite leaves the stored chunk as it was */
    }
    pthread_rwlock_unlock(&s->lock);
    pthread_mutex_unlock(m);
    ref_put(old);
    return err;
}

static int check_args(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                      size_t len) {
    if (!s || (len && !data))
        return AQ_EINVAL;
    int err = aq_chunk_key_check(key, klen);
    if (err)
        return err;
    if (len > AQ_CHUNK_VALUE_MAX)
        return AQ_ETOOBIG;
    /* An early, unlocked look at the cap spares copying 4 MiB that commit() would refuse. */
    if (s->memory_max && len > s->memory_max)
        return AQ_EFULL;
    return 0;
}

/* Checks the arguments and makes the chunk object holding the bytes (a copy, or with adopt the
 * caller's buffer itself) and its digest. With adopt, the buffer is released on failure. */
static int prepare(aq_chunk_store *s, const void *key, size_t klen, const void *data, size_t len,
                   uint8_t kind, const aq_chunk_adopt *adopt, aq_chunk_ref **out) {
    int err = check_args(s, key, klen, data, len);
    if (adopt && (err || !len)) {
        adopt->release(adopt->ctx); /* nothing to adopt, or refused: it is the store's to give */
        adopt = NULL;
    }
    if (err)
        return err;
    aq_chunk_ref *r = adopt ? aq_chunk_obj_adopt(s->arena, key, klen, data, len, adopt, &s->adopted)
                            : aq_chunk_obj_new(s->arena, key, klen, len);
    if (!r) {
        if (adopt)
            adopt->release(adopt->ctx);
        return AQ_ENOMEM;
    }
    r->khash = aq_chunk_key_hash(key, klen);
    r->kind = kind;
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    if (adopt) {
        /* The caller gave the bytes up: hashing them in place is hashing the store's own. */
        XXH3_128bits_update(&st, r->data, len);
    } else {
        /* Hash the store's own copy: a caller changing its buffer meanwhile cannot make them
         * differ. */
        for (size_t off = 0; off < len; off += COPY_BLOCK) {
            size_t n = len - off < COPY_BLOCK ? len - off : COPY_BLOCK;
            memcpy(r->data + off, (const uint8_t *)data + off, n);
            XXH3_128bits_update(&st, r->data + off, n);
        }
    }
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    r->digest = (aq_chunk_digest){h.high64, h.low64};
    *out = r;
    return 0;
}

int aq_chunk_put(aq_chunk_store *s, const void *key, size_t klen, const void *data, size_t len,
                 aq_chunk_digest *out_digest) {
    aq_chunk_ref *r;
    int err = prepare(s, key, klen, data, len, 0, NULL, &r);
    if (err)
        return err;
    aq_chunk_digest d = r->digest;
    err = commit(s, r, COMMIT_ALWAYS, NULL, NULL, false);
    if (err) {
        ref_put(r);
        return err;
    }
    if (out_digest)
        *out_digest = d;
    return 0;
}

static int put_checked(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                       size_t len, uint8_t kind, const aq_chunk_digest *expect, uint64_t *version,
                       enum commit_mode mode, uint64_t *held, const aq_chunk_adopt *adopt,
                       unsigned flags) {
    if (!expect) {
        if (adopt)
            adopt->release(adopt->ctx);
        return AQ_EINVAL;
    }
    aq_chunk_ref *r;
    int err = prepare(s, key, klen, data, len, kind, adopt, &r);
    if (err)
        return err;
    if (!aq_chunk_digest_equal(r->digest, *expect)) {
        ref_put(r);
        return AQ_ECORRUPT;
    }
    r->version = version ? *version : 0;
    err = commit(s, r, mode, held, version, flags & AQ_CHUNK_NOWAIT);
    if (err == 1) {
        /* An identical write is stored already: success, and r was not taken. */
        ref_put(r);
        return 0;
    }
    if (err)
        ref_put(r);
    return err;
}

int aq_chunk_put_verified(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                          size_t len, uint8_t kind, const aq_chunk_digest *expect) {
    return put_checked(s, key, klen, data, len, kind, expect, NULL, COMMIT_ALWAYS, NULL, NULL, 0);
}

int aq_chunk_put_versioned_held(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                                size_t len, uint8_t kind, const aq_chunk_digest *expect,
                                uint64_t version, uint64_t *held) {
    return put_checked(s, key, klen, data, len, kind, expect, &version, COMMIT_IF_NEWER, held, NULL,
                       0);
}

int aq_chunk_put_versioned_adopt(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                                 size_t len, uint8_t kind, const aq_chunk_digest *expect,
                                 uint64_t version, uint64_t *held, const aq_chunk_adopt *adopt,
                                 unsigned flags) {
    return put_checked(s, key, klen, data, len, kind, expect, &version, COMMIT_IF_NEWER, held,
                       adopt, flags);
}

int aq_chunk_put_versioned(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                           size_t len, uint8_t kind, const aq_chunk_digest *expect,
                           uint64_t version) {
    return aq_chunk_put_versioned_held(s, key, klen, data, len, kind, expect, version, NULL);
}

int aq_chunk_put_above(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                       size_t len, uint8_t kind, const aq_chunk_digest *expect, uint64_t *version) {
    return aq_chunk_put_above_adopt(s, key, klen, data, len, kind, expect, version, NULL, 0);
}

int aq_chunk_put_above_adopt(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                             size_t len, uint8_t kind, const aq_chunk_digest *expect,
                             uint64_t *version, const aq_chunk_adopt *adopt, unsigned flags) {
    if (!version || !*version) {
        if (adopt)
            adopt->release(adopt->ctx);
        return AQ_EINVAL;
    }
    return put_checked(s, key, klen, data, len, kind, expect, version, COMMIT_ABOVE, NULL, adopt,
                       flags);
}

uint64_t aq_chunk_ref_version(const aq_chunk_ref *r) {
    return r->version;
}

int aq_chunk_get(aq_chunk_store *s, const void *key, size_t klen, aq_chunk_ref **out) {
    if (!s || !out)
        return AQ_EINVAL;
    int err = aq_chunk_key_check(key, klen);
    if (err)
        return err;
    uint64_t h = aq_chunk_key_hash(key, klen);
    pthread_rwlock_rdlock(&s->lock);
    aq_chunk_ref *r = aq_chunk_index_find(&s->index, key, klen, h);
    if (r)
        ref_get(r);
    pthread_rwlock_unlock(&s->lock);
    if (!r)
        return AQ_ENOTFOUND;
    *out = r;
    return 0;
}

const uint8_t *aq_chunk_ref_data(const aq_chunk_ref *r) {
    return r->data;
}

size_t aq_chunk_ref_len(const aq_chunk_ref *r) {
    return r->len;
}

aq_chunk_digest aq_chunk_ref_digest(const aq_chunk_ref *r) {
    return r->digest;
}

uint8_t aq_chunk_ref_kind(const aq_chunk_ref *r) {
    return r->kind;
}

const uint8_t *aq_chunk_ref_key(const aq_chunk_ref *r, size_t *klen) {
    if (klen)
        *klen = r->klen;
    return r->key;
}

void aq_chunk_ref_release(aq_chunk_ref *r) {
    ref_put(r);
}

/* When a conditional removal applies: RM_ALWAYS; RM_OLDER, the stored version is below
 * version; RM_UPTO, the stored write orders at or before (version, digest, kind). */
enum rm_mode { RM_ALWAYS, RM_OLDER, RM_UPTO };
typedef struct rm_cond {
    enum rm_mode mode;
    uint64_t version;
    aq_chunk_digest digest;
    uint8_t kind;
} rm_cond;

static int rm_checked(aq_chunk_store *s, const void *key, size_t klen, const rm_cond *c);

int aq_chunk_rm(aq_chunk_store *s, const void *key, size_t klen) {
    rm_cond c = {RM_ALWAYS, 0, {0, 0}, 0};
    return rm_checked(s, key, klen, &c);
}

int aq_chunk_rm_older(aq_chunk_store *s, const void *key, size_t klen, uint64_t version) {
    rm_cond c = {RM_OLDER, version, {0, 0}, 0};
    return rm_checked(s, key, klen, &c);
}

int aq_chunk_rm_upto(aq_chunk_store *s, const void *key, size_t klen, uint64_t version,
                     aq_chunk_digest digest, uint8_t kind) {
    rm_cond c = {RM_UPTO, version, digest, kind};
    return rm_checked(s, key, klen, &c);
}

static int rm_checked(aq_chunk_store *s, const void *key, size_t klen, const rm_cond *c) {
    if (!s)
        return AQ_EINVAL;
    int err = aq_chunk_key_check(key, klen);
    if (err)
        return err;
    uint64_t h = aq_chunk_key_hash(key, klen);
    pthread_mutex_t *m = stripe(s, h);
    pthread_mutex_lock(m);
    pthread_rwlock_rdlock(&s->lock);
    const aq_chunk_ref *cur = aq_chunk_index_find(&s->index, key, klen, h);
    bool present = cur != NULL;
    bool newer = false;
    if (present && c->mode == RM_OLDER)
        newer = cur->version >= c->version;
    else if (present && c->mode == RM_UPTO)
        newer = aq_chunk_write_cmp(cur->version, cur->digest, cur->kind, c->version, c->digest,
                                   c->kind) > 0;
    pthread_rwlock_unlock(&s->lock);
    if (!present || newer) {
        pthread_mutex_unlock(m);
        return present ? AQ_ESTALE : AQ_ENOTFOUND;
    }
    /* The file goes first: if unlinking fails the chunk stays, in memory and on disk. */
    err = s->dirfd >= 0 ? aq_chunk_persist_remove(s, key, klen) : 0;
    aq_chunk_ref *r = NULL;
    if (!err) {
        pthread_rwlock_wrlock(&s->lock);
        r = aq_chunk_index_remove(&s->index, key, klen, h);
        if (r)
            s->bytes -= r->len;
        pthread_rwlock_unlock(&s->lock);
    }
    pthread_mutex_unlock(m);
    ref_put(r);
    return err;
}

int aq_chunk_stat(aq_chunk_store *s, const void *key, size_t klen, uint64_t *size,
                  aq_chunk_digest *digest) {
    if (!s)
        return AQ_EINVAL;
    int err = aq_chunk_key_check(key, klen);
    if (err)
        return err;
    uint64_t h = aq_chunk_key_hash(key, klen);
    pthread_rwlock_rdlock(&s->lock);
    aq_chunk_ref *r = aq_chunk_index_find(&s->index, key, klen, h);
    if (r) {
        if (size)
            *size = r->len;
        if (digest)
            *digest = r->digest;
    }
    pthread_rwlock_unlock(&s->lock);
    return r ? 0 : AQ_ENOTFOUND;
}

static int ref_key_cmp(const void *a, const void *b) {
    const aq_chunk_ref *x = *(aq_chunk_ref *const *)a, *y = *(aq_chunk_ref *const *)b;
    int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
    return c ? c : (int)x->klen - (int)y->klen;
}

int aq_chunk_iterate(aq_chunk_store *s, const void *prefix, size_t plen, aq_chunk_iter_fn fn,
                     void *ud) {
    if (!s || !fn || (plen && !prefix))
        return AQ_EINVAL;
    pthread_rwlock_rdlock(&s->lock);
    size_t cap = s->index.count, n = 0;
    aq_chunk_ref **snap = malloc((cap ? cap : 1) * sizeof *snap);
    if (!snap) {
        pthread_rwlock_unlock(&s->lock);
        return AQ_ENOMEM;
    }
    for (size_t i = 0; i < s->index.nbuckets; i++)
        for (aq_chunk_ref *r = s->index.buckets[i]; r; r = r->next)
            if (r->klen >= plen && memcmp(r->key, prefix ? prefix : "", plen) == 0) {
                ref_get(r);
                snap[n++] = r;
            }
    pthread_rwlock_unlock(&s->lock);
    qsort(snap, n, sizeof *snap, ref_key_cmp);
    size_t i = 0;
    for (; i < n; i++) {
        aq_chunk_ref *r = snap[i];
        if (fn(ud, r->key, r->klen, r->len, r->digest, r->kind) != 0)
            break;
    }
    for (i = 0; i < n; i++)
        ref_put(snap[i]);
    free(snap);
    return 0;
}

int aq_chunk_store_stats(aq_chunk_store *s, aq_chunk_stats *out) {
    if (!s || !out)
        return AQ_EINVAL;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&s->lock);
    out->chunks = s->index.count;
    memcpy(out->by_kind, s->index.by_kind, sizeof out->by_kind);
    out->bytes = s->bytes;
    pthread_rwlock_unlock(&s->lock);
    out->allocated =
        aq_chunk_mem_allocated(s->arena) + atomic_load_explicit(&s->adopted, memory_order_relaxed);
    out->quarantined = s->quarantined;
    out->stray = s->stray;
    return 0;
}

int aq_chunk_scrub(aq_chunk_store *s, const void *key, size_t klen, uint64_t *bytes, char *why,
                   size_t whylen) {
    uint64_t dummy = 0;
    if (!bytes)
        bytes = &dummy;
    if (!s || !why || !whylen)
        return AQ_EINVAL;
    int err = aq_chunk_key_check(key, klen);
    if (err)
        return err;
    why[0] = 0;
    uint64_t h = aq_chunk_key_hash(key, klen);
    /* Holding the key's stripe, no write of the key changes the chunk or its file meanwhile. */
    pthread_mutex_t *m = stripe(s, h);
    pthread_mutex_lock(m);
    pthread_rwlock_rdlock(&s->lock);
    aq_chunk_ref *r = aq_chunk_index_find(&s->index, key, klen, h);
    if (r)
        ref_get(r);
    pthread_rwlock_unlock(&s->lock);
    if (!r) {
        pthread_mutex_unlock(m);
        return AQ_ENOTFOUND;
    }
    aq_chunk_digest d = aq_chunk_digest_of(r->data, r->len);
    *bytes += r->len;
    if (!aq_chunk_digest_equal(d, r->digest)) {
        snprintf(why, whylen, "its bytes in memory do not match its digest");
        err = AQ_ECORRUPT;
    } else if (s->dirfd >= 0) {
        err = aq_chunk_persist_check(s, r, bytes, why, whylen);
    }
    if (err == AQ_ECORRUPT) {
        if (s->dirfd >= 0)
            aq_chunk_persist_quarantine(s, key, klen, why);
        pthread_rwlock_wrlock(&s->lock);
        aq_chunk_ref *gone = aq_chunk_index_remove(&s->index, key, klen, h);
        if (gone)
            s->bytes -= gone->len;
        pthread_rwlock_unlock(&s->lock);
        ref_put(gone);
    }
    pthread_mutex_unlock(m);
    ref_put(r);
    return err;
}
