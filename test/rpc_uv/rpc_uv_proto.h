/* What the rpc_uv test client, its server tool and rpc_bench agree on: method numbers, the
 * deterministic bytes of large payloads (so either side can check the other's with xxh3), the
 * endpoint configuration, and how a client starts the server and learns its port. */
#ifndef RPC_UV_PROTO_H
#define RPC_UV_PROTO_H

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "aq_rpc.h"

enum {
    M_HASH = 1,  /* reply: XXH3_128(request) || XXH3_128(request, seed = length), 32 bytes */
    M_BIG = 2,   /* request: 16 bytes; reply: BIG_LEN bytes, the request followed by pattern */
    M_COUNT = 3, /* reply: u64 handler runs of M_HASH and M_BIG since start */
    M_SINK = 4,  /* reply: empty (benchmarks: measures transport, not hashing) */
    M_ECHO = 5,  /* reply: the request */
};

#define BIG_LEN      (4u << 20)
#define PATTERN_SEED 0x51ED5EEDull

/* The pattern both sides build once: BIG_LEN bytes of xorshift output. */
static inline uint8_t *proto_pattern(void) {
    uint8_t *p = malloc(BIG_LEN);
    if (!p)
        return NULL;
    uint64_t x = PATTERN_SEED;
    for (size_t i = 0; i < BIG_LEN; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    return p;
}

/* The test cluster's endpoint configuration. AQ_RPC_SECRET (>= 32 bytes) authenticates every
 * packet (a server started by proto_spawn_server inherits it); AQ_RPC_ENCRYPT=1, with a secret,
 * encrypts CALL and REPLY payloads too. */
static inline void proto_config(aq_rpc_config *cfg) {
    aq_rpc_config_init(cfg);
    cfg->cluster_id = aq_rpc_cluster_id("rpc_uv_test");
    const char *secret = getenv("AQ_RPC_SECRET");
    if (secret && *secret) {
        cfg->secret = secret;
        cfg->secret_len = strlen(secret);
        const char *enc = getenv("AQ_RPC_ENCRYPT");
        cfg->encrypt = enc && atoi(enc);
    }
}

/* Starts the server at path on port (0: ephemeral), killed when this process dies, and reads the
 * port it listens on from its first line ("port N"). Its pid, or -1 (nothing left running). */
static inline pid_t proto_spawn_server(const char *path, unsigned port, uint16_t *bound) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], STDOUT_FILENO);
        char arg[16];
        snprintf(arg, sizeof arg, "%u", port);
        execl(path, path, arg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64] = {0};
    size_t got = 0;
    while (pid > 0 && got < sizeof line - 1 && !strchr(line, '\n')) {
        ssize_t n = read(p[0], line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    unsigned v = 0;
    if (pid < 0 || sscanf(line, "port %u", &v) != 1 || v == 0 || v > 65535) {
        if (pid > 0)
            kill(pid, SIGKILL);
        return -1;
    }
    *bound = (uint16_t)v;
    return pid;
}

#endif
