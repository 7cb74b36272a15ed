"""Linear representation learning (docs/theory.md section 3): claims, experiments and figures.

Importing this package registers them: :mod:`compare.linrep.exact` (C1-C7, exact and per-step
results).
"""

from compare.linrep import exact  # noqa: F401  (registrations)
