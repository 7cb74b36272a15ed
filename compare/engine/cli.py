"""The command line: ``python -m compare`` and the console script ``concurrence`` (the same program).

- ``list [--figures]``: one line per claim (id, paper reference, kind, statement), then the figures.
- ``check [IDS...]``: runs claims and prints a table.
- ``report [IDS...] [--out DIR] [--figures NAMES]``: writes ``DIR/index.html`` (default ``report/``),
  every figure as PNG and SVG, and ``results.json``.
- ``maps [IDS...] [--knob NAME=V1,V2,...]``: where each statement comparing methods holds over the
  reconstructed settings (:mod:`compare.engine.maps`; ``report --maps`` adds the same section).
- ``seeds [IDS...] --count K [--first S]``: runs the claims for master seeds S..S+K-1 (S = 0 by default) and prints, per claim, how many
  seeds gave each verdict next to the number of false failures its alpha predicts.

Options of the commands that run claims: ``--size fast|paper`` (the preset), ``--seed S`` (an
integer >= 0), ``--set NAME=VALUE`` (repeatable: override a setting of every selected claim and
figure that has it; an unknown name or a bad value lists the valid ones), ``--jobs J`` (worker
processes; -1: every core), ``--scheduler ADDR`` (a dask.distributed scheduler), ``--plugins
MODULES`` (comma-separated modules or ``.py`` files imported here and in every worker; default
``$CONCURRENCE_PLUGINS``), ``--cache-dir DIR`` / ``--no-cache`` (finished work is stored and reused;
default ``$CONCURRENCE_CACHE_DIR`` or ``.cache/compare``), ``--json PATH``, ``--strict``, ``--quiet``.

Exit status: 0 done; 1 when some verdict is ``fails`` (theory and simulation disagree beyond what the
test allows: the toolkit's own error signal) or a figure could not be made; with ``--strict`` also when
a statement of the paper is ``inconclusive`` or ``contradicted`` (findings about the paper, reported,
never tuned away); ``seeds`` exits 1 when some claim fails on more seeds than its alpha allows
(binomial tail probability below 1e-3). 2: bad input or environment, reported before any work.

Environment (read here only, never inside the library): ``CONCURRENCE_CACHE_DIR`` (default cache),
``CONCURRENCE_PLUGINS`` (default plugins), ``CONCURRENCE_CODE_VERSION`` (pins the cache's code version;
for tests that edit sources while running).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from compare.engine.settings import SIZES

DEFAULT_CACHE = os.path.join(".cache", "compare")
ENV_DIR = "CONCURRENCE_CACHE_DIR"
ENV_PLUGINS = "CONCURRENCE_PLUGINS"
ENV_VERSION = "CONCURRENCE_CODE_VERSION"
PROG = "concurrence"


class UsageError(Exception):
    """Bad input or environment: message printed, exit status 2."""


# --------------------------------------------------------------------------- argument types
def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (``--seed``); anything else is a usage error (exit 2)."""
    try:
        v = int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--count``)."""
    v = nonnegative_int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return v


def jobs_int(text: str) -> int:
    """argparse type: a nonzero integer (``--jobs``; -1: every core)."""
    try:
        v = int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a nonzero integer (1 = serial, -1 = every core); got {text!r}") from None
    if v == 0:
        raise argparse.ArgumentTypeError("must be a nonzero integer (1 = serial, -1 = every core); got 0")
    return v


# --------------------------------------------------------------------------- output helpers
def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def print_table(records: Sequence[dict], file=None) -> None:
    file = sys.stdout if file is None else file
    cols = ("id", "paper_ref", "kind", "test", "prediction", "measured", "stderr", "tolerance", "alpha", "detectable",
            "verdict", "seconds")
    rows = [[_fmt(r.get(c)) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)] if rows else [len(c) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=file)
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    from compare.engine.files import atomic_write
    from compare.engine.report import jsonable

    atomic_write(path, json.dumps(jsonable(obj), indent=2) + "\n")


def _probe_dir(d: str) -> str | None:
    if not os.path.isdir(d):
        return "no such directory"
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return e.strerror or str(e)
    return None


def check_json_path(path: str | None) -> None:
    """Validate ``--json PATH`` before any work: a file path in a writable directory."""
    if path is None:
        return
    if not path.strip():
        raise UsageError("--json must be a file path; got an empty string")
    if os.path.isdir(path):
        raise UsageError(f"--json must be a file path, not a directory; got {path!r}")
    d = os.path.dirname(os.path.abspath(path))
    why = _probe_dir(d)
    if why:
        raise UsageError(f"--json must be a file in a writable directory; got {path!r} ({d}: {why})")


def check_out_dir(path: str) -> Any:
    """Validate ``--out DIR`` before any work (created if missing)."""
    from compare.engine import report as rp

    if not path.strip():
        raise UsageError("--out must be a directory path; got an empty string")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out must be a writable directory; got {path!r} (an existing file)")
    try:
        return rp.check_writable(path)
    except ValueError as e:
        raise UsageError(str(e).replace("report: argument 'out'", "--out")) from None


# --------------------------------------------------------------------------- set-up shared by the commands
def load_plugins(args) -> tuple[str, ...]:
    from compare.engine import plugins as P

    raw = args.plugins if args.plugins is not None else os.environ.get(ENV_PLUGINS, "")
    specs = tuple(os.path.abspath(p) if p.endswith(".py") else p for p in P.split(raw))
    try:
        P.load(specs)
    except P.PluginError as e:
        raise UsageError(e.detail) from None
    except ValueError as e:  # a plugin whose registration is rejected (an optimizer without step, ...)
        raise UsageError(f"--plugins: {e}") from None
    return specs


def select_claims(ids: Sequence[str]) -> list[str]:
    from compare.engine.registry import claims

    valid = claims()
    unknown = [i for i in ids if i not in valid]
    if unknown:
        raise UsageError(f"unknown claim id(s) {', '.join(unknown)}; valid ids: {', '.join(valid)}")
    return list(dict.fromkeys(ids)) or list(valid)


def select_figures(spec: str | None, ids: Sequence[str]) -> list[str]:
    from compare.engine.registry import claims, figures

    valid = figures()
    if spec is None:
        opt_in = {n for sec in REPORT_SECTIONS.values() for n in sec.figures}
        valid = {n: f for n, f in valid.items() if n not in opt_in}  # drawn with their report flag only
        if not ids:
            return list(valid)
        chosen = set(ids)
        cl = claims()
        return [n for n, f in valid.items() if chosen & set(f.claims) or any(cl[i].figure == n for i in chosen)]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names in (["none"], []):
        return []
    if names == ["all"]:
        return list(valid)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UsageError(f"unknown figure(s) {', '.join(unknown)}; valid figures: "
                         f"{', '.join(valid) or '(none registered)'}, or 'all' / 'none'")
    return list(dict.fromkeys(names))


def build_jobs(args, claim_ids: Sequence[str], figure_names: Sequence[str], seeds: Sequence[int]) -> list:
    """Jobs at ``--size`` with every ``--set`` applied where the setting exists; a name no selected claim
    or figure has, or a bad value, is a usage error listing the valid names."""
    from compare.engine import registry as R
    from compare.engine import settings as S
    from compare.engine.runner import Job

    try:
        overrides = S.parse_assignments(args.set or [])
    except S.SettingsError as e:
        raise UsageError(e.detail) from None
    specs = [("claim", i, R.CLAIMS[i]) for i in claim_ids] + [("figure", n, R.FIGURES[n]) for n in figure_names]
    used: set[str] = set()
    valid: set[str] = set()
    built: list[tuple[str, str, Any]] = []
    for kind, name, spec in specs:
        base = spec.preset(args.size)
        valid.update(S.names(base))
        try:
            st, u = S.override(base, overrides, strict=False)
        except S.SettingsError as e:
            raise UsageError(f"--set: {e.detail} (in {kind} {name})") from None
        used |= u
        built.append((kind, name, st))
    unknown = [n for n in overrides if n not in used]
    if unknown:
        raise UsageError(f"--set: unknown setting(s) {', '.join(unknown)} for the selected claims and figures; "
                         f"valid settings: {', '.join(sorted(valid))}")
    return [Job(kind=k, name=n, settings=st, seed=s, size=args.size) for s in seeds for k, n, st in built]


def open_cache(args, plugin_specs: Sequence[str]):
    from compare.engine import plugins as P
    from compare.engine.cache import Cache, code_version

    if args.no_cache:
        return None
    root = args.cache_dir or os.environ.get(ENV_DIR) or DEFAULT_CACHE
    try:
        os.makedirs(root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UsageError(f"--cache-dir {root!r} is not a writable directory ({e.strerror or e}); "
                         f"give another one or --no-cache") from None
    version = os.environ.get(ENV_VERSION) or code_version(extra_files=P.files(plugin_specs))
    c = Cache(root, version=version)
    c.check_version()
    return c


def connect(addr: str | None):
    if addr is None:
        return None
    from compare.engine.cluster import SchedulerUnavailable
    from compare.engine.cluster import connect as _connect

    try:
        return _connect(addr)
    except (SchedulerUnavailable, ValueError) as e:
        raise UsageError(f"--scheduler: {e}") from None


def _progress(args) -> bool:
    if args.quiet:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _say(msg: str, args) -> None:
    if args.quiet:
        return
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def exit_status(records: Sequence[dict], *, strict: bool = False, figure_errors: bool = False) -> int:
    """1 when some verdict is ``fails`` (or a figure failed); with ``strict`` also ``inconclusive`` /
    ``contradicted``; else 0."""
    bad = {"fails", "inconclusive", "contradicted"} if strict else {"fails"}
    return 1 if figure_errors or any(r["verdict"] in bad for r in records) else 0


def _execute(args, jobs, plugin_specs, *, desc: str, on_result=None):
    from compare.engine.runner import run

    cache = open_cache(args, plugin_specs)
    client = connect(args.scheduler)
    try:
        res = run(jobs, workers=args.jobs, scheduler=client, cache=cache, plugins=plugin_specs,
                  progress=_progress(args), desc=desc, on_result=on_result)
    finally:
        if client is not None:
            client.close()
    return res, cache


# --------------------------------------------------------------------------- commands
def cmd_list(args) -> int:
    from compare.engine.registry import claims, figures

    load_plugins(args)
    for c in claims().values():
        tag = " [R]" if c.reconstructed else ""
        print(f"{c.id:6s} {c.paper_ref + ' / ' + c.theory_ref:34s} {c.kind:12s} {c.statement}{tag}")
    for f in (figures().values() if args.figures else ()):
        tag = " [R]" if f.reconstructed else ""
        backs = ", ".join(f.claims) or "-"
        print(f"{f.name:6s} {f.paper_ref:34s} {'figure':12s} {f.title_for(f.preset('fast'))} (backs {backs}){tag}")
    return 0


def cmd_check(args) -> int:
    plugin_specs = load_plugins(args)
    ids = select_claims(args.ids)
    check_json_path(args.json)
    jobs = build_jobs(args, ids, (), [args.seed])

    def done(job, rec, from_cache):
        _say(f"{job.name}: {rec['verdict']} ({rec['seconds']:.1f} s{', cached' if from_cache else ''})", args)

    res, _ = _execute(args, jobs, plugin_specs, desc="check", on_result=done)
    records = [res.results[j] for j in jobs]
    print_table(records)
    for r in records:
        if r.get("error"):
            print(f"{r['id']}: error: {r['error']}", file=sys.stderr)
    if args.json:
        write_json(args.json, records)
    return exit_status(records, strict=args.strict)


def cmd_report(args) -> int:
    from compare.engine import report as rp
    from compare.engine.registry import claims, figures

    t0 = time.perf_counter()
    plugin_specs = load_plugins(args)
    ids = select_claims(args.ids)
    fig_names = select_figures(args.figures, args.ids)
    out = check_out_dir(args.out)
    wanted = [sec for flag, sec in REPORT_SECTIONS.items() if getattr(args, flag.replace("-", "_"), False)]
    if not args.ids:  # a section's own claims come with its flag (e.g. the scorecard's C22-C25 with --scorecard)
        left_out = {c for sec in REPORT_SECTIONS.values() if sec not in wanted for c in sec.claims}
        ids = [i for i in ids if i not in left_out]
    own = [n for sec in wanted for n in sec.figures if n not in fig_names]
    jobs = build_jobs(args, ids, fig_names + own, [args.seed])
    maps_run = None
    if args.maps:  # the section "Where the paper's statements hold" (compare.engine.maps)
        from compare.engine import maps as M

        try:
            knobs = M.parse_knobs(args.knob)
        except M.MapError as e:
            raise UsageError(str(e)) from None
        maps_run = M.from_args(args, [i for i in ids if M.mappable(claims()[i])], knobs=knobs)

    def done(job, res, from_cache):
        what = res.get("verdict", "error" if res.get("error") else "made")
        _say(f"{job.name}: {what} ({res['seconds']:.1f} s{', cached' if from_cache else ''})", args)

    extra = [j for j in maps_run.all_jobs() if j not in set(jobs)] if maps_run else []
    mine = set(jobs)
    res, cache = _execute(args, jobs + extra, plugin_specs, desc="report",
                          on_result=lambda j, r, c: done(j, r, c) if j in mine else None)
    records = [res.results[j] for j in jobs if j.kind == "claim"]
    cl, specs = claims(), figures()
    figs = []
    for j in jobs:
        if j.kind != "figure" or j.name in own:
            continue
        s, r = specs[j.name], res.results[j]
        backs = list(s.claims) + [i for i in ids if cl[i].figure == s.name and i not in s.claims]
        figs.append({"name": s.name, "title": s.title_for(j.settings), "caption": s.caption_for(j.settings),
                     "paper_ref": s.paper_ref, "claims": backs, "reconstructed": s.reconstructed,
                     "png": r.get("png"), "svg": r.get("svg"), "seconds": r.get("seconds"), "error": r.get("error")})
    from compare.engine.cache import code_version

    prov = rp.provenance(size=args.size, seed=args.seed, wall_s=time.perf_counter() - t0, jobs=args.jobs,
                         scheduler=args.scheduler, code_version=cache.version if cache else code_version(),
                         cached=len(res.from_cache), computed=len(jobs) - len(res.from_cache))
    prov["settings"] = {r["id"]: r.get("settings") for r in records}
    prov["overrides"] = list(args.set or [])
    prov["plugins"] = list(plugin_specs)
    sections = [x for sec in wanted for x in sec.build(args, {j.name: res.results[j] for j in jobs if j.kind == "figure"},
                                                       [j for j in jobs if j.name in sec.figures], cache, plugin_specs)]
    try:
        if maps_run:
            sections.append(M.section(M.collect(maps_run, res.results), maps_run.settings))
        index = rp.write_report(records, figs, out_dir=out, prov=prov,
                                from_cache={j.name for j in res.from_cache}, sections=sections)
    except OSError as e:
        raise UsageError(f"could not write the report to {str(out)!r} ({e}); finished work is kept in the cache, "
                         f"a rerun reuses it") from None
    for r in records:
        if r.get("error"):
            print(f"{r['id']}: error: {r['error']}", file=sys.stderr)
    for f in figs:
        if f["error"]:
            print(f"{f['name']}: figure error: {f['error']}", file=sys.stderr)
    print(f"report: {rp.summary_line(records, figs)}; wrote {index} in {prov['wall_s']:.1f} s")
    return exit_status(records, strict=args.strict, figure_errors=any(f["error"] for f in figs))


def seeds_table(by_claim: dict[str, list[dict]]) -> list[dict]:
    """Per claim: verdict counts over the seeds, the expected number of false failures (seeds x alpha
    for agreement claims, where alpha bounds false failure) and the binomial tail probability of
    seeing at least the observed number of failures if the claim's theory is right."""
    from scipy import stats as st

    from compare.stats import VERDICTS

    out = []
    for cid, recs in by_claim.items():
        counts = {v: sum(1 for r in recs if r["verdict"] == v) for v in VERDICTS}
        alpha = recs[0].get("alpha")
        bounds = recs[0].get("alpha_bounds")
        k = len(recs)
        if bounds == "false failure" and alpha:
            expected = k * alpha
            p = float(st.binom.sf(counts["fails"] - 1, k, alpha)) if counts["fails"] else 1.0
        else:  # exact claims: a failure is never expected; ordering claims never "fail"
            expected = 0.0
            p = 0.0 if counts["fails"] else 1.0
        out.append({"id": cid, "kind": recs[0]["kind"], "seeds": k, "counts": counts, "alpha": alpha,
                    "alpha_bounds": bounds, "expected_false_failures": expected, "p_fails": p,
                    "seeds_by_verdict": {v: [r["seed"] for r in recs if r["verdict"] == v] for v in VERDICTS
                                         if counts[v]}})
    return out


def print_seeds_table(table: Sequence[dict], file=None) -> None:
    from compare.stats import VERDICTS

    file = sys.stdout if file is None else file
    head = ["id", "kind", "seeds", *VERDICTS, "expected false failures", "alpha bounds"]
    rows = [[r["id"], r["kind"], str(r["seeds"]), *(str(r["counts"][v]) for v in VERDICTS),
             f"{r['expected_false_failures']:.3g}", r["alpha_bounds"] or "- (exact)"] for r in table]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)] if rows else [len(h) for h in head]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)), file=file)
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)


def cmd_seeds(args) -> int:
    plugin_specs = load_plugins(args)
    ids = select_claims(args.ids)
    check_json_path(args.json)
    jobs = build_jobs(args, ids, (), list(range(args.first, args.first + args.count)))
    res, _ = _execute(args, jobs, plugin_specs, desc="seeds")
    by = {i: [res.results[j] for j in jobs if j.name == i] for i in ids}
    table = seeds_table(by)
    print_seeds_table(table)
    if args.json:
        write_json(args.json, table)
    bad = [r for r in table if r["p_fails"] < 1e-3]
    for r in bad:
        print(f"{r['id']}: {r['counts']['fails']} of {r['seeds']} seeds fail, more than alpha = {r['alpha']} allows "
              f"(binomial tail probability {r['p_fails']:.2g})", file=sys.stderr)
    return 1 if bad else 0


# --------------------------------------------------------------------------- further commands
#: modules whose import registers further commands with :func:`command` (imported when the parser is built).
COMMAND_MODULES: tuple[str, ...] = ("compare.engine.maps", "compare.scorecard.command")
_EXTRA: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[Any], int]]] = {}


def command(name: str, *, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Decorator registering ``run(args) -> exit status`` as subcommand ``name``; ``configure(parser)`` adds its
    own options to a parser that already has the run options (ids, --size, --set, --jobs, --scheduler,
    --plugins, --quiet, --cache-dir, --no-cache)."""

    def deco(fn: Callable[[Any], int]) -> Callable[[Any], int]:
        _EXTRA[name] = (help, configure, fn)
        return fn

    return deco


@dataclass(frozen=True)
class ReportSection:
    """A further section of ``report``, shown with ``--FLAG``: the figures it needs (drawn only with the flag),
    ``build(args, figure_results_by_name, figure_jobs, cache, plugin_specs) -> [report.Section]``, and the claims
    that belong to it (checked by a plain ``report`` only with the flag, or when named; ``check`` runs them as
    any other)."""

    flag: str
    help: str
    figures: tuple[str, ...]
    build: Callable[..., list]
    claims: tuple[str, ...] = ()


#: further report sections (flag -> :class:`ReportSection`), registered by :data:`COMMAND_MODULES`.
REPORT_SECTIONS: dict[str, ReportSection] = {}


def report_section(flag: str, *, help: str, figures: Sequence[str], build: Callable[..., list],
                   claims: Sequence[str] = ()) -> None:
    """Register a ``report --FLAG`` section (see :class:`ReportSection`)."""
    REPORT_SECTIONS[flag] = ReportSection(flag, help, tuple(figures), build, tuple(claims))


# --------------------------------------------------------------------------- parser
def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Theory-vs-simulation checks of arXiv 2502.01763.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugins", default=None, metavar="MODULES",
                        help="comma-separated modules or .py files to import first, here and in every worker "
                             f"(default ${ENV_PLUGINS})")
    run_opts = argparse.ArgumentParser(add_help=False)
    run_opts.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    run_opts.add_argument("--size", choices=SIZES, default="fast", help="the settings preset")
    run_opts.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                          help="override a setting (repeatable); a leaf name or a dotted path")
    run_opts.add_argument("--jobs", type=jobs_int, default=1, metavar="J",
                          help="parallel worker processes (1: serial, -1: every core)")
    run_opts.add_argument("--scheduler", default=None, metavar="ADDR",
                          help="run on this dask.distributed scheduler (e.g. tcp://host:8786)")
    run_opts.add_argument("--quiet", action="store_true", help="no progress output")
    run_opts.add_argument("--cache-dir", default=None, metavar="DIR",
                          help=f"store/reuse finished work here (default ${ENV_DIR} or {DEFAULT_CACHE})")
    run_opts.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    seeded = argparse.ArgumentParser(add_help=False)
    seeded.add_argument("--seed", type=nonnegative_int, default=0, help="master seed (an integer >= 0)")
    seeded.add_argument("--strict", action="store_true",
                        help="also exit 1 when a statement of the paper is inconclusive or contradicted")

    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", parents=[common], help="one line per claim (and figure, with --figures)")
    ls.add_argument("--figures", action="store_true", help="also list the registered figures")
    c = sub.add_parser("check", parents=[common, run_opts, seeded],
                       help="run claims and print a table; exit 1 iff some verdict is 'fails'")
    c.add_argument("--json", default=None, metavar="PATH")
    r = sub.add_parser("report", parents=[common, run_opts, seeded],
                       help="write DIR/index.html, figures (PNG, SVG) and results.json")
    r.add_argument("--out", default="report", metavar="DIR")
    r.add_argument("--figures", default=None, metavar="NAMES",
                   help="comma-separated figure names, 'all' or 'none' (default: all, or those backing IDS)")
    r.add_argument("--maps", action="store_true",
                   help="add the section 'Where the paper's statements hold' (the maps of the selected claims that "
                        "compare methods; see the maps command)")
    r.add_argument("--knob", action="append", default=[], metavar="NAME[=V1,V2,...]",
                   help="with --maps: map only the named knobs, with these values (as in maps)")
    for flag, sec in _command_modules().items():
        r.add_argument(f"--{flag}", action="store_true", help=sec.help)
    sd = sub.add_parser("seeds", parents=[common, run_opts],
                        help="run claims for master seeds S..S+K-1 (--first S, default 0) and count the verdicts")
    sd.add_argument("--count", type=positive_int, required=True, metavar="K", help="number of master seeds")
    sd.add_argument("--first", type=nonnegative_int, default=0, metavar="S",
                    help="the first master seed (seeds S..S+K-1; default 0): fresh seeds check a rule out of sample")
    sd.add_argument("--json", default=None, metavar="PATH", help="also write the table as JSON")
    for name, (help_text, configure, _) in _EXTRA.items():
        configure(sub.add_parser(name, parents=[common, run_opts], help=help_text))
    return p


def _command_modules() -> dict[str, ReportSection]:
    """Import :data:`COMMAND_MODULES` (registering their commands and report sections); the sections."""
    import importlib

    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    return REPORT_SECTIONS


COMMANDS = {"list": cmd_list, "check": cmd_check, "report": cmd_report, "seeds": cmd_seeds}


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        run = COMMANDS.get(args.command) or _EXTRA[args.command][2]
        return run(args)
    except UsageError as e:
        print(f"{prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is in the cache, a rerun resumes", file=sys.stderr)
        return 130


def console() -> None:
    """Entry point of the console script ``concurrence``."""
    sys.exit(main())
