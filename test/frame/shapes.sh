#!/usr/bin/env bash
# Every shape of test/bench/gen_shapes.py through the real binaries on a local 3-node cluster
# (replicas 2), checked by pandas as big.sh checks the airline file: for each shape, a file of
# AQ_SHAPES_MB (default 9: three pieces, one per node, so types, domains and quoted newlines meet
# piece cuts) MB is parsed; every column has the type its generator means; `summary --json` equals
# what pandas computes on the file;
# the export, read by pandas, holds the same values cell by cell; `frames --json` reports the
# bytes the frame holds (every copy, one copy, per column type) consistently with the cluster's own
# chunk count; `frame rm` leaves no chunk behind.
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"
source "$AQ_SRC/test/lib/frame.sh"
PY=/usr/bin/python3 # Debian's python3 with python3-pandas, whatever python3 is first on PATH
MB=${AQ_SHAPES_MB:-9}
SHAPES=${AQ_SHAPES:-quoted cats wide text times airline}

it_conf 3 2
it_up

for shape in $SHAPES; do
  it_log "$shape: generating ${MB} MB"
  "$PY" "$AQ_SRC/test/bench/gen_shapes.py" --shape "$shape" --mb "$MB" --seed 16 -o "$T/$shape.csv"
  "$AQ" parse "$T/$shape.csv" --name "$shape" --json >"$T/parse.json" ||
    it_fail "$shape: parse failed: $(cat "$T/parse.json")"
  it_log "$shape: $(head -c 200 "$T/parse.json")"
  "$PY" - "$T/parse.json" "$shape" "$T/$shape.csv" <<'PY' || it_fail "$shape: a column has the wrong type"
import csv, json, sys
p, shape = json.load(open(sys.argv[1])), sys.argv[2]
I, F, T, C, S = "int", "float", "time", "categorical", "string"
want = {"quoted": [I, I, I, T, I, C, I, C, C, I, F, I, I, F, S],
        "cats": [I, C, C, C, C, I, F],
        "wide": [I] * 64 + [F] * 64,
        "text": [I, C, F, None, S],
        "times": [I, T, T, T, T, T, T, F, I]}.get(shape)
if shape == "text":
    # Short titles, nearly all distinct: categorical while their levels stay under the level cap
    # (65,536) and 1 MiB of text (docs/FRAMES.md), string beyond.
    with open(sys.argv[3], newline="", encoding="utf-8") as f:
        titles = {r[3] for r in csv.reader(f)} - {"title"}
    small = len(titles) < 60_000 and sum(len(t.encode()) for t in titles) < 900_000
    want[3] = C if small else S
got = [c["type"] for c in p["columns"]]
bad = [(c["name"], t, w) for c, t, w in zip(p["columns"], got, want or got) if t != w]
for name, t, w in bad:
    print(f"{shape}: column {name} is {t}, expected {w}")
sys.exit(1 if bad or (want and len(want) != len(got)) else 0)
PY

  "$AQ" summary "$shape" --json >"$T/s.json" || it_fail "$shape: summary"
  "$PY" "$AQ_SRC/test/frame/pandas_check.py" summary "$T/s.json" "$T/$shape.csv" ||
    it_fail "$shape: summary differs from pandas"
  "$AQ" export "$shape" -o "$T/exp.csv" || it_fail "$shape: export"
  "$PY" "$AQ_SRC/test/frame/pandas_check.py" export "$T/$shape.csv" "$T/exp.csv" "$T/s.json" ||
    it_fail "$shape: exported values differ"

  # The frame's size in the cluster: every column chunk counted once per copy (2 here), the sum
  # per type equal to the one-copy total, bytes per value from the one-copy total.
  "$AQ" frames --json >"$T/frames.json" || it_fail "$shape: frames --json"
  "$AQ" status --json >"$T/status.json" || it_fail "$shape: status"
  "$PY" - "$T/frames.json" "$T/status.json" "$T/s.json" "$shape" "$(stat -c %s "$T/$shape.csv")" <<'PY' ||
import json, sys
frames, status, summary = (json.load(open(p)) for p in sys.argv[1:4])
name, size = sys.argv[4], int(sys.argv[5])
f = next(x for x in frames if x["name"] == name)
cols = summary["columns"]
assert f["source_size"] == size, f
assert f["chunk_keys"] == f["chunks"] * len(cols), f
# Only this frame is in the cluster: every stored chunk but its metadata's 2 copies is a copy of
# one of its column chunks.
held = sum(n.get("chunks", 0) for n in status["nodes"])
assert f["chunk_copies"] == 2 * f["chunk_keys"] == held - 2, (f, held)
assert f["bytes_held"] == 2 * f["bytes_one_copy"] > 0, f
by_type = f["bytes_by_type"]
assert sum(by_type.values()) == f["bytes_one_copy"], f
assert set(by_type) == {c["type"] for c in cols}, (by_type, [c["type"] for c in cols])
values = f["rows"] * len(cols)
assert abs(f["bytes_per_value"] - f["bytes_one_copy"] / values) < 1e-6, f
# A typed frame is smaller than twice its text, and no column chunk is empty.
assert f["bytes_one_copy"] < 2 * size, f
print(f"frames: {f['bytes_one_copy']} B one copy ({f['bytes_one_copy'] / size:.2f} of the CSV), "
      f"{f['bytes_per_value']:.2f} B/value, {by_type}")
PY
    it_fail "$shape: frames --json sizes wrong: $(cat "$T/frames.json")"
  "$AQ" frames | it_has "^$shape	" || it_fail "$shape: not in frames"
  "$AQ" frame rm "$shape" >/dev/null || it_fail "$shape: frame rm"
  rm -f "$T/$shape.csv" "$T/exp.csv"
done

left=$(chunks)
[ "$left" = 0 ] || it_fail "$left chunks left on the nodes after frame rm"
it_log "ok"
