/* The rpc core over real sockets: this process calls an rpc_uv_server child on loopback. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "aq_rpc_uv.h"
#include "rpc_uv_proto.h"

/* Children of the running test, killed in fini whatever happened. */
static pid_t children[8];
static int nchildren;

static void kill_children(void) {
    for (int i = 0; i < nchildren; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
    nchildren = 0;
}

static void kill_child(pid_t pid) {
    for (int i = 0; i < nchildren; i++) {
        if (children[i] == pid) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            children[i] = 0;
        }
    }
}

/* Starts the server on port (0: ephemeral) and returns the port it listens on. */
static uint16_t spawn_server(uint16_t port, pid_t *pid_out) {
    cr_assert_lt(nchildren, (int)(sizeof children / sizeof children[0]));
    uint16_t bound = 0;
    pid_t pid = proto_spawn_server(RPC_UV_SERVER, port, &bound);
    cr_assert_gt(pid, 0, "server did not start");
    children[nchildren++] = pid;
    if (port)
        cr_assert_eq(bound, port);
    *pid_out = pid;
    return bound;
}

static aq_rpc_addr loopback(uint16_t port) {
    aq_rpc_addr a;
    cr_assert_eq(aq_rpc_addr_parse("127.0.0.1:0", &a), 0);
    aq_rpc_addr_set_port(&a, port);
    return a;
}

static aq_rpc_uv *open_client(uv_loop_t *loop) {
    aq_rpc_config cfg;
    aq_rpc_config_init(&cfg);
    cfg.cluster_id = aq_rpc_cluster_id("rpc_uv_test");
    aq_rpc_uv *u = NULL;
    int r = aq_rpc_uv_open(loop, &cfg, NULL, &u);
    cr_assert_eq(r, 0, "aq_rpc_uv_open: %s", aq_strerror(r));
    return u;
}

static void closed_cb(void *ud) {
    *(bool *)ud = true;
}

static void close_client(uv_loop_t *loop, aq_rpc_uv *u) {
    bool closed = false;
    aq_rpc_uv_close(u, closed_cb, &closed);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert(closed);
    cr_assert_eq(uv_loop_close(loop), 0, "handles left open after aq_rpc_uv_close");
}

static void release_free(void *ctx) {
    free(ctx);
}

TestSuite(rpc_uv, .fini = kill_children, .timeout = 240);

/* ---- 10,000 calls with 16 B and 4 MiB payloads, every reply checked ---- */

enum { KIND_SMALL, KIND_BIG_REQ, KIND_BIG_REPLY };

typedef struct exch {
    aq_rpc_uv *u;
    aq_rpc_peer *peer;
    const uint8_t *pattern;
    int total, next, inflight, window;
    int done, ok, big_req, big_reply;
    int first_err;
    char first_err_text[256];
    uint64_t count; /* handler runs the server reported at the end */
} exch;

typedef struct call {
    exch *x;
    int kind;
    uint8_t small[16];
    XXH128_hash_t expect_hash, expect_seeded;
} call;

static void exch_pump(exch *x);

static void note_error(exch *x, const aq_rpc_result *r, const char *what) {
    if (x->first_err)
        return;
    x->first_err = r->err ? r->err : (r->status ? r->status : AQ_EPROTO);
    char d[200];
    snprintf(x->first_err_text, sizeof x->first_err_text, "%s: %s", what,
             aq_rpc_result_describe(aq_rpc_uv_core(x->u), r, d, sizeof d));
}

static void exch_done(void *ud, const aq_rpc_result *r) {
    call *c = ud;
    exch *x = c->x;
    x->inflight--;
    x->done++;
    if (r->err || r->status) {
        note_error(x, r, "call failed");
    } else if (c->kind == KIND_BIG_REPLY) {
        /* Expect the 16 request bytes followed by the pattern. */
        XXH3_state_t *st = XXH3_createState();
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, c->small, 16);
        XXH3_128bits_update(st, x->pattern + 16, BIG_LEN - 16);
        XXH128_hash_t want = XXH3_128bits_digest(st);
        XXH3_freeState(st);
        if (r->len != BIG_LEN || !XXH128_isEqual(XXH3_128bits(r->data, r->len), want))
            note_error(x, r, "big reply differs");
        else
            x->ok++;
    } else {
        XXH128_canonical_t want[2];
        XXH128_canonicalFromHash(&want[0], c->expect_hash);
        XXH128_canonicalFromHash(&want[1], c->expect_seeded);
        if (r->len != sizeof want || memcmp(r->data, want, sizeof want) != 0)
            note_error(x, r, "hash reply differs");
        else
            x->ok++;
    }
    free(c);
    exch_pump(x);
}

static void exch_issue(exch *x, int i) {
    call *c = calloc(1, sizeof *c);
    cr_assert(c);
    c->x = x;
    /* About 1% of the requests and 1% of the replies are 4 MiB; the rest are 16 B. */
    c->kind = i % 97 == 5 ? KIND_BIG_REQ : i % 89 == 7 ? KIND_BIG_REPLY : KIND_SMALL;
    uint64_t stamp[2] = {0x5EED0000ull + (uint64_t)i, XXH64(&i, sizeof i, 1)};
    memcpy(c->small, stamp, 16);
    aq_rpc_buf b;
    uint16_t method = M_HASH;
    if (c->kind == KIND_BIG_REQ) {
        uint8_t *big = malloc(BIG_LEN);
        cr_assert(big);
        memcpy(big, x->pattern, BIG_LEN);
        memcpy(big + 1000, stamp, 16);
        c->expect_hash = XXH3_128bits(big, BIG_LEN);
        c->expect_seeded = XXH3_128bits_withSeed(big, BIG_LEN, BIG_LEN);
        b = (aq_rpc_buf){.data = big, .len = BIG_LEN, .release = release_free, .ctx = big};
        x->big_req++;
    } else {
        c->expect_hash = XXH3_128bits(c->small, 16);
        c->expect_seeded = XXH3_128bits_withSeed(c->small, 16, 16);
        b = (aq_rpc_buf){.data = c->small, .len = 16};
        if (c->kind == KIND_BIG_REPLY) {
            method = M_BIG;
            x->big_reply++;
        }
    }
    int r = aq_rpc_call(aq_rpc_uv_core(x->u), x->peer, method, b, 60 * 1000000ull, exch_done, c);
    cr_assert_eq(r, 0, "aq_rpc_call: %s", aq_strerror(r));
    x->inflight++;
}

static void count_done(void *ud, const aq_rpc_result *r) {
    exch *x = ud;
    if (r->err || r->status || r->len != 8)
        note_error(x, r, "count");
    else
        memcpy(&x->count, r->data, 8);
    x->done++;
}

static void exch_pump(exch *x) {
    while (x->inflight < x->window && x->next < x->total && !x->first_err)
        exch_issue(x, x->next++);
    if (x->inflight == 0 && (x->next == x->total || x->first_err) && x->done == x->next) {
        int r = aq_rpc_call(aq_rpc_uv_core(x->u), x->peer, M_COUNT, (aq_rpc_buf){0},
                            10 * 1000000ull, count_done, x);
        cr_assert_eq(r, 0);
    }
}

Test(rpc_uv, ten_thousand_calls_small_and_4MiB_verified) {
    pid_t pid;
    uint16_t port = spawn_server(0, &pid);
    uv_loop_t loop;
    uv_loop_init(&loop);
    exch x = {.total = 10000, .window = 32};
    x.u = open_client(&loop);
    uint8_t *pattern = proto_pattern();
    x.pattern = pattern;
    aq_rpc_addr to = loopback(port);
    x.peer = aq_rpc_peer_get(aq_rpc_uv_core(x.u), &to);
    exch_pump(&x);
    while (x.done < x.next + 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    aq_rpc_peer_stats ps;
    aq_rpc_peer_stats_get(x.peer, &ps);
    close_client(&loop, x.u);
    free(pattern);
    cr_assert_eq(x.first_err, 0, "%s", x.first_err_text);
    cr_assert_eq(x.ok, 10000);
    cr_assert_gt(x.big_req, 50);
    cr_assert_gt(x.big_reply, 50);
    /* The server ran its handler once per call, however often the core resent. */
    cr_assert_eq(x.count, 10000, "server handled %llu calls", (unsigned long long)x.count);
    cr_log_info("10000 calls (%d with 4 MiB requests, %d with 4 MiB replies): %llu retransmits, "
                "%llu pipe connects",
                x.big_req, x.big_reply, (unsigned long long)ps.retransmits,
                (unsigned long long)ps.pipe_connects);
    kill_child(pid);
}

/* ---- a call to a port where nothing listens ---- */

typedef struct one {
    bool done;
    int err;
    char text[256];
} one;

static void one_done(void *ud, const aq_rpc_result *r) {
    one *o = ((void **)ud)[0];
    aq_rpc_uv *u = ((void **)ud)[1];
    o->done = true;
    o->err = r->err;
    aq_rpc_result_describe(aq_rpc_uv_core(u), r, o->text, sizeof o->text);
}

/* A port nobody uses: bound (UDP and TCP) and released again. */
static uint16_t dead_port(void) {
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    cr_assert_eq(bind(t, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(t, (struct sockaddr *)&a, &sl), 0);
    close(t);
    return ntohs(a.sin_port);
}

Test(rpc_uv, call_to_nobody_times_out_naming_the_peer) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc_uv *u = open_client(&loop);
    uint16_t port = dead_port();
    aq_rpc_addr to = loopback(port);
    aq_rpc_peer *peer = aq_rpc_peer_get(aq_rpc_uv_core(u), &to);
    char name[64];
    snprintf(name, sizeof name, "127.0.0.1:%u", port);

    static uint8_t big[8192]; /* over a datagram: goes over the pipe, whose connect is refused */
    one small_o = {0}, big_o = {0};
    void *ud_small[2] = {&small_o, u}, *ud_big[2] = {&big_o, u};
    cr_assert_eq(aq_rpc_call(aq_rpc_uv_core(u), peer, M_HASH, (aq_rpc_buf){.data = "x", .len = 1},
                             1500000, one_done, ud_small),
                 0);
    cr_assert_eq(aq_rpc_call(aq_rpc_uv_core(u), peer, M_HASH,
                             (aq_rpc_buf){.data = big, .len = sizeof big}, 1500000, one_done,
                             ud_big),
                 0);
    while (!(small_o.done && big_o.done) && uv_run(&loop, UV_RUN_ONCE))
        ;
    close_client(&loop, u);
    cr_assert(small_o.done && big_o.done);
    cr_assert_eq(small_o.err, AQ_ETIMEDOUT, "small call: %s", small_o.text);
    cr_assert_eq(big_o.err, AQ_ETIMEDOUT, "big call: %s", big_o.text);
    cr_assert(strstr(small_o.text, name), "'%s' does not name %s", small_o.text, name);
    cr_assert(strstr(big_o.text, name), "'%s' does not name %s", big_o.text, name);
}

/* ---- the server dies mid-run and comes back ---- */

typedef struct churn {
    aq_rpc_uv *u;
    aq_rpc_peer *peer;
    uv_loop_t *loop;
    int window, inflight, issued, completed;
    int ok_before, ok_after, timedout, restarted, other_err;
    int other_err_code;
    bool restarted_server; /* calls issued from now on count as "after" */
    bool stop;
    uint8_t mid[6000]; /* some calls go over the pipe */
} churn;

typedef struct ccall {
    churn *c;
    bool after;
} ccall;

static void churn_pump(churn *c);

static void churn_done(void *ud, const aq_rpc_result *r) {
    ccall *cc = ud;
    churn *c = cc->c;
    c->inflight--;
    c->completed++;
    if (r->err == 0 && r->status == 0) {
        if (cc->after)
            c->ok_after++;
        else
            c->ok_before++;
    } else if (r->err == AQ_ETIMEDOUT) {
        c->timedout++;
    } else if (r->err == AQ_ERESTARTED) {
        c->restarted++;
    } else {
        c->other_err++;
        c->other_err_code = r->err ? r->err : r->status;
    }
    free(cc);
    churn_pump(c);
}

static void churn_pump(churn *c) {
    while (!c->stop && c->inflight < c->window) {
        ccall *cc = malloc(sizeof *cc);
        cr_assert(cc);
        cc->c = c;
        cc->after = c->restarted_server;
        size_t len = c->issued % 4 == 0 ? sizeof c->mid : 16;
        int r = aq_rpc_call(aq_rpc_uv_core(c->u), c->peer, M_HASH,
                            (aq_rpc_buf){.data = c->mid, .len = len}, 2000000, churn_done, cc);
        cr_assert_eq(r, 0, "aq_rpc_call: %s", aq_strerror(r));
        c->inflight++;
        c->issued++;
    }
}

static void run_until(uv_loop_t *loop, churn *c, bool (*cond)(churn *), double max_s) {
    uint64_t end = uv_hrtime() + (uint64_t)(max_s * 1e9);
    while (!cond(c) && uv_hrtime() < end)
        uv_run(loop, UV_RUN_ONCE);
}

static bool some_ok(churn *c) {
    return c->ok_before >= 300;
}
static bool some_failed(churn *c) {
    return c->timedout + c->restarted >= 16;
}
static bool some_ok_after(churn *c) {
    return c->ok_after >= 300;
}
static bool drained(churn *c) {
    return c->inflight == 0;
}

Test(rpc_uv, server_killed_mid_run_fails_calls_clearly_then_recovers) {
    pid_t pid;
    uint16_t port = spawn_server(0, &pid);
    uv_loop_t loop;
    uv_loop_init(&loop);
    churn c = {.window = 16, .loop = &loop};
    c.u = open_client(&loop);
    aq_rpc_addr to = loopback(port);
    c.peer = aq_rpc_peer_get(aq_rpc_uv_core(c.u), &to);

    churn_pump(&c);
    run_until(&loop, &c, some_ok, 30);
    cr_assert_geq(c.ok_before, 300, "only %d calls succeeded before the kill", c.ok_before);

    kill_child(pid); /* mid-run: calls are in flight */
    run_until(&loop, &c, some_failed, 30);
    cr_assert_geq(c.timedout + c.restarted, 16, "calls to a dead server did not fail");

    spawn_server(port, &pid);
    c.restarted_server = true;
    run_until(&loop, &c, some_ok_after, 60);
    c.stop = true;
    run_until(&loop, &c, drained, 30);
    aq_rpc_uv_stats st;
    aq_rpc_uv_stats_get(c.u, &st);
    close_client(&loop, c.u);

    cr_assert_eq(c.inflight, 0, "calls still pending: a call hung");
    cr_assert_eq(c.completed, c.issued);
    cr_assert_eq(c.other_err, 0, "unexpected error %s", aq_strerror(c.other_err_code));
    cr_assert_geq(c.ok_after, 300, "only %d calls succeeded after the restart", c.ok_after);
    cr_log_info("churn: %d ok before, %d timed out, %d restarted, %d ok after; %llu connections "
                "opened",
                c.ok_before, c.timedout, c.restarted, c.ok_after,
                (unsigned long long)st.conns_opened);
}

/* ---- bad input to the driver ---- */

Test(rpc_uv, open_rejects_bad_addresses_and_busy_ports) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    aq_rpc_config cfg;
    aq_rpc_config_init(&cfg);
    aq_rpc_uv *u = NULL;
    aq_rpc_uv_opts o = {.bind = "localhost:1"};
    cr_assert_lt(aq_rpc_uv_open(&loop, &cfg, &o, &u), 0);
    o.bind = "127.0.0.1:99999";
    cr_assert_lt(aq_rpc_uv_open(&loop, &cfg, &o, &u), 0);
    cr_assert_null(u);

    /* Two endpoints on one explicit port: the second fails with EADDRINUSE, leaving nothing. */
    aq_rpc_uv *a = open_client(&loop);
    char bind[64];
    aq_rpc_addr_format(aq_rpc_uv_self(a), bind, sizeof bind);
    o.bind = bind;
    cr_assert_eq(aq_rpc_uv_open(&loop, &cfg, &o, &u), -EADDRINUSE);
    cr_assert_null(u);
    close_client(&loop, a);
}

/* ---- IPv6: two endpoints in this process on [::1], one call over UDP and one over the pipe ----
 */

static void echo_handler(void *ud, aq_rpc_incoming *in) {
    size_t len = 0;
    void *d = aq_rpc_incoming_take(in, &len);
    aq_rpc_respond(in, 0, (aq_rpc_buf){.data = d, .len = len, .release = release_free, .ctx = d});
}

typedef struct v6call {
    bool done;
    int err;
    size_t len;
    bool same;
    const uint8_t *sent;
} v6call;

static void v6_done(void *ud, const aq_rpc_result *r) {
    v6call *c = ud;
    c->done = true;
    c->err = r->err ? r->err : r->status;
    c->len = r->len;
    c->same = r->data && memcmp(r->data, c->sent, r->len) == 0;
}

/* Two endpoints on bind in this process, b echoing; the peer of b as a sees it. */
static aq_rpc_peer *open_pair(uv_loop_t *loop, const char *bind, aq_rpc_uv **a, aq_rpc_uv **b) {
    uv_loop_init(loop);
    aq_rpc_config cfg;
    aq_rpc_config_init(&cfg);
    cfg.cluster_id = aq_rpc_cluster_id("rpc_uv_test");
    aq_rpc_uv_opts o = {.bind = bind};
    int r = aq_rpc_uv_open(loop, &cfg, &o, a);
    cr_assert_eq(r, 0, "open %s: %s", bind, aq_strerror(r));
    cr_assert_eq(aq_rpc_uv_open(loop, &cfg, &o, b), 0);
    aq_rpc_handle(aq_rpc_uv_core(*b), M_ECHO, echo_handler, NULL);
    return aq_rpc_peer_get(aq_rpc_uv_core(*a), aq_rpc_uv_self(*b));
}

static void close_pair(uv_loop_t *loop, aq_rpc_uv *a, aq_rpc_uv *b) {
    bool da = false, db = false;
    aq_rpc_uv_close(a, closed_cb, &da);
    aq_rpc_uv_close(b, closed_cb, &db);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert(da && db);
    cr_assert_eq(uv_loop_close(loop), 0);
}

Test(rpc_uv, ipv6_endpoints_exchange_small_and_pipe_calls) {
    uv_loop_t loop;
    aq_rpc_uv *a = NULL, *b = NULL;
    aq_rpc_peer *peer = open_pair(&loop, "[::1]:0", &a, &b);
    cr_assert_eq(aq_rpc_uv_self(a)->ss.ss_family, AF_INET6);

    static uint8_t big[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    v6call small_c = {.sent = big}, big_c = {.sent = big};
    cr_assert_eq(aq_rpc_call(aq_rpc_uv_core(a), peer, M_ECHO, (aq_rpc_buf){.data = big, .len = 100},
                             5000000, v6_done, &small_c),
                 0);
    cr_assert_eq(aq_rpc_call(aq_rpc_uv_core(a), peer, M_ECHO,
                             (aq_rpc_buf){.data = big, .len = sizeof big}, 5000000, v6_done,
                             &big_c),
                 0);
    while (!(small_c.done && big_c.done) && uv_run(&loop, UV_RUN_ONCE))
        ;
    close_pair(&loop, a, b);
    cr_assert_eq(small_c.err, 0, "small call: %s", aq_strerror(small_c.err));
    cr_assert_eq(big_c.err, 0, "pipe call: %s", aq_strerror(big_c.err));
    cr_assert(small_c.len == 100 && small_c.same);
    cr_assert(big_c.len == sizeof big && big_c.same);
}

/* ---- every pipe socket, both ends, has its retransmission backoff capped ---- */

#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44
#endif

/* The connected TCP sockets of this process whose TCP_RTO_MAX_MS is want; -1 when the kernel
 * does not know the option. */
static int count_capped_pipes(int want, int *connected) {
    int capped = 0;
    *connected = 0;
    for (int fd = 0; fd < 4096; fd++) {
        int type = 0, listening = 0;
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &l) != 0 ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
            continue;
        l = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_STREAM)
            continue;
        l = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) != 0 || listening)
            continue;
        (*connected)++;
        int ms = 0;
        l = sizeof ms;
        if (getsockopt(fd, IPPROTO_TCP, TCP_RTO_MAX_MS, &ms, &l) != 0)
            return errno == ENOPROTOOPT ? -1 : 0;
        capped += ms == want;
    }
    return capped;
}

Test(rpc_uv, pipe_sockets_cap_their_retransmission_backoff) {
    uv_loop_t loop;
    aq_rpc_uv *a = NULL, *b = NULL;
    aq_rpc_peer *peer = open_pair(&loop, "127.0.0.1:0", &a, &b);
    static uint8_t big[100000];
    v6call c = {.sent = big};
    cr_assert_eq(aq_rpc_call(aq_rpc_uv_core(a), peer, M_ECHO,
                             (aq_rpc_buf){.data = big, .len = sizeof big}, 5000000, v6_done, &c),
                 0);
    while (!c.done && uv_run(&loop, UV_RUN_ONCE))
        ;
    int connected = 0;
    int capped = count_capped_pipes(1000, &connected);
    close_pair(&loop, a, b);
    cr_assert_eq(c.err, 0, "pipe call: %s", aq_strerror(c.err));
    if (capped < 0)
        cr_skip_test("this kernel has no TCP_RTO_MAX_MS (before 6.15)");
    /* The connecting end and the accepted end: the backoff of each direction is its sender's. */
    cr_assert_geq(connected, 2, "%d connected, %d capped", connected, capped);
    cr_assert_eq(capped, connected, "%d of %d pipe sockets capped", capped, connected);
}
