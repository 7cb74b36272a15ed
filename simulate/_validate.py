"""Argument checks at the public boundary of :mod:`simulate`.

A deliberate copy of ``theory/_validate.py`` (minus what simulate does not use): ``theory`` and
``simulate`` never import each other, so each carries its own checks with the same message format.

One message format for bad arguments (after scikit-learn's parameter validation)::

    <function>: argument '<name>' must be <what was expected>; got <what was given>.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def fail(func: str, name: str, expected: str, got: object) -> ValueError:
    """The ValueError for argument ``name`` of ``func``."""
    return ValueError(f"{func}: argument '{name}' must be {expected}; got {got}.")


def _desc(x: np.ndarray) -> str:
    return f"an array of shape {x.shape}"


def array(func: str, name: str, x, *, ndim: int | Iterable[int] | None = None) -> np.ndarray:
    """A finite float array with the given number of dimensions."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise fail(func, name, "a numeric array", type(x).__name__) from None
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in dims:
            raise fail(func, name, f"a {' or '.join(map(str, dims))}-D array", _desc(a))
    if not np.all(np.isfinite(a)):
        raise fail(func, name, "finite (no NaN or inf)", "non-finite entries")
    return a


def matrix(func: str, name: str, x, *, shape: tuple[int | None, int | None] | None = None) -> np.ndarray:
    """A finite 2-D array; ``shape`` entries of ``None`` are free."""
    a = array(func, name, x, ndim=2)
    if shape is not None:
        for got, want in zip(a.shape, shape):
            if want is not None and got != want:
                exp = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ")"
                raise fail(func, name, f"of shape {exp}", _desc(a))
    return a


def spd(func: str, name: str, x, *, d: int | None = None, rtol: float = 1e-10) -> np.ndarray:
    """A symmetric positive-definite (d, d) matrix (symmetry to ``rtol`` relative)."""
    a = matrix(func, name, x, shape=(d, d))
    if a.shape[0] != a.shape[1]:
        raise fail(func, name, "a square (d, d) matrix", _desc(a))
    scale = max(np.abs(a).max(), np.finfo(float).tiny)
    asym = np.abs(a - a.T).max() / scale
    if asym > rtol:
        raise fail(func, name, "symmetric", f"relative asymmetry {asym:.2e}")
    a = 0.5 * (a + a.T)
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        lam = np.linalg.eigvalsh(a)[0]
        raise fail(func, name, "positive-definite", f"smallest eigenvalue {lam:.3e}") from None
    return a


def scalar(func: str, name: str, x, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite float in the stated interval."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise fail(func, name, "a real number", repr(x)) from None
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"in {lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not np.isfinite(v):
        raise fail(func, name, f"finite and {interval}", repr(v))
    if low is not None and (v < low or (low_open and v == low)):
        raise fail(func, name, interval, repr(v))
    if high is not None and (v > high or (high_open and v == high)):
        raise fail(func, name, interval, repr(v))
    return v


def integer(func: str, name: str, x, *, low: int, expected: str | None = None) -> int:
    """An integer (not a bool) >= ``low``; ``expected`` overrides the wording of the message."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise fail(func, name, expected or f"an integer >= {low}", repr(x))
    return int(x)


def choice(func: str, name: str, x, options: Iterable[str]) -> str:
    opts = tuple(options)
    if x not in opts:
        raise fail(func, name, f"one of {opts}", repr(x))
    return x
