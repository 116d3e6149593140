#!/usr/bin/env bash
# One node's wall clock an hour ahead (then, in a second cluster, an hour behind), injected from
# outside by an LD_PRELOAD shim: aq_load races writers of the same keys through different
# coordinators and checks every read against the writes acknowledged before it (the latest
# acknowledged value or a concurrent one), then that every key converged on such a value.
. "$(dirname "$0")/lib.sh"

LOAD=${AQ_TEST_BIN:-$AQ_BUILD/tests}/aq_load
run() { # run NAME SKEWED_NODE SHIFT_S
  it_conf 3 2 "call_timeout = 5s"
  for n in n1 n2 n3; do it_start_skewed $n $([ $n = "$2" ] && echo "$3" || echo 0); done
  for n in n1 n2 n3; do it_wait_state $n up; done
  it_log "$1: $2 shifted by $3 s; concurrent writers through every coordinator"
  "$LOAD" -c "$CONF" -s "$1" -n 2000 -k 10 -j 8 --writers 3 --min-s 10 --heal-s 60 ||
    it_fail "$1: aq_load found acknowledged writes lost, stale reads or diverged replicas"
  for n in n1 n2 n3; do it_stop_node $n; done
}
run skew-ahead n1 3600
run skew-behind n2 -3600
echo "clockskew: ok"
