/* ls and stat: what the cluster holds, asked of every live node (the cores; cli_list_print.c prints
 * them for the command). A large value shows as its total size (from its manifest); its parts
 * (internal keys) are never listed. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define LIST_PAGE  1000
#define STAT_SLOTS 64

typedef cli_lsent ent;

typedef struct ents {
    ent *v;
    size_t n, cap;
} ents;

static int ents_add(ents *e, const aq_node_list_entry *le) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        ent *nv = realloc(e->v, cap * sizeof *nv);
        if (!nv)
            return AQ_ENOMEM;
        e->v = nv;
        e->cap = cap;
    }
    uint8_t *k = malloc(le->klen);
    if (!k)
        return AQ_ENOMEM;
    memcpy(k, le->key, le->klen);
    e->v[e->n++] = (ent){k, le->klen, le->kind, le->size, le->digest, le->version, true};
    return 0;
}

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

/* By key, and the newest copy of a key first. */
static int ent_cmp(const void *x, const void *y) {
    const ent *a = x, *b = y;
    int c = keycmp(a->key, a->klen, b->key, b->klen);
    return c ? c
             : -aq_node_copy_cmp(a->version, a->digest, a->kind, b->version, b->digest, b->kind);
}

/* All keys with prefix held by node i, page by page. */
static int list_node(cli *c, size_t i, const char *prefix, ents *out, cli_kop *k, char *why,
                     size_t whylen) {
    uint8_t after[AQ_NODE_KEY_MAX];
    size_t alen = 0;
    for (;;) {
        aq_wr w;
        aq_wr_init(&w);
        /* Removal markers too: a key whose newest copy anywhere is a removal is not listed. */
        aq_node_list_req q = {
            AQ_LIST_TOMBSTONES, (const uint8_t *)prefix, strlen(prefix), after, alen, LIST_PAGE};
        aq_node_list_req_encode(&w, &q);
        if (!w.ok) {
            aq_wr_free(&w);
            return AQ_ENOMEM;
        }
        cli_kop_reset(k);
        k->c = c;
        k->method = AQ_M_LIST;
        k->req = w.p;
        k->reqlen = w.len;
        k->cand[0] = (uint32_t)i;
        k->ncand = 1;
        k->timeout_ms = 0;
        if (cli_kop_start(k) == 0)
            cli_kop_wait(k);
        if (k->err) {
            snprintf(why, whylen, "%s", k->msg);
            return k->err;
        }
        aq_rd r;
        bool more;
        uint32_t count;
        if (aq_node_list_rep_begin(&r, k->rep, k->replen, &more, &count) != 0)
            goto bad;
        aq_node_list_entry le = {0};
        for (uint32_t j = 0; j < count; j++) {
            if (aq_node_list_rep_next(&r, &le) != 0)
                goto bad;
            int err = ents_add(out, &le);
            if (err)
                return err;
        }
        if (!aq_rd_done(&r))
            goto bad;
        if (!more || count == 0)
            return 0;
        memcpy(after, le.key, le.klen);
        alen = le.klen;
    }
bad:
    snprintf(why, whylen, "%s (%s) sent a malformed LIST reply", c->conf->nodes[i].name,
             c->conf->nodes[i].address);
    return AQ_EPROTO;
}

int cli_ls_collect(cli *c, const char *prefix, cli_lsent **out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t plen = strlen(prefix);
    if (plen > AQ_NODE_KEY_MAX || !cli_utf8_ok(prefix, plen))
        return cli_fail(c, CLI_USAGE, "a prefix is at most 255 bytes of UTF-8");
    int rc = cli_need_live(c);
    if (rc)
        return rc;
    ents e = {0};
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    size_t asked = 0;
    for (size_t i = 0; i < c->conf->nnodes && !rc; i++) {
        if (!c->live[i])
            continue;
        char why[400];
        int err = list_node(c, i, prefix, &e, k, why, sizeof why);
        if (err == AQ_ENOMEM)
            rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        else if (err)
            /* A node lost mid-listing may hold keys no other node has: the list would lie. */
            rc = cli_fail(c, err, "%s", why);
        asked++;
    }
    if (!rc && e.n) {
        qsort(e.v, e.n, sizeof *e.v, ent_cmp);
        size_t o = 0;
        for (size_t i = 0; i < e.n; i++) {
            /* The first of each key is its newest copy, kept (a removal too, dropped below). */
            if (o && keycmp(e.v[o - 1].key, e.v[o - 1].klen, e.v[i].key, e.v[i].klen) == 0) {
                free(e.v[i].key);
                continue;
            }
            e.v[o++] = e.v[i];
        }
        e.n = o;
        o = 0;
        for (size_t i = 0; i < e.n; i++) {
            /* A key whose newest copy is a removal is not listed. */
            if (e.v[i].kind == AQ_KIND_TOMBSTONE) {
                free(e.v[i].key);
                continue;
            }
            e.v[o++] = e.v[i];
        }
        e.n = o;
    }
    for (size_t i = 0; i < e.n && !rc; i++) {
        ent *x = &e.v[i];
        if (x->kind != AQ_KIND_MANIFEST)
            continue;
        uint8_t kind;
        aq_node_digest d;
        const uint8_t *v;
        size_t vlen;
        cli_manifest m;
        x->size_known = false;
        if (cli_fetch(c, k, x->key, x->klen, &kind, &d, &v, &vlen) == 0 &&
            kind == AQ_KIND_MANIFEST && cli_manifest_decode(v, vlen, &m) == 0) {
            x->size = m.total;
            x->digest = m.digest;
            x->size_known = true;
            cli_manifest_free(&m);
        }
    }
    cli_kop_free(k);
    if (rc) {
        cli_ls_free(e.v, e.n);
        return rc;
    }
    *out = e.v;
    *n = e.n;
    return 0;
}

void cli_ls_free(cli_lsent *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
}

/* ---- stat ---- */

typedef struct stat_res {
    bool found;
    uint8_t kind;
    uint64_t size;
    aq_node_digest digest;
    uint64_t version;
    int err;
} stat_res;

/* STAT each of nkeys keys at every live node; res[key * nnodes + node]. */
static void stat_everywhere(cli *c, char (*keys)[AQ_NODE_KEY_MAX + 1], const size_t *klens,
                            size_t nkeys, stat_res *res) {
    size_t nn = c->conf->nnodes, total = nkeys * nn, next = 0;
    cli_kop *slot[STAT_SLOTS] = {0};
    size_t job[STAT_SLOTS];
    size_t busy = 0;
    for (;;) {
        for (size_t s = 0; s < STAT_SLOTS; s++) {
            if (slot[s] && slot[s]->done) {
                cli_kop *k = slot[s];
                stat_res *r = &res[job[s]];
                r->err = k->err;
                if (!k->err && aq_node_stat_rep_decode_v(k->rep, k->replen, &r->kind, &r->size,
                                                         &r->digest, &r->version) == 0)
                    r->found = true;
                cli_kop_free(k);
                slot[s] = NULL;
                busy--;
            }
            while (!slot[s] && next < total) {
                size_t j = next++;
                size_t node = j % nn;
                if (!c->live[node])
                    continue;
                cli_kop *k = cli_kop_new(c);
                aq_wr w;
                aq_wr_init(&w);
                /* Removal markers answer with their version: the newest copy decides. */
                aq_node_key_req_encode(&w, AQ_READ_TOMBSTONES, keys[j / nn], klens[j / nn]);
                if (!k || !w.ok) {
                    aq_wr_free(&w);
                    cli_kop_free(k);
                    res[j].err = AQ_ENOMEM;
                    continue;
                }
                k->c = c;
                k->method = AQ_M_STAT;
                k->req = w.p;
                k->reqlen = w.len;
                k->cand[0] = (uint32_t)node;
                k->ncand = 1;
                k->timeout_ms = 3000;
                cli_kop_start(k);
                slot[s] = k;
                job[s] = j;
                busy++;
            }
        }
        if (busy == 0 && next >= total)
            break;
        cli_step(c);
    }
}

/* A node holds the chunk when it holds a live copy with its digest. */
static bool holds(const stat_res *r, aq_node_digest d) {
    return r->found && r->kind != AQ_KIND_TOMBSTONE && r->digest.hi == d.hi && r->digest.lo == d.lo;
}

/* Read repair for stat: when a live replica answered with an older copy than the newest, or with
 * none, the newest is read (verified) and sent to the stale replicas, as get does. */
static void repair_stale(cli *c, const char *key, size_t klen, const stat_res *res,
                         const stat_res *newest) {
    cli_kop reps = {0};
    cli_candidates(c, key, klen, false, &reps);
    bool stale = false;
    for (size_t i = 0; i < reps.ncand && !stale; i++) {
        const stat_res *r = &res[reps.cand[i]];
        stale = r->found ? aq_node_copy_cmp(r->version, r->digest, r->kind, newest->version,
                                            newest->digest, newest->kind) < 0
                         : r->err == AQ_ENOTFOUND;
    }
    if (!stale)
        return;
    cli_read rd;
    int err = cli_read_newest(c, key, klen, true, &rd);
    if (err == 0 || (err == AQ_ENOTFOUND && rd.best >= 0))
        cli_read_repair(&rd, key, klen);
    cli_read_free(&rd);
}

int cli_stat_collect(cli *c, const char *key, cli_stat_info *si) {
    memset(si, 0, sizeof *si);
    int rc = cli_check_key(c, key);
    if (rc || (rc = cli_need_live(c)) != 0)
        return rc;
    size_t nn = c->conf->nnodes, klen = strlen(key);
    char(*keys)[AQ_NODE_KEY_MAX + 1] = calloc(1, sizeof *keys);
    size_t *klens = calloc(1, sizeof *klens);
    stat_res *res = calloc(nn, sizeof *res);
    cli_manifest m = {0};
    bool large = false;
    if (!keys || !klens || !res) {
        rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(keys[0], key, klen);
    klens[0] = klen;
    stat_everywhere(c, keys, klens, 1, res);
    /* The copy that counts is the newest anywhere; a removal there means not found. */
    const stat_res *first = NULL;
    for (size_t i = 0; i < nn; i++)
        if (res[i].found &&
            (!first || aq_node_copy_cmp(res[i].version, res[i].digest, res[i].kind, first->version,
                                        first->digest, first->kind) > 0))
            first = &res[i];
    if (first)
        repair_stale(c, key, klen, res, first);
    if (first && first->kind == AQ_KIND_TOMBSTONE) {
        rc = cli_fail(c, CLI_NOTFOUND, "not found on any live node (removed)");
        goto out;
    }
    if (!first) {
        int err = AQ_ENOTFOUND;
        for (size_t i = 0; i < nn; i++)
            if (c->live[i] && res[i].err && res[i].err != AQ_ENOTFOUND)
                err = res[i].err;
        rc = err == AQ_ENOTFOUND ? cli_fail(c, CLI_NOTFOUND, "not found on any live node")
                                 : cli_fail(c, err, "%s", aq_strerror(err));
        goto out;
    }
    uint64_t size = first->size, version = first->version;
    aq_node_digest digest = first->digest, main_digest = first->digest;
    if (first->kind == AQ_KIND_MANIFEST) {
        cli_kop *k = cli_kop_new(c);
        uint8_t kind;
        aq_node_digest d;
        const uint8_t *v;
        size_t vlen;
        int err = k ? cli_fetch(c, k, key, klen, &kind, &d, &v, &vlen) : AQ_ENOMEM;
        if (!err)
            err = kind == AQ_KIND_MANIFEST ? cli_manifest_decode(v, vlen, &m) : AQ_ECORRUPT;
        if (err) {
            rc = err == AQ_ENOTFOUND ? cli_fail(c, CLI_NOTFOUND, "not found on any live node")
                                     : cli_fail(c, err, "cannot read its manifest: %s",
                                                k && k->msg[0] ? k->msg : aq_strerror(err));
            cli_kop_free(k);
            goto out;
        }
        cli_kop_free(k);
        large = true;
        size = m.total;
        digest = m.digest;
        free(keys);
        free(klens);
        free(res);
        keys = calloc(m.nparts, sizeof *keys);
        klens = calloc(m.nparts, sizeof *klens);
        res = calloc((size_t)m.nparts * nn, sizeof *res);
        if (!keys || !klens || !res) {
            rc = cli_fail(c, AQ_ENOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < m.nparts; i++)
            klens[i] = cli_part_key(key, klen, m.put_id, i, keys[i]);
        stat_everywhere(c, keys, klens, m.nparts, res);
    }
    si->size = size;
    si->digest = digest;
    si->main_digest = main_digest;
    si->version = version;
    si->large = large;
    si->nchunks = large ? m.nparts : 1;
    si->replicas = c->conf->replicas;
    si->chunk_size = calloc(si->nchunks, sizeof *si->chunk_size);
    si->chunk_digest = calloc(si->nchunks, sizeof *si->chunk_digest);
    si->held = calloc((size_t)si->nchunks * nn, sizeof *si->held);
    if (!si->chunk_size || !si->chunk_digest || !si->held) {
        rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        cli_stat_info_free(si);
        goto out;
    }
    for (uint32_t i = 0; i < si->nchunks; i++) {
        si->chunk_size[i] = large ? m.parts[i].size : size;
        si->chunk_digest[i] = large ? m.parts[i].digest : main_digest;
        for (size_t n = 0; n < nn; n++)
            si->held[(size_t)i * nn + n] = holds(&res[(size_t)i * nn + n], si->chunk_digest[i]);
    }
out:
    cli_manifest_free(&m);
    free(keys);
    free(klens);
    free(res);
    return rc;
}

void cli_stat_info_free(cli_stat_info *si) {
    free(si->chunk_size);
    free(si->chunk_digest);
    free(si->held);
    memset(si, 0, sizeof *si);
}
