/* aq_rpc_map: u64 key -> pointer, open addressing with linear probing and backward-shift deletion
 * (internal to rpc/). Key 0 is reserved as "empty" (task numbers and connection ids start at 1).
 */
#ifndef AQ_RPC_MAP_H
#define AQ_RPC_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct aq_rpc_map_slot {
    uint64_t key;
    void *val;
} aq_rpc_map_slot;

typedef struct aq_rpc_map {
    aq_rpc_map_slot *s;
    size_t n, cap; /* cap is 0 or a power of two */
    size_t hint;   /* where aq_rpc_map_any last found a value: draining stays linear */
} aq_rpc_map;

void aq_rpc_map_free(aq_rpc_map *m);
void *aq_rpc_map_get(const aq_rpc_map *m, uint64_t key);
/* Insert or replace. 0, AQ_EINVAL (key 0) or AQ_ENOMEM. */
int aq_rpc_map_put(aq_rpc_map *m, uint64_t key, void *val);
void *aq_rpc_map_del(aq_rpc_map *m, uint64_t key);
/* Grow so that `more` further puts cannot fail. 0 or AQ_ENOMEM. */
int aq_rpc_map_reserve(aq_rpc_map *m, size_t more);
/* Any one value (for draining a map), or NULL when empty. Draining a map by any+del costs O(cap)
 * in all, not O(n * cap): the scan resumes where the last one found a value. */
void *aq_rpc_map_any(aq_rpc_map *m);

#endif
