/* The key commands put, get and rm, and what they share: key checks, newest-copy fetches, the
 * report of what a write reached, removal of a large value's parts. Values of any size: up to one
 * chunk (4 MiB) a value is stored as is under its key; a larger one as parts under internal keys
 * plus a manifest under its key (cli_manifest.c). The transfers themselves are cli_xfer.c's. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "aq_io.h"
#include "aq_xxh.h"

#include "aq_node_place.h"
#include "cli.h"
#include "cli_xfer.h"

int cli_check_key(cli *c, const char *key) {
    char why[128];
    if (cli_key_why(key, strlen(key), why, sizeof why))
        return cli_fail(c, CLI_USAGE, "%s", why);
    return 0;
}

int cli_need_live(cli *c) {
    if (cli_probe(c, 1500) == 0)
        return cli_fail_unreachable(c);
    return 0;
}

void cli_kop_clear(cli_kop *k) {
    memset(k, 0, offsetof(cli_kop, cand));
}

cli_kop *cli_kop_new(cli *c) {
    /* Room for a candidate per configured node only: every writer of cand stays below nnodes, and
     * a kop this small is served from the allocator's per-thread cache. */
    size_t n = c && c->conf && c->conf->nnodes < AQ_NODE_CONFIG_MAX_NODES
                   ? c->conf->nnodes
                   : AQ_NODE_CONFIG_MAX_NODES;
    cli_kop *k = malloc(offsetof(cli_kop, cand) + (n ? n : 1) * sizeof k->cand[0]);
    if (k) {
        cli_kop_clear(k);
        k->c = c;
    }
    return k;
}

void cli_kop_free(cli_kop *k) {
    if (k) {
        cli_kop_reset(k);
        free(k);
    }
}

/* Moves the outcome of a newest-copy read into k, as the callers of cli_fetch expect it. */
static int fetch_into(cli_kop *k, cli_read *r, int err, bool repair, const void *key, size_t klen) {
    if (!err && repair)
        cli_read_repair(r, key, klen);
    free(k->rep);
    k->rep = NULL;
    k->replen = 0;
    k->err = err;
    k->done = true;
    /* For cli_kop_fail's "asked N nodes". */
    k->pos = r->asked ? r->asked - 1 : 0;
    if (err) {
        snprintf(k->msg, sizeof k->msg, "%s", r->failure);
    } else {
        k->rep = r->data->rep;
        k->replen = r->data->replen;
        k->node = r->data->node;
        r->data->rep = NULL;
    }
    return err;
}

static int fetch(cli *c, cli_kop *k, const void *key, size_t klen, bool repair, uint8_t *kind,
                 aq_node_digest *d, uint64_t *version, const uint8_t **v, size_t *vlen) {
    cli_read r;
    int err = cli_read_newest(c, key, klen, true, &r);
    err = fetch_into(k, &r, err, repair, key, klen);
    cli_read_free(&r);
    if (err)
        return err;
    return aq_node_get_rep_decode_v(k->rep, k->replen, kind, d, version, v, vlen);
}

int cli_fetch_v(cli *c, cli_kop *k, const void *key, size_t klen, uint8_t *kind, aq_node_digest *d,
                uint64_t *version, const uint8_t **v, size_t *vlen) {
    return fetch(c, k, key, klen, false, kind, d, version, v, vlen);
}

int cli_fetch_repair(cli *c, cli_kop *k, const void *key, size_t klen, uint8_t *kind,
                     aq_node_digest *d, const uint8_t **v, size_t *vlen) {
    uint64_t version;
    return fetch(c, k, key, klen, true, kind, d, &version, v, vlen);
}

int cli_fetch(cli *c, cli_kop *k, const void *key, size_t klen, uint8_t *kind, aq_node_digest *d,
              const uint8_t **v, size_t *vlen) {
    uint64_t version;
    return fetch(c, k, key, klen, false, kind, d, &version, v, vlen);
}

/* The manifest under key, if the newest value stored there is a large one. */
static int current_manifest(cli *c, const char *key, cli_manifest *m, bool *have) {
    cli_prev pv;
    int err = cli_prev_read(c, key, &pv);
    *have = pv.have_manifest;
    if (*have) {
        *m = pv.m;
        pv.have_manifest = false;
    }
    cli_prev_free(&pv);
    return err;
}

/* Best effort: parts left behind are unreachable garbage, not wrong answers. */
void cli_rm_parts(cli *c, const char *key, const cli_manifest *m, uint32_t upto,
                  const char *whose) {
    size_t klen = strlen(key);
    cli_kop *slot[CLI_INFLIGHT * 4] = {0};
    size_t nslot = sizeof slot / sizeof slot[0];
    uint32_t next = 0, failed = 0;
    int busy = 0;
    for (;;) {
        for (size_t s = 0; s < nslot; s++) {
            if (slot[s] && slot[s]->done) {
                if (slot[s]->err && slot[s]->err != AQ_ENOTFOUND)
                    failed++;
                cli_kop_free(slot[s]);
                slot[s] = NULL;
                busy--;
            }
            if (!slot[s] && next < upto) {
                char pk[64];
                size_t pkl = cli_part_key(key, klen, m->put_id, next++, pk);
                cli_kop *k = cli_kop_new(c);
                if (!k || cli_kop_key(c, k, AQ_M_RM, pk, pkl, false) != 0 ||
                    cli_kop_start(k) != 0) {
                    failed++;
                    cli_kop_free(k);
                    continue;
                }
                slot[s] = k;
                busy++;
            }
        }
        if (busy == 0 && next >= upto)
            break;
        cli_step(c);
    }
    if (failed)
        cli_warn(c,
                 "warning: %u of %u parts of %s could not be removed (unreachable garbage now, "
                 "never read)",
                 failed, upto, whose);
}

/* ---- what a put or rm reached ---- */

int cli_wrep_add(cli *c, const cli_kop *k, const void *key, size_t klen) {
    aq_node_put_rep rep;
    if (aq_node_put_rep_decode(k->rep, k->replen, &rep) != 0)
        return AQ_EPROTO;
    size_t n = c->conf->nnodes;
    uint32_t order[n];
    aq_place_order(c->seeds, n, key, klen, order);
    size_t r = c->conf->replicas < n ? c->conf->replicas : n;
    for (size_t i = 0; i < r; i++) {
        bool held = false;
        for (uint8_t j = 0; j < rep.nholders; j++)
            held |= cli_our_index(c, k->node, rep.holders[j]) == order[i];
        if (!held)
            c->wrep_missing[order[i]] = true;
    }
    if (!c->wrep_any || rep.copies < c->wrep_copies)
        c->wrep_copies = rep.copies;
    if (rep.wanted > c->wrep_wanted)
        c->wrep_wanted = rep.wanted;
    c->wrep_any = true;
    return 0;
}

void cli_wrep_reset(cli *c) {
    c->wrep_any = false;
    c->wrep_copies = c->wrep_wanted = 0;
    if (c->wrep_missing)
        memset(c->wrep_missing, 0, c->conf->nnodes * sizeof *c->wrep_missing);
}

size_t cli_nodes_list(const cli *c, const bool *which, char *buf, size_t cap) {
    size_t off = 0, count = 0;
    buf[0] = 0;
    for (size_t i = 0; i < c->conf->nnodes; i++) {
        if (!which[i])
            continue;
        count++;
        if (off < cap)
            off += (size_t)snprintf(buf + off, cap - off, "%s%s (%s)", off ? ", " : "",
                                    c->conf->nodes[i].name, c->conf->nodes[i].address);
    }
    return count;
}

void cli_nodes_json(const cli *c, const bool *which, FILE *f) {
    const char *sep = "";
    fputc('[', f);
    for (size_t i = 0; i < c->conf->nnodes; i++) {
        if (!which[i])
            continue;
        fputs(sep, f);
        cli_json_str(f, c->conf->nodes[i].name, strlen(c->conf->nodes[i].name));
        sep = ", ";
    }
    fputc(']', f);
}

int cli_wrep_check(cli *c, const char *verb) {
    char missing[1024];
    size_t nmissing = cli_nodes_list(c, c->wrep_missing, missing, sizeof missing);
    unsigned need = c->min_copies ? c->min_copies : c->conf->min_copies;
    if (c->wrep_copies < need)
        return cli_fail(c, AQ_ELIMIT,
                        "only %u of %u copies %s, fewer than min_copies %u (missing: %s); the "
                        "copies that were %s stay so",
                        c->wrep_copies, c->wrep_wanted, verb, need, nmissing ? missing : "none",
                        verb);
    return CLI_OK;
}

int cli_wrep_finish(cli *c, const char *verb, const char *key) {
    char missing[1024];
    size_t nmissing = cli_nodes_list(c, c->wrep_missing, missing, sizeof missing);
    unsigned need = c->min_copies ? c->min_copies : c->conf->min_copies;
    if (c->json) {
        printf("{\"key\": ");
        cli_json_str(stdout, key, strlen(key));
        printf(", \"%s\": true, \"copies\": %u, \"wanted\": %u, \"min_copies\": %u, "
               "\"missing\": ",
               verb, c->wrep_copies, c->wrep_wanted, need);
        cli_nodes_json(c, c->wrep_missing, stdout);
        printf("}\n");
    } else {
        printf("%s %u of %u copies\n", verb, c->wrep_copies, c->wrep_wanted);
    }
    fflush(stdout);
    if (c->wrep_copies < need)
        return cli_wrep_check(c, verb);
    if (c->wrep_copies < c->wrep_wanted)
        fprintf(stderr, "aquifer: %s: warning: only %u of %u copies %s; missing: %s\n", c->what,
                c->wrep_copies, c->wrep_wanted, verb, nmissing ? missing : "none named");
    return CLI_OK;
}

/* Puts one chunk under key, with pv the value it replaces. A failed put (or one whose outcome is
 * unknown) is undone: the previous value is written back over whatever replicas took the new one
 * (cli_prev.c). *gone tells whether the new value is known to be on no replica (only then may the
 * parts a new manifest names be removed). Says why on failure; returns the exit code. */
uint64_t cli_random_u64(void) {
    uint64_t v = 0;
    while (getrandom(&v, sizeof v, 0) != sizeof v)
        ;
    return v;
}

int cli_cmd_put(cli *c, const char *key, const char *file) {
    int rc = cli_check_key(c, key);
    if (rc)
        return rc;
    bool std_in = strcmp(file, "-") == 0;
    int fd = 0;
    uint64_t hint = 0;
    if (!std_in) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return cli_fail(c, CLI_ERROR, "cannot open %s: %s", file, strerror(errno));
        struct stat sb;
        bool known = fstat(fd, &sb) == 0;
        if (known && S_ISREG(sb.st_mode))
            hint = (uint64_t)sb.st_size;
        if (known && S_ISDIR(sb.st_mode)) {
            close(fd);
            return cli_fail(c, CLI_USAGE, "%s is a folder (put -r %s PREFIX stores a folder)", file,
                            file);
        }
    }
    if ((rc = cli_need_live(c)) == 0)
        rc = cli_xfer_put_fd(c, key, fd, std_in ? "stdin" : file, hint);
    if (!rc)
        rc = cli_wrep_finish(c, "stored", key);
    if (!std_in)
        close(fd);
    return rc;
}

int cli_cmd_get(cli *c, const char *key) {
    int rc = cli_check_key(c, key);
    if (rc || (rc = cli_need_live(c)) != 0)
        return rc;
    return cli_xfer_get_path(c, key, c->out_path, c->fsync);
}

/* ---- rm ---- */

int cli_rm_run(cli *c, const char *key, cli_wrep_fn finish) {
    int rc = cli_check_key(c, key);
    if (rc || (rc = cli_need_live(c)) != 0)
        return rc;
    cli_manifest old;
    bool have_old = false;
    int err = current_manifest(c, key, &old, &have_old);
    if (err)
        return cli_fail(c, err, "cannot read the value's manifest: %s", aq_strerror(err));
    cli_kop *k = cli_kop_new(c);
    if (!k || cli_kop_key(c, k, AQ_M_RM, key, strlen(key), false) != 0) {
        cli_kop_free(k);
        if (have_old)
            cli_manifest_free(&old);
        return cli_fail(c, CLI_ERROR, "out of memory");
    }
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    rc = k->err ? cli_kop_fail(c, k) : 0;
    if (!rc && cli_wrep_add(c, k, key, strlen(key)) != 0)
        rc = cli_fail(c, CLI_ERROR, "%s sent a malformed RM reply", c->conf->nodes[k->node].name);
    cli_kop_free(k);
    if (!rc)
        rc = finish(c, "removed", key);
    /* The manifest is gone first, so no reader can follow it to parts that are being removed. */
    if (!rc && have_old)
        cli_rm_parts(c, key, &old, old.nparts, "the removed value");
    if (have_old)
        cli_manifest_free(&old);
    return rc;
}

int cli_cmd_rm(cli *c, const char *key) {
    return cli_rm_run(c, key, cli_wrep_finish);
}
