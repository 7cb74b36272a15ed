r"""Claims C22-C25: the optimizer scorecard's statements (docs/theory.md section 6).

**C22, C23** (ordering; the paper's one-sided preconditioners, R-LR-1). Per trial and cell the rate is the
spectral radius of the Jacobian of one literal step at the solution (least-squares head), at the best step size
of the grid; :math:`\tau = 1/(1-\rho)` is its number of steps per e-fold. A right-only preconditioner
(``kfac_right``, :math:`P = I, Q = \Sigma_x`: R-LR-1 gives :math:`m \equiv 1`, :math:`\ell = \sigma(F)^2`)
*removes the dependence on* :math:`\kappa(\Sigma_x)` *but not on* :math:`\kappa(F)`, and a left-only one
(``kfac_left``, :math:`P = F^\top F, Q = I`: :math:`\ell \equiv 1`) the reverse. Components, per trial
(paired: every cell of a trial shares the task's rotations), each a one-sided test of "E D > margin"
(:func:`compare.stats.ordering`, alpha :math:`10^{-3}` bounding a false "holds", intersection-union over the
:math:`m` components, reverse at :math:`\alpha/m`):

- *no dependence* on the removed condition number :math:`\kappa` (at each value of the other one):
  :math:`D = \log_{10}2 - \max_i|\log_{10}\tau(\kappa_i)/\tau(\kappa_{\min})|`, margin 0 (reading [R]: the
  iteration scale changes by less than a factor 2 over the whole grid; R-LR-1: exactly not at all);
- *dependence* on the other one (at each value of the removed one):
  :math:`D = \log_{10}\tau(\kappa_{\max})/\tau(\kappa_{\min})`, margin 1 (at least ten-fold slower from the
  smallest to the largest; R-LR-1: :math:`\kappa^2`-fold on a continuous step-size grid).

**C24** (exact; R-LR-4, "the rate of any settled preconditioner is the linearisation at its limit"): for the
rules whose step matrix is fixed or settles (SGD, Shampoo with accumulated sums, AdaGrad), every population run
of the scorecard with a *linear* window rate (:mod:`compare.scorecard.measure`) that ends at a solution
(residual :math:`\le 10^{-6}`: R-LR-4 linearises at a solution; a run whose subspace has converged while its head
still lags is not there) and whose window lies below distance :math:`10^{-5}` gives a row comparing the measured
window rate :math:`\rho_2` with R-LR-4's prediction of the same quantity: the window rule applied to the linear
recursion :math:`J = I - \eta CH` at the run's last iterate and step matrix, started from the run's own
deviation at the window's first step (:func:`compare.scorecard.measure.window_prediction`; its asymptote
:math:`\max|1-\eta\mu_i|` over the visible modes is the scorecard's theory column). Compared as rate gaps
:math:`1-\rho`. Tolerance (deterministic, no alpha): the *drift* of the prediction (the same computed with
:math:`C` and the exact Hessian at the window's first iterate: how far the preconditioner is from settled), the
round-off of the distances, and an allowance for the second-order terms the linear recursion leaves out
(:func:`second_order`: :math:`\rho\,d_s/((1-\rho)(t_{\rm end}-t_{\rm mid}))`). A run whose drift exceeds 0.1 of the
predicted gap is *not settled* and left out. Every left-out run is counted by reason in the outcome. Detectable:
tolerance over the predicted gap. SOAP is not covered: its Adam step in the eigenbasis is entry-wise (not
Kronecker) and its second moment is an exponential moving average that forgets (it does not settle; measured: no
linear rate). R-LR-1 itself (the G-step with the least-squares head) does not describe Shampoo, whose head takes
its own preconditioned step (docs/theory.md).

**C25** (exact; Muon's one-step direction, re-specified): per trial of the single-index runs, (a) the SGD spike
direction (top right singular vector :math:`u_1` of :math:`-\nabla_G\hat L`) is a right singular vector of
Muon's orthogonalised update :math:`O = \mathrm{NS}_5(-\nabla_G\hat L)` (residual
:math:`\lVert O^\top Ou_1 - \lVert Ou_1\rVert^2u_1\rVert/\lVert Ou_1\rVert^2`), (b) with singular value
:math:`p^{(5)}(x_1)` and (c) :math:`O`'s top singular value is :math:`\max_j p^{(5)}(x_j)`,
:math:`x_j = s_j/(\lVert s\rVert + 10^{-7})` (:mod:`theory.muon`), so (d) the spike's share
:math:`\lVert Ou_1\rVert/\sigma_1(O)` is the Newton-Schulz map's ratio. Tolerance: a floating-point bound on
the five iterations (:func:`ns_error_bound`). The rows report the worst trial.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from compare import stats
from compare.engine import maps as _maps
from compare.engine.registry import Outcome, claim, ref
from compare.engine.settings import Settings, check_size
from compare.scorecard import experiments as E
from compare.scorecard import measure as M
from compare.scorecard import table as T
from simulate import single_index as ss
from theory import muon as tm

ALPHA = stats.ALPHA
U = float(np.finfo(float).eps)
#: the readings of C22/C23 [R]: "no dependence" = the iteration scale moves by less than this factor over the
#: grid; "dependence" = at least this many decades slower from the smallest to the largest condition number.
NO_EFFECT_FACTOR = 2.0
EFFECT_DECADES = 1.0
#: trials of C22/C23. Power: the per-trial "dependence" difference D (about 3.8 decades against the margin 1) spreads
#: by sd 0.1-0.3 decades over trials, because the best step of the discrete grid at kappa = 1e4 changes from draw to
#: draw (measured, seeds 0-19 at 3 trials). A one-sided t at alpha = 1e-3 shows it when
#: (D - 1) sqrt(T) / sd > t_{0.999, T-1}: with 3 trials (critical 22.3 on 2 df) 5 of 20 seeds were inconclusive
#: (t = 16); with 5 (critical 7.17 on 4 df) an sd up to 0.86 decades is enough.
ONE_SIDED_TRIALS = 5
#: the optimizers of C24 (fixed or settling step matrices).
SETTLED = ("sgd", "shampoo", "adagrad")


# --------------------------------------------------------------------------- C22, C23
@dataclass(frozen=True, kw_only=True)
class OneSidedSettings(Settings):
    """The scorecard's cells of one optimizer over the grid (C22: ``kfac_right``, C23: ``kfac_left``)."""

    optimizer: str = "kfac_right"
    kappa_x: tuple[float, ...] = (1.0, 1e2, 1e4)
    kappa_F: tuple[float, ...] = (1.0, 10.0, 100.0)
    linrep: E.LinrepCommon = E.LinrepCommon.preset("fast")

    def __post_init__(self):
        E.check_optimizers("OneSidedSettings", (self.optimizer,))
        for name in ("kappa_x", "kappa_F"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or len(v) < 2:
                raise ValueError(f"OneSidedSettings: argument '{name}' must give >= 2 condition numbers; got {v!r}.")

    @classmethod
    def preset(cls, size: str) -> "OneSidedSettings":
        """The scorecard's grid, with at least :data:`ONE_SIDED_TRIALS` problem draws (the Jacobian route only:
        cheap; the power analysis is at :data:`ONE_SIDED_TRIALS`)."""
        sc = E.ScorecardSettings.preset(check_size("OneSidedSettings.preset", size))
        return cls(kappa_x=sc.kappa_x, kappa_F=sc.kappa_F,
                   linrep=dataclasses.replace(sc.linrep, trials=max(ONE_SIDED_TRIALS, sc.linrep.trials)))

    def cells(self) -> dict[str, E.CellSettings]:
        return {f"c{i}_{j}": E.cell(self.optimizer, kx, kF, self.linrep)
                for i, kx in enumerate(self.kappa_x) for j, kF in enumerate(self.kappa_F)}


@dataclass(frozen=True, kw_only=True)
class RightOnlySettings(OneSidedSettings):
    """C22: ``kfac_right``."""

    optimizer: str = "kfac_right"


@dataclass(frozen=True, kw_only=True)
class LeftOnlySettings(OneSidedSettings):
    """C23: ``kfac_left``."""

    optimizer: str = "kfac_left"


def _cells_reads(s: OneSidedSettings) -> dict:
    return {k: ref("scorecard.jacobian", c) for k, c in s.cells().items()}


def best_jacobian_rate(res: E.JacobianResult) -> np.ndarray:
    """(trials,) the smallest Jacobian spectral radius over the step-size grid (NaN: none measured)."""
    r = res.rate
    out = np.full(r.shape[0], np.nan)
    has = np.isfinite(r).any(axis=1)
    out[has] = np.nanmin(r[has], axis=1)
    return out


def taus(s: OneSidedSettings, results: dict[str, E.JacobianResult]) -> np.ndarray:
    """(trials, len(kappa_x), len(kappa_F)) steps per e-fold 1/(1 - rho) at the best step size (Jacobian)."""
    nx, nF = len(s.kappa_x), len(s.kappa_F)
    cols = [[T.tau(best_jacobian_rate(results[f"c{i}_{j}"])) for j in range(nF)] for i in range(nx)]
    return np.asarray(cols, dtype=float).transpose(2, 0, 1)


def one_sided_outcome(s: OneSidedSettings, results: dict[str, E.JacobianResult], *, removes: str) -> Outcome:
    """C22 (``removes="kappa_x"``) or C23 (``removes="kappa_F"``): see the module docstring."""
    tau = np.log10(taus(s, results))                   # (T, nx, nF)
    if removes == "kappa_F":
        tau = tau.transpose(0, 2, 1)                     # axis 1: the removed condition number
        removed, kept = s.kappa_F, s.kappa_x
    else:
        removed, kept = s.kappa_x, s.kappa_F
    m = len(removed) + len(kept)
    rows = []
    for j, kv in enumerate(kept):
        d = math.log10(NO_EFFECT_FACTOR) - np.abs(tau[:, :, j] - tau[:, :1, j]).max(axis=1)
        o = stats.ordering(d, alpha=ALPHA, reverse_alpha=ALPHA / m)
        rows.append(o.row(component=f"no dependence on {removes} (at the other = {kv:g})",
                          log10_tau=[[float(x) for x in r] for r in tau[:, :, j]], **{removes: list(removed)}))
    other = "kappa_F" if removes == "kappa_x" else "kappa_x"
    for i, rv in enumerate(removed):
        d = tau[:, i, -1] - tau[:, i, 0]
        o = stats.ordering(d, alpha=ALPHA, margin=EFFECT_DECADES, reverse_alpha=ALPHA / m)
        rows.append(o.row(component=f"{other} {kept[0]:g} -> {kept[-1]:g} at least ten-fold slower "
                                    f"(at {removes} = {rv:g})", log10_tau=[float(x) for x in tau[:, i, -1]],
                          log10_tau_smallest=[float(x) for x in tau[:, i, 0]]))
    return Outcome.ordering(rows, alpha=ALPHA, source=(
        f"{m} components on log10 of the iteration scale 1/(1 - rho) (rho: Jacobian spectral radius at the best "
        f"step of the grid), paired over trials; no dependence: log10 2 - max |log10 ratio| > 0; dependence: "
        f"log10 ratio > 1; each one-sided at alpha = 1e-3 (t on T-1 df, sign test if infinite), "
        f"intersection-union; contradicted when a reverse is shown at 1e-3/{m}"))


@claim("C22", settings=RightOnlySettings, reads=_cells_reads, paper_ref="Sec. 3.1 (one-sided KFAC) [R]",
       theory_ref="R-LR-1", kind="ordering",
       statement="Right-only preconditioning (kfac_right: P = I, Q = Sigma_x) removes the kappa(Sigma_x) dependence "
                 "of the local rate but not the kappa(F) dependence: over kappa_x in 1..1e4 its iteration scale "
                 "changes by less than 2x, over kappa_F 1..100 it grows at least ten-fold.")
def c22_right_only(s: RightOnlySettings, *, seed: int, **cells: E.JacobianResult) -> Outcome:
    return one_sided_outcome(s, cells, removes="kappa_x")


@claim("C23", settings=LeftOnlySettings, reads=_cells_reads, paper_ref="Sec. 3.1 (one-sided KFAC) [R]",
       theory_ref="R-LR-1", kind="ordering",
       statement="Left-only preconditioning (kfac_left: P = F'F, Q = I) removes the kappa(F) dependence of the "
                 "local rate but not the kappa(Sigma_x) dependence: over kappa_F in 1..100 its iteration scale "
                 "changes by less than 2x, over kappa_x 1..1e4 it grows at least ten-fold.")
def c23_left_only(s: LeftOnlySettings, *, seed: int, **cells: E.JacobianResult) -> Outcome:
    return one_sided_outcome(s, cells, removes="kappa_F")


# one optimizer's dependence on the conditioning it sweeps itself: no methods compared, nothing for a map to vary
for _id in ("C22", "C23"):
    _maps.NOT_MAPPED[_id] = "one optimizer across the conditionings it sweeps itself, no methods compared"


# --------------------------------------------------------------------------- C24
@dataclass(frozen=True, kw_only=True)
class SettledSettings(Settings):
    """C24: the scorecard's cells of the rules with a fixed or settling step matrix."""

    optimizers: tuple[str, ...] = SETTLED
    kappa_x: tuple[float, ...] = (1.0, 1e2, 1e4)
    kappa_F: tuple[float, ...] = (1.0, 10.0, 100.0)
    linrep: E.LinrepCommon = E.LinrepCommon.preset("fast")

    def __post_init__(self):
        E.check_optimizers("SettledSettings", self.optimizers)

    @classmethod
    def preset(cls, size: str) -> "SettledSettings":
        """The scorecard's cells (the same cache entries) with kappa_x <= 100 and kappa_F <= 10: elsewhere no run
        of these rules reaches the linear regime (distance 1e-3) within the run (measured at fast size: SGD,
        Shampoo and AdaGrad at kappa_x = 1e4, and SGD and AdaGrad at (100, 10), never get there), so those cells
        would add cost and no rows."""
        sc = E.ScorecardSettings.preset(check_size("SettledSettings.preset", size))
        return cls(kappa_x=tuple(k for k in sc.kappa_x if k <= 1e2), kappa_F=tuple(k for k in sc.kappa_F if k <= 10.0),
                   linrep=sc.linrep)

    def cells(self) -> dict[str, E.CellSettings]:
        return {f"{o}__{i}_{j}": E.cell(o, kx, kF, self.linrep)
                for o in self.optimizers for i, kx in enumerate(self.kappa_x) for j, kF in enumerate(self.kappa_F)}


def _settled_reads(s: SettledSettings) -> dict:
    return {k: ref("scorecard.linrep", c) for k, c in s.cells().items()}


#: C24 uses windows that start below this distance (the quadratic term of the step is below it, relative).
C24_BELOW = 1e-5
#: the constant c of the second-order allowance (:func:`second_order`), in units of the distance.
SECOND_ORDER_C = 1.0


def second_order(rate: float, w: dict, residual: float = 0.0) -> float:
    r"""The allowance for the second-order terms R-LR-4's linear recursion leaves out, on the window rate
    :math:`\rho_2` of a window ``w`` (its ``start``, ``end``, ``d_start``).

    The step map and the subspace distance are linear in the deviation :math:`e_t` from the solution up to
    relative terms :math:`c\,|e_t|`, :math:`|e_t| \sim d_t` or the head's error if larger
    (:func:`deviation_start`) (the quadratic term of the step; the change of
    :math:`A = GG^{*\top}` in the tangent :math:`A^{-1}\delta G\,G_\perp^{*\top}`). Summed from the window's
    first step (where the prediction starts) they move :math:`\log d` by at most
    :math:`c\sum_{t\ge s}d_t \le c\,d_s/(1-\rho)`, so :math:`\rho_2 = (d_{\rm end}/d_{\rm mid})^{1/(t_{\rm end}-t_{\rm mid})}`
    by at most :math:`\rho\,c\,d_s/((1-\rho)(t_{\rm end}-t_{\rm mid}))`. :data:`SECOND_ORDER_C` = 1. Measured (Shampoo,
    seed 5, kappa = (100, 10), eta = 1, one trial continued to later windows): the prediction's error is
    2.8e-9 at d_s = 6.2e-6 and 4.9e-10 at d_s = 1.1e-6 (linear in d_s: c = 1.7e-3 in these units), and at the
    round-off level below; a tolerance without this term failed 4 of 20 master seeds (windows with d_s of a few
    1e-6)."""
    mid = w["start"] + (w["end"] - w["start"]) // 2
    gap = max(1.0 - rate, U)
    return float(SECOND_ORDER_C * rate * deviation_start(w, residual) / (gap * (w["end"] - mid)))


def deviation_start(w: dict, residual: float) -> float:
    r"""The size of the deviation from the solution at the window's first step, in units of the distance: the
    subspace distance :math:`d_s`, or the head's error when that is larger. The head's error is measured at the
    run's end only (the relative residual :math:`r_{\rm end}` of :func:`compare.scorecard.measure.residual`, which is
    first order in the deviation of both layers); it is carried back to the window's first step with the window's own
    decay, :math:`r_s \approx r_{\rm end}\,d_s/d_{\rm end}` (a head error decaying more slowly than the distance is
    overestimated so). Measured (Shampoo, seed 13, kappa = (1, 10), eta = 0.316): d_s = 1.4e-7 but
    r_end = 3.1e-7 at d_end = 1.3e-8 (the head lags); the prediction was off by 1.0e-6 against an allowance of
    1.2e-7 computed from d_s alone."""
    d_s, d_e = float(w["d_start"]), float(w["d_end"])
    head = residual * d_s / d_e if d_e > 0 and math.isfinite(residual) else 0.0
    return max(d_s, head)


def settled_rows(cells: dict[str, E.CellResult], *, scale: float = 1.0) -> tuple[list[dict], dict[str, int]]:
    """C24's rows (module docstring) and the number of runs left out, by reason. scale: multiplies every
    predicted gap (tests: a perturbed theory)."""
    rows = []
    out = {"no linear rate": 0, "not at a solution": 0, "window above 1e-5": 0, "not settled": 0}
    for key, cell in cells.items():
        if cell.theory_ref != "R-LR-4":
            continue
        for t in range(cell.run_rate.shape[0]):
            for j, lr in enumerate(cell.lrs):
                if cell.pop[t][j]["status"] != "ok":
                    continue
                pred, pred_s = float(cell.theory_window[t, j]), float(cell.theory_window_start[t, j])
                if not cell.run_linear[t, j] or not np.isfinite(pred):
                    out["no linear rate"] += 1
                    continue
                if not cell.residual[t, j] <= M.SOLUTION_RTOL:
                    out["not at a solution"] += 1
                    continue
                if not cell.window_distance[t, j] <= C24_BELOW:
                    out["window above 1e-5"] += 1
                    continue
                drift = abs(pred - pred_s) if np.isfinite(pred_s) else math.inf
                if not drift <= M.LINEAR_SPREAD * abs(1.0 - pred):
                    out["not settled"] += 1
                    continue
                w = cell.pop[t][j]["rate"]
                meas = float(cell.run_rate[t, j])
                roundoff = float(w["error"]) - float(w["spread"])
                second = second_order(meas, w, float(cell.residual[t, j]))
                tol = drift + roundoff + second
                a = stats.exact(1.0 - meas, scale * (1.0 - pred), tolerance=tol)
                rows.append(a.row(optimizer=cell.settings.optimizer, kappa_x=cell.settings.kappa_x,
                                  kappa_F=cell.settings.kappa_F, trial=t, lr=float(lr), rate_measured=meas,
                                  rate_predicted=pred, rate_asymptotic=float(cell.theory[t, j]),
                                  window=[w["start"], w["end"]], prediction_drift=drift, roundoff=roundoff,
                                  second_order=second, distance_window_start=float(w["d_start"]),
                                  halves_spread=float(w["spread"]), residual=float(cell.residual[t, j]),
                                  quantity="window rate gap 1 - rho_2"))
    return rows, out


def settled_outcome(cells: dict[str, E.CellResult], *, scale: float = 1.0) -> Outcome:
    rows, left = settled_rows(cells, scale=scale)
    why = ", ".join(f"{n} {k}" for k, n in left.items())
    if not rows:
        raise ValueError(f"C24: no population run of {sorted({c.settings.optimizer for c in cells.values()})} is "
                         f"settled at a solution with a linear rate ({why})")
    return Outcome.agreement(rows, alpha=None, source=(
        f"deterministic: |measured - predicted window gap| <= drift of R-LR-4's prediction over the window "
        f"(C and exact Hessian at its first iterate vs at the solution it ends at) + round-off of the distances; "
        f"{len(rows)} runs (left out: {why})"))


@claim("C24", settings=SettledSettings, reads=_settled_reads, paper_ref="- (scorecard) [R]", theory_ref="R-LR-4",
       kind="exact",
       statement="The local rate of any fixed or settled preconditioner (SGD; Shampoo's accumulated factors; "
                 "AdaGrad's accumulator) is the linearisation of its simultaneous two-layer step at its limit "
                 "factors (R-LR-4), in every population run of the scorecard with a linear, settled rate.")
def c24_settled(s: SettledSettings, *, seed: int, **cells: E.CellResult) -> Outcome:
    return settled_outcome(cells)


# --------------------------------------------------------------------------- C25
@dataclass(frozen=True, kw_only=True)
class MuonSettings(Settings):
    """C25: the scorecard's single-index runs."""

    spike: E.SpikeSettings = E.SpikeSettings.preset("fast")

    @classmethod
    def preset(cls, size: str) -> "MuonSettings":
        return cls(spike=E.SpikeSettings.preset(check_size("MuonSettings.preset", size)))


def _muon_reads(s: MuonSettings) -> dict:
    return {"res": ref("scorecard.single_index", s.spike)}


def ns_error_bound(n: int, *, steps: int = 5) -> tuple[float, float]:
    r"""(E, L): a bound E on :math:`\lVert\hat O - O\rVert_2` of ``steps`` Newton-Schulz iterations in float64
    on matrices with inner dimensions at most ``n``, and the Lipschitz constant L of :math:`p` on the range of
    the iteration.

    Every iterate's singular values lie in :math:`[0, x_{\max}]`, :math:`x_{\max} = \max(1, \max_{[0,1]}p)`
    (:math:`p` maps :math:`[0, x_{\max}]` into itself; 1.21 for Muon's coefficients); one iteration's products
    :math:`XX^\top`, :math:`A^2`, :math:`(bA + cA^2)X` add at most
    :math:`e = 4\gamma(|a|x + 2|b|x^3 + 4|c|x^5)` (:math:`\gamma = nu`, Higham's normwise product bound with
    every norm at most :math:`x_{\max}`), and a perturbation grows by at most :math:`L = \max|p'|` per iteration,
    so from the normalisation's :math:`\gamma`:
    :math:`E = L^k\gamma + e\,(L^k - 1)/(L - 1)`.
    """
    a, b, c = tm.NS_COEFFICIENTS
    grid = np.linspace(0.0, 1.0, 20001)
    x = max(1.0, float(tm.newton_schulz_map(grid, steps=1).max()))
    xs = np.linspace(0.0, x, 20001)
    L = float(np.abs(a + 3 * b * xs**2 + 5 * c * xs**4).max())
    gamma = n * U
    e = 4 * gamma * (abs(a) * x + 2 * abs(b) * x**3 + 4 * abs(c) * x**5)
    E_ = L**steps * gamma + e * (L**steps - 1.0) / (L - 1.0)
    return float(E_), L


def muon_rows(res: ss.OneStepResult, *, scale: float = 1.0) -> list[dict]:
    """C25's rows (module docstring): the worst trial of each quantity. scale multiplies the predictions."""
    N, d = res.N, res.d
    E_, L = ns_error_bound(N + d)
    vals = np.asarray(res.muon_raw_values)
    x = vals / (np.linalg.norm(vals, axis=1, keepdims=True) + tm.NS_OFFSET)
    pred_all = np.stack([tm.orthogonalised_singular_values(v) for v in vals])
    pred_spike, pred_top = pred_all[:, 0], pred_all.max(axis=1)
    pred_gain = pred_spike / pred_top
    # the raw singular values (inputs of the prediction) carry the SVD's backward error (N + d) u s_1, moved by L^5
    input_err = L**5 * 2 * (N + d) * U
    # the raw top direction is off by an angle <= (N + d) u s_1 / (s_1 - s_2) (Davis-Kahan with the SVD's error)
    theta = (N + d) * U * vals[:, 0] / (vals[:, 0] - vals[:, 1])
    tol_spike = E_ + input_err + pred_top * theta
    tol_top = np.full(vals.shape[0], E_ + input_err)
    tol_gain = (tol_spike + pred_gain * tol_top) / (pred_top - tol_top)
    spike = np.asarray(res.muon_spike_value)
    top = np.asarray(res.muon_top_value)
    gain = np.asarray(res.muon_spike_gain)
    resid = np.asarray(res.muon_spike_residual)
    tol_resid = (4 * pred_top * E_ + 2 * pred_top**2 * theta) / (spike**2)
    out = []
    for q, m_, p_, tol in (("raw top direction's residual as a right singular vector of O", resid,
                            np.zeros_like(resid), tol_resid),
                           ("singular value of O along the raw top direction = p5(x_1)", spike, scale * pred_spike,
                            tol_spike),
                           ("top singular value of O = max_j p5(x_j)", top, scale * pred_top, tol_top),
                           ("spike's share |O u_1| / s_1(O) = p5(x_1) / max_j p5(x_j)", gain, scale * pred_gain,
                            tol_gain)):
        worst = int(np.argmax(np.abs(m_ - p_) / tol))
        a = stats.exact(float(m_[worst]), float(p_[worst]), tolerance=float(tol[worst]))
        out.append(a.row(quantity=q, trial=worst, trials=int(m_.size), max_error_over_tolerance=float(
            np.max(np.abs(m_ - p_) / tol)), spike_gain_mean=float(gain.mean()), spike_gain_predicted_mean=float(
            pred_gain.mean()), spike_on_top=int(np.sum(gain >= 1.0 - 1e-12)), x1_mean=float(x[:, 0].mean()),
            ns_bound=E_, lipschitz=L))
    return out


def muon_outcome(res: ss.OneStepResult, *, scale: float = 1.0) -> Outcome:
    return Outcome.agreement(muon_rows(res, scale=scale), alpha=None, source=(
        "deterministic floating-point bound of 5 Newton-Schulz iterations (E = L^5 gamma + e (L^5 - 1)/(L - 1), "
        "gamma = (N + d) u) + the raw SVD's error moved by L^5 + the raw top direction's Davis-Kahan angle"))


@claim("C25", settings=MuonSettings, reads=_muon_reads, paper_ref="Sec. 3.2 (one step), Muon [R]",
       theory_ref="Muon's orthogonalisation (4.1)", kind="exact",
       statement="Muon's orthogonalised one-step update keeps the SGD spike direction as a right singular vector, "
                 "with singular value p5(x_1) against its top singular value max_j p5(x_j) (the Newton-Schulz map "
                 "of the raw singular values): the spike's share is their ratio (about 0.6), so the spike is not "
                 "the update's top direction.")
def c25_muon(s: MuonSettings, *, seed: int, res: ss.OneStepResult) -> Outcome:
    return muon_outcome(res)
