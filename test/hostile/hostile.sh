#!/usr/bin/env bash
# A live 3-node cluster (replicas 2) under hostile traffic aimed at n1: random datagrams, headers
# with valid checksums whose lengths lie (UDP and pipe), another cluster's packets, calls whose
# replies are never acknowledged, a flood of one duplicated call, partial messages without end,
# silent and one-byte-a-second connections, a siege of silent connections reopened as soon as they
# are closed, and thousands of connections opened and dropped. Meanwhile genuine clients put and
# get. Checked: the handler of the duplicated call ran once, the drop counters rose, bad pipes were
# cut off and logged, connections without a HELLO are closed at hello_timeout (1 s here) and
# counted, n1's fds stay within its bound during the floods and return to their baseline after,
# clients get in during the siege, every stored value reads back identical, n1's RSS stays bounded,
# all three nodes are alive and serving at the end, and (in a sanitizer build) no node reports a
# leak or bad access when stopped.
. "$AQ_SRC/test/integration/lib.sh"
H=${AQ_TEST_BIN}/hostile
[ -x "$H" ] || it_fail "no hostile tool at $H"

HELLO_MS=1000
UNIDENT_MAX=256 # the driver's default bound on connections without a HELLO
it_conf 3 2 "hello_timeout = ${HELLO_MS}ms"
it_up
NAME=$(sed -n 's/^name = //p' "$CONF")
N1=$(awk '/^\[node n1\]/{f=1} f && /^address = /{print $3; exit}' "$CONF")
PID1=$(it_pid n1)
LOG1=$T/run/n1.log

# node_field NAME FIELD: a number from `aquifer status --json` for one node.
node_field() {
  "$AQ" status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
n = [n for n in d["nodes"] if n["name"] == sys.argv[1]][0]
print(n[sys.argv[2]])' "$1" "$2"
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
alive() { for n in n1 n2 n3; do kill -0 "$(it_pid $n)" 2>/dev/null || it_fail "$n ($1) died"; done; }

# Values: 40 small ones and one large (parts and a manifest), digests kept to compare at the end.
mkdir -p "$T/v" "$T/out"
for i in $(seq -w 1 40); do it_rand_file "$T/v/$i" $((RANDOM * 7 % 200000)); done
it_rand_file "$T/v/big" $((9 << 20))
for f in "$T"/v/*; do "$AQ" put "keep/$(basename "$f")" "$f" >/dev/null || it_fail "put $f"; done
it_log "stored $(ls "$T/v" | wc -l) values"

rm -f "$T/stop"
it_genuine & # genuine traffic during the attack
GPID=$!
IT_CLEANUPS+=("touch '$T/stop'; kill $GPID 2>/dev/null")

sleep 1
RSS0=$(rss_kb "$PID1")
FD0=$(fds "$PID1")
MAL0=$(node_field n1 dropped_malformed)
FOR0=$(node_field n1 dropped_foreign)
CUT0=$(grep -c 'cutting off pipe' "$LOG1" || true)
it_log "n1 before: RSS ${RSS0} kB, ${FD0} fds, dropped_malformed $MAL0, dropped_foreign $FOR0"

"$H" "$N1" "$NAME" random 20000 | tee -a "$T/hostile.out"
"$H" "$N1" "$NAME" absurd | tee -a "$T/hostile.out"
"$H" "$N1" "$NAME" foreign 2000 | tee -a "$T/hostile.out"
"$H" "$N1" "$NAME" calls 20000 | tee -a "$T/hostile.out"
alive "after random, absurd, foreign and unacknowledged traffic"

# Connections that never complete a HELLO: one byte a second (alone, so that it meets the
# deadline and not the bound), then 1000 silent ones held 5 s.
HT0=$(node_field n1 hello_timeouts)
HE0=$(node_field n1 hello_evicted)
FDB=$(fds "$PID1")
"$H" "$N1" "$NAME" loris 10 | tee -a "$T/hostile.out"
"$H" "$N1" "$NAME" idle 1000 5 | tee -a "$T/hostile.out" &
IPID=$!
peak=0
for i in $(seq 20); do
  f=$(fds "$PID1")
  [ "$f" -gt "$peak" ] && peak=$f
  sleep 0.1
done
sleep $((HELLO_MS / 1000 + 1))
FDI=$(fds "$PID1")
it_log "n1: $FDB fds before, at most $peak seen during the flood, $FDI after the deadline while the 1000 are still held"
[ "$peak" -le $((FDB + UNIDENT_MAX + 64)) ] || it_fail "n1 held $peak fds during the idle flood, bound is $FDB + $UNIDENT_MAX + 64"
[ "$FDI" -le $((FDB + 16)) ] || it_fail "n1 holds $FDI fds after the deadline, was $FDB"
wait $IPID
grep -q 'idle: held 1000 silent connections 5 s; 1000 closed by the node' "$T/hostile.out" ||
  it_fail "n1 did not close every silent connection"
HT1=$(node_field n1 hello_timeouts)
HE1=$(node_field n1 hello_evicted)
lms=$(sed -nE 's/^loris: .* closed by the node after ([0-9]+) ms$/\1/p' "$T/hostile.out")
[ -n "$lms" ] || it_fail "the one-byte-a-second connection was not closed"
[ "$lms" -le $((HELLO_MS + 3000)) ] || it_fail "the one-byte-a-second connection lived $lms ms, deadline $HELLO_MS ms"
[ "$((HT1 - HT0))" -ge 1 ] || it_fail "n1 counted no HELLO timeout"
it_log "n1 hello_timeouts $HT0 -> $HT1, hello_evicted $HE0 -> $HE1"
[ $((HT1 - HT0 + HE1 - HE0)) -ge 1001 ] || it_fail "n1 counted $((HT1 - HT0 + HE1 - HE0)) closures, want 1001+"
grep -qE 'rpc: closed inbound connections: [0-9]+ sent no valid HELLO within 1000 ms' "$LOG1" ||
  it_fail "n1 did not log the connections it closed"
nlog=$(grep -c 'rpc: closed inbound connections' "$LOG1")
[ "$nlog" -le 5 ] || it_fail "n1 logged $nlog lines for one flood, want one summary per window"

# A siege: 1000 silent connections, each reopened as soon as n1 closes it, so n1's slots for
# connections without a HELLO stay full. New clients (300 kB values go over a pipe) still get in.
HC0=$(node_field n1 handled_client)
"$H" "$N1" "$NAME" siege 1000 6 | tee -a "$T/hostile.out" &
SPID=$!
sleep 1
sok=0
for i in $(seq 1 6); do
  it_rand_file "$T/s.in" 300000
  "$AQ" put "siege/$i" "$T/s.in" >/dev/null 2>>"$T/siege.err" &&
    "$AQ" get "siege/$i" -o "$T/s.out" >/dev/null 2>>"$T/siege.err" &&
    cmp -s "$T/s.in" "$T/s.out" && sok=$((sok + 1))
  f=$(fds "$PID1")
  [ "$f" -gt "$peak" ] && peak=$f
done
HC1=$(node_field n1 handled_client)
kill -0 $SPID 2>/dev/null || it_fail "the siege ended before the clients were done: raise its duration"
wait $SPID
it_log "during the siege: $sok of 6 put/get round trips identical, n1 handled $((HC1 - HC0)) client calls, at most $peak fds"
[ $sok -eq 6 ] || it_fail "clients failed during the siege: $(tail -n 3 "$T/siege.err")"
[ $((HC1 - HC0)) -ge 1 ] || it_fail "n1 served no client call during the siege"
[ "$peak" -le $((FDB + UNIDENT_MAX + 64)) ] || it_fail "n1 held $peak fds during the siege, bound is $FDB + $UNIDENT_MAX + 64"
grep -qE 'siege: .* [1-9][0-9]* closed by the node' "$T/hostile.out" || it_fail "n1 closed none of the siege"

"$H" "$N1" "$NAME" churn 3000 | tee -a "$T/hostile.out"
"$H" "$N1" "$NAME" partials 200000 | tee -a "$T/hostile.out"
alive "after connection abuse"

MAL1=$(node_field n1 dropped_malformed)
FOR1=$(node_field n1 dropped_foreign)
it_log "n1 dropped_malformed $MAL0 -> $MAL1, dropped_foreign $FOR0 -> $FOR1"
[ "$MAL1" -gt $((MAL0 + 1000)) ] || it_fail "dropped_malformed rose by only $((MAL1 - MAL0))"
[ "$FOR1" -ge $((FOR0 + 2000)) ] || it_fail "dropped_foreign rose by only $((FOR1 - FOR0)), want 2000+"
cut=$(sed -nE 's/^absurd: .* ([0-9]+) of ([0-9]+) lying pipes cut off/\1 \2/p' "$T/hostile.out")
[ "${cut% *}" = "${cut#* }" ] || it_fail "not every lying pipe was cut off: $cut"
grep -q 'foreign pipe cut off' "$T/hostile.out" || it_fail "the foreign pipe was not cut off"
grep -q 'partials: .* pipe cut off' "$T/hostile.out" || it_fail "the pipe of endless partial messages was not cut off"
grep -q 'cutting off pipe from .*: too many partial messages' "$LOG1" || it_fail "n1 did not log the partials cutoff"
CUT1=$(grep -c 'cutting off pipe' "$LOG1" || true)
[ "$CUT1" -ge $((CUT0 + 6)) ] || it_fail "n1 logged $((CUT1 - CUT0)) cutoffs, want 6+ (4 lies, foreign, partials)"
grep 'cutting off pipe' "$LOG1" | tail -n 3

# Stop the genuine clients so that the duplicate flood is the only client call n1 sees.
touch "$T/stop"
wait $GPID || true
read -r gi gok <"$T/genuine.count"
it_log "genuine clients during the attack: $gok of $gi put/get round trips identical"
[ "$gi" -ge 3 ] && [ "$gok" -ge $((gi - 1)) ] || it_fail "genuine traffic suffered: $gok of $gi ok ($(tail -n 3 "$T/genuine.err"))"

HC0=$(node_field n1 handled_client)
"$H" "$N1" "$NAME" dupflood 5000 | tee -a "$T/hostile.out"
HC1=$(node_field n1 handled_client)
it_log "n1 handled_client $HC0 -> $HC1 for 5000 copies of one call"
[ "$HC1" -eq $((HC0 + 1)) ] || it_fail "the duplicated call's handler ran $((HC1 - HC0)) times, want 1"
grep -qE 'dupflood: .* got [1-9][0-9]* replies' "$T/hostile.out" || it_fail "the flooded call got no reply"

sleep 1
RSS1=$(rss_kb "$PID1")
FD1=$(fds "$PID1")
it_log "n1 after: RSS ${RSS1} kB (was ${RSS0}), ${FD1} fds (was ${FD0})"
[ "$FD1" -le $((FD0 + 16)) ] || it_fail "n1 holds $FD1 fds, was $FD0"
[ "$RSS1" -le $((RSS0 + 262144)) ] || it_fail "n1 RSS grew from $RSS0 to $RSS1 kB"

# Nothing stored changed, and every node still serves.
bad=0
for f in "$T"/v/*; do
  b=$(basename "$f")
  "$AQ" get "keep/$b" -o "$T/out/$b" >/dev/null && cmp -s "$f" "$T/out/$b" || { echo "keep/$b differs"; bad=$((bad + 1)); }
done
[ $bad -eq 0 ] || it_fail "$bad stored values changed or are unreadable"
alive "at the end"
n=$("$AQ" status --json | python3 -c 'import json,sys; print(sum(n["reachable"] for n in json.load(sys.stdin)["nodes"]))')
[ "$n" = 3 ] || it_fail "$n of 3 nodes answer STATUS"
# A clean stop: in a sanitizer build, a leak or bad access found at exit lands in the node logs.
"$AQ" cluster down >/dev/null 2>&1 || it_fail "cluster down failed"
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/run/*.log; then
  it_fail "a sanitizer report in the node logs above"
fi
echo "hostile: $(ls "$T/v" | wc -l) values intact, $gok/$gi genuine round trips during the attack, dup handler ran once, n1 RSS $RSS0 -> $RSS1 kB, fds $FD0 -> $FD1"
