"""Monte Carlo against the population-power closed form (docs/theory.md, "Population power preconditioner").

The spike of the population power preconditioner, :math:`v=(\\Sigma+\\lambda_GI)^{-p}X^\\top y/n`, measured by
:func:`simulate.single_index.one_step` (``powers=...``), against
:func:`theory.single_index.population_power_spike` with ``finite_n=True``, whose components are exact
finite-n expectations for Gaussian x (no finite-size allowance):

.. math::

    \\mathbb E\\langle v,\\beta^*\\rangle=c\\,\\beta^{*\\top}P\\Sigma\\beta^*,\\qquad
    \\mathbb E\\lVert v\\rVert^2=c^2\\lVert P\\Sigma\\beta^*\\rVert^2(1-\\tfrac1n)+\\tfrac1n\\,\\mathbb E[y^2\\lVert Px\\rVert^2].

Setting: the Figure 3 family (two-level spectrum, eps = 0.9, Haar basis, beta* Gaussian with s = 1),
d = 200, n = 400, tanh teacher, noise 0.1, 200 trials, p in {1/4, 1/2}, lam_G in {1e-3, 1e-2, 1e-1, 1}.
Each of the 16 rows (2 powers x 4 ridges x 2 components) is a two-sided Student t test on T - 1 = 199
df with the sample standard error (:func:`compare.stats.agreement_samples`); the family fails when any
row fails, at family-wise alpha = 1e-3 bounding false failure (Bonferroni, 1e-3/16 per row). Instance
and trials from the master seed's streams ``test.population_power/instance`` and ``.../trials``.
Measured over master seeds 0..19: all pass (largest |t| 3.03, critical 4.09), t statistics mean 0.07,
s.d. 1.00 (the 16 rows of a seed share its trials, so they move together; over seeds 20..79 the
per-seed mean t is 0.12 +- 0.13, largest |t| 3.01); detectable 3.4-3.9% (3.1-4.0% over 20..79), and
predictions off by it failed for all 80 seeds, both signs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from compare import stats
from compare.engine.seeds import stream
from simulate import data as sd
from simulate import single_index as ss
from theory import single_index as ts

D, N_BATCH, TRIALS, EPS, NOISE = 200, 400, 200, 0.9, 0.1
LAMS = np.array([1e-3, 1e-2, 1e-1, 1.0])
POWERS = np.array([0.25, 0.5])
ALPHA = stats.ALPHA
ROWS = 2 * LAMS.size * POWERS.size


def _instance(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of Sigma and beta* in its eigenbasis (s = 1), drawn from the master seed's stream
    ``test.population_power/instance``."""
    rng = np.random.default_rng(stream(seed, "test.population_power", "instance"))
    Sigma = sd.anisotropic_covariance(D, eps=EPS, rng=rng)
    beta = rng.standard_normal(D)
    t, O = np.linalg.eigh(Sigma)
    bt = O.T @ beta
    return t, bt / math.sqrt(float((t * bt) @ bt))


def _run(seed: int):
    t, bt = _instance(seed)
    res = ss.one_step(t, bt, n=N_BATCH, N=D // 2, lam_G=LAMS, teacher="tanh", noise_std=NOISE, trials=TRIALS,
                      seed=stream(seed, "test.population_power", "trials"), network=False, population=False,
                      powers=POWERS, blas_threads=1)
    pred = ts.population_power_spike(t, bt, n=N_BATCH, lam_G=LAMS[None, :], p=POWERS[:, None], teacher="tanh",
                                     noise_std=NOISE, finite_n=True)
    return res, pred


def _rows(res, pred, *, factor: float = 1.0) -> list[dict]:
    alpha = stats.bonferroni(ALPHA, ROWS)
    rows = []
    for i, p in enumerate(POWERS):
        for j, lam in enumerate(LAMS):
            for part in ("inner", "sqnorm"):
                a = stats.agreement_samples(getattr(res, "population_power_" + part)[:, i, j],
                                            factor * float(getattr(pred, part)[i, j]), alpha=alpha)
                rows.append(a.row(p=float(p), lam_G=float(lam), component=part))
    return rows


def _describe(rows) -> str:
    return "; ".join(f"p={r['p']}, lam={r['lam_G']:g}, {r['component']}: {r['measured']:.5g} vs "
                     f"{r['prediction']:.5g} (t = {r['statistic']:.2f}, critical {r['critical']:.2f}, {r['test']})"
                     for r in rows if not r["passed"])


@pytest.mark.parametrize("offset", range(5))
def test_population_power_components_agree(seed, offset):
    res, pred = _run(seed + offset)
    rows = _rows(res, pred)
    assert len(rows) == ROWS and all(r["alpha"] == pytest.approx(ALPHA / ROWS) for r in rows)
    assert all(r["passed"] for r in rows), f"seed {seed + offset}: {_describe(rows)}"


@pytest.mark.parametrize("sign", [+1, -1])
def test_fails_when_off_by_its_detectable(seed, sign):
    """Power, shown: every prediction off by the family's stated detectable (the largest over its rows)
    fails the family."""
    res, pred = _run(seed)
    rows = _rows(res, pred)
    det = max(r["detectable"] for r in rows)
    assert 0 < det < 0.1
    off = _rows(res, pred, factor=1.0 + sign * det)
    assert not all(r["passed"] for r in off), f"predictions off by {sign * det:+.4f} (relative) still pass"
