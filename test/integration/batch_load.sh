#!/usr/bin/env bash
# The write path under load: 4 KiB puts with 50 in flight
# through libaquifer's batch, to distinct keys and overwrites of one key. First with a node killed
# mid-run (replicas 2): every put ends with its own outcome, success or a sentence naming a node,
# and every acknowledged value reads back equal (the overwritten key holds one of its values).
# Then with a node stopped by SIGTERM while writes are in flight: every caller gets an answer, none
# hangs, and the node stops cleanly.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "call_timeout = 2s"
it_up
for node in n1 n2 n3; do it_wait_state "$node" up; done
LOAD=${AQ_TEST_BIN:-$AQ_BUILD/tests}/aq_batch_load
N=20000

# when_stored PREFIX: returns once the cluster lists at least 500 keys under PREFIX (bounded).
when_stored() {
  local i
  for ((i = 0; i < 3000; i++)); do
    [ "$("$AQ" ls "$1/" 2>/dev/null | wc -l)" -ge 500 ] && return 0
    sleep 0.01
  done
  it_fail "nothing stored under $1/ after 30 s"
}

# check_out FILE NODE: every failure names NODE (the one lost); prints the summary line.
check_out() {
  local bad
  bad=$(grep '^FAILED ' "$1" | grep -Ev "\\b$2\\b" | head -3 || true)
  [ -z "$bad" ] || it_fail "a failure names no node: $bad"
  grep -q '^acked=' "$1" || it_fail "no summary in $1"
  it_log "$(tail -1 "$1"), $(grep -c '^FAILED ' "$1" || true) failures, each naming $2"
}

it_log "$N puts with 50 in flight, n3 killed mid-run"
timeout 240 "$LOAD" -n $N -c 50 -p a >"$T/a.out" 2>"$T/a.err" &
pid=$!
when_stored a
kill -0 $pid 2>/dev/null || it_fail "the run ended before n3 was killed; raise N"
kill -KILL "$(it_pid n3)"
rc=0
wait $pid || rc=$?
[ $rc = 0 ] || it_fail "aq_batch_load exited $rc: $(head -5 "$T/a.err")"
check_out "$T/a.out" n3

it_log "$N puts with 50 in flight, n1 stopped (SIGTERM) mid-run"
timeout 240 "$LOAD" -n $N -c 50 -p b -V >"$T/b.out" 2>"$T/b.err" &
pid=$!
when_stored b
kill -0 $pid 2>/dev/null || it_fail "the run ended before n1 was stopped; raise N"
n1=$(it_pid n1)
kill -TERM "$n1"
rc=0
wait $pid || rc=$?
[ $rc = 0 ] || it_fail "aq_batch_load exited $rc (124: a caller hung): $(head -5 "$T/b.err")"
check_out "$T/b.out" n1
for ((i = 0; i < 300; i++)); do kill -0 "$n1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$n1" 2>/dev/null && it_fail "n1 still runs 30 s after SIGTERM"
grep -q 'stopped' "$T/run/n1.log" || it_fail "n1 did not stop cleanly: $(tail -3 "$T/run/n1.log")"
# A sanitizer build reports what the stop left behind (a write leaked, work freed late).
if grep -q 'Sanitizer' "$T/run/n1.log"; then
  it_fail "n1's stop: $(grep -m1 -A3 'Sanitizer' "$T/run/n1.log")"
fi
it_log "ok"
