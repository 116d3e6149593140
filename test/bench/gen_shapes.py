#!/usr/bin/python3
"""gen_shapes.py --shape NAME --mb N [--seed S] -o FILE: writes a CSV file of one shape, at least N MB.

The shapes parse speed is measured on (test/bench/parse_bench --shapes) and checked against pandas
(test/frame/shapes.sh):
  quoted  airline-like, 15 columns; a quoted text field holding doubled quotes and commas in every
          row; two categorical columns of the 17,574 three-letter codes
  cats    categoricals of 5,000, 17,574, 30,000 and 60,000 levels (codes and ids), skewed counts
  wide    wide numeric: 64 int and 64 float columns, as in sensor or feature tables
  text    long free text: quoted fields of 200 to 2,000 bytes, a fifth of them with newlines inside
  times   dates and timestamps in several columns and notations, NAs in a quarter of the fields
  airline test/bench/gen_airline.py's file (called with the same MB and seed)
Every value stays within what the parser promises to read back exactly (node/frame/csv/README.md): ints
without leading zeros, no code spelling NaN or Inf, times from 1971 on (a fraction before 1970
would truncate where pandas floors), quotes only around whole fields.
The same shape, MB and seed always give the same bytes, so a failure can be reproduced.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

SHAPES = ("quoted", "cats", "wide", "text", "times", "airline")
# The first block measures the shape's bytes per row; later blocks aim at this many bytes.
BLOCK_BYTES = 16_000_000
FIRST_ROWS = 2_000
LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def join_cols(cols):
    """Rows of comma-joined fields, each ending in LF. A column is a list of str (or int)."""
    fmt = ",".join(["%s"] * len(cols))
    return "\n".join([fmt % r for r in zip(*cols)]) + "\n"


def ints(a):
    return list(map(str, a.tolist()))


def with_na(strs, rng, share, token):
    """Replaces a share of the values with a missing-value token ("NA" or the empty field)."""
    for i in np.flatnonzero(rng.random(len(strs)) < share).tolist():
        strs[i] = token
    return strs


def codes3():
    """All three-letter codes but those the parser reads as NaN or Inf."""
    a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [x + y + z for x in a for y in a for z in a if x + y + z not in ("NAN", "INF")]


def pick(levels, idx):
    return [levels[i] for i in idx.tolist()]


def skewed(rng, n, levels):
    """Indexes into levels with a long tail: a few frequent levels, every level possible."""
    return np.minimum((rng.random(n) ** 2.5 * levels).astype(np.int64), levels - 1)


def fixed(rng, n, lo, hi, decimals):
    """Decimals with a fixed number of places, as text (e.g. -12.50): an integer count of
    hundredths (say) printed with %.2f, which gives back exactly its digits."""
    scale = 10**decimals
    fmt = f"%.{decimals}f"
    return [fmt % (v / scale) for v in rng.integers(lo * scale, hi * scale, n).tolist()]


class Quoted:
    header = ("Year,Month,DayofMonth,FlightDate,DepTime,UniqueCarrier,FlightNum,Origin,Dest,"
              "Distance,DepDelay,ArrDelay,Cancelled,Fare,Remarks")

    def __init__(self, rng):
        self.codes = codes3()
        self.carriers = ["AA", "AS", "B6", "DL", "EV", "F9", "HA", "MQ", "OO", "UA", "WN"]
        self.words = ["delayed", "on time", "late crew", "gate change", "weather", "no meal",
                      "diverted, then back", "a, b and c"]

    def block(self, rng, n):
        year = rng.integers(1987, 2024, n).tolist()
        month = rng.integers(1, 13, n).tolist()
        day = rng.integers(1, 29, n).tolist()
        date = ["%d-%02d-%02d" % t for t in zip(year, month, day)]
        dep = with_na(ints(rng.integers(0, 24, n) * 100 + rng.integers(0, 60, n)), rng, 0.02,
                      "NA")
        ncodes = len(self.codes)
        # Every row: doubled quotes and commas inside the quotes.
        remarks = ['"Gate %d, said ""%s"", crew %d"' % t
                   for t in zip(rng.integers(1, 400, n).tolist(),
                                pick(self.words, rng.integers(0, len(self.words), n)),
                                rng.integers(1, 100_000, n).tolist())]
        cols = [year, month, day, date, dep,
                pick(self.carriers, rng.integers(0, len(self.carriers), n)),
                rng.integers(1, 10_000, n).tolist(), pick(self.codes, skewed(rng, n, ncodes)),
                pick(self.codes, rng.integers(0, ncodes, n)), rng.integers(11, 4_984, n).tolist(),
                with_na(fixed(rng, n, -60, 600, 1), rng, 0.02, "NA"),
                with_na(ints(rng.integers(-60, 600, n)), rng, 0.02, "NA"),
                (rng.random(n) < 0.03).astype(np.int8).tolist(),
                with_na(fixed(rng, n, 19, 900, 2), rng, 0.05, ""), remarks]
        return join_cols(cols)


class Cats:
    header = "id,store,code,sku,user,qty,price"

    def __init__(self, rng):
        # Codes and ids of four sizes; none reads as a number or an NA.
        self.stores = ["S%d" % i for i in range(1, 5_001)]
        self.codes = codes3()
        self.skus = ["%s-%d" % t for t in zip(pick(list(LETTERS), rng.integers(0, 26, 30_000)),
                                               range(100_000, 130_000))]
        self.users = ["u%d" % i for i in rng.permutation(np.arange(1, 60_001)).tolist()]
        self.next_id = 1

    def block(self, rng, n):
        ids = range(self.next_id, self.next_id + n)
        self.next_id += n
        cols = [ids, pick(self.stores, skewed(rng, n, len(self.stores))),
                with_na(pick(self.codes, rng.integers(0, len(self.codes), n)), rng, 0.01, ""),
                pick(self.skus, skewed(rng, n, len(self.skus))),
                pick(self.users, rng.integers(0, len(self.users), n)),
                rng.integers(1, 50, n).tolist(), fixed(rng, n, 1, 2_000, 2)]
        return join_cols(cols)


class Wide:
    NINT, NFLOAT = 64, 64
    header = ",".join([f"i{k}" for k in range(NINT)] + [f"f{k}" for k in range(NFLOAT)])

    def __init__(self, rng):
        pass

    def block(self, rng, n):
        cols = []
        for k in range(self.NINT):
            # Narrow and wide ranges, some signed, a few with NAs.
            hi = 10 ** (1 + k % 9)
            lo = -hi if k % 3 == 0 else 0
            c = rng.integers(lo, hi, n)
            cols.append(with_na(ints(c), rng, 0.01, "") if k % 8 == 7 else c.tolist())
        for k in range(self.NFLOAT):
            if k % 4 == 0:  # shortest round-trip text of a full double, exponents included
                c = list(map(repr, rng.normal(0.0, 10.0 ** (k % 7 - 3), n).tolist()))
            elif k % 4 == 1:
                c = fixed(rng, n, -1_000, 1_000, 3)
            elif k % 4 == 2:
                c = fixed(rng, n, 0, 100, 1)
            else:
                c = ["%.6g" % v for v in rng.gamma(2.0, 50.0, n).tolist()]
            cols.append(with_na(c, rng, 0.01, "NA") if k % 8 == 5 else c)
        return join_cols(cols)


class Text:
    header = "id,author,score,title,body"

    def __init__(self, rng):
        vocab = ["the", "river", "flows", "under", "stone", "and", "over", "gravel,", "water",
                 "table", "aquifer", "well", "pump", "said", '""deep""', "recharge", "clay",
                 "sand;", "spring", "(porous)", "rock", "layer", "salt", "fresh", "drawdown",
                 "head", "gradient", "flux", "zone", "über", "naïve", "50%", "a+b", "x=1", "it's",
                 "—", "well-known"]
        words = pick(vocab, rng.integers(0, len(vocab), 400_000))
        # A newline after about one word in 80, so a fifth of the short titles and most bodies
        # hold one.
        seps = ["\n" if x else " " for x in (rng.random(len(words)) < 0.012).tolist()]
        toks = [w + s for w, s in zip(words, seps)]
        self.buf = "".join(toks)
        # Word starts, so every slice begins and ends on a word: a doubled quote is never cut.
        self.starts = np.concatenate(([0], np.cumsum([len(t) for t in toks])[:-1]))
        self.authors = ["author %d" % i for i in range(1, 4_001)]
        self.next_id = 1

    def field(self, rng, n, lo, hi):
        want = rng.integers(lo, hi, n)
        first = rng.integers(0, len(self.starts) // 2, n)
        a = self.starts[first]
        b = self.starts[np.searchsorted(self.starts, a + want)]
        return ['"' + self.buf[x:y].rstrip(" \n") + '"' for x, y in zip(a.tolist(), b.tolist())]

    def block(self, rng, n):
        ids = range(self.next_id, self.next_id + n)
        self.next_id += n
        cols = [ids, pick(self.authors, skewed(rng, n, len(self.authors))),
                fixed(rng, n, 0, 5, 2), self.field(rng, n, 20, 80),
                self.field(rng, n, 200, 2_000)]
        return join_cols(cols)


class Times:
    header = "id,day,created,updated,seen,hour,birth,amount,count"
    NA_SHARE = 0.25

    def __init__(self, rng):
        self.next_id = 1
        self.lo = int(np.datetime64("1971-01-01T00:00:00", "s").astype(np.int64))
        self.hi = int(np.datetime64("2035-12-31T23:59:59", "s").astype(np.int64))
        self.blo = int(np.datetime64("1900-01-01", "D").astype(np.int64))
        self.bhi = int(np.datetime64("2020-01-01", "D").astype(np.int64))

    def na(self, rng, c):
        # Missing as "NA" or as an empty field, half each.
        m = rng.random(len(c))
        for i in np.flatnonzero(m < self.NA_SHARE / 2).tolist():
            c[i] = "NA"
        for i in np.flatnonzero((m >= self.NA_SHARE / 2) & (m < self.NA_SHARE)).tolist():
            c[i] = ""
        return c

    def block(self, rng, n):
        ids = range(self.next_id, self.next_id + n)
        self.next_id += n
        secs = rng.integers(self.lo, self.hi, n)
        s = secs.astype("datetime64[s]")
        day = np.datetime_as_string(s.astype("datetime64[D]")).tolist()
        created = [x.replace("T", " ") for x in np.datetime_as_string(s).tolist()]
        ms = (secs * 1000 + rng.integers(0, 1000, n)).astype("datetime64[ms]")
        updated = np.datetime_as_string(ms, timezone="UTC").tolist()
        later = (secs + rng.integers(0, 86_400 * 30, n)).astype("datetime64[s]")
        seen = np.datetime_as_string(later, unit="m").tolist()
        hour = [x.replace("T", " ") for x in np.datetime_as_string(s, unit="m").tolist()]
        birth = np.datetime_as_string(
            rng.integers(self.blo, self.bhi, n).astype("datetime64[D]")).tolist()
        cols = [ids, self.na(rng, day), self.na(rng, created), self.na(rng, updated),
                self.na(rng, seen), self.na(rng, hour), self.na(rng, birth),
                self.na(rng, fixed(rng, n, -500, 5_000, 2)),
                self.na(rng, ints(rng.integers(0, 1_000, n)))]
        return join_cols(cols)


def generate(shape, mb, seed, out):
    if shape == "airline":
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "gen_airline.py"), out, str(mb),
                        str(seed)], check=True)
        return
    rng = np.random.default_rng(seed)
    gen = {"quoted": Quoted, "cats": Cats, "wide": Wide, "text": Text, "times": Times}[shape](rng)
    want = int(mb * 1e6)
    written = 0
    rows = FIRST_ROWS
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write(gen.header + "\n")
        while written < want:
            text = gen.block(rng, rows)
            f.write(text)
            n = len(text.encode("utf-8")) if shape == "text" else len(text)
            written += n
            per_row = max(1, n // rows)
            rows = int(max(1, min(BLOCK_BYTES, want - written) // per_row + 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", required=True, choices=SHAPES)
    ap.add_argument("--mb", required=True, type=float)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    if not 0 < a.mb <= 100_000:
        ap.error("--mb takes a size above 0 and up to 100000")
    generate(a.shape, a.mb, a.seed, a.out)


if __name__ == "__main__":
    main()
