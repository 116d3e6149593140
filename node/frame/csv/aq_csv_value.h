/* aq_csv_value: what one CSV field means: missing, integer, float, timestamp or text.
 *
 * Fields arrive as pointer + length (never NUL-terminated). The rule that shapes every choice
 * here: a field is a number or a time only when writing the value back gives the field again,
 * up to the number normalisations node/frame/csv/README.md lists (`1.50` -> `1.5`, `+1` -> `1`,
 * blanks around a number dropped); anything else is text, kept byte for byte. So an integer with
 * a leading zero (`007`) or beyond int64 is text, and so is a time with more than millisecond
 * digits. A field is missing (NA) when it is empty or, blanks around it dropped, equals an entry
 * of the NA list; a field of blanks alone is text. A quoted field is only NA when it is empty and
 * "" is in the list, so a quoted "NA" stays the two-letter string. NaN spellings (nan, NaN, NAN,
 * any case, with a sign) are float NaN, not NA: a column that holds other text keeps them as
 * the text they were. Integers take a fast path (plain digits into int64); decimals are exact
 * (what strtod gives). Timestamps are ISO dates (2015-01-02), date-times (2015-01-02 03:04:05,
 * 2015-01-02T03:04:05.123Z) as milliseconds since 1970-01-01 UTC. Formatting prints the shortest
 * text that strtod reads back to the same double.
 */
#ifndef AQ_CSV_VALUE_H
#define AQ_CSV_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum aq_csv_vkind {
    AQ_CSV_V_NA = 0,
    AQ_CSV_V_INT,
    AQ_CSV_V_FLOAT,
    AQ_CSV_V_TIME,
    AQ_CSV_V_TEXT,
} aq_csv_vkind;

/* The missing-value spellings; entries are compared byte for byte with the trimmed field. Made
 * by aq_csv_na_make (or the two below), which notes the lengths: every field is checked, and a
 * field of a length no spelling has is ruled out without touching the list. */
typedef struct aq_csv_na {
    const char *const *s;
    size_t n;
    uint64_t lens;     /* bit min(length, 63) of each spelling */
    uint64_t first[4]; /* bit c: a spelling starts with byte c (the empty one: byte 0) */
} aq_csv_na;

/* s[0..n) must outlive the result. */
aq_csv_na aq_csv_na_make(const char *const *s, size_t n);
/* The default list: "" and "NA". */
aq_csv_na aq_csv_na_default(void);

bool aq_csv_is_na(const char *p, size_t len, bool quoted, const aq_csv_na *na);
/* nan in any case, with an optional sign and blanks around. */
bool aq_csv_is_nan_word(const char *p, size_t len);

/* Each returns true and sets *out only when the whole (trimmed) field is that kind. */
bool aq_csv_parse_int(const char *p, size_t len, int64_t *out);
bool aq_csv_parse_float(const char *p, size_t len, double *out);
bool aq_csv_parse_time(const char *p, size_t len, int64_t *ms);

/* How a time was written, so that it can be written back the same (aq_csv_format_time_shape):
 * 0 for a date alone (and for "no shape known": the canonical form); otherwise TIME (a time of
 * day follows the date), after a 'T' (T), with seconds (SEC), 0 to 3 fraction digits (FRAC),
 * then 'Z' (Z). A column's shape may also say TRIM (as few fraction digits as each value needs)
 * and DATES (values at midnight were written as a date alone). */
#define AQ_CSV_TS_TIME       0x01
#define AQ_CSV_TS_T          0x02
#define AQ_CSV_TS_SEC        0x04
#define AQ_CSV_TS_Z          0x08
#define AQ_CSV_TS_FRAC(n)    ((uint8_t)((n) << 4))
#define AQ_CSV_TS_FRAC_OF(s) (((s) >> 4) & 3)
#define AQ_CSV_TS_FRAC_MASK  0x30
#define AQ_CSV_TS_TRIM       0x40
#define AQ_CSV_TS_DATES      0x80
/* aq_csv_parse_time, and the shape the field was written in. */
bool aq_csv_parse_time_shape(const char *p, size_t len, int64_t *ms, uint8_t *shape);
/* A valid shape byte: 0, or TIME with its parts; TRIM only with seconds and no fixed fraction. */
bool aq_csv_time_shape_ok(uint8_t shape);

/* Classifies a field; *iv gets INT and TIME values, *dv INT and FLOAT values (as double) and,
 * for a TIME, its shape (aq_csv_parse_time_shape) as a double. */
aq_csv_vkind aq_csv_classify(const char *p, size_t len, bool quoted, const aq_csv_na *na,
                             int64_t *iv, double *dv);

/* aq_csv_classify for a file that writes decimals with a comma ("3,25"): a field with one comma
 * and no point is classified with a point in its place (so "3,25" is the float 3.25 and "1,5,2"
 * text); any other field, and every field when dec is not ',', as aq_csv_classify. */
aq_csv_vkind aq_csv_classify_dec(const char *p, size_t len, bool quoted, const aq_csv_na *na,
                                 char dec, int64_t *iv, double *dv);

/* Shortest round-tripping text for a double ("Inf", "-Inf" for infinities), with ".0" added
 * when it would otherwise read as an integer, so a float column stays float and -0.0 stays -0.0.
 * buf >= 32 bytes. Returns the length written (NUL-terminated). */
int aq_csv_format_double(double v, char *buf);

/* "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD HH:MM:SS.mmm", whichever keeps the value.
 * buf >= 40 bytes. Returns the length written. */
int aq_csv_format_time(int64_t ms, char *buf);
/* ms written in the given shape (0: as aq_csv_format_time), so a time read with that shape is
 * written back byte for byte. buf >= 40 bytes. Returns the length written. */
int aq_csv_format_time_shape(int64_t ms, uint8_t shape, char *buf);

#endif
