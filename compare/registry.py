"""The claim registry: one entry per checkable statement of the paper.

A *claim* pairs a prediction from :mod:`theory` with a measurement from :mod:`simulate`.
Claim modules (``compare.claims_linrep``, ``compare.claims_single_index``, ...) register
their entries with :func:`register`; :mod:`compare.claims` imports them all and exposes the
filled registry as ``CLAIMS``.

Each claim's ``run(size=..., seed=...)`` returns a :class:`Outcome`; :func:`evaluate` times it
and turns it into the flat record of DESIGN.md (keys ``id``, ``paper_ref``, ``kind``,
``prediction``, ``measured``, ``stderr``, ``tolerance``, ``alpha``, ``passed``, ``seconds``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from compare import stats as _stats

#: exact: a deterministic agreement check (tolerance from a derivation); statistical: an agreement
#: check with a false-failure rate alpha; ordering: a statement of the paper comparing methods
#: (alpha bounds false "holds"; verdict holds / inconclusive / contradicted).
KINDS = ("exact", "statistical", "ordering", "qualitative")
SIZES = ("fast", "paper")


@dataclass(frozen=True)
class Outcome:
    """What one run of a claim measured.

    prediction, measured: the headline numbers (theory and simulation) of the claim, taken from
        the row that decided its verdict (:func:`compare.stats.deciding_row`).
    stderr: standard error of ``measured`` (``None`` for exact claims).
    tolerance: the allowed |measured - prediction| (two-sided), or the amount by which measured
        must exceed prediction (ordering claims; ``direction`` says which).
    alpha: the claim's family-wise error rate (``None`` for deterministic checks); ``alpha_bounds``
        says what it bounds (``"false failure"`` or ``"false holds"``).
    passed: ``verdict == "holds"``.
    tolerance_source: where the tolerance comes from.
    rows: the per-setting table behind the headline (list of dicts, JSON-serialisable).
    verdict: ``holds`` / ``fails`` (agreement) or ``holds`` / ``inconclusive`` / ``contradicted``
        (ordering); ``None`` derives holds/fails from ``passed``.
    test: the headline row's test, e.g. ``"two-sided t, 29 df"``.
    detectable: agreement claims: the smallest relative error of a prediction caught with
        probability >= 0.9 (the largest over the rows: an error that size in any row is caught).
    direction: ``"two-sided"``, ``"measured <= prediction"`` or ``"measured > MARGIN"``.
    """

    prediction: float
    measured: float
    stderr: float | None
    tolerance: float
    alpha: float | None
    passed: bool
    tolerance_source: str
    rows: tuple[Mapping[str, Any], ...] = ()
    verdict: str | None = None
    test: str | None = None
    alpha_bounds: str | None = None
    detectable: float | None = None
    direction: str | None = None

    @classmethod
    def agreement(cls, rows: Sequence[Mapping[str, Any]], *, source: str, alpha: float | None) -> "Outcome":
        """The outcome of an agreement claim from its rows (dicts of :meth:`compare.stats.Agreement.row`).

        alpha: the claim's family-wise false-failure rate (``None``: every row is deterministic).
        """
        rows = tuple(dict(r) for r in rows)
        verdict = _stats.agreement_verdict(rows)
        head = _stats.deciding_row(rows, verdict)
        det = [r["detectable"] for r in rows if r.get("detectable") is not None]
        return cls(prediction=head["prediction"], measured=head["measured"], stderr=head.get("stderr"),
                   tolerance=head["tolerance"], alpha=alpha, passed=verdict == "holds", tolerance_source=source,
                   rows=rows, verdict=verdict, test=head.get("test"),
                   alpha_bounds=_stats.FALSE_FAILURE if alpha is not None else None,
                   detectable=max(det) if det else None, direction=head.get("direction", "two-sided"))

    @classmethod
    def ordering(cls, rows: Sequence[Mapping[str, Any]], *, source: str, alpha: float) -> "Outcome":
        """The outcome of a paper statement from its component rows (:meth:`compare.stats.Ordering.row`).

        alpha: the claim's false-holds rate (each component tested at alpha: intersection-union).
        """
        rows = tuple(dict(r) for r in rows)
        verdict = _stats.ordering_verdict(rows)
        head = _stats.deciding_row(rows, verdict)
        return cls(prediction=head["margin"], measured=head["estimate"], stderr=head.get("stderr"),
                   tolerance=head["critical"] * head["stderr"] if head.get("stderr") is not None else None,
                   alpha=alpha, passed=verdict == "holds", tolerance_source=source, rows=rows, verdict=verdict,
                   test=head["test"], alpha_bounds=_stats.FALSE_HOLDS, detectable=None,
                   direction=head["direction"])


@dataclass(frozen=True)
class Claim:
    """One checkable statement.

    id: short stable id (``"C1"`` ...), as in docs/theory.md section 6.
    paper_ref: the paper's numbering where known (``"Lemma 3.1"``).
    theory_ref: the docs/theory.md ID (``"R-LR-1"``) backing the prediction.
    kind: ``"exact"``, ``"statistical"`` or ``"qualitative"``.
    statement: what the claim says, one sentence.
    reconstructed: True where docs/theory.md tags the result [R] (rebuilt, not read from the paper).
    figure: the figure the claim backs (``"fig3"``), or ``None``.
    run: ``run(*, size, seed) -> Outcome``.
    """

    id: str
    paper_ref: str
    theory_ref: str
    kind: str
    statement: str
    reconstructed: bool
    run: Callable[..., Outcome]
    figure: str | None = None


_REGISTRY: dict[str, Claim] = {}


def register(
    id: str,
    *,
    paper_ref: str,
    theory_ref: str,
    kind: str,
    statement: str,
    reconstructed: bool = True,
    figure: str | None = None,
) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Decorator registering ``run(*, size, seed) -> Outcome`` as claim ``id``."""
    if kind not in KINDS:
        raise ValueError(f"register: argument 'kind' must be one of {KINDS}; got {kind!r}.")

    def deco(fn: Callable[..., Outcome]) -> Callable[..., Outcome]:
        if id in _REGISTRY and _REGISTRY[id].run is not fn:
            raise ValueError(f"register: claim id {id!r} is already registered.")
        _REGISTRY[id] = Claim(id, paper_ref, theory_ref, kind, statement, reconstructed, fn, figure)
        return fn

    return deco


def registry() -> dict[str, Claim]:
    return _REGISTRY


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def evaluate(claim: Claim, *, size: str = "fast", seed: int = 0, blas_threads: int | None = 1) -> dict[str, Any]:
    """Run ``claim`` and return its DESIGN.md record (JSON-serialisable).

    blas_threads: BLAS threads while the claim runs (threadpoolctl). One thread is fastest for the
    small matrices of most claims and never oversubscribes cores shared with other workers;
    ``None`` leaves the BLAS default.
    """
    if size not in SIZES:
        raise ValueError(f"check: argument 'size' must be one of {SIZES}; got {size!r}.")
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=blas_threads):
        out = claim.run(size=size, seed=seed)
    seconds = time.perf_counter() - t0
    verdict = out.verdict or ("holds" if out.passed else "fails")
    if verdict not in _stats.VERDICTS:
        raise ValueError(f"evaluate: claim {claim.id} returned verdict {verdict!r}; expected one of {_stats.VERDICTS}.")
    alpha_bounds = out.alpha_bounds
    if alpha_bounds is None and out.alpha is not None:
        alpha_bounds = _stats.FALSE_HOLDS if claim.kind in ("ordering", "qualitative") else _stats.FALSE_FAILURE
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
        "passed": verdict == "holds",
        "verdict": verdict,
        "seconds": round(seconds, 3),
        "size": size,
        "seed": seed,
        "rows": [dict(r) for r in out.rows],
    }


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report.

    name: short id (``"fig1"``, ``"fig3"``). title / caption: shown in the report.
    paper_ref: the paper's figure number. claims: ids of the claims this figure backs.
    make: ``make(*, size, seed, jobs=1, scheduler=None) -> matplotlib.figure.Figure``; it runs
        (or loads) the experiment and calls one plotting function of ``compare.plots``.
    """

    name: str
    title: str
    caption: str
    paper_ref: str
    claims: tuple[str, ...]
    make: Callable[..., Any]
    reconstructed: bool = True


_FIGURES: dict[str, FigureSpec] = {}


def register_figure(
    name: str, *, title: str, caption: str, paper_ref: str, claims: tuple[str, ...] = (),
    reconstructed: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``make(*, size, seed, jobs=1, scheduler=None) -> Figure`` as ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _FIGURES and _FIGURES[name].make is not fn:
            raise ValueError(f"register_figure: figure {name!r} is already registered.")
        _FIGURES[name] = FigureSpec(name, title, caption, paper_ref, tuple(claims), fn, reconstructed)
        return fn

    return deco


def figures() -> dict[str, FigureSpec]:
    return _FIGURES
