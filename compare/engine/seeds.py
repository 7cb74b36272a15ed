r"""One seed scheme: random streams named by a path under the master seed.

Every random number of an experiment comes from a stream named by what it feeds, e.g.
``stream(seed, "fig3", "instance")`` or ``stream(seed, "linrep.sweep")``; trial :math:`i` of a stream
is its child :math:`i`:

.. math::

    \text{stream}(s, p_1, \dots, p_m) = \operatorname{SeedSequence}\big([s, h_1, \dots, h_8]\big),
    \quad h = \operatorname{sha256}(p_1/\dots/p_m) \text{ as eight 32-bit words},\qquad
    \text{trial}_i = \text{child } i \text{ (spawn key } (i,)).

The numbers of a trial depend only on ``(seed, path, i)``: not on how trials are cut into blocks,
which process runs them, or which other streams exist.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np


def _check_seed(func: str, seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"{func}: argument 'seed' must be an integer >= 0; got {seed!r}.")
    return int(seed)


def path_words(*path: str | int | float) -> list[int]:
    """The eight 32-bit words naming ``path`` (parts joined with ``/``; numbers by ``repr``)."""
    if not path:
        raise ValueError("stream: argument 'path' must name the stream (at least one part); got none.")
    parts = []
    for p in path:
        if isinstance(p, bool) or not isinstance(p, (str, int, float, np.integer, np.floating)):
            raise ValueError(f"stream: argument 'path' must hold strings and numbers; got {p!r}.")
        parts.append(p if isinstance(p, str) else repr(p.item() if isinstance(p, np.generic) else p))
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]


def stream(seed: int, *path: str | int | float) -> np.random.SeedSequence:
    """The stream named ``path`` under master ``seed`` (see the module docstring)."""
    return np.random.SeedSequence([_check_seed("stream", seed), *path_words(*path)])


def trial_seeds(ss: np.random.SeedSequence, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Children ``start .. stop-1`` of ``ss`` (equal to ``ss.spawn(stop)[start:]`` on a fresh ``ss``)."""
    if not 0 <= start <= stop:
        raise ValueError(f"trial_seeds: arguments 'start', 'stop' must satisfy 0 <= start <= stop; got {start}, {stop}.")
    return [np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size)
            for i in range(int(start), int(stop))]


def generators(seeds: Sequence[np.random.SeedSequence]) -> list[np.random.Generator]:
    """One ``numpy.random.Generator`` (PCG64) per seed sequence."""
    return [np.random.default_rng(s) for s in seeds]


def rngs(seed: int, *path: str | int | float, n: int) -> list[np.random.Generator]:
    """``n`` generators: trials 0..n-1 of the stream ``path`` under ``seed``."""
    return generators(trial_seeds(stream(seed, *path), 0, n))
