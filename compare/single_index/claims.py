r"""Claims C8-C13 and C21: single-index learning after one step (docs/theory.md section 4, section 6).

Each agreement claim runs :func:`simulate.single_index.one_step` on one problem instance at two
dimensions, :math:`d` and :math:`2d` (same :math:`\psi=n/d`, :math:`\epsilon`, :math:`N/d`; one
:class:`compare.single_index.experiments.OneStepSettings` run per size, shared by C8-C12 and C21), and holds the
Monte-Carlo means to the deterministic equivalents of :mod:`theory.single_index` and
:mod:`theory.rmt` for each instance. Every check goes through :mod:`compare.stats`.

**Finite-size bias (Richardson).** The formulas are asymptotic: their bias is :math:`O(1/d)` while
the standard error is :math:`O(1/\sqrt{dT})`. With :math:`e_d=\bar m_d-p_d` and :math:`e_{2d}` the
errors at the two sizes, the bias at :math:`d` is :math:`\hat b_d=2(e_d-e_{2d})` and the check is

.. math::

    \big|(\bar m_d-\hat b_d)-p_d\big| = |2e_{2d}-e_d|
    \le t_{1-\alpha'/2,\,\nu}\sqrt{\mathrm{se}_d^2+4\,\mathrm{se}_{2d}^2},

:math:`\nu` the Welch-Satterthwaite degrees of freedom (:func:`compare.stats.richardson`); what is
left is the :math:`O(1/d^2)` term, :math:`-C/(2d^2)`. Exact finite-:math:`n` expectations (SGD
components in C10) are tested at each size with no allowance (:math:`T-1` df).

**Control variates.** A trial also reports batch statistics whose expectations are known exactly
for Gaussian :math:`x` (:mod:`simulate.single_index`): :math:`\langle X^\top y/n,\beta^*\rangle`
(mean :math:`cs^2`), :math:`\lVert X^\top y/n\rVert^2` (the exact finite-:math:`n` mean of
docs/theory.md 4.2), :math:`\frac1n\sum z_i^2` (:math:`s^2`), :math:`\frac1n\sum y_i^2`
(:math:`\mathbb E y^2`) and the population-preconditioner components (exact at finite :math:`n`).
The mean of a measurement :math:`a` is estimated by the intercept of the least-squares fit
:math:`a_t=\mu+b^\top(c_t-\mathbb E c)+e_t` over the :math:`T` trials:

.. math::

    \hat\mu=\bar a-\hat b^\top(\bar c-\mathbb E c),\qquad
    \widehat{\mathrm{se}}^2=s_e^2\,\big[(A^\top A)^{-1}\big]_{00},\qquad \nu=T-k-1,

unbiased to :math:`O(1/T)` whatever :math:`b` is (:math:`\mathbb E c` is exact), with a Student
:math:`t` on :math:`T-k-1` df for :math:`k` controls (exact for jointly Gaussian trials, the same
assumption as the plain :math:`t` test). It removes the batch-level fluctuations that every spike
shares: the SGD cosine's standard error falls ~25x, KFAC's at :math:`\lambda_G\ge1` 2-7x, at
small :math:`\lambda_G` only ~1.3x (the random-matrix noise of :math:`(\hat\Sigma+\lambda)^{-1}X^\top r`
has no known-mean proxy). The Richardson rows combine the two sizes' estimates as above.

**Several teachers per trial.** What no known-mean control captures at small :math:`\lambda_G` is the
teacher's own label noise in :math:`(\hat\Sigma+\lambda)^{-1}X^\top r` (a weighted chi-square in the residual
:math:`r`, 2.6% per trial in :math:`\lVert v\rVert^2` at :math:`d=1000`, :math:`\lambda_G=10^{-3}`). Each trial therefore
averages every statistic over ``teachers`` teacher directions on the same inputs and eigendecomposition
(:func:`simulate.single_index.one_step` ``more_teachers``; the network's spikes over the first
``network_teachers``), and every prediction and control mean is the mean of the per-teacher ones over the
same teachers (:func:`_theory`, :func:`_controls`); the teachers' residuals are nearly independent, so
the variance falls by about K (docs/theory.md, "Several teachers per trial").

**Power.** Every row records ``detectable`` (the smallest relative error of its prediction caught
with probability 0.9, :mod:`compare.stats`); a claim's is the largest over its rows that test a
prediction (the one-sided rows checking a stated bound, C8's cap and C11's bulk bias, are marked
``role="bound"`` and state the excess over the bound they catch). At paper size the pair is
:math:`d=500, 1000` (300 and 160 trials), not :math:`1000, 2000` (30 each): a trial at 2000 costs ~10x
one at 1000 and the bias-corrected variance :math:`\sigma_d^2(1/T_d+2/T_{2d})` is dominated by the
:math:`2d` run. Measured at seed 0 (detectable, paper size):

======  ===================  =====================  =====================  =========================
claim   1000/2000, 30+30,    1000/2000, 30+30,      500/1000, 300+160,     500/1000, 300+160, control
        no control variates  control variates       control variates       variates, 12 teachers
                                                                           (network: 3)
======  ===================  =====================  =====================  =========================
C8      1.4%                 0.32%                  0.28%                  0.03%
C9      5.5%                 1.8%                   0.79%                  0.23%
C10     6.1%                 6.7%                   2.6%                   0.77%
C11     2.1% (network rows)  1.9% (network rows)    0.83% (network rows)   0.48% (bounds <= 4.8%)
C12     3.8%                 3.2%                   1.3%                   0.78%
C21     --                   0.02%                  0.017%                 0.02%
======  ===================  =====================  =====================  =========================

Seeds 1 and 2 at paper size: C10 0.75% / 0.82%, C12 0.77% / 0.77%, the others as at seed 0; all hold. A
paper-size run costs ~1.3x its one-teacher version (the further teachers' spike vectors are :math:`O(ndK)`;
the two further network teachers share one block Lanczos applied through X, W and the activations without
forming their updates). The residual :math:`-C/(2d^2)` after Richardson was measured: ~0.2 s.e. for C21
at fast size (150 replicate pairs), smaller at paper size; over master seeds 0-19 at fast size (4 teachers,
network 2) every claim holds and the t statistics of the two-sided rows have mean -0.06 to 0.20 and s.d.
0.87-1.11 per claim (runs at d and 2d from independent streams).

Families: Bonferroni :math:`\alpha'=\alpha/m` over the :math:`m` statistical rows of a claim,
family-wise :math:`\alpha=10^{-3}` bounding false failure. C13 is a statement of the paper comparing
methods (an ordering): intersection-union, each component at the full :math:`\alpha` (bounding
false holds), the reverse at :math:`\alpha/m`.

All predictions are reconstructed [R] (docs/theory.md section 0 and 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from compare import stats
from compare.engine.registry import Outcome, claim, ref
from compare.engine.settings import Settings, check_size
from compare.single_index.experiments import (CLAIM_LAMS, EPS, NOISE, PHI, PSI, STUDENT, TEACHER, AlignmentRun,
                                              Instance, OneStepSettings, TestErrorSettings, alignment_run)
from simulate import single_index as ss
from theory import rmt
from theory import single_index as ts

ALPHA = stats.ALPHA
#: psi of the "more data" rows of C8 (SGD saturates at its cap, KFAC does not).
PSI_CAP = 32.0
#: lam_G of KFAC in the psi = 32 rows of C8.
LAM_CAP = 1e-3
#: docs/theory.md C11: the bulk lowers the network's alignment by <~ 0.01 at d = 1000; O(1/d) (measured:
#: 0.018, 0.008, 0.004 at d = 200, 400, 800 for lam_G = 1e-3, N = d/2), so the bound at d is 0.01 * 1000 / d.
BULK_BOUND_D1000 = 0.01

Controls = Sequence[tuple[np.ndarray, float]]


# --------------------------------------------------------------------------- settings: the runs the claims read
@dataclass(frozen=True, kw_only=True)
class AlignmentClaims(Settings):
    """The runs of C8-C12 and C21: one instance per size, d and 2d (same psi, eps, N/d), ``trials_d`` and
    ``trials_2d`` trials, ridges ``lam_G``; C8's "more data" rows at psi = ``psi_cap`` on ``cap_d`` and
    2 ``cap_d``. Trials are allotted to the two sizes by cost (the bias-corrected variance is
    se_d^2 + 4 se_2d^2 and a trial at 2d costs ~7-10x one at d: T_d / T_2d ~ 2 minimises it)."""

    d: int = 200
    trials_d: int = 120
    trials_2d: int = 60
    eps: float = EPS
    psi: float = PSI
    phi: float = PHI
    lam_G: tuple[float, ...] = CLAIM_LAMS
    teacher: str = TEACHER
    student: str = STUDENT
    noise_std: float = NOISE
    cap_d: int = 100
    cap_trials_d: int = 40
    cap_trials_2d: int = 20
    psi_cap: float = PSI_CAP
    lam_cap: float = LAM_CAP
    teachers: int = 4
    network_teachers: int = 2

    def __post_init__(self):
        for which in (1, 2):  # the runs validate the shared fields
            self.run(which)
            self.cap_run(which)

    @classmethod
    def preset(cls, size: str) -> "AlignmentClaims":
        if check_size("AlignmentClaims.preset", size) == "fast":
            return cls()
        return cls(d=500, trials_d=300, trials_2d=160, cap_d=250, cap_trials_d=30, cap_trials_2d=15, teachers=12,
                   network_teachers=3)

    def run(self, which: int) -> OneStepSettings:
        """The run at d (``which = 1``) or 2d (``which = 2``)."""
        return OneStepSettings(d=which * self.d, eps=self.eps, psi=self.psi, phi=self.phi, lam_G=tuple(self.lam_G),
                               trials=self.trials_d if which == 1 else self.trials_2d, teacher=self.teacher,
                               student=self.student, noise_std=self.noise_std, network=True, population=True,
                               teachers=self.teachers, network_teachers=self.network_teachers)

    def cap_run(self, which: int) -> OneStepSettings:
        """C8's run at psi = psi_cap on cap_d (``which = 1``) or 2 cap_d."""
        return OneStepSettings(d=which * self.cap_d, eps=self.eps, psi=self.psi_cap, phi=self.phi,
                               lam_G=(self.lam_cap,), trials=self.cap_trials_d if which == 1 else self.cap_trials_2d,
                               teacher=self.teacher, student=self.student, noise_std=self.noise_std, network=False,
                               population=False, teachers=self.teachers, network_teachers=1)


def _pair_reads(s: AlignmentClaims) -> dict:
    return {f"r{w}": ref("single_index.one_step", s.run(w)) for w in (1, 2)} | \
        {f"i{w}": ref("single_index.instance", s.run(w).instance) for w in (1, 2)}


def _c8_reads(s: AlignmentClaims) -> dict:
    return _pair_reads(s) | {f"c{w}": ref("single_index.one_step", s.cap_run(w)) for w in (1, 2)} | \
        {f"ci{w}": ref("single_index.instance", s.cap_run(w).instance) for w in (1, 2)}


def _teacher(name: str):
    """A teacher name of the settings as theory takes it (``tanh2`` is the callable of the test-error runs)."""
    from compare.single_index.experiments import TEACHERS

    return TEACHERS.get(name, name)


def _pair(s: AlignmentClaims, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance,
          i2: Instance) -> tuple[AlignmentRun, AlignmentRun]:
    """The two runs (d and 2d) shared by C8-C12 and C21, with their instances."""
    return alignment_run(s.run(1), i1, r1), alignment_run(s.run(2), i2, r2)


@dataclass(frozen=True, kw_only=True)
class _Theory:
    """The predictions for one run, computed when the claim runs (so a test can perturb them), each the mean of
    the per-teacher predictions over the teachers the measurement averages over (the run's trials average every
    value over the instance's teachers, the network's over the first ``network_teachers``).

    sgd: 4.2 (asymptotic). sgd_finite: 4.2 with the exact finite-n second moment. kfac: Theorem 3.9.
    population: the population-preconditioner variant. sgd_net, kfac_net: 4.2 and Theorem 3.9 over the network's
    teachers. sgd_size, kfac_size: the spike size mu_1 |v| over the network's teachers. mu1: the student's E sigma'.
    """

    sgd: ts.SpikePrediction
    sgd_finite: ts.SpikePrediction
    kfac: ts.SpikePrediction
    population: ts.SpikePrediction
    sgd_net: ts.SpikePrediction
    kfac_net: ts.SpikePrediction
    sgd_size: float
    kfac_size: np.ndarray
    mu1: float


def _mean_prediction(preds: list) -> ts.SpikePrediction:
    """The field-wise mean of per-teacher predictions (one teacher: that prediction)."""
    if len(preds) == 1:
        return preds[0]

    def mean(name):
        return np.mean([np.asarray(getattr(p, name), dtype=float) for p in preds], axis=0)

    return ts.SpikePrediction(inner=mean("inner"), sqnorm=mean("sqnorm"), cos=mean("cos"),
                              kappa=preds[0].kappa)


def _theory(run: AlignmentRun) -> _Theory:
    t, bs = run.inst.t, run.inst.teachers
    m = int(getattr(run.sim, "network_teachers", 1) or 1)
    kw = dict(n=run.n, teacher=_teacher(run.teacher), noise_std=run.noise_std)
    sgd = [ts.sgd_spike(t, b, **kw) for b in bs]
    kfac = [ts.kfac_spike(t, b, lam_G=run.lam_G, **kw) for b in bs]
    mu1 = ts.student_coefficients(run.student, variance=float(t.mean())).mu1
    return _Theory(sgd=_mean_prediction(sgd), sgd_finite=_mean_prediction([ts.sgd_spike(t, b, finite_n=True, **kw)
                                                                           for b in bs]),
                   kfac=_mean_prediction(kfac),
                   population=_mean_prediction([ts.population_spike(t, b, lam_G=run.lam_G, **kw) for b in bs]),
                   sgd_net=_mean_prediction(sgd[:m]), kfac_net=_mean_prediction(kfac[:m]),
                   sgd_size=float(np.mean([mu1 * math.sqrt(float(p.sqnorm)) for p in sgd[:m]])),
                   kfac_size=np.mean([mu1 * np.sqrt(np.asarray(p.sqnorm, dtype=float)) for p in kfac[:m]], axis=0),
                   mu1=mu1)


@dataclass(frozen=True, kw_only=True)
class _Controls:
    """Per-trial batch statistics of one run with their exact expectations (Gaussian x).

    inner, sqnorm: the SGD spike's <v, beta*> (mean c s^2) and |v|^2 (exact finite-n mean).
    z_sq, y_sq: (1/n) sum <beta*, x_i>^2 (mean s^2) and (1/n) sum y_i^2 (mean E y^2).
    pop_inner, pop_sqnorm: (T, L) components of (Sigma + lam)^{-1} X'y/n (exact finite-n means).
    """

    inner: tuple[np.ndarray, float]
    sqnorm: tuple[np.ndarray, float]
    z_sq: tuple[np.ndarray, float]
    y_sq: tuple[np.ndarray, float]
    pop_inner: tuple[np.ndarray, np.ndarray]
    pop_sqnorm: tuple[np.ndarray, np.ndarray]

    def sgd(self) -> Controls:
        """For SGD spikes (cos, network cos, size): the two components of the same spike."""
        return [self.inner, self.sqnorm]

    def kfac(self, j: int) -> Controls:
        """For KFAC spikes at lam_G[j]: the SGD components, the batch moments, the population spike."""
        return [self.inner, self.sqnorm, self.z_sq, self.y_sq, (self.pop_inner[0][:, j], float(self.pop_inner[1][j])),
                (self.pop_sqnorm[0][:, j], float(self.pop_sqnorm[1][j]))]

    def population(self, j: int) -> Controls:
        """For the population spike at lam_G[j]: its own components (exact finite-n means)."""
        return [(self.pop_inner[0][:, j], float(self.pop_inner[1][j])),
                (self.pop_sqnorm[0][:, j], float(self.pop_sqnorm[1][j]))]


def _controls(run: AlignmentRun, *, network: bool = False) -> _Controls:
    """The control variates of ``run``; their means come from exact finite-n expectations only (per teacher,
    averaged over the teachers as the trials average the statistics). ``network``: the statistics averaged over
    the network's teachers (``*_paired``), the controls of the network's own values."""
    t, sim = run.inst.t, run.sim
    kw = dict(n=run.n, teacher=_teacher(run.teacher), noise_std=run.noise_std, finite_n=True)
    inner, sq, s2s, ey2, p_in, p_sq = [], [], [], [], [], []
    teachers = run.inst.teachers[:int(sim.network_teachers)] if network else run.inst.teachers
    for b in teachers:
        s2 = float((t * b) @ b)
        tc = ts.teacher_coefficients(_teacher(run.teacher), s=math.sqrt(s2), noise_std=run.noise_std)
        pop = ts.population_spike(t, b, lam_G=run.lam_G, **kw)
        inner.append(tc.c * s2)
        sq.append(float(ts.sgd_spike(t, b, **kw).sqnorm))
        s2s.append(s2)
        ey2.append(tc.Ey2)
        p_in.append(np.asarray(pop.inner, dtype=float))
        p_sq.append(np.asarray(pop.sqnorm, dtype=float))

    def mean(v):
        return v[0] if len(v) == 1 else np.mean(v, axis=0)

    def stat(name):
        return getattr(sim, name + "_paired") if network else getattr(sim, name)

    return _Controls(inner=(stat("sgd_inner"), float(mean(inner))), sqnorm=(stat("sgd_sqnorm"), float(mean(sq))),
                     z_sq=(stat("z_sq"), float(mean(s2s))), y_sq=(stat("y_sq"), float(mean(ey2))),
                     pop_inner=(stat("population_inner"), mean(p_in)),
                     pop_sqnorm=(stat("population_sqnorm"), mean(p_sq)))


# --------------------------------------------------------------------------- estimators and rows
def _richardson(label: str, a_d: Any, p_d: float, a_2d: Any, p_2d: float, *, alpha: float,
                controls_d: Controls = (), controls_2d: Controls = (), **labels: Any) -> dict:
    """A Richardson row (O(1/d) bias removed from runs at d and 2d, :func:`compare.stats.richardson`),
    with control variates if given."""
    ag, parts = stats.richardson(a_d, p_d, a_2d, p_2d, alpha=alpha, controls_d=controls_d, controls_2d=controls_2d)
    extra = {}
    if controls_d:
        raw_d, raw_se_d = (float(x) for x in stats.mean_se(a_d))
        extra = {"raw_mean_d": raw_d, "raw_se_d": raw_se_d}
    return ag.row(check=label, **labels, **parts, **extra, controls=len(controls_d))


def _samples(label: str, a: Any, p: float, *, alpha: float, controls: Controls = (), one_sided: bool = False,
             **labels: Any) -> dict:
    """A row for the mean of independent trials (T - 1 df; T - k - 1 with k control variates)."""
    ag = stats.agreement_samples(a, p, alpha=alpha, one_sided=one_sided, controls=controls)
    extra = {"raw_mean": float(np.mean(a))} if controls else {}
    return ag.row(check=label, **labels, controls=len(controls), **extra)


_RICH = ("t_(1-alpha'/2, Welch df) x s.e. of the bias-corrected mean m_d - b_d, b_d = 2(e_d - e_2d) the O(1/d) bias "
         "measured at d and 2d (compare.stats.richardson), means by control variates with exactly known "
         "expectations (T - k - 1 df per size); alpha = 1e-3 family-wise, split over the rows (Bonferroni)")


# --------------------------------------------------------------------------- C8
@claim(
    "C8", settings=AlignmentClaims, reads=_c8_reads, paper_ref="Sec. 3.2 (SGD alignment)", theory_ref="docs/theory.md 4.2", kind="statistical",
    statement="One SGD step learns v = X'y/n with cos(v, beta*) -> c s^2/(|beta*| sqrt(c^2|Sigma beta*|^2 + "
              "E[y^2] tr(Sigma)/n)); as psi -> infinity it saturates at cos(Sigma beta*, beta*) < 1, "
              "while KFAC does not.",
    figure="fig3",
)
def c8_sgd_alignment(s: AlignmentClaims, *, seed: int, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance,
                      i2: Instance, c1: ss.OneStepResult, c2: ss.OneStepResult, ci1: Instance,
                      ci2: Instance) -> Outcome:
    r1, r2 = _pair(s, r1, r2, i1, i2)
    th1, th2 = _theory(r1), _theory(r2)
    k1, k2 = _controls(r1), _controls(r2)
    a = stats.bonferroni(ALPHA, 3)
    rows = [_richardson("SGD cos(v, beta*)", r1.sim.sgd, th1.sgd.cos, r2.sim.sgd, th2.sgd.cos, alpha=a,
                        controls_d=k1.sgd(), controls_2d=k2.sgd(), d=r1.inst.d, psi=s.psi, eps=s.eps)]
    # the psi -> infinity limit of the formula is the cap: deterministic, rounding-level tolerance
    cap = ts.sgd_alignment_cap(r1.inst.t, r1.inst.beta)
    lim = ts.sgd_spike(r1.inst.t, r1.inst.beta, n=1e15 * r1.inst.d, teacher=_teacher(r1.teacher), noise_std=r1.noise_std).cos
    rows.append(stats.exact(lim, cap, tolerance=1e-9).row(
        check="limit psi -> inf of 4.2 equals cos(Sigma beta*, beta*)", d=r1.inst.d,
        tolerance_source="the formula's O(d/n) = 1e-15 term plus rounding"))
    # more data: at psi = 32 SGD stays below its cap (a bound the theory predicts: one-sided), KFAC follows
    # Theorem 3.9 there, whose prediction is far above the cap (two-sided agreement, bias-corrected)
    PSI_CAP, LAM_CAP = s.psi_cap, s.lam_cap  # noqa: N806  (the settings' values)
    runs = []
    for cs, sim, inst in ((s.cap_run(1), c1, ci1), (s.cap_run(2), c2, ci2)):  # means over the teachers
        kf = np.mean([np.asarray(ts.kfac_spike(inst.t, b, n=cs.n, lam_G=[LAM_CAP], teacher=_teacher(cs.teacher),
                                               noise_std=cs.noise_std).cos)[0] for b in inst.teachers])
        runs.append((inst, cs.n, sim, float(kf)))
    (inst, n, sim, kp), (_, _, sim2, kp2) = runs
    dc = s.cap_d
    cap_c = float(np.mean([ts.sgd_alignment_cap(inst.t, b) for b in inst.teachers]))
    th_sgd = float(np.mean([ts.sgd_spike(inst.t, b, n=n, teacher=_teacher(s.teacher), noise_std=s.noise_std).cos
                            for b in inst.teachers]))
    rows.append(_samples(f"SGD at psi={PSI_CAP:g} not above its cap cos(Sigma beta*, beta*)", sim.sgd, cap_c,
                         alpha=a, one_sided=True, d=dc, psi=PSI_CAP, theory_at_psi=float(th_sgd), role="bound"))
    rows.append(_richardson(f"KFAC (lam_G={LAM_CAP:g}) at psi={PSI_CAP:g}: Theorem 3.9, above SGD's cap", sim.kfac[:, 0],
                            kp, sim2.kfac[:, 0], kp2, alpha=a, d=dc, psi=PSI_CAP, lam_G=LAM_CAP, cap=float(cap_c),
                            prediction_above_cap_by=float(kp - cap_c)))
    return Outcome.agreement(rows, source=_RICH + "; psi = 32: SGD one-sided t (T - 1 df) against the cap, KFAC "
                             "bias-corrected against Theorem 3.9 (its prediction is above the cap); the limit row "
                             "is deterministic", alpha=ALPHA)


# --------------------------------------------------------------------------- C9
@claim(
    "C9", settings=AlignmentClaims, reads=_pair_reads, paper_ref="Theorem 3.9", theory_ref="Theorem 3.9", kind="statistical",
    statement="One KFAC step learns the ridge direction (Sigma_hat + lam_G I)^{-1} X'y/n whose alignment with "
              "beta* is Theorem 3.9's kappa formula, for every lam_G on a log grid (one eigendecomposition per "
              "trial); the population preconditioner (Sigma + lam_G I)^{-1} follows its variant.",
    figure="fig3",
)
def c9_kfac_alignment(s: AlignmentClaims, *, seed: int, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance, i2: Instance) -> Outcome:
    r1, r2 = _pair(s, r1, r2, i1, i2)
    th1, th2 = _theory(r1), _theory(r2)
    k1, k2 = _controls(r1), _controls(r2)
    L = len(s.lam_G)
    a = stats.bonferroni(ALPHA, 2 * L)
    rows = [_richardson("KFAC cos(v, beta*)", r1.sim.kfac[:, j], th1.kfac.cos[j], r2.sim.kfac[:, j], th2.kfac.cos[j],
                        alpha=a, controls_d=k1.kfac(j), controls_2d=k2.kfac(j), lam_G=lam, d=r1.inst.d)
            for j, lam in enumerate(s.lam_G)]
    rows += [_richardson("population-preconditioner cos(v, beta*)", r1.sim.population[:, j], th1.population.cos[j],
                         r2.sim.population[:, j], th2.population.cos[j], alpha=a, controls_d=k1.population(j),
                         controls_2d=k2.population(j), lam_G=lam, d=r1.inst.d)
             for j, lam in enumerate(s.lam_G)]
    return Outcome.agreement(rows, source=_RICH, alpha=ALPHA)


# --------------------------------------------------------------------------- C10
@claim(
    "C10", settings=AlignmentClaims, reads=_pair_reads, paper_ref="Theorem 3.9 / Sec. 3.2", theory_ref="docs/theory.md 4.2, Theorem 3.9", kind="statistical",
    statement="The components <v, beta*> and |v|^2 follow their predictions separately: SGD exactly at finite n "
              "(E<v,beta*> = c s^2, refined E|v|^2), KFAC by Theorem 3.9 (c A_1 and c^2 B + "
              "(c^2 kappa^2 E + sigma_r^2) T_2/(1 - D_2)).",
)
def c10_components(s: AlignmentClaims, *, seed: int, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance, i2: Instance) -> Outcome:
    r1, r2 = _pair(s, r1, r2, i1, i2)
    th1, th2 = _theory(r1), _theory(r2)
    k1, k2 = _controls(r1), _controls(r2)
    L = len(s.lam_G)
    a = stats.bonferroni(ALPHA, 4 + 2 * L)
    rows = []
    for r, th, k in ((r1, th1, k1), (r2, th2, k2)):  # exact finite-n expectations: no allowance at either size
        rows.append(_samples("SGD <v, beta*> (exact: c s^2)", r.sim.sgd_inner, th.sgd_finite.inner, alpha=a,
                             controls=[k.z_sq, k.y_sq], d=r.inst.d))
        rows.append(_samples("SGD |v|^2 (exact finite-n)", r.sim.sgd_sqnorm, th.sgd_finite.sqnorm, alpha=a,
                             controls=[k.inner, k.z_sq, k.y_sq], d=r.inst.d, asymptotic=float(th.sgd.sqnorm)))
    for j, lam in enumerate(s.lam_G):
        rows.append(_richardson("KFAC <v, beta*>", r1.sim.kfac_inner[:, j], th1.kfac.inner[j], r2.sim.kfac_inner[:, j],
                                th2.kfac.inner[j], alpha=a, controls_d=k1.kfac(j), controls_2d=k2.kfac(j), lam_G=lam,
                                d=r1.inst.d))
        rows.append(_richardson("KFAC |v|^2", r1.sim.kfac_sqnorm[:, j], th1.kfac.sqnorm[j], r2.sim.kfac_sqnorm[:, j],
                                th2.kfac.sqnorm[j], alpha=a, controls_d=k1.kfac(j), controls_2d=k2.kfac(j), lam_G=lam,
                                d=r1.inst.d))
    return Outcome.agreement(rows, source="SGD: t_(1-alpha'/2, T-k-1) x s.e. of the control-variate mean at each "
                             "size (exact finite-n expectations, no allowance; controls z_sq, y_sq and <v, beta*>); "
                             "KFAC: " + _RICH, alpha=ALPHA)


# --------------------------------------------------------------------------- C11
@claim(
    "C11", settings=AlignmentClaims, reads=_pair_reads, paper_ref="Sec. 3.2 / Figure 3", theory_ref="docs/theory.md 4.1", kind="statistical",
    statement="The network's own spike (top right singular vector of the actual one-step update, by Lanczos) "
              "aligns with beta* as the spike-vector prediction (C8/C9), up to a bulk bias that is O(1/d) "
              "(<~ 0.01 at d = 1000).",
    figure="fig3",
)
def c11_network_spike(s: AlignmentClaims, *, seed: int, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance, i2: Instance) -> Outcome:
    r1, r2 = _pair(s, r1, r2, i1, i2)
    th1, th2 = _theory(r1), _theory(r2)
    k1, k2 = _controls(r1, network=True), _controls(r2, network=True)
    L = len(s.lam_G)
    a = stats.bonferroni(ALPHA, 2 * (L + 1))
    rows = [_richardson("SGD network cos(u, beta*)", r1.sim.sgd_network, th1.sgd_net.cos, r2.sim.sgd_network,
                        th2.sgd_net.cos, alpha=a, controls_d=k1.sgd(), controls_2d=k2.sgd(), d=r1.inst.d)]
    rows += [_richardson("KFAC network cos(u, beta*)", r1.sim.kfac_network[:, j], th1.kfac_net.cos[j],
                         r2.sim.kfac_network[:, j], th2.kfac_net.cos[j], alpha=a, controls_d=k1.kfac(j),
                         controls_2d=k2.kfac(j), lam_G=lam, d=r1.inst.d)
             for j, lam in enumerate(s.lam_G)]
    # the bulk bias at the larger size, paired per trial: mean(cos v - cos u) <= 0.01 * 1000 / d (a bound
    # the theory states: one-sided, alpha bounds false failure)
    d2 = r2.inst.d
    bound = BULK_BOUND_D1000 * 1000.0 / d2
    bulks = [("SGD", r2.sim.sgd_paired - r2.sim.sgd_network, None)] + [
        ("KFAC", r2.sim.kfac_paired[:, j] - r2.sim.kfac_network[:, j], lam) for j, lam in enumerate(s.lam_G)]
    rows += [_samples(f"{name} bulk bias mean(cos(v) - cos(u)) <= 0.01 * 1000/d", diff, bound, alpha=a,
                      one_sided=True, lam_G=lam, d=d2, role="bound")
             for name, diff, lam in bulks]
    return Outcome.agreement(rows, source=_RICH + "; bulk bias: one-sided paired t (T - 1 df) against the bound "
                             "0.01 * 1000/d of docs/theory.md C11", alpha=ALPHA)


# --------------------------------------------------------------------------- C12
@claim(
    "C12", settings=AlignmentClaims, reads=_pair_reads, paper_ref="Sec. 3.2 (spike size)", theory_ref="docs/theory.md 4.1", kind="statistical",
    statement="The top singular value of the one-step update is eta mu_1 |F_0| |v| (|v| from 4.2 / Theorem 3.9): "
              "s_1 / (eta |F_0|) = mu_1 |v|.",
)
def c12_spike_size(s: AlignmentClaims, *, seed: int, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance, i2: Instance) -> Outcome:
    r1, r2 = _pair(s, r1, r2, i1, i2)
    th1, th2 = _theory(r1), _theory(r2)
    k1, k2 = _controls(r1, network=True), _controls(r2, network=True)
    L = len(s.lam_G)
    a = stats.bonferroni(ALPHA, L + 1)

    def pred(th: _Theory, j: int | None) -> float:  # mu_1 |v| per teacher, averaged over the network's teachers
        return float(th.sgd_size if j is None else np.asarray(th.kfac_size)[j])

    rows = [_richardson("SGD s_1 / |F_0| = mu_1 |v|", r1.sim.sgd_spike_size, pred(th1, None), r2.sim.sgd_spike_size,
                        pred(th2, None), alpha=a, controls_d=k1.sgd(), controls_2d=k2.sgd(), d=r1.inst.d, mu1=th1.mu1)]
    rows += [_richardson("KFAC s_1 / |F_0| = mu_1 |v|", r1.sim.kfac_spike_size[:, j], pred(th1, j),
                         r2.sim.kfac_spike_size[:, j], pred(th2, j), alpha=a, controls_d=k1.kfac(j),
                         controls_2d=k2.kfac(j), lam_G=lam, d=r1.inst.d)
             for j, lam in enumerate(s.lam_G)]
    return Outcome.agreement(rows, source=_RICH, alpha=ALPHA)


# --------------------------------------------------------------------------- C13
@dataclass(frozen=True, kw_only=True)
class TestErrorClaims(Settings):
    """C13's runs: the test-error protocol (:class:`compare.single_index.experiments.TestErrorSettings`)
    at each anisotropy of ``eps``."""

    __test__ = False  # not a pytest class

    runs: TestErrorSettings = TestErrorSettings(d=150)
    eps: tuple[float, ...] = (0.0, 0.9, 0.99)

    def __post_init__(self):
        for e in self.eps:
            self.at(e)

    @classmethod
    def preset(cls, size: str) -> "TestErrorClaims":
        return cls(runs=TestErrorSettings.preset(check_size("TestErrorClaims.preset", size)))

    def at(self, eps: float) -> TestErrorSettings:
        from dataclasses import replace

        return replace(self.runs, eps=float(eps))


def _c13_reads(s: TestErrorClaims) -> dict:
    return {f"eps{i}": ref("single_index.test_error", s.at(e)) for i, e in enumerate(s.eps)}


@dataclass(frozen=True, kw_only=True)
class StepMSERun:
    """Test MSE after one normalised step and a ridge head for several anisotropies (C13)."""

    eps: tuple
    results: tuple          # one simulate.single_index.StepMSEResult per eps
    lam_G: float
    d: int


def _step_mse(s: TestErrorClaims, runs: dict) -> StepMSERun:
    return StepMSERun(eps=tuple(s.eps), results=tuple(runs[f"eps{i}"] for i in range(len(s.eps))),
                      lam_G=s.runs.lam_G, d=s.runs.d)


@claim(
    "C13", settings=TestErrorClaims, reads=_c13_reads, paper_ref="Sec. 3.2 / Figure 3", theory_ref="docs/theory.md 4.0, section 6", kind="ordering",
    statement="After one normalised first-layer step and a ridge head, test error orders KFAC < SGD < no step, "
              "isotropic and anisotropic (eps = 0, 0.9, 0.99).",
)
def c13_test_error(s: TestErrorClaims, *, seed: int, **runs: ss.StepMSEResult) -> Outcome:
    run = _step_mse(s, runs)
    m = 2 * len(run.eps)
    rows = []
    for eps, res in zip(run.eps, run.results):
        for lo_name, lo, hi_name, hi in (("KFAC", res.kfac[:, 0], "SGD", res.sgd), ("SGD", res.sgd, "no step", res.none)):
            o = stats.ordering(np.asarray(hi) - np.asarray(lo), alpha=ALPHA, reverse_alpha=stats.bonferroni(ALPHA, m))
            rows.append(o.row(check=f"{lo_name} < {hi_name}: mean of MSE({hi_name}) - MSE({lo_name}) > 0", eps=eps,
                              d=run.d, lam_G=run.lam_G, mse_lower=float(np.mean(lo)), mse_higher=float(np.mean(hi))))
    return Outcome.ordering(rows, source=f"paired one-sided t (T - 1 df) on per-trial MSE differences (common random "
                            f"numbers); intersection-union over {m} components, each at alpha = 1e-3 (bounds false "
                            f"holds), the reverse at alpha/{m}", alpha=ALPHA)


# --------------------------------------------------------------------------- C21
@claim(
    "C21", settings=AlignmentClaims, reads=_pair_reads, paper_ref="Theorem 3.9", theory_ref="Theorem 3.9 (fixed point)", kind="statistical",
    statement="Theorem 3.9's fixed point: 1/kappa(lam_G) equals the companion Stieltjes transform "
              "(1/n) tr (XX'/n + lam_G I)^{-1} of the simulated data at every lam_G of C9, to a relative error "
              "O(1/d) (the normalised trace fluctuates by O(1/d), not O(1/sqrt d)).",
)
def c21_fixed_point(s: AlignmentClaims, *, seed: int, r1: ss.OneStepResult, r2: ss.OneStepResult, i1: Instance, i2: Instance) -> Outcome:
    r"""The fixed point checked directly on the data of C9.

    .. math::

        \frac1n\mathrm{tr}\Big(\frac{XX^\top}n+\lambda I\Big)^{-1}
        =\frac1n\Big[\sum_{j=1}^d\frac1{\mu_j+\lambda}+\frac{n-d}\lambda\Big]
        \;\to\;\frac1{\kappa(\lambda)},\qquad \kappa-\lambda=\frac\kappa n\,\mathrm{tr}\,\Sigma(\Sigma+\kappa)^{-1},

    :math:`\mu_j` the eigenvalues of :math:`X^\top X/n` (one eigendecomposition per trial, in
    :func:`simulate.single_index.one_step`). For real Gaussian data the trace has an :math:`O(1/d)`
    relative bias and :math:`O(1/d)` fluctuations (Bai-Silverstein CLT: the unnormalised trace has
    :math:`O(1)` mean shift and variance), so its mean over :math:`T` trials has s.e.
    :math:`O(1/(d\sqrt T))` and the bias must be removed: Richardson at :math:`d, 2d` leaves
    :math:`O(1/d^2)`. The tolerance is :math:`t_{1-\alpha'/2,\nu}\,\mathrm{se}`, itself
    :math:`O(1/(d\sqrt T))` relative (recorded per row as ``d_times_rel_tolerance``).
    """
    r1, r2 = _pair(s, r1, r2, i1, i2)
    L = len(s.lam_G)
    a = stats.bonferroni(ALPHA, L)
    lam = np.asarray(s.lam_G, dtype=float)
    inv1 = 1.0 / np.asarray(rmt.kappa(r1.inst.t, n=r1.n, lam=lam), dtype=float)
    inv2 = 1.0 / np.asarray(rmt.kappa(r2.inst.t, n=r2.n, lam=lam), dtype=float)
    rows = []
    for j, lj in enumerate(s.lam_G):
        c1, c2 = r1.sim.companion[:, j], r2.sim.companion[:, j]
        row = _richardson("(1/n) tr (XX'/n + lam)^{-1} = 1/kappa(lam)", c1, inv1[j], c2, inv2[j], alpha=a, lam_G=lj,
                          d=r1.inst.d)
        d = r1.inst.d
        row.update(d_times_rel_error_d=float(d * (np.mean(c1) - inv1[j]) / inv1[j]),
                   d_times_rel_error_2d=float(2 * d * (np.mean(c2) - inv2[j]) / inv2[j]),
                   d_times_rel_tolerance=float(d * row["tolerance"] / inv1[j]))
        rows.append(row)
    return Outcome.agreement(rows, source="t_(1-alpha'/2, Welch df) x s.e. of the Richardson mean at d and 2d "
                             "(O(1/d) bias of the real Gaussian trace removed, O(1/d^2) left; s.e. O(1/(d sqrt T))); "
                             f"alpha = 1e-3 split over the {L} ridges (Bonferroni)", alpha=ALPHA)
