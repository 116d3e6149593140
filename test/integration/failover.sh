#!/usr/bin/env bash
# kill -9 one node: every value still readable. Restart it: it catches up. Keep one down past
# repair_after: every chunk has 2 live copies again.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "repair_after = 3s"
it_up
mkdir -p "$T/v"
for i in $(seq 1 30); do it_rand_file "$T/v/$i" $(( (i * 7919 * 131) % (6 << 20) )); done
for i in $(seq 1 30); do "$AQ" put "fo/$i" "$T/v/$i"; done

# nodes_of KEY: for each chunk of KEY, the sorted node names holding it, one line per chunk.
nodes_of() { "$AQ" stat "$1" --json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["chunks"]: print(",".join(sorted(c["nodes"])))'; }

it_log "kill -9 n2"
kill -9 "$(it_pid n2)"
for i in $(seq 1 30); do
  "$AQ" get "fo/$i" -o "$T/got" || it_fail "fo/$i unreadable with n2 killed"
  cmp -s "$T/v/$i" "$T/got" || it_fail "fo/$i differs with n2 killed"
done
it_log "all 30 values readable with n2 down"

it_log "while n2 is down, write 10 more values"
for i in $(seq 31 40); do it_rand_file "$T/v/$i" $((i * 50000)); "$AQ" put "fo/$i" "$T/v/$i"; done
it_log "restart n2 and wait for it to catch up"
it_start_node n2
it_wait_state n2 up 30
caught=0
for t in $(seq 1 60); do
  missing=0
  for i in $(seq 31 40); do
    # Every chunk whose replica set contains n2 must be held by n2 again: each chunk has 2 holders.
    while read -r holders; do
      [ "$(tr ',' '\n' <<<"$holders" | wc -l)" -ge 2 ] || missing=$((missing + 1))
    done < <(nodes_of "fo/$i")
  done
  [ $missing -eq 0 ] && { caught=1; break; }
  sleep 1
done
[ $caught = 1 ] || it_fail "n2 did not catch up on the values written while it was down"
it_log "n2 caught up: every chunk written while it was down has 2 copies"

it_log "kill -9 n3 and keep it down past repair_after (3s)"
kill -9 "$(it_pid n3)"
it_wait_state n3 down 30
healed=0
for t in $(seq 1 90); do
  short=0
  for i in $(seq 1 40); do
    while read -r holders; do
      live=$(tr ',' '\n' <<<"$holders" | grep -vcx n3 || true)
      [ "$live" -ge 2 ] || short=$((short + 1))
    done < <(nodes_of "fo/$i")
  done
  [ $short -eq 0 ] && { healed=1; break; }
  sleep 1
done
[ $healed = 1 ] || it_fail "chunks still short of 2 live copies $t s after n3 went down"
for i in $(seq 1 40); do
  "$AQ" get "fo/$i" -o "$T/got" && cmp -s "$T/v/$i" "$T/got" || it_fail "fo/$i wrong after repair"
done
echo "failover: readable with a node killed; caught up after restart; re-replicated after repair_after"
