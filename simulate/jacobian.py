r"""Local rates of the literal update rules: the Jacobian of one step on the Grassmannian.

Population setting (batch = population moments :math:`\Sigma_x`, :math:`\Sigma_{yx} = M\Sigma_x`),
rules that refit the head by least squares after every step (``eta_F = 1``, :math:`Q_F = \hat\Sigma_z`:
``amgd``, ``kfac_ls``, ``kfac_left``, ``kfac_right``, ``kfac_diag``, ``amgd_diag``), so that the state
of a run is :math:`G` alone and its head is :math:`F = \hat F_{LS}(G)`. Near the solution write
(Definition 3.2)

.. math::

    G = AG^* + BG^*_\perp,\qquad Z = A^{-1}B\in\mathbb R^{k\times(d-k)},

with :math:`G^*` row-orthonormal and :math:`G^*_\perp` an orthonormal basis of its complement.
Starting from :math:`A = I` (:math:`G = G^* + ZG^*_\perp`), one literal step
(:meth:`step` of :mod:`simulate.optimizers`, with the least-squares head of :math:`G` the rule's own
head update produced) gives :math:`G_+ = A_+G^* + B_+G^*_\perp` and :math:`Z_+ = A_+^{-1}B_+`:

.. math::

    Z_+ = J\,Z + Q(Z, Z) + C(Z, Z, Z) + O(\lVert Z\rVert^4),

and at :math:`Z = 0` the gauge block :math:`A` does not move :math:`Z_+` (every :math:`AG^*` is a fixed
point), so the eigenvalues of :math:`J` are the local rates of the run and its spectral radius is
the asymptotic contraction of the subspace distance. :func:`step_jacobian` measures :math:`J` by
central differences of the literal step,

.. math::

    J_h\,e_c = \frac{Z_+(hW_c) - Z_+(-hW_c)}{2h} = J e_c + h^2 C(W_c, W_c, W_c) + O(h^4) + R_c/h,

:math:`W_c` the basis matrices of :math:`\mathbb R^{k\times(d-k)}` (columns in ``Z.ravel()`` order),
:math:`R_c` the round-off of the two evaluations. Its error is estimated from the same differences at
``h/2``: for the :math:`h^2` term :math:`J_h - J_{h/2} = \tfrac34 h^2 C + O(h^4)`, so
:math:`|J_h - J| \approx \tfrac43|J_h - J_{h/2}|` (checked in the tests: the ratio of successive
differences is 4). The round-off level of one evaluation is measured at exact fixed points
(:math:`G = SG^*`, :math:`S` near :math:`I`, where :math:`Z_+ = 0` in exact arithmetic).
The even part gives the quadratic term for free: :math:`Q(W, W) = [Z_+(hW) + Z_+(-hW) - 2Z_+(0)]/(2h^2) + O(h^2)`.

Nothing here reads :mod:`theory`: the rates are those of the update rules as implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulate import _validate as V
from simulate.data import LinRepProblem
from simulate.linrep import _least_squares_head, _optimizer as _build
from simulate.optimizers import Batch, Optimizer

#: relative mismatch above which a rule is said not to refit its head by least squares.
_HEAD_RTOL = 1e-8
#: most gauge probes of :func:`step_jacobian` (each is one step; the round-off level is their maximum).
MAX_GAUGE_PROBES = 1000


def complement(G_star: np.ndarray) -> np.ndarray:
    """(d - k, d) orthonormal rows spanning the orthogonal complement of the rows of ``G_star``."""
    G_star = V.full_row_rank("complement", "G_star", G_star)
    k = G_star.shape[0]
    Q, _ = np.linalg.qr(G_star.T, mode="complete")
    return Q[:, k:].T.copy()


def _optimizer(func: str, algorithm: str | Optimizer, lr: float, options: dict[str, Any] | None) -> Optimizer:
    lr = V.scalar(func, "lr", lr, low=0.0, low_open=True)
    opt, name = _build(func, algorithm, lr, options)
    eta_F = getattr(opt, "eta_F", 1.0)
    head = getattr(opt, "head_right", "Sigma_z")
    if not (eta_F == 1.0 and head == "Sigma_z"):
        raise V.fail(func, "algorithm", "a rule that refits the head by least squares (eta_F = 1, Q_F = Sigma_z), "
                     "so that its state is G alone", f"{name!r} with eta_F = {eta_F!r}, head_right = {head!r}")
    return opt


def _problem(func: str, problem) -> LinRepProblem:
    if not isinstance(problem, LinRepProblem):
        raise V.fail(func, "problem", "a simulate.data.LinRepProblem", V.describe(problem))
    Gs = problem.G_star
    if np.abs(Gs @ Gs.T - np.eye(Gs.shape[0])).max() > 1e-12:
        raise V.fail(func, "problem", "a problem whose G_star has orthonormal rows", "non-orthonormal rows")
    return problem


class _Stepper:
    """One literal population step in tangent coordinates, with the head check."""

    def __init__(self, problem: LinRepProblem, opt: Optimizer, func: str):
        self.p, self.opt, self.func = problem, opt, func
        self.batch = Batch._population(problem.Sigma_x, problem.M, problem.noise_std)
        Q, _ = np.linalg.qr(problem.G_star.T, mode="complete")
        self.Gp = Q[:, problem.k:].T.copy()

    def from_G(self, G: np.ndarray, *, check_head: bool = True) -> np.ndarray:
        F = _least_squares_head(G, self.batch)
        state = self.opt.init(F, G)
        F1, G1, _ = self.opt.step(F, G, self.batch, state)
        F_ls = _least_squares_head(G1, self.batch) if check_head else F1
        if np.abs(F1 - F_ls).max() > _HEAD_RTOL * max(np.abs(F_ls).max(), 1.0):
            raise V.fail(self.func, "algorithm", "a rule that refits the head by least squares (eta_F = 1, "
                         "Q_F = Sigma_z), so that its state is G alone",
                         f"{getattr(self.opt, 'name', type(self.opt).__name__)!r} (head off by "
                         f"{np.abs(F1 - F_ls).max():.2e})")
        Gs = self.p.G_star
        return np.linalg.solve(G1 @ Gs.T, G1 @ self.Gp.T)

    def __call__(self, Z: np.ndarray, *, check_head: bool = True) -> np.ndarray:
        return self.from_G(self.p.G_star + Z @ self.Gp, check_head=check_head)


def tangent_start(problem: LinRepProblem, Z: np.ndarray) -> np.ndarray:
    r"""The representation :math:`G = G^* + ZG^*_\perp` (:math:`A = I`) with tangent ``Z`` (k, d - k),
    :math:`G^*_\perp` = :func:`complement` of ``problem.G_star``; its principal angles have
    :math:`\tan\theta_i = \sigma_i(Z)`."""
    f = "tangent_start"
    problem = _problem(f, problem)
    Z = V.matrix(f, "Z", Z, shape=(problem.k, problem.d_x - problem.k))
    return problem.G_star + Z @ complement(problem.G_star)


def tangent_step(problem: LinRepProblem, algorithm: str | Optimizer, Z: np.ndarray, *, lr: float,
                 options: dict[str, Any] | None = None) -> np.ndarray:
    r""":math:`Z_+` after one literal population step of ``algorithm`` from :math:`G = G^* + ZG^*_\perp`
    with the least-squares head (see the module docstring).

    problem: the task (``G_star`` row-orthonormal). algorithm: a registered name or an optimizer that
    refits its head by least squares. Z: (k, d - k) tangent. lr > 0: step size. options: further
    optimizer options.
    """
    f = "tangent_step"
    problem = _problem(f, problem)
    Z = V.matrix(f, "Z", Z, shape=(problem.k, problem.d_x - problem.k))
    return _Stepper(problem, _optimizer(f, algorithm, lr, options), f)(Z)


@dataclass(frozen=True, kw_only=True)
class StepJacobian:
    r"""Central-difference Jacobian of one literal step at the solution (see the module docstring).

    J: (N, N), N = k (d - k), at step ``h``; J_half: the same at ``h / 2``. Columns and rows index
    ``Z.ravel()``. quadratic: (N,) :math:`\lVert Q(W_c, W_c)\rVert_F` of each basis direction.
    roundoff: the largest entry of :math:`Z_+` measured at exact fixed points (round-off of one
    evaluation). fixed_point_residual: :math:`\max|Z_+(0)|`. shape: (k, d - k) of Z.
    """

    J: np.ndarray
    J_half: np.ndarray
    h: float
    quadratic: np.ndarray
    roundoff: float
    fixed_point_residual: float
    shape: tuple[int, int]

    @property
    def n(self) -> int:
        """Dimension N = k (d - k) of the tangent space."""
        return self.J.shape[0]

    @staticmethod
    def _spectrum(J: np.ndarray) -> np.ndarray:
        lam = np.linalg.eigvals(J)
        return lam[np.lexsort((lam.imag, lam.real))]

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of ``J`` sorted by real part (ascending; complex dtype)."""
        return self._spectrum(self.J)

    @property
    def eigenvalues_half(self) -> np.ndarray:
        """Eigenvalues of ``J_half``, sorted like :attr:`eigenvalues`."""
        return self._spectrum(self.J_half)

    @property
    def spectral_radius(self) -> float:
        return float(np.abs(self.eigenvalues).max())

    @property
    def spectral_radius_half(self) -> float:
        return float(np.abs(self.eigenvalues_half).max())

    @property
    def difference_spectral_radius(self) -> float:
        r""":math:`|\rho(J_h) - \rho(J_{h/2})|`; the :math:`h^2` model makes :math:`|\rho(J_h) - \rho(J)|`
        :math:`\tfrac43` of it (plus round-off, :attr:`roundoff_matrix_norm`)."""
        return float(abs(self.spectral_radius - self.spectral_radius_half))

    @property
    def difference_eigenvalues(self) -> float:
        r""":math:`\max_i|\lambda_i(J_h) - \lambda_i(J_{h/2})|` over the sorted spectra (the :math:`h^2` model
        makes the error of each sorted eigenvalue :math:`\tfrac43` of its difference)."""
        return float(np.abs(self.eigenvalues - self.eigenvalues_half).max())

    @property
    def difference_norm(self) -> float:
        r""":math:`\lVert J_h - J_{h/2}\rVert_2` (the :math:`h^2` model makes :math:`\lVert J_h - J\rVert_2`
        :math:`\tfrac43` of it, plus round-off)."""
        return float(np.linalg.norm(self.J - self.J_half, 2))

    @property
    def roundoff_matrix_norm(self) -> float:
        r"""Bound on :math:`\lVert R\rVert_2` of the round-off part of ``J``: every entry is at most
        ``roundoff / h`` (two evaluations, each off by at most ``roundoff``, over ``2h``), and
        :math:`\lVert R\rVert_2 \le \lVert R\rVert_F \le N\max|R_{ij}|`."""
        return float(self.n * self.roundoff / self.h)

    def mode(self, which: int = 0) -> "Mode":
        """The eigenpair of ``J`` of the ``which``-th largest modulus (0: the slowest mode), with the data
        needed to bound its error (:class:`Mode`). which: an integer in [0, n - 1]."""
        which = V.integer("StepJacobian.mode", "which", which, low=0, high=self.n - 1)
        out = []
        for J in (self.J, self.J_half):
            lam, Vec = np.linalg.eig(J)
            i = np.argsort(-np.abs(lam), kind="stable")[which]
            v = Vec[:, i].real.reshape(self.shape)
            v = v / np.linalg.svd(v, compute_uv=False)[0]
            j = np.argmax(np.abs(v))
            out.append((lam[i], v * np.sign(v.flat[j])))
        (lam, v), (_, v_half) = out
        residual = float(np.linalg.norm(self.J @ v.ravel() - lam.real * v.ravel()))
        return Mode(eigenvalue=complex(lam), tangent=v, difference=float(np.linalg.norm(v - v_half)),
                    residual=residual)


@dataclass(frozen=True, kw_only=True)
class Mode:
    r"""One eigenpair of a measured :class:`StepJacobian`.

    eigenvalue: of :math:`J_h`. tangent: the real part of its eigenvector as a (k, d - k) tangent,
    scaled to :math:`\sigma_{\max} = 1` (sign: largest entry positive). difference: Frobenius distance to
    the matching eigenvector of :math:`J_{h/2}` (same scaling and sign; the :math:`h^2` model makes the
    eigenvector's error :math:`\tfrac43` of it when the eigenvalue is simple). residual:
    :math:`\lVert J_hv - \mathrm{Re}(\lambda)v\rVert_F`.
    """

    eigenvalue: complex
    tangent: np.ndarray
    difference: float
    residual: float


def step_jacobian(problem: LinRepProblem, algorithm: str | Optimizer, *, lr: float, h: float = 1e-3,
                  options: dict[str, Any] | None = None, gauge_probes: int = 4,
                  rng: np.random.Generator | None = None) -> StepJacobian:
    r"""Jacobian of one literal population step of ``algorithm`` at the solution :math:`G = G^*`
    (:class:`StepJacobian`), by central differences at ``h`` and ``h / 2``.

    problem: the task (``G_star`` row-orthonormal; the population moments of ``problem`` are the batch).
    algorithm: a registered name (``"amgd"``, ``"kfac_ls"``, ``"kfac_left"``, ``"kfac_diag"``, ...) or an
    optimizer; it must refit its head by least squares (checked at every evaluation). lr > 0: step size.
    h in (0, 0.1]: difference step (the error is :math:`O(h^2)` truncation plus :math:`O(u/h)` round-off;
    ``1e-3`` keeps round-off far below truncation up to :math:`\kappa(\Sigma_x) = 10^4`).
    gauge_probes >= 1: fixed points :math:`SG^*` evaluated to measure the round-off level
    (:math:`S = I` and ``gauge_probes - 1`` draws :math:`I + 10^{-2}N(0, 1)/\sqrt k` from ``rng``;
    default generator seeded 0: the probes are part of the measurement, not of the experiment).
    """
    f = "step_jacobian"
    problem = _problem(f, problem)
    h = V.scalar(f, "h", h, low=0.0, high=0.1, low_open=True)
    gauge_probes = V.integer(f, "gauge_probes", gauge_probes, low=1, high=MAX_GAUGE_PROBES)
    rng = V.generator(f, "rng", rng, optional=True)
    if rng is None:
        rng = np.random.default_rng(0)
    step = _Stepper(problem, _optimizer(f, algorithm, lr, options), f)
    k, m = problem.k, problem.d_x - problem.k
    n = k * m
    z0 = step(np.zeros((k, m)))
    roundoff = float(np.abs(z0).max())
    for _ in range(gauge_probes - 1):
        S = np.eye(k) + 1e-2 * rng.standard_normal((k, k)) / np.sqrt(k)
        roundoff = max(roundoff, float(np.abs(step.from_G(S @ problem.G_star)).max()))
    roundoff = max(roundoff, float(np.finfo(float).eps))
    out = []
    quad = np.empty(n)
    for hh in (h, 0.5 * h):
        J = np.empty((n, n))
        for c in range(n):
            W = np.zeros(n)
            W[c] = hh
            W = W.reshape(k, m)
            first = c == 0  # the head check once per difference step (it holds or fails for every point)
            zp, zm = step(W, check_head=first), step(-W, check_head=first)
            J[:, c] = (zp - zm).ravel() / (2.0 * hh)
            if hh == h:
                quad[c] = np.linalg.norm(zp + zm - 2.0 * z0) / (2.0 * hh * hh)
        out.append(J)
    return StepJacobian(J=out[0], J_half=out[1], h=float(h), quadratic=quad, roundoff=roundoff,
                        fixed_point_residual=float(np.abs(z0).max()), shape=(k, m))


def quadratic_term(problem: LinRepProblem, algorithm: str | Optimizer, Z: np.ndarray, *, lr: float,
                   h: float = 1e-3, options: dict[str, Any] | None = None) -> float:
    r""":math:`\lVert Q(Z, Z)\rVert_F`, the quadratic term of one literal step along the tangent ``Z``
    (module docstring), by the second difference
    :math:`[Z_+(hZ) + Z_+(-hZ) - 2Z_+(0)]/(2h^2)` (error :math:`O(h^2)`).

    problem, algorithm, lr, options: as :func:`step_jacobian`. Z: (k, d - k) direction. h in (0, 0.1].
    """
    f = "quadratic_term"
    problem = _problem(f, problem)
    Z = V.matrix(f, "Z", Z, shape=(problem.k, problem.d_x - problem.k))
    h = V.scalar(f, "h", h, low=0.0, high=0.1, low_open=True)
    step = _Stepper(problem, _optimizer(f, algorithm, lr, options), f)
    z0 = step(np.zeros_like(Z))
    return float(np.linalg.norm(step(h * Z) + step(-h * Z) - 2.0 * z0) / (2.0 * h * h))
