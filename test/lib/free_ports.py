"""Prints N distinct ports that are free for both UDP and TCP on 127.0.0.1 (aquifer binds both on one port).

Usage: python3 free_ports.py N (or free_ports(n) from Python). The ports are drawn at random from below
the kernel's ephemeral range (net.ipv4.ip_local_port_range), which the kernel never hands out by itself:
a port from inside it could be taken, between this check and the node's bind, by any socket a test
running beside this one binds to port 0 or connects from (every command's endpoint, every outgoing
pipe). The sockets are held until all N are found, so the ports differ; they are released on exit, which
leaves a short window in which another test's draw could take one (tests then fail clearly, never hang).
"""
import random
import socket
import sys

POOL_LOW = 10000  # clear of the well-known and registered services below


def _pool():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return (POOL_LOW, low - 1) if low - 1 - POOL_LOW >= 1000 else None


def _try(p):
    """Binds UDP and TCP on port p (0: the kernel's choice); the two sockets, or None."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        u.close()
        return None
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", u.getsockname()[1]))
    except OSError:
        u.close()
        t.close()
        return None
    return u, t


def free_ports(n):
    pool = _pool()
    out, keep = [], []
    while len(out) < n:
        # Without room below the ephemeral range, the kernel's choice.
        pair = _try(random.randint(*pool) if pool else 0)
        if pair is None:
            continue
        keep += pair  # held: a later draw of the same port fails to bind
        out.append(pair[0].getsockname()[1])
    for s in keep:
        s.close()
    return out


if __name__ == "__main__":
    print(" ".join(map(str, free_ports(int(sys.argv[1])))))
