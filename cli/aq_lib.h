/* aq_lib: what libaquifer's files (aq_lib*.c) share: the client handle over the command's
 * context, and the helpers every call opens and closes with. Not installed: aquifer.h is the
 * public header. */
#ifndef AQ_LIB_H
#define AQ_LIB_H

#include <stdarg.h>

#include "aquifer.h"
#include "cli.h"

struct aquifer {
    cli c;              /* quiet: failures are recorded, never printed */
    bool opened;        /* cli_open succeeded */
    char what[400];     /* the current call ("get KEY"), first in its error sentence */
    uint64_t probed_ms; /* when the last liveness probe found live nodes (ms), 0: never */
};

/* Starts a call: names it (verb and its argument, control bytes replaced) and clears the last
 * failure and the write report. */
void aq_lib_begin(aquifer *a, const char *verb, const char *arg);
/* Ends a call whose core returned exit code rc: 0, or the recorded error code (a sentence is
 * always left in the context). */
int aq_lib_end(aquifer *a, int rc);
/* Records a failure of the current call; returns err. */
int aq_lib_fail(aquifer *a, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 0 when the client opened, else a recorded AQ_ECLOSED. */
int aq_lib_ready(aquifer *a);
/* 0 when key is a user key, else a recorded AQ_EKEY. */
int aq_lib_key(aquifer *a, const char *key);

/* The live nodes known (a probe unless a recent one found some): the exit code. */
int aq_lib_live(aquifer *a);

#endif
