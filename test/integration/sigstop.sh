#!/usr/bin/env bash
# SIGSTOP one node for 5 s during 100 concurrent 4 MiB puts, then SIGCONT: every put either succeeded
# and reads back intact, or failed with a clear error; none reported stored is missing.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "call_timeout = 20s"
it_up
mkdir -p "$T/v" "$T/res"
for i in $(seq 1 100); do it_rand_file "$T/v/$i" $((4 << 20)); done
it_log "100 concurrent 4 MiB puts; n1 stopped for 5 s in the middle"
for i in $(seq 1 100); do
  ( if "$AQ" put "st/$i" "$T/v/$i" 2>"$T/res/$i.err"; then echo ok >"$T/res/$i"; else echo "fail $?" >"$T/res/$i"; fi ) &
done
sleep 0.5
kill -STOP "$(it_pid n1)"
sleep 5
kill -CONT "$(it_pid n1)"
wait
ok=0 failed=0 lost=0
for i in $(seq 1 100); do
  r=$(cat "$T/res/$i")
  if [ "$r" = ok ]; then
    ok=$((ok + 1))
    "$AQ" get "st/$i" -o "$T/got" 2>/dev/null && cmp -s "$T/v/$i" "$T/got" || { lost=$((lost + 1)); echo "st/$i reported stored but unreadable"; }
  else
    failed=$((failed + 1))
    # A clear error: one sentence on stderr naming what failed.
    [ -s "$T/res/$i.err" ] || it_fail "put st/$i failed silently ($r)"
    head -1 "$T/res/$i.err"
  fi
done
echo "sigstop: puts=100 ok=$ok failed_clearly=$failed lost=$lost"
[ $lost -eq 0 ] || it_fail "$lost values reported stored are missing or wrong"
