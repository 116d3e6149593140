/* xxh3-128 digests of chunk values and their canonical text form. */
#include "aq_chunk.h"

#include "aq_xxh.h"

aq_chunk_digest aq_chunk_digest_of(const void *data, size_t len) {
    XXH128_hash_t h = XXH3_128bits(len ? data : "", len);
    return (aq_chunk_digest){h.high64, h.low64};
}

bool aq_chunk_digest_equal(aq_chunk_digest a, aq_chunk_digest b) {
    return a.hi == b.hi && a.lo == b.lo;
}

void aq_chunk_digest_hex(aq_chunk_digest d, char out[AQ_CHUNK_DIGEST_HEX_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    XXH128_hash_t h = {.low64 = d.lo, .high64 = d.hi};
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    for (size_t i = 0; i < sizeof c.digest; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 0xF];
    }
    out[AQ_CHUNK_DIGEST_HEX_LEN] = '\0';
}
