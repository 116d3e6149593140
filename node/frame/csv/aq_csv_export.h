/* aq_csv_export: writes rows of column chunks back as CSV text that aq_csv reads back to the
 * same values.
 *
 * Numbers print as the shortest text that strtod turns back into the same double (integers as
 * integers); times as "YYYY-MM-DD[ HH:MM:SS[.mmm]]"; NA as an empty field. Text is quoted (with
 * doubled quotes) when it holds the separator, a quote, CR or LF, starts or ends with a space or
 * tab, starts with '#' or a UTF-8 BOM, is empty, would read back as NA (opts->na) or NaN, or looks
 * like a number or time (aq_csv reads those as numbers even quoted; the quotes tell other readers).
 * A row of one NA column would be a blank line, which readers skip, so it is written as "" instead
 * (empty, hence NA on reading). Rows end with LF.
 */
#ifndef AQ_CSV_EXPORT_H
#define AQ_CSV_EXPORT_H

#include "aq_bytes.h"
#include "aq_csv_col.h"

#include <stdint.h>

typedef struct aq_csv_export_opts {
    char sep;            /* 0: ',' */
    bool header;         /* write names first */
    const aq_csv_na *na; /* text equal to one of these is quoted; NULL: the default list */
} aq_csv_export_opts;

/* Appends rows [begin, end) of cols[0..ncols) (chunks of the same rows) to out. names: ncols
 * strings, used when opts->header (no header when NULL). AQ_EINVAL when the chunks disagree on rows
 * or the range is bad; AQ_ENOMEM when out failed to grow. */
int aq_csv_export(const aq_csv_col *cols, uint32_t ncols, const char *const *names, uint32_t begin,
                  uint32_t end, const aq_csv_export_opts *opts, aq_wr *out);

#endif
