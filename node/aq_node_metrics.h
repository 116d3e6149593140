/* aq_node_metrics: what a node shows over HTTP, as plain data, and its renderings.
 *
 * The loop thread owns the live counters; once a second it copies them into an aq_node_snap (its
 * own status as STATUS reports it, the latency histograms, the 15-minute history, the cluster as it
 * last gathered it, the frames) and hands that to the HTTP thread. Everything here reads a snapshot
 * only, so the renderings run on the HTTP thread without touching the loop's state.
 *
 * Invariants:
 *  - A snapshot is immutable once published and freed only by its last reader (aq_node_snap_unref).
 *  - JSON field names are those of `aquifer status --json` (cli/cli_cluster.c), so a script can
 * read either; the Prometheus text follows exposition format 0.0.4: HELP and TYPE once per family,
 *    counters end in _total, label values escaped.
 */
#ifndef AQ_NODE_METRICS_H
#define AQ_NODE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aq_frame_proto.h"
#include "aq_node_proto.h"

/* Method ids the histograms have a slot for (aq_node_method ids are below it). */
#define AQ_NODE_METRIC_METHODS 16
/* Upper bounds of the latency buckets, in microseconds (the +Inf bucket is the count). */
#define AQ_NODE_HIST_BUCKETS 14
extern const uint64_t aq_node_hist_bounds_us[AQ_NODE_HIST_BUCKETS];

typedef struct aq_node_hist {
    uint64_t count, sum_us;
    uint64_t buckets[AQ_NODE_HIST_BUCKETS]; /* per bucket, not cumulative */
} aq_node_hist;
void aq_node_hist_add(aq_node_hist *h, uint64_t us);

/* One point of the history: cumulative counters at wall-clock time t_ms. Rates are differences of
 * neighbours, which stay right across a missed sample. */
typedef struct aq_node_sample {
    uint64_t t_ms;
    uint64_t calls;    /* calls this node made to its peers */
    uint64_t handled;  /* handler runs here */
    uint64_t bytes_in; /* rpc bytes received from and sent to peers */
    uint64_t bytes_out;
    uint64_t retransmits;
    uint64_t busy; /* BUSY answers received */
} aq_node_sample;

#define AQ_NODE_HISTORY_INTERVAL_MS 5000u
#define AQ_NODE_HISTORY_LEN         180u /* 15 minutes */
typedef struct aq_node_history {
    aq_node_sample s[AQ_NODE_HISTORY_LEN];
    size_t next, n; /* ring: the oldest is at (next - n) mod LEN */
} aq_node_history;
void aq_node_history_push(aq_node_history *h, const aq_node_sample *s);

/* A frame as its metadata describes it. */
typedef struct aq_node_frame_info {
    char name[AQ_FRAME_NAME_MAX + 1];
    uint64_t rows, source_size;
    uint32_t columns, chunks;
} aq_node_frame_info;

/* Another node's STATUS reply as received, shared by every snapshot that shows it: a snapshot
 * takes a reference instead of a copy, so publishing costs O(nodes), not O(nodes^2), per tick. */
typedef struct aq_node_reply {
    int refs; /* atomic */
    uint8_t *p;
    size_t len;
} aq_node_reply;
/* Takes over p (malloc'd); refs 1. NULL when out of memory (p is freed then). */
aq_node_reply *aq_node_reply_new(uint8_t *p, size_t len);
void aq_node_reply_ref(aq_node_reply *r);
void aq_node_reply_unref(aq_node_reply *r);

/* A node's status as this node last learned it (its own is always fresh): decoded for this node,
 * the reply as received (decoded when rendered, on the HTTP thread) for the others. */
typedef struct aq_node_view {
    char name[64];
    char address[64];
    char http_address[64];
    bool reachable;
    char error[256];          /* why not reachable */
    aq_node_reply *reply;     /* another node's STATUS reply (checked decodable), or NULL */
    aq_node_status_node node; /* this node's status (reply == NULL) */
    aq_node_status_peer *peers;
    size_t npeers;
} aq_node_view;

typedef struct aq_node_snap {
    int refs; /* atomic; the publisher's reference plus one per reader */
    char cluster[64];
    unsigned replicas;
    uint64_t wall_ms;
    size_t self; /* index of this node in views */
    bool loaded, stopping, ready;
    char not_ready[256];                          /* one line: why not ready */
    aq_node_hist calls[AQ_NODE_METRIC_METHODS];   /* calls made, by method */
    aq_node_hist handled[AQ_NODE_METRIC_METHODS]; /* handler runs, by method */
    aq_node_history history;
    aq_node_view *views; /* one per configured node, in config order */
    size_t nviews;
    aq_node_frame_info *frames;
    size_t nframes;
    bool frames_partial; /* some node could not be asked for its frames */
} aq_node_snap;

/* A zeroed snapshot with room for nviews views (refs 1), or NULL. */
aq_node_snap *aq_node_snap_new(size_t nviews);
void aq_node_snap_ref(aq_node_snap *s);
void aq_node_snap_unref(aq_node_snap *s);

/* Renderings: a malloc'd NUL-terminated text and its length, or NULL when out of memory. */
/* Prometheus text format 0.0.4 of this node: every counter and gauge of its status, per peer link,
 * and the latency histograms. */
char *aq_node_snap_prometheus(const aq_node_snap *s, size_t *len);
/* This node's part of `aquifer status --json`. */
char *aq_node_snap_status_json(const aq_node_snap *s, size_t *len);
/* The status page's data: the cluster as `status --json` shows it, plus readiness and frames. */
char *aq_node_snap_cluster_json(const aq_node_snap *s, size_t *len);
/* The history: arrays of cumulative counters and their times. */
char *aq_node_snap_history_json(const aq_node_snap *s, size_t *len);

#endif
