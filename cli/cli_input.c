/* cli_input: files, directories, globs and stdin, decompressed and transcoded, as one stream of
 * UTF-8 CSV text (contract in cli_input.h). */
#include "cli_input.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "aq_csv_cut.h"
#include "aq_error.h"

#define Q_BLOCK    (1u << 20) /* decompressed bytes per queued block */
#define Q_DEPTH    4          /* queued blocks: how far a decoder thread runs ahead */
#define DECODERS   2          /* decoder threads: file i is decoded by thread i % DECODERS */
#define RAW_BLOCK  (1u << 20) /* raw bytes turned into text at once */
#define HEAD_LIMIT (8u << 20) /* a later file's header must end within this many bytes */
#define HEAD_ROWS  1000       /* ... and be among its first rows (a preamble before it is short) */
#define SMALL_CAP  64         /* below this room, text is made in a side buffer */

/* ---- formats and encodings ---- */

int cli_enc_parse(const char *s, cli_enc *e) {
    if (strcasecmp(s, "utf-8") == 0 || strcasecmp(s, "utf8") == 0)
        *e = CLI_ENC_UTF8;
    else if (strcasecmp(s, "latin-1") == 0 || strcasecmp(s, "latin1") == 0 ||
             strcasecmp(s, "iso-8859-1") == 0)
        *e = CLI_ENC_LATIN1;
    else if (strcasecmp(s, "cp1252") == 0 || strcasecmp(s, "windows-1252") == 0)
        *e = CLI_ENC_CP1252;
    else
        return AQ_EINVAL;
    return 0;
}

/* cp1252's 0x80..0x9F; the unassigned five keep their value (C1 controls). */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

/* One byte of a single-byte encoding as UTF-8 into o (room for 3); returns the length. */
static size_t enc_byte(uint8_t b, bool cp1252, uint8_t *o) {
    uint32_t u = b;
    if (b < 0x80) {
        o[0] = b;
        return 1;
    }
    if (cp1252 && b < 0xa0)
        u = cp1252_hi[b - 0x80];
    if (u < 0x800) {
        o[0] = (uint8_t)(0xc0 | (u >> 6));
        o[1] = (uint8_t)(0x80 | (u & 0x3f));
        return 2;
    }
    o[0] = (uint8_t)(0xe0 | (u >> 12));
    o[1] = (uint8_t)(0x80 | ((u >> 6) & 0x3f));
    o[2] = (uint8_t)(0x80 | (u & 0x3f));
    return 3;
}

/* Transcodes raw[0..n) into dst while a whole character fits; *used: raw bytes consumed. */
static size_t transcode(const uint8_t *raw, size_t n, bool cp1252, uint8_t *dst, size_t cap,
                        size_t *used, uint64_t *lfs) {
    size_t i = 0, o = 0;
    while (i < n && o + 3 <= cap) {
#ifdef __SSE2__
        /* runs of ASCII are copied 16 bytes at a time */
        if (i + 16 <= n && o + 16 <= cap) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(raw + i));
            if (!_mm_movemask_epi8(v)) {
                unsigned nl = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
                for (; nl; nl &= nl - 1)
                    ++*lfs;
                _mm_storeu_si128((__m128i *)(void *)(dst + o), v);
                i += 16;
                o += 16;
                continue;
            }
        }
#endif
        uint8_t b = raw[i++];
        *lfs += b == '\n';
        o += enc_byte(b, cp1252, dst + o);
    }
    while (i < n && o < cap && raw[i] < 0x80) { /* the last bytes before a full buffer */
        *lfs += raw[i] == '\n';
        dst[o++] = raw[i++];
    }
    *used = i;
    return o;
}

/* UTF-8 check of p[0..n): *bad is the offset of the first invalid sequence (n: none); *tail the
 * length of an incomplete but so far valid sequence at the end (held back by the caller); *lfs
 * counts the LFs before *bad. */
static void utf8_check(const uint8_t *p, size_t n, size_t *bad, size_t *tail, uint64_t *lfs) {
    size_t i = 0, scalar_until = 0;
    uint64_t lf = 0;
    *tail = 0;
    *bad = n;
    while (i < n) {
#ifdef __SSE2__
        /* ASCII 64 bytes at a time; LFs summed in byte lanes (at most 4 per lane per round, so
         * 63 rounds fit a byte) */
        if (i >= scalar_until && i + 64 <= n) {
            const __m128i nl = _mm_set1_epi8('\n');
            __m128i acc = _mm_setzero_si128();
            size_t j = i;
            int k = 0;
            for (; k < 63 && j + 64 <= n; k++, j += 64) {
                const __m128i *q = (const __m128i *)(const void *)(p + j);
                __m128i v0 = _mm_loadu_si128(q), v1 = _mm_loadu_si128(q + 1),
                        v2 = _mm_loadu_si128(q + 2), v3 = _mm_loadu_si128(q + 3);
                if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3))))
                    break;
                acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v0, nl));
                acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v1, nl));
                acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v2, nl));
                acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v3, nl));
            }
            __m128i sum = _mm_sad_epu8(acc, _mm_setzero_si128());
            lf += (uint64_t)_mm_cvtsi128_si32(sum) +
                  (uint64_t)_mm_cvtsi128_si32(_mm_srli_si128(sum, 8));
            i = j;
            if (k == 63 || j + 64 > n)
                continue;
            scalar_until = i + 64; /* non-ASCII within these 64 bytes: step through them */
        }
#endif
        uint8_t b = p[i];
        if (b < 0x80) {
#ifdef __SSE2__
            /* Text with accents holds a multibyte sequence every few dozen bytes, so the 64-byte
             * rounds above rarely run: the ASCII between sequences goes 16 bytes at a time, up
             * to the next byte with the top bit set (LFs are few: counted bit by bit). */
            if (i + 16 <= n) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
                unsigned top = (unsigned)_mm_movemask_epi8(v);
                unsigned run = top ? (unsigned)__builtin_ctz(top) : 16;
                unsigned nl = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))) &
                              ((1u << run) - 1);
                for (; nl; nl &= nl - 1)
                    lf++;
                i += run;
                continue;
            }
#endif
            lf += b == '\n';
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi2 = 0xbf;
        if (b >= 0xc2 && b <= 0xdf)
            need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi2 = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi2 = 0x8f;
        } else {
            *bad = i;
            break;
        }
        size_t k = 1;
        bool ok = true;
        for (; k <= need && i + k < n; k++) {
            uint8_t c = p[i + k];
            if (k == 1 ? (c < lo || c > hi2) : (c < 0x80 || c > 0xbf)) {
                ok = false;
                break;
            }
        }
        if (!ok) {
            *bad = i;
            break;
        }
        if (k <= need) { /* ran out of bytes inside a valid prefix */
            *tail = n - i;
            break;
        }
        i += need + 1;
    }
    *lfs += lf;
}

/* ---- the whole input ---- */

enum { ST_START, ST_BODY };

/* A header row's fields, owned. */
typedef struct fields {
    char **f;
    size_t *l;
    size_t n, cap;
} fields;

static void fields_free(fields *h) {
    for (size_t i = 0; i < h->n; i++)
        free(h->f[i]);
    free(h->f);
    free(h->l);
    memset(h, 0, sizeof *h);
}

static int fields_add(fields *h, const char *p, size_t n) {
    if (h->n == h->cap) {
        size_t c = h->cap ? 2 * h->cap : 16;
        char **nf = realloc(h->f, c * sizeof *nf);
        if (!nf)
            return AQ_ENOMEM;
        h->f = nf;
        size_t *nl = realloc(h->l, c * sizeof *nl);
        if (!nl)
            return AQ_ENOMEM;
        h->l = nl;
        h->cap = c;
    }
    if (!(h->f[h->n] = malloc(n + 1)))
        return AQ_ENOMEM;
    memcpy(h->f[h->n], p, n);
    h->f[h->n][n] = 0;
    h->l[h->n++] = n;
    return 0;
}

/* The index of the occ-th (0-based) field equal to p[0..n) in h, or SIZE_MAX. */
static size_t fields_find(const fields *h, const char *p, size_t n, size_t occ) {
    for (size_t i = 0; i < h->n; i++)
        if (h->l[i] == n && memcmp(h->f[i], p, n) == 0 && occ-- == 0)
            return i;
    return SIZE_MAX;
}

typedef struct qblock {
    uint8_t *p;
    size_t len;
    bool end; /* the end of source `src` */
    uint32_t src;
} qblock;

/* One decoder thread and its queue of decoded blocks (the sources i with i % DECODERS == idx). */
typedef struct decoder {
    struct cli_input *in;
    size_t idx;
    pthread_t th;
    bool on;
    qblock q[Q_DEPTH];
    size_t head, count, pos;
    int err;
    char why[512];
} decoder;

struct cli_input {
    cli_src **src;
    size_t n;
    cli_enc enc;
    /* the decoder threads, when any source is compressed or a stream; one lock for all */
    bool threaded, mu_init;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    decoder dec[DECODERS];
    _Atomic bool stop;        /* also seen by a decoder waiting on a pipe (cli_src.stop) */
    _Atomic uint64_t in_done; /* bytes of the files consumed (progress) */
    /* the current file */
    size_t cur;
    int stage;
    bool raw_eof;   /* the current file's raw bytes are all read */
    bool cp1252;    /* transcoding the current file (single-byte encoding) */
    bool latin1;    /* ... as Latin-1 rather than cp1252 */
    bool raw_pass;  /* AUTO found it is not UTF-8: its bytes pass unchecked */
    uint64_t lines; /* LFs of its text so far */
    uint64_t ftext; /* its text bytes so far */
    uint8_t carry[4];
    size_t ncarry;
    uint8_t *rbuf; /* raw bytes waiting to be transcoded */
    size_t rpos, rlen;
    /* the first file's text read ahead (peek), handed out first */
    char *pk;
    size_t pk_len, pk_pos;
    bool pk_eof;
    bool pk_ready; /* the peek is done: text_read hands pk out first */
    /* text waiting to be handed out (headers dropped, joins, small reads) */
    char *ob;
    size_t ob_len, ob_pos, ob_cap;
    char last_out;
    uint64_t text_out;
    /* where each file's lines begin in the joined text (several files only) */
    uint64_t lf_out;   /* LFs handed out */
    uint64_t *gstart;  /* per file: the joined line its first handed-out line is (0: not yet) */
    uint64_t *skipped; /* per file: lines dropped at its start (its header) */
    /* the dialect, the table (lines before it in the first file, its field count), the first
     * file's header */
    bool have_dialect, header;
    uint64_t skip;
    uint32_t ncols;
    aq_csv_dialect d;
    char **hdr;
    size_t *hlen;
    size_t nhdr;
    uint32_t headers_dropped;
    /* --fill over differing headers: the union, each file's map into it, its header line */
    bool unite;
    fields uni;
    size_t *map; /* file k: map[k * uni.n + u] = its column for union column u, SIZE_MAX none */
    bool *ident; /* file k's header is the union itself */
    char *uline; /* the union header as a CSV line */
    size_t uline_len;
    bool remap; /* the current file's rows are rewritten into the union's columns */
    aq_csv_cutter mcut;
    char *mb; /* its text not yet rewritten (a partial row) */
    size_t mb_len, mb_cap;
    uint64_t mb_base;
    /* notes */
    char *note_file;
    uint64_t note_line;
    uint32_t not_utf8;
};

static int add_path(char ***v, size_t *n, size_t *cap, const char *p) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return AQ_ENOMEM;
        *v = nv;
        *cap = c;
    }
    if (!((*v)[*n] = strdup(p)))
        return AQ_ENOMEM;
    (*n)++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory's regular files, sorted bytewise. */
static int add_dir(char ***v, size_t *n, size_t *cap, const char *dir, char *why, size_t wcap) {
    DIR *dh = opendir(dir);
    if (!dh) {
        int e = errno;
        snprintf(why, wcap, "cannot open %s: %s", dir, strerror(e));
        return -e;
    }
    size_t first = *n;
    int err = 0;
    struct dirent *de;
    while (!err && (de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        size_t l = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(l);
        if (!p) {
            err = AQ_ENOMEM;
            break;
        }
        snprintf(p, l, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            err = add_path(v, n, cap, p);
        free(p);
    }
    closedir(dh);
    if (err) {
        snprintf(why, wcap, "out of memory");
        return err;
    }
    if (*n == first) {
        snprintf(why, wcap, "%s holds no regular file", dir);
        return AQ_EINVAL;
    }
    qsort(*v + first, *n - first, sizeof **v, cmp_str);
    return 0;
}

static int expand(const char *const *paths, size_t np, char ***out, size_t *nout, char *why,
                  size_t wcap) {
    char **v = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    bool have_stdin = false;
    for (size_t i = 0; i < np && !err; i++) {
        const char *p = paths[i];
        struct stat st;
        if (strcmp(p, "-") == 0) {
            if (have_stdin) {
                snprintf(why, wcap, "stdin (-) is named twice");
                err = AQ_EINVAL;
            } else {
                have_stdin = true;
                err = add_path(&v, &n, &cap, p);
            }
        } else if (stat(p, &st) == 0) {
            err = S_ISDIR(st.st_mode) ? add_dir(&v, &n, &cap, p, why, wcap)
                                      : add_path(&v, &n, &cap, p);
        } else if (errno == ENOENT && strpbrk(p, "*?[")) {
            glob_t g;
            int gr = glob(p, 0, NULL, &g);
            if (gr == GLOB_NOMATCH) {
                snprintf(why, wcap, "no file matches %s", p);
                err = -ENOENT;
            } else if (gr != 0) {
                snprintf(why, wcap, "cannot expand %s", p);
                err = AQ_EINVAL;
            }
            for (size_t k = 0; gr == 0 && k < g.gl_pathc && !err; k++) {
                const char *m = g.gl_pathv[k];
                err = stat(m, &st) == 0 && S_ISDIR(st.st_mode) ? add_dir(&v, &n, &cap, m, why, wcap)
                                                               : add_path(&v, &n, &cap, m);
            }
            if (gr == 0)
                globfree(&g);
        } else {
            int e = errno;
            snprintf(why, wcap, "cannot open %s: %s", p, strerror(e));
            err = -e;
        }
        if (err == AQ_ENOMEM)
            snprintf(why, wcap, "out of memory");
    }
    if (err) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return err;
    }
    *out = v;
    *nout = n;
    return 0;
}

static void *decoder_main(void *arg);

int cli_input_open(cli_input **out, const char *const *paths, size_t np, cli_enc enc, char *why,
                   size_t cap) {
    char **files = NULL;
    size_t nf = 0;
    int err = expand(paths, np, &files, &nf, why, cap);
    if (err)
        return err;
    cli_input *in = calloc(1, sizeof *in);
    if (!in || !(in->src = calloc(nf, sizeof *in->src)) || !(in->rbuf = malloc(RAW_BLOCK + 8))) {
        if (in)
            free(in->src);
        free(in);
        for (size_t i = 0; i < nf; i++)
            free(files[i]);
        free(files);
        snprintf(why, cap, "out of memory");
        return AQ_ENOMEM;
    }
    in->enc = enc;
    in->cp1252 = enc == CLI_ENC_LATIN1 || enc == CLI_ENC_CP1252;
    in->latin1 = enc == CLI_ENC_LATIN1;
    for (size_t i = 0; i < nf && !err; i++) {
        err = cli_src_open(&in->src[i], files[i], why, cap);
        if (!err) {
            in->n++;
            cli_src *s = in->src[i];
            in->threaded =
                in->threaded || cli_src_format(s) != CLI_FMT_PLAIN || !cli_src_regular(s);
        }
    }
    for (size_t i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    if (!err && in->n > 1 &&
        (!(in->gstart = calloc(in->n, sizeof *in->gstart)) ||
         !(in->skipped = calloc(in->n, sizeof *in->skipped)))) {
        snprintf(why, cap, "out of memory");
        err = AQ_ENOMEM;
    }
    for (size_t i = 0; i < in->n; i++)
        cli_src_set_stop(in->src[i], &in->stop);
    if (!err && in->threaded) {
        pthread_mutex_init(&in->mu, NULL);
        pthread_cond_init(&in->cv, NULL);
        in->mu_init = true;
        /* Files are independent streams: with several, the next is decoded on a second thread
         * while the current one is still decoding. */
        size_t nd = in->n < DECODERS ? in->n : DECODERS;
        for (size_t d = 0; d < nd && !err; d++) {
            decoder *dc = &in->dec[d];
            dc->in = in;
            dc->idx = d;
            for (size_t i = 0; i < Q_DEPTH && !err; i++)
                if (!(dc->q[i].p = malloc(Q_BLOCK)))
                    err = AQ_ENOMEM;
            if (!err && pthread_create(&dc->th, NULL, decoder_main, dc) != 0)
                err = AQ_ENOMEM;
            dc->on = !err;
        }
        if (err)
            snprintf(why, cap, "out of memory");
    }
    if (err) {
        cli_input_close(in);
        return err;
    }
    *out = in;
    return 0;
}

size_t cli_input_nfiles(const cli_input *in) {
    return in->n;
}
const char *cli_input_file(const cli_input *in, size_t i) {
    return i < in->n ? cli_src_name(in->src[i]) : NULL;
}
bool cli_input_first_seekable(const cli_input *in) {
    const cli_src *s = in->src[0];
    return cli_src_regular(s) && cli_src_format(s) == CLI_FMT_PLAIN && !cli_src_is_stdin(s);
}
int cli_input_first_fd(const cli_input *in) {
    return cli_src_fd(in->src[0]);
}

/* A decoder thread: its sources in order into its queue; an end block after each. */
static void *decoder_main(void *arg) {
    decoder *dc = arg;
    cli_input *in = dc->in;
    char why[512] = "";
    int err = 0;
    for (size_t i = dc->idx; i < in->n && !err; i += DECODERS) {
        cli_src *s = in->src[i];
        bool end = false;
        while (!end && !err) {
            pthread_mutex_lock(&in->mu);
            while (dc->count == Q_DEPTH && !in->stop)
                pthread_cond_wait(&in->cv, &in->mu);
            bool stop = in->stop;
            /* the slot after the last published one is ours until published */
            qblock *b = &dc->q[(dc->head + dc->count) % Q_DEPTH];
            pthread_mutex_unlock(&in->mu);
            if (stop)
                return NULL;
            size_t got = 0;
            uint64_t before = cli_src_in_bytes(s);
            err = cli_src_read(s, b->p, Q_BLOCK, &got, why, sizeof why);
            atomic_fetch_add(&in->in_done, cli_src_in_bytes(s) - before);
            if (err)
                break;
            b->len = got;
            b->end = end = got == 0;
            b->src = (uint32_t)i;
            pthread_mutex_lock(&in->mu);
            dc->count++;
            pthread_cond_broadcast(&in->cv);
            pthread_mutex_unlock(&in->mu);
        }
    }
    if (err) {
        pthread_mutex_lock(&in->mu);
        dc->err = err;
        snprintf(dc->why, sizeof dc->why, "%s", why);
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
    }
    return NULL;
}

/* Raw (decompressed) bytes of the current file; *got 0 with raw_eof set at its end. */
static int raw_next(cli_input *in, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap) {
    *got = 0;
    if (in->raw_eof)
        return 0;
    if (!in->threaded) {
        cli_src *s = in->src[in->cur];
        uint64_t before = cli_src_in_bytes(s);
        int err = cli_src_read(s, buf, cap, got, why, wcap);
        atomic_fetch_add(&in->in_done, cli_src_in_bytes(s) - before);
        in->raw_eof = !err && *got == 0;
        return err;
    }
    decoder *dc = &in->dec[in->cur % DECODERS];
    pthread_mutex_lock(&in->mu);
    while (dc->count == 0 && !dc->err)
        pthread_cond_wait(&in->cv, &in->mu);
    if (dc->count == 0) {
        snprintf(why, wcap, "%s", dc->why);
        int err = dc->err;
        pthread_mutex_unlock(&in->mu);
        return err;
    }
    pthread_mutex_unlock(&in->mu);
    qblock *b = &dc->q[dc->head];
    bool pop;
    if (b->end) {
        in->raw_eof = true;
        pop = true;
    } else {
        size_t n = b->len - dc->pos < cap ? b->len - dc->pos : cap;
        memcpy(buf, b->p + dc->pos, n);
        dc->pos += n;
        *got = n;
        pop = dc->pos == b->len;
    }
    if (pop) {
        dc->pos = 0;
        pthread_mutex_lock(&in->mu);
        dc->head = (dc->head + 1) % Q_DEPTH;
        dc->count--;
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
    }
    return 0;
}

/* AUTO met bytes that are not UTF-8: the file's bytes go on as they are, noted. */
static void mark_not_utf8(cli_input *in, uint64_t line) {
    in->raw_pass = true;
    in->not_utf8++;
    if (!in->note_file) {
        in->note_file = strdup(cli_src_name(in->src[in->cur]));
        in->note_line = line;
    }
}

/* Text of the current file into dst (cap >= 4); *got 0 only at its end. */
static int text_read(cli_input *in, uint8_t *dst, size_t cap, size_t *got, char *why, size_t wcap) {
    *got = 0;
    if (in->cur == 0 && in->pk_ready && in->pk_pos < in->pk_len) {
        size_t n = in->pk_len - in->pk_pos < cap ? in->pk_len - in->pk_pos : cap;
        memcpy(dst, in->pk + in->pk_pos, n);
        in->pk_pos += n;
        *got = n;
        return 0;
    }
    for (;;) {
        int err;
        if (in->cp1252) {
            if (in->rpos == in->rlen) {
                size_t n;
                if ((err = raw_next(in, in->rbuf, RAW_BLOCK, &n, why, wcap)) != 0)
                    return err;
                if (n == 0)
                    return 0;
                in->rpos = 0;
                in->rlen = n;
            }
            size_t used;
            size_t o = transcode(in->rbuf + in->rpos, in->rlen - in->rpos, !in->latin1, dst, cap,
                                 &used, &in->lines);
            in->rpos += used;
            in->ftext += o;
            *got = o;
            return 0;
        }
        if (in->raw_pass) {
            size_t n;
            if ((err = raw_next(in, dst, cap < RAW_BLOCK ? cap : RAW_BLOCK, &n, why, wcap)) != 0)
                return err;
            in->ftext += n;
            *got = n;
            return 0;
        }
        size_t c = in->ncarry;
        memcpy(dst, in->carry, c);
        in->ncarry = 0;
        size_t room = cap - c < RAW_BLOCK ? cap - c : RAW_BLOCK;
        size_t n;
        if ((err = raw_next(in, dst + c, room, &n, why, wcap)) != 0)
            return err;
        size_t total = c + n, bad, tail;
        uint64_t lfs = 0;
        utf8_check(dst, total, &bad, &tail, &lfs);
        if (n == 0 && total > 0 && bad == total)
            bad = total - tail; /* the file ends inside a sequence */
        if (bad < total) {
            uint64_t line = in->lines + lfs + 1;
            if (in->enc != CLI_ENC_AUTO) {
                snprintf(why, wcap,
                         "%s line %llu: invalid UTF-8 at byte %llu of its text (choose "
                         "--encoding latin-1 or cp1252 if it is one of those)",
                         cli_src_name(in->src[in->cur]), (unsigned long long)line,
                         (unsigned long long)(in->ftext + bad));
                return AQ_EPARSE;
            }
            /* Kept byte for byte: no guess can say what they were, and export gives them back. */
            mark_not_utf8(in, line);
            in->ftext += total;
            *got = total;
            return 0;
        }
        in->lines += lfs;
        if (n == 0 && total == 0)
            return 0;
        memcpy(in->carry, dst + total - tail, tail);
        in->ncarry = tail;
        if (total - tail == 0)
            continue;
        in->ftext += total - tail;
        *got = total - tail;
        return 0;
    }
}

int cli_input_peek(cli_input *in, size_t want, const char **p, size_t *len, char *why, size_t cap) {
    if (!in->pk) {
        if (!(in->pk = malloc(want + 1))) {
            snprintf(why, cap, "out of memory");
            return AQ_ENOMEM;
        }
        while (in->pk_len + 4 <= want && !in->pk_eof) {
            size_t got;
            int err =
                text_read(in, (uint8_t *)in->pk + in->pk_len, want - in->pk_len, &got, why, cap);
            if (err)
                return err;
            in->pk_len += got;
            in->pk_eof = got == 0;
        }
        if (in->pk_len == 0) {
            snprintf(why, cap, "%s is empty%s", cli_src_name(in->src[0]),
                     cli_src_format(in->src[0]) != CLI_FMT_PLAIN ? " once decompressed" : "");
            return AQ_EINVAL;
        }
        in->pk_ready = true;
    }
    *p = in->pk;
    *len = in->pk_len;
    return 0;
}

int cli_input_sample_text(const cli_input *in, const char *p, size_t len, char **out,
                          size_t *olen) {
    bool cp = in->enc == CLI_ENC_LATIN1 || in->enc == CLI_ENC_CP1252;
    char *o = malloc(cp ? 3 * len + 1 : len + 1);
    if (!o)
        return AQ_ENOMEM;
    if (cp) {
        size_t used;
        uint64_t lfs = 0;
        *olen = transcode((const uint8_t *)p, len, in->enc != CLI_ENC_LATIN1, (uint8_t *)o, 3 * len,
                          &used, &lfs);
    } else {
        memcpy(o, p, len);
        *olen = len;
    }
    *out = o;
    return 0;
}

static int ob_put(cli_input *in, const void *p, size_t n) {
    if (in->ob_pos == in->ob_len)
        in->ob_pos = in->ob_len = 0;
    if (in->ob_len + n > in->ob_cap) {
        size_t c = in->ob_cap ? in->ob_cap : 4096;
        while (c < in->ob_len + n)
            c *= 2;
        char *nb = realloc(in->ob, c);
        if (!nb)
            return AQ_ENOMEM;
        in->ob = nb;
        in->ob_cap = c;
    }
    memcpy(in->ob + in->ob_len, p, n);
    in->ob_len += n;
    return 0;
}

/* The first row of text[0..len) (the start of a file) into h; AQ_EPARSE naming the file when
 * there is none. */
static int first_row(const cli_input *in, const char *name, const char *text, size_t len, fields *h,
                     char *why, size_t wcap) {
    aq_csv_tok t;
    aq_csv_tok_init(&t, text, len, &in->d, 1, true);
    aq_csv_err e = {0, ""};
    int r = aq_csv_tok_next(&t, &e), err = 0;
    if (r < 0) {
        snprintf(why, wcap, "%s: %s", name, e.msg[0] ? e.msg : aq_strerror(r));
        err = r;
    } else if (r == 0) {
        snprintf(why, wcap, "%s holds no row where its header should be", name);
        err = AQ_EPARSE;
    }
    for (size_t i = 0; !err && i < t.nfields; i++)
        if ((err = fields_add(h, t.fields[i].p, t.fields[i].len)) != 0)
            snprintf(why, wcap, "out of memory");
    aq_csv_tok_free(&t);
    return err;
}

/* File k's header, read ahead through a second reader of its own (the first file's from the text
 * read ahead when there is some). */
static int pre_header(cli_input *in, size_t k, fields *h, char *why, size_t wcap) {
    if (k == 0 && in->pk)
        return first_row(in, cli_src_name(in->src[0]), in->pk, in->pk_len, h, why, wcap);
    const cli_src *orig = in->src[k];
    if (cli_src_is_stdin(orig)) {
        snprintf(why, wcap,
                 "--fill reads every file's header first: stdin (-) can only be the "
                 "first file");
        return AQ_EINVAL;
    }
    cli_src *s;
    int err = cli_src_open(&s, cli_src_name(orig), why, wcap);
    if (err)
        return err;
    size_t cap = 1u << 16, len = 0;
    char *b = malloc(cap);
    aq_csv_cutter cut;
    aq_csv_cut_init(&cut, &in->d);
    while (b && !err) {
        if (len == cap) {
            char *nb = cap >= HEAD_LIMIT ? NULL : realloc(b, cap * 2);
            if (!nb) {
                snprintf(why, wcap, "%s: its first row does not end within %u MiB",
                         cli_src_name(orig), HEAD_LIMIT >> 20);
                err = AQ_ETOOBIG;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got;
        if ((err = cli_src_read(s, (uint8_t *)b + len, cap - len, &got, why, wcap)) != 0)
            break;
        aq_csv_cut_feed(&cut, b + len, got);
        len += got;
        if (got == 0 || cut.row_end > 0)
            break;
    }
    cli_src_close(s);
    if (!b && !err) {
        snprintf(why, wcap, "out of memory");
        err = AQ_ENOMEM;
    }
    if (!err && in->cp1252) {
        size_t used, tl;
        uint64_t lfs = 0;
        char *t = malloc(3 * len + 1);
        if (!t) {
            snprintf(why, wcap, "out of memory");
            err = AQ_ENOMEM;
        } else {
            tl =
                transcode((const uint8_t *)b, len, !in->latin1, (uint8_t *)t, 3 * len, &used, &lfs);
            free(b);
            b = t;
            len = tl;
        }
    }
    if (!err)
        err = first_row(in, cli_src_name(orig), b, len, h, why, wcap);
    free(b);
    return err;
}

/* One field of a rewritten row, quoted when it was or when it must be. */
static int put_field(cli_input *in, const char *p, size_t n, bool quoted) {
    char q = in->d.quote;
    bool need = q && (quoted || memchr(p, in->d.sep, n) || memchr(p, q, n) || memchr(p, '\n', n) ||
                      memchr(p, '\r', n));
    if (!need)
        return ob_put(in, p, n);
    int err = ob_put(in, &q, 1);
    for (size_t i = 0; !err && i < n; i++)
        err = p[i] == q ? ob_put(in, &q, 1) || ob_put(in, &q, 1) : ob_put(in, p + i, 1);
    return err ? err : ob_put(in, &q, 1);
}

/* --fill over files whose headers differ: the union of their columns in order of first
 * appearance (the j-th column of a name matches the j-th of that name elsewhere). */
static int unite_headers(cli_input *in, char *why, size_t wcap) {
    fields *hs = calloc(in->n, sizeof *hs);
    int err = hs ? 0 : AQ_ENOMEM;
    for (size_t k = 0; !err && k < in->n; k++)
        err = pre_header(in, k, &hs[k], why, wcap);
    for (size_t k = 0; !err && k < in->n; k++)
        for (size_t j = 0; !err && j < hs[k].n; j++) {
            size_t occ = 0;
            for (size_t i = 0; i < j; i++)
                occ += hs[k].l[i] == hs[k].l[j] && memcmp(hs[k].f[i], hs[k].f[j], hs[k].l[j]) == 0;
            if (fields_find(&in->uni, hs[k].f[j], hs[k].l[j], occ) == SIZE_MAX)
                err = fields_add(&in->uni, hs[k].f[j], hs[k].l[j]);
        }
    size_t nu = in->uni.n;
    if (!err && (!(in->map = malloc(in->n * (nu ? nu : 1) * sizeof *in->map)) ||
                 !(in->ident = calloc(in->n, sizeof *in->ident))))
        err = AQ_ENOMEM;
    for (size_t k = 0; !err && k < in->n; k++) {
        bool id = hs[k].n == nu;
        for (size_t u = 0; u < nu; u++) {
            size_t occ = 0;
            for (size_t i = 0; i < u; i++)
                occ += in->uni.l[i] == in->uni.l[u] &&
                       memcmp(in->uni.f[i], in->uni.f[u], in->uni.l[u]) == 0;
            size_t j = fields_find(&hs[k], in->uni.f[u], in->uni.l[u], occ);
            in->map[k * nu + u] = j;
            id = id && j == u;
        }
        in->ident[k] = id;
        in->unite = in->unite || !id;
    }
    if (!err && in->unite) {
        /* the union's header line, built in ob and taken from there */
        for (size_t u = 0; !err && u < nu; u++)
            err = (u ? ob_put(in, &in->d.sep, 1) : 0) ||
                          put_field(in, in->uni.f[u], in->uni.l[u], false)
                      ? AQ_ENOMEM
                      : 0;
        if (!err && !(err = ob_put(in, "\n", 1) ? AQ_ENOMEM : 0)) {
            in->uline = in->ob;
            in->uline_len = in->ob_len;
            in->ob = NULL;
            in->ob_len = in->ob_pos = in->ob_cap = 0;
        }
    }
    if (err == AQ_ENOMEM)
        snprintf(why, wcap, "out of memory");
    for (size_t k = 0; hs && k < in->n; k++)
        fields_free(&hs[k]);
    free(hs);
    return err;
}

int cli_input_set_dialect(cli_input *in, const aq_csv_dialect *d, bool header, bool fill, char *why,
                          size_t cap) {
    in->d = *d;
    in->header = header;
    in->have_dialect = true;
    if (fill && header && in->n > 1)
        return unite_headers(in, why, cap);
    return 0;
}

void cli_input_set_table(cli_input *in, uint64_t skip, uint32_t ncols) {
    in->skip = skip;
    in->ncols = ncols;
}

const char *cli_input_union_header(const cli_input *in, size_t *len) {
    *len = in->uline_len;
    return in->uline;
}

/* A field for a message: at most 60 bytes, control bytes as '?'. */
static void show_field(char *o, size_t cap, const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && i < 60; i++)
        o[k++] = (unsigned char)p[i] < 0x20 ? '?' : p[i];
    if (n > 60 && k + 4 < cap) {
        memcpy(o + k, "...", 3);
        k += 3;
    }
    o[k] = 0;
}

/* Appends text to the rewrite buffer and feeds it to its cutter. */
static int mb_append(cli_input *in, const char *p, size_t n) {
    if (in->mb_len + n > in->mb_cap) {
        size_t c = in->mb_cap ? in->mb_cap : RAW_BLOCK;
        while (c < in->mb_len + n)
            c *= 2;
        char *nb = realloc(in->mb, c);
        if (!nb)
            return AQ_ENOMEM;
        in->mb = nb;
        in->mb_cap = c;
    }
    memcpy(in->mb + in->mb_len, p, n);
    in->mb_len += n;
    aq_csv_cut_feed(&in->mcut, p, n);
    return 0;
}

/* Rewrites the whole rows of mb[0..len) into the union's columns (into ob): a column the file
 * lacks is empty (NA); fields past the file's header stay at the end of the row. */
static int remap_rows(cli_input *in, size_t len, char *why, size_t wcap) {
    size_t nu = in->uni.n;
    const size_t *map = in->map + in->cur * nu;
    aq_csv_tok t;
    aq_csv_tok_init(&t, in->mb, len, &in->d, 1, false);
    aq_csv_err e = {0, ""};
    int r, err = 0;
    while (!err && (r = aq_csv_tok_next(&t, &e)) == 1) {
        size_t mapped = 0;
        for (size_t u = 0; !err && u < nu; u++) {
            if (u)
                err = ob_put(in, &in->d.sep, 1);
            size_t j = map[u];
            if (!err && j != SIZE_MAX && j < t.nfields) {
                err = put_field(in, t.fields[j].p, t.fields[j].len, t.fields[j].quoted);
                mapped++;
            }
        }
        /* fields beyond the file's own header: kept, after the union's columns */
        size_t own = 0;
        for (size_t u = 0; u < nu; u++)
            own += map[u] != SIZE_MAX;
        for (size_t j = own; !err && j < t.nfields; j++)
            err = ob_put(in, &in->d.sep, 1) ||
                  put_field(in, t.fields[j].p, t.fields[j].len, t.fields[j].quoted);
        if (!err)
            err = ob_put(in, "\n", 1);
        (void)mapped;
    }
    if (err) {
        snprintf(why, wcap, "out of memory");
    } else if (r < 0) {
        snprintf(why, wcap, "%s: %s", cli_src_name(in->src[in->cur]),
                 e.msg[0] ? e.msg : aq_strerror(r));
        err = r;
    }
    aq_csv_tok_free(&t);
    return err;
}

/* The next text of a file being rewritten: its whole rows go to ob; *end at its end. */
static int remap_step(cli_input *in, bool *end, char *why, size_t wcap) {
    *end = false;
    if (in->mb_cap - in->mb_len < RAW_BLOCK) {
        size_t c = in->mb_cap ? in->mb_cap : RAW_BLOCK;
        while (c - in->mb_len < RAW_BLOCK)
            c *= 2;
        char *nb = realloc(in->mb, c);
        if (!nb) {
            snprintf(why, wcap, "out of memory");
            return AQ_ENOMEM;
        }
        in->mb = nb;
        in->mb_cap = c;
    }
    size_t got;
    int err = text_read(in, (uint8_t *)in->mb + in->mb_len, RAW_BLOCK, &got, why, wcap);
    if (err)
        return err;
    if (got == 0) {
        *end = true;
        err = in->mb_len ? remap_rows(in, in->mb_len, why, wcap) : 0;
        in->mb_len = 0;
        return err;
    }
    aq_csv_cut_feed(&in->mcut, in->mb + in->mb_len, got);
    in->mb_len += got;
    size_t whole = (size_t)(in->mcut.row_end - in->mb_base);
    if (in->mcut.row_end <= in->mb_base)
        return 0;
    if ((err = remap_rows(in, whole, why, wcap)) != 0)
        return err;
    memmove(in->mb, in->mb + whole, in->mb_len - whole);
    in->mb_len -= whole;
    in->mb_base += whole;
    return 0;
}

/* Where a file's table starts in hb[0..len) (whole rows; eof: the file's end is in it). The first
 * file's header is its first row after the preamble (in->skip lines); a later file's is the first
 * of its first rows equal to the first file's header (a preamble of its own before it is
 * dropped), else the row where the first file's was, for the message. Without a header, after a
 * first file with a preamble, a later file's table starts at its first row of the table's field
 * count. With --fill over differing headers every file's header is its first row. *ts, *te: the
 * bytes of the row found (*te: where the text after it starts); *row: its fields in t. 1: found,
 * 0: not yet (more text may hold it), 2: decided without it (*ts = *te = 0). */
static int find_head(cli_input *in, aq_csv_tok *t, const char *hb, size_t len, bool eof, size_t *ts,
                     size_t *te) {
    aq_csv_tok_init(t, hb, len, &in->d, 1, true);
    t->lenient = true;
    size_t rows = 0, pos_s = 0, pos_e = 0;
    bool pos = false;
    while (rows < HEAD_ROWS && aq_csv_tok_next(t, NULL) == 1) {
        rows++;
        size_t s = (size_t)(t->row_start - hb), e = (size_t)(t->p - hb);
        if (in->unite || (in->header && in->cur == 0 && t->row_line > in->skip)) {
            *ts = s;
            *te = e;
            return 1;
        }
        if (in->header) {
            bool same = t->nfields == in->nhdr;
            for (size_t k = 0; same && k < t->nfields; k++)
                same = t->fields[k].len == in->hlen[k] &&
                       memcmp(t->fields[k].p, in->hdr[k], in->hlen[k]) == 0;
            if (same) {
                *ts = s;
                *te = e;
                return 1;
            }
            if (!pos && t->row_line > in->skip) {
                pos = true;
                pos_s = s;
                pos_e = e;
            }
        } else if (t->nfields == in->ncols) {
            *ts = *te = s; /* the table starts here: nothing of it is dropped */
            return 1;
        }
    }
    if (!eof && rows < HEAD_ROWS)
        return 0;
    if (in->header && pos) {
        /* no row is the header: the one where it stood in the first file, to name the change */
        aq_csv_tok_free(t);
        aq_csv_tok_init(t, hb + pos_s, pos_e - pos_s, &in->d, 1, false);
        t->lenient = true;
        if (aq_csv_tok_next(t, NULL) == 1) {
            *ts = pos_s;
            *te = pos_e;
            return 1;
        }
    }
    *ts = *te = 0;
    return 2;
}

/* The start of a file: its rows read up to its table's first row (find_head); the first file's
 * header kept, a later file's checked and dropped with anything before it (and its BOM). What
 * remains is queued in ob. */
static int head_stage(cli_input *in, char *why, size_t wcap) {
    const char *name = cli_src_name(in->src[in->cur]);
    size_t cap = 1u << 20, len = 0;
    char *hb = malloc(cap);
    if (!hb) {
        snprintf(why, wcap, "out of memory");
        return AQ_ENOMEM;
    }
    aq_csv_cutter cut;
    aq_csv_cut_init(&cut, &in->d);
    aq_csv_tok t;
    bool have_tok = false, eof = false;
    /* without a header, only a later file after a first with a preamble looks for its table */
    bool look = in->header || in->unite || (in->cur > 0 && in->skip > 0 && in->ncols > 0);
    int found = 0, err = 0;
    size_t ts = 0, te = 0;
    while (!found && !err) {
        if (len + RAW_BLOCK / 4 > cap) {
            char *nb = cap >= HEAD_LIMIT ? NULL : realloc(hb, cap * 2);
            if (!nb) {
                if (cap >= HEAD_LIMIT && in->header)
                    snprintf(why, wcap, "%s: its header does not end within %u MiB", name,
                             HEAD_LIMIT >> 20);
                else if (cap >= HEAD_LIMIT)
                    snprintf(why, wcap, "%s: its first row does not end within %u MiB", name,
                             HEAD_LIMIT >> 20);
                else
                    snprintf(why, wcap, "out of memory");
                err = cap >= HEAD_LIMIT ? AQ_ETOOBIG : AQ_ENOMEM;
                break;
            }
            hb = nb;
            cap *= 2;
        }
        size_t got;
        if ((err = text_read(in, (uint8_t *)hb + len, cap - len, &got, why, wcap)) != 0)
            break;
        eof = got == 0;
        aq_csv_cut_feed(&cut, hb + len, got);
        len += got;
        if (!look) {
            found = len >= 3 || eof;
            continue;
        }
        if (cut.row_end == 0 && !eof)
            continue;
        if (have_tok)
            aq_csv_tok_free(&t);
        found = find_head(in, &t, hb, eof ? len : (size_t)cut.row_end, eof, &ts, &te);
        have_tok = true;
    }
    size_t drop = 0;
    if (!err && in->unite) {
        /* every header goes; the union's is put in front of the first file's rows */
        drop = found == 1 ? te : 0;
        if (in->cur == 0 && ob_put(in, in->uline, in->uline_len) != 0)
            err = AQ_ENOMEM;
        in->headers_dropped += in->cur > 0;
        in->remap = !in->ident[in->cur];
        if (in->remap) {
            aq_csv_cut_init(&in->mcut, &in->d);
            in->mb_len = 0;
            in->mb_base = 0;
            if (mb_append(in, hb + drop, len - drop) != 0)
                err = AQ_ENOMEM;
            drop = len; /* nothing goes to ob as it is */
        }
        if (err)
            snprintf(why, wcap, "out of memory");
    } else if (!err && !in->header) {
        if (found == 1 && ts > 0) {
            drop = ts; /* a later file's preamble */
        } else {
            drop = in->cur > 0 && len >= 3 && memcmp(hb, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
        }
    } else if (!err && in->cur == 0) {
        size_t nf = found == 1 ? t.nfields : 0;
        in->nhdr = nf;
        if (!(in->hdr = calloc(nf + 1, sizeof *in->hdr)) ||
            !(in->hlen = calloc(nf + 1, sizeof *in->hlen)))
            err = AQ_ENOMEM;
        for (size_t i = 0; !err && i < nf; i++) {
            if (!(in->hdr[i] = malloc(t.fields[i].len + 1))) {
                err = AQ_ENOMEM;
                break;
            }
            memcpy(in->hdr[i], t.fields[i].p, t.fields[i].len);
            in->hlen[i] = t.fields[i].len;
        }
        if (err)
            snprintf(why, wcap, "out of memory");
    } else if (!err) {
        drop = te;
        size_t nf = found == 1 ? t.nfields : 0;
        const char *first = cli_src_name(in->src[0]);
        size_t k = 0;
        while (k < nf && k < in->nhdr && t.fields[k].len == in->hlen[k] &&
               memcmp(t.fields[k].p, in->hdr[k], in->hlen[k]) == 0)
            k++;
        char a[80], b[80];
        if (nf == 0) {
            snprintf(why, wcap, "%s holds no row where its header should be", name);
            err = AQ_EPARSE;
        } else if (k < nf && k < in->nhdr) {
            show_field(a, sizeof a, t.fields[k].p, t.fields[k].len);
            show_field(b, sizeof b, in->hdr[k], in->hlen[k]);
            snprintf(why, wcap,
                     "%s: its header differs from %s's at column %zu: '%s' where %s has '%s'", name,
                     first, k + 1, a, first, b);
            err = AQ_EPARSE;
        } else if (k < nf) {
            show_field(a, sizeof a, t.fields[k].p, t.fields[k].len);
            snprintf(why, wcap,
                     "%s: its header has %zu columns, %s's %zu: column %zu '%s' is not in %s", name,
                     nf, first, in->nhdr, k + 1, a, first);
            err = AQ_EPARSE;
        } else if (k < in->nhdr) {
            show_field(b, sizeof b, in->hdr[k], in->hlen[k]);
            snprintf(why, wcap,
                     "%s: its header has %zu columns, %s's %zu: column %zu '%s' is missing", name,
                     nf, first, in->nhdr, k + 1, b);
            err = AQ_EPARSE;
        } else {
            in->headers_dropped++;
        }
    }
    if (have_tok)
        aq_csv_tok_free(&t);
    for (size_t i = 0; in->skipped && i < drop; i++)
        in->skipped[in->cur] += hb[i] == '\n';
    if (!err && len > drop && ob_put(in, hb + drop, len - drop) != 0) {
        snprintf(why, wcap, "out of memory");
        err = AQ_ENOMEM;
    }
    free(hb);
    return err;
}

static void next_file(cli_input *in) {
    in->cur++;
    in->remap = false;
    in->mb_len = 0;
    in->stage = ST_START;
    in->raw_eof = false;
    in->cp1252 = in->enc == CLI_ENC_LATIN1 || in->enc == CLI_ENC_CP1252;
    in->latin1 = in->enc == CLI_ENC_LATIN1;
    in->raw_pass = false;
    in->lines = in->ftext = 0;
    in->ncarry = 0;
    in->rpos = in->rlen = 0;
}

static size_t ob_take(cli_input *in, char *dst, size_t cap) {
    size_t n = in->ob_len - in->ob_pos < cap ? in->ob_len - in->ob_pos : cap;
    memcpy(dst, in->ob + in->ob_pos, n);
    in->ob_pos += n;
    return n;
}

int cli_input_read(cli_input *in, char *dst, size_t cap, size_t *got, char *why, size_t wcap) {
    *got = 0;
    for (;;) {
        int err;
        size_t n = 0;
        if (in->ob_pos < in->ob_len) {
            n = ob_take(in, dst, cap);
        } else if (in->cur >= in->n) {
            return 0;
        } else if (in->stage == ST_START) {
            in->stage = ST_BODY;
            bool join = in->cur > 0 && in->text_out && in->last_out != '\n';
            if (join && ob_put(in, "\n", 1) != 0) {
                snprintf(why, wcap, "out of memory");
                return AQ_ENOMEM;
            }
            if (in->gstart)
                in->gstart[in->cur] = 1 + in->lf_out + join;
            if ((in->cur > 0 || (in->n > 1 && in->header)) &&
                (err = head_stage(in, why, wcap)) != 0)
                return err;
            continue;
        } else if (in->remap) {
            bool end;
            if ((err = remap_step(in, &end, why, wcap)) != 0)
                return err;
            if (end)
                next_file(in);
            continue;
        } else {
            uint8_t small[SMALL_CAP];
            bool side = cap < SMALL_CAP;
            if ((err = text_read(in, side ? small : (uint8_t *)dst, side ? sizeof small : cap, &n,
                                 why, wcap)) != 0)
                return err;
            if (n == 0) {
                if (in->ftext == 0) {
                    snprintf(why, wcap, "%s is empty%s", cli_src_name(in->src[in->cur]),
                             cli_src_format(in->src[in->cur]) != CLI_FMT_PLAIN
                                 ? " once decompressed"
                                 : "");
                    return AQ_EINVAL;
                }
                next_file(in);
                continue;
            }
            if (side) {
                if (ob_put(in, small, n) != 0) {
                    snprintf(why, wcap, "out of memory");
                    return AQ_ENOMEM;
                }
                continue;
            }
        }
        in->last_out = dst[n - 1];
        in->text_out += n;
        if (in->gstart)
            for (const char *q = dst, *e = dst + n; (q = memchr(q, '\n', (size_t)(e - q))) != NULL;
                 q++)
                in->lf_out++;
        *got = n;
        return 0;
    }
}

void cli_input_get_stats(const cli_input *in, cli_input_stats *st) {
    memset(st, 0, sizeof *st);
    st->files = (uint32_t)in->n;
    bool known = true;
    for (size_t i = 0; i < in->n; i++) {
        const cli_src *s = in->src[i];
        st->formats |= 1u << cli_src_format(s);
        known = known && cli_src_regular(s);
        st->total_in += cli_src_size(s);
        if (cli_src_format(s) != CLI_FMT_PLAIN) {
            st->compressed++;
            st->inflated_bytes += cli_src_out_bytes(s);
            st->decode_seconds += (double)cli_src_decode_ns(s) / 1e9;
        }
    }
    if (!known)
        st->total_in = 0;
    st->in_bytes = atomic_load(&((cli_input *)in)->in_done);
    st->text_bytes = in->text_out;
    st->headers_dropped = in->headers_dropped;
    st->not_utf8 = in->not_utf8;
}

const char *cli_input_locate(const cli_input *in, uint64_t line, uint64_t *fline) {
    size_t k = 0;
    while (in->gstart && k + 1 < in->n && in->gstart[k + 1] && in->gstart[k + 1] <= line)
        k++;
    *fline = in->gstart ? line - (in->gstart[k] ? in->gstart[k] : 1) + 1 + in->skipped[k] : line;
    return cli_src_name(in->src[k]);
}

const char *cli_input_note(const cli_input *in, uint64_t *line) {
    *line = in->note_line;
    return in->note_file;
}

void cli_input_close(cli_input *in) {
    if (!in)
        return;
    if (in->mu_init) {
        pthread_mutex_lock(&in->mu);
        in->stop = true;
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
    }
    for (size_t d = 0; d < DECODERS; d++) {
        if (in->dec[d].on)
            pthread_join(in->dec[d].th, NULL);
        for (size_t i = 0; i < Q_DEPTH; i++)
            free(in->dec[d].q[i].p);
    }
    if (in->mu_init) {
        pthread_mutex_destroy(&in->mu);
        pthread_cond_destroy(&in->cv);
    }
    for (size_t i = 0; i < in->n; i++)
        cli_src_close(in->src[i]);
    free(in->src);
    free(in->rbuf);
    free(in->pk);
    free(in->ob);
    for (size_t i = 0; i < in->nhdr; i++)
        free(in->hdr[i]);
    free(in->hdr);
    free(in->hlen);
    free(in->note_file);
    fields_free(&in->uni);
    free(in->map);
    free(in->ident);
    free(in->uline);
    free(in->mb);
    free(in->gstart);
    free(in->skipped);
    free(in);
}
