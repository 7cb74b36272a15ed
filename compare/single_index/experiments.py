r"""Single-index experiments (docs/theory.md section 4): problem instances and one-step runs.

Three registered experiments, pure functions of ``(settings, seed)`` run by the engine in blocks of
trials and shared by every claim and figure that reads them:

- ``single_index.instance`` (:class:`InstanceSettings`): one problem, the Figure 3 family of
  docs/theory.md section 5: two-level spectrum 1 and :math:`1-\epsilon` rescaled to mean 1, Haar
  eigenbasis, :math:`\beta^*` Gaussian scaled to :math:`s^2=\beta^{*\top}\Sigma\beta^*=1`, returned as
  the eigenvalues of :math:`\Sigma` and :math:`\tilde\beta=O^\top\beta^*` (so neither theory nor
  simulation repeats a :math:`d\times d` eigendecomposition);
- ``single_index.one_step`` (:class:`OneStepSettings`): :func:`simulate.single_index.one_step` on that
  instance (the SGD, KFAC and population-preconditioner spikes, the network's own spike, the companion
  trace), trials in blocks;
- ``single_index.test_error`` (:class:`TestErrorSettings`): test MSE after one normalised step and a ridge
  head (C13).

Streams: ``stream(seed, "single_index.instance")`` and ``stream(seed, "single_index.one_step", d)``:
trial ``i`` of every setting of one dimension ``d`` shares its seed (common random numbers across the
points of a sweep), and runs at different ``d`` are independent, as :func:`compare.stats.richardson`
assumes of the runs at ``d`` and ``2d`` it combines (with one stream for every ``d``, X at ``2d`` reused
the normals of X at ``d``: measured per-trial correlations up to 0.34 between the two runs of a pair).

Defaults [R] (docs/theory.md Figure 3): :math:`\psi=2`, :math:`N=d/2`, tanh teacher and student,
:math:`\sigma_\varepsilon=0.1`, :math:`\epsilon=0.9`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from compare.engine.registry import experiment, ref
from compare.engine.settings import Settings
from simulate import data as sd
from simulate import single_index as ss

#: the anisotropy of the headline setting (two-level ratio r = 1 - eps = 0.1).
EPS = 0.9
PSI = 2.0
PHI = 0.5            # N / d
NOISE = 0.1
TEACHER = "tanh"
STUDENT = "tanh"
CLAIM_LAMS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: trials per stored block (a killed run loses at most one block per worker).
BLOCK = 20


def tanh2(z: np.ndarray) -> np.ndarray:
    """The teacher :math:`\\sigma^*(z)=\\tanh 2z` of docs/theory.md's test-error protocol."""
    return np.tanh(2.0 * z)


TEACHERS: dict[str, Any] = {"tanh2": tanh2}


def blas_threads_for(d: int) -> int | None:
    """BLAS threads per trial in a serial run: 1 for small problems (a multi-threaded BLAS under
    contention on a shared 2-core machine made 300 x 300 Cholesky factorisations 50x slower), the
    library default above d = 500."""
    return 1 if d <= 500 else None


def _check(cls: str, obj: Any, *, ints: tuple[str, ...] = (), positive: tuple[str, ...] = ()) -> None:
    for n in ints:
        v = getattr(obj, n)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{cls}: argument '{n}' must be a positive integer; got {v!r}.")
    for n in positive:
        v = getattr(obj, n)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < float(v) < math.inf:
            raise ValueError(f"{cls}: argument '{n}' must be a positive number; got {v!r}.")


def _check_eps(cls: str, eps: Any) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= float(eps) < 1.0:
        raise ValueError(f"{cls}: argument 'eps' must be in [0, 1); got {eps!r}.")


# --------------------------------------------------------------------------- instances
@dataclass(frozen=True, kw_only=True)
class InstanceSettings(Settings):
    """One problem of dimension ``d`` and anisotropy ``eps``, with ``teachers`` teacher directions."""

    d: int = 1000
    eps: float = EPS
    teachers: int = 1

    def __post_init__(self):
        _check("InstanceSettings", self, ints=("d", "teachers"))
        _check_eps("InstanceSettings", self.eps)

    @classmethod
    def preset(cls, size: str) -> "InstanceSettings":
        return cls(d=300 if size == "fast" else 1000)


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One problem: eigenvalues ``t`` of Sigma and beta* in its eigenbasis (``beta``), s = 1; ``more``: the
    further teachers (d, K - 1) drawn the same way (``None`` for one teacher)."""

    t: np.ndarray
    beta: np.ndarray
    eps: float
    more: np.ndarray | None = None

    @property
    def teachers(self) -> list[np.ndarray]:
        """Every teacher direction, beta* first."""
        return [self.beta] + ([] if self.more is None else list(self.more.T))

    @property
    def d(self) -> int:
        return int(self.t.size)


def draw_instance(d: int, eps: float, rng: np.random.Generator, *, teachers: int = 1) -> Instance:
    """Sigma (two-level, Haar basis) and beta* (Gaussian, :math:`\\beta^{*\\top}\\Sigma\\beta^*=1`)."""
    Sigma = sd.anisotropic_covariance(d, eps=eps, rng=rng)
    beta = rng.standard_normal(d)
    t, O = np.linalg.eigh(Sigma)
    bt = O.T @ beta
    bt /= math.sqrt(float((t * bt) @ bt))
    more = None
    if teachers > 1:  # drawn after beta*: the first teacher is that of a one-teacher instance
        more = O.T @ rng.standard_normal((d, teachers - 1))
        more /= np.sqrt(np.einsum("d,dk,dk->k", t, more, more))[None, :]
    return Instance(t=t, beta=bt, eps=float(eps), more=more)


@experiment("single_index.instance", settings=InstanceSettings, trials=lambda s: 1,
            combine=lambda s, values, deps: values[0], threads=lambda s: blas_threads_for(s.d),
            cost=lambda s: (s.d / 1000) ** 3)
def instance_trial(s: InstanceSettings, ss_: np.random.SeedSequence, deps) -> Instance:
    return draw_instance(s.d, s.eps, np.random.default_rng(ss_), teachers=s.teachers)


# --------------------------------------------------------------------------- one-step runs
class OneStepSizes:
    """The sizes every one-step setting derives from its fields ``d``, ``eps``, ``psi``, ``phi`` (and ``teachers``
    when it has one): n = round(psi d) samples, N = round(phi d) neurons, and the instance (d, eps, teachers)."""

    @property
    def n(self) -> int:
        return max(1, int(round(self.psi * self.d)))

    @property
    def N(self) -> int:
        return max(1, int(round(self.phi * self.d)))

    @property
    def instance(self) -> InstanceSettings:
        return InstanceSettings(d=self.d, eps=self.eps, teachers=getattr(self, "teachers", 1))


@dataclass(frozen=True, kw_only=True)
class OneStepSettings(Settings, OneStepSizes):
    """One-step runs on one instance: n = round(psi d), N = round(phi d), ridges ``lam_G``; every trial averages
    over the instance's ``teachers`` teachers (the network's spikes over the first ``network_teachers``;
    :func:`simulate.single_index.one_step` ``more_teachers``)."""

    d: int = 1000
    eps: float = EPS
    psi: float = PSI
    phi: float = PHI
    lam_G: tuple[float, ...] = CLAIM_LAMS
    trials: int = 30
    teacher: str = TEACHER
    student: str = STUDENT
    noise_std: float = NOISE
    network: bool = True
    population: bool = True
    teachers: int = 1
    network_teachers: int = 1

    def __post_init__(self):
        _check("OneStepSettings", self, ints=("d", "trials", "teachers", "network_teachers"), positive=("psi", "phi"))
        if self.network_teachers > self.teachers:
            raise ValueError(f"OneStepSettings: argument 'network_teachers' must be at most teachers = "
                             f"{self.teachers}; got {self.network_teachers!r}.")
        _check_eps("OneStepSettings", self.eps)
        if not self.lam_G or any(isinstance(v, bool) or not 0.0 <= float(v) < math.inf for v in self.lam_G):
            raise ValueError(f"OneStepSettings: argument 'lam_G' must be ridges >= 0; got {self.lam_G!r}.")
        if self.teacher not in ss.TEACHERS and self.teacher not in TEACHERS:
            raise ValueError(f"OneStepSettings: argument 'teacher' must be one of "
                             f"{sorted(ss.TEACHERS) + sorted(TEACHERS)}; got {self.teacher!r}.")
        if self.student not in ss.STUDENTS:
            raise ValueError(f"OneStepSettings: argument 'student' must be one of {sorted(ss.STUDENTS)}; "
                             f"got {self.student!r}.")
        if isinstance(self.noise_std, bool) or not 0.0 <= float(self.noise_std) < math.inf:
            raise ValueError(f"OneStepSettings: argument 'noise_std' must be >= 0; got {self.noise_std!r}.")

    @classmethod
    def preset(cls, size: str) -> "OneStepSettings":
        return cls(d=300 if size == "fast" else 1000)



def _teacher(name: str):
    return TEACHERS.get(name, name)


def _one_step_stream(s: OneStepSettings) -> tuple:
    """The trials' stream: one per dimension (module docstring)."""
    return ("single_index.one_step", s.d)


@experiment("single_index.one_step", settings=OneStepSettings, trials=lambda s: s.trials,
            requires=lambda s: {"inst": ref("single_index.instance", s.instance)}, stream=_one_step_stream,
            combine=lambda s, blocks, deps: ss.concatenate(blocks), block=BLOCK, batched=True,
            threads=lambda s: blas_threads_for(s.d), cost=lambda s: (s.d / 1000) ** 3 * (1 + (0.5 * s.network_teachers if s.network else 0.0)))
def one_step_block(s: OneStepSettings, seeds: list, deps) -> ss.OneStepResult:
    inst: Instance = deps["inst"]
    return ss.one_step(inst.t, inst.beta, n=s.n, N=s.N, lam_G=np.asarray(s.lam_G, dtype=float),
                       teacher=_teacher(s.teacher), noise_std=s.noise_std, trials=len(seeds), seed=list(seeds),
                       student=s.student, network=s.network, population=s.population,
                       **({"more_teachers": inst.more, "network_teachers": s.network_teachers} if inst.more is not None
                          else {}))


@dataclass(frozen=True, kw_only=True)
class AlignmentRun:
    """A one-step run with its instance: what the claims and Figure 3 evaluate theory on.

    inst: the instance. n, N: batch size and width. lam_G: (L,) ridges. sim: the simulation result.
    teacher, student, noise_std: the model.
    """

    inst: Instance
    n: int
    N: int
    lam_G: np.ndarray
    sim: ss.OneStepResult
    teacher: str
    student: str
    noise_std: float


def alignment_run(s: OneStepSettings, inst: Instance, sim: ss.OneStepResult) -> AlignmentRun:
    return AlignmentRun(inst=inst, n=s.n, N=s.N, lam_G=np.asarray(s.lam_G, dtype=float), sim=sim, teacher=s.teacher,
                        student=s.student, noise_std=float(s.noise_std))


# --------------------------------------------------------------------------- test error (C13)
@dataclass(frozen=True, kw_only=True)
class TestErrorSettings(Settings):
    """docs/theory.md's test-error protocol [R]: teacher tanh(2z), n = 2d, n_head = n_test = 5d, N = d,
    one step normalised to top singular value ``spike_norm``, ridge head ``lam_F``."""

    __test__ = False  # not a pytest class

    d: int = 400
    eps: float = EPS
    trials: int = 20
    lam_G: float = 0.1
    lam_F: float = 1e-3
    spike_norm: float = 5.0
    teacher: str = "tanh2"
    student: str = STUDENT
    noise_std: float = NOISE

    def __post_init__(self):
        _check("TestErrorSettings", self, ints=("d", "trials"), positive=("lam_G", "lam_F", "spike_norm"))
        _check_eps("TestErrorSettings", self.eps)

    @classmethod
    def preset(cls, size: str) -> "TestErrorSettings":
        return cls(d=150 if size == "fast" else 400)

    @property
    def instance(self) -> InstanceSettings:
        return InstanceSettings(d=self.d, eps=self.eps)


@experiment("single_index.test_error", settings=TestErrorSettings, trials=lambda s: s.trials,
            requires=lambda s: {"inst": ref("single_index.instance", s.instance)},
            combine=lambda s, blocks, deps: ss.concatenate(blocks), block=BLOCK, batched=True,
            threads=lambda s: blas_threads_for(s.d), cost=lambda s: 3 * (s.d / 1000) ** 3)
def step_mse_block(s: TestErrorSettings, seeds: list, deps) -> ss.StepMSEResult:
    inst: Instance = deps["inst"]
    d = s.d
    return ss.one_step_test_error(inst.t, inst.beta, n=2 * d, n_head=5 * d, n_test=5 * d, N=d, lam_G=[s.lam_G],
                                  lam_F=s.lam_F, teacher=_teacher(s.teacher), noise_std=s.noise_std,
                                  trials=len(seeds), seed=list(seeds), student=s.student, spike_norm=s.spike_norm)
