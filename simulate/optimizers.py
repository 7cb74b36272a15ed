r"""Update rules for the two-layer linear network :math:`f(x) = FGx`, one per algorithm.

Each rule is implemented literally from THEORY.md section 2 (algorithm catalogue): gradients of
the batch loss :math:`\hat L = \frac1{2n}\sum_i\lVert y_i - FGx_i\rVert^2`,

.. math::

    \nabla_G\hat L = F^\top FG\hat\Sigma_x - F^\top\hat\Sigma_{yx},\qquad
    \nabla_F\hat L = F\hat\Sigma_z - \hat\Sigma_{yz},\quad \hat\Sigma_z = G\hat\Sigma_xG^\top,\
    \hat\Sigma_{yz} = \hat\Sigma_{yx}G^\top,

and the layer-wise preconditioned step of eq. (5),

.. math::

    G_+ = G - \eta_G P_G^{-1}\nabla_G\hat L(F, G)(Q_G + \lambda_G I)^{-1},\qquad
    F_+ = F - \eta_F\nabla_F\hat L(F, G_+)\,Q_F^{-1},

never through the moving-average form of Lemma 3.1 (that identity is what the claims check).

Protocol (DESIGN.md): an optimizer has ``init(F, G) -> state`` and
``step(F, G, batch, state) -> (F, G, state)``; ``batch`` is a :class:`Batch` of moments.
Built-ins are registered by name in :data:`REGISTRY`; :func:`register` adds a user's factory
``factory(**options)`` (``lr`` is always passed as an option).

Registered here: ``sgd`` (simultaneous gradient step), ``amgd`` (gradient step on G, exact
least-squares head), ``kfac`` (:math:`P_G = F^\top F`, :math:`Q_G = \hat\Sigma_x`,
:math:`\eta_F = \eta_G` by default), ``kfac_ls`` (KFAC with the least-squares head,
:math:`\eta_F = 1`), the one-sided ``kfac_left`` / ``kfac_right``, and the diagonal right
preconditioners ``kfac_diag`` (:math:`P_G = F^\top F`) and ``amgd_diag`` (:math:`P_G = I`),
:math:`Q_G = \mathrm{diag}\hat\Sigma_x` (idealised Adam / input batch-norm). Choices of
:math:`P_G` and the head step for the variants are reconstructed [R].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import scipy.linalg as sla

from simulate import _validate as V


@dataclass(frozen=True)
class Batch:
    """Sufficient statistics of one batch (or of the population) for the linear model.

    Sigma_x: (d_x, d_x) second moment :math:`\\hat{\\mathbb E}[xx^\\top]`.
    Sigma_yx: (d_y, d_x) cross moment :math:`\\hat{\\mathbb E}[yx^\\top]`.
    trace_yy: :math:`\\hat{\\mathbb E}\\lVert y\\rVert^2` (for the loss value).
    n: number of samples (``None`` for the population).
    X, Y: the samples themselves when available (rows are samples), for rules that need them.
    """

    Sigma_x: np.ndarray
    Sigma_yx: np.ndarray
    trace_yy: float
    n: int | None = None
    X: np.ndarray | None = None
    Y: np.ndarray | None = None

    @classmethod
    def from_samples(cls, X: np.ndarray, Y: np.ndarray) -> "Batch":
        n = X.shape[0]
        if Y.shape[0] != n:
            raise V.fail("Batch.from_samples", "Y", f"with n = {n} rows like X", f"{Y.shape[0]} rows")
        return cls(X.T @ X / n, Y.T @ X / n, float(np.einsum("ij,ij->", Y, Y) / n), n, X, Y)

    @classmethod
    def population(cls, Sigma_x: np.ndarray, M: np.ndarray, noise_std: float) -> "Batch":
        """Population moments of :math:`y = Mx + \\varepsilon`, :math:`\\mathrm{Cov}\\,x = \\Sigma_x`."""
        Syx = M @ Sigma_x
        return cls(Sigma_x, Syx, float(np.einsum("ij,ij->", Syx, M) + M.shape[0] * noise_std**2))


def batch_loss(F: np.ndarray, G: np.ndarray, batch: Batch) -> float:
    r""":math:`\hat L = \tfrac12\mathrm{tr}\hat\Sigma_{yy} - \mathrm{tr}(FG\hat\Sigma_{xy}) + \tfrac12\mathrm{tr}(FG\hat\Sigma_xG^\top F^\top)`."""
    W = F @ G
    return float(0.5 * batch.trace_yy - np.einsum("ij,ij->", W, batch.Sigma_yx)
                 + 0.5 * np.einsum("ij,ij->", W @ batch.Sigma_x, W))


def grad_G(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    r""":math:`\nabla_G\hat L = F^\top(FG\hat\Sigma_x - \hat\Sigma_{yx})`."""
    return F.T @ (F @ (G @ batch.Sigma_x) - batch.Sigma_yx)


def grad_F(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""(:math:`\nabla_F\hat L`, :math:`\hat\Sigma_z`, :math:`\hat\Sigma_{yz}`) for features :math:`z = Gx`."""
    GS = G @ batch.Sigma_x
    Sz = GS @ G.T
    Sz = 0.5 * (Sz + Sz.T)
    Syz = batch.Sigma_yx @ G.T
    return F @ Sz - Syz, Sz, Syz


def _spd_solve_right(Mat: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Mat @ A^{-1} for SPD A (Cholesky)."""
    return sla.cho_solve(sla.cho_factor(A, lower=True, check_finite=False), Mat.T, check_finite=False).T


def _spd_solve_left(A: np.ndarray, Mat: np.ndarray) -> np.ndarray:
    """A^{-1} @ Mat for SPD A (Cholesky)."""
    return sla.cho_solve(sla.cho_factor(A, lower=True, check_finite=False), Mat, check_finite=False)


class Optimizer(Protocol):
    name: str

    def init(self, F: np.ndarray, G: np.ndarray) -> Any: ...

    def step(self, F: np.ndarray, G: np.ndarray, batch: Batch, state: Any) -> tuple[np.ndarray, np.ndarray, Any]: ...


@dataclass(frozen=True)
class SGD:
    """Simultaneous gradient step on both layers: :math:`G_+ = G - \\eta\\nabla_G`, :math:`F_+ = F - \\eta\\nabla_F`."""

    lr: float
    name: str = "sgd"

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        gG = grad_G(F, G, batch)
        gF, _, _ = grad_F(F, G, batch)
        return F - self.lr * gF, G - self.lr * gG, state


@dataclass(frozen=True)
class LayerwisePreconditioned:
    r"""Eq. (5): :math:`G` first, then :math:`F` with the new :math:`G`.

    lr: :math:`\eta_G > 0`. eta_F: head step in (0, 1] (``None``: equal to ``lr``).
    left: :math:`P_G` in ``{"identity", "FtF"}``. right: :math:`Q_G` in
    ``{"identity", "Sigma_x", "diag"}`` (``diag`` = :math:`\mathrm{diag}\hat\Sigma_x`).
    lam_G >= 0: damping added to :math:`Q_G`. head_right: :math:`Q_F` in ``{"Sigma_z", "identity"}``.
    """

    lr: float
    eta_F: float | None = None
    left: str = "FtF"
    right: str = "Sigma_x"
    lam_G: float = 0.0
    head_right: str = "Sigma_z"
    name: str = "kfac"

    def __post_init__(self):
        f = f"optimizer {self.name!r}"
        V.scalar(f, "lr", self.lr, low=0.0, low_open=True)
        if self.eta_F is not None:
            V.scalar(f, "eta_F", self.eta_F, low=0.0, low_open=True)
        V.choice(f, "left", self.left, ("identity", "FtF"))
        V.choice(f, "right", self.right, ("identity", "Sigma_x", "diag"))
        V.choice(f, "head_right", self.head_right, ("Sigma_z", "identity"))
        V.scalar(f, "lam_G", self.lam_G, low=0.0)

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        eta_F = self.lr if self.eta_F is None else self.eta_F
        D = grad_G(F, G, batch)
        if self.left == "FtF":
            D = _spd_solve_left(F.T @ F, D)
        if self.right == "Sigma_x":
            Q = batch.Sigma_x + self.lam_G * np.eye(G.shape[1]) if self.lam_G else batch.Sigma_x
            D = _spd_solve_right(D, Q)
        elif self.right == "diag":
            D = D / (np.diag(batch.Sigma_x) + self.lam_G)
        elif self.lam_G:
            D = D / (1.0 + self.lam_G)
        G_new = G - self.lr * D
        gF, Sz, _ = grad_F(F, G_new, batch)
        if self.head_right == "Sigma_z":
            gF = _spd_solve_right(gF, Sz)
        return F - eta_F * gF, G_new, state


def _layerwise(name: str, **fixed) -> Callable[..., LayerwisePreconditioned]:
    def factory(**options) -> LayerwisePreconditioned:
        opts = {**fixed, **options}
        return LayerwisePreconditioned(name=name, **opts)

    factory.__doc__ = f"Factory for {name!r}: eq. (5) with {fixed}."
    return factory


REGISTRY: dict[str, Callable[..., Optimizer]] = {}


def register(name: str, factory: Callable[..., Optimizer]) -> None:
    """Register ``factory(**options) -> optimizer`` under ``name`` (every comparison picks it up)."""
    if not isinstance(name, str) or not name:
        raise V.fail("register", "name", "a non-empty string", repr(name))
    if not callable(factory):
        raise V.fail("register", "factory", "a callable returning an optimizer", type(factory).__name__)
    REGISTRY[name] = factory


def make(name: str, **options) -> Optimizer:
    """Build the registered optimizer ``name`` with ``options`` (e.g. ``lr=0.1``)."""
    if name not in REGISTRY:
        raise V.fail("make", "name", f"a registered optimizer, one of {sorted(REGISTRY)}", repr(name))
    return REGISTRY[name](**options)


register("sgd", lambda **o: SGD(**o))
register("amgd", _layerwise("amgd", left="identity", right="identity", eta_F=1.0))
register("kfac", _layerwise("kfac", left="FtF", right="Sigma_x"))
register("kfac_ls", _layerwise("kfac_ls", left="FtF", right="Sigma_x", eta_F=1.0))
register("kfac_left", _layerwise("kfac_left", left="FtF", right="identity", eta_F=1.0))
register("kfac_right", _layerwise("kfac_right", left="identity", right="Sigma_x", eta_F=1.0))
register("kfac_diag", _layerwise("kfac_diag", left="FtF", right="diag", eta_F=1.0))
register("amgd_diag", _layerwise("amgd_diag", left="identity", right="diag", eta_F=1.0))


# --------------------------------------------------------------------------- nonlinear features
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"identity": lambda u: u, "tanh": np.tanh}


def kfac_head_step(F: np.ndarray, G: np.ndarray, X: np.ndarray, Y: np.ndarray, *, eta_F: float,
                   activation: str = "tanh") -> np.ndarray:
    r"""Eq. (5)'s head step for :math:`f = F\sigma(Gx)`: :math:`F_+ = F - \eta_F\nabla_F\hat L\,\hat\Sigma_z^{-1}`
    with :math:`z = \sigma(Gx)`, :math:`\nabla_F\hat L = F\hat\Sigma_z - \hat\Sigma_{yz}` (any activation).

    F: (d_y, k). G: (k, d_x) (the already-updated first layer). X: (n, d_x). Y: (n, d_y).
    """
    V.choice("kfac_head_step", "activation", activation, tuple(ACTIVATIONS))
    n = X.shape[0]
    Z = ACTIVATIONS[activation](X @ G.T)
    Sz = Z.T @ Z / n
    Syz = Y.T @ Z / n
    return F - eta_F * _spd_solve_right(F @ Sz - Syz, Sz)
