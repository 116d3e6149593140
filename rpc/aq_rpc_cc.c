#include "aq_rpc_cc.h"

#include <string.h>

#include "aq_rpc.h"

void aq_rpc_cc_init(aq_rpc_cc *c, uint32_t window_init, uint32_t window_max, uint64_t rto_min,
                    uint64_t rto_max) {
    memset(c, 0, sizeof *c);
    c->cwnd_max = window_max ? window_max : 1;
    c->cwnd = window_init ? window_init : 1;
    if (c->cwnd > c->cwnd_max)
        c->cwnd = c->cwnd_max;
    c->rto_min = rto_min;
    c->rto_max = rto_max < rto_min ? rto_min : rto_max;
    /* RFC 6298 starts at 1 s; a cluster network is faster, so start at 10x the floor. */
    c->rto = rto_min * 10 < c->rto_max ? rto_min * 10 : c->rto_max;
}

uint64_t aq_rpc_cc_bytes_limit(const aq_rpc_cc *c) {
    uint64_t b = (uint64_t)c->cwnd * AQ_RPC_WINDOW_BYTES_PER_CALL;
    return b < AQ_RPC_MAX_PAYLOAD ? AQ_RPC_MAX_PAYLOAD : b;
}

bool aq_rpc_cc_can_send(const aq_rpc_cc *c, uint64_t bytes) {
    if (c->inflight == 0)
        return true;
    return c->inflight < c->cwnd && c->inflight_bytes + bytes <= aq_rpc_cc_bytes_limit(c);
}

void aq_rpc_cc_on_send(aq_rpc_cc *c, uint64_t bytes) {
    c->inflight++;
    c->inflight_bytes += bytes;
}

void aq_rpc_cc_on_finish(aq_rpc_cc *c, uint64_t bytes) {
    if (c->inflight)
        c->inflight--;
    c->inflight_bytes = c->inflight_bytes >= bytes ? c->inflight_bytes - bytes : 0;
}

void aq_rpc_cc_on_success(aq_rpc_cc *c) {
    if (++c->acc >= c->cwnd) {
        c->acc = 0;
        if (c->cwnd < c->cwnd_max)
            c->cwnd++;
    }
}

void aq_rpc_cc_cut(aq_rpc_cc *c, uint64_t now_us) {
    if (c->cut_once && now_us - c->last_cut_us < c->rto)
        return;
    c->cut_once = true;
    c->last_cut_us = now_us;
    c->cwnd = c->cwnd > 1 ? c->cwnd / 2 : 1;
    c->acc = 0;
}

void aq_rpc_cc_rtt_sample(aq_rpc_cc *c, uint64_t r) {
    if (!c->have_rtt) {
        c->srtt = r;
        c->rttvar = r / 2;
        c->have_rtt = true;
    } else {
        uint64_t d = c->srtt > r ? c->srtt - r : r - c->srtt;
        c->rttvar = (3 * c->rttvar + d) / 4;
        c->srtt = (7 * c->srtt + r) / 8;
    }
    uint64_t rto = c->srtt + 4 * c->rttvar;
    if (rto < c->rto_min)
        rto = c->rto_min;
    if (rto > c->rto_max)
        rto = c->rto_max;
    c->rto = rto;
}

uint64_t aq_rpc_cc_backoff(const aq_rpc_cc *c, uint32_t attempts) {
    uint64_t t = c->rto;
    for (uint32_t i = 1; i < attempts && t < c->rto_max; i++)
        t *= 2;
    return t > c->rto_max ? c->rto_max : t;
}
