r"""Training runs for linear representation learning (THEORY.md 3.1).

:func:`run` iterates one optimizer of :mod:`simulate.optimizers` on a
:class:`simulate.data.LinRepProblem`, either on fresh batches of ``batch`` samples per iteration
or in the population setting (``batch=None``: :math:`\hat\Sigma = \Sigma_x`), and records

- ``train_loss``: the batch loss :math:`\hat L(F_t, G_t)` on batch ``t`` (population loss when ``batch=None``);
- ``subspace_distance``: :math:`\sin\theta_{\max}` between the row spaces of :math:`G_t` and :math:`G^*`,
  from principal angles computed here (orthonormal bases by QR, angles by SVD);
- ``tangent_sq``: :math:`\sum_i\tan^2\theta_i` (the squared tangent norm of R-LR-3);
- ``transfer_loss``: excess risk of the best head on the frozen :math:`G_t` for the transfer task,

.. math::

    L_{tr}(G) = \tfrac12\big\lVert M_t\Sigma_t^{1/2}(I - P_{G\Sigma_t^{1/2}})\big\rVert_F^2,\qquad
    M_t = F_{test}G^*,

each of length ``steps + 1``. A non-finite iterate stops the run with :class:`DivergenceError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulate import _validate as V
from simulate.data import LinRepProblem, draw_batch, symmetric_sqrt
from simulate.optimizers import Batch, Optimizer, batch_loss, make


class DivergenceError(FloatingPointError):
    """A run produced a non-finite iterate; ``algorithm``, ``step`` and the finished ``partial`` record."""

    def __init__(self, algorithm: str, step: int, partial: dict[str, np.ndarray] | None = None):
        super().__init__(f"run: algorithm {algorithm!r} diverged at step {step} (non-finite iterate)")
        self.algorithm = algorithm
        self.step = step
        self.partial = partial or {}


def principal_angles(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Sines and cosines (descending sines) of the principal angles between the row spaces of A and B.

    Orthonormal bases by QR; cosines are the singular values of :math:`Q_A^\top Q_B`, sines those of
    :math:`(I - Q_BQ_B^\top)Q_A` (accurate for tiny angles).
    """
    Qa, _ = np.linalg.qr(A.T)
    Qb, _ = np.linalg.qr(B.T)
    sines = np.linalg.svd(Qa - Qb @ (Qb.T @ Qa), compute_uv=False)
    cosines = np.sort(np.linalg.svd(Qb.T @ Qa, compute_uv=False))
    return np.minimum(sines, 1.0), np.minimum(cosines, 1.0)


def principal_tangents(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    r"""Tangents of the principal angles between the row spaces of A and B (descending).

    Each cosine is taken from the sine where the sine is small (:math:`\sqrt{(1-s)(1+s)}`, no
    cancellation) and from the SVD of :math:`Q_A^\top Q_B` where it is large.
    """
    k = min(A.shape[0], B.shape[0])
    s, c = principal_angles(A, B)
    s, c = s[:k], c[:k]  # c ascending pairs with s descending
    c = np.where(s < 0.5, np.sqrt((1.0 - s) * (1.0 + s)), c)
    return s / c


def transfer_loss(G: np.ndarray, problem: LinRepProblem, *, Sigma_test_sqrt: np.ndarray | None = None) -> float:
    r"""Population transfer loss :math:`L_{tr}(G)` (THEORY.md 3.1.0) on ``problem``'s transfer task."""
    Mt = problem.F_test @ problem.G_star
    if Sigma_test_sqrt is None:
        Sigma_test_sqrt = symmetric_sqrt(problem.Sigma_test)
    Mw = Mt @ Sigma_test_sqrt
    Q, _ = np.linalg.qr((G @ Sigma_test_sqrt).T)
    R = Mw - (Mw @ Q) @ Q.T
    return float(0.5 * np.einsum("ij,ij->", R, R))


@dataclass(frozen=True)
class Trajectory:
    """Record of one run; arrays have length ``steps + 1`` (index t = after t steps)."""

    algorithm: str
    lr: float
    train_loss: np.ndarray
    subspace_distance: np.ndarray
    tangent_sq: np.ndarray
    transfer_loss: np.ndarray
    F: np.ndarray
    G: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)


def initial_point(problem: LinRepProblem, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """THEORY.md Figure 1 initialisation [R]: :math:`G_0\\sim N(0, 1/d_x)`, :math:`F_0\\sim N(0, 1/k)`."""
    G0 = rng.standard_normal((problem.k, problem.d_x)) / np.sqrt(problem.d_x)
    F0 = rng.standard_normal((problem.d_y, problem.k)) / np.sqrt(problem.k)
    return F0, G0


def least_squares_head(G: np.ndarray, batch: Batch) -> np.ndarray:
    """Head minimising the batch loss for fixed G (used for ``init_head="least_squares"``)."""
    Sz = G @ batch.Sigma_x @ G.T
    return np.linalg.solve(0.5 * (Sz + Sz.T), (batch.Sigma_yx @ G.T).T).T


def run(
    problem: LinRepProblem,
    algorithm: str | Optimizer,
    *,
    steps: int,
    lr: float,
    batch: int | None,
    rng: np.random.Generator,
    options: dict[str, Any] | None = None,
    F0: np.ndarray | None = None,
    G0: np.ndarray | None = None,
    init_head: str | None = None,
) -> Trajectory:
    """Train ``algorithm`` on ``problem`` for ``steps`` iterations.

    problem: the task (simulate.data.linrep_problem). algorithm: a registered name or an optimizer.
    steps >= 0. lr > 0: the optimizer's step size (``lr`` option). batch: samples per fresh
    batch, or ``None`` for the population setting. rng: the run's generator (initialisation and
    batches). options: further optimizer options (``eta_F``, ``lam_G``, ...). F0, G0: start
    (default :func:`initial_point`). init_head: ``"least_squares"`` replaces F0 by the
    least-squares head of G0 on the first batch.
    """
    f = "run"
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise V.fail(f, "steps", "an integer >= 0", repr(steps))
    V.scalar(f, "lr", lr, low=0.0, low_open=True)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
        raise V.fail(f, "batch", "a positive integer or None (population)", repr(batch))
    if not isinstance(rng, np.random.Generator):
        raise V.fail(f, "rng", "a numpy.random.Generator", type(rng).__name__)
    if init_head not in (None, "least_squares"):
        raise V.fail(f, "init_head", "None or 'least_squares'", repr(init_head))
    options = dict(options or {})
    opt = make(algorithm, lr=lr, **options) if isinstance(algorithm, str) else algorithm
    name = algorithm if isinstance(algorithm, str) else getattr(opt, "name", type(opt).__name__)
    if batch is not None and batch < problem.d_x and getattr(opt, "right", None) == "Sigma_x" \
            and not getattr(opt, "lam_G", 0.0):
        raise V.fail(f, "batch", f">= d_x = {problem.d_x} for {name!r} (its Sigma_hat_x would be singular)", batch)

    if F0 is None or G0 is None:
        F_init, G_init = initial_point(problem, rng=rng)
        F0 = F_init if F0 is None else F0
        G0 = G_init if G0 is None else G0
    F = V.matrix(f, "F0", F0, shape=(problem.d_y, problem.k)).copy()
    G = V.matrix(f, "G0", G0, shape=(problem.k, problem.d_x)).copy()

    pop = Batch.population(problem.Sigma_x, problem.M, problem.noise_std) if batch is None else None

    def next_batch() -> Batch:
        return pop if pop is not None else Batch.from_samples(*draw_batch(problem, batch, rng=rng))

    Sqrt_t = symmetric_sqrt(problem.Sigma_test)
    loss = np.empty(steps + 1)
    dist = np.empty(steps + 1)
    tan2 = np.empty(steps + 1)
    trans = np.empty(steps + 1)

    def record(t: int, b: Batch) -> None:
        loss[t] = batch_loss(F, G, b)
        s, c = principal_angles(G, problem.G_star)
        dist[t] = s[0]
        s = s[: problem.k]
        tan2[t] = np.sum(s**2 / np.maximum(1.0 - s**2, np.finfo(float).tiny))
        trans[t] = transfer_loss(G, problem, Sigma_test_sqrt=Sqrt_t)

    state = opt.init(F, G)
    b = next_batch()
    if init_head == "least_squares":
        F = least_squares_head(G, b)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(steps + 1):
            try:
                record(t, b)
            except np.linalg.LinAlgError:
                raise DivergenceError(name, t, _partial(loss, dist, trans, t)) from None
            if t == steps:
                break
            try:
                F, G, state = opt.step(F, G, b, state)
            except (np.linalg.LinAlgError, ValueError):
                raise DivergenceError(name, t + 1, _partial(loss, dist, trans, t + 1)) from None
            if not (np.all(np.isfinite(F)) and np.all(np.isfinite(G))):
                raise DivergenceError(name, t + 1, _partial(loss, dist, trans, t + 1))
            b = next_batch()
    return Trajectory(name, float(lr), loss, dist, tan2, trans, F, G, options)


def _partial(loss, dist, trans, t):
    return {"train_loss": loss[:t].copy(), "subspace_distance": dist[:t].copy(), "transfer_loss": trans[:t].copy()}
