/* put -r DIR PREFIX and get -r PREFIX DIR: a folder as many values, moved through a batch
 * (cli_xfer_batch.c) so many files are in flight at once.
 *
 * put -r stores every regular file under DIR as PREFIX + its path relative to DIR ('/' between
 * the parts). Directories are walked without following symbolic links; links, devices, FIFOs and
 * sockets are skipped (and counted in the summary); each file is then opened component by component
 * without following a symbolic link (a folder swapped for a link after the walk is refused, not
 * followed; the files of one folder read by one job share the walk of its path) and must still be a
 * regular file. get -r writes every key under PREFIX to DIR + the key without PREFIX, creating
 * directories. Nothing outside DIR is ever written: a key whose remainder is empty, absolute, has
 * an empty, "." or ".." part, or holds a NUL byte is refused and named, and every directory on the
 * way is opened without following symbolic links. Each file gets its name only once its value is
 * complete and verified: written without a name (O_TMPFILE) and linked, or through a temporary
 * file in its directory renamed over the name, so a failed or killed get -r leaves what was there.
 *
 * The file system's work (put -r's opens and reads, get -r's creates, writes and renames) runs in
 * libuv's threadpool beside the batch, so the loop keeps calls in flight meanwhile; results,
 * progress, budgets and the directory cache stay on the driver's thread.
 *
 * A file that fails is named on stderr and the rest carry on; the summary (or --json) counts
 * them, and any failure makes the command exit 4.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aq_io.h"
#include "cli.h"
#include "cli_xfer.h"

/* ---- the walk of DIR ---- */

typedef struct paths {
    char **v;
    size_t n, cap;
} paths;

static int paths_add(paths *p, char *s) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        char **nv = realloc(p->v, cap * sizeof *nv);
        if (!nv) {
            free(s);
            return AQ_ENOMEM;
        }
        p->v = nv;
        p->cap = cap;
    }
    p->v[p->n++] = s;
    return 0;
}

static void paths_free(paths *p) {
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static char *join(const char *a, const char *b) {
    char *s;
    if (asprintf(&s, "%s%s%s", a, a[0] ? "/" : "", b) < 0)
        return NULL;
    return s;
}

/* A folder the walk could not read: its path and why. */
static int bad_add(paths *bad, const char *path, int e) {
    char *p = strdup(path), *w = NULL;
    if (!p || asprintf(&w, "cannot read the folder: %s", strerror(e)) < 0) {
        free(p);
        return AQ_ENOMEM;
    }
    int err = paths_add(bad, p);
    return err ? (free(w), err) : paths_add(bad, w);
}

/* Adds the regular files under dfd (whose path below the root is rel) to files; a directory
 * that cannot be read goes to bad as two entries, its path and why; any other entry (a link, a
 * device, a FIFO, a socket) is counted in *skipped. Takes dfd. */
static int walk(int dfd, const char *rel, paths *files, paths *bad, size_t *skipped) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return bad_add(bad, rel[0] ? rel : ".", e);
    }
    int err = 0;
    struct dirent *de;
    while (!err && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        /* The entry's type as readdir gives it (what the link itself is, never its target);
         * only a file system that does not say is asked. */
        unsigned type = de->d_type;
        struct stat sb;
        if (type == DT_UNKNOWN) {
            if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
                continue; /* gone since readdir: not a file of the folder any more */
            type = S_ISREG(sb.st_mode) ? DT_REG : S_ISDIR(sb.st_mode) ? DT_DIR : DT_UNKNOWN;
        }
        char *sub = join(rel, de->d_name);
        if (!sub)
            err = AQ_ENOMEM;
        else if (type == DT_REG)
            err = paths_add(files, sub);
        else if (type == DT_DIR) {
            int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            err = cfd < 0 ? bad_add(bad, sub, errno) : walk(cfd, sub, files, bad, skipped);
            free(sub);
        } else {
            (*skipped)++;
            free(sub);
        }
    }
    if (!err && errno)
        err = bad_add(bad, rel[0] ? rel : ".", errno);
    closedir(d);
    return err;
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- progress and results ---- */

typedef struct tree_run {
    cli *c;
    const char *verb; /* "put -r", "get -r" */
    const char *dir, *prefix;
    size_t total, ok, failed;
    size_t skipped; /* put: entries under DIR that are no regular file or folder */
    bool walked;    /* put: skipped is known (shown even when 0) */
    uint64_t bytes;
    unsigned min_copies_seen, wanted; /* put: fewest copies of any file, and wanted */
    bool any_copies;
    size_t short_copies; /* put: files with fewer copies than wanted */
    const bool *missing; /* put: per node, a replica that missed some file's copy */
    bool tty;
    int shown;
    FILE *fails; /* the --json failures array, built as they come */
    char *fails_buf;
    size_t fails_len;
    struct timespec t0;
} tree_run;

static void progress(tree_run *t) {
    if (!t->tty)
        return;
    size_t done = t->ok + t->failed;
    int pct = t->total ? (int)(done * 100 / t->total) : 100;
    if (pct == t->shown && done != t->total)
        return;
    t->shown = pct;
    char b[32];
    cli_human_size(t->bytes, b, sizeof b);
    fprintf(stderr, "\r%s: %zu of %zu files, %s", t->verb, done, t->total, b);
    if (t->failed)
        fprintf(stderr, ", %zu failed", t->failed);
    fputs("\033[K", stderr);
    fflush(stderr);
}

/* One file failed: named on stderr now, and kept for the --json summary. */
static void failed(tree_run *t, const char *path, const char *key, size_t klen, const char *why) {
    t->failed++;
    if (t->tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "aquifer: %s: ", t->verb);
    if (path[0])
        cli_put_text(stderr, path, strlen(path));
    else
        cli_put_text(stderr, key, klen); /* the key names no file: the key then */
    fputs(": ", stderr);
    cli_put_text(stderr, why, strlen(why));
    fputc('\n', stderr);
    if (t->fails) {
        fputs(t->failed > 1 ? ",\n  {\"path\": " : "\n  {\"path\": ", t->fails);
        cli_json_str(t->fails, path, strlen(path));
        fputs(", \"key\": ", t->fails);
        cli_json_str(t->fails, key, klen);
        fputs(", \"error\": ", t->fails);
        cli_json_str(t->fails, why, strlen(why));
        fputc('}', t->fails);
    }
    progress(t);
}

static void tree_start(tree_run *t, cli *c, const char *verb, const char *dir, const char *prefix) {
    memset(t, 0, sizeof *t);
    t->c = c;
    t->verb = verb;
    t->dir = dir;
    t->prefix = prefix;
    t->tty = isatty(STDERR_FILENO);
    t->shown = -1;
    if (c->json)
        t->fails = open_memstream(&t->fails_buf, &t->fails_len);
    clock_gettime(CLOCK_MONOTONIC, &t->t0);
}

/* The summary on stdout; returns the exit code. */
/* After a failure that ended the walk: the list of failed files is not printed, so it goes. */
static void tree_drop_fails(tree_run *t) {
    if (!t->fails)
        return;
    fclose(t->fails);
    free(t->fails_buf);
    t->fails = NULL;
}

static int tree_finish(tree_run *t, const char *done_verb) {
    cli *c = t->c;
    if (t->tty && t->shown >= 0)
        fputs("\r\033[K", stderr);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t->t0.tv_sec) + (double)(t1.tv_nsec - t->t0.tv_nsec) / 1e9;
    if (c->json) {
        if (t->fails)
            fclose(t->fails);
        t->fails = NULL;
        printf("{\"dir\": ");
        cli_json_str(stdout, t->dir, strlen(t->dir));
        printf(", \"prefix\": ");
        cli_json_str(stdout, t->prefix, strlen(t->prefix));
        printf(", \"files\": %zu, \"%s\": %zu, \"failed\": %zu, \"bytes\": %llu, "
               "\"seconds\": %.3f",
               t->total, done_verb, t->ok, t->failed, (unsigned long long)t->bytes, secs);
        if (t->any_copies)
            printf(", \"copies\": %u, \"wanted\": %u", t->min_copies_seen, t->wanted);
        if (t->walked)
            printf(", \"skipped\": %zu", t->skipped);
        if (t->missing) {
            printf(", \"missing\": ");
            cli_nodes_json(c, t->missing, stdout);
        }
        printf(", \"failures\": [%s%s]}\n", t->fails_buf ? t->fails_buf : "",
               t->failed ? "\n" : "");
        free(t->fails_buf);
        t->fails_buf = NULL;
    } else {
        char b[32];
        cli_human_size(t->bytes, b, sizeof b);
        printf("%s %zu of %zu files (%s)", done_verb, t->ok, t->total, b);
        if (t->any_copies)
            printf(", fewest copies %u of %u", t->min_copies_seen, t->wanted);
        if (t->failed)
            printf("; %zu failed", t->failed);
        if (t->skipped)
            printf("; %zu skipped (links, devices, FIFOs, sockets)", t->skipped);
        putchar('\n');
    }
    if (fflush(stdout) != 0)
        return cli_fail(c, CLI_ERROR, "cannot write to stdout");
    if (t->short_copies) {
        char missing[1024];
        bool named = t->missing && cli_nodes_list(c, t->missing, missing, sizeof missing);
        fprintf(stderr, "aquifer: %s: warning: %zu files have fewer than %u copies%s%s\n", c->what,
                t->short_copies, t->wanted, named ? "; missing on: " : "", named ? missing : "");
    }
    if (t->failed)
        return cli_fail(c, CLI_ERROR, "%zu of %zu files failed (named above)", t->failed, t->total);
    return CLI_OK;
}

static int check_prefix(cli *c, const char *prefix) {
    size_t n = strlen(prefix);
    if (n > AQ_NODE_KEY_MAX || !cli_utf8_ok(prefix, n))
        return cli_fail(c, CLI_USAGE, "a prefix is at most 255 bytes of UTF-8");
    return 0;
}

/* ---- file work in the threadpool ----
 *
 * Both directions keep the batch's loop moving while the file system works: put -r reads files
 * ahead in libuv's threadpool (cli_xfer_batch_work), get -r hands fetched values to it to be
 * written. A work takes up to JOB_FILES files, so a thread's wake-up is shared by many small
 * files; at most JOBS works are queued, one per thread of the pool. Everything else (results,
 * progress, the directory cache, the budgets) stays on the driver's thread. */

#define JOB_FILES 32
#define JOBS      4
#define READ_MAX  (128u << 10)           /* put -r reads files up to this size ahead */
#define AHEAD     (2 * CLI_XFER_WORKERS) /* put -r: files read ahead of the batch, at most */
#define GET_BYTES (64u << 20)            /* get -r: bytes fetched and not yet written, at most */
#define GET_FILES (3 * CLI_XFER_WORKERS + JOBS * JOB_FILES) /* get -r: files held at once */

/* Opens the folder rel[0..len) (parts joined by '/') under root, every part without following a
 * symbolic link: its fd (root itself when len is 0), or a negated errno (ELOOP: a link on the
 * way; ENOENT: gone, or an empty or overlong part). */
static int open_dir_nofollow(int root, const char *rel, size_t len) {
    int fd = root; /* ours to close once it is not root */
    char part[256];
    const char *p = rel, *end = rel + len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (n == 0 || n >= sizeof part) {
            if (fd != root)
                close(fd);
            return -ENOENT;
        }
        memcpy(part, p, n);
        part[n] = 0;
        int nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        struct stat lb;
        /* A folder that is now a link fails as "not a directory": say what it is. */
        if (nfd < 0 && e == ENOTDIR && fstatat(fd, part, &lb, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(lb.st_mode))
            e = ELOOP;
        if (fd != root)
            close(fd);
        if (nfd < 0)
            return -e;
        fd = nfd;
        p += n + 1;
    }
    return fd;
}

/* Opens name in dfd for reading without following a symbolic link, and only if it is a regular
 * file (its stat in *sb). The fd, or a negated errno (EINVAL: not a regular file). */
static int open_file_nofollow(int dfd, const char *name, struct stat *sb) {
    if (!name[0] || strlen(name) > 255)
        return -ENOENT;
    /* O_NONBLOCK: a FIFO swapped in does not block the open (reads of a regular file ignore
     * it). */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

/* ---- put -r ---- */

typedef struct pfile {
    cli_xfer_item it;
    const char *rel;
    char *key;
    uint8_t *buf; /* read ahead: the file's bytes (it.buf) */
    int fd;       /* else the file, open at its start, for the batch to read */
    int err;      /* the open's or read's negated errno, or 0 */
    bool in_read; /* err is the read's */
    bool changed; /* its size or modification time moved while it was read */
    struct pfile *next;
} pfile;

typedef struct rjob {
    cli_xfer_work w; /* first: done gets it */
    struct put_run *pr;
    pfile *f[JOB_FILES];
    size_t n;
    struct rjob *next;
} rjob;

typedef struct put_run {
    tree_run t;
    int root;
    pfile *free_files;
    rjob *free_jobs, *jobs_done;
    size_t jobs_out;                /* queued, their done not yet run */
    pfile *ready_head, *ready_tail; /* read, waiting for room in the batch */
} put_run;

/* On a threadpool thread: opens f and reads it whole when it is small. A regular file's read
 * stops short only at its end, so one read that returns the size fstat gave is all of it; asking
 * one byte more shows a file that grew since, which the batch then reads from its start. */
static void read_one(int dfd, const char *name, pfile *f) {
    struct stat sb;
    int fd = open_file_nofollow(dfd, name, &sb);
    if (fd < 0) {
        f->err = fd;
        return;
    }
    size_t size = (size_t)sb.st_size, want = size + 1, got = 0;
    uint8_t *buf = sb.st_size <= (off_t)READ_MAX ? malloc(want) : NULL;
    if (!buf) {
        f->fd = fd; /* large (or no memory now): the batch reads it, with its own bounds */
        return;
    }
    while (got < want) {
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            f->err = -errno;
            f->in_read = true;
            free(buf);
            close(fd);
            return;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == size)
            break;
    }
    if (got == want) {
        free(buf); /* it grew: the batch takes it from its start */
        if (lseek(fd, 0, SEEK_SET) != 0) {
            f->err = -errno;
            f->in_read = true;
            close(fd);
        } else {
            f->fd = fd;
        }
        return;
    }
    /* Shorter than fstat said, or rewritten meanwhile: what was read is no version of the file. */
    if (got != size || cli_file_changed(fd, &sb)) {
        f->changed = true;
        f->err = AQ_EIO;
        free(buf);
        close(fd);
        return;
    }
    close(fd);
    f->buf = buf;
    f->it.buf = buf;
    f->it.len = got;
}

/* The job's files come sorted, so a folder's files come together: its path is walked (without
 * following links) once for those of them in this job, and again by the next job, so a folder
 * swapped for a link after the walk is still refused for the files opened after the swap. */
static void read_work(cli_xfer_work *w) {
    rjob *j = (rjob *)w;
    int root = j->pr->root, dfd = -1;
    const char *dir = NULL; /* dfd's path: the first len bytes of dir */
    size_t len = 0;
    for (size_t i = 0; i < j->n; i++) {
        pfile *f = j->f[i];
        f->buf = NULL;
        f->fd = -1;
        f->err = 0;
        f->in_read = false;
        f->changed = false;
        const char *slash = strrchr(f->rel, '/');
        size_t flen = slash ? (size_t)(slash - f->rel) : 0;
        if (dfd < 0 || flen != len || memcmp(dir, f->rel, len) != 0) {
            if (dfd >= 0 && dfd != root)
                close(dfd);
            dfd = open_dir_nofollow(root, f->rel, flen);
            if (dfd < 0) {
                f->err = dfd;
                continue;
            }
            dir = f->rel;
            len = flen;
        }
        read_one(dfd, slash ? slash + 1 : f->rel, f);
    }
    if (dfd >= 0 && dfd != root)
        close(dfd);
}

static void read_done(cli_xfer_work *w) {
    rjob *j = (rjob *)w;
    j->pr->jobs_out--;
    j->next = j->pr->jobs_done;
    j->pr->jobs_done = j;
}

static void pfile_release(put_run *pr, pfile *p) {
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    free(p->buf);
    p->buf = NULL;
    free(p->key);
    p->key = NULL;
    p->next = pr->free_files;
    pr->free_files = p;
}

static void put_done(put_run *pr, pfile *p) {
    tree_run *t = &pr->t;
    if (p->it.rc) {
        /* msg starts with "put KEY: "; the path already names the file. */
        const char *why = p->it.msg;
        size_t skip = 4 + strlen(p->key) + 2;
        if (strlen(why) > skip && strncmp(why + 4, p->key, strlen(p->key)) == 0)
            why += skip;
        failed(t, p->rel, p->key, strlen(p->key), why);
    } else {
        t->ok++;
        t->bytes += p->it.bytes;
        if (!t->any_copies || p->it.copies < t->min_copies_seen)
            t->min_copies_seen = p->it.copies;
        if (p->it.wanted > t->wanted)
            t->wanted = p->it.wanted;
        if (p->it.copies < p->it.wanted)
            t->short_copies++;
        t->any_copies = true;
        progress(t);
    }
    pfile_release(pr, p);
}

/* A read came back: a failure is named, the rest wait for room in the batch. */
static void put_read_back(put_run *pr, pfile *p) {
    if (!p->err) {
        p->next = NULL;
        if (pr->ready_tail)
            pr->ready_tail->next = p;
        else
            pr->ready_head = p;
        pr->ready_tail = p;
        return;
    }
    char why[300];
    int e = -p->err;
    if (p->changed)
        snprintf(why, sizeof why, CLI_CHANGED_FMT, p->rel);
    else if (p->in_read)
        snprintf(why, sizeof why, "cannot read %s: %s", p->rel, strerror(e));
    else
        snprintf(why, sizeof why, "%s",
                 e == ENOENT ? "vanished: removed after the folder was listed"
                 : e == ELOOP
                     ? "a symbolic link replaced it or a folder on its path after the folder "
                       "was listed: not followed"
                 : e == EINVAL ? "no longer a regular file: replaced after the folder was listed"
                               : strerror(e));
    failed(&pr->t, p->rel, p->key, strlen(p->key), why);
    pfile_release(pr, p);
}

/* Files from next on get their keys and go to a read job; returns the index after the last one
 * taken. */
static size_t put_dispatch(put_run *pr, cli_xfer_batch *b, const paths *files, size_t next,
                           const char *prefix) {
    size_t plen = strlen(prefix);
    while (next < files->n && pr->free_jobs && pr->free_files) {
        rjob *j = pr->free_jobs;
        j->n = 0;
        while (next < files->n && j->n < JOB_FILES && pr->free_files) {
            const char *rel = files->v[next++];
            size_t klen = plen + strlen(rel);
            char *key = malloc(klen + 1);
            if (!key) {
                failed(&pr->t, rel, "", 0, "out of memory");
                continue;
            }
            memcpy(key, prefix, plen);
            memcpy(key + plen, rel, klen - plen + 1);
            char why[128];
            if (cli_key_why(key, klen, why, sizeof why)) {
                failed(&pr->t, rel, key, klen, why);
                free(key);
                continue;
            }
            pfile *p = pr->free_files;
            pr->free_files = p->next;
            memset(&p->it, 0, sizeof p->it);
            p->rel = rel;
            p->key = key;
            p->fd = -1;
            p->buf = NULL;
            j->f[j->n++] = p;
        }
        if (!j->n)
            continue;
        pr->free_jobs = j->next;
        j->w.work = read_work;
        j->w.done = read_done;
        if (cli_xfer_batch_work(b, &j->w) != 0) {
            read_work(&j->w); /* the pool refused it: read here */
            j->next = pr->jobs_done;
            pr->jobs_done = j;
        } else {
            pr->jobs_out++;
        }
    }
    return next;
}

int cli_cmd_put_r(cli *c, const char *dir, const char *prefix) {
    int rc = check_prefix(c, prefix);
    if (rc)
        return rc;
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return cli_fail(c, errno == ENOTDIR ? CLI_USAGE : CLI_ERROR, "cannot open folder %s: %s",
                        dir, strerror(errno));
    paths files = {0}, bad = {0};
    size_t skipped = 0;
    int wfd = dup(root);
    int err = wfd < 0 ? -errno : walk(wfd, "", &files, &bad, &skipped);
    if (err) {
        close(root);
        paths_free(&files);
        paths_free(&bad);
        return cli_fail(c, CLI_ERROR, "cannot list %s: %s", dir, aq_strerror(err));
    }
    qsort(files.v, files.n, sizeof *files.v, str_cmp);
    put_run pr = {.root = root};
    tree_run *t = &pr.t;
    tree_start(t, c, "put -r", dir, prefix);
    t->total = files.n + bad.n / 2;
    t->skipped = skipped;
    t->walked = true;
    for (size_t i = 0; i + 1 < bad.n; i += 2)
        failed(t, bad.v[i], "", 0, bad.v[i + 1]);
    cli_xfer_batch *b = NULL;
    size_t nfiles = CLI_XFER_WORKERS + AHEAD;
    pfile *pool = calloc(nfiles, sizeof *pool);
    rjob *jobs = calloc(JOBS, sizeof *jobs);
    if (!pool || !jobs) {
        rc = cli_fail(c, CLI_ERROR, "out of memory");
        goto out;
    }
    if ((rc = cli_need_live(c)) != 0 || (rc = cli_xfer_batch_open(c, 0, 0, &b)) != 0)
        goto out;
    for (size_t i = 0; i < nfiles; i++) {
        pool[i].fd = -1;
        pool[i].next = pr.free_files;
        pr.free_files = &pool[i];
    }
    for (size_t i = 0; i < JOBS; i++) {
        jobs[i].pr = &pr;
        jobs[i].next = pr.free_jobs;
        pr.free_jobs = &jobs[i];
    }
    size_t next = 0;
    for (;;) {
        bool moved = false;
        cli_xfer_item *done;
        while ((done = cli_xfer_batch_poll(b)) != NULL) {
            put_done(&pr, done->ud);
            moved = true;
        }
        while (pr.jobs_done) {
            rjob *j = pr.jobs_done;
            pr.jobs_done = j->next;
            for (size_t i = 0; i < j->n; i++)
                put_read_back(&pr, j->f[i]);
            j->next = pr.free_jobs;
            pr.free_jobs = j;
            moved = true;
        }
        while (pr.ready_head && cli_xfer_batch_pending(b) < CLI_XFER_WORKERS) {
            pfile *p = pr.ready_head;
            pr.ready_head = p->next;
            if (!pr.ready_head)
                pr.ready_tail = NULL;
            p->it.key = p->key;
            p->it.fd = p->fd; /* -1: it.buf holds the file */
            p->it.name = p->rel;
            p->it.ud = p;
            cli_xfer_batch_submit(b, &p->it);
            moved = true;
        }
        size_t was = next;
        next = put_dispatch(&pr, b, &files, next, prefix);
        moved = moved || next != was;
        if (next == files.n && !pr.jobs_out && !pr.jobs_done && !pr.ready_head &&
            !cli_xfer_batch_pending(b))
            break;
        if (!moved)
            cli_xfer_batch_wait(b);
    }
    t->missing = cli_xfer_batch_missing(b);
    rc = tree_finish(t, "stored");
out:
    cli_xfer_batch_close(b);
    if (rc)
        tree_drop_fails(t);
    free(pool);
    free(jobs);
    paths_free(&files);
    paths_free(&bad);
    close(root);
    return rc;
}

/* ---- get -r ---- */

/* Directories of the files being written, opened once and shared by the files in them (keys
 * come sorted, so a folder's files come together). The least recently used one with no file in
 * work makes room; when every slot is in use a file gets a directory fd of its own. */
#define DIRS 16

typedef struct dir_slot {
    char *path; /* below DIR, without its trailing '/'; "" for DIR */
    size_t len;
    int fd;
    size_t refs;
    uint64_t used;
} dir_slot;

typedef struct gfile {
    cli_xfer_item it;
    struct get_run *gr;
    const cli_lsent *e;
    char *key;        /* e's key as a C string */
    char *rel;        /* the key without PREFIX, for messages */
    const char *base; /* the file's name in its directory (inside rel) */
    dir_slot *dir;    /* its directory's slot, or NULL: dfd is the file's own */
    int dfd;
    size_t need;    /* bytes it holds of GET_BYTES */
    uint64_t seq;   /* its temporary file's number */
    char tmp[64];   /* the temporary file's name; "" while it has none (O_TMPFILE) */
    int err;        /* the write's negated errno, or 0 */
    const char *in; /* what the write was doing when err came */
    struct gfile *next;
} gfile;

typedef struct wjob {
    cli_xfer_work w; /* first: done gets it */
    struct get_run *gr;
    gfile *f[JOB_FILES];
    size_t n;
    struct wjob *next;
} wjob;

typedef struct get_run {
    tree_run t;
    int root;
    bool durable;
    /* Temporary files are made with O_TMPFILE (tmp_probe) until a file's name turns out taken:
     * replacing a file needs a rename anyway, and an unnamed file linked under a temporary name
     * first costs more than a named one (a run over an earlier one's files). Set on the threadpool
     * too. */
    atomic_bool anon;
    uint64_t tmp_id; /* this run's part of the temporary names */
    uint64_t seq;
    dir_slot dirs[DIRS];
    uint64_t clock;
    size_t held; /* of GET_BYTES */
    gfile *free_files;
    wjob *free_jobs, *jobs_done;
    size_t jobs_out;
    gfile *write_head, *write_tail; /* fetched, waiting for a write job */
} get_run;

/* Why rel (the key without PREFIX) may not name a file under DIR, or NULL when it may. */
static const char *rel_refused(const char *rel, size_t n) {
    if (n == 0)
        return "the key is the prefix itself: it names no file under the folder";
    if (memchr(rel, 0, n))
        return "the key holds a NUL byte";
    if (rel[0] == '/')
        return "the key would be an absolute path";
    if (rel[n - 1] == '/')
        return "the key ends with \"/\": it names a folder, not a file";
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rel[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 0)
            return "the key has an empty path part (\"//\")";
        if (len == 2 && rel[i] == '.' && rel[i + 1] == '.')
            return "the key has a \"..\" part: it would be written outside the folder";
        if (len == 1 && rel[i] == '.')
            return "the key has a \".\" part";
        i = j + 1;
    }
    return NULL;
}

/* Opens (creating) the directories of rel under root without following links; returns the
 * directory's fd and sets *base to the file's name, or a negated errno. */
static int open_parent(int root, char *rel, const char **base) {
    int fd = dup(root);
    if (fd < 0)
        return -errno;
    char *p = rel;
    for (;;) {
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = 0;
        if (mkdirat(fd, p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            *slash = '/';
            close(fd);
            return -e;
        }
        int nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        *slash = '/';
        close(fd);
        if (nfd < 0)
            return -e;
        fd = nfd;
        p = slash + 1;
    }
    *base = p;
    return fd;
}

/* g's directory (created as needed): sets g->dir, g->dfd and g->base; 0 or a negated errno. */
static int dir_take(get_run *gr, gfile *g) {
    const char *slash = strrchr(g->rel, '/');
    size_t len = slash ? (size_t)(slash - g->rel) : 0;
    g->base = slash ? slash + 1 : g->rel;
    dir_slot *victim = NULL;
    for (size_t i = 0; i < DIRS; i++) {
        dir_slot *d = &gr->dirs[i];
        if (d->path && d->len == len && memcmp(d->path, g->rel, len) == 0) {
            d->refs++;
            d->used = ++gr->clock;
            g->dir = d;
            g->dfd = d->fd;
            return 0;
        }
        if (!d->refs && (!victim || !d->path || (victim->path && d->used < victim->used)))
            victim = d;
    }
    char *work = strdup(g->rel);
    const char *base = NULL;
    int fd = work ? open_parent(gr->root, work, &base) : -ENOMEM;
    free(work);
    if (fd < 0)
        return fd;
    char *path = victim ? strndup(g->rel, len) : NULL;
    if (!path) {
        g->dir = NULL; /* no slot free: the file's own */
        g->dfd = fd;
        return 0;
    }
    if (victim->path) {
        close(victim->fd);
        free(victim->path);
    }
    *victim = (dir_slot){path, len, fd, 1, ++gr->clock};
    g->dir = victim;
    g->dfd = fd;
    return 0;
}

static void dir_drop(gfile *g) {
    if (g->dir)
        g->dir->refs--;
    else if (g->dfd >= 0)
        close(g->dfd);
    g->dir = NULL;
    g->dfd = -1;
}

/* Gives fd (an O_TMPFILE file) the name g->tmp in dfd (a fresh name): 0 or a negated errno. */
static int tmp_link(get_run *gr, gfile *g, int dfd, int fd) {
    for (int tries = 0; tries < 100; tries++) {
        snprintf(g->tmp, sizeof g->tmp, ".aqtmp.%016llx.%llx.%d", (unsigned long long)gr->tmp_id,
                 (unsigned long long)g->seq, tries);
        if (cli_link_fd(fd, dfd, g->tmp) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    g->tmp[0] = 0;
    return -e;
}

/* Whether get -r may make its temporary files with O_TMPFILE under root: a file without a name
 * that a crash cannot leave behind, named only once complete (linkat), with one directory entry
 * fewer to make and remove than a named temporary file renamed into place. Not every file system
 * has it (then EOPNOTSUPP), and linkat of one needs /proc. */
static bool tmp_probe(get_run *gr) {
    int fd = openat(gr->root, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    gfile g = {.seq = UINT64_MAX};
    bool ok = tmp_link(gr, &g, gr->root, fd) == 0;
    if (ok)
        unlinkat(gr->root, g.tmp, 0);
    close(fd);
    return ok;
}

/* Creates g's temporary file in its directory: the fd, or a negated errno. */
static int tmp_create(get_run *gr, gfile *g) {
    g->tmp[0] = 0;
    if (atomic_load_explicit(&gr->anon, memory_order_relaxed)) {
        int fd = openat(g->dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
        /* A folder below DIR on another file system may not have it: a named one then. */
        if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
            return fd >= 0 ? fd : -errno;
    }
    for (int tries = 0; tries < 100; tries++) {
        snprintf(g->tmp, sizeof g->tmp, ".aqtmp.%016llx.%llx.%d", (unsigned long long)gr->tmp_id,
                 (unsigned long long)g->seq, tries);
        int fd = openat(g->dfd, g->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    g->tmp[0] = 0;
    return -EEXIST;
}

/* Closes fd (g's temporary file, complete) and puts it in place under g's name: an O_TMPFILE
 * file is linked there, or when a file already has the name, linked under a temporary name and
 * renamed over it; a named one is renamed over it. On any failure the temporary file goes and
 * g->err, g->in say why. */
static void tmp_finish(get_run *gr, gfile *g, int fd, int err) {
    g->in = "cannot write";
    if (!err && gr->durable && fsync(fd) != 0)
        err = -errno;
    bool placed = false; /* linked under its name: nothing to rename */
    if (!err && !g->tmp[0]) {
        placed = cli_link_fd(fd, g->dfd, g->base) == 0;
        if (!placed && errno != EEXIST)
            err = -errno;
        else if (!placed) {
            atomic_store_explicit(&gr->anon, false, memory_order_relaxed);
            err = tmp_link(gr, g, g->dfd, fd);
        }
        if (err)
            g->in = "cannot create a file in its folder";
    }
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err && !placed && renameat(g->dfd, g->tmp, g->dfd, g->base) != 0) {
        err = -errno;
        g->in = "cannot rename the temporary file over it";
    }
    if (err && g->tmp[0])
        unlinkat(g->dfd, g->tmp, 0);
    g->err = err;
}

/* On a threadpool thread: the fetched (and verified) value of g becomes its file. */
static void write_one(get_run *gr, gfile *g) {
    int fd = tmp_create(gr, g);
    if (fd < 0) {
        g->err = fd;
        g->in = "cannot create a file in its folder";
    } else {
        tmp_finish(gr, g, fd, g->it.outlen ? aq_io_write_all(fd, g->it.out, g->it.outlen) : 0);
    }
    free(g->it.out);
    g->it.out = NULL;
}

static void write_work(cli_xfer_work *w) {
    wjob *j = (wjob *)w;
    for (size_t i = 0; i < j->n; i++)
        write_one(j->gr, j->f[i]);
}

static void write_done(cli_xfer_work *w) {
    wjob *j = (wjob *)w;
    j->gr->jobs_out--;
    j->next = j->gr->jobs_done;
    j->gr->jobs_done = j;
}

/* A value of more than one chunk: written by the batch, in order, into the temporary file. */
static int get_big_fd(cli_xfer_item *it) {
    gfile *g = it->ud;
    return tmp_create(g->gr, g);
}

static void gfile_release(get_run *gr, gfile *g) {
    dir_drop(g);
    free(g->it.out);
    g->it.out = NULL;
    free(g->rel);
    free(g->key);
    g->rel = g->key = NULL;
    gr->held -= g->need;
    g->need = 0;
    g->next = gr->free_files;
    gr->free_files = g;
}

/* g's outcome: named when it failed, counted when it was written. */
static void get_report(get_run *gr, gfile *g) {
    tree_run *t = &gr->t;
    if (g->it.rc || g->err) {
        char buf[sizeof g->it.msg + 32];
        const char *why = g->it.msg;
        if (g->it.rc) {
            /* msg starts with "get KEY: "; the path already names the file. */
            size_t kl = g->e->klen;
            if (strncmp(why, "get ", 4) == 0 && strlen(why) > 4 + kl + 2 &&
                memcmp(why + 4, g->e->key, kl) == 0)
                why += 4 + kl + 2;
            /* Listed a moment ago: gone since, most likely removed meanwhile. */
            if (g->it.err == AQ_ENOTFOUND) {
                snprintf(buf, sizeof buf, "removed since the listing: %s", why);
                why = buf;
            }
        } else {
            snprintf(buf, sizeof buf, "%s: %s", g->in, strerror(-g->err));
            why = buf;
        }
        failed(t, g->rel, (const char *)g->e->key, g->e->klen, why);
    } else {
        t->ok++;
        t->bytes += g->it.bytes;
        progress(t);
    }
    gfile_release(gr, g);
}

/* A fetched item: a small value goes to a write job; a large one was written into its temporary
 * file by the batch and is finished here. */
static void get_fetched(get_run *gr, gfile *g) {
    int fd = g->it.fd;
    g->it.fd = -1;
    if (g->it.rc) {
        if (fd >= 0) {
            close(fd);
            if (g->tmp[0])
                unlinkat(g->dfd, g->tmp, 0);
        }
        get_report(gr, g);
    } else if (fd >= 0) {
        tmp_finish(gr, g, fd, 0);
        get_report(gr, g);
    } else {
        g->next = NULL;
        if (gr->write_tail)
            gr->write_tail->next = g;
        else
            gr->write_head = g;
        gr->write_tail = g;
    }
}

static void get_dispatch(get_run *gr, cli_xfer_batch *b) {
    while (gr->write_head && gr->free_jobs) {
        wjob *j = gr->free_jobs;
        gr->free_jobs = j->next;
        j->n = 0;
        while (gr->write_head && j->n < JOB_FILES) {
            gfile *g = gr->write_head;
            gr->write_head = g->next;
            j->f[j->n++] = g;
        }
        if (!gr->write_head)
            gr->write_tail = NULL;
        j->w.work = write_work;
        j->w.done = write_done;
        if (cli_xfer_batch_work(b, &j->w) != 0) {
            write_work(&j->w); /* the pool refused it: written here */
            j->next = gr->jobs_done;
            gr->jobs_done = j;
        } else {
            gr->jobs_out++;
        }
    }
}

/* Starts the fetch of e, or names why it cannot be; false when it must wait for room. */
static bool get_start(get_run *gr, cli_xfer_batch *b, const cli_lsent *e, size_t plen) {
    tree_run *t = &gr->t;
    size_t need =
        e->size_known && e->size <= AQ_NODE_CHUNK_MAX ? (size_t)e->size : AQ_NODE_CHUNK_MAX;
    if (!gr->free_files || cli_xfer_batch_pending(b) >= CLI_XFER_WORKERS ||
        (gr->held && gr->held + need > GET_BYTES))
        return false;
    size_t rl = e->klen - plen;
    char *rel = malloc(rl + 1);
    if (!rel) {
        failed(t, "?", (const char *)e->key, e->klen, "out of memory");
        return true;
    }
    memcpy(rel, e->key + plen, rl);
    rel[rl] = 0;
    char kwhy[128];
    const char *refused = rel_refused((const char *)e->key + plen, rl);
    if (!refused)
        refused = cli_key_why(e->key, e->klen, kwhy, sizeof kwhy);
    if (refused) {
        /* Named by its key, which names no file; a prefix without its '/' is the likely cause of
         * a key's rest that starts with one. */
        if (rel[0] == '/' && plen && e->key[plen - 1] != '/')
            refused = "the key would be an absolute path (a PREFIX ending in \"/\" drops it)";
        failed(t, "", (const char *)e->key, e->klen, refused);
        free(rel);
        return true;
    }
    gfile *g = gr->free_files;
    memset(&g->it, 0, sizeof g->it);
    g->e = e;
    g->rel = rel;
    g->key = NULL;
    g->dir = NULL;
    g->dfd = -1;
    g->err = 0;
    g->need = 0;
    int err = dir_take(gr, g);
    if (err) {
        char why[300];
        snprintf(why, sizeof why, "cannot create its folder: %s", strerror(-err));
        failed(t, rel, (const char *)e->key, e->klen, why);
        free(rel);
        return true;
    }
    g->key = malloc(e->klen + 1);
    if (!g->key) {
        failed(t, rel, (const char *)e->key, e->klen, "out of memory");
        dir_drop(g);
        free(rel);
        return true;
    }
    memcpy(g->key, e->key, e->klen);
    g->key[e->klen] = 0;
    gr->free_files = g->next;
    g->need = need;
    gr->held += need;
    g->seq = gr->seq++;
    g->it.get = true;
    g->it.size = e->size_known ? e->size : 0;
    g->it.key = g->key;
    g->it.fd = -1; /* a buffer, or big_fd's file for a large value */
    g->it.big_fd = get_big_fd;
    /* The failure line names the file already ("get -r: REL: ..."); the sentence says the rest. */
    g->it.name = "the file";
    g->it.ud = g;
    cli_xfer_batch_submit(b, &g->it);
    return true;
}

int cli_cmd_get_r(cli *c, const char *prefix, const char *dir, bool durable) {
    int rc = check_prefix(c, prefix);
    if (rc)
        return rc;
    cli_lsent *v = NULL;
    size_t n = 0;
    if ((rc = cli_ls_collect(c, prefix, &v, &n)) != 0)
        return rc;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        cli_ls_free(v, n);
        return cli_fail(c, CLI_ERROR, "cannot create folder %s: %s", dir, strerror(errno));
    }
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        cli_ls_free(v, n);
        return cli_fail(c, errno == ENOTDIR ? CLI_USAGE : CLI_ERROR, "cannot open folder %s: %s",
                        dir, strerror(errno));
    }
    get_run gr = {.root = root, .durable = durable, .tmp_id = cli_random_u64()};
    atomic_init(&gr.anon, tmp_probe(&gr));
    tree_run *t = &gr.t;
    tree_start(t, c, "get -r", dir, prefix);
    t->total = n;
    size_t plen = strlen(prefix);
    cli_xfer_batch *b = NULL;
    gfile *pool = calloc(GET_FILES, sizeof *pool);
    wjob *jobs = calloc(JOBS, sizeof *jobs);
    if (!pool || !jobs) {
        rc = cli_fail(c, CLI_ERROR, "out of memory");
        goto out;
    }
    if ((rc = cli_xfer_batch_open(c, 0, 0, &b)) != 0)
        goto out;
    for (size_t i = 0; i < GET_FILES; i++) {
        pool[i].gr = &gr;
        pool[i].dfd = -1;
        pool[i].next = gr.free_files;
        gr.free_files = &pool[i];
    }
    for (size_t i = 0; i < JOBS; i++) {
        jobs[i].gr = &gr;
        jobs[i].next = gr.free_jobs;
        gr.free_jobs = &jobs[i];
    }
    size_t next = 0;
    for (;;) {
        bool moved = false;
        cli_xfer_item *done;
        while ((done = cli_xfer_batch_poll(b)) != NULL) {
            get_fetched(&gr, done->ud);
            moved = true;
        }
        while (gr.jobs_done) {
            wjob *j = gr.jobs_done;
            gr.jobs_done = j->next;
            for (size_t i = 0; i < j->n; i++)
                get_report(&gr, j->f[i]);
            j->next = gr.free_jobs;
            gr.free_jobs = j;
            moved = true;
        }
        get_dispatch(&gr, b);
        while (next < n && get_start(&gr, b, &v[next], plen)) {
            next++;
            moved = true;
        }
        if (next == n && !gr.jobs_out && !gr.jobs_done && !gr.write_head &&
            !cli_xfer_batch_pending(b))
            break;
        if (!moved)
            cli_xfer_batch_wait(b);
    }
    rc = tree_finish(t, "wrote");
out:
    cli_xfer_batch_close(b);
    if (rc)
        tree_drop_fails(t);
    for (size_t i = 0; i < DIRS; i++)
        if (gr.dirs[i].path) {
            close(gr.dirs[i].fd);
            free(gr.dirs[i].path);
        }
    free(pool);
    free(jobs);
    cli_ls_free(v, n);
    close(root);
    return rc;
}
