/* aq_batch_load: many small puts in flight through libaquifer's batch, for the write path's load
 * tests. Every fourth put overwrites one key (PREFIX/hot); the others go to distinct keys. Each
 * result is accounted for: a success, or a failure whose sentence is printed as "FAILED key: msg"
 * on stdout (the test checks that it names a node). Unless -V, every acknowledged distinct key is
 * then read back and must equal what was put, and the hot key must hold one of the values put to
 * it. Prints "acked=A failed=F" last; exits 1 when a read-back differs or is missing. */
#include <aquifer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE 4096

static void fill(uint8_t *v, unsigned i) {
    for (size_t j = 0; j < SIZE; j++)
        v[j] = (uint8_t)(i * 131 + j * 7 + (j >> 8));
    memcpy(v, &i, sizeof i); /* the index, so that values of the hot key all differ */
}

static bool is_hot(unsigned i) {
    return i % 4 == 3;
}

/* Takes results until at most keep are pending. */
static void take(aquifer_batch *b, size_t keep, uint8_t *acked, unsigned *nack, unsigned *nfail) {
    aquifer_result r;
    while (aquifer_batch_pending(b) > keep && aquifer_batch_next(b, &r) == 1) {
        unsigned i = (unsigned)(uintptr_t)r.ud;
        if (r.err) {
            printf("FAILED %s: %s\n", r.key, r.errmsg);
            (*nfail)++;
        } else {
            acked[i] = 1;
            (*nack)++;
        }
    }
}

int main(int argc, char **argv) {
    unsigned n = 10000, conc = 50;
    const char *prefix = "wq";
    bool verify = true;
    int o;
    while ((o = getopt(argc, argv, "n:c:p:V")) != -1) {
        if (o == 'n')
            n = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 'c')
            conc = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 'p')
            prefix = optarg;
        else if (o == 'V')
            verify = false;
        else {
            fprintf(stderr, "usage: aq_batch_load [-n puts] [-c in flight] [-p prefix] [-V]\n");
            return 2;
        }
    }
    if (n == 0 || conc == 0 || strlen(prefix) > 200) {
        fprintf(stderr, "aq_batch_load: -n and -c take a positive number, -p at most 200 bytes\n");
        return 2;
    }
    aquifer *a;
    if (aquifer_open(NULL, &a) != 0) {
        fprintf(stderr, "aq_batch_load: %s\n", aquifer_errmsg(a));
        return 1;
    }
    aquifer_batch *b;
    uint8_t *acked = calloc(n, 1);
    if (!acked || aquifer_batch_new(a, conc, &b) != 0) {
        fprintf(stderr, "aq_batch_load: cannot start a batch: %s\n", aquifer_errmsg(a));
        return 1;
    }
    uint8_t v[SIZE];
    char key[256];
    unsigned nack = 0, nfail = 0;
    for (unsigned i = 0; i < n; i++) {
        fill(v, i);
        if (is_hot(i))
            snprintf(key, sizeof key, "%s/hot", prefix);
        else
            snprintf(key, sizeof key, "%s/%u", prefix, i);
        if (aquifer_batch_put(b, key, v, SIZE, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "aq_batch_load: %s\n", aquifer_errmsg(a));
            return 1;
        }
        take(b, 2 * (size_t)conc, acked, &nack, &nfail);
    }
    take(b, 0, acked, &nack, &nfail);
    aquifer_batch_free(b);
    int rc = 0;
    if (nack + nfail != n) {
        fprintf(stderr, "aq_batch_load: %u results for %u puts\n", nack + nfail, n);
        rc = 1;
    }
    for (unsigned i = 0; verify && i < n; i++) {
        if (!acked[i] || is_hot(i))
            continue;
        snprintf(key, sizeof key, "%s/%u", prefix, i);
        void *got;
        size_t len;
        fill(v, i);
        if (aquifer_get(a, key, &got, &len) != 0) {
            fprintf(stderr, "aq_batch_load: acknowledged %s cannot be read: %s\n", key,
                    aquifer_errmsg(a));
            rc = 1;
            continue;
        }
        if (len != SIZE || memcmp(got, v, SIZE) != 0) {
            fprintf(stderr, "aq_batch_load: %s came back different\n", key);
            rc = 1;
        }
        aquifer_free(got);
    }
    bool any_hot = false;
    for (unsigned i = 3; i < n; i += 4)
        any_hot |= acked[i];
    if (verify && any_hot) {
        snprintf(key, sizeof key, "%s/hot", prefix);
        void *got;
        size_t len;
        if (aquifer_get(a, key, &got, &len) != 0) {
            fprintf(stderr, "aq_batch_load: %s cannot be read: %s\n", key, aquifer_errmsg(a));
            rc = 1;
        } else {
            unsigned i;
            memcpy(&i, got, sizeof i);
            if (len == SIZE && i < n && is_hot(i))
                fill(v, i);
            if (len != SIZE || i >= n || !is_hot(i) || memcmp(got, v, SIZE) != 0) {
                fprintf(stderr, "aq_batch_load: %s holds none of the values put to it\n", key);
                rc = 1;
            }
            aquifer_free(got);
        }
    }
    free(acked);
    aquifer_close(a);
    printf("acked=%u failed=%u\n", nack, nfail);
    return rc;
}
