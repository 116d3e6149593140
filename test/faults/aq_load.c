/* aq_load: the fault suite's load driver. It drives mixed client traffic (PUT, GET, STAT, RM) at a
 * live cluster, remembers every outcome, and after the faults stop proves nothing was lost.
 *
 * Usage: aq_load -c CONF -s SCENARIO [-n calls] [-k keys] [-j inflight] [--seed S]
 *                [--large-permille P] [--large-max BYTES] [--ready FILE] [--resume FILE]
 *                [--heal-s S] [--attempt-ms MS] [--endpoints E] [--min-s S] [--writers W]
 *
 * With --endpoints E the operations are spread over E client endpoints (each its own port and TCP
 * connections), so a node sees many clients opening connections at once, as in the seed's report.
 *
 * With --min-s S the calls are paced to last at least S seconds, so timed faults meet live traffic.
 *
 * Phases: (1) load: `calls` operations, at most `inflight` at once, one at a time per key;
 * (2) touches --ready FILE and waits (bounded) for --resume FILE, so the test can stop its faults;
 * (3) reads every node's handler counters; (4) verifies every key until healed or --heal-s passes.
 * Prints `faults: SCENARIO calls=N ok=A failed_clearly=F lost=L duplicated=D healed=yes|no` and a
 * detail line, and exits 0 only when lost=0, duplicated=0 and healed=yes. An operation that
 * outlives its deadline is a hang: the driver says so and exits 3 at once.
 *
 * With --writers W (W >= 1) the load is concurrent: up to W operations of one key at once (PUT,
 * RM, GET, STAT), each sent first to a replica picked at random, so writes of one key race
 * through different coordinators. Every write is remembered with when it started and ended (on
 * the driver's monotonic clock) and whether it was acknowledged. A read is correct when it
 * returns the value of some write that started before the read ended and that no acknowledged
 * write superseded before the read started (one that started after it ended and ended before the
 * read started): the latest acknowledged value or a concurrent one. A write that failed or whose
 * attempts timed out may have landed, but only before its deadline, which is before the driver
 * saw it end. Any wrong read then fails the run, and the final state of every key must be one of
 * the values a read at the end may return.
 *
 * What a key may hold: a key's state is the outcome of its last write that was answered. A write
 * whose fate is unclear (it failed, or an attempt timed out before another node answered) may still
 * land later, so the key is retired: it takes no more writes and may end in either the state before
 * or the state attempted. "lost" counts keys that must hold a value (every acceptable state is
 * present) but read back missing or with other bytes.
 *
 * Duplicated handler runs: each attempt (one rpc call to one node) either got a reply (R: the
 * handler ran exactly once if the no-duplicate invariant holds) or ended unclear (U: timed out,
 * restarted, busy: ran at most once). The nodes' handled_client counters, summed over nodes and
 * over every incarnation seen by polling STATUS during the run (a killed node's last polled value
 * is banked), give H <= true runs. duplicated = max(0, H - R - U) is then a lower bound on runs
 * beyond one per attempt.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>
#include <xxhash.h>

#include "aq_bytes.h"
#include "aq_error.h"
#include "aq_node_config.h"
#include "aq_node_place.h"
#include "aq_node_proto.h"
#include "aq_rpc.h"
#include "aq_rpc_uv.h"

#define MAX_NODES 16

typedef struct vstate {
    bool present;
    uint32_t size;
    uint64_t seed;
    aq_node_digest d;
} vstate;

/* One write of a key (--writers): what it stores and when the driver saw it start and end. */
typedef struct hwrite {
    uint64_t start, end; /* end: 0 while in flight */
    bool acked;
    vstate v;
} hwrite;

#define NST_MAX 16
typedef struct keyinfo {
    uint8_t nst; /* acceptable states: st[0], and st[1] when retired after an unclear write */
    vstate st[NST_MAX];
    uint32_t inflight; /* --writers: operations of this key in flight */
    hwrite *h;         /* --writers: every write, h[0] the key's absence at the start */
    uint32_t nh, caph;
    bool busy, retired;
    bool healed;       /* verify: both replicas hold one same acceptable state */
    bool last_partial; /* the last answered write reached fewer copies than wanted */
    uint8_t holders;
} keyinfo;

typedef struct load load;

/* One client endpoint: its own port, incarnation and TCP connections. */
typedef struct endpoint {
    aq_rpc_uv *uv;
    aq_rpc *rpc;
    aq_rpc_peer *peers[MAX_NODES];
} endpoint;

typedef struct op {
    load *L;
    bool active;
    uint32_t key;
    uint16_t method;
    uint8_t *req;
    size_t reqlen;
    uint32_t cand[MAX_NODES];
    uint32_t ncand, pos;
    uint64_t start_us, deadline_us;
    bool unclear;     /* some attempt ended without knowing whether it ran */
    vstate attempt;   /* what a PUT or RM would leave */
    int verify;       /* 0: load; 1: verify STAT of cand[pos] only; 2: verify GET */
    uint32_t replica; /* verify STAT: which replica */
    uint32_t hidx;    /* --writers: this write's record in its key's history */
    endpoint *ep;
} op;

typedef struct nodectr {
    uint64_t inc, handled, banked;
    bool polling, answered_final;
} nodectr;

struct load {
    uv_loop_t loop;
    endpoint *eps;
    uint32_t neps;
    aq_node_config *cf;
    uint64_t seeds[MAX_NODES];
    const char *scenario;
    uint64_t calls, started, done, ok, failed;
    uint64_t att_replied, att_unclear;
    uint64_t wrong_reads, bytes_put, bytes_got;
    uint64_t partial_writes; /* PUT or RM answered with fewer copies than wanted */
    uint32_t nkeys, inflight_max, inflight;
    uint32_t writers; /* --writers: concurrent operations per key; 0: one at a time */
    keyinfo *keys;
    op *ops;
    uint64_t rng;
    uint32_t large_permille, large_max;
    uint64_t attempt_us;
    nodectr ctr[MAX_NODES];
    uv_timer_t tick, pace;
    uint64_t t0_us, min_us; /* pacing: spread the calls over at least min_us */
    bool hang;
    char errs[5][400];
    uint32_t nerrs;
    /* verify */
    uint64_t lost, resurrected, diverged;
    struct vres *vres; /* per key, for the verify pass in progress */
};

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd(load *L, uint64_t n) {
    return n ? splitmix(&L->rng) % n : 0;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "aq_load: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void fill_value(uint8_t *p, uint32_t size, uint64_t seed) {
    uint64_t s = seed;
    uint32_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t v = splitmix(&s);
        memcpy(p + i, &v, 8);
    }
    if (i < size) {
        uint64_t v = splitmix(&s);
        memcpy(p + i, &v, size - i);
    }
}

static aq_node_digest digest_of(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits(p, n);
    return (aq_node_digest){h.high64, h.low64};
}

static bool dg_eq(aq_node_digest a, aq_node_digest b) {
    return a.hi == b.hi && a.lo == b.lo;
}

static int key_name(uint32_t k, char *buf, size_t n) {
    return snprintf(buf, n, "flt/%08" PRIu32, k);
}

static void note_err(load *L, const char *msg) {
    if (L->nerrs < 5)
        snprintf(L->errs[L->nerrs++], sizeof L->errs[0], "%s", msg);
}

static void candidates(load *L, op *o) {
    char kb[32];
    int kl = key_name(o->key, kb, sizeof kb);
    uint32_t order[MAX_NODES];
    aq_place_order(L->seeds, L->cf->nnodes, kb, (size_t)kl, order);
    o->ncand = L->cf->replicas;
    for (uint32_t i = 0; i < o->ncand; i++)
        o->cand[i] = order[i];
    o->pos = 0;
}

static void op_send(op *o);
static void op_finish(op *o, int err, const uint8_t *rep, size_t replen, const char *msg);

static void attempt_cb(void *ud, const aq_rpc_result *r) {
    op *o = ud;
    load *L = o->L;
    int e = r->err ? r->err : r->status;
    if (r->err == 0)
        L->att_replied++;
    else if (r->err != AQ_ECLOSED)
        L->att_unclear++;
    if (r->err && r->err != AQ_ENOMETHOD)
        o->unclear = true;
    /* A replica that restarted empty or missed a write answers not found: ask the next. */
    bool notfound_next =
        e == AQ_ENOTFOUND && (o->method == AQ_M_GET || o->method == AQ_M_STAT) && o->verify != 1;
    if (e == 0 || (e == AQ_ENOTFOUND && !notfound_next) || o->verify == 1) {
        char msg[400] = "";
        if (e && e != AQ_ENOTFOUND)
            aq_rpc_result_describe(o->ep->rpc, r, msg, sizeof msg);
        op_finish(o, e, r->data, r->len, msg);
        return;
    }
    bool retry = r->err != 0 || e == AQ_ECLOSED || e == AQ_EBUSY || e == AQ_ECORRUPT ||
                 e == AQ_EPROTO || notfound_next;
    if (retry && o->pos + 1 < o->ncand) {
        o->pos++;
        op_send(o);
        return;
    }
    char msg[400];
    aq_rpc_result_describe(o->ep->rpc, r, msg, sizeof msg);
    op_finish(o, e, NULL, 0, msg);
}

static void op_send(op *o) {
    load *L = o->L;
    for (;;) {
        aq_rpc_buf b = {o->req, o->reqlen, NULL, NULL};
        int err = aq_rpc_call(o->ep->rpc, o->ep->peers[o->cand[o->pos]], o->method, b,
                              L->attempt_us, attempt_cb, o);
        if (err == 0)
            return;
        if (o->pos + 1 >= o->ncand || o->verify == 1) {
            char msg[400];
            snprintf(msg, sizeof msg, "call %s to %s failed at once: %s",
                     aq_node_method_name(o->method), L->cf->nodes[o->cand[o->pos]].name,
                     aq_strerror(err));
            /* Finishing from here would re-enter the caller; every caller handles a false start
             * by checking o->active afterwards. */
            op_finish(o, err, NULL, 0, msg);
            return;
        }
        o->pos++;
    }
}

static bool state_accepts(const keyinfo *ki, bool present, aq_node_digest d) {
    for (uint8_t i = 0; i < ki->nst; i++) {
        if (!ki->st[i].present && !present)
            return true;
        if (ki->st[i].present && present && dg_eq(ki->st[i].d, d))
            return true;
    }
    return false;
}

static bool must_be_present(const keyinfo *ki) {
    for (uint8_t i = 0; i < ki->nst; i++)
        if (!ki->st[i].present)
            return false;
    return ki->nst > 0;
}

static bool may_be_present(const keyinfo *ki) {
    for (uint8_t i = 0; i < ki->nst; i++)
        if (ki->st[i].present)
            return true;
    return false;
}

/* --writers: may a read that ran from rs to re return (present, d)? See the comment at the top. */
static bool hist_accepts(const keyinfo *ki, bool present, aq_node_digest d, uint64_t rs,
                         uint64_t re) {
    for (uint32_t i = 0; i < ki->nh; i++) {
        const hwrite *w = &ki->h[i];
        if (w->v.present != present || (present && !dg_eq(w->v.d, d)) || w->start >= re)
            continue;
        bool superseded = false;
        for (uint32_t j = 0; w->end && j < ki->nh && !superseded; j++) {
            const hwrite *w2 = &ki->h[j];
            superseded = w2->acked && w2->end && w2->start > w->end && w2->end < rs;
        }
        if (!superseded)
            return true;
    }
    return false;
}

static void hist_add(keyinfo *ki, uint64_t start, vstate v, uint32_t *idx) {
    if (ki->nh == ki->caph) {
        uint32_t cap = ki->caph ? ki->caph * 2 : 16;
        hwrite *nh = realloc(ki->h, cap * sizeof *nh);
        if (!nh)
            die("out of memory");
        ki->h = nh;
        ki->caph = cap;
    }
    ki->h[ki->nh] = (hwrite){start, 0, false, v};
    *idx = ki->nh++;
}

/* --writers, after the load: the states a read now may return become the key's acceptable ones. */
static void hist_final_states(load *L, keyinfo *ki) {
    uint64_t now = now_us();
    ki->nst = 0;
    for (uint32_t i = 0; i < ki->nh; i++) {
        const hwrite *w = &ki->h[i];
        if (!hist_accepts(ki, w->v.present, w->v.d, now, now))
            continue;
        bool seen = false;
        for (uint8_t j = 0; j < ki->nst && !seen; j++)
            seen =
                ki->st[j].present == w->v.present && (!w->v.present || dg_eq(ki->st[j].d, w->v.d));
        if (seen)
            continue;
        if (ki->nst == NST_MAX) {
            note_err(L, "more concurrent final states than the driver tracks");
            break;
        }
        ki->st[ki->nst++] = w->v;
    }
    ki->retired = ki->nst > 1;
}

/* Verify results, per key, for the pass in progress. */
typedef struct vres {
    bool stat_done[MAX_NODES];
    bool stat_has[MAX_NODES];
    aq_node_digest stat_d[MAX_NODES];
    bool get_done, get_present, get_ok;
} vres;

static void op_finish(op *o, int err, const uint8_t *rep, size_t replen, const char *msg) {
    load *L = o->L;
    keyinfo *ki = &L->keys[o->key];
    free(o->req);
    o->req = NULL;
    o->active = false;
    L->inflight--;
    L->done++;
    if (o->verify) {
        vres *v = &L->vres[o->key];
        if (o->verify == 1) {
            v->stat_done[o->replica] = true;
            uint8_t kind;
            uint64_t size;
            aq_node_digest d;
            if (err == 0 && aq_node_stat_rep_decode(rep, replen, &kind, &size, &d) == 0) {
                v->stat_has[o->replica] = true;
                v->stat_d[o->replica] = d;
            } else if (err != AQ_ENOTFOUND) {
                /* Not an answer about the key: counts as not holding it for this pass. */
                v->stat_has[o->replica] = false;
                v->stat_d[o->replica] = (aq_node_digest){1, 1};
                v->stat_done[o->replica] = false;
            }
        } else {
            v->get_done = err == 0 || err == AQ_ENOTFOUND;
            if (err == 0) {
                uint8_t kind;
                aq_node_digest d;
                const uint8_t *val;
                size_t vlen;
                if (aq_node_get_rep_decode(rep, replen, &kind, &d, &val, &vlen) == 0 &&
                    dg_eq(digest_of(val, vlen), d)) {
                    v->get_present = true;
                    v->get_ok = state_accepts(ki, true, d);
                    L->bytes_got += vlen;
                } else {
                    v->get_done = false;
                }
            } else if (err == AQ_ENOTFOUND) {
                v->get_present = false;
                v->get_ok = state_accepts(ki, false, (aq_node_digest){0, 0});
            }
        }
        return;
    }
    ki->busy = false;
    bool answered = err == 0 || err == AQ_ENOTFOUND;
    if (L->writers) {
        ki->inflight--;
        uint64_t now = now_us();
        if (answered)
            L->ok++;
        else {
            L->failed++;
            note_err(L, msg && msg[0] ? msg : aq_strerror(err));
        }
        if (o->method == AQ_M_PUT || o->method == AQ_M_RM) {
            aq_node_put_rep pr;
            bool partial = err == 0 &&
                           (aq_node_put_rep_decode(rep, replen, &pr) != 0 || pr.copies < pr.wanted);
            L->partial_writes += partial;
            ki->h[o->hidx].end = now;
            ki->h[o->hidx].acked = answered;
            if (o->method == AQ_M_PUT && answered)
                L->bytes_put += o->attempt.size;
            return;
        }
        bool present = false;
        aq_node_digest d = {0, 0};
        if (err == 0 && o->method == AQ_M_GET) {
            uint8_t kind;
            const uint8_t *val;
            size_t vlen;
            if (aq_node_get_rep_decode(rep, replen, &kind, &d, &val, &vlen) != 0 ||
                !dg_eq(digest_of(val, vlen), d)) {
                L->wrong_reads++;
                note_err(L, "a GET reply failed its digest");
                return;
            }
            present = true;
            L->bytes_got += vlen;
        } else if (err == 0) {
            uint8_t kind;
            uint64_t size;
            if (aq_node_stat_rep_decode(rep, replen, &kind, &size, &d) != 0) {
                L->wrong_reads++;
                return;
            }
            present = true;
        } else if (err != AQ_ENOTFOUND) {
            return;
        }
        if (!hist_accepts(ki, present, d, o->start_us, now)) {
            L->wrong_reads++;
            char kb[32], m[400];
            key_name(o->key, kb, sizeof kb);
            snprintf(m, sizeof m,
                     "%s %s from %s returned %s that a newer acknowledged write had replaced",
                     aq_node_method_name(o->method), kb, L->cf->nodes[o->cand[o->pos]].name,
                     present ? "a value" : "not found");
            note_err(L, m);
        }
        return;
    }
    if (answered)
        L->ok++;
    else {
        L->failed++;
        note_err(L, msg && msg[0] ? msg : aq_strerror(err));
    }
    if (o->method == AQ_M_PUT || o->method == AQ_M_RM) {
        aq_node_put_rep pr;
        bool partial =
            err == 0 && (aq_node_put_rep_decode(rep, replen, &pr) != 0 || pr.copies < pr.wanted);
        L->partial_writes += partial;
        if (answered)
            ki->last_partial = partial;
        if (answered && o->method == AQ_M_RM && partial) {
            /* The caller was told a copy survived: it may come back (no tombstones). */
            ki->st[1] = ki->st[0];
            ki->st[0] = o->attempt;
            ki->nst = 2;
            ki->retired = true;
        } else if (answered && !o->unclear) {
            ki->nst = 1;
            ki->st[0] = o->attempt;
        } else if (answered) {
            /* It took effect, but an earlier attempt may still land later: keep it as is. */
            ki->nst = 1;
            ki->st[0] = o->attempt;
            ki->retired = true;
        } else {
            ki->st[ki->nst++] = o->attempt;
            ki->retired = true;
        }
        if (o->method == AQ_M_PUT && answered)
            L->bytes_put += o->attempt.size;
    } else if (err == 0 && o->method == AQ_M_GET) {
        uint8_t kind;
        aq_node_digest d;
        const uint8_t *val;
        size_t vlen;
        if (aq_node_get_rep_decode(rep, replen, &kind, &d, &val, &vlen) != 0 ||
            !dg_eq(digest_of(val, vlen), d) || !state_accepts(ki, true, d))
            L->wrong_reads++;
        L->bytes_got += vlen;
    } else if (err == 0 && o->method == AQ_M_STAT) {
        uint8_t kind;
        uint64_t size;
        aq_node_digest d;
        if (aq_node_stat_rep_decode(rep, replen, &kind, &size, &d) != 0 ||
            !state_accepts(ki, true, d))
            L->wrong_reads++;
    } else if (err == AQ_ENOTFOUND && !state_accepts(ki, false, (aq_node_digest){0, 0})) {
        L->wrong_reads++;
    }
}

static op *free_op(load *L) {
    for (uint32_t i = 0; i < L->inflight_max; i++)
        if (!L->ops[i].active)
            return &L->ops[i];
    return NULL;
}

static uint32_t pick_size(load *L) {
    uint64_t r = rnd(L, 1000);
    if (r < L->large_permille)
        return (uint32_t)(65536 + rnd(L, L->large_max - 65536 + 1));
    if (r < 150)
        return (uint32_t)(1024 + rnd(L, 65536 - 1024));
    return (uint32_t)(16 + rnd(L, 1024 - 16 + 1));
}

static void start_one(load *L) {
    op *o = free_op(L);
    if (!o)
        return;
    uint32_t k = (uint32_t)rnd(L, L->nkeys);
    for (uint32_t i = 0;
         i < L->nkeys && (L->writers ? L->keys[k].inflight >= L->writers : L->keys[k].busy); i++)
        k = (k + 1) % L->nkeys;
    keyinfo *ki = &L->keys[k];
    if (L->writers ? ki->inflight >= L->writers : ki->busy)
        return;
    memset(o, 0, sizeof *o);
    o->L = L;
    o->key = k;
    bool present = ki->nst == 1 && ki->st[0].present;
    uint64_t r = rnd(L, 100);
    if (L->writers)
        o->method = r < 55 ? AQ_M_PUT : r < 65 ? AQ_M_RM : r < 90 ? AQ_M_GET : AQ_M_STAT;
    else if (ki->retired)
        o->method = r < 50 ? AQ_M_GET : AQ_M_STAT;
    else if (!present)
        o->method = r < 70 ? AQ_M_PUT : r < 85 ? AQ_M_GET : AQ_M_STAT;
    else
        o->method = r < 30 ? AQ_M_PUT : r < 65 ? AQ_M_GET : r < 85 ? AQ_M_STAT : AQ_M_RM;
    char kb[32];
    int kl = key_name(k, kb, sizeof kb);
    aq_wr w;
    aq_wr_init(&w);
    if (o->method == AQ_M_PUT) {
        o->attempt.present = true;
        o->attempt.size = pick_size(L);
        o->attempt.seed = splitmix(&L->rng);
        uint8_t *val = malloc(o->attempt.size ? o->attempt.size : 1);
        if (!val)
            die("out of memory");
        fill_value(val, o->attempt.size, o->attempt.seed);
        o->attempt.d = digest_of(val, o->attempt.size);
        aq_node_put_req_head(&w, 0, AQ_KIND_VALUE, kb, (size_t)kl, o->attempt.d);
        aq_wr_bytes(&w, val, o->attempt.size);
        free(val);
    } else {
        aq_node_key_req_encode(&w, 0, kb, (size_t)kl);
    }
    if (!w.ok)
        die("out of memory");
    o->req = w.p;
    o->reqlen = w.len;
    candidates(L, o);
    o->ep = &L->eps[L->started % L->neps];
    o->active = true;
    o->start_us = now_us();
    if (L->writers) {
        /* Through a replica picked at random: writes of one key race through different
         * coordinators. */
        uint32_t first = (uint32_t)rnd(L, o->ncand), c0 = o->cand[first];
        o->cand[first] = o->cand[0];
        o->cand[0] = c0;
        ki->inflight++;
        if (o->method == AQ_M_PUT || o->method == AQ_M_RM)
            hist_add(ki, o->start_us, o->attempt, &o->hidx);
    }
    o->deadline_us = o->start_us + o->ncand * L->attempt_us + 15000000u;
    ki->busy = true;
    L->inflight++;
    L->started++;
    op_send(o);
}

/* ---- counters ---- */

typedef struct poll_call {
    load *L;
    uint32_t node;
} poll_call;

static void poll_cb(void *ud, const aq_rpc_result *r) {
    poll_call *pc = ud;
    load *L = pc->L;
    nodectr *c = &L->ctr[pc->node];
    c->polling = false;
    if (r->err == 0 && r->status == 0) {
        aq_rd rd;
        aq_node_status_node sn;
        if (aq_node_status_rep_begin(&rd, r->data, r->len, &sn) == 0) {
            if (c->inc && sn.incarnation != c->inc) {
                c->banked += c->handled;
                c->handled = 0;
            }
            c->inc = sn.incarnation;
            if (sn.handled_client > c->handled || c->handled == 0)
                c->handled = sn.handled_client;
            c->answered_final = true;
        }
    }
    free(pc);
}

static void poll_nodes(load *L) {
    for (uint32_t i = 0; i < L->cf->nnodes; i++) {
        nodectr *c = &L->ctr[i];
        if (c->polling)
            continue;
        poll_call *pc = malloc(sizeof *pc);
        if (!pc)
            die("out of memory");
        pc->L = L;
        pc->node = i;
        aq_rpc_buf none = {0};
        if (aq_rpc_call(L->eps[0].rpc, L->eps[0].peers[i], AQ_M_STATUS, none, 1000000, poll_cb,
                        pc) == 0)
            c->polling = true;
        else
            free(pc);
    }
}

static void tick_cb(uv_timer_t *t) {
    load *L = t->data;
    uint64_t now = now_us();
    for (uint32_t i = 0; i < L->inflight_max; i++) {
        op *o = &L->ops[i];
        if (o->active && now > o->deadline_us) {
            char kb[32];
            key_name(o->key, kb, sizeof kb);
            printf("faults: %s HANG: %s %s started %.1f s ago got no outcome (deadline %.1f s)\n",
                   L->scenario, aq_node_method_name(o->method), kb,
                   (double)(now - o->start_us) / 1e6, (double)(o->deadline_us - o->start_us) / 1e6);
            fflush(stdout);
            exit(3);
        }
    }
    poll_nodes(L);
}

static void pace_cb(uv_timer_t *t) {
    (void)t; /* wakes the loop so the pacing in cond_load_done can start more calls */
}

static void run_until(load *L, bool (*cond)(load *L)) {
    while (!cond(L))
        uv_run(&L->loop, UV_RUN_ONCE);
}

static bool cond_load_done(load *L) {
    uint64_t allowed = L->calls;
    if (L->min_us) {
        uint64_t el = now_us() - L->t0_us;
        allowed = el >= L->min_us ? L->calls : L->calls * el / L->min_us + 1;
    }
    while (L->started < allowed && L->inflight < L->inflight_max) {
        uint64_t before = L->started;
        start_one(L);
        if (L->started == before)
            break;
    }
    return L->started >= L->calls && L->inflight == 0;
}

static bool cond_idle(load *L) {
    return L->inflight == 0;
}

static void sleep_loop(load *L, uint64_t ms) {
    uint64_t until = now_us() + ms * 1000;
    while (now_us() < until)
        uv_run(&L->loop, UV_RUN_NOWAIT), uv_sleep(10);
}

/* ---- verify ---- */

static void verify_start(load *L, uint32_t k, int kind, uint32_t replica) {
    while (L->inflight >= L->inflight_max)
        uv_run(&L->loop, UV_RUN_ONCE);
    op *o = free_op(L);
    if (!o)
        die("no free operation slot with %u in flight", L->inflight);
    memset(o, 0, sizeof *o);
    o->L = L;
    o->key = k;
    o->verify = kind;
    o->method = kind == 1 ? AQ_M_STAT : AQ_M_GET;
    char kb[32];
    int kl = key_name(k, kb, sizeof kb);
    aq_wr w;
    aq_wr_init(&w);
    aq_node_key_req_encode(&w, 0, kb, (size_t)kl);
    if (!w.ok)
        die("out of memory");
    o->req = w.p;
    o->reqlen = w.len;
    candidates(L, o);
    o->ep = &L->eps[0];
    if (kind == 1) {
        o->replica = replica;
        o->pos = replica;
    }
    o->active = true;
    o->start_us = now_us();
    o->deadline_us = o->start_us + o->ncand * L->attempt_us + 15000000u;
    L->inflight++;
    op_send(o);
}

/* One pass over the keys not yet healed; returns how many remain unhealed. */
static uint32_t verify_pass(load *L, bool final) {
    uint32_t R = L->cf->replicas;
    for (uint32_t k = 0; k < L->nkeys; k++) {
        keyinfo *ki = &L->keys[k];
        if (ki->nst == 0 || (ki->healed && !final))
            continue;
        memset(&L->vres[k], 0, sizeof L->vres[k]);
        for (uint32_t j = 0; j < R; j++)
            verify_start(L, k, 1, j);
        if (final)
            verify_start(L, k, 2, 0);
    }
    run_until(L, cond_idle);
    uint32_t unhealed = 0;
    L->resurrected = L->diverged = 0;
    for (uint32_t k = 0; k < L->nkeys; k++) {
        keyinfo *ki = &L->keys[k];
        if (ki->nst == 0)
            continue;
        vres *v = &L->vres[k];
        if (!(ki->healed && !final)) {
            bool all_done = true, same = true, acc = true;
            uint8_t holders = 0;
            for (uint32_t j = 0; j < R; j++) {
                all_done &= v->stat_done[j];
                holders += v->stat_has[j];
                if (j && (v->stat_has[j] != v->stat_has[0] ||
                          (v->stat_has[j] && !dg_eq(v->stat_d[j], v->stat_d[0]))))
                    same = false;
                if (v->stat_done[j] && !state_accepts(ki, v->stat_has[j], v->stat_d[j]))
                    acc = false;
            }
            ki->holders = holders;
            /* Healed: every replica answered, they agree, and what they hold is acceptable. */
            ki->healed =
                all_done && same && acc && (holders == R || (holders == 0 && !must_be_present(ki)));
            if (all_done && !same)
                L->diverged++;
            if (all_done && holders && !may_be_present(ki))
                L->resurrected++;
        }
        if (!ki->healed)
            unhealed++;
        if (final && must_be_present(ki) && !(v->get_done && v->get_present && v->get_ok))
            L->lost++;
        if (final && v->get_done && v->get_present && !v->get_ok && may_be_present(ki) &&
            !must_be_present(ki))
            L->lost++;
    }
    return unhealed;
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot create %s: %s", path, strerror(errno));
    fclose(f);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static bool cond_counters(load *L) {
    for (uint32_t i = 0; i < L->cf->nnodes; i++)
        if (!L->ctr[i].answered_final)
            return false;
    return true;
}

int main(int argc, char **argv) {
    load *L = calloc(1, sizeof *L);
    if (!L)
        die("out of memory");
    const char *conf = NULL, *ready = NULL, *resume = NULL;
    L->scenario = "unnamed";
    L->calls = 10000;
    L->nkeys = 3000;
    L->inflight_max = 32;
    L->neps = 1;
    L->rng = 1;
    L->large_permille = 15;
    L->large_max = AQ_NODE_CHUNK_MAX;
    uint64_t heal_s = 90, attempt_ms = 0;
    static const struct option lo[] = {{"seed", 1, 0, 'S'},
                                       {"large-permille", 1, 0, 'P'},
                                       {"large-max", 1, 0, 'M'},
                                       {"ready", 1, 0, 'R'},
                                       {"resume", 1, 0, 'G'},
                                       {"heal-s", 1, 0, 'H'},
                                       {"attempt-ms", 1, 0, 'A'},
                                       {"endpoints", 1, 0, 'E'},
                                       {"min-s", 1, 0, 'T'},
                                       {"writers", 1, 0, 'W'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:n:k:j:", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf = optarg;
            break;
        case 's':
            L->scenario = optarg;
            break;
        case 'n':
            L->calls = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            L->nkeys = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'j':
            L->inflight_max = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            L->rng = strtoull(optarg, NULL, 10);
            break;
        case 'P':
            L->large_permille = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'M':
            L->large_max = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'R':
            ready = optarg;
            break;
        case 'G':
            resume = optarg;
            break;
        case 'H':
            heal_s = strtoull(optarg, NULL, 10);
            break;
        case 'A':
            attempt_ms = strtoull(optarg, NULL, 10);
            break;
        case 'T':
            L->min_us = strtoull(optarg, NULL, 10) * 1000000u;
            break;
        case 'E':
            L->neps = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'W':
            L->writers = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        default:
            die("usage: see the comment at the top of test/faults/aq_load.c");
        }
    }
    if (!conf || L->nkeys == 0 || L->inflight_max == 0 || L->neps == 0 || L->neps > 1024 ||
        L->large_max < 65536 || L->large_max > AQ_NODE_CHUNK_MAX || L->large_permille > 150)
        die("bad arguments (need -c CONF; keys, inflight > 0; 64 KiB <= large-max <= 4 MiB)");
    char err[512];
    if (aq_node_config_load_file(conf, &L->cf, err, sizeof err) != 0)
        die("%s", err);
    if (L->cf->nnodes > MAX_NODES)
        die("at most %d nodes", MAX_NODES);
    L->attempt_us = (attempt_ms ? attempt_ms : L->cf->call_timeout_ms + 5000) * 1000;
    L->eps = calloc(L->neps, sizeof *L->eps);
    L->keys = calloc(L->nkeys, sizeof *L->keys);
    L->ops = calloc(L->inflight_max, sizeof *L->ops);
    L->vres = calloc(L->nkeys, sizeof *L->vres);
    if (!L->eps || !L->keys || !L->ops || !L->vres)
        die("out of memory");
    for (uint32_t k = 0; k < L->nkeys; k++) {
        L->keys[k].nst = 1; /* absent: st[0] is zero */
        if (L->writers) {
            uint32_t idx;
            hist_add(&L->keys[k], 0, L->keys[k].st[0], &idx);
            L->keys[k].h[idx].acked = true;
        }
    }
    if (uv_loop_init(&L->loop) != 0)
        die("uv_loop_init failed");
    aq_rpc_config rc;
    aq_rpc_config_init(&rc);
    rc.cluster_id = aq_rpc_cluster_id(L->cf->name);
    aq_rpc_uv_opts uo;
    memset(&uo, 0, sizeof uo);
    uo.bind = "0.0.0.0:0";
    uo.udp_rcvbuf = 8 << 20;
    for (uint32_t x = 0; x < L->neps; x++) {
        endpoint *ep = &L->eps[x];
        int e = aq_rpc_uv_open(&L->loop, &rc, &uo, &ep->uv);
        if (e)
            die("cannot open client endpoint %u: %s", x, aq_strerror(e));
        ep->rpc = aq_rpc_uv_core(ep->uv);
        for (uint16_t m = AQ_M_PUT; m <= AQ_M_OFFER; m++)
            aq_rpc_method_name(ep->rpc, m, aq_node_method_name(m));
        for (uint32_t i = 0; i < L->cf->nnodes; i++) {
            aq_rpc_addr a;
            if (aq_rpc_addr_parse(L->cf->nodes[i].address, &a) != 0)
                die("bad address %s", L->cf->nodes[i].address);
            ep->peers[i] = aq_rpc_peer_get(ep->rpc, &a);
            if (!ep->peers[i])
                die("out of memory");
            aq_rpc_peer_set_name(ep->peers[i], L->cf->nodes[i].name);
        }
    }
    for (uint32_t i = 0; i < L->cf->nnodes; i++)
        L->seeds[i] = aq_place_seed(L->cf->nodes[i].name);
    uv_timer_init(&L->loop, &L->tick);
    L->tick.data = L;
    uv_timer_start(&L->tick, tick_cb, 0, 250);

    uint64_t t0 = now_us();
    L->t0_us = t0;
    uv_timer_init(&L->loop, &L->pace);
    if (L->min_us)
        uv_timer_start(&L->pace, pace_cb, 10, 10);
    run_until(L, cond_load_done);
    uv_timer_stop(&L->pace);
    double load_s = (double)(now_us() - t0) / 1e6;
    if (ready)
        touch(ready);
    if (resume) {
        uint64_t until = now_us() + 180000000u;
        while (!exists(resume)) {
            if (now_us() > until)
                die("no %s within 180 s", resume);
            sleep_loop(L, 100);
        }
    }
    /* Counters: a fresh answer from every node, after the faults have stopped. */
    for (uint32_t i = 0; i < L->cf->nnodes; i++)
        L->ctr[i].answered_final = false;
    uint64_t until = now_us() + 60000000u;
    while (!cond_counters(L)) {
        if (now_us() > until)
            die("not every node answered STATUS within 60 s after the faults stopped");
        uv_run(&L->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&L->tick);
    uint64_t handled = 0;
    for (uint32_t i = 0; i < L->cf->nnodes; i++)
        handled += L->ctr[i].banked + L->ctr[i].handled;
    uint64_t att_replied = L->att_replied, att_unclear = L->att_unclear;
    uint64_t bound = att_replied + att_unclear;
    uint64_t duplicated = handled > bound ? handled - bound : 0;

    if (L->writers)
        for (uint32_t k = 0; k < L->nkeys; k++)
            hist_final_states(L, &L->keys[k]);
    uv_timer_start(&L->tick, tick_cb, 250, 250);
    uint64_t h0 = now_us();
    uint32_t unhealed = verify_pass(L, false);
    while (unhealed && now_us() - h0 < heal_s * 1000000u) {
        sleep_loop(L, 1000);
        unhealed = verify_pass(L, false);
    }
    double heal_wait = (double)(now_us() - h0) / 1e6;
    unhealed = verify_pass(L, true);
    uv_timer_stop(&L->tick);

    uint32_t stored = 0, retired = 0;
    for (uint32_t k = 0; k < L->nkeys; k++) {
        stored += must_be_present(&L->keys[k]);
        retired += L->keys[k].retired;
    }
    printf("faults: %s calls=%" PRIu64 " ok=%" PRIu64 " failed_clearly=%" PRIu64 " lost=%" PRIu64
           " duplicated=%" PRIu64 " healed=%s\n",
           L->scenario, L->started, L->ok, L->failed, L->lost, duplicated, unhealed ? "no" : "yes");
    printf("faults-detail: %s load_s=%.1f heal_wait_s=%.1f keys_stored=%" PRIu32
           " keys_retired=%" PRIu32 " unhealed=%" PRIu32 " diverged=%" PRIu64
           " resurrected=%" PRIu64 " partial_writes=%" PRIu64 " wrong_reads_during_faults=%" PRIu64
           " attempts_replied=%" PRIu64 " attempts_unclear=%" PRIu64 " handled_client=%" PRIu64
           " put_MiB=%.1f got_MiB=%.1f\n",
           L->scenario, load_s, heal_wait, stored, retired, unhealed, L->diverged, L->resurrected,
           L->partial_writes, L->wrong_reads, att_replied, att_unclear, handled,
           (double)L->bytes_put / 1048576.0, (double)L->bytes_got / 1048576.0);
    for (uint32_t i = 0; i < L->nerrs; i++)
        printf("faults-error: %s %s\n", L->scenario, L->errs[i]);
    if (unhealed) {
        uint32_t shown = 0;
        for (uint32_t k = 0; k < L->nkeys && shown < 5; k++) {
            keyinfo *ki = &L->keys[k];
            if (ki->nst && !ki->healed) {
                char kb[32];
                key_name(k, kb, sizeof kb);
                char who[256] = "";
                size_t off = 0;
                vres *v = &L->vres[k];
                for (uint32_t j = 0; j < L->cf->replicas && off < sizeof who; j++) {
                    char ob[32];
                    key_name(k, ob, sizeof ob);
                    uint32_t order[MAX_NODES];
                    aq_place_order(L->seeds, L->cf->nnodes, ob, strlen(ob), order);
                    const char *what = !v->stat_done[j]                        ? "no-answer"
                                       : !v->stat_has[j] && may_be_present(ki) ? "missing"
                                       : !v->stat_has[j]                       ? "absent"
                                       : state_accepts(ki, true, v->stat_d[j]) ? "expected"
                                                                               : "other-value";
                    off += (size_t)snprintf(who + off, sizeof who - off, " %s=%s",
                                            L->cf->nodes[order[j]].name, what);
                }
                printf("faults-unhealed: %s %s holders=%u states=%u must_be_present=%d "
                       "last_write_partial=%d%s\n",
                       L->scenario, kb, ki->holders, ki->nst, must_be_present(ki), ki->last_partial,
                       who);
                shown++;
            }
        }
    }
    fflush(stdout);
    /* A concurrent run must read right throughout, not only at the end. */
    bool pass =
        L->lost == 0 && duplicated == 0 && unhealed == 0 && (!L->writers || L->wrong_reads == 0);
    uv_close((uv_handle_t *)&L->tick, NULL);
    uv_close((uv_handle_t *)&L->pace, NULL);
    for (uint32_t x = 0; x < L->neps; x++)
        aq_rpc_uv_close(L->eps[x].uv, NULL, NULL);
    uv_run(&L->loop, UV_RUN_DEFAULT);
    uv_loop_close(&L->loop);
    aq_node_config_free(L->cf);
    for (uint32_t k = 0; k < L->nkeys; k++)
        free(L->keys[k].h);
    free(L->keys);
    free(L->ops);
    free(L->vres);
    free(L->eps);
    free(L);
    return pass ? 0 : 1;
}
