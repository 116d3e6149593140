#!/usr/bin/env bash
# A text-heavy frame on nodes with little room: string chunks are stored while the file still
# streams (PARSE) only while a node's store stays under half of memory_max, so a parse whose
# frame fits the cluster never fails for storing early. 40 MB of gen_shapes.py's text shape on 3
# nodes (replicas 2) of memory_max 40 MiB each: the frame needs about 27 MB per node and the
# pieces about 13 MB more, so storing every string chunk early (beside the pieces) passes the
# cap, while storing them in FINISH (each piece dropped as its chunks land) does not. The parse
# must succeed, hold every row, and `frame rm` must leave no chunk.
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"
PY=/usr/bin/python3 # Debian's python3 with numpy, whatever python3 is first on PATH

it_conf 3 2
sed -i 's/^memory_max = .*/memory_max = 40MiB/' "$CONF"
it_up

it_log "generating 40 MB of the text shape"
"$PY" "$AQ_SRC/test/bench/gen_shapes.py" --shape text --mb 40 -o "$T/text.csv"
"$AQ" parse "$T/text.csv" --name b --json >"$T/parse.json" 2>"$T/err.txt" ||
  it_fail "parse with memory_max 40MiB failed: $(cat "$T/err.txt")"
want=$("$PY" -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))) - 1)' "$T/text.csv")
got=$("$AQ" frames --json | "$PY" -c 'import json,sys; print([f["rows"] for f in json.load(sys.stdin) if f["name"] == "b"][0])')
[ "$got" -eq "$want" ] || it_fail "the frame holds $got rows, the file $want"
"$AQ" frame rm b >/dev/null || it_fail "frame rm"
left=$("$AQ" status --json | grep -o '"chunks": [0-9]*' | awk '{s += $2} END {print s + 0}')
[ "$left" -eq 0 ] || it_fail "frame rm left $left chunks"
it_log "ok: $got rows"
