/* aq_node: one cluster member, as run by aquiferd: its chunk store, its rpc endpoint, its view of
 * the other members, and the handlers for the node methods (aq_node_proto.h).
 *
 * Invariants:
 *  - Everything runs on the loop thread given to aq_node_start; hashing, persistence and loading
 * run in libuv's threadpool and report back to the loop.
 *  - A put is answered only after the chunk is stored here (and durable when the node has a
 * data_dir) and on every other live replica; "live" is this node's membership view at the time of
 * the forward.
 *  - Placement depends only on the configuration (rendezvous hashing of the key over the configured
 * names), so every node and every client agree on where a key belongs.
 */
#ifndef AQ_NODE_H
#define AQ_NODE_H

#include <uv.h>

#include "aq_node_config.h"
#include "aq_node_log.h"

typedef struct aq_node aq_node;

/* Called once the node serves (err == 0) or failed to start (the node is then already freed). */
typedef void (*aq_node_ready_fn)(void *ud, int err);

/* Starts node `name` of cfg on loop: loads its data_dir in the threadpool, then binds its address
 * and starts heartbeats. cfg and log must outlive the node. Returns a negative error at once for a
 * bad name. */
int aq_node_start(uv_loop_t *loop, const aq_node_config *cfg, const char *name, const aq_log *log,
                  aq_node_ready_fn ready, void *ud, aq_node **out);

/* Graceful stop: stops taking new calls, lets calls in flight finish (or fail clearly) for up to
 * grace_ms, closes the endpoint and the store, frees the node, then runs done(ud). */
void aq_node_stop(aq_node *n, uint64_t grace_ms, void (*done)(void *ud), void *ud);

#endif
