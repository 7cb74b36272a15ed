"""Deterministic equivalents of ridge regression: the kappa fixed point of Theorem 3.9.

THEORY.md, Theorem 3.9 [P: exists; formula R]. For a covariance with eigenvalues
:math:`t_i` (multiplicities :math:`w_i`), a sample size :math:`n` and a ridge :math:`\\lambda_G \\ge 0`,
:math:`\\kappa = \\kappa(\\lambda_G) \\ge 0` solves

.. math::

    \\kappa - \\lambda_G = \\frac{\\kappa}{n}\\sum_i w_i\\,\\frac{t_i}{t_i+\\kappa}
    \\qquad\\Big(\\text{limit: } \\kappa-\\lambda_G=\\frac{\\kappa}{\\psi}\\int\\frac{t}{t+\\kappa}\\,dH(t),
    \\ \\psi = n/d\\Big),

unique for :math:`\\lambda_G>0`; for :math:`\\lambda_G=0` it is :math:`0` when
:math:`\\sum_i w_i \\le n` (:math:`\\psi\\ge1`) and the positive root otherwise. Equivalently
:math:`\\kappa = 1/\\tilde m(-\\lambda_G)` with :math:`\\tilde m` the Stieltjes transform of the
limiting spectrum of :math:`XX^\\top/n` (the companion of :math:`\\hat\\Sigma_x`), which solves
Silverstein's equation

.. math::

    \\frac{1}{\\tilde m(z)} = -z + \\frac1n\\sum_i w_i\\,\\frac{t_i}{1+t_i\\,\\tilde m(z)}.

Isotropic closed form (:math:`\\Sigma = I`, :math:`\\gamma = 1/\\psi`):
:math:`\\kappa = \\tfrac12\\big[-(1-\\gamma-\\lambda_G)+\\sqrt{(1-\\gamma-\\lambda_G)^2+4\\lambda_G}\\big]`.

Solver. Write :math:`g(\\kappa) = \\kappa\\,(1-\\sum_i q_i t_i/(t_i+\\kappa))` with
:math:`q_i = w_i/n`; the equation is :math:`g(\\kappa)=\\lambda_G`. :math:`g` is convex
(:math:`g'' = 2\\sum_i q_i t_i^2/(t_i+\\kappa)^3 > 0`), :math:`g(\\kappa)\\le\\kappa` and
:math:`g(\\kappa)\\ge\\kappa-\\sum_i q_i t_i`, so the root lies in the bracket
:math:`[\\lambda_G,\\ \\lambda_G+\\sum_i q_i t_i]` and Newton's method started at the upper end
decreases monotonically to it (convex, increasing at the root) without leaving the bracket; the
derivative is :math:`g'(\\kappa) = 1 - \\sum_i q_i t_i^2/(t_i+\\kappa)^2 = 1 - D_2`. Iterations stop at
a relative step below ``1e-14`` (so the root is converged to better than ``1e-12`` relative) and
the residual is checked. Everything is vectorised over an array of :math:`\\lambda_G`.

All results here are reconstructed [R] (THEORY.md section 0): the paper's notation for
Theorem 3.9 is unknown; this :math:`\\kappa`/companion-Stieltjes form is equivalent to the usual
deterministic equivalents of ridge regression.
"""

from __future__ import annotations

import math

import numpy as np

from theory import _validate as V

__all__ = [
    "kappa",
    "kappa_limit",
    "kappa_isotropic",
    "companion_stieltjes",
    "solve_kappa",
]

#: relative Newton step at which the fixed point counts as converged.
_STEP_RTOL = 1e-14
#: relative residual |g(kappa) - lam| / (lam + kappa) accepted after convergence.
_RESID_RTOL = 1e-11
_MAX_ITER = 500


def _spectrum(func: str, eigenvalues, weights) -> tuple[np.ndarray, np.ndarray]:
    t = V.array(func, "eigenvalues", eigenvalues, ndim=1)
    if t.size < 1:
        raise V.fail(func, "eigenvalues", "a non-empty 1-D array", "an empty array")
    if np.any(t <= 0):
        raise V.fail(func, "eigenvalues", "positive (a positive-definite spectrum)",
                     f"minimum {t.min():.3e}")
    if weights is None:
        w = np.ones_like(t)
    else:
        w = V.array(func, "weights", weights, ndim=1)
        if w.shape != t.shape:
            raise V.fail(func, "weights", f"of shape {t.shape} (one per eigenvalue)", f"shape {w.shape}")
        if np.any(w < 0) or not np.any(w > 0):
            raise V.fail(func, "weights", "non-negative with a positive entry", "other values")
    return t, w


def _lam(func: str, lam, name: str = "lam") -> np.ndarray:
    a = V.array(func, name, lam)
    if np.any(a < 0):
        raise V.fail(func, name, ">= 0", f"minimum {a.min():.3e}")
    return a


def _out(x: np.ndarray, like: np.ndarray):
    return float(np.asarray(x).reshape(-1)[0]) if like.ndim == 0 else x.reshape(like.shape)


def solve_kappa(t: np.ndarray, q: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Solve :math:`\\kappa - \\lambda = \\kappa\\sum_i q_i t_i/(t_i+\\kappa)` for every ``lam``.

    t: (p,) positive eigenvalues (atoms of the spectrum).
    q: (p,) non-negative trace weights (multiplicity / n, or H-mass / psi).
    lam: array of ridges >= 0 (any shape); returns kappa of the same shape.
    Unvalidated inner routine (public callers validate): bracketed Newton from the upper end of
    :math:`[\\lambda, \\lambda+\\sum_i q_i t_i]`, then a residual check (``ArithmeticError`` if it fails).
    """
    lam = np.asarray(lam, dtype=float)
    flat = lam.ravel()
    t = np.asarray(t, dtype=float)[:, None]
    q = np.asarray(q, dtype=float)[:, None]
    gamma = math.fsum(q.ravel())  # sum of weights / n  (= 1/psi = d/n)
    if abs(gamma - 1.0) <= 1e-12:  # psi = 1 up to the rounding of w/n: treat as exactly 1
        gamma = 1.0
    mass = float((q * t).sum())
    lo = flat.copy()
    k = flat + mass  # g(k) >= lam here
    active = np.ones(flat.shape, dtype=bool)
    # lam = 0 with gamma <= 1: kappa = 0 exactly (g'(0) = 1 - gamma >= 0 and g convex).
    zero = (flat == 0) & (gamma <= 1.0)
    k[zero] = 0.0
    active &= ~zero
    eps = np.finfo(float).eps
    for _ in range(_MAX_ITER):
        if not active.any():
            break
        ka = k[active]
        la = flat[active]
        u = q / (t + ka)                        # (p, m): q/(t+k)
        # g = k (1 - sum q t/(t+k)) - lam, written as k ((1-gamma) + k sum q/(t+k)) - lam
        # and g' = 1 - D2 = (1-gamma) + k sum q (2t+k)/(t+k)^2: no cancellation near k = 0.
        su = u.sum(axis=0)
        g = ka * ((1.0 - gamma) + ka * su) - la
        dg = (1.0 - gamma) + ka * (u * (2.0 * t + ka) / (t + ka)).sum(axis=0)
        tiny = 4.0 * eps * (la + ka * abs(1.0 - gamma) + ka * ka * su)  # rounding level of g
        with np.errstate(divide="ignore", invalid="ignore"):
            step = g / dg
        # Newton from above on a convex increasing g never crosses the root in exact arithmetic:
        # g <= 0 can only be rounding at the root, so stop there (the residual is checked below).
        at_root = g <= tiny
        new = np.where(at_root, ka, ka - step)
        # safeguard: stay inside the bracket [lo, current]; bisect otherwise
        bad = ~at_root & (~np.isfinite(new) | (new < lo[active]))
        new = np.where(bad, 0.5 * (lo[active] + ka), new)
        done = at_root | (np.abs(new - ka) <= _STEP_RTOL * np.maximum(new, np.finfo(float).tiny))
        k[active] = new
        idx = np.flatnonzero(active)
        active[idx[done]] = False
    if active.any():
        raise ArithmeticError(f"solve_kappa: no convergence after {_MAX_ITER} iterations "
                              f"for lam = {flat[active][:3]}")
    # residual check
    resid = np.abs(k * ((1.0 - gamma) + k * (q / (t + k)).sum(axis=0)) - flat)
    scale = flat + k
    ok = (resid <= _RESID_RTOL * scale) | (scale == 0)
    if not np.all(ok):
        worst = int(np.argmax(np.where(ok, 0, resid / np.where(scale > 0, scale, 1))))
        raise ArithmeticError(
            f"solve_kappa: residual {resid[worst]:.3e} too large at lam = {flat[worst]:.3e} (kappa = {k[worst]:.3e})"
        )
    return k.reshape(lam.shape)


def kappa(eigenvalues, *, n, lam, weights=None):
    """The fixed point :math:`\\kappa(\\lambda_G)` of Theorem 3.9 for a finite spectrum.

    eigenvalues: (p,) positive eigenvalues :math:`t_i` of :math:`\\Sigma_x`.
    n: sample size (> 0; the traces are divided by ``n``).
    lam: ridge :math:`\\lambda_G \\ge 0`, a float or an array (the result has its shape).
    weights: (p,) multiplicities :math:`w_i` of the eigenvalues (default 1 each, so ``d = p``).

    >>> round(kappa([1.0, 1.0], n=4, lam=0.5), 12) == round(kappa_isotropic(psi=2.0, lam=0.5), 12)
    True
    """
    func = "kappa"
    t, w = _spectrum(func, eigenvalues, weights)
    n = V.scalar(func, "n", n, low=0.0, low_open=True)
    lam_a = _lam(func, lam)
    return _out(solve_kappa(t, w / n, lam_a), lam_a)


def kappa_limit(eigenvalues, *, psi, lam, weights=None):
    """The limiting fixed point :math:`\\kappa-\\lambda_G=\\frac{\\kappa}{\\psi}\\int\\frac{t}{t+\\kappa}dH`.

    eigenvalues: atoms of the limiting spectral law :math:`H` of :math:`\\Sigma_x`.
    psi: aspect ratio :math:`\\psi = n/d > 0`.
    lam: ridge :math:`\\lambda_G \\ge 0` (float or array).
    weights: masses of :math:`H` at the atoms (normalised to sum 1; default uniform).
    """
    func = "kappa_limit"
    t, w = _spectrum(func, eigenvalues, weights)
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    lam_a = _lam(func, lam)
    return _out(solve_kappa(t, w / w.sum() / psi, lam_a), lam_a)


def kappa_isotropic(*, psi, lam):
    """Closed form of :math:`\\kappa` for :math:`\\Sigma=I` (Theorem 3.9, isotropic case).

    psi: aspect ratio :math:`n/d > 0`. lam: ridge :math:`\\lambda_G\\ge0` (float or array).
    Evaluated without cancellation: with :math:`b = 1-\\gamma-\\lambda_G`,
    :math:`\\kappa = 2\\lambda_G/(b+\\sqrt{b^2+4\\lambda_G})` when :math:`b>0`.

    >>> kappa_isotropic(psi=0.5, lam=0.0)   # psi < 1: kappa(0) = 1/psi - 1
    1.0
    """
    func = "kappa_isotropic"
    psi = V.scalar(func, "psi", psi, low=0.0, low_open=True)
    lam_a = _lam(func, lam)
    b = 1.0 - 1.0 / psi - lam_a
    root = np.sqrt(b * b + 4.0 * lam_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(b + root > 0, 2.0 * lam_a / (b + root), 0.0)
    k = np.where(b > 0, pos, 0.5 * (root - b))
    return _out(np.asarray(k, dtype=float), lam_a)


def companion_stieltjes(eigenvalues, *, n, z, weights=None, tol: float = 1e-13, max_iter: int = 100000):
    """Stieltjes transform :math:`\\tilde m(z)` of the limiting spectrum of :math:`XX^\\top/n`.

    eigenvalues: (p,) positive eigenvalues of :math:`\\Sigma_x`; weights: their multiplicities.
    n: sample size. z: a real negative number / array (then :math:`\\tilde m(z)=1/\\kappa(-z)`, real),
    or complex with positive imaginary part (then Silverstein's equation is solved by a damped
    fixed-point iteration to relative change ``tol``; the residual is checked).

    >>> round(companion_stieltjes([1.0], n=2, z=-0.5) * kappa([1.0], n=2, lam=0.5), 12)
    1.0
    """
    func = "companion_stieltjes"
    t, w = _spectrum(func, eigenvalues, weights)
    n = V.scalar(func, "n", n, low=0.0, low_open=True)
    q = w / n
    za = np.asarray(z)
    if not np.iscomplexobj(za):
        zr = V.array(func, "z", za)
        if np.any(zr >= 0):
            raise V.fail(func, "z", "negative when real (or complex with Im z > 0)", f"maximum {zr.max():.3e}")
        return _out(1.0 / solve_kappa(t, q, -zr), zr)
    zc = za.astype(complex)
    if not np.all(np.isfinite(zc)) or np.any(zc.imag <= 0):
        raise V.fail(func, "z", "finite with Im z > 0 when complex", "other values")
    flat = zc.ravel()
    m = -1.0 / flat  # large-|z| start
    tc = t[:, None]
    qc = q[:, None]
    for _ in range(max_iter):
        new = 1.0 / (-flat + (qc * tc / (1.0 + tc * m)).sum(axis=0))
        new = 0.5 * (m + new)
        if np.all(np.abs(new - m) <= tol * np.abs(new)):
            m = new
            break
        m = new
    else:
        raise ArithmeticError(f"companion_stieltjes: no convergence after {max_iter} iterations")
    resid = np.abs(1.0 / m + flat - (qc * tc / (1.0 + tc * m)).sum(axis=0)) * np.abs(m)
    if np.any(resid > 1e-9):
        raise ArithmeticError(f"companion_stieltjes: residual {resid.max():.3e} too large")
    return complex(m[0]) if zc.ndim == 0 else m.reshape(zc.shape)
