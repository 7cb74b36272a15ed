"""The README's plugin example (an optimizer and a claim in one user module, at most 30 lines of code),
run as the README runs it: a subprocess with ``--plugins`` and ``--jobs 2``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def plugin_source() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```python\n(# my_plugin.py.*?)```", text, re.S)
    assert m, "the README has no ```python block starting with '# my_plugin.py'"
    return m.group(1)


def test_the_example_is_at_most_30_lines():
    lines = [ln for ln in plugin_source().splitlines() if ln.strip()]
    assert len(lines) <= 30, f"{len(lines)} non-blank lines"


@pytest.mark.slow  # a subprocess that runs Figure 1's sweep with one more optimizer
def test_the_example_runs_with_two_workers(tmp_path, seed):
    mod = tmp_path / "my_plugin.py"
    mod.write_text(plugin_source())
    out = tmp_path / "u1.json"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("CONCURRENCE_PLUGINS", None)
    r = subprocess.run([sys.executable, "-m", "compare", "check", "U1", "--plugins", str(mod), "--jobs", "2",
                        "--seed", str(seed), "--quiet", "--no-cache", "--json", str(out)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())[0]
    assert rec["id"] == "U1" and rec["verdict"] == "holds", rec
    assert "momentum" in rec["settings"]["curves.optimizers"]


SMALL = ["--set", "kappa_x=1,100", "--set", "kappa_F=1", "--set", "linrep.trials=2", "--set", "steps=200",
         "--set", "fresh_steps=50", "--set", "spike.d=100", "--set", "spike.trials=4"]


@pytest.mark.slow  # two scorecard subprocesses at a reduced grid (~40 s)
def test_the_example_gets_a_scorecard_row_computing_its_own_cells_only(tmp_path, seed):
    """The README's scorecard example: the plugin's optimizer gets its row with ``--jobs 2``, and with the cache of
    a run without it, only its own cells (2 settings x 2 trials, block 1) and the table are computed."""
    mod = tmp_path / "my_plugin.py"
    mod.write_text(plugin_source())
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}   # this checkout's packages
    env.pop("CONCURRENCE_PLUGINS", None)
    base = [sys.executable, "-m", "compare", "scorecard", "--no-claims", "--jobs", "2", "--seed", str(seed), "--quiet",
            "--cache-dir", str(tmp_path / "cache"), *SMALL]
    r = subprocess.run(base + ["--optimizers", "sgd", "--json", str(tmp_path / "a.json")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(base + ["--plugins", str(mod), "--optimizers", "sgd,momentum", "--json", str(tmp_path / "b.json")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    a, b = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert [o["name"] for o in b["optimizers"]] == ["sgd", "momentum"]
    mom = b["optimizers"][1]
    assert all(c["status"] == "ok" and not c["errors"] for c in mom["cells"]), mom["cells"]
    assert mom["theory_ref"] is None and "measurements only" in mom["theory_note"], mom
    assert b["blocks"]["computed"] == 2 * 2 + 1, b["blocks"]   # momentum's cells and the table, nothing else
    assert b["optimizers"][0]["cells"] == a["optimizers"][0]["cells"]
    assert "momentum" in r.stdout and "blocks of trials computed" in r.stdout, r.stdout
