"""simulate.optimizers, issue 4 additions: Adam, AMGD + batch-norm, damped Gauss-Newton / NGD, damped
Newton (exact Hessian), the stacked runner of several step sizes, and the fast Rademacher batches."""

from __future__ import annotations

import numpy as np
import pytest

from simulate import data, optimizers as so
from tests.conftest import assert_close


@pytest.fixture
def case(rng, small_problem):
    X, Y = data.draw_batch(small_problem, 40, rng=rng)
    F = rng.standard_normal((small_problem.d_y, small_problem.k))
    G = rng.standard_normal((small_problem.k, small_problem.d_x)) / np.sqrt(small_problem.d_x)
    return F, G, X, Y, so.Batch.from_samples(X, Y)


def _vec(A):
    return A.ravel(order="F")


def _unvec(th, F, G):
    m = F.size
    return th[:m].reshape(F.shape, order="F"), th[m:].reshape(G.shape, order="F")


def _grad_vec(th, F, G, b):
    Fm, Gm = _unvec(th, F, G)
    return np.concatenate([_vec(so.grad_F(Fm, Gm, b)[0]), _vec(so.grad_G(Fm, Gm, b))])


# --------------------------------------------------------------------------- Adam
def test_adam_is_kingma_ba_with_bias_correction(case):
    F, G, X, Y, b = case
    opt = so.make("adam", lr=0.01, beta1=0.8, beta2=0.9, eps=1e-6)
    st = opt.init(F, G)
    F1, G1, st = opt.step(F, G, b, st)
    # first step: m_hat = g, v_hat = g^2, so each entry moves by lr * g / (|g| + eps)
    gF, gG = so.grad_F(F, G, b)[0], so.grad_G(F, G, b)
    assert_close(F1, F - 0.01 * gF / (np.abs(gF) + 1e-6), rtol=1e-12, atol=1e-15, what="Adam first F step")
    assert_close(G1, G - 0.01 * gG / (np.abs(gG) + 1e-6), rtol=1e-12, atol=1e-15, what="Adam first G step")
    F2, G2, st2 = opt.step(F1, G1, b, st)
    g2 = so.grad_G(F1, G1, b)
    m = 0.8 * (0.2 * gG) + 0.2 * g2
    v = 0.9 * (0.1 * gG**2) + 0.1 * g2**2
    ref = G1 - 0.01 * (m / (1 - 0.8**2)) / (np.sqrt(v / (1 - 0.9**2)) + 1e-6)
    assert st2.t == 2
    assert_close(G2, ref, rtol=1e-12, atol=1e-15, what="Adam second G step")
    assert so.make("adam", lr=1.0).beta1 == 0.9 and so.make("adam", lr=1.0).beta2 == 0.999


# --------------------------------------------------------------------------- batch-norm
def _bn_loss_samples(F, G, gamma, beta, X, Y, eps=1e-5):
    H = X @ G.T
    Z = gamma * (H - H.mean(0)) / np.sqrt(H.var(0) + eps) + beta
    return 0.5 * np.sum((Y - Z @ F.T) ** 2) / X.shape[0]


def test_batchnorm_gradients_match_finite_differences(case):
    F, G, X, Y, b = case
    k = G.shape[0]
    gamma, beta = np.linspace(0.7, 1.3, k), np.linspace(-0.2, 0.2, k)
    st = so.BatchNormState(gamma, beta, np.zeros(k), np.ones(k))
    lr = 1.0
    _, G1, st1 = so.make("amgd_bn", lr=lr).step(F, G, b, st)
    h = 1e-6
    num = np.zeros_like(G)
    for idx in np.ndindex(G.shape):
        E = np.zeros_like(G)
        E[idx] = h
        num[idx] = (_bn_loss_samples(F, G + E, gamma, beta, X, Y) - _bn_loss_samples(F, G - E, gamma, beta, X, Y)) / (2 * h)
    # central differences: truncation O(h^2) and round-off ~ eps * loss / h ~ 1e-9
    assert_close((G - G1) / lr, num, rtol=1e-5, atol=1e-7, what="dL/dG through the batch statistics")
    ng = [(_bn_loss_samples(F, G, gamma + h * e, beta, X, Y) - _bn_loss_samples(F, G, gamma - h * e, beta, X, Y)) / (2 * h)
          for e in np.eye(k)]
    nb = [(_bn_loss_samples(F, G, gamma, beta + h * e, X, Y) - _bn_loss_samples(F, G, gamma, beta - h * e, X, Y)) / (2 * h)
          for e in np.eye(k)]
    assert_close((gamma - st1.gamma) / lr, ng, rtol=1e-5, atol=1e-7, what="dL/dgamma")
    assert_close((beta - st1.beta) / lr, nb, rtol=1e-5, atol=1e-7, what="dL/dbeta")


def test_batchnorm_head_running_stats_and_eval(case):
    F, G, X, Y, b = case
    opt = so.make("amgd_bn", lr=0.05, momentum=0.25)
    st0 = opt.init(F, G)
    assert np.array_equal(st0.gamma, np.ones(G.shape[0])) and np.array_equal(st0.running_var, np.ones(G.shape[0]))
    F1, G1, st = opt.step(F, G, b, st0)
    # AMGD head: the least-squares head on the new normalised features (training mode)
    H = X @ G1.T
    Z = st.gamma * (H - H.mean(0)) / np.sqrt(H.var(0) + opt.eps) + st.beta
    F_ls = np.linalg.lstsq(Z, Y, rcond=None)[0].T
    assert_close(F1, F_ls, rtol=1e-8, atol=1e-10, what="batch-norm AMGD head")
    # running statistics: momentum update with the batch mean and the unbiased batch variance of the new G
    assert_close(st.running_mean, 0.25 * H.mean(0), rtol=1e-12, atol=1e-15, what="running mean")
    assert_close(st.running_var, 0.75 + 0.25 * H.var(0, ddof=1), rtol=1e-12, what="running variance")
    # evaluation mode with running statistics equal to the batch's is the training-mode network
    ev = so.BatchNormState(st.gamma, st.beta, H.mean(0), H.var(0))
    W, c = opt.eval_map(F1, G1, ev)
    assert_close(X @ W.T + c, Z @ F1.T, rtol=1e-9, atol=1e-12, what="eval map at batch statistics")
    assert_close(opt.batch_loss(F1, G1, b, st), _bn_loss_samples(F1, G1, st.gamma, st.beta, X, Y), rtol=1e-12,
                 what="training-mode loss")
    with pytest.raises(ValueError, match="'batch'.*samples"):
        opt.step(F, G, so.Batch(b.Sigma_x, b.Sigma_yx, b.trace_yy), st0)


# --------------------------------------------------------------------------- second order
def test_gauss_newton_blocks_are_the_jacobian_gram_matrix(case):
    F, G, X, Y, b = case
    n = X.shape[0]
    J = np.stack([np.hstack([np.kron((G @ x)[None, :], np.eye(F.shape[0])), np.kron(x[None, :], F)]) for x in X])
    H_ref = np.einsum("nia,nib->ab", J, J) / n
    Hff, Hgg, Hfg = so.gauss_newton_blocks(F, G, b)
    assert_close(np.block([[Hff, Hfg], [Hfg.T, Hgg]]), H_ref, rtol=1e-12, atol=1e-12, what="(1/n) sum J_i' J_i")


def test_exact_hessian_matches_finite_differences_of_the_gradient(case):
    F, G, X, Y, b = case
    th = np.concatenate([_vec(F), _vec(G)])
    h = 1e-6
    num = np.array([(_grad_vec(th + h * e, F, G, b) - _grad_vec(th - h * e, F, G, b)) / (2 * h) for e in np.eye(th.size)]).T
    H = so.exact_hessian(F, G, b)
    # the gradient is quadratic in theta: central differences are exact up to round-off ~ eps |g| / h
    assert_close(H, num, rtol=0, atol=1e-7 * np.abs(num).max(), what="exact Hessian")
    assert np.abs(H - H.T).max() < 1e-12 * np.abs(H).max()


@pytest.mark.parametrize("name", ["ngd", "newton"])
@pytest.mark.parametrize("damping", [1e-6, 1e-3, 0.1])
def test_structured_second_order_solves_equal_the_dense_ones(case, name, damping):
    F, G, X, Y, b = case
    dF, dG = so.make(name, lr=1.0, damping=damping).direction(F, G, b)
    rF, rG = so.make(name, lr=1.0, damping=damping, solver="dense").direction(F, G, b)
    # both are backward stable; the forward error is ~ cond(H + delta I) * eps <= 1e6 * 1e-16 here
    assert_close(dF, rF, rtol=0, atol=1e-8 * np.abs(rF).max(), what=f"{name} dF (damping {damping})")
    assert_close(dG, rG, rtol=0, atol=1e-8 * np.abs(rG).max(), what=f"{name} dG (damping {damping})")


def test_damping_definition_and_pseudo_inverse(case):
    F, G, X, Y, b = case
    Hff, Hgg, Hfg = so.gauss_newton_blocks(F, G, b)
    H = np.block([[Hff, Hfg], [Hfg.T, Hgg]])
    g = np.concatenate([_vec(so.grad_F(F, G, b)[0]), _vec(so.grad_G(F, G, b))])
    delta = 1e-2 * np.mean(np.diag(H))
    step = np.linalg.solve(H + delta * np.eye(H.shape[0]), g)
    dF, dG = so.make("ngd", lr=1.0, damping=1e-2).direction(F, G, b)
    assert_close(np.concatenate([_vec(dF), _vec(dG)]), step, rtol=0, atol=1e-9 * np.abs(step).max(),
                 what="(H + damping * mean diag H) step")
    # damping 0: minimum-norm solution of the singular Gauss-Newton system (gauge directions)
    dF0, dG0 = so.make("ngd", lr=1.0, damping=0.0).direction(F, G, b)
    ref = np.linalg.pinv(H, rcond=1e-12, hermitian=True) @ g
    # same cutoff (1e-12 x largest eigenvalue); eigh vs SVD round-off ~ eps x kept condition number (< 1e8 here)
    assert_close(np.concatenate([_vec(dF0), _vec(dG0)]), ref, rtol=0, atol=1e-7 * np.abs(ref).max(),
                 what="pseudo-inverse step")


# --------------------------------------------------------------------------- stacked step sizes
@pytest.mark.parametrize("name, lrs", [("sgd", (0.01, 0.03)), ("amgd", (0.05, 0.2)), ("kfac", (0.2, 0.7)),
                                       ("kfac_ls", (0.3, 1.0)), ("adam", (1e-3, 1e-2)), ("amgd_bn", (0.05, 0.5)),
                                       ("ngd", (0.1, 0.5))])
def test_stacked_runs_equal_single_runs(rng, small_problem, name, lrs):
    opts = [so.make(name, lr=lr) for lr in lrs]
    st = so.stacked(opts)
    assert st is not None
    F0 = rng.standard_normal((small_problem.d_y, small_problem.k)) / 2
    G0 = rng.standard_normal((small_problem.k, small_problem.d_x)) / np.sqrt(small_problem.d_x)
    FS, GS = np.repeat(F0[None], len(lrs), 0), np.repeat(G0[None], len(lrs), 0)
    SS = st.init(FS, GS)
    singles = [(F0, G0, o.init(F0, G0)) for o in opts]
    for _ in range(5):
        b = so.Batch.from_samples(*data.draw_batch(small_problem, 64, rng=rng))
        FS, GS, SS = st.step(FS, GS, b, SS)
        singles = [o.step(F, G, b, s) for o, (F, G, s) in zip(opts, singles)]
        loss_s = st.batch_loss(FS, GS, b, SS)
        for i, (o, (F, G, s)) in enumerate(zip(opts, singles)):
            ls = o.batch_loss(F, G, b, s) if hasattr(o, "batch_loss") else so.batch_loss(F, G, b)
            assert_close(loss_s[i], ls, rtol=1e-10, what=f"{name} stacked loss, run {i}")
    for i, (F, G, _) in enumerate(singles):
        # five steps of well-conditioned updates: round-off differences (LU vs Cholesky) stay ~1e-13
        assert_close(FS[i], F, rtol=1e-9, atol=1e-12, what=f"{name} stacked F, lr {lrs[i]}")
        assert_close(GS[i], G, rtol=1e-9, atol=1e-12, what=f"{name} stacked G, lr {lrs[i]}")


def test_stacked_refuses_mixed_or_unsupported_rules():
    assert so.stacked([so.make("kfac", lr=0.1), so.make("kfac", lr=0.2, lam_G=0.1)]) is None
    assert so.stacked([so.make("kfac", lr=0.1), so.make("amgd", lr=0.1)]) is None
    assert so.stacked([so.make("newton", lr=0.1)]) is None
    assert so.stacked([so.make("ngd", lr=0.1, damping=0.0)]) is None


# --------------------------------------------------------------------------- registry and bad input
def test_new_optimizers_are_registered_and_step(case):
    F, G, X, Y, b = case
    for name in ("adam", "amgd_bn", "ngd", "newton", "kfac", "kfac_ls"):
        opt = so.make(name, lr=0.01)
        F1, G1, _ = opt.step(F, G, b, opt.init(F, G))
        assert F1.shape == F.shape and G1.shape == G.shape and np.all(np.isfinite(G1)), name
    with pytest.raises(ValueError, match=r"'name' must be a registered optimizer, one of \[.*'adam'.*'newton'.*\]"):
        so.make("lbfgs", lr=0.1)


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("adam", dict(lr=0.0), "'lr'"),
        ("adam", dict(lr=-1.0), "'lr'"),
        ("adam", dict(lr=0.1, beta2=1.0), "'beta2'"),
        ("amgd_bn", dict(lr=0.0), "'lr'"),
        ("amgd_bn", dict(lr=0.1, momentum=0.0), "'momentum'"),
        ("ngd", dict(lr=-0.1), "'lr'"),
        ("ngd", dict(lr=0.1, damping=-1e-3), "'damping'"),
        ("newton", dict(lr=0.1, damping=-1.0), "'damping'"),
        ("newton", dict(lr=0.1, curvature="gauss_newton"), "'curvature'"),
        ("ngd", dict(lr=0.1, solver="cg"), "'solver'"),
    ],
)
def test_bad_optimizer_options(name, options, match):
    with pytest.raises(ValueError, match=match):
        so.make(name, **options)


# --------------------------------------------------------------------------- fast Rademacher batches
def test_rademacher_signs_and_fast_batches(rng, small_problem):
    W = data.rademacher_signs(4000, 13, rng=rng)
    assert W.shape == (4000, 13) and set(np.unique(W)) == {-1.0, 1.0}
    # mean of 52000 fair signs: s.e. 1/sqrt(52000) = 0.0044; 4.4 s.e. keeps the false-failure rate < 1e-5
    assert abs(W.mean()) < 4.4 / np.sqrt(W.size), W.mean()
    # entrywise covariance: s.e. sqrt(1/n) = 0.0158 off the diagonal; 5.3 s.e. over 78 entries (Bonferroni 1e-5)
    C = W.T @ W / W.shape[0]
    assert np.abs(C - np.eye(13)).max() < 5.3 / np.sqrt(W.shape[0]), np.abs(C - np.eye(13)).max()
    X, Y = data.draw_batch_fast(small_problem, 50, rng=np.random.default_rng(1))
    X2, Y2 = data.draw_batch_fast(small_problem, 50, rng=np.random.default_rng(1))
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2)
    W = np.linalg.solve(small_problem.Sigma_x_sqrt, X.T).T
    assert_close(np.abs(W), np.ones_like(W), rtol=1e-10, what="X = W Sigma^{1/2} with W = +-1")
    with pytest.raises(ValueError, match="'n'"):
        data.rademacher_signs(0, 3, rng=rng)
