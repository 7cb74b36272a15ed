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
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

KINDS = ("exact", "statistical", "qualitative")
SIZES = ("fast", "paper")


@dataclass(frozen=True)
class Outcome:
    """What one run of a claim measured.

    prediction, measured: the headline numbers (theory and simulation) of the claim.
    stderr: standard error of ``measured`` (``None`` for exact claims).
    tolerance: the allowed |measured - prediction| (or the bound a qualitative claim checks).
    alpha: the false-failure rate of the check (``None`` for exact / deterministic checks).
    passed: the verdict.
    tolerance_source: one sentence saying where the tolerance comes from.
    rows: the per-setting table behind the headline (list of dicts, JSON-serialisable).
    verdict: ``"holds"`` / ``"fails"``, or ``"not reproduced"`` for a paper statement that the
        reconstructed setting measures as false (reported, never tuned away).
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
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """One checkable statement.

    id: short stable id (``"C1"`` ...), as in THEORY.md section 6.
    paper_ref: the paper's numbering where known (``"Lemma 3.1"``).
    theory_ref: the THEORY.md ID (``"R-LR-1"``) backing the prediction.
    kind: ``"exact"``, ``"statistical"`` or ``"qualitative"``.
    statement: what the claim says, one sentence.
    reconstructed: True where THEORY.md tags the result [R] (rebuilt, not read from the paper).
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
        "passed": bool(out.passed),
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
