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
