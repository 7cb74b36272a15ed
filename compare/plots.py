"""Figures: one function per figure, each returning a matplotlib Figure.

The plotting functions live in topic modules and are re-exported here; the report only
arranges them. Data in, Figure out: no function here runs an experiment.
"""

from __future__ import annotations

import importlib

_MODULES = ("compare.plots_single_index", "compare.plots_linrep")  # e.g. "compare.plots_linrep", "compare.plots_single_index"

__all__: list[str] = []
for _m in _MODULES:
    _mod = importlib.import_module(_m)
    for _name in getattr(_mod, "__all__", ()):
        globals()[_name] = getattr(_mod, _name)
        __all__.append(_name)
