/* libFuzzer target: the rpc core's datagram input (aq_rpc_input_dgram, and through it the decoder
 * aq_rpc_dgram_decode and the call state machine on both the caller and the callee side).
 *
 * Input: a flags byte, then operations until the bytes run out:
 *   0 len:u16 bytes   a datagram from the hostile peer (bit 7 of the op byte: from a third address)
 *   1 d:u8            the clock moves (d+1) ms, or 61 s when d == 255; due timers fire
 *   2 m:u8 l:u8       we call the peer: method m % 8, payload l * 8 bytes (over 1336: the pipe)
 *   3 s:u8            the oldest held handler answers with status -(s % 4)
 *   4                 the driver reports opened pipes connected and writes done
 * Flags: bit 0 rewrites each datagram's checksum to match its bytes, so the fuzzer gets past it
 * to the state machine; bit 1 holds handlers until op 3.
 * Checked here, beyond fuzz_net's invariants: a datagram whose checksum does not match runs no
 * handler or notify, sends nothing and is counted as malformed. A datagram flagged MAC carries a
 * packet counter, not a checksum, and this endpoint has no secret: it runs no handler or notify
 * and is counted once as malformed, foreign or failing authentication (it may be answered with an
 * AUTH notice). */
#include <stdlib.h>
#include <string.h>

#include "aq_rpc_wire.h"
#include "fuzz_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    static fz_net net; /* large; one input at a time */
    fz_net *n = &net;
    uint8_t flags = data[0];
    fz_init(n, flags & 2);
    size_t i = 1;
    uint8_t dg[AQ_RPC_DGRAM_MAX + 128];
    while (i < size) {
        uint8_t op = data[i++];
        switch (op % 5) {
        case 0: {
            if (size - i < 2) {
                i = size;
                break;
            }
            size_t len = (size_t)(data[i] | data[i + 1] << 8) % sizeof dg;
            i += 2;
            if (len > size - i)
                len = size - i;
            memcpy(dg, data + i, len);
            i += len;
            if ((flags & 1) && len >= 64)
                fz_fix_checksum(dg, len - 64);
            bool mac = len >= AQ_RPC_HDR_LEN && (dg[4] & AQ_RPC_FLAG_MAC);
            bool ok = fz_checksum_ok(dg, len);
            aq_rpc_stats before, after;
            aq_rpc_stats_get(n->rpc, &before);
            uint64_t handled = n->handled, notifies = n->notifies, sends = n->sends;
            aq_rpc_input_dgram(n->rpc, (op & 0x80) ? &n->other : &n->peer, dg, len);
            aq_rpc_stats_get(n->rpc, &after);
            uint64_t drops0 =
                         before.dropped_malformed + before.dropped_foreign + before.dropped_auth,
                     drops1 = after.dropped_malformed + after.dropped_foreign + after.dropped_auth;
            if (mac && (n->handled != handled || n->notifies != notifies || drops1 != drops0 + 1))
                abort();
            if (!mac && !ok &&
                (n->handled != handled || n->notifies != notifies || n->sends != sends ||
                 after.dropped_malformed != before.dropped_malformed + 1))
                abort();
            break;
        }
        case 1:
            if (i < size) {
                uint8_t d = data[i++];
                fz_advance(n, d == 255 ? 61000000u : (uint64_t)(d + 1) * 1000);
            }
            break;
        case 2:
            if (size - i >= 2) {
                fz_call(n, data[i] % 8, (size_t)data[i + 1] * 8, 5000000);
                i += 2;
            } else {
                i = size;
            }
            break;
        case 3:
            if (i < size)
                fz_respond(n, -(int)(data[i++] % 4));
            break;
        default:
            fz_settle_io(n, 0);
        }
    }
    fz_fini(n);
    return 0;
}
