"""Single-index experiments (docs/theory.md section 4) and Figure 3: runners shared by claims C8-C13, C21.

Each runner draws one problem instance (the Figure 3 family of docs/theory.md section 5: two-level
spectrum 1 and :math:`1-\\epsilon` rescaled to mean 1, Haar eigenbasis, :math:`\\beta^*` Gaussian scaled
to :math:`s^2=\\beta^{*\\top}\\Sigma\\beta^*=1`), runs :func:`simulate.single_index.one_step` over
independent trials, and evaluates the deterministic equivalents of :mod:`theory.single_index` for
*that* instance (the finite-:math:`d` form), independently:

.. math::

    \\cos(v_{SGD},\\beta^*)\\ \\text{(docs/theory.md 4.2)},\\qquad
    \\cos(v_{KFAC},\\beta^*)=\\frac{cA_1}{\\lVert\\beta^*\\rVert\\sqrt{c^2B+(c^2\\kappa^2E+\\sigma_r^2)T_2/(1-D_2)}}
    \\ \\text{(Theorem 3.9)}.

:math:`\\Sigma` is eigendecomposed once per instance here and both sides receive its eigenvalues
with :math:`\\tilde\\beta=O^\\top\\beta^*` (the contract form "1-D Sigma, beta_star in that
eigenbasis"), so neither side repeats a :math:`d\\times d` eigendecomposition.

Defaults [R] (docs/theory.md Figure 3): :math:`\\psi=2`, :math:`N=d/2`, tanh teacher and student,
:math:`\\sigma_\\varepsilon=0.1`, :math:`\\epsilon=0.9`; sizes ``fast`` (d = 300 for the figure, 200 and 400
for the claims) and ``paper`` (d = 1000, 30 trials for the figure; 500 and 1000 for the claims, with
300 and 160 trials: see :data:`SIZES`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from compare.registry import register_figure
from simulate import data as sd
from simulate import single_index as ss
from theory import single_index as ts

#: the anisotropy of the headline setting (two-level ratio r = 1 - eps = 0.1).
EPS = 0.9
PSI = 2.0
PHI = 0.5            # N / d
NOISE = 0.1
TEACHER = "tanh"
STUDENT = "tanh"
CLAIM_LAMS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
FIG_LAMS = tuple(float(x) for x in np.geomspace(1e-3, 10.0, 13))
FIG_EPS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
FIG_PSI = (0.5, 1.0, 2.0, 4.0, 8.0)
FIG_LAM_RIGHT = 0.1

#: per size: figure dimension and trials; claim dimensions (d, 2d) and trials at each (C8-C12, C21);
#: the psi = 32 run of C8 at (cap_d, 2 cap_d) and its trials; the test-error run of C13.
#: Trials are allotted to the two claim sizes by cost: the bias-corrected mean has variance
#: se_d^2 + 4 se_2d^2, a trial at 2d costs ~7-10x one at d (X'X and the eigendecomposition), so
#: T_d / T_2d ~ sqrt((1 / c_d) / (2 / c_2d)) ~ 2 minimises the variance at a given cost
#: (docstring of compare.claims_single_index, "Power": why the paper-size pair is d = 500 and 1000).
SIZES: dict[str, dict[str, Any]] = {
    "fast": {"fig_d": 300, "fig_trials": 30, "claim_d": 200, "claim_trials": (120, 60), "cap_d": 100,
             "cap_trials": (40, 20), "test_d": 150, "test_trials": 20},
    "paper": {"fig_d": 1000, "fig_trials": 30, "claim_d": 500, "claim_trials": (300, 160), "cap_d": 250,
              "cap_trials": (30, 15), "test_d": 400, "test_trials": 20},
}


def _size(size: str) -> dict[str, Any]:
    if size not in SIZES:
        raise ValueError(f"single_index: argument 'size' must be one of {tuple(SIZES)}; got {size!r}.")
    return SIZES[size]


def blas_threads_for(d: int) -> int | None:
    """BLAS threads per trial: 1 for small problems (a multi-threaded BLAS under contention on a
    shared 2-core machine made 300 x 300 Cholesky factorisations 50x slower), the default above."""
    return 1 if d <= 500 else None


def blas_limit(d: int):
    """Context limiting BLAS to :func:`blas_threads_for` threads (no limit for large d)."""
    k = blas_threads_for(d)
    if k is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=k)


def _cached(key: dict, compute: Callable[[], Any]) -> Any:
    """Store on disk through :mod:`compare.cache` when a cache directory is set (else compute)."""
    try:
        from compare.cache import cached
    except ImportError:  # pragma: no cover - the cache module is optional for these runners
        return compute()
    return cached(key, compute)


def tanh2(z: np.ndarray) -> np.ndarray:
    """The teacher :math:`\\sigma^*(z)=\\tanh 2z` of docs/theory.md's test-error protocol (module level: picklable)."""
    return np.tanh(2.0 * z)


# --------------------------------------------------------------------------------------------
# problem instances
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instance:
    """One problem: eigenvalues ``t`` of Sigma and beta* in its eigenbasis (``beta``), s = 1."""

    t: np.ndarray
    beta: np.ndarray
    eps: float

    @property
    def d(self) -> int:
        return int(self.t.size)


def _seq(seed: int, *tags: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), *[int(x) for x in tags]])


@lru_cache(maxsize=64)
def instance(d: int, *, eps: float, seed: int) -> Instance:
    """Draw Sigma (two-level, Haar basis) and beta* (Gaussian, :math:`\\beta^{*\\top}\\Sigma\\beta^*=1`)."""
    rng = np.random.default_rng(_seq(seed, 101, d, round(eps * 1e6)))
    Sigma = sd.anisotropic_covariance(d, eps=eps, rng=rng)
    beta = rng.standard_normal(d)
    t, O = np.linalg.eigh(Sigma)
    bt = O.T @ beta
    bt /= math.sqrt(float((t * bt) @ bt))
    return Instance(t, bt, float(eps))


# --------------------------------------------------------------------------------------------
# runs with their theory
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlignmentRun:
    """A one-step run on one instance with the theory for that instance.

    inst: the instance. n, N: batch size and width. lam_G: (L,) ridges. sim: the simulation result.
    sgd, kfac, population: :class:`theory.single_index.SpikePrediction` (asymptotic forms).
    sgd_finite: SGD with the exact finite-n second moment. cap: :math:`\\cos(\\Sigma\\beta^*,\\beta^*)`.
    mu1: the student's :math:`\\mathbb E\\sigma'(\\xi)` at the pre-activation variance tr(Sigma)/d.
    """

    inst: Instance
    n: int
    N: int
    lam_G: np.ndarray
    sim: ss.OneStepResult
    sgd: ts.SpikePrediction
    sgd_finite: ts.SpikePrediction
    kfac: ts.SpikePrediction
    population: ts.SpikePrediction
    cap: float
    mu1: float


def _theory(inst: Instance, n: int, lam: np.ndarray, teacher, noise: float, student: str):
    kw = dict(n=n, teacher=teacher, noise_std=noise)
    return dict(
        sgd=ts.sgd_spike(inst.t, inst.beta, **kw),
        sgd_finite=ts.sgd_spike(inst.t, inst.beta, finite_n=True, **kw),
        kfac=ts.kfac_spike(inst.t, inst.beta, lam_G=lam, **kw),
        population=ts.population_spike(inst.t, inst.beta, lam_G=lam, **kw),
        cap=ts.sgd_alignment_cap(inst.t, inst.beta),
        mu1=ts.student_coefficients(student, variance=float(inst.t.mean())).mu1,
    )


@lru_cache(maxsize=64)
def alignment_run(d: int, *, psi: float, eps: float, lam_G: tuple, trials: int, seed: int,
                  network: bool = True, population: bool = True, jobs: int = 1,
                  scheduler: str | None = None) -> AlignmentRun:
    """One-step alignments on one instance (tanh/tanh, noise 0.1, N = d/2), cached per process and on disk."""
    with blas_limit(d):
        return _alignment_run(d, psi=psi, eps=eps, lam_G=lam_G, trials=trials, seed=seed, network=network,
                              population=population, jobs=jobs, scheduler=scheduler)


def _alignment_run(d, *, psi, eps, lam_G, trials, seed, network, population, jobs, scheduler) -> AlignmentRun:
    inst = instance(d, eps=eps, seed=seed)
    n = max(1, int(round(psi * d)))
    N = max(1, int(round(PHI * d)))
    lam = np.asarray(lam_G, dtype=float)
    run_seed = _seq(seed, 202, d, round(eps * 1e6), round(psi * 1e3))
    key = {"what": "single_index.alignment_run", "d": d, "psi": psi, "eps": eps, "lam_G": list(lam_G),
           "trials": trials, "seed": seed, "network": network, "population": population}
    sim = _cached(key, lambda: ss.one_step(inst.t, inst.beta, n=n, N=N, lam_G=lam, teacher=TEACHER,
                                           noise_std=NOISE, trials=trials, seed=run_seed, student=STUDENT,
                                           network=network, population=population, jobs=jobs,
                                           scheduler=scheduler, blas_threads=blas_threads_for(d)))
    return AlignmentRun(inst=inst, n=n, N=N, lam_G=lam, sim=sim,
                        **_theory(inst, n, lam, TEACHER, NOISE, STUDENT))


@dataclass(frozen=True)
class StepMSERun:
    """Test MSE after one normalised step and a ridge head for several anisotropies (C13)."""

    eps: tuple
    results: tuple          # one simulate.single_index.StepMSEResult per eps
    lam_G: float
    d: int


@lru_cache(maxsize=8)
def step_mse_run(size: str, *, seed: int, jobs: int = 1, scheduler: str | None = None) -> StepMSERun:
    """docs/theory.md's test-error protocol [R]: teacher tanh(2z), d, n = 2d, n_head = 5d, N = d,
    lam_G = 0.1, lam_F = 1e-3, top singular value of the step set to 5, eps in (0, 0.9, 0.99)."""
    cfg = _size(size)
    d = cfg["test_d"]
    eps_list = (0.0, 0.9, 0.99)
    out = []
    with blas_limit(d):
        _step_mse_runs(cfg, d, eps_list, out, seed=seed, jobs=jobs, scheduler=scheduler)
    return StepMSERun(eps_list, tuple(out), 0.1, d)


def _step_mse_runs(cfg, d, eps_list, out, *, seed, jobs, scheduler) -> None:
    for eps in eps_list:
        inst = instance(d, eps=eps, seed=seed)
        key = {"what": "single_index.test_error", "d": d, "eps": eps, "seed": seed, "trials": cfg["test_trials"]}
        out.append(_cached(key, lambda inst=inst, eps=eps: ss.one_step_test_error(
            inst.t, inst.beta, n=2 * d, n_head=5 * d, n_test=5 * d, N=d, lam_G=[0.1], lam_F=1e-3,
            teacher=tanh2, noise_std=NOISE, trials=cfg["test_trials"],
            seed=_seq(seed, 303, d, round(eps * 1e6)), student=STUDENT, spike_norm=5.0, jobs=jobs,
            scheduler=scheduler, blas_threads=blas_threads_for(d))))


# --------------------------------------------------------------------------------------------
# Figure 3
# --------------------------------------------------------------------------------------------

def figure3_data(*, size: str, seed: int, jobs: int = 1, scheduler: str | None = None):
    """Run the three panels of Figure 3 and return :class:`compare.plots_single_index.Figure3Data`."""
    d = _size(size)["fig_d"]
    with blas_limit(d):
        return _figure3_data(size=size, seed=seed, jobs=jobs, scheduler=scheduler)


def _figure3_data(*, size: str, seed: int, jobs: int, scheduler: str | None):
    from compare.plots_single_index import Curve, Figure3Data

    cfg = _size(size)
    d, T = cfg["fig_d"], cfg["fig_trials"]

    def ms(a):
        a = np.asarray(a, dtype=float)
        return a.mean(axis=0), a.std(axis=0, ddof=1) / math.sqrt(a.shape[0])

    # left: alignment vs lam_G at psi = 2, eps = 0.9 (network spikes too)
    run = alignment_run(d, psi=PSI, eps=EPS, lam_G=FIG_LAMS, trials=T, seed=seed, network=True,
                        population=False, jobs=jobs, scheduler=scheduler)
    lam_dense = np.geomspace(FIG_LAMS[0], FIG_LAMS[-1], 200)
    kfac_dense = ts.kfac_alignment(run.inst.t, run.inst.beta, n=run.n, lam_G=lam_dense, teacher=TEACHER,
                                   noise_std=NOISE)
    m_s, s_s = ms(run.sim.sgd)
    m_k, s_k = ms(run.sim.kfac)
    m_n, s_n = ms(run.sim.kfac_network)
    left = Curve(x=np.asarray(FIG_LAMS), x_dense=lam_dense,
                 theory_sgd=np.full(lam_dense.shape, run.sgd.cos), theory_kfac=np.asarray(kfac_dense),
                 sgd_mean=np.full(len(FIG_LAMS), m_s), sgd_se=np.full(len(FIG_LAMS), s_s),
                 kfac_mean=m_k, kfac_se=s_k, network_mean=m_n, network_se=s_n, cap=None)

    # right: alignment vs eps at lam_G = 0.1, psi = 2
    def sweep(settings):
        """Theory points and Monte-Carlo mean / s.e. of SGD and KFAC at lam_G = FIG_LAM_RIGHT."""
        th_s, th_k, ms_s, ss_s, ms_k, ss_k = ([] for _ in range(6))
        for psi, eps in settings:
            r = alignment_run(d, psi=psi, eps=eps, lam_G=(FIG_LAM_RIGHT,), trials=T, seed=seed, network=False,
                              population=False, jobs=jobs, scheduler=scheduler)
            th_s.append(r.sgd.cos)
            th_k.append(float(np.asarray(r.kfac.cos)[0]))
            a, b = ms(r.sim.sgd)
            ms_s.append(a), ss_s.append(b)
            a, b = ms(r.sim.kfac[:, 0])
            ms_k.append(a), ss_k.append(b)
        return th_s, th_k, ms_s, ss_s, ms_k, ss_k

    th_s, th_k, ms_s, ss_s, ms_k, ss_k = sweep([(PSI, eps) for eps in FIG_EPS])
    eps_dense = np.linspace(0.0, FIG_EPS[-1], 100)
    dense_s, dense_k = [], []
    for e in eps_dense:  # the limiting law: the curve through the per-instance points
        t, h = ts.two_level_law(e)
        dense_s.append(ts.sgd_alignment_law(t, h=h, g=h, psi=PSI, teacher=TEACHER, noise_std=NOISE))
        dense_k.append(float(ts.kfac_alignment_law(t, h=h, g=h, psi=PSI, lam_G=FIG_LAM_RIGHT, teacher=TEACHER,
                                                   noise_std=NOISE)))
    caps = [(t @ h) / math.sqrt((t * t) @ h) for t, h in (ts.two_level_law(e) for e in eps_dense)]
    right = Curve(x=np.asarray(FIG_EPS), x_dense=eps_dense, theory_sgd=np.asarray(dense_s),
                  theory_kfac=np.asarray(dense_k), sgd_mean=np.asarray(ms_s), sgd_se=np.asarray(ss_s),
                  kfac_mean=np.asarray(ms_k), kfac_se=np.asarray(ss_k), network_mean=None, network_se=None,
                  cap=np.asarray(caps), theory_sgd_points=np.asarray(th_s), theory_kfac_points=np.asarray(th_k))

    # psi sweep at eps = 0.9, lam_G = 0.1
    th_s, th_k, ms_s, ss_s, ms_k, ss_k = sweep([(psi, EPS) for psi in FIG_PSI])
    inst = instance(d, eps=EPS, seed=seed)
    psi_dense = np.geomspace(FIG_PSI[0], FIG_PSI[-1], 100)
    dense_s = [ts.sgd_alignment(inst.t, inst.beta, n=p * d, teacher=TEACHER, noise_std=NOISE) for p in psi_dense]
    dense_k = [float(ts.kfac_alignment(inst.t, inst.beta, n=p * d, lam_G=FIG_LAM_RIGHT, teacher=TEACHER,
                                       noise_std=NOISE)) for p in psi_dense]
    cap = ts.sgd_alignment_cap(inst.t, inst.beta)
    psi_curve = Curve(x=np.asarray(FIG_PSI), x_dense=psi_dense, theory_sgd=np.asarray(dense_s),
                      theory_kfac=np.asarray(dense_k), sgd_mean=np.asarray(ms_s), sgd_se=np.asarray(ss_s),
                      kfac_mean=np.asarray(ms_k), kfac_se=np.asarray(ss_k), network_mean=None, network_se=None,
                      cap=np.full(psi_dense.shape, cap), theory_sgd_points=np.asarray(th_s),
                      theory_kfac_points=np.asarray(th_k))
    return Figure3Data(left=left, right=right, psi=psi_curve, d=d, N=run.N, psi_left=PSI, eps_left=EPS,
                       lam_right=FIG_LAM_RIGHT, trials=T, teacher=TEACHER, student=STUDENT, noise_std=NOISE)


@register_figure(
    "fig3",
    title="Single-index alignment after one step: SGD vs KFAC, theory vs simulation",
    caption=("Cosine between the learned first-layer spike and beta* after one full-batch step, Monte-Carlo "
             "mean +/- s.e. over 30 trials (markers) against the deterministic equivalents (lines): SGD "
             "(docs/theory.md 4.2) and KFAC (Theorem 3.9, reconstructed). Left: vs lam_G at psi = 2, eps = 0.9 "
             "(crosses: the network's own top singular vector). Middle: vs the anisotropy eps (larger = more "
             "anisotropic) at lam_G = 0.1: SGD degrades towards its cap cos(Sigma beta*, beta*), KFAC stays "
             "accurate. Right: vs psi = n/d at eps = 0.9: SGD saturates at the cap, KFAC does not."),
    paper_ref="Figure 3",
    claims=("C8", "C9", "C11"),
)
def make(*, size: str, seed: int, jobs: int = 1, scheduler: str | None = None):
    """Figure 3 at ``size`` (``"fast"``: d = 300; ``"paper"``: d = 1000), 30 trials per point."""
    from compare.plots_single_index import figure3

    return figure3(figure3_data(size=size, seed=seed, jobs=jobs, scheduler=scheduler))
