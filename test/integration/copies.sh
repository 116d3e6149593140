#!/usr/bin/env bash
# put and rm report the copies stored against the copies wanted; with a replica down they warn and
# name it, and --min-copies (or [cluster] min_copies) above what was reached fails with exit 4;
# --min-copies above the replicas is refused before anything changes.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "call_timeout = 3s"
it_up
echo "hello" >"$T/v"
out=$("$AQ" put cp/first "$T/v")
[ "$out" = "stored 2 of 2 copies" ] || it_fail "put printed '$out', not 'stored 2 of 2 copies'"
json=$("$AQ" put cp/first "$T/v" --json)
python3 - "$json" <<'PY' || it_fail "put --json: $json"
import json, sys
d = json.loads(sys.argv[1])
assert d["key"] == "cp/first" and d["stored"] is True, d
assert d["copies"] == 2 and d["wanted"] == 2 and d["min_copies"] == 1 and d["missing"] == [], d
PY

# More copies than replicas can never be reached: refused up front (exit 1), the value as it was.
echo "other" >"$T/v2"
for cmd in "put cp/first $T/v2" "rm cp/first" "put -r $T cp/tree/"; do
  set +e
  # shellcheck disable=SC2086 # each command's words
  "$AQ" $cmd --min-copies 3 >"$T/out" 2>"$T/err"
  rc=$?
  set -e
  [ $rc = 1 ] || it_fail "$cmd --min-copies 3 (replicas 2) exited $rc, not 1: $(cat "$T/err")"
  grep -q -- "--min-copies 3 is more than cluster .*'s replicas (2, in $CONF): .*nothing was done" "$T/err" ||
    it_fail "$cmd --min-copies 3 did not say why: $(cat "$T/err")"
done
[ "$("$AQ" get cp/first)" = "hello" ] || it_fail "a refused put or rm changed cp/first"
"$AQ" ls cp/tree/ | grep -q . && it_fail "a refused put -r stored files"

# A key one of whose replicas is n2, then n2 killed.
key=$("$AQ_TEST_BIN/aq_place" "$CONF" $(seq -f 'cp/k%g' 1 40) | awk '$2 == "n2" || $3 == "n2" { print $1; exit }')
[ -n "$key" ] || it_fail "no key placed on n2"
other=$("$AQ_TEST_BIN/aq_place" "$CONF" "$key" | awk '{ print ($2 == "n2") ? $3 : $2 }')
kill -9 "$(it_pid n2)"
it_wait_state n2 down
it_log "n2 down; writing $key (replicas n2 and $other)"

"$AQ" put "$key" "$T/v" >"$T/out" 2>"$T/err" || it_fail "put with one replica down failed: $(cat "$T/err")"
[ "$(cat "$T/out")" = "stored 1 of 2 copies" ] || it_fail "put printed '$(cat "$T/out")'"
grep -q "warning: only 1 of 2 copies stored; missing: n2 (" "$T/err" ||
  it_fail "put did not warn naming n2: $(cat "$T/err")"
grep -q "$other" "$T/err" && it_fail "the warning names $other, which holds a copy: $(cat "$T/err")"

set +e
"$AQ" put "$key" "$T/v" --min-copies 2 >"$T/out" 2>"$T/err"
rc=$?
set -e
[ $rc = 4 ] || it_fail "put --min-copies 2 with a replica down exited $rc, not 4"
grep -q "only 1 of 2 copies stored, fewer than min_copies 2 (missing: n2 (" "$T/err" ||
  it_fail "put --min-copies 2 did not say why: $(cat "$T/err")"

json=$("$AQ" put "$key" "$T/v" --json 2>/dev/null)
python3 - "$json" <<'PY' || it_fail "put --json with n2 down: $json"
import json, sys
d = json.loads(sys.argv[1])
assert d["copies"] == 1 and d["wanted"] == 2 and d["missing"] == ["n2"], d
PY

# [cluster] min_copies does the same for every command run with that config.
sed 's/^replicas = 2$/replicas = 2\nmin_copies = 2/' "$CONF" >"$T/strict.conf"
set +e
"$AQ" -c "$T/strict.conf" put "$key" "$T/v" >/dev/null 2>"$T/err"
rc=$?
set -e
[ $rc = 4 ] || it_fail "put with [cluster] min_copies = 2 and a replica down exited $rc, not 4"

"$AQ" rm "$key" >"$T/out" 2>"$T/err" || it_fail "rm failed: $(cat "$T/err")"
[ "$(cat "$T/out")" = "removed 1 of 2 copies" ] || it_fail "rm printed '$(cat "$T/out")'"
grep -q "warning: only 1 of 2 copies removed; missing: n2 (" "$T/err" ||
  it_fail "rm did not warn naming n2: $(cat "$T/err")"
"$AQ" put "$key" "$T/v" >/dev/null 2>&1
set +e
"$AQ" rm "$key" --min-copies 2 >/dev/null 2>"$T/err"
rc=$?
set -e
[ $rc = 4 ] || it_fail "rm --min-copies 2 with a replica down exited $rc, not 4"
echo "copies: ok"
