#!/usr/bin/env bash
# get -r fetches small values (as the listing sizes them) with one MGET per node for many keys;
# put -r reads previous values with one MSTAT per node and stores small values with one MPUT per
# node; each value still checked against its digest on arrival, each put still answered with its
# own write report. 3 nodes:
# - replicas 1, a node of an older build (aquiferd_older: no MSTAT, MGET or MPUT) answers them
#   AQ_ENOMETHOD, and put -r and get -r fall back to a call per key: every file back byte for
#   byte, nothing failed;
# - replicas 2, this build: the same folder back byte for byte;
# - a value whose bytes rotted in its first replica's memory (flip_mem.py) fails its check in the
#   MGET's reply and is fetched on its own, from the intact replica: get -r still byte for byte.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
OLDER=${AQ_TEST_BIN:-$AQ_BUILD/tests}/aquiferd_older
[ -x "$OLDER" ] || it_fail "$OLDER is not built"

# Replicas 1 first: a key whose one replica is the older node has no other copy to fall back on.
it_conf 3 1
it_up

# A folder of small values of many sizes (some past what an MGET takes), an empty one, a large one.
D=$T/src
mkdir -p "$D/s/t"
python3 - "$D" <<'PY'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(15)
for i in range(300):
    size = rnd.choice([1, 17, 200, 4096, 9000, 40000, 65536, 65537, 100000])
    sub = ("", "s/", "s/t/")[i % 3]
    with open(os.path.join(d, f"{sub}f{i:04d}"), "wb") as f:
        f.write(os.urandom(size))
open(os.path.join(d, "zero"), "wb").close()
with open(os.path.join(d, "s/big"), "wb") as f:
    f.write(os.urandom((5 << 20) + 11))
PY

it_log "an older build's node: put -r and get -r carry on with a call per key"
it_stop_node n2
AQD=$OLDER it_start_node n2
it_wait_state n2 up
[ "$(readlink "/proc/$(it_pid n2)/exe")" = "$(readlink -f "$OLDER")" ] || it_fail "n2 is not the older build"
"$AQ" put -r "$D" old/ --json >"$T/put.json" 2>"$T/put.err" ||
  it_fail "put -r with an older node failed: $(cat "$T/put.err")"
[ "$(it_json 'd["stored"], d["failed"]' <"$T/put.json")" = "302 0" ] || it_fail "put -r: $(cat "$T/put.json")"
"$AQ" get -r old/ "$T/old" --json >"$T/get.json" 2>"$T/get.err" ||
  it_fail "get -r with an older node failed: $(cat "$T/get.err")"
[ "$(it_json 'd["wrote"], d["failed"]' <"$T/get.json")" = "302 0" ] || it_fail "get -r: $(cat "$T/get.json")"
it_same_files "$D" "$T/old" || it_fail "get -r with an older node gave other files"
[ -s "$T/get.err" ] && it_fail "get -r with an older node warned: $(cat "$T/get.err")"
# A value of one chunk placed on the older node: the command sends it, and asks for it, with the
# pipe's checksum over every byte (the node never said it takes end-to-end tails, and drops them).
key=$("${AQ_TEST_BIN:-$AQ_BUILD/tests}/aq_place" "$CONF" $(seq -f 'old/one%g' 1 40) |
  awk '$2 == "n2" { print $1; exit }')
[ -n "$key" ] || it_fail "no key of 40 placed on n2"
head -c $((3 << 20)) /dev/urandom >"$T/one"
timeout 20 "$AQ" put "$key" "$T/one" >/dev/null 2>"$T/one.err" ||
  it_fail "put of $key on the older node failed: $(cat "$T/one.err")"
timeout 20 "$AQ" get "$key" -o "$T/one.got" 2>"$T/one.err" ||
  it_fail "get of $key from the older node failed: $(cat "$T/one.err")"
cmp -s "$T/one" "$T/one.got" || it_fail "get of $key from the older node gave other bytes"

it_log "this build again, replicas 2: the same folder through MSTAT, MPUT and MGET"
"$AQ" cluster down >/dev/null
# No scrub: it would heal the rotten copy below before the test could show it was there.
it_conf 3 2 'scrub_rate = 0'
it_up
"$AQ" put -r "$D" new/ >/dev/null 2>"$T/put.err" || it_fail "put -r failed: $(cat "$T/put.err")"
"$AQ" get -r new/ "$T/new" >/dev/null 2>"$T/get.err" || it_fail "get -r failed: $(cat "$T/get.err")"
it_same_files "$D" "$T/new" || it_fail "get -r gave other files"

it_log "a value rotten in its first replica's memory: fetched on its own from the other"
mkdir -p "$T/rot"
for i in $(seq 1 40); do it_rand_file "$T/rot/r$i" 8192; done
"$AQ" put -r "$T/rot" rot/ >/dev/null || it_fail "put -r rot/ failed"
read -r _ first _ < <("$AQ_TEST_BIN/aq_place" "$CONF" rot/r7)
python3 "$HERE/flip_mem.py" "$(it_pid "$first")" "$T/rot/r7" >/dev/null ||
  it_fail "rot/r7 not found in $first's memory"
"$AQ" get -r rot/ "$T/rot.out" >/dev/null 2>"$T/rot.err" ||
  it_fail "get -r with a rotten replica failed: $(cat "$T/rot.err")"
it_same_files "$T/rot" "$T/rot.out" || it_fail "get -r with a rotten replica gave other files"
# The rotten copy is still there: a GET of that replica's own copy alone fails its check.
"$AQ_TEST_BIN/aq_poke" "$CONF" "$first" rot/r7 >"$T/r7.raw" || it_fail "aq_poke $first rot/r7"
cmp -s "$T/r7.raw" "$T/rot/r7" && it_fail "the flip did not take: $first serves intact bytes"
it_log "ok"
