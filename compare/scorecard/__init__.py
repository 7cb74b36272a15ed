"""The optimizer scorecard (docs/theory.md section 6): experiments (:mod:`.experiments`, :mod:`.table`), claims
C22-C25 (:mod:`.claims`), the figure (:mod:`.figures`); the ``scorecard`` command and ``report --scorecard``
are in :mod:`.command` (imported by the command line). Importing the package registers the rest."""

from compare.scorecard import claims, experiments, figures, table  # noqa: F401  (registrations)
