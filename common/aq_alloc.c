#include "aq_alloc.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((uintptr_t)2 << 20)

void aq_alloc_tune_for_chunks(void) {
    /* Setting either threshold also turns off glibc's dynamic threshold adjustment, which would
     * otherwise move them back. Failures leave the default policy: slower, never wrong. */
    (void)mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
}

void aq_alloc_huge_heap(size_t n) {
    if (n > (size_t)60 << 20)
        n = (size_t)60 << 20; /* below the mmap threshold: from the heap */
    uint8_t *p = malloc(n);
    if (!p)
        return;
    uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);
    /* Advice only: where it is refused, the heap faults in 4 KiB at a time as before. */
    if (lo < hi)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    free(p); /* back to the heap's top, below the trim threshold: kept, and still advised */
}
