/* aq_rpc_uv: the libuv driver of the rpc core (aq_rpc.h).
 *
 * One driver owns one endpoint: a UDP socket and a TCP listener bound to the same port of one
 * address, the TCP connections ("pipes") the core opens or accepts, and the core's single timer.
 * It turns socket events into the core's inputs and the core's requests (aq_rpc_io) into socket
 * operations, all on the loop thread it was opened on, and never blocks that thread.
 *
 * Invariants:
 *  - Every pipe_write the core makes is answered by exactly one aq_rpc_pipe_written while the core
 *    lives, also when the connection breaks or is closed with the write still queued (status
 *    UV_ECANCELED then).
 *  - The driver never reports to the core from inside a call the core made to it (a write that
 *    fails at once is reported on the next loop turn).
 *  - Connection ids are 64-bit, nonzero and never reused within one driver.
 *  - A pipe the core closes itself gets no aq_rpc_pipe_closed; any other end of a connection
 *    (connect failure, EOF as -ECONNRESET, read or write error) gets exactly one.
 *  - Datagrams the core sends during one loop iteration leave together, in one sendmmsg, at the
 *    end of that iteration.
 *  - Datagrams are received with one recvmmsg per readiness of the socket (another only when one
 *    filled all 64 slots); one over 2 KiB is counted (dgrams_truncated) and dropped.
 *  - Pipe writes the core makes during one loop iteration leave together, one uv_write (one
 *    writev, up to 1024 buffers) per connection, at the end of that iteration, in the order made.
 *  - Nothing the driver does trusts a write or a close: delivery is the core's business, proven
 * only by the far application's reply.
 */
#ifndef AQ_RPC_UV_H
#define AQ_RPC_UV_H

#include <uv.h>

#include "aq_rpc.h"

typedef struct aq_rpc_uv aq_rpc_uv;

typedef struct aq_rpc_uv_opts {
    /* "ip:port" to bind UDP and TCP to (numeric; port 0 picks a free ephemeral port usable by
     * both). NULL means "127.0.0.1:0". */
    const char *bind;
    int backlog;    /* TCP listen backlog; 0: 511 */
    int udp_rcvbuf; /* UDP socket buffers in bytes; 0: 4 MiB, negative: kernel default */
    int udp_sndbuf;
    int tcp_rcvbuf; /* TCP socket buffers; 0 or negative: kernel default (keeps autotuning) */
    int tcp_sndbuf;
    /* TCP_DEFER_ACCEPT seconds on the listener (0: off): the kernel completes a connection only
     * when its first data arrives, as web servers often configure it. */
    int tcp_defer_accept_s;
    /* Bounds on inbound connections, so that silent or slow peers cannot hold this endpoint's
     * file descriptors and memory. A connection is unidentified from accept until the core reports
     * a valid HELLO on it (aq_rpc_pipe_identified). 0 picks the default shown. */
    uint64_t hello_timeout_ms; /* an unidentified connection is closed after this long: 5000 */
    /* Unidentified connections at most: 256. A new one over the bound closes the oldest one, so
     * a flood of silent connections cannot keep a real peer from opening its pipe. */
    uint32_t conns_unidentified_max;
    /* Inbound connections at most: 4096, or half of RLIMIT_NOFILE when that is lower. A new one
     * over the bound is accepted and closed at once (so it does not sit in the kernel's backlog).
     */
    uint32_t conns_inbound_max;
} aq_rpc_uv_opts;

/* Binds the sockets, sets cfg->self to the bound address and creates the core with this driver as
 * its aq_rpc_io. If SIGPIPE still has its default action (kill the process), sets it to ignored:
 * otherwise any peer resetting a connection would kill this process mid-write. cfg is read during
 * the call only. Returns 0 and *out, or a negative error (the address did not parse: AQ_EINVAL;
 * bind failures pass through as negated errno) and leaves nothing open. */
int aq_rpc_uv_open(uv_loop_t *loop, aq_rpc_config *cfg, const aq_rpc_uv_opts *opts,
                   aq_rpc_uv **out);

aq_rpc *aq_rpc_uv_core(aq_rpc_uv *u);
const aq_rpc_addr *aq_rpc_uv_self(const aq_rpc_uv *u);
uv_loop_t *aq_rpc_uv_loop(const aq_rpc_uv *u);

/* Stops feeding the core at once; on the next loop iteration frees it (pending calls fail with
 * AQ_ECLOSED, their callbacks run then) and closes every handle; once libuv has closed them all,
 * frees the driver and runs cb(ud) (cb may be NULL). Safe to call from inside any rpc callback.
 * Call once, from the loop thread; u is unusable afterwards. */
void aq_rpc_uv_close(aq_rpc_uv *u, void (*cb)(void *ud), void *ud);

/* Driver counters, for tests and diagnostics. */
typedef struct aq_rpc_uv_stats {
    uint64_t dgrams_in, dgrams_out;
    uint64_t dgrams_queued;  /* sends that went through the copied, queued path */
    uint64_t dgrams_dropped; /* sends that failed or found the send queue over its bound */
    uint64_t dgrams_truncated;
    uint64_t conns_accepted, conns_opened, conns_failed;
    uint64_t conns_open; /* TCP connections open now */
    uint64_t accept_errors;
    uint64_t conns_inbound;      /* accepted connections open now */
    uint64_t conns_unidentified; /* of those, the ones without a valid HELLO yet */
    uint64_t conns_refused;      /* closed at accept: conns_inbound_max reached */
    uint64_t hello_timeouts;     /* closed: no valid HELLO within hello_timeout_ms */
    uint64_t hello_evicted;      /* closed unidentified to make room for a newer one */
    uint64_t pipe_writes;        /* pipe writes the core made */
    uint64_t pipe_batches; /* uv_writes they went out in (each gathers one loop iteration's) */
} aq_rpc_uv_stats;

void aq_rpc_uv_stats_get(const aq_rpc_uv *u, aq_rpc_uv_stats *out);

#endif
