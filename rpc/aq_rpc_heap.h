/* aq_rpc_heap: a min-heap of deadlines so the core never scans all calls to find the next timer
 * (internal to rpc/). Nodes are embedded in the objects they time; a node knows its slot so it can
 * be moved or removed in O(log n). Space is reserved when a timed object is created, so arming a
 * timer never allocates and never fails.
 */
#ifndef AQ_RPC_HEAP_H
#define AQ_RPC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define AQ_RPC_HEAP_NONE SIZE_MAX

typedef struct aq_rpc_tnode {
    uint64_t at;
    size_t idx; /* AQ_RPC_HEAP_NONE when not in the heap */
    int kind;
} aq_rpc_tnode;

typedef struct aq_rpc_heap {
    aq_rpc_tnode **v;
    size_t n, cap;
} aq_rpc_heap;

void aq_rpc_heap_free(aq_rpc_heap *h);
/* Make room for `more` nodes beyond those present. 0 or AQ_ENOMEM. */
int aq_rpc_heap_reserve(aq_rpc_heap *h, size_t more);
/* Insert or move node to `at`. Needs reserved space when inserting. */
void aq_rpc_heap_set(aq_rpc_heap *h, aq_rpc_tnode *node, uint64_t at);
void aq_rpc_heap_remove(aq_rpc_heap *h, aq_rpc_tnode *node);
aq_rpc_tnode *aq_rpc_heap_top(const aq_rpc_heap *h);

#endif
