/* The node's method handlers. Store work that touches the disk or hashes a whole chunk (put, rm)
 * runs in the threadpool; lookups (get, stat, list) are index reads and run on the loop. A put or
 * rm that arrives from a client is coordinated here: done locally, forwarded to the other live
 * replicas, and answered once all of them have answered; a removal also goes to every other live
 * node, which applies it only over a copy it holds. GET and STAT answer a removal marker as such
 * when asked to (AQ_READ_TOMBSTONES), and every read reply carries the copy's version, so that the
 * command can pick the newest copy. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aq_node_frame.h"
#include "aq_node_internal.h"

static aq_node_digest to_node_digest(aq_chunk_digest d) {
    aq_node_digest o = {d.hi, d.lo};
    return o;
}

static aq_chunk_digest to_chunk_digest(aq_node_digest d) {
    aq_chunk_digest o = {d.hi, d.lo};
    return o;
}

static void respond_err(aq_rpc_incoming *in, int err) {
    aq_rpc_buf none = {0};
    aq_rpc_respond(in, err, none);
}

static void respond_wr(aq_rpc_incoming *in, aq_wr *w) {
    if (!w->ok) {
        aq_wr_free(w);
        respond_err(in, AQ_ENOMEM);
        return;
    }
    aq_rpc_buf b = {w->p, w->len, free, w->p};
    aq_rpc_respond(in, 0, b);
}

static bool refuse_if_stopping(aq_node *n, aq_rpc_incoming *in) {
    if (!n->stopping)
        return false;
    respond_err(in, AQ_ECLOSED);
    return true;
}

/* Counts a handler run; `client` when the request came from outside the cluster. */
static void count_run(aq_node *n, bool client) {
    n->handled_total++;
    if (client)
        n->handled_client++;
}

static bool key_ok(const uint8_t *key, size_t klen) {
    return aq_node_user_key_ok(key, klen) ||
           (klen > 1 && klen <= AQ_NODE_KEY_MAX && key[0] == AQ_NODE_INTERNAL_PREFIX[0]);
}

/* ---- PUT and RM: coordinated writes ----
 *
 * The coordinator (the node a client sent the write to, normally the key's first live replica)
 * stores the write with version max(clock, stored version + 1), atomically with its own store, and
 * forwards it with that version. A replica that holds a newer write answers STALE with its
 * version: the coordinator then runs another round above it (at most MAX_ROUNDS), so a write that
 * started after another was acknowledged always orders after it, whatever the clocks. A STALE
 * answer is never counted as a copy. */

#define MAX_ROUNDS 4

/* A PUT request's bytes, shared by its write_op and each chunk that adopted its value (the store
 * keeps the value where the rpc received it, instead of copying 4 MiB): freed by whichever lets go
 * last, on the loop or in the threadpool. The value bytes never change while shared; the op only
 * rewrites the head (flags, version, deadline) it forwards. */
typedef struct msg_share {
    _Atomic uint32_t refs;
    uint8_t *msg;
} msg_share;

static void msg_share_unref(void *ctx) {
    msg_share *sh = ctx;
    if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1) {
        free(sh->msg);
        free(sh);
    }
}

/* An MPUT call: its items are writes of their own, each answering into its slot; the call is
 * answered once every slot is filled (left counts the slots still open, plus one while the handler
 * is starting them). */
typedef struct mput_call {
    aq_rpc_incoming *in;
    uint32_t count, left;
    struct mput_slot {
        int status;
        uint8_t *body; /* malloc'd, or NULL */
        size_t len;
    } slots[];
} mput_call;

/* Where a write's answer goes: its own call, or slot item of an MPUT. */
typedef struct write_to {
    aq_rpc_incoming *in;
    mput_call *batch;
    uint32_t item;
} write_to;

static void mput_release(mput_call *m);

/* The answer to a write: status and body (malloc'd and taken, or NULL). */
static void answer(write_to to, int status, uint8_t *body, size_t len) {
    if (to.in) {
        aq_rpc_respond(to.in, status, (aq_rpc_buf){body, body ? len : 0, body ? free : NULL, body});
        return;
    }
    struct mput_slot *sl = &to.batch->slots[to.item];
    sl->status = status;
    sl->body = body;
    sl->len = body ? len : 0;
    mput_release(to.batch);
}

typedef struct write_op {
    aq_node *n;
    write_to to;
    uint16_t method;
    uint8_t *msg;     /* the request; forwarded with AQ_PUT_REPLICA set and this write's version */
    msg_share *share; /* PUT: owns msg (else the op does) */
    size_t len;
    aq_node_put_req put; /* for PUT */
    const uint8_t *key;  /* for RM */
    size_t klen;
    uint8_t rm_flags;                 /* for RM */
    size_t version_off, deadline_off; /* in msg */
    uint64_t version;                 /* of this write (assigned here when the request had none) */
    uint64_t deadline;                /* ours, monotonic µs; 0: none */
    bool coordinate;
    uv_work_t work;
    int round;
    /* The current round. */
    int local_err;
    bool local_stale, local_found;
    uint64_t held; /* local_stale: the newer version stored here */
    /* The answer waits for every outcome (pending); the op's request bytes, lent to forwards
     * (lends), outlive it while a pipe write still reads them: a replica that stopped reading
     * holds them until its pipe drains or breaks, which must not delay the answer. A new round
     * rewrites the request's head, so it waits for the lends (round_waiting). */
    int pending; /* outcomes awaited: the local part, forwards, removal notices */
    int lends;   /* forwards whose request bytes rpc has not released */
    bool round_waiting, answered;
    uint8_t copies, wanted;
    uint16_t holders[AQ_PUT_REP_HOLDERS_MAX];
    uint64_t stale_max;  /* the newest version a replica answered STALE with; 0: none */
    bool found;          /* RM: some node had a live value */
    int forward_err;     /* a definite refusal by a live replica */
    uint16_t refused_by; /* that replica's member index */
    bool nowait;         /* applied on the loop: AQ_CHUNK_NOWAIT */
    uint64_t late_us;    /* AQ_EDEADLINE: how late it came */
} write_op;

/* One forward: its call's outcome and the release of its request bytes come in either order, so
 * it is freed after both (refs). */
typedef struct forward_ctx {
    write_op *op;
    size_t member;
    uint8_t *copy; /* this forward's own copy of the request (its deadline differs), or NULL */
    int refs;
} forward_ctx;

static void forward_ctx_unref(forward_ctx *f) {
    if (--f->refs == 0)
        free(f);
}

static void outcome_done(write_op *op);
static void lend_done(write_op *op);
static void write_start_round(write_op *op);

static void write_op_free(write_op *op) {
    if (op->share)
        msg_share_unref(op->share);
    else
        free(op->msg);
    free(op);
}

static void forward_release(void *ctx) {
    forward_ctx *f = ctx;
    write_op *op = f->op;
    free(f->copy);
    f->copy = NULL;
    forward_ctx_unref(f);
    lend_done(op);
}

static void add_holder(write_op *op, size_t member) {
    if (op->copies < AQ_PUT_REP_HOLDERS_MAX)
        op->holders[op->copies++] = (uint16_t)member;
}

static bool is_replica(const uint32_t *reps, size_t r, size_t m) {
    for (size_t i = 0; i < r; i++)
        if (reps[i] == m)
            return true;
    return false;
}

static void respond_rep(write_op *op, uint8_t flags, uint64_t version) {
    aq_node_put_rep rep;
    memset(&rep, 0, sizeof rep);
    rep.copies = op->copies;
    rep.wanted = op->wanted;
    rep.flags = flags;
    rep.version = version;
    rep.clock = op->n->hlc.last;
    rep.nholders = op->copies;
    memcpy(rep.holders, op->holders, op->copies * sizeof op->holders[0]);
    aq_wr w;
    aq_wr_init(&w);
    aq_node_put_rep_encode(&w, &rep);
    if (!w.ok) {
        aq_wr_free(&w);
        answer(op->to, AQ_ENOMEM, NULL, 0);
        return;
    }
    answer(op->to, 0, w.p, w.len);
}

/* The replica's refusal, with its name: the caller names the node that refused, not this one. */
static void respond_refusal(write_op *op) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_refusal_encode(&w, op->n->members[op->refused_by].conf->name);
    if (!w.ok) {
        aq_wr_free(&w);
        answer(op->to, op->forward_err, NULL, 0);
        return;
    }
    answer(op->to, op->forward_err, w.p, w.len);
}

static void write_finish(write_op *op) {
    aq_node *n = op->n;
    if (!op->coordinate) {
        if (op->local_err)
            answer(op->to, op->local_err, NULL, 0);
        else
            respond_rep(op,
                        (uint8_t)((op->local_stale ? AQ_REP_STALE : 0) |
                                  (op->local_found ? AQ_REP_FOUND : 0)),
                        op->local_stale ? op->held : op->version);
    } else if (op->local_err && op->copies == 0) {
        answer(op->to, op->local_err, NULL, 0);
    } else if (op->forward_err && op->method == AQ_M_PUT) {
        /* A live replica refused (full, corrupt, too late): the put failed, whatever else stored
         * it. */
        respond_refusal(op);
    } else if (op->method == AQ_M_RM && !op->found && !op->forward_err) {
        answer(op->to, AQ_ENOTFOUND, NULL, 0); /* removing an absent key: say so */
    } else {
        respond_rep(op, op->found ? AQ_REP_FOUND : 0, op->version);
    }
    aq_node_op_end(n);
}

/* The end of a round: another one above a newer version a replica holds, or the answer. */
static void round_end(write_op *op) {
    if (op->coordinate && op->stale_max && op->round < MAX_ROUNDS && !op->forward_err &&
        !op->local_err && (!op->deadline || aq_node_now_us(op->n) < op->deadline)) {
        if (op->lends) {
            op->round_waiting = true;
            return;
        }
        uint64_t v = aq_node_next_version(op->n);
        op->version = v > op->stale_max ? v : op->stale_max + 1;
        write_start_round(op);
        return;
    }
    if (op->coordinate && op->stale_max)
        aq_logf(op->n->log, AQ_LOG_WARN,
                "%s: a newer write held by a replica outran %d rounds; %u of %u copies hold this "
                "one",
                aq_node_method_name(op->method), op->round, op->copies, op->wanted);
    write_finish(op);
    if (op->lends)
        op->answered = true;
    else
        write_op_free(op);
}

static void outcome_done(write_op *op) {
    if (--op->pending == 0)
        round_end(op);
}

static void lend_done(write_op *op) {
    if (--op->lends > 0)
        return;
    if (op->round_waiting) {
        op->round_waiting = false;
        round_end(op);
    } else if (op->answered) {
        write_op_free(op);
    }
}

static void forward_done(void *ud, const aq_rpc_result *r) {
    forward_ctx *f = ud;
    write_op *op = f->op;
    aq_node *n = op->n;
    const char *name = n->members[f->member].conf->name;
    aq_node_put_rep rep;
    if (r->err == 0 && r->status == 0 && aq_node_put_rep_decode(r->data, r->len, &rep) == 0) {
        if (rep.clock)
            aq_node_observe(n, rep.clock, name);
        if (rep.flags & AQ_REP_STALE) {
            aq_node_observe(n, rep.version, name);
            if (rep.version > op->stale_max)
                op->stale_max = rep.version;
        } else if (rep.copies) {
            add_holder(op, f->member);
        }
        if (rep.flags & AQ_REP_FOUND)
            op->found = true;
    } else if (r->err == 0 && r->status == 0) {
        aq_logf(n->log, AQ_LOG_WARN, "%s sent a malformed %s reply; not counted as a copy", name,
                aq_node_method_name(op->method));
    } else if (r->err == 0 && r->status != AQ_ECLOSED) {
        op->forward_err = r->status;
        op->refused_by = (uint16_t)f->member;
        char buf[256];
        aq_logf(n->log, AQ_LOG_WARN, "%s", aq_rpc_result_describe(n->rpc, r, buf, sizeof buf));
    } else {
        /* Not a refusal of the value: the replica could not be reached, or it is stopping
         * (AQ_ECLOSED: it applies nothing new). Not a copy; the caller's write report says so. */
        char buf[256];
        aq_logf(n->log, AQ_LOG_WARN, "%s", aq_rpc_result_describe(n->rpc, r, buf, sizeof buf));
    }
    forward_ctx_unref(f);
    outcome_done(op);
}

static void inform_done(void *ud, const aq_rpc_result *r) {
    write_op *op = ud;
    aq_node_put_rep rep;
    /* A live copy removed there means the key existed (never a copy of the removal, though). */
    if (r->err == 0 && r->status == 0 && aq_node_put_rep_decode(r->data, r->len, &rep) == 0 &&
        (rep.flags & AQ_REP_FOUND))
        op->found = true;
    if (r->err) {
        char buf[256];
        aq_logf(op->n->log, AQ_LOG_WARN, "%s",
                aq_rpc_result_describe(op->n->rpc, r, buf, sizeof buf));
    }
    outcome_done(op);
}

/* A removal also goes to every other live node, flagged AQ_RM_IF_HELD: a node that repair gave a
 * copy while a replica was down replaces it with the removal at once, so no node lists or serves
 * the key after rm returns. Their answers are not copies of the removal. */
static void inform_others(write_op *op, const uint32_t *reps, size_t r) {
    aq_node *n = op->n;
    for (size_t m = 0; m < n->nmembers; m++) {
        bool replica = false;
        for (size_t i = 0; i < r; i++)
            replica |= reps[i] == m;
        if (replica || m == n->self || !aq_node_member_live(n, m) || !n->members[m].peer)
            continue;
        aq_wr w;
        aq_wr_init(&w);
        aq_node_rm_req_encode(&w, AQ_PUT_REPLICA | AQ_RM_IF_HELD, op->key, op->klen, op->version,
                              aq_node_deadline_for(n, m, op->deadline));
        if (!w.ok) {
            aq_wr_free(&w);
            continue;
        }
        op->pending++;
        aq_rpc_buf b = {w.p, w.len, free, w.p};
        int err = aq_rpc_call(n->rpc, n->members[m].peer, AQ_M_RM, b, AQ_NODE_CALL_TIMEOUT_US(n),
                              inform_done, op);
        if (err) {
            op->pending--;
            aq_logf(n->log, AQ_LOG_WARN, "cannot tell %s of a removal: %s",
                    n->members[m].conf->name, aq_strerror(err));
        }
    }
}

static void forward_all(write_op *op) {
    aq_node *n = op->n;
    uint32_t reps[n->nmembers];
    const uint8_t *key = op->method == AQ_M_PUT ? op->put.key : op->key;
    size_t klen = op->method == AQ_M_PUT ? op->put.klen : op->klen;
    size_t r = aq_node_replicas(n, key, klen, reps);
    op->wanted = (uint8_t)r;
    op->msg[0] |= AQ_PUT_REPLICA;
    aq_node_u64_at(op->msg, op->version_off, op->version);
    if (op->method == AQ_M_RM)
        inform_others(op, reps, r);
    bool lent = false;
    for (size_t i = 0; i < r; i++) {
        size_t m = reps[i];
        if (m == n->self || !aq_node_member_live(n, m) || !n->members[m].peer)
            continue;
        forward_ctx *f = calloc(1, sizeof *f);
        /* The deadline is the replica's own clock's: each forward after the first needs its own
         * copy of the request. */
        uint8_t *buf = op->msg;
        if (f && lent) {
            f->copy = buf = malloc(op->len);
            if (buf)
                memcpy(buf, op->msg, op->len);
        }
        if (!f || !buf) {
            free(f);
            aq_logf(n->log, AQ_LOG_WARN, "cannot forward %s to %s: %s",
                    aq_node_method_name(op->method), n->members[m].conf->name,
                    aq_strerror(AQ_ENOMEM));
            continue;
        }
        lent = true;
        f->op = op;
        f->member = m;
        f->refs = 2;
        aq_node_u64_at(buf, op->deadline_off, aq_node_deadline_for(n, m, op->deadline));
        op->pending++; /* the call's outcome */
        op->lends++;   /* the lent request bytes */
        aq_rpc_buf b = {buf, op->len, forward_release, f};
        uint64_t timeout = AQ_NODE_CALL_TIMEOUT_US(n);
        int err = aq_rpc_call(n->rpc, n->members[m].peer, op->method, b, timeout, forward_done, f);
        if (err) {
            op->pending--; /* no outcome comes; rpc released the lent bytes already (its contract)
                            */
            forward_ctx_unref(f);
            aq_logf(n->log, AQ_LOG_WARN, "cannot forward %s to %s: %s",
                    aq_node_method_name(op->method), n->members[m].conf->name, aq_strerror(err));
        }
    }
}

/* Both writes are versioned puts, so the store keeps whichever orders last: a removal stores an
 * empty TOMBSTONE chunk. The deadline is checked here, when the write is about to be applied after
 * any wait in the queue. A removal flagged AQ_RM_IF_HELD (to a node outside the key's replicas) is
 * stored only over a live copy held here that orders before it, and otherwise answers
 * AQ_ENOTFOUND: it never leaves a marker where there was nothing to remove. */
static void write_work(uv_work_t *w) {
    write_op *op = w->data;
    aq_node *n = op->n;
    aq_chunk_store *s = n->store;
    uint64_t now = aq_node_now_us(n);
    if (op->deadline && now > op->deadline) {
        op->local_err = AQ_EDEADLINE;
        op->late_us = now - op->deadline;
        return;
    }
    /* A version this node issues is durable below the ceiling before anything stores it. */
    if (op->coordinate && (op->local_err = aq_hlc_ceiling_cover(&n->ceiling, op->version)) != 0)
        return;
    const uint8_t *key = op->method == AQ_M_PUT ? op->put.key : op->key;
    size_t klen = op->method == AQ_M_PUT ? op->put.klen : op->klen;
    const void *val = NULL;
    size_t vlen = 0;
    uint8_t kind = AQ_KIND_TOMBSTONE;
    aq_chunk_digest d = aq_chunk_digest_of(NULL, 0);
    if (op->method == AQ_M_PUT) {
        val = op->put.value;
        vlen = op->put.vlen;
        kind = op->put.kind;
        d = to_chunk_digest(op->put.digest);
    } else {
        aq_chunk_ref *had = NULL;
        bool held = aq_chunk_get(s, key, klen, &had) == 0;
        bool live = held && aq_chunk_ref_kind(had) != AQ_KIND_TOMBSTONE;
        bool older = held && aq_chunk_write_cmp(aq_chunk_ref_version(had), aq_chunk_ref_digest(had),
                                                aq_chunk_ref_kind(had), op->version, d,
                                                AQ_KIND_TOMBSTONE) < 0;
        aq_chunk_ref_release(had);
        op->local_found = live;
        if ((op->rm_flags & AQ_RM_IF_HELD) && !(live && older)) {
            op->local_err = AQ_ENOTFOUND;
            return;
        }
    }
    /* The store adopts the value where it lies in the request: one more holder of the bytes. */
    aq_chunk_adopt adopt = {msg_share_unref, op->share};
    const aq_chunk_adopt *ad = NULL;
    if (op->share && vlen) {
        atomic_fetch_add_explicit(&op->share->refs, 1, memory_order_relaxed);
        ad = &adopt;
    }
    int err;
    if (op->coordinate) {
        err = aq_chunk_put_above_adopt(s, key, klen, val, vlen, kind, &d, &op->version, ad,
                                       op->nowait ? AQ_CHUNK_NOWAIT : 0);
        /* Above the stored version may be above the ceiling covered so far. */
        if (!err)
            err = aq_hlc_ceiling_cover(&n->ceiling, op->version);
    } else {
        err = aq_chunk_put_versioned_adopt(s, key, klen, val, vlen, kind, &d, op->version,
                                           &op->held, ad, op->nowait ? AQ_CHUNK_NOWAIT : 0);
        op->local_stale = err == AQ_ESTALE;
        if (op->local_stale) {
            err = 0;
            op->local_found = false;
        }
    }
    op->local_err = err;
}

static void write_after(uv_work_t *w, int status) {
    write_op *op = w->data;
    aq_node *n = op->n;
    if (status)
        op->local_err = status;
    if (op->local_err == AQ_EDEADLINE)
        aq_logf(n->log, AQ_LOG_WARN,
                "%s refused: its caller's deadline passed %llu ms before this node could apply it",
                aq_node_method_name(op->method), (unsigned long long)(op->late_us / 1000));
    if (op->coordinate) {
        aq_node_observe(n, op->version, "this node's store");
        uint32_t reps[n->nmembers];
        size_t r = aq_node_replicas(n, op->method == AQ_M_PUT ? op->put.key : op->key,
                                    op->method == AQ_M_PUT ? op->put.klen : op->klen, reps);
        if (op->local_err == 0 && is_replica(reps, r, n->self))
            add_holder(op, n->self);
        op->found |= op->local_found;
        /* A coordinator that could not store locally still forwards: other replicas may take it.
         * But a value that failed its digest, is refused for its key or size, or came too late is
         * refused everywhere: don't spread it. */
        bool spreadable =
            op->local_err == 0 || op->local_err == AQ_EFULL || op->local_err == AQ_EIO;
        if (spreadable)
            forward_all(op);
        else
            op->wanted = (uint8_t)r;
    } else {
        op->wanted = 1;
        if (op->local_err == 0 && !op->local_stale)
            add_holder(op, n->self);
    }
    outcome_done(op);
}

/* A small write to a memory-only store runs on the loop: hashing a few KiB and an index update
 * take less time than the hand-off to the threadpool and back, which under many small writes was
 * most of a put's cost. Anything that may touch the disk (a data_dir, the clock ceiling file) or
 * hash a large value still goes to the threadpool, and so does a write whose locks another thread
 * holds (write_start_round). */
static bool write_inline(const write_op *op) {
    const aq_node *n = op->n;
    if (n->members[n->self].conf->data_dir)
        return false;
    return op->method != AQ_M_PUT || op->put.vlen <= AQ_NODE_INLINE_WRITE_MAX;
}

static void write_start_round(write_op *op) {
    op->round++;
    op->pending = 1;
    op->local_err = 0;
    op->local_stale = false;
    op->copies = 0;
    op->stale_max = 0;
    op->work.data = op;
    if (write_inline(op)) {
        /* Never wait on the loop for a lock another thread holds (a scan, another writer of the
         * stripe): the store answers AQ_EBUSY, having stored nothing, and the threadpool waits. */
        op->nowait = true;
        write_work(&op->work);
        op->nowait = false;
        if (op->local_err != AQ_EBUSY) {
            write_after(&op->work, 0);
            return;
        }
        op->local_err = 0;
        op->local_found = false;
    }
    int err = uv_queue_work(op->n->loop, &op->work, write_work, write_after);
    if (err) {
        op->local_err = err;
        write_after(&op->work, 0);
    }
}

/* Starts the write method (PUT or RM) of msg (malloc'd, taken; NULL when it could not be had),
 * answered to `to`. e2e_from: where the request's bytes that rpc did not checksum start (len:
 * none); only a PUT's value may be among them, which the store checks against the digest. */
static void write_begin(aq_node *n, write_to to, uint16_t method, uint8_t *msg, size_t len,
                        size_t e2e_from) {
    write_op *op = calloc(1, sizeof *op);
    if (!op) {
        free(msg);
        answer(to, AQ_ENOMEM, NULL, 0);
        return;
    }
    op->n = n;
    op->to = to;
    op->method = method;
    op->msg = msg;
    op->len = len;
    int err = AQ_EPROTO;
    uint8_t flags = 0;
    if (op->method == AQ_M_PUT) {
        if (op->msg && (err = aq_node_put_req_decode(op->msg, op->len, &op->put)) == 0) {
            if (!key_ok(op->put.key, op->put.klen))
                err = AQ_EKEY;
            else if (op->put.vlen > AQ_NODE_CHUNK_MAX)
                err = AQ_ETOOBIG;
            flags = op->put.flags;
            op->version = op->put.version;
            op->deadline = op->put.deadline;
            op->version_off = op->put.version_off;
            op->deadline_off = op->put.version_off + 8;
        }
    } else {
        if (op->msg &&
            (err = aq_node_rm_req_decode(op->msg, op->len, &op->rm_flags, &op->key, &op->klen,
                                         &op->version, &op->deadline)) == 0 &&
            !key_ok(op->key, op->klen))
            err = AQ_EKEY;
        flags = op->rm_flags;
    }
    if (!err && e2e_from < len &&
        (op->method != AQ_M_PUT || (size_t)(op->put.value - op->msg) > e2e_from))
        err = AQ_EPROTO;
    /* An MPUT carries a client's puts only: forwards between nodes go one by one. */
    if (!err && to.batch && (flags & AQ_PUT_REPLICA))
        err = AQ_EPROTO;
    if (!err && op->method == AQ_M_PUT) {
        op->share = malloc(sizeof *op->share);
        if (op->share) {
            atomic_init(&op->share->refs, 1);
            op->share->msg = op->msg;
        } else {
            err = AQ_ENOMEM;
        }
    }
    if (err) {
        write_op_free(op);
        answer(to, err, NULL, 0);
        return;
    }
    op->coordinate = !(flags & AQ_PUT_REPLICA);
    if (op->method == AQ_M_RM) {
        /* The forwards carry the version and a deadline: one layout, whatever the client sent. */
        aq_wr w;
        aq_wr_init(&w);
        aq_node_rm_req_encode(&w, flags, op->key, op->klen, op->version, op->deadline);
        if (!w.ok) {
            aq_wr_free(&w);
            write_op_free(op);
            answer(to, AQ_ENOMEM, NULL, 0);
            return;
        }
        free(op->msg);
        op->msg = w.p;
        op->len = w.len;
        op->key = op->msg + 2; /* flags, key length, key */
        op->deadline_off = aq_node_rm_req_deadline_off(op->klen);
        op->version_off = op->deadline_off - 8;
    }
    /* A replica stores the version it is given; a coordinator issues one (a client's own version
     * is a floor), above the one it stores for the key (write_work). */
    if (!op->coordinate && op->version)
        aq_node_observe(n, op->version, "a coordinator");
    if (op->coordinate || !op->version) {
        uint64_t v = aq_node_next_version(n);
        op->version = op->version > v ? op->version : v;
    }
    aq_node_op_begin(n);
    write_start_round(op);
}

static void handle_write(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    size_t first_len;
    const uint8_t *first = aq_rpc_incoming_data(in, &first_len);
    count_run(n, !(first_len && (first[0] & AQ_PUT_REPLICA)));
    if (refuse_if_stopping(n, in))
        return;
    size_t e2e_from = aq_rpc_incoming_e2e_from(in);
    size_t len;
    uint8_t *msg = aq_rpc_incoming_take(in, &len);
    write_begin(n, (write_to){.in = in}, aq_rpc_incoming_method(in), msg, len, e2e_from);
}

/* One slot of an MPUT filled (or the handler done starting them): the call is answered once all
 * are. */
static void mput_release(mput_call *m) {
    if (--m->left)
        return;
    size_t total = 2;
    for (uint32_t i = 0; i < m->count; i++)
        total += aq_node_mput_rep_entry_len(m->slots[i].len);
    aq_wr w;
    aq_wr_init_cap(&w, total);
    aq_node_mstat_rep_head(&w, (uint16_t)m->count);
    for (uint32_t i = 0; i < m->count; i++) {
        aq_node_mput_rep_entry(&w, m->slots[i].status, m->slots[i].body, m->slots[i].len);
        free(m->slots[i].body);
    }
    aq_rpc_incoming *in = m->in;
    free(m);
    respond_wr(in, &w);
}

/* MPUT: each item is a client's PUT of its own (versions, forwards, deadline and answer as a PUT
 * call's), started in order; one reply holds every answer, in order, once all are in. A request
 * that cannot be read is refused whole, before any item starts. */
static void handle_mput(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    count_run(n, true);
    if (refuse_if_stopping(n, in))
        return;
    size_t len;
    const uint8_t *p = aq_rpc_incoming_data(in, &len);
    aq_rd r;
    uint32_t count;
    if (aq_node_mput_req_begin(&r, p, len, &count) != 0) {
        respond_err(in, AQ_EPROTO);
        return;
    }
    /* Every item's bounds first: nothing starts from a request that is cut short. */
    aq_rd check = r;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *item;
        size_t ilen;
        if (aq_node_mput_req_next(&check, &item, &ilen) != 0) {
            respond_err(in, AQ_EPROTO);
            return;
        }
    }
    if (!aq_rd_done(&check)) {
        respond_err(in, AQ_EPROTO);
        return;
    }
    mput_call *m = calloc(1, sizeof *m + count * sizeof m->slots[0]);
    if (!m) {
        respond_err(in, AQ_ENOMEM);
        return;
    }
    m->in = in;
    m->count = count;
    m->left = count + 1;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *item;
        size_t ilen;
        (void)aq_node_mput_req_next(&r, &item, &ilen);
        write_to to = {.batch = m, .item = i};
        uint8_t *msg = malloc(ilen ? ilen : 1);
        if (!msg) {
            answer(to, AQ_ENOMEM, NULL, 0);
            continue;
        }
        memcpy(msg, item, ilen);
        write_begin(n, to, AQ_M_PUT, msg, ilen, ilen);
    }
    mput_release(m);
}

/* ---- GET, STAT, LIST: reads on the loop ---- */

/* Decodes a key request and takes a reference to the chunk; on any failure answers the call itself
 * and returns NULL. */
static aq_chunk_ref *lookup(aq_node *n, aq_rpc_incoming *in) {
    count_run(n, true);
    size_t len, klen;
    uint8_t flags;
    const uint8_t *key;
    const uint8_t *p = aq_rpc_incoming_data(in, &len);
    if (aq_node_key_req_decode(p, len, &flags, &key, &klen) != 0) {
        respond_err(in, AQ_EPROTO);
        return NULL;
    }
    aq_chunk_ref *ref;
    int err = flags & AQ_READ_TOMBSTONES ? aq_chunk_get(n->store, key, klen, &ref)
                                         : aq_node_get_live(n, key, klen, &ref);
    if (err) {
        respond_err(in, err);
        return NULL;
    }
    return ref;
}

static void release_ref(void *ref) {
    aq_chunk_ref_release(ref);
}

static void handle_get(void *ud, aq_rpc_incoming *in) {
    aq_chunk_ref *ref = lookup(ud, in);
    if (!ref)
        return;
    /* The reply is the head, then the value lent straight from the store: the reference is held
     * until the rpc releases the reply (replies are resent until acknowledged), so the value is
     * not copied on the loop. */
    aq_wr w;
    aq_wr_init_cap(&w, AQ_PUT_HEAD_MAX);
    aq_node_get_rep_head(&w, aq_chunk_ref_kind(ref), to_node_digest(aq_chunk_ref_digest(ref)),
                         aq_chunk_ref_version(ref));
    if (!w.ok) {
        aq_wr_free(&w);
        aq_chunk_ref_release(ref);
        respond_err(in, AQ_ENOMEM);
        return;
    }
    /* The value is the reply's end-to-end tail: a caller that checks it against the digest in
     * the head (aq_rpc_call_e2e) gets it without the pipe's own checksum over it. */
    aq_rpc_respond2_e2e(
        in, 0, (aq_rpc_buf){w.p, w.len, free, w.p},
        (aq_rpc_buf){aq_chunk_ref_data(ref), aq_chunk_ref_len(ref), release_ref, ref});
}

static void handle_stat(void *ud, aq_rpc_incoming *in) {
    aq_chunk_ref *ref = lookup(ud, in);
    if (!ref)
        return;
    aq_wr w;
    aq_wr_init(&w);
    aq_node_stat_rep_encode(&w, aq_chunk_ref_kind(ref), aq_chunk_ref_len(ref),
                            to_node_digest(aq_chunk_ref_digest(ref)), aq_chunk_ref_version(ref));
    aq_chunk_ref_release(ref);
    respond_wr(in, &w);
}

/* MSTAT and MGET: STAT's or GET's answer for each key, in order; a malformed request is refused
 * whole. MGET copies the values into one reply of at most AQ_MGET_REPLY_MAX bytes (a copy of at
 * most that on the loop, like a pipe read); a key whose value would go past it is answered
 * AQ_ETOOBIG. */
static void answer_many(aq_node *n, aq_rpc_incoming *in, bool values) {
    count_run(n, true);
    size_t len;
    const uint8_t *p = aq_rpc_incoming_data(in, &len);
    aq_rd r;
    uint8_t flags;
    uint32_t count;
    if (aq_node_mstat_req_begin(&r, p, len, &flags, &count) != 0) {
        respond_err(in, AQ_EPROTO);
        return;
    }
    aq_wr w;
    aq_wr_init_cap(&w, 2 + (size_t)count * (values ? 4 : 4 + 1 + 8 + 16 + 8));
    aq_node_mstat_rep_head(&w, (uint16_t)count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *key;
        size_t klen;
        if (aq_node_mstat_req_next(&r, &key, &klen) != 0) {
            aq_wr_free(&w);
            respond_err(in, AQ_EPROTO);
            return;
        }
        aq_chunk_ref *ref;
        int err = flags & AQ_READ_TOMBSTONES ? aq_chunk_get(n->store, key, klen, &ref)
                                             : aq_node_get_live(n, key, klen, &ref);
        aq_node_digest none = {0, 0};
        if (err) {
            if (values)
                aq_node_mget_rep_entry(&w, err, 0, none, 0, NULL, 0);
            else
                aq_node_mstat_rep_entry(&w, err, 0, 0, none, 0);
            continue;
        }
        uint8_t kind = aq_chunk_ref_kind(ref);
        size_t vlen = aq_chunk_ref_len(ref);
        aq_node_digest d = to_node_digest(aq_chunk_ref_digest(ref));
        uint64_t version = aq_chunk_ref_version(ref);
        if (!values)
            aq_node_mstat_rep_entry(&w, 0, kind, vlen, d, version);
        /* Room for this entry and the 4-byte answers of the keys after it. */
        else if (w.len + aq_node_mget_rep_entry_len(vlen) + 4 * (size_t)(count - 1 - i) >
                 AQ_MGET_REPLY_MAX)
            aq_node_mget_rep_entry(&w, AQ_ETOOBIG, 0, none, 0, NULL, 0);
        else
            aq_node_mget_rep_entry(&w, 0, kind, d, version, aq_chunk_ref_data(ref), vlen);
        aq_chunk_ref_release(ref);
    }
    if (!aq_rd_done(&r)) {
        aq_wr_free(&w);
        respond_err(in, AQ_EPROTO);
        return;
    }
    respond_wr(in, &w);
}

static void handle_mget(void *ud, aq_rpc_incoming *in) {
    answer_many(ud, in, true);
}

static void handle_mstat(void *ud, aq_rpc_incoming *in) {
    answer_many(ud, in, false);
}

typedef struct list_acc {
    aq_node *node;
    const aq_node_list_req *q;
    aq_node_list_entry *e;
    size_t n, cap;
    bool oom;
} list_acc;

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static int list_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                   uint8_t kind) {
    list_acc *a = ud;
    if ((kind == AQ_KIND_TOMBSTONE && !(a->q->flags & AQ_LIST_TOMBSTONES)) ||
        (!(a->q->flags & AQ_LIST_INTERNAL) && klen && key[0] == AQ_NODE_INTERNAL_PREFIX[0]))
        return 0;
    if (a->q->alen && keycmp(key, klen, a->q->after, a->q->alen) <= 0)
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        aq_node_list_entry *ne = realloc(a->e, cap * sizeof *ne);
        if (!ne) {
            a->oom = true;
            return 1;
        }
        a->e = ne;
        a->cap = cap;
    }
    uint64_t version = 0;
    aq_chunk_ref *ref;
    if (aq_chunk_get(a->node->store, key, klen, &ref) == 0) {
        /* The walk's snapshot and this lookup may see different writes: report the snapshot's
         * copy only with its own version. */
        if (aq_chunk_digest_equal(aq_chunk_ref_digest(ref), d))
            version = aq_chunk_ref_version(ref);
        aq_chunk_ref_release(ref);
    }
    uint8_t *k = malloc(klen);
    if (!k) {
        a->oom = true;
        return 1;
    }
    memcpy(k, key, klen);
    a->e[a->n++] = (aq_node_list_entry){kind, k, klen, size, to_node_digest(d), version};
    return 0;
}

static int entry_cmp(const void *x, const void *y) {
    const aq_node_list_entry *a = x, *b = y;
    return keycmp(a->key, a->klen, b->key, b->klen);
}

static void handle_list(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    count_run(n, false);
    size_t len;
    aq_node_list_req q;
    const uint8_t *p = aq_rpc_incoming_data(in, &len);
    if (aq_node_list_req_decode(p, len, &q) != 0 || q.max == 0) {
        respond_err(in, AQ_EPROTO);
        return;
    }
    list_acc a = {n, &q, NULL, 0, 0, false};
    int err = aq_chunk_iterate(n->store, q.prefix, q.plen, list_cb, &a);
    if (!err && a.oom)
        err = AQ_ENOMEM;
    if (!err) {
        if (a.n)
            qsort(a.e, a.n, sizeof *a.e, entry_cmp);
        /* A page fits comfortably in one pipe message: at most max entries and about 1 MiB. */
        size_t take = a.n < q.max ? a.n : q.max;
        if (take > 4000)
            take = 4000;
        aq_wr w;
        aq_wr_init(&w);
        aq_node_list_rep_head(&w, take < a.n, (uint32_t)take);
        for (size_t i = 0; i < take; i++)
            aq_node_list_rep_entry(&w, &a.e[i]);
        respond_wr(in, &w);
    } else {
        respond_err(in, err);
    }
    for (size_t i = 0; i < a.n; i++)
        free((void *)a.e[i].key);
    free(a.e);
}

/* ---- STATUS ---- */

void aq_node_status_fill(aq_node *n, aq_node_status_node *s, aq_node_status_peer *peers) {
    const aq_member *me = &n->members[n->self];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", me->conf->name);
    snprintf(s->address, sizeof s->address, "%s", me->conf->address);
    s->incarnation = aq_rpc_incarnation(n->rpc);
    s->uptime_ms = (aq_node_now_us(n) - n->start_us) / 1000;
    aq_chunk_stats cs;
    aq_chunk_store_stats(n->store, &cs);
    s->chunks = cs.chunks - cs.by_kind[AQ_KIND_TOMBSTONE];
    s->bytes = cs.bytes;
    s->allocated = cs.allocated;
    s->memory_max = me->conf->memory_max;
    aq_rpc_stats rs;
    aq_rpc_stats_get(n->rpc, &rs);
    s->dropped_malformed = rs.dropped_malformed;
    s->dropped_foreign = rs.dropped_foreign;
    s->dropped_auth = rs.dropped_auth;
    s->authenticated = aq_rpc_authenticated(n->rpc) ? 1 : 0;
    s->encrypted = aq_rpc_encrypted(n->rpc) ? 1 : 0;
    s->handled_total = n->handled_total;
    s->handled_client = n->handled_client;
    aq_rpc_uv_stats us;
    aq_rpc_uv_stats_get(n->uv, &us);
    s->conns_inbound = us.conns_inbound;
    s->conns_refused = us.conns_refused;
    s->hello_timeouts = us.hello_timeouts;
    s->hello_evicted = us.hello_evicted;
    s->npeers = (uint32_t)(n->nmembers - 1);
    s->mono_us = aq_node_now_us(n);
    uint64_t now = aq_node_now_us(n);
    size_t j = 0;
    for (size_t i = 0; i < n->nmembers; i++) {
        const aq_member *m = &n->members[i];
        if (m->is_self)
            continue;
        aq_node_status_peer *sp = &peers[j++];
        memset(sp, 0, sizeof *sp);
        snprintf(sp->name, sizeof sp->name, "%s", m->conf->name);
        snprintf(sp->address, sizeof sp->address, "%s", m->conf->address);
        sp->state = (uint8_t)m->state;
        sp->incarnation = m->incarnation;
        sp->since_heard_ms = m->last_heard_us ? (now - m->last_heard_us) / 1000 : UINT64_MAX;
        if (m->peer) {
            aq_rpc_peer_stats ps;
            aq_rpc_peer_stats_get(m->peer, &ps);
            sp->rtt_us = ps.srtt_us;
            sp->calls = ps.calls;
            sp->retransmits = ps.retransmits;
            sp->dup_suppressed = ps.dup_suppressed;
            sp->busy_seen = ps.busy_seen;
            sp->timeouts = ps.timeouts;
            sp->pipe_connects = ps.pipe_connects;
            sp->pipe_failures = ps.pipe_failures;
            sp->bytes_out = ps.bytes_out;
            sp->bytes_in = ps.bytes_in;
        }
    }
}

static void handle_status(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    count_run(n, false);
    aq_node_status_node s;
    aq_node_status_peer *peers = calloc(n->nmembers, sizeof *peers);
    if (!peers) {
        respond_err(in, AQ_ENOMEM);
        return;
    }
    aq_node_status_fill(n, &s, peers);
    aq_wr w;
    aq_wr_init(&w);
    aq_node_status_rep_node(&w, &s);
    for (uint32_t j = 0; j < s.npeers; j++)
        aq_node_status_rep_peer(&w, &peers[j]);
    aq_node_status_rep_self(&w, (uint32_t)n->self);
    size_t qlen;
    const uint8_t *q = aq_rpc_incoming_data(in, &qlen);
    if (qlen >= 1 && (q[0] & AQ_NODE_STATUS_ASK_FEATURES))
        aq_node_status_rep_features(&w, AQ_NODE_FEATURE_TAILS);
    free(peers);
    respond_wr(in, &w);
}

void aq_node_register_handlers(aq_node *n) {
    aq_rpc_handle(n->rpc, AQ_M_PUT, handle_write, n);
    aq_rpc_method_e2e(n->rpc, AQ_M_PUT); /* the store checks the value against its digest */
    aq_rpc_handle(n->rpc, AQ_M_RM, handle_write, n);
    aq_rpc_handle(n->rpc, AQ_M_GET, handle_get, n);
    aq_rpc_handle(n->rpc, AQ_M_STAT, handle_stat, n);
    aq_rpc_handle(n->rpc, AQ_M_MSTAT, handle_mstat, n);
    aq_rpc_handle(n->rpc, AQ_M_MGET, handle_mget, n);
    aq_rpc_handle(n->rpc, AQ_M_MPUT, handle_mput, n);
    aq_rpc_handle(n->rpc, AQ_M_LIST, handle_list, n);
    aq_rpc_handle(n->rpc, AQ_M_STATUS, handle_status, n);
    aq_node_register_repair(n);
    aq_node_register_frame(n);
}
