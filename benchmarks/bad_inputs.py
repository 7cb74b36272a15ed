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

Run: ``python benchmarks/bad_inputs.py [--only theory] [--timeout 10] [--details] [--strict]``.
Exit status 1 only with ``--strict`` when some bad input is not ``named``. The table is printed
by class and by function. ``simulate`` and the optimizer factories are to be added as further
``SPECS`` (the generators of bad values are shared).
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
# running
# =============================================================================================

class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise _Timeout


_FORMAT = re.compile(r"^(?P<func>[\w.]+): argument '(?P<name>[^']+)' must (?P<exp>.+); got (?P<got>.+)\.$", re.S)


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
            return bool(np.all(np.isfinite(np.asarray(x, dtype=float))))
        import mpmath
        if isinstance(x, mpmath.mpf):
            return bool(mpmath.isfinite(x))
    except (TypeError, ValueError):
        return True
    return True


def classify(spec: Spec, arg: str, value, timeout: float, klass: str = "") -> tuple[str, str]:
    """(outcome, detail) of one bad call."""
    import importlib

    fn = spec.call or getattr(importlib.import_module(spec.module), spec.func)
    kw = dict(spec.valid)
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
        return "ValueError_unnamed", msg
    except BaseException as exc:  # noqa: BLE001 - the tally records anything
        signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return type(exc).__name__, str(exc)[:200]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run(specs: list[Spec], *, timeout: float, details: bool, out=sys.stdout) -> dict:
    rows = []
    t0 = time.perf_counter()
    for spec in specs:
        # the valid call must work (else the spec is wrong, not the function)
        ok, why = classify(spec, next(iter(spec.valid)), spec.valid[next(iter(spec.valid))], timeout)
        if ok != "returned":
            print(f"!! valid call of {spec.module}.{spec.func} failed: {ok}: {why}", file=out)
        for arg, bads in spec.bad.items():
            for klass, lab, value in bads:
                outcome, detail = classify(spec, arg, value, timeout, klass)
                rows.append((spec.module, spec.label or spec.func, arg, klass, lab, outcome, detail))
    elapsed = time.perf_counter() - t0
    by_outcome = Counter(r[5] for r in rows)
    by_class: dict[str, Counter] = defaultdict(Counter)
    by_func: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_class[r[3]][r[5]] += 1
        by_func[f"{r[0].split('.')[-1]}.{r[1]}"][r[5]] += 1
    total = len(rows)
    named = by_outcome["named"]
    print(f"{total} bad inputs, {named} named ValueError ({100.0 * named / max(total, 1):.1f}%), "
          f"{elapsed:.1f} s", file=out)
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in by_outcome.most_common()), file=out)
    print("\nby class (named / total; other outcomes):", file=out)
    for c in sorted(by_class):
        cnt = by_class[c]
        tot = sum(cnt.values())
        rest = ", ".join(f"{k} {v}" for k, v in cnt.most_common() if k != "named")
        print(f"  {c:14s} {cnt['named']:5d} / {tot:5d}   {rest}", file=out)
    print("\nby function (named / total; other outcomes):", file=out)
    for f in sorted(by_func):
        cnt = by_func[f]
        tot = sum(cnt.values())
        rest = ", ".join(f"{k} {v}" for k, v in cnt.most_common() if k != "named")
        print(f"  {f:42s} {cnt['named']:4d} / {tot:4d}   {rest}", file=out)
    if details:
        print("\nnot named:", file=out)
        for r in rows:
            if r[5] != "named":
                print(f"  {r[0]}.{r[1]}({r[2]}={r[4]!s}) [{r[3]}]: {r[5]}: {r[6][:160]}", file=out)
    return {"total": total, "named": named, "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per call before it counts as hung")
    ap.add_argument("--details", action="store_true", help="list every bad input that was not named")
    ap.add_argument("--strict", action="store_true", help="exit 1 when some bad input is not named")
    ap.add_argument("--only", default="theory", help="module prefix to run (theory, theory.rmt, ...)")
    args = ap.parse_args(argv)
    specs = [s for s in theory_specs() if s.module.startswith(args.only)]
    res = run(specs, timeout=args.timeout, details=args.details)
    return 1 if args.strict and res["named"] < res["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
