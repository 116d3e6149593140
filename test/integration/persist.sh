#!/usr/bin/env bash
# Restart the whole cluster with data_dirs: every value is still there.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "" --persist
it_up
mkdir -p "$T/v"
for i in $(seq 1 20); do it_rand_file "$T/v/$i" $(( (i * 104729) % (9 << 20) )); done
for i in $(seq 1 20); do "$AQ" put "p/$i" "$T/v/$i"; done
"$AQ" put "p/empty" /dev/null
it_log "cluster down, cluster up"
"$AQ" cluster down
"$AQ" cluster up >/dev/null
for i in $(seq 1 20); do
  "$AQ" get "p/$i" -o "$T/got" || it_fail "p/$i lost across a restart"
  cmp -s "$T/v/$i" "$T/got" || it_fail "p/$i differs after a restart"
done
[ "$("$AQ" get p/empty | wc -c)" = 0 ] || it_fail "p/empty changed"
echo "persist: 21 values intact after restarting the whole cluster"
