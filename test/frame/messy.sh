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
