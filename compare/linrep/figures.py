"""Figures 1, 2, 4 and 5 (linear representation learning): what each reads, its caption from the
settings actually run, and its drawing (:mod:`compare.linrep.plots`).

Figure 2 is a view of Figure 1's runs (the engine computes them once for both and for C14).
"""

from __future__ import annotations

from dataclasses import dataclass

from compare.engine.registry import figure, ref
from compare.engine.settings import Settings, check_size
from compare.linrep import experiments as ex
from compare.linrep import plots
from compare.linrep.claims import Figure4Runs, figure4_result

_LR_RULE = ("Each method's step size is the best (smallest mean log10 final distance, no divergence) of the grid "
            "1e-3 ... 10 (ratio sqrt 10) on {sweep} trials of a separate seed stream (a method diverging in some "
            "trial at every step size it ran gets the one with the fewest divergences). ")


def _recon(p: ex.ProblemSettings, steps: int) -> str:
    return f"Reconstructed settings [R] (docs/theory.md section 5): {p.describe()}, {steps} iterations. "


def _names(c: ex.CurveSettings) -> str:
    return ", ".join(c.labels)


@dataclass(frozen=True, kw_only=True)
class Figure1Settings(Settings):
    """Figure 1: training loss, subspace distance and transfer loss vs iteration, every method."""

    curves: ex.CurveSettings = ex.CurveSettings()

    @classmethod
    def preset(cls, size: str) -> "Figure1Settings":
        return cls(curves=ex.CurveSettings.preset(check_size("Figure1Settings.preset", size)))


def _fig1_caption(s: Figure1Settings) -> str:
    c = s.curves
    return (_recon(c.problem, c.steps) + _LR_RULE.format(sweep=c.sweep_trials)
            + f"Training loss, subspace distance and transfer loss (population, solid; least-squares head on "
              f"{c.problem.transfer_samples} transfer samples, dashed) vs iteration for {_names(c)}. Mean of log10 "
              f"over {c.trials} trials, band +- 2 s.e.; overlays: KFAC's R-LR-1 rate and R-LR-3 level.")


@figure("fig1", title=lambda s: f"Linear representation learning: optimisers compared ({s.curves.trials} trials)",
        caption=_fig1_caption, paper_ref="Figure 1", settings=Figure1Settings,
        reads=lambda s: {"res": ref("linrep.curves", s.curves)}, claims=("C14", "C16", "C19"))
def figure1(s: Figure1Settings, *, seed: int, res: ex.CurvesResult):
    return plots.plot_figure1(res)


@dataclass(frozen=True, kw_only=True)
class Figure2Settings(Settings):
    """Figure 2: KFAC vs AMGD with and without batch-norm: a view of Figure 1's runs."""

    curves: ex.CurveSettings = ex.CurveSettings()
    labels: tuple[str, ...] = ex.FIG2_LABELS

    @classmethod
    def preset(cls, size: str) -> "Figure2Settings":
        return cls(curves=ex.CurveSettings.preset(check_size("Figure2Settings.preset", size)))


@figure("fig2", title="Batch-norm helps AMGD's loss, not its subspace distance",
        caption=lambda s: (_recon(s.curves.problem, s.curves.steps) + _LR_RULE.format(sweep=s.curves.sweep_trials)
                           + f"Subspace distance and training loss of {', '.join(s.labels)} (batch-norm: batch "
                             f"statistics in training, running statistics for evaluation, learnable scale and "
                             f"shift): Figure 1's runs, {s.curves.trials} trials."),
        paper_ref="Figure 2", settings=Figure2Settings, reads=lambda s: {"res": ref("linrep.curves", s.curves)},
        claims=("C15",))
def figure2(s: Figure2Settings, *, seed: int, res: ex.CurvesResult):
    return plots.plot_figure2(res.subset(tuple(s.labels)))


def _fig4_caption(s: Figure4Runs) -> str:
    c0 = s.cases[0].curves
    cases = "; ".join(f"{c.name}: {c.curves.problem.law} inputs, kappa_x = {c.curves.problem.kappa_x:g}" for c in s.cases)
    return (f"Reconstructed settings [R]: the Figure 1 task ({c0.problem.describe()}, {c0.steps} iterations) in "
            f"{len(s.cases)} data settings ({cases}). " + _LR_RULE.format(sweep=c0.sweep_trials).replace(
                "a separate seed stream", "a separate seed stream per setting")
            + f"Subspace distance (top) and training loss (bottom) of {_names(c0)}, {c0.trials} trials.")


@figure("fig4", title="Batch-norm vs KFAC across input laws and anisotropy", caption=_fig4_caption,
        paper_ref="Figure 4", settings=Figure4Runs,
        reads=lambda s: {f"case{i}": ref("linrep.curves", c.curves) for i, c in enumerate(s.cases)}, claims=("C20",))
def figure4(s: Figure4Runs, *, seed: int, **cases: ex.CurvesResult):
    return plots.plot_figure4(figure4_result(s, cases))


@dataclass(frozen=True, kw_only=True)
class Figure5Settings(Settings):
    """Figure 5: subspace distance after ``sweep.steps`` iterations vs step size."""

    sweep: ex.SweepSettings = ex.SweepSettings()

    @classmethod
    def preset(cls, size: str) -> "Figure5Settings":
        return cls(sweep=ex.SweepSettings.preset(check_size("Figure5Settings.preset", size)))


@figure("fig5", title=lambda s: f"Subspace distance after {s.sweep.steps} iterations vs step size",
        caption=lambda s: (_recon(s.sweep.problem, s.sweep.steps)
                           + f"Final subspace distance vs step size (grid {min(s.sweep.lrs):g} ... {max(s.sweep.lrs):g}) "
                             f"for {', '.join(m.label for m in s.sweep.methods)}, {s.sweep.trials} trials; x marks "
                             f"step sizes where at least half of the trials diverged. Overlays: the R-LR-1 stability "
                             f"limit of AMGD (mean over tasks, shaded range) and the R-LR-3 level of KFAC for eta in "
                             f"(0, 1]."),
        paper_ref="Figure 5", settings=Figure5Settings, reads=lambda s: {"sw": ref("linrep.sweep", s.sweep)},
        claims=("C17", "C18"))
def figure5(s: Figure5Settings, *, seed: int, sw: ex.SweepResult):
    return plots.plot_figure5(sw)
