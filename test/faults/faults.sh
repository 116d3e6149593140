#!/usr/bin/env bash
# The fault suite: for each scenario, a fresh 3-node cluster (replicas=2), each node in its own network
# namespace joined by veth pairs to a bridge, and a client namespace running aq_load (10,000 mixed calls)
# while the scenario's faults act; then the faults stop and aq_load proves nothing was lost (see
# aq_load.c). Needs root (ip netns, iptables inside the namespaces only; the host is never touched).
#
# Environment: AQ_BUILD (build tree), AQ_TEST_BIN (where aq_load is); FAULTS_SCENARIOS to pick some
# (names below, space separated), FAULTS_CALLS to change the calls per scenario, FAULTS_KEEP=1 to keep
# the logs in /tmp.
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"

: "${AQ_BUILD:?AQ_BUILD must point at the build tree}"
AQ=${AQ_BUILD}/bin/aquifer
AQD=${AQ_BUILD}/bin/aquiferd
LOAD=${AQ_TEST_BIN:-${AQ_BUILD}/tests}/aq_load
CALLS=${FAULTS_CALLS:-10000}
ALL="drop reset sigstop overload kill all"
SCENARIOS=${FAULTS_SCENARIOS:-$ALL}

[ "$(id -u)" = 0 ] || { echo "FAIL: the fault suite needs root (ip netns, iptables)" >&2; exit 1; }
for tool in ip iptables sysctl; do
  command -v $tool >/dev/null || { echo "FAIL: $tool is missing (scripts/lib/common.sh)" >&2; exit 1; }
done
[ -x "$LOAD" ] || { echo "FAIL: $LOAD is not built" >&2; exit 1; }

T=$(mktemp -d /tmp/aq-faults.XXXXXX)
id=$$
hosts=(n1 n2 n3 cl)
declare -A ip=([n1]=10.232.0.1 [n2]=10.232.0.2 [n3]=10.232.0.3 [cl]=10.232.0.9)
declare -A pid=()
declare -a bg=() # background helpers (fault injectors) of the scenario in progress
RUN=$T/run       # the scenario in progress: node logs
FAILED=0

# Background helpers sleep through nap and trap TERM, so killing one leaves no sleep behind.
nap() { sleep "$1" & wait $!; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
ns() { echo "aqf$1$id"; }

# Every process in our namespaces is ours; kill them by pid, then delete the namespaces.
teardown() {
  set +e
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done
  for h in "${hosts[@]}"; do
    for p in $(ip netns pids "$(ns "$h")" 2>/dev/null); do
      kill -CONT "$p" 2>/dev/null
      kill -KILL "$p" 2>/dev/null
    done
  done
  for p in "${bg[@]}"; do wait "$p" 2>/dev/null; done
  bg=()
  for h in "${hosts[@]}"; do ip netns del "$(ns "$h")" 2>/dev/null; done
  ip netns del "aqfsw$id" 2>/dev/null
  pid=()
  set -e
}

on_exit() {
  local rc=$?
  [ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
  teardown
  if [ $rc -ne 0 ] || [ $FAILED -ne 0 ]; then
    for f in "$RUN"/*.log; do [ -f "$f" ] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }; done
  fi
  if [ -n "${FAULTS_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
  [ $rc -ne 0 ] && exit $rc
  exit $FAILED
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ctest's TIMEOUT kills without a word; stop ourselves first so the trap deletes the namespaces.
LIMIT=${FAULTS_LIMIT_S:-840}
(trap 'kill $! 2>/dev/null; exit 0' TERM; nap "$LIMIT"; echo "FAIL: the fault suite ran over ${LIMIT}s" >&2
 kill -TERM $$) &
watchdog=$!

# Namespaces left by an earlier run that was killed outright (its script pid, in the name, is gone).
for old in $(ip netns list | grep -Eo '^aqf(n1|n2|n3|cl|sw)[0-9]+'); do
  opid=${old#aqf??}
  [ -d "/proc/$opid" ] && continue
  for p in $(ip netns pids "$old" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$old" 2>/dev/null || true
done

setup_net() {
  local h specs=()
  for h in "${hosts[@]}"; do specs+=("$(ns "$h")=${ip[$h]}"); done
  netns_star "aqfsw$id" "${specs[@]}"
}

write_conf() {
  {
    echo "[cluster]"
    echo "name = faults-$id"
    echo "replicas = 2"
    echo "run_dir = $RUN"
    echo "heartbeat = 200ms"
    echo "call_timeout = 5s"
    echo "repair_after = 10s"
    for h in n1 n2 n3; do
      printf '\n[node %s]\naddress = %s:7000\nmemory_max = 1GiB\n' "$h" "${ip[$h]}"
    done
  } >"$T/cluster.conf"
}

start_node() {
  ip netns exec "$(ns "$1")" "$AQD" -c "$T/cluster.conf" -n "$1" >>"$RUN/$1.log" 2>&1 </dev/null &
  pid[$1]=$!
  disown "$!"
}

# The cluster is formed when every node answers and sees both others up, asked from the client's host.
wait_formed() {
  local t
  for t in $(seq 1 150); do
    if ip netns exec "$(ns cl)" env AQUIFER_CONF="$T/cluster.conf" "$AQ" status --json 2>/dev/null |
      python3 -c '
import json, sys
d = json.load(sys.stdin)
ok = len(d["nodes"]) == 3 and all(n.get("reachable", True) for n in d["nodes"]) and \
     all(p["state"] == "up" for n in d["nodes"] for p in n["peers"])
sys.exit(0 if ok else 1)'; then
      return 0
    fi
    sleep 0.2
  done
  echo "FAIL: the cluster did not form within 30 s" >&2
  return 1
}

# ipt NODE RULE...: add an iptables rule inside one node's namespace.
ipt() { local h=$1; shift; ip netns exec "$(ns "$h")" iptables "$@"; }

clear_rules() {
  local h
  for h in n1 n2 n3 cl; do
    ip netns exec "$(ns "$h")" iptables -F INPUT
    ip netns exec "$(ns "$h")" iptables -F OUTPUT
  done
}

# Every packet is dropped with probability 0.1 where it is received: at each node, and at the client
# for the nodes' answers (so each packet meets the dice exactly once).
fault_drop() {
  local h
  for h in n1 n2 n3 cl; do
    ipt "$h" -A INPUT -p udp -m statistic --mode random --probability 0.1 -j DROP
    ipt "$h" -A INPUT -p tcp -m statistic --mode random --probability 0.1 -j DROP
  done
}

# A share of TCP segments arriving at each node is answered with a reset, which kills that connection.
fault_reset() {
  local h
  for h in n1 n2 n3; do
    ipt "$h" -A INPUT -p tcp -m statistic --mode random --probability 0.01 -j REJECT --reject-with tcp-reset
  done
}

# stop_node_later DELAY SECONDS NODE: SIGSTOP NODE after DELAY for SECONDS, then SIGCONT.
stop_node_later() {
  local p=${pid[$3]}
  (trap 'kill $! 2>/dev/null; exit 0' TERM
   nap "$1"; kill -STOP "$p"; log "stopped $3"; nap "$2"; kill -CONT "$p"; log "continued $3") &
  bg+=($!)
}

# kill_node_later DELAY DOWN NODE: SIGKILL NODE after DELAY, start it again DOWN seconds later (same
# config; in memory, so it comes back empty and repair must refill it).
kill_node_later() {
  local p=${pid[$3]}
  (trap 'kill $! 2>/dev/null; exit 0' TERM
   nap "$1"; kill -KILL "$p"; log "killed $3"; nap "$2"; start_node "$3"; log "restarted $3") &
  bg+=($!)
}

# The seed's report: a node too loaded to accept. Its namespace answers a full accept queue with a
# reset (tcp_abort_on_overflow=1) and caps every listen backlog at 1 (somaxconn, set before the node
# listens). The node's loop is held back by SIGSTOP in bursts (400 ms stopped, 100 ms running) for
# SECONDS: connections pile up unaccepted while many clients keep opening new ones. SIGSTOP rather than a
# cgroup cpu quota: it needs no cgroup delegation, and a stopped loop is the worst case of a slow one.
overload_sysctls() {
  ip netns exec "$(ns "$1")" sysctl -q -w net.ipv4.tcp_abort_on_overflow=1 net.core.somaxconn=1
}
overload_later() {
  local p=${pid[$3]}
  (trap 'kill $! 2>/dev/null; kill -CONT "$p" 2>/dev/null; exit 0' TERM
   nap "$1"; log "overload $3 (stop bursts)"; end=$((SECONDS + $2))
   while [ $SECONDS -lt $end ]; do kill -STOP "$p"; nap 0.4; kill -CONT "$p"; nap 0.1; done
   log "overload $3 over") &
  bg+=($!)
}

run_scenario() {
  local name=$1 h rc=0
  log "scenario $name: fresh namespaces and cluster"
  setup_net
  RUN=$T/run-$name
  mkdir -p "$RUN"
  write_conf
  [ "$name" = overload ] && overload_sysctls n1
  for h in n1 n2 n3; do start_node "$h"; done
  wait_formed
  rm -f "$T/ready" "$T/resume"
  # Faults that act from the start are in place before the first call; timed ones start with it.
  local args=(--min-s 20)
  case $name in
    drop) fault_drop; args=(-j 64) ;;
    reset) fault_reset ;;
    sigstop) stop_node_later 5 5 n2 ;;
    overload) overload_later 2 15 n1; args=(--min-s 20 --endpoints 64 -j 64) ;;
    kill) kill_node_later 5 2 n2 ;;
    all) fault_drop; fault_reset; stop_node_later 5 5 n2; args=(-j 64) ;;
  esac
  ip netns exec "$(ns cl)" "$LOAD" -c "$T/cluster.conf" -s "$name" -n "$CALLS" --seed "$RANDOM" \
    --ready "$T/ready" --resume "$T/resume" --heal-s 60 "${args[@]}" >"$T/$name.out" 2>&1 &
  local lp=$!
  bg+=($lp)
  # Faults act until the load is done (or the driver ended early with a failure).
  while [ ! -e "$T/ready" ] && kill -0 "$lp" 2>/dev/null; do sleep 0.2; done
  log "scenario $name: load done, faults stop"
  clear_rules
  for p in "${bg[@]}"; do [ "$p" = "$lp" ] || kill "$p" 2>/dev/null || true; done
  for p in $(ip netns pids "$(ns n1)") $(ip netns pids "$(ns n2)") $(ip netns pids "$(ns n3)"); do
    kill -CONT "$p" 2>/dev/null || true
  done
  for h in n1 n2 n3; do
    [ -n "$(ip netns pids "$(ns "$h")")" ] || { log "$h was down when the faults stopped: starting it"; start_node "$h"; }
  done
  touch "$T/resume"
  wait "$lp" || rc=$?
  cat "$T/$name.out"
  if [ $rc -ne 0 ]; then
    echo "FAIL: scenario $name (aq_load exit $rc)" >&2
    FAILED=1
    # This scenario's own logs (the exit handler shows only the last scenario's): membership,
    # repair and warnings are what explain a key that did not heal.
    for f in "$RUN"/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f (membership, repair and warnings; last 60)"
      grep -E 'repair|WARN|ERROR| is (up|down|suspect)|restarted' "$f" | tail -n 60
    done
  fi
  teardown
}

for s in $SCENARIOS; do
  case " $ALL " in *" $s "*) ;; *) echo "FAIL: unknown scenario $s" >&2; exit 1 ;; esac
  run_scenario "$s"
done
grep -h '^faults: ' "$T"/*.out || true
exit $FAILED
