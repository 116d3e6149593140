"""`pip install ./python` works without a network: the package's build backend needs nothing
from a registry. Debian marks its Python as externally managed, so the install goes into a venv
that sees Debian's numpy and pandas (--system-site-packages), as the README says. The installed
package then finds libaquifer in a build tree (AQUIFER_LIB_DIR) and installed by cmake --install
(the loader's path), and says how to point at it when it is nowhere."""
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
        # Installed: `cmake --install` puts the library under a prefix; the loader's path
        # (here LD_LIBRARY_PATH, after ldconfig the system's) is then where it is found.
        prefix = os.path.join(d, "prefix")
        r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        env.pop("AQUIFER_LIB_DIR")
        env["LD_LIBRARY_PATH"] = os.path.join(prefix, "lib")
        r = subprocess.run([py, "-c", "import aquifer; print(aquifer.library_path())"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().startswith(os.path.join(prefix, "lib", "libaquifer.so")), r.stdout
        # Nowhere to be found: the error says how to point at it.
        env["LD_LIBRARY_PATH"] = ""
        env["AQUIFER_LIB"] = os.path.join(d, "no-such-libaquifer.so")
        r = subprocess.run([py, "-c", "import aquifer\ntry:\n aquifer.library_path()\n"
                            "except aquifer.ConfigError as e: print(e.name, e.message)"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=60)
        assert r.stdout.startswith("AQ_ECONFIG") and "AQUIFER_LIB" in r.stdout, r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)
