"""Single-index model: one-step spike alignments of SGD and KFAC (docs/theory.md section 4).

Model (docs/theory.md 4.0): :math:`x\\sim\\mathsf N(0,\\Sigma)`, :math:`y=\\sigma^*(\\langle\\beta^*,x\\rangle)+\\varepsilon`,
:math:`z=\\langle\\beta^*,x\\rangle\\sim\\mathsf N(0,s^2)`, :math:`s^2=\\beta^{*\\top}\\Sigma\\beta^*`. Teacher
coefficients :math:`c=\\mathbb E[z\\sigma^*(z)]/s^2`, :math:`\\mathbb E[y^2]=\\mathbb E[\\sigma^*(z)^2]+\\sigma_\\varepsilon^2`,
:math:`\\sigma_r^2=\\mathbb E[y^2]-c^2s^2`. One full-batch step on the first layer learns the spike
(docs/theory.md 4.1) :math:`v_{SGD}=X^\\top y/n` or :math:`v_{KFAC}=(\\hat\\Sigma_x+\\lambda_G I)^{-1}X^\\top y/n`.

SGD (docs/theory.md 4.2 [R, V]):

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

Population power preconditioner [R, V] (docs/theory.md, "Population power preconditioner"): any fixed
:math:`P=\\phi(\\Sigma)`, in particular :math:`P=(\\Sigma+\\lambda I)^{-p}`, :math:`p\\in[0,1]`
(:math:`p=0` SGD, :math:`p=1` the population variant), has the exact finite-:math:`n` moments

.. math::

    \\mathbb E\\langle v,\\beta^*\\rangle=c\\,\\beta^{*\\top}P\\Sigma\\beta^*,\\qquad
    \\mathbb E\\lVert v\\rVert^2=c^2\\lVert P\\Sigma\\beta^*\\rVert^2\\big(1-\\tfrac1n\\big)
    +\\tfrac1n\\Big(\\mathbb E[y^2z^2]\\frac{\\lVert P\\Sigma\\beta^*\\rVert^2}{s^4}
    +\\mathbb E[y^2]\\Big(\\mathrm{tr}(P\\Sigma P)-\\frac{\\lVert P\\Sigma\\beta^*\\rVert^2}{s^2}\\Big)\\Big),

whose proportional limit is :math:`c^2\\lVert P\\Sigma\\beta^*\\rVert^2+\\mathbb E[y^2]\\mathrm{tr}(P\\Sigma P)/n`.
The same-batch powers :math:`(\\hat\\Sigma_x+\\lambda I)^{-p}`, :math:`0<p<1`, have no formula here.

Limits: :math:`\\lambda_G\\to\\infty` recovers SGD; :math:`\\lambda_G\\to0` with :math:`\\psi>1` gives
:math:`\\cos^2\\to c^2\\lVert\\beta^*\\rVert^2/(c^2\\lVert\\beta^*\\rVert^2+\\sigma_r^2\\mathrm{tr}(\\Sigma^{-1})/(n-d))`.
Isotropic closed form (:math:`\\Sigma=I`, :math:`\\lVert\\beta^*\\rVert=1`, :math:`\\gamma=1/\\psi`):
:math:`\\cos^2=c^2/\\big(c^2+\\gamma(c^2\\kappa^2+\\sigma_r^2(1+\\kappa)^2)/((1+\\kappa)^2-\\gamma)\\big)`.

Every formula here is reconstructed [R] (docs/theory.md section 0): the paper's exact statement of
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
from theory.rmt import _solve_kappa

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
    "population_function_spike",
    "population_function_alignment",
    "population_power_spike",
    "population_power_alignment",
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
_TAIL = 37.5          # callables: integrate out to |x| = 37.5 (phi(37.5) = 1.5e-306, still a normal float)
_TAIL_OUTER = 37.0    # ... and require the panel |x| in [37, 37.5] to be negligible:
_TAIL_RTOL = 1e-16    # below 1e-16 of the integral of |integrand| (else: divergent or too slowly decaying)
_C_ZERO_RTOL = 1e-10  # |c| s / rms(sigma*) below this counts as c = 0
_CALLABLE = "a callable mapping an array of floats to finite real values of the same shape"
_FINITE_MOMENTS = ("a function with finite Gaussian moments E[sigma(z)^2 z^2] (z ~ N(0, s^2); the integrand "
                   f"must decay below {_TAIL_RTOL:g} of its integral by |z| = {_TAIL:g} s)")


@dataclass(frozen=True)
class TeacherCoefficients:
    """Hermite/Stein coefficients of a teacher at input scale ``s`` (docs/theory.md 4.0).

    c: first Hermite coefficient :math:`\\mathbb E[z\\sigma^*(z)]/s^2=\\mathbb E[\\sigma^{*\\prime}(z)]`.
    Ey2: :math:`\\mathbb E[y^2]=\\mathbb E[\\sigma^*(z)^2]+\\sigma_\\varepsilon^2`.
    sigma_r2: effective noise :math:`\\mathbb E[y^2]-c^2s^2` (teacher mean, nonlinear part and noise).
    mean: :math:`\\mathbb E[\\sigma^*(z)]`. Ey2z2: :math:`\\mathbb E[y^2z^2]` (finite-n SGD refinement;
    ``inf`` where it exceeds the float range, e.g. a bounded teacher at :math:`s>10^{154}`).
    s: input scale, :math:`z\\sim\\mathsf N(0,s^2)`. noise_std: :math:`\\sigma_\\varepsilon`.
    name: the teacher's name (or the callable's repr).
    Ey2xi2: :math:`\\mathbb E[y^2z^2]/s^2=\\mathbb E[y^2\\xi^2]`, :math:`\\xi=z/s` (always representable when
    :math:`\\mathbb E[y^2]` is; ``None``: computed from ``Ey2z2``).
    """

    c: float
    Ey2: float
    sigma_r2: float
    mean: float
    Ey2z2: float
    s: float
    noise_std: float
    name: str
    Ey2xi2: float | None = None

    @property
    def _Ey2xi2(self) -> float:
        return self.Ey2z2 / (self.s * self.s) if self.Ey2xi2 is None else self.Ey2xi2


@dataclass(frozen=True)
class StudentCoefficients:
    """Student activation moments at pre-activation variance ``variance``.

    mu0: :math:`\\mathbb E[\\sigma(\\xi)]`; mu1: :math:`\\mathbb E[\\sigma'(\\xi)]=\\mathbb E[\\xi\\sigma(\\xi)]/v`,
    :math:`\\xi\\sim\\mathsf N(0,v)`. The one-step spike has size :math:`\\eta\\mu_1\\lVert F_0\\rVert\\lVert v\\rVert`
    (docs/theory.md 4.1).
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
def _split_rule(breaks: tuple[float, ...], cutoff: float = _CUTOFF) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes/weights for the standard normal on [-cutoff, cutoff], split at ``breaks``."""
    edges = np.arange(-cutoff, cutoff + 0.5 * _PANEL, _PANEL)
    inner = [b for b in breaks if -cutoff < b < cutoff]
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
    if callable(f) and not isinstance(f, type):
        return f, None, getattr(f, "__name__", repr(f))
    raise V.fail(func, name, f"one of {tuple(TEACHERS)} or a callable", V.describe(f))


def _expect(func: str, name: str, fn: Callable, breaks: tuple[float, ...] | None, quadrature: str, s: float,
            moments: Callable[[np.ndarray, np.ndarray], np.ndarray], *, known: bool,
            second: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Gaussian expectations ``moments(xi, f(s xi))`` (rows) by the chosen quadrature.

    ``"auto"``: Gauss-Hermite with 200 and with 300 nodes for smooth integrands (``breaks == ()``),
    accepted when the two agree to 1e-14 relative (exact for polynomials of degree < 400; analytic
    functions converge geometrically), otherwise - and for kinked or unknown integrands - the
    split composite Gauss-Legendre rule (panels of 0.5, 20 nodes, split at 0 and at the kinks).

    known: a named teacher or a polynomial (finite moments at every ``s``; values that overflow
    mean ``s`` is too large). Otherwise (a callable) the split rule runs out to :math:`|x|=37.5`
    and the expectation counts as divergent - a named ValueError - unless the outermost panel
    :math:`37\\le|x|\\le37.5` contributes below 1e-16 of the integral of the integrand's absolute
    value for every moment (a convergent Gaussian moment of a polynomially or even
    :math:`e^{0.2z^2}`-growing function passes; :math:`e^{z^2}`, :math:`e^{z^2/4}` fail); a
    value that is infinite within :math:`|x|\\le12` is reported as a non-finite function.

    second: further moments ``second(xi, f, first)`` that depend on the first ones (e.g. the
    residual :math:`(f-c s\\xi)^2`), integrated with the same rule and the same function values
    (their rows take part in the Gauss-Hermite agreement test); returned after the first rows.
    """
    label = getattr(fn, "__name__", type(fn).__name__)

    def values(x, overflow_ok):
        return V.call_values(func, name, fn, s * x, expected=_CALLABLE, allow_overflow=overflow_ok)

    def both(x, f, w):
        with np.errstate(over="ignore", invalid="ignore"):
            terms = moments(x, f) * w
            first = terms.sum(axis=1)
            if second is None:
                return first, terms
            extra = second(x, f, first) * w
            return np.concatenate([first, extra.sum(axis=1)]), np.concatenate([terms, extra])

    def run(x, w):
        return both(x, values(x, known), w)[0]

    if not known:
        x, w = _split_rule((0.0,) + tuple(b / s for b in (breaks or ())), _TAIL)
        f = values(x, True)
        core = np.abs(x) <= _CUTOFF
        if np.isinf(f[core]).any():
            at = float(s * x[core][np.isinf(f[core])][0])
            raise V.fail(func, name, _CALLABLE, f"a callable ({label}) that returned inf at {at:.6g}")
        total, terms = both(x, f, w)
        if not np.all(np.isfinite(terms)):
            bad = ~np.all(np.isfinite(terms), axis=0)
            raise V.fail(func, name, _FINITE_MOMENTS, f"a callable ({label}) whose moment integrand overflows at "
                         f"z = {float(s * x[bad][0]):.4g} (|z| / s = {abs(float(x[bad][0])):.3g})")
        outer = np.abs(terms[:, np.abs(x) >= _TAIL_OUTER]).sum(axis=1)
        total_abs = np.abs(terms).sum(axis=1)
        if np.any(outer > _TAIL_RTOL * total_abs):
            j = int(np.argmax(outer / np.where(total_abs > 0, total_abs, 1.0)))
            raise V.fail(func, name, _FINITE_MOMENTS, f"a callable ({label}) whose moment integrand still carries "
                         f"{outer[j] / total_abs[j]:.2e} of its integral at |z| = {_TAIL_OUTER:g} s "
                         "(divergent or too slowly decaying)")
        if quadrature != "hermite":
            return total
    if quadrature == "hermite" or (quadrature == "auto" and breaks == ()):
        a = run(*_gauss_hermite(_GH_NODES))
        if quadrature == "hermite":
            return a
        b = run(*_gauss_hermite(_GH_NODES_CHECK))
        with np.errstate(invalid="ignore"):
            agree = np.all(np.abs(a - b) <= 1e-14 * np.maximum(np.abs(b), 1.0))
        if agree:
            return b
    return run(*_split_rule((0.0,) + tuple(b / s for b in (breaks or ()))))


def _teacher_coefficients(func: str, name: str, teacher, s: float, noise_std: float, quadrature: str = "auto",
                          breakpoints: tuple[float, ...] | None = None) -> TeacherCoefficients:
    """teacher_coefficients with validated s, noise_std; errors reported for ``func``'s argument ``name``."""
    fn, br, label = _resolve(func, name, teacher)
    known = br is not None
    if breakpoints is not None:
        br = breakpoints
        if quadrature == "auto":
            quadrature = "split"
    noise2 = noise_std ** 2
    if not math.isfinite(noise2):
        raise V.fail(func, "noise_std", "small enough that noise_std^2 is a finite float", repr(noise_std))

    def moments(x, f):
        f2 = f * f
        return np.stack([x * f, f2, f, f2 * x * x])

    def residual(x, f, first):
        # sigma_r^2 = E[(f(z) - c z)^2] + noise^2 integrated directly (= E[y^2] - c^2 s^2, without the
        # cancellation of that difference when the linear part dominates, e.g. a linear teacher at large s);
        # c s = E[xi f(s xi)] is the first moment of the same rule
        return ((f - first[0] * x) ** 2)[None, :]

    Exf, Ef2, Ef, Ef2x2, resid = _expect(func, name, fn, br, quadrature, s, moments, known=known, second=residual)
    with np.errstate(over="ignore", invalid="ignore"):
        c = float(Exf) / s                         # E[z f(z)]/s^2 with z = s xi
        Ey2 = float(Ef2) + noise2
        Ey2xi2 = float(Ef2x2) + noise2
        Ey2z2 = Ey2xi2 * s * s                     # may overflow to inf for huge s (documented)
        sigma_r2 = float(resid) + noise2
    vals = (c, Ey2, float(Ef), Ey2xi2, sigma_r2)
    if not all(math.isfinite(v) for v in vals):
        culprit = "s" if known else name
        raise V.fail(func, culprit, "such that the teacher's Gaussian moments E[sigma(z)^2], E[sigma(z)^2 z^2] "
                     "(z ~ N(0, s^2)) are finite floats", f"s = {s!r} and {label!r}, where they overflow")
    return TeacherCoefficients(c=c, Ey2=Ey2, sigma_r2=sigma_r2, mean=float(Ef), Ey2z2=Ey2z2,
                               s=s, noise_std=noise_std, name=label, Ey2xi2=Ey2xi2)


def teacher_coefficients(teacher, *, s=1.0, noise_std=0.0, quadrature: str = "auto",
                         breakpoints: tuple[float, ...] | None = None) -> TeacherCoefficients:
    """Coefficients :math:`c`, :math:`\\mathbb E[y^2]`, :math:`\\sigma_r^2` of a teacher (docs/theory.md 4.0).

    teacher: a name in :data:`TEACHERS` (``"tanh"``, ``"relu"``, ``"erf"``, ...), a numpy polynomial,
        or any callable acting elementwise on arrays (it must return finite real values; its
        Gaussian moments must converge - :math:`e^{z^2}` is rejected, see :func:`_expect`).
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
    s = V.scalar(func, "s", s, low=0.0, low_open=True)
    noise_std = V.scalar(func, "noise_std", noise_std, low=0.0)
    V.choice(func, "quadrature", quadrature, ("auto", "hermite", "split"))
    br = None
    if breakpoints is not None:
        br = tuple(float(b) for b in V.array(func, "breakpoints", breakpoints, ndim=1, what="kinks (real numbers)"))
    return _teacher_coefficients(func, "teacher", teacher, s, noise_std, quadrature, br)


def student_coefficients(student="tanh", *, variance=1.0) -> StudentCoefficients:
    """Moments :math:`\\mu_0=\\mathbb E\\sigma(\\xi)`, :math:`\\mu_1=\\mathbb E\\sigma'(\\xi)` of the student, :math:`\\xi\\sim\\mathsf N(0,v)`.

    student: a name in :data:`TEACHERS` or a callable (:math:`\\mu_1` by Stein's identity
        :math:`\\mathbb E[\\xi\\sigma(\\xi)]/v`, so no derivative is needed).
    variance: pre-activation variance :math:`v=\\mathrm{tr}(\\Sigma)/d` under the init of docs/theory.md 4.0.

    >>> round(student_coefficients("relu").mu1, 12)
    0.5
    """
    func = "student_coefficients"
    fn, br, label = _resolve(func, "student", student)
    v = V.scalar(func, "variance", variance, low=0.0, low_open=True)
    s = math.sqrt(v)

    def moments(x, f):
        return np.stack([f, x * f])

    Ef, Exf = _expect(func, "student", fn, br, "auto", s, moments, known=br is not None)
    mu0, mu1 = float(Ef), float(Exf) / s
    if not (math.isfinite(mu0) and math.isfinite(mu1)):
        culprit = "variance" if br is not None else "student"
        raise V.fail(func, culprit, "such that the student's Gaussian moments are finite floats",
                     f"variance = {v!r} and {label!r}, where they overflow")
    return StudentCoefficients(mu0=mu0, mu1=mu1, variance=v)


# --------------------------------------------------------------------------------------------
# problem handling
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    t: np.ndarray   # eigenvalues (atoms)
    b: np.ndarray   # quadratic-form masses (u_i' beta*)^2
    w: np.ndarray   # trace weights before division: 1 each (finite) or H-masses summing to 1 (limit)
    div: float      # divisor of the traces: n (finite) or psi (limit); q = w / div
    n: float | None  # finite sample size (None in the limit)

    @property
    def q(self) -> np.ndarray:
        return self.w / self.div

    @property
    def beta_sq(self) -> float:
        return float(self.b.sum())

    @property
    def s2(self) -> float:
        return float(self.b @ self.t)

    @property
    def one_minus_gamma(self) -> float:
        """1 - sum q, exactly: (n - d)/n or (psi - 1)/psi."""
        return (self.div - (self.t.size if self.n is not None else 1.0)) / self.div


_SIGMA = "a (d, d) symmetric positive-definite matrix or a 1-D array of its positive eigenvalues"


def _spectral(func: str, Sigma, beta_star) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of Sigma and the squared components of beta* in its eigenbasis."""
    S = V.array(func, "Sigma", Sigma, ndim=(1, 2), nonempty=True, what="real numbers (" + _SIGMA + ")")
    if S.ndim == 1:
        t = V.spectrum(func, "Sigma", S)
        bt = V.vector(func, "beta_star", beta_star, size=t.size, nonzero=True)
    else:
        S = V.spd(func, "Sigma", S)
        beta = V.vector(func, "beta_star", beta_star, size=S.shape[0], nonzero=True)
        t, O = np.linalg.eigh(S)
        bt = O.T @ beta
    # scale-free b: (u_i' beta)^2, summing to ||beta||^2; underflow of a square is harmless (it is 0 in b)
    return t, bt * bt


def _finite(func: str, Sigma, beta_star, n) -> _Spec:
    t, b = _spectral(func, Sigma, beta_star)
    n = V.scalar(func, "n", n, low=1.0)
    if not (b * t).sum() > 0:
        raise V.fail(func, "beta_star", "nonzero with a representable s^2 = beta' Sigma beta",
                     "components whose squares underflow")
    return _Spec(t, b, np.ones(t.shape), n, n)


def _law(func: str, eigenvalues, h, g, psi) -> _Spec:
    t = V.spectrum(func, "eigenvalues", eigenvalues)
    h = V.masses(func, "h", h, size=t.size)
    g = V.masses(func, "g", g, size=t.size)
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    return _Spec(t, g, h / math.fsum(h), psi, None)


def _coeffs(func: str, teacher, s: float, noise_std) -> TeacherCoefficients:
    noise_std = V.scalar(func, "noise_std", noise_std, low=0.0)
    if isinstance(teacher, TeacherCoefficients):
        tc = teacher
        if abs(tc.s - s) > 1e-9 * s or abs(tc.noise_std - noise_std) > 1e-12 * max(1.0, noise_std):
            raise V.fail(func, "teacher", f"coefficients computed at s = {s:.12g}, noise_std = {noise_std:.12g}",
                         f"s = {tc.s:.12g}, noise_std = {tc.noise_std:.12g}")
    else:
        tc = _teacher_coefficients(func, "teacher", teacher, s, noise_std)
    rms = math.sqrt(max(tc.Ey2 - tc.noise_std ** 2, 0.0))
    if not abs(tc.c) * s > _C_ZERO_RTOL * rms:
        raise V.fail(func, "teacher", "a teacher with nonzero first Hermite coefficient c = E[z sigma*(z)]/s^2 "
                     "(information exponent 1)",
                     f"c = {tc.c:.3g} for {tc.name!r}: information exponent above 1, the one-step spike "
                     "carries no signal about beta_star")
    return tc


def _shape(x, like: np.ndarray):
    x = np.asarray(x, dtype=float)
    return float(x.reshape(-1)[0]) if like.ndim == 0 else x.reshape(like.shape)


# --------------------------------------------------------------------------------------------
# cores (spectral form)
# --------------------------------------------------------------------------------------------

def _unit(cos):
    """A cosine clipped to [-1, 1]: Cauchy-Schwarz bounds the exact value, rounding may pass it by an ulp."""
    return np.clip(cos, -1.0, 1.0)


def _linear_core(sp: _Spec, tc: TeacherCoefficients, ptil: np.ndarray, scale: np.ndarray,
                 finite_n: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spike v = P X'y/n for a fixed diagonal preconditioner :math:`P = \\text{scale}\\cdot\\tilde P`.

    ptil: (m, d) diagonals of :math:`\\tilde P` in Sigma's eigenbasis, scaled so that the largest is
    1 (the cosine does not depend on the scale, so it is computed from ``ptil`` alone and never
    underflows). scale: (m,) the factor. Returns (inner, sqnorm, cos), shape (m,).
    The spectrum enters as :math:`u=t/t_{\\max}` (so :math:`t^2` never overflows): with
    :math:`\\lVert\\tilde PSb\\rVert^2=t_{\\max}^2\\,U_2`, :math:`\\beta^\\top\\tilde PS\\beta=t_{\\max}U_1`,
    :math:`\\mathrm{tr}(\\tilde PS\\tilde P)/n=t_{\\max}U_0` and :math:`s^2=t_{\\max}s_u^2`,
    :math:`\\lVert v\\rVert^2/t_{\\max}^2 = c^2U_2+\\mathbb E[y^2]U_0/t_{\\max}` (and the exact finite-n form
    likewise), whose ratio to :math:`U_1` is the cosine.
    """
    t, b, q = sp.t, sp.b, sp.q
    c = tc.c
    tmax = float(t.max())
    pu = ptil * (t / tmax)
    U2 = pu ** 2 @ b                           # ||P~ Sigma beta||^2 / tmax^2
    U1 = pu @ b                                # beta' P~ Sigma beta / tmax
    U0 = (ptil * pu) @ q                       # tr(P~ Sigma P~)/n / tmax
    if not finite_n:
        squ = c * c * U2 + tc.Ey2 * U0 / tmax
    else:
        n = sp.n
        s2u = sp.s2 / tmax
        # exact for Gaussian x: E||v||^2 = c^2||PSb||^2 (1-1/n) + (1/n) E[y^2 ||P x||^2], in units of tmax^2
        Ey2Px2u = (tc._Ey2xi2 * U2 / s2u + tc.Ey2 * (n * U0 - U2 / s2u)) / tmax
        squ = c * c * U2 * (1.0 - 1.0 / n) + Ey2Px2u / n
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = _unit(c * U1 / (math.sqrt(sp.beta_sq) * np.sqrt(squ)))
    with np.errstate(over="ignore", under="ignore"):
        return c * U1 * (tmax * scale), squ * (tmax * scale) ** 2, cos


def _kfac_core(sp: _Spec, tc: TeacherCoefficients, lam: np.ndarray) -> SpikePrediction:
    """Theorem 3.9's functionals at every ridge, in bounded ratios (finite for 0 <= lam_G <= 1e300).

    With :math:`a_i=\\kappa/(t_i+\\kappa)`, :math:`b_i=t_i/(t_i+\\kappa)` (each in [0, 1], computed
    directly) and :math:`q_i` the trace weights: :math:`A_1=\\sum\\beta_i^2b_i`,
    :math:`B=\\sum\\beta_i^2b_i^2`, :math:`\\kappa^2E=\\sum\\beta_i^2t_ia_i^2`,
    :math:`T_2=\\sum q_ib_i^2/t_i`, :math:`1-D_2=\\lambda_G/\\kappa+\\sum q_ia_ib_i` (by the fixed point;
    no cancellation, even for :math:`\\gamma\\gg1`).
    The cosine is homogeneous of degree 0 in the :math:`b_i`, so it is computed from
    :math:`\\tilde b_i=b_i/b_{\\max}=(t_i/t_{\\max})(t_{\\max}+\\kappa)/(t_i+\\kappa)\\in(0,1]`: as
    :math:`\\lambda_G\\to\\infty`, :math:`\\tilde b_i\\to t_i/t_{\\max}`, :math:`\\kappa^2E\\to s^2`,
    :math:`1-D_2\\to1` and the cosine tends to the SGD alignment (no overflow of :math:`\\kappa^2`, no
    underflow of :math:`b_i^2`). At :math:`\\lambda_G=0` with :math:`\\psi>1`, :math:`\\kappa=0` exactly
    and the formula is the ridgeless limit; at :math:`\\psi=1` the noise term is infinite (cos 0).
    """
    t, b, q = sp.t[:, None], sp.b[:, None], sp.q[:, None]
    flat = lam.ravel()
    k0 = _solve_kappa(sp.t, sp.w, sp.div, flat, sp.one_minus_gamma)
    k = k0[None, :]
    tmax = float(sp.t.max())
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        a = 1.0 / (1.0 + t / k)                      # kappa/(t+kappa); 0 at kappa = 0
        bb = 1.0 / (1.0 + k / t)                     # t/(t+kappa)
        bt = (t / tmax) * ((tmax + k) / (t + k))     # bb / max(bb), in (0, 1]
    A1 = (b * bb).sum(axis=0)
    B = (b * bb * bb).sum(axis=0)
    k2E = (b * t * a * a).sum(axis=0)
    T2 = (q * bb * bb / t).sum(axis=0)
    # 1 - D2 = (1 - sum q b) + sum q a b, and 1 - sum q b = lam/kappa at the root: two positive terms
    # (this is the solver's derivative h_u, so its relative error is that of kappa); kappa = 0 only for
    # lam = 0 with gamma <= 1, where 1 - D2 = 1 - gamma (0 at psi = 1: the ridgeless blow-up)
    with np.errstate(divide="ignore", invalid="ignore"):
        one_minus_D2 = np.where(k0 > 0, flat / k0 + (q * a * bb).sum(axis=0), sp.one_minus_gamma)
    A1t = (b * bt).sum(axis=0)
    Bt = (b * bt * bt).sum(axis=0)
    T2t = (q * bt * bt / t).sum(axis=0)
    c = tc.c
    blow = one_minus_D2 <= 0                          # psi = 1, lam_G = 0: the ridgeless blow-up
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(blow, np.inf, 1.0 / one_minus_D2)
        sqnorm = c * c * B + (c * c * k2E + tc.sigma_r2) * T2 * ratio
        den = Bt + (k2E + tc.sigma_r2 / (c * c)) * T2t * ratio
        cos = _unit(np.where(np.isinf(den), 0.0, np.sign(c) * A1t / (math.sqrt(sp.beta_sq) * np.sqrt(den))))
    sqnorm = np.where(blow, np.inf, sqnorm)
    inner = c * A1
    return SpikePrediction(_shape(inner, lam), _shape(sqnorm, lam), _shape(cos, lam), _shape(k0, lam))


def _sgd(sp: _Spec, tc: TeacherCoefficients, finite_n: bool) -> SpikePrediction:
    ones = np.ones((1, sp.t.size))
    inner, sq, cos = _linear_core(sp, tc, ones, np.ones(1), finite_n)
    return SpikePrediction(float(inner[0]), float(sq[0]), float(cos[0]))


# --------------------------------------------------------------------------------------------
# public: finite form (Sigma, beta_star, n)
# --------------------------------------------------------------------------------------------

def _sgd_spike(func, Sigma, beta_star, n, teacher, noise_std, finite_n) -> SpikePrediction:
    sp = _finite(func, Sigma, beta_star, n)
    finite_n = V.flag(func, "finite_n", finite_n)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    return _sgd(sp, tc, finite_n)


def sgd_spike(Sigma, beta_star, *, n, teacher, noise_std, finite_n: bool = False) -> SpikePrediction:
    """Components of the SGD spike :math:`v=X^\\top y/n` (docs/theory.md 4.2).

    Sigma: (d, d) SPD covariance, or (d,) eigenvalues with ``beta_star`` in that eigenbasis (the
        eigenvalue form accepts any positive spectrum, e.g. spanning 1e-12..1e12; a matrix must pass
        the relative positive-definiteness test of :mod:`theory._validate`).
    beta_star: (d,) nonzero teacher direction :math:`\\beta^*`.
    n: batch size (a real number >= 1; the formulas are analytic in n, so e.g. ``n = 1e15 * d``
        serves as the psi -> infinity limit).
    teacher: name, callable or :class:`TeacherCoefficients` (at :math:`s^2=\\beta^{*\\top}\\Sigma\\beta^*`).
    noise_std: label noise :math:`\\sigma_\\varepsilon`.
    finite_n: use the exact finite-n expectation of :math:`\\lVert v\\rVert^2` (Gaussian x);
        :math:`\\mathbb E\\langle v,\\beta^*\\rangle=cs^2` is exact either way.
    """
    return _sgd_spike("sgd_spike", Sigma, beta_star, n, teacher, noise_std, finite_n)


def sgd_alignment(Sigma, beta_star, *, n, teacher, noise_std, finite_n: bool = False) -> float:
    """:math:`\\cos(v_{SGD},\\beta^*)` of docs/theory.md 4.2 (arguments as :func:`sgd_spike`).

    >>> round(sgd_alignment([1.0] * 4, [0.5] * 4, n=8, teacher="linear", noise_std=0.0) ** 2, 12)  # c^2/(c^2+Ey2/psi)
    0.666666666667
    """
    return _sgd_spike("sgd_alignment", Sigma, beta_star, n, teacher, noise_std, finite_n).cos


def _kfac_spike(func, Sigma, beta_star, n, lam_G, teacher, noise_std) -> SpikePrediction:
    sp = _finite(func, Sigma, beta_star, n)
    lam = V.ridge(func, "lam_G", lam_G)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    return _kfac_core(sp, tc, lam)


def kfac_spike(Sigma, beta_star, *, n, lam_G, teacher, noise_std) -> SpikePrediction:
    """Components of the KFAC spike :math:`v=(\\hat\\Sigma_x+\\lambda_GI)^{-1}X^\\top y/n` (Theorem 3.9).

    Sigma, beta_star, n, teacher, noise_std: as :func:`sgd_spike`.
    lam_G: ridge :math:`\\lambda_G\\ge0`, float or array; the outputs have its shape. Every finite
        ridge up to 1e300 gives finite values: ``cos`` tends to the SGD alignment as
        :math:`\\lambda_G\\to\\infty` (``inner`` and ``sqnorm`` tend to 0 like :math:`1/\\lambda_G`,
        :math:`1/\\lambda_G^2` and may underflow to 0), and at :math:`\\lambda_G=0` it is the
        ridgeless limit (:func:`kfac_alignment_ridgeless`) for :math:`n>d`, 0 for :math:`n=d`.
    """
    return _kfac_spike("kfac_spike", Sigma, beta_star, n, lam_G, teacher, noise_std)


def kfac_alignment(Sigma, beta_star, *, n, lam_G, teacher, noise_std):
    """:math:`\\cos(v_{KFAC},\\beta^*)` of Theorem 3.9, vectorised over ``lam_G`` (see :func:`kfac_spike`).

    >>> import numpy as np
    >>> a = kfac_alignment(np.ones(10), np.full(10, 10 ** -0.5), n=20, lam_G=[1e6], teacher="tanh", noise_std=0.1)
    >>> b = sgd_alignment(np.ones(10), np.full(10, 10 ** -0.5), n=20, teacher="tanh", noise_std=0.1)
    >>> bool(abs(a[0] - b) < 1e-5)   # lam_G -> infinity recovers SGD
    True
    """
    return _kfac_spike("kfac_alignment", Sigma, beta_star, n, lam_G, teacher, noise_std).cos


def _population_spike(func, Sigma, beta_star, n, lam_G, teacher, noise_std, finite_n) -> SpikePrediction:
    sp = _finite(func, Sigma, beta_star, n)
    lam = V.ridge(func, "lam_G", lam_G)
    finite_n = V.flag(func, "finite_n", finite_n)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    lf = lam.ravel()[:, None]
    tmin = float(sp.t.min())
    ptil = (tmin + lf) / (sp.t[None, :] + lf)        # (Sigma + lam)^{-1} scaled to max 1
    scale = 1.0 / (tmin + lam.ravel())
    inner, sq, cos = _linear_core(sp, tc, ptil, scale, finite_n)
    return SpikePrediction(_shape(inner, lam), _shape(sq, lam), _shape(cos, lam))


def population_spike(Sigma, beta_star, *, n, lam_G, teacher, noise_std, finite_n: bool = False) -> SpikePrediction:
    """Spike with the population preconditioner, :math:`v=(\\Sigma+\\lambda_GI)^{-1}X^\\top y/n` (variant of Thm 3.9).

    Arguments as :func:`kfac_spike`; ``finite_n`` uses the exact finite-n second moment. The cosine
    is computed from :math:`(\\Sigma+\\lambda_G)^{-1}` scaled to a largest entry of 1, so it is finite
    for every ridge up to 1e300 and tends to the SGD alignment as :math:`\\lambda_G\\to\\infty`.
    """
    return _population_spike("population_spike", Sigma, beta_star, n, lam_G, teacher, noise_std, finite_n)


def population_alignment(Sigma, beta_star, *, n, lam_G, teacher, noise_std, finite_n: bool = False):
    """:math:`\\cos((\\Sigma+\\lambda_GI)^{-1}X^\\top y/n,\\beta^*)`, vectorised over ``lam_G``."""
    return _population_spike("population_alignment", Sigma, beta_star, n, lam_G, teacher, noise_std,
                             finite_n).cos


# --------------------------------------------------------------------------------------------
# public: any fixed function of the population covariance, and its powers
# --------------------------------------------------------------------------------------------

_PHI = "a callable mapping Sigma's eigenvalues (a 1-D array) to finite real values, not all zero"


def _population_function_spike(func, Sigma, beta_star, n, phi, teacher, noise_std, finite_n) -> SpikePrediction:
    sp = _finite(func, Sigma, beta_star, n)
    finite_n = V.flag(func, "finite_n", finite_n)
    if not callable(phi) or isinstance(phi, type):
        raise V.fail(func, "phi", _PHI, V.describe(phi))
    f = V.call_values(func, "phi", phi, sp.t.copy(), expected=_PHI)
    top = float(np.abs(f).max())
    if not top > 0:
        raise V.fail(func, "phi", _PHI, "a callable that is zero on the whole spectrum")
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    inner, sq, cos = _linear_core(sp, tc, (f / top)[None, :], np.array([top]), finite_n)
    return SpikePrediction(float(inner[0]), float(sq[0]), float(cos[0]))


def population_function_spike(Sigma, beta_star, *, n, phi, teacher, noise_std,
                              finite_n: bool = False) -> SpikePrediction:
    """Spike :math:`v=\\phi(\\Sigma)X^\\top y/n` for a fixed function of the population covariance (docs/theory.md 4.2).

    phi: a callable applied to the eigenvalues of Sigma (an array ``t`` of shape (d,) in, the
        eigenvalues of :math:`P=\\phi(\\Sigma)` out; finite, real, not all zero). E.g.
        ``lambda t: (t + 0.1) ** -0.5``.
    Other arguments as :func:`sgd_spike`. With :math:`b_i=(u_i^\\top\\beta^*)^2` and
    :math:`\\phi_i=\\phi(t_i)`: :math:`\\mathbb E\\langle v,\\beta^*\\rangle=c\\sum_i\\phi_it_ib_i` (exact),
    :math:`\\lVert v\\rVert^2\\to c^2\\sum_i\\phi_i^2t_i^2b_i+\\mathbb E[y^2]\\sum_i\\phi_i^2t_i/n`, and with
    ``finite_n`` the exact finite-n mean
    :math:`c^2\\lVert P\\Sigma\\beta^*\\rVert^2(1-\\frac1n)
    +\\frac1n\\big(\\mathbb E[y^2z^2]\\lVert P\\Sigma\\beta^*\\rVert^2/s^4
    +\\mathbb E[y^2](\\mathrm{tr}(P\\Sigma P)-\\lVert P\\Sigma\\beta^*\\rVert^2/s^2)\\big)`
    (docs/theory.md, "Population power preconditioner"). Returns floats.

    >>> a = population_function_spike([1.0, 2.0], [1.0, 1.0], n=10, phi=lambda t: 1.0 / (t + 0.5),
    ...                               teacher="tanh", noise_std=0.1)
    >>> b = population_spike([1.0, 2.0], [1.0, 1.0], n=10, lam_G=0.5, teacher="tanh", noise_std=0.1)
    >>> bool(abs(a.cos - b.cos) < 1e-15)
    True
    """
    return _population_function_spike("population_function_spike", Sigma, beta_star, n, phi, teacher, noise_std,
                                      finite_n)


def population_function_alignment(Sigma, beta_star, *, n, phi, teacher, noise_std, finite_n: bool = False) -> float:
    """:math:`\\cos(\\phi(\\Sigma)X^\\top y/n,\\beta^*)` (arguments as :func:`population_function_spike`)."""
    return _population_function_spike("population_function_alignment", Sigma, beta_star, n, phi, teacher,
                                      noise_std, finite_n).cos


def _powers(func: str, lam_G, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ridges and powers broadcast together: (lam, p, like) with ``like`` of the output shape."""
    lam = V.ridge(func, "lam_G", lam_G)
    if isinstance(p, (bool, np.bool_)):
        raise V.fail(func, "p", "a real number in [0, 1] or an array of them", V.describe(p))
    pw = V.array(func, "p", p, low=0.0, what="real numbers in [0, 1]", range_msg="in [0, 1]")
    if pw.size and np.any(pw > 1.0):
        raise V.fail(func, "p", "in [0, 1]", f"maximum {pw.max():.6g}")
    try:
        shape = np.broadcast_shapes(lam.shape, pw.shape)
    except ValueError:
        raise V.fail(func, "p", f"an array that broadcasts with lam_G (shape {lam.shape})",
                     f"shape {pw.shape}") from None
    like = np.broadcast_to(lam, shape)
    return like.ravel().copy(), np.broadcast_to(pw, shape).ravel().copy(), like


def _population_power_spike(func, Sigma, beta_star, n, lam_G, p, teacher, noise_std, finite_n) -> SpikePrediction:
    sp = _finite(func, Sigma, beta_star, n)
    lam, pw, like = _powers(func, lam_G, p)
    finite_n = V.flag(func, "finite_n", finite_n)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    lf, pf = lam[:, None], pw[:, None]
    tmin = float(sp.t.min())
    # (Sigma + lam)^{-p} = scale * P~ with P~ = ((tmin + lam)/(t + lam))^p in (0, 1] (largest entry 1):
    # the cosine never sees over- or underflow; p = 1 is population_spike's P~ raised to 1, p = 0 is SGD's ones
    ptil = ((tmin + lf) / (sp.t[None, :] + lf)) ** pf
    with np.errstate(over="ignore", under="ignore"):
        scale = (tmin + lam) ** (-pw)
    inner, sq, cos = _linear_core(sp, tc, ptil, scale, finite_n)
    return SpikePrediction(_shape(inner, like), _shape(sq, like), _shape(cos, like))


def population_power_spike(Sigma, beta_star, *, n, lam_G, p, teacher, noise_std,
                           finite_n: bool = False) -> SpikePrediction:
    """Spike with a power of the population preconditioner, :math:`v=(\\Sigma+\\lambda_GI)^{-p}X^\\top y/n` [R, V].

    The input-side preconditioner of a Shampoo/SOAP-like step built from the population covariance
    (:math:`p=1/4`, :math:`1/2`); :math:`p=0` is SGD (:func:`sgd_spike`), :math:`p=1` the population
    variant of Theorem 3.9 (:func:`population_spike`). A special case of
    :func:`population_function_spike` with :math:`\\phi(t)=(t+\\lambda_G)^{-p}`:

    .. math::

        \\mathbb E\\langle v,\\beta^*\\rangle = c\\,\\beta^{*\\top}(\\Sigma+\\lambda_G)^{-p}\\Sigma\\beta^*,\\qquad
        \\lVert v\\rVert^2\\to c^2\\lVert(\\Sigma+\\lambda_G)^{-p}\\Sigma\\beta^*\\rVert^2
        +\\mathbb E[y^2]\\,\\mathrm{tr}\\big(\\Sigma(\\Sigma+\\lambda_G)^{-2p}\\big)/n

    (``finite_n``: the exact finite-n mean of docs/theory.md, "Population power preconditioner").

    lam_G: ridge :math:`\\lambda_G\\ge0`, float or array (0 is allowed: Sigma is positive-definite).
    p: power in [0, 1], float or array; ``lam_G`` and ``p`` broadcast together and the outputs have
        the broadcast shape (floats when both are scalars). E.g. ``lam_G=lams[:, None], p=[0.25, 0.5]``.
    Other arguments as :func:`sgd_spike`. The cosine is computed from :math:`(\\Sigma+\\lambda_G)^{-p}`
    scaled to a largest entry of 1 (finite for every ridge up to 1e300).
    This is **not** the same-batch power :math:`(\\hat\\Sigma_x+\\lambda_GI)^{-p}` for
    :math:`0<p<1`, for which no formula is derived here (docs/theory.md, "Population power preconditioner").
    """
    return _population_power_spike("population_power_spike", Sigma, beta_star, n, lam_G, p, teacher, noise_std,
                                   finite_n)


def population_power_alignment(Sigma, beta_star, *, n, lam_G, p, teacher, noise_std, finite_n: bool = False):
    """:math:`\\cos((\\Sigma+\\lambda_GI)^{-p}X^\\top y/n,\\beta^*)`, vectorised over ``lam_G`` and ``p``
    (see :func:`population_power_spike`).

    >>> t, b = [1.0, 0.1], [1.0, 1.0]
    >>> kw = dict(n=20, lam_G=0.01, teacher="tanh", noise_std=0.1)
    >>> bool(abs(population_power_alignment(t, b, p=0.0, **kw) - sgd_alignment(t, b, n=20, teacher="tanh",
    ...                                                                        noise_std=0.1)) < 1e-15)
    True
    """
    return _population_power_spike("population_power_alignment", Sigma, beta_star, n, lam_G, p, teacher, noise_std,
                                   finite_n).cos


def sgd_alignment_cap(Sigma, beta_star) -> float:
    """The :math:`\\psi\\to\\infty` limit of the SGD alignment: :math:`\\cos(\\Sigma\\beta^*,\\beta^*)` (docs/theory.md 4.2).

    Below 1 unless :math:`\\beta^*` is an eigenvector: more data does not remove SGD's bias.
    """
    t, b = _spectral("sgd_alignment_cap", Sigma, beta_star)
    u = t / t.max()                                   # scale-free
    return float((u @ b) / (math.sqrt(b.sum()) * math.sqrt((u * u) @ b)))


def kfac_alignment_ridgeless(Sigma, beta_star, *, n, teacher, noise_std) -> float:
    """:math:`\\lambda_G\\to0` limit of Theorem 3.9 for :math:`n>d` (docs/theory.md, Theorem 3.9 limits).

    :math:`\\cos^2=c^2\\lVert\\beta^*\\rVert^2/(c^2\\lVert\\beta^*\\rVert^2+\\sigma_r^2\\mathrm{tr}(\\Sigma^{-1})/(n-d))`,
    which tends to 1 as :math:`\\psi\\to\\infty` (no bias). Arguments as :func:`sgd_spike`; needs ``n > d``.
    """
    func = "kfac_alignment_ridgeless"
    sp = _finite(func, Sigma, beta_star, n)
    d = sp.t.size
    if not sp.n > d:
        raise V.fail(func, "n", f"> d = {d} (the ridgeless limit needs psi > 1)", repr(sp.n))
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    extra = (tc.sigma_r2 / (tc.c * tc.c)) * (float(np.sum(1.0 / sp.t)) / (sp.n - d)) / sp.beta_sq
    return float(math.copysign(1.0 / math.sqrt(1.0 + extra), tc.c))


def optimal_lam_G(Sigma, beta_star, *, n, teacher, noise_std, bounds=(1e-8, 1e4)) -> tuple[float, float]:
    """The ridge maximising Theorem 3.9's alignment (bounded search over :math:`\\log\\lambda_G`).

    Returns ``(lam_G, cos)``. Arguments as :func:`kfac_spike`; ``bounds`` the search interval
    (two finite numbers ``0 < low < high``).
    """
    from scipy.optimize import minimize_scalar

    func = "optimal_lam_G"
    sp = _finite(func, Sigma, beta_star, n)
    bd = V.vector(func, "bounds", bounds, size=2, low=0.0, low_open=True,
                  range_msg="two positive numbers (low, high)", size_label=None)
    lo, hi = float(bd[0]), float(bd[1])
    if not lo < hi:
        raise V.fail(func, "bounds", "(low, high) with low < high", f"({lo!r}, {hi!r})")
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
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
    """Atoms and masses of the Figure 3 spectral law (docs/theory.md section 5) [R].

    Half the mass at 1 and half at :math:`1-\\epsilon`, rescaled to mean 1. For :math:`\\beta^*`
    uniformly random with :math:`s=1`, the law :math:`\\mathcal G` equals :math:`H`.
    """
    eps = V.scalar("two_level_law", "eps", eps, low=0.0, high=1.0, high_open=True)
    t = np.array([1.0, 1.0 - eps])
    return t / t.mean(), np.array([0.5, 0.5])


def _sgd_spike_law(func, eigenvalues, h, g, psi, teacher, noise_std) -> SpikePrediction:
    sp = _law(func, eigenvalues, h, g, psi)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    return _sgd(sp, tc, False)


def sgd_spike_law(eigenvalues, *, h, g, psi, teacher, noise_std) -> SpikePrediction:
    """SGD components in the proportional limit (docs/theory.md 4.2, integral form).

    eigenvalues: atoms of :math:`H`; h: masses of :math:`H`; g: masses of :math:`\\mathcal G`
    (:math:`\\sum_i(u_i^\\top\\beta^*)^2\\delta_{\\lambda_i}`) at the same atoms; psi: :math:`n/d`.
    """
    return _sgd_spike_law("sgd_spike_law", eigenvalues, h, g, psi, teacher, noise_std)


def sgd_alignment_law(eigenvalues, *, h, g, psi, teacher, noise_std) -> float:
    """:math:`\\cos(v_{SGD},\\beta^*)` in the limit (see :func:`sgd_spike_law`)."""
    return _sgd_spike_law("sgd_alignment_law", eigenvalues, h, g, psi, teacher, noise_std).cos


def _kfac_spike_law(func, eigenvalues, h, g, psi, lam_G, teacher, noise_std) -> SpikePrediction:
    sp = _law(func, eigenvalues, h, g, psi)
    lam = V.ridge(func, "lam_G", lam_G)
    tc = _coeffs(func, teacher, math.sqrt(sp.s2), noise_std)
    return _kfac_core(sp, tc, lam)


def kfac_spike_law(eigenvalues, *, h, g, psi, lam_G, teacher, noise_std) -> SpikePrediction:
    """Theorem 3.9 components in the limit: traces/n become :math:`\\psi^{-1}\\int\\cdot\\,dH`."""
    return _kfac_spike_law("kfac_spike_law", eigenvalues, h, g, psi, lam_G, teacher, noise_std)


def kfac_alignment_law(eigenvalues, *, h, g, psi, lam_G, teacher, noise_std):
    """:math:`\\cos(v_{KFAC},\\beta^*)` in the limit, vectorised over ``lam_G`` (see :func:`kfac_spike_law`).

    >>> t, h = two_level_law(0.9)
    >>> round(float(kfac_alignment_law(t, h=h, g=h, psi=2, lam_G=0.1, teacher="tanh", noise_std=0.1)), 2)
    0.9
    """
    return _kfac_spike_law("kfac_alignment_law", eigenvalues, h, g, psi, lam_G, teacher, noise_std).cos


def sgd_alignment_isotropic(*, psi, c, Ey2) -> float:
    """Isotropic SGD alignment, :math:`\\cos^2=c^2/(c^2+\\mathbb E[y^2]/\\psi)` (:math:`\\Sigma=I`, :math:`\\lVert\\beta^*\\rVert=1`).

    Evaluated as :math:`\\mathrm{sign}(c)/\\sqrt{1+(\\mathbb E[y^2]/\\psi)/c^2}` (no overflow of :math:`c^2`).
    """
    func = "sgd_alignment_isotropic"
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    c = V.scalar(func, "c", c)
    Ey2 = V.scalar(func, "Ey2", Ey2, low=0.0)
    if c == 0:
        return 0.0
    with np.errstate(over="ignore"):
        extra = float(np.float64(math.sqrt(Ey2 / psi) if Ey2 / psi < math.inf else math.inf) / abs(c)) ** 2
    return float(math.copysign(1.0 / math.sqrt(1.0 + extra), c)) if math.isfinite(extra) else 0.0


def kfac_alignment_isotropic(*, psi, lam_G, c, sigma_r2):
    """Isotropic closed form of Theorem 3.9 (:math:`\\Sigma=I`, :math:`\\lVert\\beta^*\\rVert=1`), vectorised in ``lam_G``.

    :math:`\\cos^2=c^2/\\big(c^2+\\gamma(c^2\\kappa^2+\\sigma_r^2(1+\\kappa)^2)/((1+\\kappa)^2-\\gamma)\\big)`,
    :math:`\\gamma=1/\\psi`, :math:`\\kappa` from :func:`theory.rmt.kappa_isotropic`. Evaluated after
    dividing by :math:`(1+\\kappa)^2`:
    :math:`\\cos^2=1/\\big(1+\\gamma(\\rho^2+(\\sigma_r^2/c^2))/(1-\\gamma/(1+\\kappa)^2)\\big)`
    with :math:`\\rho=\\kappa/(1+\\kappa)`, finite for every ridge up to 1e300.
    """
    from theory.rmt import kappa_isotropic

    func = "kfac_alignment_isotropic"
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    lam = V.ridge(func, "lam_G", lam_G)
    c = V.scalar(func, "c", c)
    sigma_r2 = V.scalar(func, "sigma_r2", sigma_r2, low=0.0)
    k = np.asarray(kappa_isotropic(psi=psi, lam=lam))
    g = 1.0 / psi
    if c == 0:
        return _shape(np.zeros(lam.shape), lam)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rho = k / (1.0 + k)
        # 1 - gamma/(1+kappa)^2 = ((1 - gamma) + kappa (2 + kappa)) / (1+kappa)^2, 1 - gamma = (psi-1)/psi exactly
        # written as (1 - gamma)/(1+kappa)^2 + rho (1 + 1/(1+kappa)): no overflow at kappa = 1e300
        den = ((psi - 1.0) / psi) / (1.0 + k) ** 2 + rho * (1.0 + 1.0 / (1.0 + k))
        extra = np.where(den > 0, g * (rho * rho + sigma_r2 / (c * c)) / den, np.inf)
        cos = np.where(np.isinf(extra), 0.0, np.sign(c) / np.sqrt(1.0 + extra))
    return _shape(cos, lam)
