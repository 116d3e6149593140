/* Output helpers of the command: error sentences, exit codes, JSON strings, sizes, progress bar. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_exit_err(int exit_code) {
    switch (exit_code) {
    case CLI_OK:
        return 0;
    case CLI_USAGE:
        return AQ_EINVAL;
    case CLI_NOTFOUND:
        return AQ_ENOTFOUND;
    case CLI_UNREACH:
        return AQ_EUNAVAIL;
    default:
        return AQ_EIO;
    }
}

int cli_fail(cli *c, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int err = code < 0 ? code : cli_exit_err(code);
    int exit_code = code < 0 ? cli_exit_code(code) : code;
    if (!c) {
        fprintf(stderr, "aquifer: %s\n", msg);
        return exit_code;
    }
    if (c->what)
        snprintf(c->fail_msg, sizeof c->fail_msg, "%.400s: %.600s", c->what, msg);
    else
        snprintf(c->fail_msg, sizeof c->fail_msg, "%.1000s", msg);
    c->fail_err = err;
    if (c->fail_sink)
        snprintf(c->fail_sink, c->fail_sink_cap, "%s", c->fail_msg);
    else if (!c->quiet)
        fprintf(stderr, "aquifer: %s\n", c->fail_msg);
    return exit_code;
}

void cli_warn(cli *c, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[1400];
    if (c->what)
        snprintf(line, sizeof line, "%.370s: %.1000s", c->what, msg);
    else
        snprintf(line, sizeof line, "%s", msg);
    if (!c->quiet)
        fprintf(stderr, "aquifer: %s\n", line);
    else if (c->on_warn)
        c->on_warn(c->warn_ud, line);
}

int cli_exit_code(int err) {
    switch (err) {
    case 0:
        return CLI_OK;
    case AQ_ENOTFOUND:
        return CLI_NOTFOUND;
    case AQ_ETIMEDOUT:
    case AQ_EUNAVAIL:
    case AQ_ECLOSED:
    case AQ_ERESTARTED:
    case AQ_EBUSY:
    case AQ_EAUTH:
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ECONNRESET:
        return CLI_UNREACH;
    default:
        return CLI_ERROR;
    }
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or > U+10FFFF), or 0.
 */
static size_t utf8_seq(const uint8_t *p, size_t n) {
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool cli_utf8_ok(const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(s + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

void cli_json_str(FILE *f, const void *p, size_t n) {
    const uint8_t *s = p;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        uint8_t ch = s[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\u%04x", ch);
            i++;
        } else {
            size_t l = utf8_seq(s + i, n - i);
            if (l) {
                fwrite(s + i, 1, l, f);
                i += l;
            } else {
                /* Keys are UTF-8 by contract; a stray byte still yields valid JSON. */
                fputs("\\ufffd", f);
                i++;
            }
        }
    }
    fputc('"', f);
}

void cli_digest_hex(aq_node_digest d, char out[33]) {
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)d.hi, (unsigned long long)d.lo);
}

void cli_human_size(uint64_t n, char *buf, size_t cap) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (n < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
        return;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

void cli_human_ms(uint64_t ms, char *buf, size_t cap) {
    uint64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, cap, "%llu.%01llus", (unsigned long long)s,
                 (unsigned long long)(ms % 1000 / 100));
    else if (s < 3600)
        snprintf(buf, cap, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, cap, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else
        snprintf(buf, cap, "%llud%02lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
}

#define PROGRESS_MIN (8u << 20) /* smaller transfers finish before a bar is worth drawing */

void cli_progress_start(cli_progress *p, const char *label, uint64_t total) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->last_shown = -1;
    p->on = isatty(STDERR_FILENO) && (total == 0 || total > PROGRESS_MIN);
}

void cli_progress_begin(const cli *c, cli_progress *p, const char *label, uint64_t total) {
    cli_progress_start(p, label, total);
    if (c->quiet)
        p->on = false; /* the library never prints */
}

void cli_progress_add(cli_progress *p, uint64_t n) {
    p->done += n;
    if (!p->on || (p->total == 0 && p->done < PROGRESS_MIN))
        return;
    char d[32];
    cli_human_size(p->done, d, sizeof d);
    if (p->total) {
        int pct = (int)(p->done * 100 / p->total);
        if (pct == p->last_shown)
            return;
        p->last_shown = pct;
        char t[32], bar[31];
        cli_human_size(p->total, t, sizeof t);
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %3d%% %s / %s", p->label, bar, pct, d, t);
    } else {
        fprintf(stderr, "\r%s %s", p->label, d);
    }
    fputs("\033[K", stderr);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (p->on && p->last_shown != -1) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    } else if (p->on && p->total == 0 && p->done >= PROGRESS_MIN) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->on = false;
}
