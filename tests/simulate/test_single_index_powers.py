"""simulate.single_index: same-batch and population preconditioner powers, and Muon's orthogonalisation.

``one_step(powers=...)`` reports the spikes of :math:`(\\hat\\Sigma_x+\\lambda_GI)^{-p}` and
:math:`(\\Sigma+\\lambda_GI)^{-p}` from the trial's one eigendecomposition; ``muon=True`` measures the top
right singular vector of the Newton-Schulz-orthogonalised update against the raw one
(:func:`simulate.single_index.orthogonalised_direction`). Checked here: the default output is
unchanged, p = 1 is the KFAC spike and p = 0 SGD's, the powers agree with a naive re-implementation
(scipy's Schur-based fractional matrix power, no eigendecomposition), and the Muon helper against the
scalar Newton-Schulz map of the singular values.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import linalg as sla

from simulate import data
from simulate import single_index as ss
from simulate.matrix_optimizers import NS_COEFFICIENTS
from simulate.trials import spawn_seeds
from tests.conftest import assert_close

NOISE = 0.1
NEW_FIELDS = ("powers", "power", "power_inner", "power_sqnorm", "population_power", "population_power_inner",
              "population_power_sqnorm", "muon_cos", "muon_spike_gain", "muon_alignment", "muon_raw_ratio",
              "muon_spike_value", "muon_top_value", "muon_spike_residual", "muon_raw_values")


def _problem(d, rng, eps=0.9):
    t = data.two_level_spectrum(d, eps=eps)
    beta = rng.standard_normal(d)
    return t, beta / math.sqrt(float((t * beta) @ beta))


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("n, lam", [(60, [1e-3, 0.1, 10.0]), (20, [0.0, 0.05, 2.0])])  # psi = 2 and 2/3
def test_default_output_unchanged_and_new_fields(rng, n, lam):
    """Same seed with and without the options: every existing field is identical (the options draw no
    random numbers); without them the new fields are None."""
    d, N = 30, 12
    t, bt = _problem(d, rng)
    kw = dict(n=n, N=N, lam_G=lam, teacher="tanh", noise_std=NOISE, trials=3, seed=9)
    plain = ss.one_step(t, bt, **kw)
    more = ss.one_step(t, bt, powers=(0.0, 0.25, 0.5, 1.0), muon=True, **kw)
    for f in dataclasses.fields(ss.OneStepResult):
        if f.name in NEW_FIELDS:
            assert getattr(plain, f.name) is None, f"{f.name} is set without the option"
        else:
            assert _same(getattr(plain, f.name), getattr(more, f.name)), f"{f.name} changed by powers/muon"
    L = len(lam)
    assert np.array_equal(more.powers, [0.0, 0.25, 0.5, 1.0])
    for key in NEW_FIELDS[1:7]:
        assert getattr(more, key).shape == (3, 4, L), key
    for key in NEW_FIELDS[7:-1]:
        assert getattr(more, key).shape == (3,), key
    assert more.muon_raw_values.shape == (3, min(N, d))
    # p = 1 is the KFAC spike, p = 0 SGD's (the spike lies in the row space of X, so also for n < d),
    # and p = 1 of the population powers the population field, to round-off
    for part in ("", "_inner", "_sqnorm"):
        assert_close(more.__getattribute__("power" + part)[:, 3], getattr(plain, "kfac" + part), rtol=1e-13,
                     what=f"same-batch p = 1 vs kfac{part}")
        assert_close(more.__getattribute__("population_power" + part)[:, 3], getattr(plain, "population" + part),
                     rtol=1e-13, what=f"population p = 1 vs population{part}")
        sgd = getattr(plain, "sgd" + part)[:, None]
        assert_close(more.__getattribute__("power" + part)[:, 0], np.repeat(sgd, L, axis=1), rtol=1e-12,
                     what=f"same-batch p = 0 vs sgd{part}")
        assert_close(more.__getattribute__("population_power" + part)[:, 0], np.repeat(sgd, L, axis=1),
                     rtol=1e-13, what=f"population p = 0 vs sgd{part}")
    # with only one option, the other's fields stay None
    only = ss.one_step(t, bt, muon=True, network=False, **kw)
    assert only.power is None and only.powers is None and only.muon_cos.shape == (3,)


def test_powers_match_naive_fractional_power(rng):
    """Trial by trial, the same draws, (Sigma_hat + lam)^{-p} X'y/n by scipy's Schur-Pade fractional
    power and (Sigma + lam)^{-p} from the eigenvalues; p = 1/4, 1/2."""
    d, n, N, lam, powers = 20, 50, 5, [1e-2, 0.3, 2.0], (0.25, 0.5)
    t, bt = _problem(d, rng)
    res = ss.one_step(t, bt, n=n, N=N, lam_G=lam, teacher="tanh", noise_std=NOISE, trials=2, seed=3,
                      network=False, powers=powers)
    for trial, sq in enumerate(spawn_seeds(3, 2)):
        g = ss.trial_generator(sq)
        X = g.standard_normal((n, d)) * np.sqrt(t)
        y = np.tanh(X @ bt) + NOISE * g.standard_normal(n)
        S, b = X.T @ X / n, X.T @ y / n
        for i, p in enumerate(powers):
            for j, lj in enumerate(lam):
                v = sla.fractional_matrix_power(S + lj * np.eye(d), -p).real @ b
                w = b * (t + lj) ** -p
                assert_close([res.power_inner[trial, i, j], res.power_sqnorm[trial, i, j]], [v @ bt, v @ v],
                             rtol=1e-9, what=f"same-batch p = {p}, lam = {lj}, trial {trial}")
                assert_close([res.population_power_inner[trial, i, j], res.population_power_sqnorm[trial, i, j]],
                             [w @ bt, w @ w], rtol=1e-13, what=f"population p = {p}, lam = {lj}, trial {trial}")


def test_blocks_with_explicit_seeds_concatenate_with_powers_and_muon(rng):
    """Cut into blocks of trials with each block's seeds and put back with ``concatenate``, a run with
    powers and Muon is the one-call run bit for bit (the (T, P, L) fields stacked along trials, ``powers``
    kept once)."""
    t, bt = _problem(16, rng)
    kw = dict(n=32, N=6, lam_G=[1e-2, 1.0], teacher="tanh", noise_std=NOISE, powers=(0.25, 0.5), muon=True)
    one = ss.one_step(t, bt, trials=5, seed=21, **kw)
    seeds = spawn_seeds(21, 5)
    got = ss.concatenate([ss.one_step(t, bt, trials=b - a, seed=seeds[a:b], **kw) for a, b in ((0, 1), (1, 5))])
    for f in dataclasses.fields(ss.OneStepResult):
        if f.name == "seed":
            continue
        x, y = getattr(got, f.name), getattr(one, f.name)
        assert (np.array_equal(x, y, equal_nan=True) if isinstance(y, np.ndarray) else x == y), f.name
    assert got.power.shape == (5, 2, 2) and np.array_equal(got.powers, [0.25, 0.5])


def _ns_scalar(x: float, steps: int = 5) -> float:
    a, b, c = NS_COEFFICIENTS
    for _ in range(steps):
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def test_orthogonalised_direction_against_the_scalar_map(rng):
    """A spike plus a small bulk: Newton-Schulz maps each singular value sigma_j to p^(5)(sigma_j/||U||_F)
    and keeps the singular vectors, so the raw top direction stays a right singular vector (residual at
    round-off) with singular value p^(5)(sigma_1/||U||_F) ~ 0.74, below the bulk's images (~1.2): the
    orthogonalised top direction is a bulk direction. The exact polar factor gives the spike the same
    weight (1) as every other direction."""
    N, d = 30, 50
    Qa, _ = np.linalg.qr(rng.standard_normal((N, N)))
    Qb, _ = np.linalg.qr(rng.standard_normal((d, N)))
    s = np.concatenate([[10.0], np.linspace(0.6, 0.2, N - 1)])
    U = (Qa * s) @ Qb.T
    ref = rng.standard_normal(d)
    od = ss.orthogonalised_direction(U, reference=ref)
    x = s / np.linalg.norm(s)
    images = np.array([_ns_scalar(float(v)) for v in x])
    assert abs(abs(od.raw_top @ Qb[:, 0]) - 1) < 1e-12 and od.raw_top @ ref >= 0 and od.orth_top @ ref >= 0
    # the +1e-7 of Muon's normalisation moves the images by ~1e-7 relative
    assert_close(od.spike_value, images[0], rtol=1e-6, what="singular value along the raw top direction")
    assert_close(od.orth_values[0], images.max(), rtol=1e-6, what="top singular value of NS5(U)")
    assert od.spike_residual < 1e-12, f"raw top is not a right singular vector of NS5(U): {od.spike_residual:.2e}"
    assert images[0] < 0.8 < 1.1 < images.max()
    j = int(np.argmax(images))
    assert abs(abs(od.orth_top @ Qb[:, j]) - 1) < 1e-8 and od.cos < 1e-8
    assert_close(od.raw_ratio, s[0] / s[1], rtol=1e-12, what="s1/s2")
    assert_close(od.spike_gain, images[0] / images.max(), rtol=1e-6, what="spike gain")
    polar = ss.orthogonalised_direction(U, exact_polar=True)
    assert_close(polar.orth_values, np.ones(N), rtol=1e-12, what="polar factor singular values")
    assert_close(polar.spike_gain, 1.0, rtol=1e-12, what="polar spike gain")
    # a rank-one-dominated update whose spike maps to the top: a pure rank-one matrix plus round-off
    one = ss.orthogonalised_direction(np.outer(Qa[:, 0], Qb[:, 0]))
    assert one.cos > 1 - 1e-12 and abs(one.spike_gain - 1) < 1e-12


def test_one_step_muon_fields_match_helper(rng):
    """The per-trial Muon fields are the helper applied to the literal -grad_G L of the same draws."""
    d, n, N = 24, 48, 12
    t, bt = _problem(d, rng)
    res = ss.one_step(t, bt, n=n, N=N, lam_G=[0.1], teacher="tanh", noise_std=NOISE, trials=2, seed=8,
                      network=False, muon=True)
    for trial, sq in enumerate(spawn_seeds(8, 2)):
        X, y, G0, F0 = ss._draw(t, bt, n, N, np.tanh, NOISE, ss.trial_generator(sq))
        od = ss.orthogonalised_direction(ss._neg_gradient(X, y, G0, F0, ss.STUDENTS["tanh"]), reference=X.T @ y)
        got = [res.muon_cos[trial], res.muon_spike_gain[trial], res.muon_alignment[trial], res.muon_raw_ratio[trial]]
        want = [od.cos, od.spike_gain, od.orth_top @ bt / np.linalg.norm(bt), od.raw_ratio]
        assert_close(got, want, rtol=1e-12, atol=1e-15, what=f"muon fields, trial {trial}")
    # the Cholesky path (no eigendecomposition) measures the same update
    chol = ss.one_step(t, bt, n=n, N=N, lam_G=[0.1], teacher="tanh", noise_std=NOISE, trials=2, seed=8,
                       network=False, muon=True, method="solve")
    assert chol.companion is None and np.array_equal(chol.muon_spike_gain, res.muon_spike_gain)


_T = np.array([1.0, 2.0, 3.0])
_B = np.array([1.0, 0.0, 1.0])
_KW = dict(n=6, N=2, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=1, seed=0)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"powers": (0.5, 1.5)}, r"^one_step: argument 'powers' must be a sequence of real numbers in \[0, 1\]; "
                                 r"got range \[0.5, 1.5\]\.$"),
        ({"powers": (-0.25,)}, r"argument 'powers' must be a sequence of real numbers in \[0, 1\]"),
        ({"powers": "0.5"}, r"argument 'powers' must be a sequence"),
        ({"powers": [[0.5]]}, r"argument 'powers' must be a 0 or 1-D array"),
        ({"powers": (np.nan,)}, r"argument 'powers' must be finite"),
        ({"muon": 1}, r"^one_step: argument 'muon' must be a bool \(True or False\); got 1\.$"),
        ({"powers": (0.5,), "method": "solve", "network": False, "n": 6},
         r"argument 'method' must be 'eigh' or 'auto' when powers are requested"),
    ],
)
def test_one_step_bad_input(change, match):
    kw = {**_KW, **change}
    with pytest.raises(ValueError, match=match):
        ss.one_step(_T, _B, **kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(update=np.zeros((3, 4))), r"^orthogonalised_direction: argument 'update' must be a nonzero matrix"),
        (dict(update=np.ones(4)), r"argument 'update' must be a 2-D array"),
        (dict(update=np.ones((3, 4)), steps=0), r"argument 'steps' must be an integer in \[1, 100\]"),
        (dict(update=np.ones((3, 4)), exact_polar="yes"), r"argument 'exact_polar' must be a bool"),
        (dict(update=np.ones((3, 4)), reference=np.ones(3)), r"argument 'reference' must be a 1-D array of length"),
    ],
)
def test_orthogonalised_direction_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        ss.orthogonalised_direction(**kw)
