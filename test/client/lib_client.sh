#!/usr/bin/env bash
# libaquifer against a real cluster: three local nodes (replicas 2) on free ports, then the
# Criterion binary test_lib_client with AQUIFER_CONF naming them (the library's default lookup)
# and AQ_BIN naming the command it compares with. Every process is cleaned up on any exit.
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"

it_conf 3 2
it_up
AQ_BIN=$AQ AQUIFER_CONF=$CONF "$AQ_TEST_BIN/test_lib_client" --jobs=2 --timeout=240 "$@"
