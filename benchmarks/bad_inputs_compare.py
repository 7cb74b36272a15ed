"""Tally: what every class of bad input does at the public boundary of ``compare`` (issue "Step 10").

The compare side of :mod:`benchmarks.bad_inputs` (same :class:`Spec` shape, same generators of bad
values, same outcomes; a README table generator can read ``CASES`` of both): for each public
function a user calls from Python - the statistics of :mod:`compare.stats` and
:meth:`Outcome.agreement <compare.engine.registry.Outcome.agreement>` / ``ordering``, settings
(``preset``, ``override``, ``parse_assignments``, ...), seeds (``stream``, ``trial_seeds``,
``rngs``, ...), the registry's decorators (``experiment``, ``claim``, ``figure``, ``ref``), the
runner (``claim_job``, ``figure_job``, ``run``, ``compute``, ``render_figure``), the cache and
codec (``Cache``, ``load``/``store``/``lock``, ``key_digest``, ``pack``/``unpack``,
``encode``/``decode``), plugins (``load``, ``load_one``), :func:`compare.claims.check` and Figure 3's
plot data (``Curve``, ``Figure3Data``) - a valid call is written down once and every bad call
replaces one argument (wrong type, NaN/inf, complex/object/bool arrays, empty, wrong shape, out of
range, unknown names, alpha outside (0, 1), df <= 0, ``workers=0``, sizes that do not fit memory).

Measured (compare, 1509 bad inputs over 62 public functions and methods): before the hardening 202
named (13.4%), 558 returned a result, 131 a NaN/inf result, 226 a ValueError naming nothing or not
in the house format, 141 one naming another function (``agreement_samples`` reporting
``control_variate_mean``'s argument), 173 TypeError, 48 AttributeError, 14 KeyError, 5 IndexError,
4 OverflowError, 1 ZeroDivisionError, 1 UFuncTypeError, 1 hung (``noncentrality_for_power(crit=inf)``);
the 4 sizes that do not fit were not run (``trial_seeds(stop=2**62)`` and ``rngs(n=2**62)`` fill
memory, ``compute(workers=10**6)`` forks a million processes, ``run(workers=10**6)`` returned:
``--no-huge`` leaves them out). After: 1509 named (100%), 0.2 s.

Run: ``python benchmarks/bad_inputs_compare.py [--only compare.stats] [--timeout 10] [--details] [--strict]``.
Exit status 1 only with ``--strict`` when some bad input is not ``named``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, ".."))
sys.path.insert(0, _HERE)

from bad_inputs import (Bad, Spec, bad_choice, bad_flag, bad_integer, bad_real, bad_vector,  # noqa: E402
                        run)

# =============================================================================================
# generators of bad values for the compare API's kinds of argument
# =============================================================================================


def bad_alpha(*, valid: float = 0.05) -> list[Bad]:
    """A probability in the open interval (0, 1)."""
    return bad_real(0, 1, True, True, valid=valid)


def bad_df() -> list[Bad]:
    """Degrees of freedom: a real number > 0 (``inf`` and ``None``: a known s.e.)."""
    return [("range", "zero", 0), ("range", "negative", -3.0), ("nonfinite", "NaN", float("nan")),
            ("nonfinite", "-inf", -float("inf")), ("dtype", "bool", True), ("dtype", "complex", 3 + 1j),
            ("type", "numeric string", "5"), ("shape", "array of 2", np.array([5.0, 5.0]))]


def bad_samples(valid, *, min_size: int = 2, nonfinite: bool = True) -> list[Bad]:
    """Per-trial samples: a real 1-D array of at least ``min_size`` values (finite unless not ``nonfinite``)."""
    v = np.asarray(valid, dtype=float)
    out: list[Bad] = [b for b in bad_vector(v, nonzero=False) if b[1] not in ("wrong length", "2-D")
                      and (nonfinite or b[0] != "nonfinite")]
    out += [("shape", "too few", v[: min_size - 1]), ("shape", "ragged list", [[1.0, 2.0], [3.0]])]
    return out


def bad_name(*, empty_ok: bool = False) -> list[Bad]:
    out: list[Bad] = [("type", "None", None), ("type", "int", 3), ("type", "list", ["a"]),
                      ("type", "bytes", b"abc")]
    if not empty_ok:
        out.append(("range", "empty", ""))
    return out


def bad_callable() -> list[Bad]:
    return [("type", "None", None), ("type", "str", "abc"), ("type", "int", 3), ("type", "dict", {"a": 1})]


def bad_settings_class() -> list[Bad]:
    return [("type", "None", None), ("type", "int", 3), ("type", "a plain class", dict),
            ("type", "an instance instead of the class", _Tiny())]


def bad_mapping(*, unknown: str = "nope") -> list[Bad]:
    return [("type", "list", ["a=1"]), ("type", "str", "a=1"), ("type", "int", 3),
            ("type", "non-string key", {1: 2}), ("range", "unknown name", {unknown: 1.0})]


# =============================================================================================
# the valid inputs
# =============================================================================================

@dataclass(frozen=True, kw_only=True)
class _Tiny:
    """A settings dataclass for the registry's decorators (never registered by a valid call here)."""

    n: int = 3
    scale: float = 1.0

    @classmethod
    def preset(cls, size: str) -> "_Tiny":
        return cls()


def compare_specs() -> list[Spec]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from compare import stats
    from compare.engine import registry as R
    from compare.engine.cache import Cache
    from compare.engine.plugins import load as _load
    from compare.single_index.experiments import InstanceSettings
    from compare.single_index.plots import Curve

    _load()
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 0.1, 30)
    d = rng.normal(0.5, 1.0, 30)
    c = x + rng.normal(0.0, 0.05, 30)
    series = rng.normal(0.0, 1.0, 200)
    specs: list[Spec] = []

    def S(module, func, valid, bad, **kw):
        specs.append(Spec(module, func, valid, bad, **kw))

    M = "compare.stats"
    ctrl_bad = [("type", "None", None), ("type", "str", "abc"), ("type", "int", 1),
                ("shape", "pair of 1", [(c,)]), ("shape", "wrong length", [(c[:-1], 1.0)]),
                ("nonfinite", "NaN mean", [(c, float("nan"))]), ("nonfinite", "NaN in c", [(np.where(c > 1, np.nan, c), 1.0)]),
                ("dtype", "complex c", [(c + 1j, 1.0)]), ("dtype", "bool c", [(c > 1, 0.5)]),
                ("singular", "constant control", [(np.ones(30), 1.0)]),
                ("shape", "too many controls", [(c, 1.0)] * 28)]
    S(M, "t_critical", dict(alpha=0.05, df=10, sided="two"),
      dict(alpha=bad_alpha(), df=bad_df(), sided=bad_choice(("one", "two"))))
    S(M, "bonferroni", dict(alpha=0.05, m=3), dict(alpha=bad_alpha(), m=bad_integer(1)))
    S(M, "mean_se", dict(samples=x, axis=0),
      dict(samples=bad_samples(x)[:-2] + [("shape", "too few", x[:1]), ("shape", "ragged list", [[1.0, 2.0], [3.0]])],
           axis=[("integer", "out of range", 3), ("integer", "float", 0.5), ("integer", "bool", True),
                 ("type", "None", None)]))
    S(M, "batch_means", dict(series=series, n_batches=20),
      dict(series=bad_samples(series, min_size=40), n_batches=bad_integer(2)))
    S(M, "welch_df", dict(parts=[(0.1, 9), (0.2, 19)]),
      dict(parts=[("type", "None", None), ("type", "str", "abc"), ("shape", "empty", []),
                  ("shape", "pair of 1", [(0.1,)]), ("range", "negative variance", [(-0.1, 9)]),
                  ("range", "df 0", [(0.1, 0)]), ("nonfinite", "NaN variance", [(float("nan"), 9)]),
                  ("nonfinite", "NaN df", [(0.1, float("nan"))]), ("dtype", "complex", [(0.1j, 9)]),
                  ("dtype", "bool df", [(0.1, True)])]))
    S(M, "noncentrality_for_power", dict(crit=2.0, df=10, power=0.9, one_sided=False),
      dict(crit=bad_real(valid=2.0), df=bad_df(), power=bad_alpha(valid=0.9), one_sided=bad_flag()))
    agree = dict(measured=1.0, stderr=0.1, prediction=1.0, df=10, alpha=0.05, allowance=0.0, one_sided=False)
    S(M, "agreement", agree,
      dict(measured=bad_real(valid=1.0), stderr=bad_real(0, valid=0.1), prediction=bad_real(valid=1.0), df=bad_df(),
           alpha=bad_alpha(), allowance=bad_real(0, valid=0.0), one_sided=bad_flag()))
    S(M, "control_variate_mean", dict(samples=x, controls=[(c, 1.0)]),
      dict(samples=bad_samples(x), controls=ctrl_bad))
    S(M, "agreement_samples", dict(samples=x, prediction=1.0, alpha=0.05, allowance=0.0, one_sided=False, controls=()),
      dict(samples=bad_samples(x), prediction=bad_real(valid=1.0), alpha=bad_alpha(), allowance=bad_real(0),
           one_sided=bad_flag(), controls=ctrl_bad))
    S(M, "agreement_batch_means", dict(series=series, prediction=0.0, alpha=0.05, n_batches=20, allowance=0.0),
      dict(series=bad_samples(series, min_size=40), prediction=bad_real(valid=0.0), alpha=bad_alpha(),
           n_batches=bad_integer(2), allowance=bad_real(0)))
    S(M, "richardson", dict(a_d=x, p_d=1.0, a_2d=x, p_2d=1.0, alpha=0.05, controls_d=(), controls_2d=()),
      dict(a_d=bad_samples(x), p_d=bad_real(valid=1.0), a_2d=bad_samples(x), p_2d=bad_real(valid=1.0),
           alpha=bad_alpha(), controls_d=ctrl_bad, controls_2d=ctrl_bad))
    S(M, "extrapolate", dict(m1=1.0, se1=0.1, df1=18, m2=0.5, se2=0.05, df2=18, ratio=2.0, order=1.0, next_order=2.0),
      dict(m1=bad_real(valid=1.0), se1=bad_real(0, valid=0.1), df1=bad_df(), m2=bad_real(valid=0.5),
           se2=bad_real(0, valid=0.05), df2=bad_df(), ratio=bad_real(1, None, True, valid=2.0) + [
               ("range", "ratio**next_order overflows", 1e300)],
           order=bad_real(valid=1.0), next_order=bad_real(valid=2.0) + [("range", "= order", 1.0),
                                                                        ("range", "below order", 0.5)]))
    S(M, "exact", dict(measured=1.0, prediction=1.0, tolerance=1e-12, relative=False),
      dict(measured=bad_real(valid=1.0), prediction=bad_real(valid=1.0), tolerance=bad_real(0, valid=1e-12),
           relative=bad_flag()),
      call=lambda **kw: stats.exact(**kw).passed, label="exact")  # (a deterministic check's df is inf)
    ordb = dict(alpha=bad_alpha(), margin=bad_real(valid=0.0),
                reverse_alpha=[b for b in bad_alpha() if b[2] is not None])
    for fn in ("ordering_t", "ordering_sign", "ordering"):
        S(M, fn, dict(d=d, alpha=0.05, margin=0.0, reverse_alpha=None),
          dict(ordb, d=bad_samples(d, nonfinite=fn == "ordering_t", min_size=1 if fn == "ordering_sign" else 2)))
    pos = np.abs(x)
    neg = pos.copy()
    neg[0] = -1.0
    nan = pos.copy()
    nan[0] = np.nan
    lr_bad = [b for b in bad_vector(pos, nonzero=False) if b[0] != "nonfinite"] + [
        ("range", "negative entry", neg), ("nonfinite", "NaN", nan)]
    S(M, "log10_ratio", dict(a=pos, b=pos), dict(a=lr_bad, b=lr_bad), alt=("a", "b"))
    arow = stats.agreement(1.0, 0.1, 1.0, df=10, alpha=0.05).row()
    orow = stats.ordering(d, alpha=0.05).row()
    rows_bad = [("type", "None", None), ("type", "str", "abc"), ("type", "list of int", [1]),
                ("shape", "empty", []), ("range", "row without 'passed'", [{"measured": 1.0}])]
    S(M, "agreement_verdict", dict(checks=[arow]), dict(checks=rows_bad))
    S(M, "ordering_verdict", dict(checks=[orow]),
      dict(checks=rows_bad[:-1] + [("range", "row without 'shown'", [{"estimate": 1.0}])]))
    S(M, "deciding_row", dict(rows=[arow], verdict="holds"),
      dict(rows=rows_bad, verdict=bad_choice(("holds", "fails", "inconclusive", "contradicted"))))
    S("compare.engine.registry", "agreement", dict(rows=[arow], source="s", alpha=0.05),
      dict(rows=rows_bad, source=bad_name(), alpha=[b for b in bad_alpha() if b[2] is not None]),
      call=R.Outcome.agreement, label="Outcome.agreement")
    S("compare.engine.registry", "ordering", dict(rows=[orow], source="s", alpha=0.05),
      dict(rows=rows_bad[:-1], source=bad_name(), alpha=[b for b in bad_alpha() if b[2] is not None]),
      call=R.Outcome.ordering, label="Outcome.ordering")

    # ----------------------------------------------------------------- settings
    from compare.engine import settings as ST
    from compare.linrep.exact import C7Settings

    st7 = C7Settings.preset("fast")
    S("compare.engine.settings", "preset", dict(cls=C7Settings, size="fast"),
      dict(cls=bad_settings_class(), size=bad_choice(ST.SIZES)))
    S("compare.engine.settings", "override", dict(settings=st7, overrides={"kappa_x": 10.0}, strict=True),
      dict(settings=[("type", "None", None), ("type", "dict", {"a": 1}), ("type", "the class", C7Settings)],
           overrides=bad_mapping() + [("range", "value out of range", {"kappa_x": -1.0}),
                                      ("type", "value of wrong type", {"kappa_x": "abc"}),
                                      ("nonfinite", "NaN value", {"kappa_x": float("nan")})],
           strict=bad_flag()))
    S("compare.engine.settings", "parse_assignments", dict(items=["a=1"]),
      dict(items=[("type", "None", None), ("type", "a string", "a=1"), ("type", "list of int", [1]),
                  ("range", "no '='", ["a"]), ("range", "empty name", ["=1"])]))
    for fn in ("names", "as_dict"):
        S("compare.engine.settings", fn, dict(obj=st7),
          dict(obj=[("type", "None", None), ("type", "dict", {"a": 1}), ("type", "the class", C7Settings)]))

    # ----------------------------------------------------------------- seeds
    from compare.engine import seeds as SD

    S("compare.engine.seeds", "stream", dict(seed=0, path=("a", 1)),
      dict(seed=bad_integer(0), path=[("shape", "no parts", ()), ("type", "None part", (None,)),
                                      ("type", "bool part", (True,)), ("type", "list part", (["a"],))]),
      call=lambda seed, path: SD.stream(seed, *path))
    ss0 = SD.stream(0, "a")
    S("compare.engine.seeds", "trial_seeds", dict(ss=ss0, start=0, stop=3),
      dict(ss=[("type", "None", None), ("type", "int", 3), ("type", "Generator", np.random.default_rng(0))],
           start=bad_integer(0), stop=bad_integer(0) + [("integer", "huge (2**62)", 2**62)]))
    S("compare.engine.seeds", "generators", dict(seeds=[ss0]),
      dict(seeds=[("type", "None", None), ("type", "list of int", [1]), ("type", "str", "abc")]))
    S("compare.engine.seeds", "rngs", dict(seed=0, path=("a",), n=3),
      dict(seed=bad_integer(0), n=bad_integer(0) + [("integer", "huge (2**62)", 2**62)],
           path=[("shape", "no parts", ())]),
      call=lambda seed, path, n: SD.rngs(seed, *path, n=n))

    # ----------------------------------------------------------------- registry
    G = "compare.engine.registry"
    one = lambda s: 1  # noqa: E731
    S(G, "experiment", dict(name="bench.x", settings=_Tiny, trials=one, combine=R._stack, requires=R._no_requirements,
                           stream=None, block=None, cost=1.0, threads=1, batched=False, replace=False),
      dict(name=bad_name(), settings=bad_settings_class(), trials=bad_callable(), combine=bad_callable(),
           requires=bad_callable(), stream=[("type", "int", 3), ("type", "str", "abc"), ("shape", "empty", ())],
           block=[b for b in bad_integer(1) if b[2] is not None],
           cost=[b for b in bad_real(0, None, True, valid=1.0) if b[2] is not None],
           threads=[("integer", "zero", 0), ("integer", "float", 1.5), ("integer", "bool", True),
                    ("type", "str", "abc")],
           batched=bad_flag(), replace=bad_flag()))
    S(G, "claim", dict(id="BENCH1", paper_ref="p", theory_ref="t", kind="exact", statement="s", settings=_Tiny,
                      reads=R._no_requirements, reconstructed=True, figure=None, replace=False),
      dict(id=bad_name(), paper_ref=bad_name(empty_ok=True), theory_ref=bad_name(empty_ok=True),
           kind=bad_choice(R.KINDS), statement=bad_name(), settings=bad_settings_class(), reads=bad_callable(),
           reconstructed=bad_flag(), figure=[("type", "int", 3), ("range", "empty", "")], replace=bad_flag()))
    S(G, "figure", dict(name="benchfig", title="t", caption="c", paper_ref="p", settings=_Tiny,
                       reads=R._no_requirements, claims=(), reconstructed=True, replace=False),
      dict(name=bad_name(), title=[("type", "None", None), ("type", "int", 3)],
           caption=[("type", "None", None), ("type", "int", 3)], paper_ref=bad_name(empty_ok=True),
           settings=bad_settings_class(), reads=bad_callable(),
           claims=[("type", "str", "C1"), ("type", "None", None), ("type", "tuple of int", (1,))],
           reconstructed=bad_flag(), replace=bad_flag()))
    S(G, "ref", dict(name="linrep.sweep", settings=st7),
      dict(name=bad_name(), settings=[("type", "None", None), ("type", "dict", {"a": 1}),
                                      ("type", "the class", C7Settings)]))
    S(G, "order_key", dict(claim_id="C3"), dict(claim_id=bad_name()))

    # ----------------------------------------------------------------- runner
    from compare.engine import runner as RU

    job_bad = dict(size=bad_choice(ST.SIZES), seed=bad_integer(0),
                   overrides=[b for b in bad_mapping() if b[1] != "str"], strict=bad_flag())
    S("compare.engine.runner", "claim_job", dict(claim_id="C3", size="fast", seed=0, overrides=None, strict=True),
      dict(job_bad, claim_id=bad_name() + [("range", "unknown claim", "C999")]))
    S("compare.engine.runner", "figure_job", dict(name="fig1", size="fast", seed=0, overrides=None, strict=True),
      dict(job_bad, name=bad_name() + [("range", "unknown figure", "fig99")]))
    tmp = tempfile.mkdtemp(prefix="bad-inputs-compare-")
    atexit.register(shutil.rmtree, tmp, True)
    S("compare.engine.runner", "run", dict(jobs=[], workers=1, scheduler=None, cache=None, plugins=(),
                                           progress=False, desc="x", on_result=None),
      dict(jobs=[("type", "None", None), ("type", "list of int", [1]), ("type", "str", "C1")],
           workers=bad_integer(1) + [("integer", "zero", 0), ("integer", "-2", -2), ("integer", "huge", 10**6)],
           cache=[("type", "str", tmp), ("type", "int", 1)],
           plugins=[("type", "None", None), ("type", "a string", "a"), ("type", "list of int", [1])],
           progress=bad_flag(), desc=[("type", "None", None), ("type", "int", 1)],
           on_result=[("type", "int", 1), ("type", "str", "f")]))
    inst = InstanceSettings(d=4, eps=0.5)
    S("compare.engine.runner", "compute", dict(name="single_index.instance", settings=inst, seed=0, workers=1,
                                               scheduler=None, cache=None, plugins=()),
      dict(name=bad_name() + [("range", "unknown", "nope")],
           settings=[("type", "None", None), ("type", "other settings", st7)], seed=bad_integer(0),
           workers=bad_integer(1) + [("integer", "zero", 0), ("integer", "huge", 10**6)],
           cache=[("type", "str", tmp)], plugins=[("type", "None", None), ("type", "list of int", [1])]))

    def _render(fig):
        return RU.render_figure(fig() if callable(fig) else fig)

    def _fig():
        import matplotlib.pyplot as plt

        return plt.figure(figsize=(1, 1))

    S("compare.engine.runner", "render_figure", dict(fig=_fig),
      dict(fig=[("type", "None", None), ("type", "int", 1), ("type", "str", "abc")]),
      call=_render)

    # ----------------------------------------------------------------- cache and codec
    from compare.engine import cache as CA
    from compare.engine import codec as CO

    key = {"experiment": "x", "seed": 0}
    S("compare.engine.cache", "Cache", dict(root=tmp, version="v", enabled=True),
      dict(root=[("type", "None", None), ("type", "int", 1), ("range", "empty", "")],
           version=[("type", "int", 1), ("type", "None", None)], enabled=bad_flag()))
    cache = Cache(root=tmp, version="v")
    kbad = [("type", "None", None), ("type", "list", [1]), ("type", "set in key", {"a": {1}}),
            ("type", "object in key", {"a": object()})]
    nbad = [("type", "None", None), ("type", "int", 1), ("range", "a path", "a/b"), ("range", "hidden", ".x"),
            ("range", "empty", "")]
    S("compare.engine.cache", "load", dict(key=key, namespace="experiments"), dict(key=kbad, namespace=nbad),
      call=cache.load, label="Cache.load")
    S("compare.engine.cache", "store", dict(key=key, value=np.ones(3), namespace="experiments"),
      dict(key=kbad, namespace=nbad, value=[("type", "object", object()), ("dtype", "object array", np.array([None])),
                                            ("type", "set", {1})]),
      call=cache.store, label="Cache.store")
    S("compare.engine.cache", "lock", dict(key=key, namespace="experiments", wait=False),
      dict(key=kbad, namespace=nbad, wait=bad_flag()), call=lambda **kw: cache.lock(**kw).release(),
      label="Cache.lock")
    S("compare.engine.cache", "key_digest", dict(key=key), dict(key=kbad))
    S("compare.engine.cache", "pack", dict(key=key, value=np.ones(2), version="v"),
      dict(key=kbad, value=[("type", "object", object())], version=[("type", "int", 1), ("type", "None", None)]))
    raw = CA.pack(key, np.ones(2), version="v")
    S("compare.engine.cache", "unpack", dict(raw=raw, key=key),
      dict(raw=[("type", "None", None), ("type", "str", "abc"), ("type", "int", 1)], key=kbad[1:]))
    S("compare.engine.codec", "encode", dict(obj=[1.0, np.ones(2)]),
      dict(obj=[("type", "object", object()), ("dtype", "object array", np.array([None])), ("type", "set", {1}),
                ("type", "int key", {1: 2})]))
    tree, arrays = CO.encode([1.0, np.ones(2)])
    S("compare.engine.codec", "decode", dict(tree=tree, arrays=arrays),
      dict(tree=[("range", "array index out of range", [{"__array__": 5}]), ("type", "set", {1}),
                 ("range", "untrusted type", {"__dataclass__": "os:PathLike", "fields": {}}),
                 ("range", "bad float", {"__float__": "abc"})],
           arrays=[("type", "None", None), ("type", "int", 1)]))

    # ----------------------------------------------------------------- plugins, claims.check
    from compare import claims as CL  # noqa: F401

    S("compare.engine.plugins", "load", dict(plugins=()),
      dict(plugins=[("type", "None", None), ("type", "int", 1), ("type", "list of int", [1]),
                    ("range", "missing module", ["no_such_module_xyz"]), ("range", "missing file", ["/no/such.py"])]))
    S("compare.engine.plugins", "load_one", dict(spec="compare.linrep"),
      dict(spec=[("type", "None", None), ("type", "int", 1), ("range", "missing module", "no_such_module_xyz"),
                 ("range", "empty", "")]))
    S("compare.claims", "check", dict(claim_id="C3", size="fast", seed=0, settings=None, plugins=()),
      dict(claim_id=bad_name() + [("range", "unknown", "C999")], size=bad_choice(ST.SIZES), seed=bad_integer(0),
           settings=[b for b in bad_mapping() if b[1] != "str"],
           plugins=[("type", "None", None), ("type", "a string", "a"), ("type", "list of int", [1])]))

    # ----------------------------------------------------------------- figure 3's data
    xs = np.array([0.1, 1.0, 10.0])
    cv = dict(x=xs, x_dense=np.geomspace(0.1, 10.0, 7), theory_sgd=np.full(7, 0.5), theory_kfac=np.full(7, 0.7),
              sgd_mean=np.full(3, 0.5), sgd_se=np.full(3, 0.01), kfac_mean=np.full(3, 0.7), kfac_se=np.full(3, 0.01),
              network_mean=None, network_se=None, cap=None, theory_sgd_points=None, theory_kfac_points=None)

    def arr_bad(v, *, nonneg=False, optional=False):
        out = [b for b in bad_vector(v, nonzero=False) if not (optional and b[2] is None)]
        out += [("shape", "ragged list", [[1.0, 2.0], [3.0]])]
        if nonneg:
            n = np.array(v, dtype=float, copy=True)
            n[0] = -1.0
            out.append(("range", "negative entry", n))
        return out

    cbad = {k: arr_bad(v, nonneg=k.endswith("_se")) for k, v in cv.items() if v is not None}
    cbad.update(network_mean=arr_bad(np.full(3, 0.6), optional=True),
                network_se=arr_bad(np.full(3, 0.01), nonneg=True, optional=True),
                cap=arr_bad(np.full(7, 0.8), optional=True))
    # an optional array given alone (a mean without its s.e.) is judged with the partner present
    S("compare.single_index.plots", "Curve", dict(cv, network_mean=np.full(3, 0.6), network_se=np.full(3, 0.01)),
      cbad, alt=tuple(cv))
    curve = Curve(**cv)
    S("compare.single_index.plots", "Figure3Data",
      dict(left=curve, right=curve, psi=curve, d=10, N=5, psi_left=2.0, eps_left=0.5, lam_right=1.0, trials=4,
           teacher="tanh", student="relu", noise_std=0.1),
      dict(left=[("type", "None", None), ("type", "dict", {"a": 1})], right=[("type", "None", None)],
           psi=[("type", "int", 1)], d=bad_integer(1), N=bad_integer(1), trials=bad_integer(1),
           psi_left=bad_real(0, None, True, valid=2.0), eps_left=bad_real(0, 1, False, True),
           lam_right=bad_real(0, valid=1.0), teacher=bad_name(), student=bad_name(), noise_std=bad_real(0)))
    from compare.linrep import plots as LP

    # the linrep plots take the experiments' results: a valid call would need a run, so the valid
    # value is a placeholder the wrapper does not draw (only the bad calls reach the plot function)
    valid = object()
    for name, arg in (("plot_figure1", "res"), ("plot_figure2", "res"), ("plot_figure4", "res4"),
                      ("plot_figure5", "sw")):
        S("compare.linrep.plots", name, {arg: valid},
          {arg: [("type", "None", None), ("type", "int", 3), ("type", "dict", {"labels": ()}),
                 ("type", "Figure 3's Curve", curve)]},
          call=(lambda f: lambda **kw: None if next(iter(kw.values())) is valid else f(**kw))(getattr(LP, name)),
          label=name)
    return specs


_CASES: list[Spec] = []


def cases() -> list[Spec]:
    """The specifications, built once (importing the module runs nothing; ``CASES`` builds them)."""
    if not _CASES:
        _CASES.extend(compare_specs())
    return _CASES


def __getattr__(name: str) -> Any:
    if name == "CASES":  # ``from bad_inputs_compare import CASES``: the list of :class:`Spec`
        return cases()
    raise AttributeError(name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per call before it counts as hung")
    ap.add_argument("--details", action="store_true", help="list every bad input that was not named")
    ap.add_argument("--strict", action="store_true", help="exit 1 when some bad input is not named")
    ap.add_argument("--only", default="compare", help="module prefix to run (compare.stats, compare.engine, ...)")
    ap.add_argument("--no-huge", action="store_true",
                    help="leave out the sizes that do not fit memory (before the hardening they fork a million "
                         "workers or loop 2**62 times)")
    args = ap.parse_args(argv)
    specs = [s for s in cases() if s.module.startswith(args.only)]
    if args.no_huge:
        specs = [Spec(s.module, s.func, s.valid, {a: [b for b in bs if "huge" not in b[1]] for a, bs in s.bad.items()},
                      s.call, s.label, s.alt) for s in specs]
    res = run(specs, timeout=args.timeout, details=args.details)
    return 1 if args.strict and res["named"] < res["total"] else 0


if __name__ == "__main__":
    sys.exit(main())
