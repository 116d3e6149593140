#!/usr/bin/env bash
# rpc_bench.sh [--quick] [-r runs] [-c concurrency] [-t seconds]
# Measures, in one run and on loopback: rpc 64 B calls/s and p50/p99 latency at concurrency C,
# rpc 4 MiB call GB/s, iperf3's single-stream GB/s and redis-benchmark's PING rate at the same C;
# then the rpc figures again with a cluster secret ("auth": every packet MACed) and with the secret
# and payload encryption ("auth+encrypt"). Prints a table of medians over the runs and the ratios.
# Build in Release for real figures.
set -u
runs=3 conc=50 secs=5 quick=0
while (($#)); do
    case $1 in
    --quick) quick=1 runs=1 secs=1 ;;
    -r) runs=$2; shift ;;
    -c) conc=$2; shift ;;
    -t) secs=$2; shift ;;
    *) echo "usage: $0 [--quick] [-r runs] [-c concurrency] [-t seconds]" >&2; exit 2 ;;
    esac
    shift
done
BIN=${AQ_TEST_BIN:-$(dirname "$0")}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=(); }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
have() { command -v "$1" >/dev/null 2>&1; }

declare -a R_CPS R_P50 R_P99 R_GBPS I_GBPS D_PING Q_PING Q_IPERF
declare -a A_CPS A_GBPS E_CPS E_GBPS QA_IPERF QE_IPERF
SECRET=rpc_bench-cluster-secret-of-at-least-32-bytes
# variant NAME CPS_ARRAY GBPS_ARRAY [ENV...]: one rpc_bench run with the given environment
variant() {
    local name=$1 cps=$2 gb=$3 line kv
    shift 3
    line=$(env "$@" timeout -k 5 $((secs * 4 + 30)) "$BIN/rpc_bench" "$BIN/rpc_uv_server" -c "$conc" -t "$secs" | tail -n 1)
    if [[ $? -ne 0 || $line != rpc_bench:* ]]; then
        echo "rpc_bench.sh: rpc_bench ($name) failed" >&2
        exit 1
    fi
    echo "$name: $line"
    for kv in $line; do
        case $kv in
        calls_per_s=*) eval "$cps+=(\"${kv#*=}\")" ;;
        gbps=*) eval "$gb+=(\"${kv#*=}\")" ;;
        esac
    done
}
nreq=$((conc * 2000 * secs))
for ((i = 1; i <= runs; i++)); do
    line=$(timeout -k 5 $((secs * 4 + 30)) "$BIN/rpc_bench" "$BIN/rpc_uv_server" -c "$conc" -t "$secs" | tail -n 1)
    rc=$?
    echo "$line"
    if [[ $rc -ne 0 || $line != rpc_bench:* ]]; then
        echo "rpc_bench.sh: rpc_bench failed (status $rc)" >&2
        exit 1
    fi
    for kv in $line; do
        case $kv in
        calls_per_s=*) R_CPS+=("${kv#*=}") ;;
        p50_us=*) R_P50+=("${kv#*=}") ;;
        p99_us=*) R_P99+=("${kv#*=}") ;;
        gbps=*) R_GBPS+=("${kv#*=}") ;;
        esac
    done
    variant auth A_CPS A_GBPS AQ_RPC_SECRET=$SECRET
    variant auth+encrypt E_CPS E_GBPS AQ_RPC_SECRET=$SECRET AQ_RPC_ENCRYPT=1
    # What authentication and encryption cost: against the plain run of the same round.
    QA_RC+=("$(awk -v a="${A_CPS[-1]}" -v b="${R_CPS[-1]}" 'BEGIN { print a / b }')")
    QA_RG+=("$(awk -v a="${A_GBPS[-1]}" -v b="${R_GBPS[-1]}" 'BEGIN { print a / b }')")
    QE_RC+=("$(awk -v a="${E_CPS[-1]}" -v b="${R_CPS[-1]}" 'BEGIN { print a / b }')")
    QE_RG+=("$(awk -v a="${E_GBPS[-1]}" -v b="${R_GBPS[-1]}" 'BEGIN { print a / b }')")

    if have iperf3; then
        p=$(free_port)
        iperf3 -s -p "$p" -1 >/dev/null 2>&1 &
        pids+=($!)
        sleep 0.3
        g=$(timeout -k 5 $((secs + 20)) iperf3 -c 127.0.0.1 -p "$p" -t "$secs" -J 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e9)' 2>/dev/null)
        if [[ -n $g ]]; then
            I_GBPS+=("$g")
            Q_IPERF+=("$(awk -v a="${R_GBPS[-1]}" -v b="$g" 'BEGIN { print a / b }')")
            QA_IPERF+=("$(awk -v a="${A_GBPS[-1]}" -v b="$g" 'BEGIN { print a / b }')")
            QE_IPERF+=("$(awk -v a="${E_GBPS[-1]}" -v b="$g" 'BEGIN { print a / b }')")
            echo "iperf3: gbps=$g"
        fi
        cleanup
    fi
    if have redis-server && have redis-benchmark; then
        p=$(free_port)
        redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
        pids+=($!)
        for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
        out=$(timeout -k 5 120 redis-benchmark -p "$p" -t ping -c "$conc" -n "$nreq" -q 2>/dev/null | tr '\r' '\n')
        r=$(echo "$out" | awk -F'[: ]+' '/PING_MBULK/ {print $2}' | tail -n 1)
        if [[ -n $r ]]; then
            D_PING+=("$r")
            Q_PING+=("$(awk -v a="${R_CPS[-1]}" -v b="$r" 'BEGIN { print a / b }')")
            echo "redis PING_MBULK: requests_per_s=$r"
        fi
        cleanup
    fi
done

m_cps=$(printf '%s\n' "${R_CPS[@]}" | median)
m_p50=$(printf '%s\n' "${R_P50[@]}" | median)
m_p99=$(printf '%s\n' "${R_P99[@]}" | median)
m_gbps=$(printf '%s\n' "${R_GBPS[@]}" | median)
m_ip=$( ((${#I_GBPS[@]})) && printf '%s\n' "${I_GBPS[@]}" | median || echo nan)
m_ping=$( ((${#D_PING[@]})) && printf '%s\n' "${D_PING[@]}" | median || echo nan)
# Ratios are medians of each run's own ratio: load from other processes drifts between runs but
# hits the rpc run and its reference alike within one.
q_ping=$( ((${#Q_PING[@]})) && printf '%s\n' "${Q_PING[@]}" | median || echo nan)
q_iperf=$( ((${#Q_IPERF[@]})) && printf '%s\n' "${Q_IPERF[@]}" | median || echo nan)
qa_iperf=$( ((${#QA_IPERF[@]})) && printf '%s\n' "${QA_IPERF[@]}" | median || echo nan)
qe_iperf=$( ((${#QE_IPERF[@]})) && printf '%s\n' "${QE_IPERF[@]}" | median || echo nan)
qa_rc=$(printf '%s\n' "${QA_RC[@]}" | median)
qa_rg=$(printf '%s\n' "${QA_RG[@]}" | median)
qe_rc=$(printf '%s\n' "${QE_RC[@]}" | median)
qe_rg=$(printf '%s\n' "${QE_RG[@]}" | median)
a_cps=$(printf '%s\n' "${A_CPS[@]}" | median)
a_gbps=$(printf '%s\n' "${A_GBPS[@]}" | median)
e_cps=$(printf '%s\n' "${E_CPS[@]}" | median)
e_gbps=$(printf '%s\n' "${E_GBPS[@]}" | median)
ratio() { awk -v q="$1" 'BEGIN { if (q == "nan") print "n/a"; else printf "%.2fx", q }'; }
echo
echo "rpc benchmark, loopback, medians of $runs run(s) of ${secs}s, concurrency $conc (ratio: median of per-run ratios)"
printf '%-34s %14s %14s %10s\n' "measure" "rpc" "reference" "ratio"
num() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan") print "n/a"; else printf f, v }'; }
printf '%-34s %14s %14s %10s\n' "64 B calls/s vs redis PING/s" "$(num "$m_cps" %.0f)" "$(num "$m_ping" %.0f)" "$(ratio "$q_ping")"
printf '%-34s %14s %14s %10s\n' "64 B call latency p50 (us)" "$(num "$m_p50" %.1f)" "" ""
printf '%-34s %14s %14s %10s\n' "64 B call latency p99 (us)" "$(num "$m_p99" %.1f)" "" ""
printf '%-34s %14s %14s %10s\n' "4 MiB calls GB/s vs iperf3 GB/s" "$(num "$m_gbps" %.3f)" "$(num "$m_ip" %.3f)" "$(ratio "$q_iperf")"
printf '%-34s %14s %14s %10s\n' "auth: 64 B calls/s vs plain rpc" "$(num "$a_cps" %.0f)" "$(num "$m_cps" %.0f)" "$(ratio "$qa_rc")"
printf '%-34s %14s %14s %10s\n' "auth: 4 MiB GB/s vs plain rpc" "$(num "$a_gbps" %.3f)" "$(num "$m_gbps" %.3f)" "$(ratio "$qa_rg")"
printf '%-34s %14s %14s %10s\n' "auth: 4 MiB GB/s vs iperf3" "$(num "$a_gbps" %.3f)" "$(num "$m_ip" %.3f)" "$(ratio "$qa_iperf")"
printf '%-34s %14s %14s %10s\n' "auth+encrypt: 64 B calls/s vs plain" "$(num "$e_cps" %.0f)" "$(num "$m_cps" %.0f)" "$(ratio "$qe_rc")"
printf '%-34s %14s %14s %10s\n' "auth+encrypt: 4 MiB vs plain rpc" "$(num "$e_gbps" %.3f)" "$(num "$m_gbps" %.3f)" "$(ratio "$qe_rg")"
printf '%-34s %14s %14s %10s\n' "auth+encrypt: 4 MiB GB/s vs iperf3" "$(num "$e_gbps" %.3f)" "$(num "$m_ip" %.3f)" "$(ratio "$qe_iperf")"
