/* libFuzzer target: the pipe frame decoder and reassembler. The hostile peer connects to the core
 * (aq_rpc_pipe_accepted) and its byte stream arrives through aq_rpc_pipe_read_buf /
 * aq_rpc_pipe_input in pieces whose sizes the input chooses.
 *
 * Input: flags, a piece-size seed (2 bytes), then the stream.
 * Flags: bit 0 rewrites the checksum of each frame in the stream (a frame is 64 header bytes and
 * the frag_len bytes its header claims, or what is left), so the fuzzer reaches reassembly and the
 * call logic; bit 1 holds handlers (answered at the end); bit 2 puts a valid HELLO first; bit 3
 * reports one byte more than lent at the end (the pipe must be cut off); bit 4 lets the timer run
 * between pieces; bit 5 also opens a second inbound connection that sends the same stream.
 * The stream being consumed, the core must not crash, leak, act twice for a task, or hold
 * reassembly memory beyond its bound. */
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_wire.h"
#include "fuzz_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t hello_frame(uint8_t out[AQ_RPC_HDR_LEN + 2]) {
    aq_rpc_hdr h = {0};
    h.version = AQ_RPC_WIRE_VERSION;
    h.kind = AQ_RPC_K_HELLO;
    h.cluster_id = FZ_CLUSTER;
    h.src_inc = 0x77;
    h.msg_len = 2;
    h.frag_len = 2;
    out[64] = 7001 & 0xff;
    out[65] = 7001 >> 8;
    aq_rpc_hdr_encode(&h, out + 64, out);
    return sizeof(uint8_t[AQ_RPC_HDR_LEN + 2]);
}

static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void feed(fz_net *n, uint64_t conn, const uint8_t *st, size_t len, uint32_t seed,
                 uint8_t flags) {
    static const uint32_t scale[4] = {1, 8, 80, 70000};
    uint32_t s = seed | 1;
    size_t at = 0;
    while (at < len) {
        uint8_t *buf;
        size_t lent;
        aq_rpc_pipe_read_buf(n->rpc, conn, &buf, &lent);
        if (!buf || lent == 0)
            abort(); /* the core must always lend at least one byte */
        uint32_t r = rnd(&s);
        size_t piece = 1 + (r >> 2) % scale[r & 3];
        if (piece > lent)
            piece = lent;
        if (piece > len - at)
            piece = len - at;
        memcpy(buf, st + at, piece);
        aq_rpc_pipe_input(n->rpc, conn, piece);
        at += piece;
        aq_rpc_stats st_now;
        aq_rpc_stats_get(n->rpc, &st_now);
        if (st_now.reassembly_bytes > (8u << 20))
            abort(); /* over the configured reassembly_max */
        if (flags & 16) {
            fz_advance(n, (r >> 8) % 50000);
            fz_settle_io(n, 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3)
        return 0;
    static fz_net net;
    fz_net *n = &net;
    uint8_t flags = data[0];
    uint32_t seed = (uint32_t)(data[1] | data[2] << 8) * 2654435761u;
    size_t len = size - 3;
    uint8_t *st = malloc(len + AQ_RPC_HDR_LEN + 2);
    if (!st)
        abort();
    size_t off = 0;
    if (flags & 4)
        off = hello_frame(st);
    memcpy(st + off, data + 3, len);
    len += off;
    if (flags & 1) {
        for (size_t at = off; at + AQ_RPC_HDR_LEN <= len;) {
            uint8_t *h = st + at;
            size_t fl =
                (size_t)h[48] | (size_t)h[49] << 8 | (size_t)h[50] << 16 | (size_t)h[51] << 24;
            if (fl > len - at - AQ_RPC_HDR_LEN)
                fl = len - at - AQ_RPC_HDR_LEN;
            fz_fix_checksum(h, fl);
            at += AQ_RPC_HDR_LEN + fl;
        }
    }
    fz_init(n, flags & 2);
    aq_rpc_pipe_accepted(n->rpc, 1, &n->peer);
    if (flags & 32)
        aq_rpc_pipe_accepted(n->rpc, 2, &n->other);
    feed(n, 1, st, len, seed, flags);
    if (flags & 32)
        feed(n, 2, st, len, seed ^ 0x5a5a, flags);
    fz_settle_io(n, 0);
    if (flags & 8) {
        uint8_t *buf;
        size_t lent;
        bool alive = !(n->closed_small & 2);
        aq_rpc_pipe_read_buf(n->rpc, 1, &buf, &lent);
        aq_rpc_pipe_input(n->rpc, 1, lent + 1);
        if (alive && !(n->closed_small & 2))
            abort(); /* reporting more than lent must cut the pipe off */
    }
    while (n->nheld)
        fz_respond(n, 0);
    fz_settle_io(n, 0);
    fz_advance(n, 100000);
    if ((flags & 16) && !(n->closed_small & 2))
        aq_rpc_pipe_closed(n->rpc, 1, AQ_ECLOSED);
    fz_fini(n);
    free(st);
    return 0;
}
