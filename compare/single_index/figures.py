"""Figure 3 (single-index learning): alignment after one step, theory vs simulation.

Three panels from one-step runs (``single_index.one_step``) on instances of the Figure 3 family: the
alignment vs ``lam_G`` (with the network's own spike), vs the anisotropy ``eps``, and vs ``psi = n/d``;
theory curves from :mod:`theory.single_index` (per-instance deterministic equivalents at the markers,
the limiting law between them), Monte-Carlo means +/- s.e. over the trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compare.engine.registry import figure, ref
from compare.engine.settings import Settings, check_size
from compare.single_index.experiments import (EPS, NOISE, PHI, PSI, STUDENT, TEACHER, TEACHERS, OneStepSettings,
                                              alignment_run)
from compare.single_index.plots import Curve, Figure3Data, figure3
from theory import single_index as ts

FIG_LAMS: tuple[float, ...] = tuple(float(x) for x in np.geomspace(1e-3, 10.0, 13))
FIG_EPS: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
FIG_PSI: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
FIG_LAM_RIGHT = 0.1


@dataclass(frozen=True, kw_only=True)
class Figure3Settings(Settings):
    """Figure 3: dimension ``d``, ``trials`` per point; left panel at (psi, eps) over ``lams``; the
    anisotropy panel over ``eps_grid`` and the data panel over ``psi_grid`` at ``lam_right``."""

    d: int = 1000
    trials: int = 30
    eps: float = EPS
    psi: float = PSI
    phi: float = PHI
    lams: tuple[float, ...] = FIG_LAMS
    eps_grid: tuple[float, ...] = FIG_EPS
    psi_grid: tuple[float, ...] = FIG_PSI
    lam_right: float = FIG_LAM_RIGHT
    teacher: str = TEACHER
    student: str = STUDENT
    noise_std: float = NOISE

    def __post_init__(self):
        self.left()
        for e in self.eps_grid:
            self.point(psi=self.psi, eps=e)
        for p in self.psi_grid:
            self.point(psi=p, eps=self.eps)

    @classmethod
    def preset(cls, size: str) -> "Figure3Settings":
        return cls(d=300 if check_size("Figure3Settings.preset", size) == "fast" else 1000)

    def left(self) -> OneStepSettings:
        return OneStepSettings(d=self.d, eps=self.eps, psi=self.psi, phi=self.phi, lam_G=tuple(self.lams),
                               trials=self.trials, teacher=self.teacher, student=self.student,
                               noise_std=self.noise_std, network=True, population=False)

    def point(self, *, psi: float, eps: float) -> OneStepSettings:
        return OneStepSettings(d=self.d, eps=float(eps), psi=float(psi), phi=self.phi, lam_G=(self.lam_right,),
                               trials=self.trials, teacher=self.teacher, student=self.student,
                               noise_std=self.noise_std, network=False, population=False)


def _reads(s: Figure3Settings) -> dict:
    out = {"left": ref("single_index.one_step", s.left()), "left_inst": ref("single_index.instance", s.left().instance)}
    for i, e in enumerate(s.eps_grid):
        p = s.point(psi=s.psi, eps=e)
        out[f"eps{i}"] = ref("single_index.one_step", p)
        out[f"eps{i}_inst"] = ref("single_index.instance", p.instance)
    for i, q in enumerate(s.psi_grid):
        out[f"psi{i}"] = ref("single_index.one_step", s.point(psi=q, eps=s.eps))
    return out


def _caption(s: Figure3Settings) -> str:
    return (f"Cosine between the learned first-layer spike and beta* after one full-batch step, d = {s.d}, "
            f"N = {s.left().N}, {s.teacher} teacher, {s.student} student, label noise {s.noise_std:g}: Monte-Carlo "
            f"mean +/- s.e. over {s.trials} trials (markers) against the deterministic equivalents (lines): SGD "
            f"(docs/theory.md 4.2) and KFAC (Theorem 3.9, reconstructed). Left: vs lam_G at psi = {s.psi:g}, "
            f"eps = {s.eps:g} (crosses: the network's own top singular vector). Middle: vs the anisotropy eps "
            f"(larger = more anisotropic) at lam_G = {s.lam_right:g}: SGD degrades towards its cap "
            f"cos(Sigma beta*, beta*), KFAC stays accurate. Right: vs psi = n/d at eps = {s.eps:g}: SGD saturates "
            f"at the cap, KFAC does not.")


def _ms(a):
    a = np.asarray(a, dtype=float)
    return a.mean(axis=0), a.std(axis=0, ddof=1) / math.sqrt(a.shape[0])


@figure("fig3", title=lambda s: f"Single-index alignment after one step: SGD vs KFAC, theory vs simulation (d = {s.d})",
        caption=_caption, paper_ref="Figure 3", settings=Figure3Settings, reads=_reads, claims=("C8", "C9", "C11"))
def figure_3(s: Figure3Settings, *, seed: int, left, left_inst, **panels):
    """Figure 3 from its runs (the theory evaluated per instance here)."""
    teacher, noise = TEACHERS.get(s.teacher, s.teacher), s.noise_std  # a name, or tanh2's callable, as theory takes it
    run = alignment_run(s.left(), left_inst, left)
    lam_dense = np.geomspace(min(s.lams), max(s.lams), 200)
    kfac_dense = ts.kfac_alignment(run.inst.t, run.inst.beta, n=run.n, lam_G=lam_dense, teacher=teacher, noise_std=noise)
    sgd_cos = ts.sgd_alignment(run.inst.t, run.inst.beta, n=run.n, teacher=teacher, noise_std=noise)
    m_s, s_s = _ms(left.sgd)
    m_k, s_k = _ms(left.kfac)
    m_n, s_n = _ms(left.kfac_network)
    lcurve = Curve(x=np.asarray(s.lams), x_dense=lam_dense, theory_sgd=np.full(lam_dense.shape, sgd_cos),
                   theory_kfac=np.asarray(kfac_dense), sgd_mean=np.full(len(s.lams), m_s),
                   sgd_se=np.full(len(s.lams), s_s), kfac_mean=m_k, kfac_se=s_k, network_mean=m_n, network_se=s_n,
                   cap=None)

    def sweep(points):
        th_s, th_k, ms_s, ss_s, ms_k, ss_k = ([] for _ in range(6))
        for st, sim, inst in points:
            th_s.append(ts.sgd_alignment(inst.t, inst.beta, n=st.n, teacher=teacher, noise_std=noise))
            th_k.append(float(np.asarray(ts.kfac_alignment(inst.t, inst.beta, n=st.n, lam_G=[s.lam_right],
                                                           teacher=teacher, noise_std=noise))[0]))
            a, b = _ms(sim.sgd)
            ms_s.append(a), ss_s.append(b)
            a, b = _ms(sim.kfac[:, 0])
            ms_k.append(a), ss_k.append(b)
        return th_s, th_k, ms_s, ss_s, ms_k, ss_k

    pts = [(s.point(psi=s.psi, eps=e), panels[f"eps{i}"], panels[f"eps{i}_inst"]) for i, e in enumerate(s.eps_grid)]
    th_s, th_k, ms_s, ss_s, ms_k, ss_k = sweep(pts)
    eps_dense = np.linspace(0.0, max(s.eps_grid), 100)
    dense_s, dense_k = [], []
    for e in eps_dense:  # the limiting law: the curve through the per-instance points
        t, h = ts.two_level_law(e)
        dense_s.append(ts.sgd_alignment_law(t, h=h, g=h, psi=s.psi, teacher=teacher, noise_std=noise))
        dense_k.append(float(ts.kfac_alignment_law(t, h=h, g=h, psi=s.psi, lam_G=s.lam_right, teacher=teacher,
                                                   noise_std=noise)))
    caps = [(t @ h) / math.sqrt((t * t) @ h) for t, h in (ts.two_level_law(e) for e in eps_dense)]
    right = Curve(x=np.asarray(s.eps_grid), x_dense=eps_dense, theory_sgd=np.asarray(dense_s),
                  theory_kfac=np.asarray(dense_k), sgd_mean=np.asarray(ms_s), sgd_se=np.asarray(ss_s),
                  kfac_mean=np.asarray(ms_k), kfac_se=np.asarray(ss_k), network_mean=None, network_se=None,
                  cap=np.asarray(caps), theory_sgd_points=np.asarray(th_s), theory_kfac_points=np.asarray(th_k))

    inst = left_inst
    pts = [(s.point(psi=q, eps=s.eps), panels[f"psi{i}"], inst) for i, q in enumerate(s.psi_grid)]
    th_s, th_k, ms_s, ss_s, ms_k, ss_k = sweep(pts)
    psi_dense = np.geomspace(min(s.psi_grid), max(s.psi_grid), 100)
    dense_s = [ts.sgd_alignment(inst.t, inst.beta, n=p * s.d, teacher=teacher, noise_std=noise) for p in psi_dense]
    dense_k = [float(ts.kfac_alignment(inst.t, inst.beta, n=p * s.d, lam_G=s.lam_right, teacher=teacher,
                                       noise_std=noise)) for p in psi_dense]
    cap = ts.sgd_alignment_cap(inst.t, inst.beta)
    psi_curve = Curve(x=np.asarray(s.psi_grid), x_dense=psi_dense, theory_sgd=np.asarray(dense_s),
                      theory_kfac=np.asarray(dense_k), sgd_mean=np.asarray(ms_s), sgd_se=np.asarray(ss_s),
                      kfac_mean=np.asarray(ms_k), kfac_se=np.asarray(ss_k), network_mean=None, network_se=None,
                      cap=np.full(psi_dense.shape, cap), theory_sgd_points=np.asarray(th_s),
                      theory_kfac_points=np.asarray(th_k))
    return figure3(Figure3Data(left=lcurve, right=right, psi=psi_curve, d=s.d, N=run.N, psi_left=s.psi,
                               eps_left=s.eps, lam_right=s.lam_right, trials=s.trials, teacher=s.teacher,
                               student=s.student, noise_std=noise))
