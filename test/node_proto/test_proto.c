#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aq_error.h"
#include "aq_node_config.h"
#include "aq_node_proto.h"

Test(proto, put_roundtrip_and_every_truncation_refused) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_digest d = {0x1122334455667788ull, 0x99aabbccddeeff00ull};
    aq_node_put_req_head(&w, AQ_PUT_REPLICA, AQ_KIND_MANIFEST, "photos/a.jpg", 12, d);
    aq_wr_bytes(&w, "VALUE", 5);
    cr_assert(w.ok);
    aq_node_put_req r;
    cr_assert_eq(aq_node_put_req_decode(w.p, w.len, &r), 0);
    cr_expect_eq(r.flags, AQ_PUT_REPLICA);
    cr_expect_eq(r.kind, AQ_KIND_MANIFEST);
    cr_expect_eq(r.klen, 12);
    cr_expect_eq(memcmp(r.key, "photos/a.jpg", 12), 0);
    cr_expect_eq(r.digest.hi, d.hi);
    cr_expect_eq(r.digest.lo, d.lo);
    cr_expect_eq(r.vlen, 5);
    cr_expect_eq(memcmp(r.value, "VALUE", 5), 0);
    /* Everything shorter than the head (2 + 1 + 12 + 16 bytes) is refused. */
    for (size_t n = 0; n < 31; n++)
        cr_expect_eq(aq_node_put_req_decode(w.p, n, &r), AQ_EPROTO, "length %zu accepted", n);
    aq_wr_free(&w);
}

Test(proto, put_refuses_unknown_flags_kind_and_empty_key) {
    uint8_t m[64] = {0};
    aq_node_put_req r;
    m[0] = 0x80; /* unknown flag */
    m[2] = 1;
    cr_expect_eq(aq_node_put_req_decode(m, sizeof m, &r), AQ_EPROTO);
    m[0] = 0;
    m[1] = 7; /* unknown kind */
    cr_expect_eq(aq_node_put_req_decode(m, sizeof m, &r), AQ_EPROTO);
    m[1] = 0;
    m[2] = 0; /* empty key */
    cr_expect_eq(aq_node_put_req_decode(m, sizeof m, &r), AQ_EPROTO);
}

Test(proto, key_request_rejects_trailing_bytes) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_key_req_encode(&w, 0, "k", 1);
    uint8_t flags;
    const uint8_t *k;
    size_t kl;
    cr_assert_eq(aq_node_key_req_decode(w.p, w.len, &flags, &k, &kl), 0);
    cr_expect_eq(kl, 1);
    aq_wr_u8(&w, 0);
    cr_expect_eq(aq_node_key_req_decode(w.p, w.len, &flags, &k, &kl), AQ_EPROTO);
    aq_wr_free(&w);
}

Test(proto, list_roundtrip) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_list_rep_head(&w, true, 2);
    aq_node_list_entry a = {AQ_KIND_VALUE, (const uint8_t *)"a", 1, 7, {1, 2}, 11};
    aq_node_list_entry b = {AQ_KIND_TOMBSTONE, (const uint8_t *)"bb", 2, 1u << 30, {3, 4},
                            1ull << 62};
    aq_node_list_rep_entry(&w, &a);
    aq_node_list_rep_entry(&w, &b);
    aq_rd r;
    bool more;
    uint32_t count;
    cr_assert_eq(aq_node_list_rep_begin(&r, w.p, w.len, &more, &count), 0);
    cr_expect(more);
    cr_expect_eq(count, 2);
    aq_node_list_entry e;
    cr_assert_eq(aq_node_list_rep_next(&r, &e), 0);
    cr_expect_eq(e.size, 7);
    cr_expect_eq(e.version, 11);
    cr_assert_eq(aq_node_list_rep_next(&r, &e), 0);
    cr_expect_eq(e.kind, AQ_KIND_TOMBSTONE);
    cr_expect_eq(e.size, 1u << 30);
    cr_expect_eq(e.digest.lo, 4);
    cr_expect_eq(e.version, 1ull << 62);
    cr_expect(aq_rd_done(&r));
    cr_expect_eq(aq_node_list_rep_next(&r, &e), AQ_EPROTO);
    aq_wr_free(&w);
}

Test(proto, offer_count_cannot_exceed_bytes) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_offer_req_head(&w, 1000000); /* claims a million entries in 4 bytes */
    aq_rd r;
    uint32_t count;
    cr_expect_eq(aq_node_offer_req_begin(&r, w.p, w.len, &count), AQ_EPROTO);
    aq_wr_free(&w);
}

Test(proto, status_roundtrip) {
    aq_node_status_node s = {0};
    strcpy(s.name, "n1");
    strcpy(s.address, "127.0.0.1:5");
    s.chunks = 3;
    s.handled_client = 7;
    s.conns_inbound = 11;
    s.conns_refused = 13;
    s.hello_timeouts = 17;
    s.hello_evicted = 19;
    s.npeers = 1;
    aq_node_status_peer p = {0};
    strcpy(p.name, "n2");
    p.state = AQ_MEMBER_SUSPECT;
    p.rtt_us = 250;
    aq_wr w;
    aq_wr_init(&w);
    aq_node_status_rep_node(&w, &s);
    aq_node_status_rep_peer(&w, &p);
    aq_rd r;
    aq_node_status_node s2;
    aq_node_status_peer p2;
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_expect_str_eq(s2.name, "n1");
    cr_expect_eq(s2.chunks, 3);
    cr_expect_eq(s2.handled_client, 7);
    cr_expect_eq(s2.conns_inbound, 11);
    cr_expect_eq(s2.conns_refused, 13);
    cr_expect_eq(s2.hello_timeouts, 17);
    cr_expect_eq(s2.hello_evicted, 19);
    cr_expect_eq(s2.npeers, 1);
    cr_assert_eq(aq_node_status_rep_next(&r, &p2), 0);
    cr_expect_str_eq(p2.name, "n2");
    cr_expect_eq(p2.state, AQ_MEMBER_SUSPECT);
    cr_expect_eq(p2.rtt_us, 250);
    cr_expect(aq_rd_done(&r));
    uint32_t self = 9;
    /* An older build's reply ends with its peers. */
    cr_expect_eq(aq_node_status_rep_self_read(&r, &self), AQ_ENOTFOUND);
    aq_node_status_rep_self(&w, 1);
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_assert_eq(aq_node_status_rep_next(&r, &p2), 0);
    cr_expect_eq(aq_node_status_rep_self_read(&r, &self), 0);
    cr_expect_eq(self, 1);
    /* Anything else after the peers is damage. */
    aq_wr_u8(&w, 0);
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_assert_eq(aq_node_status_rep_next(&r, &p2), 0);
    cr_expect_eq(aq_node_status_rep_self_read(&r, &self), AQ_EPROTO);
    aq_wr_free(&w);
}

/* The features come after self only when asked; a reply without them reads as none. */
Test(proto, status_features_after_self) {
    aq_node_status_node s = {.name = "n1", .address = "127.0.0.1:1", .npeers = 0};
    aq_wr w;
    aq_wr_init(&w);
    aq_node_status_rep_node(&w, &s);
    aq_rd r;
    aq_node_status_node s2;
    uint32_t self = 9, feat = 7;
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_expect_eq(aq_node_status_rep_self_features_read(&r, &self, &feat), AQ_ENOTFOUND);
    cr_expect_eq(feat, 0);
    aq_node_status_rep_self(&w, 0);
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    feat = 7;
    cr_expect_eq(aq_node_status_rep_self_features_read(&r, &self, &feat), 0);
    cr_expect_eq(self, 0);
    cr_expect_eq(feat, 0, "no features field read as some");
    aq_node_status_rep_features(&w, AQ_NODE_FEATURE_TAILS);
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_expect_eq(aq_node_status_rep_self_features_read(&r, &self, &feat), 0);
    cr_expect_eq(feat, AQ_NODE_FEATURE_TAILS);
    /* A reader of the older layout (self, then the end) refuses it: only an asker gets it. */
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_expect_eq(aq_node_status_rep_self_read(&r, &self), AQ_EPROTO);
    aq_wr_u8(&w, 0);
    cr_assert_eq(aq_node_status_rep_begin(&r, w.p, w.len, &s2), 0);
    cr_expect_eq(aq_node_status_rep_self_features_read(&r, &self, &feat), AQ_EPROTO);
    aq_wr_free(&w);
}

Test(proto, user_keys) {
    cr_expect(aq_node_user_key_ok("a", 1));
    cr_expect(aq_node_user_key_ok("../with space/ünï", strlen("../with space/ünï")));
    cr_expect_not(aq_node_user_key_ok("", 0));
    cr_expect_not(aq_node_user_key_ok("\x1fp", 2), "internal prefix is not a user key");
    cr_expect_not(aq_node_user_key_ok("a\nb", 3));
    char k[256];
    memset(k, 'k', sizeof k);
    cr_expect(aq_node_user_key_ok(k, 255));
    cr_expect_not(aq_node_user_key_ok(k, 256));
}

/* Decoders see bytes from the network: random input must never crash or read out of bounds (ASan).
 */
Test(proto, random_bytes_never_crash_decoders) {
    srand(12345);
    uint8_t buf[300];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        uint8_t *p = malloc(n ? n : 1); /* exact-size copy so ASan sees any overread */
        memcpy(p, buf, n);
        aq_node_put_req pr;
        aq_node_put_req_decode(p, n, &pr);
        uint8_t f, kind;
        const uint8_t *k, *v;
        size_t kl, vl;
        aq_node_key_req_decode(p, n, &f, &k, &kl);
        aq_node_digest d;
        aq_node_get_rep_decode(p, n, &kind, &d, &v, &vl);
        uint64_t sz;
        aq_node_stat_rep_decode(p, n, &kind, &sz, &d);
        aq_node_list_req lq;
        aq_node_list_req_decode(p, n, &lq);
        aq_rd r;
        bool more;
        uint32_t cnt;
        if (aq_node_list_rep_begin(&r, p, n, &more, &cnt) == 0) {
            aq_node_list_entry e;
            for (uint32_t i = 0; i < cnt && aq_node_list_rep_next(&r, &e) == 0; i++)
                ;
        }
        uint64_t ver;
        uint8_t okind, oflags;
        aq_node_get_rep_decode_v(p, n, &kind, &d, &ver, &v, &vl);
        aq_node_stat_rep_decode_v(p, n, &kind, &sz, &d, &ver);
        if (aq_node_mstat_req_begin(&r, p, n, &f, &cnt) == 0)
            for (uint32_t i = 0; i < cnt && aq_node_mstat_req_next(&r, &k, &kl) == 0; i++)
                ;
        if (aq_node_mstat_rep_begin(&r, p, n, &cnt) == 0) {
            int me;
            for (uint32_t i = 0;
                 i < cnt && aq_node_mstat_rep_next(&r, &me, &kind, &sz, &d, &ver) == 0; i++)
                ;
        }
        if (aq_node_mget_rep_begin(&r, p, n, &cnt) == 0) {
            int me;
            const uint8_t *rp;
            size_t rl;
            for (uint32_t i = 0; i < cnt && aq_node_mget_rep_next(&r, &me, &rp, &rl) == 0; i++)
                if (me == 0)
                    aq_node_get_rep_decode_v(rp, rl, &kind, &d, &ver, &v, &vl);
        }
        if (aq_node_mput_req_begin(&r, p, n, &cnt) == 0)
            for (uint32_t i = 0; i < cnt && aq_node_mput_req_next(&r, &k, &kl) == 0; i++)
                ;
        if (aq_node_mput_rep_begin(&r, p, n, &cnt) == 0) {
            int me;
            for (uint32_t i = 0; i < cnt && aq_node_mput_rep_next(&r, &me, &k, &kl) == 0; i++)
                ;
        }
        if (aq_node_offer_req_begin(&r, p, n, &cnt) == 0)
            for (uint32_t i = 0;
                 i < cnt && aq_node_offer_req_next(&r, &k, &kl, &d, &ver, &okind, &oflags) == 0;
                 i++)
                ;
        uint64_t dl;
        aq_node_rm_req_decode(p, n, &f, &k, &kl, &ver, &dl);
        aq_node_put_rep prep;
        aq_node_put_rep_decode(p, n, &prep);
        const uint8_t *st;
        aq_node_offer_rep_decode(p, n, &cnt, &st);
        aq_node_heartbeat h;
        aq_node_heartbeat_decode(p, n, &h);
        aq_node_status_node sn;
        aq_node_status_peer sp;
        if (aq_node_status_rep_begin(&r, p, n, &sn) == 0) {
            uint32_t i = 0, self;
            while (i < sn.npeers && aq_node_status_rep_next(&r, &sp) == 0)
                i++;
            if (i == sn.npeers)
                aq_node_status_rep_self_read(&r, &self);
        }
        free(p);
    }
}

/* A coordinator sets the version of a received PUT in place before forwarding it. */
Test(proto, put_version_is_set_in_place) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_digest d = {1, 2};
    aq_node_put_req_head(&w, 0, AQ_KIND_VALUE, "key", 3, d);
    aq_wr_bytes(&w, "value", 5);
    aq_node_put_req r;
    cr_assert_eq(aq_node_put_req_decode(w.p, w.len, &r), 0);
    cr_expect_eq(r.version, 0);
    aq_node_put_req_set_version(w.p, &r, 0x0102030405060708ull);
    cr_assert_eq(aq_node_put_req_decode(w.p, w.len, &r), 0);
    cr_expect_eq(r.version, 0x0102030405060708ull);
    cr_expect_eq(r.vlen, 5);
    cr_expect_eq(memcmp(r.value, "value", 5), 0);
    aq_wr_free(&w);
}

/* RM: the version and deadline are optional on the wire, anything else is refused. */
Test(proto, rm_version_optional) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_key_req_encode(&w, 0, "k", 1);
    uint8_t f;
    const uint8_t *k;
    size_t kl;
    uint64_t v = 99, dl = 98;
    cr_assert_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), 0);
    cr_expect_eq(v, 0);
    cr_expect_eq(dl, 0);
    aq_wr_free(&w);
    aq_wr_init(&w);
    aq_node_rm_req_encode(&w, AQ_PUT_REPLICA, "k", 1, 77, 0);
    cr_assert_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), 0);
    cr_expect_eq(v, 77);
    cr_expect_eq(f, AQ_PUT_REPLICA);
    aq_node_u64_at(w.p, aq_node_rm_req_deadline_off(1), 12345);
    cr_assert_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), 0);
    cr_expect_eq(v, 77);
    cr_expect_eq(dl, 12345);
    aq_wr_u8(&w, 0);
    cr_expect_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), AQ_EPROTO);
    aq_wr_free(&w);
}

/* The command sets each attempt's deadline in place; the value stays where it was. */
Test(proto, put_deadline_is_set_in_place) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_digest d = {1, 2};
    uint8_t key[AQ_NODE_KEY_MAX];
    memset(key, 'k', sizeof key);
    aq_node_put_req_head(&w, 0, AQ_KIND_VALUE, key, sizeof key, d);
    cr_expect_eq(w.len, AQ_PUT_HEAD_MAX);
    aq_wr_bytes(&w, "value", 5);
    aq_node_u64_at(w.p, aq_node_put_req_deadline_off(sizeof key), 0xfedcba9876543210ull);
    aq_node_put_req r;
    cr_assert_eq(aq_node_put_req_decode(w.p, w.len, &r), 0);
    cr_expect_eq(r.version, 0);
    cr_expect_eq(r.deadline, 0xfedcba9876543210ull);
    cr_expect_eq(r.vlen, 5);
    cr_expect_eq(memcmp(r.value, "value", 5), 0);
    aq_wr_free(&w);
}

/* The write reply names its holders; a reply whose holders do not match its copies, or that claims
 * more copies than wanted, is refused. */
Test(proto, put_rep_roundtrip) {
    aq_node_put_rep a;
    memset(&a, 0, sizeof a);
    a.copies = a.nholders = 2;
    a.wanted = 3;
    a.flags = AQ_REP_FOUND;
    a.version = 1ull << 60;
    a.clock = 5;
    a.holders[0] = 7;
    a.holders[1] = 1023;
    aq_wr w;
    aq_wr_init(&w);
    aq_node_put_rep_encode(&w, &a);
    aq_node_put_rep b;
    cr_assert_eq(aq_node_put_rep_decode(w.p, w.len, &b), 0);
    cr_expect_eq(b.copies, 2);
    cr_expect_eq(b.wanted, 3);
    cr_expect_eq(b.flags, AQ_REP_FOUND);
    cr_expect_eq(b.version, 1ull << 60);
    cr_expect_eq(b.clock, 5);
    cr_expect_eq(b.holders[0], 7);
    cr_expect_eq(b.holders[1], 1023);
    cr_expect_eq(aq_node_put_rep_decode(w.p, w.len - 1, &b), AQ_EPROTO);
    aq_wr_free(&w);
    a.wanted = 1;
    aq_wr_init(&w);
    aq_node_put_rep_encode(&w, &a);
    cr_expect_eq(aq_node_put_rep_decode(w.p, w.len, &b), AQ_EPROTO);
    aq_wr_free(&w);
}

/* GET and STAT replies carry the copy's version; a removal marker answers with its version and no
 * bytes. */
Test(proto, get_and_stat_carry_the_version) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_get_rep_head(&w, AQ_KIND_VALUE, (aq_node_digest){5, 6}, 0x1122334455667788ull);
    aq_wr_bytes(&w, "abc", 3);
    uint8_t kind;
    aq_node_digest d;
    uint64_t ver;
    const uint8_t *v;
    size_t vl;
    cr_assert_eq(aq_node_get_rep_decode_v(w.p, w.len, &kind, &d, &ver, &v, &vl), 0);
    cr_expect_eq(ver, 0x1122334455667788ull);
    cr_expect_eq(vl, 3);
    cr_expect_eq(d.lo, 6);
    aq_wr_free(&w);
    aq_wr_init(&w);
    aq_node_get_rep_head(&w, AQ_KIND_TOMBSTONE, (aq_node_digest){5, 6}, 9);
    cr_assert_eq(aq_node_get_rep_decode_v(w.p, w.len, &kind, &d, &ver, &v, &vl), 0);
    cr_expect_eq(kind, AQ_KIND_TOMBSTONE);
    cr_expect_eq(ver, 9);
    aq_wr_bytes(&w, "x", 1);
    cr_expect_eq(aq_node_get_rep_decode_v(w.p, w.len, &kind, &d, &ver, &v, &vl), AQ_EPROTO,
                 "a removal marker with bytes");
    aq_wr_free(&w);
    aq_wr_init(&w);
    aq_node_stat_rep_encode(&w, AQ_KIND_MANIFEST, 1234, (aq_node_digest){7, 8}, 42);
    uint64_t size;
    cr_assert_eq(aq_node_stat_rep_decode_v(w.p, w.len, &kind, &size, &d, &ver), 0);
    cr_expect_eq(kind, AQ_KIND_MANIFEST);
    cr_expect_eq(size, 1234);
    cr_expect_eq(ver, 42);
    aq_wr_u8(&w, 0);
    cr_expect_eq(aq_node_stat_rep_decode_v(w.p, w.len, &kind, &size, &d, &ver), AQ_EPROTO);
    aq_wr_free(&w);
}

/* Reads may ask for removal markers; any other flag is refused. */
Test(proto, read_flags) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_key_req_encode(&w, AQ_READ_TOMBSTONES, "k", 1);
    uint8_t f;
    const uint8_t *k;
    size_t kl;
    cr_assert_eq(aq_node_key_req_decode(w.p, w.len, &f, &k, &kl), 0);
    cr_expect_eq(f, AQ_READ_TOMBSTONES);
    w.p[0] = 0x80;
    cr_expect_eq(aq_node_key_req_decode(w.p, w.len, &f, &k, &kl), AQ_EPROTO);
    aq_wr_free(&w);
}

/* A removal only-if-held is a replica's write with a version; from a client it is refused. */
Test(proto, rm_if_held_needs_replica_and_version) {
    uint8_t f;
    const uint8_t *k;
    size_t kl;
    uint64_t v, dl;
    aq_wr w;
    aq_wr_init(&w);
    aq_node_rm_req_encode(&w, AQ_PUT_REPLICA | AQ_RM_IF_HELD, "k", 1, 5, 0);
    cr_expect_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), 0);
    cr_expect_eq(f, AQ_PUT_REPLICA | AQ_RM_IF_HELD);
    aq_wr_free(&w);
    aq_wr_init(&w);
    aq_node_rm_req_encode(&w, AQ_RM_IF_HELD, "k", 1, 5, 0);
    cr_expect_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), AQ_EPROTO);
    aq_wr_free(&w);
    aq_wr_init(&w);
    aq_node_rm_req_encode(&w, AQ_PUT_REPLICA | AQ_RM_IF_HELD, "k", 1, 0, 0);
    cr_expect_eq(aq_node_rm_req_decode(w.p, w.len, &f, &k, &kl, &v, &dl), AQ_EPROTO);
    aq_wr_free(&w);
}

/* OFFER entries carry flags; the reply is one status per entry. */
Test(proto, offer_roundtrip) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_offer_req_head(&w, 2);
    aq_node_offer_req_entry(&w, "a", 1, (aq_node_digest){1, 2}, 3, AQ_KIND_VALUE, AQ_OFFER_TARGET);
    aq_node_offer_req_entry(&w, "bb", 2, (aq_node_digest){4, 5}, 6, AQ_KIND_TOMBSTONE,
                            AQ_OFFER_COLLECTIBLE);
    aq_rd r;
    uint32_t count;
    cr_assert_eq(aq_node_offer_req_begin(&r, w.p, w.len, &count), 0);
    cr_assert_eq(count, 2);
    const uint8_t *k;
    size_t kl;
    aq_node_digest d;
    uint64_t ver;
    uint8_t kind, flags;
    cr_assert_eq(aq_node_offer_req_next(&r, &k, &kl, &d, &ver, &kind, &flags), 0);
    cr_expect_eq(flags, AQ_OFFER_TARGET);
    cr_expect_eq(ver, 3);
    cr_assert_eq(aq_node_offer_req_next(&r, &k, &kl, &d, &ver, &kind, &flags), 0);
    cr_expect_eq(flags, AQ_OFFER_COLLECTIBLE);
    cr_expect_eq(kind, AQ_KIND_TOMBSTONE);
    cr_expect_eq(kl, 2);
    cr_expect(aq_rd_done(&r));
    w.p[w.len - 1] = 0x40; /* an unknown flag */
    cr_assert_eq(aq_node_offer_req_begin(&r, w.p, w.len, &count), 0);
    cr_assert_eq(aq_node_offer_req_next(&r, &k, &kl, &d, &ver, &kind, &flags), 0);
    cr_expect_eq(aq_node_offer_req_next(&r, &k, &kl, &d, &ver, &kind, &flags), AQ_EPROTO);
    aq_wr_free(&w);

    aq_wr_init(&w);
    aq_node_offer_rep_head(&w, 3);
    aq_wr_u8(&w, AQ_OFFER_WANT);
    aq_wr_u8(&w, AQ_OFFER_HAVE);
    aq_wr_u8(&w, AQ_OFFER_NEWER);
    const uint8_t *st;
    cr_assert_eq(aq_node_offer_rep_decode(w.p, w.len, &count, &st), 0);
    cr_expect_eq(count, 3);
    cr_expect_eq(st[0], AQ_OFFER_WANT);
    cr_expect_eq(st[2], AQ_OFFER_NEWER);
    aq_wr_u8(&w, 9); /* one status more than the count, and an unknown one */
    cr_expect_eq(aq_node_offer_rep_decode(w.p, w.len, &count, &st), AQ_EPROTO);
    aq_wr_free(&w);
}

/* Copies order by version, then by digest (hi, then lo), then kind: the store's rule
 * (aq_chunk_write_cmp), so the command and the nodes pick the same newest copy. */
Test(proto, copy_order) {
    aq_node_digest a = {1, 9}, b = {2, 0}, c = {2, 1};
    const uint8_t V = AQ_KIND_VALUE, T = AQ_KIND_TOMBSTONE, M = AQ_KIND_MANIFEST;
    cr_expect_lt(aq_node_copy_cmp(1, c, T, 2, a, V), 0);
    cr_expect_gt(aq_node_copy_cmp(3, a, V, 2, c, T), 0);
    cr_expect_lt(aq_node_copy_cmp(5, a, T, 5, b, V), 0);
    cr_expect_lt(aq_node_copy_cmp(5, b, V, 5, c, V), 0);
    cr_expect_eq(aq_node_copy_cmp(5, c, V, 5, c, V), 0);
    /* Same version and digest (an empty value and a removal): the kind decides. */
    cr_expect_lt(aq_node_copy_cmp(5, c, V, 5, c, T), 0);
    cr_expect_lt(aq_node_copy_cmp(5, c, V, 5, c, M), 0);
    cr_expect_gt(aq_node_copy_cmp(5, c, T, 5, c, M), 0);
}

Test(proto, mstat_roundtrip_and_bounds) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_mstat_req_head(&w, AQ_READ_TOMBSTONES, 3);
    aq_node_mstat_req_key(&w, "a", 1);
    aq_node_mstat_req_key(&w, "photos/b.jpg", 12);
    aq_node_mstat_req_key(&w, "c", 1);
    cr_assert(w.ok);
    aq_rd r;
    uint8_t flags;
    uint32_t count;
    cr_assert_eq(aq_node_mstat_req_begin(&r, w.p, w.len, &flags, &count), 0);
    cr_expect_eq(flags, AQ_READ_TOMBSTONES);
    cr_assert_eq(count, 3);
    const uint8_t *k;
    size_t kl;
    cr_assert_eq(aq_node_mstat_req_next(&r, &k, &kl), 0);
    cr_expect(kl == 1 && k[0] == 'a');
    cr_assert_eq(aq_node_mstat_req_next(&r, &k, &kl), 0);
    cr_expect(kl == 12 && memcmp(k, "photos/b.jpg", 12) == 0);
    cr_assert_eq(aq_node_mstat_req_next(&r, &k, &kl), 0);
    cr_expect(aq_rd_done(&r));
    /* A fourth key is not there; a truncated request fails on some key or its count. */
    cr_expect_eq(aq_node_mstat_req_next(&r, &k, &kl), AQ_EPROTO);
    for (size_t n = 0; n < w.len; n++) {
        bool ok = aq_node_mstat_req_begin(&r, w.p, n, &flags, &count) == 0;
        for (uint32_t i = 0; ok && i < count; i++)
            ok = aq_node_mstat_req_next(&r, &k, &kl) == 0;
        cr_expect(!ok || !aq_rd_done(&r), "length %zu accepted", n);
    }
    aq_wr_free(&w);
    /* Counts of 0, above AQ_MSTAT_MAX, or more than the bytes can hold; unknown flags. */
    uint8_t zero[] = {0, 0, 0, 1, 'a'};
    cr_expect_eq(aq_node_mstat_req_begin(&r, zero, sizeof zero, &flags, &count), AQ_EPROTO);
    uint8_t many[] = {0, 0xff, 0xff, 1, 'a'};
    cr_expect_eq(aq_node_mstat_req_begin(&r, many, sizeof many, &flags, &count), AQ_EPROTO);
    uint8_t over[] = {0, 3, 0, 1, 'a'};
    cr_expect_eq(aq_node_mstat_req_begin(&r, over, sizeof over, &flags, &count), AQ_EPROTO);
    uint8_t badflag[] = {0x80, 1, 0, 1, 'a'};
    cr_expect_eq(aq_node_mstat_req_begin(&r, badflag, sizeof badflag, &flags, &count), AQ_EPROTO);
    uint8_t emptykey[] = {0, 1, 0, 0, 0};
    cr_assert_eq(aq_node_mstat_req_begin(&r, emptykey, sizeof emptykey, &flags, &count), 0);
    cr_expect_eq(aq_node_mstat_req_next(&r, &k, &kl), AQ_EPROTO);

    aq_wr_init(&w);
    aq_node_digest d = {0x1122334455667788ull, 0x99aabbccddeeff00ull};
    aq_node_mstat_rep_head(&w, 3);
    aq_node_mstat_rep_entry(&w, 0, AQ_KIND_VALUE, 4096, d, 77);
    aq_node_mstat_rep_entry(&w, AQ_ENOTFOUND, 0, 0, d, 0);
    aq_node_mstat_rep_entry(&w, 0, AQ_KIND_TOMBSTONE, 0, d, 78);
    cr_assert(w.ok);
    cr_assert_eq(aq_node_mstat_rep_begin(&r, w.p, w.len, &count), 0);
    cr_assert_eq(count, 3);
    int err;
    uint8_t kind;
    uint64_t size, version;
    aq_node_digest got;
    cr_assert_eq(aq_node_mstat_rep_next(&r, &err, &kind, &size, &got, &version), 0);
    cr_expect(err == 0 && kind == AQ_KIND_VALUE && size == 4096 && version == 77);
    cr_expect(got.hi == d.hi && got.lo == d.lo);
    cr_assert_eq(aq_node_mstat_rep_next(&r, &err, &kind, &size, &got, &version), 0);
    cr_expect_eq(err, AQ_ENOTFOUND);
    cr_assert_eq(aq_node_mstat_rep_next(&r, &err, &kind, &size, &got, &version), 0);
    cr_expect(err == 0 && kind == AQ_KIND_TOMBSTONE && version == 78);
    cr_expect(aq_rd_done(&r));
    for (size_t n = 0; n < w.len; n++) {
        bool ok = aq_node_mstat_rep_begin(&r, w.p, n, &count) == 0;
        for (uint32_t i = 0; ok && i < count; i++)
            ok = aq_node_mstat_rep_next(&r, &err, &kind, &size, &got, &version) == 0;
        cr_expect(!ok || !aq_rd_done(&r), "length %zu accepted", n);
    }
    aq_wr_free(&w);
    /* A positive code, and a removal marker with a size, are refused. */
    aq_wr_init(&w);
    aq_node_mstat_rep_head(&w, 1);
    aq_wr_u32(&w, 5);
    cr_assert_eq(aq_node_mstat_rep_begin(&r, w.p, w.len, &count), 0);
    cr_expect_eq(aq_node_mstat_rep_next(&r, &err, &kind, &size, &got, &version), AQ_EPROTO);
    aq_wr_free(&w);
    aq_wr_init(&w);
    aq_node_mstat_rep_head(&w, 1);
    aq_node_mstat_rep_entry(&w, 0, AQ_KIND_TOMBSTONE, 9, d, 1);
    cr_assert_eq(aq_node_mstat_rep_begin(&r, w.p, w.len, &count), 0);
    cr_expect_eq(aq_node_mstat_rep_next(&r, &err, &kind, &size, &got, &version), AQ_EPROTO);
    aq_wr_free(&w);
}

Test(proto, mget_roundtrip_and_bounds) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_digest d = {0x1122334455667788ull, 0x99aabbccddeeff00ull};
    aq_node_mstat_rep_head(&w, 4);
    aq_node_mget_rep_entry(&w, 0, AQ_KIND_VALUE, d, 77, "hello", 5);
    aq_node_mget_rep_entry(&w, AQ_ENOTFOUND, 0, d, 0, NULL, 0);
    aq_node_mget_rep_entry(&w, 0, AQ_KIND_TOMBSTONE, d, 78, NULL, 0);
    aq_node_mget_rep_entry(&w, AQ_ETOOBIG, 0, d, 0, NULL, 0);
    cr_assert(w.ok);
    cr_expect_eq(w.len, 2 + aq_node_mget_rep_entry_len(5) + 4 + aq_node_mget_rep_entry_len(0) + 4);
    aq_rd r;
    uint32_t count;
    cr_assert_eq(aq_node_mget_rep_begin(&r, w.p, w.len, &count), 0);
    cr_assert_eq(count, 4);
    int err;
    const uint8_t *rep;
    size_t replen;
    uint8_t kind;
    aq_node_digest got;
    uint64_t version;
    const uint8_t *v;
    size_t vlen;
    /* Each value's bytes are GET's reply, read by GET's decoder. */
    cr_assert_eq(aq_node_mget_rep_next(&r, &err, &rep, &replen), 0);
    cr_assert_eq(err, 0);
    cr_assert_eq(aq_node_get_rep_decode_v(rep, replen, &kind, &got, &version, &v, &vlen), 0);
    cr_expect(kind == AQ_KIND_VALUE && version == 77 && got.hi == d.hi && got.lo == d.lo);
    cr_expect(vlen == 5 && memcmp(v, "hello", 5) == 0);
    cr_assert_eq(aq_node_mget_rep_next(&r, &err, &rep, &replen), 0);
    cr_expect_eq(err, AQ_ENOTFOUND);
    cr_assert_eq(aq_node_mget_rep_next(&r, &err, &rep, &replen), 0);
    cr_assert_eq(aq_node_get_rep_decode_v(rep, replen, &kind, &got, &version, &v, &vlen), 0);
    cr_expect(kind == AQ_KIND_TOMBSTONE && version == 78 && vlen == 0);
    cr_assert_eq(aq_node_mget_rep_next(&r, &err, &rep, &replen), 0);
    cr_expect_eq(err, AQ_ETOOBIG);
    cr_expect(aq_rd_done(&r));
    /* Cut anywhere, the reply is refused or leaves bytes unread. */
    for (size_t n = 0; n < w.len; n++) {
        bool ok = aq_node_mget_rep_begin(&r, w.p, n, &count) == 0;
        for (uint32_t i = 0; ok && i < count; i++)
            ok = aq_node_mget_rep_next(&r, &err, &rep, &replen) == 0;
        cr_expect(!ok || !aq_rd_done(&r), "length %zu accepted", n);
    }
    aq_wr_free(&w);
    /* A positive code, a length past the end, and one shorter than GET's head are refused. */
    uint8_t pos[] = {1, 0, 5, 0, 0, 0};
    uint8_t past[] = {1, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 1, 2, 3};
    uint8_t shorter[] = {1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 2};
    uint8_t *bad[] = {pos, past, shorter};
    size_t badlen[] = {sizeof pos, sizeof past, sizeof shorter};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(aq_node_mget_rep_begin(&r, bad[i], badlen[i], &count), 0);
        cr_expect_eq(aq_node_mget_rep_next(&r, &err, &rep, &replen), AQ_EPROTO, "case %zu", i);
    }
    cr_expect_str_eq(aq_node_method_name(AQ_M_MGET), "MGET");
}

Test(proto, mput_roundtrip_and_bounds) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_mput_req_head(&w, 2);
    aq_node_mput_req_item(&w, "abc", 3);
    aq_node_mput_req_item(&w, "", 0);
    cr_assert(w.ok);
    aq_rd r;
    uint32_t count;
    const uint8_t *item;
    size_t len;
    cr_assert_eq(aq_node_mput_req_begin(&r, w.p, w.len, &count), 0);
    cr_assert_eq(count, 2);
    cr_assert_eq(aq_node_mput_req_next(&r, &item, &len), 0);
    cr_expect(len == 3 && memcmp(item, "abc", 3) == 0);
    cr_assert_eq(aq_node_mput_req_next(&r, &item, &len), 0);
    cr_expect_eq(len, 0);
    cr_expect(aq_rd_done(&r));
    for (size_t n = 0; n < w.len; n++) {
        bool ok = aq_node_mput_req_begin(&r, w.p, n, &count) == 0;
        for (uint32_t i = 0; ok && i < count; i++)
            ok = aq_node_mput_req_next(&r, &item, &len) == 0;
        cr_expect(!ok || !aq_rd_done(&r), "request length %zu accepted", n);
    }
    aq_wr_free(&w);
    /* No items, more than AQ_MSTAT_MAX, or more than the bytes can hold. */
    uint8_t zero[] = {0, 0}, many[] = {0x01, 0x01, 0, 0, 0, 0}, over[] = {3, 0, 0, 0, 0, 0};
    cr_expect_eq(aq_node_mput_req_begin(&r, zero, sizeof zero, &count), AQ_EPROTO);
    cr_expect_eq(aq_node_mput_req_begin(&r, many, sizeof many, &count), AQ_EPROTO);
    cr_expect_eq(aq_node_mput_req_begin(&r, over, sizeof over, &count), AQ_EPROTO);

    aq_wr_init(&w);
    aq_node_mstat_rep_head(&w, 2);
    aq_node_mput_rep_entry(&w, 0, "report", 6);
    aq_node_mput_rep_entry(&w, AQ_EFULL, "n3", 2);
    cr_assert(w.ok);
    cr_expect_eq(w.len, 2 + aq_node_mput_rep_entry_len(6) + aq_node_mput_rep_entry_len(2));
    int status;
    cr_assert_eq(aq_node_mput_rep_begin(&r, w.p, w.len, &count), 0);
    cr_assert_eq(count, 2);
    cr_assert_eq(aq_node_mput_rep_next(&r, &status, &item, &len), 0);
    cr_expect(status == 0 && len == 6 && memcmp(item, "report", 6) == 0);
    cr_assert_eq(aq_node_mput_rep_next(&r, &status, &item, &len), 0);
    cr_expect(status == AQ_EFULL && len == 2 && memcmp(item, "n3", 2) == 0);
    cr_expect(aq_rd_done(&r));
    for (size_t n = 0; n < w.len; n++) {
        bool ok = aq_node_mput_rep_begin(&r, w.p, n, &count) == 0;
        for (uint32_t i = 0; ok && i < count; i++)
            ok = aq_node_mput_rep_next(&r, &status, &item, &len) == 0;
        cr_expect(!ok || !aq_rd_done(&r), "reply length %zu accepted", n);
    }
    aq_wr_free(&w);
    uint8_t pos[] = {1, 0, 5, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(aq_node_mput_rep_begin(&r, pos, sizeof pos, &count), 0);
    cr_expect_eq(aq_node_mput_rep_next(&r, &status, &item, &len), AQ_EPROTO);
    cr_expect_str_eq(aq_node_method_name(AQ_M_MPUT), "MPUT");
}

Test(proto, refusal_roundtrip_and_bad_names_refused) {
    aq_wr w;
    aq_wr_init(&w);
    aq_node_refusal_encode(&w, "node-2.b_x");
    cr_assert(w.ok);
    char name[AQ_NODE_NAME_MAX + 1];
    cr_assert_eq(aq_node_refusal_decode(w.p, w.len, name), 0);
    cr_expect_str_eq(name, "node-2.b_x");
    for (size_t n = 0; n < w.len; n++)
        cr_expect_eq(aq_node_refusal_decode(w.p, n, name), AQ_EPROTO, "length %zu accepted", n);
    uint8_t longer[16] = {3, 'a', 'b', 'c', 'd'};
    cr_expect_eq(aq_node_refusal_decode(longer, 5, name), AQ_EPROTO, "a trailing byte accepted");
    uint8_t empty[1] = {0};
    cr_expect_eq(aq_node_refusal_decode(empty, 1, name), AQ_EPROTO, "an empty name accepted");
    uint8_t bad[4] = {3, 'a', '\n', 'c'};
    cr_expect_eq(aq_node_refusal_decode(bad, 4, name), AQ_EPROTO, "a control byte accepted");
    uint8_t huge[1 + 64];
    huge[0] = 64;
    memset(huge + 1, 'a', 64);
    cr_expect_eq(aq_node_refusal_decode(huge, sizeof huge, name), AQ_EPROTO, "64 bytes accepted");
    aq_wr_free(&w);
}
