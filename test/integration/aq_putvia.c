/* aq_putvia: one PUT sent to one node, as the command's attempt to a coordinator is: it asks the
 * node's STATUS first (learning its monotonic clock, as the command's probe does), waits DELAY_MS
 * (so a test can freeze the node in between; it prints "probed" when that starts), then sends the
 * PUT with the deadline of an attempt of TIMEOUT_MS in the node's clock and waits that long.
 *
 * Usage: aq_putvia CONF NODE KEY FILE TIMEOUT_MS DELAY_MS   (FILE: at most one chunk, 4 MiB)
 * Prints "stored C of W" once stored (the copies the node reported, of those wanted).
 * Exit: 0 stored, 3 no answer within TIMEOUT_MS, 4 refused (the error on stderr), 1 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>

#include "aq_bytes.h"
#include "aq_error.h"
#include "aq_node_config.h"
#include "aq_node_proto.h"
#include "aq_rpc.h"
#include "aq_tool_rpc.h"

typedef struct state {
    bool done;
    int err, status;
    uint8_t *rep;
    size_t len;
    char msg[400];
    aq_rpc *rpc;
} state;

static void done_cb(void *ud, const aq_rpc_result *r) {
    state *s = ud;
    s->done = true;
    s->err = r->err;
    s->status = r->status;
    if (r->err == 0)
        s->rep = aq_rpc_result_take(r, &s->len);
    if (r->err || r->status)
        aq_rpc_result_describe(s->rpc, r, s->msg, sizeof s->msg);
}

static void run(uv_loop_t *loop, state *s) {
    while (!s->done)
        uv_run(loop, UV_RUN_ONCE);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: aq_putvia CONF NODE KEY FILE TIMEOUT_MS DELAY_MS\n");
        return 1;
    }
    aq_node_config *cf;
    char err[512];
    if (aq_node_config_load_file(argv[1], &cf, err, sizeof err) != 0) {
        fprintf(stderr, "aq_putvia: %s\n", err);
        return 1;
    }
    const aq_node_config_node *node = aq_node_config_find(cf, argv[2]);
    FILE *f = fopen(argv[4], "rb");
    uint8_t *val = malloc(AQ_NODE_CHUNK_MAX + 1);
    size_t vlen = f && val ? fread(val, 1, AQ_NODE_CHUNK_MAX + 1, f) : 0;
    if (f)
        fclose(f);
    if (!node || !f || !val || vlen > AQ_NODE_CHUNK_MAX) {
        fprintf(stderr, "aq_putvia: no node %s, or cannot read %s (at most 4 MiB)\n", argv[2],
                argv[4]);
        return 1;
    }
    uint64_t timeout_ms = strtoull(argv[5], NULL, 10), delay_ms = strtoull(argv[6], NULL, 10);
    uv_loop_t loop;
    aq_rpc_uv *uv;
    aq_rpc_addr a;
    if (aq_tool_rpc_open(&loop, cf, node->address, &uv, &a) != 0) {
        fprintf(stderr, "aq_putvia: cannot open an endpoint\n");
        return 1;
    }
    aq_rpc *rpc = aq_rpc_uv_core(uv);
    aq_rpc_peer *peer = aq_rpc_peer_get(rpc, &a);
    state st = {.rpc = rpc};
    aq_rpc_buf none = {0};
    aq_rpc_call(rpc, peer, AQ_M_STATUS, none, 2000000, done_cb, &st);
    run(&loop, &st);
    aq_rd rd;
    aq_node_status_node sn;
    if (st.err || st.status || aq_node_status_rep_begin(&rd, st.rep, st.len, &sn) != 0) {
        fprintf(stderr, "aq_putvia: %s did not answer STATUS: %s\n", argv[2], st.msg);
        return 3;
    }
    int64_t off = (int64_t)sn.mono_us - (int64_t)(uv_hrtime() / 1000);
    free(st.rep);
    printf("probed\n"); /* the test may freeze the node from now on */
    fflush(stdout);
    uv_sleep((unsigned)delay_ms);
    XXH128_hash_t h = XXH3_128bits(val, vlen);
    aq_wr w;
    aq_wr_init(&w);
    uint64_t deadline = (uint64_t)((int64_t)(uv_hrtime() / 1000 + timeout_ms * 1000) + off);
    aq_node_put_req_head_vd(&w, 0, AQ_KIND_VALUE, argv[3], strlen(argv[3]),
                            (aq_node_digest){h.high64, h.low64}, 0, deadline);
    aq_wr_bytes(&w, val, vlen);
    memset(&st, 0, sizeof st);
    st.rpc = rpc;
    aq_rpc_buf b = {w.p, w.len, free, w.p};
    aq_rpc_call(rpc, peer, AQ_M_PUT, b, timeout_ms * 1000, done_cb, &st);
    run(&loop, &st);
    int rcode = 0;
    if (st.err == AQ_ETIMEDOUT) {
        fprintf(stderr, "aq_putvia: PUT to %s: no answer within %llu ms\n", argv[2],
                (unsigned long long)timeout_ms);
        rcode = 3;
    } else if (st.err || st.status) {
        fprintf(stderr, "aq_putvia: PUT to %s: %s\n", argv[2], st.msg);
        rcode = 4;
    } else {
        aq_node_put_rep rep;
        if (aq_node_put_rep_decode(st.rep, st.len, &rep) == 0)
            printf("stored %u of %u\n", rep.copies, rep.wanted);
    }
    free(st.rep);
    free(val);
    aq_tool_rpc_close(&loop, uv);
    aq_node_config_free(cf);
    return rcode;
}
