"""Every registered optimizer (``sorted(REGISTRY)`` at collection time, so plugins registered before the tests
are collected are covered too) held to the same four properties on a tiny noiseless task:

- fixed point: at the truth (F*, G*) with the least-squares head, a step keeps the subspace distance at ~0 and
  the loss at its floor;
- descent: from a nearby point, small steps decrease the loss;
- stacked = single: where :func:`simulate.optimizers.stacked` supports the rule, stacked steps equal single
  steps; for every rule, :func:`simulate.linrep.run_common` gives the same numbers with and without stacking;
- determinism: two runs with the same seed give identical arrays.

The batch is noiseless and exact: the 2 d_x samples :math:`\\pm\\sqrt{d_x}\\Sigma_x^{1/2}e_j` have second moment
:math:`\\Sigma_x` (to round-off) and mean exactly 0, so it is at once the population batch and a sample batch
with means (rules with ``needs_samples`` / ``needs_means`` take it as it is).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulate import data, linrep, optimizers as so

NAMES = sorted(so.REGISTRY)
D_X, D_Y, K = 5, 3, 2


@pytest.fixture
def task(seed):
    rng = np.random.default_rng([seed, 11])
    p = data.linrep_problem(D_X, D_Y, K, kappa_x=5.0, kappa_F=2.0, noise_std=0.0, rng=rng)
    A = np.sqrt(D_X) * data.symmetric_sqrt(p.Sigma_x)
    X = np.vstack([A, -A])
    return p, so.Batch.from_samples(X, X @ p.M.T), rng


def _loss(opt, F, G, batch, state, p):
    """The rule's own training loss when it has one (``batch_loss``), else the population loss
    :math:`\\tfrac12\\lVert(FG - M)\\Sigma_x^{1/2}\\rVert_F^2` in residual form (relative accuracy ~u)."""
    if hasattr(opt, "batch_loss"):
        return float(np.asarray(opt.batch_loss(F, G, batch, state)).reshape(-1)[0])
    R = (F @ G - p.M) @ p.Sigma_x_sqrt
    return 0.5 * float(np.einsum("ij,ij->", R, R))


def _least_squares_head(opt, G, batch, state):
    """The head minimising the rule's training loss for this G: the closed form for the plain model; for a rule
    with its own ``batch_loss`` (e.g. batch-norm), the minimiser of that loss, quadratic in F, from its exact
    gradient and Hessian at 0 by unit probes (F = 0, +-E_i, E_i + E_j: exact for a quadratic, up to round-off)."""
    if not hasattr(opt, "batch_loss"):
        return linrep.least_squares_head(G, batch)
    m = D_Y * K
    E = np.eye(m).reshape(m, D_Y, K)

    def L(F):
        return float(np.asarray(opt.batch_loss(F, G, batch, state)).reshape(-1)[0])

    L0 = L(np.zeros((D_Y, K)))
    Lp = np.array([L(E[i]) for i in range(m)])
    Lm = np.array([L(-E[i]) for i in range(m)])
    H = np.diag(Lp + Lm - 2 * L0)
    for i in range(m):
        for j in range(i):
            H[i, j] = H[j, i] = L(E[i] + E[j]) - Lp[i] - Lp[j] + L0
    return np.linalg.solve(H, -(Lp - Lm) / 2).reshape(D_Y, K)


def _distance(G, G_star):
    return float(linrep.principal_angles(G, G_star)[0][0])


@pytest.mark.parametrize("name", NAMES)
def test_truth_is_a_fixed_point(task, name):
    """At (F*, G*) the gradient is round-off, |g| <~ 1e-15 here. A rule's step is at most lr times that round-off
    amplified by its normalisation: 1 for SGD and eq. (5), 1/eps for AdaGrad (eps 1e-10), Adam and SOAP (1e-8),
    a^5 / 1e-7 ~ 4.9e9 for Muon's Newton-Schulz on u / (||u|| + 1e-7). So with lr = 1e-2 the distance stays below
    lr * 1e-15 * 1e10 = 1e-7 (measured over 20 seeds: <= 2.1e-8 AdaGrad, 1.9e-8 Muon, 2.1e-10 Adam, 4.6e-11
    SOAP, <= 7.2e-16 the others), and the noiseless loss floor 0 is kept to 1e-12 (the displacement squared,
    plus round-off of the loss). One step that moves: a rule whose first call leaves (F, G) as they are (SOAP's
    first call only sets its preconditioner) is stepped once more. (Only one: the normalised rules are not stable
    at the truth, their next step normalises the displacement of the first, measured up to 3e-2 for AdaGrad,
    1.1e-2 Muon, 1.7e-4 Adam at lr 1e-2.)"""
    p, batch, _ = task
    opt = so.make(name, lr=1e-2)
    G = p.G_star.copy()
    state = opt.init(p.F_star, G)
    F = _least_squares_head(opt, G, batch, state)
    assert abs(_loss(opt, F, G, batch, state, p)) < 1e-12, f"{name}: the least-squares head at G* is not exact"
    F1, G1, state1 = opt.step(F, G, batch, state)
    if np.array_equal(F1, F) and np.array_equal(G1, G):
        F1, G1, state1 = opt.step(F1, G1, batch, state1)
    d = _distance(G1, p.G_star)
    assert d < 1e-7, f"{name}: one step from the truth moved the subspace by {d:.2e} (> 1e-7)"
    loss = _loss(opt, F1, G1, batch, state1, p)
    assert abs(loss) < 1e-12, f"{name}: one step from the truth left the loss at {loss:.2e} (floor 0, tolerance 1e-12)"


@pytest.mark.parametrize("name", NAMES)
def test_small_steps_descend_from_a_nearby_point(task, name):
    """From (F*, G*) + 1e-3 N(0, 1) entries, two steps with lr = 1e-5: neither raises the loss (SOAP's first call
    moves nothing) and together they lower it. Nearby matters for ``newton``: its step descends only while the
    residual term of the exact Hessian (norm ~ the distance) stays below its damping (1e-3 x the mean diagonal);
    at distance 0.05 it ascends on some draws. Measured smallest relative decrease over 20 seeds: 3.0e-5 (SGD;
    newton 3.9e-5, NGD 4.0e-5, KFAC 4.3e-5), far above the loss's round-off (~1e-15 relative) and the 1e-8 asked."""
    p, batch, rng = task
    F = p.F_star + 1e-3 * rng.standard_normal(p.F_star.shape)
    G = p.G_star + 1e-3 * rng.standard_normal(p.G_star.shape)
    opt = so.make(name, lr=1e-5)
    state = opt.init(F, G)
    L0 = _loss(opt, F, G, batch, state, p)
    F1, G1, state1 = opt.step(F, G, batch, state)
    L1 = _loss(opt, F1, G1, batch, state1, p)
    F2, G2, state2 = opt.step(F1, G1, batch, state1)
    L2 = _loss(opt, F2, G2, batch, state2, p)
    assert L1 <= L0 * (1 + 1e-12), f"{name}: the first step raised the loss {L0:.6e} -> {L1:.6e}"
    assert L2 <= L1 * (1 + 1e-12), f"{name}: the second step raised the loss {L1:.6e} -> {L2:.6e}"
    assert L2 < L0 * (1 - 1e-8), f"{name}: two steps did not lower the loss ({L0:.6e} -> {L2:.6e})"


@pytest.mark.parametrize("name", NAMES)
def test_stacked_steps_equal_single_steps(task, name):
    """Rules with a stacked path (simulate.optimizers.stacked): three stacked steps of two step sizes equal the
    single steps to round-off (same operations batched; rtol 1e-9 as in test_optimizers_more). Every rule:
    run_common with stack=True equals stack=False (a rule without a stacked path runs alone either way; the
    batches are common random numbers), to the same round-off."""
    p, batch, rng = task
    lrs = (1e-3, 3e-3)
    opts = [so.make(name, lr=lr) for lr in lrs]
    st = so.stacked(opts)
    if st is not None:
        F0 = p.F_star + 0.1 * rng.standard_normal(p.F_star.shape)
        G0 = p.G_star + 0.1 * rng.standard_normal(p.G_star.shape)
        FS, GS = np.repeat(F0[None], 2, 0), np.repeat(G0[None], 2, 0)
        SS = st.init(FS, GS)
        singles = [(F0, G0, o.init(F0, G0)) for o in opts]
        for _ in range(3):
            FS, GS, SS = st.step(FS, GS, batch, SS)
            singles = [o.step(F, G, batch, s) for o, (F, G, s) in zip(opts, singles)]
        for i, (F, G, _) in enumerate(singles):
            np.testing.assert_allclose(FS[i], F, rtol=1e-9, atol=1e-12, err_msg=f"{name} stacked F, lr {lrs[i]}")
            np.testing.assert_allclose(GS[i], G, rtol=1e-9, atol=1e-12, err_msg=f"{name} stacked G, lr {lrs[i]}")
    specs = [linrep.OptimizerSpec(f"{name}@{lr}", name, lr) for lr in lrs]
    runs = [linrep.run_common(p, specs, steps=4, batch=4 * D_X, rng=np.random.default_rng(5), stack=stack)
            for stack in (True, False)]
    for key in ("train_loss", "population_loss", "subspace_distance"):
        a, b = getattr(runs[0], key), getattr(runs[1], key)
        assert np.all(np.isfinite(a)), f"{name}: run_common(stack=True) {key} not finite: {a}"
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{name}: run_common {key}, stacked vs not")


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_arrays(task, name):
    """simulate.linrep.run twice with the same seed (fresh batches of 4 d_x samples, random start): identical
    arrays, bit for bit."""
    p, _, _ = task
    runs = [linrep.run(p, name, steps=5, lr=1e-3, batch=4 * D_X, rng=np.random.default_rng(123)) for _ in range(2)]
    for key in ("train_loss", "subspace_distance", "transfer_loss", "F", "G"):
        a, b = getattr(runs[0], key), getattr(runs[1], key)
        assert np.array_equal(a, b), f"{name}: {key} differs between two runs with the same seed"


class _Broken:
    """SGD broken one way: ``ascent`` steps up the gradient, ``drift`` adds a fixed push to G, ``noisy`` draws from
    an unseeded generator."""

    def __init__(self, lr, how):
        self.lr, self.how, self.name = lr, how, f"broken_{how}"

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        gF, gG = so.grad_F(F, G, batch)[0], so.grad_G(F, G, batch)
        if self.how == "ascent":
            return F + self.lr * gF, G + self.lr * gG, state
        if self.how == "drift":
            return F - self.lr * gF, G - self.lr * gG + 1e-3 * np.eye(*G.shape)[::-1], state
        jitter = 1e-12 * np.random.default_rng().standard_normal(G.shape)
        return F - self.lr * gF, G - self.lr * gG + jitter, state


@pytest.mark.parametrize("how, check", [("ascent", test_small_steps_descend_from_a_nearby_point),
                                        ("drift", test_truth_is_a_fixed_point),
                                        ("noisy", test_same_seed_same_arrays)])
def test_the_matrix_catches_a_broken_rule(task, how, check):
    """Each property can fail: a rule broken the matching way, registered for the check, fails it."""
    name = f"test_broken_{how}"
    so.register(name, lambda lr, how=how: _Broken(lr, how))
    try:
        with pytest.raises(AssertionError, match=name):
            check(task, name)
    finally:
        so.REGISTRY.pop(name)
