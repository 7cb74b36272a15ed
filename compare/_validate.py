"""Argument checks at the public boundary of :mod:`compare`: the vocabulary of ``theory._validate``.

Every bad argument raises ``ValueError`` in the house format::

    <FUNCTION>: argument '<NAME>' must be <EXPECTED>; got <WHAT>.

The scalar, integer, choice and flag checks, the description of what was passed and the real-array
conversion (complex, object, boolean and string arrays rejected) are those of
:mod:`theory._validate` (``compare`` imports ``theory``; the rule that ``theory`` and ``simulate``
share nothing is untouched). Added here is what only ``compare`` takes:

- **probabilities** (``alpha``, ``power``): real numbers in the open interval :math:`(0, 1)`;
- **degrees of freedom**: a real number :math:`\\nu > 0`, ``inf`` or ``None`` for a known s.e.;
- **samples**: a real array of at least ``min_size`` values (raveled), finite unless the test takes
  unbounded values (the sign test, log ratios);
- **counts that fit memory**: an integer at most ``high``, the message naming the memory the size
  would need (never a ``MemoryError``, a hang, or a fork bomb);
- **strings, callables, mappings, settings dataclasses** (classes and instances), and **rows** (the
  dicts of :meth:`compare.stats.Agreement.row` / :meth:`compare.stats.Ordering.row`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping

import numpy as np

from theory._validate import _real_array, choice, describe, fail, flag, integer, scalar  # noqa: F401 (re-exported)


def prob(func: str, name: str, x: Any) -> float:
    """A probability in the open interval (0, 1)."""
    return scalar(func, name, x, low=0.0, high=1.0, low_open=True, high_open=True)


def dof(func: str, name: str, x: Any) -> float:
    """Degrees of freedom: a real number > 0; ``None`` or ``inf`` (a known s.e.) give ``inf``."""
    if x is None:
        return math.inf
    expected = "a real number > 0 (inf or None for a known s.e.)"
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, (float, np.floating)) and x == math.inf:
        return math.inf
    v = scalar(func, name, x, low=0.0, low_open=True) if _is_real(x) else None
    if v is None:
        raise fail(func, name, expected, describe(x))
    return v


def _is_real(x: Any) -> bool:
    import numbers

    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def real(func: str, name: str, x: Any, **interval: Any) -> float:
    """A finite real number (``low``/``high``/``low_open``/``high_open`` as in ``theory._validate.scalar``)."""
    return scalar(func, name, x, **interval)


def samples(func: str, name: str, x: Any, *, min_size: int = 1, finite: bool = True, nan: bool = False,
            low: float | None = None, what: str = "real numbers") -> np.ndarray:
    """A real array of at least ``min_size`` values, raveled to 1-D (a 0-d scalar is rejected).

    finite: reject NaN and inf; else (``nan`` false) reject only NaN; ``low``: every value >= low.
    """
    a = _real_array(func, name, x, f"an array of {what}")
    if a.ndim == 0:
        raise fail(func, name, f"an array of {what} (one per trial)", f"a scalar {describe(x)}")
    a = a.ravel()
    if a.size < min_size:
        raise fail(func, name, f"an array of at least {min_size} {what}", f"{a.size} value(s)")
    if finite and not np.all(np.isfinite(a)):
        cnt = int(np.count_nonzero(~np.isfinite(a)))
        raise fail(func, name, f"finite ({what}, no NaN or inf)",
                   f"{cnt} non-finite value(s) (first: {float(a[~np.isfinite(a)][0])!r})")
    if not finite and not nan and np.any(np.isnan(a)):
        raise fail(func, name, f"{what} (no NaN; inf allowed)", f"{int(np.isnan(a).sum())} NaN value(s)")
    if low is not None and np.any(a < low):
        raise fail(func, name, f"{what} >= {low:g}", f"minimum {float(np.nanmin(a)):.6g}")
    return a


def count(func: str, name: str, x: Any, *, low: int, high: int, bytes_each: float | None = None,
          what: str = "") -> int:
    """An integer in ``[low, high]``; ``high`` is a memory (or process) bound: with ``bytes_each`` the
    message names the memory a larger value would need."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and int(x) > high:
        need = f" (would need {_size(int(x) * bytes_each)} of memory)" if bytes_each else ""
        each = f", ~{_size(bytes_each)} each" if bytes_each else ""
        raise fail(func, name, f"an integer in [{low}, {high:,}] ({what}{each}, to fit memory)" if bytes_each else
                   f"an integer in [{low}, {high:,}]{' (' + what + ')' if what else ''}", f"{int(x)!r}{need}")
    return integer(func, name, x, low=low, high=high)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"


def text(func: str, name: str, x: Any, *, empty: bool = False) -> str:
    """A string (non-empty unless ``empty``)."""
    if not isinstance(x, str):
        raise fail(func, name, "a string" if empty else "a non-empty string", describe(x))
    if not empty and not x:
        raise fail(func, name, "a non-empty string", "the empty string ''")
    return x


def optional_text(func: str, name: str, x: Any) -> str | None:
    return None if x is None else text(func, name, x)


def function(func: str, name: str, x: Any, *, optional: bool = False, what: str = "a callable") -> Any:
    """A callable (or ``None`` when ``optional``)."""
    if x is None and optional:
        return None
    if not callable(x) or isinstance(x, type):
        raise fail(func, name, what + (" or None" if optional else ""), describe(x))
    return x


def text_or_function(func: str, name: str, x: Any) -> Any:
    if isinstance(x, str) or (callable(x) and not isinstance(x, type)):
        return x
    raise fail(func, name, "a string or a callable of the settings returning one", describe(x))


def mapping(func: str, name: str, x: Any, *, optional: bool = True) -> dict:
    """A mapping with string keys (``None`` gives ``{}`` when ``optional``)."""
    if x is None and optional:
        return {}
    if not isinstance(x, Mapping):
        raise fail(func, name, "a mapping {name: value}" + (" or None" if optional else ""), describe(x))
    bad = [k for k in x if not isinstance(k, str)]
    if bad:
        raise fail(func, name, "a mapping with string keys", f"the key {bad[0]!r}")
    return dict(x)


def settings_class(func: str, name: str, x: Any, *, preset: bool = True) -> type:
    """A dataclass type (with a ``preset(size)`` classmethod when ``preset``)."""
    if not (isinstance(x, type) and dataclasses.is_dataclass(x) and (not preset or hasattr(x, "preset"))):
        what = "a settings dataclass" + (" with a preset(size) classmethod" if preset else "")
        got = (f"the class {x.__name__}" if isinstance(x, type) else
               f"an instance of {type(x).__name__}" if dataclasses.is_dataclass(x) else describe(x))
        raise fail(func, name, what, got)
    return x


def settings_instance(func: str, name: str, x: Any, *, cls: type | None = None) -> Any:
    """A dataclass instance (of ``cls`` if given)."""
    want = cls.__name__ if cls is not None else "a settings dataclass"
    if not dataclasses.is_dataclass(x) or isinstance(x, type) or (cls is not None and not isinstance(x, cls)):
        got = f"the class {x.__name__}" if isinstance(x, type) else (
            f"an instance of {type(x).__name__}" if dataclasses.is_dataclass(x) else describe(x))
        raise fail(func, name, f"an instance of {want}" if cls is not None else want, got)
    return x


def strings(func: str, name: str, x: Any, *, what: str = "strings") -> tuple[str, ...]:
    """A list or tuple of strings (a lone string is rejected: it is not a list of its characters)."""
    if isinstance(x, (str, bytes)) or not isinstance(x, (list, tuple)):
        raise fail(func, name, f"a list or tuple of {what}", describe(x))
    bad = [v for v in x if not isinstance(v, str)]
    if bad:
        raise fail(func, name, f"a list or tuple of {what}", f"an entry {describe(bad[0])}")
    return tuple(x)


def rows(func: str, name: str, x: Any, *, keys: Iterable[str] = ()) -> list:
    """A non-empty list of check rows (dicts, or objects with the attributes ``keys``)."""
    keys = tuple(keys)
    if isinstance(x, (str, bytes, Mapping)) or not isinstance(x, Iterable):
        raise fail(func, name, "a non-empty list of rows (dicts of Agreement.row / Ordering.row)", describe(x))
    out = list(x)
    if not out:
        raise fail(func, name, "a non-empty list of rows", "an empty list")
    for r in out:
        has = (lambda k: k in r) if isinstance(r, Mapping) else (lambda k: hasattr(r, k))
        missing = [k for k in keys if not has(k)]
        if missing or not (isinstance(r, Mapping) or hasattr(r, "row")):
            raise fail(func, name, f"rows with the keys {', '.join(map(repr, keys))}",
                       f"a row {describe(r) if not isinstance(r, Mapping) else 'without ' + repr(missing[0])}")
    return out
