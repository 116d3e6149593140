/* End-to-end tails (aq_rpc_call_e2e, aq_rpc_method_e2e, aq_rpc_respond2_e2e), through the
 * hand-driven network with pipes: a tail crosses with only its frame headers checksummed, and only
 * to an application that said it checks it; every other byte is checksummed as always, so damage
 * there is still dropped and resent, while damage inside a tail reaches the application (whose
 * digest is the check), marked by where the tail starts. Under a MAC nothing changes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc.h"
#include "rpc_fake_net.h"

#define CID    92u
#define SECRET "e2e-test-cluster-secret-of-at-least-32-bytes-long"

static rfn_net N;
static uint8_t head[40];
static uint8_t body[300 * 1024 + 7]; /* more than one fragment */
static uint8_t call_payload[200 * 1024];
static size_t seen_e2e_from; /* what the handler of method 2 or 3 was told */
static int ran3;

/* What crossed the pipes: per side, frames with AQ_RPC_FLAG_E2E, and the lowest frag_off among
 * them; and a one-shot tamper of the next matching frame. */
static int e2e_frames[2];
static uint32_t e2e_lowest_off[2];
static enum { NONE, E2E_FRAME, CHECKED_BODY_FRAME } tamper;
static bool tampered;

static void h_get(void *ud, aq_rpc_incoming *in) {
    (void)ud;
    aq_rpc_respond2_e2e(in, 0, (aq_rpc_buf){head, sizeof head, NULL, NULL},
                        (aq_rpc_buf){body, sizeof body, NULL, NULL});
}

static void h_put(void *ud, aq_rpc_incoming *in) {
    if (ud)
        ran3++;
    seen_e2e_from = aq_rpc_incoming_e2e_from(in);
    aq_rpc_respond(in, 0, (aq_rpc_buf){"ok", 2, NULL, NULL});
}

typedef struct outcome {
    int n, err;
    size_t len, e2e_from, diff;
} outcome;

static void done(void *ud, const aq_rpc_result *r) {
    outcome *o = ud;
    o->n++;
    o->err = r->err;
    o->len = r->len;
    o->e2e_from = r->e2e_from;
    if (r->len == sizeof head + sizeof body) {
        for (size_t i = 0; i < sizeof head; i++)
            o->diff += r->data[i] != head[i];
        for (size_t i = 0; i < sizeof body; i++)
            o->diff += r->data[sizeof head + i] != body[i];
    }
}

static void inspect(rfn_write *w);

static void make(bool auth) {
    rfn_init(&N, 9300);
    N.pipes = true;
    memset(e2e_frames, 0, sizeof e2e_frames);
    e2e_lowest_off[0] = e2e_lowest_off[1] = UINT32_MAX;
    tamper = NONE;
    tampered = false;
    seen_e2e_from = 0;
    ran3 = 0;
    for (size_t i = 0; i < sizeof head; i++)
        head[i] = (uint8_t)(0xa0 + i);
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 31 + (i >> 11));
    rfn_make_cores(&N, CID, auth ? SECRET : NULL, false, 0);
    N.on_write = inspect;
    aq_rpc_handle(N.rpc[1], 1, h_get, NULL);
    aq_rpc_handle(N.rpc[1], 2, h_put, NULL);
    aq_rpc_method_e2e(N.rpc[1], 2);
    aq_rpc_handle(N.rpc[1], 3, h_put, &ran3); /* does not check tails */
}

static void teardown(void) {
    rfn_free(&N);
}

/* Looks at the next pipe write before it crosses: counts, and tampers once if asked. */
static void inspect(rfn_write *w) {
    if (w->len <= 64 || w->d[0] != 0x41 || w->d[1] != 0x51)
        return;
    uint16_t flags = (uint16_t)(w->d[4] | w->d[5] << 8);
    uint32_t off = (uint32_t)(w->d[44] | w->d[45] << 8 | w->d[46] << 16 | (uint32_t)w->d[47] << 24);
    size_t pay = (flags & 1) ? 64 + 16 : 64; /* a MAC follows the header */
    if (flags & AQ_RPC_FLAG_E2E) {
        e2e_frames[w->from]++;
        if (off < e2e_lowest_off[w->from])
            e2e_lowest_off[w->from] = off;
    }
    bool hit = tamper == E2E_FRAME ? (flags & AQ_RPC_FLAG_E2E) != 0
                                   : tamper == CHECKED_BODY_FRAME && w->len > pay + 1000 &&
                                         !(flags & AQ_RPC_FLAG_E2E);
    if (hit && !tampered && w->len > pay + 100) {
        w->d[pay + 77] ^= 0x10;
        tampered = true;
    }
}

static void run_until_done(outcome *o) {
    for (int i = 0; i < 100000 && !o->n; i++) {
        rfn_flush(&N);
        if (!o->n)
            cr_assert(rfn_tick(&N), "nothing left to do and no outcome");
    }
    cr_assert_eq(o->n, 1);
}

static void get(outcome *o, bool e2e) {
    aq_rpc_peer *b = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    aq_rpc_buf req = {"get", 3, NULL, NULL};
    int err = e2e ? aq_rpc_call_e2e(N.rpc[0], b, 1, req, 0, 30000000, done, o)
                  : aq_rpc_call(N.rpc[0], b, 1, req, 30000000, done, o);
    cr_assert_eq(err, 0);
    run_until_done(o);
}

static void put(outcome *o, uint16_t method, size_t tail, uint64_t timeout_us) {
    for (size_t i = 0; i < sizeof call_payload; i++)
        call_payload[i] = (uint8_t)(i * 7);
    aq_rpc_peer *b = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    cr_assert_eq(aq_rpc_call_e2e(N.rpc[0], b, method,
                                 (aq_rpc_buf){call_payload, sizeof call_payload, NULL, NULL}, tail,
                                 timeout_us, done, o),
                 0);
    run_until_done(o);
}

static uint64_t dropped(int side) {
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[side], &st);
    return st.dropped_malformed;
}

TestSuite(rpc_e2e, .fini = teardown);

Test(rpc_e2e, a_reply_tail_skips_the_checksum_only_for_a_caller_that_checks) {
    make(false);
    outcome o = {0};
    get(&o, true);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.diff, 0, "the reply did not arrive whole");
    cr_assert_eq(o.e2e_from, sizeof head, "the tail is the body");
    cr_assert_geq(e2e_frames[1], 1, "no frame of the body went as a tail");
    cr_assert_eq(e2e_lowest_off[1], sizeof head, "a tail frame began before the body");
    /* A caller that did not ask gets every byte checksummed. */
    memset(e2e_frames, 0, sizeof e2e_frames);
    outcome p = {0};
    get(&p, false);
    cr_assert_eq(p.err, 0);
    cr_assert_eq(p.diff, 0);
    cr_assert_eq(p.e2e_from, p.len);
    cr_assert_eq(e2e_frames[1], 0, "a tail went to a caller that did not ask");
}

/* Damage inside the tail is the application's to find: delivered, and marked as a tail. */
Test(rpc_e2e, damage_in_a_tail_reaches_the_caller_that_checks_it) {
    make(false);
    tamper = E2E_FRAME;
    outcome o = {0};
    get(&o, true);
    cr_assert(tampered);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.diff, 1, "the damaged byte is what the caller's digest must catch");
    cr_assert_eq(o.e2e_from, sizeof head);
    cr_assert_eq(dropped(0), 0);
}

/* Damage in checksummed bytes is dropped and the reply sent again, as ever. */
Test(rpc_e2e, damage_in_checksummed_bytes_is_dropped_and_resent) {
    make(false);
    tamper = CHECKED_BODY_FRAME;
    outcome o = {0};
    get(&o, false);
    cr_assert(tampered);
    cr_assert_geq(dropped(0), 1, "the damaged frame was not dropped");
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.diff, 0, "damaged bytes were delivered");
    cr_assert_eq(o.e2e_from, o.len);
}

Test(rpc_e2e, a_call_tail_goes_only_to_a_handler_that_checks_it) {
    make(false);
    outcome o = {0};
    put(&o, 2, 150 * 1024, 30000000);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(seen_e2e_from, sizeof call_payload - 150 * 1024);
    cr_assert_geq(e2e_frames[0], 1);
    cr_assert_eq(e2e_lowest_off[0], sizeof call_payload - 150 * 1024);
    /* Method 3 never said it checks tails: the call is not acted on, and times out. */
    outcome q = {0};
    put(&q, 3, 150 * 1024, 2000000);
    cr_assert_eq(q.err, AQ_ETIMEDOUT);
    cr_assert_eq(ran3, 0, "a handler that does not check tails got one");
    cr_assert_geq(dropped(1), 1);
    /* Without a tail it runs. */
    outcome r = {0};
    put(&r, 3, 0, 30000000);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(ran3, 1);
    cr_assert_eq(seen_e2e_from, sizeof call_payload);
}

/* An authenticated endpoint tags every byte: no tail, whatever the calls ask. */
Test(rpc_e2e, no_tail_under_a_mac) {
    make(true);
    outcome o = {0};
    get(&o, true);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.diff, 0);
    cr_assert_eq(o.e2e_from, o.len);
    outcome p = {0};
    put(&p, 2, 150 * 1024, 30000000);
    cr_assert_eq(p.err, 0);
    cr_assert_eq(seen_e2e_from, sizeof call_payload);
    cr_assert_eq(e2e_frames[0] + e2e_frames[1], 0);
}
