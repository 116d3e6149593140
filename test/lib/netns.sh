# Network namespaces for the multi-host tests (test/integration/netns.sh, test/faults/faults.sh):
# a star of namespaces around a bridge, as hosts on one switch. Sourced; needs root (ip netns).
#
# netns_star SW NS=IP...  makes namespace SW holding bridge br0 and, for each NS=IP, namespace NS
#                         joined to the bridge by a veth pair whose end in NS is eth0 with IP/24
#                         (lo is up too). Names must be unique on the host: put the test's pid in
#                         them. Interface names are derived from SW, so SW is at most 12 bytes.
# netns_drop NS...        kills every process in each namespace and deletes it; a missing one is
#                         not an error (cleanup runs this whatever state the test reached).

netns_star() {
  local sw=$1 spec ns addr k=0
  shift
  [ ${#sw} -le 12 ] || { echo "netns_star: switch name '$sw' is longer than 12 bytes" >&2; return 1; }
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  for spec in "$@"; do
    ns=${spec%%=*}
    addr=${spec#*=}
    k=$((k + 1))
    ip netns add "$ns"
    ip link add "${sw}v$k" type veth peer name "${sw}b$k"
    ip link set "${sw}v$k" netns "$ns"
    ip link set "${sw}b$k" netns "$sw"
    ip -n "$sw" link set "${sw}b$k" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "${sw}v$k" name eth0
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

netns_drop() {
  local ns
  for ns in "$@"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  return 0
}
