"""Benchmark: the linear-model batch and Figure 1 iteration against their floors, and one optimizer step
against a bare re-implementation.

Setting (issue 4, paper size): d_x = 100, n = 1024, k = 5, d_y = 10, kappa_x = 100, kappa_F = 10,
sigma = 0.01, Rademacher inputs, one BLAS thread (threadpoolctl, as in the runners). Every number is a
median over interleaved repetitions measured in this run, in CPU time of this process
(``time.process_time``: time the shared machine gives to other processes is not counted; compare ratios).

1. Batch (decisive, target ``--batch-limit``, 1.5): (a) the bare floor = the sign draw (raw random
   bits -> +-1 float32 by a byte table), the float32 SYRK ``W'W`` and the label-noise draw; (b) the batch
   as :func:`simulate.linrep.run_common` draws it for Figure 1 (its own ``next_batch``:
   :class:`simulate.data.BatchSampler` with the means batch-norm reads, then
   :class:`simulate.optimizers.Batch`); ratio (b)/(a). (b) delivers every statistic fully formed
   (Sigma_x exactly symmetric, Sigma_yx, trace_yy, x_mean, y_mean). Also printed: the sampler without the
   means; the same batch through the validating public API (``BatchSampler.draw`` +
   ``Batch.from_moments``, whose argument checks run_common does not repeat); the work (b) cannot go
   below, written bare (the signs and the rounded noise in one float32 buffer [W | E | 1], its SYRK,
   which gives W'W, E'W and W'1 at once, its float64 copy, the block upper triangle of S (W'W) S and
   (M S W'W + sigma E'W) S); and the old materialised path (X = W S, X'X / n, Y'X / n).
2. Figure 1 iteration (decisive, target ``--iter-limit``, 2): one iteration of ``run_common`` with the
   eight Figure 1 optimizers (SGD, AMGD, Adam, AMGD+BN, NGD, Newton, KFAC, KFAC LS head; per-iteration
   time = (T(steps) - T(0)) / steps) against (a) + the sum of the optimizers' own steps on a fixed,
   precomputed batch.
3. Step (report; ``--strict`` gates it at ``--limit``, 2): each optimizer's ``step`` on a fixed batch
   against the same step written bare (direct LAPACK calls, no validation, no dataclasses).
4. Baselines (report): common random numbers vs one batch per optimizer; structured vs dense
   second-order solves; a stacked step-size sweep vs run by run.

Exit status 1 when a decisive target (1, 2) is missed, or a step ratio exceeds ``--limit`` with
``--strict``. Run: ``python benchmarks/linrep_step.py [--iters 200] [--repeats 5]``.
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
class BareFloor:
    """The irreducible batch work, written bare: sign bits -> +-1 float32, the SYRK W'W (float32, exact),
    the label noise, into preallocated buffers."""

    def __init__(self, n, d, d_y):
        self.n, self.d = n, d
        self.words = -(-n * d // 64)
        self.table = (np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32) * 2 - 1)
        self.signs = np.empty((8 * self.words, 8), dtype=np.float32)
        self.E = np.empty((n, d_y))

    def __call__(self, rng):
        raw = rng.bit_generator.random_raw(self.words).view(np.uint8)
        np.take(self.table, raw, axis=0, out=self.signs, mode="clip")
        W = self.signs.reshape(-1)[: self.n * self.d].reshape(self.n, self.d)
        C = W.T @ W
        rng.standard_normal(out=self.E)
        return C


class BareProducts:
    """The work the statistics cannot do without beyond the floor, written bare (what (b) cannot go below):
    the sign bits straight into the rows of a float32 buffer [W | E | 1 | pad] (width w = 112), the noise
    rounded into it, one float32 SYRK of the buffer (W'W, E'W, W'1 in one product: n w^2 / 2 multiply-adds
    against the floor's n d^2 / 2), its float64 copy, then the block upper triangle of S C S (float64
    GEMMs, 7 d^3 / 4, as the sampler multiplies it) and (M S C + sigma E'W) S (no mirror, no
    symmetrisation, no trace, no means, no scaling)."""

    def __init__(self, n, d, d_y, S, M, sigma):
        self.n, self.d, self.d_y = n, d, d_y
        self.r = -(-(d + d_y + 1) // 8)                   # bytes of sign bits a row: the buffer's row
        self.words = -(-n * self.r // 8)
        self.table = (np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32) * 2 - 1)
        self.B = np.zeros((n, 8 * self.r), dtype=np.float32)
        self.B8 = self.B.reshape(n, self.r, 8)
        self.E = np.empty((n, d_y))
        self.S, self.MS, self.sigma = S, M @ S, sigma

    def __call__(self, rng):
        n, d, d_y = self.n, self.d, self.d_y
        raw = rng.bit_generator.random_raw(self.words).view(np.uint8)[: n * self.r]
        np.take(self.table, raw.reshape(n, self.r), axis=0, out=self.B8, mode="clip")
        rng.standard_normal(out=self.E)
        self.B[:, d:d + d_y] = self.E
        G = (self.B.T @ self.B).astype(np.float64)
        C, S, h = G[:d, :d], self.S, d // 2
        A = S @ C
        top, corner = A[:h] @ S, A[h:] @ S[:, h:]
        return top, corner, (self.MS @ C + self.sigma * G[d:d + d_y, :d]) @ S


def bare_grads(F, G, Sx, Syx):
    GS = G @ Sx
    gG = F.T @ (F @ GS - Syx)
    Sz = GS @ G.T
    return F @ Sz - Syx @ G.T, gG, Sz


def floor_sgd(F, G, st, B, lr):
    Sx, Syx = B.Sigma_x, B.Sigma_yx
    gF, gG, _ = bare_grads(F, G, Sx, Syx)
    return F - lr * gF, G - lr * gG, st


def floor_amgd(F, G, st, B, lr):
    Sx, Syx = B.Sigma_x, B.Sigma_yx
    G = G - lr * (F.T @ (F @ (G @ Sx) - Syx))
    GS = G @ Sx
    return csolve(chol(GS @ G.T), G @ Syx.T).T, G, st


def floor_kfac(F, G, st, B, lr, eta_F=None):
    Sx, Syx = B.Sigma_x, B.Sigma_yx
    D = F.T @ (F @ (G @ Sx) - Syx)
    D = csolve(chol(F.T @ F), D)
    D = csolve(chol(Sx), D.T).T
    G = G - lr * D
    GS = G @ Sx
    Sz = GS @ G.T
    gF = F @ Sz - Syx @ G.T
    return F - (lr if eta_F is None else eta_F) * csolve(chol(Sz), gF.T).T, G, st


def floor_kfac_ls(F, G, st, B, lr):
    return floor_kfac(F, G, st, B, lr, eta_F=1.0)


def floor_adam(F, G, st, B, lr, b1=0.9, b2=0.999, eps=1e-8):
    Sx, Syx = B.Sigma_x, B.Sigma_yx
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


def floor_bn(F, G, st, B, lr, eps=1e-5, mom=0.1):
    # batch-norm from the batch moments (the toolkit's formulas, written bare)
    g, b, rm, rv = st
    n, xb, yb = B.n, B.x_mean, B.y_mean
    Cxx = B.Sigma_x - np.outer(xb, xb)
    Cyx = B.Sigma_yx - np.outer(yb, xb)
    GC = G @ Cxx
    inv = 1.0 / np.sqrt((GC * G).sum(axis=1) + eps)
    s = g * inv
    R = (F.T @ F) @ (s[:, None] * GC) - F.T @ Cyx
    dg = inv * (R * G).sum(axis=1)
    G = G - lr * (s[:, None] * (R - (dg * inv)[:, None] * GC))
    g = g - lr * dg
    b = b - lr * (F.T @ (F @ b - yb))
    GC = G @ Cxx
    var = (GC * G).sum(axis=1)
    s = g / np.sqrt(var + eps)
    Sz = np.outer(s, s) * (GC @ G.T) + np.outer(b, b)
    F = csolve(chol(Sz), s[:, None] * (G @ Cyx.T) + np.outer(b, yb)).T
    return F, G, (g, b, (1 - mom) * rm + mom * (G @ xb), (1 - mom) * rv + mom * var * n / (n - 1))


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


def floor_ngd(F, G, st, B, lr, damping=1e-3):
    Sx, Syx = B.Sigma_x, B.Sigma_yx
    gF, gG, Sz = bare_grads(F, G, Sx, Syx)
    fac = _gn_factor(F, G, Sx, Sz, _delta(F, Sz, Sx, damping))
    dF, dG = _gn_solve(F, fac, gF, gG)
    return F - lr * dF, G - lr * dG, st


def floor_newton(F, G, st, B, lr, damping=1e-3):
    Sx, Syx = B.Sigma_x, B.Sigma_yx
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


CASES = {  # name: (lr, floor, floor state); the Figure 1 optimizers at step sizes that do not diverge
    "sgd": (0.01, floor_sgd, lambda F, G: None),
    "amgd": (0.1, floor_amgd, lambda F, G: None),
    "adam": (1e-3, floor_adam, lambda F, G: (0, 0 * F, 0 * F, 0 * G, 0 * G)),
    "amgd_bn": (0.1, floor_bn, lambda F, G: (np.ones(G.shape[0]), np.zeros(G.shape[0]), np.zeros(G.shape[0]),
                                             np.ones(G.shape[0]))),
    "ngd": (0.1, floor_ngd, lambda F, G: None),
    "newton": (0.05, floor_newton, lambda F, G: None),
    "kfac": (0.1, floor_kfac, lambda F, G: None),
    "kfac_ls": (0.1, floor_kfac_ls, lambda F, G: None),
}


def _times(fn, iters: int) -> np.ndarray:
    ts = np.empty(iters)
    for i in range(iters):
        t0 = time.process_time()
        fn()
        ts[i] = time.process_time() - t0
    return ts


def _interleaved(fns: dict, *, iters: int, repeats: int) -> dict:
    """Median seconds per call of each function, its calls timed in ``repeats`` interleaved blocks."""
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            out[k].append(_times(fn, iters))
    return {k: float(np.median(np.concatenate(v))) for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40, help="run_common iterations per repetition (section 2)")
    ap.add_argument("--batch-limit", type=float, default=1.5)
    ap.add_argument("--iter-limit", type=float, default=2.0)
    ap.add_argument("--limit", type=float, default=2.0)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from compare.linrep.experiments import PAPER_OPTIMIZERS, method

    FIG1_METHODS = tuple(method(n) for n in PAPER_OPTIMIZERS)

    rng = np.random.default_rng(0)
    p = sd.linrep_problem(100, 10, 5, kappa_x=100.0, kappa_F=10.0, noise_std=0.01, rng=rng)
    n = 1024
    F0, G0 = sl.initial_point(p, rng=rng)
    failed = []
    with threadpool_limits(limits=1):
        print(f"d_x = {p.d_x}, n = {n}, k = {p.k}, d_y = {p.d_y}; medians of {args.repeats} interleaved "
              f"repetitions, one BLAS thread")

        # 1. the batch against its floor
        floor = BareFloor(n, p.d_x, p.d_y)
        products = BareProducts(n, p.d_x, p.d_y, p.Sigma_x_sqrt, p.M, p.noise_std)
        r = {k: np.random.default_rng(1) for k in range(6)}
        fig1_opts = [sl.OptimizerSpec(m.label, m.name, 0.1, m.options).build() for m in FIG1_METHODS]
        fig1 = sl._batches(p, n, fig1_opts, r[1])          # run_common's own next_batch (BatchSampler, means)
        bare = sl._batches(p, n, [so.make("sgd", lr=0.1)], r[2])   # no rule needs the means
        public = sd.BatchSampler(p, n, means=True)
        t = _interleaved({
            "floor": lambda: floor(r[0]),
            "batch": fig1,
            "no means": bare,
            "public": lambda: so.Batch.from_moments(public.draw(r[5])),
            "products": lambda: products(r[4]),
            "materialised": lambda: so.Batch.from_samples(*sd.draw_batch_fast(p, n, rng=r[3])),
        }, iters=args.iters, repeats=args.repeats)
        ratio_b = t["batch"] / t["floor"]
        print("\n1. batch (per draw)")
        print(f"   (a) floor: sign bits + float32 SYRK + label noise   {1e6 * t['floor']:8.1f} us")
        print(f"   (b) batch as run_common draws it for Figure 1     {1e6 * t['batch']:8.1f} us   "
              f"(b)/(a) = {ratio_b:.2f}  (target <= {args.batch_limit:g})")
        print(f"       the same without the batch means             {1e6 * t['no means']:8.1f} us   "
              f"/(a) = {t['no means'] / t['floor']:.2f}")
        print(f"       the same through the validating public API   {1e6 * t['public']:8.1f} us   "
              f"/(a) = {t['public'] / t['floor']:.2f}  (BatchSampler.draw + Batch.from_moments: argument checks)")
        print(f"       bare: [W|E|1] SYRK + S C S + (MSC+sE'W) S    {1e6 * t['products']:8.1f} us   "
              f"/(a) = {t['products'] / t['floor']:.2f}; (b) / this = {t['batch'] / t['products']:.2f}")
        print(f"       old path, X = W S materialised               {1e6 * t['materialised']:8.1f} us   "
              f"/(a) = {t['materialised'] / t['floor']:.2f}, /(b) = {t['materialised'] / t['batch']:.2f}")
        if ratio_b > args.batch_limit:
            failed.append(f"batch / floor = {ratio_b:.2f} > {args.batch_limit:g}")

        # 2. the Figure 1 iteration against floor + the optimizers' own steps on a fixed batch
        LR = {name: lr for name, (lr, _, _) in CASES.items()}
        specs = [sl.OptimizerSpec(m.label, m.name, LR[m.name], m.options) for m in FIG1_METHODS]
        opts = [s.build() for s in specs]
        b0 = so.Batch.from_moments(sd.draw_batch_moments(p, n, rng=np.random.default_rng(5)))
        states = [o.init(F0, G0) for o in opts]
        steps = args.steps

        def common(k):
            return sl.run_common(p, specs, steps=k, batch=n, rng=np.random.default_rng(2), record_every=max(k, 1),
                                 F0=F0, G0=G0)

        div = common(steps).diverged_at
        if np.any(div >= 0):
            print(f"   warning: runs diverged at {div} (the iteration gets cheaper)")
        fns = {"run_common": lambda: common(steps), "run_common 0": lambda: common(0), "floor": lambda: floor(r[0])}
        for s_, o, st in zip(specs, opts, states):
            fns[s_.label] = (lambda o=o, st=st: o.step(F0, G0, b0, st))
        reps = max(3, args.repeats)
        t2 = {k: [] for k in fns}
        for _ in range(reps):
            for k, fn in fns.items():
                t2[k].append(_times(fn, 1 if k.startswith("run_common") else max(1, args.iters // 4)))
        med = {k: float(np.median(np.concatenate(v))) for k, v in t2.items()}
        it = (med["run_common"] - med["run_common 0"]) / steps
        opt_sum = sum(med[s_.label] for s_ in specs)
        ratio_c = it / (med["floor"] + opt_sum)
        print(f"\n2. Figure 1 iteration ({len(specs)} optimizers, {steps} iterations x {reps} repetitions)")
        print(f"   run_common per iteration                         {1e3 * it:8.3f} ms")
        print(f"   floor + the optimizers' steps on a fixed batch    {1e3 * (med['floor'] + opt_sum):8.3f} ms "
              f"(floor {1e3 * med['floor']:.3f} + steps {1e3 * opt_sum:.3f}: "
              + ", ".join(f"{s_.name} {1e3 * med[s_.label]:.3f}" for s_ in specs) + ")")
        print(f"   ratio {ratio_c:.2f}  (target <= {args.iter_limit:g})")
        if ratio_c > args.iter_limit:
            failed.append(f"iteration / (floor + steps) = {ratio_c:.2f} > {args.iter_limit:g}")

        # 3. each optimizer's step against its bare re-implementation, on the fixed batch
        print(f"\n3. one step on a fixed batch (median per step)\n   {'optimizer':10s} {'step ms':>9s} "
              f"{'bare ms':>9s} {'ratio':>7s}")
        worst = 0.0
        for name, (lr, bare_step, bare_state) in CASES.items():
            opt = so.make(name, lr=lr)
            st0, fst0 = opt.init(F0, G0), bare_state(F0, G0)
            tt = _interleaved({"tool": lambda: opt.step(F0, G0, b0, st0),
                               "bare": lambda: bare_step(F0, G0, fst0, b0, lr)}, iters=args.iters // 4 or 1,
                              repeats=args.repeats)
            ratio = tt["tool"] / tt["bare"]
            worst = max(worst, ratio)
            print(f"   {name:10s} {1e3 * tt['tool']:9.3f} {1e3 * tt['bare']:9.3f} {ratio:7.2f}")
        print(f"   worst step / bare ratio: {worst:.2f} (target <= {args.limit:g}{', gated' if args.strict else ''})")
        if args.strict and worst > args.limit:
            failed.append(f"step / bare = {worst:.2f} > {args.limit:g}")

        if not args.no_baselines:
            _baselines(p, n, F0, G0, args)
    print("\n" + ("targets missed: " + "; ".join(failed) if failed else "all decisive targets met"))
    return 1 if failed else 0


def _baselines(p, n, F0, G0, args):
    from compare.linrep.experiments import PAPER_OPTIMIZERS, method

    FIG1_METHODS = tuple(method(n) for n in PAPER_OPTIMIZERS)

    print("\n4. baselines")
    # common random numbers vs one batch per optimizer
    LR = {name: lr for name, (lr, _, _) in CASES.items()}
    specs = [sl.OptimizerSpec(m.label, m.name, LR[m.name], m.options) for m in FIG1_METHODS]
    steps = 30
    t0 = time.process_time()
    sl.run_common(p, specs, steps=steps, batch=n, rng=np.random.default_rng(2), record_every=steps)
    crn = (time.process_time() - t0) / steps
    t0 = time.process_time()
    for s in specs:
        sl.run(p, s.name, steps=steps, lr=s.lr, batch=n, rng=np.random.default_rng(2), options=dict(s.options))
    sep = (time.process_time() - t0) / steps
    print(f"   Figure 1 iteration: run_common {1e3 * crn:.2f} ms, separate runs with their own batches "
          f"{1e3 * sep:.2f} ms, ratio {sep / crn:.2f}")
    # structured vs explicit dense second-order solves
    b = so.Batch.from_moments(sd.draw_batch_moments(p, n, rng=np.random.default_rng(4)))
    for name in ("ngd", "newton"):
        fast = so.make(name, lr=0.1)
        dense = so.make(name, lr=0.1, solver="dense")
        tf = float(np.median(_times(lambda: fast.direction(F0, G0, b), 20)))
        td = float(np.median(_times(lambda: dense.direction(F0, G0, b), 5)))
        print(f"   {name:7s} direction: structured {1e3 * tf:.2f} ms, dense explicit matrix {1e3 * td:.2f} ms, "
              f"ratio {td / tf:.1f}")
    # a step-size sweep (9 step sizes x SGD, AMGD, Adam, AMGD+BN, KFAC), stacked vs run by run
    grid = [float(x) for x in 10.0 ** (np.arange(-6, 3) / 2.0)]
    specs = [sl.OptimizerSpec(f"{m}@{lr}", m, lr) for m in ("sgd", "amgd", "adam", "amgd_bn", "kfac") for lr in grid]
    steps = 20
    out = {}
    for stack in (True, False):
        t0 = time.process_time()
        sl.run_common(p, specs, steps=steps, batch=n, rng=np.random.default_rng(3), record_every=steps, stack=stack)
        out[stack] = (time.process_time() - t0) / steps
    print(f"   sweep iteration ({len(specs)} runs): stacked {1e3 * out[True]:.2f} ms, run by run "
          f"{1e3 * out[False]:.2f} ms, ratio {out[False] / out[True]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
