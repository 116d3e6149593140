/* The store's own jemalloc arena: every chunk and its bytes come from it (except adopted bytes,
 * which stay in their owner's buffer), bypassing the thread caches so that nothing of the arena
 * lingers in a cache after the arena is destroyed.
 *
 * Freed pages stay mapped: a burst of large frees (the old parts of a value just replaced) makes
 * jemalloc purge at once, and purging with MADV_DONTNEED would make every later chunk fault in
 * fresh zeroed pages, one fault per 4 KiB. The arena never purges its "muzzy" pages: they are given
 * back lazily with MADV_FREE, which the kernel reclaims only under memory pressure, and until then
 * a new chunk reuses them without a fault. */
#include "aq_chunk_int.h"
#include "aq_error.h"

#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <string.h>

int aq_chunk_mem_open(unsigned *arena) {
    unsigned a;
    size_t sz = sizeof a;
    if (mallctl("arenas.create", &a, &sz, NULL, 0) != 0)
        return AQ_ENOMEM;
    char name[64];
    snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", a);
    ssize_t never = -1;
    /* Only a speed setting: the arena works the same without it. */
    (void)mallctl(name, NULL, NULL, &never, sizeof never);
    *arena = a;
    return 0;
}

void aq_chunk_mem_close(unsigned arena) {
    char name[64];
    snprintf(name, sizeof name, "arena.%u.destroy", arena);
    /* Destroying returns the arena's memory and its index for reuse by a later arenas.create. */
    mallctl(name, NULL, NULL, NULL, 0);
}

void *aq_chunk_mem_alloc(unsigned arena, size_t size) {
    return mallocx(size, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE);
}

void aq_chunk_mem_free(void *p) {
    if (p)
        dallocx(p, MALLOCX_TCACHE_NONE);
}

uint64_t aq_chunk_mem_allocated(unsigned arena) {
    bool have_stats = false;
    size_t sz = sizeof have_stats;
    if (mallctl("config.stats", &have_stats, &sz, NULL, 0) != 0 || !have_stats)
        return 0;
    /* Statistics are a snapshot refreshed by writing the epoch. */
    uint64_t epoch = 1;
    sz = sizeof epoch;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    uint64_t total = 0;
    static const char *const parts[] = {"small", "large"};
    for (size_t i = 0; i < 2; i++) {
        char name[96];
        snprintf(name, sizeof name, "stats.arenas.%u.%s.allocated", arena, parts[i]);
        size_t v = 0;
        sz = sizeof v;
        if (mallctl(name, &v, &sz, NULL, 0) == 0)
            total += v;
    }
    return total;
}

aq_chunk_ref *aq_chunk_obj_new(unsigned arena, const void *key, size_t klen, size_t len) {
    aq_chunk_ref *r = aq_chunk_mem_alloc(arena, sizeof *r + klen + 1);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    atomic_init(&r->refs, 1);
    r->klen = (uint8_t)klen;
    memcpy(r->key, key, klen);
    r->key[klen] = 0;
    r->len = len;
    if (len) {
        r->data = aq_chunk_mem_alloc(arena, len);
        if (!r->data) {
            aq_chunk_mem_free(r);
            return NULL;
        }
    } else {
        /* A readable, non-NULL pointer for empty values: memcpy(dst, NULL, 0) is undefined. */
        r->data = r->key + klen;
    }
    return r;
}

aq_chunk_ref *aq_chunk_obj_adopt(unsigned arena, const void *key, size_t klen, const uint8_t *data,
                                 size_t len, const aq_chunk_adopt *adopt,
                                 _Atomic uint64_t *adopted) {
    aq_chunk_ref *r = aq_chunk_obj_new(arena, key, klen, 0);
    if (!r)
        return NULL;
    r->len = len;
    /* Never written through: the bytes of a chunk do not change once stored. */
    r->data = (uint8_t *)data;
    r->adopt = *adopt;
    r->adopted = adopted;
    atomic_fetch_add_explicit(adopted, len, memory_order_relaxed);
    return r;
}

void aq_chunk_obj_free(aq_chunk_ref *r) {
    if (!r)
        return;
    if (r->adopted) {
        atomic_fetch_sub_explicit(r->adopted, r->len, memory_order_relaxed);
        r->adopt.release(r->adopt.ctx);
    } else if (r->len) {
        aq_chunk_mem_free(r->data);
    }
    aq_chunk_mem_free(r);
}
