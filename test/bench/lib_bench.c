/* lib_bench: puts then gets of SIZE-byte values through libaquifer's batch interface with C in
 * flight, against the cluster AQUIFER_CONF names. Prints one line:
 *   lib_bench: n=N size=S inflight=C put_per_s=X get_per_s=Y cpu_s=T
 * cpu_s: the process's user + system CPU seconds for the whole run (the client's own cost, the
 * bench's filling and checking of values included). Every get is checked against what was put (a
 * wrong byte fails the run). */
#include <aquifer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(uint8_t *v, size_t n, unsigned i) {
    for (size_t j = 0; j < n; j++)
        v[j] = (uint8_t)(i * 131 + j * 7);
}

/* Takes every result until at most keep operations are pending; counts failures. */
static int drain(aquifer_batch *b, size_t keep, size_t size, unsigned *bad) {
    aquifer_result r;
    while (aquifer_batch_pending(b) > keep && aquifer_batch_next(b, &r) == 1) {
        if (r.err) {
            fprintf(stderr, "lib_bench: %s\n", r.errmsg);
            (*bad)++;
        } else if (r.op == AQUIFER_OP_GET) {
            uint8_t want[size ? size : 1];
            fill(want, size, (unsigned)(uintptr_t)r.ud);
            if (r.len != size || memcmp(r.data, want, size) != 0) {
                fprintf(stderr, "lib_bench: %s came back different\n", r.key);
                (*bad)++;
            }
            aquifer_free(r.data);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    unsigned n = 20000, conc = 50;
    size_t size = 4096;
    int o;
    while ((o = getopt(argc, argv, "n:c:s:")) != -1) {
        if (o == 'n')
            n = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 'c')
            conc = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 's')
            size = strtoul(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: lib_bench [-n values] [-c in flight] [-s bytes]\n");
            return 2;
        }
    }
    if (n == 0 || conc == 0 || size > (64u << 20)) {
        fprintf(stderr, "lib_bench: -n and -c take a positive number, -s at most 64 MiB\n");
        return 2;
    }
    aquifer *a;
    if (aquifer_open(NULL, &a) != 0) {
        fprintf(stderr, "lib_bench: %s\n", aquifer_errmsg(a));
        return 1;
    }
    aquifer_batch *b;
    if (aquifer_batch_new(a, conc, &b) != 0) {
        fprintf(stderr, "lib_bench: %s\n", aquifer_errmsg(a));
        return 1;
    }
    uint8_t *v = malloc(size ? size : 1);
    unsigned bad = 0;
    char key[64];
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        fill(v, size, i);
        snprintf(key, sizeof key, "bench/%u", i);
        if (aquifer_batch_put(b, key, v, size, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "lib_bench: %s\n", aquifer_errmsg(a));
            return 1;
        }
        drain(b, 2 * (size_t)conc, size, &bad);
    }
    drain(b, 0, size, &bad);
    double t1 = now_s();
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof key, "bench/%u", i);
        if (aquifer_batch_get(b, key, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "lib_bench: %s\n", aquifer_errmsg(a));
            return 1;
        }
        drain(b, 2 * (size_t)conc, size, &bad);
    }
    drain(b, 0, size, &bad);
    double t2 = now_s();
    aquifer_batch_free(b);
    aquifer_close(a);
    free(v);
    if (bad) {
        fprintf(stderr, "lib_bench: %u operations failed\n", bad);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("lib_bench: n=%u size=%zu inflight=%u put_per_s=%.0f get_per_s=%.0f cpu_s=%.3f\n", n,
           size, conc, n / (t1 - t0), n / (t2 - t1), cpu);
    return 0;
}
