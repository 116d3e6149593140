/* fuzz_net: one rpc core behind a recording fake driver, for the libFuzzer targets and their
 * corpus replay tests.
 *
 * The core listens at 127.0.0.1:7000 with cluster id FZ_CLUSTER and incarnation FZ_INC; the
 * hostile side is 127.0.0.1:7001 (datagrams, and the pipe it opens to us). Every method has a
 * handler that either answers at once or is held until the input says so. The net checks the
 * invariants the core promises and abort()s when one breaks, so libFuzzer reports it:
 *  - a handler runs at most once per (caller incarnation, task): incarnations are random and never
 *    reused by an honest peer, so one that comes back after the core forgot it (more than
 *    AQ_RPC_OLD_INCS restarts later) starts a new life; one that comes back sooner must have been
 *    dropped as stale, never taken for a restart;
 *  - every accepted call ends in exactly one callback, by aq_rpc_free at the latest.
 * Leaks and bad reads are left to ASan. */
#ifndef FUZZ_NET_H
#define FUZZ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aq_rpc.h"

#define FZ_CLUSTER 0x5eedc1u
#define FZ_INC     0x1234abcdu
#define FZ_HELD    64
#define FZ_KEYS    4096
#define FZ_WRITES  2560 /* the core bounds its writes per connection (aq_rpc_int.h) */
#define FZ_PEERS   4
#define FZ_HIST    8

typedef struct fz_net {
    aq_rpc *rpc;
    aq_rpc_addr self, peer, other;
    uint64_t now, timer;
    uint64_t next_conn;
    uint64_t opening[8]; /* pipes we asked the driver to open, not yet reported connected */
    int nopening;
    struct {
        uint64_t conn;
        void *tok;
    } writes[FZ_WRITES];
    int nwrites;
    uint64_t closed_conns; /* pipe_close calls */
    uint64_t last_closed;
    uint32_t closed_small; /* bit c: conn c (< 32) was closed by the core */
    uint64_t sends;        /* datagrams the core sent */
    uint64_t handled;      /* handler runs */
    uint64_t notifies;
    bool hold; /* handlers wait for fz_respond */
    aq_rpc_incoming *held[FZ_HELD];
    int nheld;
    struct {
        const aq_rpc_peer *peer;
        uint64_t inc, task;
    } keys[FZ_KEYS];
    struct {
        const aq_rpc_peer *peer;
        uint64_t inc[FZ_HIST]; /* the incarnations the core took, the last FZ_HIST of them */
        uint32_t n;
    } hist[FZ_PEERS];
    int nkeys;
    uint64_t calls, callbacks;
} fz_net;

/* Aborts if the core cannot be made. */
void fz_init(fz_net *n, bool hold);
/* Frees the core and checks that every call got its one callback. */
void fz_fini(fz_net *n);
/* Moves the clock forward and fires the timer while it is due. */
void fz_advance(fz_net *n, uint64_t us);
/* Starts a call to the hostile peer (len > 1336 goes over the pipe). */
void fz_call(fz_net *n, uint16_t method, size_t len, uint64_t timeout_us);
/* Answers the oldest held incoming call. */
void fz_respond(fz_net *n, int status);
/* Reports the pipes being opened as connected and every outstanding write as done. */
void fz_settle_io(fz_net *n, int write_status);
/* True when a datagram of len bytes carries a checksum that matches its bytes (checked here,
 * independently of the decoder under test). */
bool fz_checksum_ok(const uint8_t *d, size_t len);
/* Rewrites the checksum of the 64-byte header at hdr over itself and the n payload bytes after it.
 */
void fz_fix_checksum(uint8_t *hdr, size_t n);

#endif
