/* chunk_bench: throughput of the memory-only chunk store with 4 MiB chunks, beside memcpy and
 * XXH3_128bits of the same bytes measured in the same run.
 *
 *   put       aq_chunk_put: copy into the store's arena + xxh3-128 + index (keys overwritten from
 *             the second run on, so jemalloc reuses pages; the first run also pays page faults)
 *   get+sum   aq_chunk_get, read every byte (64-bit word sum), release: the cheapest honest read
 *   get+xxh3  aq_chunk_get, XXH3_128bits over the bytes, release: what a verifying reader pays
 *   memcpy    the same bytes into pre-touched buffers (the put's copy without hashing or the store)
 *   xxh3-128  XXH3_128bits over the same bytes (the put's hashing alone, through aq_xxh.h as the
 *             store hashes)
 * GB/s are 10^9 bytes per second; each figure is the median of the runs.
 */
#include "aq_chunk.h"
#include "aq_xxh.h"
#include "aq_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK   AQ_CHUNK_VALUE_MAX
#define SOURCES 16 /* 64 MiB of distinct sources: larger than any last-level cache here */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t sum_words(const uint8_t *p, size_t n) {
    uint64_t s = 0, w;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        s += w;
    }
    return s;
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

static int key_of(int i, char *k) {
    return snprintf(k, 32, "bench/%06d", i);
}

int main(int argc, char **argv) {
    int nchunks = 256, runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            nchunks = 8;
            runs = 2;
        } else if (strcmp(argv[i], "--chunks") == 0 && i + 1 < argc) {
            nchunks = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: chunk_bench [--quick] [--chunks N] [--runs R]\n");
            return 2;
        }
    }
    if (nchunks < 1 || nchunks > 4096 || runs < 1 || runs > 100) {
        fprintf(stderr, "chunk_bench: --chunks 1..4096, --runs 1..100\n");
        return 2;
    }
    uint8_t *src[SOURCES];
    aq_chunk_digest sd[SOURCES];
    for (int i = 0; i < SOURCES; i++) {
        src[i] = malloc(CHUNK);
        if (!src[i])
            return 1;
        fill(src[i], CHUNK, (uint64_t)i + 1);
        sd[i] = aq_chunk_digest_of(src[i], CHUNK);
    }
    uint8_t **dst = calloc((size_t)nchunks, sizeof *dst);
    for (int i = 0; i < nchunks; i++) {
        dst[i] = malloc(CHUNK);
        if (!dst[i]) {
            fprintf(stderr, "chunk_bench: out of memory\n");
            return 1;
        }
        memset(dst[i], 1, CHUNK);
    }
    aq_chunk_opts o = {0};
    aq_chunk_store *s;
    int err = aq_chunk_store_open(&o, &s);
    if (err) {
        fprintf(stderr, "chunk_bench: open: %s\n", aq_strerror(err));
        return 1;
    }

    double *t_cpy = calloc((size_t)runs, sizeof(double));
    double *t_xxh = calloc((size_t)runs, sizeof(double));
    double *t_put = calloc((size_t)runs, sizeof(double));
    double *t_gsum = calloc((size_t)runs, sizeof(double));
    double *t_gxxh = calloc((size_t)runs, sizeof(double));
    double bytes = (double)nchunks * CHUNK;
    volatile uint64_t sink = 0;
    char k[32];
    int bad = 0;
    double first_put = 0;

    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        for (int i = 0; i < nchunks; i++)
            memcpy(dst[i], src[i % SOURCES], CHUNK);
        t_cpy[r] = bytes / (now_s() - t0);
        sink += dst[nchunks - 1][7];

        t0 = now_s();
        for (int i = 0; i < nchunks; i++) {
            XXH128_hash_t h = XXH3_128bits(src[i % SOURCES], CHUNK);
            sink += h.low64;
        }
        t_xxh[r] = bytes / (now_s() - t0);

        t0 = now_s();
        for (int i = 0; i < nchunks; i++) {
            aq_chunk_digest d;
            err = aq_chunk_put(s, k, (size_t)key_of(i, k), src[i % SOURCES], CHUNK, &d);
            if (err) {
                fprintf(stderr, "chunk_bench: put: %s\n", aq_strerror(err));
                return 1;
            }
            bad += !aq_chunk_digest_equal(d, sd[i % SOURCES]);
        }
        t_put[r] = bytes / (now_s() - t0);
        if (r == 0)
            first_put = t_put[r];

        t0 = now_s();
        for (int i = 0; i < nchunks; i++) {
            aq_chunk_ref *ref;
            if (aq_chunk_get(s, k, (size_t)key_of(i, k), &ref) != 0)
                return 1;
            sink += sum_words(aq_chunk_ref_data(ref), aq_chunk_ref_len(ref));
            aq_chunk_ref_release(ref);
        }
        t_gsum[r] = bytes / (now_s() - t0);

        t0 = now_s();
        for (int i = 0; i < nchunks; i++) {
            aq_chunk_ref *ref;
            if (aq_chunk_get(s, k, (size_t)key_of(i, k), &ref) != 0)
                return 1;
            aq_chunk_digest d = aq_chunk_digest_of(aq_chunk_ref_data(ref), aq_chunk_ref_len(ref));
            bad += !aq_chunk_digest_equal(d, aq_chunk_ref_digest(ref));
            aq_chunk_ref_release(ref);
        }
        t_gxxh[r] = bytes / (now_s() - t0);
    }
    aq_chunk_stats st;
    aq_chunk_store_stats(s, &st);
    aq_chunk_store_close(s);

    double cpy = median(t_cpy, runs) / 1e9, xxh = median(t_xxh, runs) / 1e9;
    double put = median(t_put, runs) / 1e9, gsum = median(t_gsum, runs) / 1e9;
    double gxxh = median(t_gxxh, runs) / 1e9;
    printf("chunk_bench: %d x 4MiB chunks (%.2f GiB), %d runs, medians, memory-only store\n",
           nchunks, bytes / (1 << 30), runs);
    printf("chunk_bench: memcpy         %6.2f GB/s\n", cpy);
    printf("chunk_bench: xxh3-128       %6.2f GB/s\n", xxh);
    printf("chunk_bench: put 4MiB       %6.2f GB/s (%.2fx memcpy, %.2fx xxh3; copy+hash bound "
           "%.2f GB/s)\n",
           put, put / cpy, put / xxh, 1 / (1 / cpy + 1 / xxh));
    printf("chunk_bench: put 4MiB run 1 %6.2f GB/s (fresh pages: includes page faults)\n",
           first_put / 1e9);
    printf("chunk_bench: get+sum 4MiB   %6.2f GB/s (%.2fx memcpy) get by reference, then read "
           "every byte\n",
           gsum, gsum / cpy);
    printf("chunk_bench: get+xxh3 4MiB  %6.2f GB/s (%.2fx xxh3) get by reference, then verify "
           "the digest\n",
           gxxh, gxxh / xxh);
    printf("chunk_bench: store held %llu chunks, %llu bytes, %llu allocated in its arena\n",
           (unsigned long long)st.chunks, (unsigned long long)st.bytes,
           (unsigned long long)st.allocated);
    for (int i = 0; i < SOURCES; i++)
        free(src[i]);
    for (int i = 0; i < nchunks; i++)
        free(dst[i]);
    free(dst);
    free(t_cpy);
    free(t_xxh);
    free(t_put);
    free(t_gsum);
    free(t_gxxh);
    if (bad || st.chunks != (uint64_t)nchunks) {
        fprintf(stderr, "chunk_bench: %d digest mismatches, %llu chunks stored\n", bad,
                (unsigned long long)st.chunks);
        return 1;
    }
    (void)sink;
    return 0;
}
