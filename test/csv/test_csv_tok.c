/* Tokenizer and row-boundary cutter. */
#include "aq_csv_cut.h"
#include "aq_csv_tok.h"
#include "aq_error.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders rows as "line:[f1|f2]" joined by spaces; quoted fields get a leading '^'. */
static char *render(const char *s, size_t len, aq_csv_dialect d, uint64_t first_line,
                    bool file_start, int *rc_out) {
    static char out[8192];
    size_t o = 0;
    aq_csv_tok t;
    aq_csv_err err = {0};
    aq_csv_tok_init(&t, s, len, &d, first_line, file_start);
    int rc;
    out[0] = 0;
    while ((rc = aq_csv_tok_next(&t, &err)) == 1) {
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%llu:[", o ? " " : "",
                              (unsigned long long)t.row_line);
        for (size_t i = 0; i < t.nfields; i++)
            o += (size_t)snprintf(out + o, sizeof out - o, "%s%s%.*s", i ? "|" : "",
                                  t.fields[i].quoted ? "^" : "", (int)t.fields[i].len,
                                  t.fields[i].p);
        o += (size_t)snprintf(out + o, sizeof out - o, "]");
    }
    aq_csv_tok_free(&t);
    *rc_out = rc;
    return out;
}

static const aq_csv_dialect comma = {',', '"', 0, 0, false};

static void check(const char *in, const char *want) {
    int rc;
    char *got = render(in, strlen(in), comma, 1, true, &rc);
    cr_assert_eq(rc, 0, "input %s: rc %d", in, rc);
    cr_assert_str_eq(got, want, "input [%s]", in);
}

Test(csv_tok, plain_rows_and_fields) {
    check("a,b,c\n1,2,3\n", "1:[a|b|c] 2:[1|2|3]");
    check("a,,c\n,,\n", "1:[a||c] 2:[||]");
    check("x\n", "1:[x]");
}

Test(csv_tok, quotes_doubled_quotes_separators_and_newlines_inside) {
    check("\"a,b\",\"say \"\"hi\"\"\",c\n", "1:[^a,b|^say \"hi\"|c]");
    check("\"two\nlines\",x\nnext,y\n", "1:[^two\nlines|x] 3:[next|y]");
    check("\"\",\"\"\"\"\n", "1:[^|^\"]");
    /* bytes after the closing quote are kept literally */
    check("\"ab\"cd,e\n", "1:[^abcd|e]");
}

Test(csv_tok, quotes_inside_unquoted_fields_are_literal) {
    check("5'11\",a'b,'c'\n", "1:[5'11\"|a'b|'c']");
    /* the first two rows of h2o's test_quote.csv */
    check("1e0abe',bE1aaeE,eea1aE',E0bbe1b,'1'0eE'\n",
          "1:[1e0abe'|bE1aaeE|eea1aE'|E0bbe1b|'1'0eE']");
}

Test(csv_tok, crlf_bom_no_final_newline) {
    check("\xEF\xBB\xBFh1,h2\r\n1,2\r\n3,4", "1:[h1|h2] 2:[1|2] 3:[3|4]");
    check("\"q\"\r\n\"a\r\nb\"\r\n", "1:[^q] 2:[^a\r\nb]");
    check("a,b\r", "1:[a|b]");
    /* a BOM is only skipped at the start of the file */
    int rc;
    char *got = render("\xEF\xBB\xBFx\n", 4, comma, 7, false, &rc);
    cr_assert_str_eq(got, "7:[\xEF\xBB\xBFx]");
}

Test(csv_tok, blank_lines_are_skipped_but_counted) {
    check("a\n\nb\r\n\r\nc\n\n\n", "1:[a] 3:[b] 5:[c]");
    check("\n\n", "");
    check("", "");
}

Test(csv_tok, comment_lines) {
    aq_csv_dialect d = {',', '"', '#', 0, false};
    int rc;
    char *got = render("# \"open,\nx,y\n#z\n1,2\n", 19, d, 1, true, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(got, "2:[x|y] 4:[1|2]");
}

Test(csv_tok, quoting_off_and_other_separators) {
    aq_csv_dialect d = {'\t', 0, 0, 0, false};
    int rc;
    char *got = render("\"a\tb\"\tc\n", 8, d, 1, true, &rc);
    cr_assert_str_eq(got, "1:[\"a|b\"|c]");
    aq_csv_dialect sq = {';', '\'', 0, 0, false};
    got = render("'x;y';z\n", 8, sq, 1, true, &rc);
    cr_assert_str_eq(got, "1:[^x;y|z]");
}

Test(csv_tok, unclosed_quote_names_its_line) {
    const char *in = "a,b\n1,\"open\nstill\n";
    aq_csv_tok t;
    aq_csv_err err = {0};
    aq_csv_tok_init(&t, in, strlen(in), &comma, 10, false);
    cr_assert_eq(aq_csv_tok_next(&t, &err), 1);
    cr_assert_eq(aq_csv_tok_next(&t, &err), AQ_EPARSE);
    cr_assert_eq(err.line, 11);
    cr_assert(strstr(err.msg, "line 11") != NULL, "%s", err.msg);
    aq_csv_tok_free(&t);
}

Test(csv_tok, unescaped_fields_stay_valid_across_the_row) {
    /* many escaped fields in one row force the scratch space to grow while the row is read */
    char in[20000];
    size_t o = 0;
    for (int i = 0; i < 300; i++)
        o += (size_t)sprintf(in + o, "%s\"v%03d \"\"quoted\"\" and long enough to grow\"",
                             i ? "," : "", i);
    in[o++] = '\n';
    aq_csv_tok t;
    aq_csv_tok_init(&t, in, o, &comma, 1, true);
    cr_assert_eq(aq_csv_tok_next(&t, NULL), 1);
    cr_assert_eq(t.nfields, 300);
    for (int i = 0; i < 300; i++) {
        char want[80];
        int n = sprintf(want, "v%03d \"quoted\" and long enough to grow", i);
        cr_assert_eq(t.fields[i].len, (size_t)n);
        cr_assert(memcmp(t.fields[i].p, want, (size_t)n) == 0, "field %d", i);
    }
    aq_csv_tok_free(&t);
}

/* --- the cutter --- */

typedef struct pieces {
    char buf[1 << 16];
    size_t len;
    size_t n;
    size_t max_seen;
    uint64_t lines[256];
    size_t ends[256];
} pieces;

static int collect(void *ctx, const char *p, size_t len, uint64_t first_line, uint64_t index) {
    pieces *ps = ctx;
    cr_assert_eq(index, ps->n);
    memcpy(ps->buf + ps->len, p, len);
    ps->len += len;
    ps->lines[ps->n] = first_line;
    ps->ends[ps->n] = ps->len;
    ps->max_seen = len > ps->max_seen ? len : ps->max_seen;
    ps->n++;
    return 0;
}

static int split_all(const char *in, size_t len, size_t max, size_t block, pieces *ps,
                     aq_csv_err *err) {
    aq_csv_split s;
    memset(ps, 0, sizeof *ps);
    cr_assert_eq(aq_csv_split_init(&s, &comma, max, collect, ps), 0);
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0; pos += block)
        rc = aq_csv_split_push(&s, in + pos, len - pos < block ? len - pos : block, err);
    if (rc == 0)
        rc = aq_csv_split_finish(&s, err);
    aq_csv_split_free(&s);
    return rc;
}

Test(csv_cut, quoted_newline_straddling_the_limit_moves_the_cut_before_its_row) {
    /* rows of 10 bytes; the third row holds a quoted newline right across byte 25 */
    const char *in = "aaaa,bbbb\ncccc,dddd\n\"ee\n\nee\",ff\ngggg,hhhh\n";
    pieces ps;
    aq_csv_err err = {0};
    cr_assert_eq(split_all(in, strlen(in), 25, 3, &ps, &err), 0);
    cr_assert_eq(ps.n, 2);
    cr_assert_eq(ps.ends[0], 20, "first cut at %zu", ps.ends[0]);
    cr_assert_eq(ps.lines[0], 1);
    cr_assert_eq(ps.lines[1], 3);
    cr_assert_eq(ps.len, strlen(in));
    cr_assert(memcmp(ps.buf, in, ps.len) == 0);
}

Test(csv_cut, row_longer_than_the_limit_is_an_error_naming_its_line) {
    const char *in = "a,b\nc,d\n\"a very long quoted field\nthat spans lines\",x\ne,f\n";
    pieces ps;
    aq_csv_err err = {0};
    cr_assert_eq(split_all(in, strlen(in), 20, 7, &ps, &err), AQ_ETOOBIG);
    cr_assert_eq(err.line, 3, "line %llu: %s", (unsigned long long)err.line, err.msg);
}

Test(csv_cut, file_ending_inside_quotes_is_an_error) {
    const char *in = "a,b\nc,\"d\n\ne\n";
    pieces ps;
    aq_csv_err err = {0};
    cr_assert_eq(split_all(in, strlen(in), 1000, 5, &ps, &err), AQ_EPARSE);
    cr_assert_eq(err.line, 2);
}

Test(csv_cut, no_final_newline_and_literal_quotes) {
    const char *in = "x,5'11\"\ny,6'0\"\nz,\"q\"";
    pieces ps;
    aq_csv_err err = {0};
    cr_assert_eq(split_all(in, strlen(in), 16, 1, &ps, &err), 0);
    cr_assert_eq(ps.n, 2);
    cr_assert_eq(ps.ends[0], 15);
    cr_assert_eq(ps.lines[1], 3);
    cr_assert_eq(ps.len, strlen(in));
}

/* Random CSV with quoted fields, doubled quotes, CRLF, blank lines and comments-free rows: the
 * cuts must agree with where the tokenizer ends rows, whatever the block size. */
Test(csv_cut, random_files_cut_where_the_tokenizer_ends_rows) {
    srand(12345);
    static char in[40000];
    for (int iter = 0; iter < 40; iter++) {
        size_t o = 0;
        int rows = 50 + rand() % 150;
        for (int r = 0; r < rows && o < sizeof in - 400; r++) {
            int nf = 1 + rand() % 4;
            for (int f = 0; f < nf; f++) {
                if (f)
                    in[o++] = ',';
                int kind = rand() % 5;
                int n = rand() % 12;
                if (kind == 0) {
                    in[o++] = '"';
                    for (int k = 0; k < n; k++) {
                        int c = rand() % 10;
                        if (c == 0) {
                            in[o++] = '"';
                            in[o++] = '"';
                        } else if (c == 1) {
                            in[o++] = '\n';
                        } else if (c == 2) {
                            in[o++] = ',';
                        } else {
                            in[o++] = (char)('a' + rand() % 26);
                        }
                    }
                    in[o++] = '"';
                } else {
                    for (int k = 0; k < n; k++)
                        in[o++] = rand() % 15 == 0   ? '\''
                                  : rand() % 17 == 0 ? '"'
                                                     : (char)('0' + rand() % 10);
                    if (n && in[o - 1 - (n - 1)] == '"')
                        in[o - n] = 'x'; /* a leading quote would open a quoted field */
                }
            }
            if (rand() % 4 == 0)
                in[o++] = '\r';
            in[o++] = '\n';
            if (rand() % 10 == 0)
                in[o++] = '\n';
        }
        /* expected row ends from the tokenizer */
        size_t max = 200 + (size_t)(rand() % 300);
        size_t block = 1 + (size_t)(rand() % 97);
        pieces ps;
        aq_csv_err err = {0};
        int rc = split_all(in, o, max, block, &ps, &err);
        if (rc == AQ_ETOOBIG)
            continue; /* a random row longer than the limit: legal outcome, checked elsewhere */
        cr_assert_eq(rc, 0, "iter %d: %s", iter, err.msg);
        cr_assert_eq(ps.len, o);
        cr_assert(memcmp(ps.buf, in, o) == 0);
        cr_assert_leq(ps.max_seen, max);
        /* every piece tokenizes on its own, and the line numbers add up */
        size_t start = 0;
        for (size_t i = 0; i < ps.n; i++) {
            aq_csv_tok t;
            aq_csv_tok_init(&t, in + start, ps.ends[i] - start, &comma, ps.lines[i], i == 0);
            int trc;
            while ((trc = aq_csv_tok_next(&t, &err)) == 1)
                ;
            cr_assert_eq(trc, 0, "iter %d piece %zu: %s", iter, i, err.msg);
            if (i + 1 < ps.n) {
                cr_assert_eq(in[ps.ends[i] - 1], '\n');
                cr_assert_eq(t.line, ps.lines[i + 1], "iter %d piece %zu", iter, i);
            }
            aq_csv_tok_free(&t);
            start = ps.ends[i];
        }
    }
}

/* A consumer that reads in place and takes every other piece's buffer: it must see the same
 * pieces as push gives, each at headroom bytes into the buffer it takes. */
typedef struct taker {
    pieces ps;
    aq_csv_split *s;
    size_t headroom;
    size_t taken;
} taker;

static int take_some(void *ctx, const char *p, size_t len, uint64_t first_line, uint64_t index) {
    taker *tk = ctx;
    if (index % 2 == 0) {
        char *mem = aq_csv_split_take(tk->s);
        cr_assert_not_null(mem);
        cr_assert_eq(p, mem + tk->headroom, "the piece lies headroom bytes into its buffer");
        cr_assert_null(aq_csv_split_take(tk->s), "a piece's buffer is taken once");
        memset(mem, 'H', tk->headroom); /* the header's room is the taker's to write */
        int rc = collect(&tk->ps, p, len, first_line, index);
        free(mem);
        tk->taken++;
        return rc;
    }
    return collect(&tk->ps, p, len, first_line, index);
}

Test(csv_cut, reading_in_place_and_taking_buffers_gives_the_pieces_push_gives) {
    srand(777);
    static char in[30000];
    for (int iter = 0; iter < 30; iter++) {
        size_t o = 0;
        while (o < sizeof in - 200) {
            int nf = 1 + rand() % 5;
            for (int f = 0; f < nf; f++) {
                if (f)
                    in[o++] = ',';
                bool q = rand() % 4 == 0;
                if (q)
                    in[o++] = '"';
                for (int k = rand() % 20; k > 0; k--)
                    in[o++] = q && rand() % 9 == 0 ? '\n' : (char)('a' + rand() % 26);
                if (q)
                    in[o++] = '"';
            }
            in[o++] = '\n';
        }
        size_t max = 300 + (size_t)(rand() % 700), block = 1 + (size_t)(rand() % 400);
        pieces want;
        aq_csv_err err = {0};
        cr_assert_eq(split_all(in, o, max, block, &want, &err), 0, "%s", err.msg);

        taker tk;
        memset(&tk, 0, sizeof tk);
        aq_csv_split s;
        tk.s = &s;
        tk.headroom = 1 + (size_t)(rand() % 40);
        cr_assert_eq(aq_csv_split_init(&s, &comma, max, take_some, &tk), 0);
        cr_assert_eq(aq_csv_split_reserve(&s, tk.headroom), 0);
        size_t pos = 0;
        int rc = 0;
        while (pos < o && rc == 0) {
            char *at;
            size_t room;
            if ((rc = aq_csv_split_space(&s, &at, &room, &err)) != 0)
                break;
            cr_assert_gt(room, 0);
            size_t n = o - pos < block ? o - pos : block;
            n = n < room ? n : room;
            memcpy(at, in + pos, n);
            aq_csv_split_commit(&s, n);
            pos += n;
        }
        if (rc == 0)
            rc = aq_csv_split_finish(&s, &err);
        aq_csv_split_free(&s);
        cr_assert_eq(rc, 0, "iter %d: %s", iter, err.msg);
        cr_assert_gt(tk.taken, 0);
        cr_assert_eq(tk.ps.n, want.n, "iter %d: %zu pieces, push gave %zu", iter, tk.ps.n, want.n);
        cr_assert_eq(tk.ps.len, o);
        cr_assert(memcmp(tk.ps.buf, in, o) == 0, "iter %d: the bytes differ", iter);
        for (size_t i = 0; i < want.n; i++) {
            cr_assert_eq(tk.ps.ends[i], want.ends[i], "iter %d piece %zu", iter, i);
            cr_assert_eq(tk.ps.lines[i], want.lines[i], "iter %d piece %zu", iter, i);
        }
    }
}

static const aq_csv_dialect hash_comment = {',', '"', '#', 0, false};

static int split_with(const aq_csv_dialect *d, const char *in, size_t len, size_t max, size_t block,
                      pieces *ps, aq_csv_err *err) {
    aq_csv_split s;
    memset(ps, 0, sizeof *ps);
    cr_assert_eq(aq_csv_split_init(&s, d, max, collect, ps), 0);
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0; pos += block)
        rc = aq_csv_split_push(&s, in + pos, len - pos < block ? len - pos : block, err);
    if (rc == 0)
        rc = aq_csv_split_finish(&s, err);
    aq_csv_split_free(&s);
    return rc;
}

Test(csv_cut, bom_then_comment_with_a_quote_agrees_with_the_tokenizer) {
    /* after the BOM, '#' starts a comment whose ," must not open a quoted field */
    const char *in = "\xEF\xBB\xBF#note,\"open\na,b\nc,d\n";
    for (size_t block = 1; block <= 4; block++) {
        pieces ps;
        aq_csv_err err = {0};
        cr_assert_eq(split_with(&hash_comment, in, strlen(in), 20, block, &ps, &err), 0,
                     "block %zu: %s", block, err.msg);
        cr_assert_eq(ps.n, 2, "block %zu", block);
        cr_assert_eq(ps.ends[0], 19, "block %zu: cut at %zu", block, ps.ends[0]);
    }
    /* no BOM after all: 0xEF starts an ordinary field, so the quote after it is literal */
    const char *nobom = "\xEF\"x,y\na,b\n";
    pieces ps;
    aq_csv_err err = {0};
    cr_assert_eq(split_with(&hash_comment, nobom, strlen(nobom), 8, 1, &ps, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(ps.ends[0], 6);
}

Test(csv_tok, backslash_escape_and_spaces_after_the_separator) {
    int rc;
    aq_csv_dialect bs = {',', '"', 0, '\\', false};
    cr_assert_str_eq(render("\"a \\\"b\\\", c\",x\\,y\n", 18, bs, 1, true, &rc),
                     "1:[^a \"b\", c|x,y]");
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(render("\"multi\\\nline\",2\n", 16, bs, 1, true, &rc), "1:[^multi\nline|2]");
    aq_csv_dialect sp = {',', '"', 0, 0, true};
    const char *in = "a, b,  \"c, d\", e \n";
    cr_assert_str_eq(render(in, strlen(in), sp, 1, true, &rc), "1:[a|b|^c, d|e ]");
    cr_assert_eq(rc, 0);
}

/* Under a backslash escape and with spaces after separators, the cutter still ends rows where
 * the tokenizer does: random files, every piece tokenizes on its own, line numbers add up. */
Test(csv_cut, escape_and_spaced_dialects_cut_where_the_tokenizer_ends_rows) {
    srand(777);
    static char in[40000];
    const aq_csv_dialect ds[] = {
        {',', '"', 0, '\\', false}, {',', '"', 0, 0, true}, {';', '\'', 0, '\\', true}};
    for (int iter = 0; iter < 60; iter++) {
        const aq_csv_dialect *d = &ds[iter % 3];
        size_t o = 0;
        for (int r = 0; r < 200 && o < sizeof in - 400; r++) {
            int nf = 1 + rand() % 4;
            for (int f = 0; f < nf; f++) {
                if (f) {
                    in[o++] = d->sep;
                    if (d->skipsp)
                        for (int k = rand() % 3; k > 0; k--)
                            in[o++] = ' ';
                }
                int n = rand() % 12;
                bool quoted = rand() % 3 == 0;
                if (quoted)
                    in[o++] = d->quote;
                for (int k = 0; k < n; k++) {
                    int c = rand() % 12;
                    if (quoted && c == 0 && d->escape) {
                        in[o++] = d->escape;
                        in[o++] = rand() % 2 ? d->quote : '\n';
                    } else if (quoted && c == 1) {
                        in[o++] = '\n';
                    } else if (quoted && c == 2) {
                        in[o++] = d->sep;
                    } else {
                        in[o++] = (char)('a' + rand() % 26);
                    }
                }
                if (quoted)
                    in[o++] = d->quote;
            }
            in[o++] = '\n';
        }
        size_t max = 300 + (size_t)(rand() % 300);
        pieces ps;
        aq_csv_err err = {0};
        int rc = split_with(d, in, o, max, 1 + (size_t)(rand() % 97), &ps, &err);
        if (rc == AQ_ETOOBIG)
            continue;
        cr_assert_eq(rc, 0, "iter %d: %s", iter, err.msg);
        size_t start = 0;
        for (size_t i = 0; i < ps.n; i++) {
            aq_csv_tok t;
            aq_csv_tok_init(&t, in + start, ps.ends[i] - start, d, ps.lines[i], i == 0);
            int trc;
            while ((trc = aq_csv_tok_next(&t, &err)) == 1)
                cr_assert_null(t.repair, "iter %d piece %zu line %llu: %s", iter, i,
                               (unsigned long long)t.row_line, t.repair);
            cr_assert_eq(trc, 0, "iter %d piece %zu: %s", iter, i, err.msg);
            if (i + 1 < ps.n)
                cr_assert_eq(t.line, ps.lines[i + 1], "iter %d piece %zu", iter, i);
            aq_csv_tok_free(&t);
            start = ps.ends[i];
        }
    }
}

/* --- the split's repairs and the table's end --- */

typedef struct split_res {
    pieces ps;
    uint64_t stop_line, lines, strays;
    bool stopped;
} split_res;

static int count_bytes(void *ctx, const char *p, size_t len, uint64_t first_line, uint64_t index) {
    (void)p;
    (void)first_line;
    (void)index;
    *(size_t *)ctx += len;
    return 0;
}

/* A lenient split of in (the parse's), looking for the end of a table of ncols fields. */
static int split_table(const char *in, size_t len, size_t max, size_t block, uint32_t ncols,
                       uint64_t stop_line, split_res *res, aq_csv_err *err) {
    aq_csv_split s;
    memset(res, 0, sizeof *res);
    cr_assert_eq(aq_csv_split_init(&s, &comma, max, collect, &res->ps), 0);
    s.lenient = true;
    aq_csv_split_table(&s, ncols, 0, stop_line);
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0; pos += block)
        rc = aq_csv_split_push(&s, in + pos, len - pos < block ? len - pos : block, err);
    if (rc == 0)
        rc = aq_csv_split_finish(&s, err);
    res->stop_line = s.stop_line;
    res->stopped = s.stopped;
    res->lines = s.cut.lines + (s.cut.fed > s.cut.row_end);
    res->strays = s.strays;
    aq_csv_split_free(&s);
    return rc;
}

/* Rows "i,x,y" from line first on, n of them, appended at o; returns the new length. */
static size_t table_rows(char *b, size_t o, int first, int n) {
    for (int i = 0; i < n; i++)
        o += (size_t)sprintf(b + o, "%d,x%d,y\n", first + i, first + i);
    return o;
}

/* A quote that opens a field never closed, with more than a piece of rows after it: it opened
 * nothing, the piece ends at the end of its row, and every row after it is a row again. */
Test(csv_cut, quote_never_closed_far_from_the_end_is_a_byte) {
    static char in[20000];
    size_t o = (size_t)sprintf(in, "n,a,b\n");
    o = table_rows(in, o, 1, 20);
    size_t stray_row_end = o + (size_t)sprintf(in + o, "21,\"open,y\n");
    o = stray_row_end;
    o = table_rows(in, o, 22, 600); /* about 6 kB after it: far more than a piece */
    for (size_t block = 1; block <= 4096; block *= 8) {
        split_res r;
        aq_csv_err err = {0};
        int rc = split_table(in, o, 512, block, 3, 0, &r, &err);
        cr_assert_eq(rc, 0, "block %zu: %s", block, err.msg);
        cr_assert_eq(r.ps.len, o, "block %zu: every byte is passed on", block);
        cr_assert(memcmp(r.ps.buf, in, o) == 0);
        cr_assert_geq(r.strays, 1);
        bool cut_there = false;
        size_t rows = 0, start = 0, repaired = 0;
        for (size_t i = 0; i < r.ps.n; i++) {
            cut_there |= r.ps.ends[i] == stray_row_end;
            aq_csv_tok t;
            aq_csv_tok_init(&t, in + start, r.ps.ends[i] - start, &comma, r.ps.lines[i], i == 0);
            t.lenient = true;
            while (aq_csv_tok_next(&t, &err) == 1) {
                rows++;
                repaired += t.repair != NULL;
                cr_assert_eq(t.nfields, 3, "block %zu line %llu", block,
                             (unsigned long long)t.row_line);
            }
            if (i + 1 < r.ps.n)
                cr_assert_eq(t.line, r.ps.lines[i + 1], "block %zu piece %zu", block, i);
            aq_csv_tok_free(&t);
            start = r.ps.ends[i];
        }
        cr_assert(cut_there, "block %zu: a piece ends at the stray quote's row", block);
        cr_assert_eq(rows, 1 + 20 + 1 + 600, "block %zu", block);
        cr_assert_eq(repaired, 1, "block %zu", block);
    }
    /* strict: the same file is an error naming where the long row starts */
    pieces ps;
    aq_csv_err err = {0};
    cr_assert_eq(split_all(in, o, 512, 64, &ps, &err), AQ_ETOOBIG);
}

/* A footer after a blank line far past the first piece: not passed on, its line reported. */
Test(csv_cut, footer_after_a_blank_line_deep_in_the_file_ends_the_table) {
    static char in[40000];
    size_t o = (size_t)sprintf(in, "n,a,b\n");
    o = table_rows(in, o, 1, 1000);
    size_t end = o;
    o += (size_t)sprintf(in + o, "\nTotal: 1000 rows\n(c) someone\n");
    for (size_t block = 7; block <= 7000; block *= 10) {
        split_res r;
        aq_csv_err err = {0};
        cr_assert_eq(split_table(in, o, 1024, block, 3, 0, &r, &err), 0, "%s", err.msg);
        cr_assert(r.stopped, "block %zu", block);
        cr_assert_eq(r.stop_line, 1003, "block %zu: stop at %llu", block,
                     (unsigned long long)r.stop_line);
        cr_assert_eq(r.ps.len, end, "block %zu: %zu bytes passed on", block, r.ps.len);
        cr_assert_eq(r.lines, 1004, "block %zu: the lines are still counted", block);
    }
    /* a lone last line after a blank line is a footer too, also in CRLF; so is the table's
     * first row again (a second table of the same columns), with more rows after it */
    size_t o2 = end;
    o2 += (size_t)sprintf(in + o2, "\r\nsum 42\r\n");
    split_res r;
    aq_csv_err err = {0};
    cr_assert_eq(split_table(in, o2, 1024, 100, 3, 0, &r, &err), 0);
    cr_assert_eq(r.stop_line, 1003);
    cr_assert_eq(r.ps.len, end);
    o2 = end + (size_t)sprintf(in + end, "\nn,a,b\n");
    o2 = table_rows(in, o2, 1, 5);
    cr_assert_eq(split_table(in, o2, 1024, 100, 3, 0, &r, &err), 0);
    cr_assert_eq(r.stop_line, 1003);
    cr_assert_eq(r.ps.len, end);
}

/* What a blank line does not end: rows of the table's shape after it (or a ragged row and then
 * such rows), a blank line inside quotes, blank lines at the end. */
Test(csv_cut, blank_lines_that_end_nothing) {
    static char in[40000];
    size_t o = (size_t)sprintf(in, "n,a,b\n");
    o = table_rows(in, o, 1, 300);
    o += (size_t)sprintf(in + o, "\n7\n");
    o = table_rows(in, o, 301, 300);
    o += (size_t)sprintf(in + o, "1,\"two\n\nlines\",z\n");
    o = table_rows(in, o, 601, 300);
    o += (size_t)sprintf(in + o, "\n\n\n");
    for (size_t max = 200; max <= 51200; max *= 4) {
        split_res r;
        aq_csv_err err = {0};
        cr_assert_eq(split_table(in, o, max, 333, 3, 0, &r, &err), 0, "%s", err.msg);
        cr_assert_not(r.stopped, "max %zu: stopped at %llu", max, (unsigned long long)r.stop_line);
        cr_assert_eq(r.ps.len, o);
        cr_assert(memcmp(r.ps.buf, in, o) == 0);
    }
}

/* A blank line in the last bytes of a full buffer: the piece ends before it, and it is judged
 * with the rows after it at the start of the next buffer. */
Test(csv_cut, blank_line_at_the_end_of_a_full_buffer_is_judged_in_the_next) {
    static char in[4000];
    size_t o = (size_t)sprintf(in, "n,a,b\n");
    o = table_rows(in, o, 1, 40);
    size_t end = o;
    o += (size_t)sprintf(in + o, "\nsecond table\nk;v\n1;2\n3;4\n");
    /* every limit that puts the blank line anywhere in a buffer, also at its very end */
    for (size_t max = 64; max < o + 8; max++) {
        split_res r;
        aq_csv_err err = {0};
        cr_assert_eq(split_table(in, o, max, 13, 3, 0, &r, &err), 0, "max %zu: %s", max, err.msg);
        cr_assert(r.stopped, "max %zu", max);
        cr_assert_eq(r.ps.len, end, "max %zu: %zu bytes", max, r.ps.len);
        cr_assert_eq(r.stop_line, 43, "max %zu", max);
    }
}

/* A given stop line (the setup's): nothing from it on is passed on, wherever the cut falls. */
Test(csv_cut, given_stop_line_passes_nothing_from_it) {
    static char in[8000];
    size_t o = table_rows(in, 0, 1, 300);
    size_t end = 0;
    for (int i = 0, lf = 0; i < (int)o; i++)
        if (in[i] == '\n' && ++lf == 150)
            end = (size_t)i + 1;
    for (size_t max = 100; max < 9000; max += 777) {
        split_res r;
        aq_csv_err err = {0};
        cr_assert_eq(split_table(in, o, max, 50, 3, 151, &r, &err), 0, "%s", err.msg);
        cr_assert_eq(r.ps.len, end, "max %zu", max);
        cr_assert_eq(r.stop_line, 151);
        cr_assert_eq(r.lines, 300);
    }
}

/* A blank line after every row (LF CR files read as LF, double-spaced exports): each blank line
 * is judged by the row after it, not by every row after it (a judge reading thousands of rows
 * per blank line took minutes here). */
Test(csv_cut, a_blank_line_after_every_row_is_judged_at_once, .timeout = 60) {
    size_t cap = 6u << 20;
    char *in = malloc(cap);
    size_t o = (size_t)sprintf(in, "n,a,b\n\n");
    for (int i = 0; i < 300000; i++)
        o += (size_t)sprintf(in + o, "%d,x,y\n\n", i);
    aq_csv_split s;
    size_t bytes = 0;
    cr_assert_eq(aq_csv_split_init(&s, &comma, 1u << 20, count_bytes, &bytes), 0);
    s.lenient = true;
    aq_csv_split_table(&s, 3, 0, 0);
    aq_csv_err err = {0};
    cr_assert_eq(aq_csv_split_push(&s, in, o, &err), 0);
    cr_assert_eq(aq_csv_split_finish(&s, &err), 0);
    cr_assert_not(s.stopped);
    cr_assert_eq(bytes, o);
    aq_csv_split_free(&s);
    free(in);
}
