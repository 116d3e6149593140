/* put, get and rm: values of any size. Up to one chunk (4 MiB) a value is stored as is under its
 * key; a larger one as parts under internal keys plus a manifest under its key (cli_manifest.c).
 * Transfers stream: at most CLI_INFLIGHT chunks are in memory (each perhaps twice, ours and rpc's
 * copy), never the whole value. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "aq_io.h"
#include "aq_xxh.h"

#include "aq_node_place.h"
#include "cli.h"

#define CHUNK    AQ_NODE_CHUNK_MAX
#define HEAD_MAX AQ_PUT_HEAD_MAX

int cli_check_key(cli *c, const char *key) {
    size_t n = strlen(key);
    if (!aq_node_user_key_ok(key, n) || !cli_utf8_ok(key, n))
        return cli_fail(c, CLI_USAGE,
                        "a key is 1 to 255 bytes of UTF-8 without control characters");
    return 0;
}

int cli_need_live(cli *c) {
    if (cli_probe(c, 1500) == 0)
        return cli_fail_unreachable(c);
    return 0;
}

static aq_node_digest digest_of(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits(p, n);
    aq_node_digest d = {h.high64, h.low64};
    return d;
}

static aq_node_digest digest_final(XXH3_state_t *st) {
    XXH128_hash_t h = XXH3_128bits_digest(st);
    aq_node_digest d = {h.high64, h.low64};
    return d;
}

/* Reads until cap bytes or end of input. */

cli_kop *cli_kop_new(cli *c) {
    cli_kop *k = calloc(1, sizeof *k);
    if (k)
        k->c = c;
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
static void rm_parts(cli *c, const char *key, const cli_manifest *m, uint32_t upto,
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
        fprintf(stderr,
                "aquifer: %s: warning: %u of %u parts of %s could not be removed (unreachable "
                "garbage now, never read)\n",
                c->what, failed, upto, whose);
}

/* ---- put ---- */

typedef struct put_slot {
    cli_kop k;
    uint8_t *mem; /* HEAD_MAX + CHUNK bytes: head written just before the value */
    uint32_t idx;
    bool busy;
} put_slot;

/* Builds a PUT request in place: the value sits at mem + HEAD_MAX, the head goes right before. */
static void put_req_in_place(cli_kop *k, uint8_t *mem, uint8_t kind, const void *key, size_t klen,
                             size_t vlen, aq_node_digest d) {
    uint8_t head[HEAD_MAX];
    aq_wr w = {head, 0, sizeof head, true};
    aq_node_put_req_head(&w, 0, kind, key, klen, d);
    memcpy(mem + HEAD_MAX - w.len, head, w.len);
    k->req = mem + HEAD_MAX - w.len;
    k->reqlen = w.len + vlen;
    k->req_mem = mem;
    k->deadline_off = aq_node_put_req_deadline_off(klen);
}

/* ---- what a put or rm reached ---- */

int cli_wrep_add(cli *c, const cli_kop *k, const void *key, size_t klen) {
    aq_put_rep rep;
    if (aq_node_put_rep_decode(k->rep, k->replen, &rep) != 0)
        return AQ_EPROTO;
    size_t n = c->conf->nnodes;
    uint32_t order[n];
    aq_place_order(c->seeds, n, key, klen, order);
    size_t r = c->conf->replicas < n ? c->conf->replicas : n;
    for (size_t i = 0; i < r; i++) {
        bool held = false;
        for (uint8_t j = 0; j < rep.nholders; j++)
            held |= rep.holders[j] == order[i];
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

int cli_wrep_finish(cli *c, const char *verb, const char *key) {
    size_t n = c->conf->nnodes;
    char missing[1024] = "";
    size_t off = 0, nmissing = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c->wrep_missing[i])
            continue;
        nmissing++;
        if (off < sizeof missing)
            off +=
                (size_t)snprintf(missing + off, sizeof missing - off, "%s%s (%s)", off ? ", " : "",
                                 c->conf->nodes[i].name, c->conf->nodes[i].address);
    }
    unsigned need = c->min_copies ? c->min_copies : c->conf->min_copies;
    if (c->json) {
        printf("{\"key\": ");
        cli_json_str(stdout, key, strlen(key));
        printf(", \"%s\": true, \"copies\": %u, \"wanted\": %u, \"min_copies\": %u, "
               "\"missing\": [",
               verb, c->wrep_copies, c->wrep_wanted, need);
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            if (!c->wrep_missing[i])
                continue;
            printf("%s", first ? "" : ", ");
            cli_json_str(stdout, c->conf->nodes[i].name, strlen(c->conf->nodes[i].name));
            first = false;
        }
        printf("]}\n");
    } else {
        printf("%s %u of %u copies\n", verb, c->wrep_copies, c->wrep_wanted);
    }
    fflush(stdout);
    if (c->wrep_copies < need)
        return cli_fail(c, CLI_ERROR,
                        "only %u of %u copies %s, fewer than min_copies %u (missing: %s); the "
                        "copies that were %s stay so",
                        c->wrep_copies, c->wrep_wanted, verb, need, nmissing ? missing : "none",
                        verb);
    if (c->wrep_copies < c->wrep_wanted)
        fprintf(stderr, "aquifer: %s: warning: only %u of %u copies %s; missing: %s\n", c->what,
                c->wrep_copies, c->wrep_wanted, verb, nmissing ? missing : "none named");
    return CLI_OK;
}

/* Puts one chunk under key, with pv the value it replaces. A failed put (or one whose outcome is
 * unknown) is undone: the previous value is written back over whatever replicas took the new one
 * (cli_prev.c). *gone tells whether the new value is known to be on no replica (only then may the
 * parts a new manifest names be removed). Says why on failure; returns the exit code. */
static int put_one(cli *c, const char *key, uint8_t *mem, size_t len, uint8_t kind,
                   const cli_prev *pv, bool *gone) {
    *gone = false;
    cli_kop *k = cli_kop_new(c);
    if (!k) {
        free(mem);
        *gone = true;
        return cli_fail(c, CLI_ERROR, "out of memory");
    }
    size_t klen = strlen(key);
    aq_node_digest d = digest_of(mem + HEAD_MAX, len);
    put_req_in_place(k, mem, kind, key, klen, len, d);
    k->method = AQ_M_PUT;
    cli_candidates(c, key, klen, false, k);
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    int rc = 0;
    /* A reply that cannot be read leaves the outcome unknown: undone like a failure. */
    bool malformed = !k->err && cli_wrep_add(c, k, key, klen) != 0;
    if (k->err == AQ_EUNAVAIL && k->ncand == 0) {
        *gone = true; /* sent nowhere */
        rc = cli_kop_fail(c, k);
    } else if (k->err || malformed) {
        char note[400];
        *gone = cli_prev_restore(c, key, pv, kind, d, note, sizeof note);
        char bad[128];
        snprintf(bad, sizeof bad, "%s sent a malformed PUT reply", c->conf->nodes[k->node].name);
        const char *why = malformed                ? bad
                          : k->err == AQ_ENOTFOUND ? "not found"
                          : k->msg[0]              ? k->msg
                                                   : aq_strerror(k->err);
        rc = cli_fail(c, malformed ? CLI_ERROR : cli_exit_code(k->err), "%s; %s", why, note);
    }
    cli_kop_free(k);
    return rc;
}

uint64_t cli_random_u64(void) {
    uint64_t v = 0;
    while (getrandom(&v, sizeof v, 0) != sizeof v)
        ;
    return v;
}

typedef struct put_src {
    int fd;
    uint8_t *pre[2]; /* buffers read ahead while deciding small or large */
    size_t prelen[2];
    int npre, used;
} put_src;

/* The next chunk of input in a fresh HEAD_MAX + CHUNK buffer; *len 0 at the end. */
static int src_next(put_src *s, uint8_t **mem, size_t *len) {
    if (s->used < s->npre) {
        *mem = s->pre[s->used];
        *len = s->prelen[s->used];
        s->pre[s->used] = NULL;
        s->used++;
        return 0;
    }
    uint8_t *m = malloc(HEAD_MAX + CHUNK);
    if (!m)
        return AQ_ENOMEM;
    size_t got = 0;
    int rerr = aq_io_read_full(s->fd, m + HEAD_MAX, CHUNK, &got);
    ssize_t r = rerr ? rerr : (ssize_t)got;
    if (r < 0) {
        free(m);
        return (int)r;
    }
    *mem = m;
    *len = (size_t)r;
    return 0;
}

static int put_large(cli *c, const char *key, put_src *src, uint64_t size_hint) {
    size_t klen = strlen(key);
    cli_manifest m = {0};
    m.put_id = cli_random_u64();
    m.chunk_size = CHUNK;
    uint32_t cap = 0;
    XXH3_state_t *st = XXH3_createState();
    put_slot slots[CLI_INFLIGHT];
    memset(slots, 0, sizeof slots);
    if (!st)
        return cli_fail(c, CLI_ERROR, "out of memory");
    XXH3_128bits_reset(st);
    cli_progress pg;
    cli_progress_start(&pg, "put", size_hint);
    bool eof = false;
    int rc = 0;
    char why[512] = "";
    for (;;) {
        for (size_t s = 0; s < CLI_INFLIGHT && !eof && !rc; s++) {
            if (slots[s].busy)
                continue;
            uint8_t *mem = NULL;
            size_t len = 0;
            int err = src_next(src, &mem, &len);
            if (err) {
                rc = CLI_ERROR;
                snprintf(why, sizeof why, "cannot read the input: %s", aq_strerror(err));
                break;
            }
            if (len == 0) {
                free(mem);
                eof = true;
                break;
            }
            if (len < CHUNK)
                eof = true;
            if (m.nparts == cap) {
                cap = cap ? cap * 2 : 16;
                cli_part *np = realloc(m.parts, cap * sizeof *np);
                if (!np) {
                    free(mem);
                    rc = CLI_ERROR;
                    snprintf(why, sizeof why, "out of memory");
                    break;
                }
                m.parts = np;
            }
            const uint8_t *v = mem + HEAD_MAX;
            XXH3_128bits_update(st, v, len);
            aq_node_digest d = digest_of(v, len);
            m.parts[m.nparts] = (cli_part){(uint32_t)len, d};
            m.total += len;
            put_slot *ps = &slots[s];
            cli_kop_reset(&ps->k);
            memset(&ps->k, 0, sizeof ps->k);
            ps->k.c = c;
            ps->k.method = AQ_M_PUT;
            ps->idx = m.nparts++;
            char pk[64];
            size_t pkl = cli_part_key(key, klen, m.put_id, ps->idx, pk);
            put_req_in_place(&ps->k, mem, AQ_KIND_VALUE, pk, pkl, len, d);
            cli_candidates(c, pk, pkl, false, &ps->k);
            ps->busy = true;
            cli_kop_start(&ps->k);
        }
        bool any = false;
        for (size_t s = 0; s < CLI_INFLIGHT; s++) {
            put_slot *ps = &slots[s];
            if (!ps->busy || !ps->k.done)
                continue;
            ps->busy = false;
            if (ps->k.err && !rc) {
                rc = cli_exit_code(ps->k.err);
                snprintf(why, sizeof why, "part %u: %s", ps->idx, ps->k.msg);
            } else if (!ps->k.err) {
                cli_progress_add(&pg, m.parts[ps->idx].size);
                char pk[64];
                size_t pkl = cli_part_key(key, klen, m.put_id, ps->idx, pk);
                if (cli_wrep_add(c, &ps->k, pk, pkl) != 0 && !rc) {
                    rc = CLI_ERROR;
                    snprintf(why, sizeof why, "part %u: %s sent a malformed PUT reply", ps->idx,
                             c->conf->nodes[ps->k.node].name);
                }
            }
            cli_kop_reset(&ps->k);
            any = true;
        }
        bool busy = false;
        for (size_t s = 0; s < CLI_INFLIGHT; s++)
            busy |= slots[s].busy;
        if (!busy && (eof || rc))
            break;
        if (!any)
            cli_step(c);
    }
    cli_progress_end(&pg);
    m.digest = digest_final(st);
    XXH3_freeState(st);
    bool new_gone = true; /* the new manifest is on no replica: its parts may go */
    if (!rc) {
        cli_prev pv;
        /* Not knowing the old value only risks leaving its parts behind: carry on. */
        (void)cli_prev_read(c, key, &pv);
        bool have_old = pv.have_manifest;
        uint8_t *enc;
        size_t elen;
        int err = cli_manifest_encode(&m, &enc, &elen);
        if (err) {
            rc = CLI_ERROR;
            snprintf(why, sizeof why, "cannot build the manifest: %s", aq_strerror(err));
        } else {
            uint8_t *mem = malloc(HEAD_MAX + elen);
            if (!mem) {
                free(enc);
                rc = CLI_ERROR;
                snprintf(why, sizeof why, "out of memory");
            } else {
                memcpy(mem + HEAD_MAX, enc, elen);
                free(enc);
                rc = put_one(c, key, mem, elen, AQ_KIND_MANIFEST, &pv, &new_gone);
                if (rc)
                    why[0] = 0; /* put_one said why */
            }
        }
        /* The old parts go only once the new manifest won on the replicas. */
        if (!rc && have_old && pv.m.put_id != m.put_id && cli_prev_lost(c, key, &pv))
            rm_parts(c, key, &pv.m, pv.m.nparts, "the old value");
        cli_prev_free(&pv);
    }
    if (rc) {
        if (why[0])
            cli_fail(c, rc, "%s", why);
        /* While a replica may still hold the new manifest its parts stay, so the key never names
         * missing parts (unreachable garbage at worst). */
        if (new_gone)
            rm_parts(c, key, &m, m.nparts, "this failed put");
        else
            fprintf(stderr,
                    "aquifer: %s: warning: the %u parts of this failed put were kept, since a "
                    "replica may still name them\n",
                    c->what, m.nparts);
    }
    for (size_t s = 0; s < CLI_INFLIGHT; s++)
        cli_kop_reset(&slots[s].k);
    cli_manifest_free(&m);
    return rc;
}

int cli_cmd_put(cli *c, const char *key, const char *file) {
    int rc = cli_check_key(c, key);
    if (rc)
        return rc;
    int fd = 0;
    uint64_t hint = 0;
    if (strcmp(file, "-") != 0) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return cli_fail(c, CLI_ERROR, "cannot open %s: %s", file, strerror(errno));
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
            hint = (uint64_t)sb.st_size;
    }
    put_src src = {.fd = fd};
    if ((rc = cli_need_live(c)) != 0)
        goto out;
    for (int i = 0; i < 2; i++) {
        uint8_t *mem = malloc(HEAD_MAX + CHUNK);
        if (!mem) {
            rc = cli_fail(c, CLI_ERROR, "out of memory");
            goto out;
        }
        src.pre[src.npre] = mem;
        size_t got = 0;
        int rerr = aq_io_read_full(fd, mem + HEAD_MAX, CHUNK, &got);
        ssize_t r = rerr ? rerr : (ssize_t)got;
        if (r < 0) {
            rc = cli_fail(c, CLI_ERROR, "cannot read %s: %s", strcmp(file, "-") ? file : "stdin",
                          strerror((int)-r));
            goto out;
        }
        src.prelen[src.npre++] = (size_t)r;
        if ((size_t)r < CHUNK)
            break;
    }
    if (src.npre == 1 || src.prelen[1] == 0) {
        /* One chunk: the value itself under its key. */
        cli_prev pv;
        (void)cli_prev_read(c, key, &pv);
        uint8_t *mem = src.pre[0];
        src.pre[0] = NULL;
        bool gone;
        rc = put_one(c, key, mem, src.prelen[0], AQ_KIND_VALUE, &pv, &gone);
        if (!rc && pv.have_manifest && cli_prev_lost(c, key, &pv))
            rm_parts(c, key, &pv.m, pv.m.nparts, "the old value");
        cli_prev_free(&pv);
    } else {
        rc = put_large(c, key, &src, hint);
    }
    if (!rc)
        rc = cli_wrep_finish(c, "stored", key);
out:
    for (int i = 0; i < 2; i++)
        free(src.pre[i]);
    if (fd > 0)
        close(fd);
    return rc;
}

/* ---- get ---- */

static int get_large(cli *c, const char *key, const cli_manifest *m, cli_outfile *o) {
    size_t klen = strlen(key);
    cli_kop *slot[CLI_INFLIGHT] = {0};
    uint32_t started = 0, written = 0;
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return cli_fail(c, CLI_ERROR, "out of memory");
    XXH3_128bits_reset(st);
    cli_progress pg;
    cli_progress_start(&pg, "get", m->total);
    int rc = 0;
    while (written < m->nparts && !rc) {
        while (started < m->nparts && started - written < CLI_INFLIGHT) {
            char pk[64];
            size_t pkl = cli_part_key(key, klen, m->put_id, started, pk);
            cli_kop *k = cli_kop_new(c);
            if (!k || cli_kop_key(c, k, AQ_M_GET, pk, pkl, true) != 0) {
                cli_kop_free(k);
                rc = cli_fail(c, CLI_ERROR, "out of memory");
                break;
            }
            k->next_on_notfound = true;
            k->verify = true;
            k->have_want = true;
            k->want = m->parts[started].digest;
            cli_kop_start(k);
            slot[started % CLI_INFLIGHT] = k;
            started++;
        }
        if (rc)
            break;
        cli_kop *k = slot[written % CLI_INFLIGHT];
        if (!k->done) {
            cli_step(c);
            continue;
        }
        uint8_t kind;
        aq_node_digest d;
        const uint8_t *v;
        size_t vlen;
        if (k->err) {
            rc = k->err == AQ_ENOTFOUND
                     ? cli_fail(c, CLI_ERROR, "part %u of %u is missing on every live node",
                                written, m->nparts)
                     : cli_fail(c, cli_exit_code(k->err), "part %u: %s", written, k->msg);
        } else if (aq_node_get_rep_decode(k->rep, k->replen, &kind, &d, &v, &vlen) != 0 ||
                   vlen != m->parts[written].size) {
            rc = cli_fail(c, CLI_ERROR, "part %u from %s has the wrong size", written,
                          c->conf->nodes[k->node].name);
        } else {
            XXH3_128bits_update(st, v, vlen);
            int err = aq_io_write_all(o->fd, v, vlen);
            if (err)
                rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o->tmp ? c->out_path : "stdout",
                              strerror(-err));
            cli_progress_add(&pg, vlen);
        }
        cli_kop_free(k);
        slot[written % CLI_INFLIGHT] = NULL;
        written++;
    }
    /* Wait for calls still in flight after a failure: their callbacks use the slots. */
    for (size_t s = 0; s < CLI_INFLIGHT; s++) {
        if (slot[s]) {
            cli_kop_wait(slot[s]);
            cli_kop_free(slot[s]);
        }
    }
    cli_progress_end(&pg);
    aq_node_digest whole = digest_final(st);
    XXH3_freeState(st);
    if (!rc && (whole.hi != m->digest.hi || whole.lo != m->digest.lo))
        rc = cli_fail(c, CLI_ERROR, "the reassembled value does not match its digest");
    return rc;
}

int cli_cmd_get(cli *c, const char *key) {
    int rc = cli_check_key(c, key);
    if (rc || (rc = cli_need_live(c)) != 0)
        return rc;
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return cli_fail(c, CLI_ERROR, "out of memory");
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    uint64_t version;
    int err = fetch(c, k, key, strlen(key), true, &kind, &d, &version, &v, &vlen);
    if (err) {
        rc = k->err ? cli_kop_fail(c, k) : cli_fail(c, CLI_ERROR, "%s", aq_strerror(err));
        cli_kop_free(k);
        return rc;
    }
    cli_manifest m;
    if (kind == AQ_KIND_MANIFEST && (err = cli_manifest_decode(v, vlen, &m)) != 0) {
        cli_kop_free(k);
        return cli_fail(c, CLI_ERROR, "the manifest stored under the key is damaged: %s",
                        aq_strerror(err));
    }
    cli_outfile o;
    if ((rc = cli_outfile_open(c, c->out_path, &o)) != 0) {
        if (kind == AQ_KIND_MANIFEST)
            cli_manifest_free(&m);
        cli_kop_free(k);
        return rc;
    }
    if (kind == AQ_KIND_VALUE) {
        err = aq_io_write_all(o.fd, v, vlen);
        if (err)
            rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o.tmp ? c->out_path : "stdout",
                          strerror(-err));
    } else {
        rc = get_large(c, key, &m, &o);
        cli_manifest_free(&m);
    }
    cli_kop_free(k);
    int rc2 = cli_outfile_close(c, &o, rc == 0, false);
    return rc ? rc : rc2;
}

/* ---- rm ---- */

int cli_cmd_rm(cli *c, const char *key) {
    int rc = cli_check_key(c, key);
    if (rc || (rc = cli_need_live(c)) != 0)
        return rc;
    cli_manifest old;
    bool have_old = false;
    int err = current_manifest(c, key, &old, &have_old);
    if (err)
        return cli_fail(c, cli_exit_code(err), "cannot read the value's manifest: %s",
                        aq_strerror(err));
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
        rc = cli_wrep_finish(c, "removed", key);
    /* The manifest is gone first, so no reader can follow it to parts that are being removed. */
    if (!rc && have_old)
        rm_parts(c, key, &old, old.nparts, "the removed value");
    if (have_old)
        cli_manifest_free(&old);
    return rc;
}
