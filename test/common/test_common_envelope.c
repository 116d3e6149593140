/* The codec envelope (common/aq_envelope.h): round trip, and every damaged or foreign blob refused.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aq_envelope.h"

#define MAGIC 0x54534554u /* "TEST" */

static size_t make(uint8_t **out, uint8_t version, const char *body) {
    aq_wr w;
    aq_wr_init(&w);
    aq_env_begin(&w, MAGIC, version);
    aq_wr_bytes(&w, body, strlen(body));
    size_t len = 0;
    cr_assert_eq(aq_env_finish(&w, out, &len), 0);
    cr_assert_eq(len, AQ_ENV_OVERHEAD + strlen(body));
    return len;
}

Test(envelope, round_trip) {
    uint8_t *p;
    size_t len = make(&p, 3, "hello");
    aq_rd r;
    uint8_t ver = 0;
    cr_assert_eq(aq_env_open(p, len, MAGIC, &r, &ver), 0);
    cr_assert_eq(ver, 3);
    const uint8_t *b = aq_rd_bytes(&r, 5);
    cr_assert(b && memcmp(b, "hello", 5) == 0);
    cr_assert_null(aq_rd_bytes(&r, 1), "the body ends before the checksum");
    free(p);
}

Test(envelope, every_flipped_bit_is_refused) {
    uint8_t *p;
    size_t len = make(&p, 1, "some body bytes");
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            aq_rd r;
            uint8_t ver;
            cr_assert_eq(aq_env_open(p, len, MAGIC, &r, &ver), AQ_EPROTO, "byte %zu bit %d", i,
                         bit);
            p[i] ^= (uint8_t)(1u << bit);
        }
    free(p);
}

Test(envelope, short_foreign_and_truncated_are_refused) {
    uint8_t *p;
    size_t len = make(&p, 1, "x");
    aq_rd r;
    uint8_t ver;
    cr_assert_eq(aq_env_open(p, len, MAGIC + 1, &r, &ver), AQ_EPROTO, "another codec's magic");
    for (size_t n = 0; n < len; n++)
        cr_assert_eq(aq_env_open(p, n, MAGIC, &r, &ver), AQ_EPROTO, "truncated to %zu", n);
    cr_assert_eq(aq_env_open(NULL, 0, MAGIC, &r, &ver), AQ_EPROTO);
    free(p);
}
