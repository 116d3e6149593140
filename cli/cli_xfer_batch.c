/* cli_xfer_batch: many puts and gets in flight at once (cli_xfer.h).
 *
 * Worker threads, each with a cli of its own (its own endpoint and event loop, c's config shared
 * read only, c's liveness copied at open), take items from one queue and run the single-value
 * entry points on them, one at a time; a finished item goes to a done list the caller drains
 * with next. Each worker's cli_fail writes into the item's msg (fail_sink), never on stderr.
 * One caller thread (the batch is used by one thread at a time), so a finished item signals it
 * alone; a queued item wakes one worker.
 * Invariants: queued + running items never exceed 2 * workers (submit waits for room); every
 * submitted item is returned by next exactly once, or dropped by close after it finished.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_xfer.h"

typedef struct worker {
    struct cli_xfer_batch *b;
    cli c;
    pthread_t thread;
    bool opened, started;
    char what[300];
} worker;

struct cli_xfer_batch {
    cli *parent;
    unsigned nworkers;
    worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;   /* workers: an item queued, or stop */
    pthread_cond_t cv_caller; /* the caller: an item finished (so also room to submit) */
    cli_xfer_item *q_head, *q_tail;
    cli_xfer_item *d_head, *d_tail;
    size_t pending; /* submitted, not yet returned by next */
    size_t ndone;   /* finished, not yet returned by next */
    bool stop;
};

static void push(cli_xfer_item **head, cli_xfer_item **tail, cli_xfer_item *it) {
    it->batch_next = NULL;
    if (*tail)
        (*tail)->batch_next = it;
    else
        *head = it;
    *tail = it;
}

static cli_xfer_item *pop(cli_xfer_item **head, cli_xfer_item **tail) {
    cli_xfer_item *it = *head;
    if (it) {
        *head = it->batch_next;
        if (!*head)
            *tail = NULL;
        it->batch_next = NULL;
    }
    return it;
}

static void run_item(worker *w, cli_xfer_item *it) {
    cli *c = &w->c;
    it->msg[0] = 0;
    it->out = NULL;
    it->outlen = 0;
    it->bytes = 0;
    it->copies = it->wanted = 0;
    snprintf(w->what, sizeof w->what, "%s %s", it->get ? "get" : "put", it->key);
    c->what = w->what;
    c->fail_err = 0;
    c->fail_sink = it->msg;
    c->fail_sink_cap = sizeof it->msg;
    const char *name = it->name ? it->name : "the input";
    int rc;
    if (!it->get) {
        rc = it->fd >= 0 ? cli_xfer_put_fd(c, it->key, it->fd, name, 0)
                         : cli_xfer_put_buf(c, it->key, it->buf, it->len);
        it->copies = c->wrep_copies;
        it->wanted = c->wrep_wanted;
        if (!rc)
            rc = cli_wrep_check(c, "stored");
    } else {
        rc = it->fd >= 0 ? cli_xfer_get_fd(c, it->key, it->fd, it->name ? it->name : "the output")
                         : cli_xfer_get_buf(c, it->key, &it->out, &it->outlen);
    }
    it->bytes = c->xfer_bytes;
    it->rc = rc;
    it->err = rc ? (c->fail_err ? c->fail_err : cli_exit_err(rc)) : 0;
    if (rc && !it->msg[0])
        snprintf(it->msg, sizeof it->msg, "%s: failed", w->what);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    cli_xfer_batch *b = w->b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        cli_xfer_item *it = pop(&b->q_head, &b->q_tail);
        if (!it) {
            if (b->stop)
                break;
            pthread_cond_wait(&b->cv_work, &b->mu);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        run_item(w, it);
        pthread_mutex_lock(&b->mu);
        push(&b->d_head, &b->d_tail, it);
        b->ndone++;
        pthread_cond_signal(&b->cv_caller);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void batch_free(cli_xfer_batch *b) {
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    for (unsigned i = 0; i < b->nworkers; i++) {
        worker *w = &b->w[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->opened)
            cli_close(&w->c);
    }
    pthread_cond_destroy(&b->cv_work);
    pthread_cond_destroy(&b->cv_caller);
    pthread_mutex_destroy(&b->mu);
    free(b->w);
    free(b);
}

int cli_xfer_batch_open(cli *c, unsigned workers, unsigned chunks, cli_xfer_batch **out) {
    *out = NULL;
    if (!workers)
        workers = CLI_XFER_WORKERS;
    cli_xfer_batch *b = calloc(1, sizeof *b);
    worker *ws = calloc(workers, sizeof *ws);
    if (!b || !ws) {
        free(b);
        free(ws);
        return cli_fail(c, CLI_ERROR, "out of memory");
    }
    b->parent = c;
    b->nworkers = workers;
    b->w = ws;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv_work, NULL);
    pthread_cond_init(&b->cv_caller, NULL);
    size_t nn = c->conf->nnodes;
    for (unsigned i = 0; i < workers; i++) {
        worker *w = &ws[i];
        w->b = b;
        w->c.conf = c->conf;
        w->c.what = c->what;
        w->c.min_copies = c->min_copies;
        w->c.quiet = c->quiet;
        w->c.on_warn = c->on_warn;
        w->c.warn_ud = c->warn_ud;
        w->c.chunks_inflight = chunks ? chunks : 1;
        int rc = cli_open(&w->c);
        w->opened = true;
        if (rc) {
            /* the worker's sentence is the caller's: the library reports it, not a bare code */
            memcpy(c->fail_msg, w->c.fail_msg, sizeof c->fail_msg);
            c->fail_err = w->c.fail_err;
            batch_free(b);
            return rc;
        }
        /* The parent's probe stands for every worker: one probe per command, not per thread. */
        memcpy(w->c.live, c->live, nn * sizeof *c->live);
        memcpy(w->c.mono_off, c->mono_off, nn * sizeof *c->mono_off);
        memcpy(w->c.mono_have, c->mono_have, nn * sizeof *c->mono_have);
        w->c.probe_ms = c->probe_ms;
    }
    for (unsigned i = 0; i < workers; i++) {
        int e = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (e) {
            batch_free(b);
            return cli_fail(c, CLI_ERROR, "cannot start a transfer thread: %s", strerror(e));
        }
        ws[i].started = true;
    }
    *out = b;
    return 0;
}

int cli_xfer_batch_submit(cli_xfer_batch *b, cli_xfer_item *it) {
    pthread_mutex_lock(&b->mu);
    while (b->pending - b->ndone >= 2 * (size_t)b->nworkers)
        pthread_cond_wait(&b->cv_caller, &b->mu);
    it->rc = 0;
    it->msg[0] = 0;
    push(&b->q_head, &b->q_tail, it);
    b->pending++;
    pthread_cond_signal(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

cli_xfer_item *cli_xfer_batch_next(cli_xfer_batch *b) {
    pthread_mutex_lock(&b->mu);
    while (!b->d_head && b->pending > 0)
        pthread_cond_wait(&b->cv_caller, &b->mu);
    cli_xfer_item *it = pop(&b->d_head, &b->d_tail);
    if (it) {
        b->pending--;
        b->ndone--;
    }
    pthread_mutex_unlock(&b->mu);
    return it;
}

cli_xfer_item *cli_xfer_batch_poll(cli_xfer_batch *b) {
    pthread_mutex_lock(&b->mu);
    cli_xfer_item *it = pop(&b->d_head, &b->d_tail);
    if (it) {
        b->pending--;
        b->ndone--;
    }
    pthread_mutex_unlock(&b->mu);
    return it;
}

size_t cli_xfer_batch_pending(const cli_xfer_batch *b) {
    pthread_mutex_lock((pthread_mutex_t *)&b->mu);
    size_t n = b->pending;
    pthread_mutex_unlock((pthread_mutex_t *)&b->mu);
    return n;
}

void cli_xfer_batch_close(cli_xfer_batch *b) {
    if (!b)
        return;
    cli_xfer_item *it;
    while ((it = cli_xfer_batch_next(b)) != NULL) {
        free(it->out);
        it->out = NULL;
        it->outlen = 0;
    }
    batch_free(b);
}
