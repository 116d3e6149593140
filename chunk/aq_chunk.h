/* aq_chunk: the node-local chunk store. A key names bytes and their xxh3-128 digest.
 *
 * Keys are 1 to AQ_CHUNK_KEY_MAX bytes of valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF) with no NUL byte; any other key is refused with AQ_EKEY. Values are 0 to
 * AQ_CHUNK_VALUE_MAX bytes; a longer one is refused with AQ_ETOOBIG. The digest (XXH3_128bits of
 * the value) is computed or verified once, on put, and kept beside the bytes with a one-byte
 * "kind" that the store keeps and returns but never interprets.
 *
 * Memory: chunk bytes and their bookkeeping live in a jemalloc arena created for the store and
 * destroyed by aq_chunk_store_close. memory_max caps the *counted bytes*: the sum of the value
 * lengths of the live chunks (keys, bookkeeping and allocator rounding are not counted; bytes of a
 * chunk already overwritten or removed but still held by a reader are not counted either). A put
 * is checked against the cap with its growth: len for a new key, new len minus old len for an
 * overwrite (a shrinking overwrite always fits). Reaching memory_max exactly is allowed; passing
 * it fails with AQ_EFULL and changes nothing. Concurrent puts reserve their growth before they
 * store, so the counted bytes never pass the cap. Chunks loaded from data_dir at open are counted
 * but not refused (they are durable already), so after a restart with a smaller cap the counted
 * bytes may start above it and only shrinking puts and removals succeed until they drop below.
 *
 * Adopted bytes: a put may hand the store its own buffer (aq_chunk_adopt) instead of a copy; the
 * bytes then stay in that buffer until the store releases it. Freed chunk memory is kept mapped
 * for reuse (the kernel may still reclaim it under memory pressure), so a put that replaces
 * another does not fault in fresh pages.
 *
 * Persistence (opts.data_dir non-NULL): each chunk is one file named by the hex of a 128-bit hash
 * of its key (the key itself never becomes a path). A put writes a temporary file, fsyncs it,
 * renames it over the final name and fsyncs the directory before it returns 0: success means
 * durable. rm unlinks and fsyncs the directory before it returns 0. Open takes an exclusive flock
 * on data_dir/LOCK (kept for the store's life; a second store gets AQ_ELOCKED), removes leftover
 * temporary files, and loads and verifies every chunk file; a corrupt, truncated or foreign file is
 * moved to data_dir/quarantine/, reported through opts.report and counted, and never served.
 * Files the store does not recognise are left alone and reported once per open.
 *
 * Threads: every function may be called from any thread concurrently with the others, except
 * aq_chunk_store_close, which must come after every other call on the store has returned and every
 * reference has been released. One rwlock guards the index only: copying bytes, hashing and file
 * I/O happen outside it, so readers (get, stat, iterate, stats) never wait on a disk. Writers of
 * the same key (put, rm) are serialized among themselves so the file on disk and the chunk in
 * memory always agree on which write came last.
 *
 * References: aq_chunk_get hands out the stored bytes themselves, not a copy. The bytes of a
 * reference never change; an overwrite or rm while the reference is held replaces the index entry
 * and the old bytes are freed at the last aq_chunk_ref_release.
 */
#ifndef AQ_CHUNK_H
#define AQ_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_CHUNK_KEY_MAX        255
#define AQ_CHUNK_VALUE_MAX      ((size_t)4 << 20) /* 4 MiB = 4,194,304 bytes, inclusive */
#define AQ_CHUNK_DIGEST_HEX_LEN 32

/* XXH3_128bits: hi is high64, lo is low64 of XXH128_hash_t. */
typedef struct aq_chunk_digest {
    uint64_t hi, lo;
} aq_chunk_digest;

aq_chunk_digest aq_chunk_digest_of(const void *data, size_t len);
bool aq_chunk_digest_equal(aq_chunk_digest a, aq_chunk_digest b);
/* Writes the 32 lowercase hex digits that `xxhsum -H2` prints (the canonical big-endian bytes of
 * the hash) and a NUL into out. */
void aq_chunk_digest_hex(aq_chunk_digest d, char out[AQ_CHUNK_DIGEST_HEX_LEN + 1]);

/* 0 if key is a valid store key (rules above), else AQ_EKEY. */
int aq_chunk_key_check(const void *key, size_t klen);

/* file: a name relative to data_dir (or "LOCK", or the data_dir itself); reason: one sentence. */
typedef void (*aq_chunk_report_fn)(void *ud, const char *file, const char *reason);

typedef struct aq_chunk_opts {
    const char *data_dir;      /* NULL: memory only. Created (one level) if missing. */
    uint64_t memory_max;       /* cap on counted bytes (see above); 0: no cap */
    aq_chunk_report_fn report; /* quarantined and stray files, I/O errors, the lock; may be NULL */
    void *report_ud;
} aq_chunk_opts;

typedef struct aq_chunk_stats {
    uint64_t chunks;       /* live chunks */
    uint64_t bytes;        /* counted bytes: value bytes of live chunks (what memory_max caps) */
    uint64_t allocated;    /* bytes jemalloc has allocated in the store's arena, including chunks
                              still held by readers and allocator rounding, plus the value bytes
                              of adopted buffers not yet released; without the arena's part if
                              this jemalloc was built without statistics (config.stats false) */
    uint64_t quarantined;  /* files moved to data_dir/quarantine/ by this store's open */
    uint64_t stray;        /* unrecognised files reported at open */
    uint64_t by_kind[256]; /* live chunks of each kind */
} aq_chunk_stats;

typedef struct aq_chunk_store aq_chunk_store;
typedef struct aq_chunk_ref aq_chunk_ref;

/* On error *out is untouched and nothing is left open. AQ_ELOCKED: another store has data_dir. */
int aq_chunk_store_open(const aq_chunk_opts *opts, aq_chunk_store **out);
/* Frees every chunk and the arena. NULL is ignored. */
void aq_chunk_store_close(aq_chunk_store *s);

/* Stores a copy of data under key (overwriting) with kind 0, and writes its digest to out_digest
 * if non-NULL. data may be NULL when len is 0. Errors: AQ_EKEY, AQ_ETOOBIG, AQ_EFULL, AQ_ENOMEM,
 * or a negated errno from the file system; on error nothing changed. */
int aq_chunk_put(aq_chunk_store *s, const void *key, size_t klen, const void *data, size_t len,
                 aq_chunk_digest *out_digest);
/* Like aq_chunk_put with the given kind, but the digest comes from the caller (e.g. a replica's
 * sender) and the bytes are checked against it: a mismatch is AQ_ECORRUPT and stores nothing. */
int aq_chunk_put_verified(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                          size_t len, uint8_t kind, const aq_chunk_digest *expect);

/* A buffer handed over to a put instead of copied: the store keeps the bytes where they are and
 * calls release(ctx) exactly once, from any thread, when nothing needs them any more: after the
 * chunk is overwritten or removed (or the store closed) and its last reference released, or, when
 * the put stores nothing (an error, a stale or an identical write), before the put returns. The
 * digest is computed over the bytes in place, so the caller must not change them from the call on
 * (bytes around them in the same buffer are the caller's). */
typedef struct aq_chunk_adopt {
    void (*release)(void *ctx);
    void *ctx;
} aq_chunk_adopt;

/* Versioned writes (last writer wins, by a version the caller assigns): like aq_chunk_put_verified,
 * but stores only when no chunk is stored under key or the new write orders after the stored one;
 * otherwise returns AQ_ESTALE and changes nothing. Writes are ordered by version, then (equal
 * versions from two writers) by digest (hi, then lo, as unsigned integers), then by kind: the
 * greater wins, tombstones included, so replicas that see the same writes in any order keep the
 * same one. A write identical in all three to the stored one returns 0 and stores nothing (it is
 * there). The check and the store are atomic with respect to every other writer of the key.
 * Unversioned puts store version 0. The version is persisted. */
int aq_chunk_put_versioned(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                           size_t len, uint8_t kind, const aq_chunk_digest *expect,
                           uint64_t version);
/* The order of two versioned writes of one key, as aq_chunk_put_versioned applies it
 * (common/aq_order.h): negative when a orders before b, 0 when they are the same write, positive
 * when a wins. */
int aq_chunk_write_cmp(uint64_t va, aq_chunk_digest da, uint8_t ka, uint64_t vb, aq_chunk_digest db,
                       uint8_t kb);
/* aq_chunk_put_versioned that, on AQ_ESTALE, writes the stored version (the one that won) to
 * *held when held is not NULL. */
int aq_chunk_put_versioned_held(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                                size_t len, uint8_t kind, const aq_chunk_digest *expect,
                                uint64_t version, uint64_t *held);
/* A coordinator's write: stores with version max(*version, stored version + 1), atomically with
 * respect to every other writer of the key, and writes the version used to *version (which must
 * be non-zero). Never AQ_ESTALE. */
int aq_chunk_put_above(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                       size_t len, uint8_t kind, const aq_chunk_digest *expect, uint64_t *version);

/* aq_chunk_put_versioned_held and aq_chunk_put_above that adopt the value's buffer (see
 * aq_chunk_adopt) instead of copying it. adopt may be NULL: then they copy. flags:
 * AQ_CHUNK_NOWAIT returns AQ_EBUSY, having stored nothing (and released adopt), where the put
 * would wait for a lock another thread holds (another writer of the key's stripe, a scan of the
 * index) or for the disk (always, with a data_dir): for a caller that must not block, which then
 * retries where it may. */
#define AQ_CHUNK_NOWAIT 1u
int aq_chunk_put_versioned_adopt(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                                 size_t len, uint8_t kind, const aq_chunk_digest *expect,
                                 uint64_t version, uint64_t *held, const aq_chunk_adopt *adopt,
                                 unsigned flags);
int aq_chunk_put_above_adopt(aq_chunk_store *s, const void *key, size_t klen, const void *data,
                             size_t len, uint8_t kind, const aq_chunk_digest *expect,
                             uint64_t *version, const aq_chunk_adopt *adopt, unsigned flags);

/* AQ_ENOTFOUND if absent. On success the caller owns one reference. */
int aq_chunk_get(aq_chunk_store *s, const void *key, size_t klen, aq_chunk_ref **out);
/* Never NULL (also for a 0-byte value). */
const uint8_t *aq_chunk_ref_data(const aq_chunk_ref *r);
size_t aq_chunk_ref_len(const aq_chunk_ref *r);
aq_chunk_digest aq_chunk_ref_digest(const aq_chunk_ref *r);
uint8_t aq_chunk_ref_kind(const aq_chunk_ref *r);
uint64_t aq_chunk_ref_version(const aq_chunk_ref *r);
const uint8_t *aq_chunk_ref_key(const aq_chunk_ref *r, size_t *klen);
/* NULL is ignored. */
void aq_chunk_ref_release(aq_chunk_ref *r);

/* AQ_EKEY, AQ_ENOTFOUND, or a negated errno from unlink/fsync (then the chunk is still there). */
int aq_chunk_rm(aq_chunk_store *s, const void *key, size_t klen);
/* Removes the chunk only if its version is lower than version; AQ_ESTALE (nothing changed) when the
 * stored one is the same or newer. Atomic with respect to other writers of the key. */
int aq_chunk_rm_older(aq_chunk_store *s, const void *key, size_t klen, uint64_t version);
/* Removes the chunk only if it orders at or before the write (version, digest, kind) in
 * aq_chunk_write_cmp's order: that write or an older one, never a newer write that arrived since
 * the caller looked (also one of the same version with a greater digest). AQ_ESTALE (nothing
 * changed) when the stored one orders after it. Atomic with respect to other writers of the key. */
int aq_chunk_rm_upto(aq_chunk_store *s, const void *key, size_t klen, uint64_t version,
                     aq_chunk_digest digest, uint8_t kind);

/* Size and digest without taking a reference; either out pointer may be NULL. */
int aq_chunk_stat(aq_chunk_store *s, const void *key, size_t klen, uint64_t *size,
                  aq_chunk_digest *digest);

/* Called once per chunk whose key starts with the prefix; a non-zero return stops the walk. */
typedef int (*aq_chunk_iter_fn)(void *ud, const uint8_t *key, size_t klen, uint64_t size,
                                aq_chunk_digest digest, uint8_t kind);
/* Walks a snapshot taken at the call (it holds references, so the callback sees consistent chunks
 * and may itself call put/get/rm on the store), in ascending byte order of the keys. prefix may be
 * NULL when plen is 0 (all chunks). Returns 0 also when the callback stopped the walk, AQ_ENOMEM
 * if the snapshot could not be taken (then the callback was never called). */
int aq_chunk_iterate(aq_chunk_store *s, const void *prefix, size_t plen, aq_chunk_iter_fn fn,
                     void *ud);

int aq_chunk_store_stats(aq_chunk_store *s, aq_chunk_stats *out);

/* Scrub: re-verifies key's chunk, its bytes in memory against its digest and, with a data_dir, its
 * file (header checksum and value digest). A damaged chunk is dropped: removed from the index and
 * its file moved to quarantine/ (reported), so it is never served and another replica can put it
 * back. Returns 0 (whole), AQ_ENOTFOUND, AQ_ECORRUPT (it was damaged and is dropped; why says
 * where) or AQ_ENOMEM; *bytes (may be NULL) gets the bytes hashed. Writers of the key wait for it;
 * readers do not. */
int aq_chunk_scrub(aq_chunk_store *s, const void *key, size_t klen, uint64_t *bytes, char *why,
                   size_t whylen);

#endif
