"""Data generators: covariances, teachers and problem draws (docs/theory.md 3.1.0, 4.0, section 5).

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

Training batches of :math:`y = F^*G^*x + \\varepsilon` are drawn as their sufficient statistics by
:class:`BatchSampler` (Rademacher signs from raw random bits, one float32 SYRK of
:math:`[W\\,|\\,E\\,|\\,\\mathbf 1]`: :math:`W^\\top W` exact, the noise products within a derived bound; no
:math:`X` formed); :func:`draw_batch_fast` materialises the same batch (same draws) and
:func:`draw_batch` is the plain sample path (``rng.integers`` signs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulate import _validate as V

LAWS = ("rademacher", "uniform", "gaussian")


def _int(func: str, name: str, x, low: int = 1) -> int:
    return V.integer(func, name, x, low=low)


def _rng(func: str, rng, name: str = "rng") -> np.random.Generator:
    return V.generator(func, name, rng)


def _square_mem(func: str, name: str, d: int, copies: int, what: str) -> None:
    V.memory(func, {name: d}, 8.0 * copies * float(d) ** 2, f"{what}, {8 * copies} {name}^2 bytes,")


# ----------------------------------------------------------------------------- kernels (checked inputs)
def _haar(d: int, rng: np.random.Generator) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def _geometric(d: int, kappa: float, mean_one: bool = True) -> np.ndarray:
    lam = np.geomspace(1.0, 1.0 / kappa, d) if d > 1 else np.ones(1)
    return lam / lam.mean() if mean_one else lam


def _two_level(d: int, eps: float) -> np.ndarray:
    lam = np.ones(d)
    lam[d - d // 2:] = 1.0 - eps
    return lam / lam.mean()


def _sqrt(Sigma: np.ndarray) -> np.ndarray:
    lam, O = np.linalg.eigh(Sigma)
    R = (O * np.sqrt(np.maximum(lam, 0.0))) @ O.T
    return 0.5 * (R + R.T)


def _standard(n: int, d: int, law: str, rng: np.random.Generator) -> np.ndarray:
    if law == "gaussian":
        return rng.standard_normal((n, d))
    if law == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n, d))
    return rng.integers(0, 2, size=(n, d), dtype=np.int8).astype(float) * 2.0 - 1.0


def _kappa(func: str, name: str, kappa) -> float:
    return V.scalar(func, name, kappa, low=1.0)


# ----------------------------------------------------------------------------- public
def haar_orthogonal(d: int, *, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed (d, d) orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    f = "haar_orthogonal"
    d = _int(f, "d", d)
    _square_mem(f, "d", d, 3, "the Gaussian matrix and its QR factors")
    return _haar(d, _rng(f, rng))


def geometric_spectrum(d: int, *, kappa: float, mean_one: bool = True) -> np.ndarray:
    """``d`` eigenvalues geometric from 1 down to ``1/kappa`` (descending), rescaled to mean 1."""
    f = "geometric_spectrum"
    d = V.size(f, "d", d, bytes_per=16.0, what="the spectrum, 16 d bytes,")
    return _geometric(d, _kappa(f, "kappa", kappa), V.flag(f, "mean_one", mean_one))


def two_level_spectrum(d: int, *, eps: float) -> np.ndarray:
    """Half the eigenvalues 1, half ``1 - eps`` (descending), rescaled to mean 1 (Figure 3 family)."""
    f = "two_level_spectrum"
    d = V.size(f, "d", d, bytes_per=16.0, what="the spectrum, 16 d bytes,")
    return _two_level(d, V.scalar(f, "eps", eps, low=0.0, high=1.0, high_open=True))


def _rotate(lam: np.ndarray, O: np.ndarray | None) -> np.ndarray:
    if O is None:
        return np.diag(lam)
    S = (O * lam) @ O.T
    return 0.5 * (S + S.T)


def _covariance(func: str, d, rng, rotate) -> tuple[int, np.random.Generator, bool]:
    d = _int(func, "d", d)
    _square_mem(func, "d", d, 5, "the covariance, its eigenbasis and their products")
    return d, _rng(func, rng), V.flag(func, "rotate", rotate)


def conditioned_covariance(d: int, *, kappa: float, rng: np.random.Generator, rotate: bool = True) -> np.ndarray:
    """Figure 1 family: condition number ``kappa``, mean eigenvalue 1, Haar eigenbasis.

    d: dimension. kappa: condition number (>= 1). rotate: False keeps it diagonal (axis-aligned).
    """
    f = "conditioned_covariance"
    d, rng, rotate = _covariance(f, d, rng, rotate)
    lam = _geometric(d, _kappa(f, "kappa", kappa))
    return _rotate(lam, _haar(d, rng) if rotate else None)


def anisotropic_covariance(d: int, *, eps: float, rng: np.random.Generator, rotate: bool = True) -> np.ndarray:
    """Figure 3 family: two-level spectrum (1 and 1 - eps, rescaled to mean 1), Haar eigenbasis.

    eps in [0, 1): anisotropy; 0 is isotropic, kappa(Sigma) = 1 / (1 - eps).
    """
    f = "anisotropic_covariance"
    d, rng, rotate = _covariance(f, d, rng, rotate)
    lam = _two_level(d, V.scalar(f, "eps", eps, low=0.0, high=1.0, high_open=True))
    return _rotate(lam, _haar(d, rng) if rotate else None)


def _orthonormal_rows(k: int, d: int, rng: np.random.Generator) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return Q.T.copy()


def orthonormal_rows(k: int, d: int, *, rng: np.random.Generator) -> np.ndarray:
    """G*: a (k, d) matrix with orthonormal rows spanning a uniformly random subspace."""
    f = "orthonormal_rows"
    k = _int(f, "k", k)
    d = _int(f, "d", d)
    V.check(k <= d, f, "k", f"<= d = {d} (k orthonormal rows in R^d)", k)
    V.memory(f, {"k": k, "d": d}, 24.0 * k * d, "the (d, k) Gaussian matrix and its QR factors, 24 k d bytes,")
    return _orthonormal_rows(k, d, _rng(f, rng))


def _conditioned_head(d_y: int, k: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    s = _geometric(k, kappa, mean_one=False)
    U = _haar(d_y, rng)[:, :k]
    Vt = _haar(k, rng)
    return (U * s) @ Vt


def conditioned_head(d_y: int, k: int, *, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """F*: (d_y, k), singular values geometric from 1 to 1/kappa, Haar singular vectors."""
    f = "conditioned_head"
    d_y = _int(f, "d_y", d_y)
    k = _int(f, "k", k)
    _square_mem(f, "k", k, 3, "the Haar (k, k) factor and its QR")
    V.check(d_y >= k, f, "d_y", f">= k = {k} (F* of full column rank)", d_y)
    _square_mem(f, "d_y", d_y, 3, "the Haar (d_y, d_y) factor and its QR")
    return _conditioned_head(d_y, k, _kappa(f, "kappa", kappa), _rng(f, rng))


def symmetric_sqrt(Sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of an SPD matrix by ``eigh``.

    Sigma: (d, d) real, finite, symmetric to 1e-10 relative and positive-definite by the relative
    threshold of :mod:`simulate._validate` (a numerically singular matrix has no well-determined root).
    """
    return _sqrt(V.spd("symmetric_sqrt", "Sigma", Sigma))


def standard_inputs(n: int, d: int, *, law: str, rng: np.random.Generator) -> np.ndarray:
    """(n, d) iid entries of zero mean and unit variance: Rademacher, uniform or Gaussian."""
    f = "standard_inputs"
    n, d = _int(f, "n", n), _int(f, "d", d)
    V.memory(f, {"n": n, "d": d}, 17.0 * n * d, "the (n, d) inputs, 17 n d bytes,")
    return _standard(n, d, V.choice(f, "law", law, LAWS), _rng(f, rng))


def sample_inputs(n: int, Sigma_sqrt: np.ndarray, *, law: str, rng: np.random.Generator) -> np.ndarray:
    """(n, d) inputs :math:`x_i = \\Sigma_x^{1/2} w_i` (rows), ``w`` of the given ``law``.

    Sigma_sqrt: the symmetric positive-definite square root :math:`\\Sigma_x^{1/2}` (d, d).
    """
    f = "sample_inputs"
    n = _int(f, "n", n)
    S = V.spd(f, "Sigma_sqrt", Sigma_sqrt)
    V.memory(f, {"n": n}, 25.0 * n * S.shape[0], "the (n, d) inputs and their product, 25 n d bytes,")
    return _standard(n, S.shape[0], V.choice(f, "law", law, LAWS), _rng(f, rng)) @ S


#: largest max|G* G*^T - I| of a representation said to have orthonormal rows (QR gives O(d eps)).
ORTHONORMAL_TOL = 1e-10


@dataclass(frozen=True)
class LinRepProblem:
    """One linear representation learning task (docs/theory.md 3.1.0), with its transfer task.

    G_star: (k, d_x) row-orthonormal true representation.
    F_star: (d_y, k) true head (training task).
    Sigma_x: (d_x, d_x) input covariance; Sigma_x_sqrt its symmetric square root.
    noise_std: sigma_eps of the label noise. law: input law of w in x = Sigma_x^{1/2} w.
    F_test: (d_y, k) head of the transfer task; Sigma_test: its input covariance (identity).
    Every field is checked when the problem is built (:mod:`simulate._validate`: shapes, finiteness,
    orthonormal rows of G_star to :data:`ORTHONORMAL_TOL`, F_star of full column rank, the covariances
    and the square root symmetric positive-definite).
    """

    G_star: np.ndarray
    F_star: np.ndarray
    Sigma_x: np.ndarray
    Sigma_x_sqrt: np.ndarray
    noise_std: float
    law: str
    F_test: np.ndarray
    Sigma_test: np.ndarray

    def __post_init__(self):
        f = "LinRepProblem"
        G = V.full_row_rank(f, "G_star", self.G_star, labels=("k", "d_x"))
        k, d_x = G.shape
        err = float(np.abs(G @ G.T - np.eye(k)).max())
        V.check(err <= ORTHONORMAL_TOL, f, "G_star", f"a matrix with orthonormal rows (max|G G^T - I| <= "
                f"{ORTHONORMAL_TOL:g})", f"max|G G^T - I| = {err:.3e}")
        F = V.full_column_rank(f, "F_star", self.F_star, cols=k, labels=("d_y", "k"))
        d_y = F.shape[0]
        fields = dict(G_star=G, F_star=F, Sigma_x=V.spd(f, "Sigma_x", self.Sigma_x, d=d_x, label="d_x"),
                      Sigma_x_sqrt=V.spd(f, "Sigma_x_sqrt", self.Sigma_x_sqrt, d=d_x, label="d_x"),
                      noise_std=V.scalar(f, "noise_std", self.noise_std, low=0.0),
                      law=V.choice(f, "law", self.law, LAWS),
                      F_test=V.matrix(f, "F_test", self.F_test, shape=(d_y, k), labels=("d_y", "k")),
                      Sigma_test=V.spd(f, "Sigma_test", self.Sigma_test, d=d_x, label="d_x"))
        for key, value in fields.items():
            object.__setattr__(self, key, value)

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
    f = "linrep_problem"
    d_x, d_y, k = _int(f, "d_x", d_x), _int(f, "d_y", d_y), _int(f, "k", k)
    V.check(k <= d_x, f, "k", f"<= d_x = {d_x} (k orthonormal rows in R^d_x)", k)
    V.check(d_y >= k, f, "d_y", f">= k = {k} (F* of full column rank)", d_y)
    V.memory(f, {"d_x": d_x, "d_y": d_y}, 8.0 * (8 * d_x * d_x + 3 * d_y * d_y + 4 * k * (d_x + d_y)),
             "the covariances, their factors and the heads, 8 (8 d_x^2 + 3 d_y^2 + 4 k (d_x + d_y)) bytes,")
    kappa_x = _kappa(f, "kappa_x", kappa_x)
    kappa_F = _kappa(f, "kappa_F", kappa_F)
    noise_std = V.scalar(f, "noise_std", noise_std, low=0.0)
    law = V.choice(f, "law", law, LAWS)
    rotate = V.flag(f, "rotate", rotate)
    if F_star is not None:
        F_star = V.full_column_rank(f, "F_star", F_star, rows=d_y, cols=k, labels=("d_y", "k"))
    rng = _rng(f, rng)
    G_star = _orthonormal_rows(k, d_x, rng)
    if F_star is None:
        F_star = _conditioned_head(d_y, k, kappa_F, rng)
    Sigma_x = _rotate(_geometric(d_x, kappa_x), _haar(d_x, rng) if rotate else None)
    F_test = rng.standard_normal((d_y, k)) / np.sqrt(k)
    return _problem(G_star=G_star, F_star=F_star, Sigma_x=Sigma_x, Sigma_x_sqrt=_sqrt(Sigma_x),
                    noise_std=float(noise_std), law=law, F_test=F_test, Sigma_test=np.eye(d_x))


def _problem(**fields) -> LinRepProblem:
    """A LinRepProblem from fields built by :func:`linrep_problem` (checked there: no second check)."""
    p = object.__new__(LinRepProblem)
    for key, value in fields.items():
        object.__setattr__(p, key, value)
    return p


def _check_problem(func: str, problem, name: str = "problem") -> LinRepProblem:
    return V.instance(func, name, problem, LinRepProblem, "a simulate.data.LinRepProblem (see linrep_problem)")


def draw_batch(problem: LinRepProblem, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y): n samples of :math:`y = F^*G^*x + \\varepsilon`, rows are samples."""
    f = "draw_batch"
    problem = _check_problem(f, problem)
    n = _int(f, "n", n)
    _batch_mem(f, n, problem)
    rng = _rng(f, rng)
    X = _standard(n, problem.d_x, problem.law, rng) @ problem.Sigma_x_sqrt
    Y = X @ problem.M.T
    if problem.noise_std > 0:
        Y += problem.noise_std * rng.standard_normal(Y.shape)
    return X, Y


#: Sign lookup: row b holds the eight bits of byte b (most significant first, as ``np.unpackbits``) as +-1.
_SIGN_TABLE = {np.dtype(t): (np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(t) * 2 - 1)
               for t in (np.float32, np.float64)}
#: Largest batch whose Rademacher Gram matrix W'W is formed in float32: its entries are integers of
#: modulus <= n, and so is every partial sum, hence exact below 2**24 (the float32 significand).
EXACT_FLOAT32_N = 2**24
#: Unit round-off of float32 (the noise products E'W, E'1 of the float32 SYRK are rounded to it).
U32 = float(np.finfo(np.float32).eps) / 2


def random_bits(nbits: int, rng: np.random.Generator) -> np.ndarray:
    """``ceil(nbits / 64)`` raw 64-bit words of ``rng``'s bit generator as little-endian bytes (uint8),
    eight fair coins per byte: the cheapest draw of independent fair bits (``random_raw``)."""
    f = "random_bits"
    nbits = V.size(f, "nbits", nbits, bytes_per=0.25, what="the words, nbits / 4 bytes,")
    return _random_bits(nbits, _rng(f, rng))


def _random_bits(nbits: int, rng: np.random.Generator) -> np.ndarray:
    words = rng.bit_generator.random_raw(-(-nbits // 64))
    return words.astype("<u8", copy=False).view(np.uint8)


def _batch_mem(func: str, n: int, problem: LinRepProblem) -> None:
    V.memory(func, {"n": n}, 8.0 * n * (3 * problem.d_x + 2 * problem.d_y + 8),
             f"the batch's arrays, 8 n (3 d_x + 2 d_y + 8) bytes with d_x = {problem.d_x}, d_y = {problem.d_y},")


def rademacher_signs(n: int, d: int, *, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """(n, d) iid Rademacher signs from raw random bits (:func:`random_bits`), 64 signs per word.

    The same law as ``standard_inputs(n, d, law="rademacher")`` (each bit of the raw stream is a fair
    coin) from a sixty-fourth of the draws; the stream is consumed differently, so the signs differ.
    Row ``i`` is read from the ``b = ceil(d / 8)`` bytes ``i b, ..., i b + b - 1`` of the little-endian
    words, most significant bit first: entry ``(i, j)`` is bit ``8 b i + j`` (the last ``8 b - d`` bits of a
    row are drawn and unused, a row starts on a byte; :func:`draw_batch_fast` spaces the rows further,
    as :class:`BatchSampler` writes them). dtype: ``float64`` or ``float32`` (+-1 is exact in both).
    """
    f = "rademacher_signs"
    n, d = _int(f, "n", n), _int(f, "d", d)
    V.memory(f, {"n": n, "d": d}, 17.0 * n * (d + 7), "the (n, d) signs, 17 n (d + 7) bytes,")
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    V.check(dt in _SIGN_TABLE, f, "dtype", "numpy.float32 or numpy.float64", V.describe(dtype) if dt is None else dt)
    return _rademacher(n, d, _rng(f, rng), dt)


def _rademacher(n: int, d: int, rng: np.random.Generator, dt=np.dtype(np.float64),
                row_bytes: int = 0) -> np.ndarray:
    """Row i from bytes ``r i, ..., r i + ceil(d/8) - 1``, ``r = row_bytes`` (default and least ``ceil(d/8)``)."""
    r = max(row_bytes, -(-d // 8))
    raw = _random_bits(8 * r * n, rng)[: r * n]
    W = np.take(_SIGN_TABLE[dt], raw, axis=0).reshape(n, 8 * r)
    return W if 8 * r == d else np.ascontiguousarray(W[:, :d])


def _sign_row_bytes(problem: LinRepProblem) -> int:
    """Bytes of the raw stream per row of the signs W of a batch of ``problem`` (:class:`BatchSampler`'s
    buffer row [W | E | 1], rounded up to whole bytes, so that the signs fill it with one contiguous take)."""
    return -(-(problem.d_x + problem.d_y + 1) // 8)


def draw_batch_fast(problem: LinRepProblem, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r"""(X, Y) like :func:`draw_batch` (same law), materialised from the draws of :class:`BatchSampler`.

    Consumes ``rng`` exactly as :meth:`BatchSampler.draw` does (the standard inputs W, then the standard
    label noise E, float64, row by row), so both give the same batch :math:`X = W\Sigma_x^{1/2}`,
    :math:`Y = XM^\top + \sigma E`: this is the sampler's materialised reference. Rademacher W is read
    from raw random bits as :func:`rademacher_signs` reads them but for the rows' spacing: row i is the
    first d_x bits of bytes :math:`ri, \dots` of the stream, :math:`r = \lceil (d_x + d_y + 1)/8\rceil`
    (the sampler's buffer row, the remaining bits drawn and unused), so :math:`\lceil n r/8\rceil` words a
    batch.
    """
    f = "draw_batch_fast"
    problem = _check_problem(f, problem)
    n = _int(f, "n", n)
    _batch_mem(f, n, problem)
    rng = _rng(f, rng)
    return _draw_batch_fast(problem, n, rng)


def _draw_batch_fast(problem: LinRepProblem, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if problem.law == "rademacher":
        W = _rademacher(n, problem.d_x, rng, row_bytes=_sign_row_bytes(problem))
    else:
        W = _standard(n, problem.d_x, problem.law, rng)
    X = W @ problem.Sigma_x_sqrt
    Y = X @ problem.M.T
    if problem.noise_std > 0:
        Y += problem.noise_std * rng.standard_normal(Y.shape)
    return X, Y


@dataclass(frozen=True)
class BatchMoments:
    r"""Sufficient statistics of one batch of :math:`y = Mx + \varepsilon` (rows of X, Y are samples).

    Sigma_x: :math:`X^\top X/n`. Sigma_yx: :math:`Y^\top X/n`. trace_yy: :math:`\lVert Y\rVert_F^2/n`.
    n: batch size. x_mean, y_mean: the sample means :math:`\bar x = X^\top\mathbf 1/n`, :math:`\bar y`.
    """

    Sigma_x: np.ndarray
    Sigma_yx: np.ndarray
    trace_yy: float
    n: int
    x_mean: np.ndarray | None = None
    y_mean: np.ndarray | None = None


class BatchSampler:
    r"""Draws fresh batches of ``n`` samples of one task as their sufficient statistics, never forming X.

    With :math:`X = WS` (:math:`S = \Sigma_x^{1/2}`, W the (n, d_x) standard inputs of ``problem.law``)
    and :math:`Y = XM^\top + \sigma E` (:math:`M = F^*G^*`, E (n, d_y) standard Gaussian label noise),

    .. math::

        \hat\Sigma_x = \tfrac1n\,S\,(W^\top W)\,S,\qquad
        \hat\Sigma_{yx} = \tfrac1n\big(MS\,(W^\top W) + \sigma E^\top W\big)S,\qquad
        \tfrac1n\lVert Y\rVert_F^2 = \langle M\hat\Sigma_x, M\rangle + \tfrac{2\sigma}{n}\langle E^\top W, MS\rangle
        + \tfrac{\sigma^2}{n}\lVert E\rVert_F^2,

    :math:`\bar x = S\,W^\top\mathbf 1/n` and :math:`\bar y = M\bar x + \sigma E^\top\mathbf 1/n`. Every
    product of the draws comes from one SYRK :math:`G = B^\top B` of the work buffer
    :math:`B = [W\,|\,E\,|\,\mathbf 1\,|\,\text{padding}]` (n rows, :math:`w = 8\lceil(d_x+d_y+1)/8\rceil`
    columns; E's unread when :math:`\sigma = 0`, the ones column without the means): its blocks are
    :math:`W^\top W`, :math:`E^\top W`, :math:`E^\top E`, :math:`W^\top\mathbf 1` and :math:`E^\top\mathbf 1`.

    Rademacher W (``n`` <= :data:`EXACT_FLOAT32_N`): B is float32 and the sign bits are written straight
    into it, :math:`w/8` bytes of the raw stream a row (:func:`draw_batch_fast` reads them alike).
    :math:`W^\top W` and :math:`W^\top\mathbf 1` are exact (integer entries and partial sums of modulus
    :math:`\le n \le 2^{24}`). The noise is drawn in float64 (as
    :func:`draw_batch_fast` draws it) and rounded to float32 in B. In :math:`E^\top W` and :math:`E^\top\mathbf 1`
    the products are then exact (factors :math:`\pm1`, 1) and any summation order adds at most :math:`n-1`
    roundings, so with :math:`u = 2^{-24}` (:data:`U32`) and Higham's Lemma 3.3
    (:math:`\gamma_{n-1} + u + u\gamma_{n-1} \le \gamma_n`)

    .. math::

        \big|\mathrm{fl}(E^\top W)_{jk} - (E^\top W)_{jk}\big| \le \gamma_n \textstyle\sum_i |E_{ij}|,\qquad
        \big|\mathrm{fl}(E^\top\mathbf 1)_j - (E^\top\mathbf 1)_j\big| \le \gamma_n \textstyle\sum_i |E_{ij}|,\qquad
        \big|\mathrm{fl}(E^\top E)_{jj} - (E^\top E)_{jj}\big| \le \gamma_{n+2} \textstyle\sum_i E_{ij}^2,

    :math:`\gamma_n = nu/(1-nu)` (:math:`6.1\times10^{-5}` at n = 1024; the squares are rounded once more).
    Against a typical entry :math:`|E^\top W|_{jk}\approx\sqrt n` the first bound is a relative
    :math:`\gamma_n\sqrt{2n/\pi}` (0.16% at n = 1024, worst case; the rounding errors having both signs, a
    relative :math:`O(u\sqrt n)`, about :math:`10^{-6}`, is what the tests see); it enters
    :math:`\hat\Sigma_{yx}` as at most :math:`\sigma\gamma_n(\sum_i|E_{ij}|)\,\mathbf 1^\top|S|/n` entrywise, a part
    of the noise term :math:`\sigma E^\top WS/n`, itself :math:`O(\sigma/\sqrt n)` against :math:`M\Sigma_x`;
    trace_yy gets :math:`\tfrac{2\sigma}{n}\langle|\Delta E^\top W|, |MS|\rangle + \tfrac{\sigma^2}{n}\sum_j
    |\Delta(E^\top E)_{jj}|` and :math:`\bar y` gets :math:`\tfrac\sigma n|\Delta E^\top\mathbf 1|`.
    Other laws, or :math:`n > 2^{24}`: B is float64 and so is every product (float64 round-off).

    Then, in float64: :math:`\hat\Sigma_x = T + T^\top` with :math:`T = (\tfrac{1}{2n}S)(W^\top W)S`, of which
    only the block upper triangle is multiplied out (2 x 2 blocks; T is symmetric but for round-off, its
    lower-left block is the mirror of the upper-right one: 3/4 of the second product), exactly
    symmetric, within :math:`\gamma_{2d_x+2}\,|S|\,(|W|^\top|W|)\,|S|/n` (float64 :math:`\gamma`) of the exact
    value (the materialised :math:`X^\top X/n` obeys the same bound with :math:`\gamma_{n+d_x}`).
    :math:`K = [MS/n\,|\,\sigma I/n\,|\,e_{\mathbf 1}/n]` applied to the rows of G gives
    :math:`(MSW^\top W + \sigma E^\top W)/n` (times S: :math:`\hat\Sigma_{yx}`), :math:`\bar y` (its ones column),
    trace_yy (a Frobenius product) and :math:`W^\top\mathbf 1/n` (times S: :math:`\bar x`). Cost per batch: the
    sign draw (:math:`nw/64` words), the noise draw, one float32 SYRK of :math:`n\times w`
    (:math:`nw^2/2` multiply-adds), then :math:`\tfrac74d_x^3 +
    (d_y+1)(w^2 + d_x^2)` float64 multiply-adds (the old path, X formed, took :math:`nd_x^2 + nd_x^2/2 + nd_xd_y`).
    Measured at d_x = 100, n = 1024, d_y = 10, one BLAS thread (``benchmarks/linrep_step.py``): about
    400 us a batch, 1.48-1.49x the floor (sign draw + float32 SYRK :math:`W^\top W` + noise draw, 270 us),
    of which the wider SYRK adds 25 us and :math:`S(W^\top W)S` with its symmetrisation 79 us.

    The work buffers (B, the noise) are reused from draw to draw: one sampler per run, not shared between
    threads. problem: the task. n >= 1: batch size. means: also deliver :math:`\bar x, \bar y`.
    """

    def __init__(self, problem: LinRepProblem, n: int, *, means: bool = True):
        f = "BatchSampler"
        problem = _check_problem(f, problem)
        n = _int(f, "n", n)
        _batch_mem(f, n, problem)
        d, d_y = problem.d_x, problem.d_y
        self.problem, self.n, self.means = problem, n, V.flag(f, "means", means)
        S, M = problem.Sigma_x_sqrt, problem.M
        self._sigma = sigma = float(problem.noise_std)
        self._bits = problem.law == "rademacher"
        dt = np.dtype(np.float32 if self._bits and n <= EXACT_FLOAT32_N else np.float64)
        self._f32 = dt == np.float32
        e = d_y if sigma > 0 else 0
        # B = [W | E | 1 | padding], w = 8 ceil((d_x + d_y + 1)/8) columns whatever sigma and the means (the
        # signs' bits are spaced so: _sign_row_bytes); unused columns (E when sigma = 0, the ones column
        # without the means, the padding) hold finite values that no statistic reads
        r = -(-(d + d_y + 1) // 8)
        w = 8 * r
        ones = d + d_y if self.means else None
        self._d, self._d_y, self._e, self._ones_col = d, d_y, e, ones
        self._cols = ones + 1 if self.means else d + e              # the columns of the Gram that V reads
        self._B = np.zeros((n, w), dtype=dt)
        if ones is not None:
            self._B[:, ones] = 1.0
        if self._bits:
            self._table = _SIGN_TABLE[dt]
            self._B8 = self._B.reshape(n, r, 8)                     # the take fills whole rows of B
            self._words = -(-r * n // 8)
            self._nraw = r * n
        self._E = np.empty((n, d_y)) if e else None
        self._Ev, self._BT = self._B[:, d:d + e], self._B.T
        # the Gram B'B (its float64 copy), and the views of it that the statistics read
        self._G = np.empty((w, w), dtype=dt)
        self._G64 = np.empty((w, w)) if self._f32 else self._G
        self._C, self._GV = self._G64[:d, :d], self._G64[:self._cols, :self._cols]
        # scalings folded into the fixed factors (one rounding of each entry, inside the stated bounds)
        self._S, self._M, self._MS = S, M, M @ S
        self._Sh = S * (0.5 / n)                       # S/(2n): T = S_h (W'W) S, Sigma_x = T + T'
        self._h, self._A, self._T = d // 2, np.empty((d, d)), np.empty((d, d))
        # K = [M S / n | sigma I / n] applied to the rows [W'; E'] of the Gram gives (M S W'W + sigma E'W) / n
        # in the first d_x columns, (M S W'E + sigma E'E) / n in the next e and (M S W'1 + sigma E'1) / n
        # = y_mean in the ones column; with the means, a last row e_ones' / n gives W'1 / n (times S: x_mean')
        rows = d_y + (1 if self.means else 0)
        self._K = np.zeros((rows, self._cols))
        self._K[:d_y, :d] = self._MS * (1.0 / n)
        if e:
            self._K[:d_y, d:d + e] = np.eye(e) * (sigma / n)
        if self.means:
            self._K[d_y, ones] = 1.0 / n
        # <V, Q> = <V[:d_y, :d], M S> + sigma tr V[:d_y, d:d+e]
        #        = tr(M Sigma_x M') + (2 sigma <E'W, M S> + sigma^2 tr E'E) / n = trace_yy
        self._Q = np.zeros((rows, self._cols))
        self._Q[:d_y, :d] = self._MS
        if e:
            self._Q[:d_y, d:d + e] = sigma * np.eye(e)

    def draw(self, rng: np.random.Generator) -> BatchMoments:
        """The statistics of one fresh batch (consumes ``rng`` as :func:`draw_batch_fast`)."""
        return self._draw(_rng("BatchSampler.draw", rng))

    def _draw(self, rng: np.random.Generator) -> BatchMoments:
        Sx, Syx, trace_yy, x_mean, y_mean = self._stats(rng)
        return BatchMoments(Sx, Syx, trace_yy, self.n, x_mean, y_mean)

    def _stats(self, rng: np.random.Generator) -> tuple:
        """(Sigma_x, Sigma_yx, trace_yy, x_mean, y_mean) of a fresh batch (the means None without ``means``)."""
        n, d, e, B = self.n, self._d, self._e, self._B
        if self._bits:
            raw = rng.bit_generator.random_raw(self._words)           # _random_bits(8 r n, rng) ...
            raw = raw.view(np.uint8) if np.little_endian else raw.astype("<u8").view(np.uint8)
            if raw.size > self._nraw:
                raw = raw[: self._nraw]                               # ... row i: bytes r i, ..., r i + r - 1
            np.take(self._table, raw.reshape(n, -1), axis=0, out=self._B8, mode="clip")  # bytes < 256: no clip
            if self._ones_col is not None:
                B[:, self._ones_col] = 1.0                            # (the take wrote signs there)
        else:
            B[:, :d] = _standard(n, d, self.problem.law, rng)
        if e:
            rng.standard_normal(out=self._E)
            np.copyto(self._Ev, self._E)                              # float32: rounded (see the bound)
        np.matmul(self._BT, B, out=self._G)                           # one SYRK: W'W, E'W, W'1 (and more)
        if self._f32:
            np.copyto(self._G64, self._G)
        # T = S_h (W'W) S in 2 x 2 blocks: its block upper triangle only (T is symmetric but for round-off),
        # the lower-left block mirrored; Sigma_x = T + T' is exactly symmetric
        h, T, S = self._h, self._T, self._S
        A = np.matmul(self._Sh, self._C, out=self._A)
        np.matmul(A[:h], S, out=T[:h])
        np.matmul(A[h:], S[:, h:], out=T[h:, h:])
        T[h:, :h] = T[:h, h:].T
        Sx = np.add(T, T.T)
        V_ = self._K @ self._GV                                       # see __init__
        R = V_[:, :d] @ self._S                                       # Sigma_yx, then x_mean'
        trace_yy = float(np.vdot(V_, self._Q))
        d_y = self._d_y
        if self.means:
            return Sx, R[:d_y], trace_yy, R[d_y], V_[:d_y, self._ones_col]
        return Sx, R, trace_yy, None, None


def draw_batch_moments(problem: LinRepProblem, n: int, *, rng: np.random.Generator,
                       means: bool = True) -> BatchMoments:
    """The sufficient statistics of one fresh batch (:class:`BatchSampler`; for many batches of one task,
    keep one sampler). Consumes ``rng`` as :func:`draw_batch_fast`."""
    f = "draw_batch_moments"
    problem = _check_problem(f, problem)
    n = _int(f, "n", n)
    _batch_mem(f, n, problem)
    rng = _rng(f, rng)
    return BatchSampler(problem, n, means=V.flag(f, "means", means))._draw(rng)
