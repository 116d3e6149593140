/* The renderings of a node snapshot (node/aq_node_metrics.c): histogram buckets, the history ring,
 * Prometheus text and JSON, with hostile names escaped. promtool checks the full text in it_http;
 * these check the details promtool cannot know. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aq_node_metrics.h"

static aq_node_snap *two_nodes(void) {
    aq_node_snap *s = aq_node_snap_new(2);
    cr_assert_not_null(s);
    snprintf(s->cluster, sizeof s->cluster, "c");
    s->replicas = 2;
    s->self = 0;
    s->ready = false;
    snprintf(s->not_ready, sizeof s->not_ready, "sees 1 live node (down: \"b\")");
    aq_node_view *v = &s->views[0];
    snprintf(v->name, sizeof v->name, "a");
    snprintf(v->address, sizeof v->address, "127.0.0.1:1");
    v->reachable = true;
    v->node.chunks = 7;
    v->node.handled_total = 42;
    v->npeers = 1;
    v->peers = calloc(1, sizeof *v->peers);
    snprintf(v->peers[0].name, sizeof v->peers[0].name, "b");
    v->peers[0].state = AQ_MEMBER_DOWN;
    v->peers[0].since_heard_ms = UINT64_MAX;
    v->peers[0].rtt_us = 1500;
    v->peers[0].retransmits = 3;
    snprintf(s->views[1].name, sizeof s->views[1].name, "b");
    snprintf(s->views[1].error, sizeof s->views[1].error, "down: never heard from");
    s->frames = calloc(1, sizeof *s->frames);
    snprintf(s->frames[0].name, sizeof s->frames[0].name, "q\"uo\\te");
    s->frames[0].rows = 150;
    s->nframes = 1;
    return s;
}

Test(metrics, histogram_buckets) {
    aq_node_hist h = {0};
    aq_node_hist_add(&h, 100);      /* on the first bound: in it */
    aq_node_hist_add(&h, 101);      /* just above: the next one */
    aq_node_hist_add(&h, 20000000); /* beyond the last bound: only +Inf */
    cr_expect_eq(h.count, 3);
    cr_expect_eq(h.sum_us, 20000201);
    cr_expect_eq(h.buckets[0], 1);
    cr_expect_eq(h.buckets[1], 1);
    uint64_t in_buckets = 0;
    for (int i = 0; i < AQ_NODE_HIST_BUCKETS; i++)
        in_buckets += h.buckets[i];
    cr_expect_eq(in_buckets, 2);
}

Test(metrics, history_ring_keeps_the_newest_in_order) {
    aq_node_snap *s = two_nodes();
    for (uint64_t i = 1; i <= AQ_NODE_HISTORY_LEN + 20; i++) {
        aq_node_sample p = {.t_ms = i * 1000, .calls = i};
        aq_node_history_push(&s->history, &p);
    }
    cr_expect_eq(s->history.n, AQ_NODE_HISTORY_LEN);
    size_t len;
    char *j = aq_node_snap_history_json(s, &len);
    cr_assert_not_null(j);
    cr_expect_eq(strlen(j), len);
    cr_expect(strstr(j, "\"t_ms\": [21000,22000,") != NULL, "%s", j);
    cr_expect(strstr(j, ",200000], \"calls\": [21,") != NULL, "oldest first, newest last");
    free(j);
    aq_node_snap_unref(s);
}

Test(metrics, prometheus_text) {
    aq_node_snap *s = two_nodes();
    aq_node_hist_add(&s->handled[AQ_M_PUT], 3000);
    size_t len;
    char *t = aq_node_snap_prometheus(s, &len);
    cr_assert_not_null(t);
    cr_expect_eq(strlen(t), len);
    cr_expect(strstr(t, "# TYPE aquifer_chunks gauge\naquifer_chunks{node=\"a\"} 7\n") != NULL);
    cr_expect(strstr(t, "aquifer_handled_total{node=\"a\"} 42\n") != NULL);
    cr_expect(strstr(t, "aquifer_ready{node=\"a\"} 0\n") != NULL);
    cr_expect(strstr(t, "aquifer_peer_up{node=\"a\",peer=\"b\"} 0\n") != NULL);
    cr_expect(strstr(t, "aquifer_peer_rtt_seconds{node=\"a\",peer=\"b\"} 0.0015") != NULL);
    cr_expect(strstr(t, "aquifer_peer_retransmits_total{node=\"a\",peer=\"b\"} 3\n") != NULL);
    /* Never heard from: no since_heard series rather than a made-up number. */
    cr_expect(strstr(t, "aquifer_peer_since_heard_seconds{") == NULL);
    /* Buckets are cumulative and +Inf is the count. */
    cr_expect(strstr(t, "aquifer_handler_duration_seconds_bucket{node=\"a\",method=\"PUT\","
                        "le=\"0.0025\"} 0\n") != NULL);
    cr_expect(strstr(t, "aquifer_handler_duration_seconds_bucket{node=\"a\",method=\"PUT\","
                        "le=\"0.005\"} 1\n") != NULL);
    cr_expect(strstr(t, "aquifer_handler_duration_seconds_bucket{node=\"a\",method=\"PUT\","
                        "le=\"10\"} 1\n") != NULL);
    cr_expect(strstr(t, "aquifer_handler_duration_seconds_bucket{node=\"a\",method=\"PUT\","
                        "le=\"+Inf\"} 1\n") != NULL);
    cr_expect(strstr(t, "aquifer_handler_duration_seconds_count{node=\"a\",method=\"PUT\"} 1\n") !=
              NULL);
    cr_expect(strstr(t, "method=\"HEARTBEAT\"") == NULL, "heartbeats are never calls");
    /* Label values escaped. */
    cr_expect(strstr(t, "aquifer_frame_rows{node=\"a\",frame=\"q\\\"uo\\\\te\"} 150\n") != NULL,
              "%s", strstr(t, "aquifer_frame_rows{"));
    /* Each family's HELP and TYPE once. */
    const char *p = strstr(t, "# TYPE aquifer_peer_up gauge");
    cr_assert_not_null(p);
    cr_expect(strstr(p + 1, "# TYPE aquifer_peer_up gauge") == NULL);
    free(t);
    aq_node_snap_unref(s);
}

Test(metrics, json_names_and_escapes) {
    aq_node_snap *s = two_nodes();
    size_t len;
    char *j = aq_node_snap_cluster_json(s, &len);
    cr_assert_not_null(j);
    cr_expect(
        strstr(j, "\"ready\": false, \"not_ready\": \"sees 1 live node (down: \\\"b\\\")\"") !=
            NULL,
        "%s", j);
    cr_expect(strstr(j, "\"name\": \"b\", \"address\": \"\", \"http_address\": null, "
                        "\"reachable\": false, \"state\": \"unreachable\", \"error\": \"down: "
                        "never heard from\", \"peers\": []") != NULL,
              "%s", j);
    cr_expect(strstr(j, "\"since_heard_ms\": null") != NULL);
    cr_expect(strstr(j, "\"name\": \"q\\\"uo\\\\te\", \"rows\": 150") != NULL);
    free(j);
    j = aq_node_snap_status_json(s, &len);
    cr_assert_not_null(j);
    cr_expect(strstr(j, "\"node\": {\"name\": \"a\"") != NULL);
    cr_expect(strstr(j, "\"handled_total\": 42") != NULL);
    cr_expect(strstr(j, "\"name\": \"b\", \"address\": \"\", \"http_address\"") == NULL,
              "/status is this node only");
    free(j);
    aq_node_snap_unref(s);
}

/* views[1] answered STATUS with sn and one peer, sp. */
static void reply_of(aq_node_snap *s, const aq_node_status_node *sn,
                     const aq_node_status_peer *sp) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_status_rep_node(&w, sn);
    aq_node_status_rep_peer(&w, sp);
    cr_assert(w.ok);
    s->views[1].reply = aq_node_reply_new(w.p, w.len);
    s->views[1].reachable = true;
}

/* Another node's view is its STATUS reply as received, decoded when rendered. */
Test(metrics, views_render_replies) {
    aq_node_snap *s = two_nodes();
    aq_node_status_node sn = {.incarnation = 0xabc, .handled_total = 9, .npeers = 1};
    snprintf(sn.name, sizeof sn.name, "b");
    aq_node_status_peer sp = {.state = AQ_MEMBER_UP, .since_heard_ms = 12, .rtt_us = 345};
    snprintf(sp.name, sizeof sp.name, "a");
    snprintf(sp.address, sizeof sp.address, "127.0.0.1:1");
    reply_of(s, &sn, &sp);
    size_t len;
    char *j = aq_node_snap_cluster_json(s, &len);
    cr_assert_not_null(j);
    cr_expect(strstr(j, "\"reachable\": 2") != NULL);
    cr_expect(strstr(j, "\"incarnation\": \"0000000000000abc\"") != NULL, "%s", j);
    cr_expect(strstr(j, "\"handled_total\": 9") != NULL);
    cr_expect(
        strstr(j, "\"peers\": [{\"name\": \"a\", \"address\": \"127.0.0.1:1\", \"state\": \"up\", "
                  "\"since_heard_ms\": 12, \"rtt_us\": 345") != NULL,
        "%s", j);
    free(j);
    /* A reply cut short renders as unreachable, never as made-up numbers. */
    s->views[1].reply->len -= 3;
    j = aq_node_snap_cluster_json(s, &len);
    cr_expect(strstr(j, "\"error\": \"sent a malformed STATUS reply\"") != NULL, "%s", j);
    free(j);
    aq_node_snap_unref(s);
}

Test(metrics, references) {
    aq_node_snap *s = two_nodes();
    aq_node_snap_ref(s);
    aq_node_snap_unref(s);
    cr_expect_eq(s->refs, 1, "still held by the first reference");
    aq_node_snap_unref(s); /* frees: the sanitizer build checks nothing leaks */
}

/* A peer's name comes from the wire: a byte that is not UTF-8 still yields valid JSON, as it does
 * in `aquifer status --json` (the same writer). */
Test(metrics, json_names_from_the_wire_stay_valid) {
    aq_node_snap *s = two_nodes();
    aq_node_status_node sn = {.npeers = 1};
    snprintf(sn.name, sizeof sn.name, "b");
    aq_node_status_peer sp = {.state = AQ_MEMBER_UP};
    snprintf(sp.name, sizeof sp.name, "a\xff\x01");
    reply_of(s, &sn, &sp);
    size_t len;
    char *j = aq_node_snap_cluster_json(s, &len);
    cr_assert_not_null(j);
    cr_expect(strstr(j, "{\"name\": \"a\\ufffd\\u0001\", \"address\": \"\"") != NULL, "%s", j);
    cr_expect(memchr(j, 0xff, len) == NULL);
    free(j);
    aq_node_snap_unref(s);
}
