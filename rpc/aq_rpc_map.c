#include "aq_rpc_map.h"

#include <stdlib.h>

#include "aq_error.h"

static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

void aq_rpc_map_free(aq_rpc_map *m) {
    free(m->s);
    m->s = NULL;
    m->n = m->cap = m->hint = 0;
}

void *aq_rpc_map_get(const aq_rpc_map *m, uint64_t key) {
    if (!m->cap || !key)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].key == key)
            return m->s[i].val;
        if (m->s[i].key == 0)
            return NULL;
    }
}

static void raw_put(aq_rpc_map_slot *s, size_t cap, uint64_t key, void *val) {
    size_t i = hash(key) & (cap - 1);
    while (s[i].key && s[i].key != key)
        i = (i + 1) & (cap - 1);
    s[i].key = key;
    s[i].val = val;
}

int aq_rpc_map_reserve(aq_rpc_map *m, size_t more) {
    if ((m->n + more) * 4 <= m->cap * 3)
        return 0;
    size_t cap = m->cap ? m->cap * 2 : 16;
    while ((m->n + more) * 4 > cap * 3)
        cap *= 2;
    aq_rpc_map_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return AQ_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->s[i].key)
            raw_put(s, cap, m->s[i].key, m->s[i].val);
    free(m->s);
    m->s = s;
    m->cap = cap;
    return 0;
}

int aq_rpc_map_put(aq_rpc_map *m, uint64_t key, void *val) {
    if (!key)
        return AQ_EINVAL;
    if (aq_rpc_map_reserve(m, 1) != 0)
        return AQ_ENOMEM;
    if (!aq_rpc_map_get(m, key))
        m->n++;
    raw_put(m->s, m->cap, key, val);
    return 0;
}

void *aq_rpc_map_del(aq_rpc_map *m, uint64_t key) {
    if (!m->cap || !key)
        return NULL;
    size_t mask = m->cap - 1, i = hash(key) & mask;
    while (m->s[i].key != key) {
        if (m->s[i].key == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->s[i].val;
    m->n--;
    /* Backward shift: move later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; m->s[j].key; j = (j + 1) & mask) {
        size_t home = hash(m->s[j].key) & mask;
        int movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->s[i] = m->s[j];
            i = j;
        }
    }
    m->s[i].key = 0;
    m->s[i].val = NULL;
    return val;
}

void *aq_rpc_map_any(aq_rpc_map *m) {
    /* A full circular scan from the hint, so nothing is missed whatever happened since; when
     * draining, the slots before the hint are empty and the value found is at or next to it. */
    for (size_t k = 0; k < m->cap; k++) {
        size_t i = (m->hint + k) & (m->cap - 1);
        if (m->s[i].key) {
            m->hint = i;
            return m->s[i].val;
        }
    }
    return NULL;
}
