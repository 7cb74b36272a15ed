"""README's "What is validated" table is the one the bad-input catalogues generate (not hand-written).

``benchmarks/validation_table.py`` runs every bad input of its catalogues (theory, simulate, the
optimizer factories; compare's when added to ``CATALOGUES``) and lists, per public function and
argument, what was refused by name. A change to a check, or a new function in a catalogue, makes
this test fail until ``python benchmarks/validation_table.py --write`` is run.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module():
    spec = importlib.util.spec_from_file_location("validation_table", os.path.join(ROOT, "benchmarks",
                                                                                   "validation_table.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_readme_table_is_the_generated_one():
    """Generated in a fresh process: some messages list a live registry (experiments, optimizers), which other
    tests in this process may have added to."""
    vt = _module()
    current = vt.readme_table()
    assert current is not None, "README.md has no validation-table markers"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "validation_table.py")], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-3000:]
    new = out.stdout.rstrip("\n")
    m = re.search(r"(\d+) bad inputs .*?; (\d+) \(", new)
    assert m, new[:500]
    total, named = int(m.group(1)), int(m.group(2))
    assert named == total, f"{total - named} of {total} catalogued bad inputs are not refused by name"
    if current.rstrip("\n") != new:
        diff = "\n".join(list(difflib.unified_diff(current.splitlines(), new.splitlines(), "README.md", "generated",
                                                   lineterm=""))[:40])
        pytest.fail("README.md's validation table is out of date: run python benchmarks/validation_table.py "
                    f"--write\n{diff}")


def test_the_table_is_the_same_on_every_machine():
    """The memory size of the machine never enters the table."""
    vt = _module()
    assert vt._normalise("be small enough that x fit in memory (23.5 GiB)") == "small enough that x fit in memory"
    assert vt._normalise("be a 2-D array of real numbers") is None
    assert vt._normalise("be a finite real number in (0, 1]") == "in (0, 1]"
