r"""Figures 1, 2, 4 and 5 (linear representation learning): data in, matplotlib Figure out.

Each function takes the result of a runner of :mod:`compare.linrep.experiments` and draws it; none
runs an experiment. Curves show the mean over trials of :math:`\log_{10}` of the metric (a geometric
mean) with a band of :math:`\pm 2` standard errors of that mean; runs that diverged are left out of
the curve after their divergence and counted in the legend. Theory overlays (docs/theory.md):

.. math::

    \text{R-LR-1: } d_0(1-\eta)^t \text{ (KFAC rate)},\quad \eta_{\max}^{AMGD} = \frac{2}{\sigma_{\max}(F^*)^2\mu_{\max}(\Sigma_{22\cdot1})},\qquad
    \text{R-LR-3: } \sqrt{\mathbb E\textstyle\sum_i\tan^2\theta_i}\ \text{(KFAC level)},\qquad \tfrac12 d_Y\sigma_\varepsilon^2\ \text{(loss floor)}.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_figure1", "plot_figure2", "plot_figure4", "plot_figure5", "METHOD_COLORS"]

#: one colour per method label (Figures 1, 2, 4, 5 use the same).
METHOD_COLORS: dict[str, str] = {
    "SGD": "#1f77b4", "AMGD": "#ff7f0e", "Adam": "#2ca02c", "AMGD+BN": "#d62728", "NGD": "#9467bd",
    "Newton": "#8c564b", "KFAC": "#000000", "KFAC (LS head)": "#7f7f7f",
}
_METRIC_TITLES = {
    "train_loss": "training loss (batch)", "subspace_distance": r"subspace distance $\sin\theta_{\max}$",
    "transfer_loss": "transfer loss", "population_loss": "population loss",
}


def _color(label: str, i: int) -> str:
    return METHOD_COLORS.get(label, f"C{i % 10}")


def _log_mean_band(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: 10^mean(log10), and 10^(mean -+ 2 se) over the finite positive entries."""
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.where(np.isfinite(Y) & (Y > 0), np.log10(np.where(Y > 0, Y, 1.0)), np.nan)
        n = np.sum(np.isfinite(L), axis=0)
        m = np.nanmean(np.where(n[None, :] > 0, L, 0.0), axis=0)
        m = np.where(n > 0, m, np.nan)
        sd = np.nanstd(np.where(n[None, :] > 1, L, 0.0), axis=0, ddof=1) if Y.shape[0] > 1 else np.zeros(Y.shape[1])
        se = np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return 10.0 ** m, 10.0 ** (m - 2 * se), 10.0 ** (m + 2 * se)


def _curves(ax, steps: np.ndarray, Y: np.ndarray, labels: Sequence[str], diverged: np.ndarray,
            lrs: np.ndarray, *, ls: str = "-", legend: bool = True, band: bool = True) -> None:
    """Y: (trials, methods, recorded)."""
    for j, lb in enumerate(labels):
        mean, lo, hi = _log_mean_band(Y[:, j, :])
        nd = int((diverged[:, j] >= 0).sum())
        name = f"{lb} (lr {lrs[j]:.3g})" + (f", {nd}/{Y.shape[0]} diverged" if nd else "")
        c = _color(lb, j)
        ax.plot(steps, mean, ls, color=c, lw=1.4, label=name if legend else None)
        if band:
            ax.fill_between(steps, lo, hi, color=c, alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")


def _kfac_overlays(ax, res: Any) -> None:
    """R-LR-1 rate from the mean initial distance and the R-LR-3 level at KFAC's step size."""
    if "KFAC" not in res.labels:
        return
    j = res.index("KFAC")
    eta = float(res.lrs[j])
    d0 = float(np.nanmean(res.subspace_distance[:, j, 0]))
    t = res.steps.astype(float)
    lv = res.kfac_level[:, j]
    level = float(lv[np.isfinite(lv)].mean()) if np.isfinite(lv).any() else float("nan")
    rate = d0 * (1.0 - eta) ** t if eta < 1 else np.full_like(t, np.nan)
    if np.isfinite(level):
        rate = np.where(rate >= 0.3 * level, rate, np.nan)
        ax.axhline(level, color="k", ls=":", lw=1.0, label=fr"R-LR-3 level, KFAC $\eta$={eta:.3g}")
    ax.plot(t, rate, color="k", ls="--", lw=0.9, alpha=0.7, label=r"R-LR-1 rate $d_0(1-\eta)^t$")


def _check_result(func: str, name: str, x: Any, kind: str) -> None:
    """``x`` is the result dataclass ``kind`` of :mod:`compare.linrep` (imported here: no import cycle)."""
    from compare import _validate as V
    from compare.linrep import claims as lc
    from compare.linrep import experiments as ex

    cls = {"CurvesResult": ex.CurvesResult, "SweepResult": ex.SweepResult, "Figure4Result": lc.Figure4Result}[kind]
    if not isinstance(x, cls):
        raise V.fail(func, name, f"a {kind}", V.describe(x))


def plot_figure1(res: Any) -> Figure:
    """Figure 1: training loss, subspace distance and transfer loss vs iteration for every method.

    res: :class:`compare.linrep.experiments.CurvesResult`. Transfer loss: population (solid) and the
    finite-sample version (dashed: least-squares head on n_t transfer samples, fresh-data risk).
    """
    _check_result("plot_figure1", "res", res, "CurvesResult")
    fig = Figure(figsize=(15, 4.6))
    axes = fig.subplots(1, 3)
    _curves(axes[0], res.steps, res.train_loss, res.labels, res.diverged_at, res.lrs)
    axes[0].axhline(res.noise_loss, color="k", ls=":", lw=1.0, label=r"noise floor $d_Y\sigma^2/2$")
    axes[0].set_title(_METRIC_TITLES["train_loss"])
    _curves(axes[1], res.steps, res.subspace_distance, res.labels, res.diverged_at, res.lrs, legend=False)
    _kfac_overlays(axes[1], res)
    axes[1].set_title(_METRIC_TITLES["subspace_distance"])
    _curves(axes[2], res.steps, res.transfer_loss, res.labels, res.diverged_at, res.lrs, legend=False)
    _curves(axes[2], res.steps, res.transfer_loss_finite, res.labels, res.diverged_at, res.lrs, ls="--",
            legend=False, band=False)
    axes[2].plot([], [], "k--", lw=1.0, label=f"finite-sample (n_t = {res.settings.problem.transfer_samples})")
    axes[2].plot([], [], "k-", lw=1.0, label="population")
    axes[2].set_title(_METRIC_TITLES["transfer_loss"])
    axes[0].legend(fontsize=7, loc="upper right")
    axes[1].legend(fontsize=7, loc="lower left")
    axes[2].legend(fontsize=7, loc="lower left")
    p = res.settings.problem
    fig.suptitle(f"Figure 1 [R]: d_x={p.d_x}, d_y={p.d_y}, k={p.k}, n={p.batch}, kappa_x={p.kappa_x:g}, "
                 f"kappa_F={p.kappa_F:g}, sigma={p.noise_std:g}, {p.law}; {res.train_loss.shape[0]} trials, "
                 f"mean of log10 +- 2 s.e.", fontsize=9)
    fig.tight_layout()
    return fig


def plot_figure2(res: Any) -> Figure:
    """Figure 2: subspace distance and training loss of KFAC and AMGD with and without batch-norm.

    res: :class:`compare.linrep.experiments.CurvesResult` (Figure 1's runs restricted to those methods).
    """
    _check_result("plot_figure2", "res", res, "CurvesResult")
    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2)
    _curves(axes[0], res.steps, res.subspace_distance, res.labels, res.diverged_at, res.lrs)
    _kfac_overlays(axes[0], res)
    axes[0].set_title(_METRIC_TITLES["subspace_distance"])
    _curves(axes[1], res.steps, res.train_loss, res.labels, res.diverged_at, res.lrs, legend=False)
    axes[1].axhline(res.noise_loss, color="k", ls=":", lw=1.0, label=r"noise floor $d_Y\sigma^2/2$")
    axes[1].set_title(_METRIC_TITLES["train_loss"] + " (batch-norm: training mode)")
    for ax in axes:
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Figure 2 [R]: KFAC vs AMGD with and without batch-norm ({res.train_loss.shape[0]} trials)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_figure4(res4: Any) -> Figure:
    """Figure 4: batch-norm vs KFAC in three data settings (columns): distance (top), training loss (bottom).

    res4: :class:`compare.linrep.claims.Figure4Result`.
    """
    _check_result("plot_figure4", "res4", res4, "Figure4Result")
    n = len(res4.cases)
    fig = Figure(figsize=(5 * n, 7.5))
    axes = np.atleast_2d(fig.subplots(2, n)).reshape(2, n)
    for c, (name, res) in enumerate(zip(res4.names, res4.cases)):
        _curves(axes[0, c], res.steps, res.subspace_distance, res.labels, res.diverged_at, res.lrs)
        _kfac_overlays(axes[0, c], res)
        p = res.settings.problem
        axes[0, c].set_title(f"{name} (kappa_x = {p.kappa_x:g})\n" + _METRIC_TITLES["subspace_distance"], fontsize=9)
        _curves(axes[1, c], res.steps, res.train_loss, res.labels, res.diverged_at, res.lrs, legend=False)
        axes[1, c].axhline(res.noise_loss, color="k", ls=":", lw=1.0)
        axes[1, c].set_title(_METRIC_TITLES["train_loss"], fontsize=9)
        axes[0, c].legend(fontsize=7, loc="lower left")
    fig.suptitle("Figure 4 [R]: batch-norm (AMGD+BN) vs KFAC; mean of log10 over trials +- 2 s.e.", fontsize=9)
    fig.tight_layout()
    return fig


def plot_figure5(sw: Any) -> Figure:
    """Figure 5: subspace distance after the run vs step size for every method.

    sw: :class:`compare.linrep.experiments.SweepResult`. Lines: geometric mean over the trials that did
    not diverge (band +- 2 s.e.); x at the top: step sizes where at least half of the trials diverged.
    Overlays: R-LR-1 AMGD stability limit (line: mean over tasks, shade: range) and the R-LR-3 level of
    KFAC for eta in (0, 1].
    """
    _check_result("plot_figure5", "sw", sw, "SweepResult")
    fig = Figure(figsize=(8.5, 5.2))
    ax = fig.subplots(1, 1)
    lrs = sw.lrs
    top = 1.6
    for j, lb in enumerate(sw.labels):
        c = _color(lb, j)
        Y = np.where(sw.diverged[:, j], np.nan, sw.final_distance[:, j])
        mean, lo, hi = _log_mean_band(Y)
        frac = sw.diverged[:, j].mean(axis=0)
        ran = sw.ran[j]
        ok = (frac < 0.5) & ran
        ax.plot(lrs[ok], mean[ok], "o-", color=c, ms=4, lw=1.3, label=lb)
        ax.fill_between(lrs, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=c, alpha=0.12, lw=0)
        bad = (frac >= 0.5) & ran
        if bad.any():
            ax.plot(lrs[bad], np.full(bad.sum(), top * (0.9 + 0.02 * j)), "x", color=c, ms=7, mew=1.8)
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.text(lrs[0], top * 1.02, "x: diverged (>= half of the trials)", fontsize=7, va="bottom")
    lim = sw.amgd_limit
    ax.axvline(float(np.mean(lim)), color="#ff7f0e", ls="--", lw=1.2, label="R-LR-1 AMGD stability limit")
    ax.axvspan(float(np.min(lim)), float(np.max(lim)), color="#ff7f0e", alpha=0.1, lw=0)
    level = None
    if np.isfinite(sw.kfac_level).any():
        cnt = np.isfinite(sw.kfac_level).sum(axis=0)
        level = np.where(cnt > 0, np.nansum(sw.kfac_level, axis=0) / np.maximum(cnt, 1), np.nan)
    if level is not None:
        ax.plot(lrs, level, "k:", lw=1.2, label="R-LR-3 level of KFAC")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=top * 1.15)
    ax.set_xlabel("step size")
    ax.set_ylabel(fr"subspace distance after {sw.settings.steps} iterations")
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    p = sw.settings.problem
    ax.set_title(f"Figure 5 [R]: d_x={p.d_x}, n={p.batch}, kappa_x={p.kappa_x:g}, kappa_F={p.kappa_F:g}; "
                 f"{sw.final_distance.shape[0]} trials", fontsize=9)
    fig.tight_layout()
    return fig
