/* aq_csv_setup: decides how to read a CSV file from samples of it (like H2O's ParseSetup, but
 * from several places in the file, not only its start) and holds that decision.
 *
 * The separator is the candidate (, ; tab | space \x01) whose field counts agree best across the
 * sampled rows (space only when 90% of rows agree: text often holds spaces); near-ties go to
 * more columns, then the earlier candidate; with no candidate giving 2+ fields the file has one
 * column. Quoting is on with '"'. Lines starting with '#' are comments when the file's
 * first line is one. The first row is a header when some column holds numbers or timestamps below a
 * text name, or when every column is text and the first row's values are distinct and never recur
 * below (a file of one text row is a header only), or when a number stands over a column of text
 * alone, or when it holds consecutive integers (column numbers) that no data row does. Names come
 * from the header, trimmed; empty or missing ones become C<n>; duplicates get _2, _3 ... Each
 * column's type is the narrowest that holds every sampled value. Every option the caller sets
 * (separator, quote, header, NA list, types by name or 1-based index) wins over the guess, and
 * forced types are kept by the parser for every piece.
 *
 * Categoricals: a text column is categorical while it has at most AQ_CSV_CAT_MAX distinct values,
 * string beyond that (65,536: codes of a merged domain still fit 16 bits; a column with more
 * distinct values is usually an identifier or free text, where a domain only costs memory).
 * The guess says categorical for any text column; each chunk and the merge apply the cap.
 */
#ifndef AQ_CSV_SETUP_H
#define AQ_CSV_SETUP_H

#include "aq_csv_tok.h"
#include "aq_csv_value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_CSV_CAT_MAX 65536u

/* Ordered so that numeric widening is a max: NONE (no value seen) < INT < FLOAT. */
typedef enum aq_csv_type {
    AQ_CSV_T_NONE = 0,
    AQ_CSV_T_INT = 1,
    AQ_CSV_T_FLOAT = 2,
    AQ_CSV_T_TIME = 3,
    AQ_CSV_T_CAT = 4,
    AQ_CSV_T_STR = 5,
} aq_csv_type;

/* "none", "int", "float", "time", "categorical", "string". */
const char *aq_csv_type_name(aq_csv_type t);
/* Also accepts "real", "numeric", "double", "enum", "cat", "factor", "str", "date". */
int aq_csv_type_parse(const char *s, aq_csv_type *t);

typedef struct aq_csv_type_opt {
    const char *col; /* a column name, or its 1-based index as digits */
    aq_csv_type type;
} aq_csv_type_opt;

enum { AQ_CSV_HEADER_AUTO = -1, AQ_CSV_HEADER_NO = 0, AQ_CSV_HEADER_YES = 1 };
enum { AQ_CSV_QUOTE_AUTO = -1 };

typedef struct aq_csv_opts {
    char sep;   /* 0: guess */
    int header; /* AQ_CSV_HEADER_* */
    int quote;  /* AQ_CSV_QUOTE_AUTO, 0 (off) or the quote character */
    const char *const *na;
    size_t nna; /* na == NULL: the default list ("" and "NA") */
    const aq_csv_type_opt *types;
    size_t ntypes;
    bool fill;    /* the widest sampled row sets ncols (short rows are padded either way) */
    bool strict;  /* an irregular row fails the parse instead of being repaired and counted */
    int escape;   /* AQ_CSV_QUOTE_AUTO, 0 (none) or the escape byte */
    int comment;  /* AQ_CSV_QUOTE_AUTO, 0 (none) or the comment byte */
    long skip;    /* -1: guess; else lines before the header (or first row) to skip */
    int skipsp;   /* -1: guess; 0 or 1: spaces after a separator belong to the field or not */
    char decimal; /* 0: guess; '.' or ',' */
} aq_csv_opts;

/* Options with everything guessed. */
aq_csv_opts aq_csv_opts_default(void);

typedef struct aq_csv_setup {
    aq_csv_dialect d;
    bool header;
    bool fill;
    bool strict;
    uint64_t skip;      /* lines 1..skip are not read (a preamble) */
    uint64_t stop_line; /* 0, or the first line not read (a second table or a footer follows) */
    char decimal;       /* '.', or ',' when the file writes decimals with a comma */
    bool cr_rows; /* rows end at CR alone: the split turns CRs into LFs (aq_csv_split.cr_rows) */
    uint32_t ncols;
    char **names;
    aq_csv_type *types; /* guessed or forced */
    bool *forced;       /* true: the user chose this type; parse keeps it in every piece */
    char **na;
    size_t nna;
} aq_csv_setup;

/* The block at the file's start is its first AQ_CSV_SAMPLE_HEAD bytes (or the whole file, when
 * shorter: then the guess knows it saw the end, e.g. of a footer). */
#define AQ_CSV_SAMPLE_HEAD (1u << 20)

/* A block of the file. The block at offset 0 has file_start set (BOM and header live there);
 * others should hold whole rows (aq_csv_sample_trim). */
typedef struct aq_csv_sample {
    const char *p;
    size_t len;
    bool file_start;
} aq_csv_sample;

/* The whole rows inside a block cut from the middle of a file: drops the bytes up to and
 * including the first LF and those after the last LF. Returns the length, *off the start. */
size_t aq_csv_sample_trim(const char *p, size_t len, size_t *off);

/* AQ_EINVAL for a bad option (err says which: unknown column, bad separator); AQ_EPARSE when the
 * samples hold no row. out is only filled on success; free it with aq_csv_setup_free. */
int aq_csv_setup_guess(const aq_csv_sample *samples, size_t n, const aq_csv_opts *opts,
                       aq_csv_setup *out, aq_csv_err *err);
void aq_csv_setup_free(aq_csv_setup *s);

aq_csv_na aq_csv_setup_na(const aq_csv_setup *s);

/* The setup travels to every node that parses pieces: versioned, checksummed; decoding refuses
 * anything malformed with AQ_EPROTO and leaves *s untouched. */
int aq_csv_setup_encode(const aq_csv_setup *s, uint8_t **out, size_t *len);
int aq_csv_setup_decode(const uint8_t *p, size_t len, aq_csv_setup *s);

#endif
