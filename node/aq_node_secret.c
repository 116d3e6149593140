#include "aq_node_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aq_error.h"

int aq_node_secret_read(const char *path, uint8_t **out, size_t *len, char *why, size_t whylen) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        snprintf(why, whylen, "cannot open secret file %s: %s", path, aq_strerror(e));
        return e;
    }
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        snprintf(why, whylen, "cannot stat secret file %s: %s", path, aq_strerror(err));
    } else if (!S_ISREG(st.st_mode)) {
        err = AQ_ECONFIG;
        snprintf(why, whylen, "secret file %s is not a regular file", path);
    } else if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        err = AQ_ECONFIG;
        snprintf(why, whylen,
                 "secret file %s is readable or writable by group or others (mode %04o); "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
    } else if (st.st_size < (off_t)AQ_NODE_SECRET_MIN || st.st_size > (off_t)AQ_NODE_SECRET_MAX) {
        err = AQ_ECONFIG;
        snprintf(why, whylen,
                 "secret file %s holds %lld bytes; it needs %u to %u random bytes "
                 "(make one with `aquifer secret new PATH`)",
                 path, (long long)st.st_size, AQ_NODE_SECRET_MIN, AQ_NODE_SECRET_MAX);
    }
    if (err) {
        close(fd);
        return err;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = malloc(n);
    if (!b) {
        close(fd);
        snprintf(why, whylen, "out of memory reading %s", path);
        return AQ_ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = r < 0 ? -errno : AQ_EIO;
            snprintf(why, whylen, "cannot read secret file %s: %s", path, aq_strerror(err));
            close(fd);
            aq_node_secret_free(b, n);
            return err;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = b;
    *len = n;
    return 0;
}

void aq_node_secret_free(uint8_t *s, size_t len) {
    if (!s)
        return;
    sodium_memzero(s, len);
    free(s);
}

int aq_node_secret_new(const char *path, char *why, size_t whylen) {
    if (sodium_init() < 0) {
        snprintf(why, whylen, "cannot initialise libsodium");
        return AQ_EIO;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno == EEXIST ? AQ_EEXIST : -errno;
        snprintf(why, whylen, "cannot create %s: %s%s", path, aq_strerror(e),
                 e == AQ_EEXIST ? " (an existing secret is never overwritten)" : "");
        return e;
    }
    uint8_t b[AQ_NODE_SECRET_NEW];
    randombytes_buf(b, sizeof b);
    size_t done = 0;
    int err = 0;
    while (done < sizeof b) {
        ssize_t w = write(fd, b + done, sizeof b - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? -errno : AQ_EIO;
            break;
        }
        done += (size_t)w;
    }
    sodium_memzero(b, sizeof b);
    if (!err && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && !err)
        err = -errno;
    if (err) {
        unlink(path);
        snprintf(why, whylen, "cannot write %s: %s", path, aq_strerror(err));
    }
    return err;
}
