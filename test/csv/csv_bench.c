/* csv_bench FILE [REPEAT]: throughput of each stage of the CSV pipeline on one file, in one
 * thread: cut into 4 MiB pieces, guess the setup, parse pieces into chunks, encode them, export.
 * Prints MB/s per stage (file bytes / time) and the encoded size against the raw size.
 * csv_bench --digest FILE: one line per final chunk (piece, column, encoded bytes, FNV-1a of the
 * encoding) and nothing else, so two builds' encodings of a file can be compared with diff. */
#include "aq_csv_export.h"
#include "csv_frame.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_piece(void *ctx, const char *p, size_t len, uint64_t first_line, uint64_t i) {
    (void)p;
    (void)first_line;
    (void)i;
    *(size_t *)ctx += len;
    return 0;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int digest(const csv_frame *f) {
    for (size_t i = 0; i < f->npieces; i++)
        for (uint32_t j = 0; j < f->setup.ncols; j++) {
            uint8_t *b;
            size_t bl;
            if (aq_csv_col_encode(&f->chunks[i][j], &b, &bl) != 0)
                return 1;
            printf("%zu %u %zu %016llx\n", i, j, bl, (unsigned long long)fnv1a(b, bl));
            free(b);
        }
    return 0;
}

int main(int argc, char **argv) {
    bool dig = argc > 1 && strcmp(argv[1], "--digest") == 0;
    if (dig) {
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: csv_bench FILE [REPEAT] | csv_bench --digest FILE\n");
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    size_t len;
    char *data = csv_read_file(argv[1], &len);
    if (!data) {
        perror(argv[1]);
        return 1;
    }
    double mb = (double)len / 1e6;
    csv_frame f;
    aq_csv_err err = {0};
    if (csv_frame_load(data, len, NULL, 4u << 20, &f, &err)) {
        fprintf(stderr, "%s: %s\n", argv[1], err.msg);
        return 1;
    }
    if (dig) {
        int rc = digest(&f);
        csv_frame_free(&f);
        free(data);
        return rc;
    }
    double best_cut = 1e9, best_parse = 1e9, best_enc = 1e9, best_exp = 1e9, best_setup = 1e9;
    size_t enc_bytes = 0;
    for (int rep = 0; rep < reps; rep++) {
        aq_csv_split sp;
        size_t seen = 0;
        double t0 = now();
        aq_csv_split_init(&sp, &f.setup.d, 4u << 20, count_piece, &seen);
        aq_csv_split_push(&sp, data, len, NULL);
        aq_csv_split_finish(&sp, NULL);
        aq_csv_split_free(&sp);
        double t1 = now();
        aq_csv_sample sm = {data, len < (1u << 20) ? len : (1u << 20), true};
        aq_csv_setup s;
        if (len > sm.len) {
            size_t off;
            sm.len = off = 0;
            sm.len = aq_csv_sample_trim(data, 1u << 20, &off) + off;
        }
        aq_csv_setup_guess(&sm, 1, NULL, &s, NULL);
        aq_csv_setup_free(&s);
        double t2 = now();
        for (size_t i = 0; i < f.npieces; i++) {
            aq_csv_piece pc = {f.piece[i], f.piece_len[i], f.first_line[i], i == 0};
            aq_csv_col *cols;
            if (aq_csv_parse(&pc, &f.setup, NULL, NULL, &cols, &err) == 0)
                aq_csv_cols_free(cols, f.setup.ncols);
        }
        double t3 = now();
        enc_bytes = 0;
        for (size_t i = 0; i < f.npieces; i++)
            for (uint32_t j = 0; j < f.setup.ncols; j++) {
                uint8_t *b;
                size_t bl;
                if (aq_csv_col_encode(&f.chunks[i][j], &b, &bl) == 0) {
                    enc_bytes += bl;
                    free(b);
                }
            }
        double t4 = now();
        aq_wr w;
        aq_wr_init(&w);
        for (size_t i = 0; i < f.npieces; i++)
            aq_csv_export(f.chunks[i], f.setup.ncols, NULL, 0, f.chunks[i][0].rows, NULL, &w);
        aq_wr_free(&w);
        double t5 = now();
        best_cut = t1 - t0 < best_cut ? t1 - t0 : best_cut;
        best_setup = t2 - t1 < best_setup ? t2 - t1 : best_setup;
        best_parse = t3 - t2 < best_parse ? t3 - t2 : best_parse;
        best_enc = t4 - t3 < best_enc ? t4 - t3 : best_enc;
        best_exp = t5 - t4 < best_exp ? t5 - t4 : best_exp;
    }
    printf("%s: %.2f MB, %llu rows x %u cols, %zu pieces\n", argv[1], mb,
           (unsigned long long)f.rows, f.setup.ncols, f.npieces);
    printf("  cut %.0f MB/s, setup (1 MiB sample) %.1f ms, parse %.0f MB/s, encode %.0f MB/s, "
           "export %.0f MB/s, encoded %.2f MB (%.0f%% of raw)\n",
           mb / best_cut, best_setup * 1e3, mb / best_parse, mb / best_enc, mb / best_exp,
           (double)enc_bytes / 1e6, 100.0 * (double)enc_bytes / (double)len);
    csv_frame_free(&f);
    free(data);
    return 0;
}
