"""Results on disk: written atomically, keyed by settings and code version; resume after a kill.

Every finished piece of work (a claim at a setting, a figure, a block of trials) is stored as one
file under a cache directory. The file name is a hash of the *settings* (a JSON-able dict); the
file carries the *code version* it was computed with, a hash of every Python source of the
:mod:`theory`, :mod:`simulate` and :mod:`compare` packages:

.. math::

    \\text{path} = \\text{root}/\\text{namespace}/\\operatorname{sha256}(\\operatorname{json}(\\text{key}))_{[:32]}.\\text{pkl},
    \\qquad \\text{valid} \\iff \\text{file.version} = \\operatorname{sha256}(\\text{sources})

A file is written to a temporary name in the same directory and moved into place with
``os.replace`` (atomic on POSIX), so a run killed with SIGKILL leaves either the whole file or
none: a rerun recomputes exactly what was unfinished. A file written by another code version is
ignored and recomputed (and overwritten); the first time a run meets a cache directory last
used by another version it prints one line saying so. A malformed file (truncated, not a cache
file, wrong key) is recomputed with a one-line notice, never a crash.

Public API for claim and figure code::

    from compare.cache import cached, cached_map
    value = cached({"what": "fig3-trials", "d": d, "n": n, "seed": seed}, lambda: expensive())
    rows = cached_map(work, spawn_seeds(seed, trials), key={"what": "c9", ...}, block=10)

``cached`` uses the cache directory of the running command (``--cache-dir``; the environment
variable ``CONCURRENCE_CACHE_DIR``) and computes without caching when there is none. The key must
hold every setting the result depends on plus a name for the computation; the code version is
added automatically.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

#: Environment variable naming the default cache directory (set by ``python -m compare``).
ENV_DIR = "CONCURRENCE_CACHE_DIR"
#: Environment variable overriding the code version (tests pin it; never needed in normal use).
ENV_VERSION = "CONCURRENCE_CODE_VERSION"
#: Environment variable: ``"0"`` turns progress bars off (set for ``--quiet`` and in workers).
ENV_PROGRESS = "CONCURRENCE_PROGRESS"

_MAGIC = b"concurrence-cache 1\n"
_PACKAGES = ("theory", "simulate", "compare")
_MARKER = "VERSION"


# --------------------------------------------------------------------------- code version
def _source_files(roots: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        files.extend(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def code_version(*, roots: Sequence[str | os.PathLike] | None = None) -> str:
    """A short hash of the source code that produces the numbers.

    roots: directories whose ``*.py`` files are hashed (relative path and content); default the
        installed :mod:`theory`, :mod:`simulate` and :mod:`compare` packages.
    The environment variable ``CONCURRENCE_CODE_VERSION`` overrides the result (tests use it to
    pin a version while other files change).
    """
    env = os.environ.get(ENV_VERSION)
    if env:
        return env
    if roots is None:
        return _package_version()
    return _hash_roots(tuple(Path(r).resolve() for r in roots))


@lru_cache(maxsize=None)
def _package_version() -> str:
    import importlib

    roots = [Path(importlib.import_module(p).__file__).resolve().parent for p in _PACKAGES]
    return _hash_roots(tuple(roots))


def _hash_roots(roots: tuple[Path, ...]) -> str:
    for r in roots:
        if not r.is_dir():
            raise ValueError(f"code_version: argument 'roots' must name existing directories; got {str(r)!r}.")
    h = hashlib.sha256()
    for f in _source_files(roots):
        rel = next(str(f.relative_to(r.parent)) for r in roots if r in f.parents)
        h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- keys
def _canonical(obj: Any) -> Any:
    """A JSON-able, order-independent form of a key (floats exactly, arrays by content hash)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return {"float": x.hex()} if not math.isfinite(x) else x
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {"ndarray": hashlib.sha256(a.tobytes()).hexdigest(), "dtype": str(a.dtype), "shape": list(a.shape)}
    if isinstance(obj, np.random.SeedSequence):
        return {"SeedSequence": [_canonical(obj.entropy), list(obj.spawn_key), obj.pool_size]}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"dataclass": type(obj).__qualname__, "fields": _canonical(asdict(obj))}
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    raise ValueError(
        f"cache: argument 'key' must hold only None, bool, int, float, str, numpy arrays, "
        f"dataclasses, lists, tuples and dicts; got {type(obj).__name__}."
    )


def key_digest(key: Mapping[str, Any]) -> str:
    """The file-name hash of ``key`` (a dict of settings)."""
    if not isinstance(key, Mapping):
        raise ValueError(f"cache: argument 'key' must be a dict of settings; got {type(key).__name__}.")
    text = json.dumps(_canonical(key), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- notices
_NOTIFIED: set[tuple[str, str]] = set()
_NOTICE_LOCK = threading.Lock()


def _notice(kind: str, where: str, text: str) -> None:
    with _NOTICE_LOCK:
        if (kind, where) in _NOTIFIED:
            return
        _NOTIFIED.add((kind, where))
    print(f"compare: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the cache
@dataclass
class CacheStats:
    """Counts of what a :class:`Cache` did: reused, computed, stale (other version), malformed."""

    hits: int = 0
    misses: int = 0
    stale: int = 0
    malformed: int = 0
    writes: int = 0


@dataclass
class Cache:
    """A directory of results keyed by settings and code version.

    root: the cache directory (created on first write).
    version: the code version entries must carry to be reused (default :func:`code_version`).
    enabled: ``False`` makes every lookup a miss and every store a no-op.
    """

    root: Path
    version: str = ""
    enabled: bool = True
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.version:
            self.version = code_version()

    # ---- version marker: one notice when the directory was last used by another version
    def check_version(self) -> str | None:
        """Compare the directory's marker with this code version; notice once, update marker.

        Returns the previous version when it differed (entries from it will be recomputed),
        else ``None``.
        """
        if not self.enabled:
            return None
        marker = self.root / _MARKER
        previous = None
        try:
            previous = marker.read_text().strip() or None
        except (OSError, UnicodeDecodeError):
            previous = None
        if previous is not None and previous != self.version:
            _notice("version", str(self.root),
                    f"cache {self.root} was written by code version {previous} (this is {self.version}); "
                    f"its entries are ignored and recomputed")
        try:
            if previous != self.version:
                _atomic_write(marker, (self.version + "\n").encode())
        except OSError:
            pass
        return previous if previous != self.version else None

    def path(self, key: Mapping[str, Any], *, namespace: str = "blocks") -> Path:
        """Where the entry for ``key`` lives."""
        if not namespace or "/" in namespace or namespace.startswith("."):
            raise ValueError(f"cache: argument 'namespace' must be a plain directory name; got {namespace!r}.")
        return self.root / namespace / (key_digest(key) + ".pkl")

    def load(self, key: Mapping[str, Any], *, namespace: str = "blocks") -> tuple[bool, Any]:
        """``(True, value)`` when a valid entry for ``key`` exists, else ``(False, None)``."""
        if not self.enabled:
            return False, None
        p = self.path(key, namespace=namespace)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            self.stats.misses += 1
            return False, None
        except OSError as e:
            _notice("unreadable", str(p), f"cache file {p} is unreadable ({e}); recomputing")
            self.stats.malformed += 1
            return False, None
        try:
            if not raw.startswith(_MAGIC):
                raise ValueError("not a concurrence cache file")
            entry = pickle.loads(raw[len(_MAGIC):])
            if not isinstance(entry, dict) or {"version", "key", "value"} - entry.keys():
                raise ValueError("missing fields")
            if entry["key"] != _canonical(key):
                raise ValueError("key does not match the file name")
        except Exception as e:  # truncated pickle, foreign file, ...: recompute, never crash
            _notice("malformed", str(p), f"cache file {p} is malformed ({type(e).__name__}: {e}); recomputing")
            self.stats.malformed += 1
            return False, None
        if entry["version"] != self.version:
            self.stats.stale += 1
            return False, None
        self.stats.hits += 1
        return True, entry["value"]

    def store(self, key: Mapping[str, Any], value: Any, *, namespace: str = "blocks") -> Path | None:
        """Write ``value`` for ``key`` atomically (temporary file, then ``os.replace``)."""
        if not self.enabled:
            return None
        p = self.path(key, namespace=namespace)
        buf = io.BytesIO()
        buf.write(_MAGIC)
        pickle.dump({"version": self.version, "key": _canonical(key), "value": value}, buf,
                    protocol=pickle.HIGHEST_PROTOCOL)
        _atomic_write(p, buf.getvalue())
        self.stats.writes += 1
        return p

    def get_or_compute(self, key: Mapping[str, Any], compute: Callable[[], T], *, namespace: str = "blocks") -> T:
        """The stored value for ``key``, or ``compute()`` stored for next time."""
        hit, value = self.load(key, namespace=namespace)
        if hit:
            return value
        value = compute()
        self.store(key, value, namespace=namespace)
        return value


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- default directory
def default_cache_dir() -> str | None:
    """The cache directory of the running command (``CONCURRENCE_CACHE_DIR``), or ``None``."""
    return os.environ.get(ENV_DIR) or None


@contextlib.contextmanager
def using(cache_dir: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, :func:`cached` defaults to ``cache_dir`` (``None``: no caching)."""
    old = os.environ.get(ENV_DIR)
    if cache_dir is None:
        os.environ.pop(ENV_DIR, None)
    else:
        os.environ[ENV_DIR] = os.fspath(cache_dir)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_DIR, None)
        else:
            os.environ[ENV_DIR] = old


def progress_enabled() -> bool:
    """Whether progress bars may be shown: stderr is a terminal and not turned off."""
    if os.environ.get(ENV_PROGRESS, "1") == "0":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def cached(key: Mapping[str, Any], compute: Callable[[], T], *, cache_dir: str | os.PathLike | None = None,
           namespace: str = "blocks") -> T:
    """``compute()``, stored under ``cache_dir`` keyed by ``key`` and the code version.

    key: every setting the result depends on, plus a name for the computation (a dict of
        None/bool/int/float/str/arrays/dataclasses, nested lists and dicts).
    compute: the zero-argument function producing the value (anything picklable).
    cache_dir: the cache directory; default the running command's (:func:`default_cache_dir`);
        when there is none the value is computed and not stored.
    namespace: sub-directory grouping entries of one kind.
    """
    root = cache_dir if cache_dir is not None else default_cache_dir()
    if root is None:
        return compute()
    return _open(root).get_or_compute(key, compute, namespace=namespace)


_CHECKED: set[tuple[str, str]] = set()


def _open(root: str | os.PathLike) -> Cache:
    """A :class:`Cache` at ``root``; the first use per process checks the version marker."""
    cache = Cache(Path(root))
    tag = (str(Path(root).resolve()), cache.version)
    if tag not in _CHECKED:
        _CHECKED.add(tag)
        cache.check_version()
    return cache


def cached_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    key: Mapping[str, Any],
    block: int = 10,
    jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike | None = None,
    desc: str | None = None,
) -> list[Any]:
    """``[fn(item) for item in items]`` computed in cached blocks, resumable after a kill.

    fn: picklable function of one item (typically a trial given its ``SeedSequence``).
    items: the work items (their content is part of each block's key).
    key: the settings shared by every item, plus a name for the computation.
    block: items per stored block; a killed run loses at most the blocks in flight.
    jobs, scheduler: run blocks in parallel (see :func:`simulate.trials.imap_unordered`).
    cache_dir: as in :func:`cached`.
    desc: label of the tqdm bar (shown only on a terminal, see :func:`progress_enabled`).
    """
    from simulate.trials import imap_unordered

    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"cached_map: argument 'block' must be an integer >= 1; got {block!r}.")
    items = list(items)
    root = cache_dir if cache_dir is not None else default_cache_dir()
    cache = _open(root) if root is not None else Cache(Path("."), version="-", enabled=False)
    chunks = [items[i:i + block] for i in range(0, len(items), block)]
    keys = [{**dict(key), "_block": b, "_blocks": len(chunks), "_items": chunk} for b, chunk in enumerate(chunks)]
    results: list[Any] = [None] * len(chunks)
    todo = []
    for b, k in enumerate(keys):
        hit, value = cache.load(k, namespace="blocks")
        if hit:
            results[b] = value
        else:
            todo.append(b)
    bar = _bar(total=len(chunks), initial=len(chunks) - len(todo), desc=desc)
    try:
        for j, value in imap_unordered(_BlockTask(fn), [chunks[b] for b in todo], jobs=jobs, scheduler=scheduler):
            b = todo[j]
            cache.store(keys[b], value, namespace="blocks")
            results[b] = value
            bar.update(1)
    finally:
        bar.close()
    return [r for chunk in results for r in chunk]


@dataclass(frozen=True)
class _BlockTask:
    fn: Callable[[Any], Any]

    def __call__(self, chunk: Sequence[Any]) -> list[Any]:
        return [self.fn(it) for it in chunk]


def _bar(*, total: int, initial: int = 0, desc: str | None = None):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not progress_enabled(),
                leave=False, dynamic_ncols=True)
