"""simulate.single_index: the literal one-step experiment, checked against a naive re-implementation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulate import data
from simulate import single_index as ss
from simulate.trials import spawn_seeds
from tests.conftest import assert_close

NOISE = 0.1


def _problem(d, rng, eps=0.9):
    t = data.two_level_spectrum(d, eps=eps)
    beta = rng.standard_normal(d)
    return t, beta / math.sqrt(float((t * beta) @ beta))


def _naive_trial(t, bt, *, n, N, lam, seed, trial=0, trials=1):
    """The same draws as one_step's trial ``trial``, then everything the slow, obvious way."""
    rng = ss.trial_generator(spawn_seeds(seed, trials)[trial])
    d = t.size
    X = rng.standard_normal((n, d)) * np.sqrt(t)
    y = np.tanh(X @ bt) + NOISE * rng.standard_normal(n)
    G0 = rng.standard_normal((N, d)) / math.sqrt(d)
    F0 = rng.standard_normal(N) / N
    H = X @ G0.T
    r = y - np.tanh(H) @ F0
    # -grad_G L = (1/n) sum_i [(F0' r_i) * sigma'(G0 x_i)] x_i'
    neg_grad = np.einsum("i,ij,j,ik->jk", r, 1 - np.tanh(H) ** 2, F0, X) / n
    S = X.T @ X / n
    b = X.T @ y / n
    out = {"sgd": b @ bt / (np.linalg.norm(b) * np.linalg.norm(bt))}
    U, s, Vt = np.linalg.svd(neg_grad)
    u = Vt[0] * np.sign(Vt[0] @ b)
    out["sgd_network"] = u @ bt / np.linalg.norm(bt)
    out["sgd_spike_size"] = s[0] / np.linalg.norm(F0)
    kf, net, size, inner, sq = [], [], [], [], []
    for lj in lam:
        Pinv = np.linalg.pinv(S) if lj == 0 else np.linalg.inv(S + lj * np.eye(d))
        v = Pinv @ b
        step = neg_grad @ Pinv
        _, s, Vt = np.linalg.svd(step)
        u = Vt[0] * np.sign(Vt[0] @ v)
        kf.append(v @ bt / (np.linalg.norm(v) * np.linalg.norm(bt)))
        net.append(u @ bt / np.linalg.norm(bt))
        size.append(s[0] / np.linalg.norm(F0))
        inner.append(v @ bt)
        sq.append(v @ v)
    out.update(kfac=kf, kfac_network=net, kfac_spike_size=size, kfac_inner=inner, kfac_sqnorm=sq)
    vp = np.array([b / (t + lj) for lj in lam])
    out["population"] = vp @ bt / (np.linalg.norm(vp, axis=1) * np.linalg.norm(bt))
    # the companion Stieltjes transform (1/n) tr (XX'/n + lam I_n)^{-1}, straight from the n x n matrix
    Gram = X @ X.T / n
    out["companion"] = [np.trace(np.linalg.solve(Gram + lj * np.eye(n), np.eye(n))) / n for lj in lam]
    z = X @ bt
    out.update(z_sq=z @ z / n, y_sq=y @ y / n, x_sq=np.sum(X * X) / n)
    return out


@pytest.mark.parametrize("n, lam", [(60, [1e-3, 0.1, 10.0]), (20, [0.0, 0.05, 2.0])])  # psi = 2 and psi = 2/3
def test_one_trial_matches_naive_implementation(rng, n, lam):
    d, N = 30, 12
    t, bt = _problem(d, rng)
    res = ss.one_step(t, bt, n=n, N=N, lam_G=lam, teacher="tanh", noise_std=NOISE, trials=2, seed=7)
    for trial in range(2):
        ref = _naive_trial(t, bt, n=n, N=N, lam=lam, seed=7, trial=trial, trials=2)
        for key in ("sgd", "sgd_network", "sgd_spike_size", "kfac", "kfac_network", "kfac_spike_size",
                    "kfac_inner", "kfac_sqnorm", "population", "companion", "z_sq", "y_sq", "x_sq"):
            got = getattr(res, key)[trial]
            # float64 round-off through solves of condition <= 1e4 and a Lanczos residual of 1e-10
            assert_close(got, ref[key], rtol=1e-7, atol=1e-9, what=f"{key} (n={n}, trial {trial})")


def test_companion_trace_paths(rng):
    """The companion trace comes from the one eigendecomposition (method "eigh"): n > d adds the n - d zero
    eigenvalues of XX'/n ((n - d)/lam, infinite at lam = 0); the Cholesky path ("solve") has none to reuse
    and reports None; the batch moments are reported on both paths."""
    t, bt = _problem(10, rng)
    kw = dict(N=3, teacher="tanh", noise_std=NOISE, trials=2, seed=5, network=False)
    ridge = ss.one_step(t, bt, n=30, lam_G=[0.0, 1.0], method="eigh", **kw)
    assert np.all(np.isinf(ridge.companion[:, 0])) and np.all(np.isfinite(ridge.companion[:, 1]))
    chol = ss.one_step(t, bt, n=30, lam_G=[1.0], method="solve", **kw)
    eig = ss.one_step(t, bt, n=30, lam_G=[1.0], method="eigh", **kw)
    assert chol.companion is None and eig.companion.shape == (2, 1)
    for key in ("z_sq", "y_sq", "x_sq"):
        assert np.array_equal(getattr(chol, key), getattr(eig, key)), key
    assert_close(eig.companion[:, 0], ridge.companion[:, 1], rtol=1e-14, what="same draws, same ridge")


def test_negative_gradient_against_finite_differences(rng):
    n, d, N = 7, 5, 3
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    G = rng.standard_normal((N, d))
    F = rng.standard_normal(N)

    def loss(Gm):
        return 0.5 * np.mean((y - np.tanh(X @ Gm.T) @ F) ** 2)

    fd = np.zeros_like(G)
    h = 1e-6
    for i in range(N):
        for j in range(d):
            E = np.zeros_like(G)
            E[i, j] = h
            fd[i, j] = -(loss(G + E) - loss(G - E)) / (2 * h)
    got = ss._neg_gradient(X, y, G, F, ss.STUDENTS["tanh"])
    assert_close(got, fd, rtol=1e-6, atol=1e-9, what="-grad_G L vs central differences (h = 1e-6)")


def test_batched_lanczos_matches_svd(rng):
    r, N, m = 40, 25, 3
    Ms = [rng.standard_normal((N, r)) for _ in range(m)]
    Ms[0] += 8.0 * np.outer(rng.standard_normal(N), rng.standard_normal(r)) / r  # a clear spike
    theta, U, steps = ss.top_singular_pairs(
        lambda Q: np.stack([M.T @ (M @ Q[:, j]) for j, M in enumerate(Ms)], axis=1),
        rng.standard_normal((r, m)), tol=1e-12, max_steps=40)
    for j, M in enumerate(Ms):
        _, s, Vt = np.linalg.svd(M)
        assert abs(math.sqrt(theta[j]) - s[0]) <= 1e-9 * s[0], f"operator {j}: s1 {math.sqrt(theta[j])} vs {s[0]}"
        assert abs(abs(U[:, j] @ Vt[0]) - 1) <= 1e-8, f"operator {j}: |<u, u_svd>| = {abs(U[:, j] @ Vt[0])}"
    assert steps <= 40


def test_paths_agree_and_reproducible(rng):
    d = 25
    t, bt = _problem(d, rng)
    kw = dict(n=60, N=10, lam_G=[0.01, 1.0], teacher="relu", noise_std=NOISE, trials=3, seed=11, network=False)
    a = ss.one_step(t, bt, method="eigh", **kw)
    b = ss.one_step(t, bt, method="solve", **kw)
    assert_close(a.kfac, b.kfac, rtol=1e-10, what="eigendecomposition vs Cholesky per ridge")
    assert_close(a.kfac_sqnorm, b.kfac_sqnorm, rtol=1e-9, what="|v|^2, eigh vs solve")
    c = ss.one_step(t, bt, method="eigh", **kw)
    assert np.array_equal(a.kfac, c.kfac) and np.array_equal(a.sgd, c.sgd), "same seed, different numbers"
    # the full (rotated) Sigma gives the numbers of its eigen-form (one_step rotates beta* itself)
    O = data.haar_orthogonal(d, rng=rng)
    Sigma = (O * t) @ O.T
    Sigma = 0.5 * (Sigma + Sigma.T)
    beta = O @ bt
    full = ss.one_step(Sigma, beta, **kw)
    tt, OO = np.linalg.eigh(Sigma)
    eig = ss.one_step(tt, OO.T @ beta, **kw)
    assert np.array_equal(full.kfac, eig.kfac) and np.array_equal(full.sgd, eig.sgd)
    # a SeedSequence master seed is not consumed: passed twice, the same trials
    sq = np.random.SeedSequence(11)
    once, twice = (ss.one_step(t, bt, method="eigh", **{**kw, "seed": sq}) for _ in range(2))
    assert np.array_equal(once.kfac, twice.kfac) and np.array_equal(once.kfac, a.kfac), "a SeedSequence seed moved"


def _fields_equal(one, parts, *, skip=("seed",)) -> None:
    """Every field of ``concatenate(parts)`` equals ``one``'s bit for bit (None stays None)."""
    got = ss.concatenate(parts)
    assert type(got) is type(one)
    for f in dataclasses.fields(one):
        if f.name in skip:
            continue
        x, y = getattr(got, f.name), getattr(one, f.name)
        if isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and x.shape == y.shape and np.array_equal(x, y, equal_nan=True), f.name
        else:
            assert x == y, f"{f.name}: {x!r} vs {y!r}"


@pytest.mark.parametrize("network, population", [(True, True), (False, False)])
def test_blocks_with_explicit_seeds_concatenate_to_the_one_call_run(rng, network, population):
    """A run cut into blocks of trials, each given its trials' seeds (how compare's runner schedules it),
    put back with ``concatenate``, is the one-call run bit for bit: trial i depends only on its seed."""
    t, bt = _problem(20, rng)
    kw = dict(n=40, N=8, lam_G=[0.0, 0.1, 2.0], teacher="tanh", noise_std=NOISE, network=network,
              population=population)
    one = ss.one_step(t, bt, trials=7, seed=13, **kw)
    seeds = spawn_seeds(13, 7)
    parts = [ss.one_step(t, bt, trials=b - a, seed=seeds[a:b], **kw) for a, b in ((0, 3), (3, 4), (4, 7))]
    _fields_equal(one, parts)
    got = ss.concatenate(parts)
    assert got.trials == 7 and [q.spawn_key for q in got.seed] == [q.spawn_key for q in seeds]
    # the test-error run likewise
    kw = dict(n=40, n_head=60, n_test=50, N=10, lam_G=[0.1, 1.0], lam_F=1e-3, teacher="tanh", noise_std=NOISE)
    one = ss.one_step_test_error(t, bt, trials=5, seed=13, **kw)
    parts = [ss.one_step_test_error(t, bt, trials=b - a, seed=seeds[a:b], **kw) for a, b in ((0, 2), (2, 5))]
    _fields_equal(one, parts, skip=())


def test_seed_lists_and_concatenate_reject_bad_input(rng):
    t, bt = _problem(6, rng)
    kw = dict(n=12, N=2, lam_G=[0.1], teacher="tanh", noise_std=NOISE, network=False)
    with pytest.raises(ValueError, match=r"^one_step: argument 'seed' must be a list of trials = 3 SeedSequences; "
                                         r"got 2 of them\.$"):
        ss.one_step(t, bt, trials=3, seed=spawn_seeds(0, 2), **kw)
    with pytest.raises(ValueError, match=r"^concatenate: argument 'parts' must be a non-empty list of results of "
                                         r"one class"):
        ss.concatenate([])
    a = ss.one_step(t, bt, trials=1, seed=0, **kw)
    b = ss.one_step_test_error(t, bt, n=12, n_head=12, n_test=12, N=2, lam_G=[0.1], lam_F=1e-3, teacher="tanh",
                               noise_std=NOISE, trials=1, seed=0)
    with pytest.raises(ValueError, match="argument 'parts' must be a non-empty list of results of one class"):
        ss.concatenate([a, b])


def test_result_shapes_and_test_error(rng):
    d = 20
    t, bt = _problem(d, rng)
    res = ss.one_step(t, bt, n=40, N=10, lam_G=np.geomspace(1e-3, 10, 4), teacher="erf", noise_std=0.0,
                      trials=3, seed=1, student="relu")
    assert res.sgd.shape == (3,) and res.kfac.shape == (3, 4) and res.kfac_network.shape == (3, 4)
    assert res.population.shape == (3, 4) and res.trials == 3 and res.d == d
    assert np.all(np.abs(res.kfac) <= 1 + 1e-12) and np.all(res.kfac_spike_size > 0)
    mse = ss.one_step_test_error(t, bt, n=40, n_head=60, n_test=50, N=10, lam_G=[0.1, 1.0], lam_F=1e-3,
                                 teacher="tanh", noise_std=NOISE, trials=2, seed=3)
    assert mse.none.shape == (2,) and mse.sgd.shape == (2,) and mse.kfac.shape == (2, 2)
    again = ss.one_step_test_error(t, bt, n=40, n_head=60, n_test=50, N=10, lam_G=[0.1, 1.0], lam_F=1e-3,
                                   teacher="tanh", noise_std=NOISE, trials=2, seed=3)
    assert np.array_equal(mse.kfac, again.kfac) and np.all(mse.none > 0)


def test_custom_student_and_lanczos_warning(rng):
    t, bt = _problem(16, rng)
    kw = dict(n=32, N=6, lam_G=[0.1, 1.0], teacher="tanh", noise_std=NOISE, trials=2, seed=4)
    named = ss.one_step(t, bt, **kw)
    pair = ss.one_step(t, bt, student=(np.tanh, lambda h: 1.0 / np.cosh(h) ** 2), **kw)
    assert_close(pair.kfac_network, named.kfac_network, rtol=1e-12, what="(tanh, sech^2) pair vs 'tanh'")
    with pytest.warns(RuntimeWarning, match="not converged"):
        ss.one_step(t, bt, max_steps=1, lanczos_tol=1e-15, **kw)


_T = np.array([1.0, 2.0, 3.0])
_B = np.array([1.0, 0.0, 1.0])
_KW = dict(n=6, N=2, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=1, seed=0)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"Sigma": np.array([[1.0, 0.3], [0.0, 1.0]]), "beta_star": [1.0, 1.0]}, "'Sigma' must be symmetric"),
        ({"Sigma": np.diag([1.0, -2.0]), "beta_star": [1.0, 1.0]}, "'Sigma' must be positive-definite"),
        ({"Sigma": np.array([1.0, 0.0, 2.0])}, "'Sigma' must be positive \\(a positive-definite spectrum\\)"),
        ({"beta_star": [1.0, 2.0]}, "'beta_star' must be a 1-D array of length d = 3"),
        ({"beta_star": np.zeros(3)}, "'beta_star' must be nonzero"),
        ({"beta_star": [1.0, np.inf, 0.0]}, "'beta_star' must be finite"),
        ({"n": 0}, "'n' must be an integer >= 1"),
        ({"N": 0}, "'N' must be an integer >= 1"),
        ({"lam_G": [0.1, -0.5]}, "'lam_G' must be >= 0"),
        ({"lam_G": [np.nan]}, "'lam_G' must be finite"),
        ({"teacher": "abs"}, "information exponent above 1"),
        ({"teacher": "nope"}, "'teacher' must be one of"),
        ({"student": "nope"}, "'student' must be one of"),
        ({"noise_std": -1.0}, "'noise_std' must be in"),
        ({"trials": 0}, "'trials' must be an integer >= 1"),
        ({"method": "solve"}, "'method' must be 'eigh' or 'auto' unless network=False"),
    ],
)
def test_bad_input(change, match):
    kw = {"Sigma": _T, "beta_star": _B, **_KW, **change}
    with pytest.raises(ValueError, match=match):
        ss.one_step(kw.pop("Sigma"), kw.pop("beta_star"), **kw)


# --------------------------------------------------------------------------- several teachers per trial
_TEACHER_FIELDS = ("sgd", "kfac", "sgd_inner", "sgd_sqnorm", "kfac_inner", "kfac_sqnorm", "population",
                   "population_inner", "population_sqnorm", "z_sq", "y_sq")
_NETWORK_FIELDS = ("sgd_network", "kfac_network", "sgd_spike_size", "kfac_spike_size")


@pytest.mark.parametrize("network_teachers", [None, 2])
def test_more_teachers_average_the_one_teacher_runs(rng, network_teachers):
    """Without label noise a teacher's labels are a function of the shared inputs, so a K-teacher trial must
    average K one-teacher runs (same seeds: same X, G0, F0) field by field; the network's values average over
    the first ``network_teachers`` (and ``*_paired`` over those same teachers). Round-off only."""
    d = 24
    t, b0 = _problem(d, rng)
    B = rng.standard_normal((d, 2))
    kw = dict(n=48, N=12, lam_G=[1e-3, 0.1, 1.0], teacher="tanh", noise_std=0.0, trials=3, seed=11)
    many = ss.one_step(t, b0, more_teachers=B, network_teachers=network_teachers, **kw)
    ones = [ss.one_step(t, b, **kw) for b in (b0, B[:, 0], B[:, 1])]
    m = 3 if network_teachers is None else network_teachers
    assert (many.teachers, many.network_teachers) == (3, m)
    for f in _TEACHER_FIELDS:
        assert_close(getattr(many, f), np.mean([getattr(r, f) for r in ones], axis=0), rtol=1e-12, atol=1e-15, what=f)
    # the further network teachers' spikes come from a block Lanczos applied without forming their updates, so
    # they agree with the one-teacher runs to the Lanczos stopping rule, not to round-off: a relative Ritz residual
    # <= tol = 1e-10 moves a top singular value by <= tol and its vector by <= tol / (relative gap) (Davis-Kahan);
    # the spikes here stand out by relative gaps (theta_1 - theta_2)/theta_1 >= 0.45 (measured over the draws of
    # fixture seeds 0-4), so 1e-8 leaves a factor > 40 over tol / gap
    for f in _NETWORK_FIELDS:
        assert_close(getattr(many, f), np.mean([getattr(r, f) for r in ones[:m]], axis=0), rtol=1e-8, atol=1e-10,
                     what=f)
    assert_close(many.kfac_paired, np.mean([r.kfac for r in ones[:m]], axis=0), rtol=1e-12, what="kfac_paired")
    assert_close(many.sgd_sqnorm_paired, np.mean([r.sgd_sqnorm for r in ones[:m]], axis=0), rtol=1e-12,
                 what="sgd_sqnorm_paired")
    assert_close(many.companion, ones[0].companion, rtol=0, what="companion (inputs shared)")


def test_more_teachers_keep_the_first_teachers_draws(rng):
    """The further teachers' label noise is drawn after everything a one-teacher trial draws: the shared
    inputs and initialisation are unchanged (companion trace, |F0|), one teacher gives the fields it always
    did (``*_paired`` = the plain values), and the Cholesky path agrees with the eigendecomposition."""
    d = 20
    t, b0 = _problem(d, rng)
    B = rng.standard_normal((d, 3))
    kw = dict(n=40, N=10, lam_G=[0.1, 1.0], teacher="tanh", noise_std=NOISE, trials=2, seed=4)
    one = ss.one_step(t, b0, **kw)
    many = ss.one_step(t, b0, more_teachers=B, network_teachers=1, **kw)
    assert np.array_equal(many.companion, one.companion) and np.array_equal(many.F0_norm, one.F0_norm)
    assert np.array_equal(many.kfac_network, one.kfac_network) and np.array_equal(many.sgd_spike_size,
                                                                                   one.sgd_spike_size)
    assert one.teachers == 1 and np.array_equal(one.sgd_paired, one.sgd) and np.array_equal(one.z_sq_paired, one.z_sq)
    solve = ss.one_step(t, b0, more_teachers=B, network=False, method="solve", **kw)
    eigh = ss.one_step(t, b0, more_teachers=B, network=False, method="eigh", **kw)
    for f in ("kfac", "kfac_inner", "kfac_sqnorm"):
        assert_close(getattr(solve, f), getattr(eigh, f), rtol=1e-10, what=f)


def test_more_teachers_rejected_with_powers_or_muon(rng):
    t, b0 = _problem(8, rng)
    kw = dict(n=16, N=4, lam_G=[0.1], teacher="tanh", noise_std=NOISE, trials=1, seed=0,
              more_teachers=np.ones((8, 1)))
    with pytest.raises(ValueError, match="argument 'more_teachers' must be None when powers or muon"):
        ss.one_step(t, b0, powers=(0.5,), **kw)
    with pytest.raises(ValueError, match="argument 'more_teachers' must be None when powers or muon"):
        ss.one_step(t, b0, muon=True, **kw)
    with pytest.raises(ValueError, match=r"argument 'network_teachers' must be an integer in \[1, 2\]"):
        ss.one_step(t, b0, network_teachers=3, **{k: v for k, v in kw.items()})
