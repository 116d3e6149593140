/* seed_repro: shows the silent loss aquifer exists to remove, and that rpc does not suffer it.
 *
 * Run inside a network namespace with net.ipv4.tcp_abort_on_overflow=1 (seed_repro.sh sets one
 * up). An overloaded receiver (tiny listen backlog, a loop that sleeps between accepts) gets N
 * messages twice: first from a naive sender (connect, write, close per message; every return value
 * checked, every error reported and the message sent again), then through rpc calls to an equally
 * overloaded rpc endpoint. The receiver counts the distinct, intact messages its application saw.
 * The last line printed is
 *   seed_repro: naive sent=N received=M lost=K; rpc sent=N received=R lost=L
 * and the exit status is 0 only when the naive side lost messages without any error telling its
 * sender (K > 0) and rpc lost none (L == 0).
 *
 * Both listeners use TCP_DEFER_ACCEPT (as Apache does by default and nginx's "deferred"): the
 * kernel decides whether the accept queue has room when the first data arrives. Loopback has no
 * latency, so without it the reset of an overflowed handshake reaches the sender while it is still
 * inside connect() and is reported; on a real network it comes after write() and close() have
 * returned. With it, the reset lands after write() has returned on loopback too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "aq_rpc_uv.h"

#define MSG_MAGIC      0x53454544u /* "SEED" */
#define HDR_LEN        20u
#define METHOD_DELIVER 7
#define MAX_RETRIES    50

typedef struct opts {
    int n;          /* messages */
    int size;       /* bytes per message, header included */
    int backlog;    /* receiver's listen backlog */
    int delay_us;   /* receiver's sleep per loop iteration */
    int senders;    /* naive sender threads */
    int window;     /* rpc calls in flight */
    int drain_ms;   /* receiver gives up after this long without a connection, once told */
    int timeout_s;  /* rpc call timeout */
    int deadline_s; /* whole rpc phase */
} opts;

/* ---- messages: magic | id | len | xxh64(payload) | payload ---- */

static void put32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void make_msg(uint8_t *buf, uint32_t id, uint32_t len) {
    uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1);
    for (uint32_t i = HDR_LEN; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    put32(buf, MSG_MAGIC);
    put32(buf + 4, id);
    put32(buf + 8, len);
    uint64_t h = XXH64(buf + HDR_LEN, len - HDR_LEN, id);
    memcpy(buf + 12, &h, 8);
}

/* Returns the message id, or -1 when the bytes are not one intact message below n. */
static int check_msg(const uint8_t *buf, size_t len, int n) {
    if (len < HDR_LEN || get32(buf) != MSG_MAGIC || get32(buf + 8) != len)
        return -1;
    uint32_t id = get32(buf + 4);
    if (id >= (uint32_t)n)
        return -1;
    uint64_t h;
    memcpy(&h, buf + 12, 8);
    if (XXH64(buf + HDR_LEN, len - HDR_LEN, id) != h)
        return -1;
    return (int)id;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die_with_parent(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
}

/* ---- the naive receiver (a child process) ---- */

static volatile sig_atomic_t told_to_drain;
static void on_usr1(int sig) {
    told_to_drain = 1;
}

static int read_all(int fd, uint8_t *buf, size_t cap, size_t *got) {
    *got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 2000);
        if (r <= 0)
            return -1;
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        *got += (size_t)n;
        if (*got == cap)
            return 0;
    }
}

static void naive_receiver(const opts *o, int lfd, int out_fd) {
    uint8_t *seen = calloc((size_t)o->n, 1);
    uint8_t *buf = malloc((size_t)o->size + 1);
    int received = 0, bad = 0;
    double idle_since = now_s();
    for (;;) {
        usleep((useconds_t)o->delay_us); /* the overload: slow to come back to accept */
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (told_to_drain && now_s() - idle_since > o->drain_ms / 1000.0)
                break;
            continue;
        }
        idle_since = now_s();
        int fl = fcntl(cfd, F_GETFL);
        fcntl(cfd, F_SETFL, fl & ~O_NONBLOCK);
        size_t got = 0;
        if (read_all(cfd, buf, (size_t)o->size + 1, &got) == 0) {
            int id = check_msg(buf, got, o->n);
            if (id >= 0 && !seen[id]) {
                seen[id] = 1;
                received++;
            } else if (id < 0) {
                bad++;
            }
        }
        close(cfd);
    }
    dprintf(out_fd, "%d %d\n", received, bad);
    free(seen);
    free(buf);
}

/* ---- the naive sender (threads in the main process) ---- */

typedef struct naive_ctx {
    const opts *o;
    struct sockaddr_in to;
    atomic_int next;
    atomic_int sent;   /* messages whose every syscall succeeded */
    atomic_int failed; /* messages given up after MAX_RETRIES errors */
    atomic_int errors; /* errors reported (each followed by a resend) */
} naive_ctx;

static int send_once(naive_ctx *nc, const uint8_t *msg, const char **what) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *what = "socket";
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&nc->to, sizeof nc->to) != 0) {
        int e = -errno;
        close(fd);
        *what = "connect";
        return e;
    }
    size_t off = 0, len = (size_t)nc->o->size;
    while (off < len) {
        ssize_t w = write(fd, msg + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            *what = "write";
            return e;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        *what = "close";
        return -errno;
    }
    return 0;
}

static void *naive_sender(void *arg) {
    naive_ctx *nc = arg;
    uint8_t *msg = malloc((size_t)nc->o->size);
    for (;;) {
        int i = atomic_fetch_add(&nc->next, 1);
        if (i >= nc->o->n)
            break;
        make_msg(msg, (uint32_t)i, (uint32_t)nc->o->size);
        int attempt = 0;
        for (;;) {
            const char *what = "";
            int r = send_once(nc, msg, &what);
            if (r == 0) {
                atomic_fetch_add(&nc->sent, 1);
                break;
            }
            int e = atomic_fetch_add(&nc->errors, 1);
            if (e < 10)
                fprintf(stderr, "naive: message %d: %s failed: %s (sending again)\n", i, what,
                        strerror(-r));
            if (++attempt >= MAX_RETRIES) {
                atomic_fetch_add(&nc->failed, 1);
                break;
            }
            usleep(10000);
        }
    }
    free(msg);
    return NULL;
}

static pid_t spawn_naive_receiver(const opts *o, int *port, int *out_rd) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    int defer_s = 5;
    if (lfd < 0 || setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s) != 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, o->backlog) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &sl) != 0) {
        perror("seed_repro: naive receiver socket");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        die_with_parent();
        close(p[0]);
        signal(SIGUSR1, on_usr1);
        naive_receiver(o, lfd, p[1]);
        _exit(0);
    }
    close(lfd);
    close(p[1]);
    *out_rd = p[0];
    return pid;
}

static int read_result(int fd, int *a, int *b) {
    char line[64] = {0};
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return sscanf(line, "%d %d", a, b) == 2 ? 0 : -1;
}

/* ---- the rpc receiver (a child process) ---- */

typedef struct rpc_recv {
    const opts *o;
    aq_rpc_uv *u;
    uint8_t *seen;
    int received, bad, out_fd;
    uv_prepare_t slow;
    uv_signal_t sig;
} rpc_recv;

static void rpc_recv_handler(void *ud, aq_rpc_incoming *in) {
    rpc_recv *rr = ud;
    size_t len = 0;
    const uint8_t *data = aq_rpc_incoming_data(in, &len);
    int id = data ? check_msg(data, len, rr->o->n) : -1;
    if (id < 0) {
        rr->bad++;
        aq_rpc_respond(in, AQ_EPROTO, (aq_rpc_buf){0});
        return;
    }
    if (!rr->seen[id]) {
        rr->seen[id] = 1;
        rr->received++;
    }
    aq_rpc_respond(in, 0, (aq_rpc_buf){0});
}

static void rpc_recv_slow(uv_prepare_t *h) {
    rpc_recv *rr = h->data;
    usleep((useconds_t)rr->o->delay_us); /* the same overload as the naive receiver's */
}

static void rpc_recv_closed(void *ud) {
    (void)ud;
}

static void rpc_recv_stop(uv_signal_t *s, int sig) {
    rpc_recv *rr = s->data;
    dprintf(rr->out_fd, "%d %d\n", rr->received, rr->bad);
    uv_close((uv_handle_t *)&rr->slow, NULL);
    uv_close((uv_handle_t *)&rr->sig, NULL);
    aq_rpc_uv_close(rr->u, rpc_recv_closed, NULL);
}

static pid_t spawn_rpc_receiver(const opts *o, aq_rpc_addr *addr, int *out_rd) {
    int port_pipe[2], out[2];
    if (pipe2(port_pipe, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        perror("pipe");
        exit(2);
    }
    /* Block SIGUSR1 before forking so the child cannot miss it before uv_signal is set up. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        die_with_parent();
        close(port_pipe[0]);
        close(out[0]);
        /* One accept per (slow) loop iteration, like the naive receiver. */
        setenv("UV_TCP_SINGLE_ACCEPT", "1", 1);
        uv_loop_t loop;
        uv_loop_init(&loop);
        rpc_recv rr = {.o = o, .out_fd = out[1]};
        rr.seen = calloc((size_t)o->n, 1);
        aq_rpc_config cfg;
        aq_rpc_config_init(&cfg);
        cfg.cluster_id = aq_rpc_cluster_id("seed_repro");
        aq_rpc_uv_opts uo = {.bind = "127.0.0.1:0", .backlog = o->backlog, .tcp_defer_accept_s = 5};
        int r = aq_rpc_uv_open(&loop, &cfg, &uo, &rr.u);
        if (r < 0) {
            fprintf(stderr, "seed_repro: rpc receiver: %s\n", aq_strerror(r));
            _exit(2);
        }
        aq_rpc_handle(aq_rpc_uv_core(rr.u), METHOD_DELIVER, rpc_recv_handler, &rr);
        uv_prepare_init(&loop, &rr.slow);
        rr.slow.data = &rr;
        uv_prepare_start(&rr.slow, rpc_recv_slow);
        uv_signal_init(&loop, &rr.sig);
        rr.sig.data = &rr;
        uv_signal_start(&rr.sig, rpc_recv_stop, SIGUSR1);
        sigprocmask(SIG_SETMASK, &old, NULL);
        dprintf(port_pipe[1], "%u\n", aq_rpc_addr_port(aq_rpc_uv_self(rr.u)));
        close(port_pipe[1]);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        free(rr.seen);
        _exit(0);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(port_pipe[1]);
    close(out[1]);
    char line[32] = {0};
    ssize_t n = read(port_pipe[0], line, sizeof line - 1);
    close(port_pipe[0]);
    unsigned port = 0;
    if (n <= 0 || sscanf(line, "%u", &port) != 1 || port == 0 || port > 65535) {
        fprintf(stderr, "seed_repro: rpc receiver did not start\n");
        kill(pid, SIGKILL);
        exit(2);
    }
    aq_rpc_addr_parse("127.0.0.1:0", addr);
    aq_rpc_addr_set_port(addr, (uint16_t)port);
    *out_rd = out[0];
    return pid;
}

/* ---- the rpc sender (the main process) ---- */

#define MAX_ENDPOINTS 64

/* Like the naive side's threads, several sending endpoints, each with its own pipe: their
 * connects hit the receiver's tiny accept queue together. */
typedef struct rpc_send {
    const opts *o;
    int nep;
    aq_rpc_uv *u[MAX_ENDPOINTS];
    aq_rpc_peer *peer[MAX_ENDPOINTS];
    aq_rpc_peer_stats total; /* summed over endpoints at the end */
    uint8_t *msgs;           /* all N messages, built once */
    int next, inflight, sent, failed, errors;
    int *attempts;
    uv_timer_t deadline;
    bool stopping, timed_out;
} rpc_send;

static void rpc_issue(rpc_send *rs, int id);

static void rpc_finish(rpc_send *rs) {
    if (rs->stopping)
        return;
    rs->stopping = true;
    uv_close((uv_handle_t *)&rs->deadline, NULL);
    for (int k = 0; k < rs->nep; k++) {
        aq_rpc_peer_stats ps;
        aq_rpc_peer_stats_get(rs->peer[k], &ps);
        rs->total.pipe_connects += ps.pipe_connects;
        rs->total.pipe_failures += ps.pipe_failures;
        rs->total.retransmits += ps.retransmits;
        aq_rpc_uv_close(rs->u[k], NULL, NULL);
    }
}

static void rpc_pump(rpc_send *rs) {
    while (!rs->stopping && rs->inflight < rs->o->window && rs->next < rs->o->n)
        rpc_issue(rs, rs->next++);
    if (!rs->stopping && rs->inflight == 0 && rs->next >= rs->o->n)
        rpc_finish(rs);
}

static void rpc_done(void *ud, const aq_rpc_result *r) {
    rpc_send *rs = (rpc_send *)((void **)ud)[0];
    int id = (int)(intptr_t)((void **)ud)[1];
    free(ud);
    rs->inflight--;
    if (r->err == 0 && r->status == 0) {
        rs->sent++;
    } else if (!rs->stopping) {
        /* An explicit failure: the sender knows, reports it and sends again. */
        char why[256];
        if (rs->errors++ < 10)
            fprintf(
                stderr, "rpc: message %d: %s (sending again)\n", id,
                aq_rpc_result_describe(aq_rpc_uv_core(rs->u[id % rs->nep]), r, why, sizeof why));
        if (++rs->attempts[id] < MAX_RETRIES) {
            rpc_issue(rs, id);
        } else {
            rs->failed++;
        }
    }
    rpc_pump(rs);
}

static void rpc_issue(rpc_send *rs, int id) {
    void **ud = malloc(2 * sizeof(void *));
    ud[0] = rs;
    ud[1] = (void *)(intptr_t)id;
    aq_rpc_buf b = {.data = rs->msgs + (size_t)id * (size_t)rs->o->size,
                    .len = (size_t)rs->o->size};
    int ep = id % rs->nep;
    int r = aq_rpc_call(aq_rpc_uv_core(rs->u[ep]), rs->peer[ep], METHOD_DELIVER, b,
                        (uint64_t)rs->o->timeout_s * 1000000u, rpc_done, ud);
    if (r < 0) {
        free(ud);
        fprintf(stderr, "rpc: message %d: call failed at once: %s\n", id, aq_strerror(r));
        rs->errors++;
        rs->failed++;
        return;
    }
    rs->inflight++;
}

static void rpc_deadline(uv_timer_t *t) {
    rpc_send *rs = t->data;
    fprintf(stderr, "seed_repro: rpc phase passed its %d s deadline with %d calls in flight\n",
            rs->o->deadline_s, rs->inflight);
    rs->timed_out = true;
    rpc_finish(rs);
}

static int run_rpc_sender(const opts *o, const aq_rpc_addr *to, int *errors, int *failed,
                          aq_rpc_peer_stats *total) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    rpc_send rs = {.o = o};
    rs.msgs = malloc((size_t)o->n * (size_t)o->size);
    rs.attempts = calloc((size_t)o->n, sizeof(int));
    for (int i = 0; i < o->n; i++)
        make_msg(rs.msgs + (size_t)i * (size_t)o->size, (uint32_t)i, (uint32_t)o->size);
    rs.nep = o->senders < MAX_ENDPOINTS ? o->senders : MAX_ENDPOINTS;
    for (int k = 0; k < rs.nep; k++) {
        aq_rpc_config cfg;
        aq_rpc_config_init(&cfg);
        cfg.cluster_id = aq_rpc_cluster_id("seed_repro");
        aq_rpc_uv_opts uo = {.bind = "127.0.0.1:0"};
        int r = aq_rpc_uv_open(&loop, &cfg, &uo, &rs.u[k]);
        if (r < 0) {
            fprintf(stderr, "seed_repro: rpc sender: %s\n", aq_strerror(r));
            exit(2);
        }
        rs.peer[k] = aq_rpc_peer_get(aq_rpc_uv_core(rs.u[k]), to);
        aq_rpc_peer_set_name(rs.peer[k], "receiver");
    }
    uv_timer_init(&loop, &rs.deadline);
    rs.deadline.data = &rs;
    uv_timer_start(&rs.deadline, rpc_deadline, (uint64_t)o->deadline_s * 1000, 0);
    rpc_pump(&rs);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(rs.msgs);
    free(rs.attempts);
    *errors = rs.errors;
    *total = rs.total;
    *failed = rs.failed + (rs.timed_out ? o->n - rs.sent - rs.failed : 0);
    return rs.sent;
}

/* ---- orchestration ---- */

static int stop_receiver(pid_t pid, int out_rd, int *received, int *bad) {
    kill(pid, SIGUSR1);
    int r = read_result(out_rd, received, bad);
    close(out_rd);
    int st;
    /* The receiver exits right after reporting; never wait on one that did not report. */
    if (r < 0)
        kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return r;
}

static void usage(void) {
    fprintf(stderr, "usage: seed_repro [-n messages] [-s bytes] [-b backlog] [-d delay_us] "
                    "[-t sender_threads] [-w rpc_window] [-N (naive phase only)]\n");
    exit(2);
}

int main(int argc, char **argv) {
    opts o = {.n = 1000,
              .size = 4096,
              .backlog = 8,
              .delay_us = 2000,
              .senders = 32,
              .window = 64,
              .drain_ms = 1500,
              .timeout_s = 30,
              .deadline_s = 120};
    bool naive_only = false;
    int c;
    while ((c = getopt(argc, argv, "n:s:b:d:t:w:N")) != -1) {
        switch (c) {
        case 'n':
            o.n = atoi(optarg);
            break;
        case 's':
            o.size = atoi(optarg);
            break;
        case 'b':
            o.backlog = atoi(optarg);
            break;
        case 'd':
            o.delay_us = atoi(optarg);
            break;
        case 't':
            o.senders = atoi(optarg);
            break;
        case 'w':
            o.window = atoi(optarg);
            break;
        case 'N':
            naive_only = true;
            break;
        default:
            usage();
        }
    }
    if (o.n < 1 || o.n > 1000000 || o.size < (int)AQ_RPC_DGRAM_MAX + 1 || o.size > (1 << 20) ||
        o.backlog < 1 || o.delay_us < 0 || o.senders < 1 || o.senders > 1024 || o.window < 1)
        usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Phase 1: naive. */
    int port, out_rd;
    pid_t rpid = spawn_naive_receiver(&o, &port, &out_rd);
    naive_ctx nc = {.o = &o};
    nc.to.sin_family = AF_INET;
    nc.to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    nc.to.sin_port = htons((uint16_t)port);
    double t0 = now_s();
    pthread_t *th = calloc((size_t)o.senders, sizeof *th);
    for (int i = 0; i < o.senders; i++)
        pthread_create(&th[i], NULL, naive_sender, &nc);
    for (int i = 0; i < o.senders; i++)
        pthread_join(th[i], NULL);
    free(th);
    int naive_recv = 0, naive_bad = 0;
    if (stop_receiver(rpid, out_rd, &naive_recv, &naive_bad) < 0) {
        fprintf(stderr, "seed_repro: naive receiver did not report\n");
        return 2;
    }
    int naive_sent = atomic_load(&nc.sent);
    printf("naive: %d messages of %d B, %d sender threads, receiver backlog %d sleeping %d us per "
           "accept: sent=%d (errors reported and resent: %d, given up: %d) received=%d "
           "malformed=%d in %.1f s\n",
           o.n, o.size, o.senders, o.backlog, o.delay_us, naive_sent, atomic_load(&nc.errors),
           atomic_load(&nc.failed), naive_recv, naive_bad, now_s() - t0);

    if (naive_only)
        return naive_sent - naive_recv > 0 ? 0 : 1;

    /* Phase 2: rpc. */
    aq_rpc_addr raddr;
    rpid = spawn_rpc_receiver(&o, &raddr, &out_rd);
    t0 = now_s();
    int rpc_errors = 0, rpc_failed = 0;
    aq_rpc_peer_stats tot;
    int rpc_sent = run_rpc_sender(&o, &raddr, &rpc_errors, &rpc_failed, &tot);
    int rpc_got = 0, rpc_bad = 0;
    if (stop_receiver(rpid, out_rd, &rpc_got, &rpc_bad) < 0) {
        fprintf(stderr, "seed_repro: rpc receiver did not report\n");
        return 2;
    }
    printf("rpc: %d messages of %d B from %d endpoints, window %d, same receiver overload: "
           "sent=%d (errors reported and resent: %d, given up: %d) received=%d malformed=%d in "
           "%.1f s; pipes connected %llu, pipes reset or failed %llu, resends %llu\n",
           o.n, o.size, o.senders < MAX_ENDPOINTS ? o.senders : MAX_ENDPOINTS, o.window, rpc_sent,
           rpc_errors, rpc_failed, rpc_got, rpc_bad, now_s() - t0,
           (unsigned long long)tot.pipe_connects, (unsigned long long)tot.pipe_failures,
           (unsigned long long)tot.retransmits);

    int naive_lost = naive_sent - naive_recv;
    int rpc_lost = rpc_sent - rpc_got;
    printf("seed_repro: naive sent=%d received=%d lost=%d; rpc sent=%d received=%d lost=%d\n",
           naive_sent, naive_recv, naive_lost, rpc_sent, rpc_got, rpc_lost);
    bool ok = naive_lost > 0 && rpc_lost == 0 && rpc_sent == o.n;
    return ok ? 0 : 1;
}
