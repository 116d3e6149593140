#!/usr/bin/env bash
# get -o of a large value reserves the file's blocks before fetching any part: into a folder
# without room for it (a 4 MiB tmpfs in a mount namespace of this test's own), it fails at once
# with a sentence saying so, exit 4, and leaves neither the file nor its temporary file behind; into
# a folder with room it writes the value byte for byte. get -r of a folder holding that value into
# the full folder names it once and leaves nothing half-written.
. "$AQ_SRC/test/integration/lib.sh"
[ "$(id -u)" = 0 ] || it_fail "needs root to mount a tmpfs in its own mount namespace"
command -v unshare >/dev/null || it_fail "unshare (util-linux) is needed"
it_conf 3 1
it_up
it_rand_file "$T/v" $((12 << 20))
"$AQ" put big "$T/v" >/dev/null || it_fail "put failed"
mkdir -p "$T/small" "$T/room"
# mount_get SIZE DIR: get big -o DIR/out with a SIZE tmpfs mounted on DIR, privately; prints the
# exit status, then what was left in DIR (the mount goes with the namespace, so list it inside).
mount_get() {
  unshare -m sh -c 'mount -t tmpfs -o size=$1 none "$2" || exit 99
    "$3" get big -o "$2/out" 2>"$4"; echo "rc=$?"
    [ -f "$2/out" ] && cmp -s "$2/out" "$5" && echo same
    ls -A "$2" | sed "s/^/left: /"' sh "$1" "$2" "$AQ" "$T/err" "$T/v"
}
out=$(mount_get 4m "$T/small")
it_log "4 MiB folder: $(echo $out) / $(cat "$T/err")"
echo "$out" | it_has '^rc=99' && it_fail "cannot mount a tmpfs"
echo "$out" | it_has '^rc=4$' || it_fail "get -o into a full folder did not exit 4: $out"
grep -q "no room for 12582912 bytes next to $T/small/out" "$T/err" ||
  it_fail "the error does not say there is no room: $(cat "$T/err")"
echo "$out" | it_has '^left:' && it_fail "get -o left files behind: $out"
out=$(mount_get 64m "$T/room")
it_log "64 MiB folder: $(echo $out)"
echo "$out" | it_has '^rc=0$' || it_fail "get -o into a folder with room failed: $(cat "$T/err")"
echo "$out" | it_has '^same$' || it_fail "get -o wrote other bytes"
[ "$(echo "$out" | grep -c '^left:')" = 1 ] || it_fail "other files than the value were left: $out"

it_log "get -r into a 4 MiB folder: the 12 MiB file named once, nothing half-written left"
mkdir -p "$T/tree/sub" "$T/rfull"
cp "$T/v" "$T/tree/big"
for i in 1 2 3; do echo "small $i" >"$T/tree/sub/s$i"; done
"$AQ" put -r "$T/tree" tr/ >/dev/null || it_fail "put -r failed"
out=$(unshare -m sh -c 'mount -t tmpfs -o size=4m none "$1" || exit 99
  "$2" get -r tr/ "$1/out" 2>"$3"; echo "rc=$?"
  cd "$1/out" && find . -type f | sort | sed "s/^/left: /"' sh "$T/rfull" "$AQ" "$T/err")
it_log "get -r: $(echo $out) / $(head -3 "$T/err")"
echo "$out" | it_has '^rc=99' && it_fail "cannot mount a tmpfs"
echo "$out" | it_has '^rc=4$' || it_fail "get -r into a full folder did not exit 4: $out"
grep -qx "aquifer: get -r: big: cannot write the file: No space left on device" "$T/err" ||
  it_fail "the large file's failure: $(cat "$T/err")"
# Each small file was written or named; nothing else is there, no temporary file either.
echo "$out" | grep '^left:' | grep -vqE '^left: \./sub/s[123]$' && it_fail "other files left: $out"
for i in 1 2 3; do
  echo "$out" | it_has "^left: ./sub/s$i\$" || grep -q "get -r: sub/s$i: " "$T/err" ||
    it_fail "sub/s$i neither written nor named: $out / $(cat "$T/err")"
done
it_log "get_o_full: refused early and cleanly without room, byte for byte with it; get -r named what did not fit"
