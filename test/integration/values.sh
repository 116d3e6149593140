#!/usr/bin/env bash
# 3 nodes, replicas=2: 200 random values from 0 B to 20 MiB put and got back byte-identical, and the
# digest `aquifer stat` reports equals `xxhsum -H2` of the file.
. "$(dirname "$0")/lib.sh"

it_conf 3 2
it_up
mkdir -p "$T/v" "$T/out"
# Sizes: log-uniform from 1 B to 20 MiB (plus the edges 0, 4 MiB, 4 MiB+1 and 20 MiB), so every size
# class is covered without moving gigabytes through the sanitizer build.
python3 - "$T/v" <<'PY'
import math, os, random, sys
random.seed(4242)
d = sys.argv[1]
sizes = [0, 1, 1400, 1401, 4 << 20, (4 << 20) + 1, 20 << 20]
while len(sizes) < 200:
    sizes.append(int(math.exp(random.uniform(0, math.log(20 << 20)))))
for i, s in enumerate(sizes):
    with open(os.path.join(d, f"{i:03d}"), "wb") as f:
        f.write(os.urandom(s))
PY
it_log "putting 200 values ($(du -sh "$T/v" | cut -f1)), four at a time"
ls "$T/v" | xargs -P 4 -I{} "$AQ" put "values/{}" "$T/v/{}"
it_log "getting them back"
ls "$T/v" | xargs -P 4 -I{} "$AQ" get "values/{}" -o "$T/out/{}"
bad=0
for f in "$T"/v/*; do
  b=$(basename "$f")
  cmp -s "$f" "$T/out/$b" || { echo "values/$b differs"; bad=$((bad + 1)); }
done
[ $bad -eq 0 ] || it_fail "$bad values differ"
it_log "all 200 values read back identical"
checked=0
for b in 000 001 005 006 007 050 100 199; do
  want=$(xxhsum -H2 "$T/v/$b" | cut -d' ' -f1)
  got=$("$AQ" stat "values/$b" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
  [ "$want" = "$got" ] || it_fail "values/$b: stat digest $got, xxhsum -H2 $want"
  checked=$((checked + 1))
done
it_log "stat digests equal xxhsum -H2 for $checked values"
n=$("$AQ" ls values/ --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 200 ] || it_fail "ls values/ lists $n keys, want 200"
echo "values: 200 put, 200 identical, ls lists 200"
