"""Hypothesis strategies of bad values, by kind of argument, and the check of a bad call, shared by
the bad-input suites of theory, simulate and compare (tests/*/test_bad_inputs.py).

A strategy draws ``(class, value)`` pairs; the classes are

    shape, dtype (complex / object / bool / string), type, nonfinite (NaN / inf), nonsymmetric,
    singular (exactly rank-deficient, at any scale 2^k), indefinite, range (out of the stated
    interval, boundary of an open one), integer (bool, float - even integral -, string, out of
    range), size (integers whose arrays cannot fit in memory), choice, flag, callable (raises,
    returns NaN / inf / complex / strings / a wrong shape / None).

:func:`check` makes the call with one argument replaced and asserts a ``ValueError`` in the house
format ``"FUNCTION: argument 'NAME' must EXPECTED; got WHAT."`` naming the function and the argument.
Nothing here imports theory, simulate or compare.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: the house format of a bad-argument message; FUNCTION is a public function (``kappa``, ``Batch.population``)
#: or an optimizer's options (``optimizer 'kfac'``)
FORMAT = re.compile(r"^(?P<func>[\w.]+|optimizer '[\w.]+'): argument '(?P<name>[^']+)' must (?P<exp>.+); got (?P<got>.+)\.$",
                    re.S)
EPS = np.finfo(float).eps

# ============================================================================================
# strategies of bad values, by kind of argument
# ============================================================================================

def tag(cls: str, s: st.SearchStrategy) -> st.SearchStrategy:
    return s.map(lambda v: (cls, v))


def orth(seed: int, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


TYPE_BAD = tag("type", st.sampled_from([None, "abc", "1.5", {"a": 1}, b"x", object()]))


def dtype_bad(v: np.ndarray) -> st.SearchStrategy:
    v = np.asarray(v, dtype=float)
    return tag("dtype", st.one_of(
        st.floats(-1e3, 1e3).map(lambda im: v + 1j * im),          # complex, zero imaginary part included
        st.just(v.astype(object)),
        hnp.arrays(bool, v.shape),
        st.just(v.astype(str)),
        st.just(v.astype(np.complex64)),
    ))


def nonfinite_bad(v: np.ndarray, *, symmetric: bool = False) -> st.SearchStrategy:
    v = np.asarray(v, dtype=float)

    def put(args):
        i, val = args
        a = v.copy()
        idx = np.unravel_index(i % a.size, a.shape)
        a[idx] = val
        if symmetric:
            a[idx[::-1]] = val
        return a

    return tag("nonfinite", st.tuples(st.integers(0, 10**6), st.sampled_from([np.nan, np.inf, -np.inf])).map(put))


def shape_bad(v: np.ndarray, allowed_ndim: tuple[int, ...], fixed: tuple | None = None) -> st.SearchStrategy:
    """Arrays whose number of dimensions is not allowed, empty ones, and (``fixed``: the sizes that
    are determined by the other arguments, ``None`` for free ones) arrays of the right ndim with a
    fixed size changed."""
    v = np.asarray(v, dtype=float)
    wrong_ndim = st.integers(0, 3).filter(lambda k: k not in allowed_ndim).flatmap(
        lambda k: hnp.arrays(float, hnp.array_shapes(min_dims=k, max_dims=k, min_side=1, max_side=4),
                             elements=st.floats(0.5, 2.0)))
    options = [wrong_ndim, st.just(np.zeros((0,) * v.ndim)), st.just([[1.0, 2.0], [3.0]])]
    if fixed is not None:
        other = hnp.array_shapes(min_dims=v.ndim, max_dims=v.ndim, min_side=1, max_side=6).filter(
            lambda sh: any(f is not None and g != f for g, f in zip(sh, fixed)))
        options.append(other.map(lambda sh: np.full(sh, 0.5) + (np.eye(*sh) if len(sh) == 2 else 0.0)))
    return tag("shape", st.one_of(*options))



def spd_bad(v: np.ndarray, *, allow_1d: bool = False, structure_only: bool = False) -> st.SearchStrategy:
    """Bad symmetric positive-definite matrices; ``structure_only``: only the nonsymmetric, exactly
    singular (integer B B^T of rank < d, times 2^k, k in [-400, 400]) and indefinite ones (smallest
    eigenvalue -[1e-8, 1] times the largest)."""
    v = np.asarray(v, dtype=float)
    d = v.shape[0]
    scale = st.integers(-400, 400).map(lambda k: 2.0 ** k)        # exact scalings

    def asym(args):
        i, j, rel = args
        i, j = i % d, j % d
        if i == j:
            j = (i + 1) % d
        a = v.copy()
        a[i, j] += rel * np.abs(v).max()
        return a

    def singular(args):
        seed, r, sc = args
        rng = np.random.default_rng(seed)
        B = rng.integers(-3, 4, (d, min(r, d - 1))).astype(float)   # rank < d, exact integer entries
        B[0, 0] = B[0, 0] or 1.0
        return (B @ B.T) * sc

    def indefinite(args):
        seed, rel, sc = args
        lam = np.linspace(1.0, 2.0, d) * sc
        lam[0] = -rel * lam[-1]
        Q = orth(seed, d)
        return (Q * lam) @ Q.T

    structure = st.one_of(
        tag("nonsymmetric", st.tuples(st.integers(0, 99), st.integers(0, 99), st.floats(1e-8, 1.0)).map(asym)),
        tag("singular", st.tuples(st.integers(0, 2**32), st.integers(1, 8), scale).map(singular)),
        tag("indefinite", st.tuples(st.integers(0, 2**32), st.floats(1e-8, 1.0), scale).map(indefinite)),
    )
    if structure_only:
        return structure
    # (a square matrix of another size is wrong only relative to the other arguments: not generated)
    return st.one_of(
        shape_bad(v, (1, 2) if allow_1d else (2,)),
        tag("shape", st.just(v[:, :-1])),
        dtype_bad(v), TYPE_BAD, nonfinite_bad(v, symmetric=True), structure,
    )


def matrix_bad(v: np.ndarray, fixed: tuple | None = None) -> st.SearchStrategy:
    return st.one_of(shape_bad(v, (2,), fixed), dtype_bad(v), TYPE_BAD, nonfinite_bad(v))


def rank_bad(v: np.ndarray, *, rows: bool) -> st.SearchStrategy:
    """Exactly rank-deficient versions of ``v`` (a row / column repeated or zeroed), at any scale."""
    v = np.asarray(v, dtype=float)

    def deficient(args):
        i, j, sc = args
        a = v.copy() if rows else v.T.copy()
        i, j = i % a.shape[0], j % a.shape[0]
        if i == j:
            a[i] = 0.0
        else:
            a[i] = a[j]
        a = a * sc
        return a if rows else a.T

    return tag("singular", st.tuples(st.integers(0, 99), st.integers(0, 99),
                                      st.integers(-400, 400).map(lambda k: 2.0 ** k)).map(deficient))


def vector_bad(v: np.ndarray, *, positive: bool = False, nonneg: bool = False, nonzero: bool = False,
               exact: bool = True) -> st.SearchStrategy:
    """Bad 1-D arrays; ``exact``: the length is fixed by the other arguments."""
    v = np.asarray(v, dtype=float)
    options = [shape_bad(v, (1,), (v.size,) if exact else None), dtype_bad(v), TYPE_BAD, nonfinite_bad(v)]

    def put(args):
        i, val = args
        a = v.copy()
        a[i % a.size] = val
        return a

    if positive:
        options.append(tag("range", st.tuples(st.integers(0, 99), st.floats(-1e300, 0.0)).map(put)))
    elif nonneg:
        options.append(tag("range", st.tuples(st.integers(0, 99), st.floats(-1e300, -1e-300)).map(put)))
        options.append(tag("range", st.just(np.zeros_like(v))))
    if nonzero:
        options.append(tag("range", st.just(np.zeros_like(v))))
    return st.one_of(*options)


def below(low: float) -> st.SearchStrategy:
    return st.floats(1e-9, 1e300).map(lambda e: low - max(abs(low), 1.0) * e).filter(lambda x: x < low)


def real_bad(low=None, high=None, *, low_open=False, high_open=False, valid=0.5) -> st.SearchStrategy:
    options = [
        tag("nonfinite", st.sampled_from([math.nan, math.inf, -math.inf, np.float64("nan")])),
        tag("dtype", st.one_of(st.floats(-10, 10).map(lambda im: complex(valid, im)), st.sampled_from([True, False]),
                                st.just(np.bool_(True)))),
        TYPE_BAD,
        tag("shape", st.one_of(st.just([]), st.just(np.array([valid, valid])), st.just([valid]))),
    ]
    if low is not None:
        options.append(tag("range", below(low)))
        if low_open:
            options.append(tag("range", st.just(float(low))))
    if high is not None:
        options.append(tag("range", st.floats(1e-9, 1e300).map(lambda e: high + max(abs(high), 1.0) * e)
                            .filter(lambda x: x > high)))
        if high_open:
            options.append(tag("range", st.just(float(high))))
    return st.one_of(*options)


def ridge_bad(valid=0.1) -> st.SearchStrategy:
    return st.one_of(
        tag("range", st.floats(-1e300, -1e-300)),
        tag("range", hnp.arrays(float, st.integers(1, 5), elements=st.floats(-1e3, 1e3))
             .filter(lambda a: np.any(a < 0))),
        tag("nonfinite", st.one_of(st.sampled_from([math.nan, math.inf]),
                                    st.just(np.array([valid, np.nan])), st.just(np.array([[valid, np.inf]])))),
        tag("dtype", st.one_of(st.just(complex(valid, 1)), st.just(np.array([valid, valid], complex)),
                                st.sampled_from([True, False]), st.just(np.array([valid, None], dtype=object)),
                                st.just(np.array([True, False])))),
        TYPE_BAD,
    )


def integer_bad(low: int, high: int | None = None, *, allow_none: bool = False) -> st.SearchStrategy:
    options = [
        tag("integer", st.sampled_from([True, False, np.bool_(True)])),
        tag("integer", st.integers(low, (high or low + 100)).map(float)),     # integral floats too
        tag("integer", st.floats(low, low + 100).filter(lambda x: x != int(x))),
        tag("integer", st.integers(low, low + 100).map(str)),
        tag("integer", st.integers(-10**30, low - 1)),
        tag("nonfinite", st.sampled_from([math.nan, math.inf])),
        tag("dtype", st.just(complex(low + 1, 1))),
        tag("shape", st.just(np.array([low, low]))),
    ]
    if not allow_none:
        options.append(tag("type", st.just(None)))
    if high is not None:
        options.append(tag("integer", st.integers(high + 1, high + 10**6)))
    return st.one_of(*options)


def choice_bad(options: tuple) -> st.SearchStrategy:
    return st.one_of(
        tag("range", st.text(max_size=8).filter(lambda s: s not in options)),
        tag("type", st.sampled_from([None, 1, 1.5, (options[0],), [options[0]]])),
        tag("type", st.just(np.array([options[0], options[0]]))),
    )


def flag_bad() -> st.SearchStrategy:
    return tag("type", st.one_of(st.integers(-5, 5), st.text(max_size=5), st.none(),
                                  st.just(np.array([True, False])), st.floats(0, 1)))


class Boom(Exception):
    pass


def raiser(exc: type[BaseException]) -> Callable:
    def f(z):
        raise exc("boom")

    return f



@dataclass
class Fn:
    label: str
    call: Callable[..., Any]
    valid: dict[str, Any]
    bad: dict[str, st.SearchStrategy]
    alt: tuple[str, ...] = field(default_factory=tuple)   # names a relative shape error may name
    structure: dict[str, st.SearchStrategy] = field(default_factory=dict)  # matrix-property violations only
    #: arg -> names inside it a message may name instead (the key of an options dict: 'eta_F' in options;
    #: ``"*"``: any key), reported under one of ``inner_funcs`` (``optimizer 'kfac'``) or the function itself
    inner: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inner_funcs: tuple[str, ...] = ()


def check(fn: Fn, arg: str, cls: str, value) -> None:
    """Call ``fn`` with ``arg`` replaced by ``value`` (a bad value of class ``cls``): a ValueError in the
    house format naming ``fn.label`` and ``arg`` (or, see :class:`Fn`, a name it may name instead)."""
    kw = dict(fn.valid)
    kw[arg] = value
    with pytest.raises(ValueError) as info:
        fn.call(**kw)
    msg = str(info.value)
    m = FORMAT.match(msg)
    assert m, (f"{fn.label}({arg}=<{cls}>): message not in the format "
               f"'FUNC: argument 'NAME' must ...; got ....': {msg!r}")
    # a shape may be wrong only relative to another argument: the message may name any of ``fn.alt``
    names = {arg} | (set(fn.alt) if cls in ("shape", "shape-relative") else set())
    inner = fn.inner.get(arg, ())
    if (m["name"] in inner or "*" in inner) and m["func"] in (fn.label, *fn.inner_funcs):
        return
    assert m["func"] == fn.label and m["name"] in names, (
        f"{fn.label}({arg}=<{cls}>): message names function {m['func']!r} and argument {m['name']!r}, "
        f"expected {fn.label!r} and one of {sorted(names)}: {msg!r}")


# ============================================================================================
# kinds of argument of the simulations: sizes, generators, objects, options
# ============================================================================================

def optional(s: st.SearchStrategy) -> st.SearchStrategy:
    """The bad values of ``s`` other than ``None`` (for an argument where ``None`` is legal)."""
    return s.filter(lambda cv: cv[1] is not None)


def size_bad(low: int, high: int | None = None) -> st.SearchStrategy:
    """Bad integers (:func:`integer_bad`) and sizes whose arrays cannot fit in any memory (2^40..2^80:
    a clear error naming the size and the memory it would need, never MemoryError or a hang)."""
    return st.one_of(integer_bad(low, high), tag("size", st.integers(40, 80).map(lambda k: 2 ** k)))


RNG_BAD = tag("type", st.sampled_from([None, 0, 42, 1.5, "abc", np.random.RandomState(0), np.random.SeedSequence(0),
                                        np.random.PCG64(0)]))

#: anything that is not the expected object (a problem, a batch, a result, ...)
OBJECT_BAD = st.one_of(TYPE_BAD, tag("type", st.sampled_from([1.5, 3, np.eye(2), [1, 2], (1,)])))


def options_bad(*, out_of_range: dict[str, Any] | None = None) -> st.SearchStrategy:
    """Bad optimizer options: not a dict, a non-string key, an unknown option, ``lr`` among them,
    and (``out_of_range``) an option with a bad value."""
    unknown = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
        lambda s: s not in ("lr", "eta_F", "lam_G", "head_right", "name", "left", "right"))
    options = [
        tag("type", st.sampled_from([[1, 2], "abc", 1.5, (("lam_G", 0.0),)])),
        tag("type", st.just({1: 2})),
        tag("unknown", unknown.map(lambda k: {k: 1.0})),
        tag("range", st.floats(1e-3, 1.0).map(lambda v: {"lr": v})),
    ]
    for key, strat in (out_of_range or {}).items():
        options.append(strat.map(lambda cv, key=key: (cv[0], {key: cv[1]})))
    return st.one_of(*options)
