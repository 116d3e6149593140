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
 *
 * put: three receiver processes on loopback TCP (the three nodes) take the parts in turn, hash
 * each (unless --no-digest) and answer one byte; this process reads each part with pread, hashes
 * it (part and whole) and writes it to its receiver's socket. get: three sender processes hold
 * their parts of FILE in memory before the clock starts and stream them; this process receives
 * each part, hashes it and writes it at its offset in OUT, which it creates. One thread each
 * side, and the command's heap policy (aq_alloc.h). Prints the seconds from the first byte to the
 * last answer (put) or to OUT's close (get). Figures only; nothing here is a test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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

#define PART  (4u << 20)
#define PEERS 3

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void read_all(int fd, void *b, size_t n) {
    for (size_t d = 0; d < n;) {
        ssize_t r = read(fd, (char *)b + d, n - d);
        if (r <= 0)
            die("read");
        d += (size_t)r;
    }
}

static void write_all(int fd, const void *b, size_t n) {
    for (size_t d = 0; d < n;) {
        ssize_t r = write(fd, (const char *)b + d, n - d);
        if (r <= 0)
            die("write");
        d += (size_t)r;
    }
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

/* Peer k's process: parts k, k + PEERS, ... of a file of size bytes. put: receives, hashes and
 * answers each. get: reads its parts from fd first, says so, then streams them. */
static void peer(int l, int k, uint64_t size, size_t parts, bool put, bool digest, int fd) {
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
            uint8_t ack = digest ? (uint8_t)XXH3_128bits(b, n).low64 : 0;
            write_all(s, &ack, 1);
        }
    } else {
        size_t at = 0;
        for (size_t i = (size_t)k; i < parts; i += PEERS) {
            size_t n = part_len(size, i);
            if (pread(fd, b + at, n, (off_t)i * PART) != (ssize_t)n)
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

int main(int argc, char **argv) {
    aq_alloc_tune_for_chunks();
    aq_alloc_huge_heap(48u << 20);
    bool put = argc >= 3 && strcmp(argv[1], "put") == 0;
    bool get = argc >= 4 && strcmp(argv[1], "get") == 0;
    int nargs = put ? 3 : 4;
    bool digest = !(argc > nargs && strcmp(argv[nargs], "--no-digest") == 0);
    if ((!put && !get) || argc > nargs + 1 || (argc == nargs + 1 && digest)) {
        fprintf(stderr, "usage: put_get_floor put FILE [--no-digest]\n"
                        "       put_get_floor get FILE OUT [--no-digest]\n");
        return 2;
    }
    int fd = open(argv[2], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        die(argv[2]);
    uint64_t size = (uint64_t)st.st_size;
    size_t parts = (size_t)((size + PART - 1) / PART);
    int sock[PEERS];
    for (int k = 0; k < PEERS; k++) {
        struct sockaddr_in a;
        int l = listener(&a);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            peer(l, k, size, parts, put, digest, fd);
        close(l);
        sock[k] = socket(AF_INET, SOCK_STREAM, 0);
        if (sock[k] < 0 || connect(sock[k], (struct sockaddr *)&a, sizeof a) != 0)
            die("connect");
    }
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
    return 0;
}
