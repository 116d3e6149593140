#!/usr/bin/env bash
# aquifer parse's inputs end to end on a real three-node cluster (replicas 2): every H2O smalldata
# file in each of the four compressed forms (made here by gzip, zstd, bzip2 and xz) gives exactly
# the frame of the plain file (export and summary --json); several files, a directory and a glob
# give the frame of their concatenation; stdin (plain and gzip) the frame of the file; a Latin-1
# file exports as its UTF-8 text with --encoding latin-1, and byte for byte without; a truncated .gz, a corrupt
# .zst and a file whose header differs fail naming the file and leave no key behind.
set -euo pipefail

: "${AQ_DATA_DIR:?AQ_DATA_DIR must point at h2o-smalldata}"
source "$AQ_SRC/test/integration/lib.sh"
source "$AQ_SRC/test/lib/frame.sh"
for tool in gzip zstd bzip2 xz; do
  command -v $tool >/dev/null || fail "$tool is not installed (scripts/lib/common.sh AQ_PKGS_TEST)"
done

it_conf 3 2
step "cluster up"
it_up

# The chunks and the user keys: what a failed parse must leave unchanged.
state() { echo "$(chunks) $(aq ls | wc -l)"; }

# same_frame A B: frames A and B export the same bytes and summarise the same (A's export and
# summary are made once and kept: A is the reference of several checks).
same_frame() {
  [ -f "$T/$1.x.csv" ] || aq export "$1" -o "$T/$1.x.csv" || fail "export $1"
  [ -f "$T/$1.s.json" ] || aq summary "$1" --json >"$T/$1.s.json" || fail "summary $1"
  aq export "$2" -o "$T/$2.x.csv" || fail "export $2"
  cmp -s "$T/$1.x.csv" "$T/$2.x.csv" || fail "$2 exports differently from $1: $(diff "$T/$1.x.csv" "$T/$2.x.csv" | head -5)"
  aq summary "$2" --json >"$T/$2.s.json" || fail "summary $2"
  same_summary "$T/$1.s.json" "$T/$2.s.json" || fail "summary of $2 differs from $1's"
}

base=$(state)
step "every smalldata file in four compressed forms: the frame of the plain file"
mkdir -p "$T/z"
i=0
for f in "$AQ_DATA_DIR"/*; do
  i=$((i + 1))
  b=$(basename "$f")
  cp "$f" "$T/z/$b"
  # fast levels: the format is the same at any level, and xz -6 alone takes seconds here
  gzip -1 -c "$f" >"$T/z/$b.gz"
  zstd -q -1 -c "$f" >"$T/z/$b.zst"
  bzip2 -1 -c "$f" >"$T/z/$b.bz2"
  xz -1 -c "$f" >"$T/z/$b.xz"
  aq parse "$T/z/$b" --name "f$i" >/dev/null || fail "parse $b"
  for ext in gz zst bz2 xz; do
    aq parse "$T/z/$b.$ext" --name "f$i-$ext" --json >"$T/p.json" || fail "parse $b.$ext"
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
i = j["input"]
assert i["compressed"] == 1 and i["formats"] == [sys.argv[2]], i
assert i["decompressed_bytes"] == i["text_bytes"] == j["bytes"] and i["decompress_mb_per_s"] >= 0, i' \
      "$T/p.json" "$(case $ext in gz) echo gzip ;; zst) echo zstd ;; bz2) echo bzip2 ;; xz) echo xz ;; esac)" ||
      fail "parse $b.$ext: input report $(cat "$T/p.json")"
    same_frame "f$i" "f$i-$ext"
    aq frame rm "f$i-$ext" >/dev/null || fail "frame rm f$i-$ext"
  done
  step "  $b: gz, zst, bz2, xz all give its frame"
done

# The rest joins and splits the first 12,000 rows of allyears (enough for several pieces of work,
# small enough for a sanitizer build).
ALLY=$T/base.csv
head -12001 "$AQ_DATA_DIR/allyears2k_headers.csv" >"$ALLY"
aq parse "$ALLY" --name base >/dev/null || fail "parse base.csv"

step "gzip of several members and zstd of several frames, named without a suffix"
{ head -5000 "$ALLY" | gzip -c; tail -n +5001 "$ALLY" | gzip -c; } >"$T/ally-members"
{ head -7000 "$ALLY" | zstd -q -c; tail -n +7001 "$ALLY" | zstd -q -c; } >"$T/ally-frames.csv"
aq parse "$T/ally-members" --name members >/dev/null || fail "parse multi-member gzip"
aq parse "$T/ally-frames.csv" --name frames >/dev/null || fail "parse multi-frame zstd"
same_frame base members
same_frame base frames

step "several files, a directory and a glob: the frame of their concatenation"
mkdir -p "$T/parts"
head -1 "$ALLY" >"$T/hdr"
tail -n +2 "$ALLY" | split -l 3000 -d - "$T/parts/body"
for p in "$T"/parts/body*; do
  n=$(basename "$p" | sed 's/body//')
  cat "$T/hdr" "$p" >"$T/parts/part$n.csv"
  rm "$p"
done
ls "$T/parts" | tr '\n' ' '
echo
[ "$(ls "$T/parts" | wc -l)" -eq 4 ] || fail "the split made too few parts"
gzip "$T/parts/part01.csv"      # part01.csv.gz
zstd -q --rm "$T/parts/part02.csv" # part02.csv.zst
aq parse "$T/parts/part00.csv" "$T/parts/part01.csv.gz" "$T/parts/part02.csv.zst" \
  "$T/parts/part03.csv" --name files >"$T/out.txt" || fail "parse of several files"
grep -q "input: 4 files (gzip, zstd)" "$T/out.txt" || fail "several files: input line: $(cat "$T/out.txt")"
grep -q "3 header rows of later files dropped" "$T/out.txt" || fail "headers: $(cat "$T/out.txt")"
same_frame base files
aq parse "$T/parts" --name dir >/dev/null || fail "parse of a directory"
same_frame base dir
aq parse "$T/parts/part0*" --name glob >/dev/null || fail "parse of a glob"
same_frame base glob
aq frames | it_has "^files	.*part00.csv and 3 more" || fail "frames source: $(aq frames | grep ^files)"

step "--fill unites differing headers: the frame of the united table"
python3 - "$AQ_DATA_DIR/prostate.csv" "$T/fill" <<'PY'
import csv, os, sys
rows = list(csv.reader(open(sys.argv[1])))
head, data = rows[0], rows[1:]
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
def write(name, cols, rows):
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
# a: every column; b: reordered, without VOL; c: a new column NOTE first
a = data[:150]
bcols = [c for c in reversed(head) if c != "VOL"]
b = [[r[head.index(c)] for c in bcols] for r in data[150:300]]
ccols = ["NOTE"] + head
c = [["n%d" % (i % 7)] + r for i, r in enumerate(data[300:])]
write("a.csv", head, a)
write("b.csv", bcols, b)
write("c.csv", ccols, c)
union = head + ["NOTE"]
def full(cols, r):
    d = dict(zip(cols, r))
    return [d.get(u, "") for u in union]
write("want.csv", union, [full(head, r) for r in a] + [full(bcols, r) for r in b] +
      [full(ccols, r) for r in c])
PY
gzip "$T/fill/b.csv"
if aq parse "$T/fill/a.csv" "$T/fill/b.csv.gz" "$T/fill/c.csv" --name nofill 2>"$T/err.txt"; then
  fail "differing headers joined without --fill"
fi
grep -q "b.csv.gz: its header differs from .*a.csv's at column 1: 'GLEASON'" "$T/err.txt" ||
  fail "differing headers: $(cat "$T/err.txt")"
aq parse "$T/fill/a.csv" "$T/fill/b.csv.gz" "$T/fill/c.csv" --fill --name filled >/dev/null 2>"$T/err.txt" ||
  fail "parse --fill: $(cat "$T/err.txt")"
aq parse "$T/fill/want.csv" --name fill-want >/dev/null || fail "parse want.csv"
same_frame fill-want filled

step "stdin, plain and gzip"
cat "$ALLY" | aq parse - --name stdin >/dev/null || fail "parse of stdin"
same_frame base stdin
gzip -c "$ALLY" | aq parse - --name stdin-gz >/dev/null || fail "parse of gzip on stdin"
same_frame base stdin-gz
if cat "$ALLY" | aq parse - 2>"$T/err.txt"; then fail "stdin without --name succeeded"; fi
grep -q -- "--name" "$T/err.txt" || fail "stdin without --name: $(cat "$T/err.txt")"

step "Latin-1 text exports as UTF-8"
python3 - "$T/utf8.csv" "$T/latin1.csv" <<'PY'
import sys
rows = ["city,country,pop"] + [f"{c},{k},{i * 1000 + 7}" for i, (c, k) in enumerate(
    [("Zürich", "Schweiz"), ("Malmö", "Sverige"), ("Córdoba", "España"), ("Kraków", "Polska"),
     ("São Paulo", "Brasil"), ("Reykjavík", "Ísland")] * 50)]
text = "\n".join(rows) + "\n"
open(sys.argv[1], "w", encoding="utf-8").write(text)
open(sys.argv[2], "w", encoding="latin-1").write(text)
PY
aq parse "$T/utf8.csv" --name utf8 >/dev/null || fail "parse utf8.csv"
aq parse "$T/latin1.csv" --name latin1 --encoding latin-1 >/dev/null 2>"$T/err.txt" || fail "parse --encoding latin-1: $(cat "$T/err.txt")"
same_frame utf8 latin1
# Without --encoding the bytes are kept as they are (and noted): the export gives the file back.
xz -c "$T/latin1.csv" >"$T/latin1.csv.xz"
aq parse "$T/latin1.csv.xz" --name latin1-raw >/dev/null 2>"$T/err.txt" || fail "parse latin-1 without --encoding: $(cat "$T/err.txt")"
grep -q "latin1.csv.xz is not UTF-8 (first at line 2); its bytes are kept as they are" "$T/err.txt" ||
  fail "no note about the encoding: $(cat "$T/err.txt")"
aq export latin1-raw -o "$T/latin1-raw.csv" || fail "export latin1-raw"
cmp -s "$T/latin1.csv" "$T/latin1-raw.csv" || fail "the Latin-1 bytes did not come back"
if aq parse "$T/latin1.csv" --encoding utf-8 --name strict 2>"$T/err.txt"; then fail "--encoding utf-8 took Latin-1"; fi
grep -q "latin1.csv line 2: invalid UTF-8" "$T/err.txt" || fail "--encoding utf-8: $(cat "$T/err.txt")"
aq export latin1 | it_has "^Zürich,Schweiz," || fail "export of the Latin-1 frame lacks Zürich"

step "failures name the file and leave no key behind"
mid=$(state)
head -c 200000 "$T/z/allyears2k_headers.csv.gz" >"$T/trunc.csv.gz" # of about a megabyte
if aq parse "$T/trunc.csv.gz" 2>"$T/err.txt"; then fail "a truncated .gz parsed"; fi
grep -q "trunc.csv.gz: truncated gzip data: the file ends at byte 200000" "$T/err.txt" ||
  fail "truncated: $(cat "$T/err.txt")"
[ "$(state)" = "$mid" ] || fail "the truncated parse left keys: $mid -> $(state)"
aq frames | it_has "^trunc" && fail "a frame of the truncated file is listed"
python3 - "$T/z/allyears2k_headers.csv.zst" "$T/bad.zst" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) * 3 // 4] ^= 0xff
open(sys.argv[2], "wb").write(b)
PY
if aq parse "$T/bad.zst" 2>"$T/err.txt"; then fail "a corrupt .zst parsed"; fi
grep -q "bad.zst: corrupt zstd data at byte [0-9]" "$T/err.txt" || fail "corrupt: $(cat "$T/err.txt")"
[ "$(state)" = "$mid" ] || fail "the corrupt parse left keys: $mid -> $(state)"
sed '1s/Year/Yr/' "$T/parts/part03.csv" >"$T/other.csv"
if aq parse "$T/parts/part00.csv" "$T/other.csv" --name other 2>"$T/err.txt"; then
  fail "a file with another header was joined"
fi
grep -q "other.csv: its header differs from .*part00.csv's at column 1: 'Yr'" "$T/err.txt" ||
  fail "differing header: $(cat "$T/err.txt")"
[ "$(state)" = "$mid" ] || fail "the failed join left keys: $mid -> $(state)"
: >"$T/empty.csv"
if aq parse "$T/parts/part00.csv" "$T/empty.csv" --name e 2>"$T/err.txt"; then fail "an empty file was joined"; fi
grep -q "empty.csv is empty" "$T/err.txt" || fail "empty: $(cat "$T/err.txt")"
[ "$(state)" = "$mid" ] || fail "the empty join left keys"

step "later files' preambles go with their headers"
mkdir -p "$T/pre"
printf 'Monthly report\nregion north\n\nid,v\n1,a\n2,b\n' >"$T/pre/m1.csv"
printf 'Monthly report\n\nid,v\n3,c\n' | gzip >"$T/pre/m2.csv.gz"
printf 'id,v\n4,d\n' >"$T/pre/m3.csv"
aq parse "$T/pre" --name pre --json >"$T/p.json" 2>"$T/err.txt" || fail "preambles: $(cat "$T/err.txt")"
python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
assert p["rows"] == 4 and p["dialect"]["skip"] == 3 and p["input"]["headers_dropped"] == 2, p
' "$T/p.json" || fail "preambles: $(cat "$T/p.json")"
[ "$(aq export pre | tr '\n' ' ')" = "id,v 1,a 2,b 3,c 4,d " ] || fail "preambles: $(aq export pre)"

step "frame rm everything"
for n in $(aq frames --json | python3 -c 'import json,sys; print(" ".join(f["name"] for f in json.load(sys.stdin)))'); do
  aq frame rm "$n" >/dev/null || fail "frame rm $n"
done
[ "$(state)" = "$base" ] || fail "keys left after removing every frame: $base -> $(state)"
aq cluster down >/dev/null || fail "cluster down"
if grep -l "AddressSanitizer\|LeakSanitizer\|runtime error:" "$T"/run/*.log; then
  fail "sanitizer report in a node log"
fi
step "ok"
