"""simulate.data: batches drawn as sufficient statistics (:class:`simulate.data.BatchSampler`).

The sampler never forms X; its statistics must equal those of the materialised batch on the same draws
to float64 round-off (plus the derived bound of its float32 noise products, for signs), have the law of
the batch (tested through its moments over many draws), be reproducible, and feed every update rule
exactly what the samples would.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from simulate import data, linrep as sl, optimizers as so
from tests.conftest import assert_close

U = np.finfo(float).eps / 2  # unit round-off


def _gamma(m: int) -> float:
    """Higham's gamma_m = m u / (1 - m u): bound on the relative error of an m-term float64 dot product."""
    return m * U / (1.0 - m * U)


def _problem(law: str, noise: float, seed: int = 0, dims=(23, 5, 3)) -> data.LinRepProblem:
    d_x, d_y, k = dims
    return data.linrep_problem(d_x, d_y, k, kappa_x=50.0, kappa_F=5.0, noise_std=noise, law=law,
                               rng=np.random.default_rng(seed))


def _standard_draws(p: data.LinRepProblem, n: int, seed: int):
    """W and E as the sampler draws them from ``default_rng(seed)`` (stream order: inputs, then noise)."""
    rng = np.random.default_rng(seed)
    if p.law == "rademacher":   # rademacher_signs' bits, rows spaced as the sampler's buffer (draw_batch_fast)
        W = data._rademacher(n, p.d_x, rng, row_bytes=data._sign_row_bytes(p))
    else:
        W = data.standard_inputs(n, p.d_x, law=p.law, rng=rng)
    E = rng.standard_normal((n, p.d_y)) if p.noise_std > 0 else np.zeros((n, p.d_y))
    return W, E


# --------------------------------------------------------------------------- equal to the materialised batch
def _gamma32(m: int) -> float:
    """gamma_m of float32 (u = 2**-24, data.U32)."""
    return m * data.U32 / (1.0 - m * data.U32)


def _noise_f32_bounds(p: data.LinRepProblem, n: int, E: np.ndarray) -> dict:
    """Entrywise bounds on what the sampler's float32 noise products E'W, E'1, E'E add to each statistic.

    The SYRK rounds E to float32 (u = 2**-24) and multiplies it by +-1 or 1 exactly; any summation order
    adds at most n - 1 roundings, so |fl(E'W)_jk - (E'W)_jk| <= gamma_n a_j, a_j = sum_i |E_ij|
    (gamma_{n-1} + u + u gamma_{n-1} <= gamma_n: Higham 2002, Lemma 3.3), likewise E'1; the squares of E'E
    are rounded once more: |fl(E'E)_jj - (E'E)_jj| <= gamma_{n+2} sum_i E_ij^2. Through the sampler's formulas
    (docstring of BatchSampler): Sigma_yx gets sigma/n |dE'W| |S|, trace_yy 2 sigma/n <|dE'W|, |M S|> +
    sigma^2/n sum_j |d(E'E)_jj|, y_mean sigma/n |dE'1|.
    """
    s = p.noise_std
    if not (p.law == "rademacher" and s > 0 and n <= data.EXACT_FLOAT32_N):
        return {"Sigma_yx": 0.0, "trace_yy": 0.0, "y_mean": 0.0}
    a = np.abs(E).sum(axis=0)                                            # (d_y,)
    dP = _gamma32(n) * np.outer(a, np.ones(p.d_x))                       # bound on |d E'W|
    return {"Sigma_yx": s / n * dP @ np.abs(p.Sigma_x_sqrt),
            "trace_yy": 2 * s / n * np.sum(dP * np.abs(p.M @ p.Sigma_x_sqrt))
            + s * s / n * _gamma32(n + 2) * np.sum(E * E),
            "y_mean": s / n * _gamma32(n) * a}


def _check_bounds(rows, what):
    for name, got, ref, bound in rows:
        err = np.abs(np.asarray(got) - np.asarray(ref))
        i = np.unravel_index(np.argmax(err - bound), np.shape(err)) if np.ndim(err) else ()
        b = np.broadcast_to(bound, np.shape(err))
        assert np.all(err <= bound), f"{what} {name}: |moments - reference| {np.asarray(err)[i]:.3e} > " \
                                     f"bound {np.asarray(b)[i]:.3e} at {i}"


@pytest.mark.parametrize("law", data.LAWS)
@pytest.mark.parametrize("n, noise", [(1024, 0.05), (333, 0.3), (40, 0.0)])
def test_statistics_equal_the_materialised_batch_to_round_off(law, n, noise):
    # Same draws, two computations: the sampler (S (W'W) S / n, ...) and Batch.from_samples of
    # X = W S, Y = X M' + sigma E (draw_batch_fast). Each float64 entry is a sum of at most
    # m = n + 3 d_x + k products, so both lie within gamma_m (|S| |W|'|W| |S| / n and the like) of the
    # exact value: the difference is bounded by twice that (Higham, Thm 3.5, applied entrywise). The
    # sampler's noise products E'W, E'1, E'E are float32 for signs: their derived bound (_noise_f32_bounds)
    # is added to Sigma_yx, trace_yy and y_mean.
    p = _problem(law, noise)
    m_ = data.draw_batch_moments(p, n, rng=np.random.default_rng(11))
    X, Y = data.draw_batch_fast(p, n, rng=np.random.default_rng(11))
    b = so.Batch.from_samples(X, Y)
    W, E = _standard_draws(p, n, 11)
    assert_close(X, W @ p.Sigma_x_sqrt, rtol=0, atol=0, what="draw_batch_fast's X from the same draws")
    aS, aM, aW, aE = np.abs(p.Sigma_x_sqrt), np.abs(p.M), np.abs(W), np.abs(E)
    g = 2 * _gamma(n + 3 * p.d_x + p.k)
    ax = aS @ (aW.T @ aW) @ aS / n
    ay = aM @ ax + p.noise_std * (aE.T @ aW) @ aS / n
    aYs = aW @ aS @ aM.T + p.noise_std * aE
    f32 = _noise_f32_bounds(p, n, E)
    _check_bounds([
        ("Sigma_x", m_.Sigma_x, b.Sigma_x, g * ax),
        ("Sigma_yx", m_.Sigma_yx, b.Sigma_yx, g * ay + f32["Sigma_yx"]),
        ("trace_yy", m_.trace_yy, b.trace_yy, g * np.sum(aYs * aYs) / n + f32["trace_yy"]),
        ("x_mean", m_.x_mean, X.mean(axis=0), g * aS @ aW.sum(axis=0) / n),
        ("y_mean", m_.y_mean, Y.mean(axis=0), g * aYs.sum(axis=0) / n + f32["y_mean"]),
    ], f"{law} n={n}")
    assert np.array_equal(m_.Sigma_x, m_.Sigma_x.T), "Sigma_x must be exactly symmetric"
    assert m_.n == n
    if law == "rademacher" and noise > 0:
        # the float32 bound is tight enough to matter: an error of 1% of the noise term sigma E'W S / n
        # (one entry) exceeds it
        noise_term = noise * (E.T @ W) @ p.Sigma_x_sqrt / n
        i = np.unravel_index(np.argmax(np.abs(noise_term)), noise_term.shape)
        bound = (g * ay + f32["Sigma_yx"])[i]
        assert 0.01 * abs(noise_term[i]) > bound, \
            f"bound {bound:.3e} vs 1% of the noise term {abs(noise_term[i]):.3e}"


@pytest.mark.parametrize("dims", [(16, 4, 2), (21, 2, 1), (100, 10, 5), (9, 30, 3)])
@pytest.mark.parametrize("noise", [0.0, 0.2])
@pytest.mark.parametrize("means", [True, False])
def test_every_layout_of_the_work_buffer(dims, noise, means):
    # The sampler's buffer [W | E | 1 | padding] changes with d_x (a multiple of 8 or not: the unused bits of
    # the last byte of a row), d_y (the noise columns inside or beyond those bits), sigma = 0 (no noise
    # columns) and the means (no ones column): every layout gives the materialised batch's statistics
    # within the bounds of the test above.
    p = _problem("rademacher", noise, seed=2, dims=dims)
    n = 257
    m_ = data.BatchSampler(p, n, means=means).draw(np.random.default_rng(3))
    b = so.Batch.from_samples(*data.draw_batch_fast(p, n, rng=np.random.default_rng(3)))
    W, E = _standard_draws(p, n, 3)
    aS, aM = np.abs(p.Sigma_x_sqrt), np.abs(p.M)
    g = 2 * _gamma(n + 3 * p.d_x + p.k)
    ax = aS @ (np.abs(W).T @ np.abs(W)) @ aS / n
    aYs = np.abs(W) @ aS @ aM.T + noise * np.abs(E)
    f32 = _noise_f32_bounds(p, n, E)
    rows = [("Sigma_x", m_.Sigma_x, b.Sigma_x, g * ax),
            ("Sigma_yx", m_.Sigma_yx, b.Sigma_yx, g * (aM @ ax + noise * (np.abs(E).T @ np.abs(W)) @ aS / n)
             + f32["Sigma_yx"]),
            ("trace_yy", m_.trace_yy, b.trace_yy, g * np.sum(aYs * aYs) / n + f32["trace_yy"])]
    if means:
        rows += [("x_mean", m_.x_mean, b.x_mean, g * aS @ np.abs(W).sum(axis=0) / n),
                 ("y_mean", m_.y_mean, b.y_mean, g * aYs.sum(axis=0) / n + f32["y_mean"])]
    else:
        assert m_.x_mean is None and m_.y_mean is None
    _check_bounds(rows, f"dims={dims} sigma={noise} means={means}")
    assert np.array_equal(m_.Sigma_x, m_.Sigma_x.T)


def test_float32_gram_of_signs_is_exact_and_the_float64_path_agrees(monkeypatch):
    # W'W of +-1 signs: integer entries and partial sums of modulus <= n < 2**24, exact in float32
    rng = np.random.default_rng(5)
    W32 = data.rademacher_signs(3001, 37, rng=rng, dtype=np.float32)
    Wi = W32.astype(np.int64)
    assert W32.dtype == np.float32 and np.array_equal(W32.T @ W32, (Wi.T @ Wi).astype(np.float32))
    assert np.array_equal(W32, data.rademacher_signs(3001, 37, rng=np.random.default_rng(5)))  # same bits, any dtype
    # row i of W is the first 37 bits of bytes 5 i .. 5 i + 4 of the stream (rows start on a byte)
    bits = np.unpackbits(data.random_bits(3001 * 40, np.random.default_rng(5))[: 3001 * 5]).reshape(3001, 40)
    assert np.array_equal(W32, 2.0 * bits[:, :37] - 1.0), "rademacher_signs: the documented bit mapping"
    # above EXACT_FLOAT32_N the sampler's Gram (and its noise products) are float64: the same statistics
    # within float64 round-off (rtol 1e-13) plus the float32 noise bound of the fast path
    p = _problem("rademacher", 0.1)
    n = 500
    fast = data.draw_batch_moments(p, n, rng=np.random.default_rng(2))
    monkeypatch.setattr(data, "EXACT_FLOAT32_N", 100)
    slow = data.draw_batch_moments(p, n, rng=np.random.default_rng(2))
    assert data.BatchSampler(p, n)._B.dtype == np.float64
    _, E = _standard_draws(p, n, 2)
    monkeypatch.undo()
    f32 = _noise_f32_bounds(p, n, E)
    _check_bounds([(k, getattr(fast, k), getattr(slow, k),
                    1e-13 * np.abs(getattr(slow, k)) + 1e-15 + f32.get(k, 0.0))
                   for k in ("Sigma_x", "Sigma_yx", "trace_yy", "x_mean", "y_mean")], "float32 vs float64 sampler")
    assert np.array_equal(fast.Sigma_x, slow.Sigma_x) and np.array_equal(fast.x_mean, slow.x_mean), \
        "W'W and W'1 are exact in both"


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_same_statistics_and_no_shared_buffers():
    p = _problem("rademacher", 0.05)
    s1, s2 = data.BatchSampler(p, 200), data.BatchSampler(p, 200)
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    first = s1.draw(r1)
    kept = first.Sigma_x.copy(), first.Sigma_yx.copy(), first.x_mean.copy()
    seq1 = [first] + [s1.draw(r1) for _ in range(3)]
    seq2 = [s2.draw(r2) for _ in range(4)]
    for a, b in zip(seq1, seq2):
        for key in ("Sigma_x", "Sigma_yx", "trace_yy", "x_mean", "y_mean"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
    # later draws reuse the sampler's buffers, never the returned statistics
    assert np.array_equal(first.Sigma_x, kept[0]) and np.array_equal(first.Sigma_yx, kept[1])
    assert np.array_equal(first.x_mean, kept[2])
    assert not np.array_equal(seq1[0].Sigma_x, seq1[1].Sigma_x)
    # one-off draws consume the stream as the sampler does
    one = data.draw_batch_moments(p, 200, rng=np.random.default_rng(9))
    assert np.array_equal(one.Sigma_yx, seq2[0].Sigma_yx)
    # means=False skips the means and nothing else
    bare = data.BatchSampler(p, 200, means=False).draw(np.random.default_rng(9))
    assert bare.x_mean is None and np.array_equal(bare.Sigma_x, seq2[0].Sigma_x)


# --------------------------------------------------------------------------- the law of the batch
_KAPPA4 = {"rademacher": -2.0, "uniform": -1.2, "gaussian": 0.0}  # fourth cumulant E w^4 - 3 of the unit law


@pytest.mark.parametrize("law", data.LAWS)
def test_the_statistics_have_the_law_of_the_batch(law):
    # T batches of n samples. For x = S w (w iid, unit variance, fourth cumulant kappa) and y = M x + sigma e:
    #   E Sigma_x_hat = Sigma_x, with Var (Sigma_x_hat)_ab = v_ab / n exactly,
    #   v_ab = Var(x_a x_b) = Sigma_aa Sigma_bb + Sigma_ab^2 + kappa sum_j S_aj^2 S_bj^2;
    # the mean over T batches is a mean of N = T n iid products: z-scores with the derived s.e.
    # sqrt(v_ab / N), normal by the CLT (bounded summands, N = 48000), Bonferroni over the
    # d(d+1)/2 entries at family-wise alpha = 1e-6. The within-batch independence of the samples is
    # checked through E q = d(d+1)/2 for q = sum_ab (Sigma_hat - Sigma)_ab^2 / (v_ab / n) (one-sample
    # t on T - 1 df, estimated s.e.); E Sigma_yx_hat = M Sigma_x, E trace_yy = tr(M Sigma M') + d_y sigma^2
    # and E x_bar = 0, E y_bar = 0 entrywise (t on T - 1 df, estimated s.e.), all at alpha = 1e-6 in total.
    T, n = 1500, 32
    p = _problem(law, 0.4, seed=3, dims=(6, 3, 2))
    S, M, Sig = p.Sigma_x_sqrt, p.M, p.Sigma_x
    d = p.d_x
    smp = data.BatchSampler(p, n)
    rng = np.random.default_rng(20250201)
    draws = [smp.draw(rng) for _ in range(T)]
    Sx = np.stack([b.Sigma_x for b in draws])
    iu = np.triu_indices(d)
    v = (np.outer(np.diag(Sig), np.diag(Sig)) + Sig**2 + _KAPPA4[law] * (S**2) @ (S**2).T)[iu]
    z = (Sx.mean(axis=0)[iu] - Sig[iu]) / np.sqrt(v / (T * n))
    m_entries = iu[0].size
    n_tests = m_entries + 1 + p.d_y * d + 1 + d + p.d_y  # z-scores, q, Sigma_yx, trace_yy, x_bar, y_bar
    alpha = 1e-6 / n_tests
    zc = st.norm.isf(alpha / 2)
    assert np.abs(z).max() <= zc, f"{law}: E Sigma_x_hat off Sigma_x by {np.abs(z).max():.2f} s.e. (> {zc:.2f})"
    q = np.sum((Sx[:, iu[0], iu[1]] - Sig[iu]) ** 2 / (v / n), axis=1)
    tc = st.t.isf(alpha / 2, df=T - 1)

    def t_check(samples, mean, what):
        samples = np.asarray(samples, dtype=float).reshape(T, -1)
        mean = np.broadcast_to(np.asarray(mean, dtype=float).reshape(-1), samples.shape[1:])
        t = (samples.mean(axis=0) - mean) / (samples.std(axis=0, ddof=1) / np.sqrt(T))
        assert np.abs(t).max() <= tc, f"{law} {what}: {np.abs(t).max():.2f} s.e. off (> {tc:.2f}, t {T - 1} df)"

    t_check(q, m_entries, "E sum of standardised squared deviations")
    t_check([b.Sigma_yx for b in draws], M @ Sig, "E Sigma_yx_hat = M Sigma_x")
    t_check([b.trace_yy for b in draws], np.trace(M @ Sig @ M.T) + p.d_y * p.noise_std**2, "E trace_yy")
    t_check([b.x_mean for b in draws], 0.0, "E x_bar")
    t_check([b.y_mean for b in draws], 0.0, "E y_bar")


def test_the_law_test_can_fail():
    # The z-test above detects (with probability >= 0.9) a relative error of the covariance of
    # (z_c + 1.28) x its relative s.e. <= (z_c + 1.28) sqrt(2 / (T n)) = 4.5% on the diagonal
    # (v_aa <= 2 Sigma_aa^2 for kappa <= 0). Inputs scaled by sqrt(1.05) (covariance off by 5%,
    # E Sigma_hat_x scaled by 1.05) must fail it.
    T, n = 1500, 32
    p = _problem("rademacher", 0.4, seed=3, dims=(6, 3, 2))
    S, Sig = p.Sigma_x_sqrt, p.Sigma_x
    smp = data.BatchSampler(p, n)
    rng = np.random.default_rng(20250201)
    mean = np.mean([smp.draw(rng).Sigma_x for _ in range(T)], axis=0) * 1.05
    iu = np.triu_indices(p.d_x)
    v = (np.outer(np.diag(Sig), np.diag(Sig)) + Sig**2 - 2.0 * (S**2) @ (S**2).T)[iu]
    z = (mean[iu] - Sig[iu]) / np.sqrt(v / (T * n))
    n_tests = iu[0].size + 1 + p.d_y * p.d_x + 1 + p.d_x + p.d_y
    zc = st.norm.isf(1e-6 / n_tests / 2)
    detectable = (zc + st.norm.isf(0.1)) * np.sqrt(2.0 / (T * n))
    assert detectable <= 0.05, detectable
    assert np.abs(z).max() > zc, f"a 5% error of the covariance passed: max |z| {np.abs(z).max():.2f} <= {zc:.2f}"


# --------------------------------------------------------------------------- every rule on the statistics
def _bn_step_samples(opt, F, G, X, Y, state, lr):
    """The literal sample-wise batch-norm step (forward over the samples, back-propagation through the
    batch mean and variance, least-squares head on the new features, running statistics)."""
    n = X.shape[0]
    g, b = state.gamma, state.beta
    H = G @ X.T
    mu = H.mean(axis=1)
    Hc = H - mu[:, None]
    inv = 1.0 / np.sqrt((Hc * Hc).sum(axis=1) / n + opt.eps)
    Hh = Hc * inv[:, None]
    Z = Hh * g[:, None] + b[:, None]
    dZ = F.T @ (F @ Z - Y.T) / n
    dHh = dZ * g[:, None]
    dH = inv[:, None] * (dHh - dHh.mean(axis=1)[:, None] - Hh * ((dHh * Hh).sum(axis=1) / n)[:, None])
    G = G - lr * (dH @ X)
    g = g - lr * (dZ * Hh).sum(axis=1)
    b = b - lr * dZ.sum(axis=1)
    H = G @ X.T
    mu = H.mean(axis=1)
    Hc = H - mu[:, None]
    var = (Hc * Hc).sum(axis=1) / n
    Z = Hc * (g / np.sqrt(var + opt.eps))[:, None] + b[:, None]
    F = np.linalg.solve(Z @ Z.T / n, Z @ Y / n).T
    m = opt.momentum
    return F, G, so.BatchNormState(g, b, (1 - m) * state.running_mean + m * mu,
                                   (1 - m) * state.running_var + m * var * n / (n - 1))


def test_batchnorm_on_moments_is_the_samplewise_step(monkeypatch):
    # The rule's algebra on the statistics is checked against the samples at float64 precision: the
    # sampler's float64 Gram (EXACT_FLOAT32_N = 0; its float32 noise products, within the bound derived and
    # tested above, would otherwise dominate the difference, ~1e-9 relative, amplified by the solves).
    monkeypatch.setattr(data, "EXACT_FLOAT32_N", 0)
    p = _problem("rademacher", 0.1, seed=4, dims=(15, 4, 3))
    rng = np.random.default_rng(6)
    F = rng.standard_normal((p.d_y, p.k))
    G = rng.standard_normal((p.k, p.d_x)) / np.sqrt(p.d_x)
    opt = so.make("amgd_bn", lr=0.3, momentum=0.2)
    st_m = st_s = so.BatchNormState(np.linspace(0.8, 1.2, p.k), np.linspace(-0.1, 0.1, p.k), np.zeros(p.k),
                                    np.ones(p.k))
    Fm, Gm, Fs, Gs = F, G, F, G
    for t in range(4):  # a few steps, each on a fresh batch
        seed = 100 + t
        X, Y = data.draw_batch_fast(p, 60, rng=np.random.default_rng(seed))
        b = so.Batch.from_moments(data.draw_batch_moments(p, 60, rng=np.random.default_rng(seed)))
        Z = st_s.gamma * (X @ Gs.T - (X @ Gs.T).mean(0)) / np.sqrt((X @ Gs.T).var(0) + opt.eps) + st_s.beta
        loss_s = 0.5 * np.sum((Y - Z @ Fs.T) ** 2) / X.shape[0]
        # the moment form cancels tr C_yy against the fit: round-off ~ u x (tr Syy) / loss, loss = O(1) here
        assert_close(opt.batch_loss(Fm, Gm, b, st_m), loss_s, rtol=1e-11, what=f"batch-norm training loss, step {t}")
        Fm, Gm, st_m = opt.step(Fm, Gm, b, st_m)
        Fs, Gs, st_s = _bn_step_samples(opt, Fs, Gs, X, Y, st_s, opt.lr)
        # inputs agree to ~1e-15; the head solve amplifies round-off by cond(Sigma_z) (< 1e3 here)
        for what, a, e in [("G", Gm, Gs), ("F", Fm, Fs), ("gamma", st_m.gamma, st_s.gamma), ("beta", st_m.beta, st_s.beta),
                           ("running mean", st_m.running_mean, st_s.running_mean),
                           ("running var", st_m.running_var, st_s.running_var)]:
            assert_close(a, e, rtol=1e-10, atol=1e-12 * np.abs(e).max(), what=f"batch-norm {what}, step {t}")


FIG1 = ("sgd", "amgd", "adam", "amgd_bn", "ngd", "newton", "kfac", "kfac_ls")


@pytest.mark.parametrize("law", data.LAWS)
def test_every_rule_steps_alike_on_statistics_and_on_samples(law, monkeypatch):
    # run_common feeds the sampler's statistics; the same draws materialised give the same steps.
    # The statistics agree to ~1e-15 relative (test above); a step's solves amplify that by at most the
    # condition numbers involved (Sigma_x_hat, Sigma_z_hat, the damped Gauss-Newton matrix: < 1e5 here).
    # The rule's algebra on the statistics is checked against the samples at float64 precision: the
    # sampler's float64 Gram (EXACT_FLOAT32_N = 0; its float32 noise products, within the bound derived and
    # tested above, would otherwise dominate the difference, ~1e-9 relative, amplified by the solves).
    monkeypatch.setattr(data, "EXACT_FLOAT32_N", 0)
    p = _problem(law, 0.1, seed=8, dims=(15, 4, 3))
    rng = np.random.default_rng(3)
    F = rng.standard_normal((p.d_y, p.k))
    G = rng.standard_normal((p.k, p.d_x)) / np.sqrt(p.d_x)
    b_m = so.Batch.from_moments(data.draw_batch_moments(p, 50, rng=np.random.default_rng(4)))
    b_s = so.Batch.from_samples(*data.draw_batch_fast(p, 50, rng=np.random.default_rng(4)))
    for name in FIG1:
        opt = so.make(name, lr=0.05)
        F1, G1, _ = opt.step(F, G, b_m, opt.init(F, G))
        F2, G2, _ = opt.step(F, G, b_s, opt.init(F, G))
        assert_close(G1, G2, rtol=1e-9, atol=1e-12 * np.abs(G2).max(), what=f"{name} G step, {law}")
        assert_close(F1, F2, rtol=1e-9, atol=1e-12 * np.abs(F2).max(), what=f"{name} F step, {law}")


def test_run_common_with_a_sample_rule_sees_the_same_batches(small_problem, monkeypatch):
    # a rule that reads batch.X, batch.Y (needs_samples) makes run_common materialise the batches; they
    # are the sampler's batches (same draws), so SGD on the samples tracks SGD on the moments
    # The rule's algebra on the statistics is checked against the samples at float64 precision: the
    # sampler's float64 Gram (EXACT_FLOAT32_N = 0; its float32 noise products, within the bound derived and
    # tested above, would otherwise dominate the difference, ~1e-9 relative, amplified by the solves).
    monkeypatch.setattr(data, "EXACT_FLOAT32_N", 0)
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class SampleSGD:
        lr: float
        name: str = "sample_sgd"
        needs_samples: ClassVar[bool] = True

        def init(self, F, G):
            return None

        def step(self, F, G, batch, state):
            X, Y = batch.X, batch.Y
            R = (X @ G.T) @ F.T - Y                       # residuals, (n, d_y)
            gF = R.T @ (X @ G.T) / X.shape[0]
            gG = F.T @ R.T @ X / X.shape[0]
            return F - self.lr * gF, G - self.lr * gG, state

    so.register("sample_sgd", lambda **o: SampleSGD(**o))
    try:
        S_ = sl.OptimizerSpec
        both = sl.run_common(small_problem, (S_("m", "sgd", 0.05), S_("s", "sample_sgd", 0.05)), steps=20, batch=30,
                             rng=np.random.default_rng(2))
        alone = sl.run_common(small_problem, (S_("m", "sgd", 0.05),), steps=20, batch=30, rng=np.random.default_rng(2))
    finally:
        so.REGISTRY.pop("sample_sgd")
    for key in ("train_loss", "subspace_distance"):
        assert_close(getattr(both, key)[1], getattr(both, key)[0], rtol=1e-9, what=f"{key}: samples vs moments")
        assert_close(getattr(both, key)[0], getattr(alone, key)[0], rtol=1e-9, what=f"{key}: materialised vs not")


def test_sampler_rejects_bad_arguments(small_problem):
    with pytest.raises(ValueError, match="'n'"):
        data.BatchSampler(small_problem, 0)
    with pytest.raises(ValueError, match="'problem'"):
        data.BatchSampler("task", 10)
    with pytest.raises(ValueError, match="'dtype'"):
        data.rademacher_signs(3, 3, rng=np.random.default_rng(0), dtype=np.int8)
    with pytest.raises(ValueError, match="'rng'"):
        data.draw_batch_moments(small_problem, 10, rng=42)
    with pytest.raises(ValueError, match="'batch'.*needs samples"):
        sl.run(small_problem, "amgd_bn", steps=2, lr=0.1, batch=None, rng=np.random.default_rng(0))
