r"""The optimizer scorecard's experiments (docs/theory.md section 6, "The optimizer scorecard").

Three registered experiments, each cached and run in blocks by the engine:

- ``scorecard.linrep`` (:class:`CellSettings`): **one optimizer** on one :math:`(\kappa_x, \kappa_F)` of the grid,
  ``trials`` problem draws. Per trial and step size of the grid ``lrs``: a population run from the trial's start
  (distance at every step; rate by :mod:`compare.scorecard.measure`; iterations to :math:`10^{-3}`; the final
  state turned into the step matrix of R-LR-4), for the stateless rules with the least-squares head the
  Jacobian of one literal step at the solution (:func:`simulate.jacobian.step_jacobian`), and a run on fresh
  batches (final distance and transfer loss). The trials' stream ``("scorecard.linrep", d_x, d_y, k)`` does not
  name the optimizer or the condition numbers: every optimizer sees the same task rotations, start and
  batches (common random numbers), and a user's extra optimizer adds its own cells only (the built-in
  optimizers' cells are the same cache entries).
- ``scorecard.single_index`` (:class:`SpikeSettings`): the one-step spikes of the single-index model with the
  first-layer step preconditioned as each optimizer would (SGD, KFAC, same-batch and population powers
  :math:`(\hat\Sigma_x+\lambda)^{-p}`, :math:`p\in\{1/4, 1/2\}`, Muon's orthogonalisation), on the instance of
  ``single_index.instance`` (shared with C8-C12).
- ``scorecard.table`` (:class:`ScorecardSettings`): the scorecard itself (a plain dict: per optimizer, per
  setting, the measurements and predictions), from the cells above; read by the figure and written as
  ``scorecard.json``.

Theory in the cells (computed in ``combine``, never in a trial): R-LR-1 at the rule's fixed pair for the
least-squares-head rules; R-LR-4 at the point and step matrix a run ends with for rules whose preconditioner
is fixed or settles (SGD, Shampoo with sums, AdaGrad); none for the others (the reason is stated).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from compare.engine.registry import experiment, ref
from compare.engine.settings import Settings, check_size
from compare.linrep import exact as lxe
from compare.linrep import experiments as lx
from compare.scorecard import measure as M
from compare.single_index import experiments as sx
from simulate import data as sd
from simulate import jacobian as sj
from simulate import linrep as sl
from simulate import optimizers as so
from simulate import scorecard as sc
from simulate import single_index as ss
from theory import linrep as tl

#: the step-size grid of every optimizer: 0.01 ... 3.16, ratio sqrt(10).
LRS: tuple[float, ...] = tuple(float(x) for x in 10.0 ** (np.arange(-4, 2) / 2.0))
#: iterations to this distance are reported.
TARGET = 1e-3


def _pos_int(cls: str, obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{cls}: argument '{n}' must be a positive integer; got {v!r}.")


def check_optimizers(cls: str, names: Any) -> tuple[str, ...]:
    """``names`` as a tuple of registered optimizer names (a ValueError naming the unknown ones; the check of
    the linear-representation settings)."""
    lx._check_optimizers(cls, names)
    return names


def _conditions(cls: str, values: Any, name: str) -> None:
    if not isinstance(values, tuple) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 1.0 <= float(v) <= 1e8 for v in values):
        raise ValueError(f"{cls}: argument '{name}' must be a non-empty tuple of condition numbers in [1, 1e8]; "
                         f"got {values!r}.")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True, kw_only=True)
class LinrepCommon(Settings):
    """What every cell of the linear-representation scorecard shares.

    d_x, d_y, k: dimensions. noise_std: label noise of the fresh batches. lrs: step-size grid. steps: length
    of a population run. window: W of the rate rule. fresh_steps: iterations on fresh batches of ``batch``
    samples. trials: problem draws per cell.
    """

    d_x: int = 40
    d_y: int = 6
    k: int = 3
    noise_std: float = 0.01
    lrs: tuple[float, ...] = LRS
    steps: int = 4000
    window: int = 400
    fresh_steps: int = 1000
    batch: int = 1024
    trials: int = 5

    def __post_init__(self):
        _pos_int("LinrepCommon", self, "d_x", "d_y", "k", "steps", "window", "fresh_steps", "batch", "trials")
        if not (self.k < self.d_x and self.k <= self.d_y):
            raise ValueError(f"LinrepCommon: argument 'k' must satisfy k < d_x and k <= d_y; got k = {self.k}, "
                             f"d_x = {self.d_x}, d_y = {self.d_y}.")
        if self.batch <= self.d_x + 1:
            raise ValueError(f"LinrepCommon: argument 'batch' must exceed d_x + 1 = {self.d_x + 1} (KFAC-type rules "
                             f"invert the batch covariance); got {self.batch!r}.")
        if not (isinstance(self.noise_std, (int, float)) and 0.0 <= float(self.noise_std) <= 1e3):
            raise ValueError(f"LinrepCommon: argument 'noise_std' must be in [0, 1e3]; got {self.noise_std!r}.")
        if not self.lrs or not all(isinstance(x, (int, float)) and 0 < float(x) < math.inf for x in self.lrs):
            raise ValueError(f"LinrepCommon: argument 'lrs' must be non-empty and positive; got {self.lrs!r}.")

    @classmethod
    def preset(cls, size: str) -> "LinrepCommon":
        if check_size("LinrepCommon.preset", size) == "paper":
            return cls()
        return cls(d_x=20, d_y=6, k=3, steps=1000, window=200, fresh_steps=200, batch=200, trials=3)


def optimizer_source(name: str) -> str:
    """A short hash of the source file of registered optimizer ``name``'s factory (its module: a plugin's file, or
    simulate's), part of each cell's settings and so of its cache key. The scorecard's cache is therefore not
    versioned by the loaded plugins as a whole (``compare.engine.cli.open_cache``) but per optimizer: a user's
    extra optimizer adds its own cells only, and editing a plugin recomputes the cells of its optimizers."""
    import hashlib
    import inspect

    factory = so.REGISTRY[name]
    try:
        path = inspect.getsourcefile(factory) or inspect.getfile(factory)
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in _SOURCES:
            with open(path, "rb") as fh:
                _SOURCES[key] = hashlib.sha256(fh.read()).hexdigest()[:16]
        return _SOURCES[key]
    except (TypeError, OSError):
        return hashlib.sha256(repr(factory).encode()).hexdigest()[:16]


_SOURCES: dict[tuple, str] = {}


@dataclass(frozen=True, kw_only=True)
class CellSettings(Settings):
    """One optimizer at one (kappa_x, kappa_F): the unit of work and of caching. source: the hash of the
    optimizer's source file (:func:`optimizer_source`; derived, set on construction)."""

    optimizer: str
    kappa_x: float
    kappa_F: float
    common: LinrepCommon = LinrepCommon()
    source: str = ""

    def __post_init__(self):
        if not isinstance(self.optimizer, str) or not self.optimizer:
            raise ValueError(f"CellSettings: argument 'optimizer' must be an optimizer name; got {self.optimizer!r}.")
        if self.optimizer in so.REGISTRY:  # derived, whatever was passed (dataclasses.replace copies it)
            object.__setattr__(self, "source", optimizer_source(self.optimizer))
        _conditions("CellSettings", (self.kappa_x,), "kappa_x")
        _conditions("CellSettings", (self.kappa_F,), "kappa_F")

    @classmethod
    def preset(cls, size: str) -> "CellSettings":  # pragma: no cover - built by ScorecardSettings
        raise NotImplementedError("CellSettings.preset: cells are built by ScorecardSettings.cells()")


@dataclass(frozen=True, kw_only=True)
class SpikeSettings(Settings, sx.OneStepSizes):
    """The single-index one-step runs: Figure 3's family (docs/theory.md 4.0) at dimension d, n = psi d,
    N = phi d, one ridge ``lam_G`` for KFAC and the powers, ``powers`` p of (Sigma_hat + lam)^{-p}."""

    d: int = 1000
    eps: float = sx.EPS
    psi: float = sx.PSI
    phi: float = sx.PHI
    lam_G: float = 1e-2
    powers: tuple[float, ...] = (0.25, 0.5)
    trials: int = 30
    teacher: str = sx.TEACHER
    student: str = sx.STUDENT
    noise_std: float = sx.NOISE

    def __post_init__(self):
        sx.OneStepSettings(d=self.d, eps=self.eps, psi=self.psi, phi=self.phi, lam_G=(self.lam_G,),
                           trials=self.trials, teacher=self.teacher, student=self.student, noise_std=self.noise_std)
        if not self.powers or not all(isinstance(p, (int, float)) and 0.0 <= float(p) <= 1.0 for p in self.powers):
            raise ValueError(f"SpikeSettings: argument 'powers' must be powers in [0, 1]; got {self.powers!r}.")

    @classmethod
    def preset(cls, size: str) -> "SpikeSettings":
        return cls(d=300 if check_size("SpikeSettings.preset", size) == "fast" else 1000)


def cell(optimizer: str, kappa_x: float, kappa_F: float, common: LinrepCommon) -> CellSettings:
    """The cell of ``optimizer`` at (kappa_x, kappa_F) with its source hash (the same settings, hence the same cache
    entry, wherever the scorecard, a claim or a figure asks for it)."""
    return CellSettings(optimizer=optimizer, kappa_x=float(kappa_x), kappa_F=float(kappa_F), common=common)


def default_optimizers() -> tuple[str, ...]:
    """Every registered optimizer, in registration order (built-ins first, then plugins)."""
    return tuple(so.REGISTRY)


@dataclass(frozen=True, kw_only=True)
class ScorecardSettings(Settings):
    """The whole scorecard: ``optimizers`` (default: every registered one) on the grid
    ``kappa_x`` x ``kappa_F`` (:class:`LinrepCommon` ``linrep``) and the single-index runs ``spike``."""

    optimizers: tuple[str, ...] = ()
    kappa_x: tuple[float, ...] = (1.0, 10.0, 1e2, 1e3, 1e4)
    kappa_F: tuple[float, ...] = (1.0, 10.0, 100.0)
    linrep: LinrepCommon = LinrepCommon()
    spike: SpikeSettings = SpikeSettings()
    sources: tuple[str, ...] = ()

    def __post_init__(self):
        check_optimizers("ScorecardSettings", self.optimizers)
        # derived (part of the table's cache key): the optimizers' source hashes, :func:`optimizer_source`
        object.__setattr__(self, "sources", tuple(optimizer_source(o) for o in self.optimizers))
        _conditions("ScorecardSettings", self.kappa_x, "kappa_x")
        _conditions("ScorecardSettings", self.kappa_F, "kappa_F")

    @classmethod
    def preset(cls, size: str) -> "ScorecardSettings":
        if check_size("ScorecardSettings.preset", size) == "paper":
            return cls(optimizers=default_optimizers(), linrep=LinrepCommon.preset("paper"),
                       spike=SpikeSettings.preset("paper"))
        return cls(optimizers=default_optimizers(), kappa_x=(1.0, 1e2, 1e4), kappa_F=(1.0, 10.0, 100.0),
                   linrep=LinrepCommon.preset("fast"), spike=SpikeSettings.preset("fast"))

    def cell(self, optimizer: str, kappa_x: float, kappa_F: float) -> CellSettings:
        return cell(optimizer, kappa_x, kappa_F, self.linrep)

    def cells(self, optimizers: tuple[str, ...] | None = None) -> list[CellSettings]:
        """Every cell, optimizer-major, then kappa_x, then kappa_F."""
        return [self.cell(o, kx, kF) for o in (optimizers or self.optimizers) for kx in self.kappa_x
                for kF in self.kappa_F]


# --------------------------------------------------------------------------- one cell
def build(name: str, lr: float) -> Any:
    """Registered optimizer ``name`` at step ``lr`` with its catalogue options (NGD, Newton: damping 1e-3)."""
    return so.make(name, lr=float(lr), **dict(lx.method(name).options))


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _cond(G: np.ndarray) -> float:
    s = np.linalg.svd(G, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else math.inf


def _population(problem, opt, lr: float, c: LinrepCommon, F0, G0) -> dict[str, Any]:
    tr = sc.track(problem, opt, steps=c.steps, F0=F0, G0=G0, stop_below=M.STOP_BELOW, window=c.window)
    out: dict[str, Any] = {"status": tr.status, "at": tr.at, "message": tr.message, "steps": tr.steps,
                           "final_distance": float(tr.distance[-1]),
                           "iterations": M.iterations_to(tr.distance, TARGET),
                           "residual": M.residual(tr.F, tr.G, problem.M, problem.Sigma_x)}
    wr = M.window_rate(tr.distance, window=c.window, cond_G=_cond(tr.G), d=c.d_x) if tr.status == "ok" else None
    out["rate"] = {"rate": None, "error": None, "spread": None, "start": -1, "end": -1, "linear": False,
                   "bound": None, "note": tr.message} if wr is None else dict(wr.__dict__)
    out["end"] = out["start"] = None
    if wr is not None and wr.rate is not None and M.settles(opt):
        Fs, Gs, sts = tr.at_step(wr.start)
        F1, G1, _ = tr.at_step(wr.start + 1)
        for key, (F, G, st) in (("end", (tr.F, tr.G, tr.state)), ("start", (Fs, Gs, sts))):
            C = M.step_matrices(opt, st)
            if C is not None:
                out[key] = {"F": F, "G": G, "C_F": C[0], "C_G": C[1], "step_F": F1 - Fs, "step_G": G1 - Gs}
    return out


def _jacobian(problem, opt, lr: float, kappa_x: float) -> dict[str, Any]:
    try:
        jac = sj.step_jacobian(problem, opt, lr=lr, h=lxe.H_ILL if kappa_x > 1e2 else lxe.H)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as e:
        return {"rate": None, "tol": None, "message": _one_line(e)}
    tol = lxe.FD_FACTOR * jac.difference_spectral_radius + lxe.ROUNDOFF_FACTOR * jac.roundoff_matrix_norm
    return {"rate": jac.spectral_radius, "tol": float(tol), "message": ""}


def _fresh(problem, opt, c: LinrepCommon, F0, G0, batches) -> dict[str, Any]:
    tr = sc.track(problem, opt, steps=c.fresh_steps, F0=F0, G0=G0, batches=batches, transfer=True)
    return {"status": tr.status, "at": tr.at, "message": tr.message,
            "distance": float(tr.distance[-1]) if tr.status == "ok" else None,
            "transfer": float(tr.transfer) if tr.status == "ok" else None}


def _error_lr(message: str) -> dict[str, Any]:
    pop = {"status": "error", "at": 0, "message": message, "steps": 0, "final_distance": None, "iterations": -1,
           "rate": {"rate": None, "error": None, "spread": None, "start": -1, "end": -1, "linear": False,
                    "bound": None, "note": message}, "end": None, "start": None}
    return {"population": pop, "jacobian": None, "fresh": {"status": "error", "at": 0, "message": message,
                                                           "distance": None, "transfer": None}}


def _na(message: str) -> dict[str, Any]:
    return {"status": "n/a", "at": -1, "message": message, "steps": 0, "final_distance": None, "iterations": -1,
            "rate": {"rate": None, "error": None, "spread": None, "start": -1, "end": -1, "linear": False,
                     "bound": None, "note": message}, "end": None, "start": None}


def _cell_trials(st: CellSettings) -> int:
    return st.common.trials


def _cell_stream(st: CellSettings) -> tuple:
    c = st.common
    return ("scorecard.linrep", c.d_x, c.d_y, c.k)


def _cell_cost(st: CellSettings) -> float:
    c = st.common
    return len(c.lrs) * (c.steps + c.fresh_steps) * c.d_x * 1e-6


@dataclass(frozen=True, kw_only=True)
class CellResult:
    """One cell's numbers (arrays (trials, step sizes) unless stated; NaN / -1 where not measured).

    label: the optimizer's label. route: ``"jacobian"`` (rate = spectral radius of one step's Jacobian) or
    ``"run"`` (rate by the window rule). theory_ref: ``"R-LR-1"``, ``"R-LR-4"`` or ``None``; theory_note: why
    none. lrs: (L,). pop: per trial, per step size, the population run's record (dicts of
    :func:`_population`). jac_rate, jac_tol: the Jacobian route. run_rate, run_error, run_bound, run_linear:
    the window rule. iterations: to distance 1e-3 (-1: not within the run). residual: of the population run's last
    iterate (:func:`compare.scorecard.measure.residual`; 0 at a solution). window_distance: the distance at the
    window's first step. theory: R-LR-1 at (F*, P, Q), or
    R-LR-4's asymptotic rate at the run's end point and step matrix; theory_window, theory_window_start: R-LR-4's
    prediction of the window rate :math:`\rho_2` (:func:`compare.scorecard.measure.window_prediction`) with the
    end point's and the window's first iterate's (C, H).
    fresh_distance, fresh_transfer: after ``fresh_steps`` fresh batches (NaN: diverged or failed).
    problems: per trial, the task's F*, Sigma_x, G* (what the theory is evaluated on).
    """

    settings: CellSettings
    label: str
    route: str
    theory_ref: str | None
    theory_note: str
    lrs: np.ndarray
    pop: tuple
    fresh: tuple
    jac_rate: np.ndarray
    jac_tol: np.ndarray
    run_rate: np.ndarray
    run_error: np.ndarray
    run_bound: np.ndarray
    run_linear: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    window_distance: np.ndarray
    theory: np.ndarray
    theory_window: np.ndarray
    theory_window_start: np.ndarray
    fresh_distance: np.ndarray
    fresh_transfer: np.ndarray


def _probe(name: str, lr: float) -> tuple[Any, str | None]:
    try:
        return build(name, lr), None
    except Exception as e:  # noqa: BLE001 - a factory that cannot build is reported per optimizer
        return None, f"optimizer {name!r}: building it raised {_one_line(e)}"


@experiment("scorecard.linrep", settings=CellSettings, trials=_cell_trials, stream=_cell_stream, block=1,
            cost=_cell_cost, requires=lambda st: _jacobian_requires(st),
            combine=lambda st, values, deps: cell_result(st, values, deps.get("jac")))
def cell_trial(st: CellSettings, ss_: np.random.SeedSequence, deps) -> dict[str, Any]:
    """One problem draw of one cell: per step size a population run, the Jacobian (least-squares-head rules)
    and a fresh-batch run, from the same start; every step of every run checked (simulate.scorecard.track)."""
    c = st.common
    rng = np.random.default_rng(ss_)
    problem = sd.linrep_problem(c.d_x, c.d_y, c.k, kappa_x=st.kappa_x, kappa_F=st.kappa_F, noise_std=c.noise_std,
                                rng=rng)
    F0, G0 = sl.initial_point(problem, rng=rng)
    probe, err = _probe(st.optimizer, c.lrs[0])
    samples = bool(getattr(probe, "needs_samples", False))
    batches = sc.draw_batches(problem, c.batch, c.fresh_steps, rng=rng, samples=samples)
    out: dict[str, Any] = {"problem": {"F_star": problem.F_star, "Sigma_x": problem.Sigma_x, "G_star": problem.G_star},
                           "per_lr": []}
    grid = lx.method(st.optimizer).lrs(tuple(c.lrs))
    for lr in c.lrs:
        if lr not in grid:
            msg = f"step size {lr:.3g} outside {st.optimizer!r}'s grid (cost; compare.linrep.experiments.CATALOGUE)"
            out["per_lr"].append({"population": _na(msg), "jacobian": None,
                                  "fresh": {**_na(msg), "distance": None, "transfer": None}})
            continue
        opt, err = _probe(st.optimizer, lr)
        if opt is None:
            out["per_lr"].append(_error_lr(err))
            continue
        needs_batches = bool(getattr(opt, "needs_samples", False) or getattr(opt, "needs_means", False))
        pop = _na("needs batches (batch statistics): no population run") if needs_batches else \
            _population(problem, opt, lr, c, F0, G0)
        out["per_lr"].append({"population": pop, "jacobian": None, "fresh": _fresh(problem, opt, c, F0, G0, batches)})
    return out


# --------------------------------------------------------------------------- the Jacobian route (R-LR-1 rules)
@dataclass(frozen=True, kw_only=True)
class JacobianResult:
    """The Jacobian route of one cell: per trial and step size of the grid (T, L), the spectral radius of one
    literal step's Jacobian at the solution, its tolerance (finite differences + round-off,
    :data:`compare.linrep.exact.FD_FACTOR`), and R-LR-1 at the rule's pair (NaN where not computed: a step size
    outside the rule's grid, or a failed factorisation, whose message is in ``messages``)."""

    settings: CellSettings
    pair: tuple[str, str]
    lrs: np.ndarray
    rate: np.ndarray
    tol: np.ndarray
    theory: np.ndarray
    messages: tuple[str, ...]


def _jacobian_requires(st: CellSettings) -> dict:
    """A cell of an R-LR-1 rule reads its Jacobian route (shared with C22, C23); other cells read nothing."""
    opt, _ = _probe(st.optimizer, st.common.lrs[0])
    return {"jac": ref("scorecard.jacobian", st)} if opt is not None and M.rlr1_pair(opt) is not None else {}


def _jacobian_cost(st: CellSettings) -> float:
    c = st.common
    return len(c.lrs) * 2 * (c.d_y * c.k + c.k * c.d_x) * c.d_x * 1e-6


@experiment("scorecard.jacobian", settings=CellSettings, trials=_cell_trials, stream=_cell_stream, block=3,
            cost=_jacobian_cost, combine=lambda st, values, deps: jacobian_result(st, values))
def jacobian_trial(st: CellSettings, ss_: np.random.SeedSequence, deps) -> dict[str, Any]:
    """One problem draw of one cell (the same draw as :func:`cell_trial`: same stream, drawn first): the
    Jacobian of one literal step at the solution at every step size of the rule's grid."""
    c = st.common
    rng = np.random.default_rng(ss_)
    problem = sd.linrep_problem(c.d_x, c.d_y, c.k, kappa_x=st.kappa_x, kappa_F=st.kappa_F, noise_std=c.noise_std,
                                rng=rng)
    grid = lx.method(st.optimizer).lrs(tuple(c.lrs))
    per_lr = []
    for lr in c.lrs:
        opt, err = _probe(st.optimizer, lr) if lr in grid else (None, "outside the rule's grid")
        per_lr.append(_jacobian(problem, opt, lr, st.kappa_x) if opt is not None and M.rlr1_pair(opt) is not None
                      else {"rate": None, "tol": None, "message": err or "no R-LR-1 pair"})
    return {"problem": {"F_star": problem.F_star, "Sigma_x": problem.Sigma_x, "G_star": problem.G_star},
            "per_lr": per_lr}


def jacobian_result(st: CellSettings, values: list) -> JacobianResult:
    """Combine the trials; R-LR-1 at the rule's pair on each trial's task (theory, in the main process)."""
    lrs = np.asarray(st.common.lrs, dtype=float)
    pair = M.rlr1_pair(build(st.optimizer, st.common.lrs[0]))
    T, L = len(values), lrs.size
    rate, tol, theory = np.full((T, L), np.nan), np.full((T, L), np.nan), np.full((T, L), np.nan)
    msgs = []
    for i, v in enumerate(values):
        prob = v["problem"]
        for j, rec in enumerate(v["per_lr"]):
            if rec["rate"] is not None:
                rate[i, j], tol[i, j] = rec["rate"], rec["tol"]
            elif rec["message"]:
                msgs.append(rec["message"])
            if pair is not None:
                theory[i, j] = tl.local_rate(prob["F_star"], prob["Sigma_x"], prob["G_star"], eta=float(lrs[j]),
                                             left=pair[0], right=pair[1])
    return JacobianResult(settings=st, pair=pair, lrs=lrs, rate=rate, tol=tol, theory=theory,
                          messages=tuple(dict.fromkeys(msgs)))


def _theory_route(name: str, lr: float) -> tuple[str, str | None, str]:
    opt, err = _probe(name, lr)
    if opt is None:
        return "run", None, err or ""
    if M.rlr1_pair(opt) is not None:
        return "jacobian", "R-LR-1", ""
    if M.settles(opt):
        return "run", "R-LR-4", ""
    return "run", None, M.no_theory_reason(opt)


def _rlr4(rec: dict | None, problem: dict, lr: float, length: int, exact: bool,
          distance: float | None) -> tuple[float, float]:
    """(asymptotic rate, predicted window rate rho_2) of R-LR-4 at the record's point and step matrix (``exact``:
    with the exact Hessian there, for a point that is not a solution; distance: the point's subspace distance)."""
    if rec is None or length < 2 or distance is None:
        return math.nan, math.nan
    try:
        target = problem["F_star"] @ problem["G_star"]
        offset = max(float(distance), M.residual(rec["F"], rec["G"], target, problem["Sigma_x"]))
        _, r2, rate = M.window_prediction(rec["F"], rec["G"], rec["C_F"], rec["C_G"], problem["Sigma_x"],
                                          problem["G_star"], eta=lr, step_F=rec["step_F"], step_G=rec["step_G"],
                                          length=length, M=target if exact else None, offset=offset)
        return rate, r2
    except (ValueError, np.linalg.LinAlgError):
        return math.nan, math.nan


def cell_result(st: CellSettings, values: list, jac: JacobianResult | None = None) -> CellResult:
    """Combine a cell's trials and evaluate its theory (R-LR-1 at the rule's pair, R-LR-4 at the end point).

    Runs where ``combine`` runs (the main process): BLAS is limited to one thread here, as in a worker (the
    matrices are small, and a multi-threaded BLAS on a loaded machine made each 78 x 78 eigendecomposition ~100x
    slower)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _cell_result(st, values, jac)


def _cell_result(st: CellSettings, values: list, jac_res: JacobianResult | None) -> CellResult:
    c = st.common
    lrs = np.asarray(c.lrs, dtype=float)
    route, ref_, note = _theory_route(st.optimizer, c.lrs[0])
    T, L = len(values), lrs.size
    nan = lambda: np.full((T, L), np.nan)  # noqa: E731
    jac_rate, jac_tol, run_rate, run_error, run_bound = nan(), nan(), nan(), nan(), nan()
    theory, window, window_start, fd, ft = nan(), nan(), nan(), nan(), nan()
    linear = np.zeros((T, L), dtype=bool)
    resid, d_start = nan(), nan()
    iters = np.full((T, L), -1, dtype=int)
    if jac_res is not None:
        jac_rate, jac_tol, theory = jac_res.rate.copy(), jac_res.tol.copy(), jac_res.theory.copy()
    for i, v in enumerate(values):
        prob = v["problem"]
        for j, rec in enumerate(v["per_lr"]):
            pop, fr = rec["population"], rec["fresh"]
            r = pop["rate"]
            if r["rate"] is not None:
                run_rate[i, j], run_error[i, j] = r["rate"], r["error"]
            if r["bound"] is not None:
                run_bound[i, j] = r["bound"]
            linear[i, j] = bool(r["linear"])
            resid[i, j] = pop.get("residual", math.nan) if pop["status"] == "ok" else math.nan
            d_start[i, j] = r.get("d_start") if r.get("d_start") is not None else math.nan
            iters[i, j] = int(pop["iterations"]) if pop["status"] == "ok" else -1
            if ref_ == "R-LR-4":
                w = r["end"] - r["start"]
                theory[i, j], window[i, j] = _rlr4(pop["end"], prob, float(lrs[j]), w, False, r.get("d_end"))
                _, window_start[i, j] = _rlr4(pop["start"], prob, float(lrs[j]), w, True, r.get("d_start"))
            if fr["status"] == "ok":
                fd[i, j], ft[i, j] = fr["distance"], fr["transfer"]
    return CellResult(settings=st, label=lx.method(st.optimizer).label, route=route, theory_ref=ref_,
                      theory_note=note, lrs=lrs, pop=tuple(tuple(r["population"] for r in v["per_lr"]) for v in values),
                      fresh=tuple(tuple(r["fresh"] for r in v["per_lr"]) for v in values), jac_rate=jac_rate,
                      jac_tol=jac_tol, run_rate=run_rate, run_error=run_error, run_bound=run_bound, run_linear=linear,
                      iterations=iters, residual=resid, window_distance=d_start, theory=theory, theory_window=window, theory_window_start=window_start,
                      fresh_distance=fd,
                      fresh_transfer=ft)


# --------------------------------------------------------------------------- single index
def _spike_stream(s: SpikeSettings) -> tuple:
    return ("scorecard.single_index", s.d)


@experiment("scorecard.single_index", settings=SpikeSettings, trials=lambda s: s.trials,
            requires=lambda s: {"inst": ref("single_index.instance", s.instance)}, stream=_spike_stream,
            combine=lambda s, blocks, deps: ss.concatenate(blocks), block=10, batched=True,
            threads=lambda s: sx.blas_threads_for(s.d), cost=lambda s: (s.d / 1000) ** 3 * 1.5)
def spike_block(s: SpikeSettings, seeds: list, deps) -> ss.OneStepResult:
    """One-step spikes (SGD, KFAC, powers) and Muon's orthogonalisation on the shared instance."""
    inst: sx.Instance = deps["inst"]
    return ss.one_step(inst.t, inst.beta, n=s.n, N=s.N, lam_G=np.array([s.lam_G]), teacher=sx._teacher(s.teacher),
                       noise_std=s.noise_std, trials=len(seeds), seed=list(seeds), student=s.student, network=False,
                       population=True, powers=tuple(float(p) for p in s.powers), muon=True)
