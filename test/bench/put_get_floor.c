/* put_get_floor: the least work a put or a get -o of a file does on this machine, with no rpc.
 *
 * It answers one question for put_get_bench: is a goal reachable at all here? A put of FILE must
 * read it (the page cache copy that redis-benchmark, sending one buffer from memory, never
 * makes), and keep its promise: a digest of each 4 MiB part and of the whole value computed from
 * the file's bytes, the part's digest checked where the part lands, and a part done only when
 * the far end says so. A get -o must take each part off a socket, check its digest and write it
 * into the file.
 *
 *   put_get_floor put FILE [--no-digest]
 *   put_get_floor get FILE OUT [--no-digest]
 *   put_get_floor tree SRC DST
 *
 * put: three receiver processes on loopback TCP (the three nodes) take the parts in turn, hash
 * each (unless --no-digest) and answer one byte; this process reads each part with pread, hashes
 * it (part and whole) and writes it to its receiver's socket. get: three sender processes hold
 * their parts of FILE in memory before the clock starts and stream them; this process receives
 * each part, hashes it and writes it at its offset in OUT, which it creates. One thread each
 * side, and the command's heap policy (aq_alloc.h). tree, get -r's least work: three sender
 * processes hold the regular files under SRC in memory (every third each) and stream them, each
 * after its length; this process receives them in turn and checks each one's digest, while
 * TREE_WRITERS threads (as many as get -r's file jobs) write each file into DST at its path, as
 * get -r does: without a name (O_TMPFILE), then linked under it; DST's folders are made first.
 * Prints the seconds from the first byte to the last answer (put), OUT's close (get) or the last
 * file's link (tree). Figures only; nothing here is a test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "aq_alloc.h"
#include "aq_io.h"

#define PART  (4u << 20)
#define PEERS 3

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* aq_io's whole reads and writes; a short read (the peer gone) or a failure ends the program. */
static void read_all(int fd, void *b, size_t n) {
    size_t got = 0;
    if (aq_io_read_full(fd, b, n, &got) != 0 || got != n)
        die("read");
}

static void write_all(int fd, const void *b, size_t n) {
    if (aq_io_write_all(fd, b, n) != 0)
        die("write");
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t part_len(uint64_t size, size_t i) {
    uint64_t off = (uint64_t)i * PART;
    return size - off < PART ? (size_t)(size - off) : PART;
}

/* A listening loopback socket; its address into *a. */
static int listener(struct sockaddr_in *a) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t al = sizeof *a;
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)a, sizeof *a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)a, &al) != 0)
        die("listen");
    return l;
}

/* Forks the PEERS processes, each running run(listening socket, k, ctx) and never returning, and
 * connects sock[k] to process k. */
static void spawn(int sock[PEERS], void (*run)(int l, int k, const void *ctx), const void *ctx) {
    for (int k = 0; k < PEERS; k++) {
        struct sockaddr_in a;
        int l = listener(&a);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            run(l, k, ctx);
        close(l);
        sock[k] = socket(AF_INET, SOCK_STREAM, 0);
        if (sock[k] < 0 || connect(sock[k], (struct sockaddr *)&a, sizeof a) != 0)
            die("connect");
    }
}

/* What a put's or get's peer needs to know of the file. */
typedef struct file_job {
    uint64_t size;
    size_t parts;
    bool put, digest;
    int fd;
} file_job;

/* Peer k's process: parts k, k + PEERS, ... of a file of size bytes. put: receives, hashes and
 * answers each. get: reads its parts from fd first, says so, then streams them. */
static void peer(int l, int k, const void *ctx) {
    const file_job *j = ctx;
    uint64_t size = j->size;
    size_t parts = j->parts;
    bool put = j->put;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    size_t mine = 0;
    for (size_t i = (size_t)k; i < parts; i += PEERS)
        mine++;
    uint8_t *b = malloc(put ? PART : (size_t)mine * PART + 1);
    if (!b)
        die("malloc");
    if (put) {
        for (size_t i = (size_t)k; i < parts; i += PEERS) {
            size_t n = part_len(size, i);
            read_all(s, b, n);
            uint8_t ack = j->digest ? (uint8_t)XXH3_128bits(b, n).low64 : 0;
            write_all(s, &ack, 1);
        }
    } else {
        size_t at = 0;
        for (size_t i = (size_t)k; i < parts; i += PEERS) {
            size_t n = part_len(size, i);
            if (pread(j->fd, b + at, n, (off_t)i * PART) != (ssize_t)n)
                die("pread");
            at += n;
        }
        uint8_t go = 1;
        write_all(s, &go, 1);
        read_all(s, &go, 1);
        write_all(s, b, at);
    }
    _exit(0);
}

/* ---- tree ---- */

#define TREE_WRITERS 4
#define TREE_BATCH   32

typedef struct tfile {
    char *rel;  /* path under SRC and DST */
    size_t len; /* its size */
    uint8_t *v; /* its bytes, once received */
    int dir;    /* index into tree.dirfd */
} tfile;

typedef struct tree {
    tfile *f;
    size_t n, cap;
    const char *src;
    int dirfd[64];
    char *dirs[64];
    int ndirs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t got;         /* files received, under mu */
    atomic_size_t next; /* the next batch a writer takes */
} tree;

/* Adds the regular files under SRC/rel (rel "" for SRC itself), folders first-seen order. */
static void tree_walk(tree *t, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", t->src, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        die(path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4096], full[4096];
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
                sizeof sub ||
            (size_t)snprintf(full, sizeof full, "%s/%s", t->src, sub) >= sizeof full)
            die("a path too long");
        struct stat sb;
        if (lstat(full, &sb) != 0)
            die(full);
        if (S_ISDIR(sb.st_mode)) {
            tree_walk(t, sub);
        } else if (S_ISREG(sb.st_mode)) {
            if (t->n == t->cap) {
                t->cap = t->cap ? 2 * t->cap : 1024;
                if (!(t->f = realloc(t->f, t->cap * sizeof *t->f)))
                    die("realloc");
            }
            t->f[t->n++] = (tfile){strdup(sub), (size_t)sb.st_size, NULL, 0};
        }
    }
    closedir(d);
}

/* Sender k: reads files k, k + PEERS, ... into memory, says so, waits for the word, streams them.
 */
static void tree_peer(int l, int k, const void *ctx) {
    const tree *t = ctx;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    size_t total = 0;
    for (size_t i = (size_t)k; i < t->n; i += PEERS)
        total += 4 + t->f[i].len;
    uint8_t *b = malloc(total + 1), *at = b;
    if (!b)
        die("malloc");
    for (size_t i = (size_t)k; i < t->n; i += PEERS) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", t->src, t->f[i].rel);
        uint32_t len = (uint32_t)t->f[i].len;
        memcpy(at, &len, 4);
        int fd = open(path, O_RDONLY);
        if (fd < 0 || read(fd, at + 4, len) != (ssize_t)len)
            die(path);
        close(fd);
        at += 4 + len;
    }
    uint8_t go = 1;
    write_all(s, &go, 1);
    read_all(s, &go, 1);
    write_all(s, b, total);
    _exit(0);
}

static void *tree_writer(void *arg) {
    tree *t = arg;
    for (;;) {
        size_t lo = atomic_fetch_add(&t->next, TREE_BATCH);
        if (lo >= t->n)
            return NULL;
        size_t hi = lo + TREE_BATCH < t->n ? lo + TREE_BATCH : t->n;
        pthread_mutex_lock(&t->mu);
        while (t->got < hi)
            pthread_cond_wait(&t->cv, &t->mu);
        pthread_mutex_unlock(&t->mu);
        for (size_t i = lo; i < hi; i++) {
            tfile *f = &t->f[i];
            const char *base = strrchr(f->rel, '/');
            base = base ? base + 1 : f->rel;
            int fd = openat(t->dirfd[f->dir], ".", O_TMPFILE | O_WRONLY, 0644);
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
            if (fd < 0 || write(fd, f->v, f->len) != (ssize_t)f->len ||
                linkat(AT_FDCWD, proc, t->dirfd[f->dir], base, AT_SYMLINK_FOLLOW) != 0 ||
                close(fd) != 0)
                die(f->rel);
            free(f->v);
        }
    }
}

static int tree_floor(const char *src, const char *dst) {
    tree *t = calloc(1, sizeof *t);
    if (!t)
        die("calloc");
    t->src = src;
    tree_walk(t, "");
    /* Each file's folder under DST, in first-seen order. */
    for (size_t i = 0; i < t->n; i++) {
        const char *slash = strrchr(t->f[i].rel, '/');
        size_t dl = slash ? (size_t)(slash - t->f[i].rel) : 0;
        int d = 0;
        while (d < t->ndirs &&
               !(strlen(t->dirs[d]) == dl && memcmp(t->dirs[d], t->f[i].rel, dl) == 0))
            d++;
        if (d == t->ndirs) {
            if (t->ndirs == 64) {
                fprintf(stderr, "put_get_floor: more than 64 folders under %s\n", src);
                exit(2);
            }
            t->dirs[t->ndirs++] = strndup(t->f[i].rel, dl);
        }
        t->f[i].dir = d;
    }
    int sock[PEERS];
    spawn(sock, tree_peer, t);
    uint8_t one;
    for (int k = 0; k < PEERS; k++)
        read_all(sock[k], &one, 1); /* each sender holds its files */
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    double t0 = now();
    (void)mkdir(dst, 0755); /* DST itself, when no file lies directly under SRC */
    for (int d = 0; d < t->ndirs; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dst, t->dirs[d]);
        for (char *p = path + strlen(dst) + 1; *p; p++) /* mkdir -p */
            if (*p == '/') {
                *p = 0;
                (void)mkdir(path, 0755);
                *p = '/';
            }
        (void)mkdir(path, 0755);
        if ((t->dirfd[d] = open(path, O_DIRECTORY | O_RDONLY)) < 0)
            die(path);
    }
    for (int k = 0; k < PEERS; k++)
        write_all(sock[k], &one, 1);
    pthread_t w[TREE_WRITERS];
    for (int i = 0; i < TREE_WRITERS; i++)
        if (pthread_create(&w[i], NULL, tree_writer, t) != 0)
            die("pthread_create");
    for (size_t i = 0; i < t->n; i++) {
        uint32_t len;
        read_all(sock[i % PEERS], &len, 4);
        uint8_t *v = malloc(len + 1);
        if (!v || len != t->f[i].len)
            die("a value's length");
        read_all(sock[i % PEERS], v, len);
        (void)XXH3_128bits(v, len);
        t->f[i].v = v;
        if ((i + 1) % TREE_BATCH == 0 || i + 1 == t->n) {
            pthread_mutex_lock(&t->mu);
            t->got = i + 1;
            pthread_cond_broadcast(&t->cv);
            pthread_mutex_unlock(&t->mu);
        }
    }
    for (int i = 0; i < TREE_WRITERS; i++)
        pthread_join(w[i], NULL);
    double t1 = now();
    printf("%.4f\n", t1 - t0);
    while (wait(NULL) > 0) {
    }
    for (size_t i = 0; i < t->n; i++)
        free(t->f[i].rel);
    for (int d = 0; d < t->ndirs; d++) {
        free(t->dirs[d]);
        close(t->dirfd[d]);
    }
    for (int k = 0; k < PEERS; k++)
        close(sock[k]);
    free(t->f);
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    aq_alloc_tune_for_chunks();
    aq_alloc_huge_heap(48u << 20);
    if (argc == 4 && strcmp(argv[1], "tree") == 0)
        return tree_floor(argv[2], argv[3]);
    bool put = argc >= 3 && strcmp(argv[1], "put") == 0;
    bool get = argc >= 4 && strcmp(argv[1], "get") == 0;
    int nargs = put ? 3 : 4;
    bool digest = !(argc > nargs && strcmp(argv[nargs], "--no-digest") == 0);
    if ((!put && !get) || argc > nargs + 1 || (argc == nargs + 1 && digest)) {
        fprintf(stderr, "usage: put_get_floor put FILE [--no-digest]\n"
                        "       put_get_floor get FILE OUT [--no-digest]\n"
                        "       put_get_floor tree SRC DST\n");
        return 2;
    }
    int fd = open(argv[2], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        die(argv[2]);
    uint64_t size = (uint64_t)st.st_size;
    size_t parts = (size_t)((size + PART - 1) / PART);
    int sock[PEERS];
    file_job job = {size, parts, put, digest, fd};
    spawn(sock, peer, &job);
    uint8_t *b = malloc(PART);
    XXH3_state_t *whole = XXH3_createState();
    if (!b || !whole)
        die("malloc");
    XXH3_128bits_reset(whole);
    uint8_t one;
    double t0, t1;
    if (put) {
        t0 = now();
        for (size_t i = 0; i < parts; i++) {
            size_t n = part_len(size, i);
            if (pread(fd, b, n, (off_t)i * PART) != (ssize_t)n)
                die("pread");
            if (digest) {
                (void)XXH3_128bits(b, n);
                XXH3_128bits_update(whole, b, n);
            }
            write_all(sock[i % PEERS], b, n);
        }
        for (size_t i = 0; i < parts; i++)
            read_all(sock[i % PEERS], &one, 1);
        t1 = now();
    } else {
        for (int k = 0; k < PEERS; k++)
            read_all(sock[k], &one, 1); /* each sender holds its parts */
        t0 = now();
        int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0)
            die(argv[3]);
        for (int k = 0; k < PEERS; k++)
            write_all(sock[k], &one, 1);
        for (size_t i = 0; i < parts; i++) {
            size_t n = part_len(size, i);
            read_all(sock[i % PEERS], b, n);
            if (digest) {
                (void)XXH3_128bits(b, n);
                XXH3_128bits_update(whole, b, n);
            }
            if (pwrite(out, b, n, (off_t)i * PART) != (ssize_t)n)
                die("pwrite");
        }
        if (close(out) != 0)
            die("close");
        t1 = now();
    }
    (void)XXH3_128bits_digest(whole);
    printf("%.4f\n", t1 - t0);
    while (wait(NULL) > 0) {
    }
    for (int k = 0; k < PEERS; k++)
        close(sock[k]);
    XXH3_freeState(whole);
    free(b);
    close(fd);
    return 0;
}
