/* Scrub: finds bit rot in the chunks this node holds and heals it from another replica.
 *
 * At each heartbeat tick the node earns scrub_rate bytes per second of credit (at most one
 * second's worth, so an idle spell never becomes a burst), a quarter of it when clients were
 * served since the last tick: the scrub yields to them and still checks every chunk, only more
 * slowly, however busy the node stays. While it has credit a threadpool job
 * re-verifies the next chunks of a snapshot of the store's keys (aq_chunk_scrub: the bytes in
 * memory against their digest and, with a data_dir, the file), at least one chunk per job. The
 * loop thread only schedules and sends. When the snapshot is done a new one is taken, so every
 * chunk is checked once per round. A damaged chunk is dropped by the store (never served again,
 * its file quarantined) and then fetched from another live replica: a GET that also answers a
 * removal marker, stored with the copy's own version by a versioned put, which checks the bytes
 * against the digest once more. If no replica answers, the next repair pass of a replica that
 * holds the key puts it back. Raw parse pieces have one copy by design and are only dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "aq_node_internal.h"
#include "aq_node_place.h"

#define SCRUB_BUSY_SHARE 4  /* while clients are served, scrub at 1/4 of scrub_rate */
#define SCRUB_FOUND_MAX  64 /* damaged chunks handled per job; the rest wait for the next */

typedef struct skey {
    uint8_t key[AQ_NODE_KEY_MAX];
    uint8_t klen;
} skey;

typedef struct found {
    skey k;
    char why[160];
} found;

struct aq_scrub {
    aq_node *n;
    uv_work_t work;
    bool running;
    uint8_t *keys; /* this round's snapshot: each key as a length byte then its bytes */
    size_t len, cap, next;
    int64_t credit; /* bytes this node may still re-read now */
    uint64_t last_us;
    uint64_t budget, used; /* of the running job */
    found hits[SCRUB_FOUND_MAX];
    size_t nfound;
    uint64_t rounds, damaged;
    uint64_t seen_client; /* n->handled_client at the last tick */
};

static void printable(const uint8_t *k, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = k[i] >= 0x20 && k[i] < 0x7f ? (char)k[i] : '?';
    out[o] = 0;
}

static int snap_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                   uint8_t kind) {
    struct aq_scrub *sc = ud;
    (void)size;
    (void)d;
    (void)kind;
    if (sc->cap - sc->len < 1 + klen) {
        size_t cap = sc->cap ? sc->cap * 2 : 4096;
        uint8_t *nk = realloc(sc->keys, cap);
        if (!nk)
            return 1;
        sc->keys = nk;
        sc->cap = cap;
    }
    sc->keys[sc->len] = (uint8_t)klen;
    memcpy(sc->keys + sc->len + 1, key, klen);
    sc->len += 1 + klen;
    return 0;
}

static void scrub_work(uv_work_t *w) {
    struct aq_scrub *sc = w->data;
    aq_chunk_store *s = sc->n->store;
    if (sc->next >= sc->len) {
        sc->len = sc->next = 0;
        sc->rounds++;
        (void)aq_chunk_iterate(s, NULL, 0, snap_cb, sc);
    }
    while (sc->next < sc->len && (sc->used == 0 || sc->used < sc->budget) &&
           sc->nfound < SCRUB_FOUND_MAX) {
        uint8_t klen = sc->keys[sc->next];
        const uint8_t *key = sc->keys + sc->next + 1;
        sc->next += 1 + (size_t)klen;
        found *f = &sc->hits[sc->nfound];
        uint64_t before = sc->used;
        if (aq_chunk_scrub(s, key, klen, &sc->used, f->why, sizeof f->why) == AQ_ECORRUPT) {
            memcpy(f->k.key, key, klen);
            f->k.klen = klen;
            sc->nfound++;
        }
        if (sc->used == before)
            sc->used++; /* an empty chunk still costs a look */
    }
}

/* ---- healing: fetch a dropped chunk from another replica ---- */

typedef struct heal {
    aq_node *n;
    skey k;
    uint32_t cand[AQ_NODE_CONFIG_MAX_NODES];
    size_t ncand, pos;
    uint8_t *rep;
    size_t replen;
    uv_work_t work;
    int err;
} heal;

static void heal_send(heal *h);

static void heal_store(uv_work_t *w) {
    heal *h = w->data;
    uint8_t kind;
    aq_node_digest d;
    uint64_t version;
    const uint8_t *v;
    size_t vlen;
    h->err = aq_node_get_rep_decode_v(h->rep, h->replen, &kind, &d, &version, &v, &vlen);
    if (!h->err) {
        aq_chunk_digest cd = {d.hi, d.lo};
        h->err =
            aq_chunk_put_versioned(h->n->store, h->k.key, h->k.klen, v, vlen, kind, &cd, version);
    }
}

static void heal_stored(uv_work_t *w, int status) {
    heal *h = w->data;
    aq_node *n = h->n;
    char name[AQ_NODE_KEY_MAX + 1];
    printable(h->k.key, h->k.klen, name, sizeof name);
    int err = status ? status : h->err;
    const char *from = n->members[h->cand[h->pos]].conf->name;
    if (err == 0 || err == AQ_ESTALE)
        aq_logf(n->log, AQ_LOG_INFO, "scrub: %s restored from %s", name, from);
    else
        aq_logf(n->log, AQ_LOG_WARN, "scrub: %s from %s could not be stored: %s", name, from,
                aq_strerror(err));
    free(h->rep);
    free(h);
    aq_node_op_end(n);
}

static void heal_done(void *ud, const aq_rpc_result *r) {
    heal *h = ud;
    aq_node *n = h->n;
    if (r->err == 0 && r->status == 0) {
        h->rep = aq_rpc_result_take(r, &h->replen);
        h->work.data = h;
        if (h->rep && uv_queue_work(n->loop, &h->work, heal_store, heal_stored) == 0)
            return;
        free(h->rep);
        h->rep = NULL;
    }
    h->pos++;
    heal_send(h);
}

static void heal_send(heal *h) {
    aq_node *n = h->n;
    for (; h->pos < h->ncand; h->pos++) {
        aq_member *m = &n->members[h->cand[h->pos]];
        if (!aq_node_member_live(n, h->cand[h->pos]) || !m->peer || n->stopping)
            continue;
        aq_wr w;
        aq_wr_init(&w);
        aq_node_key_req_encode(&w, AQ_READ_TOMBSTONES, h->k.key, h->k.klen);
        if (!w.ok) {
            aq_wr_free(&w);
            break;
        }
        aq_rpc_buf b = {w.p, w.len, free, w.p};
        if (aq_rpc_call(n->rpc, m->peer, AQ_M_GET, b, AQ_NODE_CALL_TIMEOUT_US(n), heal_done, h) ==
            0)
            return;
    }
    char name[AQ_NODE_KEY_MAX + 1];
    printable(h->k.key, h->k.klen, name, sizeof name);
    aq_logf(n->log, AQ_LOG_WARN,
            "scrub: no other replica could give back %s now; repair will, once one can", name);
    free(h);
    aq_node_op_end(n);
}

static void heal_start(aq_node *n, const skey *k) {
    if (aq_frame_key_is_piece(k->key, k->klen))
        return;
    heal *h = calloc(1, sizeof *h);
    if (!h)
        return;
    h->n = n;
    h->k = *k;
    /* Its replicas first, then any other node (repair may have placed a copy there). */
    uint32_t order[n->nmembers];
    aq_place_order(n->seeds, n->nmembers, k->key, k->klen, order);
    for (size_t i = 0; i < n->nmembers; i++)
        if (order[i] != n->self)
            h->cand[h->ncand++] = order[i];
    aq_node_op_begin(n);
    heal_send(h);
}

static void scrub_after(uv_work_t *w, int status) {
    struct aq_scrub *sc = w->data;
    aq_node *n = sc->n;
    (void)status;
    sc->running = false;
    sc->credit -= (int64_t)sc->used;
    for (size_t i = 0; i < sc->nfound; i++) {
        char name[AQ_NODE_KEY_MAX + 1];
        printable(sc->hits[i].k.key, sc->hits[i].k.klen, name, sizeof name);
        aq_logf(n->log, AQ_LOG_WARN, "scrub: %s is damaged (%s): dropped, fetching it again", name,
                sc->hits[i].why);
        sc->damaged++;
        heal_start(n, &sc->hits[i].k);
    }
    sc->nfound = 0;
    aq_node_op_end(n);
}

void aq_node_scrub_tick(aq_node *n) {
    struct aq_scrub *sc = n->scrub;
    uint64_t rate = aq_node_config_scrub_rate(n->cfg, n->members[n->self].conf);
    uint64_t now = aq_node_now_us(n);
    if (!sc || !rate)
        return;
    uint64_t dt = sc->last_us ? now - sc->last_us : 0;
    sc->last_us = now;
    int64_t cap = rate > INT64_MAX ? INT64_MAX : (int64_t)rate;
    int64_t earned = (int64_t)((double)rate * (double)dt / 1e6);
    if (n->handled_client != sc->seen_client)
        earned /= SCRUB_BUSY_SHARE;
    sc->seen_client = n->handled_client;
    sc->credit = sc->credit + earned > cap ? cap : sc->credit + earned;
    if (sc->running || n->stopping || sc->credit <= 0)
        return;
    sc->budget = (uint64_t)sc->credit;
    sc->used = 0;
    sc->running = true;
    sc->work.data = sc;
    aq_node_op_begin(n);
    if (uv_queue_work(n->loop, &sc->work, scrub_work, scrub_after) != 0) {
        sc->running = false;
        aq_node_op_end(n);
    }
}

int aq_node_scrub_init(aq_node *n) {
    n->scrub = calloc(1, sizeof *n->scrub);
    if (!n->scrub)
        return AQ_ENOMEM;
    n->scrub->n = n;
    return 0;
}

void aq_node_scrub_free(aq_node *n) {
    if (!n->scrub)
        return;
    free(n->scrub->keys);
    free(n->scrub);
    n->scrub = NULL;
}
