/* cli_xfer: put and get of one value (cli_xfer.h), the engine under the put and get commands.
 *
 * Up to one chunk (4 MiB) a value is stored as is under its key; a larger one as parts under
 * internal keys, sent several at once, plus a manifest under its key stored last
 * (cli_manifest.c), so a reader never finds a manifest naming parts not yet stored. Transfers
 * stream: at most chunks_inflight chunks of a value are in memory (each perhaps twice, ours and
 * the rpc's copy), never the whole value (except where the caller asked for a buffer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aq_io.h"
#include "aq_xxh.h"
#include "cli.h"
#include "cli_xfer.h"

#define CHUNK    AQ_NODE_CHUNK_MAX
#define HEAD_MAX AQ_PUT_HEAD_MAX
/* The most chunks of one value in flight, whatever chunks_inflight asks. */
#define MAX_INFLIGHT 32

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

/* Block of the fused hash below: small enough to stay in the first-level cache between its two
 * passes. */
#define HASH_BLOCK (32u << 10)

/* The part's own digest (returned) and the whole value's (fed into whole), in one pass over the
 * part's bytes: each block is hashed twice while cached instead of reading 4 MiB from memory
 * twice. part is scratch state. */
static aq_node_digest digest_both(XXH3_state_t *whole, XXH3_state_t *part, const uint8_t *p,
                                  size_t n) {
    XXH3_128bits_reset(part);
    for (size_t off = 0; off < n; off += HASH_BLOCK) {
        size_t b = n - off < HASH_BLOCK ? n - off : HASH_BLOCK;
        XXH3_128bits_update(part, p + off, b);
        XXH3_128bits_update(whole, p + off, b);
    }
    return digest_final(part);
}

/* The chunks of one value in flight: the caller's chunks_inflight, else dflt. */
static size_t inflight_of(const cli *c, size_t dflt) {
    size_t n = c->chunks_inflight ? c->chunks_inflight : dflt;
    return n > MAX_INFLIGHT ? MAX_INFLIGHT : n;
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
    k->lend_ok = true;
    k->deadline_off = aq_node_put_req_deadline_off(klen);
    k->e2e_tail = vlen;
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
        rc = cli_prev_fail(c, k, malformed, note);
    }
    cli_kop_free(k);
    return rc;
}

typedef struct put_src {
    int fd;             /* -1: buf */
    const uint8_t *buf; /* with fd -1: the value, len bytes, off taken so far */
    size_t len, off;
    uint8_t *pre[2]; /* buffers read ahead while deciding small or large */
    size_t prelen[2];
    int npre, used;
    uint64_t total; /* bytes taken */
    bool watched;   /* a regular file: st is how it was before its first byte was read */
    struct stat st;
} put_src;

/* A file that changes while it is read (truncated, rewritten in place) would give a value that
 * was never the file's at any one moment, stored with digests that match it: a truncation mid-way
 * would even store a silently shorter value. So a regular file's size and modification time are
 * noted before the first byte is read and compared once every byte is in, before the put is made
 * visible. Not the change time: a rename, chmod or unlink moves it without touching the bytes. */
static void src_watch(put_src *s) {
    s->watched = s->fd >= 0 && fstat(s->fd, &s->st) == 0 && S_ISREG(s->st.st_mode);
}

bool cli_file_changed(int fd, const struct stat *before) {
    struct stat now;
    return fstat(fd, &now) != 0 || now.st_size != before->st_size ||
           now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != before->st_mtim.tv_nsec;
}

static bool src_changed(const put_src *s) {
    return s->watched && cli_file_changed(s->fd, &s->st);
}

/* Fills dst with up to cap bytes of input; fewer only at its end. 0 or a negated errno. */
static int src_fill(put_src *s, uint8_t *dst, size_t cap, size_t *got) {
    int err = 0;
    if (s->fd < 0) {
        *got = s->len - s->off < cap ? s->len - s->off : cap;
        memcpy(dst, s->buf + s->off, *got);
        s->off += *got;
    } else {
        err = aq_io_read_full(s->fd, dst, cap, got);
    }
    s->total += *got;
    return err;
}

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
    int rerr = src_fill(s, m + HEAD_MAX, CHUNK, &got);
    ssize_t r = rerr ? rerr : (ssize_t)got;
    if (r < 0) {
        free(m);
        return (int)r;
    }
    *mem = m;
    *len = (size_t)r;
    return 0;
}

static int put_large(cli *c, const char *key, put_src *src, const char *name, uint64_t size_hint) {
    size_t klen = strlen(key);
    cli_manifest m = {0};
    m.put_id = cli_random_u64();
    m.chunk_size = CHUNK;
    uint32_t cap = 0;
    XXH3_state_t *st = XXH3_createState();
    XXH3_state_t *ps_state = XXH3_createState();
    size_t nslot = inflight_of(c, CLI_INFLIGHT);
    put_slot slots[MAX_INFLIGHT];
    memset(slots, 0, sizeof slots);
    if (!st || !ps_state) {
        XXH3_freeState(st);
        XXH3_freeState(ps_state);
        return cli_fail(c, CLI_ERROR, "out of memory");
    }
    XXH3_128bits_reset(st);
    cli_progress pg;
    cli_progress_begin(c, &pg, "put", size_hint);
    pg.on &= !c->fail_sink; /* a batch worker: the batch shows progress */
    bool eof = false;
    int rc = 0;
    char why[512] = "";
    for (;;) {
        for (size_t s = 0; s < nslot && !eof && !rc; s++) {
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
            aq_node_digest d = digest_both(st, ps_state, mem + HEAD_MAX, len);
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
        for (size_t s = 0; s < nslot; s++) {
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
        for (size_t s = 0; s < nslot; s++)
            busy |= slots[s].busy;
        if (!busy && (eof || rc))
            break;
        if (!any)
            cli_step(c);
    }
    cli_progress_end(&pg);
    /* Every part is acknowledged (or the put failed already): the manifest, which makes the value
     * visible, goes only if the file held still. Its change explains a failure best, too. */
    if (src_changed(src)) {
        rc = CLI_ERROR;
        snprintf(why, sizeof why, CLI_CHANGED_FMT, name);
    }
    m.digest = digest_final(st);
    XXH3_freeState(st);
    XXH3_freeState(ps_state);
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
            cli_rm_parts(c, key, &pv.m, pv.m.nparts, "the old value");
        cli_prev_free(&pv);
    }
    if (rc) {
        if (why[0])
            cli_fail(c, rc, "%s", why);
        /* While a replica may still hold the new manifest its parts stay, so the key never names
         * missing parts (unreachable garbage at worst). */
        if (new_gone)
            cli_rm_parts(c, key, &m, m.nparts, "this failed put");
        else
            cli_warn(c,
                     "warning: the %u parts of this failed put were kept, since a replica may "
                     "still name them",
                     m.nparts);
    }
    for (size_t s = 0; s < nslot; s++)
        cli_kop_reset(&slots[s].k);
    cli_manifest_free(&m);
    return rc;
}

/* ---- get ---- */

/* Where a get's value goes: a file descriptor, a path opened once the value is found (so a get
 * that finds nothing leaves no file behind), or a buffer. */
typedef struct get_sink {
    cli *c;
    int fd; /* -1 until opened, for a path */
    const char *name;
    bool use_path, opened;
    cli_outfile o;
    bool to_buf;
    uint8_t *buf;
    size_t cap, len;
} get_sink;

/* Before the first byte: total is the value's size. Returns the exit code. */
static int sink_begin(get_sink *s, uint64_t total) {
    if (s->use_path) {
        int rc = cli_outfile_open(s->c, s->name, &s->o);
        if (rc)
            return rc;
        s->opened = true;
        s->fd = s->o.fd;
        /* A large value's file gets its blocks up front: the parts' writes then fill allocated
         * blocks instead of each reserving its own, and a full disk is said before any part is
         * fetched. The temporary file goes if the get fails, so its length never misleads. */
        if (s->o.tmp && total > CHUNK && total <= (uint64_t)INT64_MAX &&
            fallocate(s->fd, 0, 0, (off_t)total) != 0 && (errno == ENOSPC || errno == EDQUOT))
            return cli_fail(s->c, CLI_ERROR, "no room for %llu bytes next to %s: %s",
                            (unsigned long long)total, s->name, strerror(errno));
        if (!s->o.path)
            s->name = "stdout";
    } else if (s->to_buf) {
        if (total > SIZE_MAX - 1)
            return cli_fail(s->c, CLI_ERROR, "the value (%llu bytes) does not fit in memory",
                            (unsigned long long)total);
        s->buf = malloc(total ? (size_t)total : 1);
        if (!s->buf)
            return cli_fail(s->c, CLI_ERROR, "out of memory for a value of %llu bytes",
                            (unsigned long long)total);
        s->cap = (size_t)total;
    }
    return 0;
}

static int sink_write(get_sink *s, const void *p, size_t n) {
    if (s->to_buf) {
        if (n > s->cap - s->len)
            return cli_fail(s->c, CLI_ERROR, "the value is longer than its manifest says");
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        return 0;
    }
    int err = aq_io_write_all(s->fd, p, n);
    if (err)
        return cli_fail(s->c, CLI_ERROR, "cannot write %s: %s", s->name, strerror(-err));
    s->len += n;
    return 0;
}

/* A part of a large get: fetched, then (in order, after its digest went into the whole value's)
 * written by libuv's threadpool while the loop keeps receiving the next parts. The slot is free
 * again once its write completed. */
typedef struct get_slot {
    cli_kop *k;
    uv_fs_t fs;
    const uint8_t *v; /* the bytes still to write (inside k->rep) */
    size_t left;
    int64_t off;  /* where they go; -1: the fd's own position (not seekable) */
    bool counted; /* in nwriting */
    bool writing, written;
    int werr;
    cli *c;
} get_slot;

static void slot_write(get_slot *gs, int fd);

static void slot_wrote(uv_fs_t *req) {
    get_slot *gs = req->data;
    ssize_t r = req->result;
    int fd = (int)req->file;
    uv_fs_req_cleanup(req);
    if (r < 0) {
        gs->werr = (int)r;
    } else if ((size_t)r < gs->left) {
        /* A short write (a pipe): the rest goes next. */
        gs->v += r;
        gs->left -= (size_t)r;
        if (gs->off >= 0)
            gs->off += r;
        slot_write(gs, fd);
        return;
    }
    gs->writing = false;
    gs->written = true;
}

static void slot_write(get_slot *gs, int fd) {
    gs->writing = true;
    gs->fs.data = gs;
    uv_buf_t b = uv_buf_init((char *)gs->v, (unsigned)gs->left);
    int e = uv_fs_write(&gs->c->loop, &gs->fs, fd, &b, 1, gs->off, slot_wrote);
    if (e) {
        gs->werr = e;
        gs->writing = false;
        gs->written = true;
    }
}

static int get_large(cli *c, const char *key, const cli_manifest *m, get_sink *o) {
    size_t klen = strlen(key);
    size_t nslot = inflight_of(c, CLI_GET_INFLIGHT);
    get_slot slot[MAX_INFLIGHT];
    memset(slot, 0, sizeof slot);
    /* started: fetches begun; hashed: parts checked and handed to their write, in order; freed:
     * slots whose write completed, in order. */
    uint32_t started = 0, hashed = 0, freed = 0;
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return cli_fail(c, CLI_ERROR, "out of memory");
    XXH3_128bits_reset(st);
    /* A regular file takes each part at its offset while others are still being written; a
     * pipe or device takes them one after the other. */
    struct stat sb;
    off_t base = o->to_buf ? -1 : lseek(o->fd, 0, SEEK_CUR);
    /* O_APPEND (a shell's >>) would put every pwrite at the end, in completion order. */
    int fl = o->to_buf ? -1 : fcntl(o->fd, F_GETFL);
    bool seekable = !o->to_buf && base >= 0 && fl >= 0 && !(fl & O_APPEND) &&
                    fstat(o->fd, &sb) == 0 && S_ISREG(sb.st_mode);
    size_t nwriting = 0;
    uint64_t off = 0;
    cli_progress pg;
    cli_progress_begin(c, &pg, "get", m->total);
    pg.on &= !c->fail_sink; /* a batch worker: the batch shows progress */
    int rc = 0;
    while (freed < m->nparts && !rc) {
        bool moved = false;
        while (started < m->nparts && started - freed < nslot) {
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
            get_slot *gs = &slot[started % nslot];
            memset(gs, 0, sizeof *gs);
            gs->k = k;
            gs->c = c;
            started++;
        }
        if (rc)
            break;
        get_slot *gs = &slot[hashed % nslot];
        if (hashed < started && gs->k->done && (seekable || nwriting == 0)) {
            cli_kop *k = gs->k;
            uint8_t kind;
            aq_node_digest d;
            const uint8_t *v;
            size_t vlen;
            if (k->err) {
                rc = k->err == AQ_ENOTFOUND
                         ? cli_fail(c, CLI_ERROR, "part %u of %u is missing on every live node",
                                    hashed, m->nparts)
                         : cli_fail(c, cli_exit_code(k->err), "part %u: %s", hashed, k->msg);
            } else if (aq_node_get_rep_decode(k->rep, k->replen, &kind, &d, &v, &vlen) != 0 ||
                       vlen != m->parts[hashed].size) {
                rc = cli_fail(c, CLI_ERROR, "part %u from %s has the wrong size", hashed,
                              c->conf->nodes[k->node].name);
            } else {
                XXH3_128bits_update(st, v, vlen);
                if (o->to_buf) {
                    rc = sink_write(o, v, vlen);
                    gs->written = true;
                } else {
                    gs->v = v;
                    gs->left = vlen;
                    gs->off = seekable ? (int64_t)((uint64_t)base + off) : -1;
                    nwriting++;
                    gs->counted = true;
                    slot_write(gs, o->fd);
                }
                off += vlen;
                cli_progress_add(&pg, vlen);
            }
            hashed++;
            moved = true;
        }
        while (freed < hashed && slot[freed % nslot].written) {
            get_slot *fs = &slot[freed % nslot];
            if (fs->counted)
                nwriting--;
            if (fs->werr && !rc)
                rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o->name, strerror(-fs->werr));
            cli_kop_free(fs->k);
            fs->k = NULL;
            freed++;
            moved = true;
        }
        if (!moved)
            cli_step(c);
    }
    /* After a failure: calls and writes still in flight use the slots; wait for them. */
    for (size_t s = 0; s < nslot; s++) {
        get_slot *gs = &slot[s];
        if (!gs->k)
            continue;
        cli_kop_wait(gs->k);
        while (gs->writing)
            cli_step(c);
        cli_kop_free(gs->k);
        gs->k = NULL;
    }
    cli_progress_end(&pg);
    if (!rc && seekable) {
        o->len += off;
        /* The fd ends where sequential writes would have left it. */
        if (lseek(o->fd, base + (off_t)off, SEEK_SET) < 0)
            rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o->name, strerror(errno));
    } else if (!rc && !o->to_buf) {
        o->len += off;
    }
    aq_node_digest whole = digest_final(st);
    XXH3_freeState(st);
    if (!rc && (whole.hi != m->digest.hi || whole.lo != m->digest.lo))
        rc = cli_fail(c, CLI_ERROR, "the reassembled value does not match its digest");
    return rc;
}

/* ---- the entry points ---- */

static int put_run(cli *c, const char *key, put_src *src, const char *name, uint64_t hint) {
    int rc = cli_check_key(c, key);
    if (rc)
        return rc;
    cli_wrep_reset(c);
    c->xfer_bytes = 0;
    src_watch(src);
    for (int i = 0; i < 2; i++) {
        uint8_t *mem = malloc(HEAD_MAX + CHUNK);
        if (!mem) {
            rc = cli_fail(c, CLI_ERROR, "out of memory");
            goto out;
        }
        src->pre[src->npre] = mem;
        size_t got = 0;
        int rerr = src_fill(src, mem + HEAD_MAX, CHUNK, &got);
        if (rerr) {
            rc = cli_fail(c, CLI_ERROR, "cannot read %s: %s", name, strerror(-rerr));
            goto out;
        }
        src->prelen[src->npre++] = got;
        if (got < CHUNK)
            break;
    }
    if (src->npre == 1 || src->prelen[1] == 0) {
        /* One chunk: the value itself under its key, once it is known to be the file's. */
        if (src_changed(src)) {
            rc = cli_fail(c, CLI_ERROR, CLI_CHANGED_FMT, name);
            goto out;
        }
        cli_prev pv;
        (void)cli_prev_read(c, key, &pv);
        uint8_t *mem = src->pre[0];
        src->pre[0] = NULL;
        bool gone;
        rc = put_one(c, key, mem, src->prelen[0], AQ_KIND_VALUE, &pv, &gone);
        if (!rc && pv.have_manifest && cli_prev_lost(c, key, &pv))
            cli_rm_parts(c, key, &pv.m, pv.m.nparts, "the old value");
        cli_prev_free(&pv);
    } else {
        rc = put_large(c, key, src, name, hint);
    }
    if (!rc)
        c->xfer_bytes = src->total;
out:
    for (int i = 0; i < 2; i++)
        free(src->pre[i]);
    return rc;
}

int cli_xfer_put_fd(cli *c, const char *key, int fd, const char *name, uint64_t size_hint) {
    put_src src = {.fd = fd};
    return put_run(c, key, &src, name, size_hint);
}

int cli_xfer_put_buf(cli *c, const char *key, const void *buf, size_t len) {
    put_src src = {.fd = -1, .buf = buf, .len = len};
    return put_run(c, key, &src, "the buffer", len);
}

static int get_run(cli *c, const char *key, get_sink *s) {
    int rc = cli_check_key(c, key);
    if (rc)
        return rc;
    c->xfer_bytes = 0;
    cli_kop *k = cli_kop_new(c);
    if (!k)
        return cli_fail(c, CLI_ERROR, "out of memory");
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    int err = cli_fetch_repair(c, k, key, strlen(key), &kind, &d, &v, &vlen);
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
    rc = sink_begin(s, kind == AQ_KIND_MANIFEST ? m.total : vlen);
    if (!rc && kind == AQ_KIND_VALUE)
        rc = sink_write(s, v, vlen);
    else if (!rc)
        rc = get_large(c, key, &m, s);
    if (kind == AQ_KIND_MANIFEST)
        cli_manifest_free(&m);
    cli_kop_free(k);
    if (!rc)
        c->xfer_bytes = s->len;
    return rc;
}

int cli_xfer_get_fd(cli *c, const char *key, int fd, const char *name) {
    get_sink s = {.c = c, .fd = fd, .name = name};
    return get_run(c, key, &s);
}

int cli_xfer_get_path(cli *c, const char *key, const char *path, bool durable) {
    get_sink s = {.c = c, .fd = -1, .name = path, .use_path = true};
    int rc = get_run(c, key, &s);
    int rc2 = s.opened ? cli_outfile_close(c, &s.o, rc == 0, durable) : 0;
    return rc ? rc : rc2;
}

int cli_xfer_get_buf(cli *c, const char *key, uint8_t **out, size_t *len) {
    get_sink s = {.c = c, .fd = -1, .name = "the buffer", .to_buf = true};
    int rc = get_run(c, key, &s);
    if (rc || s.len == 0) {
        free(s.buf);
        s.buf = NULL;
        s.len = 0;
    }
    *out = s.buf;
    *len = s.len;
    return rc;
}
