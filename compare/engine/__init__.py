"""The engine that runs experiments, claims and figures (model-independent).

- :mod:`compare.engine.seeds`: one seed scheme, streams named by path.
- :mod:`compare.engine.settings`: frozen settings dataclasses, presets and ``--set`` overrides.
- :mod:`compare.engine.codec`: results to JSON + arrays and back, executing no code on read.
- :mod:`compare.engine.files`: the one atomic write.
- :mod:`compare.engine.cache`: results on disk keyed by (name, settings, seed, code version), checksummed,
  locked between processes.
- :mod:`compare.engine.registry`: the live registries of experiments, claims and figures.
- :mod:`compare.engine.runner`: experiments first (trial blocks over worker processes or dask), shared by
  every claim and figure that reads them; then the claims and figures.
- :mod:`compare.engine.plugins`: user modules imported in the main process and every worker.
"""
