/* The libuv driver alone, against a recording core: this file defines the core's driver-side
 * functions (aq_rpc_new, aq_rpc_pipe_*, ...) and checks what the driver reports, and when. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "aq_rpc_uv.h"

#define MAX_EV 4096

typedef struct ev {
    char kind; /* 'a'ccepted 'c'onnected 'x' closed 'w'ritten 't'imer 'd'gram */
    uint64_t conn;
    void *token;
    int status;
    aq_rpc_addr addr;
} ev;

struct aq_rpc {
    const aq_rpc_io *io;
    void *ctx;
    ev evs[MAX_EV];
    int nev;
    bool in_io; /* inside a call into the driver: a report now would re-enter the core */
    uint8_t *rx;
    size_t rx_len, rx_cap, chunk;
    uint8_t dgram[2048];
    size_t dgram_len;
    uint64_t timer_at;
    /* Bytes delivered per connection: this core calls a connection identified (as if it had sent
     * a valid HELLO) once it has delivered IDENT_BYTES. */
    struct {
        uint64_t conn;
        size_t bytes;
    } per[64];
    int nper;
};

#define IDENT_BYTES 5

/* ---- the recording core ---- */

int aq_rpc_addr_parse(const char *text, aq_rpc_addr *out) {
    char ip[64];
    unsigned port;
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof ip || sscanf(colon + 1, "%u", &port) != 1 ||
        port > 65535)
        return AQ_EINVAL;
    memcpy(ip, text, (size_t)(colon - text));
    ip[colon - text] = 0;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, ip, &sin->sin_addr) == 1 ? 0 : AQ_EINVAL;
}

uint16_t aq_rpc_addr_port(const aq_rpc_addr *a) {
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

int aq_rpc_new(const aq_rpc_config *cfg, const aq_rpc_io *io, void *io_ctx, aq_rpc **out) {
    aq_rpc *r = calloc(1, sizeof *r);
    r->io = io;
    r->ctx = io_ctx;
    r->chunk = 7000;
    r->timer_at = UINT64_MAX;
    *out = r;
    return 0;
}

void aq_rpc_free(aq_rpc *rpc) {
    free(rpc->rx);
    free(rpc);
}

static void record(aq_rpc *r, ev e) {
    cr_assert(!r->in_io, "driver reported '%c' from inside a call the core made", e.kind);
    cr_assert_lt(r->nev, MAX_EV);
    r->evs[r->nev++] = e;
}

void aq_rpc_input_dgram(aq_rpc *rpc, const aq_rpc_addr *from, const uint8_t *data, size_t len) {
    record(rpc, (ev){.kind = 'd', .addr = *from, .status = (int)len});
    if (len <= sizeof rpc->dgram) {
        memcpy(rpc->dgram, data, len);
        rpc->dgram_len = len;
    }
}
void aq_rpc_pipe_accepted(aq_rpc *rpc, uint64_t conn, const aq_rpc_addr *remote) {
    record(rpc, (ev){.kind = 'a', .conn = conn, .addr = *remote});
}
void aq_rpc_pipe_connected(aq_rpc *rpc, uint64_t conn) {
    record(rpc, (ev){.kind = 'c', .conn = conn});
}
void aq_rpc_pipe_closed(aq_rpc *rpc, uint64_t conn, int err) {
    record(rpc, (ev){.kind = 'x', .conn = conn, .status = err});
}
void aq_rpc_pipe_read_buf(aq_rpc *rpc, uint64_t conn, uint8_t **buf, size_t *len) {
    if (rpc->rx_cap - rpc->rx_len < rpc->chunk) {
        rpc->rx_cap = rpc->rx_cap * 2 + rpc->chunk;
        rpc->rx = realloc(rpc->rx, rpc->rx_cap);
    }
    *buf = rpc->rx + rpc->rx_len;
    *len = rpc->chunk; /* small on purpose: many reads per message */
}
static size_t *conn_bytes(aq_rpc *rpc, uint64_t conn) {
    for (int i = 0; i < rpc->nper; i++)
        if (rpc->per[i].conn == conn)
            return &rpc->per[i].bytes;
    cr_assert_lt(rpc->nper, 64);
    rpc->per[rpc->nper].conn = conn;
    rpc->per[rpc->nper].bytes = 0;
    return &rpc->per[rpc->nper++].bytes;
}
void aq_rpc_pipe_input(aq_rpc *rpc, uint64_t conn, size_t nread) {
    cr_assert_leq(nread, rpc->chunk);
    rpc->rx_len += nread;
    *conn_bytes(rpc, conn) += nread;
}
bool aq_rpc_pipe_identified(const aq_rpc *rpc, uint64_t conn) {
    for (int i = 0; i < rpc->nper; i++)
        if (rpc->per[i].conn == conn)
            return rpc->per[i].bytes >= IDENT_BYTES;
    return false;
}
void aq_rpc_pipe_written(aq_rpc *rpc, uint64_t conn, void *token, int status) {
    record(rpc, (ev){.kind = 'w', .conn = conn, .token = token, .status = status});
}
void aq_rpc_stop_input(aq_rpc *rpc) {
    (void)rpc; /* this core acts on nothing it reads, so there is nothing to stop */
}
void aq_rpc_timer_fired(aq_rpc *rpc) {
    cr_assert_geq(rpc->io->now_us(rpc->ctx), rpc->timer_at, "timer fired early");
    record(rpc, (ev){.kind = 't'});
}

/* ---- helpers ---- */

static int count(aq_rpc *r, char kind) {
    int n = 0;
    for (int i = 0; i < r->nev; i++)
        n += r->evs[i].kind == kind;
    return n;
}

static const ev *find(aq_rpc *r, char kind) {
    for (int i = 0; i < r->nev; i++)
        if (r->evs[i].kind == kind)
            return &r->evs[i];
    return NULL;
}

/* Runs the loop until cond or about 10 s (a bound, not a timing assertion). */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        uint64_t end_ = uv_hrtime() + 10000000000ull;                                              \
        while (!(cond) && uv_hrtime() < end_) {                                                    \
            uv_run((loop), UV_RUN_NOWAIT);                                                         \
            usleep(200);                                                                           \
        }                                                                                          \
        cr_assert((cond), "timed out waiting for " #cond);                                         \
    } while (0)

static aq_rpc_uv *open_with(uv_loop_t *loop, aq_rpc **core, const aq_rpc_uv_opts *o) {
    aq_rpc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    aq_rpc_uv *u = NULL;
    int r = aq_rpc_uv_open(loop, &cfg, o, &u);
    cr_assert_eq(r, 0, "open: %s", aq_strerror(r));
    cr_assert_neq(aq_rpc_addr_port(&cfg.self), 0);
    cr_assert_eq(aq_rpc_addr_port(&cfg.self), aq_rpc_addr_port(aq_rpc_uv_self(u)));
    *core = aq_rpc_uv_core(u);
    return u;
}

static aq_rpc_uv *open_one(uv_loop_t *loop, aq_rpc **core) {
    return open_with(loop, core, NULL);
}

/* A plain blocking client socket connected to the driver's port. */
static int raw_connect(aq_rpc_uv *u) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s, 0);
    const aq_rpc_addr *a = aq_rpc_uv_self(u);
    cr_assert_eq(connect(s, (const struct sockaddr *)&a->ss, sizeof(struct sockaddr_in)), 0,
                 "connect: %s", strerror(errno));
    return s;
}

/* true when the driver has closed s: a read returns EOF or a reset, not "nothing yet". */
static bool closed_by_driver(int s) {
    char b[16];
    ssize_t k = recv(s, b, sizeof b, MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static aq_rpc_uv_stats stats(aq_rpc_uv *u) {
    aq_rpc_uv_stats st;
    aq_rpc_uv_stats_get(u, &st);
    return st;
}

/* Runs the loop for about ms milliseconds. */
static void run_for(uv_loop_t *loop, int ms) {
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;
    while (uv_hrtime() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

static void io_write(aq_rpc *r, uint64_t conn, const struct iovec *iov, int n, void *token) {
    r->in_io = true;
    r->io->pipe_write(r->ctx, conn, iov, n, token);
    r->in_io = false;
}

static void io_close(aq_rpc *r, uint64_t conn) {
    r->in_io = true;
    r->io->pipe_close(r->ctx, conn);
    r->in_io = false;
}

static uint64_t io_open(aq_rpc *r, const aq_rpc_addr *to) {
    uint64_t conn = 0;
    r->in_io = true;
    int rc = r->io->pipe_open(r->ctx, to, &conn);
    r->in_io = false;
    cr_assert_eq(rc, 0, "pipe_open: %s", aq_strerror(rc));
    cr_assert_neq(conn, 0);
    return conn;
}

static void done_cb(void *ud) {
    *(bool *)ud = true;
}

static void close_all(uv_loop_t *loop, aq_rpc_uv *a, aq_rpc_uv *b) {
    bool da = false, db = false;
    aq_rpc_uv_close(a, done_cb, &da);
    if (b)
        aq_rpc_uv_close(b, done_cb, &db);
    else
        db = true;
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert(da && db);
    cr_assert_eq(uv_loop_close(loop), 0, "handles left open");
}

/* ---- tests ---- */

Test(rpc_uv_driver, datagram_reaches_the_other_endpoint_with_its_address) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca, *cb;
    aq_rpc_uv *a = open_one(&loop, &ca), *b = open_one(&loop, &cb);
    struct iovec iov[2] = {{.iov_base = "hello ", .iov_len = 6}, {.iov_base = "rpc", .iov_len = 3}};
    ca->io->send_dgram(ca->ctx, aq_rpc_uv_self(b), iov, 2);
    RUN_UNTIL(&loop, count(cb, 'd') == 1);
    cr_assert_eq(cb->dgram_len, 9);
    cr_assert_eq(memcmp(cb->dgram, "hello rpc", 9), 0);
    cr_assert_eq(aq_rpc_addr_port(&find(cb, 'd')->addr), aq_rpc_addr_port(aq_rpc_uv_self(a)));
    close_all(&loop, a, b);
}

Test(rpc_uv_driver, a_burst_of_datagrams_larger_than_one_batch_all_arrive) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca, *cb;
    aq_rpc_uv *a = open_one(&loop, &ca), *b = open_one(&loop, &cb);
    uint8_t d[1000];
    for (int i = 0; i < 200; i++) {
        memset(d, i, sizeof d);
        struct iovec iov = {d, sizeof d};
        ca->io->send_dgram(ca->ctx, aq_rpc_uv_self(b), &iov, 1);
    }
    RUN_UNTIL(&loop, count(cb, 'd') == 200);
    for (int i = 0; i < cb->nev; i++)
        cr_assert_eq(cb->evs[i].status, 1000);
    aq_rpc_uv_stats st;
    aq_rpc_uv_stats_get(a, &st);
    cr_assert_eq(st.dgrams_out, 200);
    cr_assert_eq(st.dgrams_dropped, 0);
    close_all(&loop, a, b);
}

/* A datagram larger than any of ours is cut by the receive slot: counted and dropped, and the ones
 * around it in the same receive still arrive whole. */
Test(rpc_uv_driver, an_oversized_datagram_is_counted_and_dropped) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *cb;
    aq_rpc_uv *b = open_one(&loop, &cb);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq(s, 0);
    const aq_rpc_addr *to = aq_rpc_uv_self(b);
    static uint8_t d[9000];
    memset(d, 7, sizeof d);
    size_t sizes[3] = {100, sizeof d, 1400};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(
            sendto(s, d, sizes[i], 0, (const struct sockaddr *)&to->ss, sizeof(struct sockaddr_in)),
            (ssize_t)sizes[i]);
    RUN_UNTIL(&loop, count(cb, 'd') == 2 && stats(b).dgrams_truncated == 1);
    cr_assert_eq(cb->evs[cb->nev - 2].status, 100);
    cr_assert_eq(cb->evs[cb->nev - 1].status, 1400);
    cr_assert_eq(stats(b).dgrams_in, 2);
    close(s);
    close_all(&loop, b, NULL);
}

Test(rpc_uv_driver, pipe_carries_bytes_in_order_and_reports_each_write_once) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca, *cb;
    aq_rpc_uv *a = open_one(&loop, &ca), *b = open_one(&loop, &cb);
    uint64_t conn = io_open(ca, aq_rpc_uv_self(b));
    RUN_UNTIL(&loop, count(ca, 'c') == 1 && count(cb, 'a') == 1);
    cr_assert_eq(find(ca, 'c')->conn, conn);
    cr_assert_neq(find(cb, 'a')->conn, 0);
    cr_assert_eq(aq_rpc_addr_port(&find(cb, 'a')->addr) != 0, true);

    size_t len = 3u << 20;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 131 + (i >> 11));
    struct iovec iov[3] = {{data, 1000}, {data + 1000, len / 2}, {data + 1000 + len / 2, 0}};
    iov[2].iov_len = len - 1000 - len / 2;
    int tok1, tok2;
    io_write(ca, conn, iov, 3, &tok1);
    struct iovec tail = {(void *)"END", 3};
    io_write(ca, conn, &tail, 1, &tok2);
    RUN_UNTIL(&loop, count(ca, 'w') == 2 && cb->rx_len == len + 3);
    cr_assert_eq(ca->evs[ca->nev - 2].token, &tok1);
    cr_assert_eq(ca->evs[ca->nev - 1].token, &tok2);
    cr_assert_eq(ca->evs[ca->nev - 1].status, 0);
    cr_assert_eq(memcmp(cb->rx, data, len), 0);
    cr_assert_eq(memcmp(cb->rx + len, "END", 3), 0);

    /* The receiver closes: the sender hears of it once, the receiver (who asked) not at all. */
    io_close(cb, find(cb, 'a')->conn);
    RUN_UNTIL(&loop, count(ca, 'x') == 1);
    cr_assert_eq(find(ca, 'x')->conn, conn);
    cr_assert_lt(find(ca, 'x')->status, 0);
    cr_assert_eq(count(cb, 'x'), 0);
    aq_rpc_uv_stats st;
    aq_rpc_uv_stats_get(a, &st);
    cr_assert_eq(st.conns_opened, 1);
    free(data);
    close_all(&loop, a, b);
}

/* Writes made in one loop iteration leave in one uv_write (a bounded number per batch), in order,
 * each reported once, in order. */
Test(rpc_uv_driver, writes_of_one_iteration_leave_together) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca, *cb;
    aq_rpc_uv *a = open_one(&loop, &ca), *b = open_one(&loop, &cb);
    uint64_t conn = io_open(ca, aq_rpc_uv_self(b));
    RUN_UNTIL(&loop, count(ca, 'c') == 1 && count(cb, 'a') == 1);
    int base = ca->nev;
    enum { N1 = 300, N2 = 1100 };
    static uint8_t data[N1 + N2][100];
    static int toks[N1 + N2];
    for (int i = 0; i < N1 + N2; i++)
        memset(data[i], i * 7 + 1, sizeof data[i]);
    for (int i = 0; i < N1; i++) {
        struct iovec iov[2] = {{data[i], 40}, {data[i] + 40, 60}};
        io_write(ca, conn, iov, 2, &toks[i]);
    }
    cr_assert_eq(count(ca, 'w'), 0, "a write was reported from inside the call");
    RUN_UNTIL(&loop, count(ca, 'w') == N1 && cb->rx_len == N1 * 100);
    cr_assert_eq(stats(a).pipe_writes, N1);
    cr_assert_eq(stats(a).pipe_batches, 1, "%d writes of one iteration went out in %llu uv_writes",
                 N1, (unsigned long long)stats(a).pipe_batches);
    /* More than one batch holds (512 writes): a batch each 512, still in order. */
    for (int i = N1; i < N1 + N2; i++) {
        struct iovec iov = {data[i], 100};
        io_write(ca, conn, &iov, 1, &toks[i]);
    }
    RUN_UNTIL(&loop, count(ca, 'w') == N1 + N2 && cb->rx_len == (N1 + N2) * 100);
    cr_assert_eq(stats(a).pipe_batches, 1 + (N2 + 511) / 512);
    for (int i = 0; i < N1 + N2; i++) {
        cr_assert_eq(ca->evs[base + i].token, &toks[i], "write %d reported out of order", i);
        cr_assert_eq(ca->evs[base + i].status, 0);
        cr_assert_eq(memcmp(cb->rx + (size_t)i * 100, data[i], 100), 0, "write %d's bytes", i);
    }
    /* Gathered and not yet written when the core closes: each reported canceled, once. */
    int late[5];
    for (int i = 0; i < 5; i++) {
        struct iovec iov = {data[i], 100};
        io_write(ca, conn, &iov, 1, &late[i]);
    }
    io_close(ca, conn);
    RUN_UNTIL(&loop, count(ca, 'w') == N1 + N2 + 5);
    run_for(&loop, 20);
    cr_assert_eq(count(ca, 'w'), N1 + N2 + 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(ca->evs[base + N1 + N2 + i].token, &late[i]);
        cr_assert_eq(ca->evs[base + N1 + N2 + i].status, UV_ECANCELED);
    }
    cr_assert_eq(cb->rx_len, (N1 + N2) * 100, "bytes of canceled writes arrived");
    close_all(&loop, a, b);
}

Test(rpc_uv_driver, writes_pending_at_close_are_reported_canceled_exactly_once) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca, *cb;
    aq_rpc_uv *a = open_one(&loop, &ca), *b = open_one(&loop, &cb);
    uint64_t conn = io_open(ca, aq_rpc_uv_self(b));
    RUN_UNTIL(&loop, count(ca, 'c') == 1);
    /* More than any socket buffer holds, so the write is still queued when we close. */
    size_t len = 64u << 20;
    uint8_t *data = calloc(1, len);
    struct iovec iov = {data, len};
    int tok;
    io_write(ca, conn, &iov, 1, &tok);
    io_close(ca, conn);
    RUN_UNTIL(&loop, count(ca, 'w') == 1);
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert_eq(count(ca, 'w'), 1);
    cr_assert_eq(find(ca, 'w')->token, &tok);
    cr_assert_eq(find(ca, 'w')->status, UV_ECANCELED);
    cr_assert_eq(count(ca, 'x'), 0, "a pipe the core closed got a closed report");

    /* A write to a connection that is gone: reported once, later, never from inside the call. */
    int tok2;
    io_write(ca, conn, &iov, 1, &tok2);
    cr_assert_eq(count(ca, 'w'), 1);
    RUN_UNTIL(&loop, count(ca, 'w') == 2);
    cr_assert_eq(ca->evs[ca->nev - 1].token, &tok2);
    cr_assert_lt(ca->evs[ca->nev - 1].status, 0);
    free(data);
    close_all(&loop, a, b);
}

Test(rpc_uv_driver, connect_to_a_dead_port_is_reported_and_ids_are_not_reused) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca;
    aq_rpc_uv *a = open_one(&loop, &ca);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    bind(t, (struct sockaddr *)&sin, sizeof sin);
    getsockname(t, (struct sockaddr *)&sin, &sl);
    close(t);
    aq_rpc_addr dead;
    memset(&dead, 0, sizeof dead);
    memcpy(&dead.ss, &sin, sizeof sin);
    uint64_t c1 = io_open(ca, &dead);
    RUN_UNTIL(&loop, count(ca, 'x') == 1);
    cr_assert_eq(find(ca, 'x')->conn, c1);
    cr_assert_eq(find(ca, 'x')->status, -ECONNREFUSED);
    uint64_t c2 = io_open(ca, &dead);
    cr_assert_neq(c2, c1);
    RUN_UNTIL(&loop, count(ca, 'x') == 2);
    close_all(&loop, a, NULL);
}

Test(rpc_uv_driver, timer_fires_once_not_early_and_can_be_disarmed) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca;
    aq_rpc_uv *a = open_one(&loop, &ca);
    uint64_t now = ca->io->now_us(ca->ctx);
    ca->timer_at = now + 30000;
    ca->io->set_timer(ca->ctx, ca->timer_at);
    RUN_UNTIL(&loop, count(ca, 't') == 1);
    /* Disarmed: nothing more fires. */
    ca->timer_at = ca->io->now_us(ca->ctx) + 20000;
    ca->io->set_timer(ca->ctx, ca->timer_at);
    ca->io->set_timer(ca->ctx, UINT64_MAX);
    for (int i = 0; i < 60; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert_eq(count(ca, 't'), 1);
    close_all(&loop, a, NULL);
}

Test(rpc_uv_driver, explicit_port_in_use_fails_and_leaves_nothing_open) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca;
    aq_rpc_uv *a = open_one(&loop, &ca);
    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%u", aq_rpc_addr_port(aq_rpc_uv_self(a)));
    aq_rpc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    aq_rpc_uv_opts o = {.bind = text};
    aq_rpc_uv *b = NULL;
    cr_assert_eq(aq_rpc_uv_open(&loop, &cfg, &o, &b), -EADDRINUSE);
    cr_assert_null(b);
    o.bind = "not-an-address";
    cr_assert_eq(aq_rpc_uv_open(&loop, &cfg, &o, &b), AQ_EINVAL);
    close_all(&loop, a, NULL);
}

Test(rpc_uv_driver, a_peer_reset_cannot_kill_the_process_with_sigpipe) {
    signal(SIGPIPE, SIG_DFL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca, *cb;
    aq_rpc_uv *a = open_one(&loop, &ca), *b = open_one(&loop, &cb);
    struct sigaction sa;
    cr_assert_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    cr_assert_eq(sa.sa_handler, SIG_IGN);
    /* Write into a pipe the other side has closed: an error report, not a dead process. */
    uint64_t conn = io_open(ca, aq_rpc_uv_self(b));
    RUN_UNTIL(&loop, count(ca, 'c') == 1 && count(cb, 'a') == 1);
    io_close(cb, find(cb, 'a')->conn);
    static uint8_t data[1 << 20];
    struct iovec iov = {data, sizeof data};
    int toks[8];
    for (int i = 0; i < 8; i++) {
        io_write(ca, conn, &iov, 1, &toks[i]);
        for (int k = 0; k < 20; k++) {
            uv_run(&loop, UV_RUN_NOWAIT);
            usleep(500);
        }
    }
    RUN_UNTIL(&loop, count(ca, 'w') == 8);
    cr_assert_eq(count(ca, 'x'), 1, "the broken pipe is reported once");
    close_all(&loop, a, b);
}

Test(rpc_uv_driver, a_connection_without_hello_is_closed_at_the_deadline_and_reported_once) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca;
    aq_rpc_uv_opts o = {.hello_timeout_ms = 200};
    aq_rpc_uv *a = open_with(&loop, &ca, &o);
    int silent = raw_connect(a), loris = raw_connect(a), good = raw_connect(a);
    RUN_UNTIL(&loop, count(ca, 'a') == 3);
    cr_assert_eq(send(good, "HELLO", IDENT_BYTES, 0), IDENT_BYTES);
    cr_assert_eq(send(loris, "H", 1, 0), 1); /* a start, never finished */
    RUN_UNTIL(&loop, stats(a).conns_unidentified == 2);
    RUN_UNTIL(&loop, closed_by_driver(silent) && closed_by_driver(loris));
    cr_assert_eq(count(ca, 'x'), 2, "each closed connection is reported to the core once");
    for (int i = 0; i < ca->nev; i++)
        if (ca->evs[i].kind == 'x')
            cr_assert_eq(ca->evs[i].status, AQ_ETIMEDOUT);
    /* Identified: it outlives the deadline many times over and still carries bytes. */
    run_for(&loop, 600);
    cr_assert(!closed_by_driver(good));
    size_t before = ca->rx_len;
    cr_assert_eq(send(good, "more", 4, 0), 4);
    RUN_UNTIL(&loop, ca->rx_len == before + 4);
    aq_rpc_uv_stats st = stats(a);
    cr_assert_eq(st.hello_timeouts, 2);
    cr_assert_eq(st.conns_inbound, 1);
    cr_assert_eq(st.conns_unidentified, 0);
    cr_assert_eq(st.conns_refused + st.hello_evicted, 0);
    close(silent);
    close(loris);
    close(good);
    close_all(&loop, a, NULL);
}

Test(rpc_uv_driver, over_the_unidentified_bound_the_oldest_is_closed_and_a_real_peer_gets_in) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca;
    aq_rpc_uv_opts o = {.hello_timeout_ms = 60000, .conns_unidentified_max = 4};
    aq_rpc_uv *a = open_with(&loop, &ca, &o);
    int s[6];
    for (int i = 0; i < 6; i++) {
        s[i] = raw_connect(a);
        RUN_UNTIL(&loop, count(ca, 'a') == i + 1); /* accepted in this order */
    }
    RUN_UNTIL(&loop, closed_by_driver(s[0]) && closed_by_driver(s[1]));
    for (int i = 2; i < 6; i++)
        cr_assert(!closed_by_driver(s[i]), "connection %d closed, only the oldest two should be",
                  i);
    cr_assert_eq(stats(a).hello_evicted, 2);
    cr_assert_eq(stats(a).conns_unidentified, 4);
    /* The slots are full of silent connections; a peer that says HELLO at once still gets in
     * (evicting s[2]) and stays in once identified. */
    int good = raw_connect(a);
    cr_assert_eq(send(good, "HELLO", IDENT_BYTES, 0), IDENT_BYTES);
    RUN_UNTIL(&loop, count(ca, 'a') == 7 && stats(a).conns_unidentified == 3 &&
                         stats(a).conns_inbound == 4);
    cr_assert(!closed_by_driver(good));
    cr_assert(closed_by_driver(s[2]), "the oldest silent one made room");
    for (int i = 0; i < 6; i++)
        close(s[i]);
    close(good);
    close_all(&loop, a, NULL);
}

Test(rpc_uv_driver, over_the_inbound_bound_a_new_connection_is_refused_at_once) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc *ca;
    aq_rpc_uv_opts o = {.conns_inbound_max = 3};
    aq_rpc_uv *a = open_with(&loop, &ca, &o);
    int s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = raw_connect(a);
        cr_assert_eq(send(s[i], "HELLO", IDENT_BYTES, 0), IDENT_BYTES);
    }
    RUN_UNTIL(&loop, count(ca, 'a') == 3 && stats(a).conns_unidentified == 0);
    int extra = raw_connect(a);
    RUN_UNTIL(&loop, closed_by_driver(extra));
    cr_assert_eq(count(ca, 'a'), 3, "the core never heard of the refused connection");
    cr_assert_eq(stats(a).conns_refused, 1);
    for (int i = 0; i < 3; i++)
        cr_assert(!closed_by_driver(s[i]));
    /* Room again once one leaves. */
    close(s[0]);
    RUN_UNTIL(&loop, stats(a).conns_inbound == 2);
    int again = raw_connect(a);
    RUN_UNTIL(&loop, count(ca, 'a') == 4);
    cr_assert(!closed_by_driver(again));
    cr_assert_eq(stats(a).conns_refused, 1);
    close(extra);
    close(again);
    close(s[1]);
    close(s[2]);
    close_all(&loop, a, NULL);
}
