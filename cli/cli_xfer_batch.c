/* cli_xfer_batch: many puts and gets in flight at once on ONE endpoint and event loop
 * (cli_xfer.h).
 *
 * Each item is an `op`: a small state machine whose requests are cli_kops with on_done callbacks.
 * A callback only counts the request as ended and, when it was the op's last outstanding one,
 * puts the op on the ready list; the driver (submit, next, poll and close, on the caller's
 * thread) takes ready ops and starts their next step outside any rpc callback, so no callback
 * ever waits. The steps and their checks are those of the single-value entry points
 * (cli_xfer.c), with the same sentences:
 *   put: the previous value's read (STAT with tombstones to every live node, the replicas'
 *        newest preferred: cli_read_*), the PUT to the replicas with its deadline, the write
 *        report (cli_wrep_*) and min_copies;
 *   get: GET to the first live replica and STAT to the other replicas (then STAT to the other
 *        live nodes when no replica holds anything), the newest copy fetched from a holder when
 *        the first reply is not it, every GET verified against its digest, read repair of stale
 *        replicas, then the value written to the item's fd or handed over in a buffer.
 * Rare paths run synchronously from a slow queue, by the driver between loop steps: the restore
 * after a failed or unknown put (cli_prev_restore), and every item that involves more than one
 * chunk (an input larger than a chunk or not a regular file, a previous value or a found value
 * that is a manifest), which goes through the single-value entry point whole. Their waits run
 * the same loop, so the other ops keep progressing meanwhile (their callbacks only mark them
 * ready).
 * Beside the items, the caller's file work (cli_xfer_batch_work: put -r's reads, get -r's writes)
 * runs in the loop's threadpool; its done callbacks run in the loop like the calls' callbacks, on
 * the driver's thread. A get whose item has big_fd writes a value larger than a chunk to the fd it
 * gives instead of a buffer.
 * Invariants: ops in flight never exceed the batch's width (submit drives the loop until there
 * is room); every op ends with exactly one result (every kop ends: the rpc contract); every
 * submitted item is returned by next exactly once, or dropped by close after it finished.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aq_io.h"
#include "aq_xxh.h"
#include "cli.h"
#include "cli_xfer.h"

#define CHUNK     AQ_NODE_CHUNK_MAX
#define HEAD_MAX  AQ_PUT_HEAD_MAX
#define WIDTH_MAX 4096        /* the most values in flight a batch accepts */
#define BYTES_MAX (64u << 20) /* the most bytes of small values known to be in flight at once */

/* A value of at most SMALL_MAX (a get's as the listing sized it) goes with others in one MGET or
 * MPUT. An MGET asks for at most AQ_MGET_REPLY_MAX / 2 bytes of known sizes, so the node's bound
 * seldom leaves one out; an MPUT carries at most MPUT_BYTES of requests. */
#define SMALL_MAX  (64u << 10)
#define MGET_BYTES (AQ_MGET_REPLY_MAX / 2)
#define MPUT_BYTES (1u << 20)

enum { ST_PREV, ST_PUT, ST_READ, ST_REST, ST_FETCH, ST_REPAIR };
enum { SLOW_WHOLE = 1, SLOW_RESTORE = 2 };

typedef struct op {
    struct cli_xfer_batch *b;
    cli_xfer_item *it;
    size_t klen;
    int state;
    int slow;             /* queued for the driver's synchronous path: SLOW_* */
    unsigned outstanding; /* requests started and not yet ended (+1 while starting a step) */
    cli_read r;           /* the key's copies as the nodes answered */
    /* This step's requests and the node each asks: room for one per configured node, in the same
     * allocation as the op (op_new). */
    cli_kop **ks;
    uint32_t *ks_node;
    size_t nks;
    /* put */
    uint8_t *mem; /* HEAD_MAX + len: the value at mem + HEAD_MAX, until the PUT owns it */
    size_t len;
    cli_kop *put;
    aq_node_digest d;
    cli_prev pv;
    struct op *next; /* the ready list or the slow queue */
    size_t held;     /* bytes of the batch's budget this put holds */
    char what[300];
    cli_kop cands; /* the key's live replicas (cli_read_init); last: see op_new */
} op;

/* Ops waiting to ask a node about their keys in one call for many (MSTAT or MGET), per node. */
typedef struct keyq {
    struct op ***q;
    size_t *n, *cap;
    bool *unsupported; /* answered with AQ_ENOMETHOD (an older build) */
} keyq;

struct cli_xfer_batch {
    cli *parent;
    cli c; /* the batch's own endpoint and loop */
    bool opened;
    size_t width;
    size_t pending; /* submitted, not yet returned by next */
    size_t running; /* ops not yet finished */
    size_t held;    /* bytes the small items in flight hold, as far as known (BYTES_MAX) */
    size_t works;   /* cli_xfer_work queued whose done has not run */
    cli_xfer_item *d_head, *d_tail;
    op *ready_head, *ready_tail;
    op *slow_head, *slow_tail;
    /* STATs, and small values' GETs and PUTs, waiting to go, sent as MSTATs, MGETs and MPUTs when
     * the driver is about to wait; groups whose call ended, freed by the driver. */
    keyq stats, gets, puts;
    struct key_group *groups_done;
    bool *missing; /* per node: missed a copy of some put that was stored */
};

/* After a put that was stored (with at least --min-copies): the replicas that missed it join
 * b->missing. */
static void missing_add(cli_xfer_batch *b, const cli *c) {
    for (size_t i = 0; i < c->conf->nnodes; i++)
        b->missing[i] |= c->wrep_missing[i];
}

/* One MSTAT or MGET call: the ops whose key it asks, in order. */
typedef struct key_group {
    cli_kop k; /* first: the callback gets k */
    struct cli_xfer_batch *b;
    uint32_t node;
    size_t n;
    struct key_group *next;
    op *ops[];
} key_group;

/* A zeroed op for b, with room for a request per node after it. Only the fields are zeroed: the
 * candidate array of cands and the request arrays are written before they are read, and zeroing
 * them (kilobytes per value) was most of a small value's client cost. */
static op *op_new(cli_xfer_batch *b) {
    size_t nn = b->c.conf->nnodes;
    op *o = malloc(sizeof *o + nn * (sizeof *o->ks + sizeof *o->ks_node));
    if (!o)
        return NULL;
    memset(o, 0, offsetof(op, cands));
    cli_kop_clear(&o->cands);
    o->ks = (cli_kop **)(o + 1);
    o->ks_node = (uint32_t *)(o->ks + nn);
    return o;
}

static void q_push(op **head, op **tail, op *o) {
    o->next = NULL;
    if (*tail)
        (*tail)->next = o;
    else
        *head = o;
    *tail = o;
}

static op *q_pop(op **head, op **tail) {
    op *o = *head;
    if (o) {
        *head = o->next;
        if (!*head)
            *tail = NULL;
        o->next = NULL;
    }
    return o;
}

static aq_node_digest digest_of(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits(p, n);
    aq_node_digest d = {h.high64, h.low64};
    return d;
}

/* Points the batch's cli at o: its failures go to o's item, named by o's what. */
static cli *op_ctx(op *o) {
    cli *c = &o->b->c;
    c->what = o->what;
    c->fail_err = 0;
    c->fail_sink = o->it->msg;
    c->fail_sink_cap = sizeof o->it->msg;
    return c;
}

static void ops_free_kops(op *o) {
    for (size_t j = 0; j < o->nks; j++)
        cli_kop_free(o->ks[j]);
    o->nks = 0;
}

/* it joins the done list, where next hands it out. */
static void done_push(cli_xfer_batch *b, cli_xfer_item *it) {
    it->batch_next = NULL;
    if (b->d_tail)
        b->d_tail->batch_next = it;
    else
        b->d_head = it;
    b->d_tail = it;
}

/* The item's result; o is freed and the item joins the done list. */
static void op_finish(op *o, int rc) {
    cli_xfer_batch *b = o->b;
    cli_xfer_item *it = o->it;
    cli *c = &b->c;
    it->rc = rc;
    it->err = rc ? (c->fail_err ? c->fail_err : cli_exit_err(rc)) : 0;
    if (rc && !it->msg[0])
        snprintf(it->msg, sizeof it->msg, "%s: failed", o->what);
    ops_free_kops(o);
    cli_kop_free(o->put);
    cli_read_free(&o->r);
    cli_prev_free(&o->pv);
    free(o->mem);
    b->held -= o->held;
    free(o);
    c->what = NULL; /* o's name is gone; the next op sets its own */
    c->fail_sink = NULL;
    b->running--;
    done_push(b, it);
}

static void op_release(op *o) {
    if (--o->outstanding == 0)
        q_push(&o->b->ready_head, &o->b->ready_tail, o);
}

static void op_kop_done(cli_kop *k) {
    op_release(k->ud);
}

/* Starts k for o; its end (at once or from the loop) counts down o's outstanding requests. */
static void op_send(op *o, cli_kop *k) {
    k->on_done = op_kop_done;
    k->ud = o;
    o->outstanding++;
    if (cli_kop_start(k) != 0)
        o->outstanding--; /* no candidate: k ended at once, without a callback */
}

/* Moves o to state with the one request k (held while it starts, so o cannot become ready before
 * it is sent). */
static void op_step(op *o, int state, cli_kop *k) {
    o->state = state;
    o->outstanding++;
    op_send(o, k);
    op_release(o);
}

static void op_slow(op *o, int kind) {
    o->slow = kind;
    q_push(&o->b->slow_head, &o->b->slow_tail, o);
}

/* A STAT or GET of o's key to node alone, asking for removal markers too (cli_read.c's reads). */
static cli_kop *read_kop(op *o, uint16_t method, uint32_t node) {
    cli *c = &o->b->c;
    cli_kop *k = cli_kop_new(c);
    if (k && cli_read_kop(c, k, method, o->it->key, o->klen, node) != 0) {
        cli_kop_free(k);
        k = NULL;
    }
    return k;
}

/* Records one node's answer for o's key as cli_read_note does for a STAT: a copy, or why none. */
static void note_stat(op *o, uint32_t node, int err, const char *why, uint8_t kind, uint64_t size,
                      aq_node_digest d, uint64_t version) {
    cli_copy *cp = &o->r.copies[node];
    cp->asked = true;
    cp->err = err;
    if (err) {
        if (err != AQ_ENOTFOUND && !o->r.failure[0]) {
            snprintf(o->r.failure, sizeof o->r.failure, "%s", why);
            o->r.failure_err = err;
        }
        return;
    }
    cp->kind = kind;
    cp->size = size;
    cp->digest = d;
    cp->version = version;
    cp->found = true;
}

static bool stat_want(op *o, uint32_t node);

/* The end of an MSTAT: each op gets its key's answer (or the call's failure) and one fewer
 * request outstanding. Only state moves here; the group is freed by the driver. */
static void stat_group_done(cli_kop *k) {
    key_group *g = (key_group *)k;
    cli *c = k->c;
    const aq_node_config_node *cn = &c->conf->nodes[g->node];
    aq_rd r;
    uint32_t count = 0;
    bool whole = k->err != 0;
    if (k->err == AQ_ENOMETHOD) {
        /* A node of an older build: its keys are asked again one STAT each (flush_stats), now
         * and for the rest of the batch. Each op stays counted out until that answer. */
        g->b->stats.unsupported[g->node] = true;
        for (size_t i = 0; i < g->n; i++) {
            op *o = g->ops[i];
            if (!stat_want(o, g->node))
                note_stat(o, g->node, AQ_ENOMEM, "out of memory", 0, 0, (aq_node_digest){0, 0}, 0);
            op_release(o);
        }
        g->next = g->b->groups_done;
        g->b->groups_done = g;
        return;
    }
    char bad[160];
    snprintf(bad, sizeof bad, "%s (%s) sent a malformed MSTAT reply", cn->name, cn->address);
    if (!whole && (aq_node_mstat_rep_begin(&r, k->rep, k->replen, &count) != 0 || count != g->n))
        count = 0;
    for (size_t i = 0; i < g->n; i++) {
        op *o = g->ops[i];
        int err = whole ? k->err : AQ_EPROTO;
        uint8_t kind = 0;
        uint64_t size = 0, version = 0;
        aq_node_digest d = {0, 0};
        const char *why = whole ? k->msg : bad;
        if (!whole && i < count &&
            aq_node_mstat_rep_next(&r, &err, &kind, &size, &d, &version) != 0) {
            err = AQ_EPROTO;
            count = 0; /* the rest cannot be read either */
        }
        char other[200];
        if (!whole && err && err != AQ_ENOTFOUND && err != AQ_EPROTO) {
            snprintf(other, sizeof other, "%s (%s) could not read the key: %s", cn->name,
                     cn->address, aq_strerror(err));
            why = other;
        }
        if (err == AQ_EPROTO && !whole) {
            /* As a malformed STAT reply: no copy, and the sentence names the node. */
            o->r.copies[g->node].asked = true;
            o->r.copies[g->node].err = AQ_EPROTO;
            if (!o->r.failure[0]) {
                snprintf(o->r.failure, sizeof o->r.failure, "%s", bad);
                o->r.failure_err = AQ_EPROTO;
            }
        } else {
            note_stat(o, g->node, err, why, kind, size, d, version);
        }
        op_release(o);
    }
    g->next = g->b->groups_done;
    g->b->groups_done = g;
}

/* Adds o to node's queue in q, holding one of o's requests until its group answers. */
static bool keyq_push(keyq *q, uint32_t node, op *o) {
    if (q->n[node] == q->cap[node]) {
        size_t cap = q->cap[node] ? 2 * q->cap[node] : 64;
        op **nq = realloc(q->q[node], cap * sizeof *nq);
        if (!nq)
            return false;
        q->q[node] = nq;
        q->cap[node] = cap;
    }
    q->q[node][q->n[node]++] = o;
    o->outstanding++;
    return true;
}

static int keyq_init(keyq *q, size_t nn) {
    q->q = calloc(nn, sizeof *q->q);
    q->n = calloc(nn, sizeof *q->n);
    q->cap = calloc(nn, sizeof *q->cap);
    q->unsupported = calloc(nn, sizeof *q->unsupported);
    return q->q && q->n && q->cap && q->unsupported ? 0 : AQ_ENOMEM;
}

static void keyq_free(keyq *q, size_t nn) {
    for (size_t i = 0; q->q && i < nn; i++)
        free(q->q[i]);
    free(q->q);
    free(q->n);
    free(q->cap);
    free(q->unsupported);
}

/* Sends the request in w (taken) as method, a call for the many ops[0..n) to node, ending
 * through on_done; NULL when out of memory (nothing sent). */
static key_group *group_start(cli_xfer_batch *b, uint32_t node, op **ops, size_t n, uint16_t method,
                              void (*on_done)(cli_kop *k), aq_wr *w) {
    key_group *g = malloc(sizeof *g + n * sizeof *g->ops);
    if (!g || !w->ok) {
        free(g);
        aq_wr_free(w);
        return NULL;
    }
    cli_kop_clear(&g->k);
    g->next = NULL;
    g->b = b;
    g->node = node;
    g->n = n;
    memcpy(g->ops, ops, n * sizeof *ops);
    g->k.c = &b->c;
    g->k.method = method;
    g->k.req = w->p;
    g->k.reqlen = w->len;
    g->k.lend_ok = true; /* an MPUT's values are not copied again by rpc */
    g->k.cand[0] = node;
    g->k.ncand = 1;
    g->k.on_done = on_done;
    g->k.ud = g;
    cli_kop_start(&g->k); /* one candidate: it ends through on_done */
    return g;
}

/* method (MSTAT or MGET) for the keys of ops[0..n) to node (group_start). */
static key_group *group_send(cli_xfer_batch *b, uint32_t node, op **ops, size_t n, uint16_t method,
                             void (*on_done)(cli_kop *k)) {
    aq_wr w;
    aq_wr_init_cap(&w, 3 + n * (1 + AQ_NODE_KEY_MAX));
    aq_node_mstat_req_head(&w, AQ_READ_TOMBSTONES, (uint16_t)n);
    for (size_t i = 0; i < n; i++)
        aq_node_mstat_req_key(&w, ops[i]->it->key, ops[i]->klen);
    return group_start(b, node, ops, n, method, on_done, &w);
}

/* What node answered for k inside a call for many, as rpc gives it for a call of k's own. */
static aq_rpc_result carried(cli_xfer_batch *b, const cli_kop *k, uint32_t node, int err,
                             int status, const uint8_t *data, size_t len) {
    aq_rpc_result r = {.err = err,
                       .status = status,
                       .data = data,
                       .len = len,
                       .peer = b->c.peers[node],
                       .method = k->method,
                       .attempts = 1,
                       .e2e_from = len}; /* the call for many checksummed every byte */
    return r;
}

/* k of o, carried by a call for many, ends with r (cli_kop_outcome); its end counts down o's
 * requests like a call of its own. */
static void op_carry(op *o, cli_kop *k, const aq_rpc_result *r, uint8_t *rep, size_t replen,
                     const char *why) {
    k->on_done = op_kop_done;
    k->ud = o;
    o->outstanding++;
    cli_kop_outcome(k, r, rep, replen, why);
}

/* A malloc'd copy of n bytes (at least one allocated), or NULL. */
static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* Queues a STAT of o's key to node, sent with others in one MSTAT (flush_stats). */
static bool stat_want(op *o, uint32_t node) {
    return keyq_push(&o->b->stats, node, o);
}

/* Sends the queued STATs: one MSTAT per node and AQ_MSTAT_MAX keys. */
static void flush_stats(cli_xfer_batch *b) {
    keyq *q = &b->stats;
    for (uint32_t node = 0; node < b->c.conf->nnodes; node++) {
        if (q->unsupported[node]) {
            /* A node without MSTAT: one STAT per key, read like any single read. */
            for (size_t i = 0; i < q->n[node]; i++) {
                op *o = q->q[node][i];
                cli_kop *k = read_kop(o, AQ_M_STAT, node);
                if (!k) {
                    note_stat(o, node, AQ_ENOMEM, "out of memory", 0, 0, (aq_node_digest){0, 0}, 0);
                } else {
                    o->ks[o->nks] = k;
                    o->ks_node[o->nks++] = node;
                    op_send(o, k);
                }
                op_release(o); /* the queue's count; the STAT holds its own */
            }
            q->n[node] = 0;
            continue;
        }
        size_t done = 0, total = q->n[node];
        while (done < total) {
            size_t n = total - done < AQ_MSTAT_MAX ? total - done : AQ_MSTAT_MAX;
            op **ops = q->q[node] + done;
            if (!group_send(b, node, ops, n, AQ_M_MSTAT, stat_group_done)) {
                for (size_t i = 0; i < n; i++) {
                    note_stat(ops[i], node, AQ_ENOMEM, "out of memory", 0, 0,
                              (aq_node_digest){0, 0}, 0);
                    op_release(ops[i]);
                }
            }
            done += n;
        }
        q->n[node] = 0;
    }
}

/* The start of an MGET's or MPUT's end: a node that answered AQ_ENOMETHOD (an older build) is
 * sent calls of their own for the rest of the batch (q); true when the reply can be read, one
 * answer per op, from r on. */
static bool group_reply(key_group *g, keyq *q,
                        int (*begin)(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count),
                        aq_rd *r) {
    if (g->k.err == AQ_ENOMETHOD)
        q->unsupported[g->node] = true;
    uint32_t count = 0;
    return !g->k.err && begin(r, g->k.rep, g->k.replen, &count) == 0 && count == g->n;
}

/* The end of an MGET: each op's GET (r.data) ends with its key's answer, read as the answer to
 * a GET of its own; a key the node left out (AQ_ETOOBIG), an answer that cannot be read, or a node
 * of an older build gets a GET of its own. A failed call is each GET's failure. */
static void get_group_done(cli_kop *gk) {
    key_group *g = (key_group *)gk;
    cli_xfer_batch *b = g->b;
    aq_rd r;
    bool readable = group_reply(g, &b->gets, aq_node_mget_rep_begin, &r);
    for (size_t i = 0; i < g->n; i++) {
        op *o = g->ops[i];
        cli_kop *k = o->r.data;
        int err = AQ_EPROTO;
        const uint8_t *rep = NULL;
        size_t replen = 0;
        if (readable && aq_node_mget_rep_next(&r, &err, &rep, &replen) != 0)
            readable = false; /* nor can the answers after it be found */
        if (gk->err && gk->err != AQ_ENOMETHOD) {
            aq_rpc_result res = carried(b, k, g->node, gk->err, 0, NULL, 0);
            op_carry(o, k, &res, NULL, 0, gk->msg);
        } else if (readable && err != AQ_ETOOBIG) {
            aq_rpc_result res = carried(b, k, g->node, 0, err, rep, replen);
            op_carry(o, k, &res, err ? NULL : dup_bytes(rep, replen), replen, NULL);
        } else {
            op_send(o, k);
        }
        op_release(o); /* the queue's count */
    }
    g->next = b->groups_done;
    b->groups_done = g;
}

/* Queues o's GET (its r.data) to node for an MGET (flush_values) when the listing said its value
 * is small. */
static bool get_want(op *o, uint32_t node) {
    cli_xfer_batch *b = o->b;
    if (b->gets.unsupported[node] || o->it->size == 0 || o->it->size > SMALL_MAX)
        return false;
    return keyq_push(&b->gets, node, o);
}

/* The end of an MPUT: each op's PUT ends with its item's answer, read as the answer to a PUT of
 * its own (the write report, or the failure, and the next candidate when that allows one); a
 * failed call is each PUT's failure, an unreadable reply each PUT's AQ_EPROTO (its outcome unknown,
 * as a call of its own whose reply was lost). A node of an older build gets a PUT of its own. */
static void put_group_done(cli_kop *gk) {
    key_group *g = (key_group *)gk;
    cli_xfer_batch *b = g->b;
    const aq_node_config_node *cn = &b->c.conf->nodes[g->node];
    aq_rd r;
    bool readable = group_reply(g, &b->puts, aq_node_mput_rep_begin, &r);
    char bad[200];
    snprintf(bad, sizeof bad, "%s (%s) sent a malformed MPUT reply", cn->name, cn->address);
    for (size_t i = 0; i < g->n; i++) {
        op *o = g->ops[i];
        cli_kop *k = o->put;
        int status = AQ_EPROTO;
        const uint8_t *body = NULL;
        size_t blen = 0;
        if (readable && aq_node_mput_rep_next(&r, &status, &body, &blen) != 0)
            readable = false;
        if (gk->err == AQ_ENOMETHOD) {
            op_send(o, k); /* it never ran there */
        } else if (gk->err) {
            aq_rpc_result res = carried(b, k, g->node, gk->err, 0, NULL, 0);
            op_carry(o, k, &res, NULL, 0, gk->msg);
        } else if (!readable) {
            aq_rpc_result res = carried(b, k, g->node, 0, AQ_EPROTO, NULL, 0);
            op_carry(o, k, &res, NULL, 0, bad);
        } else {
            aq_rpc_result res = carried(b, k, g->node, 0, status, body, blen);
            op_carry(o, k, &res, status ? NULL : dup_bytes(body, blen), blen, NULL);
        }
        op_release(o); /* the queue's count */
    }
    g->next = b->groups_done;
    b->groups_done = g;
}

/* Queues o's PUT to its first candidate for an MPUT (flush_values) when its value is small. */
static bool put_want(op *o) {
    cli_xfer_batch *b = o->b;
    cli_kop *k = o->put;
    if (!k->ncand || o->len > SMALL_MAX || b->puts.unsupported[k->cand[0]])
        return false;
    return keyq_push(&b->puts, k->cand[0], o);
}

/* An MPUT of the PUTs of ops[0..n) (bytes of requests) to node, each request stamped with its
 * deadline as its own send would be (group_start). */
static key_group *mput_send(cli_xfer_batch *b, uint32_t node, op **ops, size_t n, size_t bytes) {
    aq_wr w;
    aq_wr_init_cap(&w, 2 + n * 4 + bytes);
    aq_node_mput_req_head(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        cli_kop *k = ops[i]->put;
        if (cli_kop_stamp(k, node) != 0)
            w.ok = false;
        aq_node_mput_req_item(&w, k->req, k->reqlen);
    }
    return group_start(b, node, ops, n, AQ_M_MPUT, put_group_done, &w);
}

/* Sends the queued small GETs (put false) or PUTs as one MGET or MPUT per node, each of at most
 * AQ_MSTAT_MAX values and MGET_BYTES of values (MPUT_BYTES of requests). A node of an older build,
 * or no memory for the call, gets a call of its own per value. */
static void flush_values(cli_xfer_batch *b, bool put) {
    keyq *q = put ? &b->puts : &b->gets;
    size_t budget = put ? MPUT_BYTES : MGET_BYTES;
    for (uint32_t node = 0; node < b->c.conf->nnodes; node++) {
        size_t done = 0, total = q->n[node];
        while (done < total) {
            op **ops = q->q[node] + done;
            size_t n = 0, bytes = 0;
            while (done + n < total && n < AQ_MSTAT_MAX) {
                size_t size = put ? ops[n]->put->reqlen : ops[n]->it->size;
                if (n && bytes + size > budget)
                    break;
                bytes += size;
                n++;
            }
            key_group *g = NULL;
            if (!q->unsupported[node])
                g = put ? mput_send(b, node, ops, n, bytes)
                        : group_send(b, node, ops, n, AQ_M_MGET, get_group_done);
            for (size_t i = 0; !g && i < n; i++) {
                op_send(ops[i], put ? ops[i]->put : ops[i]->r.data);
                op_release(ops[i]);
            }
            done += n;
        }
        q->n[node] = 0;
    }
}

static void groups_free(cli_xfer_batch *b) {
    while (b->groups_done) {
        key_group *g = b->groups_done;
        b->groups_done = g->next;
        cli_kop_reset(&g->k);
        free(g);
    }
}

/* Asks each of nodes[0..n) for o's key: GET to the first with data (it becomes r.data, marked by
 * a NULL in ks), STAT to the others, queued for an MSTAT (a STAT of its own when out of memory).
 * False when out of memory before anything was asked. */
static bool send_reads(op *o, const uint32_t *nodes, size_t n, bool data) {
    o->outstanding++;
    for (size_t j = 0; j < n; j++) {
        bool get = data && j == 0;
        if (!get && stat_want(o, nodes[j]))
            continue;
        cli_kop *k = read_kop(o, get ? AQ_M_GET : AQ_M_STAT, nodes[j]);
        if (!k) {
            if (j == 0) {
                o->outstanding--;
                return false;
            }
            break; /* the nodes asked answer; the others count as not asked */
        }
        if (get) {
            cli_kop_free(o->r.data);
            o->r.data = k;
        }
        o->ks[o->nks] = get ? NULL : k;
        o->ks_node[o->nks++] = nodes[j];
        if (!get || !get_want(o, nodes[j]))
            op_send(o, k);
    }
    op_release(o);
    return true;
}

/* Records the answers of the last reads and frees their requests (r.data is kept). */
static void note_reads(op *o) {
    for (size_t j = 0; j < o->nks; j++)
        cli_read_note(&o->r, o->ks_node[j], o->ks[j] ? o->ks[j] : o->r.data);
    ops_free_kops(o);
}

/* ---- put ---- */

static void put_start(op *o) {
    cli *c = op_ctx(o);
    o->state = ST_PREV;
    if (cli_read_init(c, o->it->key, o->klen, &o->r, &o->cands) != 0) {
        op_finish(o, cli_fail(c, CLI_ERROR, "out of memory"));
        return;
    }
    /* One round: the replicas, then the other live nodes (a new key would need both). */
    cli_kop all;
    cli_kop_clear(&all);
    cli_candidates(c, o->it->key, o->klen, true, &all);
    uint32_t order[AQ_NODE_CONFIG_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < o->cands.ncand; i++)
        order[n++] = o->cands.cand[i];
    for (size_t i = 0; i < all.ncand; i++)
        if (!o->r.copies[all.cand[i]].replica)
            order[n++] = all.cand[i];
    if (!send_reads(o, order, n, false))
        op_finish(o, cli_fail(c, CLI_ERROR, "out of memory"));
}

/* The previous value is known (or could not be read, like cli_prev_read: the put goes on); the
 * PUT to the replicas. */
static void put_prev_read(op *o) {
    cli *c = op_ctx(o);
    note_reads(o);
    cli_read_pick(&o->r, true);
    if (o->r.best < 0)
        cli_read_pick(&o->r, false);
    int err = cli_read_outcome(&o->r, &o->cands);
    memset(&o->pv, 0, sizeof o->pv);
    if (err == 0) {
        const cli_copy *b = &o->r.copies[o->r.best];
        if (b->kind == AQ_KIND_MANIFEST) {
            /* A large previous value: its manifest and parts are the single-value path's. */
            cli_read_free(&o->r);
            op_slow(o, SLOW_WHOLE);
            return;
        }
        o->pv.known = o->pv.live = true;
        o->pv.kind = b->kind;
        o->pv.version = b->version;
        o->pv.digest = b->digest;
    } else if (err == AQ_ENOTFOUND) {
        o->pv.known = true;
    }
    cli_read_free(&o->r);
    cli_kop *k = cli_kop_new(c);
    if (!k) {
        op_finish(o, cli_fail(c, CLI_ERROR, "out of memory"));
        return;
    }
    uint8_t *mem = o->mem;
    o->mem = NULL; /* the request owns it now */
    o->d = digest_of(mem + HEAD_MAX, o->len);
    uint8_t head[HEAD_MAX];
    aq_wr w = {head, 0, sizeof head, true};
    aq_node_put_req_head(&w, 0, AQ_KIND_VALUE, o->it->key, o->klen, o->d);
    memcpy(mem + HEAD_MAX - w.len, head, w.len);
    k->req = mem + HEAD_MAX - w.len;
    k->reqlen = w.len + o->len;
    k->req_mem = mem;
    k->lend_ok = true;
    k->deadline_off = aq_node_put_req_deadline_off(o->klen);
    k->method = AQ_M_PUT;
    cli_candidates(c, o->it->key, o->klen, false, k);
    o->put = k;
    o->state = ST_PUT;
    if (!put_want(o))
        op_step(o, ST_PUT, k);
}

static void put_done(op *o) {
    cli *c = op_ctx(o);
    cli_kop *k = o->put;
    cli_wrep_reset(c);
    /* A reply that cannot be read leaves the outcome unknown: undone like a failure. */
    bool malformed = !k->err && cli_wrep_add(c, k, o->it->key, o->klen) != 0;
    if (k->err == AQ_EUNAVAIL && k->ncand == 0) {
        op_finish(o, cli_kop_fail(c, k)); /* sent nowhere */
    } else if (k->err || malformed) {
        op_slow(o, SLOW_RESTORE);
    } else {
        o->it->copies = c->wrep_copies;
        o->it->wanted = c->wrep_wanted;
        o->it->bytes = o->len;
        int rc = cli_wrep_check(c, "stored");
        if (!rc)
            missing_add(o->b, c);
        op_finish(o, rc);
    }
}

/* The failed put's undo, as cli_xfer.c's put_one does it (synchronous: the driver's). */
static void put_restore(op *o) {
    cli *c = op_ctx(o);
    cli_kop *k = o->put;
    char note[400];
    (void)cli_prev_restore(c, o->it->key, &o->pv, AQ_KIND_VALUE, o->d, note, sizeof note);
    op_ctx(o);
    op_finish(o, cli_prev_fail(c, k, !k->err, note));
}

/* ---- get ---- */

static void get_fail(op *o, int err, const char *failure) {
    cli *c = op_ctx(o);
    /* As cli_fetch reports it: "not found (asked N nodes)", or the sentence naming the node. */
    cli_kop t;
    memset(&t, 0, sizeof t);
    t.err = err;
    t.pos = o->r.asked ? o->r.asked - 1 : 0;
    snprintf(t.msg, sizeof t.msg, "%s", failure);
    op_finish(o, cli_kop_fail(c, &t));
}

static void get_start(op *o) {
    cli *c = op_ctx(o);
    o->state = ST_READ;
    if (cli_read_init(c, o->it->key, o->klen, &o->r, &o->cands) != 0 ||
        !send_reads(o, o->cands.cand, o->cands.ncand, true))
        op_finish(o, cli_fail(c, CLI_ERROR, "out of memory"));
}

static void get_repair(op *o);

/* The answers are in: the newest copy, from the first replica's reply or fetched from a holder. */
static void get_settle(op *o) {
    int err = cli_read_outcome(&o->r, &o->cands);
    if (err) {
        get_fail(o, err, o->r.failure);
        return;
    }
    const cli_copy *b = &o->r.copies[o->r.best];
    const cli_copy *first = o->cands.ncand ? &o->r.copies[o->cands.cand[0]] : NULL;
    if (first && first->found && o->r.data->err == 0 &&
        aq_node_copy_cmp(first->version, first->digest, first->kind, b->version, b->digest,
                         b->kind) == 0) {
        get_repair(o);
        return;
    }
    uint32_t holders[AQ_NODE_CONFIG_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < o->b->c.conf->nnodes; i++) {
        const cli_copy *cp = &o->r.copies[i];
        if (cp->found && aq_node_copy_cmp(cp->version, cp->digest, cp->kind, b->version, b->digest,
                                          b->kind) == 0)
            holders[n++] = (uint32_t)i;
    }
    cli_kop *k = read_kop(o, AQ_M_GET, holders[0]);
    if (!k) {
        get_fail(o, AQ_ENOMEM, "out of memory");
        return;
    }
    memcpy(k->cand, holders, n * sizeof *holders);
    k->ncand = n;
    k->have_want = true;
    k->want = b->digest;
    k->next_on_notfound = true;
    cli_kop_free(o->r.data);
    o->r.data = k;
    op_step(o, ST_FETCH, k);
}

static void get_reads_done(op *o) {
    cli *c = op_ctx(o);
    bool rest = o->state == ST_READ;
    note_reads(o);
    cli_read_pick(&o->r, false);
    if (o->r.best < 0 && rest) {
        /* No replica holds anything: a copy may live where repair placed it. */
        cli_kop all;
        cli_kop_clear(&all);
        cli_candidates(c, o->it->key, o->klen, true, &all);
        uint32_t nodes[AQ_NODE_CONFIG_MAX_NODES];
        size_t n = 0;
        for (size_t i = 0; i < all.ncand; i++)
            if (!o->r.copies[all.cand[i]].asked)
                nodes[n++] = all.cand[i];
        if (n) {
            o->state = ST_REST;
            if (!send_reads(o, nodes, n, false))
                get_fail(o, AQ_ENOMEM, "out of memory");
            return;
        }
    }
    get_settle(o);
}

/* Sends the newest copy to every replica that answered with an older one or none (as
 * cli_read_repair); the value is delivered once they all ended. */
static void get_repair(op *o) {
    cli *c = op_ctx(o);
    o->state = ST_REPAIR;
    o->outstanding++;
    const cli_copy *b = &o->r.copies[o->r.best];
    uint8_t kind;
    aq_node_digest d;
    uint64_t version;
    const uint8_t *v;
    size_t vlen;
    if (o->r.data->rep && cli_read_value(&o->r, &kind, &d, &version, &v, &vlen) == 0 &&
        aq_node_copy_cmp(version, d, kind, b->version, b->digest, b->kind) == 0) {
        for (size_t i = 0; i < c->conf->nnodes; i++) {
            const cli_copy *cp = &o->r.copies[i];
            bool stale = cp->found ? aq_node_copy_cmp(cp->version, cp->digest, cp->kind, b->version,
                                                      b->digest, b->kind) < 0
                                   : cp->err == AQ_ENOTFOUND;
            if (!cp->replica || !cp->asked || !stale)
                continue;
            cli_kop *k = cli_read_write_copy(c, (uint32_t)i, o->it->key, o->klen, b->kind,
                                             b->digest, b->version, v, vlen);
            if (!k)
                break;
            o->ks[o->nks] = k;
            o->ks_node[o->nks++] = (uint32_t)i;
            if (!k->done) {
                k->on_done = op_kop_done;
                k->ud = o;
                o->outstanding++;
            }
        }
    }
    op_release(o);
}

static void get_deliver(op *o) {
    cli *c = op_ctx(o);
    ops_free_kops(o); /* the repairs: their failure does not fail the read */
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    if (aq_node_get_rep_decode(o->r.data->rep, o->r.data->replen, &kind, &d, &v, &vlen) != 0) {
        op_finish(o, cli_fail(c, CLI_ERROR, "%s", aq_strerror(AQ_EPROTO)));
        return;
    }
    if (kind == AQ_KIND_MANIFEST) {
        cli_read_free(&o->r);
        op_slow(o, SLOW_WHOLE);
        return;
    }
    cli_xfer_item *it = o->it;
    if (it->fd >= 0) {
        int err = aq_io_write_all(it->fd, v, vlen);
        if (err) {
            op_finish(o, cli_fail(c, CLI_ERROR, "cannot write %s: %s",
                                  it->name ? it->name : "the output", strerror(-err)));
            return;
        }
    } else if (vlen) {
        /* The reply's own block becomes the value: moved to its start, not copied to a new one. */
        it->out = o->r.data->rep;
        o->r.data->rep = NULL;
        o->r.data->replen = 0;
        memmove(it->out, v, vlen);
        it->outlen = vlen;
    }
    it->bytes = vlen;
    op_finish(o, 0);
}

/* ---- the driver ---- */

static void op_advance(op *o) {
    switch (o->state) {
    case ST_PREV:
        put_prev_read(o);
        break;
    case ST_PUT:
        put_done(o);
        break;
    case ST_READ:
    case ST_REST:
        get_reads_done(o);
        break;
    case ST_FETCH:
        if (o->r.data->err) {
            char failure[sizeof o->r.data->msg];
            snprintf(failure, sizeof failure, "%s", o->r.data->msg);
            get_fail(o, o->r.data->err, failure);
        } else {
            get_repair(o);
        }
        break;
    default:
        get_deliver(o);
        break;
    }
}

/* The whole item through the single-value entry points (the item's value, or the previous one,
 * is larger than one chunk, or the input is not a regular file). */
static void op_whole(op *o) {
    cli *c = op_ctx(o);
    cli_xfer_item *it = o->it;
    int rc;
    if (!it->get) {
        rc = o->mem ? cli_xfer_put_buf(c, it->key, o->mem + HEAD_MAX, o->len)
             : it->fd >= 0
                 ? cli_xfer_put_fd(c, it->key, it->fd, it->name ? it->name : "the input", 0)
                 : cli_xfer_put_buf(c, it->key, it->buf, it->len);
        it->copies = c->wrep_copies;
        it->wanted = c->wrep_wanted;
        if (!rc)
            rc = cli_wrep_check(c, "stored");
        if (!rc)
            missing_add(o->b, c);
    } else {
        if (it->fd < 0 && it->big_fd) {
            int fd = it->big_fd(it);
            if (fd < 0) {
                op_finish(o, cli_fail(c, CLI_ERROR, "cannot create %s: %s",
                                      it->name ? it->name : "the output", strerror(-fd)));
                return;
            }
            it->fd = fd;
        }
        rc = it->fd >= 0 ? cli_xfer_get_fd(c, it->key, it->fd, it->name ? it->name : "the output")
                         : cli_xfer_get_buf(c, it->key, &it->out, &it->outlen);
    }
    it->bytes = rc ? 0 : c->xfer_bytes;
    op_finish(o, rc);
}

/* Advances every ready op, then runs one slow item; true when anything moved. */
static bool progress(cli_xfer_batch *b) {
    bool moved = false;
    op *o;
    groups_free(b);
    while ((o = q_pop(&b->ready_head, &b->ready_tail)) != NULL) {
        op_advance(o);
        moved = true;
    }
    if ((o = q_pop(&b->slow_head, &b->slow_tail)) != NULL) {
        /* the slow item's waits run the loop: let these go meanwhile */
        flush_stats(b);
        flush_values(b, false);
        flush_values(b, true);
        if (o->slow == SLOW_RESTORE)
            put_restore(o);
        else
            op_whole(o);
        moved = true;
    }
    return moved;
}

/* Moves what is ready; when nothing is and wait, blocks in the loop until something happens. */
static void drive(cli_xfer_batch *b, bool wait) {
    if (progress(b))
        return;
    /* Every op that is about to wait for a STAT, or a small GET or PUT, has queued it by now: one
     * MSTAT, one MGET and one MPUT per node. */
    flush_stats(b);
    flush_values(b, false);
    flush_values(b, true);
    /* A call that failed at once (no memory, a full queue) ended its ops already: they are
     * ready, and the loop may have nothing left to wake it. */
    if (b->ready_head)
        wait = false;
    if (wait)
        cli_step(&b->c);
    else
        cli_step_nowait(&b->c);
    while (progress(b))
        ;
}

static void batch_free(cli_xfer_batch *b) {
    if (b->opened)
        cli_close(&b->c);
    groups_free(b);
    keyq_free(&b->stats, b->c.conf->nnodes);
    keyq_free(&b->gets, b->c.conf->nnodes);
    keyq_free(&b->puts, b->c.conf->nnodes);
    free(b->missing);
    free(b);
}

int cli_xfer_batch_open(cli *c, unsigned workers, unsigned chunks, cli_xfer_batch **out) {
    *out = NULL;
    cli_xfer_batch *b = calloc(1, sizeof *b);
    if (!b)
        return cli_fail(c, CLI_ERROR, "out of memory");
    b->parent = c;
    b->width = workers ? workers : CLI_XFER_WORKERS;
    if (b->width > WIDTH_MAX)
        b->width = WIDTH_MAX;
    b->c.conf = c->conf;
    b->c.what = c->what;
    b->c.cmd_what = c->what;
    b->c.min_copies = c->min_copies;
    b->c.quiet = c->quiet;
    b->c.on_warn = c->on_warn;
    b->c.warn_ud = c->warn_ud;
    b->c.chunks_inflight = chunks ? chunks : 1;
    size_t nn = c->conf->nnodes;
    b->missing = calloc(nn, sizeof *b->missing);
    int e1 = keyq_init(&b->stats, nn), e2 = keyq_init(&b->gets, nn), e3 = keyq_init(&b->puts, nn);
    if (e1 || e2 || e3 || !b->missing) {
        batch_free(b);
        return cli_fail(c, CLI_ERROR, "out of memory");
    }
    int rc = cli_open(&b->c);
    b->opened = true;
    if (rc) {
        /* the endpoint's sentence is the caller's: the library reports it, not a bare code */
        memcpy(c->fail_msg, b->c.fail_msg, sizeof c->fail_msg);
        c->fail_err = b->c.fail_err;
        batch_free(b);
        return rc;
    }
    /* The caller's probe stands for the batch: one probe per command. */
    memcpy(b->c.live, c->live, nn * sizeof *c->live);
    memcpy(b->c.mono_off, c->mono_off, nn * sizeof *c->mono_off);
    memcpy(b->c.mono_have, c->mono_have, nn * sizeof *c->mono_have);
    memcpy(b->c.tails, c->tails, nn * sizeof *c->tails);
    b->c.probe_ms = c->probe_ms;
    if (cli_theirs_copy(&b->c, c) != 0) {
        batch_free(b);
        return cli_fail(c, CLI_ERROR, "out of memory");
    }
    *out = b;
    return 0;
}

/* Reads a put's input of at most one chunk into o->mem; false when the item goes whole (a large
 * or growing file, a pipe: read by the single-value path from where it was). */
static bool put_take_fd(op *o, const struct stat *sb, int *rc) {
    cli_xfer_item *it = o->it;
    const char *name = it->name ? it->name : "the input";
    if (!sb || !S_ISREG(sb->st_mode))
        return false;
    off_t start = lseek(it->fd, 0, SEEK_CUR);
    if (start < 0 || sb->st_size < start || sb->st_size - start > CHUNK)
        return false;
    size_t want = (size_t)(sb->st_size - start) + 1; /* one more: a file that grew shows it */
    o->mem = malloc(HEAD_MAX + want);
    if (!o->mem) {
        *rc = cli_fail(&o->b->c, CLI_ERROR, "out of memory");
        return true;
    }
    size_t got = 0;
    int err = aq_io_read_full(it->fd, o->mem + HEAD_MAX, want, &got);
    if (err) {
        *rc = cli_fail(&o->b->c, CLI_ERROR, "cannot read %s: %s", name, strerror(-err));
        return true;
    }
    if (got == want) {
        free(o->mem);
        o->mem = NULL;
        if (lseek(it->fd, start, SEEK_SET) != start)
            *rc = cli_fail(&o->b->c, CLI_ERROR, "cannot read %s: %s", name, strerror(errno));
        return *rc != 0;
    }
    if (got != want - 1 || cli_file_changed(it->fd, sb)) {
        *rc = cli_fail(&o->b->c, CLI_ERROR, CLI_CHANGED_FMT, name);
        return true;
    }
    o->len = got;
    return true;
}

/* The bytes it will hold while in flight, as far as known (0 for what goes whole: its own
 * bound). */
static size_t put_bytes(const cli_xfer_item *it, struct stat *sb, bool *have_sb) {
    *have_sb = false;
    if (it->get)
        return it->size <= CHUNK ? (size_t)it->size : 0;
    if (it->fd < 0)
        return it->len <= CHUNK ? it->len : 0;
    *have_sb = fstat(it->fd, sb) == 0;
    return *have_sb && S_ISREG(sb->st_mode) && sb->st_size <= CHUNK ? (size_t)sb->st_size : 0;
}

int cli_xfer_batch_submit(cli_xfer_batch *b, cli_xfer_item *it) {
    struct stat sb;
    bool have_sb;
    size_t need = put_bytes(it, &sb, &have_sb);
    while (b->running > 0 && (b->running >= b->width || b->held + need > BYTES_MAX))
        drive(b, true);
    it->rc = 0;
    it->err = 0;
    it->msg[0] = 0;
    it->out = NULL;
    it->outlen = 0;
    it->bytes = 0;
    it->copies = it->wanted = 0;
    op *o = op_new(b);
    if (!o) {
        /* Still an outcome of its own through next: callers count on every item coming back. */
        snprintf(it->msg, sizeof it->msg, "%s %.300s: out of memory", it->get ? "get" : "put",
                 it->key);
        it->rc = CLI_ERROR;
        it->err = AQ_ENOMEM;
        done_push(b, it);
        b->pending++;
        return 0;
    }
    o->b = b;
    o->it = it;
    o->held = need;
    b->held += need;
    o->klen = strlen(it->key);
    o->r.best = -1;
    cli_what_set(o->what, sizeof o->what, it->get ? "get" : "put", it->key);
    b->pending++;
    b->running++;
    cli *c = op_ctx(o);
    int rc = cli_check_key(c, it->key);
    if (rc) {
        op_finish(o, rc);
        return 0;
    }
    if (it->get) {
        get_start(o);
        return 0;
    }
    bool small;
    if (it->fd >= 0) {
        small = put_take_fd(o, have_sb ? &sb : NULL, &rc);
        if (rc) {
            op_finish(o, rc);
            return 0;
        }
    } else {
        small = it->len <= CHUNK;
        if (small && it->put_mem && it->buf == it->put_mem + HEAD_MAX) {
            o->mem = it->put_mem; /* the value is already where the request wants it */
            it->put_mem = NULL;
            o->len = it->len;
        } else if (small) {
            o->mem = malloc(HEAD_MAX + it->len);
            if (!o->mem) {
                op_finish(o, cli_fail(c, CLI_ERROR, "out of memory"));
                return 0;
            }
            if (it->len)
                memcpy(o->mem + HEAD_MAX, it->buf, it->len);
            o->len = it->len;
        }
    }
    if (small)
        put_start(o);
    else
        op_slow(o, SLOW_WHOLE);
    return 0;
}

cli_xfer_item *cli_xfer_batch_next(cli_xfer_batch *b) {
    while (!b->d_head && b->running > 0)
        drive(b, true);
    cli_xfer_item *it = b->d_head;
    if (it) {
        b->d_head = it->batch_next;
        if (!b->d_head)
            b->d_tail = NULL;
        it->batch_next = NULL;
        b->pending--;
    }
    return it;
}

cli_xfer_item *cli_xfer_batch_poll(cli_xfer_batch *b) {
    if (!b->d_head && b->running > 0)
        drive(b, false);
    if (!b->d_head)
        return NULL;
    return cli_xfer_batch_next(b);
}

const bool *cli_xfer_batch_missing(const cli_xfer_batch *b) {
    return b->missing;
}

size_t cli_xfer_batch_pending(const cli_xfer_batch *b) {
    return b->pending;
}

void cli_xfer_batch_close(cli_xfer_batch *b) {
    if (!b)
        return;
    cli_xfer_item *it;
    while ((it = cli_xfer_batch_next(b)) != NULL) {
        free(it->out);
        it->out = NULL;
        it->outlen = 0;
    }
    while (b->works)
        cli_step(&b->c);
    batch_free(b);
}

static void work_run(uv_work_t *req) {
    cli_xfer_work *w = req->data;
    w->work(w);
}

static void work_after(uv_work_t *req, int status) {
    cli_xfer_work *w = req->data;
    (void)status; /* never cancelled: every work runs */
    w->b->works--;
    w->done(w);
}

int cli_xfer_batch_work(cli_xfer_batch *b, cli_xfer_work *w) {
    w->b = b;
    w->req.data = w;
    if (uv_queue_work(&b->c.loop, &w->req, work_run, work_after) != 0)
        return AQ_EINVAL;
    b->works++;
    return 0;
}

void cli_xfer_batch_wait(cli_xfer_batch *b) {
    if (!b->d_head && (b->running > 0 || b->works > 0))
        drive(b, true);
}
