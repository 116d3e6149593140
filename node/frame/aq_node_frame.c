/* The node's part of distributed CSV parsing and summaries (FRAME_PARSE, FRAME_FINISH,
 * FRAME_SUMMARY). The command names, per node, the pieces that node is the first live replica of;
 * the node works only on what it holds (pieces and column chunks of one index share their homes),
 * in the threadpool, and answers with small results: per-column observations and domains, then
 * partial summaries. PARSE keeps the columns it parsed in the parse cache (aq_node_pcache.h) and
 * FINISH brings them to the agreed types in memory, so a piece is parsed once; where that cannot
 * be (the entry is gone, or numbers must become text and keep the file's bytes) FINISH parses the
 * stored piece again with the types forced, so a node that restarted in between loses nothing.
 * A string chunk is final as parsed, so PARSE stores it at once (while the file still streams) and
 * the cache keeps only its digest; FINISH stores the other columns. Column chunks are stored here
 * and copied to the key's other live replicas as replica PUTs, so every copy has the same bytes;
 * PARSE and FINISH answer once every copy they made is stored. FINISH runs in parts, one after
 * another, so a part's copies travel while the next part encodes. */
#include <stdlib.h>
#include <string.h>

#include "aq_csv_col.h"
#include "aq_csv_domain.h"
#include "aq_csv_summary.h"
#include "aq_node_frame.h"
#include "aq_node_internal.h"

#include "aq_xxh.h"

typedef struct out_chunk {
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen;
    uint8_t *mem;       /* what msg lies in (freed with the job) */
    const uint8_t *msg; /* a replica PUT request: head then the encoded chunk */
    size_t len;
    aq_node_digest digest;
} out_chunk;

typedef struct frame_job {
    aq_node *n;
    aq_rpc_incoming *in;
    uint16_t method;
    uint64_t version; /* of the column chunks this job writes (assigned on the loop) */
    uint8_t *msg;
    size_t len;
    aq_frame_req q;
    uv_work_t work;
    aq_wr rep; /* built in the threadpool */
    /* FINISH: chunks to copy to the other replicas */
    out_chunk *out;
    size_t nout;
    int refs; /* forwards in flight + the job itself */
    /* The first copy that failed (refused, or not known to be stored: a timeout or a closed
     * connection), with its sentence naming the replica: the call then fails with it, since the
     * caller was promised every copy. */
    int forward_err;
    char forward_why[300];
    /* FINISH runs as parts, each a job of its own over pieces [first, first + count) of the
     * request: a part's copies go out as soon as it is done, while the next part still encodes.
     * A part points at its whole (which owns the request and answers it); the whole counts the
     * parts still out and keeps the first failure's reply. */
    uint32_t first, count;
    struct frame_job *whole, *next;
    int parts_left;
    bool failed;
} frame_job;

/* FINISH parts per call: enough that copying overlaps encoding, few enough that each part is
 * several pieces. */
#define FINISH_PARTS 4

/* Encodes a column chunk of piece idx straight behind room for its replica PUT's head, stores it
 * here at the job's version and queues that PUT for the key's other live replicas (frame_after
 * sends j->out once the work is done; the job answers when every copy is stored). j->out has
 * room for one more. *digest: the encoding's. why: what failed. */
static int store_col(frame_job *j, uint32_t idx, uint32_t c, const aq_csv_col *col,
                     aq_chunk_digest *digest, char *why, size_t cap) {
    uint8_t *mem = NULL;
    size_t elen = 0;
    int err = aq_csv_col_encode_room(col, AQ_PUT_HEAD_MAX, &mem, &elen);
    if (err)
        return err;
    const uint8_t *enc = mem + AQ_PUT_HEAD_MAX;
    if (elen > AQ_NODE_CHUNK_MAX) {
        free(mem);
        snprintf(why, cap, "column %u of piece %u encodes to more than one chunk", c + 1, idx);
        return AQ_ETOOBIG;
    }
    out_chunk *o = &j->out[j->nout];
    o->klen = aq_frame_key(o->key, j->q.name, j->q.nlen, idx, c);
    aq_chunk_digest d = aq_chunk_digest_of(enc, elen);
    err = aq_chunk_put_versioned(j->n->store, o->key, o->klen, enc, elen, AQ_KIND_VALUE, &d,
                                 j->version);
    if (err == AQ_ESTALE) {
        /* A newer write (a removal of the frame) came first: the frame is gone. */
        free(mem);
        snprintf(why, cap, "column %u of piece %u was removed meanwhile", c + 1, idx);
        return err;
    }
    if (err) {
        free(mem);
        snprintf(why, cap, "storing column %u of piece %u: %s", c + 1, idx, aq_strerror(err));
        return err;
    }
    o->digest = (aq_node_digest){d.hi, d.lo};
    uint8_t head[AQ_PUT_HEAD_MAX];
    aq_wr w = {head, 0, sizeof head, true};
    aq_node_put_req_head_v(&w, AQ_PUT_REPLICA, AQ_KIND_VALUE, o->key, o->klen, o->digest,
                           j->version);
    memcpy(mem + AQ_PUT_HEAD_MAX - w.len, head, w.len);
    o->mem = mem;
    o->msg = mem + AQ_PUT_HEAD_MAX - w.len;
    o->len = w.len + elen;
    j->nout++;
    *digest = d;
    return 0;
}

static void job_reply_err(aq_wr *w, int err, const char *msg) {
    aq_wr_u32(w, (uint32_t)(int32_t)err);
    aq_wr_str16(w, msg, strlen(msg));
    aq_wr_u32(w, 0);
    aq_wr_u32(w, 0);
}

static int get_piece(frame_job *j, uint32_t idx, aq_chunk_ref **ref, char *why, size_t cap) {
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen = aq_frame_key(key, j->q.name, j->q.nlen, idx, AQ_FRAME_PIECE);
    int err = aq_node_get_live(j->n, key, klen, ref);
    if (err)
        snprintf(why, cap, "piece %u: %s", idx, aq_strerror(err));
    return err;
}

/* ---- PARSE: observations, domains and rows of each piece held here ---- */

static uint64_t setup_hash(const frame_job *j) {
    return XXH3_64bits(j->q.setup, j->q.slen);
}

static int cache_put(frame_job *j, uint32_t idx, aq_chunk_digest digest, aq_csv_col *cols,
                     const aq_node_pcache_done *done, uint32_t nc) {
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen = aq_frame_key(key, j->q.name, j->q.nlen, idx, AQ_FRAME_PIECE);
    return aq_node_pcache_put_done(j->n->pcache, key, klen, digest, setup_hash(j), cols, done, nc,
                                   aq_node_now_us(j->n));
}

/* Whether this node holds column c of piece idx with exactly the bytes of that digest. */
static bool holds_chunk(frame_job *j, uint32_t idx, uint32_t c, aq_chunk_digest digest) {
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen = aq_frame_key(key, j->q.name, j->q.nlen, idx, c);
    aq_chunk_ref *ref;
    if (aq_node_get_live(j->n, key, klen, &ref) != 0)
        return false;
    bool same = aq_chunk_digest_equal(aq_chunk_ref_digest(ref), digest);
    aq_chunk_ref_release(ref);
    return same;
}

/* The columns PARSE kept for this piece, brought to the final types in memory, and in done those
 * it stored already; NULL when there are none, or one column needs the file's bytes again, or a
 * chunk PARSE stored is not here as it was (the frame was removed and parsed again meanwhile:
 * then every column is made again). */
static aq_csv_col *cached_cols(frame_job *j, uint32_t idx, aq_chunk_digest digest, uint32_t nc,
                               const aq_csv_type *types, aq_node_pcache_done *done) {
    uint8_t key[AQ_NODE_KEY_MAX];
    size_t klen = aq_frame_key(key, j->q.name, j->q.nlen, idx, AQ_FRAME_PIECE);
    aq_csv_col *cols =
        aq_node_pcache_take_done(j->n->pcache, key, klen, digest, setup_hash(j), nc, done);
    for (uint32_t c = 0; cols && c < nc; c++) {
        bool ok = done[c].stored
                      ? types[c] == AQ_CSV_T_STR && holds_chunk(j, idx, c, done[c].digest)
                      : cols[c].type == types[c] || aq_csv_col_widen(&cols[c], types[c]) == 0;
        if (!ok) {
            aq_csv_cols_free(cols, nc);
            cols = NULL;
        }
    }
    return cols;
}

/* Whether the string chunks of a piece may be stored now. Stored early, they sit in the store
 * beside the pieces still unparsed or unfinished, where FINISH stores a piece's chunks and then
 * drops the piece: so they are stored early only while the store stays under half of
 * memory_max with them (their copies from other nodes land alike), and otherwise wait for
 * FINISH as before, so that a frame that fits the cluster never fails for storing early. */
static bool early_room(frame_job *j, const aq_csv_col *cols, uint32_t nc) {
    uint64_t cap = j->n->members[j->n->self].conf->memory_max, need = 0;
    for (uint32_t c = 0; c < nc; c++)
        if (cols[c].type == AQ_CSV_T_STR)
            need += (uint64_t)cols[c].text.off[cols[c].rows] + 4ull * cols[c].rows;
    if (need == 0)
        return false;
    aq_chunk_stats st;
    if (aq_chunk_store_stats(j->n->store, &st) != 0)
        return false;
    return st.bytes + need <= cap / 2;
}

static void parse_work(frame_job *j, const aq_csv_setup *su) {
    uint32_t nc = su->ncols;
    aq_csv_obs *obs = calloc(nc ? nc : 1, sizeof *obs);
    aq_csv_strs *dom = calloc(nc ? nc : 1, sizeof *dom);
    uint32_t *rows = calloc(j->q.npieces + 1, sizeof *rows);
    bool *have = calloc(nc ? nc : 1, sizeof *have);
    bool *str = calloc(nc ? nc : 1, sizeof *str);
    char why[300] = "";
    int err = obs && dom && rows && have && str ? 0 : AQ_ENOMEM;
    /* Columns already string in the frame (the command's hint, then what this call's own pieces
     * show) are parsed as string at once: no types, no sketch, no domain. */
    for (uint32_t c = 0; !err && j->q.types && c < nc && c < j->q.ncols; c++)
        str[c] = j->q.types[c] == AQ_CSV_T_STR;
    /* The levels round: columns marked AQ_CSV_T_CAT are categorical in the frame, and some piece
     * held only numbers or times there; read them as categorical in every piece named and answer
     * their levels (the other columns as usual). Nothing is cached: FINISH re-parses what it must.
     */
    aq_csv_type *force = NULL;
    for (uint32_t c = 0; !err && j->q.types && c < nc && c < j->q.ncols; c++) {
        if (j->q.types[c] != AQ_CSV_T_CAT)
            continue;
        if (!force && !(force = calloc(nc, sizeof *force))) {
            err = AQ_ENOMEM;
            break;
        }
        force[c] = AQ_CSV_T_CAT;
    }
    /* and what this node's other PARSE jobs of the same parse found (see the pcache's notes) */
    uint64_t parse_id = 0, sh = setup_hash(j);
    if (j->q.blen == 8) {
        aq_rd rd = aq_rd_init(j->q.blobs, j->q.blen);
        parse_id = aq_rd_u64(&rd);
    }
    /* A string chunk is final as parsed (string is the widest type, and a forced type is the
     * type it was parsed as): it is stored and copied now, while the file still streams, rather
     * than in FINISH after it. Not in the levels round, which caches nothing. */
    aq_node_pcache_done *done = NULL;
    if (!err && !force) {
        j->out = calloc((size_t)j->q.npieces * nc + 1, sizeof *j->out);
        done = calloc(nc ? nc : 1, sizeof *done);
        if (!j->out || !done)
            err = AQ_ENOMEM;
    }
    for (uint32_t i = 0; !err && i < j->q.npieces; i++) {
        uint32_t idx;
        uint64_t line;
        aq_frame_req_piece(&j->q, i, &idx, &line);
        aq_chunk_ref *ref;
        if ((err = get_piece(j, idx, &ref, why, sizeof why)) != 0)
            break;
        aq_csv_piece pc = {(const char *)aq_chunk_ref_data(ref), aq_chunk_ref_len(ref), line,
                           idx == 0};
        aq_csv_col *cols = NULL;
        aq_csv_err pe = {0, ""};
        if (parse_id)
            aq_node_pcache_str_known(j->n->pcache, parse_id, sh, str, nc);
        err = aq_csv_parse(&pc, su, force, force ? NULL : str, &cols, &pe);
        aq_chunk_digest digest = aq_chunk_ref_digest(ref);
        aq_chunk_ref_release(ref);
        if (err) {
            snprintf(why, sizeof why, "%s", pe.msg[0] ? pe.msg : aq_strerror(err));
            break;
        }
        rows[i] = nc ? cols[0].rows : 0;
        for (uint32_t c = 0; !err && c < nc; c++) {
            if (have[c])
                aq_csv_obs_merge(&obs[c], &cols[c].obs);
            else
                obs[c] = cols[c].obs;
            have[c] = true;
            /* Only a column still categorical here needs its levels: one that is string here is
             * string in the whole frame (observations only widen as they merge). A domain past
             * AQ_FRAME_LEVELS_TEXT_MAX makes the column string too, so that the levels of every
             * column fit the calls that carry them. */
            if (aq_csv_obs_final(&obs[c]) != AQ_CSV_T_CAT) {
                str[c] = str[c] || aq_csv_obs_final(&obs[c]) == AQ_CSV_T_STR;
                aq_csv_strs_free(&dom[c]);
                continue;
            }
            aq_csv_strs d = {0}, u = {0};
            if ((err = aq_csv_domain_of(&cols[c], &d)) == 0 &&
                (err = aq_csv_domain_union(&dom[c], &d, &u)) == 0) {
                aq_csv_strs_free(&dom[c]);
                dom[c] = u;
                if (u.n && u.off[u.n] > AQ_FRAME_LEVELS_TEXT_MAX) {
                    obs[c].kind = AQ_CSV_T_STR;
                    str[c] = true;
                    aq_csv_strs_free(&dom[c]);
                }
            }
            aq_csv_strs_free(&d);
        }
        bool early = done && early_room(j, cols, nc);
        for (uint32_t c = 0; !err && done && c < nc; c++) {
            done[c].stored = early && cols[c].type == AQ_CSV_T_STR;
            if (done[c].stored &&
                (err = store_col(j, idx, c, &cols[c], &done[c].digest, why, sizeof why)) == 0) {
                aq_csv_col_free(&cols[c]);
                memset(&cols[c], 0, sizeof cols[c]);
            }
        }
        if (err || force || cache_put(j, idx, digest, cols, done, nc) != 0)
            aq_csv_cols_free(cols, nc);
        if (!err && parse_id)
            aq_node_pcache_str_learn(j->n->pcache, parse_id, sh, str, nc, aq_node_now_us(j->n));
    }
    aq_wr *w = &j->rep;
    if (err) {
        job_reply_err(w, err, why[0] ? why : aq_strerror(err));
    } else {
        aq_wr_u32(w, 0);
        aq_wr_str16(w, "", 0);
        aq_wr_u32(w, j->q.npieces);
        for (uint32_t i = 0; i < j->q.npieces; i++) {
            uint32_t idx;
            uint64_t line;
            aq_frame_req_piece(&j->q, i, &idx, &line);
            aq_wr_u32(w, idx);
            aq_wr_u32(w, rows[i]);
        }
        aq_wr_u32(w, 2 * nc);
        for (uint32_t c = 0; c < nc && w->ok; c++) {
            uint8_t *b1 = NULL, *b2 = NULL;
            size_t l1 = 0, l2 = 0;
            if (aq_csv_obs_encode(&obs[c], &b1, &l1) != 0 ||
                aq_csv_domain_encode(&dom[c], &b2, &l2) != 0)
                w->ok = false;
            aq_frame_blob_put(w, b1, l1);
            aq_frame_blob_put(w, b2, l2);
            free(b1);
            free(b2);
        }
    }
    for (uint32_t c = 0; dom && c < nc; c++)
        aq_csv_strs_free(&dom[c]);
    free(obs);
    free(dom);
    free(rows);
    free(have);
    free(str);
    free(force);
    free(done);
}

/* ---- FINISH: column chunks at the final types, stored here ---- */

static int finish_piece(frame_job *j, const aq_csv_setup *su, const aq_csv_type *types,
                        const aq_csv_strs *doms, uint32_t idx, uint64_t line, char *why,
                        size_t cap) {
    uint32_t nc = su->ncols;
    aq_chunk_ref *ref;
    int err = get_piece(j, idx, &ref, why, cap);
    if (err)
        return err;
    aq_node_pcache_done *done = calloc(nc ? nc : 1, sizeof *done);
    if (!done) {
        aq_chunk_ref_release(ref);
        return AQ_ENOMEM;
    }
    aq_csv_piece pc = {(const char *)aq_chunk_ref_data(ref), aq_chunk_ref_len(ref), line, idx == 0};
    aq_csv_col *cols = cached_cols(j, idx, aq_chunk_ref_digest(ref), nc, types, done);
    aq_csv_err pe = {0, ""};
    if (!cols) {
        memset(done, 0, nc * sizeof *done);
        err = aq_csv_parse(&pc, su, types, NULL, &cols, &pe);
    }
    aq_chunk_ref_release(ref);
    if (err) {
        free(done);
        snprintf(why, cap, "%s", pe.msg[0] ? pe.msg : aq_strerror(err));
        return err;
    }
    for (uint32_t c = 0; !err && c < nc; c++) {
        if (done[c].stored) /* PARSE stored it, on every replica */
            continue;
        if (cols[c].type == AQ_CSV_T_CAT && (err = aq_csv_col_recode(&cols[c], &doms[c])) != 0) {
            snprintf(why, cap, "column %u of piece %u: a level is missing from the merged domain",
                     c + 1, idx);
            break;
        }
        aq_chunk_digest d;
        err = store_col(j, idx, c, &cols[c], &d, why, cap);
    }
    aq_csv_cols_free(cols, nc);
    free(done);
    if (!err) {
        /* The piece's columns hold every value now: drop the piece here, at once, so the memory
         * it held takes the column chunks still to come instead of fresh pages. A FINISH that
         * fails later fails the parse, whose cleanup removes every key anyway. */
        uint8_t key[AQ_NODE_KEY_MAX];
        size_t klen = aq_frame_key(key, j->q.name, j->q.nlen, idx, AQ_FRAME_PIECE);
        (void)aq_chunk_rm(j->n->store, key, klen);
    }
    return err;
}

static void finish_work(frame_job *j, const aq_csv_setup *su) {
    uint32_t nc = su->ncols;
    char why[300] = "";
    int err = 0;
    aq_csv_type *types = calloc(nc ? nc : 1, sizeof *types);
    aq_csv_strs *doms = calloc(nc ? nc : 1, sizeof *doms);
    if (!types || !doms || j->q.ncols != nc || !j->q.types) {
        err = types && doms ? AQ_EPROTO : AQ_ENOMEM;
        goto done;
    }
    aq_rd r = aq_rd_init(j->q.blobs, j->q.blen);
    for (uint32_t c = 0; c < nc; c++) {
        if (j->q.types[c] > AQ_CSV_T_STR) {
            err = AQ_EPROTO;
            goto done;
        }
        types[c] = (aq_csv_type)j->q.types[c];
        const uint8_t *b;
        size_t bl;
        if ((err = aq_frame_blob_next(&r, &b, &bl)) != 0 ||
            (err = aq_csv_domain_decode(b, bl, &doms[c])) != 0)
            goto done;
    }
    if (!aq_rd_done(&r)) {
        err = AQ_EPROTO;
        goto done;
    }
    j->out = calloc((size_t)j->count * nc + 1, sizeof *j->out);
    if (!j->out) {
        err = AQ_ENOMEM;
        goto done;
    }
    for (uint32_t i = j->first; !err && i < j->first + j->count; i++) {
        uint32_t idx;
        uint64_t line;
        aq_frame_req_piece(&j->q, i, &idx, &line);
        err = finish_piece(j, su, types, doms, idx, line, why, sizeof why);
    }
done:
    if (err) {
        /* Stored chunks stay until the command removes the frame's keys. */
        job_reply_err(&j->rep, err, why[0] ? why : aq_strerror(err));
    } else {
        aq_wr_u32(&j->rep, 0);
        aq_wr_str16(&j->rep, "", 0);
        aq_wr_u32(&j->rep, 0);
        aq_wr_u32(&j->rep, 0);
    }
    for (uint32_t c = 0; doms && c < nc; c++)
        aq_csv_strs_free(&doms[c]);
    free(doms);
    free(types);
}

/* ---- SUMMARY: partial summaries of the column chunks held here ---- */

static void summary_work(frame_job *j) {
    uint32_t nc = j->q.ncols;
    char why[300] = "";
    int err = 0;
    aq_csv_sum *acc = calloc(nc ? nc : 1, sizeof *acc);
    bool *have = calloc(nc ? nc : 1, sizeof *have);
    if (!acc || !have)
        err = AQ_ENOMEM;
    for (uint32_t i = 0; !err && i < j->q.npieces; i++) {
        uint32_t idx;
        uint64_t line;
        aq_frame_req_piece(&j->q, i, &idx, &line);
        for (uint32_t c = 0; !err && c < nc; c++) {
            uint8_t key[AQ_NODE_KEY_MAX];
            size_t klen = aq_frame_key(key, j->q.name, j->q.nlen, idx, c);
            aq_chunk_ref *ref;
            if ((err = aq_node_get_live(j->n, key, klen, &ref)) != 0) {
                snprintf(why, sizeof why, "column %u of chunk %u: %s", c + 1, idx,
                         aq_strerror(err));
                break;
            }
            aq_csv_col col;
            memset(&col, 0, sizeof col);
            err = aq_csv_col_decode(aq_chunk_ref_data(ref), aq_chunk_ref_len(ref), &col);
            aq_chunk_ref_release(ref);
            if (err) {
                snprintf(why, sizeof why, "column %u of chunk %u does not decode: %s", c + 1, idx,
                         aq_strerror(err));
                break;
            }
            aq_csv_sum s;
            memset(&s, 0, sizeof s);
            err = aq_csv_sum_col(&col, &s);
            aq_csv_col_free(&col);
            if (err)
                break;
            if (have[c]) {
                err = aq_csv_sum_merge(&acc[c], &s);
                aq_csv_sum_free(&s);
            } else {
                acc[c] = s;
                have[c] = true;
            }
        }
    }
    aq_wr *w = &j->rep;
    if (err) {
        job_reply_err(w, err, why[0] ? why : aq_strerror(err));
    } else {
        aq_wr_u32(w, 0);
        aq_wr_str16(w, "", 0);
        aq_wr_u32(w, 0);
        aq_wr_u32(w, nc);
        for (uint32_t c = 0; c < nc && w->ok; c++) {
            uint8_t *b = NULL;
            size_t bl = 0;
            if (!have[c]) /* no chunk named: an empty partial of this column */
                acc[c].type = AQ_CSV_T_NONE;
            if (aq_csv_sum_encode(&acc[c], &b, &bl) != 0)
                w->ok = false;
            aq_frame_blob_put(w, b, bl);
            free(b);
        }
    }
    for (uint32_t c = 0; acc && c < nc; c++)
        if (have[c])
            aq_csv_sum_free(&acc[c]);
    free(acc);
    free(have);
}

static void frame_work(uv_work_t *w) {
    frame_job *j = w->data;
    aq_wr_init(&j->rep);
    if (j->method == AQ_M_FRAME_SUMMARY) {
        summary_work(j);
        return;
    }
    aq_csv_setup su;
    memset(&su, 0, sizeof su);
    int err = aq_csv_setup_decode(j->q.setup, j->q.slen, &su);
    if (err) {
        job_reply_err(&j->rep, err, "the parse setup does not decode");
        return;
    }
    /* PARSE and FINISH store versioned chunks: their version must be below the durable clock
     * ceiling. */
    if ((err = aq_hlc_ceiling_cover(&j->n->ceiling, j->version)) != 0) {
        job_reply_err(&j->rep, err, "the clock ceiling (data_dir/CLOCK) cannot be written");
        aq_csv_setup_free(&su);
        return;
    }
    if (j->method == AQ_M_FRAME_PARSE)
        parse_work(j, &su);
    else
        finish_work(j, &su);
    aq_csv_setup_free(&su);
}

static void job_free(frame_job *j) {
    for (size_t i = 0; i < j->nout; i++)
        free(j->out[i].mem);
    free(j->out);
    free(j->msg);
    aq_wr_free(&j->rep);
    free(j);
}

static void job_respond(frame_job *j);

/* A part is done (its copies stored or refused): the whole keeps the first failure's reply and
 * answers when the last part is done. */
static void part_done(frame_job *p) {
    frame_job *j = p->whole;
    aq_rd r = aq_rd_init(p->rep.p, p->rep.len);
    uint32_t status = p->rep.ok ? aq_rd_u32(&r) : (uint32_t)AQ_ENOMEM;
    if (!j->failed && (p->forward_err || status != 0 || !r.ok)) {
        j->failed = true;
        aq_wr_free(&j->rep);
        j->rep = p->rep;
        aq_wr_init(&p->rep);
        j->forward_err = p->forward_err;
        memcpy(j->forward_why, p->forward_why, sizeof j->forward_why);
    }
    job_free(p);
    if (--j->parts_left == 0) {
        if (!j->failed) {
            aq_wr_init(&j->rep);
            aq_wr_u32(&j->rep, 0);
            aq_wr_str16(&j->rep, "", 0);
            aq_wr_u32(&j->rep, 0);
            aq_wr_u32(&j->rep, 0);
        }
        job_respond(j);
    }
}

static void job_respond(frame_job *j) {
    if (j->whole) {
        part_done(j);
        return;
    }
    aq_wr *w = &j->rep;
    if (j->forward_err) {
        aq_wr_free(w);
        aq_wr_init(w);
        job_reply_err(w, j->forward_err,
                      j->forward_why[0] ? j->forward_why : "a column chunk was not copied");
    }
    if (!w->ok) {
        aq_wr_free(w);
        aq_rpc_buf none = {0};
        aq_rpc_respond(j->in, AQ_ENOMEM, none);
    } else {
        aq_rpc_buf b = {w->p, w->len, free, w->p};
        aq_rpc_respond(j->in, 0, b);
        aq_wr_init(w); /* the reply owns the bytes now */
    }
    aq_node_op_end(j->n);
    job_free(j);
}

static void job_unref(frame_job *j) {
    if (--j->refs == 0)
        job_respond(j);
}

static void release_lent(void *ctx) {
    job_unref(ctx);
}

/* Records a copy's failure: the first one is what the call answers. */
static void copy_failed(frame_job *j, int err, const char *sentence) {
    aq_logf(j->n->log, AQ_LOG_WARN, "copying a column chunk: %s", sentence);
    if (j->forward_err)
        return;
    j->forward_err = err;
    snprintf(j->forward_why, sizeof j->forward_why, "copying a column chunk: %s", sentence);
}

static void copy_done(void *ud, const aq_rpc_result *r) {
    frame_job *j = ud;
    if (r->err || r->status) {
        char buf[256];
        copy_failed(j, r->err ? r->err : r->status,
                    aq_rpc_result_describe(j->n->rpc, r, buf, sizeof buf));
    }
    job_unref(j);
}

static void frame_after(uv_work_t *w, int status);

/* Queues a part's work; one that cannot be queued is done at once, failed. */
static void queue_part(frame_job *p) {
    int err = uv_queue_work(p->n->loop, &p->work, frame_work, frame_after);
    if (err) {
        aq_wr_init(&p->rep);
        frame_after(&p->work, err);
    }
}

static void frame_after(uv_work_t *w, int status) {
    frame_job *j = w->data;
    aq_node *n = j->n;
    if (j->next) { /* the next part encodes while this one's copies travel */
        frame_job *nx = j->next;
        j->next = NULL;
        queue_part(nx);
    }
    if (status) {
        aq_wr_free(&j->rep);
        aq_wr_init(&j->rep);
        job_reply_err(&j->rep, status, "the node could not run the work");
    }
    j->refs = 1;
    for (size_t i = 0; i < j->nout && !status; i++) {
        out_chunk *o = &j->out[i];
        uint32_t reps[n->nmembers];
        size_t r = aq_node_replicas(n, o->key, o->klen, reps);
        for (size_t k = 0; k < r; k++) {
            size_t m = reps[k];
            if (m == n->self || !aq_node_member_live(n, m) || !n->members[m].peer)
                continue;
            j->refs += 2; /* the call's outcome and the lent request bytes */
            aq_rpc_buf b = {o->msg, o->len, release_lent, j};
            int err = aq_rpc_call(n->rpc, n->members[m].peer, AQ_M_PUT, b,
                                  AQ_NODE_CALL_TIMEOUT_US(n), copy_done, j);
            if (err) {
                j->refs -= 1;
                char why[200];
                snprintf(why, sizeof why, "cannot call %s: %s", n->members[m].conf->name,
                         aq_strerror(err));
                copy_failed(j, err, why);
            }
        }
    }
    job_unref(j);
}

static void handle_frame(void *ud, aq_rpc_incoming *in) {
    aq_node *n = ud;
    n->handled_total++;
    if (n->stopping) {
        aq_rpc_buf none = {0};
        aq_rpc_respond(in, AQ_ECLOSED, none);
        return;
    }
    frame_job *j = calloc(1, sizeof *j);
    int err = j ? 0 : AQ_ENOMEM;
    if (j) {
        j->n = n;
        j->in = in;
        j->method = aq_rpc_incoming_method(in);
        j->msg = aq_rpc_incoming_take(in, &j->len);
        err = j->msg ? aq_frame_req_decode(j->msg, j->len, &j->q) : AQ_EPROTO;
        if (!err && !aq_frame_name_ok(j->q.name, j->q.nlen))
            err = AQ_EKEY;
        /* A frame's columns are bounded like a setup's: a request may not make us allocate more. */
        if (!err && j->q.ncols > AQ_FRAME_COLS_MAX)
            err = AQ_EPROTO;
    }
    if (err) {
        if (j)
            free(j->msg);
        free(j);
        aq_rpc_buf none = {0};
        aq_rpc_respond(in, err, none);
        return;
    }
    aq_node_op_begin(n);
    j->work.data = j;
    j->version = aq_node_next_version(n);
    j->first = 0;
    j->count = j->q.npieces;
    uint32_t parts = j->method == AQ_M_FRAME_FINISH
                         ? (j->q.npieces < FINISH_PARTS ? j->q.npieces : FINISH_PARTS)
                         : 1;
    if (parts > 1) {
        /* The whole answers when its parts are done; it runs no work of its own. The parts run
         * one after another (each queues the next when its work is done), so a part's copies
         * travel while the next part encodes. */
        aq_wr_init(&j->rep);
        frame_job *head = NULL, **tail = &head;
        uint32_t made = 0;
        for (uint32_t k = 0, at = 0; k < parts; k++) {
            uint32_t cnt = j->q.npieces / parts + (k < j->q.npieces % parts);
            frame_job *p = calloc(1, sizeof *p);
            if (!p)
                break;
            p->n = n;
            p->method = j->method;
            p->version = j->version;
            p->q = j->q; /* points into the whole's message, which lives until it answers */
            p->first = at;
            p->count = cnt;
            p->whole = j;
            p->work.data = p;
            at += cnt;
            *tail = p;
            tail = &p->next;
            made++;
        }
        if (made < parts) {
            while (head) {
                frame_job *nx = head->next;
                free(head);
                head = nx;
            }
            job_reply_err(&j->rep, AQ_ENOMEM, "out of memory");
            job_respond(j);
            return;
        }
        j->parts_left = (int)parts;
        queue_part(head);
        return;
    }
    err = uv_queue_work(n->loop, &j->work, frame_work, frame_after);
    if (err) {
        aq_wr_init(&j->rep);
        frame_after(&j->work, err);
    }
}

void aq_node_register_frame(aq_node *n) {
    aq_rpc_handle(n->rpc, AQ_M_FRAME_PARSE, handle_frame, n);
    aq_rpc_handle(n->rpc, AQ_M_FRAME_FINISH, handle_frame, n);
    aq_rpc_handle(n->rpc, AQ_M_FRAME_SUMMARY, handle_frame, n);
}
