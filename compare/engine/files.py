"""The one atomic write: a temporary file in the same directory, flushed, then ``os.replace``.

A reader sees either the old file or the whole new one; a process killed mid-write leaves at
most a hidden ``.tmp-*`` file, never a truncated target. The file gets the usual permissions
(``0666 & ~umask``), not ``mkstemp``'s 0600, so reports and caches can be shared.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def atomic_write(path: str | os.PathLike, data: bytes | str, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (parents created).

    fsync: also flush the file to disk before the rename (cache entries: a machine crash leaves the
        old entry or the new one, never an empty file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
