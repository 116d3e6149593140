#!/usr/bin/env bash
# put -r and get -r (issue 15): a folder stored under a prefix and written back byte for byte
# (nested folders, empty folders and files, a 0-byte and a multi-chunk file, names with spaces and
# UTF-8); keys that would escape the folder refused and named while the rest are written; a file
# that vanishes or turns into a FIFO midway named while the rest are stored; files get -r cannot
# create (a folder in the way, a file where a folder should be) named while the rest are written;
# get -o of a 100 MiB value byte for byte.
. "$(dirname "$0")/lib.sh"

it_conf 3 2
it_up

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
same_files() { # DIR1 DIR2: the same regular files with the same bytes
  (cd "$1" && find . -type f | sort) >"$T/l1"
  (cd "$2" && find . -type f | sort) >"$T/l2"
  cmp -s "$T/l1" "$T/l2" || { diff "$T/l1" "$T/l2" | head; return 1; }
  while IFS= read -r f; do cmp -s "$1/$f" "$2/$f" || { echo "differs: $f"; return 1; }; done <"$T/l1"
}

it_log "a folder of nested, empty, spaced and UTF-8 names"
D=$T/src
mkdir -p "$D/a/b/c" "$D/empty dir/inner" "$D/dé/ünï 文件" "$D/many"
: >"$D/zero"
it_rand_file "$D/a/b/c/deep.bin" 1000
it_rand_file "$D/with space.txt" 77
it_rand_file "$D/dé/ünï 文件/日本.dat" 4096
it_rand_file "$D/a/big" $(((9 << 20) + 3)) # three chunks
for i in $(seq 1 200); do it_rand_file "$D/many/f$i" $((i * 37)); done
# More folders in flight at once than get -r keeps open: some files get a folder fd of their own.
/usr/bin/python3 -c '
import os, sys
for i in range(100):
    p = os.path.join(sys.argv[1], "dirs", "d%03d" % i, "x" if i % 2 else "")
    os.makedirs(p, exist_ok=True)
    for j in range(2):
        open(os.path.join(p, "f%d" % j), "wb").write(os.urandom(50 + 7 * i + j))' "$D"
ln -s "$D/with space.txt" "$D/a/link" # skipped: not a regular file
mkfifo "$D/a/fifo"                    # skipped, counted too
want=$(find "$D" -type f | wc -l)

"$AQ" put -r "$D" "tr/" --json >"$T/put.json" 2>"$T/put.err" || it_fail "put -r failed: $(cat "$T/put.err")"
[ "$(json 'd["stored"]' <"$T/put.json")" = "$want" ] || it_fail "put -r stored: $(cat "$T/put.json")"
[ "$(json 'd["failed"]' <"$T/put.json")" = 0 ] || it_fail "put -r failed some: $(cat "$T/put.json")"
"$AQ" ls tr/ | it_has "tr/a/link" && it_fail "put -r followed a symbolic link"
"$AQ" ls tr/ | it_has "tr/a/fifo" && it_fail "put -r stored a FIFO"
[ "$(json 'd["skipped"]' <"$T/put.json")" = 2 ] || it_fail "put -r skipped: $(cat "$T/put.json")"
# The same folder again, as a person reads it: the skipped entries are said, not hidden.
"$AQ" put -r "$D" "tr/" >"$T/put.txt" 2>"$T/put.err" || it_fail "put -r again: $(cat "$T/put.err")"
it_has "^stored $want of $want files (.*), fewest copies 2 of 2; 2 skipped (links, devices, FIFOs, sockets)$" \
  <"$T/put.txt" || it_fail "put -r summary: $(cat "$T/put.txt")"
"$AQ" get "tr/dé/ünï 文件/日本.dat" | cmp -s - "$D/dé/ünï 文件/日本.dat" || it_fail "UTF-8 key wrong"

"$AQ" get -r "tr/" "$T/out" --json >"$T/get.json" 2>"$T/get.err" || it_fail "get -r failed: $(cat "$T/get.err")"
[ "$(json 'd["wrote"]' <"$T/get.json")" = "$want" ] || it_fail "get -r wrote: $(cat "$T/get.json")"
same_files "$D" "$T/out" || it_fail "get -r gave other files than were put"
[ -f "$T/out/zero" ] && [ ! -s "$T/out/zero" ] || it_fail "the 0-byte file did not come back empty"
ls -A "$T/out/a" | it_has aqtmp && it_fail "a temporary file was left behind"
it_log "put -r / get -r: $want files identical"

it_log "a progress line on a terminal, none without one"
grep -q "of $want files" "$T/put.err" && it_fail "put -r drew progress without a terminal"
script -qec "'$AQ' put -r '$D' tp/" /dev/null >"$T/tty.out" 2>&1 || it_fail "put -r on a terminal failed"
tr '\r' '\n' <"$T/tty.out" | it_has "^put -r: $want of $want files" ||
  it_fail "no progress line on a terminal: $(tr '\r' '\n' <"$T/tty.out" | tail -3)"

it_log "a second get -r over the first replaces the files"
it_rand_file "$T/new" 500
"$AQ" put "tr/with space.txt" "$T/new" >/dev/null
"$AQ" get -r "tr/" "$T/out" --fsync >/dev/null || it_fail "get -r --fsync over an existing folder failed"
same_files "$D/many" "$T/out/many" || it_fail "get -r --fsync gave other files"
cmp -s "$T/new" "$T/out/with space.txt" || it_fail "get -r did not replace a file"

it_log "keys that would escape the folder are refused and named; the rest are written"
mkdir -p "$T/esc" "$T/outside"
ln -s "$T/outside" "$T/esc/link"
for k in "es/../evil" "es//abs" "es/a//b" "es/./dot" "es/" "es/link/x" "es/ok"; do
  "$AQ" put "$k" "$T/new" >/dev/null || it_fail "put $k"
done
rc=0
"$AQ" get -r "es/" "$T/esc" --json >"$T/esc.json" 2>"$T/esc.err" || rc=$?
[ $rc = 4 ] || it_fail "get -r with escaping keys exited $rc, want 4"
cmp -s "$T/new" "$T/esc/ok" || it_fail "get -r did not carry on to es/ok"
for n in "../evil" "/abs" "a//b" "./dot" "link/x"; do
  grep -qF "get -r: $n:" "$T/esc.err" || it_fail "refusal of $n not named: $(cat "$T/esc.err")"
done
[ "$(json 'd["failed"]' <"$T/esc.json")" = 6 ] || it_fail "esc summary: $(cat "$T/esc.json")"
[ -e "$T/evil" ] || [ -e "/abs" ] || [ -e "$T/outside/x" ] && it_fail "get -r wrote outside the folder"
[ -e "$T/esc/a" ] && it_fail "get -r created a folder for a refused key"

it_log "a file that vanishes midway is named; the rest are stored"
seen=0
for try in 1 2 3 4 5; do
  V=$T/van$try
  mkdir -p "$V"
  /usr/bin/python3 -c '
import os, sys
for i in range(1, 1501):
    open(os.path.join(sys.argv[1], "f%04d" % i), "wb").write(os.urandom(3000))' "$V"
  "$AQ" put -r "$V" "van$try/" --json >"$T/van.json" 2>"$T/van.err" &
  pid=$!
  # Remove files from the end of the sorted order while the put runs.
  for i in $(seq -w 1500 -1 1000); do rm -f "$V/f$i"; done
  rc=0
  wait $pid || rc=$?
  if grep -q "vanished" "$T/van.err"; then
    [ $rc = 4 ] || it_fail "put -r with a vanished file exited $rc, want 4"
    n=$(json 'd["failed"]' <"$T/van.json")
    [ "$n" = "$(grep -c vanished "$T/van.err")" ] || it_fail "vanished count $n: $(head "$T/van.err")"
    grep -vq "vanished\|files failed" "$T/van.err" && it_fail "other failures: $(cat "$T/van.err")"
    # Every file still there was stored, byte for byte.
    "$AQ" get -r "van$try/" "$T/vanout$try" >/dev/null
    for f in "$V"/*; do cmp -s "$f" "$T/vanout$try/$(basename "$f")" || it_fail "$f not stored"; done
    seen=1
    break
  fi
  [ $rc = 0 ] || it_fail "put -r exited $rc without a vanished file: $(cat "$T/van.err")"
done
[ $seen = 1 ] || it_fail "no file vanished between the listing and its read in 5 tries"

it_log "a folder swapped for a symbolic link after the walk is refused, not followed"
seen=0
for try in 1 2 3 4 5; do
  S=$T/swap$try
  mkdir -p "$S/a" "$T/outside$try"
  /usr/bin/python3 -c '
import os, sys
for d in sys.argv[1:]:
    for i in range(1500):
        open(os.path.join(d, "f%04d" % i), "wb").write(os.urandom(3000))' "$S/a" "$T/outside$try"
  "$AQ" put -r "$S" "swap$try/" --json >"$T/swap.json" 2>"$T/swap.err" &
  pid=$!
  # Once the walk is over (a first file stored), the files not yet opened lie behind a link to
  # a folder outside DIR with the same names.
  for ((i = 0; i < 400; i++)); do
    [ -n "$("$AQ" ls "swap$try/" 2>/dev/null | head -1)" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.02
  done
  mv "$S/a" "$S/a.real" && ln -s "$T/outside$try" "$S/a"
  rc=0
  wait $pid || rc=$?
  if grep -q "symbolic link" "$T/swap.err"; then
    [ $rc = 4 ] || it_fail "put -r with a swapped folder exited $rc, want 4"
    n=$(json 'd["failed"]' <"$T/swap.json")
    # Between the mv and the ln a file is missing: named as vanished, which is true too.
    [ "$n" = "$(grep -c "symbolic link\|vanished" "$T/swap.err")" ] || it_fail "swap count $n: $(head "$T/swap.err")"
    grep -vq "symbolic link\|vanished\|files failed" "$T/swap.err" && it_fail "other failures: $(head "$T/swap.err")"
    # Nothing stored came from outside DIR.
    "$AQ" get -r "swap$try/" "$T/swapout$try" >/dev/null || it_fail "get -r swap$try/"
    /usr/bin/python3 -c '
import os, sys
got, src = sys.argv[1], sys.argv[2]
bad = [f for f in os.listdir(got) if open(os.path.join(got, f), "rb").read() != open(os.path.join(src, f), "rb").read()]
sys.exit(bad[:3] if bad else 0)' "$T/swapout$try/a" "$S/a.real" || it_fail "a stored file did not come from DIR"
    seen=1
    break
  fi
  grep -vq "vanished\|files failed" "$T/swap.err" && it_fail "put -r failed otherwise: $(head "$T/swap.err")"
done
[ $seen = 1 ] || it_fail "no file was opened through the swapped link in 5 tries (or one was followed)"

it_log "files removed or replaced by a FIFO midway are named; the rest are stored"
seen=0
for try in 1 2 3 4 5; do
  U=$T/unr$try
  mkdir -p "$U"
  /usr/bin/python3 -c '
import os, sys
for i in range(1500):
    open(os.path.join(sys.argv[1], "f%04d" % i), "wb").write(os.urandom(3000))' "$U"
  "$AQ" put -r "$U" "unr$try/" --json >"$T/unr.json" 2>"$T/unr.err" &
  pid=$!
  # From the end of the sorted order: every other file removed, the others made FIFOs (not
  # readable as a file, and a read of one would block).
  for ((i = 1499; i >= 1000; i--)); do
    f=$(printf '%s/f%04d' "$U" $i)
    rm -f "$f"
    ((i % 2)) && mkfifo "$f"
  done
  rc=0
  wait $pid || rc=$?
  if grep -q "no longer a regular file" "$T/unr.err" && grep -q vanished "$T/unr.err"; then
    [ $rc = 4 ] || it_fail "put -r with unreadable files exited $rc, want 4"
    n=$(json 'd["failed"]' <"$T/unr.json")
    [ "$n" = "$(grep -c "vanished\|no longer a regular file" "$T/unr.err")" ] ||
      it_fail "unreadable count $n: $(head "$T/unr.err")"
    grep -vq "vanished\|no longer a regular file\|files failed" "$T/unr.err" &&
      it_fail "other failures: $(head "$T/unr.err")"
    [ "$(json 'd["stored"] + d["failed"] - d["files"]' <"$T/unr.json")" = 0 ] || it_fail "unr summary: $(cat "$T/unr.json")"
    # Every regular file still there was stored, byte for byte.
    "$AQ" get -r "unr$try/" "$T/unrout$try" >/dev/null || it_fail "get -r unr$try/"
    for f in "$U"/*; do
      [ -f "$f" ] || continue # a FIFO now
      cmp -s "$f" "$T/unrout$try/$(basename "$f")" || it_fail "$f not stored"
    done
    seen=1
    break
  fi
  if [ $rc != 0 ] && grep -vq "vanished\|no longer a regular file\|files failed" "$T/unr.err"; then
    it_fail "put -r exited $rc: $(head "$T/unr.err")"
  fi
  rm -rf "$U"
done
[ $seen = 1 ] || it_fail "no file was removed and none replaced between the listing and its read in 5 tries"

it_log "get -r: a file whose name a folder holds, or whose folder is a file, is named; the rest written"
G=$T/gw
mkdir -p "$G/m"
for i in $(seq 1 300); do it_rand_file "$G/m/f$i" $((i * 13)); done
it_rand_file "$G/a" 100
it_rand_file "$G/big" $(((5 << 20) + 11)) # two chunks: written by the batch itself
it_rand_file "$G/z" 10
mkdir -p "$G/c"
it_rand_file "$G/c/d" 50
"$AQ" put -r "$G" gw/ >/dev/null || it_fail "put -r gw/"
O=$T/gwout
mkdir -p "$O/a/keep" "$O/big/keep"
: >"$O/c"
rc=0
"$AQ" get -r gw/ "$O" --json >"$T/gw.json" 2>"$T/gw.err" || rc=$?
[ $rc = 4 ] || it_fail "get -r with folders in the way exited $rc, want 4: $(cat "$T/gw.err")"
[ "$(json 'd["failed"]' <"$T/gw.json")" = 3 ] || it_fail "gw summary: $(cat "$T/gw.json")"
[ "$(json 'd["wrote"]' <"$T/gw.json")" = 301 ] || it_fail "gw summary: $(cat "$T/gw.json")"
for n in a big c/d; do
  grep -qF "get -r: $n:" "$T/gw.err" || it_fail "$n not named: $(cat "$T/gw.err")"
done
grep -F "get -r: c/d:" "$T/gw.err" | it_has "cannot create its folder" || it_fail "c/d: $(cat "$T/gw.err")"
same_files "$G/m" "$O/m" || it_fail "get -r did not write the rest"
cmp -s "$G/z" "$O/z" || it_fail "get -r did not write z"
[ -d "$O/a/keep" ] && [ -d "$O/big/keep" ] && [ -f "$O/c" ] && [ ! -s "$O/c" ] ||
  it_fail "get -r changed what was in the way"
find "$O" -name '.aqtmp*' | it_has . && it_fail "temporary files left: $(find "$O" -name '.aqtmp*' | head -3)"

it_log "put -r of a missing folder fails and says so"
if "$AQ" put -r "$T/nope" "x/" 2>"$T/err"; then it_fail "put -r of a missing folder succeeded"; fi
grep -q "nope" "$T/err" || it_fail "missing folder not named: $(cat "$T/err")"

it_log "get -o of a 100 MiB value, byte for byte"
it_rand_file "$T/big" $((100 << 20))
"$AQ" put big "$T/big" >/dev/null || it_fail "put big"
"$AQ" get big -o "$T/big.out" --fsync || it_fail "get -o big"
cmp "$T/big" "$T/big.out" || it_fail "get -o of 100 MiB differs"
"$AQ" get big | cmp -s - "$T/big" || it_fail "get of 100 MiB to stdout differs"
# Parts land at their offsets in a regular file, but a file opened for appending takes them in order.
echo head >"$T/app"
"$AQ" get big >>"$T/app" || it_fail "get >> a file"
[ "$(head -c 5 "$T/app")" = head ] && tail -c +6 "$T/app" | cmp -s - "$T/big" || it_fail "get >> a file differs"
it_log "with a node down, put -r --min-copies 2 fails the files that got one copy, and only those"
it_stop_node n3
rc=0
"$AQ" put -r "$D/many" mc/ --min-copies 2 --json >"$T/mc.json" 2>"$T/mc.err" || rc=$?
[ $rc = 4 ] || it_fail "put -r --min-copies 2 with n3 down exited $rc, want 4"
nf=$(json 'd["failed"]' <"$T/mc.json")
ns=$(json 'd["stored"]' <"$T/mc.json")
[ "$nf" -gt 0 ] && [ "$ns" -gt 0 ] && [ $((nf + ns)) = 200 ] || it_fail "min-copies summary: $(cat "$T/mc.json")"
[ "$(grep -c "fewer than min_copies 2" "$T/mc.err")" = "$nf" ] || it_fail "min-copies failures: $(head -3 "$T/mc.err")"
echo "tree: put -r/get -r, escapes refused, vanished file named, 100 MiB get -o identical"
