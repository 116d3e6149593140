/* The command's transient rpc endpoint and its call helpers: key operations that move on to the
 * next candidate node when one cannot answer, and the liveness probe (STATUS to every node). */
#include <stdlib.h>
#include <string.h>
#include "aq_xxh.h"

#include "aq_node_place.h"
#include "aq_node_secret.h"
#include "cli.h"

typedef struct probe_call {
    cli *c;
    size_t i;
    bool done;
    int err;
    uint8_t *rep;
    size_t len;
    char msg[384];
} probe_call;

struct cli_probe {
    size_t n;
    probe_call *calls;
    struct cli_probe *older; /* earlier probes, kept until close: their calls may still end */
};

static void probe_free_all(struct cli_probe *p) {
    while (p) {
        struct cli_probe *o = p->older;
        for (size_t i = 0; i < p->n; i++)
            free(p->calls[i].rep);
        free(p->calls);
        free(p);
        p = o;
    }
}

uint64_t cli_data_timeout_ms(const cli *c) {
    /* Longer than a node's own forwarding timeout, so a coordinator waiting on a dying replica
     * answers before we give up on it. */
    return c->conf->call_timeout_ms + 5000;
}

int cli_open(cli *c) {
    aq_node_config *cf = c->conf;
    int err = uv_loop_init(&c->loop);
    if (err)
        return cli_fail(c, CLI_ERROR, "cannot start the event loop: %s", aq_strerror(err));
    c->loop_open = true;
    c->peers = calloc(cf->nnodes, sizeof *c->peers);
    c->seeds = calloc(cf->nnodes, sizeof *c->seeds);
    c->live = calloc(cf->nnodes, sizeof *c->live);
    c->mono_off = calloc(cf->nnodes, sizeof *c->mono_off);
    c->mono_have = calloc(cf->nnodes, sizeof *c->mono_have);
    c->tails = calloc(cf->nnodes, sizeof *c->tails);
    c->wrep_missing = calloc(cf->nnodes, sizeof *c->wrep_missing);
    c->theirs = calloc(cf->nnodes, sizeof *c->theirs);
    c->ntheirs = calloc(cf->nnodes, sizeof *c->ntheirs);
    if (!c->peers || !c->seeds || !c->live || !c->mono_off || !c->mono_have || !c->tails ||
        !c->wrep_missing || !c->theirs || !c->ntheirs)
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    aq_rpc_config rc;
    aq_rpc_config_init(&rc);
    rc.cluster_id = aq_rpc_cluster_id(cf->name);
    uint8_t *secret = NULL;
    size_t secret_len = 0;
    if (cf->secret_file) {
        char why[512];
        err = aq_node_secret_read(cf->secret_file, &secret, &secret_len, why, sizeof why);
        if (err)
            return cli_fail(c, CLI_ERROR, "%s", why);
        rc.secret = secret;
        rc.secret_len = secret_len;
        rc.encrypt = cf->encrypt; /* the config loader refuses encrypt without a secret */
    }
    aq_rpc_uv_opts uo;
    memset(&uo, 0, sizeof uo);
    /* Every interface: nodes in other network namespaces or hosts must be able to call back (a
     * large reply comes over a pipe the node opens to us). */
    uo.bind = cf->nodes[0].sockaddr.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0";
    uo.udp_rcvbuf = 8 << 20;
    err = aq_rpc_uv_open(&c->loop, &rc, &uo, &c->uv);
    aq_node_secret_free(secret, secret_len); /* rpc keeps only the key derived from it */
    if (err)
        return cli_fail(c, CLI_ERROR, "cannot open a client endpoint on %s: %s", uo.bind,
                        aq_strerror(err));
    c->rpc = aq_rpc_uv_core(c->uv);
    for (uint16_t m = AQ_M_PUT; m <= AQ_M_LAST; m++)
        aq_rpc_method_name(c->rpc, m, aq_node_method_name(m));
    for (size_t i = 0; i < cf->nnodes; i++) {
        aq_rpc_addr a;
        err = aq_rpc_addr_parse(cf->nodes[i].address, &a);
        if (err)
            return cli_fail(c, CLI_ERROR, "node %s: bad address %s", cf->nodes[i].name,
                            cf->nodes[i].address);
        c->peers[i] = aq_rpc_peer_get(c->rpc, &a);
        if (!c->peers[i])
            return cli_fail(c, AQ_ENOMEM, "out of memory");
        aq_rpc_peer_set_name(c->peers[i], cf->nodes[i].name);
        c->seeds[i] = aq_place_seed(cf->nodes[i].name);
    }
    if (cli_watch_start(c) != 0)
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    return 0;
}

static void uv_closed(void *ud) {
    *(bool *)ud = true;
}

void cli_close(cli *c) {
    cli_watch_stop(c);
    if (c->uv) {
        bool closed = false;
        aq_rpc_uv_close(c->uv, uv_closed, &closed);
        while (!closed && uv_run(&c->loop, UV_RUN_ONCE))
            ;
        c->uv = NULL;
        c->rpc = NULL;
    }
    if (c->loop_open) {
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        c->loop_open = false;
    }
    cli_watch_free(c);
    probe_free_all(c->probe);
    c->probe = NULL;
    free(c->peers);
    free(c->seeds);
    free(c->live);
    free(c->mono_off);
    free(c->mono_have);
    free(c->tails);
    free(c->wrep_missing);
    for (size_t i = 0; c->theirs && i < c->conf->nnodes; i++)
        free(c->theirs[i]);
    free(c->theirs);
    free(c->ntheirs);
    c->theirs = NULL;
    c->ntheirs = NULL;
    c->peers = NULL;
    c->seeds = NULL;
    c->live = NULL;
    c->mono_off = NULL;
    c->mono_have = NULL;
    c->tails = NULL;
    c->wrep_missing = NULL;
}

static void kop_send(cli_kop *k);

static void step(cli *c, uv_run_mode mode) {
    uv_run(&c->loop, mode);
    /* Retries are sent here, outside the rpc callback that decided them. */
    while (c->retry) {
        cli_kop *k = c->retry;
        c->retry = k->next_retry;
        k->next_retry = NULL;
        kop_send(k);
    }
}

void cli_step(cli *c) {
    step(c, UV_RUN_ONCE);
}

void cli_step_nowait(cli *c) {
    step(c, UV_RUN_NOWAIT);
}

void cli_candidates(cli *c, const void *key, size_t klen, bool all_nodes, cli_kop *k) {
    size_t n = c->conf->nnodes;
    uint32_t order[n];
    aq_place_order(c->seeds, n, key, klen, order);
    size_t r = c->conf->replicas < n ? c->conf->replicas : n;
    k->ncand = 0;
    for (size_t i = 0; i < (all_nodes ? n : r); i++)
        if (c->live[order[i]])
            k->cand[k->ncand++] = order[i];
    if (k->ncand)
        return;
    /* Say which nodes would have been asked: the user needs one of them back. */
    size_t off = (size_t)snprintf(k->msg, sizeof k->msg, "no live node to ask: ");
    for (size_t i = 0; i < (all_nodes ? n : r) && off < sizeof k->msg; i++)
        off += (size_t)snprintf(k->msg + off, sizeof k->msg - off, "%s%s (%s)", i ? ", " : "",
                                c->conf->nodes[order[i]].name, c->conf->nodes[order[i]].address);
    if (off < sizeof k->msg)
        snprintf(k->msg + off, sizeof k->msg - off, " %s unreachable",
                 (all_nodes ? n : r) > 1 ? "are all" : "is");
}

static bool digest_eq(aq_node_digest a, aq_node_digest b) {
    return a.hi == b.hi && a.lo == b.lo;
}

static void kop_finish(cli_kop *k) {
    k->done = true;
    if (k->on_done)
        k->on_done(k);
}

/* The call's failure in a sentence. A coordinator's refusal of a PUT that one of the replicas
 * refused carries that replica's name: the sentence names it, since the coordinator was fine. */
static void describe_failure(cli *c, const aq_rpc_result *r, const aq_node_config_node *to,
                             char *msg, size_t cap) {
    char name[AQ_NODE_NAME_MAX + 1];
    if (r->err == 0 && r->status && r->method == AQ_M_PUT && r->len &&
        aq_node_refusal_decode(r->data, r->len, name) == 0 && strcmp(name, to->name) != 0) {
        const aq_node_config_node *by = aq_node_config_find(c->conf, name);
        snprintf(msg, cap, "call PUT to %s (%s) failed: the replica %s%s%s%s refused its copy: %s",
                 to->name, to->address, name, by ? " (" : "", by ? by->address : "", by ? ")" : "",
                 aq_strerror(r->status));
        return;
    }
    aq_rpc_result_describe(c->rpc, r, msg, cap);
}

/* A GET reply in k->rep checked against its digest (and k's wanted one): 0, or the error with
 * its sentence in k->msg. e2e_from: where the bytes rpc did not checksum start (the value, sent
 * as the reply's end-to-end tail); the reply's header before the value must not be among them. */
static int kop_verify(cli_kop *k, const aq_node_config_node *cn, size_t e2e_from) {
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    if (aq_node_get_rep_decode(k->rep, k->replen, &kind, &d, &v, &vlen) != 0) {
        snprintf(k->msg, sizeof k->msg, "%s (%s) sent a malformed GET reply", cn->name,
                 cn->address);
        return AQ_EPROTO;
    }
    if ((size_t)(v - k->rep) > e2e_from) {
        snprintf(k->msg, sizeof k->msg, "%s (%s) sent a GET reply whose header had no checksum",
                 cn->name, cn->address);
        return AQ_EPROTO;
    }
    XXH128_hash_t h = XXH3_128bits(v, vlen);
    aq_node_digest got = {h.high64, h.low64};
    if (!digest_eq(got, d) || (k->have_want && !digest_eq(got, k->want))) {
        snprintf(k->msg, sizeof k->msg, "%s (%s) sent data whose digest does not match", cn->name,
                 cn->address);
        return AQ_ECORRUPT;
    }
    return 0;
}

/* The outcome of k's call to k->cand[k->pos] (cli_kop_outcome). */
static void kop_outcome(cli_kop *k, const aq_rpc_result *r, uint8_t *rep, size_t replen,
                        const char *why) {
    cli *c = k->c;
    int e = r->err ? r->err : r->status;
    size_t node = k->cand[k->pos];
    const aq_node_config_node *cn = &c->conf->nodes[node];
    if (e == 0) {
        free(k->rep);
        k->rep = rep;
        k->replen = rep ? replen : 0;
        if (!rep && replen) {
            e = AQ_ENOMEM;
            snprintf(k->msg, sizeof k->msg, "out of memory for the reply of %s", cn->name);
        }
    } else {
        free(rep);
    }
    if (e == 0 && k->verify) {
        e = kop_verify(k, cn, r->e2e_from);
    } else if (e && why) {
        snprintf(k->msg, sizeof k->msg, "%s", why);
    } else if (e) {
        describe_failure(c, r, cn, k->msg, sizeof k->msg);
    }
    if (e == 0) {
        k->err = 0;
        k->node = node;
        kop_finish(k);
        return;
    }
    free(k->rep);
    k->rep = NULL;
    k->replen = 0;
    if (e == AQ_ENOTFOUND)
        k->any_notfound = true;
    /* A node silent for a whole call is left out of the candidates of every later call of this
     * command, so a node that died mid-run costs one timeout, not one per key placed on it. One
     * the other nodes called down (the watch canceled its calls) is left out already. */
    if (r->err == AQ_ETIMEDOUT)
        c->live[node] = false;
    if (r->err == AQ_ECANCELED) {
        if (!why) {
            size_t l = strlen(k->msg);
            snprintf(k->msg + l, sizeof k->msg - l, ": the other nodes call %s down", cn->name);
        }
        e = AQ_EUNAVAIL;
    }
    /* A value that failed its digest check after crossing the pipe as an end-to-end tail (which
     * only that check covers) may have been damaged on the way rather than where it is stored:
     * the same node is asked once more, as a frame failing its checksum would have been resent. */
    bool tail = (k->e2e_tail && c->tails[node]) || r->e2e_from < replen;
    if (e == AQ_ECORRUPT && !k->again && tail && c->live[node]) {
        k->again = true;
        k->next_retry = c->retry;
        c->retry = k;
        return;
    }
    if (e == AQ_ECORRUPT && k->verify && !k->corrupt_from)
        k->corrupt_from = (uint32_t)node + 1;
    bool retry = r->err != 0 || e == AQ_ECLOSED || e == AQ_EBUSY || e == AQ_ECORRUPT ||
                 e == AQ_EPROTO || (e == AQ_ENOTFOUND && k->next_on_notfound);
    /* The next candidate not left out since the call started. */
    size_t next = k->pos + 1;
    while (next < k->ncand && !c->live[k->cand[next]])
        next++;
    if (retry && next < k->ncand) {
        k->pos = next;
        k->next_retry = c->retry;
        c->retry = k;
        return;
    }
    /* Every candidate said not found, except maybe ones that failed differently before. A node
     * that sent the value damaged had it, though: that is the truth to tell. */
    k->err = e;
    k->node = node;
    if (e == AQ_ENOTFOUND && k->corrupt_from) {
        const aq_node_config_node *bad = &c->conf->nodes[k->corrupt_from - 1];
        k->err = AQ_ECORRUPT;
        k->node = k->corrupt_from - 1;
        snprintf(k->msg, sizeof k->msg,
                 "%s (%s) sent data whose digest does not match, and no other live node has it",
                 bad->name, bad->address);
    }
    kop_finish(k);
}

static void kop_cb(void *ud, const aq_rpc_result *r) {
    cli_kop *k = ud;
    k->c->inflight--;
    size_t len = 0;
    uint8_t *rep = (r->err ? r->err : r->status) == 0 ? aq_rpc_result_take(r, &len) : NULL;
    kop_outcome(k, r, rep, rep ? len : r->len, NULL);
}

/* k's state as a start leaves it, at its first candidate. */
static void kop_begin(cli_kop *k) {
    k->done = false;
    k->err = 0;
    k->pos = 0;
    k->any_notfound = false;
    k->again = false;
    k->corrupt_from = 0;
    if (k->ncand)
        k->msg[0] = 0;
    if (!k->timeout_ms)
        k->timeout_ms = cli_data_timeout_ms(k->c);
}

void cli_kop_outcome(cli_kop *k, const aq_rpc_result *r, uint8_t *rep, size_t replen,
                     const char *why) {
    kop_begin(k); /* as cli_kop_start starts it: its first candidate answered */
    kop_outcome(k, r, rep, replen, why);
}

/* A request lent to rpc instead of copied: rpc may hold it (in a pipe's send queue) after the
 * call ended, so it is freed when the last of k and rpc's sends lets go of it. */
struct cli_lend {
    unsigned refs;
    void *mem;
};

/* Smaller requests are cheaper to copy than to track; a small value's PUT is not: the copy is an
 * allocation of its size and a pass over it, the holder one small allocation. */
#define LEND_MIN (1u << 10)

static void lend_drop(void *ctx) {
    struct cli_lend *l = ctx;
    if (--l->refs == 0) {
        free(l->mem);
        free(l);
    }
}

/* Lends k->req to this send when it may be: b then releases a reference. */
static void kop_lend(cli_kop *k, aq_rpc_buf *b) {
    if (!k->lend_ok || k->reqlen < LEND_MIN)
        return;
    if (!k->lend) {
        struct cli_lend *l = malloc(sizeof *l);
        if (!l)
            return; /* rpc copies it */
        l->refs = 1;
        l->mem = k->req_mem ? k->req_mem : k->req;
        k->lend = l;
    }
    k->lend->refs++;
    b->release = lend_drop;
    b->ctx = k->lend;
}

/* Before a resend rewrites the request (its deadline): a copy of our own, since an earlier send
 * may still be reading the lent bytes. 0 or AQ_ENOMEM. */
static int kop_unshare(cli_kop *k) {
    if (!k->lend || k->lend->refs == 1)
        return 0;
    uint8_t *p = malloc(k->reqlen);
    if (!p)
        return AQ_ENOMEM;
    memcpy(p, k->req, k->reqlen);
    lend_drop(k->lend);
    k->lend = NULL;
    k->req = p;
    k->req_mem = NULL;
    k->lend_ok = false;
    return 0;
}

int cli_kop_stamp(cli_kop *k, size_t node) {
    cli *c = k->c;
    if (!k->deadline_off)
        return 0;
    if (kop_unshare(k) != 0) {
        snprintf(k->msg, sizeof k->msg, "out of memory to resend %s to %s",
                 aq_node_method_name(k->method), c->conf->nodes[node].name);
        return AQ_ENOMEM;
    }
    if (!k->timeout_ms)
        k->timeout_ms = cli_data_timeout_ms(c);
    /* This attempt's deadline in the node's clock: never later than when we give up. */
    uint64_t dl = 0;
    if (c->mono_have[node]) {
        int64_t d = (int64_t)(uv_hrtime() / 1000 + k->timeout_ms * 1000) + c->mono_off[node];
        dl = d > 0 ? (uint64_t)d : 1;
    }
    aq_node_u64_at(k->req, k->deadline_off, dl);
    return 0;
}

static void kop_send(cli_kop *k) {
    cli *c = k->c;
    for (;;) {
        size_t node = k->cand[k->pos];
        if (cli_kop_stamp(k, node) != 0) {
            k->err = AQ_ENOMEM;
            k->node = node;
            kop_finish(k);
            return;
        }
        aq_rpc_buf b = {k->req, k->reqlen, NULL, NULL};
        kop_lend(k, &b);
        /* A PUT's value and a verified GET's reply value are checked end to end by digest, by a
         * node that said it takes them so. */
        int err = c->tails[node] && (k->e2e_tail || k->verify)
                      ? aq_rpc_call_e2e(c->rpc, c->peers[node], k->method, b, k->e2e_tail,
                                        k->timeout_ms * 1000, kop_cb, k)
                      : aq_rpc_call(c->rpc, c->peers[node], k->method, b, k->timeout_ms * 1000,
                                    kop_cb, k);
        if (err == 0) {
            c->inflight++;
            return;
        }
        snprintf(k->msg, sizeof k->msg, "call %s to %s (%s) failed: %s",
                 aq_node_method_name(k->method), c->conf->nodes[node].name,
                 c->conf->nodes[node].address, aq_strerror(err));
        if (k->pos + 1 >= k->ncand) {
            k->err = err;
            k->node = node;
            kop_finish(k);
            return;
        }
        k->pos++;
    }
}

int cli_kop_start(cli_kop *k) {
    kop_begin(k);
    if (k->ncand == 0) {
        if (!k->msg[0])
            snprintf(k->msg, sizeof k->msg, "no live node to ask");
        k->err = AQ_EUNAVAIL;
        k->done = true;
        return AQ_EUNAVAIL;
    }
    kop_send(k);
    return 0;
}

void cli_kop_wait(cli_kop *k) {
    while (!k->done)
        cli_step(k->c);
}

void cli_kop_reset(cli_kop *k) {
    if (k->lend)
        lend_drop(k->lend);
    else
        free(k->req_mem ? k->req_mem : k->req);
    k->lend = NULL;
    k->lend_ok = false;
    k->req_mem = NULL;
    free(k->rep);
    k->req = k->rep = NULL;
    k->reqlen = k->replen = 0;
}

/* ---- liveness probe ---- */

/* Node i's config order from its STATUS reply (its peers in order, then its own index), as our
 * indexes; left unknown when the reply does not say (an older build) or does not add up. And
 * whether it takes end-to-end tails (its features, last). */
static void theirs_learn(cli *c, size_t i, const uint8_t *rep, size_t len) {
    c->tails[i] = false; /* until this reply says otherwise */
    aq_rd r;
    aq_node_status_node sn;
    if (aq_node_status_rep_begin(&r, rep, len, &sn) != 0 || sn.npeers >= CLI_NO_NODE)
        return;
    size_t n = (size_t)sn.npeers + 1;
    uint16_t *map = malloc(n * sizeof *map);
    if (!map)
        return;
    const aq_node_config_node *me = aq_node_config_find(c->conf, sn.name);
    uint16_t self_ours = me ? (uint16_t)(me - c->conf->nodes) : CLI_NO_NODE;
    uint32_t self, features;
    size_t j = 0;
    for (uint32_t p = 0; p < sn.npeers; p++) {
        aq_node_status_peer sp;
        if (aq_node_status_rep_next(&r, &sp) != 0)
            goto unknown;
        const aq_node_config_node *cn = aq_node_config_find(c->conf, sp.name);
        map[j++] = cn ? (uint16_t)(cn - c->conf->nodes) : CLI_NO_NODE;
    }
    if (aq_node_status_rep_self_features_read(&r, &self, &features) != 0 || self > sn.npeers)
        goto unknown;
    c->tails[i] = features & AQ_NODE_FEATURE_TAILS;
    memmove(map + self + 1, map + self, (n - 1 - self) * sizeof *map);
    map[self] = self_ours;
    free(c->theirs[i]);
    c->theirs[i] = map;
    c->ntheirs[i] = (uint16_t)n;
    return;
unknown:
    free(map);
}

uint16_t cli_our_index(const cli *c, size_t i, uint32_t j) {
    if (c->theirs && c->theirs[i])
        return j < c->ntheirs[i] ? c->theirs[i][j] : CLI_NO_NODE;
    /* Unknown (an older build): its order is taken to be ours, as the nodes' config is. */
    return j < c->conf->nnodes ? (uint16_t)j : CLI_NO_NODE;
}

int cli_theirs_copy(cli *c, const cli *from) {
    for (size_t i = 0; i < c->conf->nnodes; i++) {
        if (!from->theirs[i])
            continue;
        c->theirs[i] = malloc(from->ntheirs[i] * sizeof *c->theirs[i]);
        if (!c->theirs[i])
            return AQ_ENOMEM;
        memcpy(c->theirs[i], from->theirs[i], from->ntheirs[i] * sizeof *c->theirs[i]);
        c->ntheirs[i] = from->ntheirs[i];
    }
    return 0;
}

static void probe_cb(void *ud, const aq_rpc_result *r) {
    probe_call *pc = ud;
    pc->c->inflight--;
    pc->done = true;
    pc->err = r->err ? r->err : r->status;
    if (pc->err == 0) {
        pc->rep = aq_rpc_result_take(r, &pc->len);
        if (!pc->rep)
            pc->err = AQ_EPROTO;
    }
    aq_rd rd;
    aq_node_status_node sn;
    if (pc->err == 0)
        theirs_learn(pc->c, pc->i, pc->rep, pc->len);
    if (pc->err == 0 && aq_node_status_rep_begin(&rd, pc->rep, pc->len, &sn) == 0 && sn.mono_us) {
        /* It answered before now: its clock now is at least what it said. */
        int64_t off = (int64_t)sn.mono_us - (int64_t)(uv_hrtime() / 1000);
        if (!pc->c->mono_have[pc->i] || off > pc->c->mono_off[pc->i])
            pc->c->mono_off[pc->i] = off;
        pc->c->mono_have[pc->i] = true;
    }
    if (pc->err)
        aq_rpc_result_describe(pc->c->rpc, r, pc->msg, sizeof pc->msg);
}

/* True when some node answered and every silent node is reported not up by all that answered. */
static bool probe_settled(cli *c) {
    struct cli_probe *p = c->probe;
    size_t n = p->n, answered = 0, silent = 0;
    bool reported_out[n];
    memset(reported_out, 1, sizeof reported_out);
    for (size_t i = 0; i < n; i++) {
        probe_call *pc = &p->calls[i];
        if (!pc->done) {
            silent++;
            continue;
        }
        if (pc->err)
            continue;
        answered++;
        aq_rd r;
        aq_node_status_node sn;
        if (aq_node_status_rep_begin(&r, pc->rep, pc->len, &sn) != 0)
            continue;
        bool seen[n];
        memset(seen, 0, sizeof seen);
        for (uint32_t j = 0; j < sn.npeers; j++) {
            aq_node_status_peer sp;
            if (aq_node_status_rep_next(&r, &sp) != 0)
                break;
            const aq_node_config_node *cn = aq_node_config_find(c->conf, sp.name);
            if (!cn)
                continue;
            size_t idx = (size_t)(cn - c->conf->nodes);
            seen[idx] = true;
            if (sp.state == AQ_MEMBER_UP)
                reported_out[idx] = false;
        }
        for (size_t j = 0; j < n; j++)
            if (!seen[j] && j != i)
                reported_out[j] = false;
    }
    if (silent == 0)
        return true;
    if (answered == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!p->calls[i].done && !reported_out[i])
            return false;
    return true;
}

size_t cli_probe(cli *c, uint64_t timeout_ms) {
    size_t n = c->conf->nnodes;
    c->probe_ms = timeout_ms;
    struct cli_probe *p = calloc(1, sizeof *p);
    probe_call *calls = calloc(n, sizeof *calls);
    if (!p || !calls) {
        free(p);
        free(calls);
        return 0;
    }
    p->n = n;
    p->calls = calls;
    p->older = c->probe;
    c->probe = p;
    for (size_t i = 0; i < n; i++) {
        probe_call *pc = &calls[i];
        pc->c = c;
        pc->i = i;
        static const uint8_t ask = AQ_NODE_STATUS_ASK_FEATURES;
        int err = aq_rpc_call(c->rpc, c->peers[i], AQ_M_STATUS, (aq_rpc_buf){&ask, 1, NULL, NULL},
                              timeout_ms * 1000, probe_cb, pc);
        if (err) {
            pc->done = true;
            pc->err = err;
            snprintf(pc->msg, sizeof pc->msg, "call STATUS to %s (%s) failed: %s",
                     c->conf->nodes[i].name, c->conf->nodes[i].address, aq_strerror(err));
        } else {
            c->inflight++;
        }
    }
    while (!probe_settled(c))
        cli_step(c);
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        c->live[i] = calls[i].done && calls[i].err == 0;
        live += c->live[i];
    }
    return live;
}

const uint8_t *cli_probe_reply(cli *c, size_t i, size_t *len, const char **failure) {
    *failure = NULL;
    if (!c->probe || i >= c->probe->n)
        return NULL;
    probe_call *pc = &c->probe->calls[i];
    if (!pc->done) {
        *failure = "did not answer yet (reported down by the others)";
        return NULL;
    }
    if (pc->err) {
        *failure = pc->msg;
        return NULL;
    }
    *len = pc->len;
    return pc->rep;
}

int cli_fail_unreachable(cli *c) {
    /* A node that refused our packets is reachable, and says why: that is the one sentence. */
    for (size_t i = 0; c->probe && i < c->probe->n; i++)
        if (c->probe->calls[i].err == AQ_EAUTH)
            return cli_fail(c, AQ_EAUTH, "authentication failed at node %s (%s): %s",
                            c->conf->nodes[i].name, c->conf->nodes[i].address,
                            c->conf->secret_file
                                ? "it refused this command's secret (the node has another "
                                  "secret_file, or none)"
                                : "the node requires the cluster's secret_file in [cluster] and "
                                  "this command has none");
    char list[1024];
    size_t off = 0;
    list[0] = 0;
    for (size_t i = 0; i < c->conf->nnodes && off < sizeof list - 1; i++) {
        int w = snprintf(list + off, sizeof list - off, "%s%s (%s)", i ? ", " : "",
                         c->conf->nodes[i].name, c->conf->nodes[i].address);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (c->conf->nnodes == 1 && c->probe && c->probe->calls[0].err)
        return cli_fail(c, CLI_UNREACH, "cluster %s is unreachable: %s", c->conf->name,
                        c->probe->calls[0].msg);
    return cli_fail(c, CLI_UNREACH,
                    "cluster %s is unreachable: no node answered within %.1f s (%s)", c->conf->name,
                    (double)c->probe_ms / 1000.0, list);
}

int cli_kop_key(cli *c, cli_kop *k, uint16_t method, const void *key, size_t klen, bool all_nodes) {
    cli_kop_reset(k);
    k->c = c;
    k->method = method;
    aq_wr w;
    aq_wr_init(&w);
    k->deadline_off = 0;
    if (method == AQ_M_RM) {
        aq_node_rm_req_encode(&w, 0, key, klen, 0, 0);
        k->deadline_off = aq_node_rm_req_deadline_off(klen);
    } else {
        aq_node_key_req_encode(&w, 0, key, klen);
    }
    if (!w.ok) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    k->req = w.p;
    k->reqlen = w.len;
    cli_candidates(c, key, klen, all_nodes, k);
    return 0;
}

int cli_kop_fail(cli *c, const cli_kop *k) {
    if (k->err == AQ_ENOTFOUND)
        return cli_fail(c, CLI_NOTFOUND, "not found (asked %zu node%s)", k->pos + 1,
                        k->pos ? "s" : "");
    return cli_fail(c, k->err, "%s", k->msg[0] ? k->msg : aq_strerror(k->err));
}
