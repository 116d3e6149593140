/* aq_csv_bits: 64-byte masks of one byte value, for the cutter and the row indexer, which find
 * row and field ends in masks instead of byte loops.
 *
 * SSE2 is part of x86-64; elsewhere a plain loop builds the same mask. Internal to node/frame/csv.
 */
#ifndef AQ_CSV_BITS_H
#define AQ_CSV_BITS_H

#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Bit i set where p[i] == a or p[i] == b (one load per 16 bytes for both); p[0..64) must be
 * readable. */
static inline uint64_t aq_csv_eq64_2(const char *p, char a, char b) {
    uint64_t m = 0;
#ifdef __SSE2__
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        m |= (uint64_t)(uint16_t)_mm_movemask_epi8(
                 _mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)))
             << (16 * k);
    }
#else
    for (int k = 0; k < 64; k++)
        m |= (uint64_t)(p[k] == a || p[k] == b) << k;
#endif
    return m;
}

/* Bit i set where p[i] == c; p[0..64) must be readable. */
static inline uint64_t aq_csv_eq64(const char *p, char c) {
    return aq_csv_eq64_2(p, c, c);
}

/* Set bits of x. Baseline x86-64 has no POPCNT, and __builtin_popcountll became a libgcc call. */
static inline unsigned aq_csv_pop64(uint64_t x) {
#ifdef __POPCNT__
    return (unsigned)__builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

#endif
