#!/usr/bin/env bash
# The aquifer command end to end against three local nodes: cluster up, put/get round trips of
# sizes around the datagram and chunk boundaries, stat digests against xxhsum, ls, rm, usage
# errors, an unreachable cluster, cluster down. Every process started is cleaned up on any exit.
set -euo pipefail

# A private cluster on free ports and cleanup that always runs (test/integration/lib.sh); this
# test starts the cluster itself, since `cluster up` is under test. Every call names its config.
source "$AQ_SRC/test/integration/lib.sh"
unset AQUIFER_CONF
IT_CLEANUPS+=("'$AQ' -c '$CONF' cluster down >/dev/null 2>&1")
step() { it_log "$@"; }
fail() { it_fail "$@"; }

it_conf 3 2
read -r -a PORTS <<<"$(sed -n 's/^address = 127.0.0.1://p' "$CONF" | tr '\n' ' ')"
step "cluster up (3 nodes on ports ${PORTS[*]})"
"$AQ" -c "$CONF" cluster up >"$T/up.out" 2>&1 || { cat "$T/up.out"; fail "cluster up failed"; }
cat "$T/up.out"
for n in n1 n2 n3; do [ -s "$T/run/$n.pid" ] || fail "no pid file for $n"; done

step "cluster up again starts nothing twice"
"$AQ" -c "$CONF" cluster up >"$T/up2.out" 2>&1 || { cat "$T/up2.out"; fail "second cluster up failed"; }
[ "$(grep -c 'already running' "$T/up2.out")" = 3 ] || { cat "$T/up2.out"; fail "a node was started twice"; }

step "status --json is valid JSON and shows 3 reachable nodes, every link up"
"$AQ" status -c "$CONF" --json >"$T/status.json"
python3 - "$T/status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["nodes"]) == 3 and all(n["reachable"] for n in d["nodes"]), d
assert all(p["state"] == "up" for n in d["nodes"] for p in n["peers"]), d
PY

mkdir -p "$T/v" "$T/out"
SIZES="0 1 1400 1401 4194304 4194305 20971520"
for s in $SIZES; do
  head -c "$s" /dev/urandom >"$T/v/$s"
  step "put/get round trip of $s bytes"
  "$AQ" -c "$CONF" put "size/$s" "$T/v/$s"
  "$AQ" get "size/$s" -o "$T/out/$s" -c "$CONF"
  cmp "$T/v/$s" "$T/out/$s" || fail "size/$s differs after a round trip"
  want=$(xxhsum -H2 "$T/v/$s" 2>/dev/null | cut -d" " -f1)
  got=$("$AQ" -c "$CONF" stat "size/$s" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["digest"]); assert d["size"] == int(sys.argv[1]), d' "$s")
  [ "$got" = "$want" ] || fail "stat digest of size/$s is $got, xxhsum -H2 says $want"
done

step "get to stdout and put from stdin (5 MiB, a large value through a pipe)"
head -c 5242880 /dev/urandom >"$T/v/pipe"
"$AQ" -c "$CONF" put pipe/x - <"$T/v/pipe"
"$AQ" -c "$CONF" get pipe/x | cmp - "$T/v/pipe" || fail "pipe/x differs"

step "stat --json of a large value: 5 chunks of 4 MiB or less, each on 2 nodes"
"$AQ" -c "$CONF" stat size/20971520 --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["key"] == "size/20971520" and d["size"] == 20971520, d
assert [c["index"] for c in d["chunks"]] == [0, 1, 2, 3, 4], d
assert all(c["size"] == 4194304 for c in d["chunks"]), d
assert all(len(c["nodes"]) == 2 for c in d["chunks"]), d'

step "overwrite a large value with a small one, then the old parts are gone"
"$AQ" -c "$CONF" put size/4194305 "$T/v/1401"
"$AQ" -c "$CONF" get size/4194305 -o "$T/out/ow"
cmp "$T/v/1401" "$T/out/ow" || fail "overwritten value differs"

step "get -o a device or a FIFO writes into it and leaves it what it was"
# A private null device and a FIFO: the same code path as /dev/null, without risking the host's.
mknod "$T/null" c 1 3
"$AQ" -c "$CONF" get size/4194305 -o "$T/null" || fail "get -o a character device failed"
[ -c "$T/null" ] || fail "get -o replaced a character device with a regular file"
mkfifo "$T/fifo"
cat "$T/fifo" >"$T/out/fifo" &
"$AQ" -c "$CONF" get size/4194305 -o "$T/fifo" || fail "get -o a FIFO failed"
wait $!
[ -p "$T/fifo" ] || fail "get -o replaced a FIFO"
cmp "$T/v/1401" "$T/out/fifo" || fail "the value read through a FIFO differs"
mkdir "$T/adir"
if "$AQ" -c "$CONF" get size/4194305 -o "$T/adir" 2>"$T/err"; then fail "get -o a directory succeeded"; fi
grep -q "is a directory" "$T/err" || fail "get -o a directory: $(cat "$T/err")"
rc=0
"$AQ" -c "$CONF" put k "$T/adir" 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "put of a folder exited $rc, want 1"
grep -qF "is a folder (put -r $T/adir PREFIX stores a folder)" "$T/err" || fail "put of a folder: $(cat "$T/err")"

step "wrong arguments: the usage lines and where the help is, not the whole help"
rc=0
"$AQ" -c "$CONF" get 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "get without a key exited $rc, want 1"
[ "$(head -2 "$T/err" | tail -1)" = "usage: aquifer [-c FILE] get KEY [-o FILE] [--fsync]" ] ||
  fail "no usage line: $(cat "$T/err")"
[ "$(tail -1 "$T/err")" = "Run 'aquifer get --help' for more." ] || fail "no pointer to the help: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -le 5 ] || fail "the whole help on a usage error: $(wc -l <"$T/err") lines"

step "keys with quotes, backslashes and UTF-8 survive ls --json"
KEY='odd/"quoted"\back slash ünï'
printf 'x' | "$AQ" -c "$CONF" put "$KEY" -
"$AQ" -c "$CONF" ls odd/ --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [e["key"] for e in d] == [sys.argv[1]], d
assert d[0]["size"] == 1, d' "$KEY"

step "ls lists every key once, sorted, with total sizes of large values"
"$AQ" -c "$CONF" ls size/ >"$T/ls.out"
cat "$T/ls.out"
printf '%s\n' $SIZES | sed 's|^|size/|' | LC_ALL=C sort >"$T/ls.want"
awk '{print $2}' "$T/ls.out" >"$T/ls.keys"
cmp "$T/ls.want" "$T/ls.keys" || fail "ls size/ lists the wrong keys"
grep -q '^ *20971520  size/20971520$' "$T/ls.out" || fail "ls does not show the 20 MiB total"
[ "$("$AQ" -c "$CONF" ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 9 ] ||
  fail "ls --json does not count 9 keys"

step "rm, then get exits 2 and leaves no -o file"
"$AQ" -c "$CONF" rm size/20971520
set +e
"$AQ" -c "$CONF" get size/20971520 -o "$T/out/gone" 2>"$T/err"
rc=$?
set -e
[ $rc = 2 ] || fail "get after rm exited $rc, not 2"
[ ! -e "$T/out/gone" ] || fail "a failed get left $T/out/gone"
cat "$T/err"
[ -z "$(ls -A "$T/out" | grep aqtmp || true)" ] || fail "a failed get left a temporary file"
set +e
"$AQ" -c "$CONF" rm size/20971520 2>/dev/null
rc=$?
set -e
[ $rc = 2 ] || fail "rm of a missing key exited $rc, not 2"

step "usage errors exit 1"
for args in "" "frobnicate" "put onlykey" "get" "get a b" "ls --bogus" "get k --json" "put k $T/v/1 --min-copies 0" "ls --min-copies 1" "cluster" "cluster sideways"; do
  set +e
  # shellcheck disable=SC2086
  "$AQ" -c "$CONF" $args >/dev/null 2>&1
  rc=$?
  set -e
  [ $rc = 1 ] || fail "'aquifer $args' exited $rc, not 1"
done
set +e
"$AQ" -c "$CONF" get "$(printf 'bad\001key')" >/dev/null 2>"$T/badkey.err"
rc=$?
set -e
[ $rc = 1 ] || fail "a key with a control character exited $rc, not 1"
it_has "control character, 0x01, at byte 4" "$T/badkey.err" || fail "bad key: $(cat "$T/badkey.err")"
# Each broken rule is said, with where: a key one byte too long, and one cut inside a character.
rc=0
"$AQ" -c "$CONF" put "$(printf 'k%.0s' $(seq 256))" "$T/v/1" 2>"$T/longkey.err" || rc=$?
[ $rc = 1 ] && it_has "this one is 256 bytes" "$T/longkey.err" || fail "long key: $rc $(cat "$T/longkey.err")"
rc=0
"$AQ" -c "$CONF" rm "$(printf 'ok\303')" 2>"$T/utf8key.err" || rc=$?
[ $rc = 1 ] && it_has "not valid UTF-8 from byte 3" "$T/utf8key.err" || fail "bad UTF-8 key: $rc $(cat "$T/utf8key.err")"
# The key in front of the sentence is shown with its broken byte as '?', not sent raw to a terminal.
it_has "^aquifer: rm ok?: " "$T/utf8key.err" || fail "bad UTF-8 key shown raw: $(cat -v "$T/utf8key.err")"
"$AQ" --help | it_has 'cluster up' || fail "--help does not list cluster up"
"$AQ" get --help | it_has -- '-o FILE' || fail "get --help does not mention -o"

step "an unreachable cluster exits 3 quickly with a clear message"
read -r -a DEAD <<<"$(it_free_ports 2)"
printf '[cluster]\nname = dead-%s\nrun_dir = %s/deadrun\n\n[node d1]\naddress = 127.0.0.1:%s\n\n[node d2]\naddress = 127.0.0.1:%s\n' \
  "$$" "$T" "${DEAD[0]}" "${DEAD[1]}" >"$T/dead.conf"
start=$(date +%s)
set +e
"$AQ" -c "$T/dead.conf" get some/key 2>"$T/dead.err"
rc=$?
set -e
took=$(($(date +%s) - start))
cat "$T/dead.err"
[ $rc = 3 ] || fail "get from a dead cluster exited $rc, not 3"
[ $took -le 10 ] || fail "get from a dead cluster took ${took}s"
grep -q 'unreachable' "$T/dead.err" || fail "the message does not say the cluster is unreachable"
grep -q 'd1' "$T/dead.err" || fail "the message does not name the nodes"

step "after removing every key, no node holds a chunk (no parts left behind by overwrite or rm)"
"$AQ" -c "$CONF" ls --json | python3 -c 'import json,sys; print("\n".join(e["key"] for e in json.load(sys.stdin)))' |
  while IFS= read -r k; do "$AQ" -c "$CONF" rm "$k"; done
[ "$("$AQ" -c "$CONF" ls | wc -l)" = 0 ] || fail "keys left after removing them all"
"$AQ" -c "$CONF" status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
left = {n["name"]: n["chunks"] for n in d["nodes"]}
assert sum(left.values()) == 0, "chunks left behind: %s" % left'

step "cluster down stops every node"
"$AQ" -c "$CONF" cluster down
for n in n1 n2 n3; do [ ! -e "$T/run/$n.pid" ] || fail "$n.pid left behind"; done
pgrep -f "$T/" >/dev/null && fail "an aquiferd of this test still runs"
set +e
"$AQ" -c "$CONF" status >/dev/null 2>&1
rc=$?
set -e
[ $rc = 3 ] || fail "status of a stopped cluster exited $rc, not 3"
step "all checks passed"
