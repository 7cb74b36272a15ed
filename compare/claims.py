"""The claim registry, filled: every checkable statement of the paper (docs/theory.md section 6).

``CLAIMS`` maps a claim id to its :class:`compare.registry.Claim`; :func:`check` runs one and
returns its record (the keys of DESIGN.md). Claim definitions live in topic modules that are
imported here for their registrations:

- :mod:`compare.claims_linrep`: C1-C7, linear representation learning, exact results.
"""

from __future__ import annotations

import importlib
from typing import Any

from compare.registry import Claim, Outcome, evaluate, registry, register  # noqa: F401

_MODULES = (
    "compare.claims_linrep",
    "compare.claims_single_index",
    "compare.figures_single_index",
    "compare.claims_experiments",
)
for _m in _MODULES:
    importlib.import_module(_m)

def _order_key(claim_id: str) -> tuple:
    head = claim_id.rstrip("0123456789")
    tail = claim_id[len(head):]
    return (head, int(tail) if tail else -1, claim_id)


CLAIMS: dict[str, Claim] = dict(sorted(registry().items(), key=lambda kv: _order_key(kv[0])))


def check(claim_id: str, *, size: str = "fast", seed: int = 0) -> dict[str, Any]:
    """Run claim ``claim_id`` at ``size`` (``"fast"`` or ``"paper"``) with master ``seed``."""
    if claim_id not in CLAIMS:
        raise ValueError(
            f"check: argument 'claim_id' must be one of {', '.join(CLAIMS)}; got {claim_id!r}."
        )
    return evaluate(CLAIMS[claim_id], size=size, seed=seed)
