/* aq_alloc_huge_heap: the space it leaves at the heap's top is reserved, not touched, and a 4 MiB
 * block carved from it afterwards lies in a range the kernel counts eligible for transparent huge
 * pages whenever the system's policy allows them at all ("always" or "madvise"); under "madvise"
 * that range is eligible only because of the advice. Each test runs in a process of its own. The
 * function shapes glibc's heap: under AddressSanitizer, whose allocator replaces it, the tests are
 * skipped. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aq_alloc.h"

/* The THPeligible value of the mapping of /proc/self/smaps that holds p, or -1 if none says. */
static int thp_eligible(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[512];
    bool inside = false;
    int found = -1;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
            inside = a >= lo && a < hi;
        else if (inside && sscanf(line, "THPeligible: %d", &found) == 1)
            break;
    }
    fclose(f);
    return found;
}

/* Whether the system's policy allows transparent huge pages in advised ranges. */
static bool thp_allowed(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return false;
    char buf[128] = "";
    bool ok = fgets(buf, sizeof buf, f) && (strstr(buf, "[always]") || strstr(buf, "[madvise]"));
    fclose(f);
    return ok;
}

#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() cr_skip_test("AddressSanitizer's allocator is not glibc's heap")
#else
#define SKIP_UNDER_ASAN() (void)0
#endif

static long resident_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert_not_null(f);
    long size = 0, res = -1;
    cr_assert_eq(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return res;
}

Test(common_alloc, reserved_space_is_not_touched) {
    SKIP_UNDER_ASAN();
    aq_alloc_tune_for_chunks();
    long before = resident_pages();
    aq_alloc_huge_heap(48u << 20);
    long grown = (resident_pages() - before) * sysconf(_SC_PAGESIZE);
    cr_assert_lt(grown, 4 << 20, "reserving 48 MiB made %ld bytes resident", grown);
}

Test(common_alloc, blocks_after_it_are_advised) {
    SKIP_UNDER_ASAN();
    aq_alloc_tune_for_chunks();
    aq_alloc_huge_heap(48u << 20);
    const size_t n = (4u << 20) + 300; /* a part and its request head */
    uint8_t *p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = malloc(n);
        cr_assert_not_null(p[i]);
        memset(p[i], 0xa5, n);
        cr_assert_eq(p[i][n - 1], 0xa5);
        /* 2 MiB in, past the unaligned head of the reserved space */
        if (thp_allowed())
            cr_assert_eq(thp_eligible(p[i] + (2u << 20)), 1, "block %d is not advised", i);
        if (i == 1)
            free(p[i]); /* reused by the next: still advised */
    }
    free(p[0]);
    free(p[2]);
}
