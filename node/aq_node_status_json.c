#include "aq_node_status_json.h"

#include <string.h>

#include "aq_json.h"

void aq_node_status_json_node(FILE *f, const aq_node_status_node *n) {
    fprintf(f, ", \"state\": \"up\", \"incarnation\": \"%016llx\"",
            (unsigned long long)n->incarnation);
    aq_json_u64(f, "uptime_ms", n->uptime_ms);
    aq_json_u64(f, "chunks", n->chunks);
    aq_json_u64(f, "bytes", n->bytes);
    aq_json_u64(f, "allocated", n->allocated);
    aq_json_u64(f, "memory_max", n->memory_max);
    fprintf(f, ", \"authenticated\": %s", n->authenticated ? "true" : "false");
    fprintf(f, ", \"encrypted\": %s", n->encrypted ? "true" : "false");
    aq_json_u64(f, "dropped_malformed", n->dropped_malformed);
    aq_json_u64(f, "dropped_foreign", n->dropped_foreign);
    aq_json_u64(f, "dropped_auth", n->dropped_auth);
    aq_json_u64(f, "auth_failures", n->dropped_auth);
    aq_json_u64(f, "handled_total", n->handled_total);
    aq_json_u64(f, "handled_client", n->handled_client);
    aq_json_u64(f, "conns_inbound", n->conns_inbound);
    aq_json_u64(f, "conns_refused", n->conns_refused);
    aq_json_u64(f, "hello_timeouts", n->hello_timeouts);
    aq_json_u64(f, "hello_evicted", n->hello_evicted);
}

void aq_node_status_json_peer(FILE *f, const aq_node_status_peer *p, bool first) {
    fputs(first ? "{\"name\": " : ", {\"name\": ", f);
    aq_json_str(f, p->name, strnlen(p->name, sizeof p->name));
    fputs(", \"address\": ", f);
    aq_json_str(f, p->address, strnlen(p->address, sizeof p->address));
    fprintf(f, ", \"state\": \"%s\"", aq_node_member_state_name(p->state));
    if (p->since_heard_ms != UINT64_MAX)
        aq_json_u64(f, "since_heard_ms", p->since_heard_ms);
    else
        fputs(", \"since_heard_ms\": null", f);
    aq_json_u64(f, "rtt_us", p->rtt_us);
    aq_json_u64(f, "calls", p->calls);
    aq_json_u64(f, "retransmits", p->retransmits);
    aq_json_u64(f, "dup_suppressed", p->dup_suppressed);
    aq_json_u64(f, "busy_seen", p->busy_seen);
    aq_json_u64(f, "timeouts", p->timeouts);
    aq_json_u64(f, "pipe_connects", p->pipe_connects);
    aq_json_u64(f, "pipe_reconnects", p->pipe_connects ? p->pipe_connects - 1 : 0);
    aq_json_u64(f, "pipe_failures", p->pipe_failures);
    aq_json_u64(f, "bytes_out", p->bytes_out);
    aq_json_u64(f, "bytes_in", p->bytes_in);
    fputc('}', f);
}
