"""compare.stats: critical values from the right distribution, the error rates they state, power,
ordering verdicts, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from compare import stats
from compare.engine.registry import Outcome


def test_t_critical_matches_student_t_and_normal_limit():
    assert stats.t_critical(1e-3, 29) == pytest.approx(st.t.isf(5e-4, 29), rel=1e-12)
    assert stats.t_critical(1e-3, 29, sided="one") == pytest.approx(st.t.isf(1e-3, 29), rel=1e-12)
    assert stats.t_critical(1e-3, None) == pytest.approx(3.2905267, rel=1e-7)
    # the normal value understates the t value at small df (what made the old alphas wrong)
    assert stats.t_critical(1e-3, 11) > 1.3 * stats.t_critical(1e-3, None)


@pytest.mark.parametrize("T", [5, 12, 30])
def test_agreement_false_failure_rate_is_alpha_under_the_null(T):
    """Monte Carlo: with normal trials and a right prediction, the t check fails at rate alpha
    (binomial 99.9% band), while the old normal critical value failed several times as often."""
    rng = np.random.default_rng(1)
    alpha, reps = 0.05, 20000
    x = rng.standard_normal((reps, T))
    m, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(T)
    crit_t = stats.t_critical(alpha, T - 1)
    rate_t = float(np.mean(np.abs(m) > crit_t * se))
    band = st.binom.ppf([5e-4, 1 - 5e-4], reps, alpha) / reps
    assert band[0] <= rate_t <= band[1], f"T={T}: false-failure rate {rate_t:.4f} outside {band} for alpha {alpha}"
    rate_z = float(np.mean(np.abs(m) > stats.t_critical(alpha, None) * se))
    if T <= 12:
        assert rate_z > 1.2 * alpha, f"normal critical value gave {rate_z:.4f}"


@pytest.mark.parametrize("T", [10, 30])
def test_agreement_detectable_error_is_caught_with_probability_0_9(T):
    """At the true s.e., a prediction off by the stated detectable error fails with probability 0.9
    (noncentral t); Monte Carlo within its binomial 99.9% band."""
    rng = np.random.default_rng(2)
    alpha, p, sd = 1e-3, 2.0, 0.1
    r = stats.agreement(p, sd / math.sqrt(T), p, df=T - 1, alpha=alpha).detectable
    reps = 20000
    x = p + sd * rng.standard_normal((reps, T))
    m, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(T)
    power = float(np.mean(np.abs(m - p * (1 + r)) > stats.t_critical(alpha, T - 1) * se))
    lo, hi = st.binom.ppf([5e-4, 1 - 5e-4], reps, 0.9) / reps
    assert lo <= power <= hi, f"power {power:.4f} at the stated detectable {r:.4g} (expected 0.9)"


def test_agreement_row_and_one_sided_bound():
    a = stats.agreement(1.2, 0.1, 1.0, df=9, alpha=1e-3, one_sided=True)
    assert a.passed and a.direction == "measured <= prediction" and a.test == "one-sided t, 9 df"
    b = stats.agreement(2.0, 0.1, 1.0, df=9, alpha=1e-3, one_sided=True)
    assert not b.passed
    row = a.row(eta=0.3)
    assert row["eta"] == 0.3 and row["alpha_bounds"] == "false failure" and row["df"] == 9


def test_batch_means_and_richardson_degrees_of_freedom():
    m, se, df = stats.batch_means(np.arange(100.0), n_batches=20)
    assert df == 19 and m == pytest.approx(49.5)
    a = stats.agreement_batch_means(np.ones(40) + 1e-3 * np.arange(40), 1.0195, alpha=1e-3, n_batches=20)
    assert a.test == "two-sided t (batch means), 19 df"
    rng = np.random.default_rng(3)
    out, parts = stats.richardson(1 + 0.01 + 0.1 * rng.standard_normal(30), 1.0,
                                  1 + 0.005 + 0.07 * rng.standard_normal(30), 1.0, alpha=1e-3)
    assert 29 < out.df < 58 and "Richardson" in out.test
    assert set(parts) == {"mean_d", "se_d", "prediction_2d", "mean_2d", "se_2d", "bias_d"}


@pytest.mark.parametrize("p, q, r", [(1.0, 2.0, 2.0), (0.0, 1.0, 2.0), (1.0, 3.0, 1.5), (-0.5, 0.5, 3.0)])
def test_extrapolate_is_exact_for_two_terms(p, q, r):
    """m(h) = A h^p + B h^q at h and h/r: both terms recovered to round-off; weights give the stated s.e."""
    A, B, h = 1.7, -0.3, 0.4
    m = lambda x: A * x**p + B * x**q  # noqa: E731
    e = stats.extrapolate(m(h), 0.1, 9, m(h / r), 0.2, 19, ratio=r, order=p, next_order=q)
    assert e.estimate == pytest.approx(A * h**p, rel=1e-12) and e.next_term == pytest.approx(B * h**q, rel=1e-12)
    g = r ** (q - p) - 1.0
    assert e.stderr == pytest.approx(math.hypot(0.1 / g, 0.2 * r**q / g), rel=1e-12)
    assert e.df == pytest.approx(stats.welch_df([((0.1 / g) ** 2, 9), ((0.2 * r**q / g) ** 2, 19)]), rel=1e-12)
    assert e.next_term_se == pytest.approx(math.hypot(0.1 * r**q / (r**p * g), 0.2 * r**q / g), rel=1e-12)


def test_richardson_is_extrapolate_of_the_errors_at_orders_0_and_1():
    rng = np.random.default_rng(3)
    a1, a2 = 1.01 + 0.1 * rng.standard_normal(30), 1.005 + 0.07 * rng.standard_normal(30)
    out, parts = stats.richardson(a1, 1.0, a2, 0.9, alpha=1e-3)
    se = lambda x: x.std(ddof=1) / math.sqrt(x.size)  # noqa: E731
    e = stats.extrapolate(a1.mean() - 1.0, se(a1), 29, a2.mean() - 0.9, se(a2), 29, ratio=2.0, order=0.0, next_order=1.0)
    assert out.measured - out.prediction == pytest.approx(e.estimate, rel=1e-10)
    assert parts["bias_d"] == pytest.approx(e.next_term, rel=1e-10)
    assert out.stderr == pytest.approx(e.stderr, rel=1e-12) and out.df == pytest.approx(e.df, rel=1e-12)


def test_extrapolate_in_sigma_squared_is_unbiased_with_a_welch_t():
    """C7's design on synthetic data with known a, b: m(sigma) = a s^2 + b s^4 measured by the mean of 19 normal
    batch means (18 df) at s and s/sqrt2, s.e. proportional to s^2. Over 20000 replications: the extrapolated
    estimate is unbiased for a s^2 (mean within 4 Monte-Carlo s.e.), b s^4 likewise, its t statistic with the
    Welch-Satterthwaite df rejects at rate alpha (binomial 99.9% band), and without the extrapolation (m1 alone) a
    second-order term of 3 s.e. is rejected far more often (what the extrapolation removes)."""
    rng = np.random.default_rng(6)
    a, b, s, sd1, T, reps, alpha = 1.0, 6.0, 0.5, 0.2, 19, 20000, 0.05
    h = s * s
    x1 = a * h + b * h * h + sd1 * rng.standard_normal((reps, T))
    x2 = a * h / 2 + b * h * h / 4 + 0.5 * sd1 * rng.standard_normal((reps, T))
    m1, m2 = x1.mean(axis=1), x2.mean(axis=1)
    se1, se2 = x1.std(axis=1, ddof=1) / math.sqrt(T), x2.std(axis=1, ddof=1) / math.sqrt(T)
    ex = [stats.extrapolate(m1[i], se1[i], T - 1, m2[i], se2[i], T - 1, ratio=2.0) for i in range(reps)]
    est = np.array([e.estimate for e in ex])
    nxt = np.array([e.next_term for e in ex])
    t = (est - a * h) / np.array([e.stderr for e in ex])
    crit = np.array([stats.t_critical(alpha, e.df) for e in ex])
    sd_est = math.sqrt(sd1**2 + 16 * (0.5 * sd1) ** 2) / math.sqrt(T)      # = sqrt(5) sd1 / sqrt(T)
    assert abs(est.mean() - a * h) < 4 * sd_est / math.sqrt(reps), f"bias {est.mean() - a * h:.3e}"
    sd_next = math.sqrt(4 * sd1**2 + 16 * (0.5 * sd1) ** 2) / math.sqrt(T)  # 2 (m1 - 2 m2)
    assert abs(nxt.mean() - b * h * h) < 4 * sd_next / math.sqrt(reps), f"b s^4: {nxt.mean():.4f} vs {b * h * h}"
    rate = float(np.mean(np.abs(t) > crit))
    lo, hi = st.binom.ppf([5e-4, 1 - 5e-4], reps, alpha) / reps
    assert lo <= rate <= hi, f"false-failure rate {rate:.4f} outside [{lo:.4f}, {hi:.4f}] (alpha {alpha})"
    assert 18 <= min(e.df for e in ex) and max(e.df for e in ex) <= 36
    plain = float(np.mean(np.abs(m1 - a * h) > stats.t_critical(alpha, T - 1) * se1))
    assert b * h * h / (sd1 / math.sqrt(T)) > 3 and plain > 0.5, f"m1 alone rejects at rate {plain:.3f}"


def test_exact_check_has_no_alpha_and_a_relative_detectable():
    e = stats.exact(1.0 + 5e-5, 1.0, tolerance=1e-4)
    assert e.passed and e.alpha is None and e.alpha_bounds is None and e.detectable == pytest.approx(1e-4)
    assert not stats.exact(1.0 + 2e-4, 1.0, tolerance=1e-4).passed


def test_ordering_three_way_verdicts():
    rng = np.random.default_rng(4)
    yes = stats.ordering(1.0 + 0.1 * rng.standard_normal(10), alpha=1e-3)
    assert yes.shown and yes.verdict == "holds" and yes.test == "paired one-sided t, 9 df"
    noisy = stats.ordering(0.05 + rng.standard_normal(10), alpha=1e-3)
    assert noisy.verdict == "inconclusive"
    rev = stats.ordering(-1.0 + 0.1 * rng.standard_normal(10), alpha=1e-3, reverse_alpha=1e-3 / 4)
    assert rev.verdict == "contradicted"
    assert stats.ordering_verdict([yes, noisy]) == "inconclusive"
    assert stats.ordering_verdict([yes, rev]) == "contradicted"
    assert stats.ordering_verdict([yes, yes]) == "holds"


def test_ordering_uses_the_sign_test_for_unbounded_log_ratios():
    kfac = np.array([0.0] * 6 + [1e-16] * 4)            # exactly zero in 6 of 10 trials
    sgd = np.full(10, 1e-2)
    d = stats.log10_ratio(sgd, kfac)
    assert np.isinf(d).sum() == 6
    o = stats.ordering(d, alpha=1e-3)
    assert o.test.startswith("one-sided sign test") and o.verdict == "holds"
    assert o.p_value == pytest.approx(2.0 ** -10)
    both_zero = stats.ordering(stats.log10_ratio(np.zeros(10), np.zeros(10)), alpha=1e-3)
    assert both_zero.n == 0 and both_zero.verdict == "inconclusive"


def test_ordering_false_holds_rate_is_at_most_alpha_at_the_boundary():
    rng = np.random.default_rng(5)
    alpha, reps = 0.05, 20000
    d = rng.standard_normal((reps, 10))  # E d = 0: the statement "E d > 0" is false (boundary)
    m, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(10)
    rate = float(np.mean(m / se > stats.t_critical(alpha, 9, sided="one")))
    assert rate <= st.binom.ppf(1 - 5e-4, reps, alpha) / reps, rate


def test_outcome_headline_is_the_deciding_row():
    ok = stats.agreement(1.0, 0.01, 1.0, df=29, alpha=1e-3).row(case="a")
    bad = stats.agreement(1.5, 0.01, 1.0, df=29, alpha=1e-3).row(case="b")
    out = Outcome.agreement([ok, bad], source="test", alpha=1e-3)
    assert out.verdict == "fails" and out.measured == 1.5 and out.test == "two-sided t, 29 df"
    assert out.detectable == max(ok["detectable"], bad["detectable"])
    # a one-sided row checking a stated bound (role "bound") states its own detectable, outside the claim's
    bound = stats.agreement(0.5, 0.2, 1.0, df=29, alpha=1e-3, one_sided=True).row(case="c", role="bound")
    assert bound["detectable"] > ok["detectable"]
    assert Outcome.agreement([ok, bound], source="test", alpha=1e-3).detectable == ok["detectable"]
    assert Outcome.agreement([bound], source="test", alpha=1e-3).detectable == bound["detectable"]
    rng = np.random.default_rng(6)
    shown = stats.ordering(1 + 0.1 * rng.standard_normal(10), alpha=1e-3).row(what="shown")
    weak = stats.ordering(0.05 + rng.standard_normal(10), alpha=1e-3).row(what="weak")
    o = Outcome.ordering([shown, weak], source="test", alpha=1e-3)
    assert o.verdict == "inconclusive" and o.measured == weak["estimate"] and o.alpha_bounds == "false holds"
    assert o.direction == "measured > 0"


def test_cv_mean_is_the_regression_intercept_with_its_t_distribution():
    """The control-variate mean: without controls the sample mean (T - 1 df); with k controls the
    least-squares intercept, s.e. s_e sqrt(1/T + cbar' Sxx^{-1} cbar), T - k - 1 df, and a t statistic
    calibrated at that df (2000 synthetic data sets, exact mean 0.7)."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal(25)
    m, se, df = stats.control_variate_mean(a)
    assert (m, se, df) == (pytest.approx(a.mean()), pytest.approx(a.std(ddof=1) / 5), 24)
    T, k, reps = 30, 2, 2000
    tstats = np.empty(reps)
    for i in range(reps):
        C = rng.standard_normal((T, k)) * [1.0, 3.0]
        y = 0.7 + C @ [0.8, -0.3] + 0.2 * rng.standard_normal(T)
        m, se, df = stats.control_variate_mean(y, [(C[:, 0], 0.0), (C[:, 1], 0.0)])
        tstats[i] = (m - 0.7) / se
        if i == 0:
            cb = C.mean(axis=0)
            Cc = C - cb
            resid = y - np.column_stack([np.ones(T), C]) @ np.linalg.lstsq(np.column_stack([np.ones(T), C]), y,
                                                                           rcond=None)[0]
            s2 = resid @ resid / (T - k - 1)
            want = math.sqrt(s2 * (1 / T + cb @ np.linalg.solve(Cc.T @ Cc, cb)))
            assert df == T - k - 1 and se == pytest.approx(want, rel=1e-10), (se, want)
    crit = st.t.isf(0.025, T - k - 1)
    rate = np.mean(np.abs(tstats) > crit)
    # binomial(2000, 0.05): sd 0.0049; 4.4 sd bounds a false alarm of this test at 1e-5
    assert abs(rate - 0.05) <= 4.4 * math.sqrt(0.05 * 0.95 / reps), f"rejection rate {rate:.4f} at nominal 0.05"
    with pytest.raises(ValueError, match="'controls' must be"):
        stats.control_variate_mean(np.ones(4), [(np.ones(4), 0.0), (np.ones(4), 0.0)])


@pytest.mark.parametrize("call, needle", [
    (lambda: stats.t_critical(0.0, 5), "argument 'alpha'"),
    (lambda: stats.t_critical(1e-3, 0), "argument 'df'"),
    (lambda: stats.t_critical(1e-3, 5, sided="left"), "argument 'sided'"),
    (lambda: stats.bonferroni(1e-3, 0), "argument 'm'"),
    (lambda: stats.mean_se([1.0]), "argument 'samples'"),
    (lambda: stats.batch_means(np.ones(10), n_batches=20), "argument 'series'"),
    (lambda: stats.agreement(1.0, -1.0, 1.0, df=3, alpha=1e-3), "argument 'stderr'"),
    (lambda: stats.ordering_t([1.0, np.inf, 2.0], alpha=1e-3), "argument 'd'"),
    (lambda: stats.deciding_row([], "holds"), "argument 'rows'"),
])
def test_bad_arguments_name_themselves(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()
