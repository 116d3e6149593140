/* cli_input: the bytes `aquifer parse` reads, as one stream of UTF-8 CSV text, whatever the files
 * were: plain or compressed, one or many, a directory, a glob or stdin, UTF-8, Latin-1 or cp1252.
 *
 * Sources. A path is a file; "-" is stdin; a directory stands for its regular files (names not
 * starting with '.'), sorted bytewise, without entering subdirectories; a path that does not exist
 * but holds * ? or [ is a glob, expanded here, matches sorted bytewise (a matched directory is
 * expanded as above). No source may be empty, and a glob or directory that names no file is an
 * error.
 *
 * Decoding: each source is a cli_src (cli_src.h). When any source is compressed or not a regular
 * file, two decoder threads read and decompress the sources (file i on thread i % 2, so the next
 * file decodes while the current one still does), each running ahead of the reader by a bounded
 * queue of blocks, so decompression overlaps the cutting and sending of pieces; errors surface in
 * file order. Plain regular files are read on the caller's thread straight into its buffer.
 *
 * Text. With CLI_ENC_LATIN1 or CP1252 every byte is transcoded to UTF-8 (cp1252's five
 * unassigned bytes become the C1 controls of the same value, as browsers do). With CLI_ENC_UTF8
 * invalid UTF-8 is an error naming the file, its line and byte. With CLI_ENC_AUTO (the default)
 * the text is checked as UTF-8 and a file that is not is passed on byte for byte from there, with
 * cli_input_note naming the first such file and line: no guess can tell Latin-1 from cp1252 or
 * from stray bytes, and bytes kept as they are export as they came (fidelity), where a wrong
 * transcoding would change them for good.
 *
 * Joining. After cli_input_set_dialect, every file after the first holds a header, which must
 * equal the first file's field by field (else an error naming the file and its first differing
 * column) and is dropped. The first file's header is its first row after its preamble
 * (cli_input_set_table); a later file's is the first of its first 1000 rows equal to it, and the
 * lines before it there (a preamble of that file's own) are dropped too. Without a header, after
 * a first file with a preamble, the lines of a later file before its first row of the table's
 * field count are dropped. A UTF-8 BOM at the start of a later file is dropped; a file that does
 * not end in a newline gets one before the next file's text. The first file's bytes are passed on
 * unchanged (BOM, preamble and header included: the CSV setup reads them).
 *
 * Errors: functions return 0 or a negative AQ_E* code and write one clause into the caller's
 * why[] naming the file ("stdin" for -). Not thread-safe: one caller drives one cli_input.
 */
#ifndef AQ_CLI_INPUT_H
#define AQ_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aq_csv_tok.h"
#include "cli_src.h"

typedef enum cli_enc { CLI_ENC_AUTO = 0, CLI_ENC_UTF8, CLI_ENC_LATIN1, CLI_ENC_CP1252 } cli_enc;

/* "utf-8", "latin-1" (also "latin1", "iso-8859-1"), "cp1252" (also "windows-1252"); AQ_EINVAL
 * for anything else. */
int cli_enc_parse(const char *s, cli_enc *e);
/* ---- the whole input ---- */
typedef struct cli_input cli_input;

typedef struct cli_input_stats {
    uint32_t files;
    uint32_t compressed;      /* files that were compressed */
    uint32_t formats;         /* bit (1 << cli_fmt) per format seen */
    uint64_t in_bytes;        /* bytes read from the files (compressed size for compressed ones) */
    uint64_t text_bytes;      /* text bytes handed out */
    uint64_t inflated_bytes;  /* decompressed bytes of the compressed files */
    double decode_seconds;    /* time the decoder threads spent decompressing (summed) */
    uint64_t total_in;        /* sum of the regular files' sizes; 0 when some size is unknown */
    uint32_t headers_dropped; /* header rows of later files dropped */
    uint32_t not_utf8;        /* files found not UTF-8 under CLI_ENC_AUTO (kept as bytes) */
} cli_input_stats;

/* Expands and opens every source (nothing is read past each one's first bytes). */
int cli_input_open(cli_input **out, const char *const *paths, size_t n, cli_enc enc, char *why,
                   size_t cap);
size_t cli_input_nfiles(const cli_input *in);
const char *cli_input_file(const cli_input *in, size_t i);
/* True when the first source is a plain regular file opened from a path (it can be sampled at
 * offsets through cli_input_first_fd). */
bool cli_input_first_seekable(const cli_input *in);
int cli_input_first_fd(const cli_input *in);
/* Reads ahead up to want bytes of the first file's text (fewer when it is shorter) and gives
 * them; cli_input_read hands them out again. Only before the first cli_input_read. */
int cli_input_peek(cli_input *in, size_t want, const char **p, size_t *len, char *why, size_t cap);
/* Text bytes as the stream reader would hand them (for samples read at offsets): transcoded
 * under LATIN1 and CP1252, else a copy. *out is malloc'd. */
int cli_input_sample_text(const cli_input *in, const char *p, size_t len, char **out, size_t *olen);
/* The dialect the text is read with; header true: later files' first rows are checked and
 * dropped. With fill (and header, and several files) every file's header is read ahead (through
 * a second reader of each file; stdin can only be the first) and when they differ the text is
 * rewritten into their union: columns in order of first appearance (the j-th column of a name is
 * the j-th of that name in every file), the union's header first, every row of a file whose
 * header is not the union rewritten into its columns, a column the file lacks left empty (NA),
 * fields past the file's own header kept after them. Rewritten rows lose blank and comment
 * lines, so line numbers in those files count rows. Before the first cli_input_read. */
int cli_input_set_dialect(cli_input *in, const aq_csv_dialect *d, bool header, bool fill, char *why,
                          size_t cap);
/* The first file's table: skip lines before it (its preamble), ncols fields. Before the first
 * cli_input_read. */
void cli_input_set_table(cli_input *in, uint64_t skip, uint32_t ncols);
/* The union's header line when set_dialect found the files' headers differ; else NULL. */
const char *cli_input_union_header(const cli_input *in, size_t *len);
/* Up to cap (>= 1) text bytes into dst; *got 0 only at the end of the last source. */
int cli_input_read(cli_input *in, char *dst, size_t cap, size_t *got, char *why, size_t wcap);
void cli_input_get_stats(const cli_input *in, cli_input_stats *st);
/* Line `line` of the joined text (as the CSV layer counts: 1-based, LFs before it) is line
 * *fline of the file returned (blank and comment lines count; a later file's header is its line 1).
 */
const char *cli_input_locate(const cli_input *in, uint64_t line, uint64_t *fline);
/* The first file found not UTF-8 under AUTO and its first such line; NULL when none. */
const char *cli_input_note(const cli_input *in, uint64_t *line);
void cli_input_close(cli_input *in);

#endif
