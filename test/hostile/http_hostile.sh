#!/usr/bin/env bash
# A live 3-node cluster (replicas 2) whose n1 is attacked on its HTTP port (http_attack.py): a
# slowloris of 300 connections from 127.0.0.2 that send a header line a second and never finish,
# 1000 connections at once, 64 KiB headers and URLs, 4000 headers, binary junk and malformed
# requests, every method but GET and HEAD, and paths that climb out of the root. Meanwhile genuine
# clients put and get through the rpc. Checked: during the slowloris n1 still answers /livez from
# another address and `aquifer status`; every attack gets a clear 4xx (405, 404, 431...) or a
# close, never a file; every genuine round trip succeeds; n1's fds return near their baseline; all
# three nodes are alive, ready and serving at the end.
. "$AQ_SRC/test/integration/lib.sh"
A="python3 $AQ_SRC/test/hostile/http_attack.py"
command -v curl >/dev/null || it_fail "needs curl"

it_conf_http 3 2
P=("${IT_PORTS[@]}")
it_up
HP=${P[3]}
U=http://127.0.0.1:$HP
PID1=$(it_pid n1)
fds() { ls "/proc/$1/fd" | wc -l; }
alive() { for n in n1 n2 n3; do kill -0 "$(it_pid $n)" 2>/dev/null || it_fail "$n ($1) died"; done; }

# Genuine rpc traffic during the attacks (it_genuine).
it_genuine &
GPID=$!
IT_CLEANUPS+=("touch '$T/stop'; kill $GPID 2>/dev/null")
sleep 1
FD0=$(fds "$PID1")
it_log "n1 before: $FD0 fds"

it_log "slowloris from 127.0.0.2 for 20 s"
$A 127.0.0.1 "$HP" slowloris 300 20 127.0.0.2 >"$T/slow.out" 2>&1 &
SPID=$!
sleep 4
for i in 1 2 3; do
  [ "$(curl -s --max-time 10 "$U/livez")" = alive ] || it_fail "/livez did not answer during the slowloris"
  [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$U/metrics")" = 200 ] ||
    it_fail "/metrics did not answer during the slowloris"
  timeout 20 "$AQ" status >/dev/null || it_fail "aquifer status did not answer during the slowloris"
  sleep 2
done
it_log "n1 during the slowloris: $(fds "$PID1") fds"
wait "$SPID" || it_fail "slowloris tool failed: $(cat "$T/slow.out")"
cat "$T/slow.out"
alive "after the slowloris"

it_log "1000 connections at once"
$A 127.0.0.1 "$HP" flood 1000 || it_fail "flood"
alive "after the flood"
for a in bigheader garbage methods traversal; do
  it_log "$a"
  $A 127.0.0.1 "$HP" "$a" || it_fail "$a"
done
alive "after the malformed requests"

touch "$T/stop"
wait "$GPID" 2>/dev/null || true
read -r tries ok <"$T/genuine.count"
it_log "genuine round trips: $ok of $tries"
[ "$tries" -ge 5 ] || it_fail "only $tries genuine round trips ran"
[ "$ok" -ge $((tries - 1)) ] || { tail -5 "$T/genuine.err"; it_fail "genuine traffic failed: $ok of $tries"; }

# Connections the attacks left are closed by the server's idle timeout (10 s).
for i in $(seq 1 100); do
  [ "$(fds "$PID1")" -le $((FD0 + 8)) ] && break
  sleep 0.2
done
[ "$(fds "$PID1")" -le $((FD0 + 8)) ] || it_fail "n1 holds $(fds "$PID1") fds, $FD0 before"
alive "at the end"
for n in 1 2 3; do
  u=http://127.0.0.1:${P[n + 2]}
  [ "$(curl -s --max-time 10 "$u/readyz")" = ready ] || it_fail "n$n not ready at the end"
done
"$AQ" status >/dev/null || it_fail "status at the end"
# A clean stop: in a sanitizer build, a leak or bad access found at exit lands in the node logs.
"$AQ" cluster down >/dev/null 2>&1 || it_fail "cluster down failed"
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/run/*.log; then
  it_fail "a sanitizer report in the node logs above"
fi
it_log "ok"
