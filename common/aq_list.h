/* aq_list: an intrusive, circular, doubly linked list (as in the Linux kernel and libuv's queue).
 *
 * A list head and its members are the same aq_list struct; a member sits inside its owner and
 * aq_container_of finds the owner again. Invariants: an initialised head or member always points
 * at a valid neighbour on both sides (an empty head and a detached member point at themselves),
 * so insertion and removal never test for NULL, and removing a member that is not in a list is
 * harmless. Nothing allocates; the owner of a member frees it after removing it.
 */
#ifndef AQ_LIST_H
#define AQ_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define aq_container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

typedef struct aq_list {
    struct aq_list *prev, *next;
} aq_list;

static inline void aq_list_init(aq_list *l) {
    l->prev = l->next = l;
}
static inline bool aq_list_empty(const aq_list *l) {
    return l->next == l;
}
static inline void aq_list_add_tail(aq_list *head, aq_list *l) {
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}
static inline void aq_list_add_head(aq_list *head, aq_list *l) {
    aq_list_add_tail(head->next, l);
}
/* Detaches l and leaves it pointing at itself, so a second del is harmless. */
static inline void aq_list_del(aq_list *l) {
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

#endif
