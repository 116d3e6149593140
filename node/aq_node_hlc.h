/* aq_node_hlc: the hybrid logical clock that versions every write, and the ceiling file that keeps
 * it above everything issued before a restart.
 *
 * A version is a u64 compared as an integer: the high 48 bits are milliseconds of the Unix epoch
 * (2^48 ms is almost 9,000 years), the low 16 bits a logical counter. Issuing is
 * max(last + 1, physical ms << 16): the counter runs within one millisecond and carries into the
 * millisecond part when it overflows, so versions are strictly increasing whatever the physical
 * clock does (stepped back, stopped). Observing a remote clock (a heartbeat, a forwarded write, a
 * STALE answer) raises `last` to it, so a node's next version is above every version it has seen:
 * causality survives skewed clocks. A remote clock more than AQ_HLC_MAX_AHEAD_MS ahead of our
 * physical clock is not observed (a peer with a clock years ahead would otherwise drag every node's
 * versions with it); the caller logs it.
 *
 * The clock functions are pure: they take the physical time as an argument, so tests can drive any
 * skew. The ceiling file (data_dir/CLOCK) holds a version above every version issued so far: a
 * node reads it at start and issues only above it, and raises it (durably, fsync) before storing
 * a version that would pass it, reserving AQ_HLC_RESERVE_MS ahead so that happens rarely.
 * aq_hlc_ceiling_* touch the disk: call them from the threadpool, never from the loop.
 */
#ifndef AQ_NODE_HLC_H
#define AQ_NODE_HLC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define AQ_HLC_LOGICAL_BITS 16
#define AQ_HLC_MAX_AHEAD_MS                                                                        \
    (24ull * 3600 * 1000)          /* remote clocks further ahead are not observed                 \
                                    */
#define AQ_HLC_RESERVE_MS 10000ull /* how far ahead the ceiling is raised */

typedef struct aq_hlc {
    uint64_t last; /* the highest version issued or observed */
} aq_hlc;

/* The version for physical time ms with a zero counter. */
static inline uint64_t aq_hlc_from_ms(uint64_t ms) {
    return ms << AQ_HLC_LOGICAL_BITS;
}
/* The millisecond part of a version (for ages: a tombstone's, a deadline's). */
static inline uint64_t aq_hlc_ms(uint64_t version) {
    return version >> AQ_HLC_LOGICAL_BITS;
}

/* Starts the clock above floor (0, or the ceiling read from the file). */
void aq_hlc_init(aq_hlc *c, uint64_t floor);
/* A new version, strictly above every version issued or observed. */
uint64_t aq_hlc_now(aq_hlc *c, uint64_t phys_ms);
/* The clock now without issuing a version: max(last, physical ms << 16). What heartbeats send, so
 * peers learn a node's clock before it writes anything. */
uint64_t aq_hlc_peek(const aq_hlc *c, uint64_t phys_ms);
/* Raises the clock to remote. False (nothing changed) when remote is more than
 * AQ_HLC_MAX_AHEAD_MS ahead of phys_ms. */
bool aq_hlc_observe(aq_hlc *c, uint64_t remote, uint64_t phys_ms);

/* The ceiling file. Without a data_dir (path NULL) every call succeeds and persists nothing. */
typedef struct aq_hlc_ceiling {
    char *path; /* data_dir/CLOCK, or NULL */
    pthread_mutex_t lock;
    uint64_t durable; /* the ceiling on disk: no version above it has been stored */
    bool opened;      /* lock initialised (close does nothing on a zeroed, never opened one) */
} aq_hlc_ceiling;

/* Reads data_dir/CLOCK (absent: 0) into *floor. AQ_ECORRUPT for a file that is not one, a negated
 * errno for an I/O error, AQ_ENOMEM. */
int aq_hlc_ceiling_open(aq_hlc_ceiling *cl, const char *data_dir, uint64_t *floor);
void aq_hlc_ceiling_close(aq_hlc_ceiling *cl);
/* Makes sure the durable ceiling is at least version: if not, writes version plus the reserve
 * (temporary file, fsync, rename, fsync of the directory) before it returns 0. Any thread. */
int aq_hlc_ceiling_cover(aq_hlc_ceiling *cl, uint64_t version);

#endif
