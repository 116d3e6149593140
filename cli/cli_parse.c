/* aquifer parse: a CSV file becomes a frame of typed column chunks spread over the cluster.
 *
 * 0. The input (cli_input.h): files, a directory, a glob or stdin, each decompressed and
 *    transcoded to UTF-8 as it streams, later files' headers checked and dropped: one text.
 * 1. Setup from samples across a plain file (start, quarters, end), or from the first 2 MiB of
 *    text of a stream (compressed, stdin), plus the user's options.
 * 2. The text streams through aq_csv_split into pieces of at most 4 MiB ending at row ends; each
 *    is put (at most CLI_INFLIGHT in flight) on the first live replica of its key, as one copy
 *    (a replica-only PUT): the node that stored it is the only one that reads it, to parse it.
 *    A piece whose node dies before its columns are stored fails the parse either way.
 * 3. PARSE, overlapping step 2: as soon as a node has stored PARSE_BATCH pieces it is asked to
 *    parse them (at most PARSE_INFLIGHT such calls at once), so the nodes parse while the file
 *    still streams. Each reply (observations, domains and rows per piece) is folded here at once
 *    into final types and cluster-wide domains, and freed.
 * 4. FINISH to every node holding pieces: each brings the columns it parsed (kept in its parse
 *    cache) to the final types, or re-parses the piece, stores the column chunks on their
 *    replicas and drops the piece (the column chunks hold every value; keeping both would double
 *    the memory used). Then the metadata key is stored.
 * A failure at any step removes every key written: no frame and no stray pieces remain.
 * Each step is a function of its own (parse_prepare ... parse_store_meta) called in order by
 * cli_parse_run, the core shared with libaquifer (cli_parse.h); it prints nothing, and the
 * command's report is in cli_parse_print.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aq_csv_col.h"
#include "aq_csv_cut.h"
#include "aq_csv_domain.h"
#include "aq_csv_setup.h"
#include "cli.h"
#include "cli_input.h"
#include "cli_parse.h"

#include "aq_xxh.h"

#define SAMPLE_HEAD   AQ_CSV_SAMPLE_HEAD
#define SAMPLE_MID    (256u << 10)
#define SAMPLE_STREAM (2u << 20) /* a stream's setup sample: its first text, read ahead */
#define READ_BLOCK    (1u << 20)
#define HEAD_MAX      (3 + AQ_NODE_KEY_MAX + 16)
/* A node's parse of its pieces: a base plus a generous time per 4 MiB piece (parsing runs at tens
 * of MB/s even in a sanitizer build). The deadline is hard, so it also bounds the wait for a node
 * that died in the middle. */
#define CALL_BASE_MS  30000
#define CALL_PIECE_MS 3000
/* Pieces per PARSE call, and PARSE calls in flight: small batches start the nodes early and
 * spread the work over their threadpools; the bound keeps the replies waiting here few. */
#define PARSE_BATCH    2
#define PARSE_INFLIGHT 16

typedef struct piece_info {
    uint64_t first_line;
    uint32_t home; /* the node that stored it and parses it */
    uint32_t rows;
} piece_info;

typedef struct put_slot {
    cli_kop *k;
    uint32_t idx;
} put_slot;

typedef struct parse_call {
    cli_kop *k;
    size_t node;
} parse_call;

typedef struct parse_run {
    cli *c;
    char *name;
    size_t nlen;
    piece_info *p;
    uint32_t np, cap;
    put_slot slot[CLI_INFLIGHT];
    int err;
    char why[600];
    cli_progress prog;
    /* PARSE as pieces land: per node the stored pieces not yet asked for (PARSE_BATCH each) */
    uint8_t *senc; /* the encoded setup (owned by cli_parse_run) */
    size_t slen;
    uint32_t nc;
    uint32_t *unsent;
    uint32_t *nunsent;
    parse_call pcall[PARSE_INFLIGHT];
    /* the fold of the replies so far */
    aq_csv_obs *obs;
    aq_csv_strs *dom;
    bool *have;
    aq_csv_obs *tmp;
    uint8_t *hint; /* per column AQ_CSV_T_STR once the fold says string: sent with each PARSE */
    uint8_t parse_id[8]; /* random, little-endian: names this parse to the nodes' PARSE jobs */
    aq_csv_split *split; /* the pieces come from it: on_piece takes their buffers */
    cli_input *in;
    uint64_t in_shown; /* input bytes already counted by the progress line */
} parse_run;

static void parse_flush(parse_run *r, size_t node);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Collects finished puts; with wait_all, waits for every one. */
static void reap(parse_run *r, bool wait_all) {
    for (;;) {
        size_t busy = 0;
        for (size_t s = 0; s < CLI_INFLIGHT; s++) {
            put_slot *ps = &r->slot[s];
            if (ps->k && ps->k->done) {
                if (ps->k->err && !r->err) {
                    r->err = ps->k->err;
                    snprintf(r->why, sizeof r->why, "storing piece %u: %s", ps->idx,
                             ps->k->msg[0] ? ps->k->msg : aq_strerror(ps->k->err));
                } else if (!ps->k->err) {
                    size_t home = ps->k->node;
                    r->p[ps->idx].home = (uint32_t)home;
                    r->unsent[home * PARSE_BATCH + r->nunsent[home]++] = ps->idx;
                    if (r->nunsent[home] == PARSE_BATCH)
                        parse_flush(r, home);
                }
                cli_kop_free(ps->k);
                ps->k = NULL;
            }
            busy += ps->k != NULL;
        }
        if (busy == 0 || (!wait_all && busy < CLI_INFLIGHT))
            return;
        cli_step(r->c);
    }
}

static int on_piece(void *ctx, const char *piece, size_t len, uint64_t first_line, uint64_t index) {
    parse_run *r = ctx;
    reap(r, false);
    if (r->err)
        return r->err;
    if (index >= UINT32_MAX)
        return AQ_ELIMIT;
    if (r->np == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        piece_info *np = realloc(r->p, cap * sizeof *np);
        if (!np)
            return AQ_ENOMEM;
        r->p = np;
        r->cap = cap;
    }
    uint32_t idx = r->np++;
    r->p[idx] = (piece_info){first_line, UINT32_MAX, 0};
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen = aq_frame_key(key, r->name, r->nlen, idx, AQ_FRAME_PIECE);
    cli_kop *k = cli_kop_new(r->c);
    /* the piece's own buffer, with HEAD_MAX bytes reserved in front: the PUT is sent from it */
    uint8_t *mem = k ? (uint8_t *)aq_csv_split_take(r->split) : NULL;
    if (!k || !mem) {
        free(mem);
        cli_kop_free(k);
        return AQ_ENOMEM;
    }
    XXH128_hash_t h = XXH3_128bits(piece, len);
    aq_node_digest d = {h.high64, h.low64};
    uint8_t head[HEAD_MAX];
    aq_wr w = {head, 0, sizeof head, true};
    /* One copy, stored by the node that will parse it: a piece is read only there, and only
     * until the frame is finished; the column chunks are what gets replicated. */
    aq_node_put_req_head(&w, AQ_PUT_REPLICA, AQ_KIND_VALUE, key, klen, d);
    memcpy(mem + HEAD_MAX - w.len, head, w.len);
    k->req = mem + HEAD_MAX - w.len;
    k->reqlen = w.len + len;
    k->req_mem = mem;
    k->method = AQ_M_PUT;
    cli_candidates(r->c, key, klen, false, k);
    for (size_t s = 0; s < CLI_INFLIGHT; s++) {
        if (!r->slot[s].k) {
            r->slot[s] = (put_slot){k, idx};
            break;
        }
    }
    cli_kop_start(k);
    /* progress in bytes of the files (compressed ones count their compressed bytes) */
    cli_input_stats st;
    cli_input_get_stats(r->in, &st);
    cli_progress_add(&r->prog, st.in_bytes - r->in_shown);
    r->in_shown = st.in_bytes;
    return 0;
}

/* ---- options ---- */

static int split_list(char *s, char ***out, size_t *n) {
    size_t cnt = 1;
    for (char *p = s; *p; p++)
        cnt += *p == ',';
    char **v = calloc(cnt, sizeof *v);
    if (!v)
        return AQ_ENOMEM;
    size_t i = 0;
    char *save = s;
    for (;;) {
        char *comma = strchr(save, ',');
        v[i++] = save;
        if (!comma)
            break;
        *comma = 0;
        save = comma + 1;
    }
    *out = v;
    *n = i;
    return 0;
}

typedef struct opt_mem {
    char *na_s, *types_s;
    char **na;
    char **types;
    aq_csv_type_opt *topts;
} opt_mem;

static void opt_mem_free(opt_mem *o) {
    free(o->na_s);
    free(o->types_s);
    free(o->na);
    free(o->types);
    free(o->topts);
}

/* A one-byte option: "none" (0, when allowed), "tab", "space", or one printable byte. */
static int byte_opt(const char *v, bool none_ok, int *out) {
    if (none_ok && strcmp(v, "none") == 0)
        *out = 0;
    else if (strcmp(v, "tab") == 0 || strcmp(v, "\\t") == 0)
        *out = '\t';
    else if (strcmp(v, "space") == 0)
        *out = ' ';
    else if (strlen(v) == 1 && (unsigned char)v[0] >= 0x20 && (unsigned char)v[0] < 0x7f)
        *out = v[0];
    else
        return -1;
    return 0;
}

static int build_opts(cli *c, aq_csv_opts *o, opt_mem *mem) {
    *o = aq_csv_opts_default();
    const cli_frame_opts *f = &c->fo;
    int b;
    if (f->sep) {
        /* "X " (a separator then a space, as in "a, b"): the spaces after it are not data */
        char one[2] = {f->sep[0], 0};
        bool sp = strlen(f->sep) == 2 && f->sep[1] == ' ' && f->sep[0] != ' ';
        if (byte_opt(sp ? one : f->sep, false, &b) != 0 || b == '"' || b == '\\')
            return cli_fail(c, CLI_USAGE,
                            "--sep takes one character, 'tab', 'space' or a character and a space");
        o->sep = (char)b;
        if (sp)
            o->skipsp = 1;
    }
    if (f->quote) {
        if (byte_opt(f->quote, true, &b) != 0 || b == ' ' || b == '\t')
            return cli_fail(c, CLI_USAGE, "--quote takes one character or 'none'");
        o->quote = b;
    }
    if (f->escape) {
        if (byte_opt(f->escape, true, &b) != 0 || b == ' ' || b == '\t')
            return cli_fail(c, CLI_USAGE, "--escape takes one character (\\\\) or 'none'");
        o->escape = b;
    }
    if (f->comment) {
        if (byte_opt(f->comment, true, &b) != 0 || b == ' ' || b == '\t')
            return cli_fail(c, CLI_USAGE, "--comment takes one character or 'none'");
        o->comment = b;
    }
    if (f->skip) {
        char *e;
        errno = 0;
        long v = strtol(f->skip, &e, 10);
        if (!*f->skip || *e || errno || v < 0 || v > 1000000)
            return cli_fail(c, CLI_USAGE, "--skip takes a number of lines (0 to 1000000)");
        o->skip = v;
    }
    if (f->decimal) {
        if (strcmp(f->decimal, ".") != 0 && strcmp(f->decimal, ",") != 0)
            return cli_fail(c, CLI_USAGE, "--decimal takes . or ,");
        o->decimal = f->decimal[0];
    }
    o->strict = f->strict;
    if (f->header) {
        if (strcmp(f->header, "yes") == 0)
            o->header = AQ_CSV_HEADER_YES;
        else if (strcmp(f->header, "no") == 0)
            o->header = AQ_CSV_HEADER_NO;
        else if (strcmp(f->header, "auto") != 0)
            return cli_fail(c, CLI_USAGE, "--header takes yes, no or auto");
    }
    if (f->na) {
        size_t n;
        if (!(mem->na_s = strdup(f->na)) || split_list(mem->na_s, &mem->na, &n) != 0)
            return cli_fail(c, AQ_ENOMEM, "out of memory");
        o->na = (const char *const *)mem->na;
        o->nna = n;
    }
    if (f->types) {
        size_t n;
        if (!(mem->types_s = strdup(f->types)) || split_list(mem->types_s, &mem->types, &n) != 0 ||
            !(mem->topts = calloc(n, sizeof *mem->topts)))
            return cli_fail(c, AQ_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            char *colon = strrchr(mem->types[i], ':');
            if (!colon || colon == mem->types[i])
                return cli_fail(c, CLI_USAGE, "--types wants COLUMN:TYPE,..., not '%s'",
                                mem->types[i]);
            *colon = 0;
            mem->topts[i].col = mem->types[i];
            if (aq_csv_type_parse(colon + 1, &mem->topts[i].type) != 0)
                return cli_fail(c, CLI_USAGE,
                                "unknown type '%s' (int, float, time, categorical, string)",
                                colon + 1);
        }
        o->types = mem->topts;
        o->ntypes = n;
    }
    o->fill = f->fill;
    return 0;
}

/* ---- setup from samples ---- */

static int read_at(int fd, uint8_t *buf, size_t n, uint64_t off, size_t *got) {
    size_t have = 0;
    while (have < n) {
        ssize_t r = pread(fd, buf + have, n - have, (off_t)(off + have));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        have += (size_t)r;
    }
    *got = have;
    return 0;
}

/* Takes sample block b (malloc'd, len bytes) as the text the stream reader would give: it
 * replaces *b by its transcoded copy under --encoding latin-1 or cp1252. */
static int sample_as_text(const cli_input *in, uint8_t **b, size_t *len) {
    char *t;
    size_t tl;
    if (cli_input_sample_text(in, (const char *)*b, *len, &t, &tl) != 0)
        return AQ_ENOMEM;
    free(*b);
    *b = (uint8_t *)t;
    *len = tl;
    return 0;
}

/* Sample b (malloc'd text, *len bytes, the file's start) with its first row replaced by the line
 * hdr[0..hl). */
static int splice_header(uint8_t **b, size_t *len, const aq_csv_opts *o, const char *hdr,
                         size_t hl) {
    /* The options hold the guessed dialect by now (cli_cmd_parse sets them from the first setup).
     */
    aq_csv_dialect d = {.sep = o->sep,
                        .quote = o->quote > 0 ? (char)o->quote : 0,
                        .comment = o->comment > 0 ? (char)o->comment : 0,
                        .escape = o->escape > 0 ? (char)o->escape : 0,
                        .skipsp = o->skipsp == 1};
    aq_csv_tok t;
    aq_csv_tok_init(&t, (const char *)*b, *len, &d, 1, true);
    aq_csv_err e = {0, ""};
    size_t rest = aq_csv_tok_next(&t, &e) == 1 ? (size_t)(t.p - (const char *)*b) : *len;
    aq_csv_tok_free(&t);
    uint8_t *nb = malloc(hl + *len - rest + 1);
    if (!nb)
        return AQ_ENOMEM;
    memcpy(nb, hdr, hl);
    memcpy(nb + hl, *b + rest, *len - rest);
    free(*b);
    *b = nb;
    *len = hl + *len - rest;
    return 0;
}

/* hdr (not NULL): a header line to put in place of the first file's (cli_input_union_header). */
static int make_setup(cli *c, cli_input *in, const aq_csv_opts *o, const char *hdr, size_t hl,
                      aq_csv_setup *su) {
    uint8_t *buf[5] = {0};
    aq_csv_sample smp[5];
    size_t ns = 0;
    int rc = 0;
    const char *file = cli_input_file(in, 0);
    if (!cli_input_first_seekable(in)) {
        /* A stream: its first text, read ahead and handed out again by cli_input_read. */
        const char *p;
        size_t len;
        char why[600];
        int err = cli_input_peek(in, SAMPLE_STREAM, &p, &len, why, sizeof why);
        if (err)
            return cli_fail(c, CLI_ERROR, "%s", why);
        if (memchr(p, 0, len))
            return cli_fail(c, CLI_ERROR, "%s is not a text file (it holds NUL bytes)", file);
        if (hdr) {
            if (!(buf[0] = malloc(len + 1)))
                return cli_fail(c, AQ_ENOMEM, "out of memory");
            memcpy(buf[0], p, len);
            if (splice_header(&buf[0], &len, o, hdr, hl) != 0) {
                free(buf[0]);
                return cli_fail(c, AQ_ENOMEM, "out of memory");
            }
            p = (const char *)buf[0];
        }
        smp[ns++] = (aq_csv_sample){p, len, true};
        goto guess;
    }
    int fd = cli_input_first_fd(in);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cli_fail(c, CLI_ERROR, "cannot read %s: %s", file, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    size_t head_len = size < SAMPLE_HEAD ? (size_t)size : SAMPLE_HEAD;
    buf[0] = malloc(head_len + 1);
    size_t got = 0;
    if (!buf[0])
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    int err = read_at(fd, buf[0], head_len, 0, &got);
    if (err) {
        free(buf[0]);
        return cli_fail(c, CLI_ERROR, "cannot read %s: %s", file, aq_strerror(err));
    }
    if (memchr(buf[0], 0, got)) {
        free(buf[0]);
        return cli_fail(c, CLI_ERROR, "%s is not a text file (it holds NUL bytes)", file);
    }
    if (sample_as_text(in, &buf[0], &got) != 0 ||
        (hdr && splice_header(&buf[0], &got, o, hdr, hl) != 0)) {
        free(buf[0]);
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    smp[ns++] = (aq_csv_sample){(const char *)buf[0], got, true};
    if (size > 2 * SAMPLE_HEAD) {
        /* Blocks at the quarters and the end: a type that changes late in the file is seen. */
        uint64_t at[4] = {size / 4, size / 2, size / 4 * 3, size - SAMPLE_MID};
        for (int i = 0; i < 4; i++) {
            uint8_t *b = malloc(SAMPLE_MID);
            if (!b || read_at(fd, b, SAMPLE_MID, at[i], &got) != 0) {
                free(b);
                continue;
            }
            buf[ns] = b;
            if (memchr(b, 0, got)) {
                rc = cli_fail(c, CLI_ERROR, "%s is not a text file (it holds NUL bytes)", file);
                ns++;
                goto out;
            }
            size_t off;
            size_t len = aq_csv_sample_trim((const char *)b, got, &off);
            memmove(b, b + off, len);
            if (sample_as_text(in, &buf[ns], &len) != 0) {
                rc = cli_fail(c, AQ_ENOMEM, "out of memory");
                ns++;
                goto out;
            }
            smp[ns] = (aq_csv_sample){(const char *)buf[ns], len, false};
            ns++;
        }
    }
guess:;
    aq_csv_err e = {0, ""};
    err = aq_csv_setup_guess(smp, ns, o, su, &e);
    if (err)
        rc = cli_fail(c, err == AQ_EINVAL ? CLI_USAGE : CLI_ERROR, "%s",
                      e.msg[0] ? e.msg : aq_strerror(err));
out:
    for (size_t i = 0; i < 5; i++)
        free(buf[i]);
    return rc;
}

/* ---- the calls to the nodes ---- */

/* One call per node holding pieces; returns the kops (NULL where none), all finished. */
/* The failure of node i's reply to a frame call, as the command's sentence in why; 0 when it is
 * fine (why untouched). */
static int frame_reply_err(const cli *c, uint16_t method, const cli_kop *k, size_t i, char *why,
                           size_t cap) {
    aq_frame_rep rep;
    if (k->err) {
        snprintf(why, cap, "%s", k->msg);
        return k->err;
    }
    if (aq_frame_rep_decode(k->rep, k->replen, &rep) != 0) {
        snprintf(why, cap, "%s sent a malformed %s reply", c->conf->nodes[i].name,
                 aq_node_method_name(method));
        return AQ_EPROTO;
    }
    if (rep.status == AQ_EPARSE)
        snprintf(why, cap, "%.*s", (int)rep.mlen, rep.msg);
    else if (rep.status)
        snprintf(why, cap, "%s: %.*s", c->conf->nodes[i].name, (int)rep.mlen, rep.msg);
    return rep.status;
}

/* The piece records (index, first line) of every piece node i holds, into recs (room for all
 * pieces); returns how many. */
static uint32_t home_records(const parse_run *r, size_t i, uint8_t *recs) {
    uint32_t n = 0;
    for (uint32_t p = 0; p < r->np; p++) {
        if (r->p[p].home != i)
            continue;
        aq_wr w = {recs + (size_t)n * AQ_FRAME_PIECE_REC, 0, AQ_FRAME_PIECE_REC, true};
        aq_wr_u32(&w, p);
        aq_wr_u64(&w, r->p[p].first_line);
        n++;
    }
    return n;
}

/* FINISH to every node that holds pieces, in parallel; the first failure wins. */
static int finish_calls(parse_run *r, const uint8_t *types, const uint8_t *blobs, size_t blen,
                        cli_kop **ks) {
    cli *c = r->c;
    size_t nn = c->conf->nnodes;
    uint8_t *recs = malloc((size_t)r->np * AQ_FRAME_PIECE_REC + 1);
    if (!recs)
        return AQ_ENOMEM;
    int err = 0;
    for (size_t i = 0; i < nn && !err; i++) {
        uint32_t n = home_records(r, i, recs);
        if (n == 0)
            continue;
        aq_frame_req q = {(const uint8_t *)r->name,
                          r->nlen,
                          r->senc,
                          r->slen,
                          r->nc,
                          types,
                          blobs,
                          blen,
                          n,
                          recs};
        if (!(ks[i] = cli_frame_kop(c, AQ_M_FRAME_FINISH, &q, i,
                                    CALL_BASE_MS + (uint64_t)n * CALL_PIECE_MS))) {
            err = AQ_ENOMEM;
            break;
        }
    }
    free(recs);
    if (!err)
        cli_kops_run(c, ks, nn);
    for (size_t i = 0; i < nn && !err; i++)
        if (ks[i])
            err = frame_reply_err(c, AQ_M_FRAME_FINISH, ks[i], i, r->why, sizeof r->why);
    return err;
}

/* The next column of a PARSE reply: its observations into obs, its levels into dom. */
static int next_column(aq_rd *rd, aq_csv_obs *obs, aq_csv_strs *dom) {
    const uint8_t *b1, *b2;
    size_t l1, l2;
    if (aq_frame_blob_next(rd, &b1, &l1) != 0 || aq_frame_blob_next(rd, &b2, &l2) != 0 ||
        aq_csv_obs_decode(b1, l1, obs) != 0 || aq_csv_domain_decode(b2, l2, dom) != 0)
        return AQ_EPROTO;
    return 0;
}

/* Column j's merged domain takes d's levels; past AQ_FRAME_LEVELS_TEXT_MAX of text the column is
 * string (the nodes' rule, see aq_node_frame.c), so the levels of every column fit the calls. */
static int unite_levels(parse_run *r, uint32_t j, const aq_csv_strs *d) {
    aq_csv_strs u = {0};
    int err = aq_csv_domain_union(&r->dom[j], d, &u);
    if (err)
        return err;
    aq_csv_strs_free(&r->dom[j]);
    r->dom[j] = u;
    if (u.n && u.off[u.n] > AQ_FRAME_LEVELS_TEXT_MAX)
        r->obs[j].kind = AQ_CSV_T_STR;
    return 0;
}

/* A column that is categorical in the frame but held numbers or times somewhere: a piece that
 * was all numbers there sent no levels, so its values are missing from the merged domain. Every
 * node re-parses its pieces with such columns read as categorical (PARSE with AQ_CSV_T_CAT in the
 * type bytes) and answers their levels, which are united here; a column whose levels then pass
 * AQ_FRAME_LEVELS_TEXT_MAX becomes string, as in the first round. Only frames with such a mixed
 * column pay for this. */
static int levels_round(parse_run *r, const uint8_t *need) {
    cli *c = r->c;
    size_t nn = c->conf->nnodes;
    cli_kop **ks = calloc(nn, sizeof *ks);
    uint8_t *recs = malloc((size_t)r->np * AQ_FRAME_PIECE_REC + 1);
    int err = ks && recs ? 0 : AQ_ENOMEM;
    for (size_t i = 0; i < nn && !err; i++) {
        uint32_t n = home_records(r, i, recs);
        if (n == 0)
            continue;
        aq_frame_req q = {
            (const uint8_t *)r->name, r->nlen, r->senc, r->slen, r->nc, need, NULL, 0, n, recs};
        if (!(ks[i] = cli_frame_kop(c, AQ_M_FRAME_PARSE, &q, i,
                                    CALL_BASE_MS + (uint64_t)n * CALL_PIECE_MS)))
            err = AQ_ENOMEM;
    }
    if (!err)
        cli_kops_run(c, ks, nn);
    for (size_t i = 0; i < nn && !err; i++) {
        if (!ks[i])
            continue;
        if ((err = frame_reply_err(c, AQ_M_FRAME_PARSE, ks[i], i, r->why, sizeof r->why)) != 0)
            break;
        aq_frame_rep rep;
        aq_frame_rep_decode(ks[i]->rep, ks[i]->replen, &rep);
        aq_rd rd = aq_rd_init(rep.blobs, rep.blen);
        if (rep.nblobs != 2 * r->nc)
            err = AQ_EPROTO;
        for (uint32_t j = 0; j < r->nc && !err; j++) {
            aq_csv_strs got = {0};
            if ((err = next_column(&rd, r->tmp, &got)) != 0)
                break;
            if (need[j] == AQ_CSV_T_CAT && r->obs[j].kind != AQ_CSV_T_STR) {
                if (aq_csv_obs_final(r->tmp) == AQ_CSV_T_STR)
                    r->obs[j].kind = AQ_CSV_T_STR; /* its levels outgrew the calls there */
                else
                    err = unite_levels(r, j, &got);
                if (r->obs[j].kind == AQ_CSV_T_STR)
                    aq_csv_strs_free(&r->dom[j]);
            }
            aq_csv_strs_free(&got);
        }
        if (err == AQ_EPROTO)
            snprintf(r->why, sizeof r->why, "%s sent malformed levels", c->conf->nodes[i].name);
    }
    for (size_t i = 0; ks && i < nn; i++)
        cli_kop_free(ks[i]);
    free(ks);
    free(recs);
    return err;
}

static void free_kops(cli_kop **ks, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cli_kop_free(ks[i]);
        ks[i] = NULL;
    }
}

/* Folds one PARSE reply of node i: rows per piece, observations and domains per column. */
static int fold_one(parse_run *r, const cli_kop *k, size_t i) {
    uint32_t nc = r->nc;
    aq_frame_rep rep;
    aq_frame_rep_decode(k->rep, k->replen, &rep);
    int err = rep.nblobs == 2 * nc ? 0 : AQ_EPROTO;
    for (uint32_t p = 0; !err && p < rep.npieces; p++) {
        uint32_t idx, rows;
        aq_frame_rep_piece(&rep, p, &idx, &rows);
        if (idx >= r->np || r->p[idx].home != i)
            err = AQ_EPROTO;
        else
            r->p[idx].rows = rows;
    }
    aq_rd rd = aq_rd_init(rep.blobs, rep.blen);
    for (uint32_t j = 0; j < nc && !err; j++) {
        aq_csv_strs d = {0};
        if ((err = next_column(&rd, r->tmp, &d)) != 0)
            break;
        if (r->have[j])
            aq_csv_obs_merge(&r->obs[j], r->tmp);
        else
            r->obs[j] = *r->tmp;
        r->have[j] = true;
        /* String anywhere is string everywhere: only a column still categorical keeps levels. */
        if (aq_csv_obs_final(&r->obs[j]) == AQ_CSV_T_CAT)
            err = unite_levels(r, j, &d);
        if (aq_csv_obs_final(&r->obs[j]) != AQ_CSV_T_CAT)
            aq_csv_strs_free(&r->dom[j]);
        if (aq_csv_obs_final(&r->obs[j]) == AQ_CSV_T_STR)
            r->hint[j] = AQ_CSV_T_STR;
        aq_csv_strs_free(&d);
    }
    if (err == AQ_EPROTO)
        snprintf(r->why, sizeof r->why, "%s sent malformed observations",
                 r->c->conf->nodes[i].name);
    return err;
}

/* Folds finished PARSE calls; with wait_all, waits for every one, else until a slot is free. */
static void parse_reap(parse_run *r, bool wait_all) {
    for (;;) {
        size_t busy = 0;
        for (size_t s = 0; s < PARSE_INFLIGHT; s++) {
            parse_call *pc = &r->pcall[s];
            if (pc->k && pc->k->done && !r->err) {
                /* The first failure's sentence stays: later replies are only freed. */
                int err =
                    frame_reply_err(r->c, AQ_M_FRAME_PARSE, pc->k, pc->node, r->why, sizeof r->why);
                r->err = err ? err : fold_one(r, pc->k, pc->node);
            }
            if (pc->k && pc->k->done) {
                cli_kop_free(pc->k);
                pc->k = NULL;
            }
            busy += pc->k != NULL;
        }
        if (busy == 0 || (!wait_all && busy < PARSE_INFLIGHT))
            return;
        cli_step(r->c);
    }
}

/* Asks node i to parse the pieces it stored that no PARSE named yet. */
static void parse_flush(parse_run *r, size_t node) {
    uint32_t n = r->nunsent[node];
    if (n == 0 || r->err)
        return;
    r->nunsent[node] = 0;
    uint8_t recs[PARSE_BATCH * AQ_FRAME_PIECE_REC];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = r->unsent[node * PARSE_BATCH + i];
        aq_wr w = {recs + (size_t)i * AQ_FRAME_PIECE_REC, 0, AQ_FRAME_PIECE_REC, true};
        aq_wr_u32(&w, p);
        aq_wr_u64(&w, r->p[p].first_line);
    }
    parse_reap(r, false);
    aq_frame_req q = {
        (const uint8_t *)r->name, r->nlen, r->senc, r->slen, r->nc, r->hint, r->parse_id,
        sizeof r->parse_id,       n,       recs};
    cli_kop *k =
        cli_frame_kop(r->c, AQ_M_FRAME_PARSE, &q, node, CALL_BASE_MS + (uint64_t)n * CALL_PIECE_MS);
    if (!k) {
        if (!r->err) {
            r->err = AQ_ENOMEM;
            snprintf(r->why, sizeof r->why, "out of memory");
        }
        return;
    }
    for (size_t s = 0; s < PARSE_INFLIGHT; s++) {
        if (!r->pcall[s].k) {
            r->pcall[s] = (parse_call){k, node};
            break;
        }
    }
    cli_kop_start(k);
}

/* A directory's name, or a file's base name without a compression suffix and one extension. */
static void default_name(const char *file, bool dir, char *out, size_t cap) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", file);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/')
        tmp[--l] = 0;
    const char *b = basename(tmp);
    snprintf(out, cap, "%s", b);
    if (dir)
        return;
    static const char *const zext[] = {".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz"};
    for (size_t i = 0; i < sizeof zext / sizeof zext[0]; i++) {
        size_t n = strlen(out), e = strlen(zext[i]);
        if (n > e && strcmp(out + n - e, zext[i]) == 0) {
            out[n - e] = 0;
            break;
        }
    }
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = 0;
}

/* A failure that names "line N" of the joined text names the file and its own line instead. */
static void locate_line(const cli_input *in, char *why, size_t cap) {
    unsigned long long line;
    int used = 0;
    if (cli_input_nfiles(in) < 2 || sscanf(why, "line %llu%n", &line, &used) != 1 || used == 0)
        return;
    uint64_t fl;
    const char *f = cli_input_locate(in, line, &fl);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s line %llu%s", f, (unsigned long long)fl, why + used);
    size_t l = strlen(tmp) < cap ? strlen(tmp) : cap - 1;
    memcpy(why, tmp, l);
    why[l] = 0;
}

/* Steps 0 and 1: the options, the input opened, the frame's name, the setup from samples. On
 * success *inp and *sup belong to the caller; else nothing is left open. Returns the exit code. */
static int parse_prepare(cli *c, const char *const *files, size_t nfiles, cli_input **inp,
                         char name[AQ_NODE_KEY_MAX + 1], aq_csv_setup *sup) {
    cli_enc enc = CLI_ENC_AUTO;
    if (c->fo.encoding && cli_enc_parse(c->fo.encoding, &enc) != 0)
        return cli_fail(c, CLI_USAGE, "--encoding takes utf-8, latin-1 or cp1252, not '%s'",
                        c->fo.encoding);
    if (!c->fo.name && strcmp(files[0], "-") == 0)
        return cli_fail(c, CLI_USAGE, "reading stdin needs a frame name: give --name NAME");
    int rc;
    aq_csv_opts o;
    opt_mem om = {0};
    if ((rc = build_opts(c, &o, &om)) != 0) {
        opt_mem_free(&om);
        return rc;
    }
    *inp = NULL;
    cli_input *in = NULL;
    {
        char why[600];
        int e = cli_input_open(&in, files, nfiles, enc, why, sizeof why);
        if (e) {
            opt_mem_free(&om);
            return cli_fail(c, e == -ENOENT ? CLI_NOTFOUND : CLI_ERROR, "%s", why);
        }
    }
    if (c->fo.name) {
        snprintf(name, AQ_NODE_KEY_MAX + 1, "%s", c->fo.name);
    } else {
        struct stat ds;
        bool dir = stat(files[0], &ds) == 0 && S_ISDIR(ds.st_mode);
        default_name(dir ? files[0] : cli_input_file(in, 0), dir, name, AQ_NODE_KEY_MAX + 1);
    }
    if (strlen(c->fo.name ? c->fo.name : name) > AQ_FRAME_NAME_MAX) {
        opt_mem_free(&om);
        cli_input_close(in);
        return cli_fail(c, CLI_USAGE, "a frame name is at most %d bytes; choose one with --name",
                        AQ_FRAME_NAME_MAX);
    }
    if ((rc = cli_frame_check_name(c, name)) != 0) {
        opt_mem_free(&om);
        cli_input_close(in);
        return rc;
    }
    aq_csv_setup su;
    memset(&su, 0, sizeof su);
    memset(sup, 0, sizeof *sup);
    rc = make_setup(c, in, &o, NULL, 0, &su);
    if (!rc) {
        char why[600];
        cli_input_set_table(in, su.skip, su.ncols);
        if (cli_input_set_dialect(in, &su.d, su.header, o.fill, why, sizeof why) != 0)
            rc = cli_fail(c, CLI_ERROR, "%s", why);
    }
    size_t ulen;
    const char *uline = rc ? NULL : cli_input_union_header(in, &ulen);
    if (uline) {
        /* --fill over differing headers: the setup again, with the union's header in front of
         * the first file's rows, as the stream will have it */
        o.sep = su.d.sep;
        o.quote = su.d.quote;
        o.escape = su.d.escape;
        o.comment = su.d.comment;
        o.skipsp = su.d.skipsp;
        o.header = AQ_CSV_HEADER_YES;
        /* The union's header is line 1 of the text: the first file's rows, not yet rewritten into
         * the union in the sample, are shorter than it, which must not read as a preamble. */
        o.skip = 0;
        aq_csv_setup_free(&su);
        memset(&su, 0, sizeof su);
        rc = make_setup(c, in, &o, uline, ulen, &su);
    }
    opt_mem_free(&om);
    if (rc) {
        aq_csv_setup_free(&su);
        cli_input_close(in);
        return rc;
    }
    *inp = in;
    *sup = su;
    return 0;
}

/* A parse never replaces a frame: 0 when no frame of r's name exists (live nodes known). */
static int parse_check_new(parse_run *r) {
    cli *c = r->c;
    int rc = cli_need_live(c);
    if (rc)
        return rc;
    /* An existing frame is not replaced silently. */
    uint8_t mk[AQ_NODE_KEY_MAX];
    size_t mlen = aq_frame_meta_key(mk, r->name, r->nlen);
    cli_kop *k = cli_kop_new(c);
    if (!k || cli_kop_key(c, k, AQ_M_STAT, mk, mlen, true) != 0) {
        cli_kop_free(k);
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    k->next_on_notfound = true;
    if (cli_kop_start(k) == 0)
        cli_kop_wait(k);
    int e = k->err;
    cli_kop_free(k);
    if (e == 0)
        return cli_fail(c, AQ_EEXIST,
                        "a frame named %s exists; remove it with `aquifer frame rm %s` or "
                        "choose another --name",
                        r->name, r->name);
    return 0;
}

/* Steps 2 and 3: the text cut into pieces stored on the nodes, each node asked to parse its pieces
 * as they land, every reply folded into r; *file_lines is the text's last line. Returns the exit
 * code. */
static int parse_stream(parse_run *r, const aq_csv_setup *su, uint64_t *file_lines,
                        uint64_t *stop_line) {
    cli *c = r->c;
    int err;
    cli_input_stats ist;
    cli_input_get_stats(r->in, &ist);
    cli_progress_begin(c, &r->prog, "parse", ist.total_in);
    aq_csv_split sp;
    aq_csv_err pe = {0, ""};
    if ((err = aq_csv_split_init(&sp, &su->d, AQ_NODE_CHUNK_MAX, on_piece, r)) != 0 ||
        (err = aq_csv_split_reserve(&sp, HEAD_MAX)) != 0) {
        aq_csv_split_free(&sp);
        cli_progress_end(&r->prog); /* the sentence goes on a line of its own */
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    r->split = &sp;
    sp.lenient = !su->strict; /* a quote never closed: the parse repairs and counts it */
    sp.cr_rows = su->cr_rows; /* rows end at CR alone: the split makes them LF rows */
    /* the table's end: the setup's stop line, or one the split finds past the samples (not
     * under --fill, whose rows may be of any width up to the widest) */
    aq_csv_split_table(&sp, su->fill ? 0 : su->ncols, su->skip, su->stop_line);
    for (;;) {
        /* straight into the piece buffer: the bytes are copied once, by the kernel */
        char *at;
        size_t room;
        if ((err = aq_csv_split_space(&sp, &at, &room, &pe)) != 0)
            break;
        size_t got;
        if ((err = cli_input_read(r->in, at, room < READ_BLOCK ? room : READ_BLOCK, &got, r->why,
                                  sizeof r->why)) != 0)
            break;
        if (got == 0) {
            err = aq_csv_split_finish(&sp, &pe);
            break;
        }
        aq_csv_split_commit(&sp, got);
    }
    /* the file's last line: one per LF, and one more for bytes after the last LF */
    *file_lines = sp.cut.lines + (sp.cut.fed > sp.cut.row_end);
    *stop_line = sp.stop_line;
    aq_csv_split_free(&sp);
    r->split = NULL;
    reap(r, true);
    /* 3. the last pieces' PARSE, then every reply folded */
    for (size_t i = 0; i < c->conf->nnodes; i++)
        parse_flush(r, i);
    parse_reap(r, true);
    cli_progress_end(&r->prog);
    if (err && !r->why[0])
        snprintf(r->why, sizeof r->why, "%s", pe.msg[0] ? pe.msg : aq_strerror(err));
    if (!err)
        err = r->err;
    if (err) {
        locate_line(r->in, r->why, sizeof r->why);
        return cli_fail(c, err, "%s", r->why);
    }
    return 0;
}

/* The final type of every column (a forced one, or what the merged observations say), after a
 * levels round for categorical columns that held numbers somewhere; their domains into doms (one
 * blob per column, empty unless categorical), as FINISH sends them. Returns the exit code. */
static int parse_decide(parse_run *r, const aq_csv_setup *su, uint8_t *types, aq_wr *doms) {
    cli *c = r->c;
    int err;
    {
        /* the hints are done with: they now say which columns need the levels round */
        bool any = false;
        for (uint32_t j = 0; j < r->nc; j++) {
            r->hint[j] = !su->forced[j] && aq_csv_obs_final(&r->obs[j]) == AQ_CSV_T_CAT &&
                                 (r->obs[j].numeric || r->obs[j].time || r->obs[j].nan)
                             ? AQ_CSV_T_CAT
                             : 0;
            any = any || r->hint[j];
        }
        if (any && (err = levels_round(r, r->hint)) != 0) {
            locate_line(r->in, r->why, sizeof r->why);
            return cli_fail(c, err, "%s", r->why[0] ? r->why : aq_strerror(err));
        }
    }
    for (uint32_t j = 0; j < r->nc; j++) {
        aq_csv_type t = su->forced[j] ? su->types[j] : aq_csv_obs_final(&r->obs[j]);
        types[j] = (uint8_t)t;
        uint8_t *d = NULL;
        size_t dl = 0;
        aq_csv_strs none = {0};
        if ((err = aq_csv_domain_encode(t == AQ_CSV_T_CAT ? &r->dom[j] : &none, &d, &dl)) != 0) {
            return cli_fail(c, AQ_ENOMEM, "out of memory");
        }
        aq_frame_blob_put(doms, d, dl);
        free(d);
    }
    if (!doms->ok) {
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    return 0;
}

/* The frame's metadata, stored once every column chunk is: the file, names, types, rows per
 * chunk, the setup, repairs and unread lines; then the report. Returns the exit code. */
static int parse_store_meta(parse_run *r, const aq_csv_setup *su, uint8_t *types,
                            uint64_t file_lines, uint64_t stop_line, double t0,
                            cli_parse_report report, void *ud) {
    cli *c = r->c;
    int err;
    cli_input_stats ist;
    cli_input_get_stats(r->in, &ist);
    char src[4096], first[4096];
    snprintf(first, sizeof first, "%s", cli_input_file(r->in, 0));
    if (ist.files > 1)
        snprintf(src, sizeof src, "%.200s and %u more", basename(first), ist.files - 1);
    else
        snprintf(src, sizeof src, "%.200s", basename(first));
    uint64_t size = ist.text_bytes;
    aq_frame_meta m = {r->name, src,     size,    r->nc, su->names, types, r->np, NULL,
                       0,       r->senc, r->slen, 0,     0,         NULL,  0,     0};
    if (r->nc) {
        m.repaired = r->obs[0].repaired;
        m.nrepair = r->obs[0].nrepair;
        m.repair_line = r->obs[0].repair_line;
    }
    if (stop_line && stop_line <= file_lines) {
        m.unread_from = stop_line;
        m.unread_to = file_lines;
    }
    m.rows = malloc((r->np + 1) * sizeof *m.rows);
    uint8_t *menc = NULL;
    size_t mlen = 0;
    for (uint32_t i = 0; m.rows && i < r->np; i++) {
        m.rows[i] = r->p[i].rows;
        m.total_rows += r->p[i].rows;
    }
    if (!m.rows || aq_frame_meta_encode(&m, &menc, &mlen) != 0) {
        free(m.rows);
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    }
    uint8_t mk[AQ_NODE_KEY_MAX];
    size_t mkl = aq_frame_meta_key(mk, r->name, r->nlen);
    err = cli_put_internal(c, mk, mkl, menc, mlen, r->why, sizeof r->why);
    free(menc);
    if (err) {
        free(m.rows);
        return cli_fail(c, err, "storing the frame's metadata: %s", r->why);
    }
    cli_parse_done done = {r->name, &m, su, types, &ist, size, r->np, now_s() - t0};
    report(c, &done, ud);
    uint64_t nline;
    const char *nfile = cli_input_note(r->in, &nline);
    if (nfile)
        cli_warn(c,
                 "note: %s is not UTF-8 (first at line %llu)%s; its bytes are "
                 "kept as they are (--encoding latin-1 or cp1252 transcodes them)",
                 nfile, (unsigned long long)nline, ist.not_utf8 > 1 ? ", nor are other files" : "");
    free(m.rows);
    return 0;
}

int cli_parse_run(cli *c, const char *const *files, size_t nfiles, cli_parse_report report,
                  void *ud) {
    cli_input *in;
    char name[AQ_NODE_KEY_MAX + 1];
    aq_csv_setup su;
    /* 0 and 1. input and setup */
    int rc = parse_prepare(c, files, nfiles, &in, name, &su);
    if (rc)
        return rc;
    uint8_t *senc = NULL;
    size_t slen = 0;
    parse_run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.in = in;
    r.name = name;
    r.nlen = strlen(name);
    uint32_t nc = su.ncols;
    size_t nn = c->conf->nnodes;
    cli_kop **ks = calloc(nn, sizeof *ks);
    aq_csv_obs *obs = calloc(nc, sizeof *obs);
    aq_csv_strs *dom = calloc(nc, sizeof *dom);
    uint8_t *types = calloc(nc, 1);
    aq_wr doms;
    aq_wr_init(&doms);
    bool wrote = false;
    double t0 = now_s();
    int err = aq_csv_setup_encode(&su, &senc, &slen);
    r.senc = senc;
    r.slen = slen;
    r.nc = nc;
    r.obs = obs;
    r.dom = dom;
    r.have = calloc(nc ? nc : 1, sizeof *r.have);
    r.tmp = malloc(sizeof *r.tmp);
    r.hint = calloc(nc ? nc : 1, 1);
    uint64_t pid = cli_random_u64() | 1; /* 0 would mean "no id" */
    for (int i = 0; i < 8; i++)
        r.parse_id[i] = (uint8_t)(pid >> (8 * i));
    r.unsent = calloc(nn * PARSE_BATCH, sizeof *r.unsent);
    r.nunsent = calloc(nn, sizeof *r.nunsent);
    if (!ks || !obs || !dom || !types || err || !r.have || !r.tmp || !r.hint || !r.unsent ||
        !r.nunsent) {
        rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = parse_check_new(&r)) != 0)
        goto out;
    /* Keys of an earlier parse of this name that never finished would mix with ours. */
    wrote = true;
    if (cli_frame_rm_keys(c, name, false, NULL) != 0) {
        rc = cli_fail(c, CLI_ERROR, "cannot remove the keys an unfinished parse of %s left", name);
        goto out;
    }
    /* 2 and 3. pieces, parsed where they land */
    uint64_t file_lines = 0, stop_line = 0;
    if ((rc = parse_stream(&r, &su, &file_lines, &stop_line)) != 0)
        goto out;
    /* the final types, and the domains of categorical columns */
    if ((rc = parse_decide(&r, &su, types, &doms)) != 0)
        goto out;
    /* 4. column chunks at the final types */
    if ((err = finish_calls(&r, types, doms.p, doms.len, ks)) != 0) {
        locate_line(in, r.why, sizeof r.why);
        rc = cli_fail(c, err, "%s", r.why[0] ? r.why : aq_strerror(err));
        goto out;
    }
    free_kops(ks, nn);
    /* then the metadata, which makes the frame visible */
    if ((rc = parse_store_meta(&r, &su, types, file_lines, stop_line, t0, report, ud)) != 0)
        goto out;
    wrote = false;
out:
    /* PARSE calls still out (a put failed meanwhile) end before their keys are removed. */
    if (r.unsent)
        parse_reap(&r, true);
    if (wrote) {
        size_t left = cli_frame_rm_keys(c, name, false, NULL);
        if (left)
            cli_warn(c, "warning: %zu keys of the failed parse could not be removed", left);
    }
    if (ks)
        free_kops(ks, nn);
    free(ks);
    for (uint32_t j = 0; dom && j < nc; j++)
        aq_csv_strs_free(&dom[j]);
    free(dom);
    free(obs);
    free(types);
    free(senc);
    free(r.p);
    for (size_t s = 0; s < CLI_INFLIGHT; s++)
        cli_kop_free(r.slot[s].k);
    free(r.have);
    free(r.tmp);
    free(r.hint);
    free(r.unsent);
    free(r.nunsent);
    aq_wr_free(&doms);
    aq_csv_setup_free(&su);
    cli_input_close(in);
    return rc;
}
