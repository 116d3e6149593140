/* Internals shared by the chunk store's files; not part of the public API. */
#ifndef AQ_CHUNK_INT_H
#define AQ_CHUNK_INT_H

#include "aq_chunk.h"

#include <pthread.h>
#include <stdatomic.h>

#define AQ_CHUNK_STRIPES 64

/* One stored chunk. Immutable once published, except next (guarded by the index lock) and refs.
 * The index holds one reference; each reader holds one more. */
struct aq_chunk_ref {
    _Atomic uint32_t refs;
    uint8_t kind;
    uint8_t klen;
    struct aq_chunk_ref *next; /* hash chain, while in the index */
    uint64_t khash;
    size_t len;
    uint64_t version; /* the writer's version; 0 for unversioned puts */
    aq_chunk_digest digest;
    uint8_t *data; /* separate allocation so a 4 MiB value keeps its 4 MiB size class */
    /* Adopted bytes: given back through adopt.release, and counted in *adopted meanwhile. */
    aq_chunk_adopt adopt;
    _Atomic uint64_t *adopted;
    uint8_t key[];
};

typedef struct aq_chunk_index {
    aq_chunk_ref **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    uint64_t by_kind[256]; /* entries per kind */
} aq_chunk_index;

struct aq_chunk_store {
    pthread_rwlock_t lock; /* guards index, bytes, reserved */
    aq_chunk_index index;
    uint64_t bytes;
    uint64_t reserved;        /* growth promised to puts in flight */
    _Atomic uint64_t adopted; /* value bytes of adopted buffers not yet released */
    uint64_t memory_max;
    pthread_mutex_t stripes[AQ_CHUNK_STRIPES]; /* serialize writers of one key */
    unsigned arena;
    int dirfd;  /* -1: memory only */
    int lockfd; /* -1: memory only */
    char *data_dir;
    aq_chunk_report_fn report;
    void *report_ud;
    uint64_t quarantined; /* written only during open */
    uint64_t stray;       /* written only during open */
};

uint64_t aq_chunk_key_hash(const void *key, size_t klen);

/* Arena (aq_chunk_mem.c). */
int aq_chunk_mem_open(unsigned *arena);
void aq_chunk_mem_close(unsigned arena);
void *aq_chunk_mem_alloc(unsigned arena, size_t size);
void aq_chunk_mem_free(void *p);
uint64_t aq_chunk_mem_allocated(unsigned arena);
/* A new chunk with refs = 1 holding a copy of key; data has room for len bytes. */
aq_chunk_ref *aq_chunk_obj_new(unsigned arena, const void *key, size_t klen, size_t len);
/* A new chunk with refs = 1 holding a copy of key whose len (> 0) bytes are data, adopted: freeing
 * it calls adopt->release and takes len off *adopted (added here). NULL: nothing was adopted. */
aq_chunk_ref *aq_chunk_obj_adopt(unsigned arena, const void *key, size_t klen, const uint8_t *data,
                                 size_t len, const aq_chunk_adopt *adopt,
                                 _Atomic uint64_t *adopted);
void aq_chunk_obj_free(aq_chunk_ref *r);

/* Index (aq_chunk_index.c); the caller holds the store's lock as needed. */
int aq_chunk_index_init(aq_chunk_index *ix);
void aq_chunk_index_fini(aq_chunk_index *ix);
aq_chunk_ref *aq_chunk_index_find(const aq_chunk_index *ix, const void *key, size_t klen,
                                  uint64_t khash);
/* Inserts r, replacing an entry with the same key; returns the replaced one (or NULL). Growth
 * failure is harmless: the table stays correct, just longer chains. */
aq_chunk_ref *aq_chunk_index_put(aq_chunk_index *ix, aq_chunk_ref *r);
aq_chunk_ref *aq_chunk_index_remove(aq_chunk_index *ix, const void *key, size_t klen,
                                    uint64_t khash);

/* Persistence (aq_chunk_persist.c). */
void aq_chunk_reportf(const aq_chunk_store *s, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int aq_chunk_persist_open(aq_chunk_store *s, const char *data_dir);
/* Loads every chunk file into the index (no cap check). */
int aq_chunk_persist_load(aq_chunk_store *s);
int aq_chunk_persist_write(aq_chunk_store *s, const aq_chunk_ref *r);
int aq_chunk_persist_remove(aq_chunk_store *s, const void *key, size_t klen);
/* Re-reads r's file: 0 when it matches r, AQ_ECORRUPT (why says how) or AQ_ENOMEM. Adds the bytes
 * read to *bytes. */
int aq_chunk_persist_check(aq_chunk_store *s, const aq_chunk_ref *r, uint64_t *bytes, char *why,
                           size_t whylen);
/* Moves key's file to quarantine/ and reports why. */
void aq_chunk_persist_quarantine(aq_chunk_store *s, const void *key, size_t klen,
                                 const char *reason);
void aq_chunk_persist_close(aq_chunk_store *s);

#endif
