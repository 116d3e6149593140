/* aq_frame_proto: a frame's keys and the messages of the frame calls (PARSE, FINISH, SUMMARY),
 * shared by the node's frame handlers (aq_node_frame.c) and the command (cli_parse.c, cli_frame.c).
 *
 * Like every node message (aq_node_proto.h), each is a flat little-endian record; decoders check
 * every length against what is left and reject trailing bytes, so a malformed call is refused with
 * AQ_EPROTO. They check the framing only: the handler checks what the fields say.
 */
#ifndef AQ_FRAME_PROTO_H
#define AQ_FRAME_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aq_bytes.h"
#include "aq_node_proto.h"

/* A frame's keys (all internal): raw piece i "\x1fF" NAME "/" i "\x1e" "p", column chunk j of piece
 * i the same with "c" j, metadata "\x1fM" NAME. Names are user keys of at most AQ_FRAME_NAME_MAX
 * bytes without '/', so derived keys fit AQ_NODE_KEY_MAX and one frame's keys never prefix
 * another's. */
#define AQ_FRAME_NAME_MAX 180
#define AQ_FRAME_PIECE    (-1)
bool aq_frame_name_ok(const void *name, size_t nlen);
/* col: a column index, or AQ_FRAME_PIECE for the raw piece. Returns the key length. */
size_t aq_frame_key(uint8_t out[AQ_NODE_KEY_MAX], const void *name, size_t nlen, uint32_t index,
                    int64_t col);
size_t aq_frame_meta_key(uint8_t out[AQ_NODE_KEY_MAX], const void *name, size_t nlen);
/* True for a raw piece's key. Pieces are scratch for one parse: stored once, on the node that
 * parses them, never replicated or repaired, and removed when the parse ends. */
bool aq_frame_key_is_piece(const uint8_t *key, size_t klen);

/* Frame calls (PARSE, FINISH, SUMMARY) share one request layout: str8 frame name, u32 + encoded
 * aq_csv setup (may be empty), u32 ncols, u8 has_types and then (when 1) ncols type bytes (FINISH:
 * the final types; PARSE: hints, where AQ_CSV_T_STR marks a column already string in the frame so
 * the node builds it as string at once, AQ_CSV_T_CAT asks for the levels of a column read as
 * categorical in every piece named (the levels round), and any other byte means nothing), u32 +
 * bytes of per-column blobs (FINISH: ncols x (u32 length, encoded domain); PARSE: empty, or the
 * parse's random u64 id, which lets the node's PARSE jobs of one parse share what they learn), u32
 * npieces, then npieces x (u32 index, u64 first line). The decoder checks the framing only; the
 * handler checks contents. */
#define AQ_FRAME_PIECE_REC 12
/* A categorical column's levels travel in the parse calls: past this much text (the levels of
 * the whole frame) the column is string instead, so that the calls stay far below
 * AQ_RPC_MAX_PAYLOAD. H2O likewise turns a column with too many levels into strings. */
#define AQ_FRAME_LEVELS_TEXT_MAX (1u << 20)
#define AQ_FRAME_COLS_MAX        (1u << 24)
typedef struct aq_frame_req {
    const uint8_t *name;
    size_t nlen;
    const uint8_t *setup;
    size_t slen;
    uint32_t ncols;
    const uint8_t *types; /* ncols bytes, or NULL */
    const uint8_t *blobs;
    size_t blen;
    uint32_t npieces;
    const uint8_t *pieces; /* npieces x AQ_FRAME_PIECE_REC bytes */
} aq_frame_req;
void aq_frame_req_encode(aq_wr *w, const aq_frame_req *r);
int aq_frame_req_decode(const uint8_t *p, size_t n, aq_frame_req *out);
void aq_frame_req_piece(const aq_frame_req *r, uint32_t i, uint32_t *index, uint64_t *first_line);

/* Frame reply: i32 status (0 or an aq error, e.g. AQ_EPARSE), str16 message (why, naming the line),
 * u32 npieces x (u32 index, u32 rows), u32 nblobs x (u32 length, bytes). PARSE: 2 blobs per column
 * (encoded aq_csv_obs, encoded domain); SUMMARY: 1 per column (encoded aq_csv_sum). */
typedef struct aq_frame_rep {
    int32_t status;
    const uint8_t *msg;
    size_t mlen;
    uint32_t npieces;
    const uint8_t *pieces; /* npieces x 8 bytes */
    uint32_t nblobs;
    const uint8_t *blobs; /* walk with aq_frame_blob_next */
    size_t blen;
} aq_frame_rep;
int aq_frame_rep_decode(const uint8_t *p, size_t n, aq_frame_rep *out);
void aq_frame_rep_piece(const aq_frame_rep *r, uint32_t i, uint32_t *index, uint32_t *rows);
/* Blob framing shared by requests and replies: u32 length then bytes. */
void aq_frame_blob_put(aq_wr *w, const void *p, size_t n);
int aq_frame_blob_next(aq_rd *r, const uint8_t **p, size_t *n);

#endif
