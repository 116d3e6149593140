/* cli: the client core shared by the `aquifer` command and libaquifer (aquifer.h), and the
 * pieces only the command has (status, cluster up and down, put -r and get -r), outside the
 * library.
 *
 * One invocation = one `cli` context: the loaded config, and (for commands that talk to the
 * cluster) a transient rpc endpoint on an ephemeral port of every interface, driven by a libuv loop
 * on the main thread. The command is never a member: nodes learn of it only from its calls.
 * Commands are synchronous from the user's view; inside, several calls run at once and the loop
 * runs until the ones waited for have ended. Every call ends with exactly one outcome (the rpc
 * contract), so every wait ends.
 *
 * Exit codes: CLI_OK 0, CLI_USAGE 1, CLI_NOTFOUND 2, CLI_UNREACH 3 (cluster unreachable or timed
 * out), CLI_ERROR 4. Every failure is one sentence "WHAT: why", captured in the context by cli_fail
 * (fail_msg, fail_err); the command prints it on stderr as "aquifer: WHAT: why", the library
 * (c->quiet) hands it to its caller. Warnings go through cli_warn the same way: nothing in this
 * layer writes to stderr itself.
 *
 * These files are the client core of libaquifer (aquifer.h); the command adds its printing parts.
 */
#ifndef AQ_CLI_H
#define AQ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "aq_frame_meta.h"
#include "aq_frame_proto.h"
#include "aq_node_config.h"
#include "aq_node_proto.h"
#include "aq_rpc.h"
#include "aq_rpc_uv.h"

enum { CLI_OK = 0, CLI_USAGE = 1, CLI_NOTFOUND = 2, CLI_UNREACH = 3, CLI_ERROR = 4 };

#define CLI_INFLIGHT 4 /* chunk transfers in flight at once: memory stays a few chunks */
/* A large get's chunks in flight at once. Fewer than a put's: the chunks arrive interleaved on
 * the nodes' pipes, and each more in flight is 4 MiB more of buffers the receive copy and the
 * digests pass through; two keep a fetch going while the previous chunk is checked and written. */
#define CLI_GET_INFLIGHT 2

typedef struct cli_kop cli_kop;

/* Options of the frame commands (parse, head). NULL / false: not given. */
typedef struct cli_frame_opts {
    const char *name, *sep, *header, *na, *types, *rows, *encoding;
    const char *quote, *escape, *comment, *skip, *decimal;
    bool fill, strict;
} cli_frame_opts;

typedef struct cli {
    const char *what; /* "get KEY": starts every error sentence */
    /* The whole command's what where what names one item of it (a batch's cli): for notes about
     * the command, not the item (cli_watch.c). NULL: what. */
    const char *cmd_what;
    aq_node_config *conf;
    char *conf_path; /* the file it came from; NULL for the built-in default */
    bool json;
    const char *out_path;     /* get -o */
    bool recursive;           /* put -r, get -r */
    bool fsync;               /* get --fsync: the output made durable before it is renamed */
    unsigned chunks_inflight; /* chunks of one value in flight at once; 0: CLI_INFLIGHT */
    uint64_t xfer_bytes;      /* bytes the last put or get moved (cli_xfer.h) */
    /* Where cli_fail puts its sentence instead of printing it (a batch's worker), or NULL. */
    char *fail_sink;
    size_t fail_sink_cap;
    cli_frame_opts fo;
    /* The endpoint (cli_open). */
    uv_loop_t loop;
    bool loop_open;
    aq_rpc_uv *uv;
    aq_rpc *rpc;
    aq_rpc_peer **peers;
    uint64_t *seeds;
    size_t inflight; /* calls started and not yet ended */
    cli_kop *retry;  /* key operations waiting to be sent to their next candidate */
    /* Liveness from the last probe (cli_probe): nodes that answered STATUS. */
    bool *live;
    /* Lower bounds of (node i's monotonic clock - ours), µs, from its STATUS replies: a write's
     * deadline is sent in the node's own clock (aq_node_proto.h). */
    int64_t *mono_off;
    bool *mono_have;
    /* Node i takes and sends values as end-to-end tails (AQ_NODE_FEATURE_TAILS, from its STATUS
     * reply): only then do its PUTs and GETs go by aq_rpc_call_e2e. */
    bool *tails;
    /* Node i's config order as ours (from its STATUS reply): theirs[i][j] is our index of the
     * node it lists at j, CLI_NO_NODE for one we do not know; NULL (an older build, or no reply)
     * when unknown. ntheirs[i] entries. A PUT reply names its holders by the coordinator's
     * indexes. */
    uint16_t **theirs;
    uint16_t *ntheirs;
    unsigned min_copies; /* --min-copies; 0: the config's min_copies */
    /* What the writes of a put or rm reached (cli_wrep_*): fewest copies of any chunk, wanted,
     * and the replicas that missed some chunk. */
    bool wrep_any;
    unsigned wrep_copies, wrep_wanted;
    bool *wrep_missing;
    struct cli_probe *probe;
    uint64_t probe_ms;       /* the last probe's timeout, for messages */
    struct cli_watch *watch; /* cli_watch.c */
    /* The last failure (cli_fail): its sentence without the "aquifer: " prefix, its aq error
     * code, and, with quiet (the library), nothing printed. */
    bool quiet;
    char fail_msg[1024];
    int fail_err;
    /* Where warnings go when quiet: NULL drops them. */
    void (*on_warn)(void *ud, const char *sentence);
    void *warn_ud;
} cli;

/* ---- cli_watch.c ---- */
/* How long the watch waits for the other nodes' view of a node that went silent. */
#define CLI_WATCH_ASK_MS 1500
/* Started by cli_open: calls pending to a node the other nodes call down are canceled, so they
 * move on to their next candidates, and the node is left out of the rest of the command. */
int cli_watch_start(cli *c);
void cli_watch_stop(cli *c); /* before the endpoint closes */
void cli_watch_free(cli *c); /* after the loop closed */

/* ---- cli_out.c ---- */
/* "VERB ARG" (or VERB alone when arg is NULL) into dst, cut at cap - 1 bytes like snprintf: the
 * name of an operation, set once per key, so without printf's parsing. cap > 0. */
void cli_what_set(char *dst, size_t cap, const char *verb, const char *arg);
/* Records the failure's sentence (c->what first) in c and, unless c->quiet, prints it. code is an
 * exit code (CLI_*) or an aq error (negative); returns the exit code. c may be NULL (printed). */
int cli_fail(cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note that is not a failure ("warning: ..." or what a cleanup did): "aquifer: WHAT: ..." on
 * stderr, or to c->on_warn when quiet. */
void cli_warn(cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The aq error of an exit code when no closer one is known. */
int cli_exit_err(int exit_code);
int cli_exit_code(int err); /* an aq error -> exit code */
bool cli_utf8_ok(const void *p, size_t n);
/* Makes s fit for a terminal and for a message a program decodes as UTF-8: each control byte, and
 * each byte of a sequence that is not UTF-8, becomes '?'. */
void cli_text_safe(char *s);
/* Writes the n bytes of s to f as cli_text_safe would show them. */
void cli_put_text(FILE *f, const char *s, size_t n);
/* The rule a user key breaks, with where: NULL when key[0..n) is a valid key (1 to 255 bytes of
 * UTF-8 without control characters), else buf holding "a key is ...; this one is 300 bytes" (or
 * "is empty", "has a control character, 0x0a, at byte 4", "is not valid UTF-8 from byte 2"). */
const char *cli_key_why(const void *key, size_t n, char *buf, size_t cap);
void cli_json_str(FILE *f, const void *p, size_t n); /* a JSON string literal, quotes included */
void cli_digest_hex(aq_node_digest d, char out[33]); /* as `xxhsum -H2` prints it */
void cli_human_size(uint64_t n, char *buf, size_t cap);
void cli_human_ms(uint64_t ms, char *buf, size_t cap);
typedef struct cli_progress {
    bool on;
    uint64_t total; /* 0: unknown */
    uint64_t done;
    int last_shown;
    const char *label;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, uint64_t total);
/* As cli_progress_start, and never shown when c is quiet (the library). */
void cli_progress_begin(const cli *c, cli_progress *p, const char *label, uint64_t total);
void cli_progress_add(cli_progress *p, uint64_t n);
void cli_progress_end(cli_progress *p);

/* ---- cli_conf.c ---- */
/* Loads -c FILE, else $AQUIFER_CONF, else ./cluster.conf, else the built-in default. */
int cli_conf_load(cli *c, const char *opt_path);

/* ---- cli_client.c ---- */
int cli_open(cli *c);
void cli_close(cli *c);
/* Runs the loop once (blocking until some event) and resends operations waiting to retry. */
void cli_step(cli *c);
void cli_step_nowait(cli *c); /* the same without waiting: only what is ready now */

/* A key operation: one request sent to candidate nodes in turn until one gives a final answer. */
struct cli_kop {
    cli *c;
    uint16_t method;
    uint8_t *req; /* the encoded request */
    size_t reqlen;
    void *req_mem; /* what to free for req, when req points inside it (else req is freed) */
    /* lend_ok: req may be lent to rpc rather than copied (a large request set up once, through
     * cli_kop_reset only); lend: the holder once lent, freed when rpc and k let go of it. */
    bool lend_ok;
    struct cli_lend *lend;
    size_t ncand, pos;     /* the candidates are cand[0..ncand); pos: the one asked last */
    bool next_on_notfound; /* GET/STAT: ask the next candidate when one does not have it */
    bool verify;           /* GET: check the reply's value against its digest (and `want`) */
    bool have_want;
    aq_node_digest want;
    uint64_t timeout_ms;
    size_t deadline_off; /* PUT, RM: where each attempt's deadline goes in req; 0: none */
    /* PUT: the value's bytes, at the end of req, which the node checks against the digest the
     * request carries: rpc sends them as the call's end-to-end tail (aq_rpc_call_e2e), with only
     * their frame headers checksummed. 0: none (every byte checksummed). */
    size_t e2e_tail;
    bool again;            /* a failed digest check was retried on the same node (cli_client.c) */
    uint32_t corrupt_from; /* 1 + the node whose GET reply failed its digest check; 0: none */
    /* Outcome. */
    bool done;
    int err;      /* 0, or the error of the last candidate tried */
    size_t node;  /* who answered */
    uint8_t *rep; /* reply bytes (malloc'd, owned) */
    size_t replen;
    char msg[384]; /* the failure, one clause naming the node */
    bool any_notfound;
    void (*on_done)(cli_kop *k);
    void *ud;
    cli_kop *next_retry;
    /* Last, so that cli_kop_clear leaves it out (entries past ncand are never read, and zeroing
     * the whole array for every key costs more than the rest of the operation's setup) and so
     * that cli_kop_new can allocate only the configured nodes' entries (never more are written). */
    uint32_t cand[AQ_NODE_CONFIG_MAX_NODES];
};

/* Candidates for key: its replicas (rendezvous order) that the probe found live; with all_nodes,
 * then the other live nodes in rendezvous order too (copies may have moved there on repair). */
void cli_candidates(cli *c, const void *key, size_t klen, bool all_nodes, cli_kop *k);
/* Starts k (k->req, method, cand set); returns 0 or an error (no candidate: AQ_EUNAVAIL). */
int cli_kop_start(cli_kop *k);
/* k, set up as for cli_kop_start (on_done included), started by a call for many keys (MGET,
 * MPUT) to its first candidate instead of a call of its own: r is that candidate's answer for k as
 * rpc would give it for k's own call (peer and method k's), rep its reply bytes (malloc'd, taken;
 * NULL when there are none). It is read as k's own call's answer (checks, sentence, the next
 * candidate on a failure that allows one, then on_done); why, when not NULL, is the sentence of a
 * failure instead (the many-key call's own). */
void cli_kop_outcome(cli_kop *k, const aq_rpc_result *r, uint8_t *rep, size_t replen,
                     const char *why);
/* Writes k's deadline for a send to node into its request, as its own send does: 0 or
 * AQ_ENOMEM (the sentence in k->msg). */
int cli_kop_stamp(cli_kop *k, size_t node);
void cli_kop_wait(cli_kop *k);
void cli_kop_reset(cli_kop *k); /* frees req and rep */
/* Sets up k for a method with a key request (flags 0) and its candidates. */
int cli_kop_key(cli *c, cli_kop *k, uint16_t method, const void *key, size_t klen, bool all_nodes);
/* The failure of a finished k as the command's one error sentence; returns the exit code. */
int cli_kop_fail(cli *c, const cli_kop *k);

/* Asks every node for STATUS in parallel and fills c->live. Stops early once every node answered
 * or every silent node is reported down by a node that did answer. Returns the number live. */
size_t cli_probe(cli *c, uint64_t timeout_ms);
/* When no node is live: the sentence part naming them all. */
int cli_fail_unreachable(cli *c);
/* The reply of node i to the last probe, or NULL. */
const uint8_t *cli_probe_reply(cli *c, size_t i, size_t *len, const char **failure);

uint64_t cli_data_timeout_ms(const cli *c);

/* ---- cli_manifest.c ---- */
typedef struct cli_part {
    uint32_t size;
    aq_node_digest digest;
} cli_part;
typedef struct cli_manifest {
    uint64_t total;
    aq_node_digest digest;
    uint64_t put_id;
    uint32_t chunk_size;
    uint32_t nparts;
    cli_part *parts;
} cli_manifest;
int cli_manifest_encode(const cli_manifest *m, uint8_t **out, size_t *len);
int cli_manifest_decode(const uint8_t *p, size_t n, cli_manifest *m);
void cli_manifest_free(cli_manifest *m);
/* The internal key of part idx of a put of key: < 64 bytes whatever the key. */
size_t cli_part_key(const void *key, size_t klen, uint64_t put_id, uint32_t idx, char out[64]);

/* ---- cli_kv.c: shared by the key commands ---- */
/* Counts a write's reply (k done without error) into the put's or rm's report: copies of the
 * chunk under key, and which of its replicas missed it. 0, or AQ_EPROTO for a malformed reply. */
int cli_wrep_add(cli *c, const cli_kop *k, const void *key, size_t klen);
/* Prints the report of the put or rm (verb "stored" or "removed") and applies min_copies:
 * CLI_OK, or CLI_ERROR after saying why. */
int cli_wrep_finish(cli *c, const char *verb, const char *key);
/* min_copies alone, nothing printed: CLI_OK, or CLI_ERROR after cli_fail said why. */
int cli_wrep_check(cli *c, const char *verb);
void cli_wrep_reset(cli *c); /* before a put or rm: nothing reached yet */
/* Removes parts [0, upto) of the large value m of key, best effort (a warning names how many
 * could not be removed; whose says which value they were). */
void cli_rm_parts(cli *c, const char *key, const cli_manifest *m, uint32_t upto, const char *whose);
int cli_check_key(cli *c, const char *key); /* 0, or CLI_USAGE after saying why */
int cli_need_live(cli *c);                  /* probe; CLI_UNREACH after saying so when none live */
/* The configured nodes with which[i] set, for messages: "n1 (ADDR), n3 (ADDR)" into buf (cut at
 * cap), returning how many; and as a JSON array of names. */
size_t cli_nodes_list(const cli *c, const bool *which, char *buf, size_t cap);
void cli_nodes_json(const cli *c, const bool *which, FILE *f);
/* Our index of the node that node i's config lists at j (cli.theirs), or CLI_NO_NODE. */
#define CLI_NO_NODE UINT16_MAX
uint16_t cli_our_index(const cli *c, size_t i, uint32_t j);
/* Copies from's node orders into c (a batch's endpoint, which shares its caller's probe). */
int cli_theirs_copy(cli *c, const cli *from);
/* A zeroed key operation of c (cli_kop_clear), or NULL when out of memory. Its cand array has
 * room for c's configured nodes only: never copy or clear a kop from here as a whole struct. */
cli_kop *cli_kop_new(cli *c);
void cli_kop_free(cli_kop *k);
/* Zeroes every field of k but the candidate array (cand's entries are written before they are
 * read): what `= {0}` would give, without touching 4 KiB per key. */
void cli_kop_clear(cli_kop *k);
/* The newest copy of key (cli_read.c), verified against its digest; on success k->rep holds the
 * reply and kind, d, v, vlen point into it. Returns 0 or the error (k->msg says more); a removal
 * is AQ_ENOTFOUND. cli_fetch_v also gives the version. */
int cli_fetch(cli *c, cli_kop *k, const void *key, size_t klen, uint8_t *kind, aq_node_digest *d,
              const uint8_t **v, size_t *vlen);
/* cli_fetch, and then read repair: replicas holding older copies are sent the newest. */
int cli_fetch_repair(cli *c, cli_kop *k, const void *key, size_t klen, uint8_t *kind,
                     aq_node_digest *d, const uint8_t **v, size_t *vlen);
int cli_fetch_v(cli *c, cli_kop *k, const void *key, size_t klen, uint8_t *kind, aq_node_digest *d,
                uint64_t *version, const uint8_t **v, size_t *vlen);

/* ---- cli_read.c: reads of the newest copy, read repair ---- */
typedef struct cli_copy {
    bool asked, replica;
    bool found; /* holds a copy: a value, a manifest or a removal marker */
    int err;    /* 0, AQ_ENOTFOUND, or why the node did not answer */
    uint8_t kind;
    uint64_t size, version;
    aq_node_digest digest;
} cli_copy;
typedef struct cli_read {
    cli *c;
    cli_copy *copies; /* one per configured node */
    int best;         /* index of the node with the newest copy, or -1 */
    size_t asked;
    cli_kop *data;     /* the GET reply of the newest copy (want_data) */
    char failure[384]; /* why, naming the node, when no answer came */
    int failure_err;   /* the error that sentence tells */
} cli_read;
/* Asks key's live replicas (then, if none holds anything, the other live nodes; without want_data
 * both in one round) and picks the newest copy, the replicas' before the others'. 0:
 * r->copies[r->best] is a live value (with want_data its bytes are in r->data); AQ_ENOTFOUND:
 * nothing, or the newest is a removal; else why no node answered (r->failure). Free r with
 * cli_read_free whatever the result. */
int cli_read_newest(cli *c, const void *key, size_t klen, bool want_data, cli_read *r);
/* Sets k up (reset first) as one read of key from node alone, asking for removal markers too: a
 * GET (its value checked against its digest) or a STAT. 0 or AQ_ENOMEM. */
int cli_read_kop(cli *c, cli_kop *k, uint16_t method, const void *key, size_t klen, uint32_t node);
int cli_read_value(const cli_read *r, uint8_t *kind, aq_node_digest *d, uint64_t *version,
                   const uint8_t **v, size_t *vlen);
/* Sends the newest copy to every replica that answered with an older one or none; waits. */
void cli_read_repair(cli_read *r, const void *key, size_t klen);
/* Starts a write of one copy to node only (AQ_PUT_REPLICA, at the given version): a PUT of value
 * v when kind is a value or manifest, an RM when it is AQ_KIND_TOMBSTONE. NULL when out of memory;
 * else the started call, for cli_kop_wait. */
cli_kop *cli_read_write_copy(cli *c, uint32_t node, const void *key, size_t klen, uint8_t kind,
                             aq_node_digest d, uint64_t version, const void *v, size_t vlen);
void cli_read_free(cli_read *r);
/* The steps of cli_read_newest, for callers that send the requests themselves (the batch engine,
 * cli_xfer_batch.c): init sets r up and gives key's live replicas in cands (their order, and the
 * sentence to use when none is live), with r->data NULL (the caller's GET becomes it); note records
 * node i's finished STAT or GET (asked with AQ_READ_TOMBSTONES); pick chooses the newest answer
 * (the replicas' only, or every one); outcome, after the last round, is cli_read_newest's result
 * without the value fetch: 0 when r->copies[r->best] is a live value. */
int cli_read_init(cli *c, const void *key, size_t klen, cli_read *r, cli_kop *cands);
void cli_read_note(cli_read *r, size_t i, cli_kop *k);
void cli_read_pick(cli_read *r, bool replicas_only);
int cli_read_outcome(cli_read *r, const cli_kop *cands);

/* ---- cli_prev.c: the previous value around an overwrite ---- */
typedef struct cli_prev {
    bool known; /* the read before the put answered (found or not found) */
    bool live;  /* a value or manifest was there */
    uint8_t kind;
    uint64_t version;
    aq_node_digest digest;
    bool have_manifest;
    cli_manifest m; /* a large previous value's manifest */
} cli_prev;
/* Reads key's newest copy (and a large one's manifest) into pv. 0, or why it could not be read. */
int cli_prev_read(cli *c, const char *key, cli_prev *pv);
void cli_prev_free(cli_prev *pv);
/* After a put of key succeeded: true when pv's value is no longer the newest copy any answering
 * replica holds (the put won), so a large previous value's parts may go. A store may answer a
 * write that lost to a newer one as done; then the previous manifest may still be the value. */
bool cli_prev_lost(cli *c, const char *key, const cli_prev *pv);
/* After a put of key (kind our_kind, digest ours) failed or ended unknown: writes pv's value back
 * over every copy of the put's value a replica holds. True when the put's value is known to be on
 * no replica any more (its new parts may be removed); note gets a clause saying what happened. */
bool cli_prev_restore(cli *c, const char *key, const cli_prev *pv, uint8_t our_kind,
                      aq_node_digest ours, char *note, size_t cap);
/* The failed put's one sentence: why its PUT k failed (malformed: its reply could not be read),
 * then note, what the undo did. Returns the exit code. */
int cli_prev_fail(cli *c, const cli_kop *k, bool malformed, const char *note);

/* ---- commands ---- */
int cli_cmd_put(cli *c, const char *key, const char *file);
int cli_cmd_get(cli *c, const char *key);
/* put -r and get -r (cli_tree.c): a folder as values under a prefix. durable: fsync each file. */
int cli_cmd_put_r(cli *c, const char *dir, const char *prefix);
int cli_cmd_get_r(cli *c, const char *prefix, const char *dir, bool durable);
int cli_cmd_rm(cli *c, const char *key);
/* rm's core: removes key (and a large value's parts once the manifest is gone); finish gets the
 * write report before the parts go and decides the outcome (cli_wrep_finish prints it and applies
 * min_copies; the library applies min_copies alone). Returns the exit code. */
typedef int (*cli_wrep_fn)(cli *c, const char *verb, const char *key);
int cli_rm_run(cli *c, const char *key, cli_wrep_fn finish);
int cli_cmd_ls(cli *c, const char *prefix);
int cli_cmd_stat(cli *c, const char *key);

/* ---- cli_list.c: the cores of ls and stat (they print nothing) ---- */
typedef struct cli_lsent {
    uint8_t *key;
    size_t klen;
    uint8_t kind;
    uint64_t size;
    aq_node_digest digest;
    uint64_t version;
    bool size_known; /* false: a large value whose manifest could not be read */
} cli_lsent;
/* The keys with prefix on every live node, sorted, newest copy each, removals dropped. Returns
 * the exit code (after cli_fail); free the list with cli_ls_free. */
int cli_ls_collect(cli *c, const char *prefix, cli_lsent **out, size_t *n);
void cli_ls_free(cli_lsent *v, size_t n);
typedef struct cli_stat_info {
    uint64_t size, version;
    aq_node_digest digest;      /* the whole value's */
    aq_node_digest main_digest; /* of the copy under the key itself (a manifest's for large) */
    bool large;
    uint32_t nchunks;
    unsigned replicas;
    uint64_t *chunk_size;
    aq_node_digest *chunk_digest;
    bool *held; /* held[chunk * nnodes + node]: node holds the chunk's newest copy */
} cli_stat_info;
/* Where key's chunks are (with stat's read repair). Returns the exit code (after cli_fail); on
 * success free si with cli_stat_info_free. */
int cli_stat_collect(cli *c, const char *key, cli_stat_info *si);
void cli_stat_info_free(cli_stat_info *si);
int cli_cmd_status(cli *c);
int cli_cmd_up(cli *c);
int cli_cmd_down(cli *c);
/* ---- cli_frame.c: CSV files as frames spread over the cluster ---- */
/* The repairs and unread lines of m: JSON members (`, "repaired_rows": ...`) with json, else
 * indented lines of text, written only when there is something to say. */
void cli_frame_print_repairs(const aq_frame_meta *m, bool json);
/* Fetches and decodes frame name's metadata; on failure says why and returns the exit code. */
int cli_frame_meta_get(cli *c, const char *name, aq_frame_meta *m);
/* The metadata of every frame the live nodes hold, sorted by name (cli_frames_free). Returns
 * the exit code after saying why. */
int cli_frames_collect(cli *c, aq_frame_meta **out, size_t *n);
void cli_frames_free(aq_frame_meta *v, size_t n);
/* 0, or CLI_USAGE after saying why the name is not a frame name. */
int cli_frame_check_name(cli *c, const char *name);
/* Runs the n prepared key operations at once and waits for them all. */
void cli_kops_run(cli *c, cli_kop **k, size_t n);
/* Removes every key of frame name from every live node (pieces, column chunks) and, with meta,
 * its metadata last. Returns how many keys could not be removed; *found (if not NULL) how many
 * piece and chunk keys were listed. */
size_t cli_frame_rm_keys(cli *c, const char *name, bool meta, size_t *found);
/* A key operation that sends the frame request q (method) to node i alone, with a hard timeout;
 * NULL when out of memory. */
cli_kop *cli_frame_kop(cli *c, uint16_t method, const aq_frame_req *q, size_t i,
                       uint64_t timeout_ms);
/* Stores a small value under an internal key through its first live replica. */
int cli_put_internal(cli *c, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                     char *why, size_t cap);

/* files: paths, directories, globs or "-" (cli_input.h) read as one frame. */
int cli_cmd_parse(cli *c, const char *const *files, size_t nfiles);
int cli_cmd_frames(cli *c);
int cli_cmd_summary(cli *c, const char *name);
int cli_cmd_head(cli *c, const char *name);
int cli_cmd_export(cli *c, const char *name);
int cli_cmd_frame_rm(cli *c, const char *name);
/* Prints the status table or JSON from the last probe. Returns the number of nodes reachable. */
size_t cli_print_status(cli *c, FILE *f);

/* An output file written whole or not at all (get -o, export -o). A regular file, or a new one, is
 * written as a file without a name in its folder (O_TMPFILE; where the file system lacks it, a
 * temporary file next to it), put in place by cli_outfile_close(ok = true): linked under path, or
 * over a file already there, linked under a temporary name and renamed over it. A failed or killed
 * command leaves path as it was and, with O_TMPFILE, nothing else. Anything else that exists (a
 * device such as /dev/null, a FIFO, a terminal) is written in place, since renaming over it would
 * replace it; a directory is refused. path NULL or "-" is stdout (close then does nothing). Both
 * report their failure with cli_fail and return its exit code. durable: fsync before the file gets
 * its name. */
typedef struct cli_outfile {
    int fd;
    char *tmp;        /* the temporary name, or NULL when writing in place or to stdout */
    bool anon;        /* the file has no name yet (O_TMPFILE): tmp is not on disk */
    const char *path; /* NULL for stdout */
} cli_outfile;
int cli_outfile_open(cli *c, const char *path, cli_outfile *o);
/* Gives fd, a file opened with O_TMPFILE, the name name in directory dfd (AT_FDCWD: the working
 * one): linkat through /proc/self/fd. 0, or -1 with errno (EEXIST: the name is taken). */
int cli_link_fd(int fd, int dfd, const char *name);
int cli_outfile_close(cli *c, cli_outfile *o, bool ok, bool durable);

/* 64 bits from the kernel's random source (getrandom, retried until it answers). */
uint64_t cli_random_u64(void);

#endif
