/* The libuv driver: sockets, connections and the timer behind one rpc core (see aq_rpc_uv.h). */
#include "aq_rpc_uv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Datagrams are received with recvmmsg into slots a little larger than any datagram of ours (a
 * larger one is cut, flagged and dropped). */
#define UDP_SLOT        2048
#define UDP_SLOTS       64
#define UDP_ROUNDS      8 /* recvmmsg calls per readiness at most, so input cannot starve the loop */
#define UDP_QUEUE_MAX   (16u << 20) /* bytes of copied datagrams waiting for the socket */
#define UDP_BUF_DEFAULT (4 << 20)
#define IOV_STACK       16
/* Pipe writes the core makes in one loop iteration leave together, as one uv_write (one writev)
 * per connection at the end of it; a batch this large goes at once. */
#define PEND_BUFS     1024
#define PEND_TOKS     512
#define BATCH_MAX     64 /* datagrams gathered for one sendmmsg */
#define BATCH_SLOT    AQ_RPC_DGRAM_MAX
#define BIND_ATTEMPTS 64

#define HELLO_TIMEOUT_DEFAULT_MS 5000
#define UNIDENTIFIED_DEFAULT     256
#define INBOUND_DEFAULT          4096
#define INBOUND_MIN              16
/* Closures of misbehaving connections are logged as one summary per window: a flood of them must
 * not become a flood of log lines. */
#define REPORT_WINDOW_MS 10000
/* A pipe's TCP retransmissions back off to at most this (the kernel's floor for the option).
 * By default they double up to two minutes: on a lossy link a few losses in a row leave the pipe
 * silent for seconds, and still silent for as long after the loss has passed, while every call
 * and reply riding it waits out its deadline. Kernels before 6.15 refuse the option and keep
 * their default. */
#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44
#endif
#define PIPE_RTO_MAX_MS 1000

typedef struct conn conn;

/* Pipe writes of one connection gathered during this loop iteration (allocated at its first). */
typedef struct pend {
    int nbufs, ntoks;
    uv_buf_t bufs[PEND_BUFS];
    void *toks[PEND_TOKS];
} pend;

struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    aq_rpc_uv *u;
    conn *hnext; /* id hash chain */
    uint64_t id;
    /* Unidentified accepted connections, oldest first: all share one timeout, so the head always
     * has the earliest deadline and one timer serves them all. */
    conn *uprev, *unext;
    uint64_t hello_by_ms; /* loop time by which a valid HELLO must have arrived */
    bool connected;
    bool closing;        /* uv_close called (by the core or after a failure); no more reports */
    bool inbound;        /* accepted, counted in conns_inbound */
    bool unident;        /* on the unidentified list */
    pend *pw;            /* writes waiting for the end of the iteration, or NULL */
    conn *dprev, *dnext; /* on u->dirty while pw holds any */
    bool dirty;
    int write_err; /* a gathered write could not be queued: the connection fails */
};

typedef struct wreq {
    uv_write_t req;
    conn *c;
    int ntoks;
    void *toks[]; /* the core's writes it carries, reported in order */
} wreq;

/* A write completion that cannot be reported from inside pipe_write (that would re-enter the
 * core): reported on the next loop iteration instead. */
typedef struct deferred {
    struct deferred *next;
    uint64_t conn;
    void *token;
    int status;
} deferred;

typedef struct dsend {
    uv_udp_send_t req;
    aq_rpc_uv *u;
    size_t len;
    uint8_t data[];
} dsend;

struct aq_rpc_uv {
    uv_loop_t *loop;
    aq_rpc *core;
    aq_rpc_addr self;
    uv_udp_t udp;       /* sending */
    uv_poll_t udp_poll; /* receiving, on udp_rfd */
    int udp_rfd;        /* a duplicate of the UDP socket's descriptor, for udp_poll */
    struct mmsghdr rx_msg[UDP_SLOTS];
    struct iovec rx_iov[UDP_SLOTS];
    struct sockaddr_storage rx_from[UDP_SLOTS];
    uv_tcp_t listener;
    uv_timer_t timer;
    uv_timer_t hello_timer;  /* the deadline of the oldest unidentified connection */
    uv_timer_t report_timer; /* the end of the current log window, when something waits for it */
    uv_idle_t idle;
    uv_check_t flush; /* end of each loop iteration: send the gathered datagrams */
    uint8_t *udp_buf;
    int udp_fd;
    int nbatch;
    uint8_t *batch_buf;
    struct mmsghdr batch_msg[BATCH_MAX];
    struct iovec batch_iov[BATCH_MAX];
    struct sockaddr_storage batch_to[BATCH_MAX];
    uint64_t next_conn;
    conn **buckets;
    size_t nbuckets, nconns;
    deferred *def_head, *def_tail;
    uint64_t timer_at_us; /* UINT64_MAX: disarmed */
    size_t udp_queued;
    int tcp_rcvbuf, tcp_sndbuf;
    int handles_open;
    bool closing;
    void (*close_cb)(void *ud);
    void *close_ud;
    aq_rpc_log_fn log;
    void *log_ud;
    aq_rpc_uv_stats st;
    conn *un_head, *un_tail;
    conn *dirty; /* connections with gathered pipe writes */
    uint64_t hello_timeout_ms;
    uint32_t unident_max, inbound_max;
    bool report_armed, reported_once;
    uint64_t reported_at;                            /* loop time of the last summary */
    uint64_t rep_timeouts, rep_evicted, rep_refused; /* counters at the last summary */
};

static void logf_(aq_rpc_uv *u, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(aq_rpc_uv *u, int level, const char *fmt, ...) {
    if (!u->log)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    u->log(u->log_ud, level, msg);
}

/* The core takes inputs: it exists and aq_rpc_uv_close has not been called. */
static bool live(const aq_rpc_uv *u) {
    return u->core && !u->closing;
}

/* ---- connection table ---- */

static size_t hslot(const aq_rpc_uv *u, uint64_t id) {
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (u->nbuckets - 1);
}

static int conn_insert(aq_rpc_uv *u, conn *c) {
    if (u->nconns + 1 > u->nbuckets) {
        size_t nb = u->nbuckets ? u->nbuckets * 2 : 64;
        conn **b = calloc(nb, sizeof *b);
        if (!b)
            return AQ_ENOMEM;
        conn **old = u->buckets;
        size_t on = u->nbuckets;
        u->buckets = b;
        u->nbuckets = nb;
        for (size_t i = 0; i < on; i++) {
            for (conn *x = old[i], *nx; x; x = nx) {
                nx = x->hnext;
                size_t s = hslot(u, x->id);
                x->hnext = b[s];
                b[s] = x;
            }
        }
        free(old);
    }
    size_t s = hslot(u, c->id);
    c->hnext = u->buckets[s];
    u->buckets[s] = c;
    u->nconns++;
    return 0;
}

static conn *conn_find(aq_rpc_uv *u, uint64_t id) {
    if (!u->nbuckets)
        return NULL;
    for (conn *c = u->buckets[hslot(u, id)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void conn_remove(aq_rpc_uv *u, conn *c) {
    if (!u->nbuckets)
        return;
    for (conn **pp = &u->buckets[hslot(u, c->id)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            c->hnext = NULL;
            u->nconns--;
            return;
        }
    }
}

/* ---- lifetime ---- */

static void maybe_finish(aq_rpc_uv *u) {
    if (!u->closing || u->handles_open > 0)
        return;
    for (deferred *d = u->def_head, *nd; d; d = nd) {
        nd = d->next;
        free(d);
    }
    void (*cb)(void *) = u->close_cb;
    void *ud = u->close_ud;
    if (u->udp_rfd >= 0)
        close(u->udp_rfd);
    free(u->buckets);
    free(u->udp_buf);
    free(u->batch_buf);
    free(u);
    if (cb)
        cb(ud);
}

static void handle_closed(uv_handle_t *h) {
    aq_rpc_uv *u = h->data;
    u->handles_open--;
    maybe_finish(u);
}

static void conn_closed(uv_handle_t *h) {
    conn *c = h->data;
    aq_rpc_uv *u = c->u;
    free(c->pw);
    free(c);
    u->st.conns_open--;
    u->handles_open--;
    maybe_finish(u);
}

static void unident_unlink(aq_rpc_uv *u, conn *c) {
    if (!c->unident)
        return;
    c->unident = false;
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        u->un_head = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    else
        u->un_tail = c->uprev;
    c->uprev = c->unext = NULL;
    u->st.conns_unidentified--;
}

static void defer_written(aq_rpc_uv *u, uint64_t id, void *token, int status);

static void dirty_unlink(aq_rpc_uv *u, conn *c) {
    if (!c->dirty)
        return;
    c->dirty = false;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        u->dirty = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    c->dprev = c->dnext = NULL;
}

/* Stops all reports for c and closes it; libuv cancels its queued writes (their callbacks still
 * report pipe_written), and writes still gathered are reported cancelled, before conn_closed
 * frees it. */
static void conn_begin_close(conn *c) {
    if (c->closing)
        return;
    aq_rpc_uv *u = c->u;
    c->closing = true;
    dirty_unlink(u, c);
    if (c->pw) {
        for (int i = 0; i < c->pw->ntoks; i++)
            defer_written(u, c->id, c->pw->toks[i], UV_ECANCELED);
        c->pw->nbufs = c->pw->ntoks = 0;
    }
    conn_remove(u, c);
    unident_unlink(u, c);
    if (c->inbound) {
        c->inbound = false;
        u->st.conns_inbound--; /* uv_close releases the descriptor now, not in conn_closed */
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* The connection ended without the core asking: close it and tell the core once. */
static void conn_fail(conn *c, int err) {
    if (c->closing)
        return;
    aq_rpc_uv *u = c->u;
    uint64_t id = c->id;
    conn_begin_close(c);
    if (live(u))
        aq_rpc_pipe_closed(u->core, id, err);
}

static conn *conn_new(aq_rpc_uv *u) {
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->u = u;
    c->id = u->next_conn++;
    c->tcp.data = c;
    c->connect.data = c;
    return c;
}

static void tune_tcp(aq_rpc_uv *u, conn *c) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return;
    if (u->tcp_rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &u->tcp_rcvbuf, sizeof u->tcp_rcvbuf);
    if (u->tcp_sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &u->tcp_sndbuf, sizeof u->tcp_sndbuf);
    int rto_max = PIPE_RTO_MAX_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_RTO_MAX_MS, &rto_max, sizeof rto_max);
}

/* ---- deferred write completions ---- */

static void finish_close(aq_rpc_uv *u);

static void flush_batch(aq_rpc_uv *u);
static void flush_pipes(aq_rpc_uv *u);

static void idle_cb(uv_idle_t *h) {
    aq_rpc_uv *u = h->data;
    if (u->nbatch)
        flush_batch(u);
    if (u->dirty)
        flush_pipes(u);
    if (u->closing) {
        finish_close(u);
        return;
    }
    deferred *d = u->def_head;
    u->def_head = u->def_tail = NULL;
    uv_idle_stop(&u->idle);
    while (d) {
        deferred *nd = d->next;
        if (live(u))
            aq_rpc_pipe_written(u->core, d->conn, d->token, d->status);
        free(d);
        d = nd;
    }
}

static void defer_written(aq_rpc_uv *u, uint64_t id, void *token, int status) {
    deferred *d = malloc(sizeof *d);
    if (!d) {
        /* Without memory to defer, reporting now is the only way to keep "exactly once". */
        aq_rpc_pipe_written(u->core, id, token, status);
        return;
    }
    *d = (deferred){.conn = id, .token = token, .status = status};
    if (u->def_tail)
        u->def_tail->next = d;
    else
        u->def_head = d;
    u->def_tail = d;
    uv_idle_start(&u->idle, idle_cb);
}

/* ---- TCP reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    conn *c = h->data;
    aq_rpc_uv *u = c->u;
    if (!live(u) || c->closing) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    uint8_t *p = NULL;
    size_t len = 0;
    aq_rpc_pipe_read_buf(u->core, c->id, &p, &len);
    if (len > UINT32_MAX)
        len = UINT32_MAX;
    *buf = uv_buf_init((char *)p, (unsigned)len);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn *c = s->data;
    aq_rpc_uv *u = c->u;
    if (!live(u) || c->closing)
        return;
    if (nread >= 0) {
        aq_rpc_pipe_input(u->core, c->id, (size_t)nread);
        if (c->unident && !c->closing && live(u) && aq_rpc_pipe_identified(u->core, c->id))
            unident_unlink(u, c);
        return;
    }
    if (nread == UV_ENOBUFS && (!buf->base || buf->len == 0))
        return; /* we lent nothing; only possible while closing */
    if (buf->base && buf->len)
        aq_rpc_pipe_input(u->core, c->id, 0); /* give the lent buffer back untouched */
    /* EOF: the peer ended the connection; libuv's UV_EOF has no errno, so name it as a reset. */
    conn_fail(c, nread == UV_EOF ? -ECONNRESET : (int)nread);
}

/* ---- aq_rpc_io ---- */

static uint64_t io_now_us(void *ctx) {
    return uv_hrtime() / 1000;
}

static void dsend_cb(uv_udp_send_t *req, int status) {
    dsend *d = req->data;
    d->u->udp_queued -= d->len;
    if (status < 0)
        d->u->st.dgrams_dropped++;
    else
        d->u->st.dgrams_out++;
    free(d);
}

/* The slow path: libuv copies nothing, so we copy and let it send when the socket has room. */
static void queue_copy(aq_rpc_uv *u, const struct sockaddr *to, const struct iovec *iov,
                       int iovcnt) {
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (u->udp_queued + len > UDP_QUEUE_MAX) {
        u->st.dgrams_dropped++;
        return;
    }
    dsend *d = malloc(sizeof *d + len);
    if (!d) {
        u->st.dgrams_dropped++;
        return;
    }
    d->u = u;
    d->len = len;
    d->req.data = d;
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(d->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    uv_buf_t one = uv_buf_init((char *)d->data, (unsigned)len);
    if (uv_udp_send(&d->req, &u->udp, &one, 1, to, dsend_cb) < 0) {
        free(d);
        u->st.dgrams_dropped++;
        return;
    }
    u->udp_queued += len;
    u->st.dgrams_queued++;
}

static void send_now(aq_rpc_uv *u, const struct sockaddr *to, const struct iovec *iov, int iovcnt) {
    uv_buf_t bufs[IOV_STACK];
    for (int i = 0; i < iovcnt; i++)
        bufs[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
    int r = uv_udp_try_send(&u->udp, bufs, (unsigned)iovcnt, to);
    if (r >= 0)
        u->st.dgrams_out++;
    else if (r == UV_EAGAIN || r == UV_ENOBUFS)
        queue_copy(u, to, iov, iovcnt);
    else
        u->st.dgrams_dropped++; /* best effort: a failed send is a loss the core recovers from */
}

/* One sendmmsg for everything gathered; what the socket refuses for now goes the slow path. */
static void flush_batch(aq_rpc_uv *u) {
    int n = u->nbatch, i = 0;
    u->nbatch = 0;
    while (i < n) {
        if (u->udp.send_queue_count > 0)
            break; /* stay behind datagrams libuv is still holding */
        int r = sendmmsg(u->udp_fd, u->batch_msg + i, (unsigned)(n - i), MSG_DONTWAIT);
        if (r > 0) {
            u->st.dgrams_out += (uint64_t)r;
            i += r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            break;
        } else {
            u->st.dgrams_dropped++; /* this one failed (e.g. no route); the rest still go */
            i++;
        }
    }
    for (; i < n; i++)
        queue_copy(u, (const struct sockaddr *)&u->batch_to[i], &u->batch_iov[i], 1);
}

static void flush_cb(uv_check_t *h) {
    aq_rpc_uv *u = h->data;
    if (u->nbatch)
        flush_batch(u);
    if (u->dirty)
        flush_pipes(u);
}

/* Datagrams are gathered and sent with one sendmmsg at the end of the loop iteration (or at the
 * next one's idle phase when sent from outside a callback), so a burst of replies or acks costs
 * one system call instead of one each. */
static void io_send_dgram(void *ctx, const aq_rpc_addr *to, const struct iovec *iov, int iovcnt) {
    aq_rpc_uv *u = ctx;
    if (u->closing || iovcnt <= 0 || iovcnt > IOV_STACK) {
        u->st.dgrams_dropped++;
        return;
    }
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    const struct sockaddr *sa = (const struct sockaddr *)&to->ss;
    if (len > BATCH_SLOT || u->udp_fd < 0) {
        send_now(u, sa, iov, iovcnt);
        return;
    }
    if (u->nbatch == BATCH_MAX)
        flush_batch(u);
    int k = u->nbatch++;
    uint8_t *slot = u->batch_buf + (size_t)k * BATCH_SLOT;
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(slot + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    u->batch_iov[k] = (struct iovec){.iov_base = slot, .iov_len = len};
    socklen_t alen =
        to->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&u->batch_to[k], &to->ss, alen);
    u->batch_msg[k] = (struct mmsghdr){.msg_hdr = {.msg_name = &u->batch_to[k],
                                                   .msg_namelen = alen,
                                                   .msg_iov = &u->batch_iov[k],
                                                   .msg_iovlen = 1}};
    if (k == 0)
        uv_idle_start(&u->idle, idle_cb); /* poll must not block with datagrams waiting */
}

static void connect_cb(uv_connect_t *req, int status) {
    conn *c = req->data;
    aq_rpc_uv *u = c->u;
    if (c->closing || !live(u))
        return; /* the core closed it, or the driver is closing: no report */
    if (status < 0) {
        u->st.conns_failed++;
        conn_fail(c, status);
        return;
    }
    c->connected = true;
    u->st.conns_opened++;
    int r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (r < 0) {
        conn_fail(c, r);
        return;
    }
    aq_rpc_pipe_connected(u->core, c->id);
}

static int io_pipe_open(void *ctx, const aq_rpc_addr *to, uint64_t *out) {
    aq_rpc_uv *u = ctx;
    if (u->closing)
        return AQ_ECLOSED;
    conn *c = conn_new(u);
    if (!c)
        return AQ_ENOMEM;
    int r = uv_tcp_init_ex(u->loop, &c->tcp, to->ss.ss_family);
    if (r < 0) {
        free(c);
        return r;
    }
    u->handles_open++;
    u->st.conns_open++;
    /* Buffer sizes must be set before connecting to take effect on the window scale. */
    tune_tcp(u, c);
    r = conn_insert(u, c);
    if (r == 0)
        r = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&to->ss, connect_cb);
    if (r < 0) {
        c->closing = true;
        conn_remove(u, c);
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return r;
    }
    *out = c->id;
    return 0;
}

static void write_cb(uv_write_t *req, int status) {
    wreq *w = req->data;
    conn *c = w->c;
    aq_rpc_uv *u = c->u;
    /* The handle outlives its write callbacks, so c stays valid through the reports. */
    for (int i = 0; i < w->ntoks && u->core; i++)
        aq_rpc_pipe_written(u->core, c->id, w->toks[i], status);
    free(w);
    if (u->core && status < 0 && status != UV_ECANCELED)
        conn_fail(c, status);
}

static void dirty_link(aq_rpc_uv *u, conn *c) {
    if (c->dirty)
        return;
    c->dirty = true;
    c->dprev = NULL;
    c->dnext = u->dirty;
    if (u->dirty)
        u->dirty->dprev = c;
    u->dirty = c;
    uv_idle_start(&u->idle, idle_cb); /* poll must not block with writes waiting */
}

/* One uv_write (libuv tries it at once: one writev) for everything gathered on c. A write that
 * cannot even be queued fails the connection, as a failed write does (write_cb): the core must not
 * go on sending fragments after lost ones. Inside a call from the core (in_core) that is left to
 * the end of the loop iteration, so the core never hears of a close from within its own call. */
static void pend_flush(aq_rpc_uv *u, conn *c, bool in_core) {
    pend *pw = c->pw;
    dirty_unlink(u, c);
    if (c->write_err && !in_core) {
        conn_fail(c, c->write_err);
        return;
    }
    if (!pw || !pw->ntoks)
        return;
    int nt = pw->ntoks;
    pw->ntoks = 0;
    int nb = pw->nbufs;
    pw->nbufs = 0;
    wreq *w = malloc(sizeof *w + (size_t)nt * sizeof w->toks[0]);
    int r = AQ_ENOMEM;
    if (w) {
        w->c = c;
        w->ntoks = nt;
        memcpy(w->toks, pw->toks, (size_t)nt * sizeof w->toks[0]);
        w->req.data = w;
        /* uv_write copies the buffer descriptors. */
        r = nb ? uv_write(&w->req, (uv_stream_t *)&c->tcp, pw->bufs, (unsigned)nb, write_cb)
               : AQ_EINVAL;
        if (r < 0)
            free(w);
        else
            u->st.pipe_batches++;
    }
    if (r < 0) {
        for (int i = 0; i < nt; i++)
            defer_written(u, c->id, pw->toks[i], r);
        c->write_err = r;
        if (in_core)
            dirty_link(u, c);
        else
            conn_fail(c, r);
    }
}

static void flush_pipes(aq_rpc_uv *u) {
    while (u->dirty)
        pend_flush(u, u->dirty, false);
}

/* Gathers the write for the end of this loop iteration (without memory for that, it fails and is
 * reported so on the next one). */
static void io_pipe_write(void *ctx, uint64_t id, const struct iovec *iov, int iovcnt,
                          void *token) {
    aq_rpc_uv *u = ctx;
    conn *c = conn_find(u, id);
    if (!c || c->closing || !c->connected || c->write_err) {
        defer_written(u, id, token, c ? UV_ENOTCONN : UV_EPIPE);
        return;
    }
    if (iovcnt <= 0 || iovcnt > PEND_BUFS) {
        defer_written(u, id, token, iovcnt ? AQ_EINVAL : 0);
        return;
    }
    if (!c->pw && !(c->pw = calloc(1, sizeof *c->pw))) {
        defer_written(u, id, token, AQ_ENOMEM);
        return;
    }
    pend *pw = c->pw;
    if (pw->nbufs + iovcnt > PEND_BUFS || pw->ntoks == PEND_TOKS)
        pend_flush(u, c, true);
    for (int i = 0; i < iovcnt; i++)
        pw->bufs[pw->nbufs++] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
    pw->toks[pw->ntoks++] = token;
    u->st.pipe_writes++;
    dirty_link(u, c);
}

static void io_pipe_close(void *ctx, uint64_t id) {
    aq_rpc_uv *u = ctx;
    conn *c = conn_find(u, id);
    if (c)
        conn_begin_close(c);
}

static void timer_cb(uv_timer_t *t);

static void arm_timer(aq_rpc_uv *u, uint64_t at_us) {
    uint64_t now = uv_hrtime() / 1000;
    uint64_t delay_ms = at_us > now ? (at_us - now + 999) / 1000 : 0;
    /* libuv counts from its cached loop time, which may lag the clock the core reads. */
    uint64_t now_ms = now / 1000, loop_ms = uv_now(u->loop);
    if (now_ms > loop_ms)
        delay_ms += now_ms - loop_ms;
    uv_timer_start(&u->timer, timer_cb, delay_ms, 0);
}

static void timer_cb(uv_timer_t *t) {
    aq_rpc_uv *u = t->data;
    uint64_t at = u->timer_at_us;
    if (at == UINT64_MAX || !live(u))
        return;
    if (uv_hrtime() / 1000 < at) {
        arm_timer(u, at); /* fired early by the loop's coarse clock */
        return;
    }
    u->timer_at_us = UINT64_MAX;
    aq_rpc_timer_fired(u->core);
}

static void io_set_timer(void *ctx, uint64_t at_us) {
    aq_rpc_uv *u = ctx;
    if (u->closing)
        return;
    if (at_us == UINT64_MAX) {
        u->timer_at_us = UINT64_MAX;
        uv_timer_stop(&u->timer);
        return;
    }
    if (at_us == u->timer_at_us)
        return;
    u->timer_at_us = at_us;
    arm_timer(u, at_us);
}

static const aq_rpc_io uv_io = {
    .now_us = io_now_us,
    .send_dgram = io_send_dgram,
    .pipe_open = io_pipe_open,
    .pipe_write = io_pipe_write,
    .pipe_close = io_pipe_close,
    .set_timer = io_set_timer,
};

/* ---- UDP receiving ---- */

/* One datagram of the last recvmmsg to the core (or dropped, once the driver is closing). */
static void udp_rx_one(aq_rpc_uv *u, int i) {
    const struct msghdr *m = &u->rx_msg[i].msg_hdr;
    if (!live(u))
        return;
    if (m->msg_flags & MSG_TRUNC) {
        u->st.dgrams_truncated++;
        return;
    }
    const struct sockaddr *addr = m->msg_name;
    if (m->msg_namelen < sizeof(struct sockaddr_in) ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return;
    aq_rpc_addr from;
    memset(&from, 0, sizeof from);
    size_t alen =
        addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (alen > m->msg_namelen)
        return;
    memcpy(&from.ss, addr, alen);
    u->st.dgrams_in++;
    aq_rpc_input_dgram(u->core, &from, u->rx_iov[i].iov_base, u->rx_msg[i].msg_len);
}

/* Readable: one recvmmsg, and another only when that one filled every slot. (libuv's own receive
 * loop reads until EAGAIN, a system call wasted on every wakeup.) What arrives while the driver
 * closes is read and dropped, so the descriptor does not stay readable. */
static void udp_poll_cb(uv_poll_t *h, int status, int events) {
    aq_rpc_uv *u = h->data;
    (void)events;
    if (status < 0) {
        /* libuv stopped the handle on a socket error: clear it and listen again, or the node
         * would stop hearing heartbeats and small calls for good. */
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        (void)getsockopt(u->udp_rfd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        logf_(u, 1, "rpc: UDP socket error (%s), receiving again", uv_strerror(status));
        if (!u->closing) {
            int r = uv_poll_start(&u->udp_poll, UV_READABLE, udp_poll_cb);
            if (r < 0)
                logf_(u, 0, "rpc: cannot receive UDP again: %s", uv_strerror(r));
        }
        return;
    }
    for (int round = 0; round < UDP_ROUNDS; round++) {
        for (int i = 0; i < UDP_SLOTS; i++)
            u->rx_msg[i].msg_hdr.msg_namelen = sizeof u->rx_from[i];
        int r = recvmmsg(u->udp_rfd, u->rx_msg, UDP_SLOTS, MSG_DONTWAIT, NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        for (int i = 0; i < r; i++)
            udp_rx_one(u, i);
        if (r < UDP_SLOTS)
            return;
    }
}

/* ---- bounds on inbound connections ---- */

static void report(aq_rpc_uv *u) {
    uint64_t t = u->st.hello_timeouts - u->rep_timeouts;
    uint64_t e = u->st.hello_evicted - u->rep_evicted;
    uint64_t r = u->st.conns_refused - u->rep_refused;
    u->rep_timeouts = u->st.hello_timeouts;
    u->rep_evicted = u->st.hello_evicted;
    u->rep_refused = u->st.conns_refused;
    u->reported_at = uv_now(u->loop);
    u->reported_once = true;
    if (!t && !e && !r)
        return;
    logf_(u, 1,
          "rpc: closed inbound connections: %llu sent no valid HELLO within %llu ms, %llu evicted "
          "over %u unidentified, %llu refused over %u open (summary every %d s at most)",
          (unsigned long long)t, (unsigned long long)u->hello_timeout_ms, (unsigned long long)e,
          u->unident_max, (unsigned long long)r, u->inbound_max, REPORT_WINDOW_MS / 1000);
}

static void report_cb(uv_timer_t *t) {
    aq_rpc_uv *u = t->data;
    u->report_armed = false;
    if (!u->closing)
        report(u);
}

/* A connection was closed for breaking a bound: log now if the window allows, else once at its
 * end for everything that happened meanwhile. */
static void note_closure(aq_rpc_uv *u) {
    if (u->report_armed || u->closing)
        return;
    uint64_t now = uv_now(u->loop);
    if (!u->reported_once || now - u->reported_at >= REPORT_WINDOW_MS) {
        report(u);
        return;
    }
    uv_timer_start(&u->report_timer, report_cb, u->reported_at + REPORT_WINDOW_MS - now, 0);
    u->report_armed = true;
}

static void hello_cb(uv_timer_t *t);

static void hello_arm(aq_rpc_uv *u) {
    if (!u->un_head || u->closing) {
        uv_timer_stop(&u->hello_timer);
        return;
    }
    uint64_t now = uv_now(u->loop), at = u->un_head->hello_by_ms;
    uv_timer_start(&u->hello_timer, hello_cb, at > now ? at - now : 0, 0);
}

static void hello_cb(uv_timer_t *t) {
    aq_rpc_uv *u = t->data;
    if (!live(u))
        return;
    uint64_t now = uv_now(u->loop);
    bool any = false;
    /* conn_fail unlinks the head; the core may close others meanwhile, so re-read it each time. */
    while (u->un_head && u->un_head->hello_by_ms <= now) {
        u->st.hello_timeouts++;
        any = true;
        conn_fail(u->un_head, AQ_ETIMEDOUT);
    }
    if (any)
        note_closure(u);
    hello_arm(u);
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *server, int status) {
    aq_rpc_uv *u = server->data;
    if (status < 0) {
        u->st.accept_errors++;
        logf_(u, 1, "rpc: accept failed: %s", uv_strerror(status));
        return;
    }
    if (!live(u))
        return;
    conn *c = conn_new(u);
    if (!c) {
        u->st.accept_errors++;
        return;
    }
    uv_tcp_init(u->loop, &c->tcp);
    u->handles_open++;
    u->st.conns_open++;
    int r = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (r == 0 && u->st.conns_inbound >= u->inbound_max) {
        /* Taken off the backlog and closed: left there, it would hold a kernel slot and make
         * every later connection wait behind it. */
        u->st.conns_refused++;
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        note_closure(u);
        return;
    }
    aq_rpc_addr remote;
    memset(&remote, 0, sizeof remote);
    int alen = sizeof remote.ss;
    if (r == 0)
        r = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&remote.ss, &alen);
    if (r == 0)
        r = conn_insert(u, c);
    if (r < 0) {
        u->st.accept_errors++;
        logf_(u, 1, "rpc: accept failed: %s", aq_strerror(r));
        c->closing = true;
        conn_remove(u, c);
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    tune_tcp(u, c);
    c->connected = true;
    u->st.conns_accepted++;
    r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (r < 0) {
        c->closing = true;
        conn_remove(u, c);
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    if (u->un_head && u->st.conns_unidentified >= u->unident_max) {
        u->st.hello_evicted++;
        conn_fail(u->un_head, AQ_ELIMIT);
        note_closure(u);
    }
    c->inbound = true;
    u->st.conns_inbound++;
    c->unident = true;
    c->hello_by_ms = uv_now(u->loop) + u->hello_timeout_ms;
    c->uprev = u->un_tail;
    if (u->un_tail)
        u->un_tail->unext = c;
    else
        u->un_head = c;
    u->un_tail = c;
    u->st.conns_unidentified++;
    if (u->un_head == c)
        hello_arm(u);
    aq_rpc_pipe_accepted(u->core, c->id, &remote);
}

/* ---- opening ---- */

static void set_buf(int fd, int force_opt, int opt, int bytes) {
    /* SO_*BUFFORCE passes net.core.[rw]mem_max when we may; otherwise take what the cap allows. */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static socklen_t addr_len(const aq_rpc_addr *a) {
    return a->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Binds UDP and TCP on one port; with port 0 the kernel picks the UDP port and we retry when the
 * TCP side of it is taken. */
static int bind_pair(aq_rpc_addr *addr, int backlog, int defer_s, int *ufd_out, int *tfd_out) {
    bool pick = aq_rpc_addr_port(addr) == 0;
    int err = 0;
    for (int attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
        aq_rpc_addr a = *addr;
        int ufd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ufd < 0)
            return -errno;
        if (bind(ufd, (struct sockaddr *)&a.ss, addr_len(&a)) != 0) {
            err = -errno;
            close(ufd);
            if (pick && err == -EADDRINUSE)
                continue;
            return err;
        }
        socklen_t sl = sizeof a.ss;
        if (getsockname(ufd, (struct sockaddr *)&a.ss, &sl) != 0) {
            err = -errno;
            close(ufd);
            return err;
        }
        int tfd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (tfd < 0) {
            err = -errno;
            close(ufd);
            return err;
        }
        int one = 1;
        setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (defer_s > 0)
            setsockopt(tfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
        if (bind(tfd, (struct sockaddr *)&a.ss, addr_len(&a)) != 0 || listen(tfd, backlog) != 0) {
            err = -errno;
            close(tfd);
            close(ufd);
            if (pick && err == -EADDRINUSE)
                continue;
            return err;
        }
        *addr = a;
        *ufd_out = ufd;
        *tfd_out = tfd;
        return 0;
    }
    return err;
}

/* libuv writes to sockets with write(2), so a peer that resets a pipe raises SIGPIPE, whose
 * default action kills the process. A peer must never be able to do that; the write error is
 * reported instead. A handler the application installed itself is left alone. */
static void ignore_sigpipe(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* Half the descriptors this process may open, so that a full house of inbound connections still
 * leaves the node room for its files, outbound pipes and clients. */
static uint32_t default_inbound_max(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur / 2 >= INBOUND_DEFAULT)
        return INBOUND_DEFAULT;
    return rl.rlim_cur / 2 > INBOUND_MIN ? (uint32_t)(rl.rlim_cur / 2) : INBOUND_MIN;
}

/* Used by open's failure paths and by aq_rpc_uv_close: closes whatever exists. */
static void close_all(aq_rpc_uv *u) {
    u->closing = true;
    if (u->nbuckets) {
        for (size_t i = 0; i < u->nbuckets; i++) {
            while (u->buckets[i])
                conn_begin_close(u->buckets[i]);
        }
    }
    uv_handle_t *hs[] = {(uv_handle_t *)&u->udp,         (uv_handle_t *)&u->udp_poll,
                         (uv_handle_t *)&u->listener,    (uv_handle_t *)&u->timer,
                         (uv_handle_t *)&u->hello_timer, (uv_handle_t *)&u->report_timer,
                         (uv_handle_t *)&u->idle,        (uv_handle_t *)&u->flush};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        if (hs[i]->data == u && !uv_is_closing(hs[i]))
            uv_close(hs[i], handle_closed);
    }
    maybe_finish(u);
}

int aq_rpc_uv_open(uv_loop_t *loop, aq_rpc_config *cfg, const aq_rpc_uv_opts *opts,
                   aq_rpc_uv **out) {
    aq_rpc_uv_opts o = {0};
    if (opts)
        o = *opts;
    if (!loop || !cfg || !out || o.backlog < 0)
        return AQ_EINVAL;
    aq_rpc_addr addr;
    int r = aq_rpc_addr_parse(o.bind ? o.bind : "127.0.0.1:0", &addr);
    if (r < 0)
        return r;
    ignore_sigpipe();
    int backlog = o.backlog ? o.backlog : 511;

    aq_rpc_uv *u = calloc(1, sizeof *u);
    if (!u)
        return AQ_ENOMEM;
    u->udp_buf = malloc(UDP_SLOT * UDP_SLOTS);
    u->batch_buf = malloc(BATCH_MAX * BATCH_SLOT);
    u->udp_fd = -1;
    u->udp_rfd = -1;
    if (!u->udp_buf || !u->batch_buf) {
        free(u->udp_buf);
        free(u->batch_buf);
        free(u);
        return AQ_ENOMEM;
    }
    u->loop = loop;
    u->next_conn = 1;
    u->timer_at_us = UINT64_MAX;
    u->tcp_rcvbuf = o.tcp_rcvbuf;
    u->tcp_sndbuf = o.tcp_sndbuf;
    u->log = cfg->log;
    u->log_ud = cfg->log_ud;
    u->hello_timeout_ms = o.hello_timeout_ms ? o.hello_timeout_ms : HELLO_TIMEOUT_DEFAULT_MS;
    u->inbound_max = o.conns_inbound_max ? o.conns_inbound_max : default_inbound_max();
    u->unident_max = o.conns_unidentified_max ? o.conns_unidentified_max : UNIDENTIFIED_DEFAULT;
    if (u->unident_max > u->inbound_max)
        u->unident_max = u->inbound_max;

    int ufd = -1, tfd = -1;
    r = bind_pair(&addr, backlog, o.tcp_defer_accept_s, &ufd, &tfd);
    if (r < 0) {
        free(u->udp_buf);
        free(u->batch_buf);
        free(u);
        return r;
    }
    int rb = o.udp_rcvbuf ? o.udp_rcvbuf : UDP_BUF_DEFAULT;
    int sb = o.udp_sndbuf ? o.udp_sndbuf : UDP_BUF_DEFAULT;
    if (rb > 0)
        set_buf(ufd, SO_RCVBUFFORCE, SO_RCVBUF, rb);
    if (sb > 0)
        set_buf(ufd, SO_SNDBUFFORCE, SO_SNDBUF, sb);

    /* From here every failure goes through close_all, which frees u once libuv is done. */
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->handles_open++;
    uv_timer_init(loop, &u->hello_timer);
    u->hello_timer.data = u;
    u->handles_open++;
    uv_timer_init(loop, &u->report_timer);
    u->report_timer.data = u;
    u->handles_open++;
    uv_idle_init(loop, &u->idle);
    u->idle.data = u;
    u->handles_open++;
    uv_check_init(loop, &u->flush);
    u->flush.data = u;
    u->handles_open++;
    uv_check_start(&u->flush, flush_cb);
    uv_unref((uv_handle_t *)&u->flush); /* it alone must not keep the loop running */
    r = uv_udp_init(loop, &u->udp);
    if (r < 0) {
        close(ufd);
        close(tfd);
        close_all(u);
        return r;
    }
    u->udp.data = u;
    u->handles_open++;
    r = uv_udp_open(&u->udp, ufd);
    if (r < 0) {
        close(ufd);
        close(tfd);
        close_all(u);
        return r;
    }
    u->udp_fd = ufd;
    u->udp_rfd = fcntl(ufd, F_DUPFD_CLOEXEC, 0);
    r = u->udp_rfd < 0 ? -errno : uv_poll_init_socket(loop, &u->udp_poll, u->udp_rfd);
    if (r < 0) {
        close(tfd);
        close_all(u);
        return r;
    }
    u->udp_poll.data = u;
    u->handles_open++;
    for (int i = 0; i < UDP_SLOTS; i++) {
        u->rx_iov[i] = (struct iovec){u->udp_buf + (size_t)i * UDP_SLOT, UDP_SLOT};
        u->rx_msg[i].msg_hdr =
            (struct msghdr){.msg_name = &u->rx_from[i], .msg_iov = &u->rx_iov[i], .msg_iovlen = 1};
    }
    uv_tcp_init(loop, &u->listener);
    u->listener.data = u;
    u->handles_open++;
    r = uv_tcp_open(&u->listener, tfd);
    if (r < 0) {
        close(tfd);
        close_all(u);
        return r;
    }

    u->self = addr;
    cfg->self = addr;
    r = aq_rpc_new(cfg, &uv_io, u, &u->core);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&u->listener, backlog, on_connection);
    if (r == 0)
        r = uv_poll_start(&u->udp_poll, UV_READABLE, udp_poll_cb);
    if (r < 0) {
        if (u->core) {
            aq_rpc *core = u->core;
            u->closing = true;
            aq_rpc_free(core);
            u->core = NULL;
        }
        close_all(u);
        return r;
    }
    *out = u;
    return 0;
}

aq_rpc *aq_rpc_uv_core(aq_rpc_uv *u) {
    return u->core;
}

const aq_rpc_addr *aq_rpc_uv_self(const aq_rpc_uv *u) {
    return &u->self;
}

uv_loop_t *aq_rpc_uv_loop(const aq_rpc_uv *u) {
    return u->loop;
}

/* Runs from the loop (never from inside a core callback): frees the core, then the handles. */
static void finish_close(aq_rpc_uv *u) {
    uv_idle_stop(&u->idle);
    /* Keep handles_open above zero while the core frees, so no close callback can finish us
     * early. The core's last requests (pipe_close) are all that runs. */
    u->handles_open++;
    aq_rpc *core = u->core;
    if (core) {
        aq_rpc_free(core);
        u->core = NULL;
    }
    u->handles_open--;
    close_all(u);
}

void aq_rpc_uv_close(aq_rpc_uv *u, void (*cb)(void *ud), void *ud) {
    if (!u || u->closing)
        return;
    u->close_cb = cb;
    u->close_ud = ud;
    /* Often called from a call's callback, i.e. from inside the core: free it on the next loop
     * iteration, once the core has returned. From now on no input reaches it. */
    u->closing = true;
    if (u->core)
        aq_rpc_stop_input(u->core); /* not even the rest of a pipe read it is working through */
    uv_idle_start(&u->idle, idle_cb);
}

void aq_rpc_uv_stats_get(const aq_rpc_uv *u, aq_rpc_uv_stats *out) {
    *out = u->st;
}
