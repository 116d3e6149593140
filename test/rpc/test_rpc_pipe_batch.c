/* The pipe's batching, through the hand-driven network: many frames in one read delivered in
 * order, a frame split across the staging buffer's end at every byte, a bad frame among good ones
 * in one read, input stopped in the middle of a read, and a read reported for the wrong
 * connection. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc.h"
#include "aq_rpc_wire.h"
#include "rpc_fake_net.h"

#define CID   77u
#define STAGE (64 * 1024) /* the core's staging buffer (AQ_RPC_STAGE_LEN) */

static rfn_net N;

/* What B's handler saw: the sequence number each call's payload starts with, in arrival order. */
static uint32_t seen[4096];
static int nseen;
static int stop_after; /* > 0: B stops its input after this many calls */
static const uint8_t *want;
static size_t want_len;
static int want_seen;

static void h_rec(void *ud, aq_rpc_incoming *in) {
    (void)ud;
    size_t len = 0;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    uint32_t seq = UINT32_MAX;
    if (len >= 4)
        memcpy(&seq, d, 4);
    if (want && len == want_len && memcmp(d, want, len) == 0)
        want_seen++;
    if (nseen < (int)(sizeof seen / sizeof seen[0]))
        seen[nseen] = seq;
    nseen++;
    aq_rpc_respond(in, 0, (aq_rpc_buf){0});
    if (stop_after && nseen == stop_after)
        aq_rpc_stop_input(N.rpc[1]);
}

static void setup(void) {
    rfn_init(&N, 9100);
    nseen = 0;
    stop_after = 0;
    want = NULL;
    want_seen = 0;
    rfn_make_cores(&N, CID, NULL, false, 0);
    aq_rpc_handle(N.rpc[1], 1, h_rec, NULL);
}

static void teardown(void) {
    rfn_free(&N);
}

TestSuite(rpc_pipe_batch, .init = setup, .fini = teardown);

/* Appends one frame (a whole message of `len` bytes) to out; returns its length. */
static size_t frame(uint8_t *out, uint8_t kind, uint64_t task, const void *data, uint32_t len) {
    return rfn_frame(out, CID, kind, task, len, 0, data, len);
}

static size_t hello(uint8_t *out) {
    uint8_t port[2] = {(uint8_t)(9100 & 0xff), (uint8_t)(9100 >> 8)}; /* A's listen port */
    return frame(out, AQ_RPC_K_HELLO, 0, port, 2);
}

/* A call whose payload is `len` bytes starting with seq. */
static size_t call(uint8_t *out, uint64_t task, uint32_t seq, uint32_t len) {
    static uint8_t p[8192];
    cr_assert(len >= 4 && len <= sizeof p);
    memset(p, (int)(seq & 0xff), len);
    memcpy(p, &seq, 4);
    return frame(out, AQ_RPC_K_CALL, task, p, len);
}

/* The driver fills every buffer the core lends as far as the stream goes; returns the reads. */
static int feed(uint64_t conn, const uint8_t *d, size_t len) {
    int reads = 0;
    while (len) {
        uint8_t *buf;
        size_t n;
        aq_rpc_pipe_read_buf(N.rpc[1], conn, &buf, &n);
        cr_assert_gt(n, 0);
        if (n > len)
            n = len;
        memcpy(buf, d, n);
        aq_rpc_pipe_input(N.rpc[1], conn, n);
        reads++;
        d += n;
        len -= n;
    }
    return reads;
}

static aq_rpc_stats stats(void) {
    aq_rpc_stats st;
    aq_rpc_stats_get(N.rpc[1], &st);
    return st;
}

Test(rpc_pipe_batch, many_small_frames_in_one_read_arrive_in_order) {
    static uint8_t s[STAGE];
    size_t n = hello(s);
    int calls = 0;
    while (n + AQ_RPC_HDR_LEN + 300 <= sizeof s) {
        n += call(s + n, 1 + (uint64_t)calls, (uint32_t)calls, 100 + (uint32_t)(calls % 200));
        calls++;
    }
    aq_rpc_pipe_accepted(N.rpc[1], 7, &N.addr[0]);
    int reads = feed(7, s, n);
    cr_assert_eq(reads, 1, "%d reads for %zu bytes of small frames: one should take them all",
                 reads, n);
    cr_assert_eq(nseen, calls, "%d of %d calls delivered", nseen, calls);
    for (int i = 0; i < calls; i++)
        cr_assert_eq(seen[i], (uint32_t)i, "call %d arrived as number %d", (int)seen[i], i);
    aq_rpc_stats st = stats();
    cr_assert_eq(st.cutoffs, 0);
    cr_assert_eq(st.dropped_malformed, 0);
    cr_assert_eq(st.reassembly_bytes, 0);
}

/* A 400-byte call starts at every offset that puts part of it (its header, its MAC-less checksum
 * field, its payload) beyond the first read's end; small calls fill the stream before it. */
Test(rpc_pipe_batch, frame_split_across_the_stage_end_at_every_byte) {
    static uint8_t s[2 * STAGE], tp[400];
    for (size_t i = 0; i < sizeof tp; i++)
        tp[i] = (uint8_t)(i * 13 + 1);
    memcpy(tp, &(uint32_t){0xabcdef}, 4);
    want = tp;
    want_len = sizeof tp;
    const size_t flen = AQ_RPC_HDR_LEN + sizeof tp;
    uint64_t task = 1;
    int expect = 0;
    for (size_t k = 1; k < flen; k++) {
        size_t n = hello(s);
        size_t at = STAGE - k; /* where the test frame starts */
        /* Filler calls of 1000 B, then one sized to end exactly at `at`. */
        uint32_t seq = 0;
        while (at - n >= 2 * (AQ_RPC_HDR_LEN + 1000))
            n += call(s + n, task++, seq++, 1000);
        n += call(s + n, task++, seq++, (uint32_t)(at - n - AQ_RPC_HDR_LEN));
        cr_assert_eq(n, at);
        n += frame(s + n, AQ_RPC_K_CALL, task++, tp, sizeof tp);
        n += call(s + n, task++, seq++, 50); /* one more after it */
        expect += (int)seq + 1;
        uint64_t conn = 1000 + k;
        aq_rpc_pipe_accepted(N.rpc[1], conn, &N.addr[0]);
        cr_assert_geq(feed(conn, s, n), 2);
        cr_assert_eq(want_seen, (int)k, "split %zu bytes before its end: not delivered intact", k);
        cr_assert_eq(nseen, expect, "split at %zu: %d of %d calls delivered", k, nseen, expect);
        rfn_flush(&N);
    }
    aq_rpc_stats st = stats();
    cr_assert_eq(st.cutoffs, 0);
    cr_assert_eq(st.dropped_malformed, 0);
    cr_assert_eq(st.reassembly_bytes, 0);
}

/* A frame with a broken header among good ones in one read: the ones before it are acted on, the
 * connection is cut off, and nothing after it is. */
Test(rpc_pipe_batch, bad_frame_in_one_read_cuts_off_and_stops_there) {
    static uint8_t s[16384];
    size_t n = hello(s);
    for (int i = 0; i < 5; i++)
        n += call(s + n, 1 + (uint64_t)i, (uint32_t)i, 200);
    size_t bad = n;
    n += call(s + n, 6, 5, 200);
    s[bad] ^= 0x40; /* the magic */
    for (int i = 6; i < 11; i++)
        n += call(s + n, 1 + (uint64_t)i, (uint32_t)i, 200);
    aq_rpc_pipe_accepted(N.rpc[1], 9, &N.addr[0]);
    uint8_t *buf;
    size_t lent;
    aq_rpc_pipe_read_buf(N.rpc[1], 9, &buf, &lent);
    cr_assert_geq(lent, n, "lent %zu bytes: the test needs them all in one read", lent);
    memcpy(buf, s, n);
    aq_rpc_pipe_input(N.rpc[1], 9, n);
    cr_assert_eq(nseen, 5, "%d calls acted on, want the 5 before the bad frame", nseen);
    aq_rpc_stats st = stats();
    cr_assert_eq(st.cutoffs, 1);
    cr_assert_eq(st.dropped_malformed, 1);
    cr_assert_eq(N.closes, 1);
    /* The connection is gone: more bytes for it change nothing. */
    aq_rpc_pipe_read_buf(N.rpc[1], 9, &buf, &lent);
    size_t m = call(buf, 20, 20, 100);
    aq_rpc_pipe_input(N.rpc[1], 9, m);
    cr_assert_eq(nseen, 5);
}

/* The driver stops input (it is closing) from inside a handler: the rest of the read is dropped. */
Test(rpc_pipe_batch, stopped_input_ends_the_read) {
    static uint8_t s[16384];
    size_t n = hello(s);
    for (int i = 0; i < 10; i++)
        n += call(s + n, 1 + (uint64_t)i, (uint32_t)i, 300);
    stop_after = 3;
    aq_rpc_pipe_accepted(N.rpc[1], 11, &N.addr[0]);
    cr_assert_eq(feed(11, s, n), 1);
    cr_assert_eq(nseen, 3, "%d calls acted on after input stopped at the third", nseen);
}

/* The staging buffer is shared: bytes reported for a connection after it was lent to another are
 * not trusted, and the reporting connection is cut off. */
Test(rpc_pipe_batch, read_reported_for_the_wrong_connection_is_refused) {
    static uint8_t s[1024];
    size_t n = hello(s);
    n += call(s + n, 1, 0, 100);
    aq_rpc_pipe_accepted(N.rpc[1], 12, &N.addr[0]);
    aq_rpc_pipe_accepted(N.rpc[1], 13, &N.addr[0]);
    uint8_t *b12, *b13;
    size_t l12, l13;
    aq_rpc_pipe_read_buf(N.rpc[1], 12, &b12, &l12);
    aq_rpc_pipe_read_buf(N.rpc[1], 13, &b13, &l13);
    cr_assert_geq(l12, n);
    memcpy(b12, s, n);
    aq_rpc_pipe_input(N.rpc[1], 12, n);
    cr_assert_eq(nseen, 0);
    cr_assert_eq(stats().cutoffs, 1);
    /* Connection 13 still reads normally. */
    cr_assert_eq(feed(13, s, n), 1);
    cr_assert_eq(nseen, 1);
}
