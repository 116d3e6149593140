/* aq_csv_cut: finds true row ends in a stream, so a file can be cut into pieces of bounded size
 * that each hold whole rows, reading every byte once and keeping at most one piece in memory.
 *
 * aq_csv_cutter is the quote-aware state machine: fed successive blocks of the file, it knows the
 * offset just after the last LF that ends a row (an LF inside a quoted field does not) and how many
 * LFs came before it, so every piece knows the line number it starts on. Quotes open a field only
 * at its first byte and comment lines are skipped whole, exactly as aq_csv_tok reads them, so
 * cutter and tokenizer always agree on where rows end.
 *
 * aq_csv_split builds on it: push blocks of any size, and it calls back with pieces of at most
 * max_piece bytes, each ending at a row end (the last one may lack a final newline). A row longer
 * than max_piece is an error naming its first line; so is a quoted field still open at the end.
 * Lenient splits (the parse's default) repair instead: a quote whose field would run past a full
 * buffer opened nothing (it is a byte, as the tokenizer reads a quote never closed), and the piece
 * ends at the first row end after it, so the tokenizer of that piece, which reads the quote the
 * same way once it finds no close, and the cutter agree where the next piece starts.
 *
 * The end of the table (aq_csv_split_table): the split passes on nothing from a given line (the
 * setup's stop_line), and finds where the table ends further on, as the setup does in the head
 * sample: at a blank line (outside quotes) after which the table's first row comes again, or
 * after which no row has the table's field count (at least two rows, or one that ends the file).
 * It looks at the rows after a blank line that are in its buffer (up to max_piece bytes; a blank
 * line near the end of a full buffer ends the piece before it, so the next buffer starts with it).
 * Once stopped, the rest is only counted (lines) and dropped; stop_line then names the first line
 * not passed on.
 * A caller that moves pieces on can spare two copies of every byte: read straight into the split's
 * buffer (aq_csv_split_space and _commit instead of _push), and take each piece's buffer from the
 * callback (aq_csv_split_take), with room reserved in front of it for a message header.
 */
#ifndef AQ_CSV_CUT_H
#define AQ_CSV_CUT_H

#include "aq_csv_tok.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct aq_csv_cutter {
    char sep, quote, comment, escape;
    bool skipsp;
    uint8_t state;          /* private */
    uint8_t bom;            /* private: BOM bytes seen at the start (3: decided) */
    uint64_t fed;           /* bytes fed so far */
    uint64_t lines;         /* LFs fed so far */
    uint64_t row_end;       /* offset just after the last row-ending LF (0: none yet) */
    uint64_t row_end_lines; /* LFs before row_end */
    uint64_t quote_line;    /* line on which the open quoted field started */
    uint64_t quote_off;     /* offset of the open quoted field's opening quote */
} aq_csv_cutter;

void aq_csv_cut_init(aq_csv_cutter *c, const aq_csv_dialect *d);
void aq_csv_cut_feed(aq_csv_cutter *c, const char *buf, size_t len);
/* True while the bytes fed so far end inside a quoted field. */
bool aq_csv_cut_in_quote(const aq_csv_cutter *c);

/* Called once per piece, in order; index counts from 0. A nonzero return stops the split and is
 * returned by push/finish. */
typedef int (*aq_csv_piece_fn)(void *ctx, const char *piece, size_t len, uint64_t first_line,
                               uint64_t index);

typedef struct aq_csv_split {
    aq_csv_cutter cut;
    char *mem; /* the allocation: headroom bytes, then buf */
    char *buf;
    size_t headroom; /* bytes reserved in front of every piece (aq_csv_split_take) */
    size_t cut_at;   /* during a callback: the piece's length (private) */
    bool taken;      /* during a callback: the piece's buffer was taken (private) */
    size_t len, max;
    uint64_t base;       /* file offset of buf[0] */
    uint64_t base_lines; /* LFs before buf[0] */
    uint64_t index;
    aq_csv_piece_fn fn;
    void *ctx;
    bool lenient; /* set by the caller: a quote still open at the end is the parse's to repair */
    bool cr_rows; /* set by the caller: rows end at CR alone (aq_csv_setup.cr_rows); each CR is
                     turned into an LF as the bytes come in, so pieces hold LF rows */
    aq_csv_dialect d;
    /* the table's end (aq_csv_split_table) */
    uint32_t ncols;     /* the table's field count; 0: no search for its end */
    uint64_t skip;      /* lines before the table (a preamble): their blank lines end nothing */
    uint64_t stop_line; /* 0, or the first line not passed on (given, or found) */
    bool stopped;       /* the table ended: bytes are counted, not kept */
    uint64_t judged;    /* private: blank lines before this offset are judged */
    char *first;        /* private: the table's first row (its bytes), once seen */
    size_t first_len;
    uint64_t first_line; /* private: its line (0: not seen yet) */
    uint64_t strays;     /* quotes found to open nothing (repaired by the parse) */
} aq_csv_split;

/* max_piece: the largest piece (e.g. 4 MiB); the split holds one buffer of that size. */
int aq_csv_split_init(aq_csv_split *s, const aq_csv_dialect *d, size_t max_piece,
                      aq_csv_piece_fn fn, void *ctx);
/* Looks for the end of the table of ncols fields whose first row follows line skip; stop_line
 * (not 0): nothing from that line on is passed on. Before the first push or commit. */
void aq_csv_split_table(aq_csv_split *s, uint32_t ncols, uint64_t skip, uint64_t stop_line);
/* Reserves headroom bytes in front of every piece's buffer; before the first push or commit. */
int aq_csv_split_reserve(aq_csv_split *s, size_t headroom);
/* AQ_ETOOBIG when a single row exceeds max_piece; err names its line. */
int aq_csv_split_push(aq_csv_split *s, const void *data, size_t len, aq_csv_err *err);
/* Where the next bytes can go without a copy: *room >= 1 bytes at *p (a full buffer emits a piece
 * first, so this may call back and fail like push). Then commit the n <= *room bytes written. */
int aq_csv_split_space(aq_csv_split *s, char **p, size_t *room, aq_csv_err *err);
void aq_csv_split_commit(aq_csv_split *s, size_t n);
/* Only inside the piece callback: the caller takes the buffer the piece lies in, to free() when
 * done; the piece starts headroom bytes into it, and the split goes on in a new buffer. NULL:
 * out of memory (nothing changed). */
char *aq_csv_split_take(aq_csv_split *s);
/* Emits the final piece; AQ_EPARSE when the file ends inside a quoted field (unless lenient). */
int aq_csv_split_finish(aq_csv_split *s, aq_csv_err *err);
void aq_csv_split_free(aq_csv_split *s);

#endif
