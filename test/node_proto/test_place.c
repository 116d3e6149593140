#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "aq_node_place.h"

Test(place, order_is_a_stable_permutation) {
    uint64_t seeds[3] = {aq_place_seed("n1"), aq_place_seed("n2"), aq_place_seed("n3")};
    uint32_t a[3], b[3];
    aq_place_order(seeds, 3, "key", 3, a);
    aq_place_order(seeds, 3, "key", 3, b);
    cr_expect_arr_eq(a, b, sizeof a);
    int seen[3] = {0};
    for (int i = 0; i < 3; i++)
        seen[a[i]]++;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(seen[i], 1);
}

Test(place, primaries_spread_evenly) {
    uint64_t seeds[3] = {aq_place_seed("n1"), aq_place_seed("n2"), aq_place_seed("n3")};
    int first[3] = {0};
    char key[32];
    for (int i = 0; i < 30000; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        uint32_t o[3];
        aq_place_order(seeds, 3, key, (size_t)n, o);
        first[o[0]]++;
    }
    for (int i = 0; i < 3; i++)
        cr_expect(first[i] > 9000 && first[i] < 11000, "node %d is primary for %d of 30000", i,
                  first[i]);
}

/* Rendezvous hashing's point: dropping a node moves only the keys it was first for. */
Test(place, removing_a_node_moves_only_its_keys) {
    uint64_t seeds4[4] = {aq_place_seed("a"), aq_place_seed("b"), aq_place_seed("c"),
                          aq_place_seed("d")};
    char key[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        uint32_t o4[4], o3[3];
        aq_place_order(seeds4, 4, key, (size_t)n, o4);
        aq_place_order(seeds4, 3, key, (size_t)n, o3); /* without "d" */
        if (o4[0] != 3)
            cr_assert_eq(o3[0], o4[0], "key %s moved although its node stayed", key);
    }
}

/* Internal keys with a 0x1e are placed by their prefix: a frame's chunk i of every column lives
 * together. */
Test(place, internal_keys_colocate_by_prefix) {
    uint64_t seeds[5];
    const char *names[5] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        seeds[i] = aq_place_seed(names[i]);
    int differ = 0;
    for (int i = 0; i < 200; i++) {
        char k1[64], k2[64], k3[64];
        int n1 = snprintf(k1, sizeof k1,
                          "\x1f"
                          "Fair/%d\x1e"
                          "piece",
                          i);
        int n2 = snprintf(k2, sizeof k2,
                          "\x1f"
                          "Fair/%d\x1e"
                          "col/7",
                          i);
        int n3 = snprintf(k3, sizeof k3,
                          "\x1f"
                          "Fair/%d",
                          i);
        uint32_t o1[5], o2[5], o3[5];
        aq_place_order(seeds, 5, k1, (size_t)n1, o1);
        aq_place_order(seeds, 5, k2, (size_t)n2, o2);
        aq_place_order(seeds, 5, k3, (size_t)n3, o3);
        cr_assert_arr_eq(o1, o2, sizeof o1);
        cr_assert_arr_eq(o1, o3, sizeof o1);
        /* The same bytes without the internal prefix are a user key: placed by all its bytes. */
        uint32_t u1[5], u2[5];
        aq_place_order(seeds, 5, k1 + 1, (size_t)n1 - 1, u1);
        aq_place_order(seeds, 5, k2 + 1, (size_t)n2 - 1, u2);
        differ += memcmp(u1, u2, sizeof u1) != 0;
    }
    cr_expect(differ > 100, "user keys must not be co-located by prefix (%d of 200 differ)",
              differ);
}
