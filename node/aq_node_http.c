/* The node's HTTP server: libmicrohttpd on its own thread, serving renderings of the snapshot the
 * loop last published (see aq_node_http.h for the bounds and rules). */
#include "aq_node_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aq_error.h"
#include "aq_node_http_assets.h"
#include "aq_node_secret.h"

struct aq_node_http {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    aq_node_snap *cur; /* guarded by mu */
    uint64_t alive_ms; /* atomic */
    uint64_t started_ms;
    uint8_t *token;
    size_t token_len;
    uint64_t alive_max_ms;
    const aq_log *log;
};

int aq_node_http_token_read(const char *path, uint8_t **out, size_t *len, char *why,
                            size_t whylen) {
    uint8_t *b;
    size_t n;
    char inner[400];
    int err = aq_node_secret_read(path, &b, &n, inner, sizeof inner);
    if (err) {
        /* The secret reader's sentence names the file "secret file": say which key it was. */
        snprintf(why, whylen, "http_token_file (held to the secret file's rules): %s", inner);
        return err;
    }
    if (n && b[n - 1] == '\n')
        n--;
    if (n && b[n - 1] == '\r')
        n--;
    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x21 || b[i] > 0x7e) {
            snprintf(why, whylen,
                     "http_token_file %s: byte %zu is not printable ASCII (a token travels in an "
                     "HTTP header; make one with e.g. `head -c 32 /dev/urandom | base64`)",
                     path, i + 1);
            aq_node_secret_free(b, n);
            return AQ_ECONFIG;
        }
    }
    *out = b;
    *len = n;
    return 0;
}

static uint64_t now_ms(void) {
    return uv_hrtime() / 1000000;
}

void aq_node_http_alive(aq_node_http *h, uint64_t t) {
    __atomic_store_n(&h->alive_ms, t, __ATOMIC_RELEASE);
}

void aq_node_http_publish(aq_node_http *h, aq_node_snap *s) {
    pthread_mutex_lock(&h->mu);
    aq_node_snap *old = h->cur;
    h->cur = s;
    pthread_mutex_unlock(&h->mu);
    aq_node_snap_unref(old);
}

static aq_node_snap *snap_get(aq_node_http *h) {
    pthread_mutex_lock(&h->mu);
    aq_node_snap *s = h->cur;
    if (s)
        aq_node_snap_ref(s);
    pthread_mutex_unlock(&h->mu);
    return s;
}

/* ---- responses ---- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                void *buf, size_t len, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"aquifer\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (strncmp(type, "text/html", 9) == 0)
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                "frame-ancestors 'none'");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text) {
    return send_buf(c, status, "text/plain; charset=utf-8", (void *)text, strlen(text),
                    MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result send_rendered(struct MHD_Connection *c, const char *type, char *buf,
                                     size_t len) {
    if (!buf)
        return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return send_buf(c, MHD_HTTP_OK, type, buf, len, MHD_RESPMEM_MUST_FREE);
}

/* Constant-time comparison of the Authorization header with "Bearer " TOKEN. */
static bool token_ok(const aq_node_http *h, struct MHD_Connection *c) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v || strncmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7;
    size_t n = strlen(v);
    if (n != h->token_len)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)v[i] ^ h->token[i];
    return diff == 0;
}

static enum MHD_Result livez(aq_node_http *h, struct MHD_Connection *c) {
    uint64_t seen = __atomic_load_n(&h->alive_ms, __ATOMIC_ACQUIRE), now = now_ms();
    if (seen == 0)
        seen = h->started_ms; /* the loop has not ticked yet: count from the start */
    if (now > seen && now - seen > h->alive_max_ms) {
        char msg[128];
        snprintf(msg, sizeof msg, "not alive: the node's loop has not run for %llu ms\n",
                 (unsigned long long)(now - seen));
        return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    return send_text(c, MHD_HTTP_OK, "alive\n");
}

static enum MHD_Result readyz(struct MHD_Connection *c, const aq_node_snap *s) {
    if (!s)
        return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: starting\n");
    if (s->ready)
        return send_text(c, MHD_HTTP_OK, "ready\n");
    char msg[300];
    snprintf(msg, sizeof msg, "not ready: %s\n", s->not_ready);
    return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

static enum MHD_Result route(aq_node_http *h, struct MHD_Connection *c, const char *url) {
    if (strcmp(url, "/livez") == 0)
        return livez(h, c);
    bool open_path = strcmp(url, "/readyz") == 0;
    if (!open_path && h->token && !token_ok(h, c))
        return send_text(c, MHD_HTTP_UNAUTHORIZED,
                         "unauthorized: send the cluster's HTTP token as \"Authorization: Bearer "
                         "TOKEN\" (http_token_file)\n");
    const aq_node_http_asset *a = aq_node_http_asset_find(url);
    if (a)
        return send_buf(c, MHD_HTTP_OK, a->type, (void *)a->data, a->len, MHD_RESPMEM_PERSISTENT);
    static const char *const known[] = {"/readyz", "/metrics", "/status", "/cluster", "/history"};
    size_t k = 0;
    while (k < sizeof known / sizeof known[0] && strcmp(url, known[k]) != 0)
        k++;
    if (k == sizeof known / sizeof known[0])
        return send_text(c, MHD_HTTP_NOT_FOUND,
                         "not found: this node serves /, /metrics, /livez, /readyz, /status, "
                         "/cluster and /history\n");
    aq_node_snap *s = snap_get(h);
    enum MHD_Result r;
    size_t len = 0;
    char *body = NULL;
    const char *type = "application/json";
    if (k == 0) {
        r = readyz(c, s);
    } else if (!s) {
        r = send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting: no status yet\n");
    } else {
        if (k == 1) {
            body = aq_node_snap_prometheus(s, &len);
            type = "text/plain; version=0.0.4; charset=utf-8";
        } else if (k == 2) {
            body = aq_node_snap_status_json(s, &len);
        } else if (k == 3) {
            body = aq_node_snap_cluster_json(s, &len);
        } else {
            body = aq_node_snap_history_json(s, &len);
        }
        r = send_rendered(c, type, body, len);
    }
    aq_node_snap_unref(s);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    aq_node_http *h = cls;
    (void)version;
    (void)upload;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "method not allowed: this server answers GET and HEAD only\n");
    /* A GET with a body: answered at once, the body is never read. */
    if (*upload_size)
        return send_text(c, MHD_HTTP_BAD_REQUEST, "bad request: a GET has no body\n");
    (void)con_cls;
    if (!url || url[0] != '/')
        return send_text(c, MHD_HTTP_BAD_REQUEST, "bad request: the path must start with /\n");
    return route(h, c, url);
}

int aq_node_http_start(const aq_node_http_opts *o, aq_node_http **out) {
    aq_node_http *h = calloc(1, sizeof *h);
    if (!h)
        return AQ_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    h->log = o->log;
    h->alive_max_ms = o->alive_max_ms;
    h->started_ms = now_ms();
    if (o->token) {
        h->token = malloc(o->token_len ? o->token_len : 1);
        if (!h->token) {
            aq_node_http_stop(h);
            return AQ_ENOMEM;
        }
        memcpy(h->token, o->token, o->token_len);
        h->token_len = o->token_len;
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
    if (o->addr->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port =
        ntohs(o->addr->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)o->addr)->sin6_port
                                             : ((const struct sockaddr_in *)o->addr)->sin_port);
    errno = 0;
    h->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)o->addr, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)AQ_NODE_HTTP_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)AQ_NODE_HTTP_CONNS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)AQ_NODE_HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)AQ_NODE_HTTP_MEMORY, MHD_OPTION_END);
    if (!h->d) {
        int err = errno ? -errno : AQ_EIO;
        aq_logf(o->log, AQ_LOG_ERROR, "cannot serve HTTP on %s: %s", o->address, aq_strerror(err));
        aq_node_http_stop(h);
        return err;
    }
    aq_logf(o->log, AQ_LOG_INFO, "HTTP on http://%s/ (%s)", o->address,
            h->token ? "token required but for /livez and /readyz" : "no token");
    *out = h;
    return 0;
}

uint16_t aq_node_http_port(const aq_node_http *h) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}

void aq_node_http_stop(aq_node_http *h) {
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    aq_node_snap_unref(h->cur);
    if (h->token)
        aq_node_secret_free(h->token, h->token_len);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
