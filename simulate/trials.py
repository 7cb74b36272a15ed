"""Independent random streams per trial and a parallel map over them.

Every trial gets its own ``numpy.random.Generator`` built from ``SeedSequence(seed).spawn``, so a
trial's numbers depend only on ``(seed, trial index)``: serial, joblib-parallel and
dask-distributed runs give identical results.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def spawn_seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed``."""
    if n < 0:
        raise ValueError(f"spawn_seeds: argument 'n' must be >= 0; got {n!r}.")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    return ss.spawn(n)


def spawn_generators(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators, one per trial."""
    return [np.random.default_rng(s) for s in spawn_seeds(seed, n)]


def _call_limited(fn: Callable[..., Any], args: tuple, blas_threads: int | None) -> Any:
    if blas_threads is None:
        return fn(*args)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return fn(*args)


def parallel_map(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    blas_threads: int | None = 1,
) -> list[Any]:
    """``[fn(item) for item in items]``, in parallel when ``jobs != 1`` or ``scheduler`` is given.

    jobs: joblib workers (processes); ``1`` runs serially in this process, ``-1`` uses every core.
    scheduler: address of a running ``dask.distributed`` scheduler; the same work is then sent
        to that cluster through joblib's dask backend.
    blas_threads: BLAS threads per worker (threadpoolctl), so workers do not oversubscribe cores.
    Results come back in the order of ``items`` and do not depend on ``jobs`` or ``scheduler``.
    """
    items = list(items)
    if jobs == 0:
        raise ValueError("parallel_map: argument 'jobs' must be a nonzero integer; got 0.")
    if scheduler is None and (jobs == 1 or len(items) <= 1):
        return [_call_limited(fn, (it,), None) for it in items]
    import joblib

    if scheduler is not None:
        from distributed import Client  # optional extra: concurrence[distributed]

        with Client(scheduler, timeout="10s", set_as_default=False) as client:
            with joblib.parallel_config(backend="dask", scheduler=client):
                return joblib.Parallel()(
                    joblib.delayed(_call_limited)(fn, (it,), blas_threads) for it in items
                )
    return joblib.Parallel(n_jobs=jobs)(
        joblib.delayed(_call_limited)(fn, (it,), blas_threads) for it in items
    )
