/* aq_rpc_int: the core's private structures and cross-file functions, shared by aq_rpc.c (the
 * endpoint, sending, the timer), aq_rpc_peer.c (peers, incarnations), aq_rpc_call.c (the caller
 * side), aq_rpc_work.c (the callee side), aq_rpc_input.c (demultiplexing) and aq_rpc_pipe.c (the
 * TCP pipe: send scheduler, framing, reassembly). Nothing outside rpc/ includes this, except the
 * rpc fuzz targets, which check its invariants.
 *
 * Ownership: the endpoint owns peers; a peer owns its calls (by task, plus a FIFO of queued ones),
 * its work table (by task, for the peer's current incarnation), its outbound pipe and its pipe send
 * queues. Payload bytes are held by refcounted blobs so a fragment write in the driver's hands
 * keeps them alive after the call or reply that queued them is gone.
 */
#ifndef AQ_RPC_INT_H
#define AQ_RPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "aq_list.h"
#include "aq_xxh.h"

#include "aq_rpc.h"
#include "aq_rpc_auth.h"
#include "aq_rpc_heap.h"
#include "aq_rpc_iset.h"
#include "aq_rpc_map.h"
#include "aq_rpc_cc.h"
#include "aq_rpc_wire.h"

#define AQ_RPC_OLD_INCS    4 /* past incarnations of a peer whose late packets we drop */
#define AQ_RPC_DONE_RANGES 4096
#define AQ_RPC_MAX_ACKS    ((AQ_RPC_DGRAM_MAX - AQ_RPC_HDR_LEN - AQ_RPC_MAC_LEN) / 8)
/* Fragment writes outstanding per connection (written, completion not yet reported): large ones
 * (over AQ_RPC_PIPE_SMALL_FRAG) at most AQ_RPC_PIPE_WRITES_MAX, so small messages never queue
 * behind much of a large one in the socket; small ones up to AQ_RPC_PIPE_SMALL_BYTES and
 * AQ_RPC_PIPE_SMALL_WRITES, so many of them leave in one write. A driver holds at most the sum
 * (and a HELLO) per connection. */
#define AQ_RPC_PIPE_WRITES_MAX   4
#define AQ_RPC_PIPE_SMALL_WRITES 512
#define AQ_RPC_PIPE_SMALL_FRAG   (64u * 1024)
#define AQ_RPC_PIPE_SMALL_BYTES  (1024u * 1024)
/* A pipe read takes up to AQ_RPC_STAGE_LEN bytes of headers and small payloads at once; a
 * payload of at least AQ_RPC_STAGE_DIRECT bytes still owed is read straight into its reassembly
 * buffer, and so is the header after such a fragment (large fragments come in runs, and a staged
 * read behind one would copy much of the next). */
#define AQ_RPC_STAGE_LEN      (64 * 1024)
#define AQ_RPC_STAGE_DIRECT   (16 * 1024)
#define AQ_RPC_BACKOFF_MIN_US 5000
#define AQ_RPC_BACKOFF_MAX_US 1000000
/* Conservative bandwidth for the pipe transfer allowance added to a large message's RTO. */
#define AQ_RPC_ASSUMED_BW_BPS (12500000ull)
/* Incarnations of expired peers remembered (with their highest task) so a late duplicate cannot
 * run again; the oldest is forgotten beyond this many. */
#define AQ_RPC_RETIRED_MAX 65536

enum { AQ_T_CALL = 1, AQ_T_WORK, AQ_T_PEER, AQ_T_ACK, AQ_T_SWEEP };

/* A message's bytes: one piece, or two (a reply's head and a body lent by the application) that
 * travel as one message without being joined. len is the whole; the first piece is data[0..len1),
 * the second data2[0..len - len1). Only messages too big for a datagram have two pieces, and a pipe
 * fragment never spans the two. */
typedef struct aq_rpc_blob {
    uint32_t refs;
    const uint8_t *data;
    size_t len;
    size_t len1;
    const uint8_t *data2;
    aq_rpc_buf buf, buf2; /* released when refs drop to 0, unless owned */
    void *owned, *owned2; /* our own copies, freed when refs drop to 0 */
    size_t e2e_from;      /* where its end-to-end tail starts (aq_rpc_call_e2e); len: none */
} aq_rpc_blob;

/* A CALL or REPLY that travels over the pipe. */
typedef struct aq_rpc_omsg {
    aq_list plink; /* in peer->pipe_msgs while outstanding */
    aq_list qlink; /* in a send queue while fragments remain to write */
    bool registered, queued;
    bool orphan; /* the rest of a message whose owner is gone, finished so the far side's
                    reassembly does not hold a partial message for the life of the connection */
    uint32_t off;
    uint8_t kind;
    uint16_t method;
    uint64_t task;
    int32_t status;
    aq_rpc_blob *blob;
    bool e2e;    /* its end-to-end tail may go with AQ_RPC_FLAG_E2E (a call's always, a reply's
                    when its call carried AQ_RPC_FLAG_E2E_OK) */
    bool e2e_ok; /* a call from aq_rpc_call_e2e: every frame carries AQ_RPC_FLAG_E2E_OK */
} aq_rpc_omsg;

enum { AQ_CALL_QUEUED = 1, AQ_CALL_SENT, AQ_CALL_BUSYWAIT };

typedef struct aq_rpc_call_s {
    aq_rpc_peer *peer;
    uint64_t task; /* 0 until first sent */
    uint16_t method;
    int state;
    aq_rpc_blob *blob;
    aq_rpc_done_fn cb;
    void *ud;
    uint64_t start_us, deadline_us, sent_us, resend_us;
    uint32_t attempts, level;
    uint64_t dst_inc_sent;
    bool last_busy, pipe;
    bool auth_refused; /* an AUTH notice with another key's fingerprint came: at the deadline, say
                          so (a notice alone never ends a call: it could be forged) */
    bool slot;         /* holds a place in the window (SENT only: BUSYWAIT gives it back) */
    uint32_t reply_e2e_from; /* the reply's aq_rpc_result.e2e_from, set as it arrives */
    aq_rpc_omsg om;
    aq_rpc_tnode tn;
    aq_list link; /* peer->queue while QUEUED (a BUSY call may come back), else inflight */
} aq_rpc_call_s;

enum { AQ_WORK_RUNNING = 1, AQ_WORK_DONE };

typedef struct aq_rpc_work {
    aq_rpc_peer *peer;
    uint64_t task;
    int state;
    uint16_t method;
    aq_rpc_incoming *in; /* while RUNNING */
    int32_t status;
    aq_rpc_blob *reply;
    bool pipe;
    uint32_t sends;
    uint64_t expire_us;
    aq_rpc_omsg om;
    aq_rpc_tnode tn;
} aq_rpc_work;

struct aq_rpc_incoming {
    aq_rpc *rpc;
    aq_rpc_peer *peer;
    aq_rpc_work *w; /* NULL once orphaned (the caller restarted) */
    uint16_t method;
    uint8_t *data;
    size_t len;
    size_t e2e_from;   /* aq_rpc_incoming_e2e_from */
    uint64_t start_us; /* when the handler was started, for aq_rpc_on_observe */
    aq_list link;      /* rpc->incomings */
};

/* Partly received message on one inbound connection. */
typedef struct aq_rpc_reasm {
    uint64_t task;
    uint8_t kind;
    uint16_t method;
    uint32_t len, got;
    uint32_t e2e_from; /* the lowest offset of a fragment that came with AQ_RPC_FLAG_E2E; len:
                          none */
    uint8_t *buf;      /* NULL when skipping (a duplicate, or no room: busy) */
    bool busy;
} aq_rpc_reasm;

typedef struct aq_rpc_conn {
    uint64_t id;
    aq_rpc_peer *peer; /* the owner for outbound; set by HELLO for inbound */
    bool outbound, connected, hello_seen;
    bool refused;          /* its HELLO failed authentication: the next header gets a notice */
    uint16_t refused_port; /* the UDP port that HELLO claimed */
    aq_rpc_addr remote;
    uint32_t large_writes; /* outstanding fragment writes over AQ_RPC_PIPE_SMALL_FRAG */
    uint32_t small_writes; /* the other outstanding writes */
    uint64_t small_bytes;  /* and their bytes */
    /* read side */
    uint8_t hdr[AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN];
    uint32_t hgot, hneed; /* hneed: 64, or 80 once the header says a MAC follows */
    bool in_payload;
    aq_rpc_auth_stream as;
    aq_rpc_hdr h;
    aq_rpc_reasm *ra;
    uint32_t remain;
    bool big;    /* the last fragment was large: read the next header on its own */
    size_t lent; /* length of the buffer last handed to the driver */
    uint8_t *lent_at;
    XXH3_state_t *xs;
    aq_rpc_map reasm[2]; /* [0] calls, [1] replies, by task */
    uint8_t hello_buf[2];
} aq_rpc_conn;

enum { AQ_PIPE_NONE = 0, AQ_PIPE_CONNECTING, AQ_PIPE_UP, AQ_PIPE_BACKOFF };

struct aq_rpc_peer {
    aq_rpc *rpc;
    aq_rpc_addr addr;
    uint64_t key;        /* addr_key(addr) */
    size_t idx;          /* in rpc->peers */
    bool pinned;         /* handed out by aq_rpc_peer_get: never expires */
    uint32_t nconns;     /* inbound connections that name this peer */
    uint32_t nincoming;  /* aq_rpc_incoming objects that name this peer */
    uint64_t touched_us; /* created or last heard: the idle clock */
    char name[64];
    char addr_text[64];
    uint64_t inc;
    uint64_t old_inc[AQ_RPC_OLD_INCS];
    uint32_t n_old;
    uint64_t last_heard_us;
    aq_rpc_peer_stats st;
    aq_rpc_cc cc;
    /* caller side */
    uint64_t next_task;
    aq_rpc_map calls;
    aq_list queue, inflight;
    uint32_t nqueued;
    /* callee side */
    aq_rpc_map work;
    uint32_t running;
    aq_rpc_iset done;
    /* ACKACKs to send at the end of this event */
    uint64_t acks[AQ_RPC_MAX_ACKS];
    uint32_t nacks;
    aq_list ack_link;
    /* outbound pipe */
    aq_rpc_conn *out;
    int pstate;
    uint64_t backoff_us;
    aq_rpc_tnode tn;
    aq_list pipe_msgs, sendq_small, sendq_large;
    uint64_t pipe_queued_bytes;
    uint64_t reasm_bytes;
};

typedef struct aq_rpc_wrec {
    aq_list link;
    uint64_t conn;
    aq_rpc_blob *blob;
    uint8_t *enc; /* the fragment's ciphertext (ours), or NULL when the blob is written as is */
    uint32_t small_len; /* its bytes in conn->small_bytes; 0 for a large write */
    uint8_t hdr[AQ_RPC_HDR_LEN];
    uint8_t tag[AQ_RPC_MAC_LEN];
    uint8_t extra[2];
    struct iovec iov[3];
} aq_rpc_wrec;

typedef struct aq_rpc_method_ent {
    uint16_t method;
    aq_rpc_handler_fn fn;
    void *ud;
    const char *name;
    bool e2e; /* aq_rpc_method_e2e */
} aq_rpc_method_ent;

struct aq_rpc {
    aq_rpc_config cfg; /* secret cleared: only the derived key is kept, in auth */
    aq_rpc_auth auth;
    uint64_t pkt_ctr;     /* with auth: the last packet counter sent (aq_rpc_wire.h) */
    double notice_tokens; /* AUTH notices we may send now (refilled over time) */
    uint64_t notice_at;
    aq_rpc_io io;
    void *io_ctx;
    uint64_t inc;
    uint64_t prng;
    bool closing;
    aq_rpc_stats st;
    aq_rpc_peer **peers;
    size_t npeers, cap_peers;
    aq_rpc_map peer_index; /* addr_key -> peer (the first peer with that key) */
    aq_rpc_method_ent *methods;
    size_t nmethods;
    aq_rpc_notify_fn notify_fn;
    void *notify_ud;
    aq_rpc_restart_fn restart_fn;
    void *restart_ud;
    aq_rpc_observe_fn observe_fn;
    void *observe_ud;
    aq_rpc_heap heap;
    size_t ntimed; /* objects with a timer node: the heap keeps room for all of them */
    uint64_t armed;
    aq_rpc_map conns;
    aq_list wrecs, incomings, ack_peers;
    aq_rpc_tnode ack_tn; /* fires "now": ACKACKs of one batch of input leave together */
    /* Expiry of idle unpinned peers. */
    size_t npinned;
    aq_rpc_tnode sweep_tn;
    uint64_t task_floor; /* first task number for a new peer: above any used with a freed one */
    struct aq_rpc_retired {
        uint64_t inc, high, at_us;
    } * retired; /* FIFO ring */
    size_t ret_head, ret_n, ret_cap;
    aq_rpc_map retired_index; /* inc -> ring slot + 1 */
    aq_rpc_map inc_index;     /* a peer's current incarnation -> that peer: one incarnation, one
                                 address (a replay from elsewhere must not find an empty task memory) */
    /* Pipe reads of headers and small payloads land here first (aq_rpc_pipe_read_buf). */
    uint8_t stage[AQ_RPC_STAGE_LEN];
    uint64_t stage_conn;             /* the connection the last read buffer was lent to */
    bool input_stopped;              /* aq_rpc_stop_input: deliver nothing more */
    uint8_t plain[AQ_RPC_DGRAM_MAX]; /* a decrypted datagram payload, while it is handled */
};

/* ---- Cross-file internals (the aq_rpc__ prefix, as libuv's uv__): never used outside rpc/. ----
 */

/* aq_rpc.c: the endpoint, sending, the timer. */
uint64_t aq_rpc__now(aq_rpc *rpc);
void aq_rpc__logf(aq_rpc *rpc, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A blob holding buf: lent bytes are referenced, others copied. NULL without memory. */
aq_rpc_blob *aq_rpc__blob_new(aq_rpc_buf buf);
/* A two-piece blob: head then body, each referenced or copied as aq_rpc__blob_new does. NULL
 * without memory (then nothing is released). */
aq_rpc_blob *aq_rpc__blob_new2(aq_rpc_buf head, aq_rpc_buf body);
/* Where the message's bytes from off on lie, and how many of them are contiguous there. */
static inline const uint8_t *aq_rpc__blob_at(const aq_rpc_blob *b, size_t off, size_t *room) {
    if (off < b->len1 || !b->data2) {
        *room = b->len1 - off;
        return b->data + off;
    }
    *room = b->len - off;
    return b->data2 + (off - b->len1);
}
void aq_rpc__blob_unref(aq_rpc_blob *b);
/* Gives lent bytes back to their owner (aq_rpc_buf.release), if any. */
void aq_rpc__buf_release(aq_rpc_buf buf);
const char *aq_rpc__method_name(const aq_rpc *rpc, uint16_t m, char *tmp, size_t n);
aq_rpc_method_ent *aq_rpc__method_ent(aq_rpc *rpc, uint16_t m, bool create);
/* Ends every public entry point: the driver's timer follows the earliest deadline. */
void aq_rpc__settle(aq_rpc *rpc);
/* Room in the heap for one more timed object (call, work entry, peer), so arming its timer can
 * never fail; aq_rpc__timed_del when the object goes. */
int aq_rpc__timed_add(aq_rpc *rpc);
void aq_rpc__timed_del(aq_rpc *rpc);
void aq_rpc__send_dgram(aq_rpc *rpc, aq_rpc_peer *p, uint8_t kind, uint64_t task, uint16_t method,
                        int32_t status, const void *data, size_t len);
/* A message that owns an omsg goes by datagram when it fits, else over the pipe. */
void aq_rpc__send_msg(aq_rpc *rpc, aq_rpc_peer *p, aq_rpc_omsg *om);
/* Acknowledges a reply; ACKACKs are batched per peer and flushed by the timer. */
void aq_rpc__queue_ack(aq_rpc *rpc, aq_rpc_peer *p, uint64_t task);
/* true when a message of this kind goes out encrypted (then aq_rpc__frame needs ct). */
bool aq_rpc__frame_encrypts(const aq_rpc *rpc, uint8_t kind);
/* Header (with the MAC flag and the next packet counter when authenticating), MAC and fragment as
 * iovecs: iov gets 2 or 3 entries, returned. tag is the caller's 16-byte buffer; ct, when
 * aq_rpc__frame_encrypts, the caller's frag_len bytes for the ciphertext (else unused). */
int aq_rpc__frame(aq_rpc *rpc, aq_rpc_hdr *h, const void *frag, uint8_t hb[AQ_RPC_HDR_LEN],
                  uint8_t tag[AQ_RPC_MAC_LEN], uint8_t *ct, struct iovec iov[3]);
/* A packet or frame failed authentication: count it and maybe tell the sender (rate-limited). */
void aq_rpc__auth_failed(aq_rpc *rpc, const aq_rpc_addr *to, const aq_rpc_hdr *h);

/* The same limit with or without a MAC, so a message takes the same path either way. */
static inline bool aq_rpc__fits_dgram(size_t len) {
    return AQ_RPC_HDR_LEN + AQ_RPC_MAC_LEN + len <= AQ_RPC_DGRAM_MAX;
}

/* aq_rpc_peer.c: peers, incarnations, expiry. */
/* Find or create a peer for input from addr, without pinning it (it may expire when idle). */
aq_rpc_peer *aq_rpc__peer_from(aq_rpc *rpc, const aq_rpc_addr *addr);
/* Looks a peer up without creating one. */
aq_rpc_peer *aq_rpc__peer_lookup(aq_rpc *rpc, const aq_rpc_addr *addr);
/* Checks the sender's incarnation; false when the message must be dropped. A new incarnation of
 * a known peer ends everything held for the old one first. */
bool aq_rpc__check_inc(aq_rpc *rpc, aq_rpc_peer *peer, const aq_rpc_hdr *h);
/* Expires idle unpinned peers and forgets retired incarnations older than the reply cache. */
void aq_rpc__sweep(aq_rpc *rpc, uint64_t now);

/* aq_rpc_call.c: the caller side. */
/* The one way a call ends: its callback runs with this outcome, then the call is gone. */
void aq_rpc__call_finish(aq_rpc *rpc, aq_rpc_call_s *c, int err, int status, const uint8_t *data,
                         size_t len, uint8_t *owned);
void aq_rpc__call_timer(aq_rpc *rpc, aq_rpc_call_s *c, uint64_t now);
/* Extra patience for a message that must first cross the pipe behind what is queued there. */
uint64_t aq_rpc__transfer_allowance(aq_rpc_peer *p, size_t len);
/* A REPLY, PENDING, BUSY or NACK for one of our calls (unknown tasks are ignored). */
void aq_rpc__reply_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                            uint8_t *owned, uint32_t e2e_from);
void aq_rpc__pending_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, uint64_t now);
void aq_rpc__busy_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, uint64_t now);
void aq_rpc__nack_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h);

/* aq_rpc_work.c: the callee side. */
void aq_rpc__work_free(aq_rpc *rpc, aq_rpc_work *w);
void aq_rpc__work_timer(aq_rpc *rpc, aq_rpc_work *w, uint64_t now);
void aq_rpc__incoming_free(aq_rpc *rpc, aq_rpc_incoming *in);
bool aq_rpc__task_known(aq_rpc_peer *peer, uint64_t task);
/* Retry-after for BUSY, in ms: about one round trip. */
uint32_t aq_rpc__busy_hint_ms(aq_rpc_peer *p);
/* A CALL for a task this peer's incarnation has sent before: never run it again. */
void aq_rpc__call_duplicate(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h);
/* A CALL for a new task: run its handler, or answer NACK (no method) or BUSY (no room). */
void aq_rpc__call_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                           uint8_t *owned, uint32_t e2e_from);
/* ACKACK: the caller has our replies to these tasks; forget them. */
void aq_rpc__acks_incoming(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data);

/* aq_rpc_input.c: demultiplexing. */
/* e2e_from: where the bytes that came without a checksum (AQ_RPC_FLAG_E2E) start; h->msg_len when
 * none did. */
void aq_rpc__handle_msg(aq_rpc *rpc, aq_rpc_peer *peer, const aq_rpc_hdr *h, const uint8_t *data,
                        uint8_t *owned, bool skipped, bool busy, uint32_t e2e_from);

/* aq_rpc_pipe.c: the TCP pipe. */
void aq_rpc__pipe_enqueue(aq_rpc_peer *p, aq_rpc_omsg *om);
void aq_rpc__pipe_forget(aq_rpc_peer *p, aq_rpc_omsg *om);
void aq_rpc__pipe_timer(aq_rpc_peer *p);
void aq_rpc__pipe_peer_free(aq_rpc_peer *p);
void aq_rpc__pipe_free_all(aq_rpc *rpc);

#endif
