/* csv_frame: the parse pipeline of one whole file, run in one process, for the tests: sample,
 * guess the setup, cut into pieces, parse each, agree on final types, bring every chunk to them. */
#ifndef CSV_FRAME_H
#define CSV_FRAME_H

#include "aq_csv_col.h"
#include "aq_csv_cut.h"
#include "aq_csv_setup.h"

#include <stddef.h>
#include <stdint.h>

typedef struct csv_frame {
    aq_csv_setup setup;
    size_t npieces;
    char **piece;
    size_t *piece_len;
    uint64_t *first_line;
    aq_csv_col **chunks; /* [piece][column] */
    aq_csv_type *final;  /* per column */
    aq_csv_obs *obs;     /* per column, merged */
    uint64_t rows;
    size_t reparsed; /* pieces that had to be parsed again for their final types */
} csv_frame;

/* Reads a whole file into memory (NUL-terminated); NULL on failure. */
char *csv_read_file(const char *path, size_t *len);
/* Path of a smalldata file (static buffer per call site is not needed: caller frees). */
char *csv_data_path(const char *name);

int csv_frame_load(const char *data, size_t len, const aq_csv_opts *o, size_t max_piece,
                   csv_frame *f, aq_csv_err *err);
void csv_frame_free(csv_frame *f);

/* The column's value at a frame row, as a double (NaN for NA), or text. */
int csv_frame_locate(const csv_frame *f, uint64_t row, size_t *piece, uint32_t *r);

#endif
