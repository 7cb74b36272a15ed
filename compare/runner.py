"""Running claims and figures: cached, resumable, in parallel (joblib) or on a dask cluster.

A *task* is one claim or one figure at a setting ``(size, seed)``. :func:`run` looks every task
up in the cache (:mod:`compare.cache`, namespaces ``claims`` and ``figures``), sends the rest to
:func:`simulate.trials.imap_unordered` (serial, joblib workers, or dask futures) and stores each
result atomically the moment it comes back, so a run killed with SIGKILL loses only the tasks in
flight; a rerun recomputes exactly those. Results do not depend on the executor: each task draws
from streams derived from ``seed`` alone (docs/theory.md section 6, ``SeedSequence.spawn``), and every
worker runs with one BLAS thread.

A claim's result is its record (:func:`compare.registry.evaluate`); a figure's is its rendering
(PNG and SVG bytes, deterministic: no dates, fixed SVG id salt). A task that raises becomes an
error result (the record's verdict is ``"fails"``, with the message in ``error``); errors are
never cached.

.. math::

    \\text{result}(\\text{task}) = f(\\text{task}, \\text{seed}) \\quad\\text{independent of jobs, scheduler, cache}
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from compare import cache as _cache
from compare.registry import Claim, FigureSpec, SIZES, evaluate, figures, registry

#: Default modules whose import fills the claim and figure registries.
BASE_MODULES = ("compare.claims", "compare.plots")
#: Figure rendering: resolution of the PNG files (dots per inch).
PNG_DPI = 110


@dataclass(frozen=True)
class Task:
    """One unit of work: claim or figure ``name`` at ``size`` with master ``seed``."""

    kind: str  # "claim" | "figure"
    name: str
    size: str
    seed: int

    def key(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "size": self.size, "seed": self.seed}

    @property
    def namespace(self) -> str:
        return self.kind + "s"


# --------------------------------------------------------------------------- registries
_LOADED: dict[str, Any] = {}


def load_modules(extra: Sequence[str] = ()) -> None:
    """Import the claim and figure modules: the defaults plus ``extra``.

    extra: module names (``"tests.compare.fake_claims"``) or paths to ``.py`` files that
        register more claims/figures (for tests and for users' own checks).
    """
    for name in (*BASE_MODULES, *extra):
        if name in _LOADED:
            continue
        if name.endswith(".py"):
            path = Path(name).resolve()
            if not path.is_file():
                raise ValueError(f"load_modules: argument 'extra' must name importable modules or .py files; "
                                 f"got {name!r} (no such file).")
            modname = "_concurrence_extra_" + path.stem
            mod = sys.modules.get(modname)
            if mod is None:
                spec = importlib.util.spec_from_file_location(modname, path)
                mod = importlib.util.module_from_spec(spec)
                sys.modules[modname] = mod
                spec.loader.exec_module(mod)
            _LOADED[name] = mod
        else:
            try:
                _LOADED[name] = importlib.import_module(name)
            except ModuleNotFoundError as e:
                if e.name and name.startswith(e.name) and name not in BASE_MODULES:
                    raise ValueError(f"load_modules: argument 'extra' must name importable modules or .py "
                                     f"files; got {name!r} ({e}).") from None
                raise


def _order_key(claim_id: str) -> tuple:
    head = claim_id.rstrip("0123456789")
    tail = claim_id[len(head):]
    return (head, int(tail) if tail else -1, claim_id)


def claims() -> dict[str, Claim]:
    """Every registered claim, ordered by id (``C1 < C2 < ... < C10``)."""
    return dict(sorted(registry().items(), key=lambda kv: _order_key(kv[0])))


def figure_specs() -> dict[str, FigureSpec]:
    """Every registered figure, ordered by name."""
    return dict(sorted(figures().items(), key=lambda kv: _order_key(kv[0])))


# --------------------------------------------------------------------------- rendering
def render_figure(fig: Any) -> tuple[bytes, bytes]:
    """PNG and SVG bytes of a matplotlib Figure, byte-for-byte reproducible.

    fig: the Figure (closed afterwards).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    try:
        png, svg = io.BytesIO(), io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": "concurrence", "svg.fonttype": "path"}):
            fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        return png.getvalue(), svg.getvalue()
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- one task
def _error_record(claim: Claim, task: Task, message: str, seconds: float) -> dict[str, Any]:
    return {
        "id": claim.id, "paper_ref": claim.paper_ref, "theory_ref": claim.theory_ref, "kind": claim.kind,
        "statement": claim.statement, "reconstructed": claim.reconstructed, "figure": claim.figure,
        "prediction": None, "measured": None, "stderr": None, "tolerance": None,
        "tolerance_source": "the claim raised an exception", "alpha": None, "passed": False,
        "verdict": "fails", "seconds": round(seconds, 3), "size": task.size, "seed": task.seed, "rows": [],
        "error": message,
    }


def run_task(task: Task) -> dict[str, Any]:
    """Compute one task in this process (registries must be loaded). Never raises for the task's
    own errors: they come back as a result with an ``error`` message."""
    t0 = time.perf_counter()
    if task.kind == "claim":
        claim = registry()[task.name]
        try:
            return evaluate(claim, size=task.size, seed=task.seed)
        except Exception as e:  # reported on the page, never cached
            return _error_record(claim, task, _one_line(e), time.perf_counter() - t0)
    spec = figures()[task.name]
    try:
        # BLAS threads: a parallel worker runs under one thread (simulate.trials); a serial run
        # leaves the choice to the figure's code
        fig = spec.make(size=task.size, seed=task.seed, jobs=1, scheduler=None)
        png, svg = render_figure(fig)
        return {"name": spec.name, "png": png, "svg": svg, "seconds": round(time.perf_counter() - t0, 3)}
    except Exception as e:
        return {"name": spec.name, "png": None, "svg": None, "seconds": round(time.perf_counter() - t0, 3),
                "error": _one_line(e)}


def _one_line(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{where}"


@contextlib.contextmanager
def _env(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class _Worker:
    """The function sent to workers: load the registries, then compute one task."""

    modules: tuple[str, ...]
    cache_dir: str | None
    progress: bool
    version: str | None = None  # the run's code version: one version for every piece of one run

    def __call__(self, task: Task) -> dict[str, Any]:
        load_modules(self.modules)
        env = {_cache.ENV_DIR: self.cache_dir}
        if self.version:
            env[_cache.ENV_VERSION] = self.version
        if not self.progress:
            env[_cache.ENV_PROGRESS] = "0"
        with _env(**env):
            return run_task(task)


# --------------------------------------------------------------------------- many tasks
@dataclass
class RunResult:
    """What :func:`run` produced: results by task, which came from the cache, wall time."""

    results: dict[Task, dict[str, Any]]
    from_cache: set[Task] = field(default_factory=set)
    seconds: float = 0.0


def run(
    tasks: Sequence[Task],
    *,
    jobs: int = 1,
    scheduler: Any = None,
    cache: _cache.Cache | None = None,
    modules: Sequence[str] = (),
    progress: bool = False,
    desc: str = "compare",
    on_result: Callable[[Task, dict[str, Any], bool], None] | None = None,
) -> RunResult:
    """Compute ``tasks``, reusing and filling ``cache``.

    tasks: the claims and figures to run (each at its own size and seed).
    jobs: joblib worker processes (1: serial in this process; -1: every core).
    scheduler: a ``distributed.Client`` or scheduler address: run the tasks on that cluster.
    cache: where finished tasks are stored (``None``: no caching).
    modules: extra claim/figure modules the workers must import (see :func:`load_modules`).
    progress: show a tqdm bar over the tasks (callers pass "stderr is a terminal and not quiet").
    desc: label of the bar.
    on_result: called as ``on_result(task, result, from_cache)`` for each finished task, in order
        of completion (after the result is stored).
    """
    from tqdm import tqdm

    from simulate.trials import imap_unordered

    t0 = time.perf_counter()
    for t in tasks:
        if t.size not in SIZES:
            raise ValueError(f"run: argument 'size' must be one of {SIZES}; got {t.size!r}.")
    out = RunResult(results={})
    todo: list[Task] = []
    for t in tasks:
        hit, value = cache.load(t.key(), namespace=t.namespace) if cache is not None else (False, None)
        if hit:
            out.results[t] = value
            out.from_cache.add(t)
        else:
            todo.append(t)
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, disable=not progress,
               dynamic_ncols=True, leave=False, file=sys.stderr)
    try:
        for t in tasks:
            if t in out.from_cache and on_result is not None:
                on_result(t, out.results[t], True)
        serial = scheduler is None and (jobs == 1 or len(todo) <= 1)
        use = cache is not None and cache.enabled
        worker = _Worker(tuple(modules), str(cache.root.resolve()) if use else None, progress and serial,
                         cache.version if use else None)
        for i, value in imap_unordered(worker, todo, jobs=jobs, scheduler=scheduler, blas_threads=1):
            t = todo[i]
            if cache is not None and "error" not in value:
                try:
                    cache.store(t.key(), value, namespace=t.namespace)
                except OSError as e:  # disk full, permissions changed: keep going, say so once
                    _cache._notice("store", str(cache.root), f"could not write to the cache {cache.root} ({e}); "
                                                             f"continuing without storing results")
            out.results[t] = value
            bar.set_postfix_str(t.name, refresh=False)
            bar.update(1)
            if on_result is not None:
                on_result(t, value, False)
    finally:
        bar.close()
    out.seconds = time.perf_counter() - t0
    return out
