/* aq_place: prints, for each KEY, the names of the nodes of CONF in the key's rendezvous order
 * (its replicas first), one key per line, so a test can pick a key coordinated by a given node. */
#include <stdio.h>
#include <string.h>

#include "aq_node_config.h"
#include "aq_node_place.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: aq_place CONF KEY...\n");
        return 1;
    }
    aq_node_config *cf;
    char err[512];
    if (aq_node_config_load_file(argv[1], &cf, err, sizeof err) != 0) {
        fprintf(stderr, "aq_place: %s\n", err);
        return 1;
    }
    uint64_t seeds[AQ_NODE_CONFIG_MAX_NODES];
    uint32_t order[AQ_NODE_CONFIG_MAX_NODES];
    for (size_t i = 0; i < cf->nnodes; i++)
        seeds[i] = aq_place_seed(cf->nodes[i].name);
    for (int a = 2; a < argc; a++) {
        aq_place_order(seeds, cf->nnodes, argv[a], strlen(argv[a]), order);
        printf("%s", argv[a]);
        for (size_t i = 0; i < cf->nnodes; i++)
            printf(" %s", cf->nodes[order[i]].name);
        printf("\n");
    }
    aq_node_config_free(cf);
    return 0;
}
