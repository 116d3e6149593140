#!/usr/bin/env bash
# A replica frozen (SIGSTOP: no crash, no reset; its kernel still takes bytes until its buffers fill)
# while a coordinator forwards it copies: each write is answered once the coordinator calls the
# replica down, with the copies it has, and not at call_timeout, also when 32 MiB of forwards sit in
# the stalled pipe. After the replica thaws every value reads back whole. Then the command's own
# calls: a put, a get and a put -r that the node freezes under go on to other replicas once the
# other nodes call it down.
. "$(dirname "$0")/lib.sh"

# The replica is called down after 6 s of silence (heartbeat 1s), so the writes below reach the
# coordinator while it still counts the replica live and forward to it. call_timeout is far past
# the writers' own 60 s: a write that waited it out fails the test.
it_conf 3 2 "call_timeout = 600s"
sed -i 's/^heartbeat = 200ms$/heartbeat = 1s/' "$CONF"
grep -q '^heartbeat = 1s$' "$CONF" || it_fail "could not set the heartbeat"
it_up
# Keys whose two replicas are n1 and n2: written through n1, each is forwarded to n2.
mapfile -t keys < <("$AQ_TEST_BIN/aq_place" "$CONF" $(seq -f 'fz/k%g' 1 200) |
  awk '($2 == "n1" && $3 == "n2") || ($2 == "n2" && $3 == "n1") { print $1 }' | head -9)
[ ${#keys[@]} = 9 ] || it_fail "only ${#keys[@]} keys placed on n1 and n2"
# Eight 4 MiB values (over the pipe: more than the frozen node's socket takes) and a small one
# (one datagram).
for i in 0 1 2 3 4 5 6 7; do it_rand_file "$T/v$i" $((4 << 20)); done
it_rand_file "$T/v8" 1000

it_log "9 writes through n1, each forwarded to n2, which freezes before they are sent"
pids=()
for i in "${!keys[@]}"; do
  "$AQ_TEST_BIN/aq_putvia" "$CONF" n1 "${keys[i]}" "$T/v$i" 60000 3000 >"$T/p$i.out" 2>"$T/p$i.err" &
  pids+=($!)
done
for i in "${!keys[@]}"; do
  for ((w = 0; w < 300; w++)); do grep -q probed "$T/p$i.out" && break; sleep 0.1; done
  grep -q probed "$T/p$i.out" || it_fail "n1 did not answer STATUS: $(cat "$T/p$i.err")"
done
kill -STOP "$(it_pid n2)"
IT_CLEANUPS+=("kill -CONT $(it_pid n2) 2>/dev/null")
# Each write waits 3 s after its probe; one sent before the freeze (a slow start of the others)
# would store both copies, which is right but proves nothing here.
frozen_ones=0
for i in "${!keys[@]}"; do
  set +e
  wait "${pids[i]}"
  rc=$?
  set -e
  [ $rc = 0 ] || it_fail "the write of ${keys[i]} exited $rc: $(cat "$T/p$i.err")"
  grep -qxE 'stored [12] of 2' "$T/p$i.out" || it_fail "${keys[i]}: $(cat "$T/p$i.out")"
  grep -qx 'stored 1 of 2' "$T/p$i.out" && frozen_ones=$((frozen_ones + 1))
done
[ $frozen_ones -ge 1 ] || it_fail "every write stored both copies: none reached n1 after the freeze"
# The forwards were sent and then ended when n2 was called down, not skipped because it was down
# already (which would prove nothing here).
canceled=$(grep -c 'call PUT to n2 .* canceled after' "$T/run/n1.log" || true)
[ "$canceled" -ge 1 ] || it_fail "n1 canceled no forward to n2; its log: $(tail -5 "$T/run/n1.log")"
grep -q 'calls pending to n2 canceled' "$T/run/n1.log" || it_fail "n1 did not log the cancel"
it_log "all 9 answered while n2 is frozen ($frozen_ones of them with 1 of 2 copies; $canceled forwards canceled)"

# While n2 is still frozen, and after it thaws, each value reads back whole.
check_all() {
  for i in "${!keys[@]}"; do
    rm -f "$T/got"
    "$AQ" get "${keys[i]}" -o "$T/got" 2>"$T/get.err" || it_fail "get ${keys[i]} ($1): $(cat "$T/get.err")"
    cmp -s "$T/v$i" "$T/got" || it_fail "get ${keys[i]} ($1) gave other bytes"
  done
}
check_all "n2 frozen"
kill -CONT "$(it_pid n2)"
it_wait_state n2 up 60
check_all "n2 thawed"
it_log "9 writes answered while their replica was frozen, all read back"

# The command's own calls: a put and a get that n2 freezes under, each past its first chunks. Each
# call pending to n2 waits until the other nodes call n2 down, then goes to the next replica
# (without that, it would wait call_timeout + 5 s: past the bound here).
# 128 MiB: of the 30 parts left after the freeze, some have n2 first among their replicas (all but
# once in 190,000 puts), so the command itself has calls pending to it.
it_rand_file "$T/big" $((128 << 20))
# frozen_mid PHASE: freeze n2 once $T/half exists, then let the command go on ($T/go).
frozen_mid() {
  for ((w = 0; w < 600; w++)); do [ -e "$T/half" ] && break; sleep 0.1; done
  [ -e "$T/half" ] || it_fail "$1: the command never got half way"
  sleep 0.5
  kill -STOP "$(it_pid n2)"
  touch "$T/go"
}
it_log "put of 128 MiB from a pipe; n2 freezes after its first 8 MiB"
rm -f "$T/half" "$T/go"
python3 -c '
import os, sys, time
data = open(sys.argv[1], "rb").read()
out = sys.stdout.buffer
out.write(data[:8 << 20]); out.flush()
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]): time.sleep(0.05)
out.write(data[8 << 20:]); out.flush()' "$T/big" "$T/half" "$T/go" |
  timeout 120 "$AQ" put fz/big - >"$T/put.out" 2>"$T/put.err" &
putp=$!
frozen_mid put
rc=0
wait $putp || rc=$?
[ $rc = 0 ] || it_fail "the put n2 froze under exited $rc: $(cat "$T/put.err")"
grep -q "n2 (.*) stopped answering and the other nodes call it down" "$T/put.err" ||
  it_fail "the put did not say n2 was called down: $(cat "$T/put.err")"
grep -q "missing: n2" "$T/put.err" || it_fail "the put did not name n2 as missing: $(cat "$T/put.err")"
"$AQ" get fz/big -o "$T/got" || it_fail "get fz/big with n2 frozen"
cmp -s "$T/big" "$T/got" || it_fail "fz/big read back other bytes"
kill -CONT "$(it_pid n2)"
it_wait_state n2 up 60

it_log "get of 128 MiB to a reader that pauses after 8 MiB; n2 freezes meanwhile"
# Both copies of every part, n2's among them, so that parts are asked of n2 after the freeze.
"$AQ" put fz/big "$T/big" >"$T/put2.out" || it_fail "put fz/big again"
grep -q "stored 2 of 2" "$T/put2.out" || it_fail "fz/big: $(cat "$T/put2.out")"
rm -f "$T/half" "$T/go" "$T/got"
timeout 120 "$AQ" get fz/big 2>"$T/get.err" | python3 -c '
import os, sys, time
inp = sys.stdin.buffer
with open(sys.argv[1], "wb") as f:
    f.write(inp.read(8 << 20))
    open(sys.argv[2], "w").close()
    while not os.path.exists(sys.argv[3]): time.sleep(0.05)
    while True:
        b = inp.read(1 << 20)
        if not b: break
        f.write(b)' "$T/got" "$T/half" "$T/go" &
getp=$!
frozen_mid get
rc=0
wait $getp || rc=$?
[ $rc = 0 ] || it_fail "the get n2 froze under failed: $(cat "$T/get.err")"
cmp -s "$T/big" "$T/got" || it_fail "the get n2 froze under gave other bytes: $(cat "$T/get.err")"
grep -q "n2 (.*) stopped answering and the other nodes call it down" "$T/get.err" ||
  it_fail "the get did not say n2 was called down: $(cat "$T/get.err")"
kill -CONT "$(it_pid n2)"
it_wait_state n2 up 60

it_log "put -r of 3000 files; n2 freezes once 20 are open"
python3 -c '
import os, sys
os.makedirs(sys.argv[1])
for i in range(3000):
    open(os.path.join(sys.argv[1], "f%04d" % i), "wb").write(os.urandom(3000))' "$T/tree"
rc=0
timeout 120 /usr/bin/python3 "$(dirname "$0")/stop_at.py" --watch "$T/tree" --opens 20 \
  --limit 3000 --then "kill -STOP $(it_pid n2)" -- "$AQ" put -r "$T/tree" tr/ --json \
  >"$T/tree.json" 2>"$T/tree.err" || rc=$?
[ $rc = 0 ] || it_fail "the put -r n2 froze under exited $rc: $(head -5 "$T/tree.err")"
grep -q "put -r $T/tree: warning: n2 (.*) stopped answering and the other nodes call it down" \
  "$T/tree.err" || it_fail "the put -r did not say n2 was called down: $(head -5 "$T/tree.err")"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
sys.exit(0 if d["stored"] == 3000 and d["failed"] == 0 and d["missing"] == ["n2"] else 1)' \
  "$T/tree.json" || it_fail "put -r summary: $(cat "$T/tree.json")"
"$AQ" get -r tr/ "$T/tree.got" >/dev/null 2>"$T/treeget.err" || it_fail "get -r: $(head -3 "$T/treeget.err")"
diff -r "$T/tree" "$T/tree.got" >/dev/null || it_fail "get -r gave back another folder"
kill -CONT "$(it_pid n2)"
it_log "frozen_replica: writes forwarded to a frozen replica, and a put, a get and a put -r of the command, all went on once it was called down"
