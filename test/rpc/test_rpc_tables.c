/* The core's tables: completed-task memory, task map, timer heap, congestion window and RTO. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc.h"
#include "aq_rpc_heap.h"
#include "aq_rpc_iset.h"
#include "aq_rpc_map.h"
#include "aq_rpc_cc.h"

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(rpc_iset, in_order_moves_watermark) {
    aq_rpc_iset s;
    aq_rpc_iset_init(&s, 16);
    for (uint64_t t = 1; t <= 1000; t++)
        cr_assert_eq(aq_rpc_iset_add(&s, t), 0);
    cr_assert_eq(s.low, 1000);
    cr_assert_eq(s.n, 0);
    cr_assert(aq_rpc_iset_contains(&s, 1));
    cr_assert(!aq_rpc_iset_contains(&s, 1001));
    aq_rpc_iset_free(&s);
}

Test(rpc_iset, out_of_order_merges) {
    aq_rpc_iset s;
    aq_rpc_iset_init(&s, 16);
    aq_rpc_iset_add(&s, 5);
    aq_rpc_iset_add(&s, 7);
    cr_assert_eq(s.n, 2);
    aq_rpc_iset_add(&s, 6);
    cr_assert_eq(s.n, 1);
    cr_assert(!aq_rpc_iset_contains(&s, 4));
    cr_assert(aq_rpc_iset_contains(&s, 6));
    for (uint64_t t = 1; t <= 4; t++)
        aq_rpc_iset_add(&s, t);
    cr_assert_eq(s.low, 7);
    cr_assert_eq(s.n, 0);
    aq_rpc_iset_free(&s);
}

Test(rpc_iset, matches_reference) {
    aq_rpc_iset s;
    aq_rpc_iset_init(&s, 100000);
    bool *ref = calloc(20001, 1);
    uint64_t seed = 88172645463325252ull;
    for (int i = 0; i < 30000; i++) {
        uint64_t t = 1 + rnd(&seed) % 20000;
        ref[t] = true;
        cr_assert_eq(aq_rpc_iset_add(&s, t), 0);
    }
    for (uint64_t t = 1; t <= 20000; t++)
        cr_assert_eq(aq_rpc_iset_contains(&s, t), ref[t], "task %llu", (unsigned long long)t);
    cr_assert_eq(s.forced, 0);
    free(ref);
    aq_rpc_iset_free(&s);
}

Test(rpc_iset, bound_errs_towards_done) {
    aq_rpc_iset s;
    aq_rpc_iset_init(&s, 4);
    for (uint64_t t = 2; t <= 20; t += 2) /* 10 isolated tasks: needs 10 ranges */
        aq_rpc_iset_add(&s, t);
    cr_assert_leq(s.n, 4);
    cr_assert_eq(s.forced, 6);
    /* The forgotten gaps count as done: a late task there is refused, never run twice. */
    cr_assert(aq_rpc_iset_contains(&s, 1));
    cr_assert(aq_rpc_iset_contains(&s, 11));
    cr_assert(!aq_rpc_iset_contains(&s, 13));
    cr_assert(aq_rpc_iset_contains(&s, 20));
    cr_assert(!aq_rpc_iset_contains(&s, 21));
    aq_rpc_iset_free(&s);
}

Test(rpc_map, matches_reference) {
    aq_rpc_map m = {0};
    static void *ref[4096];
    memset(ref, 0, sizeof ref);
    uint64_t seed = 12345;
    size_t count = 0;
    for (int i = 0; i < 200000; i++) {
        uint64_t k = 1 + rnd(&seed) % 4095;
        void *v = (void *)(uintptr_t)(i + 1);
        if (rnd(&seed) % 3) {
            if (!ref[k])
                count++;
            cr_assert_eq(aq_rpc_map_put(&m, k, v), 0);
            ref[k] = v;
        } else {
            cr_assert_eq(aq_rpc_map_del(&m, k), ref[k]);
            if (ref[k])
                count--;
            ref[k] = NULL;
        }
        cr_assert_eq(m.n, count);
    }
    for (uint64_t k = 1; k < 4096; k++)
        cr_assert_eq(aq_rpc_map_get(&m, k), ref[k]);
    cr_assert_eq(aq_rpc_map_put(&m, 0, NULL), AQ_EINVAL);
    aq_rpc_map_free(&m);
}

Test(rpc_heap, min_order_with_moves_and_removals) {
    enum { N = 500 };
    aq_rpc_heap h = {0};
    aq_rpc_tnode nodes[N];
    bool in[N] = {0};
    uint64_t seed = 999;
    cr_assert_eq(aq_rpc_heap_reserve(&h, N), 0);
    for (int i = 0; i < N; i++)
        nodes[i] = (aq_rpc_tnode){.idx = AQ_RPC_HEAP_NONE};
    for (int step = 0; step < 20000; step++) {
        int i = (int)(rnd(&seed) % N);
        if (rnd(&seed) % 4 == 0) {
            aq_rpc_heap_remove(&h, &nodes[i]);
            in[i] = false;
        } else {
            aq_rpc_heap_set(&h, &nodes[i], rnd(&seed) % 100000);
            in[i] = true;
        }
        uint64_t min = UINT64_MAX;
        for (int k = 0; k < N; k++)
            if (in[k] && nodes[k].at < min)
                min = nodes[k].at;
        aq_rpc_tnode *t = aq_rpc_heap_top(&h);
        cr_assert_eq(t ? t->at : UINT64_MAX, min);
    }
    aq_rpc_heap_free(&h);
}

Test(rpc_window, grows_additively_and_halves_once_per_rto) {
    aq_rpc_cc c;
    aq_rpc_cc_init(&c, 4, 8, 20000, 2000000);
    cr_assert_eq(c.cwnd, 4);
    for (int i = 0; i < 4; i++)
        aq_rpc_cc_on_success(&c);
    cr_assert_eq(c.cwnd, 5);
    for (int i = 0; i < 1000; i++)
        aq_rpc_cc_on_success(&c);
    cr_assert_eq(c.cwnd, 8); /* window_max */
    aq_rpc_cc_cut(&c, 1000000);
    cr_assert_eq(c.cwnd, 4);
    aq_rpc_cc_cut(&c, 1000000 + c.rto - 1); /* same loss episode */
    cr_assert_eq(c.cwnd, 4);
    aq_rpc_cc_cut(&c, 1000000 + c.rto);
    cr_assert_eq(c.cwnd, 2);
    for (int i = 0; i < 10; i++)
        aq_rpc_cc_cut(&c, 10000000 + (uint64_t)i * 10000000);
    cr_assert_eq(c.cwnd, 1);
}

Test(rpc_window, admits_by_calls_and_bytes) {
    aq_rpc_cc c;
    aq_rpc_cc_init(&c, 2, 100, 20000, 2000000);
    cr_assert(aq_rpc_cc_can_send(&c, AQ_RPC_MAX_PAYLOAD)); /* idle: anything fits */
    aq_rpc_cc_on_send(&c, AQ_RPC_MAX_PAYLOAD);
    cr_assert(!aq_rpc_cc_can_send(&c, 100)); /* bytes limit reached */
    aq_rpc_cc_on_finish(&c, AQ_RPC_MAX_PAYLOAD);
    aq_rpc_cc_on_send(&c, 10);
    aq_rpc_cc_on_send(&c, 10);
    cr_assert(!aq_rpc_cc_can_send(&c, 10)); /* calls limit reached */
    aq_rpc_cc_on_finish(&c, 10);
    cr_assert(aq_rpc_cc_can_send(&c, 10));
}

Test(rpc_window, rto_follows_rfc6298) {
    aq_rpc_cc c;
    aq_rpc_cc_init(&c, 4, 8, 20000, 2000000);
    aq_rpc_cc_rtt_sample(&c, 100000);
    cr_assert_eq(c.srtt, 100000);
    cr_assert_eq(c.rttvar, 50000);
    cr_assert_eq(c.rto, 300000);
    aq_rpc_cc_rtt_sample(&c, 100000);
    cr_assert_eq(c.srtt, 100000);
    cr_assert_eq(c.rttvar, 37500);
    cr_assert_eq(c.rto, 250000);
    cr_assert_eq(aq_rpc_cc_backoff(&c, 1), 250000);
    cr_assert_eq(aq_rpc_cc_backoff(&c, 3), 1000000);
    cr_assert_eq(aq_rpc_cc_backoff(&c, 30), 2000000); /* cap */
    for (int i = 0; i < 50; i++)
        aq_rpc_cc_rtt_sample(&c, 100);
    cr_assert_eq(c.rto, 20000); /* floor */
}
