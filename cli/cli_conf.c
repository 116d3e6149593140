/* Finding the cluster config: -c FILE, else $AQUIFER_CONF, else ./cluster.conf, else the built-in
 * default (three nodes on 127.0.0.1, as cluster.example.conf). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_conf_load(cli *c, const char *opt_path) {
    const char *path = opt_path;
    const char *why = "-c";
    if (!path || !*path) {
        const char *env = getenv("AQUIFER_CONF");
        if (env && *env) {
            path = env;
            why = "$AQUIFER_CONF";
        } else if (access("cluster.conf", F_OK) == 0) {
            path = "cluster.conf";
            why = "./cluster.conf";
        }
    }
    char err[512];
    int rc;
    if (path) {
        rc = aq_node_config_load_file(path, &c->conf, err, sizeof err);
        if (rc == 0) {
            c->conf_path = realpath(path, NULL);
            if (!c->conf_path)
                c->conf_path = strdup(path);
            if (!c->conf_path)
                return cli_fail(c, AQ_ENOMEM, "out of memory");
        }
    } else {
        rc = aq_node_config_load_default(&c->conf, err, sizeof err);
    }
    if (rc) {
        /* The loader's sentence already names the file, line and key. */
        if (path && strstr(err, path) == NULL)
            return cli_fail(c, AQ_ECONFIG, "config %s (from %s): %s", path, why, err);
        return cli_fail(c, AQ_ECONFIG, "%s", err);
    }
    return 0;
}
