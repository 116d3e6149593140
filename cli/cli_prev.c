/* A key's previous value around an overwrite: read before a put, and put back when the put failed
 * or its outcome is unknown, so that a failed put changes nothing.
 *
 * A put that fails may still have been stored by some replicas (the coordinator stores before a
 * full replica refuses; a reply may be lost). Reads return the newest copy, so that partial write
 * would become the value. The undo finds which replicas hold the put's copy (by its digest) and
 * writes the previous value (or a removal, when there was none) over it on each of them, with the
 * version just above the highest version the put got: it wins over the failed write and loses to
 * any later one. Only when every replica answered, and every one that held the failed write took
 * the previous value back, is the failed write known to be gone; only then may a large value's new
 * parts be removed, so the key never names parts that no longer exist. After a put that succeeded,
 * a large previous value's parts go only once a read shows that value is no longer the newest.
 */
#include <stdlib.h>
#include <string.h>

#include "aq_xxh.h"
#include "cli.h"

int cli_prev_read(cli *c, const char *key, cli_prev *pv) {
    memset(pv, 0, sizeof *pv);
    size_t klen = strlen(key);
    cli_read r;
    int err = cli_read_newest(c, key, klen, false, &r);
    if (err == 0) {
        const cli_copy *b = &r.copies[r.best];
        pv->live = true;
        pv->kind = b->kind;
        pv->version = b->version;
        pv->digest = b->digest;
    }
    cli_read_free(&r);
    if (err == AQ_ENOTFOUND) {
        pv->known = true;
        return 0;
    }
    if (err)
        return err;
    pv->known = true;
    if (pv->kind != AQ_KIND_MANIFEST)
        return 0;
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return AQ_ENOMEM;
    uint8_t kind;
    aq_node_digest d;
    uint64_t version;
    const uint8_t *v;
    size_t vlen;
    err = cli_fetch_v(c, k, key, klen, &kind, &d, &version, &v, &vlen);
    if (!err && kind == AQ_KIND_MANIFEST) {
        err = cli_manifest_decode(v, vlen, &pv->m);
        pv->have_manifest = err == 0;
        pv->version = version;
        pv->digest = d;
    } else if (!err) {
        /* Overwritten by a small value between the two reads: that is the previous value. */
        pv->kind = kind;
        pv->version = version;
        pv->digest = d;
    }
    cli_kop_free(k);
    if (err == AQ_ENOTFOUND) {
        pv->live = false;
        return 0;
    }
    return err;
}

void cli_prev_free(cli_prev *pv) {
    if (pv->have_manifest)
        cli_manifest_free(&pv->m);
    pv->have_manifest = false;
}

bool cli_prev_lost(cli *c, const char *key, const cli_prev *pv) {
    cli_read r;
    int err = cli_read_newest(c, key, strlen(key), false, &r);
    bool lost = false;
    if (err == AQ_ENOTFOUND) {
        lost = true;
    } else if (err == 0) {
        const cli_copy *b = &r.copies[r.best];
        lost =
            b->kind != pv->kind || b->digest.hi != pv->digest.hi || b->digest.lo != pv->digest.lo;
    }
    cli_read_free(&r);
    return lost;
}

/* The previous value's bytes, verified: re-encoded for a manifest (the encoding is deterministic),
 * fetched from a node holding a copy with its digest for a small value. */
static int prev_bytes(cli *c, const char *key, const cli_prev *pv, const cli_read *r, cli_kop *k,
                      const uint8_t **v, size_t *vlen, uint8_t **own) {
    *own = NULL;
    if (pv->kind == AQ_KIND_MANIFEST) {
        if (!pv->have_manifest)
            return AQ_ENOTFOUND;
        int err = cli_manifest_encode(&pv->m, own, vlen);
        if (err)
            return err;
        XXH128_hash_t h = XXH3_128bits(*own, *vlen);
        aq_node_digest d = {h.high64, h.low64};
        if (d.hi != pv->digest.hi || d.lo != pv->digest.lo)
            return AQ_ECORRUPT;
        *v = *own;
        return 0;
    }
    cli_kop_reset(k);
    k->c = c;
    k->method = AQ_M_GET;
    aq_wr w;
    aq_wr_init(&w);
    aq_node_key_req_encode(&w, AQ_READ_TOMBSTONES, key, strlen(key));
    if (!w.ok) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    k->req = w.p;
    k->reqlen = w.len;
    k->ncand = 0;
    for (size_t i = 0; i < c->conf->nnodes; i++)
        /* Same bytes whatever the version (an earlier undo may have rewritten them newer). */
        if (r->copies[i].found && r->copies[i].kind == pv->kind &&
            r->copies[i].digest.hi == pv->digest.hi && r->copies[i].digest.lo == pv->digest.lo)
            k->cand[k->ncand++] = (uint32_t)i;
    if (k->ncand == 0)
        return AQ_ENOTFOUND;
    k->verify = true;
    k->have_want = true;
    k->want = pv->digest;
    k->next_on_notfound = true;
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    if (k->err)
        return k->err;
    uint8_t kind;
    aq_node_digest d;
    uint64_t version;
    return aq_node_get_rep_decode_v(k->rep, k->replen, &kind, &d, &version, v, vlen);
}

bool cli_prev_restore(cli *c, const char *key, const cli_prev *pv, uint8_t our_kind,
                      aq_node_digest ours, char *note, size_t cap) {
    size_t klen = strlen(key), nn = c->conf->nnodes;
    note[0] = 0;
    if (!pv->known) {
        /* Writing back what was never read could destroy it. */
        snprintf(note, cap,
                 "the previous value could not be read before the put, so it was not "
                 "restored");
        return false;
    }
    cli_read r;
    (void)cli_read_newest(c, key, klen, false, &r);
    if (!r.copies) {
        snprintf(note, cap, "out of memory while checking the replicas");
        cli_read_free(&r);
        return false;
    }
    bool unknown = false;
    uint64_t top = 0;
    size_t nheld = 0;
    cli_kop cands = {0};
    cli_candidates(c, key, klen, false, &cands);
    for (size_t i = 0; i < nn; i++) {
        const cli_copy *cp = &r.copies[i];
        if (cp->replica && cp->asked && cp->err && cp->err != AQ_ENOTFOUND)
            unknown = true;
        if (cp->found && cp->kind == our_kind && cp->digest.hi == ours.hi &&
            cp->digest.lo == ours.lo && !(pv->live && cp->version == pv->version)) {
            nheld++;
            top = cp->version > top ? cp->version : top;
        }
    }
    /* A replica that did not answer the probe may hold the failed write. */
    if (cands.ncand < (c->conf->replicas < nn ? c->conf->replicas : nn))
        unknown = true;
    if (nheld == 0) {
        cli_read_free(&r);
        if (unknown)
            snprintf(note, cap, "not every replica could be asked whether it kept the new value");
        else
            snprintf(note, cap, "no replica kept the new value: nothing changed");
        return !unknown;
    }
    cli_kop *k = cli_kop_new(c);
    const uint8_t *v = NULL;
    size_t vlen = 0;
    uint8_t *own = NULL;
    int err = !k ? AQ_ENOMEM : pv->live ? prev_bytes(c, key, pv, &r, k, &v, &vlen, &own) : 0;
    if (err) {
        snprintf(note, cap, "the previous value could not be read back to restore it: %s",
                 aq_strerror(err));
        cli_kop_free(k);
        free(own);
        cli_read_free(&r);
        return false;
    }
    cli_kop **ks = calloc(nn, sizeof *ks);
    size_t n = 0;
    for (size_t i = 0; ks && i < nn; i++) {
        const cli_copy *cp = &r.copies[i];
        if (!(cp->found && cp->kind == our_kind && cp->digest.hi == ours.hi &&
              cp->digest.lo == ours.lo && !(pv->live && cp->version == pv->version)))
            continue;
        cli_kop *wk =
            cli_read_write_copy(c, (uint32_t)i, key, klen, pv->live ? pv->kind : AQ_KIND_TOMBSTONE,
                                pv->digest, top + 1, v, vlen);
        if (!wk) {
            unknown = true;
            break;
        }
        ks[n++] = wk;
    }
    bool all = ks && !unknown;
    for (size_t j = 0; j < n; j++) {
        cli_kop_wait(ks[j]);
        /* Not found: an RM over a copy newer meanwhile; stale: a newer write won there. Either
         * way the failed write is gone from that node. */
        int e = ks[j]->err;
        if (e && e != AQ_ENOTFOUND && e != AQ_ESTALE) {
            all = false;
            if (!note[0])
                snprintf(note, cap, "the previous value could not be restored: %s", ks[j]->msg);
        }
        cli_kop_free(ks[j]);
    }
    if (!ks)
        snprintf(note, cap, "out of memory while restoring the previous value");
    free(ks);
    free(own);
    cli_kop_free(k);
    cli_read_free(&r);
    if (all)
        snprintf(note, cap, "the previous value was restored: nothing changed");
    else if (!note[0])
        snprintf(note, cap, "not every replica could be asked whether it kept the new value");
    return all;
}

int cli_prev_fail(cli *c, const cli_kop *k, bool malformed, const char *note) {
    char bad[128];
    snprintf(bad, sizeof bad, "%s sent a malformed PUT reply", c->conf->nodes[k->node].name);
    const char *why = malformed                ? bad
                      : k->err == AQ_ENOTFOUND ? "not found"
                      : k->msg[0]              ? k->msg
                                               : aq_strerror(k->err);
    return cli_fail(c, malformed ? CLI_ERROR : cli_exit_code(k->err), "%s; %s", why, note);
}
