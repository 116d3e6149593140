/* libaquifer against a real cluster: the cluster is started by lib_client.sh, which runs this
 * binary with AQUIFER_CONF naming it and AQ_BIN naming the aquifer command.
 *
 * Frames: every H2O smalldata file is parsed through the library, its columns read into arrays,
 * and each value compared with what `aquifer export` writes for the frame (the export's CSV read
 * back with the frame's types forced, by the project's own CSV parser).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aq_csv_col.h"
#include "aq_csv_setup.h"
#include "aquifer.h"

static aquifer *open_client(void) {
    aquifer *a = NULL;
    int err = aquifer_open(NULL, &a);
    cr_assert_eq(err, 0, "open: %s", a ? aquifer_errmsg(a) : "no memory");
    return a;
}

static char *read_cmd(const char *cmd, size_t *len) {
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    *len = n;
    return buf;
}

/* ---- errors ---- */

Test(client, open_bad_config_names_the_file) {
    aquifer *a = NULL;
    int err = aquifer_open("/nonexistent/cluster.conf", &a);
    cr_assert_eq(err, AQUIFER_ECONFIG, "got %d (%s)", err, aquifer_strerror(err));
    cr_assert(strstr(aquifer_errmsg(a), "/nonexistent/cluster.conf"), "%s", aquifer_errmsg(a));
    aquifer_close(a);
}

Test(client, frame_not_found) {
    aquifer *a = open_client();
    aquifer_frame *f = NULL;
    int err = aquifer_frame_open(a, "no_such_frame", &f);
    cr_assert_eq(err, AQUIFER_ENOTFOUND, "got %d: %s", err, aquifer_errmsg(a));
    cr_assert_null(f);
    cr_assert(strstr(aquifer_errmsg(a), "no_such_frame"), "%s", aquifer_errmsg(a));
    aquifer_close(a);
}

Test(client, stat_not_found_and_bad_key) {
    aquifer *a = open_client();
    aquifer_stat st;
    int err = aquifer_stat_key(a, "lib/none", &st);
    cr_assert_eq(err, AQUIFER_ENOTFOUND, "got %d: %s", err, aquifer_errmsg(a));
    cr_assert(strstr(aquifer_errmsg(a), "stat lib/none"), "%s", aquifer_errmsg(a));
    err = aquifer_stat_key(a, "", &st);
    cr_assert_eq(err, AQUIFER_EKEY, "got %d: %s", err, aquifer_errmsg(a));
    aquifer_close(a);
}

/* ---- values ---- */

static uint8_t *pattern(size_t n, unsigned seed) {
    uint8_t *p = malloc(n ? n : 1);
    uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
    return p;
}

Test(values, round_trips_0_to_20mib, .timeout = 240) {
    static const size_t sizes[] = {0, 1, 1400, 1401, 4194304, 4194305, 20971520};
    aquifer *a = open_client();
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char key[64];
        snprintf(key, sizeof key, "lib/%d/v%zu", (int)getpid(), n);
        uint8_t *v = pattern(n, (unsigned)i);
        aquifer_written w;
        int err = aquifer_put(a, key, v, n, &w);
        cr_assert_eq(err, 0, "put %zu: %s", n, aquifer_errmsg(a));
        cr_assert_eq(w.copies, 2, "put %zu: %u copies", n, w.copies);
        cr_assert_eq(w.wanted, 2);
        void *got = NULL;
        size_t glen = 99;
        err = aquifer_get(a, key, &got, &glen);
        cr_assert_eq(err, 0, "get %zu: %s", n, aquifer_errmsg(a));
        cr_assert_not_null(got);
        cr_assert_eq(glen, n);
        cr_assert(memcmp(got, v, n) == 0, "get %zu: bytes differ", n);
        aquifer_free(got);
        aquifer_stat st;
        err = aquifer_stat_key(a, key, &st);
        cr_assert_eq(err, 0, "stat %zu: %s", n, aquifer_errmsg(a));
        cr_assert_eq(st.size, n);
        cr_assert_eq(st.large, n > 4194304);
        cr_assert_eq(st.copies, 2);
        {
            /* the digest as the command's stat prints it */
            char cmd[1400], hex[33];
            snprintf(cmd, sizeof cmd, "'%s' stat --json '%s'", getenv("AQ_BIN"), key);
            size_t jl;
            char *json = read_cmd(cmd, &jl);
            for (int b = 0; b < 16; b++)
                snprintf(hex + 2 * b, 3, "%02x", st.digest[b]);
            char want[64];
            snprintf(want, sizeof want, "\"digest\": \"%s\"", hex);
            json = realloc(json, jl + 1);
            json[jl] = 0;
            cr_assert(strstr(json, want), "%s not in %s", want, json);
            free(json);
        }
        /* through file descriptors: a pipe in, a temporary file out */
        int pfd[2];
        cr_assert_eq(pipe(pfd), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            size_t off = 0;
            while (off < n) {
                ssize_t wr = write(pfd[1], v + off, n - off);
                if (wr <= 0)
                    _exit(1);
                off += (size_t)wr;
            }
            _exit(0);
        }
        close(pfd[1]);
        char key2[80];
        snprintf(key2, sizeof key2, "%s.fd", key);
        err = aquifer_put_fd(a, key2, pfd[0], NULL);
        close(pfd[0]);
        int status;
        waitpid(pid, &status, 0);
        cr_assert_eq(err, 0, "put_fd %zu: %s", n, aquifer_errmsg(a));
        FILE *tf = tmpfile();
        err = aquifer_get_fd(a, key2, fileno(tf));
        cr_assert_eq(err, 0, "get_fd %zu: %s", n, aquifer_errmsg(a));
        fflush(tf);
        cr_assert_eq((size_t)lseek(fileno(tf), 0, SEEK_END), n);
        uint8_t *back = malloc(n ? n : 1);
        cr_assert_eq((size_t)pread(fileno(tf), back, n, 0), n);
        cr_assert(memcmp(back, v, n) == 0, "get_fd %zu: bytes differ", n);
        fclose(tf);
        free(back);
        cr_assert_eq(aquifer_rm(a, key2, &w), 0, "%s", aquifer_errmsg(a));
        free(v);
    }
    aquifer_close(a);
}

Test(values, rm_then_not_found) {
    aquifer *a = open_client();
    char key[64];
    snprintf(key, sizeof key, "lib/%d/gone", (int)getpid());
    cr_assert_eq(aquifer_put(a, key, "x", 1, NULL), 0, "%s", aquifer_errmsg(a));
    aquifer_written w;
    cr_assert_eq(aquifer_rm(a, key, &w), 0, "%s", aquifer_errmsg(a));
    cr_assert_eq(w.copies, 2);
    void *got = NULL;
    size_t len = 0;
    int err = aquifer_get(a, key, &got, &len);
    cr_assert_eq(err, AQUIFER_ENOTFOUND, "got %d: %s", err, aquifer_errmsg(a));
    cr_assert_null(got);
    cr_assert(strstr(aquifer_errmsg(a), key), "%s", aquifer_errmsg(a));
    aquifer_close(a);
}

Test(values, min_copies_not_reached_is_elimit) {
    aquifer *a = open_client();
    char key[64];
    snprintf(key, sizeof key, "lib/%d/three", (int)getpid());
    cr_assert_eq(aquifer_set_min_copies(a, 256), AQUIFER_EINVAL);
    cr_assert(strstr(aquifer_errmsg(a), "256"), "%s", aquifer_errmsg(a));
    cr_assert_eq(aquifer_set_min_copies(a, 3), 0);
    aquifer_written w;
    int err = aquifer_put(a, key, "abc", 3, &w);
    cr_assert_eq(err, AQUIFER_ELIMIT, "got %d: %s", err, aquifer_errmsg(a));
    cr_assert_eq(w.copies, 2);
    cr_assert(strstr(aquifer_errmsg(a), "min_copies 3"), "%s", aquifer_errmsg(a));
    aquifer_close(a);
}

Test(values, unreachable_names_the_node) {
    aquifer *a = NULL;
    int err = aquifer_open(getenv("AQ_DEAD_CONF"), &a);
    cr_assert_eq(err, 0, "%s", aquifer_errmsg(a));
    void *got = NULL;
    size_t len;
    err = aquifer_get(a, "lib/any", &got, &len);
    cr_assert_eq(err, AQUIFER_EUNAVAIL, "got %d (%s): %s", err, aquifer_errname(err),
                 aquifer_errmsg(a));
    cr_assert(strstr(aquifer_errmsg(a), "dead1") && strstr(aquifer_errmsg(a), "127.0.0.1:"), "%s",
              aquifer_errmsg(a));
    aquifer_close(a);
}

Test(values, list_iterator) {
    aquifer *a = open_client();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "lib/%d/ls/", (int)getpid());
    for (int i = 0; i < 30; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s%02d", prefix, i);
        cr_assert_eq(aquifer_put(a, key, key, (size_t)i, NULL), 0, "%s", aquifer_errmsg(a));
    }
    char big[96];
    snprintf(big, sizeof big, "%szz", prefix);
    uint8_t *v = pattern(5000000, 7);
    cr_assert_eq(aquifer_put(a, big, v, 5000000, NULL), 0, "%s", aquifer_errmsg(a));
    free(v);
    aquifer_list *it;
    cr_assert_eq(aquifer_list_open(a, prefix, &it), 0, "%s", aquifer_errmsg(a));
    const char *key;
    size_t klen;
    uint64_t size;
    int n = 0, r;
    while ((r = aquifer_list_next(it, &key, &klen, &size)) == 1) {
        char want[96];
        if (n < 30) {
            snprintf(want, sizeof want, "%s%02d", prefix, n);
            cr_assert_eq(size, (uint64_t)n);
        } else {
            snprintf(want, sizeof want, "%s", big);
            cr_assert_eq(size, 5000000);
        }
        cr_assert_str_eq(key, want);
        cr_assert_eq(klen, strlen(want));
        n++;
    }
    cr_assert_eq(r, 0);
    cr_assert_eq(n, 31);
    aquifer_list_close(it);
    aquifer_close(a);
}

Test(batch, many_in_flight, .timeout = 180) {
    aquifer *a = open_client();
    aquifer_batch *b;
    cr_assert_eq(aquifer_batch_new(a, 50, &b), 0, "%s", aquifer_errmsg(a));
    enum { N = 300, SZ = 4096 };
    char key[64];
    for (int i = 0; i < N; i++) {
        uint8_t *v = pattern(SZ, (unsigned)i);
        snprintf(key, sizeof key, "lib/%d/b%03d", (int)getpid(), i);
        cr_assert_eq(aquifer_batch_put(b, key, v, SZ, (void *)(intptr_t)i), 0, "%s",
                     aquifer_errmsg(a));
        free(v);
    }
    bool seen[N] = {0};
    aquifer_result r;
    int got = 0;
    while (aquifer_batch_next(b, &r) == 1) {
        cr_assert_eq(r.op, AQUIFER_OP_PUT);
        cr_assert_eq(r.err, 0, "%s: %s", r.key, r.errmsg);
        cr_assert_eq(r.written.copies, 2);
        int i = (int)(intptr_t)r.ud;
        cr_assert(!seen[i]);
        seen[i] = true;
        got++;
    }
    cr_assert_eq(got, N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "lib/%d/b%03d", (int)getpid(), i);
        cr_assert_eq(aquifer_batch_get(b, key, (void *)(intptr_t)i), 0);
    }
    cr_assert_eq(aquifer_batch_get(b, "lib/none/batch", (void *)(intptr_t)-1), 0);
    got = 0;
    while (aquifer_batch_next(b, &r) == 1) {
        int i = (int)(intptr_t)r.ud;
        if (i < 0) {
            cr_assert_eq(r.err, AQUIFER_ENOTFOUND, "%d: %s", r.err, r.errmsg);
            cr_assert(strstr(r.errmsg, "lib/none/batch"), "%s", r.errmsg);
            cr_assert_null(r.data);
            continue;
        }
        cr_assert_eq(r.err, 0, "%s: %s", r.key, r.errmsg);
        cr_assert_eq(r.len, SZ);
        uint8_t *v = pattern(SZ, (unsigned)i);
        cr_assert(memcmp(r.data, v, SZ) == 0, "%s: bytes differ", r.key);
        free(v);
        aquifer_free(r.data);
        got++;
    }
    cr_assert_eq(got, N);
    aquifer_batch_free(b);
    aquifer_close(a);
}

/* Values at the edges of the batch's small path (empty, one byte, exactly one chunk) and past it
 * (one chunk and a byte, which goes whole), put and read back through one batch. */
Test(batch, sizes_around_a_chunk, .timeout = 180) {
    aquifer *a = open_client();
    aquifer_batch *b;
    cr_assert_eq(aquifer_batch_new(a, 8, &b), 0, "%s", aquifer_errmsg(a));
    const size_t sizes[] = {0, 1, 4096, 4u << 20, (4u << 20) + 1};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    char key[64];
    for (int i = 0; i < NS; i++) {
        uint8_t *v = pattern(sizes[i] ? sizes[i] : 1, (unsigned)i + 7);
        snprintf(key, sizeof key, "lib/%d/s%d", (int)getpid(), i);
        cr_assert_eq(aquifer_batch_put(b, key, v, sizes[i], (void *)(intptr_t)i), 0, "%s",
                     aquifer_errmsg(a));
        free(v);
    }
    aquifer_result r;
    int got = 0;
    while (aquifer_batch_next(b, &r) == 1) {
        cr_assert_eq(r.err, 0, "%s: %s", r.key, r.errmsg);
        got++;
    }
    cr_assert_eq(got, NS);
    for (int i = 0; i < NS; i++) {
        snprintf(key, sizeof key, "lib/%d/s%d", (int)getpid(), i);
        cr_assert_eq(aquifer_batch_get(b, key, (void *)(intptr_t)i), 0);
    }
    got = 0;
    while (aquifer_batch_next(b, &r) == 1) {
        int i = (int)(intptr_t)r.ud;
        cr_assert_eq(r.err, 0, "%s: %s", r.key, r.errmsg);
        cr_assert_eq(r.len, sizes[i], "%s: %zu bytes", r.key, r.len);
        uint8_t *v = pattern(sizes[i] ? sizes[i] : 1, (unsigned)i + 7);
        cr_assert(memcmp(r.data, v, sizes[i]) == 0, "%s: bytes differ", r.key);
        free(v);
        aquifer_free(r.data);
        got++;
    }
    cr_assert_eq(got, NS);
    aquifer_batch_free(b);
    aquifer_close(a);
}

/* ---- frames ---- */

static bool cell_na(const aquifer_column *c, uint64_t r) {
    return (c->na[r / 8] >> (r % 8)) & 1;
}

/* Column j of frame f equals column j of the export, parsed with the frame's types forced. */
static void check_column(const char *file, const aquifer_column *c, const aq_csv_col *e) {
    cr_assert_eq(c->rows, e->rows, "%s %s: rows %llu vs %u", file, c->name,
                 (unsigned long long)c->rows, e->rows);
    uint64_t na = 0;
    for (uint64_t r = 0; r < c->rows; r++) {
        bool cn = cell_na(c, r), en = aq_csv_col_is_na(e, (uint32_t)r);
        na += cn;
        cr_assert_eq(cn, en, "%s %s row %llu: NA %d vs export %d", file, c->name,
                     (unsigned long long)r, cn, en);
        switch (c->type) {
        case AQUIFER_INT:
            cr_assert_eq(((const int64_t *)c->values)[r], cn ? 0 : aq_csv_col_int(e, (uint32_t)r),
                         "%s %s row %llu", file, c->name, (unsigned long long)r);
            break;
        case AQUIFER_TIME:
            cr_assert_eq(((const int64_t *)c->values)[r],
                         cn ? INT64_MIN : aq_csv_col_int(e, (uint32_t)r), "%s %s row %llu", file,
                         c->name, (unsigned long long)r);
            break;
        case AQUIFER_FLOAT: {
            double x = ((const double *)c->values)[r], y = aq_csv_col_num(e, (uint32_t)r);
            cr_assert(cn ? isnan(x) : (x == y || (isnan(x) && isnan(y))),
                      "%s %s row %llu: %.17g vs %.17g", file, c->name, (unsigned long long)r, x, y);
            break;
        }
        case AQUIFER_CAT: {
            int32_t code = ((const int32_t *)c->values)[r];
            if (cn) {
                cr_assert_eq(code, -1);
                break;
            }
            cr_assert(code >= 0 && (uint32_t)code < c->nlevels);
            size_t el;
            const char *es = aq_csv_col_str(e, (uint32_t)r, &el);
            cr_assert(strlen(c->levels[code]) == el && memcmp(c->levels[code], es, el) == 0,
                      "%s %s row %llu: %s vs %.*s", file, c->name, (unsigned long long)r,
                      c->levels[code], (int)el, es);
            break;
        }
        case AQUIFER_STR: {
            uint64_t a = c->offsets[r], b = c->offsets[r + 1];
            size_t el;
            const char *es = aq_csv_col_str(e, (uint32_t)r, &el);
            cr_assert(b - a == (cn ? 0 : el) && (cn || memcmp(c->bytes + a, es, el) == 0),
                      "%s %s row %llu", file, c->name, (unsigned long long)r);
            break;
        }
        default:
            cr_assert(cn);
        }
    }
    cr_assert_eq(na, c->na_count, "%s %s: na_count", file, c->name);
}

/* aquifer_column_join of a STR column: its rows in order with a NUL between each two, and
 * EINVAL with nothing written when the buffer is one byte short; EINVAL for any other type. */
static void check_join(const char *file, const aquifer_column *c) {
    char probe = 'x';
    if (c->type != AQUIFER_STR) {
        cr_assert_eq(aquifer_column_join(c, 0, &probe, 1), AQUIFER_EINVAL);
        return;
    }
    size_t need = c->rows ? c->offsets[c->rows] - c->offsets[0] + c->rows - 1 : 0;
    char *buf = malloc(need + 1);
    memset(buf, 'x', need + 1);
    if (need > 0) {
        cr_assert_eq(aquifer_column_join(c, 0, buf, need - 1), AQUIFER_EINVAL);
        cr_assert_eq(buf[0], 'x', "%s %s: written though too short", file, c->name);
    }
    cr_assert_eq(aquifer_column_join(c, 0, buf, need), 0, "%s %s", file, c->name);
    size_t at = 0;
    for (uint64_t r = 0; r < c->rows; r++) {
        size_t len = c->offsets[r + 1] - c->offsets[r];
        cr_assert(memcmp(buf + at, c->bytes + c->offsets[r], len) == 0, "%s %s row %llu", file,
                  c->name, (unsigned long long)r);
        at += len;
        if (r + 1 < c->rows)
            cr_assert_eq(buf[at++], 0, "%s %s: no NUL after row %llu", file, c->name,
                         (unsigned long long)r);
    }
    cr_assert_eq(at, need);
    cr_assert_eq(buf[need], 'x', "%s %s: written past the end", file, c->name);
    free(buf);
}

/* file: under AQ_DATA_DIR, or an absolute path (its last component names the frame). */
static void frame_vs_export(aquifer *a, const char *file) {
    char path[1024], name[128];
    if (file[0] == '/') {
        snprintf(path, sizeof path, "%s", file);
        file = strrchr(file, '/') + 1;
    } else {
        snprintf(path, sizeof path, "%s/%s", getenv("AQ_DATA_DIR"), file);
    }
    snprintf(name, sizeof name, "lib_%d_%.60s", (int)getpid(), file);
    for (char *p = name; *p; p++)
        if (*p == '.')
            *p = '_';
    const char *paths[] = {path};
    aquifer_parse_opts po = {.name = name};
    aquifer_parse_result pr;
    int err = aquifer_parse(a, paths, 1, &po, &pr);
    cr_assert_eq(err, 0, "parse %s: %s", file, aquifer_errmsg(a));
    cr_assert_str_eq(pr.name, name);
    aquifer_frame *f = NULL;
    err = aquifer_frame_open(a, name, &f);
    cr_assert_eq(err, 0, "frame_open %s: %s", name, aquifer_errmsg(a));
    cr_assert_eq(aquifer_frame_nrows(f), pr.rows);
    cr_assert_eq(aquifer_frame_ncols(f), pr.ncols);
    err = aquifer_frame_fetch(f, NULL, 0);
    cr_assert_eq(err, 0, "fetch %s: %s", name, aquifer_errmsg(a));

    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' export '%s'", getenv("AQ_BIN"), name);
    size_t len;
    char *csv = read_cmd(cmd, &len);
    uint32_t nc = aquifer_frame_ncols(f);
    aq_csv_type_opt *to = calloc(nc, sizeof *to);
    char(*idx)[12] = calloc(nc, sizeof *idx);
    for (uint32_t j = 0; j < nc; j++) {
        snprintf(idx[j], sizeof idx[j], "%u", j + 1);
        aquifer_type t = aquifer_frame_col_type(f, j);
        to[j] = (aq_csv_type_opt){idx[j], t == AQUIFER_NONE ? AQ_CSV_T_STR : (aq_csv_type)t};
    }
    aq_csv_opts o = aq_csv_opts_default();
    o.sep = ',';
    o.header = AQ_CSV_HEADER_YES;
    o.quote = '"';
    o.escape = 0;
    o.comment = 0;
    o.skip = 0;
    o.skipsp = 0;
    o.decimal = '.';
    o.types = to;
    o.ntypes = nc;
    aq_csv_sample s = {csv, len, true};
    aq_csv_setup su;
    aq_csv_err pe = {0, ""};
    err = aq_csv_setup_guess(&s, 1, &o, &su, &pe);
    cr_assert_eq(err, 0, "%s: setup of the export: %s", file, pe.msg);
    cr_assert_eq(su.ncols, nc, "%s: export has %u columns, frame %u", file, su.ncols, nc);
    aq_csv_piece pc = {csv, len, 1, true};
    aq_csv_col *ec = NULL;
    err = aq_csv_parse(&pc, &su, su.types, NULL, &ec, &pe);
    cr_assert_eq(err, 0, "%s: parse of the export: %s", file, pe.msg);
    for (uint32_t j = 0; j < nc; j++) {
        const aquifer_column *c = aquifer_frame_column(f, j);
        cr_assert_not_null(c, "%s column %u: %s", file, j, aquifer_errmsg(a));
        cr_assert_str_eq(c->name, su.names[j]);
        cr_assert_eq((uintptr_t)c->na % 64, 0);
        check_column(file, c, &ec[j]);
        check_join(file, c);
    }
    aq_csv_cols_free(ec, nc);
    aq_csv_setup_free(&su);
    free(to);
    free(idx);
    free(csv);
    aquifer_frame_close(f);

    aquifer_frame_info *fi = NULL;
    size_t nf = 0;
    cr_assert_eq(aquifer_frames(a, &fi, &nf), 0, "%s", aquifer_errmsg(a));
    bool seen = false;
    for (size_t i = 0; i < nf; i++)
        seen |= strcmp(fi[i].name, name) == 0 && fi[i].rows == pr.rows;
    aquifer_frames_free(fi, nf);
    cr_assert(seen, "frames does not list %s", name);
    cr_assert_eq(aquifer_frame_rm(a, name), 0, "%s", aquifer_errmsg(a));
    cr_assert_eq(aquifer_frame_open(a, name, &f), AQUIFER_ENOTFOUND);
}

Test(frames, smalldata_equal_export, .timeout = 240) {
    static const char *files[] = {"iris_wheader.csv",   "prostate.csv",          "test_time.csv",
                                  "test_parse_mix.csv", "test_quote.csv",        "is_NA.csv",
                                  "covtype.20k.data",   "allyears2k_headers.csv"};
    aquifer *a = open_client();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        frame_vs_export(a, files[i]);
    aquifer_close(a);
}

/* Columns of 600,000 rows: every array but the NA bitmaps is 2 MiB or more, which the library
 * maps on its own (huge pages) rather than taking from malloc; each value still checked. */
Test(frames, columns_of_many_mib, .timeout = 240) {
    char path[] = "/tmp/aq-lib-big-XXXXXX.csv";
    int fd = mkstemps(path, 4);
    cr_assert(fd >= 0);
    FILE *w = fdopen(fd, "w");
    cr_assert(w);
    fprintf(w, "n,x,t,cat,s\n");
    static const char *cats[] = {"red", "green", "blue"};
    for (int r = 0; r < 600000; r++) {
        if (r % 97 == 5)
            fprintf(w, "%d,,2024-01-%02d,%s,row %d with \"quotes\"\n", -r, 1 + r % 28, cats[r % 3],
                    r);
        else
            fprintf(w, "%d,%d.25,2024-02-%02d,%s,text %d\n", r * 7, r, 1 + r % 28, cats[r % 3], r);
    }
    cr_assert_eq(fclose(w), 0);
    aquifer *a = open_client();
    frame_vs_export(a, path);
    aquifer_close(a);
    unlink(path);
}

/* Every file of the messy corpus (test/data/messy, beside the smalldata) that parses without
 * options: the library's arrays equal the export, whatever shape the file gave its columns. */
Test(frames, messy_corpus_equal_export, .timeout = 240) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../messy", getenv("AQ_DATA_DIR"));
    DIR *d = opendir(dir);
    cr_assert(d, "no %s", dir);
    aquifer *a = open_client();
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || strstr(e->d_name, ".expected.") || strcmp(dot, ".md") == 0 ||
            strcmp(dot, ".args") == 0)
            continue;
        char args[1400], path[1400];
        snprintf(args, sizeof args, "%s/%.*s.args", dir, (int)(dot - e->d_name), e->d_name);
        if (access(args, F_OK) == 0)
            continue; /* read with options of its own (messy.sh) */
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        frame_vs_export(a, path);
        n++;
    }
    closedir(d);
    aquifer_close(a);
    cr_assert_geq(n, 30, "only %zu files of the corpus read", n);
}

Test(frames, parse_existing_name_is_eexist) {
    aquifer *a = open_client();
    char path[1024], name[64];
    snprintf(path, sizeof path, "%s/iris_wheader.csv", getenv("AQ_DATA_DIR"));
    snprintf(name, sizeof name, "lib_dup_%d", (int)getpid());
    const char *paths[] = {path};
    aquifer_parse_opts po = {.name = name};
    cr_assert_eq(aquifer_parse(a, paths, 1, &po, NULL), 0, "%s", aquifer_errmsg(a));
    int err = aquifer_parse(a, paths, 1, &po, NULL);
    cr_assert_eq(err, AQUIFER_EEXIST, "got %d: %s", err, aquifer_errmsg(a));
    cr_assert(strstr(aquifer_errmsg(a), name), "%s", aquifer_errmsg(a));
    cr_assert_eq(aquifer_frame_rm(a, name), 0, "%s", aquifer_errmsg(a));
    aquifer_close(a);
}

/* A frame replaced under an open handle by one whose column has another type: the fetch fails with
 * a sentence naming the node, and the handle can still be closed (the reply was freed twice). */
Test(frames, replaced_under_an_open_handle_fails_cleanly) {
    aquifer *a = open_client();
    char path[1024], name[64];
    snprintf(path, sizeof path, "%s/iris_wheader.csv", getenv("AQ_DATA_DIR"));
    snprintf(name, sizeof name, "lib_swap_%d", (int)getpid());
    const char *paths[] = {path};
    aquifer_parse_opts po = {.name = name};
    cr_assert_eq(aquifer_parse(a, paths, 1, &po, NULL), 0, "%s", aquifer_errmsg(a));
    aquifer_frame *f;
    cr_assert_eq(aquifer_frame_open(a, name, &f), 0, "%s", aquifer_errmsg(a));
    cr_assert_eq(aquifer_frame_rm(a, name), 0, "%s", aquifer_errmsg(a));
    aquifer_parse_opts po2 = {.name = name, .types = "sepal_len:string"};
    cr_assert_eq(aquifer_parse(a, paths, 1, &po2, NULL), 0, "%s", aquifer_errmsg(a));
    uint32_t col0 = 0;
    int err = aquifer_frame_fetch(f, &col0, 1);
    cr_assert_eq(err, AQUIFER_EPROTO, "got %d: %s", err, aquifer_errmsg(a));
    cr_assert(strstr(aquifer_errmsg(a), "sepal_len") && strstr(aquifer_errmsg(a), "from "), "%s",
              aquifer_errmsg(a));
    aquifer_frame_close(f);
    cr_assert_eq(aquifer_frame_rm(a, name), 0, "%s", aquifer_errmsg(a));
    aquifer_close(a);
}

/* ---- a node down: lib_client.sh runs failover::before, stops one node, then failover::after ----
 */

static void frame_sums(aquifer *a, const char *name, double *isum, uint64_t *nas) {
    aquifer_frame *f = NULL;
    cr_assert_eq(aquifer_frame_open(a, name, &f), 0, "%s", aquifer_errmsg(a));
    cr_assert_eq(aquifer_frame_fetch(f, NULL, 0), 0, "%s", aquifer_errmsg(a));
    *isum = 0;
    *nas = 0;
    for (uint32_t j = 0; j < aquifer_frame_ncols(f); j++) {
        const aquifer_column *c = aquifer_frame_column(f, j);
        *nas += c->na_count;
        for (uint64_t r = 0; r < c->rows; r++)
            if (c->type == AQUIFER_INT)
                *isum += (double)((const int64_t *)c->values)[r];
            else if (c->type == AQUIFER_FLOAT && !cell_na(c, r))
                *isum += ((const double *)c->values)[r];
    }
    aquifer_frame_close(f);
}

Test(failover, before) {
    if (!getenv("AQ_SUMS"))
        cr_skip_test("run by lib_client.sh around a node stop");
    aquifer *a = open_client();
    char path[1024];
    snprintf(path, sizeof path, "%s/allyears2k_headers.csv", getenv("AQ_DATA_DIR"));
    const char *paths[] = {path};
    aquifer_parse_opts po = {.name = "lib_failover"};
    cr_assert_eq(aquifer_parse(a, paths, 1, &po, NULL), 0, "%s", aquifer_errmsg(a));
    double s;
    uint64_t nas;
    frame_sums(a, "lib_failover", &s, &nas);
    FILE *out = fopen(getenv("AQ_SUMS"), "w");
    cr_assert_not_null(out);
    fprintf(out, "%.17g %llu\n", s, (unsigned long long)nas);
    fclose(out);
    aquifer_close(a);
}

Test(failover, after) {
    if (!getenv("AQ_SUMS"))
        cr_skip_test("run by lib_client.sh around a node stop");
    aquifer *a = open_client();
    double s, want;
    uint64_t nas;
    unsigned long long want_na;
    FILE *in = fopen(getenv("AQ_SUMS"), "r");
    cr_assert_not_null(in);
    cr_assert_eq(fscanf(in, "%lg %llu", &want, &want_na), 2);
    fclose(in);
    frame_sums(a, "lib_failover", &s, &nas);
    cr_assert_eq(s, want, "%.17g vs %.17g", s, want);
    cr_assert_eq(nas, want_na);
    aquifer_close(a);
}
