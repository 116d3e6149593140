/* aq_rpc: task-tracked calls between processes, as a sans-I/O core.
 *
 * An endpoint (aq_rpc) talks to peers (aq_rpc_peer: one per remote process address). A call names a
 * peer, a method, a payload (0 B to AQ_RPC_MAX_PAYLOAD) and a timeout, and ends with exactly one
 * outcome passed to its callback: the far handler's reply, or an error naming what happened. Never
 * silence.
 *
 * Invariants this module keeps:
 *  - Only the far application's REPLY completes a call; a write, a flush or a close proves nothing.
 *  - On the callee a handler runs at most once per (caller incarnation, task number), however
 *    often the call is resent; duplicates get PENDING while it runs and the cached reply once it
 *    is done.
 *  - Messages that fit one datagram travel over UDP; larger ones over the one persistent TCP
 *    connection ("pipe") this endpoint keeps to that peer, cut into fragments so that small
 *    messages never wait behind a 4 MiB one. The call logic does not care which path a message
 *    took.
 *  - Every datagram and frame is bounds-checked before any field is trusted; a bad one is
 *    dropped and counted and changes nothing.
 *  - Every byte delivered was checksummed (or tagged, with a secret) on its way, except a
 *    message's end-to-end tail (aq_rpc_call_e2e), which is delivered only to an application that
 *    said it checks it against a digest of its own, and is marked as such.
 *
 * The core does no I/O and never blocks: the driver (libuv in aq_rpc_uv.h, a fault-injecting
 * simulator in the tests) feeds it datagrams, pipe bytes, write completions and timer expiries, and
 * the core asks the driver through aq_rpc_io to send, connect, write, close and arm its one timer.
 * All functions here must be called from one thread (the driver's loop thread), including
 * aq_rpc_respond().
 */
#ifndef AQ_RPC_H
#define AQ_RPC_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "aq_error.h"

#define AQ_RPC_MAX_PAYLOAD (4u * 1024 * 1024 + 64 * 1024) /* a 4 MiB chunk plus a small header */
#define AQ_RPC_DGRAM_MAX   1400u                          /* whole datagram, header included */

typedef struct aq_rpc aq_rpc;
typedef struct aq_rpc_peer aq_rpc_peer;
typedef struct aq_rpc_incoming aq_rpc_incoming;

/* An IPv4 or IPv6 address and port. Plain data: comparable with aq_rpc_addr_eq. */
typedef struct aq_rpc_addr {
    struct sockaddr_storage ss;
} aq_rpc_addr;

/* Numeric addresses only: "1.2.3.4:5" or "[::1]:5". A host name ("localhost:5") is refused with
 * AQ_EINVAL: there is no name resolution here. */
int aq_rpc_addr_parse(const char *text, aq_rpc_addr *out);
/* Writes "ip:port" (or "[ip]:port") into buf; returns buf. 64 bytes are always enough. */
char *aq_rpc_addr_format(const aq_rpc_addr *a, char *buf, size_t n);
bool aq_rpc_addr_eq(const aq_rpc_addr *a, const aq_rpc_addr *b);
uint16_t aq_rpc_addr_port(const aq_rpc_addr *a);
void aq_rpc_addr_set_port(aq_rpc_addr *a, uint16_t port);

/* The 64-bit cluster id every packet carries: xxh3-64 of the cluster name. */
uint64_t aq_rpc_cluster_id(const char *cluster_name);

/* Bytes lent to rpc. With release == NULL rpc copies the bytes before the function returns;
 * otherwise rpc reads them in place until it calls release(ctx) exactly once (on success, error or
 * endpoint close) -- also when aq_rpc_call or aq_rpc_respond fails at once: after handing a buffer
 * to rpc, never free it yourself. */
typedef struct aq_rpc_buf {
    const void *data;
    size_t len;
    void (*release)(void *ctx);
    void *ctx;
} aq_rpc_buf;

/* The single outcome of a call. */
typedef struct aq_rpc_result {
    int err;    /* 0: the handler replied (see status); else AQ_ETIMEDOUT (no reply by the deadline,
                   or the peer ran the call but its reply expired unacknowledged after
                   reply_cache_us), AQ_ERESTARTED (the peer restarted; the call may or may not have
                   run there), AQ_EBUSY (gave up while the peer kept answering BUSY), AQ_ECLOSED
                   (this endpoint was freed), AQ_ECANCELED (aq_rpc_peer_cancel_calls ended it; it
                   may or may not have run there), AQ_ENOMETHOD (no handler there), AQ_EPROTO (the
                   peer refused it with a code we do not know), AQ_EAUTH (the peer refused our
                   packets: we have no secret or another one) */
    int status; /* when err == 0: the handler's own status, 0 or a negative aq code */
    const uint8_t *data; /* reply bytes, valid only during the callback unless taken */
    size_t len;
    aq_rpc_peer *peer;
    uint16_t method;
    uint32_t attempts;   /* how many times the call was sent */
    size_t e2e_from;     /* the reply's bytes from here on were not checksummed on the way (its
                            end-to-end tail, to an aq_rpc_call_e2e call): the caller checks them
                            itself. len when every byte was */
    uint64_t elapsed_us; /* from aq_rpc_call to this outcome */
    void *priv;          /* rpc's; do not touch */
} aq_rpc_result;

typedef void (*aq_rpc_done_fn)(void *ud, const aq_rpc_result *r);

/* Take ownership of the reply bytes (a malloc'd buffer, free() it) instead of copying them. Valid
 * once, inside the callback; returns NULL for an empty reply. */
void *aq_rpc_result_take(const aq_rpc_result *r, size_t *len);

/* One sentence for logs and users, e.g. "call PUT to n2 (10.0.0.2:7000) timed out after 6 attempts
 * in 5.00 s" or "call GET to n2 (10.0.0.2:7000) failed: not found". Returns buf. */
char *aq_rpc_result_describe(const aq_rpc *rpc, const aq_rpc_result *r, char *buf, size_t n);

/* What a handler gets. Valid until aq_rpc_respond*(), which must be called exactly once (possibly
 * later, e.g. after threadpool work), from the loop thread. */
typedef void (*aq_rpc_handler_fn)(void *ud, aq_rpc_incoming *in);
aq_rpc_peer *aq_rpc_incoming_peer(const aq_rpc_incoming *in);
uint16_t aq_rpc_incoming_method(const aq_rpc_incoming *in);
const uint8_t *aq_rpc_incoming_data(const aq_rpc_incoming *in, size_t *len);
/* Take the payload (malloc'd, free() it) instead of copying; afterwards incoming_data returns NULL.
 */
void *aq_rpc_incoming_take(aq_rpc_incoming *in, size_t *len);
/* Where the call's bytes that were not checksummed on the way (its end-to-end tail, see
 * aq_rpc_call_e2e) start: the handler checks them itself. The payload's length when every byte was
 * checksummed. Only a method marked with aq_rpc_method_e2e ever receives such bytes. */
size_t aq_rpc_incoming_e2e_from(const aq_rpc_incoming *in);
/* Finish the call: status 0 or a negative aq code, and reply bytes (may be empty). The reply is
 * sent and resent until the caller acknowledges it (or reply_cache_us passes). A reply over
 * AQ_RPC_MAX_PAYLOAD is released and the caller gets status AQ_ETOOBIG instead. If the caller
 * restarted meanwhile, the reply is released and dropped. */
void aq_rpc_respond(aq_rpc_incoming *in, int status, aq_rpc_buf reply);
/* aq_rpc_respond with the reply given in two pieces, sent as head followed by body: say a header
 * built for this reply and bytes the application already holds, which then are not copied when
 * the reply is large (a small one is joined into one buffer at once). Each piece follows
 * aq_rpc_buf's rules: lent bytes are read in place, also by resends, until their release runs
 * exactly once (when the caller has acknowledged the reply, it expired, the caller restarted, or
 * the endpoint is freed). */
void aq_rpc_respond2(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body);
/* aq_rpc_respond2 where body is the reply's end-to-end tail (see aq_rpc_call_e2e): when the call
 * came from aq_rpc_call_e2e and the reply is over 64 KiB, body's bytes cross the pipe with only
 * their frame headers checksummed, and the caller checks them. Otherwise as aq_rpc_respond2. */
void aq_rpc_respond2_e2e(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body);
/* Finish the call with BUSY: the caller backs off for about retry_after_ms and resends. The handler
 * may be run again for the resent call (BUSY means it did nothing). */
void aq_rpc_respond_busy(aq_rpc_incoming *in, uint32_t retry_after_ms);

/* One-way, untracked datagrams (heartbeats): at most AQ_RPC_DGRAM_MAX minus the header and MAC
 * (80 bytes); may be lost. */
typedef void (*aq_rpc_notify_fn)(void *ud, aq_rpc_peer *from, uint16_t method, const uint8_t *data,
                                 size_t len);

/* Counters of one peer, as seen from this endpoint. */
typedef struct aq_rpc_peer_stats {
    uint64_t calls;          /* calls started to this peer */
    uint64_t replies;        /* replies received (calls completed by the peer's handler) */
    uint64_t retransmits;    /* resends of calls and of replies */
    uint64_t dup_suppressed; /* duplicate calls from this peer that did not re-run a handler */
    uint64_t pending_seen;   /* PENDING answers received */
    uint64_t busy_seen;      /* BUSY answers received */
    uint64_t busy_sent;      /* BUSY answers sent to this peer */
    uint64_t timeouts;       /* calls that ended in AQ_ETIMEDOUT */
    uint64_t failures;       /* calls that ended in any error */
    uint64_t handled;        /* handler runs for calls from this peer */
    uint64_t pipe_connects;  /* pipe connections established (by us, to this peer) */
    uint64_t pipe_failures;  /* pipe connections that failed or broke */
    uint64_t bytes_out, bytes_in;
    uint64_t srtt_us, rttvar_us, rto_us;
    uint32_t cwnd, inflight, queued;
} aq_rpc_peer_stats;

/* Endpoint-wide counters. */
typedef struct aq_rpc_stats {
    uint64_t dropped_malformed; /* bad magic/version/length/checksum, truncated */
    uint64_t dropped_foreign;   /* another cluster id */
    uint64_t dropped_stale; /* from an old incarnation, or addressed to one of ours that is gone */
    uint64_t dropped_auth;  /* failed authentication */
    uint64_t cutoffs;       /* pipes closed because the peer broke a bound */
    uint64_t peers;
    uint64_t reassembly_bytes; /* memory held for partly received messages now */
    uint64_t handlers_running;
    uint64_t peers_expired; /* idle unpinned peers freed so far */
    uint64_t peers_retired; /* incarnations of expired peers remembered now */
} aq_rpc_stats;

/* What the core asks of its driver. All calls are made from within an aq_rpc_* function. */
typedef struct aq_rpc_io {
    /* Monotonic microseconds. */
    uint64_t (*now_us)(void *ctx);
    /* Send one datagram (best effort: a failure is the same as a loss). */
    void (*send_dgram)(void *ctx, const aq_rpc_addr *to, const struct iovec *iov, int iovcnt);
    /* Start connecting to `to`; later report aq_rpc_pipe_connected or aq_rpc_pipe_closed for conn.
     * Returns 0 with *conn set (driver-chosen, nonzero, never reused) or a negative error. */
    int (*pipe_open)(void *ctx, const aq_rpc_addr *to, uint64_t *conn);
    /* Queue bytes on a connected pipe. The iov memory stays valid until the driver reports
     * aq_rpc_pipe_written(conn, token, status), exactly once per pipe_write, even after a close. */
    void (*pipe_write)(void *ctx, uint64_t conn, const struct iovec *iov, int iovcnt, void *token);
    /* Close a pipe. The driver reports no aq_rpc_pipe_closed for it, only the outstanding writes.
     */
    void (*pipe_close)(void *ctx, uint64_t conn);
    /* (Re)arm the single timer for an absolute now_us time; UINT64_MAX disarms it. */
    void (*set_timer)(void *ctx, uint64_t at_us);
} aq_rpc_io;

typedef void (*aq_rpc_log_fn)(void *ud, int level, const char *msg); /* level: 0 error .. 3 debug */
typedef void (*aq_rpc_restart_fn)(void *ud, aq_rpc_peer *peer, uint64_t old_inc, uint64_t new_inc);

typedef struct aq_rpc_config {
    uint64_t cluster_id;  /* aq_rpc_cluster_id(name) */
    uint64_t incarnation; /* 0: drawn at random */
    aq_rpc_addr self;     /* the address peers reach this endpoint at (its UDP and TCP port) */
    /* Limits; 0 picks the default shown. */
    uint32_t fragment_size;  /* pipe fragment payload: 256 KiB */
    uint64_t rto_min_us;     /* retransmit timeout floor: 20 ms */
    uint64_t rto_max_us;     /* retransmit timeout cap: 2 s */
    uint32_t window_init;    /* calls in flight per peer at start: 64 */
    uint32_t window_max;     /* calls in flight per peer at most: 4096 */
    uint32_t queue_max;      /* calls waiting for the window per peer: 65536 */
    uint64_t reassembly_max; /* bytes of partly received messages per peer: 64 MiB */
    uint32_t running_max;    /* handlers running for one peer before we answer BUSY: 1024 */
    uint64_t reply_cache_us; /* keep an unacknowledged reply at most: 60 s */
    /* The cluster secret (at least 32 bytes; read during aq_rpc_new only) or NULL. With it, every
     * datagram and frame carries a MAC and anything that fails the check is dropped, counted
     * (dropped_auth) and answered with a small rate-limited AUTH notice; a call whose peer only
     * answers with notices from another key ends in AQ_EAUTH at its deadline, and without a
     * secret at the first notice. */
    const void *secret;
    size_t secret_len;
    /* With a secret: also encrypt the payload of every CALL and REPLY this endpoint sends
     * (XChaCha20-Poly1305; headers stay readable). Without a secret aq_rpc_new fails (AQ_EINVAL).
     * Encrypted input is decrypted either way: each side encrypts what it sends per its own
     * setting. The nonce is incarnation || packet counter: a fixed `incarnation` must never be
     * used twice with one secret. */
    bool encrypt;
    aq_rpc_log_fn log;
    void *log_ud;
} aq_rpc_config;

void aq_rpc_config_init(aq_rpc_config *cfg); /* zeroes and sets documented defaults */

int aq_rpc_new(const aq_rpc_config *cfg, const aq_rpc_io *io, void *io_ctx, aq_rpc **out);
/* Fails every pending call with AQ_ECLOSED (their callbacks run), closes pipes, frees the core.
 * Handlers still running must not respond afterwards: call this only once they are done or
 * abandoned (their aq_rpc_incoming objects are freed here). Pipe writes still outstanding are
 * abandoned: the driver must not report them (aq_rpc_pipe_written) nor read their memory after
 * this returns. Not to be called from inside an rpc callback. */
void aq_rpc_free(aq_rpc *rpc);

uint64_t aq_rpc_incarnation(const aq_rpc *rpc);
/* true when this endpoint authenticates its traffic (it was given a secret). */
bool aq_rpc_authenticated(const aq_rpc *rpc);
/* true when this endpoint encrypts the payloads it sends (config encrypt). */
bool aq_rpc_encrypted(const aq_rpc *rpc);
void aq_rpc_stats_get(const aq_rpc *rpc, aq_rpc_stats *out);

/* Handlers for calls of a method, and one function for all notifies. An unhandled method answers
 * AQ_ENOMETHOD. */
void aq_rpc_handle(aq_rpc *rpc, uint16_t method, aq_rpc_handler_fn fn, void *ud);
/* The handler of method here checks its calls' end-to-end tails (aq_rpc_call_e2e) itself, against
 * the application's own digest, so they may arrive unchecksummed. A message carrying such bytes for
 * any other method is dropped as malformed. */
void aq_rpc_method_e2e(aq_rpc *rpc, uint16_t method);
void aq_rpc_on_notify(aq_rpc *rpc, aq_rpc_notify_fn fn, void *ud);
/* Called when a packet shows a peer has a new incarnation (it restarted). */
void aq_rpc_on_restart(aq_rpc *rpc, aq_rpc_restart_fn fn, void *ud);
/* Timing of finished calls, for metrics. fn runs on the loop thread when a call this endpoint made
 * ends (AQ_RPC_OBS_CALL: err is the result's err, else its status; elapsed from aq_rpc_call) and
 * when a handler here responds (AQ_RPC_OBS_HANDLED: the status it gave; elapsed from the handler's
 * start; BUSY answers are not counted). fn must not call back into rpc. */
enum { AQ_RPC_OBS_CALL = 0, AQ_RPC_OBS_HANDLED = 1 };
typedef void (*aq_rpc_observe_fn)(void *ud, int kind, uint16_t method, int err,
                                  uint64_t elapsed_us);
void aq_rpc_on_observe(aq_rpc *rpc, aq_rpc_observe_fn fn, void *ud);
/* Names for methods in error messages and logs. The string must outlive rpc. */
void aq_rpc_method_name(aq_rpc *rpc, uint16_t method, const char *name);

/* Find or create the peer object for a process address, and pin it: a pinned peer lives as long
 * as the endpoint (or until aq_rpc_peer_release).
 *
 * Peers that only exist because packets arrived from them (each command-line client is a new
 * address and incarnation) are not pinned, and are freed once idle: no calls pending or queued, no
 * handler running, no cached reply, no partial message, no pipe, and nothing heard for longer than
 * reply_cache_us. By then the caller's deadline is long past, so no duplicate matters; still, the
 * freed peer's incarnation and highest task are remembered for another reply_cache_us (at most
 * AQ_RPC_RETIRED_MAX of them), so a late duplicate is answered as done and never re-runs a handler,
 * and the same incarnation coming back continues where it was. An unpinned peer pointer (from a
 * handler, a notify or a restart callback) is valid during that callback; keep it longer only by
 * pinning it with aq_rpc_peer_get on its address. */
aq_rpc_peer *aq_rpc_peer_get(aq_rpc *rpc, const aq_rpc_addr *addr);
/* Unpin: the peer may now expire like an unsolicited one; do not use the pointer afterwards. */
void aq_rpc_peer_release(aq_rpc_peer *p);
void aq_rpc_peer_set_name(aq_rpc_peer *p, const char *name); /* copied; used in messages */
const char *aq_rpc_peer_name(const aq_rpc_peer *p);          /* name, or "ip:port" */
const aq_rpc_addr *aq_rpc_peer_addr(const aq_rpc_peer *p);
uint64_t aq_rpc_peer_incarnation(const aq_rpc_peer *p); /* 0 while unknown */
uint64_t aq_rpc_peer_last_heard_us(const aq_rpc_peer *p);
void aq_rpc_peer_stats_get(const aq_rpc_peer *p, aq_rpc_peer_stats *out);
void aq_rpc_foreach_peer(aq_rpc *rpc, void (*fn)(void *ud, aq_rpc_peer *p), void *ud);
/* Ends every call pending to p now, with AQ_ECANCELED: in flight, waiting out BUSY, or queued
 * behind the window. For an application that has judged p gone (it stopped answering its
 * heartbeats) and would rather learn so now than at each call's deadline. A call that reached p
 * may still have run there, as after a timeout. Their callbacks run before this returns; calls
 * they start go on normally. Their payloads are released once no pipe write reads them. Returns
 * how many calls it ended. */
size_t aq_rpc_peer_cancel_calls(aq_rpc_peer *p);

/* Start a call. Returns 0 and later runs cb exactly once; or returns a negative error at once and
 * never runs cb (AQ_ETOOBIG, AQ_EQUEUEFULL, AQ_ECLOSED, AQ_EINVAL, AQ_ENOMEM); the payload is
 * released either way. timeout_us is from now. cb never runs inside aq_rpc_call itself.
 *
 * Flow control, per peer: at most cwnd calls and cwnd * 512 KiB bytes in flight (window_init,
 * growing by one per window of replies up to window_max, halved on a timeout-driven resend or a
 * BUSY, at most once per RTO); an idle peer always admits one call of any size. Calls over the
 * window wait in FIFO order (at most queue_max). A call waiting out BUSY gives its slot back and
 * resends ahead of the queue. */
int aq_rpc_call(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, aq_rpc_buf payload,
                uint64_t timeout_us, aq_rpc_done_fn cb, void *ud);
/* aq_rpc_call between applications that check bulk bytes end to end themselves. A message's
 * end-to-end tail is bytes at its end that the receiving application checks against a digest of
 * its own, carried in the bytes before them (say a chunk's value after a header holding its
 * xxh3-128). Over the pipe (without a MAC: an authenticated endpoint tags every byte) the fragments
 * of a tail carry AQ_RPC_FLAG_E2E and their checksums cover the frame header only, so each byte is
 * hashed by the applications alone instead of twice more on its way; no fragment straddles the
 * tail's start, so every byte before it is checksummed as always.
 *  - The payload's last `tail` bytes (0: none; at most its length) are its tail. The callee's core
 *    takes them only for a method whose handler checks them (aq_rpc_method_e2e); the handler
 *    learns where they start (aq_rpc_incoming_e2e_from).
 *  - The caller checks its reply's tail (aq_rpc_respond2_e2e's body) itself:
 *    aq_rpc_result.e2e_from says where it starts. */
int aq_rpc_call_e2e(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, aq_rpc_buf payload,
                    size_t tail, uint64_t timeout_us, aq_rpc_done_fn cb, void *ud);
/* Send a one-way datagram; AQ_ETOOBIG when it does not fit. */
int aq_rpc_notify(aq_rpc *rpc, aq_rpc_peer *peer, uint16_t method, const void *data, size_t len);

/* ---- Driver side: inputs to the core ---- */
void aq_rpc_input_dgram(aq_rpc *rpc, const aq_rpc_addr *from, const uint8_t *data, size_t len);
/* A peer connected to us; conn is the driver's id for it (nonzero, never reused). */
void aq_rpc_pipe_accepted(aq_rpc *rpc, uint64_t conn, const aq_rpc_addr *remote);
void aq_rpc_pipe_connected(aq_rpc *rpc, uint64_t conn);
/* The connection failed or broke (not after the core's own pipe_close). */
void aq_rpc_pipe_closed(aq_rpc *rpc, uint64_t conn, int err);
/* Where to read the next bytes of conn: the core returns a buffer of at least 1 byte (straight
 * into a reassembly buffer for the rest of a large payload, so it is not copied again; else a
 * staging buffer of up to 64 KiB that may take many small frames at once). Then report how many
 * bytes were put there with aq_rpc_pipe_input before asking for another connection's buffer (the
 * staging buffer is shared); 0 is allowed and means none; more than lent, or bytes in a staging
 * buffer since lent to another connection, cut the pipe off. Every frame the bytes complete is
 * acted on in order. For an unknown conn the core lends a scratch buffer and ignores the bytes. */
void aq_rpc_pipe_read_buf(aq_rpc *rpc, uint64_t conn, uint8_t **buf, size_t *len);
void aq_rpc_pipe_input(aq_rpc *rpc, uint64_t conn, size_t nread);
/* The driver feeds the core nothing more (it is closing): frames left in a pipe read the core is
 * still working through are not acted on, and later inputs are ignored. */
void aq_rpc_stop_input(aq_rpc *rpc);
void aq_rpc_pipe_written(aq_rpc *rpc, uint64_t conn, void *token, int status);
/* true when conn is known to the core and identified: one we opened, or an accepted one that has
 * delivered a valid HELLO. Lets a driver bound how long an unidentified connection may live. */
bool aq_rpc_pipe_identified(const aq_rpc *rpc, uint64_t conn);
void aq_rpc_timer_fired(aq_rpc *rpc);

#endif
