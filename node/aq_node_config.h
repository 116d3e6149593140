/* aq_node_config: the cluster configuration file (INI, read with inih), checked as a whole.
 *
 * A config names the cluster, its settings and every member node ([node NAME] with a numeric
 * ip:port). Loading either yields a complete, consistent aq_node_config or fails, before anything
 * is started, with AQ_ECONFIG and one sentence "FILE:LINE: [section] key: what is wrong"; a failed
 * load hands out nothing. Invariants of a loaded config: at least one node; node names, addresses
 * and data_dirs unique; 1 <= min_copies <= replicas <= nnodes; durations within 0..30 days,
 * heartbeat >= 10ms, call_timeout >= 1ms, hello_timeout >= 100ms; no wildcard, broadcast or
 * multicast address; encrypt only with a secret_file; http addresses unique and none equal to an
 * rpc address (both are TCP); http_token_file only with a secret_file, and required when a
 * secret_file is set and some node's http_address is not loopback. Relative paths in a file are
 * resolved against the file's directory (load_file only; strings keep them as written). The config
 * is immutable after loading and owns all its memory. cluster.example.conf in the repository is
 * byte for byte
 * aq_node_config_default_text(). */
#ifndef AQ_NODE_CONFIG_H
#define AQ_NODE_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AQ_NODE_NAME_MAX         63 /* node and cluster names: [A-Za-z0-9_.-]{1,63} */
#define AQ_NODE_ADDRESS_MAX      56 /* "[" ipv6 "]:" port and NUL fit */
#define AQ_NODE_CONFIG_MAX_NODES 1024
#define AQ_NODE_CONFIG_MAX_BYTES (1u << 20)    /* a config file is at most 1 MiB */
#define AQ_NODE_CONFIG_MAX_MS    2592000000ull /* 30 days: the longest accepted duration */

typedef struct aq_node_config_node {
    char name[AQ_NODE_NAME_MAX + 1];
    /* Canonical "ip:port" or "[ipv6]:port" (as inet_ntop writes the ip), what aq_rpc_addr_parse
     * accepts; ip is the same without port or brackets. */
    char address[AQ_NODE_ADDRESS_MAX];
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    struct sockaddr_storage sockaddr; /* AF_INET or AF_INET6, port in network order */
    char *data_dir;                   /* NULL: the node keeps chunks in memory only */
    uint64_t memory_max;              /* bytes, > 0 */
    /* HTTP (metrics, health, status page): canonical "ip:port", or "" when the node serves none.
     * http_loopback: the ip is 127.0.0.0/8 or ::1, so only this host can connect. */
    char http_address[AQ_NODE_ADDRESS_MAX];
    struct sockaddr_storage http_sockaddr;
    bool http_loopback;
    uint64_t scrub_rate; /* bytes per second, when scrub_rate_set */
    bool scrub_rate_set; /* this node's own scrub_rate overrides the cluster's */
    unsigned line;       /* line of the [node NAME] header, for later messages */
} aq_node_config_node;

typedef struct aq_node_config {
    char name[AQ_NODE_NAME_MAX + 1]; /* the cluster name: packets of other clusters are dropped */
    unsigned replicas;               /* copies of every chunk, 1..nnodes */
    unsigned min_copies;             /* a put or rm reaching fewer copies fails; 1..replicas */
    char *run_dir;                   /* logs and pid files of `aquifer cluster up`; never NULL */
    char *secret_file;               /* NULL when not configured */
    /* The bearer token HTTP clients must send (only with secret_file; see http_token_required). */
    char *http_token_file;
    bool encrypt;
    uint64_t repair_after_ms;
    uint64_t heartbeat_ms;       /* > 0 */
    uint64_t call_timeout_ms;    /* > 0 */
    uint64_t hello_timeout_ms;   /* >= 100: an inbound connection must say HELLO within it */
    uint64_t repair_interval_ms; /* >= 100: time between a node's repair passes */
    uint64_t tombstone_ttl_ms;   /* removal markers are collected no younger than this */
    uint64_t scrub_rate;         /* bytes per second the scrub re-verifies; 0: no scrub */
    size_t nnodes;               /* >= 1 */
    aq_node_config_node *nodes;
    char *origin; /* the file name (or origin name) it was loaded from */
} aq_node_config;

/* Loads and checks the file at path. On success *out owns a new config (aq_node_config_free).
 * On failure *out is NULL, err holds one sentence naming the file (and line and key when there is
 * one), and the return is AQ_ECONFIG for a bad config, a negated errno when the file cannot be
 * read, or AQ_ENOMEM. err may be NULL when errlen is 0. */
int aq_node_config_load_file(const char *path, aq_node_config **out, char *err, size_t errlen);

/* As load_file, from a NUL-terminated text; origin_name stands for the file name in messages. */
int aq_node_config_load_string(const char *text, const char *origin_name, aq_node_config **out,
                               char *err, size_t errlen);

/* As load_string, from len arbitrary bytes (a NUL byte in them is a config error): the entry point
 * for fuzzing, it never reads outside buf[0..len). */
int aq_node_config_load_buffer(const void *buf, size_t len, const char *origin_name,
                               aq_node_config **out, char *err, size_t errlen);

/* Loads aq_node_config_default_text() with origin "built-in default". */
int aq_node_config_load_default(aq_node_config **out, char *err, size_t errlen);

void aq_node_config_free(aq_node_config *cfg);

/* True when HTTP requests to node (other than /livez and /readyz) must carry the bearer token:
 * the cluster has a secret and the node's http address is reachable from other hosts. */
bool aq_node_config_http_token_required(const aq_node_config *cfg, const aq_node_config_node *node);
/* The scrub rate of node: its own scrub_rate if set, else the cluster's. 0: no scrub. */
uint64_t aq_node_config_scrub_rate(const aq_node_config *cfg, const aq_node_config_node *node);

/* The node with that name, or NULL. */
const aq_node_config_node *aq_node_config_find(const aq_node_config *cfg, const char *name);

/* The built-in configuration of `aquifer cluster up` without -c: three nodes on 127.0.0.1. */
const char *aq_node_config_default_text(void);

/* Writes the effective configuration, every key with its value (defaults included), as a config
 * text that loads back to an equal config. Returns a malloc'd string or NULL when out of memory. */
char *aq_node_config_to_text(const aq_node_config *cfg);

/* Which nodes have their ip on this host (an interface address from getifaddrs, or anything in
 * 127.0.0.0/8, which Linux routes to loopback): sets local[i] for each of cfg->nnodes nodes and
 * *nlocal to the count (nlocal may be NULL). Returns 0 or a negated errno from getifaddrs. */
int aq_node_config_local_nodes(const aq_node_config *cfg, bool *local, size_t *nlocal);

/* The value parsers the loader uses, for the CLI's own options. Each accepts the whole string or
 * returns AQ_EPARSE (the value does not have that form) or AQ_ELIMIT (too large). */

/* Sizes: an integer with an optional unit, B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or
 * KB/MB/GB/TB (powers of 1000), units case-insensitive, optional blank before the unit. No sign,
 * no fraction ("1.5GiB" is refused: write 1536MiB), at most UINT64_MAX bytes. */
int aq_node_config_parse_size(const char *text, uint64_t *bytes);

/* Durations: an integer or decimal number with ms, s, m or h (none means seconds), a whole number
 * of milliseconds at most AQ_NODE_CONFIG_MAX_MS ("1.5s", "0.25m" and "250ms" are fine; "0.0001s"
 * is refused). */
int aq_node_config_parse_duration(const char *text, uint64_t *ms);

/* yes/no, true/false, on/off, 1/0, case-insensitive. */
int aq_node_config_parse_bool(const char *text, bool *value);

/* "a.b.c.d:port" or "[ipv6]:port", numeric, port 1-65535; fills the node's address, ip, port and
 * sockaddr. Returns AQ_EPARSE, or AQ_EINVAL for the wildcard, multicast or broadcast address
 * (peers could not reach it). */
int aq_node_config_parse_address(const char *text, aq_node_config_node *node);

#endif
