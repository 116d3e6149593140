#include "aq_csv_cut.h"

#include "aq_csv_bits.h"
#include "aq_error.h"

#include <stdlib.h>
#include <string.h>

enum {
    ST_ROW_START,   /* at the first byte of a line: maybe a comment */
    ST_COMMENT,     /* inside a comment line */
    ST_FIELD_START, /* at the first byte of a field */
    ST_UNQUOTED,    /* inside an unquoted field, or after a closing quote */
    ST_QUOTED,      /* inside a quoted field */
    ST_QUOTE_SEEN,  /* a quote inside a quoted field: doubled, or the closing one */
    ST_QUOTED_ESC,  /* the byte after an escape inside a quoted field */
};

void aq_csv_cut_init(aq_csv_cutter *c, const aq_csv_dialect *d) {
    memset(c, 0, sizeof *c);
    c->sep = d->sep;
    c->quote = d->quote;
    c->comment = d->comment;
    c->escape = d->escape;
    c->skipsp = d->skipsp;
    c->state = ST_ROW_START;
}

bool aq_csv_cut_in_quote(const aq_csv_cutter *c) {
    return c->state == ST_QUOTED || c->state == ST_QUOTED_ESC;
}

static void feed_bytes(aq_csv_cutter *c, const char *buf, size_t len);

/* Bits [from, 64) of a 64-bit mask (from <= 64). */
static inline uint64_t from_bit(unsigned from) {
    return from >= 64 ? 0 : ~0ull << from;
}

/* The machine of feed_bytes, 64 bytes at a time through masks of quotes and LFs: between two
 * quotes only the LFs count, a quote opens a field at a field's start and is literal elsewhere,
 * inside quotes a quote closes or (doubled) stays. For files without comment lines, once any BOM
 * is decided; len is a multiple of 64. The per-row memchr calls of the byte machine made it the
 * command's largest cost on files with a quoted field in every row. */
static void feed_blocks(aq_csv_cutter *c, const char *buf, size_t len) {
    const char sep = c->sep, q = c->quote;
    uint8_t st = c->state;
    uint64_t lines = c->lines;
    for (size_t b = 0; b < len; b += 64) {
        const char *blk = buf + b;
        const uint64_t nl = aq_csv_eq64(blk, '\n'), qs = q ? aq_csv_eq64(blk, q) : 0;
        unsigned pos = 0;
        while (pos < 64) {
            if (st == ST_QUOTED) {
                uint64_t next = qs & from_bit(pos);
                unsigned end = next ? (unsigned)__builtin_ctzll(next) : 64;
                lines += (uint64_t)aq_csv_pop64(nl & from_bit(pos) & ~from_bit(end));
                if (end == 64)
                    break;
                st = ST_QUOTE_SEEN;
                pos = end + 1;
                continue;
            }
            if (st == ST_QUOTE_SEEN) {
                if (blk[pos] == q) { /* doubled */
                    st = ST_QUOTED;
                    pos++;
                    continue;
                }
                st = ST_UNQUOTED;
            }
            /* unquoted up to the next quote: each LF ends a row */
            uint64_t next = qs & from_bit(pos);
            unsigned end = next ? (unsigned)__builtin_ctzll(next) : 64;
            uint64_t rows = nl & from_bit(pos) & ~from_bit(end);
            if (rows) {
                lines += (uint64_t)aq_csv_pop64(rows);
                unsigned last = 63u - (unsigned)__builtin_clzll(rows);
                c->row_end = c->fed + b + last + 1;
                c->row_end_lines = lines;
            }
            if (end > pos) {
                char ch = blk[end - 1];
                st = ch == '\n' ? ST_ROW_START : ch == sep ? ST_FIELD_START : ST_UNQUOTED;
            }
            if (end == 64)
                break;
            if (st == ST_ROW_START || st == ST_FIELD_START) {
                st = ST_QUOTED;
                c->quote_line = lines + 1;
                c->quote_off = c->fed + b + end;
            } else {
                st = ST_UNQUOTED; /* a quote inside an unquoted field is a byte like any */
            }
            pos = end + 1;
        }
    }
    c->state = st;
    c->lines = lines;
    c->fed += len;
}

void aq_csv_cut_feed(aq_csv_cutter *c, const char *buf, size_t len) {
    if (c->bom < 3) { /* the first bytes decide the BOM */
        size_t n = len < 3 ? len : 3;
        feed_bytes(c, buf, n);
        buf += n;
        len -= n;
    }
    size_t whole = c->comment || c->escape || c->skipsp ? 0 : len & ~(size_t)63;
    if (whole)
        feed_blocks(c, buf, whole);
    if (len > whole)
        feed_bytes(c, buf + whole, len - whole);
}

static void feed_bytes(aq_csv_cutter *c, const char *buf, size_t len) {
    const char sep = c->sep, q = c->quote, cm = c->comment, esc = c->escape;
    uint8_t st = c->state;
    uint64_t lines = c->lines;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        /* a UTF-8 BOM at the very start is not data (the tokenizer skips it too), so a comment
         * or quote right after it is still at the start of its row */
        if (c->bom < 3 && c->fed + i == c->bom) {
            static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
            if (ch == bom[c->bom]) {
                c->bom++;
                continue;
            }
            if (c->bom > 0)
                st = ST_UNQUOTED; /* the bytes taken for a BOM began an ordinary field */
            c->bom = 3;
        }
        if (!cm && !esc && !c->skipsp && c->bom >= 3 && ch != q &&
            (st == ST_UNQUOTED || st == ST_FIELD_START || st == ST_ROW_START)) {
            /* Up to the next quote only LFs matter (each ends a row): count them in one pass,
             * and take the state the last byte leaves. A quote may open a field, so it goes
             * through the machine below. */
            const char *a = q ? memchr(buf + i, q, len - i) : NULL;
            size_t stop = a ? (size_t)(a - buf) : len, nl = 0;
            for (size_t k = i; k < stop; k++)
                nl += buf[k] == '\n';
            if (nl) {
                lines += nl;
                const char *lf = memrchr(buf + i, '\n', stop - i);
                c->row_end = c->fed + (size_t)(lf - buf) + 1;
                c->row_end_lines = lines;
            }
            char last = buf[stop - 1];
            st = last == '\n' ? ST_ROW_START : last == sep ? ST_FIELD_START : ST_UNQUOTED;
            i = stop - 1;
            continue;
        }
        switch (st) {
        case ST_QUOTED_ESC:
            lines += ch == '\n';
            st = ST_QUOTED;
            continue;
        case ST_QUOTED:
            if (ch == q) {
                st = ST_QUOTE_SEEN;
            } else if (esc && ch == esc) {
                st = ST_QUOTED_ESC;
            } else if (ch == '\n') {
                lines++;
            } else {
                /* skip ahead to the next quote or newline in one go */
                const char *a = memchr(buf + i, q, len - i);
                if (esc) {
                    const char *e = memchr(buf + i, esc, (size_t)((a ? a : buf + len) - (buf + i)));
                    a = e ? e : a;
                }
                const char *b = memchr(buf + i, '\n', (size_t)((a ? a : buf + len) - (buf + i)));
                const char *n = b ? b : a;
                if (!n) {
                    i = len;
                } else {
                    i = (size_t)(n - buf) - 1;
                }
            }
            continue;
        case ST_QUOTE_SEEN:
            if (ch == q) {
                st = ST_QUOTED;
                continue;
            }
            st = ST_UNQUOTED;
            break;
        case ST_COMMENT:
            if (ch != '\n') {
                const char *n = memchr(buf + i, '\n', len - i);
                i = n ? (size_t)(n - buf) - 1 : len;
                continue;
            }
            break;
        case ST_ROW_START:
            if (cm && ch == cm) {
                st = ST_COMMENT;
                continue;
            }
            /* fall through */
        case ST_FIELD_START:
            if (c->skipsp && ch == ' ' && st == ST_FIELD_START)
                continue; /* spaces after the separator: the field starts after them */
            if (q && ch == q) {
                st = ST_QUOTED;
                c->quote_line = lines + 1;
                c->quote_off = c->fed + i;
                continue;
            }
            st = ST_UNQUOTED;
            break;
        default:
            break;
        }
        /* unquoted context */
        if (ch == '\n') {
            lines++;
            c->row_end = c->fed + i + 1;
            c->row_end_lines = lines;
            st = ST_ROW_START;
        } else if (ch == sep) {
            st = ST_FIELD_START;
        }
    }
    c->state = st;
    c->lines = lines;
    c->fed += len;
}

int aq_csv_split_init(aq_csv_split *s, const aq_csv_dialect *d, size_t max_piece,
                      aq_csv_piece_fn fn, void *ctx) {
    memset(s, 0, sizeof *s);
    if (max_piece == 0 || !fn)
        return AQ_EINVAL;
    s->mem = s->buf = malloc(max_piece);
    if (!s->buf)
        return AQ_ENOMEM;
    aq_csv_cut_init(&s->cut, d);
    s->d = *d;
    s->max = max_piece;
    s->fn = fn;
    s->ctx = ctx;
    return 0;
}

void aq_csv_split_table(aq_csv_split *s, uint32_t ncols, uint64_t skip, uint64_t stop_line) {
    s->ncols = ncols;
    s->skip = skip;
    s->stop_line = stop_line;
}

int aq_csv_split_reserve(aq_csv_split *s, size_t headroom) {
    if (s->len || s->base || headroom > SIZE_MAX - s->max)
        return AQ_EINVAL;
    char *m = malloc(headroom + s->max);
    if (!m)
        return AQ_ENOMEM;
    free(s->mem);
    s->mem = m;
    s->buf = m + headroom;
    s->headroom = headroom;
    return 0;
}

void aq_csv_split_free(aq_csv_split *s) {
    free(s->mem);
    free(s->first);
    s->mem = s->buf = s->first = NULL;
}

char *aq_csv_split_take(aq_csv_split *s) {
    if (s->taken || s->cut_at == 0)
        return NULL;
    char *m = malloc(s->headroom + s->max);
    if (!m)
        return NULL;
    /* the bytes after the piece start the next one */
    memcpy(m + s->headroom, s->buf + s->cut_at, s->len - s->cut_at);
    char *old = s->mem;
    s->mem = m;
    s->buf = m + s->headroom;
    s->taken = true;
    return old;
}

/* Emits buf[0 .. cut) and moves the rest to the front (take moved it already). */
static int emit(aq_csv_split *s, size_t cut, uint64_t cut_lines) {
    s->cut_at = cut;
    s->taken = false;
    int rc = s->fn(s->ctx, s->buf, cut, s->base_lines + 1, s->index++);
    if (!s->taken)
        memmove(s->buf, s->buf + cut, s->len - cut);
    s->cut_at = 0;
    s->taken = false;
    s->len -= cut;
    s->base += cut;
    s->base_lines = cut_lines;
    return rc;
}

/* Counts bytes that are dropped (after the table's end): lines only, as the cutter would. */
static void count_dropped(aq_csv_split *s, const char *p, size_t n) {
    aq_csv_cutter *c = &s->cut;
    for (const char *e = p + n, *q = p; (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
        c->lines++;
    c->fed += n;
    if (n && p[n - 1] == '\n') {
        c->row_end = c->fed;
        c->row_end_lines = c->lines;
    }
}

/* The table ends at buffer offset at (a row start, on line `line`): emits what comes before it
 * and drops the rest. */
static int stop_at(aq_csv_split *s, size_t at, uint64_t line) {
    uint64_t lines_before = s->base_lines;
    for (const char *q = s->buf, *e = s->buf + at; (q = memchr(q, '\n', (size_t)(e - q))) != NULL;
         q++)
        lines_before++;
    int rc = at ? emit(s, at, lines_before) : 0;
    s->stopped = true;
    s->stop_line = line;
    s->base += s->len;
    s->len = 0;
    return rc;
}

/* Where line `line` starts in buf[0..len), or SIZE_MAX when it is not in it. */
static size_t line_start(const aq_csv_split *s, uint64_t line) {
    if (line <= s->base_lines + 1)
        return 0;
    uint64_t need = line - 1 - s->base_lines;
    const char *q = s->buf, *e = s->buf + s->len;
    while (need && (q = memchr(q, '\n', (size_t)(e - q))) != NULL) {
        q++;
        need--;
    }
    return need ? SIZE_MAX : (size_t)(q - s->buf);
}

/* The first row of the table (after line skip), kept to see it come again. */
static int find_first(aq_csv_split *s) {
    aq_csv_tok t;
    aq_csv_tok_init(&t, s->buf, s->len, &s->d, 1, true);
    t.lenient = true;
    int rc = 0;
    while (aq_csv_tok_next(&t, NULL) == 1) {
        if (t.row_line <= s->skip)
            continue;
        size_t n = (size_t)(t.row_end - t.row_start);
        if (!(s->first = malloc(n ? n : 1))) {
            rc = AQ_ENOMEM;
            break;
        }
        memcpy(s->first, t.row_start, n);
        s->first_len = n;
        s->first_line = t.row_line;
        break;
    }
    aq_csv_tok_free(&t);
    return rc;
}

/* Whether the LF at b[k] ends a blank line ("\n\n" or "\n\r\n"; an LF stands before b[0], as a
 * piece starts at a row start); *start: where that blank line starts. */
static bool blank_end(const char *b, size_t k, size_t *start) {
    if (k == 0 || b[k - 1] == '\n') {
        *start = k;
        return true;
    }
    if (b[k - 1] == '\r' && (k == 1 || b[k - 2] == '\n')) {
        *start = k - 1;
        return true;
    }
    return false;
}

/* The next blank line whose ending LF is in b[from .. to): that LF's offset, with *start where
 * the blank line starts; SIZE_MAX when none. 64 bytes at a time through masks of LFs and CRs: an
 * LF whose byte before is an LF, or a CR after an LF. */
static size_t next_blank(const char *b, size_t from, size_t to, size_t *start) {
    size_t k = from;
    for (; k < to && (k < 2 || k + 64 > to); k++)
        if (b[k] == '\n' && blank_end(b, k, start))
            return k;
    for (; k + 64 <= to; k += 64) {
        uint64_t nl = aq_csv_eq64(b + k, '\n'), cr = aq_csv_eq64(b + k, '\r');
        /* the bits of the two bytes before the block */
        uint64_t nl1 = b[k - 1] == '\n', nl2 = b[k - 2] == '\n', cr1 = b[k - 1] == '\r';
        uint64_t after_nl = (nl << 1) | nl1;
        uint64_t after_nl_cr = ((cr << 1) | cr1) & ((nl << 2) | (nl1 << 1) | nl2);
        uint64_t cand = nl & (after_nl | after_nl_cr);
        if (cand) {
            size_t at = k + (size_t)__builtin_ctzll(cand);
            if (blank_end(b, at, start))
                return at;
        }
    }
    for (; k < to; k++)
        if (b[k] == '\n' && blank_end(b, k, start))
            return k;
    return SIZE_MAX;
}

/* Judges the blank lines in buf[0 .. cut) not judged yet: the table ends at one after which its
 * first row comes again, or no row has its field count (two rows at least, or one that ends the
 * file). The rows looked at are the whole rows in the buffer (all of it at the end of the file).
 * *cut becomes where the piece ends: before a blank line that ends the table (then stopped), or
 * before one with too few rows after it in the buffer to judge (it is judged again at the start
 * of the next buffer). */
#define JUDGE_ROWS 2000
static int judge_blanks(aq_csv_split *s, size_t *cut, bool eof) {
    if (!s->first && s->base == 0 && s->ncols) {
        int rc = find_first(s);
        if (rc)
            return rc;
    }
    if (!s->first_line || s->ncols == 0)
        return 0;
    size_t from = s->judged > s->base ? (size_t)(s->judged - s->base) : 0;
    size_t wend =
        eof ? s->len : (s->cut.row_end > s->base ? (size_t)(s->cut.row_end - s->base) : 0);
    aq_csv_cutter vc; /* whether a blank line is outside quotes: a cutter from the piece's start */
    aq_csv_cut_init(&vc, &s->d);
    if (s->base)
        vc.bom = 3;
    size_t fed = 0, bs;
    for (size_t k; from < *cut && (k = next_blank(s->buf, from, *cut, &bs)) != SIZE_MAX;
         from = k + 1) {
        aq_csv_cut_feed(&vc, s->buf + fed, k + 1 - fed);
        fed = k + 1;
        uint64_t line = s->base_lines + vc.lines; /* the blank line's */
        if (vc.row_end != k + 1 || line <= s->first_line)
            continue; /* inside quotes, or before the table starts */
        aq_csv_tok t;
        aq_csv_tok_init(&t, s->buf + k + 1, wend > k + 1 ? wend - (k + 1) : 0, &s->d, line + 1,
                        false);
        t.lenient = true;
        size_t rows = 0, same = 0;
        bool repeat = false;
        uint64_t next_line = 0;
        while (rows < JUDGE_ROWS && aq_csv_tok_next(&t, NULL) == 1) {
            if (rows++ == 0) {
                next_line = t.row_line;
                repeat = (size_t)(t.row_end - t.row_start) == s->first_len &&
                         memcmp(t.row_start, s->first, s->first_len) == 0;
            }
            same += t.nfields == s->ncols;
            if (repeat || same)
                break; /* its first row again, or a row of its width: decided */
        }
        bool to_end = eof && t.p >= t.end;
        aq_csv_tok_free(&t);
        if (rows && (repeat || (same == 0 && (rows >= 2 || to_end)))) {
            *cut = bs;
            s->stopped = true;
            s->stop_line = next_line;
            return 0;
        }
        if (!eof && bs > 0 && (rows == 0 || (same == 0 && rows < 2))) {
            *cut = bs; /* too little after it here: judged again at the next buffer's start */
            return 0;
        }
        s->judged = s->base + k + 1;
    }
    return 0;
}

/* Emits the piece buf[0 .. cut) (cut: a row end with cut_lines LFs before it), or less when
 * the table ends before it. */
static int emit_piece(aq_csv_split *s, size_t cut, uint64_t cut_lines, bool eof) {
    if (s->stop_line) {
        size_t at = line_start(s, s->stop_line);
        if (at <= cut)
            return stop_at(s, at, s->stop_line);
    }
    size_t c = cut;
    int rc = judge_blanks(s, &c, eof);
    if (rc)
        return rc;
    if (s->stopped) {
        s->stopped = false; /* stop_at sets it again, after emitting what comes before */
        return stop_at(s, c, s->stop_line);
    }
    if (c < cut) {
        uint64_t l = s->base_lines;
        for (const char *q = s->buf, *e = s->buf + c; (q = memchr(q, '\n', (size_t)(e - q))); q++)
            l++;
        return emit(s, c, l);
    }
    return emit(s, cut, cut_lines);
}

/* Feeds the cutter buf[from .. to) up to the first row end after offset after; returns where it
 * stopped. */
static size_t feed_to_row_end(aq_csv_split *s, size_t from, size_t to, uint64_t after) {
    while (from < to && s->cut.row_end <= after) {
        const char *lf = memchr(s->buf + from, '\n', to - from);
        size_t e = lf ? (size_t)(lf - s->buf) + 1 : to;
        aq_csv_cut_feed(&s->cut, s->buf + from, e - from);
        from = e;
    }
    return from;
}

/* A full buffer becomes a piece ending at the last row end. When no row ends in it because a
 * quoted field runs past it, that field's quote opened nothing (lenient): the cutter reads it as
 * a byte, and the piece ends at the first row end after it. AQ_ETOOBIG when a row is longer. */
static int make_room(aq_csv_split *s, aq_csv_err *err) {
    while (s->cut.row_end <= s->base) {
        aq_csv_cutter *c = &s->cut;
        if (!s->lenient || !aq_csv_cut_in_quote(c) || c->quote_off < s->base ||
            c->quote_off >= s->base + s->len) {
            aq_csv_err_set(err, s->base_lines + 1,
                           "line %llu: row longer than the %zu-byte piece limit",
                           (unsigned long long)(s->base_lines + 1), s->max);
            return AQ_ETOOBIG;
        }
        /* the cutter again from just after that quote, in the unquoted field it began */
        uint64_t qo = c->quote_off;
        c->state = ST_UNQUOTED;
        c->lines = c->quote_line - 1;
        c->fed = qo + 1;
        s->strays++;
        size_t at = feed_to_row_end(s, (size_t)(qo + 1 - s->base), s->len, qo);
        uint64_t re = c->row_end, rl = c->row_end_lines;
        if (at < s->len)
            aq_csv_cut_feed(c, s->buf + at, s->len - at);
        if (re > qo)
            return emit_piece(s, (size_t)(re - s->base), rl, false);
    }
    return emit_piece(s, (size_t)(s->cut.row_end - s->base), s->cut.row_end_lines, false);
}

int aq_csv_split_space(aq_csv_split *s, char **p, size_t *room, aq_csv_err *err) {
    if (s->len == s->max) {
        int rc = make_room(s, err);
        if (rc)
            return rc;
    }
    *p = s->buf + s->len;
    *room = s->max - s->len;
    return 0;
}

/* A file whose rows end at CR alone (classic Mac): each CR becomes the LF every reader here
 * ends rows at. */
static void cr_to_lf(char *p, size_t n) {
    for (char *e = p + n; (p = memchr(p, '\r', (size_t)(e - p))) != NULL; p++)
        *p = '\n';
}

void aq_csv_split_commit(aq_csv_split *s, size_t n) {
    if (s->cr_rows)
        cr_to_lf(s->buf + s->len, n);
    if (s->stopped) {
        count_dropped(s, s->buf + s->len, n);
        return;
    }
    aq_csv_cut_feed(&s->cut, s->buf + s->len, n);
    s->len += n;
}

int aq_csv_split_push(aq_csv_split *s, const void *data, size_t len, aq_csv_err *err) {
    const char *d = data;
    while (len) {
        size_t room = s->max - s->len;
        if (room == 0) {
            int rc = make_room(s, err);
            if (rc)
                return rc;
            continue;
        }
        size_t n = len < room ? len : room;
        memcpy(s->buf + s->len, d, n);
        aq_csv_split_commit(s, n);
        d += n;
        len -= n;
    }
    return 0;
}

int aq_csv_split_finish(aq_csv_split *s, aq_csv_err *err) {
    if (s->stopped)
        return 0;
    if (aq_csv_cut_in_quote(&s->cut) && !s->lenient) {
        aq_csv_err_set(err, s->cut.quote_line, "line %llu: quoted field is never closed",
                       (unsigned long long)s->cut.quote_line);
        return AQ_EPARSE;
    }
    /* a blank line judged too close to the buffer's end moves the cut before it: go on */
    while (s->len && !s->stopped) {
        int rc = emit_piece(s, s->len, s->cut.lines, true);
        if (rc)
            return rc;
    }
    return 0;
}
