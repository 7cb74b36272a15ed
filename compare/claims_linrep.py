"""Claims C1-C7: linear representation learning, exact and per-step results (THEORY.md 3.1, section 6).

Each claim runs a literal simulation (:mod:`simulate`) and holds it to a closed form
(:mod:`theory.linrep`). Exact claims compare to a stated numerical tolerance; C7 is a z test
with a batch-means standard error.
"""

from __future__ import annotations

import numpy as np

from compare import stats
from compare.registry import Outcome, register
from simulate import data as sd
from simulate import linrep as sl
from simulate import optimizers as so
from simulate.trials import spawn_generators
from theory import linrep as tl


def _near_start(problem: sd.LinRepProblem, dist: float, rng: np.random.Generator) -> np.ndarray:
    """A G0 at subspace distance about ``dist`` from G*: G* + dist * W G*_perp (W of unit op norm)."""
    k, d = problem.G_star.shape
    Q, _ = np.linalg.qr(problem.G_star.T, mode="complete")
    W = rng.standard_normal((k, d - k))
    return problem.G_star + dist * (W / np.linalg.norm(W, 2)) @ Q[:, k:].T


def _tail_rate(d: np.ndarray, frac: float = 0.1, min_steps: int = 3) -> float:
    """Geometric mean of dist_{t+1}/dist_t over the last ``frac`` of the run."""
    m = max(min_steps, int(frac * (d.size - 1)))
    r = d[-m:] / d[-m - 1:-1]
    return float(np.exp(np.mean(np.log(r))))


# --------------------------------------------------------------------------- C1
@register(
    "C1", paper_ref="Lemma 3.1", theory_ref="Lemma 3.1", kind="exact",
    statement="One literal KFAC step (eq. 5) equals the EMA of the least-squares solution, for F and G "
              "(linear and tanh features, lam_G = 0 and > 0).",
)
def c1_lemma_3_1(*, size: str, seed: int) -> Outcome:
    cases = 4 if size == "fast" else 12
    d_x, d_y, k, n = 50, 10, 4, 200
    tol = 1e-10  # THEORY.md C1: max relative difference <= 1e-10 (float64 round-off, seen 8e-15)
    rows, worst = [], 0.0
    for c, rng in enumerate(spawn_generators(seed, cases)):
        p = sd.linrep_problem(d_x, d_y, k, kappa_x=10.0 ** rng.uniform(0, 3), kappa_F=10.0, noise_std=0.1, rng=rng)
        X, Y = sd.draw_batch(p, n, rng=rng)
        b = so.Batch.from_samples(X, Y)
        F = rng.standard_normal((d_y, k))
        G = rng.standard_normal((k, d_x)) / np.sqrt(d_x)
        for eta in (0.1, 0.5, 1.0):
            for lam in (0.0, 0.3):
                opt = so.make("kfac", lr=eta, eta_F=eta, lam_G=lam)
                F1, G1, _ = opt.step(F, G, b, None)
                G_th = tl.ema_representation(G, F, b.Sigma_x, b.Sigma_yx, eta_G=eta, lam_G=lam)
                Z = X @ G1.T
                F_th = tl.ema_head(F, Z.T @ Z / n, Y.T @ Z / n, eta_F=eta)
                eG = np.abs(G1 - G_th).max() / np.abs(G_th).max()
                eF = np.abs(F1 - F_th).max() / np.abs(F_th).max()
                # tanh features: the head identity holds for any activation
                Ft = so.kfac_head_step(F, G1, X, Y, eta_F=eta, activation="tanh")
                Zt = np.tanh(X @ G1.T)
                Ft_th = tl.ema_head(F, Zt.T @ Zt / n, Y.T @ Zt / n, eta_F=eta)
                eT = np.abs(Ft - Ft_th).max() / np.abs(Ft_th).max()
                worst = max(worst, eG, eF, eT)
                rows.append({"case": c, "eta": eta, "lam_G": lam, "rel_err_G": eG, "rel_err_F_linear": eF,
                             "rel_err_F_tanh": eT})
    return Outcome(0.0, worst, None, tol, None, worst <= tol,
                   "float64 round-off bound 1e-10 relative (THEORY.md C1; observed ~1e-14)", tuple(rows))


# --------------------------------------------------------------------------- C2
@register(
    "C2", paper_ref="Sec. 3.1 (KFAC guarantee)", theory_ref="R-LR-1", kind="exact",
    statement="KFAC with the least-squares head contracts the subspace distance at exactly 1 - eta, "
              "for every (kappa_x, kappa_F) up to (1e4, 1e2).",
)
def c2_kfac_rate(*, size: str, seed: int) -> Outcome:
    grid_x = (1.0, 1e2, 1e4)
    grid_F = (1.0, 10.0, 100.0) if size == "fast" else (1.0, 3.0, 10.0, 30.0, 100.0)
    tol = 1e-3  # THEORY.md C2; the O(dist^2) term is eta * tan^2 <= 1e-6 here (R-LR-2), round-off ~1e-5 at kappa_x = 1e4
    rows, worst, first = [], 0.0, None
    rngs = iter(spawn_generators(seed, len(grid_x) * len(grid_F)))
    for kx in grid_x:
        for kF in grid_F:
            rng = next(rngs)
            p = sd.linrep_problem(40, 6, 3, kappa_x=kx, kappa_F=kF, noise_std=0.0, rng=rng)
            G0 = _near_start(p, 1e-5, rng)
            for eta in (0.3, 0.7):
                tr = sl.run(p, "kfac_ls", steps=8, lr=eta, batch=None, rng=rng, G0=G0, F0=p.F_star,
                            init_head="least_squares")
                ratios = tr.subspace_distance[1:] / tr.subspace_distance[:-1]
                err = float(np.abs(ratios - tl.kfac_rate(eta)).max())
                worst = max(worst, err)
                first = first or (tl.kfac_rate(eta), float(ratios[-1]))
                rows.append({"kappa_x": kx, "kappa_F": kF, "eta": eta, "predicted": tl.kfac_rate(eta),
                             "measured_last": float(ratios[-1]), "max_abs_err": err})
    return Outcome(first[0], first[1], None, tol, None, worst <= tol,
                   "THEORY.md C2: 1e-3; start at distance 1e-5 so the quadratic term (R-LR-2) is < 1e-6",
                   tuple(rows), data={"max_abs_err": worst})


# --------------------------------------------------------------------------- C3
@register(
    "C3", paper_ref="Sec. 3.1 (KFAC guarantee)", theory_ref="R-LR-2", kind="exact",
    statement="From any start, one population KFAC step maps whitened tangents t to (1-eta) t / (1 + eta t^2).",
)
def c3_whitened_recursion(*, size: str, seed: int) -> Outcome:
    starts = 3 if size == "fast" else 10
    tol = 1e-8  # THEORY.md C3: relative error < 1e-8 (observed 1.5e-10)
    rows, worst, head = [], 0.0, None
    for s, rng in enumerate(spawn_generators(seed, starts)):
        p = sd.linrep_problem(40, 6, 3, kappa_x=50.0, kappa_F=10.0, noise_std=0.0, rng=rng)
        F0, G0 = sl.initial_point(p, rng=rng)
        Gw_star = p.G_star @ p.Sigma_x_sqrt
        t0 = sl.principal_tangents(G0 @ p.Sigma_x_sqrt, Gw_star)
        for eta in (0.2, 0.4, 0.5, 0.9):
            tr = sl.run(p, "kfac_ls", steps=1, lr=eta, batch=None, rng=rng, G0=G0, F0=F0, init_head="least_squares")
            t1 = sl.principal_tangents(tr.G @ p.Sigma_x_sqrt, Gw_star)
            pred = np.sort(tl.kfac_whitened_step(t0, eta=eta))[::-1]
            err = float(np.max(np.abs(t1 - pred) / pred))
            worst = max(worst, err)
            head = head or (float(pred[0]), float(t1[0]))
            rows.append({"start": s, "eta": eta, "tan_before": t0.round(6).tolist(),
                         "predicted": pred.tolist(), "measured": t1.tolist(), "max_rel_err": err})
    return Outcome(head[0], head[1], None, tol, None, worst <= tol,
                   "THEORY.md C3: relative error < 1e-8 (float64 with kappa_x = 50)", tuple(rows),
                   data={"max_rel_err": worst})


# --------------------------------------------------------------------------- C4
AMGD_SETTINGS = ((20.0, 1.0), (20.0, 5.0), (1.0, 5.0), (100.0, 3.0))


@register(
    "C4", paper_ref="Sec. 3.1 (SGD suboptimality)", theory_ref="R-LR-1", kind="exact",
    statement="AMGD's local rate is max |1 - eta sigma_i(F)^2 mu_j(Sigma_22.1)| (at a non-optimal eta, "
              "where one mode dominates).",
)
def c4_amgd_rate(*, size: str, seed: int) -> Outcome:
    settings = AMGD_SETTINGS[:2] if size == "fast" else AMGD_SETTINGS
    tol = 1e-3  # THEORY.md C4: transient of sub-dominant modes + O(dist) terms (observed 2e-5 to 6e-4)
    rows, worst, head = [], 0.0, None
    for (kx, kF), rng in zip(settings, spawn_generators(seed, len(settings))):
        p = sd.linrep_problem(40, 6, 3, kappa_x=kx, kappa_F=kF, noise_std=0.0, rng=rng)
        eta = 0.5 * tl.amgd_optimal_eta(p.F_star, p.Sigma_x, p.G_star)
        rho0 = tl.local_rate(p.F_star, p.Sigma_x, p.G_star, eta=eta, left="identity", right="identity")
        steps = int(min(20000, np.ceil(np.log(1e-6) / np.log(rho0))))
        tr = sl.run(p, "amgd", steps=steps, lr=eta, batch=None, rng=rng, G0=_near_start(p, 1e-3, rng),
                    F0=p.F_star, init_head="least_squares")
        measured = _tail_rate(tr.subspace_distance)
        # R-LR-1 uses the least-squares head at the current scale of G: evaluate at the final head
        pred = tl.local_rate(tr.F, p.Sigma_x, p.G_star, eta=eta, left="identity", right="identity")
        err = abs(measured - pred)
        worst = max(worst, err)
        head = head or (pred, measured)
        rows.append({"kappa_x": kx, "kappa_F": kF, "eta": eta, "steps": steps, "predicted": pred,
                     "predicted_at_F_star": rho0, "measured": measured, "abs_err": err})
    return Outcome(head[0], head[1], None, tol, None, worst <= tol,
                   "THEORY.md C4: 1e-3 (sub-dominant transient after ~log(1e-6)/log(rho) steps, O(dist) terms)",
                   tuple(rows), data={"max_abs_err": worst})


# --------------------------------------------------------------------------- C5
def iterations_to(d: np.ndarray, target: float) -> int:
    hit = np.nonzero(d <= target)[0]
    return int(hit[0]) if hit.size else -1


@register(
    "C5", paper_ref="Sec. 3.1 (SGD lower bound vs KFAC)", theory_ref="R-LR-1", kind="qualitative",
    statement="Iterations to reach distance 1e-6 grow like kappa_eff = kappa(F)^2 kappa(Sigma_22.1) for AMGD "
              "(at its best eta) and do not depend on conditioning for KFAC.",
)
def c5_iterations(*, size: str, seed: int) -> Outcome:
    grid = [(kx, kF) for kx in (1.0, 10.0, 100.0) for kF in (1.0, 3.0)]
    if size == "paper":
        grid += [(300.0, 3.0), (100.0, 5.0)]
    d0, target, eta_kfac = 1e-2, 1e-6, 0.5
    rows = []
    for (kx, kF), rng in zip(grid, spawn_generators(seed, len(grid))):
        p = sd.linrep_problem(40, 6, 3, kappa_x=kx, kappa_F=kF, noise_std=0.0, rng=rng)
        ke = tl.amgd_effective_condition(p.F_star, p.Sigma_x, p.G_star)
        eta = tl.amgd_optimal_eta(p.F_star, p.Sigma_x, p.G_star)
        rho = tl.amgd_optimal_rate(p.F_star, p.Sigma_x, p.G_star)
        n_pred = int(np.ceil(np.log(target / d0) / np.log(rho))) if rho > 0 else 1
        G0 = _near_start(p, d0, rng)
        tr_a = sl.run(p, "amgd", steps=int(3 * n_pred + 20), lr=eta, batch=None, rng=rng, G0=G0, F0=p.F_star,
                      init_head="least_squares")
        tr_k = sl.run(p, "kfac_ls", steps=60, lr=eta_kfac, batch=None, rng=rng, G0=G0, F0=p.F_star,
                      init_head="least_squares")
        rows.append({"kappa_x": kx, "kappa_F": kF, "kappa_eff": ke, "amgd_eta": eta,
                     "amgd_iters": iterations_to(tr_a.subspace_distance, target), "amgd_iters_pred": n_pred,
                     "kfac_iters": iterations_to(tr_k.subspace_distance, target),
                     "kfac_iters_pred": int(np.ceil(np.log(target / d0) / np.log(1 - eta_kfac)))})
    ke = np.array([r["kappa_eff"] for r in rows])
    na = np.array([r["amgd_iters"] for r in rows], dtype=float)
    nk = np.array([r["kfac_iters"] for r in rows], dtype=float)
    big = ke >= 10
    slope = float(np.polyfit(np.log(ke[big]), np.log(na[big]), 1)[0])
    # Asymptotically N = log(d0/target) / -log(rho*) ~ kappa_eff log(1e4) / 2: slope 1 in log-log.
    # Allowance 0.25: the two tied extreme modes at the optimal eta and the O(1) start-up transient
    # shift N by O(kappa_eff^0); over kappa_eff in [10, 1e3] that moves the fitted slope by < 0.25.
    tol = 0.25
    kfac_flat = bool(np.all(na > 0) and np.all(nk > 0) and nk.max() - nk.min() <= 1)
    passed = bool(abs(slope - 1.0) <= tol and kfac_flat)
    return Outcome(1.0, slope, None, tol, None, passed,
                   "slope of log N_AMGD vs log kappa_eff within 0.25 of 1 (O(1) transient); KFAC counts equal +-1",
                   tuple(rows), data={"kfac_iters_range": [float(nk.min()), float(nk.max())]})


# --------------------------------------------------------------------------- C6
@register(
    "C6", paper_ref="Sec. 3.1 (Adam / batch-norm)", theory_ref="R-LR-1", kind="exact",
    statement="A diagonal right preconditioner diag(Sigma_x) gives no gain on a rotated Sigma_x but a "
              "KFAC-like rate 1 - eta on an axis-aligned one; measured rates match R-LR-1.",
)
def c6_diagonal(*, size: str, seed: int) -> Outcome:
    settings = ((20.0, 1.0), (20.0, 5.0)) if size == "fast" else ((20.0, 1.0), (20.0, 5.0), (100.0, 3.0))
    tol = 1e-3  # as C4: sub-dominant transient and O(dist) terms
    rows, worst, ok, head = [], 0.0, True, None
    rngs = iter(spawn_generators(seed, 2 * len(settings)))
    for kx, kF in settings:
        for rotate in (True, False):
            rng = next(rngs)
            p = sd.linrep_problem(40, 6, 3, kappa_x=kx, kappa_F=kF, noise_std=0.0, rng=rng, rotate=rotate)
            G0 = _near_start(p, 1e-3, rng)
            res = {}
            for right, name in (("diag", "kfac_diag"), ("identity", "kfac_left")):
                _, m = tl.local_rate_factors(p.F_star, p.Sigma_x, p.G_star, left="FtF", right=right)
                eta = 0.5 / m[-1]  # non-optimal step: the slowest mode 1 - 0.5 m_min/m_max dominates
                pred = tl.local_rate(p.F_star, p.Sigma_x, p.G_star, eta=eta, left="FtF", right=right)
                steps = int(min(20000, np.ceil(np.log(1e-6) / np.log(max(pred, 1e-3)))) + 2)
                tr = sl.run(p, name, steps=steps, lr=eta, batch=None, rng=rng, G0=G0, F0=p.F_star,
                            init_head="least_squares")
                meas = _tail_rate(tr.subspace_distance)
                # the least-squares head at the current scale (left = FtF makes the rate scale-free)
                res[right] = (eta, pred, meas)
                worst = max(worst, abs(meas - pred))
                rows.append({"kappa_x": kx, "kappa_F": kF, "rotated": rotate, "right": right, "eta": eta,
                             "predicted": pred, "measured": meas, "abs_err": abs(meas - pred)})
            diag_meas, id_meas = res["diag"][2], res["identity"][2]
            if rotate:
                # "no gain": diag's rate per step is not better than Q = I by more than a factor 1.5 in log-rate
                ok &= bool(np.log(diag_meas) >= 1.5 * np.log(id_meas))
                head = head or (res["diag"][1], diag_meas)
            else:
                ok &= bool(abs(diag_meas - (1 - res["diag"][0])) <= tol)  # KFAC-like: 1 - eta
    passed = bool(ok and worst <= tol)
    return Outcome(head[0], head[1], None, tol, None, passed,
                   "rates to 1e-3 (as C4); rotated: |log rate_diag| <= 1.5 |log rate_I|; aligned: rate = 1 - eta",
                   tuple(rows), data={"max_abs_err": worst})


# --------------------------------------------------------------------------- C7
@register(
    "C7", paper_ref="Sec. 3.1 (KFAC statistical floor)", theory_ref="R-LR-3", kind="statistical",
    statement="With fresh Gaussian batches KFAC's stationary sum of tan^2 principal angles is "
              "eta/(2-eta) sigma^2 ||F*^+||_F^2 tr(Sigma_22.1^{-1}) / (n - d - 1).",
)
def c7_noise_floor(*, size: str, seed: int) -> Outcome:
    etas = (0.3, 0.6, 1.0)
    burn, keep = (100, 600) if size == "fast" else (200, 2400)
    alpha = stats.bonferroni(stats.ALPHA, len(etas))  # family-wise false-failure rate 1e-3
    d_x, d_y, k, n, noise = 50, 8, 3, 1000, 0.1
    rows, ok, head = [], True, None
    for eta, rng in zip(etas, spawn_generators(seed, len(etas))):
        U = sd.haar_orthogonal(d_y, rng=rng)[:, :k]
        F_star = (U * np.array([1.0, 0.7, 0.5])) @ sd.haar_orthogonal(k, rng=rng)
        p = sd.linrep_problem(d_x, d_y, k, kappa_x=10.0, kappa_F=1.0, noise_std=noise, rng=rng, law="gaussian",
                              F_star=F_star)
        tr = sl.run(p, "kfac", steps=burn + keep, lr=eta, batch=n, rng=rng, G0=p.G_star.copy(), F0=p.F_star.copy(),
                    options={"eta_F": eta})
        mean, se = stats.batch_means_se(tr.tangent_sq[burn + 1:], n_batches=20)
        pred = tl.kfac_noise_floor(p.F_star, p.Sigma_x, p.G_star, eta=eta, noise_std=noise, n=n)
        zt = stats.z_test(mean, se, pred, alpha=alpha)
        ok &= zt.passed
        head = head or zt
        rows.append({"eta": eta, "predicted": pred, "measured": mean, "stderr": se, "z": zt.z,
                     "tolerance": zt.tolerance, "passed": zt.passed})
    return Outcome(head.prediction, head.measured, head.stderr, head.tolerance, alpha, bool(ok),
                   f"z_(1-alpha/2) x batch-means s.e. (20 batches), alpha = 1e-3/{len(etas)} per eta (Bonferroni)",
                   tuple(rows))
