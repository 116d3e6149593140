"""Frames through the package against a real cluster: the H2O smalldata files parsed by aquifer
and read back with Frame.to_pandas() equal pandas.read_csv of the same files under the documented
type mapping (pandas_like.py); to_numpy, the parse options, and failures as exceptions."""
import os
import subprocess
import sys

import numpy as np
import pandas.testing as pdt
import pytest

import aquifer
from aquifer import _errors
from conftest import DATA, SRC
from pandas_like import expected

# file -> read_csv arguments that say how the file is laid out (aquifer guesses these).
SMALLDATA = {
    "allyears2k_headers.csv": {},
    "covtype.20k.data": {"header": None},
    "iris_wheader.csv": {},
    "prostate.csv": {},
    "test_time.csv": {},
    "is_NA.csv": {"header": None, "sep": " "},
    "test_quote.csv": {"header": None},
    "test_parse_mix.csv": {"sep": "\x01", "comment": "#"},
}


@pytest.mark.parametrize("name", sorted(SMALLDATA))
def test_smalldata_equals_read_csv(client, name):
    path = os.path.join(DATA, name)
    fname = "sd-" + name.replace(".", "-")
    f = client.parse(path, name=fname)
    try:
        assert f.parse_info["rows"] == f.nrows
        df = f.to_pandas()
        want = expected(path, f, **SMALLDATA[name])
        assert f.nrows == len(want) and f.columns == list(want.columns)
        pdt.assert_frame_equal(df, want)
    finally:
        client.frame_rm(fname)


def test_multi_chunk_frame_every_type(client, tmp_path):
    """An airline-like file of several 4 MiB pieces: int, float, time, categorical and string
    columns with missing values, levels merged across chunks."""
    path = str(tmp_path / "air.csv")
    subprocess.run([sys.executable, os.path.join(SRC, "test", "bench", "gen_airline.py"), path,
                    "12"], check=True, timeout=120)
    f = client.parse(path, name="air12")
    try:
        assert f.parse_info["chunks"] >= 3
        assert set(f.types) >= {"int", "float", "time", "categorical", "string"}
        df = f.to_pandas()
        pdt.assert_frame_equal(df, expected(path, f))
        # to_numpy: the same values; missing rows masked; stored values in plain arrays.
        arrays = f.to_numpy()
        assert list(arrays) == f.columns
        for name, kind in zip(f.columns, f.types):
            a, col = arrays[name], df[name]
            assert len(a) == f.nrows
            na = col.isna().to_numpy()
            if np.ma.isMaskedArray(a):
                assert (a.mask == na).all(), name
            else:
                assert not na.any(), name
            if kind == "time":
                assert a.dtype == np.dtype("datetime64[ms]")
                got = np.ma.getdata(a)[~na].astype("datetime64[ns]")
                assert (got == col.to_numpy()[~na]).all(), name
            elif kind in ("int", "float"):
                assert (np.ma.getdata(a)[~na] == col.to_numpy()[~na].astype(a.dtype)).all(), name
            else:
                assert list(np.ma.getdata(a)[~na]) == list(col[~na].astype(object)), name
    finally:
        client.frame_rm("air12")


def test_arrays_outlive_frame_and_client(cluster, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i * 0.5}\n" for i in range(50_000)))
    c = aquifer.connect(cluster.conf)
    f = c.parse(str(path), name="outlive")
    arrays = f.to_numpy()
    df = f.to_pandas()
    # Zero copy: the int and float arrays, in numpy and in the DataFrame, view library memory.
    from aquifer._client import _View

    def views_library(a):
        while a is not None and not isinstance(a, _View):
            a = getattr(a, "base", None)
        return a is not None

    assert views_library(arrays["a"]) and views_library(arrays["b"])
    assert views_library(df["a"].to_numpy()) and views_library(df["b"].to_numpy())
    # Each call has memory of its own: writing one call's arrays changes nothing elsewhere.
    arrays["a"][0] = -1
    df.loc[1, "b"] = -2.0
    again = f.to_numpy()
    assert again["a"][0] == 0 and again["b"][1] == 0.5 and df["a"][0] == 0
    c.frame_rm("outlive")
    del f, again
    c.close()
    # The arrays view the library's memory, which stays until they go.
    assert (arrays["a"][1:] == np.arange(1, 50_000)).all()
    assert (arrays["b"] == np.arange(50_000) * 0.5).all()
    assert (df["a"] == np.arange(50_000)).all() and df["b"][1] == -2.0


def test_frames_list_and_rm(client, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("x,y\n1,a\n2,b\n")
    f = client.parse(str(path))
    assert f.columns == ["x", "y"] and f.types == ["int", "categorical"] and f.nrows == 2
    info = {i["name"]: i for i in client.frames()}
    assert info["small"]["rows"] == 2 and info["small"]["ncols"] == 2
    assert info["small"]["source"] == "small.csv"
    client.frame_rm("small")
    assert "small" not in {i["name"] for i in client.frames()}
    with pytest.raises(aquifer.NotFoundError) as e:
        client.frame_rm("small")
    assert e.value.code == _errors.AQ_ENOTFOUND
    with pytest.raises(aquifer.NotFoundError):
        client.frame("small")


def test_parse_options(client, tmp_path):
    path = tmp_path / "opts.txt"
    path.write_text("title line\nid;code;v\n1;007;1,5\n2;-;-\n3;010;2,25\n")
    f = client.parse(str(path), name="opts", sep=";", skip=1, decimal=",", na=["-"],
                     types={"id": "string"})
    try:
        assert f.types == ["string", "categorical", "float"]
        df = f.to_pandas()
        assert list(df["id"]) == ["1", "2", "3"]
        assert df["code"].isna().tolist() == [False, True, False]
        assert list(df["code"].cat.categories) == ["007", "010"]
        assert df["v"].isna().tolist() == [False, True, False]
        assert df["v"][0] == 1.5 and df["v"][2] == 2.25
    finally:
        client.frame_rm("opts")
    with pytest.raises(TypeError):
        client.parse(str(path), name="x", separator=";")


def test_parse_failures(client, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a\n1\n")
    client.parse(str(path), name="dup")
    try:
        with pytest.raises(aquifer.ExistsError) as e:
            client.parse(str(path), name="dup")
        assert e.value.code == _errors.AQ_EEXIST and "dup" in e.value.message
    finally:
        client.frame_rm("dup")
    missing = str(tmp_path / "missing.csv")
    with pytest.raises(aquifer.Error) as e:
        client.parse(missing, name="missing")
    assert missing in e.value.message or "missing.csv" in e.value.message
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n4,5\n")
    with pytest.raises(aquifer.ParseError) as e:
        client.parse(str(ragged), name="ragged", strict=True)
    assert e.value.code == _errors.AQ_EPARSE and "line 3" in e.value.message
    assert "ragged" not in {i["name"] for i in client.frames()}
