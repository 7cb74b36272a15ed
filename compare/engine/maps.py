r"""Where the paper's statements hold: each statement that compares methods, mapped over the reconstructed knobs.

The paper does not give its hyper-parameters, so the settings of its experiments are reconstructed [R]
(docs/theory.md section 5). A verdict at one reconstructed setting cannot say whether the statement or the
reconstruction is at stake; a *map* runs the claim at every cell of a grid of settings and shows the verdict
of each cell. For a claim :math:`c` with default setting :math:`s_0` and knobs :math:`k` with value lists
:math:`V_k`, the cells are

.. math::

    \mathcal C(c) = \{s_0\} \cup \bigcup_k \{s_0[k \mapsto v] : v \in V_k\}
    \cup \{s_0[a \mapsto u, b \mapsto w] : u \in V_a, w \in V_b\}\quad (a, b) = (\text{noise\_std}, \kappa_x),

deduplicated (the default is one cell however many strips and grids contain it). The knobs
(:data:`KNOBS`): label noise (0, 1e-3, 1e-2, 1e-1), :math:`\kappa_x` (10, 100, 1000), :math:`\kappa_F`
(1, 10, 100), the input law (rademacher, uniform, gaussian) and the iterations (200 and 1000: the fast and
paper defaults). A knob applies to a claim when its settings have the leaf of that name with one value;
a leaf that takes several values is *fixed by design* (the claim compares settings that differ in it:
C20's three data settings fix the law and :math:`\kappa_x`) and is skipped. A claim's own default value
of a knob is always in its strip.

Each cell is the claim run through the settings mechanism (:func:`compare.engine.runner.claim_job` with
the cell's overrides); all cells of all mapped claims go to one :func:`compare.engine.runner.run`, so an
experiment several statements read (Figure 1's sweep and runs: C14-C17, C19) is computed once per cell and
cached. A cell reports its verdict and the statistic of the row that decided it
(:func:`compare.stats.deciding_row`): the paired t, the sign test's count of trials above the margin
``k/n``, or for a deterministic row its measured value; with the claim's alpha (ordering claims: alpha
bounds a false "holds"; agreement claims such as C18: a false "fails"). Each cell is its own test at that
alpha: over :math:`N` cells of a claim that holds everywhere the expected number of false "fails"
(agreement) is at most :math:`N\alpha`, and of false "holds" (ordering) at most :math:`\alpha` per cell
where the statement is false.

Mapped claims (:func:`mappable`): every claim of kind ``ordering`` (a statement of the paper comparing
methods) that has at least one knob, and C18 (:data:`AGREEMENT_MAPS`, R-LR-1's stability limit on the
step-size sweep, an agreement claim). Further per-claim content (overlays where the theory predicts the
boundary, the statistic's wording) is registered by model packages with :func:`overlay` and
:data:`STATISTIC_TEXT` (:mod:`compare.linrep.maps`).

Command line: ``python -m compare maps [IDS] [--size fast|paper] [--seed S] [--jobs J]
[--knob NAME[=V1,V2,...]] [--json PATH] [--out DIR]``; with ``--knob`` only the named knobs are mapped
(``NAME`` alone: its default values). ``report --maps`` (also with ``--knob``) adds the section to the report;
``maps --out DIR`` writes a page with the section alone (its claim table: the mapped claims at their default
setting). Timing (fast size, seed 0, the 113 cells of C13-C20, ``--jobs 2``, ``benchmarks/maps_speed.py``):
cold cache 750 s wall on the shared 2-core machine under a load of 3.5-5.6 from other jobs (455 s of CPU,
i.e. about 230 s of two idle cores), warm cache 2.3 s (9.6 s with ``--out``, which draws 10 figures).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

# --------------------------------------------------------------------------- knobs


@dataclass(frozen=True, kw_only=True)
class Knob:
    """A reconstructed setting a map varies.

    name: the leaf setting name (``--set`` / :func:`compare.engine.settings.override`).
    label: axis label. phrase: how a sentence names it ("the label noise"). values: default grid.
    kind: ``"float"``, ``"int"`` or ``"str"`` (how ``--knob`` values are read). numeric: ordered values
    (sentences may say "at least"). minimum, what: the smallest valid value and what the knob is (checked
    here; the settings classes check the rest of their range when the cells are built).
    """

    name: str
    label: str
    phrase: str
    values: tuple
    kind: str = "float"
    minimum: float | None = None
    what: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind != "str"

    def convert(self, text: str) -> Any:
        """One ``--knob`` value; ``ValueError`` when it is not of the knob's type."""
        t = text.strip()
        if self.kind == "str":
            if not t:
                raise ValueError("an empty value")
            return t
        try:
            v = int(t, 10) if self.kind == "int" else float(t)
        except ValueError:
            raise ValueError(f"{t!r} is not {'an integer' if self.kind == 'int' else 'a number'}") from None
        if self.kind == "float" and not math.isfinite(v):
            raise ValueError(f"{t!r} is not a finite number")
        if self.minimum is not None and v < self.minimum:
            raise ValueError(f"must be {self.what} >= {self.minimum:g}; got {t}")
        return v

    def fmt(self, v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)


#: the reconstructed knobs, in display order.
KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob(name="noise_std", label="label noise", phrase="the label noise", values=(0.0, 1e-3, 1e-2, 1e-1),
         minimum=0.0, what="a standard deviation"),
    Knob(name="kappa_x", label="kappa_x", phrase="kappa_x", values=(10.0, 100.0, 1000.0), minimum=1.0,
         what="a condition number"),
    Knob(name="kappa_F", label="kappa_F", phrase="kappa_F", values=(1.0, 10.0, 100.0), minimum=1.0,
         what="a condition number"),
    Knob(name="law", label="input law", phrase="the input law", values=("rademacher", "uniform", "gaussian"),
         kind="str"),
    Knob(name="steps", label="iterations", phrase="the number of iterations", values=(200, 1000), kind="int",
         minimum=1, what="a number of iterations"),
)}
#: 2-D grids (x knob, y knob) mapped besides the one-at-a-time strips.
GRIDS: tuple[tuple[str, str], ...] = (("noise_std", "kappa_x"),)
#: agreement claims that are mapped too (not orderings of methods, but statements of the paper about them).
AGREEMENT_MAPS: tuple[str, ...] = ("C18",)
#: ordering claims that compare no methods (a module registering one adds it with the reason): not mapped.
NOT_MAPPED: dict[str, str] = {}
#: cell colours: holds green, inconclusive amber, contradicted orange, fails red.
COLORS: dict[str, str] = {"holds": "#2da44e", "inconclusive": "#f2c12e", "contradicted": "#f0883e",
                          "fails": "#cf222e"}
#: per-claim wording of a deciding row's statistic in a cell: ``fn(row) -> str`` (default :func:`statistic_of`).
STATISTIC_TEXT: dict[str, Callable[[Mapping[str, Any]], str]] = {}
#: per-claim sentence added to the map's caption (what the cell statistic means for that claim).
CAPTION_NOTES: dict[str, str] = {}
#: per-claim overlays: ``fn(claim_map) -> Overlay`` (figures and sentences where the theory predicts the boundary).
OVERLAYS: dict[str, Callable[["ClaimMap"], "Overlay"]] = {}


class MapError(ValueError):
    """Bad maps input (an unknown knob, a value out of range, a claim that is not mapped)."""


def overlay(claim_id: str) -> Callable:
    """Decorator registering ``fn(claim_map) -> Overlay`` for claim ``claim_id``."""

    def deco(fn: Callable) -> Callable:
        OVERLAYS[claim_id] = fn
        return fn

    return deco


@dataclass(frozen=True, kw_only=True)
class Overlay:
    """What an overlay adds to a claim's map: figures (dicts with name, title, caption, png, svg) and
    sentences for the section."""

    figures: tuple[Mapping[str, Any], ...] = ()
    sentences: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- which claims, which knobs
def mappable(spec: Any) -> bool:
    """Whether a claim spec is a statement a map covers (kind ``ordering`` and not in :data:`NOT_MAPPED`, or listed
    in :data:`AGREEMENT_MAPS`)."""
    return (spec.kind == "ordering" and spec.id not in NOT_MAPPED) or spec.id in AGREEMENT_MAPS


def parse_knobs(items: Sequence[str]) -> dict[str, tuple] | None:
    """``["noise_std=0,0.1", "law"]`` -> ``{"noise_std": (0.0, 0.1), "law": KNOBS["law"].values}``;
    ``None`` for no items (every knob, default values). Raises :class:`MapError` naming the bad item."""
    if not items:
        return None
    out: dict[str, tuple] = {}
    for it in items:
        name, sep, vals = it.partition("=")
        name = name.strip()
        if name not in KNOBS:
            raise MapError(f"--knob: unknown knob {name!r} (in {it!r}); valid knobs: {', '.join(KNOBS)}")
        knob = KNOBS[name]
        if not sep:
            out[name] = knob.values
            continue
        parts = [p for p in vals.split(",") if p.strip()]
        if not parts:
            raise MapError(f"--knob {name}: give comma-separated values (e.g. {name}="
                           f"{','.join(knob.fmt(v) for v in knob.values)}) or the name alone; got {it!r}")
        try:
            values = tuple(knob.convert(p) for p in parts)
        except ValueError as e:
            raise MapError(f"--knob {name}: {e} (in {it!r})") from None
        out[name] = tuple(dict.fromkeys(values))
    return out


def _leaf_values(settings: Any, name: str) -> list:
    from compare.engine import settings as S

    out: list = []
    for p, v, _ in S.leaves(settings):
        if p.rsplit(".", 1)[-1] == name:  # a tuple of values: the claim compares them itself (fixed by design)
            out.extend(v if isinstance(v, tuple) else (v,))
    return out


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One setting of a map.

    coords: ``(knob, value)`` for every knob that applies (the full setting). overrides: the values that
    differ from the claim's default (what the job is run with). panels: the strips (knob names) and grids
    (``"a x b"``) that show it. default: the claim's default setting.
    """

    coords: tuple[tuple[str, Any], ...]
    overrides: tuple[tuple[str, Any], ...]
    panels: tuple[str, ...]
    default: bool


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A claim's map before it is run.

    claim: id. knobs: the knobs that apply, in order. skipped: ``{knob: reason}``. defaults: ``{knob:
    value}`` of the claim's settings. strips: ``{knob: values}`` (each includes the default).
    grids: ``((x knob, y knob), ...)``. cells: every setting, deduplicated, the default first.
    """

    claim: str
    knobs: tuple[str, ...]
    skipped: Mapping[str, str]
    defaults: Mapping[str, Any]
    strips: Mapping[str, tuple]
    grids: tuple[tuple[str, str], ...]
    cells: tuple[Cell, ...]


def _sorted_values(knob: Knob, values: Sequence[Any]) -> tuple:
    vals = tuple(dict.fromkeys(values))
    return tuple(sorted(vals)) if knob.numeric else vals


def grid_name(a: str, b: str) -> str:
    return f"{a} x {b}"


def plan(claim_id: str, settings: Any, *, knobs: Mapping[str, tuple] | None = None,
         grids: Sequence[tuple[str, str]] = GRIDS) -> Plan:
    """The cells of claim ``claim_id``'s map around ``settings`` (its preset with any ``--set`` applied).

    knobs: ``{knob: values}`` to map (default: every knob of :data:`KNOBS` with its default values).
    grids: the 2-D grids, mapped when both of their knobs are mapped and apply.
    """
    chosen = {k: KNOBS[k].values for k in KNOBS} if knobs is None else dict(knobs)
    applies: list[str] = []
    skipped: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    for name in KNOBS:
        if name not in chosen:
            continue
        vals = list(dict.fromkeys(_leaf_values(settings, name)))
        if not vals:
            skipped[name] = "its settings have no such setting"
        elif len(vals) > 1:
            skipped[name] = ("fixed by design: it compares settings with " + KNOBS[name].phrase + " "
                             + ", ".join(KNOBS[name].fmt(v) for v in vals))
        else:
            applies.append(name)
            defaults[name] = vals[0]
    strips = {k: _sorted_values(KNOBS[k], (*chosen[k], defaults[k])) for k in applies}
    use_grids = tuple((a, b) for a, b in grids if a in strips and b in strips)
    base = tuple((k, defaults[k]) for k in applies)
    cells: dict[tuple, list[str]] = {base: []}

    def add(coords: dict[str, Any], panel: str) -> None:
        key = tuple((k, coords[k]) for k in applies)
        cells.setdefault(key, [])
        if panel not in cells[key]:
            cells[key].append(panel)

    for k in applies:
        for v in strips[k]:
            add({**defaults, k: v}, k)
    for a, b in use_grids:
        for u in strips[a]:
            for w in strips[b]:
                add({**defaults, a: u, b: w}, grid_name(a, b))
    out = tuple(Cell(coords=key, overrides=tuple((k, v) for k, v in key if v != defaults[k]),
                     panels=tuple(panels), default=key == base) for key, panels in cells.items())
    return Plan(claim=claim_id, knobs=tuple(applies), skipped=skipped, defaults=defaults, strips=strips,
                grids=use_grids, cells=out)


# --------------------------------------------------------------------------- one cell's outcome
def statistic_of(row: Mapping[str, Any]) -> tuple[float | None, str]:
    """The statistic of a deciding row and its text in a cell: t (paired t test), ``k/n`` (sign test: trials
    above the margin of n non-tied), or a deterministic row's measured value."""
    stat = row.get("statistic")
    test = str(row.get("test") or "")
    if "sign test" in test and stat is not None:
        return float(stat), f"{int(stat)}/{int(row.get('n', 0))}"
    if stat is not None and row.get("stderr") is not None:
        s = float(stat)
        return s, (f"t {s:.1f}" if math.isfinite(s) else f"t {'+' if s > 0 else '-'}inf")
    m = row.get("measured")
    return (None, "-") if m is None else (float(m), f"{float(m):g}")


def cell_outcome(record: Mapping[str, Any]) -> dict[str, Any]:
    """Verdict, statistic (value and cell text), test, alpha and what alpha bounds, of one cell's claim record."""
    from compare import stats

    rows = record.get("rows") or []
    if record.get("error") or not rows:
        return {"verdict": record.get("verdict", "fails"), "statistic": None, "text": "error",
                "test": record.get("test"), "alpha": record.get("alpha"), "alpha_bounds": record.get("alpha_bounds"),
                "error": record.get("error")}
    row = stats.deciding_row(rows, record["verdict"])
    fn = STATISTIC_TEXT.get(record["id"])
    value, text = statistic_of(row)
    if fn is not None:
        text = fn(row)
    return {"verdict": record["verdict"], "statistic": value, "text": text, "test": row.get("test"),
            "critical": row.get("critical"), "alpha": record.get("alpha"), "alpha_bounds": record.get("alpha_bounds"),
            "component": row.get("statement")}


@dataclass(frozen=True, kw_only=True)
class ClaimMap:
    """A claim's map after its run: the plan, one outcome per cell (:func:`cell_outcome`), the records, and
    the claim's settings at its default cell."""

    plan: Plan
    outcomes: tuple[Mapping[str, Any], ...]
    records: tuple[Mapping[str, Any], ...]
    size: str
    seed: int
    statement: str = ""
    kind: str = "ordering"
    settings: Any = None

    @property
    def claim(self) -> str:
        return self.plan.claim

    def cells(self) -> list[tuple[Cell, Mapping[str, Any]]]:
        return list(zip(self.plan.cells, self.outcomes))

    def entries(self) -> list[dict[str, Any]]:
        """``results.json`` ``maps[claim]``: one entry per cell."""
        out = []
        for cell, o in self.cells():
            out.append({"settings": dict(cell.overrides), "verdict": o["verdict"], "statistic": o["statistic"],
                        "alpha": o["alpha"], "alpha_bounds": o["alpha_bounds"], "statistic_text": o["text"],
                        "test": o["test"], "component": o.get("component"), "coordinates": dict(cell.coords),
                        "default": cell.default,
                        "panels": list(cell.panels), **({"error": o["error"]} if o.get("error") else {})})
        return out


# --------------------------------------------------------------------------- sentences
def _verdicts(kind: str) -> tuple[str, ...]:
    return ("holds", "inconclusive", "contradicted") if kind == "ordering" else ("holds", "fails")


def _join(parts: Sequence[str], word: str = "or") -> str:
    parts = list(parts)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def _value_set(knob: Knob, chosen: Sequence[Any], all_values: Sequence[Any]) -> str:
    """"at least 0.01", "at most 10", "100", "uniform or gaussian"."""
    full = _sorted_values(knob, all_values)
    sel = [v for v in full if v in set(chosen)]
    if len(sel) == 1:
        return knob.fmt(sel[0])
    if knob.numeric and len(full) >= 3:
        if sel == list(full[-len(sel):]):
            return "at least " + knob.fmt(sel[0])
        if sel == list(full[:len(sel)]):
            return "at most " + knob.fmt(sel[-1])
    return _join([knob.fmt(v) for v in sel])


def describe(cells: Sequence[Mapping[str, Any]], target: set[int], *, knobs: Sequence[str],
             default: int | None = None) -> str:
    """A phrase saying where the cells with index in ``target`` lie among ``cells`` (their coordinates,
    ``{knob: value}``), generated from the data: "where the label noise is at least 0.1", "where kappa_F is
    100 or at (label noise 0.1, kappa_x 1000)", "everywhere", "nowhere".

    Greedy cover, largest first: a condition "KNOB is one of V" is used only when every cell with such a value
    is in the target (so the phrase is true of every cell it names); cells no such condition covers are
    named one by one by their values that differ from the default ("at the default setting" for it).
    """
    n = len(cells)
    if not target:
        return "nowhere"
    if len(target) == n:
        return "everywhere"
    values = {k: [c[k] for c in cells] for k in knobs}
    left = set(target)
    conds: list[tuple[int, str]] = []  # (order, phrase)

    def matches(k: str, vs: Sequence[Any]) -> set[int]:
        return {i for i in range(n) if cells[i][k] in vs}

    while left:
        best: tuple[int, str, set[int]] | None = None
        for k in knobs:
            pure = [v for v in dict.fromkeys(values[k]) if matches(k, (v,)) <= target]
            got = matches(k, pure)
            if pure and got & left and (best is None or len(got & left) > len(best[2] & left)):
                best = (knobs.index(k), f"where {KNOBS[k].phrase} is {_value_set(KNOBS[k], pure, values[k])}", got)
        if best is None:
            break
        conds.append((best[0], best[1]))
        left -= best[2]
    singles = []
    for i in sorted(left):
        if i == default:
            singles.append("at the default setting")
            continue
        diff = [f"{KNOBS[k].label} {KNOBS[k].fmt(cells[i][k])}" for k in knobs
                if default is None or cells[i][k] != cells[default][k]]
        singles.append("at (" + ", ".join(diff) + ")")
    return _join([c for _, c in sorted(conds)] + singles)


def sentence(cmap: ClaimMap) -> str:
    """One plain sentence: where claim ``cmap.claim`` holds and where it does not, from the cells' verdicts."""
    pl = cmap.plan
    cells = [dict(c.coords) for c in pl.cells]
    verdicts = [o["verdict"] for o in cmap.outcomes]
    n = len(cells)
    default = next((i for i, c in enumerate(pl.cells) if c.default), None)
    holds = sum(v == "holds" for v in verdicts)
    where = "settings" if n != 1 else "setting"
    head = (f"{cmap.claim} holds at all {n} {where}" if holds == n and n > 1 else
            f"{cmap.claim} holds at {holds} of {n} {where}")
    others = [v for v in _verdicts(cmap.kind) if v != "holds"]
    extra = sorted({v for v in verdicts if v not in _verdicts(cmap.kind)})  # e.g. an ordering claim that raised
    parts = []
    order = [*others, *extra]
    order.sort(key=lambda v: v not in verdicts)  # where it is X first, then "Y nowhere"
    for v in order:
        idx = {i for i, x in enumerate(verdicts) if x == v}
        parts.append(f"{v} {describe(cells, idx, knobs=pl.knobs, default=default)}")
    if holds == n:
        tail = f" ({_join(others, 'and')} nowhere)" if others else ""
        text = head + tail
    else:
        text = head + "; it " + ("" if parts[0].startswith("fails") else "is ") + "; ".join(parts)
    if default is not None and n > 1:
        dv = verdicts[default]
        text += f". At the default setting it {'holds' if dv == 'holds' else 'is ' + dv}"
    return text + "."


#: row keys that name a component of a claim (the labels its rows carry).
LABEL_KEYS = ("part", "check", "method", "metric", "KFAC_eta", "setting", "eps")


def component_label(row: Mapping[str, Any]) -> str:
    """"method NGD, metric transfer_loss" from a row's labels (:data:`LABEL_KEYS`)."""
    parts = []
    for k in LABEL_KEYS:
        if k in row and row[k] is not None:
            v = row[k]
            parts.append(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}")
    return ", ".join(parts) or str(row.get("statement") or "the check")


def components(cmap: ClaimMap) -> tuple[list[tuple[str, int]], int]:
    """Per component (:func:`component_label`), the number of cells where it was not shown (ordering) or did
    not pass (agreement), most first; and the number of components shown at every cell."""
    count: dict[str, int] = {}
    for rec in cmap.records:
        for row in rec.get("rows") or ():
            lab = component_label(row)
            ok = bool(row["shown"]) if "shown" in row else bool(row.get("passed"))
            count[lab] = count.get(lab, 0) + (0 if ok else 1)
    bad = sorted(((k, n) for k, n in count.items() if n), key=lambda kv: (-kv[1], kv[0]))
    return bad, sum(1 for n in count.values() if n == 0)


def components_sentence(cmap: ClaimMap) -> str:
    """Which of the claim's components decided where it does not hold: "C19's components not shown: method NGD,
    metric transfer_loss at 8 settings, ...; the other 2 are shown at every setting." (empty if none fails)."""
    bad, fine = components(cmap)
    if not bad:
        return ""
    word = "not shown" if cmap.kind == "ordering" else "not passed"
    return (f"{cmap.claim}'s components {word}: " + "; ".join(f"{k} at {n} setting{'s' if n > 1 else ''}"
                                                            for k, n in bad)
            + (f"; the other {fine} {'is' if fine == 1 else 'are'} {word.split()[1]} at every setting." if fine
               else f"; every component is {word} somewhere."))


def robustness(cmap: ClaimMap) -> str:
    """A one-word class for the README's summary: ``robust`` (holds everywhere), ``depends on K``
    (its non-holding cells are those of one knob's values), ``contradicted everywhere``, ``nowhere``
    (holds at no cell), or ``mixed``."""
    verdicts = [o["verdict"] for o in cmap.outcomes]
    if all(v == "holds" for v in verdicts):
        return "robust"
    if all(v == "contradicted" for v in verdicts):
        return "contradicted everywhere"
    cells = [dict(c.coords) for c in cmap.plan.cells]
    bad = {i for i, v in enumerate(verdicts) if v != "holds"}
    ks = []
    for k in cmap.plan.knobs:
        vals = {cells[i][k] for i in bad}
        if {i for i, c in enumerate(cells) if c[k] in vals} == bad:
            ks.append(k)
    if ks:
        return "depends on " + " / ".join(KNOBS[k].label for k in ks)
    return "holds nowhere" if not any(v == "holds" for v in verdicts) else "mixed"


# --------------------------------------------------------------------------- the figure
def _panels(pl: Plan) -> list[tuple[str, str | None, tuple, tuple]]:
    """``(panel name, y knob or None, x values, y values)`` per panel: strips first, then the grids."""
    out: list[tuple[str, str | None, tuple, tuple]] = [(k, None, pl.strips[k], ()) for k in pl.knobs]
    out += [(grid_name(a, b), b, pl.strips[a], pl.strips[b]) for a, b in pl.grids]
    return out


def layout(cmap: ClaimMap) -> list[dict[str, Any]]:
    """The figure's data: one box per (panel, cell) with its position, verdict, colour, text and whether it is
    the default (outlined). Strips: x = index of the knob's value, y = 0; grids: x, y = value indices."""
    pl = cmap.plan
    by_coords = {c.coords: (c, o) for c, o in cmap.cells()}
    boxes = []
    for name, yk, xs, ys in _panels(pl):
        xk = name.split(" x ")[0]
        for iy, yv in enumerate(ys or (None,)):
            for ix, xv in enumerate(xs):
                coords = {**pl.defaults, xk: xv, **({yk: yv} if yk else {})}
                key = tuple((k, coords[k]) for k in pl.knobs)
                cell, o = by_coords[key]
                boxes.append({"panel": name, "x": ix, "y": iy, "x_value": xv, "y_value": yv,
                              "verdict": o["verdict"], "color": COLORS.get(o["verdict"], COLORS["fails"]),
                              "text": o["text"], "default": cell.default})
    return boxes


def trials_text(settings: Any) -> str:
    """"trials 40, sweep_trials 8" from the leaves of a claim's settings (deduplicated by name and value)."""
    from compare.engine import settings as S

    seen: dict[tuple[str, Any], None] = {}
    for p, v, _ in S.leaves(settings):
        leaf = p.rsplit(".", 1)[-1]
        if leaf.endswith("trials") and leaf != "transfer_samples":
            seen[(leaf, v)] = None
    return ", ".join(f"{k} {v}" for k, v in seen) or "trials -"


def title(cmap: ClaimMap, settings: Any) -> str:
    return f"{cmap.claim}: where it holds ({cmap.size} size, seed {cmap.seed}, {trials_text(settings)})"


def caption(cmap: ClaimMap, settings: Any) -> str:
    pl = cmap.plan
    dflt = ", ".join(f"{KNOBS[k].label} {KNOBS[k].fmt(v)}" for k, v in pl.defaults.items())
    grids = "; ".join(f"the {KNOBS[a].label} x {KNOBS[b].label} grid" for a, b in pl.grids)
    skipped = "; ".join(f"{KNOBS[k].label}: {why}" for k, why in pl.skipped.items())
    alpha = next((o["alpha"] for o in cmap.outcomes if o.get("alpha") is not None), None)
    bounds = next((o["alpha_bounds"] for o in cmap.outcomes if o.get("alpha_bounds")), None)
    verdicts = "holds green, inconclusive amber, contradicted orange" if cmap.kind == "ordering" else \
        "holds green, fails red"
    return (f"Verdict of {cmap.claim} at each of {len(pl.cells)} settings ({verdicts}): one strip per knob varied "
            f"alone around the default (outlined: {dflt})" + (f", and {grids}" if grids else "") + ". "
            f"Each cell shows the statistic of the row that decided its verdict (t: paired one-sided t; k/n: sign "
            f"test, trials above the margin of n; a count: a deterministic row)"
            + (f"; each cell is tested at alpha = {alpha:g}, which bounds {bounds}" if alpha is not None else "")
            + f". {cmap.size} size, master seed {cmap.seed}, {trials_text(settings)}."
            + (f" {CAPTION_NOTES[cmap.claim]}" if cmap.claim in CAPTION_NOTES else "")
            + (f" Not mapped: {skipped}." if skipped else ""))


def draw(cmap: ClaimMap, *, title_text: str = "") -> Any:
    """The map as a matplotlib Figure: coloured cells with their statistic, the default outlined; one strip
    per one-at-a-time knob (left) and each 2-D grid (right). Cells are ``Rectangle`` patches with
    ``gid = "PANEL|x|y"``; texts carry the same gid (tests read them back)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    pl = cmap.plan
    boxes = layout(cmap)
    strips = [k for k in pl.knobs]
    grids = [grid_name(a, b) for a, b in pl.grids]
    n_rows = max(len(strips), 1)
    fig = Figure(figsize=(10.0 if grids else 6.0, max(3.4, 0.8 * n_rows + 1.3)), layout="constrained")
    gs = fig.add_gridspec(n_rows, 2 if grids else 1, width_ratios=[1.2, 1.0] if grids else None)
    axes: dict[str, Any] = {}
    for i, k in enumerate(strips):
        axes[k] = fig.add_subplot(gs[i, 0])
    for j, g in enumerate(grids[:1]):  # one 2-D panel (the GRIDS default has one)
        axes[g] = fig.add_subplot(gs[:, 1])
    for g in grids[1:]:  # further grids: below, small (not by default)
        axes[g] = fig.add_subplot(gs[-1, 1])
    for name, ax in axes.items():
        mine = [b for b in boxes if b["panel"] == name]
        nx = 1 + max(b["x"] for b in mine)
        ny = 1 + max(b["y"] for b in mine)
        for b in mine:
            r = Rectangle((b["x"], b["y"]), 1, 1, facecolor=b["color"], edgecolor="black" if b["default"] else "white",
                          linewidth=2.6 if b["default"] else 1.0, zorder=3 if b["default"] else 2,
                          clip_on=False)
            r.set_gid(f"{name}|{b['x']}|{b['y']}")
            ax.add_patch(r)
            t = ax.text(b["x"] + 0.5, b["y"] + 0.5, b["text"], ha="center", va="center", fontsize=8, zorder=4)
            t.set_gid(f"{name}|{b['x']}|{b['y']}")
        xk = name.split(" x ")[0]
        ax.set_xlim(0, nx)
        ax.set_ylim(0, ny)
        ax.set_xticks([i + 0.5 for i in range(nx)])
        ax.set_xticklabels([KNOBS[xk].fmt(v) for v in pl.strips[xk]], fontsize=8)
        if " x " in name:
            yk = name.split(" x ")[1]
            ax.set_yticks([i + 0.5 for i in range(ny)])
            ax.set_yticklabels([KNOBS[yk].fmt(v) for v in pl.strips[yk]], fontsize=8)
            ax.set_xlabel(KNOBS[xk].label)
            ax.set_ylabel(KNOBS[yk].label)
            ax.set_aspect("equal")
        else:
            ax.set_yticks([])
            ax.set_ylabel(KNOBS[xk].label, rotation=0, ha="right", va="center", fontsize=9)
            ax.set_aspect("equal", anchor="W")
        for s in ax.spines.values():
            s.set_visible(False)
        ax.tick_params(length=0)
    from matplotlib.patches import Patch

    shown = [*_verdicts(cmap.kind), *(v for v in COLORS if v in {b["verdict"] for b in boxes})]
    fig.legend(handles=[Patch(facecolor=COLORS[v], label=v) for v in dict.fromkeys(shown)], loc="outside lower center",
               ncol=4, fontsize=8, frameon=False)
    if title_text:
        fig.suptitle(title_text, fontsize=10)
    return fig


# --------------------------------------------------------------------------- running
@dataclass(frozen=True, kw_only=True)
class MapRun:
    """The jobs of a set of maps: per claim its plan, base settings and one job per cell."""

    plans: Mapping[str, Plan]
    settings: Mapping[str, Any]
    jobs: Mapping[str, tuple]
    size: str
    seed: int

    def all_jobs(self) -> list:
        return [j for js in self.jobs.values() for j in js]


def prepare(ids: Sequence[str], *, size: str, seed: int, sets: Mapping[str, Any] | None = None,
            knobs: Mapping[str, tuple] | None = None, grids: Sequence[tuple[str, str]] = GRIDS,
            check_sets: bool = True) -> MapRun:
    """Plans and jobs for claims ``ids`` (every id must be :func:`mappable`); ``sets``: ``--set`` overrides
    applied to every claim that has them (with ``check_sets``, a name none of them has is an error). Every
    cell's settings are built (and so checked) here: a value out of range raises :class:`MapError` naming the
    knob, before any work."""
    from compare.engine import registry as R
    from compare.engine import settings as S
    from compare.engine.runner import claim_job

    sets = dict(sets or {})
    bad = [i for i in ids if i not in R.CLAIMS or not mappable(R.CLAIMS[i])]
    if bad:
        valid = [i for i, c in R.claims().items() if mappable(c)]
        kinds = ", ".join(f"{i} ({NOT_MAPPED.get(i) or R.CLAIMS[i].kind})" if i in R.CLAIMS else f"{i} (unknown)"
                          for i in bad)
        raise MapError(f"not a statement that compares methods: {kinds}; maps cover {', '.join(valid)}")
    plans: dict[str, Plan] = {}
    base: dict[str, Any] = {}
    jobs: dict[str, tuple] = {}
    used: set[str] = set()
    for cid in ids:
        try:
            st, u = S.override(R.CLAIMS[cid].preset(size), sets, strict=False)
        except S.SettingsError as e:
            raise MapError(f"--set: {e} (in claim {cid})") from None
        used |= u
        pl = plan(cid, st, knobs=knobs, grids=grids)
        plans[cid], base[cid] = pl, st
        js = []
        for cell in pl.cells:
            try:
                js.append(claim_job(cid, size=size, seed=seed, overrides={**sets, **dict(cell.overrides)},
                                    strict=False))
            except (S.SettingsError, ValueError) as e:
                what = ", ".join(f"{k}={KNOBS[k].fmt(v)}" for k, v in cell.overrides) or "the default"
                raise MapError(f"--knob {what}: not a valid setting of {cid}: {e}") from None
        jobs[cid] = tuple(js)
    unknown = [n for n in sets if n not in used]
    if unknown and check_sets:
        raise MapError(f"--set: unknown setting(s) {', '.join(unknown)} for the mapped claims")
    if knobs is not None:
        idle = [k for k in knobs if all(k not in p.knobs for p in plans.values())]
        if idle:
            raise MapError(f"--knob: no selected claim varies {', '.join(idle)} ("
                           + "; ".join(f"{c}: {p.skipped.get(k, '-')}" for c, p in plans.items() for k in idle) + ")")
    return MapRun(plans=plans, settings=base, jobs=jobs, size=size, seed=int(seed))


def collect(mr: MapRun, results: Mapping[Any, Mapping[str, Any]]) -> dict[str, ClaimMap]:
    """Per claim its :class:`ClaimMap` from the run's records (``results[job]``)."""
    from compare.engine import registry as R

    out = {}
    for cid, js in mr.jobs.items():
        recs = tuple(results[j] for j in js)
        out[cid] = ClaimMap(plan=mr.plans[cid], outcomes=tuple(cell_outcome(r) for r in recs), records=recs,
                            size=mr.size, seed=mr.seed, statement=R.CLAIMS[cid].statement, kind=R.CLAIMS[cid].kind,
                            settings=mr.settings[cid])
    return out


def figures(maps: Mapping[str, ClaimMap], settings: Mapping[str, Any]) -> tuple[list[dict], list[str]]:
    """Every map's figure and overlay (rendered PNG and SVG) and the overlays' sentences."""
    from compare.engine.runner import one_line, render_figure

    figs: list[dict] = []
    notes: list[str] = []
    for cid, cm in maps.items():
        t0 = time.perf_counter()
        tt = title(cm, settings[cid])
        png, svg = render_figure(draw(cm, title_text=tt))
        figs.append({"name": f"map_{cid}", "title": tt, "caption": caption(cm, settings[cid]), "png": png, "svg": svg,
                     "claims": [cid], "seconds": round(time.perf_counter() - t0, 3)})
        fn = OVERLAYS.get(cid)
        if fn is None:
            continue
        try:
            ov = fn(cm)
        except Exception as e:  # an overlay is extra: report it, keep the maps
            notes.append(f"{cid}: the overlay could not be drawn ({one_line(e)}).")
            continue
        figs.extend(ov.figures)
        notes.extend(ov.sentences)
    return figs, notes


def section(maps: Mapping[str, ClaimMap], settings: Mapping[str, Any]) -> Any:
    """The report section "Where the paper's statements hold" (:class:`compare.engine.report.Section`):
    a paragraph of method, one sentence per statement, every map and overlay, a summary table, and the
    ``results.json`` key ``maps`` (per claim, one entry per cell: settings, verdict, statistic, alpha)."""
    from compare.engine.report import Section

    figs, notes = figures(maps, settings)
    size = next(iter(maps.values())).size if maps else "-"
    seed = next(iter(maps.values())).seed if maps else 0
    intro = (f"The paper's hyper-parameters are not known, so every setting here is reconstructed [R]. Each "
             f"statement that compares methods is run again with one reconstructed knob changed at a time around "
             f"its default (label noise, kappa_x, kappa_F, input law, iterations), and on the label noise x kappa_x "
             f"grid ({size} size, master seed {seed}). A statement that holds at every setting does not hinge on "
             f"the reconstruction; one that holds only in part is a statement about a region of settings, and the "
             f"maps show which.")
    paras = [intro, *((sentence(m) + (" " + components_sentence(m) if components_sentence(m) else ""))
                      for m in maps.values()), *notes]
    cols = ["claim", "settings", "holds", "inconclusive", "contradicted", "fails", "at the default", "reading"]
    rows = []
    for cid, m in maps.items():
        vs = [o["verdict"] for o in m.outcomes]
        dflt = next(o["verdict"] for c, o in m.cells() if c.default)
        rows.append([cid, len(vs), *(sum(v == x for v in vs) for x in ("holds", "inconclusive", "contradicted",
                                                                        "fails")), dflt, robustness(m)])
    return Section(id="maps", title="Where the paper's statements hold", paragraphs=tuple(paras),
                   figures=tuple(figs), table={"columns": cols, "rows": rows}, json_key="maps",
                   json={cid: m.entries() for cid, m in maps.items()})


def print_maps(maps: Mapping[str, ClaimMap], file=None) -> None:
    """Per claim: its sentence and a table of its cells (settings, verdict, statistic; where it does not hold,
    the component that decided)."""
    file = sys.stdout if file is None else file
    for cid, m in maps.items():
        print(sentence(m), file=file)
        if components_sentence(m):
            print(components_sentence(m), file=file)
        rows = []
        for c, o in m.cells():
            what = ", ".join(f"{KNOBS[k].label} {KNOBS[k].fmt(v)}" for k, v in c.overrides) or "default"
            comp = o.get("component") if o["verdict"] != "holds" else None
            rows.append((what, o["verdict"], o["text"], f"  ({comp})" if comp else ""))
        w = max(len(r[0]) for r in rows)
        wv = max(len(r[1]) for r in rows)
        ws = max(len(r[2]) for r in rows)
        for r in rows:
            print(f"  {r[0].ljust(w)}  {r[1].ljust(wv)}  {r[2].ljust(ws)}{r[3]}".rstrip(), file=file)
        print(file=file)


# --------------------------------------------------------------------------- the command
def _configure(p) -> None:
    from compare.engine import cli

    p.add_argument("--seed", type=cli.nonnegative_int, default=0, help="master seed (an integer >= 0)")
    p.add_argument("--knob", action="append", default=[], metavar="NAME[=V1,V2,...]",
                   help=f"map only the named knobs (repeatable), with these values; knobs: {', '.join(KNOBS)} "
                        f"(default: every knob at its default values)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the maps as JSON")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write a page with the section (DIR/index.html, figures, results.json)")


def from_args(args, ids: Sequence[str] | None = None, *, knobs: Mapping[str, tuple] | None = None) -> MapRun:
    """The :class:`MapRun` of a parsed command line (``args.ids`` filtered to mapped claims when ``ids`` is
    given by ``report --maps``); :class:`compare.engine.cli.UsageError` on bad input."""
    from compare.engine import cli
    from compare.engine import registry as R
    from compare.engine import settings as S

    try:
        sets = S.parse_assignments(args.set or [])
    except S.SettingsError as e:
        raise cli.UsageError(str(e)) from None
    check_sets = ids is None
    if ids is None:
        ids = cli.select_claims(args.ids) if args.ids else [i for i, c in R.claims().items() if mappable(c)]
    try:
        return prepare(ids, size=args.size, seed=args.seed, sets=sets, knobs=knobs, check_sets=check_sets)
    except MapError as e:
        raise cli.UsageError(str(e)) from None


def run_maps(args) -> int:
    """``maps``: run every cell of every selected claim's map (one run, cached), print each claim's sentence
    and cells, write ``--json`` and ``--out``. Exit 0; 1 when a cell's claim raised (its code failed, not a
    verdict); 2 on bad input, before any work."""
    from compare.engine import cli
    from compare.engine import report as rp

    t0 = time.perf_counter()
    plugin_specs = cli.load_plugins(args)
    try:
        knobs = parse_knobs(args.knob)
    except MapError as e:
        raise cli.UsageError(str(e)) from None
    mr = from_args(args, knobs=knobs)
    cli.check_json_path(args.json)
    out = cli.check_out_dir(args.out) if args.out is not None else None
    jobs = mr.all_jobs()
    cli._say(f"maps: {len(jobs)} cell(s) of {len(mr.plans)} claim(s)", args)
    res, cache = cli._execute(args, jobs, plugin_specs, desc="maps")
    maps = collect(mr, res.results)
    print_maps(maps)
    errors = [(cid, r) for cid, m in maps.items() for r in m.records if r.get("error")]
    for cid, r in errors:
        print(f"{cid}: error at {r.get('settings', {})}: {r['error']}", file=sys.stderr)
    if args.json:
        cli.write_json(args.json, {"size": args.size, "seed": args.seed,
                                   "maps": {cid: m.entries() for cid, m in maps.items()},
                                   "sentences": {cid: sentence(m) for cid, m in maps.items()},
                                   "components": {cid: dict(components(m)[0]) for cid, m in maps.items()},
                                   "skipped": {cid: dict(m.plan.skipped) for cid, m in maps.items()}})
    if out is not None:
        from compare.engine.cache import code_version

        sec = section(maps, mr.settings)
        prov = rp.provenance(size=args.size, seed=args.seed, wall_s=time.perf_counter() - t0, jobs=args.jobs,
                             scheduler=args.scheduler, code_version=cache.version if cache else code_version(),
                             cached=len(res.from_cache), computed=len(jobs) - len(res.from_cache))
        prov["overrides"] = list(args.set or [])
        prov["knobs"] = list(args.knob or [])
        defaults = [next(r for c, r in zip(m.plan.cells, m.records) if c.default) for m in maps.values()]
        try:
            index = rp.write_report(defaults, [], out_dir=out, prov=prov,
                                    from_cache={j.name for j in res.from_cache}, sections=[sec])
        except OSError as e:
            raise cli.UsageError(f"could not write the maps page to {str(out)!r} ({e}); finished work is kept in "
                                 f"the cache, a rerun reuses it") from None
        print(f"maps: wrote {index}")
    cli._say(f"maps: {len(jobs)} cell(s) in {time.perf_counter() - t0:.1f} s "
             f"({len(res.from_cache)} from the cache)", args)
    return 1 if errors else 0


def _register() -> None:
    from compare.engine import cli

    cli.command("maps", help="map where each statement comparing methods holds over the reconstructed settings",
                configure=_configure)(run_maps)


_register()
