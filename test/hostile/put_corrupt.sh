#!/usr/bin/env bash
# A node stores a PUT's value where the rpc received it (no copy), and still checks it against the
# request's digest: over a real pipe, a 4 MiB PUT with its true digest is stored (status 0, and the
# command reads back 4 MiB), and one whose value was changed after its digest was computed (every
# frame checksum valid) is refused with AQ_ECORRUPT and stores nothing. Replicas 2, so the good one
# is also forwarded and adopted by the second replica (stat counts both copies); then it is
# overwritten and removed, which gives the adopted buffers back, and in a sanitizer build no node
# reports a leak or bad access when stopped.
. "$AQ_SRC/test/integration/lib.sh"
H=${AQ_TEST_BIN}/hostile
[ -x "$H" ] || it_fail "no hostile tool at $H"
it_conf 3 2
it_up
NAME=$(sed -n 's/^name = //p' "$CONF")
N1=$(awk '/^\[node n1\]/{f=1} f && /^address = /{print $3; exit}' "$CONF")

out=$("$H" "$N1" "$NAME" puts)
it_log "$out"
echo "$out" | it_has '^puts: good status 0,' || it_fail "the good PUT was not stored: $out"
echo "$out" | it_has ', corrupt status -10007$' || it_fail "the corrupt PUT was not refused as corrupt: $out"
"$AQ" get hostile/good -o "$T/good" || it_fail "cannot read the good value back"
[ "$(stat -c %s "$T/good")" = 4194304 ] || it_fail "the good value is not 4 MiB"
copies=$("$AQ" stat hostile/good --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["chunks"][0]["nodes"]))')
[ "$copies" = 2 ] || it_fail "the good value has $copies copies, not 2"
if "$AQ" get hostile/bad -o "$T/bad" 2>"$T/bad.err"; then it_fail "the corrupt value was stored"; fi
grep -qi 'not found' "$T/bad.err" || it_fail "get of the refused key: $(cat "$T/bad.err")"
# The adopted buffers are given back when their chunks go: overwritten, then removed.
it_rand_file "$T/next" 5000
"$AQ" put hostile/good "$T/next" >/dev/null || it_fail "cannot overwrite the good value"
"$AQ" rm hostile/good >/dev/null || it_fail "cannot remove the good value"
for n in n1 n2 n3; do kill -0 "$(it_pid $n)" || it_fail "$n died"; done
# A clean stop: in a sanitizer build, a leak or bad access found at exit lands in the node logs.
"$AQ" cluster down >/dev/null 2>&1 || it_fail "cluster down failed"
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/run/*.log; then
  it_fail "a sanitizer report in the node logs above"
fi
it_log "put_corrupt: good stored on 2 replicas, corrupt refused"
