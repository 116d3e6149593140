#!/usr/bin/env bash
# The batch engine (put -r, get -r) with a node killed mid-batch (issues 15, 18): every file ends
# with its own outcome, success or a sentence naming the dead node; none is lost (stored or wrote +
# failed = files listed); what was stored or written is byte for byte the source. Replicas 1, so
# the keys placed on the killed node fail and the others must not.
. "$(dirname "$0")/lib.sh"

it_conf 3 1 "call_timeout = 2s"
it_up
for node in n1 n2 n3; do it_wait_state "$node" up; done

# same_bytes DIR: every file under DIR has the bytes of the file of that path under $D.
same_bytes() {
  /usr/bin/python3 - "$1" "$D" <<'EOF'
import os, sys
got, src = sys.argv[1], sys.argv[2]
for r, _, fs in os.walk(got):
    for f in fs:
        p = os.path.join(r, f)
        if open(p, "rb").read() != open(os.path.join(src, os.path.relpath(p, got)), "rb").read():
            sys.exit("differs: " + os.path.relpath(p, got))
EOF
}
N=6000
D=$T/src
/usr/bin/python3 - "$D" "$N" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "d%02d" % (i % 20))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%05d" % i), "wb") as f:
        f.write(os.urandom(4096))
for i in range(2):  # large files go through the synchronous path while the rest move
    with open(os.path.join(d, "big%d" % i), "wb") as f:
        f.write(os.urandom((5 << 20) + i))
EOF
want=$((N + 2))

# check_run JSON COUNT_FIELD: results add up to the files, every failure names n2.
check_run() {
  local j=$1 field=$2 files ok failed nfail named
  files=$(it_json 'd["files"]' <"$j")
  ok=$(it_json "d[\"$field\"]" <"$j")
  failed=$(it_json 'd["failed"]' <"$j")
  nfail=$(it_json 'len(d["failures"])' <"$j")
  [ "$files" = "$want" ] || it_fail "$j: files $files, not $want"
  [ $((ok + failed)) = "$files" ] || it_fail "$j: $ok + $failed results for $files files (lost some)"
  [ "$nfail" = "$failed" ] || it_fail "$j: $failed failed but $nfail failures named"
  # A large file's part on n2 is reported "missing on every live node" by the single-value path
  # (cli_xfer.c), which does not name the node: accepted for the two large files only.
  named=$(it_json 'sum(1 for f in d["failures"] if "n2" in f["error"] or (f["path"].startswith("big") and "missing on every live node" in f["error"]))' <"$j")
  [ "$named" = "$failed" ] || it_fail "$j: a failure does not name n2: $(it_json '[f["error"] for f in d["failures"] if "n2" not in f["error"]][:3]' <"$j")"
  [ "$failed" -gt 0 ] || it_fail "$j: nothing failed although n2 was killed mid-batch"
  it_log "$field $ok, failed $failed (each naming n2)"
}

# kill_when CMD_PID COUNT_CMD: kill -9 n2 once COUNT_CMD prints at least 50, while CMD_PID runs.
kill_when() {
  local pid=$1 i
  for ((i = 0; i < 3000; i++)); do
    [ "$(eval "$2")" -ge 50 ] && break
    sleep 0.01
  done
  kill -0 "$pid" 2>/dev/null || it_fail "the batch ended before n2 was killed; raise N"
  kill -KILL "$(it_pid n2)"
}

it_log "put -r of $want files, n2 killed mid-batch"
"$AQ" put -r "$D" "k/" --json >"$T/put.json" 2>"$T/put.err" &
pid=$!
kill_when $pid "'$AQ' ls k/ 2>/dev/null | wc -l"
rc=0
wait $pid || rc=$?
[ $rc = 4 ] || it_fail "put -r exited $rc, not 4: $(head -3 "$T/put.err")"
check_run "$T/put.json" stored
# What the live nodes hold reads back byte for byte, and none of it is a file reported failed
# (the keys stored on n2 before it died are gone with it: replicas 1, memory only). A large file
# stored before the kill may have had a part on n2: its read then fails saying so.
rc=0
"$AQ" get -r "k/" "$T/back" --json >"$T/back.json" 2>"$T/back.err" || rc=$?
[ $rc = 0 ] || [ $rc = 4 ] || it_fail "get -r of the stored keys exited $rc: $(head -3 "$T/back.err")"
[ "$(it_json 'sum(1 for f in d["failures"] if not (f["path"].startswith("big") and "missing on every live node" in f["error"]))' <"$T/back.json")" = 0 ] ||
  it_fail "get -r of the stored keys failed: $(head -3 "$T/back.err")"
same_bytes "$T/back" || it_fail "read back differs from the source"
/usr/bin/python3 - "$T/put.json" "$T/back" <<'EOF2' || it_fail "a file reported failed was stored"
import json, os, sys
d = json.load(open(sys.argv[1]))
failed = {f["path"] for f in d["failures"]}
back = {os.path.relpath(os.path.join(r, f), sys.argv[2]) for r, _, fs in os.walk(sys.argv[2]) for f in fs}
sys.exit(1 if failed & back else 0)
EOF2
[ "$(it_json 'd["wrote"]' <"$T/back.json")" -gt 0 ] || it_fail "nothing read back"

it_log "n2 back, everything stored again, then get -r with n2 killed mid-batch"
it_start_node n2
it_wait_state n2 up
"$AQ" put -r "$D" "g/" --json >"$T/put2.json" 2>"$T/put2.err" || it_fail "put -r with all nodes up failed: $(head -3 "$T/put2.err")"
"$AQ" get -r "g/" "$T/out" --json >"$T/get.json" 2>"$T/get.err" &
pid=$!
shopt -s nullglob
written() { local f=("$T"/out/d*/f*); echo ${#f[@]}; } # in-process: no find to wait for
kill_when $pid written
rc=0
wait $pid || rc=$?
[ $rc = 4 ] || it_fail "get -r exited $rc, not 4: $(head -3 "$T/get.err")"
check_run "$T/get.json" wrote
same_bytes "$T/out" || it_fail "get -r wrote different bytes"
[ -z "$(find "$T/out" -name '.aqtmp.*')" ] || it_fail "get -r left temporary files behind"
it_log "ok"
