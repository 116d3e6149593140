/* aquifer status: every node's STATUS reply (from the last probe) decoded once into views, then
 * printed either as a table (nodes, the traffic's protection, links, failures) or as JSON. */
#include <stdlib.h>
#include <string.h>

#include "aq_node_status_json.h"
#include "cli.h"

#define PROBE_MS 1500

/* One node as its STATUS reply describes it; ok false when it did not answer or sent garbage. */
typedef struct status_view {
    bool ok;
    const char *failure;
    aq_node_status_node sn;
    aq_node_status_peer *peers; /* sn.npeers of them, or fewer if the reply ended early */
    uint32_t npeers;
} status_view;

static status_view *views_decode(cli *c) {
    size_t nn = c->conf->nnodes;
    status_view *v = calloc(nn ? nn : 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < nn; i++) {
        size_t len = 0;
        const uint8_t *rep = cli_probe_reply(c, i, &len, &v[i].failure);
        aq_rd r;
        v[i].ok = rep && aq_node_status_rep_begin(&r, rep, len, &v[i].sn) == 0;
        if (rep && !v[i].ok)
            v[i].failure = "sent a malformed STATUS reply";
        if (!v[i].ok || v[i].sn.npeers == 0)
            continue;
        /* npeers comes from the wire: the records themselves bound how many are read. */
        uint32_t want = v[i].sn.npeers < 4096 ? v[i].sn.npeers : 4096;
        v[i].peers = calloc(want, sizeof *v[i].peers);
        while (v[i].peers && v[i].npeers < want &&
               aq_node_status_rep_next(&r, &v[i].peers[v[i].npeers]) == 0)
            v[i].npeers++;
    }
    return v;
}

static void views_free(status_view *v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i].peers);
    free(v);
}

static void json_node(FILE *f, const aq_node_config_node *cn, const status_view *v) {
    fputs("{\"name\": ", f);
    cli_json_str(f, cn->name, strlen(cn->name));
    fputs(", \"address\": ", f);
    cli_json_str(f, cn->address, strlen(cn->address));
    fprintf(f, ", \"reachable\": %s", v->ok ? "true" : "false");
    if (!v->ok) {
        fputs(", \"state\": \"unreachable\", \"error\": ", f);
        cli_json_str(f, v->failure, strlen(v->failure));
        fputs(", \"peers\": []}", f);
        return;
    }
    aq_node_status_json_node(f, &v->sn);
    fputs(", \"peers\": [", f);
    for (uint32_t j = 0; j < v->npeers; j++)
        aq_node_status_json_peer(f, &v->peers[j], j == 0);
    fputs("]}", f);
}

static void print_json(cli *c, FILE *f, const status_view *v, size_t reachable) {
    fputs("{\"cluster\": ", f);
    cli_json_str(f, c->conf->name, strlen(c->conf->name));
    fprintf(f, ", \"replicas\": %u, \"reachable\": %zu, \"nodes\": [", c->conf->replicas,
            reachable);
    for (size_t i = 0; i < c->conf->nnodes; i++) {
        fputs(i ? ",\n " : "\n ", f);
        json_node(f, &c->conf->nodes[i], &v[i]);
    }
    fputs("\n]}\n", f);
}

/* Whether the traffic is authenticated, said plainly, with each node's refusals. */
static void print_traffic(cli *c, FILE *f, const status_view *v) {
    size_t nauth = 0, nplain = 0, nenc = 0;
    char fails[1024];
    size_t off = 0;
    fails[0] = 0;
    for (size_t i = 0; i < c->conf->nnodes; i++) {
        if (!v[i].ok)
            continue;
        if (v[i].sn.authenticated)
            nauth++;
        else
            nplain++;
        if (v[i].sn.authenticated && v[i].sn.encrypted)
            nenc++;
        if (off < sizeof fails) {
            int w = snprintf(fails + off, sizeof fails - off, "%s%s %llu", off ? ", " : "",
                             c->conf->nodes[i].name, (unsigned long long)v[i].sn.dropped_auth);
            if (w > 0)
                off += (size_t)w;
        }
    }
    if (nauth && !nplain && nenc == nauth)
        fprintf(f, "\ntraffic: authenticated, payloads encrypted (auth_failures: %s)\n", fails);
    else if (nauth && !nplain && nenc)
        fprintf(f,
                "\ntraffic: authenticated, payloads encrypted by %zu of %zu node(s) "
                "(auth_failures: %s)\n",
                nenc, nauth, fails);
    else if (nauth && !nplain)
        fprintf(f,
                "\ntraffic: authenticated, payloads NOT encrypted (encrypt = no) "
                "(auth_failures: %s)\n",
                fails);
    else if (nplain && !nauth)
        fprintf(f, "\ntraffic: NOT authenticated: no secret_file in [cluster], so anyone who can "
                   "reach the nodes can use them\n");
    else if (nplain)
        fprintf(f, "\ntraffic: MIXED: %zu node(s) authenticate, %zu do not (auth_failures: %s)\n",
                nauth, nplain, fails);
}

static void print_table(cli *c, FILE *f, const status_view *v, size_t reachable) {
    size_t nn = c->conf->nnodes;
    fprintf(f, "cluster %s: %zu of %zu nodes reachable, %u replicas per chunk\n", c->conf->name,
            reachable, nn, c->conf->replicas);
    fprintf(f, "%-12s %-22s %-11s %8s %8s %11s %11s %11s\n", "NODE", "ADDRESS", "STATE", "UPTIME",
            "CHUNKS", "BYTES", "MEMORY", "MEMORY_MAX");
    bool any_links = false;
    for (size_t i = 0; i < nn; i++) {
        const aq_node_config_node *cn = &c->conf->nodes[i];
        if (!v[i].ok) {
            fprintf(f, "%-12s %-22s %-11s %8s %8s %11s %11s %11s\n", cn->name, cn->address,
                    "unreachable", "-", "-", "-", "-", "-");
            continue;
        }
        char up[32], by[32], mem[32], mx[32];
        cli_human_ms(v[i].sn.uptime_ms, up, sizeof up);
        cli_human_size(v[i].sn.bytes, by, sizeof by);
        cli_human_size(v[i].sn.allocated, mem, sizeof mem);
        cli_human_size(v[i].sn.memory_max, mx, sizeof mx);
        fprintf(f, "%-12s %-22s %-11s %8s %8llu %11s %11s %11s\n", cn->name, cn->address, "up", up,
                (unsigned long long)v[i].sn.chunks, by, mem, mx);
        any_links |= v[i].sn.npeers > 0;
    }
    print_traffic(c, f, v);
    if (any_links) {
        fprintf(f, "\nlinks, as each node sees its peers:\n");
        fprintf(f, "%-12s %-12s %-8s %9s %8s %8s %7s %6s %10s %8s\n", "FROM", "TO", "STATE", "RTT",
                "CALLS", "RETRANS", "DUPS", "BUSY", "RECONNECTS", "TIMEOUTS");
    }
    for (size_t i = 0; i < nn; i++) {
        for (uint32_t j = 0; v[i].ok && j < v[i].npeers; j++) {
            const aq_node_status_peer *sp = &v[i].peers[j];
            char rtt[32];
            if (sp->rtt_us)
                snprintf(rtt, sizeof rtt, "%.2fms", (double)sp->rtt_us / 1000.0);
            else
                snprintf(rtt, sizeof rtt, "-");
            fprintf(f, "%-12s %-12s %-8s %9s %8llu %8llu %7llu %6llu %10llu %8llu\n",
                    c->conf->nodes[i].name, sp->name, aq_node_member_state_name(sp->state), rtt,
                    (unsigned long long)sp->calls, (unsigned long long)sp->retransmits,
                    (unsigned long long)sp->dup_suppressed, (unsigned long long)sp->busy_seen,
                    (unsigned long long)(sp->pipe_connects ? sp->pipe_connects - 1 : 0),
                    (unsigned long long)sp->timeouts);
        }
    }
    bool header = false;
    for (size_t i = 0; i < nn; i++) {
        size_t len = 0;
        const char *failure;
        if (cli_probe_reply(c, i, &len, &failure) || !failure)
            continue;
        if (!header)
            fputc('\n', f);
        header = true;
        fprintf(f, "%s: %s\n", c->conf->nodes[i].name, failure);
    }
}

size_t cli_print_status(cli *c, FILE *f) {
    size_t nn = c->conf->nnodes, reachable = 0;
    for (size_t i = 0; i < nn; i++)
        reachable += c->live[i];
    status_view *v = views_decode(c);
    if (!v) {
        fputs("aquifer: status: out of memory\n", stderr);
        return reachable;
    }
    if (c->json)
        print_json(c, f, v, reachable);
    else
        print_table(c, f, v, reachable);
    fflush(f);
    views_free(v, nn);
    return reachable;
}

int cli_cmd_status(cli *c) {
    cli_probe(c, PROBE_MS);
    size_t reachable = cli_print_status(c, stdout);
    if (reachable == 0)
        return cli_fail_unreachable(c);
    return 0;
}
