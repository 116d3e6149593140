/* The fake driver and invariant checks shared by the rpc fuzz targets (see fuzz_net.h). */
#include "fuzz_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "aq_rpc_int.h"
#include "aq_rpc_wire.h"

static uint64_t io_now(void *ctx) {
    return ((fz_net *)ctx)->now;
}

static void io_send(void *ctx, const aq_rpc_addr *to, const struct iovec *iov, int cnt) {
    fz_net *n = ctx;
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    /* The core must never build a datagram the far side would refuse for its size. */
    if (len < AQ_RPC_HDR_LEN || len > AQ_RPC_DGRAM_MAX)
        abort();
    n->sends++;
}

static int io_open(void *ctx, const aq_rpc_addr *to, uint64_t *conn) {
    fz_net *n = ctx;
    if (n->nopening == (int)(sizeof n->opening / sizeof n->opening[0]))
        return AQ_ENOMEM;
    *conn = ++n->next_conn;
    n->opening[n->nopening++] = *conn;
    return 0;
}

static void io_write(void *ctx, uint64_t conn, const struct iovec *iov, int cnt, void *tok) {
    fz_net *n = ctx;
    /* The core promises a bounded number of writes in our hands; more would be a runaway. */
    if (n->nwrites == FZ_WRITES)
        abort();
    n->writes[n->nwrites].conn = conn;
    n->writes[n->nwrites].tok = tok;
    n->nwrites++;
}

static void io_close(void *ctx, uint64_t conn) {
    fz_net *n = ctx;
    n->closed_conns++;
    n->last_closed = conn;
    if (conn < 32)
        n->closed_small |= 1u << conn;
    for (int i = 0; i < n->nopening; i++)
        if (n->opening[i] == conn)
            n->opening[i--] = n->opening[--n->nopening];
}

static void io_timer(void *ctx, uint64_t at) {
    ((fz_net *)ctx)->timer = at;
}

static const aq_rpc_io IO = {io_now, io_send, io_open, io_write, io_close, io_timer};

/* Incarnation history of one peer (created on first use; NULL when the table is full). */
static typeof(((fz_net *)0)->hist[0]) *history(fz_net *n, const aq_rpc_peer *p) {
    for (int i = 0; i < FZ_PEERS; i++) {
        if (n->hist[i].peer == p)
            return &n->hist[i];
        if (!n->hist[i].peer) {
            n->hist[i].peer = p;
            return &n->hist[i];
        }
    }
    return NULL;
}

static void took_inc(fz_net *n, const aq_rpc_peer *p, uint64_t inc) {
    typeof(n->hist[0]) *h = history(n, p);
    if (!h || (h->n && h->inc[(h->n - 1) % FZ_HIST] == inc))
        return;
    /* The core remembers the last AQ_RPC_OLD_INCS incarnations it retired and drops their packets.
     */
    for (uint32_t k = 2; k <= AQ_RPC_OLD_INCS + 1 && k <= h->n; k++)
        if (h->inc[(h->n - k) % FZ_HIST] == inc)
            abort(); /* a recently retired incarnation was taken back */
    h->inc[h->n++ % FZ_HIST] = inc;
    /* Forgotten long ago and back: a new life, its task numbers start over. */
    for (int i = 0; i < n->nkeys; i++)
        if (n->keys[i].peer == p && n->keys[i].inc == inc)
            n->keys[i--] = n->keys[--n->nkeys];
}

static void on_restart(void *ud, aq_rpc_peer *p, uint64_t old_inc, uint64_t new_inc) {
    fz_net *n = ud;
    typeof(n->hist[0]) *h = history(n, p);
    if (h && h->n == 0 && old_inc) /* learned from a packet that ran no handler */
        took_inc(n, p, old_inc);
    took_inc(n, p, new_inc);
}

static void on_call(void *ud, aq_rpc_incoming *in) {
    fz_net *n = ud;
    const aq_rpc_peer *peer = aq_rpc_incoming_peer(in);
    uint64_t inc = aq_rpc_peer_incarnation(peer);
    uint64_t task = in->w ? in->w->task : 0;
    took_inc(n, peer, inc); /* the first incarnation of a peer comes without a restart */
    for (int i = 0; i < n->nkeys; i++)
        if (n->keys[i].peer == peer && n->keys[i].inc == inc && n->keys[i].task == task)
            abort(); /* the handler ran twice for one task */
    if (n->nkeys < FZ_KEYS) {
        n->keys[n->nkeys].peer = peer;
        n->keys[n->nkeys].inc = inc;
        n->keys[n->nkeys].task = task;
        n->nkeys++;
    }
    n->handled++;
    size_t len;
    const uint8_t *d = aq_rpc_incoming_data(in, &len);
    if (d == NULL && len != 0)
        abort();
    if (n->hold && n->nheld < FZ_HELD) {
        n->held[n->nheld++] = in;
        return;
    }
    aq_rpc_respond(in, 0, (aq_rpc_buf){d, len > 64 ? 64 : len, NULL, NULL});
}

static void on_notify(void *ud, aq_rpc_peer *from, uint16_t method, const uint8_t *data,
                      size_t len) {
    ((fz_net *)ud)->notifies++;
}

static void on_done(void *ud, const aq_rpc_result *r) {
    fz_net *n = ud;
    n->callbacks++;
    if (n->callbacks > n->calls)
        abort(); /* a second outcome for some call */
    if (r->err == 0 && r->len && !r->data)
        abort();
}

static void quiet(void *ud, int level, const char *msg) {}

void fz_init(fz_net *n, bool hold) {
    memset(n, 0, sizeof *n);
    n->timer = UINT64_MAX;
    n->now = 1000000;
    n->hold = hold;
    n->next_conn = 100;
    if (aq_rpc_addr_parse("127.0.0.1:7000", &n->self) ||
        aq_rpc_addr_parse("127.0.0.1:7001", &n->peer) ||
        aq_rpc_addr_parse("127.0.0.1:7002", &n->other))
        abort();
    aq_rpc_config c;
    aq_rpc_config_init(&c);
    c.cluster_id = FZ_CLUSTER;
    c.incarnation = FZ_INC;
    c.self = n->self;
    c.reassembly_max = 8u << 20; /* small, so that fuzzed claims can break it */
    c.running_max = 16;
    c.log = quiet;
    if (aq_rpc_new(&c, &IO, n, &n->rpc))
        abort();
    for (uint16_t m = 0; m < 8; m++)
        aq_rpc_handle(n->rpc, m, on_call, n);
    aq_rpc_on_notify(n->rpc, on_notify, n);
    aq_rpc_on_restart(n->rpc, on_restart, n);
}

void fz_fini(fz_net *n) {
    if (getenv("FZ_VERBOSE")) { /* for checking by hand what a corpus reaches */
        aq_rpc_stats st;
        aq_rpc_stats_get(n->rpc, &st);
        fprintf(stderr,
                "fuzz_net: handled %llu notifies %llu calls %llu sends %llu writes-left %d "
                "malformed %llu foreign %llu stale %llu cutoffs %llu\n",
                (unsigned long long)n->handled, (unsigned long long)n->notifies,
                (unsigned long long)n->calls, (unsigned long long)n->sends, n->nwrites,
                (unsigned long long)st.dropped_malformed, (unsigned long long)st.dropped_foreign,
                (unsigned long long)st.dropped_stale, (unsigned long long)st.cutoffs);
    }
    aq_rpc_free(n->rpc);
    n->rpc = NULL;
    if (n->callbacks != n->calls)
        abort(); /* a call ended in silence */
}

void fz_advance(fz_net *n, uint64_t us) {
    n->now += us;
    for (int i = 0; i < 1000 && n->timer <= n->now; i++) {
        n->timer = UINT64_MAX;
        aq_rpc_timer_fired(n->rpc);
    }
}

void fz_call(fz_net *n, uint16_t method, size_t len, uint64_t timeout_us) {
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        abort();
    memset(p, (int)method, len);
    aq_rpc_peer *peer = aq_rpc_peer_get(n->rpc, &n->peer);
    if (!peer)
        abort();
    if (aq_rpc_call(n->rpc, peer, method, (aq_rpc_buf){p, len, free, p}, timeout_us, on_done, n) ==
        0)
        n->calls++;
}

void fz_respond(fz_net *n, int status) {
    if (n->nheld == 0)
        return;
    aq_rpc_incoming *in = n->held[0];
    memmove(n->held, n->held + 1, (size_t)(n->nheld - 1) * sizeof n->held[0]);
    n->nheld--;
    aq_rpc_respond(in, status, (aq_rpc_buf){"ok", 2, NULL, NULL});
}

void fz_settle_io(fz_net *n, int write_status) {
    /* Report outside the io callbacks: the core may start new writes or opens while we do. */
    for (int round = 0; round < 8 && (n->nopening || n->nwrites); round++) {
        while (n->nopening) {
            uint64_t c = n->opening[--n->nopening];
            aq_rpc_pipe_connected(n->rpc, c);
        }
        int k = n->nwrites;
        typeof(n->writes[0]) w[FZ_WRITES];
        memcpy(w, n->writes, (size_t)k * sizeof w[0]);
        n->nwrites = 0;
        for (int i = 0; i < k; i++)
            aq_rpc_pipe_written(n->rpc, w[i].conn, w[i].tok, write_status);
    }
}

bool fz_checksum_ok(const uint8_t *d, size_t len) {
    if (len < AQ_RPC_HDR_LEN)
        return false;
    uint8_t h[AQ_RPC_HDR_LEN];
    memcpy(h, d, sizeof h);
    uint64_t want = 0;
    for (int i = 7; i >= 0; i--)
        want = want << 8 | h[56 + i];
    memset(h + 56, 0, 8);
    XXH3_state_t *s = XXH3_createState();
    if (!s)
        abort();
    XXH3_64bits_reset(s);
    XXH3_64bits_update(s, h, sizeof h);
    XXH3_64bits_update(s, d + AQ_RPC_HDR_LEN, len - AQ_RPC_HDR_LEN);
    uint64_t got = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return got == want;
}

void fz_fix_checksum(uint8_t *hdr, size_t n) {
    memset(hdr + 56, 0, 8);
    XXH3_state_t *s = XXH3_createState();
    if (!s)
        abort();
    XXH3_64bits_reset(s);
    XXH3_64bits_update(s, hdr, AQ_RPC_HDR_LEN);
    XXH3_64bits_update(s, hdr + AQ_RPC_HDR_LEN, n);
    uint64_t v = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    for (int i = 0; i < 8; i++)
        hdr[56 + i] = (uint8_t)(v >> (8 * i));
}
