#!/usr/bin/env bash
# libaquifer against a real cluster: three local nodes (replicas 2) on free ports, then the
# Criterion binary test_lib_client with AQUIFER_CONF naming them (the library's default lookup),
# AQ_BIN naming the command it compares with, and AQ_DEAD_CONF a config whose one node (dead1) is
# on a free port nobody listens on. Every process is cleaned up on any exit. Nothing the library
# says may reach stderr: the failures the tests provoke are only returned.
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"

it_conf 3 2
it_up
# Every node sees the others up before the first write counts its copies.
for node in n1 n2 n3; do it_wait_state "$node" up; done
read -r dead_port <<<"$(it_free_ports 1)"
printf '[cluster]\nname = dead-%s\nreplicas = 1\n\n[node dead1]\naddress = 127.0.0.1:%s\n' \
  "$$" "$dead_port" >"$T/dead.conf"
rc=0
AQ_BIN=$AQ AQUIFER_CONF=$CONF AQ_DEAD_CONF=$T/dead.conf \
  "$AQ_TEST_BIN/test_lib_client" --jobs=2 --timeout=240 "$@" 2>"$T/stderr" || rc=$?
cat "$T/stderr" >&2
[ $rc -eq 0 ] || it_fail "test_lib_client failed ($rc)"
# The library never prints: its failures (the tests make many) come back as codes and sentences.
if grep -q '^aquifer: ' "$T/stderr"; then
  grep '^aquifer: ' "$T/stderr" | head -5
  it_fail "the library printed on stderr"
fi
# A node down: a frame parsed with all three up reads back the same with one stopped (each chunk
# has two replicas; the fetch spreads over them and moves on from the stopped one).
export AQ_SUMS=$T/sums
AQ_BIN=$AQ AQUIFER_CONF=$CONF "$AQ_TEST_BIN/test_lib_client" --filter 'failover/before' \
  || it_fail "failover/before failed"
it_stop_node n2
AQ_BIN=$AQ AQUIFER_CONF=$CONF "$AQ_TEST_BIN/test_lib_client" --filter 'failover/after' \
  || it_fail "failover/after failed with n2 stopped"
grep -q . "$AQ_SUMS" || it_fail "failover/before wrote no sums"
