#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "aq_error.h"

Test(error, every_own_code_has_words_and_a_name) {
    for (int c = AQ_ERR_BASE; c >= AQ_ERR_LAST; c--) {
        cr_expect_str_neq(aq_strerror(c), "unknown error", "code %d has no text", c);
        cr_expect_eq(strncmp(aq_errname(c), "AQ_E", 4), 0, "code %d has no AQ_ name", c);
    }
}

Test(error, errno_codes_pass_through) {
    cr_expect_str_eq(aq_strerror(-ECONNRESET), strerror(ECONNRESET));
    cr_expect_str_eq(aq_errname(-ECONNRESET), "ECONNRESET");
    cr_expect_str_eq(aq_strerror(0), "success");
    cr_expect_str_eq(aq_strerror(-999999), "unknown error");
}
