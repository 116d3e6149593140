/* aquifer.h: libaquifer, the C client library of an aquifer cluster (the `aquifer` command is built
 * on it). A program opens a client from the cluster's config file, then puts, gets, removes, lists
 * and stats values, parses CSV files into frames spread over the cluster, and reads a frame's
 * columns into typed arrays without any CSV in between.
 *
 * Errors. Every call that can fail returns 0 (or, for iterators, 1 for "an item") or a negative
 * code: AQUIFER_E* below, or a negated errno. aquifer_errmsg(client) is then one sentence saying
 * what failed and why, naming the node (name and address) when a node is the reason; it stays until
 * the next call on that client. aquifer_strerror(code) is a short phrase for any code. The library
 * never prints and never exits. Opening a client sets SIGPIPE to ignored if it is at its default
 * action (a node resetting a connection must not kill the program); a handler the program
 * installed is left alone.
 *
 * Threads. A client is used by one thread at a time: calls on one client (and on the frames, list
 * iterators and batches it made) must not run concurrently; the program serializes them. Separate
 * clients are independent and may run in separate threads at once (each has its own endpoint and
 * event loop). aquifer_strerror, aquifer_errname and aquifer_version may be called from any thread.
 * Many operations in flight: a batch (aquifer_batch_*) runs many puts and gets at once on one
 * thread; that, not threads, is how a program reaches the cluster's rate.
 *
 * Ownership. Handles (aquifer, aquifer_list, aquifer_frame, aquifer_batch) are opaque, made by
 * their *_open / *_new call and released by the matching close / free. Frames, iterators and
 * batches belong to the client that made them: release them before closing it. Strings and arrays
 * the library returns through const pointers belong to the handle they came from and stay valid
 * until the next call on that handle (for iterators and batches) or until it is closed (frames,
 * columns). Buffers the library returns through non-const pointers (aquifer_get's value,
 * aquifer_frames' array) belong to the caller: release them with aquifer_free or the named free
 * call. Data passed in (keys, values) is read during the call only, except where a call says so.
 */
#ifndef AQUIFER_H
#define AQUIFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AQUIFER_VERSION_MAJOR 0
#define AQUIFER_VERSION_MINOR 1

/* The project's error codes (the same numbers as common/aq_error.h). Codes from -1 to -4095 are
 * negated errno values. */
enum {
    AQUIFER_EINVAL = -10000,    /* invalid argument */
    AQUIFER_ENOMEM = -10001,    /* out of memory */
    AQUIFER_EKEY = -10002,      /* the key is not 1 to 255 bytes of UTF-8 without controls */
    AQUIFER_ETOOBIG = -10003,   /* value or message larger than allowed */
    AQUIFER_ENOTFOUND = -10004, /* no such key or frame */
    AQUIFER_EFULL = -10005,     /* a node's memory_max would be exceeded */
    AQUIFER_EIO = -10006,       /* I/O error */
    AQUIFER_ECORRUPT = -10007,  /* stored data failed verification */
    AQUIFER_ETIMEDOUT = -10009, /* no answer before the deadline */
    AQUIFER_EBUSY = -10010,     /* the node is overloaded */
    AQUIFER_ECLOSED = -10012,   /* the endpoint is shutting down */
    AQUIFER_EPROTO = -10013,    /* malformed reply */
    AQUIFER_EAUTH = -10016,     /* authentication failed (the cluster's secret_file) */
    AQUIFER_ECONFIG = -10018,   /* bad configuration */
    AQUIFER_EEXIST = -10019,    /* already exists (a frame of that name) */
    AQUIFER_EUNAVAIL = -10020,  /* no live node can serve the request (the cluster unreachable) */
    AQUIFER_EPARSE = -10021,    /* input could not be parsed */
    AQUIFER_ELIMIT = -10022,    /* a bound was exceeded (min_copies not reached, ...) */
};

typedef struct aquifer aquifer;
typedef struct aquifer_list aquifer_list;
typedef struct aquifer_frame aquifer_frame;
typedef struct aquifer_batch aquifer_batch;

/* "0.1.0". */
const char *aquifer_version(void);
/* A short phrase for any code ("no answer before the deadline"); never NULL; static. */
const char *aquifer_strerror(int code);
/* The symbolic name of a code ("AQ_ETIMEDOUT", "ECONNRESET"); static. */
const char *aquifer_errname(int code);

/* ---- the client ---- */

/* Opens a client. config: the cluster's config file; NULL or "" uses the command's lookup:
 * $AQUIFER_CONF, else ./cluster.conf, else the built-in default (three nodes on 127.0.0.1). The
 * client opens a UDP endpoint on an ephemeral port of every interface; it learns which nodes are
 * live on its first call. *out is set even on failure (unless AQUIFER_ENOMEM with *out NULL), so
 * aquifer_errmsg can say why; close it either way. */
int aquifer_open(const char *config, aquifer **out);
void aquifer_close(aquifer *c);
/* The sentence of the last failed call on c ("" after a success); valid until the next call. */
const char *aquifer_errmsg(const aquifer *c);
/* The code of the last failed call on c, 0 after a success. */
int aquifer_errcode(const aquifer *c);
/* Copies a put or rm must reach on the replicas to succeed (AQUIFER_ELIMIT otherwise; the copies
 * that were made stay); 0 restores the config's min_copies. */
int aquifer_set_min_copies(aquifer *c, unsigned n);
/* The config's nodes: how many, and each one's name and address. */
size_t aquifer_nnodes(const aquifer *c);
const char *aquifer_node_name(const aquifer *c, size_t i);
const char *aquifer_node_address(const aquifer *c, size_t i);

/* ---- values ---- */

/* What a put or rm reached: the fewest copies of any of its chunks, and how many were wanted. */
typedef struct aquifer_written {
    unsigned copies, wanted;
} aquifer_written;

/* Stores len bytes under key (any size; above 4 MiB as parts plus a manifest). A failed overwrite
 * leaves the previous value readable. w (may be NULL) gets the copies reached. */
int aquifer_put(aquifer *c, const char *key, const void *data, size_t len, aquifer_written *w);
/* Stores what fd gives until its end (a file, pipe or socket; read, never seeked or closed). A
 * regular file whose size or modification time moves while it is read fails the put (AQ_EIO,
 * the sentence saying it changed) and leaves the key as it was. */
int aquifer_put_fd(aquifer *c, const char *key, int fd, aquifer_written *w);
/* The newest value under key in a malloc'd buffer (*data, *len; *data is never NULL on success,
 * even for 0 bytes): release it with aquifer_free. Every chunk is checked against its digest. */
int aquifer_get(aquifer *c, const char *key, void **data, size_t *len);
/* Writes the value to fd (never seeked or closed). On failure part of it may have been written. */
int aquifer_get_fd(aquifer *c, const char *key, int fd);
/* Removes key (and a large value's parts). AQUIFER_ENOTFOUND when nothing is there. */
int aquifer_rm(aquifer *c, const char *key, aquifer_written *w);
void aquifer_free(void *p);

typedef struct aquifer_stat {
    uint64_t size;      /* the value's bytes */
    uint64_t version;   /* its version (hybrid logical clock of its put) */
    uint8_t digest[16]; /* xxh3-128 of the whole value, big-endian as `xxhsum -H2` prints it */
    int large;          /* stored as parts plus a manifest */
    uint32_t chunks;    /* 1, or the parts of a large value */
    unsigned replicas;  /* copies wanted per chunk (the config's replicas) */
    unsigned copies;    /* live nodes holding the newest copy (the fewest over its parts) */
} aquifer_stat;
/* AQUIFER_ENOTFOUND when there is no value (or the newest copy is a removal). */
int aquifer_stat_key(aquifer *c, const char *key, aquifer_stat *st);

/* ---- listing ---- */

/* Every key starting with prefix ("" or NULL: all), in byte order, as every live node holds them
 * (the newest copy decides; removed keys are not listed; parts and frames' keys never are). The
 * whole list is gathered by open: a node that cannot be listed fails it (the list would lie). */
int aquifer_list_open(aquifer *c, const char *prefix, aquifer_list **it);
/* The next key: 1 and *key (NUL-terminated, *klen bytes) and *size (UINT64_MAX when a large
 * value's size could not be read), 0 at the end. The pointers stay valid until the next call. */
int aquifer_list_next(aquifer_list *it, const char **key, size_t *klen, uint64_t *size);
void aquifer_list_close(aquifer_list *it);

/* ---- frames ---- */

/* Column types, the same numbers as the frame metadata (aq_csv_type). */
typedef enum aquifer_type {
    AQUIFER_NONE = 0,  /* every row missing: no values */
    AQUIFER_INT = 1,   /* int64 */
    AQUIFER_FLOAT = 2, /* double */
    AQUIFER_TIME = 3,  /* int64 milliseconds since 1970-01-01 UTC */
    AQUIFER_CAT = 4,   /* int32 codes into levels */
    AQUIFER_STR = 5,   /* offsets into bytes */
} aquifer_type;
/* "none", "int", "float", "time", "categorical", "string". */
const char *aquifer_type_name(aquifer_type t);

typedef struct aquifer_frame_info {
    char *name;
    char *source; /* the file (base name) or directory it was parsed from */
    uint64_t source_size;
    uint64_t rows;
    uint32_t ncols;
    uint32_t chunks;
    uint64_t repaired_rows; /* rows the parse repaired */
} aquifer_frame_info;
/* The frames every live node holds, by name; free with aquifer_frames_free. */
int aquifer_frames(aquifer *c, aquifer_frame_info **out, size_t *n);
void aquifer_frames_free(aquifer_frame_info *v, size_t n);

/* Options of aquifer_parse: the command's parse options, spelled as there (`aquifer parse
 * --help`); NULL / 0: not given. */
typedef struct aquifer_parse_opts {
    const char *name; /* the frame's name; default: the first file's base name */
    const char *sep, *header, *na, *types, *encoding;
    const char *quote, *escape, *comment, *skip, *decimal;
    int fill, strict;
} aquifer_parse_opts;

typedef struct aquifer_parse_result {
    char name[256];
    uint64_t rows;
    uint32_t ncols;
    uint32_t chunks;
    uint64_t repaired_rows;
    uint64_t bytes; /* of text read */
    double seconds;
} aquifer_parse_result;
/* Parses the files (paths, directories or globs, as the command takes them; compressed files are
 * read as the command reads them) into one frame spread over the cluster. res may be NULL. A failed
 * parse leaves nothing behind; a frame of that name already there is AQUIFER_EEXIST. */
int aquifer_parse(aquifer *c, const char *const *paths, size_t npaths,
                  const aquifer_parse_opts *opts, aquifer_parse_result *res);
/* Removes frame name: its column chunks everywhere, then its metadata. */
int aquifer_frame_rm(aquifer *c, const char *name);

/* A frame's metadata (names, types, rows); AQUIFER_ENOTFOUND when there is none of that name. */
int aquifer_frame_open(aquifer *c, const char *name, aquifer_frame **f);
void aquifer_frame_close(aquifer_frame *f);
uint64_t aquifer_frame_nrows(const aquifer_frame *f);
uint32_t aquifer_frame_ncols(const aquifer_frame *f);
const char *aquifer_frame_col_name(const aquifer_frame *f, uint32_t j);
aquifer_type aquifer_frame_col_type(const aquifer_frame *f, uint32_t j);

/* One column in memory. Missing rows: bit (row % 8) of na[row / 8] is set, and the value slot
 * holds 0 (INT), NaN (FLOAT), INT64_MIN (TIME: numpy's NaT), -1 (CAT) or an empty string (STR);
 * a NaN the file wrote is a FLOAT value, not missing. NONE columns have only na (all set). */
typedef struct aquifer_column {
    const char *name;
    aquifer_type type;
    uint64_t rows;
    const uint8_t *na; /* (rows + 7) / 8 bytes */
    uint64_t na_count;
    /* INT, TIME: const int64_t *; FLOAT: const double *; CAT: const int32_t * codes into levels;
     * STR and NONE: NULL. rows values, 64-byte aligned. */
    const void *values;
    /* CAT: the frame's levels, sorted by byte order (the codes index them). */
    uint32_t nlevels;
    const char *const *levels;
    /* STR: row i is bytes[offsets[i] .. offsets[i + 1]). */
    const uint64_t *offsets;
    const char *bytes;
} aquifer_column;

/* Fetches columns cols[0..ncols) (cols NULL: all of them) of f: the column chunks come from their
 * replicas in parallel (digests checked, the next replica when one fails) and are decoded straight
 * into the arrays. Fetching a column again does nothing. Inside, the call decodes on a thread of
 * its own beside the calling thread's event loop; that thread has ended when the call returns, so
 * the threading rule above holds as stated. */
int aquifer_frame_fetch(aquifer_frame *f, const uint32_t *cols, size_t ncols);
/* Column j, fetched first if it is not yet (NULL after a failure: aquifer_errmsg of the client
 * says why). The column and its arrays belong to f and stay valid until aquifer_frame_close. */
const aquifer_column *aquifer_frame_column(aquifer_frame *f, uint32_t j);
/* The rows of STR column c one after another into out, a sep byte between each two: out must
 * hold offsets[rows] - offsets[0] + rows - 1 bytes (none when rows is 0), all written. For a
 * reader that splits the text at a byte no row holds (a parsed text never holds NUL) rather than
 * slicing it row by row. 0, or AQUIFER_EINVAL when c is not a fetched STR column or cap is
 * short (nothing written). Reads c only: callable on any thread while f stays open. */
int aquifer_column_join(const aquifer_column *c, char sep, void *out, size_t cap);

/* ---- batches: many puts and gets in flight ---- */

enum { AQUIFER_OP_PUT = 1, AQUIFER_OP_GET = 2 };

typedef struct aquifer_result {
    int op;                  /* AQUIFER_OP_PUT or AQUIFER_OP_GET */
    void *ud;                /* as given to aquifer_batch_put / _get */
    const char *key;         /* the key, as given */
    int err;                 /* 0 or the error code */
    const char *errmsg;      /* the sentence, naming the node; "" on success */
    aquifer_written written; /* PUT */
    /* GET: the value, owned by the caller on success (free with aquifer_free); NULL otherwise. */
    void *data;
    size_t len;
} aquifer_result;

/* A batch on client c with at most inflight operations in flight (0: 64). They run on an endpoint
 * of the batch's own, all on one event loop, and move only inside the calls on the batch (put, get
 * and next), made from the client's thread; the client stays open until aquifer_batch_free. */
int aquifer_batch_new(aquifer *c, unsigned inflight, aquifer_batch **b);
/* Starts a put of len bytes (copied, so data may be reused at once) or a get. While inflight
 * operations are running (or the values of the puts in flight would pass 64 MiB), the call first
 * moves them until one ends (finished results do not count: they wait for aquifer_batch_next).
 * Fails only for a bad key or no memory (nothing was started then). */
int aquifer_batch_put(aquifer_batch *b, const char *key, const void *data, size_t len, void *ud);
int aquifer_batch_get(aquifer_batch *b, const char *key, void *ud);
/* Waits for the next finished operation: 1 and *r (its strings valid until the next call on b),
 * or 0 when none is queued or in flight. Results come in the order operations end. */
int aquifer_batch_next(aquifer_batch *b, aquifer_result *r);
/* Operations queued or in flight. */
size_t aquifer_batch_pending(const aquifer_batch *b);
/* Waits for every operation still in flight (their results are dropped, values freed). */
void aquifer_batch_free(aquifer_batch *b);

#ifdef __cplusplus
}
#endif

#endif
