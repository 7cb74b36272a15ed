r"""Running claims and figures: experiments first, each computed once, in trial blocks, in parallel.

A run is asked for *jobs* (a claim or a figure at its settings and a master seed). The runner

1. looks every job up in the cache; the rest name the experiments they read;
2. expands those into a graph: each experiment (once per ``(name, settings, seed)``, however many
   jobs read it) is cut into blocks of trials, each block stored in the cache as soon as it
   finishes; an experiment's blocks start when the experiments it requires are combined;
3. runs ready pieces, longest first, on one of three executors, with the same numbers on each:
   in this process (``workers=1``), on ``workers`` local processes, or on a dask scheduler;
4. evaluates each claim and draws each figure (also on the executor) once its experiments are in.

.. math::

    \text{result}(\text{job}) = f(\text{settings}, \text{seed})
    \quad\text{independent of workers, scheduler, blocks and cache}

Processes. Local workers are forked and die with the run: each asks the kernel for
``SIGKILL`` when its parent dies (``PR_SET_PDEATHSIG``), so a run killed with SIGKILL leaves no
worker behind. Every worker imports the built-in registrations and the run's plugins before any
work and limits BLAS to one thread. Two runs sharing a cache directory share finished work: a
piece being computed by one holds the entry's lock, and the other waits for the entry.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import os
import signal
import sys
import time
import traceback
from concurrent import futures as cf
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from compare import _validate as V
from compare.engine import plugins as _plugins
from compare.engine import registry as R
from compare.engine import seeds as _seeds
from compare.engine.cache import Cache, key_digest

#: Figure rendering: resolution of the PNG files (dots per inch).
PNG_DPI = 110
#: Seconds between looks at a piece another process is computing.
POLL_S = 0.2
#: The most local worker processes a run forks (``workers``; -1: one per core).
MAX_WORKERS = max(64, 4 * (os.cpu_count() or 1))


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True, kw_only=True)
class Job:
    """A claim or figure (``kind``) named ``name`` at ``settings`` with master ``seed``.

    size: the preset the settings came from (``"fast"``/``"paper"``; recorded, not used).
    """

    kind: str
    name: str
    settings: Any
    seed: int
    size: str | None = None
    digest: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "digest", key_digest(self.key()))

    def key(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "settings": self.settings, "seed": self.seed}

    @property
    def namespace(self) -> str:
        return self.kind + "s"

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and self.digest == other.digest


def claim_job(claim_id: str, *, size: str, seed: int, overrides: Mapping[str, Any] | None = None,
              strict: bool = True) -> Job:
    """The job for claim ``claim_id`` at preset ``size`` with ``overrides`` applied."""
    return _job("claim_job", "claim", claim_id, size, seed, overrides, strict)


def _job(func: str, kind: str, name: Any, size: Any, seed: Any, overrides: Any, strict: Any,
         arg: str = "overrides", name_arg: str | None = None) -> Job:
    from compare.engine import settings as S

    table = R.CLAIMS if kind == "claim" else R.FIGURES
    name_arg = name_arg or ("claim_id" if kind == "claim" else "name")
    V.text(func, name_arg, name)
    if name not in table:
        raise V.fail(func, name_arg, f"one of the registered {kind}s ({', '.join(sorted(table, key=R.order_key))})",
                     repr(name))
    S.check_size(func, size)
    seed = _seeds._check_seed(func, seed)
    V.flag(func, "strict", strict)
    overrides = V.mapping(func, arg, overrides)
    st = table[name].preset(size)
    if overrides:
        st, _ = S._override(st, overrides, strict=strict, func=func, arg=arg)
    return Job(kind=kind, name=name, settings=st, seed=seed, size=size)


def figure_job(name: str, *, size: str, seed: int, overrides: Mapping[str, Any] | None = None,
               strict: bool = True) -> Job:
    """The job for figure ``name`` at preset ``size`` with ``overrides`` applied."""
    return _job("figure_job", "figure", name, size, seed, overrides, strict)


# --------------------------------------------------------------------------- tasks (run anywhere)
@dataclass(frozen=True)
class BlockTask:
    """Trials ``start .. stop-1`` of experiment ``name`` at ``settings`` and ``seed``."""

    name: str
    settings: Any
    seed: int
    start: int
    stop: int
    deps: Mapping[str, Any]

    def __call__(self) -> list:
        spec = R.EXPERIMENTS[self.name]
        ss = _seeds.stream(self.seed, *spec.stream_path(self.settings))
        seeds = _seeds.trial_seeds(ss, self.start, self.stop)
        if spec.batched:  # one value for the block: combine receives one value per block
            return [spec.trial(self.settings, seeds, self.deps)]
        return [spec.trial(self.settings, s, self.deps) for s in seeds]


@dataclass(frozen=True)
class ClaimTask:
    """Evaluate claim ``name`` from ``results`` (its experiments)."""

    name: str
    settings: Any
    seed: int
    size: str | None
    results: Mapping[str, Any]

    def __call__(self) -> dict:
        spec = R.CLAIMS[self.name]
        t0 = time.perf_counter()
        try:
            out = spec.evaluate(self.settings, seed=self.seed, **self.results)
            return R.record(spec, out, settings=self.settings, seed=self.seed, size=self.size,
                            seconds=time.perf_counter() - t0)
        except Exception as e:
            return R.error_record(spec, settings=self.settings, seed=self.seed, size=self.size, message=one_line(e),
                                  seconds=time.perf_counter() - t0)


@dataclass(frozen=True)
class FigureTask:
    """Draw figure ``name`` from ``results`` and render it to PNG and SVG bytes."""

    name: str
    settings: Any
    seed: int
    results: Mapping[str, Any]

    def __call__(self) -> dict:
        spec = R.FIGURES[self.name]
        t0 = time.perf_counter()
        try:
            fig = spec.draw(self.settings, seed=self.seed, **self.results)
            png, svg = render_figure(fig)
            return {"name": spec.name, "png": png, "svg": svg, "seconds": round(time.perf_counter() - t0, 3)}
        except Exception as e:
            return {"name": spec.name, "png": None, "svg": None, "seconds": round(time.perf_counter() - t0, 3),
                    "error": one_line(e)}


def render_figure(fig: Any) -> tuple[bytes, bytes]:
    """PNG and SVG bytes of a matplotlib Figure, byte-for-byte reproducible (no dates, fixed SVG ids)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise V.fail("render_figure", "fig", "a matplotlib Figure", V.describe(fig))

    try:
        png, svg = io.BytesIO(), io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": "concurrence", "svg.fonttype": "path"}):
            fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        return png.getvalue(), svg.getvalue()
    finally:
        plt.close(fig)


def one_line(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{where}"


# --------------------------------------------------------------------------- worker processes
_BLAS_LIMIT: Any = None


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: fall back to the check below only
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def init_worker(parent: int, plugin_specs: tuple[str, ...]) -> None:
    """Initializer of a local worker: die with the parent, one BLAS thread, registrations loaded."""
    global _BLAS_LIMIT
    _die_with_parent(parent)
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT = threadpool_limits(limits=1)
    _plugins.load(plugin_specs)


def execute(task: Callable[[], Any], plugin_specs: tuple[str, ...] = (), blas_threads: int | None = 1) -> Any:
    """Run ``task`` after loading the registrations and plugins (idempotent), BLAS limited."""
    _plugins.load(plugin_specs)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return task()


class _SerialFuture(cf.Future):
    pass


class _Executor:
    """Serial, local processes, or dask: ``submit(task) -> future`` and ``wait_any(futures)``."""

    def __init__(self, *, workers: int, scheduler: Any, plugin_specs: tuple[str, ...]):
        self.plugins = plugin_specs
        self.kind = "dask" if scheduler is not None else ("serial" if workers == 1 else "pool")
        self.capacity = 1
        self.pool = None
        self.client = None
        self._own_client = False
        if self.kind == "pool":
            import multiprocessing as mp

            n = os.cpu_count() or 1 if workers < 0 else workers
            self.capacity = max(1, int(n))
            # fork: no re-import of the caller's __main__ (scripts and notebooks need no main guard); the
            # initializer still loads the registrations and plugins, so the same holds on dask workers
            self.pool = cf.ProcessPoolExecutor(max_workers=self.capacity, mp_context=mp.get_context("fork"),
                                               initializer=init_worker, initargs=(os.getpid(), plugin_specs))
        elif self.kind == "dask":
            from compare.engine.cluster import connect

            self._own_client = isinstance(scheduler, str)
            self.client = connect(scheduler)
            info = self.client.scheduler_info()
            self.capacity = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def submit(self, task: Callable[[], Any], *, threads: int | None = 1) -> Any:
        if self.kind == "serial":
            fut = _SerialFuture()
            try:
                fut.set_result(execute(task, self.plugins, threads))
            except BaseException as e:  # noqa: BLE001 - reported by the caller
                fut.set_exception(e)
            return fut
        if self.kind == "pool":
            return self.pool.submit(execute, task, self.plugins, 1)
        return self.client.submit(execute, task, self.plugins, 1, pure=False)

    def wait_any(self, pending: Iterable[Any], timeout: float | None) -> set:
        pending = list(pending)
        if not pending:
            return set()
        if self.kind == "dask":  # poll: distributed.wait needs a default client, ours is private
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                done = {f for f in pending if f.done()}
                if done or (deadline is not None and time.monotonic() >= deadline):
                    return done
                time.sleep(0.02)
        done, _ = cf.wait(pending, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return set(done)

    def result(self, fut: Any) -> Any:
        return fut.result()

    def close(self, *, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
            self.pool = None
        if self.client is not None and self._own_client:
            self.client.close()
        self.client = None


# --------------------------------------------------------------------------- the graph
@dataclass(eq=False)
class _Exp:
    spec: R.Experiment
    settings: Any
    seed: int
    deps: dict[str, "_Exp"]
    blocks: list[tuple[int, int]]
    values: dict[int, list] = field(default_factory=dict)   # block index -> trial values
    running: set[int] = field(default_factory=set)
    result: Any = None
    done: bool = False
    error: str | None = None

    def key(self, b: int) -> dict[str, Any]:
        a, z = self.blocks[b]
        return {"experiment": self.spec.name, "settings": self.settings, "seed": self.seed, "trials": [a, z]}

    @property
    def ready(self) -> bool:
        return all(d.done and d.error is None for d in self.deps.values())


@dataclass
class RunResult:
    """What :func:`run` produced: results by job, which came from the cache, what was computed."""

    results: dict[Job, Any] = field(default_factory=dict)
    from_cache: set[Job] = field(default_factory=set)
    seconds: float = 0.0
    blocks_computed: int = 0
    blocks_cached: int = 0
    experiments: int = 0


def _blocks(n: int, block: int | None, capacity: int) -> list[tuple[int, int]]:
    if n <= 0:
        return []
    size = block or max(1, math.ceil(n / max(4, 2 * capacity)))
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def run(
    jobs: Sequence[Job],
    *,
    workers: int = 1,
    scheduler: Any = None,
    cache: Cache | None = None,
    plugins: Sequence[str] = (),
    progress: bool = False,
    desc: str = "compare",
    on_result: Callable[[Job, Any, bool], None] | None = None,
) -> RunResult:
    """Compute ``jobs`` (claims and figures), reusing and filling ``cache``.

    workers: local worker processes (1: in this process; -1: every core).
    scheduler: a ``distributed.Client`` or scheduler address (then ``workers`` is ignored).
    cache: where finished pieces are stored (``None``: nothing stored or reused).
    plugins: user modules imported here and in every worker (:mod:`compare.engine.plugins`).
    progress: show a tqdm bar on stderr. desc: its label.
    on_result: ``on_result(job, result, from_cache)`` as each job finishes.
    """
    from tqdm import tqdm

    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Iterable) or isinstance(jobs, Mapping):
        raise V.fail("run", "jobs", "a sequence of jobs (claim_job / figure_job)", V.describe(jobs))
    jobs = list(jobs)
    if not all(isinstance(j, Job) for j in jobs):
        bad = next(j for j in jobs if not isinstance(j, Job))
        raise V.fail("run", "jobs", "a sequence of jobs (claim_job / figure_job)", f"an entry {V.describe(bad)}")
    plugin_specs = _common_args("run", workers=workers, scheduler=scheduler, cache=cache, plugins=plugins)
    V.flag("run", "progress", progress)
    V.text("run", "desc", desc, empty=True)
    V.function("run", "on_result", on_result, optional=True)
    _plugins.load(plugin_specs)
    t0 = time.perf_counter()
    out = RunResult()
    use_cache = cache is not None and cache.enabled

    # 1. jobs already in the cache
    todo: list[Job] = []
    for j in jobs:
        hit, value = cache.load(j.key(), namespace=j.namespace) if use_cache else (False, None)
        if hit:
            value = _from_store(j, value)
            out.results[j] = value
            out.from_cache.add(j)
            if on_result is not None:
                on_result(j, value, True)
        else:
            todo.append(j)
    todo = list(dict.fromkeys(todo))
    if not todo:
        out.seconds = time.perf_counter() - t0
        return out

    ex = _Executor(workers=int(workers), scheduler=scheduler, plugin_specs=plugin_specs)
    try:
        _run_graph(todo, ex, cache if use_cache else None, out, on_result, progress, desc, tqdm)
    except BaseException:
        ex.close(cancel=True)
        raise
    ex.close()
    out.seconds = time.perf_counter() - t0
    return out


def _common_args(func: str, *, workers: Any, scheduler: Any, cache: Any, plugins: Any) -> tuple[str, ...]:
    """The arguments :func:`run` and :func:`compute` share, checked; returns the plugin specs."""
    if isinstance(workers, (int, np.integer)) and not isinstance(workers, (bool, np.bool_)) and workers == 0:
        raise V.fail(func, "workers", "a nonzero integer (1: this process; -1: one worker per core)", "0")
    if not (isinstance(workers, (int, np.integer)) and workers == -1):
        V.count(func, "workers", workers, low=1, high=MAX_WORKERS,
                what="-1 or a number of local worker processes, each a forked copy of this process")
    if not (scheduler is None or isinstance(scheduler, str) or hasattr(scheduler, "submit")):
        raise V.fail(func, "scheduler", "None, a scheduler address or a distributed.Client", V.describe(scheduler))
    if not (cache is None or isinstance(cache, Cache)):
        raise V.fail(func, "cache", "None or a compare.engine.cache.Cache", V.describe(cache))
    return _plugins.check_specs(func, "plugins", plugins)


def _reads(j: Job) -> Mapping[str, R.ExperimentRef]:
    spec = R.CLAIMS[j.name] if j.kind == "claim" else R.FIGURES[j.name]
    return dict(spec.reads(j.settings))


def _run_graph(todo, ex, cache, out, on_result, progress, desc, tqdm) -> None:
    exps: dict[str, _Exp] = {}

    def node(r: R.ExperimentRef, seed: int) -> _Exp:
        if r.name not in R.EXPERIMENTS:
            raise ValueError(f"run: experiment {r.name!r} is not registered")
        k = key_digest({"n": r.name, "s": r.settings, "seed": seed})
        if k in exps:
            return exps[k]
        spec = R.EXPERIMENTS[r.name]
        deps = {name: node(dr, seed) for name, dr in spec.requires(r.settings).items()}
        e = _Exp(spec, r.settings, seed, deps, _blocks(int(spec.trials(r.settings)), spec.block, ex.capacity))
        exps[k] = e
        if cache is not None:
            for b in range(len(e.blocks)):
                hit, value = cache.load(e.key(b), namespace="experiments")
                if hit:
                    e.values[b] = value
                    out.blocks_cached += 1
        return e

    job_exps = {j: {name: node(r, j.seed) for name, r in _reads(j).items()} for j in todo}
    out.experiments = len(exps)
    # combine experiments whose blocks all came from the cache (dependencies first)
    for e in _topological(exps.values()):
        _maybe_combine(e)

    total = sum(len(e.blocks) - len(e.values) for e in exps.values()) + len(todo)
    bar = tqdm(total=total, desc=desc, disable=not progress, dynamic_ncols=True, leave=False, file=sys.stderr)
    pending: dict[Any, tuple] = {}          # future -> ("block", exp, b, lock) | ("job", job, lock)
    elsewhere: list[tuple] = []             # pieces another process is computing
    remaining = set(todo)
    order = _topological(exps.values())
    try:
        while remaining:
            progressed = _poll_elsewhere(elsewhere, cache, out, on_result, remaining, bar)
            for e in order:
                _maybe_combine(e)
            # submit ready pieces, longest first, keeping the executor busy
            ready = _ready_pieces(exps, job_exps, remaining, pending, elsewhere)
            for piece in ready:
                if len(pending) >= 2 * ex.capacity:
                    break
                if piece[0] == "job" and _job_error(piece[1], job_exps):
                    _complete(piece, None, _job_error(piece[1], job_exps), None, out, on_result, remaining, bar,
                              stored=False)
                    progressed = True
                    continue
                lock = None
                if cache is not None:
                    k, ns = _piece_key(piece)
                    lock = cache.lock(k, namespace=ns)
                    if lock is None:  # another run computes it: wait for its entry
                        elsewhere.append(piece)
                        continue
                    hit, value = cache.load(k, namespace=ns)  # finished while we looked
                    if hit:
                        lock.release()
                        _complete(piece, value, None, cache, out, on_result, remaining, bar, stored=True)
                        progressed = True
                        continue
                fut = ex.submit(_task(piece, job_exps), threads=_threads(piece))
                pending[fut] = (*piece, lock)
            if not pending:
                if not progressed and elsewhere:
                    time.sleep(POLL_S)
                    continue
                if not progressed and not elsewhere:
                    _fail_blocked(job_exps, remaining, out, on_result, bar)
                continue
            for fut in ex.wait_any(pending, timeout=POLL_S if elsewhere else None):
                piece = pending.pop(fut)
                *piece, lock = piece
                try:
                    value, err = ex.result(fut), None
                except Exception as e:  # noqa: BLE001 - a block that raised: its readers report it
                    value, err = None, one_line(e)
                try:
                    _complete(tuple(piece), value, err, cache, out, on_result, remaining, bar, stored=False)
                finally:
                    if lock is not None:
                        lock.release()
    finally:
        bar.close()


def _topological(nodes: Iterable[_Exp]) -> list[_Exp]:
    seen: set[int] = set()
    order: list[_Exp] = []

    def visit(e: _Exp) -> None:
        if id(e) in seen:
            return
        seen.add(id(e))
        for d in e.deps.values():
            visit(d)
        order.append(e)

    for e in nodes:
        visit(e)
    return order


def _maybe_combine(e: _Exp) -> None:
    if e.done or len(e.values) < len(e.blocks) or not e.ready:
        return
    deps = {k: d.result for k, d in e.deps.items()}
    values = [v for b in range(len(e.blocks)) for v in e.values[b]]
    try:
        e.result = e.spec.combine(e.settings, values, deps)
    except Exception as ex:  # noqa: BLE001
        e.error = f"combining experiment {e.spec.name!r} failed: {one_line(ex)}"
    e.done = True


def _ready_pieces(exps, job_exps, remaining, pending, elsewhere) -> list[tuple]:
    busy = {(id(p[1]), p[2]) for p in list(pending.values()) + elsewhere if p[0] == "block"}
    busy_jobs = {p[1] for p in list(pending.values()) + elsewhere if p[0] == "job"}
    pieces: list[tuple[float, tuple]] = []
    for e in exps.values():
        if e.done or not e.ready:
            continue
        cost = e.spec.trial_cost(e.settings)
        for b, (a, z) in enumerate(e.blocks):
            if b in e.values or (id(e), b) in busy:
                continue
            pieces.append((cost * (z - a), ("block", e, b)))
    for j in remaining:
        if j in busy_jobs:
            continue
        ex = job_exps[j]
        if all(e.done for e in ex.values()) or _job_error(j, job_exps):
            pieces.append((0.5 if j.kind == "figure" else 0.1, ("job", j)))
    pieces.sort(key=lambda cp: -cp[0])
    return [p for _, p in pieces]


def _piece_key(piece: tuple) -> tuple[dict, str]:
    if piece[0] == "block":
        return piece[1].key(piece[2]), "experiments"
    j = piece[1]
    return j.key(), j.namespace


def _threads(piece: tuple) -> int | None:
    return piece[1].spec.blas_threads(piece[1].settings) if piece[0] == "block" else 1


def _task(piece: tuple, job_exps) -> Callable[[], Any]:
    if piece[0] == "block":
        e, b = piece[1], piece[2]
        a, z = e.blocks[b]
        return BlockTask(e.spec.name, e.settings, e.seed, a, z, {k: d.result for k, d in e.deps.items()})
    j = piece[1]
    results = {k: e.result for k, e in job_exps[j].items()}
    if j.kind == "claim":
        return ClaimTask(j.name, j.settings, j.seed, j.size, results)
    return FigureTask(j.name, j.settings, j.seed, results)


def _job_error(j: Job, job_exps) -> str | None:
    """The first error among the experiments ``j`` reads, or the experiments they require."""
    for e in _topological(job_exps[j].values()):
        if e.error:
            return e.error
    return None


def _error_result(j: Job, message: str) -> dict:
    if j.kind == "claim":
        return R.error_record(R.CLAIMS[j.name], settings=j.settings, seed=j.seed, size=j.size, message=message,
                              seconds=0.0)
    return {"name": j.name, "png": None, "svg": None, "seconds": 0.0, "error": message}


def _to_store(j: Job, value: dict) -> dict:
    if j.kind == "figure":
        return {**value, "png": np.frombuffer(value["png"], np.uint8), "svg": np.frombuffer(value["svg"], np.uint8)}
    return value


def _from_store(j: Job, value: dict) -> dict:
    if j.kind == "figure":
        return {**value, "png": bytes(np.asarray(value["png"], np.uint8)),
                "svg": bytes(np.asarray(value["svg"], np.uint8))}
    return value


def _complete(piece, value, err, cache, out, on_result, remaining, bar, *, stored: bool) -> None:
    if piece[0] == "block":
        e, b = piece[1], piece[2]
        if err is not None:
            e.error = f"experiment {e.spec.name!r} failed: {err}"
            e.done = True
        else:
            if cache is not None and not stored:
                _store(cache, e.key(b), value, "experiments")
            e.values[b] = value
            out.blocks_computed += 0 if stored else 1
            _maybe_combine(e)
        bar.update(1)
        return
    j = piece[1]
    if err is not None:
        value = _error_result(j, err)
    elif stored:
        value = _from_store(j, value)
    elif cache is not None and "error" not in value:
        _store(cache, j.key(), _to_store(j, value), j.namespace)
    out.results[j] = value
    if stored:
        out.from_cache.add(j)
    remaining.discard(j)
    bar.update(1)
    if on_result is not None:
        on_result(j, value, stored)


def _store(cache: Cache, key: dict, value: Any, ns: str) -> None:
    from compare.engine.cache import notice

    try:
        cache.store(key, value, namespace=ns)
    except OSError as e:  # disk full, permissions changed: keep going, say so once
        notice("store", str(cache.root), f"could not write to the cache {cache.root} ({e}); continuing without "
                                         f"storing results")


def _poll_elsewhere(elsewhere, cache, out, on_result, remaining, bar) -> bool:
    """Pieces another process was computing: take its entry when written, or take over if it died."""
    progressed = False
    for piece in list(elsewhere):
        k, ns = _piece_key(piece)
        hit, value = cache.load(k, namespace=ns)
        if hit:
            elsewhere.remove(piece)
            _complete(piece, value, None, cache, out, on_result, remaining, bar, stored=True)
            progressed = True
            continue
        lock = cache.lock(k, namespace=ns)
        if lock is not None:  # the other run died (or failed): compute it here
            lock.release()
            elsewhere.remove(piece)
            progressed = True
    return progressed


def _fail_blocked(job_exps, remaining, out, on_result, bar) -> None:
    """Jobs that can never run (an experiment they read failed): report them."""
    for j in list(remaining):
        err = _job_error(j, job_exps) or "its experiments could not be computed"
        value = _error_result(j, err)
        out.results[j] = value
        remaining.discard(j)
        bar.update(1)
        if on_result is not None:
            on_result(j, value, False)


# --------------------------------------------------------------------------- one experiment
def compute(name: str, settings: Any, *, seed: int, workers: int = 1, scheduler: Any = None,
            cache: Cache | None = None, plugins: Sequence[str] = ()) -> Any:
    """The combined result of experiment ``name`` at ``settings`` with master ``seed``.

    The same value a claim or figure reading ``ref(name, settings)`` receives in :func:`run`: the
    same blocks, streams, ``combine`` and cache entries. The experiments it requires are computed
    first (each once), then its blocks (on the executor), then ``combine``. workers, scheduler,
    cache, plugins: as in :func:`run`. A trial or combine that raises propagates its exception.
    Two processes sharing ``cache`` may both compute a missing block (equal values, atomic writes);
    :func:`run` is the one that coordinates them.
    """
    plugin_specs = _common_args("compute", workers=workers, scheduler=scheduler, cache=cache, plugins=plugins)
    _plugins.load(plugin_specs)
    V.text("compute", "name", name)
    if name not in R.EXPERIMENTS:
        raise ValueError(f"compute: argument 'name' must be a registered experiment (one of "
                         f"{', '.join(sorted(R.EXPERIMENTS))}); got {name!r}.")
    if not isinstance(settings, R.EXPERIMENTS[name].settings):
        raise ValueError(f"compute: argument 'settings' must be a {R.EXPERIMENTS[name].settings.__name__} "
                         f"(experiment {name!r}); got {type(settings).__name__}.")
    seed = _seeds._check_seed("compute", seed)
    store = cache if cache is not None and cache.enabled else None
    ex = _Executor(workers=int(workers), scheduler=scheduler, plugin_specs=plugin_specs)
    done: dict[str, Any] = {}

    def result(r: R.ExperimentRef) -> Any:
        k = key_digest({"n": r.name, "s": r.settings, "seed": seed})
        if k in done:
            return done[k]
        if r.name not in R.EXPERIMENTS:
            raise ValueError(f"compute: experiment {r.name!r} is not registered")
        spec = R.EXPERIMENTS[r.name]
        deps = {n: result(d) for n, d in spec.requires(r.settings).items()}
        e = _Exp(spec, r.settings, seed, {}, _blocks(int(spec.trials(r.settings)), spec.block, ex.capacity))
        futs = {}
        for b, (a, z) in enumerate(e.blocks):
            hit, value = store.load(e.key(b), namespace="experiments") if store else (False, None)
            if hit:
                e.values[b] = value
            else:
                futs[b] = ex.submit(BlockTask(spec.name, r.settings, seed, a, z, deps),
                                    threads=spec.blas_threads(r.settings))
        for b, fut in futs.items():
            e.values[b] = ex.result(fut)
            if store is not None:
                _store(store, e.key(b), e.values[b], "experiments")
        done[k] = spec.combine(r.settings, [v for b in range(len(e.blocks)) for v in e.values[b]], deps)
        return done[k]

    try:
        out = result(R.ref(name, settings))
    except BaseException:
        ex.close(cancel=True)
        raise
    ex.close()
    return out
