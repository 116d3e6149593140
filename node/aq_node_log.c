#include "aq_node_log.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

void aq_log_init(aq_log *log, FILE *out, int level, const char *who) {
    log->out = out;
    log->level = level;
    snprintf(log->who, sizeof log->who, "%s", who ? who : "");
}

int aq_log_level_parse(const char *s) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void aq_vlogf(const aq_log *log, int level, const char *fmt, va_list ap) {
    static const char *tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
    if (!log || !log->out || level > log->level)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = snprintf(
        line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
        tags[level < 0   ? 0
             : level > 3 ? 3
                         : level],
        log->who);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* One fputs per line so that lines from threads never interleave mid-line. */
    size_t len = strnlen(line, sizeof line - 2);
    line[len] = '\n';
    line[len + 1] = 0;
    fputs(line, log->out);
    fflush(log->out);
}

void aq_logf(const aq_log *log, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    aq_vlogf(log, level, fmt, ap);
    va_end(ap);
}
