r"""How the scorecard measures a rate from a run, and turns an optimizer's final state into its step matrix.

**Rate of a run** (stateful rules, and every rule's "run" column). From the distances :math:`d_t` of one
population run (:func:`simulate.scorecard.track`, stopped once :math:`d_t < 10^{-10}`, far above round-off):

1. the *linear regime* starts at :math:`t_{\rm lin}`, the first step with :math:`d_t \le 10^{-3}` (there the
   quadratic term of the step is at most about :math:`10^{-3}` of the linear one);
2. the *window* is the last :math:`w = \min(W, t_{\rm end} - t_{\rm lin})` steps, split at its middle
   :math:`t_m`; the two halves' geometric-mean ratios are

   .. math::

       \rho_1 = (d_{t_m}/d_{t_s})^{1/(t_m - t_s)},\qquad \rho_2 = (d_{t_{\rm end}}/d_{t_m})^{1/(t_{\rm end}-t_m)};

3. the rate is :math:`\rho_2` (the later half, nearer the asymptote) and its error estimate is
   :math:`|\rho_2 - \rho_1|` (the window's spread: in a linear recursion the transient of the faster modes
   decays geometrically, so the earlier half is further from the limit than the later one), plus the
   round-off of the two distances it divides, :math:`\rho_2(\epsilon_m + \epsilon_{\rm end})/(t_{\rm end}-t_m)`
   with :math:`\epsilon_t = d\,u\,\kappa(G)/d_t` the relative error of :math:`d_t`
   (:func:`simulate.scorecard.subspace_sine` forms :math:`GG^{*\top}_\perp` to :math:`d\,u\lVert G\rVert`);
4. the run has a **linear rate** when the window has at least :data:`MIN_STEPS` steps and the error is at
   most :data:`LINEAR_SPREAD` of the rate gap :math:`|1-\rho_2|`; otherwise the measurement is reported with
   its reason (no linear regime within the run; floor reached too fast to measure, with the upper bound
   :math:`(d_{\rm end}/d_{t_s})^{1/w}`; or a spread too large for a linear rate, e.g. Muon's fixed-size steps).

**What R-LR-4 predicts for a window** (:func:`window_prediction`). A window rate is a finite-time
measurement: until the slowest visible mode dominates, the faster ones pull it below the asymptotic rate. The
prediction is therefore the same rule applied to R-LR-4's linear recursion
:math:`\theta_{t+1} - \theta^* = J(\theta_t - \theta^*)`, :math:`J = I - \eta CH`, started from the run's own
deviation at the window's first step :math:`s`. That deviation is read off the run without knowing
:math:`\theta^*`: in the linear regime :math:`\theta_{s+1} - \theta_s = -(I - J)(\theta_s - \theta^*)`, so
:math:`\theta_s - \theta^* = -(\eta CH)^+(\theta_{s+1} - \theta_s)` up to a gauge direction, which moves neither
the loss nor the subspace. The predicted distances are :math:`\sigma_{\max}(A^{-1}\delta G_tG^{*\top}_\perp)`
(the tangent of the deviation, :math:`A = GG^{*\top}`), and the window rule gives the predicted :math:`\rho_2`.
Evaluated twice, with :math:`C` and the Hessian at the run's last iterate (a solution: Gauss-Newton) and at the
window's first one (the exact Hessian there), the difference is the prediction's *drift*: how far the
preconditioner is from settled over the window, and the quadratic term of the step (which enters the per-step
ratio as the change of the step's Jacobian between the window's first iterate and the solution).

**Step matrix of a state** (R-LR-4, compare's side of "simulate exposes the final state"): the matrix
:math:`C` with which the optimizer's *next* step would map the vectorised gradient,
:math:`\theta_+ = \theta - \eta C\nabla L`, when it is linear in the gradient: SGD :math:`C = I`; Shampoo
with sums (``beta2=None``) :math:`C = R^{-1/4}\otimes L^{-1/4}` per layer from its accumulated factors
(:func:`simulate.matrix_optimizers.inverse_root`, the function its step uses); AdaGrad
:math:`C = \mathrm{diag}(1/(\sqrt a + \epsilon))`. Rules whose preconditioner is an exponential moving average
(Adam, SOAP, Shampoo with ``beta2``) forget, so nothing settles; Muon's step is not linear in the gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulate import matrix_optimizers as smo
from simulate import optimizers as so
from theory import linrep as tl

U = float(np.finfo(float).eps)
#: the linear regime starts at this distance.
LINEAR_BELOW = 1e-3
#: runs stop below this distance (round-off of the distance is ~1e-16 absolute).
STOP_BELOW = 1e-10
#: fewest steps in a window for a linear rate.
MIN_STEPS = 20
#: largest |rho_2 - rho_1| / |1 - rho_2| of a linear rate.
LINEAR_SPREAD = 0.1
#: a mode moves the subspace when its subspace weight exceeds VISIBLE_FACTOR x the point's offset from a solution
#: (at least VISIBLE_FLOOR): head-only modes have weight O(offset) (measured: 0.01-1 x offset).
VISIBLE_FACTOR = 100.0
VISIBLE_FLOOR = 1e-10
#: a run "ends at a solution" when ||(FG - M) Sigma^{1/2}|| <= this times ||M Sigma^{1/2}|| (R-LR-4 linearises there).
SOLUTION_RTOL = 1e-6


def residual(F: np.ndarray, G: np.ndarray, M: np.ndarray, Sigma_x: np.ndarray) -> float:
    """:math:`\\lVert(FG - M)\\Sigma_x^{1/2}\\rVert_F/\\lVert M\\Sigma_x^{1/2}\\rVert_F` (0 at a solution)."""
    E = F @ G - M
    return float(np.sqrt(max(np.einsum("ij,ij->", E @ Sigma_x, E), 0.0) / np.einsum("ij,ij->", M @ Sigma_x, M)))


@dataclass(frozen=True, kw_only=True)
class WindowRate:
    """A rate measured over a window of a run (module docstring).

    rate: :math:`\\rho_2` (``None`` when not measurable). error: :math:`|\\rho_2-\\rho_1|` + round-off.
    spread: :math:`|\\rho_2-\\rho_1|`. start, end: the window's steps. linear: a linear rate (rule 4).
    bound: an upper bound of the rate when the floor was reached in fewer than MIN_STEPS steps.
    note: why it is not a linear rate ("" when it is). d_start, d_end: the distances at the window's ends.
    """

    rate: float | None
    error: float | None
    spread: float | None
    start: int
    end: int
    linear: bool
    bound: float | None
    note: str
    d_start: float | None = None
    d_end: float | None = None


def window_rate(distance: np.ndarray, *, window: int, cond_G: float = 1.0, d: int = 1,
                linear_below: float = LINEAR_BELOW, min_steps: int = MIN_STEPS) -> WindowRate:
    """The rate rule of the module docstring on the distances ``distance`` (index = step).

    window: W, the most steps in the window. cond_G: :math:`\\kappa(G)` at the end, d: the input dimension
    (round-off of the distances). linear_below: where the linear regime starts. min_steps: fewest steps.
    """
    dist = np.asarray(distance, dtype=float)
    end = dist.size - 1
    hit = np.nonzero(dist <= linear_below)[0]
    if hit.size == 0:
        return WindowRate(rate=None, error=None, spread=None, start=end, end=end, linear=False, bound=None,
                          note=f"distance above {linear_below:g} after {end} steps: no linear regime")
    start = max(int(hit[0]), end - int(window))
    w = end - start
    if w < min_steps:
        bound = float((dist[end] / dist[start]) ** (1.0 / w)) if w >= 1 and dist[start] > 0 else 0.0
        return WindowRate(rate=None, error=None, spread=None, start=start, end=end, linear=False, bound=bound,
                          note=f"floor reached {w} step(s) into the linear regime: rate <= {bound:.3g}")
    mid = start + w // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = float((dist[mid] / dist[start]) ** (1.0 / (mid - start)))
        r2 = float((dist[end] / dist[mid]) ** (1.0 / (end - mid)))
    spread = abs(r2 - r1)
    eps = lambda x: d * U * cond_G / x if x > 0 else math.inf  # noqa: E731 - relative error of one distance
    error = spread + r2 * (eps(dist[mid]) + eps(dist[end])) / (end - mid)
    linear = bool(math.isfinite(error) and error <= LINEAR_SPREAD * abs(1.0 - r2))
    note = "" if linear else f"halves differ by {spread:.3g} (gap {abs(1.0 - r2):.3g}): no steady linear rate"
    return WindowRate(rate=r2, error=error, spread=spread, start=start, end=end, linear=linear, bound=None,
                      note=note, d_start=float(dist[start]), d_end=float(dist[end]))


def _vec(A: np.ndarray) -> np.ndarray:
    return A.reshape(-1, order="F")


def window_prediction(F: np.ndarray, G: np.ndarray, C_F: np.ndarray | None, C_G: np.ndarray | None,
                      Sigma_x: np.ndarray, G_star: np.ndarray, *, eta: float, step_F: np.ndarray, step_G: np.ndarray,
                      length: int, M: np.ndarray | None = None, offset: float = 0.0) -> tuple[float, float, float]:
    r"""(:math:`\rho_1, \rho_2`, asymptotic rate) of R-LR-4's linear recursion at the point ``(F, G)`` with step
    matrix ``(C_F, C_G)`` (``None``: identity) over a window of ``length`` steps, started from the deviation whose
    next step is ``(step_F, step_G)`` (:math:`\theta_{s+1} - \theta_s`); see the module docstring.

    In the modes of :func:`theory.linrep.joint_modes` (eigenvalues :math:`\mu_i`, dual basis): a step is
    :math:`-\eta\mu_i a_i` in mode i, so the deviation's coordinate is :math:`a_i = -(\text{dual}\,\Delta)_i/(\eta\mu_i)`;
    only the modes that move the subspace are kept (the gauge does not move it; the head-only modes move it not
    at all at the solution, so their slow, large coordinates would only leak in through the point's own
    :math:`O(\text{distance})` error); their tangents :math:`Z_i = A^{-1}\delta G_iG^{*\top}_\perp` are summed with
    weights :math:`a_i(1-\eta\mu_i)^t`, and the distance is :math:`\sigma_{\max}` of the sum.
    """
    d_y, k = F.shape
    d = G.shape[1]
    nF = d_y * k
    tol = min(0.5, max(VISIBLE_FACTOR * offset, VISIBLE_FLOOR))
    modes = tl.joint_modes(F, G, Sigma_x, G_star, C_F=C_F, C_G=C_G, M=M, visible_tol=tol)
    vis = np.nonzero(modes.visible & (modes.mu != 0.0))[0]
    step = np.concatenate([_vec(step_F), _vec(step_G)])
    a = -(modes.dual[vis] @ step) / (eta * modes.mu[vis])
    Gp = np.linalg.qr(G_star.T, mode="complete")[0][:, k:].T
    A = G @ G_star.T
    dG = modes.vectors[nF:, vis].T.reshape(-1, d, k).transpose(0, 2, 1)        # (m, k, d)
    Zi = np.linalg.solve(A[None], dG @ Gp.T)                                  # (m, k, d - k)
    t = np.arange(length + 1)
    lam = 1.0 - eta * modes.mu[vis]
    with np.errstate(over="ignore", under="ignore"):
        w = a[:, None] * np.sign(lam)[:, None] ** t * np.abs(lam)[:, None] ** t   # (m, length + 1)
    Zt = np.einsum("mt,mij->tij", w, Zi)
    dist = np.linalg.norm(Zt, ord=2, axis=(1, 2))
    mid = length // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = float((dist[mid] / dist[0]) ** (1.0 / mid))
        r2 = float((dist[length] / dist[mid]) ** (1.0 / (length - mid)))
    return r1, r2, modes.rate(eta)


def iterations_to(distance: np.ndarray, target: float) -> int:
    """First step with distance <= target (-1: never)."""
    hit = np.nonzero(np.asarray(distance) <= target)[0]
    return int(hit[0]) if hit.size else -1


def _vec_diag(D: np.ndarray) -> np.ndarray:
    return np.diag(D.reshape(-1, order="F"))


def step_matrices(opt: Any, state: Any) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    """``(C_F, C_G)`` of the optimizer's next step at ``state`` (module docstring; ``None, None``: identity),
    or ``None`` when the rule has no such fixed matrix (not linear in the gradient, or not settling)."""
    if isinstance(opt, so.SGD):
        return None, None
    if isinstance(opt, smo.Shampoo) and opt.beta2 is None and state is not None:
        r = state.ridge
        return (tl.kronecker_step_matrix(smo.inverse_root(state.left_F, r, 4), smo.inverse_root(state.right_F, r, 4)),
                tl.kronecker_step_matrix(smo.inverse_root(state.left_G, r, 4), smo.inverse_root(state.right_G, r, 4)))
    if isinstance(opt, smo.AdaGrad) and state is not None:
        return (_vec_diag(1.0 / (np.sqrt(state.acc_F) + opt.eps)), _vec_diag(1.0 / (np.sqrt(state.acc_G) + opt.eps)))
    return None


def settles(opt: Any) -> bool:
    """Whether :func:`step_matrices` gives the rule's (fixed or settling) step matrix."""
    return isinstance(opt, (so.SGD, smo.AdaGrad)) or (isinstance(opt, smo.Shampoo) and opt.beta2 is None)


def rlr1_pair(opt: Any) -> tuple[str, str] | None:
    """``(left, right)`` of R-LR-1 for a stateless eq. (5) rule with the least-squares head
    (eta_F = 1, Q_F = Sigma_z, no ridge), else ``None``: these are measured by the Jacobian of one step."""
    if isinstance(opt, so.LayerwisePreconditioned) and opt.eta_F == 1.0 and opt.head_right == "Sigma_z" \
            and opt.lam_G == 0.0:
        return opt.left, opt.right
    return None


#: why a rule has no theory line (shown in the scorecard): optimizer class name -> reason.
NO_THEORY = {
    "Adam": "measurements only: Adam's second moment is an exponential moving average that forgets "
            "(no settled preconditioner), and its step is entry-wise",
    "SOAP": "measurements only: SOAP's Adam step in the eigenbasis is entry-wise (not Kronecker) and its "
            "moving averages forget (no settled preconditioner)",
    "Muon": "measurements only: the orthogonalised step has no linear rate (its singular values are pushed to "
            "about 1 whatever the gradient's size)",
    "SecondOrder": "measurements only: no closed form in docs/theory.md",
    "AMGDBatchNorm": "measurements only: batch-norm needs batches (no population run)",
    "LayerwisePreconditioned": "measurements only: the head takes a gradient step (eta_F < 1), not the "
                               "least-squares head R-LR-1 assumes",
    "Shampoo": "measurements only: Shampoo with moving averages (beta2) forgets its factors",
}


def no_theory_reason(opt: Any) -> str:
    return NO_THEORY.get(type(opt).__name__, "measurements only: a rule docs/theory.md does not cover")
