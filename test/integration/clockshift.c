/* clockshift: an LD_PRELOAD shim that shifts the wall clock (CLOCK_REALTIME and its coarse
 * variant, gettimeofday, time) of the process it is loaded into by AQ_CLOCK_SHIFT_S seconds
 * (signed; absent or 0: no shift). The monotonic clocks are left alone: skew between machines
 * is a disagreement of wall clocks, which is what the integration tests inject from outside the
 * node. */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static long long shift_s(void) {
    const char *e = getenv("AQ_CLOCK_SHIFT_S");
    return e ? strtoll(e, NULL, 10) : 0;
}

static clock_gettime_fn real_clock_gettime(void) {
    static clock_gettime_fn fn;
    if (!fn)
        fn = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return fn;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = real_clock_gettime()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += shift_s();
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
