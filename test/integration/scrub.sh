#!/usr/bin/env bash
# Bit rot is found and healed. 3 nodes, replicas 2, data_dirs, no periodic repair pass (so the
# healing is the scrub's). A byte is flipped in one replica's chunk file, and another in one
# replica's copy in memory (through /proc/PID/mem, from outside the node: flip_mem.py); the scrub
# finds each, drops the copy and fetches it again from the other replica, so that node again holds
# the right bytes, in memory and on disk.
. "$(dirname "$0")/lib.sh"
POKE=${AQ_TEST_BIN:-$AQ_BUILD/tests}/aq_poke
HERE=$(cd "$(dirname "$0")" && pwd)

it_conf 3 2 $'repair_interval = 1h\nscrub_rate = 16MiB/s' --persist
it_up
mkdir -p "$T/v"
it_rand_file "$T/v/f" 200000
it_rand_file "$T/v/m" 300000
"$AQ" put sc/f "$T/v/f"
"$AQ" put sc/m "$T/v/m"
holder() { "$AQ" stat "$1" --json | python3 -c '
import json, sys
print(sorted(json.load(sys.stdin)["chunks"][0]["nodes"])[0])'; }
# same NODE KEY FILE: NODE's own copy of KEY is FILE's bytes.
same() { "$POKE" "$CONF" "$1" "$2" >"$T/one" && cmp -s "$T/one" "$3"; }
# wait_log NODE PATTERN: NODE's log shows PATTERN within 30 s.
wait_log() {
  local i
  for i in $(seq 1 150); do grep -q "$2" "$T/run/$1.log" && return 0; sleep 0.2; done
  it_fail "$1's log never showed: $2"
}

X=$(holder sc/f)
it_log "flip a byte in $X's file of sc/f"
file=$(python3 - "$T/data/$X" "$T/v/f" <<'PY'
import os, sys
d, v = sys.argv[1], open(sys.argv[2], "rb").read()
for n in os.listdir(d):
    p = os.path.join(d, n)
    if os.path.isfile(p) and v[:4096] in open(p, "rb").read():
        print(p)
PY
)
[ -n "$file" ] || it_fail "no file of sc/f in $X's data_dir"
python3 - "$file" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) - 5000] ^= 0x04
open(p, "wb").write(b)
PY
wait_log "$X" "scrub: sc/f is damaged (its file"
wait_log "$X" "scrub: sc/f restored from"
same "$X" sc/f "$T/v/f" || it_fail "$X does not hold sc/f's right bytes after healing"
cmp -s <(tail -c 200000 "$file") "$T/v/f" || it_fail "$X's file of sc/f is not right after healing"
it_log "$X found its damaged file and fetched sc/f again"

Y=$(holder sc/m)
it_log "flip a byte in $Y's memory copy of sc/m"
n=$(python3 "$HERE/flip_mem.py" "$(it_pid "$Y")" "$T/v/m") || it_fail "sc/m not found in $Y's memory"
it_log "flipped $n copies"
wait_log "$Y" "scrub: sc/m is damaged (its bytes in memory"
wait_log "$Y" "scrub: sc/m restored from"
same "$Y" sc/m "$T/v/m" || it_fail "$Y does not hold sc/m's right bytes after healing"
"$AQ" get sc/m -o "$T/got" && cmp -s "$T/got" "$T/v/m" || it_fail "get sc/m is wrong"
"$AQ" get sc/f -o "$T/got" && cmp -s "$T/got" "$T/v/f" || it_fail "get sc/f is wrong"
it_log "$Y found its damaged memory copy and fetched sc/m again"
