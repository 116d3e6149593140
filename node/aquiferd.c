/* aquiferd: run one node of a cluster in the foreground. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aq_alloc.h"
#include "aq_error.h"
#include "aq_node.h"
#include "aq_node_config.h"
#include "aq_node_log.h"

/* Read by jemalloc (which serves this process's malloc) when it starts.
 * - muzzy_decay_ms:-1: freed pages are never purged with MADV_DONTNEED but lazily freed
 *   (MADV_FREE, reclaimed by the kernel only under memory pressure). A put that replaces a large
 *   value frees its old parts in a burst, which jemalloc purges at once whatever its decay time;
 *   the next put's receive buffers, which the store adopts as the new chunks, would then fault in
 *   every page afresh.
 * - thp:always: jemalloc asks for transparent huge pages (MADV_HUGEPAGE) on its memory, so a chunk
 *   received into fresh memory takes two page faults instead of a thousand. Where the kernel's
 *   THP mode is "madvise" (Debian's default) this is what turns huge pages on; a node's memory is
 *   mostly 4 MiB chunks, so little is wasted on rounding. */
const char *malloc_conf = "muzzy_decay_ms:-1,thp:always";

static const char usage[] =
    "usage: aquiferd -c FILE -n NAME [--log-level LEVEL]\n"
    "\n"
    "Runs node NAME of the cluster described in FILE in the foreground, logging to stderr.\n"
    "It binds UDP and TCP on the node's address, loads its data_dir (if any) and serves until "
    "SIGTERM or\n"
    "SIGINT, which stop it cleanly: calls in flight finish (or fail clearly) within 10 s and the "
    "data_dir\n"
    "stays consistent. A second signal stops it at once.\n"
    "With http_address in its [node NAME] section it also serves HTTP there: /metrics "
    "(Prometheus),\n"
    "/livez, /readyz, /status and a status page at / (see the README's HTTP section).\n"
    "\n"
    "  -c, --config FILE     cluster configuration (see cluster.example.conf)\n"
    "  -n, --name NAME       which [node NAME] of the file this process is\n"
    "  -l, --log-level LEVEL error, warn, info (default) or debug\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit status: 0 after a clean stop, 1 for bad usage or configuration, 2 if the node failed to "
    "start.\n";

typedef struct daemon_state {
    uv_loop_t *loop;
    aq_log log;
    aq_node *node;
    uv_signal_t sigterm, sigint;
    int signals;
    int exit_code;
} daemon_state;

static void stopped(void *ud) {
    daemon_state *d = ud;
    d->node = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
    daemon_state *d = s->data;
    d->signals++;
    if (d->signals > 1) {
        aq_logf(&d->log, AQ_LOG_WARN, "second signal: exiting now");
        exit(d->exit_code ? d->exit_code : 1);
    }
    aq_logf(&d->log, AQ_LOG_INFO, "%s received", strsignal(signum));
    if (d->node)
        aq_node_stop(d->node, 10000, stopped, d);
    else
        stopped(d);
}

static void ready(void *ud, int err) {
    daemon_state *d = ud;
    if (err) {
        d->node = NULL;
        d->exit_code = 2;
        aq_logf(&d->log, AQ_LOG_ERROR, "node failed to start: %s", aq_strerror(err));
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        uv_close((uv_handle_t *)&d->sigint, NULL);
    }
}

int main(int argc, char **argv) {
    aq_alloc_tune_for_chunks();
    const char *conf = NULL, *name = NULL;
    int level = AQ_LOG_INFO;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:n:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'l':
            level = aq_log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr,
                        "aquiferd: --log-level must be error, warn, info or debug, not \"%s\"\n",
                        optarg);
                return 1;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 1;
        }
    }
    if (optind < argc || !conf || !name) {
        fprintf(stderr, "aquiferd: %s\n\n%s",
                optind < argc ? "unexpected argument" : "both -c FILE and -n NAME are required",
                usage);
        return 1;
    }
    char err[512];
    aq_node_config *cfg = NULL;
    int rc = aq_node_config_load_file(conf, &cfg, err, sizeof err);
    if (rc) {
        fprintf(stderr, "aquiferd: %s\n", err);
        return 1;
    }
    if (!aq_node_config_find(cfg, name)) {
        fprintf(stderr, "aquiferd: %s has no [node %s]\n", conf, name);
        aq_node_config_free(cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    daemon_state d;
    memset(&d, 0, sizeof d);
    d.loop = uv_default_loop();
    aq_log_init(&d.log, stderr, level, name);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    rc = aq_node_start(d.loop, cfg, name, &d.log, ready, &d, &d.node);
    if (rc) {
        aq_logf(&d.log, AQ_LOG_ERROR, "cannot start: %s", aq_strerror(rc));
        d.exit_code = 2;
        uv_close((uv_handle_t *)&d.sigterm, NULL);
        uv_close((uv_handle_t *)&d.sigint, NULL);
    }
    uv_run(d.loop, UV_RUN_DEFAULT);
    uv_loop_close(d.loop);
    aq_node_config_free(cfg);
    return d.exit_code;
}
