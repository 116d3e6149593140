#include "aq_csv_tok.h"

#include "aq_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aq_csv_err_set(aq_csv_err *err, uint64_t line, const char *fmt, ...) {
    if (!err)
        return;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

void aq_csv_tok_init(aq_csv_tok *t, const char *buf, size_t len, const aq_csv_dialect *d,
                     uint64_t first_line, bool file_start) {
    memset(t, 0, sizeof *t);
    t->p = buf;
    t->end = len ? buf + len : buf; /* an empty buffer may be NULL: no arithmetic on it */
    t->d = *d;
    t->line = first_line;
    if (file_start && len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        t->p += 3;
}

void aq_csv_tok_free(aq_csv_tok *t) {
    free(t->fields);
    free(t->soff);
    free(t->scratch);
    t->fields = NULL;
    t->soff = NULL;
    t->scratch = NULL;
}

static int push_field(aq_csv_tok *t, const char *p, size_t len, bool quoted, size_t soff,
                      const char *raw) {
    if (t->nfields == t->fields_cap) {
        size_t cap = t->fields_cap ? t->fields_cap * 2 : 16;
        aq_csv_field *f = realloc(t->fields, cap * sizeof *f);
        if (!f)
            return AQ_ENOMEM;
        t->fields = f;
        size_t *so = realloc(t->soff, cap * sizeof *so);
        if (!so)
            return AQ_ENOMEM;
        t->soff = so;
        t->fields_cap = cap;
    }
    t->soff[t->nfields] = soff;
    t->fields[t->nfields++] = (aq_csv_field){p, len, quoted, raw};
    return 0;
}

/* Always leaves scratch allocated, so an empty unescaped field still points somewhere. */
static int scratch_put(aq_csv_tok *t, const char *p, size_t n) {
    if (!t->scratch || t->scratch_len + n > t->scratch_cap) {
        size_t cap = t->scratch_cap ? t->scratch_cap : 256;
        while (cap < t->scratch_len + n)
            cap *= 2;
        char *s = realloc(t->scratch, cap);
        if (!s)
            return AQ_ENOMEM;
        t->scratch = s;
        t->scratch_cap = cap;
    }
    if (n)
        memcpy(t->scratch + t->scratch_len, p, n);
    t->scratch_len += n;
    return 0;
}

/* The first byte at or after p that is a or b, or NULL. */
static const char *next2(const char *p, const char *end, char a, char b) {
    for (; p < end; p++)
        if (*p == a || *p == b)
            return p;
    return NULL;
}

/* An unquoted field under an escape byte: "\x" is x (but an escape before the line end is a
 * byte, so rows end where the cutter sees them end). */
static int escaped_field(aq_csv_tok *t, const char **pp) {
    const char *s = *pp, *p = s, *end = t->end, *seg = s;
    const char sep = t->d.sep, esc = t->d.escape, q = t->d.quote;
    size_t soff = t->scratch_len;
    bool any = false, stray = false;
    while (p < end && *p != sep && *p != '\n') {
        if (*p == esc && p + 1 < end && p[1] != '\n' && p[1] != '\r') {
            if (scratch_put(t, seg, (size_t)(p - seg)))
                return AQ_ENOMEM;
            any = true;
            seg = p + 1;
            p += 2;
            continue;
        }
        stray |= q && *p == q;
        p++;
    }
    const char *fe = p;
    if (fe > seg && fe[-1] == '\r' && (p == end || *p == '\n'))
        fe--;
    if (stray)
        t->repair = "a quote inside an unquoted field";
    *pp = p;
    if (!any)
        return push_field(t, s, (size_t)(fe - s), false, SIZE_MAX, s);
    if (scratch_put(t, seg, (size_t)(fe - seg)))
        return AQ_ENOMEM;
    return push_field(t, NULL, t->scratch_len - soff, false, soff, s);
}

/* Reads a quoted field starting at the opening quote; *pp ends at the separator or newline that
 * follows (or the end). A field that needs unescaping is built in scratch; since scratch may move
 * while the row grows, such fields get their pointer only when the row is complete (see fixup). */
static int quoted_field(aq_csv_tok *t, const char **pp, aq_csv_err *err) {
    const char *p = *pp + 1, *end = t->end;
    const char q = t->d.quote;
    uint64_t start_line = t->line;
    const char *seg = p;
    bool escaped = false;
    size_t soff = t->scratch_len;
    const char esc = t->d.escape;
    for (;;) {
        const char *nq = esc ? next2(p, end, q, esc) : memchr(p, q, (size_t)(end - p));
        if (nq && esc && *nq == esc && *nq != q) {
            if (nq + 1 == end) { /* nothing to escape: an ordinary byte */
                for (const char *c = p; c < nq; c++)
                    t->line += *c == '\n';
                p = nq + 1;
                continue;
            }
            for (const char *c = p; c <= nq + 1; c++)
                t->line += *c == '\n';
            if (scratch_put(t, seg, (size_t)(nq - seg)))
                return AQ_ENOMEM;
            escaped = true;
            seg = nq + 1; /* the escaped byte is kept */
            p = nq + 2;
            continue;
        }
        if (!nq && t->lenient) {
            /* the quote opened nothing: its bytes are data, up to the separator or line end */
            const char *s = *pp, *c = s;
            while (c < end && *c != t->d.sep && *c != '\n')
                c++;
            size_t n = (size_t)(c - s);
            if (n && s[n - 1] == '\r' && (c == end || *c == '\n'))
                n--;
            t->line = start_line;
            t->scratch_len = soff;
            t->repair = "a quoted field is never closed";
            *pp = c;
            return push_field(t, s, n, false, SIZE_MAX, s);
        }
        if (!nq) {
            aq_csv_err_set(err, start_line, "line %llu: quoted field is never closed",
                           (unsigned long long)start_line);
            return AQ_EPARSE;
        }
        for (const char *c = p; c < nq; c++)
            t->line += *c == '\n';
        if (nq + 1 < end && nq[1] == q) {
            if (scratch_put(t, seg, (size_t)(nq + 1 - seg)))
                return AQ_ENOMEM;
            escaped = true;
            p = seg = nq + 2;
            continue;
        }
        /* the closing quote: bytes after it up to the separator or line end are kept literally */
        const char *lit = nq + 1, *c = lit;
        while (c < end && *c != t->d.sep && *c != '\n')
            c++;
        const char *lit_end = c;
        if (lit_end > lit && lit_end[-1] == '\r' && (c == end || *c == '\n'))
            lit_end--;
        int rc;
        if (lit_end > lit)
            t->repair = "bytes after a closing quote";
        if (!escaped && lit_end == lit) {
            rc = push_field(t, seg, (size_t)(nq - seg), true, SIZE_MAX, *pp);
        } else {
            if (scratch_put(t, seg, (size_t)(nq - seg)) ||
                scratch_put(t, lit, (size_t)(lit_end - lit)))
                return AQ_ENOMEM;
            rc = push_field(t, NULL, t->scratch_len - soff, true, soff, *pp);
        }
        if (rc)
            return rc;
        *pp = c;
        return 0;
    }
}

static bool blank_or_comment(const aq_csv_tok *t, const char *p) {
    const char *end = t->end;
    if (*p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n')))
        return true;
    return t->d.comment && *p == t->d.comment;
}

int aq_csv_tok_next(aq_csv_tok *t, aq_csv_err *err) {
    const char sep = t->d.sep, q = t->d.quote;
    for (;;) {
        t->nfields = 0;
        t->scratch_len = 0;
        t->repair = NULL;
        const char *p = t->p, *end = t->end;
        if (p >= end)
            return 0;
        t->row_line = t->line;
        t->row_start = p;
        if (blank_or_comment(t, p)) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            t->p = nl ? nl + 1 : end;
            t->line += nl != NULL;
            continue;
        }
        for (;;) {
            if (q && p < end && *p == q) {
                int rc = quoted_field(t, &p, err);
                if (rc)
                    return rc;
            } else if (t->d.escape) {
                if (escaped_field(t, &p))
                    return AQ_ENOMEM;
            } else {
                const char *s = p;
                while (p < end && *p != sep && *p != '\n')
                    p++;
                size_t len = (size_t)(p - s);
                if (len && s[len - 1] == '\r' && (p == end || *p == '\n'))
                    len--;
                if (q && len && memchr(s, q, len))
                    t->repair = "a quote inside an unquoted field";
                if (push_field(t, s, len, false, SIZE_MAX, s))
                    return AQ_ENOMEM;
            }
            if (p < end && *p == sep) {
                p++;
                while (t->d.skipsp && p < end && *p == ' ')
                    p++;
                continue;
            }
            t->row_end = p > t->row_start && p[-1] == '\r' ? p - 1 : p;
            if (p < end && *p == '\n') {
                p++;
                t->line++;
            }
            break;
        }
        for (size_t i = 0; i < t->nfields; i++)
            if (t->soff[i] != SIZE_MAX)
                t->fields[i].p = t->scratch + t->soff[i];
        t->p = p;
        return 1;
    }
}
