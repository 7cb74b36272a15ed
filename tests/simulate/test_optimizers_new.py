"""simulate.matrix_optimizers (Shampoo, Muon, SOAP, diagonal AdaGrad) and the stricter registry of
simulate.optimizers: steps written out by hand from the published formulas, rotation equivariance of the
input space, option validation, registration."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.linalg import fractional_matrix_power, polar

from simulate import data, matrix_optimizers as mo, optimizers as so
from simulate.linrep import principal_angles
from tests.conftest import assert_close


# --------------------------------------------------------------------------- helpers written from the formulas
def _grads(F, G, b):
    """Gradients of 1/(2n) sum ||y - FGx||^2, written out (not through simulate.optimizers)."""
    gG = F.T @ (F @ G @ b.Sigma_x - b.Sigma_yx)
    gF = F @ (G @ b.Sigma_x @ G.T) - b.Sigma_yx @ G.T
    return gF, gG


def _case(rng, d_x, d_y, k, n_batches=4, n=30):
    """A start (F, G) and ``n_batches`` different sample batches of a noisy linear task."""
    M = rng.standard_normal((d_y, d_x))
    batches = []
    for _ in range(n_batches):
        X = rng.standard_normal((n, d_x)) * np.linspace(0.5, 2.0, d_x)
        batches.append(so.Batch.from_samples(X, X @ M.T + 0.3 * rng.standard_normal((n, d_y))))
    return rng.standard_normal((d_y, k)), rng.standard_normal((k, d_x)) / np.sqrt(d_x), batches


def _root(A, p):
    """A^(-1/p) by scipy's Schur-Pade fractional power (a route independent of eigh)."""
    return np.real_if_close(fractional_matrix_power(A, -1.0 / p))


# --------------------------------------------------------------------------- Shampoo
@pytest.mark.parametrize("beta2", [None, 0.9])
def test_shampoo_two_steps_by_hand(rng, beta2):
    """Gupta et al. 2018, Algorithm 1: L <- L + g g', R <- R + g'g from eps I, W <- W - lr L^-1/4 g R^-1/4
    (beta2: L <- beta2 L + (1 - beta2) g g'). Both routes to the roots are backward stable; the factors have
    condition <= ~1e4 here, so they agree to ~1e-12 relative: rtol 1e-9 is round-off with margin."""
    F, G, batches = _case(rng, 4, 3, 2)
    lr, eps = 0.1, 1e-3
    opt = so.make("shampoo", lr=lr, eps=eps, beta2=beta2)
    st = opt.init(F, G)
    Fr, Gr = F.copy(), G.copy()
    LF, RF, LG, RG = eps * np.eye(3), eps * np.eye(2), eps * np.eye(2), eps * np.eye(4)
    for i, b in enumerate(batches[:2]):
        F, G, st = opt.step(F, G, b, st)
        gF, gG = _grads(Fr, Gr, b)
        if beta2 is None:
            LF, RF, LG, RG = LF + gF @ gF.T, RF + gF.T @ gF, LG + gG @ gG.T, RG + gG.T @ gG
        else:
            c = 1.0 - beta2
            LF, RF = beta2 * LF + c * gF @ gF.T, beta2 * RF + c * gF.T @ gF
            LG, RG = beta2 * LG + c * gG @ gG.T, beta2 * RG + c * gG.T @ gG
        Fr = Fr - lr * _root(LF, 4) @ gF @ _root(RF, 4)
        Gr = Gr - lr * _root(LG, 4) @ gG @ _root(RG, 4)
        assert_close(F, Fr, rtol=1e-9, atol=1e-12, what=f"Shampoo F after step {i + 1} (beta2={beta2})")
        assert_close(G, Gr, rtol=1e-9, atol=1e-12, what=f"Shampoo G after step {i + 1} (beta2={beta2})")
    assert st.t == 2


def test_inverse_root_is_sound_for_ill_conditioned_factors(rng):
    """(rho I + S)^(-1/4) for S = g'g of rank 1 and scale 1e6 (condition 1e16 with rho = 1e-10): eigh gives the
    zero eigenvalues of S as +-~u||S|| ~ 1e-10, as large as rho (a negative one below -rho would make the root
    NaN, and +-1e-10 + rho changes the root by O(1)); eigenvalues at or below d u lambda_max are unresolved and
    set to 0, so the result is finite, symmetric positive-definite and equals the exact root on the null space,
    rho^(-1/4) = 316.2, to the eigenvectors' accuracy (u ||S|| / gap = u). On a well-separated spectrum
    (1e6, 1e2, 0, 0; rho = 1e-4) the eigenvalues are exact to c d u ||S|| (Weyl), i.e. (lambda + rho)^(-1/4) to
    (1/4) c d u ||S|| / rho ~ 1e-5 relative with c d = 40: the check uses that bound."""
    Q = data.haar_orthogonal(4, rng=rng)
    g = 1e3 * Q[:1]
    root = mo.inverse_root(g.T @ g, 1e-10, 4)
    assert np.all(np.isfinite(root))
    lam = np.linalg.eigvalsh(root)
    assert lam.min() > 0
    P = np.eye(4) - Q[:1].T @ Q[:1]                           # projector on the null space of S
    assert_close(P @ root @ P, 1e-10 ** -0.25 * P, rtol=0, atol=1e-6 * 1e-10 ** -0.25, what="root on the null space")

    lam_S = np.array([1e6, 1e2, 0.0, 0.0])
    S = (Q * lam_S) @ Q.T
    exact = (Q * (lam_S + 1e-4) ** -0.25) @ Q.T
    bound = 0.25 * 40 * np.finfo(float).eps * 1e6 / 1e-4
    assert_close(mo.inverse_root(S, 1e-4, 4), exact, rtol=0, atol=bound * 1e-4 ** -0.25, what="inverse root")


# --------------------------------------------------------------------------- Muon
def _ns(u, steps=5):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = u / (np.linalg.norm(u) + 1e-7)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


@pytest.mark.parametrize("nesterov, exact_polar", [(True, False), (False, False), (True, True)])
def test_muon_two_steps_by_hand(rng, nesterov, exact_polar):
    """Jordan et al. 2024: B <- mu B + g, u = g + mu B (Nesterov) or B, five Newton-Schulz iterations on
    u / (||u||_F + 1e-7) (transposed when tall: F is 4 x 2 here), W <- W - lr sqrt(max(1, rows/cols)) X; with
    exact_polar the polar factor of u from scipy.linalg.polar. Same operations in a different order: round-off."""
    F, G, batches = _case(rng, 5, 4, 2)
    lr, mu = 0.05, 0.9
    opt = so.make("muon", lr=lr, momentum=mu, nesterov=nesterov, exact_polar=exact_polar)
    st = opt.init(F, G)
    Fr, Gr = F.copy(), G.copy()
    BF, BG = np.zeros_like(F), np.zeros_like(G)
    for i, b in enumerate(batches[:2]):
        F, G, st = opt.step(F, G, b, st)
        gF, gG = _grads(Fr, Gr, b)
        BF, BG = mu * BF + gF, mu * BG + gG
        uF, uG = (gF + mu * BF, gG + mu * BG) if nesterov else (BF, BG)
        XF, XG = (polar(uF)[0], polar(uG)[0]) if exact_polar else (_ns(uF), _ns(uG))
        Fr = Fr - lr * np.sqrt(4 / 2) * XF
        Gr = Gr - lr * 1.0 * XG
        assert_close(F, Fr, rtol=1e-11, atol=1e-13, what=f"Muon F after step {i + 1}")
        assert_close(G, Gr, rtol=1e-11, atol=1e-13, what=f"Muon G after step {i + 1}")
        assert_close(st.B_G, BG, rtol=1e-12, atol=1e-14, what="Muon momentum buffer")


def test_newton_schulz_acts_on_singular_values_only(rng):
    """Each iteration maps X = U s V' to U p(s) V', p(s) = a s + b s^3 + c s^5: the output has u's singular
    vectors and singular values p^5(s / (||u||_F + 1e-7)) (checked through an independent SVD), all positive
    (a + b s^2 + c s^4 has no real root), and the exact polar factor is the s -> 1 limit."""
    a, b, c = mo.NS_COEFFICIENTS
    for shape in ((3, 7), (6, 2)):
        u = rng.standard_normal(shape)
        U, s, Vt = np.linalg.svd(u, full_matrices=False)
        t = s / (np.linalg.norm(u) + 1e-7)
        for _ in range(5):
            t = a * t + b * t**3 + c * t**5
        assert_close(mo.newton_schulz(u, 5), (U * t) @ Vt, rtol=1e-12, atol=1e-13, what=f"NS_5 on {shape}")
        assert t.min() > 0.3 and t.max() < 1.3, f"NS_5 singular values {t} outside (0.3, 1.3)"
        assert_close(mo.polar_factor(u), U @ Vt, rtol=1e-12, atol=1e-13, what="polar factor")
    assert np.all(mo.newton_schulz(np.zeros((2, 3)), 5) == 0) and np.all(mo.polar_factor(np.zeros((2, 3))) == 0)


# --------------------------------------------------------------------------- SOAP
def _soap_reference(F, G, batches, *, lr, betas, eps, shampoo_beta, freq, refresh):
    """SOAP transcribed from the authors' reference implementation (nikhilvyas/SOAP, soap.py, float64, no
    weight decay): per parameter, the first call only sets the factors GG (lerp with 1 - shampoo_beta) and
    Q = eigh flipped to descending order; later calls project g with tensordot, update exp_avg / exp_avg_sq in
    the rotated basis, step with lr sqrt(1 - b2^t) / (1 - b1^t) exp_avg / (sqrt(exp_avg_sq) + eps) projected
    back; then project exp_avg back, lerp the factors, refresh Q when t % freq == 0 (sort the old columns by
    diag(Q'PQ) descending, permute exp_avg_sq along that axis, new Q = eigh / QR(P Q_sorted)), re-project."""
    b1, b2 = betas
    params = [F.copy(), G.copy()]
    states = [{}, {}]

    def project(x, Q):
        return np.tensordot(np.tensordot(x, Q[0], axes=([0], [0])), Q[1], axes=([0], [0]))

    def project_back(x, Q):
        return np.tensordot(np.tensordot(x, Q[0], axes=([0], [1])), Q[1], axes=([0], [1]))

    def eig(P):
        return np.flip(np.linalg.eigh(P)[1], 1)

    def update_preconditioner(g, s):
        if s["Q"] is not None:
            s["exp_avg"] = project_back(s["exp_avg"], s["Q"])
        s["GG"][0] += (1 - shampoo_beta) * (g @ g.T - s["GG"][0])
        s["GG"][1] += (1 - shampoo_beta) * (g.T @ g - s["GG"][1])
        if s["Q"] is None:
            s["Q"] = [eig(P) for P in s["GG"]]
        if s["step"] > 0 and s["step"] % freq == 0:
            new = []
            for ind, (P, o) in enumerate(zip(s["GG"], s["Q"])):
                est = np.diag(o.T @ P @ o)
                idx = np.argsort(-est, kind="stable")
                s["exp_avg_sq"] = np.take(s["exp_avg_sq"], idx, axis=ind)
                o = o[:, idx]
                new.append(np.linalg.qr(P @ o)[0] if refresh == "power_qr" else eig(P))
            s["Q"] = new
        if s["step"] > 0:
            s["exp_avg"] = project(s["exp_avg"], s["Q"])

    history = []
    for b in batches:
        grads = _grads(params[0], params[1], b)
        for i, (g, s) in enumerate(zip(grads, states)):
            if "Q" not in s:
                s.update(step=0, exp_avg=np.zeros_like(g), exp_avg_sq=np.zeros_like(g), Q=None,
                         GG=[np.zeros((g.shape[0],) * 2), np.zeros((g.shape[1],) * 2)])
                update_preconditioner(g, s)
                continue
            gp = project(g, s["Q"])
            s["step"] += 1
            s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * gp
            s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * gp**2
            denom = np.sqrt(s["exp_avg_sq"]) + eps
            step_size = lr * np.sqrt(1 - b2 ** s["step"]) / (1 - b1 ** s["step"])
            params[i] = params[i] - step_size * project_back(s["exp_avg"] / denom, s["Q"])
            update_preconditioner(g, s)
        history.append((params[0].copy(), params[1].copy()))
    return history


@pytest.mark.parametrize("freq, refresh", [(1, "eigh"), (2, "eigh"), (1, "power_qr"), (10, "eigh")])
def test_soap_steps_match_the_reference_implementation(rng, freq, refresh):
    """Five calls (a no-op first call, four Adam steps; basis refreshes at t = 1, 2, ... for freq = 1) against the
    transcription above. Square 3 x 3 layers so that both factors have full rank from the first gradient: the
    eigenbases are then determined up to signs, which SOAP's update does not see (on a rank-deficient factor
    eigh's null-space basis is arbitrary and two implementations may legitimately differ; see the equivariance
    test). Same operations up to order: round-off, amplified at most by 1/(sqrt(v') + eps) ~ 1/|g'| = O(1)."""
    F, G, batches = _case(rng, 3, 3, 3, n_batches=5)
    opts = dict(lr=0.02, betas=(0.9, 0.95), eps=1e-8, shampoo_beta=0.8)
    opt = so.make("soap", precondition_frequency=freq, refresh=refresh, **opts)
    ref = _soap_reference(F, G, batches, lr=0.02, betas=(0.9, 0.95), eps=1e-8, shampoo_beta=0.8, freq=freq,
                          refresh=refresh)
    st = opt.init(F, G)
    F0, G0 = F, G
    for i, (b, (Fr, Gr)) in enumerate(zip(batches, ref)):
        F, G, st = opt.step(F, G, b, st)
        assert_close(F, Fr, rtol=1e-10, atol=1e-12, what=f"SOAP F after call {i + 1}")
        assert_close(G, Gr, rtol=1e-10, atol=1e-12, what=f"SOAP G after call {i + 1}")
    assert st.t == 4 and st.started
    assert np.array_equal(ref[0][0], F0) and np.array_equal(ref[0][1], G0), "the first call moves nothing"


def test_soap_first_adam_step_by_hand(rng):
    """The first Adam step (second call) from the formulas: m' = (1 - b1) g', v' = (1 - b2) g'^2, g' = Q_L' g Q_R
    with Q the descending eigenvectors of the first gradient's factors (a full-rank square case), so
    W <- W - lr sqrt(1 - b2)/(1 - b1) Q_L (m' / (sqrt(v') + eps)) Q_R'."""
    F, G, batches = _case(rng, 3, 3, 3)
    b1, b2, eps, lr = 0.9, 0.95, 1e-8, 0.02
    opt = so.make("soap", lr=lr, betas=(b1, b2), eps=eps)
    st = opt.init(F, G)
    F1, G1, st = opt.step(F, G, batches[0], st)
    assert np.array_equal(F1, F) and np.array_equal(G1, G)
    F2, G2, st = opt.step(F1, G1, batches[1], st)
    for W, W2, g0, g in ((F, F2, _grads(F, G, batches[0])[0], _grads(F, G, batches[1])[0]),
                         (G, G2, _grads(F, G, batches[0])[1], _grads(F, G, batches[1])[1])):
        QL = np.linalg.eigh(g0 @ g0.T)[1][:, ::-1]
        QR = np.linalg.eigh(g0.T @ g0)[1][:, ::-1]
        gp = QL.T @ g @ QR
        m, v = (1 - b1) * gp, (1 - b2) * gp**2
        ref = W - lr * np.sqrt(1 - b2) / (1 - b1) * QL @ (m / (np.sqrt(v) + eps)) @ QR.T
        assert_close(W2, ref, rtol=1e-10, atol=1e-12, what="SOAP first Adam step")


# --------------------------------------------------------------------------- AdaGrad
def test_adagrad_two_steps_by_hand(rng):
    """Duchi et al. 2011 (diagonal): acc <- acc + g*g, W <- W - lr g / (sqrt(acc) + eps), per layer."""
    F, G, batches = _case(rng, 4, 3, 2)
    opt = so.make("adagrad", lr=0.1, eps=1e-6)
    st = opt.init(F, G)
    Fr, Gr = F.copy(), G.copy()
    aF, aG = np.zeros_like(F), np.zeros_like(G)
    for i, b in enumerate(batches[:2]):
        F, G, st = opt.step(F, G, b, st)
        gF, gG = _grads(Fr, Gr, b)
        aF, aG = aF + gF**2, aG + gG**2
        Fr, Gr = Fr - 0.1 * gF / (np.sqrt(aF) + 1e-6), Gr - 0.1 * gG / (np.sqrt(aG) + 1e-6)
        assert_close(F, Fr, rtol=1e-12, atol=1e-14, what=f"AdaGrad F after step {i + 1}")
        assert_close(G, Gr, rtol=1e-12, atol=1e-14, what=f"AdaGrad G after step {i + 1}")
    # first step: every entry moves by lr g / (|g| + eps), i.e. ~lr
    F1, _, _ = opt.step(Fr, Gr, batches[0], opt.init(Fr, Gr))
    g = _grads(Fr, Gr, batches[0])[0]
    assert_close(F1, Fr - 0.1 * g / (np.abs(g) + 1e-6), rtol=1e-12, atol=1e-14, what="AdaGrad first step")


# --------------------------------------------------------------------------- rotation equivariance
# Measured over 100 draws (master seeds 0-4 x cases 0-19 of _rotation_case; d_x = 6, d_y = k = 2, 20 steps):
#: round-off tolerance on max_t |d_t - d'_t| / d_0 for exactly equivariant rules. Measured maxima: NGD 5.5e-12,
#: Shampoo (beta2 0.9) 4.0e-12, kfac_left 2.1e-12, the rest <= 2e-13 (SGD 1.2e-15, Muon 3.8e-15); 1e-9 is 180x the
#: largest and 2e6x below the smallest difference of a non-equivariant rule.
EQUIVARIANT_TOL = 1e-9
#: a difference above this is not round-off (1000x EQUIVARIANT_TOL). Measured minima: Adam 2.6e-3, AdaGrad 6.0e-3,
#: kfac_diag 1.5e-2, amgd_diag 2.3e-3.
DEPARTURE = 1e-6
#: SOAP's line between "equivariant to round-off" and "not" (see its test): restarted-equivariant runs reach
#: 2.0e-11 (max over the 100 draws), the non-equivariant cases are >= 1.5e-5 (min); 1e-7 sits 5000x above the
#: first and 150x below the second.
SOAP_LINE = 1e-7

_SEEDS = 3


def _rotation_case(seed: int, i: int):
    rng = np.random.default_rng([seed, i])
    p = data.linrep_problem(6, 2, 2, kappa_x=10.0, kappa_F=2.0, noise_std=0.0, rng=rng)
    G0 = rng.standard_normal((2, 6)) / np.sqrt(6)
    F0 = rng.standard_normal((2, 2)) / np.sqrt(2)
    O = data.haar_orthogonal(6, rng=rng)
    plain = (so.Batch.population(p.Sigma_x, p.M, 0.0), p.G_star)
    rotated = (so.Batch.population(O @ p.Sigma_x @ O.T, p.M @ O.T, 0.0), p.G_star @ O.T)
    return F0, G0, O, plain, rotated


def _distances(opt, F, G, state, batch, G_star, steps):
    d = [principal_angles(G, G_star)[0][0]]
    for _ in range(steps):
        F, G, state = opt.step(F, G, batch, state)
        d.append(principal_angles(G, G_star)[0][0])
    return np.array(d)


def _rotation_gap(name, options, seed, i, steps=20):
    """max_t |d_t - d'_t| / d_0 between the run and the run with inputs rotated, x -> Ox (population batches):
    Sigma_x -> O Sigma_x O', G* -> G* O', G0 -> G0 O'; the head F0 is unchanged."""
    F0, G0, O, (b, Gs), (bo, Gso) = _rotation_case(seed, i)
    opt = so.make(name, **options)
    a = _distances(opt, F0, G0, opt.init(F0, G0), b, Gs, steps)
    r = _distances(opt, F0, G0 @ O.T, opt.init(F0, G0 @ O.T), bo, Gso, steps)
    return float(np.abs(a - r).max() / a[0])


EQUIVARIANT = [("sgd", dict(lr=0.1)), ("kfac", dict(lr=0.5)), ("kfac_ls", dict(lr=0.5)), ("kfac_left", dict(lr=0.5)),
               ("kfac_right", dict(lr=0.5)), ("amgd", dict(lr=0.5)), ("ngd", dict(lr=0.5)),
               ("shampoo", dict(lr=0.2)), ("shampoo", dict(lr=0.2, beta2=0.9)), ("muon", dict(lr=0.02)),
               ("muon", dict(lr=0.02, exact_polar=True)), ("muon", dict(lr=0.02, nesterov=False))]
NOT_EQUIVARIANT = [("adam", dict(lr=0.02)), ("adagrad", dict(lr=0.1)), ("kfac_diag", dict(lr=0.5)),
                   ("amgd_diag", dict(lr=0.5))]


@pytest.mark.parametrize("name, options", EQUIVARIANT, ids=lambda x: str(x))
def test_rotation_equivariant_rules_trace_the_same_distances(seed, name, options):
    """g_G -> g_G O' under the rotation; SGD, eq. (5) (F'F and Sigma_x are conjugated), NGD, Shampoo
    (R -> O R O', so R^-1/4 -> O R^-1/4 O') and Muon (polar factor and Newton-Schulz: U V' -> U V' O') commute
    with it, so the subspace distances agree to round-off (EQUIVARIANT_TOL) over 20 steps. Muon runs at lr 0.02:
    at 0.05 some draws reach a regime where its own round-off grows ~5x per step (the Newton-Schulz map has slope
    up to a^5 = 486 on small singular values of a small momentum), which would make any two runs drift apart,
    rotated or not."""
    for i in range(_SEEDS):
        gap = _rotation_gap(name, options, seed, i)
        assert gap < EQUIVARIANT_TOL, f"{name} {options}: rotated run differs by {gap:.2e} (> {EQUIVARIANT_TOL:g})"


@pytest.mark.parametrize("name, options", NOT_EQUIVARIANT, ids=lambda x: str(x))
def test_entrywise_rules_are_not_rotation_equivariant(seed, name, options):
    """Adam, AdaGrad and the diagonal right preconditioners act entry-wise (diag Sigma_x is not conjugated by O):
    the rotated run traces different distances (> DEPARTURE; measured >= 2.3e-3 relative, see above)."""
    for i in range(_SEEDS):
        gap = _rotation_gap(name, options, seed, i)
        assert gap > DEPARTURE, f"{name}: rotated run differs by only {gap:.2e} (<= {DEPARTURE:g})"


def _conjugate_soap_state(st, O):
    """The SOAP state of the rotated run: G's right factor and basis rotate, R -> O R O', Q_R -> O Q_R; the rotated
    moments m', v' and everything of F are unchanged."""
    return replace(st, G=replace(st.G, R=O @ st.G.R @ O.T, QR=O @ st.G.QR))


#: calls of a SOAP run scanned for rank-deficient eigenbases; restarted runs continue up to this call.
SOAP_HORIZON = 45
#: a factor whose smallest relative eigengap or smallest relative eigenvalue is below this is numerically
#: rank-deficient for SOAP: eigh determines its eigenvectors only to ~u / gap (>= 1e-8), QR(PQ) its columns only to
#: ~u / lambda_min.
SOAP_DEFICIENT = 1e-8


def _soap_run(seed, i, *, freq, refresh):
    F, G, O, plain, rotated = _rotation_case(seed, i)
    return so.make("soap", lr=0.02, precondition_frequency=freq, refresh=refresh), F, G, O, plain, rotated


def _soap_deficient_calls(seed, i, *, freq, refresh):
    """The calls (1-based, up to SOAP_HORIZON) at which the unrotated SOAP run computed an eigenbasis (call 1, and
    call c when t = c - 1 is a multiple of freq) from a numerically rank-deficient factor (SOAP_DEFICIENT)."""
    opt, F, G, _, (b, _), _ = _soap_run(seed, i, freq=freq, refresh=refresh)
    st = opt.init(F, G)
    out = []
    for c in range(1, SOAP_HORIZON + 1):
        F, G, st = opt.step(F, G, b, st)
        if c == 1 or (c - 1) % freq == 0:
            worst = np.inf
            for P in (st.G.L, st.G.R, st.F.L, st.F.R):
                lam = np.linalg.eigvalsh(P)
                worst = min(worst, min(np.diff(lam).min(), lam[0]) / lam[-1])
            if worst < SOAP_DEFICIENT:
                out.append(c)
    return out


def _conjugate_soap_state(st, O):
    """The SOAP state of the rotated run: G's right factor and basis rotate, R -> O R O', Q_R -> O Q_R; the rotated
    moments m', v' and everything of F are unchanged."""
    return replace(st, G=replace(st.G, R=O @ st.G.R @ O.T, QR=O @ st.G.QR))


def _soap_restart_gap(seed, i, *, calls, freq, refresh="eigh", steps=None):
    """Run SOAP ``calls`` calls unrotated, then continue (to call SOAP_HORIZON, or ``steps`` more) from that state
    and from the exactly rotated state; max_t |d_t - d'_t| / d_0 of the continuations (``calls = 0``: both from the
    start)."""
    opt, F, G, O, (b, Gs), (bo, Gso) = _soap_run(seed, i, freq=freq, refresh=refresh)
    st = opt.init(F, G)
    for _ in range(calls):
        F, G, st = opt.step(F, G, b, st)
    steps = SOAP_HORIZON - calls if steps is None else steps
    a = _distances(opt, F, G, st, b, Gs, steps)
    st_rot = _conjugate_soap_state(st, O) if st.started else opt.init(F, G @ O.T)
    r = _distances(opt, F, G @ O.T, st_rot, bo, Gso, steps)
    return float(np.abs(a - r).max() / a[0])


@pytest.mark.parametrize("freq, refresh", [(1, "eigh"), (1, "power_qr"), (2, "eigh"), (10, "eigh")])
def test_soap_is_equivariant_only_after_its_last_rank_deficient_eigenbasis(seed, freq, refresh):
    """SOAP sits between the two. Every operation of its step commutes with the rotation (g_G -> g_G O', R_G ->
    O R_G O', Q_R -> O Q_R, the rotated moments m', v' unchanged) except computing an eigenbasis of a
    rank-deficient factor: eigh picks the null-space basis arbitrarily (QR(R Q), the reference's refresh, likewise),
    and Adam's entry-wise step in the rotated coordinates depends on it, by O(lr) whatever the size of the gradient
    there (m'/sqrt(v') is O(1) entry by entry). R_G, the d_x x d_x (d_x = 6) average of g'g with g of rank k = 2,
    gains at most 2 ranks per distinct gradient: it is exactly rank 2 at the first call, which computes the first
    basis, and (population batches; the first call moves nothing, so the first Adam step sees the same gradient
    again) rank min(6, 2t) after t Adam steps. Numerically it takes longer: consecutive gradients differ by O(lr),
    so the new directions enter with tiny eigenvalues and gaps; with SOAP_DEFICIENT = 1e-8 the last deficient basis
    (``_soap_deficient_calls``) is computed at call 3 to 5 in 94 of 100 draws (freq 1), up to call 32, and always
    at call 1 for freq 10.

    Measured over 100 draws (master seeds 0-4 x cases 0-19; lr 0.02; continuations to call 45),
    max_t |d_t - d'_t| / d_0:

    ================  ==================  =======================  =========================================
    freq, refresh     from the start      restarted after call 2   restarted after the last deficient basis
    ================  ==================  =======================  =========================================
    1, eigh           7.3e-4 - 0.15       4.7e-5 - 0.20            4.1e-15 - 1.2e-11 (last at calls 3-22)
    1, power_qr       7.8e-4 - 0.25       1.5e-5 - 0.12            4.7e-15 - 1.2e-11 (last at calls 3-32)
    2, eigh           7.0e-4 - 0.33       5.7e-5 - 0.26            1.2e-14 - 1.0e-11 (last at calls 3-9)
    10, eigh          2.3e-3 - 0.21       8.2e-15 - 2.0e-11        = after call 2 (last deficient: call 1)
    ================  ==================  =======================  =========================================

    - From the same start the rotated run always departs (the first basis is from the rank-2 factor). Along a run
      (seed 0, cases 0-19, freq 1; running maximum): 0 at the no-op first call; <= 6.7e-10 at the first Adam
      step (its gradient lies in range(R_G) up to round-off, which 1/(sqrt(v') + eps), eps = 1e-8, amplifies);
      2.4e-7 - 1.1e-2 at the second; 2.6e-5 - 4.3e-2 by call 10 and 1.9e-3 - 0.15 by call 60 (freq 10: 1.2e-5 -
      1e-2 at call 3, 6.2e-3 - 0.16 at call 60). It does not decay: SOAP is never equivariant from the start.
    - Restarted from the exactly rotated state after the last basis computed from a numerically rank-deficient
      factor, the runs agree to round-off (below SOAP_LINE). Restarting right after the first call (freq 10's
      last deficient basis) leaves the first Adam step's round-off/eps amplification in (6.5e-11 - 4.0e-8), so the
      restart is after call max(last, 2).
    - Restarted after call 2, before the refresh at call 3 from the exactly rank-4 factor (freq 1 and 2), they
      depart again (above SOAP_LINE); for freq 10 nothing deficient is computed after call 1, and they agree.

    So SOAP's step map is equivariant at every call that computes no eigenbasis from a numerically rank-deficient
    factor: from exactly rotated states, runs agree from the call after the last such basis on (once R_G is
    numerically full rank with separated eigenvalues and has been refreshed, or when no refresh comes at all); a
    run from a common start never becomes equivariant: it keeps the differences its early bases made."""
    for i in range(_SEEDS):
        start = _soap_restart_gap(seed, i, calls=0, freq=freq, refresh=refresh)
        assert start > SOAP_LINE, f"SOAP from the start: rotated run differs by only {start:.2e}"
        deficient = _soap_deficient_calls(seed, i, freq=freq, refresh=refresh)
        assert deficient[0] == 1, f"SOAP's first basis should come from a rank-deficient factor; got {deficient}"
        calls = max(deficient[-1], 2)
        assert calls <= SOAP_HORIZON - 10, f"SOAP's last deficient basis at call {calls}: horizon too short"
        after = _soap_restart_gap(seed, i, calls=calls, freq=freq, refresh=refresh)
        assert after < SOAP_LINE, f"SOAP restarted after call {calls}: differs by {after:.2e} (> {SOAP_LINE:g})"
        before = _soap_restart_gap(seed, i, calls=2, freq=freq, refresh=refresh)
        if freq <= 2:
            assert before > SOAP_LINE, f"SOAP restarted after call 2: differs by only {before:.2e}"
        else:
            assert before < SOAP_LINE, f"SOAP (freq {freq}) restarted after call 2: differs by {before:.2e}"


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("name, options, match", [
    ("shampoo", dict(lr=0.0), r"optimizer 'shampoo': argument 'lr' must be in \(0, inf\); got 0.0"),
    ("shampoo", dict(lr=float("inf")), r"'lr' must be a finite real number"),
    ("shampoo", dict(lr="0.1"), r"'lr' must be a real number in \(0, inf\); got the string '0.1'"),
    ("shampoo", dict(lr=0.1, eps=0.0), r"'eps' must be in \(0, inf\)"),
    ("shampoo", dict(lr=0.1, beta2=1.0), r"'beta2' must be in \(0, 1\)"),
    ("shampoo", dict(lr=0.1, beta2=0.0), r"'beta2'"),
    ("muon", dict(lr=0.1, momentum=1.0), r"'momentum' must be in \[0, 1\)"),
    ("muon", dict(lr=0.1, ns_steps=0), r"'ns_steps' must be an integer in \[1, 100\]; got 0"),
    ("muon", dict(lr=0.1, ns_steps=2.0), r"'ns_steps'"),
    ("muon", dict(lr=0.1, nesterov="yes"), r"'nesterov' must be a bool \(True or False\)"),
    ("muon", dict(lr=0.1, exact_polar=1), r"'exact_polar'"),
    ("soap", dict(lr=0.1, precondition_frequency=0), r"'precondition_frequency' must be an integer >= 1"),
    ("soap", dict(lr=0.1, betas=(0.9, 1.0)), r"'betas' must be a pair \(beta1, beta2\), each in \[0, 1\).*; got beta2 = 1.0"),
    ("soap", dict(lr=0.1, betas=0.9), r"'betas' must be a pair"),
    ("soap", dict(lr=0.1, shampoo_beta=-0.1), r"'shampoo_beta'"),
    ("soap", dict(lr=0.1, refresh="qr"), r"'refresh' must be one of \('eigh', 'power_qr'\)"),
    ("adagrad", dict(lr=0.1, eps=-1.0), r"optimizer 'adagrad': argument 'eps'"),
    ("shampoo", dict(lr=0.1, beta=0.9), r"optimizer 'shampoo': argument 'beta' must be an option of 'shampoo' "
                                       r"\(one of \['beta2', 'eps', 'lr'\]\); got an unknown option"),
    ("soap", dict(lr=0.1, name="x"), r"'name' must be left out \(it is 'soap', the registered name\)"),
    ("muon", dict(), r"optimizer 'muon': argument 'lr' must be given"),
    ("sgd", dict(lr=0.1, momentum=0.9), r"optimizer 'sgd': argument 'momentum' must be an option of 'sgd' "
                                        r"\(one of \['lr'\]\); got an unknown option"),
    ("adam", dict(), r"optimizer 'adam': argument 'lr' must be given"),
    ("sgd", dict(lr=-0.1), r"optimizer 'sgd': argument 'lr' must be in \(0, inf\); got -0.1"),
    ("kfac", dict(lr=0.1, name="x"), r"optimizer 'kfac': argument 'name' must be left out"),
])
def test_bad_options_are_value_errors_naming_the_option(name, options, match):
    with pytest.raises(ValueError, match=match):
        so.make(name, **options)


def test_defaults_are_the_published_ones():
    s, m, p, a = (so.make(n, lr=1.0) for n in ("shampoo", "muon", "soap", "adagrad"))
    assert (s.eps, s.beta2) == (1e-4, None)
    assert (m.momentum, m.nesterov, m.ns_steps, m.exact_polar) == (0.95, True, 5, False)
    assert (p.betas, p.eps, p.shampoo_beta) == ((0.95, 0.95), 1e-8, None)
    assert (p.precondition_frequency, p.refresh) == (10, "eigh")
    assert p.beta_s == 0.95 and so.make("soap", lr=1.0, betas=[0.9, 0.99]).betas == (0.9, 0.99)
    assert a.eps == 1e-10


# --------------------------------------------------------------------------- registration
class _Rule:
    name = "rule"

    def __init__(self, lr):
        self.lr = lr

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        return F, G, state


class _NoStep:
    def init(self, F, G):
        return None


def test_register_refuses_to_replace_unless_asked():
    so.register("test_rule", lambda **o: _Rule(**o))
    try:
        with pytest.raises(ValueError, match=r"register: argument 'name' must be a name not registered yet "
                                             r"\(pass replace=True.*got 'test_rule'"):
            so.register("test_rule", lambda **o: _Rule(**o))
        with pytest.raises(ValueError, match="'name' must be a name not registered yet"):
            so.register("sgd", lambda **o: _Rule(**o))
        new = lambda **o: _Rule(**o)  # noqa: E731
        so.register("test_rule", new, replace=True)
        assert so.REGISTRY["test_rule"] is new and so.make("test_rule", lr=0.5).lr == 0.5
    finally:
        so.REGISTRY.pop("test_rule", None)
    assert so.REGISTRY["sgd"] is not None and isinstance(so.make("sgd", lr=0.1), so.SGD)


@pytest.mark.parametrize("factory, match", [
    (lambda **o: _NoStep(), r"register: argument 'factory' must be a callable returning an object with init\(F, G\) and "
                            r"step\(F, G, batch, state\); got an object without 'step'\."),
    (lambda **o: object(), r"got an object without 'init'"),
    (lambda **o: None, r"must be a callable returning an object with init\(F, G\) and step\(F, G, batch, state\); got None\."),
    (lambda lr, beta: _Rule(lr), r"'factory' must be callable as factory\(lr=0.01\).*missing 1 required"),
    (lambda **o: 1 / 0, r"'factory' must be callable as factory\(lr=0.01\).*ZeroDivisionError"),
    ("sgd", r"'factory' must be a callable"),
])
def test_register_checks_the_factory(factory, match):
    with pytest.raises(ValueError, match=match):
        so.register("test_bad", factory)
    assert "test_bad" not in so.REGISTRY


def test_make_reports_option_errors_of_any_factory():
    so.register("test_rule", lambda lr, beta=0.5: _Rule(lr))
    try:
        with pytest.raises(ValueError, match=r"optimizer 'test_rule': argument 'gamma' must be an option of "
                                             r"'test_rule'; got an unknown option"):
            so.make("test_rule", lr=0.1, gamma=1)
        with pytest.raises(ValueError, match=r"optimizer 'test_rule': argument 'lr' must be given"):
            so.make("test_rule", beta=0.1)
    finally:
        so.REGISTRY.pop("test_rule")

    def buggy(**o):
        raise TypeError("unsupported operand type(s)")

    so.REGISTRY["test_buggy"] = buggy  # bypasses register's check: a TypeError of another kind is not hidden
    try:
        with pytest.raises(TypeError, match="unsupported operand"):
            so.make("test_buggy", lr=0.1)
    finally:
        so.REGISTRY.pop("test_buggy")


def test_importing_the_new_module_first_has_no_import_cycle():
    """simulate.matrix_optimizers imports nothing from simulate.optimizers at load time: either may come first."""
    import subprocess
    import sys

    code = ("import simulate.matrix_optimizers as mo, simulate.optimizers as so; "
            "assert {'shampoo', 'muon', 'soap', 'adagrad'} <= set(so.REGISTRY); print('ok')")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
