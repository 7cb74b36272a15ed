"""Benchmark: one optimizer step of linear representation learning against its floor and a baseline.

Setting (issue 4): d_x = 100, n = 1024, k = 5, d_y = 10, kappa_x = 100, kappa_F = 10, sigma = 0.01,
Rademacher inputs, one BLAS thread (threadpoolctl, as in the runners).

Printed, all measured in this run (median per iteration over ``--iters`` iterations, best of
``--repeats``, toolkit and floor interleaved):

- ``step``: what an iteration of :func:`simulate.linrep.run_common` costs per optimizer: draw the batch
  (:func:`simulate.data.draw_batch_fast`), its moments (:class:`simulate.optimizers.Batch`) and
  ``opt.step``.
- ``floor``: the same batch draw written bare (random bytes -> signs, ``X = W Sigma^{1/2}``, labels,
  ``X'X/n``, ``Y'X/n``) plus the step's own matrix products and factorisations written inline with
  direct LAPACK calls (no validation, no dataclasses, no dispatch).
- baselines: a straightforward Figure 1 iteration (every optimizer draws its own batch, as separate
  ``run`` calls would) against the common-random-numbers iteration of ``run_common``; the explicit
  dense Gauss-Newton / Hessian solves against the structured ones; a step-size sweep run by run
  against the stacked one.

Target: step / floor <= 2 for every optimizer. Exit status 1 when a ratio exceeds ``--limit``
(default 2) and ``--strict`` is given (timings on a shared machine are noisy; without ``--strict``
the script only reports). Run: ``python benchmarks/linrep_step.py [--iters 200] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import scipy.linalg as sla

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from simulate import data as sd  # noqa: E402
from simulate import linrep as sl  # noqa: E402
from simulate import optimizers as so  # noqa: E402

POTRF, POTRS = sla.lapack.get_lapack_funcs(("potrf", "potrs"), (np.empty((1, 1)),))


def chol(A):
    return POTRF(A, lower=1, clean=1)[0]


def csolve(L, B):
    return POTRS(L, B, lower=1)[0]


# --------------------------------------------------------------------------- bare floors
def bare_batch(rng, S, M, sigma, n):
    d = S.shape[0]
    W = np.unpackbits(np.frombuffer(rng.bytes(n * d // 8), dtype=np.uint8)).astype(np.float64) * 2.0 - 1.0
    X = W.reshape(n, d) @ S
    Y = X @ M.T + sigma * rng.standard_normal((n, M.shape[0]))
    return X, Y, X.T @ X / n, Y.T @ X / n


def bare_grads(F, G, Sx, Syx):
    GS = G @ Sx
    gG = F.T @ (F @ GS - Syx)
    Sz = GS @ G.T
    return F @ Sz - Syx @ G.T, gG, Sz


def floor_sgd(F, G, st, X, Y, Sx, Syx, lr):
    gF, gG, _ = bare_grads(F, G, Sx, Syx)
    return F - lr * gF, G - lr * gG, st


def floor_amgd(F, G, st, X, Y, Sx, Syx, lr):
    G = G - lr * (F.T @ (F @ (G @ Sx) - Syx))
    GS = G @ Sx
    return csolve(chol(GS @ G.T), G @ Syx.T).T, G, st


def floor_kfac(F, G, st, X, Y, Sx, Syx, lr):
    D = F.T @ (F @ (G @ Sx) - Syx)
    D = csolve(chol(F.T @ F), D)
    D = csolve(chol(Sx), D.T).T
    G = G - lr * D
    GS = G @ Sx
    Sz = GS @ G.T
    gF = F @ Sz - Syx @ G.T
    return F - lr * csolve(chol(Sz), gF.T).T, G, st


def floor_adam(F, G, st, X, Y, Sx, Syx, lr, b1=0.9, b2=0.999, eps=1e-8):
    gF, gG, _ = bare_grads(F, G, Sx, Syx)
    t, mF, vF, mG, vG = st
    t += 1
    mF = b1 * mF + (1 - b1) * gF
    vF = b2 * vF + (1 - b2) * gF * gF
    mG = b1 * mG + (1 - b1) * gG
    vG = b2 * vG + (1 - b2) * gG * gG
    c1, c2 = 1 - b1**t, 1 - b2**t
    F = F - lr * (mF / c1) / (np.sqrt(vF / c2) + eps)
    G = G - lr * (mG / c1) / (np.sqrt(vG / c2) + eps)
    return F, G, (t, mF, vF, mG, vG)


def floor_bn(F, G, st, X, Y, Sx, Syx, lr, eps=1e-5, mom=0.1):
    g, b, rm, rv = st
    n = X.shape[0]
    H = G @ X.T
    mu = H.mean(axis=1)
    Hc = H - mu[:, None]
    inv = 1.0 / np.sqrt((Hc * Hc).sum(axis=1) / n + eps)
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
    Z = Hc * (g / np.sqrt(var + eps))[:, None] + b[:, None]
    F = csolve(chol(Z @ Z.T / n), Z @ Y / n).T
    return F, G, (g, b, (1 - mom) * rm + mom * mu, (1 - mom) * rv + mom * var * n / (n - 1))


def _gn_factor(F, G, Sx, Sz, delta):
    Sxz = Sx @ G.T
    Kinv = csolve(chol(Sz + delta * np.eye(Sz.shape[0])), np.eye(Sz.shape[0]))
    S = Sx - Sxz @ (Kinv @ Sxz.T)
    lam, U = np.linalg.eigh(F.T @ F)
    I = np.eye(S.shape[0])
    return Sxz, Kinv, U, [chol(lj * S + delta * I) for lj in lam]


def _gn_solve(F, fac, gF, gG):
    Sxz, Kinv, U, Ls = fac
    R = U.T @ (gG - (F.T @ gF) @ Kinv @ Sxz.T) if gF.ndim == 2 else None
    if gF.ndim == 2:
        Y = np.stack([csolve(L, r) for L, r in zip(Ls, R)])
        dG = U @ Y
        return (gF - F @ (dG @ Sxz)) @ Kinv, dG
    m, d_y, k = gF.shape
    d = gG.shape[2]
    FtgF = np.tensordot(gF, F, axes=([1], [0])).transpose(0, 2, 1)
    R = gG - ((FtgF.reshape(m * k, k) @ Kinv) @ Sxz.T).reshape(m, k, d)
    Rt = np.tensordot(U, R, axes=([0], [1]))
    Yt = np.stack([csolve(L, Rt[j].T).T for j, L in enumerate(Ls)])
    dG = np.tensordot(U, Yt, axes=([1], [0])).transpose(1, 0, 2)
    dF = ((gF - np.tensordot(F, (dG.reshape(m * k, d) @ Sxz).reshape(m, k, k), axes=([1], [1])).transpose(1, 0, 2)
           ).reshape(m * d_y, k) @ Kinv).reshape(m, d_y, k)
    return dF, dG


def _delta(F, Sz, Sx, damping):
    d_y, k = F.shape
    return damping * (d_y * np.trace(Sz) + np.trace(Sx) * np.sum(F * F)) / (d_y * k + k * Sx.shape[0])


def floor_ngd(F, G, st, X, Y, Sx, Syx, lr, damping=1e-3):
    gF, gG, Sz = bare_grads(F, G, Sx, Syx)
    fac = _gn_factor(F, G, Sx, Sz, _delta(F, Sz, Sx, damping))
    dF, dG = _gn_solve(F, fac, gF, gG)
    return F - lr * dF, G - lr * dG, st


def floor_newton(F, G, st, X, Y, Sx, Syx, lr, damping=1e-3):
    gF, gG, Sz = bare_grads(F, G, Sx, Syx)
    d_y, k = F.shape
    d = G.shape[1]
    fac = _gn_factor(F, G, Sx, Sz, _delta(F, Sz, Sx, damping))
    UE, s, VEt = np.linalg.svd(F @ (G @ Sx) - Syx, full_matrices=False)
    r = s.size * k
    eye = np.eye(k)
    PF = np.einsum("iq,jm->qjim", UE * s, eye).reshape(r, d_y, k)
    QG = np.einsum("lq,jm->qjml", VEt.T, eye).reshape(r, k, d)
    RF = np.concatenate([PF, np.zeros((r, d_y, k)), gF[None]])
    RG = np.concatenate([np.zeros((r, k, d)), QG, gG[None]])
    XF, XG = _gn_solve(F, fac, RF, RG)
    m = XF.shape[0]
    WtX = np.concatenate([((UE * s).T @ XF).reshape(m, r), (XG @ VEt.T).transpose(0, 2, 1).reshape(m, r)], axis=1).T
    Cap = np.block([[np.zeros((r, r)), np.eye(r)], [np.eye(r), np.zeros((r, r))]]) + WtX[:, :-1]
    x = np.linalg.solve(Cap, WtX[:, -1])
    dF = XF[-1] - (x @ XF[:-1].reshape(2 * r, -1)).reshape(d_y, k)
    dG = XG[-1] - (x @ XG[:-1].reshape(2 * r, -1)).reshape(k, d)
    return F - lr * dF, G - lr * dG, st


CASES = {  # name: (lr, floor, floor state)
    "sgd": (0.01, floor_sgd, lambda F, G: None),
    "amgd": (0.1, floor_amgd, lambda F, G: None),
    "kfac": (0.1, floor_kfac, lambda F, G: None),
    "adam": (1e-3, floor_adam, lambda F, G: (0, 0 * F, 0 * F, 0 * G, 0 * G)),
    "amgd_bn": (0.1, floor_bn, lambda F, G: (np.ones(G.shape[0]), np.zeros(G.shape[0]), np.zeros(G.shape[0]),
                                             np.ones(G.shape[0]))),
    "ngd": (0.1, floor_ngd, lambda F, G: None),
    "newton": (0.05, floor_newton, lambda F, G: None),
}


def _median_iter(fn, iters: int) -> float:
    ts = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        ts[i] = time.perf_counter() - t0
    return float(np.median(ts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=float, default=2.0)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    p = sd.linrep_problem(100, 10, 5, kappa_x=100.0, kappa_F=10.0, noise_std=0.01, rng=rng)
    n = 1024
    S, M, sig = p.Sigma_x_sqrt, p.M, p.noise_std
    F0, G0 = sl.initial_point(p, rng=rng)
    worst = 0.0
    with threadpool_limits(limits=1):
        print(f"d_x = {p.d_x}, n = {n}, k = {p.k}, d_y = {p.d_y}; median per iteration, best of {args.repeats}")
        print(f"{'optimizer':10s} {'step ms':>9s} {'floor ms':>9s} {'ratio':>7s}")
        for name, (lr, floor, floor_state) in CASES.items():
            opt = so.make(name, lr=lr)
            best_t, best_f = np.inf, np.inf
            for _ in range(args.repeats):
                box = {"F": F0.copy(), "G": G0.copy(), "st": opt.init(F0, G0)}
                fbox = {"F": F0.copy(), "G": G0.copy(), "st": floor_state(F0, G0)}
                r1, r2 = np.random.default_rng(1), np.random.default_rng(1)

                def tool():
                    b = so.Batch.from_samples(*sd.draw_batch_fast(p, n, rng=r1))
                    box["F"], box["G"], box["st"] = opt.step(box["F"], box["G"], b, box["st"])

                def bare():
                    X, Y, Sx, Syx = bare_batch(r2, S, M, sig, n)
                    fbox["F"], fbox["G"], fbox["st"] = floor(fbox["F"], fbox["G"], fbox["st"], X, Y, Sx, Syx, lr)

                best_t = min(best_t, _median_iter(tool, args.iters))
                best_f = min(best_f, _median_iter(bare, args.iters))
            ratio = best_t / best_f
            worst = max(worst, ratio)
            print(f"{name:10s} {1e3 * best_t:9.3f} {1e3 * best_f:9.3f} {ratio:7.2f}")

        # baseline 1: Figure 1 iteration, common random numbers vs one batch per optimizer
        from compare.experiments_linrep import FIG1_METHODS

        specs = [sl.OptimizerSpec(m.label, m.name, 0.05, m.options) for m in FIG1_METHODS]
        steps = 50
        t0 = time.perf_counter()
        sl.run_common(p, specs, steps=steps, batch=n, rng=np.random.default_rng(2), record_every=steps)
        crn = (time.perf_counter() - t0) / steps
        t0 = time.perf_counter()
        for s in specs:
            sl.run(p, s.name, steps=steps, lr=s.lr, batch=n, rng=np.random.default_rng(2), options=dict(s.options))
        sep = (time.perf_counter() - t0) / steps
        print(f"\nFigure 1 iteration ({len(specs)} optimizers): run_common {1e3 * crn:.2f} ms, separate runs with "
              f"their own batches {1e3 * sep:.2f} ms, ratio {sep / crn:.2f}")

        # baseline 2: structured vs explicit dense second-order solves
        b = so.Batch.from_samples(*sd.draw_batch_fast(p, n, rng=rng))
        for name in ("ngd", "newton"):
            fast = so.make(name, lr=0.1)
            dense = so.make(name, lr=0.1, solver="dense")
            tf = min(_median_iter(lambda: fast.direction(F0, G0, b), 20) for _ in range(args.repeats))
            td = min(_median_iter(lambda: dense.direction(F0, G0, b), 5) for _ in range(args.repeats))
            print(f"{name:7s} direction: structured {1e3 * tf:.2f} ms, dense explicit matrix {1e3 * td:.2f} ms, "
                  f"ratio {td / tf:.1f}")

        # baseline 3: a step-size sweep (9 step sizes x SGD, AMGD, Adam, AMGD+BN, KFAC), stacked vs run by run
        grid = [float(x) for x in 10.0 ** (np.arange(-6, 3) / 2.0)]
        specs = [sl.OptimizerSpec(f"{m}@{lr}", m, lr) for m in ("sgd", "amgd", "adam", "amgd_bn", "kfac") for lr in grid]
        steps = 30
        out = {}
        for stack in (True, False):
            t0 = time.perf_counter()
            sl.run_common(p, specs, steps=steps, batch=n, rng=np.random.default_rng(3), record_every=steps, stack=stack)
            out[stack] = (time.perf_counter() - t0) / steps
        print(f"sweep iteration ({len(specs)} runs): stacked {1e3 * out[True]:.2f} ms, run by run "
              f"{1e3 * out[False]:.2f} ms, ratio {out[False] / out[True]:.2f}")
    print(f"\nworst step / floor ratio: {worst:.2f} (target <= {args.limit:g})")
    return 1 if (args.strict and worst > args.limit) else 0


if __name__ == "__main__":
    sys.exit(main())
