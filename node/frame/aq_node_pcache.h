/* aq_node_pcache: pieces parsed by FRAME_PARSE, kept for FRAME_FINISH so each piece is parsed
 * once.
 *
 * An entry is found by what makes its columns what they are: the piece's key, the digest of the
 * piece's bytes and a hash of the parse setup. A later parse of other bytes or with other options
 * under the same name therefore never meets an old entry, and a stale entry can only be a correct
 * one. The cache is an optimisation, never a source of truth: FINISH re-parses the stored piece
 * whenever its entry is missing (over budget, expired, node restarted). Entries leave when taken,
 * when older than the age limit (a parse whose command died), or oldest first to make room.
 * Bytes held never pass the budget. Thread-safe: the threadpool's parse jobs share it.
 */
#ifndef AQ_NODE_PCACHE_H
#define AQ_NODE_PCACHE_H

#include "aq_chunk.h"
#include "aq_csv_col.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct aq_node_pcache aq_node_pcache;

/* 0 or AQ_ENOMEM. max_bytes 0 keeps nothing. */
int aq_node_pcache_new(size_t max_bytes, uint64_t max_age_us, aq_node_pcache **out);
void aq_node_pcache_free(aq_node_pcache *pc);

/* Memory the columns of one piece hold (what the budget counts). */
size_t aq_node_pcache_cols_bytes(const aq_csv_col *cols, uint32_t ncols);

/* Keeps cols (ncols of them) under the identity; the cache owns them on 0. AQ_ETOOBIG when they
 * do not fit the budget even after dropping older entries (the caller keeps and frees them).
 * now_us: a monotonic clock. A duplicate identity replaces the older entry. */
int aq_node_pcache_put(aq_node_pcache *pc, const uint8_t *key, size_t klen, aq_chunk_digest piece,
                       uint64_t setup_hash, aq_csv_col *cols, uint32_t ncols, uint64_t now_us);
/* Removes the entry of that identity and hands its columns over (caller frees with
 * aq_csv_cols_free); NULL when there is none or its column count differs. */
aq_csv_col *aq_node_pcache_take(aq_node_pcache *pc, const uint8_t *key, size_t klen,
                                aq_chunk_digest piece, uint64_t setup_hash, uint32_t ncols);

/* A column whose chunk PARSE stored already (a string chunk is final as parsed): the digest of
 * the chunk's encoding, which FINISH checks against the store before leaving the column alone.
 * Its place in the entry's columns holds an empty column. */
typedef struct aq_node_pcache_done {
    bool stored;
    aq_chunk_digest digest;
} aq_node_pcache_done;

/* aq_node_pcache_put and _take with the columns already stored: done (ncols of them, or NULL
 * when none is) is copied into the entry; take fills done[0..ncols) (stored false for every
 * column when the entry had none) when it answers columns. */
int aq_node_pcache_put_done(aq_node_pcache *pc, const uint8_t *key, size_t klen,
                            aq_chunk_digest piece, uint64_t setup_hash, aq_csv_col *cols,
                            const aq_node_pcache_done *done, uint32_t ncols, uint64_t now_us);
aq_csv_col *aq_node_pcache_take_done(aq_node_pcache *pc, const uint8_t *key, size_t klen,
                                     aq_chunk_digest piece, uint64_t setup_hash, uint32_t ncols,
                                     aq_node_pcache_done *done);

/* String columns found by one parse on this node, shared by its PARSE jobs: a column that one
 * piece showed to be string (observations only widen) is built as string at once in the pieces
 * parsed after it, by any job. A note is found by the command's random 64-bit parse id and the
 * setup hash, so another parse never meets it; notes leave with age like entries, and at most
 * AQ_NODE_PCACHE_NOTES are kept (the oldest goes). Losing one only costs speed.
 * known: ORs the note's string columns into str[0..ncols) (nothing when there is no note or its
 * column count differs). learn: adds str's string columns to the note (creating it). */
#define AQ_NODE_PCACHE_NOTES 64
void aq_node_pcache_str_known(aq_node_pcache *pc, uint64_t parse_id, uint64_t setup_hash, bool *str,
                              uint32_t ncols);
void aq_node_pcache_str_learn(aq_node_pcache *pc, uint64_t parse_id, uint64_t setup_hash,
                              const bool *str, uint32_t ncols, uint64_t now_us);

typedef struct aq_node_pcache_stats {
    size_t entries, bytes;
    uint64_t hits, misses, dropped;
} aq_node_pcache_stats;
void aq_node_pcache_stats_get(aq_node_pcache *pc, aq_node_pcache_stats *out);

#endif
