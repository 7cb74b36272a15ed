"""Claims C14-C20 (compare.linrep.claims): three-way ordering verdicts of the pure ``c*_outcome``
functions on synthetic results, C18's split (SGD diverges above R-LR-1's limit; AMGD sits at the edge of
its own), consistent records on tiny settings, a ``--set`` round trip, Figures 1, 2 and C14 sharing one
curve run, the zero-noise case, and the claims at fast size."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as st

from compare import claims, stats
from compare.engine import runner
from compare.linrep import claims as ce
from compare.linrep import experiments as ex

IDS = ("C14", "C15", "C16", "C17", "C18", "C19", "C20")
ORDERING_IDS = ("C14", "C15", "C16", "C17", "C19", "C20")
RECORD_KEYS = {"id", "paper_ref", "kind", "prediction", "measured", "stderr", "tolerance", "alpha", "passed",
               "seconds", "verdict", "rows", "test", "alpha_bounds", "direction"}
FLOOR = 5e-4


def _spread(trials: int, rng: np.random.Generator, sd: float = 0.1) -> np.ndarray:
    """Per-trial multiplicative scatter 10^N(0, sd)."""
    return 10.0 ** (sd * rng.standard_normal(trials))


def _names(labels: tuple[str, ...]) -> tuple[str, ...]:
    """The registered optimizers shown under ``labels`` (the catalogue of compare.linrep.experiments)."""
    by_label = {m.label: m.name for m in ex.CATALOGUE.values()}
    return tuple(by_label[lb] for lb in labels)


def fake_curves(dist: dict[str, np.ndarray], *, train: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                transfer: dict[str, np.ndarray] | None = None, diverged: dict[str, int] | None = None
                ) -> ex.CurvesResult:
    """A CurvesResult with two records (start, end): final distances ``dist`` per method (transfer losses
    distance^2 unless given; training loss from 1 to FLOOR + distance / 10 unless given as (L0, LT))."""
    labels = tuple(dist)
    T = len(next(iter(dist.values())))
    shape = (T, len(labels), 2)
    D = np.ones(shape)
    L = np.ones(shape)
    Tr = np.ones(shape)
    for i, lb in enumerate(labels):
        D[:, i, 1] = dist[lb]
        L[:, i, 1] = FLOOR + dist[lb] / 10
        Tr[:, i, 1] = dist[lb] ** 2
        if train and lb in train:
            L[:, i, 0], L[:, i, 1] = train[lb]
        if transfer and lb in transfer:
            Tr[:, i, 1] = transfer[lb]
    div = np.full((T, len(labels)), -1)
    for lb, t in (diverged or {}).items():
        i = labels.index(lb)
        div[t, i] = 1
        for a in (D, L, Tr):
            a[t, i, 1] = np.nan
    cs = ex.CurveSettings(problem=ex.ProblemSettings(), optimizers=_names(labels), steps=1, trials=T)
    return ex.CurvesResult(settings=cs, labels=labels, lrs=np.full(len(labels), 0.1), steps=np.arange(2),
                           train_loss=L, population_loss=L, subspace_distance=D, transfer_loss=Tr,
                           transfer_loss_finite=Tr.copy(), diverged_at=div, noise_loss=FLOOR,
                           transfer_max=np.full(T, 0.7), amgd_limit=np.full(T, 0.5),
                           kfac_level=np.full((T, len(labels)), 0.01), sweep=None)


def _fig1(rng, T=10, **override) -> ex.CurvesResult:
    base = {m: 0.5 * _spread(T, rng) for m in ce.FIRST_ORDER + ce.SECOND_ORDER}
    base["KFAC"] = 0.01 * _spread(T, rng)
    base.update(override)
    return fake_curves(base)


# --------------------------------------------------------------------------- helpers
def test_diverged_runs_count_as_the_worst_case():
    res = fake_curves({"KFAC": np.full(6, 0.01), "SGD": np.full(6, 0.5)}, diverged={"SGD": 2})
    d = ce.final(res, "SGD", "subspace_distance")
    assert d[2] == 1.0 and np.all(np.isfinite(d))
    assert ce.final(res, "SGD", "transfer_loss")[2] == 0.7
    assert ce.final(res, "SGD", "train_loss")[2] == 1.0


def test_component_is_an_intersection_union_row():
    d = np.array([1.0, 1.2, 0.8, 1.1, 0.9])
    row = ce.component(d, m=4, method="X")
    # t_{0.999, 4} = 7.173 (tables): mean 1, s.e. 0.0707, t = 14.1: shown at the full alpha
    assert row["method"] == "X" and row["shown"] and row["verdict"] == "holds"
    assert row["critical"] == pytest.approx(7.1732, rel=1e-4)
    assert row["alpha"] == stats.ALPHA and row["reverse_alpha"] == pytest.approx(stats.ALPHA / 4)
    assert row["alpha_bounds"] == stats.FALSE_HOLDS
    rev = ce.component(-d, m=4)
    assert not rev["shown"] and rev["reverse_shown"] and rev["verdict"] == "contradicted"
    # infinite differences (a metric exactly 0) switch to the exact sign test
    sign = ce.component(np.r_[np.inf, np.tile(d, 2)[:9]], m=4)
    assert sign["test"].startswith("one-sided sign test") and sign["shown"]  # 10 of 10: p = 2^-10 < 1e-3


# --------------------------------------------------------------------------- three-way verdicts
def test_c14_three_way_verdicts(seed):
    rng = np.random.default_rng(seed)
    out = ce.c14_outcome(_fig1(rng))
    assert out.verdict == "holds" and out.passed and len(out.rows) == 12, [r["verdict"] for r in out.rows]
    assert out.alpha == stats.ALPHA and out.alpha_bounds == stats.FALSE_HOLDS
    # Adam as good as KFAC up to noise: nothing shown either way
    out = ce.c14_outcome(_fig1(rng, Adam=0.01 * _spread(10, rng, 0.3)))
    assert out.verdict == "inconclusive" and not out.passed
    assert out.rows and all(r["method"] == "Adam" for r in out.rows if not r["shown"])
    # Adam far below KFAC: contradicted, and the headline is Adam's row
    out = ce.c14_outcome(_fig1(rng, Adam=1e-4 * _spread(10, rng)))
    assert out.verdict == "contradicted"
    head = min((r for r in out.rows if r["reverse_shown"]), key=lambda r: r["reverse_p_value"])
    assert head["method"] == "Adam" and out.measured == head["estimate"]


def test_c14_exact_zero_metric_uses_the_sign_test(seed):
    rng = np.random.default_rng(seed)
    res = _fig1(rng)
    # KFAC's transfer loss exactly 0 in 6 of 10 trials (label noise 0): +inf log ratios, no 1e-300 floor
    tr = res.transfer_loss.copy()
    tr[:6, res.index("KFAC"), -1] = 0.0
    out = ce.c14_outcome(replace(res, transfer_loss=tr))
    rows = [r for r in out.rows if r["metric"] == "transfer_loss"]
    assert all(r["test"].startswith("one-sided sign test") and r["shown"] for r in rows)
    assert out.verdict == "holds"


def test_c15_three_way_verdicts(seed):
    rng = np.random.default_rng(seed)
    T = 10
    L0 = np.full(T, 1.0 + FLOOR)

    def res(fall_decades, bn_dist):
        LT = FLOOR + 10.0 ** (-fall_decades + 0.1 * rng.standard_normal(T))
        return fake_curves({"AMGD+BN": bn_dist, "KFAC": 0.01 * _spread(T, rng)}, train={"AMGD+BN": (L0, LT)})

    assert ce.c15_outcome(res(4.0, 0.9 * _spread(T, rng))).verdict == "holds"
    # the loss falls only ~100-fold: (a) cannot be decided
    assert ce.c15_outcome(res(2.0, 0.9 * _spread(T, rng))).verdict == "inconclusive"
    # batch-norm's distance reaches KFAC's: (b) contradicted
    out = ce.c15_outcome(res(4.0, 0.01 * _spread(T, rng)))
    assert out.verdict == "contradicted" and out.rows[1]["reverse_shown"]
    # a loss at or below the noise floor is a converged run (+inf, sign test), not a NaN
    zero = fake_curves({"AMGD+BN": 0.9 * _spread(T, rng), "KFAC": 0.01 * _spread(T, rng)},
                       train={"AMGD+BN": (L0, np.full(T, FLOOR * 0.99))})
    out = ce.c15_outcome(zero)
    assert out.rows[0]["test"].startswith("one-sided sign test") and out.verdict == "holds"


def test_c16_three_way_verdicts(seed):
    rng = np.random.default_rng(seed)
    T = 10

    def res(sgd, adam, kfac):
        return fake_curves({"SGD": sgd * _spread(T, rng, 0.05), "Adam": adam * _spread(T, rng, 0.05),
                            "KFAC": kfac * _spread(T, rng, 0.05)})

    assert ce.c16_outcome(res(0.8, 0.4, 0.01)).verdict == "holds"           # better, less than half the log gap
    assert ce.c16_outcome(res(0.8, 0.8, 0.01)).verdict == "inconclusive"    # no improvement shown
    out = ce.c16_outcome(res(0.8, 0.02, 0.01))                               # Adam almost reaches KFAC
    assert out.verdict == "contradicted" and out.rows[1]["reverse_shown"]


def test_c19_and_c20_three_way_verdicts(seed):
    rng = np.random.default_rng(seed)
    assert ce.c19_outcome(_fig1(rng)).verdict == "holds"
    assert ce.c19_outcome(_fig1(rng, NGD=0.01 * _spread(10, rng, 0.3))).verdict == "inconclusive"
    assert ce.c19_outcome(_fig1(rng, Newton=1e-4 * _spread(10, rng))).verdict == "contradicted"

    def f4(bn):
        cases = tuple(fake_curves({"KFAC": 0.01 * _spread(10, rng), "AMGD+BN": bn * _spread(10, rng)})
                      for _ in range(3))
        return ce.Figure4Result(names=("u", "g", "G"), cases=cases)

    out = ce.c20_outcome(f4(0.5))
    assert out.verdict == "holds" and len(out.rows) == 6 and {r["setting"] for r in out.rows} == {"u", "g", "G"}
    assert ce.c20_outcome(f4(0.01)).verdict == "inconclusive"
    assert ce.c20_outcome(f4(1e-4)).verdict == "contradicted"


# --------------------------------------------------------------------------- sweeps: C17, C18
def fake_sweep(rng, *, trials=8, limit=0.5, sgd_survives=False, amgd_ratio=0.8, amgd_sd=0.1, sd=0.1
               ) -> ex.SweepResult:
    """A Figure 5 sweep: SGD diverges above ``limit``; AMGD ends with step / own limit ~ ``amgd_ratio``
    at every step above the limit (and far below it elsewhere); KFAC 0.01, others 0.5."""
    labels = ("SGD", "AMGD", "Adam", "AMGD+BN", "KFAC")
    lrs = np.asarray(ex.STEP_GRID)
    L, M = len(lrs), len(labels)
    D = np.empty((trials, M, L))
    for i, lb in enumerate(labels):
        D[:, i] = (0.01 if lb == "KFAC" else 0.5) * _spread(trials * L, rng, sd).reshape(trials, L)
    div = np.zeros((trials, M, L), dtype=bool)
    div[:, 0] = lrs[None, :] > limit
    if sgd_survives:
        div[0, 0, -1] = False
    D[div] = np.nan
    lim_star = np.full(trials, limit)
    r = np.where(lrs[None, :] > limit, amgd_ratio + amgd_sd * rng.standard_normal((trials, L)), 0.5 * lrs / limit)
    own = np.full((trials, M, L), limit)
    own[:, 1] = lrs[None, :] / r
    star = np.full((trials, M, L), limit / 2.0)  # SGD's head ends with sigma_max^2 = 2 sigma_max(F*)^2
    star[:, 1] = own[:, 1]
    mid = np.full((trials, M, L), np.nan)
    mid[:, 1] = own[:, 1]
    settings = ex.SweepSettings(problem=ex.ProblemSettings(), optimizers=_names(labels), steps=200, trials=trials)
    nan = np.full((trials, M, L), np.nan)
    return ex.SweepResult(settings=settings, labels=labels, lrs=lrs, final_distance=D, final_transfer=nan,
                          final_transfer_finite=nan, final_train_loss=nan, diverged=div,
                          ran=np.ones((M, L), dtype=bool), amgd_limit=lim_star, amgd_optimal_eta=lim_star / 2,
                          kfac_level=np.full((trials, L), np.nan), initial_distance=np.ones(trials),
                          final_F=np.full((trials, M, L, 1, 1), 1.0), final_limit=own, final_limit_star=star,
                          mid_limit=mid)


def test_c17_three_way_verdicts(seed):
    rng = np.random.default_rng(seed)
    sw = fake_sweep(rng, sd=0.05)
    out = ce.c17_outcome(sw)
    assert ce.c17_etas(sw) == [4, 5, 6]  # 0.1, 0.316, 1 (eta T >= 10 with T = 200, eta <= 1)
    assert out.verdict == "holds" and len(out.rows) == 12
    k = sw.labels.index("KFAC")
    fd = sw.final_distance.copy()
    fd[:, k, 5] = 0.5 * _spread(sw.lrs.size, rng)[: fd.shape[0]]  # KFAC at eta = 0.316 as bad as the others
    assert ce.c17_outcome(replace(sw, final_distance=fd)).verdict == "inconclusive"
    fd[:, k, 5] = 1.0  # ... or diverged (counted as distance 1): contradicted
    assert ce.c17_outcome(replace(sw, final_distance=fd)).verdict == "contradicted"


def test_c18_holds_on_the_predicted_behaviour(seed):
    out = ce.c18_outcome(fake_sweep(np.random.default_rng(seed)))
    assert out.verdict == "holds", out.rows
    a, b = out.rows
    assert a["part"] == "a" and a["test"] == "deterministic bound" and a["measured"] == 0
    assert a["runs_above_limit"] == 8 * 3 and a["head_growth_min_median_max"] == [2.0, 2.0, 2.0]
    assert b["part"] == "b" and b["test"] == "one-sided t, 23 df" and b["runs"] == 24
    assert out.alpha == stats.ALPHA and out.alpha_bounds == stats.FALSE_FAILURE


def test_c18_a_fails_when_sgd_survives_above_the_limit(seed):
    out = ce.c18_outcome(fake_sweep(np.random.default_rng(seed), sgd_survives=True))
    assert out.verdict == "fails" and not out.rows[0]["passed"] and out.rows[1]["passed"]
    assert out.measured == 1.0  # the headline is the failing row: one run above the limit did not diverge


def test_c18_b_fails_when_amgd_sits_above_its_own_limit(seed):
    out = ce.c18_outcome(fake_sweep(np.random.default_rng(seed), amgd_ratio=1.5))
    assert out.verdict == "fails" and out.rows[0]["passed"] and not out.rows[1]["passed"]


def test_c18_b_catches_an_error_of_its_detectable_size(seed):
    # r_T with a sample mean exactly 1 + detectable (relative error of the prediction 1): the t statistic is
    # then the noncentrality of 90% power, above the critical value, so the check fails
    rng = np.random.default_rng(seed)
    sw = fake_sweep(rng, amgd_ratio=1.0, amgd_sd=0.0)
    sel = sw.lrs > 0.5
    e = rng.standard_normal((8, int(sel.sum())))
    e = (e - e.mean()) / e.std(ddof=1)
    se = 0.05 / np.sqrt(e.size)
    det = stats.noncentrality_for_power(st.t.isf(stats.ALPHA, e.size - 1), e.size - 1, one_sided=True) * se
    own = sw.final_limit.copy()
    own[:, 1][:, sel] = sw.lrs[sel] / (1.0 + det + 0.05 * e)
    out = ce.c18_outcome(replace(sw, final_limit=own))
    assert out.rows[1]["detectable"] == pytest.approx(det, rel=1e-9)
    assert out.verdict == "fails", out.rows[1]
    # the same runs at mean 1 + detectable / 2 pass
    own[:, 1][:, sel] = sw.lrs[sel] / (1.0 + det / 2 + 0.05 * e)
    assert ce.c18_outcome(replace(sw, final_limit=own)).verdict == "holds"


# --------------------------------------------------------------------------- records
#: tiny settings of every claim's runs (``--set``-style overrides by leaf name: each applies to the curve
#: runs and the step-size sweep they read alike); Figure 4 keeps its three input laws and anisotropies.
TINY = {"d_x": 12, "d_y": 4, "k": 2, "batch": 40, "kappa_F": 3.0, "transfer_samples": 10, "steps": 15}
TINY_CURVES = {**TINY, "kappa_x": 20.0, "trials": 3, "record_every": 5, "sweep_trials": 3}
TINY_OVERRIDES = {
    "C14": TINY_CURVES,
    "C15": {**TINY_CURVES, "trials": 4}, "C16": {**TINY_CURVES, "trials": 4}, "C19": {**TINY_CURVES, "trials": 4},
    "C17": {**TINY, "kappa_x": 20.0, "trials": 3}, "C18": {**TINY, "kappa_x": 20.0, "trials": 3},
    "C20": {**TINY, "trials": 3, "record_every": 5, "sweep_trials": 2},
}


def test_every_claim_gives_a_consistent_record_on_tiny_settings():
    for cid in IDS:
        rec = claims.check(cid, size="fast", seed=2, settings=TINY_OVERRIDES[cid])
        assert RECORD_KEYS <= set(rec), f"{cid}: missing {RECORD_KEYS - set(rec)}"
        assert "error" not in rec, f"{cid}: {rec.get('error')}"
        assert rec["reconstructed"] and rec["figure"] in ("fig1", "fig2", "fig4", "fig5")
        assert all(v == 15 for p, v in rec["settings"].items() if p.endswith(".steps")), (cid, rec["settings"])
        if rec["kind"] == "ordering":
            assert rec["verdict"] in stats.ORDERING_VERDICTS and rec["alpha_bounds"] == stats.FALSE_HOLDS, cid
            m = len(rec["rows"])
            assert all(r["alpha"] == stats.ALPHA and r["reverse_alpha"] == pytest.approx(stats.ALPHA / m)
                       for r in rec["rows"]), cid
            assert rec["verdict"] == stats.ordering_verdict(rec["rows"]), cid
        else:
            assert rec["verdict"] in stats.AGREEMENT_VERDICTS and rec["alpha_bounds"] == stats.FALSE_FAILURE, cid
            assert rec["passed"] == all(r["passed"] for r in rec["rows"]), cid
        assert rec["alpha"] == pytest.approx(stats.ALPHA)
        json.dumps(rec)
    a, b = (claims.check("C17", size="fast", seed=2, settings=TINY_OVERRIDES["C17"]) for _ in range(2))
    assert a["measured"] == b["measured"] and a["rows"] == b["rows"]


def test_set_round_trip_for_a_linrep_claim(seed, record_trials):
    # claims.check with settings (the CLI's --set): the record shows the values, and the experiments the
    # claim read ran with them (every curve and sweep trial saw noise 0.001 and 50 iterations)
    curves, sweeps = record_trials("linrep.curves"), record_trials("linrep.sweep")
    rec = claims.check("C14", size="fast", seed=seed, settings={"noise_std": 0.001, "steps": 50})
    assert "error" not in rec, rec.get("error")
    st = rec["settings"]
    assert st["curves.problem.noise_std"] == 0.001 and st["curves.steps"] == 50, st
    fast = ex.CurveSettings.preset("fast")
    assert st["curves.trials"] == fast.trials and st["curves.problem.d_x"] == fast.problem.d_x  # the rest: preset
    assert len(curves) == fast.trials and len(sweeps) == fast.sweep_trials
    assert all(c.steps == 50 and c.problem.noise_std == 0.001 for c in curves), {(c.steps, c.problem.noise_std)
                                                                                  for c in curves}
    assert all(w.steps == 50 and w.problem.noise_std == 0.001 for w in sweeps), {(w.steps, w.problem.noise_std)
                                                                                 for w in sweeps}
    assert rec["verdict"] in stats.ORDERING_VERDICTS and len(rec["rows"]) == 12


def test_figures_1_2_and_c14_share_figure_1s_runs(seed, record_trials):
    # the presets read the same curve runs (at both sizes) ...
    from compare.linrep import figures as lf

    for size in ("fast", "paper"):
        c = ce.Figure1Runs.preset(size).curves
        assert lf.Figure1Settings.preset(size).curves == c and lf.Figure2Settings.preset(size).curves == c, size
    # ... so one run computes "linrep.curves" once for fig1, fig2 and C14 (tiny overrides, the same for all three)
    small = {"steps": 12, "trials": 3, "sweep_trials": 2, "record_every": 4}
    calls = record_trials("linrep.curves")
    jobs = [runner.claim_job("C14", size="fast", seed=seed, overrides=small),
            runner.figure_job("fig1", size="fast", seed=seed, overrides=small),
            runner.figure_job("fig2", size="fast", seed=seed, overrides=small)]
    out = runner.run(jobs, workers=1)
    assert out.experiments == 2, f"{out.experiments} experiments: fig1, fig2 and C14 should read one curve run and its sweep"
    assert len(calls) == 3, f"{len(calls)} curve trials computed for 3 trials"
    assert "error" not in out.results[jobs[0]], out.results[jobs[0]].get("error")
    for j in jobs[1:]:
        assert out.results[j]["png"].startswith(b"\x89PNG"), out.results[j].get("error")


def test_claim_metadata():
    for cid in IDS:
        c = claims.CLAIMS[cid]
        assert c.reconstructed
        assert c.kind == ("statistical" if cid == "C18" else "ordering"), cid
    assert "Adam" in claims.CLAIMS["C18"].statement and "ends below AMGD" not in claims.CLAIMS["C15"].statement


# --------------------------------------------------------------------------- real runs
@pytest.mark.slow
def test_zero_label_noise_gives_holds_for_c14_and_c20(seed):
    # label noise 0: KFAC's transfer loss can be exactly 0 (infinite log ratios, sign test); it must read as
    # KFAC winning, not as a failure. 10 trials: the sign test rejects at 1e-3 only if all 10 agree.
    rec = claims.check("C14", size="fast", seed=seed, settings={"noise_std": 0.0})
    assert rec["settings"]["curves.problem.noise_std"] == 0.0
    assert rec["verdict"] == "holds", [(r["method"], r["metric"], r["test"], r["p_value"]) for r in rec["rows"]]
    rec = claims.check("C20", size="fast", seed=seed, settings={"noise_std": 0.0})
    assert all(v == 0.0 for p, v in rec["settings"].items() if p.endswith("noise_std")), rec["settings"]
    assert rec["verdict"] == "holds", [(r["setting"], r["metric"], r["test"], r["p_value"]) for r in rec["rows"]]


@pytest.mark.slow
def test_claims_at_fast_size(seed):
    jobs = {cid: runner.claim_job(cid, size="fast", seed=seed) for cid in IDS}
    out = runner.run(list(jobs.values()), workers=1)  # one run: C15, C16, C19 share the comparison runs
    recs = {cid: out.results[j] for cid, j in jobs.items()}
    for cid, rec in recs.items():
        json.dumps(rec)
        assert rec["verdict"] != "contradicted", (cid, rec["rows"])
    # an agreement claim (C18) holds at every seed; a statement of the paper may be inconclusive at some seed
    # (measured on master seeds 0..19 at fast size: all hold but C15 at seed 3, inconclusive: AMGD+BN's excess
    # loss falls 1.96 +- 0.04 decades against the reading's 2); the verdicts at seed 0 are pinned in test_golden
    for cid in IDS:
        bad = [r for r in recs[cid]["rows"] if not r["passed"]]
        allowed = ("holds",) if recs[cid]["kind"] != "ordering" else ("holds", "inconclusive")
        assert recs[cid]["verdict"] in allowed, f"{cid}: failing rows {bad} {recs[cid].get('error', '')}"
