/* One file per chunk in data_dir: durable writes, verified loading, quarantine, the LOCK.
 *
 * File layout (integers little-endian):
 *   0  magic "AQCHUNK\0"     8 bytes
 *   8  format version        u32 (1)
 *  12  kind                  u8
 *  13  key length            u8 (1..255)
 *  14  zero                  u16
 *  16  value length          u64 (0..4 MiB)
 *  24  digest hi, lo         u64, u64 (XXH3_128bits of the value)
 *  40  version               u64 (format 2 only: the writer's version, see aq_chunk_put_versioned)
 *  48  key                   key length bytes (at 40 in format 1, which has no version: read as 0)
 *   .  header checksum       u64: XXH3_64bits of everything above
 *   .  value                 value length bytes, then end of file
 * The name is the hex of XXH3_128bits(key) plus ".chunk", so a key never becomes a path.
 */
#include "aq_io.h"
#include "aq_chunk_int.h"
#include "aq_bytes.h"
#include "aq_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "aq_xxh.h"

#define MAGIC          "AQCHUNK"
#define MAGIC_LEN      8
#define FORMAT_VERSION 2
#define FIXED_LEN_V1   40
#define FIXED_LEN      48
#define HEADER_MAX     (FIXED_LEN + AQ_CHUNK_KEY_MAX + 8)
#define SUFFIX         ".chunk"
#define TMP_SUFFIX     ".chunk.tmp"
#define QUARANTINE     "quarantine"
#define NAME_MAX_LEN   (AQ_CHUNK_DIGEST_HEX_LEN + sizeof TMP_SUFFIX)

void aq_chunk_reportf(const aq_chunk_store *s, const char *file, const char *fmt, ...) {
    if (!s->report)
        return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    s->report(s->report_ud, file, reason);
}

static void file_name(const void *key, size_t klen, char out[NAME_MAX_LEN], bool tmp) {
    char hex[AQ_CHUNK_DIGEST_HEX_LEN + 1];
    aq_chunk_digest_hex(aq_chunk_digest_of(key, klen), hex);
    snprintf(out, NAME_MAX_LEN, "%s%s", hex, tmp ? TMP_SUFFIX : SUFFIX);
}

static void put_le(uint8_t *p, uint64_t v, size_t width) {
    for (size_t i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static size_t encode_header(const aq_chunk_ref *r, uint8_t out[HEADER_MAX]) {
    memset(out, 0, FIXED_LEN);
    memcpy(out, MAGIC, MAGIC_LEN);
    put_le(out + 8, FORMAT_VERSION, 4);
    out[12] = r->kind;
    out[13] = r->klen;
    put_le(out + 16, r->len, 8);
    put_le(out + 24, r->digest.hi, 8);
    put_le(out + 32, r->digest.lo, 8);
    put_le(out + 40, r->version, 8);
    memcpy(out + FIXED_LEN, r->key, r->klen);
    size_t n = FIXED_LEN + r->klen;
    put_le(out + n, XXH3_64bits(out, n), 8);
    return n + 8;
}

static int fsync_path(int at, const char *path) {
    int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return err;
}

static int fsync_parent(const char *path) {
    char *copy = strdup(path);
    if (!copy)
        return AQ_ENOMEM;
    int err = fsync_path(AT_FDCWD, dirname(copy));
    free(copy);
    return err;
}

int aq_chunk_persist_open(aq_chunk_store *s, const char *data_dir) {
    s->data_dir = strdup(data_dir);
    if (!s->data_dir)
        return AQ_ENOMEM;
    if (mkdir(data_dir, 0755) == 0) {
        /* The new directory's entry must be durable before any chunk in it can be. */
        int err = fsync_parent(data_dir);
        if (err) {
            aq_chunk_reportf(s, data_dir, "cannot fsync the parent of the new data_dir: %s",
                             strerror(-err));
            return err;
        }
    } else if (errno != EEXIST) {
        int err = -errno;
        aq_chunk_reportf(s, data_dir, "cannot create the data_dir: %s", strerror(-err));
        return err;
    }
    s->dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        int err = -errno;
        aq_chunk_reportf(s, data_dir, "cannot open the data_dir: %s", strerror(-err));
        return err;
    }
    s->lockfd = openat(s->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lockfd < 0) {
        int err = -errno;
        aq_chunk_reportf(s, "LOCK", "cannot open the lock file: %s", strerror(-err));
        return err;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            aq_chunk_reportf(s, "LOCK",
                             "the data_dir %s is in use by another chunk store (its LOCK is held)",
                             data_dir);
            return AQ_ELOCKED;
        }
        int err = -errno;
        aq_chunk_reportf(s, "LOCK", "cannot lock the data_dir: %s", strerror(-err));
        return err;
    }
    return 0;
}

void aq_chunk_persist_close(aq_chunk_store *s) {
    if (s->lockfd >= 0)
        close(s->lockfd); /* releases the flock */
    if (s->dirfd >= 0)
        close(s->dirfd);
    s->lockfd = s->dirfd = -1;
    free(s->data_dir);
    s->data_dir = NULL;
}

int aq_chunk_persist_write(aq_chunk_store *s, const aq_chunk_ref *r) {
    char name[NAME_MAX_LEN], tmp[NAME_MAX_LEN];
    file_name(r->key, r->klen, name, false);
    file_name(r->key, r->klen, tmp, true);
    uint8_t hdr[HEADER_MAX];
    size_t hlen = encode_header(r, hdr);
    const char *step = "create";
    int err = 0;
    int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = -errno;
        goto fail;
    }
    step = "write";
    err = aq_io_write_all(fd, hdr, hlen);
    if (!err)
        err = aq_io_write_all(fd, r->data, r->len);
    if (!err && fsync(fd) != 0) {
        step = "fsync";
        err = -errno;
    }
    if (close(fd) != 0 && !err) {
        step = "close";
        err = -errno;
    }
    if (err)
        goto fail;
    step = "rename";
    if (renameat(s->dirfd, tmp, s->dirfd, name) != 0) {
        err = -errno;
        goto fail;
    }
    if (fsync(s->dirfd) != 0) {
        /* The file is in place but not surely durable: report the put as failed. */
        err = -errno;
        aq_chunk_reportf(s, name, "fsync of the data_dir failed: %s", strerror(-err));
        return err;
    }
    return 0;
fail:
    aq_chunk_reportf(s, tmp, "%s failed: %s", step, strerror(-err));
    unlinkat(s->dirfd, tmp, 0);
    return err;
}

int aq_chunk_persist_remove(aq_chunk_store *s, const void *key, size_t klen) {
    char name[NAME_MAX_LEN];
    file_name(key, klen, name, false);
    if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT) {
        int err = -errno;
        aq_chunk_reportf(s, name, "unlink failed: %s", strerror(-err));
        return err;
    }
    if (fsync(s->dirfd) != 0) {
        int err = -errno;
        aq_chunk_reportf(s, name, "fsync of the data_dir after unlink failed: %s", strerror(-err));
        return err;
    }
    return 0;
}

/* ---- loading ---- */

static bool is_hex32(const char *p) {
    for (size_t i = 0; i < AQ_CHUNK_DIGEST_HEX_LEN; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

static bool has_form(const char *name, const char *suffix) {
    size_t n = strlen(name), sl = strlen(suffix);
    return n == AQ_CHUNK_DIGEST_HEX_LEN + sl && is_hex32(name) &&
           strcmp(name + AQ_CHUNK_DIGEST_HEX_LEN, suffix) == 0;
}

static void quarantine(aq_chunk_store *s, const char *name, const char *reason) {
    s->quarantined++;
    if (mkdirat(s->dirfd, QUARANTINE, 0755) != 0 && errno != EEXIST) {
        aq_chunk_reportf(s, name,
                         "%s; it is not served, but moving it to " QUARANTINE "/ failed: %s",
                         reason, strerror(errno));
        return;
    }
    char dst[sizeof QUARANTINE + NAME_MAX_LEN + 16];
    for (unsigned i = 0; i < 1000; i++) {
        if (i == 0)
            snprintf(dst, sizeof dst, QUARANTINE "/%s", name);
        else
            snprintf(dst, sizeof dst, QUARANTINE "/%s.%u", name, i);
        if (renameat2(s->dirfd, name, s->dirfd, dst, RENAME_NOREPLACE) == 0) {
            aq_chunk_reportf(s, name, "%s; moved to %s", reason, dst);
            return;
        }
        if (errno != EEXIST)
            break;
    }
    aq_chunk_reportf(s, name, "%s; it is not served, but moving it to " QUARANTINE "/ failed: %s",
                     reason, strerror(errno));
}

/* Loads one chunk file. Returns 0 when loaded, 1 when the file is bad (*why says how), or a
 * negative error that should abort the open (out of memory). */
static int load_one(aq_chunk_store *s, const char *name, char *why, size_t whylen) {
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, whylen, "cannot be opened (%s)", strerror(errno));
        return 1;
    }
    int rc = 1;
    aq_chunk_ref *r = NULL;
    struct stat st;
    uint8_t hdr[HEADER_MAX];
    size_t got = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "is not a regular file");
        goto out;
    }
    if (aq_io_read_full(fd, hdr, FIXED_LEN_V1, &got) != 0 || got < MAGIC_LEN) {
        snprintf(why, whylen, "is truncated before the end of its magic number");
        goto out;
    }
    if (memcmp(hdr, MAGIC, MAGIC_LEN) != 0) {
        snprintf(why, whylen, "is foreign: it does not start with the chunk magic number");
        goto out;
    }
    if (got < FIXED_LEN_V1) {
        snprintf(why, whylen, "is truncated inside its header");
        goto out;
    }
    aq_rd rd = aq_rd_init(hdr + MAGIC_LEN, FIXED_LEN_V1 - MAGIC_LEN);
    uint32_t version = aq_rd_u32(&rd);
    uint8_t kind = aq_rd_u8(&rd);
    uint8_t klen = aq_rd_u8(&rd);
    (void)aq_rd_u16(&rd);
    uint64_t vlen = aq_rd_u64(&rd);
    aq_chunk_digest d;
    d.hi = aq_rd_u64(&rd);
    d.lo = aq_rd_u64(&rd);
    if (version != 1 && version != FORMAT_VERSION) {
        snprintf(why, whylen, "has unknown format version %u", version);
        goto out;
    }
    /* Format 2 adds the writer's version after the digest; format 1 files read as version 0. */
    size_t fixed = version == 1 ? FIXED_LEN_V1 : FIXED_LEN;
    uint64_t wversion = 0;
    if (fixed > FIXED_LEN_V1) {
        if (aq_io_read_full(fd, hdr + FIXED_LEN_V1, fixed - FIXED_LEN_V1, &got) != 0 ||
            got < fixed - FIXED_LEN_V1) {
            snprintf(why, whylen, "is truncated inside its header");
            goto out;
        }
        aq_rd vrd = aq_rd_init(hdr + FIXED_LEN_V1, 8);
        wversion = aq_rd_u64(&vrd);
    }
    if (klen == 0) {
        snprintf(why, whylen, "has a header with an empty key");
        goto out;
    }
    if (aq_io_read_full(fd, hdr + fixed, (size_t)klen + 8, &got) != 0 || got < (size_t)klen + 8) {
        snprintf(why, whylen, "is truncated inside its header");
        goto out;
    }
    aq_rd crd = aq_rd_init(hdr + fixed + klen, 8);
    if (aq_rd_u64(&crd) != XXH3_64bits(hdr, fixed + (size_t)klen)) {
        snprintf(why, whylen, "has a header that fails its checksum");
        goto out;
    }
    const uint8_t *key = hdr + fixed;
    if (aq_chunk_key_check(key, klen) != 0) {
        snprintf(why, whylen, "holds a key that is not a valid store key");
        goto out;
    }
    char expect[NAME_MAX_LEN];
    file_name(key, klen, expect, false);
    if (strcmp(expect, name) != 0) {
        snprintf(why, whylen, "is named differently from the hash of the key it holds");
        goto out;
    }
    if (vlen > AQ_CHUNK_VALUE_MAX) {
        snprintf(why, whylen, "declares a value of %llu bytes, more than the 4 MiB limit",
                 (unsigned long long)vlen);
        goto out;
    }
    uint64_t want = fixed + (uint64_t)klen + 8 + vlen;
    if ((uint64_t)st.st_size < want) {
        snprintf(why, whylen, "is truncated: %llu of %llu bytes", (unsigned long long)st.st_size,
                 (unsigned long long)want);
        goto out;
    }
    if ((uint64_t)st.st_size > want) {
        snprintf(why, whylen, "has %llu bytes after the end of its value",
                 (unsigned long long)((uint64_t)st.st_size - want));
        goto out;
    }
    r = aq_chunk_obj_new(s->arena, key, klen, (size_t)vlen);
    if (!r) {
        rc = AQ_ENOMEM;
        goto out;
    }
    if (aq_io_read_full(fd, r->data, r->len, &got) != 0 || got != r->len) {
        snprintf(why, whylen, "could not be read in full");
        goto out;
    }
    if (!aq_chunk_digest_equal(aq_chunk_digest_of(r->data, r->len), d)) {
        snprintf(why, whylen, "holds a value that does not match its digest");
        goto out;
    }
    r->digest = d;
    r->kind = kind;
    r->version = wversion;
    r->khash = aq_chunk_key_hash(key, klen);
    aq_chunk_ref *old = aq_chunk_index_put(&s->index, r);
    s->bytes += r->len;
    if (old) {
        s->bytes -= old->len;
        aq_chunk_obj_free(old);
    }
    r = NULL;
    rc = 0;
out:
    if (r)
        aq_chunk_obj_free(r);
    close(fd);
    return rc;
}

int aq_chunk_persist_load(aq_chunk_store *s) {
    int dfd = dup(s->dirfd);
    if (dfd < 0)
        return -errno;
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        int err = -errno;
        close(dfd);
        return err;
    }
    int err = 0;
    bool changed = false;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        const char *n = e->d_name;
        /* CLOCK (and its temporary) is the node's version ceiling, kept beside the chunks. */
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "LOCK") == 0 ||
            strcmp(n, QUARANTINE) == 0 || strcmp(n, "CLOCK") == 0 || strcmp(n, "CLOCK.tmp") == 0)
            continue;
        if (has_form(n, TMP_SUFFIX)) {
            /* A put that crashed before its rename: it never returned success. */
            if (unlinkat(s->dirfd, n, 0) == 0) {
                changed = true;
                aq_chunk_reportf(s, n, "an unfinished write from an earlier run was removed");
            } else {
                aq_chunk_reportf(s, n, "an unfinished write could not be removed: %s",
                                 strerror(errno));
            }
            continue;
        }
        if (!has_form(n, SUFFIX)) {
            s->stray++;
            aq_chunk_reportf(s, n, "not a chunk file, left alone");
            continue;
        }
        char why[256];
        int rc = load_one(s, n, why, sizeof why);
        if (rc < 0) {
            err = rc;
            break;
        }
        if (rc == 1) {
            char reason[300];
            snprintf(reason, sizeof reason, "the file %s", why);
            quarantine(s, n, reason);
            changed = true;
        }
    }
    closedir(dir);
    if (!err && changed && fsync(s->dirfd) != 0)
        err = -errno;
    /* Moves into quarantine/ add entries there as well. */
    if (!err && s->quarantined && faccessat(s->dirfd, QUARANTINE, F_OK, 0) == 0)
        err = fsync_path(s->dirfd, QUARANTINE);
    return err;
}

/* Re-reads r's file and checks it against r: the header's checksum and the value's digest. A file
 * that is missing, unreadable or differs is damaged (AQ_ECORRUPT; *why says how). */
int aq_chunk_persist_check(aq_chunk_store *s, const aq_chunk_ref *r, uint64_t *bytes, char *why,
                           size_t whylen) {
    char name[NAME_MAX_LEN];
    file_name(r->key, r->klen, name, false);
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, whylen, "its file cannot be opened (%s)", strerror(errno));
        return AQ_ECORRUPT;
    }
    struct stat st;
    uint8_t *buf = NULL;
    int rc = AQ_ECORRUPT;
    size_t got = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < FIXED_LEN_V1 + r->klen + 8 + (uint64_t)r->len ||
        (uint64_t)st.st_size > HEADER_MAX + (uint64_t)r->len) {
        snprintf(why, whylen, "its file has the wrong size");
        goto out;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n);
    if (!buf) {
        rc = AQ_ENOMEM;
        goto out;
    }
    if (aq_io_read_full(fd, buf, n, &got) != 0 || got != n) {
        snprintf(why, whylen, "its file cannot be read whole");
        goto out;
    }
    *bytes += n;
    size_t hlen = n - r->len - 8;
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++)
        sum |= (uint64_t)buf[hlen + (size_t)i] << (8 * i);
    XXH128_hash_t h = XXH3_128bits(buf + hlen + 8, r->len);
    if (memcmp(buf, MAGIC, MAGIC_LEN) != 0 || XXH3_64bits(buf, hlen) != sum) {
        snprintf(why, whylen, "its file's header does not match its checksum");
    } else if (h.high64 != r->digest.hi || h.low64 != r->digest.lo) {
        snprintf(why, whylen, "its file's value does not match its digest");
    } else {
        rc = 0;
    }
out:
    free(buf);
    close(fd);
    return rc;
}

void aq_chunk_persist_quarantine(aq_chunk_store *s, const void *key, size_t klen,
                                 const char *reason) {
    char name[NAME_MAX_LEN];
    file_name(key, klen, name, false);
    quarantine(s, name, reason);
    fsync(s->dirfd);
}
