/* aq_csv_tok: splits a buffer of CSV text (one piece of a file) into rows and fields.
 *
 * A dialect names the separator, the quote character (0: quoting off) and a comment character
 * (0: none; a line whose first byte is it is skipped). Rows end at LF; a CR right before the LF
 * is dropped; a final row without a newline is still a row. Lines that are empty (or only a CR)
 * are skipped but still counted, so line numbers are those an editor shows. A field is quoted
 * only when its first byte is the quote: inside it, separators and newlines are data and a doubled
 * quote stands for one; bytes after the closing quote up to the separator are kept literally.
 * A quote elsewhere in an unquoted field is an ordinary byte. A UTF-8 BOM is skipped when the
 * buffer is the start of the file.
 *
 * Fields point into the buffer (zero copy); only a quoted field with doubled quotes is unescaped,
 * into the tokenizer's scratch space, and stays valid until the next call to aq_csv_tok_next.
 */
#ifndef AQ_CSV_TOK_H
#define AQ_CSV_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct aq_csv_dialect {
    char sep;
    char quote;   /* 0: quotes are ordinary bytes */
    char comment; /* 0: no comment lines */
    char escape;  /* 0, or a byte that makes the next one literal (backslash), in any field */
    bool skipsp;  /* spaces right after a separator are not part of the field (", " files) */
} aq_csv_dialect;

/* Where and why parsing failed; line is 1-based (0 when no line applies). */
typedef struct aq_csv_err {
    uint64_t line;
    char msg[200];
} aq_csv_err;

typedef struct aq_csv_field {
    const char *p;
    size_t len;
    bool quoted;
    const char *raw; /* where the field starts in the buffer (its opening quote, if quoted) */
} aq_csv_field;

typedef struct aq_csv_tok {
    const char *p, *end;
    aq_csv_dialect d;
    uint64_t line;     /* line number of the next unread byte */
    uint64_t row_line; /* line the current row starts on */
    aq_csv_field *fields;
    size_t nfields, fields_cap;
    size_t *soff; /* per field: offset in scratch, or SIZE_MAX when it points into the buffer */
    char *scratch;
    size_t scratch_len, scratch_cap;
    bool lenient; /* set by the caller: repair a quote never closed instead of failing */
    const char *row_start, *row_end; /* the current row's bytes (row_end: before its CR LF) */
    const char *repair; /* NULL, or why the current row was repaired (a quote out of place) */
} aq_csv_tok;

/* first_line: the line number of buf[0] in the file (1 for the first piece). */
void aq_csv_tok_init(aq_csv_tok *t, const char *buf, size_t len, const aq_csv_dialect *d,
                     uint64_t first_line, bool file_start);

/* 1: a row is in t->fields[0..nfields); 0: no more rows; AQ_ENOMEM; AQ_EPARSE when a quoted
 * field is still open at the end of the buffer (err names the line it started on), unless
 * t->lenient: then that field is read as unquoted bytes from its opening quote (so the rows after
 * it are rows again) and t->repair says so. t->repair also notes, without changing how the row
 * is read, a quote inside an unquoted field and bytes after a closing quote (both kept as
 * written). */
int aq_csv_tok_next(aq_csv_tok *t, aq_csv_err *err);

void aq_csv_tok_free(aq_csv_tok *t);

/* Sets err's line and message (printf style); a NULL err is ignored. */
void aq_csv_err_set(aq_csv_err *err, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
