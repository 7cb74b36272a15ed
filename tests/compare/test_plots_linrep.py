"""Figures 1, 2, 4, 5 (compare.linrep.plots), their registration (compare.linrep.figures), and captions
generated from the settings actually run."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from compare.engine import runner
from compare.engine.registry import figures
from compare.linrep import claims as ce
from compare.linrep import experiments as ex
from compare.linrep import plots as pl

FIGURES = ("fig1", "fig2", "fig4", "fig5")


@pytest.fixture(scope="module")
def tiny():
    prob = ex.ProblemSettings(d_x=12, d_y=4, k=2, batch=40, kappa_x=20.0, kappa_F=3.0, transfer_samples=10)
    cs = ex.CurveSettings(problem=prob, optimizers=ex.PAPER_OPTIMIZERS, steps=16, trials=3, record_every=4,
                          sweep_trials=2)
    curves = runner.compute("linrep.curves", cs, seed=1)
    f4 = ce.Figure4Result(names=("a", "b"), cases=(curves, curves))
    return curves, f4


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def test_figure_functions_draw_every_method(tiny):
    curves, f4 = tiny
    f1 = pl.plot_figure1(curves)
    assert isinstance(f1, Figure) and len(f1.axes) == 3
    legend = [t.get_text() for t in f1.axes[0].get_legend().get_texts()]
    for lb in curves.labels:
        assert any(t.startswith(lb + " (lr") for t in legend), (lb, legend)
    f2 = pl.plot_figure2(curves.subset(ex.FIG2_LABELS))
    assert len(f2.axes) == 2
    f4fig = pl.plot_figure4(f4)
    assert len(f4fig.axes) == 4
    f5 = pl.plot_figure5(curves.sweep)
    ax = f5.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "R-LR-1 AMGD stability limit" in names and all(lb in names for lb in curves.sweep.labels)
    # the R-LR-1 line sits at the mean limit over the tasks
    vlines = [l for l in ax.get_lines() if l.get_label() == "R-LR-1 AMGD stability limit"]
    assert np.isclose(vlines[0].get_xdata()[0], curves.sweep.amgd_limit.mean())
    for fig in (f1, f5):
        assert _png(fig).startswith(b"\x89PNG")


def test_diverged_step_sizes_are_marked(tiny):
    curves, _ = tiny
    sw = curves.sweep
    f5 = pl.plot_figure5(sw)
    crosses = [l for l in f5.axes[0].get_lines() if l.get_marker() == "x"]
    n_bad = int(((sw.diverged.mean(axis=0) >= 0.5) & sw.ran).sum())
    assert sum(len(l.get_xdata()) for l in crosses) == n_bad


def test_figures_are_registered():
    specs = figures()
    for name in FIGURES:
        assert name in specs and specs[name].reconstructed, name
        for size in ("fast", "paper"):
            cap = specs[name].caption_for(specs[name].preset(size))
            assert isinstance(cap, str) and cap, (name, size)
    assert set(specs["fig5"].claims) == {"C17", "C18"}
    for fn in pl.__all__:
        assert hasattr(pl, fn), fn


# --------------------------------------------------------------------------- captions from the settings run
@pytest.mark.parametrize("name", FIGURES)
def test_captions_state_the_iterations_and_trials_run(name, seed, record_trials):
    # --set steps=40 trials=3: the caption (and the report, which takes it from the job's settings) says
    # 40 iterations and 3 trials, and the experiments the figure read ran 40 iterations and 3 trials
    small = {"steps": 40, "trials": 3, "d_x": 12, "d_y": 4, "k": 2, "batch": 40, "transfer_samples": 10}
    if name != "fig5":
        small["sweep_trials"] = 2
    job = runner.figure_job(name, size="fast", seed=seed, overrides=small)
    spec = figures()[name]
    cap = spec.caption_for(job.settings)
    assert "40 iterations" in cap and "3 trials" in cap, cap
    for size in ("fast", "paper"):  # at a preset, the preset's own numbers
        cs = ex.CurveSettings.preset(size)
        st = spec.preset(size)
        n = st.sweep.trials if name == "fig5" else cs.trials
        assert f"{cs.steps} iterations" in spec.caption_for(st) and f"{n} trials" in spec.caption_for(st), size
        assert "40 iterations" not in spec.caption_for(st), size
    exp = "linrep.sweep" if name == "fig5" else "linrep.curves"
    calls = record_trials(exp)
    out = runner.run([job], workers=1).results[job]
    assert out.get("error") is None and out["png"].startswith(b"\x89PNG"), out.get("error")
    assert calls and all(c.steps == 40 for c in calls), {c.steps for c in calls}
    per_experiment = len(calls) // (3 if name == "fig4" else 1)  # Figure 4: three settings, one run each
    assert per_experiment == 3, f"{len(calls)} trials run"


@pytest.mark.slow
def test_fast_figures_render(seed):
    jobs = [runner.figure_job(name, size="fast", seed=seed) for name in FIGURES]
    out = runner.run(jobs, workers=1)
    for j in jobs:
        r = out.results[j]
        assert r.get("error") is None and r["png"].startswith(b"\x89PNG") and r["svg"], (j.name, r.get("error"))
