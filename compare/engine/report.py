"""The report: one self-contained HTML page with every claim and figure, plus results.json.

:func:`write_report` takes the claim records (:func:`compare.engine.registry.record`) and rendered
figures (:func:`compare.engine.runner.render_figure`) and writes, under ``out_dir``::

    index.html          the page: figures inlined as base64 PNG, no network needed
    figures/NAME.png    every figure as PNG ...
    figures/NAME.svg    ... and as SVG
    results.json        {"claims": [records], "figures": [...], "summary": {...}, "provenance": {...}}

The page has a summary table of all claims (id, paper reference, docs/theory.md ID, kind, prediction,
measured, standard error, tolerance, alpha, verdict, seconds), one section per figure with the
claims it backs, the claims that back no figure, and a provenance footer (package versions, seed,
size, wall time, cores). Results tagged [R] in docs/theory.md (reconstructed, not read from the paper)
carry an [R] mark. Verdicts (:mod:`compare.stats`), each in its own colour: agreement claims
(theory vs simulation) ``holds`` / ``fails``, with alpha bounding false failures,

.. math::

    \\text{holds} \\iff |\\text{measured} - \\text{prediction}| \\le
    t_{1-\\alpha/2,\\nu}\\,\\widehat{\\mathrm{se}} + \\text{stated allowance};

statements of the paper that compare methods ``holds`` / ``inconclusive`` / ``contradicted``, with
alpha bounding false holds (one-sided: measured must exceed the margin by the tolerance). Each row
shows its test and direction.

Every file is written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from compare.engine.files import atomic_write
from compare.stats import VERDICTS  # holds, fails, inconclusive, contradicted
#: Keys of a record that change from run to run (timing only); everything else is reproducible.
TIMING_KEYS = ("seconds",)
_PACKAGES = ("numpy", "scipy", "sympy", "mpmath", "matplotlib", "joblib", "threadpoolctl", "tqdm", "jinja2",
             "dask", "distributed")


# --------------------------------------------------------------------------- helpers
def check_writable(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` and prove a file can be written there; raise ``ValueError`` otherwise.

    out_dir: the report directory.
    """
    p = Path(out_dir)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ValueError(
            f"report: argument 'out' must be a writable directory; got {str(out_dir)!r} ({e.strerror or e})."
        ) from None
    return p


def verdict_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Number of records per verdict (every verdict of :data:`VERDICTS` present, possibly 0)."""
    counts = {v: 0 for v in VERDICTS}
    for r in records:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return counts


def summary_line(records: Sequence[Mapping[str, Any]], figures: Sequence[Mapping[str, Any]] = ()) -> str:
    """One line: counts per verdict and figures made / failed."""
    c = verdict_counts(records)
    parts = [f"{n} {v}" for v, n in c.items()]
    bad = sum(1 for f in figures if f.get("error"))
    figs = f"; {len(figures) - bad} figure(s)" + (f", {bad} failed" if bad else "") if figures else ""
    return f"{len(records)} claim(s): " + ", ".join(parts) + figs


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays turned into Python numbers/lists and non-finite floats
    into the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON has no NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalar or array
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def strip_timing(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records without their timing keys: what must be identical across reruns and executors."""
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(root: Path) -> str | None:
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(*, size: str, seed: int, wall_s: float, jobs: int = 1, scheduler: str | None = None,
               code_version: str | None = None, cached: int = 0, computed: int = 0,
               command: Sequence[str] | None = None) -> dict[str, Any]:
    """The provenance footer: package versions, seed, size, wall time, machine cores, BLAS.

    size, seed: the run's settings. wall_s: wall time of the run in seconds.
    jobs, scheduler: how it ran. code_version: :func:`compare.engine.cache.code_version`.
    cached, computed: tasks reused from the cache / computed in this run.
    command: the command line (default ``sys.argv``).
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        from threadpoolctl import threadpool_info

        blas = sorted({f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                       if i.get("user_api") == "blas"})
    except Exception:
        blas = []
    root = Path(__file__).resolve().parent.parent
    return {
        "concurrence": _version("concurrence"),
        "code_version": code_version,
        "git_commit": _git_commit(root),
        "python": platform.python_version(),
        "packages": {p: v for p in _PACKAGES if (v := _version(p)) is not None},
        "blas": blas,
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "size": size,
        "seed": seed,
        "jobs": jobs,
        "scheduler": scheduler,
        "wall_s": round(wall_s, 2),
        "tasks_from_cache": cached,
        "tasks_computed": computed,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(command if command is not None else ["python -m compare", *sys.argv[1:]]),
    }


# --------------------------------------------------------------------------- formatting
def fmt_num(x: Any) -> str:
    """A number for the page: 4 significant digits, ``-`` for missing."""
    if x is None:
        return "\u2013"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        if 1e-3 <= abs(x) < 1e5:
            return f"{x:.4g}"
        m, e = f"{x:.3e}".split("e")
        return f"{m.rstrip('0').rstrip('.')}e{int(e)}"
    return str(x)


def _full(x: Any) -> str:
    return "" if x is None else repr(x)


# --------------------------------------------------------------------------- the page
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_num
    env.filters["full"] = _full
    env.filters["pct"] = lambda x: "\u2013" if x is None else f"{100 * x:.2g}%"
    env.filters["direction"] = lambda d: {"two-sided": "|m \u2212 p| \u2264 tol", None: ""}.get(d, d or "")
    env.filters["vclass"] = lambda v: {"holds": "holds", "fails": "fails", "inconclusive": "inconcl",
                                        "contradicted": "contra"}.get(v, "fails")
    return env


def render_html(records: Sequence[Mapping[str, Any]], figures: Sequence[Mapping[str, Any]],
                prov: Mapping[str, Any], *, from_cache: set[str] = frozenset(), title: str | None = None,
                sections: Sequence[Section] = ()) -> str:
    """The page as a string.

    records: claim records in display order. figures: dicts with ``name, title, caption,
    paper_ref, claims, reconstructed, png (bytes or None), seconds`` and optionally ``error``.
    prov: :func:`provenance`. from_cache: ids/names whose results were reused from the cache.
    """
    by_id = {r["id"]: r for r in records}
    figs = []
    backed: set[str] = set()
    for f in figures:
        ids = [i for i in dict.fromkeys([*f.get("claims", ()),
                                         *(r["id"] for r in records if r.get("figure") == f["name"])]) if i in by_id]
        backed.update(ids)
        figs.append({**f, "claim_records": [by_id[i] for i in ids],
                     "png_b64": base64.b64encode(f["png"]).decode() if f.get("png") else None})
    loose = [r for r in records if r["id"] not in backed]
    secs = [{"id": sec.id, "title": sec.title, "paragraphs": list(sec.paragraphs), "table": sec.table,
             "figures": [{**f, "png_b64": base64.b64encode(f["png"]).decode() if f.get("png") else None}
                         for f in sec.figures]} for sec in sections]
    tpl = _environment().get_template("report.html")
    return tpl.render(
        sections=secs,
        title=title or "concurrence: theory vs simulation",
        records=records, figures=figs, loose=loose, prov=prov, counts=verdict_counts(records),
        summary=summary_line(records, figures), from_cache=set(from_cache),
        paper="On The Concurrence of Layer-wise Preconditioning Methods and Provable Feature Learning",
        arxiv="2502.01763",
    )


@dataclass(frozen=True, kw_only=True)
class Section:
    """A further section of the page (e.g. "Where the paper's statements hold", the optimizer scorecard).

    id: anchor and file prefix. title: heading. paragraphs: plain-text paragraphs (escaped).
    figures: dicts with ``name, title, caption, png, svg`` (bytes), written to ``figures/`` and inlined.
    table: ``{"columns": [...], "rows": [[...], ...]}`` shown under the figures, or ``None``.
    json_key, json: what ``results.json`` gains under ``json_key``.
    """

    id: str
    title: str
    paragraphs: tuple[str, ...] = ()
    figures: tuple[Mapping[str, Any], ...] = ()
    table: Mapping[str, Any] | None = None
    json_key: str | None = None
    json: Any = None


def _write_figures(out: Path, figures: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    metas = []
    for f in figures:
        meta = {k: f.get(k) for k in ("name", "title", "caption", "paper_ref", "reconstructed", "seconds")}
        meta["claims"] = list(f.get("claims", ()))
        meta["error"] = f.get("error")
        for ext in ("png", "svg"):
            data = f.get(ext)
            if data:
                rel = f"figures/{f['name']}.{ext}"
                atomic_write(out / rel, data)
                meta[ext] = rel
                meta[ext + "_sha256"] = hashlib.sha256(data).hexdigest()
            else:
                meta[ext] = None
        metas.append(meta)
    return metas


def write_report(records: Sequence[Mapping[str, Any]], figures: Sequence[Mapping[str, Any]], *,
                 out_dir: str | os.PathLike, prov: Mapping[str, Any], from_cache: set[str] = frozenset(),
                 sections: Sequence[Section] = ()) -> Path:
    """Write ``index.html``, ``figures/NAME.{png,svg}`` and ``results.json`` under ``out_dir``.

    records: claim records (:func:`compare.engine.registry.record`), in display order.
    figures: rendered figures (see :func:`render_html`; ``svg`` bytes too).
    out_dir: the report directory (created). prov: :func:`provenance`.
    from_cache: ids/names whose results were reused from the cache (marked on the page).
    sections: further sections (:class:`Section`), shown after the claims, each with its own key in
        ``results.json``.
    Returns the path of ``index.html``.
    """
    out = check_writable(out_dir)
    fig_meta = _write_figures(out, figures)
    extra = {}
    for sec in sections:
        _write_figures(out, sec.figures)
        if sec.json_key:
            extra[sec.json_key] = jsonable(sec.json)
    results = {
        "paper": "arXiv 2502.01763",
        "summary": verdict_counts(records),
        "claims": jsonable(list(records)),
        "figures": fig_meta,
        **extra,
        "provenance": jsonable(dict(prov)),
    }
    atomic_write(out / "results.json", json.dumps(results, indent=2, allow_nan=False) + "\n")
    html = render_html(records, figures, prov, from_cache=from_cache, sections=sections)
    index = out / "index.html"
    atomic_write(index, html)
    return index
