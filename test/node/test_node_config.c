#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aq_error.h"
#include "aq_node_config.h"

/* Loads text as "t.conf"; the test fails with the loader's message if it does not load. */
static aq_node_config *load_ok(const char *text) {
    aq_node_config *cfg = NULL;
    char err[512];
    int rc = aq_node_config_load_string(text, "t.conf", &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "unexpected failure: %s", err);
    cr_assert_not_null(cfg);
    return cfg;
}

/* Loads text expecting AQ_ECONFIG and exactly the message want. */
static void expect_error(const char *text, const char *want) {
    aq_node_config *cfg = (aq_node_config *)1;
    char err[512];
    int rc = aq_node_config_load_string(text, "t.conf", &cfg, err, sizeof err);
    cr_expect_eq(rc, AQ_ECONFIG, "rc %d (%s) for:\n%s", rc, err, text);
    cr_expect_null(cfg, "a failed load must not hand out a config");
    cr_expect_str_eq(err, want);
}

#define HEAD  "[cluster]\nname = t\n"
#define NODE1 "[node n1]\naddress = 127.0.0.1:5001\n"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap + 1);
            cr_assert_not_null(buf);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
}

/* ---- the built-in default and the example file ---- */

Test(config, example_file_equals_builtin_default) {
    size_t len;
    char *file = read_all(AQ_SOURCE_DIR "/cluster.example.conf", &len);
    const char *def = aq_node_config_default_text();
    cr_expect_eq(len, strlen(def), "cluster.example.conf has %zu bytes, the default %zu", len,
                 strlen(def));
    cr_expect_eq(memcmp(file, def, len < strlen(def) ? len : strlen(def)), 0,
                 "cluster.example.conf differs from aq_node_config_default_text()");
    free(file);
}

Test(config, builtin_default) {
    aq_node_config *cfg = NULL;
    char err[256];
    cr_assert_eq(aq_node_config_load_default(&cfg, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg->name, "demo");
    cr_expect_eq(cfg->replicas, 2);
    cr_expect_eq(cfg->min_copies, 1);
    cr_expect_str_eq(cfg->run_dir, "/tmp/aquifer");
    cr_expect_eq(cfg->repair_after_ms, 60000);
    cr_expect_eq(cfg->heartbeat_ms, 500);
    cr_expect_eq(cfg->call_timeout_ms, 10000);
    cr_expect_eq(cfg->hello_timeout_ms, 5000);
    cr_expect_null(cfg->secret_file);
    cr_expect_eq(cfg->encrypt, false);
    cr_assert_eq(cfg->nnodes, 3);
    for (int i = 0; i < 3; i++) {
        char name[8], addr[32], dir[32];
        snprintf(name, sizeof name, "n%d", i + 1);
        snprintf(addr, sizeof addr, "127.0.0.1:%d", 54321 + i);
        snprintf(dir, sizeof dir, "/tmp/aquifer/n%d", i + 1);
        const aq_node_config_node *n = &cfg->nodes[i];
        cr_expect_str_eq(n->name, name);
        cr_expect_str_eq(n->address, addr);
        cr_expect_str_eq(n->ip, "127.0.0.1");
        cr_expect_eq(n->port, 54321 + i);
        cr_expect_eq(n->sockaddr.ss_family, AF_INET);
        cr_expect_eq(ntohs(((struct sockaddr_in *)&n->sockaddr)->sin_port), 54321 + i);
        cr_expect_str_eq(n->data_dir, dir);
        cr_expect_eq(n->memory_max, 1ull << 30);
        snprintf(addr, sizeof addr, "127.0.0.1:%d", 54331 + i);
        cr_expect_str_eq(n->http_address, addr);
        cr_expect(n->http_loopback);
        cr_expect_not(aq_node_config_http_token_required(cfg, n));
        cr_expect_eq(aq_node_config_find(cfg, name), n);
    }
    cr_expect_null(aq_node_config_find(cfg, "n4"));
    cr_expect_null(aq_node_config_find(cfg, "N1"));
    aq_node_config_free(cfg);
}

Test(config, example_file_loads_from_disk) {
    aq_node_config *cfg = NULL;
    char err[256];
    int rc = aq_node_config_load_file(AQ_SOURCE_DIR "/cluster.example.conf", &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(cfg->nnodes, 3);
    cr_expect_str_eq(cfg->origin, AQ_SOURCE_DIR "/cluster.example.conf");
    aq_node_config_free(cfg);
}

Test(config, defaults) {
    aq_node_config *cfg = load_ok(HEAD NODE1);
    cr_expect_str_eq(cfg->name, "t");
    cr_expect_eq(cfg->replicas, 1);
    cr_expect_eq(cfg->min_copies, 1);
    cr_expect_str_eq(cfg->run_dir, "/tmp/aquifer");
    cr_expect_eq(cfg->repair_after_ms, 60000);
    cr_expect_eq(cfg->heartbeat_ms, 500);
    cr_expect_eq(cfg->call_timeout_ms, 10000);
    cr_expect_eq(cfg->hello_timeout_ms, 5000);
    cr_expect_eq(cfg->repair_interval_ms, 10000);
    cr_expect_eq(cfg->tombstone_ttl_ms, 3600000);
    cr_expect_eq(cfg->scrub_rate, 64ull << 20);
    cr_expect_null(cfg->secret_file);
    cr_expect_eq(cfg->encrypt, false);
    cr_assert_eq(cfg->nnodes, 1);
    cr_expect_null(cfg->nodes[0].data_dir);
    cr_expect_eq(cfg->nodes[0].memory_max, 1ull << 30);
    cr_expect_eq(cfg->nodes[0].line, 3);
    aq_node_config_free(cfg);
}

/* ---- round trip ---- */

static void expect_same(const aq_node_config *a, const aq_node_config *b) {
    cr_expect_str_eq(a->name, b->name);
    cr_expect_eq(a->replicas, b->replicas);
    cr_expect_str_eq(a->run_dir, b->run_dir);
    cr_expect_eq(!a->secret_file, !b->secret_file);
    if (a->secret_file && b->secret_file)
        cr_expect_str_eq(a->secret_file, b->secret_file);
    cr_expect_eq(a->encrypt, b->encrypt);
    cr_expect_eq(a->repair_after_ms, b->repair_after_ms);
    cr_expect_eq(a->heartbeat_ms, b->heartbeat_ms);
    cr_expect_eq(a->call_timeout_ms, b->call_timeout_ms);
    cr_expect_eq(a->hello_timeout_ms, b->hello_timeout_ms);
    cr_expect_eq(a->repair_interval_ms, b->repair_interval_ms);
    cr_expect_eq(a->tombstone_ttl_ms, b->tombstone_ttl_ms);
    cr_expect_eq(a->scrub_rate, b->scrub_rate);
    cr_assert_eq(a->nnodes, b->nnodes);
    for (size_t i = 0; i < a->nnodes; i++) {
        const aq_node_config_node *x = &a->nodes[i], *y = &b->nodes[i];
        cr_expect_str_eq(x->name, y->name);
        cr_expect_str_eq(x->address, y->address);
        cr_expect_str_eq(x->ip, y->ip);
        cr_expect_eq(x->port, y->port);
        cr_expect_eq(memcmp(&x->sockaddr, &y->sockaddr, sizeof x->sockaddr), 0);
        cr_expect_eq(!x->data_dir, !y->data_dir);
        if (x->data_dir && y->data_dir)
            cr_expect_str_eq(x->data_dir, y->data_dir);
        cr_expect_eq(x->memory_max, y->memory_max);
        cr_expect_str_eq(x->http_address, y->http_address);
        cr_expect_eq(x->http_loopback, y->http_loopback);
        cr_expect_eq(x->scrub_rate_set, y->scrub_rate_set);
        cr_expect_eq(aq_node_config_scrub_rate(a, x), aq_node_config_scrub_rate(b, y));
    }
    cr_expect_eq(!a->http_token_file, !b->http_token_file);
    if (a->http_token_file && b->http_token_file)
        cr_expect_str_eq(a->http_token_file, b->http_token_file);
}

Test(config, round_trips_through_text) {
    const char *text = "[cluster]\n"
                       "name = prod.eu-1\n"
                       "replicas = 3\n"
                       "run_dir = /var/run/aq\n"
                       "repair_after = 1.5m\n"
                       "heartbeat = 250ms\n"
                       "call_timeout = 1.25s\n"
                       "hello_timeout = 750ms\n"
                       "repair_interval = 2.5s\n"
                       "tombstone_ttl = 90m\n"
                       "scrub_rate = 3MiB/s\n"
                       "secret_file = /etc/aq/secret\n"
                       "encrypt = on\n"
                       "http_token_file = /etc/aq/token\n"
                       "[node a]\naddress = 10.0.0.1:7000\nmemory_max = 512MiB\n"
                       "http_address = 10.0.0.1:8080\n"
                       "[node b]\naddress = [2001:db8:0:0::1]:7000\ndata_dir = /d/b\n"
                       "memory_max = 1000000\nhttp_address = [::1]:8080\n"
                       "[node c]\naddress = 10.0.0.3:65535\nmemory_max = 3KB\n";
    aq_node_config *a = load_ok(text);
    cr_expect_eq(a->repair_after_ms, 90000);
    cr_expect_eq(a->call_timeout_ms, 1250);
    cr_expect_eq(a->hello_timeout_ms, 750);
    cr_expect_eq(a->repair_interval_ms, 2500);
    cr_expect_eq(a->tombstone_ttl_ms, 5400000);
    cr_expect_eq(a->scrub_rate, 3ull << 20);
    cr_expect_eq(a->encrypt, true);
    cr_expect_str_eq(a->nodes[1].address, "[2001:db8::1]:7000");
    cr_expect_eq(a->nodes[2].memory_max, 3000);
    cr_expect_str_eq(a->nodes[1].http_address, "[::1]:8080");
    cr_expect_str_eq(a->nodes[2].http_address, "");
    char *t1 = aq_node_config_to_text(a);
    cr_assert_not_null(t1);
    aq_node_config *b = load_ok(t1);
    expect_same(a, b);
    char *t2 = aq_node_config_to_text(b);
    cr_expect_str_eq(t1, t2, "to_text must be a fixpoint");
    free(t1);
    free(t2);
    aq_node_config_free(a);
    aq_node_config_free(b);

    aq_node_config *d = NULL;
    cr_assert_eq(aq_node_config_load_default(&d, NULL, 0), 0);
    char *t3 = aq_node_config_to_text(d);
    aq_node_config *e = load_ok(t3);
    expect_same(d, e);
    free(t3);
    aq_node_config_free(d);
    aq_node_config_free(e);
}

/* The removal-marker age, the repair interval and the scrub rate: units, bounds and off. */
Test(config, repair_keys) {
    aq_node_config *a = load_ok(HEAD "tombstone_ttl = 0\nrepair_interval = 100ms\n"
                                     "scrub_rate = 0\n" NODE1);
    cr_expect_eq(a->tombstone_ttl_ms, 0);
    cr_expect_eq(a->repair_interval_ms, 100);
    cr_expect_eq(a->scrub_rate, 0);
    aq_node_config_free(a);
    a = load_ok(HEAD "tombstone_ttl = 3s\nscrub_rate = 1000KB\n" NODE1);
    cr_expect_eq(a->tombstone_ttl_ms, 3000);
    cr_expect_eq(a->scrub_rate, 1000000);
    aq_node_config_free(a);
    expect_error(HEAD "repair_interval = 50ms\n" NODE1,
                 "t.conf:3: [cluster] repair_interval: \"50ms\" is shorter than the minimum 100ms");
    expect_error(HEAD "tombstone_ttl = 1d\n" NODE1,
                 "t.conf:3: [cluster] tombstone_ttl: \"1d\" is not a duration (use e.g. 500ms, "
                 "1.5s, 2m or 1h; whole milliseconds)");
    expect_error(HEAD "tombstone_ttl = 721h\n" NODE1,
                 "t.conf:3: [cluster] tombstone_ttl: \"721h\" is longer than 720h");
    expect_error(HEAD "scrub_rate = fast\n" NODE1,
                 "t.conf:3: [cluster] scrub_rate: \"fast\" is not a rate (use e.g. 64MiB/s, or 0 "
                 "for off)");
    a = load_ok(HEAD "scrub_rate = 2MiB/s\n" NODE1 "scrub_rate = 0\n"
                     "[node n2]\naddress = 127.0.0.1:5002\n");
    cr_expect_eq(aq_node_config_scrub_rate(a, &a->nodes[0]), 0, "the node's own rate wins");
    cr_expect_eq(aq_node_config_scrub_rate(a, &a->nodes[1]), 2ull << 20);
    char *t = aq_node_config_to_text(a);
    aq_node_config *b = load_ok(t);
    cr_expect(b->nodes[0].scrub_rate_set);
    cr_expect_eq(aq_node_config_scrub_rate(b, &b->nodes[0]), 0);
    free(t);
    aq_node_config_free(a);
    aq_node_config_free(b);
    expect_error(HEAD NODE1 "scrub_rate = lots\n",
                 "t.conf:5: [node n1] scrub_rate: \"lots\" is not a rate (use e.g. 64MiB/s, or 0 "
                 "for off)");
    expect_error(HEAD "scrub_rate = 5MiB/h\n" NODE1,
                 "t.conf:3: [cluster] scrub_rate: \"5MiB/h\" is not a rate (use e.g. 64MiB/s, or "
                 "0 for off)");
}

/* ---- every error class names file, line and key ---- */

Test(config, unknown_keys) {
    expect_error(HEAD "replica = 2\n" NODE1,
                 "t.conf:3: [cluster] \"replica\": unknown key (known: name, replicas, min_copies, "
                 "run_dir, repair_after, heartbeat, call_timeout, hello_timeout, secret_file, "
                 "encrypt, http_token_file, repair_interval, tombstone_ttl, scrub_rate)");
    expect_error(HEAD NODE1 "memory = 1GiB\n",
                 "t.conf:5: [node n1] \"memory\": unknown key (known: address, data_dir, "
                 "memory_max, http_address, scrub_rate)");
    expect_error("name = x\n" HEAD NODE1,
                 "t.conf:1: \"name\": key outside any section (start with [cluster] or [node "
                 "NAME])");
    expect_error(HEAD "Name = t\n" NODE1,
                 "t.conf:3: [cluster] \"Name\": unknown key (known: name, replicas, min_copies, "
                 "run_dir, repair_after, heartbeat, call_timeout, hello_timeout, secret_file, "
                 "encrypt, http_token_file, repair_interval, tombstone_ttl, scrub_rate)");
}

Test(config, http_keys) {
    /* Parsed like rpc addresses, canonical, loopback told apart. */
    aq_node_config *c = load_ok(HEAD NODE1 "http_address = 127.0.0.9:8080\n"
                                           "[node n2]\naddress = 10.1.2.3:5001\n"
                                           "http_address = 10.1.2.3:8080\n"
                                           "[node n3]\naddress = 10.1.2.4:5001\n");
    cr_expect_str_eq(c->nodes[0].http_address, "127.0.0.9:8080");
    cr_expect(c->nodes[0].http_loopback);
    cr_expect_str_eq(c->nodes[1].http_address, "10.1.2.3:8080");
    cr_expect_not(c->nodes[1].http_loopback);
    cr_expect_str_eq(c->nodes[2].http_address, "", "absent: no HTTP");
    cr_expect_not(aq_node_config_http_token_required(c, &c->nodes[1]), "no secret, no token");
    aq_node_config_free(c);
    /* With a secret and a token file: the non-loopback node needs the token, the loopback one
     * does not. */
    c = load_ok("[cluster]\nname = t\nsecret_file = /s\nhttp_token_file = tok\n" NODE1
                "http_address = [::1]:8080\n[node n2]\naddress = 10.1.2.3:5001\n"
                "http_address = 10.1.2.3:8080\n");
    cr_expect(c->nodes[0].http_loopback);
    cr_expect_not(aq_node_config_http_token_required(c, &c->nodes[0]));
    cr_expect(aq_node_config_http_token_required(c, &c->nodes[1]));
    cr_expect_str_eq(c->http_token_file, "tok");
    aq_node_config_free(c);

    expect_error(HEAD NODE1 "http_address = localhost:80\n",
                 "t.conf:5: [node n1] http_address: \"localhost:80\" is not a numeric ip:port "
                 "(use e.g. 127.0.0.1:54331 or [::1]:54331, port 1-65535)");
    expect_error(HEAD NODE1 "http_address = 127.0.0.1:0\n",
                 "t.conf:5: [node n1] http_address: \"127.0.0.1:0\" is not a numeric ip:port "
                 "(use e.g. 127.0.0.1:54331 or [::1]:54331, port 1-65535)");
    expect_error(HEAD NODE1 "http_address = 0.0.0.0:80\n",
                 "t.conf:5: [node n1] http_address: \"0.0.0.0:80\" is the wildcard address: give "
                 "the ip to serve HTTP on (e.g. 127.0.0.1)");
    expect_error(HEAD NODE1 "http_address = 127.0.0.1:80\nhttp_address = 127.0.0.1:81\n",
                 "t.conf:6: [node n1] http_address: given twice (first on line 5)");
    expect_error(HEAD NODE1 "http_address = 127.0.0.1:80\n[node n2]\naddress = 127.0.0.1:5002\n"
                            "http_address = 127.0.0.1:80\n",
                 "t.conf:8: [node n2] http_address: 127.0.0.1:80 is already the http_address of "
                 "n1 (line 5)");
    expect_error(HEAD NODE1 "http_address = 127.0.0.1:5002\n[node n2]\naddress = 127.0.0.1:5002\n",
                 "t.conf:5: [node n1] http_address: 127.0.0.1:5002 is the rpc address of n2 "
                 "(line 7); HTTP needs a port of its own");
    expect_error(HEAD NODE1 "http_address = 127.0.0.1:5001\n",
                 "t.conf:5: [node n1] http_address: 127.0.0.1:5001 is the rpc address of n1 "
                 "(line 4); HTTP needs a port of its own");
    expect_error("[cluster]\nname = t\nhttp_token_file = tok\n" NODE1,
                 "t.conf:3: [cluster] http_token_file: needs a secret_file (without one, HTTP asks "
                 "for no token)");
    expect_error("[cluster]\nname = t\nsecret_file = /s\n" NODE1 "http_address = 10.0.0.1:80\n",
                 "t.conf:6: [node n1] http_address: 10.0.0.1:80 is reachable from other hosts and "
                 "the cluster has a secret_file: set http_token_file so that HTTP clients need a "
                 "token");
    expect_error("[cluster]\nname = t\nsecret_file = /s\nhttp_token_file =\n" NODE1,
                 "t.conf:4: [cluster] http_token_file: the path is empty");
}

Test(config, bad_sizes) {
    expect_error(HEAD "[node n1]\naddress = 127.0.0.1:5001\n\nmemory_max = 12XB\n",
                 "t.conf:6: [node n1] memory_max: \"12XB\" is not a size (use e.g. 512MiB or "
                 "2GiB; no fractions)");
    expect_error(HEAD NODE1 "memory_max = 1.5GiB\n",
                 "t.conf:5: [node n1] memory_max: \"1.5GiB\" is not a size (use e.g. 512MiB or "
                 "2GiB; no fractions)");
    expect_error(HEAD NODE1 "memory_max = 0\n",
                 "t.conf:5: [node n1] memory_max: must be more than 0");
    expect_error(HEAD NODE1 "memory_max = 16777216TiB\n",
                 "t.conf:5: [node n1] memory_max: \"16777216TiB\" is too large (at most 16EiB - 1 "
                 "bytes)");
    expect_error(HEAD NODE1 "memory_max = -1\n",
                 "t.conf:5: [node n1] memory_max: \"-1\" is not a size (use e.g. 512MiB or 2GiB; "
                 "no fractions)");
    expect_error(HEAD NODE1 "memory_max =\n",
                 "t.conf:5: [node n1] memory_max: \"\" is not a size (use e.g. 512MiB or 2GiB; "
                 "no fractions)");
}

Test(config, bad_addresses) {
    expect_error(HEAD "[node n1]\naddress = 127.0.0.1\n",
                 "t.conf:4: [node n1] address: \"127.0.0.1\" is not a numeric ip:port (use e.g. "
                 "127.0.0.1:54321 or [::1]:54321, port 1-65535)");
    expect_error(HEAD "[node n1]\naddress = localhost:5000\n",
                 "t.conf:4: [node n1] address: \"localhost:5000\" is not a numeric ip:port (use "
                 "e.g. 127.0.0.1:54321 or [::1]:54321, port 1-65535)");
    expect_error(HEAD "[node n1]\naddress = 0.0.0.0:5000\n",
                 "t.conf:4: [node n1] address: \"0.0.0.0:5000\" is the wildcard address, which "
                 "peers cannot reach: give the node's own IP");
    expect_error(HEAD "[node n1]\naddress = [::]:5000\n",
                 "t.conf:4: [node n1] address: \"[::]:5000\" is the wildcard address, which peers "
                 "cannot reach: give the node's own IP");
    expect_error(HEAD "[node n1]\naddress = 127.0.0.1:65536\n",
                 "t.conf:4: [node n1] address: \"127.0.0.1:65536\" is not a numeric ip:port (use "
                 "e.g. 127.0.0.1:54321 or [::1]:54321, port 1-65535)");
}

Test(config, duplicates) {
    expect_error(HEAD NODE1 "[node n1]\naddress = 127.0.0.1:5002\n",
                 "t.conf:5: [node n1]: a second node named n1 (first on line 3)");
    expect_error(HEAD NODE1 "[node n2]\naddress = 127.0.0.1:5001\n",
                 "t.conf:6: [node n2] address: 127.0.0.1:5001 is already the address of n1 (line "
                 "4)");
    /* The same address spelled differently is still the same. */
    expect_error(HEAD "[node a]\naddress = [::1]:9\n[node b]\naddress = [0:0::0:1]:9\n",
                 "t.conf:6: [node b] address: [::1]:9 is already the address of a (line 4)");
    expect_error(HEAD NODE1 "address = 127.0.0.1:5002\n",
                 "t.conf:5: [node n1] address: given twice (first on line 4)");
    expect_error(HEAD "name = u\n" NODE1,
                 "t.conf:3: [cluster] name: given twice (first on line 2)");
    expect_error(HEAD NODE1 "[cluster]\n", "t.conf:5: [cluster]: a second [cluster] section (first "
                                           "on line 1)");
    /* Empty duplicate sections are caught too (inih alone never reports an empty section). */
    expect_error("[cluster]\n[cluster]\nname = t\n" NODE1,
                 "t.conf:2: [cluster]: a second [cluster] section (first on line 1)");
    expect_error(HEAD "[node n1]\n[node n1]\naddress = 127.0.0.1:5001\n",
                 "t.conf:4: [node n1]: a second node named n1 (first on line 3)");
    expect_error(HEAD "[node a]\naddress = 127.0.0.1:1\ndata_dir = /x\n"
                      "[node b]\naddress = 127.0.0.1:2\ndata_dir = /x\n",
                 "t.conf:8: [node b] data_dir: \"/x\" is already the data_dir of a (line 5)");
}

Test(config, replicas) {
    expect_error(HEAD "replicas = 3\n" NODE1 "[node n2]\naddress = 127.0.0.1:5002\n",
                 "t.conf:3: [cluster] replicas: 3 is more than the 2 configured nodes");
    expect_error(HEAD "replicas = 2\n" NODE1,
                 "t.conf:3: [cluster] replicas: 2 is more than the 1 configured node");
    expect_error(HEAD "replicas = 0\n" NODE1, "t.conf:3: [cluster] replicas: must be at least 1");
    expect_error(HEAD "replicas = two\n" NODE1,
                 "t.conf:3: [cluster] replicas: \"two\" is not a whole number");
    expect_error(HEAD "replicas = 99999999999999999999999\n" NODE1,
                 "t.conf:3: [cluster] replicas: \"99999999999999999999999\" is more than the "
                 "limit of 1024 nodes");
    aq_node_config *cfg = load_ok(HEAD "replicas = 2\n" NODE1 "[node n2]\naddress = 127.0.0.1:2\n");
    cr_expect_eq(cfg->replicas, 2);
    aq_node_config_free(cfg);
}

/* min_copies: 1 to replicas, whole numbers only; it must be possible for a write to succeed. */
Test(config, min_copies) {
    expect_error(HEAD "replicas = 2\nmin_copies = 3\n" NODE1 "[node n2]\naddress = 127.0.0.1:2\n",
                 "t.conf:4: [cluster] min_copies: 3 is more than replicas (2): no write could "
                 "succeed");
    expect_error(HEAD "min_copies = 0\n" NODE1,
                 "t.conf:3: [cluster] min_copies: must be at least 1");
    expect_error(HEAD "min_copies = all\n" NODE1,
                 "t.conf:3: [cluster] min_copies: \"all\" is not a whole number");
    expect_error(HEAD "min_copies = 2x\n" NODE1,
                 "t.conf:3: [cluster] min_copies: \"2x\" is not a whole number");
    expect_error(HEAD "min_copies = 99999999999999999999999\n" NODE1,
                 "t.conf:3: [cluster] min_copies: \"99999999999999999999999\" is more than the "
                 "limit of 1024 nodes");
    expect_error(HEAD "min_copies = 1\nmin_copies = 1\n" NODE1,
                 "t.conf:4: [cluster] min_copies: given twice (first on line 3)");
    aq_node_config *cfg =
        load_ok(HEAD "min_copies = 2\nreplicas = 2\n" NODE1 "[node n2]\naddress = 127.0.0.1:2\n");
    cr_expect_eq(cfg->min_copies, 2);
    cr_expect_eq(cfg->replicas, 2);
    aq_node_config_free(cfg);
}

Test(config, missing_things) {
    expect_error("", "t.conf: no [node NAME] section: a cluster needs at least one node");
    expect_error("; only a comment\n\n", "t.conf: no [node NAME] section: a cluster needs at least "
                                         "one node");
    expect_error(HEAD, "t.conf: no [node NAME] section: a cluster needs at least one node");
    expect_error(NODE1, "t.conf: [cluster] name is missing (add a [cluster] section with name = "
                        "...)");
    expect_error("[cluster]\nreplicas = 1\n" NODE1,
                 "t.conf:1: [cluster] name is missing (e.g. name = demo)");
    expect_error(HEAD NODE1 "[node n2]\ndata_dir = /tmp/x\n",
                 "t.conf:5: [node n2] address is missing (e.g. address = 127.0.0.1:54321)");
    expect_error(HEAD "[node n2]\n",
                 "t.conf:3: [node n2] address is missing (e.g. address = 127.0.0.1:54321)");
}

Test(config, bad_sections_and_lines) {
    expect_error(HEAD "[nodes n1]\n", "t.conf:3: \"[nodes n1]\": not a known section (expected "
                                      "[cluster] or [node NAME])");
    expect_error(HEAD "[node]\n", "t.conf:3: [node]: the node needs a name, as in [node n1]");
    expect_error(HEAD "[node a/b]\n", "t.conf:3: [node a/b]: \"a/b\" is not a node name (1 to 63 "
                                      "of A-Z a-z 0-9 _ . -)");
    expect_error(HEAD "[node n1\n",
                 "t.conf:3: \"[node n1\": a section header without its closing ]");
    expect_error(HEAD "[node n1] x\n", "t.conf:3: \"[node n1] x\": text after the section header");
    expect_error(HEAD "replicas 2\n" NODE1,
                 "t.conf:3: \"replicas 2\" is not a key = value line, a [section] header or a "
                 "comment");
    /* A later error does not hide an earlier unparsable line. */
    expect_error(HEAD "bogus line\nreplicas = x\n" NODE1,
                 "t.conf:3: \"bogus line\" is not a key = value line, a [section] header or a "
                 "comment");
    expect_error(HEAD "name2\n", "t.conf:3: \"name2\" is not a key = value line, a [section] "
                                 "header or a comment");
    expect_error(HEAD "encrypt = yes\n" NODE1,
                 "t.conf:3: [cluster] encrypt: yes needs a secret_file to derive the key from");
    expect_error(HEAD "encrypt = maybe\n" NODE1,
                 "t.conf:3: [cluster] encrypt: \"maybe\" is not yes or no");
    expect_error(HEAD "heartbeat = 5ms\n" NODE1,
                 "t.conf:3: [cluster] heartbeat: \"5ms\" is shorter than the minimum 10ms");
    expect_error(HEAD "call_timeout = 0\n" NODE1,
                 "t.conf:3: [cluster] call_timeout: \"0\" is shorter than the minimum 1ms");
    expect_error(HEAD "hello_timeout = 50ms\n" NODE1,
                 "t.conf:3: [cluster] hello_timeout: \"50ms\" is shorter than the minimum 100ms");
    expect_error(HEAD "hello_timeout = soon\n" NODE1,
                 "t.conf:3: [cluster] hello_timeout: \"soon\" is not a duration (use e.g. 500ms, "
                 "1.5s, 2m or 1h; whole milliseconds)");
    expect_error(HEAD "repair_after = 1d\n" NODE1,
                 "t.conf:3: [cluster] repair_after: \"1d\" is not a duration (use e.g. 500ms, "
                 "1.5s, 2m or 1h; whole milliseconds)");
    expect_error(HEAD "repair_after = 721h\n" NODE1,
                 "t.conf:3: [cluster] repair_after: \"721h\" is longer than 720h");
    expect_error(HEAD "run_dir =\n" NODE1, "t.conf:3: [cluster] run_dir: the path is empty");
    expect_error("[cluster]\nname = a b\n" NODE1,
                 "t.conf:2: [cluster] name: \"a b\" is not a name (1 to 63 of A-Z a-z 0-9 _ . -)");
}

Test(config, binary_garbage_is_quoted_safely) {
    char err[512];
    aq_node_config *cfg = NULL;
    const char text[] = HEAD "[node n1]\naddress = \x01\xff\"\\:1\n";
    cr_expect_eq(aq_node_config_load_buffer(text, sizeof text - 1, "t.conf", &cfg, err, sizeof err),
                 AQ_ECONFIG);
    cr_expect_str_eq(err, "t.conf:4: [node n1] address: \"\\x01\\xff\\\"\\\\:1\" is not a numeric "
                          "ip:port (use e.g. 127.0.0.1:54321 or [::1]:54321, port 1-65535)");
    const char nul[] = HEAD "na\0me = x\n" NODE1;
    cr_expect_eq(aq_node_config_load_buffer(nul, sizeof nul - 1, "t.conf", &cfg, err, sizeof err),
                 AQ_ECONFIG);
    cr_expect_str_eq(err, "t.conf:3: the line contains a NUL byte (is this a text file?)");
    cr_expect_null(cfg);
}

Test(config, long_lines_and_names) {
    /* inih cuts section names at 50 bytes; the loader must still see the whole 63-byte name. */
    char name63[64], text[1024];
    memset(name63, 'x', 63);
    name63[63] = '\0';
    snprintf(text, sizeof text,
             HEAD "[node %s]\naddress = 127.0.0.1:1\n[node %.50s]\n"
                  "address = 127.0.0.1:2\n",
             name63, name63);
    aq_node_config *cfg = load_ok(text);
    cr_assert_eq(cfg->nnodes, 2);
    cr_expect_str_eq(cfg->nodes[0].name, name63);
    cr_expect_eq(strlen(cfg->nodes[1].name), 50);
    aq_node_config_free(cfg);

    snprintf(text, sizeof text, HEAD "[node %sx]\n", name63);
    char want[512];
    snprintf(want, sizeof want,
             "t.conf:3: [node %sx]: \"%.60s...\" is not a node name (1 to 63 of A-Z a-z 0-9 _ . "
             "-)",
             name63, name63);
    expect_error(text, want);

    /* 198 bytes fit on a line; 199 are refused rather than silently split. */
    char path[200];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    snprintf(text, sizeof text, HEAD NODE1 "data_dir = %.*s\n", 198 - 11, path);
    cfg = load_ok(text);
    cr_expect_eq(strlen(cfg->nodes[0].data_dir), 187);
    aq_node_config_free(cfg);
    snprintf(text, sizeof text, HEAD NODE1 "data_dir = %.*s\n", 199 - 11, path);
    expect_error(text, "t.conf:5: the line is longer than 198 bytes");

    /* Without the blanks a longer path fits the line, but not the "key = PATH" line the config is
     * written back as (aq_node_config_to_text): refused, so what is written always loads again. */
    snprintf(text, sizeof text, HEAD NODE1 "data_dir=%.*s\n", 188, path);
    expect_error(text, "t.conf:5: [node n1] data_dir: the path is 188 bytes, more than the 187 a "
                       "config line holds as \"data_dir = PATH\"");
    snprintf(text, sizeof text, HEAD "run_dir=%.*s\n" NODE1, 189, path);
    expect_error(text, "t.conf:3: [cluster] run_dir: the path is 189 bytes, more than the 188 a "
                       "config line holds as \"run_dir = PATH\"");
    snprintf(text, sizeof text, HEAD "run_dir=%.*s\n" NODE1 "data_dir=%.*s\n", 188, path, 187,
             path);
    cfg = load_ok(text);
    char *back = aq_node_config_to_text(cfg);
    cr_assert_not_null(back);
    aq_node_config *again = load_ok(back);
    cr_expect_str_eq(again->run_dir, cfg->run_dir);
    cr_expect_str_eq(again->nodes[0].data_dir, cfg->nodes[0].data_dir);
    aq_node_config_free(again);
    free(back);
    aq_node_config_free(cfg);
}

Test(config, too_many_nodes) {
    size_t cap = 64 * 1100;
    char *text = malloc(cap);
    size_t n = (size_t)snprintf(text, cap, HEAD);
    for (int i = 0; i < 1025; i++)
        n += (size_t)snprintf(text + n, cap - n, "[node n%d]\naddress = 10.%d.%d.1:1\n", i, i / 256,
                              i % 256);
    expect_error(text, "t.conf:2051: [node n1024]: more than 1024 nodes");
    free(text);
}

/* ---- comments, whitespace, line endings ---- */

Test(config, comments_and_whitespace) {
    const char *text = "\xef\xbb\xbf; a comment\n"
                       "# another\n"
                       "\n"
                       "  [ cluster ]   ; trailing comment\n"
                       "\tname\t=\tt   ; inline comment\n"
                       "    replicas=2\n"
                       "\n"
                       "[node\tn1]\n"
                       "    address = 127.0.0.1:5001 ; where\n"
                       "    memory_max = 64 MiB\n"
                       "  ; indented comment\n"
                       "[node n2]  # hash comment\n"
                       "address: 127.0.0.1:5002\n"
                       "data_dir = /tmp/a;b\n"
                       "memory_max = 2k\n";
    aq_node_config *cfg = load_ok(text);
    cr_expect_str_eq(cfg->name, "t");
    cr_expect_eq(cfg->replicas, 2);
    cr_assert_eq(cfg->nnodes, 2);
    cr_expect_str_eq(cfg->nodes[0].address, "127.0.0.1:5001");
    cr_expect_eq(cfg->nodes[0].memory_max, 64ull << 20);
    cr_expect_eq(cfg->nodes[0].line, 8);
    cr_expect_str_eq(cfg->nodes[1].data_dir, "/tmp/a;b");
    cr_expect_eq(cfg->nodes[1].memory_max, 2048);
    aq_node_config_free(cfg);
}

Test(config, crlf_line_endings) {
    const char *def = aq_node_config_default_text();
    size_t n = strlen(def);
    char *crlf = malloc(2 * n + 1), *p = crlf;
    for (size_t i = 0; i < n; i++) {
        if (def[i] == '\n')
            *p++ = '\r';
        *p++ = def[i];
    }
    *p = '\0';
    aq_node_config *a = load_ok(crlf), *b = load_ok(def);
    expect_same(a, b);
    aq_node_config_free(a);
    aq_node_config_free(b);
    /* Line numbers stay right with CRLF. */
    expect_error("[cluster]\r\nname = t\r\n\r\nbogus = 1\r\n",
                 "t.conf:4: [cluster] \"bogus\": unknown key (known: name, replicas, min_copies, "
                 "run_dir, repair_after, heartbeat, call_timeout, hello_timeout, secret_file, "
                 "encrypt, http_token_file, repair_interval, tombstone_ttl, scrub_rate)");
    free(crlf);
}

/* ---- files ---- */

Test(config, file_errors_name_the_file) {
    aq_node_config *cfg = (aq_node_config *)1;
    char err[256];
    cr_expect_eq(aq_node_config_load_file("/nonexistent/cluster.conf", &cfg, err, sizeof err),
                 -ENOENT);
    cr_expect_null(cfg);
    char want[256];
    snprintf(want, sizeof want, "/nonexistent/cluster.conf: cannot read: %s", strerror(ENOENT));
    cr_expect_str_eq(err, want);
    cr_expect_eq(aq_node_config_load_file("/", &cfg, err, sizeof err), -EISDIR);
    cr_expect_eq(strncmp(err, "/: cannot read: ", 16), 0, "%s", err);
    /* A NULL error buffer is fine. */
    cr_expect_eq(aq_node_config_load_file("/nonexistent/x", &cfg, NULL, 0), -ENOENT);
}

Test(config, relative_paths_follow_the_file) {
    char dir[] = "/tmp/aq_cfg_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], want[512];
    snprintf(path, sizeof path, "%s/c.conf", dir);
    write_file(path, "[cluster]\nname = t\nrun_dir = run\nsecret_file = ../s\n"
                     "[node n1]\naddress = 127.0.0.1:1\ndata_dir = data/n1\n"
                     "[node n2]\naddress = 127.0.0.1:2\ndata_dir = /abs\n");
    aq_node_config *cfg = NULL;
    char err[256];
    cr_assert_eq(aq_node_config_load_file(path, &cfg, err, sizeof err), 0, "%s", err);
    snprintf(want, sizeof want, "%s/data/n1", dir);
    cr_expect_str_eq(cfg->nodes[0].data_dir, want);
    snprintf(want, sizeof want, "%s/run", dir);
    cr_expect_str_eq(cfg->run_dir, want);
    snprintf(want, sizeof want, "%s/../s", dir);
    cr_expect_str_eq(cfg->secret_file, want);
    cr_expect_str_eq(cfg->nodes[1].data_dir, "/abs");
    aq_node_config_free(cfg);

    /* A relative path that fits its line but not once the file's folder is put in front. */
    char rel[200], text[400];
    memset(rel, 'r', sizeof rel);
    snprintf(text, sizeof text,
             "[cluster]\nname = t\n[node n1]\naddress = 1.2.3.4:5\n"
             "data_dir = %.*s\n",
             187 - (int)strlen(dir), rel);
    write_file(path, text);
    cr_expect_eq(aq_node_config_load_file(path, &cfg, err, sizeof err), AQ_ECONFIG);
    snprintf(want, sizeof want,
             "%s:5: [node n1] data_dir: the path is 188 bytes with the config's folder in front, "
             "more than the 187 a config line holds as \"data_dir = PATH\"",
             path);
    cr_expect_str_eq(err, want);

    write_file(path, "[cluster]\nname = t\n[node n1]\naddress = 1.2.3.4:5\nmemory_max = 7Q\n");
    cr_expect_eq(aq_node_config_load_file(path, &cfg, err, sizeof err), AQ_ECONFIG);
    snprintf(want, sizeof want,
             "%s:5: [node n1] memory_max: \"7Q\" is not a size (use e.g. 512MiB or 2GiB; no "
             "fractions)",
             path);
    cr_expect_str_eq(err, want);
    unlink(path);
    rmdir(dir);
}

/* ---- value parsers ---- */

Test(values, sizes) {
    struct {
        const char *text;
        int rc;
        uint64_t v;
    } cases[] = {
        {"0", 0, 0},
        {"1", 0, 1},
        {"1B", 0, 1},
        {"1K", 0, 1024},
        {"1KiB", 0, 1024},
        {"1kib", 0, 1024},
        {"1KB", 0, 1000},
        {"512 MiB", 0, 512ull << 20},
        {"2GiB", 0, 2ull << 30},
        {"2G", 0, 2ull << 30},
        {"3GB", 0, 3000000000ull},
        {"1TiB", 0, 1ull << 40},
        {"5TB", 0, 5000000000000ull},
        {"18446744073709551615", 0, UINT64_MAX},
        {"16777215TiB", 0, 16777215ull << 40},
        {"18446744073709551616", AQ_ELIMIT, 0},
        {"16777216TiB", AQ_ELIMIT, 0},
        {"99999999999999999999999GiB", AQ_ELIMIT, 0},
        {"1.5GiB", AQ_EPARSE, 0},
        {"-1", AQ_EPARSE, 0},
        {"+1", AQ_EPARSE, 0},
        {"", AQ_EPARSE, 0},
        {"GiB", AQ_EPARSE, 0},
        {"12XB", AQ_EPARSE, 0},
        {"1 GiB x", AQ_EPARSE, 0},
        {"1PiB", AQ_EPARSE, 0},
        {" 1", AQ_EPARSE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t v = 12345;
        int rc = aq_node_config_parse_size(cases[i].text, &v);
        cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d, want %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0)
            cr_expect_eq(v, cases[i].v, "\"%s\": %llu", cases[i].text, (unsigned long long)v);
        else
            cr_expect_eq(v, 12345, "\"%s\": a failed parse changed the output", cases[i].text);
    }
}

Test(values, durations) {
    struct {
        const char *text;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"0", 0, 0},
        {"1", 0, 1000},
        {"1.5", 0, 1500},
        {"1.5s", 0, 1500},
        {"250ms", 0, 250},
        {"250 ms", 0, 250},
        {"2m", 0, 120000},
        {"0.25m", 0, 15000},
        {"1h", 0, 3600000},
        {"1H", 0, 3600000},
        {"0.001s", 0, 1},
        {"0.0001h", 0, 360},
        {"0.5ms", AQ_EPARSE, 0},
        {"0.0001s", AQ_EPARSE, 0},
        {"720h", 0, 2592000000ull},
        {"2592000000ms", 0, 2592000000ull},
        {"2592000001ms", AQ_ELIMIT, 0},
        {"720.001h", AQ_ELIMIT, 0},
        {"99999999999999999999999s", AQ_ELIMIT, 0},
        {"1.000000000s", 0, 1000},
        {"1.0000000001s", AQ_EPARSE, 0},
        {"1.ms", AQ_EPARSE, 0},
        {".5s", AQ_EPARSE, 0},
        {"-1s", AQ_EPARSE, 0},
        {"1d", AQ_EPARSE, 0},
        {"", AQ_EPARSE, 0},
        {"s", AQ_EPARSE, 0},
        {"1e3", AQ_EPARSE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t v = 777;
        int rc = aq_node_config_parse_duration(cases[i].text, &v);
        cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d, want %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0)
            cr_expect_eq(v, cases[i].ms, "\"%s\": %llu", cases[i].text, (unsigned long long)v);
        else
            cr_expect_eq(v, 777, "\"%s\": a failed parse changed the output", cases[i].text);
    }
}

Test(values, booleans) {
    const char *yes[] = {"yes", "YES", "true", "True", "on", "1"};
    const char *no[] = {"no", "false", "OFF", "0"};
    const char *bad[] = {"", "y", "2", "yes please", "nope"};
    bool b;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        b = false;
        cr_expect_eq(aq_node_config_parse_bool(yes[i], &b), 0, "%s", yes[i]);
        cr_expect(b, "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        b = true;
        cr_expect_eq(aq_node_config_parse_bool(no[i], &b), 0, "%s", no[i]);
        cr_expect_not(b, "%s", no[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(aq_node_config_parse_bool(bad[i], &b), AQ_EPARSE, "%s", bad[i]);
}

Test(values, addresses) {
    struct {
        const char *text;
        int rc;
        const char *canonical;
        int family;
    } cases[] = {
        {"127.0.0.1:54321", 0, "127.0.0.1:54321", AF_INET},
        {"10.1.2.3:1", 0, "10.1.2.3:1", AF_INET},
        {"10.1.2.3:65535", 0, "10.1.2.3:65535", AF_INET},
        {"[::1]:54321", 0, "[::1]:54321", AF_INET6},
        {"[0:0:0:0:0:0:0:1]:7", 0, "[::1]:7", AF_INET6},
        {"[2001:DB8::A]:7", 0, "[2001:db8::a]:7", AF_INET6},
        {"127.0.0.1:0", AQ_EPARSE, NULL, 0},
        {"127.0.0.1:65536", AQ_EPARSE, NULL, 0},
        {"127.0.0.1:080", AQ_EPARSE, NULL, 0},
        {"127.0.0.1:+80", AQ_EPARSE, NULL, 0},
        {"127.0.0.1:", AQ_EPARSE, NULL, 0},
        {"127.0.0.1", AQ_EPARSE, NULL, 0},
        {"127.0.0.1:80x", AQ_EPARSE, NULL, 0},
        {"127.1:80", AQ_EPARSE, NULL, 0},
        {"256.0.0.1:80", AQ_EPARSE, NULL, 0},
        {"localhost:80", AQ_EPARSE, NULL, 0},
        {"::1:80", AQ_EPARSE, NULL, 0},
        {"[::1]80", AQ_EPARSE, NULL, 0},
        {"[::1]", AQ_EPARSE, NULL, 0},
        {"[127.0.0.1]:80", AQ_EPARSE, NULL, 0},
        {"[fe80::1%eth0]:80", AQ_EPARSE, NULL, 0},
        {"", AQ_EPARSE, NULL, 0},
        {"0.0.0.0:80", AQ_EINVAL, NULL, 0},
        {"[::]:80", AQ_EINVAL, NULL, 0},
        {"224.0.0.1:80", AQ_EINVAL, NULL, 0},
        {"239.255.255.255:80", AQ_EINVAL, NULL, 0},
        {"255.255.255.255:80", AQ_EINVAL, NULL, 0},
        {"[ff02::1]:80", AQ_EINVAL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aq_node_config_node n;
        memset(&n, 0, sizeof n);
        int rc = aq_node_config_parse_address(cases[i].text, &n);
        cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d, want %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0) {
            cr_expect_str_eq(n.address, cases[i].canonical);
            cr_expect_eq(n.sockaddr.ss_family, cases[i].family);
        } else {
            cr_expect_eq(n.address[0], '\0', "\"%s\": a failed parse changed the node",
                         cases[i].text);
        }
    }
}

/* ---- which nodes are here ---- */

Test(config, local_nodes) {
    /* 192.0.2.0/24 is TEST-NET-1: documentation only, never on a real interface. */
    aq_node_config *cfg = load_ok(HEAD "[node a]\naddress = 127.0.0.1:1\n"
                                       "[node b]\naddress = 192.0.2.1:1\n"
                                       "[node c]\naddress = 127.0.0.2:1\n");
    bool local[3] = {false, true, false};
    size_t n = 99;
    cr_assert_eq(aq_node_config_local_nodes(cfg, local, &n), 0);
    cr_expect(local[0]);
    cr_expect_not(local[1]);
    cr_expect(local[2], "all of 127.0.0.0/8 is this host");
    cr_expect_eq(n, 2);
    aq_node_config_free(cfg);
}

/* ---- arbitrary bytes never crash the loader ---- */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_outcome(int rc, aq_node_config *cfg, const char *err) {
    if (rc == 0) {
        cr_assert_not_null(cfg);
        cr_assert(cfg->nnodes >= 1 && cfg->replicas >= 1 && cfg->replicas <= cfg->nnodes);
        cr_assert(cfg->heartbeat_ms >= 10 && cfg->call_timeout_ms >= 1);
        for (size_t i = 0; i < cfg->nnodes; i++) {
            cr_assert(cfg->nodes[i].port >= 1 && cfg->nodes[i].memory_max >= 1);
            cr_assert_eq(aq_node_config_find(cfg, cfg->nodes[i].name), &cfg->nodes[i]);
        }
        aq_node_config_free(cfg);
    } else {
        cr_assert_eq(rc, AQ_ECONFIG, "rc %d: %s", rc, err);
        cr_assert_null(cfg);
        cr_assert_eq(strncmp(err, "fuzz:", 5), 0, "message without origin: %s", err);
    }
}

Test(config, random_and_mutated_buffers_never_crash) {
    const char *def = aq_node_config_default_text();
    size_t dlen = strlen(def);
    const char alphabet[] = "[]=:;#\n\r \t.0123456789abcdnoesyGiBKMmsh\"\\\xef\xbb\xbf\x00\xff";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char *buf = malloc(dlen + 64);
    char err[256];
    int ok = 0;
    for (int iter = 0; iter < 4000; iter++) {
        size_t len;
        if (iter % 2 == 0) {
            /* Random bytes from an alphabet rich in syntax characters. */
            len = rng_next(&seed) % 300;
            for (size_t i = 0; i < len; i++)
                buf[i] = alphabet[rng_next(&seed) % (sizeof alphabet - 1)];
        } else {
            /* The default config with a few bytes flipped, inserted or cut. */
            memcpy(buf, def, dlen);
            len = dlen;
            int edits = 1 + (int)(rng_next(&seed) % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = rng_next(&seed) % len;
                switch (rng_next(&seed) % 3) {
                case 0:
                    buf[at] = (char)rng_next(&seed);
                    break;
                case 1:
                    if (len < dlen + 60) {
                        memmove(buf + at + 1, buf + at, len - at);
                        buf[at] = alphabet[rng_next(&seed) % (sizeof alphabet - 1)];
                        len++;
                    }
                    break;
                default:
                    len = at + (rng_next(&seed) % 2 ? 0 : (len - at) / 2);
                    if (len == 0)
                        len = 1;
                    break;
                }
            }
        }
        /* Exactly len bytes on the heap, so ASan catches any read past the end. */
        char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        aq_node_config *cfg = NULL;
        int rc = aq_node_config_load_buffer(exact, len, "fuzz", &cfg, err, sizeof err);
        ok += rc == 0;
        check_outcome(rc, cfg, err);
        free(exact);
    }
    free(buf);
    /* Some mutations (in comments, say) leave a valid config: both paths were exercised. */
    cr_expect_gt(ok, 0);
}

Test(config, bad_arguments) {
    aq_node_config *cfg = NULL;
    cr_expect_eq(aq_node_config_load_string(NULL, "x", &cfg, NULL, 0), AQ_EINVAL);
    cr_expect_eq(aq_node_config_load_string("", "x", NULL, NULL, 0), AQ_EINVAL);
    cr_expect_eq(aq_node_config_load_buffer(NULL, 5, "x", &cfg, NULL, 0), AQ_EINVAL);
    cr_expect_null(aq_node_config_find(NULL, "a"));
    aq_node_config_free(NULL);
    /* A tiny error buffer truncates but stays a string. */
    char err[8];
    cr_expect_eq(aq_node_config_load_string("", "origin", &cfg, err, sizeof err), AQ_ECONFIG);
    cr_expect_str_eq(err, "origin:");
}
