/* Output files written whole or not at all (get -o, export -o): see cli.h, cli_outfile. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int cli_outfile_open(cli *c, const char *path, cli_outfile *o) {
    o->fd = STDOUT_FILENO;
    o->tmp = NULL;
    o->anon = false;
    o->path = path;
    if (!path || strcmp(path, "-") == 0) {
        o->path = NULL;
        return 0;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* A device (/dev/null), a FIFO or a terminal: renaming over it would replace it with a
         * regular file, so it is written in place, and a failure cannot be undone there. */
        if (S_ISDIR(sb.st_mode))
            return cli_fail(c, CLI_USAGE, "%s is a directory", path);
        o->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (o->fd < 0)
            return cli_fail(c, CLI_ERROR, "cannot open %s: %s", path, strerror(errno));
        return 0;
    }
    char *d = strdup(path), *b = strdup(path);
    const char *dir = d ? dirname(d) : NULL;
    if (!d || !b || asprintf(&o->tmp, "%s/.%s.aqtmp.XXXXXX", dir, basename(b)) < 0)
        o->tmp = NULL;
    /* Linking an unnamed file goes through /proc/self/fd. */
    if (o->tmp && access("/proc/self/fd", X_OK) == 0) {
        o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        o->anon = o->fd >= 0;
    }
    free(d);
    free(b);
    if (!o->tmp)
        return cli_fail(c, AQ_ENOMEM, "out of memory");
    if (o->anon)
        return 0;
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        return cli_fail(c, CLI_ERROR, "cannot create a file next to %s: %s", path, strerror(e));
    }
    return 0;
}

int cli_link_fd(int fd, int dfd, const char *name) {
    /* linkat(AT_EMPTY_PATH) would need CAP_DAC_READ_SEARCH; the /proc link needs nothing. */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW);
}

/* Links o's unnamed file under a fresh temporary name (o->tmp's XXXXXX filled in), so it can be
 * renamed over the file already at o->path: 0 (o->anon then false), or -1 with errno. */
static int link_temp(cli_outfile *o) {
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char *x = o->tmp + strlen(o->tmp) - 6;
    for (int tries = 0; tries < 100; tries++) {
        uint64_t r = cli_random_u64();
        for (int i = 0; i < 6; i++, r /= 36)
            x[i] = digits[r % 36];
        if (cli_link_fd(o->fd, AT_FDCWD, o->tmp) == 0) {
            o->anon = false;
            return 0;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

int cli_outfile_close(cli *c, cli_outfile *o, bool ok, bool durable) {
    if (!o->path)
        return 0;
    int rc = 0;
    if (!o->tmp) {
        if (close(o->fd) != 0 && ok)
            rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o->path, strerror(errno));
        o->fd = -1;
        return rc;
    }
    if (ok) {
        struct stat sb;
        /* Keep the mode an existing file had; otherwise the umask's usual 0666 & ~umask. */
        mode_t mode = 0666;
        if (stat(o->path, &sb) == 0) {
            mode = sb.st_mode & 07777;
        } else {
            mode_t um = umask(0);
            umask(um);
            mode &= ~um;
        }
        bool placed = false; /* linked under path: nothing to rename */
        if (fchmod(o->fd, mode) != 0 || (durable && fsync(o->fd) != 0)) {
            rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o->path, strerror(errno));
        } else if (o->anon) {
            placed = cli_link_fd(o->fd, AT_FDCWD, o->path) == 0;
            if (!placed && errno != EEXIST)
                rc = cli_fail(c, CLI_ERROR, "cannot create %s: %s", o->path, strerror(errno));
            else if (!placed && link_temp(o) != 0)
                rc = cli_fail(c, CLI_ERROR, "cannot create a file next to %s: %s", o->path,
                              strerror(errno));
        }
        if (close(o->fd) != 0 && !rc)
            rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", o->path, strerror(errno));
        else if (!rc && !placed && rename(o->tmp, o->path) != 0)
            rc = cli_fail(c, CLI_ERROR, "cannot rename %s to %s: %s", o->tmp, o->path,
                          strerror(errno));
    } else {
        close(o->fd);
    }
    o->fd = -1;
    if ((!ok || rc) && !o->anon)
        unlink(o->tmp);
    free(o->tmp);
    o->tmp = NULL;
    return rc;
}
