r"""Update rules for the two-layer linear network :math:`f(x) = FGx`, one per algorithm.

Each rule is implemented literally from docs/theory.md section 2 (algorithm catalogue): gradients of
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
:math:`P_G` and the head step for the variants are reconstructed [R]. Further down: ``adam``,
``amgd_bn``, ``ngd``, ``newton``; and, from :mod:`simulate.matrix_optimizers`, ``shampoo``, ``muon``,
``soap`` and ``adagrad``. :func:`register` refuses to replace a name unless asked (``replace=True``) and
builds the factory once (``lr=1e-2``) to check that it returns an object with ``init`` and ``step``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

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
    x_mean, y_mean: the batch means :math:`\\bar x`, :math:`\\bar y` when available (batch-norm reads them).
    """

    Sigma_x: np.ndarray
    Sigma_yx: np.ndarray
    trace_yy: float
    n: int | None = None
    X: np.ndarray | None = None
    Y: np.ndarray | None = None
    x_mean: np.ndarray | None = None
    y_mean: np.ndarray | None = None

    @classmethod
    def from_samples(cls, X: np.ndarray, Y: np.ndarray) -> "Batch":
        """The moments of the samples X (n, d_x) and Y (n, d_y) (rows are samples; finite, real)."""
        f = "Batch.from_samples"
        X = V.matrix(f, "X", X)
        Y = V.matrix(f, "Y", Y, shape=(X.shape[0], None), labels=("n", None))
        return cls._from_samples(X, Y)

    @classmethod
    def _from_samples(cls, X: np.ndarray, Y: np.ndarray) -> "Batch":
        n = X.shape[0]
        return cls(X.T @ X / n, Y.T @ X / n, float(np.einsum("ij,ij->", Y, Y) / n), n, X, Y,
                   X.mean(axis=0), Y.mean(axis=0))

    @classmethod
    def from_moments(cls, m: Any) -> "Batch":
        """From drawn sufficient statistics (``simulate.data.BatchMoments``: Sigma_x, Sigma_yx, trace_yy,
        n, x_mean, y_mean); no samples."""
        f = "Batch.from_moments"
        what = "drawn sufficient statistics (simulate.data.BatchMoments: Sigma_x, Sigma_yx, trace_yy, n)"
        missing = [a for a in ("Sigma_x", "Sigma_yx", "trace_yy", "n", "x_mean", "y_mean") if not hasattr(m, a)]
        V.check(not missing, f, "m", what, f"{V.describe(m)} without {', '.join(missing)}")
        Sx = V.square(f, "m", m.Sigma_x, label="d_x")
        V.matrix(f, "m", m.Sigma_yx, shape=(None, Sx.shape[0]), labels=(None, "d_x"))
        V.scalar(f, "m", m.trace_yy, low=0.0)
        V.integer(f, "m", m.n, low=1)
        return cls._from_moments(m)

    @classmethod
    def _from_moments(cls, m: Any) -> "Batch":
        return cls(m.Sigma_x, m.Sigma_yx, m.trace_yy, m.n, x_mean=m.x_mean, y_mean=m.y_mean)

    @classmethod
    def population(cls, Sigma_x: np.ndarray, M: np.ndarray, noise_std: float) -> "Batch":
        """Population moments of :math:`y = Mx + \\varepsilon`, :math:`\\mathrm{Cov}\\,x = \\Sigma_x`.

        Sigma_x: (d_x, d_x) symmetric positive-definite. M: (d_y, d_x). noise_std >= 0.
        """
        f = "Batch.population"
        Sigma_x = V.spd(f, "Sigma_x", Sigma_x, label="d_x")
        M = V.matrix(f, "M", M, shape=(None, Sigma_x.shape[0]), labels=("d_y", "d_x"))
        return cls._population(Sigma_x, M, V.scalar(f, "noise_std", noise_std, low=0.0))

    @classmethod
    def _population(cls, Sigma_x: np.ndarray, M: np.ndarray, noise_std: float) -> "Batch":
        Syx = M @ Sigma_x
        return cls(Sigma_x, Syx, float(np.einsum("ij,ij->", Syx, M) + M.shape[0] * noise_std**2))


def _check_fgb(func: str, F, G, batch, *, stacked: bool = False) -> tuple[np.ndarray, np.ndarray, Batch]:
    """F (d_y, k), G (k, d_x) (stacks (L, ., .) when ``stacked``) and a Batch of the same d_x, d_y."""
    V.instance(func, "batch", batch, Batch, "a simulate.optimizers.Batch (Batch.population, Batch.from_samples, "
               "Batch.from_moments)")
    Sx = V.square(func, "batch", batch.Sigma_x, label="d_x")
    d_x = Sx.shape[0]
    Syx = V.matrix(func, "batch", batch.Sigma_yx, shape=(None, d_x), labels=("d_y", "d_x"))
    d_y = Syx.shape[0]
    V.scalar(func, "batch", batch.trace_yy)
    if stacked:
        F = V.array(func, "F", F, ndim=3, nonempty=True, what="real numbers (a stack (L, d_y, k))")
        G = V.array(func, "G", G, ndim=3, nonempty=True, what="real numbers (a stack (L, k, d_x))")
        V.check(F.shape[1] == d_y, func, "F", f"a stack (L, d_y, k) with d_y = {d_y} (the batch's)", f"shape {F.shape}")
        V.check(G.shape[0] == F.shape[0] and G.shape[1] == F.shape[2] and G.shape[2] == d_x, func, "G",
                f"a stack (L, k, d_x) with L = {F.shape[0]}, k = {F.shape[2]}, d_x = {d_x}", f"shape {G.shape}")
    else:
        F = V.matrix(func, "F", F, shape=(d_y, None), labels=("d_y", "k"))
        G = V.matrix(func, "G", G, shape=(F.shape[1], d_x), labels=("k", "d_x"))
    return F, G, batch


def _batch_loss(F: np.ndarray, G: np.ndarray, batch: Batch) -> float:
    W = F @ G
    return float(0.5 * batch.trace_yy - np.einsum("ij,ij->", W, batch.Sigma_yx)
                 + 0.5 * np.einsum("ij,ij->", W @ batch.Sigma_x, W))


def batch_loss(F: np.ndarray, G: np.ndarray, batch: Batch) -> float:
    r""":math:`\hat L = \tfrac12\mathrm{tr}\hat\Sigma_{yy} - \mathrm{tr}(FG\hat\Sigma_{xy}) + \tfrac12\mathrm{tr}(FG\hat\Sigma_xG^\top F^\top)`.

    F: (d_y, k). G: (k, d_x). batch: a :class:`Batch` of the same d_x, d_y (checked, as for every
    public function here; the update rules call the unchecked kernels).
    """
    return _batch_loss(*_check_fgb("batch_loss", F, G, batch))


def _grad_G(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    return F.T @ (F @ (G @ batch.Sigma_x) - batch.Sigma_yx)


def grad_G(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    r""":math:`\nabla_G\hat L = F^\top(FG\hat\Sigma_x - \hat\Sigma_{yx})` (arguments as :func:`batch_loss`)."""
    return _grad_G(*_check_fgb("grad_G", F, G, batch))


def _grad_F(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    GS = G @ batch.Sigma_x
    Sz = GS @ G.T
    Sz = 0.5 * (Sz + Sz.T)
    Syz = batch.Sigma_yx @ G.T
    return F @ Sz - Syz, Sz, Syz


def grad_F(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""(:math:`\nabla_F\hat L`, :math:`\hat\Sigma_z`, :math:`\hat\Sigma_{yz}`) for features :math:`z = Gx`
    (arguments as :func:`batch_loss`)."""
    return _grad_F(*_check_fgb("grad_F", F, G, batch))


def _positive_lr(func: str, lr) -> float:
    return V.scalar(func, "lr", lr, low=0.0, low_open=True)


def _label(opt: Any) -> str:
    """``optimizer '<name>'``, the FUNCTION of the messages about an optimizer's options (its ``name``
    checked: a non-empty string)."""
    name = getattr(opt, "name", None)
    V.check(isinstance(name, str) and bool(name), type(opt).__name__, "name", "a non-empty string",
            V.describe(name))
    return f"optimizer {name!r}"


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

    def __post_init__(self):
        _positive_lr(_label(self), self.lr)

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        gG = _grad_G(F, G, batch)
        gF, _, _ = _grad_F(F, G, batch)
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
        f = _label(self)
        _positive_lr(f, self.lr)
        if self.eta_F is not None:
            V.scalar(f, "eta_F", self.eta_F, low=0.0, high=1.0, low_open=True)
        V.choice(f, "left", self.left, ("identity", "FtF"))
        V.choice(f, "right", self.right, ("identity", "Sigma_x", "diag"))
        V.choice(f, "head_right", self.head_right, ("Sigma_z", "identity"))
        V.scalar(f, "lam_G", self.lam_G, low=0.0)

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        eta_F = self.lr if self.eta_F is None else self.eta_F
        D = _grad_G(F, G, batch)
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
        gF, Sz, _ = _grad_F(F, G_new, batch)
        if self.head_right == "Sigma_z":
            gF = _spd_solve_right(gF, Sz)
        return F - eta_F * gF, G_new, state


def _dataclass_factory(cls: type, name: str, **fixed) -> Callable[..., Any]:
    """The factory of ``name``: ``cls(name=name, **fixed, **options)``, its options checked first
    (:func:`simulate._validate.optimizer_options`: an unknown or fixed option, or a missing ``lr``, is a
    ValueError naming it; each value is checked by ``cls``)."""
    from dataclasses import fields

    allowed = [fl.name for fl in fields(cls) if fl.init and fl.name != "name" and fl.name not in fixed]

    def factory(**options):
        V.optimizer_options(name, options, allowed, fixed)
        return cls(name=name, **fixed, **options)

    factory.__doc__ = f"Factory for {name!r}: {cls.__name__}(**options){' with ' + repr(fixed) if fixed else ''}."
    factory.options = tuple(sorted(allowed))  # the options it takes (lr among them)
    return factory


def _layerwise(name: str, **fixed) -> Callable[..., LayerwisePreconditioned]:
    return _dataclass_factory(LayerwisePreconditioned, name, **fixed)

REGISTRY: dict[str, Callable[..., Optimizer]] = {}

#: the options a factory is built with when it is registered (:func:`register` checks what it returns).
_PROBE_OPTIONS: dict[str, Any] = {"lr": 1e-2}
_OPTION_ERRORS = (
    (re.compile(r"unexpected keyword argument '(\w+)'"), "unknown"),
    (re.compile(r"missing \d+ required (?:positional |keyword-only )?arguments?: (.+)$"), "missing"),
    (re.compile(r"multiple values for (?:keyword )?argument '(\w+)'"), "fixed"),
)


def register(name: str, factory: Callable[..., Optimizer], *, replace: bool = False) -> None:
    """Register ``factory(**options) -> optimizer`` under ``name`` (every comparison picks it up).

    name: a non-empty string, not yet registered unless ``replace=True``. factory: a callable; it is
    built once here with ``lr=1e-2`` (other options must have defaults) and must return an object
    with callable ``init(F, G)`` and ``step(F, G, batch, state)``.
    """
    f = "register"
    V.check(isinstance(name, str) and bool(name), f, "name", "a non-empty string", V.describe(name))
    V.flag(f, "replace", replace)
    V.check(name not in REGISTRY or bool(replace), f, "name",
            "a name not registered yet (pass replace=True to replace the optimizer)", repr(name))
    V.check(callable(factory), f, "factory", "a callable returning an optimizer", V.describe(factory))
    try:
        probe = factory(**_PROBE_OPTIONS)
    except Exception as e:  # noqa: BLE001 - any failure to build is the factory's defect, reported as such
        raise V.fail(f, "factory", "callable as factory(lr=0.01) (options other than lr need defaults)",
                     f"{type(e).__name__}: {e}") from e
    _check_built(f, "factory", probe, "a callable returning an object with init(F, G) and step(F, G, batch, state)")
    REGISTRY[name] = factory


def _check_built(func: str, name: str, opt: Any, expected: str) -> Any:
    """``opt`` if it has callable ``init`` and ``step`` (what a factory must build)."""
    if opt is None:
        raise V.fail(func, name, expected, "None")
    if isinstance(opt, type):
        raise V.fail(func, name, expected, f"the class {opt.__name__} (not an instance)")
    for method in ("init", "step"):
        V.check(callable(getattr(opt, method, None)), func, name, expected, f"an object without {method!r}")
    return opt


def make(name: str, /, **options) -> Optimizer:
    """Build the registered optimizer ``name`` with ``options`` (e.g. ``lr=0.1``).

    A factory's TypeError for an unknown, missing or fixed option becomes a ValueError naming it.
    """
    expected = f"a registered optimizer, one of {sorted(REGISTRY)}"
    V.check(isinstance(name, str), "make", "name", expected, V.describe(name))
    V.check(name in REGISTRY, "make", "name", expected, repr(name))
    try:
        opt = REGISTRY[name](**options)
    except TypeError as e:
        msg = str(e)
        for pattern, kind in _OPTION_ERRORS:
            hit = pattern.search(msg)
            if hit is None:
                continue
            f = f"optimizer {name!r}"
            if kind == "unknown":
                raise V.fail(f, hit.group(1), f"an option of {name!r}", "an unknown option") from None
            if kind == "missing":
                missing = re.findall(r"'(\w+)'", hit.group(1))
                raise V.fail(f, missing[0] if missing else "options", f"given (required by {name!r})",
                             f"nothing (missing: {', '.join(missing) or hit.group(1)})") from None
            raise V.fail(f, hit.group(1), f"left out (fixed for {name!r})", "a value") from None
        raise
    V.check(_is_built(opt), "make", "name", "a registered optimizer whose factory returns an object with "
            "init(F, G) and step(F, G, batch, state)", f"{name!r}, whose factory returned {V.describe(opt)}")
    return opt


def _is_built(opt: Any) -> bool:
    """An optimizer object (not a class): callable ``init`` and ``step``."""
    return opt is not None and not isinstance(opt, type) and callable(getattr(opt, "init", None)) and callable(getattr(opt, "step", None))


register("sgd", _dataclass_factory(SGD, "sgd"))
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
    f = "kfac_head_step"
    X = V.matrix(f, "X", X, labels=("n", "d_x"))
    n, d_x = X.shape
    Y = V.matrix(f, "Y", Y, shape=(n, None), labels=("n", "d_y"))
    F = V.matrix(f, "F", F, shape=(Y.shape[1], None), labels=("d_y", "k"))
    G = V.matrix(f, "G", G, shape=(F.shape[1], d_x), labels=("k", "d_x"))
    eta_F = V.scalar(f, "eta_F", eta_F, low=0.0, high=1.0, low_open=True)
    Z = ACTIVATIONS[V.choice(f, "activation", activation, tuple(ACTIVATIONS))](X @ G.T)
    Sz = Z.T @ Z / n
    Sz = 0.5 * (Sz + Sz.T)
    lam = np.linalg.eigvalsh(Sz)
    V.check(lam[-1] > 0 and lam[0] > Sz.shape[0] * V.EPS * lam[-1], f, "X",
            "samples whose features sigma(X G^T) have a positive-definite second moment Sigma_z "
            "(smallest eigenvalue > k * eps * largest)", f"eigenvalues of Sigma_z from {lam[0]:.3e} to {lam[-1]:.3e}")
    Syz = Y.T @ Z / n
    return F - eta_F * _spd_solve_right(F @ Sz - Syz, Sz)


# --------------------------------------------------------------------------- Adam, batch-norm, second order
# Issue 4 additions (docs/theory.md section 2, algorithm catalogue; settings of the paper's baselines are
# reconstructed [R]): ``adam``, ``amgd_bn`` (AMGD on f = F BN(Gx)), ``ngd`` (damped Gauss-Newton /
# natural gradient on the joint parameters) and ``newton`` (damped Newton with the exact Hessian).
# Optional protocol extensions read by simulate.linrep.run / run_common: ``needs_samples`` (the rule
# uses batch.X, batch.Y: the batch is then materialised), ``needs_means`` (it uses batch.x_mean,
# batch.y_mean: a batch, not the population), ``batch_loss(F, G, batch, state)`` (the training loss of the rule's own model)
# and ``eval_map(F, G, state) -> (W, c)`` (the evaluation-mode network x -> W x + c).




_potrf, _potrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), (np.empty((1, 1)),))


def _chol(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an SPD matrix (LAPACK potrf called directly: the scipy wrappers cost
    ~30 us per call, more than the factorisation of the small matrices here)."""
    L, info = _potrf(A, lower=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed (potrf info {info})")
    return L


def _chol_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A^{-1} B from the lower Cholesky factor L of A (potrs)."""
    X, info = _potrs(L, B, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky solve failed (potrs info {info})")
    return X


@dataclass(frozen=True)
class AdamState:
    """Adam's moment estimates after ``t`` steps (first ``m_*``, second ``v_*``, per layer)."""

    t: int
    m_F: np.ndarray
    v_F: np.ndarray
    m_G: np.ndarray
    v_G: np.ndarray


@dataclass(frozen=True)
class Adam:
    r"""Adam (Kingma & Ba 2015) on :math:`(F, G)` with the simultaneous batch gradients of SGD.

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1)g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2)g_t^2,\quad
        \theta_t = \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}.

    lr: :math:`\eta > 0`. beta1, beta2: moment decays in [0, 1). eps > 0: denominator offset.
    docs/theory.md section 2 (defaults 0.9, 0.999, 1e-8); idealised as a diagonal right preconditioner in
    R-LR-1 (claim C6).
    """

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name: str = "adam"

    def __post_init__(self):
        f = _label(self)
        _positive_lr(f, self.lr)
        V.scalar(f, "beta1", self.beta1, low=0.0, high=1.0, high_open=True)
        V.scalar(f, "beta2", self.beta2, low=0.0, high=1.0, high_open=True)
        V.scalar(f, "eps", self.eps, low=0.0, low_open=True)

    def init(self, F, G):
        z = np.zeros_like
        return AdamState(0, z(F), z(F), z(G), z(G))

    def step(self, F, G, batch, state):
        gG = _grad_G(F, G, batch)
        gF, _, _ = _grad_F(F, G, batch)
        return self.update(F, G, gF, gG, state, self.lr)

    def update(self, F, G, gF, gG, state, lr):
        """Adam's moment and parameter update from the gradients (any leading axes; ``lr`` broadcasts)."""
        t = state.t + 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        m_F = b1 * state.m_F + (1.0 - b1) * gF
        v_F = b2 * state.v_F + (1.0 - b2) * gF * gF
        m_G = b1 * state.m_G + (1.0 - b1) * gG
        v_G = b2 * state.v_G + (1.0 - b2) * gG * gG
        F_new = F - lr * (m_F / c1) / (np.sqrt(v_F / c2) + self.eps)
        G_new = G - lr * (m_G / c1) / (np.sqrt(v_G / c2) + self.eps)
        return F_new, G_new, AdamState(t, m_F, v_F, m_G, v_G)


@dataclass(frozen=True)
class BatchNormState:
    """Batch-norm parameters of :class:`AMGDBatchNorm`: learnable scale ``gamma`` and shift ``beta``
    (k,), and the running statistics ``running_mean``, ``running_var`` (k,) used for evaluation."""

    gamma: np.ndarray
    beta: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray


def _bn_statistics(G: np.ndarray, Cxx: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch statistics of the features h = Gx from the centred input moment Cxx (d, d), for a stack G
    (..., k, d): (G Cxx, biased batch variances diag(G Cxx G') (..., k), 1/sqrt(var + eps) (..., k))."""
    GC = G @ Cxx
    var = np.einsum("...ij,...ij->...i", GC, G)
    return GC, var, 1.0 / np.sqrt(var + eps)


def _T(A: np.ndarray) -> np.ndarray:
    """Transpose of the last two axes (a stack of matrices)."""
    return np.swapaxes(A, -1, -2)


def _spd_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A^{-1} B for SPD A (2-D: Cholesky; stacks: batched LU, numpy has no batched Cholesky solve)."""
    if A.ndim == 2:
        return _chol_solve(_chol(A), B)
    return np.linalg.solve(A, B)


@dataclass(frozen=True)
class AMGDBatchNorm:
    r"""AMGD on the batch-normalised network :math:`f(x) = F\,\mathrm{BN}(Gx)` (docs/theory.md section 2).

    Training mode (batch statistics of the hidden features :math:`h = Gx` on the current batch):

    .. math::

        \mathrm{BN}(h)_j = \gamma_j\frac{h_j - \hat\mu_j}{\sqrt{\hat\sigma_j^2 + \epsilon}} + \beta_j,\qquad
        \hat L = \frac1{2n}\sum_i\lVert y_i - F\,\mathrm{BN}(Gx_i)\rVert^2 .

    One step, literally as a practitioner's batch-norm layer behaves: (1) the gradient of
    :math:`\hat L` with respect to :math:`G`, :math:`\gamma`, :math:`\beta` is back-propagated through
    the batch statistics and each takes a gradient step of size ``lr``; (2) the head is the exact
    least-squares head on the new normalised features :math:`z = \mathrm{BN}(G_+x)` of the batch
    (AMGD: :math:`\eta_F = 1`, :math:`Q_F = \hat\Sigma_z`); (3) that forward pass updates the running
    statistics, :math:`\mu_{run}\leftarrow(1-m)\mu_{run} + m\hat\mu`,
    :math:`\sigma^2_{run}\leftarrow(1-m)\sigma^2_{run} + m\,\hat\sigma^2 n/(n-1)` (unbiased, as in PyTorch).
    Evaluation uses the running statistics: :math:`f(x) = F(D(Gx - \mu_{run}) + \beta)`,
    :math:`D = \mathrm{diag}(\gamma/\sqrt{\sigma^2_{run} + \epsilon})`. [R]: the paper's exact placement
    and hyper-parameters are unknown; the defaults are PyTorch's (momentum 0.1, eps 1e-5).

    lr > 0: step of G, gamma, beta. momentum in (0, 1]: running-statistics update weight.
    eps > 0: variance offset. affine: learn gamma and beta (False keeps gamma = 1, beta = 0).
    """

    lr: float
    momentum: float = 0.1
    eps: float = 1e-5
    affine: bool = True
    name: str = "amgd_bn"
    needs_means: ClassVar[bool] = True

    def __post_init__(self):
        f = _label(self)
        _positive_lr(f, self.lr)
        V.scalar(f, "momentum", self.momentum, low=0.0, high=1.0, low_open=True)
        V.scalar(f, "eps", self.eps, low=0.0, low_open=True)
        V.flag(f, "affine", self.affine)

    def init(self, F, G):
        k = G.shape[0]
        return BatchNormState(np.ones(k), np.zeros(k), np.zeros(k), np.ones(k))

    def _moments(self, batch: Batch):
        """Centred batch moments (C_xx, C_yx, c_yy) and the means (x_bar, y_bar) and n of ``batch``."""
        if batch.x_mean is None or batch.y_mean is None or batch.n is None:
            raise V.fail(f"optimizer {self.name!r}", "batch",
                         "a Batch of samples with its means x_mean, y_mean (batch-norm uses batch statistics)",
                         "moments without means")
        xb, yb = batch.x_mean, batch.y_mean
        Cxx = batch.Sigma_x - np.outer(xb, xb)
        Cyx = batch.Sigma_yx - np.outer(yb, xb)
        return Cxx, Cyx, batch.trace_yy - float(yb @ yb), xb, yb, batch.n

    def step(self, F, G, batch, state):
        return self.update(F, G, batch, state, self.lr)

    def update(self, F, G, batch, state, lr):
        r"""One step (any leading axes on F, G and the state; ``lr`` broadcasts over them), from the batch
        moments: every quantity of the sample-wise forward and backward pass is a linear function of the
        samples, so it enters only through :math:`\bar x`, :math:`\bar y`, the centred moments
        :math:`C_{xx} = \hat\Sigma_x - \bar x\bar x^\top`, :math:`C_{yx} = \hat\Sigma_{yx} - \bar y\bar x^\top`.
        With :math:`D = \mathrm{diag}(1/\sqrt{\hat\sigma^2 + \epsilon})`, :math:`\hat\sigma^2 = \mathrm{diag}(GC_{xx}G^\top)`,
        :math:`A = \Gamma DG` (so :math:`z_i = A(x_i - \bar x) + \beta`) and :math:`R = F^\top(FAC_{xx} - C_{yx})`,

        .. math::

            \nabla_\gamma\hat L = D\,\mathrm{diag}(RG^\top),\quad
            \nabla_\beta\hat L = F^\top(F\beta - \bar y),\quad
            \nabla_G\hat L = \Gamma D\big(R - \mathrm{diag}(D\nabla_\gamma\hat L)\,GC_{xx}\big),

        the back-propagation through the batch mean and variance (each row of :math:`\partial\hat L/\partial H`
        sums to zero, so :math:`\bar x` drops out of :math:`\nabla_G`); the head solves
        :math:`F\hat\Sigma_z = \hat\Sigma_{yz}` with :math:`\hat\Sigma_z = AC_{xx}A^\top + \beta\beta^\top`,
        :math:`\hat\Sigma_{yz} = C_{yx}A^\top + \bar y\beta^\top`; the batch mean of the features is :math:`G\bar x`.
        Equal to the sample-wise pass to round-off (tested against it)."""
        Cxx, Cyx, _, xb, yb, n = self._moments(batch)
        lr = np.asarray(lr, dtype=float)
        lr_k = lr[..., None] if lr.ndim else lr                       # for (..., k) parameters
        lr_m = lr[..., None, None] if lr.ndim else lr                 # for (..., k, d) matrices
        g, b = state.gamma, state.beta
        Ft = _T(F)
        GC, _, inv = _bn_statistics(G, Cxx, self.eps)
        s = g * inv                                                   # A = diag(s) G
        R = (Ft @ F) @ (s[..., None] * GC) - Ft @ Cyx                 # F'(F A Cxx - Cyx), (..., k, d)
        d_gamma = inv * np.einsum("...ij,...ij->...i", R, G)
        dG = s[..., None] * (R - (d_gamma * inv)[..., None] * GC)
        G_new = G - lr_m * dG
        if self.affine:
            d_beta = np.einsum("...ji,...j->...i", F, np.einsum("...ij,...j->...i", F, b) - yb)
            g = g - lr_k * d_gamma
            b = b - lr_k * d_beta
        GC, var, inv = _bn_statistics(G_new, Cxx, self.eps)
        s = g * inv
        Sz = (s[..., :, None] * s[..., None, :]) * (GC @ _T(G_new)) + b[..., :, None] * b[..., None, :]
        Szy = s[..., None] * (G_new @ Cyx.T) + b[..., None] * yb      # Sigma_zy hat, (..., k, d_y)
        F_new = _T(_spd_solve(0.5 * (Sz + _T(Sz)), Szy))
        m = self.momentum
        rm = (1.0 - m) * state.running_mean + m * (G_new @ xb)
        rv = (1.0 - m) * state.running_var + m * var * (n / (n - 1) if n > 1 else 1.0)
        return F_new, G_new, BatchNormState(g, b, rm, rv)

    def batch_loss(self, F, G, batch, state):
        r"""Training-mode loss on ``batch`` (batch statistics), the loss a training loop logs (a float;
        an array over the leading axes of a stack):
        :math:`\tfrac12\big(c_{yy} - 2\langle C_{yx}, FA\rangle + \langle FAC_{xx}A^\top, F\rangle
        + \lVert\bar y - F\beta\rVert^2\big)`, :math:`c_{yy} = \hat{\mathbb E}\lVert y\rVert^2 - \lVert\bar y\rVert^2`."""
        Cxx, Cyx, cyy, _, yb, _ = self._moments(batch)
        GC, _, inv = _bn_statistics(G, Cxx, self.eps)
        s = state.gamma * inv
        A = s[..., None] * G
        Kz = (s[..., :, None] * s[..., None, :]) * (GC @ _T(G))      # A Cxx A'
        r = yb - np.einsum("...ij,...j->...i", F, state.beta)
        out = 0.5 * (cyy - 2.0 * np.einsum("...ij,...ij->...", Cyx @ _T(A), F)
                     + np.einsum("...ij,...ij->...", F @ Kz, F) + np.einsum("...i,...i->...", r, r))
        return float(out) if np.ndim(out) == 0 else out

    def eval_map(self, F, G, state) -> tuple[np.ndarray, np.ndarray]:
        """Evaluation-mode network :math:`x\\mapsto Wx + c` with the running statistics."""
        D = state.gamma / np.sqrt(state.running_var + self.eps)
        return F @ (D[:, None] * G), F @ (state.beta - D * state.running_mean)


def _gauss_newton_blocks(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Szx = G @ batch.Sigma_x
    Sz = Szx @ G.T
    Sz = 0.5 * (Sz + Sz.T)
    return np.kron(Sz, np.eye(F.shape[0])), np.kron(batch.Sigma_x, F.T @ F), np.kron(Szx, F)


def gauss_newton_blocks(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The explicit Kronecker blocks of the Gauss-Newton matrix (docs/theory.md section 2), column-major vec,
    :math:`\theta = (\mathrm{vec}F, \mathrm{vec}G)`, :math:`z = Gx`:

    .. math::

        \hat H_{FF} = \hat\Sigma_z\otimes I_{d_Y},\quad \hat H_{GG} = \hat\Sigma_x\otimes F^\top F,\quad
        \hat H_{FG} = \hat\Sigma_{zx}\otimes F .

    F: (d_y, k). G: (k, d_x). batch: moments. Returns (H_FF, H_GG, H_FG).
    """
    return _gauss_newton_blocks(*_check_fgb("gauss_newton_blocks", F, G, batch))


def _exact_hessian(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    Hff, Hgg, Hfg = _gauss_newton_blocks(F, G, batch)
    d_y, k = F.shape
    E = F @ (G @ batch.Sigma_x) - batch.Sigma_yx
    C = np.einsum("il,jm->jilm", E, np.eye(k)).reshape(k * d_y, G.shape[1] * k)
    off = Hfg + C
    return np.block([[Hff, off], [off.T, Hgg]])


def exact_hessian(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    r"""Exact Hessian of :math:`\hat L` in :math:`\theta = (\mathrm{vec}F, \mathrm{vec}G)` (column-major):
    the Gauss-Newton matrix plus the residual term of the :math:`FG` block,

    .. math::

        \hat H = \hat H_{GN} + \begin{pmatrix}0 & C\\ C^\top & 0\end{pmatrix},\qquad
        a^\top Cb = \mathrm{tr}(E^\top AB),\quad E = FG\hat\Sigma_x - \hat\Sigma_{yx},

    for :math:`a = \mathrm{vec}A`, :math:`b = \mathrm{vec}B` (from :math:`\hat L(F+A, G+B)`'s quadratic term
    :math:`\langle AB, E\rangle`). The residual term makes :math:`\hat H` indefinite away from a minimum.
    """
    return _exact_hessian(*_check_fgb("exact_hessian", F, G, batch))


def _gn_mean_diag(F: np.ndarray, Sz: np.ndarray, Sigma_x: np.ndarray) -> float:
    """Mean diagonal entry of the Gauss-Newton matrix (scale of the relative damping)."""
    d_y, k = F.shape
    d_x = Sigma_x.shape[0]
    return float((d_y * np.trace(Sz) + np.trace(Sigma_x) * np.einsum("ij,ij->", F, F)) / (d_y * k + k * d_x))


def _pinv_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Minimum-norm solution of H x = g for symmetric H (eigenvalues below 1e-12 max|lambda| dropped)."""
    lam, U = np.linalg.eigh(0.5 * (H + H.T))
    keep = np.abs(lam) > 1e-12 * np.abs(lam).max()
    return U[:, keep] @ ((U[:, keep].T @ g) / lam[keep])


def _vec(A: np.ndarray) -> np.ndarray:
    return A.ravel(order="F")


class _DampedGaussNewton:
    r"""Exact solves with :math:`\hat H_{GN} + \delta I` (:math:`\delta > 0`) through its Kronecker blocks.

    Matrix form of the blocks: :math:`(\hat H_{GN}+\delta I)(\mathrm{vec}A, \mathrm{vec}B) =
    (\mathrm{vec}\,g_F, \mathrm{vec}\,g_G)` reads
    :math:`A(\hat\Sigma_z + \delta) + FB\hat\Sigma_{xz} = g_F` and
    :math:`F^\top A\hat\Sigma_{zx} + F^\top FB\hat\Sigma_x + \delta B = g_G`. Eliminating :math:`A` leaves
    :math:`F^\top F\,B\,S + \delta B = g_G - F^\top g_F(\hat\Sigma_z+\delta)^{-1}\hat\Sigma_{zx}` with
    :math:`S = \hat\Sigma_x - \hat\Sigma_{xz}(\hat\Sigma_z+\delta)^{-1}\hat\Sigma_{zx}`, which decouples
    row by row in the eigenbasis :math:`F^\top F = U\Lambda U^\top`: one SPD solve with
    :math:`\lambda_jS + \delta I` per row (Cholesky, factored once, reused for every right-hand side).
    """

    def __init__(self, F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray, Sz: np.ndarray, delta: float):
        k = G.shape[0]
        self.F = F
        self.Sxz = Sigma_x @ G.T                                            # (d_x, k)
        self.Kinv = _chol_solve(_chol(Sz + delta * np.eye(k)), np.eye(k))   # (Sz + d)^{-1}, k x k
        S = Sigma_x - self.Sxz @ (self.Kinv @ self.Sxz.T)
        S = 0.5 * (S + S.T)
        lam, self.U = np.linalg.eigh(F.T @ F)
        eye = np.eye(S.shape[0])
        self.chol = [_chol(lj * S + delta * eye) for lj in lam]

    def solve(self, gF: np.ndarray, gG: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solutions for stacks gF (m, d_y, k), gG (m, k, d_x) (or single matrices); 2-D BLAS products only."""
        single = gF.ndim == 2
        if single:
            gF, gG = gF[None], gG[None]
        F, Kinv, Sxz, U = self.F, self.Kinv, self.Sxz, self.U
        m, d_y, k = gF.shape
        d_x = gG.shape[2]
        FtgF = np.tensordot(gF, F, axes=([1], [0])).transpose(0, 2, 1)          # (m, k, k): F^T gF
        R = gG - ((FtgF.reshape(m * k, k) @ Kinv) @ Sxz.T).reshape(m, k, d_x)
        Rt = np.tensordot(U, R, axes=([0], [1]))                                # (k, m, d_x): U^T R
        Yt = np.empty_like(Rt)
        for j, c in enumerate(self.chol):
            Yt[j] = _chol_solve(c, Rt[j].T).T
        dG = np.tensordot(U, Yt, axes=([1], [0])).transpose(1, 0, 2)            # (m, k, d_x): U Y
        dGS = (dG.reshape(m * k, d_x) @ Sxz).reshape(m, k, k)
        FdGS = np.tensordot(F, dGS, axes=([1], [1])).transpose(1, 0, 2)        # (m, d_y, k)
        dF = ((gF - FdGS).reshape(m * d_y, k) @ Kinv).reshape(m, d_y, k)
        return (dF[0], dG[0]) if single else (dF, dG)


@dataclass(frozen=True)
class SecondOrder:
    r"""Full second-order step on the joint parameters :math:`\theta = (\mathrm{vec}F, \mathrm{vec}G)`:

    .. math:: \theta_+ = \theta - \eta\,(\hat H + \delta I)^{-1}\nabla_\theta\hat L,

    with :math:`\hat H` the Gauss-Newton matrix (``curvature="gauss_newton"``, = Fisher of the
    Gaussian likelihood, i.e. NGD; blocks in :func:`gauss_newton_blocks`) or the exact Hessian
    (``curvature="hessian"``, damped Newton, :func:`exact_hessian`). docs/theory.md section 2 [R].

    lr: :math:`\eta > 0`. damping >= 0: :math:`\delta` relative to the mean diagonal entry of
    :math:`\hat H_{GN}` (:math:`\delta = ` damping x mean diag); 0 uses the pseudo-inverse (the
    Gauss-Newton matrix is singular along the gauge directions :math:`(FS, S^{-1}G)`).
    solver (damping > 0): ``"structured"`` solves exactly through the Kronecker blocks
    (:class:`_DampedGaussNewton`; for the Hessian, the residual term
    :math:`\begin{pmatrix}0&C\\C^\top&0\end{pmatrix} = W\Omega W^\top` has rank
    :math:`\le 2k\,\mathrm{rank}(E)` and is added by the Woodbury identity
    :math:`(H_0 + W\Omega W^\top)^{-1} = H_0^{-1} - H_0^{-1}W(\Omega + W^\top H_0^{-1}W)^{-1}W^\top H_0^{-1}`);
    ``"dense"`` builds the explicit matrix (Cholesky for Gauss-Newton, a symmetric-indefinite
    solve for the Hessian). Both give the same step to round-off (tested).
    """

    lr: float
    damping: float = 1e-3
    curvature: str = "gauss_newton"
    solver: str = "structured"
    name: str = "ngd"

    def __post_init__(self):
        f = _label(self)
        _positive_lr(f, self.lr)
        V.scalar(f, "damping", self.damping, low=0.0)
        V.choice(f, "curvature", self.curvature, ("gauss_newton", "hessian"))
        V.choice(f, "solver", self.solver, ("structured", "dense"))

    def init(self, F, G):
        return None

    def direction(self, F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        r"""The step direction :math:`(\hat H + \delta I)^{-1}\nabla\hat L`, as (dF, dG)."""
        d_y, k = F.shape
        d_x = G.shape[1]
        gG = _grad_G(F, G, batch)
        gF, Sz, _ = _grad_F(F, G, batch)
        delta = self.damping * _gn_mean_diag(F, Sz, batch.Sigma_x)
        if self.solver == "structured" and delta > 0:
            gn = _DampedGaussNewton(F, G, batch.Sigma_x, Sz, delta)
            if self.curvature == "gauss_newton":
                return gn.solve(gF, gG)
            return self._woodbury(gn, F, G, batch, gF, gG)
        if self.curvature == "gauss_newton":
            Hff, Hgg, Hfg = _gauss_newton_blocks(F, G, batch)
            H = np.block([[Hff, Hfg], [Hfg.T, Hgg]])
        else:
            H = _exact_hessian(F, G, batch)
        g = np.concatenate([_vec(gF), _vec(gG)])
        if delta > 0:
            H[np.diag_indices_from(H)] += delta
            if self.curvature == "gauss_newton":
                step = _chol_solve(_chol(H), g)
            else:
                step = sla.solve(H, g, assume_a="sym", check_finite=False)
        else:
            step = _pinv_solve(H, g)
        m = d_y * k
        return step[:m].reshape((d_y, k), order="F"), step[m:].reshape((k, d_x), order="F")

    @staticmethod
    def _woodbury(gn: _DampedGaussNewton, F, G, batch, gF, gG):
        # residual term C (vec B -> vec(E B^T)) = P Q^T from the thin SVD E = U_E diag(s) V_E^T:
        # columns (q, j): P -> F-block U_E[:, q] s_q e_j^T, Q -> G-block e_j V_E[:, q]^T.
        d_y, k = F.shape
        d_x = G.shape[1]
        E = F @ (G @ batch.Sigma_x) - batch.Sigma_yx
        UE, s, VEt = np.linalg.svd(E, full_matrices=False)
        keep = s > 1e-14 * max(s[0], np.finfo(float).tiny) if s.size else s > 0
        UE, s, VE = UE[:, keep], s[keep], VEt[keep].T
        r = s.size * k
        if r == 0:
            return gn.solve(gF, gG)
        eye_k = np.eye(k)
        PF = np.einsum("iq,jm->qjim", UE * s, eye_k).reshape(r, d_y, k)  # P columns as F-block matrices
        QG = np.einsum("lq,jm->qjml", VE, eye_k).reshape(r, k, d_x)      # Q columns as G-block matrices
        zF, zG = np.zeros((r, d_y, k)), np.zeros((r, k, d_x))
        RF = np.concatenate([PF, zF, gF[None]])
        RG = np.concatenate([zG, QG, gG[None]])
        XF, XG = gn.solve(RF, RG)                                           # H0^{-1} [W, g]
        # W^T x: P-part <PF_(q,j), xF> = s_q U_E[:, q]^T xF[:, j]; Q-part <QG_(q,j), xG> = xG[j] V_E[:, q]
        m = XF.shape[0]
        WtX = np.concatenate([((UE * s).T @ XF).reshape(m, r),
                              (XG @ VE).transpose(0, 2, 1).reshape(m, r)], axis=1).T  # (2r, m)
        Omega = np.block([[np.zeros((r, r)), np.eye(r)], [np.eye(r), np.zeros((r, r))]])
        Cap = Omega + WtX[:, :-1]
        x = np.linalg.solve(Cap, WtX[:, -1])
        dF = XF[-1] - (x @ XF[:-1].reshape(2 * r, -1)).reshape(d_y, k)
        dG = XG[-1] - (x @ XG[:-1].reshape(2 * r, -1)).reshape(k, d_x)
        return dF, dG

    def step(self, F, G, batch, state):
        dF, dG = self.direction(F, G, batch)
        return F - self.lr * dF, G - self.lr * dG, state


def _second_order(name: str, curvature: str) -> Callable[..., SecondOrder]:
    return _dataclass_factory(SecondOrder, name, curvature=curvature)


# --------------------------------------------------------------------------- several step sizes at once
def _grads_stacked(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    GS = G @ batch.Sigma_x
    Sz = GS @ _T(G)
    Sz = 0.5 * (Sz + _T(Sz))
    gG = _T(F) @ (F @ GS - batch.Sigma_yx)
    gF = F @ Sz - batch.Sigma_yx @ _T(G)
    return gF, gG, Sz


def grads_stacked(F: np.ndarray, G: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grad_F, grad_G, Sigma_z) of a stack of runs, F (L, d_y, k), G (L, k, d_x): :func:`grad_F`,
    :func:`grad_G` with the same operations, batched."""
    return _grads_stacked(*_check_fgb("grads_stacked", F, G, batch, stacked=True))


def _batch_loss_stacked(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    W = F @ G
    return (0.5 * batch.trace_yy - np.einsum("lij,ij->l", W, batch.Sigma_yx)
            + 0.5 * np.einsum("lij,lij->l", W @ batch.Sigma_x, W))


def batch_loss_stacked(F: np.ndarray, G: np.ndarray, batch: Batch) -> np.ndarray:
    """(L,) batch losses of a stack of runs (:func:`batch_loss`, batched)."""
    return _batch_loss_stacked(*_check_fgb("batch_loss_stacked", F, G, batch, stacked=True))


def _take(state: Any, idx) -> Any:
    """The runs ``idx`` of a stacked state (None, an array, or a dataclass of arrays and scalars)."""
    if state is None:
        return None
    if isinstance(state, np.ndarray):
        return state[idx]
    fields = {}
    for name in state.__dataclass_fields__:
        v = getattr(state, name)
        fields[name] = v[idx] if isinstance(v, np.ndarray) else v
    return type(state)(**fields)


@dataclass(frozen=True)
class Stacked:
    r"""Runs of one update rule that differ only in their step size, stepped together on one batch.

    opt: the rule with its options (its own ``lr`` is ignored). lrs: (L,) step sizes.
    Parameters are stacks F (L, d_y, k), G (L, k, d_x); each run's numbers equal those of
    ``replace(opt, lr=lrs[i])`` stepped alone, to round-off (tested). Shared work is done once:
    the batch moments and, for KFAC-type rules, the factorisation of :math:`\hat\Sigma_x + \lambda_G I`.
    Built by :func:`stacked`; used by :func:`simulate.linrep.run_common`.
    """

    opt: Any
    lrs: np.ndarray

    def init(self, F: np.ndarray, G: np.ndarray) -> Any:
        st = [self.opt.init(F[i], G[i]) for i in range(F.shape[0])]
        if st[0] is None:
            return None
        fields = {}
        for name in st[0].__dataclass_fields__:
            v = getattr(st[0], name)
            fields[name] = np.stack([getattr(x, name) for x in st]) if isinstance(v, np.ndarray) else v
        return type(st[0])(**fields)

    def take(self, idx) -> "Stacked":
        return Stacked(self.opt, self.lrs[idx])

    def batch_loss(self, F, G, batch, state) -> np.ndarray:
        if hasattr(self.opt, "batch_loss"):
            return np.asarray(self.opt.batch_loss(F, G, batch, state), dtype=float)
        return _batch_loss_stacked(F, G, batch)

    def step(self, F, G, batch, state):
        opt, lr = self.opt, self.lrs
        lr3 = lr[:, None, None]
        if isinstance(opt, SGD):
            gF, gG, _ = _grads_stacked(F, G, batch)
            return F - lr3 * gF, G - lr3 * gG, state
        if isinstance(opt, Adam):
            gF, gG, _ = _grads_stacked(F, G, batch)
            return opt.update(F, G, gF, gG, state, lr3)
        if isinstance(opt, AMGDBatchNorm):
            return opt.update(F, G, batch, state, lr)
        if isinstance(opt, LayerwisePreconditioned):
            return self._layerwise(F, G, batch, state)
        if isinstance(opt, SecondOrder):
            gF, gG, Sz = _grads_stacked(F, G, batch)
            d_y, k = F.shape[1:]
            d_x = G.shape[2]
            mean_diag = (d_y * np.trace(Sz, axis1=1, axis2=2) + np.trace(batch.Sigma_x) * np.einsum("lij,lij->l", F, F)
                         ) / (d_y * k + k * d_x)
            dF, dG = _DampedGaussNewtonStack(F, G, batch.Sigma_x, Sz, opt.damping * mean_diag).solve(gF, gG)
            return F - lr3 * dF, G - lr3 * dG, state
        raise TypeError(f"Stacked: no stacked step for {type(opt).__name__}")

    def _layerwise(self, F, G, batch, state):
        # eq. (5) as LayerwisePreconditioned.step, batched; Sigma_x + lam_G I is factored once
        opt, lr3 = self.opt, self.lrs[:, None, None]
        L, k, d = G.shape
        _, D, _ = _grads_stacked(F, G, batch)
        if opt.left == "FtF":
            D = np.linalg.solve(_T(F) @ F, D)
        if opt.right == "Sigma_x":
            Q = batch.Sigma_x + opt.lam_G * np.eye(d) if opt.lam_G else batch.Sigma_x
            D = _chol_solve(_chol(Q), D.reshape(L * k, d).T).T.reshape(L, k, d)
        elif opt.right == "diag":
            D = D / (np.diag(batch.Sigma_x) + opt.lam_G)
        elif opt.lam_G:
            D = D / (1.0 + opt.lam_G)
        G_new = G - lr3 * D
        gF, _, Sz = _grads_stacked(F, G_new, batch)
        if opt.head_right == "Sigma_z":
            gF = _T(np.linalg.solve(Sz, _T(gF)))
        eta_F = lr3 if opt.eta_F is None else opt.eta_F
        return F - eta_F * gF, G_new, state


class _DampedGaussNewtonStack:
    """:class:`_DampedGaussNewton` for a stack of runs (F (L, d_y, k), G (L, k, d_x), delta (L,)), one
    right-hand side per run; the row systems :math:`\\lambda_jS + \\delta I` are factored in one batched
    Cholesky call."""

    def __init__(self, F: np.ndarray, G: np.ndarray, Sigma_x: np.ndarray, Sz: np.ndarray, delta: np.ndarray):
        L, k, d = G.shape
        self.F = F
        self.Sxz = Sigma_x @ _T(G)                                          # (L, d_x, k)
        eye_k = np.eye(k)
        self.Kinv = np.linalg.solve(Sz + delta[:, None, None] * eye_k, np.broadcast_to(eye_k, Sz.shape))
        S = Sigma_x - self.Sxz @ (self.Kinv @ _T(self.Sxz))
        S = 0.5 * (S + _T(S))
        lam, self.U = np.linalg.eigh(_T(F) @ F)
        self.chol = np.linalg.cholesky(lam[:, :, None, None] * S[:, None] + delta[:, None, None, None] * np.eye(d))

    def solve(self, gF: np.ndarray, gG: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R = _T(self.U) @ (gG - _T(self.F) @ ((gF @ self.Kinv) @ _T(self.Sxz)))
        Y = np.empty_like(R)
        for ij in np.ndindex(R.shape[:2]):
            Y[ij] = _chol_solve(self.chol[ij], R[ij])
        dG = self.U @ Y
        dF = (gF - self.F @ (dG @ self.Sxz)) @ self.Kinv
        return dF, dG


def stacked(opts: "list[Any] | tuple[Any, ...]") -> Stacked | None:
    """A :class:`Stacked` running ``opts`` together, or ``None`` when they are not one built-in rule
    (SGD, eq. (5) variants, Adam, AMGD+BN, damped Gauss-Newton with the structured solver) with equal
    options apart from ``lr``."""
    from dataclasses import fields, is_dataclass

    V.check(isinstance(opts, (list, tuple)) and len(opts) > 0, "stacked", "opts",
            "a non-empty list of optimizers (objects with init(F, G) and step(F, G, batch, state))", V.describe(opts))
    for o in opts:
        V.check(_is_built(o), "stacked", "opts", "a non-empty list of optimizers (objects with init(F, G) and "
                "step(F, G, batch, state))", f"an element {V.describe(o)}")
    first = opts[0]
    if type(first) not in (SGD, LayerwisePreconditioned, Adam, AMGDBatchNorm, SecondOrder) or not is_dataclass(first):
        return None
    if isinstance(first, SecondOrder) and not (first.curvature == "gauss_newton" and first.solver == "structured"
                                               and first.damping > 0):
        return None
    key = [(f.name, getattr(first, f.name)) for f in fields(first) if f.name != "lr"]
    for o in opts[1:]:
        if type(o) is not type(first) or [(f.name, getattr(o, f.name)) for f in fields(o) if f.name != "lr"] != key:
            return None
    return Stacked(first, np.array([o.lr for o in opts], dtype=float))


register("adam", _dataclass_factory(Adam, "adam"))
register("amgd_bn", _dataclass_factory(AMGDBatchNorm, "amgd_bn"))
register("ngd", _second_order("ngd", "gauss_newton"))
register("newton", _second_order("newton", "hessian"))


# --------------------------------------------------------------------------- matrix preconditioners (step 9)
# Shampoo, Muon, SOAP and diagonal AdaGrad live in simulate.matrix_optimizers, which imports nothing from
# this module at load time (it takes grad_F / grad_G when a step runs), so either module may be imported first.
from simulate import matrix_optimizers as _matrix  # noqa: E402

for _name, _factory in _matrix.FACTORIES.items():
    register(_name, _factory)
del _name, _factory
