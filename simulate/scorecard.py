r"""Runs of one optimizer for the scorecard: the subspace distance at every step, the final state, and what went
wrong (docs/theory.md section 6, "The optimizer scorecard").

:func:`track` steps any optimizer of the protocol (``init(F, G) -> state``,
``step(F, G, batch, state) -> (F, G, state)``) on a :class:`simulate.data.LinRepProblem`, in the population
setting or on given batches, and records

.. math::

    d_t = \sin\theta_{\max}(G_t, G^*),\qquad \sin^2\theta_i = \mathrm{eig}\big((GG^\top)^{-1}BB^\top\big),
    \quad B = GG^{*\top}_\perp,

(:func:`subspace_sine`: no cancellation at small angles, so :math:`d_t` is accurate to about
:math:`u\lVert G\rVert/\sigma_k(G)` absolute). What ends a run, and how it is reported
(:attr:`Track.status`):

- ``"ok"``: ``steps`` steps, or the distance fell below ``stop_below``;
- ``"diverged"`` at step ``t``: the iterate of step ``t`` has a non-finite entry or an entry above
  :data:`BLOWUP` in modulus, or the step raised ``numpy.linalg.LinAlgError`` (a factorisation of a blown-up
  iterate; the message is kept);
- ``"error"`` at step ``t``: ``init`` or ``step`` raised any other exception (its message is kept, not
  reported as divergence), or ``step`` returned something other than ``(F, G, state)`` with F and G of the
  shapes it was given (a wrong-shaped update: the message names the optimizer and both shapes).

Nothing here reads :mod:`theory`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from simulate import _validate as V
from simulate.data import BatchSampler, LinRepProblem, draw_batch_fast
from simulate.linrep import transfer_loss
from simulate.optimizers import Batch

#: an entry above this modulus counts as divergence (geometric growth reaches inf soon after).
BLOWUP = 1e100
STATUSES = ("ok", "diverged", "error")
#: steps whose distances are computed together (one batched factorisation).
CHUNK = 64


def complement_basis(G_star: np.ndarray) -> np.ndarray:
    """(d, d) orthogonal matrix whose first k rows are ``G_star``'s (orthonormal) rows, then a complement."""
    k = G_star.shape[0]
    Q, _ = np.linalg.qr(G_star.T, mode="complete")
    return np.vstack([G_star, Q[:, k:].T])


def subspace_sine(G: np.ndarray, basis: np.ndarray, k: int) -> float:
    r""":math:`\sin\theta_{\max}` between the row spaces of ``G`` and of ``basis[:k]`` (module docstring);
    1.0 when ``G`` is not of full row rank (numerically)."""
    return float(subspace_sines(np.asarray(G, dtype=float)[None], basis, k)[0])


def subspace_sines(Gs: np.ndarray, basis: np.ndarray, k: int) -> np.ndarray:
    r"""(T,) :func:`subspace_sine` of each of the stacked ``Gs`` (T, k, d), in one batched factorisation (a run
    computes its distances a chunk of steps at a time: the per-call overhead of small factorisations dominated)."""
    W = Gs @ basis.T
    B = W[:, :, k:]
    GG = Gs @ Gs.transpose(0, 2, 1)
    out = np.ones(Gs.shape[0])
    ok = np.isfinite(GG).all(axis=(1, 2))
    if not ok.any():
        return out
    idx = np.nonzero(ok)[0]
    try:
        L = np.linalg.cholesky(GG[idx])
    except np.linalg.LinAlgError:  # some G is rank-deficient: one at a time, those get 1.0
        for i in idx:
            try:
                Li = np.linalg.cholesky(GG[i])
            except np.linalg.LinAlgError:
                continue
            Y = np.linalg.solve(Li, B[i])
            out[i] = np.sqrt(max(float(np.linalg.eigvalsh(Y @ Y.T)[-1]), 0.0))
        return np.minimum(out, 1.0)
    Y = np.linalg.solve(L, B[idx])
    s2 = np.linalg.eigvalsh(Y @ Y.transpose(0, 2, 1))[:, -1]
    out[idx] = np.sqrt(np.maximum(s2, 0.0))
    return np.minimum(out, 1.0)


def draw_batches(problem: LinRepProblem, n: int, count: int, *, rng: np.random.Generator,
                 samples: bool = False) -> list[Batch]:
    """``count`` fresh batches of ``n`` samples (with their means), as sufficient statistics
    (:class:`simulate.data.BatchSampler`) or materialised (``samples=True``,
    :func:`simulate.data.draw_batch_fast`); both consume ``rng`` alike, so the batches are the same."""
    f = "draw_batches"
    V.integer(f, "n", n, low=1)
    V.integer(f, "count", count, low=0)
    if not isinstance(rng, np.random.Generator):
        raise V.fail(f, "rng", "a numpy.random.Generator", type(rng).__name__)
    if samples:
        return [Batch.from_samples(*draw_batch_fast(problem, n, rng=rng)) for _ in range(count)]
    sampler = BatchSampler(problem, n, means=True)
    return [Batch.from_moments(sampler.draw(rng)) for _ in range(count)]


@dataclass(frozen=True)
class Track:
    """One run (module docstring).

    distance: (t_end + 1,) :math:`d_t` after t steps (t = 0 the start), up to the last finite iterate.
    status: ``"ok"``, ``"diverged"`` or ``"error"``; at: the step that diverged or failed (-1 when ok);
    message: what happened (empty when ok). F, G: the last finite iterate. state: the optimizer's state
    with it (``None`` after an error in ``init``). history: ``(t, F, G, state)`` of the last ``window + 1``
    iterates (the start included when fewer steps were taken), oldest first.
    transfer: population transfer loss of the last finite G (NaN unless ``transfer=True``).
    """

    distance: np.ndarray
    status: str
    at: int
    message: str
    F: np.ndarray
    G: np.ndarray
    state: Any
    history: tuple
    transfer: float

    @property
    def steps(self) -> int:
        return int(self.distance.size - 1)

    def at_step(self, t: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(F, G, state)`` after step ``t`` (one of the kept steps, :attr:`history`)."""
        for s, F, G, st in self.history:
            if s == t:
                return F, G, st
        raise V.fail("Track.at_step", "t", f"a kept step, one of {[h[0] for h in self.history]}", t)


def _name(opt: Any) -> str:
    return str(getattr(opt, "name", None) or type(opt).__name__)


def _first_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _check_output(name: str, out: Any, F: np.ndarray, G: np.ndarray) -> str | None:
    """Why ``out`` is not a valid ``(F, G, state)`` for parameters shaped like F, G (``None``: it is)."""
    if not isinstance(out, tuple) or len(out) != 3:
        what = f"a {type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        return f"optimizer {name!r}: step must return (F, G, state); got {what}"
    F1, G1, _ = out
    for label, new, old in (("F", F1, F), ("G", G1, G)):
        shape = getattr(new, "shape", None)
        if not isinstance(new, np.ndarray) or shape != old.shape:
            got = f"shape {shape}" if shape is not None else f"a {type(new).__name__}"
            return (f"optimizer {name!r}: step returned {label} of {got}; expected an array of shape {old.shape} "
                    f"(a wrong-shaped update)")
    return None


def track(problem: LinRepProblem, opt: Any, *, steps: int, F0: np.ndarray, G0: np.ndarray,
          batches: Sequence[Batch] | None = None, stop_below: float = 0.0, window: int = 0,
          transfer: bool = False) -> Track:
    """Run ``opt`` from ``(F0, G0)`` for up to ``steps`` steps (module docstring).

    problem: the task (its ``G_star``; its population moments when ``batches`` is None). opt: an optimizer
    (protocol above). steps >= 0. F0: (d_y, k), G0: (k, d_x) start. batches: ``steps`` batches, one per step
    (``None``: the population moments every step). stop_below >= 0: stop once :math:`d_t` is below it.
    window >= 0: keep the iterates and states of the last ``window`` steps (:attr:`Track.history`).
    transfer: also record the population transfer loss of the final G.
    """
    f = "track"
    V.integer(f, "steps", steps, low=0)
    V.integer(f, "window", window, low=0)
    V.scalar(f, "stop_below", stop_below, low=0.0)
    if batches is not None and len(batches) < steps:
        raise V.fail(f, "batches", f"at least steps = {steps} batches (or None: population)", len(batches))
    F = V.matrix(f, "F0", F0, shape=(problem.d_y, problem.k)).copy()
    G = V.matrix(f, "G0", G0, shape=(problem.k, problem.d_x)).copy()
    name = _name(opt)
    basis = complement_basis(problem.G_star)
    k = problem.k
    pop = Batch.population(problem.Sigma_x, problem.M, problem.noise_std) if batches is None else None
    dist = [subspace_sine(G, basis, k)]
    status, at, message, state = "ok", -1, "", None
    kept: deque = deque(maxlen=window + 1)
    try:
        state = opt.init(F, G)
    except Exception as e:  # noqa: BLE001 - reported, not raised: the rest of the scorecard goes on
        status, at, message = "error", 0, f"optimizer {name!r}: init raised {_first_line(e)}"
    kept.append((0, F, G, state))
    pending: list = []          # (t, F, G, state) of the steps whose distance is not computed yet

    def flush() -> bool:
        """Distances of the pending steps (one batched call); True when one fell below ``stop_below`` (the run
        is cut there, as if it had stopped at that step)."""
        nonlocal F, G, state
        if not pending:
            return False
        d = subspace_sines(np.stack([p[2] for p in pending]), basis, k)
        below = np.nonzero(d < stop_below)[0]
        cut = int(below[0]) + 1 if below.size else len(pending)
        dist.extend(float(x) for x in d[:cut])
        kept.extend(pending[:cut])
        _, F, G, state = pending[cut - 1]
        pending.clear()
        return below.size > 0

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        Fc, Gc, sc_ = F, G, state
        for t in range(steps if status == "ok" else 0):
            b = pop if batches is None else batches[t]
            try:
                out = opt.step(Fc, Gc, b, sc_)
            except np.linalg.LinAlgError as e:
                status, at, message = "diverged", t + 1, f"step raised {_first_line(e)}"
                break
            except Exception as e:  # noqa: BLE001
                status, at, message = "error", t + 1, f"optimizer {name!r}: step raised {_first_line(e)}"
                break
            bad = _check_output(name, out, Fc, Gc)
            if bad is not None:
                status, at, message = "error", t + 1, bad
                break
            F1, G1, st1 = out
            if not (np.all(np.isfinite(F1)) and np.all(np.isfinite(G1))):
                status, at, message = "diverged", t + 1, "non-finite iterate"
                break
            if max(np.abs(F1).max(), np.abs(G1).max()) > BLOWUP:
                status, at, message = "diverged", t + 1, f"an entry above {BLOWUP:g} in modulus"
                break
            Fc, Gc, sc_ = F1, G1, st1
            pending.append((t + 1, F1, G1, st1))
            if len(pending) == CHUNK and flush():
                break
        if flush():       # the run had stopped before what ended the loop
            status, at, message = "ok", -1, ""
    tl = float("nan")
    if transfer:
        try:
            tl = float(transfer_loss(G, problem))
        except (np.linalg.LinAlgError, ValueError):  # a G of numerically deficient rank (e.g. blowing up slowly,
            pass                                     # entries far below BLOWUP) carries no usable representation
    return Track(distance=np.asarray(dist, dtype=float), status=status, at=at, message=message, F=F, G=G,
                 state=state, history=tuple(kept), transfer=tl)
