r"""Linear representation learning: closed forms (docs/theory.md sections 2 and 3.1).

Model :math:`y = F^*G^*x + \varepsilon`, network :math:`f(x) = FGx` with
:math:`F\in\mathbb R^{d_Y\times k}`, :math:`G\in\mathbb R^{k\times d_X}`, batch loss
:math:`\hat L = \frac1{2n}\sum_i\lVert y_i - FGx_i\rVert^2`.

**Lemma 3.1** (KFAC steps are exponential moving averages of least-squares solutions; statement
reconstructed [R], verified [V]):

.. math::

    F_+ = (1-\eta_F)F + \eta_F\,\hat\Sigma_{yz}\hat\Sigma_z^{-1},\qquad
    G_+ = (1-\eta_G)G + \eta_G\big[(F^\top F)^{-1}F^\top\hat\Sigma_{yx} + \lambda_G G\big]
          (\hat\Sigma_x + \lambda_G I)^{-1}.

**Definition 3.2** (subspace distance): :math:`\mathrm{dist}(G, G^*) = \lVert P^\perp_{G^*}\bar G^\top\rVert`,
:math:`\bar G = (GG^\top)^{-1/2}G`, i.e. :math:`\sin\theta_{\max}` of the principal angles.

**R-LR-1** [R] (local rate of :math:`G_+ = G - \eta P^{-1}\nabla_G L\,Q^{-1}` with the least-squares
head): :math:`\rho = \max_{i,j}|1 - \eta\,\ell_i m_j|`, :math:`\ell = \mathrm{eig}(P^{-1}F^\top F)`,
:math:`m = \mathrm{eig}(\Sigma_{22\cdot1}(Q^{-1})_{22})`; KFAC (:math:`P = F^\top F, Q = \Sigma_x`) gives
:math:`|1-\eta|`; AMGD's best rate is :math:`(\kappa_{\rm eff}-1)/(\kappa_{\rm eff}+1)` with
:math:`\kappa_{\rm eff} = \kappa(F)^2\kappa(\Sigma_{22\cdot1})`.

Any fixed SPD pair :math:`(P, Q)`: :func:`kronecker_rate_factors`, :func:`kronecker_local_rate`.

**R-LR-4** [R] (simultaneous steps on both layers with a fixed, or settled, preconditioner :math:`C`):
:math:`\partial\theta_+/\partial\theta = I - \eta\,CH` at a solution, :math:`H` the Gauss-Newton matrix; the
subspace distance decays at :math:`\max|1-\eta\mu_i|` over the eigenvalues of :math:`CH` whose modes move the
row space of :math:`G` (:func:`joint_modes`, :func:`joint_local_rate`).

**R-LR-2** [R] (whitened KFAC recursion, any distance):
:math:`\tan\tilde\theta \mapsto (1-\eta)\tan\tilde\theta / (1 + \eta\tan^2\tilde\theta)`.

**R-LR-3** [R] (KFAC floor with fresh Gaussian batches):

.. math::

    \mathbb E\lVert Z\rVert_F^2 \approx \frac{\eta}{2-\eta}\,\sigma_\varepsilon^2\,
    \lVert F^{*+}\rVert_F^2\,\frac{\mathrm{tr}(G^*_\perp\Sigma_x^{-1}G_\perp^{*\top})}{n - d_X - 1}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from theory import _validate as V

LEFT = ("identity", "FtF")
RIGHT = ("identity", "Sigma_x", "diag")


# --------------------------------------------------------------------------- Lemma 3.1
def least_squares_head(Sigma_z: np.ndarray, Sigma_yz: np.ndarray) -> np.ndarray:
    r"""Least-squares head :math:`\hat F_{LS} = \hat\Sigma_{yz}\hat\Sigma_z^{-1}` (Lemma 3.1).

    Sigma_z: (k, k) SPD second moment of the hidden features :math:`z = \sigma(Gx)`.
    Sigma_yz: (d_y, k) cross moment :math:`\hat{\mathbb E}[y z^\top]`.
    """
    return _ls_head("least_squares_head", Sigma_z, Sigma_yz)


def _ls_head(f: str, Sigma_z, Sigma_yz) -> np.ndarray:
    Sigma_z = V.spd(f, "Sigma_z", Sigma_z)
    Sigma_yz = V.matrix(f, "Sigma_yz", Sigma_yz, shape=(None, Sigma_z.shape[0]))
    return sla.solve(Sigma_z, Sigma_yz.T, assume_a="pos").T


def ema_head(F: np.ndarray, Sigma_z: np.ndarray, Sigma_yz: np.ndarray, *, eta_F: float) -> np.ndarray:
    r"""KFAC head step as an EMA: :math:`(1-\eta_F)F + \eta_F\hat F_{LS}` (Lemma 3.1, [R] statement).

    F: (d_y, k) current head. Sigma_z, Sigma_yz: moments of the features of the *new* G.
    eta_F: head step size in (0, 1].
    """
    f = "ema_head"
    eta_F = V.scalar(f, "eta_F", eta_F, low=0.0, high=1.0, low_open=True)
    F_ls = _ls_head(f, Sigma_z, Sigma_yz)
    F = V.matrix(f, "F", F, shape=F_ls.shape)
    return (1.0 - eta_F) * F + eta_F * F_ls


def ema_representation(
    G: np.ndarray, F: np.ndarray, Sigma_x: np.ndarray, Sigma_yx: np.ndarray, *, eta_G: float, lam_G: float = 0.0
) -> np.ndarray:
    r"""KFAC representation step in EMA form (Lemma 3.1, [R] statement, linear features):

    .. math::

        G_+ = (1-\eta_G)G + \eta_G\big[(F^\top F)^{-1}F^\top\hat\Sigma_{yx} + \lambda_G G\big]
              (\hat\Sigma_x + \lambda_G I)^{-1}.

    G: (k, d_x) representation. F: (d_y, k) head of full column rank.
    Sigma_x: (d_x, d_x) SPD input second moment (positive semi-definite allowed when lam_G > 0; then
    :math:`\Sigma_x+\lambda_GI` must pass the positive-definiteness test of :mod:`theory._validate`).
    Sigma_yx: (d_y, d_x) cross moment. eta_G in (0, 1]. lam_G >= 0: ridge damping.
    """
    f = "ema_representation"
    eta_G = V.scalar(f, "eta_G", eta_G, low=0.0, high=1.0, low_open=True)
    lam_G = V.scalar(f, "lam_G", lam_G, low=0.0)
    G = V.full_row_rank(f, "G", G)
    k, d = G.shape
    F = V.full_column_rank(f, "F", F, cols=k)
    Sigma_x = V.spd(f, "Sigma_x", Sigma_x, d=d, shift=lam_G)
    A = Sigma_x + lam_G * np.eye(d)
    Sigma_yx = V.matrix(f, "Sigma_yx", Sigma_yx, shape=(F.shape[0], d))
    FtF = F.T @ F
    B = sla.solve(FtF, F.T @ Sigma_yx, assume_a="pos") + lam_G * G
    G_ls = sla.solve(A, B.T, assume_a="pos").T
    return (1.0 - eta_G) * G + eta_G * G_ls


# --------------------------------------------------------------------------- Definition 3.2
def _orthonormal_rows(func: str, name: str, G_star: np.ndarray, d: int) -> np.ndarray:
    G_star = V.full_row_rank(func, name, G_star, cols=d)
    # accept any basis of the subspace; re-orthonormalise (exact when rows are already orthonormal)
    U, _, Vt = np.linalg.svd(G_star, full_matrices=False)
    return U @ Vt if np.abs(G_star @ G_star.T - np.eye(G_star.shape[0])).max() > 1e-12 else G_star


def _complement(G_star: np.ndarray) -> np.ndarray:
    """(d - k, d) orthonormal rows spanning the orthogonal complement of the rows of G_star."""
    k = G_star.shape[0]
    Q, _ = np.linalg.qr(G_star.T, mode="complete")
    return Q[:, k:].T


def subspace_distance(G: np.ndarray, G_star: np.ndarray, *, norm: str = "op") -> float:
    r"""Definition 3.2: :math:`\lVert P^\perp_{G^*}\bar G^\top\rVert` with :math:`\bar G = (GG^\top)^{-1/2}G`.

    G: (k, d) matrix of rank k. G_star: (k', d) with orthonormal rows (any full-rank basis is
    orthonormalised). norm: ``"op"`` gives :math:`\sin\theta_{\max}`, ``"fro"`` gives
    :math:`\sqrt{\sum_i\sin^2\theta_i}`.

    :math:`\bar G^\top = VU^\top` from the SVD :math:`G = USV^\top`, so the distance is the norm of
    :math:`V - G^{*\top}(G^*V)`: a direct projection, accurate to ~1e-16 absolute even for tiny
    distances (unlike :math:`\sqrt{1-\cos^2\theta}`). Invariant under :math:`G\mapsto SG`.
    """
    f = "subspace_distance"
    V.choice(f, "norm", norm, ("op", "fro"))
    G = V.full_row_rank(f, "G", G)
    Gs = _orthonormal_rows(f, "G_star", G_star, G.shape[1])
    _, _, Vt = np.linalg.svd(G, full_matrices=False)
    Vg = Vt.T
    R = Vg - Gs.T @ (Gs @ Vg)
    s = np.linalg.svd(R, compute_uv=False)
    return float(s[0] if norm == "op" else np.sqrt(np.sum(s**2)))


def tangent_matrix(G: np.ndarray, G_star: np.ndarray) -> np.ndarray:
    r"""Gauge-invariant tangent :math:`Z = A^{-1}B` of :math:`G = AG^* + BG^*_\perp` (Def. 3.2).

    Its singular values are :math:`\tan\theta_i`. G: (k, d) with ``G @ G_star.T`` invertible.
    """
    f = "tangent_matrix"
    G = V.full_row_rank(f, "G", G)
    Gs = _orthonormal_rows(f, "G_star", G_star, G.shape[1])
    if Gs.shape[0] != G.shape[0]:
        raise V.fail(f, "G_star", f"with k = {G.shape[0]} rows", f"{Gs.shape[0]} rows")
    A = G @ Gs.T
    sa = np.linalg.svd(A, compute_uv=False)
    if not sa[-1] > A.shape[0] * V.EPS * np.linalg.norm(G, 2):
        raise V.fail(f, "G", "a matrix with G @ G_star.T invertible (no principal angle of 90 degrees)",
                     f"smallest singular value of G @ G_star.T {sa[-1]:.3e} (largest of G "
                     f"{np.linalg.norm(G, 2):.3e})")
    B = G @ _complement(Gs).T
    return np.linalg.solve(A, B)


# --------------------------------------------------------------------------- R-LR-1
def _schur_blocks(Sigma_x: np.ndarray, Gs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complement basis and the Schur complement Sigma_22.1 = ((Sigma_x^{-1})_22)^{-1}."""
    Gp = _complement(Gs)
    S11 = Gs @ Sigma_x @ Gs.T
    S12 = Gs @ Sigma_x @ Gp.T
    S22 = Gp @ Sigma_x @ Gp.T
    S221 = S22 - S12.T @ sla.solve(S11, S12, assume_a="pos")
    return Gp, 0.5 * (S221 + S221.T)


def _spd_product_eigs(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Eigenvalues of A @ B for SPD A, B (real, positive): eig of L^T A L with B = L L^T."""
    L = np.linalg.cholesky(B)
    return np.linalg.eigvalsh(L.T @ A @ L)


def local_rate_factors(
    F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *, left: str, right: str
) -> tuple[np.ndarray, np.ndarray]:
    r"""R-LR-1's factors :math:`\ell = \mathrm{eig}(P^{-1}F^\top F)` and
    :math:`m = \mathrm{eig}(\Sigma_{22\cdot1}(Q^{-1})_{22})` (both ascending).

    left: ``"identity"`` (:math:`P = I`) or ``"FtF"`` (:math:`P = F^\top F`).
    right: ``"identity"`` (:math:`Q = I`), ``"Sigma_x"`` or ``"diag"`` (:math:`Q = \mathrm{diag}\Sigma_x`).
    """
    return _rate_factors("local_rate_factors", F, Sigma_x, G_star, left, right)


def _task(f: str, F, Sigma_x, G_star) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """The validated task of R-LR-1 (F, Sigma_x, orthonormal G*, d, k), errors named for ``f``."""
    Sigma_x = V.spd(f, "Sigma_x", Sigma_x)
    d = Sigma_x.shape[0]
    Gs = _orthonormal_rows(f, "G_star", G_star, d)
    k = Gs.shape[0]
    if k >= d:
        raise V.fail(f, "G_star", f"a (k, d) matrix with k < d = {d} (G* needs a complement)", f"k = {k}")
    return V.full_column_rank(f, "F", F, cols=k), Sigma_x, Gs, d, k


def _rate_factors(f: str, F, Sigma_x, G_star, left, right) -> tuple[np.ndarray, np.ndarray]:
    V.choice(f, "left", left, LEFT)
    V.choice(f, "right", right, RIGHT)
    F, Sigma_x, Gs, d, k = _task(f, F, Sigma_x, G_star)
    FtF = F.T @ F
    ell = np.ones(k) if left == "FtF" else np.linalg.eigvalsh(FtF)
    Gp, S221 = _schur_blocks(Sigma_x, Gs)
    if right == "Sigma_x":
        m = np.ones(d - k)  # (Sigma^{-1})_22 = Sigma_22.1^{-1} exactly
    else:
        qinv = np.ones(d) if right == "identity" else 1.0 / np.diag(Sigma_x)
        Qinv22 = (Gp * qinv) @ Gp.T
        m = _spd_product_eigs(S221, 0.5 * (Qinv22 + Qinv22.T))
    return ell, m


def local_rate(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *, eta: float, left: str, right: str) -> float:
    r"""R-LR-1 [R]: local contraction :math:`\rho = \max_{i,j}|1 - \eta\,\ell_i m_j|` of the subspace
    distance under :math:`G_+ = G - \eta P^{-1}\nabla_G L\,Q^{-1}` with the least-squares head.

    F: (d_y, k) head (the least-squares head near the solution, about F*). Sigma_x: (d, d) SPD.
    G_star: (k, d) row-orthonormal. eta > 0: step size. left/right: see :func:`local_rate_factors`.
    """
    eta = V.scalar("local_rate", "eta", eta, low=0.0, low_open=True)
    ell, m = _rate_factors("local_rate", F, Sigma_x, G_star, left, right)
    prod = np.outer(ell, m)
    return float(np.max(np.abs(1.0 - eta * prod)))


def kfac_rate(eta: float) -> float:
    r"""R-LR-1: KFAC's local rate :math:`|1-\eta|`, free of condition numbers."""
    eta = V.scalar("kfac_rate", "eta", eta, low=0.0, high=2.0, low_open=True, high_open=True)
    return abs(1.0 - eta)


def amgd_effective_condition(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray) -> float:
    r""":math:`\kappa_{\rm eff} = \kappa(F)^2\,\kappa(\Sigma_{22\cdot1})` (R-LR-1)."""
    ell, m = _rate_factors("amgd_effective_condition", F, Sigma_x, G_star, "identity", "identity")
    return float(ell[-1] * m[-1] / (ell[0] * m[0]))


def amgd_optimal_eta(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray) -> float:
    r"""AMGD's best step :math:`2/(\ell_{\max}m_{\max} + \ell_{\min}m_{\min})` (R-LR-1)."""
    ell, m = _rate_factors("amgd_optimal_eta", F, Sigma_x, G_star, "identity", "identity")
    return float(2.0 / (ell[-1] * m[-1] + ell[0] * m[0]))


def amgd_stability_limit(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray) -> float:
    r"""Largest stable AMGD step :math:`2/(\sigma_{\max}(F)^2\mu_{\max}(\Sigma_{22\cdot1}))` (R-LR-1)."""
    ell, m = _rate_factors("amgd_stability_limit", F, Sigma_x, G_star, "identity", "identity")
    return float(2.0 / (ell[-1] * m[-1]))


def amgd_optimal_rate(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray) -> float:
    r"""R-LR-1 [R]: AMGD's best local rate :math:`(\kappa_{\rm eff}-1)/(\kappa_{\rm eff}+1)`; for every
    :math:`\eta` the rate is at least this (the lower bound behind SGD's suboptimality).

    F: (d_y, k) head. Sigma_x: (d, d) SPD. G_star: (k, d) row-orthonormal.
    """
    ell, m = _rate_factors("amgd_optimal_rate", F, Sigma_x, G_star, "identity", "identity")
    ke = float(ell[-1] * m[-1] / (ell[0] * m[0]))
    return float((ke - 1.0) / (ke + 1.0))


# --------------------------------------------------------------------------- R-LR-2
def kfac_whitened_step(tangents: np.ndarray, *, eta: float) -> np.ndarray:
    r"""R-LR-2 [R]: one population KFAC step on the whitened principal-angle tangents,

    .. math:: \tan\tilde\theta \mapsto \frac{(1-\eta)\tan\tilde\theta}{1 + \eta\tan^2\tilde\theta},

    exact at any distance, independent of :math:`\Sigma_x` and :math:`F^*`.
    tangents: array (any shape) of :math:`\tan\tilde\theta_i \ge 0`. eta in (0, 1].
    """
    f = "kfac_whitened_step"
    eta = V.scalar(f, "eta", eta, low=0.0, high=1.0, low_open=True)
    t = V.array(f, "tangents", tangents)
    if np.any(t < 0):
        raise V.fail(f, "tangents", "non-negative (tangents of principal angles)", f"minimum {t.min():.3g}")
    return (1.0 - eta) * t / (1.0 + eta * t**2)


# --------------------------------------------------------------------------- R-LR-3
def kfac_noise_floor(
    F_star: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *, eta: float, noise_std: float, n: int
) -> float:
    r"""R-LR-3 [R]: stationary :math:`\mathbb E\lVert Z\rVert_F^2 = \mathbb E\sum_i\tan^2\theta_i` of KFAC
    with fresh Gaussian batches of size ``n`` and :math:`\eta_F = \eta_G = \eta`:

    .. math::

        \frac{\eta}{2-\eta}\,\sigma_\varepsilon^2\,\lVert F^{*+}\rVert_F^2\,
        \frac{\mathrm{tr}(G^*_\perp\Sigma_x^{-1}G_\perp^{*\top})}{n - d_X - 1}.

    F_star: (d_y, k) full column rank. Sigma_x: (d, d) SPD. G_star: (k, d) row-orthonormal.
    eta in (0, 1]. noise_std >= 0. n: an integer > d + 1.
    """
    f = "kfac_noise_floor"
    eta = V.scalar(f, "eta", eta, low=0.0, high=1.0, low_open=True)
    noise_std = V.scalar(f, "noise_std", noise_std, low=0.0)
    Sigma_x = V.spd(f, "Sigma_x", Sigma_x)
    d = Sigma_x.shape[0]
    n = V.integer(f, "n", n, low=d + 2, why=f" (n > d_x + 1 = {d + 1})")
    Gs = _orthonormal_rows(f, "G_star", G_star, d)
    F_star = V.full_column_rank(f, "F_star", F_star, cols=Gs.shape[0])
    s = np.linalg.svd(F_star, compute_uv=False)
    pinv_fro2 = float(np.sum(1.0 / s**2))
    Gp = _complement(Gs)
    L = np.linalg.cholesky(Sigma_x)
    W = sla.solve_triangular(L, Gp.T, lower=True)  # tr(Gp Sigma^{-1} Gp^T) = ||L^{-1} Gp^T||_F^2
    tr = float(np.sum(W**2))
    return eta / (2.0 - eta) * noise_std**2 * pinv_fro2 * tr / (n - d - 1)


# --------------------------------------------------------------------------- R-LR-1 at any fixed Kronecker pair
def kronecker_rate_factors(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *, P: np.ndarray,
                           Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""R-LR-1's factors for any fixed SPD pair :math:`(P, Q)` (both ascending):

    .. math::

        \ell = \mathrm{eig}(P^{-1}F^\top F),\qquad m = \mathrm{eig}\big(\Sigma_{22\cdot1}(Q^{-1})_{22}\big),
        \quad (Q^{-1})_{22} = G^*_\perp Q^{-1}G^{*\top}_\perp,

    of the step :math:`G_+ = G - \eta P^{-1}\nabla_GL\,Q^{-1}` with the least-squares head
    (docs/theory.md, R-LR-1). :func:`local_rate_factors` is the case of the named pairs.

    F: (d_y, k) head of full column rank. Sigma_x: (d, d) SPD. G_star: (k, d), k < d, row-orthonormal (any
    basis is orthonormalised). P: (k, k) SPD. Q: (d, d) SPD.
    """
    return _kron_factors("kronecker_rate_factors", F, Sigma_x, G_star, P, Q)


def _kron_factors(f: str, F, Sigma_x, G_star, P, Q) -> tuple[np.ndarray, np.ndarray]:
    F, Sigma_x, Gs, d, k = _task(f, F, Sigma_x, G_star)
    P = V.spd(f, "P", P, d=k)
    Q = V.spd(f, "Q", Q, d=d)
    Lp = np.linalg.cholesky(0.5 * (P + P.T))
    W = sla.solve_triangular(Lp, F.T @ F, lower=True)            # L^{-1} F^T F
    ell = np.linalg.eigvalsh(sla.solve_triangular(Lp, W.T, lower=True))  # L^{-1} F^T F L^{-T}, similar to P^{-1} F^T F
    Gp, S221 = _schur_blocks(Sigma_x, Gs)
    Qinv22 = Gp @ sla.cho_solve(sla.cho_factor(0.5 * (Q + Q.T), lower=True), Gp.T)
    m = _spd_product_eigs(S221, 0.5 * (Qinv22 + Qinv22.T))
    return ell, m


def kronecker_local_rate(F: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *, P: np.ndarray, Q: np.ndarray,
                         eta: float) -> float:
    r"""R-LR-1 [R] at any fixed SPD pair: :math:`\rho = \max_{i,j}|1 - \eta\,\ell_im_j|` with
    :math:`\ell, m` from :func:`kronecker_rate_factors`. eta > 0; other arguments as there."""
    f = "kronecker_local_rate"
    eta = V.scalar(f, "eta", eta, low=0.0, low_open=True)
    ell, m = _kron_factors(f, F, Sigma_x, G_star, P, Q)
    return float(np.max(np.abs(1.0 - eta * np.outer(ell, m))))


# --------------------------------------------------------------------------- R-LR-4: both layers, fixed preconditioner
def kronecker_step_matrix(P_inv: np.ndarray, Q_inv: np.ndarray) -> np.ndarray:
    r"""The matrix :math:`C = Q^{-1}\otimes P^{-1}` of the map :math:`g\mapsto P^{-1}gQ^{-1}` on
    column-major :math:`\mathrm{vec}\,g` (:math:`\mathrm{vec}(AXB) = (B^\top\otimes A)\mathrm{vec}X`,
    :math:`Q` symmetric). P_inv: (m, m) and Q_inv: (n, n) symmetric positive-definite."""
    f = "kronecker_step_matrix"
    P_inv = V.spd(f, "P_inv", P_inv)
    Q_inv = V.spd(f, "Q_inv", Q_inv)
    return np.kron(0.5 * (Q_inv + Q_inv.T), 0.5 * (P_inv + P_inv.T))


@dataclass(frozen=True, kw_only=True)
class JointModes:
    r"""The linearised simultaneous step at a solution (R-LR-4, :func:`joint_modes`).

    mu: ascending eigenvalues of :math:`CH` (real, >= 0; the step's Jacobian has eigenvalues
    :math:`1 - \eta\mu`). subspace_weight: per eigenvalue, :math:`\lVert\delta Z\rVert_F/\lVert v\rVert` of its
    eigenvector :math:`v = (\mathrm{vec}\,\delta F, \mathrm{vec}\,\delta G)`, :math:`\delta Z = A^{-1}\delta G\,
    G^{*\top}_\perp`, :math:`A = GG^{*\top}` (how much the mode moves the row space of :math:`G`), over the largest
    such weight. gauge: :math:`k^2`, the number of smallest eigenvalues that are the gauge directions
    :math:`(-FS, SG)` (:math:`H` annihilates them at every point, so they are 0 to round-off). visible: not gauge
    and ``subspace_weight > visible_tol``. vectors: (n, n) the eigenvectors of :math:`CH` (columns, in the order
    of ``mu``); dual: (n, n) the dual basis (rows, ``dual @ vectors = I``): the coordinates of a deviation
    :math:`\delta\theta` in the modes are ``dual @ delta``, and after ``t`` linearised steps they are multiplied
    by :math:`(1-\eta\mu)^t`.
    """

    mu: np.ndarray
    subspace_weight: np.ndarray
    visible: np.ndarray
    gauge: int
    vectors: np.ndarray
    dual: np.ndarray

    def rate(self, eta: float) -> float:
        r""":math:`\max|1 - \eta\mu_i|` over the visible modes: the local rate of the subspace distance."""
        eta = V.scalar("JointModes.rate", "eta", eta, low=0.0, low_open=True)
        return float(np.max(np.abs(1.0 - eta * self.mu[self.visible]))) if self.visible.any() else 0.0


def gauss_newton_matrix(F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray) -> np.ndarray:
    r"""The Gauss-Newton matrix :math:`H = J^\top(\Sigma_x\otimes I_{d_y})J` of the population loss
    :math:`\tfrac12\mathrm{tr}\big((FG - M)\Sigma_x(FG - M)^\top\big)` in
    :math:`\theta = (\mathrm{vec}\,F, \mathrm{vec}\,G)` (column-major), :math:`J = [G^\top\otimes I_{d_y},\
    I_d\otimes F]` the Jacobian of :math:`\theta\mapsto\mathrm{vec}(FG)`. At a solution (:math:`FG = M`, no
    residual) it is the Hessian. F: (d_y, k). G: (k, d). Sigma_x: (d, d) SPD."""
    f = "gauss_newton_matrix"
    F = V.matrix(f, "F", F)
    G = V.matrix(f, "G", G, shape=(F.shape[1], None))
    Sigma_x = V.spd(f, "Sigma_x", Sigma_x, d=G.shape[1])
    return _gauss_newton(F, G, Sigma_x)


def _gauss_newton(F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray) -> np.ndarray:
    d_y, k = F.shape
    d = G.shape[1]
    J = np.hstack([np.kron(G.T, np.eye(d_y)), np.kron(np.eye(d), F)])   # (d_y d, d_y k + k d)
    S = np.linalg.cholesky(0.5 * (Sigma_x + Sigma_x.T))
    WJ = np.kron(S.T, np.eye(d_y)) @ J                                   # (S^T (x) I) J: H = (WJ)^T WJ
    H = WJ.T @ WJ
    return 0.5 * (H + H.T)


def hessian_matrix(F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray, M: np.ndarray) -> np.ndarray:
    r"""The exact Hessian of :math:`L = \tfrac12\mathrm{tr}\big((FG - M)\Sigma_x(FG - M)^\top\big)` in
    :math:`\theta = (\mathrm{vec}\,F, \mathrm{vec}\,G)` (column-major): the Gauss-Newton matrix
    (:func:`gauss_newton_matrix`) plus the residual term of the second-order expansion
    :math:`\langle (FG - M)\Sigma_x, \delta F\,\delta G\rangle`, an off-diagonal block coupling
    :math:`\delta F_{ij}` with :math:`\delta G_{jl}` by :math:`((FG - M)\Sigma_x)_{il}` (zero at a solution).
    F: (d_y, k). G: (k, d). Sigma_x: (d, d) SPD. M: (d_y, d) the target :math:`F^*G^*`."""
    f = "hessian_matrix"
    F = V.matrix(f, "F", F)
    G = V.matrix(f, "G", G, shape=(F.shape[1], None))
    Sigma_x = V.spd(f, "Sigma_x", Sigma_x, d=G.shape[1])
    M = V.matrix(f, "M", M, shape=(F.shape[0], G.shape[1]))
    return _hessian(F, G, Sigma_x, M)


def _hessian(F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray, M: np.ndarray) -> np.ndarray:
    d_y, k = F.shape
    d = G.shape[1]
    H = _gauss_newton(F, G, Sigma_x)
    R = (F @ G - M) @ Sigma_x                                            # (d_y, d)
    # B[i + j d_y, jj + l k] = R[i, l] delta(j, jj) (column-major vec of F and of G)
    B = np.zeros((d_y * k, k * d))
    for j in range(k):
        B[j * d_y:(j + 1) * d_y, j::k] = R
    nF = d_y * k
    H[:nF, nF:] += B
    H[nF:, :nF] += B.T
    return H


def joint_modes(F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *,
                C_F: np.ndarray | None = None, C_G: np.ndarray | None = None,
                visible_tol: float = 1e-3, M: np.ndarray | None = None) -> JointModes:
    r"""R-LR-4 [R]: the linearisation, at a solution :math:`(F, G)` (:math:`FG = M`), of simultaneous steps on
    both layers with a fixed preconditioner,

    .. math::

        \theta_+ = \theta - \eta\,C\,\nabla L(\theta),\qquad C = \mathrm{blockdiag}(C_F, C_G)\ \text{SPD},
        \qquad \frac{\partial\theta_+}{\partial\theta} = I - \eta\,CH,

    :math:`H` the Gauss-Newton matrix (:func:`gauss_newton_matrix`, the Hessian at a solution). :math:`CH` is
    similar to :math:`C^{1/2}HC^{1/2}`: real eigenvalues :math:`\mu\ge0`, :math:`k^2` of them zero (the gauge
    directions, which leave :math:`FG` and the row space of :math:`G` unchanged). The subspace distance
    decays at :math:`\max|1-\eta\mu_i|` over the modes whose eigenvector moves the row space of :math:`G`
    (:attr:`JointModes.visible`). A Kronecker step :math:`W_+ = W - \eta P^{-1}gQ^{-1}` has
    :math:`C = Q^{-1}\otimes P^{-1}` (:func:`kronecker_step_matrix`); an entry-wise one
    :math:`W_+ = W - \eta\,g/D` has :math:`C = \mathrm{diag}(\mathrm{vec}\,1/D)`; plain gradient steps have
    :math:`C = I`. The linearisation is the same when :math:`C` depends on :math:`\theta` or settles to a limit
    (it multiplies :math:`\nabla L = O(\theta - \theta^*)`), so a settled preconditioner's rate is this one at
    its limit.

    F: (d_y, k), G: (k, d) a solution (the limit point of a run). Sigma_x: (d, d) SPD. G_star: (k, d) the
    target row space (any basis). C_F: (d_y k, d_y k), C_G: (k d, k d) SPD, column-major vec (``None``: the
    identity). M: (d_y, d) the target :math:`F^*G^*`: given, the exact Hessian at ``(F, G)``
    (:func:`hessian_matrix`) replaces the Gauss-Newton matrix, i.e. the linearisation of the step at a point that
    is not a solution (its eigenvalues may then be negative). visible_tol: the subspace weight (relative to the
    largest) above which a mode moves the subspace;
    at a solution the others have weight 0 exactly, at a point at distance :math:`\delta` from one they have
    :math:`O(\delta)`, so the default :math:`10^{-3}` classifies the modes of a run's end point once its distance
    is well below :math:`10^{-3}`.
    """
    return _joint_modes("joint_modes", F, G, Sigma_x, G_star, C_F=C_F, C_G=C_G, visible_tol=visible_tol, M=M)


def _joint_modes(f: str, F, G, Sigma_x, G_star, *, C_F, C_G, visible_tol, M) -> JointModes:
    F = V.full_column_rank(f, "F", F)
    d_y, k = F.shape
    G = V.full_row_rank(f, "G", G)
    if G.shape[0] != k:
        raise V.fail(f, "G", f"a (k, d) matrix with k = {k} rows like F's columns", f"{G.shape[0]} rows")
    d = G.shape[1]
    Sigma_x = V.spd(f, "Sigma_x", Sigma_x, d=d)
    Gs = _orthonormal_rows(f, "G_star", G_star, d)
    if Gs.shape[0] != k:
        raise V.fail(f, "G_star", f"with k = {k} rows", f"{Gs.shape[0]} rows")
    visible_tol = V.scalar(f, "visible_tol", visible_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    nF, nG = d_y * k, k * d
    C_F = np.eye(nF) if C_F is None else V.spd(f, "C_F", C_F, d=nF)
    C_G = np.eye(nG) if C_G is None else V.spd(f, "C_G", C_G, d=nG)
    H = _gauss_newton(F, G, Sigma_x) if M is None else _hessian(F, G, Sigma_x, V.matrix(f, "M", M, shape=(d_y, d)))
    L = sla.block_diag(np.linalg.cholesky(0.5 * (C_F + C_F.T)), np.linalg.cholesky(0.5 * (C_G + C_G.T)))
    mu, Wv = np.linalg.eigh(L.T @ H @ L)                 # C = L L^T: CH = L (L^T H L) L^{-1}
    Vv = L @ Wv                                          # eigenvectors of CH
    dual = sla.solve_triangular(L, Wv, lower=True, trans="T").T   # W^T L^{-1}: dual @ Vv = W^T W = I
    A = G @ Gs.T
    Gp = _complement(Gs)
    dG = Vv[nF:].T.reshape(-1, d, k).transpose(0, 2, 1)  # column-major vec -> (modes, k, d)
    dZ = np.linalg.solve(A[None], dG @ Gp.T)
    weight = np.linalg.norm(dZ, axis=(1, 2)) / np.linalg.norm(Vv, axis=0)
    weight = weight / weight.max()
    if M is None:
        mu = np.maximum(mu, 0.0)
    gauge = k * k
    visible = weight > visible_tol
    visible[:gauge] = False
    return JointModes(mu=mu, subspace_weight=weight, visible=visible, gauge=gauge, vectors=Vv, dual=dual)


def joint_local_rate(F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray, G_star: np.ndarray, *, eta: float,
                     C_F: np.ndarray | None = None, C_G: np.ndarray | None = None) -> float:
    r"""R-LR-4 [R]: local rate :math:`\max|1-\eta\mu_i|` of the subspace distance under simultaneous
    preconditioned steps on both layers, over the modes that move the subspace (:func:`joint_modes`).
    eta > 0; other arguments as :func:`joint_modes`."""
    f = "joint_local_rate"
    eta = V.scalar(f, "eta", eta, low=0.0, low_open=True)
    return _joint_modes(f, F, G, Sigma_x, G_star, C_F=C_F, C_G=C_G, visible_tol=1e-3, M=None).rate(eta)
