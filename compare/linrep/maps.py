r"""The maps of C17 and C18 (:mod:`compare.engine.maps`) with the theory's boundary drawn over them.

**C17 and R-LR-3.** KFAC at :math:`\eta` run with fresh batches of :math:`n` samples does not reach distance 0:
it settles at R-LR-3's level

.. math::

    \ell(\eta, \sigma_\varepsilon) = \sqrt{\mathbb E\textstyle\sum_i\tan^2\theta_i}
    = \sigma_\varepsilon\,\sqrt{\frac{\eta}{2-\eta}\,\lVert F^{*+}\rVert_F^2\,
      \frac{\mathrm{tr}(\Sigma_{22\cdot1}^{-1})}{n-d_X-1}}
    \;\propto\; \sigma_\varepsilon ,

largest at :math:`\eta = 1`. A first-order method is optimisation-limited, its best final distance
:math:`A(\sigma_\varepsilon)` barely moving with the noise, so R-LR-3 predicts that KFAC at :math:`\eta = 1`
stops beating it where :math:`\ell(1, \sigma_\varepsilon) = A(\sigma_\varepsilon)`. The overlay shows, against
the label noise (log-log, one panel per :math:`\kappa_x` of the map's grid): KFAC's measured distance at
:math:`\eta = 1` (geometric mean over the sweep's trials), :math:`\ell(1, \cdot)` (the per-cell R-LR-3 level
recorded by C17 and the line through it, :math:`\propto\sigma_\varepsilon`) and Adam's best final distance
over the step-size grid. The crossing noise, measured and predicted, is interpolated linearly in
:math:`\log` between grid points (:func:`crossing`).

**C18 and R-LR-1.** Per one-at-a-time knob, the fraction of SGD runs that diverged at each grid step size,
one line per knob value, with the range over tasks of R-LR-1's stability limit
:math:`2/(\sigma_{\max}(F^*)^2\mu_{\max}(\Sigma_{22\cdot1}))` shaded in the same colour: R-LR-1 predicts
every run above the shaded range diverges.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from compare.engine import maps as M

C17_ETA = 1.0


# --------------------------------------------------------------------------- C17
def _c17_point(rec: Mapping[str, Any]) -> dict[str, float] | None:
    """KFAC's distance and R-LR-3 level at eta = 1 and Adam's best distance, from a C17 record's rows."""
    rows = [r for r in rec.get("rows") or () if r.get("KFAC_eta") is not None
            and math.isclose(float(r["KFAC_eta"]), C17_ETA)]
    adam = [r for r in rows if r.get("method") == "Adam"]
    if not adam:
        return None
    r = adam[0]
    return {"kfac": float(r["KFAC_gmean"]), "level": float(r.get("KFAC_level", math.nan)),
            "adam": float(r["method_gmean"]), "adam_lr": float(r["method_lr"]), "verdict": rec["verdict"],
            "t": float(r["statistic"]) if r.get("statistic") is not None else math.nan}


def crossing(x: Sequence[float], a: Sequence[float], b: Sequence[float]) -> tuple[str, float | None]:
    r"""Where ``a`` rises above ``b`` along increasing ``x`` (all positive): the first grid interval where
    :math:`\log a - \log b` changes from negative to non-negative, interpolated linearly in :math:`\log x`.

    Returns ``("at", x*)``, ``("below", min x)`` when ``a >= b`` already at the smallest x, ``("above", max x)``
    when never, or ``("none", None)`` without two finite positive points.
    """
    pts = [(float(xi), float(ai), float(bi)) for xi, ai, bi in zip(x, a, b)
           if xi > 0 and ai > 0 and bi > 0 and all(map(math.isfinite, (xi, ai, bi)))]
    pts.sort()
    if len(pts) < 2:
        return "none", None
    g = [(math.log10(xi), math.log10(ai) - math.log10(bi)) for xi, ai, bi in pts]
    if g[0][1] >= 0:
        return "below", pts[0][0]
    for (x0, g0), (x1, g1) in zip(g, g[1:]):
        if g0 < 0 <= g1:
            return "at", 10.0 ** (x0 + (x1 - x0) * (-g0) / (g1 - g0))
    return "above", pts[-1][0]


def _where(kind: str, x: float | None) -> str:
    return {"at": f"at label noise {x:.2g}", "below": f"below label noise {x:g} (already at the smallest)",
            "above": f"nowhere up to label noise {x:g}", "none": "(too few points)"}[kind]


def _kx(kx: Any) -> str:
    return "kappa_x at its default" if kx is None else f"kappa_x = {kx:g}"


def c17_series(cm: M.ClaimMap) -> dict[Any, list[tuple[float, dict[str, float]]]]:
    """Per kappa_x of the map (the grid's rows, or the default alone), ``[(noise, point)]`` over the cells that
    differ from the default only in noise and kappa_x."""
    pl = cm.plan
    out: dict[Any, list] = {}
    for cell, rec in zip(pl.cells, cm.records):
        c = dict(cell.coords)
        if any(c[k] != pl.defaults[k] for k in pl.knobs if k not in ("noise_std", "kappa_x")):
            continue
        p = _c17_point(rec)
        if p is not None:
            out.setdefault(c.get("kappa_x", pl.defaults.get("kappa_x")), []).append((float(c["noise_std"]), p))
    return {k: sorted(v, key=lambda t: t[0]) for k, v in sorted(out.items(), key=lambda kv: kv[0] or 0.0)}


def draw_c17(cm: M.ClaimMap, series: Mapping[Any, list]) -> Any:
    from matplotlib.figure import Figure

    n = len(series)
    fig = Figure(figsize=(3.6 * n + 0.6, 3.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, (kx, pts) in zip(axes, series.items()):
        pos = [(s, p) for s, p in pts if s > 0]
        s = np.array([q[0] for q in pos])
        kf = np.array([q[1]["kfac"] for q in pos])
        lv = np.array([q[1]["level"] for q in pos])
        ad = np.array([q[1]["adam"] for q in pos])
        ax.plot(s, kf, "o-", color="black", label="KFAC, eta = 1 (measured)")
        ok = np.isfinite(lv) & (lv > 0)
        if ok.any():
            c = float(np.median(lv[ok] / s[ok]))
            xs = np.array([s.min() / 2, s.max() * 2])
            ax.plot(xs, c * xs, "--", color="black", lw=1, label="R-LR-3 level at eta = 1")
            ax.plot(s[ok], lv[ok], "x", color="black")
        ax.plot(s, ad, "s-", color="#2ca02c", label="Adam, best step size")
        for si, (_, p) in zip(s, pos):
            ax.plot([si], [0.0], marker="s", ms=9, color=M.COLORS.get(p["verdict"], M.COLORS["fails"]),
                    transform=ax.get_xaxis_transform(), clip_on=False)
        kind, x = crossing(s, kf, ad)
        if kind == "at":
            ax.axvline(x, color="grey", lw=1)
        kind, x = crossing(s, lv, ad)
        if kind == "at":
            ax.axvline(x, color="grey", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("label noise")
        ax.set_title(_kx(kx), fontsize=9)
    axes[0].set_ylabel("final subspace distance")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"C17: KFAC at eta = 1 against Adam's best vs label noise ({cm.size} size, seed {cm.seed})",
                 fontsize=10)
    return fig


@M.overlay("C17")
def c17_overlay(cm: M.ClaimMap) -> M.Overlay:
    """R-LR-3's level at eta = 1 against Adam's best distance: the noise where KFAC at eta = 1 stops winning."""
    from compare.engine.runner import render_figure

    series = c17_series(cm)
    series = {k: v for k, v in series.items() if sum(1 for s, _ in v if s > 0) >= 2}
    if not series:
        return M.Overlay()
    sentences, data = [], {}
    for kx, pts in series.items():
        pos = [(s, p) for s, p in pts if s > 0]
        s = [q[0] for q in pos]
        meas = crossing(s, [q[1]["kfac"] for q in pos], [q[1]["adam"] for q in pos])
        pred = crossing(s, [q[1]["level"] for q in pos], [q[1]["adam"] for q in pos])
        data[kx] = {"noise": s, "kfac": [q[1]["kfac"] for q in pos], "level": [q[1]["level"] for q in pos],
                    "adam": [q[1]["adam"] for q in pos], "measured": meas, "predicted": pred}
        sentences.append(f"C17 at {_kx(kx)}: KFAC at eta = 1 rises above Adam's best {_where(*meas)}; "
                         f"R-LR-3's level at eta = 1 rises above it {_where(*pred)}.")
    zero = [(kx, p) for kx, pts in series.items() for s, p in pts if s == 0]
    note = ("At label noise 0 (off the log axis): " + "; ".join(
        f"{_kx(kx)}: KFAC {p['kfac']:.2g}, Adam {p['adam']:.2g}" for kx, p in zero) + ". ") if zero else ""
    kx0 = next(iter(series))
    fig = draw_c17(cm, series)
    png, svg = render_figure(fig)
    cap = (f"KFAC's final subspace distance at eta = 1 (circles; geometric mean over the sweep's trials), the R-LR-3 "
           f"level sqrt(E sum tan^2) at eta = 1 (crosses, and the line through them, proportional to the noise) and "
           f"Adam's best final distance over the step-size grid (squares), against the label noise. Vertical lines: "
           f"where KFAC at eta = 1 rises above Adam's best (solid, measured) and where R-LR-3 predicts it (dashed), "
           f"interpolated in log between grid points. Squares on the axis: C17's verdict at that cell (green holds, "
           f"amber inconclusive, orange contradicted). {note}{cm.size} size, master seed {cm.seed}, "
           f"{M.trials_text(cm.settings)}.")
    return M.Overlay(figures=({"name": "map_C17_floor", "title": f"C17: where KFAC at eta = 1 stops winning "
                                                                  f"(R-LR-3), {'; '.join(_kx(k) for k in series)}",
                               "caption": cap, "png": png, "svg": svg, "claims": ["C17"]},),
                     sentences=tuple(sentences), data={"series": data, "first_kappa_x": kx0})


# --------------------------------------------------------------------------- C18
def _c18_text(row: Mapping[str, Any]) -> str:
    if row.get("part") == "a":
        return f"{int(row.get('runs_above_limit_not_diverged', 0))}/{int(row.get('runs_above_limit', 0))}"
    return M.statistic_of(row)[1]


M.STATISTIC_TEXT["C18"] = _c18_text
M.CAPTION_NOTES["C18"] = ("C18's cells: k/N = SGD runs above R-LR-1's limit that did not diverge, of the N above "
                          "it (R-LR-1 predicts 0/N; 0/0 means no grid step size was above the limit, so (a) was not "
                          "tested and the cell fails), or t = AMGD's mean step / own limit against 1 (b).")


def c18_strips(cm: M.ClaimMap) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """Per one-at-a-time knob, ``[(value, {lrs, fraction, limit, verdict})]`` from the C18 records' row (a)."""
    pl = cm.plan
    out: dict[str, list] = {}
    for cell, rec in zip(pl.cells, cm.records):
        row = next((r for r in rec.get("rows") or () if r.get("part") == "a"), None)
        if row is None:
            continue
        lrs = (rec.get("settings") or {}).get("sweep.lrs")
        frac = row.get("fraction_diverged_per_lr")
        if lrs is None or frac is None:
            continue
        pt = {"lrs": [float(x) for x in lrs], "fraction": [float(x) for x in frac],
              "limit": [float(x) for x in row.get("limit_min_max") or (math.nan, math.nan)],
              "verdict": rec["verdict"]}
        for k in pl.knobs:
            if k in cell.panels:
                out.setdefault(k, []).append((dict(cell.coords)[k], pt))
    return {k: sorted(v, key=lambda t: t[0]) if M.KNOBS[k].numeric else v for k, v in out.items()}


@M.overlay("C18")
def c18_overlay(cm: M.ClaimMap) -> M.Overlay:
    """Fraction of SGD runs diverging vs step size per knob value, R-LR-1's limit shaded."""
    from matplotlib.figure import Figure

    from compare.engine.runner import render_figure

    strips = c18_strips(cm)
    if not strips:
        return M.Overlay()
    n = len(strips)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.8 * cols, 2.9 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (k, pts) in zip(axes, strips.items()):
        for i, (v, p) in enumerate(pts):
            col = f"C{i % 10}"
            ax.plot(p["lrs"], p["fraction"], "o-", color=col, ms=3,
                    label=f"{M.KNOBS[k].fmt(v)} ({p['verdict']})")
            lo, hi = p["limit"]
            if math.isfinite(lo) and math.isfinite(hi):
                ax.axvspan(lo, hi, color=col, alpha=0.18, lw=0)
                ax.axvline(hi, color=col, lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(M.KNOBS[k].label, fontsize=9)
        ax.set_xlabel("SGD step size")
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].set_ylabel("fraction of SGD runs diverged")
    fig.suptitle(f"C18: SGD's divergence vs R-LR-1's stability limit per knob ({cm.size} size, seed {cm.seed})",
                 fontsize=10)
    png, svg = render_figure(fig)
    cap = (f"Per knob varied alone around the default, the fraction of SGD runs (over the sweep's trials) that "
           f"diverged at each grid step size, one line per value (legend: C18's verdict there); shaded in the same "
           f"colour, the range over tasks of R-LR-1's stability limit 2 / (sigma_max(F*)^2 mu_max(Sigma_22.1)), its "
           f"largest value dashed: R-LR-1 predicts that every run at a step size above the dashed line diverges. "
           f"{cm.size} size, master seed {cm.seed}.")
    return M.Overlay(figures=({"name": "map_C18_limit", "title": "C18: SGD's divergence against R-LR-1's limit",
                               "caption": cap, "png": png, "svg": svg, "claims": ["C18"]},),
                     data={"strips": strips})
