"""Independent random streams per trial and a parallel map over them.

Every trial gets its own ``numpy.random.Generator`` built from ``SeedSequence(seed).spawn``, so a
trial's numbers depend only on ``(seed, trial index)``: serial, joblib-parallel and
dask-distributed runs give identical results.

.. math::

    \\text{stream}_i = \\operatorname{SeedSequence}(\\text{seed}).\\operatorname{spawn}(T)[i],
    \\qquad i = 0, \\dots, T - 1

Three executors run the same work, chosen by ``jobs`` and ``scheduler``:

- serial (``jobs=1``, no scheduler): a plain loop in this process;
- joblib (``jobs != 1``): loky worker processes, each limited to ``blas_threads`` BLAS threads
  by threadpoolctl (on a shared 2-core machine a multi-threaded BLAS under contention made a
  1000x50 Gram product 20x slower);
- dask.distributed (``scheduler`` given): the items are submitted as futures to a running
  cluster (``distributed.Client.submit`` / ``as_completed``), each task again limited to
  ``blas_threads`` BLAS threads. dask is an optional extra: ``pip install concurrence[distributed]``.

:func:`imap_unordered` yields ``(index, result)`` pairs as they finish (so a caller can store each
finished piece at once); :func:`parallel_map` collects them in the order of the items.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from simulate import _validate as V

#: Seconds :func:`connect` waits for a dask scheduler before giving up.
CONNECT_TIMEOUT_S = 5.0


class SchedulerUnavailable(ConnectionError):
    """The dask scheduler address given could not be reached (or dask is not installed)."""


def spawn_seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed``.

    seed: master seed (an int >= 0 or a ``SeedSequence``).
    n: number of children (trials).
    """
    V.integer("spawn_seeds", "n", n, low=0)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    return ss.spawn(int(n))


def spawn_generators(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators, one per trial.

    seed: master seed (an int >= 0 or a ``SeedSequence``).
    n: number of generators.
    """
    return [np.random.default_rng(s) for s in spawn_seeds(seed, n)]


def _call_limited(fn: Callable[..., Any], args: tuple, blas_threads: int | None) -> Any:
    if blas_threads is None:
        return fn(*args)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return fn(*args)


def _indexed_call(fn: Callable[[Any], Any], index: int, item: Any, blas_threads: int | None) -> tuple[int, Any]:
    """``(index, fn(item))`` under a BLAS thread limit (runs in a joblib worker)."""
    return index, _call_limited(fn, (item,), blas_threads)


def _indexed_call_dask(fn: Callable[[Any], Any], index: int, item: Any, blas_threads: int | None) -> tuple[int, Any]:
    """``(index, fn(item))`` on a dask worker.

    A dask worker runs several tasks in threads of one process, and threadpoolctl's limits are
    process-wide: entering and leaving a ``with threadpool_limits`` block from concurrent threads
    could restore the multi-threaded default under a running task. So the limit is set for the
    whole worker process and left in place (one BLAS thread per task is what we want there).
    """
    if blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=blas_threads)
    return index, fn(item)


def connect(scheduler: Any, *, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A ``distributed.Client`` for ``scheduler`` (an address such as ``"tcp://host:8786"``).

    scheduler: the scheduler's address, or an existing ``distributed.Client`` (returned as is).
    timeout: seconds to wait for the scheduler.
    Raises :class:`SchedulerUnavailable` (a ``ConnectionError``) with a one-line message when
    the address cannot be reached within ``timeout`` seconds or dask is not installed.
    """
    if not isinstance(scheduler, str):
        if hasattr(scheduler, "submit") and hasattr(scheduler, "scheduler_info"):
            return scheduler
        raise ValueError(
            f"connect: argument 'scheduler' must be an address string or a distributed.Client; "
            f"got {type(scheduler).__name__}."
        )
    if not scheduler.strip():
        raise ValueError("connect: argument 'scheduler' must be a non-empty address; got ''.")
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerUnavailable(
            "dask.distributed is not installed; install the optional extra: "
            "pip install 'concurrence[distributed]'"
        ) from None
    try:
        # a plain socket first: a Client that fails to connect lingers and stalls interpreter exit
        _preflight(scheduler, timeout)
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except Exception as e:  # OSError (timeout / refused), ValueError (bad address), ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SchedulerUnavailable(
            f"could not reach the dask scheduler at {scheduler!r} ({msg}); start one with "
            f"`dask scheduler` and `dask worker ADDR --nthreads 1`, or leave out the scheduler"
        ) from None


def _preflight(address: str, timeout: float) -> None:
    """Fail fast, without a ``Client``, unless ``address`` answers as a dask scheduler.

    A ``Client`` whose connection fails is left half-built and stalls interpreter exit for
    another 10 s; so the address is parsed, connected to and asked for its identity first.
    """
    import asyncio

    from distributed.comm import connect as comm_connect
    from distributed.comm import get_address_host_port, parse_address

    scheme, _ = parse_address(address)
    if scheme in ("tcp", "tls"):
        get_address_host_port(address)  # ValueError on a missing port
    try:
        asyncio.get_running_loop()
        return  # inside an event loop (a notebook): leave the checks to Client
    except RuntimeError:
        pass

    async def identity() -> dict:
        comm = await comm_connect(address, timeout=timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(identity())
    except asyncio.TimeoutError:
        raise OSError(f"no answer within {timeout:g} s") from None
    except OSError:
        raise
    except Exception:  # something answered, but not in dask's protocol
        reply = None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise OSError("the address does not answer as a dask scheduler")


def imap_unordered(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    jobs: int = 1,
    scheduler: Any = None,
    blas_threads: int | None = 1,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, fn(items[i]))`` for every item, in order of completion.

    fn: a picklable callable of one argument (closures are fine: cloudpickle ships them).
    items: the work items.
    jobs: joblib workers (processes); ``1`` runs serially in this process, ``-1`` uses every core.
    scheduler: address of a running ``dask.distributed`` scheduler, or a ``distributed.Client``;
        the items then run as dask futures on that cluster (``jobs`` is ignored).
    blas_threads: BLAS threads per worker (threadpoolctl); ``None`` leaves the BLAS default.
        The serial path never changes the caller's BLAS setting.
    Each result depends only on its item, so the set of pairs does not depend on the executor.
    Closing the iterator early cancels the work not yet started.
    """
    items = list(items)
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs == 0:
        raise ValueError(f"parallel_map: argument 'jobs' must be a nonzero integer; got {jobs!r}.")
    if blas_threads is not None and (not isinstance(blas_threads, (int, np.integer)) or blas_threads < 1):
        raise ValueError(f"parallel_map: argument 'blas_threads' must be None or an integer >= 1; got {blas_threads!r}.")
    if scheduler is not None:
        yield from _imap_dask(fn, items, scheduler, blas_threads)
        return
    if jobs == 1 or len(items) <= 1:
        for i, it in enumerate(items):
            yield i, fn(it)
        return
    import joblib

    n_jobs = int(min(jobs, len(items))) if jobs > 0 else int(jobs)
    gen = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        joblib.delayed(_indexed_call)(fn, i, it, blas_threads) for i, it in enumerate(items)
    )
    try:
        yield from gen
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


def _imap_dask(fn, items, scheduler, blas_threads) -> Iterator[tuple[int, Any]]:
    own = isinstance(scheduler, str)
    client = connect(scheduler)
    futures = []
    try:
        from distributed import as_completed

        futures = [
            client.submit(_indexed_call_dask, fn, i, it, blas_threads, pure=False)
            for i, it in enumerate(items)
        ]
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        if own:
            client.close()


def parallel_map(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    jobs: int = 1,
    scheduler: Any = None,
    blas_threads: int | None = 1,
) -> list[Any]:
    """``[fn(item) for item in items]``, in parallel when ``jobs != 1`` or ``scheduler`` is given.

    fn: a picklable callable of one argument.
    items: the work items.
    jobs: joblib workers (processes); ``1`` runs serially in this process, ``-1`` uses every core.
    scheduler: address of a running ``dask.distributed`` scheduler (or a ``distributed.Client``);
        the same work is then sent to that cluster as dask futures.
    blas_threads: BLAS threads per worker (threadpoolctl), so workers do not oversubscribe cores.
    Results come back in the order of ``items`` and do not depend on ``jobs`` or ``scheduler``.
    """
    items = list(items)
    out: list[Any] = [None] * len(items)
    for i, r in imap_unordered(fn, items, jobs=jobs, scheduler=scheduler, blas_threads=blas_threads):
        out[i] = r
    return out
