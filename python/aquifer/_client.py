"""Client and Frame: the package's surface over libaquifer (aquifer.h).

Threads: libaquifer lets one thread at a time use a client (and its frames); a Client takes its
lock around every library call, so Python threads may share one. Lifetimes: a library frame
belongs to its client, and the arrays of Frame.to_numpy() and to_pandas() view the frame's
memory; each array keeps that frame alive, each frame keeps its client alive, and Client.close()
closes the library's client only once no frame of it is left, so no array ever points at freed
memory.
"""
import collections
import ctypes
import io
import os
import threading

import numpy as np

from . import _columns, _errors, _lib

Written = collections.namedtuple("Written", "copies wanted")
Written.__doc__ = ("What a put or rm reached: the fewest copies of any chunk, and how many "
                   "were wanted.")

_PARSE_OPTIONS = ("sep", "quote", "escape", "comment", "skip", "decimal", "header", "na",
                  "types", "fill", "strict", "encoding")


def _cstr(what, s):
    """s (str, bytes or os.PathLike) as NUL-free bytes; a NUL would cut the C string short."""
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogateescape")
    if not isinstance(s, bytes):
        raise TypeError(f"{what} must be str or bytes, not {type(s).__name__}")
    if b"\0" in s:
        code = _errors.AQ_EKEY if what == "key" else _errors.AQ_EINVAL
        raise _errors.error_for(code, f"{what} {s!r} holds a NUL byte")
    return s


def _str(b):
    return b.decode("utf-8", "surrogateescape") if b is not None else None


class _View:
    """Library-owned memory as numpy sees it: np.asarray(view) is a writable array over ptr
    whose base is this object, which holds the owner (a _FrameHandle) so the memory outlives
    the array. Writable because each owner's memory is handed out once (see Frame)."""

    __slots__ = ("__array_interface__", "owner")

    def __init__(self, ptr, n, dtype, owner):
        dtype = np.dtype(dtype)
        self.owner = owner
        self.__array_interface__ = {"data": (ptr or 0, False), "shape": (n,),
                                    "typestr": dtype.str, "version": 3}


def _addr(p):
    """The address a ctypes pointer holds (0 for NULL)."""
    return ctypes.cast(p, ctypes.c_void_p).value or 0


def _array(ptr, n, dtype, owner):
    """n values at ptr as a numpy array viewing them; a NULL pointer for values that should be
    there is the library breaking its word, never an empty array of the wrong length."""
    if n == 0:
        return np.empty(0, dtype=dtype)
    if not ptr:
        raise _errors.error_for(_errors.AQ_EPROTO, f"libaquifer gave no memory for {n} values")
    return np.asarray(_View(ptr, n, dtype, owner))


class _FrameHandle:
    """Owns one aquifer_frame*; closes it (under the client's lock) when the last reference goes."""

    def __init__(self, client, ptr):
        self.client, self.ptr = client, ptr
        client._frames += 1

    def __del__(self):
        c = self.client
        with c._lock:
            if self.ptr:
                c._lib.aquifer_frame_close(self.ptr)
                self.ptr = None
                c._frames -= 1
                c._maybe_close()


class Client:
    """A connection to an aquifer cluster (see aquifer.connect)."""

    def __init__(self, config=None):
        self._lib = _lib.lib()
        self._lock = threading.RLock()
        self._frames = 0
        self._closing = False
        h = ctypes.c_void_p()
        cfg = _cstr("config", config) if config is not None else None
        rc = self._lib.aquifer_open(cfg, ctypes.byref(h))
        self._h = h.value
        if rc < 0:
            msg = _str(self._lib.aquifer_errmsg(self._h)) if self._h else ""
            if self._h:
                self._lib.aquifer_close(self._h)
                self._h = None
            raise _errors.error_for(rc, msg)

    # ---- lifetime ----

    def close(self):
        """Closes the client; the library's client goes once no frame of it is left."""
        with self._lock:
            self._closing = True
            self._maybe_close()

    def _maybe_close(self):
        if self._closing and self._frames == 0 and self._h:
            self._lib.aquifer_close(self._h)
            self._h = None

    @property
    def closed(self):
        return self._closing

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()

    # ---- calls ----

    def _check(self, rc):
        """Raises the exception for rc < 0 with the library's sentence; the lock is held."""
        if rc < 0:
            raise _errors.error_for(rc, _str(self._lib.aquifer_errmsg(self._h)))
        return rc

    def _handle(self):
        if self._closing or not self._h:
            raise _errors.error_for(_errors.AQ_ECLOSED, "this aquifer client is closed")
        return self._h

    @property
    def nodes(self):
        """The config's nodes as (name, address) pairs."""
        with self._lock:
            h = self._handle()
            return [(_str(self._lib.aquifer_node_name(h, i)),
                     _str(self._lib.aquifer_node_address(h, i)))
                    for i in range(self._lib.aquifer_nnodes(h))]

    def put(self, key, data):
        """Stores data under key: bytes-like (bytes, bytearray, memoryview, a numpy array's
        buffer) or a binary file object (read from its position to its end). Returns
        Written(copies, wanted)."""
        k = _cstr("key", key)
        w = _lib.Written()
        if isinstance(data, (str, io.TextIOBase)):
            raise TypeError("put takes bytes or a binary file, not text (encode it, or open "
                            "the file with 'rb')")
        fd = _put_fd(data)
        with self._lock:
            h = self._handle()
            if fd is not None:
                self._check(self._lib.aquifer_put_fd(h, k, fd, ctypes.byref(w)))
                _sync_position(data, fd)
                return Written(w.copies, w.wanted)
            if hasattr(data, "read"):
                data = data.read()
            try:
                buf = np.frombuffer(data, dtype=np.uint8)
            except (TypeError, ValueError):
                buf = np.frombuffer(bytes(memoryview(data)), dtype=np.uint8)
            self._check(self._lib.aquifer_put(h, k, buf.ctypes.data, buf.nbytes,
                                              ctypes.byref(w)))
        return Written(w.copies, w.wanted)

    def get(self, key, file=None):
        """The value under key as bytes; with file (a binary file object with a descriptor) the
        value is written there instead and None is returned."""
        k = _cstr("key", key)
        with self._lock:
            h = self._handle()
            if file is not None:
                file.flush()
                fd = file.fileno()
                self._check(self._lib.aquifer_get_fd(h, k, fd))
                _sync_position(file, fd)
                return None
            p, n = ctypes.c_void_p(), ctypes.c_size_t()
            self._check(self._lib.aquifer_get(h, k, ctypes.byref(p), ctypes.byref(n)))
            try:
                return ctypes.string_at(p.value, n.value) if n.value else b""
            finally:
                self._lib.aquifer_free(p)

    def rm(self, key):
        """Removes key; NotFoundError when there is nothing. Returns Written(copies, wanted)."""
        k = _cstr("key", key)
        w = _lib.Written()
        with self._lock:
            self._check(self._lib.aquifer_rm(self._handle(), k, ctypes.byref(w)))
        return Written(w.copies, w.wanted)

    def stat(self, key):
        """A dict: key, size, version, digest (xxh3-128 hex as `xxhsum -H2` prints it), large,
        chunks, replicas (copies wanted) and copies (live nodes holding the newest copy)."""
        k = _cstr("key", key)
        st = _lib.Stat()
        with self._lock:
            self._check(self._lib.aquifer_stat_key(self._handle(), k, ctypes.byref(st)))
        return {"key": _str(k), "size": st.size, "version": st.version,
                "digest": bytes(st.digest).hex(), "large": bool(st.large), "chunks": st.chunks,
                "replicas": st.replicas, "copies": st.copies}

    def ls(self, prefix="", sizes=False):
        """The keys starting with prefix, in byte order; with sizes=True (key, size) pairs
        (size None when a large value's size could not be read)."""
        p = _cstr("prefix", prefix)
        it = ctypes.c_void_p()
        key, klen, size = ctypes.c_char_p(), ctypes.c_size_t(), ctypes.c_uint64()
        out = []
        with self._lock:
            self._check(self._lib.aquifer_list_open(self._handle(), p, ctypes.byref(it)))
            try:
                while self._check(self._lib.aquifer_list_next(it, ctypes.byref(key),
                                                              ctypes.byref(klen),
                                                              ctypes.byref(size))) == 1:
                    k = ctypes.string_at(key, klen.value).decode("utf-8", "surrogateescape")
                    out.append((k, None if size.value == 2**64 - 1 else size.value) if sizes
                               else k)
            finally:
                self._lib.aquifer_list_close(it)
        return out

    def put_many(self, items, inflight=64):
        """Stores many values at once, up to inflight in flight (the library's batch): items
        is a dict or an iterable of (key, bytes-like) pairs. Returns {key: Written}; when any
        fails, raises BatchError holding every failure and the others' results."""
        pairs = list(items.items()) if isinstance(items, dict) else list(items)
        keys = [_cstr("key", k) for k, _ in pairs]
        bufs = []
        for _, v in pairs:
            if isinstance(v, str):
                raise TypeError("put_many takes bytes-like values, not str (encode them first)")
            bufs.append(np.frombuffer(v, dtype=np.uint8))
        return self._batch(keys, bufs, inflight)

    def get_many(self, keys, inflight=64):
        """The values of many keys, fetched up to inflight at once: {key: bytes}; when any
        fails, raises BatchError holding every failure and the values that came."""
        return self._batch([_cstr("key", k) for k in keys], None, inflight)

    def _batch(self, keys, bufs, inflight):
        if not 0 < inflight <= 4096:
            raise ValueError(f"inflight must be 1 to 4096, not {inflight}")
        results, errors = {}, {}
        b = ctypes.c_void_p()
        r = _lib.Result()
        lib = self._lib
        with self._lock:
            self._check(lib.aquifer_batch_new(self._handle(), inflight, ctypes.byref(b)))
            try:
                for i, k in enumerate(keys):
                    if bufs is None:
                        rc = lib.aquifer_batch_get(b, k, i)
                    else:
                        rc = lib.aquifer_batch_put(b, k, bufs[i].ctypes.data, bufs[i].nbytes, i)
                    if rc < 0:
                        errors[_str(k)] = _errors.error_for(rc, _str(lib.aquifer_errmsg(self._h)))
                while lib.aquifer_batch_next(b, ctypes.byref(r)) == 1:
                    k = _str(keys[r.ud or 0])
                    if r.err < 0:
                        errors[k] = _errors.error_for(r.err, _str(r.errmsg))
                    elif bufs is None:
                        try:
                            results[k] = ctypes.string_at(r.data, r.len) if r.len else b""
                        finally:
                            lib.aquifer_free(r.data)
                    else:
                        results[k] = Written(r.written.copies, r.written.wanted)
            finally:
                lib.aquifer_batch_free(b)
        if errors:
            raise _errors.BatchError(errors, results)
        return results

    # ---- frames ----

    def frames(self):
        """The frames every live node holds, by name: a list of dicts (name, source,
        source_size, rows, ncols, chunks, repaired_rows)."""
        arr, n = ctypes.POINTER(_lib.FrameInfo)(), ctypes.c_size_t()
        with self._lock:
            self._check(self._lib.aquifer_frames(self._handle(), ctypes.byref(arr),
                                                 ctypes.byref(n)))
            try:
                return [{"name": _str(f.name), "source": _str(f.source),
                         "source_size": f.source_size, "rows": f.rows, "ncols": f.ncols,
                         "chunks": f.chunks, "repaired_rows": f.repaired_rows}
                        for f in arr[:n.value]]
            finally:
                self._lib.aquifer_frames_free(arr, n)

    def parse(self, path, name=None, **options):
        """Parses a CSV file (or several: a list; directories and globs as `aquifer parse`
        takes them) into a frame and returns it. name defaults to the first file's base name.
        options are the command's parse options: sep, quote, escape, comment, skip (int),
        decimal, header (True, False or "auto"), na (a list of spellings), types (a dict of
        column name or 1-based index to "int", "float", "time", "categorical" or "string"),
        fill, strict (bools) and encoding. The frame's .parse_info has the parse's report."""
        paths = [path] if isinstance(path, (str, bytes, os.PathLike)) else list(path)
        if not paths:
            raise ValueError("parse needs at least one path")
        cpaths = (ctypes.c_char_p * len(paths))(*[_cstr("path", p) for p in paths])
        opts = _parse_opts(name, options)
        res = _lib.ParseResult()
        with self._lock:
            self._check(self._lib.aquifer_parse(self._handle(), cpaths, len(paths),
                                                ctypes.byref(opts), ctypes.byref(res)))
        f = self.frame(_str(res.name))
        f.parse_info = {"rows": res.rows, "ncols": res.ncols, "chunks": res.chunks,
                        "repaired_rows": res.repaired_rows, "bytes": res.bytes,
                        "seconds": res.seconds}
        return f

    def frame(self, name):
        """Frame name (its metadata; columns are fetched when asked for)."""
        n = _cstr("frame name", name)
        h = ctypes.c_void_p()
        with self._lock:
            self._check(self._lib.aquifer_frame_open(self._handle(), n, ctypes.byref(h)))
            return Frame(self, _FrameHandle(self, h.value), _str(n))

    def frame_rm(self, name):
        """Removes frame name everywhere; NotFoundError when there is none."""
        n = _cstr("frame name", name)
        with self._lock:
            self._check(self._lib.aquifer_frame_rm(self._handle(), n))


def _put_fd(data):
    """The descriptor to stream data from, or None to put it as a buffer. A buffered reader's
    descriptor is used only when it is seekable (its read-ahead is undone by seeking to
    tell()); other buffered streams are read in Python, so no byte it holds is skipped."""
    if not hasattr(data, "fileno") or not hasattr(data, "read"):
        return None
    try:
        fd = data.fileno()
    except (OSError, io.UnsupportedOperation):
        return None
    if isinstance(data, io.FileIO):
        return fd
    try:
        if data.seekable():
            os.lseek(fd, data.tell(), os.SEEK_SET)
            return fd
    except (OSError, io.UnsupportedOperation):
        pass
    return None


def _sync_position(f, fd):
    """After the library read or wrote fd, moves the Python file object to the descriptor's
    position (its own idea of the position is stale)."""
    try:
        if not isinstance(f, io.FileIO) and f.seekable():
            f.seek(os.lseek(fd, 0, os.SEEK_CUR))
    except (OSError, io.UnsupportedOperation, ValueError):
        pass


def _parse_opts(name, options):
    unknown = set(options) - set(_PARSE_OPTIONS)
    if unknown:
        raise TypeError(f"parse got unknown options {sorted(unknown)}; it takes {_PARSE_OPTIONS}")
    o = _lib.ParseOpts()
    if name is not None:
        o.name = _cstr("frame name", name)
    for k in ("sep", "quote", "escape", "comment", "decimal", "encoding"):
        if options.get(k) is not None:
            setattr(o, k, _cstr(k, options[k]))
    if options.get("skip") is not None:
        skip = options["skip"]
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise ValueError(f"skip must be a count of lines, not {skip!r}")
        o.skip = str(skip).encode()
    header = options.get("header")
    if header is not None:
        o.header = {True: b"yes", False: b"no"}.get(header) if isinstance(header, bool) \
            else _cstr("header", header)
    na = options.get("na")
    if na is not None:
        items = [na] if isinstance(na, (str, bytes)) else list(na)
        items = [i.decode() if isinstance(i, bytes) else i for i in items]
        if any("," in i for i in items):
            raise ValueError("an na spelling cannot hold a comma (the list is comma-separated)")
        o.na = _cstr("na", ",".join(items))
    types = options.get("types")
    if types is not None:
        if isinstance(types, dict):
            for col in types:
                if "," in str(col):
                    raise ValueError(f"types: column {col!r} holds a comma; give its 1-based "
                                     "index instead")
            types = ",".join(f"{col}:{t}" for col, t in types.items())
        o.types = _cstr("types", types)
    o.fill = 1 if options.get("fill") else 0
    o.strict = 1 if options.get("strict") else 0
    return o


class Frame:
    """A parsed frame: .name, .nrows, .columns (names), .types (aquifer type names), and its
    columns as numpy arrays (to_numpy) or a pandas DataFrame (to_pandas). The column chunks are
    fetched from their replicas in parallel and decoded straight into arrays, no CSV between.

    Zero copy: each to_numpy, to_pandas or column call reads into memory of its own (the
    library frame the Frame was opened with, then a new one per call), and the arrays it returns
    are writable views of that memory, which is freed when the last of them goes. So no two
    calls share memory and an array is never changed by anything but its own user."""

    def __init__(self, client, handle, name):
        self._client, self._fh, self.name = client, handle, name
        lib, h = client._lib, handle.ptr
        self.nrows = lib.aquifer_frame_nrows(h)
        n = lib.aquifer_frame_ncols(h)
        self.columns = [_str(lib.aquifer_frame_col_name(h, j)) for j in range(n)]
        self.types = [_str(lib.aquifer_type_name(lib.aquifer_frame_col_type(h, j)))
                      for j in range(n)]
        self.parse_info = None

    def __repr__(self):
        return f"<aquifer.Frame {self.name!r}: {self.nrows} rows x {len(self.columns)} columns>"

    @property
    def ncols(self):
        return len(self.columns)

    def _data_handle(self):
        """A library frame no array views yet: the one this Frame was opened with, once; then a
        new one, which must describe the same frame (a frame parsed again under this name is
        another frame). The client's lock is held."""
        fh, self._fh = self._fh, None
        if fh is not None:
            return fh
        c = self._client
        h = ctypes.c_void_p()
        c._check(c._lib.aquifer_frame_open(c._handle(), _cstr("frame name", self.name),
                                           ctypes.byref(h)))
        fh = _FrameHandle(c, h.value)
        again = Frame(c, fh, self.name)
        if (again.nrows, again.columns, again.types) != (self.nrows, self.columns, self.types):
            raise _errors.error_for(_errors.AQ_ESTALE, f"frame {self.name} changed since it "
                                    "was opened (parsed again?): open it again")
        return fh

    def _index(self, col):
        if isinstance(col, int) and not isinstance(col, bool):
            if not 0 <= col < len(self.columns):
                raise IndexError(f"column {col} out of range (the frame has {len(self.columns)})")
            return col
        try:
            return self.columns.index(col)
        except ValueError:
            raise KeyError(f"no column {col!r} in frame {self.name}") from None

    def _select(self, columns):
        if columns is None:
            return list(range(len(self.columns)))
        if isinstance(columns, (str, int)):
            columns = [columns]
        return [self._index(c) for c in columns]

    def _fetch(self, fh, idx, structs=None):
        """Fetches columns idx of fh in parallel and returns them; the client's lock is held.
        structs: a list that gets each column's library struct (for _join_rows)."""
        c = self._client
        arr = (ctypes.c_uint32 * len(idx))(*idx)
        c._check(c._lib.aquifer_frame_fetch(fh.ptr, arr, len(idx)))
        out = []
        for j in idx:
            p = c._lib.aquifer_frame_column(fh.ptr, j)
            if not p:
                c._check(c._lib.aquifer_errcode(c._h) or _errors.AQ_EIO)
            out.append(_column(p.contents, fh))
            if structs is not None:
                structs.append(p.contents)
        return out

    def _columns(self, columns):
        """The selected columns, fetched in parallel into memory of their own."""
        idx = self._select(columns)
        with self._client._lock:
            return self._fetch(self._data_handle(), idx)

    def _convert(self, columns, convert):
        """{index: convert(column)} of the selected columns. String columns are fetched
        first; their conversion (building str objects, which holds the GIL) then runs while a
        thread fetches the other columns (the library releases the GIL, and the arrays being
        converted are not touched by the fetch, so the library's one-call-at-a-time rule holds)."""
        idx = self._select(columns)
        text = [j for j in idx if self.types[j] == "string"]
        rest = [j for j in idx if self.types[j] != "string"]
        c = self._client
        with c._lock:
            fh = self._data_handle()
            structs = []
            first = self._fetch(fh, text if text and rest else idx, structs)

        def joined_convert(col, s):
            # Outside the lock, beside the other columns' fetch: the join reads this column only.
            _join_rows(col, s)
            return convert(col)

        if not (text and rest):
            return dict(zip(idx, map(joined_convert, first, structs)))
        got = {}

        def fetch_rest():
            try:
                with c._lock:
                    got["cols"] = self._fetch(fh, rest)
            except BaseException as e:  # raised again by the caller below
                got["error"] = e

        t = threading.Thread(target=fetch_rest, name="aquifer-fetch", daemon=True)
        t.start()
        try:
            out = dict(zip(text, map(joined_convert, first, structs)))
        finally:
            t.join()
        if "error" in got:
            raise got["error"]
        out.update(zip(rest, map(convert, got["cols"])))
        return out

    def column(self, col):
        """One column (name or index) as an aquifer.Column: .type, .rows, .values, .na (bool
        mask or None), .levels, .offsets and .data, arrays over the library's decoded memory."""
        return self._columns([col])[0]

    def to_numpy(self, columns=None):
        """A dict of column name -> numpy array, all columns or the named ones (README
        "Python" has the type mapping)."""
        out = self._convert(columns, _columns.column_numpy)
        return {self.columns[j]: out[j] for j in self._select(columns)}

    def to_pandas(self, columns=None):
        """A pandas DataFrame of all columns or the named ones (README "Python" has the type
        mapping)."""
        import pandas as pd

        out = self._convert(columns, lambda col: _columns.column_pandas(col, pd))
        idx = self._select(columns)
        return _columns.dataframe([self.columns[j] for j in idx], [out[j] for j in idx], pd)


_VALUE_DTYPES = {"int": np.int64, "float": np.float64, "time": np.int64, "categorical": np.int32}


def _column(s, owner):
    rows = s.rows
    kind = _str(_lib.lib().aquifer_type_name(s.type))
    na = None
    if s.na_count:
        bitmap = _array(_addr(s.na), (rows + 7) // 8, np.uint8, owner)
        na = _columns.na_from_bitmap(bitmap, rows)
    col = _columns.Column(_str(s.name), kind, rows, na=na)
    if kind in _VALUE_DTYPES:
        col.values = _array(s.values, rows, _VALUE_DTYPES[kind], owner)
    if kind == "categorical":
        col.levels = [_str(b) for b in s.levels[:s.nlevels]] if s.nlevels else []
    if kind == "string":
        col.offsets = _array(_addr(s.offsets), rows + 1, np.uint64, owner)
        col.data = _array(s.bytes, int(col.offsets[-1]), np.uint8, owner)
    return col


def _join_rows(col, s):
    """A string column's rows joined with NUL by the library (col.joined), for decode_strings;
    s is its library struct. Other columns, and one row or none, are left as they are."""
    if col.type != "string" or col.rows < 2:
        return
    joined = np.empty(int(col.offsets[-1] - col.offsets[0]) + col.rows - 1, dtype=np.uint8)
    err = _lib.lib().aquifer_column_join(ctypes.byref(s), b"\0", joined.ctypes.data, joined.size)
    if err:
        raise _errors.error_for(err, f"column {col.name}: joining its rows failed")
    col.joined = joined
