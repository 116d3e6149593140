/* aq_rpc_iset: the compact memory of completed task numbers (internal to rpc/).
 *
 * Every task <= low is completed; above it, a sorted set of disjoint, non-adjacent closed ranges
 * [lo, hi] with lo > low + 1. Adding the task that closes the gap above low moves low up. The set
 * holds at most max_ranges ranges: when one more would be needed, the lowest gap is declared
 * completed (low jumps to the end of the first range). That errs on the safe side: a task from the
 * forgotten gap that arrives later is refused as a duplicate, never run twice.
 */
#ifndef AQ_RPC_ISET_H
#define AQ_RPC_ISET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct aq_rpc_range {
    uint64_t lo, hi;
} aq_rpc_range;

typedef struct aq_rpc_iset {
    uint64_t low;
    aq_rpc_range *r;
    size_t n, cap, max_ranges;
    uint64_t forced; /* how many times the bound forced low up */
} aq_rpc_iset;

void aq_rpc_iset_init(aq_rpc_iset *s, size_t max_ranges);
void aq_rpc_iset_free(aq_rpc_iset *s);
/* 0, or AQ_ENOMEM (then the set is unchanged). */
int aq_rpc_iset_add(aq_rpc_iset *s, uint64_t task);
bool aq_rpc_iset_contains(const aq_rpc_iset *s, uint64_t task);

#endif
