/* aq_bytes: bounds-checked little-endian readers and growable writers for message codecs.
 *
 * A reader never reads past its end: every get returns false once the input is short, and stays
 * failed, so a decoder can read all fields and check `ok` once. A writer grows its buffer with
 * realloc; after an allocation failure it stays failed (ok == false) and writes nothing more.
 * Header-only: tiny and hot.
 */
#ifndef AQ_BYTES_H
#define AQ_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct aq_rd {
    const uint8_t *p;
    size_t n;
    bool ok;
} aq_rd;

static inline aq_rd aq_rd_init(const void *p, size_t n) {
    aq_rd r = {(const uint8_t *)p, n, true};
    return r;
}

/* Returns a pointer to the next n bytes and skips them, or NULL (and fails) if fewer remain. */
static inline const uint8_t *aq_rd_bytes(aq_rd *r, size_t n) {
    if (!r->ok || r->n < n) {
        r->ok = false;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

static inline uint64_t aq_rd_uint(aq_rd *r, size_t width) {
    const uint8_t *p = aq_rd_bytes(r, width);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (size_t i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline uint8_t aq_rd_u8(aq_rd *r) {
    return (uint8_t)aq_rd_uint(r, 1);
}
static inline uint16_t aq_rd_u16(aq_rd *r) {
    return (uint16_t)aq_rd_uint(r, 2);
}
static inline uint32_t aq_rd_u32(aq_rd *r) {
    return (uint32_t)aq_rd_uint(r, 4);
}
static inline uint64_t aq_rd_u64(aq_rd *r) {
    return aq_rd_uint(r, 8);
}

/* A length-prefixed (u8 or u16) byte string; *len gets its length. */
static inline const uint8_t *aq_rd_str8(aq_rd *r, size_t *len) {
    *len = aq_rd_u8(r);
    return aq_rd_bytes(r, *len);
}
static inline const uint8_t *aq_rd_str16(aq_rd *r, size_t *len) {
    *len = aq_rd_u16(r);
    return aq_rd_bytes(r, *len);
}

/* True when everything was read and nothing is left over. */
static inline bool aq_rd_done(const aq_rd *r) {
    return r->ok && r->n == 0;
}

typedef struct aq_wr {
    uint8_t *p;
    size_t len, cap;
    bool ok;
} aq_wr;

static inline void aq_wr_init(aq_wr *w) {
    w->p = NULL;
    w->len = w->cap = 0;
    w->ok = true;
}

/* Starts w with room for exactly cap bytes. For a buffer whose final size is known: growing by
 * doubling from small would round a 4 MiB message up to 8 MiB, a size jemalloc serves from its
 * oversize arena and returns to the kernel on free, so each such buffer would fault in fresh
 * pages; one just above the size is reused warm. On failure w is not ok. */
static inline void aq_wr_init_cap(aq_wr *w, size_t cap) {
    w->len = 0;
    w->p = (uint8_t *)malloc(cap ? cap : 1);
    w->cap = w->p ? cap : 0;
    w->ok = w->p != NULL;
}

static inline bool aq_wr_reserve(aq_wr *w, size_t more) {
    if (!w->ok)
        return false;
    if (more > SIZE_MAX / 2 - w->len) {
        w->ok = false;
        return false;
    }
    if (w->len + more <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->len + more)
        cap *= 2;
    uint8_t *np = (uint8_t *)realloc(w->p, cap);
    if (!np) {
        w->ok = false;
        return false;
    }
    w->p = np;
    w->cap = cap;
    return true;
}

static inline void aq_wr_bytes(aq_wr *w, const void *p, size_t n) {
    if (n == 0 || !aq_wr_reserve(w, n))
        return;
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

static inline void aq_wr_uint(aq_wr *w, uint64_t v, size_t width) {
    if (!aq_wr_reserve(w, width))
        return;
    for (size_t i = 0; i < width; i++)
        w->p[w->len + i] = (uint8_t)(v >> (8 * i));
    w->len += width;
}

static inline void aq_wr_u8(aq_wr *w, uint8_t v) {
    aq_wr_uint(w, v, 1);
}
static inline void aq_wr_u16(aq_wr *w, uint16_t v) {
    aq_wr_uint(w, v, 2);
}
static inline void aq_wr_u32(aq_wr *w, uint32_t v) {
    aq_wr_uint(w, v, 4);
}
static inline void aq_wr_u64(aq_wr *w, uint64_t v) {
    aq_wr_uint(w, v, 8);
}

/* Length-prefixed strings; a string longer than the prefix allows fails the writer. */
static inline void aq_wr_str8(aq_wr *w, const void *p, size_t n) {
    if (n > UINT8_MAX) {
        w->ok = false;
        return;
    }
    aq_wr_u8(w, (uint8_t)n);
    aq_wr_bytes(w, p, n);
}
static inline void aq_wr_str16(aq_wr *w, const void *p, size_t n) {
    if (n > UINT16_MAX) {
        w->ok = false;
        return;
    }
    aq_wr_u16(w, (uint16_t)n);
    aq_wr_bytes(w, p, n);
}

static inline void aq_wr_free(aq_wr *w) {
    free(w->p);
    aq_wr_init(w);
}

#endif
