r"""The scorecard figure: each optimizer's local rate against :math:`\kappa_x`, with theory where it exists.

Top row, one panel per :math:`\kappa_F`: :math:`\tau = 1/(1-\rho)` (about the steps per e-fold of the distance)
against :math:`\kappa_x`, log-log, :math:`\rho` the best measured rate over the step-size grid (mean over trials;
markers and solid lines; an open marker: an upper bound, where some step size reached the floor too fast for a
linear rate), the theory (R-LR-1 or R-LR-4) dashed in the same colour. An optimizer without a linear rate in a
cell has no marker there. Bottom row: iterations from the common start to distance
:math:`10^{-3}` (fewest over the grid; open markers at the run length when not reached).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compare.engine.registry import figure, ref
from compare.scorecard import experiments as E


def _caption(s: E.ScorecardSettings) -> str:
    c = s.linrep
    return (f"Local rate of the subspace distance (top: steps per e-fold 1/(1 - rho), best step size of the grid "
            f"{', '.join(f'{x:.3g}' for x in c.lrs)}) and iterations to distance 1e-3 (bottom) against kappa_x, per "
            f"kappa_F; d_x = {c.d_x}, d_y = {c.d_y}, k = {c.k}, population setting, {c.trials} problem draws per "
            f"cell, runs of {c.steps} steps. Dashed: theory (R-LR-1 for the least-squares-head rules, measured by "
            f"the Jacobian of one step; R-LR-4 at the limit factors for SGD, Shampoo and AdaGrad). Optimizers "
            f"without a linear rate in a cell (Muon, SOAP, Adam at high condition numbers) have no point there.")


@figure("scorecard", title="Optimizer scorecard: local rate against kappa_x", caption=_caption,
        paper_ref="- (scorecard) [R]", settings=E.ScorecardSettings, claims=("C22", "C23", "C24"),
        reads=lambda s: {"table": ref("scorecard.table", s)})
def scorecard_figure(s: E.ScorecardSettings, *, seed: int, table: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    kx = np.asarray(table["grid"]["kappa_x"], dtype=float)
    kF = table["grid"]["kappa_F"]
    opts = table["optimizers"]
    fig = Figure(figsize=(4.2 * len(kF) + 2.6, 7.2), layout="constrained")
    axes = fig.subplots(2, len(kF), squeeze=False, sharex=True)
    cmap = matplotlib.colormaps["tab20"]
    markers = "os^vD<>ph*XP8H"
    steps = s.linrep.steps
    for o_i, o in enumerate(opts):
        color = cmap(o_i % 20)
        mk = markers[o_i % len(markers)]
        by = {(c["kappa_x"], c["kappa_F"]): c for c in o["cells"]}
        for j, f in enumerate(kF):
            cells = [by[(float(x), float(f))] for x in kx]
            tau = np.array([c["rate"]["tau"] if c["rate"]["tau"] is not None else np.nan for c in cells], float)
            th = np.array([c["theory"]["tau"] if c["theory"]["tau"] is not None else np.nan for c in cells], float)
            ub = np.array([c["rate"].get("upper_bound") if c["rate"].get("upper_bound") is not None else np.nan
                           for c in cells], float)
            tau = np.where(np.isfinite(ub), np.nan, tau)
            ax = axes[0, j]
            ax.plot(kx, tau, marker=mk, color=color, lw=1.2, ms=5, label=o["label"] if j == 0 else None)
            if np.isfinite(ub).any():   # floor reached too fast: 1/(1 - bound), an upper bound (open marker)
                ax.plot(kx, np.where(np.isfinite(ub), 1.0 / (1.0 - ub), np.nan), ls="none", marker=mk, mfc="none",
                        color=color, ms=6)
            if np.isfinite(th).any():
                ax.plot(kx, th, ls="--", color=color, lw=1.0)
            it = [c["iterations_to_1e-3"] for c in cells]
            mean = np.array([i["mean"] if i["mean"] is not None else np.nan for i in it], float)
            ax2 = axes[1, j]
            ax2.plot(kx, mean, marker=mk, color=color, lw=1.2, ms=5)
            cens = np.isnan(mean)
            if cens.any():
                ax2.plot(kx[cens], np.full(cens.sum(), steps), ls="none", marker=mk, mfc="none", color=color, ms=6)
    for j, f in enumerate(kF):
        for r in range(2):
            ax = axes[r, j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.25)
        axes[0, j].set_title(f"kappa_F = {f:g}")
        axes[1, j].set_xlabel("kappa_x")
        axes[1, j].axhline(steps, color="0.5", lw=0.8, ls=":")
    axes[0, 0].set_ylabel("1 / (1 - rate)  (steps per e-fold)")
    axes[1, 0].set_ylabel(f"iterations to distance 1e-3 (open: > {steps})")
    fig.legend(loc="outside right center", fontsize=8, title="optimizer (dashed: theory)", title_fontsize=8)
    return fig
