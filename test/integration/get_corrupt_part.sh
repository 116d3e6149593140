#!/usr/bin/env bash
# A large get checks each part against its digest as its reply arrives; a part whose bytes fail the
# check is fetched from the next replica, and the get still succeeds byte for byte (the whole
# value's digest included). 3 nodes, replicas 3: a 12 MiB value's first part is damaged in the
# memory of two of the three nodes (flip_mem.py; the node serves the bytes its store adopted from
# the PUT's receive buffer), a different node kept intact each round, so in most rounds the first
# nodes asked send bad bytes; six rounds, each a fresh put (new parts).
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
it_conf 3 3
it_up
nodes=(n1 n2 n3)
for round in 0 1 2 3 4 5; do
  keep=${nodes[round % 3]}
  it_rand_file "$T/v" $((12 << 20))
  dd if="$T/v" of="$T/part0" bs=1M count=4 status=none
  "$AQ" put "c/$round" "$T/v" >/dev/null || it_fail "put c/$round failed"
  for n in "${nodes[@]}"; do
    [ "$n" = "$keep" ] && continue
    python3 "$HERE/flip_mem.py" "$(it_pid "$n")" "$T/part0" >/dev/null ||
      it_fail "round $round: part 0 not found in $n's memory"
  done
  "$AQ" get "c/$round" -o "$T/got" 2>"$T/err" || it_fail "round $round (intact on $keep): $(cat "$T/err")"
  cmp -s "$T/got" "$T/v" || it_fail "round $round: get gave other bytes"
  it_log "round $round: part 0 intact only on $keep; get byte for byte"
done
