/* aq_wr sizing: a writer started with aq_wr_init_cap holds exactly the room asked for, so a message
 * of known size is one allocation of that size (not the next power of two), and still grows past it
 * like any writer. */
#include <criterion/criterion.h>
#include <string.h>

#include "aq_bytes.h"

Test(common_bytes, init_cap_is_exact) {
    const size_t n = (4u << 20) + 25; /* a 4 MiB value and a reply head */
    aq_wr w;
    aq_wr_init_cap(&w, n);
    cr_assert(w.ok);
    cr_assert_eq(w.cap, n);
    cr_assert_eq(w.len, 0);
    static uint8_t big[(4u << 20) + 25];
    memset(big, 0xab, sizeof big);
    aq_wr_bytes(&w, big, 25);
    aq_wr_bytes(&w, big + 25, n - 25);
    cr_assert(w.ok);
    cr_assert_eq(w.len, n);
    cr_assert_eq(w.cap, n, "filling the exact room must not reallocate");
    cr_assert_eq(memcmp(w.p, big, n), 0);
    aq_wr_u8(&w, 7); /* past the room: grows like any writer */
    cr_assert(w.ok);
    cr_assert_eq(w.len, n + 1);
    cr_assert_eq(w.p[n], 7);
    aq_wr_free(&w);
}

Test(common_bytes, init_cap_zero) {
    aq_wr w;
    aq_wr_init_cap(&w, 0);
    cr_assert(w.ok);
    aq_wr_bytes(&w, "abc", 3);
    cr_assert(w.ok);
    cr_assert_eq(w.len, 3);
    cr_assert_eq(memcmp(w.p, "abc", 3), 0);
    aq_wr_free(&w);
}
