/* aq_frame_meta: a frame's metadata, the record `aquifer parse` stores under the frame's meta key
 * (aq_frame_meta_key) once every column chunk is stored, and that the command's frame commands and
 * the node's status page (aq_node_obs.c) read back.
 *
 * Layout (little-endian, common/aq_bytes.h): u32 magic "AQFM", u8 version, str8 name, str16 source,
 * u64 source size, u32 ncols x (str16 name, u8 type), u32 nchunks x u32 rows, u32 + encoded setup;
 * version 2 appends u64 repaired rows, u32 nrepair x u64 line, u64 unread_from, u64 unread_to.
 * Version 1 is still read (its repairs read as none). The decoder takes bytes from the network:
 * every count is bounded by the bytes left, types by the known types, and trailing bytes are
 * refused, so a malformed record is AQ_EPROTO and never half-read.
 */
#ifndef AQ_FRAME_META_H
#define AQ_FRAME_META_H

#include <stddef.h>
#include <stdint.h>

#define AQ_FRAME_META_REPAIR_MAX 100 /* repair lines a record keeps, at most */

/* A record, decoded. */
typedef struct aq_frame_meta {
    char *name;
    char *source; /* the file's base name */
    uint64_t source_size;
    uint32_t ncols;
    char **cols;
    uint8_t *types; /* aq_csv_type */
    uint32_t nchunks;
    uint32_t *rows; /* per chunk */
    uint64_t total_rows;
    uint8_t *setup; /* the encoded aq_csv setup the file was read with */
    size_t slen;
    /* version 2: rows the parse repaired (count, first lines ascending) and the lines it did not
     * read (a second table or footer below the first): unread_from..unread_to, 0 when none */
    uint64_t repaired;
    uint32_t nrepair;
    uint64_t *repair_line;
    uint64_t unread_from, unread_to;
} aq_frame_meta;
int aq_frame_meta_encode(const aq_frame_meta *m, uint8_t **out, size_t *len);
/* On success *m owns its fields: release them with aq_frame_meta_free. On failure *m is untouched.
 */
int aq_frame_meta_decode(const uint8_t *p, size_t n, aq_frame_meta *m);
void aq_frame_meta_free(aq_frame_meta *m);

#endif
