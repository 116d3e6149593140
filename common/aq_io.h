/* aq_io: whole reads and writes on a file descriptor, retried across EINTR and short counts.
 *
 * Invariants: aq_io_write_all returns 0 only when every byte was written; aq_io_read_full stops
 * early only at end of file, and *got says how many bytes arrived. Both return a negated errno on
 * the first failure (bytes before it may have been transferred). They block; a libuv loop thread
 * calls neither (its disk work runs in the threadpool). */
#ifndef AQ_IO_H
#define AQ_IO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

static inline int aq_io_write_all(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline int aq_io_read_full(int fd, void *buf, size_t n, size_t *got) {
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, p + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = done;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

#endif
