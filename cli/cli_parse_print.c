/* The `parse` command's printing: the report of a finished parse (text or --json) over the core
 * in cli_parse.c (cli_parse_run), which prints nothing. Part of the command, not of libaquifer. */
#include <stdio.h>
#include <string.h>

#include "aq_csv_setup.h"
#include "cli.h"
#include "cli_input.h"
#include "cli_parse.h"

/* A dialect byte as the options spell it. */
static const char *byte_name(char b, char *buf) {
    if (b == 0)
        return "none";
    if (b == '\t')
        return "tab";
    if (b == ' ')
        return "space";
    if ((unsigned char)b < 0x20 || (unsigned char)b >= 0x7f) {
        snprintf(buf, 8, "\\x%02x", (unsigned char)b);
        return buf;
    }
    buf[0] = b;
    buf[1] = 0;
    return buf;
}

/* The dialect the file was read with, guessed or forced: every choice can be given back as an
 * option. */
static void print_dialect(const aq_csv_setup *su, bool json) {
    char b1[8], b2[8], b3[8], b4[8];
    const char *sep = byte_name(su->d.sep, b1), *q = byte_name(su->d.quote, b2),
               *e = byte_name(su->d.escape, b3), *cm = byte_name(su->d.comment, b4);
    if (json) {
        fputs(", \"dialect\": {\"sep\": ", stdout);
        cli_json_str(stdout, sep, strlen(sep));
        printf(", \"sep_space\": %s, \"quote\": ", su->d.skipsp ? "true" : "false");
        cli_json_str(stdout, q, strlen(q));
        fputs(", \"escape\": ", stdout);
        cli_json_str(stdout, e, strlen(e));
        fputs(", \"comment\": ", stdout);
        cli_json_str(stdout, cm, strlen(cm));
        printf(", \"decimal\": \"%c\"", su->decimal == ',' ? ',' : '.');
        printf(", \"header\": %s, \"skip\": %llu, \"strict\": %s}", su->header ? "true" : "false",
               (unsigned long long)su->skip, su->strict ? "true" : "false");
        return;
    }
    printf("  dialect: --sep '%s%s' --quote '%s' --escape '%s' --comment '%s' --decimal '%c' "
           "--header %s --skip %llu%s\n",
           sep, su->d.skipsp ? " " : "", q, e, cm, su->decimal == ',' ? ',' : '.',
           su->header ? "yes" : "no", (unsigned long long)su->skip, su->strict ? " --strict" : "");
}

/* The input's line for the parse report: files, formats, bytes, the decompression rate. */
static void print_input(const cli_input_stats *st, double secs) {
    if (st->files == 1 && st->compressed == 0)
        return;
    printf("  input: %u file%s", st->files, st->files == 1 ? "" : "s");
    if (st->compressed) {
        printf(" (");
        bool first = true;
        for (int f = CLI_FMT_GZIP; f < CLI_FMT_COUNT; f++)
            if (st->formats & (1u << f)) {
                printf("%s%s", first ? "" : ", ", cli_fmt_name((cli_fmt)f));
                first = false;
            }
        printf(")");
    }
    printf(", %.1f MB read, %.1f MB of text", (double)st->in_bytes / 1e6,
           (double)st->text_bytes / 1e6);
    if (st->compressed)
        printf("; decompressed %.1f MB in %.2f s of decoder threads (%.1f MB/s; whole parse "
               "%.2f s)",
               (double)st->inflated_bytes / 1e6, st->decode_seconds,
               st->decode_seconds > 0 ? (double)st->inflated_bytes / 1e6 / st->decode_seconds : 0,
               secs);
    if (st->headers_dropped)
        printf("; %u header row%s of later files dropped", st->headers_dropped,
               st->headers_dropped == 1 ? "" : "s");
    printf("\n");
}

static void print_input_json(const cli_input_stats *st) {
    printf(", \"input\": {\"files\": %u, \"compressed\": %u, \"formats\": [", st->files,
           st->compressed);
    bool first = true;
    for (int f = CLI_FMT_PLAIN; f < CLI_FMT_COUNT; f++)
        if (st->formats & (1u << f)) {
            printf("%s\"%s\"", first ? "" : ", ", cli_fmt_name((cli_fmt)f));
            first = false;
        }
    printf("], \"bytes_read\": %llu, \"text_bytes\": %llu, \"decompressed_bytes\": %llu, "
           "\"decompress_seconds\": %.3f, \"decompress_mb_per_s\": %.2f, "
           "\"headers_dropped\": %u, \"not_utf8_files\": %u}",
           (unsigned long long)st->in_bytes, (unsigned long long)st->text_bytes,
           (unsigned long long)st->inflated_bytes, st->decode_seconds,
           st->decode_seconds > 0 ? (double)st->inflated_bytes / 1e6 / st->decode_seconds : 0,
           st->headers_dropped, st->not_utf8);
}

/* The command's report of a finished parse (text or --json). */
static void print_report(cli *c, const cli_parse_done *d, void *ud) {
    (void)ud;
    const char *name = d->name;
    const cli_frame_meta *m = d->meta;
    const aq_csv_setup *su = d->setup;
    const uint8_t *types = d->types;
    uint32_t nc = m->ncols, np = d->chunks;
    uint64_t size = d->bytes;
    double secs = d->seconds;
    double mbs = secs > 0 ? (double)size / 1e6 / secs : 0;
    if (c->json) {
        fputs("{\"name\": ", stdout);
        cli_json_str(stdout, name, strlen(name));
        printf(", \"rows\": %llu, \"ncols\": %u, \"chunks\": %u, \"bytes\": %llu, "
               "\"seconds\": %.3f, \"mb_per_s\": %.2f, \"columns\": [",
               (unsigned long long)m->total_rows, nc, np, (unsigned long long)size, secs, mbs);
        for (uint32_t j = 0; j < nc; j++) {
            fputs(j ? ", {\"name\": " : "{\"name\": ", stdout);
            cli_json_str(stdout, su->names[j], strlen(su->names[j]));
            printf(", \"type\": \"%s\"}", aq_csv_type_name((aq_csv_type)types[j]));
        }
        fputc(']', stdout);
        print_input_json(d->input);
        print_dialect(su, true);
        cli_frame_print_repairs(m, true);
        fputs("}\n", stdout);
    } else {
        printf("%s: %llu rows, %u column%s, %u chunk%s; %.1f MB in %.2f s (%.1f MB/s)\n", name,
               (unsigned long long)m->total_rows, nc, nc == 1 ? "" : "s", np, np == 1 ? "" : "s",
               (double)size / 1e6, secs, mbs);
        print_input(d->input, secs);
        print_dialect(su, false);
        cli_frame_print_repairs(m, false);
        for (uint32_t j = 0; j < nc; j++)
            printf("  %-24s %s\n", su->names[j], aq_csv_type_name((aq_csv_type)types[j]));
    }
}

int cli_cmd_parse(cli *c, const char *const *files, size_t nfiles) {
    int rc = cli_parse_run(c, files, nfiles, print_report, NULL);
    if (rc)
        return rc;
    return fflush(stdout) == 0 ? CLI_OK : cli_fail(c, CLI_ERROR, "writing the output failed");
}
