/* wireflip: an LD_PRELOAD shim that damages one byte of what its process sends, as a fault that
 * every transport check missed would (a bad NIC, a bad switch, memory on the way). With
 * AQ_WIRE_FLIP=1 the first write or writev of at least 128 KiB to a socket goes out with the byte
 * at its middle inverted, from a copy: the caller's own bytes stay as they were. Once per process.
 * AQ_WIRE_FLIP_MARK=PATH: that file is created when it happens, so a test knows the damage was
 * done. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FLIP_MIN (128u << 10)

typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*write_fn)(int, const void *, size_t);

static atomic_bool done;

/* Whether this write, of len bytes to fd, is the one to damage (and it is claimed). */
static int claim(int fd, size_t len) {
    const char *on = getenv("AQ_WIRE_FLIP");
    struct stat sb;
    if (!on || strcmp(on, "1") != 0 || len < FLIP_MIN || atomic_load(&done) ||
        fstat(fd, &sb) != 0 || !S_ISSOCK(sb.st_mode))
        return 0;
    return !atomic_exchange(&done, true);
}

static void mark(void) {
    const char *p = getenv("AQ_WIRE_FLIP_MARK");
    if (p) {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    static writev_fn real;
    if (!real)
        real = (writev_fn)dlsym(RTLD_NEXT, "writev");
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    if (!claim(fd, len))
        return real(fd, iov, cnt);
    char *copy = malloc(len);
    if (!copy)
        abort();
    size_t off = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(copy + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    copy[len / 2] ^= 0x5a;
    struct iovec one = {copy, len};
    ssize_t r = real(fd, &one, 1);
    free(copy);
    mark();
    return r;
}

ssize_t write(int fd, const void *buf, size_t len) {
    static write_fn real;
    if (!real)
        real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (!claim(fd, len))
        return real(fd, buf, len);
    char *copy = malloc(len);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    copy[len / 2] ^= 0x5a;
    ssize_t r = real(fd, copy, len);
    free(copy);
    mark();
    return r;
}
