/* aq_envelope: the frame every checksummed codec writes around its body (column chunks, type
 * observations, setups, domains and summaries of node/frame/csv):
 *
 *   u32 magic | u8 version | body | u64 XXH3-64 of every byte before it
 *
 * Invariants: a decoder reads no byte of the body before the trailer checks out, so a torn or
 * corrupted blob is refused whole (AQ_EPROTO) and changes nothing; the magic names the codec, so a
 * blob of one kind is never read as another; the codec itself decides which versions it reads (it
 * may still read older ones). Blobs stored as chunks are also covered by the store's digest; the
 * envelope is what makes each codec safe on its own (a fuzzer's bytes, a replica's reply). */
#ifndef AQ_ENVELOPE_H
#define AQ_ENVELOPE_H

#include <stdint.h>

#include "aq_bytes.h"
#include "aq_error.h"
#include "aq_xxh.h"

#define AQ_ENV_OVERHEAD (4 + 1 + 8)

/* Starts an envelope in w (which may already have reserved room for the whole encoding). */
static inline void aq_env_begin(aq_wr *w, uint32_t magic, uint8_t version) {
    aq_wr_u32(w, magic);
    aq_wr_u8(w, version);
}

/* Appends the checksum and hands the encoding over (*out malloc'd, *len bytes); AQ_ENOMEM (and w
 * freed) if any write ran out of memory. */
static inline int aq_env_finish(aq_wr *w, uint8_t **out, size_t *len) {
    if (w->ok)
        aq_wr_u64(w, XXH3_64bits(w->p, w->len));
    if (!w->ok) {
        aq_wr_free(w);
        return AQ_ENOMEM;
    }
    *out = w->p;
    *len = w->len;
    return 0;
}

/* Checks the checksum and the magic of p[0..len); on success *body reads the bytes after the
 * version, up to the checksum, and *version is the version byte. AQ_EPROTO otherwise. */
static inline int aq_env_open(const uint8_t *p, size_t len, uint32_t magic, aq_rd *body,
                              uint8_t *version) {
    if (!p || len < AQ_ENV_OVERHEAD)
        return AQ_EPROTO;
    aq_rd t = aq_rd_init(p + len - 8, 8);
    if (aq_rd_u64(&t) != XXH3_64bits(p, len - 8))
        return AQ_EPROTO;
    aq_rd r = aq_rd_init(p, len - 8);
    if (aq_rd_u32(&r) != magic)
        return AQ_EPROTO;
    *version = aq_rd_u8(&r);
    *body = r;
    return r.ok ? 0 : AQ_EPROTO;
}

#endif
