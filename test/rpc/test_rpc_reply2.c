/* Two-piece replies (aq_rpc_respond2), through the hand-driven network with pipes: the caller
 * gets head and body as one message, also after the pipe broke mid-reply and the reply was sent
 * again, also encrypted; each lent piece is released exactly once, when the reply is acknowledged,
 * expires with its caller gone, or the endpoint is freed, and never while it may still be sent. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc.h"
#include "rpc_fake_net.h"

#define CID    91u
#define SECRET "reply2-test-cluster-secret-of-at-least-32-bytes"

static rfn_net N;

static uint8_t head[40];
static uint8_t body[300 * 1024 + 7]; /* more than one fragment */
static int head_released, body_released, responded;

static void rel(void *ctx) {
    if (ctx == head)
        head_released++;
    else if (ctx == body)
        body_released++;
    else
        cr_assert_fail("release of something never lent");
}

static void h_two(void *ud, aq_rpc_incoming *in) {
    (void)ud;
    responded++;
    aq_rpc_respond2(in, 0, (aq_rpc_buf){head, sizeof head, rel, head},
                    (aq_rpc_buf){body, sizeof body, rel, body});
}

typedef struct outcome {
    int n, err;
    bool intact;
} outcome;

static void done(void *ud, const aq_rpc_result *r) {
    outcome *o = ud;
    o->n++;
    o->err = r->err;
    o->intact = r->len == sizeof head + sizeof body && memcmp(r->data, head, sizeof head) == 0 &&
                memcmp(r->data + sizeof head, body, sizeof body) == 0;
}

static void make(bool encrypt, uint64_t reply_cache_us) {
    rfn_init(&N, 9200);
    N.pipes = true;
    head_released = body_released = responded = 0;
    for (size_t i = 0; i < sizeof head; i++)
        head[i] = (uint8_t)(0xa0 + i);
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 29 + (i >> 9));
    rfn_make_cores(&N, CID, encrypt ? SECRET : NULL, encrypt, reply_cache_us);
    aq_rpc_handle(N.rpc[1], 1, h_two, NULL);
}

static void teardown(void) {
    rfn_free(&N);
}

static void start_call(outcome *o) {
    aq_rpc_peer *b = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    cr_assert_eq(aq_rpc_call(N.rpc[0], b, 1, (aq_rpc_buf){"get", 3, NULL, NULL}, 30000000, done, o),
                 0);
}

/* Moves everything and fires timers until the call has its outcome (bounded). */
static void run_until_done(outcome *o) {
    for (int i = 0; i < 10000 && !o->n; i++) {
        rfn_flush(&N);
        if (!o->n)
            cr_assert(rfn_tick(&N), "nothing left to do and no outcome");
    }
    cr_assert_eq(o->n, 1);
}

/* Fires timers until B has no work left (its replies acknowledged or expired); bounded. */
/* Delivers the datagrams queued so far, in order, and those they cause; the pipes stay as they are.
 */
static void deliver_datagrams(void) {
    while (N.nq) {
        rfn_pkt p = N.q[0];
        memmove(N.q, N.q + 1, (size_t)(N.nq - 1) * sizeof N.q[0]);
        N.nq--;
        rfn_deliver(&N, &p);
    }
}

static void run_quiet(void) {
    for (int i = 0; i < 100000 && (head_released == 0 || body_released == 0); i++) {
        rfn_flush(&N);
        if (!rfn_tick(&N))
            break;
    }
}

TestSuite(rpc_reply2, .fini = teardown);

Test(rpc_reply2, arrives_whole_and_released_once_when_acknowledged) {
    make(false, 0);
    outcome o = {0};
    start_call(&o);
    run_until_done(&o);
    cr_assert_eq(o.err, 0);
    cr_assert(o.intact, "head and body did not arrive as one message");
    cr_assert_eq(responded, 1);
    run_quiet();
    cr_assert_eq(head_released, 1);
    cr_assert_eq(body_released, 1);
    rfn_free(&N);
    cr_assert_eq(head_released, 1, "released again at free");
    cr_assert_eq(body_released, 1, "released again at free");
}

Test(rpc_reply2, encrypted_arrives_whole) {
    make(true, 0);
    outcome o = {0};
    start_call(&o);
    run_until_done(&o);
    cr_assert_eq(o.err, 0);
    cr_assert(o.intact, "head and body did not arrive as one message (encrypted)");
    run_quiet();
    cr_assert_eq(head_released, 1);
    cr_assert_eq(body_released, 1);
}

/* The pipe breaks after the head's fragment crossed: the partial message is dropped there, the
 * reply goes again from its start on a new pipe, and arrives whole; nothing is released early. */
Test(rpc_reply2, resent_after_the_pipe_broke_mid_reply) {
    make(false, 0);
    outcome o = {0};
    start_call(&o);
    /* The call is a datagram; B responds and opens its pipe to A. */
    deliver_datagrams();
    cr_assert_eq(responded, 1);
    cr_assert_eq(N.npc, 1);
    /* Connect, HELLO, the head's fragment: then the connection dies. */
    for (int i = 0; i < 3; i++)
        cr_assert(rfn_pipes_step(&N));
    cr_assert_eq(o.n, 0);
    N.pc[0].dead = true;
    rfn_flush(&N);
    cr_assert_eq(o.n, 0);
    cr_assert_eq(head_released + body_released, 0, "released while the reply may be resent");
    run_until_done(&o);
    cr_assert_eq(o.err, 0);
    cr_assert(o.intact, "the resent reply is not head and body");
    cr_assert_geq(N.opens, 2, "no new pipe was opened");
    run_quiet();
    cr_assert_eq(head_released, 1);
    cr_assert_eq(body_released, 1);
}

/* The caller goes away before acknowledging: the reply is released once, when it expires. */
Test(rpc_reply2, released_once_when_it_expires_with_the_caller_gone) {
    make(false, 2000000);
    outcome o = {0};
    start_call(&o);
    deliver_datagrams();
    cr_assert_eq(responded, 1);
    aq_rpc_free(N.rpc[0]);
    N.rpc[0] = NULL;
    N.timer[0] = UINT64_MAX;
    cr_assert_eq(o.n, 1); /* freed: AQ_ECLOSED */
    uint64_t t0 = N.now;
    run_quiet();
    cr_assert_eq(head_released, 1);
    cr_assert_eq(body_released, 1);
    cr_assert_geq(N.now - t0, 2000000, "released before the reply cache time");
}

/* Freed with the reply unacknowledged and partly written: released once. */
Test(rpc_reply2, released_once_when_the_endpoint_is_freed) {
    make(true, 0);
    outcome o = {0};
    start_call(&o);
    deliver_datagrams();
    for (int i = 0; i < 3; i++)
        rfn_pipes_step(&N);
    cr_assert_eq(head_released + body_released, 0);
    aq_rpc_free(N.rpc[1]);
    N.rpc[1] = NULL;
    N.timer[1] = UINT64_MAX;
    cr_assert_eq(head_released, 1);
    cr_assert_eq(body_released, 1);
    rfn_free(&N);
    cr_assert_eq(head_released, 1);
    cr_assert_eq(body_released, 1);
}
