#include "aq_node_config.h"

#include "aq_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MEMORY_MAX    (1ull << 30)
#define DEFAULT_REPLICAS      1u
#define DEFAULT_MIN_COPIES    1u
#define DEFAULT_RUN_DIR       "/tmp/aquifer"
#define DEFAULT_REPAIR_AFTER  60000ull
#define DEFAULT_HEARTBEAT     500ull
#define DEFAULT_CALL_TIMEOUT  10000ull
#define DEFAULT_HELLO_TIMEOUT 5000ull
#define DEFAULT_REPAIR_EVERY  10000ull
#define DEFAULT_TOMBSTONE_TTL 3600000ull
#define DEFAULT_SCRUB_RATE    (64ull << 20)
/* Below this repair passes would follow each other with no pause. */
#define MIN_REPAIR_EVERY_MS 100ull
/* Below this the heartbeats alone would keep a loop thread busy. */
#define MIN_HEARTBEAT_MS 10ull
/* Below this a peer across a slow or lossy link could not get its HELLO in. */
#define MIN_HELLO_TIMEOUT_MS 100ull

/* cluster.example.conf is this text byte for byte; a test keeps the two from drifting. */
static const char default_text[] =
    "; aquifer cluster configuration. This file is also the built-in default of\n"
    "; `aquifer cluster up`: three nodes on this host, two copies of every chunk.\n"
    ";\n"
    "; Syntax: INI. A comment starts with ; or # at the start of a line, or with \" ;\"\n"
    "; (blank, semicolon) after a value. Section and key names are lowercase;\n"
    "; indentation is ignored; each key may appear once per section; a line holds\n"
    "; at most 198 bytes. Relative paths are taken relative to this file's directory;\n"
    "; a path, so made absolute, must fit a \"key = PATH\" line.\n"
    "; Any mistake (unknown key, bad value, duplicate node name or address, replicas\n"
    "; above the node count) stops everything with FILE:LINE and the key.\n"
    ";\n"
    "; Values:\n"
    ";   size      an integer with an optional unit: B; K or KiB, M or MiB, G or GiB,\n"
    ";             T or TiB (powers of 1024); KB, MB, GB, TB (powers of 1000). Units\n"
    ";             are case-insensitive. No fractions: write 1536MiB, not 1.5GiB.\n"
    ";   duration  an integer or decimal number with ms, s, m or h; a plain number is\n"
    ";             seconds (500ms, 1.5s, 2m, 1h). Whole milliseconds, at most 720h.\n"
    ";   boolean   yes/no, true/false, on/off, 1/0.\n"
    ";   name      1 to 63 of A-Z a-z 0-9 _ . -\n"
    ";   address   numeric ip:port, 127.0.0.1:54321 or [::1]:54321, port 1-65535.\n"
    ";             No host names; not 0.0.0.0, ::, broadcast or multicast, since\n"
    ";             peers must be able to reach it. UDP and TCP use the same port.\n"
    "\n"
    "[cluster]\n"
    "; Required. Every packet carries a hash of it: packets of other clusters are\n"
    "; dropped.\n"
    "name = demo\n"
    "; Copies of every chunk, 1 to the number of nodes. Default 1.\n"
    "replicas = 2\n"
    "; A put or rm that reaches fewer copies than this fails (exit 4); fewer than\n"
    "; replicas only warns. 1 to replicas; `--min-copies N` overrides. Default 1.\n"
    "min_copies = 1\n"
    "; Logs and pid files of `aquifer cluster up`. Default /tmp/aquifer.\n"
    "run_dir = /tmp/aquifer\n"
    "; A node down for this long has its chunks copied to other nodes. Default 60s.\n"
    "repair_after = 60s\n"
    "; How often each node runs a repair pass (offers its chunks to the nodes that\n"
    "; should hold them). Default 10s, at least 100ms.\n"
    "repair_interval = 10s\n"
    "; A removal leaves a marker that keeps older copies from coming back. A marker\n"
    "; is collected once it is this old and every configured node has been seen to\n"
    "; hold nothing older. Default 1h.\n"
    "tombstone_ttl = 1h\n"
    "; Each node re-reads and re-verifies the chunks it holds (memory and data_dir)\n"
    "; at most this many bytes per second; a corrupt copy is dropped and replaced from\n"
    "; another replica. A quarter of this while the node serves clients. 0 turns it\n"
    "; off. Default 64MiB/s.\n"
    "scrub_rate = 64MiB/s\n"
    "; Interval of the membership heartbeats; a node that misses several is suspect,\n"
    "; then down. Default 500ms, at least 10ms.\n"
    "heartbeat = 500ms\n"
    "; How long a call between nodes may take before it fails. Default 10s.\n"
    "call_timeout = 10s\n"
    "; A connection that has not introduced itself (a valid HELLO) within this long\n"
    "; is closed, so silent or slow connections cannot hold a node's resources.\n"
    "; Default 5s, at least 100ms.\n"
    "hello_timeout = 5s\n"
    "; File with the cluster secret: every packet and frame is then authenticated.\n"
    "; Optional; default none (no authentication).\n"
    ";secret_file = /etc/aquifer/secret\n"
    "; Encrypt the traffic too (needs secret_file). Default no.\n"
    "encrypt = no\n"
    "; File with the bearer token HTTP clients send (Authorization: Bearer TOKEN)\n"
    "; for everything but /livez and /readyz. Only with secret_file, and then\n"
    "; required when a node's http_address is not loopback. Default none.\n"
    ";http_token_file = /etc/aquifer/http-token\n"
    "\n"
    "; One section per member, [node NAME]; the name is case-sensitive.\n"
    "[node n1]\n"
    "; Required and unique: ip:port the node listens on.\n"
    "address = 127.0.0.1:54321\n"
    "; Optional and unique: directory where the node persists its chunks. Default\n"
    "; none: chunks live in memory only.\n"
    "data_dir = /tmp/aquifer/n1\n"
    "; Most bytes of chunks the node holds; a put beyond it fails. Default 1GiB.\n"
    "memory_max = 1GiB\n"
    "; Optional and unique: ip:port (TCP) of the node's HTTP server: /metrics\n"
    "; (Prometheus), /livez, /readyz, /status and a status page at /. Default\n"
    "; none: no HTTP.\n"
    "http_address = 127.0.0.1:54331\n"
    "\n"
    "[node n2]\n"
    "address = 127.0.0.1:54322\n"
    "data_dir = /tmp/aquifer/n2\n"
    "memory_max = 1GiB\n"
    "http_address = 127.0.0.1:54332\n"
    "\n"
    "[node n3]\n"
    "address = 127.0.0.1:54323\n"
    "data_dir = /tmp/aquifer/n3\n"
    "memory_max = 1GiB\n"
    "http_address = 127.0.0.1:54333\n";

const char *aq_node_config_default_text(void) {
    return default_text;
}

/* ---- value parsers ---- */

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Reads decimal digits into *v; *overflow is set when they do not fit. Returns the end. */
static const char *scan_u64(const char *p, uint64_t *v, bool *overflow) {
    *v = 0;
    *overflow = false;
    for (; is_digit(*p); p++) {
        if (__builtin_mul_overflow(*v, 10u, v) ||
            __builtin_add_overflow(*v, (unsigned)(*p - '0'), v))
            *overflow = true;
    }
    return p;
}

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1ull << 10},
    {"kib", 1ull << 10},
    {"kb", 1000ull},
    {"m", 1ull << 20},
    {"mib", 1ull << 20},
    {"mb", 1000000ull},
    {"g", 1ull << 30},
    {"gib", 1ull << 30},
    {"gb", 1000000000ull},
    {"t", 1ull << 40},
    {"tib", 1ull << 40},
    {"tb", 1000000000000ull},
};

static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
};

static const struct unit *find_unit(const struct unit *u, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(u[i].name, name) == 0)
            return &u[i];
    return NULL;
}

int aq_node_config_parse_size(const char *text, uint64_t *bytes) {
    if (!text || !bytes)
        return AQ_EINVAL;
    uint64_t v;
    bool overflow;
    const char *p = scan_u64(text, &v, &overflow);
    if (p == text)
        return AQ_EPARSE;
    while (is_blank(*p))
        p++;
    const struct unit *u = find_unit(size_units, sizeof size_units / sizeof *size_units, p);
    if (!u)
        return AQ_EPARSE;
    if (overflow || __builtin_mul_overflow(v, u->mult, &v))
        return AQ_ELIMIT;
    *bytes = v;
    return 0;
}

int aq_node_config_parse_duration(const char *text, uint64_t *ms) {
    if (!text || !ms)
        return AQ_EINVAL;
    uint64_t whole, frac = 0, scale = 1;
    bool overflow;
    const char *p = scan_u64(text, &whole, &overflow);
    if (p == text)
        return AQ_EPARSE;
    if (*p == '.') {
        const char *f = ++p;
        /* Nine decimals already go below a microsecond of an hour's unit; more is noise. */
        for (; is_digit(*p) && p - f < 9; p++) {
            frac = frac * 10 + (uint64_t)(*p - '0');
            scale *= 10;
        }
        if (p == f || is_digit(*p))
            return AQ_EPARSE;
    }
    while (is_blank(*p))
        p++;
    const struct unit *u =
        find_unit(duration_units, sizeof duration_units / sizeof *duration_units, p);
    if (!u)
        return AQ_EPARSE;
    /* frac < 1e9 and mult <= 3.6e6, so the product fits; it must be whole milliseconds. */
    uint64_t part = frac * u->mult;
    if (part % scale != 0)
        return AQ_EPARSE;
    uint64_t v;
    if (overflow || __builtin_mul_overflow(whole, u->mult, &v) ||
        __builtin_add_overflow(v, part / scale, &v) || v > AQ_NODE_CONFIG_MAX_MS)
        return AQ_ELIMIT;
    *ms = v;
    return 0;
}

int aq_node_config_parse_bool(const char *text, bool *value) {
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    if (!text || !value)
        return AQ_EINVAL;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return AQ_EPARSE;
}

/* Why an address that parsed is still refused, or NULL when it is usable. */
static const char *unreachable_reason(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        if (a == 0)
            return "is the wildcard address";
        if (a == 0xffffffffu)
            return "is the broadcast address";
        if ((a >> 28) == 0xe)
            return "is a multicast address";
        return NULL;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_UNSPECIFIED(a6))
        return "is the wildcard address";
    if (IN6_IS_ADDR_MULTICAST(a6))
        return "is a multicast address";
    return NULL;
}

/* Parses into node; on AQ_EINVAL *why says what is wrong with the address. */
static int parse_address(const char *text, aq_node_config_node *node, const char **why) {
    char ip[INET6_ADDRSTRLEN];
    const char *port_text;
    int family;
    *why = NULL;
    if (!text)
        return AQ_EINVAL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof ip)
            return AQ_EPARSE;
        memcpy(ip, text + 1, (size_t)(close - text - 1));
        ip[close - text - 1] = '\0';
        port_text = close + 2;
        family = AF_INET6;
    } else {
        const char *colon = strchr(text, ':');
        if (!colon || strchr(colon + 1, ':') || (size_t)(colon - text) >= sizeof ip)
            return AQ_EPARSE;
        memcpy(ip, text, (size_t)(colon - text));
        ip[colon - text] = '\0';
        port_text = colon + 1;
        family = AF_INET;
    }
    /* 1-5 digits without sign or leading zero, so every port has one spelling. */
    size_t nd = strspn(port_text, "0123456789");
    if (nd == 0 || nd > 5 || port_text[nd] != '\0' || port_text[0] == '0')
        return AQ_EPARSE;
    unsigned long port = strtoul(port_text, NULL, 10);
    if (port > 65535)
        return AQ_EPARSE;

    aq_node_config_node n;
    memset(&n.sockaddr, 0, sizeof n.sockaddr);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&n.sockaddr;
        if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
            return AQ_EPARSE;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &sin->sin_addr, n.ip, sizeof n.ip);
        snprintf(n.address, sizeof n.address, "%s:%lu", n.ip, port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&n.sockaddr;
        if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1)
            return AQ_EPARSE;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, n.ip, sizeof n.ip);
        snprintf(n.address, sizeof n.address, "[%s]:%lu", n.ip, port);
    }
    *why = unreachable_reason(&n.sockaddr);
    if (*why)
        return AQ_EINVAL;
    n.port = (uint16_t)port;
    memcpy(node->address, n.address, sizeof n.address);
    memcpy(node->ip, n.ip, sizeof n.ip);
    node->port = n.port;
    node->sockaddr = n.sockaddr;
    return 0;
}

int aq_node_config_parse_address(const char *text, aq_node_config_node *node) {
    const char *why;
    if (!node)
        return AQ_EINVAL;
    return parse_address(text, node, &why);
}

static bool valid_name(const char *s) {
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
    return n >= 1 && n <= AQ_NODE_NAME_MAX && s[n] == '\0';
}

/* ---- the loader ---- */

enum cluster_key {
    CK_NAME,
    CK_REPLICAS,
    CK_MIN_COPIES,
    CK_RUN_DIR,
    CK_REPAIR_AFTER,
    CK_HEARTBEAT,
    CK_CALL_TIMEOUT,
    CK_HELLO_TIMEOUT,
    CK_SECRET_FILE,
    CK_ENCRYPT,
    CK_HTTP_TOKEN_FILE,
    CK_REPAIR_INTERVAL,
    CK_TOMBSTONE_TTL,
    CK_SCRUB_RATE,
    CK_COUNT
};
static const char *const cluster_keys[CK_COUNT] = {
    "name",          "replicas",   "min_copies",      "run_dir",
    "repair_after",  "heartbeat",  "call_timeout",    "hello_timeout",
    "secret_file",   "encrypt",    "http_token_file", "repair_interval",
    "tombstone_ttl", "scrub_rate",
};
static const char cluster_keys_list[] = "name, replicas, min_copies, run_dir, repair_after, "
                                        "heartbeat, call_timeout, hello_timeout, secret_file, "
                                        "encrypt, http_token_file, repair_interval, "
                                        "tombstone_ttl, scrub_rate";

enum node_key { NK_ADDRESS, NK_DATA_DIR, NK_MEMORY_MAX, NK_HTTP_ADDRESS, NK_SCRUB_RATE, NK_COUNT };
static const char *const node_keys[NK_COUNT] = {"address", "data_dir", "memory_max", "http_address",
                                                "scrub_rate"};
static const char node_keys_list[] = "address, data_dir, memory_max, http_address, scrub_rate";

enum section { SEC_NONE, SEC_CLUSTER, SEC_NODE };

typedef struct loader {
    const char *origin;
    const char *buf;
    size_t len, pos;
    unsigned lineno;
    const char *base_dir; /* NULL: keep relative paths as written */
    size_t line_max;      /* the longest line inih takes (from its buffer), set by read_line */
    char *err;
    size_t errlen;
    int rc; /* first failure; 0 while all is well */
    unsigned err_line;
    enum section sec;
    unsigned cluster_line; /* 0: no [cluster] section yet */
    unsigned cluster_key_line[CK_COUNT];
    unsigned (*node_key_line)[NK_COUNT]; /* parallel to cfg->nodes */
    size_t cap;
    aq_node_config *cfg;
} loader;

static void fail(loader *l, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(loader *l, unsigned line, const char *fmt, ...) {
    if (l->rc)
        return;
    l->rc = AQ_ECONFIG;
    l->err_line = line;
    if (!l->err || !l->errlen)
        return;
    int n = line ? snprintf(l->err, l->errlen, "%s:%u: ", l->origin, line)
                 : snprintf(l->err, l->errlen, "%s: ", l->origin);
    if (n < 0 || (size_t)n >= l->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void fail_nomem(loader *l) {
    if (l->rc)
        return;
    l->rc = AQ_ENOMEM;
    if (l->err && l->errlen)
        snprintf(l->err, l->errlen, "%s: out of memory while loading", l->origin);
}

/* Writes s as a C-style quoted string, escaping what is not printable ASCII and cutting it
 * after 60 bytes, so that arbitrary input stays one readable line. Returns out. */
static char *quote(char out[static 256], const char *s) {
    size_t o = 0;
    out[o++] = '"';
    size_t i = 0;
    for (; s[i] && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            o += (size_t)sprintf(out + o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)sprintf(out + o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (s[i])
        o += (size_t)sprintf(out + o, "...");
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* "[cluster]" or "[node NAME]" for messages about the current section. */
static const char *section_label(const loader *l, char out[static 80]) {
    if (l->sec == SEC_CLUSTER)
        snprintf(out, 80, "[cluster]");
    else
        snprintf(out, 80, "[node %s]", l->cfg->nodes[l->cfg->nnodes - 1].name);
    return out;
}

static aq_node_config_node *cur_node(loader *l) {
    return &l->cfg->nodes[l->cfg->nnodes - 1];
}

/* A path value, made absolute against base_dir when relative. NULL (and a failure) otherwise. */
static char *make_path(loader *l, const char *key, const char *value) {
    char sec[80];
    if (!value[0]) {
        fail(l, l->lineno, "%s %s: the path is empty", section_label(l, sec), key);
        return NULL;
    }
    char buf[PATH_MAX];
    int n = value[0] == '/' || !l->base_dir
                ? snprintf(buf, sizeof buf, "%s", value)
                : snprintf(buf, sizeof buf, "%s/%s", l->base_dir, value);
    if (n < 0 || (size_t)n >= sizeof buf) {
        fail(l, l->lineno, "%s %s: the path is longer than %d bytes", section_label(l, sec), key,
             PATH_MAX - 1);
        return NULL;
    }
    /* The effective config is written back as "key = PATH" lines (aq_node_config_to_text), which
     * must load again: a path (made absolute) that no such line can hold is refused here. */
    size_t head = strlen(key) + 3; /* "key = " */
    size_t fit = l->line_max > head ? l->line_max - head : 0;
    if ((size_t)n > fit) {
        bool rel = value[0] != '/' && l->base_dir;
        fail(l, l->lineno,
             "%s %s: the path is %d bytes%s, more than the %zu a config line holds as \"%s = "
             "PATH\"",
             section_label(l, sec), key, n, rel ? " with the config's folder in front" : "", fit,
             key);
        return NULL;
    }
    char *p = strdup(buf);
    if (!p)
        fail_nomem(l);
    return p;
}

static void set_duration(loader *l, const char *key, const char *value, uint64_t min,
                         uint64_t *out) {
    char sec[80], q[256];
    uint64_t ms;
    int rc = aq_node_config_parse_duration(value, &ms);
    if (rc == AQ_ELIMIT) {
        fail(l, l->lineno, "%s %s: %s is longer than 720h", section_label(l, sec), key,
             quote(q, value));
    } else if (rc) {
        fail(l, l->lineno,
             "%s %s: %s is not a duration (use e.g. 500ms, 1.5s, 2m or 1h; whole milliseconds)",
             section_label(l, sec), key, quote(q, value));
    } else if (ms < min) {
        fail(l, l->lineno, "%s %s: %s is shorter than the minimum %llums", section_label(l, sec),
             key, quote(q, value), (unsigned long long)min);
    } else {
        *out = ms;
    }
}

/* A rate: a size (aq_node_config_parse_size) per second; the "/s" is optional. */
static bool set_rate(loader *l, const char *what, const char *value, uint64_t *out) {
    char buf[64], q[256];
    size_t vl = strlen(value);
    if (vl >= 2 && strcmp(value + vl - 2, "/s") == 0)
        vl -= 2;
    uint64_t v;
    int rc = vl < sizeof buf ? 0 : AQ_EPARSE;
    if (!rc) {
        memcpy(buf, value, vl);
        buf[vl] = 0;
        rc = aq_node_config_parse_size(buf, &v);
    }
    if (rc) {
        fail(l, l->lineno, "%s: %s is not a rate (use e.g. 64MiB/s, or 0 for off)", what,
             quote(q, value));
        return false;
    }
    *out = v;
    return true;
}

static void cluster_value(loader *l, enum cluster_key k, const char *value) {
    aq_node_config *cfg = l->cfg;
    char q[256];
    switch (k) {
    case CK_NAME:
        if (!valid_name(value))
            fail(l, l->lineno, "[cluster] name: %s is not a name (1 to 63 of A-Z a-z 0-9 _ . -)",
                 quote(q, value));
        else
            snprintf(cfg->name, sizeof cfg->name, "%s", value);
        break;
    case CK_REPLICAS: {
        uint64_t v;
        bool overflow;
        const char *end = scan_u64(value, &v, &overflow);
        if (end == value || *end)
            fail(l, l->lineno, "[cluster] replicas: %s is not a whole number", quote(q, value));
        else if (v == 0)
            fail(l, l->lineno, "[cluster] replicas: must be at least 1");
        else if (overflow || v > AQ_NODE_CONFIG_MAX_NODES)
            fail(l, l->lineno, "[cluster] replicas: %s is more than the limit of %d nodes",
                 quote(q, value), AQ_NODE_CONFIG_MAX_NODES);
        else
            cfg->replicas = (unsigned)v;
        break;
    }
    case CK_MIN_COPIES: {
        uint64_t v;
        bool overflow;
        const char *end = scan_u64(value, &v, &overflow);
        if (end == value || *end)
            fail(l, l->lineno, "[cluster] min_copies: %s is not a whole number", quote(q, value));
        else if (v == 0)
            fail(l, l->lineno, "[cluster] min_copies: must be at least 1");
        else if (overflow || v > AQ_NODE_CONFIG_MAX_NODES)
            fail(l, l->lineno, "[cluster] min_copies: %s is more than the limit of %d nodes",
                 quote(q, value), AQ_NODE_CONFIG_MAX_NODES);
        else
            cfg->min_copies = (unsigned)v;
        break;
    }
    case CK_RUN_DIR: {
        char *p = make_path(l, "run_dir", value);
        if (p) {
            free(cfg->run_dir);
            cfg->run_dir = p;
        }
        break;
    }
    case CK_SECRET_FILE:
        cfg->secret_file = make_path(l, "secret_file", value);
        break;
    case CK_REPAIR_AFTER:
        set_duration(l, "repair_after", value, 0, &cfg->repair_after_ms);
        break;
    case CK_HEARTBEAT:
        set_duration(l, "heartbeat", value, MIN_HEARTBEAT_MS, &cfg->heartbeat_ms);
        break;
    case CK_CALL_TIMEOUT:
        set_duration(l, "call_timeout", value, 1, &cfg->call_timeout_ms);
        break;
    case CK_HELLO_TIMEOUT:
        set_duration(l, "hello_timeout", value, MIN_HELLO_TIMEOUT_MS, &cfg->hello_timeout_ms);
        break;
    case CK_ENCRYPT:
        if (aq_node_config_parse_bool(value, &cfg->encrypt))
            fail(l, l->lineno, "[cluster] encrypt: %s is not yes or no", quote(q, value));
        break;
    case CK_HTTP_TOKEN_FILE:
        cfg->http_token_file = make_path(l, "http_token_file", value);
        break;
    case CK_REPAIR_INTERVAL:
        set_duration(l, "repair_interval", value, MIN_REPAIR_EVERY_MS, &cfg->repair_interval_ms);
        break;
    case CK_TOMBSTONE_TTL:
        set_duration(l, "tombstone_ttl", value, 0, &cfg->tombstone_ttl_ms);
        break;
    case CK_SCRUB_RATE:
        set_rate(l, "[cluster] scrub_rate", value, &cfg->scrub_rate);
        break;
    case CK_COUNT:
        break;
    }
}

static bool is_loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* The http address of node: parsed as an rpc address is, and unique among the http addresses of
 * the nodes before it. Clashes with rpc addresses are checked once all are known. */
static void node_http_address(loader *l, aq_node_config_node *node, const char *value) {
    aq_node_config *cfg = l->cfg;
    aq_node_config_node tmp;
    const char *why;
    char q[256];
    int rc = parse_address(value, &tmp, &why);
    if (rc == AQ_EINVAL) {
        fail(l, l->lineno,
             "[node %s] http_address: %s %s: give the ip to serve HTTP on (e.g. 127.0.0.1)",
             node->name, quote(q, value), why);
        return;
    }
    if (rc) {
        fail(l, l->lineno,
             "[node %s] http_address: %s is not a numeric ip:port (use e.g. 127.0.0.1:54331 or "
             "[::1]:54331, port 1-65535)",
             node->name, quote(q, value));
        return;
    }
    for (size_t i = 0; i + 1 < cfg->nnodes; i++) {
        if (strcmp(cfg->nodes[i].http_address, tmp.address) == 0) {
            fail(l, l->lineno,
                 "[node %s] http_address: %s is already the http_address of %s (line %u)",
                 node->name, tmp.address, cfg->nodes[i].name, l->node_key_line[i][NK_HTTP_ADDRESS]);
            return;
        }
    }
    memcpy(node->http_address, tmp.address, sizeof node->http_address);
    node->http_sockaddr = tmp.sockaddr;
    node->http_loopback = is_loopback(&tmp.sockaddr);
}

bool aq_node_config_http_token_required(const aq_node_config *cfg,
                                        const aq_node_config_node *node) {
    return cfg->secret_file && node->http_address[0] && !node->http_loopback;
}

static void node_value(loader *l, enum node_key k, const char *value) {
    aq_node_config *cfg = l->cfg;
    aq_node_config_node *node = cur_node(l);
    size_t self = cfg->nnodes - 1;
    char q[256];
    switch (k) {
    case NK_ADDRESS: {
        const char *why;
        int rc = parse_address(value, node, &why);
        if (rc == AQ_EINVAL) {
            fail(l, l->lineno,
                 "[node %s] address: %s %s, which peers cannot reach: give the node's own IP",
                 node->name, quote(q, value), why);
            return;
        }
        if (rc) {
            fail(l, l->lineno,
                 "[node %s] address: %s is not a numeric ip:port (use e.g. 127.0.0.1:54321 or "
                 "[::1]:54321, port 1-65535)",
                 node->name, quote(q, value));
            return;
        }
        for (size_t i = 0; i < self; i++) {
            if (l->node_key_line[i][NK_ADDRESS] &&
                strcmp(cfg->nodes[i].address, node->address) == 0) {
                fail(l, l->lineno, "[node %s] address: %s is already the address of %s (line %u)",
                     node->name, node->address, cfg->nodes[i].name,
                     l->node_key_line[i][NK_ADDRESS]);
                return;
            }
        }
        break;
    }
    case NK_DATA_DIR: {
        char *p = make_path(l, "data_dir", value);
        if (!p)
            return;
        for (size_t i = 0; i < self; i++) {
            if (cfg->nodes[i].data_dir && strcmp(cfg->nodes[i].data_dir, p) == 0) {
                fail(l, l->lineno, "[node %s] data_dir: %s is already the data_dir of %s (line %u)",
                     node->name, quote(q, p), cfg->nodes[i].name, l->node_key_line[i][NK_DATA_DIR]);
                free(p);
                return;
            }
        }
        node->data_dir = p;
        break;
    }
    case NK_MEMORY_MAX: {
        uint64_t v;
        int rc = aq_node_config_parse_size(value, &v);
        if (rc == AQ_ELIMIT)
            fail(l, l->lineno, "[node %s] memory_max: %s is too large (at most 16EiB - 1 bytes)",
                 node->name, quote(q, value));
        else if (rc)
            fail(l, l->lineno,
                 "[node %s] memory_max: %s is not a size (use e.g. 512MiB or 2GiB; no fractions)",
                 node->name, quote(q, value));
        else if (v == 0)
            fail(l, l->lineno, "[node %s] memory_max: must be more than 0", node->name);
        else
            node->memory_max = v;
        break;
    }
    case NK_HTTP_ADDRESS:
        node_http_address(l, node, value);
        break;
    case NK_SCRUB_RATE: {
        char what[AQ_NODE_NAME_MAX + 32];
        snprintf(what, sizeof what, "[node %s] scrub_rate", node->name);
        node->scrub_rate_set = set_rate(l, what, value, &node->scrub_rate);
        break;
    }
    case NK_COUNT:
        break;
    }
}

/* inih's handler. inih's own section argument is ignored: it is cut at 50 bytes and misses empty
 * sections, so the reader tracks sections itself (l->sec), in step with the lines it hands out. */
static int on_key(void *user, const char *section, const char *name, const char *value) {
    loader *l = user;
    char q[256], sec[80];
    if (l->rc)
        return 0;
    if (l->sec == SEC_NONE) {
        fail(l, l->lineno, "%s: key outside any section (start with [cluster] or [node NAME])",
             quote(q, name));
        return 0;
    }
    const char *const *keys = l->sec == SEC_CLUSTER ? cluster_keys : node_keys;
    size_t nkeys = l->sec == SEC_CLUSTER ? CK_COUNT : NK_COUNT;
    unsigned *lines =
        l->sec == SEC_CLUSTER ? l->cluster_key_line : l->node_key_line[l->cfg->nnodes - 1];
    size_t k = 0;
    while (k < nkeys && strcmp(keys[k], name) != 0)
        k++;
    if (k == nkeys) {
        fail(l, l->lineno, "%s %s: unknown key (known: %s)", section_label(l, sec), quote(q, name),
             l->sec == SEC_CLUSTER ? cluster_keys_list : node_keys_list);
        return 0;
    }
    if (lines[k]) {
        fail(l, l->lineno, "%s %s: given twice (first on line %u)", section_label(l, sec), name,
             lines[k]);
        return 0;
    }
    lines[k] = l->lineno;
    if (value[0] == ';') {
        /* Written back by aq_node_config_to_text as "key = ;...", it would read as a comment. */
        fail(l, l->lineno,
             "%s %s: a value cannot start with ';' (a comment needs a blank before it)",
             section_label(l, sec), name);
        return 0;
    }
    if (l->sec == SEC_CLUSTER)
        cluster_value(l, (enum cluster_key)k, value);
    else
        node_value(l, (enum node_key)k, value);
    return l->rc == 0;
}

static void add_node(loader *l, const char *name) {
    aq_node_config *cfg = l->cfg;
    char q[256];
    if (!valid_name(name)) {
        fail(l, l->lineno, "[node %s]: %s is not a node name (1 to 63 of A-Z a-z 0-9 _ . -)", name,
             quote(q, name));
        return;
    }
    for (size_t i = 0; i < cfg->nnodes; i++) {
        if (strcmp(cfg->nodes[i].name, name) == 0) {
            fail(l, l->lineno, "[node %s]: a second node named %s (first on line %u)", name, name,
                 cfg->nodes[i].line);
            return;
        }
    }
    if (cfg->nnodes == AQ_NODE_CONFIG_MAX_NODES) {
        fail(l, l->lineno, "[node %s]: more than %d nodes", name, AQ_NODE_CONFIG_MAX_NODES);
        return;
    }
    if (cfg->nnodes == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        aq_node_config_node *nodes = realloc(cfg->nodes, cap * sizeof *nodes);
        if (!nodes) {
            fail_nomem(l);
            return;
        }
        cfg->nodes = nodes;
        unsigned(*lines)[NK_COUNT] = realloc(l->node_key_line, cap * sizeof *lines);
        if (!lines) {
            fail_nomem(l);
            return;
        }
        l->node_key_line = lines;
        l->cap = cap;
    }
    aq_node_config_node *n = &cfg->nodes[cfg->nnodes];
    memset(n, 0, sizeof *n);
    memset(l->node_key_line[cfg->nnodes], 0, sizeof l->node_key_line[cfg->nnodes]);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->memory_max = DEFAULT_MEMORY_MAX;
    n->line = l->lineno;
    cfg->nnodes++;
    l->sec = SEC_NODE;
}

/* A "[...]" line (line is NUL-terminated, blanks stripped on the left). Mirrors inih's rule that
 * the header ends at the first ']' unless a " ;" comment comes first, then is stricter: only a
 * comment may follow the ']'. */
static void on_section_line(loader *l, const char *line) {
    char q[256];
    const char *p = line + 1;
    while (*p && *p != ']' && !(*p == ';' && is_blank(p[-1])))
        p++;
    if (*p != ']') {
        fail(l, l->lineno, "%s: a section header without its closing ]", quote(q, line));
        return;
    }
    const char *rest = p + 1;
    while (is_blank(*rest) || *rest == '\r')
        rest++;
    if (*rest && *rest != ';' && *rest != '#') {
        fail(l, l->lineno, "%s: text after the section header", quote(q, line));
        return;
    }
    char head[256];
    size_t n = (size_t)(p - line - 1);
    if (n >= sizeof head) {
        fail(l, l->lineno, "%s: not a known section (expected [cluster] or [node NAME])",
             quote(q, line));
        return;
    }
    memcpy(head, line + 1, n);
    head[n] = '\0';
    char *h = head;
    while (is_blank(*h))
        h++;
    while (n > 0 && is_blank(head[n - 1]))
        head[--n] = '\0';
    if (strcmp(h, "cluster") == 0) {
        if (l->cluster_line) {
            fail(l, l->lineno, "[cluster]: a second [cluster] section (first on line %u)",
                 l->cluster_line);
            return;
        }
        l->cluster_line = l->lineno;
        l->sec = SEC_CLUSTER;
    } else if (strncmp(h, "node", 4) == 0 && is_blank(h[4])) {
        h += 4;
        while (is_blank(*h))
            h++;
        add_node(l, h);
    } else if (strcmp(h, "node") == 0) {
        fail(l, l->lineno, "[node]: the node needs a name, as in [node n1]");
    } else {
        fail(l, l->lineno, "%s: not a known section (expected [cluster] or [node NAME])",
             quote(q, line));
    }
}

/* inih's line source: hands out one line per call, so l->lineno is the line inih is on. It also
 * refuses NUL bytes and over-long lines (which inih would silently split), and strips indentation
 * so that inih never takes an indented line for the continuation of the previous value. */
static char *read_line(char *str, int num, void *stream) {
    loader *l = stream;
    if (l->rc || l->pos >= l->len)
        return NULL;
    const char *start = l->buf + l->pos;
    const char *nl = memchr(start, '\n', l->len - l->pos);
    size_t n = nl ? (size_t)(nl - start) : l->len - l->pos;
    l->pos += n + (nl ? 1 : 0);
    l->lineno++;
    if (memchr(start, '\0', n)) {
        fail(l, l->lineno, "the line contains a NUL byte (is this a text file?)");
        return NULL;
    }
    if (l->lineno == 1 && n >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0) {
        start += 3;
        n -= 3;
    }
    while (n > 0 && (is_blank(*start) || *start == '\r' || *start == '\f' || *start == '\v')) {
        start++;
        n--;
    }
    if (n > 0 && start[n - 1] == '\r')
        n--;
    /* The line, its '\n' and the NUL must fit. */
    l->line_max = num < 3 ? 0 : (size_t)num - 2;
    if (num < 3 || n > (size_t)num - 2) {
        fail(l, l->lineno, "the line is longer than %d bytes", num < 3 ? 0 : num - 2);
        return NULL;
    }
    memcpy(str, start, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    if (str[0] == '[') {
        str[n] = '\0';
        on_section_line(l, str);
        str[n] = '\n';
        if (l->rc)
            return NULL;
    }
    return str;
}

/* The text of line `line` of the buffer, for messages about lines inih could not parse. */
static void line_text(const loader *l, unsigned line, char *out, size_t outlen) {
    size_t pos = 0;
    for (unsigned i = 1; i < line && pos < l->len; i++) {
        const char *nl = memchr(l->buf + pos, '\n', l->len - pos);
        pos = nl ? (size_t)(nl - l->buf) + 1 : l->len;
    }
    const char *s = l->buf + pos;
    size_t n = 0;
    while (pos + n < l->len && s[n] != '\n' && s[n] != '\r' && n + 1 < outlen)
        n++;
    size_t skip = 0;
    while (skip < n && is_blank(s[skip]))
        skip++;
    memcpy(out, s + skip, n - skip);
    out[n - skip] = '\0';
}

/* Whole-config rules, checked once every section is known. */
static void check_complete(loader *l) {
    aq_node_config *cfg = l->cfg;
    if (cfg->nnodes == 0) {
        fail(l, 0, "no [node NAME] section: a cluster needs at least one node");
        return;
    }
    if (!cfg->name[0]) {
        if (l->cluster_line)
            fail(l, l->cluster_line, "[cluster] name is missing (e.g. name = demo)");
        else
            fail(l, 0, "[cluster] name is missing (add a [cluster] section with name = ...)");
        return;
    }
    for (size_t i = 0; i < cfg->nnodes; i++) {
        if (!l->node_key_line[i][NK_ADDRESS]) {
            fail(l, cfg->nodes[i].line,
                 "[node %s] address is missing (e.g. address = 127.0.0.1:54321)",
                 cfg->nodes[i].name);
            return;
        }
    }
    if (cfg->replicas > cfg->nnodes) {
        fail(l, l->cluster_key_line[CK_REPLICAS],
             "[cluster] replicas: %u is more than the %zu configured node%s", cfg->replicas,
             cfg->nnodes, cfg->nnodes == 1 ? "" : "s");
        return;
    }
    if (cfg->min_copies > cfg->replicas) {
        fail(l, l->cluster_key_line[CK_MIN_COPIES],
             "[cluster] min_copies: %u is more than replicas (%u): no write could succeed",
             cfg->min_copies, cfg->replicas);
        return;
    }
    if (cfg->encrypt && !cfg->secret_file) {
        fail(l, l->cluster_key_line[CK_ENCRYPT],
             "[cluster] encrypt: yes needs a secret_file to derive the key from");
        return;
    }
    if (cfg->http_token_file && !cfg->secret_file) {
        fail(
            l, l->cluster_key_line[CK_HTTP_TOKEN_FILE],
            "[cluster] http_token_file: needs a secret_file (without one, HTTP asks for no token)");
        return;
    }
    for (size_t i = 0; i < cfg->nnodes; i++) {
        const aq_node_config_node *n = &cfg->nodes[i];
        if (!n->http_address[0])
            continue;
        unsigned line = l->node_key_line[i][NK_HTTP_ADDRESS];
        for (size_t j = 0; j < cfg->nnodes; j++) {
            if (strcmp(n->http_address, cfg->nodes[j].address) == 0) {
                fail(l, line,
                     "[node %s] http_address: %s is the rpc address of %s (line %u); HTTP needs a "
                     "port of its own",
                     n->name, n->http_address, cfg->nodes[j].name, l->node_key_line[j][NK_ADDRESS]);
                return;
            }
        }
        if (aq_node_config_http_token_required(cfg, n) && !cfg->http_token_file) {
            fail(l, line,
                 "[node %s] http_address: %s is reachable from other hosts and the cluster has a "
                 "secret_file: set http_token_file so that HTTP clients need a token",
                 n->name, n->http_address);
            return;
        }
    }
}

static int load(const void *buf, size_t len, const char *origin, const char *base_dir,
                aq_node_config **out, char *err, size_t errlen) {
    if (!out)
        return AQ_EINVAL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!buf && len)
        return AQ_EINVAL;
    loader l = {
        .origin = origin ? origin : "config",
        .buf = buf,
        .len = len,
        .base_dir = base_dir,
        .err = err,
        .errlen = errlen,
    };
    l.cfg = calloc(1, sizeof *l.cfg);
    if (!l.cfg) {
        fail_nomem(&l);
        return l.rc;
    }
    aq_node_config *cfg = l.cfg;
    cfg->replicas = DEFAULT_REPLICAS;
    cfg->min_copies = DEFAULT_MIN_COPIES;
    cfg->repair_after_ms = DEFAULT_REPAIR_AFTER;
    cfg->repair_interval_ms = DEFAULT_REPAIR_EVERY;
    cfg->tombstone_ttl_ms = DEFAULT_TOMBSTONE_TTL;
    cfg->scrub_rate = DEFAULT_SCRUB_RATE;
    cfg->heartbeat_ms = DEFAULT_HEARTBEAT;
    cfg->call_timeout_ms = DEFAULT_CALL_TIMEOUT;
    cfg->hello_timeout_ms = DEFAULT_HELLO_TIMEOUT;
    cfg->run_dir = strdup(DEFAULT_RUN_DIR);
    cfg->origin = strdup(l.origin);
    if (!cfg->run_dir || !cfg->origin)
        fail_nomem(&l);
    if (!l.rc && len > AQ_NODE_CONFIG_MAX_BYTES)
        fail(&l, 0, "larger than %u bytes: not a configuration file", AQ_NODE_CONFIG_MAX_BYTES);

    if (!l.rc) {
        int syntax = ini_parse_stream(read_line, &l, on_key, &l);
        /* inih carries on past a line it cannot parse, so a syntax error may come before the
         * line that stopped us; the earlier one is the one to report. */
        if (syntax > 0 && (!l.rc || (unsigned)syntax < l.err_line)) {
            char text[128], q[256];
            line_text(&l, (unsigned)syntax, text, sizeof text);
            l.rc = 0;
            fail(&l, (unsigned)syntax,
                 "%s is not a key = value line, a [section] header or a comment", quote(q, text));
        } else if (syntax == -2) {
            fail_nomem(&l);
        }
    }
    if (!l.rc)
        check_complete(&l);
    free(l.node_key_line);
    if (l.rc) {
        aq_node_config_free(cfg);
        return l.rc;
    }
    *out = cfg;
    return 0;
}

int aq_node_config_load_buffer(const void *buf, size_t len, const char *origin_name,
                               aq_node_config **out, char *err, size_t errlen) {
    return load(buf, len, origin_name, NULL, out, err, errlen);
}

int aq_node_config_load_string(const char *text, const char *origin_name, aq_node_config **out,
                               char *err, size_t errlen) {
    if (!text) {
        if (out)
            *out = NULL;
        return AQ_EINVAL;
    }
    return load(text, strlen(text), origin_name, NULL, out, err, errlen);
}

int aq_node_config_load_default(aq_node_config **out, char *err, size_t errlen) {
    return aq_node_config_load_string(default_text, "built-in default", out, err, errlen);
}

static int read_error(const char *path, int rc, char *err, size_t errlen) {
    if (err && errlen)
        snprintf(err, errlen, "%s: cannot read: %s", path, aq_strerror(rc));
    return rc;
}

int aq_node_config_load_file(const char *path, aq_node_config **out, char *err, size_t errlen) {
    if (!out || !path)
        return AQ_EINVAL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return read_error(path, -errno, err, errlen);
    /* One byte more than allowed, to tell a full-size file from a larger one. */
    size_t cap = AQ_NODE_CONFIG_MAX_BYTES + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return read_error(path, AQ_ENOMEM, err, errlen);
    }
    while (len < cap) {
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    int rerr = ferror(f) ? -(errno ? errno : EIO) : 0;
    fclose(f);
    if (rerr) {
        free(buf);
        return read_error(path, rerr, err, errlen);
    }
    /* Relative paths in the file mean "next to the file", wherever the daemon was started. */
    char *copy = strdup(path);
    char *dir = copy ? realpath(dirname(copy), NULL) : NULL;
    free(copy);
    if (!dir) {
        int rc = errno == ENOMEM || !copy ? AQ_ENOMEM : -errno;
        free(buf);
        return read_error(path, rc, err, errlen);
    }
    int rc = load(buf, len, path, dir, out, err, errlen);
    free(dir);
    free(buf);
    return rc;
}

void aq_node_config_free(aq_node_config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nnodes; i++)
        free(cfg->nodes[i].data_dir);
    free(cfg->nodes);
    free(cfg->run_dir);
    free(cfg->secret_file);
    free(cfg->http_token_file);
    free(cfg->origin);
    free(cfg);
}

uint64_t aq_node_config_scrub_rate(const aq_node_config *cfg, const aq_node_config_node *node) {
    return node->scrub_rate_set ? node->scrub_rate : cfg->scrub_rate;
}

const aq_node_config_node *aq_node_config_find(const aq_node_config *cfg, const char *name) {
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->nnodes; i++)
        if (strcmp(cfg->nodes[i].name, name) == 0)
            return &cfg->nodes[i];
    return NULL;
}

/* ---- writing it back ---- */

static void format_duration(uint64_t ms, char *out, size_t n) {
    if (ms && ms % 3600000 == 0)
        snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, n, "%llums", (unsigned long long)ms);
}

static void format_size(uint64_t b, char *out, size_t n) {
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t m = 1ull << (10 * (4 - i));
        if (b && b % m == 0) {
            snprintf(out, n, "%llu%s", (unsigned long long)(b / m), units[i]);
            return;
        }
    }
    snprintf(out, n, "%llu", (unsigned long long)b);
}

char *aq_node_config_to_text(const aq_node_config *cfg) {
    if (!cfg)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    char a[32], b[32], c[32], h[32], ri[32], tt[32], sr[32];
    format_duration(cfg->repair_after_ms, a, sizeof a);
    format_duration(cfg->heartbeat_ms, b, sizeof b);
    format_duration(cfg->call_timeout_ms, c, sizeof c);
    format_duration(cfg->hello_timeout_ms, h, sizeof h);
    format_duration(cfg->repair_interval_ms, ri, sizeof ri);
    format_duration(cfg->tombstone_ttl_ms, tt, sizeof tt);
    format_size(cfg->scrub_rate, sr, sizeof sr);
    fprintf(f,
            "[cluster]\nname = %s\nreplicas = %u\nmin_copies = %u\nrun_dir = %s\n"
            "repair_after = %s\nheartbeat = %s\ncall_timeout = %s\nhello_timeout = %s\n"
            "repair_interval = %s\ntombstone_ttl = %s\nscrub_rate = %s/s\n",
            cfg->name, cfg->replicas, cfg->min_copies, cfg->run_dir, a, b, c, h, ri, tt, sr);
    if (cfg->secret_file)
        fprintf(f, "secret_file = %s\n", cfg->secret_file);
    fprintf(f, "encrypt = %s\n", cfg->encrypt ? "yes" : "no");
    if (cfg->http_token_file)
        fprintf(f, "http_token_file = %s\n", cfg->http_token_file);
    for (size_t i = 0; i < cfg->nnodes; i++) {
        const aq_node_config_node *n = &cfg->nodes[i];
        format_size(n->memory_max, a, sizeof a);
        fprintf(f, "\n[node %s]\naddress = %s\n", n->name, n->address);
        if (n->data_dir)
            fprintf(f, "data_dir = %s\n", n->data_dir);
        fprintf(f, "memory_max = %s\n", a);
        if (n->http_address[0])
            fprintf(f, "http_address = %s\n", n->http_address);
        if (n->scrub_rate_set) {
            format_size(n->scrub_rate, a, sizeof a);
            fprintf(f, "scrub_rate = %s/s\n", a);
        }
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- which nodes live here ---- */

int aq_node_config_local_nodes(const aq_node_config *cfg, bool *local, size_t *nlocal) {
    if (!cfg || !local)
        return AQ_EINVAL;
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return -errno;
    size_t count = 0;
    for (size_t i = 0; i < cfg->nnodes; i++) {
        const struct sockaddr_storage *ss = &cfg->nodes[i].sockaddr;
        bool here = false;
        if (ss->ss_family == AF_INET) {
            const struct in_addr *a = &((const struct sockaddr_in *)ss)->sin_addr;
            here = (ntohl(a->s_addr) >> 24) == 127;
            for (struct ifaddrs *it = ifs; it && !here; it = it->ifa_next)
                here = it->ifa_addr && it->ifa_addr->sa_family == AF_INET &&
                       ((const struct sockaddr_in *)(const void *)it->ifa_addr)->sin_addr.s_addr ==
                           a->s_addr;
        } else {
            const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
            for (struct ifaddrs *it = ifs; it && !here; it = it->ifa_next)
                here = it->ifa_addr && it->ifa_addr->sa_family == AF_INET6 &&
                       memcmp(&((const struct sockaddr_in6 *)(const void *)it->ifa_addr)->sin6_addr,
                              a, sizeof *a) == 0;
        }
        local[i] = here;
        count += here;
    }
    freeifaddrs(ifs);
    if (nlocal)
        *nlocal = count;
    return 0;
}
