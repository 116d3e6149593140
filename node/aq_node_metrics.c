/* Snapshots of a node's counters and their renderings: Prometheus text and JSON. Runs on the HTTP
 * thread on immutable snapshots (see aq_node_metrics.h). */
#include "aq_node_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_error.h"
#include "aq_json.h"
#include "aq_node_status_json.h"

const uint64_t aq_node_hist_bounds_us[AQ_NODE_HIST_BUCKETS] = {
    100,   250,   500,    1000,   2500,    5000,    10000,
    25000, 50000, 100000, 250000, 1000000, 2500000, 10000000};

void aq_node_hist_add(aq_node_hist *h, uint64_t us) {
    h->count++;
    h->sum_us += us;
    for (size_t i = 0; i < AQ_NODE_HIST_BUCKETS; i++) {
        if (us <= aq_node_hist_bounds_us[i]) {
            h->buckets[i]++;
            return;
        }
    }
}

void aq_node_history_push(aq_node_history *h, const aq_node_sample *s) {
    h->s[h->next] = *s;
    h->next = (h->next + 1) % AQ_NODE_HISTORY_LEN;
    if (h->n < AQ_NODE_HISTORY_LEN)
        h->n++;
}

aq_node_reply *aq_node_reply_new(uint8_t *p, size_t len) {
    aq_node_reply *r = malloc(sizeof *r);
    if (!r) {
        free(p);
        return NULL;
    }
    r->refs = 1;
    r->p = p;
    r->len = len;
    return r;
}

void aq_node_reply_ref(aq_node_reply *r) {
    __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
}

void aq_node_reply_unref(aq_node_reply *r) {
    if (!r || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    free(r->p);
    free(r);
}

aq_node_snap *aq_node_snap_new(size_t nviews) {
    aq_node_snap *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->views = calloc(nviews ? nviews : 1, sizeof *s->views);
    if (!s->views) {
        free(s);
        return NULL;
    }
    s->nviews = nviews;
    s->refs = 1;
    return s;
}

void aq_node_snap_ref(aq_node_snap *s) {
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void aq_node_snap_unref(aq_node_snap *s) {
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < s->nviews; i++) {
        free(s->views[i].peers);
        aq_node_reply_unref(s->views[i].reply);
    }
    free(s->views);
    free(s->frames);
    free(s);
}

/* ---- helpers ---- */

static char *finish(FILE *f, char **buf, size_t *len) {
    if (fclose(f) != 0) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

static void json_str(FILE *f, const char *s) {
    aq_json_str(f, s, strlen(s));
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void prom_label(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* ---- JSON: one node as `status --json` shows it ---- */

/* True when p holds a whole STATUS reply: the node, exactly npeers peers, then its own index or
 * (an older build) nothing. */
static bool reply_whole(const uint8_t *p, size_t len) {
    aq_rd rd;
    aq_node_status_node n;
    aq_node_status_peer peer;
    if (aq_node_status_rep_begin(&rd, p, len, &n) != 0)
        return false;
    for (uint32_t j = 0; j < n.npeers; j++)
        if (aq_node_status_rep_next(&rd, &peer) != 0)
            return false;
    uint32_t self;
    int err = aq_node_status_rep_self_read(&rd, &self); /* absent from an older build's */
    return err == AQ_ENOTFOUND || (err == 0 && self <= n.npeers);
}

static void view_json(FILE *f, const aq_node_view *v) {
    fputs("{\"name\": ", f);
    json_str(f, v->name);
    fputs(", \"address\": ", f);
    json_str(f, v->address);
    fputs(", \"http_address\": ", f);
    if (v->http_address[0])
        json_str(f, v->http_address);
    else
        fputs("null", f);
    aq_node_status_node decoded;
    const aq_node_status_node *n = &v->node;
    aq_rd rd;
    bool ok = v->reachable;
    if (ok && v->reply) {
        ok = reply_whole(v->reply->p, v->reply->len) &&
             aq_node_status_rep_begin(&rd, v->reply->p, v->reply->len, &decoded) == 0;
        n = &decoded;
    }
    fprintf(f, ", \"reachable\": %s", ok ? "true" : "false");
    if (!ok) {
        fputs(", \"state\": \"unreachable\", \"error\": ", f);
        json_str(f, v->reachable ? "sent a malformed STATUS reply" : v->error);
        fputs(", \"peers\": []}", f);
        return;
    }
    aq_node_status_json_node(f, n);
    fputs(", \"peers\": [", f);
    if (v->reply) {
        aq_node_status_peer p;
        for (uint32_t j = 0; j < n->npeers && aq_node_status_rep_next(&rd, &p) == 0; j++)
            aq_node_status_json_peer(f, &p, j == 0);
    } else {
        for (size_t j = 0; j < v->npeers; j++)
            aq_node_status_json_peer(f, &v->peers[j], j == 0);
    }
    fputs("]}", f);
}

static void ready_json(FILE *f, const aq_node_snap *s) {
    fprintf(f, "\"ready\": %s, \"not_ready\": ", s->ready ? "true" : "false");
    if (s->ready)
        fputs("null", f);
    else
        json_str(f, s->not_ready);
}

char *aq_node_snap_status_json(const aq_node_snap *s, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fputs("{\"cluster\": ", f);
    json_str(f, s->cluster);
    fprintf(f, ", \"replicas\": %u, ", s->replicas);
    ready_json(f, s);
    fputs(", \"node\": ", f);
    view_json(f, &s->views[s->self]);
    fputs("}\n", f);
    return finish(f, &buf, len);
}

char *aq_node_snap_cluster_json(const aq_node_snap *s, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    size_t reachable = 0;
    for (size_t i = 0; i < s->nviews; i++)
        reachable += s->views[i].reachable;
    fputs("{\"cluster\": ", f);
    json_str(f, s->cluster);
    fprintf(f, ", \"replicas\": %u, \"reachable\": %zu, \"self\": ", s->replicas, reachable);
    json_str(f, s->views[s->self].name);
    fprintf(f, ", \"time_ms\": %llu, ", (unsigned long long)s->wall_ms);
    ready_json(f, s);
    fputs(", \"nodes\": [", f);
    for (size_t i = 0; i < s->nviews; i++) {
        fputs(i ? ",\n " : "\n ", f);
        view_json(f, &s->views[i]);
    }
    fprintf(f, "], \"frames_partial\": %s, \"frames\": [", s->frames_partial ? "true" : "false");
    for (size_t i = 0; i < s->nframes; i++) {
        const aq_node_frame_info *fr = &s->frames[i];
        fputs(i ? ",\n {\"name\": " : "\n {\"name\": ", f);
        json_str(f, fr->name);
        fprintf(f, ", \"rows\": %llu, \"columns\": %u, \"chunks\": %u, \"source_size\": %llu}",
                (unsigned long long)fr->rows, fr->columns, fr->chunks,
                (unsigned long long)fr->source_size);
    }
    fputs("]}\n", f);
    return finish(f, &buf, len);
}

char *aq_node_snap_history_json(const aq_node_snap *s, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    const aq_node_history *h = &s->history;
    static const char *const names[] = {"t_ms",      "calls",       "handled", "bytes_in",
                                        "bytes_out", "retransmits", "busy"};
    fprintf(f, "{\"node\": ");
    json_str(f, s->views[s->self].name);
    fprintf(f, ", \"interval_ms\": %u, \"length\": %u", AQ_NODE_HISTORY_INTERVAL_MS,
            AQ_NODE_HISTORY_LEN);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        fprintf(f, ", \"%s\": [", names[k]);
        for (size_t i = 0; i < h->n; i++) {
            const aq_node_sample *p =
                &h->s[(h->next + AQ_NODE_HISTORY_LEN - h->n + i) % AQ_NODE_HISTORY_LEN];
            const uint64_t v[] = {p->t_ms,      p->calls,       p->handled, p->bytes_in,
                                  p->bytes_out, p->retransmits, p->busy};
            fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)v[k]);
        }
        fputc(']', f);
    }
    fputs("}\n", f);
    return finish(f, &buf, len);
}

/* ---- Prometheus ---- */

typedef struct prom {
    FILE *f;
    const char *node;
} prom;

static void family(prom *p, const char *name, const char *type, const char *help) {
    fprintf(p->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void node_value(prom *p, const char *name, uint64_t v) {
    fprintf(p->f, "%s{node=", name);
    prom_label(p->f, p->node);
    fprintf(p->f, "} %llu\n", (unsigned long long)v);
}

static void node_metric(prom *p, const char *name, const char *type, const char *help, uint64_t v) {
    family(p, name, type, help);
    node_value(p, name, v);
}

/* One family with a value per peer link. get picks the field. */
typedef double (*peer_get)(const aq_node_status_peer *sp);
static void peer_metric(prom *p, const aq_node_view *v, const char *name, const char *type,
                        const char *help, peer_get get, bool heard_only) {
    family(p, name, type, help);
    for (size_t j = 0; j < v->npeers; j++) {
        const aq_node_status_peer *sp = &v->peers[j];
        if (heard_only && sp->since_heard_ms == UINT64_MAX)
            continue;
        fprintf(p->f, "%s{node=", name);
        prom_label(p->f, p->node);
        fputs(",peer=", p->f);
        prom_label(p->f, sp->name);
        fprintf(p->f, "} %.17g\n", get(sp));
    }
}

#define PEER_GETTER(fn, expr)                                                                      \
    static double fn(const aq_node_status_peer *sp) {                                              \
        return (double)(expr);                                                                     \
    }
PEER_GETTER(pg_up, sp->state == AQ_MEMBER_UP || sp->state == AQ_MEMBER_SUSPECT)
PEER_GETTER(pg_suspect, sp->state == AQ_MEMBER_SUSPECT)
PEER_GETTER(pg_heard, (double)sp->since_heard_ms / 1e3)
PEER_GETTER(pg_rtt, (double)sp->rtt_us / 1e6)
PEER_GETTER(pg_calls, sp->calls)
PEER_GETTER(pg_retx, sp->retransmits)
PEER_GETTER(pg_dup, sp->dup_suppressed)
PEER_GETTER(pg_busy, sp->busy_seen)
PEER_GETTER(pg_timeouts, sp->timeouts)
PEER_GETTER(pg_connects, sp->pipe_connects)
PEER_GETTER(pg_reconnects, sp->pipe_connects ? sp->pipe_connects - 1 : 0)
PEER_GETTER(pg_pfail, sp->pipe_failures)
PEER_GETTER(pg_out, sp->bytes_out)
PEER_GETTER(pg_in, sp->bytes_in)

static void histogram(prom *p, const char *name, const char *help,
                      const aq_node_hist h[AQ_NODE_METRIC_METHODS]) {
    family(p, name, "histogram", help);
    for (uint16_t m = 0; m < AQ_NODE_METRIC_METHODS; m++) {
        const char *mn = aq_node_method_name(m);
        if (m == AQ_M_HEARTBEAT || strcmp(mn, "UNKNOWN") == 0)
            continue; /* heartbeats are notifies, never calls */
        uint64_t cum = 0;
        for (size_t b = 0; b <= AQ_NODE_HIST_BUCKETS; b++) {
            fprintf(p->f, "%s_bucket{node=", name);
            prom_label(p->f, p->node);
            fputs(",method=", p->f);
            prom_label(p->f, mn);
            if (b < AQ_NODE_HIST_BUCKETS) {
                cum += h[m].buckets[b];
                fprintf(p->f, ",le=\"%g\"} %llu\n", (double)aq_node_hist_bounds_us[b] / 1e6,
                        (unsigned long long)cum);
            } else {
                fprintf(p->f, ",le=\"+Inf\"} %llu\n", (unsigned long long)h[m].count);
            }
        }
        fprintf(p->f, "%s_sum{node=", name);
        prom_label(p->f, p->node);
        fputs(",method=", p->f);
        prom_label(p->f, mn);
        fprintf(p->f, "} %.6f\n", (double)h[m].sum_us / 1e6);
        fprintf(p->f, "%s_count{node=", name);
        prom_label(p->f, p->node);
        fputs(",method=", p->f);
        prom_label(p->f, mn);
        fprintf(p->f, "} %llu\n", (unsigned long long)h[m].count);
    }
}

char *aq_node_snap_prometheus(const aq_node_snap *s, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    const aq_node_view *v = &s->views[s->self];
    const aq_node_status_node *n = &v->node;
    prom p = {f, v->name};

    family(&p, "aquifer_node_info", "gauge",
           "Always 1; labels name the node's cluster, rpc address and incarnation.");
    fputs("aquifer_node_info{node=", f);
    prom_label(f, v->name);
    fputs(",cluster=", f);
    prom_label(f, s->cluster);
    fputs(",address=", f);
    prom_label(f, v->address);
    fprintf(f, ",incarnation=\"%016llx\"} 1\n", (unsigned long long)n->incarnation);
    node_metric(&p, "aquifer_ready", "gauge",
                "1 when the data_dir is loaded and enough nodes are live to store every copy.",
                s->ready);
    node_metric(&p, "aquifer_replicas", "gauge", "Copies the cluster keeps of every chunk.",
                s->replicas);
    family(&p, "aquifer_uptime_seconds", "gauge", "Seconds since the node started serving.");
    fprintf(f, "aquifer_uptime_seconds{node=");
    prom_label(f, v->name);
    fprintf(f, "} %.3f\n", (double)n->uptime_ms / 1e3);
    node_metric(&p, "aquifer_chunks", "gauge", "Chunks held (removal markers not counted).",
                n->chunks);
    node_metric(&p, "aquifer_stored_bytes", "gauge", "Bytes of the chunks held.", n->bytes);
    node_metric(&p, "aquifer_memory_allocated_bytes", "gauge", "Memory the chunk store holds.",
                n->allocated);
    node_metric(&p, "aquifer_memory_max_bytes", "gauge",
                "The node's memory_max: puts beyond it fail.", n->memory_max);
    node_metric(&p, "aquifer_authenticated", "gauge",
                "1 when rpc traffic is authenticated with the cluster secret.", n->authenticated);
    node_metric(&p, "aquifer_encrypted", "gauge", "1 when the node encrypts the payloads it sends.",
                n->encrypted);
    node_metric(&p, "aquifer_dropped_malformed_total", "counter",
                "Packets and frames dropped as malformed.", n->dropped_malformed);
    node_metric(&p, "aquifer_dropped_foreign_total", "counter",
                "Packets of another cluster dropped.", n->dropped_foreign);
    node_metric(&p, "aquifer_auth_failures_total", "counter",
                "Packets and frames that failed authentication (dropped_auth).", n->dropped_auth);
    node_metric(&p, "aquifer_handled_total", "counter", "Handler runs, for any caller.",
                n->handled_total);
    node_metric(&p, "aquifer_handled_client_total", "counter",
                "Handler runs for requests from outside the cluster.", n->handled_client);
    node_metric(&p, "aquifer_conns_inbound", "gauge", "Inbound rpc connections open now.",
                n->conns_inbound);
    node_metric(&p, "aquifer_conns_refused_total", "counter",
                "Inbound rpc connections closed at accept: the connection bound was reached.",
                n->conns_refused);
    node_metric(&p, "aquifer_hello_timeouts_total", "counter",
                "Inbound rpc connections closed without a HELLO within hello_timeout.",
                n->hello_timeouts);
    node_metric(&p, "aquifer_hello_evicted_total", "counter",
                "Inbound rpc connections closed unidentified to make room for newer ones.",
                n->hello_evicted);
    family(&p, "aquifer_frame_rows", "gauge", "Rows of each frame this node knows of.");
    for (size_t i = 0; i < s->nframes; i++) {
        fputs("aquifer_frame_rows{node=", f);
        prom_label(f, v->name);
        fputs(",frame=", f);
        prom_label(f, s->frames[i].name);
        fprintf(f, "} %llu\n", (unsigned long long)s->frames[i].rows);
    }

    peer_metric(&p, v, "aquifer_peer_up", "gauge",
                "1 while this node sees the peer live (up or suspect), 0 when down.", pg_up, false);
    peer_metric(&p, v, "aquifer_peer_suspect", "gauge",
                "1 while the peer missed heartbeats but is not yet down.", pg_suspect, false);
    peer_metric(&p, v, "aquifer_peer_since_heard_seconds", "gauge",
                "Seconds since the peer was last heard from (absent until first heard).", pg_heard,
                true);
    peer_metric(&p, v, "aquifer_peer_rtt_seconds", "gauge", "Smoothed round-trip time to the peer.",
                pg_rtt, false);
    peer_metric(&p, v, "aquifer_peer_calls_total", "counter", "Calls this node made to the peer.",
                pg_calls, false);
    peer_metric(&p, v, "aquifer_peer_retransmits_total", "counter",
                "Resends of calls and replies to the peer.", pg_retx, false);
    peer_metric(&p, v, "aquifer_peer_dup_suppressed_total", "counter",
                "Duplicate calls from the peer that did not run a handler again.", pg_dup, false);
    peer_metric(&p, v, "aquifer_peer_busy_total", "counter", "BUSY answers received from the peer.",
                pg_busy, false);
    peer_metric(&p, v, "aquifer_peer_timeouts_total", "counter",
                "Calls to the peer that timed out.", pg_timeouts, false);
    peer_metric(&p, v, "aquifer_peer_pipe_connects_total", "counter",
                "TCP pipes this node established to the peer.", pg_connects, false);
    peer_metric(&p, v, "aquifer_peer_pipe_reconnects_total", "counter",
                "Pipes established to the peer after the first.", pg_reconnects, false);
    peer_metric(&p, v, "aquifer_peer_pipe_failures_total", "counter",
                "Pipes to the peer that failed or broke.", pg_pfail, false);
    peer_metric(&p, v, "aquifer_peer_sent_bytes_total", "counter", "rpc bytes sent to the peer.",
                pg_out, false);
    peer_metric(&p, v, "aquifer_peer_received_bytes_total", "counter",
                "rpc bytes received from the peer.", pg_in, false);

    histogram(&p, "aquifer_call_duration_seconds",
              "Calls this node made, by method: time from the call to its outcome.", s->calls);
    histogram(&p, "aquifer_handler_duration_seconds",
              "Calls this node handled, by method: time from the request to the reply.",
              s->handled);
    return finish(f, &buf, len);
}
