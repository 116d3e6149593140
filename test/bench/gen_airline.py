#!/usr/bin/python3
"""gen_airline.py OUT MB [SEED]: writes an airline-like CSV file of at least MB megabytes.

Columns mimic H2O's airline data set and cover every type aquifer parses: small and wide ints,
ints and floats with missing values (both "NA" and empty fields), ISO dates and timestamps,
categoricals of 3 to ~5,000 levels (one mostly missing), and a quoted free-text column with commas,
doubled quotes and more distinct values than a categorical may have (so it is a string column).
The same seed always gives the same bytes, so a failure can be reproduced.
"""
import sys

import numpy as np

COLS = ("Year,Month,DayofMonth,DayOfWeek,FlightDate,DepTime,CRSDepTime,UniqueCarrier,FlightNum,"
        "TailNum,ActualElapsedTime,ArrDelay,DepDelay,Origin,Dest,Distance,Fare,WeatherDelay,"
        "Cancelled,CancellationCode,SchedDeparture,Remarks")
ROWS_PER_BLOCK = 100_000


def with_na(strs, rng, share, token):
    """Replaces a share of the values with the missing-value token."""
    mask = rng.random(len(strs)) < share
    strs[mask] = token
    return strs


def block(rng, n, carriers, tails, airports):
    year = rng.integers(1987, 2009, n)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    dow = rng.integers(1, 8, n)
    date = np.char.add(np.char.add(np.char.add(year.astype("U4"), "-"),
                                   np.char.add(np.char.zfill(month.astype("U2"), 2), "-")),
                       np.char.zfill(day.astype("U2"), 2))
    crs = rng.integers(0, 24, n) * 100 + rng.integers(0, 60, n)
    dep = with_na((crs + rng.integers(-5, 90, n)).astype("U6"), rng, 0.02, "NA")
    elapsed = with_na(rng.integers(20, 700, n).astype("U6"), rng, 0.025, "NA")
    arr_delay = with_na(rng.integers(-60, 600, n).astype("U6"), rng, 0.025, "NA")
    # A float column with one decimal, written plainly.
    dep_delay = with_na(np.char.mod("%.1f", rng.normal(8.0, 30.0, n)), rng, 0.02, "NA")
    fare = with_na(np.char.mod("%.2f", rng.gamma(3.0, 80.0, n) + 19.0), rng, 0.05, "")
    # Exponents and long mantissas: a float column that needs the full round trip.
    weather = with_na(np.char.mod("%.17g", rng.exponential(12.5, n)), rng, 0.6, "")
    cancelled = (rng.random(n) < 0.03).astype(np.int8)
    code = np.where(cancelled == 1, rng.choice(np.array(["A", "B", "C", "D"]), n), "")
    hh = rng.integers(0, 24, n)
    mm = rng.integers(0, 60, n)
    ss = rng.integers(0, 60, n)
    sched = np.char.add(np.char.add(date, " "),
                        np.char.add(np.char.add(np.char.zfill(hh.astype("U2"), 2), ":"),
                                    np.char.add(np.char.add(np.char.zfill(mm.astype("U2"), 2), ":"),
                                                np.char.zfill(ss.astype("U2"), 2))))
    gate = rng.integers(1, 300_000, n).astype("U6")
    remarks = np.char.add(np.char.add('"Gate ', gate), ', terminal B"').astype("U40")
    quoted = rng.random(n) < 0.01
    remarks[quoted] = np.char.add(np.char.add('"said ""delayed"", gate ', gate[quoted]), '"')
    remarks = with_na(remarks, rng, 0.01, "")
    cols = [year.astype("U4"), month.astype("U2"), day.astype("U2"), dow.astype("U1"), date, dep,
            crs.astype("U4"), rng.choice(carriers, n), rng.integers(1, 10_000, n).astype("U4"),
            with_na(rng.choice(tails, n), rng, 0.01, ""), elapsed, arr_delay, dep_delay,
            rng.choice(airports, n), rng.choice(airports, n),
            rng.integers(11, 4_984, n).astype("U4"), fare, weather, cancelled.astype("U1"), code,
            sched, remarks]
    return "\n".join(map(",".join, zip(*[c.tolist() for c in cols]))) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: gen_airline.py OUT MB [SEED]")
    out, mb = sys.argv[1], float(sys.argv[2])
    rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) == 4 else 20261124)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    carriers = np.array(["AA", "AS", "B6", "CO", "DL", "EV", "F9", "FL", "HA", "HP", "MQ", "NW",
                         "OH", "OO", "PI", "TW", "UA", "US", "WN", "XE", "YV", "9E"])
    tails = np.unique(np.char.add("N", rng.integers(100, 99_999, 5_200).astype("U5")))
    airports = np.unique(np.char.add(np.char.add(rng.choice(letters, 320), rng.choice(letters, 320)),
                                     rng.choice(letters, 320)))
    want = int(mb * 1e6)
    written = 0
    with open(out, "w", encoding="ascii", newline="") as f:
        f.write(COLS + "\n")
        while written < want:
            text = block(rng, ROWS_PER_BLOCK, carriers, tails, airports)
            f.write(text)
            written += len(text)


if __name__ == "__main__":
    main()
