"""The fake plugin, loaded into this process for a test and unregistered afterwards (the live
registries must not keep test claims for the rest of the session)."""

from __future__ import annotations

from pathlib import Path

import pytest

PLUGIN = str(Path(__file__).with_name("fake_plugin.py"))
collect_ignore = ["fake_plugin.py"]


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Load the fake plugin; FAKE_LOG names the file every trial appends to."""
    from compare.engine import codec, plugins
    from compare.engine import registry as R

    log = tmp_path / "trials.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    plugins.load(())  # the built-ins first, so that the teardown below removes the fake plugin's entries only
    before = (set(R.CLAIMS), set(R.EXPERIMENTS), set(R.FIGURES))
    plugins.load([PLUGIN])
    yield log
    for table, keep in zip((R.CLAIMS, R.EXPERIMENTS, R.FIGURES), before):
        for k in set(table) - keep:
            del table[k]
    plugins._LOADED.pop(PLUGIN, None)
    import sys

    sys.modules.pop(plugins._module_name_for(Path(PLUGIN).resolve()), None)
    codec.TRUSTED_MODULES.discard(plugins._module_name_for(Path(PLUGIN).resolve()))
