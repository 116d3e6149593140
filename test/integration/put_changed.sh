#!/usr/bin/env bash
# A put whose input file changes while it is read fails with exit 4, names the file, and leaves the
# key's old value in place: a file truncated mid-way (which would store a shorter value as if it
# were the file) and a file rewritten in place at the same size (which would store a mix of old and
# new bytes). The command is stopped (SIGSTOP) once it has read some of the file but not all of it,
# the file is changed, and the command goes on; an attempt that catches the command after its last
# read is repeated.
. "$AQ_SRC/test/integration/lib.sh"
it_conf 3 1
it_up
size=$((192 << 20))
it_rand_file "$T/old" 3000
"$AQ" put k "$T/old" >/dev/null || it_fail "the first put failed"

# stop_midway PID PATH: once PID has PATH open and has read some of it, stops PID; prints its read
# position then (the file's size when every byte was already read).
stop_midway() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import os, signal, sys, time
pid, path = int(sys.argv[1]), sys.argv[2]
end = time.monotonic() + 60
def pos():
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    return int(f.readline().split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None
def gone():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
while time.monotonic() < end and not gone():
    p = pos()
    if p:
        os.kill(pid, signal.SIGSTOP)
        print(pos() or -1)
        sys.exit(0)
print(-1)
PY
}

# changed_put NAME CHANGE...: puts a fresh random file under k, runs CHANGE on it while the command
# is stopped between its first and its last read, and checks that the put failed as it should.
changed_put() {
  local name=$1 attempt pos rc
  shift
  for attempt in 1 2 3 4 5; do
    it_rand_file "$T/big" "$size"
    "$AQ" put k "$T/big" >/dev/null 2>"$T/err" &
    local p=$!
    pos=$(stop_midway "$p" "$T/big")
    if [ "$pos" -gt 0 ] && [ "$pos" -lt "$size" ]; then
      "$@"
      kill -CONT "$p"
      rc=0
      wait "$p" || rc=$?
      it_log "$name: stopped at byte $pos, exit $rc: $(cat "$T/err")"
      [ "$rc" = 4 ] || it_fail "$name: the put exited $rc, not 4"
      grep -q "put k: $T/big changed while it was read" "$T/err" ||
        it_fail "$name: the error does not name the changed file"
      "$AQ" get k -o "$T/got" || it_fail "$name: get of the key failed"
      cmp -s "$T/old" "$T/got" || it_fail "$name: the key no longer holds its old value"
      return 0
    fi
    kill -CONT "$p" 2>/dev/null
    wait "$p" || true
    it_log "$name: attempt $attempt did not stop the command mid-way (at byte $pos); again"
    # A put that went through replaced the old value: put it back.
    "$AQ" put k "$T/old" >/dev/null || it_fail "restoring the old value failed"
  done
  it_fail "$name: never caught the command mid-way"
}

changed_put truncated truncate -s $((2 << 20)) "$T/big"
changed_put "rewritten in place" \
  dd if=/dev/urandom of="$T/big" bs=1M count=1 seek=$(((size >> 20) - 1)) conv=notrunc status=none
it_log "put_changed: a file changed under a put fails the put, naming it, and keeps the old value"
