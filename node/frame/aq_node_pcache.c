/* The parse cache: a short list under one mutex. A node holds at most its share of one frame's
 * pieces here (a few hundred at the default budget), and each lookup saves parsing 4 MiB, so a
 * linear scan costs nothing that shows. Columns are moved in and out, never copied. */
#include "aq_node_pcache.h"

#include "aq_error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next;
    uint8_t key[256];
    size_t klen;
    aq_chunk_digest piece;
    uint64_t setup_hash;
    aq_csv_col *cols;
    aq_node_pcache_done *done; /* NULL: no column stored yet */
    uint32_t ncols;
    size_t bytes;
    uint64_t born_us;
} entry;

typedef struct note {
    struct note *next;
    uint64_t parse_id, setup_hash, born_us;
    uint32_t ncols;
    bool str[]; /* ncols */
} note;

struct aq_node_pcache {
    pthread_mutex_t mu;
    entry *head; /* newest first */
    note *notes; /* newest first */
    size_t nnotes;
    size_t max_bytes, bytes, n;
    uint64_t max_age_us;
    uint64_t hits, misses, dropped;
};

int aq_node_pcache_new(size_t max_bytes, uint64_t max_age_us, aq_node_pcache **out) {
    aq_node_pcache *pc = calloc(1, sizeof *pc);
    if (!pc)
        return AQ_ENOMEM;
    if (pthread_mutex_init(&pc->mu, NULL) != 0) {
        free(pc);
        return AQ_ENOMEM;
    }
    pc->max_bytes = max_bytes;
    pc->max_age_us = max_age_us;
    *out = pc;
    return 0;
}

static void entry_free(entry *e) {
    aq_csv_cols_free(e->cols, e->ncols);
    free(e->done);
    free(e);
}

void aq_node_pcache_free(aq_node_pcache *pc) {
    if (!pc)
        return;
    for (entry *e = pc->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    for (note *t = pc->notes, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    pthread_mutex_destroy(&pc->mu);
    free(pc);
}

static size_t col_bytes(const aq_csv_col *c) {
    size_t b = sizeof *c + ((size_t)c->rows + 7) / 8;
    switch (c->type) {
    case AQ_CSV_T_INT:
        b += (size_t)c->rows * c->width;
        break;
    case AQ_CSV_T_FLOAT:
    case AQ_CSV_T_TIME:
        b += (size_t)c->rows * 8;
        break;
    case AQ_CSV_T_CAT:
        b += (size_t)c->rows * 4;
        break;
    default:
        break;
    }
    if (c->text.off)
        b += ((size_t)c->text.n + 1) * 4 + c->text.off[c->text.n];
    return b;
}

size_t aq_node_pcache_cols_bytes(const aq_csv_col *cols, uint32_t ncols) {
    size_t b = 0;
    for (uint32_t i = 0; i < ncols; i++)
        b += col_bytes(&cols[i]);
    return b;
}

static bool same_id(const entry *e, const uint8_t *key, size_t klen, aq_chunk_digest piece,
                    uint64_t setup_hash) {
    return e->klen == klen && memcmp(e->key, key, klen) == 0 &&
           aq_chunk_digest_equal(e->piece, piece) && e->setup_hash == setup_hash;
}

/* Unlinks *pp and returns it. */
static entry *unlink_at(aq_node_pcache *pc, entry **pp) {
    entry *e = *pp;
    *pp = e->next;
    pc->bytes -= e->bytes;
    pc->n--;
    return e;
}

int aq_node_pcache_put(aq_node_pcache *pc, const uint8_t *key, size_t klen, aq_chunk_digest piece,
                       uint64_t setup_hash, aq_csv_col *cols, uint32_t ncols, uint64_t now_us) {
    return aq_node_pcache_put_done(pc, key, klen, piece, setup_hash, cols, NULL, ncols, now_us);
}

int aq_node_pcache_put_done(aq_node_pcache *pc, const uint8_t *key, size_t klen,
                            aq_chunk_digest piece, uint64_t setup_hash, aq_csv_col *cols,
                            const aq_node_pcache_done *done, uint32_t ncols, uint64_t now_us) {
    size_t bytes = aq_node_pcache_cols_bytes(cols, ncols);
    if (klen > sizeof((entry *)0)->key || bytes > pc->max_bytes)
        return AQ_ETOOBIG;
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return AQ_ENOMEM;
    if (done) {
        e->done = malloc((ncols ? ncols : 1) * sizeof *done);
        if (!e->done) {
            free(e);
            return AQ_ENOMEM;
        }
        memcpy(e->done, done, ncols * sizeof *done);
    }
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->piece = piece;
    e->setup_hash = setup_hash;
    e->cols = cols;
    e->ncols = ncols;
    e->bytes = bytes;
    e->born_us = now_us;
    entry *drop = NULL;
    pthread_mutex_lock(&pc->mu);
    /* Expired entries and an older copy of this one go first; then the oldest, for room. */
    for (entry **pp = &pc->head; *pp;) {
        if (now_us - (*pp)->born_us > pc->max_age_us ||
            same_id(*pp, key, klen, piece, setup_hash)) {
            entry *x = unlink_at(pc, pp);
            x->next = drop;
            drop = x;
            pc->dropped++;
        } else {
            pp = &(*pp)->next;
        }
    }
    while (pc->bytes + bytes > pc->max_bytes && pc->head) {
        entry **pp = &pc->head;
        while ((*pp)->next)
            pp = &(*pp)->next;
        entry *x = unlink_at(pc, pp);
        x->next = drop;
        drop = x;
        pc->dropped++;
    }
    e->next = pc->head;
    pc->head = e;
    pc->bytes += bytes;
    pc->n++;
    pthread_mutex_unlock(&pc->mu);
    /* Freeing columns takes time: outside the lock. */
    for (entry *next; drop; drop = next) {
        next = drop->next;
        entry_free(drop);
    }
    return 0;
}

aq_csv_col *aq_node_pcache_take(aq_node_pcache *pc, const uint8_t *key, size_t klen,
                                aq_chunk_digest piece, uint64_t setup_hash, uint32_t ncols) {
    aq_node_pcache_done *done = calloc(ncols ? ncols : 1, sizeof *done);
    if (!done)
        return NULL;
    aq_csv_col *cols = aq_node_pcache_take_done(pc, key, klen, piece, setup_hash, ncols, done);
    for (uint32_t i = 0; cols && i < ncols; i++)
        if (done[i].stored) { /* the caller cannot know: as if there were no entry */
            aq_csv_cols_free(cols, ncols);
            cols = NULL;
        }
    free(done);
    return cols;
}

aq_csv_col *aq_node_pcache_take_done(aq_node_pcache *pc, const uint8_t *key, size_t klen,
                                     aq_chunk_digest piece, uint64_t setup_hash, uint32_t ncols,
                                     aq_node_pcache_done *done) {
    entry *e = NULL;
    pthread_mutex_lock(&pc->mu);
    for (entry **pp = &pc->head; *pp; pp = &(*pp)->next) {
        if (same_id(*pp, key, klen, piece, setup_hash)) {
            e = unlink_at(pc, pp);
            break;
        }
    }
    if (e && e->ncols == ncols)
        pc->hits++;
    else
        pc->misses++;
    pthread_mutex_unlock(&pc->mu);
    if (!e)
        return NULL;
    if (e->ncols != ncols) {
        entry_free(e);
        return NULL;
    }
    aq_csv_col *cols = e->cols;
    for (uint32_t i = 0; i < ncols; i++)
        done[i] = e->done ? e->done[i] : (aq_node_pcache_done){false, {0, 0}};
    free(e->done);
    free(e);
    return cols;
}

/* Under the lock: the note of that identity, after dropping notes past the age limit. */
static note *note_find(aq_node_pcache *pc, uint64_t parse_id, uint64_t setup_hash, uint64_t now_us,
                       bool expire) {
    note *hit = NULL;
    for (note **pp = &pc->notes; *pp;) {
        note *t = *pp;
        if (expire && now_us - t->born_us > pc->max_age_us) {
            *pp = t->next;
            free(t);
            pc->nnotes--;
            continue;
        }
        if (t->parse_id == parse_id && t->setup_hash == setup_hash)
            hit = t;
        pp = &t->next;
    }
    return hit;
}

void aq_node_pcache_str_known(aq_node_pcache *pc, uint64_t parse_id, uint64_t setup_hash, bool *str,
                              uint32_t ncols) {
    pthread_mutex_lock(&pc->mu);
    note *t = note_find(pc, parse_id, setup_hash, 0, false);
    if (t && t->ncols == ncols)
        for (uint32_t c = 0; c < ncols; c++)
            str[c] = str[c] || t->str[c];
    pthread_mutex_unlock(&pc->mu);
}

void aq_node_pcache_str_learn(aq_node_pcache *pc, uint64_t parse_id, uint64_t setup_hash,
                              const bool *str, uint32_t ncols, uint64_t now_us) {
    pthread_mutex_lock(&pc->mu);
    note *t = note_find(pc, parse_id, setup_hash, now_us, true);
    if (!t) {
        if (pc->nnotes == AQ_NODE_PCACHE_NOTES) {
            note **pp = &pc->notes;
            while ((*pp)->next)
                pp = &(*pp)->next;
            free(*pp);
            *pp = NULL;
            pc->nnotes--;
        }
        t = calloc(1, sizeof *t + ncols * sizeof t->str[0]);
        if (t) {
            *t = (note){pc->notes, parse_id, setup_hash, now_us, ncols};
            pc->notes = t;
            pc->nnotes++;
        }
    }
    if (t && t->ncols == ncols)
        for (uint32_t c = 0; c < ncols; c++)
            t->str[c] = t->str[c] || str[c];
    pthread_mutex_unlock(&pc->mu);
}

void aq_node_pcache_stats_get(aq_node_pcache *pc, aq_node_pcache_stats *out) {
    pthread_mutex_lock(&pc->mu);
    *out = (aq_node_pcache_stats){pc->n, pc->bytes, pc->hits, pc->misses, pc->dropped};
    pthread_mutex_unlock(&pc->mu);
}
