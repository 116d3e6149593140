/* aq_csv_domain: categorical domains, from chunk-local to cluster-wide.
 *
 * Each categorical chunk parses with its own domain (sorted, unique strings) and codes into it.
 * The cluster folds the chunks' domains into one sorted union (aq_csv_domain_union, associative
 * and commutative, so any reduction tree gives the same result), ships it (encode/decode,
 * checked like chunks), and every chunk re-codes its rows against it (aq_csv_col_recode), so equal
 * strings have equal codes in every chunk and codes order like the strings.
 */
#ifndef AQ_CSV_DOMAIN_H
#define AQ_CSV_DOMAIN_H

#include "aq_csv_col.h"

#include <stddef.h>
#include <stdint.h>

/* out = sorted union of a and b (both sorted and unique). AQ_ETOOBIG past 4 GiB of text. */
int aq_csv_domain_union(const aq_csv_strs *a, const aq_csv_strs *b, aq_csv_strs *out);
/* A copy of a chunk's domain (an empty domain for non-categorical chunks). */
int aq_csv_domain_of(const aq_csv_col *c, aq_csv_strs *out);
/* Re-codes a CAT chunk against dom, which must hold every level the chunk uses (AQ_EINVAL
 * otherwise, and the chunk is unchanged); the chunk then carries a copy of dom. */
int aq_csv_col_recode(aq_csv_col *c, const aq_csv_strs *dom);
void aq_csv_strs_free(aq_csv_strs *s);

int aq_csv_domain_encode(const aq_csv_strs *d, uint8_t **out, size_t *len);
/* AQ_EPROTO for anything malformed, including a domain that is not strictly sorted. */
int aq_csv_domain_decode(const uint8_t *p, size_t len, aq_csv_strs *d);

#endif
