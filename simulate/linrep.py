r"""Training runs for linear representation learning (docs/theory.md 3.1).

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
from typing import Any, Callable

import numpy as np

from simulate import _validate as V
from simulate.data import BatchSampler, LinRepProblem, _check_problem, _draw_batch_fast, _sqrt, _standard
from simulate.optimizers import REGISTRY, Batch, Optimizer, _batch_loss, _is_built, make, stacked


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

    A, B: (k_A, d) and (k_B, d) real finite matrices of full row rank (:mod:`simulate._validate`'s
    relative singular-value threshold: a numerically rank-deficient matrix has no well-defined row space).
    """
    return _principal_angles(*_two_row_spaces("principal_angles", A, B))


def _two_row_spaces(func: str, A, B) -> tuple[np.ndarray, np.ndarray]:
    A = V.full_row_rank(func, "A", A)
    B = V.full_row_rank(func, "B", B, cols=A.shape[1], labels=("k_B", "d"))
    return A, B


def _principal_angles(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Qa, _ = np.linalg.qr(A.T)
    Qb, _ = np.linalg.qr(B.T)
    sines = np.linalg.svd(Qa - Qb @ (Qb.T @ Qa), compute_uv=False)
    cosines = np.sort(np.linalg.svd(Qb.T @ Qa, compute_uv=False))
    return np.minimum(sines, 1.0), np.minimum(cosines, 1.0)


def principal_tangents(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    r"""Tangents of the principal angles between the row spaces of A and B (descending).

    Each cosine is taken from the sine where the sine is small (:math:`\sqrt{(1-s)(1+s)}`, no
    cancellation) and from the SVD of :math:`Q_A^\top Q_B` where it is large. A, B: as
    :func:`principal_angles`.
    """
    A, B = _two_row_spaces("principal_tangents", A, B)
    k = min(A.shape[0], B.shape[0])
    s, c = _principal_angles(A, B)
    s, c = s[:k], c[:k]  # c ascending pairs with s descending
    c = np.where(s < 0.5, np.sqrt((1.0 - s) * (1.0 + s)), c)
    return s / c


def transfer_loss(G: np.ndarray, problem: LinRepProblem, *, Sigma_test_sqrt: np.ndarray | None = None) -> float:
    r"""Population transfer loss :math:`L_{tr}(G)` (docs/theory.md 3.1.0) on ``problem``'s transfer task.

    G: (k, d_x) of full row rank. problem: the task. Sigma_test_sqrt: the symmetric positive-definite root
    of ``problem.Sigma_test`` (default: computed).
    """
    f = "transfer_loss"
    problem = _check_problem(f, problem)
    G = _representation(f, "G", G, problem)
    if Sigma_test_sqrt is None:
        Sigma_test_sqrt = _sqrt(problem.Sigma_test)
    else:
        Sigma_test_sqrt = V.spd(f, "Sigma_test_sqrt", Sigma_test_sqrt, d=problem.d_x, label="d_x")
    return _transfer_loss(G, problem, Sigma_test_sqrt)


def _representation(func: str, name: str, G, problem: LinRepProblem) -> np.ndarray:
    return V.full_row_rank(func, name, G, rows=problem.k, cols=problem.d_x, labels=("k", "d_x"))


def _transfer_loss(G: np.ndarray, problem: LinRepProblem, Sigma_test_sqrt: np.ndarray) -> float:
    Mt = problem.F_test @ problem.G_star
    Mw = Mt @ Sigma_test_sqrt
    Q, _ = np.linalg.qr((G @ Sigma_test_sqrt).T)
    R = Mw - (Mw @ Q) @ Q.T
    return float(0.5 * np.einsum("ij,ij->", R, R))


@dataclass(frozen=True)
class Trajectory:
    """Record of one run; arrays have length ``steps + 1`` (index t = after t steps).

    batch_records: ``None``, or (with :func:`run`'s ``on_batch``) the tuple of its ``steps + 1`` returns,
    entry t from batch t (the batch of ``train_loss[t]``, on which step t -> t+1 is taken)."""

    algorithm: str
    lr: float
    train_loss: np.ndarray
    subspace_distance: np.ndarray
    tangent_sq: np.ndarray
    transfer_loss: np.ndarray
    F: np.ndarray
    G: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    batch_records: tuple[Any, ...] | None = None


def initial_point(problem: LinRepProblem, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """docs/theory.md Figure 1 initialisation [R]: :math:`G_0\\sim N(0, 1/d_x)`, :math:`F_0\\sim N(0, 1/k)`."""
    f = "initial_point"
    return _initial_point(_check_problem(f, problem), V.generator(f, "rng", rng))


def _initial_point(problem: LinRepProblem, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    G0 = rng.standard_normal((problem.k, problem.d_x)) / np.sqrt(problem.d_x)
    F0 = rng.standard_normal((problem.d_y, problem.k)) / np.sqrt(problem.k)
    return F0, G0


def least_squares_head(G: np.ndarray, batch: Batch) -> np.ndarray:
    """Head minimising the batch loss for fixed G (used for ``init_head="least_squares"``).

    G: (k, d_x) with :math:`G\\hat\\Sigma_xG^\\top` positive-definite. batch: a :class:`Batch` of the same d_x.
    """
    f = "least_squares_head"
    V.instance(f, "batch", batch, Batch, "a simulate.optimizers.Batch")
    Sx = V.square(f, "batch", batch.Sigma_x, label="d_x")
    V.matrix(f, "batch", batch.Sigma_yx, shape=(None, Sx.shape[0]), labels=("d_y", "d_x"))
    G = V.full_row_rank(f, "G", G, cols=Sx.shape[0], labels=("k", "d_x"))
    Sz = G @ Sx @ G.T
    lam = np.linalg.eigvalsh(0.5 * (Sz + Sz.T))
    V.check(lam[-1] > 0 and lam[0] > lam.size * V.EPS * lam[-1], f, "G",
            "a representation with G Sigma_x G^T positive-definite (smallest eigenvalue > k * eps * largest)",
            f"eigenvalues of G Sigma_x G^T from {lam[0]:.3e} to {lam[-1]:.3e}")
    return _least_squares_head(G, batch)


def _least_squares_head(G: np.ndarray, batch: Batch) -> np.ndarray:
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
    on_batch: Callable[[int, Batch], Any] | None = None,
) -> Trajectory:
    """Train ``algorithm`` on ``problem`` for ``steps`` iterations.

    problem: the task (simulate.data.linrep_problem). algorithm: a registered name or an optimizer.
    steps >= 0. lr > 0: the optimizer's step size (``lr`` option). batch: samples per fresh
    batch (:func:`_batches`), or ``None`` for the population setting. rng: the run's generator
    (initialisation and batches). options: further optimizer options (``eta_F``, ``lam_G``, ...). F0, G0: start
    (default :func:`initial_point`). init_head: ``"least_squares"`` replaces F0 by the
    least-squares head of G0 on the first batch. on_batch: ``None``, or a callable ``on_batch(t, batch)``
    evaluated on every batch the run draws (t = 0, ..., steps; batch t is the one step t -> t+1 is taken on,
    the population moments when ``batch=None``); its returns come back as ``Trajectory.batch_records``
    (statistics of the very batches the run used, e.g. for a control variate). It must not modify the batch.
    """
    f = "run"
    problem = _check_problem(f, problem)
    steps = V.integer(f, "steps", steps, low=0)
    V.memory(f, {"steps": steps}, 32.0 * (steps + 1), "the four recorded metrics, 32 (steps + 1) bytes,")
    lr = V.scalar(f, "lr", lr, low=0.0, low_open=True)
    batch = _batch_size(f, batch, problem)
    rng = V.generator(f, "rng", rng)
    if init_head is not None:
        V.choice(f, "init_head", init_head, ("least_squares",))
    V.check(on_batch is None or (callable(on_batch) and not isinstance(on_batch, type)), f, "on_batch",
            _ON_BATCH, V.describe(on_batch))
    opt, name = _optimizer(f, algorithm, lr, options)
    options = V.options(f, "options", options)
    if batch is not None and batch < problem.d_x and getattr(opt, "right", None) == "Sigma_x" \
            and not getattr(opt, "lam_G", 0.0):
        raise V.fail(f, "batch", f">= d_x = {problem.d_x} for {name!r} (its Sigma_hat_x would be singular)", batch)
    if batch is None and (getattr(opt, "needs_samples", False) or getattr(opt, "needs_means", False)):
        raise V.fail(f, "batch", f"a batch size for {name!r} (it needs samples, not population moments)", None)
    F, G = _start(f, problem, F0, G0, rng)
    F, G = F.copy(), G.copy()
    next_batch = _batches(problem, batch, [opt], rng)

    Sqrt_t = _sqrt(problem.Sigma_test)
    loss = np.empty(steps + 1)
    dist = np.empty(steps + 1)
    tan2 = np.empty(steps + 1)
    trans = np.empty(steps + 1)

    def record(t: int, b: Batch) -> None:
        loss[t] = _batch_loss(F, G, b)
        s, c = _principal_angles(G, problem.G_star)
        dist[t] = s[0]
        s = s[: problem.k]
        tan2[t] = np.sum(s**2 / np.maximum(1.0 - s**2, np.finfo(float).tiny))
        trans[t] = _transfer_loss(G, problem, Sqrt_t)

    records: list[Any] | None = None if on_batch is None else []
    state = opt.init(F, G)
    b = next_batch()
    if init_head == "least_squares":
        F = _least_squares_head(G, b)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(steps + 1):
            try:
                record(t, b)
            except np.linalg.LinAlgError:
                raise DivergenceError(name, t, _partial(loss, dist, trans, t)) from None
            if records is not None:
                records.append(_on_batch(f, on_batch, t, b))
            if t == steps:
                break
            try:
                out = opt.step(F, G, b, state)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                raise DivergenceError(name, t + 1, _partial(loss, dist, trans, t + 1)) from None
            except Exception as exc:  # noqa: BLE001 - a user optimizer's defect is a bad argument
                raise V.fail(f, "algorithm", "an optimizer whose step(F, G, batch, state) returns (F, G, state)",
                             f"{name!r}, whose step raised {type(exc).__name__}: {exc}") from None
            F, G, state = _stepped(f, name, out, F.shape, G.shape)
            if not (np.all(np.isfinite(F)) and np.all(np.isfinite(G))):
                raise DivergenceError(name, t + 1, _partial(loss, dist, trans, t + 1))
            b = next_batch()
    return Trajectory(name, float(lr), loss, dist, tan2, trans, F, G, options,
                      batch_records=None if records is None else tuple(records))


_ON_BATCH = "None or a callable on_batch(t, batch) (t: the step index, batch: a simulate.optimizers.Batch)"


def _on_batch(func: str, fn: Callable[[int, Batch], Any], t: int, b: Batch) -> Any:
    """``fn(t, b)``; any exception it raises is a bad argument ``on_batch`` (named, with the step)."""
    try:
        with np.errstate(over="warn", invalid="warn", divide="warn"):  # numpy's defaults, not the loop's
            return fn(t, b)
    except Exception as exc:  # noqa: BLE001 - a failure of the user's callable is a bad argument
        label = getattr(fn, "__name__", type(fn).__name__)
        raise V.fail(func, "on_batch", _ON_BATCH, f"a callable ({label}) that raised {type(exc).__name__} "
                     f"at step {t}: {exc}") from None


def _batch_size(func: str, batch, problem: LinRepProblem) -> int | None:
    """``batch``: None (population) or a positive integer whose batch arrays fit in memory."""
    if batch is None:
        return None
    batch = V.integer(func, "batch", batch, low=1, expected="a positive integer or None (population)")
    V.memory(func, {"batch": batch}, 8.0 * batch * (3 * problem.d_x + 2 * problem.d_y),
             f"the batch's arrays, 8 batch (3 d_x + 2 d_y) bytes with d_x = {problem.d_x}, d_y = {problem.d_y},")
    return batch


def _optimizer(func: str, algorithm, lr: float, options) -> tuple[Any, str]:
    """(optimizer, its name): a registered name built with ``lr`` and ``options`` (:func:`make`), or an
    object with callable ``init(F, G)`` and ``step(F, G, batch, state)``."""
    if isinstance(algorithm, str):
        opts = V.options(func, "options", options)
        V.check("lr" not in opts, func, "options", "free of 'lr' (pass the step size as lr=)",
                f"options with lr = {opts.get('lr')!r}")
        V.check(algorithm in REGISTRY, func, "algorithm", f"a registered optimizer, one of {sorted(REGISTRY)} "
                "or an optimizer object", repr(algorithm))
        return make(algorithm, lr=lr, **opts), algorithm
    V.check(_is_built(algorithm), func, "algorithm", "a registered optimizer name or an object with "
            "init(F, G) and step(F, G, batch, state)", V.describe(algorithm))
    return algorithm, str(getattr(algorithm, "name", type(algorithm).__name__))


def _start(func: str, problem: LinRepProblem, F0, G0, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The start (F0, G0), checked; the missing one(s) from :func:`initial_point` (drawn from ``rng``)."""
    if F0 is None or G0 is None:
        F_init, G_init = _initial_point(problem, rng)
        F0 = F_init if F0 is None else F0
        G0 = G_init if G0 is None else G0
    F = V.matrix(func, "F0", F0, shape=(problem.d_y, problem.k), labels=("d_y", "k"))
    G = V.full_row_rank(func, "G0", G0, rows=problem.k, cols=problem.d_x, labels=("k", "d_x"))
    return F, G


def _batches(problem: LinRepProblem, batch: int | None, opts: list, rng: np.random.Generator):
    r"""``next_batch() -> Batch`` for ``opts`` stepping together: the population moments (``batch=None``),
    else a fresh batch per call, drawn as its sufficient statistics by one
    :class:`simulate.data.BatchSampler` (no :math:`X` formed; with the batch means when a rule has
    ``needs_means``), or materialised by :func:`simulate.data.draw_batch_fast` when a rule has
    ``needs_samples`` (it reads ``batch.X``, ``batch.Y``). Both consume ``rng`` identically, so the
    batches are the same either way (to round-off)."""
    if batch is None:
        pop = Batch.population(problem.Sigma_x, problem.M, problem.noise_std)
        return lambda: pop
    if any(getattr(o, "needs_samples", False) for o in opts):
        return lambda: Batch._from_samples(*_draw_batch_fast(problem, batch, rng))
    sampler = BatchSampler(problem, batch, means=any(getattr(o, "needs_means", False) for o in opts))

    def next_batch() -> Batch:
        Sx, Syx, trace_yy, x_mean, y_mean = sampler._stats(rng)
        return Batch(Sx, Syx, trace_yy, batch, x_mean=x_mean, y_mean=y_mean)

    return next_batch


def _stepped(func: str, name: str, out, F_shape, G_shape) -> tuple[np.ndarray, np.ndarray, Any]:
    """``(F, G, state)`` returned by a step, checked: a triple whose F and G are real arrays of the shapes
    they had (else a ValueError naming ``algorithm``)."""
    expected = "an optimizer whose step(F, G, batch, state) returns (F, G, state)"
    if not (isinstance(out, tuple) and len(out) == 3):
        raise V.fail(func, "algorithm", expected, f"{name!r}, whose step returned {V.describe(out)}")
    F, G, state = out
    for key, X, shape in (("F", F, F_shape), ("G", G, G_shape)):
        if not (isinstance(X, np.ndarray) and X.shape == shape and X.dtype.kind == "f"):
            raise V.fail(func, "algorithm", expected, f"{name!r}, whose step returned {key} as {V.describe(X)}")
    return F, G, state


def _partial(loss, dist, trans, t):
    return {"train_loss": loss[:t].copy(), "subspace_distance": dist[:t].copy(), "transfer_loss": trans[:t].copy()}


# --------------------------------------------------------------------------- issue 4: transfer, common random numbers
@dataclass(frozen=True)
class TransferData:
    r"""Samples of the transfer task :math:`y = F_{test}G^*x + \varepsilon`, :math:`x = \Sigma_t^{1/2}w`
    (docs/theory.md 3.1.0), shared by every representation evaluated on them.

    X_fit, Y_fit: the ``n_t`` samples the least-squares head is fitted on.
    X_eval, Y_eval: fresh evaluation samples, or ``None`` to take the exact expectation over fresh data.
    noise_std: the transfer task's label noise (subtracted from the fresh-data MSE).
    """

    X_fit: np.ndarray
    Y_fit: np.ndarray
    X_eval: np.ndarray | None
    Y_eval: np.ndarray | None
    noise_std: float


def transfer_data(problem: LinRepProblem, *, n_t: int, rng: np.random.Generator, n_eval: int | None = None,
                  noise_std: float | None = None) -> TransferData:
    """Draw the transfer samples: ``n_t`` for the head, ``n_eval`` fresh ones (``None``: exact expectation).

    problem: the task (its F_test, Sigma_test and input law). n_t >= 1. rng: generator.
    noise_std: transfer label noise (default: the training task's ``problem.noise_std``).
    """
    f = "transfer_data"
    problem = _check_problem(f, problem)
    n_t = V.integer(f, "n_t", n_t, low=1, expected="a positive integer")
    if n_eval is not None:
        n_eval = V.integer(f, "n_eval", n_eval, low=1, expected="a positive integer or None (exact expectation)")
    sizes = {"n_t": n_t, **({"n_eval": n_eval} if n_eval is not None else {})}
    V.memory(f, sizes, 16.0 * (n_t + (n_eval or 0)) * (problem.d_x + problem.d_y),
             f"the samples, 16 (n_t + n_eval) (d_x + d_y) bytes with d_x = {problem.d_x}, d_y = {problem.d_y},")
    rng = V.generator(f, "rng", rng)
    sigma = problem.noise_std if noise_std is None else V.scalar(f, "noise_std", noise_std, low=0.0)
    Sqrt_t = _sqrt(problem.Sigma_test)
    Mt = problem.F_test @ problem.G_star

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = _standard(int(n), problem.d_x, problem.law, rng) @ Sqrt_t
        Y = X @ Mt.T
        if sigma > 0:
            Y += sigma * rng.standard_normal(Y.shape)
        return X, Y

    Xf, Yf = draw(n_t)
    Xe, Ye = draw(n_eval) if n_eval is not None else (None, None)
    return TransferData(Xf, Yf, Xe, Ye, float(sigma))


def finite_transfer_loss(G: np.ndarray, problem: LinRepProblem, data: TransferData, *,
                         Sigma_test_sqrt: np.ndarray | None = None) -> float:
    r"""Finite-sample transfer loss of the frozen representation ``G`` (docs/theory.md 3.1.0):
    the least-squares head :math:`\hat F = \arg\min_F\sum_i\lVert y_i - FGx_i\rVert^2` on the ``n_t``
    transfer samples, then its excess risk on fresh data,

    .. math::

        \tfrac12\,\mathbb E_{x,\varepsilon}\lVert y - \hat FGx\rVert^2 - \tfrac12 d_Y\sigma^2
        = \tfrac12\lVert(\hat FG - M_t)\Sigma_t^{1/2}\rVert_F^2

    exactly (``data.X_eval is None``), or the empirical mean over the fresh samples minus
    :math:`\tfrac12 d_Y\sigma^2`. It tends to the population :func:`transfer_loss` as :math:`n_t\to\infty`.

    G: (k, d_x) of full row rank. problem: the task. data: :func:`transfer_data` of the same problem
    (n_t >= k samples whose features X_fit G^T have full column rank). Sigma_test_sqrt: as :func:`transfer_loss`.
    """
    f = "finite_transfer_loss"
    problem = _check_problem(f, problem)
    G = _representation(f, "G", G, problem)
    V.instance(f, "data", data, TransferData, "a simulate.linrep.TransferData (see transfer_data)")
    d_x, d_y = problem.d_x, problem.d_y
    V.matrix(f, "data", data.X_fit, shape=(None, d_x), labels=("n_t", "d_x"))
    V.matrix(f, "data", data.Y_fit, shape=(data.X_fit.shape[0], d_y), labels=("n_t", "d_y"))
    if data.X_eval is not None:
        V.matrix(f, "data", data.X_eval, shape=(None, d_x), labels=("n_eval", "d_x"))
        V.matrix(f, "data", data.Y_eval, shape=(data.X_eval.shape[0], d_y), labels=("n_eval", "d_y"))
    Z = data.X_fit @ G.T
    s = np.linalg.svd(Z, compute_uv=False)
    V.check(Z.shape[0] >= Z.shape[1] and s[-1] > max(Z.shape) * V.EPS * s[0], f, "data",
            f"transfer samples whose features X_fit G^T have full column rank k = {problem.k} (n_t >= k)",
            f"n_t = {Z.shape[0]} samples" + (f", singular values from {s[-1]:.3e} to {s[0]:.3e}"
                                             if Z.shape[0] >= Z.shape[1] else ""))
    if Sigma_test_sqrt is None:
        Sigma_test_sqrt = _sqrt(problem.Sigma_test)
    else:
        Sigma_test_sqrt = V.spd(f, "Sigma_test_sqrt", Sigma_test_sqrt, d=d_x, label="d_x")
    return _finite_transfer_loss(G, problem, data, Sigma_test_sqrt)


def _finite_transfer_loss(G: np.ndarray, problem: LinRepProblem, data: TransferData,
                          Sigma_test_sqrt: np.ndarray) -> float:
    Z = data.X_fit @ G.T
    Fh = _solve_head(Z, data.Y_fit)
    if data.X_eval is None:
        R = (Fh @ G - problem.F_test @ problem.G_star) @ Sigma_test_sqrt
        return float(0.5 * np.einsum("ij,ij->", R, R))
    R = data.Y_eval - (data.X_eval @ G.T) @ Fh.T
    return float(0.5 * np.einsum("ij,ij->", R, R) / R.shape[0] - 0.5 * R.shape[1] * data.noise_std**2)


def _solve_head(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares head (d_y, k) of Y on features Z (rows are samples), by a thin QR (no normal equations)."""
    Q, R = np.linalg.qr(Z)
    return np.linalg.solve(R, Q.T @ Y).T


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer of a common-random-numbers comparison.

    label: unique name of the run (e.g. ``"kfac"`` or ``"sgd@0.1"``). name: registered optimizer.
    lr > 0: its step size. options: further options as ``(key, value)`` pairs (hashable).
    """

    label: str
    name: str
    lr: float
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        f = "OptimizerSpec"
        if not isinstance(self.label, str) or not self.label:
            raise V.fail(f, "label", "a non-empty string", V.describe(self.label) if self.label != "" else "''")
        V.check(isinstance(self.name, str) and self.name in REGISTRY, f, "name",
                f"a registered optimizer, one of {sorted(REGISTRY)}",
                repr(self.name) if isinstance(self.name, str) else V.describe(self.name))
        object.__setattr__(self, "lr", V.scalar(f, "lr", self.lr, low=0.0, low_open=True))
        pairs = "a tuple of (name, value) pairs with string names"
        opts = self.options
        V.check(isinstance(opts, (tuple, list)), f, "options", pairs, V.describe(opts))
        for item in opts:
            V.check(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str), f, "options", pairs,
                    f"an element {V.describe(item) if not isinstance(item, tuple) else repr(item)[:60]}")
        object.__setattr__(self, "options", tuple(opts))
        make(self.name, lr=self.lr, **dict(self.options))  # each option checked by the factory (named there)

    def build(self) -> Optimizer:
        return make(self.name, lr=self.lr, **dict(self.options))


@dataclass(frozen=True)
class CommonRun:
    """Record of several optimizers trained on the same batches from the same start.

    labels: (m,) run labels. lrs: (m,) step sizes. steps: (r,) recorded iteration indices
    (0 and ``steps`` always included). Metric arrays have shape (m, r) and are NaN from the
    iteration at which a run diverged on:

    - train_loss: the training loss of the rule's own model on batch t (training mode for batch-norm);
    - population_loss: :math:`\\tfrac12\\mathbb E\\lVert y - f(x)\\rVert^2` of the evaluation-mode network;
    - subspace_distance: :math:`\\sin\\theta_{\\max}` between the row spaces of :math:`G_t` and :math:`G^*`;
    - transfer_loss: population transfer loss :func:`transfer_loss`;
    - transfer_loss_finite: :func:`finite_transfer_loss` (all NaN without transfer samples).

    diverged_at: (m,) first iteration whose loss was non-finite or above ``blowup`` times the initial
    loss, or whose step failed (-1: never).
    final_F, final_G: (m, d_y, k) and (m, k, d_x) each run's parameters after the last iteration
    (NaN for a run that diverged), e.g. for the stability limit of the head a run ends with.
    """

    labels: tuple[str, ...]
    lrs: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    population_loss: np.ndarray
    subspace_distance: np.ndarray
    transfer_loss: np.ndarray
    transfer_loss_finite: np.ndarray
    diverged_at: np.ndarray
    final_F: np.ndarray | None = None
    final_G: np.ndarray | None = None

    def index(self, label: str) -> int:
        """Row of run ``label``."""
        if label not in self.labels:
            raise V.fail("CommonRun.index", "label", f"one of {list(self.labels)}", repr(label))
        return self.labels.index(label)


METRICS = ("train_loss", "population_loss", "subspace_distance", "transfer_loss", "transfer_loss_finite")


def run_common(
    problem: LinRepProblem,
    specs: "list[OptimizerSpec] | tuple[OptimizerSpec, ...]",
    *,
    steps: int,
    batch: int | None,
    rng: np.random.Generator,
    record_every: int = 1,
    transfer_samples: int | None = None,
    transfer_eval: int | None = None,
    blowup: float = 1e6,
    F0: np.ndarray | None = None,
    G0: np.ndarray | None = None,
    stack: bool = True,
    check_every: int = 1,
) -> CommonRun:
    """Train every optimizer of ``specs`` with common random numbers: one start and, at every
    iteration, one batch shared by all of them; the transfer samples are shared too.

    problem: the task. specs: :class:`OptimizerSpec` s with distinct labels. steps >= 0.
    batch: samples per fresh batch (:func:`_batches`: every optimizer steps on the same batch), or
    ``None`` for the population moments. rng: the trial's generator
    (draws, in order: the start unless F0/G0 are given, the transfer samples, then the batches).
    record_every >= 1: metrics every that many iterations (and at the last). transfer_samples: n_t for
    the finite-sample transfer loss (``None``: not recorded). transfer_eval: fresh evaluation samples for
    it (``None``: exact expectation). blowup > 1: a run whose loss exceeds ``blowup`` times its initial loss
    is declared diverged (as is a non-finite iterate or a failed solve) and is not stepped again.
    F0, G0: the start (default :func:`initial_point`). stack: step runs of one built-in rule that differ
    only in the step size together (:func:`simulate.optimizers.stacked`; same numbers to round-off, faster).
    check_every >= 1: the loss test for divergence runs at every recorded iteration and every ``check_every``
    iterations (a non-finite iterate is caught at every step).
    """
    f = "run_common"
    problem = _check_problem(f, problem)
    steps = V.integer(f, "steps", steps, low=0)
    batch = _batch_size(f, batch, problem)
    rng = V.generator(f, "rng", rng)
    record_every = V.integer(f, "record_every", record_every, low=1, expected="a positive integer")
    blowup = V.scalar(f, "blowup", blowup, low=1.0, low_open=True)
    check_every = V.integer(f, "check_every", check_every, low=1, expected="a positive integer")
    stack = V.flag(f, "stack", stack)
    V.check(isinstance(specs, (list, tuple)) and len(specs) > 0 and all(isinstance(s, OptimizerSpec) for s in specs),
            f, "specs", "a non-empty list or tuple of OptimizerSpec",
            V.describe(specs) if not isinstance(specs, (list, tuple)) or not specs else
            f"an element of type {type(next(s for s in specs if not isinstance(s, OptimizerSpec))).__name__}"
            if not all(isinstance(s, OptimizerSpec) for s in specs) else "")
    specs = tuple(specs)
    rows = steps // record_every + 2
    V.memory(f, {"steps": steps}, 8.0 * rows * (5 * len(specs) + 2),
             f"the recorded metrics, 8 (steps / record_every + 2) (5 m + 2) bytes with record_every = "
             f"{record_every}, m = {len(specs)} runs,")
    labels = tuple(s.label for s in specs)
    if len(set(labels)) != len(labels):
        raise V.fail(f, "specs", "OptimizerSpecs with distinct labels", list(labels))
    opts = [s.build() for s in specs]
    for s, opt in zip(specs, opts):
        if batch is not None and batch < problem.d_x and getattr(opt, "right", None) == "Sigma_x" \
                and not getattr(opt, "lam_G", 0.0):
            raise V.fail(f, "batch", f">= d_x = {problem.d_x} for {s.label!r} (its Sigma_hat_x would be singular)",
                         batch)
        if batch is None and (getattr(opt, "needs_samples", False) or getattr(opt, "needs_means", False)):
            raise V.fail(f, "batch", f"a batch size for {s.label!r} (it needs samples, not population moments)",
                         None)

    F0, G0 = _start(f, problem, F0, G0, rng)
    if transfer_samples is None:
        V.check(transfer_eval is None, f, "transfer_eval", "None when transfer_samples is None",
                V.describe(transfer_eval))
        tdata = None
    else:
        try:
            tdata = transfer_data(problem, n_t=transfer_samples, n_eval=transfer_eval, rng=rng)
        except ValueError as e:  # name run_common's arguments, not transfer_data's
            msg = str(e).replace("transfer_data: argument 'n_t'", f"{f}: argument 'transfer_samples'")
            raise ValueError(msg.replace("transfer_data: argument 'n_eval'", f"{f}: argument 'transfer_eval'")) from None

    rec = np.unique(np.r_[np.arange(0, steps + 1, record_every), steps]).astype(int)
    slot = {int(t): i for i, t in enumerate(rec)}
    m, r = len(specs), rec.size
    out = {key: np.full((m, r), np.nan) for key in METRICS}
    diverged = np.full(m, -1, dtype=int)

    Sx = problem.Sigma_x_sqrt
    St = _sqrt(problem.Sigma_test)
    Mt_w = problem.F_test @ problem.G_star @ St
    Mt_w2 = float(np.einsum("ij,ij->", Mt_w, Mt_w))
    Qs = problem.G_star.T  # orthonormal columns
    noise_term = 0.5 * problem.d_y * problem.noise_std**2
    next_batch = _batches(problem, batch, opts, rng)

    def metrics(j: int, F: np.ndarray, G: np.ndarray, state: Any, i: int) -> None:
        W, c = opts[j].eval_map(F, G, state) if hasattr(opts[j], "eval_map") else (F @ G, None)
        R = (W - problem.M) @ Sx
        out["population_loss"][j, i] = 0.5 * np.einsum("ij,ij->", R, R) + noise_term + \
            (0.5 * float(c @ c) if c is not None else 0.0)
        Qg, _ = np.linalg.qr(G.T)
        out["subspace_distance"][j, i] = min(1.0, np.linalg.svd(Qg - Qs @ (Qs.T @ Qg), compute_uv=False)[0])
        Qw, _ = np.linalg.qr((G @ St).T)
        P = Mt_w @ Qw
        out["transfer_loss"][j, i] = max(0.0, 0.5 * (Mt_w2 - np.einsum("ij,ij->", P, P)))
        if tdata is not None:
            out["transfer_loss_finite"][j, i] = _finite_transfer_loss(G, problem, tdata, St)

    units = _units(opts, F0, G0, stack=stack)
    L0 = np.full(m, np.nan)
    failures = (np.linalg.LinAlgError, FloatingPointError, ValueError)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(steps + 1):
            b = next_batch()
            check = t in slot or t % check_every == 0
            for u in units:
                if not u.members:
                    continue
                if check:
                    try:
                        losses = np.asarray(u.runner.batch_loss(u.F, u.G, b, u.state), dtype=float).reshape(-1)
                    except failures:
                        losses = u.each(lambda r, F, G, st: r.batch_loss(F, G, b, st), fill=np.nan)
                    if t == 0:
                        L0[u.members] = losses
                    keep = np.isfinite(losses) & (losses <= blowup * np.maximum(L0[u.members], np.finfo(float).tiny))
                    if t in slot:
                        for i in np.nonzero(keep)[0]:
                            j = u.members[i]
                            try:
                                out["train_loss"][j, slot[t]] = losses[i]
                                metrics(j, u.F[i], u.G[i], u.runner.state_of(u.state, i), slot[t])
                            except failures:
                                keep[i] = False
                                for key in METRICS:  # a partly written record of this iteration
                                    out[key][j, slot[t]] = np.nan
                    diverged[[u.members[i] for i in np.nonzero(~keep)[0]]] = t
                    u.keep(keep)
                if t == steps or not u.members:
                    continue
                try:
                    u.F, u.G, u.state = u.runner.step(u.F, u.G, b, u.state)
                    ok = np.isfinite(u.F).all(axis=(1, 2)) & np.isfinite(u.G).all(axis=(1, 2))
                except failures:
                    ok = u.step_each(b, failures)
                diverged[[u.members[i] for i in np.nonzero(~ok)[0]]] = t + 1
                u.keep(ok)
    final_F = np.full((m, problem.d_y, problem.k), np.nan)
    final_G = np.full((m, problem.k, problem.d_x), np.nan)
    for u in units:
        for i, j in enumerate(u.members):
            if diverged[j] < 0:
                final_F[j], final_G[j] = u.F[i], u.G[i]
    return CommonRun(labels, np.array([s.lr for s in specs], dtype=float), rec,
                     *(out[key] for key in METRICS), diverged, final_F=final_F, final_G=final_G)


class _Single:
    """Adapter giving one optimizer the stacked interface (stacks of one run)."""

    def __init__(self, opt: Any):
        self.opt = opt

    def init(self, F, G):
        return self.opt.init(F[0], G[0])

    def take(self, idx) -> "_Single":
        return self

    def state_of(self, state, i):
        return state

    def batch_loss(self, F, G, b, state):
        opt = self.opt
        return np.array([opt.batch_loss(F[0], G[0], b, state) if hasattr(opt, "batch_loss") else _batch_loss(F[0], G[0], b)])

    def step(self, F, G, b, state):
        F1, G1, st = self.opt.step(F[0], G[0], b, state)
        return F1[None], G1[None], st


class _StackedRunner:
    """:class:`simulate.optimizers.Stacked` with the state bookkeeping of :class:`_Unit`."""

    def __init__(self, st: Any):
        self.st = st

    def init(self, F, G):
        return self.st.init(F, G)

    def take(self, idx) -> "_StackedRunner":
        return _StackedRunner(self.st.take(idx))

    def state_of(self, state, i):
        from simulate.optimizers import _take

        return _take(state, i)

    def batch_loss(self, F, G, b, state):
        return self.st.batch_loss(F, G, b, state)

    def step(self, F, G, b, state):
        return self.st.step(F, G, b, state)


class _Unit:
    """Runs advanced together: ``members`` (run indices) with stacked parameters and state."""

    def __init__(self, members: list[int], runner: Any, F: np.ndarray, G: np.ndarray):
        self.members, self.runner = members, runner
        self.F, self.G = F, G
        self.state = runner.init(F, G)

    def keep(self, mask: np.ndarray) -> None:
        if mask.all():
            return
        idx = np.nonzero(mask)[0]
        self.members = [self.members[i] for i in idx]
        if not self.members:
            return
        from simulate.optimizers import _take

        stacked_state = isinstance(self.runner, _StackedRunner)
        self.F, self.G = self.F[idx], self.G[idx]
        self.state = _take(self.state, idx) if stacked_state else self.state
        self.runner = self.runner.take(idx)

    def each(self, fn, *, fill: float) -> np.ndarray:
        """``fn`` run by run (to isolate a failure of the stacked call); failures give ``fill``."""
        out = np.full(len(self.members), fill)
        for i in range(len(self.members)):
            r = self.runner.take(np.array([i]))
            st = self._sub_state(i)
            try:
                out[i] = np.asarray(fn(r, self.F[i:i + 1], self.G[i:i + 1], st)).reshape(-1)[0]
            except (np.linalg.LinAlgError, FloatingPointError, ValueError):
                pass
        return out

    def _sub_state(self, i: int):
        from simulate.optimizers import _take

        return _take(self.state, np.array([i])) if isinstance(self.runner, _StackedRunner) else self.state

    def step_each(self, b: Batch, failures: tuple) -> np.ndarray:
        """Step run by run after a failed stacked step; returns which runs succeeded."""
        n = len(self.members)
        ok = np.zeros(n, dtype=bool)
        res = [None] * n
        for i in range(n):
            r = self.runner.take(np.array([i]))
            try:
                F1, G1, st = r.step(self.F[i:i + 1], self.G[i:i + 1], b, self._sub_state(i))
                ok[i] = bool(np.isfinite(F1).all() and np.isfinite(G1).all())
                res[i] = (F1, G1, st)
            except failures:
                pass
        if ok.any():
            idx = np.nonzero(ok)[0]
            F = self.F.copy()
            G = self.G.copy()
            for i in idx:
                F[i], G[i] = res[i][0][0], res[i][1][0]
            self.F, self.G = F, G
            if isinstance(self.runner, _StackedRunner):
                self.state = _concat_states([res[i][2] if ok[i] else self._sub_state(i) for i in range(n)])
            else:
                self.state = res[0][2]
        return ok


def _concat_states(states: list) -> Any:
    """Stack of single-run slices (each with a leading axis of 1) back into one stacked state."""
    first = states[0]
    if first is None:
        return None
    if isinstance(first, np.ndarray):
        return np.concatenate(states)
    fields = {}
    for name in first.__dataclass_fields__:
        v = getattr(first, name)
        fields[name] = np.concatenate([getattr(s, name) for s in states]) if isinstance(v, np.ndarray) else v
    return type(first)(**fields)


def _units(opts: list, F0: np.ndarray, G0: np.ndarray, *, stack: bool) -> list[_Unit]:
    """Group the runs: one unit per built-in rule and options (all its step sizes), one per other run."""
    groups: dict[Any, list[int]] = {}
    for j, opt in enumerate(opts):
        key = ("single", j)
        if stack and stacked([opt]) is not None:
            key = (type(opt).__name__, repr([(k, v) for k, v in vars(opt).items() if k != "lr"]))
        groups.setdefault(key, []).append(j)
    units = []
    for key, members in groups.items():
        L = len(members)
        F = np.repeat(F0[None], L, axis=0)
        G = np.repeat(G0[None], L, axis=0)
        st = stacked([opts[j] for j in members]) if key[0] != "single" else None
        runner = _StackedRunner(st) if st is not None else _Single(opts[members[0]])
        units.append(_Unit(members, runner, F, G))
    return units
