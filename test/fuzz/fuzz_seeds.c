/* Writes seed inputs for the rpc fuzz targets: valid datagrams and pipe streams that walk the
 * call state machine (calls, duplicates, acknowledgements, replies, PENDING/BUSY/NACK, notifies,
 * multi-fragment messages), in the input formats fuzz_rpc_dgram.c and fuzz_rpc_pipe.c document.
 * Usage: fuzz_seeds DIR   (writes DIR/fuzz_rpc_dgram/seed-* and DIR/fuzz_rpc_pipe/seed-*) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aq_rpc_wire.h"
#include "fuzz_net.h"

#define PEER_INC 0x77u

typedef struct out {
    uint8_t b[1 << 16];
    size_t n;
} out;

static void put(out *o, const void *p, size_t n) {
    if (o->n + n > sizeof o->b)
        abort();
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put8(out *o, uint8_t v) {
    put(o, &v, 1);
}

/* A frame: header + payload bytes [off, off+flen) of a message of msg_len bytes. */
static size_t frame(uint8_t *buf, uint8_t kind, uint16_t method, uint64_t cluster, uint64_t dst,
                    uint64_t task, uint32_t msg_len, uint32_t off, uint32_t flen, int32_t status,
                    uint8_t fill) {
    aq_rpc_hdr h = {0};
    h.version = AQ_RPC_WIRE_VERSION;
    h.kind = kind;
    h.method = method;
    h.cluster_id = cluster;
    h.src_inc = PEER_INC;
    h.dst_inc = dst;
    h.task = task;
    h.msg_len = msg_len;
    h.frag_off = off;
    h.frag_len = flen;
    h.status = status;
    memset(buf + AQ_RPC_HDR_LEN, fill, flen);
    if (kind == AQ_RPC_K_ACKACK && flen >= 8)
        for (int i = 0; i < 8; i++)
            buf[AQ_RPC_HDR_LEN + i] = (uint8_t)(task >> (8 * i));
    aq_rpc_hdr_encode(&h, buf + AQ_RPC_HDR_LEN, buf);
    return AQ_RPC_HDR_LEN + flen;
}

/* Datagram op: 0, u16 length, bytes. */
static void dgram(out *o, uint8_t kind, uint16_t method, uint64_t dst, uint64_t task, uint32_t len,
                  int32_t status) {
    uint8_t buf[AQ_RPC_DGRAM_MAX];
    size_t n = frame(buf, kind, method, FZ_CLUSTER, dst, task, len, 0, len, status, 'a');
    put8(o, 0);
    put8(o, (uint8_t)n);
    put8(o, (uint8_t)(n >> 8));
    put(o, buf, n);
}

static void save(const char *dir, const char *target, const char *name, const out *o) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    if (mkdir(path, 0755) && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/seed-%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(o->b, 1, o->n, f) != o->n || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static void dgram_seeds(const char *dir) {
    static out o;
    const char *t = "fuzz_rpc_dgram";
    /* A call, its duplicate, time, the acknowledgement of the reply. */
    o.n = 0;
    put8(&o, 0);
    dgram(&o, AQ_RPC_K_CALL, 1, 0, 1, 5, 0);
    dgram(&o, AQ_RPC_K_CALL, 1, 0, 1, 5, 0);
    put8(&o, 1), put8(&o, 30);
    dgram(&o, AQ_RPC_K_ACKACK, 0, FZ_INC, 1, 8, 0);
    dgram(&o, AQ_RPC_K_CALL, 2, FZ_INC, 2, 0, 0);
    save(dir, t, "call-dup-ackack", &o);
    /* Held handler: duplicates get PENDING, then the answer, then the cached reply. */
    o.n = 0;
    put8(&o, 2);
    dgram(&o, AQ_RPC_K_CALL, 3, 0, 1, 16, 0);
    dgram(&o, AQ_RPC_K_CALL, 3, 0, 1, 16, 0);
    put8(&o, 3), put8(&o, 0);
    dgram(&o, AQ_RPC_K_CALL, 3, 0, 1, 16, 0);
    put8(&o, 1), put8(&o, 255);
    save(dir, t, "held", &o);
    /* Our calls and every kind of answer to them. */
    static const uint8_t kinds[] = {AQ_RPC_K_REPLY, AQ_RPC_K_PENDING, AQ_RPC_K_BUSY, AQ_RPC_K_NACK};
    static const char *names[] = {"reply", "pending", "busy", "nack"};
    for (int k = 0; k < 4; k++) {
        o.n = 0;
        put8(&o, 0);
        put8(&o, 2), put8(&o, 1), put8(&o, 2);
        put8(&o, 2), put8(&o, 2), put8(&o, 1);
        int32_t st = kinds[k] == AQ_RPC_K_BUSY ? 5 : kinds[k] == AQ_RPC_K_NACK ? AQ_ERESTARTED : 0;
        dgram(&o, kinds[k], 1, FZ_INC, 1, kinds[k] == AQ_RPC_K_REPLY ? 4 : 0, st);
        put8(&o, 1), put8(&o, 20);
        dgram(&o, kinds[k], 2, FZ_INC, 2, 0, st);
        put8(&o, 1), put8(&o, 255);
        save(dir, t, names[k], &o);
    }
    /* A notify, a call to an incarnation of ours that is gone, a foreign one, a big call. */
    o.n = 0;
    put8(&o, 0);
    dgram(&o, AQ_RPC_K_NOTIFY, 5, 0, 0, 12, 0);
    dgram(&o, AQ_RPC_K_CALL, 1, FZ_INC + 1, 9, 3, 0);
    put8(&o, 2), put8(&o, 4), put8(&o, 200); /* 1600 bytes: over the pipe */
    put8(&o, 4);
    put8(&o, 1), put8(&o, 100);
    save(dir, t, "notify-stale-pipe", &o);
}

static void pipe_seeds(const char *dir) {
    static out o;
    static uint8_t buf[1 << 15];
    const char *t = "fuzz_rpc_pipe";
    uint8_t hello[AQ_RPC_HDR_LEN + 2];
    {
        aq_rpc_hdr h = {0};
        h.version = AQ_RPC_WIRE_VERSION;
        h.kind = AQ_RPC_K_HELLO;
        h.cluster_id = FZ_CLUSTER;
        h.src_inc = PEER_INC;
        h.msg_len = h.frag_len = 2;
        hello[64] = 7001 & 0xff;
        hello[65] = 7001 >> 8;
        aq_rpc_hdr_encode(&h, hello + 64, hello);
    }
    /* HELLO, a two-fragment call, its duplicate, the acknowledgement. */
    o.n = 0;
    put8(&o, 0), put8(&o, 1), put8(&o, 2);
    put(&o, hello, sizeof hello);
    for (int rep = 0; rep < 2; rep++) {
        put(&o, buf, frame(buf, AQ_RPC_K_CALL, 1, FZ_CLUSTER, 0, 1, 3000, 0, 1500, 0, 'x'));
        put(&o, buf, frame(buf, AQ_RPC_K_CALL, 1, FZ_CLUSTER, 0, 1, 3000, 1500, 1500, 0, 'y'));
    }
    put(&o, buf, frame(buf, AQ_RPC_K_ACKACK, 0, FZ_CLUSTER, FZ_INC, 1, 8, 0, 8, 0, 0));
    save(dir, t, "two-fragments", &o);
    /* Auto HELLO, held handlers, timer: small calls and a notify. */
    o.n = 0;
    put8(&o, 4 | 2 | 16), put8(&o, 7), put8(&o, 0);
    for (uint64_t task = 1; task <= 4; task++)
        put(&o, buf, frame(buf, AQ_RPC_K_CALL, 2, FZ_CLUSTER, 0, task, 40, 0, 40, 0, 'c'));
    put(&o, buf, frame(buf, AQ_RPC_K_NOTIFY, 3, FZ_CLUSTER, 0, 0, 10, 0, 10, 0, 'n'));
    save(dir, t, "held-calls", &o);
    /* A 4 MiB claim with one fragment sent, on two connections: held until the end. */
    o.n = 0;
    put8(&o, 4 | 32), put8(&o, 3), put8(&o, 9);
    put(&o, buf, frame(buf, AQ_RPC_K_CALL, 1, FZ_CLUSTER, 0, 1, 4u << 20, 0, 2000, 0, 'z'));
    save(dir, t, "partial-4mib", &o);
    /* A foreign frame after HELLO (cut off), then the over-lent report. */
    o.n = 0;
    put8(&o, 4 | 8), put8(&o, 1), put8(&o, 1);
    put(&o, buf, frame(buf, AQ_RPC_K_CALL, 1, FZ_CLUSTER + 1, 0, 1, 10, 0, 10, 0, 'f'));
    save(dir, t, "foreign", &o);
    /* Checksum fix-up mode with a stale and a garbage checksum. */
    o.n = 0;
    put8(&o, 4 | 1), put8(&o, 5), put8(&o, 5);
    size_t n = frame(buf, AQ_RPC_K_CALL, 4, FZ_CLUSTER, 0, 7, 100, 0, 100, 0, 'q');
    buf[60] ^= 0xff;
    put(&o, buf, n);
    put(&o, buf, frame(buf, AQ_RPC_K_REPLY, 4, FZ_CLUSTER, FZ_INC, 1, 10, 0, 10, 0, 'r'));
    save(dir, t, "fixup", &o);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    dgram_seeds(argv[1]);
    pipe_seeds(argv[1]);
    return 0;
}
