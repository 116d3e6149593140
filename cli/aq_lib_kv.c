/* libaquifer's values (aquifer.h): put and get from and to buffers and file descriptors, and rm,
 * over the command's transfer entry points (cli_xfer.h) and rm's core.
 *
 * Liveness: a transfer needs the live nodes known. The probe (STATUS to every node) is repeated
 * only when the last one is older than PROBE_FRESH_MS, so a program making many calls pays one
 * probe a second, not one per call; a node that dies meanwhile costs the call one timeout and is
 * then left out until the next probe (cli_client.c).
 */
#include <stdlib.h>
#include <string.h>

#include "aq_lib.h"
#include "cli_xfer.h"

#define PROBE_FRESH_MS 1000

int aq_lib_live(aquifer *a) {
    uint64_t now = uv_hrtime() / 1000000;
    if (a->probed_ms && now - a->probed_ms < PROBE_FRESH_MS) {
        for (size_t i = 0; i < a->c.conf->nnodes; i++)
            if (a->c.live[i])
                return 0;
    }
    int rc = cli_need_live(&a->c);
    a->probed_ms = rc ? 0 : now;
    return rc;
}

/* The common opening of a key call: named, open, a user key, live nodes known. */
static int kv_begin(aquifer *a, const char *verb, const char *key) {
    aq_lib_begin(a, verb, key);
    int err = aq_lib_ready(a);
    if (err || (err = aq_lib_key(a, key)) != 0)
        return err;
    return aq_lib_end(a, aq_lib_live(a));
}

static void written(const aquifer *a, aquifer_written *w) {
    if (w)
        *w = (aquifer_written){a->c.wrep_copies, a->c.wrep_wanted};
}

int aquifer_put(aquifer *a, const char *key, const void *data, size_t len, aquifer_written *w) {
    if (w)
        *w = (aquifer_written){0, 0};
    int err = kv_begin(a, "put", key);
    if (err)
        return err;
    if (!data && len)
        return aq_lib_fail(a, AQ_EINVAL, "no data for %zu bytes", len);
    int rc = cli_xfer_put_buf(&a->c, key, len ? data : "", len);
    written(a, w);
    if (!rc)
        rc = cli_wrep_check(&a->c, "stored");
    return aq_lib_end(a, rc);
}

int aquifer_put_fd(aquifer *a, const char *key, int fd, aquifer_written *w) {
    if (w)
        *w = (aquifer_written){0, 0};
    int err = kv_begin(a, "put", key);
    if (err)
        return err;
    if (fd < 0)
        return aq_lib_fail(a, AQ_EINVAL, "no file descriptor (%d)", fd);
    int rc = cli_xfer_put_fd(&a->c, key, fd, "the input", 0);
    written(a, w);
    if (!rc)
        rc = cli_wrep_check(&a->c, "stored");
    return aq_lib_end(a, rc);
}

int aquifer_get(aquifer *a, const char *key, void **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int err = kv_begin(a, "get", key);
    if (err)
        return err;
    uint8_t *out = NULL;
    size_t n = 0;
    int rc = cli_xfer_get_buf(&a->c, key, &out, &n);
    if (rc) {
        free(out);
        return aq_lib_end(a, rc);
    }
    if (!out && (out = malloc(1)) == NULL)
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    *data = out;
    *len = n;
    return aq_lib_end(a, 0);
}

int aquifer_get_fd(aquifer *a, const char *key, int fd) {
    int err = kv_begin(a, "get", key);
    if (err)
        return err;
    if (fd < 0)
        return aq_lib_fail(a, AQ_EINVAL, "no file descriptor (%d)", fd);
    return aq_lib_end(a, cli_xfer_get_fd(&a->c, key, fd, "the output"));
}

static int rm_finish(cli *c, const char *verb, const char *key) {
    (void)key;
    return cli_wrep_check(c, verb);
}

int aquifer_rm(aquifer *a, const char *key, aquifer_written *w) {
    if (w)
        *w = (aquifer_written){0, 0};
    aq_lib_begin(a, "rm", key);
    int err = aq_lib_ready(a);
    if (err || (err = aq_lib_key(a, key)) != 0)
        return err;
    int rc = cli_rm_run(&a->c, key, rm_finish);
    written(a, w);
    return aq_lib_end(a, rc);
}
