"""simulate.jacobian: the step Jacobian on the Grassmannian, measured from the literal update rules."""

from __future__ import annotations

import numpy as np
import pytest

from simulate import data as sd
from simulate import jacobian as sj
from simulate import linrep as sl
from tests.conftest import assert_close


@pytest.fixture
def problem(rng):
    return sd.linrep_problem(12, 4, 2, kappa_x=20.0, kappa_F=3.0, noise_std=0.0, rng=rng)


def test_tangent_start_has_the_tangent_as_principal_tangents(problem, rng):
    Z = 0.3 * rng.standard_normal((problem.k, problem.d_x - problem.k))
    G = sj.tangent_start(problem, Z)
    assert_close(sl.principal_tangents(G, problem.G_star), np.linalg.svd(Z, compute_uv=False), rtol=1e-12,
                 what="tan theta_i vs sigma_i(Z)")
    Gp = sj.complement(problem.G_star)
    assert_close(Gp @ Gp.T, np.eye(problem.d_x - problem.k), rtol=0, atol=1e-14, what="complement orthonormal")
    assert_close(Gp @ problem.G_star.T, np.zeros((problem.d_x - problem.k, problem.k)), rtol=0, atol=1e-14,
                 what="complement orthogonal to G*")


@pytest.mark.parametrize("name", ["amgd", "kfac_ls", "kfac_left", "kfac_diag"])
def test_solution_is_a_fixed_point(problem, name):
    Z = sj.tangent_step(problem, name, np.zeros((problem.k, problem.d_x - problem.k)), lr=0.4)
    assert np.abs(Z).max() < 1e-13, f"{name}: |Z_+(0)| = {np.abs(Z).max():.2e}, expected round-off"


def test_jacobian_is_the_linear_part_of_the_literal_step(problem, rng):
    """J Z against one literal step from a tiny tangent, in a random direction (not a basis column)."""
    jac = sj.step_jacobian(problem, "amgd", lr=0.5, h=1e-4)
    W = rng.standard_normal((problem.k, problem.d_x - problem.k))
    eps = 1e-5
    direct = (sj.tangent_step(problem, "amgd", eps * W, lr=0.5) - sj.tangent_step(problem, "amgd", -eps * W, lr=0.5)) / (2 * eps)
    assert_close((jac.J @ W.ravel()).reshape(W.shape), direct, rtol=0, atol=1e-7 * np.abs(direct).max(),
                 what="J W vs directional central difference")


def test_finite_difference_error_follows_h_squared(problem):
    """The error model behind every rate tolerance: q(J_h) - q(J_{h/2}) shrinks by 4 when h halves."""
    for name, lr in (("amgd", 0.5), ("kfac_diag", 0.4)):
        d1 = sj.step_jacobian(problem, name, lr=lr, h=2e-3)
        d2 = sj.step_jacobian(problem, name, lr=lr, h=1e-3)
        r_norm = d1.difference_norm / d2.difference_norm
        r_eig = d1.difference_eigenvalues / d2.difference_eigenvalues
        assert abs(r_norm - 4) < 0.05 and abs(r_eig - 4) < 0.05, (
            f"{name}: difference ratios {r_norm:.4f} (matrix), {r_eig:.4f} (spectrum); the h^2 model needs 4")
        # 4/3 of the difference estimates the error of J_h: J_h against the Richardson value (4 J_h/2 - J_h)/3
        rich = (4 * d2.J_half - d2.J) / 3
        err = np.linalg.norm(d2.J - rich, 2)
        assert err <= 2.0 * d2.difference_norm, f"{name}: |J_h - J| ~ {err:.3e} > 2 |J_h - J_h/2| = {2 * d2.difference_norm:.3e}"


def test_slowest_mode_gives_the_trajectory_rate(problem):
    """Starting on the measured slowest mode, the literal run contracts at |lambda| per step (no theory)."""
    lr = 0.3
    jac = sj.step_jacobian(problem, "amgd", lr=lr, h=1e-4)
    mode = jac.mode(0)
    assert abs(abs(mode.eigenvalue) - jac.spectral_radius) < 1e-15
    G0 = sj.tangent_start(problem, 1e-7 * mode.tangent)
    tr = sl.run(problem, "amgd", steps=30, lr=lr, batch=None, rng=np.random.default_rng(0), G0=G0,
                F0=problem.F_star, init_head="least_squares")
    ratios = tr.subspace_distance[1:] / tr.subspace_distance[:-1]
    assert_close(ratios, np.full(ratios.shape, abs(mode.eigenvalue)), rtol=1e-5,
                 what="dist_{t+1}/dist_t on the slowest mode vs |lambda|")


def test_kfac_jacobian_has_no_quadratic_term_on_isotropic_data(rng):
    p = sd.linrep_problem(10, 3, 2, kappa_x=1.0, kappa_F=1.0, noise_std=0.0, rng=rng)
    W = rng.standard_normal((2, 8))
    W /= np.linalg.svd(W, compute_uv=False)[0]
    assert sj.quadratic_term(p, "kfac_ls", W, lr=0.5) < 1e-6
    assert sj.quadratic_term(p, "amgd", W, lr=0.5) >= 0.0


def test_roundoff_level_is_measured(problem):
    jac = sj.step_jacobian(problem, "kfac_ls", lr=0.7, h=1e-3)
    assert np.finfo(float).eps <= jac.roundoff < 1e-12
    assert jac.roundoff_matrix_norm == pytest.approx(jac.n * jac.roundoff / jac.h)
    assert jac.J.shape == (jac.n, jac.n) == (problem.k * (problem.d_x - problem.k),) * 2


def test_bad_arguments(problem):
    with pytest.raises(ValueError, match=r"step_jacobian: argument 'h' must be in \(0, 0.1\]"):
        sj.step_jacobian(problem, "amgd", lr=0.1, h=0.0)
    with pytest.raises(ValueError, match=r"step_jacobian: argument 'lr' must be"):
        sj.step_jacobian(problem, "amgd", lr=-1.0)
    with pytest.raises(ValueError, match=r"tangent_step: argument 'Z' must be a matrix of shape \(2, 10\)"):
        sj.tangent_step(problem, "amgd", np.zeros((3, 3)), lr=0.1)
    with pytest.raises(ValueError, match=r"step_jacobian: argument 'problem' must be a simulate.data.LinRepProblem"):
        sj.step_jacobian("nope", "amgd", lr=0.1)
    # a rule whose head is an EMA (eta_F < 1) has state (F, G): not this module's map
    with pytest.raises(ValueError, match=r"argument 'algorithm' must be a rule that refits the head by least squares"):
        sj.step_jacobian(problem, "kfac", lr=0.5, options={"eta_F": 0.5})
