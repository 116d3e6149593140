#!/usr/bin/env bash
# A replica's refusal is named: two nodes, replicas 2, n2 holding at most 1 MiB. Values of 3 MB are
# refused by n2 wherever it stands. Where n1 coordinates (stores, then forwards to n2), the put
# fails and its sentence names n2 as the replica that refused, not n1 which relayed it, and the key
# keeps its previous value. Where n2 coordinates, n1 still takes the copy: the put succeeds with a
# warning naming n2 as the missing copy, also through a config that lists the nodes in the other
# order (the reply names holders by the coordinator's indexes).
. "$AQ_SRC/test/integration/lib.sh"
it_conf 2 2
awk '/^\[node n2\]/ {n2 = 1} n2 && /^memory_max/ {print "memory_max = 1MiB"; n2 = 0; next} {print}' \
  "$CONF" >"$CONF.new" && mv "$CONF.new" "$CONF"
it_up
for node in n1 n2; do it_wait_state "$node" up; done
it_rand_file "$T/small" 1000
it_rand_file "$T/big" 3000000
failed=0 warned=0
for i in $(seq 1 24); do
  k=k$i
  "$AQ" put "$k" "$T/small" >/dev/null 2>&1 || it_fail "put of 1000 bytes to $k failed"
  rc=0
  "$AQ" put "$k" "$T/big" >"$T/out" 2>"$T/err" || rc=$?
  if [ $rc -eq 0 ]; then
    grep -q "missing: n2 " "$T/err" || it_fail "$k: a copy refused by n2 is not named missing: $(cat "$T/err")"
    warned=$((warned + 1))
    continue
  fi
  [ $rc -eq 4 ] || it_fail "$k: a refused put exited $rc, not 4"
  grep -q "call PUT to n1 (127.0.0.1:[0-9]*) failed: the replica n2 (127.0.0.1:[0-9]*) refused its copy: memory limit" "$T/err" ||
    it_fail "$k: the refusal does not name n2: $(cat "$T/err")"
  "$AQ" get "$k" -o "$T/got" || it_fail "$k unreadable after a refused put"
  cmp -s "$T/got" "$T/small" || it_fail "$k does not hold its previous value after a refused put"
  failed=$((failed + 1))
done
# A client whose config lists the nodes in the other order names the same replica.
awk '/^\[node /{sec = $0; next} sec == "[node n1]" {n1 = n1 $0 "\n"; next} sec == "[node n2]" {n2 = n2 $0 "\n"; next} {print}
  END {printf "[node n2]\n%s[node n1]\n%s", n2, n1}' "$CONF" >"$T/swapped.conf"
grep -q '^\[node n2\]' "$T/swapped.conf" || it_fail "no swapped config"
for i in $(seq 1 24); do
  rc=0
  AQUIFER_CONF=$T/swapped.conf "$AQ" put "k$i" "$T/big" >/dev/null 2>"$T/err" || rc=$?
  if [ $rc -eq 0 ]; then
    # n2 coordinated: its reply lists the holders by its own config's indexes, where n1 is 0.
    grep -q "missing: n2 " "$T/err" || it_fail "k$i through the swapped config: $(cat "$T/err")"
    swapped_warned=1
    continue
  fi
  grep -q "failed: the replica n2 (127.0.0.1:[0-9]*) refused its copy" "$T/err" ||
    it_fail "k$i through a config in another order: $(cat "$T/err")"
  swapped=1
  break
done
[ "${swapped:-0}" = 1 ] || it_fail "no put failed through the swapped config"
for i in $(seq 25 60); do
  [ "${swapped_warned:-0}" = 1 ] && break
  AQUIFER_CONF=$T/swapped.conf "$AQ" put "k$i" "$T/big" >/dev/null 2>"$T/err" || continue
  grep -q "missing: n2 " "$T/err" || it_fail "k$i through the swapped config: $(cat "$T/err")"
  swapped_warned=1
done
[ "${swapped_warned:-0}" = 1 ] || it_fail "no put through the swapped config had n2 as its coordinator"
it_log "refused and named: $failed; stored once with a warning: $warned"
[ $failed -gt 0 ] || it_fail "no key had n1 as its coordinator"
[ $warned -gt 0 ] || it_fail "no key had n2 as its coordinator"
