/* rpc_uv_server [port]: an rpc endpoint on 127.0.0.1 for the rpc_uv tests and rpc_bench.
 * Prints "port N" on stdout once it listens, then serves the methods of rpc_uv_proto.h until
 * killed. Exits when its parent dies, so no test leaves it behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "aq_alloc.h"
#include "aq_rpc_uv.h"
#include "rpc_uv_proto.h"

typedef struct server {
    uint64_t handled;
    uint8_t *pattern;
} server;

static void release_free(void *ctx) {
    free(ctx);
}

static void on_hash(void *ud, aq_rpc_incoming *in) {
    server *s = ud;
    s->handled++;
    size_t len = 0;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    XXH128_canonical_t out[2];
    XXH128_canonicalFromHash(&out[0], XXH3_128bits(d, len));
    XXH128_canonicalFromHash(&out[1], XXH3_128bits_withSeed(d, len, len));
    aq_rpc_respond(in, 0, (aq_rpc_buf){.data = out, .len = sizeof out});
}

static void on_big(void *ud, aq_rpc_incoming *in) {
    server *s = ud;
    s->handled++;
    size_t len = 0;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    if (len != 16) {
        aq_rpc_respond(in, AQ_EINVAL, (aq_rpc_buf){0});
        return;
    }
    uint8_t *r = malloc(BIG_LEN);
    if (!r) {
        aq_rpc_respond(in, AQ_ENOMEM, (aq_rpc_buf){0});
        return;
    }
    memcpy(r, s->pattern, BIG_LEN);
    memcpy(r, d, 16);
    aq_rpc_respond(in, 0,
                   (aq_rpc_buf){.data = r, .len = BIG_LEN, .release = release_free, .ctx = r});
}

static void on_count(void *ud, aq_rpc_incoming *in) {
    server *s = ud;
    uint64_t n = s->handled;
    aq_rpc_respond(in, 0, (aq_rpc_buf){.data = &n, .len = sizeof n});
}

static void on_sink(void *ud, aq_rpc_incoming *in) {
    aq_rpc_respond(in, 0, (aq_rpc_buf){0});
}

static void on_echo(void *ud, aq_rpc_incoming *in) {
    size_t len = 0;
    void *d = aq_rpc_incoming_take(in, &len);
    aq_rpc_respond(in, 0, (aq_rpc_buf){.data = d, .len = len, .release = release_free, .ctx = d});
}

int main(int argc, char **argv) {
    aq_alloc_tune_for_chunks(); /* as aquiferd does: the benchmark measures that policy */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    char bind[64];
    snprintf(bind, sizeof bind, "127.0.0.1:%s", argc > 1 ? argv[1] : "0");
    server s = {.pattern = proto_pattern()};
    if (!s.pattern)
        return 1;
    uv_loop_t *loop = uv_default_loop();
    aq_rpc_config cfg;
    proto_config(&cfg);
    aq_rpc_uv_opts o = {.bind = bind};
    aq_rpc_uv *u;
    int r = aq_rpc_uv_open(loop, &cfg, &o, &u);
    if (r < 0) {
        fprintf(stderr, "rpc_uv_server: cannot listen on %s: %s\n", bind, aq_strerror(r));
        return 1;
    }
    aq_rpc *rpc = aq_rpc_uv_core(u);
    aq_rpc_handle(rpc, M_HASH, on_hash, &s);
    aq_rpc_handle(rpc, M_BIG, on_big, &s);
    aq_rpc_handle(rpc, M_COUNT, on_count, &s);
    aq_rpc_handle(rpc, M_SINK, on_sink, &s);
    aq_rpc_handle(rpc, M_ECHO, on_echo, &s);
    printf("port %u\n", aq_rpc_addr_port(aq_rpc_uv_self(u)));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
