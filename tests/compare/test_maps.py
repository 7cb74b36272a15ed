"""Maps: where each statement comparing methods holds over the reconstructed settings (compare.engine.maps,
compare.linrep.maps): cells (one knob at a time + the noise x kappa_x grid, the default once, knobs fixed by
design skipped), the sentences from synthetic verdicts, the figure's data, the overlays' crossings,
results.json ``maps``, bad input (exit 2 before any work) and a small end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from compare.engine import maps as M
from compare.engine import plugins
from compare.engine import registry as R
from compare.engine.cli import ENV_DIR, ENV_VERSION, main

plugins.load(())  # the built-in claims (and compare.linrep.maps: the overlays of C17, C18)

#: tiny settings for end-to-end runs (seconds): every claim that has them takes them.
TINY = ["--set", "d_x=12", "--set", "d_y=4", "--set", "k=2", "--set", "batch=40", "--set", "transfer_samples=20",
        "--set", "steps=30", "--set", "trials=4"]


@pytest.fixture(autouse=True)
def _pinned(monkeypatch):
    monkeypatch.setenv(ENV_VERSION, "maps-test")
    monkeypatch.delenv(ENV_DIR, raising=False)


def _plan(cid: str, size: str = "fast", **kw) -> M.Plan:
    return M.plan(cid, R.CLAIMS[cid].preset(size), **kw)


def _fake_map(cid: str, verdict_of, *, kind: str | None = None, size: str = "fast") -> M.ClaimMap:
    """A map of ``cid`` whose cell with coordinates ``c`` has verdict ``verdict_of(c)`` (no run)."""
    pl = _plan(cid, size)
    outs, recs = [], []
    for i, cell in enumerate(pl.cells):
        v = verdict_of(dict(cell.coords))
        outs.append({"verdict": v, "statistic": float(i), "text": f"t {i}.0", "test": "paired one-sided t, 9 df",
                     "alpha": 1e-3, "alpha_bounds": "false holds"})
        recs.append({"id": cid, "verdict": v, "rows": []})
    return M.ClaimMap(plan=pl, outcomes=tuple(outs), records=tuple(recs), size=size, seed=0,
                      kind=kind or R.CLAIMS[cid].kind, settings=R.CLAIMS[cid].preset(size))


# --------------------------------------------------------------------------- cells
def test_cells_one_knob_at_a_time_plus_the_noise_x_kappa_x_grid_with_the_default_once():
    pl = _plan("C16")
    assert pl.knobs == ("noise_std", "kappa_x", "kappa_F", "law", "steps") and not pl.skipped
    assert pl.defaults == {"noise_std": 0.01, "kappa_x": 100.0, "kappa_F": 10.0, "law": "rademacher", "steps": 200}
    # strips 4 + 3 + 3 + 3 + 2 = 15 cells with the default 5 times -> 11; the 4 x 3 grid adds 12 - 4 - 3 + 1 = 6
    assert len(pl.cells) == 17, [c.overrides for c in pl.cells]
    assert len({c.coords for c in pl.cells}) == 17
    assert pl.cells[0].default and pl.cells[0].overrides == () and sum(c.default for c in pl.cells) == 1
    assert set(pl.cells[0].panels) == {"noise_std", "kappa_x", "kappa_F", "law", "steps", "noise_std x kappa_x"}
    assert max(len(c.overrides) for c in pl.cells) == 2
    two = [dict(c.overrides) for c in pl.cells if len(c.overrides) == 2]
    assert all(set(o) == {"noise_std", "kappa_x"} for o in two) and len(two) == 6
    assert pl.grids == (("noise_std", "kappa_x"),)
    # at paper size the default iterations are 1000: the strip is still (200, 1000)
    pp = _plan("C16", "paper")
    assert pp.defaults["steps"] == 1000 and pp.strips["steps"] == (200, 1000) and len(pp.cells) == 17


def test_knobs_fixed_by_design_and_missing_are_skipped():
    p20 = _plan("C20")  # three data settings that differ in law and kappa_x
    assert p20.knobs == ("noise_std", "kappa_F", "steps")
    assert set(p20.skipped) == {"law", "kappa_x"} and "fixed by design" in p20.skipped["law"]
    assert "uniform" in p20.skipped["law"] and p20.grids == ()
    assert len(p20.cells) == 1 + 3 + 2 + 1  # noise 4, kappa_F 3, iterations 2, the default once
    p13 = _plan("C13")  # single-index: label noise only
    assert p13.knobs == ("noise_std",) and p13.defaults == {"noise_std": 0.1}
    assert p13.strips["noise_std"] == (0.0, 1e-3, 1e-2, 1e-1) and len(p13.cells) == 4


def test_chosen_knobs_and_a_default_outside_the_grid():
    pl = _plan("C17", knobs={"noise_std": (0.0, 0.1)})
    assert pl.knobs == ("noise_std",) and pl.grids == ()
    assert pl.strips["noise_std"] == (0.0, 0.01, 0.1)  # the claim's default joins its strip
    pl = _plan("C17", knobs={"noise_std": (0.0, 0.1), "kappa_x": (10.0,)})
    assert pl.strips["kappa_x"] == (10.0, 100.0) and len(pl.cells) == 3 * 2  # the grid covers both strips


def test_parse_knobs():
    assert M.parse_knobs([]) is None
    got = M.parse_knobs(["noise_std=0,1e-3,0", "law", "steps=50"])
    assert got == {"noise_std": (0.0, 1e-3), "law": ("rademacher", "uniform", "gaussian"), "steps": (50,)}
    for bad, word in [("foo=1", "unknown knob 'foo'"), ("noise_std=-1", "standard deviation >= 0"),
                      ("kappa_x=0.5", "condition number >= 1"), ("steps=1.5", "not an integer"),
                      ("kappa_F=x", "not a number"), ("kappa_x=", "comma-separated values"),
                      ("noise_std=nan", "not a finite number")]:
        with pytest.raises(M.MapError, match=word):
            M.parse_knobs([bad])


# --------------------------------------------------------------------------- sentences
def test_sentence_where_a_statement_holds_and_where_not():
    m = _fake_map("C16", lambda c: "inconclusive" if c["noise_std"] >= 0.1 else "holds")
    assert M.sentence(m) == ("C16 holds at 14 of 17 settings; it is inconclusive where the label noise is 0.1; "
                             "contradicted nowhere. At the default setting it holds.")
    assert M.robustness(m) == "depends on label noise"
    m = _fake_map("C16", lambda c: "inconclusive" if c["noise_std"] >= 0.01 else "holds")
    s = M.sentence(m)
    assert "inconclusive where the label noise is at least 0.01" in s and s.startswith("C16 holds at 6 of 17")
    assert s.endswith("At the default setting it is inconclusive.")
    m = _fake_map("C14", lambda c: "holds")
    assert M.sentence(m) == "C14 holds at all 17 settings (inconclusive and contradicted nowhere). " \
                            "At the default setting it holds."
    assert M.robustness(m) == "robust"
    m = _fake_map("C19", lambda c: "contradicted")
    assert "holds at 0 of 17" in M.sentence(m) and "contradicted everywhere" in M.sentence(m)
    assert M.robustness(m) == "contradicted everywhere"


def test_sentence_names_single_cells_and_several_regions():
    def v(c):
        if c["kappa_F"] == 100.0:
            return "contradicted"
        if c["law"] != "rademacher" or (c["noise_std"] == 1e-3 and c["kappa_x"] == 10.0):
            return "inconclusive"
        return "holds"

    s = M.sentence(_fake_map("C16", v))
    assert s.startswith("C16 holds at 13 of 17 settings; it is inconclusive where the input law is uniform or "
                        "gaussian or at (label noise 0.001, kappa_x 10); contradicted where kappa_F is 100.")
    assert M.robustness(_fake_map("C16", v)) == "mixed"
    # the default alone
    s = M.sentence(_fake_map("C16", lambda c: "inconclusive" if c == _plan("C16").defaults else "holds"))
    assert "inconclusive at the default setting; contradicted nowhere" in s
    # an agreement claim: holds / fails
    s = M.sentence(_fake_map("C18", lambda c: "fails" if c["kappa_F"] == 1.0 else "holds"))
    assert s == "C18 holds at 16 of 17 settings; it fails where kappa_F is 1. At the default setting it holds."


def test_components_sentence_counts_where_each_component_was_not_shown():
    pl = _plan("C19", knobs={"kappa_F": (1.0, 100.0)})
    rows = lambda ngd_ok: [{"method": m, "metric": k, "shown": m == "Newton" or ngd_ok, "statement": "x"}  # noqa: E731
                           for m in ("NGD", "Newton") for k in ("subspace_distance", "transfer_loss")]
    recs = tuple({"id": "C19", "verdict": "holds" if i == 0 else "contradicted", "rows": rows(i == 0)}
                 for i, _ in enumerate(pl.cells))
    cm = M.ClaimMap(plan=pl, outcomes=tuple({"verdict": r["verdict"]} for r in recs), records=recs, size="fast",
                    seed=0)
    assert M.components(cm) == ([("method NGD, metric subspace_distance", 2), ("method NGD, metric transfer_loss", 2)],
                                2)
    assert M.components_sentence(cm) == ("C19's components not shown: method NGD, metric subspace_distance at 2 "
                                         "settings; method NGD, metric transfer_loss at 2 settings; the other 2 are "
                                         "shown at every setting.")


def test_describe_is_true_of_every_cell_it_names():
    """Random verdicts: every condition "where KNOB is V" names only cells of that verdict (read back)."""
    rng = np.random.default_rng(3)
    pl = _plan("C16")
    cells = [dict(c.coords) for c in pl.cells]
    for _ in range(30):
        target = {i for i in range(len(cells)) if rng.random() < 0.3}
        text = M.describe(cells, target, knobs=pl.knobs, default=0)
        if not target:
            assert text == "nowhere"
            continue
        named: set[int] = set()
        for part in text.replace(" or at", ", at").split(", "):
            part = part.strip()
            for k in pl.knobs:  # "where KNOB is ..." conditions
                head = f"where {M.KNOBS[k].phrase} is "
                if part.startswith(head):
                    rest = part[len(head):]
                    vals = [v for v in pl.strips[k] if M.KNOBS[k].fmt(v) in rest.replace(" or ", ",").split(",")
                            or (rest.startswith("at least ") and v >= M.KNOBS[k].convert(rest[9:]))
                            or (rest.startswith("at most ") and v <= M.KNOBS[k].convert(rest[8:]))]
                    hit = {i for i, c in enumerate(cells) if c[k] in vals}
                    assert hit <= target, (text, part)
                    named |= hit
        assert named <= target


# --------------------------------------------------------------------------- figure
def test_the_figure_draws_the_cells_with_their_colour_text_and_the_default_outlined():
    m = _fake_map("C16", lambda c: {0.0: "contradicted", 0.1: "inconclusive"}.get(c["noise_std"], "holds"))
    boxes = M.layout(m)
    assert len(boxes) == 4 + 3 + 3 + 3 + 2 + 12
    by_coords = {c.coords: o for c, o in m.cells()}
    for b in boxes:  # each box shows its own cell
        xk = b["panel"].split(" x ")[0]
        coords = {**m.plan.defaults, xk: b["x_value"]}
        if " x " in b["panel"]:
            coords[b["panel"].split(" x ")[1]] = b["y_value"]
        o = by_coords[tuple((k, coords[k]) for k in m.plan.knobs)]
        assert (b["verdict"], b["text"]) == (o["verdict"], o["text"])
        assert b["default"] == (coords == m.plan.defaults)
    assert sum(b["default"] for b in boxes) == 6  # once per panel
    fig = M.draw(m, title_text="t")
    rects = {r.get_gid(): r for ax in fig.axes for r in ax.patches if isinstance(r, Rectangle) and r.get_gid()}
    texts = {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid()}
    assert len(rects) == len(boxes) == len(texts)
    for b in boxes:
        gid = f"{b['panel']}|{b['x']}|{b['y']}"
        assert rects[gid].get_facecolor() == pytest.approx(to_rgba(M.COLORS[b["verdict"]]))
        assert texts[gid] == b["text"]
        assert (rects[gid].get_linewidth() > 2) == b["default"]
    grid = [b for b in boxes if b["panel"] == "noise_std x kappa_x"]
    assert {b["verdict"] for b in grid if b["x_value"] == 0.0} == {"contradicted"}
    assert M.COLORS == {"holds": M.COLORS["holds"], "inconclusive": M.COLORS["inconclusive"],
                        "contradicted": M.COLORS["contradicted"], "fails": M.COLORS["fails"]}
    cap = M.caption(m, m.settings)
    assert "17 settings" in cap and "fast size, master seed 0" in cap and "trials 40" in cap
    assert M.title(m, m.settings) == "C16: where it holds (fast size, seed 0, trials 40, sweep_trials 8)"


def test_cell_outcome_reads_the_deciding_row():
    t_row = {"statistic": 2.5, "stderr": 0.1, "n": 10, "test": "paired one-sided t, 9 df", "shown": False,
             "reverse_shown": False, "passed": False, "p_value": 0.02, "reverse_p_value": 0.98, "critical": 4.3}
    sign_row = {"statistic": 10.0, "stderr": None, "n": 10, "test": "one-sided sign test, 10 non-tied trials",
                "shown": True, "reverse_shown": False, "passed": True, "p_value": 0.001, "reverse_p_value": 1.0,
                "critical": 10.0}
    o = M.cell_outcome({"id": "C14", "verdict": "inconclusive", "rows": [t_row, sign_row], "alpha": 1e-3,
                        "alpha_bounds": "false holds"})
    assert (o["verdict"], o["statistic"], o["text"], o["alpha"]) == ("inconclusive", 2.5, "t 2.5", 1e-3)
    o = M.cell_outcome({"id": "C14", "verdict": "holds", "rows": [sign_row], "alpha": 1e-3})
    assert (o["statistic"], o["text"]) == (10.0, "10/10")
    c18a = {"part": "a", "measured": 0.0, "prediction": 0.0, "tolerance": 0.0, "passed": True, "stderr": None,
            "statistic": None, "test": "deterministic bound", "direction": "measured <= prediction",
            "runs_above_limit": 24, "runs_above_limit_not_diverged": 0}
    o = M.cell_outcome({"id": "C18", "verdict": "holds", "rows": [c18a], "alpha": 1e-3})
    assert o["text"] == "0/24" and o["statistic"] == 0.0
    o = M.cell_outcome({"id": "C16", "verdict": "fails", "rows": [], "error": "ValueError: x"})
    assert o["text"] == "error" and o["verdict"] == "fails"


# --------------------------------------------------------------------------- overlays
def test_crossing_interpolates_in_log():
    from compare.linrep.maps import crossing

    x = [1e-3, 1e-2, 1e-1]
    kind, at = crossing(x, [1e-3, 1e-2, 1e-1], [0.03, 0.03, 0.03])  # a = x crosses 0.03 at x = 0.03
    assert kind == "at" and at == pytest.approx(0.03, rel=1e-9)
    assert crossing(x, [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]) == ("below", 1e-3)
    assert crossing(x, [1e-3, 1e-3, 1e-3], [0.5, 0.5, 0.5]) == ("above", 0.1)
    assert crossing([0.0, 1e-3], [1.0, 1.0], [2.0, 2.0])[0] == "none"


def _c17_record(noise: float, kx: float, *, adam: float = 0.3, verdict: str = "holds") -> dict:
    level = 1.5 * noise * (kx / 100.0) ** 0.5  # R-LR-3's level at eta = 1 is proportional to the noise
    rows = [{"method": meth, "KFAC_eta": eta, "KFAC_gmean": 1.1 * level * eta, "KFAC_level": level * eta,
             "method_gmean": adam if meth == "Adam" else 2 * adam, "method_lr": 0.1, "statistic": 5.0}
            for meth in ("SGD", "Adam") for eta in (0.316, 1.0)]
    return {"id": "C17", "verdict": verdict, "rows": rows, "settings": {}}


def test_the_c17_overlay_finds_where_kfac_at_eta_1_stops_winning():
    from compare.linrep import maps as LM

    pl = _plan("C17")
    recs = []
    for cell in pl.cells:
        c = dict(cell.coords)
        recs.append(_c17_record(c["noise_std"], c["kappa_x"],
                                verdict="inconclusive" if c["noise_std"] >= 0.1 else "holds"))
    cm = M.ClaimMap(plan=pl, outcomes=tuple(M.cell_outcome({**r, "rows": []}) for r in recs), records=tuple(recs),
                    size="fast", seed=0, settings=R.CLAIMS["C17"].preset("fast"))
    series = LM.c17_series(cm)
    assert list(series) == [10.0, 100.0, 1000.0] and [s for s, _ in series[100.0]] == [0.0, 1e-3, 1e-2, 1e-1]
    ov = M.OVERLAYS["C17"](cm)
    assert [f["name"] for f in ov.figures] == ["map_C17_floor"] and ov.figures[0]["png"][:4] == b"\x89PNG"
    # measured: 1.65 sigma = 0.3 at sigma = 0.18 (beyond 0.1: never inside the grid); predicted: 1.5 sigma = 0.3
    # at sigma = 0.2; at kappa_x = 1000 the level is sqrt(10) times higher and crosses inside the grid
    d = ov.data["series"]
    assert d[100.0]["measured"] == ("above", 0.1) and d[100.0]["predicted"] == ("above", 0.1)
    kind, at = d[1000.0]["predicted"]
    assert kind == "at" and at == pytest.approx(0.3 / (1.5 * 10 ** 0.5), rel=1e-9)
    assert any("kappa_x = 1000" in s and "R-LR-3" in s for s in ov.sentences)


def test_the_c18_overlay_reads_the_divergence_fractions():
    pl = _plan("C18", knobs={"kappa_F": (1.0, 100.0)})
    lrs = [1e-3, 1e-2, 0.1, 1.0, 10.0]
    recs = []
    for cell in pl.cells:
        kf = dict(cell.coords)["kappa_F"]
        row = {"part": "a", "fraction_diverged_per_lr": [0, 0, 0, 1, 1], "limit_min_max": [0.2 * kf ** 0, 0.5],
               "runs_above_limit": 8, "runs_above_limit_not_diverged": 0}
        recs.append({"id": "C18", "verdict": "holds", "rows": [row], "settings": {"sweep.lrs": lrs}})
    cm = M.ClaimMap(plan=pl, outcomes=tuple({"verdict": "holds", "text": "0/8", "statistic": 0.0, "alpha": 1e-3,
                                             "alpha_bounds": "false failure", "test": "-"} for _ in recs),
                    records=tuple(recs), size="fast", seed=0, kind="statistical", settings=None)
    from compare.linrep import maps as LM

    strips = LM.c18_strips(cm)
    assert list(strips) == ["kappa_F"] and [v for v, _ in strips["kappa_F"]] == [1.0, 10.0, 100.0]
    assert strips["kappa_F"][0][1]["lrs"] == lrs and strips["kappa_F"][0][1]["fraction"] == [0, 0, 0, 1, 1]
    ov = M.OVERLAYS["C18"](cm)
    assert ov.figures[0]["name"] == "map_C18_limit"


# --------------------------------------------------------------------------- command line
@pytest.mark.parametrize("argv, word", [
    (["maps", "C7"], "C7 (statistical)"),
    (["maps", "C99"], "unknown claim id(s) C99"),
    (["maps", "C17", "--knob", "noise_std=-1"], "--knob noise_std"),
    (["maps", "C17", "--knob", "law=cauchy"], "law=cauchy"),
    (["maps", "C17", "--knob", "foo=1"], "unknown knob 'foo'"),
    (["maps", "C17", "--knob", "kappa_F=0"], "--knob kappa_F"),
    (["maps", "C17", "--knob", "steps=0"], "--knob steps"),
    (["maps", "C13", "--knob", "kappa_x=10"], "no selected claim varies kappa_x"),
    (["maps", "C17", "--set", "nonsense=1"], "unknown setting(s) nonsense"),
    (["maps", "C22"], "C22 (one optimizer across the conditionings it sweeps itself"),
])
def test_bad_input_exits_2_naming_it_before_any_work(tmp_path, capsys, monkeypatch, argv, word):
    from compare.engine import runner

    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("work started"))
    assert main([*argv, "--cache-dir", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert word in err, err
    assert not (tmp_path / "c" / "claims").exists()


def test_every_registered_statement_gets_its_map_planned():
    """`maps` with no ids plans every mappable claim registered, the scorecard's included (a claim whose settings
    hold a tuple of a knob's values sweeps it itself: that knob is fixed by design, not a crash)."""
    plugins.load(())
    import compare.scorecard.claims  # noqa: F401  (registers C22-C25)

    ids = [i for i, c in R.claims().items() if M.mappable(c)]
    assert ids == ["C13", "C14", "C15", "C16", "C17", "C18", "C19", "C20"], ids
    mr = M.prepare(ids, size="fast", seed=0, sets={}, knobs=None)
    assert sum(len(p.cells) for p in mr.plans.values()) == 113
    assert M._leaf_values(compare.scorecard.claims.RightOnlySettings.preset("fast"), "kappa_x")[:2] == [1.0, 100.0]


def test_small_maps_end_to_end_json_and_a_warm_rerun(tmp_path, capsys):
    """C17 and C18 (one sweep per cell, shared) over three label noises at tiny settings (~3 s of CPU)."""
    argv = ["maps", "C17", "C18", "--knob", "noise_std=0,0.1", *TINY, "--cache-dir", str(tmp_path / "cache"),
            "--quiet"]
    assert main([*argv, "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "C17 holds at" in out and "C18 holds at" in out
    js = json.loads((tmp_path / "m.json").read_text())
    maps = js["maps"]
    assert set(maps) == {"C17", "C18"} and len(maps["C17"]) == 3 == len(maps["C18"])
    for e in maps["C17"]:
        assert set(e) >= {"settings", "verdict", "statistic", "alpha"} and e["alpha"] == 1e-3
        assert e["verdict"] in ("holds", "inconclusive", "contradicted") and e["alpha_bounds"] == "false holds"
    assert [e["settings"] for e in maps["C18"]] == [{}, {"noise_std": 0.0}, {"noise_std": 0.1}]
    assert [e["default"] for e in maps["C18"]] == [True, False, False]
    assert all(e["verdict"] in ("holds", "fails") for e in maps["C18"])
    assert js["sentences"]["C17"].startswith("C17 holds at") and js["size"] == "fast"
    # warm: every cell from the cache, the same maps
    assert main([*argv, "--json", str(tmp_path / "m2.json")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "m2.json").read_text())["maps"] == maps


@pytest.mark.slow  # renders every figure (~10 s on a loaded machine)
def test_maps_out_writes_a_page_with_the_section_and_results_json_maps(tmp_path, capsys):
    argv = ["maps", "C17", "C18", "--knob", "noise_std=0,0.1", *TINY, "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--json", str(tmp_path / "m.json"), "--out", str(tmp_path / "page")]
    assert main(argv) == 0
    capsys.readouterr()
    res = json.loads((tmp_path / "page" / "results.json").read_text())
    assert res["maps"] == json.loads((tmp_path / "m.json").read_text())["maps"]
    assert [r["id"] for r in res["claims"]] == ["C17", "C18"]  # the default cells
    names = {f.name for f in (tmp_path / "page" / "figures").iterdir()}
    assert {"map_C17.png", "map_C17.svg", "map_C18.png", "map_C17_floor.png", "map_C18_limit.png"} <= names
    html = (tmp_path / "page" / "index.html").read_text()
    assert "Where the paper&#39;s statements hold" in html and "C17 holds at" in html


@pytest.mark.slow  # two runs at tiny settings (~10 s on a loaded machine)
def test_report_with_maps_adds_the_section(tmp_path, capsys):
    assert main(["report", "C1", "C17", "--maps", "--knob", "kappa_F=1", "--figures", "none", *TINY,
                 "--cache-dir", str(tmp_path / "c"), "--quiet", "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert [r["id"] for r in res["claims"]] == ["C1", "C17"]  # the maps' cells are not claims of the report
    assert list(res["maps"]) == ["C17"] and [e["settings"] for e in res["maps"]["C17"]] == [{}, {"kappa_F": 1.0}]
    assert (tmp_path / "r" / "figures" / "map_C17.png").exists()
    html = (tmp_path / "r" / "index.html").read_text()
    assert "C17 holds at" in html
    # without --maps: no section, no key
    assert main(["report", "C17", "--figures", "none", *TINY, "--cache-dir", str(tmp_path / "c"), "--quiet",
                 "--out", str(tmp_path / "r2")]) == 0
    assert "maps" not in json.loads((tmp_path / "r2" / "results.json").read_text())
