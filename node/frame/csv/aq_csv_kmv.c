#include "aq_csv_kmv.h"

#include <stdlib.h>
#include <string.h>
/* inlined: long values are hashed at every field of a text column */
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t aq_csv_hash_long(const char *p, size_t len) {
    return XXH3_64bits(p, len);
}

#define SORT_BUCKET_BITS 10

/* Sorts a[0..n) ascending (n <= AQ_CSV_KMV_BUF). Hashes are uniform, so their top bits alone
 * order them nearly completely: one counting pass places each value by the SORT_BUCKET_BITS
 * bits below the highest bit of (max - min), then an insertion sort settles each bucket's few
 * values. On any other input the result is the same, only slower. */
static void sort_u64(uint64_t *a, uint32_t n, uint64_t *tmp) {
    if (n < 2)
        return;
    uint64_t lo = a[0], hi = a[0];
    for (uint32_t i = 1; i < n; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    if (lo == hi)
        return;
    int width = 64 - __builtin_clzll(hi - lo);
    int sh = width > SORT_BUCKET_BITS ? width - SORT_BUCKET_BITS : 0;
    uint32_t cnt[(1u << SORT_BUCKET_BITS) + 1];
    memset(cnt, 0, sizeof cnt);
    for (uint32_t i = 0; i < n; i++)
        cnt[((a[i] - lo) >> sh) + 1]++;
    for (uint32_t v = 1; v <= (1u << SORT_BUCKET_BITS); v++)
        cnt[v] += cnt[v - 1];
    for (uint32_t i = 0; i < n; i++)
        tmp[cnt[(a[i] - lo) >> sh]++] = a[i];
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = tmp[i];
        uint32_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

/* Moves the k smallest of a[0..n) (distinct values) to a[0..k), in no order; k < n. */
static void select_u64(uint64_t *a, uint32_t n, uint32_t k) {
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t x = a[lo], y = a[mid], z = a[hi];
        uint64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                uint64_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

void aq_csv_kmv_init(aq_csv_kmv *k) {
    memset(k->set, 0, sizeof k->set);
    k->n = 0;
    aq_csv_kmv_reset(k);
}

void aq_csv_kmv_reset(aq_csv_kmv *k) {
    if (k->n > AQ_CSV_KMV_SET / 8) {
        memset(k->set, 0, sizeof k->set);
    } else {
        /* every entry sits in the run of full slots that starts at its home slot: clearing each
         * entry's home onward to the first empty slot clears it, in any order of the entries */
        for (uint32_t j = 0; j < k->n; j++)
            for (uint32_t i = (uint32_t)k->buf[j] & (AQ_CSV_KMV_SET - 1); k->set[i];
                 i = (i + 1) & (AQ_CSV_KMV_SET - 1))
                k->set[i] = 0;
    }
    k->thr = UINT64_MAX;
    k->n = 0;
    k->zero = false;
}

/* Every hash at or above the AQ_CSV_SKETCH-th smallest candidate can never make the sketch: keep
 * the smallest, make that one the threshold and rebuild the set. */
void aq_csv_kmv_compact(aq_csv_kmv *k) {
    select_u64(k->buf, k->n, AQ_CSV_SKETCH);
    k->n = AQ_CSV_SKETCH;
    uint64_t max = 0;
    for (uint32_t j = 0; j < k->n; j++)
        max = k->buf[j] > max ? k->buf[j] : max;
    k->thr = max;
    memset(k->set, 0, sizeof k->set);
    for (uint32_t j = 0; j < k->n; j++) {
        uint32_t i = (uint32_t)k->buf[j] & (AQ_CSV_KMV_SET - 1);
        while (k->set[i])
            i = (i + 1) & (AQ_CSV_KMV_SET - 1);
        k->set[i] = k->buf[j];
    }
}

void aq_csv_kmv_finish(aq_csv_kmv *k, aq_csv_obs *o) {
    uint32_t m = k->n;
    memcpy(k->tmp, k->buf, m * sizeof k->tmp[0]);
    if (m > AQ_CSV_SKETCH) { /* only the smallest can be kept: sort those alone */
        select_u64(k->tmp, m, AQ_CSV_SKETCH);
        m = AQ_CSV_SKETCH;
    }
    sort_u64(k->tmp, m, k->tmp + AQ_CSV_SKETCH);
    uint32_t n = 0;
    if (k->zero)
        o->sketch[n++] = 0;
    for (uint32_t j = 0; j < m && n < AQ_CSV_SKETCH; j++)
        o->sketch[n++] = k->tmp[j];
    o->nsketch = n;
}

void aq_csv_kmv_merge(aq_csv_obs *a, const aq_csv_obs *b) {
    uint64_t out[AQ_CSV_SKETCH];
    uint32_t i = 0, j = 0, n = 0;
    while (n < AQ_CSV_SKETCH && (i < a->nsketch || j < b->nsketch)) {
        uint64_t x;
        if (j == b->nsketch || (i < a->nsketch && a->sketch[i] < b->sketch[j]))
            x = a->sketch[i++];
        else if (i == a->nsketch || b->sketch[j] < a->sketch[i])
            x = b->sketch[j++];
        else {
            x = a->sketch[i++];
            j++;
        }
        out[n++] = x;
    }
    memcpy(a->sketch, out, n * sizeof out[0]);
    a->nsketch = n;
}
