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
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A bijective 64-bit finalizer (MurmurHash3's fmix64): every output bit depends on every input
 * bit, so structured inputs (consecutive ids, codes differing in one byte) give hashes as uniform
 * as the sketch's estimate assumes. */
static inline uint64_t aq_csv_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* XXH3 of a value of more than 16 bytes (out of line: the short cases stay small to inline). */
uint64_t aq_csv_hash_long(const char *p, size_t len);

/* The hash of a value's text, which the sketch and the table of levels share (each field is
 * hashed once). Most values are short codes and numbers: up to 8 bytes they are read in two
 * overlapping loads into one word that, for a given length, determines the bytes, and the word
 * goes through a bijective mix, so for len <= 8 equal hashes and equal lengths mean equal bytes
 * (the table of levels compares no bytes for them). 9 to 16 bytes: two words mixed; longer: XXH3.
 */
static inline __attribute__((always_inline)) uint64_t aq_csv_hash(const char *p, size_t len) {
    uint64_t v;
    if (len >= 4 && len <= 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        v = (uint64_t)a | (uint64_t)b << 32;
    } else if (len > 8) {
        if (len > 16)
            return aq_csv_hash_long(p, len);
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
        v = a * 0x9e3779b97f4a7c15ull ^ aq_csv_mix64(b);
    } else if (len) {
        v = (uint64_t)(uint8_t)p[0] | (uint64_t)(uint8_t)p[len >> 1] << 8 |
            (uint64_t)(uint8_t)p[len - 1] << 16;
    } else {
        v = 0;
    }
    return aq_csv_mix64(v ^ (uint64_t)len * 0xd6e8feb86659fd93ull);
}

#define AQ_CSV_KMV_BUF (2 * AQ_CSV_SKETCH)
#define AQ_CSV_KMV_SET (4 * AQ_CSV_SKETCH) /* a power of two, at least twice the buffer */

typedef struct aq_csv_kmv {
    uint64_t thr; /* candidates are below it */
    uint32_t n;   /* entries in buf */
    bool zero;    /* hash 0 was seen (0 marks an empty slot of set) */
    uint64_t buf[AQ_CSV_KMV_BUF];
    uint64_t set[AQ_CSV_KMV_SET]; /* holds exactly buf[0..n) */
    uint64_t tmp[AQ_CSV_KMV_BUF]; /* aq_csv_kmv_finish's scratch, so buf and set stay intact */
} aq_csv_kmv;

/* A fresh builder (its set cleared once). */
void aq_csv_kmv_init(aq_csv_kmv *k);
/* Empties an initialized builder (or one of all zero bytes) for the next column. The set is
 * emptied by clearing the clusters its entries sit in rather than all of it: most columns hold
 * few distinct values, and clearing 32 KiB per column was a visible share of wide files' parse. */
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

/* Writes the sketch into o->sketch and o->nsketch; the builder is left as it was (reset it). */
void aq_csv_kmv_finish(aq_csv_kmv *k, aq_csv_obs *o);

/* a->sketch becomes the AQ_CSV_SKETCH smallest of the union of a's and b's (both sorted, unique).
 */
void aq_csv_kmv_merge(aq_csv_obs *a, const aq_csv_obs *b);

#endif
