#!/usr/bin/env bash
# ctest smoke run of put_get_cost: one short run, checks that it completes (and that get -o gives
# the file's bytes back); asserts no cost.
exec bash "$(dirname "$0")/put_get_cost" -r 1 --mb 16
