/* What the rpc_uv test client, its server tool and rpc_bench agree on: method numbers and the
 * deterministic bytes of large payloads, so either side can check the other's with xxh3. */
#ifndef RPC_UV_PROTO_H
#define RPC_UV_PROTO_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

#endif
