/* cli_watch: a node that stops answering in the middle of a command (a stopped process, a
 * partition) is called down by the other nodes after six heartbeats, but each of the command's
 * calls to it would wait out its own timeout (call_timeout + 5 s) before moving on to the next
 * candidate. So while calls are pending to a node the command has not heard for three heartbeats,
 * it asks the other live nodes how they see it, and once every one that answers reports it down,
 * its calls are canceled (each moves on to its next candidate, cli_client.c) and it is left out of
 * the rest of the command, as a node whose call timed out is.
 *
 * The verdict is the cluster's, not the command's own: a node busy taking in a long transfer may
 * have nothing to say to the command for a while, but its peers hear its heartbeats. One question
 * is out at a time; a timer every heartbeat (at most 1 s) looks for the next. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cli_watch {
    cli *c;
    uv_timer_t timer;
    bool closing;
    uint64_t start_us; /* a node this endpoint never heard counts as silent since then */
    /* The question out: about node target, last heard at heard_us; replies awaited, and how the
     * ones in so far see it. */
    size_t target;
    uint64_t heard_us;
    size_t waiting, down, other;
};

static void decide(struct cli_watch *w) {
    cli *c = w->c;
    size_t t = w->target;
    /* Every node that answered calls it down, and it has said nothing to us meanwhile. */
    if (w->down == 0 || w->other || !c->live[t] ||
        aq_rpc_peer_last_heard_us(c->peers[t]) != w->heard_us)
        return;
    /* Once: a node left out is never asked about again. */
    c->live[t] = false;
    const char *what = c->what;
    if (c->cmd_what)
        c->what = c->cmd_what;
    cli_warn(c,
             "warning: %s (%s) stopped answering and the other nodes call it down; it is left out "
             "of the rest of this command",
             c->conf->nodes[t].name, c->conf->nodes[t].address);
    c->what = what;
    aq_rpc_peer_cancel_calls(c->peers[t]);
}

static void status_cb(void *ud, const aq_rpc_result *r) {
    struct cli_watch *w = ud;
    cli *c = w->c;
    w->waiting--;
    if (w->closing)
        return;
    const char *name = c->conf->nodes[w->target].name;
    aq_rd rd;
    aq_node_status_node sn;
    if (r->err == 0 && r->status == 0 && aq_node_status_rep_begin(&rd, r->data, r->len, &sn) == 0) {
        bool down = false;
        for (uint32_t j = 0; j < sn.npeers; j++) {
            aq_node_status_peer sp;
            if (aq_node_status_rep_next(&rd, &sp) != 0)
                break;
            if (strcmp(sp.name, name) == 0) {
                down = sp.state == AQ_MEMBER_DOWN;
                break;
            }
        }
        if (down)
            w->down++;
        else
            w->other++;
    }
    /* A node that did not answer has no say. */
    if (w->waiting == 0)
        decide(w);
}

/* Asks every other live node how it sees node t. */
static void ask_about(struct cli_watch *w, size_t t) {
    cli *c = w->c;
    w->target = t;
    w->heard_us = aq_rpc_peer_last_heard_us(c->peers[t]);
    w->down = w->other = 0;
    for (size_t j = 0; j < c->conf->nnodes; j++) {
        if (j == t || !c->live[j])
            continue;
        aq_rpc_buf none = {0};
        if (aq_rpc_call(c->rpc, c->peers[j], AQ_M_STATUS, none, CLI_WATCH_ASK_MS * 1000, status_cb,
                        w) == 0)
            w->waiting++;
    }
}

static void tick(uv_timer_t *t) {
    struct cli_watch *w = t->data;
    cli *c = w->c;
    if (w->waiting || !c->rpc)
        return;
    uint64_t now = uv_hrtime() / 1000;
    uint64_t quiet_us = 3 * c->conf->heartbeat_ms * 1000;
    for (size_t i = 0; i < c->conf->nnodes; i++) {
        if (!c->live[i])
            continue;
        aq_rpc_peer_stats st;
        aq_rpc_peer_stats_get(c->peers[i], &st);
        uint64_t heard = aq_rpc_peer_last_heard_us(c->peers[i]);
        if (heard < w->start_us)
            heard = w->start_us;
        if (st.inflight + st.queued == 0 || now - heard < quiet_us)
            continue;
        ask_about(w, i);
        if (w->waiting)
            return;
    }
}

int cli_watch_start(cli *c) {
    struct cli_watch *w = calloc(1, sizeof *w);
    if (!w)
        return AQ_ENOMEM;
    w->c = c;
    w->start_us = uv_hrtime() / 1000;
    uint64_t every = c->conf->heartbeat_ms < 1000 ? c->conf->heartbeat_ms : 1000;
    uv_timer_init(&c->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, tick, every, every);
    /* It watches calls; it never keeps a loop running by itself. */
    uv_unref((uv_handle_t *)&w->timer);
    c->watch = w;
    return 0;
}

void cli_watch_stop(cli *c) {
    if (!c->watch)
        return;
    c->watch->closing = true;
    uv_close((uv_handle_t *)&c->watch->timer, NULL);
}

void cli_watch_free(cli *c) {
    struct cli_watch *w = c->watch;
    if (!w)
        return;
    free(w);
    c->watch = NULL;
}
