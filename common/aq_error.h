/* aq_error: the one error vocabulary shared by every aquifer module.
 *
 * Every function that can fail returns 0 or a negative code. Codes from -1 to -4095 are negated
 * errno values (libuv's UV_E* codes are the same numbers on Linux, so they pass through unchanged);
 * aquifer's own codes start at AQ_ERR_BASE. aq_strerror() turns any of them into a short phrase
 * that finishes the sentence "... failed: <phrase>". This header has no dependencies so chunk/,
 * rpc/, node/ and cli/ can all use it without depending on each other.
 */
#ifndef AQ_ERROR_H
#define AQ_ERROR_H

enum {
    AQ_ERR_BASE = -10000,
    AQ_EINVAL = AQ_ERR_BASE, /* invalid argument */
    AQ_ENOMEM = -10001,      /* out of memory (allocator said no) */
    AQ_EKEY = -10002,        /* key is empty, longer than 255 bytes, not UTF-8 or has NUL */
    AQ_ETOOBIG = -10003,     /* value or message larger than allowed */
    AQ_ENOTFOUND = -10004,   /* no such key / object */
    AQ_EFULL = -10005,       /* memory_max would be exceeded */
    AQ_EIO = -10006,         /* I/O error (details logged) */
    AQ_ECORRUPT = -10007,    /* stored data failed verification */
    AQ_ELOCKED = -10008,     /* data_dir is in use by another store */
    AQ_ETIMEDOUT = -10009,   /* no answer before the deadline */
    AQ_EBUSY = -10010,       /* the peer is overloaded and asked us to back off */
    AQ_ERESTARTED =
        -10011, /* the peer restarted (new incarnation); the call may or may not have run */
    AQ_ECLOSED = -10012,    /* the endpoint is shutting down */
    AQ_EPROTO = -10013,     /* malformed, truncated or foreign packet or frame */
    AQ_EQUEUEFULL = -10014, /* too many calls queued for this peer */
    AQ_ECANCELED = -10015,  /* the operation was canceled */
    AQ_EAUTH = -10016,      /* authentication failed */
    AQ_ENOMETHOD = -10017,  /* the peer has no handler for that method */
    AQ_ECONFIG = -10018,    /* bad configuration */
    AQ_EEXIST = -10019,     /* already exists */
    AQ_EUNAVAIL = -10020,   /* no live node can serve the request */
    AQ_EPARSE = -10021,     /* input could not be parsed */
    AQ_ELIMIT = -10022,     /* a configured bound was exceeded */
    AQ_ESTALE = -10023,     /* a newer version is already stored: the write changed nothing */
    AQ_EDEADLINE = -10024,  /* the caller's deadline passed before the node could apply it */
    AQ_ERR_LAST = -10024,
};

/* A phrase for any code (aquifer's, negated errno or libuv's). Never NULL; unknown codes give
 * "unknown error". The returned string is static. */
const char *aq_strerror(int code);

/* The symbolic name ("AQ_ETIMEDOUT", "ECONNRESET"), for logs and --json output. */
const char *aq_errname(int code);

#endif
