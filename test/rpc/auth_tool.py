#!/usr/bin/env python3
"""Helpers for auth_cluster.sh: a UDP proxy that captures a client's datagrams to a node and, on
signal, replays them or sends every single-bit flip of a captured PUT (checksum fixed up, as an
attacker would, where there is one: a MACed packet carries a packet counter instead); and forged heartbeats sent from a member's spoofed address (raw socket, root).

  auth_tool.py proxy LISTEN_PORT NODE_PORT DIR   (SIGUSR1: replay all; SIGUSR2: bit flips)
  auth_tool.py heartbeat NODE_PORT SPOOF_PORT NAME CLUSTER_ID_HEX SECONDS
"""
import ctypes
import ctypes.util
import os
import random
import select
import signal
import socket
import struct
import sys
import time

HDR = 64
MAC = 16


def xxh3():
    for name in ("libxxhash.so.0", ctypes.util.find_library("xxhash") or "libxxhash.so"):
        try:
            lib = ctypes.CDLL(name)
            lib.XXH3_64bits.restype = ctypes.c_uint64
            lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
            return lambda b: lib.XXH3_64bits(b, len(b))
        except OSError:
            continue
    sys.exit("auth_tool: libxxhash not found")


H = xxh3()


def fix_checksum(p):
    """Recompute the header checksum over the header (checksum zeroed) and the fragment; a packet
    flagged as MACed has a packet counter there, not a checksum, and is left as it is."""
    flags = struct.unpack_from("<H", p, 4)[0]
    if flags & 1:
        return p
    start = HDR
    b = bytearray(p)
    b[56:64] = b"\0" * 8
    s = H(bytes(b[:HDR]) + bytes(b[start:]))
    b[56:64] = struct.pack("<Q", s)
    return bytes(b)


def proxy(listen_port, node_port, d):
    cs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cs.bind(("127.0.0.1", listen_port))
    ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ns.bind(("127.0.0.1", 0))
    node = ("127.0.0.1", node_port)
    captured, client = [], None
    todo = []
    signal.signal(signal.SIGUSR1, lambda *_: todo.append("replay"))
    signal.signal(signal.SIGUSR2, lambda *_: todo.append("flip"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    open(os.path.join(d, "proxy.ready"), "w").close()
    while True:
        while todo:
            what = todo.pop(0)
            n = 0
            if what == "replay":
                for p in captured:
                    for _ in range(3):
                        ns.sendto(p, node)
                        n += 1
            else:
                puts = [p for p in captured if p[3] == 1 and struct.unpack_from("<H", p, 6)[0] == 1]
                if puts:
                    g = puts[0]
                    for bit in range(len(g) * 8):
                        b = bytearray(g)
                        b[bit // 8] ^= 1 << (bit % 8)
                        f = bytes(b)
                        if not (56 <= bit // 8 < 64):
                            f = fix_checksum(f)
                        ns.sendto(f, node)
                        n += 1
                        if n % 64 == 0:
                            time.sleep(0.01)  # stay under the socket buffers
            with open(os.path.join(d, what + ".done"), "w") as fh:
                fh.write("%d\n" % n)
        try:
            r, _, _ = select.select([cs, ns], [], [], 0.2)
        except InterruptedError:
            continue
        for s in r:
            data, addr = s.recvfrom(65536)
            if s is cs:
                client = addr
                captured.append(data)
                with open(os.path.join(d, "captured"), "a") as fh:
                    fh.write(data.hex() + "\n")
                ns.sendto(data, node)
            elif client:
                cs.sendto(data, client)


def heartbeat(node_port, spoof_port, name, cluster_hex, seconds):
    """NOTIFY(HEARTBEAT) datagrams claiming to be the member at 127.0.0.1:spoof_port: without a
    MAC, and with a random one; each with a valid checksum and a fresh incarnation."""
    cid = int(cluster_hex, 16)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    end = time.time() + seconds
    n = 0
    nm = name.encode()
    payload = bytes([len(nm)]) + nm + struct.pack("<QQQ", 1000, 0, 0)
    while time.time() < end:
        for mac in (False, True):
            inc = random.getrandbits(64) | 1
            flags = 1 if mac else 0
            h = struct.pack("<HBBHHQQQQIIIiQ", 0x5141, 1, 8, flags, 7, cid, inc, 0, 0,
                            len(payload), 0, len(payload), 0, 0)
            p = h + (os.urandom(MAC) if mac else b"") + payload
            p = fix_checksum(p)
            udp = struct.pack("!HHHH", spoof_port, node_port, 8 + len(p), 0) + p
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
            raw.sendto(ip + udp, ("127.0.0.1", 0))
            n += 1
        time.sleep(0.02)
    print(n)


if __name__ == "__main__":
    if sys.argv[1] == "proxy":
        proxy(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "heartbeat":
        heartbeat(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6]))
    else:
        sys.exit(__doc__)
