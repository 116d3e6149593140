#!/usr/bin/env bash
# libaquifer against a real cluster: three local nodes (replicas 2) on free ports, then the
# Criterion binary test_lib_client with AQUIFER_CONF naming them (the library's default lookup),
# AQ_BIN naming the command it compares with, and AQ_DEAD_CONF a config whose one node (dead1) is
# on a free port nobody listens on. Every process is cleaned up on any exit.
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"

it_conf 3 2
it_up
read -r dead_port <<<"$(it_free_ports 1)"
printf '[cluster]\nname = dead-%s\nreplicas = 1\n\n[node dead1]\naddress = 127.0.0.1:%s\n' \
  "$$" "$dead_port" >"$T/dead.conf"
AQ_BIN=$AQ AQUIFER_CONF=$CONF AQ_DEAD_CONF=$T/dead.conf \
  "$AQ_TEST_BIN/test_lib_client" --jobs=2 --timeout=240 "$@"
