"""Single-index model: one-step spike alignments of SGD and KFAC (THEORY.md section 4).

Model (THEORY.md 4.0): :math:`x\\sim\\mathsf N(0,\\Sigma)`, :math:`y=\\sigma^*(\\langle\\beta^*,x\\rangle)+\\varepsilon`,
:math:`z=\\langle\\beta^*,x\\rangle\\sim\\mathsf N(0,s^2)`, :math:`s^2=\\beta^{*\\top}\\Sigma\\beta^*`. Teacher
coefficients :math:`c=\\mathbb E[z\\sigma^*(z)]/s^2`, :math:`\\mathbb E[y^2]=\\mathbb E[\\sigma^*(z)^2]+\\sigma_\\varepsilon^2`,
:math:`\\sigma_r^2=\\mathbb E[y^2]-c^2s^2`. One full-batch step on the first layer learns the spike
(THEORY.md 4.1) :math:`v_{SGD}=X^\\top y/n` or :math:`v_{KFAC}=(\\hat\\Sigma_x+\\lambda_G I)^{-1}X^\\top y/n`.

SGD (THEORY.md 4.2 [R, V]):

.. math::

    \\langle v,\\beta^*\\rangle\\to c\\,s^2,\\qquad
    \\lVert v\\rVert^2\\to c^2\\lVert\\Sigma\\beta^*\\rVert^2+\\mathbb E[y^2]\\,\\mathrm{tr}(\\Sigma)/n,\\qquad
    \\cos(v,\\beta^*)\\to\\frac{c\\,s^2}{\\lVert\\beta^*\\rVert\\sqrt{c^2\\lVert\\Sigma\\beta^*\\rVert^2+\\mathbb E[y^2]\\mathrm{tr}(\\Sigma)/n}},

with the exact finite-:math:`n` refinement
:math:`\\mathbb E\\lVert v\\rVert^2=c^2\\lVert\\Sigma\\beta^*\\rVert^2(1-\\tfrac1n)+\\tfrac1n\\big(\\mathbb E[y^2z^2]\\lVert\\Sigma\\beta^*\\rVert^2/s^4+\\mathbb E[y^2](\\mathrm{tr}\\Sigma-\\lVert\\Sigma\\beta^*\\rVert^2/s^2)\\big)`.
As :math:`\\psi=n/d\\to\\infty` the cosine tends to the cap :math:`\\cos(\\Sigma\\beta^*,\\beta^*)`.

KFAC (Theorem 3.9 [P: exists; formula R, V]): with :math:`\\kappa` from :func:`theory.rmt.kappa`,
:math:`A_1=\\beta^{*\\top}\\Sigma(\\Sigma+\\kappa)^{-1}\\beta^*`, :math:`B=\\lVert\\Sigma(\\Sigma+\\kappa)^{-1}\\beta^*\\rVert^2`,
:math:`E=\\beta^{*\\top}\\Sigma(\\Sigma+\\kappa)^{-2}\\beta^*`, :math:`T_2=\\mathrm{tr}(\\Sigma(\\Sigma+\\kappa)^{-2})/n`,
:math:`D_2=\\mathrm{tr}(\\Sigma^2(\\Sigma+\\kappa)^{-2})/n`,

.. math::

    \\langle v,\\beta^*\\rangle\\to cA_1,\\qquad
    \\lVert v\\rVert^2\\to c^2B+\\frac{(c^2\\kappa^2E+\\sigma_r^2)T_2}{1-D_2},\\qquad
    \\cos(v,\\beta^*)\\to\\frac{cA_1}{\\lVert\\beta^*\\rVert\\sqrt{c^2B+(c^2\\kappa^2E+\\sigma_r^2)T_2/(1-D_2)}}.

Population-preconditioner variant [R, V]: :math:`v=(\\Sigma+\\lambda I)^{-1}X^\\top y/n` has
:math:`\\langle v,\\beta^*\\rangle\\to c\\beta^{*\\top}\\Sigma(\\Sigma+\\lambda)^{-1}\\beta^*` and
:math:`\\lVert v\\rVert^2\\to c^2\\lVert(\\Sigma+\\lambda)^{-1}\\Sigma\\beta^*\\rVert^2+\\mathbb E[y^2]\\mathrm{tr}(\\Sigma(\\Sigma+\\lambda)^{-2})/n`
(also exact at finite :math:`n` in the refined form, since the preconditioner is fixed).

Limits: :math:`\\lambda_G\\to\\infty` recovers SGD; :math:`\\lambda_G\\to0` with :math:`\\psi>1` gives
:math:`\\cos^2\\to c^2\\lVert\\beta^*\\rVert^2/(c^2\\lVert\\beta^*\\rVert^2+\\sigma_r^2\\mathrm{tr}(\\Sigma^{-1})/(n-d))`.
Isotropic closed form (:math:`\\Sigma=I`, :math:`\\lVert\\beta^*\\rVert=1`, :math:`\\gamma=1/\\psi`):
:math:`\\cos^2=c^2/\\big(c^2+\\gamma(c^2\\kappa^2+\\sigma_r^2(1+\\kappa)^2)/((1+\\kappa)^2-\\gamma)\\big)`.

Every formula here is reconstructed [R] (THEORY.md section 0): the paper's exact statement of
Theorem 3.9 and of the SGD proposition are unknown; they were re-derived and checked by simulation.

``Sigma`` is either a (d, d) symmetric positive-definite matrix or a 1-D array of its eigenvalues
(then ``beta_star`` is given in that eigenbasis). One eigendecomposition serves every ``lam_G``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Union

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy import special as _sp

from theory import _validate as V
from theory.rmt import solve_kappa

__all__ = [
    "TEACHERS",
    "TeacherCoefficients",
    "StudentCoefficients",
    "SpikePrediction",
    "teacher_coefficients",
    "student_coefficients",
    "sgd_spike",
    "sgd_alignment",
    "kfac_spike",
    "kfac_alignment",
    "population_spike",
    "population_alignment",
    "sgd_alignment_cap",
    "kfac_alignment_ridgeless",
    "optimal_lam_G",
    "sgd_alignment_law",
    "kfac_alignment_law",
    "kfac_spike_law",
    "sgd_spike_law",
    "two_level_law",
    "sgd_alignment_isotropic",
    "kfac_alignment_isotropic",
]

Teacher = Union[str, Callable[[np.ndarray], np.ndarray], "TeacherCoefficients"]


def _relu(z):
    return np.maximum(z, 0.0)


#: name -> (function, breakpoints where it is not smooth). Polynomials and smooth functions have none.
TEACHERS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[float, ...]]] = {
    "tanh": (np.tanh, ()),
    "erf": (_sp.erf, ()),
    "relu": (_relu, (0.0,)),
    "linear": (lambda z: np.asarray(z, dtype=float) * 1.0, ()),
    "sigmoid": (_sp.expit, ()),
    "softplus": (lambda z: np.logaddexp(0.0, z), ()),
    "abs": (np.abs, (0.0,)),
    "cubic": (lambda z: np.asarray(z, dtype=float) ** 3, ()),
    "he2": (lambda z: np.asarray(z, dtype=float) ** 2 - 1.0, ()),
}

_GH_NODES = 200       # probabilists' Gauss-Hermite: exact for polynomials of degree < 400
_GH_NODES_CHECK = 300  # second Gauss-Hermite rule: the two must agree, else the split rule is used
_PANEL = 0.5          # composite Gauss-Legendre panel width (in units of the standard normal)
_PANEL_NODES = 20
_CUTOFF = 12.0        # phi(12) = 5e-32: the tails beyond are below 1e-12 for polynomial growth
_C_ZERO_RTOL = 1e-10  # |c| s / rms(sigma*) below this counts as c = 0


@dataclass(frozen=True)
class TeacherCoefficients:
    """Hermite/Stein coefficients of a teacher at input scale ``s`` (THEORY.md 4.0).

    c: first Hermite coefficient :math:`\\mathbb E[z\\sigma^*(z)]/s^2=\\mathbb E[\\sigma^{*\\prime}(z)]`.
    Ey2: :math:`\\mathbb E[y^2]=\\mathbb E[\\sigma^*(z)^2]+\\sigma_\\varepsilon^2`.
    sigma_r2: effective noise :math:`\\mathbb E[y^2]-c^2s^2` (teacher mean, nonlinear part and noise).
    mean: :math:`\\mathbb E[\\sigma^*(z)]`. Ey2z2: :math:`\\mathbb E[y^2z^2]` (finite-n SGD refinement).
    s: input scale, :math:`z\\sim\\mathsf N(0,s^2)`. noise_std: :math:`\\sigma_\\varepsilon`.
    name: the teacher's name (or the callable's repr).
    """

    c: float
    Ey2: float
    sigma_r2: float
    mean: float
    Ey2z2: float
    s: float
    noise_std: float
    name: str


@dataclass(frozen=True)
class StudentCoefficients:
    """Student activation moments at pre-activation variance ``variance``.

    mu0: :math:`\\mathbb E[\\sigma(\\xi)]`; mu1: :math:`\\mathbb E[\\sigma'(\\xi)]=\\mathbb E[\\xi\\sigma(\\xi)]/v`,
    :math:`\\xi\\sim\\mathsf N(0,v)`. The one-step spike has size :math:`\\eta\\mu_1\\lVert F_0\\rVert\\lVert v\\rVert`
    (THEORY.md 4.1).
    """

    mu0: float
    mu1: float
    variance: float


@dataclass(frozen=True)
class SpikePrediction:
    """Deterministic equivalents of one spike vector (arrays shaped like ``lam_G``; floats for SGD).

    inner: :math:`\\langle v,\\beta^*\\rangle`. sqnorm: :math:`\\lVert v\\rVert^2`.
    cos: :math:`\\cos(v,\\beta^*)=\\text{inner}/(\\lVert\\beta^*\\rVert\\sqrt{\\text{sqnorm}})`.
    kappa: the fixed point of Theorem 3.9 (KFAC only; ``None`` otherwise).
    """

    inner: np.ndarray | float
    sqnorm: np.ndarray | float
    cos: np.ndarray | float
    kappa: np.ndarray | float | None = None


# --------------------------------------------------------------------------------------------
# quadrature
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=2)
def _gauss_hermite(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = hermegauss(nodes)
    x.setflags(write=False)
    w = w / math.sqrt(2.0 * math.pi)
    w.setflags(write=False)
    return x, w


@lru_cache(maxsize=64)
def _split_rule(breaks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes/weights for the standard normal on [-12, 12], split at ``breaks``."""
    edges = np.arange(-_CUTOFF, _CUTOFF + 0.5 * _PANEL, _PANEL)
    inner = [b for b in breaks if -_CUTOFF < b < _CUTOFF]
    edges = np.unique(np.concatenate([edges, np.asarray(inner, dtype=float)]))
    xg, wg = leggauss(_PANEL_NODES)
    a, b = edges[:-1, None], edges[1:, None]
    x = (0.5 * (a + b) + 0.5 * (b - a) * xg[None, :]).ravel()
    w = (0.5 * (b - a) * wg[None, :]).ravel() * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def _resolve(func: str, name: str, f) -> tuple[Callable, tuple[float, ...] | None, str]:
    """(function, breakpoints or None for 'unknown smoothness', label)."""
    if isinstance(f, str):
        if f not in TEACHERS:
            raise V.fail(func, name, f"one of {tuple(TEACHERS)} or a callable", repr(f))
        fn, br = TEACHERS[f]
        return fn, br, f
    if isinstance(f, np.polynomial.polynomial.ABCPolyBase):
        return f, (), repr(f)
    if callable(f):
        return f, None, getattr(f, "__name__", repr(f))
    raise V.fail(func, name, f"one of {tuple(TEACHERS)} or a callable", type(f).__name__)


def _rule(breaks: tuple[float, ...] | None, quadrature: str, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (in units of a standard normal) and weights for E[f(s xi)] (split rule)."""
    br = (0.0,) + tuple(b / s for b in (breaks or ()))
    return _split_rule(br)


def _expect(func: str, name: str, fn: Callable, breaks: tuple[float, ...] | None, quadrature: str, s: float,
            moments: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Gaussian expectations ``moments(xi, f(s xi))`` (rows) by the chosen quadrature.

    ``"auto"``: Gauss-Hermite with 200 and with 300 nodes for smooth integrands (``breaks == ()``),
    accepted when the two agree to 1e-14 relative (exact for polynomials of degree < 400; analytic
    functions converge geometrically), otherwise - and for kinked or unknown integrands - the
    split composite Gauss-Legendre rule (panels of 0.5, 20 nodes, split at 0 and at the kinks).
    """
    def run(x, w):
        try:
            vals = fn(s * x)
        except Exception as exc:  # noqa: BLE001 - report any failure of a user callable
            raise V.fail(func, name, "a callable mapping an array of floats to floats", f"error {exc!r}") from None
        return moments(x, vals) @ w

    if quadrature == "hermite" or (quadrature == "auto" and breaks == ()):
        a = run(*_gauss_hermite(_GH_NODES))
        if quadrature == "hermite":
            return a
        b = run(*_gauss_hermite(_GH_NODES_CHECK))
        if np.all(np.abs(a - b) <= 1e-14 * np.maximum(np.abs(b), 1.0)):
            return b
    return run(*_rule(breaks, quadrature, s))


def _eval(func: str, name: str, val, z: np.ndarray) -> np.ndarray:
    """Check the values ``val`` of a teacher/student at the nodes ``z`` (finite, one per node)."""
    try:
        val = np.asarray(val, dtype=float)
    except (TypeError, ValueError):
        raise V.fail(func, name, "a callable mapping an array of floats to floats", type(val).__name__) from None
    if val.shape != z.shape:
        val = np.broadcast_to(val, z.shape)
    if not np.all(np.isfinite(val)):
        raise V.fail(func, name, "finite on the real line", "non-finite values")
    return val


def teacher_coefficients(teacher, *, s=1.0, noise_std=0.0, quadrature: str = "auto",
                         breakpoints: tuple[float, ...] | None = None) -> TeacherCoefficients:
    """Coefficients :math:`c`, :math:`\\mathbb E[y^2]`, :math:`\\sigma_r^2` of a teacher (THEORY.md 4.0).

    teacher: a name in :data:`TEACHERS` (``"tanh"``, ``"relu"``, ``"erf"``, ...), a numpy polynomial,
        or any callable acting elementwise on arrays.
    s: input scale, :math:`z=\\langle\\beta^*,x\\rangle\\sim\\mathsf N(0,s^2)` (> 0).
    noise_std: label noise :math:`\\sigma_\\varepsilon\\ge0`.
    quadrature: ``"auto"`` (probabilists' Gauss-Hermite with 200 nodes for smooth named teachers
        and polynomials; composite Gauss-Legendre split at 0 and at the kinks for kinked teachers and
        for callables of unknown smoothness), ``"hermite"`` or ``"split"``.
    breakpoints: kinks of a callable teacher (in units of z), e.g. ``(0.0,)``; implies ``"split"``.
    Accuracy: better than 1e-12 for tanh, relu, erf and polynomials (tested against closed forms
    and mpmath).

    >>> tc = teacher_coefficients("relu")
    >>> round(tc.c, 12), round(tc.Ey2, 12)
    (0.5, 0.5)
    """
    func = "teacher_coefficients"
    fn, br, label = _resolve(func, "teacher", teacher)
    s = V.scalar(func, "s", s, low=0.0, low_open=True)
    noise_std = V.scalar(func, "noise_std", noise_std, low=0.0)
    V.choice(func, "quadrature", quadrature, ("auto", "hermite", "split"))
    if breakpoints is not None:
        br = tuple(float(b) for b in breakpoints)
        if quadrature == "auto":
            quadrature = "split"
    noise2 = noise_std ** 2

    def moments(x, f):
        f = _eval(func, "teacher", f, x)
        f2 = f * f
        return np.stack([x * f, f2, f, f2 * x * x])

    Exf, Ef2, Ef, Ef2x2 = _expect(func, "teacher", fn, br, quadrature, s, moments)
    c = float(Exf) / s                         # E[z f(z)]/s^2 with z = s xi
    Ey2 = float(Ef2) + noise2
    Ey2z2 = float(Ef2x2) * s * s + noise2 * s * s
    sigma_r2 = max(Ey2 - c * c * s * s, 0.0)
    return TeacherCoefficients(c=c, Ey2=Ey2, sigma_r2=sigma_r2, mean=float(Ef), Ey2z2=Ey2z2,
                               s=s, noise_std=noise_std, name=label)


def student_coefficients(student="tanh", *, variance=1.0) -> StudentCoefficients:
    """Moments :math:`\\mu_0=\\mathbb E\\sigma(\\xi)`, :math:`\\mu_1=\\mathbb E\\sigma'(\\xi)` of the student, :math:`\\xi\\sim\\mathsf N(0,v)`.

    student: a name in :data:`TEACHERS` or a callable (:math:`\\mu_1` by Stein's identity
        :math:`\\mathbb E[\\xi\\sigma(\\xi)]/v`, so no derivative is needed).
    variance: pre-activation variance :math:`v=\\mathrm{tr}(\\Sigma)/d` under the init of THEORY.md 4.0.

    >>> round(student_coefficients("relu").mu1, 12)
    0.5
    """
    func = "student_coefficients"
    fn, br, _ = _resolve(func, "student", student)
    v = V.scalar(func, "variance", variance, low=0.0, low_open=True)
    s = math.sqrt(v)

    def moments(x, f):
        f = _eval(func, "student", f, x)
        return np.stack([f, x * f])

    Ef, Exf = _expect(func, "student", fn, br, "auto", s, moments)
    return StudentCoefficients(mu0=float(Ef), mu1=float(Exf) / s, variance=v)


# --------------------------------------------------------------------------------------------
# problem handling
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    t: np.ndarray   # eigenvalues (atoms)
    b: np.ndarray   # quadratic-form masses (u_i' beta*)^2
    q: np.ndarray   # trace weights: 1/n (finite) or H-mass/psi (limit)
    n: float | None  # finite sample size (None in the limit)

    @property
    def beta_sq(self) -> float:
        return float(self.b.sum())

    @property
    def s2(self) -> float:
        return float(self.b @ self.t)

    @property
    def gamma(self) -> float:
        return float(self.q.sum())


def _spectral(func: str, Sigma, beta_star) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of Sigma and the squared components of beta* in its eigenbasis."""
    S = np.asarray(Sigma, dtype=float) if not isinstance(Sigma, np.ndarray) else Sigma
    if S.ndim == 1:
        t = V.array(func, "Sigma", S, ndim=1)
        if t.size < 1 or np.any(t <= 0):
            raise V.fail(func, "Sigma", "a (d, d) symmetric positive-definite matrix or a 1-D array of positive eigenvalues",
                         f"eigenvalues down to {t.min() if t.size else 'none'}")
        beta = V.array(func, "beta_star", beta_star, ndim=1)
        if beta.shape != t.shape:
            raise V.fail(func, "beta_star", f"a 1-D array of length d = {t.size}", f"length {beta.size}")
        bt = beta
    else:
        S = V.spd(func, "Sigma", S)
        beta = V.array(func, "beta_star", beta_star, ndim=1)
        if beta.shape != (S.shape[0],):
            raise V.fail(func, "beta_star", f"a 1-D array of length d = {S.shape[0]}", f"length {beta.size}")
        t, O = np.linalg.eigh(S)
        if t[0] <= 0:
            raise V.fail(func, "Sigma", "positive-definite", f"smallest eigenvalue {t[0]:.3e}")
        bt = O.T @ beta
    if not np.any(beta != 0):
        raise V.fail(func, "beta_star", "nonzero", "the zero vector")
    return t, bt * bt


def _finite(func: str, Sigma, beta_star, n) -> _Spec:
    t, b = _spectral(func, Sigma, beta_star)
    n = V.scalar(func, "n", n, low=1.0)
    return _Spec(t, b, np.full(t.shape, 1.0 / n), n)


def _law(func: str, eigenvalues, h, g, psi) -> _Spec:
    t = V.array(func, "eigenvalues", eigenvalues, ndim=1)
    if t.size < 1 or np.any(t <= 0):
        raise V.fail(func, "eigenvalues", "a non-empty 1-D array of positive atoms", "other values")
    h = V.array(func, "h", h, ndim=1)
    g = V.array(func, "g", g, ndim=1)
    for name, a in (("h", h), ("g", g)):
        if a.shape != t.shape or np.any(a < 0) or not np.any(a > 0):
            raise V.fail(func, name, f"non-negative masses of shape {t.shape} with a positive entry", "other values")
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    return _Spec(t, g, h / h.sum() / psi, None)


def _coeffs(func: str, teacher, s: float, noise_std) -> TeacherCoefficients:
    noise_std = V.scalar(func, "noise_std", noise_std, low=0.0)
    if isinstance(teacher, TeacherCoefficients):
        tc = teacher
        if abs(tc.s - s) > 1e-9 * s or abs(tc.noise_std - noise_std) > 1e-12 * max(1.0, noise_std):
            raise V.fail(func, "teacher", f"coefficients computed at s = {s:.12g}, noise_std = {noise_std:.12g}",
                         f"s = {tc.s:.12g}, noise_std = {tc.noise_std:.12g}")
    else:
        tc = teacher_coefficients(teacher, s=s, noise_std=noise_std)
    rms = math.sqrt(max(tc.Ey2 - tc.noise_std ** 2, 0.0))
    if not abs(tc.c) * s > _C_ZERO_RTOL * rms:
        raise V.fail(func, "teacher", "a teacher with nonzero first Hermite coefficient c = E[z sigma*(z)]/s^2 "
                     "(information exponent 1)",
                     f"c = {tc.c:.3g} for {tc.name!r}: information exponent above 1, the one-step spike "
                     "carries no signal about beta_star")
    return tc


def _lam(func: str, lam) -> np.ndarray:
    a = V.array(func, "lam_G", lam)
    if np.any(a < 0):
        raise V.fail(func, "lam_G", ">= 0", f"minimum {a.min():.3e}")
    return a


def _shape(x, like: np.ndarray):
    x = np.asarray(x, dtype=float)
    return float(x.reshape(-1)[0]) if like.ndim == 0 else x.reshape(like.shape)


# --------------------------------------------------------------------------------------------
# cores (spectral form)
# --------------------------------------------------------------------------------------------

def _cos(inner, sqnorm, beta_sq):
    inner = np.asarray(inner, dtype=float)
    sqnorm = np.asarray(sqnorm, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = inner / (math.sqrt(beta_sq) * np.sqrt(sqnorm))
    return np.where(np.isinf(sqnorm), 0.0, c)


def _linear_core(sp: _Spec, tc: TeacherCoefficients, p: np.ndarray, finite_n: bool) -> tuple[np.ndarray, np.ndarray]:
    """Spike v = P X'y/n for a fixed diagonal preconditioner P (rows of ``p``: its diagonals).

    p: (m, d) diagonal entries of P in Sigma's eigenbasis. Returns (inner, sqnorm), shape (m,).
    """
    t, b, q = sp.t, sp.b, sp.q
    c = tc.c
    PSb = (p * t) ** 2 @ b                      # ||P Sigma beta||^2
    inner = c * ((p * t) @ b)                   # c beta' P Sigma beta
    trPSP = (p * p * t) @ q                     # tr(P Sigma P)/n
    if not finite_n:
        return inner, c * c * PSb + tc.Ey2 * trPSP
    n = sp.n
    s2 = sp.s2
    # exact for Gaussian x: E||v||^2 = c^2||PSb||^2 (1-1/n) + (1/n) E[y^2 ||P x||^2]
    Ey2Px2 = tc.Ey2z2 * PSb / s2 ** 2 + tc.Ey2 * (n * trPSP - PSb / s2)
    return inner, c * c * PSb * (1.0 - 1.0 / n) + Ey2Px2 / n


def _kfac_core(sp: _Spec, tc: TeacherCoefficients, lam: np.ndarray) -> SpikePrediction:
    t, b, q = sp.t[:, None], sp.b[:, None], sp.q[:, None]
    flat = lam.ravel()
    k = solve_kappa(sp.t, sp.q, flat)[None, :]
    tk = t + k
    r = t / tk
    A1 = (b * r).sum(axis=0)
    B = (b * r * r).sum(axis=0)
    E = (b * t / (tk * tk)).sum(axis=0)
    T2 = (q * t / (tk * tk)).sum(axis=0)
    gamma = sp.gamma
    if abs(gamma - 1.0) <= 1e-12:
        gamma = 1.0
    # 1 - D2 = (1 - gamma) + kappa * sum q (2t + kappa)/(t + kappa)^2, free of cancellation
    one_minus_D2 = (1.0 - gamma) + (k * (q * (2.0 * t + k) / (tk * tk))).sum(axis=0)
    c = tc.c
    k0 = k[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = (c * c * k0 * k0 * E + tc.sigma_r2) * T2 / one_minus_D2
    noise = np.where(one_minus_D2 <= 0, np.inf, noise)  # psi = 1, lam_G = 0: the ridgeless blow-up
    inner = c * A1
    sqnorm = c * c * B + noise
    cos = _cos(inner, sqnorm, sp.beta_sq)
    return SpikePrediction(_shape(inner, lam), _shape(sqnorm, lam), _shape(cos, lam), _shape(k0, lam))


# --------------------------------------------------------------------------------------------
# public: finite form (Sigma, beta_star, n)
# --------------------------------------------------------------------------------------------

def sgd_spike(Sigma, beta_star, *, n, teacher, noise_std, finite_n: bool = False) -> SpikePrediction:
    """Components of the SGD spike :math:`v=X^\\top y/n` (THEORY.md 4.2).

    Sigma: (d, d) SPD covariance, or (d,) eigenvalues with ``beta_star`` in that eigenbasis.
    beta_star: (d,) nonzero teacher direction :math:`\\beta^*`.
    n: batch size (>= 1).
    teacher: name, callable or :class:`TeacherCoefficients` (at :math:`s^2=\\beta^{*\\top}\\Sigma\\beta^*`).
    noise_std: label noise :math:`\\sigma_\\varepsilon`.
    finite_n: use the exact finite-n expectation of :math:`\\lVert v\\rVert^2` (Gaussian x);
        :math:`\\mathbb E\\langle v,\\beta^*\\rangle=cs^2` is exact either way.
    """
    func = "sgd_spike"
    sp = _finite(func, Sigma, beta_star, n)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    inner, sq = _linear_core(sp, tc, np.ones((1, sp.t.size)), bool(finite_n))
    return SpikePrediction(float(inner[0]), float(sq[0]), float(_cos(inner, sq, sp.beta_sq)[0]))


def sgd_alignment(Sigma, beta_star, *, n, teacher, noise_std, finite_n: bool = False) -> float:
    """:math:`\\cos(v_{SGD},\\beta^*)` of THEORY.md 4.2 (arguments as :func:`sgd_spike`).

    >>> round(sgd_alignment([1.0] * 4, [0.5] * 4, n=8, teacher="linear", noise_std=0.0) ** 2, 12)  # c^2/(c^2+Ey2/psi)
    0.666666666667
    """
    return sgd_spike(Sigma, beta_star, n=n, teacher=teacher, noise_std=noise_std, finite_n=finite_n).cos


def kfac_spike(Sigma, beta_star, *, n, lam_G, teacher, noise_std) -> SpikePrediction:
    """Components of the KFAC spike :math:`v=(\\hat\\Sigma_x+\\lambda_GI)^{-1}X^\\top y/n` (Theorem 3.9).

    Sigma, beta_star, n, teacher, noise_std: as :func:`sgd_spike`.
    lam_G: ridge :math:`\\lambda_G\\ge0`, float or array; the outputs have its shape.
    """
    func = "kfac_spike"
    sp = _finite(func, Sigma, beta_star, n)
    lam = _lam(func, lam_G)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    return _kfac_core(sp, tc, lam)


def kfac_alignment(Sigma, beta_star, *, n, lam_G, teacher, noise_std):
    """:math:`\\cos(v_{KFAC},\\beta^*)` of Theorem 3.9, vectorised over ``lam_G`` (see :func:`kfac_spike`).

    >>> import numpy as np
    >>> a = kfac_alignment(np.ones(10), np.full(10, 10 ** -0.5), n=20, lam_G=[1e6], teacher="tanh", noise_std=0.1)
    >>> b = sgd_alignment(np.ones(10), np.full(10, 10 ** -0.5), n=20, teacher="tanh", noise_std=0.1)
    >>> bool(abs(a[0] - b) < 1e-5)   # lam_G -> infinity recovers SGD
    True
    """
    return kfac_spike(Sigma, beta_star, n=n, lam_G=lam_G, teacher=teacher, noise_std=noise_std).cos


def population_spike(Sigma, beta_star, *, n, lam_G, teacher, noise_std, finite_n: bool = False) -> SpikePrediction:
    """Spike with the population preconditioner, :math:`v=(\\Sigma+\\lambda_GI)^{-1}X^\\top y/n` (variant of Thm 3.9).

    Arguments as :func:`kfac_spike`; ``finite_n`` uses the exact finite-n second moment.
    """
    func = "population_spike"
    sp = _finite(func, Sigma, beta_star, n)
    lam = _lam(func, lam_G)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    p = 1.0 / (sp.t[None, :] + lam.ravel()[:, None])
    inner, sq = _linear_core(sp, tc, p, bool(finite_n))
    return SpikePrediction(_shape(inner, lam), _shape(sq, lam), _shape(_cos(inner, sq, sp.beta_sq), lam))


def population_alignment(Sigma, beta_star, *, n, lam_G, teacher, noise_std, finite_n: bool = False):
    """:math:`\\cos((\\Sigma+\\lambda_GI)^{-1}X^\\top y/n,\\beta^*)`, vectorised over ``lam_G``."""
    return population_spike(Sigma, beta_star, n=n, lam_G=lam_G, teacher=teacher, noise_std=noise_std,
                            finite_n=finite_n).cos


def sgd_alignment_cap(Sigma, beta_star) -> float:
    """The :math:`\\psi\\to\\infty` limit of the SGD alignment: :math:`\\cos(\\Sigma\\beta^*,\\beta^*)` (THEORY.md 4.2).

    Below 1 unless :math:`\\beta^*` is an eigenvector: more data does not remove SGD's bias.
    """
    t, b = _spectral("sgd_alignment_cap", Sigma, beta_star)
    return float((t @ b) / math.sqrt(b.sum() * ((t * t) @ b)))


def kfac_alignment_ridgeless(Sigma, beta_star, *, n, teacher, noise_std) -> float:
    """:math:`\\lambda_G\\to0` limit of Theorem 3.9 for :math:`n>d` (THEORY.md, Theorem 3.9 limits).

    :math:`\\cos^2=c^2\\lVert\\beta^*\\rVert^2/(c^2\\lVert\\beta^*\\rVert^2+\\sigma_r^2\\mathrm{tr}(\\Sigma^{-1})/(n-d))`,
    which tends to 1 as :math:`\\psi\\to\\infty` (no bias). Arguments as :func:`sgd_spike`; needs ``n > d``.
    """
    func = "kfac_alignment_ridgeless"
    sp = _finite(func, Sigma, beta_star, n)
    d = sp.t.size
    if not sp.n > d:
        raise V.fail(func, "n", f"> d = {d} (the ridgeless limit needs psi > 1)", sp.n)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    c2b = tc.c ** 2 * sp.beta_sq
    return float(math.copysign(math.sqrt(c2b / (c2b + tc.sigma_r2 * float(np.sum(1.0 / sp.t)) / (sp.n - d))), tc.c))


def optimal_lam_G(Sigma, beta_star, *, n, teacher, noise_std, bounds=(1e-8, 1e4)) -> tuple[float, float]:
    """The ridge maximising Theorem 3.9's alignment (bounded search over :math:`\\log\\lambda_G`).

    Returns ``(lam_G, cos)``. Arguments as :func:`kfac_spike`; ``bounds`` the search interval.
    """
    from scipy.optimize import minimize_scalar

    func = "optimal_lam_G"
    sp = _finite(func, Sigma, beta_star, n)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    lo, hi = (V.scalar(func, "bounds", x, low=0.0, low_open=True) for x in bounds)
    grid = np.geomspace(lo, hi, 61)
    cos = np.asarray(_kfac_core(sp, tc, grid).cos)
    j = int(np.argmax(cos))
    a, b = math.log(grid[max(j - 1, 0)]), math.log(grid[min(j + 1, grid.size - 1)])
    res = minimize_scalar(lambda u: -float(_kfac_core(sp, tc, np.asarray(math.exp(u))).cos),
                          bounds=(a, b), method="bounded", options={"xatol": 1e-10})
    lam = math.exp(res.x)
    return lam, float(-res.fun)


# --------------------------------------------------------------------------------------------
# public: limiting laws (H, G, psi) and the isotropic closed forms
# --------------------------------------------------------------------------------------------

def two_level_law(eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Atoms and masses of the Figure 3 spectral law (THEORY.md section 5) [R].

    Half the mass at 1 and half at :math:`1-\\epsilon`, rescaled to mean 1. For :math:`\\beta^*`
    uniformly random with :math:`s=1`, the law :math:`\\mathcal G` equals :math:`H`.
    """
    eps = V.scalar("two_level_law", "eps", eps, low=0.0, high=1.0, high_open=True)
    t = np.array([1.0, 1.0 - eps])
    return t / t.mean(), np.array([0.5, 0.5])


def sgd_spike_law(eigenvalues, *, h, g, psi, teacher, noise_std) -> SpikePrediction:
    """SGD components in the proportional limit (THEORY.md 4.2, integral form).

    eigenvalues: atoms of :math:`H`; h: masses of :math:`H`; g: masses of :math:`\\mathcal G`
    (:math:`\\sum_i(u_i^\\top\\beta^*)^2\\delta_{\\lambda_i}`) at the same atoms; psi: :math:`n/d`.
    """
    func = "sgd_spike_law"
    sp = _law(func, eigenvalues, h, g, psi)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    inner, sq = _linear_core(sp, tc, np.ones((1, sp.t.size)), False)
    return SpikePrediction(float(inner[0]), float(sq[0]), float(_cos(inner, sq, sp.beta_sq)[0]))


def sgd_alignment_law(eigenvalues, *, h, g, psi, teacher, noise_std) -> float:
    """:math:`\\cos(v_{SGD},\\beta^*)` in the limit (see :func:`sgd_spike_law`)."""
    return sgd_spike_law(eigenvalues, h=h, g=g, psi=psi, teacher=teacher, noise_std=noise_std).cos


def kfac_spike_law(eigenvalues, *, h, g, psi, lam_G, teacher, noise_std) -> SpikePrediction:
    """Theorem 3.9 components in the limit: traces/n become :math:`\\psi^{-1}\\int\\cdot\\,dH`."""
    func = "kfac_spike_law"
    sp = _law(func, eigenvalues, h, g, psi)
    lam = _lam(func, lam_G)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    return _kfac_core(sp, tc, lam)


def kfac_alignment_law(eigenvalues, *, h, g, psi, lam_G, teacher, noise_std):
    """:math:`\\cos(v_{KFAC},\\beta^*)` in the limit, vectorised over ``lam_G`` (see :func:`kfac_spike_law`).

    >>> t, h = two_level_law(0.9)
    >>> round(float(kfac_alignment_law(t, h=h, g=h, psi=2, lam_G=0.1, teacher="tanh", noise_std=0.1)), 2)
    0.9
    """
    return kfac_spike_law(eigenvalues, h=h, g=g, psi=psi, lam_G=lam_G, teacher=teacher, noise_std=noise_std).cos


def sgd_alignment_isotropic(*, psi, c, Ey2) -> float:
    """Isotropic SGD alignment, :math:`\\cos^2=c^2/(c^2+\\mathbb E[y^2]/\\psi)` (:math:`\\Sigma=I`, :math:`\\lVert\\beta^*\\rVert=1`)."""
    func = "sgd_alignment_isotropic"
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    c = V.scalar(func, "c", c)
    Ey2 = V.scalar(func, "Ey2", Ey2, low=0.0)
    return float(math.copysign(math.sqrt(c * c / (c * c + Ey2 / psi)), c)) if c != 0 else 0.0


def kfac_alignment_isotropic(*, psi, lam_G, c, sigma_r2):
    """Isotropic closed form of Theorem 3.9 (:math:`\\Sigma=I`, :math:`\\lVert\\beta^*\\rVert=1`), vectorised in ``lam_G``.

    :math:`\\cos^2=c^2/\\big(c^2+\\gamma(c^2\\kappa^2+\\sigma_r^2(1+\\kappa)^2)/((1+\\kappa)^2-\\gamma)\\big)`,
    :math:`\\gamma=1/\\psi`, :math:`\\kappa` from :func:`theory.rmt.kappa_isotropic`.
    """
    from theory.rmt import kappa_isotropic

    func = "kfac_alignment_isotropic"
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    lam = _lam(func, lam_G)
    c = V.scalar(func, "c", c)
    sigma_r2 = V.scalar(func, "sigma_r2", sigma_r2, low=0.0)
    k = np.asarray(kappa_isotropic(psi=psi, lam=lam))
    g = 1.0 / psi
    den = (1.0 + k) ** 2 - g
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.where(den > 0, g * (c * c * k * k + sigma_r2 * (1.0 + k) ** 2) / den, np.inf)
        cos2 = c * c / (c * c + extra)
    return _shape(np.sign(c) * np.sqrt(cos2), lam)
