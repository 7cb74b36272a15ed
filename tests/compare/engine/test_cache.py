"""compare.engine.cache and codec: keys, code version, safe entries (no code runs on read), checksums,
stale and damaged entries recomputed with a notice, locks shared between processes."""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compare.engine import cache as C
from compare.engine import codec
from compare.stats import agreement


@pytest.fixture
def cache(tmp_path) -> C.Cache:
    return C.Cache(tmp_path / "cache", version="v1")


def test_key_digest_is_order_independent_and_exact():
    a = C.key_digest({"x": 1.0, "y": [1, 2], "z": {"p": 0.1, "q": None}})
    b = C.key_digest({"z": {"q": None, "p": 0.1}, "y": [1, 2], "x": 1.0})
    assert a == b and len(a) == 32
    assert C.key_digest({"x": 0.1}) != C.key_digest({"x": 0.1 + 1e-17 * 8})  # floats exactly
    assert C.key_digest({"x": np.arange(3.0)}) == C.key_digest({"x": np.arange(3.0)})
    assert C.key_digest({"x": np.arange(3.0)}) != C.key_digest({"x": np.arange(3)})  # dtype is part of it
    ss = np.random.SeedSequence([1, 2])
    assert C.key_digest({"s": ss}) == C.key_digest({"s": np.random.SeedSequence([1, 2])})
    with pytest.raises(ValueError, match="argument 'key'"):
        C.key_digest({"f": lambda: 0})


def test_code_version_tracks_sources_and_plugins(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    v1 = C.code_version(roots=[pkg])
    (pkg / "a.py").write_text("x = 2\n")
    assert C.code_version(roots=[pkg]) != v1
    plug = tmp_path / "plug.py"
    plug.write_text("y = 1\n")
    assert C.code_version(roots=[pkg], extra_files=[plug]) != C.code_version(roots=[pkg])
    with pytest.raises(ValueError, match="argument 'roots'"):
        C.code_version(roots=[tmp_path / "missing"])


def test_store_load_roundtrip_of_a_result_tree(cache):
    value = {"x": np.arange(5.0), "mask": np.array([True, False]), "t": (1, math.inf, "s"), "none": None,
             "check": agreement(1.0, 0.1, 1.0, df=9, alpha=1e-3), "__odd__": 3,
             "ss": np.random.SeedSequence([3, 2**70]).spawn(2)}
    p = cache.store({"k": 1}, value, namespace="t")
    assert p.suffix == ".npz" and p.parent.name == "t"
    ok, got = cache.load({"k": 1}, namespace="t")
    assert ok and np.array_equal(got["x"], value["x"]) and got["t"] == (1, math.inf, "s")
    assert got["check"] == value["check"] and got["__odd__"] == 3 and got["none"] is None
    assert got["ss"][1].generate_state(2).tolist() == value["ss"][1].generate_state(2).tolist()
    assert cache.load({"k": 2}, namespace="t") == (False, None)
    assert not list(p.parent.glob(".tmp-*"))  # the atomic write left no temporary file


def test_another_code_version_is_stale_with_one_notice(tmp_path, capsys):
    a = C.Cache(tmp_path, version="v1")
    a.check_version()
    a.store({"k": 1}, 1.0, namespace="t")
    b = C.Cache(tmp_path, version="v2")
    assert b.check_version() == "v1"
    assert "written by code version v1 (this is v2)" in capsys.readouterr().err
    assert b.load({"k": 1}, namespace="t") == (False, None) and b.stats.stale == 1


def _repack_with(raw: bytes, **changes) -> bytes:
    """The entry's arrays with some replaced, the checksum left as it was (an edit after the write)."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "edited", "other_key", "empty"])
def test_damaged_or_edited_entries_are_recomputed_with_a_notice(cache, capsys, damage):
    p = cache.store({"k": 1}, {"measured": np.array([0.5])}, namespace="t")
    raw = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        p.write_bytes(b"not a cache file")
    elif damage == "edited":  # measured x 1.01, checksum untouched: used silently before
        p.write_bytes(_repack_with(raw, a0=np.array([0.505])))
    elif damage == "other_key":
        q = cache.store({"k": 2}, {"measured": np.array([0.5])}, namespace="t")
        p.write_bytes(q.read_bytes())
    else:
        p.write_bytes(b"")
    assert cache.load({"k": 1}, namespace="t") == (False, None)
    assert "is not a valid entry" in capsys.readouterr().err and cache.stats.malformed == 1


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARK']}",))


def test_a_planted_pickle_is_neither_executed_nor_used(cache, tmp_path, monkeypatch, capsys):
    mark = tmp_path / "executed"
    monkeypatch.setenv("EVIL_MARK", str(mark))
    for payload in (pickle.dumps(_Evil()), b"concurrence-cache 1\n" + pickle.dumps({"value": _Evil()})):
        p = cache.path({"k": 1}, namespace="claims")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(payload)
        assert cache.load({"k": 1}, namespace="claims") == (False, None)
        # an npz whose array holds pickled objects is refused too (allow_pickle=False)
        buf = io.BytesIO()
        np.savez(buf, meta=np.array([_Evil()], dtype=object), sha256=np.zeros(1))
        p.write_bytes(buf.getvalue())
        assert cache.load({"k": 1}, namespace="claims") == (False, None)
    assert not mark.exists(), "loading a cache entry executed code"
    assert "is not a valid entry" in capsys.readouterr().err


def test_codec_rebuilds_only_trusted_loaded_dataclasses():
    tree, arrays = codec.encode(agreement(1.0, 0.1, 1.0, df=9, alpha=1e-3))
    assert codec.decode(tree, arrays).passed
    tree["__dataclass__"] = "subprocess:Popen"
    with pytest.raises(ValueError, match="not trusted"):
        codec.decode(tree, arrays)
    tree["__dataclass__"] = "compare.not_a_module:X"
    with pytest.raises(ValueError, match="not loaded"):
        codec.decode(tree, arrays)
    with pytest.raises(ValueError, match="numeric or boolean dtype"):
        codec.encode(np.array(["a"], dtype=object))
    with pytest.raises(ValueError, match="cannot store"):
        codec.encode({"f": print})


def test_disabled_cache_and_bad_namespace(tmp_path):
    c = C.Cache(tmp_path / "c", version="v", enabled=False)
    assert c.store({"k": 1}, 1, namespace="t") is None and c.load({"k": 1}, namespace="t") == (False, None)
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="argument 'namespace'"):
        C.Cache(tmp_path, version="v").path({"k": 1}, namespace="../x")


def test_locks_exclude_other_holders_and_die_with_their_process(cache):
    lock = cache.lock({"k": 1}, namespace="t")
    assert lock is not None and cache.lock({"k": 1}, namespace="t") is None
    lock.release()
    again = cache.lock({"k": 1}, namespace="t")
    assert again is not None
    again.release()
    # a process holding the lock is killed: the kernel drops the lock
    code = (f"import sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})\n"
            f"from compare.engine.cache import Cache\n"
            f"c = Cache({str(cache.root)!r}, version='v1'); l = c.lock({{'k': 1}}, namespace='t')\n"
            f"print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert cache.lock({"k": 1}, namespace="t") is None
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while (held := cache.lock({"k": 1}, namespace="t")) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held is not None, "the lock of a killed process was not released"
        held.release()
    finally:
        proc.kill()
