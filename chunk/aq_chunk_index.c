/* The key index: a chained hash table of chunks, keyed by the key bytes. */
#include "aq_chunk_int.h"
#include "aq_error.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 1024

int aq_chunk_index_init(aq_chunk_index *ix) {
    ix->buckets = calloc(INITIAL_BUCKETS, sizeof *ix->buckets);
    if (!ix->buckets)
        return AQ_ENOMEM;
    ix->nbuckets = INITIAL_BUCKETS;
    ix->count = 0;
    memset(ix->by_kind, 0, sizeof ix->by_kind);
    return 0;
}

void aq_chunk_index_fini(aq_chunk_index *ix) {
    free(ix->buckets);
    ix->buckets = NULL;
    ix->nbuckets = ix->count = 0;
}

static bool same_key(const aq_chunk_ref *r, const void *key, size_t klen, uint64_t khash) {
    return r->khash == khash && r->klen == klen && memcmp(r->key, key, klen) == 0;
}

aq_chunk_ref *aq_chunk_index_find(const aq_chunk_index *ix, const void *key, size_t klen,
                                  uint64_t khash) {
    for (aq_chunk_ref *r = ix->buckets[khash & (ix->nbuckets - 1)]; r; r = r->next)
        if (same_key(r, key, klen, khash))
            return r;
    return NULL;
}

static void grow(aq_chunk_index *ix) {
    size_t n = ix->nbuckets * 2;
    aq_chunk_ref **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        aq_chunk_ref *r = ix->buckets[i];
        while (r) {
            aq_chunk_ref *next = r->next;
            size_t j = r->khash & (n - 1);
            r->next = b[j];
            b[j] = r;
            r = next;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->nbuckets = n;
}

aq_chunk_ref *aq_chunk_index_put(aq_chunk_index *ix, aq_chunk_ref *r) {
    aq_chunk_ref **pp = &ix->buckets[r->khash & (ix->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        aq_chunk_ref *old = *pp;
        if (same_key(old, r->key, r->klen, r->khash)) {
            r->next = old->next;
            *pp = r;
            old->next = NULL;
            ix->by_kind[old->kind]--;
            ix->by_kind[r->kind]++;
            return old;
        }
    }
    r->next = NULL;
    *pp = r;
    ix->by_kind[r->kind]++;
    if (++ix->count > ix->nbuckets)
        grow(ix);
    return NULL;
}

aq_chunk_ref *aq_chunk_index_remove(aq_chunk_index *ix, const void *key, size_t klen,
                                    uint64_t khash) {
    for (aq_chunk_ref **pp = &ix->buckets[khash & (ix->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
        aq_chunk_ref *r = *pp;
        if (same_key(r, key, klen, khash)) {
            *pp = r->next;
            r->next = NULL;
            ix->count--;
            ix->by_kind[r->kind]--;
            return r;
        }
    }
    return NULL;
}
