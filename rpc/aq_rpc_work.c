/* The callee side: a CALL for a new task runs its handler once (the work table remembers it);
 * a duplicate gets PENDING while it runs and the cached reply once it is done; the reply is resent
 * until the caller's ACKACK retires it, or it expires. */
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_int.h"

void aq_rpc__work_free(aq_rpc *rpc, aq_rpc_work *w) {
    aq_rpc_heap_remove(&rpc->heap, &w->tn);
    aq_rpc__pipe_forget(w->peer, &w->om);
    aq_rpc__blob_unref(w->reply);
    free(w);
    aq_rpc__timed_del(rpc);
}

/* The task is finished for good: forget its entry, remember its number. */
static void work_retire(aq_rpc *rpc, aq_rpc_work *w) {
    aq_rpc_peer *p = w->peer;
    aq_rpc_map_del(&p->work, w->task);
    if (aq_rpc_iset_add(&p->done, w->task) != 0)
        aq_rpc__logf(rpc, 1, "no memory to remember task %llu from %s as done",
                     (unsigned long long)w->task, aq_rpc_peer_name(p));
    aq_rpc__work_free(rpc, w);
}

void aq_rpc__incoming_free(aq_rpc *rpc, aq_rpc_incoming *in) {
    aq_list_del(&in->link);
    in->peer->nincoming--;
    in->peer->touched_us = aq_rpc__now(rpc);
    free(in->data);
    free(in);
    if (rpc->st.handlers_running)
        rpc->st.handlers_running--;
}

aq_rpc_peer *aq_rpc_incoming_peer(const aq_rpc_incoming *in) {
    return in->peer;
}

uint16_t aq_rpc_incoming_method(const aq_rpc_incoming *in) {
    return in->method;
}

const uint8_t *aq_rpc_incoming_data(const aq_rpc_incoming *in, size_t *len) {
    if (len)
        *len = in->data ? in->len : 0;
    return in->data;
}

size_t aq_rpc_incoming_e2e_from(const aq_rpc_incoming *in) {
    return in->e2e_from;
}

void *aq_rpc_incoming_take(aq_rpc_incoming *in, size_t *len) {
    void *d = in->data;
    if (len)
        *len = d ? in->len : 0;
    in->data = NULL;
    in->len = 0;
    return d;
}

static void reply_send(aq_rpc *rpc, aq_rpc_work *w) {
    aq_rpc_peer *p = w->peer;
    uint64_t now = aq_rpc__now(rpc);
    w->sends++;
    aq_rpc__send_msg(rpc, p, &w->om);
    uint64_t next =
        now + aq_rpc_cc_backoff(&p->cc, w->sends) + aq_rpc__transfer_allowance(p, w->reply->len);
    aq_rpc_heap_set(&rpc->heap, &w->tn, next < w->expire_us ? next : w->expire_us);
}

/* Both forms of respond: the reply is head followed by body (body.len 0 for one piece); tail: body
 * is the reply's end-to-end tail. */
static void respond(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body, bool tail) {
    aq_rpc *rpc = in->rpc;
    aq_rpc_work *w = in->w;
    size_t len = head.len + body.len;
    if (!w || len > AQ_RPC_MAX_PAYLOAD || len < head.len) {
        aq_rpc__buf_release(head);
        aq_rpc__buf_release(body);
        if (w) {
            /* A reply that cannot be sent becomes an error status the caller can read. */
            aq_rpc__logf(rpc, 1, "reply of %zu bytes to %s is too big", len,
                         aq_rpc_peer_name(w->peer));
            aq_rpc_respond(in, AQ_ETOOBIG, (aq_rpc_buf){0});
            return;
        }
        aq_rpc__incoming_free(rpc, in);
        return;
    }
    aq_rpc_peer *p = w->peer;
    if (rpc->observe_fn)
        rpc->observe_fn(rpc->observe_ud, AQ_RPC_OBS_HANDLED, w->method, status,
                        aq_rpc__now(rpc) - in->start_us);
    w->reply = body.len ? aq_rpc__blob_new2(head, body) : aq_rpc__blob_new(head);
    if (!w->reply) {
        aq_rpc__buf_release(head);
        aq_rpc__buf_release(body);
        w->reply = aq_rpc__blob_new((aq_rpc_buf){0});
        status = AQ_ENOMEM;
        if (!w->reply) {
            /* Not even an empty reply: let the caller's resend find the task gone. */
            p->running--;
            aq_rpc_map_del(&p->work, w->task);
            aq_rpc__work_free(rpc, w);
            aq_rpc__incoming_free(rpc, in);
            aq_rpc__settle(rpc);
            return;
        }
    }
    if (tail && body.len && w->reply->len > head.len)
        w->reply->e2e_from = head.len;
    w->state = AQ_WORK_DONE;
    w->in = NULL;
    w->status = status;
    w->om.kind = AQ_RPC_K_REPLY;
    w->om.task = w->task;
    w->om.method = w->method;
    w->om.status = status;
    w->om.blob = w->reply;
    w->pipe = !aq_rpc__fits_dgram(w->reply->len);
    w->expire_us = aq_rpc__now(rpc) + rpc->cfg.reply_cache_us;
    p->running--;
    aq_rpc__incoming_free(rpc, in);
    reply_send(rpc, w);
    aq_rpc__settle(rpc);
}

void aq_rpc_respond(aq_rpc_incoming *in, int status, aq_rpc_buf reply) {
    respond(in, status, reply, (aq_rpc_buf){0}, false);
}

static void respond2(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body, bool tail) {
    size_t len = head.len + body.len;
    if (len < head.len || len > AQ_RPC_MAX_PAYLOAD) {
        respond(in, status, head, body, false); /* refused as aq_rpc_respond refuses it */
        return;
    }
    if (body.len == 0 || head.len == 0) {
        aq_rpc_buf one = head.len ? head : body;
        aq_rpc__buf_release(head.len ? body : head);
        respond(in, status, one, (aq_rpc_buf){0}, false);
        return;
    }
    if (len <= AQ_RPC_PIPE_SMALL_FRAG) {
        /* Small: a datagram or one small pipe frame carries it, so join the pieces (a copy this
         * size costs less than a second fragment). */
        uint8_t *p = malloc(len);
        if (!p) {
            aq_rpc__buf_release(head);
            aq_rpc__buf_release(body);
            respond(in, AQ_ENOMEM, (aq_rpc_buf){0}, (aq_rpc_buf){0}, false);
            return;
        }
        memcpy(p, head.data, head.len);
        memcpy(p + head.len, body.data, body.len);
        aq_rpc__buf_release(head);
        aq_rpc__buf_release(body);
        respond(in, status, (aq_rpc_buf){p, len, free, p}, (aq_rpc_buf){0}, false);
        return;
    }
    respond(in, status, head, body, tail);
}

void aq_rpc_respond2(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body) {
    respond2(in, status, head, body, false);
}

void aq_rpc_respond2_e2e(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body) {
    respond2(in, status, head, body, true);
}

/* Retry-after for BUSY: about one round trip (half the RTO floor before any sample), so the
 * caller comes back once some running handlers had time to finish. */
uint32_t aq_rpc__busy_hint_ms(aq_rpc_peer *p) {
    uint64_t us = p->cc.have_rtt ? p->cc.srtt : p->cc.rto_min / 2;
    uint64_t ms = us / 1000;
    return ms ? (uint32_t)(ms > 1000 ? 1000 : ms) : 1;
}

void aq_rpc_respond_busy(aq_rpc_incoming *in, uint32_t retry_after_ms) {
    aq_rpc *rpc = in->rpc;
    aq_rpc_work *w = in->w;
    if (w) {
        aq_rpc_peer *p = w->peer;
        p->running--;
        p->st.busy_sent++;
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_BUSY, w->task, w->method,
                           (int32_t)(retry_after_ms > INT32_MAX ? INT32_MAX : retry_after_ms), NULL,
                           0);
        aq_rpc_map_del(&p->work, w->task);
        aq_rpc__work_free(rpc, w);
    }
    aq_rpc__incoming_free(rpc, in);
    aq_rpc__settle(rpc);
}

bool aq_rpc__task_known(aq_rpc_peer *p, uint64_t task) {
    return aq_rpc_map_get(&p->work, task) || aq_rpc_iset_contains(&p->done, task);
}

/* A CALL for a task we have seen: never run it again. */
void aq_rpc__call_duplicate(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h) {
    aq_rpc_work *w = aq_rpc_map_get(&p->work, h->task);
    p->st.dup_suppressed++;
    if (w && w->state == AQ_WORK_DONE && !w->om.queued) {
        p->st.retransmits++;
        reply_send(rpc, w);
    } else if (w) {
        /* Running, or its reply is still on its way through the pipe. */
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_PENDING, h->task, h->method, 0, NULL, 0);
    } else {
        /* Done, and its reply was acknowledged or expired unacknowledged. */
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_NACK, h->task, h->method, AQ_ETIMEDOUT, NULL, 0);
    }
}

void aq_rpc__call_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                           uint8_t *owned, uint32_t e2e_from) {
    if (aq_rpc__task_known(p, h->task)) {
        aq_rpc__call_duplicate(rpc, p, h);
        free(owned);
        return;
    }
    aq_rpc_method_ent *e = aq_rpc__method_ent(rpc, h->method, false);
    if (e2e_from < h->msg_len && (!e || !e->e2e)) {
        /* Bytes without a checksum for a handler that does not check them: not acted on, as a
         * frame failing its checksum is not (the caller's core should never send them). */
        rpc->st.dropped_malformed++;
        free(owned);
        return;
    }
    if (!e || !e->fn) {
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_NACK, h->task, h->method, AQ_ENOMETHOD, NULL, 0);
        free(owned);
        return;
    }
    if (p->running >= rpc->cfg.running_max) {
        p->st.busy_sent++;
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_BUSY, h->task, h->method,
                           (int32_t)aq_rpc__busy_hint_ms(p), NULL, 0);
        free(owned);
        return;
    }
    aq_rpc_work *w = calloc(1, sizeof *w);
    aq_rpc_incoming *in = calloc(1, sizeof *in);
    uint8_t *copy = owned;
    if (!owned && h->msg_len) {
        copy = malloc(h->msg_len);
        if (copy)
            memcpy(copy, data, h->msg_len);
    }
    bool room = w && in && (!h->msg_len || copy) && aq_rpc__timed_add(rpc) == 0;
    if (!room || aq_rpc_map_put(&p->work, h->task, w) != 0) {
        if (room)
            aq_rpc__timed_del(rpc);
        free(w);
        free(in);
        free(copy);
        p->st.busy_sent++;
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_BUSY, h->task, h->method,
                           (int32_t)aq_rpc__busy_hint_ms(p), NULL, 0);
        return;
    }
    w->peer = p;
    w->task = h->task;
    w->state = AQ_WORK_RUNNING;
    w->method = h->method;
    w->om.e2e = h->flags & AQ_RPC_FLAG_E2E_OK;
    w->in = in;
    w->tn.idx = AQ_RPC_HEAP_NONE;
    w->tn.kind = AQ_T_WORK;
    aq_list_init(&w->om.plink);
    aq_list_init(&w->om.qlink);
    in->rpc = rpc;
    in->peer = p;
    p->nincoming++;
    in->w = w;
    in->method = h->method;
    in->data = copy;
    in->len = h->msg_len;
    in->e2e_from = e2e_from < h->msg_len ? e2e_from : h->msg_len;
    in->start_us = aq_rpc__now(rpc);
    aq_list_add_tail(&rpc->incomings, &in->link);
    p->running++;
    p->st.handled++;
    rpc->st.handlers_running++;
    e->fn(e->ud, in);
}

void aq_rpc__acks_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data) {
    if (h->msg_len % 8) {
        rpc->st.dropped_malformed++;
        return;
    }
    for (uint32_t i = 0; i < h->msg_len / 8; i++) {
        uint64_t t = 0;
        for (int b = 0; b < 8; b++)
            t |= (uint64_t)data[i * 8 + b] << (8 * b);
        aq_rpc_work *w = aq_rpc_map_get(&p->work, t);
        if (w && w->state == AQ_WORK_DONE)
            work_retire(rpc, w);
    }
}

void aq_rpc__work_timer(aq_rpc *rpc, aq_rpc_work *w, uint64_t now) {
    if (now >= w->expire_us) {
        aq_rpc__logf(rpc, 2, "reply for task %llu to %s expired unacknowledged",
                     (unsigned long long)w->task, aq_rpc_peer_name(w->peer));
        work_retire(rpc, w);
        return;
    }
    w->peer->st.retransmits++;
    reply_send(rpc, w);
}
