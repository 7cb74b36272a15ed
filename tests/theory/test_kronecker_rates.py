"""R-LR-1 at any fixed Kronecker pair and R-LR-4 (both layers, a fixed preconditioner): theory.linrep's
kronecker_local_rate, joint_modes and joint_local_rate against literal steps written here (finite-difference
Jacobians and runs; nothing from simulate)."""

from __future__ import annotations

import numpy as np
import pytest

from theory import linrep as tl


def _spd(rng, d, kappa=10.0):
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.geomspace(1.0, 1.0 / kappa, d)
    return (Q * lam) @ Q.T


def _problem(rng, d=9, d_y=4, k=2, kx=20.0, kF=3.0):
    Gs = np.linalg.qr(rng.standard_normal((d, k)))[0].T
    U = np.linalg.qr(rng.standard_normal((d_y, k)))[0]
    Vt = np.linalg.qr(rng.standard_normal((k, k)))[0]
    Fs = (U * np.geomspace(1.0, 1.0 / kF, k)) @ Vt
    return Fs, _spd(rng, d, kx), Gs


def _complement(Gs):
    return np.linalg.qr(Gs.T, mode="complete")[0][:, Gs.shape[0]:].T


# --------------------------------------------------------------------------- R-LR-1, any pair
@pytest.mark.parametrize("left", ["identity", "FtF"])
@pytest.mark.parametrize("right", ["identity", "Sigma_x", "diag"])
def test_kronecker_rate_reduces_to_the_named_pairs(rng, left, right):
    Fs, S, Gs = _problem(rng)
    P = np.eye(2) if left == "identity" else Fs.T @ Fs
    Q = {"identity": np.eye(9), "Sigma_x": S, "diag": np.diag(np.diag(S))}[right]
    for eta in (0.3, 1.1):
        a = tl.kronecker_local_rate(Fs, S, Gs, P=P, Q=Q, eta=eta)
        b = tl.local_rate(Fs, S, Gs, eta=eta, left=left, right=right)
        assert abs(a - b) <= 1e-12 * max(1.0, abs(b)), f"{left}/{right} eta={eta}: {a!r} vs {b!r}"


def _ls_step(G, P, Q, Fs, Gs, S, eta):
    """One literal step G_+ = G - eta P^{-1} grad_G Q^{-1} with the least-squares head (population)."""
    M = Fs @ Gs
    Sz = G @ S @ G.T
    F = np.linalg.solve(Sz, G @ S @ M.T).T
    grad = F.T @ (F @ G - M) @ S
    return G - eta * np.linalg.solve(P, grad) @ np.linalg.inv(Q)


def test_kronecker_rate_is_the_spectrum_of_the_literal_step(rng):
    Fs, S, Gs = _problem(rng)
    k, d = Gs.shape
    A = rng.standard_normal((k, k))
    P = A @ A.T + np.eye(k)
    B = rng.standard_normal((d, d))
    Q = B @ B.T / d + 0.5 * np.eye(d)
    eta = 0.4
    Gp = _complement(Gs)

    def z_after(Z):
        G1 = _ls_step(Gs + Z @ Gp, P, Q, Fs, Gs, S, eta)
        return np.linalg.solve(G1 @ Gs.T, G1 @ Gp.T)

    h, n = 1e-5, k * (d - k)
    J = np.empty((n, n))
    for c in range(n):
        W = np.zeros(n)
        W[c] = h
        W = W.reshape(k, d - k)
        J[:, c] = (z_after(W) - z_after(-W)).ravel() / (2 * h)
    lam = np.sort(np.linalg.eigvals(J).real)
    ell, m = tl.kronecker_rate_factors(Fs, S, Gs, P=P, Q=Q)
    pred = np.sort(1.0 - eta * np.outer(ell, m).ravel())
    err = np.abs(lam - pred).max()
    assert err < 1e-7, f"spectrum off by {err:.2e}"
    rho = tl.kronecker_local_rate(Fs, S, Gs, P=P, Q=Q, eta=eta)
    assert abs(np.abs(np.linalg.eigvals(J)).max() - rho) < 1e-7


def test_kronecker_rate_bad_pair_names_the_argument(rng):
    Fs, S, Gs = _problem(rng)
    with pytest.raises(ValueError, match=r"kronecker_local_rate: argument 'P' must be"):
        tl.kronecker_local_rate(Fs, S, Gs, P=-np.eye(2), Q=S, eta=0.5)
    with pytest.raises(ValueError, match=r"kronecker_rate_factors: argument 'Q' must be"):
        tl.kronecker_rate_factors(Fs, S, Gs, P=np.eye(2), Q=np.eye(4))


# --------------------------------------------------------------------------- R-LR-4, both layers
def _grads(F, G, M, S):
    E = (F @ G - M) @ S
    return E @ G.T, F.T @ E


def _vec(A):
    return A.reshape(-1, order="F")


def _joint_step(theta, C, M, S, shapes, eta):
    (d_y, k), (_, d) = shapes
    F = theta[:d_y * k].reshape((d_y, k), order="F")
    G = theta[d_y * k:].reshape((k, d), order="F")
    gF, gG = _grads(F, G, M, S)
    return theta - eta * C @ np.concatenate([_vec(gF), _vec(gG)])


def _preconditioners(rng, d_y, k, d):
    def spd(n):
        A = rng.standard_normal((n, n))
        return A @ A.T / n + 0.3 * np.eye(n)
    C_F = tl.kronecker_step_matrix(spd(d_y), spd(k))              # g -> P^{-1} g Q^{-1} on F
    C_G = np.diag(rng.uniform(0.5, 2.0, k * d))                     # entry-wise on G
    return C_F, C_G


def test_joint_modes_are_the_spectrum_of_the_literal_step(rng):
    Fs, S, Gs = _problem(rng)
    d_y, k = Fs.shape
    d = Gs.shape[1]
    Aq = rng.standard_normal((k, k)) + 2 * np.eye(k)
    F, G = Fs @ np.linalg.inv(Aq), Aq @ Gs                         # an unbalanced point of the solution set
    M = Fs @ Gs
    C_F, C_G = _preconditioners(rng, d_y, k, d)
    C = np.block([[C_F, np.zeros((d_y * k, k * d))], [np.zeros((k * d, d_y * k)), C_G]])
    eta, h = 0.2, 1e-6
    theta = np.concatenate([_vec(F), _vec(G)])
    n = theta.size
    J = np.empty((n, n))
    for c in range(n):
        e = np.zeros(n)
        e[c] = h
        J[:, c] = (_joint_step(theta + e, C, M, S, (Fs.shape, Gs.shape), eta)
                   - _joint_step(theta - e, C, M, S, (Fs.shape, Gs.shape), eta)) / (2 * h)
    lam = np.sort(np.linalg.eigvals(J).real)
    jm = tl.joint_modes(F, G, S, Gs, C_F=C_F, C_G=C_G)
    pred = np.sort(1.0 - eta * jm.mu)
    err = np.abs(lam - pred).max()
    assert err < 1e-6, f"spectrum off by {err:.2e}"
    assert jm.gauge == k * k, f"{jm.gauge} gauge modes, expected k^2 = {k * k}"
    # at least the k (d - k) tangent directions of the subspace are moved; with C = I the head directions
    # orthogonal to F's columns (k (d_y - k) modes, eigenvectors (dF, 0) with F^T dF = 0) leave G alone
    assert int(jm.visible.sum()) >= k * (d - k), f"{int(jm.visible.sum())} modes move the subspace"
    plain = tl.joint_modes(F, G, S, Gs)
    hidden = int((~plain.visible).sum()) - plain.gauge
    assert hidden >= k * (d_y - k), f"C = I: {hidden} non-gauge modes leave the subspace alone"
    assert not np.any(jm.visible & (jm.mu <= 1e-6 * jm.mu[-1])), "a gauge mode counted as moving the subspace"


def _distance(G, Gs):
    Qg = np.linalg.qr(G.T)[0]
    return np.linalg.svd(Qg - Gs.T @ (Gs @ Qg), compute_uv=False)[0]


@pytest.mark.parametrize("which", ["identity", "mixed"])
def test_joint_rate_is_the_decay_of_the_distance_in_a_run(rng, which):
    Fs, S, Gs = _problem(rng, kx=5.0, kF=2.0)
    d_y, k = Fs.shape
    d = Gs.shape[1]
    M = Fs @ Gs
    C_F, C_G = (np.eye(d_y * k), np.eye(k * d)) if which == "identity" else _preconditioners(rng, d_y, k, d)
    C = np.block([[C_F, np.zeros((d_y * k, k * d))], [np.zeros((k * d, d_y * k)), C_G]])
    eta = 0.3 if which == "identity" else 0.15
    theta = np.concatenate([_vec(Fs + 0.05 * rng.standard_normal(Fs.shape)),
                            _vec(Gs + 0.05 * rng.standard_normal(Gs.shape))])
    dist = []
    for _ in range(3000):
        theta = _joint_step(theta, C, M, S, (Fs.shape, Gs.shape), eta)
        G = theta[d_y * k:].reshape((k, d), order="F")
        dist.append(_distance(G, Gs))
        if dist[-1] < 1e-11:
            break
    dist = np.array(dist)
    w = min(40, dist.size // 4)
    measured = (dist[-1] / dist[-1 - w]) ** (1.0 / w)
    F = theta[:d_y * k].reshape((d_y, k), order="F")
    pred = tl.joint_local_rate(F, G, S, Gs, eta=eta, C_F=C_F, C_G=C_G)
    assert abs(measured - pred) < 1e-4, f"measured {measured:.6f}, R-LR-4 {pred:.6f}"


def test_joint_modes_bad_input_names_the_argument(rng):
    Fs, S, Gs = _problem(rng)
    with pytest.raises(ValueError, match=r"joint_modes: argument 'C_G' must be"):
        tl.joint_modes(Fs, Gs, S, Gs, C_G=np.eye(3))
    with pytest.raises(ValueError, match=r"joint_local_rate: argument 'eta' must be"):
        tl.joint_local_rate(Fs, Gs, S, Gs, eta=0.0)
    with pytest.raises(ValueError, match=r"kronecker_step_matrix: argument 'P_inv' must be"):
        tl.kronecker_step_matrix(np.ones((2, 2)), np.eye(2))


def test_hessian_is_the_derivative_of_the_gradient(rng):
    Fs, S, Gs = _problem(rng)
    d_y, k = Fs.shape
    d = Gs.shape[1]
    M = Fs @ Gs
    F = Fs + 0.3 * rng.standard_normal(Fs.shape)
    G = Gs + 0.3 * rng.standard_normal(Gs.shape)
    theta = np.concatenate([_vec(F), _vec(G)])

    def grad(th):
        Fx = th[:d_y * k].reshape((d_y, k), order="F")
        Gx = th[d_y * k:].reshape((k, d), order="F")
        gF, gG = _grads(Fx, Gx, M, S)
        return np.concatenate([_vec(gF), _vec(gG)])

    h, n = 1e-6, theta.size
    Hfd = np.empty((n, n))
    for c in range(n):
        e = np.zeros(n)
        e[c] = h
        Hfd[:, c] = (grad(theta + e) - grad(theta - e)) / (2 * h)
    H = tl.hessian_matrix(F, G, S, M)
    err = np.abs(H - Hfd).max()
    assert err < 1e-7, f"Hessian off by {err:.2e}"
    # at a solution it is the Gauss-Newton matrix
    A = rng.standard_normal((k, k)) + 2 * np.eye(k)
    F0, G0 = Fs @ np.linalg.inv(A), A @ Gs
    assert np.abs(tl.hessian_matrix(F0, G0, S, M) - tl.gauss_newton_matrix(F0, G0, S)).max() < 1e-12
