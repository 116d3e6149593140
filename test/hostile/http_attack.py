"""Hostile HTTP clients against one aquifer node's HTTP port, for http_hostile.sh.

Usage: python3 http_attack.py HOST PORT ATTACK [args]
  slowloris N SECONDS SRC  N connections from source address SRC, each sending one header line a
                           second and never finishing the request; prints how many the server
                           closed or refused and how many it still held at the end
  flood N                  N connections opened at once, each sending GET /livez; prints how many
                           were answered 200 and how many were closed or refused unanswered
  bigheader                a 64 KiB header and a 64 KiB URL: each must get a 4xx status
  garbage                  malformed request lines and binary junk: each must get a 4xx or a close
  methods                  POST, PUT, DELETE, PATCH, TRACE, OPTIONS, CONNECT: each must get 405
  traversal                raw paths that climb out of the root: each must get 404 (or 400), and
                           never a file's content
Exits 1 with a message when the server gave an answer it must not give.
"""
import resource
import select
import socket
import sys
import threading
import time

HOST, PORT, ATTACK = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ARGS = sys.argv[4:]

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def exchange(raw, timeout=20):
    """Sends raw bytes on a new connection; returns the status code (int), or None if the server
    closed without a status line."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    try:
        try:
            s.sendall(raw)
        except OSError:
            pass  # the server may close before reading it all: then read what it answered
        data = b""
        while b"\r\n" not in data:
            try:
                chunk = s.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        if not data.startswith(b"HTTP/1."):
            return None, data
        return int(data.split(b" ", 2)[1]), data
    finally:
        s.close()


def slowloris(n, seconds, src):
    conns = []
    refused = 0
    for _ in range(n):
        try:
            s = socket.socket()
            s.bind((src, 0))
            s.settimeout(5)
            s.connect((HOST, PORT))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            conns.append(s)
        except OSError:
            refused += 1
    closed = 0
    end = time.time() + seconds
    while time.time() < end and conns:
        time.sleep(1)
        alive = []
        for s in conns:
            try:
                s.send(b"X-Slow: a\r\n")
                r, _, _ = select.select([s], [], [], 0)
                if r and not s.recv(4096):
                    raise OSError("closed")
                alive.append(s)
            except OSError:
                closed += 1
                s.close()
        conns = alive
    print(f"slowloris: {n} tried, {refused} refused at connect, {closed} closed by the server, "
          f"{len(conns)} still open after {seconds} s")
    for s in conns:
        s.close()


def flood(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((HOST, PORT))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        socks.append(s)
    pending = {s: b"" for s in socks}
    sent = set()
    answered = unanswered = 0
    end = time.time() + 30
    while pending and time.time() < end:
        _, w, _ = select.select([], [s for s in pending if s not in sent][:1000], [], 0.05)
        for s in w:
            try:
                s.send(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            sent.add(s)
        r, _, _ = select.select(list(pending)[:1000], [], [], 0.2)
        for s in r:
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if chunk:
                pending[s] += chunk
                if b"\r\n\r\n" not in pending[s]:
                    continue
            if pending[s].startswith(b"HTTP/1.1 200"):
                answered += 1
            elif pending[s]:
                print("flood: unexpected answer", pending[s][:80])
                unanswered += 1
            else:
                unanswered += 1
            del pending[s]
            s.close()
    for s in pending:
        s.close()
    print(f"flood: {n} connections, {answered} answered 200, {unanswered} closed or refused "
          f"unanswered, {len(pending)} still waiting after 30 s")
    if answered == 0:
        fail("no connection of the flood was answered")


def expect(raw, allowed, what):
    code, data = exchange(raw)
    if code not in allowed:
        fail(f"{what}: answered {code} ({data[:80]!r}), wanted one of {allowed}")
    if b"root:" in data:
        fail(f"{what}: served a file")
    print(f"{what}: {code}")


FOURXX = set(range(400, 432))
if ATTACK == "slowloris":
    slowloris(int(ARGS[0]), int(ARGS[1]), ARGS[2])
elif ATTACK == "flood":
    flood(int(ARGS[0]))
elif ATTACK == "bigheader":
    expect(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n", FOURXX,
           "64 KiB header")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(4000))
    expect(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", FOURXX, "4000 headers")
    expect(b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n", FOURXX, "64 KiB URL")
elif ATTACK == "garbage":
    # At once: the ones the server cannot parse wait for its idle timeout before it closes them.
    raws = [b"\x00\xff\xfe garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n", b"\r\n\r\n\r\n\r\n"]
    errors = []

    def one(raw):
        try:
            expect(raw, FOURXX | {None, 505}, f"garbage {raw[:24]!r}")
        except SystemExit:
            errors.append(raw)

    threads = [threading.Thread(target=one, args=(r,)) for r in raws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail(f"{len(errors)} malformed requests got a wrong answer")
elif ATTACK == "methods":
    for m in [b"POST", b"PUT", b"DELETE", b"PATCH", b"TRACE", b"OPTIONS"]:
        expect(m + b" /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", {405}, m.decode())
    expect(b"CONNECT x:80 HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405}, "CONNECT")
elif ATTACK == "traversal":
    for p in [b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd", b"/..%2f..%2fetc/passwd",
              b"//etc/passwd", b"/app.js/../../etc/passwd", b"/metrics/../../etc/shadow"]:
        expect(b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n\r\n", {404}, p.decode())
    expect(b"GET ../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}, "no leading slash")
else:
    fail("unknown attack " + ATTACK)
