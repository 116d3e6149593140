/* Frames: what `aquifer parse` made of a CSV file. The commands that read or remove a frame:
 * frames, summary (reduced where the chunks live), head, export, frame rm. The metadata they read
 * is node/frame/aq_frame_meta.h's. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "aq_io.h"
#include "aq_xxh.h"

#include "aq_csv_export.h"
#include "aq_csv_summary.h"
#include "cli.h"

#define RM_SLOTS   32
#define TOP_LEVELS 10

void cli_frame_print_repairs(const aq_frame_meta *m, bool json) {
    if (json) {
        printf(", \"repaired_rows\": %llu, \"repaired_lines\": [", (unsigned long long)m->repaired);
        for (uint32_t i = 0; i < m->nrepair; i++)
            printf(i ? ", %llu" : "%llu", (unsigned long long)m->repair_line[i]);
        if (m->unread_from)
            printf("], \"unread_lines\": [%llu, %llu]", (unsigned long long)m->unread_from,
                   (unsigned long long)m->unread_to);
        else
            fputs("], \"unread_lines\": null", stdout);
        return;
    }
    if (m->repaired) {
        printf("  repaired %llu row%s (padded, folded or a quote out of place), line%s",
               (unsigned long long)m->repaired, m->repaired == 1 ? "" : "s",
               m->repaired == 1 ? "" : "s");
        for (uint32_t i = 0; i < m->nrepair && i < 10; i++)
            printf("%s%llu", i ? ", " : " ", (unsigned long long)m->repair_line[i]);
        fputs(m->repaired > 10 && m->nrepair > 10 ? ", ...\n" : "\n", stdout);
    }
    if (m->unread_from)
        printf("  not read: lines %llu-%llu (below the table: another table or a footer)\n",
               (unsigned long long)m->unread_from, (unsigned long long)m->unread_to);
}

int cli_frame_check_name(cli *c, const char *name) {
    size_t n = strlen(name);
    if (!aq_frame_name_ok(name, n) || !cli_utf8_ok(name, n))
        return cli_fail(c, CLI_USAGE,
                        "a frame name is 1 to %d bytes of UTF-8 without control characters or '/'",
                        AQ_FRAME_NAME_MAX);
    return 0;
}

/* ---- calls ---- */

void cli_kops_run(cli *c, cli_kop **k, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (k[i])
            cli_kop_start(k[i]);
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all = all && (!k[i] || k[i]->done);
        if (all)
            return;
        cli_step(c);
    }
}

int cli_put_internal(cli *c, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                     char *why, size_t cap) {
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return AQ_ENOMEM;
    XXH128_hash_t h = XXH3_128bits(v, vlen);
    aq_node_digest d = {h.high64, h.low64};
    aq_wr w;
    /* sized exactly: a doubled buffer of several MiB would come from fresh pages every time */
    aq_wr_init_cap(&w, AQ_PUT_HEAD_MAX + vlen);
    aq_node_put_req_head(&w, 0, AQ_KIND_VALUE, key, klen, d);
    aq_wr_bytes(&w, v, vlen);
    if (!w.ok) {
        aq_wr_free(&w);
        cli_kop_free(k);
        return AQ_ENOMEM;
    }
    k->method = AQ_M_PUT;
    k->req = w.p;
    k->reqlen = w.len;
    cli_candidates(c, key, klen, false, k);
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    int err = k->err;
    if (err)
        snprintf(why, cap, "%s", k->msg[0] ? k->msg : aq_strerror(err));
    cli_kop_free(k);
    return err;
}

/* Keys found on the live nodes, each with the node it was found on (a key held by two nodes is
 * listed twice). */
typedef struct keyent {
    uint32_t node;
    uint64_t size; /* the stored value's size, as LIST reports it */
    uint8_t len;
    uint8_t k[AQ_NODE_KEY_MAX];
} keyent;

typedef struct keylist {
    keyent *e;
    size_t n, cap;
} keylist;

static int keylist_add(keylist *l, uint32_t node, const uint8_t *k, size_t klen, uint64_t size) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        keyent *ne = realloc(l->e, cap * sizeof *ne);
        if (!ne)
            return AQ_ENOMEM;
        l->e = ne;
        l->cap = cap;
    }
    keyent *e = &l->e[l->n++];
    e->node = node;
    e->size = size;
    e->len = (uint8_t)klen;
    memcpy(e->k, k, klen);
    return 0;
}

static int keyent_cmp(const void *x, const void *y) {
    const keyent *a = x, *b = y;
    int c = memcmp(a->k, b->k, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void keylist_free(keylist *l) {
    free(l->e);
    memset(l, 0, sizeof *l);
}

static int list_prefix(cli *c, const uint8_t *prefix, size_t plen, keylist *out, char *why,
                       size_t cap) {
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return AQ_ENOMEM;
    /* A node that fails is reported, but the others are still listed: a cleanup must reach every
     * key it can. */
    int first = 0;
    for (size_t i = 0; i < c->conf->nnodes && first != AQ_ENOMEM; i++) {
        if (!c->live[i])
            continue;
        int err = 0;
        uint8_t after[AQ_NODE_KEY_MAX];
        size_t alen = 0;
        for (;;) {
            aq_wr w;
            aq_wr_init(&w);
            aq_node_list_req q = {AQ_LIST_INTERNAL, prefix, plen, after, alen, 1000};
            aq_node_list_req_encode(&w, &q);
            if (!w.ok) {
                aq_wr_free(&w);
                err = AQ_ENOMEM;
                break;
            }
            cli_kop_reset(k);
            k->method = AQ_M_LIST;
            k->req = w.p;
            k->reqlen = w.len;
            k->cand[0] = (uint32_t)i;
            k->ncand = 1;
            if (cli_kop_start(k) == 0)
                cli_kop_wait(k);
            if ((err = k->err) != 0) {
                if (!first)
                    snprintf(why, cap, "%s", k->msg);
                break;
            }
            aq_rd r;
            bool more;
            uint32_t count;
            aq_node_list_entry le = {0};
            if ((err = aq_node_list_rep_begin(&r, k->rep, k->replen, &more, &count)) != 0)
                break;
            for (uint32_t j = 0; j < count && !err; j++)
                if ((err = aq_node_list_rep_next(&r, &le)) == 0)
                    err = le.klen <= AQ_NODE_KEY_MAX
                              ? keylist_add(out, (uint32_t)i, le.key, le.klen, le.size)
                              : AQ_EPROTO;
            if (err || !more || count == 0)
                break;
            memcpy(after, le.key, le.klen);
            alen = le.klen;
        }
        if (err == AQ_EPROTO && !first)
            snprintf(why, cap, "%s sent a malformed LIST reply", c->conf->nodes[i].name);
        if (err && !first)
            first = err;
    }
    cli_kop_free(k);
    return first;
}

/* Removes each listed copy on the node it was found on (replica-only RM): a copy that repair put
 * on a node outside the key's replicas goes too, which an RM through the coordinator would miss. */
static size_t rm_list(cli *c, const keylist *l) {
    cli_kop *slot[RM_SLOTS] = {0};
    size_t next = 0, failed = 0;
    for (;;) {
        size_t busy = 0;
        for (size_t s = 0; s < RM_SLOTS; s++) {
            if (slot[s] && slot[s]->done) {
                if (slot[s]->err && slot[s]->err != AQ_ENOTFOUND)
                    failed++;
                cli_kop_free(slot[s]);
                slot[s] = NULL;
            }
            if (!slot[s] && next < l->n) {
                const keyent *e = &l->e[next++];
                cli_kop *k = cli_kop_new(c);
                aq_wr w;
                aq_wr_init(&w);
                aq_node_key_req_encode(&w, AQ_PUT_REPLICA, e->k, e->len);
                if (!k || !w.ok) {
                    aq_wr_free(&w);
                    cli_kop_free(k);
                    failed++;
                    continue;
                }
                k->method = AQ_M_RM;
                k->req = w.p;
                k->reqlen = w.len;
                k->cand[0] = e->node;
                k->ncand = 1;
                if (cli_kop_start(k) != 0) {
                    failed++;
                    cli_kop_free(k);
                    continue;
                }
                slot[s] = k;
            }
            busy += slot[s] != NULL;
        }
        if (busy == 0 && next >= l->n)
            return failed;
        cli_step(c);
    }
}

cli_kop *cli_frame_kop(cli *c, uint16_t method, const aq_frame_req *q, size_t i,
                       uint64_t timeout_ms) {
    aq_wr w;
    aq_wr_init(&w);
    aq_frame_req_encode(&w, q);
    cli_kop *k = w.ok ? cli_kop_new(c) : NULL;
    if (!k) {
        aq_wr_free(&w);
        return NULL;
    }
    k->method = method;
    k->req = w.p;
    k->reqlen = w.len;
    k->cand[0] = (uint32_t)i;
    k->ncand = 1;
    k->timeout_ms = timeout_ms;
    return k;
}

size_t cli_frame_rm_keys(cli *c, const char *name, bool meta, size_t *found) {
    size_t nlen = strlen(name);
    uint8_t prefix[AQ_NODE_KEY_MAX];
    prefix[0] = 0x1f;
    prefix[1] = 'F';
    memcpy(prefix + 2, name, nlen);
    prefix[2 + nlen] = '/';
    keylist l = {0};
    char why[400];
    size_t failed = 0;
    /* Liveness again: a node may have died during the work this cleans up after. */
    cli_probe(c, 1500);
    if (list_prefix(c, prefix, nlen + 3, &l, why, sizeof why) != 0)
        failed++;
    if (found)
        *found = l.n;
    failed += rm_list(c, &l);
    keylist_free(&l);
    if (meta) {
        /* The metadata last, wherever a copy is: listed by its key as prefix, kept when exact. */
        keylist m = {0};
        uint8_t mk[AQ_NODE_KEY_MAX];
        size_t mlen = aq_frame_meta_key(mk, name, nlen);
        if (list_prefix(c, mk, mlen, &m, why, sizeof why) != 0)
            failed++;
        size_t keep = 0;
        for (size_t i = 0; i < m.n; i++)
            if (m.e[i].len == mlen)
                m.e[keep++] = m.e[i];
        m.n = keep;
        failed += rm_list(c, &m);
        keylist_free(&m);
    }
    /* And once through a coordinator, which gives every replica of the metadata key a removal newer
     * than any copy still on its way (a forward of the killed command's last put): that copy can
     * then never make the frame appear again. */
    uint8_t mk[AQ_NODE_KEY_MAX];
    size_t mlen = aq_frame_meta_key(mk, name, nlen);
    cli_kop *k = cli_kop_new(c);
    if (k && cli_kop_key(c, k, AQ_M_RM, mk, mlen, false) == 0 && cli_kop_start(k) == 0)
        cli_kop_wait(k);
    if (!k || (k->err && k->err != AQ_ENOTFOUND))
        failed++;
    cli_kop_free(k);
    return failed;
}

int cli_frame_meta_get(cli *c, const char *name, aq_frame_meta *m) {
    int rc = cli_frame_check_name(c, name);
    if (rc)
        return rc;
    if ((rc = cli_need_live(c)) != 0)
        return rc;
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen = aq_frame_meta_key(key, name, strlen(name));
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    int err = cli_fetch(c, k, key, klen, &kind, &d, &v, &vlen);
    if (err == AQ_ENOTFOUND)
        rc = cli_fail(c, CLI_NOTFOUND, "no frame named %s (see `aquifer frames`)", name);
    else if (err)
        rc = cli_kop_fail(c, k);
    else if (aq_frame_meta_decode(v, vlen, m) != 0)
        rc = cli_fail(c, CLI_ERROR, "the metadata of frame %s is malformed", name);
    cli_kop_free(k);
    return rc;
}

/* ---- frames ---- */

/* A frame's size in the cluster, from LIST of its keys (sizes as stored, nothing downloaded). */
typedef struct frame_size {
    uint64_t copies, keys;              /* column chunk copies found, distinct column chunk keys */
    uint64_t held, one;                 /* bytes of every copy; of one copy of each key */
    uint64_t by_type[AQ_CSV_T_STR + 1]; /* one copy, by the column's final type */
} frame_size;

/* Column j of a column chunk key "\x1fF" NAME "/" i "\x1e" "c" j; -1 for any other key. */
static int64_t chunk_col(const keyent *e, size_t plen) {
    size_t i = e->len;
    while (i > plen && e->k[i - 1] >= '0' && e->k[i - 1] <= '9')
        i--;
    if (i == e->len || e->len - i > 9 || i < plen + 2 || e->k[i - 1] != 'c' || e->k[i - 2] != 0x1e)
        return -1;
    int64_t j = 0;
    for (; i < e->len; i++)
        j = j * 10 + (e->k[i] - '0');
    return j;
}

static int frame_size_of(cli *c, const char *name, const aq_frame_meta *m, frame_size *fs,
                         char *why, size_t cap) {
    memset(fs, 0, sizeof *fs);
    size_t nlen = strlen(name);
    uint8_t prefix[AQ_NODE_KEY_MAX];
    prefix[0] = 0x1f;
    prefix[1] = 'F';
    memcpy(prefix + 2, name, nlen);
    prefix[2 + nlen] = '/';
    keylist l = {0};
    int err = list_prefix(c, prefix, nlen + 3, &l, why, cap);
    if (!err && l.n)
        qsort(l.e, l.n, sizeof *l.e, keyent_cmp);
    for (size_t i = 0; !err && i < l.n; i++) {
        const keyent *e = &l.e[i];
        int64_t j = chunk_col(e, nlen + 3);
        if (j < 0 || j >= m->ncols)
            continue; /* a raw piece of a parse under way, or a key of no column */
        fs->copies++;
        fs->held += e->size;
        if (i > 0 && keyent_cmp(e, &l.e[i - 1]) == 0)
            continue;
        fs->keys++;
        fs->one += e->size;
        fs->by_type[m->types[j]] += e->size;
    }
    keylist_free(&l);
    return err;
}

int cli_frames_collect(cli *c, aq_frame_meta **out, size_t *n) {
    *out = NULL;
    *n = 0;
    int rc = cli_need_live(c);
    if (rc)
        return rc;
    keylist l = {0};
    char why[400] = "";
    const uint8_t prefix[2] = {0x1f, 'M'};
    int err = list_prefix(c, prefix, 2, &l, why, sizeof why);
    if (err) {
        keylist_free(&l);
        return cli_fail(c, err, "%s", why[0] ? why : aq_strerror(err));
    }
    /* Sorted by name, as ls sorts keys; one entry per frame however many copies were listed. */
    if (l.n)
        qsort(l.e, l.n, sizeof *l.e, keyent_cmp);
    aq_frame_meta *v = calloc(l.n ? l.n : 1, sizeof *v);
    if (!v) {
        keylist_free(&l);
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    size_t nv = 0;
    for (size_t i = 0; i < l.n; i++) {
        const keyent *e = &l.e[i];
        if (i > 0 && keyent_cmp(e, &l.e[i - 1]) == 0)
            continue;
        if (!aq_frame_name_ok((const char *)e->k + 2, e->len - 2u))
            continue;
        cli_kop *k = cli_kop_new(c);
        uint8_t kind;
        aq_node_digest d;
        const uint8_t *val;
        size_t vlen;
        bool ok = k && cli_fetch(c, k, e->k, e->len, &kind, &d, &val, &vlen) == 0 &&
                  aq_frame_meta_decode(val, vlen, &v[nv]) == 0;
        cli_kop_free(k);
        if (ok)
            nv++; /* else removed meanwhile */
    }
    keylist_free(&l);
    *out = v;
    *n = nv;
    return 0;
}

void cli_frames_free(aq_frame_meta *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        aq_frame_meta_free(&v[i]);
    free(v);
}

int cli_cmd_frames(cli *c) {
    aq_frame_meta *all;
    size_t nall;
    int rc = cli_frames_collect(c, &all, &nall);
    if (rc)
        return rc;
    if (c->json)
        fputc('[', stdout);
    size_t shown = 0;
    for (size_t i = 0; i < nall; i++) {
        const aq_frame_meta m = all[i];
        const char *name = m.name;
        frame_size fs;
        char serr[400] = "";
        int sizerr = frame_size_of(c, name, &m, &fs, serr, sizeof serr);
        if (sizerr && !serr[0])
            snprintf(serr, sizeof serr, "%s", aq_strerror(sizerr));
        uint64_t values = m.total_rows * m.ncols;
        if (c->json) {
            fputs(shown ? ",\n {\"name\": " : "\n {\"name\": ", stdout);
            cli_json_str(stdout, name, strlen(name));
            printf(", \"rows\": %llu, \"columns\": %u, \"chunks\": %u, \"source\": ",
                   (unsigned long long)m.total_rows, m.ncols, m.nchunks);
            cli_json_str(stdout, m.source, strlen(m.source));
            printf(", \"source_size\": %llu", (unsigned long long)m.source_size);
            if (sizerr) {
                fputs(", \"size_error\": ", stdout);
                cli_json_str(stdout, serr, strlen(serr));
            } else {
                printf(", \"bytes_held\": %llu, \"bytes_one_copy\": %llu, \"chunk_copies\": %llu, "
                       "\"chunk_keys\": %llu, \"bytes_per_value\": %.6f, \"bytes_by_type\": {",
                       (unsigned long long)fs.held, (unsigned long long)fs.one,
                       (unsigned long long)fs.copies, (unsigned long long)fs.keys,
                       values ? (double)fs.one / (double)values : 0.0);
                bool first = true;
                for (int t = 0; t <= AQ_CSV_T_STR; t++) {
                    bool has = false;
                    for (uint32_t j = 0; j < m.ncols && !has; j++)
                        has = m.types[j] == t;
                    if (!has)
                        continue;
                    printf("%s\"%s\": %llu", first ? "" : ", ", aq_csv_type_name((aq_csv_type)t),
                           (unsigned long long)fs.by_type[t]);
                    first = false;
                }
                fputc('}', stdout);
            }
            cli_frame_print_repairs(&m, true);
            fputc('}', stdout);
        } else {
            char held[32] = "size unknown";
            if (!sizerr) {
                cli_human_size(fs.held, held, sizeof held - 5);
                strcat(held, " held");
            }
            printf("%s\t%llu rows\t%u columns\t%s\t%s", name, (unsigned long long)m.total_rows,
                   m.ncols, held, m.source);
            if (m.repaired)
                printf("\t%llu repaired", (unsigned long long)m.repaired);
            if (m.unread_from)
                printf("\tlines %llu-%llu not read", (unsigned long long)m.unread_from,
                       (unsigned long long)m.unread_to);
            fputc('\n', stdout);
        }
        shown++;
    }
    if (c->json)
        fputs(shown ? "\n]\n" : "]\n", stdout);
    cli_frames_free(all, nall);
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(c, CLI_ERROR, "writing the output failed");
}

/* ---- frame rm ---- */

int cli_cmd_frame_rm(cli *c, const char *name) {
    int rc = cli_frame_check_name(c, name);
    if (rc || (rc = cli_need_live(c)) != 0)
        return rc;
    uint8_t mk[AQ_NODE_KEY_MAX];
    size_t mlen = aq_frame_meta_key(mk, name, strlen(name));
    cli_kop *k = cli_kop_new(c);
    if (!k || cli_kop_key(c, k, AQ_M_STAT, mk, mlen, true) != 0) {
        cli_kop_free(k);
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    k->next_on_notfound = true;
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    int err = k->err;
    if (err && err != AQ_ENOTFOUND) {
        rc = cli_kop_fail(c, k);
        cli_kop_free(k);
        return rc;
    }
    cli_kop_free(k);
    /* Without metadata there may still be keys of a parse that never finished (its command was
     * killed): they go too. */
    size_t found = 0;
    size_t failed = cli_frame_rm_keys(c, name, true, &found);
    if (failed)
        return cli_fail(c, CLI_ERROR, "%zu keys of the frame could not be removed", failed);
    if (err == AQ_ENOTFOUND && found == 0)
        return cli_fail(c, CLI_NOTFOUND, "no frame named %s (see `aquifer frames`)", name);
    if (err == AQ_ENOTFOUND)
        cli_warn(c, "removed %zu chunk copies of an unfinished parse", found);
    return CLI_OK;
}

/* ---- summary ---- */

/* A figure of a numeric column: null when there is none (no values; sd below two); JSON has no
 * infinities or NaN, so those are the strings "Infinity", "-Infinity" and "NaN". */
static void json_num(bool have, double v) {
    if (!have)
        fputs("null", stdout);
    else if (isnan(v))
        fputs("\"NaN\"", stdout);
    else if (isinf(v))
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", stdout);
    else
        printf("%.17g", v);
}

static void print_value(aq_csv_type t, bool have, double v) {
    char buf[48];
    if (!have)
        snprintf(buf, sizeof buf, "-");
    else if (isnan(v))
        snprintf(buf, sizeof buf, "NaN");
    else if (isinf(v))
        snprintf(buf, sizeof buf, "%s", v > 0 ? "inf" : "-inf");
    else if (t == AQ_CSV_T_TIME)
        aq_csv_format_time((int64_t)v, buf);
    else
        snprintf(buf, sizeof buf, "%.6g", v);
    printf("  %14s", buf);
}

/* The max most frequent levels (ties: the earlier level), most frequent first. */
static uint32_t top_levels(const aq_csv_sum *x, uint32_t *pick, uint32_t max) {
    uint32_t np = 0;
    for (; np < max && np < x->nlev; np++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t l = 0; l < x->nlev; l++) {
            bool taken = false;
            for (uint32_t q = 0; q < np && !taken; q++)
                taken = pick[q] == l;
            if (!taken && (best == UINT32_MAX || x->count[l] > x->count[best]))
                best = l;
        }
        pick[np] = best;
    }
    return np;
}

static void print_summary(cli *c, const aq_frame_meta *m, const aq_csv_sum *s) {
    if (c->json) {
        fputs("{\"name\": ", stdout);
        cli_json_str(stdout, m->name, strlen(m->name));
        printf(", \"rows\": %llu", (unsigned long long)m->total_rows);
        cli_frame_print_repairs(m, true);
        fputs(", \"columns\": [", stdout);
        for (uint32_t j = 0; j < m->ncols; j++) {
            const aq_csv_sum *x = &s[j];
            aq_csv_type t = (aq_csv_type)m->types[j];
            fputs(j ? ",\n  {\"name\": " : "\n  {\"name\": ", stdout);
            cli_json_str(stdout, m->cols[j], strlen(m->cols[j]));
            printf(", \"type\": \"%s\", \"na\": %llu", aq_csv_type_name(t),
                   (unsigned long long)x->na);
            if (t == AQ_CSV_T_INT || t == AQ_CSV_T_FLOAT || t == AQ_CSV_T_TIME) {
                fputs(", \"min\": ", stdout);
                json_num(x->n, x->min);
                fputs(", \"max\": ", stdout);
                json_num(x->n, x->max);
                fputs(", \"mean\": ", stdout);
                json_num(x->n, x->mean);
                fputs(", \"sd\": ", stdout);
                json_num(x->n >= 2, aq_csv_sum_sd(x));
            } else if (t == AQ_CSV_T_CAT) {
                printf(", \"cardinality\": %u, \"top\": [", x->nlev);
                uint32_t pick[TOP_LEVELS];
                uint32_t np = top_levels(x, pick, TOP_LEVELS);
                for (uint32_t q = 0; q < np; q++) {
                    fputs(q ? ", {\"level\": " : "{\"level\": ", stdout);
                    cli_json_str(stdout, x->lev[pick[q]], x->lev_len[pick[q]]);
                    printf(", \"count\": %llu}", (unsigned long long)x->count[pick[q]]);
                }
                fputc(']', stdout);
            }
            fputc('}', stdout);
        }
        fputs("\n]}\n", stdout);
        return;
    }
    printf("%s: %llu rows, %u columns\n", m->name, (unsigned long long)m->total_rows, m->ncols);
    cli_frame_print_repairs(m, false);
    printf("%-20s %-12s %10s  %14s  %14s  %14s  %14s\n", "column", "type", "NA", "min", "max",
           "mean", "sd");
    for (uint32_t j = 0; j < m->ncols; j++) {
        const aq_csv_sum *x = &s[j];
        aq_csv_type t = (aq_csv_type)m->types[j];
        printf("%-20.40s %-12s %10llu", m->cols[j], aq_csv_type_name(t), (unsigned long long)x->na);
        if (t == AQ_CSV_T_INT || t == AQ_CSV_T_FLOAT || t == AQ_CSV_T_TIME) {
            print_value(t, x->n, x->min);
            print_value(t, x->n, x->max);
            print_value(t == AQ_CSV_T_TIME ? AQ_CSV_T_FLOAT : t, x->n, x->mean);
            print_value(AQ_CSV_T_FLOAT, x->n >= 2, aq_csv_sum_sd(x));
        } else if (t == AQ_CSV_T_CAT) {
            printf("  %u levels:", x->nlev);
            uint32_t pick[3];
            uint32_t np = top_levels(x, pick, 3);
            for (uint32_t q = 0; q < np; q++)
                printf(" %.*s (%llu)", (int)(x->lev_len[pick[q]] > 30 ? 30 : x->lev_len[pick[q]]),
                       x->lev[pick[q]], (unsigned long long)x->count[pick[q]]);
        }
        fputc('\n', stdout);
    }
}

/* Where a chunk's summary is asked: its live replicas in rendezvous order, then the other live
 * nodes (repair may have moved a copy there); the next one when a node is unreachable or lacks it.
 */
typedef struct sum_chunk {
    uint32_t cand[AQ_NODE_CONFIG_MAX_NODES];
    size_t ncand, pos;
    bool done;
} sum_chunk;

/* One round: each pending chunk goes to its current candidate; one call per node. */
static int summary_round(cli *c, const aq_frame_meta *m, sum_chunk *ch, aq_csv_sum *acc,
                         bool *pending, char *why, size_t cap) {
    size_t nn = c->conf->nnodes;
    uint8_t *recs = malloc((size_t)m->nchunks * AQ_FRAME_PIECE_REC + 1);
    cli_kop **ks = calloc(nn, sizeof *ks);
    int err = recs && ks ? 0 : AQ_ENOMEM;
    *pending = false;
    for (size_t i = 0; i < nn && !err; i++) {
        uint32_t n = 0;
        for (uint32_t p = 0; p < m->nchunks; p++) {
            if (ch[p].done || ch[p].cand[ch[p].pos] != i)
                continue;
            aq_wr w = {recs + (size_t)n * AQ_FRAME_PIECE_REC, 0, AQ_FRAME_PIECE_REC, true};
            aq_wr_u32(&w, p);
            aq_wr_u64(&w, 0);
            n++;
        }
        if (n == 0)
            continue;
        aq_frame_req q = {
            (const uint8_t *)m->name, strlen(m->name), NULL, 0, m->ncols, NULL, NULL, 0, n, recs};
        /* The timeout is hard: it also bounds the wait for a dead node. */
        if (!(ks[i] = cli_frame_kop(c, AQ_M_FRAME_SUMMARY, &q, i, 30000 + (uint64_t)n * 1000))) {
            err = AQ_ENOMEM;
            break;
        }
    }
    free(recs);
    if (!err)
        cli_kops_run(c, ks, nn);
    for (size_t i = 0; !err && i < nn; i++) {
        if (!ks[i])
            continue;
        aq_frame_rep r;
        bool retry = false;
        if (ks[i]->err) {
            retry = true;
            snprintf(why, cap, "%s", ks[i]->msg);
        } else if (aq_frame_rep_decode(ks[i]->rep, ks[i]->replen, &r) != 0 ||
                   (r.status == 0 && r.nblobs != m->ncols)) {
            err = AQ_EPROTO;
            snprintf(why, cap, "%s sent a malformed summary", c->conf->nodes[i].name);
        } else if (r.status) {
            snprintf(why, cap, "%s: %.*s", c->conf->nodes[i].name, (int)r.mlen, r.msg);
            if (r.status == AQ_ENOTFOUND || r.status == AQ_ECLOSED)
                retry = true;
            else
                err = r.status;
        } else {
            aq_rd rd = aq_rd_init(r.blobs, r.blen);
            for (uint32_t j = 0; !err && j < m->ncols; j++) {
                const uint8_t *b;
                size_t bl;
                aq_csv_sum s;
                memset(&s, 0, sizeof s);
                if (aq_frame_blob_next(&rd, &b, &bl) != 0 || aq_csv_sum_decode(b, bl, &s) != 0) {
                    err = AQ_EPROTO;
                    snprintf(why, cap, "%s sent a malformed summary", c->conf->nodes[i].name);
                    break;
                }
                err = aq_csv_sum_merge(&acc[j], &s);
                aq_csv_sum_free(&s);
                if (err)
                    snprintf(why, cap, "column %s: partial summaries disagree", m->cols[j]);
            }
            for (uint32_t p = 0; p < m->nchunks; p++)
                if (!ch[p].done && ch[p].cand[ch[p].pos] == i)
                    ch[p].done = true;
        }
        for (uint32_t p = 0; retry && !err && p < m->nchunks; p++) {
            if (ch[p].done || ch[p].cand[ch[p].pos] != i)
                continue;
            if (++ch[p].pos >= ch[p].ncand) {
                err = ks[i]->err ? ks[i]->err : AQ_ENOTFOUND;
                size_t l = strlen(why);
                snprintf(why + l, cap - l, " (chunk %u: no other live node has it)", p);
            } else {
                *pending = true;
            }
        }
    }
    for (size_t i = 0; ks && i < nn; i++)
        cli_kop_free(ks[i]);
    free(ks);
    return err;
}

int cli_cmd_summary(cli *c, const char *name) {
    aq_frame_meta m;
    memset(&m, 0, sizeof m);
    int rc = cli_frame_meta_get(c, name, &m);
    if (rc)
        return rc;
    sum_chunk *ch = calloc(m.nchunks + 1, sizeof *ch);
    aq_csv_sum *acc = calloc(m.ncols, sizeof *acc);
    char why[600] = "";
    int err = ch && acc ? 0 : AQ_ENOMEM;
    for (uint32_t i = 0; !err && i < m.nchunks; i++) {
        uint8_t key[AQ_NODE_KEY_MAX];
        size_t klen = aq_frame_key(key, m.name, strlen(m.name), i, 0);
        cli_kop k;
        memset(&k, 0, sizeof k);
        cli_candidates(c, key, klen, true, &k);
        if (k.ncand == 0) {
            err = AQ_EUNAVAIL;
            snprintf(why, sizeof why, "chunk %u: %s", i, k.msg);
            break;
        }
        memcpy(ch[i].cand, k.cand, k.ncand * sizeof k.cand[0]);
        ch[i].ncand = k.ncand;
    }
    bool pending = !err;
    while (!err && pending)
        err = summary_round(c, &m, ch, acc, &pending, why, sizeof why);
    if (!err)
        print_summary(c, &m, acc);
    for (uint32_t j = 0; acc && j < m.ncols; j++)
        aq_csv_sum_free(&acc[j]);
    free(acc);
    free(ch);
    aq_frame_meta_free(&m);
    if (err)
        return cli_fail(c, err, "%s", why[0] ? why : aq_strerror(err));
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(c, CLI_ERROR, "writing the output failed");
}

/* ---- head and export ---- */

/* The column chunks of chunk i, fetched from their replicas (digests verified) and decoded. */
static int fetch_chunk(cli *c, const aq_frame_meta *m, uint32_t i, aq_csv_col *cols, char *why,
                       size_t cap) {
    size_t nlen = strlen(m->name);
    cli_kop **ks = calloc(m->ncols, sizeof *ks);
    if (!ks)
        return AQ_ENOMEM;
    int err = 0;
    for (uint32_t j = 0; j < m->ncols && !err; j++) {
        uint8_t key[AQ_NODE_KEY_MAX];
        size_t klen = aq_frame_key(key, m->name, nlen, i, j);
        if (!(ks[j] = cli_kop_new(c)) || cli_kop_key(c, ks[j], AQ_M_GET, key, klen, true) != 0) {
            err = AQ_ENOMEM;
            break;
        }
        ks[j]->next_on_notfound = true;
        ks[j]->verify = true;
    }
    if (!err) {
        /* A few columns at a time keeps memory at a few chunks. */
        for (uint32_t j = 0; j < m->ncols; j += 8)
            cli_kops_run(c, ks + j, m->ncols - j < 8 ? m->ncols - j : 8);
    }
    for (uint32_t j = 0; j < m->ncols && !err; j++) {
        uint8_t kind;
        aq_node_digest d;
        const uint8_t *v;
        size_t vlen;
        if (ks[j]->err) {
            err = ks[j]->err;
            snprintf(why, cap, "column %s of chunk %u: %s", m->cols[j], i,
                     err == AQ_ENOTFOUND ? "not found on any live node" : ks[j]->msg);
        } else if (aq_node_get_rep_decode(ks[j]->rep, ks[j]->replen, &kind, &d, &v, &vlen) != 0 ||
                   aq_csv_col_decode(v, vlen, &cols[j]) != 0 || cols[j].rows != m->rows[i]) {
            err = AQ_EPROTO;
            snprintf(why, cap, "column %s of chunk %u is malformed", m->cols[j], i);
        }
    }
    for (uint32_t j = 0; j < m->ncols; j++)
        cli_kop_free(ks[j]);
    free(ks);
    return err;
}

/* Writes the first `limit` rows (all with UINT64_MAX) as CSV with a header to fd. */
static int write_rows(cli *c, const aq_frame_meta *m, uint64_t limit, int fd, char *why,
                      size_t cap) {
    aq_csv_col *cols = calloc(m->ncols, sizeof *cols);
    if (!cols)
        return AQ_ENOMEM;
    aq_csv_export_opts eo = {',', true, NULL};
    uint64_t left = limit;
    int err = 0;
    for (uint32_t i = 0; i < m->nchunks && !err && (left || i == 0); i++) {
        uint32_t take = m->rows[i] < left ? m->rows[i] : (uint32_t)left;
        if (take == 0 && i > 0)
            continue;
        memset(cols, 0, m->ncols * sizeof *cols);
        if ((err = fetch_chunk(c, m, i, cols, why, cap)) == 0) {
            aq_wr w;
            aq_wr_init(&w);
            err = aq_csv_export(cols, m->ncols, (const char *const *)m->cols, 0, take, &eo, &w);
            if (!err && w.len && (err = aq_io_write_all(fd, w.p, w.len)) != 0)
                snprintf(why, cap, "writing the output: %s", aq_strerror(err));
            aq_wr_free(&w);
            eo.header = false;
            left -= take;
        }
        for (uint32_t j = 0; j < m->ncols; j++)
            aq_csv_col_free(&cols[j]);
    }
    free(cols);
    return err;
}

int cli_cmd_head(cli *c, const char *name) {
    uint64_t n = 10;
    if (c->fo.rows) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(c->fo.rows, &end, 10);
        if (errno || *end || end == c->fo.rows || c->fo.rows[0] == '-')
            return cli_fail(c, CLI_USAGE, "-n needs a number of rows, not '%s'", c->fo.rows);
        n = v;
    }
    aq_frame_meta m;
    memset(&m, 0, sizeof m);
    int rc = cli_frame_meta_get(c, name, &m);
    if (rc)
        return rc;
    char why[600] = "";
    int err = write_rows(c, &m, n, STDOUT_FILENO, why, sizeof why);
    aq_frame_meta_free(&m);
    if (err)
        return cli_fail(c, err, "%s", why[0] ? why : aq_strerror(err));
    return CLI_OK;
}

int cli_cmd_export(cli *c, const char *name) {
    aq_frame_meta m;
    memset(&m, 0, sizeof m);
    int rc = cli_frame_meta_get(c, name, &m);
    if (rc)
        return rc;
    /* A failed export leaves FILE as it was (cli_outfile). */
    cli_outfile o;
    if ((rc = cli_outfile_open(c, c->out_path, &o)) != 0) {
        aq_frame_meta_free(&m);
        return rc;
    }
    char why[600] = "";
    int err = write_rows(c, &m, UINT64_MAX, o.fd, why, sizeof why);
    aq_frame_meta_free(&m);
    if (err) {
        cli_outfile_close(c, &o, false, true);
        return cli_fail(c, err, "%s", why[0] ? why : aq_strerror(err));
    }
    return cli_outfile_close(c, &o, true, true);
}
