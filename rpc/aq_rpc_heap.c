#include "aq_rpc_heap.h"

#include <assert.h>
#include <stdlib.h>

#include "aq_error.h"

void aq_rpc_heap_free(aq_rpc_heap *h) {
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

int aq_rpc_heap_reserve(aq_rpc_heap *h, size_t more) {
    if (h->n + more <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 16;
    while (cap < h->n + more)
        cap *= 2;
    aq_rpc_tnode **v = realloc(h->v, cap * sizeof *v);
    if (!v)
        return AQ_ENOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

static void place(aq_rpc_heap *h, size_t i, aq_rpc_tnode *n) {
    h->v[i] = n;
    n->idx = i;
}

static void sift_up(aq_rpc_heap *h, size_t i) {
    aq_rpc_tnode *n = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->at <= n->at)
            break;
        place(h, i, h->v[p]);
        i = p;
    }
    place(h, i, n);
}

static void sift_down(aq_rpc_heap *h, size_t i) {
    aq_rpc_tnode *n = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->at < h->v[c]->at)
            c++;
        if (h->v[c]->at >= n->at)
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, n);
}

void aq_rpc_heap_set(aq_rpc_heap *h, aq_rpc_tnode *node, uint64_t at) {
    if (node->idx == AQ_RPC_HEAP_NONE) {
        assert(h->n < h->cap);
        node->at = at;
        place(h, h->n++, node);
        sift_up(h, node->idx);
        return;
    }
    uint64_t old = node->at;
    node->at = at;
    if (at < old)
        sift_up(h, node->idx);
    else
        sift_down(h, node->idx);
}

void aq_rpc_heap_remove(aq_rpc_heap *h, aq_rpc_tnode *node) {
    size_t i = node->idx;
    if (i == AQ_RPC_HEAP_NONE)
        return;
    node->idx = AQ_RPC_HEAP_NONE;
    h->n--;
    if (i == h->n)
        return;
    aq_rpc_tnode *last = h->v[h->n];
    place(h, i, last);
    sift_up(h, i);
    sift_down(h, last->idx);
}

aq_rpc_tnode *aq_rpc_heap_top(const aq_rpc_heap *h) {
    return h->n ? h->v[0] : NULL;
}
