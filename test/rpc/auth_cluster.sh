#!/usr/bin/env bash
# "Only the cluster gets in", on a real three-node cluster with a secret_file: secret files (made
# 0600, never overwritten, refused when short or readable by others); status says the traffic is
# authenticated; a command with no secret and one with the wrong secret fail with one sentence
# naming the node, exit 3, and the nodes count auth_failures; a captured genuine PUT replayed
# changes nothing; every single-bit flip of it (checksum fixed up) is dropped; forged heartbeats
# from a stopped member's spoofed address do not bring it back up; a command without the secret
# whose first call is big (a pipe frame, not a datagram) fails the same way. Then the cluster with
# encrypt = yes: status says so, 16 B and 4 MiB+ values round trip for an encrypting command and
# for one that only authenticates, a captured PUT carries no plain text. Then a cluster without a
# secret says plainly that traffic is not authenticated. Every process started is stopped on any
# exit.
set -euo pipefail

: "${AQ_SRC:?AQ_SRC must point at the source tree}"
# Free ports and cleanup that always runs (test/integration/lib.sh); this test writes its own
# configs (secrets, a proxied address) and names them on every call.
source "$AQ_SRC/test/integration/lib.sh"
unset AQUIFER_CONF
TOOL=$AQ_SRC/test/rpc/auth_tool.py
PROXY_PID=
IT_CLEANUPS+=('[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null'
  '[ -f "$CONF" ] && "$AQ" -c "$CONF" cluster down >/dev/null 2>&1')

step() { it_log "$@"; }
fail() { it_fail "$@"; }
aq() { "$AQ" -c "$CONF" "$@"; }

read -r -a PORTS <<<"$(it_free_ports 4)"
NAME=auth-$$
# write_conf FILE SECRET_LINE [n1 address override]
write_conf() {
  local file=$1 secret=$2 n1=${3:-127.0.0.1:${PORTS[0]}}
  {
    echo "[cluster]"
    echo "name = $NAME"
    echo "replicas = 2"
    echo "run_dir = $T/run"
    echo "heartbeat = 200ms"
    [ -n "$secret" ] && echo "secret_file = $secret"
    [ -n "${ENCRYPT:-}" ] && echo "encrypt = $ENCRYPT"
    printf '\n[node n1]\naddress = %s\nmemory_max = 256MiB\n' "$n1"
    printf '\n[node n2]\naddress = 127.0.0.1:%d\nmemory_max = 256MiB\n' "${PORTS[1]}"
    printf '\n[node n3]\naddress = 127.0.0.1:%d\nmemory_max = 256MiB\n' "${PORTS[2]}"
  } >"$file"
}

# json_field CONF NODE FIELD: a field of one node in `status --json`
status_field() {
  "$AQ" -c "$1" status --json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if n["name"] == sys.argv[1]:
        print(n.get(sys.argv[2], ""))' "$2" "$3"
}

step "secret files"
"$AQ" secret new "$T/secret" || fail "secret new"
[ "$(stat -c %a "$T/secret")" = 600 ] || fail "secret mode is $(stat -c %a "$T/secret")"
[ "$(stat -c %s "$T/secret")" -ge 32 ] || fail "secret too short"
cp "$T/secret" "$T/secret.copy"
if "$AQ" secret new "$T/secret" 2>"$T/err"; then fail "secret new overwrote a file"; fi
grep -q "never overwritten" "$T/err" || fail "overwrite refusal: $(cat "$T/err")"
cmp -s "$T/secret" "$T/secret.copy" || fail "the existing secret changed"
"$AQ" secret new "$T/wrong"
head -c 16 /dev/urandom >"$T/short" && chmod 600 "$T/short"
cp "$T/secret" "$T/open" && chmod 644 "$T/open"
write_conf "$T/short.conf" "$T/short"
write_conf "$T/open.conf" "$T/open"
set +e
"$AQ" -c "$T/short.conf" status >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "holds 16 bytes" "$T/err" || fail "short secret: rc $rc: $(cat "$T/err")"
set +e
"$AQ" -c "$T/open.conf" status >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "group or others" "$T/err" || fail "0644 secret: rc $rc: $(cat "$T/err")"

write_conf "$CONF" "$T/secret"
write_conf "$T/none.conf" ""
write_conf "$T/wrong.conf" "$T/wrong"
write_conf "$T/proxy.conf" "$T/secret" "127.0.0.1:${PORTS[3]}"

step "cluster up with a secret"
aq cluster up >"$T/up" || fail "cluster up: $(cat "$T/up")"
aq status >"$T/st"
grep -q "^traffic: authenticated" "$T/st" || fail "status does not say authenticated: $(cat "$T/st")"
[ "$(status_field "$CONF" n1 authenticated)" = True ] || fail "n1 not authenticated"

step "put and get with the secret"
head -c 1000 /dev/urandom >"$T/v1"
aq put k1 "$T/v1" >/dev/null || fail "put"
aq get k1 -o "$T/got" && cmp -s "$T/v1" "$T/got" || fail "get"

step "a command without a secret, and one with the wrong secret"
for which in none wrong; do
  set +e
  "$AQ" -c "$T/$which.conf" get k1 >/dev/null 2>"$T/err"; rc=$?
  set -e
  [ $rc -eq 3 ] || fail "$which: exit $rc, want 3: $(cat "$T/err")"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$which: not one sentence: $(cat "$T/err")"
  grep -Eq "authentication failed at node n[123] \(127\.0\.0\.1:[0-9]+\)" "$T/err" ||
    fail "$which: $(cat "$T/err")"
  echo "  $which: $(cat "$T/err")"
done
fails=$(status_field "$CONF" n1 auth_failures)
[ "$fails" -gt 0 ] || fail "n1 counted no auth_failures"
aq status | grep "^traffic:"

step "a captured genuine put, replayed and bit-flipped, changes nothing"
python3 "$TOOL" proxy "${PORTS[3]}" "${PORTS[0]}" "$T" &
PROXY_PID=$!
for _ in $(seq 100); do [ -f "$T/proxy.ready" ] && break; sleep 0.1; done
# A key whose first candidate is n1 (through the proxy): try keys until a PUT was captured.
head -c 700 /dev/urandom >"$T/old"
key=
for i in $(seq 30); do
  "$AQ" -c "$T/proxy.conf" put "r$i" "$T/old" >/dev/null || fail "put via proxy"
  if [ -f "$T/captured" ] && python3 -c '
import sys
sys.exit(0 if any(l[6:8] == "01" and l[12:16] == "0100" for l in open(sys.argv[1])) else 1)' "$T/captured"; then
    key=r$i
    break
  fi
done
[ -n "$key" ] || fail "no PUT went through the proxy"
head -c 700 /dev/urandom >"$T/new"
aq put "$key" "$T/new" >/dev/null
before=$(status_field "$CONF" n1 auth_failures)
kill -USR1 $PROXY_PID
for _ in $(seq 100); do [ -f "$T/replay.done" ] && break; sleep 0.1; done
[ -f "$T/replay.done" ] || fail "replay did not finish"
kill -USR2 $PROXY_PID
for _ in $(seq 300); do [ -f "$T/flip.done" ] && break; sleep 0.1; done
[ -f "$T/flip.done" ] || fail "bit flips did not finish"
sleep 1
aq get "$key" -o "$T/got"
cmp -s "$T/new" "$T/got" || fail "replayed or flipped put changed $key"
after=$(status_field "$CONF" n1 auth_failures)
echo "  replayed $(cat "$T/replay.done") datagrams, sent $(cat "$T/flip.done") bit flips; n1 auth_failures $before -> $after"
[ $((after - before)) -ge $(($(cat "$T/flip.done") / 2)) ] || fail "bit flips were not counted as auth failures"

step "forged heartbeats from a stopped member's address"
cid=$(head -n1 "$T/captured" | python3 -c 'import sys; h=bytes.fromhex(sys.stdin.read().strip()); print(h[8:16][::-1].hex())')
n2pid=$(cat "$T/run/n2.pid")
kill -STOP "$n2pid"
for _ in $(seq 100); do
  st=$(aq status --json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if n["name"] == "n1":
        print([p["state"] for p in n["peers"] if p["name"] == "n2"][0])')
  [ "$st" = down ] && break
  sleep 0.2
done
[ "$st" = down ] || fail "n1 never saw n2 down (state $st)"
python3 "$TOOL" heartbeat "${PORTS[0]}" "${PORTS[1]}" n2 "$cid" 3 >"$T/hb"
st=$(aq status --json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if n["name"] == "n1":
        print([p["state"] for p in n["peers"] if p["name"] == "n2"][0])')
[ "$st" = down ] || fail "forged heartbeats changed n1's view of n2 to $st"
echo "  $(cat "$T/hb") forged heartbeats: n1 still sees n2 $st"
kill -CONT "$n2pid"

step "a command without the secret whose first call goes over the pipe"
head -c 200000 /dev/urandom >"$T/big"
for which in none wrong; do
  set +e
  timeout 60 "$AQ" -c "$T/$which.conf" put big "$T/big" >/dev/null 2>"$T/err"; rc=$?
  set -e
  [ $rc -eq 3 ] || fail "$which, big put: exit $rc, want 3: $(cat "$T/err")"
  grep -Eq "authentication failed at node n[123] \(127\.0\.0\.1:[0-9]+\)" "$T/err" ||
    fail "$which, big put: $(cat "$T/err")"
  echo "  $which: $(cat "$T/err")"
done

step "encrypt = yes"
aq cluster down >/dev/null
ENCRYPT=yes write_conf "$CONF" "$T/secret"
ENCRYPT=yes write_conf "$T/proxy.conf" "$T/secret" "127.0.0.1:${PORTS[3]}"
cp "$CONF" "$T/enc.conf"
write_conf "$T/auth-only.conf" "$T/secret"
aq cluster up >/dev/null || fail "cluster up with encrypt = yes"
aq status >"$T/st"
grep -q "^traffic: authenticated, payloads encrypted" "$T/st" || fail "status: $(cat "$T/st")"
[ "$(status_field "$CONF" n1 encrypted)" = True ] || fail "n1 not encrypted"
grep -q "payloads encrypted" "$T/run/n1.log" || fail "n1's log does not say encrypted"
head -c 16 /dev/urandom >"$T/v16"
head -c $((4 * 1024 * 1024 + 4096)) /dev/urandom >"$T/v4m"
for conf in enc auth-only; do
  for v in v16 v4m; do
    "$AQ" -c "$T/$conf.conf" put "e-$conf-$v" "$T/$v" >/dev/null || fail "$conf: put $v"
    "$AQ" -c "$T/$conf.conf" get "e-$conf-$v" -o "$T/got" && cmp -s "$T/$v" "$T/got" ||
      fail "$conf: get $v"
    aq get "e-$conf-$v" -o "$T/got" && cmp -s "$T/$v" "$T/got" || fail "$conf: get $v back"
  done
done
set +e
"$AQ" -c "$T/none.conf" get e-enc-v16 >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc -eq 3 ] || fail "no secret against encrypting nodes: exit $rc: $(cat "$T/err")"
# A recognisable value put through the proxy: the captured CALL datagrams carry ciphertext.
python3 -c 'import sys; sys.stdout.write("aquifer-plaintext-marker" * 30)' >"$T/marked"
rm -f "$T/captured"
"$AQ" -c "$T/proxy.conf" put marked "$T/marked" >/dev/null || fail "put via proxy"
[ -s "$T/captured" ] || fail "nothing captured"
marker_hex=$(printf 'aquifer-plaintext-marker' | od -An -tx1 | tr -d ' \n')
if grep -q "$marker_hex" "$T/captured"; then fail "plain text on the wire with encrypt = yes"; fi
python3 -c '
import sys
calls = [bytes.fromhex(l.strip()) for l in open(sys.argv[1]) if l[6:8] == "01"]
assert calls, "no CALL captured"
assert all(c[4] & 3 == 3 for c in calls), "a CALL without the MAC and ENC flags"
print("  %d CALL datagrams captured, all encrypted" % len(calls))' "$T/captured"

step "cluster down; a cluster without a secret says so"
aq cluster down >/dev/null
write_conf "$CONF" ""
aq cluster up >/dev/null || fail "cluster up without a secret"
aq status >"$T/st"
grep -q "^traffic: NOT authenticated" "$T/st" || fail "status: $(cat "$T/st")"
aq put k2 "$T/v1" >/dev/null && aq get k2 -o "$T/got" && cmp -s "$T/v1" "$T/got" || fail "plain put/get"
aq cluster down >/dev/null
step "ok"
