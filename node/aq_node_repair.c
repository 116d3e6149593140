/* Repair and catch-up (anti-entropy).
 *
 * A pass runs every AQ_REPAIR_INTERVAL and at once when a peer comes back or restarts. For every
 * chunk this node holds it computes the key's targets: the first `replicas` configured nodes in
 * rendezvous order, skipping nodes that have been down longer than repair_after (their chunks must
 * live elsewhere now). It offers each live target the (key, digest) pairs it should hold, in
 * batches; the target answers which it lacks, and this node pushes those with a replica-only PUT.
 * Offers and pushes are ordinary rpc calls, so they are retried, deduplicated and
 * congestion-controlled like everything else. A node that returns thus catches up on what it
 * missed, and a node down past repair_after has its chunks copied to the next node.
 *
 * Offers and copies carry each chunk's version, and a node takes a copy only when it is newer than
 * what it holds, so repair never undoes a later write or removal that overtook it. Removals travel
 * the same way, as TOMBSTONE chunks; a tombstone older than AQ_TOMBSTONE_TTL_US is dropped by the
 * pass, after which a replica that was down all that time could bring the removed value back.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aq_node_internal.h"
#include "aq_node_place.h"

#define AQ_REPAIR_INTERVAL_US (10ull * 1000 * 1000)
#define AQ_OFFER_BATCH        512
#define AQ_PUSH_INFLIGHT      8
#define AQ_TOMBSTONE_TTL_US   (3600ull * 1000 * 1000)

typedef struct rkey {
    uint8_t key[AQ_NODE_KEY_MAX];
    uint8_t klen;
    uint8_t kind;
    aq_node_digest digest;
    uint64_t version;
} rkey;

typedef struct push {
    uint32_t target;
    uint32_t key; /* index into pass->keys */
} push;

typedef struct repair_pass {
    aq_node *n;
    rkey *keys;
    size_t nkeys, capkeys;
    push *pushes;
    size_t npush, cappush, nextpush;
    int offers_inflight, pushes_inflight;
    uint64_t wall_us; /* wall clock at the start, to age tombstones */
    uint64_t offered, pushed, push_failed;
} repair_pass;

typedef struct offer_call {
    repair_pass *pass;
    uint32_t target;
    uint32_t *idx; /* pass key index of each offered entry */
    uint32_t count;
} offer_call;

static void pass_step(repair_pass *p);

static int snapshot_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                       uint8_t kind) {
    repair_pass *p = ud;
    (void)size;
    (void)kind;
    if (p->nkeys == p->capkeys) {
        size_t cap = p->capkeys ? p->capkeys * 2 : 256;
        rkey *nk = realloc(p->keys, cap * sizeof *nk);
        if (!nk)
            return 1;
        p->keys = nk;
        p->capkeys = cap;
    }
    aq_chunk_ref *ref;
    if (aq_chunk_get(p->n->store, key, klen, &ref) != 0)
        return 0; /* removed since the walk began */
    uint64_t version = aq_chunk_ref_version(ref);
    aq_chunk_ref_release(ref);
    /* A version's high bits are the milliseconds of its writer's clock (aq_node_hlc.h). */
    if (kind == AQ_KIND_TOMBSTONE && version &&
        p->wall_us / 1000 > aq_hlc_ms(version) + AQ_TOMBSTONE_TTL_US / 1000) {
        /* Old enough that every replica has long seen it: drop it unless a newer write came. */
        (void)aq_chunk_rm_older(p->n->store, key, klen, version + 1);
        return 0;
    }
    if (aq_frame_key_is_piece(key, klen))
        return 0; /* a parse's scratch: one copy by design (aq_frame_key_is_piece) */
    rkey *k = &p->keys[p->nkeys++];
    memcpy(k->key, key, klen);
    k->klen = (uint8_t)klen;
    k->kind = kind;
    k->digest.hi = d.hi;
    k->digest.lo = d.lo;
    k->version = version;
    return 0;
}

static bool long_down(const aq_node *n, size_t i, uint64_t now) {
    const aq_member *m = &n->members[i];
    return m->state == AQ_MEMBER_DOWN && m->down_since_us &&
           now - m->down_since_us >= n->cfg->repair_after_ms * 1000ull;
}

/* The nodes that should hold key now: first `replicas` in rendezvous order, skipping long-down
 * ones. */
static size_t targets_of(const aq_node *n, const rkey *k, uint64_t now, uint32_t *out) {
    uint32_t order[n->nmembers];
    aq_place_order(n->seeds, n->nmembers, k->key, k->klen, order);
    size_t t = 0;
    for (size_t i = 0; i < n->nmembers && t < n->cfg->replicas; i++)
        if (!long_down(n, order[i], now))
            out[t++] = order[i];
    return t;
}

static void pass_end(repair_pass *p) {
    aq_node *n = p->n;
    if (p->pushed || p->push_failed)
        aq_logf(n->log, AQ_LOG_INFO,
                "repair: %llu chunks offered, %llu copied to peers, %llu failed",
                (unsigned long long)p->offered, (unsigned long long)p->pushed,
                (unsigned long long)p->push_failed);
    n->repair_pushes += p->pushed;
    n->repair_running = false;
    aq_node_op_end(n);
    free(p->keys);
    free(p->pushes);
    free(p);
}

static void push_done(void *ud, const aq_rpc_result *r) {
    repair_pass *p = ud;
    p->pushes_inflight--;
    if (r->err == 0 && r->status == 0) {
        p->pushed++;
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
    aq_wr_init(&w);
    aq_chunk_digest d = aq_chunk_ref_digest(ref);
    aq_put_req_head_v(&w, AQ_PUT_REPLICA, aq_chunk_ref_kind(ref), k->key, k->klen,
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
    p->offers_inflight--;
    if (r->err == 0 && r->status == 0) {
        aq_rd rd = aq_rd_init(r->data, r->len);
        uint32_t nwant = aq_rd_u32(&rd);
        for (uint32_t i = 0; i < nwant && rd.ok; i++) {
            uint32_t at = aq_rd_u32(&rd);
            if (!rd.ok || at >= oc->count)
                break;
            if (p->npush == p->cappush) {
                size_t cap = p->cappush ? p->cappush * 2 : 64;
                push *np = realloc(p->pushes, cap * sizeof *np);
                if (!np)
                    break;
                p->pushes = np;
                p->cappush = cap;
            }
            p->pushes[p->npush++] = (push){oc->target, oc->idx[at]};
        }
    }
    free(oc->idx);
    free(oc);
    pass_step(p);
}

static void send_offer(repair_pass *p, uint32_t target, const uint32_t *idx, uint32_t count) {
    aq_node *n = p->n;
    offer_call *oc = calloc(1, sizeof *oc);
    uint32_t *copy = malloc(count * sizeof *copy);
    aq_wr w;
    aq_wr_init(&w);
    if (!oc || !copy) {
        free(oc);
        free(copy);
        return;
    }
    memcpy(copy, idx, count * sizeof *copy);
    *oc = (offer_call){p, target, copy, count};
    aq_offer_req_head(&w, count);
    for (uint32_t i = 0; i < count; i++) {
        rkey *k = &p->keys[idx[i]];
        aq_offer_req_entry(&w, k->key, k->klen, k->digest, k->version, k->kind);
    }
    aq_rpc_buf b = {w.p, w.len, free_wr, w.p};
    if (!w.ok || aq_rpc_call(n->rpc, n->members[target].peer, AQ_M_OFFER, b,
                             AQ_NODE_CALL_TIMEOUT_US(n), offer_done, oc) != 0) {
        if (!w.ok)
            aq_wr_free(&w);
        free(copy);
        free(oc);
        return;
    }
    p->offers_inflight++;
    p->offered += count;
}

static void repair_start(aq_node *n) {
    repair_pass *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->n = n;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->wall_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    if (aq_chunk_iterate(n->store, NULL, 0, snapshot_cb, p) != 0) {
        free(p->keys);
        free(p);
        return;
    }
    n->repair_running = true;
    aq_node_op_begin(n);
    uint64_t now = aq_node_now_us(n);
    size_t nm = n->nmembers;
    uint32_t *batch = malloc(nm * AQ_OFFER_BATCH * sizeof *batch);
    uint32_t *fill = calloc(nm, sizeof *fill);
    if (batch && fill) {
        uint32_t t[nm];
        for (size_t i = 0; i < p->nkeys; i++) {
            size_t nt = targets_of(n, &p->keys[i], now, t);
            for (size_t j = 0; j < nt; j++) {
                uint32_t m = t[j];
                if (m == n->self || !n->members[m].peer ||
                    (n->members[m].state != AQ_MEMBER_UP &&
                     n->members[m].state != AQ_MEMBER_SUSPECT))
                    continue;
                batch[m * AQ_OFFER_BATCH + fill[m]++] = (uint32_t)i;
                if (fill[m] == AQ_OFFER_BATCH) {
                    send_offer(p, m, &batch[m * AQ_OFFER_BATCH], fill[m]);
                    fill[m] = 0;
                }
            }
        }
        for (size_t m = 0; m < nm; m++)
            if (fill[m])
                send_offer(p, (uint32_t)m, &batch[m * AQ_OFFER_BATCH], fill[m]);
    }
    free(batch);
    free(fill);
    for (size_t i = 0; i < nm; i++)
        n->members[i].needs_sync = false;
    pass_step(p);
}

void aq_node_repair_tick(aq_node *n) {
    uint64_t now = aq_node_now_us(n);
    if (n->repair_running || n->stopping || now < n->next_repair_us)
        return;
    n->next_repair_us = now + AQ_REPAIR_INTERVAL_US;
    repair_start(n);
}

/* OFFER handler: answer the indexes of the offered chunks this node does not hold. */
static void handle_offer(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    n->handled_total++;
    size_t len;
    const uint8_t *p = aq_rpc_incoming_data(in, &len);
    aq_rd rd;
    uint32_t count;
    aq_rpc_buf none = {0};
    if (aq_offer_req_begin(&rd, p, len, &count) != 0) {
        aq_rpc_respond(in, AQ_EPROTO, none);
        return;
    }
    aq_wr w;
    aq_wr_init(&w);
    aq_wr_u32(&w, 0);
    uint32_t nwant = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *key;
        size_t klen;
        aq_node_digest d;
        uint64_t version;
        uint8_t kind;
        if (aq_offer_req_next(&rd, &key, &klen, &d, &version, &kind) != 0) {
            aq_wr_free(&w);
            aq_rpc_respond(in, AQ_EPROTO, none);
            return;
        }
        /* Wanted when absent here or ordered before it here (the store's order: version, then
         * digest, then kind, so equal versions converge too); a newer copy here will be offered
         * back. */
        aq_chunk_ref *ref;
        bool want = true;
        if (aq_chunk_get(n->store, key, klen, &ref) == 0) {
            want = aq_chunk_write_cmp(version, (aq_chunk_digest){d.hi, d.lo}, kind,
                                      aq_chunk_ref_version(ref), aq_chunk_ref_digest(ref),
                                      aq_chunk_ref_kind(ref)) > 0;
            aq_chunk_ref_release(ref);
        }
        if (want) {
            aq_wr_u32(&w, i);
            nwant++;
        }
    }
    if (!w.ok || !aq_rd_done(&rd)) {
        aq_wr_free(&w);
        aq_rpc_respond(in, w.ok ? AQ_EPROTO : AQ_ENOMEM, none);
        return;
    }
    for (int b = 0; b < 4; b++)
        w.p[b] = (uint8_t)(nwant >> (8 * b));
    aq_rpc_buf out = {w.p, w.len, free_wr, w.p};
    aq_rpc_respond(in, 0, out);
}

void aq_node_register_repair(aq_node *n) {
    aq_rpc_handle(n->rpc, AQ_M_OFFER, handle_offer, n);
}
