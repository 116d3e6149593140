/* Membership: heartbeats over UDP, and each configured peer's state from when it was last heard.
 *
 * A peer is up while it was heard within 3 heartbeat intervals, suspect until 6, then down. Any
 * packet from it counts as hearing it (the rpc layer tracks that), so a busy peer whose heartbeats
 * are lost is not declared down. A new incarnation means the peer restarted: it is marked for
 * catch-up, like a peer that comes back after being down. */
#include <string.h>

#include "aq_node_internal.h"
#include "aq_node_place.h"

#define SUSPECT_AFTER 3
#define DOWN_AFTER    6

bool aq_node_member_live(const aq_node *n, size_t i) {
    int s = n->members[i].state;
    return s == AQ_MEMBER_SELF || s == AQ_MEMBER_UP || s == AQ_MEMBER_SUSPECT;
}

size_t aq_node_replicas(const aq_node *n, const void *key, size_t klen, uint32_t *out) {
    uint32_t order[n->nmembers];
    aq_place_order(n->seeds, n->nmembers, key, klen, order);
    size_t r = n->cfg->replicas < n->nmembers ? n->cfg->replicas : n->nmembers;
    memcpy(out, order, r * sizeof *out);
    return r;
}

static void set_state(aq_node *n, aq_member *m, int state, uint64_t now) {
    if (m->state == state)
        return;
    int old = m->state;
    m->state = state;
    if (state == AQ_MEMBER_DOWN) {
        m->down_since_us = now;
        aq_logf(n->log, AQ_LOG_WARN, "%s (%s) is down: not heard for %llu ms", m->conf->name,
                m->conf->address,
                (unsigned long long)(m->last_heard_us ? (now - m->last_heard_us) / 1000 : 0));
        /* Each call pending to it would wait out its deadline (call_timeout), and a write that
         * forwarded it a copy would answer its client that late. They end now instead, as copies
         * not known to have arrived. */
        size_t ended = aq_rpc_peer_cancel_calls(m->peer);
        if (ended)
            aq_logf(n->log, AQ_LOG_WARN, "calls pending to %s canceled: %zu", m->conf->name, ended);
    } else if (state == AQ_MEMBER_UP) {
        if (old == AQ_MEMBER_DOWN) {
            aq_logf(n->log, AQ_LOG_INFO, "%s (%s) is up", m->conf->name, m->conf->address);
            m->needs_sync = true;
            n->next_repair_us = now;
        }
        m->down_since_us = 0;
        m->repair_due_done = false;
    } else if (state == AQ_MEMBER_SUSPECT) {
        aq_logf(n->log, AQ_LOG_INFO, "%s (%s) is suspect", m->conf->name, m->conf->address);
    }
}

static void send_heartbeats(aq_node *n) {
    aq_chunk_stats st;
    aq_chunk_store_stats(n->store, &st);
    const char *name = n->members[n->self].conf->name;
    uint64_t mono = aq_node_now_us(n);
    /* The clock is sent as it reads now, not advanced: a heartbeat is no write. */
    aq_node_heartbeat h = {(const uint8_t *)name,
                           strlen(name),
                           (mono - n->start_us) / 1000,
                           st.chunks,
                           st.bytes,
                           aq_hlc_peek(&n->hlc, aq_node_wall_ms()),
                           mono};
    aq_wr w;
    aq_wr_init(&w);
    aq_node_heartbeat_encode(&w, &h);
    if (w.ok)
        for (size_t i = 0; i < n->nmembers; i++)
            if (n->members[i].peer)
                aq_rpc_notify(n->rpc, n->members[i].peer, AQ_M_HEARTBEAT, w.p, w.len);
    aq_wr_free(&w);
}

void aq_node_members_tick(aq_node *n) {
    uint64_t now = aq_node_now_us(n);
    uint64_t hb = n->cfg->heartbeat_ms * 1000ull;
    send_heartbeats(n);
    for (size_t i = 0; i < n->nmembers; i++) {
        aq_member *m = &n->members[i];
        if (m->is_self || !m->peer)
            continue;
        uint64_t heard = aq_rpc_peer_last_heard_us(m->peer);
        if (heard > m->last_heard_us)
            m->last_heard_us = heard;
        if (!m->last_heard_us) {
            /* Never heard since we started: down from the start, counted from our start. */
            if (m->down_since_us == 0)
                m->down_since_us = n->start_us;
            continue;
        }
        /* Past repair_after its chunks must be copied elsewhere: run a repair pass now, once. */
        if (m->state == AQ_MEMBER_DOWN && !m->repair_due_done && m->down_since_us &&
            now - m->down_since_us >= n->cfg->repair_after_ms * 1000ull) {
            m->repair_due_done = true;
            n->next_repair_us = now;
            aq_logf(n->log, AQ_LOG_WARN,
                    "%s down for longer than repair_after: copying its chunks elsewhere",
                    m->conf->name);
        }
        uint64_t quiet = now > m->last_heard_us ? now - m->last_heard_us : 0;
        if (quiet >= DOWN_AFTER * hb)
            set_state(n, m, AQ_MEMBER_DOWN, now);
        else if (quiet >= SUSPECT_AFTER * hb)
            set_state(n, m, m->state == AQ_MEMBER_DOWN ? AQ_MEMBER_DOWN : AQ_MEMBER_SUSPECT, now);
        else
            set_state(n, m, AQ_MEMBER_UP, now);
    }
}

/* Its clock when it sent the heartbeat is at most its clock now, so (sent - our now) is a lower
 * bound of the offset between the two monotonic clocks; the largest recent one is the tightest.
 * Windows of MONO_WINDOW_US let the bound follow the clocks' drift. */
#define MONO_WINDOW_US 10000000ull
static void note_mono(aq_member *m, uint64_t their_mono, uint64_t now) {
    if (!their_mono)
        return;
    if (!m->mono_window_us || now - m->mono_window_us >= MONO_WINDOW_US) {
        m->mono_off[1] = m->mono_off[0];
        m->mono_have[1] = m->mono_have[0];
        m->mono_have[0] = false;
        m->mono_window_us = now;
    }
    int64_t off = (int64_t)their_mono - (int64_t)now;
    if (!m->mono_have[0] || off > m->mono_off[0])
        m->mono_off[0] = off;
    m->mono_have[0] = true;
}

static aq_member *member_of_peer(aq_node *n, aq_rpc_peer *p) {
    for (size_t i = 0; i < n->nmembers; i++)
        if (n->members[i].peer == p)
            return &n->members[i];
    return NULL;
}

void aq_node_on_heartbeat(void *ud, aq_rpc_peer *from, uint16_t method, const uint8_t *data,
                          size_t len) {
    aq_node *n = ud;
    if (method != AQ_M_HEARTBEAT)
        return;
    aq_node_heartbeat h;
    aq_member *m = member_of_peer(n, from);
    if (!m || aq_node_heartbeat_decode(data, len, &h) != 0)
        return; /* not a configured member, or garbage: nothing to learn */
    if (h.nlen != strlen(m->conf->name) || memcmp(h.name, m->conf->name, h.nlen) != 0) {
        aq_logf(n->log, AQ_LOG_WARN, "heartbeat from %s claims another name (%.*s); ignored",
                m->conf->address, (int)h.nlen, (const char *)h.name);
        return;
    }
    uint64_t now = aq_node_now_us(n);
    m->last_heard_us = now;
    m->incarnation = aq_rpc_peer_incarnation(from);
    if (h.clock)
        aq_node_observe(n, h.clock, m->conf->name);
    note_mono(m, h.mono_us, now);
    if (m->state != AQ_MEMBER_UP)
        set_state(n, m, AQ_MEMBER_UP, now);
}

void aq_node_on_restart(void *ud, aq_rpc_peer *peer, uint64_t old_inc, uint64_t new_inc) {
    aq_node *n = ud;
    aq_member *m = member_of_peer(n, peer);
    if (!m)
        return;
    if (old_inc)
        aq_logf(n->log, AQ_LOG_INFO, "%s restarted (incarnation %016llx -> %016llx)", m->conf->name,
                (unsigned long long)old_inc, (unsigned long long)new_inc);
    m->incarnation = new_inc;
    m->needs_sync = true;
    /* Perhaps another machine, or one that rebooted: its monotonic clock is another one. */
    m->mono_have[0] = m->mono_have[1] = false;
    m->mono_window_us = 0;
    n->next_repair_us = aq_node_now_us(n);
}
