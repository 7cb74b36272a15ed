"""The literal one-step experiment of the single-index model (docs/theory.md 4.0-4.1, Figure 3).

Data :math:`x\\sim\\mathsf N(0,\\Sigma)`, :math:`y=\\sigma^*(\\langle\\beta^*,x\\rangle)+\\varepsilon`; network
:math:`f(x)=F\\sigma(Gx)` with :math:`G_0` rows iid :math:`\\mathsf N(0,I_d/d)` and :math:`F_0` entries iid
:math:`\\mathsf N(0,1/N^2)` (docs/theory.md 4.0 [R, Ba et al. scaling]). One full-batch step on :math:`G`,

.. math::

    G_1 = G_0-\\eta\\,\\nabla_G\\hat L(F_0,G_0)\\,\\mathcal P,\\qquad
    \\mathcal P = I\\ \\text{(SGD)}\\quad\\text{or}\\quad(\\hat\\Sigma_x+\\lambda_GI)^{-1}\\ \\text{(KFAC)},

    -\\nabla_G\\hat L = \\tfrac1n\\sum_i\\big[(F_0^\\top r_i)\\odot\\sigma'(G_0x_i)\\big]x_i^\\top
    = \\eta\\mu_1F_0^\\top v^\\top + \\text{bulk},\\qquad v_{SGD}=\\tfrac1nX^\\top y,\\ v_{KFAC}=(\\hat\\Sigma_x+\\lambda_GI)^{-1}\\tfrac1nX^\\top y.

Reported per trial: the spike vectors' alignments :math:`\\cos(v,\\beta^*)`, their components
:math:`\\langle v,\\beta^*\\rangle` and :math:`\\lVert v\\rVert^2`, the same for the population preconditioner
:math:`(\\Sigma+\\lambda_GI)^{-1}`, and the network's own spike: the top right singular vector :math:`u` of
:math:`-\\nabla_G\\hat L\\,\\mathcal P` (by block Lanczos, never a full SVD), its alignment
:math:`\\cos(u,\\beta^*)` (sign fixed by :math:`\\langle u,v\\rangle\\ge0`) and its size
:math:`s_1/\\lVert F_0\\rVert` (theory: :math:`\\mu_1\\lVert v\\rVert`; :math:`\\eta` cancels).
On request (``powers``), the spikes of the same-batch powers :math:`(\\hat\\Sigma_x+\\lambda_GI)^{-p}` (Shampoo/SOAP-like
input-side preconditioning; no new factorisation) and of the population powers :math:`(\\Sigma+\\lambda_GI)^{-p}`;
and (``muon``) where Muon's Newton-Schulz orthogonalisation puts the spike (:func:`orthogonalised_direction`).

How it is computed (fast and literal at once):

- Everything happens in :math:`\\Sigma`'s eigenbasis: :math:`X=Z\\,\\mathrm{diag}(t)^{1/2}` and
  :math:`\\tilde\\beta=O^\\top\\beta^*` (the Gaussian law, the initialisation and every alignment are
  invariant under the rotation :math:`O`), so no :math:`d\\times d` square root and no GEMM to draw :math:`X`.
- One eigendecomposition of :math:`\\hat\\Sigma_x=W\\,\\mathrm{diag}(\\omega)W^\\top` per trial serves every
  :math:`\\lambda_G` (for :math:`n<d` that of the :math:`n\\times n` Gram matrix: :math:`X^\\top y` and the
  gradient live in the row space of :math:`X`). With :math:`a=W^\\top X^\\top y/n`,
  :math:`\\langle v_\\lambda,\\beta\\rangle=\\sum_j a_j(W^\\top\\tilde\\beta)_j/(\\omega_j+\\lambda)` and
  :math:`\\lVert v_\\lambda\\rVert^2=\\sum_j a_j^2/(\\omega_j+\\lambda)^2`.
- The network spikes of all :math:`\\lambda_G` (and SGD) come from one batched Lanczos run on
  :math:`D_\\lambda K^\\top KD_\\lambda`, :math:`K=-\\nabla_G\\hat L\\,W`, :math:`D_\\lambda=(\\mathrm{diag}\\,\\omega+\\lambda)^{-1}`,
  started at the spike vector (full reorthogonalisation; stops when every Ritz residual is below
  ``lanczos_tol`` times the Ritz value).
- Trials use independent streams ``SeedSequence(seed).spawn(trials)`` (an SFC64 generator each,
  :func:`trial_generator`); serial and parallel runs give identical numbers.

The reconstructed parts [R] (initialisation scales, same-batch preconditioner, normalised
step for the test error) are those of docs/theory.md 4.0; the paper's exact protocol is unknown.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import linalg as _la
from scipy import special as _sp

from simulate import _validate as V
from simulate.matrix_optimizers import MAX_NS_STEPS, _newton_schulz, _polar_factor
from simulate.trials import spawn_seeds

__all__ = [
    "TEACHERS",
    "STUDENTS",
    "OneStepResult",
    "OrthogonalisedDirection",
    "StepMSEResult",
    "one_step",
    "one_step_test_error",
    "orthogonalised_direction",
    "top_singular_pairs",
    "trial_generator",
]


def _relu(z):
    return np.maximum(z, 0.0)


#: teacher name -> function (same names as theory.single_index.TEACHERS; implemented independently).
TEACHERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "erf": _sp.erf,
    "relu": _relu,
    "linear": lambda z: np.array(z, dtype=float),
    "sigmoid": _sp.expit,
    "softplus": lambda z: np.logaddexp(0.0, z),
    "abs": np.abs,
    "cubic": lambda z: np.asarray(z, dtype=float) ** 3,
    "he2": lambda z: np.asarray(z, dtype=float) ** 2 - 1.0,
}


def _tanh_pair(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tanh h, 1 - tanh^2 h); overwrites ``h``. tanh = 2/(1 + exp(-2h)) - 1 (absolute error ~3e-16),
    twice as fast as ``np.tanh`` on float64; exp overflows to inf for h < -354, giving exactly -1 and 0."""
    with np.errstate(over="ignore"):
        np.multiply(h, -2.0, out=h)
        np.exp(h, out=h)
    h += 1.0
    np.divide(2.0, h, out=h)
    a = h - 1.0
    np.multiply(a, a, out=h)
    np.subtract(1.0, h, out=h)
    return a, h


def _relu_pair(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(h, 0.0), (h > 0).astype(float)


def _erf_pair(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _sp.erf(h), (2.0 / math.sqrt(math.pi)) * np.exp(-h * h)


def _linear_pair(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return h, np.ones_like(h)


#: student name -> function returning (sigma(h), sigma'(h)); may overwrite its argument.
STUDENTS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "tanh": _tanh_pair,
    "relu": _relu_pair,
    "erf": _erf_pair,
    "linear": _linear_pair,
}


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OneStepResult:
    """Per-trial measurements of the one-step experiment (rows = trials).

    lam_G: (L,) the ridge grid. sgd, kfac: alignments :math:`\\cos(v,\\beta^*)`, shapes (T,), (T, L).
    sgd_inner, kfac_inner: :math:`\\langle v,\\beta^*\\rangle`; sgd_sqnorm, kfac_sqnorm: :math:`\\lVert v\\rVert^2`.
    population, population_inner, population_sqnorm: (T, L), preconditioner :math:`(\\Sigma+\\lambda_GI)^{-1}`.
    sgd_network, kfac_network: alignment of the network's top right singular vector (``None`` if
        ``network=False``). sgd_spike_size, kfac_spike_size: :math:`s_1/\\lVert F_0\\rVert` of the
        (unit-step) update. F0_norm: (T,) :math:`\\lVert F_0\\rVert`. lanczos_steps: (T,) steps used.
    companion: (T, L) the empirical companion Stieltjes transform
        :math:`\\frac1n\\mathrm{tr}(XX^\\top/n+\\lambda_GI)^{-1}` at :math:`z=-\\lambda_G` (Theorem 3.9's
        :math:`1/\\kappa`), from the eigendecomposition of :math:`\\hat\\Sigma_x` (``None`` for
        ``method="solve"``; ``inf`` at :math:`\\lambda_G=0` when :math:`n>d`).
    z_sq, y_sq, x_sq: (T,) batch averages :math:`\\frac1n\\sum_i\\langle\\beta^*,x_i\\rangle^2`,
        :math:`\\frac1n\\sum_iy_i^2` and :math:`\\frac1n\\sum_i\\lVert x_i\\rVert^2=\\mathrm{tr}\\hat\\Sigma_x`
        (exact means :math:`s^2`, :math:`\\mathbb E[y^2]`, :math:`\\mathrm{tr}\\Sigma`: control variates).
    powers: (P,) the powers :math:`p` of ``one_step(powers=...)`` (``None`` when none were asked for).
    power, power_inner, power_sqnorm: (T, P, L) cos, :math:`\\langle v,\\beta^*\\rangle`,
        :math:`\\lVert v\\rVert^2` of the
        same-batch power spike :math:`v=(\\hat\\Sigma_x+\\lambda_GI)^{-p}X^\\top y/n` (``p = 1``: the KFAC spike;
        ``p = 0``: SGD's). population_power, population_power_inner, population_power_sqnorm: the same
        for :math:`(\\Sigma+\\lambda_GI)^{-p}`.
    muon_cos, muon_spike_gain, muon_alignment, muon_raw_ratio: (T,) Muon's orthogonalisation of the raw
        update :math:`-\\nabla_G\\hat L` (``muon=True``; :func:`orthogonalised_direction`, 5 Newton-Schulz
        steps): :math:`|\\cos|` between the top right singular vectors of the raw and orthogonalised
        updates; the orthogonalised update's singular value along the raw top direction over its top
        singular value; the alignment of its top right singular vector with :math:`\\beta^*` (sign:
        :math:`\\langle\\cdot,X^\\top y\\rangle\\ge0`); the raw update's :math:`s_1/s_2`.
    muon_spike_value, muon_top_value, muon_spike_residual: (T,) the orthogonalised update's singular value along
        the raw top direction, its top singular value, and :attr:`OrthogonalisedDirection.spike_residual`
        (``muon=True``). muon_raw_values: (T, min(N, d)) the raw update's singular values, descending.
    teachers, network_teachers: how many teachers each trial averages over (``one_step(more_teachers=...)``):
        every teacher-dependent field above is the mean over the ``teachers`` teachers (cosines averaged
        per teacher), except the network's (``*_network``, ``*_spike_size``), which average over the first
        ``network_teachers``. sgd_paired, kfac_paired: (T,), (T, L) the spike vectors' cosines averaged over
        those same network teachers (to pair with ``*_network``; ``None`` without the network), and
        sgd_inner_paired, sgd_sqnorm_paired, z_sq_paired, y_sq_paired, population_inner_paired,
        population_sqnorm_paired the same statistics as their namesakes over the network's teachers (the
        control variates of the network's values).
    n, N, d, noise_std, teacher, student, seed: the settings.
    """

    lam_G: np.ndarray
    sgd: np.ndarray
    kfac: np.ndarray
    sgd_inner: np.ndarray
    sgd_sqnorm: np.ndarray
    kfac_inner: np.ndarray
    kfac_sqnorm: np.ndarray
    population: np.ndarray | None
    population_inner: np.ndarray | None
    population_sqnorm: np.ndarray | None
    sgd_network: np.ndarray | None
    kfac_network: np.ndarray | None
    sgd_spike_size: np.ndarray | None
    kfac_spike_size: np.ndarray | None
    F0_norm: np.ndarray
    lanczos_steps: np.ndarray | None
    n: int
    N: int
    d: int
    noise_std: float
    teacher: str
    student: str
    seed: int | np.random.SeedSequence | list
    companion: np.ndarray | None = None
    z_sq: np.ndarray | None = None
    y_sq: np.ndarray | None = None
    x_sq: np.ndarray | None = None
    powers: np.ndarray | None = None
    power: np.ndarray | None = None
    power_inner: np.ndarray | None = None
    power_sqnorm: np.ndarray | None = None
    population_power: np.ndarray | None = None
    population_power_inner: np.ndarray | None = None
    population_power_sqnorm: np.ndarray | None = None
    muon_cos: np.ndarray | None = None
    muon_spike_gain: np.ndarray | None = None
    muon_alignment: np.ndarray | None = None
    muon_raw_ratio: np.ndarray | None = None
    muon_spike_value: np.ndarray | None = None
    muon_top_value: np.ndarray | None = None
    muon_spike_residual: np.ndarray | None = None
    muon_raw_values: np.ndarray | None = None
    teachers: int = 1
    network_teachers: int = 1
    sgd_paired: np.ndarray | None = None
    kfac_paired: np.ndarray | None = None
    sgd_inner_paired: np.ndarray | None = None
    sgd_sqnorm_paired: np.ndarray | None = None
    z_sq_paired: np.ndarray | None = None
    y_sq_paired: np.ndarray | None = None
    population_inner_paired: np.ndarray | None = None
    population_sqnorm_paired: np.ndarray | None = None

    @property
    def trials(self) -> int:
        return int(self.sgd.shape[0])


@dataclass(frozen=True)
class StepMSEResult:
    """Test MSE after one normalised first-layer step and a ridge head (docs/theory.md 4.0, C13).

    none, sgd: (T,) test MSE with :math:`G_0` and with the SGD step; kfac: (T, L) with the KFAC step
    for each ``lam_G``. Labels are noisy, so the floor is ``noise_std**2``.
    lam_G, lam_F, spike_norm, n, n_head, n_test, N, d: the settings.
    """

    none: np.ndarray
    sgd: np.ndarray
    kfac: np.ndarray
    lam_G: np.ndarray
    lam_F: float
    spike_norm: float
    n: int
    n_head: int
    n_test: int
    N: int
    d: int


#: fields of the result classes that describe the setting, not a trial (kept from the first part).
_SETTING_FIELDS = frozenset({"lam_G", "lam_F", "spike_norm", "n", "n_head", "n_test", "N", "d", "noise_std", "teacher",
                             "student", "powers", "teachers", "network_teachers"})


def concatenate(parts):
    """The trials of several :class:`OneStepResult` (or :class:`StepMSEResult`) of one setting, in order:
    a run cut into blocks of trials put back together (per-trial arrays stacked along the trial axis,
    seeds concatenated, setting fields from the first part)."""
    if not isinstance(parts, (list, tuple)):
        raise V.fail("concatenate", "parts", "a non-empty list of results of one class", V.describe(parts))
    parts = list(parts)
    if not parts or len({type(p) for p in parts}) != 1 or not dataclasses.is_dataclass(parts[0]):
        raise V.fail("concatenate", "parts", "a non-empty list of results of one class",
                     f"{len(parts)} part(s) of {sorted({type(p).__name__ for p in parts})}")
    out = {}
    for f in dataclasses.fields(parts[0]):
        vals = [getattr(p, f.name) for p in parts]
        if f.name == "seed":
            out[f.name] = [x for v in vals for x in (v if isinstance(v, list) else [v])]
        elif f.name in _SETTING_FIELDS or vals[0] is None or not isinstance(vals[0], np.ndarray):
            out[f.name] = vals[0]
        else:
            out[f.name] = np.concatenate(vals, axis=0)
    return type(parts[0])(**out)


# --------------------------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------------------------

def _int(func: str, name: str, x, low: int = 1) -> int:
    return V.integer(func, name, x, low=low)


def _problem(func: str, Sigma, beta_star) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues t, beta* in Sigma's eigenbasis). Sigma: a (d, d) symmetric positive-definite matrix
    (relative eigenvalue threshold of :mod:`simulate._validate`) or (d,) positive eigenvalues."""
    S = V.array(func, "Sigma", Sigma, ndim=(1, 2), nonempty=True,
                what="real numbers (a (d, d) symmetric positive-definite matrix or (d,) positive eigenvalues)")
    if S.ndim == 1:
        t = V.spectrum(func, "Sigma", S)
        V.memory(func, {"d": t.size}, 8.0 * 8 * t.size, "the problem's arrays, 64 d bytes,")
        bt = V.vector(func, "beta_star", beta_star, size=t.size, nonzero=True).copy()
    else:
        S = V.spd(func, "Sigma", S)
        bt_in = V.vector(func, "beta_star", beta_star, size=S.shape[0], nonzero=True)
        t, O = np.linalg.eigh(S)
        bt = O.T @ bt_in
    return t, bt


def _teacher(func: str, teacher) -> tuple[Callable, str]:
    if isinstance(teacher, str):
        if teacher not in TEACHERS:
            raise V.fail(func, "teacher", f"one of {tuple(TEACHERS)} or a callable", repr(teacher))
        return TEACHERS[teacher], teacher
    if callable(teacher):
        return _CheckedTeacher(teacher, func), getattr(teacher, "__name__", type(teacher).__name__)
    raise V.fail(func, "teacher", f"one of {tuple(TEACHERS)} or a callable", V.describe(teacher))


@dataclass(frozen=True)
class _CheckedTeacher:
    """A user teacher whose every call is checked (:func:`simulate._validate.call_values`: an exception,
    a non-real, non-finite or misshapen value is a ValueError naming ``teacher``); picklable when ``fn`` is."""

    fn: Callable
    func: str

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return V.call_values(self.func, "teacher", self.fn, z, label=getattr(self.fn, "__name__", None))


def _student(func: str, student) -> tuple[Callable, str]:
    if isinstance(student, str):
        if student not in STUDENTS:
            raise V.fail(func, "student", f"one of {tuple(STUDENTS)} or a (sigma, sigma_prime) pair", repr(student))
        return STUDENTS[student], student
    if isinstance(student, tuple) and len(student) == 2 and all(callable(f) for f in student):
        pair = _PairStudent(*student, func=func)
        pair(np.linspace(-3.0, 3.0, 12).reshape(3, 4))  # raises a ValueError naming 'student' if it misbehaves
        return pair, getattr(student[0], "__name__", "custom")
    raise V.fail(func, "student", f"one of {tuple(STUDENTS)} or a (sigma, sigma_prime) pair of callables",
                 V.describe(student))


@lru_cache(maxsize=1)
def _gh200() -> tuple[np.ndarray, np.ndarray]:
    x, w = hermegauss(200)
    return x, w / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class _PairStudent:
    """A user student given as ``(sigma, sigma_prime)`` (picklable when both functions are)."""

    f: Callable
    df: Callable
    func: str = "one_step"

    def __call__(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        exp = "a (sigma, sigma_prime) pair of callables mapping an array to finite real values of its shape"
        act = V.call_values(self.func, "student", self.f, h, expected=exp, broadcast=False)
        dact = V.call_values(self.func, "student", self.df, h, expected=exp, broadcast=False)
        return act, np.array(dact, dtype=float)


def _check_signal(func: str, fn: Callable, s: float) -> None:
    """Raise if the teacher's first Hermite coefficient vanishes (information exponent > 1)."""
    x, w = _gh200()
    f = fn(s * x) if isinstance(fn, _CheckedTeacher) else V.call_values(func, "teacher", fn, s * x)
    rms = math.sqrt(max(float(w @ (f * f)), 0.0))
    c_s = abs(float(w @ (x * f)))  # = |c| s
    if not c_s > 1e-8 * rms:
        raise V.fail(func, "teacher", "a teacher with nonzero first Hermite coefficient c = E[z sigma*(z)]/s^2 "
                     "(information exponent 1)",
                     f"c = {c_s / s:.3g}: information exponent above 1, the one-step spike carries no signal "
                     "about beta_star")


def _lams(func: str, lam_G) -> np.ndarray:
    lam = V.array(func, "lam_G", lam_G, ndim=(0, 1), nonempty=True, low=0.0, what="ridges (real numbers >= 0)")
    return np.atleast_1d(lam).astype(float)


def _powers(func: str, powers) -> np.ndarray:
    """The powers p of the same-batch and population preconditioners: a 1-D sequence in [0, 1]."""
    if isinstance(powers, (bool, np.bool_, str)):
        raise V.fail(func, "powers", "a sequence of real numbers in [0, 1]", repr(powers))
    p = V.array(func, "powers", powers, ndim=(0, 1))
    p = np.atleast_1d(p).astype(float)
    if p.size and (np.any(p < 0) or np.any(p > 1)):
        raise V.fail(func, "powers", "a sequence of real numbers in [0, 1]", f"range [{p.min():.6g}, {p.max():.6g}]")
    return p


def _seed(func: str, seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (list, tuple)) and seed and all(isinstance(s, np.random.SeedSequence) for s in seed):
        return list(seed)
    return V.integer(func, "seed", seed, low=0,
                     expected="a non-negative integer, a numpy.random.SeedSequence or a list of them (one per trial)")


def _blas(func: str, blas_threads) -> int | None:
    if blas_threads is None:
        return None
    return V.integer(func, "blas_threads", blas_threads, low=1, expected="an integer >= 1 or None")


def _trial_seeds(func: str, seed, trials: int) -> list:
    """One SeedSequence per trial: the children of ``seed``, or ``seed`` itself when it is that list."""
    if isinstance(seed, list):
        if len(seed) != trials:
            raise V.fail(func, "seed", f"a list of trials = {trials} SeedSequences", f"{len(seed)} of them")
        return seed
    return spawn_seeds(seed, trials)


def _sizes(func: str, *, d: int, n: int, N: int, trials: int, L: int, P: int = 0, max_steps: int = 60,
           n_head: int = 0, n_test: int = 0) -> None:
    """Refuse sizes whose arrays cannot be held at once: one trial's working set (``X`` (n, d), the
    pre-activations (n, N) and their derivatives, ``G0`` and the update (N, d), the eigenvectors of the
    sample covariance, the Lanczos basis) and the results of all trials (:data:`simulate.trials.SEED_BYTES`
    per trial for its seed and ~2 KiB for its record, plus the per-trial arrays)."""
    r = min(n, d)
    work = 8.0 * (3 * n * d + 4 * n * N + 3 * N * d + d * d + n * r + (min(max_steps, N) + 2) * r * (L + 1)
                  + (n_head + n_test) * (d + 2 * N))
    sizes = {"n": n, "N": N, **({"n_head": n_head, "n_test": n_test} if n_head else {})}
    V.memory(func, sizes, work, f"one trial's arrays, 8 (3 n d + 4 n N + 3 N d + d^2 + ...) bytes with d = {d},")
    V.memory(func, {"trials": trials}, trials * (3072.0 + 8.0 * (24 + 12 * L + 6 * L * max(P, 0))),
             f"the trials' seeds and results, about (3072 + 8 (24 + 12 L + 6 L P)) trials bytes with L = {L}"
             f"{f', P = {P}' if P else ''},")


# --------------------------------------------------------------------------------------------
# block Lanczos for the top singular pair of many operators at once
# --------------------------------------------------------------------------------------------

def top_singular_pairs(apply: Callable[[np.ndarray], np.ndarray], start: np.ndarray, *,
                       tol: float = 1e-10, max_steps: int = 60) -> tuple[np.ndarray, np.ndarray, int]:
    """Top eigenpair of ``m`` symmetric PSD operators :math:`A_l=M_l^\\top M_l` by batched Lanczos.

    apply: maps an (r, m) block ``Q`` to the block with columns :math:`A_lQ_{:,l}`.
    start: (r, m) starting vectors (nonzero columns; the spike vectors are excellent starts).
    tol: stop when every Ritz residual :math:`\\beta_j|y_j|` is at most ``tol`` times its Ritz value.
    max_steps: Lanczos steps at most (full reorthogonalisation, twice, each step).
    Returns ``(theta, U, steps)``: top eigenvalues :math:`\\theta_l=s_1(M_l)^2` (m,), unit Ritz vectors
    (r, m) (sign: :math:`\\langle U_{:,l},\\text{start}_{:,l}\\rangle\\ge0`), and the steps used.
    All columns advance together (one block product per step); the small tridiagonal eigenproblems
    are solved only for the columns not yet converged.
    """
    f = "top_singular_pairs"
    if not callable(apply):
        raise V.fail(f, "apply", "a callable mapping an (r, m) block to an (r, m) block", V.describe(apply))
    start = V.matrix(f, "start", start)
    nrm = np.linalg.norm(start, axis=0)
    if np.any(nrm == 0):
        raise V.fail(f, "start", "a matrix with nonzero columns", f"column {int(np.argmin(nrm))} zero")
    tol = V.scalar(f, "tol", tol, low=0.0, high=1.0, low_open=True, high_open=True)
    max_steps = V.integer(f, "max_steps", max_steps, low=1)
    V.memory(f, {"max_steps": max_steps}, 8.0 * (min(max_steps, start.shape[0]) + 1) * start.size,
             "the Lanczos basis, 8 (min(max_steps, r) + 1) r m bytes,")

    def checked(Qb: np.ndarray) -> np.ndarray:
        return np.array(V.call_values(f, "apply", apply, Qb, broadcast=False,
                                      expected="a callable mapping an (r, m) block to a finite real (r, m) block"))

    return _top_singular_pairs(checked, start, tol=tol, max_steps=max_steps)


def _top_singular_pairs(apply: Callable[[np.ndarray], np.ndarray], start: np.ndarray, *,
                        tol: float = 1e-10, max_steps: int = 60) -> tuple[np.ndarray, np.ndarray, int]:
    r, m = start.shape
    max_steps = max(1, min(int(max_steps), r))
    Q = np.zeros((max_steps + 1, r, m))
    alpha = np.zeros((m, max_steps))
    beta = np.zeros((m, max_steps))
    nrm = np.linalg.norm(start, axis=0)
    if np.any(nrm == 0):
        raise ValueError("top_singular_pairs: argument 'start' must have nonzero columns; got a zero column.")
    Q[0] = start / nrm
    done = np.zeros(m, dtype=bool)
    steps = 0
    for j in range(max_steps):
        w = apply(Q[j])
        alpha[:, j] = np.einsum("rm,rm->m", Q[j], w)
        for _ in range(2):  # full reorthogonalisation, twice is enough
            coef = np.einsum("krm,rm->km", Q[: j + 1], w)
            w -= np.einsum("krm,km->rm", Q[: j + 1], coef)
        beta[:, j] = np.linalg.norm(w, axis=0)
        steps = j + 1
        act = np.flatnonzero(~done)
        theta, Y = _tridiag_top(alpha[act, :steps], beta[act, : steps - 1])
        resid = beta[act, j] * np.abs(Y[:, -1])
        done[act] = resid <= tol * np.where(np.abs(theta) > 0, np.abs(theta), 1.0)
        if done.all():
            break
        if steps == max_steps:
            warnings.warn(f"top_singular_pairs: {int((~done).sum())} of {m} operators not converged to "
                          f"tol = {tol:g} after {max_steps} Lanczos steps", RuntimeWarning, stacklevel=2)
            break
        b = beta[:, j]
        Q[j + 1] = np.where(b > 0, w / np.where(b > 0, b, 1.0), 0.0)
    theta, Y = _tridiag_top(alpha[:, :steps], beta[:, : steps - 1])
    U = np.einsum("krm,mk->rm", Q[:steps], Y)
    U /= np.linalg.norm(U, axis=0)
    sign = np.sign(np.einsum("rm,rm->m", U, start))
    U *= np.where(sign == 0, 1.0, sign)
    return theta, U, steps


def _tridiag_top(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest eigenpair of each symmetric tridiagonal matrix (diagonals ``alpha`` (m, k), off ``beta`` (m, k-1))."""
    m, k = alpha.shape
    T = np.zeros((m, k, k))
    i = np.arange(k)
    T[:, i, i] = alpha
    if k > 1:
        T[:, i[1:], i[:-1]] = beta
        T[:, i[:-1], i[1:]] = beta
    ev, vec = np.linalg.eigh(T)
    return ev[:, -1], vec[:, :, -1]


# --------------------------------------------------------------------------------------------
# Muon's orthogonalisation of one update: where does the spike go?
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class OrthogonalisedDirection:
    """The top right singular vectors of an update and of its orthogonalisation (:func:`orthogonalised_direction`).

    raw_top, orth_top: (d,) unit top right singular vectors of the update :math:`\\Delta` and of
        :math:`O=\\mathrm{NS}_k(\\Delta)` (or of the polar factor).
    cos: :math:`|\\langle\\text{raw\\_top},\\text{orth\\_top}\\rangle|`.
    raw_values, orth_values: their singular values, descending (``min(N, d)`` each).
    spike_value: :math:`\\lVert O\\,\\text{raw\\_top}\\rVert`, the singular value :math:`O` gives the raw top direction.
    spike_residual: :math:`\\lVert O^\\top O u-\\lVert Ou\\rVert^2u\\rVert/\\lVert Ou\\rVert^2` for :math:`u` = raw_top:
        round-off when :math:`u` is still a right singular vector of :math:`O` (always, in exact arithmetic:
        the iteration is an odd matrix polynomial :math:`Up(S)V^\\top`).
    """

    raw_top: np.ndarray
    orth_top: np.ndarray
    cos: float
    raw_values: np.ndarray
    orth_values: np.ndarray
    spike_value: float
    spike_residual: float

    @property
    def raw_ratio(self) -> float:
        """:math:`s_1/s_2` of the raw update (``inf`` for rank one): how rank-one-dominated it is."""
        s = self.raw_values
        return float(s[0] / s[1]) if s.size > 1 and s[1] > 0 else math.inf

    @property
    def spike_gain(self) -> float:
        """spike_value over the orthogonalised update's top singular value (1: the spike is still on top)."""
        return float(self.spike_value / self.orth_values[0])


def orthogonalised_direction(update, *, steps: int = 5, exact_polar: bool = False,
                             reference=None) -> OrthogonalisedDirection:
    """Does Muon's orthogonalisation keep the top right singular vector of an update?

    update: (N, d) the raw update :math:`\\Delta` (e.g. :math:`-\\nabla_G\\hat L`), nonzero.
    steps: quintic Newton-Schulz iterations of Muon (:func:`simulate.matrix_optimizers.newton_schulz`,
        coefficients (3.4445, -4.7750, 2.0315), from :math:`\\Delta/\\lVert\\Delta\\rVert_F`); 5 as in Muon.
    exact_polar: use the exact polar factor :math:`UV^\\top` instead. Its nonzero singular values are all 1,
        so its top right singular vector is not determined (the SVD returns an arbitrary one) and
        ``cos`` is meaningless; ``spike_gain`` is 1: the spike is one direction among ``rank`` equal ones.
    reference: optional (d,) vector fixing the signs (:math:`\\langle\\cdot,\\text{reference}\\rangle\\ge0`);
        without it ``raw_top`` is as the SVD returns it and ``orth_top`` has a non-negative inner
        product with it.

    Newton-Schulz maps each singular value :math:`\\sigma_j` to :math:`p^{(k)}(\\sigma_j/\\lVert\\Delta\\rVert_F)`,
    :math:`p(x)=ax+bx^3+cx^5`, keeping the singular vectors. A rank-one-dominated update has
    :math:`\\sigma_1/\\lVert\\Delta\\rVert_F` near 1, which Muon's polynomial maps to about 0.74, while the bulk's
    small singular values are pushed up to about 1.2: the orthogonalised update's top right singular
    vector is then a bulk direction, not the spike, as measured in
    (docs/theory.md, "Muon's orthogonalisation of the one-step update").
    """
    func = "orthogonalised_direction"
    U = V.matrix(func, "update", update)
    if not np.any(U != 0):
        raise V.fail(func, "update", "a nonzero matrix", "the zero matrix")
    steps = V.integer(func, "steps", steps, low=1, high=MAX_NS_STEPS)
    exact_polar = V.flag(func, "exact_polar", exact_polar)
    ref = None
    if reference is not None:
        ref = V.vector(func, "reference", reference, size=U.shape[1], nonzero=True)
    O = _polar_factor(U) if exact_polar else _newton_schulz(U, steps)
    _, s_raw, Vt_raw = np.linalg.svd(U, full_matrices=False)
    _, s_orth, Vt_orth = np.linalg.svd(O, full_matrices=False)
    u, w = Vt_raw[0].copy(), Vt_orth[0].copy()
    if ref is not None:
        if u @ ref < 0:
            u = -u
        if w @ ref < 0:
            w = -w
    elif w @ u < 0:
        w = -w
    Ou = O @ u
    sv2 = float(Ou @ Ou)
    resid = float(np.linalg.norm(O.T @ Ou - sv2 * u)) / sv2 if sv2 > 0 else math.inf
    return OrthogonalisedDirection(raw_top=u, orth_top=w, cos=abs(float(u @ w)), raw_values=s_raw,
                                   orth_values=s_orth, spike_value=math.sqrt(sv2), spike_residual=resid)


# --------------------------------------------------------------------------------------------
# one trial
# --------------------------------------------------------------------------------------------

def _run(work: Callable, seeds: list, *, blas_threads: int | None) -> list:
    """The trials in order, serially (scheduling across processes is the caller's: compare's runner hands
    each block of trials its own seeds), under ``blas_threads`` BLAS threads when given."""
    if blas_threads is None:
        return [work(s) for s in seeds]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(blas_threads)):
        return [work(s) for s in seeds]


def trial_generator(seed_seq: np.random.SeedSequence) -> np.random.Generator:
    """The generator of one trial: SFC64 seeded by the trial's ``SeedSequence`` child (its normals are
    ~20% cheaper than PCG64's, and drawing X is the largest cost outside BLAS/LAPACK).
    seed_seq: a ``numpy.random.SeedSequence`` (not ``None``: the trial must be reproducible)."""
    V.instance("trial_generator", "seed_seq", seed_seq, np.random.SeedSequence, "a numpy.random.SeedSequence")
    return np.random.Generator(np.random.SFC64(seed_seq))


def _draw(t: np.ndarray, bt: np.ndarray, n: int, N: int, teacher: Callable, noise_std: float,
          rng: np.random.Generator):
    """X (n, d) in Sigma's eigenbasis, labels y, and the initialisation (G0, F0)."""
    d = t.size
    X = rng.standard_normal((n, d))
    X *= np.sqrt(t)
    z = X @ bt
    y = np.asarray(teacher(z), dtype=float)
    if noise_std > 0:
        y = y + noise_std * rng.standard_normal(n)
    G0 = rng.standard_normal((N, d))
    G0 *= 1.0 / math.sqrt(d)
    F0 = rng.standard_normal(N) / N
    return X, y, G0, F0


def _more_labels(X: np.ndarray, more: np.ndarray, teacher: Callable, noise_std: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Projections Z = X more and labels Y, both (n, K - 1), of the further teachers ``more`` (d, K - 1) on the
    same inputs, the label noise drawn after the initialisation (so the first teacher's draws, and every result
    for it, are those of a one-teacher run)."""
    Z = X @ more
    Y = np.empty_like(Z)
    for k in range(Z.shape[1]):
        Y[:, k] = np.asarray(teacher(Z[:, k]), dtype=float)
    if noise_std > 0:
        Y += noise_std * rng.standard_normal(Y.shape)
    return Z, Y


def _neg_gradient(X: np.ndarray, y: np.ndarray, G0: np.ndarray, F0: np.ndarray, student: Callable) -> np.ndarray:
    """:math:`-\\nabla_G\\hat L(F_0,G_0)` for :math:`\\hat L=\\frac1{2n}\\sum_i(y_i-F_0\\sigma(G_0x_i))^2`, shape (N, d)."""
    n = X.shape[0]
    H = X @ G0.T                                   # (n, N) pre-activations
    act, dact = student(H)
    r = y - act @ F0                               # residuals of the network at init
    if not dact.flags.writeable or dact is act:
        dact = np.array(dact, copy=True)
    dact *= r[:, None]
    dact *= F0[None, :] / n
    return dact.T @ X                              # (1/n) sum_i [(F0' r_i) . sigma'(G0 x_i)] x_i'


def _eigen_sample_cov(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(omega, W): nonzero spectrum and orthonormal eigenvectors (d, r) of X'X/n, r = min(n, d)."""
    n, d = X.shape
    if n >= d:
        S = X.T @ X
        S *= 1.0 / n
        return np.linalg.eigh(S)
    Gm = X @ X.T
    Gm *= 1.0 / n
    om, U = np.linalg.eigh(Gm)
    W = X.T @ U
    W /= np.sqrt(n * om)[None, :]
    return om, W


def _trial(seed_seq, *, t, bt, n, N, lam, teacher, student, noise_std, network, population, method,
           lanczos_tol, max_steps, powers: np.ndarray = np.empty(0), muon: bool = False,
           more: np.ndarray | None = None, network_teachers: int = 1) -> dict:
    rng = trial_generator(seed_seq)
    X, y, G0, F0 = _draw(t, bt, n, N, teacher, noise_std, rng)
    d = t.size
    beta_norm = math.sqrt(float(bt @ bt))
    b = X.T @ y
    b *= 1.0 / n                                  # SGD spike vector v = X'y/n
    out: dict = {"F0_norm": float(np.linalg.norm(F0))}
    out["sgd_inner"] = float(b @ bt)
    out["sgd_sqnorm"] = float(b @ b)
    z = X @ bt                                    # the teacher's projections <beta*, x_i>
    out["z_sq"] = float(z @ z) / n
    out["y_sq"] = float(y @ y) / n
    out["x_sq"] = float(np.vdot(X, X)) / n        # tr Sigma_hat
    ext: dict = {}                                # the further teachers' values, teacher axis first
    if more is not None:
        Zm, Ym = _more_labels(X, more, teacher, noise_std, rng)
        Bm = X.T @ Ym
        Bm *= 1.0 / n                             # (d, K - 1): their SGD spike vectors
        ext["sgd_inner"] = np.einsum("dk,dk->k", Bm, more)
        ext["sgd_sqnorm"] = np.einsum("dk,dk->k", Bm, Bm)
        ext["z_sq"] = np.einsum("nk,nk->k", Zm, Zm) / n
        ext["y_sq"] = np.einsum("nk,nk->k", Ym, Ym) / n
        more_norm = np.sqrt(np.einsum("dk,dk->k", more, more))
    L = lam.size
    if population:
        P = 1.0 / (t[None, :] + lam[:, None])       # (L, d): (Sigma + lam)^{-1} is diagonal here
        vp = P * b[None, :]
        out["population_inner"] = vp @ bt
        out["population_sqnorm"] = np.einsum("ld,ld->l", vp, vp)
        if more is not None:
            vpm = P[None, :, :] * Bm.T[:, None, :]  # (K - 1, L, d)
            ext["population_inner"] = np.einsum("kld,dk->kl", vpm, more)
            ext["population_sqnorm"] = np.einsum("kld,kld->kl", vpm, vpm)
    if powers.size:
        # (Sigma + lam)^{-p} is diagonal here: (P, L, d), no factorisation
        vpp = (t[None, None, :] + lam[None, :, None]) ** (-powers[:, None, None]) * b[None, None, :]
        out["population_power_inner"] = vpp @ bt
        out["population_power_sqnorm"] = np.einsum("pld,pld->pl", vpp, vpp)
    Delta = None
    if muon:
        Delta = _neg_gradient(X, y, G0, F0, student)      # (N, d), the raw update (SGD direction)
        od = orthogonalised_direction(Delta, steps=5, reference=b)
        out["muon_cos"], out["muon_spike_gain"], out["muon_raw_ratio"] = od.cos, od.spike_gain, od.raw_ratio
        out["muon_alignment"] = float(od.orth_top @ bt) / beta_norm
        out["muon_spike_value"], out["muon_top_value"] = od.spike_value, float(od.orth_values[0])
        out["muon_spike_residual"], out["muon_raw_values"] = od.spike_residual, od.raw_values
    if method == "solve":
        S = X.T @ X
        S *= 1.0 / n
        inner = np.empty(L)
        sq = np.empty(L)
        if more is not None:
            ext["kfac_inner"], ext["kfac_sqnorm"] = np.empty((more.shape[1], L)), np.empty((more.shape[1], L))
        for j, lj in enumerate(lam):
            C = S.copy()
            C[np.diag_indices(d)] += lj
            cf = _la.cho_factor(C, lower=True, check_finite=False)
            v = _la.cho_solve(cf, b, check_finite=False)
            inner[j] = v @ bt
            sq[j] = v @ v
            if more is not None:
                Vm = _la.cho_solve(cf, Bm, check_finite=False)
                ext["kfac_inner"][:, j] = np.einsum("dk,dk->k", Vm, more)
                ext["kfac_sqnorm"][:, j] = np.einsum("dk,dk->k", Vm, Vm)
        out["kfac_inner"], out["kfac_sqnorm"] = inner, sq
        return _average_teachers(out, ext, beta_norm=beta_norm, more_norm=more_norm if more is not None else None,
                                 network_teachers=network_teachers)
    # one eigendecomposition of Sigma_hat serves every lam_G
    om, W = _eigen_sample_cov(X)
    a = W.T @ b
    bw = W.T @ bt
    Dm = 1.0 / (om[:, None] + lam[None, :])       # (r, L)
    # companion Stieltjes transform (1/n) tr (XX'/n + lam)^{-1}: XX'/n has the r eigenvalues omega
    # and n - r zeros (n > d), so it is (1/n)[sum_j 1/(omega_j + lam) + (n - r)/lam]
    r = om.size
    with np.errstate(divide="ignore", invalid="ignore"):
        zeros = np.where(n > r, (n - r) / lam, 0.0)
    out["companion"] = (Dm.sum(axis=0) + zeros) / n
    va = a[:, None] * Dm                            # spike vectors in the W basis
    out["kfac_inner"] = bw @ va
    out["kfac_sqnorm"] = np.einsum("rl,rl->l", va, va)
    if more is not None:
        Am = W.T @ Bm                               # (r, K - 1)
        Bwm = W.T @ more
        vam = Am[:, :, None] * Dm[:, None, :]       # (r, K - 1, L)
        ext["kfac_inner"] = np.einsum("rk,rkl->kl", Bwm, vam)
        ext["kfac_sqnorm"] = np.einsum("rkl,rkl->kl", vam, vam)
    if powers.size:
        # same-batch powers from the same eigendecomposition: (Sigma_hat + lam)^{-p} X'y/n = W diag((omega+lam)^{-p}) a
        vpw = a[None, :, None] * (om[None, :, None] + lam[None, None, :]) ** (-powers[:, None, None])  # (P, r, L)
        out["power_inner"] = np.einsum("r,prl->pl", bw, vpw)
        out["power_sqnorm"] = np.einsum("prl,prl->pl", vpw, vpw)
    if network:
        Dall = np.concatenate([np.ones((om.size, 1)), Dm], axis=1)   # column 0: SGD
        extra_net = network_teachers - 1
        A = None
        if Delta is None and extra_net == 0:
            Delta = _neg_gradient(X, y, G0, F0, student)  # (N, d)
        elif Delta is None:
            # the pre-activations once for every network teacher; the first teacher's update by the operations
            # of _neg_gradient (the same numbers), the others' applied without forming them (below)
            act, dact = student(X @ G0.T)
            if not dact.flags.writeable or dact is act:
                dact = np.array(dact, copy=True)
            fitted = act @ F0
            A = dact * (F0 / n)[None, :]                    # (n, N): M_k = A' diag(y_k - fitted) X
            dact *= (y - fitted)[:, None]
            dact *= F0[None, :] / n
            Delta = dact.T @ X

        def spikes(apply_K, a_: np.ndarray, va_: np.ndarray, bw_: np.ndarray, norm: float):
            start = np.concatenate([a_[:, None], va_], axis=1)

            def apply(Qb: np.ndarray) -> np.ndarray:
                return Dall * apply_K(Dall * Qb)

            theta, U, steps = _top_singular_pairs(apply, start, tol=lanczos_tol, max_steps=max_steps)
            return (bw_ @ U) / norm, np.sqrt(np.maximum(theta, 0.0)) / out["F0_norm"], steps

        K = Delta @ W                                        # (N, r)
        cos_net, size, steps = spikes(lambda P: K.T @ (K @ P), a, va, bw, beta_norm)
        out["sgd_network"], out["kfac_network"] = float(cos_net[0]), cos_net[1:]
        out["sgd_spike_size"], out["kfac_spike_size"] = float(size[0]), size[1:]
        out["lanczos_steps"] = steps
        if extra_net:
            # the further network teachers in one block Lanczos (their (L + 1) operators side by side), applied in
            # products with X, W and A without forming their updates: K_k = M_k W, M_k = A' diag(res_k) X, so
            # each product reads X and A once for every column (O((nd + nN + dr) m) for m columns)
            m1 = Dall.shape[1]
            R = np.repeat(Ym[:, :extra_net] - fitted[:, None], m1, axis=1)   # (n, E (L + 1)): res_k per column
            Dblk = np.tile(Dall, (1, extra_net))
            start = np.concatenate([np.concatenate([Am[:, k:k + 1], vam[:, k, :]], axis=1) for k in range(extra_net)],
                                   axis=1)

            def apply_blk(Qb: np.ndarray) -> np.ndarray:
                U = X @ (W @ (Dblk * Qb))
                U *= R
                U = A @ (A.T @ U)
                U *= R
                return Dblk * (W.T @ (X.T @ U))

            theta_b, U_b, steps_b = _top_singular_pairs(apply_blk, start, tol=lanczos_tol, max_steps=max_steps)
            got = []
            for k in range(extra_net):
                cols = slice(k * m1, (k + 1) * m1)
                got.append(((Bwm[:, k] @ U_b[:, cols]) / float(more_norm[k]),
                            np.sqrt(np.maximum(theta_b[cols], 0.0)) / out["F0_norm"], steps_b))
            ext["sgd_network"] = np.array([g[0][0] for g in got])
            ext["kfac_network"] = np.array([g[0][1:] for g in got])
            ext["sgd_spike_size"] = np.array([g[1][0] for g in got])
            ext["kfac_spike_size"] = np.array([g[1][1:] for g in got])
            out["lanczos_steps"] = max([steps] + [g[2] for g in got])
    return _average_teachers(out, ext, beta_norm=beta_norm, more_norm=more_norm if more is not None else None,
                             network_teachers=network_teachers)


#: per-trial values averaged over all teachers, and over the network's teachers (the first ``network_teachers``).
_ALL_TEACHERS = ("sgd_inner", "sgd_sqnorm", "z_sq", "y_sq", "population_inner", "population_sqnorm", "kfac_inner",
                 "kfac_sqnorm")
_NETWORK_TEACHERS = ("sgd_network", "kfac_network", "sgd_spike_size", "kfac_spike_size")


def _average_teachers(out: dict, ext: dict, *, beta_norm: float, more_norm: np.ndarray | None,
                      network_teachers: int) -> dict:
    """With further teachers, every teacher-dependent value of ``out`` (the first teacher's) becomes its mean over
    the teachers, and the cosines are averaged per teacher (``*_cos``; ``*_paired``: over the network's teachers,
    the set the network values average over). One teacher: ``out`` unchanged."""
    if more_norm is None:
        return out

    def cos(inner, sq, norm):
        return np.asarray(inner) / (np.asarray(norm) * np.sqrt(sq))

    norms = more_norm[:, None]
    cos0 = {"sgd": cos(out["sgd_inner"], out["sgd_sqnorm"], beta_norm),
            "kfac": cos(out["kfac_inner"], out["kfac_sqnorm"], beta_norm)}
    cosm = {"sgd": cos(ext["sgd_inner"], ext["sgd_sqnorm"], more_norm),
            "kfac": cos(ext["kfac_inner"], ext["kfac_sqnorm"], norms)}
    if "population_inner" in out:
        cos0["population"] = cos(out["population_inner"], out["population_sqnorm"], beta_norm)
        cosm["population"] = cos(ext["population_inner"], ext["population_sqnorm"], norms)
    K = 1 + more_norm.size
    res = dict(out)
    for key in cos0:
        res[key + "_cos"] = (cos0[key] + cosm[key].sum(axis=0)) / K
    if "sgd_network" in out:
        m = network_teachers - 1
        for key in ("sgd", "kfac"):
            res[key + "_paired"] = (cos0[key] + cosm[key][:m].sum(axis=0)) / network_teachers
        for key in _NETWORK_TEACHERS:
            res[key] = (out[key] + ext[key].sum(axis=0)) / network_teachers if m else out[key]
    for key in _ALL_TEACHERS:
        if key in out:
            res[key] = (out[key] + ext[key].sum(axis=0)) / K
            if "sgd_network" in out and key in _PAIRED:
                m = network_teachers - 1
                res[key + "_paired"] = (out[key] + ext[key][:m].sum(axis=0)) / network_teachers
    return res


#: the statistics also averaged over the network's teachers (``*_paired``: controls of the network's values).
_PAIRED = ("sgd_inner", "sgd_sqnorm", "z_sq", "y_sq", "population_inner", "population_sqnorm")


def one_step(Sigma, beta_star, *, n, N, lam_G, teacher, noise_std, trials, seed, student="tanh",
             network: bool = True, population: bool = True, method: str = "auto",
             blas_threads: int | None = None, lanczos_tol: float = 1e-10,
             max_steps: int = 60, powers=(), muon: bool = False, more_teachers=None,
             network_teachers: int | None = None) -> OneStepResult:
    """Run ``trials`` independent one-step experiments (docs/theory.md 4.0-4.1).

    Sigma: (d, d) symmetric positive-definite covariance, or (d,) eigenvalues (then ``beta_star``
        is in that eigenbasis).
    beta_star: (d,) nonzero teacher direction :math:`\\beta^*`.
    n: batch size (>= 1). N: hidden width (>= 1).
    lam_G: (L,) ridges :math:`\\lambda_G\\ge0` of the KFAC preconditioner (a float is one ridge).
    teacher: a name in :data:`TEACHERS` or a callable :math:`\\sigma^*`; it must have :math:`c\\ne0`.
    noise_std: label noise :math:`\\sigma_\\varepsilon\\ge0`.
    trials: number of independent trials (>= 1). seed: master seed (int or SeedSequence; trial i uses its
        child i), or a list of ``trials`` SeedSequences, one per trial (a block of a larger run).
    student: a name in :data:`STUDENTS` or a ``(sigma, sigma_prime)`` pair of callables.
    network: also compute the network's own spikes (Lanczos on the actual update).
    population: also report the population-preconditioner spike :math:`(\\Sigma+\\lambda_GI)^{-1}X^\\top y/n`.
    method: ``"eigh"`` (one eigendecomposition for all ``lam_G``), ``"solve"`` (a Cholesky solve
        per ridge; only without ``network``, with ``n >= d`` and ``lam_G > 0``), or ``"auto"``
        (``"solve"`` when allowed and ``len(lam_G) <= 2``).
    blas_threads: BLAS threads while the trials run (``None``: leave the current setting). On a shared,
        loaded machine 1 is much faster for d <= 500.
    lanczos_tol, max_steps: Lanczos stopping rule (relative Ritz residual) and step limit.
    powers: powers :math:`p\\in[0,1]` (e.g. ``(0.25, 0.5)``): also report the spikes of the same-batch
        preconditioners :math:`(\\hat\\Sigma_x+\\lambda_GI)^{-p}` (from the one eigendecomposition of
        :math:`\\hat\\Sigma_x` per trial, so ``method`` must be ``"eigh"`` or ``"auto"``) and of the
        population ones :math:`(\\Sigma+\\lambda_GI)^{-p}`, for every ``(p, lam_G)``. Empty (default): no
        extra output, every other field unchanged.
    muon: also measure Muon's orthogonalisation of the raw update (:func:`orthogonalised_direction`,
        5 Newton-Schulz steps, one SVD of the update and one of its orthogonalisation per trial).
        Neither option draws random numbers: every other field is the same with and without them.
    more_teachers: (d, K - 1) further teacher directions (columns, nonzero, in the basis of ``beta_star``) on
        the same inputs and initialisation: each trial also draws their labels (with their own label noise,
        after everything the first teacher's trial draws, so its draws are those of a one-teacher run) and
        reports every teacher-dependent value averaged over the K teachers (their spike vectors cost
        :math:`O(nd)` each beside the :math:`O(d^3)` eigendecomposition they share; the per-teacher
        fluctuations are nearly independent, so the average's variance is about 1/K of one teacher's).
        Not with ``powers`` or ``muon``.
    network_teachers: with ``more_teachers``, how many teachers (the first ones, ``beta_star`` first) get the
        network's own spikes (an :math:`O(nNd)` update and a Lanczos run each); default all K.
    """
    func = "one_step"
    t, bt = _problem(func, Sigma, beta_star)
    d = t.size
    more_t = None
    if more_teachers is not None:
        more_t = V.matrix(func, "more_teachers", more_teachers, shape=(d, None), labels=("d", None))
        if more_t.shape[1] == 0 or np.any(np.einsum("dk,dk->k", more_t, more_t) == 0):
            raise V.fail(func, "more_teachers", "a (d, K - 1) matrix of nonzero columns, K >= 2",
                         f"shape {more_t.shape}" if more_t.shape[1] == 0 else "a zero column")
        if np.ndim(Sigma) == 2:
            more_t = np.linalg.eigh(np.asarray(Sigma, dtype=float))[1].T @ more_t
        more_t = np.ascontiguousarray(more_t)
    K = 1 if more_t is None else 1 + more_t.shape[1]
    if network_teachers is None:
        network_teachers = K
    network_teachers = V.integer(func, "network_teachers", network_teachers, low=1, high=K)
    if more_t is not None and (muon or (not isinstance(powers, (int, float)) and len(powers) > 0)):
        raise V.fail(func, "more_teachers", "None when powers or muon are asked for (they follow the first teacher)",
                     f"a (d, {K - 1}) matrix")
    n = _int(func, "n", n)
    N = _int(func, "N", N)
    lam = _lams(func, lam_G)
    fn, tname = _teacher(func, teacher)
    noise_std = V.scalar(func, "noise_std", noise_std, low=0.0)
    trials = _int(func, "trials", trials)
    seed = _seed(func, seed)
    sfn, sname = _student(func, student)
    network = V.flag(func, "network", network)
    population = V.flag(func, "population", population)
    V.choice(func, "method", method, ("auto", "eigh", "solve"))
    blas_threads = _blas(func, blas_threads)
    lanczos_tol = V.scalar(func, "lanczos_tol", lanczos_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    max_steps = V.integer(func, "max_steps", max_steps, low=1)
    pw = _powers(func, powers)
    muon = V.flag(func, "muon", muon)
    _sizes(func, d=d, n=n, N=N, trials=trials, L=lam.size, P=pw.size, max_steps=max_steps)
    _check_signal(func, fn, math.sqrt(float((t * bt) @ bt)))
    solve_ok = (not network) and n >= d and bool(np.all(lam > 0))
    if method == "solve" and not solve_ok:
        raise V.fail(func, "method", "'eigh' or 'auto' unless network=False, n >= d and every lam_G > 0", repr(method))
    if method == "solve" and pw.size:
        raise V.fail(func, "method", "'eigh' or 'auto' when powers are requested (they reuse the eigendecomposition)",
                     repr(method))
    if method == "auto":
        method = "solve" if solve_ok and lam.size <= 2 and not pw.size else "eigh"
    extra = {}
    if pw.size:
        extra["powers"] = pw
    if muon:
        extra["muon"] = True
    if more_t is not None:
        extra["more"], extra["network_teachers"] = more_t, int(network_teachers)
    work = partial(_trial, t=t, bt=bt, n=n, N=N, lam=lam, teacher=fn, student=sfn, noise_std=noise_std,
                   network=bool(network), population=bool(population), method=method,
                   lanczos_tol=lanczos_tol, max_steps=int(max_steps), **extra)
    rows = _run(work, _trial_seeds(func, seed, trials), blas_threads=blas_threads)
    beta_norm = math.sqrt(float(bt @ bt))

    def stack(key):
        return np.array([r[key] for r in rows], dtype=float)

    def cos(inner, sq):
        return inner / (beta_norm * np.sqrt(sq))

    si, ss, ki, ks = stack("sgd_inner"), stack("sgd_sqnorm"), stack("kfac_inner"), stack("kfac_sqnorm")
    comp = stack("companion") if method == "eigh" else None
    pi = stack("population_inner") if population else None
    ps = stack("population_sqnorm") if population else None
    net = bool(network)
    more: dict = {}
    if pw.size:
        more["powers"] = pw
        for key in ("power", "population_power"):
            i, q = stack(key + "_inner"), stack(key + "_sqnorm")
            more[key], more[key + "_inner"], more[key + "_sqnorm"] = cos(i, q), i, q
    if muon:
        for key in ("muon_cos", "muon_spike_gain", "muon_alignment", "muon_raw_ratio", "muon_spike_value",
                    "muon_top_value", "muon_spike_residual", "muon_raw_values"):
            more[key] = stack(key)
    zs, ys = stack("z_sq"), stack("y_sq")
    if more_t is None:
        sgd_c, kfac_c, pop_c = cos(si, ss), cos(ki, ks), (cos(pi, ps) if population else None)
        more_out = {"sgd_paired": sgd_c, "kfac_paired": kfac_c, "sgd_inner_paired": si, "sgd_sqnorm_paired": ss,
                    "z_sq_paired": zs, "y_sq_paired": ys, "population_inner_paired": pi,
                    "population_sqnorm_paired": ps} if net else {}
    else:
        sgd_c, kfac_c = stack("sgd_cos"), stack("kfac_cos")
        pop_c = stack("population_cos") if population else None
        more_out = {k + "_paired": stack(k + "_paired") for k in ("sgd", "kfac") + _PAIRED
                    if population or not k.startswith("population")} if net else {}
    return OneStepResult(
        lam_G=lam, sgd=sgd_c, kfac=kfac_c, sgd_inner=si, sgd_sqnorm=ss, kfac_inner=ki, kfac_sqnorm=ks,
        population=pop_c, population_inner=pi, population_sqnorm=ps, teachers=K, network_teachers=int(network_teachers),
        **more_out,
        sgd_network=stack("sgd_network") if net else None, kfac_network=stack("kfac_network") if net else None,
        sgd_spike_size=stack("sgd_spike_size") if net else None,
        kfac_spike_size=stack("kfac_spike_size") if net else None,
        F0_norm=stack("F0_norm"), lanczos_steps=stack("lanczos_steps").astype(int) if net else None,
        n=n, N=N, d=d, noise_std=noise_std, teacher=tname, student=sname,
        seed=seed, companion=comp, z_sq=zs, y_sq=ys, x_sq=stack("x_sq"), **more,
    )


# --------------------------------------------------------------------------------------------
# test error after one step + ridge head (C13)
# --------------------------------------------------------------------------------------------

def _ridge_head_mse(G: np.ndarray, X2, y2, X3, y3, student, lam_F: float) -> float:
    n2 = X2.shape[0]
    Phi, _ = student(X2 @ G.T)
    Phi = np.array(Phi, copy=True)
    A = Phi.T @ Phi
    A *= 1.0 / n2
    A[np.diag_indices_from(A)] += lam_F
    rhs = Phi.T @ y2 / n2
    a = _la.cho_solve(_la.cho_factor(A, lower=True, check_finite=False), rhs, check_finite=False)
    Phi3, _ = student(X3 @ G.T)
    return float(np.mean((y3 - Phi3 @ a) ** 2))


def _test_trial(seed_seq, *, t, bt, n, n_head, n_test, N, lam, lam_F, spike_norm, teacher, student,
                noise_std) -> dict:
    rng = trial_generator(seed_seq)
    X, y, G0, F0 = _draw(t, bt, n, N, teacher, noise_std, rng)
    d = t.size

    def fresh(m):
        Xf = rng.standard_normal((m, d))
        Xf *= np.sqrt(t)
        yf = np.asarray(teacher(Xf @ bt), dtype=float)
        if noise_std > 0:
            yf = yf + noise_std * rng.standard_normal(m)
        return Xf, yf

    X2, y2 = fresh(n_head)
    X3, y3 = fresh(n_test)
    Delta = _neg_gradient(X, y, G0, F0, student)
    om, W = _eigen_sample_cov(X)
    K = Delta @ W
    Dall = np.concatenate([np.ones((om.size, 1)), 1.0 / (om[:, None] + lam[None, :])], axis=1)
    a = W.T @ (X.T @ y) / n
    theta, _, _ = _top_singular_pairs(lambda Qb: Dall * (K.T @ (K @ (Dall * Qb))), a[:, None] * Dall)
    s1 = np.sqrt(theta)
    out = {"none": _ridge_head_mse(G0, X2, y2, X3, y3, student, lam_F)}
    steps = [(K * Dall[:, j][None, :]) @ W.T * (spike_norm / s1[j]) for j in range(Dall.shape[1])]
    out["sgd"] = _ridge_head_mse(G0 + steps[0], X2, y2, X3, y3, student, lam_F)
    out["kfac"] = np.array([_ridge_head_mse(G0 + st, X2, y2, X3, y3, student, lam_F) for st in steps[1:]])
    return out


def one_step_test_error(Sigma, beta_star, *, n, n_head, n_test, N, lam_G, lam_F, teacher, noise_std, trials,
                        seed, student="tanh", spike_norm: float = 5.0,
                        blas_threads: int | None = None) -> StepMSEResult:
    """Test MSE of a ridge head on the features after one normalised step (docs/theory.md 4.0, Figure 3 note).

    The step :math:`\\Delta G=-\\nabla_G\\hat L\\,\\mathcal P` (from ``n`` samples) is rescaled so its top singular
    value is ``spike_norm``; the head is ridge regression (``lam_F``) on ``n_head`` fresh samples and the
    MSE is measured on ``n_test`` fresh samples. ``none`` keeps :math:`G_0`.
    Other arguments as :func:`one_step`.
    """
    func = "one_step_test_error"
    t, bt = _problem(func, Sigma, beta_star)
    n, n_head, n_test, N = (_int(func, k, v) for k, v in (("n", n), ("n_head", n_head), ("n_test", n_test), ("N", N)))
    lam = _lams(func, lam_G)
    lam_F = V.scalar(func, "lam_F", lam_F, low=0.0, low_open=True)
    spike_norm = V.scalar(func, "spike_norm", spike_norm, low=0.0, low_open=True)
    fn, _ = _teacher(func, teacher)
    noise_std = V.scalar(func, "noise_std", noise_std, low=0.0)
    trials = _int(func, "trials", trials)
    seed = _seed(func, seed)
    sfn, _ = _student(func, student)
    blas_threads = _blas(func, blas_threads)
    _sizes(func, d=t.size, n=n, N=N, trials=trials, L=lam.size, n_head=n_head, n_test=n_test)
    _check_signal(func, fn, math.sqrt(float((t * bt) @ bt)))
    work = partial(_test_trial, t=t, bt=bt, n=n, n_head=n_head, n_test=n_test, N=N, lam=lam, lam_F=lam_F,
                   spike_norm=spike_norm, teacher=fn, student=sfn, noise_std=noise_std)
    rows = _run(work, _trial_seeds(func, seed, trials), blas_threads=blas_threads)
    return StepMSEResult(
        none=np.array([r["none"] for r in rows]), sgd=np.array([r["sgd"] for r in rows]),
        kfac=np.array([r["kfac"] for r in rows]), lam_G=lam, lam_F=lam_F, spike_norm=spike_norm,
        n=n, n_head=n_head, n_test=n_test, N=N, d=t.size,
    )
