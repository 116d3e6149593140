/* aq_node_place: where a key lives, by rendezvous (highest random weight) hashing.
 *
 * score(node, key) = xxh3-64 of the key seeded with xxh3-64 of the node's name; the nodes sorted by
 * score, highest first, are the key's preference order and the first `replicas` of them hold it.
 * The order depends only on the configured names and the key, never on who is up, so every node and
 * every client computes the same answer and it is stable across restarts. Removing a node moves
 * only its keys.
 *
 * Co-location: an internal key (first byte 0x1f) that contains a 0x1e byte is placed by its bytes
 * before the first 0x1e only. A frame's raw piece i and all its column chunks i share that prefix,
 * so they live on the same nodes and work on a row range stays local. User keys cannot contain
 * control bytes, so for them the whole key counts.
 */
#ifndef AQ_NODE_PLACE_H
#define AQ_NODE_PLACE_H

#include <stddef.h>
#include <stdint.h>

/* The seed of a node name (compute once per configured node). */
uint64_t aq_place_seed(const char *name);

/* Fills order[0..n) with the indexes 0..n-1 of `seeds`, sorted by descending score for key. Ties
 * (only possible with equal seeds, i.e. equal names, which the config refuses) fall back to index
 * order. */
void aq_place_order(const uint64_t *seeds, size_t n, const void *key, size_t klen, uint32_t *order);

/* How many leading bytes of key decide its placement (see Co-location above). */
size_t aq_place_key_len(const void *key, size_t klen);

#define AQ_PLACE_SEP 0x1e

#endif
