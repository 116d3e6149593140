#!/usr/bin/env bash
# Runs seed_repro in a private network namespace whose kernel resets connections that overflow the
# accept queue (net.ipv4.tcp_abort_on_overflow=1) and has no SYN cookies (which would otherwise
# make the kernel hold an overflowed handshake instead of resetting it). Needs root (ip netns).
set -u
BIN=${AQ_TEST_BIN:-$(dirname "$0")}/seed_repro
NS=aq-seed-$$
cleanup() {
    # Every process left in the namespace belongs to this run.
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! ip netns add "$NS"; then
    echo "seed_repro: cannot create a network namespace (needs root)" >&2
    exit 1
fi
ip -n "$NS" link set lo up || exit 1
ip netns exec "$NS" sysctl -q -w net.ipv4.tcp_abort_on_overflow=1 net.ipv4.tcp_syncookies=0 || exit 1
out=$(mktemp)
timeout -k 5 170 ip netns exec "$NS" "$BIN" "$@" | tee "$out"
rc=${PIPESTATUS[0]}
last=$(tail -n 1 "$out")
rm -f "$out"
echo "--- kernel counters in the namespace:"
ip netns exec "$NS" nstat -az 2>/dev/null | grep -E 'TcpExtListenOverflows|TcpExtListenDrops|TcpEstabResets' || true
if ! [[ $last =~ ^seed_repro:\ naive\ sent=([0-9]+)\ received=([0-9]+)\ lost=([0-9]+)\;\ rpc\ sent=([0-9]+)\ received=([0-9]+)\ lost=([0-9]+)$ ]]; then
    echo "seed_repro: FAIL: no result line (exit status $rc)" >&2
    exit 1
fi
# The verdict goes first so that the result line stays the last line printed, as the binary prints it.
if (( BASH_REMATCH[3] > 0 && BASH_REMATCH[6] == 0 && rc == 0 )); then
    echo "seed_repro: PASS: naive lost ${BASH_REMATCH[3]} messages silently, rpc lost none"
    echo "$last"
    exit 0
fi
echo "seed_repro: FAIL (exit status $rc)" >&2
echo "$last"
exit 1
