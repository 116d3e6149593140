/* rpc_fake_net: two rpc cores (A = 0, B = 1) joined by a network the test drives by hand, for the
 * core's unit tests (test_rpc_core, test_rpc_auth).
 *
 * Nothing moves unless the test says so: datagrams wait in a FIFO until rfn_flush delivers them,
 * time stands still until rfn_tick jumps it to the earlier of the two cores' timers, pipe
 * connections come up and their written bytes cross only in rfn_pipes_step (and only when
 * `pipes` is set; otherwise writes are recorded and the test plays the driver itself). So a test
 * can hold, drop (drop_to), reorder, corrupt or replay any packet or frame, and every outcome is
 * deterministic. The fake driver keeps what a test may inspect: every datagram queued, every pipe
 * write (its bytes, token and connection), the pipes opened and closed, and optionally a capture of
 * all pipe bytes each side wrote. rpc_sim is the other instrument: many nodes, random delays and
 * losses over thousands of seeds; fuzz_net puts one core in front of a fuzzer's bytes.
 */
#ifndef RPC_FAKE_NET_H
#define RPC_FAKE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aq_rpc.h"
#include "aq_rpc_wire.h"

#define RFN_QMAX   512 /* datagrams held at most; more are dropped, as a full socket buffer would */
#define RFN_WMAX   2048 /* pipe writes held at most (the core bounds its writes in flight) */
#define RFN_CONNS  64
#define RFN_CONN_0 1000   /* a pipe opened by a core gets RFN_CONN_0 + 1, + 2, ... */
#define RFN_IN_OFF 100000 /* ... and the other side sees it as that id + RFN_IN_OFF */

typedef struct rfn_pkt {
    int to;
    aq_rpc_addr from;
    uint8_t d[AQ_RPC_DGRAM_MAX];
    size_t len;
} rfn_pkt;

/* A pipe write the driver holds: its bytes (copied), its token, its connection. */
typedef struct rfn_write {
    int from;
    uint64_t conn;
    void *tok;
    uint8_t *d;
    size_t len;
} rfn_write;

/* A connection endpoint `from` opened: id on its side, in_id on the other's. */
typedef struct rfn_conn {
    int from;
    uint64_t id, in_id;
    bool up, dead, reported;
} rfn_conn;

typedef struct rfn_net rfn_net;
typedef struct rfn_ep {
    rfn_net *n;
    int i;
} rfn_ep;

struct rfn_net {
    uint64_t now;
    rfn_pkt q[RFN_QMAX];
    int nq, qmax;      /* qmax: the queue's capacity (RFN_QMAX unless a test lowers it) */
    uint64_t timer[2]; /* each core's armed timer; UINT64_MAX when none */
    aq_rpc *rpc[2];
    aq_rpc_addr addr[2];
    rfn_ep ep[2];    /* the io_ctx of each core */
    bool drop_to[2]; /* datagrams to that side are lost */
    bool pipes;      /* rfn_pipes_step connects pipes and carries their bytes */
    int opens, closes;
    rfn_write w[RFN_WMAX];
    int nw;
    size_t wbytes; /* bytes of every pipe write ever recorded */
    rfn_conn pc[RFN_CONNS];
    int npc;
    uint8_t *cap[2]; /* if set (capmax bytes each): every pipe byte each core wrote, in order */
    void (*on_write)(rfn_write *w); /* if set: sees (and may change) each write as it crosses */
    size_t ncap[2], capmax;
};

/* The fake driver; each core's io_ctx is &n->ep[i]. */
extern const aq_rpc_io rfn_io;

/* Zeroes n and sets addresses 127.0.0.1:port0 and :port0+1; no core is made. */
void rfn_init(rfn_net *n, int port0);
/* Makes both cores (A incarnation 100, B 200) of cluster cid at n's addresses, with the secret
 * (NULL: none), encrypting if asked, and reply_cache_us unless 0 (then the default). */
void rfn_make_cores(rfn_net *n, uint64_t cid, const char *secret, bool encrypt,
                    uint64_t reply_cache_us);
/* Frees both cores, the held writes and the captures, and zeroes n. */
void rfn_free(rfn_net *n);
/* Delivers one datagram to its core (none if that core is gone). */
void rfn_deliver(rfn_net *n, const rfn_pkt *p);
/* Feeds raw bytes into core `to`'s pipe connection conn, in the read buffers it offers. */
void rfn_pipe_feed(rfn_net *n, int to, uint64_t conn, const uint8_t *d, size_t len);
/* One step of the pipes (if `pipes`): connect what was opened (a pipe to a core the test freed
 * and set to NULL is refused), report closed ends, carry the oldest write to the other side and
 * complete it. Returns true if anything moved. */
bool rfn_pipes_step(rfn_net *n);
/* Delivers queued datagrams (and what they cause), and pipe bytes when `pipes`, until quiet. */
void rfn_flush(rfn_net *n);
/* Writes one plain frame (header, then flen bytes of frag at offset off of a msg_len-byte message)
 * of cluster cid from incarnation 5, method 1, to out; returns its length. */
size_t rfn_frame(uint8_t *out, uint64_t cid, uint8_t kind, uint64_t task, uint32_t msg_len,
                 uint32_t off, const void *frag, uint32_t flen);
/* Jumps time to the earlier armed timer and fires it. Returns false when no timer is armed. */
bool rfn_tick(rfn_net *n);

#endif
