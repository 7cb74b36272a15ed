r"""Matrix-preconditioned optimizers for :math:`f(x) = FGx`: Shampoo, Muon, SOAP, and diagonal AdaGrad.

Each rule is the published algorithm applied literally, as a framework optimizer applies it: at every
step both layers take the simultaneous gradients of the batch loss
:math:`\hat L = \frac1{2n}\sum_i\lVert y_i - FGx_i\rVert^2` at the current :math:`(F, G)`,

.. math::

    g_G = F^\top(FG\hat\Sigma_x - \hat\Sigma_{yx}),\qquad g_F = F\hat\Sigma_z - \hat\Sigma_{yz},

and each layer :math:`W\in\{F, G\}` keeps its own preconditioner state.

- ``shampoo`` (Gupta, Koren & Singer 2018, Algorithm 1):
  :math:`L\leftarrow L + gg^\top`, :math:`R\leftarrow R + g^\top g`, :math:`L_0 = R_0 = \epsilon I`,
  :math:`W\leftarrow W - \eta L^{-1/4}gR^{-1/4}` (``beta2`` in (0, 1): exponential moving averages).
- ``muon`` (Jordan et al. 2024): momentum :math:`B\leftarrow\mu B + g`, Nesterov :math:`u = g + \mu B`,
  five quintic Newton-Schulz iterations :math:`X\leftarrow aX + (bA + cA^2)X`, :math:`A = XX^\top`,
  from :math:`X_0 = u/(\lVert u\rVert_F + 10^{-7})` (an approximation of the polar factor
  :math:`UV^\top` of :math:`u = USV^\top`), :math:`W\leftarrow W - \eta\sqrt{\max(1, m/n)}\,X`.
- ``soap`` (Vyas et al. 2024, Algorithm 3 and the authors' reference implementation): Adam run in the
  eigenbasis :math:`Q_L, Q_R` of Shampoo's factors (exponential moving averages), refreshed every
  ``precondition_frequency`` steps.
- ``adagrad`` (Duchi, Hazan & Singer 2011, diagonal): :math:`a\leftarrow a + g\odot g`,
  :math:`W\leftarrow W - \eta\,g/(\sqrt a + \epsilon)`.

Arithmetic is float64 throughout (the references run Muon's iteration in bfloat16 and SOAP in float32).
Equivariance: Shampoo and Muon commute with a rotation of the inputs :math:`x\to Ox` (:math:`g_G\to g_GO^\top`
maps :math:`R\to ORO^\top` and the polar factor to :math:`UV^\top O^\top`); AdaGrad does not (entry-wise);
SOAP's step commutes with it except when it computes an eigenbasis of a rank-deficient factor (the null-space
basis is arbitrary and Adam's entry-wise step depends on it): always at the first call (:math:`R_G` has rank
:math:`\le k < d_x`), and at refreshes before :math:`R_G` is numerically full rank, so a run is equivariant only
from the call after its last such basis on (tests/simulate/test_optimizers_new.py measures it).

This module imports nothing from :mod:`simulate.optimizers` at load time (that module imports this one to
register the rules); the gradients are taken from it when a step runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from simulate import _validate as V

#: Muon's quintic Newton-Schulz coefficients (a, b, c) (Jordan et al. 2024).
NS_COEFFICIENTS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)


def _gradients(F: np.ndarray, G: np.ndarray, batch: Any) -> tuple[np.ndarray, np.ndarray]:
    """(grad_F, grad_G) of the batch loss at (F, G): :func:`simulate.optimizers.grad_F`, ``grad_G``."""
    from simulate.optimizers import _grad_F, _grad_G  # late: simulate.optimizers imports this module

    return _grad_F(F, G, batch)[0], _grad_G(F, G, batch)


def _sym(A: np.ndarray) -> np.ndarray:
    return 0.5 * (A + A.T)


def _inverse_root(S: np.ndarray, ridge: float, p: float) -> np.ndarray:
    lam, U = np.linalg.eigh(_sym(S))
    top = lam[-1] if lam.size else 0.0
    lam = np.where(lam > lam.size * np.finfo(float).eps * max(top, 0.0), lam, 0.0)
    return (U * (lam + ridge) ** (-1.0 / p)) @ U.T


def inverse_root(S: np.ndarray, ridge: float, p: float) -> np.ndarray:
    r""":math:`(\rho I + S)^{-1/p}` for a symmetric positive semi-definite ``S`` and a ridge :math:`\rho > 0`.

    By the symmetric eigendecomposition :math:`S = U\Lambda U^\top` (never an inverse): the result is
    :math:`U(\rho + \Lambda_+)^{-1/p}U^\top`. Splitting the ridge off keeps the factor's smallest eigenvalues
    right: ``eigh`` resolves the eigenvalues of :math:`S` only to about :math:`d\,u\lVert S\rVert` (Weyl), so
    computed eigenvalues at or below :math:`d\,u\,\lambda_{\max}` (including the slightly negative ones a
    semi-definite :math:`S` produces) are indistinguishable from 0 and are set to 0 (:math:`\Lambda_+`): the
    null space of a rank-deficient factor gets exactly :math:`\rho^{-1/p}`, every eigenvalue used is
    :math:`\ge\rho`, and ill-conditioned factors stay finite and positive-definite.
    """
    f = "inverse_root"
    S = V.psd(f, "S", S)
    return _inverse_root(S, V.scalar(f, "ridge", ridge, low=0.0, low_open=True),
                         V.scalar(f, "p", p, low=0.0, low_open=True))


#: most Newton-Schulz iterations accepted (the quintic's singular values settle in [0.7, 1.2] within ~10).
MAX_NS_STEPS = 100


def newton_schulz(u: np.ndarray, steps: int) -> np.ndarray:
    r"""Muon's orthogonalisation: :math:`X_0 = u/(\lVert u\rVert_F + 10^{-7})` (transposed when it has more
    rows than columns), ``steps`` iterations :math:`X\leftarrow aX + (bA + cA^2)X`, :math:`A = XX^\top`, with
    :data:`NS_COEFFICIENTS`, transposed back. Singular values :math:`s\mapsto p(s) = as + bs^3 + cs^5`
    (each iteration); :math:`a + bs^2 + cs^4` has no real root, so :math:`p(s) > 0` for :math:`s > 0`.
    u: a finite non-empty real matrix. steps: an integer in [0, :data:`MAX_NS_STEPS`]."""
    f = "newton_schulz"
    return _newton_schulz(V.matrix(f, "u", u), V.integer(f, "steps", steps, low=0, high=MAX_NS_STEPS))


def _newton_schulz(u: np.ndarray, steps: int) -> np.ndarray:
    a, b, c = NS_COEFFICIENTS
    X = u / (np.linalg.norm(u) + 1e-7)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if tall else X


def polar_factor(u: np.ndarray) -> np.ndarray:
    r"""The polar factor :math:`UV^\top` of :math:`u = USV^\top` (thin SVD). Singular values at or below
    :math:`\max(m, n)\,u_{\text{mach}}\,s_1` are treated as zero (their singular vectors are not determined),
    so a rank-deficient :math:`u` gives the partial isometry on its range, as the Newton-Schulz limit does.
    u: a finite non-empty real matrix."""
    return _polar_factor(V.matrix("polar_factor", "u", u))


def _polar_factor(u: np.ndarray) -> np.ndarray:
    U, s, Vt = np.linalg.svd(u, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return np.zeros_like(u)
    keep = s > max(u.shape) * np.finfo(float).eps * s[0]
    return U[:, keep] @ Vt[keep]


def _num(func: str, name: str, x, **interval) -> float:
    return V.scalar(func, name, x, **interval)


def _lr(func: str, lr) -> float:
    return _num(func, "lr", lr, low=0.0, low_open=True)


def _label(opt: Any) -> str:
    """``optimizer '<name>'`` (the FUNCTION of the messages about an optimizer's options), name checked."""
    name = getattr(opt, "name", None)
    V.check(isinstance(name, str) and bool(name), type(opt).__name__, "name", "a non-empty string",
            V.describe(name))
    return f"optimizer {name!r}"


# --------------------------------------------------------------------------- Shampoo
@dataclass(frozen=True)
class ShampooState:
    r"""Shampoo's factors after ``t`` steps, per layer: :math:`L = \rho I + \text{left}`,
    :math:`R = \rho I + \text{right}`, with ``left`` :math:`=\sum gg^\top` and ``right`` :math:`=\sum g^\top g`
    (or their moving averages) and the ridge :math:`\rho` (:math:`\epsilon`, or :math:`\beta_2^t\epsilon`
    with moving averages) kept apart so the eigenvalues of the factors are never below it."""

    t: int
    ridge: float
    left_F: np.ndarray
    right_F: np.ndarray
    left_G: np.ndarray
    right_G: np.ndarray


@dataclass(frozen=True)
class Shampoo:
    r"""Shampoo (Gupta, Koren & Singer 2018, Algorithm 1) on each layer :math:`W\in\{F, G\}`:

    .. math::

        L_t = L_{t-1} + g_tg_t^\top,\quad R_t = R_{t-1} + g_t^\top g_t,\quad L_0 = R_0 = \epsilon I,\quad
        W_{t+1} = W_t - \eta\,L_t^{-1/4}g_tR_t^{-1/4};

    with ``beta2`` in (0, 1) the sums are exponential moving averages
    :math:`L_t = \beta_2L_{t-1} + (1-\beta_2)g_tg_t^\top` (from the same :math:`L_0 = \epsilon I`).
    Inverse fourth roots by :func:`inverse_root` (symmetric eigendecomposition).

    lr: :math:`\eta > 0`. eps > 0: initial ridge :math:`\epsilon` (default 1e-4). beta2: ``None`` (sums, as
    written) or in (0, 1).
    """

    lr: float
    eps: float = 1e-4
    beta2: float | None = None
    name: str = "shampoo"

    def __post_init__(self):
        f = _label(self)
        _lr(f, self.lr)
        _num(f, "eps", self.eps, low=0.0, low_open=True)
        if self.beta2 is not None:
            _num(f, "beta2", self.beta2, low=0.0, high=1.0, low_open=True, high_open=True)

    def init(self, F, G):
        d_y, k = F.shape
        d_x = G.shape[1]
        z = np.zeros
        return ShampooState(0, float(self.eps), z((d_y, d_y)), z((k, k)), z((k, k)), z((d_x, d_x)))

    def step(self, F, G, batch, state):
        gF, gG = _gradients(F, G, batch)
        if self.beta2 is None:
            keep, add, ridge = 1.0, 1.0, state.ridge
        else:
            keep, add, ridge = self.beta2, 1.0 - self.beta2, self.beta2 * state.ridge
        lF = keep * state.left_F + add * (gF @ gF.T)
        rF = keep * state.right_F + add * (gF.T @ gF)
        lG = keep * state.left_G + add * (gG @ gG.T)
        rG = keep * state.right_G + add * (gG.T @ gG)
        F_new = F - self.lr * (_inverse_root(lF, ridge, 4) @ gF @ _inverse_root(rF, ridge, 4))
        G_new = G - self.lr * (_inverse_root(lG, ridge, 4) @ gG @ _inverse_root(rG, ridge, 4))
        return F_new, G_new, ShampooState(state.t + 1, ridge, lF, rF, lG, rG)


# --------------------------------------------------------------------------- Muon
@dataclass(frozen=True)
class MuonState:
    """Muon's momentum buffers :math:`B` per layer (zero at the start)."""

    B_F: np.ndarray
    B_G: np.ndarray


@dataclass(frozen=True)
class Muon:
    r"""Muon (Jordan et al. 2024) on each layer :math:`W\in\{F, G\}` (:math:`m\times n`):

    .. math::

        B\leftarrow\mu B + g,\quad u = g + \mu B\ (\text{Nesterov; else } u = B),\quad
        W\leftarrow W - \eta\sqrt{\max(1, m/n)}\;\mathrm{NS}_5(u),

    with :math:`\mathrm{NS}_5` the quintic Newton-Schulz orthogonalisation (:func:`newton_schulz`).

    lr: :math:`\eta > 0`. momentum: :math:`\mu` in [0, 1) (0.95). nesterov: bool (True). ns_steps: integer
    >= 1 (5). exact_polar: True replaces :math:`\mathrm{NS}_5(u)` by the exact polar factor
    :math:`UV^\top` of :math:`u` (:func:`polar_factor`, from an SVD).
    """

    lr: float
    momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5
    exact_polar: bool = False
    name: str = "muon"

    def __post_init__(self):
        f = _label(self)
        _lr(f, self.lr)
        _num(f, "momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        V.flag(f, "nesterov", self.nesterov)
        V.integer(f, "ns_steps", self.ns_steps, low=1, high=MAX_NS_STEPS)
        V.flag(f, "exact_polar", self.exact_polar)

    def init(self, F, G):
        return MuonState(np.zeros_like(F), np.zeros_like(G))

    def _layer(self, W, g, B):
        B = self.momentum * B + g
        u = g + self.momentum * B if self.nesterov else B
        X = _polar_factor(u) if self.exact_polar else _newton_schulz(u, self.ns_steps)
        m, n = W.shape
        return W - self.lr * np.sqrt(max(1.0, m / n)) * X, B

    def step(self, F, G, batch, state):
        gF, gG = _gradients(F, G, batch)
        F_new, B_F = self._layer(F, gF, state.B_F)
        G_new, B_G = self._layer(G, gG, state.B_G)
        return F_new, G_new, MuonState(B_F, B_G)


# --------------------------------------------------------------------------- SOAP
@dataclass(frozen=True)
class SOAPLayer:
    r"""SOAP's state of one layer: Shampoo's factors ``L``, ``R`` (moving averages), the eigenbases ``QL``,
    ``QR``, and Adam's moments in the rotated basis, ``m`` (first) and ``v`` (second)."""

    L: np.ndarray
    R: np.ndarray
    QL: np.ndarray
    QR: np.ndarray
    m: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class SOAPState:
    """SOAP's state: ``t`` Adam steps taken, ``started`` once the first call has set the factors and bases,
    and one :class:`SOAPLayer` per layer."""

    t: int
    started: bool
    F: SOAPLayer
    G: SOAPLayer


@dataclass(frozen=True)
class SOAP:
    r"""SOAP (Vyas et al. 2024): Adam in the eigenbasis of Shampoo's factors, on each layer :math:`W`,
    as in Algorithm 3 and the authors' reference implementation (``nikhilvyas/SOAP``, ``soap.py``):

    - First call: :math:`L = (1-\beta_s)gg^\top`, :math:`R = (1-\beta_s)g^\top g`, :math:`Q_L, Q_R` their
      eigenvectors (``eigh``, eigenvalues descending); **no parameter update** (the reference skips the first
      step so that the current gradient never enters its own projection).
    - Every later call, :math:`t = 1, 2, \dots` (Adam steps):

      .. math::

          g' = Q_L^\top gQ_R,\quad m' \leftarrow\beta_1m' + (1-\beta_1)g',\quad
          v' \leftarrow\beta_2v' + (1-\beta_2)g'\odot g',\\
          W \leftarrow W - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\;
          Q_L\frac{m'}{\sqrt{v'} + \epsilon}Q_R^\top,

      then, after the step, :math:`L\leftarrow\beta_sL + (1-\beta_s)gg^\top`,
      :math:`R\leftarrow\beta_sR + (1-\beta_s)g^\top g`; when :math:`t` is a multiple of
      ``precondition_frequency`` the bases are refreshed: the columns of each old basis are sorted by
      the estimated eigenvalues :math:`\mathrm{diag}(Q^\top PQ)` (descending), the rows (for :math:`Q_L`)
      or columns (for :math:`Q_R`) of :math:`v'` are permuted the same way, and the new basis is the
      eigenvectors of :math:`P` (``refresh="eigh"``, descending eigenvalues) or the reference's one power
      iteration :math:`\mathrm{QR}(PQ_{\text{sorted}})` (``refresh="power_qr"``, the paper's Algorithm 4).
      The first moment is projected back to the original space with the old basis and re-rotated with the
      new one (:math:`m' \leftarrow Q_L^{\text{new}\top}Q_L^{\text{old}}m'Q_R^{\text{old}\top}Q_R^{\text{new}}`);
      the second moment is not rotated (only permuted), as in the reference.

    Bias correction as in the reference: the step size is multiplied by :math:`\sqrt{1-\beta_2^t}/(1-\beta_1^t)`
    and :math:`\epsilon` is added to :math:`\sqrt{v'}` (not to the bias-corrected root). Weight decay (0.01 in
    the reference's defaults) is left out: the testbed's loss has none.

    lr: :math:`\eta > 0`. betas: :math:`(\beta_1, \beta_2)`, each in [0, 1) (paper: (0.95, 0.95)).
    eps > 0 (1e-8). shampoo_beta: :math:`\beta_s` in [0, 1), ``None`` = :math:`\beta_2` (the reference's
    default). precondition_frequency: integer >= 1 (10). refresh: ``"eigh"`` or ``"power_qr"``.
    """

    lr: float
    betas: tuple[float, float] = (0.95, 0.95)
    eps: float = 1e-8
    shampoo_beta: float | None = None
    precondition_frequency: int = 10
    refresh: str = "eigh"
    name: str = "soap"

    def __post_init__(self):
        f = _label(self)
        _lr(f, self.lr)
        pair = "a pair (beta1, beta2), each in [0, 1)"
        b = self.betas
        V.check(isinstance(b, (tuple, list)) and len(b) == 2, f, "betas", pair, V.describe(b))
        for i, bi in enumerate(b):
            expected = f"{pair} (beta{i + 1}: a real number in [0, 1))"
            v = V._real_scalar(f, "betas", bi, expected)
            V.check(math.isfinite(v) and 0.0 <= v < 1.0, f, "betas", expected, f"beta{i + 1} = {v!r}")
        object.__setattr__(self, "betas", (float(b[0]), float(b[1])))
        _num(f, "eps", self.eps, low=0.0, low_open=True)
        if self.shampoo_beta is not None:
            _num(f, "shampoo_beta", self.shampoo_beta, low=0.0, high=1.0, high_open=True)
        V.integer(f, "precondition_frequency", self.precondition_frequency, low=1)
        V.choice(f, "refresh", self.refresh, ("eigh", "power_qr"))

    @property
    def beta_s(self) -> float:
        return self.betas[1] if self.shampoo_beta is None else float(self.shampoo_beta)

    def init(self, F, G):
        def layer(W):
            m, n = W.shape
            return SOAPLayer(np.zeros((m, m)), np.zeros((n, n)), np.eye(m), np.eye(n), np.zeros_like(W),
                             np.zeros_like(W))

        return SOAPState(0, False, layer(F), layer(G))

    @staticmethod
    def _eigenbasis(P: np.ndarray) -> np.ndarray:
        """Eigenvectors of the symmetric P, columns by descending eigenvalue."""
        return np.linalg.eigh(_sym(P))[1][:, ::-1]

    def _first(self, g: np.ndarray, s: SOAPLayer) -> SOAPLayer:
        c = 1.0 - self.beta_s
        L = self.beta_s * s.L + c * (g @ g.T)
        R = self.beta_s * s.R + c * (g.T @ g)
        return SOAPLayer(L, R, self._eigenbasis(L), self._eigenbasis(R), s.m, s.v)

    def _refresh(self, P: np.ndarray, Q: np.ndarray, v: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        PQ = P @ Q
        order = np.argsort(-np.einsum("ij,ij->j", Q, PQ), kind="stable")
        v = np.take(v, order, axis=axis)
        if self.refresh == "power_qr":
            return np.linalg.qr(PQ[:, order])[0], v
        return self._eigenbasis(P), v

    def _layer(self, W: np.ndarray, g: np.ndarray, s: SOAPLayer, t: int) -> tuple[np.ndarray, SOAPLayer]:
        b1, b2 = self.betas
        gp = s.QL.T @ g @ s.QR
        m = b1 * s.m + (1.0 - b1) * gp
        v = b2 * s.v + (1.0 - b2) * gp * gp
        step_size = self.lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        W_new = W - step_size * (s.QL @ (m / (np.sqrt(v) + self.eps)) @ s.QR.T)
        # after the step: factors take the current gradient; basis refresh; first moment re-rotated
        m_orig = s.QL @ m @ s.QR.T
        c = 1.0 - self.beta_s
        L = self.beta_s * s.L + c * (g @ g.T)
        R = self.beta_s * s.R + c * (g.T @ g)
        QL, QR = s.QL, s.QR
        if t % self.precondition_frequency == 0:
            QL, v = self._refresh(L, QL, v, axis=0)
            QR, v = self._refresh(R, QR, v, axis=1)
        return W_new, SOAPLayer(L, R, QL, QR, QL.T @ m_orig @ QR, v)

    def step(self, F, G, batch, state):
        gF, gG = _gradients(F, G, batch)
        if not state.started:
            return F, G, SOAPState(0, True, self._first(gF, state.F), self._first(gG, state.G))
        t = state.t + 1
        F_new, sF = self._layer(F, gF, state.F, t)
        G_new, sG = self._layer(G, gG, state.G, t)
        return F_new, G_new, SOAPState(t, True, sF, sG)


# --------------------------------------------------------------------------- AdaGrad
@dataclass(frozen=True)
class AdaGradState:
    """AdaGrad's accumulated squared gradients, per layer (zero at the start)."""

    acc_F: np.ndarray
    acc_G: np.ndarray


@dataclass(frozen=True)
class AdaGrad:
    r"""Diagonal AdaGrad (Duchi, Hazan & Singer 2011) on each layer, entry-wise:

    .. math:: a\leftarrow a + g\odot g,\qquad W\leftarrow W - \eta\,\frac{g}{\sqrt a + \epsilon}.

    lr: :math:`\eta > 0`. eps > 0 (1e-10, PyTorch's default; the accumulator starts at 0).
    """

    lr: float
    eps: float = 1e-10
    name: str = "adagrad"

    def __post_init__(self):
        f = _label(self)
        _lr(f, self.lr)
        _num(f, "eps", self.eps, low=0.0, low_open=True)

    def init(self, F, G):
        return AdaGradState(np.zeros_like(F), np.zeros_like(G))

    def step(self, F, G, batch, state):
        gF, gG = _gradients(F, G, batch)
        aF = state.acc_F + gF * gF
        aG = state.acc_G + gG * gG
        return (F - self.lr * gF / (np.sqrt(aF) + self.eps), G - self.lr * gG / (np.sqrt(aG) + self.eps),
                AdaGradState(aF, aG))


# --------------------------------------------------------------------------- factories
def _factory(cls: type, name: str) -> Callable[..., Any]:
    allowed = [fl.name for fl in fields(cls) if fl.init and fl.name != "name"]

    def factory(**options):
        V.optimizer_options(name, options, allowed)
        return cls(name=name, **options)

    factory.__doc__ = f"Factory for {name!r}: {cls.__name__}(**options); an unknown option is a ValueError."
    factory.options = tuple(sorted(allowed))  # the options it takes (lr among them)
    return factory


#: name -> factory, registered by :mod:`simulate.optimizers` when it is imported.
FACTORIES: dict[str, Callable[..., Any]] = {
    "shampoo": _factory(Shampoo, "shampoo"),
    "muon": _factory(Muon, "muon"),
    "soap": _factory(SOAP, "soap"),
    "adagrad": _factory(AdaGrad, "adagrad"),
}
