#!/usr/bin/env bash
# ctest smoke run of put_get_bench: one short run, checks that it completes (and that get -o gives
# the file's bytes back, as does the floor program); asserts no speed.
exec bash "$(dirname "$0")/put_get_bench" --quick
