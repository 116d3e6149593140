/* Input demultiplexing: a datagram (or a reassembled pipe message, through aq_rpc__handle_msg)
 * is decoded, checked against the cluster id, authenticated, matched to its peer and incarnation,
 * and handed to the caller side or the callee side by kind. */
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_int.h"

void aq_rpc__handle_msg(aq_rpc *rpc, aq_rpc_peer *p, const aq_rpc_hdr *h, const uint8_t *data,
                        uint8_t *owned, bool skipped, bool busy, uint32_t e2e_from) {
    bool tasked = h->kind != AQ_RPC_K_ACKACK && h->kind != AQ_RPC_K_NOTIFY;
    if (tasked && h->task == 0) {
        rpc->st.dropped_malformed++;
        free(owned);
        return;
    }
    if (!aq_rpc__check_inc(rpc, p, h)) {
        free(owned);
        return;
    }
    uint64_t now = aq_rpc__now(rpc);
    p->last_heard_us = now;
    p->touched_us = now;
    switch (h->kind) {
    case AQ_RPC_K_CALL:
        if (busy) {
            p->st.busy_sent++;
            aq_rpc__send_dgram(rpc, p, AQ_RPC_K_BUSY, h->task, h->method,
                               (int32_t)aq_rpc__busy_hint_ms(p), NULL, 0);
        } else if (skipped) {
            if (aq_rpc__task_known(p, h->task))
                aq_rpc__call_duplicate(rpc, p, h);
        } else {
            aq_rpc__call_incoming(rpc, p, h, data, owned, e2e_from);
            owned = NULL;
        }
        break;
    case AQ_RPC_K_REPLY:
        if (skipped) {
            if (!aq_rpc_map_get(&p->calls, h->task))
                aq_rpc__queue_ack(rpc, p, h->task);
        } else {
            aq_rpc__reply_incoming(rpc, p, h, data, owned, e2e_from);
            owned = NULL;
        }
        break;
    case AQ_RPC_K_ACKACK:
        aq_rpc__acks_incoming(rpc, p, h, data);
        break;
    case AQ_RPC_K_PENDING:
        aq_rpc__pending_incoming(rpc, p, h, now);
        break;
    case AQ_RPC_K_BUSY:
        aq_rpc__busy_incoming(rpc, p, h, now);
        break;
    case AQ_RPC_K_NACK:
        aq_rpc__nack_incoming(rpc, p, h);
        break;
    case AQ_RPC_K_NOTIFY:
        if (rpc->notify_fn)
            rpc->notify_fn(rpc->notify_ud, p, h->method, data, h->msg_len);
        break;
    default:
        rpc->st.dropped_malformed++;
        break;
    }
    free(owned);
}

/* A peer says our packet failed its check. Only a call of ours, to that address, in this
 * incarnation of ours, is affected; and with a secret of our own, only as the reason given when
 * the call times out, so that a forged notice cannot end a call. */
static void auth_notice(aq_rpc *rpc, const aq_rpc_addr *from, const aq_rpc_hdr *h,
                        const uint8_t *payload) {
    if (h->flags || h->dst_inc != rpc->inc || h->msg_len != AQ_RPC_FINGERPRINT_LEN || !h->task) {
        rpc->st.dropped_malformed++;
        return;
    }
    aq_rpc_peer *p = aq_rpc__peer_lookup(rpc, from);
    aq_rpc_call_s *c = p ? aq_rpc_map_get(&p->calls, h->task) : NULL;
    if (!c || c->state != AQ_CALL_SENT)
        return;
    if (!rpc->auth.on) {
        aq_rpc__logf(rpc, 1, "%s (%s) requires authentication", aq_rpc_peer_name(p), p->addr_text);
        aq_rpc__call_finish(rpc, c, AQ_EAUTH, 0, NULL, 0, NULL);
        return;
    }
    if (sodium_memcmp(payload, rpc->auth.fingerprint, AQ_RPC_FINGERPRINT_LEN) != 0)
        c->auth_refused = true;
}

void aq_rpc_input_dgram(aq_rpc *rpc, const aq_rpc_addr *from, const uint8_t *data, size_t len) {
    aq_rpc_hdr h;
    const uint8_t *payload;
    if (rpc->closing || rpc->input_stopped)
        return;
    if (aq_rpc_dgram_decode(data, len, &h, &payload) != 0 || h.kind == AQ_RPC_K_HELLO) {
        rpc->st.dropped_malformed++;
        return;
    }
    if (h.cluster_id != rpc->cfg.cluster_id) {
        rpc->st.dropped_foreign++;
        return;
    }
    if (h.kind == AQ_RPC_K_AUTH) {
        auth_notice(rpc, from, &h, payload);
        aq_rpc__settle(rpc);
        return;
    }
    bool mac = h.flags & AQ_RPC_FLAG_MAC, good = mac == rpc->auth.on;
    if (good && (h.flags & AQ_RPC_FLAG_ENC)) {
        /* Verified before decrypting; the plain text goes to our buffer, never the driver's. */
        good = aq_rpc_auth_open(&rpc->auth, data, payload, h.frag_len, data + AQ_RPC_HDR_LEN,
                                rpc->plain);
        payload = rpc->plain;
    } else if (good && mac) {
        good = aq_rpc_auth_verify(&rpc->auth, data, payload, h.frag_len, data + AQ_RPC_HDR_LEN);
    }
    if (!good) {
        aq_rpc__auth_failed(rpc, from, &h);
        aq_rpc__settle(rpc);
        return;
    }
    aq_rpc_peer *p = aq_rpc__peer_from(rpc, from);
    if (!p)
        return;
    p->st.bytes_in += len;
    aq_rpc__handle_msg(rpc, p, &h, payload, NULL, false, false, h.msg_len);
    aq_rpc__settle(rpc);
}
