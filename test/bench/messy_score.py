#!/usr/bin/env python3
"""Scores loaded tables against their clean versions, the way the Pollock benchmark does
(HPI-Information-Systems/Pollock, pollock/metrics.py): per file, the F1 of the header cells, of
the records and of the cells (multisets), with a lighter cell normalisation (numbers by value,
text lower-cased and stripped; no date or currency parsing).

usage: messy_score.py LIST
LIST: lines "name<TAB>clean.csv<TAB>loaded.csv" (loaded: "-" when the load failed).
Prints one line per file (name, loaded, header/record/cell F1) and the totals; with --pycsv,
also loads each file with Python's csv module and its Sniffer (Pollock's pycsv) for comparison.
"""
import csv
import io
import sys
from collections import Counter

csv.field_size_limit(1 << 30)


def norm(c):
    c = c.strip()
    if c == "":
        return ""
    try:  # a number is its value: 1, 1.0 and 1.00 are one (aquifer writes 3 as 3.0 in floats)
        f = float(c)
        if f == f:
            return repr(f)
    except ValueError:
        pass
    return c.lower()


def f1(s, l):
    if not s:
        return 1.0
    i = sum((Counter(s) & Counter(l)).values())
    if not i:
        return 0.0
    p, r = i / len(s), i / len(l)
    return 2 * p * r / (p + r)


def read_rows(path):
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        return list(csv.reader(f))


def score(clean, rows):
    src = read_rows(clean)
    if not src:
        return 1.0, 1.0, 1.0
    h = f1([norm(c) for c in src[0]], [norm(c) for c in rows[0]] if rows else [])
    rs = ["\x1f".join(norm(c) for c in r) for r in src[1:]]
    rl = ["\x1f".join(norm(c) for c in r) for r in rows[1:]]
    cs = [norm(c) for r in src for c in r]
    cl = [norm(c) for r in rows for c in r]
    return h, f1(rs, rl), f1(cs, cl)


def pycsv(path):
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        data = f.read()
    d = csv.Sniffer().sniff(data)
    return list(csv.reader(io.StringIO(data, newline=""), d))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with_py = "--pycsv" in sys.argv
    tot = {"aq": [0, 0.0, 0.0, 0.0, 0], "py": [0, 0.0, 0.0, 0.0, 0]}
    n = 0
    for line in open(args[0]):
        name, clean, loaded, polluted = line.rstrip("\n").split("\t")
        n += 1
        res = {}
        res["aq"] = score(clean, read_rows(loaded)) if loaded != "-" else None
        if with_py:
            try:
                res["py"] = score(clean, pycsv(polluted))
            except Exception:
                res["py"] = None
        out = [name]
        for k, v in res.items():
            t = tot[k]
            if v is None:
                out.append(f"{k}:FAIL")
                continue
            t[0] += 1
            for i in range(3):
                t[1 + i] += v[i]
            t[4] += v[1] == 1.0 and v[0] == 1.0
            out.append(f"{k}:{v[0]:.2f}/{v[1]:.2f}/{v[2]:.2f}")
        print("\t".join(out))
    for k, t in tot.items():
        if k == "py" and not with_py:
            continue
        print(f"TOTAL {k}: {n} files, {t[0]} loaded, {t[4]} exact (header and every record), "
              f"mean F1 header {t[1]/n:.3f} records {t[2]/n:.3f} cells {t[3]/n:.3f}, "
              f"score {(t[1]+t[2]+t[3])/3/n*10:.3f}/10")


main()
