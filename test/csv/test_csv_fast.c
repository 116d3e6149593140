/* The parser's fast paths against the general ones, on random text that nobody tuned:
 * - the cutter, which skips from quote to quote, must find the row ends, line counts and quote
 *   state a byte-at-a-time reading finds, for blocks of any size;
 * - a plain row indexed without the tokenizer must give the fields aq_csv_tok_next gives (every
 *   column forced to string, so a cell is exactly its field's bytes or NA), and a ragged row the
 *   same error;
 * - aq_csv_classify must answer what the documented chain gives: NA, then int, then float, then
 *   time, else text. */
#include "aq_csv_col.h"
#include "aq_csv_cut.h"
#include "aq_csv_tok.h"
#include "aq_csv_value.h"

#include "aq_error.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One field: number-like, NA-like or text, now and then quoted (with a separator, a doubled
 * quote, a newline or bytes after the closing quote inside), now and then with a CR or spaces. */
static void put_field(char *buf, size_t *n, uint64_t *seed) {
    static const char *const atoms[] = {"12",   "-7",  "3.25", "1e5", "NA", "",    "x",  " 4 ",
                                        "2015", "-01", "-02",  "nan", ".5", "abc", "+0", "\r"};
    uint64_t r = rnd(seed);
    bool quoted = r % 5 == 0;
    if (quoted)
        buf[(*n)++] = '"';
    if (r % 23 == 0) { /* longer than the 64-byte blocks plain rows are scanned in */
        size_t len = 40 + rnd(seed) % 120;
        for (size_t i = 0; i < len; i++)
            buf[(*n)++] = quoted && i % 50 == 7 ? ',' : (char)('a' + i % 26);
    }
    int parts = 1 + (int)(rnd(seed) % 3);
    for (int i = 0; i < parts; i++) {
        const char *a = atoms[rnd(seed) % 16];
        memcpy(buf + *n, a, strlen(a));
        *n += strlen(a);
        if (quoted) {
            uint64_t q = rnd(seed) % 12;
            const char *in = q == 0 ? "\"\"" : q == 1 ? "," : q == 2 ? "\n" : "";
            memcpy(buf + *n, in, strlen(in));
            *n += strlen(in);
        }
    }
    if (quoted) {
        buf[(*n)++] = '"';
        if (rnd(seed) % 10 == 0)
            buf[(*n)++] = 'z';
    } else if (r % 17 == 3) { /* a stray quote: a byte, and the row counts as repaired */
        memcpy(buf + *n, "5\"x", 3);
        *n += 3;
    }
}

static void check_text(const char *text, size_t len, uint32_t ncols, bool fill) {
    aq_csv_setup s;
    memset(&s, 0, sizeof s);
    s.d = (aq_csv_dialect){',', '"', 0, 0, false};
    s.ncols = ncols;
    s.fill = fill;
    s.strict = !fill; /* strict: irregular rows fail; otherwise they are repaired */
    cr_assert_leq(ncols, 32);
    aq_csv_type force[32];
    bool forced[32] = {0};
    for (uint32_t j = 0; j < ncols; j++)
        force[j] = AQ_CSV_T_STR;
    s.types = force;
    s.forced = forced;
    static char na0[] = "", na1[] = "NA";
    static char *nalist[] = {na0, na1};
    s.na = nalist;
    s.nna = 2;
    aq_csv_na na = aq_csv_setup_na(&s);
    aq_csv_piece pc = {text, len, 1, false};
    aq_csv_col *cols = NULL;
    aq_csv_err perr = {0, ""};
    int prc = aq_csv_parse(&pc, &s, force, NULL, &cols, &perr);

    /* the reference: the tokenizer's rows */
    aq_csv_tok t;
    aq_csv_tok_init(&t, text, len, &s.d, 1, false);
    t.lenient = fill;
    aq_csv_err terr = {0, ""};
    uint32_t row = 0;
    int trc;
    while ((trc = aq_csv_tok_next(&t, &terr)) == 1) {
        if (!fill && t.nfields != ncols) {
            trc = AQ_EPARSE;
            snprintf(terr.msg, sizeof terr.msg, "line %llu: %zu fields, expected %u",
                     (unsigned long long)t.row_line, t.nfields, ncols);
            break;
        }
        if (!fill && t.repair) {
            trc = AQ_EPARSE;
            snprintf(terr.msg, sizeof terr.msg, "line %llu: %s", (unsigned long long)t.row_line,
                     t.repair);
            break;
        }
        if (t.nfields > ncols) { /* repaired: the last column holds the rest of the row */
            aq_csv_field *lf = &t.fields[ncols - 1];
            *lf = (aq_csv_field){lf->raw, (size_t)(t.row_end - lf->raw), false, lf->raw};
        }
        if (prc != 0) { /* the parse failed on a later row: compared below */
            row++;
            continue;
        }
        for (uint32_t j = 0; j < ncols; j++) {
            cr_assert_lt(row, cols[j].rows, "row %u missing", row);
            size_t cl = 0;
            const char *cv = aq_csv_col_str(&cols[j], row, &cl);
            if (j >= t.nfields ||
                aq_csv_is_na(t.fields[j].p, t.fields[j].len, t.fields[j].quoted, &na)) {
                cr_assert_null(cv, "row %u col %u should be NA", row, j);
                continue;
            }
            cr_assert_not_null(cv, "row %u col %u is NA", row, j);
            cr_assert(cl == t.fields[j].len && memcmp(cv, t.fields[j].p, cl) == 0,
                      "row %u col %u: '%.*s' vs tokenizer '%.*s' in %.*s", row, j, (int)cl, cv,
                      (int)t.fields[j].len, t.fields[j].p, (int)len, text);
        }
        row++;
    }
    if (trc < 0) {
        cr_assert_eq(prc, trc, "tokenizer says %s (%s), parse says %s", aq_strerror(trc), terr.msg,
                     aq_strerror(prc));
        cr_assert_str_eq(perr.msg, terr.msg);
    } else {
        cr_assert_eq(prc, 0, "parse failed (%s) where the tokenizer did not: %.*s", perr.msg,
                     (int)len, text);
        cr_assert_eq(cols[0].rows, row);
    }
    aq_csv_tok_free(&t);
    if (prc == 0)
        aq_csv_cols_free(cols, ncols);
}

Test(fast, plain_rows_split_like_the_tokenizer) {
    uint64_t seed = 42;
    char *buf = malloc(1 << 18);
    for (int iter = 0; iter < 3000; iter++) {
        /* few columns, or as many as make rows span several 64-byte blocks */
        uint32_t ncols = 1 + (uint32_t)(rnd(&seed) % (iter % 4 ? 4 : 30));
        size_t n = 0;
        int rows = 1 + (int)(rnd(&seed) % 12);
        for (int r = 0; r < rows; r++) {
            uint32_t nf = ncols;
            uint64_t shape = rnd(&seed) % 40;
            if (shape == 0)
                nf = ncols + 1; /* ragged: too long */
            else if (shape == 1 && ncols > 1)
                nf = ncols - 1; /* ragged: too short */
            if (shape == 2) {
                buf[n++] = '\n'; /* a blank line */
                continue;
            }
            for (uint32_t j = 0; j < nf; j++) {
                if (j)
                    buf[n++] = ',';
                put_field(buf, &n, &seed);
            }
            if (shape == 3)
                buf[n++] = '\r';
            if (r + 1 < rows || rnd(&seed) % 2)
                buf[n++] = '\n';
        }
        check_text(buf, n, ncols, iter % 3 == 0);
    }
    free(buf);
}

/* aq_csv_is_na as its contract says, written the slow way: a quoted field only when empty; an
 * unquoted one when empty, or trimmed of blanks and not empty then, a spelling byte for byte.
 * NaN spellings are not NA (they are float NaN). */
static bool ref_is_na(const char *p, size_t len, bool quoted, const char *const *nas, size_t n) {
    if (quoted && len)
        return false;
    if (len) {
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (!len)
            return false;
    }
    for (size_t i = 0; i < n; i++)
        if (strlen(nas[i]) == len && memcmp(nas[i], p, len) == 0)
            return true;
    return false;
}

Test(fast, na_check_matches_the_slow_way) {
    static const char *const list[] = {
        "NA",
        "-",
        "n/a",
        "",
        "missing",
        "9",
        "a spelling longer than sixty-three bytes, which shares the top length bit....",
        "a spelling longer than sixty-three bytes, which shares the top length bit, too"};
    static const char alphabet[] = "NAn/a-9 \tmisg";
    uint64_t seed = 77;
    char f[96];
    for (size_t n = 0; n <= 8; n++) {
        aq_csv_na na = aq_csv_na_make(list + (n % 2), n - (n % 2));
        for (int iter = 0; iter < 20000; iter++) {
            size_t len;
            if (rnd(&seed) % 8 == 0) { /* a spelling, maybe padded or cut */
                const char *w = list[rnd(&seed) % 8];
                len = (size_t)snprintf(f, sizeof f, "%s%s", rnd(&seed) % 3 ? "" : " ", w);
                if (len && rnd(&seed) % 4 == 0)
                    len--;
            } else {
                len = (size_t)(rnd(&seed) % 10);
                for (size_t i = 0; i < len; i++)
                    f[i] = alphabet[rnd(&seed) % (sizeof alphabet - 1)];
            }
            bool quoted = rnd(&seed) % 4 == 0;
            cr_assert_eq(aq_csv_is_na(f, len, quoted, &na),
                         ref_is_na(f, len, quoted, list + (n % 2), n - (n % 2)),
                         "'%.*s' quoted %d, list of %zu", (int)len, f, quoted, n - (n % 2));
        }
    }
}

/* aq_csv_parse_time on the two common shapes, against the C library's calendar (timegm): valid
 * dates and times give the same milliseconds, invalid ones (day 31 of a short month, February 29
 * of a common year, hour 24, a letter) are refused. */
Test(fast, times_agree_with_the_c_library) {
    uint64_t seed = 2026;
    char f[32];
    for (int iter = 0; iter < 200000; iter++) {
        int y = (int)(rnd(&seed) % 10000), mo = (int)(rnd(&seed) % 14), d = (int)(rnd(&seed) % 33),
            h = (int)(rnd(&seed) % 25), mi = (int)(rnd(&seed) % 61), sec = (int)(rnd(&seed) % 61);
        bool with_time = rnd(&seed) % 2;
        int len = with_time ? snprintf(f, sizeof f, "%04d-%02d-%02d%c%02d:%02d:%02d", y, mo, d,
                                       rnd(&seed) % 2 ? ' ' : 'T', h, mi, sec)
                            : snprintf(f, sizeof f, "%04d-%02d-%02d", y, mo, d);
        bool garbled = rnd(&seed) % 10 == 0;
        if (garbled)
            f[rnd(&seed) % (uint64_t)len] = "x-: 9"[rnd(&seed) % 5];
        /* the reference: a strict read, then the calendar of the C library */
        struct tm tm = {0};
        int ry, rmo, rd, rh = 0, rmi = 0, rs = 0, used = 0;
        char sep = ' ';
        bool ok = with_time ? sscanf(f, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &ry, &rmo, &rd, &sep, &rh,
                                     &rmi, &rs, &used) == 7
                            : sscanf(f, "%4d-%2d-%2d%n", &ry, &rmo, &rd, &used) == 3;
        ok = ok && used == len && (sep == ' ' || sep == 'T');
        for (int i = 0; ok && i < len; i++) /* digits where digits go, nothing else */
            ok = (i == 4 || i == 7)     ? f[i] == '-'
                 : (i == 13 || i == 16) ? f[i] == ':'
                 : i == 10              ? true
                                        : f[i] >= '0' && f[i] <= '9';
        int64_t want = 0;
        if (ok) {
            tm.tm_year = ry - 1900;
            tm.tm_mon = rmo - 1;
            tm.tm_mday = rd;
            tm.tm_hour = rh;
            tm.tm_min = rmi;
            tm.tm_sec = rs;
            struct tm back;
            time_t t = timegm(&tm);
            gmtime_r(&t, &back);
            /* timegm normalises: a date that moved was not a real one */
            ok = rmo >= 1 && rmo <= 12 && back.tm_mday == rd && back.tm_mon == rmo - 1 &&
                 back.tm_hour == rh && back.tm_min == rmi && back.tm_sec == rs;
            want = (int64_t)t * 1000;
        }
        int64_t got = 0;
        bool parsed = aq_csv_parse_time(f, (size_t)len, &got);
        cr_assert_eq(parsed, ok, "'%s': parsed %d, the C library says %d", f, parsed, ok);
        if (ok)
            cr_assert_eq(got, want, "'%s': %lld ms, want %lld", f, (long long)got, (long long)want);
    }
}

static aq_csv_vkind chain(const char *p, size_t len, bool quoted, const aq_csv_na *na, int64_t *iv,
                          double *dv) {
    if (aq_csv_is_na(p, len, quoted, na))
        return AQ_CSV_V_NA;
    /* the fidelity rules, the slow way: a zero before a digit, or digits beyond int64, keep the
     * field as text (unless it is a date) */
    const char *t = p;
    size_t tl = len;
    while (tl && (*t == ' ' || *t == '\t'))
        t++, tl--;
    while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
        tl--;
    size_t s0 = tl && (t[0] == '+' || t[0] == '-');
    int64_t tmp;
    if (s0 + 1 < tl && t[s0] == '0' && isdigit((unsigned char)t[s0 + 1]) &&
        !aq_csv_parse_time(p, len, &tmp))
        return AQ_CSV_V_TEXT;
    if (aq_csv_parse_int(p, len, iv))
        return AQ_CSV_V_INT;
    size_t nd = 0;
    while (s0 + nd < tl && isdigit((unsigned char)t[s0 + nd]))
        nd++;
    if (nd && s0 + nd == tl)
        return AQ_CSV_V_TEXT;
    if (aq_csv_parse_float(p, len, dv))
        return AQ_CSV_V_FLOAT;
    if (aq_csv_parse_time(p, len, iv))
        return AQ_CSV_V_TIME;
    return AQ_CSV_V_TEXT;
}

Test(fast, classify_answers_like_the_chain) {
    static const char alphabet[] = "0123456789-+.eE :TZNAna\t,x";
    static const char *const nas[] = {"", "NA", "-1", "9.5", "+"};
    aq_csv_na lists[] = {aq_csv_na_default(), aq_csv_na_make(nas, 5)};
    uint64_t seed = 9;
    char f[40];
    for (int iter = 0; iter < 400000; iter++) {
        size_t len = (size_t)(rnd(&seed) % 24);
        if (iter % 4 == 0) { /* mostly digits: numbers and times of every shape */
            static const char *const shapes[] = {"2015-01-02",
                                                 "2015-01-02 03:04:05",
                                                 "2015-02-30",
                                                 "1234567890123456789",
                                                 "123456789012345678",
                                                 "-9.5",
                                                 "2015-1-2",
                                                 "9223372036854775807",
                                                 "-9223372036854775808",
                                                 "9223372036854775808",
                                                 "13.649697581270862",
                                                 "0.000123456789012345678",
                                                 ".5",
                                                 "5.",
                                                 "-0.25",
                                                 "123456789012345678.5",
                                                 "1234567890123456789.5",
                                                 "12345678901234567.89e2"};
            const char *sh = shapes[rnd(&seed) % (sizeof shapes / sizeof shapes[0])];
            len = strlen(sh);
            memcpy(f, sh, len);
            if (rnd(&seed) % 2)
                f[rnd(&seed) % len] = alphabet[rnd(&seed) % (sizeof alphabet - 1)];
        } else {
            for (size_t i = 0; i < len; i++)
                f[i] = alphabet[rnd(&seed) % (iter % 3 ? 14 : sizeof alphabet - 1)];
        }
        bool quoted = rnd(&seed) % 8 == 0;
        const aq_csv_na *na = &lists[iter % 2];
        int64_t iv1 = 0, iv2 = 0;
        double dv1 = 0, dv2 = 0;
        aq_csv_vkind want = chain(f, len, quoted, na, &iv2, &dv2);
        aq_csv_vkind got = aq_csv_classify(f, len, quoted, na, &iv1, &dv1);
        cr_assert_eq(got, want, "'%.*s' (quoted %d): kind %d, want %d", (int)len, f, quoted, got,
                     want);
        if (want == AQ_CSV_V_INT || want == AQ_CSV_V_TIME)
            cr_assert_eq(iv1, iv2, "'%.*s'", (int)len, f);
        if (want == AQ_CSV_V_FLOAT)
            cr_assert(memcmp(&dv1, &dv2, sizeof dv1) == 0, "'%.*s': %.17g vs %.17g", (int)len, f,
                      dv1, dv2);
    }
}

/* The cutter's rules read one byte at a time (RFC 4180 as aq_csv_tok reads it): a quote opens a
 * field only at its first byte, a doubled quote inside stays inside, a comment line is skipped
 * whole, an LF outside quotes ends a row, a BOM at the start is no data. */
typedef struct ref_cut {
    int st; /* 0 row start, 1 field start, 2 unquoted, 3 quoted, 4 quote seen, 5 comment */
    uint64_t pos, lines, row_end, row_end_lines, quote_line;
} ref_cut;

static void ref_feed(ref_cut *r, const char *b, size_t n, const aq_csv_dialect *d, size_t bom) {
    for (size_t i = 0; i < n; i++, r->pos++) {
        char ch = b[i];
        if (r->pos < bom)
            continue;
        if (r->st == 5) {
            if (ch == '\n') {
                r->lines++;
                r->row_end = r->pos + 1;
                r->row_end_lines = r->lines;
                r->st = 0;
            }
            continue;
        }
        if (r->st == 3) {
            if (ch == d->quote)
                r->st = 4;
            else if (ch == '\n')
                r->lines++;
            continue;
        }
        if (r->st == 4) {
            if (ch == d->quote) {
                r->st = 3;
                continue;
            }
            r->st = 2;
        } else if (r->st == 0 && d->comment && ch == d->comment) {
            r->st = 5;
            continue;
        } else if ((r->st == 0 || r->st == 1) && d->quote && ch == d->quote) {
            r->st = 3;
            r->quote_line = r->lines + 1;
            continue;
        } else if (r->st != 2) {
            r->st = 2;
        }
        if (ch == '\n') {
            r->lines++;
            r->row_end = r->pos + 1;
            r->row_end_lines = r->lines;
            r->st = 0;
        } else if (ch == d->sep) {
            r->st = 1;
        }
    }
}

Test(fast, cutter_matches_a_byte_at_a_time_reading) {
    uint64_t seed = 77;
    char *buf = malloc(1 << 18);
    for (int iter = 0; iter < 4000; iter++) {
        size_t n = 0;
        bool bom = iter % 7 == 0;
        if (bom) {
            memcpy(buf, "\xEF\xBB\xBF", 3);
            n = 3;
        }
        /* a few rows, or enough to fill many of the cutter's 64-byte blocks */
        int rows = 1 + (int)(rnd(&seed) % (iter % 4 ? 10 : 80));
        for (int r = 0; r < rows; r++) {
            if (rnd(&seed) % 9 == 0)
                buf[n++] = '#';
            uint32_t nf = 1 + (uint32_t)(rnd(&seed) % 4);
            for (uint32_t j = 0; j < nf; j++) {
                if (j)
                    buf[n++] = ',';
                put_field(buf, &n, &seed);
            }
            buf[n++] = '\n';
        }
        aq_csv_dialect d = {',', iter % 5 == 4 ? 0 : '"', iter % 3 == 0 ? '#' : 0, 0, false};
        aq_csv_cutter c;
        aq_csv_cut_init(&c, &d);
        ref_cut r = {0};
        size_t pos = 0;
        while (pos < n) {
            size_t step = 1 + (size_t)(rnd(&seed) % (iter % 2 ? 7 : iter % 4 ? 200 : 2000));
            if (step > n - pos)
                step = n - pos;
            aq_csv_cut_feed(&c, buf + pos, step);
            ref_feed(&r, buf + pos, step, &d, bom ? 3 : 0);
            pos += step;
            cr_assert_eq(c.row_end, r.row_end, "iter %d at %zu: row end %llu, want %llu: %.*s",
                         iter, pos, (unsigned long long)c.row_end, (unsigned long long)r.row_end,
                         (int)n, buf);
            cr_assert_eq(c.lines, r.lines, "iter %d at %zu", iter, pos);
            cr_assert_eq(c.row_end_lines, r.row_end_lines, "iter %d at %zu", iter, pos);
            cr_assert_eq(aq_csv_cut_in_quote(&c), r.st == 3, "iter %d at %zu", iter, pos);
            if (r.st == 3)
                cr_assert_eq(c.quote_line, r.quote_line, "iter %d at %zu", iter, pos);
        }
    }
    free(buf);
}

/* The field index is sized from the rows in the piece's first 256 KiB: a piece whose later rows
 * are much shorter makes it grow (and move every column) several times, and nothing may be lost
 * or misplaced on the way. */
Test(fast, index_grows_past_its_estimate) {
    size_t cap = 2u << 20, n = 0;
    char *buf = malloc(cap);
    while (n < (300u << 10)) {
        memset(buf + n, 'w', 999);
        n += 999;
        n += (size_t)sprintf(buf + n, ",%zu\n", n);
    }
    for (int r = 0; n + 16 < cap; r++)
        n += (size_t)sprintf(buf + n, r % 3 ? "%d,\"%d\"\n" : "%d,%d\n", r, r % 7);
    check_text(buf, n, 2, false);
    /* with fill, rows of one byte ("\n" is blank, "1\n" is one field) */
    n = 0;
    while (n < (300u << 10)) {
        memset(buf + n, 'w', 999);
        n += 999;
        n += (size_t)sprintf(buf + n, ",1\n");
    }
    while (n + 4 < cap)
        n += (size_t)sprintf(buf + n, "7\n");
    check_text(buf, n, 2, true);
    free(buf);
}
