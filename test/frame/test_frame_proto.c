/* The frame methods' wire layouts and key scheme: round trips, every truncation and trailing byte
 * refused, lying counts refused, names checked, a piece and its column chunks placed together. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aq_error.h"
#include "aq_frame_proto.h"
#include "aq_node_place.h"
#include "aq_node_proto.h"

static aq_wr sample_req(void) {
    uint8_t recs[2 * AQ_FRAME_PIECE_REC];
    aq_wr pw = {recs, 0, sizeof recs, true};
    aq_wr_u32(&pw, 3);
    aq_wr_u64(&pw, 1);
    aq_wr_u32(&pw, 7);
    aq_wr_u64(&pw, 90001);
    const uint8_t types[3] = {1, 2, 4};
    const uint8_t setup[5] = {9, 8, 7, 6, 5};
    const uint8_t blobs[4] = {0, 0, 0, 0};
    aq_frame_req q = {
        (const uint8_t *)"iris", 4, setup, sizeof setup, 3, types, blobs, sizeof blobs, 2, recs};
    aq_wr w;
    aq_wr_init(&w);
    aq_frame_req_encode(&w, &q);
    cr_assert(w.ok);
    return w;
}

Test(frame_proto, request_round_trip) {
    aq_wr w = sample_req();
    aq_frame_req q;
    cr_assert_eq(aq_frame_req_decode(w.p, w.len, &q), 0);
    cr_expect_eq(q.nlen, 4);
    cr_expect_eq(memcmp(q.name, "iris", 4), 0);
    cr_expect_eq(q.slen, 5);
    cr_expect_eq(q.ncols, 3);
    cr_assert_not_null(q.types);
    cr_expect_eq(q.types[2], 4);
    cr_expect_eq(q.blen, 4);
    cr_assert_eq(q.npieces, 2);
    uint32_t idx;
    uint64_t line;
    aq_frame_req_piece(&q, 1, &idx, &line);
    cr_expect_eq(idx, 7);
    cr_expect_eq(line, 90001);
    aq_wr_free(&w);
}

Test(frame_proto, request_truncations_and_trailing_bytes_refused) {
    aq_wr w = sample_req();
    aq_frame_req q;
    for (size_t n = 0; n < w.len; n++)
        cr_expect_eq(aq_frame_req_decode(w.p, n, &q), AQ_EPROTO, "prefix of %zu bytes", n);
    uint8_t *longer = malloc(w.len + 1);
    memcpy(longer, w.p, w.len);
    longer[w.len] = 0;
    cr_expect_eq(aq_frame_req_decode(longer, w.len + 1, &q), AQ_EPROTO);
    free(longer);
    aq_wr_free(&w);
}

Test(frame_proto, request_lying_counts_refused) {
    aq_wr w = sample_req();
    aq_frame_req q;
    /* name(1+4) setup(4+5) ncols(4) has_types(1) */
    size_t has_types = 1 + 4 + 4 + 5 + 4;
    w.p[has_types] = 2;
    cr_expect_eq(aq_frame_req_decode(w.p, w.len, &q), AQ_EPROTO);
    w.p[has_types] = 1;
    size_t npieces_at = w.len - 2 * AQ_FRAME_PIECE_REC - 4;
    w.p[npieces_at + 3] = 0xff; /* about 4 billion pieces in a few bytes */
    cr_expect_eq(aq_frame_req_decode(w.p, w.len, &q), AQ_EPROTO);
    aq_wr_free(&w);
    /* An empty name is no frame. */
    aq_frame_req e = {(const uint8_t *)"", 0, NULL, 0, 0, NULL, NULL, 0, 0, NULL};
    aq_wr_init(&w);
    aq_frame_req_encode(&w, &e);
    cr_expect_eq(aq_frame_req_decode(w.p, w.len, &q), AQ_EPROTO);
    aq_wr_free(&w);
}

static aq_wr sample_rep(void) {
    aq_wr w;
    aq_wr_init(&w);
    aq_wr_u32(&w, (uint32_t)(int32_t)AQ_EPARSE);
    aq_wr_str16(&w, "line 3: 2 fields, expected 3", 28);
    aq_wr_u32(&w, 1);
    aq_wr_u32(&w, 5);
    aq_wr_u32(&w, 1000);
    aq_wr_u32(&w, 2);
    aq_frame_blob_put(&w, "abc", 3);
    aq_frame_blob_put(&w, "", 0);
    cr_assert(w.ok);
    return w;
}

Test(frame_proto, reply_round_trip_and_refusals) {
    aq_wr w = sample_rep();
    aq_frame_rep r;
    cr_assert_eq(aq_frame_rep_decode(w.p, w.len, &r), 0);
    cr_expect_eq(r.status, AQ_EPARSE);
    cr_expect_eq(r.mlen, 28);
    uint32_t idx, rows;
    aq_frame_rep_piece(&r, 0, &idx, &rows);
    cr_expect_eq(idx, 5);
    cr_expect_eq(rows, 1000);
    cr_expect_eq(r.nblobs, 2);
    aq_rd rd = aq_rd_init(r.blobs, r.blen);
    const uint8_t *b;
    size_t bl;
    cr_assert_eq(aq_frame_blob_next(&rd, &b, &bl), 0);
    cr_expect_eq(bl, 3);
    cr_expect_eq(memcmp(b, "abc", 3), 0);
    for (size_t n = 0; n < w.len; n++)
        cr_expect_eq(aq_frame_rep_decode(w.p, n, &r), AQ_EPROTO, "prefix of %zu bytes", n);
    /* One blob more than the bytes hold. */
    size_t nblobs_at = 4 + 2 + 28 + 4 + 8;
    w.p[nblobs_at] = 3;
    cr_expect_eq(aq_frame_rep_decode(w.p, w.len, &r), AQ_EPROTO);
    aq_wr_free(&w);
}

Test(frame_proto, names_and_keys) {
    char name[AQ_FRAME_NAME_MAX + 2];
    memset(name, 'x', sizeof name);
    cr_expect(aq_frame_name_ok(name, AQ_FRAME_NAME_MAX));
    cr_expect_not(aq_frame_name_ok(name, AQ_FRAME_NAME_MAX + 1));
    cr_expect_not(aq_frame_name_ok("", 0));
    cr_expect_not(aq_frame_name_ok("a/b", 3));
    cr_expect_not(aq_frame_name_ok("a\x1e"
                                   "b",
                                   3));
    /* The longest name with the largest index and column still makes a valid key. */
    uint8_t k[AQ_NODE_KEY_MAX], p[AQ_NODE_KEY_MAX];
    size_t kl = aq_frame_key(k, name, AQ_FRAME_NAME_MAX, UINT32_MAX, UINT32_MAX);
    cr_expect_leq(kl, AQ_NODE_KEY_MAX);
    cr_expect_eq(k[0], 0x1f);
    /* Piece i and its column chunks share the bytes placement looks at. */
    size_t pl = aq_frame_key(p, "iris", 4, 12, AQ_FRAME_PIECE);
    kl = aq_frame_key(k, "iris", 4, 12, 3);
    cr_expect_eq(pl, strlen("\x1f"
                            "Firis/12\x1e"
                            "p"));
    cr_expect_eq(memcmp(p,
                        "\x1f"
                        "Firis/12\x1e"
                        "p",
                        pl),
                 0);
    cr_expect_eq(memcmp(k,
                        "\x1f"
                        "Firis/12\x1e"
                        "c3",
                        kl),
                 0);
    /* Only raw pieces are one-copy scratch (never repaired): not column chunks, metadata or
     * user keys, whatever their last bytes. */
    cr_expect(aq_frame_key_is_piece(p, pl));
    cr_expect_not(aq_frame_key_is_piece(k, kl));
    uint8_t mk[AQ_NODE_KEY_MAX];
    size_t mkl = aq_frame_meta_key(mk, "x\x1ep", 3);
    cr_expect_not(aq_frame_key_is_piece(mk, mkl));
    cr_expect_not(aq_frame_key_is_piece((const uint8_t *)"user\x1ep", 6));
    cr_expect_not(aq_frame_key_is_piece((const uint8_t *)"\x1f"
                                                         "F\x1ep",
                                        4));
    cr_expect_eq(aq_place_key_len(p, pl), aq_place_key_len(k, kl));
    cr_expect_eq(aq_place_key_len(p, pl), strlen("\x1f"
                                                 "Firis/12"));
    uint64_t seeds[3] = {aq_place_seed("n1"), aq_place_seed("n2"), aq_place_seed("n3")};
    uint32_t a[3], b[3];
    aq_place_order(seeds, 3, p, pl, a);
    aq_place_order(seeds, 3, k, kl, b);
    cr_expect_arr_eq(a, b, sizeof a);
    size_t ml = aq_frame_meta_key(k, "iris", 4);
    cr_expect_eq(ml, 6);
    cr_expect_eq(memcmp(k,
                        "\x1f"
                        "Miris",
                        6),
                 0);
}
