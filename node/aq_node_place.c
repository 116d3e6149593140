#include "aq_node_place.h"

#include <string.h>
#include "aq_xxh.h"

uint64_t aq_place_seed(const char *name) {
    return XXH3_64bits(name, strlen(name));
}

size_t aq_place_key_len(const void *key, size_t klen) {
    const uint8_t *k = key;
    if (klen == 0 || k[0] != 0x1f)
        return klen;
    const uint8_t *sep = memchr(k, AQ_PLACE_SEP, klen);
    return sep ? (size_t)(sep - k) : klen;
}

void aq_place_order(const uint64_t *seeds, size_t n, const void *key, size_t klen,
                    uint32_t *order) {
    klen = aq_place_key_len(key, klen);
    uint64_t score[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        score[i] = XXH3_64bits_withSeed(key, klen, seeds[i]);
        order[i] = (uint32_t)i;
    }
    /* Insertion sort: clusters have a handful of nodes, and this runs per key. */
    for (size_t i = 1; i < n; i++) {
        uint32_t o = order[i];
        size_t j = i;
        while (j > 0 && (score[order[j - 1]] < score[o] ||
                         (score[order[j - 1]] == score[o] && order[j - 1] > o))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = o;
    }
}
