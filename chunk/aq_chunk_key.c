/* Key rules: 1..255 bytes of strict UTF-8 (RFC 3629), no NUL. */
#include "aq_chunk_int.h"
#include "aq_error.h"

#include "aq_xxh.h"

/* Returns the length of the valid sequence at p (1..4), or 0 if it is not valid UTF-8 or a NUL. */
static size_t utf8_seq(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int aq_chunk_key_check(const void *key, size_t klen) {
    if (!key || klen == 0 || klen > AQ_CHUNK_KEY_MAX)
        return AQ_EKEY;
    const uint8_t *p = key;
    size_t i = 0;
    while (i < klen) {
        size_t l = utf8_seq(p + i, klen - i);
        if (!l)
            return AQ_EKEY;
        i += l;
    }
    return 0;
}

uint64_t aq_chunk_key_hash(const void *key, size_t klen) {
    return XXH3_64bits(key, klen);
}
