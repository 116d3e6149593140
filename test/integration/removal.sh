#!/usr/bin/env bash
# Removal is final: 3 nodes, replicas 2. Put keys, kill -9 a node past repair_after (repair hands
# its copies to the third node), restart it, rm every key. Then get exits 2 and ls/stat omit every
# key: at once, after several repair passes, after restarting every node from its data_dir, and
# after the removal markers are collected (tombstone_ttl), and after a restart once more. Then the
# same with the removal made while the node is still down: it comes back with the old copies in its
# data_dir, and they must not reappear.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 $'repair_after = 2s\nrepair_interval = 500ms\ntombstone_ttl = 3s' --persist
it_up
mkdir -p "$T/v"
N=16
for i in $(seq 1 $N); do it_rand_file "$T/v/$i" $((1000 + i * 37)); done
it_rand_file "$T/v/big" $(((4 << 20) + 12345))
for i in $(seq 1 $N); do "$AQ" put "rm/$i" "$T/v/$i"; done
"$AQ" put rm/big "$T/v/big"
K=6 # keys that stay: their copies placed outside their replicas must be retired
for i in $(seq 1 $K); do "$AQ" put "keep/$i" "$T/v/$i"; done

it_log "kill -9 n2 past repair_after: its copies are handed to the other nodes"
kill -9 "$(it_pid n2)"
it_wait_state n2 down 30
# Every chunk must have 2 copies on the nodes still up (the handoff happened): with n2 down, n1 and
# n3 each hold all N + K + 3 chunks (the small values, the large one's manifest and 2 parts).
handed=0
for t in $(seq 1 120); do
  if "$AQ" status --json 2>/dev/null | python3 -c '
import json, sys
want = int(sys.argv[1])
d = {n["name"]: n for n in json.load(sys.stdin)["nodes"]}
sys.exit(0 if all(d[x].get("chunks") == want for x in ("n1", "n3")) else 1)' $((N + K + 3)); then
    handed=1
    break
  fi
  sleep 0.5
done
[ $handed = 1 ] || it_fail "repair did not hand n2's copies to the other nodes"
it_log "every chunk has 2 copies without n2; restart n2 and remove every key"
it_start_node n2
it_wait_state n2 up 30
for k in $(seq 1 $N) big; do "$AQ" rm "rm/$k" || it_fail "rm rm/$k failed"; done

# gone WHEN [PREFIX]: no key is readable, listed or stat-able on any node.
gone() {
  local k rc p=${2:-rm}
  for k in $(seq 1 $N) big; do
    rc=0; "$AQ" get "$p/$k" >/dev/null 2>&1 || rc=$?
    [ $rc -eq 2 ] || it_fail "$1: get $p/$k exited $rc, not 2"
    rc=0; "$AQ" stat "$p/$k" >/dev/null 2>&1 || rc=$?
    [ $rc -eq 2 ] || it_fail "$1: stat $p/$k exited $rc, not 2"
  done
  local listed
  listed=$("$AQ" ls "$p/") || it_fail "$1: ls failed"
  [ -z "$listed" ] || it_fail "$1: ls still lists: $(head -3 <<<"$listed")"
  it_log "$1: every $p/ key is gone"
}
gone "at once"
sleep 3
gone "after several repair passes"
# The copies repair placed outside their replicas while n2 was down are retired: removal
# markers aside, the cluster holds exactly 2 copies of each key kept, all readable.
retired=0
for t in $(seq 1 60); do
  total=$("$AQ" status --json | python3 -c '
import json, sys
print(sum(n.get("chunks") or 0 for n in json.load(sys.stdin)["nodes"]))')
  [ "$total" -eq $((2 * K)) ] && { retired=1; break; }
  sleep 0.5
done
[ $retired = 1 ] || it_fail "$total copies of the $K keys kept, not $((2 * K)): handoff copies not retired"
for i in $(seq 1 $K); do
  "$AQ" get "keep/$i" -o "$T/got" && cmp -s "$T/got" "$T/v/$i" || it_fail "keep/$i is wrong"
done
it_log "handoff copies retired: 2 copies of each kept key"

restart_all() {
  local n
  for n in n1 n2 n3; do kill -9 "$(it_pid $n)"; done
  sleep 0.5
  for n in n1 n2 n3; do it_start_node $n; done
  for n in n1 n2 n3; do it_wait_state $n up 30; done
}
it_log "restart every node from its data_dir"
restart_all
gone "after a restart of every node"

# chunk_files: chunk files in the data_dirs (every chunk, removal markers included; not LOCK, nor
# the clock ceiling CLOCK); the markers are collected when only the 2 copies of each kept key are left.
chunk_files() {
  find "$T/data" -path '*/quarantine' -prune -o -type f ! -name LOCK ! -name 'CLOCK*' -print | wc -l
}
it_log "wait for the removal markers to be collected (tombstone_ttl 3s)"
collected=0
for t in $(seq 1 60); do
  [ "$(chunk_files)" -eq $((2 * K)) ] && { collected=1; break; }
  sleep 1
done
[ $collected = 1 ] || it_fail "removal markers not collected: $(chunk_files) files left"
gone "after the markers were collected"
sleep 2
gone "after more repair passes"
restart_all
sleep 2
gone "after another restart of every node"

it_log "again, removing while n3 is down past repair_after"
for i in $(seq 1 $N); do "$AQ" put "rd/$i" "$T/v/$i"; done
"$AQ" put rd/big "$T/v/big"
kill -9 "$(it_pid n3)"
it_wait_state n3 down 30
sleep 3 # past repair_after: n3's copies are handed to the others
for k in $(seq 1 $N) big; do "$AQ" rm "rd/$k" || it_fail "rm rd/$k failed"; done
gone "removed while n3 is down" rd
it_start_node n3
it_wait_state n3 up 30
gone "n3 back with its old copies" rd
sleep 2
gone "n3 back, after repair passes" rd
