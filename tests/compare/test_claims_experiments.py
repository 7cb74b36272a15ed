"""Claims C14-C20 (linear representation learning experiments): paired tests, verdicts, records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compare import claims
from compare import claims_experiments as ce
from compare import experiments_linrep as ex

IDS = ("C14", "C15", "C16", "C17", "C18", "C19", "C20")
RECORD_KEYS = {"id", "paper_ref", "kind", "prediction", "measured", "stderr", "tolerance", "alpha", "passed",
               "seconds", "verdict", "rows"}


def test_one_sided_paired_test():
    d = np.array([1.0, 1.2, 0.8, 1.1, 0.9])
    t = ce.one_sided(d, alpha=1e-3)
    se = d.std(ddof=1) / np.sqrt(5)
    assert t["mean"] == pytest.approx(1.0) and t["stderr"] == pytest.approx(se)
    # t_{0.999, 4} = 7.173 (tables): 1.0 / 0.0707 = 14.1 passes, a margin of 0.6 (t = 5.66) does not
    assert t["critical"] == pytest.approx(7.1732, rel=1e-4) and t["passed"]
    assert not ce.one_sided(d, alpha=1e-3, margin=0.6)["passed"]
    assert not ce.one_sided(-d, alpha=1e-3)["passed"]


def _fake_curves(dist: dict, diverged: dict | None = None, trials: int = 6):
    """A CurvesResult with given final distances per method (transfer = distance^2, loss = distance / 10)."""
    labels = tuple(dist)
    R = 3
    D = np.stack([np.stack([np.linspace(1.0, v, R) * (1 + 0.01 * t) for v in dist.values()]) for t in range(trials)])
    div = np.full((trials, len(labels)), -1)
    for lb, t in (diverged or {}).items():
        div[t, labels.index(lb)] = 1
        D[t, labels.index(lb), 1:] = np.nan
    cs = ex.CurveSettings(ex.ProblemSettings(), tuple(ex.Method(lb, "sgd") for lb in labels), steps=2, trials=trials)
    return ex.CurvesResult(cs, labels, np.full(len(labels), 0.1), np.arange(R), D / 10, D / 10, D, D**2, D**2, div,
                           5e-4, np.full(trials, 0.7), np.full(trials, 0.5), np.full((trials, len(labels)), 0.01), None)


def test_diverged_runs_count_as_the_worst_case():
    res = _fake_curves({"KFAC": 0.01, "SGD": 0.5}, diverged={"SGD": 2})
    d = ce.final(res, "SGD", "subspace_distance")
    assert d[2] == 1.0 and np.all(np.isfinite(d))
    assert ce.final(res, "SGD", "transfer_loss")[2] == 0.7
    assert ce.final(res, "SGD", "train_loss")[2] == pytest.approx(0.1 * 1.02)


def test_claim_verdicts_follow_the_measurement(monkeypatch):
    good = _fake_curves({m: 0.5 for m in ("SGD", "AMGD", "Adam", "AMGD+BN")} | {"KFAC": 0.01})
    monkeypatch.setattr(ce, "_fig1", lambda size, seed: good)
    out = ce.c14_figure1_ordering(size="fast", seed=0)
    assert out.passed and out.verdict is None and len(out.rows) == 12
    bad = _fake_curves({m: 0.5 for m in ("SGD", "AMGD", "AMGD+BN")} | {"Adam": 0.005, "KFAC": 0.01})
    monkeypatch.setattr(ce, "_fig1", lambda size, seed: bad)
    out = ce.c14_figure1_ordering(size="fast", seed=0)
    assert not out.passed and out.verdict == "not reproduced"
    assert {r["method"] for r in out.rows if not r["passed"]} == {"Adam"}


def _tiny_settings(monkeypatch):
    prob = ex.ProblemSettings(d_x=12, d_y=4, k=2, batch=40, kappa_x=20.0, kappa_F=3.0, transfer_samples=10)
    cs = ex.CurveSettings(prob, ex.FIG1_METHODS, steps=15, trials=3, record_every=5, sweep_trials=3)
    f4m = tuple(next(m for m in ex.FIG1_METHODS if m.label == lb) for lb in ex.FIG4_LABELS)
    cases = tuple((name, ex.CurveSettings(ex.ProblemSettings(d_x=12, d_y=4, k=2, batch=40, law=law, kappa_x=kx,
                                                             transfer_samples=10), f4m, steps=15, trials=3,
                                          record_every=5, sweep_trials=2))
                  for name, law, kx in (("u", "uniform", 10.0), ("g", "gaussian", 10.0), ("G", "gaussian", 1e3)))
    monkeypatch.setattr(ex, "figure1_settings", lambda size="paper": ex.Figure1Settings(cs))
    monkeypatch.setattr(ex, "figure5_settings", lambda size="paper": ex.Figure5Settings(cs.sweep))
    monkeypatch.setattr(ex, "figure4_settings", lambda size="paper": ex.Figure4Settings(cases))


def test_every_claim_gives_a_consistent_record_on_tiny_settings(monkeypatch):
    _tiny_settings(monkeypatch)
    for cid in IDS:
        rec = claims.check(cid, size="fast", seed=2)
        assert RECORD_KEYS <= set(rec), f"{cid}: missing {RECORD_KEYS - set(rec)}"
        assert rec["reconstructed"] and rec["figure"] in ("fig1", "fig2", "fig4", "fig5")
        assert rec["passed"] == all(r["passed"] for r in rec["rows"]), f"{cid}: verdict disagrees with its rows"
        assert rec["verdict"] == ("holds" if rec["passed"] else "inconclusive"), cid
        if rec["kind"] == "statistical":
            assert rec["alpha"] == pytest.approx(1e-3)
            assert all(r["alpha"] <= 1e-3 for r in rec["rows"])
        json.dumps(rec)
    a, b = claims.check("C17", size="fast", seed=2), claims.check("C17", size="fast", seed=2)
    assert a["measured"] == b["measured"] and a["rows"] == b["rows"]


def test_claim_metadata():
    for cid in IDS:
        c = claims.CLAIMS[cid]
        assert c.reconstructed and c.kind in ("statistical", "qualitative")
    assert claims.CLAIMS["C18"].kind == "qualitative"


@pytest.mark.slow
def test_claims_at_fast_size():
    recs = {cid: claims.check(cid, size="fast", seed=0) for cid in IDS}
    for cid, rec in recs.items():
        assert rec["passed"] == all(r["passed"] for r in rec["rows"]), cid
        assert rec["verdict"] in ("holds", "inconclusive", "contradicted"), cid
        json.dumps(rec)
    # THEORY.md section 5 [V]: KFAC ends an order of magnitude or more below the first-order methods
    # in distance and transfer loss (Figure 1) and below batch-norm in every setting (Figure 4)
    for cid in ("C14", "C20"):
        bad = [r for r in recs[cid]["rows"] if not r["passed"]]
        assert recs[cid]["passed"], f"{cid}: failing rows {bad}"
