#include "aq_rpc_iset.h"

#include <stdlib.h>
#include <string.h>

#include "aq_error.h"

void aq_rpc_iset_init(aq_rpc_iset *s, size_t max_ranges) {
    memset(s, 0, sizeof *s);
    s->max_ranges = max_ranges ? max_ranges : 1;
}

void aq_rpc_iset_free(aq_rpc_iset *s) {
    free(s->r);
    s->r = NULL;
    s->n = s->cap = 0;
}

/* Index of the first range with hi >= task (n if none). */
static size_t lower_bound(const aq_rpc_iset *s, uint64_t task) {
    size_t a = 0, b = s->n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (s->r[m].hi < task)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

bool aq_rpc_iset_contains(const aq_rpc_iset *s, uint64_t task) {
    if (task <= s->low)
        return true;
    size_t i = lower_bound(s, task);
    return i < s->n && s->r[i].lo <= task;
}

static void drop_first(aq_rpc_iset *s) {
    memmove(s->r, s->r + 1, (s->n - 1) * sizeof *s->r);
    s->n--;
}

int aq_rpc_iset_add(aq_rpc_iset *s, uint64_t task) {
    if (aq_rpc_iset_contains(s, task))
        return 0;
    size_t i = lower_bound(s, task);
    bool join_prev = i > 0 && s->r[i - 1].hi + 1 == task;
    bool join_next = i < s->n && s->r[i].lo == task + 1;
    if (task == s->low + 1) {
        s->low = task;
        if (s->n && s->r[0].lo == s->low + 1) {
            s->low = s->r[0].hi;
            drop_first(s);
        }
        return 0;
    }
    if (join_prev && join_next) {
        s->r[i - 1].hi = s->r[i].hi;
        memmove(s->r + i, s->r + i + 1, (s->n - i - 1) * sizeof *s->r);
        s->n--;
    } else if (join_prev) {
        s->r[i - 1].hi = task;
    } else if (join_next) {
        s->r[i].lo = task;
    } else {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            if (cap > s->max_ranges + 1)
                cap = s->max_ranges + 1;
            aq_rpc_range *r = realloc(s->r, cap * sizeof *r);
            if (!r)
                return AQ_ENOMEM;
            s->r = r;
            s->cap = cap;
        }
        memmove(s->r + i + 1, s->r + i, (s->n - i) * sizeof *s->r);
        s->r[i] = (aq_rpc_range){task, task};
        s->n++;
    }
    while (s->n > s->max_ranges) {
        s->low = s->r[0].hi;
        drop_first(s);
        s->forced++;
    }
    return 0;
}
