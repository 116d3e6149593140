/* rpc_bench: rpc over the libuv driver between two processes on loopback.
 *
 *   rpc_bench SERVER_BINARY [-c concurrency] [-t seconds] [-b big_in_flight] [-o small|big]
 *
 * Starts SERVER_BINARY (rpc_uv_server) as a child, then measures
 *   1. 64 B calls (method SINK: empty reply) with `concurrency` in flight: calls/s, p50 and p99
 *      latency from aq_rpc_call to the callback;
 *   2. 4 MiB calls (SINK) with `big_in_flight` in flight: payload GB/s (10^9 bytes per second).
 * and prints one line: "rpc_bench: calls_per_s=.. p50_us=.. p99_us=.. gbps=.. retransmits=..".
 * Every call must succeed; any failure ends the run with status 1.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "aq_alloc.h"
#include "aq_rpc_uv.h"
#include "rpc_uv_proto.h"

typedef struct bench {
    aq_rpc_uv *u;
    aq_rpc_peer *peer;
    size_t size;
    int window, inflight;
    uint64_t end_ns;
    uint64_t done, failed;
    uint64_t *lat; /* ns per finished call, up to cap */
    size_t nlat, cap;
    const uint8_t *payload;
    bool stop;
} bench;

typedef struct bcall {
    bench *b;
    uint64_t t0;
} bcall;

static void no_release(void *ctx) {
    (void)ctx;
}

static void issue(bench *b);

static void done_cb(void *ud, const aq_rpc_result *r) {
    bcall *c = ud;
    bench *b = c->b;
    uint64_t now = uv_hrtime();
    b->inflight--;
    if (r->err || r->status) {
        char d[256];
        if (b->failed++ == 0)
            fprintf(stderr, "rpc_bench: %s\n",
                    aq_rpc_result_describe(aq_rpc_uv_core(b->u), r, d, sizeof d));
        b->stop = true;
    } else {
        b->done++;
        if (b->nlat < b->cap)
            b->lat[b->nlat++] = now - c->t0;
    }
    free(c);
    if (now >= b->end_ns)
        b->stop = true;
    while (!b->stop && b->inflight < b->window)
        issue(b);
}

static void issue(bench *b) {
    bcall *c = malloc(sizeof *c);
    c->b = b;
    c->t0 = uv_hrtime();
    /* Lent in place (release set): rpc reads the caller's bytes without a copy. */
    aq_rpc_buf p = {.data = b->payload, .len = b->size, .release = no_release};
    int r = aq_rpc_call(aq_rpc_uv_core(b->u), b->peer, M_SINK, p, 30 * 1000000ull, done_cb, c);
    if (r < 0) {
        fprintf(stderr, "rpc_bench: aq_rpc_call: %s\n", aq_strerror(r));
        free(c);
        b->failed++;
        b->stop = true;
        return;
    }
    b->inflight++;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Runs one phase; returns elapsed seconds. */
static double run_phase(uv_loop_t *loop, bench *b, double seconds) {
    uint64_t t0 = uv_hrtime();
    b->end_ns = t0 + (uint64_t)(seconds * 1e9);
    b->stop = false;
    while (!b->stop && b->inflight < b->window)
        issue(b);
    while (b->inflight > 0)
        uv_run(loop, UV_RUN_ONCE);
    return (double)(uv_hrtime() - t0) / 1e9;
}

int main(int argc, char **argv) {
    aq_alloc_tune_for_chunks();
    if (argc < 2) {
        fprintf(stderr, "usage: rpc_bench SERVER_BINARY [-c concurrency] [-t seconds] [-b "
                        "big_in_flight] [-o small|big]\n");
        return 2;
    }
    const char *server = argv[1];
    int conc = 50, big_window = 4;
    const char *only = "";
    double seconds = 5;
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "c:t:b:o:")) != -1) {
        switch (c) {
        case 'c':
            conc = atoi(optarg);
            break;
        case 't':
            seconds = atof(optarg);
            break;
        case 'b':
            big_window = atoi(optarg);
            break;
        case 'o':
            only = optarg;
            break;
        default:
            return 2;
        }
    }
    if (conc < 1 || conc > 100000 || big_window < 1 || big_window > 64 || !(seconds > 0))
        return 2;
    signal(SIGPIPE, SIG_IGN);
    uint16_t port;
    pid_t pid = proto_spawn_server(server, 0, &port);
    if (pid < 0) {
        fprintf(stderr, "rpc_bench: cannot start %s\n", server);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc_config cfg;
    proto_config(&cfg);
    bench b = {.window = conc, .size = 64};
    int r = aq_rpc_uv_open(&loop, &cfg, NULL, &b.u);
    if (r < 0) {
        fprintf(stderr, "rpc_bench: %s\n", aq_strerror(r));
        kill(pid, SIGKILL);
        return 1;
    }
    aq_rpc_addr to;
    aq_rpc_addr_parse("127.0.0.1:0", &to);
    aq_rpc_addr_set_port(&to, port);
    b.peer = aq_rpc_peer_get(aq_rpc_uv_core(b.u), &to);
    uint8_t *big = calloc(1, BIG_LEN);
    b.payload = big;

    /* Warm-up: connect the pipe, grow the window. */
    b.size = BIG_LEN;
    b.window = 1;
    run_phase(&loop, &b, 0.2);
    b.size = 64;
    b.window = conc;
    run_phase(&loop, &b, 0.2);

    b.cap = 4u << 20;
    b.lat = malloc(b.cap * sizeof *b.lat);
    b.done = b.nlat = 0;
    double el = strcmp(only, "big") ? run_phase(&loop, &b, seconds) : 1;
    double cps = (double)b.done / el;
    qsort(b.lat, b.nlat, sizeof *b.lat, cmp_u64);
    double p50 = b.nlat ? (double)b.lat[b.nlat / 2] / 1e3 : 0;
    double p99 = b.nlat ? (double)b.lat[(size_t)((double)b.nlat * 0.99)] / 1e3 : 0;

    b.size = BIG_LEN;
    b.window = big_window;
    b.done = b.nlat = 0;
    el = strcmp(only, "small") ? run_phase(&loop, &b, seconds) : 1;
    double gbps = (double)b.done * BIG_LEN / el / 1e9;

    aq_rpc_peer_stats ps;
    aq_rpc_peer_stats_get(b.peer, &ps);
    aq_rpc_uv_stats us;
    aq_rpc_uv_stats_get(b.u, &us);
    aq_rpc_uv_close(b.u, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    free(big);
    free(b.lat);
    printf("rpc_bench: calls_per_s=%.0f p50_us=%.1f p99_us=%.1f gbps=%.3f retransmits=%llu "
           "concurrency=%d big_in_flight=%d client_dgrams_out_per_call=%.2f "
           "client_dgrams_in_per_call=%.2f\n",
           cps, p50, p99, gbps, (unsigned long long)ps.retransmits, conc, big_window,
           ps.calls ? (double)us.dgrams_out / (double)ps.calls : 0,
           ps.calls ? (double)us.dgrams_in / (double)ps.calls : 0);
    return b.failed ? 1 : 0;
}
