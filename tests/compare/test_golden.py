"""The verdicts of every claim at ``--size fast``, master seed 0, pinned (numbers may move within their
tolerances, verdicts may not). A change of verdict is a finding to explain, never to re-pin silently:
update ``golden_fast_seed0.json`` only together with the reason in the commit message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare.__main__ import main

GOLDEN = Path(__file__).with_name("golden_fast_seed0.json")


@pytest.mark.slow  # every claim at fast size (~1 minute)
def test_fast_verdicts_at_seed_0_are_pinned(tmp_path, capsys):
    out = tmp_path / "all.json"
    main(["check", "--size", "fast", "--seed", "0", "--quiet", "--no-cache", "--json", str(out)])
    capsys.readouterr()
    got = {r["id"]: {"verdict": r["verdict"], "kind": r["kind"], "alpha_bounds": r["alpha_bounds"]}
           for r in json.loads(out.read_text())}
    want = json.loads(GOLDEN.read_text())
    changed = {cid: (want.get(cid), got.get(cid)) for cid in sorted(set(want) | set(got)) if want.get(cid) != got.get(cid)}
    assert not changed, "verdicts differ from the golden file (expected, got):\n" + "\n".join(
        f"  {cid}: {w} -> {g}" for cid, (w, g) in changed.items())
