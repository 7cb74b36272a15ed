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
:class:`BatchSampler` (Rademacher signs from raw random bits, one float32 SYRK :math:`W^\\top W`, exact; no
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
    """One linear representation learning task (docs/theory.md 3.1.0), with its transfer task.

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


#: Sign lookup: row b holds the eight bits of byte b (most significant first, as ``np.unpackbits``) as +-1.
_SIGN_TABLE = {np.dtype(t): (np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(t) * 2 - 1)
               for t in (np.float32, np.float64)}
#: Largest batch whose Rademacher Gram matrix W'W is formed in float32: its entries are integers of
#: modulus <= n, and so is every partial sum, hence exact below 2**24 (the float32 significand).
EXACT_FLOAT32_N = 2**24


def random_bits(nbits: int, rng: np.random.Generator) -> np.ndarray:
    """``ceil(nbits / 64)`` raw 64-bit words of ``rng``'s bit generator as little-endian bytes (uint8),
    eight fair coins per byte: the cheapest draw of independent fair bits (``random_raw``)."""
    words = rng.bit_generator.random_raw(-(-nbits // 64))
    return words.astype("<u8", copy=False).view(np.uint8)


def rademacher_signs(n: int, d: int, *, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """(n, d) iid Rademacher signs from raw random bits (:func:`random_bits`), 64 signs per word.

    The same law as ``standard_inputs(n, d, law="rademacher")`` (each bit of the raw stream is a fair
    coin) from a sixty-fourth of the draws; the stream is consumed differently, so the signs differ.
    Bit ``j`` (byte ``j // 8`` of the little-endian words, most significant bit first) is entry
    ``(j // d, j % d)``. dtype: ``float64`` or ``float32`` (+-1 is exact in both).
    """
    n = _int("rademacher_signs", "n", n)
    d = _int("rademacher_signs", "d", d)
    dt = np.dtype(dtype)
    if dt not in _SIGN_TABLE:
        raise V.fail("rademacher_signs", "dtype", "float32 or float64", dt)
    raw = random_bits(n * d, _rng("rademacher_signs", rng))
    return np.take(_SIGN_TABLE[dt], raw, axis=0).reshape(-1)[: n * d].reshape(n, d)


def draw_batch_fast(problem: LinRepProblem, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r"""(X, Y) like :func:`draw_batch` (same law), materialised from the draws of :class:`BatchSampler`.

    Consumes ``rng`` exactly as :meth:`BatchSampler.draw` does (the standard inputs W, Rademacher from
    raw random bits, then the standard label noise E), so both give the same batch
    :math:`X = W\Sigma_x^{1/2}`, :math:`Y = XM^\top + \sigma E`: this is the sampler's materialised reference.
    """
    n = _int("draw_batch_fast", "n", n)
    rng = _rng("draw_batch_fast", rng)
    if problem.law == "rademacher":
        W = rademacher_signs(n, problem.d_x, rng=rng)
    else:
        W = standard_inputs(n, problem.d_x, law=problem.law, rng=rng)
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

    :math:`\bar x = S\,W^\top\mathbf 1/n` and :math:`\bar y = M\bar x + \sigma E^\top\mathbf 1/n`. For
    Rademacher W the Gram matrix :math:`W^\top W` is one float32 SYRK, exact: its entries and every
    partial sum are integers of modulus :math:`\le n \le 2^{24}` (:data:`EXACT_FLOAT32_N`; above it, float64).
    Everything else is float64, so the statistics equal those of :func:`draw_batch_fast` (the same draws,
    X formed) to float64 round-off; :math:`\hat\Sigma_x` is symmetrised (exactly symmetric, as a SYRK
    of X would be). Cost per batch: the sign draw, the SYRK (:math:`nd_x^2/2` multiply-adds, float32),
    the noise draw, then :math:`2d_x^3 + nd_xd_y + 2d_yd_x^2` float64 multiply-adds and a float64 copy of
    W (the old path, X formed, took :math:`nd_x^2 + nd_x^2/2 + nd_xd_y` float64 multiply-adds).

    The work buffers (the signs and their float64 copy, the noise) are reused from draw to draw:
    one sampler per run, not shared between threads. problem: the task. n >= 1: batch size.
    """

    def __init__(self, problem: LinRepProblem, n: int, *, means: bool = True):
        n = _int("BatchSampler", "n", n)
        if not isinstance(problem, LinRepProblem):
            raise V.fail("BatchSampler", "problem", "a LinRepProblem", type(problem).__name__)
        d, d_y = problem.d_x, problem.d_y
        self.problem, self.n, self.means = problem, n, bool(means)
        S, M = problem.Sigma_x_sqrt, problem.M
        self._S, self._M, self._MS = S, M, M @ S
        self._sigma = float(problem.noise_std)
        self._bits = problem.law == "rademacher"
        self._W64 = None
        if self._bits:
            dt = np.float32 if n <= EXACT_FLOAT32_N else np.float64
            self._table = _SIGN_TABLE[np.dtype(dt)]
            self._signs = np.empty((8 * -(-n * d // 64), 8), dtype=dt)
            self._ones_w = np.ones(n, dtype=dt)
            self._W64 = np.empty((n, d)) if dt == np.float32 and self._sigma > 0 else None
        self._E = np.empty((n, d_y)) if self._sigma > 0 else None
        self._ones = np.ones(n)
        self._block = n // 2 if n >= 1024 else n   # E'W in two row blocks for large n (faster here, OpenBLAS)

    def draw(self, rng: np.random.Generator) -> BatchMoments:
        """The statistics of one fresh batch (consumes ``rng`` as :func:`draw_batch_fast`)."""
        if not isinstance(rng, np.random.Generator):
            raise V.fail("BatchSampler.draw", "rng", "a numpy.random.Generator", type(rng).__name__)
        n, d = self.n, self.problem.d_x
        S, MS, sigma = self._S, self._MS, self._sigma
        if self._bits:
            raw = random_bits(n * d, rng)
            np.take(self._table, raw, axis=0, out=self._signs, mode="clip")  # raw < 256: nothing is clipped
            W = self._signs.reshape(-1)[: n * d].reshape(n, d)
            colsum = self._ones_w @ W if self.means else None            # exact integers
        else:
            W = standard_inputs(n, d, law=self.problem.law, rng=rng)
            colsum = self._ones @ W if self.means else None
        C = (W.T @ W).astype(np.float64, copy=False)                  # W'W: one SYRK (float32, exact, for signs)
        Sx = (S @ C) @ S
        Sx = np.add(Sx, Sx.T)                                         # exactly symmetric
        Sx *= 0.5 / n
        V = MS @ C                                                    # M S W'W
        trace_yy = float(np.vdot(V, MS)) / n                          # tr(M Sigma_x M')
        if self._E is not None:
            E = self._E
            rng.standard_normal(out=E)
            W64 = W
            if self._W64 is not None:
                W64 = self._W64
                np.copyto(W64, W)
            h = self._block
            P = E[:h].T @ W64[:h]                                     # E'W, float64
            if h < n:
                P += E[h:].T @ W64[h:]
            P *= sigma
            trace_yy += 2.0 * float(np.vdot(P, MS)) / n + sigma * sigma * float(np.vdot(E, E)) / n
            V += P
        Syx = V @ S
        Syx *= 1.0 / n
        x_mean = y_mean = None
        if self.means:
            x_mean = S @ (colsum.astype(np.float64) / n)
            y_mean = self._M @ x_mean
            if self._E is not None:
                y_mean += (sigma / n) * (self._ones @ self._E)
        return BatchMoments(Sx, Syx, trace_yy, n, x_mean, y_mean)


def draw_batch_moments(problem: LinRepProblem, n: int, *, rng: np.random.Generator,
                       means: bool = True) -> BatchMoments:
    """The sufficient statistics of one fresh batch (:class:`BatchSampler`; for many batches of one task,
    keep one sampler). Consumes ``rng`` as :func:`draw_batch_fast`."""
    return BatchSampler(problem, n, means=means).draw(_rng("draw_batch_moments", rng))
