#!/usr/bin/env bash
# Loads a corpus of messy CSV files through a real two-node cluster (aquifer parse, then export)
# and scores each export against the file's clean table (test/bench/messy_score.py).
#
# usage: AQ_BUILD=build test/bench/messy_score.sh DIR [EVERY] [--pycsv]
# DIR holds csv/NAME and clean/NAME (the layout of the Pollock benchmark's polluted_files and
# survey_sample: `fetch github:HPI-Information-Systems/Pollock`). EVERY N: only every N-th file
# whose name starts with row_ (the 2,184 one-row pollutions), all the others.
set -euo pipefail
AQ_BUILD=$(cd "${AQ_BUILD:?set AQ_BUILD to the build tree}" && pwd)
export AQ_BUILD
source "$(dirname "$0")/../integration/lib.sh"
DIR=$1
EVERY=${2:-1}
it_conf 2 1
it_up
: >"$T/list"
i=0
j=0
for f in "$DIR"/csv/*; do
  name=$(basename "$f")
  case "$name" in row_*) i=$((i + 1)); [ $((i % EVERY)) -eq 0 ] || continue ;; esac
  [ -s "$f" ] && [ -s "$DIR/clean/$name" ] || continue
  j=$((j + 1))
  out="$T/out.$j.csv"
  fr="f$j"
  if "$AQ" -c "$CONF" parse "$f" --name "$fr" --json >"$T/p.json" 2>"$T/err" &&
    "$AQ" -c "$CONF" export "$fr" -o "$out" 2>>"$T/err"; then
    # a file read without a header exports generated names (C1, C2 ...): not part of the table
    if grep -q '"header": false' "$T/p.json"; then sed -i 1d "$out"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$DIR/clean/$name" "$out" "$f" >>"$T/list"
  else
    printf '%s\t%s\t-\t%s\n' "$name" "$DIR/clean/$name" "$f" >>"$T/list"
    echo "# $name: $(head -c 300 "$T/err")" >&2
  fi
  "$AQ" -c "$CONF" frame rm "$fr" >/dev/null 2>&1 || true
done
/usr/bin/python3 "$(dirname "$0")/messy_score.py" "$T/list" "${@:3}"
