/* The hybrid logical clock (node/aq_node_hlc.c): strictly increasing whatever the physical clock
 * does, above every clock observed, and above every version issued before a restart. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aq_error.h"
#include "aq_node_hlc.h"

#define HOUR_MS (3600ull * 1000)

Test(hlc, strictly_increasing_when_the_clock_stands_or_steps_back) {
    aq_hlc c;
    aq_hlc_init(&c, 0);
    uint64_t t = 1700000000000ull;
    uint64_t a = aq_hlc_now(&c, t);
    cr_expect_eq(a, aq_hlc_from_ms(t));
    uint64_t b = aq_hlc_now(&c, t);
    cr_expect_gt(b, a);
    uint64_t d = aq_hlc_now(&c, t - HOUR_MS);
    cr_expect_gt(d, b, "a clock stepped back an hour must not issue older versions");
    cr_expect_eq(aq_hlc_ms(d), t, "the counter runs in the last millisecond seen");
    uint64_t e = aq_hlc_now(&c, t + 5);
    cr_expect_eq(e, aq_hlc_from_ms(t + 5), "the clock catches up with physical time");
}

/* Two nodes, one an hour ahead: once the slow one hears the fast one, it issues above it. */
Test(hlc, observing_a_skewed_peer_orders_after_it) {
    aq_hlc fast, slow;
    aq_hlc_init(&fast, 0);
    aq_hlc_init(&slow, 0);
    uint64_t t = 1700000000000ull;
    uint64_t vf = aq_hlc_now(&fast, t + HOUR_MS);
    uint64_t vs = aq_hlc_now(&slow, t + 10);
    cr_expect_lt(vs, vf, "without hearing it, the slow node is behind (as in real life)");
    cr_expect(aq_hlc_observe(&slow, vf, t + 10));
    uint64_t vs2 = aq_hlc_now(&slow, t + 11);
    cr_expect_gt(vs2, vf);
    cr_expect(aq_hlc_observe(&fast, vs2, t + HOUR_MS));
    cr_expect_gt(aq_hlc_now(&fast, t + HOUR_MS), vs2);
}

/* A heartbeat's clock: physical time or what was issued, whichever is later, and nothing issued. */
Test(hlc, peek_issues_nothing) {
    aq_hlc c;
    aq_hlc_init(&c, 0);
    uint64_t t = 1700000000000ull;
    cr_expect_eq(aq_hlc_peek(&c, t), aq_hlc_from_ms(t));
    uint64_t v = aq_hlc_now(&c, t + HOUR_MS);
    cr_expect_eq(aq_hlc_peek(&c, t), v, "a clock stepped back reads what was issued");
    cr_expect_eq(aq_hlc_now(&c, t), v + 1);
}

Test(hlc, counter_overflow_carries_into_the_millisecond) {
    aq_hlc c;
    aq_hlc_init(&c, 0);
    uint64_t t = 1700000000000ull, prev = 0;
    for (int i = 0; i < 70000; i++) {
        uint64_t v = aq_hlc_now(&c, t);
        cr_assert_gt(v, prev);
        prev = v;
    }
    cr_expect_eq(aq_hlc_ms(prev), t + 1);
}

Test(hlc, a_clock_wildly_ahead_is_not_followed) {
    aq_hlc c;
    aq_hlc_init(&c, 0);
    uint64_t t = 1700000000000ull;
    uint64_t v = aq_hlc_now(&c, t);
    cr_expect_not(aq_hlc_observe(&c, aq_hlc_from_ms(t + 365 * 24 * HOUR_MS), t));
    cr_expect_eq(aq_hlc_now(&c, t), v + 1);
    cr_expect(aq_hlc_observe(&c, aq_hlc_from_ms(t + 2 * HOUR_MS), t), "two hours is followed");
}

static char *tmpdir(void) {
    char *d = strdup("/tmp/aq-hlc-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

/* The ceiling survives a restart: a node whose clock stepped back an hour starts above every
 * version it issued before. */
Test(hlc, ceiling_keeps_a_restart_above_what_was_issued) {
    char *dir = tmpdir();
    aq_hlc_ceiling cl;
    uint64_t floor = 99;
    cr_assert_eq(aq_hlc_ceiling_open(&cl, dir, &floor), 0);
    cr_expect_eq(floor, 0, "no file yet");
    aq_hlc c;
    aq_hlc_init(&c, floor);
    uint64_t t = 1700000000000ull, last = 0;
    for (int i = 0; i < 1000; i++) {
        last = aq_hlc_now(&c, t + (uint64_t)i * 50);
        cr_assert_eq(aq_hlc_ceiling_cover(&cl, last), 0);
    }
    aq_hlc_ceiling_close(&cl);
    cr_assert_eq(aq_hlc_ceiling_open(&cl, dir, &floor), 0);
    cr_expect_geq(floor, last);
    aq_hlc_init(&c, floor);
    cr_expect_gt(aq_hlc_now(&c, t - HOUR_MS), last);
    aq_hlc_ceiling_close(&cl);
    char path[256];
    snprintf(path, sizeof path, "%s/CLOCK", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("aquifer-clock 1 12x\n", f);
    fclose(f);
    cr_expect_eq(aq_hlc_ceiling_open(&cl, dir, &floor), AQ_ECORRUPT);
    aq_hlc_ceiling_close(&cl);
    unlink(path);
    rmdir(dir);
    free(dir);
}

Test(hlc, no_data_dir_persists_nothing) {
    aq_hlc_ceiling cl;
    uint64_t floor = 5;
    cr_assert_eq(aq_hlc_ceiling_open(&cl, NULL, &floor), 0);
    cr_expect_eq(floor, 0);
    cr_expect_eq(aq_hlc_ceiling_cover(&cl, 1ull << 62), 0);
    aq_hlc_ceiling_close(&cl);
}
