/* The pipe: one outbound TCP connection per peer for messages too big for a datagram, HELLO first,
 * fragments of queued messages interleaved (single-fragment messages first, then round-robin over
 * the large ones), a bound on the fragment writes outstanding per connection (a few large ones,
 * a budget of bytes for small ones) so the interleaving happens at the socket, reconnect with
 * exponential backoff, and on reconnect every unanswered message is sent again from its start. The
 * read side parses frames from any connection: headers and small payloads arrive through a staging
 * buffer, many frames per read, and are parsed and acted on in order; large payloads are read
 * straight into per-(kind, task) reassembly buffers. A connection that breaks the framing or a
 * bound is cut off, and nothing it sent after the offending frame is acted on. */
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_int.h"

static aq_rpc_conn *conn_new(aq_rpc *rpc, uint64_t id) {
    aq_rpc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = id;
    c->hneed = AQ_RPC_HDR_LEN;
    c->xs = XXH3_createState();
    if (!c->xs || aq_rpc_map_put(&rpc->conns, id, c) != 0) {
        XXH3_freeState(c->xs);
        free(c);
        return NULL;
    }
    return c;
}

static void reasm_drop(aq_rpc *rpc, aq_rpc_conn *c, aq_rpc_reasm *ra) {
    aq_rpc_map_del(&c->reasm[ra->kind == AQ_RPC_K_REPLY], ra->task);
    if (ra->buf) {
        if (c->peer)
            c->peer->reasm_bytes -= ra->len;
        rpc->st.reassembly_bytes -= ra->len;
        free(ra->buf);
    }
    if (c->ra == ra)
        c->ra = NULL;
    free(ra);
}

/* Forget a connection (closed by either side). */
static void conn_free(aq_rpc *rpc, aq_rpc_conn *c) {
    for (int k = 0; k < 2; k++) {
        aq_rpc_reasm *ra;
        while ((ra = aq_rpc_map_any(&c->reasm[k])))
            reasm_drop(rpc, c, ra);
        aq_rpc_map_free(&c->reasm[k]);
    }
    aq_rpc_map_del(&rpc->conns, c->id);
    if (c->outbound && c->peer && c->peer->out == c)
        c->peer->out = NULL;
    if (!c->outbound && c->peer) {
        c->peer->nconns--;
        c->peer->touched_us = aq_rpc__now(rpc);
    }
    XXH3_freeState(c->xs);
    aq_rpc_auth_stream_wipe(&c->as);
    free(c);
}

/* ---------- send side ---------- */

static void pipe_open(aq_rpc_peer *p);

static void schedule_reconnect(aq_rpc_peer *p) {
    aq_rpc *rpc = p->rpc;
    p->pstate = AQ_PIPE_BACKOFF;
    aq_rpc_heap_set(&rpc->heap, &p->tn, aq_rpc__now(rpc) + p->backoff_us);
    p->backoff_us *= 2;
    if (p->backoff_us > AQ_RPC_BACKOFF_MAX_US)
        p->backoff_us = AQ_RPC_BACKOFF_MAX_US;
}

static void unqueue(aq_rpc_peer *p, aq_rpc_omsg *om);

/* Orphans belong to one connection: with it gone, the far side dropped their beginnings too. */
static void drop_orphans(aq_rpc_peer *p) {
    aq_list *qs[2] = {&p->sendq_small, &p->sendq_large};
    for (int k = 0; k < 2; k++)
        for (aq_list *l = qs[k]->next, *next; l != qs[k]; l = next) {
            next = l->next;
            aq_rpc_omsg *om = aq_container_of(l, aq_rpc_omsg, qlink);
            if (om->orphan) {
                unqueue(p, om);
                aq_rpc__blob_unref(om->blob);
                free(om);
            }
        }
}

/* The outbound connection failed or broke: everything unanswered goes again after reconnecting. */
static void outbound_failed(aq_rpc_peer *p) {
    aq_rpc *rpc = p->rpc;
    drop_orphans(p);
    if (p->out)
        conn_free(rpc, p->out);
    p->out = NULL;
    p->st.pipe_failures++;
    if (!rpc->closing)
        schedule_reconnect(p);
}

static void pipe_open(aq_rpc_peer *p) {
    aq_rpc *rpc = p->rpc;
    uint64_t id = 0;
    int err = rpc->io.pipe_open(rpc->io_ctx, &p->addr, &id);
    if (err || id == 0) {
        aq_rpc__logf(rpc, 2, "pipe to %s: cannot connect: %s", aq_rpc_peer_name(p),
                     aq_strerror(err));
        p->st.pipe_failures++;
        schedule_reconnect(p);
        return;
    }
    aq_rpc_conn *c = conn_new(rpc, id);
    if (!c) {
        rpc->io.pipe_close(rpc->io_ctx, id);
        p->st.pipe_failures++;
        schedule_reconnect(p);
        return;
    }
    c->outbound = true;
    c->peer = p;
    c->hello_seen = false;
    c->remote = p->addr;
    p->out = c;
    p->pstate = AQ_PIPE_CONNECTING;
}

void aq_rpc__pipe_timer(aq_rpc_peer *p) {
    if (p->pstate != AQ_PIPE_BACKOFF)
        return;
    p->pstate = AQ_PIPE_NONE;
    if (!aq_list_empty(&p->pipe_msgs))
        pipe_open(p);
}

static bool frag_small(uint32_t flen) {
    return flen <= AQ_RPC_PIPE_SMALL_FRAG;
}

/* A write of a fragment of flen payload bytes, counted against c's bound until it completes. */
static aq_rpc_wrec *wrec_new(aq_rpc *rpc, aq_rpc_conn *c, uint32_t flen) {
    aq_rpc_wrec *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->conn = c->id;
    aq_list_add_tail(&rpc->wrecs, &w->link);
    if (frag_small(flen)) {
        w->small_len = AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + flen;
        c->small_bytes += w->small_len;
        c->small_writes++;
    } else {
        c->large_writes++;
    }
    return w;
}

static void write_hello(aq_rpc *rpc, aq_rpc_peer *p, aq_rpc_conn *c) {
    aq_rpc_wrec *w = wrec_new(rpc, c, 2);
    if (!w)
        return;
    uint16_t port = aq_rpc_addr_port(&rpc->cfg.self);
    w->extra[0] = (uint8_t)port;
    w->extra[1] = (uint8_t)(port >> 8);
    aq_rpc_hdr h = {.version = AQ_RPC_WIRE_VERSION,
                    .kind = AQ_RPC_K_HELLO,
                    .cluster_id = rpc->cfg.cluster_id,
                    .src_inc = rpc->inc,
                    .dst_inc = p->inc,
                    .msg_len = 2,
                    .frag_len = 2};
    int n = aq_rpc__frame(rpc, &h, w->extra, w->hdr, w->tag, NULL, w->iov);
    p->st.bytes_out += AQ_RPC_HDR_LEN + 2;
    rpc->io.pipe_write(rpc->io_ctx, c->id, w->iov, n, w);
}

/* The message at the head of q, when its next fragment (*flen bytes) may be written now. */
static aq_rpc_omsg *next_ready(aq_rpc *rpc, aq_rpc_conn *c, aq_list *q, uint32_t *flen) {
    if (aq_list_empty(q))
        return NULL;
    aq_rpc_omsg *om = aq_container_of(q->next, aq_rpc_omsg, qlink);
    size_t room;
    aq_rpc__blob_at(om->blob, om->off, &room); /* a fragment stays within one piece */
    uint32_t f = (uint32_t)room;
    if (f > rpc->cfg.fragment_size)
        f = rpc->cfg.fragment_size;
    /* No fragment straddles the end-to-end tail's start: every byte before it is checksummed. */
    size_t from = om->blob->e2e_from;
    if (om->e2e && om->off < from && om->off + f > from)
        f = (uint32_t)(from - om->off);
    if (frag_small(f)
            ? c->small_writes >= AQ_RPC_PIPE_SMALL_WRITES ||
                  c->small_bytes + AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + f > AQ_RPC_PIPE_SMALL_BYTES
            : c->large_writes >= AQ_RPC_PIPE_WRITES_MAX)
        return NULL;
    *flen = f;
    return om;
}

static void pump(aq_rpc_peer *p) {
    aq_rpc *rpc = p->rpc;
    aq_rpc_conn *c = p->out;
    while (c && p->pstate == AQ_PIPE_UP && !rpc->closing) {
        uint32_t flen = 0;
        aq_rpc_omsg *om = next_ready(rpc, c, &p->sendq_small, &flen);
        if (!om)
            om = next_ready(rpc, c, &p->sendq_large, &flen);
        if (!om)
            break;
        uint32_t len = (uint32_t)om->blob->len;
        /* Ciphertext lives in its own buffer until the write completes: bounded with the writes. */
        uint8_t *enc = NULL;
        if (aq_rpc__frame_encrypts(rpc, om->kind) && flen && !(enc = malloc(flen)))
            break; /* the message stays queued; the retransmit timer tries again */
        aq_rpc_wrec *w = wrec_new(rpc, c, flen);
        if (!w) {
            free(enc);
            break;
        }
        aq_rpc_hdr h = {.version = AQ_RPC_WIRE_VERSION,
                        .kind = om->kind,
                        .method = om->method,
                        .cluster_id = rpc->cfg.cluster_id,
                        .src_inc = rpc->inc,
                        .dst_inc = p->inc,
                        .task = om->task,
                        .msg_len = len,
                        .frag_off = om->off,
                        .frag_len = flen,
                        .status = om->status};
        if (om->e2e_ok)
            h.flags |= AQ_RPC_FLAG_E2E_OK;
        if (om->e2e && om->off >= om->blob->e2e_from)
            h.flags |= AQ_RPC_FLAG_E2E;
        size_t room;
        const uint8_t *frag = aq_rpc__blob_at(om->blob, om->off, &room);
        int n = aq_rpc__frame(rpc, &h, frag, w->hdr, w->tag, enc, w->iov);
        w->enc = enc;
        if (!enc) { /* written in place: the bytes must outlive the message */
            w->blob = om->blob;
            om->blob->refs++;
        }
        om->off += flen;
        p->pipe_queued_bytes -= flen;
        aq_list_del(&om->qlink);
        if (om->off < len) {
            aq_list_add_tail(&p->sendq_large, &om->qlink);
        } else {
            om->queued = false;
            if (om->orphan) {
                aq_rpc__blob_unref(om->blob);
                free(om);
            }
        }
        p->st.bytes_out += AQ_RPC_HDR_LEN + flen;
        rpc->io.pipe_write(rpc->io_ctx, c->id, w->iov, n, w);
        c = p->out; /* a synchronous failure report may have dropped it */
    }
}

static void unqueue(aq_rpc_peer *p, aq_rpc_omsg *om) {
    if (!om->queued)
        return;
    aq_list_del(&om->qlink);
    om->queued = false;
    p->pipe_queued_bytes -= om->blob->len - om->off;
}

static void queue_from_start(aq_rpc_peer *p, aq_rpc_omsg *om) {
    unqueue(p, om);
    om->off = 0;
    om->queued = true;
    p->pipe_queued_bytes += om->blob->len;
    aq_list_add_tail(om->blob->len <= p->rpc->cfg.fragment_size ? &p->sendq_small : &p->sendq_large,
                     &om->qlink);
}

void aq_rpc__pipe_enqueue(aq_rpc_peer *p, aq_rpc_omsg *om) {
    if (!om->registered) {
        om->registered = true;
        aq_list_add_tail(&p->pipe_msgs, &om->plink);
    }
    if (om->queued)
        return; /* still going out: a resend would only repeat bytes already on their way */
    queue_from_start(p, om);
    if (p->pstate == AQ_PIPE_NONE)
        pipe_open(p);
    else if (p->pstate == AQ_PIPE_UP)
        pump(p);
}

void aq_rpc__pipe_forget(aq_rpc_peer *p, aq_rpc_omsg *om) {
    if (om->queued && om->off > 0 && p->out && p->pstate == AQ_PIPE_UP) {
        /* Half sent: finish it under a detached copy rather than leave the far side holding the
         * first half until the connection ends. */
        aq_rpc_omsg *o = malloc(sizeof *o);
        if (o) {
            *o = *om;
            o->orphan = true;
            o->registered = false;
            aq_list_init(&o->plink);
            aq_list_add_tail(&om->qlink, &o->qlink); /* just before om: same place in line */
            aq_list_del(&om->qlink);
            om->queued = false;
            o->blob->refs++;
        }
    }
    unqueue(p, om);
    if (om->registered) {
        aq_list_del(&om->plink);
        om->registered = false;
    }
}

void aq_rpc_pipe_connected(aq_rpc *rpc, uint64_t id) {
    aq_rpc_conn *c = aq_rpc_map_get(&rpc->conns, id);
    if (!c || !c->outbound || c->connected || rpc->closing)
        return;
    aq_rpc_peer *p = c->peer;
    c->connected = true;
    p->pstate = AQ_PIPE_UP;
    p->backoff_us = AQ_RPC_BACKOFF_MIN_US;
    p->st.pipe_connects++;
    write_hello(rpc, p, c);
    /* A new connection: the far side starts every message afresh. */
    for (aq_list *l = p->pipe_msgs.next; l != &p->pipe_msgs; l = l->next)
        queue_from_start(p, aq_container_of(l, aq_rpc_omsg, plink));
    pump(p);
    aq_rpc__settle(rpc);
}

void aq_rpc_pipe_written(aq_rpc *rpc, uint64_t id, void *token, int status) {
    aq_rpc_wrec *w = token;
    if (!w)
        return;
    uint32_t small_len = w->small_len;
    aq_list_del(&w->link);
    aq_rpc__blob_unref(w->blob);
    free(w->enc);
    free(w);
    aq_rpc_conn *c = aq_rpc_map_get(&rpc->conns, id);
    if (!c || rpc->closing)
        return;
    if (small_len) {
        c->small_bytes -= small_len <= c->small_bytes ? small_len : c->small_bytes;
        if (c->small_writes)
            c->small_writes--;
    } else if (c->large_writes)
        c->large_writes--;
    if (c->outbound && c->peer && c->peer->out == c && status == 0)
        pump(c->peer);
    aq_rpc__settle(rpc);
}

/* ---------- read side ---------- */

void aq_rpc_pipe_accepted(aq_rpc *rpc, uint64_t id, const aq_rpc_addr *remote) {
    if (rpc->closing || aq_rpc_map_get(&rpc->conns, id)) {
        rpc->io.pipe_close(rpc->io_ctx, id);
        return;
    }
    aq_rpc_conn *c = conn_new(rpc, id);
    if (!c) {
        rpc->io.pipe_close(rpc->io_ctx, id);
        return;
    }
    c->connected = true;
    if (remote)
        c->remote = *remote;
}

bool aq_rpc_pipe_identified(const aq_rpc *rpc, uint64_t id) {
    const aq_rpc_conn *c = aq_rpc_map_get(&rpc->conns, id);
    return c && (c->outbound || c->hello_seen);
}

void aq_rpc_pipe_closed(aq_rpc *rpc, uint64_t id, int err) {
    aq_rpc_conn *c = aq_rpc_map_get(&rpc->conns, id);
    if (!c || rpc->closing)
        return;
    if (c->outbound && c->peer && c->peer->out == c) {
        aq_rpc__logf(rpc, 2, "pipe to %s broke: %s", aq_rpc_peer_name(c->peer), aq_strerror(err));
        outbound_failed(c->peer);
    } else {
        conn_free(rpc, c);
    }
    aq_rpc__settle(rpc);
}

static void cutoff(aq_rpc *rpc, aq_rpc_conn *c, const char *why) {
    char addr[64];
    rpc->st.cutoffs++;
    aq_rpc__logf(rpc, 1, "cutting off pipe from %s: %s",
                 aq_rpc_addr_format(&c->remote, addr, sizeof addr), why);
    rpc->io.pipe_close(rpc->io_ctx, c->id);
    if (c->outbound && c->peer && c->peer->out == c)
        outbound_failed(c->peer);
    else
        conn_free(rpc, c);
}

/* Where the next bytes go. A large payload still owed to a reassembly buffer is read straight into
 * it; everything else (headers, small payloads, bytes being skipped) goes through the endpoint's
 * staging buffer, so one read takes as many small frames as the socket holds. The staging buffer
 * carries nothing from one read to the next (a partial header waits in c->hdr, a partial payload
 * in its reassembly buffer), so one per endpoint serves every connection: the driver reads one
 * connection at a time, and a read reported for a connection it was not last lent to is refused. */
void aq_rpc_pipe_read_buf(aq_rpc *rpc, uint64_t id, uint8_t **buf, size_t *len) {
    aq_rpc_conn *c = aq_rpc_map_get(&rpc->conns, id);
    rpc->stage_conn = id;
    if (!c) {
        *buf = rpc->stage;
        *len = sizeof rpc->stage;
        return;
    }
    if (c->in_payload && c->ra && c->ra->buf && c->remain >= AQ_RPC_STAGE_DIRECT) {
        c->lent_at = c->ra->buf + c->h.frag_off + (c->h.frag_len - c->remain);
        c->lent = c->remain;
    } else if (!c->in_payload && c->big) {
        c->lent_at = c->hdr + c->hgot;
        c->lent = c->hneed - c->hgot;
    } else {
        c->lent_at = rpc->stage;
        c->lent = sizeof rpc->stage;
    }
    *buf = c->lent_at;
    *len = c->lent;
}

static void start_payload(aq_rpc *rpc, aq_rpc_conn *c) {
    if (c->h.flags & AQ_RPC_FLAG_ENC) {
        aq_rpc_auth_begin_open(&rpc->auth, &c->as, c->hdr);
    } else if (c->h.flags & AQ_RPC_FLAG_MAC) {
        aq_rpc_auth_begin(&rpc->auth, &c->as, c->hdr);
    } else {
        uint8_t tmp[AQ_RPC_HDR_LEN];
        memcpy(tmp, c->hdr, sizeof tmp);
        memset(tmp + 56, 0, 8);
        XXH3_64bits_reset(c->xs);
        XXH3_64bits_update(c->xs, tmp, sizeof tmp);
    }
    c->in_payload = true;
    c->remain = c->h.frag_len;
}

/* Header complete: check it and find where its payload goes. false: the conn was cut off. */
static bool header_done(aq_rpc *rpc, aq_rpc_conn *c) {
    aq_rpc_hdr *h = &c->h;
    if (aq_rpc_hdr_decode(c->hdr, h) != 0) {
        rpc->st.dropped_malformed++;
        cutoff(rpc, c, "malformed frame header");
        return false;
    }
    if (h->cluster_id != rpc->cfg.cluster_id) {
        rpc->st.dropped_foreign++;
        cutoff(rpc, c, "frame from another cluster");
        return false;
    }
    if (c->refused) {
        /* The HELLO failed the check; this header names the task the sender waits on, so the
         * notice can reach its call (over UDP to the port that HELLO claimed). */
        aq_rpc_addr to = c->remote;
        aq_rpc_addr_set_port(&to, c->refused_port);
        aq_rpc__auth_failed(rpc, c->refused_port ? &to : NULL, h);
        cutoff(rpc, c, "frame failed authentication");
        return false;
    }
    if (!(h->flags & AQ_RPC_FLAG_MAC) != !rpc->auth.on) {
        if (!c->hello_seen && !c->outbound && h->kind == AQ_RPC_K_HELLO && h->msg_len == 2 &&
            h->frag_len == 2) {
            /* A sender without our secret (or with one we lack): read on to its first call's
             * header to tell it so. */
            aq_rpc__auth_failed(rpc, NULL, h);
            c->refused = true;
            c->ra = NULL;
            start_payload(rpc, c);
            return true;
        }
        aq_rpc__auth_failed(rpc, c->hello_seen && c->peer ? &c->peer->addr : NULL, h);
        cutoff(rpc, c, rpc->auth.on ? "frame without MAC" : "frame with a MAC (we have no secret)");
        return false;
    }
    if (!c->hello_seen) {
        if (h->kind != AQ_RPC_K_HELLO || h->msg_len != 2 || h->frag_len != 2 || c->outbound) {
            rpc->st.dropped_malformed++;
            cutoff(rpc, c, "first frame is not HELLO");
            return false;
        }
        c->ra = NULL;
        start_payload(rpc, c);
        return true;
    }
    if ((h->kind != AQ_RPC_K_CALL && h->kind != AQ_RPC_K_REPLY) || h->task == 0) {
        rpc->st.dropped_malformed++;
        cutoff(rpc, c, "unexpected frame kind");
        return false;
    }
    aq_rpc_peer *p = c->peer;
    aq_rpc_map *m = &c->reasm[h->kind == AQ_RPC_K_REPLY];
    aq_rpc_reasm *ra = aq_rpc_map_get(m, h->task);
    if (h->frag_off == 0) {
        if (ra)
            reasm_drop(rpc, c, ra);
        else if (m->n >= 2 * (size_t)rpc->cfg.window_max) {
            /* An honest sender has at most a window of calls (or replies to ours) half-sent; the
             * byte budget does not bound messages that got no buffer, so count them too. */
            cutoff(rpc, c, "too many partial messages");
            return false;
        }
        ra = calloc(1, sizeof *ra);
        if (!ra || aq_rpc_map_put(m, h->task, ra) != 0) {
            free(ra);
            cutoff(rpc, c, "out of memory");
            return false;
        }
        ra->task = h->task;
        ra->kind = h->kind;
        ra->method = h->method;
        ra->len = h->msg_len;
        ra->e2e_from = h->msg_len;
        bool current = h->src_inc == p->inc;
        bool skip = current && (h->kind == AQ_RPC_K_CALL ? aq_rpc__task_known(p, h->task)
                                                         : !aq_rpc_map_get(&p->calls, h->task));
        if (!skip && h->msg_len) {
            if (p->reasm_bytes + h->msg_len <= rpc->cfg.reassembly_max)
                ra->buf = malloc(h->msg_len);
            if (ra->buf) {
                p->reasm_bytes += h->msg_len;
                rpc->st.reassembly_bytes += h->msg_len;
            } else {
                ra->busy = true;
            }
        }
    } else if (!ra || ra->got != h->frag_off || ra->len != h->msg_len || ra->method != h->method) {
        rpc->st.dropped_malformed++;
        cutoff(rpc, c, "fragment out of order");
        return false;
    }
    c->ra = ra;
    start_payload(rpc, c);
    return true;
}

/* A peer sends over one pipe at a time and opens a new one only when its old one failed, and then
 * resends everything unanswered on it. So once a new pipe from a peer says HELLO, its older inbound
 * pipes here are dead, though our side may never learn it: a reset that reached only the sender
 * leaves our socket open forever, holding the partial messages it was receiving against the peer's
 * reassembly budget until every big call from that peer is answered BUSY. Close them. */
static void close_superseded(aq_rpc *rpc, const aq_rpc_conn *c) {
    uint64_t old[16];
    size_t n = 0;
    for (size_t i = 0; i < rpc->conns.cap && n < sizeof old / sizeof old[0]; i++) {
        const aq_rpc_conn *o = rpc->conns.s[i].key ? rpc->conns.s[i].val : NULL;
        if (o && o != c && !o->outbound && o->hello_seen && o->peer == c->peer)
            old[n++] = o->id;
    }
    for (size_t i = 0; i < n; i++) {
        aq_rpc_conn *o = aq_rpc_map_get(&rpc->conns, old[i]);
        if (!o)
            continue;
        char addr[64];
        aq_rpc__logf(rpc, 2, "closing an older pipe from %s: a new one said HELLO",
                     aq_rpc_addr_format(&o->remote, addr, sizeof addr));
        rpc->io.pipe_close(rpc->io_ctx, o->id);
        conn_free(rpc, o);
    }
}

/* Fragment bytes all in: verify, then act. */
static void fragment_done(aq_rpc *rpc, aq_rpc_conn *c) {
    aq_rpc_hdr h = c->h;
    aq_rpc_reasm *ra = c->ra;
    c->in_payload = false;
    c->hgot = 0;
    c->hneed = AQ_RPC_HDR_LEN;
    c->ra = NULL;
    bool good = true;
    if (h.flags & AQ_RPC_FLAG_ENC) {
        /* Every byte of the fragment is in (in its buffer or, when skipping, seen): verify, and
         * only then decrypt in place. */
        good = aq_rpc_auth_check_open(&c->as, c->hdr + AQ_RPC_HDR_LEN);
        if (good && ra && ra->buf)
            aq_rpc_auth_decrypt(&c->as, ra->buf + h.frag_off, h.frag_len);
        aq_rpc_auth_stream_wipe(&c->as);
    } else if (h.flags & AQ_RPC_FLAG_MAC) {
        good = aq_rpc_auth_check(&c->as, c->hdr + AQ_RPC_HDR_LEN);
    } else if (XXH3_64bits_digest(c->xs) != h.checksum) {
        rpc->st.dropped_malformed++;
        if (ra)
            reasm_drop(rpc, c, ra);
        return;
    }
    if (h.kind == AQ_RPC_K_HELLO && (c->refused || !good)) {
        /* Refused: no peer for it. Remember only where it says it listens, for the notice. */
        if (!c->refused)
            aq_rpc__auth_failed(rpc, NULL, &h);
        c->refused = true;
        c->refused_port = (uint16_t)(c->hello_buf[0] | c->hello_buf[1] << 8);
        return;
    }
    if (!good) {
        /* Nothing from this connection can be trusted any more. */
        if (ra)
            reasm_drop(rpc, c, ra);
        aq_rpc__auth_failed(rpc, c->hello_seen && c->peer ? &c->peer->addr : NULL, &h);
        cutoff(rpc, c, "frame failed authentication");
        return;
    }
    if (h.kind == AQ_RPC_K_HELLO) {
        uint16_t port = (uint16_t)(c->hello_buf[0] | c->hello_buf[1] << 8);
        aq_rpc_addr a = c->remote;
        aq_rpc_addr_set_port(&a, port);
        aq_rpc_peer *p = aq_rpc__peer_from(rpc, &a);
        if (!p) {
            cutoff(rpc, c, "cannot map HELLO to a peer");
            return;
        }
        c->peer = p;
        p->nconns++;
        p->touched_us = aq_rpc__now(rpc);
        c->hello_seen = true;
        close_superseded(rpc, c);
        p->st.bytes_in += AQ_RPC_HDR_LEN + 2;
        aq_rpc__check_inc(rpc, p, &h);
        return;
    }
    aq_rpc_peer *p = c->peer;
    p->st.bytes_in += AQ_RPC_HDR_LEN + h.frag_len;
    ra->got += h.frag_len;
    if ((h.flags & AQ_RPC_FLAG_E2E) && h.frag_off < ra->e2e_from)
        ra->e2e_from = h.frag_off;
    bool skipping = !ra->buf && ra->len;
    if (h.frag_off == 0 && skipping) {
        /* Answer a duplicate or an over-limit call once its first fragment checks out. */
        aq_rpc__handle_msg(rpc, p, &h, NULL, NULL, true, ra->busy && h.kind == AQ_RPC_K_CALL,
                           h.msg_len);
    }
    if (ra->got < ra->len)
        return;
    uint8_t *buf = ra->buf;
    uint32_t len = ra->len, e2e_from = ra->e2e_from;
    ra->buf = NULL;
    if (buf) {
        p->reasm_bytes -= len;
        rpc->st.reassembly_bytes -= len;
    }
    reasm_drop(rpc, c, ra);
    if (skipping)
        return;
    h.frag_off = 0;
    h.frag_len = len;
    aq_rpc__handle_msg(rpc, p, &h, buf, buf, false, false, e2e_from);
}

/* Runs n bytes of conn id's stream (at `at`: the staging buffer, or already in place in the
 * reassembly buffer) through the frame parser, acting on every frame they complete. Stops when the
 * connection is cut off or closed by what a frame caused, or when the driver stops input. */
static void consume(aq_rpc *rpc, uint64_t id, aq_rpc_conn *c, const uint8_t *at, size_t n) {
    while (n > 0) {
        if (!c->in_payload) {
            size_t k = c->hneed - c->hgot;
            if (k > n)
                k = n;
            if (c->hdr + c->hgot != at)
                memcpy(c->hdr + c->hgot, at, k);
            c->hgot += (uint32_t)k;
            at += k;
            n -= k;
            /* The flags say whether a MAC follows the header; the header is checked in full
             * below. */
            if (c->hgot == AQ_RPC_HDR_LEN && c->hneed == AQ_RPC_HDR_LEN &&
                ((c->hdr[4] | c->hdr[5] << 8) & AQ_RPC_FLAG_MAC))
                c->hneed = AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN;
            if (c->hgot < c->hneed)
                continue;
            if (!header_done(rpc, c))
                return; /* cut off: c is gone */
            if (c->remain > 0)
                continue;
        } else {
            size_t k = c->remain < n ? c->remain : n;
            uint32_t pos = c->h.frag_len - c->remain;
            if (!c->hello_seen) {
                memcpy(c->hello_buf + pos, at, k); /* a HELLO's frag_len is 2: checked */
            } else if (c->ra && c->ra->buf) {
                uint8_t *to = c->ra->buf + c->h.frag_off + pos;
                if (to != at)
                    memcpy(to, at, k);
            }
            if (c->h.flags & AQ_RPC_FLAG_MAC)
                aq_rpc_auth_update(&c->as, at, k);
            else if (!(c->h.flags & AQ_RPC_FLAG_E2E))
                XXH3_64bits_update(c->xs, at, k);
            c->remain -= (uint32_t)k;
            at += k;
            n -= k;
            if (c->remain > 0)
                continue;
        }
        c->big = c->h.frag_len >= AQ_RPC_STAGE_DIRECT;
        fragment_done(rpc, c);
        /* Acting on the frame may have cut this connection off or closed it. */
        c = aq_rpc_map_get(&rpc->conns, id);
        if (!c || rpc->closing || rpc->input_stopped)
            return;
    }
}

void aq_rpc_pipe_input(aq_rpc *rpc, uint64_t id, size_t nread) {
    aq_rpc_conn *c = aq_rpc_map_get(&rpc->conns, id);
    if (!c || nread == 0 || rpc->closing || rpc->input_stopped)
        return;
    if (nread > c->lent || (c->lent_at == rpc->stage && rpc->stage_conn != id)) {
        cutoff(rpc, c, "driver reported bytes it was not lent");
        aq_rpc__settle(rpc);
        return;
    }
    const uint8_t *at = c->lent_at;
    c->lent = 0;
    rpc->stage_conn = 0;
    consume(rpc, id, c, at, nread);
    aq_rpc__settle(rpc);
}

void aq_rpc_stop_input(aq_rpc *rpc) {
    rpc->input_stopped = true;
}

/* ---------- teardown ---------- */

void aq_rpc__pipe_peer_free(aq_rpc_peer *p) {
    drop_orphans(p);
    while (!aq_list_empty(&p->pipe_msgs)) {
        aq_rpc_omsg *om = aq_container_of(p->pipe_msgs.next, aq_rpc_omsg, plink);
        aq_rpc__pipe_forget(p, om);
    }
}

void aq_rpc__pipe_free_all(aq_rpc *rpc) {
    aq_rpc_conn *c;
    while ((c = aq_rpc_map_any(&rpc->conns))) {
        rpc->io.pipe_close(rpc->io_ctx, c->id);
        conn_free(rpc, c);
    }
    /* The driver reports no completions after aq_rpc_free: the writes are abandoned here. */
    while (!aq_list_empty(&rpc->wrecs)) {
        aq_rpc_wrec *w = aq_container_of(rpc->wrecs.next, aq_rpc_wrec, link);
        aq_list_del(&w->link);
        aq_rpc__blob_unref(w->blob);
        free(w->enc);
        free(w);
    }
}
