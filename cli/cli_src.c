/* cli_src: one input of `aquifer parse` (a file or stdin), its format recognised by its first
 * bytes and decompressed while it streams (contract in cli_src.h). */
#include "cli_src.h"

#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "aq_error.h"

#define IN_BLOCK (256u << 10) /* compressed bytes read at once */
/* xz: a file asking the decoder for more memory is refused (xz -9 needs 65 MiB). */
#define XZ_MEMLIMIT (1ull << 30)
static const uint8_t XZ_MAGIC[6] = {0xfd, '7', 'z', 'X', 'Z', 0};

struct cli_src {
    char *name;
    int fd;
    bool own_fd;
    bool regular;
    uint64_t size;
    cli_fmt fmt;
    uint8_t *ib;
    size_t ipos, ilen;
    bool ieof;
    uint64_t in_off;  /* bytes read from fd */
    bool started;     /* the decoder is set up */
    bool open_member; /* inside a gzip member or bzip2 stream */
    bool finished;    /* xz: the stream ended */
    size_t zs_left;   /* zstd: the last hint (0: between frames) */
    union {
        z_stream z;
        bz_stream bz;
        lzma_stream xz;
        ZSTD_DCtx *zs;
    } u;
    uint64_t out_bytes;
    uint64_t decode_ns;
    const _Atomic bool *stop; /* a pipe's reader gives up when this is set */
};

const char *cli_fmt_name(cli_fmt f) {
    static const char *const n[] = {"plain", "gzip", "zstd", "bzip2", "xz"};
    return f < CLI_FMT_COUNT ? n[f] : "?";
}

cli_fmt cli_fmt_sniff(const uint8_t *p, size_t n) {
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return CLI_FMT_GZIP;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return CLI_FMT_ZSTD;
    /* a skippable frame: 0x184D2A50..5F little-endian */
    if (n >= 4 && (p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18)
        return CLI_FMT_ZSTD;
    if (n >= 4 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' && p[3] <= '9')
        return CLI_FMT_BZIP2;
    if (n >= 6 && memcmp(p, XZ_MAGIC, 6) == 0)
        return CLI_FMT_XZ;
    return CLI_FMT_PLAIN;
}

/* Formats people compress CSV with that are not read here: named in the refusal, where the
 * bytes would otherwise be refused as "not text" or parsed as garbage. */
static const char *foreign_format(const uint8_t *p, size_t n) {
    if (n >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
        return "a zip archive";
    if (n >= 4 && memcmp(p, "\x04\x22\x4d\x18", 4) == 0)
        return "lz4-compressed";
    if (n >= 6 && memcmp(p, "7z\xbc\xaf\x27\x1c", 6) == 0)
        return "a 7z archive";
    if (n >= 2 && memcmp(p, "\x1f\x9d", 2) == 0)
        return "compress (.Z) data";
    if (n >= 4 && memcmp(p, "\x89LZO", 4) == 0)
        return "lzop-compressed";
    return NULL;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int read_some(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    for (;;) {
        /* A pipe may stay silent: its decoder thread wakes to see whether the reader has gone. */
        if (s->stop && !s->regular) {
            struct pollfd pf = {s->fd, POLLIN, 0};
            int pr = poll(&pf, 1, 100);
            if (atomic_load(s->stop)) {
                snprintf(why, wcap, "%s: reading stopped", s->name);
                return AQ_ECANCELED;
            }
            if (pr == 0 || (pr < 0 && errno == EINTR))
                continue;
        }
        ssize_t r = read(s->fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            snprintf(why, wcap, "reading %s: %s", s->name, strerror(e));
            return -e;
        }
        *got = (size_t)r;
        s->in_off += (uint64_t)r;
        return 0;
    }
}

/* Makes at least n bytes available at ib[ipos] unless the file ends first. */
static int ensure(cli_src *s, size_t n, char *why, size_t wcap) {
    while (s->ilen - s->ipos < n && !s->ieof) {
        if (s->ipos) {
            memmove(s->ib, s->ib + s->ipos, s->ilen - s->ipos);
            s->ilen -= s->ipos;
            s->ipos = 0;
        }
        size_t got = 0;
        int err = read_some(s, s->ib + s->ilen, IN_BLOCK - s->ilen, &got, why, wcap);
        if (err)
            return err;
        s->ilen += got;
        s->ieof = got == 0;
    }
    return 0;
}

/* Refills ib when it is used up. */
static int refill(cli_src *s, char *why, size_t wcap) {
    if (s->ipos < s->ilen || s->ieof)
        return 0;
    s->ipos = s->ilen = 0;
    return ensure(s, 1, why, wcap);
}

static uint64_t consumed(const cli_src *s) {
    return s->in_off - (s->ilen - s->ipos);
}

int cli_src_open(cli_src **out, const char *path, char *why, size_t cap) {
    bool is_stdin = strcmp(path, "-") == 0;
    cli_src *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(is_stdin ? "stdin" : path)) || !(s->ib = malloc(IN_BLOCK))) {
        if (s)
            free(s->name);
        free(s);
        snprintf(why, cap, "out of memory");
        return AQ_ENOMEM;
    }
    s->fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    s->own_fd = !is_stdin;
    struct stat st;
    int err = 0;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        err = -errno;
        snprintf(why, cap, "cannot open %s: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        err = AQ_EINVAL;
        snprintf(why, cap, "%s is a directory", s->name);
    } else {
        s->regular = S_ISREG(st.st_mode);
        s->size = s->regular ? (uint64_t)st.st_size : 0;
        if (s->regular && st.st_size == 0) {
            err = AQ_EINVAL;
            snprintf(why, cap, "%s is empty", s->name);
        } else if ((err = ensure(s, 6, why, cap)) == 0) {
            s->fmt = cli_fmt_sniff(s->ib, s->ilen);
            const char *other = s->fmt == CLI_FMT_PLAIN ? foreign_format(s->ib, s->ilen) : NULL;
            if (other) {
                err = AQ_EINVAL;
                snprintf(why, cap,
                         "%s is %s, which parse does not read (it reads plain, gzip, "
                         "zstd, bzip2 and xz files)",
                         s->name, other);
            }
        }
    }
    if (err) {
        cli_src_close(s);
        return err;
    }
    *out = s;
    return 0;
}

cli_fmt cli_src_format(const cli_src *s) {
    return s->fmt;
}
const char *cli_src_name(const cli_src *s) {
    return s->name;
}
uint64_t cli_src_in_bytes(const cli_src *s) {
    return consumed(s);
}

void cli_src_close(cli_src *s) {
    if (!s)
        return;
    if (s->started) {
        switch (s->fmt) {
        case CLI_FMT_GZIP:
            inflateEnd(&s->u.z);
            break;
        case CLI_FMT_ZSTD:
            ZSTD_freeDCtx(s->u.zs);
            break;
        case CLI_FMT_BZIP2:
            if (s->open_member)
                BZ2_bzDecompressEnd(&s->u.bz);
            break;
        case CLI_FMT_XZ:
            lzma_end(&s->u.xz);
            break;
        default:
            break;
        }
    }
    if (s->own_fd && s->fd >= 0)
        close(s->fd);
    free(s->ib);
    free(s->name);
    free(s);
}

static int corrupt(cli_src *s, const char *what, char *why, size_t wcap) {
    snprintf(why, wcap, "%s: corrupt %s data at byte %llu (%s)", s->name, cli_fmt_name(s->fmt),
             (unsigned long long)consumed(s), what);
    return AQ_EPARSE;
}

static int truncated(cli_src *s, char *why, size_t wcap) {
    snprintf(why, wcap, "%s: truncated %s data: the file ends at byte %llu inside a %s", s->name,
             cli_fmt_name(s->fmt), (unsigned long long)s->in_off,
             s->fmt == CLI_FMT_ZSTD   ? "frame"
             : s->fmt == CLI_FMT_GZIP ? "member"
                                      : "stream");
    return AQ_EPARSE;
}

static int read_gzip(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    z_stream *z = &s->u.z;
    if (!s->started) {
        memset(z, 0, sizeof *z);
        if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) {
            snprintf(why, wcap, "out of memory");
            return AQ_ENOMEM;
        }
        s->started = s->open_member = true;
    }
    size_t done = 0;
    while (done == 0) {
        int err;
        if (!s->open_member) {
            /* Another member, or the end; anything else after a member is not gzip. */
            if ((err = ensure(s, 2, why, wcap)) != 0)
                return err;
            if (s->ilen == s->ipos)
                break;
            if (s->ilen - s->ipos < 2 || s->ib[s->ipos] != 0x1f || s->ib[s->ipos + 1] != 0x8b)
                return corrupt(s, "bytes after the last member are not a gzip member", why, wcap);
            inflateReset(z);
            s->open_member = true;
        }
        if ((err = refill(s, why, wcap)) != 0)
            return err;
        z->next_in = s->ib + s->ipos;
        z->avail_in = (uInt)(s->ilen - s->ipos);
        z->next_out = buf;
        z->avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
        int r = inflate(z, Z_NO_FLUSH);
        s->ipos = s->ilen - z->avail_in;
        done = (size_t)(z->next_out - buf);
        if (r == Z_STREAM_END)
            s->open_member = false;
        else if (r == Z_BUF_ERROR && s->ipos == s->ilen && s->ieof)
            return truncated(s, why, wcap);
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return corrupt(s, z->msg ? z->msg : "inflate failed", why, wcap);
    }
    *got = done;
    return 0;
}

static int read_zstd(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    if (!s->started) {
        if (!(s->u.zs = ZSTD_createDCtx())) {
            snprintf(why, wcap, "out of memory");
            return AQ_ENOMEM;
        }
        s->started = true;
    }
    ZSTD_outBuffer ob = {buf, cap, 0};
    while (ob.pos == 0) {
        int err = refill(s, why, wcap);
        if (err)
            return err;
        ZSTD_inBuffer ibf = {s->ib, s->ilen, s->ipos};
        size_t r = ZSTD_decompressStream(s->u.zs, &ob, &ibf);
        bool moved = ibf.pos != s->ipos;
        s->ipos = ibf.pos;
        if (ZSTD_isError(r))
            return corrupt(s, ZSTD_getErrorName(r), why, wcap);
        if (ob.pos == 0 && !moved && s->ipos == s->ilen && s->ieof) {
            /* no progress at the end: between frames is the end, inside one is truncation */
            if (s->zs_left != 0)
                return truncated(s, why, wcap);
            break;
        }
        s->zs_left = r;
    }
    *got = ob.pos;
    return 0;
}

static int read_bzip2(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    bz_stream *b = &s->u.bz;
    s->started = true;
    size_t done = 0;
    while (done == 0) {
        int err;
        if (!s->open_member) {
            if ((err = ensure(s, 4, why, wcap)) != 0)
                return err;
            if (s->ilen == s->ipos)
                break;
            if (cli_fmt_sniff(s->ib + s->ipos, s->ilen - s->ipos) != CLI_FMT_BZIP2)
                return corrupt(s, "bytes after the last stream are not a bzip2 stream", why, wcap);
            memset(b, 0, sizeof *b);
            if (BZ2_bzDecompressInit(b, 0, 0) != BZ_OK) {
                snprintf(why, wcap, "out of memory");
                return AQ_ENOMEM;
            }
            s->open_member = true;
        }
        if ((err = refill(s, why, wcap)) != 0)
            return err;
        b->next_in = (char *)s->ib + s->ipos;
        b->avail_in = (unsigned)(s->ilen - s->ipos);
        b->next_out = (char *)buf;
        b->avail_out = (unsigned)(cap > UINT32_MAX ? UINT32_MAX : cap);
        int r = BZ2_bzDecompress(b);
        s->ipos = s->ilen - b->avail_in;
        done = (size_t)((uint8_t *)b->next_out - buf);
        if (r == BZ_STREAM_END) {
            BZ2_bzDecompressEnd(b);
            s->open_member = false;
        } else if (r != BZ_OK) {
            return corrupt(s,
                           r == BZ_DATA_ERROR_MAGIC ? "bad magic"
                           : r == BZ_MEM_ERROR      ? "out of memory"
                                                    : "data error",
                           why, wcap);
        } else if (done == 0 && s->ipos == s->ilen && s->ieof) {
            return truncated(s, why, wcap);
        }
    }
    *got = done;
    return 0;
}

static int read_xz(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    lzma_stream *x = &s->u.xz;
    if (!s->started) {
        lzma_stream init = LZMA_STREAM_INIT;
        *x = init;
        lzma_mt mt;
        memset(&mt, 0, sizeof mt);
        mt.flags = LZMA_CONCATENATED;
        mt.threads = 2; /* blocks of a multi-block file decode in parallel */
        mt.memlimit_threading = XZ_MEMLIMIT;
        mt.memlimit_stop = XZ_MEMLIMIT;
        if (lzma_stream_decoder_mt(x, &mt) != LZMA_OK) {
            snprintf(why, wcap, "out of memory");
            return AQ_ENOMEM;
        }
        s->started = true;
    }
    if (s->finished) {
        *got = 0;
        return 0;
    }
    size_t done = 0;
    while (done == 0) {
        int err = refill(s, why, wcap);
        if (err)
            return err;
        x->next_in = s->ib + s->ipos;
        x->avail_in = s->ilen - s->ipos;
        x->next_out = buf;
        x->avail_out = cap;
        lzma_ret r = lzma_code(x, s->ipos == s->ilen && s->ieof ? LZMA_FINISH : LZMA_RUN);
        s->ipos = s->ilen - x->avail_in;
        done = (size_t)(x->next_out - buf);
        if (r == LZMA_STREAM_END) {
            s->finished = true;
            break;
        }
        if (r == LZMA_BUF_ERROR)
            return truncated(s, why, wcap);
        if (r != LZMA_OK)
            return corrupt(s,
                           r == LZMA_MEMLIMIT_ERROR  ? "it needs more than 1 GiB to decode"
                           : r == LZMA_FORMAT_ERROR  ? "not an xz stream"
                           : r == LZMA_OPTIONS_ERROR ? "unsupported options"
                           : r == LZMA_MEM_ERROR     ? "out of memory"
                                                     : "data error",
                           why, wcap);
    }
    *got = done;
    return 0;
}

int cli_src_read(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    *got = 0;
    if (cap == 0)
        return 0;
    if (s->fmt == CLI_FMT_PLAIN) {
        if (s->ipos < s->ilen) {
            size_t n = s->ilen - s->ipos < cap ? s->ilen - s->ipos : cap;
            memcpy(buf, s->ib + s->ipos, n);
            s->ipos += n;
            *got = n;
            return 0;
        }
        if (s->ieof)
            return 0;
        return read_some(s, buf, cap, got, why, wcap);
    }
    uint64_t t0 = mono_ns();
    int err;
    switch (s->fmt) {
    case CLI_FMT_GZIP:
        err = read_gzip(s, buf, cap, got, why, wcap);
        break;
    case CLI_FMT_ZSTD:
        err = read_zstd(s, buf, cap, got, why, wcap);
        break;
    case CLI_FMT_BZIP2:
        err = read_bzip2(s, buf, cap, got, why, wcap);
        break;
    default:
        err = read_xz(s, buf, cap, got, why, wcap);
        break;
    }
    s->decode_ns += mono_ns() - t0;
    s->out_bytes += *got;
    return err;
}

int cli_src_fd(const cli_src *s) {
    return s->fd;
}
bool cli_src_is_stdin(const cli_src *s) {
    return !s->own_fd;
}
bool cli_src_regular(const cli_src *s) {
    return s->regular;
}
uint64_t cli_src_size(const cli_src *s) {
    return s->size;
}
uint64_t cli_src_out_bytes(const cli_src *s) {
    return s->out_bytes;
}
uint64_t cli_src_decode_ns(const cli_src *s) {
    return s->decode_ns;
}
void cli_src_set_stop(cli_src *s, const _Atomic bool *stop) {
    s->stop = stop;
}
