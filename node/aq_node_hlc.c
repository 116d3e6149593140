/* The hybrid logical clock and its ceiling file (see aq_node_hlc.h). */
#include "aq_node_hlc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aq_error.h"

void aq_hlc_init(aq_hlc *c, uint64_t floor) {
    c->last = floor;
}

uint64_t aq_hlc_now(aq_hlc *c, uint64_t phys_ms) {
    uint64_t p = aq_hlc_from_ms(phys_ms);
    c->last = p > c->last ? p : c->last + 1;
    return c->last;
}

uint64_t aq_hlc_peek(const aq_hlc *c, uint64_t phys_ms) {
    uint64_t p = aq_hlc_from_ms(phys_ms);
    return p > c->last ? p : c->last;
}

bool aq_hlc_observe(aq_hlc *c, uint64_t remote, uint64_t phys_ms) {
    if (aq_hlc_ms(remote) > phys_ms + AQ_HLC_MAX_AHEAD_MS)
        return false;
    if (remote > c->last)
        c->last = remote;
    return true;
}

/* The file is one line: "aquifer-clock 1 <decimal ceiling>\n". */
#define MAGIC "aquifer-clock 1 "

int aq_hlc_ceiling_open(aq_hlc_ceiling *cl, const char *data_dir, uint64_t *floor) {
    memset(cl, 0, sizeof *cl);
    *floor = 0;
    pthread_mutex_init(&cl->lock, NULL);
    cl->opened = true;
    if (!data_dir)
        return 0;
    if (asprintf(&cl->path, "%s/CLOCK", data_dir) < 0) {
        cl->path = NULL;
        return AQ_ENOMEM;
    }
    int fd = open(cl->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = 0;
    size_t ml = strlen(MAGIC);
    char *end = NULL;
    if ((size_t)n <= ml || memcmp(buf, MAGIC, ml) != 0 || buf[ml] < '0' || buf[ml] > '9')
        return AQ_ECORRUPT;
    errno = 0;
    unsigned long long v = strtoull(buf + ml, &end, 10);
    if (errno || *end != '\n' || end[1] != 0)
        return AQ_ECORRUPT;
    cl->durable = v;
    *floor = v;
    return 0;
}

void aq_hlc_ceiling_close(aq_hlc_ceiling *cl) {
    if (!cl->opened)
        return;
    cl->opened = false;
    free(cl->path);
    cl->path = NULL;
    pthread_mutex_destroy(&cl->lock);
}

static int write_ceiling(const char *path, uint64_t v) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return -ENAMETOOLONG;
    char line[64];
    int len = snprintf(line, sizeof line, MAGIC "%" PRIu64 "\n", v);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (write(fd, line, (size_t)len) != len || fsync(fd) != 0)
        err = errno ? -errno : AQ_EIO;
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err) {
        unlink(tmp);
        return err;
    }
    /* The rename is durable only once the directory is. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    if (fsync(dfd) != 0)
        err = -errno;
    close(dfd);
    return err;
}

int aq_hlc_ceiling_cover(aq_hlc_ceiling *cl, uint64_t version) {
    if (!cl->path)
        return 0;
    pthread_mutex_lock(&cl->lock);
    int err = 0;
    if (version > cl->durable) {
        uint64_t want = version + aq_hlc_from_ms(AQ_HLC_RESERVE_MS);
        err = write_ceiling(cl->path, want);
        if (!err)
            cl->durable = want;
    }
    pthread_mutex_unlock(&cl->lock);
    return err;
}
