/* Node lifecycle: load the store in the threadpool, bind the endpoint, heartbeat, stop gracefully.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <string.h>

#include "aq_node_internal.h"
#include "aq_node_place.h"
#include "aq_node_secret.h"

uint64_t aq_node_now_us(const aq_node *n) {
    (void)n;
    return uv_hrtime() / 1000;
}

int aq_node_get_live(aq_node *n, const void *key, size_t klen, aq_chunk_ref **out) {
    aq_chunk_ref *ref;
    int err = aq_chunk_get(n->store, key, klen, &ref);
    if (err)
        return err;
    if (aq_chunk_ref_kind(ref) == AQ_KIND_TOMBSTONE) {
        aq_chunk_ref_release(ref);
        return AQ_ENOTFOUND;
    }
    *out = ref;
    return 0;
}

uint64_t aq_node_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t aq_node_next_version(aq_node *n) {
    return aq_hlc_now(&n->hlc, aq_node_wall_ms());
}

void aq_node_observe(aq_node *n, uint64_t remote, const char *who) {
    if (aq_hlc_observe(&n->hlc, remote, aq_node_wall_ms()))
        return;
    /* Once per power of two: a peer with a wild clock must not flood the log. */
    uint64_t c = ++n->hlc_refused;
    if ((c & (c - 1)) == 0)
        aq_logf(n->log, AQ_LOG_WARN,
                "%s sent a clock more than a day ahead of ours; not followed (%llu times): check "
                "the clocks",
                who, (unsigned long long)n->hlc_refused);
}

uint64_t aq_node_deadline_for(const aq_node *n, size_t m, uint64_t deadline) {
    const aq_member *mb = &n->members[m];
    if (!deadline || (!mb->mono_have[0] && !mb->mono_have[1]))
        return 0;
    int64_t off = mb->mono_have[0] ? mb->mono_off[0] : mb->mono_off[1];
    if (mb->mono_have[0] && mb->mono_have[1] && mb->mono_off[1] > off)
        off = mb->mono_off[1];
    int64_t d = (int64_t)deadline + off;
    return d > 0 ? (uint64_t)d : 1; /* 1: already passed there */
}

static void node_rpc_log(void *ud, int level, const char *msg) {
    aq_node *n = ud;
    aq_logf(n->log, level, "rpc: %s", msg);
}

static void node_free(aq_node *n) {
    if (n->store)
        aq_chunk_store_close(n->store);
    aq_hlc_ceiling_close(&n->ceiling);
    aq_node_pcache_free(n->pcache);
    free(n->tomb_ages);
    aq_node_scrub_free(n);
    free(n->members);
    free(n->seeds);
    free(n);
}

static void node_chunk_log(void *ud, const char *file, const char *reason) {
    aq_node *n = ud;
    aq_logf(n->log, AQ_LOG_WARN, "data_dir: %s: %s", file, reason);
}

/* ---- start ---- */

typedef struct open_job {
    uv_work_t work;
    aq_node *n;
    int err;
} open_job;

/* Creates the parents of path (not path itself: the store creates and locks its own directory). */
static int mkdir_parents(const char *path) {
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i < len; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        buf[i] = '/';
    }
    return 0;
}

static void open_work(uv_work_t *w) {
    open_job *j = w->data;
    aq_node *n = j->n;
    const aq_node_config_node *me = n->members[n->self].conf;
    if (me->data_dir && (j->err = mkdir_parents(me->data_dir)) != 0)
        return;
    aq_chunk_opts o;
    memset(&o, 0, sizeof o);
    o.data_dir = me->data_dir;
    o.memory_max = me->memory_max;
    o.report = node_chunk_log;
    o.report_ud = n;
    j->err = aq_chunk_store_open(&o, &n->store);
    /* Every version issued before a restart is below the ceiling: start above it. */
    uint64_t floor = 0;
    if (!j->err && (j->err = aq_hlc_ceiling_open(&n->ceiling, me->data_dir, &floor)) == 0)
        aq_hlc_init(&n->hlc, floor);
}

static void hb_cb(uv_timer_t *t) {
    aq_node *n = t->data;
    aq_node_members_tick(n);
    aq_node_repair_tick(n);
    aq_node_scrub_tick(n);
}

static void start_failed(aq_node *n, int err) {
    aq_node_ready_fn ready = n->ready;
    void *ud = n->ready_ud;
    aq_node_obs_stop(n);
    node_free(n);
    ready(ud, err);
}

static void hb_closed_then_fail(uv_handle_t *h) {
    aq_node *n = h->data;
    start_failed(n, n->closes_pending);
}

static void open_after(uv_work_t *w, int status) {
    open_job *j = w->data;
    aq_node *n = j->n;
    int err = j->err ? j->err : status;
    free(j);
    const aq_node_config_node *me = n->members[n->self].conf;
    if (err) {
        aq_logf(n->log, AQ_LOG_ERROR, "cannot open the chunk store%s%s (or its CLOCK file): %s",
                me->data_dir ? " in " : "", me->data_dir ? me->data_dir : "", aq_strerror(err));
        /* The heartbeat timer was initialised in aq_node_start: close it before freeing. */
        n->closes_pending = err;
        uv_close((uv_handle_t *)&n->hb_timer, hb_closed_then_fail);
        return;
    }
    aq_chunk_stats st;
    aq_chunk_store_stats(n->store, &st);
    if (me->data_dir)
        aq_logf(n->log, AQ_LOG_INFO, "loaded %llu chunks (%llu bytes) from %s, %llu quarantined",
                (unsigned long long)st.chunks, (unsigned long long)st.bytes, me->data_dir,
                (unsigned long long)st.quarantined);

    aq_rpc_config rc;
    aq_rpc_config_init(&rc);
    rc.cluster_id = aq_rpc_cluster_id(n->cfg->name);
    rc.log = node_rpc_log;
    rc.log_ud = n;
    uint8_t *secret = NULL;
    size_t secret_len = 0;
    if (n->cfg->secret_file) {
        char why[512];
        err = aq_node_secret_read(n->cfg->secret_file, &secret, &secret_len, why, sizeof why);
        if (err) {
            aq_logf(n->log, AQ_LOG_ERROR, "%s", why);
            n->closes_pending = err;
            uv_close((uv_handle_t *)&n->hb_timer, hb_closed_then_fail);
            return;
        }
        rc.secret = secret;
        rc.secret_len = secret_len;
        rc.encrypt = n->cfg->encrypt; /* the config loader refuses encrypt without a secret */
    }
    aq_rpc_uv_opts uo;
    memset(&uo, 0, sizeof uo);
    uo.bind = me->address;
    uo.hello_timeout_ms = n->cfg->hello_timeout_ms;
    err = aq_rpc_uv_open(n->loop, &rc, &uo, &n->uv);
    aq_node_secret_free(secret, secret_len); /* rpc keeps only the key derived from it */
    if (err) {
        aq_logf(n->log, AQ_LOG_ERROR, "cannot bind %s (UDP and TCP): %s", me->address,
                aq_strerror(err));
        n->closes_pending = err;
        uv_close((uv_handle_t *)&n->hb_timer, hb_closed_then_fail);
        return;
    }
    n->rpc = aq_rpc_uv_core(n->uv);
    for (size_t i = 0; i < n->nmembers; i++) {
        aq_member *m = &n->members[i];
        if (m->is_self)
            continue;
        aq_rpc_addr a;
        if (aq_rpc_addr_parse(m->conf->address, &a) == 0) {
            m->peer = aq_rpc_peer_get(n->rpc, &a);
            aq_rpc_peer_set_name(m->peer, m->conf->name);
        }
    }
    for (uint16_t mth = AQ_M_PUT; mth <= AQ_M_LAST; mth++)
        aq_rpc_method_name(n->rpc, mth, aq_node_method_name(mth));
    aq_rpc_on_notify(n->rpc, aq_node_on_heartbeat, n);
    aq_rpc_on_restart(n->rpc, aq_node_on_restart, n);
    aq_node_register_handlers(n);
    n->start_us = aq_node_now_us(n);
    n->next_repair_us = n->start_us + n->cfg->heartbeat_ms * 4000ull;
    n->serving = true;
    uv_timer_start(&n->hb_timer, hb_cb, 0, n->cfg->heartbeat_ms);
    aq_logf(n->log, AQ_LOG_INFO,
            "serving on %s (cluster %s, incarnation %016llx, %zu nodes, replicas %u, traffic %s)",
            me->address, n->cfg->name, (unsigned long long)aq_rpc_incarnation(n->rpc), n->nmembers,
            n->cfg->replicas,
            aq_rpc_encrypted(n->rpc)       ? "authenticated, payloads encrypted"
            : aq_rpc_authenticated(n->rpc) ? "authenticated, payloads NOT encrypted"
                                           : "NOT authenticated (no secret_file)");
    n->ready(n->ready_ud, 0);
}

int aq_node_start(uv_loop_t *loop, const aq_node_config *cfg, const char *name, const aq_log *log,
                  aq_node_ready_fn ready, void *ud, aq_node **out) {
    const aq_node_config_node *me = aq_node_config_find(cfg, name);
    if (!me)
        return AQ_ENOTFOUND;
    aq_node *n = calloc(1, sizeof *n);
    if (!n)
        return AQ_ENOMEM;
    n->loop = loop;
    n->cfg = cfg;
    n->log = log;
    n->ready = ready;
    n->ready_ud = ud;
    n->nmembers = cfg->nnodes;
    n->members = calloc(n->nmembers, sizeof *n->members);
    n->seeds = calloc(n->nmembers, sizeof *n->seeds);
    /* Parsed pieces wait for FINISH here: a quarter of the node's memory, at most 1 GiB, and
     * no longer than 10 minutes (a parse whose command died). */
    uint64_t pbudget = me->memory_max / 4 < (1ull << 30) ? me->memory_max / 4 : (1ull << 30);
    int perr = aq_node_pcache_new((size_t)pbudget, 600ull * 1000000, &n->pcache);
    open_job *j = calloc(1, sizeof *j);
    int serr = aq_node_scrub_init(n);
    if (!n->members || !n->seeds || !j || perr || serr) {
        free(j);
        node_free(n);
        return AQ_ENOMEM;
    }
    for (size_t i = 0; i < n->nmembers; i++) {
        aq_member *m = &n->members[i];
        m->conf = &cfg->nodes[i];
        m->seed = n->seeds[i] = aq_place_seed(m->conf->name);
        m->is_self = m->conf == me;
        m->state = m->is_self ? AQ_MEMBER_SELF : AQ_MEMBER_DOWN;
        if (m->is_self)
            n->self = i;
    }
    /* HTTP answers from the start: /readyz says the data_dir is loading. */
    int oerr = aq_node_obs_start(n);
    if (oerr) {
        free(j);
        node_free(n);
        return oerr;
    }
    uv_timer_init(loop, &n->hb_timer);
    n->hb_timer.data = n;
    j->n = n;
    j->work.data = j;
    int err = uv_queue_work(loop, &j->work, open_work, open_after);
    if (err) {
        free(j);
        aq_node_obs_stop(n);
        uv_close((uv_handle_t *)&n->hb_timer, NULL);
        /* The handle is freed with n only after the close callback; run the loop owner's course. */
        return err;
    }
    *out = n;
    return 0;
}

/* ---- stop ---- */

static void stop_finish_handles(uv_handle_t *h) {
    aq_node *n = h->data;
    if (--n->closes_pending > 0)
        return;
    void (*done)(void *) = n->stop_done;
    void *ud = n->stop_ud;
    aq_logf(n->log, AQ_LOG_INFO, "stopped");
    node_free(n);
    if (done)
        done(ud);
}

static void stop_uv_closed(void *ud) {
    aq_node *n = ud;
    aq_node_obs_stop(n);
    n->uv = NULL;
    n->rpc = NULL;
    n->closes_pending = 2;
    uv_close((uv_handle_t *)&n->hb_timer, stop_finish_handles);
    uv_close((uv_handle_t *)&n->stop_timer, stop_finish_handles);
}

static void stop_now(aq_node *n) {
    if (!n->uv) {
        stop_uv_closed(n);
        return;
    }
    if (n->ops)
        aq_logf(n->log, AQ_LOG_WARN,
                "stopping with %llu operations unfinished after the grace period",
                (unsigned long long)n->ops);
    n->serving = false;
    aq_rpc_uv_close(n->uv, stop_uv_closed, n);
}

static void stop_timer_cb(uv_timer_t *t) {
    aq_node *n = t->data;
    if (n->ops == 0 || aq_node_now_us(n) >= n->stop_deadline_us) {
        uv_timer_stop(t);
        stop_now(n);
    }
}

void aq_node_op_begin(aq_node *n) {
    n->ops++;
}

void aq_node_op_end(aq_node *n) {
    n->ops--;
}

void aq_node_stop(aq_node *n, uint64_t grace_ms, void (*done)(void *ud), void *ud) {
    if (n->stopping)
        return;
    n->stopping = true;
    n->stop_done = done;
    n->stop_ud = ud;
    n->stop_deadline_us = aq_node_now_us(n) + grace_ms * 1000;
    uv_timer_stop(&n->hb_timer);
    aq_logf(n->log, AQ_LOG_INFO, "stopping: finishing %llu operations in flight",
            (unsigned long long)n->ops);
    uv_timer_init(n->loop, &n->stop_timer);
    n->stop_timer.data = n;
    uv_timer_start(&n->stop_timer, stop_timer_cb, 0, 20);
}
