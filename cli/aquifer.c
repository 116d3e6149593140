/* aquifer: the command line client of an aquifer cluster. Parses the global options (accepted
 * before or after the command's name), finds the config, and runs one command. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "aq_alloc.h"
#include "aq_node_secret.h"
#include "cli.h"

static const char usage_text[] =
    "usage: aquifer [-c FILE] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  cluster up            start this host's nodes of the config in the background and wait\n"
    "                        until every node sees every other up; then print the status\n"
    "  cluster down          stop this host's nodes (SIGTERM; SIGKILL after 15 s)\n"
    "  status [--json]       each node's state, uptime, chunks, bytes and memory, and each peer\n"
    "                        link's RTT, retransmits, duplicates suppressed, BUSY and reconnects\n"
    "  put KEY FILE [--min-copies N] [--json]\n"
    "                        store FILE (- for stdin) under KEY; any size; prints the copies\n"
    "                        stored of the copies wanted\n"
    "  put -r DIR PREFIX [--min-copies N] [--json]\n"
    "                        store every regular file under DIR as PREFIX + its path\n"
    "  get KEY [-o FILE] [--fsync]\n"
    "                        write KEY's value to FILE (default stdout), every digest verified\n"
    "  get -r PREFIX DIR [--fsync] [--json]\n"
    "                        write every key under PREFIX to DIR + the rest of the key\n"
    "  rm KEY [--min-copies N] [--json]\n"
    "                        remove KEY; prints the copies removed of the copies wanted\n"
    "  ls [PREFIX] [--json]  keys (starting with PREFIX), sorted, with their sizes\n"
    "  stat KEY [--json]     size, digest (xxh3-128, as `xxhsum -H2` prints it), chunks and the\n"
    "                        nodes holding each\n"
    "  parse FILE... [--name NAME] [--sep C] [--quote C] [--escape C] [--comment C]\n"
    "        [--skip N] [--decimal .|,] [--header yes|no|auto] [--no-header] [--na LIST]\n"
    "        [--types COL:TYPE,...] [--fill] [--strict] [--encoding E] [--json]\n"
    "                        read CSV files (plain, gzip, zstd, bzip2 or xz; - for stdin) into\n"
    "                        one frame of typed columns spread over the cluster\n"
    "  frames [--json]       the frames, with rows, columns and bytes held\n"
    "  summary NAME [--json] per column: type, NA, min, max, mean, sd or levels (computed where\n"
    "                        the chunks live)\n"
    "  head NAME [-n N]      the first N rows (default 10) as CSV\n"
    "  export NAME [-o FILE] the whole frame as CSV, rows in file order\n"
    "  frame rm NAME         remove a frame and all its chunks\n"
    "  secret new PATH       write a new cluster secret (64 random bytes, mode 0600) to PATH;\n"
    "                        name it in [cluster] secret_file to authenticate all traffic\n"
    "\n"
    "Options, anywhere on the line:\n"
    "  -c, --config FILE     the cluster config; default $AQUIFER_CONF, else ./cluster.conf,\n"
    "                        else the built-in one (three nodes on 127.0.0.1, as\n"
    "                        cluster.example.conf)\n"
    "  -h, --help            this help; `aquifer COMMAND --help` explains one command\n"
    "  --                    ends the options: later arguments are keys or files even when\n"
    "                        they start with -\n"
    "\n"
    "Exit status: 0 done, 1 usage error, 2 key not found, 3 cluster unreachable or timed out,\n"
    "4 any other error. Errors are one line on stderr naming what failed and where.\n";

/* What a command needs before its handler runs: nothing (it reads no config), the config, or the
 * config and the command's rpc endpoint. */
enum cmd_needs { CMD_NEEDS_NOTHING, CMD_NEEDS_CONFIG, CMD_NEEDS_CLUSTER };

/* A handler gets the command's positional arguments, their count checked against the entry;
 * c is NULL for CMD_NEEDS_NOTHING. It returns the exit code. */
typedef int (*cmd_fn)(cli *c, const char *const *args, int nargs);

typedef struct command {
    const char *name; /* "cluster up" for the two-word ones */
    int nargs_min, nargs_max;
    bool json, output;
    const char *help;
    enum cmd_needs needs;
    cmd_fn run;
} command;

static int run_up(cli *c, const char *const *args, int nargs) {
    (void)args, (void)nargs;
    return cli_cmd_up(c);
}
static int run_down(cli *c, const char *const *args, int nargs) {
    (void)args, (void)nargs;
    return cli_cmd_down(c);
}
static int run_status(cli *c, const char *const *args, int nargs) {
    (void)args, (void)nargs;
    return cli_cmd_status(c);
}
static int run_put(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return c->recursive ? cli_cmd_put_r(c, args[0], args[1]) : cli_cmd_put(c, args[0], args[1]);
}
static int run_get(cli *c, const char *const *args, int nargs) {
    if (c->recursive != (nargs == 2)) {
        fprintf(stderr, "aquifer: get: %s\n",
                c->recursive ? "get -r takes PREFIX and DIR"
                             : "get takes one KEY (get -r PREFIX DIR)");
        return CLI_USAGE;
    }
    if (c->recursive && c->out_path) {
        fprintf(stderr, "aquifer: get: -o does not apply to get -r\n");
        return CLI_USAGE;
    }
    if (!c->recursive && c->json) {
        fprintf(stderr, "aquifer: get: --json applies to get -r only\n");
        return CLI_USAGE;
    }
    if (c->recursive)
        return cli_cmd_get_r(c, args[0], args[1], c->fsync);
    return cli_cmd_get(c, args[0]);
}
static int run_rm(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return cli_cmd_rm(c, args[0]);
}
static int run_ls(cli *c, const char *const *args, int nargs) {
    return cli_cmd_ls(c, nargs ? args[0] : "");
}
static int run_stat(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return cli_cmd_stat(c, args[0]);
}
static int run_parse(cli *c, const char *const *args, int nargs) {
    return cli_cmd_parse(c, (const char **)args, (size_t)nargs);
}
static int run_frames(cli *c, const char *const *args, int nargs) {
    (void)args, (void)nargs;
    return cli_cmd_frames(c);
}
static int run_summary(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return cli_cmd_summary(c, args[0]);
}
static int run_head(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return cli_cmd_head(c, args[0]);
}
static int run_export(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return cli_cmd_export(c, args[0]);
}
static int run_frame_rm(cli *c, const char *const *args, int nargs) {
    (void)nargs;
    return cli_cmd_frame_rm(c, args[0]);
}
static int run_secret_new(cli *c, const char *const *args, int nargs) {
    (void)c, (void)nargs;
    char why[512];
    if (aq_node_secret_new(args[0], why, sizeof why) != 0) {
        fprintf(stderr, "aquifer: secret new: %s\n", why);
        return CLI_ERROR;
    }
    return CLI_OK;
}

static const command commands[] = {
    {"cluster up", 0, 0, false, false,
     "usage: aquifer [-c FILE] cluster up\n\n"
     "Starts, in the background, every node of the config whose address is on this host:\n"
     "aquiferd (found next to aquifer, else on $PATH) in its own session, with its output in\n"
     "RUN_DIR/NAME.log and its pid in RUN_DIR/NAME.pid. A node already running (its pid file "
     "names\n"
     "a live aquiferd) is not started again. RUN_DIR and each started node's data_dir are\n"
     "created if missing. With the built-in config, the config is written to\n"
     "RUN_DIR/cluster.conf for the nodes. Then waits (up to 30 s) until every configured node\n"
     "answers and sees every other node up, and prints the status table. If a node exits or the\n"
     "cluster does not form, says which node and prints the end of its log; exits 4 (a node\n"
     "exited) or 3 (not formed in time).\n",
     CMD_NEEDS_CONFIG, run_up},
    {"cluster down", 0, 0, false, false,
     "usage: aquifer [-c FILE] cluster down\n\n"
     "Stops this host's nodes named by pid files in RUN_DIR: SIGTERM, then waits up to 15 s for\n"
     "each to finish its calls and exit; one still running then gets SIGKILL (and a warning).\n"
     "A stale pid file (no live aquiferd for that node) is removed without signalling anyone.\n",
     CMD_NEEDS_CONFIG, run_down},
    {"status", 0, 0, true, false,
     "usage: aquifer [-c FILE] status [--json]\n\n"
     "Asks every configured node for its status in parallel. Per node: name, address, state\n"
     "(unreachable when it does not answer within 1.5 s), uptime, chunks, bytes, memory used and\n"
     "memory_max. Per link (as each node sees each peer): state, RTT, calls, retransmits,\n"
     "duplicate calls suppressed, BUSY answers, pipe reconnects and timeouts. --json prints the\n"
     "same as one JSON object {cluster, replicas, reachable, nodes: [{name, address, reachable,\n"
     "state, uptime_ms, chunks, bytes, allocated, memory_max, ..., peers: [...]}]}.\n"
     "Exits 3 when no node answers.\n",
     CMD_NEEDS_CLUSTER, run_status},
    {"put", 2, 2, true, false,
     "usage: aquifer [-c FILE] put KEY FILE [--min-copies N] [--json]\n"
     "       aquifer [-c FILE] put -r DIR PREFIX [--min-copies N] [--json]\n\n"
     "Stores FILE (- reads stdin) under KEY, replacing any value there. KEY is 1 to 255 bytes of\n"
     "UTF-8 without control characters. Up to 4 MiB the value is one chunk stored under KEY; a\n"
     "larger one is cut into 4 MiB parts stored under internal keys, then a manifest (total\n"
     "size, digests, part list) under KEY, stored last. The input is streamed: memory stays a\n"
     "few chunks whatever the size. Each chunk goes to the first live node of its replicas\n"
     "(rendezvous order), which stores it and copies it to the others; an unreachable node is\n"
     "skipped for the next, and so is one that stops answering midway once the other nodes\n"
     "call it down (a warning names it). A put that fails, or whose outcome is unknown,\n"
     "changes nothing: the parts it wrote are removed, and where a replica already took the new\n"
     "value (or a large value's new manifest) the previous value is written back over it, one\n"
     "version above the new one; the error says whether that was done (if it could not be, the\n"
     "new parts stay so no key names missing parts). Replacing a large value removes its old\n"
     "parts once the new manifest is known to be the value. A FILE whose size or modification\n"
     "time moves while it is read fails the put (exit 4, naming it) and leaves the key as it\n"
     "was.\n\n"
     "Prints \"stored C of W copies\": W is the replicas setting, C the replicas that hold this\n"
     "put (for a large value, the fewest of any of its chunks). A replica that already holds a\n"
     "newer write of the key is never counted. Fewer than W prints a warning on stderr naming the\n"
     "replicas that missed it; fewer than N (--min-copies N, else [cluster] min_copies, default\n"
     "1) fails with exit 4 (the copies that were stored stay); an N above W is refused before\n"
     "anything is sent (exit 1). --json prints {key, stored, copies, wanted, min_copies,\n"
     "missing: [node names]}.\n\n"
     "put -r DIR PREFIX stores every regular file under DIR as PREFIX + its path relative to\n"
     "DIR (parts joined by '/'), each as put would, 64 files in flight at once. Directories are\n"
     "walked without following symbolic links; links, devices, FIFOs and sockets are skipped\n"
     "and counted, and a folder or file replaced by a link after the walk is refused, never\n"
     "followed. Empty folders store nothing: a key names a file. A file that fails\n"
     "(unreadable, vanished, changed while it was read, a key that is not valid, fewer than\n"
     "--min-copies) is named on stderr ('?' for a control byte or one not UTF-8) and the rest\n"
     "carry on; a progress line shows on a terminal. Prints \"stored S of N files (SIZE),\n"
     "fewest copies C of W\", then \"; F failed\" and \"; K skipped (...)\" when there are any,\n"
     "and with --json {dir, prefix, files, stored, failed, bytes, seconds, copies, wanted,\n"
     "skipped, missing: [node names], failures: [{path, key, error}]}. Files stored with fewer\n"
     "than W copies are counted in one warning naming the replicas that missed them. Exits 4\n"
     "if any failed.\n\n"
     "Memory: one value at most 4 chunks of 4 MiB in flight, each perhaps twice (ours and the\n"
     "rpc's copy): under 40 MiB whatever the size; put -r: 64 files in flight holding at most\n"
     "64 MiB, up to 128 more of at most 128 KiB read ahead, a file over 4 MiB 1 chunk at a\n"
     "time: under 150 MiB.\n",
     CMD_NEEDS_CLUSTER, run_put},
    {"get", 1, 2, true, true,
     "usage: aquifer [-c FILE] get KEY [-o FILE] [--fsync]\n"
     "       aquifer [-c FILE] get -r PREFIX DIR [--fsync] [--json]\n\n"
     "Writes KEY's value to stdout, or to FILE with -o (written as a file without a name beside\n"
     "FILE and named FILE once whole, or through a temporary file renamed over it: a failed or\n"
     "killed get leaves FILE as it was). Every live replica of KEY is asked at once and the\n"
     "newest copy is returned, never an older one; if the newest is a removal, KEY does not\n"
     "exist. Only when no replica holds anything are the other live nodes asked. A replica\n"
     "found holding an older copy, or none, is sent the newest before get returns (read\n"
     "repair). Every chunk's xxh3-128 digest and the whole value's are verified; a node that\n"
     "sends bytes that fail their digest is skipped for the next one holding that copy. Exits 2\n"
     "when KEY does not exist. --fsync makes FILE durable (one fsync) before it gets its\n"
     "name. A value over one chunk has its room reserved before any chunk is fetched (where\n"
     "the file system can reserve room): a disk without room for it then fails the get at once.\n\n"
     "get -r PREFIX DIR writes every key starting with PREFIX to DIR + the key without PREFIX,\n"
     "creating DIR and the directories below it, 64 files in flight at once. A file gets its\n"
     "name only once whole: it is written unnamed (O_TMPFILE) and linked in place, so a killed\n"
     "get -r leaves nothing behind; a file already there is replaced through a temporary file\n"
     "renamed over it, as every file is on a file system without O_TMPFILE. Nothing outside DIR\n"
     "is ever written: a key whose rest is empty, absolute, or has an empty, \".\" or \"..\" part\n"
     "is refused and named by its key, and no symbolic link on the way is followed. A file that\n"
     "fails (a key removed since the listing among them) is named on stderr and the rest carry\n"
     "on; a progress line shows on a terminal. Prints \"wrote W of N files (SIZE)\", and with\n"
     "--json {dir, prefix, files, wrote, failed, bytes, seconds, failures: [{path, key,\n"
     "error}]}. Exits 4 if any failed.\n\n"
     "Memory: a value at most 2 chunks of 4 MiB in flight, each perhaps twice: under 24 MiB\n"
     "whatever its size; get -r: 64 files in flight and the fetched ones not yet written\n"
     "holding at most 64 MiB together (as the listing gives their sizes), a value over 4 MiB\n"
     "1 chunk at a time: under 150 MiB.\n",
     CMD_NEEDS_CLUSTER, run_get},
    {"rm", 1, 1, true, false,
     "usage: aquifer [-c FILE] rm KEY [--min-copies N] [--json]\n\n"
     "Removes KEY (a large value's manifest first, then its parts): the replicas store a\n"
     "removal marker newer than every copy, and every other live node drops a copy repair may\n"
     "have placed there. Once rm exits 0, get, ls and stat no longer see KEY on any node, also\n"
     "after repairs and restarts; the markers are collected after tombstone_ttl, once every\n"
     "configured node was seen to hold nothing older. Exits 2 when KEY does not exist.\n"
     "Prints \"removed C of W copies\": the replicas that now hold the removal, of the replicas\n"
     "setting; fewer than W warns naming the others, fewer than N (--min-copies N, else\n"
     "[cluster] min_copies) fails with exit 4; an N above W is refused before anything is sent\n"
     "(exit 1). --json prints {key, removed, copies, wanted, min_copies, missing}.\n",
     CMD_NEEDS_CLUSTER, run_rm},
    {"ls", 0, 1, true, false,
     "usage: aquifer [-c FILE] ls [PREFIX] [--json]\n\n"
     "Lists the keys starting with PREFIX (all keys without it) held by every live node, merged,\n"
     "deduplicated (the newest copy of each key counts; a key whose newest copy is a removal is\n"
     "not listed) and sorted bytewise, one per line after its size in bytes (a large value's\n"
     "total size). --json prints an array of {key, size, kind, digest}.\n",
     CMD_NEEDS_CLUSTER, run_ls},
    {"stat", 1, 1, true, false,
     "usage: aquifer [-c FILE] stat KEY [--json]\n\n"
     "Shows KEY's size, its xxh3-128 digest in the form `xxhsum -H2` prints, and each chunk\n"
     "(index, size, digest) with the live nodes holding a copy; the newest copy on any live node\n"
     "counts (a removal: KEY does not exist), and a replica holding an older copy is sent the\n"
     "newest, as get does. --json prints {key, size, digest,\n"
     "kind, replicas, chunks: [{index, size, digest, nodes}]}. Exits 2 when KEY does not exist.\n",
     CMD_NEEDS_CLUSTER, run_stat},
    {"parse", 1, 65536, true, false,
     "usage: aquifer [-c FILE] parse FILE... [--name NAME] [--sep C] [--quote C] [--escape C]\n"
     "                     [--comment C] [--skip N] [--decimal .|,] [--header yes|no|auto]\n"
     "                     [--no-header] [--na LIST] [--types COL:TYPE,...] [--fill] [--strict]\n"
     "                     [--encoding E] [--json]\n\n"
     "Reads CSV files into one frame named NAME (default: the first FILE's base name without\n"
     "its extensions; reading stdin needs --name).\n\n"
     "Inputs. FILE is a file, - for stdin, a directory (its regular files not starting with\n"
     "'.', sorted by name; subdirectories are not entered) or a quoted glob expanded by the\n"
     "command (matches sorted by name). Several files are one frame, in the order given: each\n"
     "file after the first must hold the same header as the first (else the parse fails\n"
     "naming the file and its first differing column), which is dropped with any lines before\n"
     "it (a preamble of that file's own; without a header, the lines before its first row as\n"
     "wide as the table, when the first file has a preamble); with --fill, files\n"
     "whose headers differ give the union of their columns (in order of first appearance; a\n"
     "column a file lacks is NA there; stdin can then only be the first file). Each file may\n"
     "be gzip (several members), zstd (several frames), bzip2 or xz, recognised by its first\n"
     "bytes, not its name, and decompressed while it streams; a corrupt or truncated one fails\n"
     "naming the file and the byte offset. --encoding latin-1 or cp1252 transcodes the text\n"
     "to UTF-8; utf-8 refuses invalid UTF-8 naming its line. Without --encoding, bytes that\n"
     "are not UTF-8 are kept as they are (export gives them back) and a note on stderr names\n"
     "the first file and line.\n\n"
     "Dialect. The dialect and column types are guessed from samples across the file (a plain\n"
     "file) or its first 2 MiB of text (compressed, stdin), and every choice can be forced:\n"
     "--sep (a character, tab, space, or a character and a space as in ', ': spaces after the\n"
     "separator are then not data), --quote (\", ' or none), --escape (\\ or none: none means\n"
     "a quote inside quotes is doubled), --comment (a character or none: lines starting with\n"
     "it are skipped), --skip N (lines before the header, e.g. a title), --decimal (',' reads\n"
     "3,25 as 3.25; guessed when the separator is not a comma), --header / --no-header, --na\n"
     "(comma-separated spellings of a missing value; default \"\" and NA) and --types (by\n"
     "column name or 1-based index; int, float, time, categorical, string).\n\n"
     "Values are kept: a field is a number or a time only when it writes back the same (007,\n"
     "NAN among text, integers past int64 stay text). Irregular rows are repaired, counted\n"
     "and reported, not fatal: a short row is padded with NA, a long row keeps the rest of its\n"
     "line in the last column, a quote out of place is a byte; --strict fails on the first\n"
     "instead, naming its line. A second table or a footer after a blank line is not read and\n"
     "its lines are reported.\n\n"
     "The text is cut into pieces of at most 4 MiB at row ends and spread over the cluster;\n"
     "every node parses the pieces it holds, the cluster agrees on each column's type and\n"
     "categorical levels, and each node stores its typed column chunks on their replicas.\n"
     "Prints rows, columns, types, the dialect used (as options), repaired rows with their\n"
     "first lines, unread lines, seconds and MB/s, and with compressed input the\n"
     "decompression rate; --json prints {name, rows, ncols, chunks, bytes, seconds, mb_per_s,\n"
     "columns: [{name, type}], dialect: {sep, sep_space, quote, escape, comment, decimal,\n"
     "header, skip, strict}, repaired_rows, repaired_lines, unread_lines, input}. A failed\n"
     "parse leaves nothing behind. An existing frame of that name is not replaced. A\n"
     "header-only file is an empty frame with its columns; an empty file is an error.\n",
     CMD_NEEDS_CLUSTER, run_parse},
    {"frames", 0, 0, true, false,
     "usage: aquifer [-c FILE] frames [--json]\n\n"
     "Lists the frames held by every live node: name, rows, columns, the bytes its column\n"
     "chunks hold in the cluster (every copy) and the source file, then the rows the parse\n"
     "repaired and the lines it did not read, if any. --json prints an array of {name, rows,\n"
     "columns, chunks, source, source_size, bytes_held, bytes_one_copy, chunk_copies,\n"
     "chunk_keys, bytes_per_value, bytes_by_type, repaired_rows, repaired_lines (the first\n"
     "100), unread_lines ([first, last] or null)}: bytes_held counts every copy,\n"
     "bytes_one_copy each column chunk once, bytes_per_value is bytes_one_copy over rows x\n"
     "columns, bytes_by_type splits bytes_one_copy by column type. The sizes come from listing\n"
     "the frame's keys on every live node (no chunk is read); when a node cannot list them the\n"
     "sizes are replaced by size_error (text: \"size unknown\").\n",
     CMD_NEEDS_CLUSTER, run_frames},
    {"summary", 1, 1, true, false,
     "usage: aquifer [-c FILE] summary NAME [--json]\n\n"
     "Summarizes each column of frame NAME where its chunks live; only partial summaries\n"
     "travel. Numeric and time columns: NA count, min, max, mean and sample standard\n"
     "deviation; categorical columns: cardinality and the most frequent levels; string\n"
     "columns: NA count only (their values are too many to count where they live). A NaN the\n"
     "file wrote is a value, not NA, and is left out of min, max, mean and sd. An infinity is\n"
     "a value: min or max takes it, the mean is an infinity or (both signs) NaN, and the sd is\n"
     "NaN, as pandas computes them. The rows the parse repaired and the lines it did not read\n"
     "are shown first. --json prints {name, rows, repaired_rows, repaired_lines, unread_lines,\n"
     "columns: [{name, type, na, min, max, mean, sd} or {name, type, na, cardinality, top:\n"
     "[{level, count}]} or {name, type, na}]}; a figure there is null when there is none (no\n"
     "values; sd below two) and the string \"Infinity\", \"-Infinity\" or \"NaN\" when it is\n"
     "not a finite number (JSON has no such numbers). Exits 2 when there is no such frame.\n",
     CMD_NEEDS_CLUSTER, run_summary},
    {"head", 1, 1, false, false,
     "usage: aquifer [-c FILE] head NAME [-n N]\n\n"
     "Prints the header and the first N rows (default 10) of frame NAME as CSV.\n",
     CMD_NEEDS_CLUSTER, run_head},
    {"export", 1, 1, false, true,
     "usage: aquifer [-c FILE] export NAME [-o FILE]\n\n"
     "Writes frame NAME as CSV (header, rows in the file's order, numbers that read back to the\n"
     "same values, missing values as empty fields) to stdout or FILE (named FILE only once\n"
     "whole, as get -o does).\n",
     CMD_NEEDS_CLUSTER, run_export},
    {"secret new", 1, 1, false, false,
     "usage: aquifer secret new PATH\n\n"
     "Writes 64 random bytes to the new file PATH with mode 0600 (an existing file is never\n"
     "overwritten). Copy it to every host and name it in the config's [cluster] section as\n"
     "secret_file = PATH: every packet and frame between nodes and between this command and\n"
     "the nodes then carries a MAC, and anything without a valid one is dropped and counted\n"
     "(auth_failures in `aquifer status`). A command without the secret, or with another one,\n"
     "fails saying authentication failed at which node, exit 3.\n",
     CMD_NEEDS_NOTHING, run_secret_new},
    {"frame rm", 1, 1, false, false,
     "usage: aquifer [-c FILE] frame rm NAME\n\n"
     "Removes frame NAME: every piece and column chunk of it on every live node, then its\n"
     "metadata. Also removes what a parse killed midway left under NAME. Exits 2 when there is\n"
     "no such frame.\n",
     CMD_NEEDS_CLUSTER, run_frame_rm},
};

static int usage_error(const char *fmt, const char *arg) {
    fputs("aquifer: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nRun 'aquifer --help' for usage.\n", stderr);
    return CLI_USAGE;
}

int main(int argc, char **argv) {
    aq_alloc_tune_for_chunks();
    aq_alloc_huge_heap(48u << 20);
    /* A reader closing our stdout must give an error we report, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    const char *conf_opt = NULL;
    bool help = false, json = false, seen_c = false, recursive = false, fsync_out = false;
    unsigned min_copies = 0;
    cli_frame_opts fo;
    memset(&fo, 0, sizeof fo);
    struct {
        const char *opt;
        const char **dst;
    } fopts[] = {{"--name", &fo.name},   {"--sep", &fo.sep},         {"--header", &fo.header},
                 {"--na", &fo.na},       {"--types", &fo.types},     {"-n", &fo.rows},
                 {"--quote", &fo.quote}, {"--escape", &fo.escape},   {"--comment", &fo.comment},
                 {"--skip", &fo.skip},   {"--decimal", &fo.decimal}, {"--encoding", &fo.encoding}};
    const char *out = NULL;
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    if (!pos) {
        fputs("aquifer: out of memory\n", stderr);
        return CLI_ERROR;
    }
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || strcmp(a, "-") == 0) {
            pos[npos++] = a;
        } else if (strcmp(a, "--") == 0) {
            opts_done = true;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                free(pos);
                return usage_error("%s needs a file name", a);
            }
            if (seen_c) {
                free(pos);
                return usage_error("%s given twice", a);
            }
            conf_opt = argv[++i];
            seen_c = true;
        } else if (strncmp(a, "--config=", 9) == 0) {
            conf_opt = a + 9;
            seen_c = true;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (i + 1 >= argc) {
                free(pos);
                return usage_error("%s needs a file name", a);
            }
            out = argv[++i];
        } else if (strncmp(a, "--output=", 9) == 0) {
            out = a + 9;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "-r") == 0 || strcmp(a, "--recursive") == 0) {
            recursive = true;
        } else if (strcmp(a, "--fsync") == 0) {
            fsync_out = true;
        } else if (strcmp(a, "--min-copies") == 0 || strncmp(a, "--min-copies=", 13) == 0) {
            const char *v = a[12] == '=' ? a + 13 : NULL;
            if (!v && i + 1 >= argc) {
                free(pos);
                return usage_error("%s needs a number", a);
            }
            if (!v)
                v = argv[++i];
            char *end;
            unsigned long mc = strtoul(v, &end, 10);
            if (end == v || *end || v[0] == '-' || mc == 0 || mc > 255) {
                free(pos);
                return usage_error("--min-copies takes a number of copies from 1 to 255, not "
                                   "'%s'",
                                   v);
            }
            min_copies = (unsigned)mc;
        } else if (strcmp(a, "--fill") == 0) {
            fo.fill = true;
        } else if (strcmp(a, "--strict") == 0) {
            fo.strict = true;
        } else if (strcmp(a, "--no-header") == 0) {
            fo.header = "no";
        } else if (a[1] == 'n' || strncmp(a, "--name", 6) == 0 || strncmp(a, "--sep", 5) == 0 ||
                   strncmp(a, "--header", 8) == 0 || strncmp(a, "--na", 4) == 0 ||
                   strncmp(a, "--types", 7) == 0 || strncmp(a, "--quote", 7) == 0 ||
                   strncmp(a, "--escape", 8) == 0 || strncmp(a, "--comment", 9) == 0 ||
                   strncmp(a, "--skip", 6) == 0 || strncmp(a, "--decimal", 9) == 0 ||
                   strncmp(a, "--encoding", 10) == 0) {
            size_t f = 0, nf = sizeof fopts / sizeof fopts[0];
            const char *val = NULL;
            for (; f < nf; f++) {
                size_t ol = strlen(fopts[f].opt);
                if (strcmp(a, fopts[f].opt) == 0) {
                    if (i + 1 >= argc) {
                        free(pos);
                        return usage_error("%s needs a value", a);
                    }
                    val = argv[++i];
                    break;
                }
                if (strncmp(a, fopts[f].opt, ol) == 0 && a[ol] == '=') {
                    val = a + ol + 1;
                    break;
                }
            }
            if (f == nf) {
                free(pos);
                return usage_error("unknown option %s", a);
            }
            *fopts[f].dst = val;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
        } else {
            free(pos);
            return usage_error("unknown option %s", a);
        }
    }
    if (npos == 0) {
        free(pos);
        if (help) {
            fputs(usage_text, stdout);
            return CLI_OK;
        }
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    const command *cmd = NULL;
    int skip = 1;
    char name[64];
    if (strcmp(pos[0], "frame") == 0) {
        if (npos < 2) {
            free(pos);
            return usage_error("frame needs a subcommand: %s", "rm");
        }
        snprintf(name, sizeof name, "frame %.20s", pos[1]);
        skip = 2;
    } else if (strcmp(pos[0], "secret") == 0) {
        if (npos < 2) {
            free(pos);
            return usage_error("secret needs a subcommand: %s", "new PATH");
        }
        snprintf(name, sizeof name, "secret %.20s", pos[1]);
        skip = 2;
    } else if (strcmp(pos[0], "cluster") == 0) {
        if (npos < 2) {
            if (help) {
                fputs(commands[0].help, stdout);
                fputc('\n', stdout);
                fputs(commands[1].help, stdout);
                free(pos);
                return CLI_OK;
            }
            free(pos);
            return usage_error("cluster needs a subcommand: %s", "up or down");
        }
        snprintf(name, sizeof name, "cluster %.20s", pos[1]);
        skip = 2;
    } else {
        snprintf(name, sizeof name, "%.40s", pos[0]);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        int rc = usage_error("unknown command '%s'", name);
        free(pos);
        return rc;
    }
    if (help) {
        fputs(cmd->help, stdout);
        free(pos);
        return CLI_OK;
    }
    const char *const *args = pos + skip;
    int nargs = npos - skip;
    int rc = CLI_OK;
    if (nargs < cmd->nargs_min || nargs > cmd->nargs_max) {
        /* The usage lines (up to the help's first blank line), not the whole help. */
        const char *end = strstr(cmd->help, "\n\n");
        int ulen = end ? (int)(end - cmd->help) : (int)strlen(cmd->help);
        fprintf(stderr,
                "aquifer: %s: wrong number of arguments\n%.*s\nRun 'aquifer %s --help' for more.\n",
                cmd->name, ulen, cmd->help, cmd->name);
        rc = CLI_USAGE;
    } else if (json && !cmd->json) {
        rc = usage_error("--json does not apply to %s", cmd->name);
    } else if (out && !cmd->output) {
        rc = usage_error("-o does not apply to %s", cmd->name);
    } else if (min_copies && strcmp(cmd->name, "put") != 0 && strcmp(cmd->name, "rm") != 0) {
        rc = usage_error("--min-copies does not apply to %s", cmd->name);
    } else if (recursive && strcmp(cmd->name, "put") != 0 && strcmp(cmd->name, "get") != 0) {
        rc = usage_error("-r does not apply to %s", cmd->name);
    } else if (fsync_out && strcmp(cmd->name, "get") != 0) {
        rc = usage_error("--fsync does not apply to %s", cmd->name);
    }
    bool frame_cmd = strcmp(cmd->name, "parse") == 0 || strcmp(cmd->name, "head") == 0;
    if (!rc && !frame_cmd &&
        (fo.name || fo.sep || fo.header || fo.na || fo.types || fo.fill || fo.rows || fo.quote ||
         fo.escape || fo.comment || fo.skip || fo.decimal || fo.strict || fo.encoding))
        rc = usage_error("%s takes none of the parse options (--name, --sep, --header, --na, "
                         "--types, --fill, --strict, --quote, --escape, --comment, --skip, "
                         "--decimal, --encoding, -n)",
                         cmd->name);
    if (rc) {
        free(pos);
        return rc;
    }

    if (cmd->needs == CMD_NEEDS_NOTHING) {
        rc = cmd->run(NULL, args, nargs);
        free(pos);
        return rc;
    }
    cli c;
    memset(&c, 0, sizeof c);
    char what[400];
    if (nargs >= 1 && strcmp(cmd->name, "ls") != 0)
        snprintf(what, sizeof what, "%s%s %s", cmd->name, recursive ? " -r" : "", args[0]);
    else
        snprintf(what, sizeof what, "%s", cmd->name);
    /* The key goes into every message: keep control bytes and broken UTF-8 off the terminal. */
    cli_text_safe(what);
    c.what = what;
    c.json = json;
    c.min_copies = min_copies;
    c.out_path = out;
    c.recursive = recursive;
    c.fsync = fsync_out;
    c.fo = fo;
    rc = cli_conf_load(&c, conf_opt);
    /* A put or rm asked for more copies than the cluster keeps would fail after changing the
     * key: refused before anything is sent. */
    if (rc == 0 && min_copies > c.conf->replicas)
        rc = cli_fail(&c, CLI_USAGE,
                      "--min-copies %u is more than cluster %s's replicas (%u, in %s): no %s could "
                      "reach it; nothing was done",
                      min_copies, c.conf->name, c.conf->replicas, c.conf_path, cmd->name);
    if (rc == 0 && cmd->needs == CMD_NEEDS_CLUSTER)
        rc = cli_open(&c);
    if (rc == 0)
        rc = cmd->run(&c, args, nargs);
    cli_close(&c);
    aq_node_config_free(c.conf);
    free(c.conf_path);
    free(pos);
    return rc;
}
