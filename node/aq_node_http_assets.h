/* aq_node_http_assets: the status page's files (node/http/), compiled into the daemon so that the
 * page needs nothing from disk or from the internet. The table is generated at build time by
 * node/http/embed.cmake from the files themselves. */
#ifndef AQ_NODE_HTTP_ASSETS_H
#define AQ_NODE_HTTP_ASSETS_H

#include <stddef.h>

typedef struct aq_node_http_asset {
    const char *path; /* as requested, e.g. "/app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} aq_node_http_asset;

/* The asset served at path ("/" is the page itself), or NULL. */
const aq_node_http_asset *aq_node_http_asset_find(const char *path);

#endif
