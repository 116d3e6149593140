/* The command's pure pieces: the manifest codec (a damaged manifest is refused, never followed),
 * part keys, JSON strings, UTF-8 checks, the digest text `xxhsum -H2` prints, exit codes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cli.h"

static cli_manifest sample(uint32_t nparts, uint32_t last) {
    cli_manifest m = {0};
    m.put_id = 0x0123456789abcdefull;
    m.chunk_size = AQ_NODE_CHUNK_MAX;
    m.nparts = nparts;
    m.parts = calloc(nparts, sizeof *m.parts);
    for (uint32_t i = 0; i < nparts; i++) {
        m.parts[i].size = i + 1 < nparts ? AQ_NODE_CHUNK_MAX : last;
        m.parts[i].digest = (aq_node_digest){i * 7 + 1, i * 13 + 2};
        m.total += m.parts[i].size;
    }
    m.digest = (aq_node_digest){0xaaaa, 0xbbbb};
    return m;
}

Test(manifest, round_trip) {
    cli_manifest m = sample(5, 123), d;
    uint8_t *enc;
    size_t len;
    cr_assert_eq(cli_manifest_encode(&m, &enc, &len), 0);
    cr_assert_eq(cli_manifest_decode(enc, len, &d), 0);
    cr_assert_eq(d.total, 4ull * AQ_NODE_CHUNK_MAX + 123);
    cr_assert_eq(d.put_id, m.put_id);
    cr_assert_eq(d.nparts, 5);
    cr_assert_eq(d.digest.hi, 0xaaaa);
    cr_assert_eq(d.digest.lo, 0xbbbb);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(d.parts[i].size, m.parts[i].size);
        cr_assert_eq(d.parts[i].digest.hi, m.parts[i].digest.hi);
        cr_assert_eq(d.parts[i].digest.lo, m.parts[i].digest.lo);
    }
    cli_manifest_free(&d);
    cli_manifest_free(&m);
    free(enc);
}

Test(manifest, every_truncation_and_any_trailing_byte_is_refused) {
    cli_manifest m = sample(3, 9), d;
    uint8_t *enc;
    size_t len;
    cr_assert_eq(cli_manifest_encode(&m, &enc, &len), 0);
    for (size_t n = 0; n < len; n++)
        cr_assert_eq(cli_manifest_decode(enc, n, &d), AQ_ECORRUPT, "length %zu accepted", n);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, enc, len);
    longer[len] = 0;
    cr_assert_eq(cli_manifest_decode(longer, len + 1, &d), AQ_ECORRUPT);
    enc[0] ^= 1; /* magic */
    cr_assert_eq(cli_manifest_decode(enc, len, &d), AQ_ECORRUPT);
    free(longer);
    free(enc);
    cli_manifest_free(&m);
}

Test(manifest, sizes_that_do_not_add_up_are_refused) {
    /* A short part in the middle would shift every later offset. */
    cli_manifest m = sample(3, 9), d;
    m.parts[1].size = 100;
    m.total = 2ull * AQ_NODE_CHUNK_MAX - AQ_NODE_CHUNK_MAX + 100 + 9;
    uint8_t *enc;
    size_t len;
    cr_assert_eq(cli_manifest_encode(&m, &enc, &len), 0);
    cr_assert_eq(cli_manifest_decode(enc, len, &d), AQ_ECORRUPT);
    free(enc);
    /* A total that is not the sum of the parts. */
    m.parts[1].size = AQ_NODE_CHUNK_MAX;
    m.total = 1;
    cr_assert_eq(cli_manifest_encode(&m, &enc, &len), 0);
    cr_assert_eq(cli_manifest_decode(enc, len, &d), AQ_ECORRUPT);
    free(enc);
    cli_manifest_free(&m);
}

Test(part_key, internal_short_and_distinct) {
    char key[AQ_NODE_KEY_MAX];
    memset(key, 'k', sizeof key);
    char a[64], b[64], c[64], a2[64];
    size_t la = cli_part_key(key, sizeof key, 1, 0, a);
    size_t lb = cli_part_key(key, sizeof key, 1, 1, b);
    size_t lc = cli_part_key(key, sizeof key, 2, 0, c);
    size_t la2 = cli_part_key(key, sizeof key, 1, 0, a2);
    cr_assert(la < 64 && lb < 64 && lc < 64);
    cr_assert_eq(a[0], AQ_NODE_INTERNAL_PREFIX[0]);
    cr_assert(!aq_node_user_key_ok(a, la), "a part key must never be a user key");
    cr_assert(la == la2 && memcmp(a, a2, la) == 0);
    cr_assert(strcmp(a, b) != 0 && strcmp(a, c) != 0);
    char big[64];
    cr_assert(cli_part_key("x", 1, UINT64_MAX, UINT32_MAX, big) < 64);
}

static char *json_of(const char *s, size_t n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_json_str(f, s, n);
    fclose(f);
    return buf;
}

Test(json, escapes_quotes_backslashes_controls_and_bad_bytes) {
    static const char raw[] = "a\"b\\c\n\x01 \xc3\xbc";
    char *j = json_of(raw, sizeof raw - 1);
    cr_assert_str_eq(j, "\"a\\\"b\\\\c\\u000a\\u0001 \xc3\xbc\"");
    free(j);
    j = json_of("\xff\xc3", 2); /* not UTF-8: still valid JSON */
    cr_assert_str_eq(j, "\"\\ufffd\\ufffd\"");
    free(j);
    j = json_of("", 0);
    cr_assert_str_eq(j, "\"\"");
    free(j);
}

Test(utf8, accepts_valid_refuses_overlong_surrogates_and_truncated) {
    cr_assert(cli_utf8_ok("plain", 5));
    cr_assert(cli_utf8_ok("\xf0\x9f\x98\x80", 4));  /* U+1F600 */
    cr_assert(!cli_utf8_ok("\xc0\xaf", 2));         /* overlong '/' */
    cr_assert(!cli_utf8_ok("\xed\xa0\x80", 3));     /* surrogate */
    cr_assert(!cli_utf8_ok("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    cr_assert(!cli_utf8_ok("\xe2\x82", 2));         /* truncated */
}

Test(text_safe, keeps_utf8_and_marks_controls_and_broken_bytes) {
    char a[] = "put d\xc3\xa9j\xc3\xa0/\xf0\x9f\x98\x80 ok";
    cli_text_safe(a);
    cr_assert_str_eq(a, "put d\xc3\xa9j\xc3\xa0/\xf0\x9f\x98\x80 ok");
    char b[] = "put a\x01"
               "b\x7f\xff\xfe\xc0\xaf\xed\xa0\x80z\xe2\x82";
    cli_text_safe(b);
    cr_assert_str_eq(b, "put a?b????????z??");
}

Test(text_safe, put_text_writes_what_text_safe_shows_nul_included) {
    static const char in[] = "f\xc3\xa9\n\xff\0x\xe2\x82";
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_not_null(f);
    cli_put_text(f, in, sizeof in - 1);
    fclose(f);
    cr_assert_eq(len, 9);
    cr_assert_arr_eq(out, "f\xc3\xa9???x??", 9);
    free(out);
}

Test(key_why, says_which_rule_and_where) {
    char b[128], k[300];
    cr_assert_null(cli_key_why("a/b c", 5, b, sizeof b));
    cr_assert_null(cli_key_why("\xc3\xa9", 2, b, sizeof b));
    memset(k, 'k', sizeof k);
    cr_assert_null(cli_key_why(k, 255, b, sizeof b));
    cr_assert(strstr(cli_key_why(k, 256, b, sizeof b), "; this one is 256 bytes"));
    cr_assert(strstr(cli_key_why("", 0, b, sizeof b), "; this one is empty"));
    cr_assert(strstr(cli_key_why("ab\ncd", 5, b, sizeof b), "control character, 0x0a, at byte 3"));
    cr_assert(strstr(cli_key_why("x\x7f", 2, b, sizeof b), "control character, 0x7f, at byte 2"));
    cr_assert(strstr(cli_key_why("ab\xff", 3, b, sizeof b), "not valid UTF-8 from byte 3"));
    /* A sequence cut short at the end, and an overlong one in the middle. */
    cr_assert(strstr(cli_key_why("a\xc3", 2, b, sizeof b), "not valid UTF-8 from byte 2"));
    cr_assert(strstr(cli_key_why("ab\xc0\xafz", 5, b, sizeof b), "not valid UTF-8 from byte 3"));
    cr_assert(strncmp(b, "a key is 1 to 255 bytes of UTF-8 without control characters", 59) == 0);
}

Test(digest, hex_is_what_xxhsum_H2_prints) {
    /* xxhsum -H2 of an empty file and of "abc". */
    XXH128_hash_t h = XXH3_128bits("", 0);
    char hex[33];
    cli_digest_hex((aq_node_digest){h.high64, h.low64}, hex);
    cr_assert_str_eq(hex, "99aa06d3014798d86001c324468d497f");
    h = XXH3_128bits("abc", 3);
    cli_digest_hex((aq_node_digest){h.high64, h.low64}, hex);
    cr_assert_str_eq(hex, "06b05ab6733a618578af5f94892f3950");
}

Test(exit_codes, follow_the_documented_classes) {
    cr_assert_eq(cli_exit_code(0), CLI_OK);
    cr_assert_eq(cli_exit_code(AQ_ENOTFOUND), CLI_NOTFOUND);
    cr_assert_eq(cli_exit_code(AQ_ETIMEDOUT), CLI_UNREACH);
    cr_assert_eq(cli_exit_code(AQ_EUNAVAIL), CLI_UNREACH);
    cr_assert_eq(cli_exit_code(-ECONNREFUSED), CLI_UNREACH);
    cr_assert_eq(cli_exit_code(AQ_EFULL), CLI_ERROR);
    cr_assert_eq(cli_exit_code(AQ_ECORRUPT), CLI_ERROR);
}

/* An operation's name is what snprintf("%s %s") gave, cut at every capacity the same way. */
Test(what, names_the_operation_and_cuts_like_snprintf) {
    const char *key = "dir/some-key-of-a-fair-length";
    for (size_t cap = 1; cap < 48; cap++) {
        char got[64], want[64];
        memset(got, 'x', sizeof got);
        cli_what_set(got, cap, "put", key);
        snprintf(want, cap, "%s %s", "put", key);
        cr_assert_str_eq(got, want, "cap %zu", cap);
        cr_assert_eq(got[cap], 'x', "cap %zu: wrote past the end", cap);
        cli_what_set(got, cap, "batch", NULL);
        snprintf(want, cap, "%s", "batch");
        cr_assert_str_eq(got, want, "cap %zu", cap);
    }
}
