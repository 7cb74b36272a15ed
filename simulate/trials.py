"""Independent random streams per trial.

Every trial gets its own ``numpy.random.Generator`` built from ``SeedSequence(seed).spawn``, so a
trial's numbers depend only on ``(seed, trial index)``:

.. math::

    \\text{stream}_i = \\operatorname{SeedSequence}(\\text{seed}).\\operatorname{spawn}(T)[i],
    \\qquad i = 0, \\dots, T - 1

Scheduling (worker processes, dask) lives in :mod:`compare.engine.runner`, which hands each block of
trials its own seed sequences; the simulations here run the trials they are given, serially.
"""

from __future__ import annotations

import numpy as np

from simulate import _validate as V


#: bytes one child seed sequence takes (a ``SeedSequence`` object and its list slot, measured ~0.5 KiB;
#: rounded up): the bound on ``n`` that keeps the list in memory.
SEED_BYTES = 1024
#: bytes one generator takes (a ``Generator`` with its PCG64 state, its seed sequence; rounded up).
GENERATOR_BYTES = 4096


def _spawn(func: str, seed, n, bytes_per: int) -> list[np.random.SeedSequence]:
    n = V.size(func, "n", n, low=0, bytes_per=bytes_per, what=f"the children, {bytes_per} n bytes,")
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    else:
        ss = np.random.SeedSequence(V.integer(func, "seed", seed, low=0,
                                              expected="an integer >= 0 or a numpy.random.SeedSequence"))
    # child i built from its spawn key, as ``ss.spawn`` would on a fresh ``ss``, without advancing ``ss``:
    # the same SeedSequence passed twice gives the same trials
    return [np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size)
            for i in range(n)]


def spawn_seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed``.

    seed: master seed (an int >= 0 or a ``SeedSequence``, which is not advanced: child ``i`` is the
        one a fresh ``seed.spawn`` gives, however often it is asked for).
    n: number of children (trials), an integer >= 0 whose list fits in memory (:data:`SEED_BYTES` each).
    """
    return _spawn("spawn_seeds", seed, n, SEED_BYTES)


def spawn_generators(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators, one per trial.

    seed: master seed (an int >= 0 or a ``SeedSequence``).
    n: number of generators, an integer >= 0 whose list fits in memory (:data:`GENERATOR_BYTES` each).
    """
    return [np.random.default_rng(s) for s in _spawn("spawn_generators", seed, n, GENERATOR_BYTES)]
