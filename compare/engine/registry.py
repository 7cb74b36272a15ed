"""The live registries: experiments, claims and figures, each registered with one decorator.

- An **experiment** is a pure function of ``(settings, seed)``, written as one trial
  ``trial(settings, seed_sequence, deps) -> value`` and ``combine(settings, values, deps) -> result``
  over ``trials(settings)`` independent trials drawn from the stream ``stream(seed, *path)``; it
  may require other experiments (``deps``). The runner computes each experiment once per run, in
  blocks of trials, however many claims and figures read it.
- A **claim** declares the experiments it reads (``reads(settings) -> {name: ExperimentRef}``) and
  evaluates from their results: ``evaluate(settings, *, seed, **results) -> Outcome``. A claim that
  reads nothing computes inside ``evaluate`` (cheap exact checks).
- A **figure** likewise draws from results: ``draw(settings, *, seed, **results) -> Figure``, with a
  caption generated from the settings actually run.

Each has a settings dataclass (:mod:`compare.engine.settings`) with ``fast`` and ``paper`` presets.
Registering over an existing name raises unless ``replace=True`` (a plugin replacing a built-in must
say so).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from compare import _validate as V
from compare import stats as _stats
from compare.engine import settings as _settings

#: exact: a deterministic agreement check (tolerance from a derivation); statistical: an agreement
#: check with a false-failure rate alpha; ordering: a statement of the paper comparing methods
#: (alpha bounds false "holds"; verdict holds / inconclusive / contradicted).
KINDS = ("exact", "statistical", "ordering")
SIZES = _settings.SIZES


# --------------------------------------------------------------------------- outcome
@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one run of a claim measured.

    prediction, measured: the headline numbers, from the row that decided the verdict
        (:func:`compare.stats.deciding_row`).
    stderr: standard error of ``measured`` (``None`` for exact checks).
    tolerance: the allowed |measured - prediction| (two-sided), or the amount by which measured must
        exceed prediction (ordering; ``direction`` says which).
    alpha: the claim's family-wise error rate (``None`` for deterministic checks); ``alpha_bounds``
        says what it bounds (``"false failure"`` or ``"false holds"``).
    verdict: ``holds`` / ``fails`` (agreement) or ``holds`` / ``inconclusive`` / ``contradicted``.
    tolerance_source: where the tolerance comes from. rows: the table behind the headline.
    test: the headline row's test (``"two-sided t, 29 df"``). detectable: agreement claims: the
        smallest relative error of a prediction caught with probability >= 0.9 (largest over the rows that
        test a prediction; a one-sided row marked ``role="bound"`` checks a stated upper bound, not a
        prediction, and states its own ``detectable``, the relative excess over the bound it catches, without
        entering the claim's unless every row is a bound).
    direction: ``"two-sided"``, ``"measured <= prediction"`` or ``"measured > MARGIN"``.
    """

    prediction: float | None
    measured: float | None
    stderr: float | None
    tolerance: float | None
    alpha: float | None
    verdict: str
    tolerance_source: str
    rows: tuple[Mapping[str, Any], ...] = ()
    test: str | None = None
    alpha_bounds: str | None = None
    detectable: float | None = None
    direction: str | None = None

    def __post_init__(self):
        if self.verdict not in _stats.VERDICTS:
            raise ValueError(f"Outcome: argument 'verdict' must be one of {_stats.VERDICTS}; got {self.verdict!r}.")

    @property
    def passed(self) -> bool:
        return self.verdict == "holds"

    @classmethod
    def agreement(cls, rows: Sequence[Mapping[str, Any]], *, source: str, alpha: float | None) -> "Outcome":
        """The outcome of an agreement claim from its rows (:meth:`compare.stats.Agreement.row` dicts).

        alpha: the claim's family-wise false-failure rate (``None``: every row is deterministic).
        """
        f = "Outcome.agreement"
        rows = tuple(dict(r) for r in _check_rows(f, rows, ("passed", "measured", "prediction", "tolerance")))
        V.text(f, "source", source)
        alpha = None if alpha is None else V.prob(f, "alpha", alpha)
        verdict = _stats.agreement_verdict(rows)
        head = _stats.deciding_row(rows, verdict)
        det = [r["detectable"] for r in rows if r.get("detectable") is not None and r.get("role") != "bound"] or \
            [r["detectable"] for r in rows if r.get("detectable") is not None]
        return cls(prediction=head["prediction"], measured=head["measured"], stderr=head.get("stderr"),
                   tolerance=head["tolerance"], alpha=alpha, verdict=verdict, tolerance_source=source, rows=rows,
                   test=head.get("test"), alpha_bounds=_stats.FALSE_FAILURE if alpha is not None else None,
                   detectable=max(det) if det else None, direction=head.get("direction", "two-sided"))

    @classmethod
    def ordering(cls, rows: Sequence[Mapping[str, Any]], *, source: str, alpha: float) -> "Outcome":
        """The outcome of a paper statement from its component rows (:meth:`compare.stats.Ordering.row`).

        alpha: the claim's false-holds rate (each component tested at alpha: intersection-union).
        """
        f = "Outcome.ordering"
        rows = tuple(dict(r) for r in _check_rows(f, rows, ("shown", "reverse_shown", "p_value", "reverse_p_value",
                                                             "estimate", "margin", "critical", "test", "direction")))
        V.text(f, "source", source)
        alpha = V.prob(f, "alpha", alpha)
        verdict = _stats.ordering_verdict(rows)
        head = _stats.deciding_row(rows, verdict)
        se = head.get("stderr")
        return cls(prediction=head["margin"], measured=head["estimate"], stderr=se,
                   tolerance=head["critical"] * se if se is not None else None, alpha=alpha, verdict=verdict,
                   tolerance_source=source, rows=rows, test=head["test"], alpha_bounds=_stats.FALSE_HOLDS,
                   detectable=None, direction=head["direction"])


def _check_rows(func: str, rows: Any, keys: tuple[str, ...]) -> list:
    out = V.rows(func, "rows", rows, keys=keys)
    if not all(isinstance(r, Mapping) for r in out):
        raise V.fail(func, "rows", "dicts (Agreement.row / Ordering.row)", "a row that is not a dict")
    return out


# --------------------------------------------------------------------------- specs
@dataclass(frozen=True, kw_only=True)
class ExperimentRef:
    """A request for experiment ``name`` at ``settings`` (its seed is the run's master seed)."""

    name: str
    settings: Any


def ref(name: str, settings: Any) -> ExperimentRef:
    """Shorthand for :class:`ExperimentRef`."""
    V.text("ref", "name", name)
    V.settings_instance("ref", "settings", settings)
    return ExperimentRef(name=name, settings=settings)


def _no_requirements(settings: Any) -> Mapping[str, ExperimentRef]:
    return {}


def _stack(settings: Any, values: list, deps: Mapping[str, Any]) -> list:
    return values


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One registered experiment (see the module docstring).

    name: registry name. settings: its settings dataclass. trial, combine, trials, requires: as in
    the module docstring. stream: the stream path under the master seed (default ``(name,)``),
    a function of the settings or a tuple. block: trials per stored block (``None``: the runner
    chooses). cost: relative cost of one trial (scheduling: the longest work starts first).
    threads: BLAS threads a trial may use when run in the main process (``None``: the BLAS default,
    for large matrices); worker processes always use one.
    """

    name: str
    settings: type
    trial: Callable[[Any, np.random.SeedSequence, Mapping[str, Any]], Any]
    trials: Callable[[Any], int]
    combine: Callable[[Any, list, Mapping[str, Any]], Any] = _stack
    requires: Callable[[Any], Mapping[str, ExperimentRef]] = _no_requirements
    stream: Callable[[Any], tuple] | tuple | None = None
    block: int | None = None
    cost: Callable[[Any], float] | float = 1.0
    threads: Callable[[Any], int | None] | int | None = 1
    batched: bool = False

    def blas_threads(self, settings: Any) -> int | None:
        return self.threads(settings) if callable(self.threads) else self.threads

    def stream_path(self, settings: Any) -> tuple:
        if self.stream is None:
            return (self.name,)
        return tuple(self.stream(settings)) if callable(self.stream) else tuple(self.stream)

    def trial_cost(self, settings: Any) -> float:
        return float(self.cost(settings)) if callable(self.cost) else float(self.cost)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One checkable statement: metadata, its settings dataclass, what it reads, how it evaluates."""

    id: str
    paper_ref: str
    theory_ref: str
    kind: str
    statement: str
    settings: type
    evaluate: Callable[..., Outcome]
    reads: Callable[[Any], Mapping[str, ExperimentRef]] = _no_requirements
    reconstructed: bool = True
    figure: str | None = None

    def preset(self, size: str) -> Any:
        return _settings.preset(self.settings, size)


@dataclass(frozen=True, kw_only=True)
class FigureSpec:
    """One figure: its settings, what it reads, how it draws, and a caption from the settings run."""

    name: str
    title: Callable[[Any], str] | str
    caption: Callable[[Any], str] | str
    paper_ref: str
    settings: type
    draw: Callable[..., Any]
    reads: Callable[[Any], Mapping[str, ExperimentRef]] = _no_requirements
    claims: tuple[str, ...] = ()
    reconstructed: bool = True

    def preset(self, size: str) -> Any:
        return _settings.preset(self.settings, size)

    def title_for(self, settings: Any) -> str:
        return self.title(settings) if callable(self.title) else self.title

    def caption_for(self, settings: Any) -> str:
        return self.caption(settings) if callable(self.caption) else self.caption


EXPERIMENTS: dict[str, Experiment] = {}
CLAIMS: dict[str, Claim] = {}
FIGURES: dict[str, FigureSpec] = {}


def _same_function(a: Callable, b: Callable) -> bool:
    return a is b or (getattr(a, "__module__", None) == getattr(b, "__module__", None)
                      and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None))


def _put(table: dict, key: str, value: Any, fn: Callable, *, what: str, replace: bool, arg: str = "name") -> None:
    V.function(what, "fn", fn, what="a function (the decorated trial, evaluate or draw)")
    old = table.get(key)
    if old is not None and not replace and not _same_function(_fn_of(old), fn):
        raise V.fail(what, arg, f"a name not registered yet (pass replace=True to replace the {what} of "
                                f"{_fn_of(old).__module__})", repr(key))
    table[key] = value


def _fn_of(spec: Any) -> Callable:
    return getattr(spec, "trial", None) or getattr(spec, "evaluate", None) or spec.draw


def _check_settings_type(what: str, name: str, cls: Any) -> None:
    V.settings_class(what, "settings", cls)


def _common(what: str, *, reads: Any, reconstructed: Any, replace: Any) -> None:
    V.function(what, "reads", reads, what="a callable settings -> {name: ExperimentRef}")
    V.flag(what, "reconstructed", reconstructed)
    V.flag(what, "replace", replace)


def experiment(name: str, *, settings: type, trials: Callable[[Any], int],
               combine: Callable[[Any, list, Mapping[str, Any]], Any] = _stack,
               requires: Callable[[Any], Mapping[str, ExperimentRef]] = _no_requirements,
               stream: Callable[[Any], tuple] | tuple | None = None, block: int | None = None,
               cost: Callable[[Any], float] | float = 1.0, threads: Callable[[Any], int | None] | int | None = 1,
               batched: bool = False, replace: bool = False) -> Callable[[Callable], Callable]:
    """Decorator registering ``trial(settings, seed_sequence, deps)`` as experiment ``name`` (with
    ``batched=True``: ``trial(settings, seed_sequences, deps) -> value`` for a block of trials)."""
    f = "experiment"
    V.text(f, "name", name)
    V.settings_class(f, "settings", settings, preset=False)
    V.function(f, "trials", trials, what="a callable settings -> number of trials")
    V.function(f, "combine", combine, what="a callable (settings, values, deps) -> result")
    V.function(f, "requires", requires, what="a callable settings -> {name: ExperimentRef}")
    if not (stream is None or callable(stream) or (isinstance(stream, tuple) and stream)):
        raise V.fail(f, "stream", "None, a non-empty tuple naming the stream, or a callable of the settings "
                                  "returning one", V.describe(stream))
    if block is not None:
        V.integer(f, "block", block, low=1)
    if not callable(cost):
        V.real(f, "cost", cost, low=0.0, low_open=True)
    if not (threads is None or callable(threads)):
        V.integer(f, "threads", threads, low=1)
    V.flag(f, "batched", batched)
    V.flag(f, "replace", replace)

    def deco(fn: Callable) -> Callable:
        _put(EXPERIMENTS, name, Experiment(name=name, settings=settings, trial=fn, trials=trials, combine=combine,
                                           requires=requires, stream=stream, block=block, cost=cost,
                                           threads=threads, batched=batched), fn, what="experiment",
             replace=replace)
        return fn

    return deco


def claim(id: str, *, paper_ref: str, theory_ref: str, kind: str, statement: str, settings: type,
          reads: Callable[[Any], Mapping[str, ExperimentRef]] = _no_requirements, reconstructed: bool = True,
          figure: str | None = None, replace: bool = False) -> Callable[[Callable], Callable]:
    """Decorator registering ``evaluate(settings, *, seed, **results) -> Outcome`` as claim ``id``."""
    f = "claim"
    V.text(f, "id", id)
    V.text(f, "paper_ref", paper_ref, empty=True)
    V.text(f, "theory_ref", theory_ref, empty=True)
    V.choice(f, "kind", kind, KINDS)
    V.text(f, "statement", statement)
    _check_settings_type(f, id, settings)
    V.optional_text(f, "figure", figure)
    _common(f, reads=reads, reconstructed=reconstructed, replace=replace)

    def deco(fn: Callable) -> Callable:
        _put(CLAIMS, id, Claim(id=id, paper_ref=paper_ref, theory_ref=theory_ref, kind=kind, statement=statement,
                               settings=settings, evaluate=fn, reads=reads, reconstructed=reconstructed,
                               figure=figure), fn, what="claim", replace=replace, arg="id")
        return fn

    return deco


def figure(name: str, *, title: Callable[[Any], str] | str, caption: Callable[[Any], str] | str, paper_ref: str,
           settings: type, reads: Callable[[Any], Mapping[str, ExperimentRef]] = _no_requirements,
           claims: tuple[str, ...] = (), reconstructed: bool = True,
           replace: bool = False) -> Callable[[Callable], Callable]:
    """Decorator registering ``draw(settings, *, seed, **results) -> matplotlib Figure`` as ``name``."""
    f = "figure"
    V.text(f, "name", name)
    V.text_or_function(f, "title", title)
    V.text_or_function(f, "caption", caption)
    V.text(f, "paper_ref", paper_ref, empty=True)
    _check_settings_type(f, name, settings)
    claims = V.strings(f, "claims", claims, what="claim ids")
    _common(f, reads=reads, reconstructed=reconstructed, replace=replace)

    def deco(fn: Callable) -> Callable:
        _put(FIGURES, name, FigureSpec(name=name, title=title, caption=caption, paper_ref=paper_ref,
                                       settings=settings, draw=fn, reads=reads, claims=tuple(claims),
                                       reconstructed=reconstructed), fn, what="figure", replace=replace)
        return fn

    return deco


def order_key(claim_id: str) -> tuple:
    """``C2 < C10``: by prefix, then number."""
    V.text("order_key", "claim_id", claim_id)
    head = claim_id.rstrip("0123456789")
    tail = claim_id[len(head):]
    return (head, int(tail) if tail else -1, claim_id)


def claims() -> dict[str, Claim]:
    """Every registered claim, ordered by id (a fresh view of the live registry)."""
    return dict(sorted(CLAIMS.items(), key=lambda kv: order_key(kv[0])))


def figures() -> dict[str, FigureSpec]:
    """Every registered figure, ordered by name."""
    return dict(sorted(FIGURES.items(), key=lambda kv: order_key(kv[0])))


# --------------------------------------------------------------------------- records
def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def record(claim: Claim, out: Outcome, *, settings: Any, seed: int, size: str | None, seconds: float) -> dict[str, Any]:
    """The claim's JSON record (DESIGN.md keys) from its outcome."""
    if not isinstance(out, Outcome):
        raise ValueError(f"claim {claim.id}: evaluate must return an Outcome; got {type(out).__name__}.")
    alpha_bounds = out.alpha_bounds
    if alpha_bounds is None and out.alpha is not None:
        alpha_bounds = _stats.FALSE_HOLDS if claim.kind == "ordering" else _stats.FALSE_FAILURE
    return {
        "id": claim.id,
        "paper_ref": claim.paper_ref,
        "theory_ref": claim.theory_ref,
        "kind": claim.kind,
        "statement": claim.statement,
        "reconstructed": claim.reconstructed,
        "figure": claim.figure,
        "prediction": _num(out.prediction),
        "measured": _num(out.measured),
        "stderr": _num(out.stderr),
        "tolerance": _num(out.tolerance),
        "tolerance_source": out.tolerance_source,
        "alpha": _num(out.alpha),
        "alpha_bounds": alpha_bounds,
        "test": out.test or ("deterministic bound" if out.alpha is None else None),
        "direction": out.direction or "two-sided",
        "detectable": _num(out.detectable),
        "passed": out.verdict == "holds",
        "verdict": out.verdict,
        "seconds": round(seconds, 3),
        "size": size,
        "seed": seed,
        "settings": _settings.as_dict(settings),
        "rows": [dict(r) for r in out.rows],
    }


def error_record(claim: Claim, *, settings: Any, seed: int, size: str | None, message: str,
                 seconds: float) -> dict[str, Any]:
    """The record of a claim whose code raised (verdict ``fails``, never cached)."""
    return {
        "id": claim.id, "paper_ref": claim.paper_ref, "theory_ref": claim.theory_ref, "kind": claim.kind,
        "statement": claim.statement, "reconstructed": claim.reconstructed, "figure": claim.figure,
        "prediction": None, "measured": None, "stderr": None, "tolerance": None,
        "tolerance_source": "the claim raised an exception", "alpha": None, "alpha_bounds": None, "test": None,
        "direction": None, "detectable": None, "passed": False, "verdict": "fails", "seconds": round(seconds, 3),
        "size": size, "seed": seed, "settings": _settings.as_dict(settings), "rows": [], "error": message,
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


__all__ = ["Outcome", "ExperimentRef", "ref", "Experiment", "Claim", "FigureSpec", "EXPERIMENTS", "CLAIMS",
           "FIGURES", "experiment", "claim", "figure", "claims", "figures", "record", "error_record", "KINDS",
           "SIZES", "order_key"]
