"""Figure 3 (single-index alignment, docs/theory.md section 5): data in, matplotlib Figure out.

Three panels, each a theory curve (lines) with Monte-Carlo means and standard-error bands or bars
(markers) for SGD (docs/theory.md 4.2) and KFAC (Theorem 3.9, reconstructed [R]):

.. math::

    \\text{left: }\\cos(v,\\beta^*)\\ \\text{vs}\\ \\lambda_G,\\qquad
    \\text{middle: vs}\\ \\epsilon,\\qquad \\text{right: vs}\\ \\psi=n/d,

with SGD's :math:`\\psi\\to\\infty` cap :math:`\\cos(\\Sigma\\beta^*,\\beta^*)` dotted. No experiment runs here
(see :mod:`compare.single_index.figures`).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["Curve", "Figure3Data", "figure3"]

_SGD = "#1f77b4"
_KFAC = "#d62728"


@dataclass(frozen=True, kw_only=True)
class Curve:
    """One panel: simulated points at ``x`` and theory on ``x_dense``.

    x: (m,) simulated settings. x_dense: theory abscissae. theory_sgd / theory_kfac: theory on x_dense.
    sgd_mean, sgd_se, kfac_mean, kfac_se: (m,) Monte-Carlo means and standard errors.
    network_mean, network_se: the network's own spike (or ``None``).
    cap: SGD's psi -> infinity cap on x_dense (or ``None``).
    theory_sgd_points, theory_kfac_points: per-instance theory at ``x`` (or ``None``).
    """

    x: np.ndarray
    x_dense: np.ndarray
    theory_sgd: np.ndarray
    theory_kfac: np.ndarray
    sgd_mean: np.ndarray
    sgd_se: np.ndarray
    kfac_mean: np.ndarray
    kfac_se: np.ndarray
    network_mean: np.ndarray | None = None
    network_se: np.ndarray | None = None
    cap: np.ndarray | None = None
    theory_sgd_points: np.ndarray | None = None
    theory_kfac_points: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class Figure3Data:
    """Everything Figure 3 shows. left / right / psi: :class:`Curve` panels (vs lam_G, eps, psi).

    d, N: dimension and width; psi_left, eps_left: the left panel's setting (also the psi panel's eps);
    lam_right: lam_G of the eps and psi panels; trials: trials per point; teacher, student, noise_std.
    """

    left: Curve
    right: Curve
    psi: Curve
    d: int
    N: int
    psi_left: float
    eps_left: float
    lam_right: float
    trials: int
    teacher: str
    student: str
    noise_std: float


def _panel(ax, c: Curve, *, logx: bool, band: bool) -> None:
    ax.plot(c.x_dense, c.theory_sgd, color=_SGD, lw=1.6, label="SGD theory (4.2)")
    ax.plot(c.x_dense, c.theory_kfac, color=_KFAC, lw=1.6, label="KFAC theory (Thm 3.9)")
    if c.cap is not None:
        ax.plot(c.x_dense, c.cap, color=_SGD, lw=1.0, ls=":", label=r"SGD cap $\cos(\Sigma\beta^*,\beta^*)$")
    if band:
        for m, s, col in ((c.sgd_mean, c.sgd_se, _SGD), (c.kfac_mean, c.kfac_se, _KFAC)):
            ax.fill_between(c.x, m - s, m + s, color=col, alpha=0.25, lw=0)
    ax.errorbar(c.x, c.sgd_mean, yerr=c.sgd_se, fmt="o", ms=4, color=_SGD, capsize=2, label="SGD sim. (mean ± s.e.)")
    ax.errorbar(c.x, c.kfac_mean, yerr=c.kfac_se, fmt="s", ms=4, color=_KFAC, capsize=2,
                label="KFAC sim. (mean ± s.e.)")
    if c.network_mean is not None:
        ax.errorbar(c.x, c.network_mean, yerr=c.network_se, fmt="x", ms=5, color="k", capsize=2,
                    label="KFAC network spike")
    if c.theory_kfac_points is not None:
        ax.plot(c.x, c.theory_kfac_points, "_", color=_KFAC, ms=10, mew=1.5)
    if c.theory_sgd_points is not None:
        ax.plot(c.x, c.theory_sgd_points, "_", color=_SGD, ms=10, mew=1.5)
    if logx:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)


def figure3(data: Figure3Data) -> Figure:
    """Figure 3: alignment vs lam_G (left), vs anisotropy eps (middle), vs psi (right).

    data: a :class:`Figure3Data`. Returns a matplotlib Figure (Agg backend).
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    common = f"d={data.d}, N={data.N}, teacher {data.teacher}, student {data.student}, " \
             f"$\\sigma_\\varepsilon$={data.noise_std:g}, {data.trials} trials"
    _panel(axes[0], data.left, logx=True, band=True)
    axes[0].set_xlabel(r"$\lambda_G$")
    axes[0].set_ylabel(r"alignment $\cos(v,\beta^*)$")
    axes[0].set_title(f"$\\psi$={data.psi_left:g}, $\\epsilon$={data.eps_left:g}", fontsize=10)
    _panel(axes[1], data.right, logx=False, band=False)
    axes[1].set_xlabel(r"anisotropy $\epsilon$ (larger = more anisotropic)")
    axes[1].set_title(f"$\\psi$={data.psi_left:g}, $\\lambda_G$={data.lam_right:g} "
                      "(lines: limiting law; ticks: this instance)", fontsize=10)
    _panel(axes[2], data.psi, logx=True, band=False)
    axes[2].set_xticks(data.psi.x)
    axes[2].set_xticklabels([f"{v:g}" for v in data.psi.x])
    axes[2].minorticks_off()
    axes[2].set_xlabel(r"$\psi = n/d$")
    axes[2].set_title(f"$\\epsilon$={data.eps_left:g}, $\\lambda_G$={data.lam_right:g}", fontsize=10)
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.suptitle("Figure 3 (reconstructed): single-index spike alignment after one step — " + common, fontsize=10)
    return fig
