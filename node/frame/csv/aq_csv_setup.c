#include "aq_csv_setup.h"

#include "aq_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows per sample block the guesser looks at: enough for a stable answer, bounded in time. */
#define GUESS_ROWS 2000

static const char *const type_names[] = {"none", "int", "float", "time", "categorical", "string"};

const char *aq_csv_type_name(aq_csv_type t) {
    return (unsigned)t < 6 ? type_names[t] : "unknown";
}

int aq_csv_type_parse(const char *s, aq_csv_type *t) {
    static const struct {
        const char *n;
        aq_csv_type t;
    } m[] = {{"none", AQ_CSV_T_NONE},       {"int", AQ_CSV_T_INT},    {"integer", AQ_CSV_T_INT},
             {"float", AQ_CSV_T_FLOAT},     {"real", AQ_CSV_T_FLOAT}, {"numeric", AQ_CSV_T_FLOAT},
             {"double", AQ_CSV_T_FLOAT},    {"time", AQ_CSV_T_TIME},  {"date", AQ_CSV_T_TIME},
             {"categorical", AQ_CSV_T_CAT}, {"enum", AQ_CSV_T_CAT},   {"cat", AQ_CSV_T_CAT},
             {"factor", AQ_CSV_T_CAT},      {"string", AQ_CSV_T_STR}, {"str", AQ_CSV_T_STR}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcasecmp(s, m[i].n) == 0) {
            *t = m[i].t;
            return 0;
        }
    return AQ_EINVAL;
}

aq_csv_opts aq_csv_opts_default(void) {
    aq_csv_opts o;
    memset(&o, 0, sizeof o);
    o.header = AQ_CSV_HEADER_AUTO;
    o.quote = AQ_CSV_QUOTE_AUTO;
    o.escape = AQ_CSV_QUOTE_AUTO;
    o.comment = AQ_CSV_QUOTE_AUTO;
    o.skip = -1;
    o.skipsp = -1;
    return o;
}

aq_csv_na aq_csv_setup_na(const aq_csv_setup *s) {
    return aq_csv_na_make((const char *const *)s->na, s->nna);
}

size_t aq_csv_sample_trim(const char *p, size_t len, size_t *off) {
    const char *a = memchr(p, '\n', len);
    if (!a) {
        *off = 0;
        return 0;
    }
    const char *b = memrchr(p, '\n', len);
    *off = (size_t)(a + 1 - p);
    return (size_t)(b - a);
}

void aq_csv_setup_free(aq_csv_setup *s) {
    if (s->names)
        for (uint32_t i = 0; i < s->ncols; i++)
            free(s->names[i]);
    free(s->names);
    free(s->types);
    free(s->forced);
    if (s->na)
        for (size_t i = 0; i < s->nna; i++)
            free(s->na[i]);
    free(s->na);
    memset(s, 0, sizeof *s);
}

/* Field counts of the sampled rows under one dialect: the most common count and its share (a
 * row the tokenizer had to repair counts against it). In the block at the file's start, lines
 * 1..skip and those from stop (when not 0) are left out. */
static int sep_score(const aq_csv_sample *sm, size_t n, const aq_csv_dialect *d, uint64_t skip,
                     uint64_t stop, size_t *mode, double *share, size_t *widest, size_t *quoted) {
    size_t cap = 64, used = 0;
    size_t *counts = calloc(cap, sizeof *counts); /* counts[k]: rows with k fields, k < cap */
    size_t big = 0, rows = 0, repaired = 0, nq = 0, pairs = 0, kept = 0;
    if (!counts)
        return AQ_ENOMEM;
    for (size_t s = 0; s < n; s++) {
        aq_csv_tok t;
        aq_csv_tok_init(&t, sm[s].p, sm[s].len, d, 1, sm[s].file_start);
        t.lenient = true;
        size_t r = 0, prev = SIZE_MAX;
        while (r < GUESS_ROWS && aq_csv_tok_next(&t, NULL) == 1) {
            if (sm[s].file_start && t.row_line <= skip)
                continue;
            if (sm[s].file_start && stop && t.row_line >= stop)
                break;
            r++;
            rows++;
            /* a quote inside an unquoted field (Men's) is common and says little about the
             * dialect; a quote left open or bytes after a closing one say it is wrong */
            bool bad = t.repair && strcmp(t.repair, "a quote inside an unquoted field") != 0;
            repaired += bad;
            if (prev != SIZE_MAX) {
                pairs++;
                kept += t.nfields == prev && !bad;
            }
            prev = t.nfields;
            for (size_t j = 0; j < t.nfields; j++)
                nq += t.fields[j].quoted;
            if (t.nfields < cap)
                counts[t.nfields]++;
            else
                big++;
            used = t.nfields > used ? t.nfields : used;
        }
        aq_csv_tok_free(&t);
    }
    size_t best = 0;
    for (size_t k = 1; k < cap; k++)
        if (counts[k] >= counts[best] && counts[k])
            best = k; /* ties to the wider: padding a row loses nothing, folding one joins fields */
    /* with very wide rows, the count itself is beyond the table: find its mode directly */
    size_t fit = big > counts[best] ? big : counts[best];
    *mode = big > counts[best] ? used : best;
    fit = fit > repaired ? fit - repaired : 0;
    *share = rows ? (double)fit / (double)rows : 0;
    /* rows that keep the count of the row before: a file of two tables of other widths (or a
     * long preamble) is regular in each, which a separator that cuts every row the same way by
     * chance (the colons of times and URLs) must not beat */
    if (pairs && (double)kept / (double)pairs > *share)
        *share = (double)kept / (double)pairs;
    *widest = used;
    if (quoted)
        *quoted = nq;
    free(counts);
    return rows ? 0 : AQ_EPARSE;
}

/* Whether nearly every separator byte in the samples is followed by a space (", " files). */
static bool spaced_sep(const aq_csv_sample *sm, size_t n, char sep) {
    size_t all = 0, spaced = 0;
    if (sep == ' ')
        return false;
    for (size_t s = 0; s < n && all < 20000; s++) { /* enough to tell */
        const char *p = sm[s].p, *end = p + sm[s].len;
        while (all < 20000 && (p = memchr(p, sep, (size_t)(end - p))) != NULL && p + 1 < end) {
            all++;
            spaced += p[1] == ' ';
            p++;
        }
    }
    return all >= 2 && (double)spaced >= 0.9 * (double)all;
}

/* Whether byte c occurs in the samples at all (a candidate that never occurs needs no trial). */
static bool occurs(const aq_csv_sample *sm, size_t n, char c) {
    for (size_t s = 0; s < n; s++)
        if (memchr(sm[s].p, c, sm[s].len))
            return true;
    return false;
}

/* Whether the samples hold a backslash right before the quote. */
static bool backslash_quote(const aq_csv_sample *sm, size_t n, char q) {
    for (size_t s = 0; s < n; s++) {
        const char *p = sm[s].p, *end = p + sm[s].len;
        while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL && p + 1 < end) {
            if (p[1] == q)
                return true;
            p++;
        }
    }
    return false;
}

/* The separator, quote and escape (and whether spaces after the separator are data) whose field
 * counts agree best across the sampled rows, a row the tokenizer had to repair counting against
 * them. For each separator the most regular quote and escape win (among equals, the quote that
 * quotes more fields, then the double quote and no escape); separators go in order of how common
 * they are, and a later one must be clearly more regular to win, or as regular with more columns
 * (space and colon, which text and times hold, must be clearly more regular and near-perfect). */
static int guess_sep(const aq_csv_sample *sm, size_t n, const aq_csv_opts *o, aq_csv_dialect *d) {
    static const char seps[] = {',', ';', '\t', '|', '\x01', ' ', ':'};
    static const char quotes[] = {'"', '\'', 0};
    aq_csv_dialect best = *d;
    best.sep = o->sep ? o->sep : ',';
    best.quote = o->quote == AQ_CSV_QUOTE_AUTO ? '"' : (char)o->quote;
    best.escape = o->escape > 0 ? (char)o->escape : 0;
    best.skipsp = o->skipsp == 1;
    size_t best_mode = 0;
    double best_share = -1;
    for (size_t i = 0; i < sizeof seps; i++) {
        if (o->sep && i > 0)
            break;
        if (!o->sep && i > 0 && !occurs(sm, n, seps[i]))
            continue;
        /* this separator's best quote and escape: the most regular, ties to the earlier */
        aq_csv_dialect sb = *d;
        size_t sb_mode = 0, sb_quoted = 0;
        double sb_share = -1;
        for (size_t qi = 0; qi < sizeof quotes; qi++) {
            if (o->quote != AQ_CSV_QUOTE_AUTO && qi > 0)
                break;
            char q = o->quote == AQ_CSV_QUOTE_AUTO ? quotes[qi] : (char)o->quote;
            if (o->quote == AQ_CSV_QUOTE_AUTO && q && qi > 0 && !occurs(sm, n, q))
                continue;
            for (int ei = 0; ei < 2; ei++) {
                char esc = ei ? '\\' : 0;
                if (o->escape != AQ_CSV_QUOTE_AUTO) {
                    if (ei)
                        break;
                    esc = (char)o->escape;
                } else if (ei && (!q || !backslash_quote(sm, n, q))) {
                    continue;
                }
                aq_csv_dialect t = *d;
                t.sep = o->sep ? o->sep : seps[i];
                t.quote = q;
                t.escape = esc;
                if (t.sep == q || (esc && t.sep == esc))
                    continue;
                t.skipsp = o->skipsp >= 0 ? o->skipsp == 1 : spaced_sep(sm, n, t.sep);
                /* space-separated columns padded to a width: runs of spaces are one separator */
                bool runs = t.sep == ' ' && o->skipsp < 0;
                for (int sp = 0; sp <= (int)runs; sp++) {
                    t.skipsp = sp ? true : t.skipsp;
                    size_t mode, widest, quoted;
                    double share;
                    int rc = sep_score(sm, n, &t, 0, 0, &mode, &share, &widest, &quoted);
                    if (rc)
                        return rc;
                    /* nearly as regular (a stray quote spoils a row or two) and quoting more
                     * fields: that quote is the file's */
                    if (share > sb_share + 0.02 ||
                        (share > sb_share - 0.02 && quoted > sb_quoted) ||
                        (share > sb_share + 1e-9 && quoted == sb_quoted)) {
                        sb = t;
                        sb_mode = mode;
                        sb_share = share;
                        sb_quoted = quoted;
                    }
                }
            }
        }
        if (sb_share < 0)
            continue;
        bool wordy = sb.sep == ' ' || sb.sep == ':';
        if (!o->sep && (sb_mode < 2 || (wordy && sb_share < 0.9)))
            continue;
        if (sb_share > best_share + 0.05 ||
            (!wordy && sb_share > best_share - 0.05 && sb_mode > best_mode)) {
            best = sb;
            best_mode = sb_mode;
            best_share = sb_share;
        }
    }
    *d = best;
    return 0;
}

/* A decimal comma: the separator is not a comma, and the sampled fields hold numbers written
 * digits-comma-digits (3,25) and none written with a point (3.25). */
static char guess_decimal(const aq_csv_sample *sm, size_t n, const aq_csv_dialect *d) {
    if (d->sep == ',')
        return '.';
    size_t comma = 0, point = 0;
    for (size_t s = 0; s < n; s++) {
        aq_csv_tok t;
        aq_csv_tok_init(&t, sm[s].p, sm[s].len, d, 1, sm[s].file_start);
        t.lenient = true;
        size_t r = 0;
        while (r++ < GUESS_ROWS && aq_csv_tok_next(&t, NULL) == 1)
            for (size_t j = 0; j < t.nfields; j++) {
                const char *p = t.fields[j].p;
                size_t len = t.fields[j].len, i = len && (p[0] == '-' || p[0] == '+'), a = i;
                while (i < len && p[i] >= '0' && p[i] <= '9')
                    i++;
                if (i == a || i + 1 >= len || (p[i] != ',' && p[i] != '.'))
                    continue;
                char m = p[i++];
                size_t b = i;
                while (i < len && p[i] >= '0' && p[i] <= '9')
                    i++;
                if (i == len && i > b) {
                    comma += m == ',';
                    point += m == '.';
                }
            }
        aq_csv_tok_free(&t);
    }
    return comma >= 2 && point == 0 ? ',' : '.';
}

/* The fields of the row at p that are not empty. */
static size_t filled_fields(const char *p, size_t len, const aq_csv_dialect *d) {
    aq_csv_tok t;
    aq_csv_tok_init(&t, p, len, d, 1, false);
    t.lenient = true;
    size_t n = 0;
    if (aq_csv_tok_next(&t, NULL) == 1)
        for (size_t j = 0; j < t.nfields; j++)
            n += t.fields[j].len > 0;
    aq_csv_tok_free(&t);
    return n;
}

/* Whether the row at p is text alone (empty fields aside) and the row after it holds a number. */
static bool names_over_data(const char *p, size_t len, const aq_csv_dialect *d) {
    aq_csv_na na = aq_csv_na_default();
    aq_csv_tok t;
    aq_csv_tok_init(&t, p, len, d, 1, false);
    t.lenient = true;
    bool ok = aq_csv_tok_next(&t, NULL) == 1, num = false;
    int64_t iv;
    double dv;
    for (size_t j = 0; ok && j < t.nfields; j++) {
        aq_csv_vkind k =
            aq_csv_classify(t.fields[j].p, t.fields[j].len, t.fields[j].quoted, &na, &iv, &dv);
        ok = k == AQ_CSV_V_TEXT || k == AQ_CSV_V_NA;
    }
    if (ok && aq_csv_tok_next(&t, NULL) == 1)
        for (size_t j = 0; j < t.nfields && !num; j++) {
            aq_csv_vkind k =
                aq_csv_classify(t.fields[j].p, t.fields[j].len, t.fields[j].quoted, &na, &iv, &dv);
            num = k == AQ_CSV_V_INT || k == AQ_CSV_V_FLOAT;
        }
    aq_csv_tok_free(&t);
    return ok && num;
}

/* Where the table is in the block at the file's start: lines before its first row (a preamble,
 * titles, notes) and the first line of what follows it after a blank line (a second table, a
 * footer), 0 when nothing follows. The table is the rows of the most common field count: it
 * starts at the first row of that count (a header has it too; a ragged first data row after the
 * header is the table's). It ends at a blank line after which every sampled row has another
 * count (a second table; a footer when the block is the whole file), or after which the table's
 * first row comes again (the same table's header repeated). A blank line followed by rows of the
 * table's shape, or by a lone ragged row and then such rows, ends nothing: those are repaired. */
static int find_table(const aq_csv_sample *sm, size_t n, const aq_csv_dialect *d, long want_skip,
                      uint64_t *skip, uint64_t *stop) {
    *skip = want_skip > 0 ? (uint64_t)want_skip : 0;
    *stop = 0;
    const aq_csv_sample *h = NULL;
    for (size_t i = 0; i < n && !h; i++)
        if (sm[i].file_start)
            h = &sm[i];
    if (!h)
        return 0;
    size_t cap = GUESS_ROWS;
    size_t *cnt = malloc(cap * sizeof *cnt);
    uint64_t *line = malloc(cap * sizeof *line), *next = malloc(cap * sizeof *next);
    const char **rs = malloc(cap * sizeof *rs), **re = malloc(cap * sizeof *re);
    int rc = cnt && line && next && rs && re ? 0 : AQ_ENOMEM;
    aq_csv_tok t;
    aq_csv_tok_init(&t, h->p, h->len, d, 1, true);
    t.lenient = true;
    size_t r = 0;
    while (!rc && r < cap && aq_csv_tok_next(&t, NULL) == 1) {
        if (t.row_line <= *skip)
            continue;
        cnt[r] = t.nfields;
        line[r] = t.row_line;
        next[r] = t.line; /* the line after the row */
        rs[r] = t.row_start;
        re[r] = t.row_end;
        r++;
    }
    /* every row of the file was seen: the block is shorter than a head sample, and read whole */
    bool whole = t.p >= t.end && h->len < AQ_CSV_SAMPLE_HEAD;
    aq_csv_tok_free(&t);
    size_t mode = 0, best = 0;
    for (size_t i = 0; i < r; i++) {
        size_t c = 0;
        for (size_t k = 0; k < r; k++)
            c += cnt[k] == cnt[i];
        if (c > best || (c == best && cnt[i] > mode)) {
            best = c;
            mode = cnt[i];
        }
        if (i > 64 && best > r / 2)
            break; /* a clear majority already */
    }
    size_t start = 0;
    if (mode >= 2 && want_skip < 0) {
        while (start < r && cnt[start] != mode)
            start++;
        if (start >= r)
            start = 0;
        /* Rows before it that are a table themselves (three or more, all of one width of at
         * least three fields, no blank line among them or before the next table): the file's
         * first table, which is read; the one of the common width after it is a second table. */
        bool first_table = start >= 3 && cnt[0] >= 3 && line[start] <= next[start - 1];
        for (size_t i = 1; first_table && i < start; i++)
            first_table = cnt[i] == cnt[0] && line[i] <= next[i - 1];
        if (first_table) {
            *stop = line[start];
            goto done;
        }
        /* The row right before it (no blank line between) with one field less, or more, is its
         * header when it is all text and that first row holds a number: data rows that end with
         * a separator the header lacks, a header that ends with one or names columns the rows
         * leave out. (A title before a header is text over text.) */
        if (start > 0 && line[start] <= next[start - 1] && cnt[start - 1] >= 2 &&
            cnt[start - 1] + 1 >= mode &&
            names_over_data(rs[start - 1], (size_t)(h->p + h->len - rs[start - 1]), d))
            start--;
        /* Spreadsheets pad a title to the table's width ("Report,,,,"): at the table's start,
         * rows of at most one filled field before a header (text over a row with a number)
         * are a preamble too. */
        size_t k = start;
        while (mode >= 3 && k + 1 < r && k - start < 16 && cnt[k] == mode &&
               filled_fields(rs[k], (size_t)(h->p + h->len - rs[k]), d) <= 1)
            k++;
        if (k > start && filled_fields(rs[k], (size_t)(h->p + h->len - rs[k]), d) > 1 &&
            names_over_data(rs[k], (size_t)(h->p + h->len - rs[k]), d))
            start = k;
        if (start > 0)
            *skip = line[start] - 1;
    }
    for (size_t i = start + 1; i < r && mode >= 2; i++) {
        if (line[i] <= next[i - 1]) {
            /* no blank line before this row: a second table when, where the width changes
             * after rows of the table's, a header of text over a row with a number starts rows
             * of its own width (three at least, nine in ten of the rest) and none of the
             * table's width follows */
            if (cnt[i] == mode || cnt[i - 1] != mode)
                continue;
            size_t same = 0, own = 0;
            for (size_t k = i; k < r; k++) {
                same += cnt[k] == mode;
                own += cnt[k] == cnt[i];
            }
            if (same == 0 && own >= 3 && own * 10 >= (r - i) * 9 &&
                names_over_data(rs[i], (size_t)(h->p + h->len - rs[i]), d)) {
                *stop = line[i];
                break;
            }
            continue;
        }
        size_t same = 0;
        for (size_t k = i; k < r; k++)
            same += cnt[k] == mode;
        bool repeat = re[i] - rs[i] == re[start] - rs[start] &&
                      memcmp(rs[i], rs[start], (size_t)(re[i] - rs[i])) == 0;
        if (repeat || (same == 0 && (i + 1 < r || whole))) {
            *stop = line[i];
            break;
        }
    }
done:
    free(cnt);
    free(line);
    free(next);
    free(rs);
    free(re);
    return rc;
}

/* The first row's width in the head sample (after line skip), up to its last non-empty field. */
static size_t named_width(const aq_csv_sample *sm, size_t n, const aq_csv_dialect *d,
                          uint64_t skip) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sm[i].file_start)
            continue;
        aq_csv_tok t;
        aq_csv_tok_init(&t, sm[i].p, sm[i].len, d, 1, true);
        t.lenient = true;
        while (aq_csv_tok_next(&t, NULL) == 1) {
            if (t.row_line <= skip)
                continue;
            for (size_t j = t.nfields; j > 0 && !w; j--)
                if (t.fields[j - 1].len || t.fields[j - 1].quoted)
                    w = j;
            break;
        }
        aq_csv_tok_free(&t);
        break;
    }
    return w;
}

static char *dup_n(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* What the sampled data rows of one column hold. */
typedef struct colstat {
    size_t ints, floats, times, texts;
} colstat;

typedef struct first_row {
    char **v;
    bool *text;
    aq_csv_vkind *kind;
    int64_t *iv;
    size_t n;
} first_row;

/* Whether the non-NA values of a row are consecutive integers (k, k+1, ...): how writers name
 * columns they have no names for (pandas: 0, 1, 2 ...; years). At least three, or two from 0. */
static bool consecutive(const aq_csv_vkind *kind, const int64_t *iv, size_t n) {
    size_t cnt = 0;
    int64_t prev = 0, first = 0;
    for (size_t j = 0; j < n; j++) {
        if (kind[j] == AQ_CSV_V_NA && cnt == 0 && j == 0)
            continue; /* an index column's empty name */
        if (kind[j] != AQ_CSV_V_INT || (cnt && (prev == INT64_MAX || iv[j] != prev + 1)))
            return false;
        if (cnt++ == 0)
            first = iv[j];
        prev = iv[j];
    }
    return cnt >= 3 || (cnt == 2 && first == 0);
}

static aq_csv_type stat_type(const colstat *c) {
    if (c->texts || (c->times && (c->ints || c->floats)))
        return AQ_CSV_T_CAT;
    if (c->times)
        return AQ_CSV_T_TIME;
    if (c->floats)
        return AQ_CSV_T_FLOAT;
    if (c->ints)
        return AQ_CSV_T_INT;
    return AQ_CSV_T_NONE;
}

static bool valid_sep(char c) {
    return c && c != '\n' && c != '\r';
}

static int guess(const aq_csv_sample *sm, size_t n, const aq_csv_opts *opts, aq_csv_setup *out,
                 aq_csv_err *err) {
    aq_csv_opts dflt = aq_csv_opts_default();
    const aq_csv_opts *o = opts ? opts : &dflt;
    aq_csv_setup s;
    memset(&s, 0, sizeof s);
    int rc = AQ_ENOMEM;
    colstat *st = NULL;
    first_row fr = {0};
    /* one small set of distinct first-row values per column, to tell text headers apart */
    bool *recurs = NULL;
    size_t frn = 0;

    if (o->sep && (!valid_sep(o->sep) || o->sep == o->quote)) {
        aq_csv_err_set(err, 0, "separator must be one byte other than the quote and newline");
        return AQ_EINVAL;
    }
    if ((o->escape > 0 && (o->escape == o->sep || o->escape == o->quote || o->escape == '\n')) ||
        (o->comment > 0 && (o->comment == o->sep || o->comment == o->quote))) {
        aq_csv_err_set(err, 0,
                       "the escape and comment bytes must differ from the separator and "
                       "the quote");
        return AQ_EINVAL;
    }
    s.d.quote = o->quote == AQ_CSV_QUOTE_AUTO ? '"' : (char)o->quote;
    for (size_t i = 0; i < n && o->comment == AQ_CSV_QUOTE_AUTO; i++) {
        if (!sm[i].file_start)
            continue;
        const char *p = sm[i].p, *end = p + sm[i].len;
        if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
            p += 3;
        while (p < end && (*p == '\n' || *p == '\r'))
            p++;
        /* a file whose first line alone starts with '#' names its columns there (numpy's
         * savetxt header) or holds a title: a row, which the header and preamble rules judge */
        if (p < end && *p == '#' && memmem(p, (size_t)(end - p), "\n#", 2))
            s.d.comment = '#';
    }
    if (o->comment != AQ_CSV_QUOTE_AUTO)
        s.d.comment = (char)o->comment;
    s.fill = o->fill;
    s.strict = o->strict;
    const char *const *nal = o->na;
    size_t nna = o->nna;
    aq_csv_na dna = aq_csv_na_default();
    if (!nal) {
        nal = dna.s;
        nna = dna.n;
    }
    s.na = calloc(nna ? nna : 1, sizeof *s.na);
    if (!s.na)
        goto fail;
    for (size_t i = 0; i < nna; i++) {
        if (!(s.na[i] = strdup(nal[i])))
            goto fail;
        s.nna = i + 1;
    }
    if ((rc = guess_sep(sm, n, o, &s.d)) != 0) {
        if (rc == AQ_EPARSE)
            aq_csv_err_set(err, 0, "no rows in the sample");
        goto fail;
    }
    if ((rc = find_table(sm, n, &s.d, o->skip, &s.skip, &s.stop_line)) != 0)
        goto fail;
    s.decimal = o->decimal ? o->decimal : guess_decimal(sm, n, &s.d);
    size_t mode, widest;
    double share;
    if ((rc = sep_score(sm, n, &s.d, s.skip, s.stop_line, &mode, &share, &widest, NULL)) != 0) {
        if (rc == AQ_EPARSE)
            aq_csv_err_set(err, 0, "no rows in the sample");
        goto fail;
    }
    rc = AQ_ENOMEM;
    if (s.fill)
        mode = widest; /* fill pads short rows, so the widest sampled row sets the width */
    if (mode == 0 || mode > UINT32_MAX)
        mode = 1;
    /* a header may name more columns than the rows fill: those are the frame's too (NA in the
     * rows), so no name is lost; the first row's width counts until its last non-empty field */
    size_t rows_mode = mode, hw = named_width(sm, n, &s.d, s.skip);
    if (hw > mode && hw <= UINT32_MAX && o->header != AQ_CSV_HEADER_NO)
        mode = hw;
    s.ncols = (uint32_t)mode;
    aq_csv_na na = aq_csv_setup_na(&s);

    st = calloc(s.ncols, sizeof *st);
    fr.v = calloc(s.ncols, sizeof *fr.v);
    fr.text = calloc(s.ncols, sizeof *fr.text);
    fr.kind = calloc(s.ncols, sizeof *fr.kind);
    fr.iv = calloc(s.ncols, sizeof *fr.iv);
    recurs = calloc(s.ncols, sizeof *recurs);
    aq_csv_vkind *rk = calloc(s.ncols, sizeof *rk);
    int64_t *riv = calloc(s.ncols, sizeof *riv);
    size_t seq_rows = 0; /* sampled data rows of consecutive integers */
    if (!st || !fr.v || !fr.text || !fr.kind || !fr.iv || !recurs || !rk || !riv) {
        free(rk);
        free(riv);
        goto fail;
    }
    frn = s.ncols;
    bool have_first = false;
    size_t data_rows = 0;
    for (size_t i = 0; i < n; i++) {
        aq_csv_tok t;
        aq_csv_tok_init(&t, sm[i].p, sm[i].len, &s.d, 1, sm[i].file_start);
        t.lenient = true;
        bool first = sm[i].file_start && !have_first;
        size_t r = 0;
        while (r < GUESS_ROWS && aq_csv_tok_next(&t, NULL) == 1) {
            if (sm[i].file_start && t.row_line <= s.skip)
                continue;
            if (sm[i].file_start && s.stop_line && t.row_line >= s.stop_line)
                break;
            r++;
            size_t nf = t.nfields < s.ncols ? t.nfields : s.ncols;
            if (first) {
                first = false;
                have_first = true;
                fr.n = nf;
                for (size_t j = 0; j < nf; j++) {
                    const aq_csv_field *f = &t.fields[j];
                    int64_t iv;
                    double dv;
                    aq_csv_vkind k =
                        aq_csv_classify_dec(f->p, f->len, f->quoted, &na, s.decimal, &iv, &dv);
                    fr.text[j] = k == AQ_CSV_V_TEXT;
                    fr.kind[j] = k;
                    fr.iv[j] = iv;
                    if (!(fr.v[j] = dup_n(f->p, f->len))) {
                        aq_csv_tok_free(&t);
                        goto fail;
                    }
                }
                continue;
            }
            data_rows++;
            for (size_t j = 0; j < nf; j++) {
                const aq_csv_field *f = &t.fields[j];
                int64_t iv;
                double dv;
                aq_csv_vkind k =
                    aq_csv_classify_dec(f->p, f->len, f->quoted, &na, s.decimal, &iv, &dv);
                rk[j] = k;
                riv[j] = iv;
                switch (k) {
                case AQ_CSV_V_INT:
                    st[j].ints++;
                    break;
                case AQ_CSV_V_FLOAT:
                    st[j].floats++;
                    break;
                case AQ_CSV_V_TIME:
                    st[j].times++;
                    break;
                case AQ_CSV_V_TEXT:
                    st[j].texts++;
                    break;
                default:
                    break;
                }
                if (j < fr.n && fr.v[j] && strlen(fr.v[j]) == f->len &&
                    memcmp(fr.v[j], f->p, f->len) == 0)
                    recurs[j] = true;
            }
            seq_rows += nf == s.ncols && consecutive(rk, riv, nf);
        }
        aq_csv_tok_free(&t);
    }
    free(rk);
    free(riv);

    /* header */
    if (o->header != AQ_CSV_HEADER_AUTO) {
        s.header = o->header == AQ_CSV_HEADER_YES && have_first;
    } else if (have_first) {
        bool any_text_over_numbers = false, all_text = fr.n > 0, distinct = true, recur = false;
        for (size_t j = 0; j < fr.n; j++) {
            aq_csv_type ty = stat_type(&st[j]);
            if (fr.text[j] && ty != AQ_CSV_T_NONE && ty != AQ_CSV_T_CAT)
                any_text_over_numbers = true;
            all_text &= fr.text[j];
            recur |= recurs[j];
            for (size_t k = 0; k < j; k++)
                if (strcmp(fr.v[j], fr.v[k]) == 0)
                    distinct = false;
        }
        /* numbers above a column of text alone (years over names), or consecutive integers
         * no data row repeats (column numbers): a header of numbers */
        bool nums_over_text = false;
        for (size_t j = 0; j < fr.n; j++)
            if ((fr.kind[j] == AQ_CSV_V_INT || fr.kind[j] == AQ_CSV_V_FLOAT) && st[j].texts >= 2 &&
                st[j].ints + st[j].floats + st[j].times == 0)
                nums_over_text = true;
        bool numbered =
            fr.n == s.ncols && consecutive(fr.kind, fr.iv, fr.n) && seq_rows == 0 && data_rows > 0;
        s.header =
            any_text_over_numbers || (all_text && distinct && !recur) || nums_over_text || numbered;
    }
    if (!s.header)
        s.ncols = (uint32_t)rows_mode; /* a wide first row of data is a long row, repaired */
    /* a first row that is data feeds the type guess too */
    if (have_first && !s.header) {
        for (size_t j = 0; j < fr.n; j++) {
            int64_t iv;
            double dv;
            aq_csv_vkind k =
                aq_csv_classify_dec(fr.v[j], strlen(fr.v[j]), false, &na, s.decimal, &iv, &dv);
            st[j].ints += k == AQ_CSV_V_INT;
            st[j].floats += k == AQ_CSV_V_FLOAT;
            st[j].times += k == AQ_CSV_V_TIME;
            st[j].texts += k == AQ_CSV_V_TEXT;
        }
    }

    s.names = calloc(s.ncols, sizeof *s.names);
    s.types = calloc(s.ncols, sizeof *s.types);
    s.forced = calloc(s.ncols, sizeof *s.forced);
    if (!s.names || !s.types || !s.forced)
        goto fail;
    for (uint32_t j = 0; j < s.ncols; j++) {
        const char *nm = s.header && j < fr.n ? fr.v[j] : "";
        size_t len = strlen(nm);
        while (len && (*nm == ' ' || *nm == '\t')) {
            nm++;
            len--;
        }
        while (len && (nm[len - 1] == ' ' || nm[len - 1] == '\t'))
            len--;
        char gen[32];
        if (len == 0) {
            len = (size_t)snprintf(gen, sizeof gen, "C%u", j + 1);
            nm = gen;
        }
        if (!(s.names[j] = dup_n(nm, len)))
            goto fail;
        /* dedupe: the later copy gets the first free _k suffix */
        for (unsigned k = 2;; k++) {
            bool clash = false;
            for (uint32_t i = 0; i < j && !clash; i++)
                clash = strcmp(s.names[i], s.names[j]) == 0;
            if (!clash)
                break;
            char *nn = malloc(len + 16);
            if (!nn)
                goto fail;
            snprintf(nn, len + 16, "%.*s_%u", (int)len, nm, k);
            free(s.names[j]);
            s.names[j] = nn;
        }
        s.types[j] = stat_type(&st[j]);
    }
    for (size_t i = 0; i < o->ntypes; i++) {
        const char *c = o->types[i].col;
        uint32_t idx = UINT32_MAX;
        for (uint32_t j = 0; j < s.ncols && idx == UINT32_MAX; j++)
            if (strcmp(s.names[j], c) == 0)
                idx = j;
        if (idx == UINT32_MAX) {
            char *e;
            unsigned long v = strtoul(c, &e, 10);
            if (*c >= '0' && *c <= '9' && *e == 0 && v >= 1 && v <= s.ncols)
                idx = (uint32_t)(v - 1);
        }
        if (idx == UINT32_MAX || (unsigned)o->types[i].type > AQ_CSV_T_STR) {
            aq_csv_err_set(err, 0, "--types: no column '%s' (the file has %u columns)", c, s.ncols);
            rc = AQ_EINVAL;
            goto fail;
        }
        s.types[idx] = o->types[i].type;
        s.forced[idx] = true;
    }
    rc = 0;
    *out = s;
    memset(&s, 0, sizeof s);
fail:
    if (fr.v)
        for (size_t j = 0; j < frn; j++)
            free(fr.v[j]);
    free(fr.v);
    free(fr.text);
    free(fr.kind);
    free(fr.iv);
    free(recurs);
    free(st);
    if (rc)
        aq_csv_setup_free(&s);
    return rc;
}

/* Rows that end at CR alone (classic Mac files: the head sample holds CRs and no LF), or at LF
 * then CR (nearly every LF of the head sample is followed by a CR, which would otherwise start
 * the next row's first field): read with every CR as an LF (LF CR then ends a row and leaves a
 * blank line, which is skipped). */
static bool cr_rows(const aq_csv_sample *sm, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!sm[i].file_start || !sm[i].len)
            continue;
        const char *p = sm[i].p, *end = p + sm[i].len;
        if (!memchr(p, '\r', sm[i].len))
            return false;
        size_t lf = 0, lfcr = 0;
        for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) {
            lf++;
            lfcr += q + 1 < end && q[1] == '\r';
        }
        return lf == 0 || (lfcr >= 2 && (double)lfcr >= 0.9 * (double)lf);
    }
    return false;
}

int aq_csv_setup_guess(const aq_csv_sample *sm, size_t n, const aq_csv_opts *opts,
                       aq_csv_setup *out, aq_csv_err *err) {
    if (!cr_rows(sm, n))
        return guess(sm, n, opts, out, err);
    /* the guess reads copies with LFs, as the parse will read the file (aq_csv_split.cr_rows);
     * the other blocks were trimmed at LFs, so only the head is worth reading */
    aq_csv_sample one = {NULL, 0, true};
    char *copy = NULL;
    for (size_t i = 0; i < n && !copy; i++) {
        if (!sm[i].file_start)
            continue;
        if (!(copy = malloc(sm[i].len + 1)))
            return AQ_ENOMEM;
        for (size_t k = 0; k < sm[i].len; k++)
            copy[k] = sm[i].p[k] == '\r' ? '\n' : sm[i].p[k];
        one = (aq_csv_sample){copy, sm[i].len, true};
    }
    int rc = guess(&one, 1, opts, out, err);
    free(copy);
    if (rc == 0)
        out->cr_rows = true;
    return rc;
}
