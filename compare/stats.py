"""Statistical checks with a stated false-failure rate (THEORY.md section 6).

Every stochastic claim compares a Monte-Carlo mean with a prediction by a two-sided z test:
it *fails* when

.. math::

    |\\bar m - p| > z_{1-\\alpha/2}\\,\\widehat{\\mathrm{se}} + a,

where :math:`a \\ge 0` is a finite-size allowance stated next to the check (THEORY.md gives
:math:`O(1/d)` biases for the asymptotic formulas). Under the null (the prediction is right and
the allowance covers the bias) the check fails with probability at most ``alpha``. A family of
``m`` checks splits ``alpha`` (Bonferroni). Autocorrelated series use batch means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

#: default false-failure rate of one check (|z| <= 3.29), THEORY.md section 6.
ALPHA = 1e-3


def _check_alpha(alpha: float, where: str) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{where}: argument 'alpha' must be in (0, 1); got {alpha!r}.")
    return alpha


def z_critical(alpha: float = ALPHA) -> float:
    """Two-sided critical value :math:`z_{1-\\alpha/2}`."""
    return float(_st.norm.isf(_check_alpha(alpha, "z_critical") / 2.0))


def t_critical(alpha: float, dof: int) -> float:
    """Two-sided Student-t critical value with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"t_critical: argument 'dof' must be >= 1; got {dof!r}.")
    return float(_st.t.isf(_check_alpha(alpha, "t_critical") / 2.0, dof))


def bonferroni(alpha: float, m: int) -> float:
    """Per-check rate for a family of ``m`` checks with family-wise rate ``alpha``."""
    if m < 1:
        raise ValueError(f"bonferroni: argument 'm' must be >= 1; got {m!r}.")
    return _check_alpha(alpha, "bonferroni") / m


def mean_se(samples: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error (sample sd / sqrt(T)) along ``axis``."""
    x = np.asarray(samples, dtype=float)
    T = x.shape[axis]
    if T < 2:
        raise ValueError(f"mean_se: argument 'samples' needs >= 2 trials along axis {axis}; got {T}.")
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / np.sqrt(T)


def batch_means_se(series: np.ndarray, *, n_batches: int = 20) -> tuple[float, float]:
    """Mean and batch-means standard error of an autocorrelated series.

    The series is cut into ``n_batches`` contiguous batches; their means are treated as
    independent (valid when each batch is much longer than the autocorrelation time).
    """
    x = np.asarray(series, dtype=float).ravel()
    if n_batches < 2 or x.size < 2 * n_batches:
        raise ValueError(
            f"batch_means_se: argument 'series' must have >= 2*n_batches = {2 * n_batches} values; got {x.size}."
        )
    b = x.size // n_batches
    means = x[: b * n_batches].reshape(n_batches, b).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(n_batches))


@dataclass(frozen=True)
class ZTest:
    """Result of one two-sided z test of ``measured`` (mean) against ``prediction``."""

    prediction: float
    measured: float
    stderr: float
    allowance: float
    alpha: float
    tolerance: float
    z: float
    passed: bool


def z_test(
    measured: float,
    stderr: float,
    prediction: float,
    *,
    alpha: float = ALPHA,
    allowance: float = 0.0,
) -> ZTest:
    """Two-sided z test with a finite-size ``allowance`` added to the tolerance."""
    if not stderr >= 0:
        raise ValueError(f"z_test: argument 'stderr' must be >= 0; got {stderr!r}.")
    if allowance < 0:
        raise ValueError(f"z_test: argument 'allowance' must be >= 0; got {allowance!r}.")
    tol = z_critical(alpha) * stderr + allowance
    diff = float(measured) - float(prediction)
    z = diff / stderr if stderr > 0 else (0.0 if diff == 0 else np.inf * np.sign(diff))
    return ZTest(float(prediction), float(measured), float(stderr), float(allowance), float(alpha),
                 float(tol), float(z), bool(abs(diff) <= tol))


def paired_less(a: np.ndarray, b: np.ndarray, *, alpha: float = ALPHA) -> tuple[bool, float, float]:
    """One-sided paired test that ``mean(a) < mean(b)`` (common random numbers per trial).

    Returns ``(passed, mean_difference, stderr)``; passes when the mean of ``b - a`` exceeds
    ``z_{1-alpha}`` standard errors (probability <= alpha of passing by chance when they are equal).
    """
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    m, se = mean_se(d)
    crit = float(_st.norm.isf(_check_alpha(alpha, "paired_less")))
    return bool(m > crit * se), float(m), float(se)
