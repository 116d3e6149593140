/* The hand-driven two-core network of rpc_fake_net.h. */
#include "rpc_fake_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t t_now(void *ctx) {
    return ((rfn_ep *)ctx)->n->now;
}

static void t_send(void *ctx, const aq_rpc_addr *to, const struct iovec *iov, int cnt) {
    rfn_ep *e = ctx;
    rfn_net *n = e->n;
    int dst = aq_rpc_addr_eq(to, &n->addr[0]) ? 0 : 1;
    if (n->drop_to[dst] || n->nq >= n->qmax)
        return;
    rfn_pkt *p = &n->q[n->nq++];
    p->to = dst;
    p->from = n->addr[e->i];
    p->len = 0;
    for (int k = 0; k < cnt; k++) {
        memcpy(p->d + p->len, iov[k].iov_base, iov[k].iov_len);
        p->len += iov[k].iov_len;
    }
}

static int t_open(void *ctx, const aq_rpc_addr *to, uint64_t *conn) {
    rfn_ep *e = ctx;
    rfn_net *n = e->n;
    (void)to;
    *conn = RFN_CONN_0 + (uint64_t)++n->opens;
    if (n->npc < RFN_CONNS)
        n->pc[n->npc++] = (rfn_conn){.from = e->i, .id = *conn, .in_id = *conn + RFN_IN_OFF};
    return 0;
}

static void t_write(void *ctx, uint64_t conn, const struct iovec *iov, int cnt, void *tok) {
    rfn_ep *e = ctx;
    rfn_net *n = e->n;
    if (n->nw == RFN_WMAX) {
        /* The core keeps a handful of writes in flight; this many means a bug in it. */
        fprintf(stderr, "rpc_fake_net: more than %d pipe writes outstanding\n", RFN_WMAX);
        abort();
    }
    rfn_write *w = &n->w[n->nw++];
    *w = (rfn_write){.from = e->i, .conn = conn, .tok = tok};
    for (int k = 0; k < cnt; k++)
        w->len += iov[k].iov_len;
    w->d = malloc(w->len ? w->len : 1);
    if (!w->d)
        abort();
    size_t off = 0;
    for (int k = 0; k < cnt; k++) {
        memcpy(w->d + off, iov[k].iov_base, iov[k].iov_len);
        off += iov[k].iov_len;
    }
    n->wbytes += w->len;
    if (n->cap[e->i] && n->ncap[e->i] + w->len <= n->capmax) {
        memcpy(n->cap[e->i] + n->ncap[e->i], w->d, w->len);
        n->ncap[e->i] += w->len;
    }
}

static void t_close(void *ctx, uint64_t conn) {
    rfn_net *n = ((rfn_ep *)ctx)->n;
    n->closes++;
    for (int k = 0; k < n->npc; k++)
        if (n->pc[k].id == conn || n->pc[k].in_id == conn)
            n->pc[k].dead = true;
}

static void t_timer(void *ctx, uint64_t at) {
    rfn_ep *e = ctx;
    e->n->timer[e->i] = at;
}

const aq_rpc_io rfn_io = {t_now, t_send, t_open, t_write, t_close, t_timer};

void rfn_make_cores(rfn_net *n, uint64_t cid, const char *secret, bool encrypt,
                    uint64_t reply_cache_us) {
    for (int i = 0; i < 2; i++) {
        aq_rpc_config c;
        aq_rpc_config_init(&c);
        c.cluster_id = cid;
        c.incarnation = i ? 200 : 100;
        c.self = n->addr[i];
        if (reply_cache_us)
            c.reply_cache_us = reply_cache_us;
        if (secret) {
            c.secret = secret;
            c.secret_len = strlen(secret);
            c.encrypt = encrypt;
        }
        if (aq_rpc_new(&c, &rfn_io, &n->ep[i], &n->rpc[i]) != 0)
            abort();
    }
}

void rfn_init(rfn_net *n, int port0) {
    memset(n, 0, sizeof *n);
    n->qmax = RFN_QMAX;
    for (int i = 0; i < 2; i++) {
        n->ep[i] = (rfn_ep){n, i};
        n->timer[i] = UINT64_MAX;
        char a[32];
        snprintf(a, sizeof a, "127.0.0.1:%d", port0 + i);
        if (aq_rpc_addr_parse(a, &n->addr[i]) != 0)
            abort();
    }
}

void rfn_free(rfn_net *n) {
    for (int i = 0; i < 2; i++)
        if (n->rpc[i])
            aq_rpc_free(n->rpc[i]);
    for (int k = 0; k < n->nw; k++)
        free(n->w[k].d);
    for (int i = 0; i < 2; i++)
        free(n->cap[i]);
    memset(n, 0, sizeof *n);
}

void rfn_deliver(rfn_net *n, const rfn_pkt *p) {
    if (n->rpc[p->to])
        aq_rpc_input_dgram(n->rpc[p->to], &p->from, p->d, p->len);
}

void rfn_pipe_feed(rfn_net *n, int to, uint64_t conn, const uint8_t *d, size_t len) {
    while (len && n->rpc[to]) {
        uint8_t *buf;
        size_t got;
        aq_rpc_pipe_read_buf(n->rpc[to], conn, &buf, &got);
        if (got == 0) {
            fprintf(stderr, "rpc_fake_net: the core offered no read buffer\n");
            abort();
        }
        if (got > len)
            got = len;
        memcpy(buf, d, got);
        aq_rpc_pipe_input(n->rpc[to], conn, got);
        d += got;
        len -= got;
    }
}

static rfn_conn *conn_of(rfn_net *n, uint64_t id) {
    for (int k = 0; k < n->npc; k++)
        if (n->pc[k].id == id)
            return &n->pc[k];
    return NULL;
}

bool rfn_pipes_step(rfn_net *n) {
    bool moved = false;
    for (int k = 0; k < n->npc; k++) {
        rfn_conn *c = &n->pc[k];
        if (!c->up && !c->dead && !n->rpc[1 - c->from]) {
            c->dead = moved = true; /* nobody listens there: refused */
        } else if (!c->up && !c->dead) {
            c->up = moved = true;
            aq_rpc_pipe_accepted(n->rpc[1 - c->from], c->in_id, &n->addr[c->from]);
            if (n->rpc[c->from])
                aq_rpc_pipe_connected(n->rpc[c->from], c->id);
        } else if (c->dead && !c->reported) {
            c->reported = moved = true;
            if (n->rpc[c->from])
                aq_rpc_pipe_closed(n->rpc[c->from], c->id, AQ_ECLOSED);
            if (n->rpc[1 - c->from])
                aq_rpc_pipe_closed(n->rpc[1 - c->from], c->in_id, AQ_ECLOSED);
        }
    }
    if (n->nw) {
        rfn_write w = n->w[0];
        memmove(n->w, n->w + 1, (size_t)(n->nw - 1) * sizeof n->w[0]);
        n->nw--;
        rfn_conn *c = conn_of(n, w.conn);
        if (n->on_write)
            n->on_write(&w);
        if (c && !c->dead)
            rfn_pipe_feed(n, 1 - w.from, c->in_id, w.d, w.len);
        if (n->rpc[w.from])
            aq_rpc_pipe_written(n->rpc[w.from], w.conn, w.tok, c && !c->dead ? 0 : AQ_ECLOSED);
        free(w.d);
        moved = true;
    }
    return moved;
}

void rfn_flush(rfn_net *n) {
    for (;;) {
        while (n->nq) {
            rfn_pkt p = n->q[0];
            memmove(n->q, n->q + 1, (size_t)(n->nq - 1) * sizeof n->q[0]);
            n->nq--;
            rfn_deliver(n, &p);
        }
        if (!n->pipes || !rfn_pipes_step(n))
            break;
    }
}

bool rfn_tick(rfn_net *n) {
    int i = n->timer[0] <= n->timer[1] ? 0 : 1;
    if (n->timer[i] == UINT64_MAX)
        return false;
    if (n->timer[i] > n->now)
        n->now = n->timer[i];
    n->timer[i] = UINT64_MAX;
    aq_rpc_timer_fired(n->rpc[i]);
    return true;
}

size_t rfn_frame(uint8_t *out, uint64_t cid, uint8_t kind, uint64_t task, uint32_t msg_len,
                 uint32_t off, const void *frag, uint32_t flen) {
    aq_rpc_hdr h = {.kind = kind,
                    .method = 1,
                    .cluster_id = cid,
                    .src_inc = 5,
                    .task = task,
                    .msg_len = msg_len,
                    .frag_off = off,
                    .frag_len = flen};
    aq_rpc_hdr_encode(&h, frag, out);
    memcpy(out + AQ_RPC_HDR_LEN, frag, flen);
    return AQ_RPC_HDR_LEN + flen;
}
