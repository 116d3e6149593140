#include "aq_alloc.h"

#include <malloc.h>

void aq_alloc_tune_for_chunks(void) {
    /* Setting either threshold also turns off glibc's dynamic threshold adjustment, which would
     * otherwise move them back. Failures leave the default policy: slower, never wrong. */
    (void)mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
}
