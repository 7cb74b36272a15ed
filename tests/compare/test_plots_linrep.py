"""Figures 1, 2, 4, 5 (compare.plots_linrep) and their registration (compare.experiments_linrep)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from compare import experiments_linrep as ex
from compare import plots, plots_linrep as pl
from compare.registry import figures


@pytest.fixture(scope="module")
def tiny():
    prob = ex.ProblemSettings(d_x=12, d_y=4, k=2, batch=40, kappa_x=20.0, kappa_F=3.0, transfer_samples=10)
    cs = ex.CurveSettings(prob, ex.FIG1_METHODS, steps=16, trials=3, record_every=4, sweep_trials=2)
    curves = ex.run_curves(cs, seed=1)
    f4 = ex.Figure4Result(ex.Figure4Settings((("a", cs), ("b", cs))), ("a", "b"), (curves, curves))
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


def test_figures_are_registered_and_exported():
    specs = figures()
    for name in ("fig1", "fig2", "fig4", "fig5"):
        assert name in specs and specs[name].reconstructed and specs[name].caption
    assert set(specs["fig5"].claims) == {"C17", "C18"}
    for fn in pl.__all__:
        assert hasattr(plots, fn), fn


@pytest.mark.slow
def test_fast_figures_render():
    for name in ("fig1", "fig2", "fig4", "fig5"):
        fig = figures()[name].make(size="fast", seed=0)
        assert isinstance(fig, Figure) and _png(fig).startswith(b"\x89PNG"), name
