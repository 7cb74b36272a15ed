r"""The paper's linear-representation experiments (Figures 1, 2, 4, 5; docs/theory.md sections 3.1 and 5).

Every runner is a pure function of ``(settings, seed)``: settings are frozen dataclasses, results
are frozen dataclasses of numpy arrays, and the numbers do not depend on ``jobs`` or ``scheduler``.
Trials run through :func:`compare.cache.cached_map` (cached and resumable when a cache directory is
set, parallel with joblib or dask, one BLAS thread per worker). Within a trial every optimizer sees
the same problem, start, transfer samples and batches (common random numbers,
:func:`simulate.linrep.run_common`), so differences between optimizers are measured paired.

Step sizes. Figure 5 is a sweep over a log grid (:data:`STEP_GRID`, ratio :math:`\sqrt{10}`) on the
*sweep stream* of the seed; the step size of each method in Figures 1, 2 and 4 is the grid point
with the smallest mean :math:`\log_{10}` final subspace distance over the sweep's trials, among
those where no trial diverged. The curves of Figures 1, 2 and 4 use the *curve stream*, a
separate seed stream (``SeedSequence(seed, spawn_key=...)``), so no learning rate is chosen on the
trials it is shown with.

Theory overlays (computed per trial from that trial's :math:`F^*,\Sigma_x,G^*`):

.. math::

    \eta_{\max}^{AMGD} = \frac{2}{\sigma_{\max}(F^*)^2\mu_{\max}(\Sigma_{22\cdot1})}\ \text{(R-LR-1)},\qquad
    \rho_{KFAC} = 1-\eta\ \text{(R-LR-1)},\qquad
    \mathbb E\sum_i\tan^2\theta_i \approx \frac{\eta}{2-\eta}\sigma_\varepsilon^2\lVert F^{*+}\rVert_F^2
    \frac{\mathrm{tr}(\Sigma_{22\cdot1}^{-1})}{n-d_X-1}\ \text{(R-LR-3)}.

R-LR-3 is derived for Gaussian inputs (the Rademacher inputs of Figure 1 have the same second
moments; docs/theory.md uses the same formula for them) and, as :math:`\sin\theta_{\max}\le
\sqrt{\sum\tan^2\theta_i}`, its square root is an upper reference level for KFAC's distance.

Settings [R] (docs/theory.md section 5, Figure 1 defaults): :math:`d_X=100, d_Y=10, k=5`, fresh
batches of :math:`n=1024`, :math:`\kappa_x=100, \kappa_F=10, \sigma_\varepsilon=0.01`, Rademacher
inputs, 1000 iterations, 20 trials (Figure 4's per-setting sweeps: 4), transfer head on :math:`n_t=100`
samples. ``fast``: :math:`d_X=40, d_Y=6, k=3, n=400`, 200 iterations, 10 trials (sweeps 8; Figure 4: 3).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from simulate import data as sd
from simulate import linrep as sl
from theory import linrep as tl

#: Figure 5's step sizes and the grid every tuned step size is chosen from: 1e-3 ... 10, ratio sqrt(10).
STEP_GRID: tuple[float, ...] = tuple(float(x) for x in 10.0 ** (np.arange(-6, 3) / 2.0))
#: iterations between the loss tests for divergence (a non-finite iterate is caught at every step).
CHECK_EVERY = 10
SIZES = ("fast", "paper")


# --------------------------------------------------------------------------- settings
def _positive_int(func: str, name: str, x: Any) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
        raise ValueError(f"{func}: argument '{name}' must be a positive integer; got {x!r}.")


def _check_methods(func: str, methods: Any) -> None:
    if not isinstance(methods, tuple) or not methods or not all(isinstance(m, Method) for m in methods):
        raise ValueError(f"{func}: argument 'methods' must be a non-empty tuple of Method; got {methods!r}.")
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{func}: argument 'methods' must have distinct labels; got {labels}.")


@dataclass(frozen=True)
class ProblemSettings:
    """One task family (docs/theory.md 3.1.0) and its batches.

    d_x, d_y, k: dimensions. batch: fresh samples per iteration. kappa_x, kappa_F: condition numbers
    of Sigma_x and F*. noise_std: label noise. law: input law (``rademacher``, ``uniform``,
    ``gaussian``). transfer_samples: n_t, samples the transfer head is fitted on.
    """

    d_x: int = 100
    d_y: int = 10
    k: int = 5
    batch: int = 1024
    kappa_x: float = 100.0
    kappa_F: float = 10.0
    noise_std: float = 0.01
    law: str = "rademacher"
    transfer_samples: int = 100

    def __post_init__(self):
        for name in ("d_x", "d_y", "k", "batch", "transfer_samples"):
            _positive_int("ProblemSettings", name, getattr(self, name))
        for name in ("kappa_x", "kappa_F"):
            if not float(getattr(self, name)) >= 1.0:
                raise ValueError(f"ProblemSettings: argument '{name}' must be >= 1; got {getattr(self, name)!r}.")
        if not float(self.noise_std) >= 0.0:
            raise ValueError(f"ProblemSettings: argument 'noise_std' must be >= 0; got {self.noise_std!r}.")
        if self.law not in sd.LAWS:
            raise ValueError(f"ProblemSettings: argument 'law' must be one of {sd.LAWS}; got {self.law!r}.")

    def draw(self, rng: np.random.Generator) -> sd.LinRepProblem:
        """A task from ``rng`` (:func:`simulate.data.linrep_problem`)."""
        return sd.linrep_problem(self.d_x, self.d_y, self.k, kappa_x=self.kappa_x, kappa_F=self.kappa_F,
                                 noise_std=self.noise_std, rng=rng, law=self.law)


@dataclass(frozen=True)
class Method:
    """One optimizer as shown in the figures: legend ``label``, registered ``name``, ``options``;
    ``grid``: the step sizes of :data:`STEP_GRID` it is swept over (``None``: all of them)."""

    label: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()
    grid: tuple[float, ...] | None = None

    def lrs(self, grid: tuple[float, ...]) -> tuple[float, ...]:
        """The step sizes of ``grid`` this method is run at."""
        return grid if self.grid is None else tuple(x for x in grid if any(np.isclose(x, g) for g in self.grid))


#: The full second-order methods are swept over part of the grid only, for cost (each step solves a
#: (d_y k + k d_x)-dimensional system): NGD over 0.01 ... 1 (it brackets KFAC's best step size, so the
#: comparison of C19 is not tilted by a coarser grid), damped Newton over 0.01 ... 0.316.
NGD_GRID: tuple[float, ...] = tuple(float(x) for x in 10.0 ** (np.arange(-4, 1) / 2.0))
NEWTON_GRID: tuple[float, ...] = tuple(float(x) for x in 10.0 ** (np.arange(-4, 0) / 2.0))
#: Figure 1's optimizers (docs/theory.md section 2 catalogue). NGD and Newton: damping 1e-3 x mean diagonal.
FIG1_METHODS: tuple[Method, ...] = (
    Method("SGD", "sgd"),
    Method("AMGD", "amgd"),
    Method("Adam", "adam"),
    Method("AMGD+BN", "amgd_bn"),
    Method("NGD", "ngd", (("damping", 1e-3),), grid=NGD_GRID),
    Method("Newton", "newton", (("damping", 1e-3),), grid=NEWTON_GRID),
    Method("KFAC", "kfac"),
    Method("KFAC (LS head)", "kfac_ls"),
)
FIG2_LABELS = ("KFAC", "AMGD", "AMGD+BN")
FIG4_LABELS = ("KFAC", "AMGD+BN", "AMGD")


@dataclass(frozen=True)
class SweepSettings:
    """Figure 5: final metrics after ``steps`` iterations for every method at every step size in ``lrs``.

    problem: the task family. methods: optimizers. lrs: step-size grid. steps: iterations.
    trials: independent tasks (each with its own start and batches, shared by all runs of the trial).
    """

    problem: ProblemSettings
    methods: tuple[Method, ...]
    lrs: tuple[float, ...] = STEP_GRID
    steps: int = 1000
    trials: int = 20

    def __post_init__(self):
        _check_methods("SweepSettings", self.methods)
        if not self.lrs or not all(float(x) > 0 for x in self.lrs):
            raise ValueError(f"SweepSettings: argument 'lrs' must be non-empty and positive; got {self.lrs!r}.")
        _positive_int("SweepSettings", "steps", self.steps)
        _positive_int("SweepSettings", "trials", self.trials)


@dataclass(frozen=True)
class CurveSettings:
    """Figures 1, 2 and each setting of Figure 4: metrics vs iteration at the tuned step sizes.

    problem: the task family. methods: optimizers. steps: iterations. trials: independent tasks.
    record_every: iterations between recorded points. sweep_trials: trials of the step-size sweep
    (on a separate seed stream; its grid is :data:`STEP_GRID`).
    """

    problem: ProblemSettings
    methods: tuple[Method, ...]
    steps: int = 1000
    trials: int = 20
    record_every: int = 5
    sweep_trials: int = 20

    def __post_init__(self):
        _check_methods("CurveSettings", self.methods)
        for name in ("steps", "trials", "record_every", "sweep_trials"):
            _positive_int("CurveSettings", name, getattr(self, name))

    @property
    def sweep(self) -> SweepSettings:
        """The step-size sweep the curves' learning rates are chosen from."""
        return SweepSettings(self.problem, self.methods, STEP_GRID, self.steps, self.sweep_trials)


@dataclass(frozen=True)
class Figure1Settings:
    """Figure 1: training loss, subspace distance and transfer loss vs iteration, every method."""

    curves: CurveSettings


@dataclass(frozen=True)
class Figure2Settings:
    """Figure 2: KFAC vs AMGD with and without batch-norm (a view of Figure 1's runs)."""

    figure1: Figure1Settings
    labels: tuple[str, ...] = FIG2_LABELS


@dataclass(frozen=True)
class Figure4Settings:
    """Figure 4: batch-norm vs KFAC in three data settings (``cases``: (name, CurveSettings) pairs)."""

    cases: tuple[tuple[str, CurveSettings], ...]


@dataclass(frozen=True)
class Figure5Settings:
    """Figure 5: subspace distance after ``sweep.steps`` iterations vs step size."""

    sweep: SweepSettings


def _problem(size: str, **changes: Any) -> ProblemSettings:
    if size not in SIZES:
        raise ValueError(f"experiments_linrep: argument 'size' must be one of {SIZES}; got {size!r}.")
    base = ProblemSettings() if size == "paper" else ProblemSettings(d_x=40, d_y=6, k=3, batch=400,
                                                                       transfer_samples=60)
    return replace(base, **changes)


def _curves(size: str, problem: ProblemSettings, methods: tuple[Method, ...], *, sweep_trials: int | None = None
            ) -> CurveSettings:
    if size == "paper":
        return CurveSettings(problem, methods, steps=1000, trials=20, record_every=10,
                             sweep_trials=sweep_trials or 20)
    return CurveSettings(problem, methods, steps=200, trials=10, record_every=4, sweep_trials=sweep_trials or 8)


def figure1_settings(size: str = "paper") -> Figure1Settings:
    """Figure 1 at ``size`` (``"fast"`` or ``"paper"``)."""
    return Figure1Settings(_curves(size, _problem(size), FIG1_METHODS))


def figure2_settings(size: str = "paper") -> Figure2Settings:
    """Figure 2 at ``size``: the KFAC / AMGD / AMGD+BN runs of Figure 1."""
    return Figure2Settings(figure1_settings(size))


def figure4_settings(size: str = "paper") -> Figure4Settings:
    """Figure 4 at ``size``: uniform inputs with kappa_x = 10, Gaussian with 10 and with 1000 [R]."""
    methods = tuple(next(m for m in FIG1_METHODS if m.label == lb) for lb in FIG4_LABELS)
    cases = (("uniform, low anisotropy", "uniform", 10.0), ("Gaussian, low anisotropy", "gaussian", 10.0),
             ("Gaussian, high anisotropy", "gaussian", 1000.0))
    return Figure4Settings(tuple((name, _curves(size, _problem(size, law=law, kappa_x=kx), methods,
                                                sweep_trials=4 if size == "paper" else 3))
                                 for name, law, kx in cases))


def figure5_settings(size: str = "paper") -> Figure5Settings:
    """Figure 5 at ``size``: the sweep Figure 1's step sizes are chosen from."""
    return Figure5Settings(figure1_settings(size).curves.sweep)


# --------------------------------------------------------------------------- seed streams
#: spawn keys of the streams of one master seed: curves and sweeps of Figures 1/2/5, and of Figure 4 case i.
_CURVE, _SWEEP = 0, 1


def _stream(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


# --------------------------------------------------------------------------- theory per trial
@dataclass(frozen=True)
class TrialTheory:
    """Theory numbers of one trial's task: R-LR-1 AMGD stability limit and optimal step, the
    effective condition number, and the R-LR-3 level sqrt(E sum tan^2) of KFAC at step sizes ``etas``."""

    amgd_limit: float
    amgd_optimal_eta: float
    kappa_eff: float
    etas: np.ndarray
    kfac_level: np.ndarray


def trial_theory(problem: sd.LinRepProblem, etas: np.ndarray, *, batch: int) -> TrialTheory:
    """R-LR-1 / R-LR-3 numbers for ``problem`` (NaN for the floor where eta is outside (0, 1] or n <= d_x + 1)."""
    Fs, Sx, Gs = problem.F_star, problem.Sigma_x, problem.G_star
    etas = np.asarray(etas, dtype=float)
    level = np.full(etas.shape, np.nan)
    if batch > problem.d_x + 1:
        for i, eta in enumerate(etas):
            if 0.0 < eta <= 1.0:
                level[i] = np.sqrt(tl.kfac_noise_floor(Fs, Sx, Gs, eta=float(eta), noise_std=problem.noise_std,
                                                       n=batch))
    return TrialTheory(tl.amgd_stability_limit(Fs, Sx, Gs), tl.amgd_optimal_eta(Fs, Sx, Gs),
                       tl.amgd_effective_condition(Fs, Sx, Gs), etas, level)


# --------------------------------------------------------------------------- sweeps (Figure 5)
@dataclass(frozen=True)
class SweepResult:
    """Figure 5's numbers. Arrays have shape (trials, methods, step sizes) unless stated.

    final_distance, final_transfer, final_transfer_finite, final_train_loss: metrics after
    ``settings.steps`` iterations (NaN where the run diverged or was not run). diverged: bool.
    ran: (methods, step sizes) which grid points each method was run at (:attr:`Method.grid`).
    amgd_limit, amgd_optimal_eta: (trials,) R-LR-1 per task. kfac_level: (trials, step sizes)
    sqrt of R-LR-3's E sum tan^2 (NaN outside (0, 1]). initial_distance: (trials,).
    final_F: (trials, methods, step sizes, d_y, k) the head :math:`F_T` each run ends with (NaN where
    it diverged or was not run). final_limit: (trials, methods, step sizes) the R-LR-1 stability limit
    at the point :math:`(F_T, G_T)` the run ends at (:func:`own_limit`; NaN where F_T is).
    final_limit_star: the same with the Schur complement of :math:`G^*` (R-LR-1 at :math:`F_T`).
    mid_limit: :func:`own_limit` after ``steps // 2`` iterations, for the methods of
    :data:`MID_LIMIT_LABELS` (NaN elsewhere): how far the run was from settled.
    """

    settings: SweepSettings
    labels: tuple[str, ...]
    lrs: np.ndarray
    final_distance: np.ndarray
    final_transfer: np.ndarray
    final_transfer_finite: np.ndarray
    final_train_loss: np.ndarray
    diverged: np.ndarray
    ran: np.ndarray
    amgd_limit: np.ndarray
    amgd_optimal_eta: np.ndarray
    kfac_level: np.ndarray
    initial_distance: np.ndarray
    final_F: np.ndarray
    final_limit: np.ndarray
    final_limit_star: np.ndarray
    mid_limit: np.ndarray

    def best_lrs(self) -> dict[str, float]:
        """Per method, the step size with the smallest mean log10 final distance among those where no
        trial diverged (the rule that sets Figures 1, 2 and 4's step sizes)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.log10(self.final_distance).mean(axis=0)
        score = np.where(self.diverged.any(axis=0) | ~np.isfinite(score) | ~self.ran, np.inf, score)
        out = {}
        for i, label in enumerate(self.labels):
            if not np.isfinite(score[i]).any():
                raise RuntimeError(f"sweep: every step size of {label!r} diverged in some trial; widen STEP_GRID")
            out[label] = float(self.lrs[int(np.argmin(score[i]))])
        return out


#: methods whose stability limit is also recorded half-way through the sweep (C18 (b)).
MID_LIMIT_LABELS = ("AMGD",)


def _limit(F: np.ndarray, Sigma_x: np.ndarray, basis: np.ndarray) -> float:
    try:
        return tl.amgd_stability_limit(F, Sigma_x, basis) if np.all(np.isfinite(F)) else np.nan
    except (ValueError, np.linalg.LinAlgError):  # a rank-deficient head has no finite limit here
        return np.nan


def own_limit(F: np.ndarray, G: np.ndarray, problem: sd.LinRepProblem) -> float:
    r"""R-LR-1's AMGD stability limit at the point :math:`(F, G)` itself,

    .. math:: \eta_{\max}(F, G) = \frac{2}{\sigma_{\max}(F)^2\,\mu_{\max}(\Sigma_{22\cdot1}(G))},

    with the Schur complement of :math:`\Sigma_x` taken with respect to the row space of ``G`` (an
    orthonormal basis by QR) instead of :math:`G^*`'s: the Gauss-Newton curvature of AMGD's reduced loss
    :math:`\min_F L(F, G)` at ``G``, equal to R-LR-1's limit when the row spaces agree. NaN for a
    non-finite or rank-deficient point.
    """
    if not (np.all(np.isfinite(F)) and np.all(np.isfinite(G))):
        return np.nan
    Q, R = np.linalg.qr(G.T)
    if np.min(np.abs(np.diag(R))) <= 1e-12 * np.max(np.abs(np.diag(R))):
        return np.nan
    return _limit(F, problem.Sigma_x, Q.T)


@dataclass(frozen=True)
class _SweepTrial:
    settings: SweepSettings

    def __call__(self, ss: np.random.SeedSequence) -> dict[str, np.ndarray]:
        st = self.settings
        rng = np.random.default_rng(ss)
        problem = st.problem.draw(rng)
        mid_rng = copy.deepcopy(rng)
        ran = _ran(st)
        specs = [sl.OptimizerSpec(f"{m.label}@{j}", m.name, lr, m.options)
                 for i, m in enumerate(st.methods) for j, lr in enumerate(st.lrs) if ran[i, j]]
        run = sl.run_common(problem, specs, steps=st.steps, batch=st.problem.batch, rng=rng,
                            record_every=max(st.steps, 1), transfer_samples=st.problem.transfer_samples,
                            check_every=CHECK_EVERY)
        th = trial_theory(problem, np.asarray(st.lrs), batch=st.problem.batch)
        # the same AMGD runs stopped at T/2 (a copy of the generator: the same start and batches)
        mid_specs = [sp for sp in specs if sp.label.split("@")[0] in MID_LIMIT_LABELS]
        mid = sl.run_common(problem, mid_specs, steps=st.steps // 2, batch=st.problem.batch, rng=mid_rng,
                            record_every=max(st.steps // 2, 1), transfer_samples=st.problem.transfer_samples,
                            check_every=CHECK_EVERY) if mid_specs and st.steps >= 2 else None
        own = [own_limit(F, G, problem) for F, G in zip(run.final_F, run.final_G)]
        star = [_limit(F, problem.Sigma_x, problem.G_star) for F in run.final_F]
        half = {sp.label: own_limit(F, G, problem) for sp, F, G in zip(mid_specs, mid.final_F, mid.final_G)} \
            if mid is not None else {}
        mids = [half.get(sp.label, np.nan) for sp in specs]

        def grid(values: np.ndarray, fill: Any) -> np.ndarray:
            values = np.asarray(values)
            out = np.full(ran.shape + values.shape[1:], fill, dtype=values.dtype)
            out[ran] = values
            return out

        return {
            "distance": grid(run.subspace_distance[:, -1], np.nan),
            "transfer": grid(run.transfer_loss[:, -1], np.nan),
            "transfer_finite": grid(run.transfer_loss_finite[:, -1], np.nan),
            "train_loss": grid(run.train_loss[:, -1], np.nan),
            "diverged": grid(run.diverged_at >= 0, False),
            "final_F": grid(run.final_F, np.nan),
            "final_limit": grid(own, np.nan),
            "final_limit_star": grid(star, np.nan),
            "mid_limit": grid(mids, np.nan),
            "initial_distance": run.subspace_distance[0, 0],
            "theory": th,
        }


def _ran(st: SweepSettings) -> np.ndarray:
    """(methods, lrs) which grid points each method is run at."""
    return np.array([[lr in m.lrs(st.lrs) for lr in st.lrs] for m in st.methods], dtype=bool)


def _map(fn, seeds, *, key: dict, jobs: int, scheduler: Any) -> list:
    from threadpoolctl import threadpool_limits

    from compare.cache import cached_map

    with threadpool_limits(limits=1):  # one BLAS thread: small matrices, shared cores (see simulate.trials)
        return cached_map(fn, seeds, key=key, block=2, jobs=jobs, scheduler=scheduler, desc=key["what"])


def _check_run_args(func: str, settings: Any, cls: type, seed: Any) -> None:
    if not isinstance(settings, cls):
        raise ValueError(f"{func}: argument 'settings' must be a {cls.__name__}; got {type(settings).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{func}: argument 'seed' must be an integer >= 0; got {seed!r}.")


_MEMO: dict[tuple, Any] = {}
_MEMO_SIZE = 16


def _memo(key: tuple, compute) -> Any:
    """In-process memory of finished results (they depend on settings and seed only, not on jobs or
    scheduler), so Figures 1, 2, 5 and the claims that read them share one computation."""
    if key not in _MEMO:
        value = compute()
        while len(_MEMO) >= _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = value
    return _MEMO[key]


def clear_memo() -> None:
    """Forget the finished results kept in memory (the next call recomputes, or reads the disk cache)."""
    _MEMO.clear()


def _sweep(settings: SweepSettings, seed: int, stream: tuple[int, ...], *, jobs: int, scheduler: Any) -> SweepResult:
    seeds = _stream(seed, *stream).spawn(settings.trials)
    res = _map(_SweepTrial(settings), seeds, key={"what": "linrep-sweep", "settings": settings, "seed": seed,
                                                   "stream": list(stream)}, jobs=jobs, scheduler=scheduler)
    st = lambda k: np.stack([r[k] for r in res])  # noqa: E731
    th = [r["theory"] for r in res]
    return SweepResult(settings, tuple(m.label for m in settings.methods), np.asarray(settings.lrs, dtype=float),
                       st("distance"), st("transfer"), st("transfer_finite"), st("train_loss"), st("diverged"),
                       _ran(settings), np.array([t.amgd_limit for t in th]), np.array([t.amgd_optimal_eta for t in th]),
                       np.stack([t.kfac_level for t in th]), np.array([r["initial_distance"] for r in res]),
                       st("final_F"), st("final_limit"), st("final_limit_star"), st("mid_limit"))


def run_sweep(settings: SweepSettings, *, seed: int, stream: tuple[int, ...] = (_SWEEP,), jobs: int = 1,
              scheduler: Any = None) -> SweepResult:
    """Run the step-size sweep ``settings`` on the seed stream ``(seed, stream)``.

    settings: :class:`SweepSettings`. seed: master seed (>= 0). stream: spawn key of the stream.
    jobs, scheduler: parallel trials (joblib workers, or a dask scheduler address); same numbers.
    """
    _check_run_args("run_sweep", settings, SweepSettings, seed)
    return _memo(("sweep", settings, int(seed), tuple(stream)),
                 lambda: _sweep(settings, int(seed), tuple(stream), jobs=jobs, scheduler=scheduler))


def run_figure5(settings: Figure5Settings, *, seed: int, jobs: int = 1, scheduler: Any = None) -> SweepResult:
    """Figure 5: the sweep on the sweep stream of ``seed`` (the trials Figure 1's step sizes come from)."""
    _check_run_args("run_figure5", settings, Figure5Settings, seed)
    return run_sweep(settings.sweep, seed=seed, stream=(_SWEEP,), jobs=jobs, scheduler=scheduler)


# --------------------------------------------------------------------------- curves (Figures 1, 2, 4)
@dataclass(frozen=True)
class CurvesResult:
    """Metrics vs iteration at the tuned step sizes. Metric arrays: (trials, methods, recorded steps).

    labels: method labels. lrs: (methods,) the step sizes used (best of :data:`STEP_GRID` on the sweep).
    steps: (recorded,) iteration indices. train_loss (training mode, on the batch of iteration t),
    population_loss (evaluation mode), subspace_distance, transfer_loss (population), transfer_loss_finite
    (least-squares head on n_t samples, exact fresh-data risk): NaN after a divergence.
    diverged_at: (trials, methods), -1 when the run did not diverge. noise_loss: the loss floor
    d_y sigma^2 / 2. transfer_max: (trials,) the transfer loss of a representation that carries no
    information, tr(M_t Sigma_t M_t^T) / 2 (the worst case). amgd_limit: (trials,) R-LR-1. kfac_level: (trials, methods) sqrt of R-LR-3's
    E sum tan^2 at each method's step size (meaningful for the KFAC rows). sweep: the tuning sweep.
    """

    settings: CurveSettings
    labels: tuple[str, ...]
    lrs: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    population_loss: np.ndarray
    subspace_distance: np.ndarray
    transfer_loss: np.ndarray
    transfer_loss_finite: np.ndarray
    diverged_at: np.ndarray
    noise_loss: float
    transfer_max: np.ndarray
    amgd_limit: np.ndarray
    kfac_level: np.ndarray
    sweep: SweepResult

    def index(self, label: str) -> int:
        if label not in self.labels:
            raise ValueError(f"CurvesResult.index: argument 'label' must be one of {list(self.labels)}; got {label!r}.")
        return self.labels.index(label)

    def subset(self, labels: tuple[str, ...]) -> "CurvesResult":
        """The same runs restricted to ``labels`` (in that order)."""
        idx = [self.index(lb) for lb in labels]
        cut = lambda a: a[:, idx]  # noqa: E731
        return replace(self, labels=tuple(labels), lrs=self.lrs[idx], train_loss=cut(self.train_loss),
                       population_loss=cut(self.population_loss), subspace_distance=cut(self.subspace_distance),
                       transfer_loss=cut(self.transfer_loss), transfer_loss_finite=cut(self.transfer_loss_finite),
                       diverged_at=cut(self.diverged_at), kfac_level=cut(self.kfac_level))


@dataclass(frozen=True)
class _CurveTrial:
    settings: CurveSettings
    lrs: tuple[float, ...]

    def __call__(self, ss: np.random.SeedSequence) -> dict[str, Any]:
        st = self.settings
        rng = np.random.default_rng(ss)
        problem = st.problem.draw(rng)
        specs = [sl.OptimizerSpec(m.label, m.name, lr, m.options) for m, lr in zip(st.methods, self.lrs)]
        run = sl.run_common(problem, specs, steps=st.steps, batch=st.problem.batch, rng=rng,
                            record_every=st.record_every, transfer_samples=st.problem.transfer_samples,
                            check_every=CHECK_EVERY)
        th = trial_theory(problem, np.asarray(self.lrs), batch=st.problem.batch)
        Mw = problem.F_test @ problem.G_star @ sd.symmetric_sqrt(problem.Sigma_test)
        return {"run": run, "theory": th, "transfer_max": 0.5 * float(np.einsum("ij,ij->", Mw, Mw))}


def _curves_run(settings: CurveSettings, seed: int, curve_stream: tuple[int, ...], sweep_stream: tuple[int, ...],
                *, jobs: int, scheduler: Any) -> CurvesResult:
    sweep = run_sweep(settings.sweep, seed=seed, stream=sweep_stream, jobs=jobs, scheduler=scheduler)
    return _curves_at(settings, sweep, seed, curve_stream, jobs=jobs, scheduler=scheduler)


def _curves_at(settings: CurveSettings, sweep: SweepResult, seed: int, curve_stream: tuple[int, ...], *, jobs: int,
               scheduler: Any) -> CurvesResult:
    """Curves of ``settings`` at the step sizes ``sweep`` selects (its labels include every method's)."""
    best = sweep.best_lrs()
    lrs = tuple(best[m.label] for m in settings.methods)
    seeds = _stream(seed, *curve_stream).spawn(settings.trials)
    res = _map(_CurveTrial(settings, lrs), seeds,
               key={"what": "linrep-curves", "settings": settings, "lrs": list(lrs), "seed": seed,
                    "stream": list(curve_stream)}, jobs=jobs, scheduler=scheduler)
    runs = [r["run"] for r in res]
    st = lambda k: np.stack([getattr(r, k) for r in runs])  # noqa: E731
    p = settings.problem
    return CurvesResult(settings, tuple(m.label for m in settings.methods), np.asarray(lrs), runs[0].steps,
                        st("train_loss"), st("population_loss"), st("subspace_distance"), st("transfer_loss"),
                        st("transfer_loss_finite"), st("diverged_at"), 0.5 * p.d_y * p.noise_std**2,
                        np.array([r["transfer_max"] for r in res]), np.array([r["theory"].amgd_limit for r in res]),
                        np.stack([r["theory"].kfac_level for r in res]), sweep)


def run_curves(settings: CurveSettings, *, seed: int, curve_stream: tuple[int, ...] = (_CURVE,),
               sweep_stream: tuple[int, ...] = (_SWEEP,), jobs: int = 1, scheduler: Any = None) -> CurvesResult:
    """Curves at the step sizes the sweep (on ``sweep_stream``) selects, on the separate ``curve_stream``.

    settings: :class:`CurveSettings`. seed: master seed. jobs, scheduler: parallel trials.
    """
    _check_run_args("run_curves", settings, CurveSettings, seed)
    if tuple(curve_stream) == tuple(sweep_stream):
        raise ValueError("run_curves: argument 'curve_stream' must differ from 'sweep_stream' (step sizes are "
                         "chosen on a separate seed); got the same stream.")
    return _memo(("curves", settings, int(seed), tuple(curve_stream), tuple(sweep_stream)),
                 lambda: _curves_run(settings, int(seed), tuple(curve_stream), tuple(sweep_stream), jobs=jobs,
                                     scheduler=scheduler))


def run_figure1(settings: Figure1Settings, *, seed: int, jobs: int = 1, scheduler: Any = None) -> CurvesResult:
    """Figure 1: every method's curves; step sizes from Figure 5's sweep (same task family, its own stream)."""
    _check_run_args("run_figure1", settings, Figure1Settings, seed)
    return run_curves(settings.curves, seed=seed, jobs=jobs, scheduler=scheduler)


def run_figure2(settings: Figure2Settings, *, seed: int, jobs: int = 1, scheduler: Any = None) -> CurvesResult:
    """Figure 2: the KFAC / AMGD / AMGD+BN runs of Figure 1 (the same trials)."""
    _check_run_args("run_figure2", settings, Figure2Settings, seed)
    return run_figure1(settings.figure1, seed=seed, jobs=jobs, scheduler=scheduler).subset(settings.labels)


#: the methods of the claims' paired comparisons (C15, C16, C19), in Figure 1's order.
COMPARISON_LABELS = ("SGD", "Adam", "AMGD+BN", "NGD", "Newton", "KFAC")
_COMPARISON = 4


@dataclass(frozen=True)
class ComparisonSettings:
    """More trials of Figure 1's setting for the paired comparisons of C15, C16 and C19.

    figure1: the Figure 1 settings (task family, iterations, the sweep the step sizes come from).
    labels: the methods compared (Figure 1's labels). trials: independent tasks. Only the final
    metrics are recorded; the step sizes are Figure 1's (the same sweep, shared through the memo).
    """

    figure1: Figure1Settings
    labels: tuple[str, ...] = COMPARISON_LABELS
    trials: int = 40

    def __post_init__(self):
        _positive_int("ComparisonSettings", "trials", self.trials)
        known = [m.label for m in self.figure1.curves.methods]
        if not self.labels or not set(self.labels) <= set(known):
            raise ValueError(f"ComparisonSettings: argument 'labels' must be a non-empty subset of {known}; "
                             f"got {self.labels!r}.")

    @property
    def curves(self) -> CurveSettings:
        """The runs: Figure 1's methods ``labels``, ``trials`` tasks, final metrics only."""
        c = self.figure1.curves
        return replace(c, methods=tuple(m for m in c.methods if m.label in self.labels), trials=self.trials,
                       record_every=c.steps)


def comparison_settings(size: str = "paper") -> ComparisonSettings:
    """The paired comparisons at ``size``: 40 trials at ``fast`` (Figure 1 has 10), 20 at ``paper``."""
    return ComparisonSettings(figure1_settings(size), trials=20 if size == "paper" else 40)


def run_comparison(settings: ComparisonSettings, *, seed: int, jobs: int = 1, scheduler: Any = None) -> CurvesResult:
    """Final metrics of ``settings.labels`` at Figure 1's step sizes (chosen on Figure 5's sweep), on their own
    stream (4,), common random numbers within a trial. ``result.sweep`` is Figure 1's sweep."""
    _check_run_args("run_comparison", settings, ComparisonSettings, seed)
    sweep = run_sweep(settings.figure1.curves.sweep, seed=int(seed), stream=(_SWEEP,), jobs=jobs, scheduler=scheduler)
    return _memo(("comparison", settings, int(seed)),
                 lambda: _curves_at(settings.curves, sweep, int(seed), (_COMPARISON,), jobs=jobs, scheduler=scheduler))


@dataclass(frozen=True)
class Figure4Result:
    """Figure 4: one :class:`CurvesResult` per data setting, named in ``names``."""

    settings: Figure4Settings
    names: tuple[str, ...]
    cases: tuple[CurvesResult, ...]


def run_figure4(settings: Figure4Settings, *, seed: int, jobs: int = 1, scheduler: Any = None) -> Figure4Result:
    """Figure 4: curves per data setting; case i uses streams (2, i) (curves) and (3, i) (its own sweep)."""
    _check_run_args("run_figure4", settings, Figure4Settings, seed)
    out = tuple(run_curves(cs, seed=seed, curve_stream=(2, i), sweep_stream=(3, i), jobs=jobs, scheduler=scheduler)
                for i, (_, cs) in enumerate(settings.cases))
    return Figure4Result(settings, tuple(name for name, _ in settings.cases), out)


# --------------------------------------------------------------------------- figures of the report
from compare.registry import register_figure  # noqa: E402  (registration after the runners it uses)

_RECON = ("Reconstructed settings [R] (docs/theory.md section 5): d_x = 100, d_y = 10, k = 5, n = 1024 fresh samples "
          "per iteration, kappa_x = 100, kappa_F = 10, sigma = 0.01, Rademacher inputs, 1000 iterations "
          "(size fast: d_x = 40, d_y = 6, k = 3, n = 400, 200 iterations). ")
_LR_RULE = ("Each method's step size is the best (smallest mean log10 final distance, no divergence) of the grid "
            "1e-3 ... 10 (ratio sqrt 10), chosen on a separate seed stream (Figure 5's trials). ")


def _make(runner, settings_fn, plot_name: str):
    def make(*, size: str, seed: int, jobs: int = 1, scheduler: Any = None):
        from threadpoolctl import threadpool_limits

        from compare import plots_linrep

        with threadpool_limits(limits=1):
            res = runner(settings_fn(size), seed=seed, jobs=jobs, scheduler=scheduler)
        return getattr(plots_linrep, plot_name)(res)

    make.__doc__ = f"Run {runner.__name__} at ``size`` with ``seed`` and draw it with {plot_name}."
    return make


make_figure1 = register_figure(
    "fig1", title="Linear representation learning: optimisers compared", paper_ref="Figure 1",
    claims=("C14", "C16", "C19"),
    caption=_RECON + _LR_RULE + "Training loss, subspace distance and transfer loss (population, solid; "
            "least-squares head on 100 transfer samples, dashed) vs iteration for SGD, AMGD, Adam, AMGD+BN, "
            "damped Gauss-Newton (NGD), damped Newton and KFAC (EMA head and least-squares head). Mean of "
            "log10 over 20 trials, band +- 2 s.e.; overlays: KFAC's R-LR-1 rate and R-LR-3 level.",
)(_make(run_figure1, figure1_settings, "plot_figure1"))
make_figure2 = register_figure(
    "fig2", title="Batch-norm helps AMGD's loss, not its subspace distance", paper_ref="Figure 2", claims=("C15",),
    caption=_RECON + _LR_RULE + "Subspace distance and training loss of KFAC, AMGD and AMGD with batch-norm "
            "(batch statistics in training, running statistics for evaluation, learnable scale and shift): "
            "the runs of Figure 1.",
)(_make(run_figure2, figure2_settings, "plot_figure2"))
make_figure4 = register_figure(
    "fig4", title="Batch-norm vs KFAC across input laws and anisotropy", paper_ref="Figure 4", claims=("C20",),
    caption="Reconstructed settings [R]: the Figure 1 task with uniform inputs and kappa_x = 10, Gaussian inputs "
            "and kappa_x = 10, Gaussian inputs and kappa_x = 1000. " + _LR_RULE.replace("Figure 5's trials",
                                                                                        "a sweep per setting")
            + "Subspace distance (top) and training loss (bottom) of KFAC, AMGD+BN and AMGD.",
)(_make(run_figure4, figure4_settings, "plot_figure4"))
make_figure5 = register_figure(
    "fig5", title="Subspace distance after 1000 iterations vs step size", paper_ref="Figure 5", claims=("C17", "C18"),
    caption=_RECON + "Final subspace distance vs step size (grid 1e-3 ... 10, ratio sqrt 10) for every optimizer; "
            "x marks step sizes where at least half of the trials diverged. Overlays: the R-LR-1 stability limit "
            "of AMGD (mean over tasks, shaded range) and the R-LR-3 level of KFAC for eta in (0, 1].",
)(_make(run_figure5, figure5_settings, "plot_figure5"))
