#!/usr/bin/env bash
# Big files through the real binaries on a local 3-node cluster (replicas 2), checked by pandas:
# 1. a generated airline-like file of AQ_BIG_MB (default 300) MB: `summary --json` equals what pandas
#    computes on the file; the export, read by pandas, holds the same values; the export parses
#    back to the same summary; the command's memory stays far below the file's size.
# 2. a column that is int for 5,000,000 rows and then one float: the frame says float, and the
#    values at both ends are right.
# Release tree only (pandas and a sanitizer build of the nodes would take most of the time budget).
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"
source "$AQ_SRC/test/lib/frame.sh"
PY=/usr/bin/python3 # Debian's python3 with python3-pandas, whatever python3 is first on PATH
MB=${AQ_BIG_MB:-300}

it_conf 3 2
it_up

it_log "generating a ${MB} MB airline-like file"
"$PY" "$AQ_SRC/test/bench/gen_airline.py" "$T/air.csv" "$MB"
size=$(stat -c %s "$T/air.csv")

it_log "parse ($((size / 1000000)) MB), with the command's peak memory"
"$PY" - "$AQ" "$T/air.csv" "$T/parse.json" <<'PY' >"$T/rss.txt" || it_fail "parse failed: $(cat "$T/parse.json")"
import resource, subprocess, sys
aq, path, out = sys.argv[1:]
with open(out, "w") as f:
    rc = subprocess.run([aq, "parse", path, "--name", "air", "--json"], stdout=f).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
sys.exit(rc)
PY
rss=$(cat "$T/rss.txt")
it_log "parse: $(head -c 300 "$T/parse.json"); command peak RSS ${rss} MiB"
# Streaming keeps a few 4 MiB pieces in flight whatever the file's size.
[ "$rss" -lt 200 ] || it_fail "aquifer parse of a ${MB} MB file peaked at ${rss} MiB"

it_log "summary against pandas"
"$AQ" summary air --json >"$T/s1.json" || it_fail "summary"
"$PY" "$AQ_SRC/test/frame/pandas_check.py" summary "$T/s1.json" "$T/air.csv" ||
  it_fail "summary differs from pandas"

it_log "export, read back by pandas"
"$AQ" export air -o "$T/exp.csv" || it_fail "export"
"$PY" "$AQ_SRC/test/frame/pandas_check.py" export "$T/air.csv" "$T/exp.csv" "$T/s1.json" ||
  it_fail "exported values differ"

it_log "the export parses back to the same frame"
rm -f "$T/air.csv"
"$AQ" parse "$T/exp.csv" --name again >/dev/null || it_fail "parse of the export"
"$AQ" summary again --json >"$T/s2.json" || it_fail "summary again"
"$PY" - "$T/s1.json" "$T/s2.json" <<'PY' || it_fail "summary changed on the round trip"
import json, math, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["rows"] == b["rows"] and len(a["columns"]) == len(b["columns"])
bad = 0
for x, y in zip(a["columns"], b["columns"]):
    # The export cuts into other pieces, so partial sums merge in another order: mean and sd may
    # differ in the last bits; everything else is exact.
    for k in set(x) | set(y):
        close = k in ("mean", "sd") and math.isclose(x.get(k), y.get(k), rel_tol=1e-12)
        if x.get(k) != y.get(k) and not close:
            print("differs:", k, x, y)
            bad += 1
sys.exit(1 if bad else 0)
PY
rm -f "$T/exp.csv"
"$AQ" frame rm air >/dev/null && "$AQ" frame rm again >/dev/null || it_fail "frame rm"

it_log "int for 5,000,000 rows, then one float"
"$PY" - "$T/late.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,v\n")
    step = 1_000_000
    for lo in range(0, 5_000_000, step):
        f.write("".join(f"{i},{i * 3}\n" for i in range(lo, lo + step)))
    f.write("5000000,2.5\n")
PY
"$AQ" parse "$T/late.csv" --name late --json >"$T/late.json" || it_fail "parse late"
"$AQ" summary late --json >"$T/ls.json" || it_fail "summary late"
"$AQ" head late -n 2 >"$T/head.csv" || it_fail "head late"
"$PY" - "$T/ls.json" "$T/head.csv" <<'PY' || it_fail "late float: $(cat "$T/ls.json")"
import json, sys
s = json.load(open(sys.argv[1]))
id_, v = s["columns"]
assert s["rows"] == 5_000_001, s["rows"]
assert id_["type"] == "int", id_
assert v["type"] == "float", v
assert v["na"] == 0 and v["min"] == 0 and v["max"] == 3 * 4_999_999, v
want = (3 * sum(range(5_000_000)) + 2.5) / 5_000_001
assert abs(v["mean"] - want) <= 1e-9 * want, (v["mean"], want)
# A float column prints whole numbers with ".0" so that they parse back as float.
assert open(sys.argv[2]).read().splitlines() == ["id,v", "0,0.0", "1,3.0"]
PY
"$AQ" frame rm late >/dev/null || it_fail "frame rm late"

left=$(chunks)
[ "$left" = 0 ] || it_fail "$left chunks left on the nodes after frame rm"
it_log "ok"
