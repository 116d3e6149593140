/* Addresses and the cluster id: plain helpers with no core state. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aq_xxh.h"

#include "aq_rpc.h"

static int parse_port(const char *s, uint16_t *port) {
    if (!*s || strlen(s) > 5)
        return AQ_EINVAL;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return AQ_EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return AQ_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int aq_rpc_addr_parse(const char *text, aq_rpc_addr *out) {
    if (!text || !out)
        return AQ_EINVAL;
    size_t n = strlen(text);
    if (n == 0 || n >= 64)
        return AQ_EINVAL;
    char host[64];
    const char *portstr;
    aq_rpc_addr a;
    memset(&a, 0, sizeof a);
    uint16_t port;
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':')
            return AQ_EINVAL;
        size_t hl = (size_t)(end - text - 1);
        memcpy(host, text + 1, hl);
        host[hl] = 0;
        portstr = end + 2;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
        if (parse_port(portstr, &port) || inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return AQ_EINVAL;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return AQ_EINVAL;
        size_t hl = (size_t)(colon - text);
        memcpy(host, text, hl);
        host[hl] = 0;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        if (parse_port(colon + 1, &port) || inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return AQ_EINVAL;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
    }
    *out = a;
    return 0;
}

char *aq_rpc_addr_format(const aq_rpc_addr *a, char *buf, size_t n) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (!buf || n == 0)
        return buf;
    if (a && a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, n, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (a && a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(buf, n, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, n, "?");
    }
    return buf;
}

bool aq_rpc_addr_eq(const aq_rpc_addr *a, const aq_rpc_addr *b) {
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

uint16_t aq_rpc_addr_port(const aq_rpc_addr *a) {
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

void aq_rpc_addr_set_port(aq_rpc_addr *a, uint16_t port) {
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

uint64_t aq_rpc_cluster_id(const char *cluster_name) {
    const char *s = cluster_name ? cluster_name : "";
    return XXH3_64bits(s, strlen(s));
}
