"""The documented type mapping (aquifer/_columns.py) on columns built here, without a cluster."""
import numpy as np
import pandas as pd
import pandas.testing as pdt

from aquifer._columns import Column, decode_strings, na_from_bitmap, to_numpy, to_pandas

NAT = np.iinfo(np.int64).min


def strs(values):
    """offsets and data of a string column holding values (bytes)."""
    offs = np.zeros(len(values) + 1, dtype=np.uint64)
    offs[1:] = np.cumsum([len(v) for v in values])
    return offs, np.frombuffer(b"".join(values), dtype=np.uint8)


def frame():
    na = np.array([False, True, False])
    offs, data = strs([b"a,b", b"", "\u00e9t\u00e9 \u2603".encode()])
    return [
        Column("i", "int", 3, values=np.array([1, 2, 3], dtype=np.int64)),
        Column("in", "int", 3, values=np.array([-(2**63) + 1, 0, 2**62], dtype=np.int64), na=na),
        Column("f", "float", 3, values=np.array([1.5, np.nan, np.nan]), na=na),
        Column("t", "time", 3, values=np.array([0, NAT, 86_400_000], dtype=np.int64), na=na),
        Column("c", "categorical", 3, values=np.array([1, -1, 0], dtype=np.int32), na=na,
               levels=["x", "y"]),
        Column("s", "string", 3, na=na, offsets=offs, data=data),
        Column("n", "none", 3, na=np.ones(3, dtype=bool)),
    ]


def test_to_pandas_mapping():
    df = to_pandas(frame(), pd)
    want = pd.DataFrame({
        "i": np.array([1, 2, 3], dtype=np.int64),
        "in": pd.array([-(2**63) + 1, None, 2**62], dtype="Int64"),
        "f": [1.5, np.nan, np.nan],
        "t": pd.to_datetime(["1970-01-01", None, "1970-01-02"]),
        "c": pd.Categorical(["y", None, "x"], categories=["x", "y"]),
        "s": np.array(["a,b", np.nan, "\u00e9t\u00e9 \u2603"], dtype=object),
        "n": [np.nan] * 3,
    })
    pdt.assert_frame_equal(df, want)
    assert df["in"][2] == 2**62  # exact, not through a double


def test_to_numpy_masks_missing_and_keeps_stored_nan():
    cols = frame()
    out = to_numpy(cols)
    assert out["i"].dtype == np.int64 and not np.ma.isMaskedArray(out["i"])
    assert np.ma.isMaskedArray(out["f"]) and list(out["f"].mask) == [False, True, False]
    assert np.isnan(out["f"].data[2]) and not out["f"].mask[2]  # a NaN the file wrote
    assert out["t"].dtype == np.dtype("datetime64[ms]")
    assert out["t"][2] == np.datetime64("1970-01-02", "ms")
    assert out["c"][0] == "y" and out["c"][2] == "x" and out["c"].mask[1]
    assert out["s"][2] == "\u00e9t\u00e9 \u2603" and out["s"].mask[1]
    assert out["n"].dtype == np.float64 and out["n"].mask.all()


def test_strings_not_utf8_round_trip_their_bytes():
    raw = [b"caf\xe9", b"ok", b"\xff\xfe"]
    offs, data = strs(raw)
    got = decode_strings(offs, data)
    assert [s.encode("utf-8", "surrogateescape") for s in got] == raw


def test_strings_multibyte_offsets():
    vals = ["", "\u00e9", "abc", "\U0001f600x", "", "\u4e2d\u6587"]
    offs, data = strs([v.encode() for v in vals])
    assert decode_strings(offs, data) == vals
    # a slice of the buffer that does not start at 0 (offsets[0] > 0)
    assert decode_strings(offs[2:], data) == vals[2:]


def test_na_bitmap():
    bm = np.array([0b00000101, 0b1], dtype=np.uint8)
    assert list(na_from_bitmap(bm, 9)) == [True, False, True] + [False] * 5 + [True]
    assert na_from_bitmap(np.zeros(2, dtype=np.uint8), 9) is None


def test_duplicate_names_and_empty_frame():
    a = Column("x", "int", 2, values=np.array([1, 2], dtype=np.int64))
    b = Column("x", "float", 2, values=np.array([0.5, 1.0]))
    df = to_pandas([a, b], pd)
    assert list(df.columns) == ["x", "x"] and df.iloc[1, 1] == 1.0
    empty = to_pandas([Column("e", "string", 0, offsets=np.zeros(1, np.uint64),
                              data=np.zeros(0, np.uint8))], pd)
    assert len(empty) == 0 and list(empty.columns) == ["e"]
