/* The caller side: a call is queued until the peer's window has room, sent, resent on its
 * backoff, parked on BUSY without holding a window slot, and ended exactly once (call_finish) by a
 * reply, a NACK, a restart of the peer, its deadline or the endpoint's teardown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_int.h"

static uint64_t prng_next(aq_rpc *rpc) {
    uint64_t x = rpc->prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rpc->prng = x;
    return x * 0x2545f4914f6cdd1dull;
}

typedef struct result_priv {
    const uint8_t *data;
    uint8_t *owned; /* a reassembly buffer we may hand over */
    size_t len;
    bool taken;
} result_priv;

void *aq_rpc_result_take(const aq_rpc_result *r, size_t *len) {
    result_priv *rp = r->priv;
    if (len)
        *len = 0;
    if (!rp || rp->taken || !rp->len)
        return NULL;
    rp->taken = true;
    if (len)
        *len = rp->len;
    if (rp->owned) {
        void *d = rp->owned;
        rp->owned = NULL;
        return d;
    }
    void *d = malloc(rp->len);
    if (d)
        memcpy(d, rp->data, rp->len);
    else if (len)
        *len = 0;
    return d;
}

char *aq_rpc_result_describe(const aq_rpc *rpc, const aq_rpc_result *r, char *buf, size_t n) {
    char tmp[32];
    const char *m = aq_rpc__method_name(rpc, r->method, tmp, sizeof tmp);
    const char *pn = r->peer ? aq_rpc_peer_name(r->peer) : "?";
    const char *pa = r->peer ? r->peer->addr_text : "?";
    double secs = (double)r->elapsed_us / 1e6;
    if (r->err == AQ_ETIMEDOUT)
        snprintf(buf, n, "call %s to %s (%s) timed out after %u attempts in %.2f s", m, pn, pa,
                 r->attempts, secs);
    else if (r->err == AQ_ECANCELED)
        snprintf(buf, n, "call %s to %s (%s) canceled after %u attempts in %.2f s", m, pn, pa,
                 r->attempts, secs);
    else if (r->err)
        snprintf(buf, n, "call %s to %s (%s) failed after %u attempts in %.2f s: %s", m, pn, pa,
                 r->attempts, secs, aq_strerror(r->err));
    else if (r->status)
        snprintf(buf, n, "call %s to %s (%s) failed: %s", m, pn, pa, aq_strerror(r->status));
    else
        snprintf(buf, n, "call %s to %s (%s) succeeded in %.2f s", m, pn, pa, secs);
    return buf;
}

uint64_t aq_rpc__transfer_allowance(aq_rpc_peer *p, size_t len) {
    if (aq_rpc__fits_dgram(len))
        return 0;
    return (p->pipe_queued_bytes + len) * 1000000ull / AQ_RPC_ASSUMED_BW_BPS;
}

static void call_arm(aq_rpc *rpc, aq_rpc_call_s *c) {
    uint64_t at = c->deadline_us;
    if (c->state != AQ_CALL_QUEUED && c->resend_us < at)
        at = c->resend_us;
    aq_rpc_heap_set(&rpc->heap, &c->tn, at);
}

static void call_transmit(aq_rpc *rpc, aq_rpc_call_s *c) {
    aq_rpc_peer *p = c->peer;
    uint64_t now = aq_rpc__now(rpc);
    c->attempts++;
    c->sent_us = now;
    c->dst_inc_sent = p->inc;
    c->state = AQ_CALL_SENT;
    aq_rpc__send_msg(rpc, p, &c->om);
    c->resend_us =
        now + aq_rpc_cc_backoff(&p->cc, c->level + 1) + aq_rpc__transfer_allowance(p, c->blob->len);
    call_arm(rpc, c);
}

/* Take a window slot and send (the first time, or again after BUSY). */
static void call_start(aq_rpc *rpc, aq_rpc_call_s *c) {
    aq_rpc_peer *p = c->peer;
    if (c->task == 0) {
        c->task = p->next_task++;
        c->om.task = c->task;
        /* The map has room: reserved when the call was created. */
        aq_rpc_map_put(&p->calls, c->task, c);
    } else {
        p->st.retransmits++;
    }
    aq_list_add_tail(&p->inflight, &c->link);
    aq_rpc_cc_on_send(&p->cc, c->blob->len);
    c->slot = true;
    call_transmit(rpc, c);
}

static void pump_queue(aq_rpc *rpc, aq_rpc_peer *p) {
    while (!aq_list_empty(&p->queue) && !rpc->closing) {
        aq_rpc_call_s *c = aq_container_of(p->queue.next, aq_rpc_call_s, link);
        if (!aq_rpc_cc_can_send(&p->cc, c->blob->len))
            break;
        aq_list_del(&c->link);
        p->nqueued--;
        call_start(rpc, c);
    }
}

/* The one way a call ends. */
void aq_rpc__call_finish(aq_rpc *rpc, aq_rpc_call_s *c, int err, int status, const uint8_t *data,
                         size_t len, uint8_t *owned) {
    aq_rpc_peer *p = c->peer;
    aq_rpc_heap_remove(&rpc->heap, &c->tn);
    aq_list_del(&c->link);
    if (c->state == AQ_CALL_QUEUED)
        p->nqueued--;
    if (c->task)
        aq_rpc_map_del(&p->calls, c->task);
    if (c->slot)
        aq_rpc_cc_on_finish(&p->cc, c->blob->len);
    aq_rpc__pipe_forget(p, &c->om);
    if (err) {
        p->st.failures++;
        if (err == AQ_ETIMEDOUT)
            p->st.timeouts++;
    }
    uint64_t now = aq_rpc__now(rpc);
    result_priv rp = {data, owned, len, false};
    aq_rpc_result r = {.err = err,
                       .status = status,
                       .data = err ? NULL : data,
                       .len = err ? 0 : len,
                       .peer = p,
                       .method = c->method,
                       .attempts = c->attempts,
                       .e2e_from = err ? 0 : (c->reply_e2e_from < len ? c->reply_e2e_from : len),
                       .elapsed_us = now - c->start_us,
                       .priv = &rp};
    if (err) {
        rp.len = 0;
        rp.data = NULL;
    }
    aq_rpc_done_fn cb = c->cb;
    void *ud = c->ud;
    aq_rpc__blob_unref(c->blob);
    free(c);
    aq_rpc__timed_del(rpc);
    if (rpc->observe_fn)
        rpc->observe_fn(rpc->observe_ud, AQ_RPC_OBS_CALL, r.method, err ? err : status,
                        r.elapsed_us);
    cb(ud, &r);
    free(rp.owned);
    if (!rpc->closing)
        pump_queue(rpc, p);
}

/* e2e: from aq_rpc_call_e2e, whose payload's last `tail` bytes are its end-to-end tail. */
static int call(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, aq_rpc_buf payload,
                uint64_t timeout_us, aq_rpc_done_fn cb, void *ud, bool e2e, size_t tail) {
    int err = 0;
    if (!rpc || !peer || !cb || peer->rpc != rpc || (payload.len && !payload.data))
        err = AQ_EINVAL;
    else if (rpc->closing)
        err = AQ_ECLOSED;
    else if (payload.len > AQ_RPC_MAX_PAYLOAD)
        err = AQ_ETOOBIG;
    else if (!aq_list_empty(&peer->queue) || !aq_rpc_cc_can_send(&peer->cc, payload.len)) {
        if (peer->nqueued >= rpc->cfg.queue_max)
            err = AQ_EQUEUEFULL;
    }
    if (err) {
        aq_rpc__buf_release(payload);
        return err;
    }
    aq_rpc_call_s *c = calloc(1, sizeof *c);
    /* Room for its task in the map now, so call_start cannot fail later. */
    if (!c || aq_rpc_map_reserve(&peer->calls, 1 + peer->nqueued) != 0 ||
        aq_rpc__timed_add(rpc) != 0) {
        free(c);
        aq_rpc__buf_release(payload);
        return AQ_ENOMEM;
    }
    c->blob = aq_rpc__blob_new(payload);
    if (!c->blob) {
        aq_rpc__timed_del(rpc);
        free(c);
        aq_rpc__buf_release(payload);
        return AQ_ENOMEM;
    }
    uint64_t now = aq_rpc__now(rpc);
    c->peer = peer;
    c->method = method;
    c->cb = cb;
    c->ud = ud;
    c->start_us = now;
    c->deadline_us = timeout_us > UINT64_MAX - now ? UINT64_MAX - 1 : now + timeout_us;
    c->tn.idx = AQ_RPC_HEAP_NONE;
    c->tn.kind = AQ_T_CALL;
    c->om.kind = AQ_RPC_K_CALL;
    c->om.method = method;
    c->om.blob = c->blob;
    c->blob->e2e_from = payload.len - (tail < payload.len ? tail : payload.len);
    c->om.e2e = e2e;
    c->om.e2e_ok = e2e;
    c->reply_e2e_from = UINT32_MAX;
    aq_list_init(&c->om.plink);
    aq_list_init(&c->om.qlink);
    c->pipe = !aq_rpc__fits_dgram(payload.len);
    peer->st.calls++;
    if (!aq_list_empty(&peer->queue) || !aq_rpc_cc_can_send(&peer->cc, payload.len)) {
        c->state = AQ_CALL_QUEUED;
        aq_list_add_tail(&peer->queue, &c->link);
        peer->nqueued++;
        call_arm(rpc, c);
    } else {
        call_start(rpc, c);
    }
    aq_rpc__settle(rpc);
    return 0;
}

int aq_rpc_call(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, aq_rpc_buf payload,
                uint64_t timeout_us, aq_rpc_done_fn cb, void *ud) {
    return call(rpc, peer, method, payload, timeout_us, cb, ud, false, 0);
}

int aq_rpc_call_e2e(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, aq_rpc_buf payload,
                    size_t tail, uint64_t timeout_us, aq_rpc_done_fn cb, void *ud) {
    return call(rpc, peer, method, payload, timeout_us, cb, ud, true, tail);
}

int aq_rpc_notify(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, const void *data, size_t len) {
    if (!rpc || !peer || (len && !data))
        return AQ_EINVAL;
    if (rpc->closing)
        return AQ_ECLOSED;
    if (!aq_rpc__fits_dgram(len))
        return AQ_ETOOBIG;
    aq_rpc__send_dgram(rpc, peer, AQ_RPC_K_NOTIFY, 0, method, 0, data, len);
    return 0;
}

void aq_rpc__call_timer(aq_rpc *rpc, aq_rpc_call_s *c, uint64_t now) {
    if (now >= c->deadline_us) {
        aq_rpc__call_finish(rpc, c,
                            c->auth_refused ? AQ_EAUTH
                            : c->last_busy  ? AQ_EBUSY
                                            : AQ_ETIMEDOUT,
                            0, NULL, 0, NULL);
        return;
    }
    if (c->state == AQ_CALL_QUEUED) {
        call_arm(rpc, c);
        return;
    }
    aq_rpc_peer *p = c->peer;
    if (c->state == AQ_CALL_BUSYWAIT) {
        /* Back from BUSY: it needs a window slot again; it goes before the queued calls. */
        aq_list_del(&c->link);
        if (aq_rpc_cc_can_send(&p->cc, c->blob->len)) {
            call_start(rpc, c);
        } else {
            c->state = AQ_CALL_QUEUED;
            aq_list_add_head(&p->queue, &c->link);
            p->nqueued++;
            call_arm(rpc, c);
        }
        return;
    }
    aq_rpc_cc_cut(&p->cc, now);
    c->level++;
    p->st.retransmits++;
    call_transmit(rpc, c);
}

void aq_rpc__reply_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                            uint8_t *owned, uint32_t e2e_from) {
    aq_rpc_call_s *c = aq_rpc_map_get(&p->calls, h->task);
    if (c && e2e_from < h->msg_len && !c->om.e2e_ok) {
        /* Bytes without a checksum that this caller never said it checks: not acted on (nor
         * acknowledged), as a frame failing its checksum is not. */
        rpc->st.dropped_malformed++;
        free(owned);
        return;
    }
    aq_rpc__queue_ack(rpc, p, h->task);
    if (!c) {
        free(owned);
        return;
    }
    c->reply_e2e_from = e2e_from;
    uint64_t now = aq_rpc__now(rpc);
    p->st.replies++;
    if (c->attempts == 1 && !c->pipe && aq_rpc__fits_dgram(h->msg_len))
        aq_rpc_cc_rtt_sample(&p->cc, now - c->sent_us);
    aq_rpc_cc_on_success(&p->cc);
    aq_rpc__call_finish(rpc, c, 0, h->status, data, h->msg_len, owned);
}

/* The far side is still running our call: patience, without a resend. */
void aq_rpc__pending_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, uint64_t now) {
    aq_rpc_call_s *c = aq_rpc_map_get(&p->calls, h->task);
    if (!c || c->state != AQ_CALL_SENT)
        return;
    p->st.pending_seen++;
    c->last_busy = false;
    c->level++;
    c->resend_us =
        now + aq_rpc_cc_backoff(&p->cc, c->level + 1) + aq_rpc__transfer_allowance(p, c->blob->len);
    call_arm(rpc, c);
}

/* The far side had no room: wait its hint plus jitter, holding no window slot. */
void aq_rpc__busy_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, uint64_t now) {
    aq_rpc_call_s *c = aq_rpc_map_get(&p->calls, h->task);
    if (!c || c->state != AQ_CALL_SENT)
        return;
    p->st.busy_seen++;
    aq_rpc_cc_cut(&p->cc, now);
    uint64_t ms = h->status > 0 ? (uint64_t)h->status : 1;
    if (ms > 60000)
        ms = 60000;
    uint64_t wait = ms * 1000;
    wait += prng_next(rpc) % (wait / 2 + 1);
    c->state = AQ_CALL_BUSYWAIT;
    c->last_busy = true;
    c->resend_us = now + wait;
    /* Waiting out BUSY holds no window slot, so the calls behind it can go. */
    c->slot = false;
    aq_rpc_cc_on_finish(&p->cc, c->blob->len);
    call_arm(rpc, c);
    pump_queue(rpc, p);
}

/* The far side refused the call for good; only codes we know pass through. */
void aq_rpc__nack_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h) {
    aq_rpc_call_s *c = aq_rpc_map_get(&p->calls, h->task);
    if (!c)
        return;
    int e = h->status;
    if (e != AQ_ERESTARTED && e != AQ_ENOMETHOD && e != AQ_ETIMEDOUT)
        e = AQ_EPROTO;
    aq_rpc__call_finish(rpc, c, e, 0, NULL, 0, NULL);
}
