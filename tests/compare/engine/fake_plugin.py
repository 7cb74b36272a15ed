"""A plugin for the engine's tests: two experiments (one requiring the other), two claims, a figure.

Every trial appends a line to the file named by the FAKE_LOG environment variable (when set), so
tests can count what was computed, in which process; FAKE_WAIT names a file whose absence makes
trial 3 of ``fake.normal`` wait (for kill-and-resume tests).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from compare import stats
from compare.engine.registry import Outcome, claim, experiment, figure, ref
from compare.engine.settings import Settings


def _log(text: str) -> None:
    path = os.environ.get("FAKE_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{text} pid={os.getpid()}\n")


@dataclass(frozen=True, kw_only=True)
class FakeSettings(Settings):
    trials: int = 6
    scale: float = 1.0
    draws: int = 50

    def __post_init__(self):
        if self.trials < 2:
            raise ValueError(f"FakeSettings: argument 'trials' must be >= 2; got {self.trials!r}.")
        if not self.scale > 0:
            raise ValueError(f"FakeSettings: argument 'scale' must be > 0; got {self.scale!r}.")

    @classmethod
    def preset(cls, size: str) -> "FakeSettings":
        return cls(trials=6 if size == "fast" else 12)


@dataclass(frozen=True, kw_only=True)
class PairSettings(Settings):
    base: FakeSettings = FakeSettings()
    shift: float = 0.5

    @classmethod
    def preset(cls, size: str) -> "PairSettings":
        return cls(base=FakeSettings.preset(size))


def _trials(s: FakeSettings) -> int:
    return s.trials


@experiment("fake.normal", settings=FakeSettings, trials=_trials, block=2,
            combine=lambda s, values, deps: np.asarray(values))
def normal_trial(s: FakeSettings, ss: np.random.SeedSequence, deps) -> float:
    i = ss.spawn_key[-1]
    _log(f"normal {i}")
    if i == 3 and os.environ.get("FAKE_WAIT") and not os.path.exists(os.environ["FAKE_WAIT"]):
        _log("waiting")
        while not os.path.exists(os.environ["FAKE_WAIT"]):
            time.sleep(0.05)
    return float(np.random.default_rng(ss).normal(0.0, s.scale, s.draws).mean())


@experiment("fake.shifted", settings=PairSettings, trials=lambda s: s.base.trials,
            requires=lambda s: {"base": ref("fake.normal", s.base)},
            combine=lambda s, values, deps: np.asarray(values))
def shifted_trial(s: PairSettings, ss: np.random.SeedSequence, deps) -> float:
    i = ss.spawn_key[-1]
    _log(f"shifted {i}")
    return float(deps["base"][i] + s.shift)


@claim("Z1", paper_ref="Test 1", theory_ref="T-1", kind="statistical", settings=FakeSettings,
       reads=lambda s: {"x": ref("fake.normal", s)},
       statement="Trial means of normal draws have mean 0 (two-sided t).")
def z1(s: FakeSettings, *, seed: int, x: np.ndarray) -> Outcome:
    a = stats.agreement_samples(x, 0.0, alpha=stats.ALPHA)
    return Outcome.agreement([a.row(trials=s.trials)], source="t test", alpha=stats.ALPHA)


@claim("Z2", paper_ref="Test 2", theory_ref="T-2", kind="ordering", settings=PairSettings,
       reads=lambda s: {"x": ref("fake.normal", s.base), "y": ref("fake.shifted", s)},
       statement="The shifted trials are above the plain ones.")
def z2(s: PairSettings, *, seed: int, x: np.ndarray, y: np.ndarray) -> Outcome:
    o = stats.ordering(y - x, alpha=stats.ALPHA)
    return Outcome.ordering([o.row()], source="paired t", alpha=stats.ALPHA)


@claim("Z3", paper_ref="Test 3", theory_ref="T-3", kind="exact", settings=FakeSettings,
       statement="A claim whose code raises.")
def z3(s: FakeSettings, *, seed: int) -> Outcome:
    raise RuntimeError("deliberate failure in Z3")


@figure("zfig", title=lambda s: f"Fake figure ({s.trials} trials)",
        caption=lambda s: f"Trial means of {s.draws} normal draws, {s.trials} trials.", paper_ref="Test figure",
        settings=FakeSettings, reads=lambda s: {"x": ref("fake.normal", s)}, claims=("Z1",))
def zfig(s: FakeSettings, *, seed: int, x: np.ndarray):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(x.size), x, "o")
    return fig


@experiment("fake.broken", settings=FakeSettings, trials=_trials, block=2)
def broken_trial(s: FakeSettings, ss: np.random.SeedSequence, deps) -> float:
    raise ZeroDivisionError("deliberate failure in fake.broken")


@claim("Z4", paper_ref="Test 4", theory_ref="T-4", kind="statistical", settings=FakeSettings,
       reads=lambda s: {"x": ref("fake.broken", s)}, statement="A claim whose experiment raises.")
def z4(s: FakeSettings, *, seed: int, x) -> Outcome:  # pragma: no cover - never reached
    raise AssertionError("unreachable")


@dataclass(frozen=True, kw_only=True)
class DownSettings(PairSettings):
    shift: float = -0.5

    @classmethod
    def preset(cls, size: str) -> "DownSettings":
        return cls(base=FakeSettings.preset(size))


@claim("Z5", paper_ref="Test 5", theory_ref="T-5", kind="ordering", settings=DownSettings,
       reads=lambda s: {"x": ref("fake.normal", s.base), "y": ref("fake.shifted", s)},
       statement="A statement the data contradict: the shifted trials (shifted down) are above the plain ones.")
def z5(s: DownSettings, *, seed: int, x: np.ndarray, y: np.ndarray) -> Outcome:
    o = stats.ordering(y - x, alpha=stats.ALPHA)
    return Outcome.ordering([o.row()], source="paired t", alpha=stats.ALPHA)
