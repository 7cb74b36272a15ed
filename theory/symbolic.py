r"""Symbolic derivations (sympy) and high-precision reference values (mpmath).

An independent, exact route to the paper's identities, for interactive exploration in a REPL and
for checking the float64 theory of :mod:`theory.linrep`, :mod:`theory.rmt` and
:mod:`theory.single_index` (this module imports none of them). Everything here is derived,
not typed in: gradients come from differentiating the loss, local rates from linearising the
actual update, closed forms from solving the fixed-point equations. All statements are those of
docs/theory.md; the ones tagged [R] there (every formula below except eq. (5) itself) are
reconstructed, not read from the paper.

**Lemma 3.1** [R statement, V] (KFAC steps of eq. (5) are EMAs of least-squares solutions), with
:math:`\hat L=\tfrac12\mathrm{tr}\Sigma_{yy}-\mathrm{tr}(\Sigma_{yx}G^\top F^\top)+\tfrac12\mathrm{tr}(FG\Sigma_xG^\top F^\top)`:

.. math::

    G-\eta_G(F^\top F)^{-1}\nabla_G\hat L\,(\Sigma_x+\lambda_GI)^{-1}
    -\Big[(1-\eta_G)G+\eta_G\big((F^\top F)^{-1}F^\top\Sigma_{yx}+\lambda_GG\big)(\Sigma_x+\lambda_GI)^{-1}\Big]=0,

and the same for the head, :math:`F-\eta_F\nabla_F\hat L\,\Sigma_z^{-1}-[(1-\eta_F)F+\eta_F\Sigma_{yz}\Sigma_z^{-1}]=0`
(:func:`lemma_3_1`, :func:`lemma_3_1_residuals`, :func:`simplify_matrix`).

**R-LR-1** [R] (local rate of :math:`G_+=G-\eta P^{-1}\nabla_GL\,Q^{-1}` with the least-squares head,
linearised at :math:`G=G^*+ZG^*_\perp`, :func:`local_rate_derivation`):

.. math::

    Z_+=Z-\eta\,(P^{-1}F^{*\top}F^*)\,Z\,\big(\Sigma_{22\cdot1}(Q^{-1})_{22}\big)+O(\lVert Z\rVert^2),
    \qquad \rho=\max_{i,j}|1-\eta\ell_im_j|.

**R-LR-2** [R] (:func:`kfac_tangent_recursion`): :math:`t\mapsto(1-\eta)t/(1+\eta t^2)` on the
whitened principal-angle tangent; its only real fixed point is 0 and :math:`\eta=1` solves in one step.

**Theorem 3.9** [P: exists; formula R] (:func:`kappa_mp`, :func:`kfac_alignment_mp`,
:func:`isotropic_kfac_alignment`): :math:`\kappa-\lambda_G=\frac{\kappa}{n}\mathrm{tr}\,\Sigma(\Sigma+\kappa)^{-1}`;
for :math:`\Sigma=I` it is the quadratic :math:`\psi\kappa^2+(\psi-\psi\lambda_G-1)\kappa-\psi\lambda_G=0` and

.. math::

    \cos(v_{KFAC},\beta^*)=\frac{c}{\sqrt{c^2+\dfrac{c^2\kappa^2+\sigma_r^2(1+\kappa)^2}{\psi(1+\kappa)^2-1}}}.

Teacher coefficients :math:`c=\mathbb E[z\sigma^*(z)]/s^2`, :math:`\mathbb E[y^2]`,
:math:`\sigma_r^2=\mathbb E[y^2]-c^2s^2` are exact Gaussian integrals for piecewise polynomials
(relu, abs, polynomials) and for :math:`\mathrm{erf}(az)` (arcsine kernel), and 50-digit mpmath
quadrature otherwise (tanh, sigmoid, softplus) (:func:`teacher_coefficients`).

Bridges: :func:`to_numpy` and :func:`to_mpmath` turn any expression returned here into a fast
numpy function or a high-precision mpmath one (``sympy.lambdify``); :func:`to_latex` prints it.

Examples
--------
>>> import sympy
>>> from theory import symbolic as sym
>>> res = sym.lemma_3_1_residuals()
>>> sorted(res)
['F', 'G', 'G_ridge']
>>> [sym.simplify_matrix(r) for r in res.values()]
[0, 0, 0]
>>> sym.lemma_3_1().gradient_G
F.T*F*G*Sigma_x - F.T*Sigma_yx
>>> sym.contraction_factor("kfac")
Abs(eta - 1)
>>> sym.contraction_factor("amgd")
Max(Abs(eta*l_max*m_max - 1), Abs(eta*l_min*m_min - 1))
>>> sym.optimal_contraction_factor("amgd").rho_in_kappa
(kappa_eff - 1)/(kappa_eff + 1)
>>> sym.kfac_tangent_recursion().step
-t*(eta - 1)/(eta*t**2 + 1)
>>> cos = sym.isotropic_kfac_alignment()
>>> sorted(s.name for s in cos.free_symbols)
['c', 'lam_G', 'psi', 'sigma_r']
>>> f = sym.to_mpmath(cos, ["psi", "lam_G", "c", "sigma_r"], dps=50)
>>> tc = sym.teacher_coefficients("relu")        # exact: c = 1/2, sigma_r^2 = 1/4
>>> tc.c, tc.sigma_r2
(1/2, 1/4)
>>> a = f(2, "0.1", tc.c, sympy.sqrt(tc.sigma_r2))
>>> b = sym.kfac_alignment_mp([1.0] * 4, [0.5] * 4, n=8, lam_G="0.1", teacher="relu")
>>> import mpmath
>>> bool(abs(a - b) < 1e-45)                     # closed form = general 50-digit route at Sigma = I
True
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from theory import _validate as V

__all__ = [
    "SYMBOLS",
    "Symbols",
    "to_numpy",
    "to_mpmath",
    "to_latex",
    "simplify_matrix",
    "loss_gradient_F",
    "loss_gradient_G",
    "kfac_step_F",
    "kfac_step_G",
    "ema_head_form",
    "ema_representation_form",
    "Lemma31",
    "lemma_3_1",
    "lemma_3_1_residuals",
    "LEFT",
    "RIGHT",
    "METHODS",
    "LocalRateDerivation",
    "local_rate_derivation",
    "contraction_factor",
    "OptimalRate",
    "optimal_contraction_factor",
    "TangentRecursion",
    "kfac_tangent_recursion",
    "TEACHERS",
    "ExactTeacherCoefficients",
    "teacher_coefficients",
    "gaussian_expectation",
    "isotropic_kappa_quadratic",
    "isotropic_kappa",
    "isotropic_kfac_alignment",
    "isotropic_sgd_alignment",
    "kappa_mp",
    "kfac_alignment_mp",
    "sgd_alignment_mp",
]


# =============================================================================================
# symbols and bridges
# =============================================================================================

@dataclass(frozen=True)
class Symbols:
    """The scalar symbols used by every result of this module (paper notation).

    eta, eta_F, eta_G: step sizes (positive). lam_G: ridge damping of the G preconditioner (>= 0).
    psi: aspect ratio n/d (> 0). c: first Hermite coefficient of the teacher (real).
    sigma_r: effective noise level (>= 0; sigma_r**2 = E[y^2] - c^2 s^2). kappa: the fixed point of
    Theorem 3.9 (>= 0). s: input scale of the teacher, z ~ N(0, s^2). noise_std: label noise.
    z: the teacher's argument. t: tangent of a (whitened) principal angle.
    l_min, l_max, m_min, m_max: extreme eigenvalues of R-LR-1's factors ell and m.
    kappa_eff: l_max m_max / (l_min m_min), the effective condition number of R-LR-1.
    """

    eta: sp.Symbol = sp.Symbol("eta", positive=True)
    eta_F: sp.Symbol = sp.Symbol("eta_F", positive=True)
    eta_G: sp.Symbol = sp.Symbol("eta_G", positive=True)
    lam_G: sp.Symbol = sp.Symbol("lam_G", nonnegative=True)
    psi: sp.Symbol = sp.Symbol("psi", positive=True)
    c: sp.Symbol = sp.Symbol("c", real=True)
    sigma_r: sp.Symbol = sp.Symbol("sigma_r", nonnegative=True)
    kappa: sp.Symbol = sp.Symbol("kappa", nonnegative=True)
    s: sp.Symbol = sp.Symbol("s", positive=True)
    noise_std: sp.Symbol = sp.Symbol("noise_std", nonnegative=True)
    z: sp.Symbol = sp.Symbol("z", real=True)
    t: sp.Symbol = sp.Symbol("t", real=True)
    l_min: sp.Symbol = sp.Symbol("l_min", positive=True)
    l_max: sp.Symbol = sp.Symbol("l_max", positive=True)
    m_min: sp.Symbol = sp.Symbol("m_min", positive=True)
    m_max: sp.Symbol = sp.Symbol("m_max", positive=True)
    kappa_eff: sp.Symbol = sp.Symbol("kappa_eff", positive=True)

    def __getitem__(self, name: str) -> sp.Symbol:
        return getattr(self, name)


#: The module's symbols; ``SYMBOLS.psi``, ``SYMBOLS["lam_G"]``, ...
SYMBOLS = Symbols()

_LATEX_NAMES = {
    "eta": r"\eta", "eta_F": r"\eta_F", "eta_G": r"\eta_G", "lam_G": r"\lambda_G", "psi": r"\psi",
    "sigma_r": r"\sigma_r", "kappa": r"\kappa", "noise_std": r"\sigma_\varepsilon",
    "l_min": r"\ell_{\min}", "l_max": r"\ell_{\max}", "m_min": r"m_{\min}", "m_max": r"m_{\max}",
    "kappa_eff": r"\kappa_{\rm eff}", "Sigma_x": r"\Sigma_x", "Sigma_z": r"\Sigma_z",
    "Sigma_yx": r"\Sigma_{yx}", "Sigma_yz": r"\Sigma_{yz}", "F_star": r"F^*",
}


def _free(expr) -> set:
    if isinstance(expr, Mapping):
        out: set = set()
        for v in expr.values():
            out |= _free(v)
        return out
    free = set(getattr(expr, "free_symbols", set()))
    # matrix elements of a MatrixSymbol count through their parent
    for e in list(free):
        if isinstance(e, MatrixElement):
            free.add(e.parent)
    if isinstance(expr, (sp.MatrixBase, sp.MatrixExpr)):
        free |= set(expr.atoms(sp.MatrixSymbol))
    return free


def _dimension_symbols(objs: Iterable) -> set:
    """Symbols that occur in the shapes of matrix symbols (d_X, d_Y, k of Lemma 3.1)."""
    out: set = set()
    for o in objs:
        mats = [o] if isinstance(o, sp.MatrixSymbol) else (
            o.atoms(sp.MatrixSymbol) if isinstance(o, (sp.MatrixExpr, sp.MatrixBase)) else [])
        for M in mats:
            for n in M.shape:
                out |= set(sp.sympify(n).free_symbols)
    return out


def _resolve_args(func: str, expr, args) -> list:
    """Symbols (or MatrixSymbols) for ``args``, given as objects or names of the expression's symbols."""
    if isinstance(args, (str, sp.Basic)):
        args = [args]
    try:
        args = list(args)
    except TypeError:
        raise V.fail(func, "args", "a sequence of symbols or symbol names", type(args).__name__) from None
    by_name: dict[str, Any] = {}
    for s in _free(expr):
        if isinstance(s, (sp.Symbol, sp.MatrixSymbol)):
            by_name.setdefault(s.name, s)
    out = []
    for a in args:
        if isinstance(a, str):
            out.append(by_name.get(a, sp.Symbol(a)))
        elif isinstance(a, (sp.Symbol, sp.MatrixSymbol)):
            out.append(a)
        else:
            raise V.fail(func, "args", "symbols, MatrixSymbols or their names", repr(a))
    dims = _dimension_symbols([expr, *out]) if not isinstance(expr, Mapping) else set()
    missing = sorted(s.name for s in _free(expr)
                     if isinstance(s, (sp.Symbol, sp.MatrixSymbol)) and s not in out and s not in dims)
    if missing:
        raise V.fail(func, "args", f"a list naming every free symbol of the expression {missing}",
                     [getattr(a, "name", a) for a in out])
    return out


def _lambdify_target(expr):
    if isinstance(expr, Mapping):
        raise TypeError
    if isinstance(expr, sp.MatrixBase):
        return sp.ImmutableMatrix(expr)
    return expr


def _shape_of(v) -> tuple:
    if isinstance(v, mpmath.matrix):
        return (v.rows, v.cols)
    return tuple(np.shape(v))


def _explicit_identities(target):
    """Identity(n) -> explicit eye(n): mpmath's printer would print it as ``I``, the imaginary unit."""
    if not isinstance(target, (sp.MatrixExpr, sp.MatrixBase)) or not target.atoms(sp.Identity):
        return target
    return target.replace(lambda e: isinstance(e, sp.Identity) and e.shape[0].is_Integer,
                          lambda e: sp.ImmutableMatrix(sp.eye(int(e.shape[0]))))


def _check_expr(func: str, expr, *, mapping: bool = False):
    """A sympy expression or matrix (or, with ``mapping``, a dict of them): else a named ValueError."""
    ok = (sp.Basic, sp.MatrixBase)
    if mapping and isinstance(expr, Mapping):
        if all(isinstance(v, ok) for v in expr.values()):
            return expr
        raise V.fail(func, "expr", "a sympy expression, a sympy matrix or a dict of them",
                     "a dict with entries that are not sympy objects")
    if not isinstance(expr, ok):
        raise V.fail(func, "expr", "a sympy expression or matrix (as returned by this module)", V.describe(expr))
    return expr


def _lambdify(func: str, expr, args, modules: str) -> Callable:
    """sympy.lambdify; symbolic matrix dimensions are bound from the arrays' shapes at call time."""
    if not isinstance(expr, Mapping):
        _check_expr(func, expr)
    syms = _resolve_args(func, expr, args)
    try:
        target = _lambdify_target(expr)
    except TypeError:
        raise V.fail(func, "expr", "a sympy expression or matrix", type(expr).__name__) from None
    dims = _dimension_symbols([target, *syms])
    fix = _explicit_identities if modules == "mpmath" else (lambda e: e)
    if not dims:
        return sp.lambdify(syms, fix(target), modules=modules)
    cache: dict[tuple, Callable] = {}
    mats = [(i, a) for i, a in enumerate(syms) if isinstance(a, sp.MatrixSymbol)]

    def f(*values):
        bound: dict = {}
        for i, a in mats:
            shape = _shape_of(values[i])
            if len(shape) != 2:
                raise V.fail(func, a.name, "a 2-D array", f"shape {shape}")
            for n, got in zip(a.shape, shape):
                n = sp.sympify(n)
                want = bound.setdefault(n, got) if n.is_Symbol else n
                if want != got:
                    raise V.fail(func, a.name, f"of shape {tuple(sp.sympify(x).subs(bound) for x in a.shape)}"
                                 " (consistent with the other matrices)", f"shape {shape}")
        key = tuple(sorted((str(k), v) for k, v in bound.items()))
        if key not in cache:
            sub = {k: sp.Integer(v) for k, v in bound.items()}
            cache[key] = sp.lambdify([a.subs(sub) for a in syms], fix(target.subs(sub)), modules=modules)
        return cache[key](*values)

    return f


def to_numpy(expr, args) -> Callable:
    """A fast numpy function of ``args`` evaluating ``expr`` (``sympy.lambdify``, modules ``"numpy"``).

    expr: any expression or (explicit or symbolic) matrix returned by this module.
    args: the arguments in order: symbols, MatrixSymbols (passed as 2-D arrays) or their names.
        Symbolic matrix dimensions (``d_X``, ``d_Y``, ``k``) are read off the arrays' shapes, which
        must agree (ValueError otherwise). Scalar expressions broadcast over numpy arrays.

    >>> f = to_numpy(isotropic_kappa(), ["psi", "lam_G"])
    >>> float(f(0.5, 0.0))
    1.0
    """
    return _lambdify("to_numpy", expr, args, "numpy")


def _to_mp(x):
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return _to_mp(x.item())
        if x.ndim > 2:
            raise ValueError("to_mpmath: arguments must be scalars, vectors or matrices")
        return mpmath.matrix([[_to_mp(v) for v in row] for row in np.atleast_2d(x)])
    if isinstance(x, (list, tuple)):
        return _to_mp(np.asarray(x, dtype=object))
    if isinstance(x, (mpmath.mpf, mpmath.mpc, mpmath.matrix)):
        return x
    if isinstance(x, sp.Basic):
        return mpmath.mpf(sp.Float(x, mpmath.mp.dps + 5)._mpf_) if x.is_real else mpmath.mpmathify(complex(x))
    if isinstance(x, (bool, np.bool_)):
        return mpmath.mpf(int(x))
    if isinstance(x, (int, np.integer)):
        return mpmath.mpf(int(x))
    if isinstance(x, (float, np.floating)):
        return mpmath.mpf(float(x))   # exact binary value of the float
    if isinstance(x, str):
        return mpmath.mpf(x)          # decimal string: correctly rounded at the working precision
    return mpmath.mpmathify(x)


def to_mpmath(expr, args, *, dps: int = 50) -> Callable:
    """A high-precision function of ``args`` evaluating ``expr`` with mpmath at ``dps`` digits.

    expr, args: as :func:`to_numpy`. Arguments may be floats (taken at their exact binary value),
    decimal strings (rounded at ``dps`` digits), ints, mpmath numbers or numpy arrays (converted to
    ``mpmath.matrix``). Returns ``mpmath.mpf`` (or ``mpmath.matrix``) computed at ``dps`` digits.

    >>> g = to_mpmath(isotropic_kappa(), ["psi", "lam_G"], dps=30)
    >>> k = g(2, "0.1")                          # psi = 2, lam_G = 0.1 (decimal, not the float)
    >>> with mpmath.workdps(30):                 # the root (-0.4 + sqrt(0.56)) / 2 of the quadratic
    ...     print(mpmath.nstr(k, 25), abs(k - (mpmath.sqrt("0.56") - mpmath.mpf("0.4")) / 2) < 1e-29)
    0.1741657386773941385583749 True
    """
    func = "to_mpmath"
    dps = _dps(func, dps)
    with mpmath.workdps(dps):
        raw = _lambdify(func, expr, args, "mpmath")

    @functools.wraps(raw)
    def f(*values):
        with mpmath.workdps(dps):
            return raw(*[_to_mp(v) for v in values])

    return f


def to_latex(expr, **options) -> str:
    r"""LaTeX of ``expr`` in paper notation (``lam_G`` prints as :math:`\lambda_G`, ...).

    options: passed to ``sympy.latex``.

    >>> to_latex(contraction_factor("kfac"))
    '\\left|{\\eta - 1}\\right|'
    """
    func = "to_latex"
    _check_expr(func, expr, mapping=True)
    names = {s: _LATEX_NAMES[s.name] for s in _free(expr)
             if isinstance(s, (sp.Symbol, sp.MatrixSymbol)) and getattr(s, "name", None) in _LATEX_NAMES}
    try:
        if isinstance(expr, Mapping):
            return ",\\quad ".join(f"\\text{{{k}}}: " + sp.latex(v, symbol_names=names, **options)
                                   for k, v in expr.items())
        return sp.latex(expr, symbol_names=names, **options)
    except (TypeError, ValueError, KeyError) as exc:
        raise V.fail(func, "options", "keyword options accepted by sympy.latex",
                     f"{sorted(options)} ({type(exc).__name__}: {exc})") from None


def _dps(func: str, dps) -> int:
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)) or not 15 <= int(dps) <= 10_000:
        raise V.fail(func, "dps", "an integer number of decimal digits in [15, 10000]", repr(dps))
    return int(dps)


def _dim(func: str, name: str, value, *, low: int = 1, high: int | None = None, why: str = "") -> int:
    return V.integer(func, name, value, low=low, high=high, why=why)


def _sym_scalar(func: str, name: str, x):
    """A scalar for a symbolic formula: a sympy scalar expression or a finite real Python/numpy number."""
    if isinstance(x, sp.Expr) and not isinstance(x, sp.MatrixExpr):
        if x.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise V.fail(func, name, "a finite scalar (sympy expression or real number)", x)
        return x
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise V.fail(func, name, "a scalar: a sympy expression or a finite real number", V.describe(x))
    if not math.isfinite(float(x)):
        raise V.fail(func, name, "a scalar: a sympy expression or a finite real number", repr(x))
    return sp.sympify(x)


# =============================================================================================
# matrix-expression helpers
# =============================================================================================

def _is_matrix(x) -> bool:
    return isinstance(x, (sp.MatrixBase, sp.MatrixExpr))


def _check_matrix(func: str, name: str, x, shape: tuple | None = None):
    if not _is_matrix(x):
        raise V.fail(func, name, "a sympy matrix (MatrixSymbol, matrix expression or explicit Matrix)",
                     V.describe(x))
    if shape is not None:
        for got, want in zip(x.shape, shape):
            if want is not None and sp.simplify(sp.sympify(got) - sp.sympify(want)) != 0:
                exp = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ")"
                raise V.fail(func, name, f"of shape {exp}", f"shape {tuple(x.shape)}")
    return x


def _explicit(*xs) -> bool:
    kinds = {isinstance(x, sp.MatrixBase) for x in xs}
    return kinds == {True}


def _identity(n, explicit: bool):
    return sp.eye(int(n)) if explicit else sp.Identity(n)


def _inv(X):
    """Inverse: X.I for matrix expressions; adjugate / determinant for explicit matrices (no
    intermediate simplification, which is what makes sympy's default Gauss-Jordan slow)."""
    if isinstance(X, sp.MatrixBase):
        det = X.det(method="berkowitz")
        if det == 0:
            raise ZeroDivisionError("singular matrix")
        return X.adjugate(method="berkowitz") / det
    return X.I


def _cancel(X):
    return X.applyfunc(lambda e: sp.cancel(sp.together(e))) if isinstance(X, sp.MatrixBase) else X


def _sym_entries(M: sp.MatrixSymbol) -> sp.Matrix:
    """Explicit symmetric matrix whose entries are the upper-triangle elements of ``M``."""
    n = M.shape[0]
    return sp.Matrix(n, n, lambda i, j: M[min(i, j), max(i, j)])


def simplify_matrix(expr):
    r"""Simplify a matrix identity of this module to its canonical form (``0`` for a true identity).

    Explicit matrices: every entry is brought to a single cancelled fraction. Matrix-symbol
    expressions: each inverse of a sum, :math:`(\Sigma_x+\lambda_GI)^{-1}`, is renamed
    :math:`S^{-1}` with :math:`\Sigma_x=S-\lambda_GI` substituted everywhere (the change of
    variables that makes the damped identity of Lemma 3.1 visible to sympy's non-commutative
    algebra), then the expression is expanded and evaluated (``.expand().doit()``, which cancels
    :math:`XX^{-1}=I`); the renaming is undone in what is left.

    expr: an explicit ``sympy.Matrix`` or a matrix expression.

    >>> simplify_matrix(lemma_3_1_residuals()["G_ridge"])
    0
    """
    if isinstance(expr, sp.MatrixBase):
        return sp.ImmutableMatrix(_cancel(expr))
    if not isinstance(expr, sp.MatrixExpr):
        raise V.fail("simplify_matrix", "expr", "a sympy matrix or matrix expression", type(expr).__name__)
    e = expr
    back = {}
    invs = sorted((a for a in e.atoms(sp.Inverse) if isinstance(a.arg, sp.MatAdd)), key=sp.default_sort_key)
    for i, inv in enumerate(invs):
        A = inv.arg
        syms = sorted((a for a in A.args if isinstance(a, sp.MatrixSymbol)), key=sp.default_sort_key)
        if not syms:
            continue
        X = syms[0]
        S = sp.MatrixSymbol(f"_S{i}", *A.shape)
        e = e.xreplace({inv: S.I})
        e = e.subs(X, S - (A - X))
        back[S] = A
    e = e.expand().doit()
    if isinstance(e, sp.ZeroMatrix) or e == 0:
        return e
    return e.subs(back).doit() if back else e


# =============================================================================================
# Lemma 3.1
# =============================================================================================

def _trace_grad(scalar_terms: Sequence[tuple[sp.Expr, sp.MatrixExpr]], X: sp.MatrixSymbol,
                symmetric: Sequence[sp.MatrixSymbol]) -> sp.MatrixExpr:
    """d/dX of sum coef * Trace(term), with the listed matrices symmetric (S.T -> S)."""
    g = sp.ZeroMatrix(*X.shape)
    for coef, term in scalar_terms:
        g = g + coef * sp.Trace(term).diff(X)
    g = g.xreplace({S.T: S for S in symmetric})
    return g.doit()


def loss_gradient_G(F, G, Sigma_x, Sigma_yx):
    r""":math:`\nabla_G\hat L` of the linear network, derived by differentiating the loss.

    :math:`\hat L=\tfrac12\mathrm{tr}(FG\Sigma_xG^\top F^\top)-\mathrm{tr}(\Sigma_{yx}G^\top F^\top)+\text{const}`
    (the batch loss :math:`\frac1{2n}\sum_i\lVert y_i-FGx_i\rVert^2` in moments; the factor 1/2
    matters for Lemma 3.1). The result is :math:`F^\top FG\Sigma_x-F^\top\Sigma_{yx}`.

    F: (d_y, k) head. G: (k, d_x) representation. Sigma_x: (d_x, d_x) symmetric second moment.
    Sigma_yx: (d_y, d_x) cross moment. All MatrixSymbols (derivative by sympy's matrix calculus)
    or all explicit matrices (entry-wise derivative).
    """
    return _loss_gradient_G("loss_gradient_G", F, G, Sigma_x, Sigma_yx)


def _loss_gradient_G(func: str, F, G, Sigma_x, Sigma_yx):
    _check_matrix(func, "F", F)
    _check_matrix(func, "G", G, (F.shape[1], None))
    _check_matrix(func, "Sigma_x", Sigma_x, (G.shape[1], G.shape[1]))
    _check_matrix(func, "Sigma_yx", Sigma_yx, (F.shape[0], G.shape[1]))
    if _explicit(F, G, Sigma_x, Sigma_yx):
        L = (F * G * Sigma_x * G.T * F.T).trace() / 2 - (Sigma_yx * G.T * F.T).trace()
        return sp.Matrix(G.shape[0], G.shape[1], lambda i, j: sp.expand(sp.diff(L, G[i, j])))
    if not (isinstance(G, sp.MatrixSymbol) and isinstance(Sigma_x, sp.MatrixSymbol)):
        raise V.fail(func, "G", "a MatrixSymbol (with Sigma_x a MatrixSymbol) or all arguments explicit",
                     type(G).__name__)
    terms = [(sp.Rational(1, 2), F * G * Sigma_x * G.T * F.T), (sp.Integer(-1), Sigma_yx * G.T * F.T)]
    return _trace_grad(terms, G, [Sigma_x])


def loss_gradient_F(F, Sigma_z, Sigma_yz):
    r""":math:`\nabla_F\hat L=F\Sigma_z-\Sigma_{yz}`, derived from
    :math:`\hat L=\tfrac12\mathrm{tr}(F\Sigma_zF^\top)-\mathrm{tr}(\Sigma_{yz}F^\top)+\text{const}`
    (any activation: :math:`z=\sigma(Gx)`).

    F: (d_y, k) head. Sigma_z: (k, k) symmetric feature moment. Sigma_yz: (d_y, k) cross moment.
    """
    return _loss_gradient_F("loss_gradient_F", F, Sigma_z, Sigma_yz)


def _loss_gradient_F(func: str, F, Sigma_z, Sigma_yz):
    _check_matrix(func, "F", F)
    _check_matrix(func, "Sigma_z", Sigma_z, (F.shape[1], F.shape[1]))
    _check_matrix(func, "Sigma_yz", Sigma_yz, (F.shape[0], F.shape[1]))
    if _explicit(F, Sigma_z, Sigma_yz):
        L = (F * Sigma_z * F.T).trace() / 2 - (Sigma_yz * F.T).trace()
        return sp.Matrix(F.shape[0], F.shape[1], lambda i, j: sp.expand(sp.diff(L, F[i, j])))
    if not (isinstance(F, sp.MatrixSymbol) and isinstance(Sigma_z, sp.MatrixSymbol)):
        raise V.fail(func, "F", "a MatrixSymbol (with Sigma_z a MatrixSymbol) or all arguments explicit",
                     type(F).__name__)
    terms = [(sp.Rational(1, 2), F * Sigma_z * F.T), (sp.Integer(-1), Sigma_yz * F.T)]
    return _trace_grad(terms, F, [Sigma_z])


def kfac_step_F(F, Sigma_z, Sigma_yz, *, eta_F=SYMBOLS.eta_F):
    r"""Eq. (5) for the head with :math:`P_F=I`, :math:`Q_F=\Sigma_z`:
    :math:`F_+=F-\eta_F\nabla_F\hat L\,\Sigma_z^{-1}` (gradient from :func:`loss_gradient_F`).

    F, Sigma_z, Sigma_yz: as :func:`loss_gradient_F`. eta_F: step size (symbol or number).
    """
    func = "kfac_step_F"
    grad = _loss_gradient_F(func, F, Sigma_z, Sigma_yz)
    eta_F = _sym_scalar(func, "eta_F", eta_F)
    return F - eta_F * grad * _inv(Sigma_z)


def kfac_step_G(F, G, Sigma_x, Sigma_yx, *, eta_G=SYMBOLS.eta_G, lam_G=0):
    r"""Eq. (5) for the representation, KFAC choice :math:`P_G=F^\top F`, :math:`Q_G=\Sigma_x`:
    :math:`G_+=G-\eta_G(F^\top F)^{-1}\nabla_G\hat L\,(\Sigma_x+\lambda_GI)^{-1}`.

    F, G, Sigma_x, Sigma_yx: as :func:`loss_gradient_G`. eta_G: step size. lam_G: damping (0,
    a number or a symbol such as ``SYMBOLS.lam_G``).
    """
    func = "kfac_step_G"
    grad = _loss_gradient_G(func, F, G, Sigma_x, Sigma_yx)
    eta_G = _sym_scalar(func, "eta_G", eta_G)
    lam_G = _sym_scalar(func, "lam_G", lam_G)
    explicit = isinstance(grad, sp.MatrixBase)
    Q = Sigma_x if lam_G == 0 else Sigma_x + lam_G * _identity(G.shape[1], explicit)
    return G - eta_G * _inv(F.T * F) * grad * _inv(Q)


def ema_head_form(F, Sigma_z, Sigma_yz, *, eta_F=SYMBOLS.eta_F):
    r"""Lemma 3.1's right-hand side for the head: :math:`(1-\eta_F)F+\eta_F\Sigma_{yz}\Sigma_z^{-1}`.

    F, Sigma_z, Sigma_yz: as :func:`loss_gradient_F`. eta_F: step size.
    """
    func = "ema_head_form"
    _check_matrix(func, "F", F)
    _check_matrix(func, "Sigma_z", Sigma_z, (F.shape[1], F.shape[1]))
    _check_matrix(func, "Sigma_yz", Sigma_yz, (F.shape[0], F.shape[1]))
    eta_F = _sym_scalar(func, "eta_F", eta_F)
    return (1 - eta_F) * F + eta_F * Sigma_yz * _inv(Sigma_z)


def ema_representation_form(F, G, Sigma_x, Sigma_yx, *, eta_G=SYMBOLS.eta_G, lam_G=0):
    r"""Lemma 3.1's right-hand side for :math:`G`:
    :math:`(1-\eta_G)G+\eta_G[(F^\top F)^{-1}F^\top\Sigma_{yx}+\lambda_GG](\Sigma_x+\lambda_GI)^{-1}`.

    F, G, Sigma_x, Sigma_yx: as :func:`loss_gradient_G`. eta_G: step size. lam_G: damping.
    """
    func = "ema_representation_form"
    _check_matrix(func, "F", F)
    _check_matrix(func, "G", G, (F.shape[1], None))
    _check_matrix(func, "Sigma_x", Sigma_x, (G.shape[1], G.shape[1]))
    _check_matrix(func, "Sigma_yx", Sigma_yx, (F.shape[0], G.shape[1]))
    eta_G = _sym_scalar(func, "eta_G", eta_G)
    lam_G = _sym_scalar(func, "lam_G", lam_G)
    explicit = _explicit(F, G, Sigma_x, Sigma_yx)
    Q = Sigma_x if lam_G == 0 else Sigma_x + lam_G * _identity(G.shape[1], explicit)
    inner = _inv(F.T * F) * F.T * Sigma_yx
    if lam_G != 0:
        inner = inner + lam_G * G
    return (1 - eta_G) * G + eta_G * inner * _inv(Q)


@dataclass(frozen=True)
class Lemma31:
    """Lemma 3.1 derived (docs/theory.md Lemma 3.1 [R statement, V]).

    symbols: name -> the (Matrix)Symbol used (F, G, Sigma_x, Sigma_yx, Sigma_z, Sigma_yz, eta_F,
        eta_G, lam_G). With explicit dimensions the matrices are explicit ``sympy.Matrix`` objects
        whose entries are elements of those MatrixSymbols (symmetric moments share their upper
        triangle), so :func:`to_numpy` / :func:`to_mpmath` take 2-D arrays for them.
    gradient_F, gradient_G: the loss gradients, obtained by differentiation.
    step_F, step_G, step_G_ridge: the KFAC steps of eq. (5) (``lam_G = 0`` and symbolic ``lam_G``).
    ema_F, ema_G, ema_G_ridge: the EMA forms of Lemma 3.1.
    """

    symbols: Mapping[str, Any]
    gradient_F: Any
    gradient_G: Any
    step_F: Any
    step_G: Any
    step_G_ridge: Any
    ema_F: Any
    ema_G: Any
    ema_G_ridge: Any

    @property
    def residuals(self) -> dict[str, Any]:
        """KFAC step minus EMA form: ``{"F", "G", "G_ridge"}``; :func:`simplify_matrix` gives 0."""
        return {"F": self.step_F - self.ema_F, "G": self.step_G - self.ema_G,
                "G_ridge": self.step_G_ridge - self.ema_G_ridge}


@functools.lru_cache(maxsize=16)
def _lemma_3_1(d_x, d_y, k) -> Lemma31:
    S = SYMBOLS
    if d_x is None:
        dX, dY, kk = sp.symbols("d_X d_Y k", integer=True, positive=True)
    else:
        dX, dY, kk = d_x, d_y, k
    F = sp.MatrixSymbol("F", dY, kk)
    G = sp.MatrixSymbol("G", kk, dX)
    Sx = sp.MatrixSymbol("Sigma_x", dX, dX)
    Syx = sp.MatrixSymbol("Sigma_yx", dY, dX)
    Sz = sp.MatrixSymbol("Sigma_z", kk, kk)
    Syz = sp.MatrixSymbol("Sigma_yz", dY, kk)
    syms = {"F": F, "G": G, "Sigma_x": Sx, "Sigma_yx": Syx, "Sigma_z": Sz, "Sigma_yz": Syz,
            "eta_F": S.eta_F, "eta_G": S.eta_G, "lam_G": S.lam_G}
    if d_x is not None:
        F, G, Syx, Syz = (sp.Matrix(M) for M in (F, G, Syx, Syz))
        Sx, Sz = _sym_entries(Sx), _sym_entries(Sz)
    return Lemma31(
        symbols=syms,
        gradient_F=loss_gradient_F(F, Sz, Syz),
        gradient_G=loss_gradient_G(F, G, Sx, Syx),
        step_F=kfac_step_F(F, Sz, Syz, eta_F=S.eta_F),
        step_G=kfac_step_G(F, G, Sx, Syx, eta_G=S.eta_G),
        step_G_ridge=kfac_step_G(F, G, Sx, Syx, eta_G=S.eta_G, lam_G=S.lam_G),
        ema_F=ema_head_form(F, Sz, Syz, eta_F=S.eta_F),
        ema_G=ema_representation_form(F, G, Sx, Syx, eta_G=S.eta_G),
        ema_G_ridge=ema_representation_form(F, G, Sx, Syx, eta_G=S.eta_G, lam_G=S.lam_G),
    )


def lemma_3_1(*, d_x: int | None = None, d_y: int | None = None, k: int | None = None) -> Lemma31:
    r"""Lemma 3.1 derived: gradients, KFAC steps of eq. (5) and EMA forms (see :class:`Lemma31`).

    d_x, d_y, k: all ``None`` (default) for dimension-free matrix symbols (non-commutative
    algebra, symbolic shapes :math:`d_X, d_Y, k`), or all integers >= 1 with ``k <= d_y`` (so that
    :math:`F^\top F` is invertible) for explicit matrices of symbols.

    >>> lem = lemma_3_1(d_x=2, d_y=1, k=1)
    >>> lem.gradient_F
    Matrix([[F[0, 0]*Sigma_z[0, 0] - Sigma_yz[0, 0]]])
    >>> simplify_matrix(lem.residuals["G_ridge"])
    Matrix([[0, 0]])
    """
    return _lemma_dims("lemma_3_1", d_x, d_y, k)


#: size limits of the explicit derivations (sympy's cost grows factorially with the matrix size:
#: lemma_3_1 at d_x = 6, k = 3 takes ~25 s; local_rate_derivation at (k, d_x) = (1, 10) ~3 s, (2, 5) ~25 s)
_LEMMA_MAX = {"d_x": 6, "d_y": 12, "k": 3}
_RATE_MAX_DX = {1: 10, 2: 5}
_RATE_MAX_DY = 6


def _lemma_dims(func: str, d_x, d_y, k) -> Lemma31:
    given = {"d_x": d_x, "d_y": d_y, "k": k}
    if any(v is not None for v in given.values()):
        for name, v in given.items():
            if v is None:
                others = [n for n, u in given.items() if u is not None]
                raise V.fail(func, name, f"an integer when {' and '.join(others)} "
                             f"{'is' if len(others) == 1 else 'are'} given (or all three None: matrix symbols)", "None")
        d_x, d_y, k = (_dim(func, n, v, high=_LEMMA_MAX[n], why=" (explicit derivation; the cost grows factorially)")
                       for n, v in given.items())
        if k > d_y:
            raise V.fail(func, "k", f"<= d_y = {d_y} (F^T F must be invertible)", k)
    return _lemma_3_1(d_x, d_y, k)


def lemma_3_1_residuals(*, d_x: int | None = None, d_y: int | None = None, k: int | None = None) -> dict[str, Any]:
    r"""KFAC step of eq. (5) minus the EMA form of Lemma 3.1, for F, for G and for G with
    :math:`\lambda_G>0`: ``{"F": ..., "G": ..., "G_ridge": ...}``.

    Each simplifies to zero: ``simplify_matrix(r)`` returns ``0`` (a ``ZeroMatrix``) for matrix
    symbols and a zero matrix for explicit dimensions; for ``"F"`` and ``"G"`` plain
    ``r.expand().doit()`` already gives 0. Arguments as :func:`lemma_3_1`.

    >>> r = lemma_3_1_residuals()["G"]
    >>> r.expand().doit()
    0
    """
    return _lemma_dims("lemma_3_1_residuals", d_x, d_y, k).residuals


# =============================================================================================
# R-LR-1: linearisation of the Kronecker-preconditioned step
# =============================================================================================

LEFT = ("identity", "FtF")
RIGHT = ("identity", "Sigma_x", "diag")
#: method name -> (left, right) preconditioner pair of R-LR-1's table.
METHODS: dict[str, tuple[str, str]] = {
    "amgd": ("identity", "identity"),
    "left": ("FtF", "identity"),
    "right": ("identity", "Sigma_x"),
    "kfac": ("FtF", "Sigma_x"),
    "diag": ("FtF", "diag"),
    "amgd_diag": ("identity", "diag"),
}


class _Dual:
    """First-order jet X0 + eps X1 of explicit sympy matrices (forward-mode linearisation)."""

    _op_priority = 100.0

    def __init__(self, v: sp.Matrix, d: sp.Matrix | None = None):
        self.v = v
        self.d = sp.zeros(*v.shape) if d is None else d

    @staticmethod
    def lift(x) -> "_Dual":
        return x if isinstance(x, _Dual) else _Dual(x)

    def __add__(self, o):
        o = _Dual.lift(o)
        return _Dual(self.v + o.v, self.d + o.d)

    def __sub__(self, o):
        o = _Dual.lift(o)
        return _Dual(self.v - o.v, self.d - o.d)

    def __mul__(self, o):
        if isinstance(o, (_Dual, sp.MatrixBase)):
            o = _Dual.lift(o)
            return _Dual(_cancel(self.v * o.v), self.v * o.d + self.d * o.v)
        return _Dual(self.v * o, self.d * o)

    def __rmul__(self, o):
        if isinstance(o, sp.MatrixBase):
            return _Dual.lift(o) * self
        return _Dual(o * self.v, o * self.d)

    @property
    def T(self) -> "_Dual":
        return _Dual(self.v.T, self.d.T)

    def inv(self) -> "_Dual":
        vi = _cancel(_inv(self.v))
        return _Dual(vi, -vi * self.d * vi)

    def block(self, rows: slice, cols: slice) -> "_Dual":
        return _Dual(self.v[rows, cols], self.d[rows, cols])


def _vec(X: sp.Matrix) -> sp.Matrix:
    """Column-major vec, so that vec(L Z M) = (M^T kron L) vec(Z)."""
    return sp.Matrix([X[i, j] for j in range(X.shape[1]) for i in range(X.shape[0])])


def _is_identity(X: sp.Matrix) -> bool:
    return _cancel(X - sp.eye(X.shape[0])) == sp.zeros(*X.shape)


@dataclass(frozen=True)
class LocalRateDerivation:
    r"""R-LR-1 derived by linearising the update (docs/theory.md R-LR-1 [R]).

    Coordinates: :math:`G^*=[I_k,0]`, :math:`G^*_\perp=[0,I_{d_x-k}]`, :math:`G=G^*+ZG^*_\perp`
    (so :math:`A=I`, the tangent matrix is :math:`Z`), population moments, noiseless targets
    :math:`M=F^*G^*`, head :math:`F=\hat F_{LS}(G)=M\Sigma_xG^\top(G\Sigma_xG^\top)^{-1}`, step
    :math:`G_+=G-\eta P^{-1}\nabla_GL\,Q^{-1}` with :math:`P\in\{I,F^\top F\}`,
    :math:`Q\in\{I,\Sigma_x,\mathrm{diag}\,\Sigma_x\}`, and :math:`Z_+=A_+^{-1}B_+`.

    left, right: the preconditioner pair. k, d_x, d_y: dimensions.
    Sigma_x, F_star, Z: explicit matrices of symbols (elements of MatrixSymbols ``Sigma_x``,
        ``F_star``, ``Z``; ``Sigma_x`` symmetric). eta: the step-size symbol.
    jacobian: the derived linear map :math:`\mathrm{vec}Z\mapsto\mathrm{vec}Z_+` (column-major vec),
        first-order part of the exact update.
    L: :math:`P^{-1}F^{*\top}F^*` (the left factor). M: :math:`\Sigma_{22\cdot1}(Q^{-1})_{22}`.
    predicted: :math:`I-\eta\,M^\top\otimes L`, docs/theory.md's local-rate matrix.
    residual: jacobian - predicted after cancellation (a zero matrix: R-LR-1 recovered).
    zeroth_order: :math:`Z_+` at :math:`Z=0` (zero: :math:`G^*` is a fixed point).
    """

    left: str
    right: str
    k: int
    d_x: int
    d_y: int
    Sigma_x: sp.ImmutableMatrix
    F_star: sp.ImmutableMatrix
    Z: sp.ImmutableMatrix
    eta: sp.Symbol
    jacobian: sp.ImmutableMatrix
    L: sp.ImmutableMatrix
    M: sp.ImmutableMatrix
    predicted: sp.ImmutableMatrix
    residual: sp.ImmutableMatrix
    zeroth_order: sp.ImmutableMatrix

    @property
    def args(self) -> tuple:
        """The arguments of :attr:`jacobian` for :func:`to_numpy` / :func:`to_mpmath`: (Sigma_x, F_star, eta)."""
        return (sp.MatrixSymbol("Sigma_x", self.d_x, self.d_x), sp.MatrixSymbol("F_star", self.d_y, self.k), self.eta)

    @functools.cached_property
    def _jac_numpy(self) -> Callable:
        return to_numpy(self.jacobian, self.args)

    def spectral_radius(self, Sigma_x, F_star, *, eta: float) -> float:
        r"""Local rate :math:`\rho` = spectral radius of :attr:`jacobian` at numeric values (numpy).

        Sigma_x: (d_x, d_x) SPD in the coordinates where :math:`G^*=[I_k,0]`. F_star: (d_y, k).
        eta: step size > 0.
        """
        func = "LocalRateDerivation.spectral_radius"
        S = V.spd(func, "Sigma_x", Sigma_x, d=self.d_x)
        Fs = V.matrix(func, "F_star", F_star, shape=(self.d_y, self.k))
        eta = V.scalar(func, "eta", eta, low=0.0, low_open=True)
        J = np.asarray(self._jac_numpy(S, Fs, eta), dtype=float)
        return float(np.max(np.abs(np.linalg.eigvals(J))))


@functools.lru_cache(maxsize=64)
def _local_rate_derivation(left: str, right: str, k: int, d_x: int, d_y: int) -> LocalRateDerivation:
    eta = SYMBOLS.eta
    S = _sym_entries(sp.MatrixSymbol("Sigma_x", d_x, d_x))
    Fs = sp.Matrix(sp.MatrixSymbol("F_star", d_y, k))
    Z = sp.Matrix(sp.MatrixSymbol("Z", k, d_x - k))
    Gs = sp.eye(k).row_join(sp.zeros(k, d_x - k))
    G = _Dual(Gs, sp.zeros(k, k).row_join(Z))          # G = G* + eps Z G*_perp
    M_target = Fs * Gs
    F = (M_target * S) * G.T * (G * S * G.T).inv()      # least-squares head at G
    grad = F.T * (F * G - M_target) * S                 # population gradient, no noise
    if right == "Sigma_x":
        Qinv = _cancel(_inv(S))
    elif right == "diag":
        Qinv = sp.diag(*[1 / S[i, i] for i in range(d_x)])
    else:
        Qinv = sp.eye(d_x)
    precond = (F.T * F).inv() * grad if left == "FtF" else grad
    Gp = G - eta * (precond * Qinv)
    A = Gp.block(slice(0, k), slice(0, k))
    B = Gp.block(slice(0, k), slice(k, d_x))
    Zp = A.inv() * B
    zeroth = _cancel(Zp.v)
    J = _cancel(_vec(Zp.d).jacobian(_vec(Z)))
    # docs/theory.md's factors
    S11, S12, S22 = S[:k, :k], S[:k, k:], S[k:, k:]
    schur = S22 - S12.T * _inv(S11) * S12
    FtF = Fs.T * Fs
    Lf = sp.eye(k) if left == "FtF" else FtF            # P^{-1} F*^T F* with P = F*^T F* at G*
    Mf = _cancel(schur * Qinv[k:, k:])
    pred = sp.eye(k * (d_x - k)) - eta * sp.kronecker_product(Mf.T, Lf)
    resid = _cancel(J - pred)
    I = sp.ImmutableMatrix
    return LocalRateDerivation(left=left, right=right, k=k, d_x=d_x, d_y=d_y, Sigma_x=I(S), F_star=I(Fs), Z=I(Z),
                               eta=eta, jacobian=I(J), L=I(Lf), M=I(Mf), predicted=I(_cancel(pred)),
                               residual=I(resid), zeroth_order=I(zeroth))


def local_rate_derivation(left: str, right: str, *, k: int = 1, d_x: int = 3, d_y: int | None = None) -> LocalRateDerivation:
    r"""R-LR-1 derived for one (left, right) preconditioner pair (see :class:`LocalRateDerivation`).

    left: ``"identity"`` (:math:`P=I`) or ``"FtF"`` (:math:`P=F^\top F`).
    right: ``"identity"`` (:math:`Q=I`), ``"Sigma_x"`` or ``"diag"`` (:math:`Q=\mathrm{diag}\,\Sigma_x`
        in the coordinates where :math:`G^*=[I_k,0]`).
    k: representation dimension (>= 1). d_x: input dimension (> k). d_y: output dimension
        (>= k; default k). Cost grows fast: (1, 3) takes well under a second, (2, 3) a few
        seconds, (2, 4) up to half a minute; results are cached. Limits (ValueError beyond):
        k <= 2, d_x <= 10 for k = 1 and <= 5 for k = 2, d_y <= 6.

    >>> der = local_rate_derivation("FtF", "Sigma_x")
    >>> der.M, der.L
    (Matrix([
    [1, 0],
    [0, 1]]), Matrix([[1]]))
    >>> der.residual.is_zero_matrix
    True
    """
    func = "local_rate_derivation"
    V.choice(func, "left", left, LEFT)
    V.choice(func, "right", right, RIGHT)
    k = _dim(func, "k", k, high=max(_RATE_MAX_DX), why=" (explicit derivation; the cost grows factorially)")
    d_x = _dim(func, "d_x", d_x, low=k + 1, high=_RATE_MAX_DX[k],
               why=f" (> k = {k} so that G* has a complement; at most {_RATE_MAX_DX[k]} for k = {k}: "
                   "the cost grows factorially)")
    d_y = k if d_y is None else _dim(func, "d_y", d_y, high=_RATE_MAX_DY,
                                     why=" (explicit derivation; the cost grows factorially)")
    if d_y < k:
        raise V.fail(func, "d_y", f">= k = {k} (F* of full column rank)", d_y)
    return _local_rate_derivation(left, right, k, d_x, d_y)


def _method(func: str, method) -> tuple[str, str]:
    if isinstance(method, tuple) and len(method) == 2:
        V.choice(func, "method", method[0], LEFT)
        V.choice(func, "method", method[1], RIGHT)
        return method
    if not isinstance(method, str) or method not in METHODS:
        raise V.fail(func, "method", f"one of {tuple(METHODS)} or a (left, right) pair", repr(method))
    return METHODS[method]


def _extremes(func: str, method) -> tuple[sp.Expr, sp.Expr]:
    """(smallest, largest) product ell*m, with ell or m set to 1 where the derivation gives I."""
    left, right = _method(func, method)
    der = local_rate_derivation(left, right)
    S = SYMBOLS
    l_lo, l_hi = (1, 1) if _is_identity(sp.Matrix(der.L)) else (S.l_min, S.l_max)
    m_lo, m_hi = (1, 1) if _is_identity(sp.Matrix(der.M)) else (S.m_min, S.m_max)
    return l_lo * m_lo, l_hi * m_hi


def contraction_factor(method) -> sp.Expr:
    r"""Local contraction factor :math:`\rho(\eta)=\max_{i,j}|1-\eta\ell_im_j|` of R-LR-1 [R].

    The linear map :math:`Z\mapsto Z-\eta LZM` has eigenvalues :math:`1-\eta\ell_im_j`, extreme at
    :math:`\ell_{\min}m_{\min}` and :math:`\ell_{\max}m_{\max}`. Where the derivation
    (:func:`local_rate_derivation`) shows a factor is the identity it is replaced by 1, so KFAC's
    factor comes out as :math:`|1-\eta|`, free of condition numbers.

    method: ``"kfac"``, ``"amgd"``, ``"left"``, ``"right"``, ``"diag"``, ``"amgd_diag"`` (see
        :data:`METHODS`) or a (left, right) pair.
    """
    lo, hi = _extremes("contraction_factor", method)
    eta = SYMBOLS.eta
    return sp.Max(sp.Abs(1 - eta * lo), sp.Abs(1 - eta * hi))


@dataclass(frozen=True)
class OptimalRate:
    r"""The best step and rate of :math:`\max(|1-\eta a|,|1-\eta b|)`, :math:`a\le b`.

    eta_star: :math:`2/(a+b)`. rho_star: :math:`(b-a)/(b+a)`.
    rho_in_kappa: the same in :math:`\kappa_{\rm eff}=b/a` (``(kappa_eff - 1)/(kappa_eff + 1)``; 0 for KFAC).
    stability_limit: the largest stable step :math:`2/b`.
    """

    eta_star: sp.Expr
    rho_star: sp.Expr
    rho_in_kappa: sp.Expr
    stability_limit: sp.Expr


def optimal_contraction_factor(method) -> OptimalRate:
    r"""Minimise :func:`contraction_factor` over :math:`\eta` (R-LR-1 [R]).

    The optimum balances the two extreme modes, :math:`1-\eta a=-(1-\eta b)`, solved by sympy;
    for AMGD this is the lower bound :math:`(\kappa_{\rm eff}-1)/(\kappa_{\rm eff}+1)` with
    :math:`\kappa_{\rm eff}=\kappa(F)^2\kappa(\Sigma_{22\cdot1})`; for KFAC :math:`\eta^*=1`, rate 0.

    method: as :func:`contraction_factor`.

    >>> opt = optimal_contraction_factor("kfac")
    >>> opt.eta_star, opt.rho_star
    (1, 0)
    """
    a, b = _extremes("optimal_contraction_factor", method)
    eta = SYMBOLS.eta
    (eta_star,) = sp.solve(sp.Eq(1 - eta * a, -(1 - eta * b)), eta)
    rho = sp.factor(sp.simplify(1 - eta_star * a))
    if a == b:
        rho_k = sp.Integer(0)
    else:  # eliminate one eigenvalue symbol of b through b = kappa_eff * a
        x = sorted(b.free_symbols - a.free_symbols, key=str)[0]
        (x_of_k,) = sp.solve(sp.Eq(b, SYMBOLS.kappa_eff * a), x)
        rho_k = sp.factor(sp.simplify(rho.subs(x, x_of_k)))
    return OptimalRate(eta_star=sp.simplify(eta_star), rho_star=rho, rho_in_kappa=rho_k,
                       stability_limit=sp.simplify(2 / b))


# =============================================================================================
# R-LR-2: the scalar tangent recursion
# =============================================================================================

@dataclass(frozen=True)
class TangentRecursion:
    r"""R-LR-2 derived (docs/theory.md R-LR-2 [R]).

    step: :math:`t_+=\varphi(t)`, the whitened tangent after one population KFAC step
        (least-squares head, :math:`\lambda_G=0`), as a function of ``SYMBOLS.t`` and ``SYMBOLS.eta``.
    fixed_points: real solutions of :math:`\varphi(t)=t` for :math:`\eta>0` (only 0).
    slope_at_zero: :math:`\varphi'(0)=1-\eta`, the local rate (agrees with R-LR-1 for KFAC).
    at_eta_one: :math:`\varphi` at :math:`\eta=1` (identically 0: one step solves the problem).
    derivation_inputs: the symbols of the 2-D problem the map was derived from
        (:math:`G=[a,b]`, :math:`G^*=[1,0]`, :math:`F^*=f`, :math:`\Sigma_x=LL^\top` with a
        lower-triangular Cholesky factor ``L``).
    """

    step: sp.Expr
    fixed_points: tuple
    slope_at_zero: sp.Expr
    at_eta_one: sp.Expr
    derivation_inputs: tuple


@functools.lru_cache(maxsize=1)
def kfac_tangent_recursion() -> TangentRecursion:
    r"""Derive R-LR-2's scalar recursion :math:`t\mapsto(1-\eta)t/(1+\eta t^2)`.

    Problem (k = 1, d_x = 2, d_y = 1, any :math:`\Sigma_x=LL^\top`): :math:`G=[a,b]`,
    :math:`G^*=[1,0]`, targets :math:`M=fG^*`, least-squares head, KFAC step
    :math:`G_+=G-\eta(F^\top F)^{-1}\nabla_GL\,\Sigma_x^{-1}`. The whitened tangent
    :math:`t=\tan\angle(GL,G^*L)` (signed: cross product over dot product) is computed before and
    after the step; eliminating :math:`b` in favour of :math:`t` leaves a function of
    :math:`t` and :math:`\eta` only, free of :math:`a, f, L`: the recursion holds at any distance
    and for any :math:`\Sigma_x`, :math:`F^*`.

    >>> rec = kfac_tangent_recursion()
    >>> rec.fixed_points, rec.slope_at_zero, rec.at_eta_one
    ((0,), 1 - eta, 0)
    """
    eta, t = SYMBOLS.eta, SYMBOLS.t
    a, b, f = sp.symbols("a b f", real=True)
    l11, l22 = sp.symbols("L_11 L_22", positive=True)
    l21 = sp.Symbol("L_21", real=True)
    L = sp.Matrix([[l11, 0], [l21, l22]])
    S = L * L.T
    G = sp.Matrix([[a, b]])
    Gs = sp.Matrix([[1, 0]])
    M = f * Gs
    F = M * S * G.T * _inv(G * S * G.T)
    grad = F.T * (F * G - M) * S
    Gp = _cancel(G - eta * _inv(F.T * F) * grad * _inv(S))

    def tangent(Gm):
        u, w = Gm * L, Gs * L
        return sp.cancel((u[0] * w[1] - u[1] * w[0]) / (u[0] * w[0] + u[1] * w[1]))

    (b_of_t,) = sp.solve(sp.Eq(t, tangent(G)), b)
    phi = sp.factor(sp.cancel(tangent(Gp).subs(b, b_of_t)))
    if phi.free_symbols - {t, eta}:  # pragma: no cover - would mean R-LR-2 is false
        raise ArithmeticError(f"kfac_tangent_recursion: the map depends on {phi.free_symbols - {t, eta}}")
    fixed = tuple(sp.solve(sp.Eq(phi, t), t))
    slope = sp.simplify(sp.diff(phi, t).subs(t, 0))
    return TangentRecursion(step=phi, fixed_points=fixed, slope_at_zero=slope,
                            at_eta_one=sp.simplify(phi.subs(eta, 1)), derivation_inputs=(a, b, f, L))


# =============================================================================================
# single-index: teacher coefficients
# =============================================================================================

_z = SYMBOLS.z
#: name -> sympy expression in ``SYMBOLS.z`` (the names of :data:`theory.single_index.TEACHERS`).
TEACHERS: dict[str, sp.Expr] = {
    "tanh": sp.tanh(_z),
    "erf": sp.erf(_z),
    "relu": sp.Max(0, _z),
    "linear": _z,
    "sigmoid": 1 / (1 + sp.exp(-_z)),
    "softplus": sp.log(1 + sp.exp(_z)),
    "abs": sp.Abs(_z),
    "cubic": _z ** 3,
    "he2": _z ** 2 - 1,
}


@dataclass(frozen=True)
class ExactTeacherCoefficients:
    r"""Teacher coefficients (docs/theory.md 4.0) as sympy numbers or expressions.

    c: :math:`\mathbb E[z\sigma^*(z)]/s^2`. Ey2: :math:`\mathbb E[\sigma^*(z)^2]+\sigma_\varepsilon^2`.
    sigma_r2: :math:`\mathbb E[y^2]-c^2s^2`. mean: :math:`\mathbb E[\sigma^*(z)]`.
    exact: True for closed forms (then the fields are exact sympy expressions, possibly in
        symbolic ``s`` / ``noise_std``); False for quadrature (sympy Floats carrying ``dps`` digits).
    method: ``"piecewise polynomial"``, ``"erf (arcsine kernel)"`` or ``"quadrature"``.
    teacher: the sympy expression of :math:`\sigma^*` in ``SYMBOLS.z``. s, noise_std: as given.
    """

    c: sp.Expr
    Ey2: sp.Expr
    sigma_r2: sp.Expr
    mean: sp.Expr
    exact: bool
    method: str
    teacher: sp.Expr
    s: sp.Expr
    noise_std: sp.Expr


def _teacher_expr(func: str, teacher, name: str = "teacher") -> sp.Expr:
    z = SYMBOLS.z
    if isinstance(teacher, str):
        if teacher not in TEACHERS:
            raise V.fail(func, name, f"one of {tuple(TEACHERS)}, a sympy expression in z or a callable "
                         "mapping the sympy symbol z to one", repr(teacher))
        return TEACHERS[teacher]
    expr = teacher
    if callable(teacher) and not isinstance(teacher, (sp.Basic, type)):
        label = getattr(teacher, "__name__", type(teacher).__name__)
        try:
            expr = sp.sympify(teacher(z))
        except Exception as exc:  # noqa: BLE001 - report any failure of a user callable
            raise V.fail(func, name, "a callable mapping the sympy symbol z to a sympy expression",
                         f"a callable ({label}) that raised {type(exc).__name__}: {exc}") from None
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.MatrixExpr):
        raise V.fail(func, name, f"one of {tuple(TEACHERS)}, a sympy expression in z or a callable",
                     V.describe(teacher))
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise V.fail(func, name, "a finite real function of z", f"{expr} (contains nan, zoo or oo)")
    if expr.has(sp.I) or expr.is_real is False:
        raise V.fail(func, name, "a real function of z", f"{expr} (complex)")
    extra = {s for s in expr.free_symbols if s != z}
    if extra:
        # accept a plain Symbol('z') without assumptions
        plain = [s for s in expr.free_symbols if getattr(s, "name", None) == "z"]
        expr = expr.xreplace({s: z for s in plain})
        extra = {s for s in expr.free_symbols if s != z}
    if extra:
        raise V.fail(func, name, "an expression in z only", f"free symbols {sorted(map(str, extra))}")
    return expr


def _half_moment(m: int, s) -> sp.Expr:
    r""":math:`\int_0^\infty z^m\varphi_s(z)\,dz=s^m2^{m/2}\Gamma(\frac{m+1}2)/(2\sqrt\pi)`."""
    return s ** m * 2 ** sp.Rational(m, 2) * sp.gamma(sp.Rational(m + 1, 2)) / (2 * sp.sqrt(sp.pi))


def _halves(g: sp.Expr) -> tuple[sp.Poly, sp.Poly] | None:
    """(polynomial on z > 0, polynomial on z < 0) if g is piecewise polynomial with a kink at 0 only."""
    z = SYMBOLS.z
    zp, zn = sp.Dummy("zp", positive=True), sp.Dummy("zn", negative=True)
    out = []
    for zz in (zp, zn):
        h = sp.expand(sp.piecewise_fold(g.subs(z, zz)))
        if not h.is_polynomial(zz):
            return None
        out.append(sp.Poly(h.subs(zz, z), z))
    return out[0], out[1]


def _poly_expect(pp: sp.Poly, pn: sp.Poly, s) -> sp.Expr:
    tot = sp.Integer(0)
    for (m,), coef in pp.terms():
        tot += coef * _half_moment(m, s)
    for (m,), coef in pn.terms():
        tot += coef * (-1) ** m * _half_moment(m, s)
    return sp.simplify(tot)


def gaussian_expectation(g, *, s=1, dps: int = 50, method: str = "auto") -> tuple[sp.Expr, bool]:
    r""":math:`\mathbb E[g(z)]`, :math:`z\sim\mathsf N(0,s^2)`: exact where possible, else quadrature.

    Exact for piecewise polynomials with a kink at 0 (half-line Gaussian moments
    :math:`\int_0^\infty z^m\varphi_s=s^m2^{m/2}\Gamma(\tfrac{m+1}2)/(2\sqrt\pi)`); otherwise mpmath
    tanh-sinh quadrature over :math:`(-\infty,0]\cup[0,\infty)` at ``dps`` digits.

    g: sympy expression in ``SYMBOLS.z`` (or a name of :data:`TEACHERS`).
    s: scale (> 0; may be a positive symbol for exact integrands).
    dps: digits of the quadrature.
    method: ``"auto"``, ``"exact"`` (ValueError if no closed form) or ``"quad"`` (always quadrature:
        an independent route for checking the closed forms).
    Returns (value, exact).

    >>> import sympy
    >>> gaussian_expectation(sympy.Max(0, SYMBOLS.z) ** 2, s=SYMBOLS.s)
    (s**2/2, True)
    """
    func = "gaussian_expectation"
    g = _teacher_expr(func, g, "g")
    dps = _dps(func, dps)
    s = _scale(func, s, dps)
    V.choice(func, "method", method, ("auto", "exact", "quad"))
    halves = _halves(g) if method != "quad" else None
    if halves is not None:
        return _poly_expect(*halves, s), True
    if method == "exact":
        raise V.fail(func, "g", "a piecewise polynomial with a kink at 0 only (method='exact')", g)
    return _quad(func, "g", g, s, dps), False


def _got(x) -> str:
    return str(x) if isinstance(x, (sp.Basic, float, int, str)) and not isinstance(x, bool) else V.describe(x)


def _scale(func: str, s, dps: int = 50) -> sp.Expr:
    v = _sym_number(s, dps) if not isinstance(s, sp.Basic) else s
    if v.is_positive is not True or v.is_finite is False:
        raise V.fail(func, "s", "a finite positive number or a positive symbol", _got(s))
    return v


#: the quadrature's divergence test: the integrand at |z| = 64 s must be below 10^-(dps + 5) of its
#: largest value at |z| <= 3 s (passes Gaussian moments of functions growing like e^{c z^2}, c < 1/2 - 0.03)
_QUAD_TAIL = 64


def _quad(func: str, name: str, g: sp.Expr, s: sp.Expr, dps: int) -> sp.Float:
    r""":math:`\mathbb E[g(z)]` by mpmath tanh-sinh quadrature at ``dps`` digits, after a divergence test."""
    dps = _dps(func, dps)
    if not s.is_number:
        raise V.fail(func, "s", "a number (this integrand has no closed form here; quadrature needs numbers)", s)
    z = SYMBOLS.z
    work = dps + 15
    expected = (f"a function with finite Gaussian moments (the integrand must decay below 1e-{dps + 5} of its "
                f"size at |z| <= 3 s by |z| = {_QUAD_TAIL} s)")
    with mpmath.workdps(work):
        fn = sp.lambdify(z, g, modules="mpmath")
        sm = mpmath.mpf(sp.Float(s, work)._mpf_)
        norm = 1 / (sm * mpmath.sqrt(2 * mpmath.pi))

        def integrand(x):
            return fn(x) * mpmath.exp(-x * x / (2 * sm * sm)) * norm

        def at(u):
            try:
                v = integrand(u * sm)
            except (ZeroDivisionError, ValueError, TypeError, OverflowError) as exc:
                raise V.fail(func, name, "a function finite on the real line",
                             f"{g} ({type(exc).__name__} at z = {mpmath.nstr(u * sm, 5)})") from None
            if not isinstance(v, mpmath.mpf) or not mpmath.isfinite(v):
                raise V.fail(func, name, "a finite real function on the real line",
                             f"{g} (value {v} at z = {mpmath.nstr(u * sm, 5)})")
            return abs(v)

        body = max(at(u) for u in (-3, -2, -1, -0.5, 0.5, 1, 2, 3))
        tail = max(at(-_QUAD_TAIL), at(_QUAD_TAIL))
        if tail > mpmath.mpf(10) ** (-dps - 5) * max(body, mpmath.mpf(10) ** (-work)):
            raise V.fail(func, name, expected, f"{g}, whose integrand is {mpmath.nstr(tail, 3)} at |z| = "
                         f"{_QUAD_TAIL} s (divergent)")
        try:
            val, err = mpmath.quad(integrand, [-mpmath.inf, 0, mpmath.inf], error=True, maxdegree=12)
        except (ZeroDivisionError, ValueError, TypeError, OverflowError) as exc:
            raise V.fail(func, name, "a function finite on the real line",
                         f"{g} ({type(exc).__name__}: {exc})") from None
        scale = max(abs(val), mpmath.mpf(1))
        if not (mpmath.isfinite(val) and err <= mpmath.mpf(10) ** (-dps) * scale):
            raise V.fail(func, name, f"a function whose Gaussian moments tanh-sinh quadrature resolves to {dps} "
                         "digits (finite, without singularities)",
                         f"{g} (quadrature error estimate {mpmath.nstr(err, 3)})")
        return sp.Float(val, dps)


def teacher_coefficients(teacher, *, s=1, noise_std=0, dps: int = 50) -> ExactTeacherCoefficients:
    r"""Teacher coefficients as exact Gaussian integrals, or 50-digit quadrature (docs/theory.md 4.0).

    Routes: piecewise polynomials (``relu``, ``abs``, ``linear``, ``cubic``, ``he2``,
    ``relu(z) - 0.3 z``, ...) by half-line Gaussian moments; :math:`\mathrm{erf}(az)` by the
    arcsine kernel :math:`\mathbb E[\mathrm{erf}(az)^2]=\frac2\pi\arcsin\frac{2a^2s^2}{1+2a^2s^2}`
    and Stein's identity :math:`c=\mathbb E[\sigma^{*\prime}]=\frac{2a}{\sqrt\pi}(1+2a^2s^2)^{-1/2}`
    (Williams 1998); everything else (``tanh``, ``sigmoid``, ``softplus``) by mpmath quadrature at
    ``dps`` digits.

    teacher: a name in :data:`TEACHERS`, a sympy expression in ``z`` or a callable mapping the
        sympy symbol ``z`` to one (e.g. ``lambda z: sympy.tanh(2 * z)``).
    s: input scale, :math:`z\sim\mathsf N(0,s^2)` (> 0; a positive symbol is allowed for exact routes).
    noise_std: label noise :math:`\sigma_\varepsilon\ge0` (number or symbol).
    dps: digits for quadrature (>= 15).

    >>> import sympy
    >>> teacher_coefficients("relu", noise_std=sympy.Rational(1, 10)).sigma_r2
    13/50
    >>> teacher_coefficients("erf", s=SYMBOLS.s).c
    2/(sqrt(pi)*sqrt(2*s**2 + 1))
    >>> tc = teacher_coefficients("tanh")
    >>> tc.exact, tc.method
    (False, 'quadrature')
    >>> stein, _ = gaussian_expectation(1 - sympy.tanh(SYMBOLS.z) ** 2)   # c = E[tanh'(z)] (Stein)
    >>> bool(abs(tc.c - stein) < 1e-45)
    True
    """
    return _teacher_coefficients("teacher_coefficients", teacher, s, noise_std, dps)


def _teacher_coefficients(func: str, teacher, s, noise_std, dps) -> ExactTeacherCoefficients:
    g = _teacher_expr(func, teacher)
    dps = _dps(func, dps)
    s = _scale(func, s, dps)
    ns = _sym_number(noise_std, dps)
    if ns.is_nonnegative is not True or ns.is_finite is False:
        raise V.fail(func, "noise_std", "a finite number >= 0 or a nonnegative symbol", _got(noise_std))
    noise_std = ns
    return _teacher_core(func, g, s, noise_std, dps)


def _sym_number(x, dps: int):
    """Python/numpy floats at their exact binary value with ``dps`` digits; strings as decimals.

    Anything that is not a real number, a decimal string, an mpmath/sympy number or a sympy
    expression (None, bools, containers, ...) becomes ``nan``, which every caller rejects by name.
    """
    if x is None or isinstance(x, (bool, np.bool_, list, tuple, dict, set, np.ndarray)):
        return sp.nan
    if isinstance(x, (float, np.floating)):
        return sp.Float(float(x), dps + 10) if math.isfinite(float(x)) else sp.nan
    if isinstance(x, str):
        try:
            return sp.Float(x, dps + 10)
        except ValueError:
            return sp.nan
    if isinstance(x, mpmath.mpf):
        return sp.Float(x, dps + 10)
    try:
        out = sp.sympify(x)
    except (sp.SympifyError, TypeError, ValueError):
        return sp.nan
    return out if isinstance(out, sp.Expr) and not isinstance(out, sp.MatrixExpr) else sp.nan


@functools.lru_cache(maxsize=256)
def _teacher_core(func: str, g: sp.Expr, s: sp.Expr, noise_std: sp.Expr, dps: int) -> ExactTeacherCoefficients:
    z = SYMBOLS.z
    halves = _halves(g)
    w = sp.Wild("w", exclude=[z])
    match = g.match(sp.erf(w * z))
    if halves is not None:
        pp, pn = halves
        zp, zn = sp.Poly(z, z) * pp, sp.Poly(z, z) * pn
        Ezg = _poly_expect(zp, zn, s)
        Eg2 = _poly_expect(pp * pp, pn * pn, s)
        mean = _poly_expect(pp, pn, s)
        exact, method = True, "piecewise polynomial"
    elif match is not None and match[w] != 0:
        a = match[w]
        Ezg = s ** 2 * 2 * a / (sp.sqrt(sp.pi) * sp.sqrt(1 + 2 * a ** 2 * s ** 2))
        Eg2 = 2 / sp.pi * sp.asin(2 * a ** 2 * s ** 2 / (1 + 2 * a ** 2 * s ** 2))
        mean = sp.Integer(0)
        exact, method = True, "erf (arcsine kernel)"
    else:
        Ezg = _quad(func, "teacher", z * g, s, dps)
        Eg2 = _quad(func, "teacher", g * g, s, dps)
        mean = sp.Integer(0) if sp.simplify(g.subs(z, -z) + g) == 0 else _quad(func, "teacher", g, s, dps)
        exact, method = False, "quadrature"
    c = sp.simplify(Ezg / s ** 2) if exact else sp.Float(Ezg / s ** 2, dps)
    Ey2 = Eg2 + noise_std ** 2
    sigma_r2 = Ey2 - c ** 2 * s ** 2
    if exact:
        Ey2, sigma_r2 = sp.simplify(Ey2), sp.simplify(sigma_r2)
    else:
        Ey2, sigma_r2 = sp.Float(Ey2, dps), sp.Float(sigma_r2, dps)
    return ExactTeacherCoefficients(c=c, Ey2=Ey2, sigma_r2=sigma_r2, mean=mean, exact=exact, method=method,
                                    teacher=g, s=s, noise_std=noise_std)


# =============================================================================================
# single-index: isotropic closed forms
# =============================================================================================

def _fixed_point_equation(kappa: sp.Symbol, lam: sp.Symbol, psi: sp.Symbol) -> sp.Expr:
    """Theorem 3.9's equation for H = delta_1 (Sigma = I): kappa - lam - (kappa/psi) * 1/(1+kappa)."""
    return kappa - lam - kappa / psi * (1 / (1 + kappa))


@functools.lru_cache(maxsize=1)
def isotropic_kappa_quadratic() -> sp.Poly:
    r"""Theorem 3.9's fixed point for :math:`\Sigma=I` cleared of denominators: a quadratic in :math:`\kappa`,
    :math:`\psi\kappa^2+(\psi-\psi\lambda_G-1)\kappa-\psi\lambda_G`.

    >>> isotropic_kappa_quadratic().all_coeffs()
    [psi, -lam_G*psi + psi - 1, -lam_G*psi]
    """
    S = SYMBOLS
    num = sp.numer(sp.together(_fixed_point_equation(S.kappa, S.lam_G, S.psi) * S.psi))
    return sp.Poly(sp.expand(num), S.kappa)


@functools.lru_cache(maxsize=1)
def isotropic_kappa() -> sp.Expr:
    r"""The admissible root of :func:`isotropic_kappa_quadratic` (Theorem 3.9, :math:`\Sigma=I`).

    The quadratic's roots have product :math:`-\lambda_G\le0`, so for :math:`\lambda_G>0` exactly one
    is positive: the one with :math:`+\sqrt{\cdot}`. It equals
    :math:`\tfrac12[-(1-\gamma-\lambda_G)+\sqrt{(1-\gamma-\lambda_G)^2+4\lambda_G}]`,
    :math:`\gamma=1/\psi`, and at :math:`\lambda_G=0` gives :math:`\max(0,1/\psi-1)`.

    >>> float(to_numpy(isotropic_kappa(), ["psi", "lam_G"])(2.0, 0.0))
    0.0
    """
    S = SYMBOLS
    roots = sp.solve(isotropic_kappa_quadratic().as_expr(), S.kappa)
    # the '+sqrt' root: positive at a generic admissible point (roots have product -lam_G <= 0)
    probe = {S.psi: sp.Rational(3, 2), S.lam_G: sp.Rational(1, 7)}
    pos = [r for r in roots if r.subs(probe) > 0]
    if len(pos) != 1:  # pragma: no cover - the quadratic has exactly one positive root
        raise ArithmeticError("isotropic_kappa: expected exactly one positive root")
    return sp.simplify(pos[0])


def _isotropic_functionals(kappa: sp.Expr, psi: sp.Expr) -> dict[str, sp.Expr]:
    """Theorem 3.9's functionals for Sigma = I, ||beta*|| = 1 (spectral integrals against delta_1)."""
    t = sp.Integer(1)
    gamma = 1 / psi
    return {
        "A1": t / (t + kappa),
        "B": t ** 2 / (t + kappa) ** 2,
        "E": t / (t + kappa) ** 2,
        "T2": gamma * t / (t + kappa) ** 2,
        "D2": gamma * t ** 2 / (t + kappa) ** 2,
    }


def isotropic_kfac_alignment(*, keep_kappa: bool = False) -> sp.Expr:
    r"""Isotropic KFAC alignment :math:`\cos(v_{KFAC},\beta^*)` of Theorem 3.9 in
    :math:`(\psi,\lambda_G,c,\sigma_r)` (:math:`\Sigma=I`, :math:`\lVert\beta^*\rVert=1`, [R]).

    Derived by evaluating Theorem 3.9's functionals :math:`A_1,B,E,T_2,D_2` at the spectral law
    :math:`\delta_1`, simplifying :math:`cA_1/\sqrt{c^2B+(c^2\kappa^2E+\sigma_r^2)T_2/(1-D_2)}` and
    substituting :func:`isotropic_kappa`. Result:
    :math:`c/\sqrt{c^2+(c^2\kappa^2+\sigma_r^2(1+\kappa)^2)/(\psi(1+\kappa)^2-1)}` (the sign is
    that of :math:`c`).

    keep_kappa: return the expression in ``SYMBOLS.kappa`` instead (not substituted).

    >>> isotropic_kfac_alignment(keep_kappa=True)
    c/sqrt(c**2 + (c**2*kappa**2 + sigma_r**2*(kappa + 1)**2)/(psi*(kappa + 1)**2 - 1))
    """
    return _isotropic_kfac_alignment(V.flag("isotropic_kfac_alignment", "keep_kappa", keep_kappa))


@functools.lru_cache(maxsize=2)
def _isotropic_kfac_alignment(keep_kappa: bool) -> sp.Expr:
    S = SYMBOLS
    c, sr, kap, psi = S.c, S.sigma_r, S.kappa, S.psi
    f = _isotropic_functionals(kap, psi)
    sq = c ** 2 * f["B"] + (c ** 2 * kap ** 2 * f["E"] + sr ** 2) * f["T2"] / (1 - f["D2"])
    # cos = c A1 / sqrt(sq) = c / sqrt(sq / A1^2)  (A1 > 0)
    num, den = sp.fraction(sp.cancel(sq / f["A1"] ** 2 - c ** 2))
    extra = sp.collect(sp.expand(num), [c, sr], sp.factor) / sp.collect(sp.expand(den), psi, sp.factor)
    cos = c / sp.sqrt(c ** 2 + extra)
    if keep_kappa:
        return cos
    return cos.subs(kap, isotropic_kappa())


@functools.lru_cache(maxsize=1)
def isotropic_sgd_alignment() -> sp.Expr:
    r"""Isotropic SGD alignment (docs/theory.md 4.2 [R], :math:`\Sigma=I`, :math:`\lVert\beta^*\rVert=s=1`):
    :math:`c/\sqrt{c^2+(c^2+\sigma_r^2)/\psi}` (:math:`\mathbb E[y^2]=c^2+\sigma_r^2`).

    Equal to the :math:`\lambda_G\to\infty` limit of :func:`isotropic_kfac_alignment`.

    >>> isotropic_sgd_alignment()
    c/sqrt(c**2 + (c**2 + sigma_r**2)/psi)
    """
    S = SYMBOLS
    c, sr, psi = S.c, S.sigma_r, S.psi
    # ||Sigma beta||^2 = 1, beta' Sigma beta = 1, tr(Sigma)/n = 1/psi
    return c / sp.sqrt(c ** 2 + (c ** 2 + sr ** 2) / psi)


# =============================================================================================
# single-index: 50-digit reference values for any spectrum
# =============================================================================================

def _spectrum_mp(func: str, eigenvalues, weights=None) -> tuple[list, list]:
    t = V.spectrum(func, "eigenvalues", eigenvalues)
    w = np.ones_like(t) if weights is None else V.masses(func, "weights", weights, size=t.size)
    # merge equal eigenvalues: the sums below run over distinct atoms (exact in binary)
    u, inv = np.unique(t, return_inverse=True)
    wu = np.zeros_like(u)
    np.add.at(wu, inv, w)
    return [mpmath.mpf(float(x)) for x in u], [mpmath.mpf(float(x)) for x in wu]


def _kappa_core(t: list, w: list, n, lam) -> mpmath.mpf:
    r"""Root of :math:`h(\kappa)=1-\lambda/\kappa-\frac1n\sum_iw_it_i/(t_i+\kappa)` in :math:`u=\log\kappa`.

    :math:`h` is increasing in :math:`u` and every term is :math:`O(1)`, so the bracket
    :math:`[\log\lambda,\ \log(\lambda+\frac1n\sum_iw_it_i)]` (for :math:`\lambda=0<d-n`:
    :math:`[\log((d-n)/\sum_iw_i/t_i),\ \log\frac1n\sum_iw_it_i]`) is valid at any scale
    (:math:`\lambda` from :math:`10^{-300}` to :math:`10^{300}` and beyond): safeguarded Newton in
    :math:`u` with bisection, to a step below :math:`10^{-(\text{dps}+5)}`, then a residual check.
    When the bracket is narrower than the working precision (:math:`\lambda\gg\sum_iw_it_i/n`)
    its upper end is the answer to that precision.
    """
    d = mpmath.fsum(w)
    if lam == 0 and d <= n:
        return mpmath.mpf(0)
    mass = mpmath.fsum(wi * ti for wi, ti in zip(w, t)) / n

    omg = (n - d) / n                     # 1 - gamma, exact

    def h_hu(u):
        # h = (1 - gamma) + sum q w - r = 1 - sum q v - r (w = k/(t+k), v = t/(t+k), q = w_i/n):
        # evaluate the form with the smaller terms (no cancellation when kappa << t at gamma = 1)
        k = mpmath.exp(u)
        r = lam / k
        ws = [k / (ti + k) for ti in t]
        vs = [ti / (ti + k) for ti in t]
        sw = mpmath.fsum(wi * x for wi, x in zip(w, ws)) / n
        sv = mpmath.fsum(wi * x for wi, x in zip(w, vs)) / n
        hu = r + mpmath.fsum(wi * a * b for wi, a, b in zip(w, ws, vs)) / n
        if abs(omg) + sw <= 1 + sv:
            return omg + sw - r, hu
        return 1 - sv - r, hu

    if lam > 0:
        lo, hi = mpmath.log(lam), mpmath.log(lam + mass)
    else:
        lo, hi = mpmath.log((d - n) / mpmath.fsum(wi / ti for wi, ti in zip(w, t))), mpmath.log(mass)
    tol = mpmath.mpf(10) ** (-mpmath.mp.dps + 5)
    if hi - lo <= tol * (1 + abs(hi)):
        return mpmath.exp(hi)
    u = (lo + hi) / 2
    dx_old = hi - lo
    for _ in range(20 * mpmath.mp.prec):
        h, hu = h_hu(u)
        if h == 0:
            break
        if h < 0:
            lo = u
        else:
            hi = u
        step = h / hu
        new = u - step
        if not lo < new < hi or abs(2 * step) > dx_old:
            new = (lo + hi) / 2
            dx_old = (hi - lo) / 2
        else:
            dx_old = abs(step)
        converged = abs(new - u) <= tol or hi - lo <= tol
        u = new
        if converged:
            break
    else:  # pragma: no cover - bisection alone converges within the loop bound
        raise ArithmeticError("kappa_mp: no convergence")
    h, hu = h_hu(u)
    if abs(h) > mpmath.mpf(10) ** (-mpmath.mp.dps + 8) * (1 + hu):
        raise ArithmeticError(f"kappa_mp: residual {mpmath.nstr(h, 5)} at kappa = {mpmath.nstr(mpmath.exp(u), 10)}")
    return mpmath.exp(u)


def kappa_mp(eigenvalues, *, n, lam, dps: int = 50, weights=None) -> mpmath.mpf:
    r"""Theorem 3.9's fixed point at ``dps`` digits, :math:`\kappa-\lambda=\frac{\kappa}{n}\sum_iw_i\frac{t_i}{t_i+\kappa}`.

    A second route to :func:`theory.rmt.kappa`: safeguarded Newton in :math:`u=\log\kappa` on
    :math:`h=1-\lambda/\kappa-\frac1n\sum_iw_it_i/(t_i+\kappa)`, which is increasing, negative
    at :math:`\kappa=\lambda` and non-negative at :math:`\lambda+\frac1n\sum_iw_it_i`, and made of
    :math:`O(1)` terms, so any :math:`\lambda\ge0` (:math:`10^{-300}` or :math:`10^{300}` included)
    is solved at full precision. For :math:`\lambda=0`: 0 if :math:`\sum_iw_i\le n`, else the
    positive root. A root always exists for valid arguments.

    eigenvalues: (p,) positive eigenvalues :math:`t_i` (floats are taken at their exact binary value).
    n: sample size (> 0). lam: ridge :math:`\lambda\ge0` (float, int, decimal string or mpf).
    dps: decimal digits (>= 15). weights: multiplicities :math:`w_i` (default 1 each).
    Returns an ``mpmath.mpf`` accurate to about ``dps`` digits.

    >>> mpmath.nstr(kappa_mp([1.0, 1.0], n=1, lam=0), 15)   # psi = 1/2: kappa = 1/psi - 1
    '1.0'
    """
    func = "kappa_mp"
    dps = _dps(func, dps)
    with mpmath.workdps(dps + 10):
        t, w = _spectrum_mp(func, eigenvalues, weights)
        n_mp = _mp_scalar(func, "n", n, positive=True)
        lam_mp = _mp_scalar(func, "lam", lam)
        k = _kappa_core(t, w, n_mp, lam_mp)
    with mpmath.workdps(dps):
        return +k


def _mp_scalar(func: str, name: str, x, *, positive: bool = False) -> mpmath.mpf:
    expected = ("a finite real number " + ("> 0" if positive else ">= 0")
                + " (float, int, decimal string, sympy or mpmath number)")
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if x is None or isinstance(x, (bool, np.bool_, complex, np.complexfloating, mpmath.mpc, np.ndarray, list,
                                   tuple, dict, set)):
        raise V.fail(func, name, expected, V.describe(x))
    try:
        v = _to_mp(x)
    except (TypeError, ValueError, AttributeError):
        raise V.fail(func, name, expected, V.describe(x)) from None
    if not isinstance(v, mpmath.mpf) or not mpmath.isfinite(v) or v < 0 or (positive and v == 0):
        raise V.fail(func, name, expected, repr(x))
    return v


def _coeffs_mp(func: str, teacher, s2: mpmath.mpf, noise_std, dps: int) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
    if isinstance(teacher, ExactTeacherCoefficients):
        tc = teacher
    else:
        s = sp.Float(mpmath.sqrt(s2), dps + 10)
        ns = sp.Float(_mp_scalar(func, "noise_std", noise_std), dps + 10)
        tc = _teacher_coefficients(func, teacher, s, ns, dps + 5)
    conv = [mpmath.mpf(sp.Float(sp.N(v, dps + 10), dps + 10)._mpf_) for v in (tc.c, tc.Ey2, tc.sigma_r2)]
    return conv[0], conv[1], conv[2]


def _problem_mp(func: str, eigenvalues, beta_star, n):
    t = V.spectrum(func, "eigenvalues", eigenvalues)
    b = V.vector(func, "beta_star", beta_star, size=t.size, nonzero=True)
    tm = [mpmath.mpf(float(x)) for x in t]
    bm = [mpmath.mpf(float(x)) ** 2 for x in b]
    n_mp = _mp_scalar(func, "n", n, positive=True)
    return tm, bm, n_mp


def kfac_alignment_mp(eigenvalues, beta_star, *, n, lam_G, teacher, noise_std=0.0, dps: int = 50) -> mpmath.mpf:
    r"""Theorem 3.9's KFAC alignment at ``dps`` digits (a second route to
    :func:`theory.single_index.kfac_alignment`; formula [R]):

    .. math::

        \cos=\frac{cA_1}{\lVert\beta^*\rVert\sqrt{c^2B+(c^2\kappa^2E+\sigma_r^2)T_2/(1-D_2)}}

    with :math:`\kappa` from :func:`kappa_mp` and the teacher coefficients at
    :math:`s^2=\sum_it_i\beta_i^2` from :func:`teacher_coefficients`.

    eigenvalues: (d,) positive eigenvalues of :math:`\Sigma`. beta_star: (d,) teacher direction in
    that eigenbasis. n: sample size. lam_G: ridge >= 0 (one value). teacher: name, sympy
    expression, callable (see :func:`teacher_coefficients`) or :class:`ExactTeacherCoefficients`.
    noise_std: label noise. dps: digits.
    """
    func = "kfac_alignment_mp"
    dps = _dps(func, dps)
    with mpmath.workdps(dps + 10):
        t, b, n_mp = _problem_mp(func, eigenvalues, beta_star, n)
        lam = _mp_scalar(func, "lam_G", lam_G)
        s2 = mpmath.fsum(ti * bi for ti, bi in zip(t, b))
        c, _, sr2 = _coeffs_mp(func, teacher, s2, noise_std, dps)
        tu, wu = _spectrum_mp(func, eigenvalues)
        k = _kappa_core(tu, wu, n_mp, lam)
        A1 = mpmath.fsum(bi * ti / (ti + k) for ti, bi in zip(t, b))
        B = mpmath.fsum(bi * (ti / (ti + k)) ** 2 for ti, bi in zip(t, b))
        E = mpmath.fsum(bi * ti / (ti + k) ** 2 for ti, bi in zip(t, b))
        T2 = mpmath.fsum(ti / (ti + k) ** 2 for ti in t) / n_mp
        # 1 - D2 = (1 - (1/n) sum t/(t+k)) + (1/n) sum t k/(t+k)^2, and the first bracket is lam/k at the
        # fixed point: two non-negative terms, no cancellation however small 1 - D2 is (psi = 1, tiny lam)
        if k > 0:
            one_minus_D2 = lam / k + mpmath.fsum(ti * k / (ti + k) ** 2 for ti in t) / n_mp
        else:  # lam = 0 and d <= n: kappa = 0, 1 - D2 = 1 - d/n
            one_minus_D2 = (n_mp - len(t)) / n_mp
        if one_minus_D2 <= 0:
            return mpmath.mpf(0)  # psi = 1, lam_G = 0: the ridgeless norm blows up
        sq = c * c * B + (c * c * k * k * E + sr2) * T2 / one_minus_D2
        cos = c * A1 / (mpmath.sqrt(mpmath.fsum(b)) * mpmath.sqrt(sq))
    with mpmath.workdps(dps):
        return +cos


def sgd_alignment_mp(eigenvalues, beta_star, *, n, teacher, noise_std=0.0, dps: int = 50) -> mpmath.mpf:
    r"""SGD alignment of docs/theory.md 4.2 at ``dps`` digits (a second route to
    :func:`theory.single_index.sgd_alignment`; formula [R]):
    :math:`\cos=c\,s^2/(\lVert\beta^*\rVert\sqrt{c^2\lVert\Sigma\beta^*\rVert^2+\mathbb E[y^2]\mathrm{tr}\Sigma/n})`.

    Arguments as :func:`kfac_alignment_mp` (without ``lam_G``).
    """
    func = "sgd_alignment_mp"
    dps = _dps(func, dps)
    with mpmath.workdps(dps + 10):
        t, b, n_mp = _problem_mp(func, eigenvalues, beta_star, n)
        s2 = mpmath.fsum(ti * bi for ti, bi in zip(t, b))
        c, Ey2, _ = _coeffs_mp(func, teacher, s2, noise_std, dps)
        Sb2 = mpmath.fsum(ti * ti * bi for ti, bi in zip(t, b))
        trS = mpmath.fsum(t)
        cos = c * s2 / (mpmath.sqrt(mpmath.fsum(b)) * mpmath.sqrt(c * c * Sb2 + Ey2 * trS / n_mp))
    with mpmath.workdps(dps):
        return +cos
