"""Finding and loading libaquifer, and the ctypes declarations of aquifer.h.

Where the library is looked for, first found wins:
  1. $AQUIFER_LIB: the path of the library file itself;
  2. $AQUIFER_LIB_DIR: a directory, such as a build tree (its lib/, cli/ and top level);
  3. the build tree beside this source tree (python/../build), when the package is used from it;
  4. the system's library path (after `cmake --install` and ldconfig: libaquifer.so.N).
A library whose major version differs from the one this package was written for is refused,
since the structures below would not match it.
"""
import ctypes
import ctypes.util
import functools
import glob
import os
from ctypes import (POINTER, c_char_p, c_double, c_int, c_size_t, c_uint, c_uint8, c_uint32,
                    c_uint64, c_void_p)

from ._errors import AQ_ECONFIG, error_for

MAJOR = 0
_SONAMES = [f"libaquifer.so.{MAJOR}", "libaquifer.so"]
_SUBDIRS = ["lib", "cli", ".", "bin"]


class Written(ctypes.Structure):
    _fields_ = [("copies", c_uint), ("wanted", c_uint)]


class Stat(ctypes.Structure):
    _fields_ = [("size", c_uint64), ("version", c_uint64), ("digest", c_uint8 * 16),
                ("large", c_int), ("chunks", c_uint32), ("replicas", c_uint), ("copies", c_uint)]


class FrameInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("source", c_char_p), ("source_size", c_uint64),
                ("rows", c_uint64), ("ncols", c_uint32), ("chunks", c_uint32),
                ("repaired_rows", c_uint64)]


class ParseOpts(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("sep", c_char_p), ("header", c_char_p), ("na", c_char_p),
                ("types", c_char_p), ("encoding", c_char_p), ("quote", c_char_p),
                ("escape", c_char_p), ("comment", c_char_p), ("skip", c_char_p),
                ("decimal", c_char_p), ("fill", c_int), ("strict", c_int)]


class ParseResult(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 256), ("rows", c_uint64), ("ncols", c_uint32),
                ("chunks", c_uint32), ("repaired_rows", c_uint64), ("bytes", c_uint64),
                ("seconds", c_double)]


class ColumnStruct(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("type", c_int), ("rows", c_uint64),
                ("na", POINTER(c_uint8)), ("na_count", c_uint64), ("values", c_void_p),
                ("nlevels", c_uint32), ("levels", POINTER(c_char_p)),
                ("offsets", POINTER(c_uint64)), ("bytes", c_void_p)]


class Result(ctypes.Structure):
    _fields_ = [("op", c_int), ("ud", c_void_p), ("key", c_char_p), ("err", c_int),
                ("errmsg", c_char_p), ("written", Written), ("data", c_void_p), ("len", c_size_t)]


# name: (restype, argtypes). Pointers to handles are plain void pointers.
_PROTOS = {
    "aquifer_version": (c_char_p, []),
    "aquifer_strerror": (c_char_p, [c_int]),
    "aquifer_errname": (c_char_p, [c_int]),
    "aquifer_open": (c_int, [c_char_p, POINTER(c_void_p)]),
    "aquifer_close": (None, [c_void_p]),
    "aquifer_errmsg": (c_char_p, [c_void_p]),
    "aquifer_errcode": (c_int, [c_void_p]),
    "aquifer_nnodes": (c_size_t, [c_void_p]),
    "aquifer_node_name": (c_char_p, [c_void_p, c_size_t]),
    "aquifer_node_address": (c_char_p, [c_void_p, c_size_t]),
    "aquifer_put": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t, POINTER(Written)]),
    "aquifer_put_fd": (c_int, [c_void_p, c_char_p, c_int, POINTER(Written)]),
    "aquifer_get": (c_int, [c_void_p, c_char_p, POINTER(c_void_p), POINTER(c_size_t)]),
    "aquifer_get_fd": (c_int, [c_void_p, c_char_p, c_int]),
    "aquifer_rm": (c_int, [c_void_p, c_char_p, POINTER(Written)]),
    "aquifer_free": (None, [c_void_p]),
    "aquifer_stat_key": (c_int, [c_void_p, c_char_p, POINTER(Stat)]),
    "aquifer_list_open": (c_int, [c_void_p, c_char_p, POINTER(c_void_p)]),
    "aquifer_list_next": (c_int, [c_void_p, POINTER(c_char_p), POINTER(c_size_t),
                                  POINTER(c_uint64)]),
    "aquifer_list_close": (None, [c_void_p]),
    "aquifer_type_name": (c_char_p, [c_int]),
    "aquifer_frames": (c_int, [c_void_p, POINTER(POINTER(FrameInfo)), POINTER(c_size_t)]),
    "aquifer_frames_free": (None, [POINTER(FrameInfo), c_size_t]),
    "aquifer_parse": (c_int, [c_void_p, POINTER(c_char_p), c_size_t, POINTER(ParseOpts),
                              POINTER(ParseResult)]),
    "aquifer_frame_rm": (c_int, [c_void_p, c_char_p]),
    "aquifer_frame_open": (c_int, [c_void_p, c_char_p, POINTER(c_void_p)]),
    "aquifer_frame_close": (None, [c_void_p]),
    "aquifer_frame_nrows": (c_uint64, [c_void_p]),
    "aquifer_frame_ncols": (c_uint32, [c_void_p]),
    "aquifer_frame_col_name": (c_char_p, [c_void_p, c_uint32]),
    "aquifer_frame_col_type": (c_int, [c_void_p, c_uint32]),
    "aquifer_frame_fetch": (c_int, [c_void_p, POINTER(c_uint32), c_size_t]),
    "aquifer_frame_column": (POINTER(ColumnStruct), [c_void_p, c_uint32]),
    "aquifer_column_join": (c_int, [POINTER(ColumnStruct), ctypes.c_char, c_void_p, c_size_t]),
    "aquifer_batch_new": (c_int, [c_void_p, c_uint, POINTER(c_void_p)]),
    "aquifer_batch_put": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t, c_void_p]),
    "aquifer_batch_get": (c_int, [c_void_p, c_char_p, c_void_p]),
    "aquifer_batch_next": (c_int, [c_void_p, POINTER(Result)]),
    "aquifer_batch_free": (None, [c_void_p]),
}


def _candidates():
    env = os.environ.get("AQUIFER_LIB")
    if env:
        return [env]
    dirs = []
    if os.environ.get("AQUIFER_LIB_DIR"):
        dirs.append(os.environ["AQUIFER_LIB_DIR"])
    # python/aquifer/_lib.py -> the source tree's build/ (only when used from the source tree).
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(src, "CMakeLists.txt")):
        dirs.append(os.path.join(src, "build"))
    out = []
    for d in dirs:
        for sub in _SUBDIRS:
            for so in _SONAMES:
                out += sorted(glob.glob(os.path.join(d, sub, so)))
    found = ctypes.util.find_library("aquifer")
    return out + ([found] if found else []) + _SONAMES


def _missing(path, name):
    def call(*args):
        raise error_for(AQ_ECONFIG, f"{path} has no {name}: a libaquifer older than this package")
    return call


def _mapped_file(name):
    """The file the dynamic loader mapped for name (a soname resolves through the library
    path), from /proc/self/maps; name itself where that cannot be read."""
    base = os.path.basename(name).split(".so")[0] + ".so"
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(None, 5)[-1].strip()
                if os.path.basename(path).startswith(base):
                    return path
    except OSError:
        pass
    return name


def load():
    """The loaded library with its prototypes set; Error(AQ_ECONFIG) saying where it looked
    when it is nowhere."""
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        if not hasattr(lib, "aquifer_version"):
            raise error_for(AQ_ECONFIG, f"{path} is not libaquifer (no aquifer_version)")
        for name, (res, args) in _PROTOS.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                # A call this library lacks fails when made, saying so; the rest still work.
                setattr(lib, name, _missing(path, name))
                continue
            fn.restype, fn.argtypes = res, args
        version = lib.aquifer_version().decode()
        if int(version.split(".")[0]) != MAJOR:
            raise error_for(AQ_ECONFIG, f"{path} is libaquifer {version}; this package needs "
                        f"{MAJOR}.x")
        lib.path = _mapped_file(path)
        return lib
    raise error_for(AQ_ECONFIG, "libaquifer not found; set AQUIFER_LIB to the library file or "
                "AQUIFER_LIB_DIR to the build tree (tried: " + "; ".join(tried) + ")")


@functools.lru_cache(maxsize=None)
def lib():
    """The library, loaded on first use (so importing the package never fails for lack of it)."""
    return load()
