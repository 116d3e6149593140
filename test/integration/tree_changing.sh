#!/usr/bin/env bash
# put -r of files rewritten while it reads them: 200 files of 100,000 bytes, each rewritten over
# and over by a writer in the background (truncated, then written 4 KiB at a time, all 'A' or all
# 'B'). Whatever put -r stores under a key must be a state the file was in (all one letter, a whole
# number of 4 KiB pieces or the whole file), and a file caught changing while it was read is named
# ("changed while it was read", exit 4) with the rest carried on. Rounds go on until some file was
# caught so (at most 10): without the check after the read none ever is.
. "$AQ_SRC/test/integration/lib.sh"
it_conf 3 1
it_up
mkdir -p "$T/src"
for i in $(seq 1 200); do head -c 100000 /dev/zero | tr '\0' A >"$T/src/f$i"; done
/usr/bin/python3 - "$T/src" "$T/stop" <<'PY' &
import os, sys, time
d, stop = sys.argv[1], sys.argv[2]
names = [os.path.join(d, "f%d" % i) for i in range(1, 201)]
n = 0
while not os.path.exists(stop):
    piece = (b"B" if n % 2 else b"A") * 4096
    for p in names:
        with open(p, "r+b", buffering=0) as f:
            f.truncate(0)
            for off in range(0, 100000, 4096):
                f.write(piece[: min(4096, 100000 - off)])
    n += 1
PY
writer=$!
IT_CLEANUPS+=("kill $writer 2>/dev/null")
named=0 rounds=0
for r in $(seq 1 10); do
  rc=0
  "$AQ" put -r "$T/src" "c$r/" >"$T/out" 2>"$T/err" || rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 4 ] || it_fail "put -r exited $rc: $(head -3 "$T/err")"
  if [ $rc -eq 4 ]; then
    bad=$(grep -v "changed while it was read" "$T/err" | grep -v "files failed (named above)" | head -3 || true)
    [ -z "$bad" ] || it_fail "a failure other than a changed file: $bad"
    named=$((named + $(grep -c "changed while it was read" "$T/err")))
  fi
  rounds=$((rounds + 1))
  [ $named -gt 0 ] && break
done
touch "$T/stop"
wait $writer || true
mkdir -p "$T/back"
for r in $(seq 1 $rounds); do
  "$AQ" get -r "c$r/" "$T/back/$r" >/dev/null 2>"$T/gerr" || it_fail "get -r c$r/: $(head -3 "$T/gerr")"
done
/usr/bin/python3 - "$T/back" <<'PY' || it_fail "a torn or shortened value was stored"
import os, sys
bad = []
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        v = open(os.path.join(root, f), "rb").read()
        whole = len(v) % 4096 == 0 or len(v) == 100000
        if v != v[:1] * len(v) or v[:1] not in (b"", b"A", b"B") or not whole:
            bad.append("%s: %d bytes, %r..." % (os.path.join(root, f), len(v), v[:8]))
print("\n".join(bad[:5]))
sys.exit(1 if bad else 0)
PY
it_log "$rounds rounds of put -r over files being rewritten: every stored value a state of its file; $named named as changed"
[ $named -gt 0 ] || it_fail "no file was named as changed while it was read in $rounds rounds"
