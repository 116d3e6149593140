/* aq_rpc_cc: per-peer congestion window and retransmit timeout (internal to rpc/).
 *
 * The window counts calls in flight (cwnd, from window_init up to window_max, never below 1) and
 * bytes in flight (cwnd * AQ_RPC_WINDOW_BYTES_PER_CALL, never below one maximal message), and
 * always admits a call when nothing is in flight so no call can be stuck behind the bytes limit. It
 * grows additively (one call per window of successes) and halves on a timeout or BUSY, at most once
 * per RTO. The RTO follows RFC 6298: srtt + 4 * rttvar, floored at rto_min and capped at rto_max;
 * only calls sent once give samples (Karn).
 */
#ifndef AQ_RPC_CC_H
#define AQ_RPC_CC_H

#include <stdbool.h>
#include <stdint.h>

#define AQ_RPC_WINDOW_BYTES_PER_CALL (512u * 1024)

typedef struct aq_rpc_cc {
    uint32_t cwnd, cwnd_max, acc;
    uint32_t inflight;
    uint64_t inflight_bytes;
    uint64_t srtt, rttvar, rto, rto_min, rto_max;
    bool have_rtt;
    uint64_t last_cut_us;
    bool cut_once;
} aq_rpc_cc;

void aq_rpc_cc_init(aq_rpc_cc *c, uint32_t window_init, uint32_t window_max, uint64_t rto_min,
                    uint64_t rto_max);
uint64_t aq_rpc_cc_bytes_limit(const aq_rpc_cc *c);
bool aq_rpc_cc_can_send(const aq_rpc_cc *c, uint64_t bytes);
void aq_rpc_cc_on_send(aq_rpc_cc *c, uint64_t bytes);
void aq_rpc_cc_on_finish(aq_rpc_cc *c, uint64_t bytes);
void aq_rpc_cc_on_success(aq_rpc_cc *c);
/* Halve the window unless it was already cut within the last RTO. */
void aq_rpc_cc_cut(aq_rpc_cc *c, uint64_t now_us);
void aq_rpc_cc_rtt_sample(aq_rpc_cc *c, uint64_t rtt_us);
/* The base RTO; doubled per attempt by aq_rpc_cc_backoff, capped at rto_max. */
uint64_t aq_rpc_cc_backoff(const aq_rpc_cc *c, uint32_t attempts);

#endif
