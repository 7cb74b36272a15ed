r"""The scorecard as data: per optimizer, per setting, the measurements and predictions (``scorecard.json``).

Summaries of a cell (:class:`compare.scorecard.experiments.CellResult`), over its ``trials`` problem draws:

- **rate**: per trial the best (smallest) rate over the step-size grid, by the cell's route (the Jacobian's
  spectral radius, or a *linear* window rate of :mod:`compare.scorecard.measure`), then the mean over the trials
  that have one, with its standard error over trials and the largest measurement error of the rates used.
  :math:`\tau = 1/(1-\rho)` (steps per e-fold, about) is what the figure plots.
- **theory**: the cell's prediction of the same measurement at the same step size (R-LR-1 at the rule's pair;
  R-LR-4's prediction of the run's window rate at the run's limit, where the run has a linear rate and ends at a
  solution), or ``None`` with the reason; its mean is over the trials it covers (``trials``), next to the
  measured mean over the same trials (``measured_same_trials``).
- **iterations to 1e-3**: per trial the fewest over the grid; reported when every trial got there.
- **fresh batches**: the step size with the smallest mean :math:`\log_{10}` final distance among those where no
  trial diverged or failed (the rule of Figures 1-5), its final distance (geometric mean over trials) and
  transfer loss (mean).
- **status**: ``ok``, or what went wrong at which step sizes (divergence, or an exception's message, never
  mixed up).

Single-index rows (one per preconditioner of the first-layer step) give the mean alignment
:math:`\cos(v,\beta^*)` over trials with its standard error next to its theory, and the optimizers each
preconditioner stands for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compare.engine.registry import experiment, ref
from compare.engine.settings import as_dict
from compare.scorecard import experiments as E
from compare.scorecard import measure as M
from simulate import optimizers as so
from simulate import single_index as ss
from theory import muon as tm
from theory import single_index as ts


def _f(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _mean_se(x: np.ndarray) -> tuple[float | None, float | None]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None
    return float(x.mean()), (float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None)


def best_rates(cell: E.CellResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trial: the best measured rate over the grid (NaN: none), the index of its step size (-1), and its
    measurement error (Jacobian tolerance or window error)."""
    rate = cell.jac_rate if cell.route == "jacobian" else np.where(cell.run_linear, cell.run_rate, np.nan)
    err = cell.jac_tol if cell.route == "jacobian" else cell.run_error
    T = rate.shape[0]
    best, idx, e = np.full(T, np.nan), np.full(T, -1), np.full(T, np.nan)
    for i in range(T):
        if np.isfinite(rate[i]).any():
            j = int(np.nanargmin(rate[i]))
            best[i], idx[i], e[i] = rate[i, j], j, err[i, j]
    return best, idx, e


def best_theory(cell: E.CellResult, idx: np.ndarray | None = None) -> np.ndarray:
    """Per trial the prediction of what :func:`best_rates` measured, at the same step size (``idx``; by default
    :func:`best_rates`' own): R-LR-1's rate for the Jacobian route; for R-LR-4 its prediction of the window rate
    (:func:`compare.scorecard.measure.window_prediction`, what C24 compares), only where the run has a linear rate
    and ends at a solution (where R-LR-4 linearises). NaN where there is none."""
    if idx is None:
        _, idx, _ = best_rates(cell)
    if cell.theory_ref == "R-LR-1":
        th = cell.theory
    else:
        th = np.where(cell.run_linear & (cell.residual <= M.SOLUTION_RTOL), cell.theory_window, np.nan)
    return np.array([float(th[i, j]) if j >= 0 else np.nan for i, j in enumerate(idx)])


def tau(rate: Any) -> Any:
    """:math:`1/(1-\\rho)` (inf for rho >= 1)."""
    r = np.asarray(rate, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(r < 1.0, 1.0 / (1.0 - r), np.inf)


def _statuses(records: tuple) -> dict[str, Any]:
    errors, diverged, na = {}, [], []
    for t, row in enumerate(records):
        for j, rec in enumerate(row):
            if rec["status"] == "error":
                errors.setdefault(rec["message"], []).append((t, j))
            elif rec["status"] == "diverged":
                diverged.append((t, j, rec["at"]))
            elif rec["status"] == "n/a":
                na.append(rec["message"])
    return {"errors": errors, "diverged": diverged, "na": sorted(set(na))}


def fresh_best(cell: E.CellResult) -> dict[str, Any]:
    """The fresh-batch summary at the best step size (module docstring)."""
    ok = np.array([[rec["status"] == "ok" for rec in row] for row in cell.fresh], dtype=bool)
    good = ok.all(axis=0)
    if not good.any():
        return {"lr": None, "final_distance": None, "transfer_loss": None,
                "note": "every step size diverged or failed in some trial"}
    with np.errstate(divide="ignore"):
        score = np.where(good, np.log10(np.maximum(cell.fresh_distance, 1e-300)).mean(axis=0), np.inf)
    j = int(np.argmin(score))
    return {"lr": float(cell.lrs[j]), "final_distance": float(10.0 ** score[j]),
            "transfer_loss": _f(np.mean(cell.fresh_transfer[:, j])), "note": ""}


def summarise(cell: E.CellResult) -> dict[str, Any]:
    """One cell of the scorecard (module docstring) as plain data."""
    c = cell.settings.common
    best, idx, err = best_rates(cell)
    m, se = _mean_se(best)
    th = best_theory(cell, idx)
    tm_, tse = _mean_se(th)
    paired = np.isfinite(th) & np.isfinite(best)
    same, _ = _mean_se(np.where(paired, best, np.nan))   # the measured mean over the trials the theory covers
    note = ""
    if m is None:
        notes = [rec["rate"]["note"] for row in cell.pop for rec in row if rec["rate"]["note"]]
        bounds = cell.run_bound[np.isfinite(cell.run_bound)]
        if bounds.size:
            note = f"floor reached too fast to measure: rate <= {float(bounds.min()):.3g}"
        elif notes:
            note = notes[0]
        if cell.route == "jacobian" and not np.isfinite(cell.jac_rate).any():
            note = "no Jacobian measured"
    # a step size whose run reached the floor too fast for a linear rate, with a bound below the best linear rate:
    # the cell's best rate is that bound (an upper bound), not the slower linear rate
    faster = None
    if cell.route == "run" and np.isfinite(cell.run_bound).any():
        per_trial = np.nanmin(np.where(np.isfinite(cell.run_bound), cell.run_bound, np.inf), axis=1)
        if m is None or np.all(per_trial < np.where(np.isfinite(best), best, np.inf)):
            faster = float(per_trial.max())
            note = (f"floor reached in fewer than {M.MIN_STEPS} steps of the linear regime at some step size: "
                    f"rate <= {faster:.3g} in every trial")
    it = np.where(cell.iterations >= 0, cell.iterations, np.iinfo(np.int64).max).min(axis=1)
    reached = it < np.iinfo(np.int64).max
    st = _statuses(cell.pop)
    stf = _statuses(cell.fresh)
    errors = {**st["errors"], **stf["errors"]}
    status = "ok"
    if errors:
        status = "error"
    elif st["na"] and not np.isfinite(cell.fresh_distance).any():
        status = "n/a"
    lrs_used = sorted({float(cell.lrs[j]) for j in idx if j >= 0})
    return {
        "kappa_x": cell.settings.kappa_x, "kappa_F": cell.settings.kappa_F,
        "rate": {"measured": m, "se_over_trials": se, "measurement_error": _f(np.nanmax(err)) if np.isfinite(err).any()
                 else None, "per_trial": [_f(x) for x in best], "lr": lrs_used, "method": cell.route,
                 "tau": _f(tau(m)) if m is not None else None, "note": note, "upper_bound": faster},
        "theory": {"rate": tm_, "se_over_trials": tse, "ref": cell.theory_ref, "per_trial": [_f(x) for x in th],
                   "trials": int(paired.sum()), "measured_same_trials": same,
                   "tau": _f(tau(tm_)) if tm_ is not None else None,
                   "note": cell.theory_note if cell.theory_ref is None else
                   ("R-LR-1 at the rule's pair (P, Q), F = F*" if cell.theory_ref == "R-LR-1" else
                    "R-LR-4's prediction of the run's window rate, at the point and step matrix the run ends "
                    "with")},
        "iterations_to_1e-3": {"mean": float(it[reached].mean()) if reached.all() else None,
                               "per_trial": [int(x) if r else None for x, r in zip(it, reached)],
                               "within": c.steps, "note": "" if reached.all() else
                               f"{int((~reached).sum())} of {reached.size} trial(s) not within {c.steps} steps"},
        "fresh": {**fresh_best(cell), "steps": c.fresh_steps, "batch": c.batch},
        "status": status,
        "errors": [{"message": msg, "where": [{"trial": t, "lr": float(cell.lrs[j])} for t, j in where]}
                   for msg, where in errors.items()],
        "diverged": [{"trial": t, "lr": float(cell.lrs[j]), "step": int(a)} for t, j, a in st["diverged"]],
        "diverged_fresh": [{"trial": t, "lr": float(cell.lrs[j]), "step": int(a)} for t, j, a in stf["diverged"]],
        "not_applicable": st["na"],
    }


# --------------------------------------------------------------------------- single index
#: the first-layer step each optimizer's preconditioner gives (input side), by rule.
def spike_kind(name: str) -> str | None:
    """Which single-index row stands for optimizer ``name`` (``None``: not covered)."""
    try:
        opt = E.build(name, 0.1)
    except Exception:  # noqa: BLE001
        return None
    from simulate import matrix_optimizers as smo

    if isinstance(opt, so.SGD):
        return "sgd"
    if isinstance(opt, so.LayerwisePreconditioned):
        return {"identity": "sgd", "Sigma_x": "kfac"}.get(opt.right)
    if isinstance(opt, smo.Shampoo):
        return "power:0.25"
    if isinstance(opt, smo.SOAP):
        return "power:0.5"
    if isinstance(opt, smo.Muon):
        return "muon"
    return None


SPIKE_NOTE = ("not covered: the one-step spike theory covers input-side preconditioners that are functions of "
              "the (sample or population) covariance, not entry-wise or full second-order steps")


def spike_rows(s: E.SpikeSettings, inst, res: ss.OneStepResult) -> dict[str, Any]:
    """The single-index rows (module docstring)."""
    t, b = inst.t, inst.beta
    kw = dict(n=s.n, teacher=E.sx._teacher(s.teacher), noise_std=s.noise_std)
    lam = float(s.lam_G)
    rows: dict[str, Any] = {}

    def row(label, x, theory, ref_, note="", **extra):
        m, se = _mean_se(x)
        return {"preconditioner": label, "measured": m, "se": se, "trials": int(np.size(x)), "theory": _f(theory),
                "theory_ref": ref_, "note": note, **extra}

    rows["sgd"] = row("SGD: X'y/n", res.sgd, ts.sgd_alignment(t, b, **kw), "4.2 (SGD alignment)")
    rows["kfac"] = row(f"KFAC: (Sigma_hat + {lam:g})^-1 X'y/n", res.kfac[:, 0],
                       float(np.ravel(ts.kfac_alignment(t, b, lam_G=[lam], **kw))[0]), "Theorem 3.9")
    for ip, p in enumerate(np.asarray(res.powers)):
        rows[f"power:{p:g}"] = row(f"same-batch power: (Sigma_hat + {lam:g})^-{p:g} X'y/n", res.power[:, ip, 0],
                                   None, None, "measurements only: same-batch powers with 0 < p < 1 are not derived")
        rows[f"population_power:{p:g}"] = row(
            f"population power: (Sigma + {lam:g})^-{p:g} X'y/n", res.population_power[:, ip, 0],
            ts.population_power_alignment(t, b, lam_G=lam, p=float(p), **kw),
            "population power closed form (docs/theory.md 4, Population power preconditioner)")
    gains = np.array([tm.spike_gain(v) for v in res.muon_raw_values])
    rows["muon"] = row("Muon: top right singular vector of NS5(-grad)", res.muon_alignment, None, None,
                       "measurements only: the orthogonalised update's top direction is a bulk direction",
                       spike_gain={"measured": _mean_se(res.muon_spike_gain)[0],
                                   "se": _mean_se(res.muon_spike_gain)[1],
                                   "theory": _mean_se(gains)[0], "theory_ref": "Newton-Schulz map (theory.muon)"},
                       raw_direction_residual_max=_f(np.max(res.muon_spike_residual)),
                       spike_on_top_fraction=float(np.mean(res.muon_spike_gain >= 1.0 - 1e-12)))
    return {"d": s.d, "n": s.n, "N": s.N, "lam_G": lam, "rows": rows}


# --------------------------------------------------------------------------- the table experiment
def _table_requires(s: E.ScorecardSettings) -> dict:
    out = {f"cell{i}": ref("scorecard.linrep", c) for i, c in enumerate(s.cells())}
    out["spike"] = ref("scorecard.single_index", s.spike)
    out["inst"] = ref("single_index.instance", s.spike.instance)
    return out


def build_table(s: E.ScorecardSettings, deps: dict) -> dict[str, Any]:
    """The scorecard dict from the cells' results (``deps``: the experiments of :func:`_table_requires`)."""
    cells = s.cells()
    spike = spike_rows(s.spike, deps["inst"], deps["spike"])
    opts = []
    for name in s.optimizers:
        mine = [(i, c) for i, c in enumerate(cells) if c.optimizer == name]
        results = [deps[f"cell{i}"] for i, _ in mine]
        first = results[0]
        kind = spike_kind(name)
        opts.append({"name": name, "label": first.label, "route": first.route, "theory_ref": first.theory_ref,
                     "theory_note": first.theory_note, "cells": [summarise(r) for r in results],
                     "single_index": ({"row": kind, **spike["rows"][kind]} if kind in spike["rows"] else
                                      {"row": None, "note": SPIKE_NOTE})})
    return {"grid": {"kappa_x": list(s.kappa_x), "kappa_F": list(s.kappa_F)}, "settings": as_dict(s),
            "lrs": list(s.linrep.lrs), "target": E.TARGET, "optimizers": opts, "single_index": spike,
            "rate_rule": {"linear_below": M.LINEAR_BELOW, "stop_below": M.STOP_BELOW, "window": s.linrep.window,
                          "min_steps": M.MIN_STEPS, "linear_spread": M.LINEAR_SPREAD,
                          "text": "rate = geometric-mean ratio d_end/d_mid over the later half of the last W steps "
                                  "at distance <= 1e-3; error = |difference from the earlier half| + round-off; a "
                                  "linear rate needs >= 20 steps and error <= 0.1 |1 - rate|"}}


@experiment("scorecard.table", settings=E.ScorecardSettings, trials=lambda s: 1, requires=_table_requires,
            combine=lambda s, values, deps: values[0], cost=0.1)
def table_trial(s: E.ScorecardSettings, ss_: np.random.SeedSequence, deps) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return build_table(s, deps)
