"""The claims: every checkable statement of the paper (docs/theory.md section 6), live.

``CLAIMS`` is the live registry (:data:`compare.engine.registry.CLAIMS`): a claim registered later
(by a plugin) appears in it at once. :func:`check` runs one claim in this process and returns its
record (the keys of DESIGN.md)::

    >>> from compare import claims
    >>> rec = claims.check("C3", size="fast", seed=0)
    >>> rec["verdict"], rec["kind"]
    ('holds', 'exact')
    >>> claims.check("C7", size="fast", seed=0, settings={"kappa_x": 1000.0})["settings"]["kappa_x"]
    1000.0
"""

from __future__ import annotations

from typing import Any, Mapping

from compare.engine import plugins as _plugins
from compare.engine import registry as _registry
from compare.engine.registry import Outcome, claim, ref  # noqa: F401  (the API a claim module uses)

_plugins.load()
CLAIMS: dict[str, _registry.Claim] = _registry.CLAIMS


def check(claim_id: str, *, size: str = "fast", seed: int = 0, settings: Mapping[str, Any] | None = None,
          plugins: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run claim ``claim_id`` at preset ``size`` with master ``seed`` in this process (no cache).

    settings: overrides ``{name: value}`` of the claim's settings (a leaf name such as ``"noise_std"``
        or a dotted path; unknown names raise ``ValueError`` listing the valid ones).
    plugins: modules to import first (their claims become checkable).
    """
    from compare.engine import runner

    specs = _plugins.check_specs("check", "plugins", plugins)
    _plugins.load(specs)
    job = runner._job("check", "claim", claim_id, size, seed, settings, True, arg="settings", name_arg="claim_id")
    return runner.run([job], workers=1, plugins=specs).results[job]
