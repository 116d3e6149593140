/* Repair and catch-up (anti-entropy), retirement of copies placed elsewhere, and collection of
 * removal markers.
 *
 * A pass runs every repair_interval and at once when a peer comes back or restarts. Its scan runs
 * in the threadpool (never on the loop): it walks a snapshot of the store and, for every chunk,
 * computes the key's replicas (the first `replicas` configured nodes in rendezvous order) and its
 * targets (the same, skipping nodes down longer than repair_after: their chunks must live elsewhere
 * now), and encodes offers of (key, digest, version, kind) to each live target in batches. The loop
 * then sends them; each receiver answers per entry whether it wants the copy, holds the same, or
 * holds a newer one, and this node pushes the wanted ones with a replica-only PUT. Offers and
 * pushes are ordinary rpc calls (retried, deduplicated, congestion-controlled). A node that returns
 * thus catches up, and a node down past repair_after has its chunks copied to the next node.
 *
 * Copies compare in the store's order (aq_chunk_write_cmp: version, then digest, then kind), so
 * repair never undoes a later write or removal that overtook it, and two copies of one version
 * from two coordinators converge on the same one. Removals travel as TOMBSTONE chunks.
 *
 * Retirement: a copy held here although this node is not one of the key's replicas (repair placed
 * it here while a replica was down, or a removal reached it flagged AQ_RM_IF_HELD) is dropped once
 * every replica, in one pass, answered that it holds the same or a newer copy. A stale copy thus
 * learns of the newer write or removal from the replicas and disappears.
 *
 * Collection of removal markers: a tombstone is dropped only when it is older than tombstone_ttl
 * (its age: this node's hybrid logical clock now minus the milliseconds of the marker's version,
 * both in the cluster's clock, aq_node_hlc.h) and, in one pass, every configured node other than
 * this one answered the offer of it with "nothing older here". Such offers go to every live node,
 * flagged COLLECTIBLE so that a node lacking the marker does not ask for it back, and a node that
 * is not a target and holds an older copy drops that copy first. A node that is down cannot answer,
 * so while any configured node is down no marker is collected: no node can then bring a removed
 * value back.
 */
#include <stdlib.h>
#include <string.h>

#include "aq_node_internal.h"
#include "aq_node_place.h"

#define AQ_OFFER_BATCH   512
#define AQ_PUSH_INFLIGHT 8

enum { ACT_KEEP = 0, ACT_RETIRE, ACT_COLLECT };

typedef struct rkey {
    uint8_t key[AQ_NODE_KEY_MAX];
    uint8_t klen;
    uint8_t kind;
    uint8_t action;
    aq_node_digest digest;
    uint64_t version;
    uint32_t need;    /* confirmations that retire or collect it */
    uint32_t confirm; /* confirmations received this pass */
} rkey;

typedef struct push {
    uint32_t target;
    uint32_t key; /* index into pass->keys */
} push;

typedef struct offer_batch {
    uint32_t target;
    aq_wr w;
    uint32_t *idx;   /* pass key index of each offered entry */
    uint8_t *counts; /* whether this receiver's answer counts toward the key's `need` */
    uint32_t count;
} offer_batch;

typedef struct repair_pass {
    aq_node *n;
    uv_work_t work;
    /* Membership as the loop saw it at the start; the scan reads only this. */
    bool *live, *long_down;
    uint64_t clock_ms; /* this node's clock at the start (aq_hlc_peek), to age tombstones */
    rkey *keys;
    size_t nkeys, capkeys;
    offer_batch *batches;
    size_t nbatches, capbatches;
    push *pushes;
    size_t npush, cappush, nextpush;
    int offers_inflight, pushes_inflight;
    uint64_t offered, pushed, push_failed, dropped_retired, dropped_collected;
    bool scan_failed;
} repair_pass;

typedef struct offer_call {
    repair_pass *pass;
    offer_batch *b;
} offer_call;

static void pass_step(repair_pass *p);

/* ---- the scan (threadpool) ---- */

static int snapshot_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                       uint8_t kind) {
    repair_pass *p = ud;
    (void)size;
    if (aq_frame_key_is_piece(key, klen))
        return 0; /* a parse's scratch: one copy by design (aq_frame_key_is_piece) */
    if (p->nkeys == p->capkeys) {
        size_t cap = p->capkeys ? p->capkeys * 2 : 256;
        rkey *nk = realloc(p->keys, cap * sizeof *nk);
        if (!nk) {
            p->scan_failed = true;
            return 1;
        }
        p->keys = nk;
        p->capkeys = cap;
    }
    aq_chunk_ref *ref;
    if (aq_chunk_get(p->n->store, key, klen, &ref) != 0)
        return 0; /* removed since the walk began */
    aq_chunk_digest now = aq_chunk_ref_digest(ref);
    uint64_t version = aq_chunk_ref_version(ref);
    aq_chunk_ref_release(ref);
    if (!aq_chunk_digest_equal(now, d))
        return 0; /* overwritten since the walk began: the next pass offers the new copy */
    rkey *k = &p->keys[p->nkeys++];
    memset(k, 0, sizeof *k);
    memcpy(k->key, key, klen);
    k->klen = (uint8_t)klen;
    k->kind = kind;
    k->digest = (aq_node_digest){d.hi, d.lo};
    k->version = version;
    return 0;
}

static offer_batch *batch_open(repair_pass *p, uint32_t target) {
    if (p->nbatches == p->capbatches) {
        size_t cap = p->capbatches ? p->capbatches * 2 : 16;
        offer_batch *nb = realloc(p->batches, cap * sizeof *nb);
        if (!nb)
            return NULL;
        p->batches = nb;
        p->capbatches = cap;
    }
    offer_batch *b = &p->batches[p->nbatches];
    memset(b, 0, sizeof *b);
    b->target = target;
    b->idx = malloc(AQ_OFFER_BATCH * sizeof *b->idx);
    b->counts = malloc(AQ_OFFER_BATCH);
    if (!b->idx || !b->counts) {
        free(b->idx);
        free(b->counts);
        return NULL;
    }
    aq_wr_init(&b->w);
    aq_node_offer_req_head(&b->w, 0); /* the count is set when the batch closes */
    p->nbatches++;
    return b;
}

static void batch_close(offer_batch *b) {
    if (b->w.ok)
        for (int i = 0; i < 4; i++)
            b->w.p[i] = (uint8_t)(b->count >> (8 * i));
}

/* open[m]: 1 + the index of member m's batch still filling, or 0. */
static void plan_key(repair_pass *p, size_t ki, size_t *open) {
    aq_node *n = p->n;
    rkey *k = &p->keys[ki];
    size_t nm = n->nmembers, nrep = n->cfg->replicas < nm ? n->cfg->replicas : nm;
    uint32_t order[nm];
    aq_place_order(n->seeds, nm, k->key, k->klen, order);
    bool is_replica[nm], is_target[nm];
    memset(is_replica, 0, sizeof is_replica);
    memset(is_target, 0, sizeof is_target);
    for (size_t i = 0; i < nrep; i++)
        is_replica[order[i]] = true;
    for (size_t i = 0, t = 0; i < nm && t < nrep; i++)
        if (!p->long_down[order[i]]) {
            is_target[order[i]] = true;
            t++;
        }
    bool collectible = false;
    /* A version's high bits are the milliseconds of the clock that issued it (aq_node_hlc.h). */
    if (k->kind == AQ_KIND_TOMBSTONE && k->version)
        collectible = p->clock_ms >= aq_hlc_ms(k->version) + n->cfg->tombstone_ttl_ms;
    if (collectible) {
        k->action = ACT_COLLECT;
        k->need = (uint32_t)(nm - 1);
    } else if (!is_replica[n->self]) {
        k->action = ACT_RETIRE;
        k->need = (uint32_t)nrep;
    }
    for (size_t m = 0; m < nm; m++) {
        if (m == n->self || !p->live[m])
            continue;
        if (!is_target[m] && !collectible)
            continue;
        if (!open[m]) {
            if (!batch_open(p, (uint32_t)m))
                continue;
            open[m] = p->nbatches;
        }
        offer_batch *b = &p->batches[open[m] - 1];
        uint8_t flags =
            (is_target[m] ? AQ_OFFER_TARGET : 0) | (collectible ? AQ_OFFER_COLLECTIBLE : 0);
        aq_node_offer_req_entry(&b->w, k->key, k->klen, k->digest, k->version, k->kind, flags);
        b->idx[b->count] = (uint32_t)ki;
        b->counts[b->count] =
            k->action == ACT_COLLECT || (k->action == ACT_RETIRE && is_replica[m]);
        if (++b->count == AQ_OFFER_BATCH)
            open[m] = 0;
    }
}

static void scan_work(uv_work_t *w) {
    repair_pass *p = w->data;
    aq_node *n = p->n;
    if (aq_chunk_iterate(n->store, NULL, 0, snapshot_cb, p) != 0)
        p->scan_failed = true;
    size_t *open = calloc(n->nmembers, sizeof *open);
    if (!open) {
        p->scan_failed = true;
        return;
    }
    for (size_t i = 0; i < p->nkeys; i++)
        plan_key(p, i, open);
    for (size_t b = 0; b < p->nbatches; b++)
        batch_close(&p->batches[b]);
    free(open);
}

/* ---- retirement and collection (threadpool) ---- */

static void drop_work(uv_work_t *w) {
    repair_pass *p = w->data;
    for (size_t i = 0; i < p->nkeys; i++) {
        rkey *k = &p->keys[i];
        if (k->action == ACT_KEEP || k->confirm < k->need)
            continue;
        /* Only the copy that was confirmed: a newer write that arrived meanwhile stays. */
        if (aq_chunk_rm_upto(p->n->store, k->key, k->klen, k->version,
                             (aq_chunk_digest){k->digest.hi, k->digest.lo}, k->kind) == 0) {
            if (k->action == ACT_RETIRE)
                p->dropped_retired++;
            else
                p->dropped_collected++;
        }
    }
}

static void pass_free(repair_pass *p) {
    for (size_t b = 0; b < p->nbatches; b++) {
        aq_wr_free(&p->batches[b].w);
        free(p->batches[b].idx);
        free(p->batches[b].counts);
    }
    free(p->batches);
    free(p->keys);
    free(p->pushes);
    free(p->live);
    free(p->long_down);
    free(p);
}

static void drop_after(uv_work_t *w, int status) {
    repair_pass *p = w->data;
    aq_node *n = p->n;
    (void)status;
    if (p->pushed || p->push_failed || p->dropped_retired || p->dropped_collected)
        aq_logf(n->log, AQ_LOG_INFO,
                "repair: %llu chunks offered, %llu copied to peers, %llu failed, %llu copies "
                "retired, %llu removal markers collected",
                (unsigned long long)p->offered, (unsigned long long)p->pushed,
                (unsigned long long)p->push_failed, (unsigned long long)p->dropped_retired,
                (unsigned long long)p->dropped_collected);
    n->repair_pushes += p->pushed;
    n->repair_running = false;
    aq_node_op_end(n);
    pass_free(p);
}

static void pass_end(repair_pass *p) {
    aq_node *n = p->n;
    bool any = false;
    for (size_t i = 0; i < p->nkeys && !any; i++)
        any = p->keys[i].action != ACT_KEEP && p->keys[i].confirm >= p->keys[i].need;
    p->work.data = p;
    if (!any || n->stopping || uv_queue_work(n->loop, &p->work, drop_work, drop_after) != 0)
        drop_after(&p->work, 0);
}

/* ---- offers and pushes (loop) ---- */

static void push_done(void *ud, const aq_rpc_result *r) {
    repair_pass *p = ud;
    p->pushes_inflight--;
    if (r->err == 0 && (r->status == 0 || r->status == AQ_ESTALE)) {
        /* ESTALE: the target took a newer write meanwhile, which is what repair wants too. */
        p->pushed += r->status == 0;
    } else {
        p->push_failed++;
        char buf[256];
        aq_logf(p->n->log, AQ_LOG_WARN, "repair: %s",
                aq_rpc_result_describe(p->n->rpc, r, buf, sizeof buf));
    }
    pass_step(p);
}

static void free_wr(void *ctx) {
    free(ctx);
}

static void start_push(repair_pass *p, const push *ps) {
    aq_node *n = p->n;
    rkey *k = &p->keys[ps->key];
    aq_chunk_ref *ref;
    if (aq_chunk_get(n->store, k->key, k->klen, &ref) != 0)
        return; /* removed meanwhile: nothing to copy */
    aq_wr w;
    aq_wr_init_cap(&w, AQ_PUT_HEAD_MAX + aq_chunk_ref_len(ref));
    aq_chunk_digest d = aq_chunk_ref_digest(ref);
    aq_node_put_req_head_v(&w, AQ_PUT_REPLICA, aq_chunk_ref_kind(ref), k->key, k->klen,
                           (aq_node_digest){d.hi, d.lo}, aq_chunk_ref_version(ref));
    aq_wr_bytes(&w, aq_chunk_ref_data(ref), aq_chunk_ref_len(ref));
    aq_chunk_ref_release(ref);
    if (!w.ok) {
        aq_wr_free(&w);
        p->push_failed++;
        return;
    }
    aq_rpc_buf b = {w.p, w.len, free_wr, w.p};
    if (aq_rpc_call(n->rpc, n->members[ps->target].peer, AQ_M_PUT, b, AQ_NODE_CALL_TIMEOUT_US(n),
                    push_done, p) == 0)
        p->pushes_inflight++;
    else
        p->push_failed++;
}

static void pass_step(repair_pass *p) {
    while (p->pushes_inflight < AQ_PUSH_INFLIGHT && p->nextpush < p->npush && !p->n->stopping)
        start_push(p, &p->pushes[p->nextpush++]);
    if (p->offers_inflight == 0 && p->pushes_inflight == 0 &&
        (p->nextpush >= p->npush || p->n->stopping))
        pass_end(p);
}

static void offer_done(void *ud, const aq_rpc_result *r) {
    offer_call *oc = ud;
    repair_pass *p = oc->pass;
    offer_batch *b = oc->b;
    free(oc);
    p->offers_inflight--;
    uint32_t count;
    const uint8_t *st;
    if (r->err == 0 && r->status == 0 &&
        aq_node_offer_rep_decode(r->data, r->len, &count, &st) == 0 && count == b->count) {
        for (uint32_t i = 0; i < count; i++) {
            rkey *k = &p->keys[b->idx[i]];
            if (st[i] == AQ_OFFER_WANT) {
                if (p->npush == p->cappush) {
                    size_t cap = p->cappush ? p->cappush * 2 : 64;
                    push *np = realloc(p->pushes, cap * sizeof *np);
                    if (!np)
                        continue;
                    p->pushes = np;
                    p->cappush = cap;
                }
                p->pushes[p->npush++] = (push){b->target, b->idx[i]};
            } else if ((st[i] == AQ_OFFER_HAVE || st[i] == AQ_OFFER_NEWER) && b->counts[i]) {
                k->confirm++;
            }
        }
    }
    pass_step(p);
}

static void send_offer(repair_pass *p, offer_batch *b) {
    aq_node *n = p->n;
    offer_call *oc = calloc(1, sizeof *oc);
    if (!oc || !b->w.ok || !b->count || !n->members[b->target].peer) {
        free(oc);
        return;
    }
    *oc = (offer_call){p, b};
    /* The encoded offer goes to rpc; the batch keeps its index arrays for the answers. */
    aq_rpc_buf buf = {b->w.p, b->w.len, free_wr, b->w.p};
    b->w.p = NULL;
    b->w.len = b->w.cap = 0;
    if (aq_rpc_call(n->rpc, n->members[b->target].peer, AQ_M_OFFER, buf, AQ_NODE_CALL_TIMEOUT_US(n),
                    offer_done, oc) != 0) {
        free(oc);
        return;
    }
    p->offers_inflight++;
    p->offered += b->count;
}

static void scan_after(uv_work_t *w, int status) {
    repair_pass *p = w->data;
    if (status || p->scan_failed) {
        aq_logf(p->n->log, AQ_LOG_WARN, "repair: the scan of the store failed; next pass later");
        p->nkeys = 0;
        pass_end(p);
        return;
    }
    /* Sent after the scan so that offer_done, which may run at once on a failed call, finds every
     * batch in place. */
    p->offers_inflight++;
    for (size_t b = 0; b < p->nbatches && !p->n->stopping; b++)
        send_offer(p, &p->batches[b]);
    p->offers_inflight--;
    pass_step(p);
}

static void repair_start(aq_node *n) {
    repair_pass *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->n = n;
    p->live = calloc(n->nmembers, sizeof *p->live);
    p->long_down = calloc(n->nmembers, sizeof *p->long_down);
    if (!p->live || !p->long_down) {
        pass_free(p);
        return;
    }
    uint64_t now = aq_node_now_us(n);
    p->clock_ms = aq_hlc_ms(aq_hlc_peek(&n->hlc, aq_node_wall_ms()));
    for (size_t i = 0; i < n->nmembers; i++) {
        const aq_member *m = &n->members[i];
        p->live[i] =
            i != n->self && m->peer && (m->state == AQ_MEMBER_UP || m->state == AQ_MEMBER_SUSPECT);
        p->long_down[i] = m->state == AQ_MEMBER_DOWN && m->down_since_us &&
                          now - m->down_since_us >= n->cfg->repair_after_ms * 1000ull;
    }
    n->repair_running = true;
    aq_node_op_begin(n);
    for (size_t i = 0; i < n->nmembers; i++)
        n->members[i].needs_sync = false;
    p->work.data = p;
    if (uv_queue_work(n->loop, &p->work, scan_work, scan_after) != 0)
        scan_after(&p->work, AQ_ENOMEM);
}

void aq_node_repair_tick(aq_node *n) {
    uint64_t now = aq_node_now_us(n);
    if (n->repair_running || n->stopping || now < n->next_repair_us)
        return;
    n->next_repair_us = now + n->cfg->repair_interval_ms * 1000ull;
    repair_start(n);
}

/* ---- OFFER handler: decided in the threadpool (a drop touches the disk) ---- */

typedef struct offer_job {
    aq_node *n;
    aq_rpc_incoming *in;
    uint8_t *msg;
    size_t len;
    uv_work_t work;
    aq_wr out;
    int err;
} offer_job;

static uint8_t offer_answer(aq_node *n, const uint8_t *key, size_t klen, aq_node_digest d,
                            uint64_t version, uint8_t kind, uint8_t flags) {
    aq_chunk_ref *ref;
    if (aq_chunk_get(n->store, key, klen, &ref) != 0) {
        /* A marker about to be collected is no loss to lack; anything else a target wants. */
        bool want = (flags & AQ_OFFER_TARGET) &&
                    !(kind == AQ_KIND_TOMBSTONE && (flags & AQ_OFFER_COLLECTIBLE));
        return want ? AQ_OFFER_WANT : AQ_OFFER_HAVE;
    }
    aq_chunk_digest hd = aq_chunk_ref_digest(ref);
    uint64_t hv = aq_chunk_ref_version(ref);
    uint8_t hk = aq_chunk_ref_kind(ref);
    aq_chunk_ref_release(ref);
    /* The store's order, so that equal versions from two coordinators converge too. */
    int c = aq_chunk_write_cmp(hv, hd, hk, version, (aq_chunk_digest){d.hi, d.lo}, kind);
    if (c != 0 && hv == version) {
        /* Two copies of one version: if this one's bytes do not verify, the offered one wins. */
        char why[160];
        if (aq_chunk_scrub(n->store, key, klen, NULL, why, sizeof why) == AQ_ECORRUPT) {
            aq_logf(n->log, AQ_LOG_WARN, "repair: a copy held here is damaged (%s): dropped", why);
            return flags & AQ_OFFER_TARGET ? AQ_OFFER_WANT : AQ_OFFER_HAVE;
        }
    }
    if (c > 0)
        return AQ_OFFER_NEWER;
    if (c == 0)
        return AQ_OFFER_HAVE;
    if (flags & AQ_OFFER_TARGET)
        return AQ_OFFER_WANT;
    /* Not a target and older: the newer copy lives on the targets; this one must go. */
    return aq_chunk_rm_upto(n->store, key, klen, version, (aq_chunk_digest){d.hi, d.lo}, kind) == 0
               ? AQ_OFFER_HAVE
               : AQ_OFFER_OLDER;
}

static void offer_work(uv_work_t *w) {
    offer_job *j = w->data;
    aq_rd rd;
    uint32_t count;
    aq_wr_init(&j->out);
    if (aq_node_offer_req_begin(&rd, j->msg, j->len, &count) != 0) {
        j->err = AQ_EPROTO;
        return;
    }
    aq_node_offer_rep_head(&j->out, count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *key;
        size_t klen;
        aq_node_digest d;
        uint64_t version;
        uint8_t kind, flags;
        if (aq_node_offer_req_next(&rd, &key, &klen, &d, &version, &kind, &flags) != 0) {
            j->err = AQ_EPROTO;
            return;
        }
        aq_wr_u8(&j->out, offer_answer(j->n, key, klen, d, version, kind, flags));
    }
    if (!aq_rd_done(&rd))
        j->err = AQ_EPROTO;
    else if (!j->out.ok)
        j->err = AQ_ENOMEM;
}

static void offer_after(uv_work_t *w, int status) {
    offer_job *j = w->data;
    aq_rpc_buf none = {0};
    if (status || j->err) {
        aq_wr_free(&j->out);
        aq_rpc_respond(j->in, status ? status : j->err, none);
    } else {
        aq_rpc_buf out = {j->out.p, j->out.len, free_wr, j->out.p};
        aq_rpc_respond(j->in, 0, out);
    }
    aq_node_op_end(j->n);
    free(j->msg);
    free(j);
}

static void handle_offer(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    n->handled_total++;
    aq_rpc_buf none = {0};
    if (n->stopping) {
        aq_rpc_respond(in, AQ_ECLOSED, none);
        return;
    }
    offer_job *j = calloc(1, sizeof *j);
    if (!j) {
        aq_rpc_respond(in, AQ_ENOMEM, none);
        return;
    }
    j->n = n;
    j->in = in;
    j->msg = aq_rpc_incoming_take(in, &j->len);
    if (!j->msg) {
        free(j);
        aq_rpc_respond(in, AQ_EPROTO, none);
        return;
    }
    aq_node_op_begin(n);
    j->work.data = j;
    if (uv_queue_work(n->loop, &j->work, offer_work, offer_after) != 0) {
        j->err = AQ_ENOMEM;
        offer_after(&j->work, 0);
    }
}

void aq_node_register_repair(aq_node *n) {
    aq_rpc_handle(n->rpc, AQ_M_OFFER, handle_offer, n);
}
