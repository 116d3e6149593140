/* Reads that return the newest copy the key's replicas know, and read repair.
 *
 * A read asks every live replica at once: the first for the value (GET), the others for the
 * version and digest only (STAT), all flagged AQ_READ_TOMBSTONES so a removal answers as a marker
 * with its version rather than "not found". The newest copy (by version, then digest, as the store
 * orders writes) is the answer; a removal marker there means not found, however many older copies
 * other nodes hold. Only when no replica holds anything are the other live nodes asked (repair may
 * have placed the copy there while a replica was down); a read of versions only (no value wanted:
 * the previous value around a put, cli_prev.c) asks the replicas and the other live nodes in one
 * round instead, since for a new key the second round would always follow, and still prefers the
 * replicas' newest copy. When the first replica's reply is not the newest, the value is fetched
 * from a node that holds the newest, verified against its digest.
 *
 * Read repair: a replica that answered with an older copy, or with nothing, is sent the newest
 * (a replica-only PUT or RM carrying the newest's version, which the store applies only if it is
 * still newer), before the command returns. Its failure does not fail the read: the nodes' repair
 * passes do the same later.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_read_kop(cli *c, cli_kop *k, uint16_t method, const void *key, size_t klen, uint32_t node) {
    cli_kop_reset(k);
    k->c = c;
    k->method = method;
    aq_wr w;
    aq_wr_init(&w);
    aq_node_key_req_encode(&w, AQ_READ_TOMBSTONES, key, klen);
    if (!w.ok) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    k->req = w.p;
    k->reqlen = w.len;
    k->cand[0] = node;
    k->ncand = 1;
    k->verify = method == AQ_M_GET;
    return 0;
}

void cli_read_note(cli_read *r, size_t i, cli_kop *k) {
    cli_copy *cp = &r->copies[i];
    cp->asked = true;
    cp->err = k->err;
    if (k->err) {
        if (k->err != AQ_ENOTFOUND && !r->failure[0]) {
            snprintf(r->failure, sizeof r->failure, "%s", k->msg);
            r->failure_err = k->err;
        }
        return;
    }
    const uint8_t *v;
    size_t vlen;
    int e = k->method == AQ_M_GET ? aq_node_get_rep_decode_v(k->rep, k->replen, &cp->kind,
                                                             &cp->digest, &cp->version, &v, &vlen)
                                  : aq_node_stat_rep_decode_v(k->rep, k->replen, &cp->kind,
                                                              &cp->size, &cp->digest, &cp->version);
    if (k->method == AQ_M_GET && !e)
        cp->size = vlen;
    cp->err = e;
    cp->found = e == 0;
    if (e) {
        snprintf(k->msg, sizeof k->msg, "%s sent a malformed reply", r->c->conf->nodes[i].name);
        if (!r->failure[0]) {
            snprintf(r->failure, sizeof r->failure, "%s", k->msg);
            r->failure_err = e;
        }
    }
}

/* Asks each node in nodes[0..n) (GET to the first when get_first, STAT to the rest) and waits. */
static int ask(cli_read *r, const void *key, size_t klen, const uint32_t *nodes, size_t n,
               bool get_first) {
    cli *c = r->c;
    cli_kop **ks = calloc(n ? n : 1, sizeof *ks);
    if (!ks)
        return AQ_ENOMEM;
    int err = 0;
    for (size_t j = 0; j < n && !err; j++) {
        bool get = get_first && j == 0;
        cli_kop *k = get ? r->data : cli_kop_new(c);
        if (!k || cli_read_kop(c, k, get ? AQ_M_GET : AQ_M_STAT, key, klen, nodes[j]) != 0) {
            if (!get)
                cli_kop_free(k);
            err = AQ_ENOMEM;
            break;
        }
        ks[j] = k;
        cli_kop_start(k);
    }
    for (size_t j = 0; j < n; j++) {
        if (!ks[j])
            continue;
        cli_kop_wait(ks[j]);
        cli_read_note(r, nodes[j], ks[j]);
        if (ks[j] != r->data)
            cli_kop_free(ks[j]);
    }
    free(ks);
    return err;
}

void cli_read_pick(cli_read *r, bool replicas_only) {
    r->best = -1;
    for (size_t i = 0; i < r->c->conf->nnodes; i++) {
        const cli_copy *cp = &r->copies[i];
        if (!cp->found || (replicas_only && !cp->replica))
            continue;
        if (r->best < 0 ||
            aq_node_copy_cmp(cp->version, cp->digest, cp->kind, r->copies[r->best].version,
                             r->copies[r->best].digest, r->copies[r->best].kind) > 0)
            r->best = (int)i;
    }
}

void cli_read_free(cli_read *r) {
    cli_kop_free(r->data);
    free(r->copies);
    r->data = NULL;
    r->copies = NULL;
}

int cli_read_init(cli *c, const void *key, size_t klen, cli_read *r, cli_kop *cands) {
    memset(r, 0, sizeof *r);
    r->c = c;
    r->best = -1;
    r->copies = calloc(c->conf->nnodes, sizeof *r->copies);
    if (!r->copies)
        return AQ_ENOMEM;
    cli_kop_clear(cands);
    cli_candidates(c, key, klen, false, cands);
    for (size_t i = 0; i < cands->ncand; i++)
        r->copies[cands->cand[i]].replica = true;
    return 0;
}

int cli_read_outcome(cli_read *r, const cli_kop *cands) {
    size_t nn = r->c->conf->nnodes;
    r->asked = 0;
    for (size_t i = 0; i < nn; i++)
        r->asked += r->copies[i].asked;
    if (r->best < 0) {
        bool any_notfound = false;
        for (size_t i = 0; i < nn; i++)
            any_notfound |= r->copies[i].asked && r->copies[i].err == AQ_ENOTFOUND;
        if (r->asked == 0) {
            snprintf(r->failure, sizeof r->failure, "%s", cands->msg);
            return AQ_EUNAVAIL;
        }
        /* Nothing anywhere, but no replica could say so: the key's home did not answer, and
         * "not found" would be a guess. Its failure (or that none is live) is the answer. */
        bool replica_answered = false;
        int replica_err = 0;
        for (size_t i = 0; i < nn; i++) {
            const cli_copy *cp = &r->copies[i];
            if (!cp->replica || !cp->asked)
                continue;
            if (cp->err == 0 || cp->err == AQ_ENOTFOUND)
                replica_answered = true;
            else if (!replica_err)
                replica_err = cp->err;
        }
        /* The code of the sentence told (the first failure in asking order, replicas first). */
        if (!replica_answered && replica_err)
            return r->failure_err ? r->failure_err : replica_err;
        if (!replica_answered) {
            snprintf(r->failure, sizeof r->failure, "%s", cands->msg);
            return AQ_EUNAVAIL;
        }
        if (any_notfound)
            return AQ_ENOTFOUND;
        for (size_t i = 0; i < nn; i++)
            if (r->copies[i].asked && r->copies[i].err)
                return r->copies[i].err;
        return AQ_ENOTFOUND;
    }
    return r->copies[r->best].kind == AQ_KIND_TOMBSTONE ? AQ_ENOTFOUND : 0;
}

int cli_read_newest(cli *c, const void *key, size_t klen, bool want_data, cli_read *r) {
    cli_kop cands;
    int err = cli_read_init(c, key, klen, r, &cands);
    if (err)
        return err;
    if (want_data && !(r->data = cli_kop_new(c)))
        return AQ_ENOMEM;
    size_t nn = c->conf->nnodes;
    if (!want_data) {
        /* One round: the replicas and the other live nodes at once. */
        cli_kop all;
        cli_kop_clear(&all);
        cli_candidates(c, key, klen, true, &all);
        uint32_t order[AQ_NODE_CONFIG_MAX_NODES];
        size_t n = 0;
        for (size_t i = 0; i < cands.ncand; i++)
            order[n++] = cands.cand[i];
        for (size_t i = 0; i < all.ncand; i++)
            if (!r->copies[all.cand[i]].replica)
                order[n++] = all.cand[i];
        if ((err = ask(r, key, klen, order, n, false)) != 0)
            return err;
        cli_read_pick(r, true);
        if (r->best < 0)
            cli_read_pick(r, false);
    } else {
        if ((err = ask(r, key, klen, cands.cand, cands.ncand, true)) != 0)
            return err;
        cli_read_pick(r, false);
    }
    if (r->best < 0) {
        /* No replica holds anything: a copy may live where repair placed it. */
        cli_kop all;
        cli_kop_clear(&all);
        cli_candidates(c, key, klen, true, &all);
        uint32_t rest[AQ_NODE_CONFIG_MAX_NODES];
        size_t nrest = 0;
        for (size_t i = 0; i < all.ncand; i++)
            if (!r->copies[all.cand[i]].asked)
                rest[nrest++] = all.cand[i];
        if (nrest && (err = ask(r, key, klen, rest, nrest, false)) != 0)
            return err;
        cli_read_pick(r, false);
    }
    if ((err = cli_read_outcome(r, &cands)) != 0 || !want_data)
        return err;
    const cli_copy *b = &r->copies[r->best];
    /* The first replica's reply is the answer if it is the newest copy. */
    const cli_copy *first = cands.ncand ? &r->copies[cands.cand[0]] : NULL;
    if (first && first->found && r->data->err == 0 &&
        aq_node_copy_cmp(first->version, first->digest, first->kind, b->version, b->digest,
                         b->kind) == 0)
        return 0;
    /* Else fetch it from the nodes that hold it, verified against the newest digest. */
    cli_kop *k = r->data;
    if (cli_read_kop(c, k, AQ_M_GET, key, klen, 0) != 0)
        return AQ_ENOMEM;
    k->ncand = 0; /* the candidates are every node holding the newest, below */
    for (size_t i = 0; i < nn; i++)
        if (r->copies[i].found &&
            aq_node_copy_cmp(r->copies[i].version, r->copies[i].digest, r->copies[i].kind,
                             b->version, b->digest, b->kind) == 0)
            k->cand[k->ncand++] = (uint32_t)i;
    k->verify = true;
    k->have_want = true;
    k->want = b->digest;
    k->next_on_notfound = true;
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    if (k->err) {
        snprintf(r->failure, sizeof r->failure, "%s", k->msg);
        return k->err;
    }
    return 0;
}

int cli_read_value(const cli_read *r, uint8_t *kind, aq_node_digest *d, uint64_t *version,
                   const uint8_t **v, size_t *vlen) {
    return aq_node_get_rep_decode_v(r->data->rep, r->data->replen, kind, d, version, v, vlen);
}

/* ---- read repair ---- */

cli_kop *cli_read_write_copy(cli *c, uint32_t node, const void *key, size_t klen, uint8_t kind,
                             aq_node_digest d, uint64_t version, const void *v, size_t vlen) {
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return NULL;
    aq_wr w;
    aq_wr_init_cap(&w, AQ_PUT_HEAD_MAX + vlen);
    if (kind == AQ_KIND_TOMBSTONE) {
        k->method = AQ_M_RM;
        aq_node_rm_req_encode(&w, AQ_PUT_REPLICA, key, klen, version, 0);
        k->deadline_off = aq_node_rm_req_deadline_off(klen);
    } else {
        k->method = AQ_M_PUT;
        aq_node_put_req_head_vd(&w, AQ_PUT_REPLICA, kind, key, klen, d, version, 0);
        aq_wr_bytes(&w, v, vlen);
        k->deadline_off = aq_node_put_req_deadline_off(klen);
    }
    if (!w.ok) {
        aq_wr_free(&w);
        cli_kop_free(k);
        return NULL;
    }
    k->req = w.p;
    k->reqlen = w.len;
    k->cand[0] = node;
    k->ncand = 1;
    cli_kop_start(k);
    return k;
}

void cli_read_repair(cli_read *r, const void *key, size_t klen) {
    cli *c = r->c;
    if (r->best < 0)
        return;
    const cli_copy *b = &r->copies[r->best];
    const uint8_t *v = NULL;
    size_t vlen = 0;
    if (b->kind != AQ_KIND_TOMBSTONE) {
        uint8_t kind;
        aq_node_digest d;
        uint64_t version;
        if (!r->data || !r->data->rep || r->data->err ||
            cli_read_value(r, &kind, &d, &version, &v, &vlen) != 0 ||
            aq_node_copy_cmp(version, d, kind, b->version, b->digest, b->kind) != 0)
            return; /* the newest bytes are not at hand */
    }
    size_t nn = c->conf->nnodes, n = 0;
    cli_kop **ks = calloc(nn, sizeof *ks);
    if (!ks)
        return;
    for (size_t i = 0; i < nn; i++) {
        const cli_copy *cp = &r->copies[i];
        bool stale = cp->found ? aq_node_copy_cmp(cp->version, cp->digest, cp->kind, b->version,
                                                  b->digest, b->kind) < 0
                               : cp->err == AQ_ENOTFOUND;
        if (!cp->replica || !cp->asked || !stale)
            continue;
        cli_kop *k =
            cli_read_write_copy(c, (uint32_t)i, key, klen, b->kind, b->digest, b->version, v, vlen);
        if (!k)
            break;
        ks[n++] = k;
    }
    for (size_t j = 0; j < n; j++) {
        cli_kop_wait(ks[j]);
        cli_kop_free(ks[j]);
    }
    free(ks);
}
