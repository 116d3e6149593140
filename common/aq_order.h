/* aq_order: the one order of two writes of a key, which every copy of the rule must agree on: the
 * store applies it to every versioned write (aq_chunk_write_cmp), repair and the command use it to
 * pick the newest of several copies (aq_node_copy_cmp), so replicas that see the same writes in any
 * order keep the same one and the command picks the copy they keep.
 *
 * Writes order by version, then (equal versions from two writers) by digest (hi, then lo, as
 * unsigned integers), then by kind; the greater wins, removal markers included.
 */
#ifndef AQ_ORDER_H
#define AQ_ORDER_H

#include <stdint.h>

/* Negative when write a orders before write b, 0 when they are the same write, positive when a
 * wins. A digest is passed as its two halves, so the store and the wire need no common type. */
static inline int aq_order_write_cmp(uint64_t va, uint64_t da_hi, uint64_t da_lo, uint8_t ka,
                                     uint64_t vb, uint64_t db_hi, uint64_t db_lo, uint8_t kb) {
    if (va != vb)
        return va < vb ? -1 : 1;
    if (da_hi != db_hi)
        return da_hi < db_hi ? -1 : 1;
    if (da_lo != db_lo)
        return da_lo < db_lo ? -1 : 1;
    return ka < kb ? -1 : ka > kb;
}

#endif
