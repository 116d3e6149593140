"""Prints N distinct ports that are free for both UDP and TCP on 127.0.0.1 (aquifer binds both on one port).

Usage: python3 free_ports.py N. The sockets are held until all N are found, so the ports differ; they are
released on exit, which leaves a short window in which another process could take one (tests retry by
failing clearly, never by hanging).
"""
import socket
import sys

n = int(sys.argv[1])
out, keep = [], []
while len(out) < n:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", p))
    except OSError:
        u.close()
        continue
    keep += [u, t]
    out.append(p)
print(" ".join(map(str, out)))
