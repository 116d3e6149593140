/* aq_node_status_json: a node's STATUS reply as JSON members, the one writer behind both
 * `aquifer status --json` (cli/cli_status.c) and the node's /status.json and /cluster.json
 * (aq_node_metrics.c), so the two documents cannot drift apart.
 *
 * Each writes members after others (`, "state": ...`) or one object of an array; the caller writes
 * the name and address it knows the node by, and the brackets around.
 */
#ifndef AQ_NODE_STATUS_JSON_H
#define AQ_NODE_STATUS_JSON_H

#include <stdbool.h>
#include <stdio.h>

#include "aq_node_proto.h"

/* The members of a node that answered: state "up", incarnation, counters. */
void aq_node_status_json_node(FILE *f, const aq_node_status_node *n);
/* One peer as the node sees it, an object; first: no comma before it. */
void aq_node_status_json_peer(FILE *f, const aq_node_status_peer *p, bool first);

#endif
