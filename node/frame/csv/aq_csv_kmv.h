/* aq_csv_kmv: builds a column chunk's distinct-value sketch (the AQ_CSV_SKETCH smallest distinct
 * 64-bit hashes, see aq_csv_obs) at a few nanoseconds per value, and merges two sketches.
 *
 * Inserting into the sorted sketch directly costs a binary search per value and a memmove per
 * new hash. The builder instead keeps an unsorted buffer of distinct candidates below a threshold
 * and a small open-addressing set over them: a value at or above the threshold is rejected with
 * one comparison, a repeated value with one probe. When the buffer is full it is sorted and cut
 * to the AQ_CSV_SKETCH smallest, which lowers the threshold. The result is exactly the sorted set
 * of the AQ_CSV_SKETCH smallest distinct hashes, as inserting one by one would give.
 *
 * Internal to node/frame/csv; one builder serves one column at a time and is reset between columns.
 */
#ifndef AQ_CSV_KMV_H
#define AQ_CSV_KMV_H

#include "aq_csv_col.h"

#include <stdbool.h>
#include <stdint.h>

#define AQ_CSV_KMV_BUF (2 * AQ_CSV_SKETCH)
#define AQ_CSV_KMV_SET (4 * AQ_CSV_SKETCH) /* a power of two, at least twice the buffer */

typedef struct aq_csv_kmv {
    uint64_t thr; /* candidates are below it */
    uint32_t n;   /* entries in buf */
    bool zero;    /* hash 0 was seen (0 marks an empty slot of set) */
    uint64_t buf[AQ_CSV_KMV_BUF];
    uint64_t set[AQ_CSV_KMV_SET];
} aq_csv_kmv;

void aq_csv_kmv_reset(aq_csv_kmv *k);

void aq_csv_kmv_compact(aq_csv_kmv *k);

static inline void aq_csv_kmv_add(aq_csv_kmv *k, uint64_t h) {
    if (h >= k->thr)
        return;
    if (h == 0) {
        k->zero = true;
        return;
    }
    uint32_t i = (uint32_t)h & (AQ_CSV_KMV_SET - 1);
    while (k->set[i]) {
        if (k->set[i] == h)
            return;
        i = (i + 1) & (AQ_CSV_KMV_SET - 1);
    }
    k->set[i] = h;
    k->buf[k->n++] = h;
    if (k->n == AQ_CSV_KMV_BUF)
        aq_csv_kmv_compact(k);
}

/* Writes the sketch into o->sketch and o->nsketch. */
void aq_csv_kmv_finish(aq_csv_kmv *k, aq_csv_obs *o);

/* a->sketch becomes the AQ_CSV_SKETCH smallest of the union of a's and b's (both sorted, unique).
 */
void aq_csv_kmv_merge(aq_csv_obs *a, const aq_csv_obs *b);

#endif
