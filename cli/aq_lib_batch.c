/* libaquifer's batches (aquifer.h): many puts and gets in flight, over the command's batch engine
 * (cli_xfer_batch: one endpoint and loop of its own, each operation a state machine).
 *
 * Each operation is one cli_xfer_item the batch owns from submit until the caller has seen its
 * result: the key and a put's bytes are copied at submit (the caller may reuse its buffers at
 * once), and the item of the last result handed out is freed on the next call, which is how long
 * its strings stay valid. A get's value is handed over to the caller with the result.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "aq_lib.h"
#include "cli_xfer.h"

#define BATCH_DEFAULT 64

typedef struct lib_item {
    cli_xfer_item it; /* a put's bytes are in it.put_mem, for the batch to send without a copy */
    char *key;
} lib_item;

struct aquifer_batch {
    aquifer *a;
    cli_xfer_batch *xb;
    lib_item *last; /* the item of the last result handed out */
};

static void item_free(lib_item *li) {
    if (!li)
        return;
    free(li->it.out);
    free(li->it.put_mem);
    free(li->key);
    free(li);
}

/* A zeroed item but for its message (1 KiB, written before it is read: submit empties it). */
static lib_item *item_new(void) {
    lib_item *li = malloc(sizeof *li);
    if (li) {
        memset(li, 0, offsetof(lib_item, it.msg));
        memset(&li->it.out, 0, sizeof *li - offsetof(lib_item, it.out));
        li->it.msg[0] = 0;
    }
    return li;
}

int aquifer_batch_new(aquifer *a, unsigned inflight, aquifer_batch **out) {
    *out = NULL;
    aq_lib_begin(a, "batch", NULL);
    int err = aq_lib_ready(a);
    if (err)
        return err;
    int rc = aq_lib_live(a);
    if (rc)
        return aq_lib_end(a, rc);
    aquifer_batch *b = calloc(1, sizeof *b);
    if (!b)
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    b->a = a;
    rc = cli_xfer_batch_open(&a->c, inflight ? inflight : BATCH_DEFAULT, 1, &b->xb);
    if (rc) {
        free(b);
        return aq_lib_end(a, rc);
    }
    *out = b;
    return aq_lib_end(a, 0);
}

static int submit(aquifer_batch *b, bool get, const char *key, const void *data, size_t len,
                  void *ud) {
    aquifer *a = b->a;
    aq_lib_begin(a, get ? "get" : "put", key);
    int err = aq_lib_key(a, key);
    if (err)
        return err;
    if (!get && !data && len)
        return aq_lib_fail(a, AQ_EINVAL, "no data for %zu bytes", len);
    lib_item *li = item_new();
    if (!li || !(li->key = strdup(key)) ||
        (!get && !(li->it.put_mem = malloc(AQ_PUT_HEAD_MAX + len)))) {
        item_free(li);
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    }
    if (!get && len)
        memcpy(li->it.put_mem + AQ_PUT_HEAD_MAX, data, len);
    li->it.get = get;
    li->it.key = li->key;
    li->it.fd = -1;
    li->it.buf = get ? NULL : li->it.put_mem + AQ_PUT_HEAD_MAX;
    li->it.len = len;
    li->it.ud = ud;
    int rc = cli_xfer_batch_submit(b->xb, &li->it);
    if (rc) {
        item_free(li);
        return aq_lib_end(a, rc);
    }
    return aq_lib_end(a, 0);
}

int aquifer_batch_put(aquifer_batch *b, const char *key, const void *data, size_t len, void *ud) {
    return submit(b, false, key, data, len, ud);
}

int aquifer_batch_get(aquifer_batch *b, const char *key, void *ud) {
    return submit(b, true, key, NULL, 0, ud);
}

int aquifer_batch_next(aquifer_batch *b, aquifer_result *r) {
    item_free(b->last);
    b->last = NULL;
    memset(r, 0, sizeof *r);
    cli_xfer_item *it = cli_xfer_batch_next(b->xb);
    if (!it)
        return 0;
    lib_item *li = (lib_item *)it; /* it is li's first member */
    b->last = li;
    r->op = it->get ? AQUIFER_OP_GET : AQUIFER_OP_PUT;
    r->ud = it->ud;
    r->key = li->key;
    r->err = it->rc ? (it->err ? it->err : cli_exit_err(it->rc)) : 0;
    r->errmsg = it->rc ? it->msg : "";
    r->written = (aquifer_written){it->copies, it->wanted};
    if (it->get && !it->rc) {
        r->data = it->out ? it->out : malloc(1);
        r->len = it->outlen;
        it->out = NULL;
        if (!r->data) {
            r->err = AQ_ENOMEM;
            r->errmsg = "out of memory";
        }
    }
    return 1;
}

size_t aquifer_batch_pending(const aquifer_batch *b) {
    return cli_xfer_batch_pending(b->xb);
}

void aquifer_batch_free(aquifer_batch *b) {
    if (!b)
        return;
    item_free(b->last);
    /* Results not taken are dropped with their items. */
    cli_xfer_item *it;
    while ((it = cli_xfer_batch_next(b->xb)) != NULL)
        item_free((lib_item *)it);
    cli_xfer_batch_close(b->xb);
    free(b);
}
