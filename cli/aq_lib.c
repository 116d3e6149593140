/* libaquifer's client (aquifer.h): opening and closing, the error of the last call, and the key
 * calls (put, get, rm, stat, list), each a thin shell over the command's core in this directory.
 *
 * Every call starts with lib_begin (what the call is, for its error sentence; the last failure
 * cleared) and ends with lib_end, which turns the core's exit code into the project's error code:
 * the one cli_fail recorded, or the closest to the exit code. The context is quiet: cli_fail
 * records and never prints, and warnings are dropped (a caller learns the outcome from the code and
 * from aquifer_written, not from text).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aq_lib.h"

const char *aquifer_version(void) {
    return "0.1.0";
}

const char *aquifer_strerror(int code) {
    return aq_strerror(code);
}

const char *aquifer_errname(int code) {
    return aq_errname(code);
}

void aq_lib_begin(aquifer *a, const char *verb, const char *arg) {
    cli *c = &a->c;
    cli_what_set(a->what, sizeof a->what, verb, arg);
    /* The key goes into the sentence: no control bytes or broken UTF-8 in it. */
    cli_text_safe(a->what);
    c->what = a->what;
    c->fail_msg[0] = 0;
    c->fail_err = 0;
    c->json = false;
    c->out_path = NULL;
    c->wrep_any = false;
    c->wrep_copies = c->wrep_wanted = 0;
    if (c->wrep_missing)
        memset(c->wrep_missing, 0, c->conf->nnodes * sizeof *c->wrep_missing);
}

int aq_lib_end(aquifer *a, int rc) {
    cli *c = &a->c;
    if (rc == 0) {
        c->fail_msg[0] = 0;
        c->fail_err = 0;
        return 0;
    }
    if (!c->fail_err) {
        c->fail_err = cli_exit_err(rc);
        if (!c->fail_msg[0])
            snprintf(c->fail_msg, sizeof c->fail_msg, "%s: %s", a->what, aq_strerror(c->fail_err));
    }
    return c->fail_err;
}

int aq_lib_fail(aquifer *a, int err, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_fail(&a->c, err, "%s", msg);
    return err;
}

int aquifer_open(const char *config, aquifer **out) {
    aquifer *a = calloc(1, sizeof *a);
    *out = a;
    if (!a)
        return AQ_ENOMEM;
    cli *c = &a->c;
    c->quiet = true;
    aq_lib_begin(a, "open", config && *config ? config : NULL);
    int rc = cli_conf_load(c, config);
    if (rc == 0) {
        rc = cli_open(c);
        if (rc == 0)
            a->opened = true;
    }
    return aq_lib_end(a, rc);
}

void aquifer_close(aquifer *a) {
    if (!a)
        return;
    cli_close(&a->c);
    aq_node_config_free(a->c.conf);
    free(a->c.conf_path);
    free(a);
}

const char *aquifer_errmsg(const aquifer *a) {
    return a ? a->c.fail_msg : "out of memory";
}

int aquifer_errcode(const aquifer *a) {
    return a ? a->c.fail_err : AQ_ENOMEM;
}

int aquifer_set_min_copies(aquifer *a, unsigned n) {
    aq_lib_begin(a, "min_copies", NULL);
    if (n > 255)
        return aq_lib_fail(a, AQ_EINVAL, "min_copies is 0 to 255, not %u", n);
    a->c.min_copies = n;
    return 0;
}

size_t aquifer_nnodes(const aquifer *a) {
    return a->c.conf ? a->c.conf->nnodes : 0;
}

const char *aquifer_node_name(const aquifer *a, size_t i) {
    return a->c.conf && i < a->c.conf->nnodes ? a->c.conf->nodes[i].name : NULL;
}

const char *aquifer_node_address(const aquifer *a, size_t i) {
    return a->c.conf && i < a->c.conf->nnodes ? a->c.conf->nodes[i].address : NULL;
}

int aq_lib_ready(aquifer *a) {
    if (!a->opened)
        return aq_lib_fail(a, AQ_ECLOSED, "%s",
                           "this client did not open (aquifer_open said why); open another");
    return 0;
}

int aq_lib_key(aquifer *a, const char *key) {
    if (!key)
        return aq_lib_fail(a, AQ_EKEY, "no key given");
    char why[128];
    if (cli_key_why(key, strlen(key), why, sizeof why))
        return aq_lib_fail(a, AQ_EKEY, "%s", why);
    return 0;
}

void aquifer_free(void *p) {
    free(p);
}

/* ---- stat ---- */

int aquifer_stat_key(aquifer *a, const char *key, aquifer_stat *st) {
    aq_lib_begin(a, "stat", key);
    memset(st, 0, sizeof *st);
    int err = aq_lib_ready(a);
    if (err || (err = aq_lib_key(a, key)) != 0)
        return err;
    cli_stat_info si;
    int rc = cli_stat_collect(&a->c, key, &si);
    if (rc)
        return aq_lib_end(a, rc);
    st->size = si.size;
    st->version = si.version;
    for (int i = 0; i < 8; i++) {
        st->digest[i] = (uint8_t)(si.digest.hi >> (56 - 8 * i));
        st->digest[8 + i] = (uint8_t)(si.digest.lo >> (56 - 8 * i));
    }
    st->large = si.large;
    st->chunks = si.nchunks;
    st->replicas = si.replicas;
    size_t nn = a->c.conf->nnodes;
    unsigned fewest = UINT32_MAX;
    for (uint32_t i = 0; i < si.nchunks; i++) {
        unsigned held = 0;
        for (size_t n = 0; n < nn; n++)
            held += si.held[(size_t)i * nn + n];
        if (held < fewest)
            fewest = held;
    }
    st->copies = si.nchunks ? fewest : 0;
    cli_stat_info_free(&si);
    return aq_lib_end(a, 0);
}

/* ---- list ---- */

struct aquifer_list {
    aquifer *a;
    cli_lsent *v;
    size_t n, next;
    char *key; /* the current key, NUL-terminated */
};

int aquifer_list_open(aquifer *a, const char *prefix, aquifer_list **out) {
    *out = NULL;
    aq_lib_begin(a, "ls", prefix && *prefix ? prefix : NULL);
    int err = aq_lib_ready(a);
    if (err)
        return err;
    aquifer_list *it = calloc(1, sizeof *it);
    if (!it)
        return aq_lib_fail(a, AQ_ENOMEM, "out of memory");
    it->a = a;
    int rc = cli_ls_collect(&a->c, prefix ? prefix : "", &it->v, &it->n);
    if (rc) {
        free(it);
        return aq_lib_end(a, rc);
    }
    *out = it;
    return aq_lib_end(a, 0);
}

int aquifer_list_next(aquifer_list *it, const char **key, size_t *klen, uint64_t *size) {
    free(it->key);
    it->key = NULL;
    if (it->next >= it->n)
        return 0;
    const cli_lsent *e = &it->v[it->next++];
    it->key = malloc(e->klen + 1);
    if (!it->key)
        return aq_lib_fail(it->a, AQ_ENOMEM, "out of memory");
    memcpy(it->key, e->key, e->klen);
    it->key[e->klen] = 0;
    *key = it->key;
    if (klen)
        *klen = e->klen;
    if (size)
        *size = e->size_known ? e->size : UINT64_MAX;
    return 1;
}

void aquifer_list_close(aquifer_list *it) {
    if (!it)
        return;
    cli_ls_free(it->v, it->n);
    free(it->key);
    free(it);
}
