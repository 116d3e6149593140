/* The wire codec and address helpers: every field is checked before anything trusts it. */
#include <criterion/criterion.h>
#include <string.h>

#include "aq_rpc.h"
#include "aq_rpc_wire.h"

static size_t make_dgram(uint8_t *out, uint8_t kind, const void *payload, uint32_t len) {
    aq_rpc_hdr h = {.kind = kind,
                    .method = 9,
                    .cluster_id = 0x1122334455667788ull,
                    .src_inc = 42,
                    .dst_inc = 43,
                    .task = 77,
                    .msg_len = len,
                    .frag_len = len,
                    .status = -5};
    aq_rpc_hdr_encode(&h, payload, out);
    memcpy(out + AQ_RPC_HDR_LEN, payload, len);
    return AQ_RPC_HDR_LEN + len;
}

Test(rpc_wire, roundtrip) {
    uint8_t d[AQ_RPC_DGRAM_MAX];
    const char *msg = "hello, aquifer";
    size_t n = make_dgram(d, AQ_RPC_K_REPLY, msg, (uint32_t)strlen(msg));
    aq_rpc_hdr h;
    const uint8_t *p;
    cr_assert_eq(aq_rpc_dgram_decode(d, n, &h, &p), 0);
    cr_assert_eq(h.kind, AQ_RPC_K_REPLY);
    cr_assert_eq(h.method, 9);
    cr_assert_eq(h.cluster_id, 0x1122334455667788ull);
    cr_assert_eq(h.src_inc, 42);
    cr_assert_eq(h.dst_inc, 43);
    cr_assert_eq(h.task, 77);
    cr_assert_eq(h.status, -5);
    cr_assert_eq(h.msg_len, strlen(msg));
    cr_assert_eq(memcmp(p, msg, strlen(msg)), 0);
    /* Byte 0 is the low byte of the magic: little-endian on the wire. */
    cr_assert_eq(d[0], 0x41);
    cr_assert_eq(d[1], 0x51);
}

Test(rpc_wire, every_bit_flip_is_rejected) {
    uint8_t d[AQ_RPC_DGRAM_MAX];
    size_t n = make_dgram(d, AQ_RPC_K_CALL, "abcdefgh", 8);
    for (size_t i = 0; i < n * 8; i++) {
        d[i / 8] ^= (uint8_t)(1u << (i % 8));
        aq_rpc_hdr h;
        const uint8_t *p;
        cr_assert_neq(aq_rpc_dgram_decode(d, n, &h, &p), 0, "bit %zu flip accepted", i);
        d[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

Test(rpc_wire, truncated_and_padded_rejected) {
    uint8_t d[AQ_RPC_DGRAM_MAX + 8] = {0};
    size_t n = make_dgram(d, AQ_RPC_K_CALL, "abcdefgh", 8);
    aq_rpc_hdr h;
    const uint8_t *p;
    for (size_t len = 0; len < n; len++)
        cr_assert_eq(aq_rpc_dgram_decode(d, len, &h, &p), AQ_EPROTO, "length %zu", len);
    cr_assert_eq(aq_rpc_dgram_decode(d, n + 1, &h, &p), AQ_EPROTO);
    cr_assert_eq(aq_rpc_dgram_decode(NULL, 0, &h, &p), AQ_EPROTO);
}

static void set_field(uint8_t *d, size_t off, uint64_t v, int width) {
    for (int i = 0; i < width; i++)
        d[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* Header checks that hold even with a correct checksum (the field is re-sealed after editing). */
static int decode_edited(size_t off, uint64_t v, int width) {
    uint8_t d[AQ_RPC_DGRAM_MAX];
    size_t n = make_dgram(d, AQ_RPC_K_CALL, "abcdefgh", 8);
    set_field(d, off, v, width);
    uint64_t sum = aq_rpc_hdr_checksum(d, d + AQ_RPC_HDR_LEN, 8);
    set_field(d, 56, sum, 8);
    aq_rpc_hdr h;
    const uint8_t *p;
    return aq_rpc_dgram_decode(d, n, &h, &p);
}

Test(rpc_wire, fields_checked) {
    cr_assert_eq(decode_edited(0, 0x5142, 2), AQ_EPROTO);                  /* magic */
    cr_assert_eq(decode_edited(2, 2, 1), AQ_EPROTO);                       /* version */
    cr_assert_eq(decode_edited(3, 0, 1), AQ_EPROTO);                       /* kind 0 */
    cr_assert_eq(decode_edited(3, AQ_RPC_K_MAX + 1, 1), AQ_EPROTO);        /* kind too big */
    cr_assert_eq(decode_edited(4, AQ_RPC_FLAG_MAC, 2), AQ_EPROTO);         /* MAC flag, no MAC */
    cr_assert_eq(decode_edited(4, 0x8000, 2), AQ_EPROTO);                  /* unknown flag */
    cr_assert_eq(decode_edited(40, AQ_RPC_MAX_PAYLOAD + 1, 4), AQ_EPROTO); /* msg_len */
    cr_assert_eq(decode_edited(44, 1, 4), AQ_EPROTO);                      /* frag_off in dgram */
    cr_assert_eq(decode_edited(48, 7, 4), AQ_EPROTO);                      /* frag_len != len */
    cr_assert_eq(decode_edited(6, 1234, 2), 0);                            /* method: anything */
}

/* Header bytes with the given lengths (checksum left stale: hdr_decode does not check it). */
static int decode_lengths(uint32_t msg_len, uint32_t off, uint32_t flen) {
    uint8_t b[AQ_RPC_HDR_LEN];
    aq_rpc_hdr h = {.kind = AQ_RPC_K_CALL};
    aq_rpc_hdr_encode(&h, NULL, b);
    set_field(b, 40, msg_len, 4);
    set_field(b, 44, off, 4);
    set_field(b, 48, flen, 4);
    aq_rpc_hdr out;
    return aq_rpc_hdr_decode(b, &out);
}

Test(rpc_wire, fragment_bounds_without_overflow) {
    cr_assert_eq(decode_lengths(1000, 0xfffffff0u, 0x20), AQ_EPROTO); /* wraps if added */
    cr_assert_eq(decode_lengths(1000, 990, 11), AQ_EPROTO);
    cr_assert_eq(decode_lengths(1000, 990, 10), 0);
    cr_assert_eq(decode_lengths(1000, 1000, 0), 0);
    cr_assert_eq(decode_lengths(0xffffffffu, 0, 0xffffffffu), AQ_EPROTO); /* a 4 GiB claim */
    cr_assert_eq(decode_lengths(AQ_RPC_MAX_PAYLOAD, 0, AQ_RPC_MAX_PAYLOAD), 0);
}

Test(rpc_addr, parse_format) {
    aq_rpc_addr a, b;
    char buf[64];
    cr_assert_eq(aq_rpc_addr_parse("10.0.0.2:7000", &a), 0);
    cr_assert_str_eq(aq_rpc_addr_format(&a, buf, sizeof buf), "10.0.0.2:7000");
    cr_assert_eq(aq_rpc_addr_port(&a), 7000);
    cr_assert_eq(aq_rpc_addr_parse("[::1]:5", &b), 0);
    cr_assert_str_eq(aq_rpc_addr_format(&b, buf, sizeof buf), "[::1]:5");
    cr_assert(!aq_rpc_addr_eq(&a, &b));
    aq_rpc_addr c = a;
    cr_assert(aq_rpc_addr_eq(&a, &c));
    aq_rpc_addr_set_port(&c, 7001);
    cr_assert(!aq_rpc_addr_eq(&a, &c));
    cr_assert_eq(aq_rpc_addr_port(&c), 7001);
    const char *bad[] = {"localhost:5", "1.2.3.4", "1.2.3.4:70000", "1.2.3.4:", "[::1]5", "::1:5",
                         "1.2.3.4:5x",  "",        "1.2.3.256:1",   "[::1]:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(aq_rpc_addr_parse(bad[i], &a), AQ_EINVAL, "%s accepted", bad[i]);
    cr_assert_eq(aq_rpc_addr_parse(NULL, &a), AQ_EINVAL);
}

Test(rpc_addr, cluster_id) {
    cr_assert_eq(aq_rpc_cluster_id("prod"), aq_rpc_cluster_id("prod"));
    cr_assert_neq(aq_rpc_cluster_id("prod"), aq_rpc_cluster_id("test"));
}

/* Header bytes of the given kind and flags (checksum left stale: hdr_decode does not check it). */
static int decode_flags(uint8_t kind, uint16_t flags) {
    uint8_t b[AQ_RPC_HDR_LEN];
    aq_rpc_hdr h = {.kind = kind, .msg_len = 10, .frag_len = 10};
    aq_rpc_hdr_encode(&h, "0123456789", b);
    set_field(b, 4, flags, 2);
    aq_rpc_hdr out;
    return aq_rpc_hdr_decode(b, &out);
}

/* An end-to-end tail (E2E: checksum over the header alone) only on a CALL or REPLY frame without
 * a MAC; E2E_OK (the caller checks its reply's tail) only on a CALL. */
Test(rpc_wire, end_to_end_flags_only_where_they_mean_something) {
    cr_assert_eq(decode_flags(AQ_RPC_K_CALL, AQ_RPC_FLAG_E2E), 0);
    cr_assert_eq(decode_flags(AQ_RPC_K_REPLY, AQ_RPC_FLAG_E2E), 0);
    cr_assert_eq(decode_flags(AQ_RPC_K_CALL, AQ_RPC_FLAG_E2E | AQ_RPC_FLAG_E2E_OK), 0);
    cr_assert_eq(decode_flags(AQ_RPC_K_CALL, AQ_RPC_FLAG_E2E | AQ_RPC_FLAG_MAC), AQ_EPROTO);
    for (uint8_t k = AQ_RPC_K_ACKACK; k <= AQ_RPC_K_MAX; k++)
        cr_assert_eq(decode_flags(k, AQ_RPC_FLAG_E2E), AQ_EPROTO, "kind %u", k);
    cr_assert_eq(decode_flags(AQ_RPC_K_REPLY, AQ_RPC_FLAG_E2E_OK), AQ_EPROTO);
    cr_assert_eq(decode_flags(AQ_RPC_K_CALL, AQ_RPC_FLAG_E2E_OK | AQ_RPC_FLAG_MAC), 0);
}

/* With E2E the checksum covers the header alone: the fragment's bytes may change, the header's
 * may not; and a datagram never carries E2E (its payload is always checksummed). */
Test(rpc_wire, end_to_end_checksum_covers_the_header_alone) {
    uint8_t frag[100];
    memset(frag, 7, sizeof frag);
    aq_rpc_hdr h = {.kind = AQ_RPC_K_REPLY,
                    .flags = AQ_RPC_FLAG_E2E,
                    .task = 3,
                    .msg_len = sizeof frag,
                    .frag_len = sizeof frag};
    uint8_t b[AQ_RPC_HDR_LEN];
    aq_rpc_hdr_encode(&h, frag, b);
    cr_assert_eq(h.checksum, aq_rpc_hdr_checksum(b, NULL, 0));
    frag[50] ^= 1;
    aq_rpc_hdr_encode(&h, frag, b);
    cr_assert_eq(h.checksum, aq_rpc_hdr_checksum(b, NULL, 0), "the fragment's bytes counted");
    h.flags = 0;
    aq_rpc_hdr_encode(&h, frag, b);
    cr_assert_eq(h.checksum, aq_rpc_hdr_checksum(b, frag, sizeof frag));
    uint8_t d[AQ_RPC_DGRAM_MAX];
    size_t n = make_dgram(d, AQ_RPC_K_CALL, "abcdefgh", 8);
    set_field(d, 4, AQ_RPC_FLAG_E2E, 2);
    set_field(d, 56, aq_rpc_hdr_checksum(d, NULL, 0), 8);
    aq_rpc_hdr out;
    const uint8_t *p;
    cr_assert_eq(aq_rpc_dgram_decode(d, n, &out, &p), AQ_EPROTO);
}
