/* Persistence: durable files survive close/open; damaged, foreign and stray files are handled. */
#include "chunk_test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <xxhash.h>

#define K(s) (s), sizeof(s) - 1

static bool exists(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

/* Name of the only *.chunk file in dir (asserts there is exactly one). */
static void only_chunk_file(const char *dir, char out[300]) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 6 && strcmp(e->d_name + l - 6, ".chunk") == 0) {
            snprintf(out, 300, "%s", e->d_name);
            n++;
        }
    }
    closedir(d);
    cr_assert_eq(n, 1, "expected one chunk file, found %d", n);
}

static uint8_t *read_file(const char *dir, const char *name, size_t *len) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_file(const char *dir, const char *name, const void *b, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void flip_byte(const char *dir, const char *name, size_t off) {
    size_t n;
    uint8_t *b = read_file(dir, name, &n);
    cr_assert_lt(off, n);
    b[off] ^= 0x20;
    write_file(dir, name, b, n);
    free(b);
}

/* Stores one chunk, damages its file with damage(), reopens: the key must be gone and the file
 * in quarantine/ with a report naming it. Returns the report's reason. */
typedef void (*damage_fn)(const char *dir, const char *name);

static void expect_quarantined(damage_fn damage, const char *reason_part) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    uint8_t *v = tu_bytes(100000, 5);
    cr_assert_eq(aq_chunk_put(s, K("victim"), v, 100000, NULL), 0);
    aq_chunk_store_close(s);
    char name[300];
    only_chunk_file(dir, name);
    damage(dir, name);

    tu_reports rep = {0};
    s = tu_open(dir, 0, &rep);
    cr_expect_eq(aq_chunk_stat(s, K("victim"), NULL, NULL), AQ_ENOTFOUND, "damaged chunk served");
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.quarantined, 1u);
    cr_expect_eq(st.chunks, 0u);
    cr_expect_eq(st.bytes, 0u);
    char q[400];
    snprintf(q, sizeof q, "quarantine/%s", name);
    cr_expect(exists(dir, q), "%s not in quarantine/", name);
    cr_expect_not(exists(dir, name), "damaged file still in place");
    int i = tu_find_report(&rep, name);
    cr_assert_geq(i, 0, "no report about %s", name);
    cr_expect_not_null(strstr(rep.reason[i], reason_part), "reason: %s", rep.reason[i]);
    /* The key can be stored again and survives another restart. */
    cr_expect_eq(aq_chunk_put(s, K("victim"), v, 100000, NULL), 0);
    aq_chunk_store_close(s);
    s = tu_open(dir, 0, NULL);
    tu_expect(s, K("victim"), v, 100000);
    cr_expect_eq(tu_stats(s).quarantined, 0u);
    aq_chunk_store_close(s);
    free(v);
    tu_rmrf(dir);
}

static void flip_value_byte(const char *dir, const char *name) {
    size_t n;
    free(read_file(dir, name, &n));
    flip_byte(dir, name, n - 1000);
}
static void flip_header_length(const char *dir, const char *name) {
    flip_byte(dir, name, 17); /* inside the value length */
}
static void flip_key_byte(const char *dir, const char *name) {
    flip_byte(dir, name, 41);
}
static void truncate_half(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(truncate(p, 50000), 0);
}
static void truncate_in_header(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(truncate(p, 20), 0);
}
static void append_byte(const char *dir, const char *name) {
    size_t n;
    uint8_t *b = read_file(dir, name, &n);
    b = realloc(b, n + 1);
    b[n] = 0;
    write_file(dir, name, b, n + 1);
    free(b);
}
static void bad_magic(const char *dir, const char *name) {
    flip_byte(dir, name, 0);
}
static void empty_file(const char *dir, const char *name) {
    write_file(dir, name, "", 0);
}
/* Version 3 with a correct header checksum: only the version is wrong. */
static void future_version(const char *dir, const char *name) {
    size_t n;
    uint8_t *b = read_file(dir, name, &n);
    b[8] = 3;
    size_t hl = 48 + b[13];
    uint64_t c = XXH3_64bits(b, hl);
    for (int i = 0; i < 8; i++)
        b[hl + i] = (uint8_t)(c >> (8 * i));
    write_file(dir, name, b, n);
    free(b);
}
/* A valid chunk file under another chunk's name. */
static void misnamed(const char *dir, const char *name) {
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", dir, "0123456789abcdef0123456789abcdef.chunk");
    cr_assert_eq(rename(from, to), 0);
}

Test(persist, flipped_value_byte_is_quarantined) {
    expect_quarantined(flip_value_byte, "digest");
}
Test(persist, flipped_header_byte_is_quarantined) {
    expect_quarantined(flip_header_length, "checksum");
}
Test(persist, flipped_key_byte_is_quarantined) {
    expect_quarantined(flip_key_byte, "checksum");
}
Test(persist, truncated_value_is_quarantined) {
    expect_quarantined(truncate_half, "truncated");
}
Test(persist, truncated_header_is_quarantined) {
    expect_quarantined(truncate_in_header, "truncated");
}
Test(persist, empty_file_is_quarantined) {
    expect_quarantined(empty_file, "truncated");
}
Test(persist, trailing_bytes_are_quarantined) {
    expect_quarantined(append_byte, "after the end");
}
Test(persist, bad_magic_is_quarantined) {
    expect_quarantined(bad_magic, "magic");
}
Test(persist, unknown_version_is_quarantined) {
    expect_quarantined(future_version, "version 3");
}

Test(persist, file_under_a_wrong_name_is_quarantined) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    cr_assert_eq(aq_chunk_put(s, K("k"), "value", 5, NULL), 0);
    aq_chunk_store_close(s);
    char name[300];
    only_chunk_file(dir, name);
    misnamed(dir, name);
    const char *wrong = "0123456789abcdef0123456789abcdef.chunk";
    tu_reports rep = {0};
    s = tu_open(dir, 0, &rep);
    cr_expect_eq(aq_chunk_stat(s, K("k"), NULL, NULL), AQ_ENOTFOUND);
    cr_expect_eq(tu_stats(s).quarantined, 1u);
    cr_expect(exists(dir, "quarantine/0123456789abcdef0123456789abcdef.chunk"));
    int i = tu_find_report(&rep, wrong);
    cr_assert_geq(i, 0);
    cr_expect_not_null(strstr(rep.reason[i], "named differently"), "%s", rep.reason[i]);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}

Test(persist, second_quarantine_of_the_same_name_keeps_both) {
    char *dir = tu_mkdtemp();
    for (int round = 0; round < 2; round++) {
        aq_chunk_store *s = tu_open(dir, 0, NULL);
        cr_assert_eq(aq_chunk_put(s, K("k"), "value", 5, NULL), 0);
        aq_chunk_store_close(s);
        char name[300];
        only_chunk_file(dir, name);
        flip_byte(dir, name, 0);
        s = tu_open(dir, 0, NULL);
        cr_expect_eq(tu_stats(s).quarantined, 1u);
        aq_chunk_store_close(s);
    }
    char q1[300];
    snprintf(q1, sizeof q1, "%s/quarantine", dir);
    DIR *d = opendir(q1);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(n, 2);
    tu_rmrf(dir);
}

static const char *awkward[] = {
    "/",
    "..",
    ".",
    "a b",
    " ",
    "../../etc/passwd",
    "Key",
    "key",
    "KEY",
    "caf\xc3\xa9",
    "cafe\xcc\x81", /* the same word, decomposed: a different key */
    "\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80",
    "\xf4\x8f\xbf\xbf",
    "tab\there",
    "new\nline",
    "LOCK",
    "quarantine",
    "0123456789abcdef0123456789abcdef.chunk",
};
#define NAWK (sizeof awkward / sizeof awkward[0])

static size_t value_size(size_t i) {
    static const size_t sz[] = {0, 1, 4096, 65537, AQ_CHUNK_VALUE_MAX};
    return sz[i % 5];
}

typedef struct walk {
    int n;
    uint64_t bytes;
} walk;

static int count_cb(void *ud, const uint8_t *key, size_t klen, uint64_t size, aq_chunk_digest d,
                    uint8_t kind) {
    (void)key;
    (void)klen;
    (void)d;
    (void)kind;
    walk *w = ud;
    w->n++;
    w->bytes += size;
    return 0;
}

Test(persist, awkward_keys_and_all_sizes_survive_close_and_open, .timeout = 100) {
    char *dir = tu_mkdtemp();
    char k255[256];
    memset(k255, 'z', 255);
    memcpy(k255 + 251, "\xf0\x9f\x98\x80", 4); /* ends in a 4-byte character */
    tu_reports rep = {0};
    aq_chunk_store *s = tu_open(dir, 0, &rep);
    uint64_t total = 0;
    for (size_t i = 0; i <= NAWK; i++) {
        const char *k = i < NAWK ? awkward[i] : k255;
        size_t kl = i < NAWK ? strlen(k) : 255;
        uint8_t *v = tu_bytes(value_size(i), i);
        aq_chunk_digest d = aq_chunk_digest_of(v, value_size(i));
        cr_assert_eq(aq_chunk_put_verified(s, k, kl, v, value_size(i), (uint8_t)(i % 2), &d), 0,
                     "put %zu", i);
        total += value_size(i);
        free(v);
    }
    /* A removed key must stay removed. */
    cr_assert_eq(aq_chunk_put(s, K("gone"), "x", 1, NULL), 0);
    cr_assert_eq(aq_chunk_rm(s, K("gone")), 0);
    /* An overwritten key must come back with its last value. */
    cr_assert_eq(aq_chunk_put(s, K("Key"), "first", 5, NULL), 0);
    cr_assert_eq(aq_chunk_put(s, K("Key"), "second", 6, NULL), 0);
    total = total - value_size(6) + 6;
    aq_chunk_stats before = tu_stats(s);
    cr_expect_eq(before.bytes, total);
    aq_chunk_store_close(s);
    cr_expect_eq(rep.n, 0, "no reports expected, first: %s: %s", rep.file[0], rep.reason[0]);

    s = tu_open(dir, 0, &rep);
    aq_chunk_stats after = tu_stats(s);
    cr_expect_eq(after.chunks, before.chunks);
    cr_expect_eq(after.chunks, NAWK + 1);
    cr_expect_eq(after.bytes, total);
    cr_expect_eq(after.quarantined, 0u);
    cr_expect_eq(after.stray, 0u);
    for (size_t i = 0; i <= NAWK; i++) {
        const char *k = i < NAWK ? awkward[i] : k255;
        size_t kl = i < NAWK ? strlen(k) : 255;
        if (i == 6) {
            tu_expect(s, k, kl, (const uint8_t *)"second", 6);
            continue;
        }
        uint8_t *v = tu_bytes(value_size(i), i);
        tu_expect(s, k, kl, v, value_size(i));
        aq_chunk_ref *r;
        cr_assert_eq(aq_chunk_get(s, k, kl, &r), 0);
        cr_expect_eq(aq_chunk_ref_kind(r), i % 2, "kind of %zu", i);
        aq_chunk_ref_release(r);
        free(v);
    }
    cr_expect_eq(aq_chunk_stat(s, K("gone"), NULL, NULL), AQ_ENOTFOUND);
    walk w = {0};
    cr_expect_eq(aq_chunk_iterate(s, NULL, 0, count_cb, &w), 0);
    cr_expect_eq(w.n, (int)NAWK + 1);
    cr_expect_eq(w.bytes, total);
    cr_expect_eq(rep.n, 0, "no reports expected on reload, first: %s: %s", rep.file[0],
                 rep.reason[0]);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}

Test(persist, stray_files_are_left_alone_and_reported) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    cr_assert_eq(aq_chunk_put(s, K("k"), "v", 1, NULL), 0);
    aq_chunk_store_close(s);
    write_file(dir, "notes.txt", "hello\n", 6);
    write_file(dir, "0123456789ABCDEF0123456789ABCDEF.chunk", "x", 1); /* upper case: not ours */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/misc", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);

    tu_reports rep = {0};
    s = tu_open(dir, 0, &rep);
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.stray, 3u);
    cr_expect_eq(st.quarantined, 0u);
    cr_expect_eq(st.chunks, 1u);
    tu_expect(s, K("k"), (const uint8_t *)"v", 1);
    cr_expect_eq(rep.n, 3);
    int i = tu_find_report(&rep, "notes.txt");
    cr_assert_geq(i, 0);
    cr_expect_not_null(strstr(rep.reason[i], "left alone"));
    cr_expect_geq(tu_find_report(&rep, "misc"), 0);
    aq_chunk_store_close(s);
    cr_expect(exists(dir, "notes.txt"));
    cr_expect(exists(dir, "misc"));
    cr_expect(exists(dir, "0123456789ABCDEF0123456789ABCDEF.chunk"));
    cr_expect_not(exists(dir, "quarantine/notes.txt"));
    tu_rmrf(dir);
}

Test(persist, leftover_temporary_file_is_removed) {
    char *dir = tu_mkdtemp();
    const char *tmp = "fedcba9876543210fedcba9876543210.chunk.tmp";
    write_file(dir, tmp, "AQCHUNK\0half-written", 20);
    tu_reports rep = {0};
    aq_chunk_store *s = tu_open(dir, 0, &rep);
    cr_expect_not(exists(dir, tmp));
    aq_chunk_stats st = tu_stats(s);
    cr_expect_eq(st.chunks, 0u);
    cr_expect_eq(st.quarantined, 0u);
    cr_expect_eq(st.stray, 0u);
    cr_expect_geq(tu_find_report(&rep, tmp), 0);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}

Test(persist, lock_keeps_a_second_store_out) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *a = tu_open(dir, 0, NULL);
    cr_assert_eq(aq_chunk_put(a, K("k"), "v", 1, NULL), 0);
    tu_reports rep = {0};
    aq_chunk_opts o = {dir, 0, tu_report, &rep};
    aq_chunk_store *b = NULL;
    cr_expect_eq(aq_chunk_store_open(&o, &b), AQ_ELOCKED);
    cr_expect_null(b);
    cr_assert_eq(rep.n, 1);
    cr_expect_str_eq(rep.file[0], "LOCK");
    cr_expect_not_null(strstr(rep.reason[0], "in use by another chunk store"), "%s", rep.reason[0]);
    cr_expect_not_null(strstr(aq_strerror(AQ_ELOCKED), "locked"));
    /* The refused open changed nothing: the first store still works. */
    tu_expect(a, K("k"), (const uint8_t *)"v", 1);
    aq_chunk_store_close(a);
    b = tu_open(dir, 0, NULL);
    tu_expect(b, K("k"), (const uint8_t *)"v", 1);
    aq_chunk_store_close(b);
    tu_rmrf(dir);
}

Test(persist, data_dir_is_created_and_a_file_in_its_place_is_refused) {
    char *dir = tu_mkdtemp();
    char sub[300];
    snprintf(sub, sizeof sub, "%s/new", dir);
    aq_chunk_store *s = tu_open(sub, 0, NULL);
    cr_assert_eq(aq_chunk_put(s, K("k"), "v", 1, NULL), 0);
    aq_chunk_store_close(s);
    cr_expect(exists(dir, "new/LOCK"));
    write_file(dir, "file", "x", 1);
    snprintf(sub, sizeof sub, "%s/file", dir);
    aq_chunk_opts o = {sub, 0, NULL, NULL};
    cr_expect_eq(aq_chunk_store_open(&o, &s), -ENOTDIR);
    tu_rmrf(dir);
}

Test(persist, memory_cap_does_not_refuse_loading) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    uint8_t *v = tu_bytes(3000, 1);
    cr_assert_eq(aq_chunk_put(s, K("a"), v, 3000, NULL), 0);
    aq_chunk_store_close(s);
    s = tu_open(dir, 1000, NULL);
    tu_expect(s, K("a"), v, 3000);
    cr_expect_eq(aq_chunk_put(s, K("b"), v, 1, NULL), AQ_EFULL);
    cr_expect_eq(aq_chunk_put(s, K("a"), v, 500, NULL), 0, "shrinking still works");
    cr_expect_eq(aq_chunk_put(s, K("b"), v, 500, NULL), 0);
    aq_chunk_store_close(s);
    free(v);
    tu_rmrf(dir);
}

/* The writer's version survives a restart; a format-1 file (no version field) still loads, as 0. */
Test(persist, versions_persist_and_format_1_still_loads) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    aq_chunk_digest d = aq_chunk_digest_of("value", 5);
    cr_assert_eq(aq_chunk_put_versioned(s, K("k"), "value", 5, 1, &d, 123456789), 0);
    aq_chunk_store_close(s);
    s = tu_open(dir, 0, NULL);
    aq_chunk_ref *r;
    cr_assert_eq(aq_chunk_get(s, K("k"), &r), 0);
    cr_expect_eq(aq_chunk_ref_version(r), 123456789);
    cr_expect_eq(aq_chunk_ref_kind(r), 1);
    aq_chunk_ref_release(r);
    aq_chunk_store_close(s);
    /* Rewrite the file as format 1: drop the version field, fix the header checksum. */
    char name[300];
    only_chunk_file(dir, name);
    size_t n;
    uint8_t *b = read_file(dir, name, &n);
    size_t klen = b[13];
    uint8_t *o = malloc(n - 8);
    memcpy(o, b, 40);
    o[8] = 1;
    memcpy(o + 40, b + 48, klen);
    uint64_t c = XXH3_64bits(o, 40 + klen);
    for (int i = 0; i < 8; i++)
        o[40 + klen + i] = (uint8_t)(c >> (8 * i));
    memcpy(o + 48 + klen, b + 56 + klen, n - 56 - klen);
    write_file(dir, name, o, n - 8);
    free(b);
    free(o);
    s = tu_open(dir, 0, NULL);
    cr_assert_eq(aq_chunk_get(s, K("k"), &r), 0, "a format-1 file did not load");
    cr_expect_eq(aq_chunk_ref_version(r), 0);
    cr_expect_eq(aq_chunk_ref_len(r), 5);
    cr_expect_eq(memcmp(aq_chunk_ref_data(r), "value", 5), 0);
    aq_chunk_ref_release(r);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}

/* An overwrite whose file cannot be written fails and leaves the stored chunk whole and readable
 * (the temporary file's name is taken by a directory, so creating it fails). */
Test(persist, failed_overwrite_keeps_the_old_chunk) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    aq_chunk_digest d1 = aq_chunk_digest_of("first", 5), d2 = aq_chunk_digest_of("second!", 7);
    cr_assert_eq(aq_chunk_put_versioned(s, K("k"), "first", 5, 0, &d1, 10), 0);
    char name[300], tmp[320], p[700];
    only_chunk_file(dir, name);
    snprintf(tmp, sizeof tmp, "%.*s.tmp", (int)strlen(name), name);
    snprintf(p, sizeof p, "%s/%s", dir, tmp);
    cr_assert_eq(mkdir(p, 0755), 0);
    cr_expect_neq(aq_chunk_put_versioned(s, K("k"), "second!", 7, 0, &d2, 11), 0);
    for (int i = 0; i < 3; i++) {
        aq_chunk_ref *r;
        cr_assert_eq(aq_chunk_get(s, K("k"), &r), 0, "the old chunk is gone");
        cr_expect_eq(aq_chunk_ref_len(r), 5);
        cr_expect_eq(memcmp(aq_chunk_ref_data(r), "first", 5), 0);
        cr_expect_eq(aq_chunk_ref_version(r), 10);
        aq_chunk_ref_release(r);
    }
    aq_chunk_stats st;
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    cr_expect_eq(st.chunks, 1);
    cr_expect_eq(st.bytes, 5);
    rmdir(p);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}

/* Scrub: a whole chunk passes; a byte flipped in its file, or in its bytes in memory, is found, and
 * the chunk is dropped (never served again) with its file moved to quarantine/. */
Test(persist, scrub_finds_damage_in_file_and_memory) {
    char *dir = tu_mkdtemp();
    aq_chunk_store *s = tu_open(dir, 0, NULL);
    uint8_t v[3000];
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (uint8_t)(i * 7);
    aq_chunk_digest d = aq_chunk_digest_of(v, sizeof v);
    cr_assert_eq(aq_chunk_put_versioned(s, K("f"), v, sizeof v, 0, &d, 5), 0);
    char why[200];
    uint64_t bytes = 0;
    cr_expect_eq(aq_chunk_scrub(s, K("f"), &bytes, why, sizeof why), 0);
    cr_expect_geq(bytes, 2 * sizeof v, "memory and file were both read");
    cr_expect_eq(aq_chunk_scrub(s, K("none"), NULL, why, sizeof why), AQ_ENOTFOUND);
    char name[300];
    only_chunk_file(dir, name);
    size_t n;
    uint8_t *b = read_file(dir, name, &n);
    free(b);
    flip_byte(dir, name, n - 100);
    cr_expect_eq(aq_chunk_scrub(s, K("f"), NULL, why, sizeof why), AQ_ECORRUPT);
    cr_expect(strstr(why, "file") != NULL, "%s", why);
    aq_chunk_ref *r;
    cr_expect_eq(aq_chunk_get(s, K("f"), &r), AQ_ENOTFOUND, "a damaged chunk is still served");
    cr_expect(!exists(dir, name));
    char q[400];
    snprintf(q, sizeof q, "quarantine/%s", name);
    cr_expect(exists(dir, q));

    cr_assert_eq(aq_chunk_put_versioned(s, K("m"), v, sizeof v, 0, &d, 6), 0);
    cr_assert_eq(aq_chunk_get(s, K("m"), &r), 0);
    ((uint8_t *)aq_chunk_ref_data(r))[10] ^= 1; /* what a bit flip in RAM would do */
    aq_chunk_ref_release(r);
    cr_expect_eq(aq_chunk_scrub(s, K("m"), NULL, why, sizeof why), AQ_ECORRUPT);
    cr_expect(strstr(why, "memory") != NULL, "%s", why);
    cr_expect_eq(aq_chunk_get(s, K("m"), &r), AQ_ENOTFOUND);
    aq_chunk_stats st;
    cr_assert_eq(aq_chunk_store_stats(s, &st), 0);
    cr_expect_eq(st.chunks, 0);
    cr_expect_eq(st.bytes, 0);
    aq_chunk_store_close(s);
    tu_rmrf(dir);
}
