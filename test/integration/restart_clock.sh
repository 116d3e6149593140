#!/usr/bin/env bash
# A cluster whose clocks were an hour ahead is restarted with them stepped back (data_dirs kept):
# every node keeps issuing versions above its old ones, so later puts win, on every replica.
. "$(dirname "$0")/lib.sh"

it_conf 2 2 "call_timeout = 3s" --persist
mkdir -p "$T/v"
for n in n1 n2; do it_start_skewed $n 3600; done
it_wait_state n1 up
it_wait_state n2 up
for i in $(seq 1 12); do
  echo "old $i" >"$T/v/old$i"
  "$AQ" put "rc/$i" "$T/v/old$i" >/dev/null
done
it_log "12 keys written with clocks +1 h; restarting with the clocks stepped back"
for n in n1 n2; do it_stop_node $n; done
for n in n1 n2; do it_start_skewed $n 0; done
it_wait_state n1 up
it_wait_state n2 up
for i in $(seq 1 12); do
  echo "new $i" >"$T/v/new$i"
  "$AQ" put "rc/$i" "$T/v/new$i" >/dev/null
done
bad=0
for n in n1 n2; do
  c=$(it_node_conf $n)
  for i in $(seq 1 12); do
    got=$("$AQ" -c "$c" get "rc/$i" 2>&1 || true)
    [ "$got" = "new $i" ] || { echo "$n serves '$got' for rc/$i, not 'new $i'"; bad=$((bad + 1)); }
  done
done
[ $bad -eq 0 ] || it_fail "$bad reads returned a value older than the last acknowledged put"
echo "restart_clock: ok"
