"""compare.engine.report and the runner's figure rendering: the self-contained page, results.json, figure files."""

from __future__ import annotations

import hashlib
import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from compare.engine import report as rp
from compare.engine.runner import render_figure

CONTRACT_KEYS = {"id", "paper_ref", "kind", "prediction", "measured", "stderr", "tolerance", "alpha", "passed",
                 "seconds"}


def _record(id, verdict, *, reconstructed=True, figure=None, rows=()):
    return {"id": id, "paper_ref": f"Lemma {id}", "theory_ref": f"R-{id}", "kind": "statistical",
            "statement": f"statement of {id} <with markup & ampersand>", "reconstructed": reconstructed,
            "figure": figure, "prediction": 0.5, "measured": 0.5012, "stderr": 1e-3, "tolerance": 3.29e-3,
            "tolerance_source": "3.29 standard errors", "alpha": 1e-3, "passed": verdict == "holds",
            "verdict": verdict, "seconds": 1.25, "size": "fast", "seed": 0, "rows": list(rows),
            "test": "two-sided t, 29 df", "alpha_bounds": "false failure", "direction": "two-sided", "detectable": 0.011}


def _figure(name="figA", claims=("A1",)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    t = np.linspace(0, 1, 20)
    ax.plot(t, t ** 2, "k--", label="theory")
    ax.fill_between(t, t ** 2 - 0.05, t ** 2 + 0.05, alpha=0.3, label="simulation +- s.e.")
    ax.legend()
    png, svg = render_figure(fig)
    return {"name": name, "title": f"Title of {name}", "caption": "A caption.", "paper_ref": "Fig. 9",
            "claims": list(claims), "reconstructed": True, "png": png, "svg": svg, "seconds": 0.5}


@pytest.fixture
def written(tmp_path):
    records = [
        _record("A1", "holds", rows=[{"n": np.int64(3), "x": np.float64(0.25), "bad": float("nan")}]),
        _record("A2", "fails", reconstructed=False, figure="figA"),
        _record("A3", "contradicted"),
    ]
    figs = [_figure(), {**_figure("figB", ()), "png": None, "svg": None, "error": "ValueError: broken"}]
    prov = rp.provenance(size="fast", seed=0, wall_s=12.345, jobs=2, code_version="abc")
    index = rp.write_report(records, figs, out_dir=tmp_path / "out", prov=prov, from_cache={"A1"})
    return tmp_path / "out", index, records, figs


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.srcs, self.hrefs = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])


def test_page_is_self_contained(written):
    out, index, records, figs = written
    html = index.read_text()
    p = _Tags()
    p.feed(html)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert p.srcs and all(s.startswith("data:image/png;base64,") for s in p.srcs), "an image is not inlined"
    assert all(h.startswith("#") for h in p.hrefs), f"links leaving the page: {p.hrefs}"
    assert len(p.ids) == len(set(p.ids)), "duplicate element ids"
    assert not re.search(r"url\(|@import|https?://", html), "the page refers to something outside itself"


def test_page_shows_every_claim_verdict_and_mark(written):
    out, index, records, figs = written
    html = index.read_text()
    for r in records:
        assert f'id="claim-{r["id"]}"' in html and f'href="#claim-{r["id"]}"' in html
    # verdicts: distinct styles; "contradicted" is not styled as a failure
    assert html.count('class="v holds"') >= 1 and html.count('class="v fails"') >= 1
    assert 'class="v contra">contradicted' in html
    # [R] marks: summary row + claim block for each of the two reconstructed claims, plus figures
    assert html.count('class="R"') >= 2 * 2 + 2
    assert "&lt;with markup &amp; ampersand&gt;" in html  # escaped
    for col in ("paper reference", "docs/theory.md ID", "kind", "prediction", "measured", "standard error",
                "tolerance", "alpha", "verdict", "seconds"):
        assert f"<th>{col}</th>" in html
    # the figure section holds the claims it backs (figure's list and the claims' figure field)
    sec = html.split('id="fig-figA"')[1].split('id="fig-figB"')[0]
    assert 'id="claim-A1"' in sec and 'id="claim-A2"' in sec and 'id="claim-A3"' not in sec
    assert "could not be made: ValueError: broken" in html
    assert "Claims without a figure" in html
    for word in ("numpy", "wall time", "12.35 s", "jobs 2", "code version abc", "core(s)"):
        assert word in html, word


def test_results_json_and_figure_files(written):
    out, index, records, figs = written
    res = json.loads((out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert res["summary"] == {"holds": 1, "fails": 1, "inconclusive": 0, "contradicted": 1}
    assert [r["id"] for r in res["claims"]] == ["A1", "A2", "A3"]
    assert CONTRACT_KEYS <= set(res["claims"][0])
    assert res["claims"][0]["rows"] == [{"n": 3, "x": 0.25, "bad": "nan"}]
    fa, fb = res["figures"]
    for ext in ("png", "svg"):
        data = (out / fa[ext]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == fa[ext + "_sha256"]
        assert data == figs[0][ext]
    assert fb["png"] is None and fb["error"] == "ValueError: broken"
    assert res["provenance"]["seed"] == 0 and res["provenance"]["size"] == "fast"
    assert not list(out.rglob(".tmp-*")), "temporary files left behind"


def test_render_figure_is_byte_reproducible():
    a, b = _figure(), _figure()
    assert a["png"] == b["png"] and a["svg"] == b["svg"]
    assert a["png"].startswith(b"\x89PNG") and b"<svg" in a["svg"]


def test_unwritable_out_is_a_value_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="argument 'out' must be a writable directory"):
        rp.check_writable(blocker / "sub")


@pytest.mark.parametrize("x, s", [(None, "\u2013"), (0.0, "0"), (0.123456, "0.1235"), (1e-7, "1e-7"),
                                  (2.5e-12, "2.5e-12"), (123456.0, "1.235e5"), (3, "3"), (True, "yes"),
                                  (math.inf, "inf"), ("text", "text")])
def test_fmt_num(x, s):
    assert rp.fmt_num(x) == s


def test_summary_line_and_strip_timing():
    recs = [_record("A1", "holds"), _record("A2", "contradicted")]
    line = rp.summary_line(recs, [{"name": "f", "error": None}, {"name": "g", "error": "x"}])
    assert line == "2 claim(s): 1 holds, 0 fails, 0 inconclusive, 1 contradicted; 1 figure(s), 1 failed"
    assert all("seconds" not in r for r in rp.strip_timing(recs))
