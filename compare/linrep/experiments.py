r"""The paper's linear-representation experiments (Figures 1, 2, 4, 5; docs/theory.md sections 3.1 and 5).

Two registered experiments, each a pure function of ``(settings, seed)`` run by the engine in blocks
of trials (:mod:`compare.engine.runner`) and computed once per run however many claims and figures
read it:

- ``linrep.sweep`` (:class:`SweepSettings`): every optimizer at every step size of a log grid, final
  metrics only (Figure 5; the tuning runs of Figures 1, 2 and 4);
- ``linrep.curves`` (:class:`CurveSettings`): every optimizer at the step size its sweep selects,
  metrics vs iteration (Figures 1, 2, 4 and the paired comparisons of C15, C16, C19). It requires the
  sweep at the same task family (``settings.sweep``).

Within a trial every optimizer sees the same problem, start, transfer samples and batches (common
random numbers, :func:`simulate.linrep.run_common`), so differences between optimizers are measured
paired. Trials come from the streams ``stream(seed, "linrep.sweep")`` and
``stream(seed, "linrep.curves", settings.stream)``: the curves are never drawn on the trials their step
sizes were chosen on.

Step sizes. The step size of each method is the grid point with the smallest mean :math:`\log_{10}`
final subspace distance over the sweep's trials, among those where no trial diverged.

Theory overlays (computed per trial from that trial's :math:`F^*,\Sigma_x,G^*`):

.. math::

    \eta_{\max}^{AMGD} = \frac{2}{\sigma_{\max}(F^*)^2\mu_{\max}(\Sigma_{22\cdot1})}\ \text{(R-LR-1)},\qquad
    \rho_{KFAC} = 1-\eta\ \text{(R-LR-1)},\qquad
    \mathbb E\sum_i\tan^2\theta_i \approx \frac{\eta}{2-\eta}\sigma_\varepsilon^2\lVert F^{*+}\rVert_F^2
    \frac{\mathrm{tr}(\Sigma_{22\cdot1}^{-1})}{n-d_X-1}\ \text{(R-LR-3)}.

R-LR-3 is derived for Gaussian inputs (the Rademacher inputs of Figure 1 have the same second
moments; docs/theory.md uses the same formula for them) and, as :math:`\sin\theta_{\max}\le
\sqrt{\sum\tan^2\theta_i}`, its square root is an upper reference level for KFAC's distance.

Settings [R] (docs/theory.md section 5, Figure 1 defaults, preset ``paper``): :math:`d_X=100, d_Y=10, k=5`,
fresh batches of :math:`n=1024`, :math:`\kappa_x=100, \kappa_F=10, \sigma_\varepsilon=0.01`, Rademacher
inputs, 1000 iterations, 20 trials, transfer head on :math:`n_t=100` samples. ``fast``:
:math:`d_X=40, d_Y=6, k=3, n=400`, 200 iterations, 10 trials (sweeps of 8). The compared optimizers
are the setting ``optimizers`` (registered names; default the paper's set, :data:`PAPER_OPTIMIZERS`):
a plugin's optimizer joins with ``--set optimizers=+NAME``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from compare.engine.registry import experiment, ref
from compare.engine.settings import Settings, check_size
from simulate import data as sd
from simulate import linrep as sl
from simulate import optimizers as so
from theory import linrep as tl

#: Figure 5's step sizes and the grid every tuned step size is chosen from: 1e-3 ... 10, ratio sqrt(10).
STEP_GRID: tuple[float, ...] = tuple(float(x) for x in 10.0 ** (np.arange(-6, 3) / 2.0))
#: iterations between the loss tests for divergence (a non-finite iterate is caught at every step).
CHECK_EVERY = 10


# --------------------------------------------------------------------------- methods
@dataclass(frozen=True, kw_only=True)
class Method:
    """One optimizer as shown in the figures: legend ``label``, registered ``name``, ``options``;
    ``grid``: the step sizes it is swept over (``None``: the whole grid)."""

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
#: How the built-in optimizers appear (docs/theory.md section 2 catalogue). NGD and Newton: damping 1e-3 x
#: mean diagonal. Any other registered optimizer appears under its own name with its defaults.
CATALOGUE: dict[str, Method] = {m.name: m for m in (
    Method(label="SGD", name="sgd"),
    Method(label="AMGD", name="amgd"),
    Method(label="Adam", name="adam"),
    Method(label="AMGD+BN", name="amgd_bn"),
    Method(label="NGD", name="ngd", options=(("damping", 1e-3),), grid=NGD_GRID),
    Method(label="Newton", name="newton", options=(("damping", 1e-3),), grid=NEWTON_GRID),
    Method(label="KFAC", name="kfac"),
    Method(label="KFAC (LS head)", name="kfac_ls"),
)}
#: Figure 1's optimizers: the paper's set.
PAPER_OPTIMIZERS: tuple[str, ...] = ("sgd", "amgd", "adam", "amgd_bn", "ngd", "newton", "kfac", "kfac_ls")
FIG2_LABELS = ("KFAC", "AMGD", "AMGD+BN")
FIG4_OPTIMIZERS: tuple[str, ...] = ("kfac", "amgd_bn", "amgd")
#: the methods of the claims' paired comparisons (C15, C16, C19).
COMPARISON_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "amgd_bn", "ngd", "newton", "kfac")


def method(name: str) -> Method:
    """The :class:`Method` of registered optimizer ``name`` (its catalogue entry, or its own name)."""
    return CATALOGUE.get(name) or Method(label=name, name=name)


# --------------------------------------------------------------------------- settings
def _positive_int(cls: str, name: str, x: Any) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
        raise ValueError(f"{cls}: argument '{name}' must be a positive integer; got {x!r}.")


def _check_optimizers(cls: str, names: Any) -> None:
    if not isinstance(names, tuple) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{cls}: argument 'optimizers' must be a non-empty tuple of registered optimizer names; "
                         f"got {names!r}.")
    unknown = [n for n in names if n not in so.REGISTRY]
    if unknown:
        raise ValueError(f"{cls}: argument 'optimizers' must name registered optimizers (one of "
                         f"{', '.join(sorted(so.REGISTRY))}); got {', '.join(map(repr, unknown))}.")
    labels = [method(n).label for n in names]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{cls}: argument 'optimizers' must not repeat a method; got {names!r}.")


@dataclass(frozen=True, kw_only=True)
class ProblemSettings(Settings):
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
        if not (self.k < self.d_x and self.k <= self.d_y):
            raise ValueError(f"ProblemSettings: argument 'k' must satisfy k < d_x and k <= d_y; got k = {self.k}, "
                             f"d_x = {self.d_x}, d_y = {self.d_y}.")
        for name in ("kappa_x", "kappa_F"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 1.0 <= float(v) <= 1e8):
                raise ValueError(f"ProblemSettings: argument '{name}' must be a condition number in [1, 1e8]; got {v!r}.")
        if not (isinstance(self.noise_std, (int, float)) and 0.0 <= float(self.noise_std) <= 1e3):
            raise ValueError(f"ProblemSettings: argument 'noise_std' must be in [0, 1e3]; got {self.noise_std!r}.")
        if self.law not in sd.LAWS:
            raise ValueError(f"ProblemSettings: argument 'law' must be one of {sd.LAWS}; got {self.law!r}.")

    @classmethod
    def preset(cls, size: str) -> "ProblemSettings":
        if check_size("ProblemSettings.preset", size) == "paper":
            return cls()
        return cls(d_x=40, d_y=6, k=3, batch=400, transfer_samples=60)

    def draw(self, rng: np.random.Generator) -> sd.LinRepProblem:
        """A task from ``rng`` (:func:`simulate.data.linrep_problem`)."""
        return sd.linrep_problem(self.d_x, self.d_y, self.k, kappa_x=self.kappa_x, kappa_F=self.kappa_F,
                                 noise_std=self.noise_std, rng=rng, law=self.law)

    def describe(self) -> str:
        """One phrase for captions."""
        return (f"d_x = {self.d_x}, d_y = {self.d_y}, k = {self.k}, n = {self.batch} fresh {self.law} samples per "
                f"iteration, kappa_x = {self.kappa_x:g}, kappa_F = {self.kappa_F:g}, label noise {self.noise_std:g}")


@dataclass(frozen=True, kw_only=True)
class SweepSettings(Settings):
    """Figure 5: final metrics after ``steps`` iterations for every optimizer at every step size in ``lrs``.

    problem: the task family. optimizers: registered names. lrs: step-size grid. steps: iterations.
    trials: independent tasks (each with its own start and batches, shared by all runs of the trial).
    """

    problem: ProblemSettings = ProblemSettings()
    optimizers: tuple[str, ...] = PAPER_OPTIMIZERS
    lrs: tuple[float, ...] = STEP_GRID
    steps: int = 1000
    trials: int = 20

    def __post_init__(self):
        _check_optimizers("SweepSettings", self.optimizers)
        if not self.lrs or not all(isinstance(x, (int, float)) and 0 < float(x) < math.inf for x in self.lrs):
            raise ValueError(f"SweepSettings: argument 'lrs' must be non-empty and positive; got {self.lrs!r}.")
        _positive_int("SweepSettings", "steps", self.steps)
        _positive_int("SweepSettings", "trials", self.trials)
        if self.steps > 10**6:
            raise ValueError(f"SweepSettings: argument 'steps' must be <= 1e6; got {self.steps!r}.")

    @property
    def methods(self) -> tuple[Method, ...]:
        return tuple(method(n) for n in self.optimizers)

    @classmethod
    def preset(cls, size: str) -> "SweepSettings":
        return CurveSettings.preset(size).sweep


@dataclass(frozen=True, kw_only=True)
class CurveSettings(Settings):
    """Figures 1, 2 and each setting of Figure 4: metrics vs iteration at the tuned step sizes.

    problem: the task family. optimizers: registered names. steps: iterations. trials: independent
    tasks. record_every: iterations between recorded points. sweep_trials: trials of the step-size sweep
    (its grid :data:`STEP_GRID`). stream: names the seed stream of the trials (``"figure"`` for the
    figures, ``"comparison"`` for the claims' paired comparisons: disjoint trials). sweep_optimizers:
    further optimizers of the sweep the step sizes come from (so a subset of Figure 1's methods reads
    Figure 1's own sweep instead of a new one).
    """

    problem: ProblemSettings = ProblemSettings()
    optimizers: tuple[str, ...] = PAPER_OPTIMIZERS
    steps: int = 1000
    trials: int = 20
    record_every: int = 10
    sweep_trials: int = 20
    stream: str = "figure"
    sweep_optimizers: tuple[str, ...] = ()

    def __post_init__(self):
        _check_optimizers("CurveSettings", self.optimizers)
        for name in ("steps", "trials", "record_every", "sweep_trials"):
            _positive_int("CurveSettings", name, getattr(self, name))
        if self.steps > 10**6:
            raise ValueError(f"CurveSettings: argument 'steps' must be <= 1e6; got {self.steps!r}.")
        if not isinstance(self.stream, str) or not self.stream:
            raise ValueError(f"CurveSettings: argument 'stream' must be a non-empty string; got {self.stream!r}.")
        if self.sweep_optimizers:
            _check_optimizers("CurveSettings", self.sweep_optimizers)

    @property
    def methods(self) -> tuple[Method, ...]:
        return tuple(method(n) for n in self.optimizers)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(m.label for m in self.methods)

    @property
    def sweep(self) -> SweepSettings:
        """The step-size sweep the curves' learning rates are chosen from."""
        names = tuple(self.sweep_optimizers) + tuple(o for o in self.optimizers if o not in self.sweep_optimizers)
        return SweepSettings(problem=self.problem, optimizers=names, lrs=STEP_GRID, steps=self.steps,
                             trials=self.sweep_trials)

    @classmethod
    def preset(cls, size: str) -> "CurveSettings":
        p = ProblemSettings.preset(size)
        if size == "paper":
            return cls(problem=p, steps=1000, trials=20, record_every=10, sweep_trials=20)
        return cls(problem=p, steps=200, trials=10, record_every=4, sweep_trials=8)

    def comparison(self, *, trials: int, optimizers: tuple[str, ...] = COMPARISON_OPTIMIZERS) -> "CurveSettings":
        """The same task family, step sizes and iterations, final metrics only, on the comparison stream."""
        return replace(self, optimizers=tuple(o for o in optimizers if o in self.optimizers) or optimizers,
                       trials=trials, record_every=self.steps, stream="comparison",
                       sweep_optimizers=self.sweep.optimizers)


@dataclass(frozen=True, kw_only=True)
class Figure4Case(Settings):
    """One data setting of Figure 4: its ``name`` and its curve runs."""

    name: str
    curves: CurveSettings

    @classmethod
    def preset(cls, size: str) -> "Figure4Case":  # pragma: no cover - built by Figure4 presets
        raise NotImplementedError("Figure4Case.preset")


def figure4_cases(size: str) -> tuple[Figure4Case, ...]:
    """Figure 4's three settings [R]: uniform inputs with kappa_x = 10, Gaussian with 10 and with 1000;
    a sweep of 4 trials (paper) or 3 (fast) per setting."""
    base = CurveSettings.preset(size)
    cases = (("uniform, low anisotropy", "uniform", 10.0), ("Gaussian, low anisotropy", "gaussian", 10.0),
             ("Gaussian, high anisotropy", "gaussian", 1000.0))
    return tuple(Figure4Case(name=name, curves=replace(base, problem=replace(base.problem, law=law, kappa_x=kx),
                                                       optimizers=FIG4_OPTIMIZERS,
                                                       sweep_trials=4 if size == "paper" else 3))
                 for name, law, kx in cases)


# --------------------------------------------------------------------------- theory per trial
@dataclass(frozen=True, kw_only=True)
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
    return TrialTheory(amgd_limit=tl.amgd_stability_limit(Fs, Sx, Gs), amgd_optimal_eta=tl.amgd_optimal_eta(Fs, Sx, Gs),
                       kappa_eff=tl.amgd_effective_condition(Fs, Sx, Gs), etas=etas, kfac_level=level)



# --------------------------------------------------------------------------- the sweep (Figure 5)
@dataclass(frozen=True, kw_only=True)
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
        trial diverged (the rule that sets Figures 1, 2 and 4's step sizes). A method that diverges in some
        trial at *every* step size it ran (damped Newton on the paper's task: 1-7 of 20 trials at each of
        0.01 ... 0.316, the count varying with the draws) gets the least unstable one instead: the fewest
        diverged trials, ties broken by the mean log10 final distance with a diverged trial counted as
        distance 1, the claims' worst case (:meth:`lr_rules` says which rule chose each)."""
        return {label: lr for label, (lr, _) in self._choose().items()}

    def lr_rules(self) -> dict[str, str]:
        """Per method, how :meth:`best_lrs` chose its step size (for captions and claim sources)."""
        return {label: rule for label, (_, rule) in self._choose().items()}

    def _choose(self) -> dict[str, tuple[float, str]]:
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.log10(self.final_distance).mean(axis=0)
            worst = np.log10(np.where(self.diverged | ~np.isfinite(self.final_distance), 1.0,
                                      self.final_distance)).mean(axis=0)
        n_div = self.diverged.sum(axis=0)
        score = np.where(self.diverged.any(axis=0) | ~np.isfinite(score) | ~self.ran, np.inf, score)
        T = self.diverged.shape[0]
        out = {}
        for i, label in enumerate(self.labels):
            if np.isfinite(score[i]).any():
                out[label] = (float(self.lrs[int(np.argmin(score[i]))]), "no trial diverged")
                continue
            ran = np.flatnonzero(self.ran[i])
            if ran.size == 0:
                raise RuntimeError(f"sweep: {label!r} ran at no step size of the grid (setting lrs)")
            j = ran[np.lexsort((worst[i, ran], n_div[i, ran]))[0]]
            out[label] = (float(self.lrs[j]), f"fewest diverged trials ({int(n_div[i, j])} of {T}): every step "
                                               f"size of the grid diverged in some trial")
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



def _ran(st: SweepSettings) -> np.ndarray:
    """(methods, lrs) which grid points each method is run at."""
    return np.array([[lr in m.lrs(st.lrs) for lr in st.lrs] for m in st.methods], dtype=bool)


def _sweep_trials(st: SweepSettings) -> int:
    return st.trials


def _sweep_combine(st: SweepSettings, res: list, deps) -> SweepResult:
    stack = lambda k: np.stack([r[k] for r in res])  # noqa: E731
    th = [r["theory"] for r in res]
    return SweepResult(settings=st, labels=tuple(m.label for m in st.methods), lrs=np.asarray(st.lrs, dtype=float),
                       final_distance=stack("distance"), final_transfer=stack("transfer"),
                       final_transfer_finite=stack("transfer_finite"), final_train_loss=stack("train_loss"),
                       diverged=stack("diverged"), ran=_ran(st), amgd_limit=np.array([t.amgd_limit for t in th]),
                       amgd_optimal_eta=np.array([t.amgd_optimal_eta for t in th]),
                       kfac_level=np.stack([t.kfac_level for t in th]),
                       initial_distance=np.array([r["initial_distance"] for r in res]), final_F=stack("final_F"),
                       final_limit=stack("final_limit"), final_limit_star=stack("final_limit_star"),
                       mid_limit=stack("mid_limit"))


def _sweep_cost(st: SweepSettings) -> float:
    return st.steps * st.problem.d_x * st.problem.batch * len(st.optimizers) * len(st.lrs) * 1e-9


@experiment("linrep.sweep", settings=SweepSettings, trials=_sweep_trials, combine=_sweep_combine, block=1,
            cost=_sweep_cost)
def sweep_trial(st: SweepSettings, ss: np.random.SeedSequence, deps) -> dict[str, Any]:
    """One task of the sweep: every method at every grid step size, common random numbers."""
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



# --------------------------------------------------------------------------- curves (Figures 1, 2, 4)
@dataclass(frozen=True, kw_only=True)
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
    sweep: SweepResult | None

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



def _curves_requires(st: CurveSettings):
    return {"sweep": ref("linrep.sweep", st.sweep)}


def _curve_lrs(st: CurveSettings, sweep: SweepResult) -> tuple[float, ...]:
    best = sweep.best_lrs()
    return tuple(best[m.label] for m in st.methods)


def _curves_trials(st: CurveSettings) -> int:
    return st.trials


def _curves_combine(st: CurveSettings, res: list, deps) -> CurvesResult:
    sweep = deps["sweep"]
    runs = [r["run"] for r in res]
    stack = lambda k: np.stack([getattr(r, k) for r in runs])  # noqa: E731
    p = st.problem
    return CurvesResult(settings=st, labels=st.labels, lrs=np.asarray(_curve_lrs(st, sweep)), steps=runs[0].steps,
                        train_loss=stack("train_loss"), population_loss=stack("population_loss"),
                        subspace_distance=stack("subspace_distance"), transfer_loss=stack("transfer_loss"),
                        transfer_loss_finite=stack("transfer_loss_finite"), diverged_at=stack("diverged_at"),
                        noise_loss=0.5 * p.d_y * p.noise_std**2,
                        transfer_max=np.array([r["transfer_max"] for r in res]),
                        amgd_limit=np.array([r["theory"].amgd_limit for r in res]),
                        kfac_level=np.stack([r["theory"].kfac_level for r in res]), sweep=sweep)


def _curves_cost(st: CurveSettings) -> float:
    return st.steps * st.problem.d_x * st.problem.batch * len(st.optimizers) * 1e-9


@experiment("linrep.curves", settings=CurveSettings, trials=_curves_trials, combine=_curves_combine,
            requires=_curves_requires, stream=lambda st: ("linrep.curves", st.stream), block=1, cost=_curves_cost)
def curves_trial(st: CurveSettings, ss: np.random.SeedSequence, deps) -> dict[str, Any]:
    """One task of the curves: every method at its tuned step size, common random numbers."""
    lrs = _curve_lrs(st, deps["sweep"])
    rng = np.random.default_rng(ss)
    problem = st.problem.draw(rng)
    specs = [sl.OptimizerSpec(m.label, m.name, lr, m.options) for m, lr in zip(st.methods, lrs)]
    run = sl.run_common(problem, specs, steps=st.steps, batch=st.problem.batch, rng=rng,
                        record_every=st.record_every, transfer_samples=st.problem.transfer_samples,
                        check_every=CHECK_EVERY)
    th = trial_theory(problem, np.asarray(lrs), batch=st.problem.batch)
    Mw = problem.F_test @ problem.G_star @ sd.symmetric_sqrt(problem.Sigma_test)
    return {"run": run, "theory": th, "transfer_max": 0.5 * float(np.einsum("ij,ij->", Mw, Mw))}
