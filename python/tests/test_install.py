"""`pip install ./python` works without a network: the package's build backend needs nothing
from a registry. Debian marks its Python as externally managed, so the install goes into a venv
that sees Debian's numpy and pandas (--system-site-packages), as the README says."""
import os
import shutil
import subprocess
import sys
import tempfile

from conftest import BUILD, SRC


def _no_network():
    """A command prefix that runs without a network: unshare -n where this user may make a
    network namespace; else pip's --no-index alone keeps it off every registry."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"],
                                                  capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def test_offline_install_into_venv():
    d = tempfile.mkdtemp(prefix="aq-py-install.")
    try:
        venv = os.path.join(d, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True,
                       capture_output=True, timeout=120)
        py = os.path.join(venv, "bin", "python")
        r = subprocess.run(_no_network() + [py, "-m", "pip", "install", "--no-index",
                                            "--no-cache-dir", os.path.join(SRC, "python")],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        # Imported from the venv (not this tree), the library found through AQUIFER_LIB_DIR.
        env = dict(os.environ, AQUIFER_LIB_DIR=BUILD)
        env.pop("PYTHONPATH", None)
        env.pop("AQUIFER_LIB", None)
        r = subprocess.run([py, "-c", "import aquifer; print(aquifer.__file__); "
                            "print(aquifer.library_path())"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        where, lib = r.stdout.split("\n")[:2]
        assert where.startswith(venv), where
        assert os.path.realpath(lib).startswith(os.path.realpath(BUILD)), lib
        # Without any hint and outside the tree the library is not found, and the error says
        # how to point at it.
        env.pop("AQUIFER_LIB_DIR")
        env["LD_LIBRARY_PATH"] = ""
        r = subprocess.run([py, "-c", "import aquifer\ntry:\n aquifer.library_path()\n"
                            "except aquifer.ConfigError as e: print(e.name, e.message)"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=60)
        if "AQ_ECONFIG" in r.stdout:
            assert "AQUIFER_LIB" in r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)
