"""Tally: what every class of bad input does at the public boundary of ``theory`` (issue "Step 10").

For each public function a *valid* call is written down once, with a kind for each argument
(``spd`` matrix, ``spectrum``, ``real`` in an interval, ``integer`` size, ``choice``, ``teacher``
callable, ...). Each kind generates the classes of bad input

    shape, dtype (complex / object / bool / string), type (None, str, dict), nonfinite (NaN / inf),
    nonsymmetric, singular, indefinite, range (out of the stated interval), integer (bool,
    non-integer, out of range), callable (raises, returns NaN / inf / strings / wrong shape,
    diverges), inconsistent (e.g. rank-deficient G, tangent undefined)

and every bad call is made with one argument replaced, under a time limit. Outcomes:

- ``named``: ``ValueError`` in the house format ``"FUNC: argument 'NAME' must ...; got ....``
  naming the function called and the argument that was replaced;
- ``named_other_func``: that format and argument, but the prefix names another function;
- ``ValueError_unnamed``: a ``ValueError`` that does not name the argument (or not in the format);
- ``returned`` / ``returned_nonfinite``: no error (a silent wrong answer, or NaN / inf);
- ``<ExceptionType>``: any other exception; ``hung``: over the time limit.

Measured (theory, 2933 bad inputs over 60 public functions): before the Step 10 hardening 1448 named
(49.4%; 2152 = 73.4% named the argument, 704 of them under another function's name), 605 returned a
result, 98 a ValueError naming nothing, 38 TypeError, 18 ArithmeticError, 17 AttributeError,
3 hung (> 10 s), 1 OverflowError, 1 IndexError; after: 2933 named (100%), 3.4 s.

Measured (simulate, 2479 bad inputs over 61 public functions and methods), the same catalogue run
against main's code before the simulate hardening (``--isolate --timeout 5``): 977 named (39.4%),
586 returned a result, 348 a ValueError naming nothing, 168 AttributeError, 115 a NaN / inf result,
104 named under another function, 80 TypeError, 58 UFuncTypeError, 12 hung, 11 IndexError,
7 ZeroDivisionError, 5 UnboundLocalError, 4 MemoryError, 3 OverflowError, 1 DivergenceError;
after: 2479 named (100%), 0.5 s. Optimizer factories (627 bad options over the 16 registered
optimizers): before 542 named (86.4%; 72 returned, 13 a ValueError naming nothing); after 627 (100%).

Run: ``python benchmarks/bad_inputs.py [--only theory] [--timeout 10] [--details] [--strict]``.
Exit status 1 only with ``--strict`` when some bad input is not ``named``. The table is printed
by class and by function. ``CASES`` (or :func:`cases`) is the list of :class:`Spec` of theory,
simulate and the optimizer factories; the compare API's are in ``bad_inputs_compare.py`` (same
shape), and ``validation_table.py`` turns both into the README's table.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


# =============================================================================================
# generators of bad values, by kind of argument
# =============================================================================================

Bad = tuple[str, str, Any]   # (class, label, value)


def _dtype_bad(valid: np.ndarray) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    return [
        ("dtype", "complex (nonzero imag)", v + 1j * 0.25),
        ("dtype", "complex (zero imag)", v.astype(complex)),
        ("dtype", "object", v.astype(object)),
        ("dtype", "bool", v != 0),
        ("dtype", "string", v.astype(str)),
    ]


def _type_bad() -> list[Bad]:
    return [("type", "None", None), ("type", "str", "abc"), ("type", "dict", {"a": 1})]


def _nonfinite(valid: np.ndarray, sym: bool = False) -> list[Bad]:
    out = []
    for val, lab in ((np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")):
        v = np.array(valid, dtype=float, copy=True)
        v.flat[0] = val
        if sym and v.ndim == 2 and v.shape[0] > 1:
            v[-1, -1] = val
        out.append(("nonfinite", lab, v))
    return out


def _rot(d: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((d, d)))
    return q


def bad_matrix(valid, *, shape_fixed: bool = True) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    out: list[Bad] = [
        ("shape", "1-D", v.ravel()),
        ("shape", "3-D", v[None]),
        ("shape", "empty", np.zeros((0, 0))),
        ("shape", "scalar", 1.0),
    ]
    if shape_fixed:
        out.append(("shape", "one column too many", np.hstack([v, v[:, :1]])))
    out += _dtype_bad(v) + _type_bad() + _nonfinite(v)
    out.append(("shape", "ragged list", [[1.0, 2.0], [3.0]]))
    return out


def bad_full_row_rank(valid) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    out = bad_matrix(v, shape_fixed=False)
    r = v.copy()
    if r.shape[0] >= 2:
        r[1] = r[0]
    else:
        r[:] = 0.0
    out.append(("singular", "rank deficient", r))
    out.append(("singular", "zero", np.zeros_like(v)))
    out.append(("shape", "more rows than columns", np.vstack([v, v, v, v, v])))
    return out


def bad_full_col_rank(valid) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    out = bad_matrix(v, shape_fixed=True)
    r = v.copy()
    if r.shape[1] >= 2:
        r[:, 1] = r[:, 0]
    else:
        r[:] = 0.0
    out.append(("singular", "rank deficient", r))
    out.append(("singular", "zero", np.zeros_like(v)))
    return out


def bad_spd(valid, *, allow_1d: bool = False) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    d = v.shape[0]
    Q = _rot(d)
    out: list[Bad] = [
        ("shape", "3-D", v[None]),
        ("shape", "non-square", v[:, :-1]),
        ("shape", "empty", np.zeros((0, 0))),
        ("shape", "scalar", 1.0),
        ("shape", "ragged list", [[1.0, 0.0], [0.0]]),
    ]
    if not allow_1d:
        out.append(("shape", "1-D", np.diag(v)))
    out += _dtype_bad(v) + _type_bad() + _nonfinite(v, sym=True)
    ns = v.copy()
    ns[0, 1] += 0.5 * np.abs(v).max()
    out.append(("nonsymmetric", "asymmetric entry", ns))
    u = v[:, 0] / np.linalg.norm(v[:, 0])
    out.append(("singular", "rank one", np.outer(u, u) * 2.0))
    out.append(("singular", "zero", np.zeros_like(v)))
    ev = np.linspace(1.0, 2.0, d)
    ev[0] = 1e-17
    out.append(("singular", "eigenvalue 1e-17 (numerically singular)", (Q * ev) @ Q.T))
    ev = np.linspace(1.0, 2.0, d)
    ev[0] = -1e-3
    out.append(("indefinite", "eigenvalue -1e-3", (Q * ev) @ Q.T))
    out.append(("indefinite", "negative definite", -np.eye(d)))
    return out


def bad_spectrum(valid, *, nonneg_ok: bool = False, name_1d: str = "1-D") -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    out: list[Bad] = [
        ("shape", "2-D", np.vstack([v, v])),
        ("shape", "empty", np.zeros(0)),
        ("shape", "ragged list", [[1.0, 2.0], [3.0]]),
    ]
    out += _dtype_bad(v) + _type_bad() + _nonfinite(v)
    z = v.copy()
    z[0] = 0.0
    n = v.copy()
    n[0] = -1.0
    if not nonneg_ok:
        out.append(("range", "zero entry", z))
    out.append(("range", "negative entry", n))
    return out


def bad_vector(valid, *, nonzero: bool = True) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    out: list[Bad] = [
        ("shape", "2-D", v[None, :]),
        ("shape", "wrong length", np.append(v, 1.0)),
        ("shape", "empty", np.zeros(0)),
        ("shape", "scalar", 1.0),
    ]
    out += _dtype_bad(v) + _type_bad() + _nonfinite(v)
    if nonzero:
        out.append(("range", "zero vector", np.zeros_like(v)))
    return out


def bad_weights(valid) -> list[Bad]:
    v = np.asarray(valid, dtype=float)
    out = [("shape", "wrong length", np.append(v, 1.0)), ("shape", "2-D", v[None, :])]
    out += _dtype_bad(v) + [("type", "str", "abc"), ("type", "dict", {"a": 1})] + _nonfinite(v)
    n = v.copy()
    n[0] = -1.0
    out += [("range", "negative entry", n), ("range", "all zero", np.zeros_like(v))]
    return out


def _fmt(x) -> str:
    return "inf" if x is None else f"{x:g}"


def bad_real(low=None, high=None, low_open=False, high_open=False, *, valid=0.5) -> list[Bad]:
    out: list[Bad] = [
        ("nonfinite", "NaN", float("nan")), ("nonfinite", "inf", float("inf")), ("nonfinite", "-inf", -float("inf")),
        ("dtype", "complex", complex(valid, 1.0)), ("dtype", "complex zero imag", complex(valid, 0.0)),
        ("dtype", "bool", True), ("type", "numeric string", str(valid)), ("type", "None", None),
        ("shape", "array of 2", np.array([valid, valid])), ("shape", "empty list", []),
    ]
    if low is not None:
        out.append(("range", f"below {_fmt(low)}", low - 1.0 if low != 0 else -1e-3))
        out.append(("range", f"far below {_fmt(low)}", -1e300))
        if low_open:
            out.append(("range", f"= {_fmt(low)} (open)", float(low)))
    if high is not None:
        out.append(("range", f"above {_fmt(high)}", high + 1.0))
        if high_open:
            out.append(("range", f"= {_fmt(high)} (open)", float(high)))
    return out


def bad_ridge(*, valid=0.1) -> list[Bad]:
    return [
        ("range", "negative", -1e-3), ("range", "negative in array", np.array([valid, -1.0])),
        ("nonfinite", "NaN", float("nan")), ("nonfinite", "inf", float("inf")),
        ("nonfinite", "NaN in array", np.array([valid, np.nan])),
        ("dtype", "complex", complex(valid, 1.0)), ("dtype", "complex array", np.array([valid, valid], complex)),
        ("dtype", "bool", True), ("dtype", "object array", np.array([valid, None], dtype=object)),
        ("type", "numeric string", str(valid)), ("type", "None", None), ("type", "dict", {"a": 1}),
    ]


def bad_integer(low: int, high: int | None = None) -> list[Bad]:
    out: list[Bad] = [
        ("integer", "bool True", True), ("integer", "non-integer float", low + 0.5),
        ("integer", "numeric string", str(low + 1)), ("integer", "below range", low - 1),
        ("integer", "far below range", -10**30), ("nonfinite", "NaN", float("nan")),
        ("nonfinite", "inf", float("inf")), ("type", "None", None), ("dtype", "complex", complex(low + 1, 1)),
        ("shape", "array of 2", np.array([low + 1, low + 1])),
    ]
    if high is not None:
        out.append(("integer", "above range", high + 1))
    return out


def bad_choice(options: Iterable[str]) -> list[Bad]:
    opts = tuple(options)
    return [("range", "unknown name", "bogus"), ("range", "wrong case", opts[0].upper() + "_X"),
            ("type", "None", None), ("type", "int", 1), ("type", "list", [opts[0]]),
            ("type", "array", np.array([opts[0], opts[0]]))]


def bad_flag() -> list[Bad]:
    return [("type", "string", "yes"), ("type", "int 2", 2), ("type", "None", None),
            ("type", "array", np.array([True, False]))]


def _raise_zde(z):
    return 1.0 / 0


def _raise_zde_batch(t, b):
    return 1.0 / 0


def _divergent(z):
    return np.exp(np.asarray(z, dtype=float) ** 2)


def bad_teacher(*, numeric: bool = True) -> list[Bad]:
    """Bad teachers/students: for ``numeric`` the callables act on arrays (theory.single_index)."""
    out: list[Bad] = [("range", "unknown name", "bogus"), ("type", "float", 1.5), ("type", "None", None),
                      ("callable", "raises ZeroDivisionError", _raise_zde)]
    if numeric:
        out += [
            ("callable", "returns NaN", lambda z: np.full(np.shape(z), np.nan)),
            ("callable", "returns inf", lambda z: np.full(np.shape(z), np.inf)),
            ("callable", "returns strings", lambda z: np.full(np.shape(z), "a")),
            ("callable", "returns wrong shape", lambda z: np.ones(3)),
            ("callable", "returns complex", lambda z: np.asarray(z) + 1j),
            ("callable", "returns None", lambda z: None),
            ("callable", "diverges exp(z^2)", _divergent),
        ]
    else:
        import sympy as sp
        out += [
            ("callable", "returns nan", lambda z: sp.nan),
            ("callable", "returns zoo", lambda z: sp.zoo * z),
            ("callable", "returns a string", lambda z: "abc"),
            ("callable", "diverges exp(z^2)", lambda z: sp.exp(z ** 2)),
            ("callable", "returns complex", lambda z: z + sp.I),
        ]
    return out


# =============================================================================================
# specification of theory's public functions
# =============================================================================================

@dataclass
class Spec:
    module: str                 # "theory.linrep" ...
    func: str                   # attribute name (or "Class.method" via ``call``)
    valid: dict[str, Any]       # a valid call (keywords)
    bad: dict[str, list[Bad]]   # argument -> bad values
    call: Callable[..., Any] | None = None   # how to call (default: getattr(module, func)(**kw))
    label: str | None = None    # the FUNCTION of the message (default: func)
    alt: tuple[str, ...] = ()   # for shapes that are wrong only relative to another argument: the
                                # function may name any of these (it cannot know which one is wrong)
    alt_names: dict[str, tuple[str, ...]] | None = None   # arg -> names inside it a message may name
                                # instead (the key of an options / settings dict: 'eta_F' in options)
    alt_funcs: tuple[str, ...] = ()   # the labels under which those inner names are reported
                                # (``optimizer 'kfac'``, ``C3Settings``)


def theory_specs() -> list[Spec]:
    import sympy as sp

    from theory import symbolic as sym

    rng = np.random.default_rng(1)
    d, k, dy = 4, 2, 3
    Q = _rot(d)
    Sx = (Q * np.linspace(1.0, 10.0, d)) @ Q.T
    Sx = 0.5 * (Sx + Sx.T)
    Gs = np.eye(d)[:k]
    F = rng.standard_normal((dy, k))
    G = Gs + 0.1 * rng.standard_normal((k, d))
    Syx = rng.standard_normal((dy, d))
    Sz = np.array([[2.0, 0.3], [0.3, 1.0]])
    Syz = rng.standard_normal((dy, k))
    specs: list[Spec] = []
    L = "theory.linrep"

    def S(module, func, valid, bad, **kw):
        specs.append(Spec(module, func, valid, bad, **kw))

    rate_args = dict(F=F, Sigma_x=Sx, G_star=Gs)
    rate_bad = dict(F=bad_full_col_rank(F), Sigma_x=bad_spd(Sx), G_star=bad_full_row_rank(Gs))
    S(L, "least_squares_head", dict(Sigma_z=Sz, Sigma_yz=Syz), dict(Sigma_z=bad_spd(Sz), Sigma_yz=bad_matrix(Syz)))
    S(L, "ema_head", dict(F=F, Sigma_z=Sz, Sigma_yz=Syz, eta_F=0.5),
      dict(F=bad_matrix(F), Sigma_z=bad_spd(Sz), Sigma_yz=bad_matrix(Syz), eta_F=bad_real(0, 1, True)))
    S(L, "ema_representation", dict(G=G, F=F, Sigma_x=Sx, Sigma_yx=Syx, eta_G=0.5, lam_G=0.0),
      dict(G=bad_full_row_rank(G), F=bad_full_col_rank(F), Sigma_x=bad_spd(Sx), Sigma_yx=bad_matrix(Syx),
           eta_G=bad_real(0, 1, True), lam_G=bad_real(0)))
    S(L, "subspace_distance", dict(G=G, G_star=Gs, norm="op"),
      dict(G=bad_full_row_rank(G), G_star=bad_full_row_rank(Gs), norm=bad_choice(("op", "fro"))))
    tb = bad_full_row_rank(G) + [("singular", "G G_star^T singular", np.eye(d)[k:2 * k])]
    S(L, "tangent_matrix", dict(G=G, G_star=Gs), dict(G=tb, G_star=bad_full_row_rank(Gs)))
    S(L, "local_rate_factors", dict(rate_args, left="FtF", right="diag"),
      dict(rate_bad, left=bad_choice(("identity", "FtF")), right=bad_choice(("identity", "Sigma_x", "diag"))))
    S(L, "local_rate", dict(rate_args, eta=0.5, left="FtF", right="diag"),
      dict(rate_bad, eta=bad_real(0, None, True), left=bad_choice(("identity", "FtF")),
           right=bad_choice(("identity", "Sigma_x", "diag"))))
    S(L, "kfac_rate", dict(eta=0.5), dict(eta=bad_real(0, 2, True, True)))
    for fn in ("amgd_effective_condition", "amgd_optimal_eta", "amgd_stability_limit", "amgd_optimal_rate"):
        S(L, fn, dict(rate_args), dict(rate_bad))
    S(L, "kfac_whitened_step", dict(tangents=np.array([0.1, 0.5]), eta=0.5),
      dict(tangents=[b for b in bad_spectrum(np.array([0.1, 0.5]), nonneg_ok=True) if b[1] not in ("2-D", "empty")],
           eta=bad_real(0, 1, True)))
    S(L, "kfac_noise_floor", dict(F_star=F, Sigma_x=Sx, G_star=Gs, eta=0.5, noise_std=0.1, n=20),
      dict(F_star=bad_full_col_rank(F), Sigma_x=bad_spd(Sx), G_star=bad_full_row_rank(Gs),
           eta=bad_real(0, 1, True), noise_std=bad_real(0), n=bad_integer(d + 2)))

    R = "theory.rmt"
    t = np.array([0.5, 1.0, 1.5, 2.0])
    w = np.array([1.0, 2.0, 1.0, 1.0])
    S(R, "kappa", dict(eigenvalues=t, n=10, lam=0.1, weights=w),
      dict(eigenvalues=bad_spectrum(t), n=bad_real(0, None, True, valid=10.0), lam=bad_ridge(),
           weights=bad_weights(w)))
    S(R, "kappa_limit", dict(eigenvalues=t, psi=2.0, lam=0.1, weights=w),
      dict(eigenvalues=bad_spectrum(t), psi=bad_real(0, None, True, valid=2.0), lam=bad_ridge(),
           weights=bad_weights(w)))
    S(R, "kappa_isotropic", dict(psi=2.0, lam=0.1), dict(psi=bad_real(0, None, True, valid=2.0), lam=bad_ridge()))
    zbad = [("range", "positive real", 0.5), ("range", "zero", 0.0), ("range", "Im z < 0", -1.0 - 1.0j),
            ("range", "real z in complex dtype", complex(-1.0, 0.0)), ("nonfinite", "NaN", float("nan")),
            ("nonfinite", "-inf", -float("inf")), ("nonfinite", "complex nan", complex(np.nan, 1.0)),
            ("dtype", "bool", True), ("type", "None", None), ("type", "numeric string", "-1"),
            ("dtype", "object array", np.array([-1.0, None], dtype=object))]
    S(R, "companion_stieltjes", dict(eigenvalues=t, n=10, z=-0.5, weights=w, tol=1e-13, max_iter=1000),
      dict(eigenvalues=bad_spectrum(t), n=bad_real(0, None, True, valid=10.0), z=zbad, weights=bad_weights(w),
           tol=bad_real(0, 1, True, True, valid=1e-13), max_iter=bad_integer(1)))
    q = np.full(4, 0.1)
    S(R, "solve_kappa", dict(t=t, q=q, lam=np.array([0.1])),
      dict(t=bad_spectrum(t), q=bad_weights(q), lam=bad_ridge()))

    I = "theory.single_index"
    tt = np.array([0.5, 1.0, 1.5, 2.0])
    beta = np.array([1.0, 0.5, 0.0, -0.5])
    Sig = (Q * tt) @ Q.T
    Sig = 0.5 * (Sig + Sig.T)
    sig_bad = bad_spd(Sig, allow_1d=True) + [(c, "1-D " + lab, v) for c, lab, v in bad_spectrum(tt)
                                              if c == "range"]
    teach = bad_teacher()
    base = dict(Sigma=Sig, beta_star=beta, n=20, teacher="tanh", noise_std=0.1)
    base_bad = dict(Sigma=sig_bad, beta_star=bad_vector(beta), n=bad_real(1, None, valid=20.0), teacher=teach,
                    noise_std=bad_real(0))
    S(I, "teacher_coefficients", dict(teacher="tanh", s=1.0, noise_std=0.1, quadrature="auto", breakpoints=None),
      dict(teacher=teach, s=bad_real(0, None, True, valid=1.0), noise_std=bad_real(0),
           quadrature=bad_choice(("auto", "hermite", "split")),
           breakpoints=[("nonfinite", "NaN", (float("nan"),)), ("type", "str", "abc"), ("type", "float", 0.5),
                        ("dtype", "complex", (1j,)), ("dtype", "bool", (True,))]))
    S(I, "student_coefficients", dict(student="tanh", variance=1.0),
      dict(student=teach, variance=bad_real(0, None, True, valid=1.0)))
    for fn in ("sgd_spike", "sgd_alignment"):
        S(I, fn, dict(base, finite_n=False), dict(base_bad, finite_n=bad_flag()))
    for fn in ("kfac_spike", "kfac_alignment"):
        S(I, fn, dict(base, lam_G=0.1), dict(base_bad, lam_G=bad_ridge()))
    for fn in ("population_spike", "population_alignment"):
        S(I, fn, dict(base, lam_G=0.1, finite_n=False), dict(base_bad, lam_G=bad_ridge(), finite_n=bad_flag()))
    S(I, "sgd_alignment_cap", dict(Sigma=Sig, beta_star=beta), dict(Sigma=sig_bad, beta_star=bad_vector(beta)))
    S(I, "kfac_alignment_ridgeless", dict(base),
      dict(base_bad, n=bad_real(1, None, valid=20.0) + [("range", "n <= d", 4.0)]))
    S(I, "optimal_lam_G", dict(base, bounds=(1e-4, 1e2)),
      dict(base_bad, bounds=[("range", "reversed", (1e2, 1e-4)), ("range", "zero", (0.0, 1.0)),
                             ("nonfinite", "NaN", (np.nan, 1.0)), ("shape", "three entries", (1e-3, 1.0, 10.0)),
                             ("type", "None", None), ("type", "float", 1.0), ("dtype", "complex", (1j, 1.0))]))
    h = np.array([0.25, 0.25, 0.25, 0.25])
    law = dict(eigenvalues=tt, h=h, g=h, psi=2.0, teacher="tanh", noise_std=0.1)
    law_bad = dict(eigenvalues=bad_spectrum(tt), h=bad_weights(h), g=bad_weights(h),
                   psi=bad_real(0, None, True, valid=2.0), teacher=teach, noise_std=bad_real(0))
    for fn in ("sgd_alignment_law", "sgd_spike_law"):
        S(I, fn, dict(law), dict(law_bad))
    for fn in ("kfac_alignment_law", "kfac_spike_law"):
        S(I, fn, dict(law, lam_G=0.1), dict(law_bad, lam_G=bad_ridge()))
    S(I, "two_level_law", dict(eps=0.5), dict(eps=bad_real(0, 1, False, True)))
    S(I, "sgd_alignment_isotropic", dict(psi=2.0, c=0.6, Ey2=0.5),
      dict(psi=bad_real(0, None, True, valid=2.0), c=bad_real(valid=0.6), Ey2=bad_real(0, valid=0.5)))
    S(I, "kfac_alignment_isotropic", dict(psi=2.0, lam_G=0.1, c=0.6, sigma_r2=0.2),
      dict(psi=bad_real(0, None, True, valid=2.0), lam_G=bad_ridge(), c=bad_real(valid=0.6),
           sigma_r2=bad_real(0, valid=0.2)))

    Y = "theory.symbolic"
    expr = sym.isotropic_kappa()
    sbad_args = [("type", "None", None), ("range", "missing a symbol", ["psi"]), ("type", "float entry", [1.5, "psi"]),
                 ("type", "int", 3)]
    sbad_expr = [("type", "None", None), ("type", "numpy array", np.ones((2, 2))), ("type", "dict", {"a": 1}),
                 ("type", "float", 1.5), ("type", "str", "psi + 1")]
    S(Y, "to_numpy", dict(expr=expr, args=["psi", "lam_G"]), dict(expr=sbad_expr, args=sbad_args))
    S(Y, "to_mpmath", dict(expr=expr, args=["psi", "lam_G"], dps=30),
      dict(expr=sbad_expr, args=sbad_args, dps=bad_integer(15, 10000)))
    S(Y, "to_latex", dict(expr=expr), dict(expr=[("type", "None", None), ("type", "numpy array", np.ones(2)),
                                                ("type", "float", 1.5)]))
    S(Y, "simplify_matrix", dict(expr=sp.MatrixSymbol("A", 2, 2) - sp.MatrixSymbol("A", 2, 2)),
      dict(expr=sbad_expr + [("type", "scalar expression", sym.SYMBOLS.psi)]))
    ms = sp.MatrixSymbol
    Fm, Gm, Sxm, Syxm, Szm, Syzm = ms("F", 3, 2), ms("G", 2, 4), ms("Sigma_x", 4, 4), ms("Sigma_yx", 3, 4), \
        ms("Sigma_z", 2, 2), ms("Sigma_yz", 3, 2)

    def mbad(shape):
        return [("type", "numpy array", np.ones(shape)), ("type", "None", None), ("type", "float", 1.5),
                ("shape", "wrong shape", ms("W", shape[0] + 1, shape[1] + 1))]

    fz = dict(F=Fm, Sigma_z=Szm, Sigma_yz=Syzm)
    fz_bad = dict(F=mbad((3, 2)), Sigma_z=mbad((2, 2)), Sigma_yz=mbad((3, 2)))
    gx = dict(F=Fm, G=Gm, Sigma_x=Sxm, Sigma_yx=Syxm)
    gx_bad = dict(F=mbad((3, 2)), G=mbad((2, 4)), Sigma_x=mbad((4, 4)), Sigma_yx=mbad((3, 4)))
    fza, gxa = tuple(fz), tuple(gx)
    S(Y, "loss_gradient_F", dict(fz), dict(fz_bad), alt=fza)
    S(Y, "loss_gradient_G", dict(gx), dict(gx_bad), alt=gxa)
    eb = [("type", "None", None), ("type", "str", "abc"), ("type", "numpy array", np.ones(2)),
          ("nonfinite", "nan", float("nan")), ("nonfinite", "sympy oo", sp.oo), ("dtype", "bool", True)]
    S(Y, "kfac_step_F", dict(fz), dict(fz_bad, eta_F=eb), alt=fza)
    S(Y, "kfac_step_G", dict(gx), dict(gx_bad, eta_G=eb, lam_G=eb), alt=gxa)
    S(Y, "ema_head_form", dict(fz), dict(fz_bad, eta_F=eb), alt=fza)
    S(Y, "ema_representation_form", dict(gx), dict(gx_bad, eta_G=eb, lam_G=eb), alt=gxa)
    dims = dict(d_x=3, d_y=1, k=1)
    dims_bad = dict(d_x=bad_integer(1, 6), d_y=bad_integer(1, 12), k=bad_integer(1, 3))
    S(Y, "lemma_3_1", dims, dims_bad)
    S(Y, "lemma_3_1_residuals", dims, dims_bad)
    S(Y, "local_rate_derivation", dict(left="FtF", right="Sigma_x", k=1, d_x=3, d_y=1),
      dict(left=bad_choice(("identity", "FtF")), right=bad_choice(("identity", "Sigma_x", "diag")),
           k=bad_integer(1, 2), d_x=bad_integer(2, 10),
           d_y=[b for b in bad_integer(1, 6) if b[2] is not None]))
    mbad_method = bad_choice(tuple(sym.METHODS)) + [("range", "bad pair", ("FtF", "bogus")),
                                                     ("shape", "triple", ("FtF", "diag", "x"))]
    S(Y, "contraction_factor", dict(method="kfac"), dict(method=mbad_method))
    S(Y, "optimal_contraction_factor", dict(method="kfac"), dict(method=mbad_method))
    sym_teach = bad_teacher(numeric=False)
    sbad_s = [("range", "zero", 0.0), ("range", "negative", -1.0), ("nonfinite", "NaN", float("nan")),
              ("nonfinite", "inf", float("inf")), ("type", "str", "abc"), ("type", "None", None),
              ("dtype", "bool", True), ("dtype", "complex", 1 + 1j), ("range", "symbol without sign", sp.Symbol("x"))]
    sbad_noise = [("range", "negative", -0.1), ("nonfinite", "NaN", float("nan")), ("nonfinite", "inf", float("inf")),
                  ("type", "str", "abc"), ("type", "None", None), ("dtype", "bool", True),
                  ("dtype", "complex", 1 + 1j)]
    S(Y, "teacher_coefficients", dict(teacher="relu", s=1.0, noise_std=0.1, dps=30),
      dict(teacher=sym_teach, s=sbad_s, noise_std=sbad_noise, dps=bad_integer(15, 10000)))
    S(Y, "gaussian_expectation", dict(g="relu", s=1.0, dps=30, method="auto"),
      dict(g=sym_teach, s=sbad_s, dps=bad_integer(15, 10000), method=bad_choice(("auto", "exact", "quad"))))
    S(Y, "isotropic_kfac_alignment", dict(keep_kappa=False), dict(keep_kappa=bad_flag()))
    mp_real = [("range", "negative", -0.1), ("nonfinite", "NaN", float("nan")), ("nonfinite", "inf", float("inf")),
               ("type", "str", "abc"), ("type", "None", None), ("dtype", "bool", True), ("dtype", "complex", 1 + 1j),
               ("shape", "array", np.array([0.1, 0.2]))]
    mp_pos = mp_real + [("range", "zero", 0.0)]
    S(Y, "kappa_mp", dict(eigenvalues=t, n=10, lam=0.1, dps=30, weights=w),
      dict(eigenvalues=bad_spectrum(t), n=mp_pos, lam=mp_real, dps=bad_integer(15, 10000), weights=bad_weights(w)))
    S(Y, "kfac_alignment_mp", dict(eigenvalues=tt, beta_star=beta, n=20, lam_G=0.1, teacher="relu", noise_std=0.1,
                                   dps=30),
      dict(eigenvalues=bad_spectrum(tt), beta_star=bad_vector(beta), n=mp_pos, lam_G=mp_real, teacher=sym_teach,
           noise_std=sbad_noise, dps=bad_integer(15, 10000)))
    S(Y, "sgd_alignment_mp", dict(eigenvalues=tt, beta_star=beta, n=20, teacher="relu", noise_std=0.1, dps=30),
      dict(eigenvalues=bad_spectrum(tt), beta_star=bad_vector(beta), n=mp_pos, teacher=sym_teach,
           noise_std=sbad_noise, dps=bad_integer(15, 10000)))
    der = sym.local_rate_derivation("FtF", "diag", k=1, d_x=2, d_y=1)
    S(Y, "spectral_radius", dict(Sigma_x=np.array([[2.0, 0.3], [0.3, 1.0]]), F_star=np.array([[1.5]]), eta=0.5),
      dict(Sigma_x=bad_spd(np.array([[2.0, 0.3], [0.3, 1.0]])), F_star=bad_matrix(np.array([[1.5]])),
           eta=bad_real(0, None, True)),
      call=der.spectral_radius, label="LocalRateDerivation.spectral_radius")
    return specs


# =============================================================================================
# specification of simulate's public functions and the optimizer factories
# =============================================================================================

#: a bad "value" that removes the argument from the valid call (a missing required option)
MISSING = object()


def bad_size(low: int, *, huge: bool = True) -> list[Bad]:
    """Bad integer sizes: the integer classes, and sizes whose arrays cannot fit in memory."""
    out = bad_integer(low)
    if huge:
        out += [("size", "2**62 (memory)", 2**62), ("size", "2**70 (numpy's dimension limit)", 2**70)]
    return out


def optional(bads: list[Bad]) -> list[Bad]:
    """The bad values of an argument for which ``None`` is legal (a default: drawn, exact, population)."""
    return [b for b in bads if b[2] is not None]


def bad_rng() -> list[Bad]:
    return [("type", "None", None), ("type", "int seed", 0), ("type", "RandomState", np.random.RandomState(0)),
            ("type", "str", "abc"), ("type", "SeedSequence", np.random.SeedSequence(0))]


def bad_object(what: str = "object") -> list[Bad]:
    return [("type", "None", None), ("type", "dict", {"a": 1}), ("type", "str", "abc"), ("type", "float", 1.5)]


def bad_options() -> list[Bad]:
    return [("type", "list", [1, 2]), ("type", "str", "abc"), ("type", "non-string key", {1: 2}),
            ("range", "unknown option", {"bogus": 1.0}), ("range", "option out of range", {"lam_G": -1.0}),
            ("nonfinite", "NaN option", {"lam_G": float("nan")}), ("dtype", "complex option", {"lam_G": 1j})]


class _NoStep:
    name = "nostep"

    def init(self, F, G):
        return None


class _RaisingStep:
    name = "raising"

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        return 1.0 / 0


class _BadReturn:
    name = "badreturn"

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        return None


def bad_algorithm(*, objects: bool = True) -> list[Bad]:
    out: list[Bad] = [("range", "unknown name", "bogus"), ("type", "None", None), ("type", "int", 1),
                      ("type", "object without step", _NoStep())]
    if objects:
        out += [("callable", "step raises ZeroDivisionError", _RaisingStep()),
                ("callable", "step returns None", _BadReturn())]
    return out


def _seed_bad() -> list[Bad]:
    return [("integer", "negative", -1), ("integer", "float", 1.5), ("type", "None", None), ("type", "str", "0"),
            ("integer", "bool", True), ("dtype", "complex", 1j), ("type", "empty list", []),
            ("type", "list of ints", [1, 2])]


def _raise_pair():
    def f(h):
        raise ZeroDivisionError("boom")

    return (f, f)


def simulate_specs() -> list[Spec]:
    from simulate import data as sd
    from simulate import jacobian as sj
    from simulate import linrep as sl
    from simulate import matrix_optimizers as mo
    from simulate import optimizers as so
    from simulate import single_index as ss
    from simulate import trials as st

    rng = np.random.default_rng(3)
    specs: list[Spec] = []

    def S(module, func, valid, bad, **kw):
        specs.append(Spec(module, func, valid, bad, **kw))

    D = "simulate.data"
    p = sd.linrep_problem(6, 3, 2, kappa_x=10.0, kappa_F=2.0, noise_std=0.1, rng=rng)
    Sx, Sq = p.Sigma_x, p.Sigma_x_sqrt
    d = 4
    Sig4 = sd.conditioned_covariance(d, kappa=4.0, rng=rng)
    S(D, "haar_orthogonal", dict(d=4, rng=rng), dict(d=bad_size(1), rng=bad_rng()))
    S(D, "geometric_spectrum", dict(d=4, kappa=10.0, mean_one=True),
      dict(d=bad_size(1), kappa=bad_real(1, valid=10.0), mean_one=bad_flag()))
    S(D, "two_level_spectrum", dict(d=4, eps=0.5), dict(d=bad_size(1), eps=bad_real(0, 1, False, True)))
    S(D, "conditioned_covariance", dict(d=4, kappa=10.0, rng=rng, rotate=True),
      dict(d=bad_size(1), kappa=bad_real(1, valid=10.0), rng=bad_rng(), rotate=bad_flag()))
    S(D, "anisotropic_covariance", dict(d=4, eps=0.5, rng=rng, rotate=True),
      dict(d=bad_size(1), eps=bad_real(0, 1, False, True), rng=bad_rng(), rotate=bad_flag()))
    S(D, "orthonormal_rows", dict(k=2, d=4, rng=rng),
      dict(k=bad_size(1) + [("range", "k > d", 5)], d=bad_size(1), rng=bad_rng()))
    S(D, "conditioned_head", dict(d_y=3, k=2, kappa=2.0, rng=rng),
      dict(d_y=bad_size(1) + [("range", "d_y < k", 1)], k=bad_size(1), kappa=bad_real(1, valid=2.0), rng=bad_rng()))
    S(D, "symmetric_sqrt", dict(Sigma=Sx), dict(Sigma=bad_spd(Sx)))
    S(D, "standard_inputs", dict(n=5, d=4, law="gaussian", rng=rng),
      dict(n=bad_size(1), d=bad_size(1), law=bad_choice(sd.LAWS), rng=bad_rng()))
    S(D, "sample_inputs", dict(n=5, Sigma_sqrt=Sq, law="gaussian", rng=rng),
      dict(n=bad_size(1), Sigma_sqrt=bad_spd(Sq), law=bad_choice(sd.LAWS), rng=bad_rng()))
    F32 = np.array([[1.0, 0.0], [0.0, 0.5], [0.2, 0.1]])
    S(D, "linrep_problem", dict(d_x=6, d_y=3, k=2, kappa_x=10.0, kappa_F=2.0, noise_std=0.1, rng=rng,
                                law="rademacher", rotate=True, F_star=F32),
      dict(d_x=bad_size(1), d_y=bad_size(1), k=bad_size(1) + [("range", "k > d_x", 7)],
           kappa_x=bad_real(1, valid=10.0), kappa_F=bad_real(1, valid=2.0), noise_std=bad_real(0), rng=bad_rng(),
           law=bad_choice(sd.LAWS), rotate=bad_flag(), F_star=optional(bad_full_col_rank(F32))))
    pb = dict(problem=p, n=5, rng=rng)
    pbad = dict(problem=bad_object(), n=bad_size(1), rng=bad_rng())
    S(D, "draw_batch", dict(pb), dict(pbad))
    S(D, "draw_batch_fast", dict(pb), dict(pbad))
    S(D, "draw_batch_moments", dict(pb, means=True), dict(pbad, means=bad_flag()))
    S(D, "random_bits", dict(nbits=100, rng=rng), dict(nbits=bad_size(1), rng=bad_rng()))
    S(D, "rademacher_signs", dict(n=5, d=4, rng=rng, dtype=np.float64),
      dict(n=bad_size(1), d=bad_size(1), rng=bad_rng(),
           dtype=[("type", "int8", np.int8), ("type", "str", "abc"), ("type", "None", None),
                  ("type", "complex", np.complex128)]))
    S(D, "BatchSampler", dict(problem=p, n=5, means=True),
      dict(problem=bad_object(), n=bad_size(1), means=bad_flag()), call=sd.BatchSampler)
    S(D, "BatchSampler.draw", dict(rng=rng), dict(rng=bad_rng()), call=sd.BatchSampler(p, 5).draw)
    lp = dict(G_star=p.G_star, F_star=p.F_star, Sigma_x=p.Sigma_x, Sigma_x_sqrt=p.Sigma_x_sqrt, noise_std=0.1,
              law="gaussian", F_test=p.F_test, Sigma_test=p.Sigma_test)
    nonorth = p.G_star.copy()
    nonorth[0] *= 2.0
    S(D, "LinRepProblem", lp,
      dict(G_star=bad_full_row_rank(p.G_star) + [("range", "rows not orthonormal", nonorth)],
           F_star=bad_full_col_rank(p.F_star), Sigma_x=bad_spd(p.Sigma_x), Sigma_x_sqrt=bad_spd(p.Sigma_x_sqrt),
           noise_std=bad_real(0), law=bad_choice(sd.LAWS), F_test=bad_matrix(p.F_test),
           Sigma_test=bad_spd(p.Sigma_test)), call=sd.LinRepProblem)

    T = "simulate.trials"
    S(T, "spawn_seeds", dict(seed=0, n=3), dict(seed=_seed_bad(), n=bad_size(0)))
    S(T, "spawn_generators", dict(seed=0, n=3), dict(seed=_seed_bad(), n=bad_size(0)))

    L = "simulate.linrep"
    F0, G0 = sl.initial_point(p, rng=np.random.default_rng(0))
    S(L, "principal_angles", dict(A=G0, B=p.G_star),
      dict(A=bad_full_row_rank(G0), B=bad_full_row_rank(p.G_star)), alt=("A", "B"))
    S(L, "principal_tangents", dict(A=G0, B=p.G_star),
      dict(A=bad_full_row_rank(G0), B=bad_full_row_rank(p.G_star)), alt=("A", "B"))
    S(L, "transfer_loss", dict(G=G0, problem=p, Sigma_test_sqrt=np.eye(6)),
      dict(G=bad_full_row_rank(G0), problem=bad_object(), Sigma_test_sqrt=optional(bad_spd(np.eye(6)))))
    S(L, "initial_point", dict(problem=p, rng=rng), dict(problem=bad_object(), rng=bad_rng()))
    pop = so.Batch.population(p.Sigma_x, p.M, 0.1)
    bad_batch = bad_object() + [("shape", "batch of another d_x", so.Batch.population(np.eye(3), np.ones((3, 3)), 0.1))]
    S(L, "least_squares_head", dict(G=G0, batch=pop), dict(G=bad_full_row_rank(G0), batch=bad_batch), alt=("G", "batch"))
    run_valid = dict(problem=p, algorithm="kfac", steps=3, lr=0.1, batch=None, rng=rng, options={"lam_G": 0.0},
                     F0=F0, G0=G0, init_head=None, on_batch=None)
    S(L, "run", run_valid,
      dict(problem=bad_object(), algorithm=bad_algorithm(), steps=bad_size(0), lr=bad_real(0, None, True),
           batch=optional(bad_size(1)) + [("range", "batch < d_x for kfac", 3)], rng=bad_rng(), options=bad_options(),
           F0=optional(bad_matrix(F0)), G0=optional(bad_full_row_rank(G0)),
           init_head=optional(bad_choice(("least_squares",))),
           on_batch=optional(bad_object()) + [("type", "a class", dict),
                                              ("callable", "raises ZeroDivisionError", _raise_zde_batch)]),
      alt_names={"options": ("bogus", "lam_G")}, alt_funcs=("optimizer 'kfac'",))
    S(L, "transfer_data", dict(problem=p, n_t=5, rng=rng, n_eval=5, noise_std=0.1),
      dict(problem=bad_object(), n_t=bad_size(1), rng=bad_rng(), n_eval=optional(bad_size(1)),
           noise_std=optional(bad_real(0))))
    td = sl.transfer_data(p, n_t=5, rng=rng, n_eval=5)
    S(L, "finite_transfer_loss", dict(G=G0, problem=p, data=td, Sigma_test_sqrt=np.eye(6)),
      dict(G=bad_full_row_rank(G0), problem=bad_object(),
           data=bad_object() + [("shape", "data of another task", sl.transfer_data(
               sd.linrep_problem(4, 3, 2, kappa_x=2.0, kappa_F=2.0, noise_std=0.1, rng=rng), n_t=5, rng=rng))],
           Sigma_test_sqrt=optional(bad_spd(np.eye(6)))))
    S(L, "OptimizerSpec", dict(label="a", name="kfac", lr=0.1, options=(("lam_G", 0.1),)),
      dict(label=[("type", "None", None), ("range", "empty", ""), ("type", "int", 1)],
           name=[("type", "None", None), ("type", "int", 1), ("range", "unknown", "bogus")],
           lr=bad_real(0, None, True),
           options=[("type", "None", None), ("type", "str", "abc"), ("type", "list of non-pairs", [1, 2]),
                    ("type", "non-string key", ((1, 2),)), ("range", "unknown option", (("bogus", 1.0),)),
                    ("range", "option out of range", (("lam_G", -1.0),))]),
      call=sl.OptimizerSpec, alt_names={"options": ("bogus", "lam_G")}, alt_funcs=("optimizer 'kfac'",))
    specs_ok = [sl.OptimizerSpec("a", "kfac", 0.1), sl.OptimizerSpec("b", "sgd", 0.1)]
    cr = sl.run_common(p, specs_ok, steps=2, batch=None, rng=rng)
    S(L, "CommonRun.index", dict(label="a"),
      dict(label=[("range", "unknown", "zz"), ("type", "None", None), ("type", "int", 1)]), call=cr.index)
    S(L, "run_common", dict(problem=p, specs=specs_ok, steps=3, batch=None, rng=rng, record_every=1, transfer_samples=5,
                            transfer_eval=None, blowup=1e6, F0=F0, G0=G0, stack=True, check_every=1),
      dict(problem=bad_object(), specs=[("type", "None", None), ("type", "empty", []), ("type", "list of str", ["kfac"]),
                                        ("range", "duplicate labels", [specs_ok[0], specs_ok[0]])],
           steps=bad_size(0), batch=optional(bad_size(1)), rng=bad_rng(), record_every=bad_integer(1),
           transfer_samples=optional(bad_size(1)), transfer_eval=optional(bad_size(1)),
           blowup=bad_real(1, None, True, valid=1e6), F0=optional(bad_matrix(F0)),
           G0=optional(bad_full_row_rank(G0)), stack=bad_flag(), check_every=bad_integer(1)))

    I = "simulate.single_index"
    tt = np.array([0.5, 1.0, 1.5, 2.0])
    beta = np.array([1.0, 0.5, 0.0, -0.5])
    Q = _rot(4)
    Sig = (Q * tt) @ Q.T
    Sig = 0.5 * (Sig + Sig.T)
    sig_bad = bad_spd(Sig, allow_1d=True) + [(c, "1-D " + lab, v) for c, lab, v in bad_spectrum(tt) if c == "range"]
    students = [("range", "unknown name", "bogus"), ("type", "None", None), ("type", "one callable", np.tanh),
                ("type", "triple", (np.tanh, np.tanh, np.tanh)), ("callable", "pair that raises", _raise_pair()),
                ("callable", "pair returning NaN", (lambda h: np.full(np.shape(h), np.nan), lambda h: np.ones(np.shape(h))))]
    lam_bad = bad_ridge() + [("shape", "2-D", np.full((2, 2), 0.1)), ("shape", "empty", np.zeros(0))]
    one = dict(Sigma=Sig, beta_star=beta, n=8, N=4, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=2, seed=0,
               student="tanh", blas_threads=None)
    one_bad = dict(Sigma=sig_bad, beta_star=bad_vector(beta), n=bad_size(1), N=bad_size(1), lam_G=lam_bad,
                   teacher=bad_teacher(), noise_std=bad_real(0),
                   trials=bad_size(1) + [("size", "2**40 trials", 2**40)], seed=_seed_bad(), student=students,
                   blas_threads=optional(bad_integer(1)))
    S(I, "one_step", dict(one, network=True, population=True, method="auto", lanczos_tol=1e-10, max_steps=60,
                          powers=(0.5,), muon=False),
      dict(one_bad, network=bad_flag(), population=bad_flag(), method=bad_choice(("auto", "eigh", "solve")),
           lanczos_tol=bad_real(0, 1, True, True, valid=1e-10), max_steps=bad_integer(1),
           powers=[("range", "above 1", (1.5,)), ("range", "negative", (-0.5,)), ("nonfinite", "NaN", (np.nan,)),
                   ("dtype", "complex", (0.5j,)), ("type", "str", "abc"), ("dtype", "bool", True),
                   ("shape", "2-D", np.full((2, 2), 0.5))],
           muon=bad_flag()))
    more = np.array([[0.5, 1.0], [1.0, 0.0], [0.0, -1.0], [1.0, 0.5]])
    S(I, "one_step", dict(one, network=True, population=True, method="auto", more_teachers=more, network_teachers=2),
      dict(more_teachers=optional(bad_matrix(more, shape_fixed=False)) + [
          ("shape", "rows other than d", np.ones((3, 2))), ("range", "zero column", np.column_stack([more[:, 0], 0 * more[:, 0]])),
          ("shape", "no column", np.zeros((4, 0)))],
           network_teachers=optional(bad_integer(1, 3))))
    S(I, "one_step_test_error", dict(one, n_head=8, n_test=8, lam_F=0.1, spike_norm=5.0),
      dict(one_bad, n_head=bad_size(1), n_test=bad_size(1), lam_F=bad_real(0, None, True),
           spike_norm=bad_real(0, None, True, valid=5.0)))
    U = np.random.default_rng(1).standard_normal((5, 4))
    S(I, "orthogonalised_direction", dict(update=U, steps=5, exact_polar=False, reference=np.ones(4)),
      dict(update=bad_matrix(U, shape_fixed=False) + [("range", "zero", np.zeros((5, 4)))],
           steps=bad_integer(1, 100), exact_polar=bad_flag(), reference=optional(bad_vector(np.ones(4)))))
    A = np.diag([3.0, 2.0, 1.0])
    S(I, "top_singular_pairs", dict(apply=lambda Qb: A @ Qb, start=np.ones((3, 2)), tol=1e-10, max_steps=10),
      dict(apply=[("type", "None", None), ("type", "float", 1.5),
                  ("callable", "raises", lambda Qb: 1.0 / 0),
                  ("callable", "returns NaN", lambda Qb: np.full(np.shape(Qb), np.nan)),
                  ("callable", "returns wrong shape", lambda Qb: np.ones(2)),
                  ("callable", "returns complex", lambda Qb: Qb + 1j)],
           start=bad_matrix(np.ones((3, 2)), shape_fixed=False) + [("range", "zero column", np.zeros((3, 2)))],
           tol=bad_real(0, 1, True, True, valid=1e-10), max_steps=bad_integer(1)))
    S(I, "trial_generator", dict(seed_seq=np.random.SeedSequence(0)),
      dict(seed_seq=[("type", "None", None), ("type", "str", "abc"), ("type", "float", 1.5), ("integer", "negative", -1),
                     ("type", "Generator", np.random.default_rng(0))]))
    res = ss.one_step(tt, beta, n=8, N=4, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=2, seed=0)
    S(I, "concatenate", dict(parts=[res, res]),
      dict(parts=[("type", "None", None), ("type", "empty", []), ("type", "list of ints", [1, 2]),
                  ("type", "mixed classes", [res, sl.OptimizerSpec("a", "kfac", 0.1)])]))

    J = "simulate.jacobian"
    Z = np.full((2, 4), 0.01)
    S(J, "complement", dict(G_star=p.G_star), dict(G_star=bad_full_row_rank(p.G_star)))
    S(J, "tangent_start", dict(problem=p, Z=Z), dict(problem=bad_object(), Z=bad_matrix(Z)))
    jalg = bad_algorithm(objects=False) + [("range", "rule with an EMA head", "kfac")]
    S(J, "tangent_step", dict(problem=p, algorithm="kfac_ls", Z=Z, lr=0.5, options=None),
      dict(problem=bad_object(), algorithm=jalg, Z=bad_matrix(Z), lr=bad_real(0, None, True), options=bad_options()),
      alt_names={"options": ("bogus", "lam_G")}, alt_funcs=("optimizer 'kfac_ls'",))
    S(J, "step_jacobian", dict(problem=p, algorithm="kfac_ls", lr=0.5, h=1e-3, options=None, gauge_probes=2, rng=None),
      dict(problem=bad_object(), algorithm=jalg, lr=bad_real(0, None, True), h=bad_real(0, 0.1, True, valid=1e-3),
           options=bad_options(), gauge_probes=bad_integer(1, 1000),
           rng=[b for b in bad_rng() if b[2] is not None]),
      alt_names={"options": ("bogus", "lam_G")}, alt_funcs=("optimizer 'kfac_ls'",))
    S(J, "quadratic_term", dict(problem=p, algorithm="kfac_ls", Z=Z, lr=0.5, h=1e-3, options=None),
      dict(problem=bad_object(), algorithm=jalg, Z=bad_matrix(Z), lr=bad_real(0, None, True),
           h=bad_real(0, 0.1, True, valid=1e-3), options=bad_options()),
      alt_names={"options": ("bogus", "lam_G")}, alt_funcs=("optimizer 'kfac_ls'",))
    jac = sj.step_jacobian(p, "kfac_ls", lr=0.5)
    S(J, "StepJacobian.mode", dict(which=0), dict(which=bad_integer(0, jac.n - 1)), call=jac.mode)

    O = "simulate.optimizers"
    X = np.random.default_rng(2).standard_normal((10, 6))
    Y = np.random.default_rng(3).standard_normal((10, 3))
    S(O, "Batch.from_samples", dict(X=X, Y=Y),
      dict(X=bad_matrix(X, shape_fixed=False),
           Y=bad_matrix(Y, shape_fixed=False) + [("shape", "another number of rows", Y[:-1])]),
      call=so.Batch.from_samples, alt=("X", "Y"))
    mom = sd.draw_batch_moments(p, 8, rng=rng)
    S(O, "Batch.from_moments", dict(m=mom), dict(m=bad_object()), call=so.Batch.from_moments)
    S(O, "Batch.population", dict(Sigma_x=p.Sigma_x, M=p.M, noise_std=0.1),
      dict(Sigma_x=bad_spd(p.Sigma_x), M=bad_matrix(p.M), noise_std=bad_real(0)), call=so.Batch.population)
    fgb = dict(F=F0, G=G0, batch=pop)
    fgb_bad = dict(F=bad_matrix(F0), G=bad_matrix(G0), batch=bad_batch)
    for fn in ("batch_loss", "grad_G", "grad_F", "gauss_newton_blocks", "exact_hessian"):
        S(O, fn, dict(fgb), dict(fgb_bad), alt=("F", "G", "batch"))
    F3, G3 = np.stack([F0, F0]), np.stack([G0, G0])
    for fn in ("grads_stacked", "batch_loss_stacked"):
        S(O, fn, dict(F=F3, G=G3, batch=pop),
          dict(F=[b for b in bad_matrix(F3[0]) if b[0] != "shape"] + [("shape", "2-D", F0)],
               G=[b for b in bad_matrix(G3[0]) if b[0] != "shape"] + [("shape", "2-D", G0)], batch=bad_batch),
          alt=("F", "G", "batch"))
    S(O, "kfac_head_step", dict(F=F0, G=G0, X=X, Y=Y, eta_F=0.5, activation="tanh"),
      dict(F=bad_matrix(F0), G=bad_matrix(G0), X=bad_matrix(X), Y=bad_matrix(Y), eta_F=bad_real(0, 1, True),
           activation=bad_choice(("identity", "tanh"))), alt=("F", "G", "X", "Y"))
    S(O, "stacked", dict(opts=[so.make("kfac", lr=0.1), so.make("kfac", lr=0.2)]),
      dict(opts=[("type", "None", None), ("type", "empty", []), ("type", "list of str", ["kfac"]),
                 ("type", "int", 3)]))

    def _factory_none(**o):
        return None

    def _factory_raise(**o):
        raise ZeroDivisionError("boom")

    S(O, "register", dict(name="tally_rule", factory=lambda **o: so.SGD(**o), replace=True),
      dict(name=[("type", "None", None), ("range", "empty", ""), ("type", "int", 1),
                 ],
           factory=[("type", "None", None), ("type", "str", "sgd"), ("callable", "returns None", _factory_none),
                    ("callable", "raises", _factory_raise), ("callable", "returns an object without step",
                                                              lambda **o: _NoStep())],
           replace=bad_flag()),
      call=so.register)
    S(O, "make", dict(name="kfac", lr=0.1), dict(name=[("range", "unknown", "bogus"), ("type", "None", None),
                                                       ("type", "int", 1)]),
      call=lambda name, **o: so.make(name, **o))

    M = "simulate.matrix_optimizers"
    S(M, "inverse_root", dict(S=Sx, ridge=1e-3, p=4),
      dict(S=[b for b in bad_spd(Sx) if b[0] != "singular"], ridge=bad_real(0, None, True, valid=1e-3),
           p=bad_real(0, None, True, valid=4.0)))
    S(M, "newton_schulz", dict(u=U, steps=5), dict(u=bad_matrix(U, shape_fixed=False), steps=bad_integer(0, 100)))
    S(M, "polar_factor", dict(u=U), dict(u=bad_matrix(U, shape_fixed=False)))
    return specs


#: the options of each registered optimizer (valid values) and whether eta_F is free
_FACTORY_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {},
    "amgd": {"lam_G": 0.0, "head_right": "Sigma_z"},
    "kfac": {"eta_F": 0.5, "lam_G": 0.0, "head_right": "Sigma_z"},
    "kfac_ls": {"lam_G": 0.0, "head_right": "Sigma_z"},
    "kfac_left": {"lam_G": 0.0, "head_right": "Sigma_z"},
    "kfac_right": {"lam_G": 0.0, "head_right": "Sigma_z"},
    "kfac_diag": {"lam_G": 0.0, "head_right": "Sigma_z"},
    "amgd_diag": {"lam_G": 0.0, "head_right": "Sigma_z"},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "amgd_bn": {"momentum": 0.1, "eps": 1e-5, "affine": True},
    "ngd": {"damping": 1e-3, "solver": "structured"},
    "newton": {"damping": 1e-3, "solver": "structured"},
    "shampoo": {"eps": 1e-4, "beta2": 0.9},
    "muon": {"momentum": 0.95, "nesterov": True, "ns_steps": 5, "exact_polar": False},
    "soap": {"betas": (0.95, 0.95), "eps": 1e-8, "shampoo_beta": 0.9, "precondition_frequency": 10,
             "refresh": "eigh"},
    "adagrad": {"eps": 1e-10},
}

_OPTION_BAD: dict[str, Callable[[], list[Bad]]] = {
    "eta_F": lambda: bad_real(0, 1, True),
    "lam_G": lambda: bad_real(0),
    "head_right": lambda: bad_choice(("Sigma_z", "identity")),
    "beta1": lambda: bad_real(0, 1, False, True),
    "beta2": lambda: bad_real(0, 1, False, True),
    "eps": lambda: bad_real(0, None, True, valid=1e-8),
    "momentum": lambda: bad_real(0, 1, False, True),
    "affine": bad_flag,
    "damping": lambda: bad_real(0, valid=1e-3),
    "solver": lambda: bad_choice(("structured", "dense")),
    "nesterov": bad_flag,
    "ns_steps": lambda: bad_integer(1, 100),
    "exact_polar": bad_flag,
    "betas": lambda: [("shape", "one entry", (0.9,)), ("range", "beta above 1", (0.9, 1.5)), ("type", "None", None),
                      ("nonfinite", "NaN", (0.9, float("nan"))), ("dtype", "complex", (0.9, 0.5j)),
                      ("type", "str", "abc")],
    "shampoo_beta": lambda: bad_real(0, 1, False, True),
    "precondition_frequency": lambda: bad_integer(1),
    "refresh": lambda: bad_choice(("eigh", "power_qr")),
}

#: options whose bad values differ by optimizer (``None`` legal: eta_F = lr, no EMA; amgd_bn's momentum in (0, 1])
_OPTION_BAD_BY: dict[tuple[str, str], Callable[[], list[Bad]]] = {
    ("kfac", "eta_F"): lambda: optional(bad_real(0, 1, True)),
    ("shampoo", "beta2"): lambda: optional(bad_real(0, 1, True, True)),
    ("soap", "shampoo_beta"): lambda: optional(bad_real(0, 1, False, True)),
    ("amgd_bn", "momentum"): lambda: bad_real(0, 1, True, False),
}

#: options fixed by the factory (a value is refused)
_FACTORY_FIXED: dict[str, dict[str, Any]] = {
    "amgd": {"eta_F": 0.5, "left": "FtF", "right": "Sigma_x", "name": "x"},
    "kfac": {"left": "identity", "right": "diag", "name": "x"},
    "kfac_ls": {"eta_F": 0.5, "right": "diag"},
    "kfac_left": {"eta_F": 0.5, "left": "identity"},
    "kfac_right": {"eta_F": 0.5, "right": "diag"},
    "kfac_diag": {"eta_F": 0.5},
    "amgd_diag": {"eta_F": 0.5},
    "ngd": {"curvature": "hessian"},
    "newton": {"curvature": "gauss_newton"},
    "sgd": {"name": "x"},
    "muon": {"name": "x"},
}


def factory_specs() -> list[Spec]:
    """One spec per registered optimizer: every option, a missing lr, an unknown option, a fixed one."""
    from simulate import optimizers as so

    specs = []
    for name in sorted(_FACTORY_OPTIONS):
        valid = {"lr": 0.1, **_FACTORY_OPTIONS[name]}
        bad: dict[str, list[Bad]] = {"lr": bad_real(0, None, True) + [("missing", "lr left out", MISSING)]}
        for opt in _FACTORY_OPTIONS[name]:
            bad[opt] = _OPTION_BAD_BY.get((name, opt), _OPTION_BAD[opt])()
        bad["bogus_option"] = [("unknown", "unknown option", 1.0)]
        for opt, val in _FACTORY_FIXED.get(name, {}).items():
            bad[opt] = [("fixed", f"fixed option {opt}", val)]
        specs.append(Spec("optimizer factories", name, valid, bad, call=(lambda n: lambda **o: so.make(n, **o))(name),
                          label=f"optimizer '{name}'"))
    return specs


# =============================================================================================
# running
# =============================================================================================

class _Timeout(BaseException):
    """Raised by the alarm: a BaseException, so that no ``except Exception`` of the code under test
    (a wrapper of user callables) can swallow it."""


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout


_FORMAT = re.compile(r"^(?P<func>[\w.]+|optimizer '[\w.]+'): argument '(?P<name>[^']+)' must (?P<exp>.+); got (?P<got>.+)\.$", re.S)


def _finite(x) -> bool:
    """Whether every number in a result is finite (dataclasses, tuples, arrays, mpmath, sympy)."""
    try:
        import dataclasses
        if dataclasses.is_dataclass(x):
            return all(_finite(getattr(x, f.name)) for f in dataclasses.fields(x)
                       if isinstance(getattr(x, f.name), (float, int, np.ndarray, np.floating)))
        if isinstance(x, (tuple, list)):
            return all(_finite(v) for v in x)
        if isinstance(x, (float, np.floating, np.ndarray, int)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return bool(np.all(np.isfinite(np.asarray(x, dtype=float))))
        import mpmath
        if isinstance(x, mpmath.mpf):
            return bool(mpmath.isfinite(x))
    except (TypeError, ValueError):
        return True
    return True


def classify_isolated(spec: Spec, arg: str, value, timeout: float, klass: str = "") -> tuple[str, str]:
    """:func:`classify` in a forked child: a call stuck in C code that never looks at signals (LAPACK's SVD
    of a matrix with NaN can loop forever) is killed after ``timeout`` and counted ``hung``, and nothing
    the call does (a registration) outlives it."""
    import json
    import select

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            res = classify(spec, arg, value, timeout, klass)
        except BaseException as exc:  # noqa: BLE001
            res = (type(exc).__name__, str(exc)[:200])
        with os.fdopen(w, "w") as fw:
            fw.write(json.dumps(list(res)))
        os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], timeout + 2.0)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return "hung", f"over {timeout:g} s (uninterruptible, killed)"
    with os.fdopen(r) as fr:
        text = fr.read()
    os.waitpid(pid, 0)
    try:
        out = json.loads(text)
        return out[0], out[1]
    except (ValueError, IndexError):
        return "crashed", "the child died without an answer"


def classify(spec: Spec, arg: str, value, timeout: float, klass: str = "") -> tuple[str, str]:
    """(outcome, detail) of one bad call."""
    import importlib

    fn = spec.call or getattr(importlib.import_module(spec.module), spec.func)
    kw = dict(spec.valid)
    if value is MISSING:
        kw.pop(arg, None)
    else:
        kw[arg] = value
    label = spec.label or spec.func
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn(**kw)
        signal.setitimer(signal.ITIMER_REAL, 0)
        warn = f" [{len(caught)} warning(s): {caught[0].category.__name__}]" if caught else ""
        if not _finite(out):
            return "returned_nonfinite", f"non-finite result{warn}"
        return "returned", f"returned {type(out).__name__}{warn}"
    except _Timeout:
        return "hung", f"over {timeout:g} s"
    except ValueError as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        msg = str(exc)
        m = _FORMAT.match(msg)
        if m and (m.group("name") == arg or (klass == "shape" and m.group("name") in spec.alt)):
            if m.group("func") == label:
                return "named", msg
            return "named_other_func", msg
        inner = (spec.alt_names or {}).get(arg, ())
        if m and m.group("name") in inner and m.group("func") in (label, *spec.alt_funcs):
            return "named", msg
        return "ValueError_unnamed", msg
    except BaseException as exc:  # noqa: BLE001 - the tally records anything
        signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return type(exc).__name__, str(exc)[:200]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _print_counts(title: str, counters: dict[str, Counter], width: int, out) -> None:
    """One line per key: named / total and the other outcomes."""
    print(f"\nby {title} (named / total; other outcomes):", file=out)
    for key in sorted(counters):
        cnt = counters[key]
        rest = ", ".join(f"{k} {v}" for k, v in cnt.most_common() if k != "named")
        print(f"  {key:{width}s} {cnt['named']:5d} / {sum(cnt.values()):5d}   {rest}", file=out)


def run(specs: list[Spec], *, timeout: float, details: bool, out=sys.stdout, progress: bool = False,
        isolate: bool = False) -> dict:
    rows = []
    one = classify_isolated if isolate else classify
    t0 = time.perf_counter()
    for spec in specs:
        if progress:
            print(f"-- {spec.module}.{spec.label or spec.func}", file=sys.stderr, flush=True)
        # the valid call must work (else the spec is wrong, not the function)
        ok, why = classify(spec, next(iter(spec.valid)), spec.valid[next(iter(spec.valid))], timeout)
        if ok != "returned":
            print(f"!! valid call of {spec.module}.{spec.func} failed: {ok}: {why}", file=out)
        for arg, bads in spec.bad.items():
            for klass, lab, value in bads:
                outcome, detail = one(spec, arg, value, timeout, klass)
                rows.append((spec.module, spec.label or spec.func, arg, klass, lab, outcome, detail))
    elapsed = time.perf_counter() - t0
    by_outcome = Counter(r[5] for r in rows)
    by_class: dict[str, Counter] = defaultdict(Counter)
    by_func: dict[str, Counter] = defaultdict(Counter)
    by_module: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_module[r[0]][r[5]] += 1
        by_class[r[3]][r[5]] += 1
        by_func[f"{r[0].split('.')[-1]}.{r[1]}"][r[5]] += 1
    total = len(rows)
    named = by_outcome["named"]
    print(f"{total} bad inputs, {named} named ValueError ({100.0 * named / max(total, 1):.1f}%), "
          f"{elapsed:.1f} s", file=out)
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in by_outcome.most_common()), file=out)
    for title, counters, width in (("class", by_class, 14), ("module", by_module, 28), ("function", by_func, 42)):
        _print_counts(title, counters, width, out)
    if details:
        print("\nnot named:", file=out)
        for r in rows:
            if r[5] != "named":
                print(f"  {r[0]}.{r[1]}({r[2]}={r[4]!s}) [{r[3]}]: {r[5]}: {r[6][:160]}", file=out)
    return {"total": total, "named": named, "rows": rows, "by_class": by_class, "by_module": by_module,
            "seconds": elapsed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per call before it counts as hung")
    ap.add_argument("--details", action="store_true", help="list every bad input that was not named")
    ap.add_argument("--strict", action="store_true", help="exit 1 when some bad input is not named")
    ap.add_argument("--progress", action="store_true", help="name each function on stderr as it starts")
    ap.add_argument("--isolate", action="store_true", help="run each bad call in a forked child (slower; counts "
                                                             "calls stuck in C code as hung instead of hanging)")
    ap.add_argument("--only", default="", help="module prefix to run (theory, theory.rmt, simulate, optimizer, "
                                               "...; default: everything)")
    args = ap.parse_args(argv)
    specs = [s for s in cases() if s.module.startswith(args.only)]
    res = run(specs, timeout=args.timeout, details=args.details, progress=args.progress, isolate=args.isolate)
    return 1 if args.strict and res["named"] < res["total"] else 0


_CASES: list[Spec] = []


def cases() -> list[Spec]:
    """The specifications of theory, simulate and the optimizer factories, built once (importing the
    module runs nothing; ``CASES`` builds them). The compare API's are in ``bad_inputs_compare.py``."""
    if not _CASES:
        _CASES.extend(theory_specs() + simulate_specs() + factory_specs())
    return _CASES


def __getattr__(name: str) -> Any:
    if name == "CASES":  # ``from bad_inputs import CASES``: the list of :class:`Spec`
        return cases()
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
