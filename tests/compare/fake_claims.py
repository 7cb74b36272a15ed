"""Test-only claims Z1-Z4 and figure ``zfig``, loaded by ``--claims-module`` in subprocesses.

Never imported by the package (and kept out of pytest collection by tests/compare/conftest.py):
registering these in the test process would add them to every other test's registry.

Environment knobs (read at call time):
- ``FAKE_CLAIMS_LOG``: file to which every claim start and every trial appends a line, so a test
  can see what a run computed and what it reused from the cache.
- ``FAKE_CLAIMS_BLOCK``: when set, trial 4 of Z2 logs ``waiting`` and waits until this file exists
  (at most 120 s): a run can be killed deterministically in the middle of Z2's sweep.
"""

from __future__ import annotations

import os
import time

import numpy as np

from compare import stats
from compare.cache import cached_map
from compare.registry import Outcome, register, register_figure
from simulate.trials import spawn_generators, spawn_seeds

TRIALS, BLOCK = 6, 2


def _log(msg: str) -> None:
    path = os.environ.get("FAKE_CLAIMS_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(msg + "\n")
            fh.flush()


def _trial(ss: np.random.SeedSequence) -> float:
    """One trial: the mean of 50 standard normals (mean 0, variance 1/50)."""
    i = ss.spawn_key[-1]
    _log(f"trial {i}")
    block = os.environ.get("FAKE_CLAIMS_BLOCK")
    if block and i == 4:
        _log("waiting")
        deadline = time.monotonic() + 120
        while not os.path.exists(block) and time.monotonic() < deadline:
            time.sleep(0.05)
    return float(np.random.default_rng(ss).standard_normal(50).mean())


@register("Z1", paper_ref="Test 1", theory_ref="T-1", kind="exact", reconstructed=False,
          statement="Two evaluations of the same draw agree exactly.")
def z1(*, size: str, seed: int) -> Outcome:
    _log("start Z1")
    rng, = spawn_generators(seed, 1)
    x = rng.standard_normal(100)
    m = float(x.sum())
    return Outcome(m, float(np.sum(x)), None, 0.0, None, True, "exact equality", ({"n": 100, "sum": m},))


@register("Z2", paper_ref="Test 2", theory_ref="T-2", kind="statistical", figure="zfig",
          statement="The mean of standard normal trial means is 0 (t test, alpha = 1e-3).")
def z2(*, size: str, seed: int) -> Outcome:
    _log("start Z2")
    means = np.array(cached_map(_trial, spawn_seeds(seed, TRIALS), key={"what": "fake-Z2", "size": size},
                                block=BLOCK))
    m, se = stats.mean_se(means)
    from scipy.stats import t as student_t

    tol = float(student_t.ppf(1 - 1e-3 / 2, TRIALS - 1)) * se  # two-sided t (5 df) at alpha = 1e-3
    return Outcome(0.0, float(m), float(se), tol, 1e-3, abs(m) <= tol, "t_{0.9995, 5} standard errors (alpha = 1e-3)",
                   tuple({"trial": i, "mean": float(v)} for i, v in enumerate(means)))


@register("Z3", paper_ref="Test 3", theory_ref="T-3", kind="ordering",
          statement="A statement of the paper the reconstructed setting contradicts.")
def z3(*, size: str, seed: int) -> Outcome:
    _log("start Z3")
    return Outcome(1.0, 0.5, None, 0.1, None, False, "stated bound 0.1", verdict="contradicted")


@register("Z4", paper_ref="Test 4", theory_ref="T-4", kind="exact",
          statement="A claim that fails.")
def z4(*, size: str, seed: int) -> Outcome:
    _log("start Z4")
    return Outcome(1.0, 2.0, None, 0.1, None, False, "stated bound 0.1")


@register("Z5", paper_ref="Test 5", theory_ref="T-5", kind="exact",
          statement="A claim whose code raises.")
def z5(*, size: str, seed: int) -> Outcome:
    _log("start Z5")
    raise RuntimeError("deliberate failure in Z5")


@register_figure("zfig", title="Fake figure", caption="Trial means with a standard-error band.",
                 paper_ref="Test figure", claims=("Z1",))
def zfig(*, size: str, seed: int, jobs: int = 1, scheduler=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _log("start zfig")
    rng, = spawn_generators(seed + 1, 1)
    y = rng.standard_normal((20, 30)).cumsum(axis=1)
    m, se = y.mean(axis=0), y.std(axis=0, ddof=1) / np.sqrt(y.shape[0])
    fig, ax = plt.subplots(figsize=(5, 3))
    t = np.arange(y.shape[1])
    ax.plot(t, np.zeros_like(t, dtype=float), "k--", label="theory")
    ax.plot(t, m, label="simulation")
    ax.fill_between(t, m - se, m + se, alpha=0.3)
    ax.legend()
    return fig
