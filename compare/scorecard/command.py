r"""``python -m compare scorecard`` (= ``concurrence scorecard``) and ``report --scorecard``.

``scorecard [IDS] [--optimizers NAMES] [--plugins MODULES] [--size fast|paper] [--seed S] [--set NAME=VALUE]
[--jobs J] [--scheduler ADDR] [--out DIR] [--json PATH] [--cache-dir DIR | --no-cache] [--strict] [--no-claims]
[--quiet]``

runs, as registered experiments of the engine (cached, shared, in blocks of trials, in parallel), every cell of
the scorecard (:mod:`compare.scorecard.experiments`: one optimizer at one :math:`(\kappa_x, \kappa_F)`), the
single-index runs, claims C22-C25 (``IDS``: some of them; ``--no-claims``: none) and the scorecard figure; then prints the table, and with ``--json PATH``
writes ``scorecard.json`` (per optimizer, per setting, the measurements and predictions; the claims' records
under ``"claims"``), with ``--out DIR`` a report page with the scorecard section (``DIR/index.html``,
``DIR/results.json``, ``DIR/scorecard.json``, the figure). ``--optimizers`` defaults to every registered
optimizer, so a plugin's optimizer joins with ``--plugins`` alone; its cells are the only new work (the other
cells are the cache's). ``--no-cache`` uses a temporary cache for this run only.

Exit status: 0; 1 when a claim fails (``--strict``: or is inconclusive or contradicted), the figure could not be
made, or an optimizer raised an exception or returned a wrong-shaped update (reported with its message;
divergence is a result, not an error); 2 for bad input (an unknown optimizer name is named).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import time
from typing import Any, Sequence

from compare.engine import cli

CLAIM_IDS = ("C22", "C23", "C24", "C25")
FIGURE = "scorecard"


def _configure(p) -> None:
    p.add_argument("--optimizers", default=None, metavar="NAMES",
                   help="comma-separated registered optimizers (default: every registered one, plugins included)")
    p.add_argument("--seed", type=cli.nonnegative_int, default=0, help="master seed (an integer >= 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write a report page with the scorecard here")
    p.add_argument("--json", default=None, metavar="PATH", help="write scorecard.json here")
    p.add_argument("--strict", action="store_true",
                   help="also exit 1 when a claim is inconclusive or contradicted")
    p.add_argument("--no-claims", action="store_true",
                   help="the table, figure and sections only (claims C22-C25 not run)")


def resolve_optimizers(spec: str | None) -> tuple[str, ...]:
    """``--optimizers`` as registered names (every registered one when not given); unknown names are a usage
    error naming them."""
    from compare.scorecard.experiments import default_optimizers
    from simulate import optimizers as so

    if spec is None:
        return default_optimizers()
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    if not names:
        raise cli.UsageError("--optimizers must name at least one optimizer")
    unknown = [n for n in names if n not in so.REGISTRY]
    if unknown:
        raise cli.UsageError(f"--optimizers: unknown optimizer(s) {', '.join(map(repr, unknown))}; registered: "
                             f"{', '.join(so.REGISTRY)} (a plugin's optimizers need --plugins)")
    return names


def select_claims(ids: Sequence[str], *, none: bool = False) -> tuple[str, ...]:
    """The scorecard's claims to run: ``ids`` (a subset of C22-C25; others are a usage error), all of them when
    none are given, or none with ``--no-claims``."""
    bad = [i for i in ids if i not in CLAIM_IDS]
    if bad:
        raise cli.UsageError(f"scorecard runs claims {', '.join(CLAIM_IDS)} only; got {', '.join(bad)} (other claims: "
                             f"the check command)")
    if none and ids:
        raise cli.UsageError(f"--no-claims and claim ids ({' '.join(ids)}) exclude each other")
    return () if none else (tuple(dict.fromkeys(ids)) or CLAIM_IDS)


def _jobs(args, names: Sequence[str], claim_ids: Sequence[str]) -> list:
    jobs = cli.build_jobs(args, claim_ids, [FIGURE], [args.seed])
    out = []
    for j in jobs:
        if j.kind == "figure":
            j = dataclasses.replace(j, settings=dataclasses.replace(j.settings, optimizers=tuple(names)))
        out.append(j)
    return out


def _cache(args, plugin_specs):
    """The cache of this run, and the temporary directory holding it with ``--no-cache`` (else ``None``).

    Its version is the project's code without the loaded plugins' files: every cell names its optimizer's
    source file in its settings (:func:`compare.scorecard.experiments.optimizer_source`), and the table its
    optimizers', so the built-in optimizers' cells stay valid when a plugin adds an optimizer (its own cells are
    the only new work) and a plugin's cells are recomputed when its file changes. (A plugin that replaces the
    scorecard's own experiments, rather than adding optimizers, needs ``--no-cache``.)"""
    if not args.no_cache:
        return cli.open_cache(args, ()), None
    from compare.engine.cache import Cache, code_version

    tmp = tempfile.TemporaryDirectory(prefix="concurrence-scorecard-")
    return Cache(tmp.name, version=code_version()), tmp


def compute_table(settings, *, seed: int, cache, plugin_specs, workers: int = 1, scheduler: Any = None) -> dict:
    """The scorecard dict (experiment ``scorecard.table``), from the cache when the run stored it."""
    from compare.engine.runner import compute

    return compute("scorecard.table", settings, seed=seed, cache=cache, plugins=plugin_specs, workers=workers,
                   scheduler=scheduler)


# --------------------------------------------------------------------------- presentation
def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return str(x)


def _rate_text(c: dict) -> str:
    r = c["rate"]
    if r.get("upper_bound") is not None:
        return f"<= {r['upper_bound']:.2g} (floor reached too fast)"
    if r["measured"] is None:
        return "- (" + (r["note"] or "not measured")[:48] + ")"
    err = r["measurement_error"]
    return f"{r['measured']:.6f}" + (f" +- {err:.1e}" if err is not None else "")


def _status_text(c: dict) -> str:
    if c["errors"]:
        return "error: " + c["errors"][0]["message"]
    parts = []
    if c["diverged"]:
        parts.append(f"diverged at {len(c['diverged'])} (trial, lr)")
    if c["not_applicable"]:
        parts.append("population n/a")
    return "ok" + (" (" + "; ".join(parts) + ")" if parts else "")


COLUMNS = ("optimizer", "kappa_x", "kappa_F", "rate (best lr)", "how", "theory", "iters to 1e-3", "fresh: lr",
           "fresh: distance", "fresh: transfer", "status")


def table_rows(table: dict) -> list[list[str]]:
    """The linear-representation rows of the scorecard as text."""
    rows = []
    for o in table["optimizers"]:
        for c in o["cells"]:
            th = c["theory"]
            it = c["iterations_to_1e-3"]
            how = ("Jacobian" if c["rate"]["method"] == "jacobian" else "run window")
            rows.append([o["name"], _num(c["kappa_x"]), _num(c["kappa_F"]), _rate_text(c), how,
                         (f"{th['rate']:.6f} ({th['ref']}" + (f", {th['trials']} of {len(th['per_trial'])} trials: "
                                                              f"measured {th['measured_same_trials']:.6f}"
                                                              if th["trials"] < sum(x is not None for x in
                                                                                    c["rate"]["per_trial"]) else "")
                          + ")" if th["rate"] is not None else
                          ("- (" + (th["ref"] or "measurements only") + ")")),
                         _num(it["mean"]) if it["mean"] is not None else f"> {it['within']}",
                         _num(c["fresh"]["lr"], 3), _num(c["fresh"]["final_distance"], 3),
                         _num(c["fresh"]["transfer_loss"], 3), _status_text(c)])
    return rows


SPIKE_COLUMNS = ("preconditioner", "cos(v, beta*) measured", "theory", "theory from", "optimizers")


def spike_rows(table: dict) -> list[list[str]]:
    """The single-index rows as text (with the optimizers each stands for)."""
    si = table["single_index"]
    users: dict[str, list[str]] = {}
    for o in table["optimizers"]:
        row = o["single_index"].get("row")
        if row:
            users.setdefault(row, []).append(o["name"])
    out = []
    for key, r in si["rows"].items():
        m = f"{r['measured']:.4f} +- {r['se']:.4f}" if r["se"] is not None else _num(r["measured"])
        out.append([r["preconditioner"], m, _num(r["theory"]), r["theory_ref"] or r["note"],
                    ", ".join(users.get(key, [])) or "-"])
        if key == "muon":
            g = r["spike_gain"]
            out.append(["  Muon: |O u_1| / s_1(O), u_1 = SGD spike direction", f"{g['measured']:.6f}",
                        f"{g['theory']:.6f}", g["theory_ref"], "muon"])
    return out


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[str]], file=None) -> None:
    file = sys.stdout if file is None else file
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=file)
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)), file=file)


def errors_of(table: dict) -> list[str]:
    """One line per optimizer that raised or returned a wrong-shaped update."""
    out = []
    for o in table["optimizers"]:
        msgs = dict.fromkeys(e["message"] for c in o["cells"] for e in c["errors"])
        for m in msgs:
            out.append(f"{o['name']}: {m}")
    return out


def sections(table: dict, records: Sequence[dict], fig: dict | None) -> list:
    """The report sections: the linear-representation scorecard (with the figure and the JSON key
    ``scorecard``) and the single-index rows."""
    from compare.engine.report import Section

    rule = table["rate_rule"]["text"]
    verdicts = "; ".join(f"{r['id']}: {r['verdict']}" for r in records) or "no claims run"
    figs = () if fig is None else (fig,)
    return [
        Section(id="scorecard", title="Optimizer scorecard: linear representation learning",
                paragraphs=(
                    "Per optimizer and (kappa_x, kappa_F): the local contraction rate of the subspace distance at the "
                    "best step size of the grid " + ", ".join(f"{x:.3g}" for x in table["lrs"]) + " (stateless "
                    "rules with the least-squares head: spectral radius of the Jacobian of one literal step; "
                    "others: " + rule + "), the theory where it applies (R-LR-1 at the rule's pair; R-LR-4 at "
                    "the limit factors for SGD, Shampoo, AdaGrad; otherwise measurements only, with the reason in "
                    "scorecard.json), iterations from a common start to distance 1e-3, and on fresh batches the "
                    "final distance and transfer loss at the best step size. Means over the problem draws.",
                    "Claims: " + verdicts + "."),
                figures=figs, table={"columns": list(COLUMNS), "rows": table_rows(table)}, json_key="scorecard",
                json=table),
        Section(id="scorecard-single-index", title="Optimizer scorecard: the one-step spike (single-index model)",
                paragraphs=(
                    f"d = {table['single_index']['d']}, n = {table['single_index']['n']}, N = "
                    f"{table['single_index']['N']}, lambda = {table['single_index']['lam_G']:g}: the alignment of "
                    f"the first-layer step's spike with beta* when the step is preconditioned as the optimizer "
                    f"would (mean +- s.e. over trials), next to its theory (4.2, Theorem 3.9, the population power "
                    f"closed form; same-batch powers 0 < p < 1 and Muon's top direction: measurements only).",),
                table={"columns": list(SPIKE_COLUMNS), "rows": spike_rows(table)}),
    ]


def _figure_dict(job, result: dict) -> dict:
    from compare.engine.registry import FIGURES

    spec = FIGURES[job.name]
    return {"name": spec.name, "title": spec.title_for(job.settings), "caption": spec.caption_for(job.settings),
            "paper_ref": spec.paper_ref, "claims": list(spec.claims), "reconstructed": spec.reconstructed,
            "png": result.get("png"), "svg": result.get("svg"), "seconds": result.get("seconds"),
            "error": result.get("error")}


def _report_build(args, figure_results: dict, figure_jobs: list, cache, plugin_specs) -> list:
    job = next(j for j in figure_jobs if j.name == FIGURE)
    table = compute_table(job.settings, seed=job.seed, cache=cache, plugin_specs=plugin_specs,
                          workers=args.jobs if cache is None else 1)
    return sections(table, [], _figure_dict(job, figure_results[FIGURE]))


cli.report_section("scorecard", help="add the optimizer scorecard (its figure, table, claims C22-C25 and "
                   "results.json key; without it a plain report checks C1-C21)", figures=(FIGURE,),
                   build=_report_build, claims=CLAIM_IDS)


# --------------------------------------------------------------------------- the command
@cli.command("scorecard", help="the optimizer scorecard: every optimizer's rates, theory and one-step spike",
             configure=_configure)
def cmd_scorecard(args) -> int:
    from compare.engine import report as rp
    from compare.engine.runner import run

    t0 = time.perf_counter()
    plugin_specs = cli.load_plugins(args)
    claim_ids = select_claims(args.ids, none=args.no_claims)
    names = resolve_optimizers(args.optimizers)
    cli.check_json_path(args.json)
    out = cli.check_out_dir(args.out) if args.out is not None else None
    jobs = _jobs(args, names, claim_ids)
    cache, tmp = _cache(args, plugin_specs)
    client = cli.connect(args.scheduler)

    def done(job, res, from_cache):
        what = res.get("verdict", "error" if res.get("error") else "made")
        cli._say(f"{job.name}: {what} ({res['seconds']:.1f} s{', cached' if from_cache else ''})", args)

    try:
        res = run(jobs, workers=args.jobs, scheduler=client, cache=cache, plugins=plugin_specs,
                  progress=cli._progress(args), desc="scorecard", on_result=done)
        fig_job = next(j for j in jobs if j.kind == "figure")
        try:
            table = compute_table(fig_job.settings, seed=args.seed, cache=cache, plugin_specs=plugin_specs)
        except Exception as e:  # noqa: BLE001 - a defect of the scorecard itself: reported, exit 1
            print(f"scorecard: error: the table could not be computed: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    finally:
        if client is not None:
            client.close()
        if tmp is not None:
            tmp.cleanup()
    records = [res.results[j] for j in jobs if j.kind == "claim"]
    fig = res.results[fig_job]
    wall = time.perf_counter() - t0
    table = {**table, "seed": args.seed, "size": args.size, "claims": records, "wall_s": round(wall, 2),
             "blocks": {"computed": res.blocks_computed, "cached": res.blocks_cached}}
    print_rows(COLUMNS, table_rows(table))
    print()
    print_rows(SPIKE_COLUMNS, spike_rows(table))
    print()
    cli.print_table(records)
    errors = errors_of(table)
    for line in errors:
        print(f"scorecard: error: {line}", file=sys.stderr)
    for r in records:
        if r.get("error"):
            print(f"{r['id']}: error: {r['error']}", file=sys.stderr)
    if fig.get("error"):
        print(f"{FIGURE}: figure error: {fig['error']}", file=sys.stderr)
    if args.json:
        cli.write_json(args.json, table)
    if out is not None:
        from compare.engine.cache import code_version

        prov = rp.provenance(size=args.size, seed=args.seed, wall_s=wall, jobs=args.jobs, scheduler=args.scheduler,
                             code_version=cache.version if cache is not None else code_version(),
                             cached=len(res.from_cache), computed=len(jobs) - len(res.from_cache))
        prov["plugins"] = list(plugin_specs)
        prov["optimizers"] = list(names)
        try:
            index = rp.write_report(records, [], out_dir=out, prov=prov, from_cache={j.name for j in res.from_cache},
                                    sections=sections(table, records, _figure_dict(fig_job, fig)))
            cli.write_json(os.path.join(str(out), "scorecard.json"), table)
        except OSError as e:
            raise cli.UsageError(f"could not write to {str(out)!r} ({e})") from None
        print(f"scorecard: wrote {index} and {os.path.join(str(out), 'scorecard.json')}")
    print(f"scorecard: {len(names)} optimizer(s) in {wall:.1f} s ({res.blocks_computed} blocks of trials computed, "
          f"{res.blocks_cached} from the cache)")
    status = cli.exit_status(records, strict=args.strict, figure_errors=bool(fig.get("error")))
    return 1 if errors else status
