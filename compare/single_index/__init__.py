"""Single-index learning (docs/theory.md section 4): experiments, claims and figures.

Importing this package registers them: :mod:`compare.single_index.experiments` (instances, one-step
runs, test error), :mod:`compare.single_index.claims` (C8-C13, C21), :mod:`compare.single_index.figures`
(fig3).
"""

from compare.single_index import claims, experiments, figures  # noqa: F401  (registrations)
