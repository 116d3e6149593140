/* The node's private state, shared by the node's .c files (lifecycle, membership, handlers,
 * repair). Nothing outside node/ includes this. */
#ifndef AQ_NODE_INTERNAL_H
#define AQ_NODE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "aq_chunk.h"
#include "aq_node.h"
#include "aq_node_hlc.h"
#include "aq_frame_proto.h"
#include "aq_node_pcache.h"
#include "aq_node_proto.h"
#include "aq_rpc.h"
#include "aq_rpc_uv.h"

typedef struct aq_member {
    const aq_node_config_node *conf;
    aq_rpc_peer *peer; /* NULL for this node itself */
    uint64_t seed;     /* placement seed of the name */
    int state;         /* enum aq_node_member_state */
    uint64_t last_heard_us;
    uint64_t down_since_us; /* when it went down; 0 while up */
    uint64_t incarnation;
    bool is_self;
    bool needs_sync;      /* came back or restarted: offer it what it should hold */
    bool repair_due_done; /* the repair pass for being down past repair_after has been started */
    /* Lower bounds of (its monotonic clock - ours), in µs, from its heartbeats: the current and
     * the previous window, so the bound follows drift; valid once mono_have. */
    int64_t mono_off[2];
    bool mono_have[2];
    uint64_t mono_window_us; /* when the current window started (our monotonic µs) */
} aq_member;

struct aq_node {
    uv_loop_t *loop;
    const aq_node_config *cfg;
    const aq_log *log;
    aq_member *members;
    uint64_t *seeds; /* members[i].seed, contiguous for aq_place_order */
    size_t nmembers;
    size_t self;
    aq_chunk_store *store;
    aq_node_pcache *pcache; /* pieces parsed by FRAME_PARSE, waiting for FRAME_FINISH */
    aq_rpc_uv *uv;
    aq_rpc *rpc;
    uv_timer_t hb_timer;
    uv_timer_t stop_timer;
    uint64_t start_us;
    uint64_t ops; /* calls being handled, threadpool jobs and forwards in flight */
    uint64_t handled_total, handled_client; /* handler runs (see aq_node_status_node) */
    aq_hlc hlc;                             /* versions (loop thread only) */
    aq_hlc_ceiling ceiling;                 /* data_dir/CLOCK (threadpool only) */
    uint64_t hlc_refused;                   /* remote clocks too far ahead to observe */
    bool serving;
    bool stopping;
    aq_node_ready_fn ready;
    void *ready_ud;
    void (*stop_done)(void *ud);
    void *stop_ud;
    uint64_t stop_deadline_us;
    int closes_pending;
    /* repair */
    uint64_t next_repair_us;
    bool repair_running;
    uint64_t repair_pushes;
    struct aq_tomb_age *tomb_ages; /* removal markers' ages (aq_node_repair.c), sorted */
    size_t ntomb_ages;
    struct aq_scrub *scrub;  /* aq_node_scrub.c */
    struct aq_node_obs *obs; /* HTTP and its snapshots; NULL without an http_address */
};

/* Monotonic microseconds. */
uint64_t aq_node_now_us(const aq_node *n);
/* The version of a new write coordinated here (the hybrid logical clock). Loop thread. */
uint64_t aq_node_next_version(aq_node *n);
/* Raises the clock to a version or clock seen in a message from `who` (for the log). Loop. */
void aq_node_observe(aq_node *n, uint64_t remote, const char *who);
/* Wall-clock milliseconds (CLOCK_REALTIME), the physical part of the clock. */
uint64_t aq_node_wall_ms(void);
/* A deadline of ours (monotonic µs, 0: none) in member m's monotonic domain, never later than the
 * true one; 0 when there is none or m's offset is not known yet. */
uint64_t aq_node_deadline_for(const aq_node *n, size_t m, uint64_t deadline);
/* aq_chunk_get that sees a removal marker (TOMBSTONE) as AQ_ENOTFOUND. Any thread. */
int aq_node_get_live(aq_node *n, const void *key, size_t klen, aq_chunk_ref **out);

/* Membership (aq_node_members.c). */
void aq_node_members_tick(aq_node *n);
void aq_node_on_heartbeat(void *ud, aq_rpc_peer *from, uint16_t method, const uint8_t *data,
                          size_t len);
void aq_node_on_restart(void *ud, aq_rpc_peer *peer, uint64_t old_inc, uint64_t new_inc);
bool aq_node_member_live(const aq_node *n, size_t i);
/* The replica set of a key: indexes of the first `replicas` configured nodes in rendezvous order.
 */
size_t aq_node_replicas(const aq_node *n, const void *key, size_t klen, uint32_t *out);

/* Handlers (aq_node_handlers.c). */
void aq_node_register_handlers(aq_node *n);
/* What STATUS answers: this node (s) and one record per other configured node (peers, nmembers -
 * 1 of them, in config order). Only while serving. */
void aq_node_status_fill(aq_node *n, aq_node_status_node *s, aq_node_status_peer *peers);

/* Observation: snapshots for the HTTP server, the history, the cluster view (aq_node_obs.c). */
typedef struct aq_node_obs aq_node_obs;
/* Starts HTTP when the node has an http_address (else does nothing and returns 0). */
int aq_node_obs_start(aq_node *n);
/* Stops HTTP and the observer's timer; n->obs is NULL afterwards. Safe when never started. */
void aq_node_obs_stop(aq_node *n);

/* Repair and catch-up (aq_node_repair.c). */
void aq_node_repair_tick(aq_node *n);
void aq_node_register_repair(aq_node *n);

/* Scrub (aq_node_scrub.c): re-verifies stored chunks at scrub_rate and heals damaged ones. */
int aq_node_scrub_init(aq_node *n);
void aq_node_scrub_tick(aq_node *n);
void aq_node_scrub_free(aq_node *n);

/* The node is finishing work: when ops reaches 0 during a stop, the stop proceeds. */
void aq_node_op_begin(aq_node *n);
void aq_node_op_end(aq_node *n);

/* Writes of at most this many value bytes to a memory-only store run on the loop. */
#define AQ_NODE_INLINE_WRITE_MAX   (64u << 10)
#define AQ_NODE_CALL_TIMEOUT_US(n) ((n)->cfg->call_timeout_ms * 1000ull)

#endif
