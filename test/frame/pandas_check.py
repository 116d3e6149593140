#!/usr/bin/python3
"""pandas_check.py summary SUMMARY.json FILE.csv
   pandas_check.py export FILE.csv EXPORTED.csv SUMMARY.json

summary: every figure of `aquifer summary --json` equals what pandas computes on the same file:
rows, NA counts, min and max (exactly), mean and sd (1e-9 relative), categorical cardinalities and
the counts of the most frequent levels. Time columns compare as milliseconds since 1970 UTC.
export: the exported file, read by pandas, holds the same values as the original, cell by cell
(floats bit for bit, since both are read with the round-trip float parser).
Exit 0 when all agree; otherwise every difference is printed and the exit code is 1.
"""
import json
import math
import sys

import pandas as pd


def load(path, summary):
    times = [c["name"] for c in summary["columns"] if c["type"] == "time"]
    df = pd.read_csv(path, float_precision="round_trip", keep_default_na=False,
                     na_values=["", "NA"], low_memory=False)
    for t in times:
        df[t] = pd.to_datetime(df[t], utc=True)
    return df


def as_numbers(col, kind):
    if kind == "time":
        ms = col.dropna().astype("int64") // 1_000_000
        return ms.astype("float64")
    return col.dropna().astype("float64")


def same(a, b, rel):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0 if rel == 0 else 1e-300)


def check_summary(summary, df):
    bad = []
    if summary["rows"] != len(df):
        bad.append(f"rows: aquifer {summary['rows']}, pandas {len(df)}")
    if [c["name"] for c in summary["columns"]] != list(df.columns):
        bad.append(f"columns differ: {[c['name'] for c in summary['columns']]} vs {list(df.columns)}")
        return bad
    for c in summary["columns"]:
        name, kind, col = c["name"], c["type"], df[c["name"]]
        na = int(col.isna().sum())
        if c["na"] != na:
            bad.append(f"{name}: na aquifer {c['na']}, pandas {na}")
        if kind in ("int", "float", "time"):
            v = as_numbers(col, kind)
            want = {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
                    "sd": float(v.std(ddof=1))}
            for k, w in want.items():
                rel = 0.0 if k in ("min", "max") else 1e-9
                if not same(float(c[k]), w, rel):
                    bad.append(f"{name}: {k} aquifer {c[k]!r}, pandas {w!r}")
        elif kind == "categorical":
            counts = col.value_counts(dropna=True)
            if c["cardinality"] != len(counts):
                bad.append(f"{name}: cardinality aquifer {c['cardinality']}, pandas {len(counts)}")
            for lev in c["top"]:
                got = int(counts.get(lev["level"], 0))
                if got != lev["count"]:
                    bad.append(f"{name}: level {lev['level']!r} aquifer {lev['count']}, pandas {got}")
            if c["top"] and c["top"][0]["count"] != int(counts.iloc[0]):
                bad.append(f"{name}: most frequent count aquifer {c['top'][0]['count']}, "
                           f"pandas {int(counts.iloc[0])}")
    return bad


def check_export(a, b):
    bad = []
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return [f"shape: original {a.shape} {list(a.columns)}, exported {b.shape} {list(b.columns)}"]
    for name in a.columns:
        x, y = a[name], b[name]
        if not x.isna().equals(y.isna()):
            bad.append(f"{name}: NA rows differ ({int(x.isna().sum())} vs {int(y.isna().sum())})")
            continue
        xv, yv = x.dropna(), y.dropna()
        if x.dtype.kind in "if" and y.dtype.kind in "if":
            differ = (xv.astype("float64").to_numpy() != yv.astype("float64").to_numpy())
        else:
            differ = (xv.astype(str).to_numpy() != yv.astype(str).to_numpy())
        if differ.any():
            i = int(differ.argmax())
            bad.append(f"{name}: {int(differ.sum())} values differ, first at data row "
                       f"{int(xv.index[i]) + 1}: {xv.iloc[i]!r} vs {yv.iloc[i]!r}")
    return bad


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "summary":
        summary = json.load(open(sys.argv[2]))
        bad = check_summary(summary, load(sys.argv[3], summary))
        what = f"summary of {summary['rows']} rows, {len(summary['columns'])} columns"
    elif len(sys.argv) == 5 and sys.argv[1] == "export":
        summary = json.load(open(sys.argv[4]))
        bad = check_export(load(sys.argv[2], summary), load(sys.argv[3], summary))
        what = "exported values"
    else:
        sys.exit(__doc__)
    for b in bad:
        print("pandas_check: " + b)
    print(f"pandas_check: {what}: {'equal to pandas' if not bad else f'{len(bad)} differences'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
