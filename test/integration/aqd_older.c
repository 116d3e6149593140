/* aquiferd_older: aquiferd as a build from before the many-key methods (MSTAT, MGET, MPUT) and
 * end-to-end tails: the same daemon, linked with --wrap so that the node never installs handlers
 * for those methods and answers them AQ_ENOMETHOD, as an older node does; never says it takes
 * tails (no features in its STATUS reply), drops a PUT that comes with one (no
 * aq_rpc_method_e2e), and answers GETs without one. A test runs it as one node of a cluster to
 * drive the command's fallbacks (a STAT, GET or PUT per key, every byte checksummed by the pipe)
 * through real processes.
 */
#include <stdint.h>

#include "aq_node_proto.h"
#include "aq_rpc.h"

void __real_aq_rpc_handle(aq_rpc *rpc, uint16_t method, aq_rpc_handler_fn fn, void *ud);
void __wrap_aq_rpc_handle(aq_rpc *rpc, uint16_t method, aq_rpc_handler_fn fn, void *ud);

void __wrap_aq_rpc_handle(aq_rpc *rpc, uint16_t method, aq_rpc_handler_fn fn, void *ud) {
    if (method == AQ_M_MSTAT || method == AQ_M_MGET || method == AQ_M_MPUT)
        return;
    __real_aq_rpc_handle(rpc, method, fn, ud);
}

void __wrap_aq_rpc_method_e2e(aq_rpc *rpc, uint16_t method);
void __wrap_aq_rpc_method_e2e(aq_rpc *rpc, uint16_t method) {
    (void)rpc;
    (void)method;
}

void __wrap_aq_node_status_rep_features(aq_wr *w, uint32_t features);
void __wrap_aq_node_status_rep_features(aq_wr *w, uint32_t features) {
    (void)w;
    (void)features;
}

void __wrap_aq_rpc_respond2_e2e(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body);
void __wrap_aq_rpc_respond2_e2e(aq_rpc_incoming *in, int status, aq_rpc_buf head, aq_rpc_buf body) {
    aq_rpc_respond2(in, status, head, body);
}
