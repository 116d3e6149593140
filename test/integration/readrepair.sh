#!/usr/bin/env bash
# Reads return the newest copy and repair the stale replica. 3 nodes, replicas 2, no periodic
# repair pass (repair_interval 1h, and no node goes down or restarts, which would start one). Each
# key is put, then one of its two replicas alone is given a newer version (aq_poke: a replica-only
# PUT, as a forward would be). get must return the newer value whichever replica comes first, and
# afterwards both replicas hold it (read repair, done by get). stat repairs the same way. Last, rm
# of a key whose only copy sits outside its replicas removes it and exits 0.
. "$(dirname "$0")/lib.sh"
POKE=${AQ_TEST_BIN:-$AQ_BUILD/tests}/aq_poke

it_conf 3 2 "repair_interval = 1h"
it_up
sleep 1.5 # the nodes' first repair pass (shortly after start) is over
mkdir -p "$T/v"
N=12
# holders KEY: the names of the nodes holding KEY's newest copy, one line each.
holders() { "$AQ" stat "$1" --json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["chunks"][0]["nodes"]: print(n)'; }
# future N: a version N times 10 minutes ahead of the wall clock, in hybrid logical clock units
# (milliseconds << 16, node/aq_node_hlc.h). A replica that stores a poke follows its clock, so the
# next put's version is above it: each poke must be further ahead than the one before.
future() { echo $(( ($(date +%s) * 1000 + 600000 * $1) << 16 )); }
for i in $(seq 1 $N); do
  it_rand_file "$T/v/old$i" $((100 + i))
  it_rand_file "$T/v/new$i" $((200 + i))
  "$AQ" put "rr/$i" "$T/v/old$i"
  mapfile -t h < <(holders "rr/$i")
  [ ${#h[@]} -eq 2 ] || it_fail "rr/$i has ${#h[@]} copies after put, not 2"
  # Alternate which replica gets the newer copy, so both rendezvous orders are covered.
  target=${h[$((i % 2))]}
  "$POKE" "$CONF" "$target" "rr/$i" "$T/v/new$i" "$(future "$i")" || it_fail "poke rr/$i at $target"
done
it_log "one replica of each of $N keys holds a newer copy"
for i in $(seq 1 $N); do
  "$AQ" get "rr/$i" -o "$T/got" || it_fail "get rr/$i failed"
  cmp -s "$T/got" "$T/v/new$i" || it_fail "get rr/$i returned the older copy"
  mapfile -t h < <(holders "rr/$i")
  [ ${#h[@]} -eq 2 ] || it_fail "rr/$i: after get only ${h[*]} hold the newest copy (no read repair)"
done
it_log "get returned the newest copy of every key and repaired the stale replica"

it_log "stat: the same with other keys"
for i in 1 2 3 4; do
  it_rand_file "$T/v/sold$i" $((300 + i))
  it_rand_file "$T/v/snew$i" $((400 + i))
  "$AQ" put "rs/$i" "$T/v/sold$i"
  mapfile -t h < <(holders "rs/$i")
  "$POKE" "$CONF" "${h[$((i % 2))]}" "rs/$i" "$T/v/snew$i" "$(future $((N + i)))" || it_fail "poke rs/$i"
  "$AQ" stat "rs/$i" --json >"$T/stat.json" || it_fail "stat rs/$i failed"
  # stat shows the newest copy's size, and afterwards both replicas hold it.
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["size"] == int(sys.argv[2]) else 1)' \
    "$T/stat.json" $((400 + i)) || it_fail "stat rs/$i did not show the newest copy"
  mapfile -t h < <(holders "rs/$i")
  [ ${#h[@]} -eq 2 ] || it_fail "rs/$i: after stat only ${h[*]} hold the newest copy"
  "$AQ" get "rs/$i" -o "$T/got" && cmp -s "$T/got" "$T/v/snew$i" || it_fail "rs/$i is wrong"
done
it_log "stat showed the newest copy and repaired the stale replica"

it_log "rm of a key whose only copy is outside its replicas"
# A copy repair left on a node that is not a replica (poked there, 10 minutes old, so any removal
# orders after it) while the replicas hold nothing: get would serve it, so rm must remove it and
# say so (exit 0, not "not found").
PLACE=${AQ_TEST_BIN:-$AQ_BUILD/tests}/aq_place
key=rh/1
third=$("$PLACE" "$CONF" "$key" | awk '{ print $4 }')
[ -n "$third" ] || it_fail "no third node for $key"
it_rand_file "$T/v/h1" 321
"$POKE" "$CONF" "$third" "$key" "$T/v/h1" $(( ($(date +%s) * 1000 - 600000) << 16 )) ||
  it_fail "poke $key at $third"
"$POKE" "$CONF" "$third" "$key" >"$T/got" && cmp -s "$T/got" "$T/v/h1" || it_fail "$third lacks $key"
"$AQ" rm "$key" || it_fail "rm $key exited $? although $third held it"
"$POKE" "$CONF" "$third" "$key" >/dev/null 2>&1 && it_fail "$third still serves $key after rm"
rc=0
"$AQ" get "$key" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || it_fail "get $key after rm exited $rc, not 2"
it_log "rm removed the copy outside the replicas and exited 0"
