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

from compare import _validate as V

#: the most seed sequences (about 380 bytes each) or generators (about 4.7 kB each) one call makes
MAX_SEEDS = 2**22
MAX_GENERATORS = 2**18

def _check_seed(func: str, seed: object) -> int:
    return V.integer(func, "seed", seed, low=0)


def path_words(*path: str | int | float) -> list[int]:
    """The eight 32-bit words naming ``path`` (parts joined with ``/``; numbers by ``repr``)."""
    return _path_words("path_words", path)


def _path_words(func: str, path: tuple) -> list[int]:
    if not path:
        raise V.fail(func, "path", "one or more parts naming the stream", "none")
    parts = []
    for p in path:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (str, int, float, np.integer, np.floating)):
            raise V.fail(func, "path", "strings and numbers", f"a part {V.describe(p)}")
        parts.append(p if isinstance(p, str) else repr(p.item() if isinstance(p, np.generic) else p))
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]


def stream(seed: int, *path: str | int | float) -> np.random.SeedSequence:
    """The stream named ``path`` under master ``seed`` (see the module docstring)."""
    return np.random.SeedSequence([_check_seed("stream", seed), *_path_words("stream", path)])


def trial_seeds(ss: np.random.SeedSequence, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Children ``start .. stop-1`` of ``ss`` (equal to ``ss.spawn(stop)[start:]`` on a fresh ``ss``)."""
    f = "trial_seeds"
    if not isinstance(ss, np.random.SeedSequence):
        raise V.fail(f, "ss", "a numpy.random.SeedSequence", V.describe(ss))
    start = V.integer(f, "start", start, low=0)
    stop = V.integer(f, "stop", stop, low=start, why=" (>= start)")
    V.count(f, "stop", stop - start, low=0, high=MAX_SEEDS, bytes_each=380, what="stop - start seed sequences")
    return [np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size)
            for i in range(int(start), int(stop))]


def generators(seeds: Sequence[np.random.SeedSequence]) -> list[np.random.Generator]:
    """One ``numpy.random.Generator`` (PCG64) per seed sequence."""
    if isinstance(seeds, (str, bytes, np.random.SeedSequence)) or not isinstance(seeds, (list, tuple)) or not all(
            isinstance(s, np.random.SeedSequence) for s in seeds):
        raise V.fail("generators", "seeds", "a list of numpy.random.SeedSequence",
                     V.describe(seeds) if not isinstance(seeds, (list, tuple)) else "a list with other entries")
    V.count("generators", "seeds", len(seeds), low=0, high=MAX_GENERATORS, bytes_each=4700, what="generators")
    return [np.random.default_rng(s) for s in seeds]


def rngs(seed: int, *path: str | int | float, n: int) -> list[np.random.Generator]:
    """``n`` generators: trials 0..n-1 of the stream ``path`` under ``seed``."""
    seed = _check_seed("rngs", seed)
    words = _path_words("rngs", path)
    n = V.count("rngs", "n", n, low=0, high=MAX_GENERATORS, bytes_each=4700, what="generators")
    return generators(trial_seeds(np.random.SeedSequence([seed, *words]), 0, n))
