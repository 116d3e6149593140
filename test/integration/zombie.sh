#!/usr/bin/env bash
# No zombie writes: a put reaches its coordinator (SIGSTOPped) and the client times out on it; a
# later put through the other replica succeeds; after SIGCONT the stopped node refuses the late
# request (its deadline passed) instead of applying it over the later put, and every replica
# serves the later value.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "call_timeout = 2s"
it_up
key=$("$AQ_TEST_BIN/aq_place" "$CONF" $(seq -f 'zz/k%g' 1 40) | awk '$2 == "n1" { print $1; exit }')
[ -n "$key" ] || it_fail "no key coordinated by n1"
other=$("$AQ_TEST_BIN/aq_place" "$CONF" "$key" | awk '{ print $3 }')
echo v0 >"$T/v0"
echo v1 >"$T/v1"
echo v2 >"$T/v2"
"$AQ" put "$key" "$T/v0" >/dev/null
it_log "put $key through n1 (replica $other) while n1 is stopped"
# As the command's attempt: n1's STATUS (its clock), then the PUT with a 3 s deadline. n1 is
# stopped in between, so the PUT reaches a coordinator that answered a moment ago but is frozen.
"$AQ_TEST_BIN/aq_putvia" "$CONF" n1 "$key" "$T/v1" 3000 2000 >"$T/p1.out" 2>"$T/p1.err" &
p1=$!
for ((i = 0; i < 300; i++)); do grep -q probed "$T/p1.out" && break; sleep 0.1; done
grep -q probed "$T/p1.out" || it_fail "n1 did not answer STATUS: $(cat "$T/p1.err")"
kill -STOP "$(it_pid n1)"
IT_CLEANUPS+=("kill -CONT $(it_pid n1) 2>/dev/null")
set +e
wait $p1
rc1=$?
set -e
[ $rc1 = 3 ] || it_fail "the put through the stopped n1 exited $rc1, not 3 (timed out): $(cat "$T/p1.err")"
it_wait_state n1 down
"$AQ" put "$key" "$T/v2" >"$T/p2.out" 2>"$T/p2.err" || it_fail "the later put failed: $(cat "$T/p2.err")"
kill -CONT "$(it_pid n1)"
it_wait_state n1 up
# After repair has run, every replica serves the later value.
ok=0
for ((i = 0; i < 60; i++)); do
  a=$("$AQ" -c "$(it_node_conf n1)" get "$key" 2>/dev/null || true)
  b=$("$AQ" -c "$(it_node_conf "$other")" get "$key" 2>/dev/null || true)
  if [ "$a" = v2 ] && [ "$b" = v2 ]; then ok=1; break; fi
  sleep 1
done
[ $ok = 1 ] || it_fail "after SIGCONT n1 serves '$a' and $other serves '$b', not the later put's v2"
grep -q "deadline passed" "$T/run/n1.log" ||
  it_fail "n1 never refused a late write: the stop did not catch the request in flight"
grep -h -m 3 "deadline passed" "$T/run/n1.log"
echo "zombie: ok"
