"""theory.muon: the Newton-Schulz map of singular values against a literal matrix iteration written here."""

from __future__ import annotations

import numpy as np
import pytest

from theory import muon as tm


def _ns_matrix(u, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = u / (np.linalg.norm(u) + 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X


@pytest.mark.parametrize("steps", [1, 5])
def test_singular_values_and_vectors_of_the_literal_iteration(rng, steps):
    N, d = 7, 12
    u = rng.standard_normal((N, 1)) @ rng.standard_normal((1, d)) * 3 + 0.2 * rng.standard_normal((N, d))
    U, s, Vt = np.linalg.svd(u, full_matrices=False)
    O = _ns_matrix(u, steps)
    pred = tm.orthogonalised_singular_values(s, steps=steps)
    measured = np.linalg.norm(O @ Vt.T, axis=0)          # |O v_j|: the singular value O gives v_j
    assert np.abs(measured - pred).max() < 1e-12, np.abs(measured - pred).max()
    top = np.linalg.svd(O, compute_uv=False)[0]
    assert abs(top - pred.max()) < 1e-12
    assert abs(tm.spike_gain(s, steps=steps) - measured[0] / top) < 1e-12


def test_rank_one_update_keeps_its_direction_on_top():
    assert tm.spike_gain(np.array([2.0, 0.0, 0.0])) == 1.0


def test_a_dominant_spike_is_overtaken_by_the_bulk():
    # docs/theory.md: x_1 ~ 0.97 maps to ~0.74 while small values go up to ~1.2
    s = np.r_[1.0, np.full(50, 0.035)]
    g = tm.spike_gain(s)
    assert 0.5 < g < 0.8, g
    assert tm.newton_schulz_map(np.linspace(0.0, 1.0, 1001)).max() < 1.25


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match=r"orthogonalised_singular_values: argument 's' must be"):
        tm.orthogonalised_singular_values(np.zeros(3))
    with pytest.raises(ValueError, match=r"newton_schulz_map: argument 'steps' must be"):
        tm.newton_schulz_map([0.5], steps=0)
    with pytest.raises(ValueError, match=r"spike_gain: argument 'index' must be"):
        tm.spike_gain([1.0, 0.5], index=2)
