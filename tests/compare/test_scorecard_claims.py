"""Claims C22-C25 of the optimizer scorecard on real runs: each holds at the test's master seed, and each fails when
its prediction is off by its stated detectable error (C24, C25: twice the stated relative tolerance, since the
measured error may itself use up one tolerance) or, for the orderings C22/C23, when the data are the other
one-sided rule's (whose dependence is the opposite)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from compare.engine.runner import compute
from compare.scorecard import claims as C
from compare.scorecard import experiments as E


@pytest.mark.slow  # 18 cells x 3 trials of the Jacobian route (~15 s)
def test_c22_c23_hold_and_fail_on_each_others_data(seed):
    right, left = C.RightOnlySettings.preset("fast"), C.LeftOnlySettings.preset("fast")
    r = {k: compute("scorecard.jacobian", c, seed=seed) for k, c in right.cells().items()}
    l_ = {k: compute("scorecard.jacobian", c, seed=seed) for k, c in left.cells().items()}
    assert C.c22_right_only(right, seed=seed, **r).verdict == "holds"
    assert C.c23_left_only(left, seed=seed, **l_).verdict == "holds"
    # swapped: kfac_left's rates depend on kappa_x (C22's "no dependence" fails), kfac_right's on kappa_F
    assert C.one_sided_outcome(right, l_, removes="kappa_x").verdict != "holds"
    assert C.one_sided_outcome(left, r, removes="kappa_F").verdict != "holds"


@pytest.mark.slow  # three cells (SGD, Shampoo, AdaGrad at kappa = 1) of the fast scorecard (~20 s)
def test_c24_holds_and_fails_when_the_prediction_is_off(seed):
    s = dataclasses.replace(C.SettledSettings.preset("fast"), kappa_x=(1.0,), kappa_F=(1.0,))
    cells = {k: compute("scorecard.linrep", c, seed=seed) for k, c in s.cells().items()}
    o = C.settled_outcome(cells)
    assert o.verdict == "holds", o
    det = o.detectable
    assert det is not None and 0 < det < 0.5, det
    off = C.settled_outcome(cells, scale=1.0 + 2.0 * det)
    assert off.verdict == "fails", off
    assert C.settled_outcome(cells, scale=1.0 - 2.0 * det).verdict == "fails"


def test_c25_holds_and_fails_when_the_prediction_is_off(seed):
    s = C.MuonSettings(spike=dataclasses.replace(E.SpikeSettings.preset("fast"), d=150, trials=8))
    res = compute("scorecard.single_index", s.spike, seed=seed)
    o = C.c25_muon(s, seed=seed, res=res)
    assert o.verdict == "holds", o
    rows = C.muon_rows(res)
    det = max(r["detectable"] for r in rows if r["detectable"] is not None)
    assert C.muon_outcome(res, scale=1.0 + 2.0 * det).verdict == "fails"
    assert np.isfinite(det) and det < 1e-3, det
