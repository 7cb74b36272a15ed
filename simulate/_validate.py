"""Argument checks at the public boundary of :mod:`simulate`: one vocabulary, one message format.

A deliberate copy of ``theory/_validate.py`` (same checks, same thresholds, same wording) plus what
the simulations need besides (sizes bounded by memory, generators, seeds, problems, optimizers):
``theory`` and ``simulate`` never import each other, so each carries its own checks.

Every bad argument raises ``ValueError`` in the format (after scikit-learn's parameter validation)::

    <FUNCTION>: argument '<NAME>' must be <EXPECTED>; got <WHAT>.

naming the public function the user called and the argument the user passed (``linrep_problem``'s
``kappa_x``, not the ``kappa`` of the helper it calls). The options of an optimizer are named
under ``optimizer '<name>'`` (``optimizer 'kfac': argument 'eta_F' must be in (0, 1]; got 5.0.``).

What is checked, and the thresholds:

- **dtype**: arrays and scalars must be real. Real floating and integer input is converted to
  ``float64``; complex (even with zero imaginary part), object, boolean, string, bytes, datetime and
  structured arrays are rejected, as are ``None``, strings, dicts and ragged sequences. Scalars of
  ``bool`` type are rejected wherever a number is expected.
- **shape**: number of dimensions, fixed sizes, non-empty.
- **finiteness**: no NaN or inf anywhere.
- **symmetry**: :math:`\\max|A-A^\\top| \\le 10^{-10}\\max|A|` (relative).
- **positive-definiteness**: the eigenvalues :math:`\\lambda_i` of :math:`(A+A^\\top)/2` must satisfy

  .. math::

      \\lambda_{\\min} > d\\,\\varepsilon\\,\\lambda_{\\max},\\qquad
      \\varepsilon = 2^{-52}\\approx2.2\\times10^{-16},

  i.e. a matrix with :math:`\\lambda_{\\min}\\le d\\varepsilon\\lambda_{\\max}` is **numerically singular**:
  that eigenvalue is indistinguishable from the rounding error :math:`\\approx d\\varepsilon\\lVert A\\rVert_2`
  of forming or factoring :math:`A`. The same relative rule (that of ``numpy.linalg.matrix_rank``)
  decides full rank of a rectangular matrix: :math:`\\sigma_{\\min} > \\max(m, n)\\,\\varepsilon\\,\\sigma_{\\max}`.
- **ranges**: intervals stated in the message (``[0, inf)``, ``(0, 1]``, ...).
- **integers**: Python or numpy integers only (``bool`` and floats, even integral ones, rejected),
  in a stated range.
- **sizes**: integers whose arrays must fit in memory. The bytes an argument makes the function hold
  at once (e.g. ``8 (steps + 1)`` per recorded metric, ``8 d^2`` per ``(d, d)`` matrix) must not exceed
  :data:`MEMORY_BYTES`, the machine's physical memory; the message names the size, the formula and
  the memory it would need, so a request that could only end in ``MemoryError``, numpy's
  "Maximum allowed dimension exceeded" or hours of swapping is refused before anything is allocated.
- **choices** and **flags**: a string among the options; a ``bool``.
- **callables** (teachers, students, operators): the call is made on an array of nodes; an exception
  raised by it, a result that is not real, finite and of the nodes' shape, is reported as a bad
  argument (``got a callable (f) that raised ZeroDivisionError: division by zero``).
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np

#: machine epsilon of float64
EPS = float(np.finfo(float).eps)
#: relative asymmetry max|A - A^T| / max|A| accepted as rounding
SYM_RTOL = 1e-10


def _physical_memory() -> int:
    """Total physical memory of this machine in bytes (64 GiB when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 64 * 2**30


#: the most bytes one call may need to hold at once (the machine's physical memory).
MEMORY_BYTES = _physical_memory()


def fail(func: str, name: str, expected: str, got: object) -> ValueError:
    """The ValueError for argument ``name`` of ``func``."""
    got = str(got).rstrip(".")
    return ValueError(f"{func}: argument '{name}' must be {expected}; got {got}.")


def describe(x) -> str:
    """A short description of what was passed (for the 'got' part of a message)."""
    if x is None:
        return "None"
    if isinstance(x, (bool, np.bool_)):
        return f"the boolean {bool(x)!r}"
    if isinstance(x, (str, bytes)):
        r = repr(x)
        return f"the string {r if len(r) <= 40 else r[:37] + '...'}"
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return f"a 0-d array {x.item()!r} of dtype {x.dtype}"
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    if isinstance(x, (numbers.Number, np.number)):
        return repr(x.item() if isinstance(x, np.generic) else x)
    if callable(x):
        return f"the callable {getattr(x, '__name__', type(x).__name__)}"
    return f"an object of type {type(x).__name__}"


def _real_array(func: str, name: str, x, expected: str) -> np.ndarray:
    """``x`` as a float64 array if it holds real numbers (floats or integers), else a named ValueError."""
    if x is None or isinstance(x, (str, bytes, dict, set, frozenset)) or callable(x):
        raise fail(func, name, expected, describe(x))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.asarray(x)
    except (ValueError, TypeError):
        raise fail(func, name, expected, "a ragged sequence (rows of different lengths)") from None
    kind = a.dtype.kind
    if kind == "b":
        raise fail(func, name, expected, f"booleans ({describe(a)})")
    if kind == "c":
        raise fail(func, name, expected, f"complex numbers ({describe(a)})")
    if kind not in "iuf":
        raise fail(func, name, expected, describe(a) if isinstance(x, np.ndarray) else
                   f"{describe(x)} that converts to dtype {a.dtype}")
    return a.astype(np.float64, copy=False)


def _dims(ndim) -> tuple[int, ...]:
    return (ndim,) if isinstance(ndim, int) else tuple(ndim)


def array(func: str, name: str, x, *, ndim: int | Iterable[int] | None = None, nonempty: bool = False,
          low: float | None = None, low_open: bool = False, what: str = "real numbers",
          range_msg: str | None = None) -> np.ndarray:
    """A finite float64 array of real numbers (``ndim`` dimensions; entries ``>= low`` / ``> low``)."""
    dims = None if ndim is None else _dims(ndim)
    shape_txt = "" if dims is None else f"a {' or '.join(map(str, dims))}-D array of "
    a = _real_array(func, name, x, f"{shape_txt or 'an array of '}{what}")
    if dims is not None and a.ndim not in dims:
        raise fail(func, name, f"{shape_txt}{what}", describe(a) if isinstance(x, np.ndarray) else
                   f"{describe(x)} ({a.ndim}-D)")
    if nonempty and a.size == 0:
        raise fail(func, name, f"a non-empty {shape_txt[2:] or 'array of '}{what}", "an empty array")
    if not np.all(np.isfinite(a)):
        bad = float(a[~np.isfinite(a)].ravel()[0])
        cnt = int(np.count_nonzero(~np.isfinite(a)))
        raise fail(func, name, f"finite ({what}, no NaN or inf)",
                   f"{cnt} non-finite entr{'y' if cnt == 1 else 'ies'} (first: {bad!r})")
    if low is not None and a.size:
        bad = a <= low if low_open else a < low
        if np.any(bad):
            msg = range_msg or f"{'>' if low_open else '>='} {low:g}"
            raise fail(func, name, msg, f"minimum {a.min():.6g}")
    return a


def vector(func: str, name: str, x, *, size: int | None = None, nonzero: bool = False,
           low: float | None = None, low_open: bool = False, what: str = "real numbers",
           range_msg: str | None = None, size_label: str | None = "d") -> np.ndarray:
    """A finite non-empty 1-D float64 array (of length ``size_label = size`` if given)."""
    v = array(func, name, x, ndim=1, nonempty=True, low=low, low_open=low_open, what=what, range_msg=range_msg)
    if size is not None and v.size != size:
        length = f"{size_label} = {size}" if size_label else str(size)
        raise fail(func, name, f"a 1-D array of length {length}", f"length {v.size}")
    if nonzero and not np.any(v != 0):
        raise fail(func, name, "nonzero", "the zero vector")
    return v


def spectrum(func: str, name: str, x) -> np.ndarray:
    """Positive eigenvalues: a finite non-empty 1-D array with every entry > 0."""
    return vector(func, name, x, low=0.0, low_open=True, what="positive eigenvalues",
                  range_msg="positive (a positive-definite spectrum)")


def matrix(func: str, name: str, x, *, shape: tuple[int | None, int | None] | None = None,
           labels: tuple[str | None, str | None] = (None, None)) -> np.ndarray:
    """A finite non-empty 2-D float64 array; ``shape`` entries of ``None`` are free (``labels``
    name the sizes in the message, e.g. ``("d_y", "k")``)."""
    a = array(func, name, x, ndim=2, nonempty=True)
    if shape is not None:
        for got, want in zip(a.shape, shape):
            if want is not None and got != want:
                parts = []
                for w, lab in zip(shape, labels):
                    parts.append("any" if w is None else (f"{lab} = {w}" if lab else str(w)))
                raise fail(func, name, f"a matrix of shape ({', '.join(parts)})", f"shape {a.shape}")
    return a


def square(func: str, name: str, x, *, d: int | None = None, label: str = "d") -> np.ndarray:
    """A finite non-empty square (d, d) matrix."""
    a = matrix(func, name, x)
    if a.shape[0] != a.shape[1]:
        raise fail(func, name, f"a square ({label}, {label}) matrix", f"shape {a.shape}")
    if d is not None and a.shape[0] != d:
        raise fail(func, name, f"a ({label}, {label}) matrix with {label} = {d}", f"shape {a.shape}")
    return a


def symmetric(func: str, name: str, x, *, d: int | None = None, label: str = "d") -> np.ndarray:
    """A finite square (d, d) matrix, symmetric to ``SYM_RTOL`` relative; returns ``(A + A^T)/2``."""
    a = square(func, name, x, d=d, label=label)
    scale = float(np.abs(a).max())
    asym = float(np.abs(a - a.T).max()) / scale if scale > 0 else 0.0
    if asym > SYM_RTOL:
        raise fail(func, name, f"symmetric (max|A - A^T| <= {SYM_RTOL:g} max|A|)",
                   f"relative asymmetry {asym:.2e}")
    return 0.5 * (a + a.T)


def spd(func: str, name: str, x, *, d: int | None = None, label: str = "d") -> np.ndarray:
    """A symmetric positive-definite (d, d) matrix (see the module docstring for the threshold).
    Returns the symmetrised matrix."""
    a = symmetric(func, name, x, d=d, label=label)
    lam = np.linalg.eigvalsh(a)
    lo, hi = float(lam[0]), float(lam[-1])
    tol = a.shape[0] * EPS
    if not (hi > 0 and lo > tol * hi):
        raise fail(func, name, f"positive-definite (smallest eigenvalue > d * eps * largest = {tol:.2e} * largest)",
                   f"eigenvalues from {lo:.3e} to {hi:.3e}" + (" (numerically singular)" if lo >= 0 else
                                                                " (indefinite)"))
    return a


def full_row_rank(func: str, name: str, x, *, cols: int | None = None, rows: int | None = None,
                  labels: tuple[str | None, str | None] = ("k", "d")) -> np.ndarray:
    """A finite (k, d) matrix, 1 <= k <= d, of full row rank k (relative singular-value threshold)."""
    G = matrix(func, name, x, shape=(rows, cols), labels=labels)
    k, d = G.shape
    if k > d:
        raise fail(func, name, "a (k, d) matrix with k <= d (full row rank)", f"shape {G.shape}")
    s = np.linalg.svd(G, compute_uv=False)
    if not s[-1] > max(k, d) * EPS * s[0]:
        raise fail(func, name, f"of full row rank {k} (smallest singular value > max(k, d) * eps * largest)",
                   f"singular values from {s[-1]:.3e} to {s[0]:.3e}")
    return G


def full_column_rank(func: str, name: str, x, *, rows: int | None = None, cols: int | None = None,
                     labels: tuple[str | None, str | None] = (None, "k")) -> np.ndarray:
    """A finite (m, k) matrix, m >= k, of full column rank k (relative singular-value threshold)."""
    F = matrix(func, name, x, shape=(rows, cols), labels=labels)
    m, k = F.shape
    if m < k:
        raise fail(func, name, f"a (m, {k}) matrix with m >= {k} (full column rank)", f"shape {F.shape}")
    s = np.linalg.svd(F, compute_uv=False)
    if not s[-1] > max(m, k) * EPS * s[0]:
        raise fail(func, name, f"of full column rank {k} (smallest singular value > max(m, k) * eps * largest)",
                   f"singular values from {s[-1]:.3e} to {s[0]:.3e}")
    return F


def _interval(low, high, low_open, high_open) -> str:
    lo = "(" if low_open or low is None else "["
    hi = ")" if high_open or high is None else "]"
    return f"in {lo}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi}"


def _real_scalar(func: str, name: str, x, expected: str) -> float:
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        if isinstance(x, (numbers.Complex, np.complexfloating)) and not isinstance(x, (bool, np.bool_)):
            raise fail(func, name, expected, f"the complex number {x!r}")
        raise fail(func, name, expected, describe(x))
    try:
        return float(x)
    except (OverflowError, TypeError, ValueError):
        raise fail(func, name, expected, f"{describe(x)} (not representable as a float)") from None


def scalar(func: str, name: str, x, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (not a bool, string or array) in the stated interval."""
    interval = _interval(low, high, low_open, high_open)
    v = _real_scalar(func, name, x, f"a real number {interval}")
    if not np.isfinite(v):
        raise fail(func, name, f"a finite real number {interval}", repr(v))
    if low is not None and (v < low or (low_open and v == low)):
        raise fail(func, name, interval, repr(v))
    if high is not None and (v > high or (high_open and v == high)):
        raise fail(func, name, interval, repr(v))
    return v


def integer(func: str, name: str, x, *, low: int | None = None, high: int | None = None,
            why: str = "", expected: str | None = None) -> int:
    """A Python or numpy integer (not a bool, not a float) in ``[low, high]`` (``expected``, if given,
    replaces the stated range in the message, e.g. ``"a positive integer or None (population)"``)."""
    if low is not None and high is None:
        rng = f" >= {low}"
    elif low is None and high is None:
        rng = ""
    else:
        rng = f" in [{'-inf' if low is None else low}, {high}]"
    expected = expected or f"an integer{rng}{why}"
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise fail(func, name, expected, describe(x))
    v = int(x)
    if (low is not None and v < low) or (high is not None and v > high):
        raise fail(func, name, expected, repr(v))
    return v


def _bytes(n: float) -> str:
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def memory(func: str, sizes: Mapping[str, int], need: float, formula: str) -> None:
    """Refuse sizes whose arrays cannot be held at once: ``need`` bytes (``formula`` says how they follow
    from the sizes, e.g. ``"the (n, d) inputs, 16 n d bytes,"``) must not exceed :data:`MEMORY_BYTES`.
    The message names the largest of ``sizes`` (the arguments the user passed, already checked integers)."""
    if need > MEMORY_BYTES:
        name = max(sizes, key=lambda k: sizes[k])
        others = ", ".join(f"{k} = {v}" for k, v in sizes.items() if k != name)
        raise fail(func, name, f"small enough that {formula} fit in memory ({_bytes(MEMORY_BYTES)})",
                   f"{sizes[name]} (it would need {_bytes(need)}{' with ' + others if others else ''})")


def size(func: str, name: str, x, *, low: int = 1, bytes_per: float = 8.0, what: str | None = None) -> int:
    """An integer ``>= low`` whose ``bytes_per * x`` bytes fit in memory (``what`` names the arrays)."""
    v = integer(func, name, x, low=low)
    memory(func, {name: v}, float(bytes_per) * v,
           what or f"its arrays, {bytes_per:g} x {name} bytes,")
    return v


def choice(func: str, name: str, x, options: Iterable[str]) -> str:
    """One of the ``options`` (strings)."""
    opts = tuple(options)
    if not isinstance(x, str) or x not in opts:
        raise fail(func, name, f"one of {opts}", repr(x) if isinstance(x, str) else describe(x))
    return x


def flag(func: str, name: str, x) -> bool:
    """A bool (or numpy bool)."""
    if not isinstance(x, (bool, np.bool_)):
        raise fail(func, name, "a bool (True or False)", describe(x))
    return bool(x)


def generator(func: str, name: str, x, *, optional: bool = False) -> np.random.Generator | None:
    """A ``numpy.random.Generator`` (or ``None`` when ``optional``)."""
    if x is None and optional:
        return None
    if not isinstance(x, np.random.Generator):
        raise fail(func, name, "a numpy.random.Generator" + (" or None" if optional else ""), describe(x))
    return x


def instance(func: str, name: str, x, cls: type, what: str) -> Any:
    """An instance of ``cls`` (``what`` names it in the message)."""
    if not isinstance(x, cls):
        raise fail(func, name, what, describe(x))
    return x


def options(func: str, name: str, x) -> dict:
    """A mapping of option names (strings) to values, or ``None`` (no options); returns a dict."""
    if x is None:
        return {}
    if not isinstance(x, Mapping):
        raise fail(func, name, "a dict of optimizer options {name: value} or None", describe(x))
    bad = [k for k in x if not isinstance(k, str)]
    if bad:
        raise fail(func, name, "a dict whose keys are option names (strings)", f"the key {bad[0]!r}")
    return dict(x)


def call_values(func: str, name: str, fn: Callable, z: np.ndarray, *,
                expected: str = "a callable mapping an array of floats to finite real values of the same shape",
                label: str | None = None, broadcast: bool = True) -> np.ndarray:
    """``fn(z)`` checked: no exception, real, finite, of ``z.shape`` (or broadcastable to it when ``broadcast``).

    Any exception raised by ``fn`` is reported as a bad argument ``name``: ``got a callable (f) that
    raised ZeroDivisionError: float division by zero``.
    """
    if not callable(fn):
        raise fail(func, name, expected, describe(fn))
    label = label or getattr(fn, "__name__", type(fn).__name__)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            val = fn(z)
    except Exception as exc:  # noqa: BLE001 - any failure of a user callable is a bad argument
        raise fail(func, name, expected, f"a callable ({label}) that raised {type(exc).__name__}: {exc}") from None
    if val is None or isinstance(val, (str, bytes)):
        raise fail(func, name, expected, f"a callable ({label}) that returned {describe(val)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.asarray(val)
    except (ValueError, TypeError):
        raise fail(func, name, expected, f"a callable ({label}) that returned a ragged sequence") from None
    if a.dtype.kind not in "iuf":
        what = {"c": "complex values", "b": "booleans"}.get(a.dtype.kind, f"values of dtype {a.dtype}")
        raise fail(func, name, expected, f"a callable ({label}) that returned {what}")
    a = a.astype(np.float64, copy=False)
    if a.shape != z.shape:
        try:
            if not broadcast:
                raise ValueError
            a = np.broadcast_to(a, z.shape)
        except ValueError:
            raise fail(func, name, expected, f"a callable ({label}) that returned shape {a.shape} "
                       f"for input of shape {z.shape}") from None
    bad = ~np.isfinite(a)
    if bad.any():
        where = float(z[bad].ravel()[0]) if z.size else float("nan")
        what = "NaN" if np.isnan(a).any() else "inf"
        raise fail(func, name, expected, f"a callable ({label}) that returned {what} at {where:.6g}")
    return a


def psd(func: str, name: str, x, *, d: int | None = None, label: str = "d") -> np.ndarray:
    """A symmetric positive semi-definite (d, d) matrix: eigenvalues :math:`\\ge -d\\varepsilon\\lambda_{\\max}`
    (rounding). Returns the symmetrised matrix."""
    a = symmetric(func, name, x, d=d, label=label)
    lam = np.linalg.eigvalsh(a)
    lo, hi = float(lam[0]), float(lam[-1])
    if lo < -a.shape[0] * EPS * max(abs(hi), abs(lo)):
        raise fail(func, name, "positive semi-definite (smallest eigenvalue >= -d * eps * largest)",
                   f"eigenvalues from {lo:.3e} to {hi:.3e} (indefinite)")
    return a


def check(ok: bool, func: str, name: str, expected: str, got: object) -> None:
    """A relation between arguments (``k <= d``, a batch of the problem's d_x): raise when not ``ok``."""
    if not ok:
        raise fail(func, name, expected, got)


def optimizer_options(name: str, options: Mapping[str, Any], allowed: Iterable[str],
                      fixed: Mapping[str, Any] | None = None, *, required: Iterable[str] = ("lr",)) -> None:
    """The options of optimizer ``name``: each one of ``allowed`` (sorted in the message), none of
    ``fixed`` (set by the factory: ``kfac_ls`` is KFAC with ``eta_F = 1``), every ``required`` one given.
    Messages are under ``optimizer '<name>'``."""
    func = f"optimizer {name!r}"
    allowed = sorted(allowed)
    fixed = dict(fixed or {})
    for key, value in options.items():
        if key == "name":
            raise fail(func, key, f"left out (it is {name!r}, the registered name)", repr(value))
        if key in fixed:
            raise fail(func, key, f"left out (fixed to {fixed[key]!r} for {name!r})", describe(value))
        if key not in allowed:
            raise fail(func, key, f"an option of {name!r} (one of {allowed})", "an unknown option")
    for key in required:
        if key not in options:
            raise fail(func, key, f"given (required by {name!r})", "nothing")
