#!/usr/bin/env bash
# The messy-file corpus (test/data/messy) through a real two-node cluster: each NAME.<ext> is
# parsed (with the options in NAME.args, if any), exported, and the export compared byte for byte
# with NAME.expected.csv; NAME.expected.json, if present, holds members the parse's --json output
# must have (repairs, unread lines, dialect, column types). A header-only file must also list and
# summarize as an empty frame, and a zero-byte file must fail clearly. Every process started is
# stopped on any exit. AQ_MESSY_REGEN=1 writes the expected exports instead of comparing (review
# them before committing).
set -euo pipefail

source "$AQ_SRC/test/integration/lib.sh"
source "$AQ_SRC/test/lib/frame.sh"

DIR="$AQ_SRC/test/data/messy"
it_conf 2 1
step "cluster up"
it_up

n=0
for f in "$DIR"/*; do
  case "$f" in *.expected.csv | *.expected.json | *.args | *README*) continue ;; esac
  base=${f%.*}
  name=$(basename "$base")
  args=()
  [ -f "$base.args" ] && read -r -a args <"$base.args"
  aq parse "$f" --name "m-$name" --json "${args[@]}" >"$T/p.json" 2>"$T/err.txt" ||
    fail "parse of $name: $(cat "$T/err.txt")"
  aq export "m-$name" -o "$T/out.csv" 2>"$T/err.txt" || fail "export of $name: $(cat "$T/err.txt")"
  if [ "${AQ_MESSY_REGEN:-}" = 1 ]; then
    cp "$T/out.csv" "$base.expected.csv"
    echo "== $name: $(cat "$T/p.json")"
  else
    [ -f "$base.expected.csv" ] || fail "$name has no $name.expected.csv"
    cmp -s "$T/out.csv" "$base.expected.csv" ||
      fail "export of $name differs: $(diff "$T/out.csv" "$base.expected.csv" | head -20)"
  fi
  if [ -f "$base.expected.json" ]; then
    python3 - "$T/p.json" "$base.expected.json" <<'PY' || fail "parse of $name: $(cat "$T/p.json")"
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def sub(g, w, path):
    if isinstance(w, dict):
        for k, v in w.items():
            assert isinstance(g, dict) and k in g, (path + "." + k, "missing")
            sub(g[k], v, path + "." + k)
    else:
        assert g == w, (path, g, w)
sub(got, want, "")
PY
  fi
  n=$((n + 1))
done
step "$n messy files parse and export as expected"

step "a header-only file is an empty frame with its columns"
aq frames --json | python3 -c '
import json, sys
f = [x for x in json.load(sys.stdin) if x["name"] == "m-header_only"][0]
assert f["rows"] == 0 and f["columns"] == 3, f' || fail "frames of the header-only file"
aq summary m-header_only --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["rows"] == 0 and [c["name"] for c in s["columns"]] == ["alpha", "beta", "gamma"], s' ||
  fail "summary of the header-only file"
[ "$(aq head m-header_only)" = "alpha,beta,gamma" ] || fail "head of the header-only file"

step "a zero-byte file is a clear error"
: >"$T/zero.csv"
if aq parse "$T/zero.csv" 2>"$T/err.txt"; then fail "zero-byte parse succeeded"; fi
grep -q "empty" "$T/err.txt" || fail "zero-byte: $(cat "$T/err.txt")"

step "--strict refuses the ragged file naming its line"
if aq parse "$DIR/ragged.csv" --name strict --strict 2>"$T/err.txt"; then fail "strict parse of a ragged file succeeded"; fi
grep -q "line 3: 2 fields, expected 3" "$T/err.txt" || fail "strict: $(cat "$T/err.txt")"

# Past the samples and the first piece: files of several MiB, written here.
step "a quote never closed, with more than a piece of rows after it, is a byte"
python3 - "$T/stray_big.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,name,v\n")
    for i in range(1, 100):
        f.write(f'{i},"n{i}",{i * 3}\n')
    f.write('100,"never closed,300\n')
    for i in range(101, 400001):  # no quote after it: it would close the field
        f.write(f'{i},n{i},{i * 3}\n')
PY
aq parse "$T/stray_big.csv" --name stray-big --quote '"' --json >"$T/p.json" 2>"$T/err.txt" ||
  fail "parse of stray_big: $(cat "$T/err.txt")"
python3 - "$T/p.json" <<'PY' || fail "stray_big: $(cat "$T/p.json")"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["rows"] == 400000 and p["repaired_rows"] == 1 and p["repaired_lines"] == [101], p
assert [c["type"] for c in p["columns"]] == ["int", "string", "int"], p["columns"]
PY
aq export stray-big -o "$T/out.csv" || fail "export of stray_big"
python3 - "$T/out.csv" <<'PY' || fail "stray_big export"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert len(rows) == 400001, len(rows)
assert rows[100] == ["100", '"never closed', "300"], rows[100]
assert rows[350000] == ["350000", "n350000", "1050000"], rows[350000]
PY

step "a footer and a second table after a blank line past the first MiB are not read"
python3 - "$T/footer_big.csv" <<'PY'
import sys
with open(sys.argv[1], "w", newline="") as f:
    f.write("id,name,v\r\n")
    for i in range(1, 150001):
        f.write(f"{i},n{i},{i * 3}\r\n")
    f.write("\r\nSummary\r\nrows;150000\r\nsource;a survey\r\n")
PY
aq parse "$T/footer_big.csv" --name footer-big --json >"$T/p.json" 2>"$T/err.txt" ||
  fail "parse of footer_big: $(cat "$T/err.txt")"
python3 - "$T/p.json" <<'PY' || fail "footer_big: $(cat "$T/p.json")"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["rows"] == 150000 and p["unread_lines"] == [150003, 150005], p
assert p.get("repaired_rows", 0) == 0, p
assert [c["type"] for c in p["columns"]] == ["int", "string", "int"], p["columns"]
PY
aq frames --json | python3 -c '
import json, sys
f = [x for x in json.load(sys.stdin) if x["name"] == "footer-big"][0]
assert f["rows"] == 150000 and f["unread_lines"] == [150003, 150005], f' ||
  fail "frames of footer_big"

step "--fill: narrower rows after a blank line past the samples are the table's"
python3 - "$T/fill_big.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,name,v,w\n")
    for i in range(1, 100001):
        f.write(f"{i},n{i},{i * 3},{i}\n" if i % 2 else f"{i},n{i}\n")
    f.write("\n")
    for i in range(100001, 100011):
        f.write(f"{i},n{i}\n")
PY
aq parse "$T/fill_big.csv" --name fill-big --fill --json >"$T/p.json" 2>"$T/err.txt" ||
  fail "parse of fill_big: $(cat "$T/err.txt")"
python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
assert p["rows"] == 100010 and p["unread_lines"] is None, p
' "$T/p.json" || fail "fill_big: $(cat "$T/p.json")"
