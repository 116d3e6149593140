/* The parse command's input layer (cli/cli_input.h) against the real command-line tools: every
 * format decompressed byte for byte as `gzip -dc`, `zstd -dc`, `bzip2 -dc` and `xz -dc` give it,
 * multi-member and multi-frame streams, reads of awkward sizes, corrupt and truncated streams
 * (an error naming the file and a byte offset, never a crash nor a short read), empty files,
 * several files joined with their headers checked and dropped, and the encodings. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aq_error.h"
#include "cli_input.h"

static char dir[256];

static void mkdir_tmp(void) {
    snprintf(dir, sizeof dir, "/tmp/aq-cli-input.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(input, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 120);

static char *path(const char *name) {
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_file(const char *name, const void *p, size_t n) {
    FILE *f = fopen(path(name), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void write_str(const char *name, const char *s) {
    write_file(name, s, strlen(s));
}

static char *read_all(const char *file, size_t *n) {
    FILE *f = fopen(file, "rb");
    cr_assert_not_null(f, "%s", file);
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    size_t got;
    while ((got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    *n = len;
    return b;
}

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* CSV-like text of about n bytes: a header and rows with numbers, words and some UTF-8. */
static char *make_text(size_t n, unsigned seed, size_t *len) {
    char *t = malloc(n + 256);
    size_t o = (size_t)sprintf(t, "id,name,value\n");
    srand(seed);
    for (unsigned i = 0; o < n; i++)
        o += (size_t)sprintf(t + o, "%u,%s%d,%d.%02d\n", i, i % 7 ? "w" : "caf\xc3\xa9",
                             rand() % 1000, rand() % 100000, rand() % 100);
    *len = o;
    return t;
}

/* Everything cli_src gives for file, read cap bytes at a time (caps cycling through the list). */
static int src_all(const char *file, const size_t *caps, size_t ncaps, char **out, size_t *len,
                   char *why) {
    cli_src *s;
    int err = cli_src_open(&s, file, why, 512);
    if (err)
        return err;
    size_t cap = 1 << 20, o = 0, k = 0;
    char *b = malloc(cap);
    for (;;) {
        size_t c = caps[k++ % ncaps], got;
        if (o + c > cap)
            b = realloc(b, cap = 2 * (o + c));
        if ((err = cli_src_read(s, (uint8_t *)b + o, c, &got, why, 512)) != 0)
            break;
        if (got == 0)
            break;
        cr_assert_leq(got, c);
        o += got;
    }
    cli_src_close(s);
    *out = b;
    *len = o;
    return err;
}

static const char *const tools[] = {"gzip", "zstd", "bzip2", "xz"};
static const char *const exts[] = {"gz", "zst", "bz2", "xz"};
static const cli_fmt fmts[] = {CLI_FMT_GZIP, CLI_FMT_ZSTD, CLI_FMT_BZIP2, CLI_FMT_XZ};

/* Compresses dir/plain into dir/plain.EXT with the tool (-c, quiet). */
static void compress(int t, const char *plain, const char *out) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s -q -c '%s' > '%s'", tools[t], path(plain), path(out));
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The tool's own decompression of file, to compare with. */
static char *tool_dc(int t, const char *file, size_t *len) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s -dc '%s' > '%s.ref'", tools[t], file, file);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "%s.ref", file);
    return read_all(cmd, len);
}

Test(input, every_format_as_the_tool_decompresses_it) {
    size_t n;
    char *text = make_text(3u << 20, 1, &n);
    write_file("t.csv", text, n);
    const size_t caps[][3] = {{1 << 20, 1 << 20, 1 << 20}, {1, 7, 4093}, {65536, 3, 1 << 20}};
    for (int t = 0; t < 4; t++) {
        char name[32];
        snprintf(name, sizeof name, "t.csv.%s", exts[t]);
        compress(t, "t.csv", name);
        size_t rl;
        char *ref = tool_dc(t, path(name), &rl);
        cr_assert_eq(rl, n);
        cli_src *s;
        char why[512];
        cr_assert_eq(cli_src_open(&s, path(name), why, sizeof why), 0, "%s", why);
        cr_assert_eq(cli_src_format(s), fmts[t], "%s", name);
        cli_src_close(s);
        for (size_t c = 0; c < 3; c++) {
            /* byte-at-a-time reads of a 3 MB file are slow: a smaller file for those */
            if (caps[c][0] == 1 && t != 0)
                continue;
            char *got;
            size_t gl;
            cr_assert_eq(src_all(path(name), caps[c], 3, &got, &gl, why), 0, "%s: %s", name, why);
            cr_assert_eq(gl, rl, "%s: %zu bytes, the tool gives %zu", name, gl, rl);
            cr_assert(memcmp(got, ref, rl) == 0, "%s differs", name);
            free(got);
        }
        free(ref);
    }
    free(text);
}

Test(input, multi_member_and_multi_frame_read_whole) {
    size_t n1, n2;
    char *a = make_text(300000, 2, &n1), *b = make_text(200000, 3, &n2);
    write_file("a.csv", a, n1);
    write_file("b.csv", b, n2);
    for (int t = 0; t < 4; t++) {
        char ca[32], cb[32], cat[32];
        snprintf(ca, sizeof ca, "a.%s", exts[t]);
        snprintf(cb, sizeof cb, "b.%s", exts[t]);
        snprintf(cat, sizeof cat, "ab.%s", exts[t]);
        compress(t, "a.csv", ca);
        compress(t, "b.csv", cb);
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s'", path(ca), path(cb), path(cat));
        cr_assert_eq(system(cmd), 0);
        size_t rl;
        char *ref = tool_dc(t, path(cat), &rl);
        cr_assert_eq(rl, n1 + n2, "%s -dc gives %zu", tools[t], rl);
        char *got, why[512];
        size_t gl;
        const size_t caps[] = {4096, 100000, 17};
        cr_assert_eq(src_all(path(cat), caps, 3, &got, &gl, why), 0, "%s", why);
        cr_assert_eq(gl, rl, "%s: %zu bytes of %zu", cat, gl, rl);
        cr_assert(memcmp(got, ref, rl) == 0);
        free(got);
        free(ref);
    }
    free(a);
    free(b);
}

/* Every way a compressed file can be damaged: an error naming the file and a byte offset. */
Test(input, corrupt_and_truncated_streams_fail_naming_file_and_offset) {
    size_t n;
    char *text = make_text(400000, 4, &n);
    write_file("c.csv", text, n);
    for (int t = 0; t < 4; t++) {
        char name[32];
        snprintf(name, sizeof name, "c.%s", exts[t]);
        compress(t, "c.csv", name);
        size_t cl;
        char *comp = read_all(path(name), &cl);
        const size_t caps[] = {65536};
        char *got, why[512];
        size_t gl;
        /* truncated at several points */
        size_t cuts[] = {cl / 2, cl - 1, 20};
        for (int k = 0; k < 3; k++) {
            write_file("cut", comp, cuts[k]);
            int err = src_all(path("cut"), caps, 1, &got, &gl, why);
            cr_assert_eq(err, AQ_EPARSE, "%s cut at %zu: err %d, %zu bytes", name, cuts[k], err,
                         gl);
            cr_assert(strstr(why, path("cut")) && strstr(why, "byte"), "%s", why);
            cr_assert_leq(gl, n); /* a cut in the trailer may come after all the data */
            free(got);
        }
        /* a flipped byte in the middle */
        char *bad = malloc(cl);
        memcpy(bad, comp, cl);
        bad[cl / 2] ^= 0x55;
        write_file("flip", bad, cl);
        int err = src_all(path("flip"), caps, 1, &got, &gl, why);
        cr_assert_eq(err, AQ_EPARSE, "%s flipped: err %d", name, err);
        cr_assert(strstr(why, path("flip")) && strstr(why, "byte"), "%s", why);
        free(got);
        /* garbage after a complete stream */
        memcpy(bad, comp, cl);
        bad = realloc(bad, cl + 5);
        memcpy(bad + cl, "hello", 5);
        write_file("tail", bad, cl + 5);
        err = src_all(path("tail"), caps, 1, &got, &gl, why);
        cr_assert_eq(err, AQ_EPARSE, "%s with trailing bytes: err %d", name, err);
        free(got);
        free(bad);
        free(comp);
    }
    free(text);
}

/* Random damage: never a crash, never more than an error (run under ASan in build-asan). */
Test(input, random_damage_never_crashes) {
    size_t n;
    char *text = make_text(60000, 5, &n);
    write_file("r.csv", text, n);
    srand(7);
    for (int t = 0; t < 4; t++) {
        char name[32];
        snprintf(name, sizeof name, "r.%s", exts[t]);
        compress(t, "r.csv", name);
        size_t cl;
        char *comp = read_all(path(name), &cl);
        for (int it = 0; it < 60; it++) {
            char *m = malloc(cl);
            memcpy(m, comp, cl);
            int flips = 1 + rand() % 4;
            for (int f = 0; f < flips; f++)
                m[rand() % cl] = (char)rand();
            size_t ml = rand() % 3 ? cl : (size_t)rand() % cl + 1;
            write_file("m", m, ml);
            const size_t caps[] = {4096, 1, 65536};
            char *got, why[512];
            size_t gl;
            int err = src_all(path("m"), caps, 3, &got, &gl, why);
            /* success only with a full-size output (the flips hit padding or an unused field) */
            if (err == 0)
                cr_assert(gl == n || ml == cl, "%s damaged: success with %zu of %zu bytes", name,
                          gl, n);
            else
                cr_assert(strstr(why, path("m")) != NULL, "%s", why);
            free(got);
            free(m);
        }
        free(comp);
    }
    free(text);
}

Test(input, empty_files_are_errors) {
    write_str("empty.csv", "");
    cli_input *in;
    char why[512];
    const char *p1[] = {path("empty.csv")};
    cr_assert_eq(cli_input_open(&in, p1, 1, CLI_ENC_AUTO, why, sizeof why), AQ_EINVAL);
    cr_assert(strstr(why, "empty"), "%s", why);
    sh("printf '' | gzip -c > '%s'%s", path("empty.gz"), "");
    const char *p2[] = {path("empty.gz")};
    cr_assert_eq(cli_input_open(&in, p2, 1, CLI_ENC_AUTO, why, sizeof why), 0, "%s", why);
    char buf[64];
    size_t got;
    cr_assert_eq(cli_input_read(in, buf, sizeof buf, &got, why, sizeof why), AQ_EINVAL);
    cr_assert(strstr(why, "empty once decompressed"), "%s", why);
    cli_input_close(in);
}

/* All of an input's text, read with caps cycling through the list. */
static int input_fill(const char *const *paths, size_t np, cli_enc enc, bool header, bool fill,
                      const size_t *caps, size_t ncaps, char **out, size_t *len, char *why) {
    cli_input *in;
    int err = cli_input_open(&in, paths, np, enc, why, 512);
    if (err)
        return err;
    /* as the parse command does: a stream's head is read ahead for the setup, then handed out */
    if (!cli_input_first_seekable(in)) {
        const char *pk;
        size_t pl;
        if ((err = cli_input_peek(in, 2u << 20, &pk, &pl, why, 512)) != 0) {
            cli_input_close(in);
            *out = NULL;
            *len = 0;
            return err;
        }
    }
    aq_csv_dialect d = {.sep = ',', .quote = '"'};
    cr_assert_eq(cli_input_set_dialect(in, &d, header, fill, why, 512), 0);
    size_t cap = 1 << 16, o = 0, k = 0;
    char *b = malloc(cap);
    for (;;) {
        size_t c = caps[k++ % ncaps], got;
        if (o + c > cap)
            b = realloc(b, cap = 2 * (o + c));
        if ((err = cli_input_read(in, b + o, c, &got, why, 512)) != 0 || got == 0)
            break;
        cr_assert_leq(got, c);
        o += got;
    }
    cli_input_close(in);
    *out = b;
    *len = o;
    return err;
}

static int input_all(const char *const *paths, size_t np, cli_enc enc, bool header,
                     const size_t *caps, size_t ncaps, char **out, size_t *len, char *why) {
    return input_fill(paths, np, enc, header, false, caps, ncaps, out, len, why);
}

Test(input, several_files_join_with_headers_dropped) {
    write_str("1.csv", "a,b\n1,x\n2,y\n");
    write_str("2.csv", "\xef\xbb\xbf"
                       "a,b\r\n3,z\r\n4,w"); /* BOM, CRLF, no final newline */
    write_str("3.csv", "\"a\",b\n5,v\n");    /* a quoted header name */
    sh("gzip -c '%s' > '%s'", path("3.csv"), path("3.csv.gz"));
    const char *p[] = {path("1.csv"), path("2.csv"), path("3.csv.gz")};
    const char *want = "a,b\n1,x\n2,y\n3,z\r\n4,w\n5,v\n";
    const size_t caps[][3] = {{65536, 65536, 65536}, {1, 2, 3}, {5, 64, 1}};
    for (int c = 0; c < 3; c++) {
        char *got, why[512];
        size_t gl;
        cr_assert_eq(input_all(p, 3, CLI_ENC_AUTO, true, caps[c], 3, &got, &gl, why), 0, "%s", why);
        cr_assert(gl == strlen(want) && memcmp(got, want, gl) == 0, "got '%.*s'", (int)gl, got);
        free(got);
    }
    /* without a header nothing is dropped but later BOMs */
    char *got, why[512];
    size_t gl;
    cr_assert_eq(input_all(p, 3, CLI_ENC_AUTO, false, caps[0], 3, &got, &gl, why), 0, "%s", why);
    const char *want2 = "a,b\n1,x\n2,y\na,b\r\n3,z\r\n4,w\n\"a\",b\n5,v\n";
    cr_assert(gl == strlen(want2) && memcmp(got, want2, gl) == 0, "got '%.*s'", (int)gl, got);
    free(got);
}

Test(input, a_directory_and_a_glob_in_name_order) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s/d", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_str("d/b.csv", "k\n2\n");
    write_str("d/a.csv", "k\n1\n");
    write_str("d/.hidden", "k\n9\n");
    snprintf(sub, sizeof sub, "%s/d/sub", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_str("d/sub/c.csv", "k\n3\n");
    const size_t caps[] = {4096};
    char *got, why[512];
    size_t gl;
    const char *pd[] = {path("d")};
    cr_assert_eq(input_all(pd, 1, CLI_ENC_AUTO, true, caps, 1, &got, &gl, why), 0, "%s", why);
    cr_assert(gl == 6 && memcmp(got, "k\n1\n2\n", 6) == 0, "got '%.*s'", (int)gl, got);
    free(got);
    const char *pg[] = {path("d/*.csv"), path("d/sub")};
    cr_assert_eq(input_all(pg, 2, CLI_ENC_AUTO, true, caps, 1, &got, &gl, why), 0, "%s", why);
    cr_assert(gl == 8 && memcmp(got, "k\n1\n2\n3\n", 8) == 0, "got '%.*s'", (int)gl, got);
    free(got);
    const char *pn[] = {path("d/*.tsv")};
    cli_input *in;
    cr_assert_eq(cli_input_open(&in, pn, 1, CLI_ENC_AUTO, why, sizeof why), -ENOENT);
    cr_assert(strstr(why, "no file matches"), "%s", why);
}

Test(input, a_differing_header_names_file_and_column) {
    write_str("1.csv", "a,b,c\n1,2,3\n");
    write_str("2.csv", "a,B,c\n4,5,6\n");
    write_str("3.csv", "a,b\n4,5\n");
    const size_t caps[] = {4096};
    char *got, why[512];
    size_t gl;
    const char *p[] = {path("1.csv"), path("2.csv")};
    cr_assert_eq(input_all(p, 2, CLI_ENC_AUTO, true, caps, 1, &got, &gl, why), AQ_EPARSE);
    cr_assert(strstr(why, path("2.csv")) && strstr(why, "differs") &&
                  strstr(why, "column 2: 'B' where") && strstr(why, "has 'b'"),
              "%s", why);
    free(got);
    const char *p3[] = {path("1.csv"), path("3.csv")};
    cr_assert_eq(input_all(p3, 2, CLI_ENC_AUTO, true, caps, 1, &got, &gl, why), AQ_EPARSE);
    cr_assert(strstr(why, path("3.csv")) && strstr(why, "column 3") && strstr(why, "'c'"), "%s",
              why);
    free(got);
}

Test(input, encodings) {
    /* Latin-1 and cp1252: caf\xe9 and the euro sign */
    write_str("l.csv", "w,p\ncaf\xe9,\x80"
                       "5\n");
    const size_t caps[] = {4096, 1, 2};
    char *got, why[512];
    size_t gl;
    const char *p[] = {path("l.csv")};
    cr_assert_eq(input_all(p, 1, CLI_ENC_LATIN1, true, caps, 3, &got, &gl, why), 0, "%s", why);
    const char *w1 = "w,p\ncaf\xc3\xa9,\xc2\x80"
                     "5\n";
    cr_assert(gl == strlen(w1) && memcmp(got, w1, gl) == 0, "latin-1 got '%.*s'", (int)gl, got);
    free(got);
    cr_assert_eq(input_all(p, 1, CLI_ENC_CP1252, true, caps, 3, &got, &gl, why), 0, "%s", why);
    const char *w2 = "w,p\ncaf\xc3\xa9,\xe2\x82\xac"
                     "5\n";
    cr_assert(gl == strlen(w2) && memcmp(got, w2, gl) == 0, "cp1252 got '%.*s'", (int)gl, got);
    free(got);
    /* auto: the bytes are kept as they are, and the first line that is not UTF-8 noted */
    write_str("m.csv", "w\ncaf\xc3\xa9\nx\nbad\xe9\xc3\n");
    const char *pm[] = {path("m.csv")};
    for (int z = 0; z < 2; z++) {
        if (z)
            sh("xz -c '%s' > '%s'", path("m.csv"), path("m.csv.xz"));
        const char *pz[] = {path(z ? "m.csv.xz" : "m.csv")};
        cli_input *in;
        cr_assert_eq(cli_input_open(&in, pz, 1, CLI_ENC_AUTO, why, sizeof why), 0);
        char buf[64];
        size_t o = 0, g;
        while (cli_input_read(in, buf + o, 3, &g, why, sizeof why) == 0 && g)
            o += g;
        const char *raw = "w\ncaf\xc3\xa9\nx\nbad\xe9\xc3\n";
        cr_assert(o == strlen(raw) && memcmp(buf, raw, o) == 0, "auto got '%.*s'", (int)o, buf);
        uint64_t line;
        const char *nf = cli_input_note(in, &line);
        cr_assert(nf && strcmp(nf, pz[0]) == 0 && line == 4, "note %s line %llu", nf,
                  (unsigned long long)line);
        cli_input_stats st;
        cli_input_get_stats(in, &st);
        cr_assert_eq(st.not_utf8, 1);
        cli_input_close(in);
    }
    /* utf-8 asked: the invalid byte is an error naming line and byte */
    cr_assert_eq(input_all(p, 1, CLI_ENC_UTF8, true, caps, 1, &got, &gl, why), AQ_EPARSE);
    cr_assert(strstr(why, "line 2") && strstr(why, "byte 7"), "%s", why);
    free(got);
    cr_assert_eq(input_all(pm, 1, CLI_ENC_UTF8, true, caps, 1, &got, &gl, why), AQ_EPARSE);
    cr_assert(strstr(why, "line 4") && strstr(why, "byte 13"), "%s", why);
    free(got);
    /* clean UTF-8: no note */
    write_str("ok.csv", "w\ncaf\xc3\xa9\n");
    const char *po[] = {path("ok.csv")};
    cli_input *in;
    cr_assert_eq(cli_input_open(&in, po, 1, CLI_ENC_AUTO, why, sizeof why), 0);
    char buf[64];
    size_t g;
    while (cli_input_read(in, buf, sizeof buf, &g, why, sizeof why) == 0 && g)
        ;
    uint64_t line;
    cr_assert_null(cli_input_note(in, &line));
    cli_input_close(in);
}

/* UTF-8 sequences cut by every read size: held back and joined, never taken for invalid. */
Test(input, utf8_split_across_reads) {
    size_t n;
    char *text = make_text(200000, 6, &n);
    /* more multibyte: 2, 3 and 4-byte sequences on every line */
    char *t2 = malloc(n * 3);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        t2[o++] = text[i];
        if (text[i] == ',') {
            memcpy(t2 + o, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
            o += 9;
        }
    }
    write_file("u.csv", t2, o);
    sh("zstd -q -c '%s' > '%s'", path("u.csv"), path("u.csv.zst"));
    for (int z = 0; z < 2; z++) {
        const char *p[] = {path(z ? "u.csv.zst" : "u.csv")};
        const size_t caps[] = {65, 70, 1, 4099, 1 << 20};
        char *got, why[512];
        size_t gl;
        cr_assert_eq(input_all(p, 1, CLI_ENC_UTF8, true, caps, 5, &got, &gl, why), 0, "%s", why);
        cr_assert(gl == o && memcmp(got, t2, o) == 0, "%s: %zu of %zu bytes", p[0], gl, o);
        free(got);
    }
    free(t2);
    free(text);
}

/* Text with an accent every few bytes (the check's 16-byte steps between sequences) and one
 * invalid sequence at a random place: named at its line and byte, as a byte-by-byte reference
 * finds them, for every kind of invalid sequence and at every offset of a 16-byte step. */
Test(input, utf8_invalid_found_in_accented_text) {
    static const char *const seq[] = {"\xc3\xa9", "\xe2\x80\x94", "\xf0\x9f\x98\x80", "\n"};
    static const char *const bad[] = {
        "\xff", "\xc3(", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xe2\x82"};
    srand(16);
    size_t cap = 1 << 18;
    char *t = malloc(cap + 64);
    for (int round = 0; round < 48; round++) {
        size_t o = 0, at = 0;
        int which = round % 7;
        size_t want_at = 1000 + (size_t)(rand() % 200000);
        uint64_t lines = 1;
        bool placed = false;
        while (o < cap - 32) {
            if (!placed && o >= want_at) {
                at = o;
                memcpy(t + o, bad[which], strlen(bad[which]));
                o += strlen(bad[which]);
                placed = true;
                continue;
            }
            int k = rand() % 24;
            const char *s =
                k < 4 ? seq[k] : "abcdefghijklmnopqrstu, vwxyz ABCDEFGHIJKLMNOPQRS" + (k - 4);
            size_t l = k < 4 ? strlen(s) : (size_t)(rand() % 19 + 1);
            if (!placed)
                for (size_t i = 0; i < l; i++)
                    lines += s[i] == '\n';
            memcpy(t + o, s, l);
            o += l;
        }
        write_file("a.csv", t, o);
        const char *p[] = {path("a.csv")};
        const size_t caps[] = {1 << 20, 4099, 65};
        char *got, why[512], wl[64], wb[64];
        size_t gl;
        cr_assert_eq(input_all(p, 1, CLI_ENC_UTF8, false, caps + round % 3, 1, &got, &gl, why),
                     AQ_EPARSE, "round %d", round);
        snprintf(wl, sizeof wl, "line %llu:", (unsigned long long)lines);
        snprintf(wb, sizeof wb, "byte %zu ", at);
        cr_assert(strstr(why, wl) && strstr(why, wb), "round %d: want %s %s: %s", round, wl, wb,
                  why);
        free(got);
        /* and the text before it is valid: read whole, byte for byte */
        write_file("b.csv", t, at);
        const char *pb[] = {path("b.csv")};
        cr_assert_eq(input_all(pb, 1, CLI_ENC_UTF8, false, caps + round % 3, 1, &got, &gl, why), 0,
                     "round %d: %s", round, why);
        cr_assert(gl == at && memcmp(got, t, at) == 0, "round %d: %zu of %zu bytes", round, gl, at);
        free(got);
    }
    free(t);
}

Test(input, peek_is_handed_out_again) {
    size_t n;
    char *text = make_text(5u << 20, 8, &n);
    write_file("p.csv", text, n);
    sh("gzip -c '%s' > '%s'", path("p.csv"), path("p.csv.gz"));
    const char *p[] = {path("p.csv.gz"), path("p.csv")};
    cli_input *in;
    char why[512];
    cr_assert_eq(cli_input_open(&in, p, 2, CLI_ENC_AUTO, why, sizeof why), 0, "%s", why);
    cr_assert(!cli_input_first_seekable(in));
    const char *pk;
    size_t pl;
    cr_assert_eq(cli_input_peek(in, 2u << 20, &pk, &pl, why, sizeof why), 0);
    cr_assert(pl > (2u << 20) - 8 && memcmp(pk, text, pl) == 0);
    aq_csv_dialect d = {.sep = ',', .quote = '"'};
    cli_input_set_dialect(in, &d, true, false, why, sizeof why);
    char *b = malloc(2 * n);
    size_t o = 0, g;
    while (cli_input_read(in, b + o, 1 << 20, &g, why, sizeof why) == 0 && g)
        o += g;
    size_t hdr = strlen("id,name,value\n");
    cr_assert_eq(o, 2 * n - hdr);
    cr_assert(memcmp(b, text, n) == 0 && memcmp(b + n, text + hdr, n - hdr) == 0);
    cli_input_stats st;
    cli_input_get_stats(in, &st);
    cr_assert_eq(st.files, 2);
    cr_assert_eq(st.compressed, 1);
    cr_assert_eq(st.text_bytes, 2 * n - hdr);
    cr_assert_eq(st.inflated_bytes, n);
    cr_assert_eq(st.headers_dropped, 1);
    cli_input_close(in);
    free(b);
    free(text);
}

/* Files decode on two threads: still joined in order, and an error surfaces at its own file. */
Test(input, many_compressed_files_in_order) {
    char *want = malloc(1 << 22);
    size_t wl = 0;
    const char *p[6];
    for (int f = 0; f < 6; f++) {
        size_t n;
        char *t = make_text(150000 + 40000 * (size_t)f, 20 + (unsigned)f, &n);
        char plain[32], comp[32];
        snprintf(plain, sizeof plain, "m%d.csv", f);
        snprintf(comp, sizeof comp, "m%d.csv.%s", f, exts[f % 4]);
        write_file(plain, t, n);
        compress(f % 4, plain, comp);
        p[f] = strdup(path(comp));
        size_t hdr = f ? strlen("id,name,value\n") : 0;
        memcpy(want + wl, t + hdr, n - hdr);
        wl += n - hdr;
        free(t);
    }
    const size_t caps[] = {1 << 20, 333, 65536};
    char *got, why[512];
    size_t gl;
    cr_assert_eq(input_all(p, 6, CLI_ENC_AUTO, true, caps, 3, &got, &gl, why), 0, "%s", why);
    cr_assert(gl == wl && memcmp(got, want, wl) == 0, "%zu bytes of %zu", gl, wl);
    free(got);
    /* the fourth file truncated: everything before it comes out, then its error */
    size_t cl;
    char *c3 = read_all(p[3], &cl);
    write_file("m3.trunc", c3, cl / 2);
    free(c3);
    const char *pt[] = {p[0], p[1], p[2], path("m3.trunc"), p[4], p[5]};
    cr_assert_eq(input_all(pt, 6, CLI_ENC_AUTO, true, caps, 3, &got, &gl, why), AQ_EPARSE);
    cr_assert(strstr(why, "m3.trunc"), "%s", why);
    free(got);
    for (int f = 0; f < 6; f++)
        free((char *)p[f]);
    free(want);
}

/* A line of the joined text maps back to its file and line there. */
Test(input, joined_lines_locate_their_file) {
    write_str("l1.csv", "a,b\n1,2\n");
    write_str("l2.csv", "a,b\n3,4\n5,6\n");
    write_str("l3.csv", "a,b\n7,8");
    write_str("l4.csv", "\xef\xbb\xbf"
                        "a,b\n9,10\n");
    sh("gzip '%s'%s", path("l3.csv"), "");
    const char *p[] = {path("l1.csv"), path("l2.csv"), path("l3.csv.gz"), path("l4.csv")};
    cli_input *in;
    char why[512];
    cr_assert_eq(cli_input_open(&in, p, 4, CLI_ENC_AUTO, why, sizeof why), 0, "%s", why);
    aq_csv_dialect d = {.sep = ',', .quote = '"'};
    cli_input_set_dialect(in, &d, true, false, why, sizeof why);
    char buf[256];
    size_t o = 0, g;
    while (cli_input_read(in, buf + o, 7, &g, why, sizeof why) == 0 && g)
        o += g;
    cr_assert(o == 25 && memcmp(buf, "a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n", 25) == 0, "'%.*s'", (int)o,
              buf);
    const struct {
        uint64_t line;
        int file;
        uint64_t fline;
    } want[] = {{1, 0, 1}, {2, 0, 2}, {3, 1, 2}, {4, 1, 3}, {5, 2, 2}, {6, 3, 2}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint64_t fl;
        const char *f = cli_input_locate(in, want[i].line, &fl);
        cr_assert(strcmp(f, p[want[i].file]) == 0 && fl == want[i].fline, "line %llu: %s line %llu",
                  (unsigned long long)want[i].line, f, (unsigned long long)fl);
    }
    cli_input_close(in);
}

Test(input, other_archives_are_named_in_the_refusal) {
    write_file("z.csv", "PK\x03\x04\x14\0\0\0", 8);
    const char *p[] = {path("z.csv")};
    cli_input *in;
    char why[512];
    cr_assert_eq(cli_input_open(&in, p, 1, CLI_ENC_AUTO, why, sizeof why), AQ_EINVAL);
    cr_assert(strstr(why, "z.csv is a zip archive"), "%s", why);
}

/* --fill over differing headers: their union, every row rewritten into it. */
Test(input, fill_unites_differing_headers) {
    write_str("1.csv", "a,b\n1,x\n");
    write_str("2.csv", "b,c\n\"y,1\",5\n7,8,9\n");
    write_str("3.csv", "c,a,b\n6,2,z\n");
    sh("gzip '%s'%s", path("3.csv"), "");
    write_str("4.csv", "a,b,c\n3,w,4\n");
    const char *p[] = {path("1.csv"), path("2.csv"), path("3.csv.gz"), path("4.csv")};
    const size_t caps[][2] = {{65536, 65536}, {1, 3}};
    for (int c = 0; c < 2; c++) {
        char *got, why[512];
        size_t gl;
        cr_assert_eq(input_fill(p, 4, CLI_ENC_AUTO, true, true, caps[c], 2, &got, &gl, why), 0,
                     "%s", why);
        const char *want = "a,b,c\n1,x,\n,\"y,1\",5\n,7,8,9\n2,z,6\n3,w,4\n";
        cr_assert(gl == strlen(want) && memcmp(got, want, gl) == 0, "got '%.*s'", (int)gl, got);
        free(got);
    }
    /* stdin after the first file cannot have its header read ahead */
    cr_assert_not_null(freopen(path("2.csv"), "r", stdin));
    const char *ps[] = {path("1.csv"), "-"};
    cli_input *in;
    char why[512];
    cr_assert_eq(cli_input_open(&in, ps, 2, CLI_ENC_AUTO, why, sizeof why), 0, "%s", why);
    aq_csv_dialect d = {.sep = ',', .quote = '"'};
    cr_assert_eq(cli_input_set_dialect(in, &d, true, true, why, sizeof why), AQ_EINVAL);
    cr_assert(strstr(why, "stdin"), "%s", why);
    cli_input_close(in);
    /* same headers: nothing rewritten */
    const char *pe[] = {path("4.csv"), path("4.csv")};
    char *got;
    size_t gl;
    cr_assert_eq(input_fill(pe, 2, CLI_ENC_AUTO, true, true, caps[0], 2, &got, &gl, why), 0);
    cr_assert(gl == 18 && memcmp(got, "a,b,c\n3,w,4\n3,w,4\n", 18) == 0, "'%.*s'", (int)gl, got);
    free(got);
}

Test(input, sniff_by_content_not_name) {
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"\x1f\x8b\x08", 3), CLI_FMT_GZIP);
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"\x28\xb5\x2f\xfd", 4), CLI_FMT_ZSTD);
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"\x50\x2a\x4d\x18", 4), CLI_FMT_ZSTD);
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"BZh9", 4), CLI_FMT_BZIP2);
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"BZh0", 4), CLI_FMT_PLAIN);
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"\xfd"
                                                "7zXZ\0",
                               6),
                 CLI_FMT_XZ);
    cr_assert_eq(cli_fmt_sniff((const uint8_t *)"a,b\n", 4), CLI_FMT_PLAIN);
    /* a gzip file named .csv is still gzip */
    write_str("x.csv", "a\n1\n");
    sh("gzip -c '%s' > '%s'", path("x.csv"), path("y.csv"));
    const char *p[] = {path("y.csv")};
    const size_t caps[] = {4096};
    char *got, why[512];
    size_t gl;
    cr_assert_eq(input_all(p, 1, CLI_ENC_AUTO, true, caps, 1, &got, &gl, why), 0, "%s", why);
    cr_assert(gl == 4 && memcmp(got, "a\n1\n", 4) == 0);
    free(got);
}

/* All of an input's text with the table's preamble and field count given, as the parse does. */
static int input_table(const char *const *paths, size_t np, bool header, uint64_t skip,
                       uint32_t ncols, char **out, size_t *len, char *why) {
    cli_input *in;
    int err = cli_input_open(&in, paths, np, CLI_ENC_AUTO, why, 512);
    if (err)
        return err;
    aq_csv_dialect d = {.sep = ',', .quote = '"'};
    cli_input_set_table(in, skip, ncols);
    cr_assert_eq(cli_input_set_dialect(in, &d, header, false, why, 512), 0);
    size_t cap = 1 << 16, o = 0, got;
    char *b = malloc(cap);
    while ((err = cli_input_read(in, b + o, 13, &got, why, 512)) == 0 && got)
        o += got;
    cli_input_close(in);
    *out = b;
    *len = o;
    return err;
}

/* Later files' preambles (titles, notes, blank lines, each file's own length) go with their
 * headers; line numbers still locate the file's own lines; a later file whose header is not
 * among its first rows is named with the row where the first file's stood. */
Test(input, later_files_preambles_are_dropped_with_their_headers) {
    write_str("p1.csv", "Report A\nmade today\n\nid,v\n1,a\n2,b\n");
    write_str("p2.csv", "Report B\n\nid,v\n3,c\n");
    write_str("p3.csv", "id,v\n4,d\n");
    sh("gzip -c '%s' > '%s'", path("p2.csv"), path("p2.csv.gz"));
    const char *p[] = {path("p1.csv"), path("p2.csv.gz"), path("p3.csv")};
    char *got, why[512];
    size_t gl;
    cr_assert_eq(input_table(p, 3, true, 3, 2, &got, &gl, why), 0, "%s", why);
    const char *want = "Report A\nmade today\n\nid,v\n1,a\n2,b\n3,c\n4,d\n";
    cr_assert(gl == strlen(want) && memcmp(got, want, gl) == 0, "got '%.*s'", (int)gl, got);
    free(got);
    /* without a header: lines before a later file's first row of the table's width */
    write_str("n1.csv", "Title\n1,2,3\n4,5,6\n");
    write_str("n2.csv", "Other title\nmore, notes\n7,8,9\n");
    const char *pn[] = {path("n1.csv"), path("n2.csv")};
    cr_assert_eq(input_table(pn, 2, false, 1, 3, &got, &gl, why), 0, "%s", why);
    const char *wantn = "Title\n1,2,3\n4,5,6\n7,8,9\n";
    cr_assert(gl == strlen(wantn) && memcmp(got, wantn, gl) == 0, "got '%.*s'", (int)gl, got);
    free(got);
    /* a header that differs: named at the row where the first file's header stood */
    write_str("p4.csv", "Report D\nmade today\n\nid,w\n5,e\n");
    const char *pd[] = {path("p1.csv"), path("p4.csv")};
    cr_assert_eq(input_table(pd, 2, true, 3, 2, &got, &gl, why), AQ_EPARSE);
    cr_assert(strstr(why, "column 2: 'w' where"), "%s", why);
    free(got);
}
