"""Data generators: covariances, teachers and problem draws (THEORY.md 3.1.0, 4.0, section 5).

All draws come from an explicit ``numpy.random.Generator``. Reconstructed recipes [R] (the
paper's exact generators are unknown):

- ``conditioned_covariance`` (Figure 1 family): :math:`\\Sigma_x = O\\,\\mathrm{diag}(\\lambda)O^\\top`,
  :math:`O` Haar, :math:`\\lambda` geometric from 1 to :math:`1/\\kappa_x`, rescaled to mean 1.
- ``anisotropic_covariance`` (Figure 3 family): half the eigenvalues 1 and half
  :math:`1-\\epsilon`, rescaled so :math:`\\mathrm{tr}\\Sigma/d=1`;
  :math:`\\kappa(\\Sigma_\\epsilon) = 1/(1-\\epsilon)`, larger :math:`\\epsilon` = more anisotropic.
- ``orthonormal_rows``: :math:`G^*` = orthonormalised Gaussian rows (QR).
- ``conditioned_head``: :math:`F^* = U\\,\\mathrm{diag}(s)V^\\top`, :math:`U, V` Haar, :math:`s`
  geometric from 1 to :math:`1/\\kappa_F`.
- ``sample_inputs``: :math:`x = \\Sigma_x^{1/2} w` with :math:`w` Rademacher, uniform or Gaussian
  of unit variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulate import _validate as V

LAWS = ("rademacher", "uniform", "gaussian")


def _int(func: str, name: str, x, low: int = 1) -> int:
    return V.integer(func, name, x, low=low)


def _rng(func: str, rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise V.fail(func, "rng", "a numpy.random.Generator", type(rng).__name__)
    return rng


def haar_orthogonal(d: int, *, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed (d, d) orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    d = _int("haar_orthogonal", "d", d)
    rng = _rng("haar_orthogonal", rng)
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def geometric_spectrum(d: int, *, kappa: float, mean_one: bool = True) -> np.ndarray:
    """``d`` eigenvalues geometric from 1 down to ``1/kappa`` (descending), rescaled to mean 1."""
    d = _int("geometric_spectrum", "d", d)
    kappa = V.scalar("geometric_spectrum", "kappa", kappa, low=1.0)
    lam = np.geomspace(1.0, 1.0 / kappa, d) if d > 1 else np.ones(1)
    return lam / lam.mean() if mean_one else lam


def two_level_spectrum(d: int, *, eps: float) -> np.ndarray:
    """Half the eigenvalues 1, half ``1 - eps`` (descending), rescaled to mean 1 (Figure 3 family)."""
    d = _int("two_level_spectrum", "d", d)
    eps = V.scalar("two_level_spectrum", "eps", eps, low=0.0, high=1.0, high_open=True)
    lam = np.ones(d)
    lam[d - d // 2:] = 1.0 - eps
    return lam / lam.mean()


def _rotate(lam: np.ndarray, O: np.ndarray | None) -> np.ndarray:
    if O is None:
        return np.diag(lam)
    S = (O * lam) @ O.T
    return 0.5 * (S + S.T)


def conditioned_covariance(d: int, *, kappa: float, rng: np.random.Generator, rotate: bool = True) -> np.ndarray:
    """Figure 1 family: condition number ``kappa``, mean eigenvalue 1, Haar eigenbasis.

    d: dimension. kappa: condition number (>= 1). rotate: False keeps it diagonal (axis-aligned).
    """
    lam = geometric_spectrum(d, kappa=kappa)
    return _rotate(lam, haar_orthogonal(d, rng=_rng("conditioned_covariance", rng)) if rotate else None)


def anisotropic_covariance(d: int, *, eps: float, rng: np.random.Generator, rotate: bool = True) -> np.ndarray:
    """Figure 3 family: two-level spectrum (1 and 1 - eps, rescaled to mean 1), Haar eigenbasis.

    eps in [0, 1): anisotropy; 0 is isotropic, kappa(Sigma) = 1 / (1 - eps).
    """
    lam = two_level_spectrum(d, eps=eps)
    return _rotate(lam, haar_orthogonal(d, rng=_rng("anisotropic_covariance", rng)) if rotate else None)


def orthonormal_rows(k: int, d: int, *, rng: np.random.Generator) -> np.ndarray:
    """G*: a (k, d) matrix with orthonormal rows spanning a uniformly random subspace."""
    k = _int("orthonormal_rows", "k", k)
    d = _int("orthonormal_rows", "d", d)
    if k > d:
        raise V.fail("orthonormal_rows", "k", f"<= d = {d}", k)
    Q, _ = np.linalg.qr(_rng("orthonormal_rows", rng).standard_normal((d, k)))
    return Q.T.copy()


def conditioned_head(d_y: int, k: int, *, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """F*: (d_y, k), singular values geometric from 1 to 1/kappa, Haar singular vectors."""
    d_y = _int("conditioned_head", "d_y", d_y)
    k = _int("conditioned_head", "k", k)
    if d_y < k:
        raise V.fail("conditioned_head", "d_y", f">= k = {k} (F* of full column rank)", d_y)
    s = geometric_spectrum(k, kappa=kappa, mean_one=False)
    U = haar_orthogonal(d_y, rng=rng)[:, :k]
    Vt = haar_orthogonal(k, rng=rng)
    return (U * s) @ Vt


def symmetric_sqrt(Sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of an SPD matrix by ``eigh``."""
    lam, O = np.linalg.eigh(Sigma)
    if lam[0] <= 0:
        raise V.fail("symmetric_sqrt", "Sigma", "positive-definite", f"smallest eigenvalue {lam[0]:.3e}")
    R = (O * np.sqrt(lam)) @ O.T
    return 0.5 * (R + R.T)


def standard_inputs(n: int, d: int, *, law: str, rng: np.random.Generator) -> np.ndarray:
    """(n, d) iid entries of zero mean and unit variance: Rademacher, uniform or Gaussian."""
    V.choice("standard_inputs", "law", law, LAWS)
    if law == "gaussian":
        return rng.standard_normal((n, d))
    if law == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n, d))
    return rng.integers(0, 2, size=(n, d), dtype=np.int8).astype(float) * 2.0 - 1.0


def sample_inputs(n: int, Sigma_sqrt: np.ndarray, *, law: str, rng: np.random.Generator) -> np.ndarray:
    """(n, d) inputs :math:`x_i = \\Sigma_x^{1/2} w_i` (rows), ``w`` of the given ``law``."""
    return standard_inputs(n, Sigma_sqrt.shape[0], law=law, rng=rng) @ Sigma_sqrt


@dataclass(frozen=True)
class LinRepProblem:
    """One linear representation learning task (THEORY.md 3.1.0), with its transfer task.

    G_star: (k, d_x) row-orthonormal true representation.
    F_star: (d_y, k) true head (training task).
    Sigma_x: (d_x, d_x) input covariance; Sigma_x_sqrt its symmetric square root.
    noise_std: sigma_eps of the label noise. law: input law of w in x = Sigma_x^{1/2} w.
    F_test: (d_y, k) head of the transfer task; Sigma_test: its input covariance (identity).
    """

    G_star: np.ndarray
    F_star: np.ndarray
    Sigma_x: np.ndarray
    Sigma_x_sqrt: np.ndarray
    noise_std: float
    law: str
    F_test: np.ndarray
    Sigma_test: np.ndarray

    @property
    def d_x(self) -> int:
        return self.G_star.shape[1]

    @property
    def d_y(self) -> int:
        return self.F_star.shape[0]

    @property
    def k(self) -> int:
        return self.G_star.shape[0]

    @property
    def M(self) -> np.ndarray:
        """The true product F* G* (d_y, d_x)."""
        return self.F_star @ self.G_star


def linrep_problem(
    d_x: int,
    d_y: int,
    k: int,
    *,
    kappa_x: float,
    kappa_F: float,
    noise_std: float,
    rng: np.random.Generator,
    law: str = "rademacher",
    rotate: bool = True,
    F_star: np.ndarray | None = None,
) -> LinRepProblem:
    """Draw a task: G*, F* (condition ``kappa_F``, or the given ``F_star``), Sigma_x (``kappa_x``).

    rotate: False gives an axis-aligned (diagonal) Sigma_x. The transfer head F_test has
    N(0, 1/k) entries and the transfer inputs are isotropic.
    """
    func = "linrep_problem"
    d_x, d_y, k = _int(func, "d_x", d_x), _int(func, "d_y", d_y), _int(func, "k", k)
    if k > d_x:
        raise V.fail(func, "k", f"<= d_x = {d_x}", k)
    V.scalar(func, "noise_std", noise_std, low=0.0)
    V.choice(func, "law", law, LAWS)
    rng = _rng(func, rng)
    G_star = orthonormal_rows(k, d_x, rng=rng)
    if F_star is None:
        F_star = conditioned_head(d_y, k, kappa=kappa_F, rng=rng)
    else:
        F_star = V.matrix(func, "F_star", F_star, shape=(d_y, k))
    Sigma_x = conditioned_covariance(d_x, kappa=kappa_x, rng=rng, rotate=rotate)
    F_test = rng.standard_normal((d_y, k)) / np.sqrt(k)
    return LinRepProblem(G_star, F_star, Sigma_x, symmetric_sqrt(Sigma_x), float(noise_std), law,
                         F_test, np.eye(d_x))


def draw_batch(problem: LinRepProblem, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y): n samples of :math:`y = F^*G^*x + \\varepsilon`, rows are samples."""
    n = _int("draw_batch", "n", n)
    X = sample_inputs(n, problem.Sigma_x_sqrt, law=problem.law, rng=rng)
    Y = X @ problem.M.T
    if problem.noise_std > 0:
        Y += problem.noise_std * rng.standard_normal(Y.shape)
    return X, Y


def rademacher_signs(n: int, d: int, *, rng: np.random.Generator) -> np.ndarray:
    """(n, d) iid Rademacher signs built from random bytes, eight signs per byte.

    The same law as ``standard_inputs(n, d, law="rademacher")`` (each bit of ``rng.bytes`` is a fair
    coin) at an eighth of the random draws; the stream is consumed differently, so the signs differ.
    """
    n = _int("rademacher_signs", "n", n)
    d = _int("rademacher_signs", "d", d)
    bits = np.unpackbits(np.frombuffer(_rng("rademacher_signs", rng).bytes(-(-n * d // 8)), dtype=np.uint8))
    return (bits[: n * d].astype(np.float64) * 2.0 - 1.0).reshape(n, d)


def draw_batch_fast(problem: LinRepProblem, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) like :func:`draw_batch` (same law), with Rademacher inputs from :func:`rademacher_signs`."""
    n = _int("draw_batch_fast", "n", n)
    if problem.law != "rademacher":
        return draw_batch(problem, n, rng=rng)
    X = rademacher_signs(n, problem.d_x, rng=rng) @ problem.Sigma_x_sqrt
    Y = X @ problem.M.T
    if problem.noise_std > 0:
        Y += problem.noise_std * rng.standard_normal(Y.shape)
    return X, Y
