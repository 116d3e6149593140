/* cli_parse: the core of `aquifer parse` (cli_parse.c), shared by the command and libaquifer.
 * cli_parse_run does the work and prints nothing; what it made goes to a report callback while
 * its memory is still held, so the command prints it and the library copies what it returns. */
#ifndef AQ_CLI_PARSE_H
#define AQ_CLI_PARSE_H

#include "aq_csv_setup.h"
#include "cli.h"
#include "cli_input.h"

/* A finished parse: valid during the report call only. */
typedef struct cli_parse_done {
    const char *name;
    const cli_frame_meta *meta; /* as stored under the frame's meta key */
    const aq_csv_setup *setup;  /* the dialect and names the file was read with */
    const uint8_t *types;       /* final aq_csv_type per column */
    const cli_input_stats *input;
    uint64_t bytes; /* of text */
    uint32_t chunks;
    double seconds;
} cli_parse_done;
typedef void (*cli_parse_report)(cli *c, const cli_parse_done *d, void *ud);

/* Parses files (paths, directories, globs or "-", cli_input.h) with the options in c->fo into
 * one frame; on success calls report once. Returns the exit code (after cli_fail). */
int cli_parse_run(cli *c, const char *const *files, size_t nfiles, cli_parse_report report,
                  void *ud);

#endif
