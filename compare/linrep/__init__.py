"""Linear representation learning (docs/theory.md section 3): experiments, claims and figures.

Importing this package registers them: :mod:`compare.linrep.exact` (C1-C7, exact and per-step
results), :mod:`compare.linrep.experiments` (the sweep and curve runs of Figures 1, 2, 4, 5),
:mod:`compare.linrep.claims` (C14-C20), :mod:`compare.linrep.figures` (fig1, fig2, fig4, fig5),
:mod:`compare.linrep.maps` (the overlays of the maps of C17 and C18).
"""

from compare.linrep import claims, exact, experiments, figures, maps  # noqa: F401  (registrations)
