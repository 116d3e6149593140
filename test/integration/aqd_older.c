/* aquiferd_older: aquiferd as a build from before the many-key methods (MSTAT, MGET, MPUT): the
 * same daemon, linked with --wrap=aq_rpc_handle so that the node never installs handlers for them
 * and answers them AQ_ENOMETHOD, as an older node does. A test runs it as one node of a cluster to
 * drive the command's fallbacks (a STAT, GET or PUT per key) through real processes.
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
