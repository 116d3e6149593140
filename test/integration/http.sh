#!/usr/bin/env bash
# Each node's HTTP server on a live 3-node cluster (replicas 2) under put/get traffic: every endpoint
# answers with the right status and content type; /status carries the field names of `aquifer status
# --json`; /metrics passes `promtool check metrics`, has a series per node and per peer link and
# latency histograms, and its counters move between two scrapes; HEAD works, other methods get 405,
# unknown and traversing paths 404; /readyz turns 503 (naming the down nodes) when n1 cannot see
# enough live nodes for 2 copies and 200 again once one is back; headless Chromium renders the page
# with every node's name and state, the links, the frames and three charts. Then the token rule, in
# a network namespace where a node can have a non-loopback address: with a secret_file, n1 (on
# 10.x) answers /metrics only with the bearer token, /livez and /readyz without; n2 (loopback) needs
# none. Needs root (ip netns), curl, promtool and chromium (scripts/lib/common.sh AQ_PKGS_TEST).
. "$(dirname "$0")/lib.sh"

for t in curl promtool chromium; do
  command -v "$t" >/dev/null || it_fail "needs $t (scripts/lib/common.sh installs it)"
done
[ "$(id -u)" = 0 ] || it_fail "needs root for ip netns"

it_conf_http 3 2
P=("${IT_PORTS[@]}")
declare -A H=([n1]="http://127.0.0.1:${P[3]}" [n2]="http://127.0.0.1:${P[4]}" [n3]="http://127.0.0.1:${P[5]}")
it_up

# code URL [curl args...]: the HTTP status of a GET.
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }
# expect_code WANT URL [curl args...]
expect_code() {
  local want=$1 got
  shift
  got=$(code "$@")
  [ "$got" = "$want" ] || it_fail "$* answered $got, wanted $want"
}
# metric TEXT NAME LABELS: the value of one series in a scrape.
metric() { awk -v k="$2{$3}" '$1 == k {print $2}' <<<"$1"; }

# Traffic during the checks: put/get round trips, each checked.
mkdir -p "$T/v"
traffic() {
  local i=0
  while [ ! -f "$T/stop" ]; do
    i=$((i + 1))
    head -c $((RANDOM * 3)) /dev/urandom >"$T/v/in"
    "$AQ" put "t/$((i % 50))" "$T/v/in" >/dev/null 2>>"$T/traffic.err" &&
      "$AQ" get "t/$((i % 50))" -o "$T/v/out" >/dev/null 2>>"$T/traffic.err" &&
      cmp -s "$T/v/in" "$T/v/out" && echo "$i" >"$T/traffic.ok"
  done
}
traffic &
TPID=$!
IT_CLEANUPS+=("touch '$T/stop'; kill $TPID 2>/dev/null")
"$AQ" parse "$AQ_DATA_DIR/iris_wheader.csv" >/dev/null || it_fail "parse iris"
sleep 1

it_log "every endpoint of every node"
"$AQ" status --json >"$T/status.json"
for n in n1 n2 n3; do
  u=${H[$n]}
  [ "$(curl -s --max-time 20 "$u/livez")" = alive ] || it_fail "$n /livez"
  [ "$(curl -s --max-time 20 "$u/readyz")" = ready ] || it_fail "$n /readyz: $(curl -s "$u/readyz")"
  curl -s --max-time 20 -D "$T/h" "$u/status" -o "$T/$n.status" || it_fail "$n /status"
  grep -qi '^content-type: application/json' "$T/h" || it_fail "$n /status content type"
  python3 - "$T/$n.status" "$T/status.json" "$n" <<'EOF' || it_fail "$n /status differs from status --json"
import json, sys
mine = json.load(open(sys.argv[1]))
cli = json.load(open(sys.argv[2]))
name = sys.argv[3]
node = mine["node"]
want = [n for n in cli["nodes"] if n["name"] == name][0]
assert node["name"] == name and node["reachable"] and node["state"] == "up", node
# The same field names as `aquifer status --json`, for the node and for each peer link.
missing = set(want) - set(node)
assert not missing, f"fields missing: {missing}"
for p in want["peers"]:
    q = [x for x in node["peers"] if x["name"] == p["name"]][0]
    assert set(p) <= set(q), set(p) - set(q)
assert node["incarnation"] == want["incarnation"]
assert mine["ready"] is True and mine["cluster"] == cli["cluster"]
EOF
  curl -s --max-time 20 -D "$T/h" "$u/metrics" -o "$T/$n.metrics" || it_fail "$n /metrics"
  grep -qi '^content-type: text/plain; version=0.0.4' "$T/h" || it_fail "$n /metrics content type"
  promtool check metrics <"$T/$n.metrics" >"$T/promtool.out" 2>&1 ||
    { cat "$T/promtool.out"; it_fail "promtool check metrics failed for $n"; }
  for other in n1 n2 n3; do
    [ "$other" = "$n" ] && continue
    m=$(cat "$T/$n.metrics")
    [ "$(metric "$m" aquifer_peer_up "node=\"$n\",peer=\"$other\"")" = 1 ] || it_fail "$n: peer_up $other"
    [ -n "$(metric "$m" aquifer_peer_rtt_seconds "node=\"$n\",peer=\"$other\"")" ] || it_fail "$n: rtt $other"
  done
  grep -q "^# TYPE aquifer_handler_duration_seconds histogram" "$T/$n.metrics" || it_fail "$n: histogram"
  grep -q "^aquifer_handler_duration_seconds_bucket{node=\"$n\",method=\"PUT\",le=\"+Inf\"}" "$T/$n.metrics" ||
    it_fail "$n: PUT latency buckets"
  curl -s --max-time 20 "$u/history" | python3 -c '
import json, sys
h = json.load(sys.stdin)
assert h["interval_ms"] == 5000 and h["length"] == 180, h
assert len(h["t_ms"]) >= 1 and len(h["t_ms"]) == len(h["calls"]) == len(h["bytes_in"]) == len(h["retransmits"]), h
' || it_fail "$n /history"
  curl -s --max-time 20 "$u/" | it_has '<script src="/app.js"' || it_fail "$n: page"
  expect_code 200 "$u/app.js"
  expect_code 200 "$u/style.css"
  expect_code 200 "$u/cluster"
done

it_log "counters move between two scrapes under traffic"
a=$(curl -s "${H[n1]}/metrics")
sleep 3
b=$(curl -s "${H[n1]}/metrics")
for s in aquifer_handled_total 'aquifer_handler_duration_seconds_count'; do
  l='node="n1"'
  [ "$s" = aquifer_handler_duration_seconds_count ] && l='node="n1",method="GET"'
  x=$(metric "$a" "$s" "$l")
  y=$(metric "$b" "$s" "$l")
  [ -n "$x" ] && [ -n "$y" ] && [ "$y" -gt "$x" ] || it_fail "$s{$l} did not move: $x -> $y"
  it_log "$s{$l}: $x -> $y"
done
x=$(awk '/^aquifer_peer_calls_total\{node="n1"/ {s += $2} END {print s}' <<<"$a")
y=$(awk '/^aquifer_peer_calls_total\{node="n1"/ {s += $2} END {print s}' <<<"$b")
[ "$y" -gt "$x" ] || it_fail "n1's calls to its peers did not move: $x -> $y"

it_log "methods and paths"
u=${H[n1]}
[ "$(curl -s -I --max-time 20 "$u/metrics" | head -1 | tr -d '\r')" = "HTTP/1.1 200 OK" ] || it_fail "HEAD"
[ "$(curl -s --max-time 20 -I "$u/status" -o /dev/null -w '%{size_download}')" = 0 ] || it_fail "HEAD sent a body"
for m in POST PUT DELETE OPTIONS PATCH; do expect_code 405 -X "$m" "$u/status"; done
expect_code 404 "$u/nothing"
expect_code 404 --path-as-is "$u/../../../etc/passwd"
expect_code 404 --path-as-is "$u/%2e%2e/%2e%2e/etc/passwd"
curl -s --path-as-is "$u/../../../etc/passwd" | it_has root: && it_fail "path traversal served a file"
expect_code 404 "$u/livez/"
[ "$(code "$u/metrics" -H "X-Pad: $(head -c 40000 /dev/zero | tr '\0' a)")" -ge 400 ] ||
  it_fail "an oversized header was accepted"

it_log "headless Chromium renders the page"
sleep 6 # a second history sample and a frames round
chrome() {
  timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$T/chrome" \
    --virtual-time-budget=5000 "$@" 2>>"$T/chromium.err"
}
chrome --dump-dom "$u/" >"$T/dom.html" || it_fail "chromium --dump-dom failed"
python3 - "$T/dom.html" <<'EOF' || it_fail "the rendered page misses something (see above)"
import re, sys
dom = open(sys.argv[1]).read()
for n in ("n1", "n2", "n3"):
    m = re.search(r'<div class="card node" data-node="%s" data-state="([a-z]+)">.*?<span class="badge state (\w+)">(\w+)</span>' % n, dom)
    assert m, f"no card for {n}"
    assert m.group(1) == "up" and m.group(3) == "up", f"{n} is {m.group(1)}/{m.group(3)}"
links = re.findall(r'<tr class="link">', dom)
assert len(links) == 6, f"{len(links)} links"
charts = re.findall(r'<figure class="chart" id="chart-(\w+)">.*?<svg[^>]*>(.*?)</svg>', dom, re.S)
assert sorted(c[0] for c in charts) == ["bytes", "calls", "retx"], charts
for name, body in charts:
    assert 'class="series s0"' in body, f"chart {name} has no line"
assert '<tr class="frame"><td>iris_wheader</td><td class="num">150</td>' in dom, "frame iris_wheader"
assert 'class="badge ready"' in dom, "not shown ready"
EOF
chrome --screenshot="$T/laptop.png" --window-size=1280,900 "$u/" >/dev/null || it_fail "screenshot"
chrome --screenshot="$T/phone.png" --window-size=390,844 "$u/" >/dev/null || it_fail "phone screenshot"
for f in laptop phone; do [ -s "$T/$f.png" ] || it_fail "no $f screenshot"; done
if [ -n "${AQ_SCREENSHOTS:-}" ]; then cp "$T/laptop.png" "$T/phone.png" "$AQ_SCREENSHOTS/"; fi

it_log "/readyz: 503 without enough live nodes, 200 once one is back"
touch "$T/stop"
wait "$TPID" 2>/dev/null || true
[ -s "$T/traffic.ok" ] || { cat "$T/traffic.err"; it_fail "no traffic round trip succeeded"; }
kill -KILL "$(it_pid n2)" "$(it_pid n3)"
for i in $(seq 1 150); do
  [ "$(code "$u/readyz")" = 503 ] && break
  sleep 0.2
done
r=$(curl -s "$u/readyz")
[[ $r == "not ready: sees 1 live node, fewer than the 2 copies of every chunk need (down: n2, n3)" ]] ||
  it_fail "n1 /readyz: $r"
[ "$(metric "$(curl -s "$u/metrics")" aquifer_ready 'node="n1"')" = 0 ] || it_fail "aquifer_ready not 0"
expect_code 200 "$u/livez"
expect_code 200 "$u/status"
curl -s "$u/cluster" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["ready"] is False
st = {n["name"]: n["state"] for n in d["nodes"]}
assert st == {"n1": "up", "n2": "unreachable", "n3": "unreachable"}, st
' || it_fail "n1 /cluster while alone"
it_start_node n2
for i in $(seq 1 150); do
  [ "$(code "$u/readyz")" = 200 ] && break
  sleep 0.2
done
expect_code 200 "$u/readyz"
"$AQ" cluster down >/dev/null 2>&1 || true
sancheck() {
  if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$@"; then
    it_fail "a sanitizer report in the node logs above"
  fi
}
sancheck "$T"/run/*.log

it_log "the token rule, in a network namespace"
ns=aqhttp$$
ip netns add "$ns"
IT_CLEANUPS+=("ip netns pids $ns 2>/dev/null | xargs -r kill -9; ip netns del $ns 2>/dev/null")
ip -n "$ns" link set lo up
# A veth pair inside the namespace gives it a non-loopback address (no dummy module needed).
ip -n "$ns" link add v0 type veth peer name v1
ip -n "$ns" addr add 10.77.0.1/24 dev v0
ip -n "$ns" link set v0 up
ip -n "$ns" link set v1 up
"$AQ" secret new "$T/secret" >/dev/null
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')
(umask 077 && printf '%s\n' "$TOKEN" >"$T/token")
cat >"$T/ns.conf" <<EOF
[cluster]
name = tok-$$
replicas = 1
run_dir = $T/nsrun
heartbeat = 200ms
secret_file = $T/secret
http_token_file = $T/token

[node n1]
address = 10.77.0.1:7000
http_address = 10.77.0.1:8080

[node n2]
address = 127.0.0.1:7001
http_address = 127.0.0.1:8081
EOF
mkdir -p "$T/nsrun"
for n in n1 n2; do
  ip netns exec "$ns" "$AQD" -c "$T/ns.conf" -n "$n" >>"$T/nsrun/$n.log" 2>&1 &
done
nscode() { ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }
for i in $(seq 1 100); do
  [ "$(nscode http://10.77.0.1:8080/livez)" = 200 ] && [ "$(nscode http://127.0.0.1:8081/livez)" = 200 ] && break
  sleep 0.2
done
[ "$(nscode http://10.77.0.1:8080/livez)" = 200 ] || { cat "$T/nsrun/n1.log"; it_fail "n1 in $ns does not serve HTTP"; }
grep -q 'token required' "$T/nsrun/n1.log" || it_fail "n1 does not say it requires a token"
for p in metrics status cluster history "" app.js; do
  [ "$(nscode "http://10.77.0.1:8080/$p")" = 401 ] || it_fail "/$p without a token was not 401"
  [ "$(nscode -H "Authorization: Bearer wrong$TOKEN" "http://10.77.0.1:8080/$p")" = 401 ] ||
    it_fail "/$p with a wrong token was not 401"
  [ "$(nscode -H "Authorization: Bearer $TOKEN" "http://10.77.0.1:8080/$p")" = 200 ] ||
    it_fail "/$p with the token was not 200"
  [ "$(nscode "http://127.0.0.1:8081/$p")" = 200 ] || it_fail "loopback n2 /$p wanted no token"
done
[ "$(nscode http://10.77.0.1:8080/readyz)" = 200 ] || it_fail "/readyz needs no token"
[ "$(nscode -H "Authorization: Basic $TOKEN" http://10.77.0.1:8080/metrics)" = 401 ] || it_fail "Basic auth"
ip netns exec "$ns" curl -s -H "Authorization: Bearer $TOKEN" http://10.77.0.1:8080/metrics |
  promtool check metrics || it_fail "promtool on the token-guarded node"
# Stopped cleanly (SIGTERM), so that a sanitizer build reports what it found into the logs.
for p in $(ip netns pids "$ns"); do kill -TERM "$p"; done
for i in $(seq 1 100); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
sancheck "$T"/nsrun/*.log
# A token file others can read is refused at start, with the reason.
chmod 644 "$T/token"
rc=0
ip netns exec "$ns" timeout 30 "$AQD" -c "$T/ns.conf" -n n1 >"$T/badtoken.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || { cat "$T/badtoken.log"; it_fail "a world-readable token file: exit $rc, wanted 2"; }
grep -q "http_token_file (held to the secret file's rules): secret file $T/token is readable or writable by group or others" \
  "$T/badtoken.log" || { cat "$T/badtoken.log"; it_fail "no clear message for the token file"; }
it_log "ok"
