#!/usr/bin/env bash
# put -r and get -r (issue 15): a folder stored under a prefix and written back byte for byte
# (nested folders, empty folders and files, a 0-byte and a multi-chunk file, names with spaces and
# UTF-8); keys that would escape the folder refused and named while the rest are written; a file
# that vanishes or turns into a FIFO midway named while the rest are stored (the folder changed at a
# fixed point of the put, stop_at.py); keys removed during get -r named as such; files get -r cannot
# create (a folder in the way, a file where a folder should be) named while the rest are written;
# get -o of a 100 MiB value byte for byte.
. "$(dirname "$0")/lib.sh"

it_conf 3 2
it_up

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
[ "$(it_json 'd["stored"]' <"$T/put.json")" = "$want" ] || it_fail "put -r stored: $(cat "$T/put.json")"
[ "$(it_json 'd["failed"]' <"$T/put.json")" = 0 ] || it_fail "put -r failed some: $(cat "$T/put.json")"
"$AQ" ls tr/ | it_has "tr/a/link" && it_fail "put -r followed a symbolic link"
"$AQ" ls tr/ | it_has "tr/a/fifo" && it_fail "put -r stored a FIFO"
[ "$(it_json 'd["skipped"]' <"$T/put.json")" = 2 ] || it_fail "put -r skipped: $(cat "$T/put.json")"
# The same folder again, as a person reads it: the skipped entries are said, not hidden.
"$AQ" put -r "$D" "tr/" >"$T/put.txt" 2>"$T/put.err" || it_fail "put -r again: $(cat "$T/put.err")"
it_has "^stored $want of $want files (.*), fewest copies 2 of 2; 2 skipped (links, devices, FIFOs, sockets)$" \
  <"$T/put.txt" || it_fail "put -r summary: $(cat "$T/put.txt")"
"$AQ" get "tr/dé/ünï 文件/日本.dat" | cmp -s - "$D/dé/ünï 文件/日本.dat" || it_fail "UTF-8 key wrong"

"$AQ" get -r "tr/" "$T/out" --json >"$T/get.json" 2>"$T/get.err" || it_fail "get -r failed: $(cat "$T/get.err")"
[ "$(it_json 'd["wrote"]' <"$T/get.json")" = "$want" ] || it_fail "get -r wrote: $(cat "$T/get.json")"
it_same_files "$D" "$T/out" || it_fail "get -r gave other files than were put"
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
it_same_files "$D/many" "$T/out/many" || it_fail "get -r --fsync gave other files"
cmp -s "$T/new" "$T/out/with space.txt" || it_fail "get -r did not replace a file"

it_log "keys that would escape the folder are refused and named; the rest are written"
mkdir -p "$T/esc" "$T/outside"
ln -s "$T/outside" "$T/esc/link"
for k in "es/../evil" "es//abs" "es/a//b" "es/./dot" "es/" "es/dir/" "es/link/x" "es/ok"; do
  "$AQ" put "$k" "$T/new" >/dev/null || it_fail "put $k"
done
rc=0
"$AQ" get -r "es/" "$T/esc" --json >"$T/esc.json" 2>"$T/esc.err" || rc=$?
[ $rc = 4 ] || it_fail "get -r with escaping keys exited $rc, want 4"
cmp -s "$T/new" "$T/esc/ok" || it_fail "get -r did not carry on to es/ok"
# A refused key is named by the key (it names no file); one whose folder is a link, by its path.
for n in "es/../evil" "es//abs" "es/a//b" "es/./dot" "es/" "es/dir/" "link/x"; do
  grep -qF "get -r: $n:" "$T/esc.err" || it_fail "refusal of $n not named: $(cat "$T/esc.err")"
done
grep -qF 'get -r: es/dir/: the key ends with "/": it names a folder, not a file' "$T/esc.err" ||
  it_fail "a key ending in / not refused as such: $(cat "$T/esc.err")"
rc=0
"$AQ" get -r "es" "$T/esc2" 2>"$T/esc2.err" >/dev/null || rc=$?
[ $rc = 4 ] || it_fail "get -r es exited $rc, want 4"
grep -qF 'get -r: es/ok: the key would be an absolute path (a PREFIX ending in "/" drops it)' "$T/esc2.err" ||
  it_fail "no hint for a prefix without its /: $(cat "$T/esc2.err")"
[ "$(it_json 'd["failed"]' <"$T/esc.json")" = 7 ] || it_fail "esc summary: $(cat "$T/esc.json")"
[ -e "$T/evil" ] || [ -e "/abs" ] || [ -e "$T/outside/x" ] && it_fail "get -r wrote outside the folder"
[ -e "$T/esc/a" ] || [ -e "$T/esc/dir" ] && it_fail "get -r created a folder for a refused key"

# The next three change a folder while put -r reads it, at a fixed point: stop_at.py stops the put
# (SIGSTOP) once it has opened 20 of the folder's 3000 files (so its walk is over), changes the
# folder, then lets it go on. Files f1500 on are changed; the put reads at most a few hundred files
# ahead of its opens, so a stop after more than 1000 opens is tried again.
mk3000() { # DIR...: 3000 files f0000..f2999 of 3000 random bytes in each
  /usr/bin/python3 -c '
import os, sys
for d in sys.argv[1:]:
    os.makedirs(d, exist_ok=True)
    for i in range(3000):
        open(os.path.join(d, "f%04d" % i), "wb").write(os.urandom(3000))' "$@"
}
at_point() { # SNIPPET OUT DIR NAME [WATCH]: put -r DIR NAME$try/ stopped at the point (20 files
  # of WATCH, else DIR, opened), SNIPPET run; sets rc, and P to the prefix of the try that counted
  local then=$1 out=$2 dir=$3 watch=${5:-$3} try
  for try in 1 2 3 4 5; do
    rc=0
    P=$4$try/
    /usr/bin/python3 "$(dirname "$0")/stop_at.py" --watch "$watch" --opens 20 --limit 1000 \
      --then "$then" -- "$AQ" put -r "$dir" "$P" --json >"$out" 2>"$T/at.err" || rc=$?
    [ $rc = 100 ] || break
    it_log "the put opened over 1000 files before it stopped; again"
  done
  [ $rc != 100 ] || it_fail "put -r never stopped before its 1000th open in 5 tries"
  [ $rc -lt 100 ] || it_fail "stop_at.py failed ($rc): $(head -3 "$T/at.err")"
}
same_as() { # GOT-DIR SRC-DIR: every file under GOT has the bytes of its name under SRC
  /usr/bin/python3 -c '
import os, sys
got, src = sys.argv[1], sys.argv[2]
bad = [f for f in os.listdir(got) if open(os.path.join(got, f), "rb").read() != open(os.path.join(src, f), "rb").read()]
sys.exit(bad[:3] if bad else 0)' "$1" "$2"
}

it_log "files that vanish midway are named; the rest are stored"
export V=$T/van
mk3000 "$V"
at_point 'rm -f "$V"/f1[5-9]?? "$V"/f2???' "$T/van.json" "$V" van
[ $rc = 4 ] || it_fail "put -r with vanished files exited $rc, want 4: $(head -3 "$T/at.err")"
[ "$(it_json 'd["failed"], d["stored"], d["files"]' <"$T/van.json")" = "1500 1500 3000" ] ||
  it_fail "vanished summary: $(head -c 300 "$T/van.json")"
[ "$(grep -c "^aquifer: put -r: f[12][0-9]*: .*vanished" "$T/at.err")" = 1500 ] ||
  it_fail "vanished files not named: $(head -3 "$T/at.err")"
grep -v "vanished\|files failed" "$T/at.err" | it_has . && it_fail "other failures: $(head -3 "$T/at.err")"
"$AQ" get -r "$P" "$T/vanout" >/dev/null || it_fail "get -r $P"
[ "$(ls "$T/vanout" | wc -l)" = 1500 ] || it_fail "get -r $P wrote $(ls "$T/vanout" | wc -l) files"
same_as "$T/vanout" "$V" || it_fail "a file still there was not stored as it is"

it_log "a folder swapped for a symbolic link after the walk is refused, not followed"
export S=$T/swap O=$T/outside
mk3000 "$S/a" "$O"
at_point 'mv "$S/a" "$S/a.real" && ln -s "$O" "$S/a"' "$T/swap.json" "$S" swap "$S/a"
[ $rc = 4 ] || it_fail "put -r with a swapped folder exited $rc, want 4: $(head -3 "$T/at.err")"
n=$(it_json 'd["failed"]' <"$T/swap.json")
# Every file from f1500 on is opened after the swap; some before it may be too.
[ "$n" -ge 1500 ] && [ "$(it_json 'd["stored"] + d["failed"]' <"$T/swap.json")" = 3000 ] ||
  it_fail "swap summary: $(head -c 300 "$T/swap.json")"
[ "$(grep -c "^aquifer: put -r: a/f[0-9]*: .*symbolic link" "$T/at.err")" = "$n" ] ||
  it_fail "swap failures not named: $(head -3 "$T/at.err")"
grep -v "symbolic link\|files failed" "$T/at.err" | it_has . && it_fail "other failures: $(head -3 "$T/at.err")"
"$AQ" get -r "$P" "$T/swapout" >/dev/null || it_fail "get -r $P"
[ "$(ls "$T/swapout/a" | wc -l)" = $((3000 - n)) ] || it_fail "get -r $P wrote other files"
same_as "$T/swapout/a" "$S/a.real" || it_fail "a stored file did not come from DIR"

it_log "files removed or replaced by a FIFO midway are named; the rest are stored"
export U=$T/unr
mk3000 "$U"
# From f1500 on, every other file removed, the others made FIFOs (not a file, and a read of one
# would block).
at_point '/usr/bin/python3 -c "
import os
for i in range(1500, 3000):
    f = os.path.join(os.environ[\"U\"], \"f%04d\" % i)
    os.remove(f)
    if i % 2:
        os.mkfifo(f)"' \
  "$T/unr.json" "$U" unr
[ $rc = 4 ] || it_fail "put -r with unreadable files exited $rc, want 4: $(head -3 "$T/at.err")"
[ "$(it_json 'd["failed"], d["stored"], d["files"]' <"$T/unr.json")" = "1500 1500 3000" ] ||
  it_fail "unreadable summary: $(head -c 300 "$T/unr.json")"
[ "$(grep -c "vanished" "$T/at.err")" = 750 ] || it_fail "removed files: $(head -3 "$T/at.err")"
[ "$(grep -c "no longer a regular file" "$T/at.err")" = 750 ] || it_fail "FIFOs: $(head -3 "$T/at.err")"
"$AQ" get -r "$P" "$T/unrout" >/dev/null || it_fail "get -r $P"
[ "$(ls "$T/unrout" | wc -l)" = 1500 ] || it_fail "get -r $P wrote $(ls "$T/unrout" | wc -l) files"
same_as "$T/unrout" "$U" || it_fail "a regular file still there was not stored as it is"

it_log "keys removed while get -r runs are named as removed; the rest are written"
mk3000 "$T/gone"
"$AQ" put -r "$T/gone" gone/ >/dev/null || it_fail "put -r gone/"
mkdir -p "$T/goneout"
rc=0
for try in 1 2 3 4 5; do
  rc=0
  rm -rf "$T/goneout"/*
  # Stopped once it has created 20 files, get -r meets ten keys removed after its listing.
  /usr/bin/python3 "$(dirname "$0")/stop_at.py" --watch "$T/goneout" --opens 20 --limit 1000 \
    --then "for i in 0 1 2 3 4 5 6 7 8 9; do '$AQ' rm gone/f299\$i >/dev/null || exit 1; done" \
    -- "$AQ" get -r gone/ "$T/goneout" --json >"$T/gone.json" 2>"$T/gone.err" || rc=$?
  [ $rc = 100 ] || break
done
[ $rc = 4 ] || it_fail "get -r with removed keys exited $rc, want 4: $(head -3 "$T/gone.err")"
[ "$(grep -c "^aquifer: get -r: f299[0-9]: removed since the listing: not found" "$T/gone.err")" = 10 ] ||
  it_fail "removed keys not named so: $(head -3 "$T/gone.err")"
[ "$(it_json 'd["wrote"], d["failed"]' <"$T/gone.json")" = "2990 10" ] || it_fail "gone summary: $(head -c 300 "$T/gone.json")"
[ "$(ls "$T/goneout" | wc -l)" = 2990 ] || it_fail "get -r wrote $(ls "$T/goneout" | wc -l) files"

it_log "get -r killed midway leaves no temporary file behind"
# A value of ten chunks (first in key order) is still being written when the kill comes: its
# file has no name until it is whole (O_TMPFILE), where a named temporary file would stay.
it_rand_file "$T/gone/big" $((40 << 20))
"$AQ" put gone/big "$T/gone/big" >/dev/null || it_fail "put gone/big"
mkdir -p "$T/killout"
rc=0
/usr/bin/python3 "$(dirname "$0")/stop_at.py" --watch "$T/killout" --opens 20 --limit 2999 \
  --then 'kill -KILL $STOPPED_PID' -- "$AQ" get -r gone/ "$T/killout" >/dev/null 2>&1 || rc=$?
[ $rc = 137 ] || it_fail "get -r was not killed midway ($rc)"
n=$(ls "$T/killout" | wc -l)
[ "$n" -lt 2990 ] || it_fail "get -r had written every file before the kill"
find "$T/killout" -name '.aqtmp*' | it_has . && it_fail "temporary files left: $(find "$T/killout" -name '.aqtmp*' | head -3)"
for f in "$T/killout"/*; do cmp -s "$f" "$T/gone/$(basename "$f")" || it_fail "$f is not whole"; done

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
[ "$(it_json 'd["failed"]' <"$T/gw.json")" = 3 ] || it_fail "gw summary: $(cat "$T/gw.json")"
[ "$(it_json 'd["wrote"]' <"$T/gw.json")" = 301 ] || it_fail "gw summary: $(cat "$T/gw.json")"
for n in a big c/d; do
  grep -qF "get -r: $n:" "$T/gw.err" || it_fail "$n not named: $(cat "$T/gw.err")"
done
grep -F "get -r: c/d:" "$T/gw.err" | it_has "cannot create its folder" || it_fail "c/d: $(cat "$T/gw.err")"
it_same_files "$G/m" "$O/m" || it_fail "get -r did not write the rest"
cmp -s "$G/z" "$O/z" || it_fail "get -r did not write z"
[ -d "$O/a/keep" ] && [ -d "$O/big/keep" ] && [ -f "$O/c" ] && [ ! -s "$O/c" ] ||
  it_fail "get -r changed what was in the way"
find "$O" -name '.aqtmp*' | it_has . && it_fail "temporary files left: $(find "$O" -name '.aqtmp*' | head -3)"

it_log "put -r of a missing folder fails and says so"
if "$AQ" put -r "$T/nope" "x/" 2>"$T/err"; then it_fail "put -r of a missing folder succeeded"; fi
grep -q "nope" "$T/err" || it_fail "missing folder not named: $(cat "$T/err")"

it_log "put -r: a name that is not UTF-8 is refused and named with '?' for its broken bytes"
B=$T/badname
mkdir -p "$B"
echo x >"$B/ok"
echo y >"$B/a"$'\xff\n'"b"
rc=0
"$AQ" put -r "$B" bn/ --json >"$T/bn.json" 2>"$T/bn.err" || rc=$?
[ $rc = 4 ] || it_fail "put -r of a name that is not UTF-8 exited $rc, want 4"
grep -qF "put -r: a??b: a key is 1 to 255 bytes of UTF-8" "$T/bn.err" || it_fail "bad name: $(cat -A "$T/bn.err")"
LC_ALL=C grep -q $'\xff' "$T/bn.err" && it_fail "a byte that is not UTF-8 reached stderr"
[ "$(it_json 'd["stored"], d["failed"]' <"$T/bn.json")" = "1 1" ] || it_fail "bad name summary: $(cat "$T/bn.json")"

it_log "get -o of a 100 MiB value, byte for byte"
it_rand_file "$T/big" $((100 << 20))
"$AQ" put big "$T/big" >/dev/null || it_fail "put big"
"$AQ" get big -o "$T/big.out" --fsync || it_fail "get -o big"
cmp "$T/big" "$T/big.out" || it_fail "get -o of 100 MiB differs"
"$AQ" get big | cmp -s - "$T/big" || it_fail "get of 100 MiB to stdout differs"
# The memory --help states, a value's size whatever: put under 40 MiB, get under 24 MiB (peak
# RSS; a sanitizer build's runtime holds far more of its own).
if ! ldd "$AQ" | it_has libasan; then
  peak() {
    python3 -c 'import resource, subprocess, sys
sys.exit(subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode or
         print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))' "$@"
  }
  rss=$(peak "$AQ" put big "$T/big") || it_fail "put big (peak memory)"
  [ "$rss" -lt 40 ] || it_fail "put of 100 MiB peaked at $rss MiB, over the 40 MiB --help states"
  rss=$(peak "$AQ" get big -o "$T/big.out") || it_fail "get -o big (peak memory)"
  [ "$rss" -lt 24 ] || it_fail "get -o of 100 MiB peaked at $rss MiB, over the 24 MiB --help states"
  it_log "peak memory of a 100 MiB put and get -o within what --help states"
fi
it_log "get -o killed while it writes leaves the file as it was and nothing beside it"
mkdir -p "$T/ko"
echo before >"$T/ko/out"
/usr/bin/python3 - "$AQ" "$T/ko" <<'PY' || it_fail "get -o was never caught writing in 5 tries"
import os, signal, subprocess, sys, time
aq, d = sys.argv[1], sys.argv[2]
for _ in range(5):
    p = subprocess.Popen([aq, "get", "big", "-o", os.path.join(d, "out")])
    # Killed once it holds its output file open (the file it writes, not yet named "out").
    while p.poll() is None:
        try:
            fds = [os.readlink("/proc/%d/fd/%s" % (p.pid, f)) for f in os.listdir("/proc/%d/fd" % p.pid)]
        except OSError:
            continue
        if any(f.startswith(d + "/") for f in fds):
            p.send_signal(signal.SIGKILL)
            p.wait()
            sys.exit(0)
    open(os.path.join(d, "out"), "w").write("before\n")
sys.exit(1)
PY
[ "$(cat "$T/ko/out")" = before ] || it_fail "a killed get -o changed its file"
[ "$(ls -A "$T/ko")" = out ] || it_fail "a killed get -o left files: $(ls -A "$T/ko")"
# Parts land at their offsets in a regular file, but a file opened for appending takes them in order.
echo head >"$T/app"
"$AQ" get big >>"$T/app" || it_fail "get >> a file"
[ "$(head -c 5 "$T/app")" = head ] && tail -c +6 "$T/app" | cmp -s - "$T/big" || it_fail "get >> a file differs"
it_log "with a node down, put -r --min-copies 2 fails the files that got one copy, and only those"
it_stop_node n3
rc=0
"$AQ" put -r "$D/many" mc/ --min-copies 2 --json >"$T/mc.json" 2>"$T/mc.err" || rc=$?
[ $rc = 4 ] || it_fail "put -r --min-copies 2 with n3 down exited $rc, want 4"
nf=$(it_json 'd["failed"]' <"$T/mc.json")
ns=$(it_json 'd["stored"]' <"$T/mc.json")
[ "$nf" -gt 0 ] && [ "$ns" -gt 0 ] && [ $((nf + ns)) = 200 ] || it_fail "min-copies summary: $(cat "$T/mc.json")"
[ "$(grep -c "fewer than min_copies 2" "$T/mc.err")" = "$nf" ] || it_fail "min-copies failures: $(head -3 "$T/mc.err")"
it_log "with a node down, put -r stores every file and names the replica that missed copies"
"$AQ" put -r "$D/many" mw/ --json >"$T/mw.json" 2>"$T/mw.err" || it_fail "put -r with n3 down: $(cat "$T/mw.err")"
[ "$(it_json 'd["stored"], d["copies"], d["missing"]' <"$T/mw.json")" = "200 1 ['n3']" ] ||
  it_fail "put -r with n3 down: $(cat "$T/mw.json")"
"$AQ" put -r "$D/many" mw/ 2>"$T/mw.err" >/dev/null || it_fail "put -r with n3 down, again"
it_has "warning: [0-9]* files have fewer than 2 copies; missing on: n3 (127.0.0.1:[0-9]*)$" <"$T/mw.err" ||
  it_fail "the missing replica is not named: $(cat "$T/mw.err")"
echo "tree: put -r/get -r, escapes refused, vanished file named, 100 MiB get -o identical"
