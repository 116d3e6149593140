/* The node's observer: on the loop thread, it keeps what the HTTP server shows and publishes it as
 * snapshots (aq_node_metrics.h) to the server's thread (aq_node_http.h).
 *
 * Every tick (the heartbeat interval, at most 1 s) it proves the loop alive, copies this node's
 * status, the latency histograms, the history and the last cluster view into a new snapshot, and
 * publishes it; readiness therefore trails a membership change by at most one tick. Every
 * AQ_NODE_HISTORY_INTERVAL_MS it adds a history sample. Every GATHER_MS it asks each live peer
 * for its STATUS, as `aquifer status` does, so the page can show the whole cluster from any node;
 * every FRAMES_MS it lists the frames: the metadata copies held here (read in the threadpool) and
 * those each live peer lists (LIST, then GET of the ones not known yet). All of it is
 * asynchronous: the loop never waits on a peer or a disk.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aq_frame_meta.h"
#include "aq_node_http.h"
#include "aq_node_internal.h"
#include "aq_node_metrics.h"
#include "aq_node_secret.h"

#define GATHER_MS         2000u
#define FRAMES_MS         5000u
#define GATHER_TIMEOUT_MS 3000u
#define FRAMES_MAX        4096u

typedef struct frame_ent {
    aq_node_frame_info info;
    aq_node_digest digest; /* of the metadata it was read from: unchanged means no new GET */
} frame_ent;

typedef struct member_view {
    aq_node_reply *reply; /* last STATUS reply (decodable), or NULL */
    char error[160];
    bool inflight;
} member_view;

struct aq_node_obs {
    aq_node *n; /* not used once stopped: the node may be freed before the timer closes */
    size_t nmembers;
    uv_timer_t timer;
    aq_node_http *http;
    uint64_t tick_ms;
    bool hooked;
    aq_node_hist calls[AQ_NODE_METRIC_METHODS], handled[AQ_NODE_METRIC_METHODS];
    aq_node_history history;
    uint64_t next_sample_ms, next_gather_ms, next_frames_ms;
    member_view *mv; /* per configured node */
    frame_ent *frames;
    size_t nframes;
    bool frames_partial, frames_running;
};

static uint64_t mono_ms(void) {
    return uv_hrtime() / 1000000;
}

static uint64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- frame metadata ---- */

/* Reads what the page shows from a frame's metadata (aq_frame_meta.h). Bounded by the value's
 * length; a frame has at most AQ_FRAME_COLS_MAX columns. */
static int meta_read(const uint8_t *p, size_t n, aq_node_frame_info *out) {
    memset(out, 0, sizeof *out);
    aq_frame_meta m;
    int rc = aq_frame_meta_decode(p, n, &m);
    if (rc != 0)
        return rc;
    size_t l = strlen(m.name);
    if (!aq_frame_name_ok(m.name, l) || m.ncols > AQ_FRAME_COLS_MAX) {
        aq_frame_meta_free(&m);
        return AQ_EPROTO;
    }
    memcpy(out->name, m.name, l + 1);
    out->source_size = m.source_size;
    out->columns = m.ncols;
    out->chunks = m.nchunks;
    out->rows = m.total_rows;
    aq_frame_meta_free(&m);
    return 0;
}

/* ---- frames round ---- */

typedef struct frames_round {
    aq_node *n;
    uv_work_t work;
    frame_ent *e;
    size_t ne, cap;
    int pending; /* calls in flight + the local scan */
    bool partial;
} frames_round;

static bool round_has(const frames_round *fr, const char *name) {
    for (size_t i = 0; i < fr->ne; i++)
        if (strcmp(fr->e[i].info.name, name) == 0)
            return true;
    return false;
}

static void round_add(frames_round *fr, const aq_node_frame_info *info, aq_node_digest d) {
    if (round_has(fr, info->name) || fr->ne >= FRAMES_MAX)
        return;
    if (fr->ne == fr->cap) {
        size_t cap = fr->cap ? fr->cap * 2 : 16;
        frame_ent *e = realloc(fr->e, cap * sizeof *e);
        if (!e) {
            fr->partial = true;
            return;
        }
        fr->e = e;
        fr->cap = cap;
    }
    fr->e[fr->ne].info = *info;
    fr->e[fr->ne].digest = d;
    fr->ne++;
}

static int frame_cmp(const void *a, const void *b) {
    return strcmp(((const frame_ent *)a)->info.name, ((const frame_ent *)b)->info.name);
}

static void round_unref(frames_round *fr) {
    if (--fr->pending > 0)
        return;
    aq_node *n = fr->n;
    aq_node_obs *o = n->obs;
    if (o) {
        if (fr->ne)
            qsort(fr->e, fr->ne, sizeof *fr->e, frame_cmp);
        free(o->frames);
        o->frames = fr->e;
        o->nframes = fr->ne;
        o->frames_partial = fr->partial;
        o->frames_running = false;
        fr->e = NULL;
    }
    free(fr->e);
    free(fr);
    aq_node_op_end(n);
}

typedef struct frames_scan_ent {
    aq_node_frame_info info;
    aq_node_digest d;
    bool ok;
} frames_scan_ent;

typedef struct key_acc {
    uint8_t (*keys)[AQ_NODE_KEY_MAX];
    uint8_t *klen;
    size_t n, cap;
} key_acc;

static int scan_key(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                    uint8_t kind) {
    (void)size;
    (void)d;
    key_acc *a = ud;
    if (kind == AQ_KIND_TOMBSTONE || a->n >= FRAMES_MAX)
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        uint8_t(*k)[AQ_NODE_KEY_MAX] = realloc(a->keys, cap * sizeof *k);
        if (!k)
            return 1;
        a->keys = k;
        uint8_t *l = realloc(a->klen, cap);
        if (!l)
            return 1;
        a->klen = l;
        a->cap = cap;
    }
    memcpy(a->keys[a->n], key, klen);
    a->klen[a->n++] = (uint8_t)klen;
    return 0;
}

/* Threadpool: the metadata copies held here. */
static void scan_work(uv_work_t *w) {
    frames_round *fr = w->data;
    aq_node *n = fr->n;
    key_acc a = {0};
    static const uint8_t prefix[2] = {0x1f, 'M'};
    if (aq_chunk_iterate(n->store, prefix, sizeof prefix, scan_key, &a) != 0)
        fr->partial = true;
    for (size_t i = 0; i < a.n; i++) {
        aq_chunk_ref *ref;
        if (aq_node_get_live(n, a.keys[i], a.klen[i], &ref) != 0)
            continue;
        aq_node_frame_info info;
        if (meta_read(aq_chunk_ref_data(ref), aq_chunk_ref_len(ref), &info) == 0) {
            aq_chunk_digest cd = aq_chunk_ref_digest(ref);
            round_add(fr, &info, (aq_node_digest){cd.hi, cd.lo});
        } else {
            fr->partial = true; /* a frame the page cannot show: say the list is incomplete */
        }
        aq_chunk_ref_release(ref);
    }
    free(a.keys);
    free(a.klen);
}

typedef struct meta_get {
    frames_round *fr;
    aq_node_digest d;
} meta_get;

static void get_done(void *ud, const aq_rpc_result *r) {
    meta_get *g = ud;
    frames_round *fr = g->fr;
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    aq_node_frame_info info;
    if (r->err == 0 && r->status == 0 &&
        aq_node_get_rep_decode(r->data, r->len, &kind, &d, &v, &vlen) == 0 &&
        meta_read(v, vlen, &info) == 0)
        round_add(fr, &info, d);
    else if (!(r->err == 0 && r->status == AQ_ENOTFOUND))
        fr->partial = true; /* removed meanwhile is no gap; anything else is */
    free(g);
    round_unref(fr);
}

/* A cached entry for that name and digest from the previous round, or NULL. */
static const frame_ent *cached(const aq_node_obs *o, const char *name, aq_node_digest d) {
    for (size_t i = 0; i < o->nframes; i++)
        if (strcmp(o->frames[i].info.name, name) == 0 && o->frames[i].digest.hi == d.hi &&
            o->frames[i].digest.lo == d.lo)
            return &o->frames[i];
    return NULL;
}

typedef struct list_call {
    frames_round *fr;
    size_t member;
} list_call;

static void list_done(void *ud, const aq_rpc_result *r) {
    list_call *lc = ud;
    frames_round *fr = lc->fr;
    aq_node *n = fr->n;
    aq_rd rd;
    bool more;
    uint32_t count;
    if (r->err || r->status || aq_node_list_rep_begin(&rd, r->data, r->len, &more, &count) != 0) {
        fr->partial = true;
    } else {
        fr->partial |= more;
        aq_node_list_entry e;
        for (uint32_t i = 0; i < count && aq_node_list_rep_next(&rd, &e) == 0; i++) {
            if (e.kind == AQ_KIND_TOMBSTONE || e.klen < 3 || e.klen - 2 > AQ_FRAME_NAME_MAX)
                continue;
            char name[AQ_FRAME_NAME_MAX + 1];
            memcpy(name, e.key + 2, e.klen - 2);
            name[e.klen - 2] = 0;
            if (round_has(fr, name))
                continue;
            const frame_ent *c = n->obs ? cached(n->obs, name, e.digest) : NULL;
            if (c) {
                round_add(fr, &c->info, c->digest);
                continue;
            }
            if (!n->obs || n->stopping)
                continue;
            meta_get *g = calloc(1, sizeof *g);
            if (!g) {
                fr->partial = true;
                continue;
            }
            g->fr = fr;
            g->d = e.digest;
            aq_wr w;
            aq_wr_init(&w);
            aq_node_key_req_encode(&w, 0, e.key, e.klen);
            if (!w.ok) {
                aq_wr_free(&w);
                free(g);
                fr->partial = true;
                continue;
            }
            fr->pending++;
            aq_rpc_buf b = {w.p, w.len, free, w.p};
            if (aq_rpc_call(n->rpc, n->members[lc->member].peer, AQ_M_GET, b,
                            GATHER_TIMEOUT_MS * 1000ull, get_done, g) != 0) {
                fr->pending--;
                free(g);
                fr->partial = true;
            }
        }
    }
    free(lc);
    round_unref(fr);
}

static void scan_after(uv_work_t *w, int status) {
    frames_round *fr = w->data;
    aq_node *n = fr->n;
    if (status)
        fr->partial = true;
    if (n->obs && !n->stopping && n->rpc) {
        aq_node_list_req q = {AQ_LIST_INTERNAL, (const uint8_t *)"\x1fM", 2, NULL, 0, FRAMES_MAX};
        for (size_t i = 0; i < n->nmembers; i++) {
            if (i == n->self || !n->members[i].peer)
                continue;
            if (!aq_node_member_live(n, i)) {
                fr->partial = true;
                continue;
            }
            list_call *lc = calloc(1, sizeof *lc);
            aq_wr wr;
            aq_wr_init(&wr);
            aq_node_list_req_encode(&wr, &q);
            if (!lc || !wr.ok) {
                free(lc);
                aq_wr_free(&wr);
                fr->partial = true;
                continue;
            }
            lc->fr = fr;
            lc->member = i;
            fr->pending++;
            aq_rpc_buf b = {wr.p, wr.len, free, wr.p};
            if (aq_rpc_call(n->rpc, n->members[i].peer, AQ_M_LIST, b, GATHER_TIMEOUT_MS * 1000ull,
                            list_done, lc) != 0) {
                fr->pending--;
                free(lc);
                fr->partial = true;
            }
        }
    }
    round_unref(fr);
}

static void frames_start(aq_node_obs *o) {
    aq_node *n = o->n;
    frames_round *fr = calloc(1, sizeof *fr);
    if (!fr)
        return;
    fr->n = n;
    fr->pending = 1;
    fr->work.data = fr;
    aq_node_op_begin(n);
    o->frames_running = true;
    if (uv_queue_work(n->loop, &fr->work, scan_work, scan_after) != 0) {
        fr->partial = true;
        scan_after(&fr->work, 0);
    }
}

/* ---- the cluster view: STATUS of each live peer ---- */

typedef struct status_call {
    aq_node *n;
    size_t member;
} status_call;

static void status_done(void *ud, const aq_rpc_result *r) {
    status_call *sc = ud;
    aq_node_obs *o = sc->n->obs;
    if (o) {
        member_view *mv = &o->mv[sc->member];
        mv->inflight = false;
        aq_node_reply_unref(mv->reply);
        mv->reply = NULL;
        if (r->err == 0 && r->status == 0) {
            size_t len;
            uint8_t *p = aq_rpc_result_take(r, &len);
            aq_rd rd;
            aq_node_status_node sn;
            if (p && aq_node_status_rep_begin(&rd, p, len, &sn) == 0) {
                mv->reply = aq_node_reply_new(p, len);
                if (!mv->reply)
                    snprintf(mv->error, sizeof mv->error, "out of memory");
            } else {
                free(p);
                snprintf(mv->error, sizeof mv->error, "sent a malformed STATUS reply");
            }
        } else {
            aq_rpc_result_describe(sc->n->rpc, r, mv->error, sizeof mv->error);
        }
    }
    free(sc);
}

/* Why member i, which this node sees down, is not asked. */
static void down_reason(aq_node *n, size_t i, char *out, size_t cap) {
    const aq_member *m = &n->members[i];
    if (m->last_heard_us)
        snprintf(out, cap, "down: not heard from for %.1f s",
                 (double)(aq_node_now_us(n) - m->last_heard_us) / 1e6);
    else
        snprintf(out, cap, "down: never heard from");
}

static void gather(aq_node_obs *o) {
    aq_node *n = o->n;
    for (size_t i = 0; i < n->nmembers; i++) {
        member_view *mv = &o->mv[i];
        const aq_member *m = &n->members[i];
        if (m->is_self || mv->inflight)
            continue;
        if (!m->peer || !aq_node_member_live(n, i)) {
            aq_node_reply_unref(mv->reply);
            mv->reply = NULL;
            down_reason(n, i, mv->error, sizeof mv->error);
            continue;
        }
        status_call *sc = malloc(sizeof *sc);
        if (!sc)
            continue;
        sc->n = n;
        sc->member = i;
        mv->inflight = true;
        aq_rpc_buf none = {0};
        if (aq_rpc_call(n->rpc, m->peer, AQ_M_STATUS, none, GATHER_TIMEOUT_MS * 1000ull,
                        status_done, sc) != 0) {
            mv->inflight = false;
            free(sc);
        }
    }
}

/* ---- snapshots ---- */

static void readiness(aq_node_obs *o, aq_node_snap *s) {
    aq_node *n = o->n;
    s->loaded = n->serving || n->stopping;
    s->stopping = n->stopping;
    if (n->stopping) {
        snprintf(s->not_ready, sizeof s->not_ready, "stopping");
        return;
    }
    if (!n->serving) {
        const char *dir = n->members[n->self].conf->data_dir;
        snprintf(s->not_ready, sizeof s->not_ready, "%s%s",
                 dir ? "loading the data_dir " : "starting", dir ? dir : "");
        return;
    }
    size_t live = 0, off = 0;
    char down[160] = "";
    for (size_t i = 0; i < n->nmembers; i++) {
        if (aq_node_member_live(n, i)) {
            live++;
        } else if (off < sizeof down) {
            int w = snprintf(down + off, sizeof down - off, "%s%s", off ? ", " : "",
                             n->members[i].conf->name);
            off += w > 0 ? (size_t)w : 0;
        }
    }
    if (live >= n->cfg->replicas) {
        s->ready = true;
        return;
    }
    snprintf(s->not_ready, sizeof s->not_ready,
             "sees %zu live node%s, fewer than the %u copies of every chunk need (down: %s)", live,
             live == 1 ? "" : "s", n->cfg->replicas, down);
}

static void view_from_reply(aq_node_view *v, const member_view *mv) {
    if (!mv->reply) {
        snprintf(v->error, sizeof v->error, "%s", mv->error[0] ? mv->error : "not asked yet");
        return;
    }
    aq_node_reply_ref(mv->reply);
    v->reply = mv->reply;
    v->reachable = true;
}

static aq_node_snap *snapshot(aq_node_obs *o) {
    aq_node *n = o->n;
    aq_node_snap *s = aq_node_snap_new(n->nmembers);
    if (!s)
        return NULL;
    snprintf(s->cluster, sizeof s->cluster, "%s", n->cfg->name);
    s->replicas = n->cfg->replicas;
    s->wall_ms = wall_ms();
    s->self = n->self;
    readiness(o, s);
    memcpy(s->calls, o->calls, sizeof s->calls);
    memcpy(s->handled, o->handled, sizeof s->handled);
    s->history = o->history;
    for (size_t i = 0; i < n->nmembers; i++) {
        aq_node_view *v = &s->views[i];
        const aq_node_config_node *c = n->members[i].conf;
        snprintf(v->name, sizeof v->name, "%s", c->name);
        snprintf(v->address, sizeof v->address, "%s", c->address);
        snprintf(v->http_address, sizeof v->http_address, "%s", c->http_address);
        if (i != n->self) {
            /* Membership learns of a death before the next gather does: it decides. */
            if (n->serving && !aq_node_member_live(n, i))
                down_reason(n, i, v->error, sizeof v->error);
            else
                view_from_reply(v, &o->mv[i]);
            continue;
        }
        if (!n->serving || !n->rpc) {
            snprintf(v->error, sizeof v->error, "%s", s->not_ready);
            continue;
        }
        v->peers = calloc(n->nmembers, sizeof *v->peers);
        if (!v->peers) {
            aq_node_snap_unref(s);
            return NULL;
        }
        aq_node_status_fill(n, &v->node, v->peers);
        v->npeers = v->node.npeers;
        v->reachable = true;
    }
    s->frames = calloc(o->nframes ? o->nframes : 1, sizeof *s->frames);
    if (!s->frames) {
        aq_node_snap_unref(s);
        return NULL;
    }
    for (size_t i = 0; i < o->nframes; i++)
        s->frames[i] = o->frames[i].info;
    s->nframes = o->nframes;
    s->frames_partial = o->frames_partial;
    return s;
}

static void sample(aq_node_obs *o) {
    aq_node *n = o->n;
    aq_node_sample p = {.t_ms = wall_ms(), .handled = n->handled_total};
    for (size_t i = 0; i < n->nmembers; i++) {
        if (!n->members[i].peer)
            continue;
        aq_rpc_peer_stats ps;
        aq_rpc_peer_stats_get(n->members[i].peer, &ps);
        p.calls += ps.calls;
        p.bytes_in += ps.bytes_in;
        p.bytes_out += ps.bytes_out;
        p.retransmits += ps.retransmits;
        p.busy += ps.busy_seen;
    }
    aq_node_history_push(&o->history, &p);
}

static void on_observe(void *ud, int kind, uint16_t method, int err, uint64_t elapsed_us) {
    aq_node_obs *o = ud;
    (void)err;
    if (method >= AQ_NODE_METRIC_METHODS)
        return;
    aq_node_hist_add(kind == AQ_RPC_OBS_CALL ? &o->calls[method] : &o->handled[method], elapsed_us);
}

static void tick(uv_timer_t *t) {
    aq_node_obs *o = t->data;
    aq_node *n = o->n;
    uint64_t now = mono_ms();
    aq_node_http_alive(o->http, now);
    if (n->serving && n->rpc && !n->stopping) {
        if (!o->hooked) {
            aq_rpc_on_observe(n->rpc, on_observe, o);
            o->hooked = true;
            o->next_sample_ms = now;
        }
        if (now >= o->next_sample_ms) {
            sample(o);
            o->next_sample_ms = now + AQ_NODE_HISTORY_INTERVAL_MS;
        }
        if (now >= o->next_gather_ms) {
            gather(o);
            o->next_gather_ms = now + GATHER_MS;
        }
        if (now >= o->next_frames_ms && !o->frames_running) {
            frames_start(o);
            o->next_frames_ms = now + FRAMES_MS;
        }
    }
    aq_node_snap *s = snapshot(o);
    if (s)
        aq_node_http_publish(o->http, s);
}

/* ---- lifecycle ---- */

static void obs_free(aq_node_obs *o) {
    for (size_t i = 0; o->mv && i < o->nmembers; i++)
        aq_node_reply_unref(o->mv[i].reply);
    free(o->mv);
    free(o->frames);
    free(o);
}

static void timer_closed(uv_handle_t *h) {
    obs_free(h->data);
}

int aq_node_obs_start(aq_node *n) {
    const aq_node_config_node *me = n->members[n->self].conf;
    if (!me->http_address[0])
        return 0;
    aq_node_obs *o = calloc(1, sizeof *o);
    if (!o)
        return AQ_ENOMEM;
    o->n = n;
    o->nmembers = n->nmembers;
    o->mv = calloc(n->nmembers, sizeof *o->mv);
    if (!o->mv) {
        obs_free(o);
        return AQ_ENOMEM;
    }
    uint8_t *token = NULL;
    size_t token_len = 0;
    if (aq_node_config_http_token_required(n->cfg, me)) {
        char why[512];
        int err =
            aq_node_http_token_read(n->cfg->http_token_file, &token, &token_len, why, sizeof why);
        if (err) {
            aq_logf(n->log, AQ_LOG_ERROR, "%s", why);
            obs_free(o);
            return err;
        }
    }
    o->tick_ms = n->cfg->heartbeat_ms < 1000 ? n->cfg->heartbeat_ms : 1000;
    aq_node_http_opts ho = {
        .addr = &me->http_sockaddr,
        .address = me->http_address,
        .token = token,
        .token_len = token_len,
        /* Ten ticks, and never less than 5 s, so a loaded machine does not look dead. */
        .alive_max_ms = o->tick_ms * 10 > 5000 ? o->tick_ms * 10 : 5000,
        .log = n->log,
    };
    int err = aq_node_http_start(&ho, &o->http);
    aq_node_secret_free(token, token_len);
    if (err) {
        obs_free(o);
        return err;
    }
    uv_timer_init(n->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, tick, 0, o->tick_ms);
    n->obs = o;
    return 0;
}

void aq_node_obs_stop(aq_node *n) {
    aq_node_obs *o = n->obs;
    if (!o)
        return;
    n->obs = NULL;
    /* Joins the server's thread: requests in progress only render a snapshot, so this is short. */
    aq_node_http_stop(o->http);
    o->http = NULL;
    uv_timer_stop(&o->timer);
    uv_close((uv_handle_t *)&o->timer, timer_closed);
}
