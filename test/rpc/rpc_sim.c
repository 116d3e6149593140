/* rpc_sim: the real rpc core over a seeded, fault-injecting fake network with a virtual clock.
 *
 * Each seed builds a few endpoints and runs many concurrent calls (0 B to 4 MiB) between them while
 * the network drops, duplicates, delays, reorders and corrupts datagrams, delivers pipe bytes in
 * random pieces, resets connections mid-frame, and restarts an endpoint (new incarnation, same
 * address). Handlers answer at once, later, or BUSY. Per seed it checks: every call had exactly one
 * outcome; no handler ran twice for one call within one callee incarnation; every successful reply
 * holds exactly the bytes the handler produced; every lent buffer was released exactly once;
 * without faults, every call succeeded.
 *
 * Usage: rpc_sim            runs AQ_SIM_SEEDS seeds (default 2000) from AQ_SIM_FIRST (default 1)
 *        AQ_SIM_SEED=N rpc_sim   replays seed N alone, with AQ_SIM_VERBOSE=1 for a trace
 *        AQ_SIM_HARSH=1           more loss (up to 40 %), resets and restarts
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "aq_rpc.h"

#define NNODES     3
#define MAX_CALLS  4096
#define MAX_RUNS   6
#define M_ECHO     7
#define VIRT_END   9000000ull /* virtual µs after which the run stops and the cores are freed */
#define CLUSTER_ID 0xa9a9a9a9ull

typedef struct sim sim;

/* ---------- deterministic PRNG ---------- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n) {
    return n ? rng_next(s) % n : 0;
}

static bool rng_chance(uint64_t *s, double p) {
    return (double)(rng_next(s) >> 11) / 9007199254740992.0 < p;
}

/* The bytes of message `id` of length len: a function of both, so a reply can be checked. */
static void fill_bytes(uint8_t *p, size_t len, uint64_t id) {
    uint64_t s = id * 0x2545f4914f6cdd1dull + len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = rng_next(&s);
        memcpy(p + i, &v, 8);
    }
    uint64_t v = rng_next(&s);
    memcpy(p + i, &v, len - i);
}

/* ---------- events ---------- */

enum ev_kind {
    EV_DGRAM = 1,
    EV_TIMER,
    EV_CONNECT,
    EV_CONNECTED,
    EV_DELIVER,
    EV_CLOSED,
    EV_WRITTEN,
    EV_ASYNC,
    EV_START_CALL,
    EV_RESET,
    EV_RESTART,
    EV_NODE_UP,
};

typedef struct event {
    uint64_t at, seq;
    int kind;
    int node;
    uint64_t gen; /* node generation (or timer token) the event belongs to */
    uint64_t id;  /* conn id, call index ... */
    void *ptr;
    int status;
    uint8_t *data;
    size_t len;
} event;

/* ---------- fake connections ---------- */

typedef struct wtoken {
    uint64_t end; /* stream offset after this write */
    void *token;
} wtoken;

typedef struct sconn {
    int a, b;              /* node indexes: a opened it, b accepted */
    uint64_t gen_a, gen_b; /* node generations at open/accept */
    bool established, accepted;
    bool dead;               /* reset or closed: no more bytes move */
    bool a_closed, b_closed; /* closed by that side's core, or reported closed to it */
    uint8_t *buf;
    size_t head, len, cap; /* undelivered bytes are buf[head, len) */
    uint64_t written, delivered;
    wtoken *wt;
    size_t nwt, capwt;
    bool deliver_scheduled;
} sconn;

typedef struct call_rec {
    sim *s;
    int from, to;
    uint32_t req_len, reply_len;
    int outcomes;
    int err, status;
    bool started, busy_only;
    uint64_t run_inc[MAX_RUNS];
    int runs[MAX_RUNS];
    int nrun;
} call_rec;

typedef struct node {
    sim *s;
    int idx;
    aq_rpc *rpc;
    aq_rpc_addr addr;
    uint64_t gen;
    uint64_t timer_token;
    uint64_t inc_counter;
} node;

struct sim {
    uint64_t seed, rng, now, seq;
    bool faults, verbose, small_reasm;
    bool harsh; /* AQ_SIM_HARSH=1: more loss, resets and restarts */
    double p_drop, p_dup, p_corrupt;
    uint64_t max_delay;
    event **heap;
    size_t nheap, capheap;
    node nodes[NNODES];
    sconn *conns;
    size_t nconns, capconns;
    call_rec calls[MAX_CALLS];
    int ncalls;
    uint64_t bufs_lent, bufs_released;
    int failures;
    char first_failure[256];
    uint64_t stat_dgrams, stat_resets, stat_restarts, stat_bytes_piped, stat_ok, stat_err;
    uint64_t core[8]; /* retransmits, dup_suppressed, busy_sent, pending_seen, malformed, stale,
                         cutoffs, pipe_connects */
    uint64_t errs[8]; /* timedout, restarted, closed, busy, queuefull, other */
};

static void fail(sim *s, const char *fmt, ...) {
    va_list ap;
    if (s->failures++ == 0) {
        va_start(ap, fmt);
        vsnprintf(s->first_failure, sizeof s->first_failure, fmt, ap);
        va_end(ap);
    }
}

static void trace(sim *s, const char *fmt, ...) {
    if (!s->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%8" PRIu64 "] ", s->now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void heap_push(sim *s, event *e) {
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? s->capheap * 2 : 1024;
        s->heap = realloc(s->heap, s->capheap * sizeof *s->heap);
        if (!s->heap)
            abort();
    }
    size_t i = s->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        event *q = s->heap[p];
        if (q->at < e->at || (q->at == e->at && q->seq < e->seq))
            break;
        s->heap[i] = q;
        i = p;
    }
    s->heap[i] = e;
}

static event *heap_pop(sim *s) {
    if (!s->nheap)
        return NULL;
    event *top = s->heap[0];
    event *last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap &&
            (s->heap[c + 1]->at < s->heap[c]->at ||
             (s->heap[c + 1]->at == s->heap[c]->at && s->heap[c + 1]->seq < s->heap[c]->seq)))
            c++;
        if (last->at < s->heap[c]->at ||
            (last->at == s->heap[c]->at && last->seq < s->heap[c]->seq))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->nheap)
        s->heap[i] = last;
    return top;
}

static event *schedule(sim *s, uint64_t at, int kind, int node_i) {
    event *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->at = at < s->now ? s->now : at;
    e->seq = s->seq++;
    e->kind = kind;
    e->node = node_i;
    if (node_i >= 0)
        e->gen = s->nodes[node_i].gen;
    heap_push(s, e);
    return e;
}

static int node_by_addr(sim *s, const aq_rpc_addr *a) {
    for (int i = 0; i < NNODES; i++)
        if (aq_rpc_addr_eq(&s->nodes[i].addr, a))
            return i;
    return -1;
}

static sconn *conn_of(sim *s, uint64_t id, bool *is_a) {
    size_t k = (id - 1) / 2;
    if (id == 0 || k >= s->nconns)
        return NULL;
    *is_a = ((id - 1) % 2) == 0;
    return &s->conns[k];
}

/* ---------- the driver the core sees ---------- */

static uint64_t io_now(void *ctx) {
    return ((node *)ctx)->s->now;
}

static void io_send_dgram(void *ctx, const aq_rpc_addr *to, const struct iovec *iov, int iovcnt) {
    node *n = ctx;
    sim *s = n->s;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (len > AQ_RPC_DGRAM_MAX)
        fail(s, "datagram of %zu bytes exceeds AQ_RPC_DGRAM_MAX", len);
    int dst = node_by_addr(s, to);
    s->stat_dgrams++;
    if (dst < 0 || (s->faults && rng_chance(&s->rng, s->p_drop)))
        return;
    int copies = (s->faults && rng_chance(&s->rng, s->p_dup)) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        uint8_t *d = malloc(len ? len : 1);
        size_t off = 0;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(d + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len;
        }
        if (s->faults && rng_chance(&s->rng, s->p_corrupt))
            d[rng_below(&s->rng, len)] ^= (uint8_t)(1u << rng_below(&s->rng, 8));
        uint64_t delay = 20 + (s->faults ? rng_below(&s->rng, s->max_delay) : 30);
        event *e = schedule(s, s->now + delay, EV_DGRAM, dst);
        e->gen = 0; /* datagrams reach whoever holds the address then */
        e->data = d;
        e->len = len;
        e->id = (uint64_t)n->idx;
    }
}

static int io_pipe_open(void *ctx, const aq_rpc_addr *to, uint64_t *conn) {
    node *n = ctx;
    sim *s = n->s;
    if (s->nconns == s->capconns) {
        s->capconns = s->capconns ? s->capconns * 2 : 64;
        s->conns = realloc(s->conns, s->capconns * sizeof *s->conns);
        if (!s->conns)
            abort();
    }
    size_t k = s->nconns++;
    sconn *c = &s->conns[k];
    memset(c, 0, sizeof *c);
    c->a = n->idx;
    c->gen_a = n->gen;
    c->b = node_by_addr(s, to);
    *conn = 2 * k + 1;
    event *e = schedule(s, s->now + 50 + rng_below(&s->rng, 200), EV_CONNECT, n->idx);
    e->id = k;
    trace(s, "n%d pipe_open conn %zu -> n%d", n->idx, k, c->b);
    return 0;
}

static void report_closed_later(sim *s, sconn *c, bool to_a, int err) {
    if (to_a ? c->a_closed : c->b_closed)
        return;
    event *e = schedule(s, s->now + 10 + rng_below(&s->rng, 100), EV_CLOSED, to_a ? c->a : c->b);
    e->gen = to_a ? c->gen_a : c->gen_b;
    e->id = (uint64_t)(c - s->conns);
    e->status = err;
    e->len = to_a;
}

/* Write completions that will never be delivered: reported once each, canceled. */
static void cancel_writes(sim *s, sconn *c) {
    for (size_t i = 0; i < c->nwt; i++) {
        event *e = schedule(s, s->now + 1, EV_WRITTEN, c->a);
        e->gen = c->gen_a;
        e->id = (uint64_t)(c - s->conns);
        e->ptr = c->wt[i].token;
        e->status = -ECANCELED;
    }
    c->nwt = 0;
}

static void conn_kill(sim *s, sconn *c) {
    c->dead = true;
    free(c->buf);
    c->buf = NULL;
    c->head = c->len = c->cap = 0;
    cancel_writes(s, c);
}

static void io_pipe_write(void *ctx, uint64_t id, const struct iovec *iov, int iovcnt,
                          void *token) {
    node *n = ctx;
    sim *s = n->s;
    bool is_a;
    sconn *c = conn_of(s, id, &is_a);
    if (!c) {
        fail(s, "n%d wrote to unknown conn %" PRIu64, n->idx, id);
        return;
    }
    if (!is_a) {
        fail(s, "n%d wrote on an accepted (receive-only) pipe", n->idx);
    }
    if (is_a && !c->established && !c->dead)
        fail(s, "n%d wrote before the pipe was connected", n->idx);
    if (c->nwt == c->capwt) {
        c->capwt = c->capwt ? c->capwt * 2 : 8;
        c->wt = realloc(c->wt, c->capwt * sizeof *c->wt);
    }
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (!is_a || c->dead || c->a_closed) {
        c->wt[c->nwt++] = (wtoken){0, token};
        cancel_writes(s, c);
        return;
    }
    if (c->len + len > c->cap) {
        if (c->head) {
            memmove(c->buf, c->buf + c->head, c->len - c->head);
            c->len -= c->head;
            c->head = 0;
        }
        if (c->len + len > c->cap) {
            c->cap = (c->len + len) * 2;
            c->buf = realloc(c->buf, c->cap);
        }
    }
    for (int i = 0; i < iovcnt; i++) {
        memcpy(c->buf + c->len, iov[i].iov_base, iov[i].iov_len);
        c->len += iov[i].iov_len;
    }
    c->written += len;
    c->wt[c->nwt++] = (wtoken){c->written, token};
    s->stat_bytes_piped += len;
    if (!c->deliver_scheduled && c->accepted) {
        c->deliver_scheduled = true;
        event *e = schedule(s, s->now + 20 + rng_below(&s->rng, 100), EV_DELIVER, c->b);
        e->gen = c->gen_b;
        e->id = (uint64_t)(c - s->conns);
    }
}

static void io_pipe_close(void *ctx, uint64_t id) {
    node *n = ctx;
    sim *s = n->s;
    bool is_a;
    sconn *c = conn_of(s, id, &is_a);
    if (!c) {
        fail(s, "n%d closed unknown conn %" PRIu64, n->idx, id);
        return;
    }
    trace(s, "n%d pipe_close conn %zu", n->idx, (size_t)(c - s->conns));
    if (is_a) {
        c->a_closed = true;
        if (c->accepted)
            report_closed_later(s, c, false, -ECONNRESET);
    } else {
        c->b_closed = true;
        report_closed_later(s, c, true, -ECONNRESET);
    }
    conn_kill(s, c);
}

static void io_set_timer(void *ctx, uint64_t at) {
    node *n = ctx;
    n->timer_token++;
    if (at == UINT64_MAX)
        return;
    event *e = schedule(n->s, at, EV_TIMER, n->idx);
    e->id = n->timer_token;
}

static const aq_rpc_io sim_io = {io_now,        io_send_dgram, io_pipe_open,
                                 io_pipe_write, io_pipe_close, io_set_timer};

/* ---------- buffers and handlers ---------- */

typedef struct lent {
    sim *s;
    uint8_t *p;
} lent;

static void lent_release(void *ctx) {
    lent *l = ctx;
    l->s->bufs_released++;
    free(l->p);
    free(l);
}

static aq_rpc_buf lend(sim *s, uint8_t *p, size_t len) {
    lent *l = malloc(sizeof *l);
    l->s = s;
    l->p = p;
    s->bufs_lent++;
    return (aq_rpc_buf){p, len, lent_release, l};
}

static call_rec *rec_of(sim *s, const uint8_t *d, size_t len) {
    uint64_t id;
    if (len < 8)
        return NULL;
    memcpy(&id, d, 8);
    if (id >= (uint64_t)s->ncalls)
        return NULL;
    return &s->calls[id];
}

static void respond_real(sim *s, aq_rpc_incoming *in, uint64_t id) {
    call_rec *r = &s->calls[id];
    uint8_t *p = malloc(r->reply_len ? r->reply_len : 1);
    fill_bytes(p, r->reply_len, id ^ 0x5555);
    if (r->reply_len < 512 && (id & 1)) {
        aq_rpc_respond(in, 0, (aq_rpc_buf){p, r->reply_len, NULL, NULL});
        free(p);
    } else if (r->reply_len >= 2 && id % 3 == 0) {
        /* In two lent pieces (a head and a body, as a node's GET answers), cut anywhere. */
        size_t k = 1 + (size_t)(id / 3) % (r->reply_len - 1 < 300 ? r->reply_len - 1 : 300);
        uint8_t *h = malloc(k), *b = malloc(r->reply_len - k);
        memcpy(h, p, k);
        memcpy(b, p + k, r->reply_len - k);
        free(p);
        aq_rpc_respond2(in, 0, lend(s, h, k), lend(s, b, r->reply_len - k));
    } else {
        aq_rpc_respond(in, 0, lend(s, p, r->reply_len));
    }
}

static void note_run(sim *s, node *n, call_rec *r, uint64_t id) {
    uint64_t inc = aq_rpc_incarnation(n->rpc);
    for (int i = 0; i < r->nrun; i++)
        if (r->run_inc[i] == inc) {
            r->runs[i]++;
            fail(s, "handler ran %d times for call %" PRIu64 " in one incarnation", r->runs[i], id);
            return;
        }
    if (r->nrun < MAX_RUNS) {
        r->run_inc[r->nrun] = inc;
        r->runs[r->nrun++] = 1;
    }
}

static void handler(void *ud, aq_rpc_incoming *in) {
    node *n = ud;
    sim *s = n->s;
    size_t len;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    call_rec *r = rec_of(s, d, len);
    if (!r || len != r->req_len) {
        fail(s, "n%d got a request that names no call or has the wrong length", n->idx);
        aq_rpc_respond(in, AQ_EINVAL, (aq_rpc_buf){0});
        return;
    }
    uint64_t id = (uint64_t)(r - s->calls);
    uint8_t *want = malloc(len);
    fill_bytes(want, len, id);
    if (len > 8 && memcmp(want + 8, d + 8, len - 8) != 0)
        fail(s, "call %" PRIu64 ": request bytes differ at the handler", id);
    free(want);
    uint64_t roll = rng_below(&s->rng, 100);
    if (s->faults && (roll < 4 || r->busy_only)) {
        aq_rpc_respond_busy(in, 1 + (uint32_t)rng_below(&s->rng, 20));
        return;
    }
    note_run(s, n, r, id);
    if (roll < 30) {
        event *e = schedule(s, s->now + rng_below(&s->rng, 40000), EV_ASYNC, n->idx);
        e->ptr = in;
        e->id = id;
        if (roll < 15) {
            /* Take the payload like a handler that hands it to a worker. */
            size_t tl;
            free(aq_rpc_incoming_take(in, &tl));
        }
        return;
    }
    respond_real(s, in, id);
}

static int err_slot(int err) {
    switch (err) {
    case AQ_ETIMEDOUT:
        return 0;
    case AQ_ERESTARTED:
        return 1;
    case AQ_ECLOSED:
        return 2;
    case AQ_EBUSY:
        return 3;
    case AQ_EQUEUEFULL:
        return 4;
    default:
        return 5;
    }
}

static void call_done(void *ud, const aq_rpc_result *res) {
    call_rec *r = ud;
    sim *s = r->s;
    r->outcomes++;
    r->err = res->err;
    r->status = res->status;
    uint64_t id = (uint64_t)(r - s->calls);
    if (r->outcomes > 1)
        fail(s, "call %" PRIu64 " had %d outcomes", id, r->outcomes);
    if (res->err == 0) {
        s->stat_ok++;
        if (res->status != 0 || res->len != r->reply_len) {
            fail(s, "call %" PRIu64 ": reply status %d len %zu, want 0 and %u", id, res->status,
                 res->len, r->reply_len);
            return;
        }
        uint8_t *want = malloc(r->reply_len ? r->reply_len : 1);
        fill_bytes(want, r->reply_len, id ^ 0x5555);
        size_t tl = 0;
        uint8_t *got = (id % 3 == 0) ? aq_rpc_result_take(res, &tl) : NULL;
        const uint8_t *cmp = got ? got : res->data;
        if (r->reply_len && XXH3_64bits(cmp, r->reply_len) != XXH3_64bits(want, r->reply_len))
            fail(s, "call %" PRIu64 ": reply bytes differ", id);
        free(got);
        free(want);
    } else {
        s->stat_err++;
        s->errs[err_slot(res->err)]++;
        if (s->verbose) {
            aq_rpc_peer_stats ps;
            aq_rpc_peer_stats_get(res->peer, &ps);
            trace(s,
                  "call %" PRIu64 " n%d->n%d (%u B, reply %u B) failed: %s after %u attempts "
                  "(cwnd %u inflight %u queued %u)",
                  id, r->from, r->to, r->req_len, r->reply_len, aq_strerror(res->err),
                  res->attempts, ps.cwnd, ps.inflight, ps.queued);
        }
        if (!s->faults)
            fail(s, "call %" PRIu64 " n%d->n%d (%u B, reply %u B) failed without faults: %s", id,
                 r->from, r->to, r->req_len, r->reply_len, aq_strerror(res->err));
    }
}

/* ---------- node lifecycle ---------- */

static void node_up(sim *s, int i) {
    node *n = &s->nodes[i];
    aq_rpc_config cfg;
    aq_rpc_config_init(&cfg);
    cfg.cluster_id = CLUSTER_ID;
    cfg.incarnation = (s->seed << 8) + (uint64_t)(i * 16) + ++n->inc_counter;
    cfg.self = n->addr;
    cfg.reply_cache_us = 3000000;
    cfg.fragment_size = 64 * 1024;
    cfg.window_init = 8 + (uint32_t)rng_below(&s->rng, 32);
    cfg.running_max = 16 + (uint32_t)rng_below(&s->rng, 64);
    cfg.queue_max = 256;
    if (s->small_reasm)
        cfg.reassembly_max = 6u << 20; /* concurrent large messages meet the bound: BUSY */
    static const char secret[] = "rpc_sim cluster secret, 32 bytes or more";
    bool enc = getenv("AQ_SIM_ENCRYPT") && atoi(getenv("AQ_SIM_ENCRYPT"));
    if (enc || (getenv("AQ_SIM_AUTH") && atoi(getenv("AQ_SIM_AUTH")))) { /* all MACed */
        cfg.secret = secret;
        cfg.secret_len = sizeof secret - 1;
        /* Payloads encrypted; every third seed only by even nodes, so senders that encrypt and
         * senders that do not meet (each side encrypts per its own setting). */
        cfg.encrypt = enc && (s->seed % 3 != 0 || i % 2 == 0);
    }
    n->gen++;
    if (aq_rpc_new(&cfg, &sim_io, n, &n->rpc) != 0)
        abort();
    aq_rpc_handle(n->rpc, M_ECHO, handler, n);
    aq_rpc_method_name(n->rpc, M_ECHO, "ECHO");
    trace(s, "n%d up, incarnation %" PRIx64, i, aq_rpc_incarnation(n->rpc));
}

static void add_peer_stats(void *ud, aq_rpc_peer *p) {
    sim *s = ud;
    aq_rpc_peer_stats ps;
    aq_rpc_peer_stats_get(p, &ps);
    s->core[0] += ps.retransmits;
    s->core[1] += ps.dup_suppressed;
    s->core[2] += ps.busy_sent;
    s->core[3] += ps.pending_seen;
    s->core[7] += ps.pipe_connects;
}

static void check_idle_peer(void *ud, aq_rpc_peer *p) {
    aq_rpc_peer_stats ps;
    aq_rpc_peer_stats_get(p, &ps);
    if (ps.inflight || ps.queued)
        fail((sim *)ud, "peer %s still has %u calls in flight and %u queued at the end",
             aq_rpc_peer_name(p), ps.inflight, ps.queued);
}

static void node_down(sim *s, int i) {
    node *n = &s->nodes[i];
    if (!n->rpc)
        return;
    aq_rpc_stats st;
    aq_rpc_stats_get(n->rpc, &st);
    s->core[4] += st.dropped_malformed;
    s->core[5] += st.dropped_stale;
    s->core[6] += st.cutoffs;
    aq_rpc_foreach_peer(n->rpc, add_peer_stats, s);
    trace(s, "n%d down", i);
    aq_rpc *r = n->rpc;
    aq_rpc_free(r); /* pending calls end with AQ_ECLOSED now */
    n->rpc = NULL;
    n->gen++; /* stale timers, async responses and write completions are ignored */
}

static void start_call(sim *s, int idx) {
    call_rec *r = &s->calls[idx];
    node *n = &s->nodes[r->from];
    if (!n->rpc)
        return; /* the caller is down: the call never starts */
    r->started = true;
    aq_rpc_peer *p = aq_rpc_peer_get(n->rpc, &s->nodes[r->to].addr);
    uint8_t *d = malloc(r->req_len);
    fill_bytes(d, r->req_len, (uint64_t)idx);
    uint64_t id = (uint64_t)idx;
    memcpy(d, &id, 8);
    aq_rpc_buf b;
    if (r->req_len < 600 && (idx & 2)) {
        b = (aq_rpc_buf){d, r->req_len, NULL, NULL};
    } else {
        b = lend(s, d, r->req_len);
        d = NULL;
    }
    uint64_t timeout = 2000000 + rng_below(&s->rng, 2000000);
    int err = aq_rpc_call(n->rpc, p, M_ECHO, b, timeout, call_done, r);
    free(d);
    if (err) {
        r->outcomes++;
        r->err = err;
        s->stat_err++;
        s->errs[err_slot(err)]++;
        if (err != AQ_EQUEUEFULL || !s->faults)
            fail(s, "call %d: aq_rpc_call failed at once: %s", idx, aq_strerror(err));
    }
}

/* ---------- events ---------- */

static void deliver(sim *s, sconn *c) {
    c->deliver_scheduled = false;
    if (c->dead || c->b_closed)
        return;
    node *nb = &s->nodes[c->b];
    size_t avail = c->len - c->head;
    size_t want = 1 + rng_below(&s->rng, rng_chance(&s->rng, 0.2) ? 100 : 96 * 1024);
    if (want > avail)
        want = avail;
    uint64_t id_b = 2 * (uint64_t)(c - s->conns) + 2;
    size_t done = 0;
    while (done < want && !c->dead && !c->b_closed) {
        uint8_t *p;
        size_t l;
        aq_rpc_pipe_read_buf(nb->rpc, id_b, &p, &l);
        if (l == 0) {
            fail(s, "core lent a 0-byte read buffer");
            break;
        }
        size_t m = want - done < l ? want - done : l;
        memcpy(p, c->buf + c->head + done, m);
        done += m;
        aq_rpc_pipe_input(nb->rpc, id_b, m);
    }
    if (c->dead || c->b_closed)
        return;
    c->head += done;
    c->delivered += done;
    /* Writes whose bytes all arrived are complete. */
    size_t k = 0;
    while (k < c->nwt && c->wt[k].end <= c->delivered)
        k++;
    for (size_t i = 0; i < k; i++) {
        event *e = schedule(s, s->now + 1, EV_WRITTEN, c->a);
        e->gen = c->gen_a;
        e->id = (uint64_t)(c - s->conns);
        e->ptr = c->wt[i].token;
        e->status = 0;
    }
    memmove(c->wt, c->wt + k, (c->nwt - k) * sizeof *c->wt);
    c->nwt -= k;
    if (c->head < c->len) {
        c->deliver_scheduled = true;
        /* About 1 GB/s plus jitter. */
        event *e = schedule(s, s->now + 1 + done / 1000 + rng_below(&s->rng, 50), EV_DELIVER, c->b);
        e->gen = c->gen_b;
        e->id = (uint64_t)(c - s->conns);
    }
}

static void run_event(sim *s, event *e) {
    node *n = e->node >= 0 ? &s->nodes[e->node] : NULL;
    bool live = n && n->rpc && e->gen == n->gen;
    sconn *c;
    switch (e->kind) {
    case EV_DGRAM:
        if (n && n->rpc)
            aq_rpc_input_dgram(n->rpc, &s->nodes[e->id].addr, e->data, e->len);
        break;
    case EV_TIMER:
        if (n && n->rpc && e->id == n->timer_token) {
            n->timer_token++;
            aq_rpc_timer_fired(n->rpc);
        }
        break;
    case EV_CONNECT:
        c = &s->conns[e->id];
        if (!live || c->a_closed || c->dead)
            break;
        if (c->b < 0 || !s->nodes[c->b].rpc) {
            conn_kill(s, c);
            report_closed_later(s, c, true, -ECONNREFUSED);
            break;
        }
        c->accepted = true;
        c->gen_b = s->nodes[c->b].gen;
        {
            aq_rpc_addr remote = s->nodes[c->a].addr;
            aq_rpc_addr_set_port(&remote, (uint16_t)(30000 + e->id % 30000));
            aq_rpc_pipe_accepted(s->nodes[c->b].rpc, 2 * e->id + 2, &remote);
        }
        {
            event *x = schedule(s, s->now + 20 + rng_below(&s->rng, 100), EV_CONNECTED, c->a);
            x->gen = c->gen_a;
            x->id = e->id;
        }
        break;
    case EV_CONNECTED:
        c = &s->conns[e->id];
        if (!live || c->a_closed || c->dead)
            break;
        c->established = true;
        aq_rpc_pipe_connected(n->rpc, 2 * e->id + 1);
        break;
    case EV_DELIVER:
        c = &s->conns[e->id];
        if (live)
            deliver(s, c);
        else
            c->deliver_scheduled = false;
        break;
    case EV_CLOSED:
        c = &s->conns[e->id];
        if (e->len ? c->a_closed : c->b_closed)
            break;
        if (e->len)
            c->a_closed = true;
        else
            c->b_closed = true;
        if (live)
            aq_rpc_pipe_closed(n->rpc, 2 * e->id + (e->len ? 1 : 2), e->status);
        break;
    case EV_WRITTEN:
        if (live)
            aq_rpc_pipe_written(n->rpc, 2 * e->id + 1, e->ptr, e->status);
        break;
    case EV_ASYNC:
        if (live)
            respond_real(s, e->ptr, e->id);
        break;
    case EV_START_CALL:
        start_call(s, (int)e->id);
        break;
    case EV_RESET:
        if (s->nconns) {
            c = &s->conns[rng_below(&s->rng, s->nconns)];
            if (!c->dead && c->established && !c->a_closed && !c->b_closed) {
                trace(s, "reset conn %zu", (size_t)(c - s->conns));
                s->stat_resets++;
                conn_kill(s, c);
                report_closed_later(s, c, true, -ECONNRESET);
                report_closed_later(s, c, false, -ECONNRESET);
            }
        }
        break;
    case EV_RESTART:
        if (!n->rpc)
            break; /* already down: its pending NODE_UP brings it back */
        s->stat_restarts++;
        node_down(s, e->node);
        for (size_t k = 0; k < s->nconns; k++) {
            c = &s->conns[k];
            if ((c->a == e->node || c->b == e->node) && !c->dead) {
                conn_kill(s, c);
                report_closed_later(s, c, c->b == e->node, -ECONNRESET);
            }
        }
        schedule(s, s->now + rng_below(&s->rng, 300000), EV_NODE_UP, e->node);
        break;
    case EV_NODE_UP:
        node_up(s, e->node);
        break;
    }
}

/* ---------- one seed ---------- */

static uint32_t pick_len(sim *s) {
    uint64_t r = rng_below(&s->rng, 100);
    if (r < 75)
        return 8 + (uint32_t)rng_below(&s->rng, 1400);
    if (r < 95)
        return 1300 + (uint32_t)rng_below(&s->rng, 200000);
    return 8 + (uint32_t)rng_below(&s->rng, 4u << 20);
}

static int run_seed(uint64_t seed, bool verbose, bool harsh, uint64_t *summary) {
    sim *s = calloc(1, sizeof *s);
    s->seed = seed;
    s->rng = seed * 0x9e3779b97f4a7c15ull + 12345;
    s->verbose = verbose;
    s->harsh = harsh;
    s->faults = seed % 8 != 0;
    if (s->faults) {
        s->p_drop = (double)rng_below(&s->rng, s->harsh ? 40 : 15) / 100.0;
        s->p_dup = (double)rng_below(&s->rng, 8) / 100.0;
        s->p_corrupt = (double)rng_below(&s->rng, 3) / 100.0;
        s->max_delay = 100 + rng_below(&s->rng, 5000);
        s->small_reasm = rng_chance(&s->rng, 0.3);
    }
    for (int i = 0; i < NNODES; i++) {
        node *n = &s->nodes[i];
        n->s = s;
        n->idx = i;
        char a[32];
        snprintf(a, sizeof a, "127.0.0.1:%d", 7000 + i);
        aq_rpc_addr_parse(a, &n->addr);
        node_up(s, i);
    }
    s->ncalls = 30 + (int)rng_below(&s->rng, 60);
    int bigs = 0;
    for (int k = 0; k < s->ncalls; k++) {
        call_rec *r = &s->calls[k];
        r->s = s;
        r->from = (int)rng_below(&s->rng, NNODES);
        r->to = (r->from + 1 + (int)rng_below(&s->rng, NNODES - 1)) % NNODES;
        r->req_len = pick_len(s);
        r->reply_len = pick_len(s);
        if (r->req_len > 300000 || r->reply_len > 300000) {
            /* Keep memory and time sane: a few large messages per seed. */
            if (++bigs > 2) {
                r->req_len %= 300000;
                r->reply_len %= 300000;
            }
        }
        if (r->req_len < 8)
            r->req_len = 8; /* the call id; empty payloads are covered by the replies */
        if (rng_chance(&s->rng, 0.05))
            r->reply_len = 0;
        r->busy_only = s->faults && rng_chance(&s->rng, 0.01);
        event *e = schedule(s, rng_below(&s->rng, 1000000), EV_START_CALL, -1);
        e->id = (uint64_t)k;
    }
    if (s->faults) {
        int resets = (int)rng_below(&s->rng, s->harsh ? 40 : 6);
        for (int k = 0; k < resets; k++)
            schedule(s, rng_below(&s->rng, 2000000), EV_RESET, -1);
        int restarts = s->harsh ? 3 : 1;
        for (int k = 0; k < restarts; k++)
            if (rng_chance(&s->rng, 0.3))
                schedule(s, 100000 + rng_below(&s->rng, 1500000), EV_RESTART,
                         (int)rng_below(&s->rng, NNODES));
    }
    event *e;
    while ((e = heap_pop(s))) {
        if (e->at > VIRT_END) {
            free(e->data);
            free(e);
            continue;
        }
        s->now = e->at;
        run_event(s, e);
        free(e->data);
        free(e);
    }
    /* Long after the last deadline everything must be quiet: no partial messages held, no
     * handler running, no call in flight or queued. */
    for (int i = 0; i < NNODES; i++) {
        if (!s->nodes[i].rpc)
            continue;
        aq_rpc_stats st;
        aq_rpc_stats_get(s->nodes[i].rpc, &st);
        if (st.reassembly_bytes || st.handlers_running)
            fail(s,
                 "n%d still holds %" PRIu64 " reassembly bytes and %" PRIu64 " handlers at the end",
                 i, st.reassembly_bytes, st.handlers_running);
        aq_rpc_foreach_peer(s->nodes[i].rpc, check_idle_peer, s);
    }
    for (int i = 0; i < NNODES; i++)
        node_down(s, i);
    while ((e = heap_pop(s))) {
        free(e->data);
        free(e);
    }
    for (int k = 0; k < s->ncalls; k++) {
        call_rec *r = &s->calls[k];
        if (r->started && r->outcomes != 1)
            fail(s, "call %d (n%d->n%d, %u B) had %d outcomes", k, r->from, r->to, r->req_len,
                 r->outcomes);
    }
    if (s->bufs_lent != s->bufs_released)
        fail(s, "%" PRIu64 " buffers lent, %" PRIu64 " released", s->bufs_lent, s->bufs_released);
    int failures = s->failures;
    if (failures)
        fprintf(stderr,
                "rpc_sim: seed %" PRIu64 " FAILED: %s\n  replay: AQ_SIM_SEED=%" PRIu64
                "%s AQ_SIM_VERBOSE=1 %s\n",
                seed, s->first_failure, seed, harsh ? " AQ_SIM_HARSH=1" : "",
                "build/tests/rpc_sim");
    summary[0] += s->stat_ok;
    summary[1] += s->stat_err;
    summary[2] += s->stat_resets;
    summary[3] += s->stat_restarts;
    summary[4] += s->stat_bytes_piped;
    summary[5] += s->stat_dgrams;
    for (int k = 0; k < 6; k++)
        summary[6 + k] += s->errs[k];
    for (int k = 0; k < 8; k++)
        summary[12 + k] += s->core[k];
    for (size_t k = 0; k < s->nconns; k++) {
        free(s->conns[k].buf);
        free(s->conns[k].wt);
    }
    free(s->conns);
    free(s->heap);
    free(s);
    return failures;
}

int main(void) {
    const char *one = getenv("AQ_SIM_SEED");
    const char *nseeds = getenv("AQ_SIM_SEEDS");
    const char *first = getenv("AQ_SIM_FIRST");
    bool verbose = getenv("AQ_SIM_VERBOSE") && atoi(getenv("AQ_SIM_VERBOSE"));
    bool harsh = getenv("AQ_SIM_HARSH") && atoi(getenv("AQ_SIM_HARSH"));
    uint64_t from = first ? strtoull(first, NULL, 10) : 1;
    uint64_t n = nseeds ? strtoull(nseeds, NULL, 10) : 2000;
    if (one) {
        from = strtoull(one, NULL, 10);
        n = 1;
    }
    uint64_t sum[20] = {0};
    int bad = 0;
    for (uint64_t seed = from; seed < from + n; seed++)
        if (run_seed(seed, verbose, harsh, sum))
            bad++;
    printf("rpc_sim: %" PRIu64 " seeds from %" PRIu64 ", %d failed; calls ok %" PRIu64
           ", failed (under faults) %" PRIu64 ", resets %" PRIu64 ", restarts %" PRIu64
           ", pipe bytes %" PRIu64 ", datagrams %" PRIu64 "\n",
           n, from, bad, sum[0], sum[1], sum[2], sum[3], sum[4], sum[5]);
    printf("rpc_sim: errors: timed out %" PRIu64 ", restarted %" PRIu64 ", closed %" PRIu64
           ", busy %" PRIu64 ", queue full %" PRIu64 ", other %" PRIu64 "\n",
           sum[6], sum[7], sum[8], sum[9], sum[10], sum[11]);
    printf("rpc_sim: core: retransmits %" PRIu64 ", duplicates suppressed %" PRIu64
           ", BUSY sent %" PRIu64 ", PENDING seen %" PRIu64 ", malformed dropped %" PRIu64
           ", stale dropped %" PRIu64 ", cutoffs %" PRIu64 ", pipe connects %" PRIu64 "\n",
           sum[12], sum[13], sum[14], sum[15], sum[16], sum[17], sum[18], sum[19]);
    return bad ? 1 : 0;
}
