/* aq_node_http: a node's HTTP server (libmicrohttpd) for metrics, health checks, status JSON and
 * the status page.
 *
 * The server runs on its own thread and never touches the node's loop state: the loop publishes
 * immutable snapshots (aq_node_metrics.h) and a liveness timestamp, and the HTTP thread renders
 * whatever snapshot is current. Publishing swaps one pointer under a mutex that readers hold only
 * long enough to take a reference, so the loop never waits on a slow client or a rendering.
 *
 * Invariants:
 *  - Bounded: at most AQ_NODE_HTTP_CONNS connections (AQ_NODE_HTTP_CONNS_PER_IP per client
 *    address), AQ_NODE_HTTP_MEMORY bytes of request per connection (longer headers are refused
 *    with a 4xx), and an idle connection is closed after AQ_NODE_HTTP_TIMEOUT_S.
 *  - GET and HEAD only (405 otherwise); fixed paths only (404 otherwise), so no request names a
 *    file.
 *  - With a token, every path but /livez and /readyz needs "Authorization: Bearer TOKEN" (401
 *    otherwise); the comparison takes the same time wherever the first difference is.
 */
#ifndef AQ_NODE_HTTP_H
#define AQ_NODE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "aq_node_log.h"
#include "aq_node_metrics.h"

#define AQ_NODE_HTTP_CONNS        256
#define AQ_NODE_HTTP_CONNS_PER_IP 64
#define AQ_NODE_HTTP_MEMORY       (16u * 1024)
#define AQ_NODE_HTTP_TIMEOUT_S    10u

typedef struct aq_node_http aq_node_http;

typedef struct aq_node_http_opts {
    const struct sockaddr_storage *addr; /* where to listen (TCP) */
    const char *address;                 /* its text, for messages */
    const uint8_t *token;                /* required bearer token, or NULL */
    size_t token_len;
    uint64_t alive_max_ms; /* /livez fails when the loop was last seen longer ago than this */
    const aq_log *log;
} aq_node_http_opts;

/* Binds and starts the server thread. Returns 0, or a negative error (the address is taken:
 * negated errno when known, else AQ_EIO) after logging why. */
int aq_node_http_start(const aq_node_http_opts *o, aq_node_http **out);
/* The TCP port the server listens on (the one asked for, or the one the kernel picked for 0). */
uint16_t aq_node_http_port(const aq_node_http *h);
/* Stops the thread (waiting for requests being rendered) and frees everything. NULL is fine. */
void aq_node_http_stop(aq_node_http *h);
/* Replaces the current snapshot; the server takes over the caller's reference. Any thread. */
void aq_node_http_publish(aq_node_http *h, aq_node_snap *s);
/* The loop proves it runs: now_ms is monotonic (uv_hrtime). Any thread. */
void aq_node_http_alive(aq_node_http *h, uint64_t now_ms);

/* Reads a token file: held to the secret file's rules (a regular file of 32 to 4096 bytes that
 * group and others cannot read, aq_node_secret.h), its text up to an optional final line end must
 * be printable ASCII without blanks, as a header carries it. On failure why says what is wrong,
 * naming the file. Free *out with aq_node_secret_free. */
int aq_node_http_token_read(const char *path, uint8_t **out, size_t *len, char *why, size_t whylen);

#endif
