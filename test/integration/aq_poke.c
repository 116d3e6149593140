/* aq_poke: talks to one named node as another node would, for tests.
 *
 *   aq_poke CONF NODE KEY FILE VERSION   sends one replica-only PUT of FILE (at most 4 MiB) with
 *                                        that version, as a coordinator's forward or a repair
 *                                        push would: the node's copy becomes newer than the other
 *                                        replicas' without any node going down or restarting
 *                                        (which would start a repair pass at once)
 *   aq_poke CONF NODE KEY                GETs that node's own copy and writes its bytes to stdout
 *                                        as they are (not checked against the digest), so a test
 *                                        can see what one replica holds
 *
 * Exits 0 on success, 1 with a sentence on stderr otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>

#include "aq_bytes.h"
#include "aq_error.h"
#include "aq_node_config.h"
#include "aq_node_proto.h"
#include "aq_rpc.h"
#include "aq_tool_rpc.h"

typedef struct poke {
    bool done;
    int err;
    char msg[256];
    aq_rpc *rpc;
    bool get;
} poke;

static void done_cb(void *ud, const aq_rpc_result *r) {
    poke *p = ud;
    p->done = true;
    p->err = r->err ? r->err : r->status;
    if (p->err) {
        aq_rpc_result_describe(p->rpc, r, p->msg, sizeof p->msg);
        return;
    }
    uint8_t kind;
    aq_node_digest d;
    const uint8_t *v;
    size_t vlen;
    if (p->get && aq_node_get_rep_decode(r->data, r->len, &kind, &d, &v, &vlen) == 0) {
        fwrite(v, 1, vlen, stdout);
    } else if (p->get) {
        p->err = AQ_EPROTO;
    } else {
        /* A replica holding a newer write keeps it and says so: the poke did not land. */
        aq_node_put_rep rep;
        if (aq_node_put_rep_decode(r->data, r->len, &rep) != 0) {
            p->err = AQ_EPROTO;
        } else if (rep.flags & AQ_REP_STALE) {
            p->err = AQ_ESTALE;
            snprintf(p->msg, sizeof p->msg, "the node holds a newer write (version %llu)",
                     (unsigned long long)rep.version);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 4) {
        fprintf(stderr, "usage: aq_poke CONF NODE KEY [FILE VERSION]\n");
        return 1;
    }
    bool get = argc == 4;
    char why[512];
    aq_node_config *cf;
    if (aq_node_config_load_file(argv[1], &cf, why, sizeof why) != 0) {
        fprintf(stderr, "aq_poke: %s\n", why);
        return 1;
    }
    const aq_node_config_node *node = aq_node_config_find(cf, argv[2]);
    FILE *f = fopen(get ? "/dev/null" : argv[4], "rb");
    uint8_t *val = malloc(AQ_NODE_CHUNK_MAX + 1);
    size_t vlen = f && val ? fread(val, 1, AQ_NODE_CHUNK_MAX + 1, f) : 0;
    if (!node || !f || !val || vlen > AQ_NODE_CHUNK_MAX || strlen(argv[3]) > AQ_NODE_KEY_MAX) {
        fprintf(stderr, "aq_poke: no node %s, or %s unreadable or over 4 MiB, or key too long\n",
                argv[2], argv[4]);
        return 1;
    }
    fclose(f);
    XXH128_hash_t h = XXH3_128bits(val, vlen);
    aq_wr w;
    aq_wr_init(&w);
    if (get) {
        aq_node_key_req_encode(&w, 0, argv[3], strlen(argv[3]));
    } else {
        aq_node_put_req_head_v(&w, AQ_PUT_REPLICA, AQ_KIND_VALUE, argv[3], strlen(argv[3]),
                               (aq_node_digest){h.high64, h.low64}, strtoull(argv[5], NULL, 10));
        aq_wr_bytes(&w, val, vlen);
    }
    free(val);
    uv_loop_t loop;
    aq_rpc_uv *uv;
    aq_rpc_addr a;
    if (!w.ok || aq_tool_rpc_open(&loop, cf, node->address, &uv, &a) != 0) {
        fprintf(stderr, "aq_poke: cannot open an endpoint\n");
        return 1;
    }
    poke p = {.rpc = aq_rpc_uv_core(uv), .get = get};
    aq_rpc_peer *peer = aq_rpc_peer_get(p.rpc, &a);
    aq_rpc_buf b = {w.p, w.len, free, w.p};
    int err = peer ? aq_rpc_call(p.rpc, peer, get ? AQ_M_GET : AQ_M_PUT, b, 10ull * 1000 * 1000,
                                 done_cb, &p)
                   : AQ_ENOMEM;
    if (err) {
        p.done = true;
        p.err = err;
        snprintf(p.msg, sizeof p.msg, "call failed: %s", aq_strerror(err));
    }
    while (!p.done)
        uv_run(&loop, UV_RUN_ONCE);
    aq_tool_rpc_close(&loop, uv);
    aq_node_config_free(cf);
    if (p.err) {
        fprintf(stderr, "aq_poke: %s\n", p.msg[0] ? p.msg : aq_strerror(p.err));
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
