/* The manifest of a large value, stored under the user's key with kind AQ_KIND_MANIFEST:
 *
 *   u32 magic "AQMF" | u8 version 1 | u64 total size | digest (u64 hi, u64 lo) of the whole value |
 *   u64 put id | u32 chunk size | u32 part count | per part: u32 size, digest (u64 hi, u64 lo)
 *
 * Part i lives under cli_part_key(key, put id, i). The put id is random per put, so a new put of
 * the same key never overwrites the parts an older manifest still names; the old parts are removed
 * only after the new manifest is stored. Decoding checks every length and that the part sizes add
 * up to the total, so a damaged manifest is refused rather than followed. */
#include <stdio.h>
#include "aq_xxh.h"

#include "cli.h"

#define MF_MAGIC   0x464d5141u /* "AQMF" little-endian */
#define MF_VERSION 1
#define MF_HEAD    (4 + 1 + 8 + 16 + 8 + 4 + 4)
#define MF_PART    (4 + 16)

int cli_manifest_encode(const cli_manifest *m, uint8_t **out, size_t *len) {
    aq_wr w;
    aq_wr_init(&w);
    aq_wr_u32(&w, MF_MAGIC);
    aq_wr_u8(&w, MF_VERSION);
    aq_wr_u64(&w, m->total);
    aq_wr_u64(&w, m->digest.hi);
    aq_wr_u64(&w, m->digest.lo);
    aq_wr_u64(&w, m->put_id);
    aq_wr_u32(&w, m->chunk_size);
    aq_wr_u32(&w, m->nparts);
    for (uint32_t i = 0; i < m->nparts; i++) {
        aq_wr_u32(&w, m->parts[i].size);
        aq_wr_u64(&w, m->parts[i].digest.hi);
        aq_wr_u64(&w, m->parts[i].digest.lo);
    }
    if (!w.ok) {
        aq_wr_free(&w);
        return AQ_ENOMEM;
    }
    if (w.len > AQ_NODE_CHUNK_MAX) {
        aq_wr_free(&w);
        return AQ_ETOOBIG;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

int cli_manifest_decode(const uint8_t *p, size_t n, cli_manifest *m) {
    memset(m, 0, sizeof *m);
    aq_rd r = aq_rd_init(p, n);
    uint32_t magic = aq_rd_u32(&r);
    uint8_t ver = aq_rd_u8(&r);
    m->total = aq_rd_u64(&r);
    m->digest.hi = aq_rd_u64(&r);
    m->digest.lo = aq_rd_u64(&r);
    m->put_id = aq_rd_u64(&r);
    m->chunk_size = aq_rd_u32(&r);
    m->nparts = aq_rd_u32(&r);
    if (!r.ok || magic != MF_MAGIC || ver != MF_VERSION || m->chunk_size == 0 ||
        m->chunk_size > AQ_NODE_CHUNK_MAX || m->nparts == 0 || r.n / MF_PART != m->nparts ||
        r.n % MF_PART != 0)
        return AQ_ECORRUPT;
    m->parts = calloc(m->nparts, sizeof *m->parts);
    if (!m->parts)
        return AQ_ENOMEM;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->nparts; i++) {
        m->parts[i].size = aq_rd_u32(&r);
        m->parts[i].digest.hi = aq_rd_u64(&r);
        m->parts[i].digest.lo = aq_rd_u64(&r);
        /* Every part but the last is full: offsets follow from the index. */
        if (m->parts[i].size > m->chunk_size ||
            (i + 1 < m->nparts && m->parts[i].size != m->chunk_size))
            r.ok = false;
        sum += m->parts[i].size;
    }
    if (!aq_rd_done(&r) || sum != m->total) {
        cli_manifest_free(m);
        return AQ_ECORRUPT;
    }
    return 0;
}

void cli_manifest_free(cli_manifest *m) {
    free(m->parts);
    m->parts = NULL;
    m->nparts = 0;
}

size_t cli_part_key(const void *key, size_t klen, uint64_t put_id, uint32_t idx, char out[64]) {
    int n = snprintf(out, 64, "%sp%016llx%016llx:%u", AQ_NODE_INTERNAL_PREFIX,
                     (unsigned long long)XXH3_64bits(key, klen), (unsigned long long)put_id, idx);
    return (size_t)n;
}
