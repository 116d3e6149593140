#!/usr/bin/env python3
"""flip_mem.py PID FILE: flips one byte of every copy of FILE's bytes in process PID's memory.

Bit rot in RAM, from outside the process: the writable mappings listed in /proc/PID/maps are read
through /proc/PID/mem, 64 MiB at a time, and searched for the file's first 4 KiB (random bytes:
unique to the value); at each place found, the byte 100 bytes further is flipped by writing
/proc/PID/mem. Mappings over 8 GiB are reservations such as a sanitizer's shadow memory, never a
heap, and are skipped. Prints how many copies were flipped; exits 1 when none was found."""
import re
import sys

pid, path = int(sys.argv[1]), sys.argv[2]
value = open(path, "rb").read()
probe = value[:4096]
assert len(value) > 200 and len(probe) >= 200, "the value must be longer than 200 bytes"
flipped = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        start, end, perms = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if not perms.startswith("rw"):
            continue
        if end - start > (8 << 30):
            continue
        step = 64 << 20
        pos = start
        while pos < end:
            n = min(step + len(probe), end - pos)
            try:
                mem.seek(pos)
                data = mem.read(n)
            except OSError:
                break
            at = data.find(probe)
            while at >= 0:
                if at < step:  # a match in the overlap is found again by the next window
                    mem.seek(pos + at + 100)
                    mem.write(bytes([data[at + 100] ^ 0x10]))
                    flipped += 1
                at = data.find(probe, at + 1)
            pos += step
print(flipped)
sys.exit(0 if flipped else 1)
