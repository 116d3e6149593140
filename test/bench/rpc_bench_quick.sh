#!/usr/bin/env bash
# ctest smoke run of the rpc benchmark: one short run, checks that it completes, asserts no speed.
exec bash "$(dirname "$0")/rpc_bench.sh" --quick
