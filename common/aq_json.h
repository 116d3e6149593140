/* aq_json: the pieces of JSON output that the command and the node's HTTP server write alike.
 *
 * Strings come out as valid JSON whatever bytes they hold: quotes and backslashes escaped, control
 * characters as \u00XX, valid UTF-8 (RFC 3629: no overlongs, surrogates or code points past
 * U+10FFFF) copied, and any other byte as U+FFFD, so a stray byte in a peer's reply can never break
 * the document around it.
 */
#ifndef AQ_JSON_H
#define AQ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* True when p holds n bytes of valid UTF-8. */
bool aq_json_utf8_ok(const void *p, size_t n);
/* The length of the valid UTF-8 character at p (of n > 0 bytes), or 0 when none starts there. */
size_t aq_json_utf8_seq(const void *p, size_t n);
/* A string literal, quotes included. */
void aq_json_str(FILE *f, const void *p, size_t n);
/* An object member after others: `, "name": v`. */
void aq_json_u64(FILE *f, const char *name, uint64_t v);

#endif
