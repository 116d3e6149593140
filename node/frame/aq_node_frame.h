/* aq_node_frame: the node's handlers for distributed CSV parsing and summaries (FRAME_PARSE,
 * FRAME_FINISH, FRAME_SUMMARY; layouts in aq_node_proto.h). Each works only on the pieces and
 * column chunks the request names and this node holds, in the threadpool; FINISH answers only
 * once every column chunk is stored here and on the key's other live replicas. */
#ifndef AQ_NODE_FRAME_H
#define AQ_NODE_FRAME_H

#include "aq_node.h"

void aq_node_register_frame(aq_node *n);

#endif
