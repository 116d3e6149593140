#include "csv_frame.h"

#include "aq_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *csv_read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

char *csv_data_path(const char *name) {
    const char *dir = getenv("AQ_DATA_DIR");
    if (!dir)
        dir = AQ_DEFAULT_DATA_DIR; /* the repository's own copy, for a binary run outside ctest */
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static int on_piece(void *ctx, const char *p, size_t len, uint64_t first_line, uint64_t index) {
    csv_frame *f = ctx;
    size_t n = f->npieces + 1;
    f->piece = realloc(f->piece, n * sizeof *f->piece);
    f->piece_len = realloc(f->piece_len, n * sizeof *f->piece_len);
    f->first_line = realloc(f->first_line, n * sizeof *f->first_line);
    if (!f->piece || !f->piece_len || !f->first_line || index != f->npieces)
        return AQ_ENOMEM;
    f->piece[f->npieces] = malloc(len + 1);
    memcpy(f->piece[f->npieces], p, len);
    f->piece_len[f->npieces] = len;
    f->first_line[f->npieces] = first_line;
    f->npieces = n;
    return 0;
}

int csv_frame_load(const char *data, size_t len, const aq_csv_opts *o, size_t max_piece,
                   csv_frame *f, aq_csv_err *err) {
    memset(f, 0, sizeof *f);
    /* samples: the first 1 MiB, then 64 KiB from the middle and the end, trimmed to whole rows */
    aq_csv_sample sm[3];
    size_t ns = 0;
    size_t first = len < (1u << 20) ? len : (1u << 20);
    if (first < len) {
        size_t off;
        size_t l = aq_csv_sample_trim(data, first, &off);
        sm[ns++] = (aq_csv_sample){data, off + l, true};
    } else {
        sm[ns++] = (aq_csv_sample){data, len, true};
    }
    if (len > (2u << 20)) {
        size_t starts[2] = {len / 2, len - (64u << 10)};
        for (int i = 0; i < 2; i++) {
            size_t off, l = aq_csv_sample_trim(data + starts[i], 64u << 10, &off);
            if (l)
                sm[ns++] = (aq_csv_sample){data + starts[i] + off, l, false};
        }
    }
    int rc = aq_csv_setup_guess(sm, ns, o, &f->setup, err);
    if (rc)
        return rc;
    aq_csv_split sp;
    if ((rc = aq_csv_split_init(&sp, &f->setup.d, max_piece, on_piece, f)) != 0)
        goto fail;
    sp.lenient = !f->setup.strict;
    sp.cr_rows = f->setup.cr_rows;
    /* feed in uneven blocks, as a stream would */
    size_t pos = 0, step = 4093;
    while (rc == 0 && pos < len) {
        size_t n = len - pos < step ? len - pos : step;
        rc = aq_csv_split_push(&sp, data + pos, n, err);
        pos += n;
        step = step * 3 % 100003 + 1;
    }
    if (rc == 0)
        rc = aq_csv_split_finish(&sp, err);
    aq_csv_split_free(&sp);
    if (rc)
        goto fail;
    uint32_t nc = f->setup.ncols;
    f->chunks = calloc(f->npieces + 1, sizeof *f->chunks);
    f->obs = calloc(nc, sizeof *f->obs);
    f->final = calloc(nc, sizeof *f->final);
    for (size_t i = 0; i < f->npieces; i++) {
        aq_csv_piece pc = {f->piece[i], f->piece_len[i], f->first_line[i], i == 0};
        if ((rc = aq_csv_parse(&pc, &f->setup, NULL, NULL, &f->chunks[i], err)) != 0)
            goto fail;
        for (uint32_t j = 0; j < nc; j++) {
            if (i == 0)
                f->obs[j] = f->chunks[i][j].obs;
            else
                aq_csv_obs_merge(&f->obs[j], &f->chunks[i][j].obs);
        }
        f->rows += f->chunks[i][0].rows;
    }
    for (uint32_t j = 0; j < nc; j++)
        f->final[j] = f->setup.forced[j] ? f->setup.types[j] : aq_csv_obs_final(&f->obs[j]);
    for (size_t i = 0; i < f->npieces; i++) {
        bool again = false;
        for (uint32_t j = 0; j < nc; j++) {
            if (f->chunks[i][j].type == f->final[j])
                continue;
            int w = aq_csv_col_widen(&f->chunks[i][j], f->final[j]);
            if (w == AQ_EINVAL)
                again = true;
            else if (w) {
                rc = w;
                goto fail;
            }
        }
        if (again) {
            aq_csv_piece pc = {f->piece[i], f->piece_len[i], f->first_line[i], i == 0};
            aq_csv_col *cols;
            if ((rc = aq_csv_parse(&pc, &f->setup, f->final, NULL, &cols, err)) != 0)
                goto fail;
            aq_csv_cols_free(f->chunks[i], nc);
            f->chunks[i] = cols;
            f->reparsed++;
        }
    }
    return 0;
fail:
    csv_frame_free(f);
    return rc;
}

void csv_frame_free(csv_frame *f) {
    for (size_t i = 0; i < f->npieces; i++) {
        free(f->piece[i]);
        if (f->chunks)
            aq_csv_cols_free(f->chunks[i], f->setup.ncols);
    }
    free(f->piece);
    free(f->piece_len);
    free(f->first_line);
    free(f->chunks);
    free(f->final);
    free(f->obs);
    aq_csv_setup_free(&f->setup);
    memset(f, 0, sizeof *f);
}

int csv_frame_locate(const csv_frame *f, uint64_t row, size_t *piece, uint32_t *r) {
    for (size_t i = 0; i < f->npieces; i++) {
        uint32_t n = f->chunks[i][0].rows;
        if (row < n) {
            *piece = i;
            *r = (uint32_t)row;
            return 0;
        }
        row -= n;
    }
    return AQ_ENOTFOUND;
}
