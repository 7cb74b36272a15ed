r"""Every statistical test a claim uses, with the distribution its statistic really has.

Two families of checks, with opposite error rates (docs/theory.md, "Statistical design"):

**Agreement checks** (theory vs simulation; verdict ``holds`` / ``fails``). A Monte-Carlo mean
:math:`\bar m` with an estimated standard error :math:`\widehat{\mathrm{se}}` on :math:`\nu` degrees
of freedom is held to a prediction :math:`p`; the check *fails* when

.. math::

    |\bar m - p| > t_{1-\alpha/2,\,\nu}\,\widehat{\mathrm{se}} + a,

where :math:`a \ge 0` is a finite-size allowance stated next to the check. Under the null (the
prediction is right and :math:`a` covers the bias) it fails with probability at most
:math:`\alpha`: here :math:`\alpha` bounds **false failures**. A claim that fails when any of its
:math:`m` rows fails splits :math:`\alpha` over them (Bonferroni, :math:`\alpha/m` each). Its power
is stated as ``detectable``: the smallest relative error :math:`r` of the prediction it catches with
probability at least 0.9,

.. math::

    r\,|p| = a + \lambda_{0.9}\,\widehat{\mathrm{se}},\qquad
    P\big(|T'_{\nu,\lambda_{0.9}}| > t_{1-\alpha/2,\,\nu}\big) = 0.9,

:math:`T'_{\nu,\lambda}` noncentral t with noncentrality :math:`\lambda` (the power of the t test
when the prediction is off by :math:`\lambda` true standard errors beyond the allowance; normal for a
known s.e.).

**Ordering checks** (a statement of the paper comparing methods, "A is below B"; verdict
``holds`` / ``inconclusive`` / ``contradicted``). Per-trial paired differences :math:`D_t`
(common random numbers) test :math:`\mathbb E D > \delta`: a one-sided paired t test on
:math:`T-1` degrees of freedom when every :math:`D_t` is finite, and an exact one-sided sign test
(median, ties dropped) when some are infinite (a method reaching exactly zero makes a log ratio
unbounded). The statement is *shown* when the test rejects at level :math:`\alpha`: here
:math:`\alpha` bounds **false holds**. A claim that holds only when all of its :math:`m` component
statements are shown is an intersection-union test, whose false-holds rate is at most
:math:`\alpha` with no split. The reverse statement is tested at :math:`\alpha/m` per component
(Bonferroni over the union), so ``contradicted`` is also wrong with probability at most
:math:`\alpha`; when neither is shown the verdict is ``inconclusive``.

Autocorrelated series use batch means: :math:`B` batch means give a t statistic on :math:`B-1`
degrees of freedom. A mean corrected for its :math:`O(1/d)` bias from runs at :math:`d` and
:math:`2d` (Richardson) has the Welch-Satterthwaite degrees of freedom of its two parts; so has any two-run
extrapolation :math:`m(h) = Ah^p + Bh^q` from :math:`h` and :math:`h/r` (:func:`extrapolate`, e.g. Richardson in the
noise variance :math:`h = \sigma^2`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as _st

from compare import _validate as V

#: default family-wise error rate of one claim.
ALPHA = 1e-3
#: the probability with which ``detectable`` errors are caught.
POWER = 0.9
#: what alpha bounds, per family.
FALSE_FAILURE = "false failure"
FALSE_HOLDS = "false holds"
#: verdicts: agreement claims, and ordering statements of the paper.
AGREEMENT_VERDICTS = ("holds", "fails")
ORDERING_VERDICTS = ("holds", "inconclusive", "contradicted")
VERDICTS = ("holds", "fails", "inconclusive", "contradicted")


def _check_alpha(alpha: float, where: str, name: str = "alpha") -> float:
    return V.prob(where, name, alpha)


def _check_df(df: float | None, where: str) -> float:
    return V.dof(where, "df", df)


def _controls(func: str, name: str, controls: Any, T: int) -> list[tuple[np.ndarray, float]]:
    """Control variates ``[(c, mean), ...]``: each ``c`` T finite reals, ``mean`` a finite real,
    ``T >= k + 3``, and ``[1, c_1 - mean_1, ...]`` of full column rank (relative threshold)."""
    if controls is None or isinstance(controls, (str, bytes, Mapping, np.ndarray)) or not isinstance(controls, Iterable):
        raise V.fail(func, name, "a sequence of (c, mean) pairs (c: one value per trial)", V.describe(controls))
    out = []
    for i, pair in enumerate(controls):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise V.fail(func, name, "a sequence of (c, mean) pairs", f"entry {i}: {V.describe(pair)}")
        c = V.samples(func, name, pair[0], what=f"per-trial values (control {i})")
        if c.size != T:
            raise V.fail(func, name, f"controls of length T = {T} (one value per trial)", f"control {i} of length {c.size}")
        out.append((c, V.real(func, name, pair[1])))
    k = len(out)
    if k and T < k + 3:
        raise V.fail(func, name, f"at most T - 3 = {T - 3} controls (the residual needs T - k - 1 >= 2 df)", f"{k} controls")
    if k:
        A = np.column_stack([np.ones(T)] + [c - mu for c, mu in out])
        norms = np.linalg.norm(A, axis=0)
        if not np.all(norms > 0):
            raise V.fail(func, name, "controls that are not constant at their mean", "a control c == mean")
        sv = np.linalg.svd(A / norms, compute_uv=False)  # columns scaled: the rank test is scale-free
        if not sv[-1] > max(A.shape) * np.finfo(float).eps * sv[0]:
            raise V.fail(func, name, "controls that are not constant or collinear ([1, c - mean] of full column rank)",
                         f"singular values from {sv[-1]:.3e} to {sv[0]:.3e}")
    return out


def _quantile(p: float, df: float) -> float:
    """Upper ``p`` quantile of Student t with ``df`` degrees of freedom (normal for ``df = inf``).

    Where scipy's ``t.isf`` is not finite (p below ~1e-290 at some df) it is inverted through the
    incomplete beta function, :math:`P(T > t) = \tfrac12 I_{\nu/(\nu+t^2)}(\nu/2, 1/2)` for t > 0."""
    q = float(_st.norm.isf(p) if math.isinf(df) else _st.t.isf(p, df))
    if not math.isfinite(q) and 0.0 < p < 0.5 and not math.isinf(df):
        from scipy.special import betaincinv

        x = float(betaincinv(df / 2.0, 0.5, 2.0 * p))
        q = math.sqrt(df) * math.sqrt(1.0 / x - 1.0) if x > 0 else math.inf
    return q


def t_critical(alpha: float, df: float | None, *, sided: str = "two") -> float:
    """Critical value of Student t with ``df`` degrees of freedom (``None``: normal).

    sided: ``"two"`` gives :math:`t_{1-\\alpha/2}`, ``"one"`` gives :math:`t_{1-\\alpha}`.
    """
    a = _check_alpha(alpha, "t_critical")
    V.choice("t_critical", "sided", sided, ("one", "two"))
    return _quantile(a / 2.0 if sided == "two" else a, _check_df(df, "t_critical"))


def bonferroni(alpha: float, m: int) -> float:
    """Per-check rate for a family of ``m`` checks with family-wise rate ``alpha``."""
    a = _check_alpha(alpha, "bonferroni")
    return a / V.integer("bonferroni", "m", m, low=1)


def mean_se(samples: Any, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error (sample sd / sqrt(T)) along ``axis``; the s.e. has T - 1 df."""
    x = V._real_array("mean_se", "samples", samples, "an array of real numbers")
    if x.ndim == 0:
        raise V.fail("mean_se", "samples", "an array of real numbers (trials along axis)", f"a scalar {V.describe(samples)}")
    axis = V.integer("mean_se", "axis", axis, low=-x.ndim, high=x.ndim - 1)
    T = x.shape[axis]
    if T < 2:
        raise V.fail("mean_se", "samples", f"an array with >= 2 trials along axis {axis}", f"{T}")
    if not np.all(np.isfinite(x)):
        raise V.fail("mean_se", "samples", "finite (no NaN or inf)", f"{int((~np.isfinite(x)).sum())} non-finite value(s)")
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / np.sqrt(T)


def batch_means(series: Any, *, n_batches: int = 20) -> tuple[float, float, int]:
    """Mean, batch-means standard error and its degrees of freedom (``n_batches - 1``).

    The series is cut into ``n_batches`` contiguous batches whose means are treated as independent
    (valid when each batch is much longer than the autocorrelation time).
    """
    return _batch_means("batch_means", series, n_batches)


def _batch_means(func: str, series: Any, n_batches: Any) -> tuple[float, float, int]:
    n_batches = V.integer(func, "n_batches", n_batches, low=2)
    x = V.samples(func, "series", series, what="real numbers (a series)")
    if x.size < 2 * n_batches:
        raise V.fail(func, "series", f"a series of >= 2*n_batches = {2 * n_batches} values", f"{x.size}")
    b = x.size // n_batches
    means = x[: b * n_batches].reshape(n_batches, b).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(n_batches)), int(n_batches) - 1


def welch_df(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance estimates.

    parts: ``(variance_contribution, df)`` pairs, e.g. ``(se_d**2, T_d - 1)`` and
        ``(4 se_2d**2, T_2d - 1)`` for the Richardson mean :math:`2\\bar m_{2d} - \\bar m_d`.
    """
    if parts is None or isinstance(parts, (str, bytes, Mapping)) or not isinstance(parts, Iterable):
        raise V.fail("welch_df", "parts", "a non-empty sequence of (variance, df) pairs", V.describe(parts))
    checked = []
    for i, pair in enumerate(parts):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise V.fail("welch_df", "parts", "a sequence of (variance, df) pairs", f"entry {i}: {V.describe(pair)}")
        checked.append((V.real("welch_df", "parts", pair[0], low=0.0), V.dof("welch_df", "parts", pair[1])))
    if not checked:
        raise V.fail("welch_df", "parts", "a non-empty sequence of (variance, df) pairs", "an empty sequence")
    parts = checked
    top = max(v for v, _ in parts)
    if top > 1e150 or 0.0 < top < 1e-150:  # scale (the ratio is scale-free) so the squares stay finite
        parts = [(v / top, df) for v, df in parts]
    num = sum(v for v, _ in parts) ** 2
    den = sum(v * v / df for v, df in parts if v > 0)
    return float(num / den) if den > 0 else math.inf


def _df_text(df: float) -> str:
    return "normal" if math.isinf(df) else (f"{df:.0f} df" if abs(df - round(df)) < 1e-9 else f"{df:.1f} df")


# --------------------------------------------------------------------------- agreement
@dataclass(frozen=True, kw_only=True)
class Agreement:
    """One agreement check of a measurement against a prediction (fails = they disagree).

    measured, prediction: the two numbers. stderr: standard error of ``measured`` (``None``: a
    deterministic measurement). df: degrees of freedom of the s.e. (``inf``: known s.e.).
    allowance: stated finite-size (or round-off) allowance. tolerance: the largest
    |measured - prediction| that passes (two-sided) or measured - prediction (``direction`` "<=").
    critical: the t critical value used. statistic: (measured - prediction) / stderr.
    alpha: per-check false-failure rate (``None`` for deterministic checks). test: its name.
    direction: ``"two-sided"`` or ``"measured <= prediction"`` (a one-sided bound).
    detectable: smallest relative error of the prediction caught with probability >= 0.9.
    passed: the check's outcome.
    """

    measured: float
    prediction: float
    stderr: float | None
    df: float
    allowance: float
    tolerance: float
    critical: float | None
    statistic: float | None
    alpha: float | None
    test: str
    direction: str
    detectable: float | None
    passed: bool

    @property
    def alpha_bounds(self) -> str | None:
        return FALSE_FAILURE if self.alpha is not None else None

    @property
    def margin(self) -> float:
        """How far inside its tolerance the check is (negative: outside), in units of the tolerance."""
        diff = self.measured - self.prediction
        gap = abs(diff) if self.direction == "two-sided" else diff
        if self.tolerance > 0:
            return 1.0 - gap / self.tolerance
        return 1.0 if gap <= 0 else -math.inf

    def row(self, **labels: Any) -> dict[str, Any]:
        """A JSON-able table row: ``labels`` first, then the check's numbers."""
        d = asdict(self)
        d["df"] = None if math.isinf(self.df) else self.df
        return {**labels, **d, "alpha_bounds": self.alpha_bounds}


def noncentrality_for_power(crit: float, df: float | None, *, power: float = POWER, one_sided: bool = False) -> float:
    """The noncentrality :math:`\\lambda` at which a t test with critical value ``crit`` on ``df``
    degrees of freedom rejects with probability ``power`` (two-sided unless ``one_sided``)."""
    from scipy.optimize import brentq

    crit = V.real("noncentrality_for_power", "crit", crit)
    dfv = _check_df(df, "noncentrality_for_power")
    power = V.prob("noncentrality_for_power", "power", power)
    one_sided = V.flag("noncentrality_for_power", "one_sided", one_sided)

    def rejects(lam: float) -> float:
        if math.isinf(dfv):
            up, down = _st.norm.sf(crit - lam), _st.norm.cdf(-crit - lam)
        else:
            up = _st.nct.sf(crit, dfv, lam)
            down = 0.0 if one_sided else float(np.nan_to_num(_st.nct.cdf(-crit, dfv, lam)))  # < 1e-6 for lam > 0
        return float(up + (0.0 if one_sided else down)) - power

    if not rejects(0.0) < 0:  # the test rejects with probability >= power already at no error (alpha >= power)
        return 0.0
    if crit > 100.0 and not math.isinf(dfv):  # scipy's nct is slow (seconds) or NaN out there
        return _noncentrality_quad(crit, dfv, power, one_sided)
    try:
        with np.errstate(all="ignore"):
            hi = crit + _quantile(1.0 - power, dfv) + 1.0
            while rejects(hi) < 0:
                hi *= 2.0
            lam = float(brentq(rejects, 0.0, hi, xtol=1e-10))
        if math.isfinite(lam):
            return lam
    except (ValueError, RuntimeError, ArithmeticError):
        pass
    return _noncentrality_quad(crit, dfv, power, one_sided)


def _noncentrality_quad(crit: float, df: float, power: float, one_sided: bool) -> float:
    r""":func:`noncentrality_for_power` where scipy's noncentral t fails (huge ``crit`` at few df, i.e.
    alpha near 0): the rejection probability as one integral over the s.e.'s chi distribution,

    .. math::

        P(T'_{\nu,\lambda} > c) = \int_0^\infty \Phi\big(\lambda - c\sqrt{v/\nu}\big)\,
        f_{\chi^2_\nu}(v)\,dv,

    (plus the lower tail for a two-sided test), solved for :math:`\lambda` in the scaled variable
    :math:`\mu = \lambda / c`."""
    import warnings

    from scipy.integrate import IntegrationWarning, quad
    from scipy.optimize import brentq

    log_norm = 0.5 * df * math.log(2.0) + math.lgamma(0.5 * df)
    r2 = math.sqrt(2.0)

    def rejects(mu: float) -> float:
        lam = mu * crit
        kink = df * mu * mu  # v where c sqrt(v / df) = lam: the integrand steps from 1 to 0 there

        def f(v: float) -> float:  # P(reject | V = v) times the chi-square density (plain math: fast)
            if v <= 0.0:
                return 0.0
            cs = crit * math.sqrt(v / df)
            tail = 0.5 * math.erfc((cs - lam) / r2) + (0.0 if one_sided else 0.5 * math.erfc((cs + lam) / r2))
            return tail * math.exp((0.5 * df - 1.0) * math.log(v) - 0.5 * v - log_norm)

        inside = [kink] if lo < kink < hi_v else None
        with warnings.catch_warnings():  # the v^(df/2 - 1) singularity at 0 for df < 2 (integrable)
            warnings.simplefilter("ignore", IntegrationWarning)
            return quad(f, lo, hi_v, points=inside, limit=200, epsabs=1e-13)[0] - power

    # the chi-square mass lies within 40 standard deviations sqrt(2 df) of its mean df
    lo, hi_v = max(0.0, df - 40.0 * math.sqrt(2.0 * df)), df + 40.0 * math.sqrt(2.0 * df) + 40.0
    hi = 1.0
    for _ in range(64):
        if rejects(hi) >= 0:
            break
        hi *= 2.0
    else:  # pragma: no cover - the rejection probability tends to 1 as the noncentrality grows
        raise ArithmeticError(f"noncentrality_for_power: no noncentrality below {hi * crit:.3g} reaches power {power}")
    return float(brentq(rejects, 0.0, hi, xtol=1e-14, rtol=1e-12)) * crit


def _detectable(prediction: float, allowance: float, crit: float, se: float, df: float,
                one_sided: bool = False) -> float | None:
    scale = abs(prediction)
    if scale == 0:
        return None
    return float((allowance + noncentrality_for_power(crit, df, one_sided=one_sided) * se) / scale)


def agreement(measured: float, stderr: float, prediction: float, *, df: float | None, alpha: float,
              allowance: float = 0.0, one_sided: bool = False) -> Agreement:
    """Agreement of a mean with a prediction by a t test on ``df`` degrees of freedom.

    measured: the Monte-Carlo mean. stderr: its estimated standard error (> 0 or 0).
    prediction: the theory value. df: degrees of freedom of ``stderr`` (``None``: known s.e.).
    alpha: false-failure rate of this check. allowance: stated bias allowance (>= 0).
    one_sided: check only ``measured <= prediction`` (a bound), failing when the mean is
        significantly above it.
    """
    f = "agreement"
    measured, prediction = V.real(f, "measured", measured), V.real(f, "prediction", prediction)
    se = V.real(f, "stderr", stderr, low=0.0)
    dfv = _check_df(df, f)
    a = _check_alpha(alpha, f)
    allowance = V.real(f, "allowance", allowance, low=0.0)
    one_sided = V.flag(f, "one_sided", one_sided)
    crit = t_critical(a, dfv, sided="one" if one_sided else "two")
    tol = crit * se + float(allowance)
    diff = float(measured) - float(prediction)
    stat = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    passed = diff <= tol if one_sided else abs(diff) <= tol
    kind = "one-sided" if one_sided else "two-sided"
    name = f"{kind} {'z' if math.isinf(dfv) else 't'}, {_df_text(dfv)}"
    return Agreement(measured=float(measured), prediction=float(prediction), stderr=se, df=dfv,
                     allowance=float(allowance), tolerance=float(tol), critical=crit, statistic=float(stat),
                     alpha=a, test=name, direction="measured <= prediction" if one_sided else "two-sided",
                     detectable=_detectable(float(prediction), float(allowance), crit, se, dfv, one_sided),
                     passed=bool(passed))


def control_variate_mean(samples: Any, controls: Sequence[tuple[Any, float]] = ()) -> tuple[float, float, float]:
    """Control-variate estimate of a mean: ``(estimate, standard error, degrees of freedom)``.

    samples: (T,) per-trial measurements. controls: ``(c, mean)`` pairs, ``c`` (T,) per-trial
    statistics on the same trials whose expectation ``mean`` is known exactly.

    Least squares of ``samples`` on ``[1, c - mean]``: the intercept, its standard error
    :math:`s_e\\sqrt{[(A^\\top A)^{-1}]_{00}}` and :math:`T-k-1` degrees of freedom (normal errors: the
    intercept's t statistic is exactly Student t). No controls: the sample mean, s.e. and T - 1 df.
    """
    a = V.samples("control_variate_mean", "samples", samples, min_size=2)
    ctl = _controls("control_variate_mean", "controls", controls, a.size)
    return _cv_mean(a, ctl)


def _cv_mean(a: np.ndarray, controls: list[tuple[np.ndarray, float]]) -> tuple[float, float, float]:
    T = a.size
    if not controls:
        m, se = mean_se(a)
        return float(m), float(se), float(T - 1)
    C = np.column_stack([c - mu for c, mu in controls])
    k = C.shape[1]
    A = np.column_stack([np.ones(T), C])
    coef, *_ = np.linalg.lstsq(A, a, rcond=None)
    resid = a - A @ coef
    df = T - k - 1
    s2 = float(resid @ resid) / df
    e0 = np.zeros(k + 1)
    e0[0] = 1.0
    v00 = float(np.linalg.solve(A.T @ A, e0)[0])
    return float(coef[0]), math.sqrt(max(s2 * v00, 0.0)), float(df)


def agreement_samples(samples: Any, prediction: float, *, alpha: float, allowance: float = 0.0,
                      one_sided: bool = False, controls: Sequence[tuple[Any, float]] = ()) -> Agreement:
    """:func:`agreement` of the mean of independent ``samples`` (T - 1 degrees of freedom), or of its
    control-variate estimate (:func:`control_variate_mean`, T - k - 1 df) when ``controls`` are given."""
    f = "agreement_samples"
    a = V.samples(f, "samples", samples, min_size=2)
    prediction, alpha = V.real(f, "prediction", prediction), _check_alpha(alpha, f)
    allowance, one_sided = V.real(f, "allowance", allowance, low=0.0), V.flag(f, "one_sided", one_sided)
    m, se, df = _cv_mean(a, _controls(f, "controls", controls, a.size))
    out = agreement(m, se, prediction, df=df, alpha=alpha, allowance=allowance, one_sided=one_sided)
    if controls:
        kind = "one-sided" if one_sided else "two-sided"
        out = _renamed(out, f"{kind} t ({len(controls)} control variates), {_df_text(df)}")
    return out


def agreement_batch_means(series: Any, prediction: float, *, alpha: float, n_batches: int = 20,
                          allowance: float = 0.0) -> Agreement:
    """:func:`agreement` of an autocorrelated series' mean, batch-means s.e. on n_batches - 1 df."""
    f = "agreement_batch_means"
    prediction, alpha = V.real(f, "prediction", prediction), _check_alpha(alpha, f)
    allowance = V.real(f, "allowance", allowance, low=0.0)
    m, se, df = _batch_means(f, series, n_batches)
    out = agreement(m, se, prediction, df=df, alpha=alpha, allowance=allowance)
    return _renamed(out, f"two-sided t (batch means), {_df_text(float(df))}")


def richardson(a_d: Any, p_d: float, a_2d: Any, p_2d: float, *, alpha: float,
               controls_d: Sequence[tuple[Any, float]] = (),
               controls_2d: Sequence[tuple[Any, float]] = ()) -> tuple[Agreement, dict[str, float]]:
    """Agreement of the :math:`O(1/d)`-bias-corrected mean with the prediction at ``d``.

    a_d, a_2d: per-trial measurements at sizes d and 2d (independent trials).
    p_d, p_2d: the predictions at d and 2d. controls_d, controls_2d: control variates per size
    (:func:`control_variate_mean`; the means are then their estimates, with T - k - 1 df each).

    With errors :math:`e_d = \\bar m_d - p_d` and :math:`e_{2d}`, a bias :math:`b/d` is removed by
    :math:`\\hat b_d = 2(e_d - e_{2d})`; the corrected mean :math:`\\bar m_d - \\hat b_d` has s.e.
    :math:`\\sqrt{\\mathrm{se}_d^2 + 4\\,\\mathrm{se}_{2d}^2}` and Welch-Satterthwaite df.
    Returns the check and the parts (means, s.e., bias) for the row.
    """
    f = "richardson"
    x1, x2 = V.samples(f, "a_d", a_d, min_size=2), V.samples(f, "a_2d", a_2d, min_size=2)
    p_d, p_2d, alpha = V.real(f, "p_d", p_d), V.real(f, "p_2d", p_2d), _check_alpha(alpha, f)
    m1, s1, f1 = _cv_mean(x1, _controls(f, "controls_d", controls_d, x1.size))
    m2, s2, f2 = _cv_mean(x2, _controls(f, "controls_2d", controls_2d, x2.size))
    bias = 2.0 * ((m1 - p_d) - (m2 - p_2d))
    se = math.sqrt(s1 * s1 + 4.0 * s2 * s2)
    df = welch_df([(s1 * s1, f1), (4.0 * s2 * s2, f2)])
    out = agreement(m1 - bias, se, p_d, df=df, alpha=alpha)
    cv = f"; {len(controls_d)} control variates" if controls_d else ""
    out = _renamed(out, f"two-sided t (Richardson d, 2d{cv}), {_df_text(df)}")
    parts = {"mean_d": m1, "se_d": s1, "prediction_2d": float(p_2d), "mean_2d": m2, "se_2d": s2, "bias_d": bias}
    return out, parts


@dataclass(frozen=True, kw_only=True)
class Extrapolation:
    """Two-run Richardson extrapolation (:func:`extrapolate`): the leading term at ``h`` and the next one.

    estimate, stderr, df: :math:`A h^p` (its estimate, s.e., Welch-Satterthwaite df).
    next_term, next_term_se, next_term_df: :math:`B h^q` (the term removed), likewise.
    """

    estimate: float
    stderr: float
    df: float
    next_term: float
    next_term_se: float
    next_term_df: float


def extrapolate(m1: float, se1: float, df1: float | None, m2: float, se2: float, df2: float | None, *,
                ratio: float, order: float = 1.0, next_order: float = 2.0) -> Extrapolation:
    r"""Richardson extrapolation from two independent runs at scales :math:`h` and :math:`h/r`.

    m1, se1, df1: estimate of :math:`m(h)`, its s.e. and degrees of freedom (``None``/``inf``: known s.e.).
    m2, se2, df2: the same at :math:`h/r`. ratio: :math:`r > 1`. order, next_order: :math:`p < q` in

    .. math::

        m(h) = A h^p + B h^q + o(h^q):\qquad
        A h^p = rac{r^q m(h/r) - m(h)}{r^{q-p} - 1},\qquad
        B h^q = rac{m(h) - r^p m(h/r)}{1 - r^{p-q}},

    exact for the two terms; each is a fixed linear combination :math:`w_1 m_1 + w_2 m_2`, with s.e.
    :math:`\sqrt{w_1^2\mathrm{se}_1^2 + w_2^2\mathrm{se}_2^2}` and the Welch-Satterthwaite df of its two parts
    (:func:`welch_df`). Examples: :func:`richardson` is :math:`p = 0`, :math:`q = 1`, :math:`h = 1/d`, :math:`r = 2`
    on the errors :math:`m - p_d` (:math:`2e_{2d} - e_d`); an even function of the noise level :math:`\sigma`
    with no constant term is :math:`h = \sigma^2`, :math:`p = 1`, :math:`q = 2`; runs at :math:`\sigma` and
    :math:`\sigma/\sqrt2` (:math:`r = 2`) give :math:`A\sigma^2 = 4m_2 - m_1` (s.e.
    :math:`\sqrt{\mathrm{se}_1^2 + 16\,\mathrm{se}_2^2}`) and :math:`B\sigma^4 = 2(m_1 - 2m_2)`.
    """
    f = "extrapolate"
    m1, m2 = V.real(f, "m1", m1), V.real(f, "m2", m2)
    se1, se2 = V.real(f, "se1", se1, low=0.0), V.real(f, "se2", se2, low=0.0)
    df1, df2 = V.dof(f, "df1", df1), V.dof(f, "df2", df2)
    r = V.real(f, "ratio", ratio, low=1.0, low_open=True)
    p = V.real(f, "order", order)
    q = V.real(f, "next_order", next_order, low=p, low_open=True)
    with np.errstate(all="ignore"):  # numpy powers: overflow gives inf (refused below), not OverflowError
        rq, rp, gap = (float(np.power(np.float64(r), e)) for e in (q, p, q - p))
        gap -= 1.0
    if not (math.isfinite(rq) and math.isfinite(rp) and math.isfinite(gap) and gap > 0):
        raise V.fail(f, "ratio", f"a number > 1 with ratio**next_order, ratio**order finite and ratio**(next_order "
                     f"- order) > 1 in floating point", f"{ratio!r} (order {p:g}, next_order {q:g})")
    w1, w2 = -1.0 / gap, rq / gap                      # A h^p = w1 m1 + w2 m2
    u1, u2 = rq / (rp * gap), -rq / gap                # B h^q = u1 m1 + u2 m2 = (m1 - r^p m2) / (1 - r^(p-q))

    def combine(a: float, b: float) -> tuple[float, float, float]:
        v1, v2 = (a * se1) ** 2, (b * se2) ** 2
        return a * m1 + b * m2, math.sqrt(v1 + v2), welch_df([(v1, df1), (v2, df2)])

    est, se, df = combine(w1, w2)
    nxt, nse, ndf = combine(u1, u2)
    return Extrapolation(estimate=float(est), stderr=float(se), df=float(df), next_term=float(nxt),
                         next_term_se=float(nse), next_term_df=float(ndf))


def exact(measured: float, prediction: float, *, tolerance: float, relative: bool = False) -> Agreement:
    """A deterministic check: |measured - prediction| <= tolerance (``relative``: times |prediction|).

    The tolerance must come from a derivation (round-off, truncation, a measured error bound) and
    is stated by the claim; no alpha (nothing is random in the comparison).
    """
    measured, prediction = V.real("exact", "measured", measured), V.real("exact", "prediction", prediction)
    tolerance, relative = V.real("exact", "tolerance", tolerance, low=0.0), V.flag("exact", "relative", relative)
    tol = float(tolerance) * (abs(float(prediction)) if relative else 1.0)
    diff = float(measured) - float(prediction)
    scale = abs(float(prediction))
    return Agreement(measured=float(measured), prediction=float(prediction), stderr=None, df=math.inf,
                     allowance=tol, tolerance=tol, critical=None, statistic=None, alpha=None,
                     test="deterministic bound", direction="two-sided",
                     detectable=float(tol / scale) if scale > 0 else None, passed=bool(abs(diff) <= tol))


def _renamed(a: Agreement, test: str) -> Agreement:
    from dataclasses import replace

    return replace(a, test=test)


# --------------------------------------------------------------------------- ordering
@dataclass(frozen=True, kw_only=True)
class Ordering:
    """One component of a paper statement "E D > margin", tested on paired per-trial differences.

    estimate: mean of D (t test) or median (sign test). margin: what D must exceed.
    stderr, df: of the mean (t test; ``None`` for the sign test). n: trials used (sign test: non-ties).
    statistic: t, or the number of trials above the margin. critical: the t critical value, or the
    smallest count that rejects. p_value, reverse_p_value: one-sided p-values of the statement
    and of its reverse. alpha: level of the statement's test (bounds false holds).
    reverse_alpha: level of the reverse test. test: its name. shown / reverse_shown: outcomes.
    """

    estimate: float
    margin: float
    stderr: float | None
    df: float | None
    n: int
    statistic: float
    critical: float
    p_value: float
    reverse_p_value: float
    alpha: float
    reverse_alpha: float
    test: str
    shown: bool
    reverse_shown: bool

    alpha_bounds = FALSE_HOLDS

    @property
    def verdict(self) -> str:
        return "holds" if self.shown else ("contradicted" if self.reverse_shown else "inconclusive")

    @property
    def tolerance(self) -> float:
        """The amount the estimate must exceed the margin by (t test: critical x s.e.)."""
        return float(self.critical * self.stderr) if self.stderr is not None else math.nan

    def row(self, **labels: Any) -> dict[str, Any]:
        d = asdict(self)
        return {**labels, **d, "direction": f"measured > {self.margin:g}", "alpha_bounds": FALSE_HOLDS,
                "verdict": self.verdict, "passed": self.shown}


def ordering_t(d: Any, *, alpha: float, margin: float = 0.0, reverse_alpha: float | None = None) -> Ordering:
    """Paired one-sided t test of ``mean(d) > margin`` (and of its reverse), T - 1 df."""
    x = V.samples("ordering_t", "d", d, min_size=2, what="paired differences (ordering_sign takes unbounded ones)")
    a, ra, margin = _ordering_args("ordering_t", alpha, margin, reverse_alpha)
    return _ordering_t(x, a, ra, margin)


def _ordering_args(func: str, alpha: Any, margin: Any, reverse_alpha: Any) -> tuple[float, float, float]:
    a = _check_alpha(alpha, func)
    ra = a if reverse_alpha is None else _check_alpha(reverse_alpha, func, "reverse_alpha")
    return a, ra, V.real(func, "margin", margin)


def _ordering_t(x: np.ndarray, a: float, ra: float, margin: float) -> Ordering:
    m, se = (float(v) for v in mean_se(x))
    df = x.size - 1
    crit = t_critical(a, df, sided="one")
    if se > 0:
        t = (m - margin) / se
        p, rp = float(_st.t.sf(t, df)), float(_st.t.cdf(t, df))
    else:
        t = math.copysign(math.inf, m - margin) if m != margin else 0.0
        p, rp = (0.0, 1.0) if m > margin else ((1.0, 0.0) if m < margin else (1.0, 1.0))
    return Ordering(estimate=m, margin=float(margin), stderr=se, df=float(df), n=int(x.size), statistic=float(t),
                    critical=crit, p_value=p, reverse_p_value=rp, alpha=a, reverse_alpha=ra,
                    test=f"paired one-sided t, {df} df", shown=bool(p <= a), reverse_shown=bool(rp <= ra))


def ordering_sign(d: Any, *, alpha: float, margin: float = 0.0, reverse_alpha: float | None = None) -> Ordering:
    """Exact one-sided sign test of ``median(d) > margin`` (and of its reverse); ties dropped.

    Valid for unbounded differences (a log ratio is +inf when one method reaches exactly zero).
    """
    x = V.samples("ordering_sign", "d", d, finite=False, nan=True, what="paired differences (NaN: a tie)")
    a, ra, margin = _ordering_args("ordering_sign", alpha, margin, reverse_alpha)
    return _ordering_sign(x, a, ra, margin)


def _ordering_sign(x: np.ndarray, a: float, ra: float, margin: float) -> Ordering:
    x = x[~np.isnan(x)]
    up, down = int(np.sum(x > margin)), int(np.sum(x < margin))
    n = up + down
    if n == 0:
        p = rp = 1.0
        crit = math.inf
    else:
        p = float(_st.binom.sf(up - 1, n, 0.5))      # P(X >= up)
        rp = float(_st.binom.sf(down - 1, n, 0.5))   # P(X >= down)
        # smallest count k with P(X >= k) <= alpha
        ks = np.arange(n + 1)
        ok = ks[_st.binom.sf(ks - 1, n, 0.5) <= a]
        crit = float(ok[0]) if ok.size else math.inf
    med = float(np.median(x)) if x.size else math.nan
    return Ordering(estimate=med, margin=float(margin), stderr=None, df=None, n=n, statistic=float(up),
                    critical=crit, p_value=p, reverse_p_value=rp, alpha=a, reverse_alpha=ra,
                    test=f"one-sided sign test, {n} non-tied trials", shown=bool(p <= a),
                    reverse_shown=bool(rp <= ra))


def ordering(d: Any, *, alpha: float, margin: float = 0.0, reverse_alpha: float | None = None) -> Ordering:
    """The paired t test of :func:`ordering_t` when every difference is finite, else the sign test."""
    x = V.samples("ordering", "d", d, finite=False, nan=True, what="paired differences (NaN: a tie)")
    a, ra, margin = _ordering_args("ordering", alpha, margin, reverse_alpha)
    if np.all(np.isfinite(x)):
        if x.size < 2:
            raise V.fail("ordering", "d", "an array of at least 2 finite paired differences (the t test)", f"{x.size}")
        return _ordering_t(x, a, ra, margin)
    return _ordering_sign(x, a, ra, margin)


def log10_ratio(a: Any, b: Any) -> np.ndarray:
    """Per-trial :math:`\\log_{10}(a/b)` of non-negative metrics, exact at zero: +inf when only ``b`` is
    0, -inf when only ``a`` is, NaN (a tie, dropped by the sign test) when both are."""
    a, b = (_metric("log10_ratio", n, v) for n, v in (("a", a), ("b", b)))
    if a.shape != b.shape:
        raise V.fail("log10_ratio", "b", f"an array of the shape of 'a' {a.shape}", f"shape {b.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(a) - np.log10(b)


def _metric(func: str, name: str, x: Any) -> np.ndarray:
    a = V._real_array(func, name, x, "an array of non-negative metrics")
    if np.any(np.isnan(a)):
        raise V.fail(func, name, "non-negative metrics (no NaN; +inf allowed)", f"{int(np.isnan(a).sum())} NaN value(s)")
    if np.any(a < 0):
        raise V.fail(func, name, "non-negative metrics", f"minimum {float(a.min()):.6g}")
    return a


# --------------------------------------------------------------------------- claim level
def agreement_verdict(checks: Iterable[Agreement | Mapping[str, Any]]) -> str:
    """``holds`` when every check passed, else ``fails``."""
    checks = V.rows("agreement_verdict", "checks", checks, keys=("passed",))
    ok = all((c.passed if isinstance(c, Agreement) else bool(c["passed"])) for c in checks)
    return "holds" if ok else "fails"


def ordering_verdict(checks: Iterable[Ordering | Mapping[str, Any]]) -> str:
    """``holds`` when every component is shown (intersection-union test, false holds <= alpha),
    ``contradicted`` when some reverse is shown (components at alpha/m), else ``inconclusive``."""
    cs = V.rows("ordering_verdict", "checks", checks, keys=("shown", "reverse_shown"))
    shown = [c.shown if isinstance(c, Ordering) else bool(c["shown"]) for c in cs]
    rev = [c.reverse_shown if isinstance(c, Ordering) else bool(c["reverse_shown"]) for c in cs]
    if all(shown):
        return "holds"
    return "contradicted" if any(rev) else "inconclusive"


def deciding_row(rows: Sequence[Mapping[str, Any]], verdict: str) -> Mapping[str, Any]:
    """The row that decided ``verdict``: the worst failing agreement row, the contradicting (or not
    shown) ordering row with the most extreme statistic, or, when the claim holds, the row closest to
    failing."""
    verdict = V.choice("deciding_row", "verdict", verdict, VERDICTS)
    rows = V.rows("deciding_row", "rows", rows)
    if not all(isinstance(r, Mapping) and ("passed" in r or "shown" in r) for r in rows):
        raise V.fail("deciding_row", "rows", "dicts of Agreement.row or Ordering.row ('passed' or 'shown')",
                     "a row without either key")

    def margin(r: Mapping[str, Any]) -> float:
        if "shown" in r:  # ordering: p-value of the statement, larger = weaker
            return -float(r["p_value"])
        tol = r.get("tolerance")
        diff = float(r["measured"]) - float(r["prediction"])
        gap = abs(diff) if r.get("direction", "two-sided") == "two-sided" else diff
        if tol is None or not tol > 0:
            return 1.0 if gap <= 0 else -math.inf
        return 1.0 - gap / float(tol)

    if verdict == "contradicted":
        cand = [r for r in rows if r.get("reverse_shown")]
        if not cand:
            raise V.fail("deciding_row", "verdict", "a verdict the rows support", "'contradicted' with no reverse shown")
        return min(cand, key=lambda r: float(r["reverse_p_value"]))
    if verdict in ("fails", "inconclusive"):
        cand = [r for r in rows if not r.get("passed", r.get("shown"))]
        if not cand:
            raise V.fail("deciding_row", "verdict", "a verdict the rows support", f"{verdict!r} with every row passed")
        return min(cand, key=margin)
    return min(rows, key=margin)
