"""pytest fixtures: a private aquifer cluster on free ports, started by the tests and always torn
down.

Needs AQ_BUILD (a build tree with bin/aquifer and bin/aquiferd, as ctest sets it); the package is
imported from this source tree, and libaquifer is found in AQ_BUILD (see aquifer/_lib.py). Like
test/integration/lib.sh: every node carries the cluster's private directory on its command line,
so teardown finds and kills exactly the processes this session started, even after a failure.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

sys.path.insert(0, os.path.join(SRC, "test", "lib"))
import free_ports as _free_ports  # noqa: E402  (the one port finder of every test)

BUILD = os.environ.get("AQ_BUILD", os.path.join(SRC, "build"))
DATA = os.environ.get("AQ_DATA_DIR", os.path.join(SRC, "test", "data", "h2o-smalldata"))
os.environ.setdefault("AQUIFER_LIB_DIR", BUILD)


def free_ports(n):
    """n distinct ports free for both UDP and TCP on 127.0.0.1: test/lib/free_ports.py's."""
    return _free_ports.free_ports(n)


def _our_pids(tag):
    """Pids of processes whose command line holds tag (the cluster's private directory)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if tag.encode() in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


class Cluster:
    """A cluster of `nodes` nodes on 127.0.0.1 with its config file at .conf."""

    def __init__(self, nodes=3, replicas=2):
        self.aq = os.path.join(BUILD, "bin", "aquifer")
        if not os.access(self.aq, os.X_OK):
            raise RuntimeError(f"no {self.aq}: set AQ_BUILD to a built tree")
        self.dir = tempfile.mkdtemp(prefix="aq-py.")
        self.conf = os.path.join(self.dir, "cluster.conf")
        lines = ["[cluster]", f"name = py-{os.getpid()}", f"replicas = {replicas}",
                 f"run_dir = {self.dir}/run", "heartbeat = 200ms"]
        for i, p in enumerate(free_ports(nodes), 1):
            lines += ["", f"[node n{i}]", f"address = 127.0.0.1:{p}", "memory_max = 2GiB"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def run(self, *args, check=True):
        """Runs the aquifer command against this cluster; returns the CompletedProcess."""
        r = subprocess.run([self.aq, "-c", self.conf, *args], capture_output=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"aquifer {' '.join(args)}: exit {r.returncode}: "
                               f"{r.stderr.decode(errors='replace')}")
        return r

    def up(self):
        self.run("cluster", "up")

    def down(self):
        try:
            self.run("cluster", "down", check=False)
        except subprocess.TimeoutExpired:
            pass
        tag = self.dir + "/"
        for sig in (signal.SIGCONT, signal.SIGKILL):
            for pid in _our_pids(tag):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        for _ in range(100):
            if not _our_pids(tag):
                break
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    try:
        c.up()
        yield c
    finally:
        c.down()


@pytest.fixture(scope="session")
def client(cluster):
    import aquifer

    with aquifer.connect(cluster.conf) as cl:
        yield cl
