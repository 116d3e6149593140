/* aq_node_proto: the node's methods and their message layouts, shared by aquiferd and the aquifer
 * command.
 *
 * Each method's request and reply is a flat little-endian record built with common/aq_bytes.h.
 * Decoders take bytes from the network: they check every length against what is left and reject
 * trailing bytes, so a malformed request is refused with AQ_EPROTO and never acted on. Keys travel
 * with their length (1..255); values travel last, taking the rest of the message, so a 4 MiB value
 * is never copied into a second buffer just to be framed.
 *
 * Key spaces: user keys are 1..255 bytes of UTF-8 with no control characters (< 0x20). Keys the
 * cluster makes for itself (parts of large values) start with AQ_NODE_INTERNAL_PREFIX, a control
 * character, so they can never collide with a user's key, and `ls` hides them.
 */
#ifndef AQ_NODE_PROTO_H
#define AQ_NODE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aq_bytes.h"

enum aq_node_method {
    AQ_M_PUT = 1,    /* store a chunk (and forward to the other replicas unless AQ_PUT_REPLICA) */
    AQ_M_GET = 2,    /* fetch a chunk and its digest */
    AQ_M_RM = 3,     /* remove a chunk (and forward unless AQ_PUT_REPLICA) */
    AQ_M_STAT = 4,   /* size and digest of a chunk held here */
    AQ_M_LIST = 5,   /* keys held here, by prefix, paginated */
    AQ_M_STATUS = 6, /* this node's state and its view of the cluster */
    AQ_M_HEARTBEAT = 7,   /* notify: I am alive */
    AQ_M_OFFER = 8,       /* repair: "should you have these copies?" -> a status per entry */
    AQ_M_FRAME_PARSE = 9, /* parse the raw CSV pieces held here -> observations, domains, rows */
    AQ_M_FRAME_FINISH =
        10, /* re-parse them at the final types, store (and replicate) column chunks */
    AQ_M_FRAME_SUMMARY = 11, /* summarize the column chunks held here -> partial summaries */
    AQ_M_MSTAT = 12,         /* STAT of many keys in one call -> one answer per key */
    AQ_M_MGET = 13,          /* GET of many small values in one call -> one answer per key */
    AQ_M_MPUT = 14,          /* PUT of many small values in one call -> one answer per value */
    AQ_M_LAST = AQ_M_MPUT,   /* methods are numbered 1..AQ_M_LAST, each with its name */
};

const char *aq_node_method_name(uint16_t m);

#define AQ_NODE_KEY_MAX         255
#define AQ_NODE_CHUNK_MAX       (4u * 1024 * 1024)
#define AQ_NODE_INTERNAL_PREFIX "\x1f"

/* Flags of PUT and RM. */
#define AQ_PUT_REPLICA 0x01 /* store or remove here only: the sender is the coordinator */
/* RM only, with AQ_PUT_REPLICA: the receiver is not one of the key's replicas. It stores the
 * removal only when it holds an older version of the key (a copy repair placed there while a
 * replica was down), so the removal reaches every copy without leaving markers everywhere. */
#define AQ_RM_IF_HELD 0x02
/* GET and STAT: answer a removal marker as kind AQ_KIND_TOMBSTONE with its version instead of
 * AQ_ENOTFOUND, so a reader can tell "removed at version v" from "never held here". */
#define AQ_READ_TOMBSTONES 0x02

/* What a stored chunk is, kept beside it (not part of its digest). A value larger than one chunk is
 * stored as parts under internal keys plus a manifest (cli/cli_manifest.c; layout in DESIGN.md,
 * "Large values") under the user's key. */
enum aq_node_kind { AQ_KIND_VALUE = 0, AQ_KIND_MANIFEST = 1, AQ_KIND_TOMBSTONE = 2 };

/* Versions: every write of a key (a put, or a removal, which stores an empty TOMBSTONE chunk)
 * carries a 64-bit version from the coordinator's hybrid logical clock (aq_node_hlc.h). A replica
 * stores a write only when it orders after what it holds (version, then digest, then kind: see
 * aq_chunk_put_versioned), so a late repair copy or a reordered forward can never bring back a
 * removed value or an older one. Requests from outside the cluster send version 0: the coordinator
 * assigns one above the version it holds for the key.
 *
 * Deadlines: PUT and RM carry the time after which the sender no longer waits for the answer, in
 * the receiving node's own CLOCK_MONOTONIC microseconds (0: none). The sender translates its own
 * deadline with a lower bound of the receiver's clock offset (learned from STATUS replies and
 * heartbeats, which carry the sender's monotonic time), so the translated deadline is never later
 * than the true one. A node that starts applying a write after its deadline refuses it with
 * AQ_EDEADLINE: a write whose caller gave up never lands later. */
typedef struct aq_node_digest {
    uint64_t hi, lo;
} aq_node_digest;

/* True when key is a valid user key (see above). */
bool aq_node_user_key_ok(const void *key, size_t len);

/* PUT request: flags, key, digest of the value (the receiver recomputes and refuses a mismatch),
 * value. */
typedef struct aq_node_put_req {
    uint8_t flags;
    uint8_t kind;
    const uint8_t *key;
    size_t klen;
    aq_node_digest digest;
    uint64_t version;   /* 0: the receiver assigns one */
    size_t version_off; /* where the version sits in the message, so a coordinator can set it */
    uint64_t deadline;  /* the receiver's monotonic microseconds; 0: none */
    const uint8_t *value;
    size_t vlen;
} aq_node_put_req;
/* Writes everything but the value; the caller sends header then value (two buffers or one).
 * aq_node_put_req_head sends version 0 and no deadline, aq_node_put_req_head_v no deadline. */
void aq_node_put_req_head(aq_wr *w, uint8_t flags, uint8_t kind, const void *key, size_t klen,
                          aq_node_digest d);
void aq_node_put_req_head_v(aq_wr *w, uint8_t flags, uint8_t kind, const void *key, size_t klen,
                            aq_node_digest d, uint64_t version);
void aq_node_put_req_head_vd(aq_wr *w, uint8_t flags, uint8_t kind, const void *key, size_t klen,
                             aq_node_digest d, uint64_t version, uint64_t deadline);
/* The longest PUT head (flags, kind, key length, key, digest, version, deadline). */
#define AQ_PUT_HEAD_MAX (3 + AQ_NODE_KEY_MAX + 16 + 8 + 8)
/* Sets the version of an encoded PUT request in place. */
void aq_node_put_req_set_version(uint8_t *msg, const aq_node_put_req *r, uint64_t version);
/* Where the deadline sits in an encoded PUT request (RM request) with a key of klen bytes, to set
 * it in place with aq_node_u64_at before each attempt. */
size_t aq_node_put_req_deadline_off(size_t klen);
size_t aq_node_rm_req_deadline_off(size_t klen);
void aq_node_u64_at(uint8_t *msg, size_t off, uint64_t v);
int aq_node_put_req_decode(const uint8_t *p, size_t n, aq_node_put_req *out);

/* PUT and RM reply. copies: the nodes that now hold this write (a replica that holds a newer one,
 * answering STALE, is never counted); wanted: how many should (the key's replicas); holders: the
 * configured index of each node counted in copies. version: the write's version, or with
 * AQ_REP_STALE the newer version the replica holds; clock: the answering node's clock. */
#define AQ_REP_STALE           0x01 /* (replica) a newer write of the key is stored here */
#define AQ_REP_FOUND           0x02 /* (RM) a live value was there to remove */
#define AQ_PUT_REP_HOLDERS_MAX 255
typedef struct aq_node_put_rep {
    uint8_t copies, wanted, flags;
    uint64_t version, clock;
    uint8_t nholders;
    uint16_t holders[AQ_PUT_REP_HOLDERS_MAX];
} aq_node_put_rep;
void aq_node_put_rep_encode(aq_wr *w, const aq_node_put_rep *rep);
int aq_node_put_rep_decode(const uint8_t *p, size_t n, aq_node_put_rep *out);

/* The body of a coordinator's error reply to a PUT that a replica refused: the refusing node's
 * name (1 to AQ_NODE_NAME_MAX bytes), so the caller names it rather than the coordinator, whatever
 * order its own config lists the nodes in. Any other error reply has an empty body. */
void aq_node_refusal_encode(aq_wr *w, const char *name);
/* name: at least AQ_NODE_NAME_MAX + 1 bytes; gets the name, NUL-terminated. */
int aq_node_refusal_decode(const uint8_t *p, size_t n, char *name);

/* GET, STAT and RM requests: a key (RM and GET have flags). */
void aq_node_key_req_encode(aq_wr *w, uint8_t flags, const void *key, size_t klen);
int aq_node_key_req_decode(const uint8_t *p, size_t n, uint8_t *flags, const uint8_t **key,
                           size_t *klen);
/* RM request: a key request with the removal's version (absent or 0: assign one) and deadline
 * (absent or 0: none) appended. */
void aq_node_rm_req_encode(aq_wr *w, uint8_t flags, const void *key, size_t klen, uint64_t version,
                           uint64_t deadline);
int aq_node_rm_req_decode(const uint8_t *p, size_t n, uint8_t *flags, const uint8_t **key,
                          size_t *klen, uint64_t *version, uint64_t *deadline);
/* GET reply: kind, digest, version, then the value. The _v decoders also give the version. */
void aq_node_get_rep_head(aq_wr *w, uint8_t kind, aq_node_digest d, uint64_t version);
int aq_node_get_rep_decode(const uint8_t *p, size_t n, uint8_t *kind, aq_node_digest *d,
                           const uint8_t **v, size_t *vlen);
int aq_node_get_rep_decode_v(const uint8_t *p, size_t n, uint8_t *kind, aq_node_digest *d,
                             uint64_t *version, const uint8_t **v, size_t *vlen);
/* STAT reply: kind, size, digest, version. */
void aq_node_stat_rep_encode(aq_wr *w, uint8_t kind, uint64_t size, aq_node_digest d,
                             uint64_t version);
int aq_node_stat_rep_decode(const uint8_t *p, size_t n, uint8_t *kind, uint64_t *size,
                            aq_node_digest *d);
int aq_node_stat_rep_decode_v(const uint8_t *p, size_t n, uint8_t *kind, uint64_t *size,
                              aq_node_digest *d, uint64_t *version);

/* MSTAT: what STAT answers, for up to AQ_MSTAT_MAX keys in one call (a client with many small
 * writes in flight reads their previous values with one call per node, not one per key).
 * Request: flags (AQ_READ_TOMBSTONES or 0, as STAT's), u16 count (1..AQ_MSTAT_MAX), then count
 * keys. Reply: u16 count (the request's), then per key in order an i32: 0 followed by the STAT
 * reply's fields (kind, size, digest, version), or the error STAT would have answered
 * (AQ_ENOTFOUND) alone. */
#define AQ_MSTAT_MAX 256
void aq_node_mstat_req_head(aq_wr *w, uint8_t flags, uint16_t count);
void aq_node_mstat_req_key(aq_wr *w, const void *key, size_t klen);
/* Checks the head and that count keys can fit in what follows; then _next gives each key. */
int aq_node_mstat_req_begin(aq_rd *r, const uint8_t *p, size_t n, uint8_t *flags, uint32_t *count);
int aq_node_mstat_req_next(aq_rd *r, const uint8_t **key, size_t *klen);
void aq_node_mstat_rep_head(aq_wr *w, uint16_t count);
/* One key's answer: err 0 with the copy's fields, or a negative aq error (the fields unused). */
void aq_node_mstat_rep_entry(aq_wr *w, int err, uint8_t kind, uint64_t size, aq_node_digest d,
                             uint64_t version);
int aq_node_mstat_rep_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count);
/* 0 with *err the key's answer (and its fields when *err is 0), or AQ_EPROTO. */
int aq_node_mstat_rep_next(aq_rd *r, int *err, uint8_t *kind, uint64_t *size, aq_node_digest *d,
                           uint64_t *version);

/* MGET: what GET answers, for up to AQ_MSTAT_MAX keys in one call (a client fetching many small
 * values asks each node once per batch, not once per key). Request: as MSTAT's. Reply: u16 count
 * (the request's), then per key in order an i32: 0 followed by a u32 length and that many bytes of
 * GET's reply (aq_node_get_rep_decode reads them), or the error GET would have answered alone.
 * The node copies values into the reply until it holds AQ_MGET_REPLY_MAX bytes; a key whose value
 * would go past that is answered AQ_ETOOBIG, which asks the caller to GET it on its own. */
#define AQ_MGET_REPLY_MAX (1u << 20)
void aq_node_mget_rep_entry(aq_wr *w, int err, uint8_t kind, aq_node_digest d, uint64_t version,
                            const void *v, size_t vlen);
/* Bytes an entry with a value of vlen bytes adds to the reply. */
size_t aq_node_mget_rep_entry_len(size_t vlen);
int aq_node_mget_rep_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count);
/* 0 with *err the key's answer and, when *err is 0, its GET reply in rep[0..replen); or
 * AQ_EPROTO. */
int aq_node_mget_rep_next(aq_rd *r, int *err, const uint8_t **rep, size_t *replen);

/* MPUT: a client's PUTs of up to AQ_MSTAT_MAX values in one call (a client storing many small
 * values sends each node one call per batch, not one per value). Each item is run as that PUT
 * call would be, coordinated by this node. Request: u16 count (1..AQ_MSTAT_MAX), then per item a
 * u32 length and that many bytes of a PUT request without AQ_PUT_REPLICA (aq_node_put_req_head
 * and the value, the deadline set as for a PUT to this node). Reply: u16 count (the request's),
 * then per item in order an i32 status, a u32 length and that many bytes: what that PUT call would
 * have answered (its status and its reply or refusal bytes). */
void aq_node_mput_req_head(aq_wr *w, uint16_t count);
void aq_node_mput_req_item(aq_wr *w, const void *put_req, size_t len);
/* Checks the head and that count items can fit in what follows; then _next gives each item. */
int aq_node_mput_req_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count);
int aq_node_mput_req_next(aq_rd *r, const uint8_t **item, size_t *len);
/* One item's answer: the status and the bytes that PUT would have answered. */
void aq_node_mput_rep_entry(aq_wr *w, int status, const void *body, size_t len);
size_t aq_node_mput_rep_entry_len(size_t len);
int aq_node_mput_rep_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count);
int aq_node_mput_rep_next(aq_rd *r, int *status, const uint8_t **body, size_t *len);

/* LIST: keys starting with prefix, strictly after `after` in byte order, at most max entries. */
#define AQ_LIST_INTERNAL 0x01 /* include the cluster's internal keys */
#define AQ_LIST_TOMBSTONES                                                                         \
    0x02 /* include removal markers, so the caller can see which copy is newest */
typedef struct aq_node_list_req {
    uint8_t flags;
    const uint8_t *prefix;
    size_t plen;
    const uint8_t *after;
    size_t alen;
    uint32_t max;
} aq_node_list_req;
void aq_node_list_req_encode(aq_wr *w, const aq_node_list_req *r);
int aq_node_list_req_decode(const uint8_t *p, size_t n, aq_node_list_req *out);
typedef struct aq_node_list_entry {
    uint8_t kind;
    const uint8_t *key;
    size_t klen;
    uint64_t size;
    aq_node_digest digest;
    uint64_t version;
} aq_node_list_entry;
/* LIST reply: u8 more, u32 count, then entries. Decode by iterating. */
void aq_node_list_rep_head(aq_wr *w, bool more, uint32_t count);
void aq_node_list_rep_entry(aq_wr *w, const aq_node_list_entry *e);
int aq_node_list_rep_begin(aq_rd *r, const uint8_t *p, size_t n, bool *more, uint32_t *count);
int aq_node_list_rep_next(aq_rd *r, aq_node_list_entry *e);

/* OFFER: entries (key, digest, version, kind, flags); reply: u32 count, then one status byte per
 * entry, in order. A receiver the entry names as a target (it should hold the key) wants what it
 * lacks or holds an older copy of; any other receiver never wants, and drops a copy older than the
 * offered one. Copies compare as the store orders writes (aq_node_copy_cmp). */
#define AQ_OFFER_TARGET      0x01 /* the receiver is one of the nodes that should hold the key */
#define AQ_OFFER_COLLECTIBLE 0x02 /* a removal marker the sender may collect: don't ask for it */
enum aq_node_offer_status {
    AQ_OFFER_HAVE = 0,  /* holds the same copy, or (not a target) nothing older */
    AQ_OFFER_WANT = 1,  /* send it: lacks it or holds an older copy */
    AQ_OFFER_NEWER = 2, /* holds a newer copy */
    AQ_OFFER_OLDER = 3, /* holds an older copy it could not drop (not a target) */
};
void aq_node_offer_req_head(aq_wr *w, uint32_t count);
void aq_node_offer_req_entry(aq_wr *w, const void *key, size_t klen, aq_node_digest d,
                             uint64_t version, uint8_t kind, uint8_t flags);
int aq_node_offer_req_begin(aq_rd *r, const uint8_t *p, size_t n, uint32_t *count);
int aq_node_offer_req_next(aq_rd *r, const uint8_t **key, size_t *klen, aq_node_digest *d,
                           uint64_t *version, uint8_t *kind, uint8_t *flags);
/* The reply's statuses: *status points at count bytes, each an aq_node_offer_status. */
void aq_node_offer_rep_head(aq_wr *w, uint32_t count);
int aq_node_offer_rep_decode(const uint8_t *p, size_t n, uint32_t *count, const uint8_t **status);
/* Orders two copies of a key exactly as the store orders writes: common/aq_order.h's rule, which
 * aq_chunk_write_cmp applies too. <0 when a is older than b, 0 when they are the same copy. */
int aq_node_copy_cmp(uint64_t va, aq_node_digest da, uint8_t ka, uint64_t vb, aq_node_digest db,
                     uint8_t kb);

/* HEARTBEAT notify: name, uptime, load, clocks. */
typedef struct aq_node_heartbeat {
    const uint8_t *name;
    size_t nlen;
    uint64_t uptime_ms;
    uint64_t chunks;
    uint64_t bytes;
    uint64_t clock;   /* the sender's hybrid logical clock */
    uint64_t mono_us; /* the sender's CLOCK_MONOTONIC microseconds when it sent this */
} aq_node_heartbeat;
void aq_node_heartbeat_encode(aq_wr *w, const aq_node_heartbeat *h);
int aq_node_heartbeat_decode(const uint8_t *p, size_t n, aq_node_heartbeat *out);

/* STATUS reply: the node, then one record per configured peer. */
enum aq_node_member_state { AQ_MEMBER_SELF = 0, AQ_MEMBER_UP, AQ_MEMBER_SUSPECT, AQ_MEMBER_DOWN };
const char *aq_node_member_state_name(int s);
typedef struct aq_node_status_node {
    char name[64];
    char address[64];
    uint64_t incarnation;
    uint64_t uptime_ms;
    uint64_t chunks, bytes, allocated, memory_max;
    uint8_t authenticated; /* 1 when traffic is authenticated with a cluster secret */
    uint8_t encrypted;     /* 1 when the node also encrypts the payloads it sends */
    uint64_t dropped_malformed, dropped_foreign, dropped_auth;
    /* Handler runs: all of them, and those for requests from outside the cluster (a client's PUT,
     * RM, GET or STAT, not a replica's forward or a repair). A test that counts the calls it made
     * can tell from the latter whether any handler ran twice for one call. */
    uint64_t handled_total, handled_client;
    /* Inbound connections: open now, and closed for breaking a bound (aq_rpc_uv_stats). */
    uint64_t conns_inbound, conns_refused, hello_timeouts, hello_evicted;
    uint64_t mono_us; /* the node's CLOCK_MONOTONIC microseconds when it answered (deadlines) */
    uint32_t npeers;
} aq_node_status_node;
typedef struct aq_node_status_peer {
    char name[64];
    char address[64];
    uint8_t state;
    uint64_t incarnation;
    uint64_t since_heard_ms;
    uint64_t rtt_us;
    uint64_t calls, retransmits, dup_suppressed, busy_seen, timeouts, pipe_connects, pipe_failures;
    uint64_t bytes_out, bytes_in;
} aq_node_status_peer;
void aq_node_status_rep_node(aq_wr *w, const aq_node_status_node *s);
void aq_node_status_rep_peer(aq_wr *w, const aq_node_status_peer *p);
int aq_node_status_rep_begin(aq_rd *r, const uint8_t *p, size_t n, aq_node_status_node *out);
int aq_node_status_rep_next(aq_rd *r, aq_node_status_peer *out);
/* After the last peer: the node's own index in its config. The peers are listed in config order
 * without the node itself, so with it a caller rebuilds the node's order of the nodes and can read
 * indexes the node sends (a PUT reply's holders) whatever order its own config lists them in.
 * A node of an older build ends the reply before it: the read says AQ_ENOTFOUND then. */
void aq_node_status_rep_self(aq_wr *w, uint32_t self);
int aq_node_status_rep_self_read(aq_rd *r, uint32_t *self);
/* A STATUS request is empty, or one byte of AQ_NODE_STATUS_ASK_* bits; a node of an older build
 * ignores its bytes. With AQ_NODE_STATUS_ASK_FEATURES the reply ends in the node's features (a u32
 * of AQ_NODE_FEATURE_* bits) after self, so a caller uses what a node has only once it said so,
 * and a reply nobody asked for keeps the layout older readers know. */
#define AQ_NODE_STATUS_ASK_FEATURES 0x01u
/* It takes a PUT's value as the call's end-to-end tail and answers a GET asking for one with the
 * value as its tail (aq_rpc_call_e2e): both checked by their digests, not the pipe's checksum. */
#define AQ_NODE_FEATURE_TAILS 0x01u
void aq_node_status_rep_features(aq_wr *w, uint32_t features);
/* self, then the features when present (else *features = 0), then the end: as
 * aq_node_status_rep_self_read (AQ_ENOTFOUND: a reply without self), else 0 or AQ_EPROTO. */
int aq_node_status_rep_self_features_read(aq_rd *r, uint32_t *self, uint32_t *features);

#endif
