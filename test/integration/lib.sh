# Shared by the integration tests: a private cluster on free ports, and cleanup that always runs.
# Sourced by each test script; expects AQ_BUILD (the build tree) in the environment.
set -euo pipefail

: "${AQ_BUILD:?AQ_BUILD must point at the build tree}"
AQ=${AQ_BUILD}/bin/aquifer
AQD=${AQ_BUILD}/bin/aquiferd
T=$(mktemp -d /tmp/aq-it.XXXXXX)
CONF=$T/cluster.conf
export AQUIFER_CONF=$CONF
declare -a IT_CLEANUPS=()

it_log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
# it_has GREP_ARGS...: whether stdin has a match, printing nothing. Use it after a pipe, not
# grep -q: grep -q stops reading at the first match, so a writer still writing dies of SIGPIPE
# and, under pipefail, the pipeline fails although it matched.
it_has() { grep "$@" >/dev/null; }
it_fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

it_cleanup() {
  local rc=$?
  set +e
  for ((i = ${#IT_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${IT_CLEANUPS[i]}"; done
  # Every aquiferd this test started carries its private config path on its command line.
  pkill -CONT -f "$T/" 2>/dev/null
  pkill -KILL -f "$T/" 2>/dev/null
  if [ $rc -ne 0 ]; then
    for f in "$T"/run/*.log; do [ -f "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; }; done
  fi
  rm -rf "$T"
  exit $rc
}
trap it_cleanup EXIT

# it_free_ports N: N distinct ports free for both UDP and TCP on 127.0.0.1.
it_free_ports() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/../lib/free_ports.py" "$1"
}

# it_conf NODES REPLICAS [extra cluster lines] [--persist]: write $CONF for NODES nodes on 127.0.0.1.
it_conf() {
  local nodes=$1 replicas=$2 extra=${3:-} persist=${4:-}
  local ports i=1
  read -r -a ports <<<"$(it_free_ports "$nodes")"
  {
    echo "[cluster]"
    echo "name = it-$$"
    echo "replicas = $replicas"
    echo "run_dir = $T/run"
    echo "heartbeat = 200ms"
    [ -n "$extra" ] && printf '%s\n' "$extra"
    for p in "${ports[@]}"; do
      echo
      echo "[node n$i]"
      echo "address = 127.0.0.1:$p"
      [ "$persist" = --persist ] && echo "data_dir = $T/data/n$i"
      echo "memory_max = 2GiB"
      i=$((i + 1))
    done
  } >"$CONF"
}

# it_conf_http NODES REPLICAS: $CONF for NODES nodes on 127.0.0.1 that also serve HTTP; IT_PORTS
# holds their rpc ports, then their HTTP ports (node i: IT_PORTS[i-1] and IT_PORTS[NODES+i-1]).
it_conf_http() {
  local nodes=$1 replicas=$2 i
  read -r -a IT_PORTS <<<"$(it_free_ports $((2 * nodes)))"
  {
    echo "[cluster]"
    echo "name = it-$$"
    echo "replicas = $replicas"
    echo "run_dir = $T/run"
    echo "heartbeat = 200ms"
    for ((i = 1; i <= nodes; i++)); do
      printf '\n[node n%d]\naddress = 127.0.0.1:%d\nhttp_address = 127.0.0.1:%d\n' \
        "$i" "${IT_PORTS[i - 1]}" "${IT_PORTS[nodes + i - 1]}"
    done
  } >"$CONF"
}

# it_genuine: genuine traffic during an attack: put/get round trips of random values, each
# checked, until $T/stop exists. After each it writes "rounds ok" to $T/genuine.count; the
# command's errors go to $T/genuine.err.
it_genuine() {
  local i=0 ok=0
  while [ ! -f "$T/stop" ]; do
    i=$((i + 1))
    head -c $((RANDOM % 50000)) /dev/urandom >"$T/g.in"
    "$AQ" put "live/$i" "$T/g.in" >/dev/null 2>>"$T/genuine.err" &&
      "$AQ" get "live/$i" -o "$T/g.out" >/dev/null 2>>"$T/genuine.err" &&
      cmp -s "$T/g.in" "$T/g.out" && ok=$((ok + 1))
    echo "$i $ok" >"$T/genuine.count"
  done
}

it_up() {
  "$AQ" cluster up >"$T/up.out" 2>&1 || { cat "$T/up.out"; it_fail "cluster up failed"; }
  IT_CLEANUPS+=("'$AQ' cluster down >/dev/null 2>&1")
}

# it_pid NAME: the pid of a node started by cluster up.
it_pid() { cat "$T/run/$1.pid"; }

# it_start_node NAME: start one node again in the background (after a kill), like cluster up does.
it_start_node() {
  setsid "$AQD" -c "$CONF" -n "$1" >>"$T/run/$1.log" 2>&1 </dev/null &
  echo $! >"$T/run/$1.pid"
}

# it_wait_state NAME STATE [SECONDS]: wait until every other node sees NAME in STATE (up/down).
it_wait_state() {
  local name=$1 state=$2 limit=${3:-30} i
  for ((i = 0; i < limit * 5; i++)); do
    if "$AQ" status --json 2>/dev/null | python3 -c '
import json, sys
name, state = sys.argv[1], sys.argv[2]
d = json.load(sys.stdin)
views = [p["state"] for n in d["nodes"] if n.get("reachable", True) and n["name"] != name
         for p in n.get("peers", []) if p["name"] == name]
sys.exit(0 if views and all(v == state for v in views) else 1)' "$name" "$state"; then
      return 0
    fi
    sleep 0.2
  done
  it_fail "$name did not become $state within ${limit}s"
}

# it_json EXPR: EXPR (Python, over d) of the JSON document on stdin.
it_json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# it_same_files DIR1 DIR2: the same regular files, with the same bytes, under both.
it_same_files() {
  (cd "$1" && find . -type f | sort) >"$T/same.l1"
  (cd "$2" && find . -type f | sort) >"$T/same.l2"
  cmp -s "$T/same.l1" "$T/same.l2" || { diff "$T/same.l1" "$T/same.l2" | head; return 1; }
  while IFS= read -r f; do cmp -s "$1/$f" "$2/$f" || { echo "differs: $f"; return 1; }; done <"$T/same.l1"
}

# it_rand_file PATH SIZE: SIZE random bytes.
it_rand_file() { head -c "$2" /dev/urandom >"$1"; }

# it_preload SHIM PROGRAM: the LD_PRELOAD value that loads SHIM (an LD_PRELOAD module the test
# tree builds, say aq_clockshift.so) into PROGRAM.
it_preload() {
  local pre asan
  pre="${AQ_TEST_BIN:-$AQ_BUILD/tests}/$1"
  # A sanitizer build wants its runtime first among preloaded libraries.
  asan=$(ldd "$2" 2>/dev/null | awk '/libasan/ { print $3 }')
  [ -n "$asan" ] && pre="$asan $pre"
  echo "$pre"
}

# it_start_with NAME SHIM [VAR=VALUE ...]: start one node with SHIM preloaded and the variables set.
it_start_with() {
  local name=$1 shim=$2
  shift 2
  mkdir -p "$T/run"
  env LD_PRELOAD="$(it_preload "$shim" "$AQD")" "$@" \
    setsid "$AQD" -c "$CONF" -n "$name" >>"$T/run/$name.log" 2>&1 </dev/null &
  echo $! >"$T/run/$name.pid"
}

# it_start_skewed NAME SHIFT_S: start one node with its wall clock shifted by SHIFT_S seconds
# (the monotonic clock is not shifted).
it_start_skewed() { it_start_with "$1" aq_clockshift.so AQ_CLOCK_SHIFT_S="$2"; }

# it_stop_node NAME: SIGTERM one node and wait (bounded) until it has exited.
it_stop_node() {
  local pid i
  pid=$(it_pid "$1")
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# it_node_conf NAME: a config naming only node NAME of $CONF (same cluster), so a command run
# with it asks that node alone. Prints the path.
it_node_conf() {
  local out=$T/only-$1.conf
  awk -v want="[node $1]" '
    /^\[node / { keep = ($0 == want) }
    /^\[cluster\]/ { keep = 1 }
    /^replicas/ { print "replicas = 1"; next }
    /^min_copies/ { next }
    keep { print }' "$CONF" >"$out"
  echo "$out"
}
