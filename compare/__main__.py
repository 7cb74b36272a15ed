"""Command line: ``python -m compare {list,check,report,seeds}``.

- ``list [--figures]``: one line per claim (id, paper reference, kind, statement), then the figures.
- ``check [IDS...] [--size fast|paper] [--seed S] [--jobs J] [--scheduler ADDR] [--json PATH]
  [--strict]``: runs claims and prints a table.
- ``report [IDS...] [--size fast|paper] [--seed S] [--out DIR] [--jobs J] [--scheduler ADDR]
  [--figures NAMES] [--strict]``: writes ``DIR/index.html`` (default ``report/``), every figure as
  PNG and SVG, and ``results.json``.
- ``seeds [IDS...] --count K [--size fast|paper] [--jobs J]``: runs the claims for master seeds
  0..K-1 and prints, per claim, how many seeds gave each verdict next to the number of false
  failures the claim's alpha predicts.

Exit status: 0 done; 1 when some verdict is ``fails`` (theory and simulation disagree beyond what
the test allows: the toolkit's own error signal) or a figure could not be made; with ``--strict``
also when a statement of the paper is ``inconclusive`` or ``contradicted`` (scientific findings,
reported, never tuned away); ``seeds`` exits 1 when some claim fails on more seeds than its alpha
allows (binomial tail probability below 1e-3). 2: bad input or environment (unknown ids, a negative
or non-integer seed, an unwritable ``--out`` or ``--json``, an unreachable scheduler), reported
before any work.

Common options: ``--quiet`` (no progress), ``--cache-dir DIR`` / ``--no-cache`` (finished claims and
figures are stored there atomically and reused by a rerun with the same settings and code
version; ``report`` caches under ``$CONCURRENCE_CACHE_DIR`` or ``.cache/compare`` by default,
``check`` only under ``--cache-dir`` or ``$CONCURRENCE_CACHE_DIR``), ``--claims-module MOD`` (import more claim/figure modules or ``.py`` files).
Exit status 2: bad input or environment (unknown ids, unwritable output, unreachable scheduler).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Sequence

from compare.cache import ENV_DIR
from compare.registry import SIZES

DEFAULT_CACHE = os.path.join(".cache", "compare")


class UsageError(Exception):
    """Bad input or environment: message printed, exit status 2."""


def _fmt(x) -> str:
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


def write_json_atomic(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file and ``os.replace``."""
    from compare.engine.report import jsonable

    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600
        with os.fdopen(fd, "w") as fh:
            json.dump(jsonable(obj), fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- selection
def _modules(args) -> tuple[str, ...]:
    mods = tuple(os.path.abspath(m) if m.endswith(".py") else m for m in (args.claims_module or ()))
    from compare import runner

    try:
        runner.load_modules(mods)
    except ValueError as e:
        raise UsageError(str(e).replace("load_modules: argument 'extra'", "--claims-module")) from None
    return mods


def _select(ids: Sequence[str]) -> list[str]:
    from compare.runner import claims

    valid = claims()
    unknown = [i for i in ids if i not in valid]
    if unknown:
        raise UsageError(f"unknown claim id(s) {', '.join(unknown)}; valid ids: {', '.join(valid)}")
    return list(dict.fromkeys(ids)) or list(valid)


def _select_figures(spec: str | None, ids: Sequence[str]) -> list[str]:
    from compare.runner import claims, figure_specs

    valid = figure_specs()
    if spec is None:
        if not ids:
            return list(valid)
        chosen = set(ids)
        cl = claims()
        return [n for n, f in valid.items()
                if chosen & set(f.claims) or any(cl[i].figure == n for i in chosen)]
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


def _probe_dir(d: str) -> str | None:
    """Why a file cannot be created in directory ``d`` (``None`` if it can)."""
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


def _jobs(j: int) -> int:
    if j == 0:
        raise UsageError("--jobs must be a nonzero integer (1 = serial, -1 = every core); got 0")
    return j


def _cache(args, *, default: str | None):
    from compare.cache import Cache

    if args.no_cache:
        return None
    root = args.cache_dir or default
    if root is None:
        return None
    try:
        os.makedirs(root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UsageError(f"--cache-dir {root!r} is not a writable directory ({e.strerror or e}); "
                         f"give another one or --no-cache") from None
    c = Cache(root)
    c.check_version()
    return c


def _connect(addr: str | None):
    if addr is None:
        return None
    from simulate.trials import SchedulerUnavailable, connect

    try:
        return connect(addr)
    except (SchedulerUnavailable, ValueError) as e:
        raise UsageError(f"--scheduler: {e}") from None


def _progress(args) -> bool:
    from compare.cache import progress_enabled

    return not args.quiet and progress_enabled()


def _say(msg: str, args) -> None:
    if args.quiet:
        return
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


# --------------------------------------------------------------------------- commands
def cmd_list(args) -> int:
    from compare.runner import claims, figure_specs

    _modules(args)
    for c in claims().values():
        tag = " [R]" if c.reconstructed else ""
        print(f"{c.id:6s} {c.paper_ref + ' / ' + c.theory_ref:34s} {c.kind:12s} {c.statement}{tag}")
    for f in (figure_specs().values() if args.figures else ()):
        tag = " [R]" if f.reconstructed else ""
        backs = ", ".join(f.claims) or "-"
        print(f"{f.name:6s} {f.paper_ref:34s} {'figure':12s} {f.title} (backs {backs}){tag}")
    return 0


def cmd_check(args) -> int:
    from compare.runner import Task, run

    modules = _modules(args)
    ids = _select(args.ids)
    jobs = _jobs(args.jobs)
    check_json_path(args.json)
    cache = _cache(args, default=os.environ.get(ENV_DIR) or None)
    client = _connect(args.scheduler)

    def done(task, rec, from_cache):
        _say(f"{task.name}: {rec['verdict']} ({rec['seconds']:.1f} s{', cached' if from_cache else ''})", args)

    try:
        res = run([Task("claim", i, args.size, args.seed) for i in ids], jobs=jobs, scheduler=client, cache=cache,
                  modules=modules, progress=_progress(args), desc="check", on_result=done)
    finally:
        if client is not None:
            client.close()
    records = [res.results[Task("claim", i, args.size, args.seed)] for i in ids]
    print_table(records)
    for r in records:
        if r.get("error"):
            print(f"{r['id']}: error: {r['error']}", file=sys.stderr)
    if args.json:
        write_json_atomic(args.json, records)
    return exit_status(records, strict=args.strict)


def exit_status(records: Sequence[dict], *, strict: bool = False, figure_errors: bool = False) -> int:
    """1 when some verdict is ``fails`` (or a figure failed); with ``strict`` also ``inconclusive`` /
    ``contradicted``; else 0."""
    bad = {"fails", "inconclusive", "contradicted"} if strict else {"fails"}
    return 1 if figure_errors or any(r["verdict"] in bad for r in records) else 0


def cmd_report(args) -> int:
    from compare.engine import report as rp
    from compare.cache import code_version
    from compare.runner import Task, claims, figure_specs, run

    t0 = time.perf_counter()
    modules = _modules(args)
    ids = _select(args.ids)
    fig_names = _select_figures(args.figures, args.ids)
    jobs = _jobs(args.jobs)
    if not args.out.strip():
        raise UsageError("--out must be a directory path; got an empty string")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out must be a writable directory; got {args.out!r} (an existing file)")
    try:
        out = rp.check_writable(args.out)
    except ValueError as e:
        raise UsageError(str(e).replace("report: argument 'out'", "--out")) from None
    cache = _cache(args, default=os.environ.get(ENV_DIR) or DEFAULT_CACHE)
    client = _connect(args.scheduler)
    specs = figure_specs()
    # figures first: they are the longest pieces, so parallel workers finish together
    tasks = [Task("figure", n, args.size, args.seed) for n in fig_names] + \
            [Task("claim", i, args.size, args.seed) for i in ids]

    def done(task, res, from_cache):
        what = res.get("verdict", "error" if res.get("error") else "made")
        _say(f"{task.name}: {what} ({res['seconds']:.1f} s{', cached' if from_cache else ''})", args)

    try:
        res = run(tasks, jobs=jobs, scheduler=client, cache=cache, modules=modules, progress=_progress(args),
                  desc="report", on_result=done)
    finally:
        if client is not None:
            client.close()
    records = [res.results[t] for t in tasks if t.kind == "claim"]
    cl = claims()
    figs = []
    for t in tasks:
        if t.kind != "figure":
            continue
        s, r = specs[t.name], res.results[t]
        backs = [i for i in s.claims] + [i for i in ids if cl[i].figure == s.name and i not in s.claims]
        figs.append({"name": s.name, "title": s.title, "caption": s.caption, "paper_ref": s.paper_ref,
                     "claims": backs, "reconstructed": s.reconstructed, "png": r.get("png"), "svg": r.get("svg"),
                     "seconds": r.get("seconds"), "error": r.get("error")})
    prov = rp.provenance(size=args.size, seed=args.seed, wall_s=time.perf_counter() - t0, jobs=jobs,
                         scheduler=args.scheduler, code_version=cache.version if cache else code_version(),
                         cached=len(res.from_cache), computed=len(tasks) - len(res.from_cache))
    try:
        index = rp.write_report(records, figs, out_dir=out, prov=prov,
                                from_cache={t.name for t in res.from_cache})
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


def cmd_seeds(args) -> int:
    from compare.runner import Task, claims, run

    modules = _modules(args)
    ids = _select(args.ids)
    jobs = _jobs(args.jobs)
    check_json_path(args.json)
    cache = _cache(args, default=os.environ.get(ENV_DIR) or DEFAULT_CACHE)
    client = _connect(args.scheduler)
    tasks = [Task("claim", i, args.size, s) for s in range(args.count) for i in ids]
    try:
        res = run(tasks, jobs=jobs, scheduler=client, cache=cache, modules=modules, progress=_progress(args),
                  desc="seeds")
    finally:
        if client is not None:
            client.close()
    table = seeds_table({i: [res.results[Task("claim", i, args.size, s)] for s in range(args.count)] for i in ids})
    cl = claims()
    print_seeds_table(table, cl)
    if args.json:
        write_json_atomic(args.json, table)
    worst = min((row["p_fails"] for row in table), default=1.0)
    for row in table:
        if row["p_fails"] < 1e-3:
            print(f"{row['id']}: {row['counts']['fails']} of {row['seeds']} seeds fail, more than alpha = "
                  f"{row['alpha']} allows (binomial tail probability {row['p_fails']:.2g})", file=sys.stderr)
    return 1 if worst < 1e-3 else 0


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


def print_seeds_table(table: Sequence[dict], cl: dict, file=None) -> None:
    file = sys.stdout if file is None else file
    from compare.stats import VERDICTS

    head = ["id", "kind", "seeds", *VERDICTS, "expected false failures", "alpha bounds"]
    rows = [[r["id"], r["kind"], str(r["seeds"]), *(str(r["counts"][v]) for v in VERDICTS),
             f"{r['expected_false_failures']:.3g}", r["alpha_bounds"] or "- (exact)"] for r in table]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)] if rows else [len(h) for h in head]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)), file=file)
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m compare", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--claims-module", action="append", default=[], metavar="MOD",
                        help="also import this module (or .py file) of claims/figures; repeatable")
    run_opts = argparse.ArgumentParser(add_help=False)
    run_opts.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    run_opts.add_argument("--size", choices=SIZES, default="fast")
    run_opts.add_argument("--jobs", type=int, default=1, metavar="J",
                          help="parallel worker processes (1: serial, -1: every core)")
    run_opts.add_argument("--scheduler", default=None, metavar="ADDR",
                          help="run on this dask.distributed scheduler (e.g. tcp://host:8786)")
    run_opts.add_argument("--quiet", action="store_true", help="no progress output")
    run_opts.add_argument("--cache-dir", default=None, metavar="DIR", help="store/reuse finished work here")
    run_opts.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")

    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", parents=[common], help="one line per claim (and figure, with --figures)")
    ls.add_argument("--figures", action="store_true", help="also list the registered figures")
    seeded = argparse.ArgumentParser(add_help=False)
    seeded.add_argument("--seed", type=nonnegative_int, default=0, help="master seed (an integer >= 0)")
    seeded.add_argument("--strict", action="store_true",
                        help="also exit 1 when a statement of the paper is inconclusive or contradicted")
    c = sub.add_parser("check", parents=[common, run_opts, seeded],
                       help="run claims and print a table; exit 1 iff some verdict is 'fails'")
    c.add_argument("--json", default=None, metavar="PATH")
    r = sub.add_parser("report", parents=[common, run_opts, seeded],
                       help="write DIR/index.html, figures (PNG, SVG) and results.json")
    r.add_argument("--out", default="report", metavar="DIR")
    r.add_argument("--figures", default=None, metavar="NAMES",
                   help="comma-separated figure names, 'all' or 'none' (default: all, or those backing IDS)")
    sd = sub.add_parser("seeds", parents=[common, run_opts],
                        help="run claims for master seeds 0..K-1 and count the verdicts")
    sd.add_argument("--count", type=positive_int, required=True, metavar="K", help="number of master seeds")
    sd.add_argument("--json", default=None, metavar="PATH", help="also write the table as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"list": cmd_list, "check": cmd_check, "report": cmd_report, "seeds": cmd_seeds}[args.command](args)
    except UsageError as e:
        print(f"python -m compare {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m compare: interrupted; finished work is in the cache, a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
