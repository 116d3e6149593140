/* The rpc core: peers, calls (caller side), work tables (callee side), incarnations, timers. The
 * TCP pipe's framing and scheduling live in aq_rpc_pipe.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "aq_rpc_int.h"

/* ---------- small helpers ---------- */

uint64_t aq_rpc_now(aq_rpc *rpc) {
    return rpc->io.now_us(rpc->io_ctx);
}

void aq_rpc_logf(aq_rpc *rpc, int level, const char *fmt, ...) {
    if (!rpc->cfg.log)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rpc->cfg.log(rpc->cfg.log_ud, level, msg);
}

static uint64_t prng_next(aq_rpc *rpc) {
    uint64_t x = rpc->prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rpc->prng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static aq_rpc_blob *blob_new(aq_rpc_buf buf) {
    aq_rpc_blob *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = buf.len;
    if (buf.release) {
        b->buf = buf;
        b->data = buf.data;
    } else if (buf.len) {
        b->owned = malloc(buf.len);
        if (!b->owned) {
            free(b);
            return NULL;
        }
        memcpy(b->owned, buf.data, buf.len);
        b->data = b->owned;
    }
    return b;
}

void aq_rpc_blob_unref(aq_rpc_blob *b) {
    if (!b || --b->refs)
        return;
    if (b->owned)
        free(b->owned);
    else if (b->buf.release)
        b->buf.release(b->buf.ctx);
    free(b);
}

static void release_buf(aq_rpc_buf buf) {
    if (buf.release)
        buf.release(buf.ctx);
}

static const char *method_name(const aq_rpc *rpc, uint16_t m, char *tmp, size_t n) {
    for (size_t i = 0; i < rpc->nmethods; i++)
        if (rpc->methods[i].method == m && rpc->methods[i].name)
            return rpc->methods[i].name;
    snprintf(tmp, n, "method %u", m);
    return tmp;
}

static aq_rpc_method_ent *method_ent(aq_rpc *rpc, uint16_t m, bool create) {
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

/* ---------- sending ---------- */

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

bool aq_rpc_frame_encrypts(const aq_rpc *rpc, uint8_t kind) {
    return rpc->cfg.encrypt && (kind == AQ_RPC_K_CALL || kind == AQ_RPC_K_REPLY);
}

int aq_rpc_frame(aq_rpc *rpc, aq_rpc_hdr *h, const void *frag, uint8_t hb[AQ_RPC_HDR_LEN],
                 uint8_t tag[AQ_RPC_MAC_LEN], uint8_t *ct, struct iovec iov[3]) {
    int n = 0;
    const void *body = frag;
    if (rpc->auth.on) {
        /* A fresh counter per packet, retransmits included: the header, hence the one-time key
         * or nonce, never repeats within this incarnation. */
        h->flags |= AQ_RPC_FLAG_MAC;
        h->checksum = ++rpc->pkt_ctr;
        if (aq_rpc_frame_encrypts(rpc, h->kind))
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

static void send_dgram(aq_rpc *rpc, aq_rpc_peer *p, uint8_t kind, uint64_t task, uint16_t method,
                       int32_t status, const void *data, size_t len) {
    aq_rpc_hdr h;
    uint8_t hb[AQ_RPC_HDR_LEN], tag[AQ_RPC_MAC_LEN], ct[AQ_RPC_DGRAM_MAX];
    struct iovec iov[3];
    fill_hdr(rpc, p, &h, kind, task, method, status, (uint32_t)len);
    int n = aq_rpc_frame(rpc, &h, data, hb, tag, ct, iov);
    p->st.bytes_out += AQ_RPC_HDR_LEN + (rpc->auth.on ? AQ_RPC_MAC_LEN : 0) + len;
    rpc->io.send_dgram(rpc->io_ctx, &p->addr, iov, n);
}

/* The same limit with or without a MAC, so a message takes the same path either way. */
static bool fits_dgram(size_t len) {
    return AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + len <= AQ_RPC_DGRAM_MAX;
}

/* Notices never carry a MAC (the point is to reach a sender that cannot check one) and carry
 * nothing secret: the header echoes the refused packet's task and incarnation, the payload is our
 * key's public fingerprint. At most 20 a second, in bursts of 20. */
void aq_rpc_auth_failed(aq_rpc *rpc, const aq_rpc_addr *to, const aq_rpc_hdr *h) {
    rpc->st.dropped_auth++;
    if (!to || h->kind == AQ_RPC_K_AUTH || h->src_inc == 0)
        return;
    uint64_t now = aq_rpc_now(rpc);
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
static void send_msg(aq_rpc *rpc, aq_rpc_peer *p, aq_rpc_omsg *om) {
    if (fits_dgram(om->blob->len)) {
        send_dgram(rpc, p, om->kind, om->task, om->method, om->status, om->blob->data,
                   om->blob->len);
        return;
    }
    aq_rpc_pipe_enqueue(p, om);
}

static void queue_ack(aq_rpc *rpc, aq_rpc_peer *p, uint64_t task) {
    if (p->nacks == AQ_RPC_MAX_ACKS) {
        uint8_t buf[AQ_RPC_MAX_ACKS * 8];
        for (uint32_t i = 0; i < p->nacks; i++)
            for (int b = 0; b < 8; b++)
                buf[i * 8 + b] = (uint8_t)(p->acks[i] >> (8 * b));
        send_dgram(rpc, p, AQ_RPC_K_ACKACK, 0, 0, 0, buf, p->nacks * 8u);
        p->nacks = 0;
    }
    p->acks[p->nacks++] = task;
    if (aq_list_empty(&p->ack_link))
        aq_list_add_tail(&rpc->ack_peers, &p->ack_link);
    /* Not sent at once: the driver runs a timer due now only after the input it has in hand,
     * so the replies of one receive batch share ACKACK datagrams. */
    if (rpc->ack_tn.idx == AQ_RPC_HEAP_NONE)
        aq_rpc_heap_set(&rpc->heap, &rpc->ack_tn, aq_rpc_now(rpc));
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
        send_dgram(rpc, p, AQ_RPC_K_ACKACK, 0, 0, 0, buf, p->nacks * 8u);
        p->nacks = 0;
    }
}

/* Ends every public entry point: the driver's timer follows the earliest deadline. */
void aq_rpc_settle(aq_rpc *rpc) {
    aq_rpc_tnode *t = aq_rpc_heap_top(&rpc->heap);
    uint64_t at = t ? t->at : UINT64_MAX;
    if (at != rpc->armed) {
        rpc->armed = at;
        rpc->io.set_timer(rpc->io_ctx, at);
    }
}

/* Room in the heap for one more timed object, so arming its timer can never fail. */
static int timed_add(aq_rpc *rpc) {
    int err = aq_rpc_heap_reserve(&rpc->heap, rpc->ntimed + 1 - rpc->heap.n);
    if (err == 0)
        rpc->ntimed++;
    return err;
}

static void timed_del(aq_rpc *rpc) {
    rpc->ntimed--;
}

/* ---------- endpoint ---------- */

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
    if (timed_add(rpc) != 0 || timed_add(rpc) != 0) {
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
    aq_rpc_method_ent *e = method_ent(rpc, method, true);
    if (e) {
        e->fn = fn;
        e->ud = ud;
    }
}

void aq_rpc_on_notify(aq_rpc *rpc, aq_rpc_notify_fn fn, void *ud) {
    rpc->notify_fn = fn;
    rpc->notify_ud = ud;
}

void aq_rpc_on_restart(aq_rpc *rpc, aq_rpc_restart_fn fn, void *ud) {
    rpc->restart_fn = fn;
    rpc->restart_ud = ud;
}

void aq_rpc_method_name(aq_rpc *rpc, uint16_t method, const char *name) {
    aq_rpc_method_ent *e = method_ent(rpc, method, true);
    if (e)
        e->name = name;
}

/* ---------- peers ---------- */

/* A 64-bit key for an address; peers are found by it, and by a scan only on a collision. */
static uint64_t addr_key(const aq_rpc_addr *a) {
    uint8_t b[2 + 16];
    size_t n = 0;
    uint16_t port = aq_rpc_addr_port(a);
    b[n++] = (uint8_t)port;
    b[n++] = (uint8_t)(port >> 8);
    if (a->ss.ss_family == AF_INET) {
        memcpy(b + n, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
        n += 4;
    } else {
        memcpy(b + n, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
        n += 16;
    }
    return XXH3_64bits(b, n) | 1;
}

static void sweep_arm(aq_rpc *rpc) {
    if (rpc->sweep_tn.idx != AQ_RPC_HEAP_NONE || rpc->closing)
        return;
    if (rpc->npeers == rpc->npinned && rpc->ret_n == 0)
        return;
    uint64_t every = rpc->cfg.reply_cache_us / 4;
    aq_rpc_heap_set(&rpc->heap, &rpc->sweep_tn, aq_rpc_now(rpc) + (every ? every : 1));
}

static aq_rpc_peer *peer_find(aq_rpc *rpc, const aq_rpc_addr *addr, bool pin) {
    if (!rpc || !addr)
        return NULL;
    if (addr->ss.ss_family != AF_INET && addr->ss.ss_family != AF_INET6)
        return NULL;
    uint64_t key = addr_key(addr);
    aq_rpc_peer *hit = aq_rpc_map_get(&rpc->peer_index, key), *p = NULL;
    if (hit && aq_rpc_addr_eq(&hit->addr, addr))
        p = hit;
    else if (hit) /* another address with the same key: rare, scan */
        for (size_t i = 0; i < rpc->npeers && !p; i++)
            if (aq_rpc_addr_eq(&rpc->peers[i]->addr, addr))
                p = rpc->peers[i];
    if (p) {
        if (pin && !p->pinned) {
            p->pinned = true;
            rpc->npinned++;
        }
        return p;
    }
    if (!hit && aq_rpc_map_reserve(&rpc->peer_index, 1) != 0)
        return NULL;
    if (rpc->npeers == rpc->cap_peers) {
        size_t cap = rpc->cap_peers ? rpc->cap_peers * 2 : 8;
        aq_rpc_peer **v = realloc(rpc->peers, cap * sizeof *v);
        if (!v)
            return NULL;
        rpc->peers = v;
        rpc->cap_peers = cap;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (timed_add(rpc)) {
        free(p);
        return NULL;
    }
    p->rpc = rpc;
    p->addr = *addr;
    p->key = key;
    aq_rpc_addr_format(addr, p->addr_text, sizeof p->addr_text);
    aq_rpc_cc_init(&p->cc, rpc->cfg.window_init, rpc->cfg.window_max, rpc->cfg.rto_min_us,
                   rpc->cfg.rto_max_us);
    /* Above every task used with a freed peer: the far side may still remember those. */
    p->next_task = rpc->task_floor ? rpc->task_floor : 1;
    aq_list_init(&p->queue);
    aq_list_init(&p->inflight);
    aq_list_init(&p->ack_link);
    aq_list_init(&p->pipe_msgs);
    aq_list_init(&p->sendq_small);
    aq_list_init(&p->sendq_large);
    aq_rpc_iset_init(&p->done, AQ_RPC_DONE_RANGES);
    p->tn.idx = AQ_RPC_HEAP_NONE;
    p->tn.kind = AQ_T_PEER;
    p->backoff_us = AQ_RPC_BACKOFF_MIN_US;
    p->touched_us = aq_rpc_now(rpc);
    p->pinned = pin;
    if (pin)
        rpc->npinned++;
    p->idx = rpc->npeers;
    rpc->peers[rpc->npeers++] = p;
    if (!hit)
        aq_rpc_map_put(&rpc->peer_index, key, p); /* room reserved above */
    sweep_arm(rpc);
    return p;
}

aq_rpc_peer *aq_rpc_peer_get(aq_rpc *rpc, const aq_rpc_addr *addr) {
    aq_rpc_peer *p = peer_find(rpc, addr, true);
    if (p)
        aq_rpc_settle(rpc);
    return p;
}

aq_rpc_peer *aq_rpc_peer_from(aq_rpc *rpc, const aq_rpc_addr *addr) {
    return peer_find(rpc, addr, false);
}

void aq_rpc_peer_release(aq_rpc_peer *p) {
    if (!p || !p->pinned)
        return;
    p->pinned = false;
    p->rpc->npinned--;
    p->touched_us = aq_rpc_now(p->rpc);
    sweep_arm(p->rpc);
    aq_rpc_settle(p->rpc);
}

/* ---------- expiry ---------- */

static void inc_set(aq_rpc *rpc, aq_rpc_peer *p, uint64_t inc);

static bool peer_idle(const aq_rpc_peer *p, uint64_t now) {
    return !p->pinned && p->calls.n == 0 && aq_list_empty(&p->queue) &&
           aq_list_empty(&p->inflight) && p->work.n == 0 && p->running == 0 && p->nincoming == 0 &&
           p->nacks == 0 && aq_list_empty(&p->ack_link) && !p->out && p->nconns == 0 &&
           p->tn.idx == AQ_RPC_HEAP_NONE && aq_list_empty(&p->pipe_msgs) &&
           aq_list_empty(&p->sendq_small) && aq_list_empty(&p->sendq_large) &&
           p->reasm_bytes == 0 && now - p->touched_us > p->rpc->cfg.reply_cache_us;
}

static void retired_drop_oldest(aq_rpc *rpc) {
    struct aq_rpc_retired *r = &rpc->retired[rpc->ret_head];
    if (r->inc && (uintptr_t)aq_rpc_map_get(&rpc->retired_index, r->inc) == rpc->ret_head + 1)
        aq_rpc_map_del(&rpc->retired_index, r->inc);
    rpc->ret_head = (rpc->ret_head + 1) % rpc->ret_cap;
    rpc->ret_n--;
}

/* Remember an expired peer's incarnation and its highest task (all of them done). Best effort:
 * without memory the incarnation is simply forgotten. */
static void retired_add(aq_rpc *rpc, uint64_t inc, uint64_t high, uint64_t now) {
    if (rpc->ret_n == rpc->ret_cap && rpc->ret_cap < AQ_RPC_RETIRED_MAX) {
        size_t cap = rpc->ret_cap ? rpc->ret_cap * 2 : 64;
        struct aq_rpc_retired *v = malloc(cap * sizeof *v);
        if (v) {
            for (size_t i = 0; i < rpc->ret_n; i++)
                v[i] = rpc->retired[(rpc->ret_head + i) % rpc->ret_cap];
            for (size_t i = 0; i < rpc->ret_n; i++)
                if (v[i].inc && aq_rpc_map_get(&rpc->retired_index, v[i].inc))
                    aq_rpc_map_put(&rpc->retired_index, v[i].inc, (void *)(uintptr_t)(i + 1));
            free(rpc->retired);
            rpc->retired = v;
            rpc->ret_head = 0;
            rpc->ret_cap = cap;
        }
    }
    if (rpc->ret_cap == 0)
        return;
    if (rpc->ret_n == rpc->ret_cap)
        retired_drop_oldest(rpc);
    if (aq_rpc_map_reserve(&rpc->retired_index, 1) != 0)
        return;
    size_t slot = (rpc->ret_head + rpc->ret_n) % rpc->ret_cap;
    rpc->retired[slot] = (struct aq_rpc_retired){inc, high, now};
    rpc->ret_n++;
    aq_rpc_map_put(&rpc->retired_index, inc, (void *)(uintptr_t)(slot + 1));
}

/* A retired incarnation is heard again: its highest task and everything below count as done. */
static bool retired_take(aq_rpc *rpc, uint64_t inc, uint64_t *high) {
    uintptr_t v = (uintptr_t)aq_rpc_map_get(&rpc->retired_index, inc);
    if (!v)
        return false;
    aq_rpc_map_del(&rpc->retired_index, inc);
    *high = rpc->retired[v - 1].high;
    rpc->retired[v - 1].inc = 0;
    return true;
}

static uint64_t done_high(const aq_rpc_iset *s) {
    return s->n ? s->r[s->n - 1].hi : s->low;
}

static void peer_free(aq_rpc *rpc, aq_rpc_peer *p) {
    inc_set(rpc, p, 0);
    aq_rpc_pipe_peer_free(p);
    aq_rpc_map_free(&p->calls);
    aq_rpc_map_free(&p->work);
    aq_rpc_iset_free(&p->done);
    aq_rpc_heap_remove(&rpc->heap, &p->tn);
    timed_del(rpc);
    free(p);
}

static void peer_expire(aq_rpc *rpc, aq_rpc_peer *p, uint64_t now) {
    if (p->inc)
        retired_add(rpc, p->inc, done_high(&p->done), now);
    if (p->next_task > rpc->task_floor)
        rpc->task_floor = p->next_task;
    size_t last = rpc->npeers - 1;
    rpc->peers[p->idx] = rpc->peers[last];
    rpc->peers[p->idx]->idx = p->idx;
    rpc->npeers--;
    if (aq_rpc_map_get(&rpc->peer_index, p->key) == p) {
        aq_rpc_map_del(&rpc->peer_index, p->key);
        /* Another address with the same key takes its place (room: the slot just freed). */
        for (size_t i = 0; i < rpc->npeers; i++)
            if (rpc->peers[i]->key == p->key) {
                aq_rpc_map_put(&rpc->peer_index, p->key, rpc->peers[i]);
                break;
            }
    }
    rpc->st.peers_expired++;
    aq_rpc_logf(rpc, 3, "peer %s expired after being idle", aq_rpc_peer_name(p));
    peer_free(rpc, p);
}

static void sweep(aq_rpc *rpc, uint64_t now) {
    for (size_t i = rpc->npeers; i-- > 0;)
        if (peer_idle(rpc->peers[i], now))
            peer_expire(rpc, rpc->peers[i], now);
    while (rpc->ret_n && now - rpc->retired[rpc->ret_head].at_us > rpc->cfg.reply_cache_us)
        retired_drop_oldest(rpc);
    if (rpc->ret_n == 0 && rpc->ret_cap) {
        free(rpc->retired);
        rpc->retired = NULL;
        rpc->ret_cap = rpc->ret_head = 0;
        aq_rpc_map_free(&rpc->retired_index);
        memset(&rpc->retired_index, 0, sizeof rpc->retired_index);
    }
    sweep_arm(rpc);
}

void aq_rpc_peer_set_name(aq_rpc_peer *p, const char *name) {
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
}

const char *aq_rpc_peer_name(const aq_rpc_peer *p) {
    return p->name[0] ? p->name : p->addr_text;
}

const aq_rpc_addr *aq_rpc_peer_addr(const aq_rpc_peer *p) {
    return &p->addr;
}

uint64_t aq_rpc_peer_incarnation(const aq_rpc_peer *p) {
    return p->inc;
}

uint64_t aq_rpc_peer_last_heard_us(const aq_rpc_peer *p) {
    return p->last_heard_us;
}

void aq_rpc_peer_stats_get(const aq_rpc_peer *p, aq_rpc_peer_stats *out) {
    *out = p->st;
    out->srtt_us = p->cc.srtt;
    out->rttvar_us = p->cc.rttvar;
    out->rto_us = p->cc.rto;
    out->cwnd = p->cc.cwnd;
    out->inflight = p->cc.inflight;
    out->queued = p->nqueued;
}

void aq_rpc_foreach_peer(aq_rpc *rpc, void (*fn)(void *ud, aq_rpc_peer *p), void *ud) {
    for (size_t i = 0; i < rpc->npeers; i++)
        fn(ud, rpc->peers[i]);
}

/* ---------- caller side ---------- */

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
    const char *m = method_name(rpc, r->method, tmp, sizeof tmp);
    const char *pn = r->peer ? aq_rpc_peer_name(r->peer) : "?";
    const char *pa = r->peer ? r->peer->addr_text : "?";
    double secs = (double)r->elapsed_us / 1e6;
    if (r->err == AQ_ETIMEDOUT)
        snprintf(buf, n, "call %s to %s (%s) timed out after %u attempts in %.2f s", m, pn, pa,
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

static uint64_t transfer_allowance(aq_rpc_peer *p, size_t len) {
    if (fits_dgram(len))
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
    uint64_t now = aq_rpc_now(rpc);
    c->attempts++;
    c->sent_us = now;
    c->dst_inc_sent = p->inc;
    c->state = AQ_CALL_SENT;
    send_msg(rpc, p, &c->om);
    c->resend_us =
        now + aq_rpc_cc_backoff(&p->cc, c->level + 1) + transfer_allowance(p, c->blob->len);
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
static void call_finish(aq_rpc *rpc, aq_rpc_call_s *c, int err, int status, const uint8_t *data,
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
    aq_rpc_pipe_forget(p, &c->om);
    if (err) {
        p->st.failures++;
        if (err == AQ_ETIMEDOUT)
            p->st.timeouts++;
    }
    uint64_t now = aq_rpc_now(rpc);
    result_priv rp = {data, owned, len, false};
    aq_rpc_result r = {.err = err,
                       .status = status,
                       .data = err ? NULL : data,
                       .len = err ? 0 : len,
                       .peer = p,
                       .method = c->method,
                       .attempts = c->attempts,
                       .elapsed_us = now - c->start_us,
                       .priv = &rp};
    if (err) {
        rp.len = 0;
        rp.data = NULL;
    }
    aq_rpc_done_fn cb = c->cb;
    void *ud = c->ud;
    aq_rpc_blob_unref(c->blob);
    free(c);
    timed_del(rpc);
    cb(ud, &r);
    free(rp.owned);
    if (!rpc->closing)
        pump_queue(rpc, p);
}

int aq_rpc_call(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, aq_rpc_buf payload,
                uint64_t timeout_us, aq_rpc_done_fn cb, void *ud) {
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
        release_buf(payload);
        return err;
    }
    aq_rpc_call_s *c = calloc(1, sizeof *c);
    /* Room for its task in the map now, so call_start cannot fail later. */
    if (!c || aq_rpc_map_reserve(&peer->calls, 1 + peer->nqueued) != 0 || timed_add(rpc) != 0) {
        free(c);
        release_buf(payload);
        return AQ_ENOMEM;
    }
    c->blob = blob_new(payload);
    if (!c->blob) {
        timed_del(rpc);
        free(c);
        release_buf(payload);
        return AQ_ENOMEM;
    }
    uint64_t now = aq_rpc_now(rpc);
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
    aq_list_init(&c->om.plink);
    aq_list_init(&c->om.qlink);
    c->pipe = !fits_dgram(payload.len);
    peer->st.calls++;
    if (!aq_list_empty(&peer->queue) || !aq_rpc_cc_can_send(&peer->cc, payload.len)) {
        c->state = AQ_CALL_QUEUED;
        aq_list_add_tail(&peer->queue, &c->link);
        peer->nqueued++;
        call_arm(rpc, c);
    } else {
        call_start(rpc, c);
    }
    aq_rpc_settle(rpc);
    return 0;
}

int aq_rpc_notify(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, const void *data, size_t len) {
    if (!rpc || !peer || (len && !data))
        return AQ_EINVAL;
    if (rpc->closing)
        return AQ_ECLOSED;
    if (!fits_dgram(len))
        return AQ_ETOOBIG;
    send_dgram(rpc, peer, AQ_RPC_K_NOTIFY, 0, method, 0, data, len);
    return 0;
}

static void call_timer(aq_rpc *rpc, aq_rpc_call_s *c, uint64_t now) {
    if (now >= c->deadline_us) {
        call_finish(rpc, c,
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

/* ---------- callee side ---------- */

static void work_free(aq_rpc *rpc, aq_rpc_work *w) {
    aq_rpc_heap_remove(&rpc->heap, &w->tn);
    aq_rpc_pipe_forget(w->peer, &w->om);
    aq_rpc_blob_unref(w->reply);
    free(w);
    timed_del(rpc);
}

/* The task is finished for good: forget its entry, remember its number. */
static void work_retire(aq_rpc *rpc, aq_rpc_work *w) {
    aq_rpc_peer *p = w->peer;
    aq_rpc_map_del(&p->work, w->task);
    if (aq_rpc_iset_add(&p->done, w->task) != 0)
        aq_rpc_logf(rpc, 1, "no memory to remember task %llu from %s as done",
                    (unsigned long long)w->task, aq_rpc_peer_name(p));
    work_free(rpc, w);
}

static void incoming_free(aq_rpc *rpc, aq_rpc_incoming *in) {
    aq_list_del(&in->link);
    in->peer->nincoming--;
    in->peer->touched_us = aq_rpc_now(rpc);
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
    uint64_t now = aq_rpc_now(rpc);
    w->sends++;
    send_msg(rpc, p, &w->om);
    uint64_t next =
        now + aq_rpc_cc_backoff(&p->cc, w->sends) + transfer_allowance(p, w->reply->len);
    aq_rpc_heap_set(&rpc->heap, &w->tn, next < w->expire_us ? next : w->expire_us);
}

void aq_rpc_respond(aq_rpc_incoming *in, int status, aq_rpc_buf reply) {
    aq_rpc *rpc = in->rpc;
    aq_rpc_work *w = in->w;
    if (!w || reply.len > AQ_RPC_MAX_PAYLOAD) {
        if (w) {
            /* A reply that cannot be sent becomes an error status the caller can read. */
            aq_rpc_logf(rpc, 1, "reply of %zu bytes to %s is too big", reply.len,
                        aq_rpc_peer_name(w->peer));
            release_buf(reply);
            aq_rpc_respond(in, AQ_ETOOBIG, (aq_rpc_buf){0});
            return;
        }
        release_buf(reply);
        incoming_free(rpc, in);
        return;
    }
    aq_rpc_peer *p = w->peer;
    w->reply = blob_new(reply);
    if (!w->reply) {
        release_buf(reply);
        w->reply = blob_new((aq_rpc_buf){0});
        status = AQ_ENOMEM;
        if (!w->reply) {
            /* Not even an empty reply: let the caller's resend find the task gone. */
            p->running--;
            aq_rpc_map_del(&p->work, w->task);
            work_free(rpc, w);
            incoming_free(rpc, in);
            aq_rpc_settle(rpc);
            return;
        }
    }
    w->state = AQ_WORK_DONE;
    w->in = NULL;
    w->status = status;
    w->om.kind = AQ_RPC_K_REPLY;
    w->om.task = w->task;
    w->om.method = w->method;
    w->om.status = status;
    w->om.blob = w->reply;
    w->pipe = !fits_dgram(w->reply->len);
    w->expire_us = aq_rpc_now(rpc) + rpc->cfg.reply_cache_us;
    p->running--;
    incoming_free(rpc, in);
    reply_send(rpc, w);
    aq_rpc_settle(rpc);
}

/* Retry-after for BUSY: about one round trip (half the RTO floor before any sample), so the
 * caller comes back once some running handlers had time to finish. */
static uint32_t busy_hint_ms(aq_rpc_peer *p) {
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
        send_dgram(rpc, p, AQ_RPC_K_BUSY, w->task, w->method,
                   (int32_t)(retry_after_ms > INT32_MAX ? INT32_MAX : retry_after_ms), NULL, 0);
        aq_rpc_map_del(&p->work, w->task);
        work_free(rpc, w);
    }
    incoming_free(rpc, in);
    aq_rpc_settle(rpc);
}

bool aq_rpc_task_known(aq_rpc_peer *p, uint64_t task) {
    return aq_rpc_map_get(&p->work, task) || aq_rpc_iset_contains(&p->done, task);
}

/* A CALL for a task we have seen: never run it again. */
static void call_duplicate(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h) {
    aq_rpc_work *w = aq_rpc_map_get(&p->work, h->task);
    p->st.dup_suppressed++;
    if (w && w->state == AQ_WORK_DONE && !w->om.queued) {
        p->st.retransmits++;
        reply_send(rpc, w);
    } else if (w) {
        /* Running, or its reply is still on its way through the pipe. */
        send_dgram(rpc, p, AQ_RPC_K_PENDING, h->task, h->method, 0, NULL, 0);
    } else {
        /* Done, and its reply was acknowledged or expired unacknowledged. */
        send_dgram(rpc, p, AQ_RPC_K_NACK, h->task, h->method, AQ_ETIMEDOUT, NULL, 0);
    }
}

static void call_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                          uint8_t *owned) {
    if (aq_rpc_task_known(p, h->task)) {
        call_duplicate(rpc, p, h);
        free(owned);
        return;
    }
    aq_rpc_method_ent *e = method_ent(rpc, h->method, false);
    if (!e || !e->fn) {
        send_dgram(rpc, p, AQ_RPC_K_NACK, h->task, h->method, AQ_ENOMETHOD, NULL, 0);
        free(owned);
        return;
    }
    if (p->running >= rpc->cfg.running_max) {
        p->st.busy_sent++;
        send_dgram(rpc, p, AQ_RPC_K_BUSY, h->task, h->method, (int32_t)busy_hint_ms(p), NULL, 0);
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
    bool room = w && in && (!h->msg_len || copy) && timed_add(rpc) == 0;
    if (!room || aq_rpc_map_put(&p->work, h->task, w) != 0) {
        if (room)
            timed_del(rpc);
        free(w);
        free(in);
        free(copy);
        p->st.busy_sent++;
        send_dgram(rpc, p, AQ_RPC_K_BUSY, h->task, h->method, (int32_t)busy_hint_ms(p), NULL, 0);
        return;
    }
    w->peer = p;
    w->task = h->task;
    w->state = AQ_WORK_RUNNING;
    w->method = h->method;
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
    aq_list_add_tail(&rpc->incomings, &in->link);
    p->running++;
    p->st.handled++;
    rpc->st.handlers_running++;
    e->fn(e->ud, in);
}

/* Best effort: without memory for the index, only the cross-address replay check is lost. */
static void inc_set(aq_rpc *rpc, aq_rpc_peer *p, uint64_t inc) {
    if (p->inc && aq_rpc_map_get(&rpc->inc_index, p->inc) == p)
        aq_rpc_map_del(&rpc->inc_index, p->inc);
    p->inc = inc;
    if (inc && aq_rpc_map_reserve(&rpc->inc_index, 1) == 0)
        aq_rpc_map_put(&rpc->inc_index, inc, p);
}

/* Everything we hold for an old incarnation of p ends here. */
static void peer_restarted(aq_rpc *rpc, aq_rpc_peer *p, uint64_t new_inc) {
    uint64_t old = p->inc;
    aq_rpc_logf(rpc, 1, "peer %s restarted (incarnation %016llx -> %016llx)", aq_rpc_peer_name(p),
                (unsigned long long)old, (unsigned long long)new_inc);
    if (p->n_old == AQ_RPC_OLD_INCS) {
        memmove(p->old_inc, p->old_inc + 1, (AQ_RPC_OLD_INCS - 1) * sizeof p->old_inc[0]);
        p->n_old--;
    }
    p->old_inc[p->n_old++] = old;
    inc_set(rpc, p, new_inc);
    /* Callee side: its tasks are meaningless now; running handlers' responses are dropped. */
    aq_rpc_work *w;
    while ((w = aq_rpc_map_any(&p->work))) {
        aq_rpc_map_del(&p->work, w->task);
        if (w->state == AQ_WORK_RUNNING) {
            w->in->w = NULL;
            p->running--;
        }
        work_free(rpc, w);
    }
    aq_rpc_iset_free(&p->done);
    aq_rpc_iset_init(&p->done, AQ_RPC_DONE_RANGES);
    /* Caller side: calls the old incarnation may have received end with a clear error. Move them
     * aside first: callbacks may start new calls on this peer. */
    aq_list doomed;
    aq_list_init(&doomed);
    while (!aq_list_empty(&p->inflight)) {
        aq_list *l = p->inflight.next;
        aq_list_del(l);
        aq_list_add_tail(&doomed, l);
    }
    for (aq_list *l = p->queue.next, *next; l != &p->queue; l = next) {
        next = l->next;
        aq_rpc_call_s *c = aq_container_of(l, aq_rpc_call_s, link);
        if (c->attempts) { /* sent before, back in the queue after BUSY */
            aq_list_del(l);
            p->nqueued--;
            c->state = AQ_CALL_BUSYWAIT;
            aq_list_add_tail(&doomed, l);
        }
    }
    while (!aq_list_empty(&doomed)) {
        aq_rpc_call_s *c = aq_container_of(doomed.next, aq_rpc_call_s, link);
        call_finish(rpc, c, AQ_ERESTARTED, 0, NULL, 0, NULL);
    }
    if (rpc->restart_fn)
        rpc->restart_fn(rpc->restart_ud, p, old, new_inc);
}

bool aq_rpc_check_inc(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h) {
    if (h->src_inc == 0) {
        rpc->st.dropped_malformed++;
        return false;
    }
    if (h->dst_inc && h->dst_inc != rpc->inc) {
        /* Addressed to an earlier incarnation of ours: that call must never run here. */
        rpc->st.dropped_stale++;
        if (h->kind == AQ_RPC_K_CALL && (p->inc == 0 || p->inc == h->src_inc)) {
            uint64_t saved = p->inc;
            p->inc = h->src_inc;
            send_dgram(rpc, p, AQ_RPC_K_NACK, h->task, h->method, AQ_ERESTARTED, NULL, 0);
            p->inc = saved;
        }
        return false;
    }
    if (p->inc == h->src_inc)
        return true;
    aq_rpc_peer *owner = aq_rpc_map_get(&rpc->inc_index, h->src_inc);
    if (owner && owner != p) {
        /* That incarnation talks to us from another address: a copy sent from here is a replay
         * (or a spoof), and must not meet this peer's empty task memory. */
        rpc->st.dropped_stale++;
        return false;
    }
    for (uint32_t i = 0; i < p->n_old; i++)
        if (p->old_inc[i] == h->src_inc) {
            rpc->st.dropped_stale++;
            return false;
        }
    if (p->inc == 0) {
        uint64_t high;
        inc_set(rpc, p, h->src_inc);
        if (retired_take(rpc, h->src_inc, &high) && high > p->done.low)
            p->done.low = high;
        return true;
    }
    peer_restarted(rpc, p, h->src_inc);
    return !rpc->closing;
}

static void reply_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                           uint8_t *owned) {
    aq_rpc_call_s *c = aq_rpc_map_get(&p->calls, h->task);
    queue_ack(rpc, p, h->task);
    if (!c) {
        free(owned);
        return;
    }
    uint64_t now = aq_rpc_now(rpc);
    p->st.replies++;
    if (c->attempts == 1 && !c->pipe && fits_dgram(h->msg_len))
        aq_rpc_cc_rtt_sample(&p->cc, now - c->sent_us);
    aq_rpc_cc_on_success(&p->cc);
    call_finish(rpc, c, 0, h->status, data, h->msg_len, owned);
}

static void acks_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data) {
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

void aq_rpc_handle_msg(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                       uint8_t *owned, bool skipped, bool busy) {
    bool tasked = h->kind != AQ_RPC_K_ACKACK && h->kind != AQ_RPC_K_NOTIFY;
    if (tasked && h->task == 0) {
        rpc->st.dropped_malformed++;
        free(owned);
        return;
    }
    if (!aq_rpc_check_inc(rpc, p, h)) {
        free(owned);
        return;
    }
    uint64_t now = aq_rpc_now(rpc);
    p->last_heard_us = now;
    p->touched_us = now;
    aq_rpc_call_s *c;
    switch (h->kind) {
    case AQ_RPC_K_CALL:
        if (busy) {
            p->st.busy_sent++;
            send_dgram(rpc, p, AQ_RPC_K_BUSY, h->task, h->method, (int32_t)busy_hint_ms(p), NULL,
                       0);
        } else if (skipped) {
            if (aq_rpc_task_known(p, h->task))
                call_duplicate(rpc, p, h);
        } else {
            call_incoming(rpc, p, h, data, owned);
            owned = NULL;
        }
        break;
    case AQ_RPC_K_REPLY:
        if (skipped) {
            if (!aq_rpc_map_get(&p->calls, h->task))
                queue_ack(rpc, p, h->task);
        } else {
            reply_incoming(rpc, p, h, data, owned);
            owned = NULL;
        }
        break;
    case AQ_RPC_K_ACKACK:
        acks_incoming(rpc, p, h, data);
        break;
    case AQ_RPC_K_PENDING:
        c = aq_rpc_map_get(&p->calls, h->task);
        if (c && c->state == AQ_CALL_SENT) {
            p->st.pending_seen++;
            c->last_busy = false;
            c->level++;
            c->resend_us =
                now + aq_rpc_cc_backoff(&p->cc, c->level + 1) + transfer_allowance(p, c->blob->len);
            call_arm(rpc, c);
        }
        break;
    case AQ_RPC_K_BUSY:
        c = aq_rpc_map_get(&p->calls, h->task);
        if (c && c->state == AQ_CALL_SENT) {
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
        break;
    case AQ_RPC_K_NACK:
        c = aq_rpc_map_get(&p->calls, h->task);
        if (c) {
            int e = h->status;
            if (e != AQ_ERESTARTED && e != AQ_ENOMETHOD && e != AQ_ETIMEDOUT)
                e = AQ_EPROTO;
            call_finish(rpc, c, e, 0, NULL, 0, NULL);
        }
        break;
    case AQ_RPC_K_NOTIFY:
        if (rpc->notify_fn)
            rpc->notify_fn(rpc->notify_ud, p, h->method, data, h->msg_len);
        break;
    default:
        rpc->st.dropped_malformed++;
        break;
    }
    free(owned);
}

/* Looks a peer up without creating one. */
static aq_rpc_peer *peer_lookup(aq_rpc *rpc, const aq_rpc_addr *addr) {
    aq_rpc_peer *hit = aq_rpc_map_get(&rpc->peer_index, addr_key(addr));
    if (!hit || aq_rpc_addr_eq(&hit->addr, addr))
        return hit;
    for (size_t i = 0; i < rpc->npeers; i++)
        if (aq_rpc_addr_eq(&rpc->peers[i]->addr, addr))
            return rpc->peers[i];
    return NULL;
}

/* A peer says our packet failed its check. Only a call of ours, to that address, in this
 * incarnation of ours, is affected; and with a secret of our own, only as the reason given when
 * the call times out, so that a forged notice cannot end a call. */
static void auth_notice(aq_rpc *rpc, const aq_rpc_addr *from, const aq_rpc_hdr *h,
                        const uint8_t *payload) {
    if (h->flags || h->dst_inc != rpc->inc || h->msg_len != AQ_RPC_FINGERPRINT_LEN || !h->task) {
        rpc->st.dropped_malformed++;
        return;
    }
    aq_rpc_peer *p = peer_lookup(rpc, from);
    aq_rpc_call_s *c = p ? aq_rpc_map_get(&p->calls, h->task) : NULL;
    if (!c || c->state != AQ_CALL_SENT)
        return;
    if (!rpc->auth.on) {
        aq_rpc_logf(rpc, 1, "%s (%s) requires authentication", aq_rpc_peer_name(p), p->addr_text);
        call_finish(rpc, c, AQ_EAUTH, 0, NULL, 0, NULL);
        return;
    }
    if (sodium_memcmp(payload, rpc->auth.fingerprint, AQ_RPC_FINGERPRINT_LEN) != 0)
        c->auth_refused = true;
}

void aq_rpc_input_dgram(aq_rpc *rpc, const aq_rpc_addr *from, const uint8_t *data, size_t len) {
    aq_rpc_hdr h;
    const uint8_t *payload;
    if (rpc->closing)
        return;
    if (aq_rpc_dgram_decode(data, len, &h, &payload) != 0 || h.kind == AQ_RPC_K_HELLO) {
        rpc->st.dropped_malformed++;
        return;
    }
    if (h.cluster_id != rpc->cfg.cluster_id) {
        rpc->st.dropped_foreign++;
        return;
    }
    if (h.kind == AQ_RPC_K_AUTH) {
        auth_notice(rpc, from, &h, payload);
        aq_rpc_settle(rpc);
        return;
    }
    bool mac = h.flags & AQ_RPC_FLAG_MAC, good = mac == rpc->auth.on;
    if (good && (h.flags & AQ_RPC_FLAG_ENC)) {
        /* Verified before decrypting; the plain text goes to our buffer, never the driver's. */
        good = aq_rpc_auth_open(&rpc->auth, data, payload, h.frag_len, data + AQ_RPC_HDR_LEN,
                                rpc->plain);
        payload = rpc->plain;
    } else if (good && mac) {
        good = aq_rpc_auth_verify(&rpc->auth, data, payload, h.frag_len, data + AQ_RPC_HDR_LEN);
    }
    if (!good) {
        aq_rpc_auth_failed(rpc, from, &h);
        aq_rpc_settle(rpc);
        return;
    }
    aq_rpc_peer *p = aq_rpc_peer_from(rpc, from);
    if (!p)
        return;
    p->st.bytes_in += len;
    aq_rpc_handle_msg(rpc, p, &h, payload, NULL, false, false);
    aq_rpc_settle(rpc);
}

/* ---------- timer ---------- */

static void work_timer(aq_rpc *rpc, aq_rpc_work *w, uint64_t now) {
    if (now >= w->expire_us) {
        aq_rpc_logf(rpc, 2, "reply for task %llu to %s expired unacknowledged",
                    (unsigned long long)w->task, aq_rpc_peer_name(w->peer));
        work_retire(rpc, w);
        return;
    }
    w->peer->st.retransmits++;
    reply_send(rpc, w);
}

void aq_rpc_timer_fired(aq_rpc *rpc) {
    rpc->armed = UINT64_MAX;
    uint64_t now = aq_rpc_now(rpc);
    aq_rpc_tnode *t;
    while (!rpc->closing && (t = aq_rpc_heap_top(&rpc->heap)) && t->at <= now) {
        switch (t->kind) {
        case AQ_T_CALL:
            call_timer(rpc, aq_container_of(t, aq_rpc_call_s, tn), now);
            break;
        case AQ_T_WORK:
            work_timer(rpc, aq_container_of(t, aq_rpc_work, tn), now);
            break;
        case AQ_T_ACK:
            aq_rpc_heap_remove(&rpc->heap, t);
            flush_acks(rpc);
            break;
        case AQ_T_SWEEP:
            aq_rpc_heap_remove(&rpc->heap, t);
            sweep(rpc, now);
            break;
        default:
            aq_rpc_heap_remove(&rpc->heap, t);
            aq_rpc_pipe_timer(aq_container_of(t, aq_rpc_peer, tn));
            break;
        }
    }
    aq_rpc_settle(rpc);
}

/* ---------- teardown ---------- */

void aq_rpc_free(aq_rpc *rpc) {
    if (!rpc)
        return;
    rpc->closing = true;
    for (size_t i = 0; i < rpc->npeers; i++) {
        aq_rpc_peer *p = rpc->peers[i];
        while (!aq_list_empty(&p->inflight))
            call_finish(rpc, aq_container_of(p->inflight.next, aq_rpc_call_s, link), AQ_ECLOSED, 0,
                        NULL, 0, NULL);
        while (!aq_list_empty(&p->queue))
            call_finish(rpc, aq_container_of(p->queue.next, aq_rpc_call_s, link), AQ_ECLOSED, 0,
                        NULL, 0, NULL);
    }
    while (!aq_list_empty(&rpc->incomings))
        incoming_free(rpc, aq_container_of(rpc->incomings.next, aq_rpc_incoming, link));
    for (size_t i = 0; i < rpc->npeers; i++) {
        aq_rpc_peer *p = rpc->peers[i];
        aq_rpc_work *w;
        while ((w = aq_rpc_map_any(&p->work))) {
            aq_rpc_map_del(&p->work, w->task);
            work_free(rpc, w);
        }
    }
    aq_rpc_pipe_free_all(rpc);
    for (size_t i = 0; i < rpc->npeers; i++) {
        aq_rpc_peer *p = rpc->peers[i];
        aq_rpc_pipe_peer_free(p);
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
