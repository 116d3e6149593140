/* aq_csv_summary: per-chunk column summaries that merge exactly across chunks.
 *
 * Numeric and time columns keep count, NA count, min, max, mean and M2 (the sum of squared
 * deviations from the mean). Within a chunk mean and M2 come from two passes; chunks merge with
 * Chan et al.'s pairwise formula, which keeps the cluster-wide mean and standard deviation as
 * accurate as one pass over all values (no catastrophic cancellation as with sum of squares).
 * Categorical chunks count each distinct string (levels, sorted); merging adds counts by level
 * string, so chunk-local domains need no prior agreement. String chunks keep rows and NA only:
 * their distinct values are as many as the rows, and a summary never moves the data.
 */
#ifndef AQ_CSV_SUMMARY_H
#define AQ_CSV_SUMMARY_H

#include "aq_csv_col.h"

#include <stdint.h>

typedef struct aq_csv_sum {
    aq_csv_type type;
    uint64_t rows, na;
    uint64_t n; /* non-NA values (numeric: those that are not NaN) */
    double min, max, mean, m2;
    /* CAT: the distinct values, sorted, and how often each occurs (STR: none) */
    uint32_t nlev;
    char **lev;
    uint32_t *lev_len;
    uint64_t *count;
} aq_csv_sum;

int aq_csv_sum_col(const aq_csv_col *c, aq_csv_sum *s);
/* a += b; the types must agree (NONE merges with anything). */
int aq_csv_sum_merge(aq_csv_sum *a, const aq_csv_sum *b);
/* Sample standard deviation (n - 1 in the denominator, as pandas); NaN below two values and when
 * an infinity is among them (the mean is then an infinity or NaN, as pandas gives too). */
double aq_csv_sum_sd(const aq_csv_sum *s);
void aq_csv_sum_free(aq_csv_sum *s);

/* Partial summaries travel up the reduction tree: versioned, checksummed; decoding refuses
 * anything malformed (levels not strictly sorted, counts above rows, ...) with AQ_EPROTO. */
int aq_csv_sum_encode(const aq_csv_sum *s, uint8_t **out, size_t *len);
int aq_csv_sum_decode(const uint8_t *p, size_t len, aq_csv_sum *s);

#endif
