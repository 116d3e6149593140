"""What Frame.to_pandas() must equal: pandas.read_csv of the same file, brought to the package's
documented type mapping (README "Python"). Used by test_frames.py and test/bench/to_pandas_bench.

read_csv is told aquifer's reading rules that differ from its defaults: missing values are
only empty fields and NA (`keep_default_na=False, na_values=["", "NA"]`), decimals are read
exactly (`float_precision="round_trip"`), text and categorical columns are read as text
(`dtype=str`, so `007` stays `007`) and bytes that are not UTF-8 are kept (surrogateescape).
Then per aquifer type: int with a missing value -> "Int64"; time -> datetime64 (ns under
pandas 1.x); categorical -> category (categories sorted); none -> float64 NaN.
"""
import pandas as pd


def expected(path, frame, **read_csv_args):
    """The DataFrame to_pandas() of frame (parsed from path) must equal."""
    text = [n for n, t in zip(frame.columns, frame.types) if t in ("categorical", "string")]
    args = dict(keep_default_na=False, na_values=["", "NA"], float_precision="round_trip",
                low_memory=False, encoding_errors="surrogateescape")
    args.update(read_csv_args)
    if args.get("header", "infer") is None:
        args["names"] = frame.columns
    if text:
        args["dtype"] = {n: str for n in text}
    df = pd.read_csv(path, **args)
    # aquifer's names: blanks around a header name dropped, C1.. without a header.
    df.columns = frame.columns
    for name, kind in zip(frame.columns, frame.types):
        col = df[name]
        if kind == "int" and col.isna().any():
            df[name] = col.astype("Int64")
        elif kind == "int":
            df[name] = col.astype("int64")
        elif kind == "float":
            df[name] = col.astype("float64")
        elif kind == "time":
            df[name] = pd.to_datetime(col)
        elif kind == "categorical":
            df[name] = col.astype("category")
            levels = df[name].cat.categories
            # bytewise order, as aquifer keeps its levels
            df[name] = df[name].cat.reorder_categories(
                sorted(levels, key=lambda s: s.encode("utf-8", "surrogateescape")))
        elif kind == "none":
            df[name] = col.astype("float64")
    return df
