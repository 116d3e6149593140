/* Key validation and digest helpers, the hex form checked against the real xxhsum -H2. */
#include "chunk_test_util.h"

#include <fcntl.h>

#define K(s) (s), sizeof(s) - 1

Test(key, accepts_valid_utf8) {
    char k255[255];
    memset(k255, 'x', sizeof k255);
    cr_expect_eq(aq_chunk_key_check(k255, 255), 0);
    cr_expect_eq(aq_chunk_key_check(K("a")), 0);
    cr_expect_eq(aq_chunk_key_check(K("/")), 0);
    cr_expect_eq(aq_chunk_key_check(K("..")), 0);
    cr_expect_eq(aq_chunk_key_check(K(" ")), 0);
    cr_expect_eq(aq_chunk_key_check(K("../../etc/passwd")), 0);
    cr_expect_eq(aq_chunk_key_check(K("caf\xc3\xa9")), 0);              /* U+00E9 */
    cr_expect_eq(aq_chunk_key_check(K("\xe6\x97\xa5\xe6\x9c\xac")), 0); /* 日本 */
    cr_expect_eq(aq_chunk_key_check(K("\xef\xbf\xbf")), 0);             /* U+FFFF */
    cr_expect_eq(aq_chunk_key_check(K("\xf0\x9f\x98\x80")), 0);         /* U+1F600 */
    cr_expect_eq(aq_chunk_key_check(K("\xf4\x8f\xbf\xbf")), 0);         /* U+10FFFF */
    cr_expect_eq(aq_chunk_key_check(K("\xed\x9f\xbf")), 0);             /* U+D7FF */
    cr_expect_eq(aq_chunk_key_check(K("\xee\x80\x80")), 0);             /* U+E000 */
}

Test(key, refuses_invalid) {
    char k256[256];
    memset(k256, 'x', sizeof k256);
    cr_expect_eq(aq_chunk_key_check(k256, 256), AQ_EKEY, "256 bytes");
    cr_expect_eq(aq_chunk_key_check("a", 0), AQ_EKEY, "empty");
    cr_expect_eq(aq_chunk_key_check(NULL, 3), AQ_EKEY, "NULL");
    cr_expect_eq(aq_chunk_key_check(K("a\0b")), AQ_EKEY, "NUL inside");
    cr_expect_eq(aq_chunk_key_check(K("\0")), AQ_EKEY, "only NUL");
    cr_expect_eq(aq_chunk_key_check(K("\x80")), AQ_EKEY, "lone continuation");
    cr_expect_eq(aq_chunk_key_check(K("\xc0\xaf")), AQ_EKEY, "overlong 2-byte /");
    cr_expect_eq(aq_chunk_key_check(K("\xc1\xbf")), AQ_EKEY, "overlong 2-byte");
    cr_expect_eq(aq_chunk_key_check(K("\xc0\x80")), AQ_EKEY, "overlong NUL");
    cr_expect_eq(aq_chunk_key_check(K("\xe0\x80\xaf")), AQ_EKEY, "overlong 3-byte");
    cr_expect_eq(aq_chunk_key_check(K("\xf0\x80\x80\xaf")), AQ_EKEY, "overlong 4-byte");
    cr_expect_eq(aq_chunk_key_check(K("\xed\xa0\x80")), AQ_EKEY, "surrogate D800");
    cr_expect_eq(aq_chunk_key_check(K("\xed\xbf\xbf")), AQ_EKEY, "surrogate DFFF");
    cr_expect_eq(aq_chunk_key_check(K("\xf4\x90\x80\x80")), AQ_EKEY, "U+110000");
    cr_expect_eq(aq_chunk_key_check(K("\xf5\x80\x80\x80")), AQ_EKEY, "F5 lead");
    cr_expect_eq(aq_chunk_key_check(K("\xff")), AQ_EKEY, "FF");
    cr_expect_eq(aq_chunk_key_check(K("ab\xe2\x82")), AQ_EKEY, "truncated at end");
    cr_expect_eq(aq_chunk_key_check(K("\xe2\x28\xa1")), AQ_EKEY, "bad continuation");
    /* 254 ASCII bytes then the first byte of a 2-byte sequence: cut by the length. */
    char k[255];
    memset(k, 'x', sizeof k);
    k[254] = '\xc3';
    cr_expect_eq(aq_chunk_key_check(k, 255), AQ_EKEY, "sequence cut at 255");
}

Test(digest, equality_and_known_values) {
    aq_chunk_digest a = aq_chunk_digest_of("hello", 5);
    aq_chunk_digest b = aq_chunk_digest_of("hello", 5);
    aq_chunk_digest c = aq_chunk_digest_of("hellp", 5);
    cr_expect(aq_chunk_digest_equal(a, b));
    cr_expect_not(aq_chunk_digest_equal(a, c));
    cr_expect_not(aq_chunk_digest_equal(a, (aq_chunk_digest){a.hi, a.lo ^ 1}));
    cr_expect_not(aq_chunk_digest_equal(a, (aq_chunk_digest){a.hi ^ 1, a.lo}));
    char hex[AQ_CHUNK_DIGEST_HEX_LEN + 1];
    aq_chunk_digest_hex(a, hex);
    /* Printed by xxhsum 0.8.1 -H2 for a file holding "hello". */
    cr_expect_str_eq(hex, "b5e9c1ad071b3e7fc779cfaa5e523818");
    aq_chunk_digest z = aq_chunk_digest_of(NULL, 0);
    cr_expect(aq_chunk_digest_equal(z, aq_chunk_digest_of("", 0)));
}

/* Writes bytes to a file, runs `xxhsum -H2` on it and compares the hex with ours. */
static void check_against_xxhsum(const uint8_t *p, size_t n) {
    char path[] = "/tmp/aq_chunk_xxhsum.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "xxhsum -H2 %s", path);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char line[256] = {0};
    char *got = fgets(line, sizeof line, f);
    int status = pclose(f);
    unlink(path);
    cr_assert_not_null(got, "xxhsum printed nothing");
    cr_assert_eq(status, 0, "xxhsum failed");
    char hex[AQ_CHUNK_DIGEST_HEX_LEN + 1];
    aq_chunk_digest_hex(aq_chunk_digest_of(p, n), hex);
    cr_expect_eq(strlen(hex), 32u);
    cr_expect(strncmp(line, hex, 32) == 0 && line[32] == ' ', "ours %s, xxhsum -H2: %s", hex, line);
}

Test(digest, hex_equals_xxhsum_H2) {
    size_t sizes[] = {0, 1, 16, 17, 128, 129, 240, 241, 1000, 65536, AQ_CHUNK_VALUE_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = tu_bytes(sizes[i], 100 + i);
        check_against_xxhsum(p, sizes[i]);
        free(p);
    }
}
