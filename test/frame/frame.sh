#!/usr/bin/env bash
# Frames end to end on a real three-node cluster (replicas 2): parse each h2o smalldata file and
# check rows, columns and types; summary of prostate.csv against python3's statistics; export ->
# parse again -> same summary; head; a ragged file fails naming its line and leaves no key behind;
# frames lists and frame rm removes. Every process started is stopped on any exit.
set -euo pipefail

: "${AQ_DATA_DIR:?AQ_DATA_DIR must point at h2o-smalldata}"
# A private cluster on free ports and cleanup that always runs (test/integration/lib.sh).
source "$AQ_SRC/test/integration/lib.sh"
source "$AQ_SRC/test/lib/frame.sh"

it_conf 3 2
step "cluster up"
it_up

# chunks (test/lib/frame.sh) without python, for polling while a parse runs (python's start-up
# alone outlasts the first pieces there).
chunks_fast() {
  aq status --json 2>/dev/null | grep -o '"chunks": [0-9]*' | awk '{s += $2} END {print s + 0}'
}

# parse FILE NAME ROWS COLS "TYPES" (space-separated type names, in column order)
check_parse() {
  local file=$1 name=$2 rows=$3 cols=$4 types=$5
  aq parse "$AQ_DATA_DIR/$file" --name "$name" --json >"$T/p.json" || fail "parse $file"
  python3 - "$T/p.json" "$rows" "$cols" "$types" <<'PY' || fail "parse $file: $(cat "$T/p.json")"
import json, sys
j = json.load(open(sys.argv[1]))
rows, cols, types = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()
got = [c["type"] for c in j["columns"]]
assert j["rows"] == rows, (j["rows"], rows)
assert j["ncols"] == cols == len(j["columns"]), (j["ncols"], cols)
if types:
    assert got == types, (got, types)
PY
  step "parsed $file: $rows x $cols"
}

step "parse the h2o smalldata files"
before=$(chunks)
check_parse iris_wheader.csv iris 150 5 "float float float float categorical"
aq summary iris --json >"$T/iris.json" || fail "summary iris"
python3 - "$T/iris.json" <<'PY' || fail "iris summary: $(cat "$T/iris.json")"
import json, sys
j = json.load(open(sys.argv[1]))
cls = j["columns"][4]
assert cls["cardinality"] == 3 and cls["na"] == 0, cls
assert sorted(t["count"] for t in cls["top"]) == [50, 50, 50], cls
PY
check_parse prostate.csv prostate 380 9 "int int int int int int float float int"
check_parse allyears2k_headers.csv allyears 43978 31 ""
aq summary allyears --json >"$T/ally.json" || fail "summary allyears"
python3 - "$T/ally.json" <<'PY' || fail "allyears: no NA seen"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["rows"] == 43978
assert sum(c["na"] for c in j["columns"]) > 0
PY
check_parse covtype.20k.data covtype 20000 55 ""

step "frames lists them"
aq frames >"$T/frames.txt"
for n in allyears covtype iris prostate; do
  grep -q "^$n	" "$T/frames.txt" || fail "frames misses $n: $(cat "$T/frames.txt")"
done
[ "$(wc -l <"$T/frames.txt")" -eq 4 ] || fail "frames lists extra lines: $(cat "$T/frames.txt")"

step "summary of prostate against python3 statistics"
aq summary prostate --json >"$T/s1.json" || fail "summary prostate"
python3 - "$T/s1.json" "$AQ_DATA_DIR/prostate.csv" <<'PY' || fail "summary differs"
import csv, json, math, statistics, sys
j = json.load(open(sys.argv[1]))
rows = list(csv.reader(open(sys.argv[2])))
head, data = rows[0], rows[1:]
assert j["rows"] == len(data) == 380
for i, name in enumerate(head):
    c = j["columns"][i]
    assert c["name"] == name, (c["name"], name)
    v = [float(r[i]) for r in data]
    want = {"min": min(v), "max": max(v), "mean": statistics.fmean(v), "sd": statistics.stdev(v)}
    for k, w in want.items():
        assert math.isclose(c[k], w, rel_tol=1e-9, abs_tol=1e-12), (name, k, c[k], w)
    assert c["na"] == 0
PY

step "head"
aq head prostate -n 3 >"$T/head.csv" || fail "head"
[ "$(wc -l <"$T/head.csv")" -eq 4 ] || fail "head -n 3 gave $(wc -l <"$T/head.csv") lines"
[ "$(head -1 "$T/head.csv")" = "$(head -1 "$AQ_DATA_DIR/prostate.csv" | tr -d '\r' | tr -d '"')" ] ||
  fail "head header: $(head -1 "$T/head.csv")"

step "export -o a character device leaves it one"
mknod "$T/null" c 1 3
aq export prostate -o "$T/null" || fail "export -o a character device"
[ -c "$T/null" ] || fail "export -o replaced a character device with a regular file"

step "export -> parse -> same summary"
for n in prostate allyears iris; do
  aq export $n -o "$T/$n.csv" || fail "export $n"
  aq parse "$T/$n.csv" --name "$n-again" >/dev/null || fail "parse export of $n"
  aq summary $n --json >"$T/a.json"
  aq summary "$n-again" --json >"$T/b.json"
  # Pieces fall at other rows in the exported file, so partial summaries merge in another order:
  # means and sds may differ in the last bits; everything else is exact.
  same_summary "$T/a.json" "$T/b.json" || fail "summary of $n changed on the round trip"
  aq export "$n-again" -o "$T/$n-again.csv" || fail "export $n-again"
  cmp -s "$T/$n.csv" "$T/$n-again.csv" || fail "export of the re-parsed $n differs"
done

step "a column that is numbers for a whole piece, then text: categorical, and summary works"
# The first 4 MiB piece holds only numbers in b, the last piece also text: the piece parsed as int
# is re-parsed as categorical and every chunk carries levels it does not use.
python3 -c '
import sys
w = sys.stdout.write
w("a,b\n")
for i in range(700000): w("%d,%d\n" % (i, i % 5000))
for i in range(1000): w("%d,x%d\n" % (i, i % 3))' >"$T/mixed.csv"
aq parse "$T/mixed.csv" --name mixed >/dev/null || fail "parse of the mixed column"
aq summary mixed --json >"$T/mixed.json" 2>"$T/err.txt" || fail "summary of the mixed column: $(cat "$T/err.txt")"
python3 - "$T/mixed.json" <<'PY' || fail "summary of the mixed column is wrong"
import json, sys
s = json.load(open(sys.argv[1]))
b = s["columns"][1]
assert s["rows"] == 701000, s["rows"]
assert b["type"] == "categorical" and b["cardinality"] == 5003 and b["na"] == 0, b
PY
aq frame rm mixed || fail "frame rm mixed"
# Levels that only an all-numbers piece holds: the first 4 MiB piece has 1000..1999 and 5, the last
# only 5 and text. They reach the merged domain through the levels round, or FINISH fails.
python3 -c '
import sys
w = sys.stdout.write
w("a,b\n")
for i in range(100000): w("%d,%d\n" % (i, 1000 + i % 1000))
for i in range(500000): w("%d,5\n" % i)
for i in range(100000): w("%d,y%d\n" % (i, i % 3))' >"$T/mixed2.csv"
aq parse "$T/mixed2.csv" --name mixed2 >/dev/null 2>"$T/err.txt" || fail "parse of levels only a numbers piece holds: $(cat "$T/err.txt")"
aq summary mixed2 --json >"$T/mixed2.json" || fail "summary of mixed2"
python3 - "$T/mixed2.json" <<'PY' || fail "summary of mixed2 is wrong"
import json, sys
b = json.load(open(sys.argv[1]))["columns"][1]
assert b["type"] == "categorical" and b["cardinality"] == 1004, b
PY
[ "$(aq export mixed2 | grep -c '^99999,"1999"$')" -eq 1 ] || fail "export of mixed2 lost a level only the numbers piece held"
aq frame rm mixed2 || fail "frame rm mixed2"

step "infinities are values, across pieces: summary as pandas computes it"
# Three 4 MiB pieces. x: inf in the first piece, -inf in the last (mean NaN); y: inf only in the
# middle one (mean inf); z: a NaN the file wrote in each piece (left out). Where the mean is not a
# number the sd is not one either, never 0; JSON carries them as "Infinity", "-Infinity", "NaN".
python3 -c '
import sys
w = sys.stdout.write
w("x,y,z\n")
n = 600000
for i in range(n):
    x = "inf" if i == 10 else "-inf" if i == n - 10 else "%d.5" % (i % 1000)
    y = "inf" if i == n // 2 else "%d.25" % (i % 777)
    z = "NaN" if i % 200000 == 7 else "%d" % (i % 91)
    w("%s,%s,%s\n" % (x, y, z))' >"$T/inf.csv"
aq parse "$T/inf.csv" --name inf >/dev/null || fail "parse of the infinities"
aq summary inf --json >"$T/inf.json" || fail "summary of the infinities"
/usr/bin/python3 "$AQ_SRC/test/frame/pandas_check.py" summary "$T/inf.json" "$T/inf.csv" ||
  fail "summary of the infinities differs from pandas: $(cat "$T/inf.json")"
python3 - "$T/inf.json" <<'PY' || fail "summary of the infinities is wrong: $(cat "$T/inf.json")"
import json, sys
x, y, z = json.load(open(sys.argv[1]))["columns"]
assert (x["min"], x["max"], x["mean"], x["sd"]) == ("-Infinity", "Infinity", "NaN", "NaN"), x
assert (y["max"], y["mean"], y["sd"]) == ("Infinity", "Infinity", "NaN"), y
assert z["type"] in ("int", "float") and isinstance(z["sd"], float) and z["sd"] > 0, z
PY
aq summary inf | grep -E '^x +float +0 +-inf +inf +NaN +NaN$' >/dev/null ||
  fail "summary's table does not show x's infinities: $(aq summary inf)"
aq frame rm inf || fail "frame rm inf"

step "a ragged file: --strict fails naming its line and leaves no key; else repaired and counted"
mid=$(chunks)
{ echo "a,b,c"; for i in $(seq 1 100); do echo "$i,$i,$i"; done; echo "1,2"; echo "4,5,6"; } >"$T/ragged.csv"
if aq parse "$T/ragged.csv" --strict 2>"$T/err.txt"; then fail "ragged parse succeeded"; fi
grep -q "line 102" "$T/err.txt" || fail "error does not name line 102: $(cat "$T/err.txt")"
[ "$(chunks)" -eq "$mid" ] || fail "ragged parse left keys: $mid -> $(chunks)"
aq frames | it_has "^ragged" && fail "ragged frame exists"
aq parse "$T/ragged.csv" >"$T/out.txt" || fail "tolerant parse of the ragged file"
grep -q "repaired 1 row .*line 102" "$T/out.txt" || fail "parse does not report the repair: $(cat "$T/out.txt")"
aq frames --json | python3 -c '
import json, sys
f = [x for x in json.load(sys.stdin) if x["name"] == "ragged"][0]
assert f["rows"] == 102 and f["repaired_rows"] == 1 and f["repaired_lines"] == [102], f' ||
  fail "frames --json does not keep the repair"
aq summary ragged | it_has "repaired 1 row" || fail "summary does not show the repair"
aq frame rm ragged || fail "frame rm ragged"

step "bad input refused early"
: >"$T/empty.csv"
if aq parse "$T/empty.csv" 2>"$T/err.txt"; then fail "empty parse succeeded"; fi
grep -q "empty" "$T/err.txt" || fail "empty: $(cat "$T/err.txt")"
head -c 3000 /dev/urandom >"$T/bin.csv"; printf '\0' >>"$T/bin.csv"
if aq parse "$T/bin.csv" 2>"$T/err.txt"; then fail "binary parse succeeded"; fi
grep -q "not a text file" "$T/err.txt" || fail "binary: $(cat "$T/err.txt")"
rc=0; aq summary nosuch >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "summary of a missing frame exited $rc, not 2"
if aq parse "$AQ_DATA_DIR/iris_wheader.csv" --name iris 2>"$T/err.txt"; then fail "replaced iris"; fi
grep -q "exists" "$T/err.txt" || fail "existing frame: $(cat "$T/err.txt")"

step "frame rm removes everything"
for n in iris prostate allyears covtype prostate-again allyears-again iris-again; do
  aq frame rm $n || fail "frame rm $n"
done
[ -z "$(aq frames)" ] || fail "frames after rm: $(aq frames)"
[ "$(chunks)" -eq "$before" ] || fail "frame rm left chunks: $before -> $(chunks)"
rc=0; aq frame rm iris 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "rm of a removed frame exited $rc"

step "a parse killed midway leaves keys that frame rm removes; frames never shows it"
base=$(chunks)
# Big enough (~115 MB) that the parse is still running when the polling below sees its first keys.
COPIES=25
{ head -1 "$AQ_DATA_DIR/allyears2k_headers.csv"
  for _ in $(seq 1 $COPIES); do tail -n +2 "$AQ_DATA_DIR/allyears2k_headers.csv"; done; } >"$T/big.csv"
# Not through aq(): $! of a backgrounded function is a subshell, and killing it leaves the parse on.
"$AQ" -c "$CONF" parse "$T/big.csv" --name killed >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do [ "$(chunks_fast)" -gt "$base" ] && break; sleep 0.02; done
kill -KILL $pid 2>/dev/null || true
krc=0; wait $pid 2>/dev/null || krc=$?
# Calls the dead command had started still finish on the nodes: wait until the count settles.
prev=-1
for _ in $(seq 1 30); do now=$(chunks); [ "$now" -eq "$prev" ] && break; prev=$now; sleep 1; done
# A frame exists once its metadata is stored (the raw pieces are removed after that), so a kill that
# lands late may leave a listed frame: then it must be whole. Never may a partial frame be listed.
rows_killed=$(aq frames --json | python3 -c 'import json,sys; print(next((f["rows"] for f in json.load(sys.stdin) if f["name"] == "killed"), -1))')
if [ "$rows_killed" != -1 ]; then
  [ "$rows_killed" -eq $((43978 * COPIES)) ] || fail "a partial frame is listed ($rows_killed rows)"
  echo "(the kill landed after the frame was complete, exit $krc; checked it is whole instead)"
elif [ $krc -eq 0 ]; then
  fail "a parse that finished is not listed"
fi
[ "$(chunks)" -gt "$base" ] || fail "the killed parse wrote nothing (test did not test)"
aq frame rm killed 2>"$T/err.txt" || fail "frame rm of an unfinished parse: $(cat "$T/err.txt")"
[ "$(chunks)" -eq "$base" ] || fail "frame rm left keys of the unfinished parse: $base -> $(chunks)"
aq parse "$T/big.csv" --name killed >/dev/null || fail "parse of the big file"
[ "$(aq frames --json | python3 -c 'import json,sys; print([f["rows"] for f in json.load(sys.stdin) if f["name"] == "killed"][0])')" -eq $((43978 * COPIES)) ] ||
  fail "big frame rows"
aq frame rm killed || fail "frame rm killed"
[ "$(chunks)" -eq "$base" ] || fail "frame rm of the big frame left keys"

step "a node killed during a parse: it fails naming the node and leaves no key on the others"
[ "$(chunks)" -eq 0 ] || fail "keys left before the node-kill step"
aq parse "$T/big.csv" --name nodekill >"$T/out.txt" 2>"$T/err.txt" &
pid=$!
for _ in $(seq 1 400); do [ "$(chunks_fast)" -gt 0 ] && break; sleep 0.02; done
kill -KILL "$(cat "$T/run/n2.pid")"
prc=0; wait $pid || prc=$?
if [ $prc -eq 0 ]; then
  # The parse outran the kill: then it must be whole.
  step "(the parse finished before n2 died)"
  aq summary nodekill --json >"$T/nk.json" || fail "summary after the kill"
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["rows"] == 43978 * int(sys.argv[2])' "$T/nk.json" "$COPIES" ||
    fail "rows after the kill"
  aq frame rm nodekill || fail "frame rm nodekill"
else
  grep -q "n2" "$T/err.txt" || fail "the failure does not name n2: $(cat "$T/err.txt")"
  aq frames | it_has nodekill && fail "a failed parse is listed"
fi
[ "$(chunks)" -eq 0 ] || fail "keys left on the live nodes after the failed parse: $(chunks)"
aq cluster up >/dev/null || fail "n2 back up"

step "with a node down: parse, summary, export, frame rm"
kill -TERM "$(cat "$T/run/n3.pid")"
for _ in $(seq 1 100); do
  aq status --json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["reachable"] != 2)' && break
  sleep 0.1
done
aq parse "$AQ_DATA_DIR/allyears2k_headers.csv" --name down >/dev/null || fail "parse with n3 down"
aq summary down --json >"$T/down.json" || fail "summary with n3 down"
same_summary "$T/ally.json" "$T/down.json" || fail "summary with n3 down differs"
[ "$(aq export down | wc -l)" -eq 43979 ] || fail "export with n3 down"

step "n3 back (empty: no data_dir): summary finds the chunks on the other replicas"
aq cluster up >/dev/null || fail "cluster up again"
aq summary down --json >"$T/back.json" || fail "summary after n3 came back"
same_summary "$T/down.json" "$T/back.json" || fail "summary changed after n3 came back"
aq frame rm down || fail "frame rm down"
[ -z "$(aq frames)" ] || fail "frames after rm: $(aq frames)"

step "cluster down"
aq cluster down >/dev/null || fail "cluster down"
if grep -l "AddressSanitizer\|LeakSanitizer\|runtime error:" "$T"/run/*.log; then
  fail "sanitizer report in a node log"
fi
step "ok"
