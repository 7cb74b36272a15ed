"""Every class of bad input to every public function of the compare API raises a named ValueError;
legal extremes of the statistics give finite (or documented) answers.

Property (issue "Step 10", compare side): for each public function a user calls from Python (the
statistics, ``Outcome.agreement`` / ``ordering``, settings, seeds, the registry's decorators, the
runner, the cache and codec, plugins, ``claims.check`` and Figure 3's plot data), hypothesis replaces
one argument of a valid call by a generated bad value of one of the classes

    type (None, str, dict, bytes, object), dtype (complex / object / bool / string arrays, bool and
    complex scalars), shape (scalars for arrays, ragged lists, too few values, wrong lengths),
    nonfinite (NaN / inf), range (alpha outside (0, 1), df <= 0, negative s.e., unknown names),
    integer (bool, float - even integral -, string, out of range, sizes that do not fit memory),
    singular (constant or collinear control variates)

and the call must raise ``ValueError("FUNC: argument 'NAME' must ...; got ....")`` naming the
function called and the argument replaced (a length that is wrong only relative to another argument
may name either). The hypothesis profile is that of ``tests/conftest.py``: derandomised under ``make test``
(every run draws the same examples), random and 20 times as many under ``make test-deep``. The catalogue of fixed cases with counts before and after is
``benchmarks/bad_inputs_compare.py``.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compare import claims as CL
from compare import stats
from compare.engine import cache as CA
from compare.engine import codec as CO
from compare.engine import plugins as PL
from compare.engine import registry as R
from compare.engine import runner as RU
from compare.engine import seeds as SD
from compare.engine import settings as ST
from compare.linrep.exact import C7Settings
from compare.single_index.experiments import InstanceSettings
from compare.single_index.plots import Curve, Figure3Data
from tests.conftest import PROPERTY, examples
from tests.strategies import TYPE_BAD, Fn, check, choice_bad, flag_bad, integer_bad, optional, tag, real_bad

# ============================================================================================
# strategies of bad values for the compare API's kinds of argument (the generic ones: tests/strategies.py)
# ============================================================================================

TYPE_BAD_NOT_NONE = optional(TYPE_BAD)


def int_bad(low: int, high: int | None = None, *, none_ok: bool = False) -> st.SearchStrategy:
    return integer_bad(low, high, allow_none=none_ok)


def prob_bad(*, none_ok: bool = False) -> st.SearchStrategy:
    s = real_bad(0.0, 1.0, low_open=True, high_open=True, valid=0.05)
    return optional(s) if none_ok else s


def df_bad() -> st.SearchStrategy:
    return st.one_of(tag("range", st.floats(-1e300, 0.0)), tag("nonfinite", st.sampled_from([math.nan, -math.inf])),
                     tag("dtype", st.sampled_from([True, 3 + 1j])), TYPE_BAD_NOT_NONE,
                     tag("shape", st.just(np.array([5.0, 5.0]))))


def int_bad(low: int, high: int | None = None, *, none_ok: bool = False) -> st.SearchStrategy:
    options = [
        tag("integer", st.sampled_from([True, False, np.bool_(True)])),
        tag("integer", st.integers(low, low + 100).map(float)),           # integral floats too
        tag("integer", st.integers(low, low + 100).map(str)),
        tag("integer", st.integers(-10**30, low - 1)),
        tag("nonfinite", st.sampled_from([math.nan, math.inf])),
        tag("dtype", st.just(complex(low + 1, 1))),
        tag("shape", st.just(np.array([low + 1, low + 1]))),
        TYPE_BAD_NOT_NONE if none_ok else TYPE_BAD,
    ]
    if high is not None:
        options.append(tag("integer", st.integers(high + 1, 2**80)))
    return st.one_of(*options)


def flag_bad() -> st.SearchStrategy:
    return tag("type", st.one_of(st.integers(-5, 5), st.text(max_size=5), st.none(),
                                  st.just(np.array([True, False])), st.floats(0, 1)))


def choice_bad(options: tuple) -> st.SearchStrategy:
    return st.one_of(tag("range", st.text(max_size=8).filter(lambda s: s not in options)),
                     tag("type", st.sampled_from([None, 1, 1.5, (options[0],), [options[0]],
                                                   np.array([options[0], options[0]])])))


def text_bad(*, empty_ok: bool = False, none_ok: bool = False) -> st.SearchStrategy:
    options = [tag("type", st.one_of(st.integers(), st.floats(allow_nan=False), st.binary(min_size=1, max_size=4),
                                      st.lists(st.text(max_size=3), max_size=2), st.sampled_from([{"a": 1}, 1j])))]
    if not none_ok:
        options.append(tag("type", st.none()))
    if not empty_ok:
        options.append(tag("range", st.just("")))
    return st.one_of(*options)


def callable_bad(*, none_ok: bool = False) -> st.SearchStrategy:
    vals = [1, 1.5, "f", {"a": 1}, [len], int] + ([] if none_ok else [None])
    return tag("type", st.sampled_from(vals))


def _put_into(v: np.ndarray) -> Callable:
    """``(i, value) -> v`` with entry ``i mod size`` replaced by ``value`` (a copy)."""
    def put(args):
        i, val = args
        a = v.copy()
        a[i % a.size] = val
        return a

    return put


def samples_bad(v: np.ndarray, *, min_size: int = 2, finite: bool = True) -> st.SearchStrategy:
    """Bad per-trial samples: scalars, ragged or too short sequences, non-real dtypes, other types, and
    (``finite``) arrays with NaN or inf at a generated place."""
    v = np.asarray(v, dtype=float)

    put = _put_into(v)

    options = [
        tag("shape", st.one_of(st.floats(-1e3, 1e3), st.just([[1.0, 2.0], [3.0]]),
                                hnp.arrays(float, st.integers(0, min_size - 1), elements=st.floats(-1, 1)))),
        tag("dtype", st.one_of(st.floats(-1e3, 1e3).map(lambda im: v + 1j * im), st.just(v.astype(object)),
                                hnp.arrays(bool, v.shape), st.just(v.astype(str)))),
        TYPE_BAD,
    ]
    if finite:
        options.append(tag("nonfinite", st.tuples(st.integers(0, 10**6),
                                                   st.sampled_from([np.nan, np.inf, -np.inf])).map(put)))
    return st.one_of(*options)


def controls_bad(c: np.ndarray) -> st.SearchStrategy:
    T = c.size
    return st.one_of(
        TYPE_BAD_NOT_NONE, tag("type", st.just(None)),
        tag("shape", st.integers(1, T - 1).map(lambda n: [(c[:n], 1.0)])),
        tag("shape", st.just([(c,)])),
        tag("shape", st.integers(T - 2, T + 3).map(lambda k: [(c + i, 1.0) for i in range(k)])),
        tag("nonfinite", st.sampled_from([[(c, math.nan)], [(np.where(c > c.mean(), np.inf, c), 1.0)]])),
        tag("dtype", st.sampled_from([[(c + 1j, 1.0)], [(c > c.mean(), 0.5)], [(c, 1j)]])),
        tag("singular", st.floats(-1e3, 1e3).map(lambda a: [(np.full(T, a), 0.0)])),      # constant control
        tag("singular", st.floats(0.5, 4.0).map(lambda a: [(c, 1.0), (a * c, 0.0)])),    # collinear controls
    )


def metric_bad(v: np.ndarray) -> st.SearchStrategy:
    v = np.asarray(v, dtype=float)

    put = _put_into(v)

    return st.one_of(
        tag("range", st.tuples(st.integers(0, 99), st.floats(-1e300, -1e-300)).map(put)),
        tag("nonfinite", st.tuples(st.integers(0, 99), st.just(np.nan)).map(put)),
        tag("dtype", st.one_of(st.just(v + 1j), st.just(v.astype(object)), st.just(v > 1))),
        TYPE_BAD,
        tag("shape-relative", hnp.arrays(float, st.integers(0, 40).filter(lambda n: n != v.size),
                                          elements=st.floats(0.0, 10.0))),
    )


def mapping_bad(valid_names: list[str], *, none_ok: bool = True) -> st.SearchStrategy:
    return st.one_of(
        tag("type", st.sampled_from(["a=1", ["a=1"], 3, ("a", 1)] + ([] if none_ok else [None]))),
        tag("type", st.integers().map(lambda k: {k: 1.0})),
        tag("range", st.text(min_size=1, max_size=8).filter(lambda s: s not in valid_names and "." not in s)
             .map(lambda s: {s: 1.0})),
    )


def settings_class_bad() -> st.SearchStrategy:
    return tag("type", st.sampled_from([None, 3, "C7Settings", dict, C7Settings.preset("fast")]))


def settings_instance_bad() -> st.SearchStrategy:
    return tag("type", st.sampled_from([None, 3, {"a": 1}, C7Settings, "x"]))


def rows_bad(key: str) -> st.SearchStrategy:
    return st.one_of(TYPE_BAD, tag("shape", st.just([])),
                     tag("type", st.lists(st.integers(), min_size=1, max_size=3)),
                     tag("range", st.dictionaries(st.text(max_size=4).filter(lambda s: s != key),
                                                   st.floats(allow_nan=False), max_size=3).map(lambda d: [d])))


def strings_bad() -> st.SearchStrategy:
    return st.one_of(tag("type", st.sampled_from([None, 1, "compare.linrep", b"x"])),
                     tag("type", st.lists(st.integers(), min_size=1, max_size=2)))


# ============================================================================================
# every public function: a valid call and the bad values of each argument
# ============================================================================================

@dataclass(frozen=True, kw_only=True)
class _Tiny:
    n: int = 3

    @classmethod
    def preset(cls, size: str) -> "_Tiny":
        return cls()


def _functions() -> list[Fn]:
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 0.1, 30)
    d = rng.normal(0.5, 1.0, 30)
    c = x + rng.normal(0.0, 0.05, 30)
    series = rng.normal(0.0, 1.0, 200)
    out: list[Fn] = []

    def add(label, call, valid, bad, alt=()):
        out.append(Fn(label, call, valid, bad, alt))

    real = real_bad(valid=1.0)
    nonneg = real_bad(0.0, valid=0.1)
    add("t_critical", stats.t_critical, dict(alpha=0.05, df=10, sided="two"),
        dict(alpha=prob_bad(), df=df_bad(), sided=choice_bad(("one", "two"))))
    add("bonferroni", stats.bonferroni, dict(alpha=0.05, m=3), dict(alpha=prob_bad(), m=int_bad(1)))
    add("mean_se", stats.mean_se, dict(samples=x, axis=0),
        dict(samples=samples_bad(x), axis=st.one_of(tag("integer", st.integers(1, 10**6)),
                                                    tag("integer", st.integers(-10**6, -2)),
                                                    tag("integer", st.sampled_from([0.0, True, "0", None])))))
    add("batch_means", stats.batch_means, dict(series=series, n_batches=20),
        dict(series=samples_bad(series, min_size=40), n_batches=int_bad(2)))
    add("welch_df", stats.welch_df, dict(parts=[(0.1, 9), (0.2, 19)]),
        dict(parts=st.one_of(TYPE_BAD, tag("shape", st.sampled_from([[], [(0.1,)], [(0.1, 9, 1)]])),
                             tag("range", st.floats(-1e300, -1e-300).map(lambda v: [(v, 9)])),
                             tag("range", st.floats(-1e3, 0.0).map(lambda f: [(0.1, f)])),
                             tag("nonfinite", st.sampled_from([[(math.nan, 9)], [(0.1, math.nan)], [(math.inf, 9)]])),
                             tag("dtype", st.sampled_from([[(0.1j, 9)], [(0.1, True)], [(True, 9)]])))))
    add("noncentrality_for_power", stats.noncentrality_for_power, dict(crit=2.0, df=10, power=0.9, one_sided=False),
        dict(crit=real_bad(valid=2.0), df=df_bad(), power=prob_bad(), one_sided=flag_bad()))
    add("agreement", stats.agreement, dict(measured=1.0, stderr=0.1, prediction=1.0, df=10, alpha=0.05),
        dict(measured=real, stderr=nonneg, prediction=real, df=df_bad(), alpha=prob_bad(), allowance=nonneg,
             one_sided=flag_bad()))
    add("control_variate_mean", stats.control_variate_mean, dict(samples=x, controls=[(c, 1.0)]),
        dict(samples=samples_bad(x), controls=controls_bad(c)), alt=("samples", "controls"))
    add("agreement_samples", stats.agreement_samples, dict(samples=x, prediction=1.0, alpha=0.05, controls=[(c, 1.0)]),
        dict(samples=samples_bad(x), prediction=real, alpha=prob_bad(), allowance=nonneg, one_sided=flag_bad(),
             controls=controls_bad(c)), alt=("samples", "controls"))
    add("agreement_batch_means", stats.agreement_batch_means, dict(series=series, prediction=0.0, alpha=0.05),
        dict(series=samples_bad(series, min_size=40), prediction=real, alpha=prob_bad(), n_batches=int_bad(2),
             allowance=nonneg))
    add("richardson", stats.richardson, dict(a_d=x, p_d=1.0, a_2d=x, p_2d=1.0, alpha=0.05, controls_d=[(c, 1.0)],
                                             controls_2d=[(c, 1.0)]),
        dict(a_d=samples_bad(x), a_2d=samples_bad(x), p_d=real, p_2d=real, alpha=prob_bad(),
             controls_d=controls_bad(c), controls_2d=controls_bad(c)),
        alt=("a_d", "a_2d", "controls_d", "controls_2d"))
    add("extrapolate", stats.extrapolate, dict(m1=1.0, se1=0.1, df1=18, m2=0.5, se2=0.05, df2=18, ratio=2.0,
                                               order=1.0, next_order=2.0),
        dict(m1=real, se1=nonneg, df1=df_bad(), m2=real, se2=nonneg, df2=df_bad(),
             ratio=st.one_of(real_bad(1.0, low_open=True, valid=2.0),
                             tag("range", st.floats(1e200, 1e300))),          # ratio**next_order overflows
             order=real_bad(valid=1.0), next_order=st.one_of(real_bad(valid=2.0), tag("range", st.floats(-1e3, 1.0)))))
    add("exact", stats.exact, dict(measured=1.0, prediction=1.0, tolerance=1e-12),
        dict(measured=real, prediction=real, tolerance=real_bad(0.0, valid=1e-12), relative=flag_bad()))
    ordering_bad = dict(alpha=prob_bad(), margin=real_bad(valid=0.0), reverse_alpha=prob_bad(none_ok=True))
    add("ordering_t", stats.ordering_t, dict(d=d, alpha=0.05), dict(ordering_bad, d=samples_bad(d)))
    add("ordering_sign", stats.ordering_sign, dict(d=d, alpha=0.05),
        dict(ordering_bad, d=samples_bad(d, min_size=1, finite=False)))
    add("ordering", stats.ordering, dict(d=d, alpha=0.05), dict(ordering_bad, d=samples_bad(d, finite=False)))
    pos = np.abs(x)
    add("log10_ratio", stats.log10_ratio, dict(a=pos, b=pos), dict(a=metric_bad(pos), b=metric_bad(pos)),
        alt=("a", "b"))
    arow = stats.agreement(1.0, 0.1, 1.0, df=10, alpha=0.05).row()
    orow = stats.ordering(d, alpha=0.05).row()
    add("agreement_verdict", stats.agreement_verdict, dict(checks=[arow]), dict(checks=rows_bad("passed")))
    add("ordering_verdict", stats.ordering_verdict, dict(checks=[orow]), dict(checks=rows_bad("shown")))
    add("deciding_row", stats.deciding_row, dict(rows=[arow], verdict="holds"),
        dict(rows=rows_bad("passed"), verdict=choice_bad(stats.VERDICTS)))
    add("Outcome.agreement", R.Outcome.agreement, dict(rows=[arow], source="s", alpha=0.05),
        dict(rows=rows_bad("passed"), source=text_bad(), alpha=prob_bad(none_ok=True)))
    add("Outcome.ordering", R.Outcome.ordering, dict(rows=[orow], source="s", alpha=0.05),
        dict(rows=rows_bad("shown"), source=text_bad(), alpha=prob_bad()))

    st7 = C7Settings.preset("fast")
    names7 = ST.names(st7)
    add("preset", ST.preset, dict(cls=C7Settings, size="fast"),
        dict(cls=settings_class_bad(), size=choice_bad(ST.SIZES)))
    add("override", ST.override, dict(settings=st7, overrides={"kappa_x": 10.0}),
        dict(settings=settings_instance_bad(), strict=flag_bad(),
             overrides=st.one_of(mapping_bad(names7, none_ok=False),
                                 tag("range", st.floats(-1e300, 0.999).map(lambda v: {"kappa_x": v})),
                                 tag("type", st.sampled_from([{"kappa_x": "abc"}, {"kappa_x": None}, {"n": "1.5"}])),
                                 tag("nonfinite", st.sampled_from([{"kappa_x": math.nan}, {"kappa_x": "inf"}])))))
    add("parse_assignments", ST.parse_assignments, dict(items=["a=1"]),
        dict(items=st.one_of(TYPE_BAD, tag("type", st.lists(st.integers(), min_size=1, max_size=2)),
                             tag("range", st.text(max_size=6).filter(lambda s: "=" not in s).map(lambda s: [s])),
                             tag("range", st.text(max_size=4).map(lambda s: ["  =" + s])))))
    for name in ("names", "as_dict", "leaves"):
        fn = getattr(ST, name)
        add(name, (lambda f: lambda obj: list(f(obj)))(fn), dict(obj=st7), dict(obj=settings_instance_bad()))

    ss0 = SD.stream(0, "a")
    path_bad = st.one_of(tag("shape", st.just(())), tag("type", st.sampled_from([(None,), (True,), (["a"],),
                                                                                 ({"a": 1},)])))
    add("stream", lambda seed, path: SD.stream(seed, *path), dict(seed=0, path=("a", 1)),
        dict(seed=int_bad(0), path=path_bad))
    add("path_words", lambda path: SD.path_words(*path), dict(path=("a",)), dict(path=path_bad))
    add("trial_seeds", SD.trial_seeds, dict(ss=ss0, start=0, stop=3),
        dict(ss=tag("type", st.sampled_from([None, 3, np.random.default_rng(0), "ss"])), start=int_bad(0),
             stop=st.one_of(int_bad(0), tag("integer", st.integers(SD.MAX_SEEDS + 1, 2**80)))))
    add("generators", SD.generators, dict(seeds=[ss0]),
        dict(seeds=tag("type", st.sampled_from([None, [1], "abc", ss0, [ss0, None]]))))
    add("rngs", lambda seed, path, n: SD.rngs(seed, *path, n=n), dict(seed=0, path=("a",), n=3),
        dict(seed=int_bad(0), path=path_bad, n=st.one_of(int_bad(0), tag("integer", st.integers(SD.MAX_GENERATORS + 1,
                                                                                                  2**80)))))

    one = lambda s: 1  # noqa: E731
    add("experiment", R.experiment, dict(name="test.x", settings=_Tiny, trials=one),
        dict(name=text_bad(), settings=settings_class_bad(), trials=callable_bad(), combine=callable_bad(),
             requires=callable_bad(), stream=tag("type", st.sampled_from([3, "abc", (), [1], 1.5])),
             block=int_bad(1, none_ok=True), cost=real_bad(0.0, low_open=True, valid=1.0),
             threads=int_bad(1, none_ok=True), batched=flag_bad(), replace=flag_bad()))
    add("claim", R.claim, dict(id="TEST1", paper_ref="p", theory_ref="t", kind="exact", statement="s", settings=_Tiny),
        dict(id=text_bad(), paper_ref=text_bad(empty_ok=True), theory_ref=text_bad(empty_ok=True),
             kind=choice_bad(R.KINDS), statement=text_bad(), settings=settings_class_bad(),
             reads=callable_bad(), reconstructed=flag_bad(), figure=text_bad(none_ok=True), replace=flag_bad()))
    add("figure", R.figure, dict(name="testfig", title="t", caption="c", paper_ref="p", settings=_Tiny),
        dict(name=text_bad(), title=tag("type", st.sampled_from([None, 3, b"x", ["t"]])),
             caption=tag("type", st.sampled_from([None, 3, b"x", ["c"]])), paper_ref=text_bad(empty_ok=True),
             settings=settings_class_bad(), reads=callable_bad(), claims=strings_bad(),
             reconstructed=flag_bad(), replace=flag_bad()))
    add("ref", R.ref, dict(name="linrep.sweep", settings=st7), dict(name=text_bad(), settings=settings_instance_bad()))
    add("order_key", R.order_key, dict(claim_id="C3"), dict(claim_id=text_bad()))

    claim_ids = list(R.CLAIMS)
    job_bad = dict(size=choice_bad(ST.SIZES), seed=int_bad(0), strict=flag_bad(),
                   overrides=mapping_bad(ST.names(R.CLAIMS["C3"].preset("fast"))))
    add("claim_job", RU.claim_job, dict(claim_id="C3", size="fast", seed=0),
        dict(job_bad, claim_id=st.one_of(text_bad(), tag("range", st.text(max_size=6).filter(
            lambda s: s not in claim_ids)))))
    fig_names = list(R.FIGURES)
    add("figure_job", RU.figure_job, dict(name="fig1", size="fast", seed=0),
        dict(job_bad, overrides=mapping_bad(ST.names(R.FIGURES["fig1"].preset("fast"))),
             name=st.one_of(text_bad(), tag("range", st.text(max_size=6).filter(lambda s: s not in fig_names)))))
    tmp = tempfile.mkdtemp(prefix="test-bad-inputs-")
    workers_bad = st.one_of(tag("integer", st.sampled_from([0, True, 1.0, "2", None])),
                            tag("integer", st.integers(-10**6, -2)),
                            tag("integer", st.integers(RU.MAX_WORKERS + 1, 2**80)))
    common = dict(workers=workers_bad, cache=tag("type", st.sampled_from([tmp, 1, {"root": tmp}])),
                  plugins=strings_bad(), scheduler=tag("type", st.sampled_from([1, 1.5, ["tcp://x"]])))
    add("run", RU.run, dict(jobs=[]),
        dict(common, jobs=tag("type", st.sampled_from([None, [1], "C1", {"a": 1}, 3])), progress=flag_bad(),
             desc=tag("type", st.sampled_from([None, 1, b"x"])), on_result=callable_bad(none_ok=True)))
    add("compute", RU.compute, dict(name="single_index.instance", settings=InstanceSettings(d=4, eps=0.5), seed=0),
        dict(common, name=st.one_of(text_bad(), tag("range", st.sampled_from(["nope", "linrep"]))),
             settings=settings_instance_bad(), seed=int_bad(0)))
    add("render_figure", RU.render_figure, dict(fig=None), dict(fig=TYPE_BAD))

    key = {"experiment": "x", "seed": 0}
    cache = CA.Cache(root=tmp, version="v")
    key_bad = tag("type", st.sampled_from([None, [1], "k", {"a": {1}}, {"a": object()}, {1: 2}.keys()]))
    ns_bad = st.one_of(tag("type", st.sampled_from([None, 1, b"x"])),
                       tag("range", st.sampled_from(["", "a/b", ".hidden", "..", "/abs"])))
    add("Cache", CA.Cache, dict(root=tmp, version="v", enabled=True),
        dict(root=tag("type", st.sampled_from([None, 1, "", b"/tmp"])),
             version=tag("type", st.sampled_from([None, 1, b"v"])), enabled=flag_bad()))
    add("Cache.load", cache.load, dict(key=key, namespace="experiments"), dict(key=key_bad, namespace=ns_bad))
    value_bad = tag("type", st.sampled_from([object(), {1}, np.array([None]), {1: 2}, print]))
    add("Cache.store", cache.store, dict(key=key, value=np.ones(2), namespace="experiments"),
        dict(key=key_bad, namespace=ns_bad, value=value_bad))
    add("Cache.lock", lambda **kw: cache.lock(**kw).release(), dict(key=key, namespace="experiments", wait=False),
        dict(key=key_bad, namespace=ns_bad, wait=flag_bad()))
    add("key_digest", CA.key_digest, dict(key=key), dict(key=key_bad))
    add("pack", CA.pack, dict(key=key, value=np.ones(2), version="v"),
        dict(key=key_bad, value=value_bad, version=tag("type", st.sampled_from([None, 1, ""]))))
    add("unpack", CA.unpack, dict(raw=CA.pack(key, np.ones(2), version="v"), key=key),
        dict(raw=tag("type", st.sampled_from([None, "abc", 1, [1]])),
             key=tag("type", st.sampled_from([[1], "k", {"a": object()}]))))
    add("encode", CO.encode, dict(obj=[1.0, np.ones(2)]), dict(obj=value_bad))
    tree, arrays = CO.encode([1.0, np.ones(2)])
    add("decode", CO.decode, dict(tree=tree, arrays=arrays),
        dict(tree=st.one_of(tag("range", st.integers(1, 10**6).map(lambda i: [{"__array__": i}])),
                            tag("range", st.text(max_size=5).filter(lambda s: s not in ("inf", "-inf", "nan"))
                                 .map(lambda s: {"__float__": s})),
                            tag("range", st.sampled_from([{"__dataclass__": "os:PathLike", "fields": {}},
                                                           {"__dataclass__": "compare.stats:Agreement", "fields": {}}])),
                            tag("type", st.sampled_from([{1}, object()]))),
             arrays=tag("type", st.sampled_from([None, 1, [1], "a"]))))

    add("load", PL.load, dict(plugins=()),
        dict(plugins=st.one_of(strings_bad(), tag("range", st.sampled_from([["no_such_module_xyz"], ["/no/such.py"],
                                                                             [""]])))))
    add("load_one", PL.load_one, dict(spec="compare.linrep"),
        dict(spec=st.one_of(text_bad(), tag("range", st.sampled_from(["no_such_module_xyz", "/no/such.py"])))))
    add("check", CL.check, dict(claim_id="C3"),
        dict(claim_id=st.one_of(text_bad(), tag("range", st.text(max_size=6).filter(lambda s: s not in claim_ids))),
             size=choice_bad(ST.SIZES), seed=int_bad(0), plugins=strings_bad(),
             settings=mapping_bad(ST.names(R.CLAIMS["C3"].preset("fast")))))

    xs = np.array([0.1, 1.0, 10.0])
    cv = dict(x=xs, x_dense=np.geomspace(0.1, 10.0, 7), theory_sgd=np.full(7, 0.5), theory_kfac=np.full(7, 0.7),
              sgd_mean=np.full(3, 0.5), sgd_se=np.full(3, 0.01), kfac_mean=np.full(3, 0.7), kfac_se=np.full(3, 0.01),
              network_mean=np.full(3, 0.6), network_se=np.full(3, 0.01), cap=np.full(7, 0.8))

    def curve_bad(v: np.ndarray, *, se: bool) -> st.SearchStrategy:
        opts = [samples_bad(v, min_size=1),
                tag("shape-relative", st.integers(1, 12).filter(lambda n: n != v.size).map(lambda n: np.ones(n)))]
        if se:
            opts.append(tag("range", st.floats(-1e300, -1e-300).map(lambda e: np.full(v.size, e))))
        return st.one_of(*opts)

    add("Curve", Curve, cv, {k: curve_bad(v, se=k.endswith("_se")) for k, v in cv.items()}, alt=tuple(cv))
    curve = Curve(**cv)
    f3 = dict(left=curve, right=curve, psi=curve, d=10, N=5, psi_left=2.0, eps_left=0.5, lam_right=1.0, trials=4,
              teacher="tanh", student="relu", noise_std=0.1)
    curve_type_bad = tag("type", st.sampled_from([None, {"a": 1}, 3, cv]))
    add("Figure3Data", Figure3Data, f3,
        dict(left=curve_type_bad, right=curve_type_bad, psi=curve_type_bad, d=int_bad(1), N=int_bad(1),
             trials=int_bad(1), psi_left=real_bad(0.0, low_open=True, valid=2.0),
             eps_left=real_bad(0.0, 1.0, high_open=True), lam_right=real_bad(0.0), teacher=text_bad(),
             student=text_bad(), noise_std=real_bad(0.0)))
    from compare.linrep import plots as LP

    result_bad = tag("type", st.sampled_from([None, 3, {"labels": ()}, curve, np.ones(3)]))
    for name, arg in (("plot_figure1", "res"), ("plot_figure2", "res"), ("plot_figure4", "res4"),
                      ("plot_figure5", "sw")):
        add(name, getattr(LP, name), {arg: None}, {arg: result_bad})
    return out


FUNCTIONS = _functions()
#: examples per function (56 functions: about 640 generated bad inputs, under a second)
EXAMPLES = 12


def test_the_valid_calls_work():
    """The valid call of each function works (else its bad-input test proves nothing)."""
    for fn in FUNCTIONS:
        if fn.label in ("render_figure", "check") or fn.label.startswith("plot_figure"):  # covered elsewhere
            continue
        fn.call(**fn.valid)


def test_every_public_function_is_covered():
    """Each public function of the stats module and of the engine's user-facing modules has a strategy."""
    import inspect

    covered = {f.label for f in FUNCTIONS}
    skip = {"record", "error_record", "timed", "claims", "figures", "split", "files", "check_size", "convert",
            "canonical", "notice", "code_version", "trust_module", "execute", "init_worker", "one_line",
            "z_test", "z_critical", "paired_less", "batch_means_se", "check_specs"}
    missing = []
    for mod in (stats, R, ST, SD, RU, CA, CO, PL):
        for n, obj in vars(mod).items():
            if (not n.startswith("_") and inspect.isfunction(obj) and obj.__module__ == mod.__name__
                    and inspect.signature(obj).parameters and n not in covered and n not in skip):
                missing.append(f"{mod.__name__}.{n}")
    assert not missing, f"public functions with arguments but no bad-input strategy: {missing}"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=[f.label for f in FUNCTIONS])
def test_bad_input_raises_named_value_error(fn: Fn):
    arg_cls_value = st.sampled_from(sorted(fn.bad)).flatmap(lambda a: fn.bad[a].map(lambda cv: (a, cv[0], cv[1])))

    @settings(PROPERTY, max_examples=examples(EXAMPLES))
    @given(arg_cls_value)
    def run(acv):
        check(fn, *acv)

    run()


# --------------------------------------------------------------------------------------------
# the cases that hung, forked or filled memory before, pinned
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, func, name, needle", [
    (lambda: stats.noncentrality_for_power(math.inf, 10), "noncentrality_for_power", "crit", "finite"),
    (lambda: SD.trial_seeds(SD.stream(0, "a"), 0, 2**62), "trial_seeds", "stop", "EB of memory"),
    (lambda: SD.rngs(0, "a", n=2**62), "rngs", "n", "of memory"),
    (lambda: RU.compute("single_index.instance", InstanceSettings(d=4, eps=0.5), seed=0, workers=10**6), "compute",
     "workers", "forked copy"),
    (lambda: stats.agreement_samples([1.0, 2.0, 3.0], 1.0, alpha=0.05, controls=[(np.ones(3), 1.0)]),
     "agreement_samples", "controls", "at most T - 3"),
    (lambda: CL.check("C3", settings={"nosie_std": 0.0}), "check", "settings", "unknown setting 'nosie_std'"),
])
def test_pinned_cases(call, func, name, needle):
    with pytest.raises(ValueError, match=rf"^{re.escape(func)}: argument '{name}' must ") as info:
        call()
    assert needle in str(info.value), str(info.value)


# ============================================================================================
# legal extremes of the statistics: finite (or documented) answers
# ============================================================================================

ALPHAS = st.one_of(st.floats(1e-300, 1e-12), st.floats(1e-12, 1.0 - 1e-12), st.just(1.0 - 2**-53))
DFS = st.one_of(st.just(1), st.integers(1, 10**6), st.floats(1.0, 1e9), st.just(None), st.just(math.inf))
VALUES = st.one_of(st.just(0.0), st.floats(1e-100, 1e100), st.floats(-1e100, -1e-100))


@settings(PROPERTY, max_examples=examples(60))
@given(measured=VALUES, prediction=VALUES, se=st.one_of(st.just(0.0), st.floats(1e-100, 1e100)), df=DFS,
       alpha=st.one_of(st.floats(1e-100, 1e-12), st.floats(1e-12, 1.0 - 1e-12), st.just(1.0 - 2**-53)),
       allowance=st.one_of(st.just(0.0), st.floats(1e-100, 1e100)), one_sided=st.booleans())
def test_agreement_at_legal_extremes_is_finite(measured, prediction, se, df, alpha, allowance, one_sided):
    """df = 1 .. 1e9 and inf, alpha from 1e-100 to 1 - 2^-53, s.e., allowance and values from 1e-100 to
    1e100 (so that critical x s.e. and allowance / prediction stay below 1e300: beyond, the tolerance or
    ``detectable`` is a number float cannot hold): the critical value, tolerance and ``detectable`` are
    finite (``detectable`` is ``None`` for a zero prediction, and 0 when alpha >= the power 0.9 - the test
    then rejects that often with no error at all)."""
    a = stats.agreement(measured, se, prediction, df=df, alpha=alpha, allowance=allowance, one_sided=one_sided)
    assert math.isfinite(a.critical) and math.isfinite(a.tolerance), a
    # a one-sided test at alpha > 1/2 has a negative critical value t_{1-alpha}: the bound then requires
    # measured to be below the prediction by |t| s.e.
    assert a.tolerance >= 0 or (one_sided and alpha > 0.5), a
    if prediction == 0:
        assert a.detectable is None
    else:
        assert a.detectable is not None and math.isfinite(a.detectable) and a.detectable >= 0, a
        if alpha >= stats.POWER and allowance == 0:
            assert a.detectable == 0.0, a
    assert isinstance(a.passed, bool)


@settings(PROPERTY, max_examples=examples(25))
@given(crit=st.floats(1e-6, 1e300), df=st.one_of(st.floats(1.0, 1e6), st.just(None)),
       power=st.floats(0.01, 0.99), one_sided=st.booleans())
def test_noncentrality_is_finite_over_the_legal_range(crit, df, power, one_sided):
    """The noncentrality at power ``power`` is finite and >= 0 for every critical value up to 1e300 (the
    quadrature route where scipy's noncentral t fails), and 0 when the test rejects that often already."""
    lam = stats.noncentrality_for_power(crit, df, power=power, one_sided=one_sided)
    assert math.isfinite(lam) and lam >= 0, lam


def test_noncentrality_quadrature_agrees_with_scipy_where_both_work():
    """The quadrature fallback and scipy's noncentral t agree (relative 1e-9) where scipy is accurate."""
    for crit, df in ((3.0, 5.0), (10.0, 3.0), (50.0, 30.0), (4.0, 1.0)):
        for one_sided in (False, True):
            a = stats.noncentrality_for_power(crit, df, one_sided=one_sided)
            b = stats._noncentrality_quad(crit, df, stats.POWER, one_sided)
            assert abs(a - b) <= 1e-9 * a, f"crit {crit}, df {df}: scipy {a!r}, quadrature {b!r}, diff {a - b:.3e}"


@settings(PROPERTY, max_examples=examples(40))
@given(value=st.floats(-1e150, 1e150), T=st.integers(2, 200), alpha=ALPHAS, margin=st.floats(-1e150, 1e150))
def test_all_equal_samples_give_documented_answers(value, T, alpha, margin):
    """All-equal samples: s.e. 0 up to rounding, so the agreement holds with a tolerance at rounding level
    and the ordering is decided exactly when the s.e. is exactly 0; batch means likewise."""
    x = np.full(T, value)
    mean = float(np.mean(x))  # the value up to rounding (the sum of T equal values rounds)
    a = stats.agreement_samples(x, mean, alpha=alpha)
    assert a.stderr <= 4 * np.finfo(float).eps * abs(value) and a.passed and math.isfinite(a.tolerance), a
    o = stats.ordering(x, alpha=alpha, margin=margin)
    assert 0.0 <= o.p_value <= 1.0 and 0.0 <= o.reverse_p_value <= 1.0, o
    if o.stderr == 0.0:  # decided exactly: p = 0 / 1, or 1 / 1 at the margin
        assert o.verdict == ("holds" if mean > margin else "contradicted" if mean < margin else "inconclusive"), o
    s = stats.ordering_sign(x, alpha=alpha, margin=margin)
    assert 0.0 <= s.p_value <= 1.0 and 0.0 <= s.reverse_p_value <= 1.0, s
    m, se, df = stats.batch_means(np.full(2 * T, value), n_batches=2)
    assert abs(m - value) <= 4 * np.finfo(float).eps * abs(value) and se == 0.0 and df == 1


@settings(PROPERTY, max_examples=examples(30))
@given(alpha=ALPHAS, df=DFS, m=st.integers(1, 10**18), sided=st.sampled_from(["one", "two"]))
def test_critical_values_and_bonferroni_are_finite(alpha, df, m, sided):
    c = stats.t_critical(alpha, df, sided=sided)
    assert math.isfinite(c), c
    b = stats.bonferroni(alpha, m)
    assert 0.0 < b <= alpha


@settings(PROPERTY, max_examples=examples(30))
@given(scale=st.floats(1e-150, 1e150), T=st.integers(4, 60), seed=st.integers(0, 2**32), alpha=ALPHAS)
def test_richardson_and_control_variates_at_any_scale(scale, T, seed, alpha):
    """Samples at any scale (1e-150 .. 1e150) give finite Richardson and control-variate answers."""
    rng = np.random.default_rng(seed)
    a_d, a_2d = scale * (1 + rng.standard_normal(T)), scale * (1 + rng.standard_normal(T))
    ag, parts = stats.richardson(a_d, scale, a_2d, scale, alpha=alpha)
    assert math.isfinite(ag.tolerance) and all(math.isfinite(v) for v in parts.values()), (ag, parts)
    c = a_d + scale * 0.1 * rng.standard_normal(T)
    m, se, df = stats.control_variate_mean(a_d, [(c, float(np.mean(c)))])
    assert math.isfinite(m) and math.isfinite(se) and df == T - 2


def test_welch_df_of_known_variances_is_infinite():
    """Parts of zero variance carry no uncertainty: the documented answer is inf (a normal)."""
    assert stats.welch_df([(0.0, 3), (0.0, 5)]) == math.inf
    assert stats.welch_df([(1.0, 1.0), (1e-300, 1.0)]) == pytest.approx(1.0)
