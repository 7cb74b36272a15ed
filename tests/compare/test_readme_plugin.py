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
