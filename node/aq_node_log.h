/* aq_node_log: leveled, timestamped log lines on a stream (stderr for aquiferd).
 *
 * One line per event: "2026-11-24T14:03:07.123Z INFO  n1: message". The logger is a value owned by
 * main and passed down, so there is no global logging state; a NULL logger discards messages.
 */
#ifndef AQ_NODE_LOG_H
#define AQ_NODE_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum { AQ_LOG_ERROR = 0, AQ_LOG_WARN = 1, AQ_LOG_INFO = 2, AQ_LOG_DEBUG = 3 };

typedef struct aq_log {
    FILE *out;
    int level;    /* lines above this level are dropped */
    char who[64]; /* the node's name */
} aq_log;

void aq_log_init(aq_log *log, FILE *out, int level, const char *who);
/* "error", "warn", "info", "debug" -> level, or -1. */
int aq_log_level_parse(const char *s);
void aq_logf(const aq_log *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aq_vlogf(const aq_log *log, int level, const char *fmt, va_list ap);

#endif
