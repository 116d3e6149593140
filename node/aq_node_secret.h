/* aq_node_secret: the cluster secret file, shared by aquiferd and aquifer.
 *
 * A secret file holds at least AQ_NODE_SECRET_MIN random bytes (at most AQ_NODE_SECRET_MAX) and
 * must be a regular file that neither group nor others may read or write: anything else is refused
 * with a sentence saying why, so a leaked or truncated secret never silently weakens the cluster.
 * `aquifer secret new PATH` makes one with mode 0600 and never overwrites an existing file.
 */
#ifndef AQ_NODE_SECRET_H
#define AQ_NODE_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define AQ_NODE_SECRET_MIN 32u
#define AQ_NODE_SECRET_MAX 4096u
#define AQ_NODE_SECRET_NEW 64u /* bytes written by aq_node_secret_new */

/* 0 with *out (free with aq_node_secret_free) and *len; or a negative code and why filled with a
 * sentence fragment ("/x/secret is readable by group or others (mode 0644); chmod 600 it"). */
int aq_node_secret_read(const char *path, uint8_t **out, size_t *len, char *why, size_t whylen);
void aq_node_secret_free(uint8_t *s, size_t len);
/* Creates path with AQ_NODE_SECRET_NEW random bytes, mode 0600; AQ_EEXIST if it exists. */
int aq_node_secret_new(const char *path, char *why, size_t whylen);

#endif
