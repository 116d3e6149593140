#!/usr/bin/env bash
# Several hosts: the same cluster in 3 network namespaces joined by veth pairs to a bridge, each node at its
# own address; a client in a 4th namespace puts and gets across them. Needs root (ip netns).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || it_fail "needs root for ip netns"
id=$$
sw=aqsw$id
hosts=(n1 n2 n3 cl)
declare -A ip=([n1]=10.231.0.1 [n2]=10.231.0.2 [n3]=10.231.0.3 [cl]=10.231.0.9)

. "$(dirname "$0")/../lib/netns.sh"
netns_cleanup() {
  local h all=("$sw")
  for h in "${hosts[@]}"; do all+=("aq$h$id"); done
  netns_drop "${all[@]}"
}
IT_CLEANUPS+=("netns_cleanup")

specs=()
for h in "${hosts[@]}"; do specs+=("aq$h$id=${ip[$h]}"); done
netns_star "$sw" "${specs[@]}"

{
  echo "[cluster]"
  echo "name = netns-$id"
  echo "replicas = 2"
  echo "run_dir = $T/run"
  echo "heartbeat = 200ms"
  for h in n1 n2 n3; do
    printf '\n[node %s]\naddress = %s:7000\nmemory_max = 1GiB\n' "$h" "${ip[$h]}"
  done
} >"$CONF"

it_log "cluster up in each node's namespace (each starts only the node whose address it has)"
for h in n1 n2 n3; do
  ip netns exec "aq$h$id" "$AQ" cluster up >"$T/up-$h.out" 2>&1 &
done
wait || true
for h in n1 n2 n3; do grep -q . "$T/up-$h.out" || true; done
# The cluster is formed when every node sees both others up, as asked from the client's host.
for t in $(seq 1 100); do
  ip netns exec "aqcl$id" "$AQ" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
ok = all(n.get("reachable", True) for n in d["nodes"]) and all(p["state"] == "up" for n in d["nodes"] for p in n["peers"])
sys.exit(0 if ok and len(d["nodes"]) == 3 else 1)' && break
  sleep 0.2
done
ip netns exec "aqcl$id" "$AQ" status

mkdir -p "$T/v"
for i in 1 2 3 4 5 6; do it_rand_file "$T/v/$i" $((i * 1500000)); done
for i in 1 2 3 4 5 6; do ip netns exec "aqcl$id" "$AQ" put "ns/$i" "$T/v/$i"; done
for i in 1 2 3 4 5 6; do
  ip netns exec "aqcl$id" "$AQ" get "ns/$i" -o "$T/got"
  cmp -s "$T/v/$i" "$T/got" || it_fail "ns/$i differs across hosts"
done
ip netns exec "aqcl$id" "$AQ" stat ns/6
echo "netns: 6 values put and got across 3 hosts and a client host"
