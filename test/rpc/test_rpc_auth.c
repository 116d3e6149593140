/* Authenticated and encrypted traffic in the core: with a cluster secret, only packets and frames
 * carrying a good MAC are acted on; MACed packets carry a packet counter instead of xxh3; with
 * encrypt, CALL and REPLY payloads are ciphertext on the wire and round trip through datagrams and
 * the pipe. Bit flips (with the checksum fixed up where there is one, as an attacker would), wrong
 * and missing secrets (also on the pipe), forged notices, forged notifies, replays and old
 * incarnations. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc.h"
#include "aq_rpc_auth.h"
#include "aq_rpc_wire.h"
#include "rpc_fake_net.h"

#define CID 91u

static const char SECRET[] = "0123456789abcdef0123456789abcdef-cluster";
static const char OTHER[] = "fedcba9876543210fedcba9876543210-cluster";

/* The network: see rpc_fake_net.h. */
static rfn_net N;
static void *taken[16];
static int ntaken;
static int handled, notified;
static bool enc[2]; /* config encrypt of each endpoint (made by make()) */

static void h_echo(void *ud, aq_rpc_incoming *in) {
    (void)ud;
    handled++;
    size_t len;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    aq_rpc_respond(in, 0, (aq_rpc_buf){d, len, NULL, NULL});
}

static void on_notify(void *ud, aq_rpc_peer *from, uint16_t method, const uint8_t *data,
                      size_t len) {
    (void)ud;
    (void)from;
    (void)method;
    (void)data;
    (void)len;
    notified++;
}

static void make(int i, const char *secret, uint64_t inc) {
    if (N.rpc[i])
        aq_rpc_free(N.rpc[i]);
    aq_rpc_config c;
    aq_rpc_config_init(&c);
    c.cluster_id = CID;
    c.incarnation = inc;
    c.self = N.addr[i];
    if (secret) {
        c.secret = secret;
        c.secret_len = strlen(secret);
        c.encrypt = enc[i];
    }
    cr_assert_eq(aq_rpc_new(&c, &rfn_io, &N.ep[i], &N.rpc[i]), 0);
    N.timer[i] = UINT64_MAX;
    aq_rpc_handle(N.rpc[i], 1, h_echo, NULL);
    aq_rpc_on_notify(N.rpc[i], on_notify, NULL);
    aq_rpc_method_name(N.rpc[i], 1, "ECHO");
}

/* A (0) and B (1) with the given secrets (NULL: none). Keeps the flags a test set before. */
static void pair(const char *sa, const char *sb) {
    for (int i = 0; i < 2; i++) {
        N.ep[i] = (rfn_ep){&N, i};
        char a[32];
        snprintf(a, sizeof a, "127.0.0.1:%d", 9100 + i);
        cr_assert_eq(aq_rpc_addr_parse(a, &N.addr[i]), 0);
    }
    if (!N.qmax)
        N.qmax = RFN_QMAX;
    make(0, sa, 100);
    make(1, sb, 200);
}

static void teardown(void) {
    rfn_free(&N);
    while (ntaken)
        free(taken[--ntaken]);
    handled = notified = 0;
    enc[0] = enc[1] = false;
}

TestSuite(rpc_auth, .fini = teardown);

static void deliver(const rfn_pkt *p) {
    rfn_deliver(&N, p);
}

static void pipe_feed_to(int to, uint64_t conn, const uint8_t *d, size_t len) {
    rfn_pipe_feed(&N, to, conn, d, len);
}

static void flush(void) {
    rfn_flush(&N);
}

/* Advance virtual time to the next timer, fire it and deliver what it sent. */
static void tick(void) {
    cr_assert(rfn_tick(&N), "no timer armed");
    flush();
}

typedef struct outcome {
    int n, err;
    char text[256];
    uint8_t *data; /* the reply, taken */
    size_t len;
} outcome;

static void done(void *ud, const aq_rpc_result *r) {
    outcome *o = ud;
    o->n++;
    o->err = r->err ? r->err : r->status;
    o->data = r->err ? NULL : aq_rpc_result_take(r, &o->len);
    if (o->data && ntaken < 16)
        taken[ntaken++] = o->data; /* freed by teardown */
    aq_rpc_result_describe(N.rpc[0], r, o->text, sizeof o->text);
}

static void call_b(outcome *o, const char *what, uint64_t timeout_us) {
    aq_rpc_peer *p = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    cr_assert_eq(aq_rpc_call(N.rpc[0], p, 1, (aq_rpc_buf){what, strlen(what), NULL, NULL},
                             timeout_us, done, o),
                 0);
}

static void run_until_done(outcome *o) {
    for (int k = 0; k < 100000 && !o->n; k++)
        tick();
    cr_assert_eq(o->n, 1);
}

static aq_rpc_stats stats(int i) {
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[i], &st);
    return st;
}

Test(rpc_auth, same_secret_works) {
    pair(SECRET, SECRET);
    cr_assert(aq_rpc_authenticated(N.rpc[0]));
    outcome o = {0};
    call_b(&o, "hello", 1000000);
    cr_assert_eq(N.nq, 1);
    cr_assert_eq(N.q[0].len, AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + 5, "a MAC after the header");
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0, "%s", o.text);
    cr_assert_eq(handled, 1);
    cr_assert_eq(stats(1).dropped_auth, 0);
    cr_assert_eq(stats(0).dropped_auth, 0);
}

Test(rpc_auth, short_secret_refused) {
    pair(NULL, NULL);
    aq_rpc_config c;
    aq_rpc_config_init(&c);
    c.cluster_id = CID;
    c.secret = "too short";
    c.secret_len = 9;
    aq_rpc *r = NULL;
    cr_assert_eq(aq_rpc_new(&c, &rfn_io, &N.ep[0], &r), AQ_EINVAL);
    cr_assert_null(r);
}

/* Every single-bit flip of a genuine CALL datagram, checksum recomputed: none is acted on. */
Test(rpc_auth, every_bit_flip_of_a_datagram_is_dropped) {
    pair(SECRET, SECRET);
    outcome o = {0};
    call_b(&o, "flip me", 1000000);
    cr_assert_eq(N.nq, 1);
    rfn_pkt genuine = N.q[0];
    N.nq = 0;
    size_t bits = genuine.len * 8;
    for (size_t b = 0; b < bits; b++) {
        rfn_pkt p = genuine;
        p.d[b / 8] ^= (uint8_t)(1u << (b % 8)); /* no checksum to fix: a MACed packet has none */
        deliver(&p);
        /* B may only answer with an AUTH notice, which carries no MAC. */
        for (int k = 0; k < N.nq; k++)
            cr_assert_eq(N.q[k].d[3], AQ_RPC_K_AUTH, "bit %zu: B acted on a forged packet", b);
        N.nq = 0;
    }
    aq_rpc_stats st = stats(1);
    cr_assert_eq(handled, 0);
    cr_assert_eq(st.dropped_auth + st.dropped_malformed + st.dropped_foreign, bits);
    cr_assert_gt(st.dropped_auth, bits / 2, "most flips pass the checksum and fail the MAC");
    /* The genuine packet still works, and replaying it runs nothing again. */
    deliver(&genuine);
    flush();
    cr_assert_eq(handled, 1);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0);
    for (int k = 0; k < 5; k++) {
        deliver(&genuine);
        flush();
    }
    cr_assert_eq(handled, 1);
}

Test(rpc_auth, wrong_secret_fails_with_eauth_at_deadline) {
    pair(OTHER, SECRET);
    outcome o = {0};
    call_b(&o, "x", 500000);
    flush();
    cr_assert_eq(o.n, 0, "a notice alone must not end a call made with a secret");
    cr_assert_eq(stats(1).dropped_auth, 1);
    run_until_done(&o);
    cr_assert_eq(o.err, AQ_EAUTH, "%s", o.text);
    cr_assert(strstr(o.text, "authentication failed"), "%s", o.text);
    cr_assert(strstr(o.text, "127.0.0.1:9101"), "%s", o.text);
    cr_assert_eq(handled, 0);
}

Test(rpc_auth, no_secret_fails_at_once) {
    pair(NULL, SECRET);
    cr_assert_not(aq_rpc_authenticated(N.rpc[0]));
    outcome o = {0};
    call_b(&o, "x", 5000000);
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, AQ_EAUTH, "%s", o.text);
    cr_assert_eq(handled, 0);
    cr_assert_eq(stats(1).dropped_auth, 1);
}

Test(rpc_auth, node_without_secret_refuses_macs) {
    pair(SECRET, NULL);
    outcome o = {0};
    call_b(&o, "x", 500000);
    run_until_done(&o);
    cr_assert_eq(o.err, AQ_EAUTH, "%s", o.text);
    cr_assert_eq(handled, 0);
    cr_assert_gt(stats(1).dropped_auth, 0);
}

/* A forged AUTH notice (right address, our incarnation, any fingerprint) does not end a call. */
Test(rpc_auth, forged_notice_is_ignored_with_a_secret) {
    pair(SECRET, SECRET);
    outcome o = {0};
    call_b(&o, "x", 1000000);
    uint8_t fp[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    aq_rpc_hdr h = {.kind = AQ_RPC_K_AUTH,
                    .method = 1,
                    .cluster_id = CID,
                    .src_inc = 200,
                    .dst_inc = 100,
                    .task = 1,
                    .msg_len = 8,
                    .frag_len = 8};
    uint8_t d[AQ_RPC_HDR_LEN + 8];
    aq_rpc_hdr_encode(&h, fp, d);
    memcpy(d + AQ_RPC_HDR_LEN, fp, 8);
    aq_rpc_input_dgram(N.rpc[0], &N.addr[1], d, sizeof d);
    cr_assert_eq(o.n, 0);
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0, "%s", o.text);
}

/* Notices are rate-limited: a flood of bad packets gets at most a burst of answers. */
Test(rpc_auth, notices_are_rate_limited) {
    pair(NULL, SECRET);
    aq_rpc_hdr h = {.kind = AQ_RPC_K_CALL,
                    .method = 1,
                    .cluster_id = CID,
                    .src_inc = 7,
                    .task = 1,
                    .msg_len = 0};
    uint8_t d[AQ_RPC_HDR_LEN];
    aq_rpc_hdr_encode(&h, NULL, d);
    for (int k = 0; k < 1000; k++)
        aq_rpc_input_dgram(N.rpc[1], &N.addr[0], d, sizeof d);
    cr_assert_leq(N.nq, 20);
    cr_assert_gt(N.nq, 0);
    cr_assert_eq(stats(1).dropped_auth, 1000);
    cr_assert_eq(stats(1).peers, 0, "a refused packet creates no peer");
}

/* Forged heartbeats (notifies without a MAC, or with a MAC under another key) reach no one. */
Test(rpc_auth, forged_notify_is_dropped) {
    pair(SECRET, SECRET);
    aq_rpc_peer *pb = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    cr_assert_eq(aq_rpc_notify(N.rpc[0], pb, 9, "hb", 2), 0);
    rfn_pkt genuine = N.q[0];
    N.nq = 0;
    aq_rpc_hdr h = {.kind = AQ_RPC_K_NOTIFY,
                    .method = 9,
                    .cluster_id = CID,
                    .src_inc = 100,
                    .msg_len = 2,
                    .frag_len = 2};
    uint8_t d[AQ_RPC_HDR_LEN + 2];
    aq_rpc_hdr_encode(&h, "hb", d);
    memcpy(d + AQ_RPC_HDR_LEN, "hb", 2);
    aq_rpc_input_dgram(N.rpc[1], &N.addr[0], d, sizeof d);
    /* Signed with another key. */
    aq_rpc_auth other;
    cr_assert_eq(aq_rpc_auth_init(&other, OTHER, strlen(OTHER), CID), 0);
    uint8_t m[AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + 2];
    h.flags = AQ_RPC_FLAG_MAC;
    aq_rpc_hdr_encode(&h, "hb", m);
    aq_rpc_auth_tag(&other, m, "hb", 2, m + AQ_RPC_HDR_LEN);
    memcpy(m + AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN, "hb", 2);
    aq_rpc_input_dgram(N.rpc[1], &N.addr[0], m, sizeof m);
    aq_rpc_auth_wipe(&other);
    cr_assert_eq(notified, 0);
    cr_assert_eq(stats(1).dropped_auth, 2);
    cr_assert_eq(stats(1).peers, 0);
    deliver(&genuine);
    cr_assert_eq(notified, 1);
}

/* A captured genuine CALL of an incarnation that has since restarted is dropped as stale. */
Test(rpc_auth, old_incarnation_replay_is_dropped) {
    pair(SECRET, SECRET);
    outcome o = {0};
    call_b(&o, "first life", 1000000);
    rfn_pkt old = N.q[0];
    flush();
    cr_assert_eq(handled, 1);
    make(0, SECRET, 101); /* A restarts */
    outcome o2 = {0};
    call_b(&o2, "second life", 1000000);
    flush();
    cr_assert_eq(o2.err, 0);
    cr_assert_eq(handled, 2);
    uint64_t stale = stats(1).dropped_stale;
    deliver(&old);
    flush();
    cr_assert_eq(handled, 2);
    cr_assert_eq(stats(1).dropped_stale, stale + 1);
}

/* ---------- pipe frames ---------- */

static void pipe_feed(uint64_t conn, const uint8_t *d, size_t len) {
    pipe_feed_to(1, conn, d, len);
}

/* A frame as an endpoint with key `a` sends it: header, MAC, fragment. */
static size_t mframe(const aq_rpc_auth *a, uint8_t *out, uint8_t kind, uint64_t task,
                     const void *frag, uint32_t flen) {
    aq_rpc_hdr h = {.kind = kind,
                    .flags = AQ_RPC_FLAG_MAC,
                    .method = 1,
                    .cluster_id = CID,
                    .src_inc = 100,
                    .task = task,
                    .msg_len = flen,
                    .frag_len = flen};
    aq_rpc_hdr_encode(&h, frag, out);
    aq_rpc_auth_tag(a, out, frag, flen, out + AQ_RPC_HDR_LEN);
    memcpy(out + AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN, frag, flen);
    return AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + flen;
}

Test(rpc_auth, every_bit_flip_of_a_pipe_frame_is_dropped) {
    pair(SECRET, SECRET);
    aq_rpc_auth key;
    cr_assert_eq(aq_rpc_auth_init(&key, SECRET, strlen(SECRET), CID), 0);
    static uint8_t msg[3000], hello[128], f[AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + 3000], g[sizeof f];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7);
    uint8_t port[2] = {0x8c, 0x23}; /* A's port 9100 */
    size_t hn = mframe(&key, hello, AQ_RPC_K_HELLO, 0, port, 2);
    size_t n = mframe(&key, f, AQ_RPC_K_CALL, 1, msg, sizeof msg);
    /* Flip every bit of the header and MAC, and a spread of the payload's (every 8th byte's). */
    uint64_t conn = 100;
    size_t tried = 0;
    for (size_t b = 0; b < n * 8; b++) {
        size_t byte = b / 8;
        if (byte >= AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN && byte % 8)
            continue;
        memcpy(g, f, n);
        g[byte] ^= (uint8_t)(1u << (b % 8));
        aq_rpc_pipe_accepted(N.rpc[1], ++conn, &N.addr[0]);
        pipe_feed(conn, hello, hn);
        pipe_feed(conn, g, n);
        aq_rpc_pipe_closed(N.rpc[1], conn, 0); /* harmless if it was cut off */
        tried++;
        cr_assert_eq(handled, 0, "byte %zu bit %zu: B acted on a forged frame", byte, b % 8);
        N.nq = 0;
    }
    aq_rpc_stats st = stats(1);
    cr_assert_gt(st.dropped_auth, tried / 2);
    cr_assert_eq(st.reassembly_bytes, 0);
    /* The genuine frame is accepted, and its replay on another connection is a duplicate. */
    for (int k = 0; k < 3; k++) {
        aq_rpc_pipe_accepted(N.rpc[1], ++conn, &N.addr[0]);
        pipe_feed(conn, hello, hn);
        pipe_feed(conn, f, n);
    }
    cr_assert_eq(handled, 1);
    aq_rpc_auth_wipe(&key);
}

/* Frames whose MACs check and one that fails, all in one read: the ones before it are acted on,
 * the pipe is cut off at it, and nothing after it is acted on. */
Test(rpc_auth, a_forged_frame_in_one_read_cuts_off_there) {
    pair(SECRET, SECRET);
    aq_rpc_auth key;
    cr_assert_eq(aq_rpc_auth_init(&key, SECRET, strlen(SECRET), CID), 0);
    static uint8_t s[16384], msg[1500];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 11);
    uint8_t port[2] = {0x8c, 0x23}; /* A's port 9100 */
    size_t n = mframe(&key, s, AQ_RPC_K_HELLO, 0, port, 2);
    for (uint64_t task = 1; task <= 7; task++) {
        size_t at = n;
        n += mframe(&key, s + n, AQ_RPC_K_CALL, task, msg, sizeof msg);
        if (task == 4)
            s[at + AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + 100] ^= 1; /* the payload: the MAC fails */
    }
    aq_rpc_pipe_accepted(N.rpc[1], 77, &N.addr[0]);
    uint8_t *buf;
    size_t lent;
    aq_rpc_pipe_read_buf(N.rpc[1], 77, &buf, &lent);
    cr_assert_geq(lent, n, "lent %zu bytes: the test needs all %zu in one read", lent, n);
    memcpy(buf, s, n);
    aq_rpc_pipe_input(N.rpc[1], 77, n);
    cr_assert_eq(handled, 3, "%d calls acted on, want the 3 before the forged frame", handled);
    aq_rpc_stats st = stats(1);
    cr_assert_eq(st.cutoffs, 1);
    cr_assert_geq(st.dropped_auth, 1);
    aq_rpc_auth_wipe(&key);
}

/* A pipe without MACs: its HELLO is refused (no peer), the next header is answered with an AUTH
 * notice naming that frame's task, over UDP to the port the HELLO claimed, and the pipe is cut. */
Test(rpc_auth, pipe_without_mac_is_answered_and_cut_off) {
    pair(NULL, SECRET);
    uint8_t f[AQ_RPC_HDR_LEN + 2];
    uint8_t port[2] = {0x8c, 0x23};
    aq_rpc_hdr h = {
        .kind = AQ_RPC_K_HELLO, .cluster_id = CID, .src_inc = 5, .msg_len = 2, .frag_len = 2};
    aq_rpc_hdr_encode(&h, port, f);
    memcpy(f + AQ_RPC_HDR_LEN, port, 2);
    aq_rpc_pipe_accepted(N.rpc[1], 9, &N.addr[0]);
    pipe_feed(9, f, sizeof f);
    aq_rpc_stats st = stats(1);
    cr_assert_eq(st.cutoffs, 0);
    cr_assert_eq(st.dropped_auth, 1);
    cr_assert_eq(st.peers, 0);
    cr_assert_eq(N.nq, 0);
    uint8_t call[AQ_RPC_HDR_LEN];
    aq_rpc_hdr c = {.kind = AQ_RPC_K_CALL,
                    .method = 1,
                    .cluster_id = CID,
                    .src_inc = 5,
                    .task = 7,
                    .msg_len = 3000,
                    .frag_len = 3000};
    aq_rpc_hdr_encode(&c, NULL, call);
    pipe_feed(9, call, sizeof call);
    st = stats(1);
    cr_assert_eq(st.cutoffs, 1);
    cr_assert_eq(st.dropped_auth, 2);
    cr_assert_eq(st.peers, 0);
    cr_assert_eq(N.nq, 1);
    aq_rpc_hdr n;
    const uint8_t *pl;
    cr_assert_eq(aq_rpc_dgram_decode(N.q[0].d, N.q[0].len, &n, &pl), 0);
    cr_assert_eq(N.q[0].to, 0, "the notice goes to the HELLO's address and port");
    cr_assert_eq(n.kind, AQ_RPC_K_AUTH);
    cr_assert_eq(n.task, 7);
    cr_assert_eq(n.dst_inc, 5);
}

/* A genuine CALL replayed from another address (any port will do for an attacker) must not run
 * again: the incarnation already talks to us from the first address. */
Test(rpc_auth, replay_from_another_address_is_dropped) {
    pair(SECRET, SECRET);
    outcome o = {0};
    call_b(&o, "once", 1000000);
    rfn_pkt genuine = N.q[0];
    flush();
    cr_assert_eq(handled, 1);
    rfn_pkt moved = genuine;
    cr_assert_eq(aq_rpc_addr_parse("127.0.0.1:9999", &moved.from), 0);
    deliver(&moved);
    cr_assert_eq(handled, 1);
    cr_assert_eq(stats(1).dropped_stale, 1);
    cr_assert_eq(N.nq, 0, "nothing answered to the other address");
}

/* ---------- packet counters and encryption ---------- */

static uint64_t get64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Recognisable anywhere in a payload filled with it. */
static const char MARK[] = "aquifer-plaintext-marker";

static void fill_pattern(uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)MARK[i % (sizeof MARK - 1)];
}

static bool has_mark(const uint8_t *d, size_t n) {
    return memmem(d, n, MARK, sizeof MARK - 1) != NULL;
}

static void call_b_buf(outcome *o, const uint8_t *d, size_t len, uint64_t timeout_us) {
    aq_rpc_peer *p = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    cr_assert_eq(aq_rpc_call(N.rpc[0], p, 1, (aq_rpc_buf){d, len, NULL, NULL}, timeout_us, done, o),
                 0);
}

/* With a MAC the checksum field is the sender's packet counter: 1, 2, 3, ... for every packet,
 * a retransmit of the same call included, and never the xxh3 of the packet. */
Test(rpc_auth, maced_packets_carry_a_counter_not_xxh3) {
    pair(SECRET, SECRET);
    outcome o[2] = {{0}, {0}};
    call_b(&o[0], "one", 5000000);
    call_b(&o[1], "two", 5000000);
    aq_rpc_peer *pb = aq_rpc_peer_get(N.rpc[0], &N.addr[1]);
    cr_assert_eq(aq_rpc_notify(N.rpc[0], pb, 9, "hb", 2), 0);
    cr_assert_eq(N.nq, 3);
    for (int k = 0; k < 10 && N.nq < 5; k++) { /* nothing delivered: the calls go again */
        N.now = N.timer[0];
        aq_rpc_timer_fired(N.rpc[0]);
    }
    cr_assert_geq(N.nq, 5, "no retransmit");
    rfn_pkt sent[8];
    int ns = N.nq < 8 ? N.nq : 8;
    memcpy(sent, N.q, (size_t)ns * sizeof sent[0]);
    for (int k = 0; k < ns; k++) {
        const uint8_t *d = sent[k].d;
        cr_assert(d[4] & AQ_RPC_FLAG_MAC);
        uint64_t field = get64le(d + 56);
        cr_assert_eq(field, (uint64_t)k + 1, "packet %d carries counter %llu", k,
                     (unsigned long long)field);
        size_t flen = sent[k].len - AQ_RPC_HDR_LEN - AQ_RPC_MAC_LEN;
        cr_assert_neq(field, aq_rpc_hdr_checksum(d, d + AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN, flen));
    }
    /* The resend of call 1 repeats its bytes under a new counter and a different tag. */
    cr_assert_eq(get64le(sent[3].d + 32), get64le(sent[0].d + 32), "same task");
    cr_assert_eq(memcmp(sent[3].d + 80, sent[0].d + 80, 3), 0);
    cr_assert_neq(memcmp(sent[3].d + 64, sent[0].d + 64, 16), 0, "a new tag");
    flush();
    cr_assert_eq(o[0].n + o[1].n, 2);
    cr_assert_eq(o[0].err, 0, "%s", o[0].text);
    cr_assert_eq(o[1].err, 0, "%s", o[1].text);
    cr_assert_eq(handled, 2, "the resends ran nothing twice");
}

Test(rpc_auth, encrypt_needs_a_secret) {
    pair(NULL, NULL);
    aq_rpc_config c;
    aq_rpc_config_init(&c);
    c.cluster_id = CID;
    c.encrypt = true;
    aq_rpc *r = NULL;
    cr_assert_eq(aq_rpc_new(&c, &rfn_io, &N.ep[0], &r), AQ_EINVAL);
    cr_assert_null(r);
    cr_assert_not(aq_rpc_encrypted(N.rpc[0]));
}

/* Both encrypt: the CALL and the REPLY datagram carry ciphertext (no trace of the recognisable
 * payload), the handler sees the plain text, and the caller gets it back. */
Test(rpc_auth, encrypted_datagram_round_trip) {
    enc[0] = enc[1] = true;
    pair(SECRET, SECRET);
    cr_assert(aq_rpc_encrypted(N.rpc[0]));
    uint8_t msg[600];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 1000000);
    cr_assert_eq(N.nq, 1);
    rfn_pkt c = N.q[0];
    N.nq = 0;
    cr_assert_eq(c.len, AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + sizeof msg);
    cr_assert_eq(c.d[4], AQ_RPC_FLAG_MAC | AQ_RPC_FLAG_ENC);
    cr_assert_not(has_mark(c.d, c.len), "plain text on the wire");
    deliver(&c);
    cr_assert_eq(handled, 1);
    cr_assert_eq(N.nq, 1);
    rfn_pkt r = N.q[0];
    cr_assert_eq(r.d[3], AQ_RPC_K_REPLY);
    cr_assert_eq(r.d[4], AQ_RPC_FLAG_MAC | AQ_RPC_FLAG_ENC);
    cr_assert_not(has_mark(r.d, r.len), "plain text in the reply");
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0, "%s", o.text);
    cr_assert_eq(o.len, sizeof msg);
    cr_assert_eq(memcmp(o.data, msg, sizeof msg), 0);
}

/* Each side encrypts what it sends per its own setting. */
Test(rpc_auth, only_the_encrypting_side_sends_ciphertext) {
    enc[0] = true;
    pair(SECRET, SECRET);
    uint8_t msg[200];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 1000000);
    rfn_pkt c = N.q[0];
    N.nq = 0;
    cr_assert_eq(c.d[4], AQ_RPC_FLAG_MAC | AQ_RPC_FLAG_ENC);
    deliver(&c);
    rfn_pkt r = N.q[0];
    cr_assert_eq(r.d[4], AQ_RPC_FLAG_MAC, "B does not encrypt");
    cr_assert(has_mark(r.d, r.len));
    flush();
    cr_assert_eq(o.err, 0, "%s", o.text);
    cr_assert_eq(memcmp(o.data, msg, sizeof msg), 0);
}

/* Every single-bit flip of a genuine encrypted CALL: none is acted on, every one is counted. */
Test(rpc_auth, every_bit_flip_of_an_encrypted_datagram_is_dropped) {
    enc[0] = enc[1] = true;
    pair(SECRET, SECRET);
    uint8_t msg[300];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 1000000);
    rfn_pkt genuine = N.q[0];
    N.nq = 0;
    size_t bits = genuine.len * 8;
    for (size_t b = 0; b < bits; b++) {
        rfn_pkt p = genuine;
        p.d[b / 8] ^= (uint8_t)(1u << (b % 8));
        deliver(&p);
        for (int k = 0; k < N.nq; k++)
            cr_assert_eq(N.q[k].d[3], AQ_RPC_K_AUTH, "bit %zu: B acted on a forged packet", b);
        N.nq = 0;
    }
    aq_rpc_stats st = stats(1);
    cr_assert_eq(handled, 0);
    cr_assert_eq(st.dropped_auth + st.dropped_malformed + st.dropped_foreign, bits);
    cr_assert_gt(st.dropped_auth, bits / 2);
    deliver(&genuine);
    flush();
    cr_assert_eq(handled, 1);
    cr_assert_eq(o.err, 0, "%s", o.text);
    cr_assert_eq(memcmp(o.data, msg, sizeof msg), 0);
}

/* Walk the frames one endpoint wrote on its pipe: every CALL or REPLY fragment is encrypted, the
 * counters only grow. Returns the number of CALL/REPLY fragments. */
static size_t check_frames(const uint8_t *d, size_t n) {
    size_t off = 0, frags = 0;
    uint64_t last = 0;
    while (off < n) {
        aq_rpc_hdr h;
        cr_assert_geq(n - off, AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN);
        cr_assert_eq(aq_rpc_hdr_decode(d + off, &h), 0, "frame at %zu", off);
        cr_assert(h.flags & AQ_RPC_FLAG_MAC);
        cr_assert_gt(h.checksum, last, "counters grow");
        last = h.checksum;
        if (h.kind == AQ_RPC_K_CALL || h.kind == AQ_RPC_K_REPLY) {
            cr_assert(h.flags & AQ_RPC_FLAG_ENC, "fragment at %zu not encrypted", off);
            frags++;
        }
        off += AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + h.frag_len;
    }
    cr_assert_eq(off, n);
    return frags;
}

/* A 4 MiB + 1000 B call and its echo over the pipe, both encrypted: no plain text in any byte
 * either side wrote, every fragment flagged, the bytes come back intact. */
Test(rpc_auth, encrypted_pipe_round_trip, .timeout = 60) {
    enc[0] = enc[1] = true;
    pair(SECRET, SECRET);
    N.pipes = true;
    size_t len = (4u << 20) + 1000;
    N.capmax = len + (1u << 20);
    uint8_t *msg = malloc(len);
    N.cap[0] = malloc(N.capmax);
    N.cap[1] = malloc(N.capmax);
    cr_assert(msg && N.cap[0] && N.cap[1]);
    fill_pattern(msg, len);
    outcome o = {0};
    call_b_buf(&o, msg, len, 30000000);
    flush();
    for (int k = 0; k < 1000 && !o.n; k++)
        tick();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, 0, "%s", o.text);
    cr_assert_eq(handled, 1);
    cr_assert_eq(o.len, len);
    cr_assert_eq(memcmp(o.data, msg, len), 0, "the echo differs");
    cr_assert_gt(N.ncap[0], len);
    cr_assert_gt(N.ncap[1], len);
    cr_assert_not(has_mark(N.cap[0], N.ncap[0]), "plain text in the CALL's frames");
    cr_assert_not(has_mark(N.cap[1], N.ncap[1]), "plain text in the REPLY's frames");
    cr_assert_geq(check_frames(N.cap[0], N.ncap[0]), len / (256 * 1024));
    cr_assert_geq(check_frames(N.cap[1], N.ncap[1]), len / (256 * 1024));
    cr_assert_eq(stats(1).reassembly_bytes, 0);
    free(msg);
}

/* Every single-bit flip of a captured encrypted frame (all header and tag bits, every bit of every
 * 8th payload byte) is dropped and counted, on a fresh connection after a genuine HELLO. */
Test(rpc_auth, every_bit_flip_of_an_encrypted_pipe_frame_is_dropped, .timeout = 60) {
    enc[0] = true;
    pair(SECRET, SECRET);
    static uint8_t msg[3000], g[AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + sizeof msg];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 1000000);
    cr_assert_eq(N.npc, 1, "a 3000 B call goes over the pipe");
    aq_rpc_pipe_connected(N.rpc[0], N.pc[0].id);
    cr_assert_eq(N.nw, 2, "HELLO and one fragment");
    const rfn_write *hello = &N.w[0], *f = &N.w[1];
    cr_assert_eq(f->len, sizeof g);
    cr_assert_eq(f->d[4], AQ_RPC_FLAG_MAC | AQ_RPC_FLAG_ENC);
    cr_assert_not(has_mark(f->d, f->len));
    uint64_t conn = 100;
    for (size_t b = 0; b < f->len * 8; b++) {
        size_t byte = b / 8;
        if (byte >= AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN && byte % 8)
            continue;
        memcpy(g, f->d, f->len);
        g[byte] ^= (uint8_t)(1u << (b % 8));
        aq_rpc_stats b0 = stats(1);
        aq_rpc_pipe_accepted(N.rpc[1], ++conn, &N.addr[0]);
        pipe_feed(conn, hello->d, hello->len);
        pipe_feed(conn, g, f->len);
        aq_rpc_pipe_closed(N.rpc[1], conn, 0); /* harmless if it was cut off */
        aq_rpc_stats b1 = stats(1);
        cr_assert_gt(b1.dropped_auth + b1.dropped_malformed + b1.dropped_foreign,
                     b0.dropped_auth + b0.dropped_malformed + b0.dropped_foreign,
                     "byte %zu bit %zu: not counted", byte, b % 8);
        cr_assert_eq(handled, 0, "byte %zu bit %zu: B acted on a forged frame", byte, b % 8);
        N.nq = 0;
    }
    cr_assert_eq(stats(1).reassembly_bytes, 0);
    aq_rpc_pipe_accepted(N.rpc[1], ++conn, &N.addr[0]);
    pipe_feed(conn, hello->d, hello->len);
    pipe_feed(conn, f->d, f->len);
    cr_assert_eq(handled, 1, "the genuine frame is acted on");
    aq_rpc_free(N.rpc[0]); /* A's call ends (AQ_ECLOSED) while o is alive */
    N.rpc[0] = NULL;
    cr_assert_eq(o.n, 1);
}

/* A command without the secret whose first call is big (so its first packets are a pipe HELLO and
 * frame) learns at once that authentication failed, instead of timing out. */
Test(rpc_auth, big_first_call_without_secret_fails_with_eauth_at_once) {
    pair(NULL, SECRET);
    N.pipes = true;
    static uint8_t msg[3000];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 5000000);
    flush();
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.err, AQ_EAUTH, "%s", o.text);
    cr_assert(strstr(o.text, "authentication failed"), "%s", o.text);
    cr_assert(strstr(o.text, "127.0.0.1:9101"), "%s", o.text);
    cr_assert_eq(handled, 0);
    aq_rpc_stats st = stats(1);
    cr_assert_eq(st.dropped_auth, 2, "the HELLO and the CALL header");
    cr_assert_eq(st.cutoffs, 1);
    cr_assert_eq(st.peers, 0);
}

/* The same with another secret: the notice carries a fingerprint that is not ours, so the call
 * ends at its deadline, as AQ_EAUTH rather than a timeout. */
Test(rpc_auth, big_first_call_with_wrong_secret_fails_with_eauth) {
    pair(OTHER, SECRET);
    N.pipes = true;
    static uint8_t msg[3000];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 500000);
    flush();
    cr_assert_eq(o.n, 0, "a notice alone must not end a call made with a secret");
    run_until_done(&o);
    cr_assert_eq(o.err, AQ_EAUTH, "%s", o.text);
    cr_assert_eq(handled, 0);
    cr_assert_geq(stats(1).dropped_auth, 2);
}

/* A caller with a secret, a callee without: the refused pipe is answered too (zero fingerprint),
 * and the call ends in AQ_EAUTH at its deadline. */
Test(rpc_auth, big_first_call_to_a_node_without_secret_fails_with_eauth) {
    pair(SECRET, NULL);
    N.pipes = true;
    static uint8_t msg[3000];
    fill_pattern(msg, sizeof msg);
    outcome o = {0};
    call_b_buf(&o, msg, sizeof msg, 500000);
    run_until_done(&o);
    cr_assert_eq(o.err, AQ_EAUTH, "%s", o.text);
    cr_assert_eq(handled, 0);
    cr_assert_geq(stats(1).dropped_auth, 2);
}

/* From AQ_RPC_POLY_BIG bytes on the tag comes from libcrypto's Poly1305: it must be the very tag
 * libsodium computes (the same function; nodes of either kind agree), at the switch and far past
 * it, and one flipped byte anywhere must fail the check. */
Test(rpc_auth, libcrypto_and_libsodium_poly1305_give_the_same_tag) {
    aq_rpc_auth a;
    cr_assert_eq(aq_rpc_auth_init(&a, SECRET, strlen(SECRET), CID), 0);
    cr_assert_not_null(a.poly, "libcrypto has no Poly1305: the fast path is off");
    static uint8_t frag[300000];
    randombytes_buf(frag, sizeof frag);
    size_t lens[] = {
        0,     1,      100,        AQ_RPC_POLY_BIG - 1, AQ_RPC_POLY_BIG, AQ_RPC_POLY_BIG + 1,
        65537, 262144, sizeof frag};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        aq_rpc_hdr h = {.version = AQ_RPC_WIRE_VERSION,
                        .kind = AQ_RPC_K_CALL,
                        .flags = AQ_RPC_FLAG_MAC,
                        .cluster_id = CID,
                        .src_inc = 7,
                        .task = i + 1,
                        .msg_len = (uint32_t)lens[i],
                        .frag_len = (uint32_t)lens[i]};
        uint8_t hb[AQ_RPC_HDR_LEN], tag[AQ_RPC_TAG_LEN], want[AQ_RPC_TAG_LEN], otk[32];
        aq_rpc_hdr_encode(&h, frag, hb);
        aq_rpc_auth_tag(&a, hb, frag, lens[i], tag);
        crypto_generichash(otk, sizeof otk, hb, sizeof hb, a.key, sizeof a.key);
        crypto_onetimeauth_state st;
        crypto_onetimeauth_init(&st, otk);
        crypto_onetimeauth_update(&st, hb, sizeof hb);
        crypto_onetimeauth_update(&st, frag, lens[i]);
        crypto_onetimeauth_final(&st, want);
        cr_assert(memcmp(tag, want, sizeof tag) == 0, "length %zu: tags differ", lens[i]);
        cr_assert(aq_rpc_auth_verify(&a, hb, frag, lens[i], tag), "length %zu", lens[i]);
        if (lens[i]) {
            frag[lens[i] / 2] ^= 0x10;
            cr_assert(!aq_rpc_auth_verify(&a, hb, frag, lens[i], tag), "length %zu", lens[i]);
            frag[lens[i] / 2] ^= 0x10;
        }
        /* streaming in uneven pieces gives the same tag */
        aq_rpc_auth_stream s;
        memset(&s, 0, sizeof s);
        aq_rpc_auth_begin(&a, &s, hb);
        for (size_t off = 0; off < lens[i];) {
            size_t n = 1 + (off * 7919) % 70001;
            n = n < lens[i] - off ? n : lens[i] - off;
            aq_rpc_auth_update(&s, frag + off, n);
            off += n;
        }
        cr_assert(aq_rpc_auth_check(&s, want), "length %zu: streamed tag differs", lens[i]);
        aq_rpc_auth_stream_wipe(&s);
    }
    aq_rpc_auth_wipe(&a);
}

/* Encryption of long fragments runs on libcrypto's ChaCha20 and Poly1305: the ciphertext and tag
 * must be exactly libsodium's XChaCha20-Poly1305-IETF, libsodium must open them, and the streaming
 * open (pieces, then decrypt in place) must give the plain text back. */
Test(rpc_auth, encryption_of_long_fragments_is_libsodiums_xchacha20poly1305) {
    aq_rpc_auth a;
    cr_assert_eq(aq_rpc_auth_init(&a, SECRET, strlen(SECRET), CID), 0);
    cr_assert_not_null(a.chacha, "libcrypto has no ChaCha20: the fast path is off");
    static uint8_t m[300000], c[sizeof m], want[sizeof m];
    randombytes_buf(m, sizeof m);
    size_t lens[] = {1, 63, 64, AQ_RPC_POLY_BIG - 1, AQ_RPC_POLY_BIG, 100001, sizeof m};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        aq_rpc_hdr h = {.version = AQ_RPC_WIRE_VERSION,
                        .kind = AQ_RPC_K_REPLY,
                        .flags = AQ_RPC_FLAG_MAC | AQ_RPC_FLAG_ENC,
                        .cluster_id = CID,
                        .src_inc = 0x1122334455667788ull,
                        .task = i + 9,
                        .msg_len = (uint32_t)len,
                        .frag_len = (uint32_t)len,
                        .checksum = 1000 + i};
        uint8_t hb[AQ_RPC_HDR_LEN], tag[AQ_RPC_TAG_LEN], wtag[AQ_RPC_TAG_LEN], n[24];
        aq_rpc_hdr_encode(&h, m, hb);
        aq_rpc_auth_seal(&a, hb, m, len, c, tag);
        memcpy(n, hb + 16, 8);
        memcpy(n + 8, hb + 56, 8);
        memcpy(n + 16, "aqrpcenc", 8);
        unsigned long long tl;
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(want, wtag, &tl, m, len, hb, 64, NULL,
                                                            n, a.enc_key);
        cr_assert(memcmp(c, want, len) == 0, "length %zu: ciphertext differs", len);
        cr_assert(memcmp(tag, wtag, sizeof tag) == 0, "length %zu: tag differs", len);
        cr_assert(memcmp(c, m, len < 64 ? len : 64) != 0, "length %zu: not encrypted", len);
        /* streaming open in pieces, then decrypt in place */
        aq_rpc_auth_stream s;
        memset(&s, 0, sizeof s);
        aq_rpc_auth_begin_open(&a, &s, hb);
        for (size_t off = 0; off < len;) {
            size_t k = 1 + (off * 104729) % 65537;
            k = k < len - off ? k : len - off;
            aq_rpc_auth_update(&s, c + off, k);
            off += k;
        }
        cr_assert(aq_rpc_auth_check_open(&s, tag), "length %zu: streamed check failed", len);
        aq_rpc_auth_decrypt(&s, c, len);
        aq_rpc_auth_stream_wipe(&s);
        cr_assert(memcmp(c, m, len) == 0, "length %zu: decrypted text differs", len);
        /* a flipped ciphertext byte fails the streamed check */
        aq_rpc_auth_seal(&a, hb, m, len, c, tag);
        c[len / 2] ^= 1;
        memset(&s, 0, sizeof s);
        aq_rpc_auth_begin_open(&a, &s, hb);
        aq_rpc_auth_update(&s, c, len);
        cr_assert(!aq_rpc_auth_check_open(&s, tag), "length %zu: forged ciphertext passed", len);
        aq_rpc_auth_stream_wipe(&s);
    }
    aq_rpc_auth_wipe(&a);
}

/* A reset that reaches only the sender leaves our end of its pipe open, holding the partial call
 * it was receiving. When the peer's new pipe says HELLO, the old one goes, and with it the bytes it
 * held against the peer's reassembly budget (else, after enough resets, every big call from that
 * peer is answered BUSY for good). The call then completes on the new pipe. */
Test(rpc_auth, a_new_pipe_from_a_peer_closes_its_older_ones_and_their_partial_calls) {
    pair(SECRET, SECRET);
    aq_rpc_auth key;
    cr_assert_eq(aq_rpc_auth_init(&key, SECRET, strlen(SECRET), CID), 0);
    static uint8_t msg[200000], hello[128], f[AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + sizeof msg];
    fill_pattern(msg, sizeof msg);
    uint8_t port[2] = {0x8c, 0x23}; /* A's port 9100 */
    size_t hn = mframe(&key, hello, AQ_RPC_K_HELLO, 0, port, 2);
    size_t n = mframe(&key, f, AQ_RPC_K_CALL, 1, msg, sizeof msg);
    aq_rpc_pipe_accepted(N.rpc[1], 100, &N.addr[0]);
    pipe_feed(100, hello, hn);
    pipe_feed(100, f, n / 2);
    cr_assert_eq(stats(1).reassembly_bytes, sizeof msg, "the half-received call holds its buffer");
    aq_rpc_pipe_accepted(N.rpc[1], 101, &N.addr[0]);
    pipe_feed(101, hello, hn);
    cr_assert_eq(stats(1).reassembly_bytes, 0, "the superseded pipe still holds its partial call");
    pipe_feed(101, f, n);
    cr_assert_eq(handled, 1, "the call resent on the new pipe ran");
    aq_rpc_auth_wipe(&key);
}
