#!/usr/bin/env python3
"""Runs a command, stops it (SIGSTOP) once it has opened N files of a folder, runs a shell snippet
while it is stopped, then lets it go on, so a test can change a file tree at a known point of a
put -r instead of racing it.

usage: stop_at.py --watch DIR --opens N --limit M --then 'SHELL' [--timeout S] -- CMD [ARG...]

Opens are seen through inotify (IN_OPEN of a file directly in DIR, not DIR itself). The command
inherits stdin, stdout and stderr; the snippet finds its pid in $STOPPED_PID. If more than M files of DIR were opened by the time it
stopped, the point was missed and the snippet is not run. Exits with the command's own status
(a signal as 128 + its number), or 100 when the point was missed, 101 when the command ended
before its N-th open, 102 when the snippet failed, 103 when the command outlived the timeout
(it is then killed).
"""
import argparse
import ctypes
import ctypes.util
import os
import select
import signal
import struct
import subprocess
import sys
import time

IN_OPEN = 0x20
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
EVENT = struct.Struct("iIII")


class Opens:
    """Names of files opened directly in one folder, as inotify reports them."""

    def __init__(self, folder):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(IN_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), "inotify on " + folder)
        self.names = set()

    def drain(self, wait):
        """Reads what is queued (waiting up to wait seconds for the first); the count so far."""
        while select.select([self.fd], [], [], wait)[0]:
            buf = os.read(self.fd, 1 << 16)
            off = 0
            while off < len(buf):
                _, mask, _, n = EVENT.unpack_from(buf, off)
                name = buf[off + EVENT.size : off + EVENT.size + n].rstrip(b"\0")
                off += EVENT.size + n
                if mask & IN_OPEN and not mask & IN_ISDIR and name:
                    self.names.add(name)
            wait = 0
        return len(self.names)


def all_stopped(pid):
    """Every thread of pid is in the stopped state."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state not in ("T", "t"):
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watch", required=True)
    ap.add_argument("--opens", type=int, required=True)
    ap.add_argument("--limit", type=int, required=True)
    ap.add_argument("--then", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    deadline = time.monotonic() + a.timeout
    opens = Opens(a.watch)
    p = subprocess.Popen(cmd)
    try:
        while opens.drain(0.01) < a.opens:
            if p.poll() is not None:
                return 101
            if time.monotonic() > deadline:
                return 103
        os.kill(p.pid, signal.SIGSTOP)
        while not all_stopped(p.pid):
            if time.monotonic() > deadline:
                return 103
            time.sleep(0.001)
        late = opens.drain(0.05) > a.limit
        env = dict(os.environ, STOPPED_PID=str(p.pid))
        snippet_rc = 0 if late else subprocess.call(["bash", "-c", a.then], env=env)
        os.kill(p.pid, signal.SIGCONT)
        try:
            rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return 103
        if late:
            return 100
        if snippet_rc != 0:
            return 102
        return 128 - rc if rc < 0 else rc
    finally:
        if p.poll() is None:  # a timeout: leave nothing behind
            p.kill()
            os.kill(p.pid, signal.SIGCONT)
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
