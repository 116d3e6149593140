/* aq_tool_rpc: the endpoint of the integration tools that talk to one node as a peer would
 * (aq_poke, aq_putvia): an rpc endpoint of the config's cluster on an ephemeral port of every
 * address, on the caller's loop, and the node's parsed address. Header-only: each tool is one file.
 */
#ifndef AQ_TOOL_RPC_H
#define AQ_TOOL_RPC_H

#include <string.h>
#include <uv.h>

#include "aq_node_config.h"
#include "aq_rpc.h"
#include "aq_rpc_uv.h"

/* Initialises *loop and opens *uv on it for cf's cluster; *a is address parsed. 0, or an error
 * (then nothing is left to close but the loop). */
static inline int aq_tool_rpc_open(uv_loop_t *loop, const aq_node_config *cf, const char *address,
                                   aq_rpc_uv **uv, aq_rpc_addr *a) {
    uv_loop_init(loop);
    aq_rpc_config rc;
    aq_rpc_config_init(&rc);
    rc.cluster_id = aq_rpc_cluster_id(cf->name);
    aq_rpc_uv_opts uo;
    memset(&uo, 0, sizeof uo);
    uo.bind = "0.0.0.0:0";
    int e = aq_rpc_uv_open(loop, &rc, &uo, uv);
    return e ? e : aq_rpc_addr_parse(address, a);
}

/* Closes uv and runs the loop until everything on it has ended, then closes the loop. */
static inline void aq_tool_rpc_close(uv_loop_t *loop, aq_rpc_uv *uv) {
    aq_rpc_uv_close(uv, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

#endif
