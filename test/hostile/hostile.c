/* hostile: sends a node what no well-behaved peer would, for test/hostile/hostile.sh.
 *
 * Usage: hostile ADDR CLUSTER MODE [N] [SECONDS]
 *   random N        N datagrams of random bytes and lengths (0..1500)
 *   absurd          datagrams and pipe frames with valid checksums whose lengths lie: a 4 GiB
 *                   fragment, msg_len over the maximum, frag_off + frag_len overflowing; each pipe
 *                   lie on its own connection after a valid HELLO. Prints how many connections the
 *                   node cut off.
 *   foreign N       N valid GET calls of another cluster over UDP, and one pipe whose HELLO is
 *                   foreign
 *   dupflood N      one valid GET call (a fresh incarnation, task 1) sent N times over UDP; prints
 *                   the REPLY and PENDING datagrams that came back
 *   calls N         N distinct valid GET calls over UDP whose replies are never acknowledged
 *   partials N      one pipe opening N partial 1 MiB calls (headers only, distinct tasks)
 *   idle N SECONDS  N connections that send nothing, held SECONDS; prints how many the node
 *                   closed
 *   siege N SECONDS N connections that send nothing, each reopened once the node closes it (at most
 *                   SIEGE_RATE reopens a second), for SECONDS; prints how many the node closed
 *   loris SECONDS   a connection sending a HELLO and a frame header one byte a second, for at
 *                   most SECONDS; prints whether and after how long the node closed it
 *   churn N         N connections opened and dropped at once (every other one with a reset)
 *   puts            over one pipe, a 4 MiB PUT of hostile/good with its true digest, then one of
 *                   hostile/bad whose value was changed after its digest was computed (every
 *                   fragment's checksum valid); prints the status each reply carried
 * Exit status 0 when everything could be sent (what the node did is for the caller to check), 1
 * on a local error, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aq_node_proto.h"
#include "aq_rpc.h"
#include "aq_rpc_wire.h"
#include "aq_xxh.h"

#define M_GET 2 /* AQ_M_GET of node/aq_node_proto.h */

typedef struct ctx {
    aq_rpc_addr to;
    socklen_t tolen;
    uint64_t cluster;
    uint64_t inc;
} ctx;

static void die(const char *what) {
    fprintf(stderr, "hostile: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t rnd64(void) {
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        die("getrandom");
    return v;
}

static socklen_t addr_len(const aq_rpc_addr *a) {
    return a->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* A frame with a valid checksum; payload is frag_len bytes, or none when payload == NULL (the
 * header then lies about what follows). */
static size_t frame(const ctx *c, uint8_t *out, uint64_t cluster, uint8_t kind, uint16_t method,
                    uint64_t task, uint32_t msg_len, uint32_t frag_off, uint32_t frag_len,
                    const void *payload) {
    aq_rpc_hdr h = {0};
    h.version = AQ_RPC_WIRE_VERSION;
    h.kind = kind;
    h.method = method;
    h.cluster_id = cluster;
    h.src_inc = c->inc;
    h.task = task;
    h.msg_len = msg_len;
    h.frag_off = frag_off;
    h.frag_len = frag_len;
    if (payload) {
        memcpy(out + AQ_RPC_HDR_LEN, payload, frag_len);
        aq_rpc_hdr_encode(&h, out + AQ_RPC_HDR_LEN, out);
        return AQ_RPC_HDR_LEN + frag_len;
    }
    /* No payload: checksum over the header alone, as a sender that then stalls would. */
    h.frag_len = 0;
    aq_rpc_hdr_encode(&h, NULL, out);
    h.frag_len = frag_len;
    uint8_t tmp[AQ_RPC_HDR_LEN];
    memcpy(tmp, out, sizeof tmp);
    for (int i = 0; i < 4; i++)
        tmp[48 + i] = (uint8_t)(frag_len >> (8 * i));
    memset(tmp + 56, 0, 8);
    uint64_t ck = aq_rpc_hdr_checksum(tmp, NULL, 0);
    for (int i = 0; i < 8; i++)
        tmp[56 + i] = (uint8_t)(ck >> (8 * i));
    memcpy(out, tmp, sizeof tmp);
    return AQ_RPC_HDR_LEN;
}

static size_t get_call(const ctx *c, uint8_t *out, uint64_t cluster, uint64_t task) {
    static const char key[] = "hostile/probe";
    uint8_t req[2 + sizeof key - 1];
    req[0] = 0;
    req[1] = sizeof key - 1;
    memcpy(req + 2, key, sizeof key - 1);
    return frame(c, out, cluster, AQ_RPC_K_CALL, M_GET, task, sizeof req, 0, sizeof req, req);
}

static int udp_sock(const ctx *c) {
    int s = socket(c->to.ss.ss_family, SOCK_DGRAM, 0);
    if (s < 0)
        die("socket");
    return s;
}

static void udp_send(const ctx *c, int s, const void *p, size_t n) {
    /* Loopback drops when the node's buffer is full; a pause keeps most of the flood arriving. */
    while (sendto(s, p, n, 0, (const struct sockaddr *)&c->to.ss, c->tolen) < 0) {
        if (errno != ENOBUFS && errno != EAGAIN)
            die("sendto");
        usleep(1000);
    }
}

static int tcp_conn(const ctx *c) {
    int s = socket(c->to.ss.ss_family, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    if (connect(s, (const struct sockaddr *)&c->to.ss, c->tolen) < 0)
        die("connect");
    return s;
}

static void tcp_send(int s, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t k = send(s, b, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return; /* the node may have cut us off already: that is its right */
        }
        b += k;
        n -= (size_t)k;
    }
}

static size_t hello(const ctx *c, uint8_t *out, uint64_t cluster, int s) {
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    uint16_t port = 0;
    if (getsockname(s, (struct sockaddr *)&me, &ml) == 0)
        port = ntohs(me.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&me)->sin6_port
                                              : ((struct sockaddr_in *)&me)->sin_port);
    uint8_t pl[2] = {(uint8_t)port, (uint8_t)(port >> 8)};
    return frame(c, out, cluster, AQ_RPC_K_HELLO, 0, 0, 2, 0, 2, pl);
}

/* True when the node closed the connection within ms milliseconds (anything it sends first is
 * read and ignored). */
static int closed_by_peer(int s, int ms) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return 0;
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            continue;
        uint8_t b[4096];
        ssize_t k = recv(s, b, sizeof b, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return 1;
    }
}

static int do_random(const ctx *c, long n) {
    int s = udp_sock(c);
    uint8_t b[1500];
    for (long i = 0; i < n; i++) {
        size_t len = rnd64() % sizeof b;
        for (size_t k = 0; k < len; k += 8) {
            uint64_t v = rnd64();
            memcpy(b + k, &v, len - k < 8 ? len - k : 8);
        }
        /* A third of them start with a valid magic and version, to get past the first check. */
        if (len >= 4 && i % 3 == 0) {
            b[0] = 0x41, b[1] = 0x51, b[2] = AQ_RPC_WIRE_VERSION, b[3] = (uint8_t)(1 + i % 8);
        }
        udp_send(c, s, b, len);
    }
    close(s);
    printf("random: sent %ld datagrams\n", n);
    return 0;
}

static int do_absurd(const ctx *c) {
    static const struct {
        const char *what;
        uint32_t msg_len, frag_off, frag_len;
    } lies[] = {
        {"4 GiB fragment claim", 0xffffffffu, 0, 0xffffffffu},
        {"msg_len over the maximum", AQ_RPC_MAX_PAYLOAD + 1, 0, 1000},
        {"frag_off + frag_len overflow", AQ_RPC_MAX_PAYLOAD, 0xffffff00u, 0x200},
        {"fragment past the message end", 1000, 900, 200},
    };
    uint8_t b[AQ_RPC_HDR_LEN + 64];
    int s = udp_sock(c);
    int n = (int)(sizeof lies / sizeof lies[0]);
    for (int i = 0; i < n; i++)
        for (int rep = 0; rep < 10; rep++) {
            frame(c, b, c->cluster, AQ_RPC_K_CALL, M_GET, 100 + (uint64_t)i, lies[i].msg_len,
                  lies[i].frag_off, lies[i].frag_len, NULL);
            udp_send(c, s, b, AQ_RPC_HDR_LEN);
        }
    close(s);
    int cut = 0;
    for (int i = 0; i < n; i++) {
        int t = tcp_conn(c);
        tcp_send(t, b, hello(c, b, c->cluster, t));
        frame(c, b, c->cluster, AQ_RPC_K_CALL, M_GET, 200 + (uint64_t)i, lies[i].msg_len,
              lies[i].frag_off, lies[i].frag_len, NULL);
        tcp_send(t, b, AQ_RPC_HDR_LEN);
        int gone = closed_by_peer(t, 5000);
        printf("absurd: pipe with %s: %s\n", lies[i].what, gone ? "cut off" : "still open");
        cut += gone;
        close(t);
    }
    printf("absurd: sent %d lying datagrams; %d of %d lying pipes cut off\n", n * 10, cut, n);
    return 0;
}

static int do_foreign(const ctx *c, long n) {
    uint8_t b[256];
    uint64_t other = c->cluster ^ 0x1;
    int s = udp_sock(c);
    for (long i = 0; i < n; i++)
        udp_send(c, s, b, get_call(c, b, other, 1 + (uint64_t)i));
    close(s);
    int t = tcp_conn(c);
    tcp_send(t, b, hello(c, b, other, t));
    int gone = closed_by_peer(t, 5000);
    close(t);
    printf("foreign: sent %ld datagrams; foreign pipe %s\n", n, gone ? "cut off" : "still open");
    return 0;
}

static int do_dupflood(const ctx *c, long n) {
    uint8_t b[256];
    size_t len = get_call(c, b, c->cluster, 1);
    int s = udp_sock(c);
    long replies = 0, pendings = 0, other = 0;
    for (long i = 0; i < n; i++) {
        udp_send(c, s, b, len);
        uint8_t r[AQ_RPC_DGRAM_MAX];
        ssize_t k;
        while ((k = recv(s, r, sizeof r, MSG_DONTWAIT)) >= AQ_RPC_HDR_LEN)
            r[3] == AQ_RPC_K_REPLY ? replies++ : r[3] == AQ_RPC_K_PENDING ? pendings++ : other++;
    }
    /* Collect the answers still in flight, then acknowledge the reply so the node can forget it. */
    struct pollfd p = {s, POLLIN, 0};
    while (poll(&p, 1, 1000) > 0) {
        uint8_t r[AQ_RPC_DGRAM_MAX];
        ssize_t k = recv(s, r, sizeof r, 0);
        if (k >= AQ_RPC_HDR_LEN)
            r[3] == AQ_RPC_K_REPLY ? replies++ : r[3] == AQ_RPC_K_PENDING ? pendings++ : other++;
    }
    uint8_t ack[8] = {1};
    udp_send(c, s, b, frame(c, b, c->cluster, AQ_RPC_K_ACKACK, 0, 0, 8, 0, 8, ack));
    close(s);
    printf("dupflood: sent %ld copies; got %ld replies, %ld pending, %ld other\n", n, replies,
           pendings, other);
    return 0;
}

static int do_calls(const ctx *c, long n) {
    uint8_t b[256];
    int s = udp_sock(c);
    for (long i = 0; i < n; i++)
        udp_send(c, s, b, get_call(c, b, c->cluster, 1 + (uint64_t)i));
    /* Never acknowledged: the node keeps each reply and resends it until its cache time ends. */
    close(s);
    printf("calls: sent %ld distinct calls, never acknowledged\n", n);
    return 0;
}

static int do_partials(const ctx *c, long n) {
    uint8_t b[AQ_RPC_HDR_LEN + 64];
    int t = tcp_conn(c);
    tcp_send(t, b, hello(c, b, c->cluster, t));
    static uint8_t batch[AQ_RPC_HDR_LEN * 1024];
    long sent = 0;
    while (sent < n) {
        size_t k = 0;
        for (; k < 1024 && sent < n; k++, sent++)
            frame(c, batch + k * AQ_RPC_HDR_LEN, c->cluster, AQ_RPC_K_CALL, M_GET,
                  1000 + (uint64_t)sent, 1u << 20, 0, 0, NULL);
        tcp_send(t, batch, k * AQ_RPC_HDR_LEN);
    }
    int gone = closed_by_peer(t, 3000);
    close(t);
    printf("partials: opened %ld partial 1 MiB calls; pipe %s\n", n,
           gone ? "cut off" : "still open");
    return 0;
}

static int do_idle(const ctx *c, long n, long secs) {
    int *fds = calloc((size_t)n, sizeof *fds);
    if (!fds)
        die("calloc");
    for (long i = 0; i < n; i++)
        fds[i] = tcp_conn(c);
    sleep((unsigned)secs);
    long gone = 0;
    for (long i = 0; i < n; i++) {
        gone += closed_by_peer(fds[i], 1);
        close(fds[i]);
    }
    free(fds);
    printf("idle: held %ld silent connections %ld s; %ld closed by the node\n", n, secs, gone);
    return 0;
}

static long ms_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Enough to keep a node's slots for unidentified connections full at all times; an unpaced siege
 * only churns faster (tens of thousands a second), which costs the machine, not the node's bounds.
 */
#define SIEGE_RATE 2000

static int do_siege(const ctx *c, long n, long secs) {
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    if (!p)
        die("calloc");
    for (long i = 0; i < n; i++)
        p[i] = (struct pollfd){tcp_conn(c), POLLIN, 0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long closed = 0, reopened = 0;
    for (long ms; (ms = ms_since(&t0)) < secs * 1000;) {
        for (long i = 0; i < n && reopened < ms * SIEGE_RATE / 1000; i++) {
            if (p[i].fd < 0) {
                p[i].fd = tcp_conn(c);
                reopened++;
            }
        }
        if (poll(p, (nfds_t)n, 10) <= 0)
            continue;
        for (long i = 0; i < n; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            uint8_t b[64];
            ssize_t k = recv(p[i].fd, b, sizeof b, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                closed++;
                close(p[i].fd);
                p[i].fd = -1; /* poll skips it until it is reopened */
            }
            p[i].revents = 0;
        }
    }
    for (long i = 0; i < n; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    free(p);
    printf("siege: kept %ld silent connections open for %ld s; %ld closed by the node\n", n, secs,
           closed);
    return 0;
}

static int do_loris(const ctx *c, long secs) {
    uint8_t b[256];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int t = tcp_conn(c);
    size_t len = hello(c, b, c->cluster, t);
    len += get_call(c, b + len, c->cluster, 1) - 15; /* a header and part of its payload */
    long sent = 0;
    int gone = 0;
    while (!gone && sent < secs && (size_t)sent < len) {
        tcp_send(t, b + sent, 1);
        sent++;
        gone = closed_by_peer(t, 1000);
    }
    long ms = ms_since(&t0);
    close(t);
    if (gone)
        printf("loris: sent %ld bytes, one a second; closed by the node after %ld ms\n", sent, ms);
    else
        printf("loris: sent %ld bytes, one a second; still open after %ld ms\n", sent, ms);
    return 0;
}

static int do_churn(const ctx *c, long n) {
    for (long i = 0; i < n; i++) {
        int t = tcp_conn(c);
        if (i % 2) {
            struct linger l = {1, 0};
            setsockopt(t, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(t);
    }
    printf("churn: opened and dropped %ld connections\n", n);
    return 0;
}

/* A UDP and a TCP socket bound to one port: the node answers a call that came over the pipe at
 * the port its HELLO names, by datagram when the reply is small. */
static void pair_on_one_port(const ctx *c, int *udp, int *tcp) {
    for (int tries = 0; tries < 100; tries++) {
        *udp = udp_sock(c);
        aq_rpc_addr any;
        memset(&any, 0, sizeof any);
        any.ss.ss_family = c->to.ss.ss_family;
        if (bind(*udp, (struct sockaddr *)&any.ss, c->tolen) < 0)
            die("bind");
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        if (getsockname(*udp, (struct sockaddr *)&me, &ml) < 0)
            die("getsockname");
        *tcp = socket(c->to.ss.ss_family, SOCK_STREAM, 0);
        if (*tcp < 0)
            die("socket");
        if (bind(*tcp, (struct sockaddr *)&me, ml) == 0) {
            if (connect(*tcp, (const struct sockaddr *)&c->to.ss, c->tolen) < 0)
                die("connect");
            return;
        }
        close(*udp);
        close(*tcp);
    }
    die("no port free for both UDP and TCP");
}

/* Sends one PUT over the pipe t as 256 KiB fragments and waits for its REPLY on u (acknowledged).
 * Returns the reply's status, or 1 when none came within 20 s. */
static int put_over_pipe(const ctx *c, int t, int u, uint64_t task, const char *key, bool corrupt) {
    size_t vlen = (size_t)4 << 20, klen = strlen(key);
    uint8_t head[AQ_PUT_HEAD_MAX];
    uint8_t *msg = malloc(sizeof head + vlen);
    uint8_t *out = malloc(AQ_RPC_HDR_LEN + (256u << 10));
    if (!msg || !out)
        die("malloc");
    for (size_t i = 0; i < vlen; i += 8) {
        uint64_t r = rnd64();
        memcpy(msg + sizeof head + i, &r, 8);
    }
    XXH128_hash_t h = XXH3_128bits(msg + sizeof head, vlen);
    aq_wr w = {head, 0, sizeof head, true};
    aq_node_put_req_head(&w, 0, AQ_KIND_VALUE, key, klen, (aq_node_digest){h.high64, h.low64});
    uint8_t *req = msg + sizeof head - w.len;
    memcpy(req, head, w.len);
    if (corrupt)
        msg[sizeof head + vlen / 2] ^= 0x40; /* after the digest: the checksums still hold */
    uint32_t len = (uint32_t)(w.len + vlen);
    for (uint32_t off = 0; off < len;) {
        uint32_t n = len - off < (256u << 10) ? len - off : (256u << 10);
        tcp_send(t, out,
                 frame(c, out, c->cluster, AQ_RPC_K_CALL, AQ_M_PUT, task, len, off, n, req + off));
        off += n;
    }
    free(msg);
    free(out);
    int status = 1;
    struct pollfd p = {u, POLLIN, 0};
    for (int waited = 0; status == 1 && waited < 200 && poll(&p, 1, 100) >= 0; waited++) {
        uint8_t r[AQ_RPC_DGRAM_MAX];
        aq_rpc_hdr rh;
        ssize_t k;
        while (status == 1 && (k = recv(u, r, sizeof r, MSG_DONTWAIT)) >= AQ_RPC_HDR_LEN)
            if (aq_rpc_hdr_decode(r, &rh) == 0 && rh.kind == AQ_RPC_K_REPLY && rh.task == task)
                status = rh.status;
    }
    uint8_t ack[8], b[AQ_RPC_HDR_LEN + 8];
    for (int i = 0; i < 8; i++)
        ack[i] = (uint8_t)(task >> (8 * i));
    udp_send(c, u, b, frame(c, b, c->cluster, AQ_RPC_K_ACKACK, 0, 0, 8, 0, 8, ack));
    return status;
}

static int do_puts(const ctx *c) {
    int u, t;
    pair_on_one_port(c, &u, &t);
    uint8_t b[AQ_RPC_HDR_LEN + 64];
    tcp_send(t, b, hello(c, b, c->cluster, t));
    int good = put_over_pipe(c, t, u, 1, "hostile/good", false);
    int bad = put_over_pipe(c, t, u, 2, "hostile/bad", true);
    close(t);
    close(u);
    printf("puts: good status %d, corrupt status %d\n", good, bad);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: hostile ADDR CLUSTER MODE [N] [SECONDS]\n");
        return 2;
    }
    ctx c;
    if (aq_rpc_addr_parse(argv[1], &c.to) != 0) {
        fprintf(stderr, "hostile: bad address %s\n", argv[1]);
        return 2;
    }
    c.tolen = addr_len(&c.to);
    c.cluster = aq_rpc_cluster_id(argv[2]);
    c.inc = rnd64() | 1;
    const char *m = argv[3];
    long n = argc > 4 ? strtol(argv[4], NULL, 10) : 1000;
    long secs = argc > 5 ? strtol(argv[5], NULL, 10) : 5;
    if (n < 0 || n > 10000000 || secs < 0 || secs > 600) {
        fprintf(stderr, "hostile: N or SECONDS out of range\n");
        return 2;
    }
    if (!strcmp(m, "random"))
        return do_random(&c, n);
    if (!strcmp(m, "absurd"))
        return do_absurd(&c);
    if (!strcmp(m, "foreign"))
        return do_foreign(&c, n);
    if (!strcmp(m, "dupflood"))
        return do_dupflood(&c, n);
    if (!strcmp(m, "calls"))
        return do_calls(&c, n);
    if (!strcmp(m, "partials"))
        return do_partials(&c, n);
    if (!strcmp(m, "idle"))
        return do_idle(&c, n, secs);
    if (!strcmp(m, "siege"))
        return do_siege(&c, n, secs);
    if (!strcmp(m, "loris"))
        return do_loris(&c, argc > 4 ? n : 10);
    if (!strcmp(m, "churn"))
        return do_churn(&c, n);
    if (!strcmp(m, "puts"))
        return do_puts(&c);
    fprintf(stderr, "hostile: unknown mode %s\n", m);
    return 2;
}
