/* The core through a tiny hand-driven network: outcomes, errors, duplicates, incarnations, and
 * hostile input that must be dropped and counted without changing anything. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc.h"
#include "aq_rpc_wire.h"
#include "rpc_fake_net.h"

#define CID 77u

/* The network: see rpc_fake_net.h. Datagrams wait until flush(); pipes are driven by hand. */
static rfn_net N;

static int handled;
static int busy_mode;
static aq_rpc_incoming *held;

static void h_echo(void *ud, aq_rpc_incoming *in) {
    handled++;
    if (busy_mode) {
        aq_rpc_respond_busy(in, 5);
        return;
    }
    if (ud) { /* answer later */
        held = in;
        return;
    }
    size_t len;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    aq_rpc_respond(in, 0, (aq_rpc_buf){d, len, NULL, NULL});
}

static void setup_net(uint64_t inc_b) {
    rfn_init(&N, 9000);
    N.qmax = 256;
    handled = 0;
    busy_mode = 0;
    held = NULL;
    for (int i = 0; i < 2; i++) {
        aq_rpc_config c;
        aq_rpc_config_init(&c);
        c.cluster_id = CID;
        c.incarnation = i ? inc_b : 100;
        c.self = N.addr[i];
        c.queue_max = 2;
        c.window_init = 1;
        cr_assert_eq(aq_rpc_new(&c, &rfn_io, &N.ep[i], &N.rpc[i]), 0);
    }
    aq_rpc_handle(N.rpc[1], 1, h_echo, NULL);
    aq_rpc_handle(N.rpc[1], 2, h_echo, (void *)1);
    aq_rpc_method_name(N.rpc[0], 1, "ECHO");
}

static void setup(void) {
    setup_net(200);
}

static void teardown(void) {
    rfn_free(&N);
}

/* Deliver queued datagrams (and ones they cause) until quiet. */
static void flush(void) {
    rfn_flush(&N);
}

/* Advance virtual time to the next timer and fire it. */
static void tick(void) {
    cr_assert(rfn_tick(&N), "no timer armed");
}

typedef struct outcome {
    int n, err, status;
    size_t len;
    uint8_t data[64];
    char text[200];
} outcome;

static void done(void *ud, const aq_rpc_result *r) {
    outcome *o = ud;
    o->n++;
    o->err = r->err;
    o->status = r->status;
    o->len = r->len;
    if (r->len <= sizeof o->data && r->len)
        memcpy(o->data, r->data, r->len);
    aq_rpc_result_describe(N.rpc[0], r, o->text, sizeof o->text);
}

static aq_rpc_peer *peer_b(void) {
    return aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
}

TestSuite(rpc_core, .init = setup, .fini = teardown);

Test(rpc_core, echo_and_counters) {
    outcome o = {0};
    cr_assert_eq(
        aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"ping", 4, NULL, NULL}, 1000000, done, &o),
        0);
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.len, 4);
    cr_assert_eq(memcmp(o.data, "ping", 4), 0);
    aq_rpc_peer_stats st;
    aq_rpc_peer_stats_get(peer_b(), &st);
    cr_assert_eq(st.calls, 1);
    cr_assert_eq(st.replies, 1);
    cr_assert_eq(aq_rpc_peer_incarnation(peer_b()), 200);
    aq_rpc_peer *a = aq_rpc_peer_get(N.rpc[1], &N.addr[0]);
    aq_rpc_peer_stats_get(a, &st);
    cr_assert_eq(st.handled, 1);
}

Test(rpc_core, duplicates_never_rerun) {
    outcome o = {0};
    aq_rpc_call(N.rpc[0], peer_b(), 2, (aq_rpc_buf){"x", 1, NULL, NULL}, 5000000, done, &o);
    flush();
    cr_assert_eq(handled, 1);
    /* Resends while running get PENDING; the handler does not run again. */
    for (int i = 0; i < 3; i++) {
        tick();
        flush();
    }
    cr_assert_eq(handled, 1);
    aq_rpc_peer_stats st;
    aq_rpc_peer_stats_get(peer_b(), &st);
    cr_assert_geq(st.pending_seen, 1);
    aq_rpc_respond(held, 0, (aq_rpc_buf){"late", 4, NULL, NULL});
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.len, 4);
    aq_rpc_peer_stats_get(aq_rpc_peer_get(N.rpc[1], &N.addr[0]), &st);
    cr_assert_geq(st.dup_suppressed, 1);
}

Test(rpc_core, lost_reply_is_resent_from_cache) {
    outcome o = {0};
    N.drop_to[0] = true; /* the first reply is lost */
    aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"abc", 3, NULL, NULL}, 5000000, done, &o);
    flush();
    N.drop_to[0] = false;
    cr_assert_eq(o.n, 0);
    while (o.n == 0) {
        tick();
        flush();
    }
    cr_assert_eq(o.err, 0);
    cr_assert_eq(handled, 1);
}

Test(rpc_core, unknown_method) {
    outcome o = {0};
    aq_rpc_call(N.rpc[0], peer_b(), 99, (aq_rpc_buf){0}, 1000000, done, &o);
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, AQ_ENOMETHOD);
}

typedef struct obs_log {
    int n;
    int kind[8];
    uint16_t method[8];
    int err[8];
    uint64_t us[8];
} obs_log;

static void on_obs(void *ud, int kind, uint16_t method, int err, uint64_t us) {
    obs_log *l = ud;
    if (l->n < 8) {
        l->kind[l->n] = kind;
        l->method[l->n] = method;
        l->err[l->n] = err;
        l->us[l->n] = us;
    }
    l->n++;
}

Test(rpc_core, observe_times_calls_and_handlers) {
    obs_log a = {0}, b = {0};
    aq_rpc_on_observe(N.rpc[0], on_obs, &a);
    aq_rpc_on_observe(N.rpc[1], on_obs, &b);
    outcome o = {0};
    aq_rpc_call(N.rpc[0], peer_b(), 2, (aq_rpc_buf){"x", 1, NULL, NULL}, 5000000, done, &o);
    flush();
    cr_assert_eq(handled, 1);
    cr_assert_eq(b.n, 0, "the handler is still running: nothing to time yet");
    N.now += 30000;
    aq_rpc_respond(held, AQ_ENOTFOUND, (aq_rpc_buf){0});
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(b.n, 1);
    cr_expect_eq(b.kind[0], AQ_RPC_OBS_HANDLED);
    cr_expect_eq(b.method[0], 2);
    cr_expect_eq(b.err[0], AQ_ENOTFOUND);
    cr_expect_eq(b.us[0], 30000, "from the handler's start to its reply");
    cr_assert_eq(a.n, 1);
    cr_expect_eq(a.kind[0], AQ_RPC_OBS_CALL);
    cr_expect_eq(a.method[0], 2);
    cr_expect_eq(a.err[0], AQ_ENOTFOUND, "the far handler's status");
    cr_expect_geq(a.us[0], 30000);
    /* A call that fails is timed with its error; a refused one runs no handler there. */
    aq_rpc_call(N.rpc[0], peer_b(), 99, (aq_rpc_buf){0}, 1000000, done, &o);
    flush();
    cr_assert_eq(a.n, 2);
    cr_expect_eq(a.method[1], 99);
    cr_expect_eq(a.err[1], AQ_ENOMETHOD);
    cr_expect_eq(b.n, 1);
}

Test(rpc_core, timeout_names_peer_and_method) {
    outcome o = {0};
    N.drop_to[1] = true;
    aq_rpc_peer_set_name(peer_b(), "n2");
    aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"a", 1, NULL, NULL}, 1000000, done, &o);
    while (o.n == 0) {
        tick();
        flush();
    }
    cr_assert_eq(o.err, AQ_ETIMEDOUT);
    cr_assert(strstr(o.text, "ECHO") && strstr(o.text, "n2") && strstr(o.text, "127.0.0.1:9001") &&
                  strstr(o.text, "timed out"),
              "%s", o.text);
    aq_rpc_peer_stats st;
    aq_rpc_peer_stats_get(peer_b(), &st);
    cr_assert_eq(st.timeouts, 1);
    cr_assert_geq(st.retransmits, 2);
}

Test(rpc_core, busy_until_deadline_is_ebusy) {
    outcome o = {0};
    busy_mode = 1;
    aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"a", 1, NULL, NULL}, 300000, done, &o);
    for (int i = 0; i < 1000 && o.n == 0; i++) {
        flush();
        if (o.n == 0)
            tick();
    }
    cr_assert_eq(o.err, AQ_EBUSY);
    aq_rpc_peer_stats st;
    aq_rpc_peer_stats_get(peer_b(), &st);
    cr_assert_geq(st.busy_seen, 2);
}

static int lent_released;
static void count_release(void *ctx) {
    lent_released++;
}

Test(rpc_core, queue_bound_and_size_limit) {
    outcome o[4] = {{0}};
    lent_released = 0;
    aq_rpc_peer *p = peer_b();
    cr_assert_eq(
        aq_rpc_call(N.rpc[0], p, 1, (aq_rpc_buf){"1", 1, NULL, NULL}, 1000000, done, &o[0]), 0);
    /* window_init 1: these wait in the queue (queue_max 2) */
    cr_assert_eq(
        aq_rpc_call(N.rpc[0], p, 1, (aq_rpc_buf){"2", 1, NULL, NULL}, 1000000, done, &o[1]), 0);
    cr_assert_eq(
        aq_rpc_call(N.rpc[0], p, 1, (aq_rpc_buf){"3", 1, NULL, NULL}, 1000000, done, &o[2]), 0);
    cr_assert_eq(aq_rpc_call(N.rpc[0], p, 1, (aq_rpc_buf){"4", 1, count_release, NULL}, 1000000,
                             done, &o[3]),
                 AQ_EQUEUEFULL);
    cr_assert_eq(lent_released, 1);
    aq_rpc_peer_stats st;
    aq_rpc_peer_stats_get(p, &st);
    cr_assert_eq(st.queued, 2);
    cr_assert_eq(aq_rpc_call(N.rpc[0], p, 1,
                             (aq_rpc_buf){"", AQ_RPC_MAX_PAYLOAD + 1, count_release, NULL}, 1000000,
                             done, &o[3]),
                 AQ_ETOOBIG);
    cr_assert_eq(lent_released, 2);
    flush();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(o[i].err, 0);
    cr_assert_eq(o[3].n, 0);
}

Test(rpc_core, free_fails_pending_with_closed) {
    outcome o = {0};
    N.drop_to[1] = true;
    aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"a", 1, NULL, NULL}, 1000000, done, &o);
    aq_rpc_free(N.rpc[0]);
    N.rpc[0] = NULL;
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, AQ_ECLOSED);
}

Test(rpc_core, cancel_ends_every_pending_call_now) {
    outcome o[5] = {{0}};
    lent_released = 0;
    aq_rpc_buf b = {"a", 1, count_release, NULL};
    /* One waiting out BUSY, one in flight to a peer that hears nothing, two queued behind it. */
    busy_mode = 1;
    cr_assert_eq(aq_rpc_call(N.rpc[0], peer_b(), 1, b, 5000000, done, &o[0]), 0);
    flush();
    busy_mode = 0;
    N.drop_to[1] = true;
    for (int i = 1; i < 4; i++)
        cr_assert_eq(aq_rpc_call(N.rpc[0], peer_b(), 1, b, 5000000, done, &o[i]), 0);
    flush();
    aq_rpc_peer_stats st;
    aq_rpc_peer_stats_get(peer_b(), &st);
    cr_assert_eq(st.queued, 2);
    cr_assert_eq(lent_released, 0);
    cr_assert_eq(aq_rpc_peer_cancel_calls(peer_b()), 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(o[i].n, 1, "call %d", i);
        cr_assert_eq(o[i].err, AQ_ECANCELED, "call %d", i);
        cr_assert(strstr(o[i].text, "canceled after"), "%s", o[i].text);
    }
    cr_assert_eq(lent_released, 4);
    aq_rpc_peer_stats_get(peer_b(), &st);
    cr_assert_eq(st.queued, 0);
    cr_assert_eq(st.inflight, 0);
    cr_assert_eq(aq_rpc_peer_cancel_calls(peer_b()), 0);
    /* The peer is usable again, and nothing more comes of the ended calls. */
    N.drop_to[1] = false;
    cr_assert_eq(
        aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"ok", 2, NULL, NULL}, 5000000, done, &o[4]),
        0);
    flush();
    cr_assert_eq(o[4].n, 1);
    cr_assert_eq(o[4].err, 0);
    for (int i = 0; i < 20 && rfn_tick(&N); i++)
        flush();
    for (int i = 0; i < 4; i++)
        cr_assert_eq(o[i].n, 1, "call %d", i);
}

static int restarts;
static void on_restart(void *ud, aq_rpc_peer *p, uint64_t old_inc, uint64_t new_inc) {
    restarts++;
    cr_assert_eq(old_inc, 200);
    cr_assert_eq(new_inc, 201);
}

Test(rpc_core, restarted_peer_fails_old_calls) {
    outcome o1 = {0}, o2 = {0};
    restarts = 0;
    aq_rpc_on_restart(N.rpc[0], on_restart, NULL);
    aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){"a", 1, NULL, NULL}, 5000000, done, &o1);
    flush(); /* A now knows B's incarnation 200 */
    aq_rpc_call(N.rpc[0], peer_b(), 2, (aq_rpc_buf){"b", 1, NULL, NULL}, 5000000, done, &o2);
    flush(); /* running on B, held */
    cr_assert_eq(handled, 2);
    /* B restarts: a new core at the same address with incarnation 201. */
    aq_rpc_free(N.rpc[1]);
    aq_rpc_config c;
    aq_rpc_config_init(&c);
    c.cluster_id = CID;
    c.incarnation = 201;
    c.self = N.addr[1];
    cr_assert_eq(aq_rpc_new(&c, &rfn_io, &N.ep[1], &N.rpc[1]), 0);
    aq_rpc_handle(N.rpc[1], 1, h_echo, NULL);
    aq_rpc_handle(N.rpc[1], 2, h_echo, (void *)1);
    N.timer[1] = UINT64_MAX;
    handled = 0;
    while (o2.n == 0) {
        tick();
        flush();
    }
    /* The resend named incarnation 200: NACKed, never run by the new incarnation. */
    cr_assert_eq(o2.err, AQ_ERESTARTED);
    cr_assert_eq(handled, 0);
    cr_assert_eq(restarts, 1);
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_geq(st.dropped_stale, 1);
}

Test(rpc_core, hostile_datagrams_change_nothing) {
    aq_rpc *b = N.rpc[1];
    uint8_t junk[AQ_RPC_DGRAM_MAX];
    uint64_t s = 1;
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(s % sizeof junk);
        for (size_t k = 0; k < len; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            junk[k] = (uint8_t)(s >> 56);
        }
        aq_rpc_input_dgram(b, &N.addr[0], junk, len);
    }
    /* A valid packet from another cluster. */
    aq_rpc_hdr h = {
        .kind = AQ_RPC_K_CALL, .method = 1, .cluster_id = CID + 1, .src_inc = 5, .task = 1};
    aq_rpc_hdr_encode(&h, NULL, junk);
    aq_rpc_input_dgram(b, &N.addr[0], junk, AQ_RPC_HDR_LEN);
    aq_rpc_stats st;
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.dropped_malformed, 2000);
    cr_assert_eq(st.dropped_foreign, 1);
    cr_assert_eq(st.peers, 0);
    cr_assert_eq(handled, 0);
    cr_assert_eq(N.nq, 0);
}

/* Feed raw bytes to B as an accepted pipe. */
static void pipe_feed(uint64_t conn, const uint8_t *d, size_t len) {
    while (len) {
        uint8_t *buf;
        size_t n;
        aq_rpc_pipe_read_buf(N.rpc[1], conn, &buf, &n);
        cr_assert_gt(n, 0);
        if (n > len)
            n = len;
        memcpy(buf, d, n);
        aq_rpc_pipe_input(N.rpc[1], conn, n);
        d += n;
        len -= n;
    }
}

Test(rpc_core, pipe_frame_before_hello_is_cut_off) {
    uint8_t f[AQ_RPC_HDR_LEN + 4];
    aq_rpc_hdr h = {.kind = AQ_RPC_K_CALL,
                    .method = 1,
                    .cluster_id = CID,
                    .src_inc = 5,
                    .task = 1,
                    .msg_len = 4,
                    .frag_len = 4};
    aq_rpc_hdr_encode(&h, "abcd", f);
    memcpy(f + AQ_RPC_HDR_LEN, "abcd", 4);
    aq_rpc_pipe_accepted(N.rpc[1], 7, &N.addr[0]);
    pipe_feed(7, f, sizeof f);
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_eq(st.cutoffs, 1);
    cr_assert_eq(N.closes, 1);
    cr_assert_eq(handled, 0);
}

static size_t frame(uint8_t *out, uint8_t kind, uint64_t task, uint32_t msg_len, uint32_t off,
                    const void *frag, uint32_t flen) {
    return rfn_frame(out, CID, kind, task, msg_len, off, frag, flen);
}

Test(rpc_core, pipe_reassembles_fragments_and_bounds_claims) {
    static uint8_t msg[5000], f[AQ_RPC_HDR_LEN + 5000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    aq_rpc_pipe_accepted(N.rpc[1], 8, &N.addr[0]);
    uint8_t port[2] = {0x28, 0x23}; /* A's listen port 9000, little-endian */
    size_t n = frame(f, AQ_RPC_K_HELLO, 0, 2, 0, port, 2);
    pipe_feed(8, f, n);
    n = frame(f, AQ_RPC_K_CALL, 1, 5000, 0, msg, 3000);
    pipe_feed(8, f, n);
    cr_assert_eq(handled, 0);
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_eq(st.reassembly_bytes, 5000);
    n = frame(f, AQ_RPC_K_CALL, 1, 5000, 3000, msg + 3000, 2000);
    pipe_feed(8, f, n);
    cr_assert_eq(handled, 1);
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_eq(st.reassembly_bytes, 0);
    cr_assert_eq(st.cutoffs, 0);
    /* The reply (5000 B) goes back over B's own outbound pipe to A's address. */
    cr_assert_eq(N.opens, 1);
    /* A header claiming a 4 GiB message cuts the pipe off. */
    memset(f, 0, AQ_RPC_HDR_LEN);
    aq_rpc_hdr h = {.kind = AQ_RPC_K_CALL, .cluster_id = CID, .src_inc = 5, .task = 2};
    aq_rpc_hdr_encode(&h, NULL, f);
    for (int i = 0; i < 4; i++) {
        f[40 + i] = 0xff;
        f[48 + i] = 0xff;
    }
    pipe_feed(8, f, AQ_RPC_HDR_LEN);
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_eq(st.cutoffs, 1);
    cr_assert_eq(handled, 1);
}

/* A handler that takes the payload (as the node's PUT does, to keep it as a stored chunk): it must
 * be the message's bytes, in a buffer of its own that the handler frees (ASan: freed once). */
static int taken;
static const uint8_t *take_want;
static size_t take_len;

static void h_take(void *ud, aq_rpc_incoming *in) {
    (void)ud;
    size_t len = 0;
    uint8_t *p = aq_rpc_incoming_take(in, &len);
    cr_assert_eq(len, take_len);
    cr_assert(p && memcmp(p, take_want, len) == 0, "the taken payload is not the message");
    cr_assert_null(aq_rpc_incoming_data(in, NULL), "the payload is still the rpc's after take");
    free(p);
    taken++;
    aq_rpc_respond(in, 0, (aq_rpc_buf){0});
}

/* The pipe reader, fed a HELLO and a call of two fragments cut into two reads at every byte
 * boundary (each read then lent in pieces as the core asks), reassembles the call every time. */
Test(rpc_core, pipe_frame_cut_at_every_byte_reassembles) {
    static uint8_t msg[700], stream[3 * AQ_RPC_HDR_LEN + 2 + sizeof msg];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    aq_rpc_handle(N.rpc[1], 3, h_take, NULL);
    take_want = msg;
    take_len = sizeof msg;
    taken = 0;
    uint8_t port[2] = {0x28, 0x23};
    size_t total = 0;
    for (size_t cut = 1; cut < sizeof stream; cut++) {
        uint64_t task = cut;
        total = frame(stream, AQ_RPC_K_HELLO, 0, 2, 0, port, 2);
        total += frame(stream + total, AQ_RPC_K_CALL, task, sizeof msg, 0, msg, 500);
        total += frame(stream + total, AQ_RPC_K_CALL, task, sizeof msg, 500, msg + 500, 200);
        cr_assert_eq(total, sizeof stream);
        /* frame() names method 1: this call is for method 3. */
        for (size_t at = AQ_RPC_HDR_LEN + 2; at < total;) {
            aq_rpc_hdr h;
            cr_assert_eq(aq_rpc_hdr_decode(stream + at, &h), 0);
            h.method = 3;
            aq_rpc_hdr_encode(&h, stream + at + AQ_RPC_HDR_LEN, stream + at);
            at += AQ_RPC_HDR_LEN + h.frag_len;
        }
        uint64_t conn = 5000 + cut;
        aq_rpc_pipe_accepted(N.rpc[1], conn, &N.addr[0]);
        pipe_feed(conn, stream, cut);
        cr_assert_eq(taken, (int)cut - 1, "cut %zu: handled before its last byte", cut);
        pipe_feed(conn, stream + cut, total - cut);
        cr_assert_eq(taken, (int)cut, "cut %zu: not reassembled", cut);
        flush();
    }
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_eq(st.cutoffs, 0);
    cr_assert_eq(st.dropped_malformed, 0);
    cr_assert_eq(st.reassembly_bytes, 0);
}

/* Mutated and random pipe bytes after a valid HELLO: dropped or cut off, never run, never crash
 * (ASan watches the reads into lent buffers). */
Test(rpc_core, pipe_garbage_is_harmless) {
    static uint8_t f[AQ_RPC_HDR_LEN + 3000], msg[3000];
    uint64_t s = 7;
    uint8_t port[2] = {0x28, 0x23};
    for (uint64_t conn = 100; conn < 400; conn++) {
        aq_rpc_pipe_accepted(N.rpc[1], conn, &N.addr[0]);
        size_t n = frame(f, AQ_RPC_K_HELLO, 0, 2, 0, port, 2);
        pipe_feed(conn, f, n);
        for (int k = 0; k < 4; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t len = 1 + (uint32_t)((s >> 33) % 3000);
            n = frame(f, AQ_RPC_K_CALL, 1 + (s >> 40) % 5, len + (uint32_t)((s >> 20) % 2) * 100, 0,
                      msg, len);
            size_t at = (size_t)((s >> 13) % n);
            f[at] ^= (uint8_t)(1u + ((s >> 7) % 255));
            /* Feed in odd pieces; the core may cut the conn off at any point. */
            aq_rpc_stats st0, st1;
            aq_rpc_stats_get(N.rpc[1], &st0);
            size_t off = 0;
            while (off < n) {
                uint8_t *buf;
                size_t l;
                aq_rpc_pipe_read_buf(N.rpc[1], conn, &buf, &l);
                size_t m = 1 + (size_t)((s >> (off % 50)) % 700);
                if (m > l)
                    m = l;
                if (m > n - off)
                    m = n - off;
                memcpy(buf, f + off, m);
                aq_rpc_pipe_input(N.rpc[1], conn, m);
                off += m;
                aq_rpc_stats_get(N.rpc[1], &st1);
                if (st1.cutoffs != st0.cutoffs)
                    break;
            }
            if (st1.cutoffs != st0.cutoffs)
                break;
        }
    }
    cr_assert_eq(handled, 0);
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_gt(st.dropped_malformed + st.cutoffs, 0);
}

/* A call that ends while its message is half written still finishes the message on the pipe, so
 * the far side never holds half a message for the life of the connection. */
Test(rpc_core, half_sent_message_is_finished_after_its_call_ends) {
    outcome o = {0};
    static uint8_t big[1 << 20];
    N.drop_to[1] = true;
    cr_assert_eq(aq_rpc_call(N.rpc[0], peer_b(), 1, (aq_rpc_buf){big, sizeof big, NULL, NULL},
                             100000, done, &o),
                 0);
    cr_assert_eq(N.opens, 1);
    aq_rpc_pipe_connected(N.rpc[0], 1001);
    int first = N.nw; /* HELLO and the first fragments, up to the outstanding-writes bound */
    cr_assert_geq(first, 2);
    while (o.n == 0)
        tick();
    cr_assert_eq(o.err, AQ_ETIMEDOUT);
    /* Completing the writes lets the rest of the message out although its call is gone. */
    for (int k = 0; k < N.nw; k++)
        aq_rpc_pipe_written(N.rpc[0], 1001, N.w[k].tok, 0);
    size_t frags = (sizeof big + 256 * 1024 - 1) / (256 * 1024);
    cr_assert_eq(N.wbytes, (AQ_RPC_HDR_LEN + 2) + frags * AQ_RPC_HDR_LEN + sizeof big);
}

/* A call that would take the peer over its reassembly memory is answered BUSY, not dropped, and
 * its bytes are drained without being kept. */
Test(rpc_core, over_reassembly_memory_answers_busy) {
    static uint8_t msg[5000], f[AQ_RPC_HDR_LEN + 5000];
    aq_rpc_free(N.rpc[1]);
    aq_rpc_config c;
    aq_rpc_config_init(&c);
    c.cluster_id = CID;
    c.incarnation = 200;
    c.self = N.addr[1];
    c.reassembly_max = 4096;
    cr_assert_eq(aq_rpc_new(&c, &rfn_io, &N.ep[1], &N.rpc[1]), 0);
    aq_rpc_handle(N.rpc[1], 1, h_echo, NULL);
    aq_rpc_pipe_accepted(N.rpc[1], 9, &N.addr[0]);
    uint8_t port[2] = {0x28, 0x23};
    size_t n = frame(f, AQ_RPC_K_HELLO, 0, 2, 0, port, 2);
    pipe_feed(9, f, n);
    n = frame(f, AQ_RPC_K_CALL, 1, 5000, 0, msg, 5000);
    pipe_feed(9, f, n);
    cr_assert_eq(handled, 0);
    cr_assert_eq(N.nq, 1);
    aq_rpc_hdr h;
    const uint8_t *p;
    cr_assert_eq(aq_rpc_dgram_decode(N.q[0].d, N.q[0].len, &h, &p), 0);
    cr_assert_eq(h.kind, AQ_RPC_K_BUSY);
    cr_assert_eq(h.task, 1);
    cr_assert_gt(h.status, 0);
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    cr_assert_eq(st.reassembly_bytes, 0);
    cr_assert_eq(st.cutoffs, 0);
}

static void any_done(void *ud, const aq_rpc_result *r) {
    (*(int *)ud)++;
}

/* Well-formed but arbitrary packets (every kind, random tasks, incarnations flipping, odd
 * statuses) against an endpoint with calls in flight: state may change, but nothing crashes,
 * every call still ends exactly once, and everything is freed. */
Test(rpc_core, valid_but_arbitrary_packets) {
    aq_rpc *a = N.rpc[0];
    int outcomes = 0;
    aq_rpc_peer *p = peer_b();
    N.drop_to[1] = true;
    for (int i = 0; i < 3; i++) /* window 1 + queue 2 */
        cr_assert_eq(
            aq_rpc_call(a, p, 1, (aq_rpc_buf){"q", 1, NULL, NULL}, 1000000, any_done, &outcomes),
            0);
    uint64_t s = 99;
    uint8_t d[AQ_RPC_DGRAM_MAX];
    for (int i = 0; i < 20000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t len = (uint32_t)((s >> 20) % 200);
        if ((s >> 60) % 4 == 0)
            len = 8 * (uint32_t)((s >> 30) % 10); /* plausible ACKACK lists */
        uint8_t payload[200];
        for (uint32_t k = 0; k < len; k++)
            payload[k] = (uint8_t)((s >> (k % 56)) & 0x7);
        aq_rpc_hdr h = {.kind = (uint8_t)(1 + (s >> 8) % AQ_RPC_K_MAX),
                        .method = (uint16_t)((s >> 16) % 3),
                        .cluster_id = CID,
                        .src_inc = 200 + (s >> 24) % 3,
                        .dst_inc = (s >> 28) % 2 ? 100 : 0,
                        .task = (s >> 32) % 30,
                        .msg_len = len,
                        .frag_len = len,
                        .status = (int32_t)(s >> 33)};
        aq_rpc_hdr_encode(&h, payload, d);
        memcpy(d + AQ_RPC_HDR_LEN, payload, len);
        aq_rpc_input_dgram(a, &N.addr[1], d, AQ_RPC_HDR_LEN + len);
        if (i % 1000 == 0) {
            N.now += 50000;
            aq_rpc_timer_fired(a);
        }
        N.nq = 0;
    }
    aq_rpc_free(a);
    N.rpc[0] = NULL;
    cr_assert_eq(outcomes, 3);
}

Test(rpc_core, peers_by_address) {
    aq_rpc *a = N.rpc[0];
    static aq_rpc_peer *seen[4000];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 4000; i++) {
            char t[64];
            if (i % 2)
                snprintf(t, sizeof t, "10.0.%d.%d:%d", i / 256, i % 256, 7000 + i % 7);
            else
                snprintf(t, sizeof t, "[fd00::%x]:%d", i, 7000 + i % 5);
            aq_rpc_addr ad;
            cr_assert_eq(aq_rpc_addr_parse(t, &ad), 0, "%s", t);
            aq_rpc_peer *p = aq_rpc_peer_get(a, &ad);
            cr_assert_not_null(p);
            if (round == 0)
                seen[i] = p;
            else
                cr_assert_eq(p, seen[i], "%s", t);
            cr_assert(aq_rpc_addr_eq(aq_rpc_peer_addr(p), &ad));
        }
    aq_rpc_stats st;
    aq_rpc_stats_get(a, &st);
    cr_assert_eq(st.peers, 4000);
}

/* ---------- expiry of idle peers ---------- */

static aq_rpc_addr caller_addr(int i) {
    char t[64];
    snprintf(t, sizeof t, "10.9.%d.%d:%d", i / 250, i % 250 + 1, 40000 + i % 1000);
    aq_rpc_addr a;
    cr_assert_eq(aq_rpc_addr_parse(t, &a), 0);
    return a;
}

/* One datagram of kind from a made-up caller (incarnation inc) to B. */
static void to_b(int i, uint64_t inc, uint8_t kind, uint64_t task, const void *data, size_t len) {
    uint8_t d[AQ_RPC_DGRAM_MAX];
    aq_rpc_hdr h = {.version = AQ_RPC_WIRE_VERSION,
                    .kind = kind,
                    .method = 1,
                    .cluster_id = CID,
                    .src_inc = inc,
                    .task = task,
                    .msg_len = (uint32_t)len,
                    .frag_len = (uint32_t)len};
    aq_rpc_hdr_encode(&h, data, d);
    memcpy(d + AQ_RPC_HDR_LEN, data, len);
    aq_rpc_addr a = caller_addr(i);
    aq_rpc_input_dgram(N.rpc[1], &a, d, AQ_RPC_HDR_LEN + len);
}

/* What B last sent (the test net queues B's answers to strangers as if for endpoint 1). */
static aq_rpc_hdr last_from_b(void) {
    aq_rpc_hdr h = {0};
    const uint8_t *pl;
    cr_assert_gt(N.nq, 0, "B sent nothing");
    cr_assert_eq(aq_rpc_dgram_decode(N.q[N.nq - 1].d, N.q[N.nq - 1].len, &h, &pl), 0);
    return h;
}

/* Run B's timers (resends go nowhere) until virtual time `until`. */
static void run_b_until(uint64_t until) {
    while (N.timer[1] != UINT64_MAX && N.timer[1] <= until) {
        N.nq = 0;
        if (N.timer[1] > N.now)
            N.now = N.timer[1];
        N.timer[1] = UINT64_MAX;
        aq_rpc_timer_fired(N.rpc[1]);
    }
    N.now = until;
    N.nq = 0;
}

Test(rpc_core, transient_callers_expire) {
    aq_rpc *b = N.rpc[1];
    const uint64_t cache = 60000000; /* the default reply_cache_us */
    /* B's own peer for A is pinned: it must outlive every sweep. */
    aq_rpc_peer *pa = aq_rpc_peer_get(b, &N.addr[0]);
    cr_assert_not_null(pa);
    for (int i = 0; i < 1000; i++) {
        uint8_t v = (uint8_t)i;
        to_b(i, 5000 + (uint64_t)i, AQ_RPC_K_CALL, 1, &v, 1);
        aq_rpc_hdr r = last_from_b();
        cr_assert_eq(r.kind, AQ_RPC_K_REPLY);
        if (i % 2 == 0) { /* half acknowledge the reply, half vanish without a word */
            uint8_t ack[8] = {1};
            to_b(i, 5000 + (uint64_t)i, AQ_RPC_K_ACKACK, 0, ack, 8);
        }
        N.nq = 0;
        N.now += 1000;
    }
    cr_assert_eq(handled, 1000);
    aq_rpc_stats st;
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 1001);
    /* Unacknowledged replies are kept (and resent) for reply_cache_us; then the peers idle out. */
    uint64_t t0 = N.now;
    run_b_until(t0 + cache / 2);
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 1001, "a peer expired before reply_cache_us of silence");
    run_b_until(t0 + cache * 7 / 4);
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 1, "only the pinned peer stays");
    cr_assert_eq(st.peers_expired, 1000);
    cr_assert_eq(st.peers_retired, 1000);
    cr_assert_eq(aq_rpc_peer_get(b, &N.addr[0]), pa);

    /* A late duplicate from an expired caller's incarnation: answered as done, not run again. */
    uint8_t v = 7;
    to_b(7, 5007, AQ_RPC_K_CALL, 1, &v, 1);
    aq_rpc_hdr r = last_from_b();
    cr_assert_eq(r.kind, AQ_RPC_K_NACK);
    cr_assert_eq(r.status, AQ_ETIMEDOUT);
    cr_assert_eq(handled, 1000);
    /* The same incarnation with a new task goes on normally. */
    to_b(7, 5007, AQ_RPC_K_CALL, 2, &v, 1);
    cr_assert_eq(last_from_b().kind, AQ_RPC_K_REPLY);
    cr_assert_eq(handled, 1001);
    uint8_t ack[8] = {2};
    to_b(7, 5007, AQ_RPC_K_ACKACK, 0, ack, 8);
    N.nq = 0;

    /* Everything, the memory of retired incarnations too, is gone after another quiet while. */
    run_b_until(N.now + 3 * cache);
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 1);
    cr_assert_eq(st.peers_retired, 0);
    cr_assert_eq(N.timer[1], UINT64_MAX, "a sweep timer armed with nothing to sweep");
    /* Released, the last peer may go too. */
    aq_rpc_peer_release(pa);
    run_b_until(N.now + 3 * cache);
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 0);
}

Test(rpc_core, busy_peer_does_not_expire) {
    aq_rpc *b = N.rpc[1];
    /* A handler that has not answered keeps its caller's peer, however long it takes. */
    uint8_t v = 1;
    aq_rpc_hdr h = {.version = AQ_RPC_WIRE_VERSION,
                    .kind = AQ_RPC_K_CALL,
                    .method = 2, /* answered later */
                    .cluster_id = CID,
                    .src_inc = 42,
                    .task = 1,
                    .msg_len = 1,
                    .frag_len = 1};
    uint8_t d[AQ_RPC_HDR_LEN + 1];
    aq_rpc_hdr_encode(&h, &v, d);
    d[AQ_RPC_HDR_LEN] = v;
    aq_rpc_addr a = caller_addr(3);
    aq_rpc_input_dgram(b, &a, d, sizeof d);
    cr_assert_not_null(held);
    N.nq = 0;
    run_b_until(N.now + 10 * 60000000ull);
    aq_rpc_stats st;
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 1);
    cr_assert_eq(aq_rpc_incoming_peer(held), aq_rpc_peer_get(b, &a));
    aq_rpc_peer_release(aq_rpc_incoming_peer(held));
    aq_rpc_respond(held, 0, (aq_rpc_buf){0});
    held = NULL;
    N.nq = 0;
    run_b_until(N.now + 3 * 60000000ull);
    aq_rpc_stats_get(b, &st);
    cr_assert_eq(st.peers, 0);
}
