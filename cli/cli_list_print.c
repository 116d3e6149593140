/* The ls and stat commands' printing (text or --json) over their cores in cli_list.c
 * (cli_ls_collect, cli_stat_collect), which print nothing. Part of the command, not of libaquifer.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef cli_lsent ent;
typedef struct ents {
    ent *v;
    size_t n;
} ents;

int cli_cmd_ls(cli *c, const char *prefix) {
    ents e = {0};
    int rc = cli_ls_collect(c, prefix, &e.v, &e.n);
    if (rc)
        return rc;
    if (c->json)
        fputc('[', stdout);
    for (size_t i = 0; i < e.n; i++) {
        ent *x = &e.v[i];
        char hex[33];
        cli_digest_hex(x->digest, hex);
        if (c->json) {
            fputs(i ? ",\n {\"key\": " : "\n {\"key\": ", stdout);
            cli_json_str(stdout, x->key, x->klen);
            if (x->size_known)
                printf(", \"size\": %llu", (unsigned long long)x->size);
            else
                fputs(", \"size\": null", stdout);
            printf(", \"kind\": \"%s\", \"digest\": \"%s\"}",
                   x->kind == AQ_KIND_MANIFEST ? "large" : "value", x->size_known ? hex : "");
        } else {
            if (x->size_known)
                printf("%12llu  ", (unsigned long long)x->size);
            else
                printf("%12s  ", "?");
            fwrite(x->key, 1, x->klen, stdout);
            fputc('\n', stdout);
        }
    }
    if (c->json)
        fputs(e.n ? "\n]\n" : "]\n", stdout);
    if (fflush(stdout) != 0)
        rc = cli_fail(c, CLI_ERROR, "cannot write to stdout");
    cli_ls_free(e.v, e.n);
    return rc;
}

static void print_nodes(cli *c, const bool *held, bool json) {
    bool first = true;
    if (json)
        fputc('[', stdout);
    for (size_t n = 0; n < c->conf->nnodes; n++) {
        if (!held[n])
            continue;
        if (json)
            printf(first ? "\"%s\"" : ", \"%s\"", c->conf->nodes[n].name);
        else
            printf(first ? "%s" : ",%s", c->conf->nodes[n].name);
        first = false;
    }
    if (json)
        fputc(']', stdout);
    else if (first)
        fputs("(none live)", stdout);
}

int cli_cmd_stat(cli *c, const char *key) {
    cli_stat_info si;
    int rc = cli_stat_collect(c, key, &si);
    if (rc)
        return rc;
    size_t nn = c->conf->nnodes, klen = strlen(key);
    uint64_t size = si.size;
    bool large = si.large;
    uint32_t nchunks = si.nchunks;
    char hex[33];
    cli_digest_hex(si.digest, hex);
    if (c->json) {
        fputs("{\"key\": ", stdout);
        cli_json_str(stdout, key, klen);
        printf(", \"size\": %llu, \"digest\": \"%s\", \"kind\": \"%s\", \"replicas\": %u, "
               "\"chunks\": [",
               (unsigned long long)size, hex, large ? "large" : "value", c->conf->replicas);
        for (uint32_t i = 0; i < nchunks; i++) {
            aq_node_digest d = si.chunk_digest[i];
            char ch[33];
            cli_digest_hex(d, ch);
            printf("%s\n  {\"index\": %u, \"size\": %llu, \"digest\": \"%s\", \"nodes\": ",
                   i ? "," : "", i, (unsigned long long)si.chunk_size[i], ch);
            print_nodes(c, &si.held[(size_t)i * nn], true);
            fputc('}', stdout);
        }
        fputs("\n]}\n", stdout);
    } else {
        char hs[32];
        cli_human_size(size, hs, sizeof hs);
        fputs("key:     ", stdout);
        fwrite(key, 1, klen, stdout);
        printf("\nsize:    %llu (%s)\ndigest:  %s (xxh3-128)\n", (unsigned long long)size, hs, hex);
        printf("chunks:  %u%s, %u replicas wanted\n", nchunks,
               large ? " (large value: parts + manifest)" : "", c->conf->replicas);
        printf("  %5s  %10s  %-32s  %s\n", "INDEX", "SIZE", "DIGEST", "NODES");
        for (uint32_t i = 0; i < nchunks; i++) {
            aq_node_digest d = si.chunk_digest[i];
            char ch[33];
            cli_digest_hex(d, ch);
            printf("  %5u  %10llu  %s  ", i, (unsigned long long)si.chunk_size[i], ch);
            print_nodes(c, &si.held[(size_t)i * nn], false);
            fputc('\n', stdout);
        }
    }
    if (fflush(stdout) != 0)
        rc = cli_fail(c, CLI_ERROR, "cannot write to stdout");
    cli_stat_info_free(&si);
    return rc;
}
