r"""Finished work on disk: keyed by (name, settings, seed, code version), checksummed, safe to read.

Every finished piece (a block of an experiment's trials, a claim's record, a figure) is one file
``root/namespace/DIGEST.npz``, ``DIGEST`` a hash of its key (the name, the settings, the seed, the
block). The file is a numpy ``.npz`` archive holding the result's arrays, a JSON ``meta`` (code
version, key, the result's tree: :mod:`compare.engine.codec`) and the SHA-256 of both:

.. math::

    \text{path} = \text{root}/\text{ns}/\operatorname{sha256}(\operatorname{json}(\text{key}))_{[:32]}.\text{npz},\qquad
    \text{valid} \iff \text{version} = v_{\text{code}} \wedge \text{checksum} = \operatorname{sha256}(\text{meta}, \text{arrays}).

- **Safe to read.** Nothing in a cache file is executed: arrays are loaded with
  ``allow_pickle=False`` and dataclasses are rebuilt only from already-loaded project (or plugin)
  modules. A cache directory copied from elsewhere can give wrong numbers only by also fixing up
  the checksums (it guards against corruption and accidental edits, not against a forger), never
  run code. Files of the old pickle format are ignored.
- **Atomic.** Written with :func:`compare.engine.files.atomic_write` (fsync, then ``os.replace``):
  a run killed with SIGKILL leaves whole entries or none, and a rerun recomputes what is missing.
- **Versioned.** The code version is a hash of the project's own sources (``theory``,
  ``simulate``, ``compare`` and loaded plugin files), whatever else is installed; an entry of
  another version is recomputed (one notice per directory).
- **Shared between processes.** :meth:`Cache.lock` takes an advisory ``flock`` on
  ``DIGEST.lock`` while a piece is computed; another run that meets the lock waits for the entry
  instead of computing it too. The kernel drops the lock when its holder dies.
- **Checked.** An entry whose checksum, key or format does not match is recomputed with a notice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import sys
import threading
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from compare.engine import codec
from compare.engine.files import atomic_write

FORMAT = 2
_PACKAGES = ("theory", "simulate", "compare")
_MARKER = "VERSION"
_SOURCE_SUFFIXES = (".py", ".html")


# --------------------------------------------------------------------------- code version
def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts
                  and p.is_file())


def _hash_files(items: Sequence[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for rel, f in items:
        h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def _package_files() -> tuple[tuple[str, Path], ...]:
    import importlib

    out = []
    for p in _PACKAGES:
        root = Path(importlib.import_module(p).__file__).resolve().parent
        out.extend((str(f.relative_to(root.parent)), f) for f in _sources(root))
    return tuple(out)


def code_version(*, extra_files: Sequence[str | os.PathLike] = (), roots: Sequence[str | os.PathLike] | None = None) -> str:
    """A short hash of the source code that produces the numbers.

    extra_files: further source files (loaded plugins) whose content is part of the version.
    roots: hash these directories instead of the project's packages (tests).
    """
    if roots is not None:
        items: list[tuple[str, Path]] = []
        for r in roots:
            rp = Path(r).resolve()
            if not rp.is_dir():
                raise ValueError(f"code_version: argument 'roots' must name existing directories; got {str(r)!r}.")
            items.extend((str(f.relative_to(rp.parent)), f) for f in _sources(rp))
    else:
        items = list(_package_files())
    for f in extra_files:
        p = Path(f).resolve()
        items.append(("plugin:" + p.name, p))
    return _hash_files(items)


# --------------------------------------------------------------------------- keys
def canonical(obj: Any) -> Any:
    """A JSON-able, order-independent form of a key (floats exactly, arrays by content hash)."""
    return _canonical(obj, "canonical", "obj")


def _canonical(obj: Any, func: str, name: str) -> Any:
    def canonical(x: Any) -> Any:
        return _canonical(x, func, name)

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else {"float": x.hex()}
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {"ndarray": hashlib.sha256(a.tobytes()).hexdigest(), "dtype": str(a.dtype), "shape": list(a.shape)}
    if isinstance(obj, np.random.SeedSequence):
        return {"SeedSequence": [canonical(obj.entropy), list(obj.spawn_key), obj.pool_size]}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"dataclass": type(obj).__qualname__, "fields": canonical(asdict(obj))}
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    raise ValueError(f"{func}: argument '{name}' must hold only None, bool, int, float, str, numpy arrays, "
                     f"dataclasses, lists, tuples and dicts; got a value of type {type(obj).__name__}.")


def key_digest(key: Mapping[str, Any]) -> str:
    """The file-name hash of ``key``."""
    return _digest("key_digest", key)


def _key(func: str, key: Any) -> Any:
    if not isinstance(key, Mapping):
        raise ValueError(f"{func}: argument 'key' must be a dict; got an object of type {type(key).__name__}.")
    return _canonical(key, func, "key")


def _digest(func: str, key: Any) -> str:
    text = json.dumps(_key(func, key), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- notices
_NOTIFIED: set[tuple[str, str]] = set()
_NOTICE_LOCK = threading.Lock()


def notice(kind: str, where: str, text: str) -> None:
    """Print ``text`` on stderr once per ``(kind, where)`` in this process."""
    with _NOTICE_LOCK:
        if (kind, where) in _NOTIFIED:
            return
        _NOTIFIED.add((kind, where))
    print(f"compare: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- entries
def _checksum(meta: bytes, arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256(meta)
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def pack(key: Mapping[str, Any], value: Any, *, version: str) -> bytes:
    """The bytes of one entry (see the module docstring)."""
    return _pack("pack", key, value, version)


def _pack(func: str, key: Mapping[str, Any], value: Any, version: str) -> bytes:
    if not isinstance(version, str) or not version:
        raise ValueError(f"{func}: argument 'version' must be a non-empty string; got {version!r}.")
    ckey = _key(func, key)
    tree, arrays = codec._encode(value, func, "value")
    meta = json.dumps({"format": FORMAT, "version": version, "key": ckey, "tree": tree},
                      sort_keys=True, allow_nan=False).encode()
    buf = io.BytesIO()
    named = {f"a{i}": a for i, a in enumerate(arrays)}
    np.savez(buf, meta=np.frombuffer(meta, dtype=np.uint8),
             sha256=np.frombuffer(_checksum(meta, arrays).encode(), dtype=np.uint8), **named)
    return buf.getvalue()


class MalformedEntry(ValueError):
    """A cache file that is not a valid entry for its key (corrupt, edited, foreign, old format)."""


def unpack(raw: bytes, key: Mapping[str, Any] | None = None) -> tuple[str, Any]:
    """``(version, value)`` of an entry; :class:`MalformedEntry` if anything does not check out."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ValueError(f"unpack: argument 'raw' must be the bytes of a cache entry; got an object of type "
                         f"{type(raw).__name__}.")
    want = None if key is None else _key("unpack", key)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            names = set(z.files)
            if not {"meta", "sha256"} <= names:
                raise MalformedEntry("not a concurrence cache entry")
            meta = z["meta"].tobytes()
            arrays = [z[f"a{i}"] for i in range(len(names) - 2)]
            stored = z["sha256"].tobytes().decode()
    except MalformedEntry:
        raise
    except Exception as e:  # not an npz (e.g. a pickle), truncated, ...: never executed
        raise MalformedEntry(f"{type(e).__name__}: {e}") from None
    if _checksum(meta, arrays) != stored:
        raise MalformedEntry("checksum mismatch (the entry was changed after it was written)")
    try:
        m = json.loads(meta)
        if m.get("format") != FORMAT:
            raise MalformedEntry(f"format {m.get('format')!r}, expected {FORMAT}")
        if want is not None and m.get("key") != want:
            raise MalformedEntry("the key does not match the file name")
        return str(m["version"]), codec.decode(m["tree"], arrays)
    except MalformedEntry:
        raise
    except Exception as e:
        raise MalformedEntry(f"{type(e).__name__}: {e}") from None


@dataclass
class CacheStats:
    """Counts of what a :class:`Cache` did."""

    hits: int = 0
    misses: int = 0
    stale: int = 0
    malformed: int = 0
    writes: int = 0


@dataclass
class EntryLock:
    """An advisory lock on one entry (``flock``), released by :meth:`release` or by process death."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


@dataclass
class Cache:
    """A directory of results keyed by settings and code version.

    root: the cache directory (created on first write). version: the code version entries must
    carry (default :func:`code_version`). enabled: ``False`` makes every lookup a miss and every
    store a no-op (``--no-cache``).
    """

    root: Path
    version: str = ""
    enabled: bool = True
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        if isinstance(self.root, bytes) or not isinstance(self.root, (str, os.PathLike)) or not str(self.root):
            raise ValueError(f"Cache: argument 'root' must be a non-empty path (a str or os.PathLike); got "
                             f"{self.root!r}.")
        if not isinstance(self.version, str):
            raise ValueError(f"Cache: argument 'version' must be a string ('' for the code version); got "
                             f"{self.version!r}.")
        if not isinstance(self.enabled, (bool, np.bool_)):
            raise ValueError(f"Cache: argument 'enabled' must be a bool (True or False); got {self.enabled!r}.")
        self.root = Path(self.root)
        if not self.version:
            self.version = code_version()

    def check_version(self) -> str | None:
        """One notice when the directory was last used by another code version; update the marker.
        Returns that previous version, else ``None``."""
        if not self.enabled:
            return None
        marker = self.root / _MARKER
        try:
            previous = marker.read_text().strip() or None
        except (OSError, UnicodeDecodeError):
            previous = None
        if previous is not None and previous != self.version:
            notice("version", str(self.root), f"cache {self.root} was written by code version {previous} (this is "
                                              f"{self.version}); its entries are ignored and recomputed")
        if previous != self.version:
            with contextlib.suppress(OSError):
                atomic_write(marker, self.version + "\n")
        return previous if previous != self.version else None

    def path(self, key: Mapping[str, Any], *, namespace: str) -> Path:
        return self._path("Cache.path", key, namespace)

    def _path(self, func: str, key: Mapping[str, Any], namespace: str) -> Path:
        if not isinstance(namespace, str) or not namespace or "/" in namespace or namespace.startswith(".") \
                or "\0" in namespace:
            raise ValueError(f"{func}: argument 'namespace' must be a plain directory name; got {namespace!r}.")
        return self.root / namespace / (_digest(func, key) + ".npz")

    def load(self, key: Mapping[str, Any], *, namespace: str) -> tuple[bool, Any]:
        """``(True, value)`` when a valid entry for ``key`` exists, else ``(False, None)``."""
        p = self._path("Cache.load", key, namespace)
        if not self.enabled:
            return False, None
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            self.stats.misses += 1
            return False, None
        except OSError as e:
            notice("unreadable", str(p), f"cache file {p} is unreadable ({e}); recomputing")
            self.stats.malformed += 1
            return False, None
        try:
            version, value = unpack(raw, key)
        except MalformedEntry as e:
            notice("malformed", str(p), f"cache file {p} is not a valid entry ({e}); recomputing")
            self.stats.malformed += 1
            return False, None
        if version != self.version:
            self.stats.stale += 1
            return False, None
        self.stats.hits += 1
        return True, value

    def store(self, key: Mapping[str, Any], value: Any, *, namespace: str) -> Path | None:
        """Write ``value`` for ``key`` atomically; ``None`` when disabled."""
        p = self._path("Cache.store", key, namespace)
        raw = _pack("Cache.store", key, value, self.version)
        if not self.enabled:
            return None
        atomic_write(p, raw, fsync=True)
        self.stats.writes += 1
        return p

    def lock(self, key: Mapping[str, Any], *, namespace: str, wait: bool = False) -> EntryLock | None:
        """Take the entry's lock (``None`` if another process holds it and ``wait`` is false).

        A disabled cache gives a no-op lock.
        """
        p = self._path("Cache.lock", key, namespace).with_suffix(".lock")
        if not isinstance(wait, (bool, np.bool_)):
            raise ValueError(f"Cache.lock: argument 'wait' must be a bool (True or False); got {wait!r}.")
        if not self.enabled:
            return EntryLock(Path(), None)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return EntryLock(p, fd)
