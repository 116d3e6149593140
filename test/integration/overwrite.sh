#!/usr/bin/env bash
# A failed overwrite keeps the previous value. 3 nodes, replicas 2; n2's data_dir is a small tmpfs
# (mounted here, unmounted at cleanup), filled up after the first values are stored, so n2 refuses
# every new copy. Small and large (> 4 MiB: parts + manifest) values are overwritten with small and
# large ones: a put that exits 0 must leave the new value readable, and a put that fails must leave
# the previous value readable and whole. The interesting failures are those where another replica
# stored the new value (or a large value's new manifest) before n2 refused it; the test goes on
# until it has seen such failures of small values and of manifests.
. "$(dirname "$0")/lib.sh"

it_conf 3 2 "repair_interval = 1s" --persist
mkdir -p "$T/data/n2"
mount -t tmpfs -o size=24m tmpfs "$T/data/n2" || it_fail "cannot mount a tmpfs (needs root)"
IT_CLEANUPS+=("umount -l '$T/data/n2'")
it_up
mkdir -p "$T/v"
SMALL=(s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12)
LARGE=(l1 l2)
declare -A cur
for k in "${SMALL[@]}"; do
  it_rand_file "$T/v/$k.0" 3000
  "$AQ" put "ow/$k" "$T/v/$k.0"
  cur[$k]=$T/v/$k.0
done
for k in "${LARGE[@]}"; do
  it_rand_file "$T/v/$k.0" $(((4 << 20) + 70000))
  "$AQ" put "ow/$k" "$T/v/$k.0"
  cur[$k]=$T/v/$k.0
done
it_log "fill n2's data_dir"
dd if=/dev/zero of="$T/data/n2/filler" bs=64k 2>/dev/null || true
[ "$(df --output=avail -B1 "$T/data/n2" | tail -1)" -lt 65536 ] || it_fail "tmpfs not full"

check() {
  local k=$1
  "$AQ" get "ow/$k" -o "$T/got" 2>"$T/get.err" || it_fail "ow/$k unreadable ($2): $(cat "$T/get.err")"
  cmp -s "$T/got" "${cur[$k]}" || it_fail "ow/$k does not hold the value it should ($2)"
}
ok=0
failed=0
small_after_store=0 # small puts refused by n2 after another replica stored them
stored_first=()     # their keys: n2 is the second of their replicas
manifest_failed=0   # large puts whose parts were all stored but whose manifest failed
# try KEY FILE: put, then check the key holds the new value (exit 0) or the previous one.
try() {
  local k=$1 f=$2
  if "$AQ" put "ow/$k" "$f" 2>"$T/put.err"; then
    cur[$k]=$f
    ok=$((ok + 1))
    check "$k" "after a put that succeeded"
    return
  fi
  failed=$((failed + 1))
  local why
  why=$(head -c 400 "$T/put.err")
  if [ "$(stat -c %s "$f")" -gt $((4 << 20)) ]; then
    grep -q ': part [0-9]*:' "$T/put.err" || manifest_failed=$((manifest_failed + 1))
  elif "$AQ" stat "ow/$k" --json >/dev/null 2>&1 && ! grep -q "put ow/$k: call PUT to n2" "$T/put.err"; then
    small_after_store=$((small_after_store + 1))
    [[ " ${stored_first[*]} " == *" $k "* ]] || stored_first+=("$k")
  fi
  check "$k" "after a failed put: $why"
}
it_log "small over small"
for k in "${SMALL[@]}"; do
  it_rand_file "$T/v/$k.1" 2001
  try "$k" "$T/v/$k.1"
done
[ $small_after_store -gt 0 ] || it_fail "no small put failed after another replica stored it"
# A large put reaches its manifest only when no part landed on n2 (parts are placed by a random put
# id); its manifest is refused after being stored only for a key whose second replica is n2.
it_log "large and small over each other until manifests were refused (keys ${stored_first[*]})"
for r in $(seq 1 40); do
  for k in "${LARGE[@]}" "${stored_first[@]}"; do
    it_rand_file "$T/v/$k.l$r" $(((4 << 20) + r))
    it_rand_file "$T/v/$k.s$r" $((1000 + r))
    try "$k" "$T/v/$k.l$r"
    try "$k" "$T/v/$k.s$r"
  done
  [ $manifest_failed -ge 2 ] && break
done
it_log "$failed puts failed ($small_after_store small ones after another replica stored them," \
  "$manifest_failed at the manifest), $ok succeeded; every key held the right value after each"
[ $manifest_failed -gt 0 ] || it_fail "no large put failed at its manifest"
sleep 3
for k in "${SMALL[@]}" "${LARGE[@]}"; do check "$k" "after repair passes"; done
it_log "still right after repair passes"
