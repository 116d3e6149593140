/* Peers: one object per remote address, found by a hashed address key; their incarnations (a
 * restart ends everything held for the old one), expiry of idle unpinned peers, and the memory of
 * retired incarnations so that a late duplicate from an expired peer can never run again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_int.h"

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

/* Best effort: without memory for the index, only the cross-address replay check is lost. */
static void inc_set(aq_rpc *rpc, aq_rpc_peer *p, uint64_t inc) {
    if (p->inc && aq_rpc_map_get(&rpc->inc_index, p->inc) == p)
        aq_rpc_map_del(&rpc->inc_index, p->inc);
    p->inc = inc;
    if (inc && aq_rpc_map_reserve(&rpc->inc_index, 1) == 0)
        aq_rpc_map_put(&rpc->inc_index, inc, p);
}

static void sweep_arm(aq_rpc *rpc) {
    if (rpc->sweep_tn.idx != AQ_RPC_HEAP_NONE || rpc->closing)
        return;
    if (rpc->npeers == rpc->npinned && rpc->ret_n == 0)
        return;
    uint64_t every = rpc->cfg.reply_cache_us / 4;
    aq_rpc_heap_set(&rpc->heap, &rpc->sweep_tn, aq_rpc__now(rpc) + (every ? every : 1));
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
    if (aq_rpc__timed_add(rpc)) {
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
    p->touched_us = aq_rpc__now(rpc);
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
        aq_rpc__settle(rpc);
    return p;
}

aq_rpc_peer *aq_rpc__peer_from(aq_rpc *rpc, const aq_rpc_addr *addr) {
    return peer_find(rpc, addr, false);
}

void aq_rpc_peer_release(aq_rpc_peer *p) {
    if (!p || !p->pinned)
        return;
    p->pinned = false;
    p->rpc->npinned--;
    p->touched_us = aq_rpc__now(p->rpc);
    sweep_arm(p->rpc);
    aq_rpc__settle(p->rpc);
}

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
    aq_rpc__pipe_peer_free(p);
    aq_rpc_map_free(&p->calls);
    aq_rpc_map_free(&p->work);
    aq_rpc_iset_free(&p->done);
    aq_rpc_heap_remove(&rpc->heap, &p->tn);
    aq_rpc__timed_del(rpc);
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
    aq_rpc__logf(rpc, 3, "peer %s expired after being idle", aq_rpc_peer_name(p));
    peer_free(rpc, p);
}

void aq_rpc__sweep(aq_rpc *rpc, uint64_t now) {
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

/* Ends p's calls with err: those sent (in flight, or waiting out BUSY in the queue) and, with
 * unsent, also those queued that were never sent. They are moved aside first: callbacks may start
 * new calls on this peer, which go on normally. */
static size_t fail_calls(aq_rpc *rpc, aq_rpc_peer *p, int err, bool unsent) {
    size_t n = 0;
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
        if (unsent || c->attempts) {
            aq_list_del(l);
            p->nqueued--;
            /* Not QUEUED any more: call_finish must not count it out of the queue again. */
            c->state = AQ_CALL_BUSYWAIT;
            aq_list_add_tail(&doomed, l);
        }
    }
    while (!aq_list_empty(&doomed)) {
        aq_rpc_call_s *c = aq_container_of(doomed.next, aq_rpc_call_s, link);
        aq_rpc__call_finish(rpc, c, err, 0, NULL, 0, NULL);
        n++;
    }
    return n;
}

size_t aq_rpc_peer_cancel_calls(aq_rpc_peer *p) {
    aq_rpc *rpc = p->rpc;
    if (rpc->closing)
        return 0;
    size_t n = fail_calls(rpc, p, AQ_ECANCELED, true);
    aq_rpc__settle(rpc);
    return n;
}

/* Everything we hold for an old incarnation of p ends here. */
static void peer_restarted(aq_rpc *rpc, aq_rpc_peer *p, uint64_t new_inc) {
    uint64_t old = p->inc;
    aq_rpc__logf(rpc, 1, "peer %s restarted (incarnation %016llx -> %016llx)", aq_rpc_peer_name(p),
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
        aq_rpc__work_free(rpc, w);
    }
    aq_rpc_iset_free(&p->done);
    aq_rpc_iset_init(&p->done, AQ_RPC_DONE_RANGES);
    /* Caller side: calls the old incarnation may have received end with a clear error. */
    (void)fail_calls(rpc, p, AQ_ERESTARTED, false);
    if (rpc->restart_fn)
        rpc->restart_fn(rpc->restart_ud, p, old, new_inc);
}

bool aq_rpc__check_inc(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h) {
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
            aq_rpc__send_dgram(rpc, p, AQ_RPC_K_NACK, h->task, h->method, AQ_ERESTARTED, NULL, 0);
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

/* Looks a peer up without creating one. */
aq_rpc_peer *aq_rpc__peer_lookup(aq_rpc *rpc, const aq_rpc_addr *addr) {
    aq_rpc_peer *hit = aq_rpc_map_get(&rpc->peer_index, addr_key(addr));
    if (!hit || aq_rpc_addr_eq(&hit->addr, addr))
        return hit;
    for (size_t i = 0; i < rpc->npeers; i++)
        if (aq_rpc_addr_eq(&rpc->peers[i]->addr, addr))
            return rpc->peers[i];
    return NULL;
}
