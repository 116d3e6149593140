"""A frame's columns as numpy arrays and a pandas DataFrame: the documented type mapping.

Input is one `Column` per frame column, holding what libaquifer decoded (numpy arrays that may
be views of library-owned memory, see _client._View). Nothing here talks to the library, so the
mapping is tested without a cluster (tests/test_columns.py).

The mapping (README "Python"): aquifer type -> to_numpy() -> to_pandas()
  int          int64 -> int64, or pandas "Int64" (pd.NA) when the column has a missing value
  float        float64 -> float64, missing as NaN (a NaN the file wrote is NaN too)
  time         datetime64[ms] -> datetime64[ms] (pandas >= 2) or datetime64[ns] (pandas 1.x, which
               holds only nanoseconds), missing as NaT
  categorical  object array of str -> pandas.Categorical, categories the frame's levels in
               bytewise order, missing as NaN (code -1)
  string       object array of str -> object column of str, missing as NaN
  none         (no value at all) float64 of NaN -> float64 of NaN
to_numpy() gives a column with missing values as a numpy.ma.MaskedArray whose mask is the NA
bitmap (so a stored NaN and a missing value stay apart); a column without any is a plain array.
Text is UTF-8; bytes that are not (aquifer keeps them as the file had them) decode with
errors="surrogateescape", so s.encode("utf-8", "surrogateescape") gives the file's bytes back.
"""
import codecs

import numpy as np

TYPES = ("none", "int", "float", "time", "categorical", "string")


class Column:
    """One decoded column, as aquifer.h's aquifer_column holds it. values: int64 (int), float64
    (float), int64 milliseconds since 1970 (time) or int32 codes into levels (categorical); None
    for string and none. Missing rows hold the library's markers there: 0, NaN, INT64_MIN (NaT)
    and -1. na: bool array (True = missing), or None when no row is missing. levels:
    categorical levels (list of str, bytewise order). offsets/data: for string, rows + 1 uint64
    offsets into the bytes of data (a uint8 array); joined, when given, the same rows as one
    uint8 array with a NUL between each two (libaquifer's aquifer_column_join), which saves
    decode_strings that step."""

    __slots__ = ("name", "type", "rows", "values", "na", "levels", "offsets", "data", "joined")

    def __init__(self, name, type, rows, values=None, na=None, levels=None, offsets=None,
                 data=None, joined=None):
        if type not in TYPES:
            raise ValueError(f"column {name!r}: unknown type {type!r}")
        self.name, self.type, self.rows = name, type, int(rows)
        self.values, self.levels, self.offsets, self.data = values, levels, offsets, data
        self.joined = joined
        self.na = na if na is not None and na.any() else None

    def __repr__(self):
        return f"Column({self.name!r}, {self.type}, rows={self.rows})"


def na_from_bitmap(bitmap, rows):
    """The NA bitmap (bit set = missing, row i in byte i/8, bit i%8) as a bool array, or None
    when no row is missing."""
    bits = np.unpackbits(np.asarray(bitmap, dtype=np.uint8), bitorder="little")[:rows]
    return bits.view(np.bool_) if bits.any() else None


def decode_strings(offsets, data, joined=None):
    """The strings data[offsets[i]:offsets[i+1]] as a list of str.

    Building millions of str objects one slice at a time is the slow part, so the rows are
    joined with NUL bytes (a parsed text never holds one: parse refuses files with NUL) and the
    whole buffer is decoded and split in C. Bytes that are not UTF-8 decode with
    surrogateescape; a NUL ends any broken sequence, so each row decodes as it would alone.
    joined: those rows already joined (Column.joined), else they are joined here."""
    n = len(offsets) - 1
    if n <= 0:
        return []
    if joined is None:
        offs = np.asarray(offsets, dtype=np.int64)
        lo, hi = int(offs[0]), int(offs[-1])
        buf = np.asarray(data[lo:hi], dtype=np.uint8)
        joined = np.insert(buf, offs[1:-1] - lo, 0) if n > 1 else buf
    # utf_8_decode reads the array's buffer in place (bytes.decode would need a copy first).
    return codecs.utf_8_decode(joined, "surrogateescape", True)[0].split("\0")


def _object_array(items, na):
    out = np.empty(len(items), dtype=object)
    out[:] = items
    if na is not None:
        out[na] = np.nan
    return out


def _masked(values, na):
    return values if na is None else np.ma.MaskedArray(values, mask=na)


def column_numpy(c):
    """One column as to_numpy() gives it (see the module's mapping)."""
    if c.type == "none":
        return _masked(np.full(c.rows, np.nan), c.na)
    if c.type in ("int", "float"):
        return _masked(c.values, c.na)
    if c.type == "time":
        return _masked(c.values.view("datetime64[ms]"), c.na)
    if c.type == "categorical":
        levels = np.empty(len(c.levels) + 1, dtype=object)
        levels[:-1] = c.levels
        return _masked(levels[c.values], c.na)  # code -1 (missing) takes the None at the end
    return _masked(_object_array(decode_strings(c.offsets, c.data, c.joined), None), c.na)


def _pandas_time_unit(pd):
    return "ms" if int(pd.__version__.split(".")[0]) >= 2 else "ns"


def column_pandas(c, pd):
    """One column as the array to_pandas() puts in the DataFrame; c's arrays are used as they
    are where pandas takes them (int, float, time under pandas 2, the Int64 values; pandas
    narrows categorical codes to the fewest bytes, a copy)."""
    if c.type == "none":
        return np.full(c.rows, np.nan)
    if c.type == "int":
        return c.values if c.na is None else pd.arrays.IntegerArray(c.values, c.na)
    if c.type == "float":
        return c.values
    if c.type == "time":
        t = c.values.view("datetime64[ms]")  # INT64_MIN, the missing marker, is NaT
        return t if _pandas_time_unit(pd) == "ms" else t.astype("datetime64[ns]")
    if c.type == "categorical":
        # -1, the missing marker, is pandas' missing code too.
        cats = pd.Index(c.levels, dtype=object)
        return pd.Categorical.from_codes(c.values, categories=cats)
    return _object_array(decode_strings(c.offsets, c.data, c.joined), c.na)


def to_numpy(columns):
    return {c.name: column_numpy(c) for c in columns}


def to_pandas(columns, pd):
    """The DataFrame of the columns, in order (see dataframe)."""
    return dataframe([c.name for c in columns], [column_pandas(c, pd) for c in columns], pd)


def dataframe(names, arrays, pd):
    """A DataFrame of the arrays, named; duplicate names are kept. pandas takes the arrays as
    they are (copy=False: no consolidation copy), so it views what column_pandas passed on."""
    if len(set(names)) == len(names):
        return pd.DataFrame(dict(zip(names, arrays)), copy=False)
    df = pd.DataFrame(dict(enumerate(arrays)), copy=False)
    df.columns = names
    return df
