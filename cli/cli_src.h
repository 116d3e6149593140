/* cli_src: one input of `aquifer parse` (a file or stdin), decompressed while it streams.
 *
 * The format is recognised by the first bytes, never the name: gzip (1f 8b), zstd (28 b5 2f fd,
 * or a skippable frame), bzip2 ("BZh1".."BZh9"), xz (fd "7zXZ" 00); zip, 7z, lz4, lzop and
 * compress (.Z) are refused naming the format; anything else is read as it is. Every member of a
 * multi-member gzip, every frame of a zstd stream, every stream of a concatenated bzip2 or xz file
 * is read, in order; bytes after the last complete member that start no new one, a checksum that
 * fails, and a file that ends inside a member are errors (AQ_EPARSE) naming the file and the byte
 * offset in it (of the compressed bytes) where decoding stopped. Memory stays a few MiB whatever
 * the size (an xz file asking for more than 1 GiB is refused); xz files of several blocks decode
 * on two threads. Decoders: zlib, libzstd, libbz2, liblzma.
 *
 * Errors: functions return 0 or a negative AQ_E* code and write one clause into why[] naming
 * the file. One cli_src is used by one thread at a time.
 */
#ifndef AQ_CLI_SRC_H
#define AQ_CLI_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cli_fmt {
    CLI_FMT_PLAIN = 0,
    CLI_FMT_GZIP,
    CLI_FMT_ZSTD,
    CLI_FMT_BZIP2,
    CLI_FMT_XZ,
    CLI_FMT_COUNT
} cli_fmt;

/* "plain", "gzip", "zstd", "bzip2", "xz". */
const char *cli_fmt_name(cli_fmt f);
/* The format that the first n bytes of a stream announce (n >= 6 for a sure answer). */
cli_fmt cli_fmt_sniff(const uint8_t *p, size_t n);

typedef struct cli_src cli_src;
/* Opens path ("-": stdin) and reads its first bytes to learn the format. */
int cli_src_open(cli_src **out, const char *path, char *why, size_t cap);
/* Up to cap decompressed bytes into buf; *got 0 only at the end of the source. */
int cli_src_read(cli_src *s, uint8_t *buf, size_t cap, size_t *got, char *why, size_t wcap);
cli_fmt cli_src_format(const cli_src *s);
const char *cli_src_name(const cli_src *s); /* the path; "stdin" for - */
int cli_src_fd(const cli_src *s);
bool cli_src_is_stdin(const cli_src *s);
bool cli_src_regular(const cli_src *s);       /* a regular file (its size is known) */
uint64_t cli_src_size(const cli_src *s);      /* a regular file's size, else 0 */
uint64_t cli_src_in_bytes(const cli_src *s);  /* bytes of the file consumed so far */
uint64_t cli_src_out_bytes(const cli_src *s); /* decompressed bytes given so far */
uint64_t cli_src_decode_ns(const cli_src *s); /* time spent decompressing */
/* A pipe read on a thread polls stop and gives up (AQ_ECANCELED) once it is set, so the thread
 * can be joined while the pipe stays silent. */
void cli_src_set_stop(cli_src *s, const _Atomic bool *stop);
void cli_src_close(cli_src *s);

#endif
