#!/usr/bin/env python3
"""Differential test: random tables with adversarial values, written in random dialects,
parsed by the real cluster (aquifer parse) and exported (aquifer export); every field compared
with what Python's csv module reads from the same file knowing the dialect.

Usage: csv_diff.py AQUIFER CONF WORKDIR [SEED] [TABLES]. The seed is printed first and again on
any failure, so a failure can be replayed. Comparison follows node/frame/csv/README.md: text columns
give back every field byte for byte; int and float columns give back the same numbers (the
documented normalisations: 1.50 -> 1.5, +1 -> 1, nan -> NaN); an empty field and NA are missing.
Half the tables give the dialect as options, the other half let the parse guess it (those are
built with enough rows and columns to be guessable; the header is given, but for tables with a
title before them or a footer after them, which the parse must find itself, as the header)."""
import csv
import io
import json
import math
import os
import random
import subprocess
import sys

AQ, CONF, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
SEED = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else random.randrange(1 << 30)
TABLES = int(sys.argv[5]) if len(sys.argv) > 5 else 40
print("csv_diff seed", SEED, flush=True)
rnd = random.Random(SEED)

TEXT = ["NAN", "nan", "NaN", "None", "null", "N/A", "007", "08123", "-01", "00.5", "a,b", "x;y",
        "p|q", "tab\there", 'say "hi"', "it's", "multi\nline", "cr\r\nlf", "  padded  ",
        " ", "café", "日本語", "-", "#hash", "1.50", "2024-1-5", "12345678901234567890123",
        "2015-01-02T03:04:05+01:00", "", "x" * 3000, "back\\slash", "\"quoted\"", "'single'"]


def gen_value(kind, guess):
    r = rnd.random()
    if r < 0.08:
        return ""  # missing
    if kind == "int":
        if r < 0.1:
            return rnd.choice(["+5", "-0", "0"])
        return str(rnd.choice([rnd.randrange(-1000, 1000), rnd.randrange(-(1 << 63), 1 << 63),
                               0, (1 << 63) - 1, -(1 << 63)]))
    if kind == "float":
        if r < 0.15:
            return rnd.choice(["nan", "NaN", "NAN", "inf", "-inf"])
        return rnd.choice([repr(rnd.uniform(-1e6, 1e6)), "%.2f" % rnd.uniform(-100, 100),
                           repr(rnd.random() * 10 ** rnd.randrange(-30, 30)), "1.50", "-0.0"])
    if kind.startswith("time"):  # time<sep><z>: one way of writing per column, as writers do
        sep, z = kind[4], kind[5:]
        d = "20%02d-%02d-%02d" % (rnd.randrange(0, 40), rnd.randrange(1, 13), rnd.randrange(1, 29))
        if r < 0.15:
            return d + sep + "00:00:00" + z  # midnight, written in full
        frac = rnd.choice(["", "", ".5", ".25", ".125"])
        return d + sep + "%02d:%02d:%02d%s%s" % (rnd.randrange(0, 24), rnd.randrange(0, 60),
                                                 rnd.randrange(0, 60), frac, z)
    if kind == "mixed":  # ints (some past 2^53) and floats in one column
        return rnd.choice([str(rnd.randrange(-999, 999)), repr(rnd.uniform(-9, 9)),
                           str(rnd.randrange(1 << 53, 1 << 63)) if rnd.random() < 0.1 else "7",
                           "1e400" if rnd.random() < 0.05 else "0.5"])
    if kind == "codes":
        return rnd.choice(["0", "00", "007", "0123", "99", "100"])
    v = rnd.choice(TEXT) if r < 0.7 else "w%d" % rnd.randrange(50)
    if guess == '"' and v == "it's":
        return "Men's"  # an apostrophe in unquoted text is no sign against a dialect
    if guess and (v.startswith("#") or any(c in v for c in "\\'\"")):
        # a guessed dialect: no comment-like first bytes, and no quotes or backslashes in the
        # data, which would make the file read as well (or better) in another dialect
        v = "w"
    return v


def dialect(guess):
    sep = rnd.choice([",", ";", "\t", "|"])
    quote = rnd.choice(['"', '"', "'"])
    esc = rnd.random() < 0.3
    return dict(delimiter=sep, quotechar=quote, doublequote=not esc,
                escapechar="\\" if esc else None, lineterminator=rnd.choice(["\n", "\r\n"]),
                quoting=csv.QUOTE_MINIMAL, strict=True)


def run(args):
    p = subprocess.run([AQ, "-c", CONF] + args, capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def num_eq(want, got, kind):
    if want == "":
        return got == ""
    if kind == "int":
        return got != "" and int(want) == int(got)
    w, g = float(want), float(got)
    return (math.isnan(w) and math.isnan(g)) or w == g


def fail(msg, path):
    if os.environ.get("AQ_DIFF_KEEP"):
        open(os.environ["AQ_DIFF_KEEP"], "wb").write(open(path, "rb").read())
    print("FAIL (seed %d): %s\n  file %s, written as %r\n  %r" % (
        SEED, msg, path, CUR.get("dialect"), open(path, "rb").read()[:1500]), flush=True)
    sys.exit(1)


CUR = {}


for t in range(TABLES):
    guess = t % 2 == 1
    ncols = rnd.randrange(3, 7) if guess else rnd.randrange(1, 7)
    nrows = rnd.randrange(8, 40) if guess else rnd.randrange(1, 40)
    kinds = [rnd.choice(["int", "float", "text", "text", "codes", "time", "mixed"])
             for _ in range(ncols)]
    kinds = [k + rnd.choice([" ", "T", "TZ"]) if k == "time" else k for k in kinds]
    if guess:
        kinds[0] = "int"  # a column that tells the header from the data
    header = guess or rnd.random() < 0.7
    names = ["c%d_%s" % (j, kinds[j].strip()) for j in range(ncols)]
    d = dialect(guess)
    rows = [[gen_value(kinds[j], guess and d["quotechar"]) for j in range(ncols)]
            for _ in range(nrows)]
    if guess:
        for r in rows:
            r[0] = r[0] or "1"
    CUR["dialect"] = d
    buf = io.StringIO(newline="")
    w = csv.writer(buf, **d)
    if header:
        w.writerow(names)
    for r in rows:
        w.writerow(r)
    data = buf.getvalue()
    bom = rnd.random() < 0.2
    # guessed tables: sometimes a title before the table (alone, or padded to the table's width
    # as spreadsheets write it) and a footer after a blank line, neither of them the table's
    eol, sep = d["lineterminator"], d["delimiter"]
    pre = post = ""
    if guess and rnd.random() < 0.3:
        pre = rnd.choice(["Report of the week" + eol + eol, "Report" + sep * (ncols - 1) + eol])
    if guess and rnd.random() < 0.3:
        post = eol + "Total rows: %d" % nrows + eol + "source: a test" + eol
    path = os.path.join(WORK, "t%d.csv" % t)
    with open(path, "wb") as f:
        f.write((b"\xef\xbb\xbf" if bom else b"") + (pre + data + post).encode())
    # what Python reads, knowing the dialect
    want = list(csv.reader(io.StringIO(data, newline=""), **d))
    if header:
        want = want[1:]
    opts = ["--header", "yes" if header else "no", "--comment", "none"]
    if pre or post:
        opts = ["--comment", "none"]  # the header too is the parse's to find
    if not guess:
        opts += ["--sep", {"\t": "tab"}.get(d["delimiter"], d["delimiter"]), "--quote",
                 d["quotechar"], "--escape", "\\" if d["escapechar"] else "none"]
    rc, out, err = run(["parse", path, "--name", "d%d" % t, "--json"] + opts)
    if rc != 0:
        fail("parse failed: %s" % err, path)
    rep = json.loads(out)
    types = [c["type"] for c in rep["columns"]]
    if rep["ncols"] != ncols or rep["rows"] != len(want):
        fail("shape %dx%d, want %dx%d (unread %s, dialect %s)" % (rep["rows"], rep["ncols"], len(want), ncols, rep["unread_lines"],
                                                    rep["dialect"]), path)
    if bool(post) != bool(rep["unread_lines"]):
        fail("unread lines %s, footer %r" % (rep["unread_lines"], post), path)
    if rep["repaired_rows"]:
        fail("rows repaired in a well-formed file: lines %s (dialect %s)" % (
            rep["repaired_lines"], rep["dialect"]), path)
    rc, out, err = run(["export", "d%d" % t])
    if rc != 0:
        fail("export failed: %s" % err, path)
    got = list(csv.reader(io.StringIO(out.decode(), newline="")))
    if header and got[0] != names:
        fail("names %r, want %r" % (got[0], names), path)
    got = got[1:]
    if len(got) != len(want):
        fail("export has %d rows, want %d" % (len(got), len(want)), path)
    for i, (wr, gr) in enumerate(zip(want, got)):
        if len(gr) != ncols:
            fail("export row %d has %d fields" % (i, len(gr)), path)
        for j in range(ncols):
            wv, gv, ty = wr[j], gr[j], types[j]
            ok = num_eq(wv, gv, ty) if ty in ("int", "float") else (
                gv == "" if wv in ("", "NA") else gv == wv)
            if not ok:
                fail("row %d col %d (%s, %s): got %r, want %r (dialect %s)" % (
                    i, j, names[j], ty, gv[:80], wv[:80], rep["dialect"]), path)
print("csv_diff: %d tables agree (seed %d)" % (TABLES, SEED), flush=True)
