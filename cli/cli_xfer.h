/* cli_xfer: the transfer entry points of put and get, shared by the command and libaquifer.
 *
 * One value: put from a file descriptor (a file or a pipe) or from a buffer; get to a file
 * descriptor, to a path written whole or not at all, or into a malloc'd buffer. A batch: many
 * values in flight at once, each with its own result and error sentence (put -r, get -r, the
 * library's batched calls).
 *
 * Rules of every entry point:
 * - c is open (cli_open) and probed (cli_need_live or cli_probe): the live nodes are known.
 * - Nothing is printed on stdout. A failure is one sentence through cli_fail (c->what first),
 *   and the return value is the command's exit code (CLI_OK, CLI_USAGE, CLI_NOTFOUND,
 *   CLI_UNREACH, CLI_ERROR). Warnings about cleanups (parts left behind) may go to stderr.
 * - Every part's digest and the whole value's are checked; every write is acknowledged by the far
 *   application. A put that fails or whose outcome is unknown restores the previous value
 *   (cli_prev.c).
 * - A put leaves what it reached in c->wrep_* (reset at its start): the command prints it with
 *   cli_wrep_finish; cli_wrep_check applies --min-copies alone (no printing).
 * - Memory: at most c->chunks_inflight chunks of 4 MiB (when 0: CLI_INFLIGHT for a put,
 *   CLI_GET_INFLIGHT for a get) per value, each perhaps twice (ours and the rpc's copy), plus
 *   the whole value for the buffer entry points.
 */
#ifndef AQ_CLI_XFER_H
#define AQ_CLI_XFER_H

#include <sys/stat.h>

#include "cli.h"

/* Stores what fd yields until its end under key. name names the input in messages ("stdin", a
 * path). size_hint: the input's size when known (progress), else 0. */
int cli_xfer_put_fd(cli *c, const char *key, int fd, const char *name, uint64_t size_hint);
/* Stores buf[0..len) under key; buf is only read. */
int cli_xfer_put_buf(cli *c, const char *key, const void *buf, size_t len);

/* Writes key's value to fd (written in order from fd's current offset; the caller owns fd).
 * name names the output in messages. On failure part of the value may have been written. */
int cli_xfer_get_fd(cli *c, const char *key, int fd, const char *name);
/* Writes key's value to path through a temporary file renamed over it (cli_outfile): a failed
 * get leaves path as it was. path NULL or "-": stdout. durable: fsync before the rename. */
int cli_xfer_get_path(cli *c, const char *key, const char *path, bool durable);
/* Reads key's value into a malloc'd buffer *out (the caller frees it; NULL when *len is 0). */
int cli_xfer_get_buf(cli *c, const char *key, uint8_t **out, size_t *len);

/* ---- batches: many values in flight ----
 *
 * The batch runs its items on one endpoint and event loop of its own (sharing c's config and the
 * liveness c's probe found), each item a state machine driven by its calls' callbacks, so many
 * small values move at once without a thread each (cli_xfer_batch.c). At most `width` items are
 * in flight: submit drives the loop until there is room. An item of more than one chunk (or whose
 * previous value is, or a pipe) goes through the single-value entry points above, synchronously
 * in the driver, while the others keep moving. Memory: the small values in flight (submit also
 * waits while those of puts, and of gets with a known size, would pass 64 MiB), plus one large
 * value's chunks in flight (see above). The loop runs only inside these functions, on the thread
 * that calls them; items finish in any order. c must stay open until cli_xfer_batch_close
 * returns. */
typedef struct cli_xfer_item {
    /* In (owned by the caller, unchanged until the item comes back from next). */
    bool get;        /* false: put */
    const char *key; /* checked like the command's keys */
    int fd;          /* put: read from it to its end; get: write the value to it; -1: a buffer */
    const void *buf; /* put with fd -1: the value */
    size_t len;
    /* put with fd -1, optional: the malloc'd block buf lies in, AQ_PUT_HEAD_MAX bytes from its
     * start (room for the request's head). Submit takes a value of at most a chunk from it
     * without a copy: it then sets put_mem to NULL (the one In field it changes) and frees the
     * block itself. Otherwise the block stays the caller's. */
    uint8_t *put_mem;
    const char *name; /* fd's name in messages */
    void *ud;         /* the caller's */
    uint64_t size;    /* get: the value's size when known (ls), else 0; counts in the byte budget */
    /* get with fd -1: when set, a value of more than one chunk is written to the fd this returns
     * (on the driver's thread; it becomes it->fd, the caller's to close) instead of a buffer,
     * so memory stays bounded; a negated errno fails the item. NULL: always a buffer. */
    int (*big_fd)(struct cli_xfer_item *it);
    /* Out. */
    int rc;          /* exit code: CLI_OK, or why it failed */
    int err;         /* rc != 0: the aq error code (aq_error.h) cli_fail recorded */
    char msg[1024];  /* rc != 0: the sentence ("put KEY: why"), without "aquifer: " */
    uint8_t *out;    /* get with fd -1: the value, malloc'd, the caller frees it */
    size_t outlen;   /* get with fd -1: its length */
    uint64_t bytes;  /* bytes moved */
    unsigned copies; /* put: fewest copies of any chunk, and wanted (c->wrep_*) */
    unsigned wanted;
    struct cli_xfer_item *batch_next; /* the batch's own link */
} cli_xfer_item;

typedef struct cli_xfer_batch cli_xfer_batch;

/* A put's input that changed while it was read (size or modification time, against what fstat gave
 * before the first read) is never stored: this sentence, with the input's name, says so. */
#define CLI_CHANGED_FMT                                                                            \
    "%s changed while it was read (its size or modification time moved); the key was not changed"
/* true when fd's size or modification time differ from before's. */
bool cli_file_changed(int fd, const struct stat *before);

#define CLI_XFER_WORKERS 64 /* the default number of values in flight */

/* Starts a batch of width (0: CLI_XFER_WORKERS) values in flight, a large one moving up to
 * chunks (0: 1) chunks at once. 0, or the exit code after cli_fail said why. */
int cli_xfer_batch_open(cli *c, unsigned width, unsigned chunks, cli_xfer_batch **out);
/* Starts it (first driving the loop while the batch is full). Its outcome comes back through
 * next or poll, also when it fails at once (a bad key, no memory). Returns 0. */
int cli_xfer_batch_submit(cli_xfer_batch *b, cli_xfer_item *it);
/* A finished item (waiting for one), or NULL when none is queued or running. */
cli_xfer_item *cli_xfer_batch_next(cli_xfer_batch *b);
/* A finished item if one is there, else NULL at once. */
cli_xfer_item *cli_xfer_batch_poll(cli_xfer_batch *b);
/* Items queued or running (submitted and not yet returned by next). */
size_t cli_xfer_batch_pending(const cli_xfer_batch *b);
/* Per configured node: a replica that missed a copy of some put stored so far. */
const bool *cli_xfer_batch_missing(const cli_xfer_batch *b);
/* Waits for every item still running (their results are dropped unless taken with next first)
 * and every work (its done runs), stops the workers and frees b. */
void cli_xfer_batch_close(cli_xfer_batch *b);

/* File work beside the batch (put -r's reads, get -r's writes), so the loop keeps the items'
 * calls moving while the file system works: work runs on a thread of libuv's threadpool and
 * touches nothing of the batch; done then runs on the driver's thread, inside submit, next,
 * poll, wait or close, and must not call the batch. w stays the caller's until done. */
typedef struct cli_xfer_work {
    uv_work_t req; /* the batch's */
    cli_xfer_batch *b;
    void (*work)(struct cli_xfer_work *w);
    void (*done)(struct cli_xfer_work *w);
} cli_xfer_work;

/* Queues w (work and done set by the caller). 0, or an aq error (nothing queued). */
int cli_xfer_batch_work(cli_xfer_batch *b, cli_xfer_work *w);
/* Drives the loop until an item finishes or a work is done (perhaps a little more); returns at
 * once when an item waits to be taken or nothing is running. */
void cli_xfer_batch_wait(cli_xfer_batch *b);

#endif
