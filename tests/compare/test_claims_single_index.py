"""Claims C8-C13, C21 and Figure 3 (single-index learning): theory holds the one-step simulation to account.

Every agreement claim must hold for the master seed (fixture ``seed``) and must fail when its theory is
off by its stated ``detectable`` relative error (the power tests perturb the theory function the claim
reads: :mod:`compare.single_index.claims` calls ``ts.`` (:mod:`theory.single_index`) and ``rmt.``
(:mod:`theory.rmt`) when it evaluates). C13 is an ordering: its verdicts are holds / inconclusive /
contradicted.

The claims are evaluated in this process from their experiments, each computed once per
``(name, settings, seed)`` here (:func:`compute`: the engine's blocks and streams, no cache), so a
perturbed theory re-evaluates a claim without re-running its simulations; the public path
(:func:`compare.claims.check`, the runner) is checked to give the same record.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import pytest

from compare import claims, stats
from compare.engine import registry as R
from compare.engine import runner
from compare.engine.seeds import stream, trial_seeds
from compare.single_index import claims as csi
from compare.single_index import experiments as xsi
from compare.single_index import figures as fsi
from simulate import single_index as ss
from theory import rmt
from theory import single_index as ts

IDS = ("C8", "C9", "C10", "C11", "C12", "C13", "C21")
AGREEMENT_IDS = ("C8", "C9", "C10", "C11", "C12", "C21")
RECORD_KEYS = {"id", "paper_ref", "kind", "prediction", "measured", "stderr", "tolerance", "alpha", "passed", "seconds",
               "verdict", "test", "alpha_bounds", "detectable", "direction", "rows", "settings"}


# --------------------------------------------------------------------------- experiments and claims in-process
_RESULTS: dict[tuple, Any] = {}


def compute(name: str, settings: Any, *, seed: int) -> Any:
    """Experiment ``name`` at ``settings`` and master ``seed``, combined: its requirements first, then its
    blocks of trials (the engine's :class:`compare.engine.runner.BlockTask`, BLAS threads as the serial
    runner sets them). Memoised per ``(name, settings, seed)`` for the whole test session."""
    key = (name, settings, seed)
    if key not in _RESULTS:
        spec = R.EXPERIMENTS[name]
        deps = {k: compute(r.name, r.settings, seed=seed) for k, r in spec.requires(settings).items()}
        n = int(spec.trials(settings))
        size = spec.block or n
        values: list = []
        for a in range(0, n, size):
            task = runner.BlockTask(name, settings, seed, a, min(n, a + size), deps)
            values += runner.execute(task, (), spec.blas_threads(settings))
        _RESULTS[key] = spec.combine(settings, values, deps)
    return _RESULTS[key]


def evaluate(claim_id: str, *, size: str, seed: int, overrides: Mapping[str, Any] | None = None) -> dict:
    """The record of ``claim_id`` evaluated here (the theory read now: a monkeypatch takes effect); an
    exception in the claim propagates (the runner would turn it into a failing record)."""
    job = runner.claim_job(claim_id, size=size, seed=seed, overrides=overrides)
    spec = R.CLAIMS[claim_id]
    results = {k: compute(r.name, r.settings, seed=seed) for k, r in spec.reads(job.settings).items()}
    out, secs = R.timed(lambda: spec.evaluate(job.settings, seed=seed, **results))
    return R.record(spec, out, settings=job.settings, seed=seed, size=size, seconds=secs)


def _failing(rec: dict) -> list:
    return [r for r in rec["rows"] if r.get("passed") is False]


def test_compute_is_the_engine_and_blocks_are_the_one_call_run(seed):
    """The local helper is the engine's computation (the record of the public path is reproduced bit for
    bit by the --set test below); here: the one-step experiment, cut into blocks of ``BLOCK`` trials, is
    ``simulate.single_index.one_step`` called once with the stream's trial seeds (stream named by d)."""
    s = xsi.OneStepSettings(d=40, trials=2 * xsi.BLOCK + 3, lam_G=(1e-2, 1.0))
    res = compute("single_index.one_step", s, seed=seed)
    inst = compute("single_index.instance", s.instance, seed=seed)
    seeds = trial_seeds(stream(seed, "single_index.one_step", s.d), 0, s.trials)
    one = ss.one_step(inst.t, inst.beta, n=s.n, N=s.N, lam_G=np.asarray(s.lam_G), teacher=s.teacher,
                      noise_std=s.noise_std, trials=s.trials, seed=seeds, student=s.student)
    for f in ("sgd", "kfac", "kfac_network", "population", "companion", "z_sq", "sgd_spike_size"):
        assert np.array_equal(getattr(res, f), getattr(one, f)), f"{f}: blocks differ from the one-call run"
    # the runs at d and 2d of a Richardson pair draw from different streams (stats.richardson assumes them
    # independent)
    r2 = compute("single_index.one_step", replace(s, d=2 * s.d), seed=seed)
    first = xsi.one_step_block(replace(s, d=2 * s.d, trials=1), seeds[:1], {"inst": compute(
        "single_index.instance", replace(s, d=2 * s.d).instance, seed=seed)})
    assert not np.array_equal(r2.sgd[:1], first.sgd), "the 2d run reuses the d run's trial seeds"


# --------------------------------------------------------------------------- claims hold
@pytest.mark.parametrize("claim_id", IDS)
def test_claim_holds_at_fast_size(claim_id, seed):
    rec = evaluate(claim_id, size="fast", seed=seed)
    assert RECORD_KEYS <= set(rec), f"missing keys {RECORD_KEYS - set(rec)}"
    assert rec["verdict"] == "holds", (
        f"{claim_id} ({rec['paper_ref']}), seed {seed}: predicted {rec['prediction']}, measured {rec['measured']}, "
        f"tolerance {rec['tolerance']} ({rec['test']}; {rec['tolerance_source']}); failing rows: {_failing(rec)}")
    json.dumps(rec)
    if claim_id == "C13":
        assert rec["kind"] == "ordering" and rec["alpha_bounds"] == stats.FALSE_HOLDS and rec["detectable"] is None
        assert all(r["alpha"] == stats.ALPHA and r["reverse_alpha"] == pytest.approx(stats.ALPHA / 6) for r in rec["rows"])
        return
    assert rec["alpha"] == stats.ALPHA and rec["alpha_bounds"] == stats.FALSE_FAILURE
    stat_rows = [r for r in rec["rows"] if r["alpha"] is not None]
    m = len(stat_rows)
    for r in stat_rows:  # Bonferroni over the claim's statistical rows, Student t (finite df) everywhere
        assert r["alpha"] == pytest.approx(stats.ALPHA / m), (claim_id, r["check"], r["alpha"], m)
        assert r["df"] is not None and r["df"] > 1 and " t" in r["test"], (claim_id, r["check"], r["test"])
        assert r["detectable"] is not None and r["detectable"] > 0
    preds = [r["detectable"] for r in rec["rows"] if r["detectable"] is not None and r.get("role") != "bound"]
    assert rec["detectable"] == pytest.approx(max(preds))   # bound rows state theirs, outside the claim's


def test_registration_metadata():
    reg = R.claims()
    for cid in IDS:
        c = reg[cid]
        assert c.reconstructed, f"{cid} is reconstructed [R] and must say so"
        assert c.kind == ("ordering" if cid == "C13" else "statistical"), (cid, c.kind)
        assert c.settings is (csi.TestErrorClaims if cid == "C13" else csi.AlignmentClaims), (cid, c.settings)
    assert reg["C9"].paper_ref == "Theorem 3.9"
    assert reg["C21"].paper_ref == "Theorem 3.9" and reg["C21"].theory_ref == "Theorem 3.9 (fixed point)"
    spec = R.figures()["fig3"]
    assert spec.paper_ref == "Figure 3" and set(spec.claims) == {"C8", "C9", "C11"} and spec.reconstructed
    assert spec.settings is fsi.Figure3Settings


def test_no_legacy_statistics():
    """Every check goes through the t-based API of compare.stats (the legacy z helpers are gone)."""
    import inspect

    src = inspect.getsource(csi)
    for name in ("z_test", "z_critical", "paired_less", "batch_means_se", "Outcome(", "data="):
        assert name not in src, f"compare.single_index.claims still uses {name!r}"


def test_set_round_trip(seed):
    """``--set`` (``claims.check(settings=...)``, the runner's path): the record's settings show the
    overrides, the runs read them, and the record equals the one evaluated here at those settings."""
    over = {"noise_std": 0.2, "trials_d": 40, "trials_2d": 20}
    rec = claims.check("C9", size="fast", seed=seed, settings=over)
    assert "error" not in rec, rec.get("error")
    assert {k: rec["settings"][k] for k in over} == over, rec["settings"]
    assert rec["verdict"] == "holds", _failing(rec)
    here = evaluate("C9", size="fast", seed=seed, overrides=over)
    assert here["rows"] == rec["rows"] and here["settings"] == rec["settings"]
    run = compute("single_index.one_step", csi.AlignmentClaims(**over).run(2), seed=seed)
    assert run.trials == 20 and run.noise_std == 0.2
    with pytest.raises(ValueError, match="unknown setting 'nosie_std'"):
        claims.check("C9", size="fast", seed=seed, settings={"nosie_std": 0.2})


# --------------------------------------------------------------------------- power
def _mul(x, f):
    return float(x) * f if np.ndim(x) == 0 else np.asarray(x, dtype=float) * f


def _scaled(fn, factor: float, fields: tuple, *, asymptotic_only: bool = False):
    """``fn`` with the named fields of its (dataclass) result multiplied by ``factor``.

    asymptotic_only: leave calls with ``finite_n=True`` alone (those give the exact means of the
    control variates, which are not predictions of the claim).
    """
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if asymptotic_only and kwargs.get("finite_n", False):
            return out
        return replace(out, **{f: _mul(getattr(out, f), factor) for f in fields})

    return wrapper


def _perturb(monkeypatch, claim_id: str, delta: float) -> None:
    """Make every prediction of ``claim_id`` (relative) ``delta`` too large, through the theory it reads."""
    f = 1.0 + delta
    if claim_id in ("C8", "C11"):
        monkeypatch.setattr(ts, "sgd_spike", _scaled(ts.sgd_spike, f, ("cos",), asymptotic_only=True))
        monkeypatch.setattr(ts, "kfac_spike", _scaled(ts.kfac_spike, f, ("cos",)))
    elif claim_id == "C9":
        monkeypatch.setattr(ts, "kfac_spike", _scaled(ts.kfac_spike, f, ("cos",)))
        monkeypatch.setattr(ts, "population_spike", _scaled(ts.population_spike, f, ("cos",), asymptotic_only=True))
    elif claim_id == "C10":  # Theorem 3.9's components (the noisiest rows; the SGD rows are exact identities)
        monkeypatch.setattr(ts, "kfac_spike", _scaled(ts.kfac_spike, f, ("inner", "sqnorm")))
    elif claim_id == "C12":  # s_1/|F_0| = mu_1 |v|: every prediction is proportional to mu_1
        monkeypatch.setattr(ts, "student_coefficients", _scaled(ts.student_coefficients, f, ("mu1",)))
    elif claim_id == "C21":  # the prediction is 1/kappa
        kappa = rmt.kappa
        monkeypatch.setattr(rmt, "kappa", lambda *a, **k: np.asarray(kappa(*a, **k)) / f)
    else:  # pragma: no cover
        raise AssertionError(claim_id)


def _assert_power(claim_id: str, size: str, seed: int, delta: float, monkeypatch) -> dict:
    with monkeypatch.context() as mp:
        _perturb(mp, claim_id, delta)
        rec = evaluate(claim_id, size=size, seed=seed)
    caught = [r for r in _failing(rec) if r["alpha"] is not None]
    assert rec["verdict"] == "fails" and caught, (
        f"{claim_id} at {size} size, seed {seed}: predictions {delta:.3%} too large were not caught; "
        f"tolerances: {[(r['check'], r.get('lam_G'), r['tolerance']) for r in rec['rows']]}")
    return rec


@pytest.mark.parametrize("claim_id", AGREEMENT_IDS)
def test_claim_fails_when_prediction_off_by_its_detectable(claim_id, seed, monkeypatch):
    """Power, shown: every prediction of the claim off by the claim's stated ``detectable`` fails it."""
    rec = evaluate(claim_id, size="fast", seed=seed)
    assert rec["verdict"] == "holds" and 0 < rec["detectable"] < 0.2, (claim_id, rec["detectable"])
    _assert_power(claim_id, "fast", seed, rec["detectable"], monkeypatch)


def test_c11_bound_rows_state_their_own_detectable(seed, monkeypatch):
    """C11's one-sided bulk-bias rows check a stated bound (0.01 * 1000/d), not a prediction: they are marked
    ``role="bound"`` and state the relative excess over the bound they catch, which does not enter the claim's
    ``detectable``; that is set by the network-alignment rows, and a prediction off by it fails them."""
    rec = evaluate("C11", size="fast", seed=seed)
    bounds = [r for r in rec["rows"] if r.get("role") == "bound"]
    assert len(bounds) == 6 and all(r["direction"] == "measured <= prediction" and r["detectable"] > 0 for r in bounds)
    det = max(r["detectable"] for r in rec["rows"] if r["direction"] == "two-sided")
    assert rec["detectable"] == pytest.approx(det)
    bad = _assert_power("C11", "fast", seed, det, monkeypatch)
    assert any(r["direction"] == "two-sided" for r in _failing(bad))


def _fake_mse_runs(kfac_minus_sgd: float, sgd_minus_none: float, *, T: int = 12) -> dict:
    rng = np.random.default_rng(5)
    res = {}
    for i in range(3):
        none = 0.3 + 0.01 * rng.standard_normal(T)
        sgd = none + sgd_minus_none + 0.002 * rng.standard_normal(T)
        kfac = sgd + kfac_minus_sgd + 0.002 * rng.standard_normal(T)
        res[f"eps{i}"] = ss.StepMSEResult(none=none, sgd=sgd, kfac=kfac[:, None], lam_G=np.array([0.1]), lam_F=1e-3,
                                          spike_norm=5.0, n=20, n_head=50, n_test=50, N=10, d=10)
    return res


@pytest.mark.parametrize("kfac_minus_sgd, sgd_minus_none, verdict", [
    (-0.02, -0.05, "holds"),          # KFAC < SGD < no step
    (+0.02, -0.05, "contradicted"),   # KFAC clearly above SGD
    (0.0, -0.05, "inconclusive"),     # KFAC and SGD indistinguishable
])
def test_c13_ordering_verdicts(kfac_minus_sgd, sgd_minus_none, verdict):
    s = csi.TestErrorClaims.preset("fast")
    assert set(csi._c13_reads(s)) == {"eps0", "eps1", "eps2"} and s.eps == (0.0, 0.9, 0.99)
    out = csi.c13_test_error(s, seed=0, **_fake_mse_runs(kfac_minus_sgd, sgd_minus_none))
    assert out.verdict == verdict, [(r["check"], r["eps"], r["p_value"], r["reverse_p_value"]) for r in out.rows]
    assert out.alpha_bounds == stats.FALSE_HOLDS and len(out.rows) == 6


# --------------------------------------------------------------------------- estimators
def test_richardson_rows_on_synthetic_O1_over_d_bias():
    """The bias-corrected rows remove an O(1/d) bias (with and without control variates); a plain t test
    of the mean at d does not."""
    rng = np.random.default_rng(4)
    p, b, T, d = 0.7, 2.0, 200, 100
    s_d, s_2d = 0.02, 0.02 / math.sqrt(2)
    c_d, c_2d = rng.standard_normal(T), rng.standard_normal(T)
    x_d = p + b / d + s_d * (0.6 * c_d + 0.8 * rng.standard_normal(T))
    x_2d = p + b / (2 * d) + s_2d * (0.6 * c_2d + 0.8 * rng.standard_normal(T))
    plain = csi._richardson("synthetic", x_d, p, x_2d, p, alpha=1e-3)
    assert plain["passed"] and abs(plain["bias_d"] - b / d) <= 4 * plain["stderr"], plain
    cv = csi._richardson("synthetic", x_d, p, x_2d, p, alpha=1e-3, controls_d=[(c_d, 0.0)], controls_2d=[(c_2d, 0.0)])
    assert cv["passed"] and cv["stderr"] < 0.85 * plain["stderr"], (cv["stderr"], plain["stderr"])
    assert "control variates" in cv["test"] and cv["controls"] == 1
    assert not stats.agreement_samples(x_d, p, alpha=1e-3).passed  # the O(1/d) bias at d alone fails


def test_sgd_components_exact_at_finite_n(seed):
    """E<v, beta*> = c s^2 and the refined E|v|^2 are exact for Gaussian x: no allowance, small d, psi < 1 too.

    Family of 4 t tests (T - 1 df), alpha = 1e-3 split (Bonferroni).
    """
    rng = np.random.default_rng(stream(seed, "test.sgd_components", "instance"))
    d = 40
    t = np.geomspace(2.0, 0.2, d)
    beta = rng.standard_normal(d)
    beta /= math.sqrt(float((t * beta) @ beta))
    a = stats.bonferroni(1e-3, 4)
    for n in (20, 120):
        res = ss.one_step(t, beta, n=n, N=4, lam_G=[1.0], teacher="relu", noise_std=0.2, trials=400,
                          seed=stream(seed, "test.sgd_components", "trials", n), network=False, population=False)
        th = ts.sgd_spike(t, beta, n=n, teacher="relu", noise_std=0.2, finite_n=True)
        for got, want, what in ((res.sgd_inner, th.inner, "<v, beta*>"), (res.sgd_sqnorm, th.sqnorm, "|v|^2")):
            ag = stats.agreement_samples(got, want, alpha=a)
            assert ag.passed, f"{what} at n = {n}: {ag.measured:.5f} +/- {ag.stderr:.5f} vs exact {want:.5f} ({ag.test})"


def test_control_variate_means_are_exact(seed):
    """The control variates' expectations are exact at finite n (else every control-variate row is biased):
    z_sq, y_sq, the SGD and population components, 2000 trials at d = 30, n = 45, t tests (T - 1 df),
    Bonferroni over the 6 statistics."""
    rng = np.random.default_rng(stream(seed, "test.control_variates", "instance"))
    d, n = 30, 45
    t = np.geomspace(3.0, 0.3, d)
    beta = rng.standard_normal(d)
    beta /= math.sqrt(float((t * beta) @ beta))
    res = ss.one_step(t, beta, n=n, N=4, lam_G=[0.5], teacher="tanh", noise_std=0.1, trials=2000,
                      seed=stream(seed, "test.control_variates", "trials"), network=False, population=True,
                      method="eigh")
    run = xsi.AlignmentRun(inst=xsi.Instance(t=t, beta=beta, eps=0.0), n=n, N=4, lam_G=np.array([0.5]), sim=res,
                           teacher="tanh", student="tanh", noise_std=0.1)
    k = csi._controls(run)
    a = stats.bonferroni(1e-3, 6)
    for name, (x, mu) in (("inner", k.inner), ("sqnorm", k.sqnorm), ("z_sq", k.z_sq), ("y_sq", k.y_sq),
                          ("pop_inner", (k.pop_inner[0][:, 0], k.pop_inner[1][0])),
                          ("pop_sqnorm", (k.pop_sqnorm[0][:, 0], k.pop_sqnorm[1][0]))):
        ag = stats.agreement_samples(x, float(mu), alpha=a)
        assert ag.passed, f"control {name}: mean {ag.measured:.6f} +/- {ag.stderr:.6f} vs exact {float(mu):.6f}"


# --------------------------------------------------------------------------- figure
def _figure_text(fig) -> str:
    return fig._suptitle.get_text() + " ".join(ax.get_title() + ax.get_xlabel() for ax in fig.axes)


def test_figure3_from_synthetic_data():
    from compare.single_index.plots import Curve, Figure3Data, figure3

    x = np.array([0.1, 1.0])
    c = Curve(x=x, x_dense=x, theory_sgd=x, theory_kfac=x, sgd_mean=x, sgd_se=0 * x, kfac_mean=x, kfac_se=0 * x,
              network_mean=x, network_se=0 * x, cap=x)
    fig = figure3(Figure3Data(left=c, right=c, psi=c, d=7, N=3, psi_left=2.0, eps_left=0.9, lam_right=0.1,
                              trials=30, teacher="tanh", student="tanh", noise_std=0.1))
    text = _figure_text(fig)
    for token in ("d=7", "N=3", "teacher tanh", "student tanh", "\\psi", "\\lambda_G", "\\epsilon"):
        assert token in text, f"{token!r} missing from the figure's labels: {text!r}"
    assert len(fig.axes) == 3


def test_figure3_renders_and_its_caption_comes_from_the_settings(seed):
    """Figure 3 through the runner (the CLI's path) with ``--set trials=5 --set d=100``: it renders (PNG and
    SVG), and its title, caption and labels state the settings run, not the preset's."""
    job = runner.figure_job("fig3", size="fast", seed=seed, overrides={"trials": 5, "d": 100})
    out = runner.run([job], workers=1).results[job]
    assert "error" not in out, out.get("error")
    assert out["png"].startswith(b"\x89PNG") and b"<svg" in out["svg"][:500]
    spec = R.FIGURES["fig3"]
    s = job.settings
    assert (s.d, s.trials) == (100, 5)
    title, caption = spec.title_for(s), spec.caption_for(s)
    assert "d = 100" in title, title
    for token in ("d = 100", "N = 50", "over 5 trials", "tanh teacher", "psi = 2", "eps = 0.9", "lam_G = 0.1"):
        assert token in caption, f"{token!r} missing from the caption: {caption!r}"
    preset = spec.caption_for(spec.preset("fast"))
    assert "d = 300" in preset and "over 30 trials" in preset and "d = 100" not in preset


def test_figure3_with_a_callable_teacher(seed):
    """``--set teacher=tanh2`` (the test-error teacher, a callable of the experiments): the runs and the
    theory curves use it and the figure renders (the theory used to be handed the name)."""
    job = runner.figure_job("fig3", size="fast", seed=seed, overrides={"teacher": "tanh2", "d": 60, "trials": 3})
    out = runner.run([job], workers=1).results[job]
    assert "error" not in out, out.get("error")
    assert "tanh2 teacher" in R.FIGURES["fig3"].caption_for(job.settings)


def _draw_captured(s, seed: int, monkeypatch):
    """Figure 3 drawn here from its runs, with the :class:`Figure3Data` it plotted."""
    seen = []
    real = fsi.figure3
    monkeypatch.setattr(fsi, "figure3", lambda data: seen.append(data) or real(data))
    results = {k: compute(r.name, r.settings, seed=seed) for k, r in fsi._reads(s).items()}
    fig = fsi.figure_3(s, seed=seed, **results)
    return fig, seen[0], results


def _check_figure_data(s, data, results) -> None:
    """The plotted points are the runs' means and the lines the theory of the same instances."""
    left, inst = results["left"], results["left_inst"]
    assert np.array_equal(data.left.kfac_mean, left.kfac.mean(axis=0))
    assert np.array_equal(data.left.network_mean, left.kfac_network.mean(axis=0))
    assert np.all(data.left.sgd_mean == left.sgd.mean())
    th = ts.kfac_alignment(inst.t, inst.beta, n=s.left().n, lam_G=data.left.x_dense, teacher=s.teacher,
                           noise_std=s.noise_std)
    assert np.array_equal(data.left.theory_kfac, th)
    for i, e in enumerate(s.eps_grid):
        run, ins = results[f"eps{i}"], results[f"eps{i}_inst"]
        assert data.right.kfac_mean[i] == run.kfac[:, 0].mean() and data.right.sgd_mean[i] == run.sgd.mean()
        want = ts.sgd_alignment(ins.t, ins.beta, n=s.point(psi=s.psi, eps=e).n, teacher=s.teacher,
                                noise_std=s.noise_std)
        assert data.right.theory_sgd_points[i] == want and ins.eps == e
    for i, q in enumerate(s.psi_grid):
        run = results[f"psi{i}"]
        assert data.psi.kfac_mean[i] == run.kfac[:, 0].mean() and run.n == s.point(psi=q, eps=s.eps).n
    assert (data.d, data.N, data.trials) == (s.d, s.left().N, s.trials)


def test_figure3_shows_the_runs(seed, monkeypatch):
    """Small settings (d = 100, 5 trials): the figure's data are the runs and the theory of their instances;
    its labels state the settings."""
    s = replace(fsi.Figure3Settings.preset("fast"), d=100, trials=5)
    fig, data, results = _draw_captured(s, seed, monkeypatch)
    _check_figure_data(s, data, results)
    assert len(fig.axes) == 3 and "d=100" in _figure_text(fig) and "5 trials" in _figure_text(fig)


@pytest.mark.slow
def test_figure3_fast_runs_and_shows_the_runs(seed, monkeypatch):
    """Figure 3 at fast size: three panels; the plotted points are the runs' means and the lines the theory
    of the same instances (the statistical agreement itself is claims C8, C9 and C11)."""
    s = fsi.Figure3Settings.preset("fast")
    fig, data, results = _draw_captured(s, seed, monkeypatch)
    assert len(fig.axes) == 3
    _check_figure_data(s, data, results)
    assert data.trials == 30 and data.d == 300 and data.N == 150
    png, svg = runner.render_figure(fig)
    assert png.startswith(b"\x89PNG") and svg


# --------------------------------------------------------------------------- slow: other seeds, paper size
@pytest.mark.slow
@pytest.mark.parametrize("claim_id", IDS)
def test_claim_holds_at_fast_size_next_seed(claim_id, seed):
    rec = evaluate(claim_id, size="fast", seed=seed + 1)
    assert rec["verdict"] == "holds", f"{claim_id}, seed {seed + 1}: {rec['prediction']} vs {rec['measured']} " \
                                      f"(tol {rec['tolerance']}): {_failing(rec)}"


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ("C8", "C9", "C10", "C11", "C12", "C21"))
def test_paper_size_detects_a_one_percent_error(claim_id, seed, monkeypatch):
    """At paper size (d = 500 and 1000, 12 teachers per trial, the network's spikes for 3) every single-index
    agreement claim states detectable <= 1% and a prediction 1% too large fails it (one shared pair of runs,
    computed once)."""
    rec = evaluate(claim_id, size="paper", seed=seed)
    assert rec["verdict"] == "holds", _failing(rec)
    assert rec["detectable"] <= 0.01, f"{claim_id} at paper size detects only {rec['detectable']:.3%}"
    _assert_power(claim_id, "paper", seed, 0.01, monkeypatch)


def test_kfac_sweep_other_regimes(seed):
    """Theorem 3.9 beyond the headline setting: psi in {0.5, 1, 4}, relu and erf teachers, lam_G from 1e-3 to 10.

    Bias-corrected t tests at d = 80 and 160 (the O(1/d) bias measured at d and 2d, Welch df; the two runs
    from independent streams), 40 trials, family of 2 teachers x 3 psi x 3 lam_G = 18 checks at
    alpha = 1e-3 (Bonferroni).
    """
    lam = (1e-3, 0.1, 10.0)
    a = stats.bonferroni(1e-3, 18)
    failures = []
    for teacher in ("relu", "erf"):
        for psi in (0.5, 1.0, 4.0):
            runs = []
            for d in (80, 160):
                rng = np.random.default_rng(stream(seed, "test.kfac_sweep", "instance", teacher, psi, d))
                t = np.geomspace(3.0, 0.1, d)
                beta = rng.standard_normal(d)
                beta /= math.sqrt(float((t * beta) @ beta))
                sim = ss.one_step(t, beta, n=int(psi * d), N=d // 2, lam_G=lam, teacher=teacher, noise_std=0.1,
                                  trials=40, seed=stream(seed, "test.kfac_sweep", "trials", teacher, psi, d),
                                  network=False, population=False, blas_threads=1)
                runs.append((sim, ts.kfac_alignment(t, beta, n=int(psi * d), lam_G=lam, teacher=teacher,
                                                    noise_std=0.1)))
            (s1, p1), (s2, p2) = runs
            for j, lj in enumerate(lam):
                ag, _ = stats.richardson(s1.kfac[:, j], p1[j], s2.kfac[:, j], p2[j], alpha=a)
                if not ag.passed:
                    failures.append((teacher, psi, lj, ag))
    assert not failures, f"failing checks: {failures}"
