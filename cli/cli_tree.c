/* put -r DIR PREFIX and get -r PREFIX DIR: a folder as many values, moved through a batch
 * (cli_xfer_batch.c) so many files are in flight at once.
 *
 * put -r stores every regular file under DIR as PREFIX + its path relative to DIR ('/' between
 * the parts). Directories are walked without following symbolic links; links, devices, FIFOs and
 * sockets are skipped; each file is then opened component by component without following a
 * symbolic link (a folder swapped for a link after the walk is refused, not followed) and must
 * still be a regular file. get -r writes every key under PREFIX to DIR + the key without PREFIX,
 * creating directories. Nothing outside DIR is ever written: a key whose remainder is empty,
 * absolute, has an empty, "." or ".." part, or holds a NUL byte is refused and named, and every
 * directory on the way is opened without following symbolic links. Each file is written through
 * a temporary file in its directory, renamed over the name once its value is complete and
 * verified, so a failed file leaves what was there.
 *
 * A file that fails is named on stderr and the rest carry on; the summary (or --json) counts
 * them, and any failure makes the command exit 4.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
 * that cannot be read goes to bad as two entries, its path and why. Takes dfd. */
static int walk(int dfd, const char *rel, paths *files, paths *bad) {
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
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone since readdir: not a file of the folder any more */
        char *sub = join(rel, de->d_name);
        if (!sub)
            err = AQ_ENOMEM;
        else if (S_ISREG(sb.st_mode))
            err = paths_add(files, sub);
        else if (S_ISDIR(sb.st_mode)) {
            int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            err = cfd < 0 ? bad_add(bad, sub, errno) : walk(cfd, sub, files, bad);
            free(sub);
        } else {
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
    uint64_t bytes;
    unsigned min_copies_seen, wanted; /* put: fewest copies of any file, and wanted */
    bool any_copies;
    size_t short_copies; /* put: files with fewer copies than wanted */
    bool tty;
    int shown;
    FILE *fails; /* the --json failures array, built as they come */
    char *fails_buf;
    size_t fails_len;
    struct timespec t0;
} tree_run;

/* Control bytes never reach the terminal: a key or name comes from outside. */
static void put_safe(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i], f);
}

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
        put_safe(stderr, path, strlen(path));
    else
        put_safe(stderr, key, klen); /* the key names no file: the key then */
    fputs(": ", stderr);
    put_safe(stderr, why, strlen(why));
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
        putchar('\n');
    }
    if (fflush(stdout) != 0)
        return cli_fail(c, CLI_ERROR, "cannot write to stdout");
    if (t->short_copies)
        fprintf(stderr, "aquifer: %s: warning: %zu files have fewer than %u copies\n", c->what,
                t->short_copies, t->wanted);
    if (t->failed)
        return cli_fail(c, CLI_ERROR, "%zu of %zu files failed (named above)", t->failed, t->total);
    return CLI_OK;
}

static bool key_ok(const char *key, size_t n) {
    return aq_node_user_key_ok(key, n) && cli_utf8_ok(key, n);
}

static int check_prefix(cli *c, const char *prefix) {
    size_t n = strlen(prefix);
    if (n > AQ_NODE_KEY_MAX || !cli_utf8_ok(prefix, n))
        return cli_fail(c, CLI_USAGE, "a prefix is at most 255 bytes of UTF-8");
    return 0;
}

/* ---- put -r ---- */

typedef struct put_ctx {
    cli_xfer_item it;
    char *key;
    const char *rel;
    struct put_ctx *next_free;
} put_ctx;

static void put_done(tree_run *t, put_ctx *p) {
    close(p->it.fd);
    p->it.fd = -1;
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
    free(p->key);
    p->key = NULL;
}

/* Opens rel (parts joined by '/') under root for reading, every part without following a
 * symbolic link, and only if it is a regular file. The fd, or a negated errno (ELOOP: a link on
 * the way; EINVAL: not a regular file). */
static int open_nofollow(int root, const char *rel) {
    int fd = root; /* ours to close once it is not root */
    char part[256];
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n >= sizeof part) {
            if (fd != root)
                close(fd);
            return -ENOENT;
        }
        memcpy(part, p, n);
        part[n] = 0;
        /* O_NONBLOCK: a FIFO swapped in does not block the open (reads of a regular file ignore
         * it). */
        int flags = slash ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                          : O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
        int nfd = openat(fd, part, flags);
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
        if (!slash)
            break;
        p = slash + 1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
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
    int wfd = dup(root);
    int err = wfd < 0 ? -errno : walk(wfd, "", &files, &bad);
    if (err) {
        close(root);
        paths_free(&files);
        paths_free(&bad);
        return cli_fail(c, CLI_ERROR, "cannot list %s: %s", dir, aq_strerror(err));
    }
    qsort(files.v, files.n, sizeof *files.v, str_cmp);
    tree_run t;
    tree_start(&t, c, "put -r", dir, prefix);
    t.total = files.n + bad.n / 2;
    for (size_t i = 0; i + 1 < bad.n; i += 2)
        failed(&t, bad.v[i], "", 0, bad.v[i + 1]);
    cli_xfer_batch *b = NULL;
    put_ctx *pool = NULL;
    if ((rc = cli_need_live(c)) != 0 || (rc = cli_xfer_batch_open(c, 0, 0, &b)) != 0)
        goto out;
    size_t npool = 2 * CLI_XFER_WORKERS;
    pool = calloc(npool, sizeof *pool);
    if (!pool) {
        rc = cli_fail(c, CLI_ERROR, "out of memory");
        goto out;
    }
    put_ctx *free_list = NULL;
    for (size_t i = 0; i < npool; i++) {
        pool[i].next_free = free_list;
        free_list = &pool[i];
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < files.n; i++) {
        const char *rel = files.v[i];
        /* Take finished ones first: each holds an open file. */
        cli_xfer_item *done;
        while (!free_list || (done = cli_xfer_batch_poll(b)) != NULL) {
            if (!free_list)
                done = cli_xfer_batch_next(b);
            put_ctx *p = done->ud;
            put_done(&t, p);
            p->next_free = free_list;
            free_list = p;
        }
        size_t klen = plen + strlen(rel);
        char *key = malloc(klen + 1);
        if (!key) {
            failed(&t, rel, "", 0, "out of memory");
            continue;
        }
        memcpy(key, prefix, plen);
        memcpy(key + plen, rel, klen - plen + 1);
        if (!key_ok(key, klen)) {
            failed(&t, rel, key, klen,
                   "its key is not 1 to 255 bytes of UTF-8 without control characters");
            free(key);
            continue;
        }
        int fd = open_nofollow(root, rel);
        if (fd < 0) {
            failed(&t, rel, key, klen,
                   fd == -ENOENT ? "vanished: removed after the folder was listed"
                   : fd == -ELOOP
                       ? "a symbolic link replaced it or a folder on its path after the folder "
                         "was listed: not followed"
                   : fd == -EINVAL
                       ? "no longer a regular file: replaced after the folder was listed"
                       : strerror(-fd));
            free(key);
            continue;
        }
        put_ctx *p = free_list;
        free_list = p->next_free;
        memset(&p->it, 0, sizeof p->it);
        p->key = key;
        p->rel = rel;
        p->it.key = key;
        p->it.fd = fd;
        p->it.name = rel;
        p->it.ud = p;
        cli_xfer_batch_submit(b, &p->it);
    }
    cli_xfer_item *done;
    while ((done = cli_xfer_batch_next(b)) != NULL)
        put_done(&t, done->ud);
    rc = tree_finish(&t, "stored");
out:
    cli_xfer_batch_close(b);
    if (rc)
        tree_drop_fails(&t);
    free(pool);
    paths_free(&files);
    paths_free(&bad);
    close(root);
    return rc;
}

/* ---- get -r ---- */

typedef struct get_ctx {
    cli_xfer_item it;
    const cli_lsent *e;
    char *key;        /* e's key as a C string */
    char *rel;        /* the key without PREFIX, for messages */
    int dfd;          /* the file's directory */
    const char *base; /* its name there (inside rel) */
    char tmp[64];
    struct get_ctx *next_free;
} get_ctx;

/* Why rel (the key without PREFIX) may not name a file under DIR, or NULL when it may. */
static const char *rel_refused(const char *rel, size_t n) {
    if (n == 0)
        return "the key is the prefix itself: it names no file under the folder";
    if (memchr(rel, 0, n))
        return "the key holds a NUL byte";
    if (rel[0] == '/')
        return "the key would be an absolute path";
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rel[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 0)
            return "the key has an empty path part (\"//\" or a trailing \"/\")";
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

static void get_done(tree_run *t, get_ctx *g, bool durable) {
    int fd = g->it.fd;
    g->it.fd = -1;
    int rc = g->it.rc;
    const char *why = g->it.msg;
    char buf[300];
    if (!rc && durable && fsync(fd) != 0) {
        snprintf(buf, sizeof buf, "cannot write: %s", strerror(errno));
        why = buf;
        rc = CLI_ERROR;
    }
    if (close(fd) != 0 && !rc) {
        snprintf(buf, sizeof buf, "cannot write: %s", strerror(errno));
        why = buf;
        rc = CLI_ERROR;
    }
    if (!rc && renameat(g->dfd, g->tmp, g->dfd, g->base) != 0) {
        snprintf(buf, sizeof buf, "cannot rename the temporary file over it: %s", strerror(errno));
        why = buf;
        rc = CLI_ERROR;
    }
    if (rc) {
        unlinkat(g->dfd, g->tmp, 0);
        if (why == g->it.msg && strncmp(why, "get ", 4) == 0) {
            size_t kl = g->e->klen;
            if (strlen(why) > 4 + kl + 2 && memcmp(why + 4, g->e->key, kl) == 0)
                why += 4 + kl + 2;
        }
        failed(t, g->rel, (const char *)g->e->key, g->e->klen, why);
    } else {
        t->ok++;
        t->bytes += g->it.bytes;
        progress(t);
    }
    close(g->dfd);
    g->dfd = -1;
    free(g->rel);
    free(g->key);
    g->rel = g->key = NULL;
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
    tree_run t;
    tree_start(&t, c, "get -r", dir, prefix);
    t.total = n;
    size_t plen = strlen(prefix);
    cli_xfer_batch *b = NULL;
    size_t npool = 2 * CLI_XFER_WORKERS;
    get_ctx *pool = calloc(npool, sizeof *pool);
    if (!pool) {
        rc = cli_fail(c, CLI_ERROR, "out of memory");
        goto out;
    }
    if ((rc = cli_xfer_batch_open(c, 0, 0, &b)) != 0)
        goto out;
    get_ctx *free_list = NULL;
    for (size_t i = 0; i < npool; i++) {
        pool[i].next_free = free_list;
        free_list = &pool[i];
    }
    for (size_t i = 0; i < n; i++) {
        const cli_lsent *e = &v[i];
        cli_xfer_item *done;
        while (!free_list || (done = cli_xfer_batch_poll(b)) != NULL) {
            if (!free_list)
                done = cli_xfer_batch_next(b);
            get_ctx *g = done->ud;
            get_done(&t, g, durable);
            g->next_free = free_list;
            free_list = g;
        }
        size_t rl = e->klen - plen;
        char *rel = malloc(rl + 1);
        if (!rel) {
            failed(&t, "?", (const char *)e->key, e->klen, "out of memory");
            continue;
        }
        memcpy(rel, e->key + plen, rl);
        rel[rl] = 0;
        const char *refused = rel_refused((const char *)e->key + plen, rl);
        if (!refused && !key_ok((const char *)e->key, e->klen))
            refused = "the key is not 1 to 255 bytes of UTF-8 without control characters";
        if (refused) {
            /* A NUL would cut the name short in the message: show it as '?'. */
            for (size_t j = 0; j < rl; j++)
                rel[j] = rel[j] ? rel[j] : '?';
            failed(&t, rel, (const char *)e->key, e->klen, refused);
            free(rel);
            continue;
        }
        char *work = strdup(rel);
        const char *base = NULL;
        int dfd = work ? open_parent(root, work, &base) : AQ_ENOMEM;
        if (dfd < 0) {
            char why[300];
            snprintf(why, sizeof why, "cannot create its folder: %s",
                     dfd == AQ_ENOMEM ? "out of memory" : strerror(-dfd));
            failed(&t, rel, (const char *)e->key, e->klen, why);
            free(work);
            free(rel);
            continue;
        }
        get_ctx *g = free_list;
        memset(&g->it, 0, sizeof g->it);
        g->e = e;
        g->rel = rel;
        g->dfd = dfd;
        g->base = rel + (base - work);
        free(work);
        int fd = -1;
        for (int tries = 0; fd < 0 && tries < 100; tries++) {
            snprintf(g->tmp, sizeof g->tmp, ".aqtmp.%016llx", (unsigned long long)cli_random_u64());
            fd = openat(dfd, g->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
            if (fd < 0 && errno != EEXIST)
                break;
        }
        if (fd < 0) {
            char why[300];
            snprintf(why, sizeof why, "cannot create a file in its folder: %s", strerror(errno));
            failed(&t, rel, (const char *)e->key, e->klen, why);
            close(dfd);
            free(rel);
            continue;
        }
        g->key = malloc(e->klen + 1);
        if (!g->key) {
            failed(&t, rel, (const char *)e->key, e->klen, "out of memory");
            close(fd);
            unlinkat(dfd, g->tmp, 0);
            close(dfd);
            free(rel);
            continue;
        }
        memcpy(g->key, e->key, e->klen);
        g->key[e->klen] = 0;
        free_list = g->next_free;
        g->it.get = true;
        g->it.size = e->size_known ? e->size : 0;
        g->it.key = g->key;
        g->it.fd = fd;
        g->it.name = rel;
        g->it.ud = g;
        cli_xfer_batch_submit(b, &g->it);
    }
    cli_xfer_item *done;
    while ((done = cli_xfer_batch_next(b)) != NULL)
        get_done(&t, done->ud, durable);
    rc = tree_finish(&t, "wrote");
out:
    cli_xfer_batch_close(b);
    if (rc)
        tree_drop_fails(&t);
    free(pool);
    cli_ls_free(v, n);
    close(root);
    return rc;
}
