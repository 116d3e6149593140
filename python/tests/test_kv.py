"""Keys and values through the package against a real cluster (conftest.py starts it): put/get
round trips from 0 B to 20 MiB, stat, ls, rm, and every failure as an exception with its code."""
import io
import os
import threading

import pytest

import aquifer
from aquifer import _errors

SIZES = [0, 1, 4095, 4096, 4 * 2**20 - 1, 4 * 2**20, 4 * 2**20 + 1, 20 * 2**20]


@pytest.mark.parametrize("size", SIZES)
def test_put_get_round_trip(client, size):
    data = os.urandom(size)
    key = f"rt/{size}"
    w = client.put(key, data)
    assert w.copies == w.wanted == 2
    assert client.get(key) == data
    st = client.stat(key)
    assert st["size"] == size and st["copies"] == 2 and st["replicas"] == 2
    assert st["large"] == (size > 4 * 2**20) and len(st["digest"]) == 32


def test_put_from_buffers_and_files(client, tmp_path):
    data = os.urandom(5 * 2**20 + 17)
    client.put("buf/bytearray", bytearray(data))
    client.put("buf/memoryview", memoryview(data)[17:])
    assert client.get("buf/bytearray") == data
    assert client.get("buf/memoryview") == data[17:]
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:  # buffered: the read-ahead must not be skipped
        f.read(3)
        client.put("file/buffered", f)
        assert f.read() == b""  # the file was read to its end
    with open(path, "rb", buffering=0) as f:
        client.put("file/raw", f)
    client.put("file/bytesio", io.BytesIO(data))
    assert client.get("file/buffered") == data[3:]
    assert client.get("file/raw") == data
    assert client.get("file/bytesio") == data
    out = tmp_path / "out.bin"
    with open(out, "wb") as f:
        f.write(b"head")
        assert client.get("file/raw", f) is None
        f.write(b"tail")
    assert out.read_bytes() == b"head" + data + b"tail"
    with pytest.raises(TypeError):
        client.put("file/str", "text is not bytes")
    with open(path, "r", encoding="latin-1") as f, pytest.raises(TypeError):
        client.put("file/text", f)


def test_overwrite_and_rm(client):
    client.put("ow/k", b"one")
    client.put("ow/k", b"two, longer")
    assert client.get("ow/k") == b"two, longer"
    w = client.rm("ow/k")
    assert w.copies == w.wanted == 2
    with pytest.raises(aquifer.NotFoundError) as e:
        client.get("ow/k")
    assert e.value.code == _errors.AQ_ENOTFOUND and e.value.name == "AQ_ENOTFOUND"
    assert "ow/k" in e.value.message
    with pytest.raises(aquifer.NotFoundError):
        client.rm("ow/k")
    with pytest.raises(aquifer.NotFoundError):
        client.stat("ow/k")


def test_ls(client):
    keys = ["ls/b", "ls/a", "ls/c/d", "ls/\u00e9t\u00e9"]
    for i, k in enumerate(keys):
        client.put(k, b"x" * i)
    client.put("lt/other", b"")
    assert client.ls("ls/") == sorted(keys, key=lambda k: k.encode())
    assert client.ls("ls/", sizes=True) == sorted(((k, i) for i, k in enumerate(keys)),
                                                  key=lambda p: p[0].encode())
    assert client.ls("ls/none/") == []
    assert "lt/other" in client.ls()


@pytest.mark.parametrize("key", ["", "k" * 256, "a\nb"])
def test_bad_keys(client, key):
    with pytest.raises(aquifer.InvalidError) as e:
        client.put(key, b"v")
    assert e.value.code == _errors.AQ_EKEY


def test_nul_in_key_is_refused_not_cut(client):
    client.put("nul", b"must stay")
    with pytest.raises(aquifer.InvalidError) as e:
        client.put("nul\0tail", b"other")
    assert e.value.code == _errors.AQ_EKEY
    assert client.get("nul") == b"must stay"


def test_threads_share_a_client(client):
    errors = []

    def work(t):
        try:
            for i in range(20):
                v = os.urandom(1000 + i)
                client.put(f"thr/{t}/{i}", v)
                assert client.get(f"thr/{t}/{i}") == v
        except Exception as e:  # reported below with the thread that failed
            errors.append((t, e))

    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors
    assert len(client.ls("thr/")) == 80


def test_closed_client(cluster):
    c = aquifer.connect(cluster.conf)
    c.close()
    with pytest.raises(aquifer.Error) as e:
        c.get("anything")
    assert e.value.code == _errors.AQ_ECLOSED


def test_missing_config(tmp_path):
    path = str(tmp_path / "nope.conf")
    with pytest.raises(aquifer.Error) as e:
        aquifer.connect(path).get("k")
    assert path in e.value.message


def test_unreachable_cluster_names_a_node(tmp_path):
    """Nodes that are not running: the error is the cluster's being unreachable, naming a node,
    never silence or a hang."""
    from conftest import free_ports

    ports = free_ports(2)
    conf = tmp_path / "dead.conf"
    conf.write_text("[cluster]\nname = dead\nreplicas = 2\n\n" +
                    "".join(f"[node d{i}]\naddress = 127.0.0.1:{p}\n\n"
                            for i, p in enumerate(ports)))
    with aquifer.connect(str(conf)) as c:
        with pytest.raises(aquifer.UnavailableError) as e:
            c.get("k")
    assert e.value.code == _errors.AQ_EUNAVAIL
    assert any(f"127.0.0.1:{p}" in e.value.message or f"d{i}" in e.value.message
               for i, p in enumerate(ports)), e.value.message


def test_put_many_get_many(client):
    values = {f"many/{i:04d}": os.urandom(4096) for i in range(500)}
    written = client.put_many(values, inflight=50)
    assert set(written) == set(values) and all(w.copies == w.wanted == 2 for w in written.values())
    assert client.get_many(list(values), inflight=50) == values
    assert client.get("many/0123") == values["many/0123"]


def test_batches_report_every_failure(client):
    client.put("bf/a", b"A")
    client.put("bf/b", b"")
    with pytest.raises(aquifer.BatchError) as e:
        client.get_many(["bf/a", "bf/missing", "bf/b"])
    assert set(e.value.errors) == {"bf/missing"}
    assert isinstance(e.value.errors["bf/missing"], aquifer.NotFoundError)
    assert e.value.results == {"bf/a": b"A", "bf/b": b""}
    assert e.value.code == _errors.AQ_ENOTFOUND and "bf/missing" in e.value.message
    with pytest.raises(aquifer.BatchError) as e:
        client.put_many([("bf/c", b"C"), ("", b"bad key")])
    assert e.value.errors[""].code == _errors.AQ_EKEY
    assert set(e.value.results) == {"bf/c"} and client.get("bf/c") == b"C"
