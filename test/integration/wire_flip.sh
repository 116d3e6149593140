#!/usr/bin/env bash
# A byte damaged on the wire past every transport check (aq_wireflip.so: one byte of one large
# socket write inverted) inside a value, which crosses the pipe as an end-to-end tail checked only
# by its digest: the receiver's digest check catches it, the same node is asked once more, and the
# put or get succeeds byte for byte; nothing damaged is stored or served. 3 nodes, replicas 1.
. "$(dirname "$0")/lib.sh"
it_conf 3 1
# Each node damages its first large write: the first GET reply carrying a part.
for n in n1 n2 n3; do it_start_with $n aq_wireflip.so AQ_WIRE_FLIP=1 AQ_WIRE_FLIP_MARK="$T/flip.$n"; done
for n in n1 n2 n3; do it_wait_state $n up; done
it_rand_file "$T/v" $((24 << 20)) # 6 parts: every node holds some
"$AQ" put big "$T/v" >/dev/null || it_fail "put failed"
"$AQ" get big -o "$T/got" 2>"$T/err" || it_fail "get with a part damaged on the wire: $(cat "$T/err")"
cmp -s "$T/got" "$T/v" || it_fail "get gave other bytes"
ls "$T"/flip.n* >/dev/null 2>&1 || it_fail "no node damaged a reply (the shim did nothing)"
it_log "get: $(ls "$T"/flip.n* | wc -l) replies damaged on the wire; the value came back whole"
"$AQ" get big | cmp -s - "$T/v" || it_fail "get to stdout gave other bytes"

# The command damages its first large write: a part of the put, in flight to its node.
LD_PRELOAD="$(it_preload aq_wireflip.so "$AQ")" AQ_WIRE_FLIP=1 AQ_WIRE_FLIP_MARK="$T/flip.put" \
  "$AQ" put big2 "$T/v" >"$T/out" 2>&1 || it_fail "put with a part damaged on the wire: $(cat "$T/out")"
[ -e "$T/flip.put" ] || it_fail "the put's write was not damaged (the shim did nothing)"
"$AQ" get big2 -o "$T/got2" 2>"$T/err" || it_fail "get of big2: $(cat "$T/err")"
cmp -s "$T/got2" "$T/v" || it_fail "the put stored other bytes"
want=$(xxhsum -H2 "$T/v" | cut -d' ' -f1)
"$AQ" stat big2 --json | grep -q "$want" || it_fail "stat big2 does not show the file's digest $want"
it_log "put: a part damaged on the wire was sent again; stored byte for byte"
