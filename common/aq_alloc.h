/* aq_alloc: the process-wide allocator policy for programs that move 4 MiB messages.
 *
 * glibc's malloc serves each 4 MiB block with its own mmap and gives it back with munmap (or trims
 * the heap) on free, so every received chunk is zeroed and faulted in again by the kernel: with a
 * few 4 MiB messages in flight, page clearing took most of a node's cycles. Raising the mmap and
 * trim thresholds keeps such blocks in the heap for reuse. Call once, first thing in main(), before
 * any thread starts; it is process policy, which is why only main() may set it.
 *
 * It tunes glibc's malloc only. aquiferd links jemalloc (for the chunk store's arena), and Debian's
 * libjemalloc then serves the whole process's malloc: there the call changes nothing, and aquiferd
 * sets jemalloc's own policy (malloc_conf in aquiferd.c). The command and the rpc tools use
 * glibc's malloc, where it matters.
 */
#ifndef AQ_ALLOC_H
#define AQ_ALLOC_H

#include <stddef.h>

/* Serve blocks below 64 MiB from the heap and keep up to 256 MiB of free heap before trimming. */
void aq_alloc_tune_for_chunks(void);

/* Grows the heap by about n bytes (at most 60 MiB: below the mmap threshold), marks that free space
 * for transparent huge pages (MADV_HUGEPAGE, honoured under the kernel's "always" and "madvise"
 * policies) and leaves it free at the heap's top, where the next blocks are carved: a fresh 4 MiB
 * block then faults in 2 MiB at a time instead of 4 KiB. On a virtual machine, where each fault
 * traps to the hypervisor, faulting a large put's or get's first blocks page by page was a tenth of
 * its time (docs/BENCHMARKS.md). Memory is only reserved, not touched: what a program then uses
 * there is at most rounded up to whole 2 MiB pages. Only after aq_alloc_tune_for_chunks (so the
 * space comes from the heap and stays there), for glibc's malloc, from main(). */
void aq_alloc_huge_heap(size_t n);

#endif
