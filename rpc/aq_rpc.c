/* The endpoint: its creation and teardown, the method table, sending (headers, MAC/encryption,
 * datagrams, batched ACKACKs) and the one timer that drives every call, reply and peer. Peers live
 * in aq_rpc_peer.c, the caller side in aq_rpc_call.c, the callee side in aq_rpc_work.c, input
 * demultiplexing in aq_rpc_input.c and the TCP pipe in aq_rpc_pipe.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "aq_rpc_int.h"

uint64_t aq_rpc__now(aq_rpc *rpc) {
    return rpc->io.now_us(rpc->io_ctx);
}

void aq_rpc__logf(aq_rpc *rpc, int level, const char *fmt, ...) {
    if (!rpc->cfg.log)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rpc->cfg.log(rpc->cfg.log_ud, level, msg);
}

/* One piece: lent bytes referenced (*keep = buf), others copied into *owned. false without
 * memory. */
static bool piece_take(aq_rpc_buf buf, const uint8_t **data, aq_rpc_buf *keep, void **owned) {
    if (buf.release) {
        *keep = buf;
        *data = buf.data;
    } else if (buf.len) {
        if (!(*owned = malloc(buf.len)))
            return false;
        memcpy(*owned, buf.data, buf.len);
        *data = *owned;
    }
    return true;
}

aq_rpc_blob *aq_rpc__blob_new(aq_rpc_buf buf) {
    aq_rpc_blob *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = b->len1 = buf.len;
    b->e2e_from = buf.len;
    if (!piece_take(buf, &b->data, &b->buf, &b->owned)) {
        free(b);
        return NULL;
    }
    return b;
}

aq_rpc_blob *aq_rpc__blob_new2(aq_rpc_buf head, aq_rpc_buf body) {
    aq_rpc_blob *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len1 = head.len;
    b->len = head.len + body.len;
    b->e2e_from = b->len;
    const uint8_t *d2 = NULL;
    if (!piece_take(head, &b->data, &b->buf, &b->owned) ||
        !piece_take(body, &d2, &b->buf2, &b->owned2)) {
        free(b->owned);
        free(b);
        return NULL;
    }
    /* A body with no bytes still has a (never read) address, so data2 marks two pieces. */
    b->data2 = d2 ? d2 : b->data + b->len1;
    return b;
}

void aq_rpc__blob_unref(aq_rpc_blob *b) {
    if (!b || --b->refs)
        return;
    if (b->owned)
        free(b->owned);
    else if (b->buf.release)
        b->buf.release(b->buf.ctx);
    if (b->owned2)
        free(b->owned2);
    else if (b->buf2.release)
        b->buf2.release(b->buf2.ctx);
    free(b);
}

void aq_rpc__buf_release(aq_rpc_buf buf) {
    if (buf.release)
        buf.release(buf.ctx);
}

const char *aq_rpc__method_name(const aq_rpc *rpc, uint16_t m, char *tmp, size_t n) {
    for (size_t i = 0; i < rpc->nmethods; i++)
        if (rpc->methods[i].method == m && rpc->methods[i].name)
            return rpc->methods[i].name;
    snprintf(tmp, n, "method %u", m);
    return tmp;
}

aq_rpc_method_ent *aq_rpc__method_ent(aq_rpc *rpc, uint16_t m, bool create) {
    for (size_t i = 0; i < rpc->nmethods; i++)
        if (rpc->methods[i].method == m)
            return &rpc->methods[i];
    if (!create)
        return NULL;
    aq_rpc_method_ent *v = realloc(rpc->methods, (rpc->nmethods + 1) * sizeof *v);
    if (!v)
        return NULL;
    rpc->methods = v;
    v[rpc->nmethods] = (aq_rpc_method_ent){.method = m};
    return &v[rpc->nmethods++];
}

static void fill_hdr(aq_rpc *rpc, aq_rpc_peer *p, aq_rpc_hdr *h, uint8_t kind, uint64_t task,
                     uint16_t method, int32_t status, uint32_t len) {
    memset(h, 0, sizeof *h);
    h->version = AQ_RPC_WIRE_VERSION;
    h->kind = kind;
    h->method = method;
    h->cluster_id = rpc->cfg.cluster_id;
    h->src_inc = rpc->inc;
    h->dst_inc = p->inc;
    h->task = task;
    h->msg_len = len;
    h->frag_len = len;
    h->status = status;
}

bool aq_rpc__frame_encrypts(const aq_rpc *rpc, uint8_t kind) {
    return rpc->cfg.encrypt && (kind == AQ_RPC_K_CALL || kind == AQ_RPC_K_REPLY);
}

int aq_rpc__frame(aq_rpc *rpc, aq_rpc_hdr *h, const void *frag, uint8_t hb[AQ_RPC_HDR_LEN],
                  uint8_t tag[AQ_RPC_MAC_LEN], uint8_t *ct, struct iovec iov[3]) {
    int n = 0;
    const void *body = frag;
    if (rpc->auth.on) {
        /* A fresh counter per packet, retransmits included: the header, hence the one-time key
         * or nonce, never repeats within this incarnation. */
        h->flags |= AQ_RPC_FLAG_MAC;
        h->flags &= (uint16_t) ~(AQ_RPC_FLAG_E2E | AQ_RPC_FLAG_E2E_OK); /* the tag covers all */
        h->checksum = ++rpc->pkt_ctr;
        if (aq_rpc__frame_encrypts(rpc, h->kind))
            h->flags |= AQ_RPC_FLAG_ENC;
    }
    aq_rpc_hdr_encode(h, frag, hb);
    iov[n++] = (struct iovec){hb, AQ_RPC_HDR_LEN};
    if (h->flags & AQ_RPC_FLAG_ENC) {
        aq_rpc_auth_seal(&rpc->auth, hb, frag, h->frag_len, ct, tag);
        body = ct;
        iov[n++] = (struct iovec){tag, AQ_RPC_MAC_LEN};
    } else if (rpc->auth.on) {
        aq_rpc_auth_tag(&rpc->auth, hb, frag, h->frag_len, tag);
        iov[n++] = (struct iovec){tag, AQ_RPC_MAC_LEN};
    }
    if (h->frag_len)
        iov[n++] = (struct iovec){(void *)body, h->frag_len};
    return n;
}

static void send_dgram(aq_rpc *rpc, aq_rpc_peer *p, uint8_t kind, uint16_t flags, uint64_t task,
                       uint16_t method, int32_t status, const void *data, size_t len) {
    aq_rpc_hdr h;
    uint8_t hb[AQ_RPC_HDR_LEN], tag[AQ_RPC_MAC_LEN], ct[AQ_RPC_DGRAM_MAX];
    struct iovec iov[3];
    fill_hdr(rpc, p, &h, kind, task, method, status, (uint32_t)len);
    h.flags = flags;
    int n = aq_rpc__frame(rpc, &h, data, hb, tag, ct, iov);
    p->st.bytes_out += AQ_RPC_HDR_LEN + (rpc->auth.on ? AQ_RPC_MAC_LEN : 0) + len;
    rpc->io.send_dgram(rpc->io_ctx, &p->addr, iov, n);
}

void aq_rpc__send_dgram(aq_rpc *rpc, aq_rpc_peer *p, uint8_t kind, uint64_t task, uint16_t method,
                        int32_t status, const void *data, size_t len) {
    send_dgram(rpc, p, kind, 0, task, method, status, data, len);
}

/* Notices never carry a MAC (the point is to reach a sender that cannot check one) and carry
 * nothing secret: the header echoes the refused packet's task and incarnation, the payload is our
 * key's public fingerprint. At most 20 a second, in bursts of 20. */
void aq_rpc__auth_failed(aq_rpc *rpc, const aq_rpc_addr *to, const aq_rpc_hdr *h) {
    rpc->st.dropped_auth++;
    if (!to || h->kind == AQ_RPC_K_AUTH || h->src_inc == 0)
        return;
    uint64_t now = aq_rpc__now(rpc);
    rpc->notice_tokens += (double)(now - rpc->notice_at) * 20.0 / 1e6;
    if (rpc->notice_tokens > 20.0)
        rpc->notice_tokens = 20.0;
    rpc->notice_at = now;
    if (rpc->notice_tokens < 1.0)
        return;
    rpc->notice_tokens -= 1.0;
    uint8_t fp[AQ_RPC_FINGERPRINT_LEN] = {0};
    if (rpc->auth.on)
        memcpy(fp, rpc->auth.fingerprint, sizeof fp);
    aq_rpc_hdr n = {.version = AQ_RPC_WIRE_VERSION,
                    .kind = AQ_RPC_K_AUTH,
                    .method = h->method,
                    .cluster_id = rpc->cfg.cluster_id,
                    .src_inc = rpc->inc,
                    .dst_inc = h->src_inc,
                    .task = h->task,
                    .msg_len = sizeof fp,
                    .frag_len = sizeof fp};
    uint8_t hb[AQ_RPC_HDR_LEN];
    aq_rpc_hdr_encode(&n, fp, hb);
    struct iovec iov[2] = {{hb, sizeof hb}, {fp, sizeof fp}};
    rpc->io.send_dgram(rpc->io_ctx, to, iov, 2);
}

/* A message that owns an omsg goes by datagram when it fits, else over the pipe. */
void aq_rpc__send_msg(aq_rpc *rpc, aq_rpc_peer *p, aq_rpc_omsg *om) {
    if (aq_rpc__fits_dgram(om->blob->len)) {
        send_dgram(rpc, p, om->kind, om->e2e_ok ? AQ_RPC_FLAG_E2E_OK : 0, om->task, om->method,
                   om->status, om->blob->data, om->blob->len);
        return;
    }
    aq_rpc__pipe_enqueue(p, om);
}

void aq_rpc__queue_ack(aq_rpc *rpc, aq_rpc_peer *p, uint64_t task) {
    if (p->nacks == AQ_RPC_MAX_ACKS) {
        uint8_t buf[AQ_RPC_MAX_ACKS * 8];
        for (uint32_t i = 0; i < p->nacks; i++)
            for (int b = 0; b < 8; b++)
                buf[i * 8 + b] = (uint8_t)(p->acks[i] >> (8 * b));
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_ACKACK, 0, 0, 0, buf, p->nacks * 8u);
        p->nacks = 0;
    }
    p->acks[p->nacks++] = task;
    if (aq_list_empty(&p->ack_link))
        aq_list_add_tail(&rpc->ack_peers, &p->ack_link);
    /* Not sent at once: the driver runs a timer due now only after the input it has in hand,
     * so the replies of one receive batch share ACKACK datagrams. */
    if (rpc->ack_tn.idx == AQ_RPC_HEAP_NONE)
        aq_rpc_heap_set(&rpc->heap, &rpc->ack_tn, aq_rpc__now(rpc));
}

static void flush_acks(aq_rpc *rpc) {
    while (!aq_list_empty(&rpc->ack_peers)) {
        aq_rpc_peer *p = aq_container_of(rpc->ack_peers.next, aq_rpc_peer, ack_link);
        aq_list_del(&p->ack_link);
        if (!p->nacks)
            continue;
        uint8_t buf[AQ_RPC_MAX_ACKS * 8];
        for (uint32_t i = 0; i < p->nacks; i++)
            for (int b = 0; b < 8; b++)
                buf[i * 8 + b] = (uint8_t)(p->acks[i] >> (8 * b));
        aq_rpc__send_dgram(rpc, p, AQ_RPC_K_ACKACK, 0, 0, 0, buf, p->nacks * 8u);
        p->nacks = 0;
    }
}

/* Ends every public entry point: the driver's timer follows the earliest deadline. */
void aq_rpc__settle(aq_rpc *rpc) {
    aq_rpc_tnode *t = aq_rpc_heap_top(&rpc->heap);
    uint64_t at = t ? t->at : UINT64_MAX;
    if (at != rpc->armed) {
        rpc->armed = at;
        rpc->io.set_timer(rpc->io_ctx, at);
    }
}

/* Room in the heap for one more timed object, so arming its timer can never fail. */
int aq_rpc__timed_add(aq_rpc *rpc) {
    int err = aq_rpc_heap_reserve(&rpc->heap, rpc->ntimed + 1 - rpc->heap.n);
    if (err == 0)
        rpc->ntimed++;
    return err;
}

void aq_rpc__timed_del(aq_rpc *rpc) {
    rpc->ntimed--;
}

void aq_rpc_config_init(aq_rpc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->fragment_size = 256 * 1024;
    cfg->rto_min_us = 20000;
    cfg->rto_max_us = 2000000;
    cfg->window_init = 64;
    cfg->window_max = 4096;
    cfg->queue_max = 65536;
    cfg->reassembly_max = 64ull << 20;
    cfg->running_max = 1024;
    cfg->reply_cache_us = 60000000;
}

int aq_rpc_new(const aq_rpc_config *cfg, const aq_rpc_io *io, void *io_ctx, aq_rpc **out) {
    if (!cfg || !io || !out || !io->now_us || !io->send_dgram || !io->pipe_open ||
        !io->pipe_write || !io->pipe_close || !io->set_timer)
        return AQ_EINVAL;
    aq_rpc_config d;
    aq_rpc_config_init(&d);
    aq_rpc *rpc = calloc(1, sizeof *rpc);
    if (!rpc)
        return AQ_ENOMEM;
    rpc->cfg = *cfg;
#define DEF(f)                                                                                     \
    if (!rpc->cfg.f)                                                                               \
    rpc->cfg.f = d.f
    DEF(fragment_size);
    DEF(rto_min_us);
    DEF(rto_max_us);
    DEF(window_init);
    DEF(window_max);
    DEF(queue_max);
    DEF(reassembly_max);
    DEF(running_max);
    DEF(reply_cache_us);
#undef DEF
    if (rpc->cfg.fragment_size < 1024 || rpc->cfg.fragment_size > AQ_RPC_MAX_PAYLOAD) {
        free(rpc);
        return AQ_EINVAL;
    }
    if (cfg->encrypt && !cfg->secret) { /* no key to encrypt with: never send plain text instead */
        free(rpc);
        return AQ_EINVAL;
    }
    rpc->cfg.secret = NULL;
    rpc->cfg.secret_len = 0;
    int aerr = aq_rpc_auth_init(&rpc->auth, cfg->secret, cfg->secret_len, cfg->cluster_id);
    if (aerr) {
        free(rpc);
        return aerr;
    }
    rpc->notice_tokens = 20.0;
    rpc->io = *io;
    rpc->io_ctx = io_ctx;
    rpc->inc = cfg->incarnation;
    while (rpc->inc == 0) {
        if (getrandom(&rpc->inc, sizeof rpc->inc, 0) != sizeof rpc->inc) {
            free(rpc);
            return AQ_EIO;
        }
    }
    rpc->prng = rpc->inc ^ 0x9e3779b97f4a7c15ull;
    if (!rpc->prng)
        rpc->prng = 1;
    rpc->armed = UINT64_MAX;
    aq_list_init(&rpc->wrecs);
    aq_list_init(&rpc->incomings);
    aq_list_init(&rpc->ack_peers);
    rpc->ack_tn.idx = AQ_RPC_HEAP_NONE;
    rpc->ack_tn.kind = AQ_T_ACK;
    rpc->sweep_tn.idx = AQ_RPC_HEAP_NONE;
    rpc->sweep_tn.kind = AQ_T_SWEEP;
    if (aq_rpc__timed_add(rpc) != 0 || aq_rpc__timed_add(rpc) != 0) {
        aq_rpc_heap_free(&rpc->heap);
        free(rpc);
        return AQ_ENOMEM;
    }
    *out = rpc;
    return 0;
}

uint64_t aq_rpc_incarnation(const aq_rpc *rpc) {
    return rpc->inc;
}

bool aq_rpc_authenticated(const aq_rpc *rpc) {
    return rpc->auth.on;
}

bool aq_rpc_encrypted(const aq_rpc *rpc) {
    return rpc->auth.on && rpc->cfg.encrypt;
}

void aq_rpc_stats_get(const aq_rpc *rpc, aq_rpc_stats *out) {
    *out = rpc->st;
    out->peers = rpc->npeers;
    out->peers_retired = rpc->ret_n;
}

void aq_rpc_handle(aq_rpc *rpc, uint16_t method, aq_rpc_handler_fn fn, void *ud) {
    aq_rpc_method_ent *e = aq_rpc__method_ent(rpc, method, true);
    if (e) {
        e->fn = fn;
        e->ud = ud;
    }
}

void aq_rpc_method_e2e(aq_rpc *rpc, uint16_t method) {
    aq_rpc_method_ent *e = aq_rpc__method_ent(rpc, method, true);
    if (e)
        e->e2e = true;
}

void aq_rpc_on_notify(aq_rpc *rpc, aq_rpc_notify_fn fn, void *ud) {
    rpc->notify_fn = fn;
    rpc->notify_ud = ud;
}

void aq_rpc_on_restart(aq_rpc *rpc, aq_rpc_restart_fn fn, void *ud) {
    rpc->restart_fn = fn;
    rpc->restart_ud = ud;
}

void aq_rpc_on_observe(aq_rpc *rpc, aq_rpc_observe_fn fn, void *ud) {
    rpc->observe_fn = fn;
    rpc->observe_ud = ud;
}

void aq_rpc_method_name(aq_rpc *rpc, uint16_t method, const char *name) {
    aq_rpc_method_ent *e = aq_rpc__method_ent(rpc, method, true);
    if (e)
        e->name = name;
}

void aq_rpc_timer_fired(aq_rpc *rpc) {
    rpc->armed = UINT64_MAX;
    uint64_t now = aq_rpc__now(rpc);
    aq_rpc_tnode *t;
    while (!rpc->closing && (t = aq_rpc_heap_top(&rpc->heap)) && t->at <= now) {
        switch (t->kind) {
        case AQ_T_CALL:
            aq_rpc__call_timer(rpc, aq_container_of(t, aq_rpc_call_s, tn), now);
            break;
        case AQ_T_WORK:
            aq_rpc__work_timer(rpc, aq_container_of(t, aq_rpc_work, tn), now);
            break;
        case AQ_T_ACK:
            aq_rpc_heap_remove(&rpc->heap, t);
            flush_acks(rpc);
            break;
        case AQ_T_SWEEP:
            aq_rpc_heap_remove(&rpc->heap, t);
            aq_rpc__sweep(rpc, now);
            break;
        default:
            aq_rpc_heap_remove(&rpc->heap, t);
            aq_rpc__pipe_timer(aq_container_of(t, aq_rpc_peer, tn));
            break;
        }
    }
    aq_rpc__settle(rpc);
}

void aq_rpc_free(aq_rpc *rpc) {
    if (!rpc)
        return;
    rpc->closing = true;
    for (size_t i = 0; i < rpc->npeers; i++) {
        aq_rpc_peer *p = rpc->peers[i];
        while (!aq_list_empty(&p->inflight))
            aq_rpc__call_finish(rpc, aq_container_of(p->inflight.next, aq_rpc_call_s, link),
                                AQ_ECLOSED, 0, NULL, 0, NULL);
        while (!aq_list_empty(&p->queue))
            aq_rpc__call_finish(rpc, aq_container_of(p->queue.next, aq_rpc_call_s, link),
                                AQ_ECLOSED, 0, NULL, 0, NULL);
    }
    while (!aq_list_empty(&rpc->incomings))
        aq_rpc__incoming_free(rpc, aq_container_of(rpc->incomings.next, aq_rpc_incoming, link));
    for (size_t i = 0; i < rpc->npeers; i++) {
        aq_rpc_peer *p = rpc->peers[i];
        aq_rpc_work *w;
        while ((w = aq_rpc_map_any(&p->work))) {
            aq_rpc_map_del(&p->work, w->task);
            aq_rpc__work_free(rpc, w);
        }
    }
    aq_rpc__pipe_free_all(rpc);
    for (size_t i = 0; i < rpc->npeers; i++) {
        aq_rpc_peer *p = rpc->peers[i];
        aq_rpc__pipe_peer_free(p);
        aq_rpc_map_free(&p->calls);
        aq_rpc_map_free(&p->work);
        aq_rpc_iset_free(&p->done);
        free(p);
    }
    free(rpc->peers);
    free(rpc->retired);
    aq_rpc_map_free(&rpc->retired_index);
    aq_rpc_map_free(&rpc->inc_index);
    aq_rpc_auth_wipe(&rpc->auth);
    free(rpc->methods);
    aq_rpc_heap_free(&rpc->heap);
    aq_rpc_map_free(&rpc->conns);
    aq_rpc_map_free(&rpc->peer_index);
    free(rpc);
}
