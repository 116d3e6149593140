#include "aq_error.h"

#include <string.h>

struct aq_err_entry {
    int code;
    const char *name;
    const char *text;
};

static const struct aq_err_entry aq_errs[] = {
    {AQ_EINVAL, "AQ_EINVAL", "invalid argument"},
    {AQ_ENOMEM, "AQ_ENOMEM", "out of memory"},
    {AQ_EKEY, "AQ_EKEY", "invalid key (must be 1 to 255 bytes of UTF-8 without NUL)"},
    {AQ_ETOOBIG, "AQ_ETOOBIG", "too large"},
    {AQ_ENOTFOUND, "AQ_ENOTFOUND", "not found"},
    {AQ_EFULL, "AQ_EFULL", "memory limit (memory_max) reached"},
    {AQ_EIO, "AQ_EIO", "I/O error"},
    {AQ_ECORRUPT, "AQ_ECORRUPT", "data is corrupt (digest mismatch)"},
    {AQ_ELOCKED, "AQ_ELOCKED", "data directory is locked by another process"},
    {AQ_ETIMEDOUT, "AQ_ETIMEDOUT", "timed out"},
    {AQ_EBUSY, "AQ_EBUSY", "peer is overloaded"},
    {AQ_ERESTARTED, "AQ_ERESTARTED", "peer restarted; the call may or may not have run"},
    {AQ_ECLOSED, "AQ_ECLOSED", "endpoint is closed"},
    {AQ_EPROTO, "AQ_EPROTO", "protocol error (malformed or foreign message)"},
    {AQ_EQUEUEFULL, "AQ_EQUEUEFULL", "too many calls queued for this peer"},
    {AQ_ECANCELED, "AQ_ECANCELED", "canceled"},
    {AQ_EAUTH, "AQ_EAUTH", "authentication failed"},
    {AQ_ENOMETHOD, "AQ_ENOMETHOD", "unknown method"},
    {AQ_ECONFIG, "AQ_ECONFIG", "bad configuration"},
    {AQ_EEXIST, "AQ_EEXIST", "already exists"},
    {AQ_EUNAVAIL, "AQ_EUNAVAIL", "no live node can serve the request"},
    {AQ_EPARSE, "AQ_EPARSE", "input could not be parsed"},
    {AQ_ELIMIT, "AQ_ELIMIT", "a configured limit was exceeded"},
    {AQ_ESTALE, "AQ_ESTALE", "a newer version is already stored"},
    {AQ_EDEADLINE, "AQ_EDEADLINE", "the deadline passed before the node could apply it"},
};

static const struct aq_err_entry *aq_err_find(int code) {
    for (size_t i = 0; i < sizeof aq_errs / sizeof aq_errs[0]; i++)
        if (aq_errs[i].code == code)
            return &aq_errs[i];
    return NULL;
}

const char *aq_strerror(int code) {
    if (code == 0)
        return "success";
    const struct aq_err_entry *e = aq_err_find(code);
    if (e)
        return e->text;
    if (code < 0 && code > -4096)
        return strerror(-code); /* glibc returns a static string for known errnos */
    return "unknown error";
}

const char *aq_errname(int code) {
    if (code == 0)
        return "OK";
    const struct aq_err_entry *e = aq_err_find(code);
    if (e)
        return e->name;
    if (code < 0 && code > -4096) {
        const char *n = strerrorname_np(-code);
        return n ? n : "EUNKNOWN";
    }
    return "EUNKNOWN";
}
