/* aq_csv_col: typed column chunks parsed from one piece of a CSV file, the per-chunk type
 * observations the cluster merges into final column types, and the in-memory widenings.
 *
 * A chunk holds `rows` values of one type and an NA bitmap (bit set = missing):
 *   INT   narrowest signed width (1, 2, 4 or 8 bytes) that holds the chunk's min..max
 *   FLOAT doubles; TIME int64 milliseconds since 1970-01-01 UTC
 *   CAT   a chunk-local domain of sorted, unique strings and one uint32 code per row
 *   STR   per-row offsets (rows + 1) into one byte array
 *   NONE  every row missing: no values at all
 * NA rows hold 0 (or code 0, or an empty string) so encodings are deterministic.
 *
 * Agreeing on types: parse each piece (force == NULL) and take each chunk's aq_csv_obs; merge
 * the observations of all chunks of a column (aq_csv_obs_merge) and decide with
 * aq_csv_obs_final. Then bring each chunk to the final type: aq_csv_col_widen does NONE -> any,
 * INT -> FLOAT and CAT -> STR in memory; anything else (numbers or times becoming text) re-parses
 * the piece with the final types forced, so text keeps exactly the bytes of the file. Pieces and
 * chunks live on the same nodes, so the piece is at hand. Under a forced type a value that does
 * not fit (text in an int column) becomes NA and is counted in obs.invalid.
 */
#ifndef AQ_CSV_COL_H
#define AQ_CSV_COL_H

#include "aq_csv_setup.h"
#include "aq_csv_tok.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct values are estimated with a k-minimum-values sketch of 64-bit hashes of the text:
 * exact up to this many, mergeable across chunks, and a bounded size per column. */
#define AQ_CSV_SKETCH 1024
/* Line numbers of repaired rows kept per column observation (the first ones of the file). */
#define AQ_CSV_REPAIR_LINES 100

typedef struct aq_csv_obs {
    aq_csv_type kind; /* the widest kind the chunk holds */
    uint64_t rows, na, invalid;
    double min, max;          /* over INT/FLOAT values (as doubles) or TIME milliseconds */
    bool fractional;          /* some number had a fraction or exponent */
    bool numeric, time, text; /* which kinds of values were seen at all (numeric: real numbers) */
    bool nan;                 /* a NaN spelling was seen (a float NaN beside numbers, else text) */
    bool bigint; /* an integer beyond +-2^53 was seen (exact as int, not as a double) */
    /* the shape the date-times were written in (aq_csv_parse_time_shape, fraction digits
     * aside), whether they were written in more than one (then they could not all be written
     * back as they were), and whether dates alone were seen too */
    uint8_t tshape;
    bool tmixed, tdates;
    uint32_t nsketch;
    uint64_t sketch[AQ_CSV_SKETCH]; /* sorted ascending, unique */
    /* Rows the parse repaired (a short row padded, a long row folded, a quote out of place):
     * counted in the first column's observation only, so merging column 0 gives the piece's or
     * the frame's count; the smallest line numbers, ascending. */
    uint64_t repaired;
    uint32_t nrepair;
    uint64_t repair_line[AQ_CSV_REPAIR_LINES];
} aq_csv_obs;

typedef struct aq_csv_strs {
    uint32_t n;
    uint32_t *off; /* n + 1 offsets into bytes */
    char *bytes;
} aq_csv_strs;

typedef struct aq_csv_col {
    aq_csv_type type;
    uint8_t width;  /* INT: bytes per value */
    uint8_t tshape; /* TIME: how its values are written back (aq_csv_format_time_shape) */
    uint32_t rows;
    uint8_t *na;      /* (rows + 7) / 8 bytes */
    void *vals;       /* INT: int8/16/32/64; FLOAT: double; TIME: int64; CAT: uint32 codes */
    aq_csv_strs text; /* CAT: the domain; STR: the values */
    aq_csv_obs obs;
} aq_csv_col;

/* One piece of the file: the bytes, the line its first byte is on, and whether it is the start of
 * the file (then a BOM and, with setup->header, the header row are skipped). */
typedef struct aq_csv_piece {
    const char *p;
    size_t len;
    uint64_t first_line;
    bool file_start;
} aq_csv_piece;

/* Parses a piece into setup->ncols chunks (*cols, an array the caller frees with
 * aq_csv_cols_free). force: NULL, or a type per column that every value is read as. str_hint:
 * NULL, or per column true when the column is already known to be string in the whole frame (a
 * string chunk elsewhere, see aq_csv_obs_final): an unforced hinted column is built as STR at
 * once, without classifying its values or building a domain (its obs say STR, with rows and NA).
 * Irregular rows are repaired and counted (cols[0].obs.repaired and .repair_line): a short row is
 * padded with NA; a long row keeps its extra fields in the last column, which holds the rest of
 * the row as the file wrote it (separators and quotes included); a quote never closed is a byte
 * (see aq_csv_tok). With setup->strict the first such row fails the parse with AQ_EPARSE and
 * "line N: k fields, expected m" (or the quote's trouble) in err instead. Rows that start on
 * setup->stop_line or later are not read. At most UINT32_MAX rows. */
int aq_csv_parse(const aq_csv_piece *piece, const aq_csv_setup *setup, const aq_csv_type *force,
                 const bool *str_hint, aq_csv_col **cols, aq_csv_err *err);

void aq_csv_col_free(aq_csv_col *c);
void aq_csv_cols_free(aq_csv_col *cols, uint32_t n);

static inline bool aq_csv_col_is_na(const aq_csv_col *c, uint32_t row) {
    return (c->na[row >> 3] >> (row & 7)) & 1;
}
/* INT and TIME values; 0 for NA rows. */
int64_t aq_csv_col_int(const aq_csv_col *c, uint32_t row);
/* Any numeric or time value as a double; NaN for NA rows and text. */
double aq_csv_col_num(const aq_csv_col *c, uint32_t row);
/* CAT and STR values as pointer + length; NULL for NA rows and other types. */
const char *aq_csv_col_str(const aq_csv_col *c, uint32_t row, size_t *len);

/* Folds b into a (same column, other chunk). */
void aq_csv_obs_merge(aq_csv_obs *a, const aq_csv_obs *b);
/* The column's final type: NONE when no value anywhere; INT when only integers; FLOAT when only
 * numbers (and NaN spellings) and no integer beyond 2^53; TIME when only timestamps, all
 * written in one shape; otherwise
 * (text, NaN spellings without a number, times with numbers or in several shapes, floats beside
 * integers a double cannot hold) categorical while the estimated distinct count is
 * at most AQ_CSV_CAT_MAX and no chunk was string, else string. */
aq_csv_type aq_csv_obs_final(const aq_csv_obs *o);
/* Estimated distinct values (exact while below AQ_CSV_SKETCH). */
double aq_csv_obs_distinct(const aq_csv_obs *o);

/* In-memory conversions (see above). AQ_EINVAL when this one needs a re-parse. */
int aq_csv_col_widen(aq_csv_col *c, aq_csv_type to);

/* Serialized chunk: versioned, little-endian, with an xxh3 checksum. Decoding checks every
 * length, offset, code and the checksum and answers AQ_EPROTO (or AQ_ENOMEM) for anything off,
 * leaving *c untouched. obs is not part of the encoding (see aq_csv_obs_encode). */
int aq_csv_col_encode(const aq_csv_col *c, uint8_t **out, size_t *len);
/* The same encoding at *buf + room (*len bytes), the room in front left to the caller (a message
 * head), so the encoding is sent from where it was written. */
int aq_csv_col_encode_room(const aq_csv_col *c, size_t room, uint8_t **buf, size_t *len);
int aq_csv_col_decode(const uint8_t *p, size_t len, aq_csv_col *c);

int aq_csv_obs_encode(const aq_csv_obs *o, uint8_t **out, size_t *len);
int aq_csv_obs_decode(const uint8_t *p, size_t len, aq_csv_obs *o);

#endif
