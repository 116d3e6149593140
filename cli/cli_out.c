/* Output helpers of the command: error sentences, exit codes, JSON strings, sizes, progress bar. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "aq_json.h"
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

static size_t put_cut(char *dst, size_t off, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n > cap - 1 - off)
        n = cap - 1 - off;
    memcpy(dst + off, s, n);
    return off + n;
}

void cli_what_set(char *dst, size_t cap, const char *verb, const char *arg) {
    size_t off = put_cut(dst, 0, cap, verb);
    if (arg) {
        off = put_cut(dst, off, cap, " ");
        off = put_cut(dst, off, cap, arg);
    }
    dst[off] = 0;
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

bool cli_utf8_ok(const void *p, size_t n) {
    return aq_json_utf8_ok(p, n);
}

/* The length of the character at s[i] (of n bytes) when it may be shown as it is, else 0. */
static size_t shown_len(const char *s, size_t n, size_t i) {
    unsigned char b = (unsigned char)s[i];
    return b < 0x20 || b == 0x7f ? 0 : aq_json_utf8_seq(s + i, n - i);
}

void cli_text_safe(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = shown_len(s, n, i);
        if (l)
            i += l;
        else
            s[i++] = '?';
    }
}

void cli_put_text(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t l = shown_len(s, n, i);
        if (l) {
            fwrite(s + i, 1, l, f);
            i += l;
        } else {
            fputc('?', f);
            i++;
        }
    }
}

const char *cli_key_why(const void *key, size_t n, char *buf, size_t cap) {
    static const char rule[] = "a key is 1 to 255 bytes of UTF-8 without control characters";
    const uint8_t *k = key;
    if (n == 0) {
        snprintf(buf, cap, "%s; this one is empty", rule);
        return buf;
    }
    if (n > AQ_NODE_KEY_MAX) {
        snprintf(buf, cap, "%s; this one is %zu bytes", rule, n);
        return buf;
    }
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x20 || k[i] == 0x7f) {
            snprintf(buf, cap, "%s; this one has a control character, 0x%02x, at byte %zu", rule,
                     k[i], i + 1);
            return buf;
        }
    if (cli_utf8_ok(key, n)) /* length and control bytes were checked above */
        return NULL;
    /* The longest valid prefix ends where the bad sequence starts (a key is at most 255 bytes). */
    size_t good = 0;
    for (size_t i = 1; i <= n; i++)
        if (cli_utf8_ok(key, i))
            good = i;
    snprintf(buf, cap, "%s; this one is not valid UTF-8 from byte %zu", rule, good + 1);
    return buf;
}

void cli_json_str(FILE *f, const void *p, size_t n) {
    aq_json_str(f, p, n);
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
