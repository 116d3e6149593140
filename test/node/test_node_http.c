/* The HTTP server alone (node/aq_node_http.c), on an ephemeral loopback port, driven by raw
 * requests: liveness from the loop's timestamp (a stalled loop fails /livez, which no test of a
 * whole node can provoke without stopping the process), readiness from the published snapshot,
 * routing, methods and the bearer token. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "aq_node_http.h"

static aq_node_http *start(const char *token, uint64_t alive_max_ms) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    aq_node_http_opts o = {
        .addr = &ss,
        .address = "127.0.0.1:0",
        .token = (const uint8_t *)token,
        .token_len = token ? strlen(token) : 0,
        .alive_max_ms = alive_max_ms,
        .log = NULL,
    };
    aq_node_http *h = NULL;
    cr_assert_eq(aq_node_http_start(&o, &h), 0);
    cr_assert_neq(aq_node_http_port(h), 0);
    return h;
}

/* Sends raw and returns the status code; the body (after the blank line) into body. */
static int request(aq_node_http *h, const char *raw, char *body, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(aq_node_http_port(h))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    char buf[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = 0;
    int code = 0;
    sscanf(buf, "HTTP/1.%*d %d", &code);
    if (body) {
        const char *b = strstr(buf, "\r\n\r\n");
        snprintf(body, cap, "%s", b ? b + 4 : "");
    }
    return code;
}

static int get(aq_node_http *h, const char *path, const char *auth, char *body, size_t cap) {
    char raw[1024];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s\r\n", path,
             auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    return request(h, raw, body, cap);
}

static uint64_t now_ms(void) {
    return uv_hrtime() / 1000000;
}

Test(http, livez_follows_the_loop) {
    aq_node_http *h = start(NULL, 1000);
    char body[256];
    aq_node_http_alive(h, now_ms());
    cr_expect_eq(get(h, "/livez", NULL, body, sizeof body), 200);
    cr_expect_str_eq(body, "alive\n");
    /* The loop last ticked 5 s ago: it is stuck, whatever the HTTP thread can still do. */
    aq_node_http_alive(h, now_ms() - 5000);
    cr_expect_eq(get(h, "/livez", NULL, body, sizeof body), 503);
    cr_expect(strncmp(body, "not alive: the node's loop has not run for ", 43) == 0, "%s", body);
    aq_node_http_alive(h, now_ms());
    cr_expect_eq(get(h, "/livez", NULL, body, sizeof body), 200);
    aq_node_http_stop(h);
}

Test(http, readyz_and_status_follow_the_snapshot) {
    aq_node_http *h = start(NULL, 10000);
    char body[4096];
    cr_expect_eq(get(h, "/readyz", NULL, body, sizeof body), 503);
    cr_expect_str_eq(body, "not ready: starting\n");
    cr_expect_eq(get(h, "/status", NULL, body, sizeof body), 503);
    aq_node_snap *s = aq_node_snap_new(1);
    snprintf(s->views[0].name, sizeof s->views[0].name, "n1");
    snprintf(s->not_ready, sizeof s->not_ready, "sees 1 live node, fewer than 2");
    aq_node_http_publish(h, s);
    cr_expect_eq(get(h, "/readyz", NULL, body, sizeof body), 503);
    cr_expect_str_eq(body, "not ready: sees 1 live node, fewer than 2\n");
    cr_expect_eq(get(h, "/status", NULL, body, sizeof body), 200);
    cr_expect(strstr(body, "\"name\": \"n1\"") != NULL, "%s", body);
    s = aq_node_snap_new(1);
    s->ready = true;
    aq_node_http_publish(h, s);
    cr_expect_eq(get(h, "/readyz", NULL, body, sizeof body), 200);
    cr_expect_str_eq(body, "ready\n");
    cr_expect_eq(get(h, "/metrics", NULL, body, sizeof body), 200);
    cr_expect(strstr(body, "# TYPE aquifer_ready gauge") != NULL);
    aq_node_http_stop(h);
}

Test(http, routes_and_methods) {
    aq_node_http *h = start(NULL, 10000);
    aq_node_http_publish(h, aq_node_snap_new(1));
    char body[4096];
    cr_expect_eq(get(h, "/", NULL, body, sizeof body), 200);
    cr_expect(strstr(body, "<script src=\"/app.js\"") != NULL);
    cr_expect_eq(get(h, "/index.html", NULL, NULL, 0), 200);
    cr_expect_eq(get(h, "/app.js", NULL, NULL, 0), 200);
    cr_expect_eq(get(h, "/style.css", NULL, NULL, 0), 200);
    cr_expect_eq(get(h, "/history", NULL, NULL, 0), 200);
    cr_expect_eq(get(h, "/cluster", NULL, NULL, 0), 200);
    cr_expect_eq(get(h, "/nothing", NULL, NULL, 0), 404);
    cr_expect_eq(get(h, "/../etc/passwd", NULL, NULL, 0), 404);
    cr_expect_eq(get(h, "/status/", NULL, NULL, 0), 404);
    cr_expect_eq(request(h, "DELETE /status HTTP/1.1\r\nHost: x\r\n\r\n", body, sizeof body), 405);
    cr_expect_eq(
        request(h, "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", NULL, 0),
        405);
    cr_expect_eq(request(h, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", body,
                         sizeof body),
                 200);
    cr_expect_str_eq(body, "", "HEAD has no body");
    aq_node_http_stop(h);
}

Test(http, bearer_token) {
    const char *tok = "0123456789abcdef0123456789abcdef";
    aq_node_http *h = start(tok, 10000);
    aq_node_http_publish(h, aq_node_snap_new(1));
    aq_node_http_alive(h, now_ms());
    char ok[64], wrong[64];
    snprintf(ok, sizeof ok, "Bearer %s", tok);
    snprintf(wrong, sizeof wrong, "Bearer %.31sX", tok);
    static const char *const guarded[] = {"/",        "/app.js",  "/metrics", "/status",
                                          "/cluster", "/history", "/nothing"};
    for (size_t i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        cr_expect_eq(get(h, guarded[i], NULL, NULL, 0), 401, "%s without a token", guarded[i]);
        cr_expect_eq(get(h, guarded[i], wrong, NULL, 0), 401, "%s with a wrong one", guarded[i]);
        cr_expect_eq(get(h, guarded[i], "Bearer 0123", NULL, 0), 401, "%s with a prefix",
                     guarded[i]);
        cr_expect_eq(get(h, guarded[i], "Basic 0123456789abcdef0123456789abcdef", NULL, 0), 401);
    }
    cr_expect_eq(get(h, "/metrics", ok, NULL, 0), 200);
    cr_expect_eq(get(h, "/nothing", ok, NULL, 0), 404);
    cr_expect_eq(get(h, "/livez", NULL, NULL, 0), 200, "probes need no token");
    cr_expect_eq(get(h, "/readyz", NULL, NULL, 0), 503, "probes need no token");
    aq_node_http_stop(h);
}
