#!/usr/bin/env bash
# lib_syscalls.sh [-n values]
# System calls and CPU per operation of libaquifer 4 KiB puts and gets with 50 in flight (lib_bench,
# a three-node memory-only cluster, replicas 1): the client's and the three nodes' together, counted
# with perf's syscall tracepoints (less disturbing than strace; needs perf and tracepoint access,
# e.g. root). Steadier than the rates on a shared machine: compare two builds by running this once
# with each AQ_BUILD, alternately. Needs AQ_BUILD (a Release tree) and AQ_SRC.
set -euo pipefail
n=20000
while (($#)); do
  case $1 in
  -n) n=$2; shift ;;
  *) echo "usage: $0 [-n values]" >&2; exit 2 ;;
  esac
  shift
done
command -v perf >/dev/null || { echo "lib_syscalls.sh: perf is needed" >&2; exit 1; }
source "${AQ_SRC:-$(dirname "$0")/../..}/test/integration/lib.sh"
BIN=${AQ_TEST_BIN:-$AQ_BUILD/tests}
it_conf 3 1
it_up
for node in n1 n2 n3; do it_wait_state "$node" up; done
ev=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_writev
ev=$ev,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_wait
ev=$ev,syscalls:sys_enter_futex,task-clock
perf stat -x, -e "$ev" -p "$(it_pid n1),$(it_pid n2),$(it_pid n3)" -o "$T/nodes.csv" &
pp=$!
IT_CLEANUPS+=("kill $pp 2>/dev/null")
sleep 0.5
LD_LIBRARY_PATH=$AQ_BUILD/lib perf stat -x, -e "$ev" -o "$T/client.csv" \
  "$BIN/lib_bench" -n "$n" -c 50 -s 4096
kill -INT $pp
wait $pp 2>/dev/null || true
# Per operation (n puts + n gets); task-clock in CPU microseconds.
for who in client nodes; do
  awk -F, -v ops=$((2 * n)) -v who=$who '
    $3 == "task-clock" { printf " cpu_us=%.1f", $1 * 1000 / ops; next }
    $3 ~ /^raw_syscalls/ { printf " syscalls=%.2f", $1 / ops; next }
    $3 ~ /sys_enter_/ { sub(/.*sys_enter_/, "", $3); printf " %s=%.2f", $3, $1 / ops }
    BEGIN { printf "%-7s per op:", who } END { print "" }' "$T/$who.csv"
done
