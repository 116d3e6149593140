#!/usr/bin/env bash
# lib_bench.sh [--quick] [-r runs] [-n values]
# 4 KiB puts and gets through libaquifer with 50 in flight (lib_bench, a three-node memory-only
# cluster, replicas 1) beside redis-benchmark SET and GET -d 4096 -c 50 against a redis-server on
# loopback, in the same run. Prints the medians over the runs and the ratios (library / redis), and
# the client's CPU seconds (lib_bench's user + system time, its own value filling included).
# Needs AQ_BUILD (a Release tree for real figures) and AQ_SRC.
set -euo pipefail
runs=3 n=20000 quick=0
while (($#)); do
  case $1 in
  --quick) quick=1 runs=1 n=2000 ;;
  -r) runs=$2; shift ;;
  -n) n=$2; shift ;;
  *) echo "usage: $0 [--quick] [-r runs] [-n values]" >&2; exit 2 ;;
  esac
  shift
done
source "${AQ_SRC:-$(dirname "$0")/../..}/test/integration/lib.sh"
BIN=${AQ_TEST_BIN:-$AQ_BUILD/tests}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

it_conf 3 1
it_up
# Every node sees the others up before the first write counts its copies.
for node in n1 n2 n3; do it_wait_state "$node" up; done
rport=$(it_free_ports 1)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$T/redis.log" 2>&1 &
IT_CLEANUPS+=("kill $! 2>/dev/null")
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done

declare -a LP LG LC RS RG
for ((i = 1; i <= runs; i++)); do
  line=$(LD_LIBRARY_PATH=$AQ_BUILD/lib "$BIN/lib_bench" -n "$n" -c 50 -s 4096)
  echo "$line"
  for kv in $line; do
    case $kv in
    put_per_s=*) LP+=("${kv#*=}") ;;
    get_per_s=*) LG+=("${kv#*=}") ;;
    cpu_s=*) LC+=("${kv#*=}") ;;
    esac
  done
  out=$(redis-benchmark -p "$rport" -t set,get -d 4096 -c 50 -n "$n" -q --csv)
  echo "$out" | sed 's/^/redis: /'
  RS+=("$(echo "$out" | awk -F'"' '$2 == "SET" {print $4}')")
  RG+=("$(echo "$out" | awk -F'"' '$2 == "GET" {print $4}')")
done
lp=$(printf '%s\n' "${LP[@]}" | median); lg=$(printf '%s\n' "${LG[@]}" | median)
rs=$(printf '%s\n' "${RS[@]}" | median); rg=$(printf '%s\n' "${RG[@]}" | median)
printf '\n%-32s %12s %12s %8s\n' "4 KiB values, 50 in flight" "libaquifer/s" "redis/s" "ratio"
printf '%-32s %12.0f %12.0f %8.2f\n' "put (redis SET)" "$lp" "$rs" "$(awk -v a="$lp" -v b="$rs" 'BEGIN {print a / b}')"
printf '%-32s %12.0f %12.0f %8.2f\n' "get (redis GET)" "$lg" "$rg" "$(awk -v a="$lg" -v b="$rg" 'BEGIN {print a / b}')"
printf '%-32s %12.2f\n' "client CPU s (puts + gets)" "$(printf '%s\n' "${LC[@]}" | median)"
[ $quick -eq 1 ] && echo "(--quick: a smoke run, not figures to quote)"
exit 0
