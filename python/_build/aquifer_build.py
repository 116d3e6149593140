"""A PEP 517 build backend for the pure-Python package `aquifer`, with no dependencies.

Why not setuptools: pip builds in an isolated environment and would fetch setuptools from a
registry, so an offline install would fail. A pure-Python wheel is a zip file with three
metadata files (PEP 427), which the standard library writes as well as setuptools does.
Only the package directory `aquifer/` goes in; the metadata comes from pyproject.toml.
"""
import ast
import base64
import hashlib
import io
import os
import tarfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11: read the few fields this file needs by hand
    tomllib = None

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "aquifer"
# Fixed timestamp inside archives, so builds of the same tree give the same bytes.
EPOCH = (2020, 1, 1, 0, 0, 0)


def _project():
    path = os.path.join(HERE, "pyproject.toml")
    if tomllib is not None:
        with open(path, "rb") as f:
            return tomllib.load(f)["project"]
    proj, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "project" and "=" in line:
                k, v = (s.strip() for s in line.split("=", 1))
                proj[k] = ast.literal_eval(v)  # a string or a list of strings
    return proj


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}"]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    return p["name"], p["version"], "\n".join(lines) + "\n"


def _sources():
    """(archive name, path) of every file of the package, sorted (no caches)."""
    out = []
    for root, dirs, files in os.walk(os.path.join(HERE, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(root, f)
            out.append((os.path.relpath(path, HERE).replace(os.sep, "/"), path))
    return out


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _wheel(wheel_directory, editable):
    name, version, meta = _metadata()
    dist = f"{name}-{version}.dist-info"
    fname = f"{name}-{version}-py3-none-any.whl"
    files = []
    if editable:
        # A .pth file puts this source tree on sys.path (PEP 660's simplest form).
        files.append((f"__editable__.{name}.pth", (HERE + "\n").encode()))
    else:
        for arc, path in _sources():
            with open(path, "rb") as f:
                files.append((arc, f.read()))
    files.append((f"{dist}/METADATA", meta.encode()))
    files.append((f"{dist}/WHEEL", b"Wheel-Version: 1.0\nGenerator: aquifer_build\n"
                  b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in files)
    record += f"{dist}/RECORD,,\n"
    files.append((f"{dist}/RECORD", record.encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, fname), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            info = zipfile.ZipInfo(arc, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return fname


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    name, version, meta = _metadata()
    base = f"{name}-{version}"
    fname = f"{base}.tar.gz"
    extra = ["pyproject.toml", "_build/aquifer_build.py", "README.md"]
    paths = _sources() + [(a, os.path.join(HERE, a)) for a in extra
                          if os.path.exists(os.path.join(HERE, a))]
    with tarfile.open(os.path.join(sdist_directory, fname), "w:gz") as t:
        for arc, path in paths:
            t.add(path, arcname=f"{base}/{arc}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = meta.encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return fname
