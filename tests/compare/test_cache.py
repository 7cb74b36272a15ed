"""compare.cache: keys, atomic files, code version, stale and malformed entries, cached blocks."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from compare import cache as cc


@pytest.fixture
def pinned(monkeypatch):
    """Pin the code version (other engineers edit sources while tests run)."""
    monkeypatch.setenv(cc.ENV_VERSION, "test-version")
    monkeypatch.delenv(cc.ENV_DIR, raising=False)
    return "test-version"


# --------------------------------------------------------------------------- keys
def test_key_digest_is_order_independent_and_exact():
    a = cc.key_digest({"n": 10, "eta": 0.1, "name": "x"})
    assert a == cc.key_digest({"name": "x", "eta": 0.1, "n": 10})
    assert a != cc.key_digest({"name": "x", "eta": float(np.nextafter(0.1, 1.0)), "n": 10})  # next float: other key
    assert a != cc.key_digest({"name": "x", "eta": 0.1, "n": 11})
    # numpy scalars hash like Python numbers; tuples like lists
    assert a == cc.key_digest({"n": np.int64(10), "eta": np.float64(0.1), "name": "x"})
    assert cc.key_digest({"g": (1, 2)}) == cc.key_digest({"g": [1, 2]})


def test_key_digest_arrays_and_seed_sequences_by_content():
    x = np.arange(6.0).reshape(2, 3)
    assert cc.key_digest({"x": x}) == cc.key_digest({"x": x.copy()})
    assert cc.key_digest({"x": x}) != cc.key_digest({"x": x.T})
    s1, s2 = np.random.SeedSequence(1).spawn(2)
    assert cc.key_digest({"s": s1}) == cc.key_digest({"s": np.random.SeedSequence(1).spawn(2)[0]})
    assert cc.key_digest({"s": s1}) != cc.key_digest({"s": s2})


@pytest.mark.parametrize("bad", [{"f": lambda: 0}, {"o": object()}, [1, 2]])
def test_key_rejects_unhashable_settings(bad):
    with pytest.raises(ValueError, match="argument 'key'"):
        cc.key_digest(bad)


# --------------------------------------------------------------------------- code version
def test_code_version_tracks_source_changes(tmp_path, monkeypatch):
    monkeypatch.delenv(cc.ENV_VERSION, raising=False)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    v1 = cc.code_version(roots=[pkg])
    assert v1 == cc.code_version(roots=[pkg])
    (pkg / "a.py").write_text("x = 2\n")
    assert cc.code_version(roots=[pkg]) != v1
    (pkg / "notes.txt").write_text("not source")  # only *.py counts
    v2 = cc.code_version(roots=[pkg])
    (pkg / "notes.txt").write_text("changed")
    assert cc.code_version(roots=[pkg]) == v2
    monkeypatch.setenv(cc.ENV_VERSION, "pinned")
    assert cc.code_version(roots=[pkg]) == "pinned"
    assert len(cc._package_version()) == 16
    with pytest.raises(ValueError, match="argument 'roots'"):
        monkeypatch.delenv(cc.ENV_VERSION)
        cc.code_version(roots=[tmp_path / "missing"])


# --------------------------------------------------------------------------- store / load
def test_store_load_roundtrip_atomic(tmp_path, pinned):
    c = cc.Cache(tmp_path)
    key = {"what": "t", "d": 3}
    assert c.load(key) == (False, None)
    value = {"a": np.arange(5.0), "b": [1, "x", None]}
    p = c.store(key, value)
    assert p.parent == tmp_path / "blocks" and p.suffix == ".pkl"
    hit, got = c.load(key)
    assert hit and np.array_equal(got["a"], value["a"]) and got["b"] == value["b"]
    # overwritten in place, no temporary files left behind
    c.store(key, {"a": np.zeros(1), "b": []})
    assert sorted(os.listdir(p.parent)) == [p.name]
    assert (c.stats.hits, c.stats.misses, c.stats.writes) == (1, 1, 2)


def test_get_or_compute_computes_once(tmp_path, pinned):
    calls = []
    c = cc.Cache(tmp_path)
    f = lambda: calls.append(1) or 42.0  # noqa: E731
    assert c.get_or_compute({"k": 1}, f) == 42.0
    assert c.get_or_compute({"k": 1}, f) == 42.0
    assert len(calls) == 1


def test_other_code_version_is_recomputed_with_one_notice(tmp_path, capsys):
    old = cc.Cache(tmp_path, version="old")
    old.check_version()
    for k in range(3):
        old.store({"k": k}, k)
    capsys.readouterr()
    new = cc.Cache(tmp_path, version="new")
    assert new.check_version() == "old"
    assert new.check_version() is None  # marker now says "new"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "code version old" in err[0] and "recomputed" in err[0], err
    for k in range(3):
        assert new.load({"k": k}) == (False, None)
    assert new.stats.stale == 3
    assert new.get_or_compute({"k": 0}, lambda: "fresh") == "fresh"
    assert new.load({"k": 0}) == (True, "fresh")
    assert capsys.readouterr().err == ""  # stale entries themselves are silent


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong-structure", "wrong-key"])
def test_malformed_file_is_recomputed_never_a_crash(tmp_path, pinned, capsys, damage):
    c = cc.Cache(tmp_path)
    key = {"what": "m"}
    p = c.store(key, np.arange(100.0))
    raw = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        p.write_bytes(os.urandom(200))
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "wrong-structure":
        p.write_bytes(cc._MAGIC + pickle.dumps([1, 2, 3]))
    else:  # a valid file for another key, copied to this key's name
        other = c.store({"what": "other"}, 1)
        os.replace(other, p)
    assert c.load(key) == (False, None)
    assert c.stats.malformed == 1
    err = capsys.readouterr().err
    assert "malformed" in err and str(p) in err, err
    got = c.get_or_compute(key, lambda: np.arange(3.0))
    assert np.array_equal(got, np.arange(3.0))
    hit, again = c.load(key)
    assert hit and np.array_equal(again, np.arange(3.0))


def test_disabled_cache_never_touches_disk(tmp_path, pinned):
    c = cc.Cache(tmp_path / "x", enabled=False)
    assert c.store({"k": 1}, 1) is None
    assert c.load({"k": 1}) == (False, None)
    assert c.check_version() is None
    assert not (tmp_path / "x").exists()


def test_bad_namespace(tmp_path, pinned):
    with pytest.raises(ValueError, match="argument 'namespace'"):
        cc.Cache(tmp_path).path({"k": 1}, namespace="../up")


# --------------------------------------------------------------------------- cached / cached_map
def test_cached_uses_the_command_cache_dir(tmp_path, pinned):
    calls = []
    f = lambda: calls.append(1) or "v"  # noqa: E731
    assert cc.cached({"k": 1}, f) == "v" and cc.cached({"k": 1}, f) == "v"
    assert len(calls) == 2  # no cache directory: computed every time
    with cc.using(tmp_path):
        assert cc.default_cache_dir() == str(tmp_path)
        cc.cached({"k": 1}, f)
        cc.cached({"k": 1}, f)
    assert len(calls) == 3
    assert cc.default_cache_dir() is None
    assert cc.cached({"k": 1}, f, cache_dir=tmp_path) == "v" and len(calls) == 3


def _square(x: int) -> int:
    return x * x


def test_cached_map_resumes_block_by_block(tmp_path, pinned):
    items = list(range(11))
    key = {"what": "squares"}
    seen = []

    def fn(x):
        seen.append(x)
        return _square(x)

    assert cc.cached_map(fn, items, key=key, block=4, cache_dir=tmp_path) == [x * x for x in items]
    assert sorted(seen) == items
    blocks = sorted((tmp_path / "blocks").iterdir())
    assert len(blocks) == 3  # ceil(11 / 4)
    # lose the middle block (as if killed while it ran): only its items are recomputed
    mid = cc.Cache(tmp_path).path({**key, "_block": 1, "_blocks": 3, "_items": items[4:8]})
    assert mid in blocks
    mid.unlink()
    seen.clear()
    assert cc.cached_map(fn, items, key=key, block=4, cache_dir=tmp_path) == [x * x for x in items]
    assert seen == [4, 5, 6, 7]
    # other items or block size: other keys
    seen.clear()
    cc.cached_map(fn, items, key=key, block=5, cache_dir=tmp_path)
    assert sorted(seen) == items
    with pytest.raises(ValueError, match="argument 'block'"):
        cc.cached_map(fn, items, key=key, block=0)


def test_progress_off_when_not_a_terminal_or_turned_off(monkeypatch):
    monkeypatch.setenv(cc.ENV_PROGRESS, "0")
    assert cc.progress_enabled() is False
    monkeypatch.delenv(cc.ENV_PROGRESS)
    # pytest captures stderr: not a terminal
    assert cc.progress_enabled() is False
