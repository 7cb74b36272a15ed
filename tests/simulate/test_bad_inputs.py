"""Every class of bad input to every public function of ``simulate`` and every registered optimizer
factory raises a named ValueError; legal extremes give finite results.

Property (issue "Step 10"): for each public function (and each method a user calls), hypothesis
replaces one argument of a valid call by a generated bad value of one of the classes of
:mod:`tests.strategies` - shape, dtype (complex / object / bool / string), type, nonfinite,
nonsymmetric, singular (exactly rank-deficient at any scale 2^k), indefinite, range, integer, size
(2^40..2^80: refused by the memory bound before anything is allocated, never a MemoryError or a
hang), choice, flag, callable (teachers, students, operators and optimizers that raise, return
NaN / inf / complex / strings / a wrong shape / None) - and the call must raise
``ValueError("FUNC: argument 'NAME' must ...; got ....")`` naming the function called and the
argument replaced (the options of an optimizer are named under ``optimizer '<name>'``).

Legal extremes: condition numbers up to 1e6 (the covariances of the Figure 1 family, the inputs'
square roots, a training run, the one-step experiment with ridges 1e-8..1e4) give finite results,
and the positive-definiteness check accepts every such matrix while it rejects numerically
singular ones (smallest eigenvalue at or below d eps times the largest).

The examples are drawn under the session's property profile (tests/conftest.py: derandomised in
``make test``, broader and random in ``make test-deep``).
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulate import data as sd
from simulate import jacobian as sj
from simulate import linrep as sl
from simulate import matrix_optimizers as mo
from simulate import optimizers as so
from simulate import single_index as ss
from simulate import trials as stl
from tests.conftest import PROPERTY, examples
from tests.strategies import (OBJECT_BAD, RNG_BAD, TYPE_BAD, Boom, Fn, check, choice_bad, dtype_bad, flag_bad,
                              integer_bad, matrix_bad, nonfinite_bad, optional, options_bad, orth, raiser, rank_bad,
                              real_bad, shape_bad, size_bad, spd_bad, tag, vector_bad)

EPS = np.finfo(float).eps

# ============================================================================================
# strategies of the simulations' own kinds of argument
# ============================================================================================


def teacher_bad(names) -> st.SearchStrategy:
    """Teachers that are not a known name or a callable mapping arrays to finite reals of their shape."""
    return st.one_of(
        tag("range", st.text(max_size=8).filter(lambda s: s not in names)),
        tag("type", st.sampled_from([None, 1.5, 3, [np.tanh], np.ones(3)])),
        tag("callable", st.sampled_from([ZeroDivisionError, RuntimeError, TypeError, OverflowError, Boom])
            .map(raiser)),
        tag("callable", st.sampled_from([np.nan, np.inf, -np.inf]).map(
            lambda v: (lambda z: np.where(np.asarray(z) > 0.0, v, np.tanh(z))))),
        tag("callable", st.sampled_from([
            lambda z: np.asarray(z) + 1j,
            lambda z: np.full(np.shape(z), "a"),
            lambda z: np.ones(3),
            lambda z: None,
            lambda z: [[1.0], [1.0, 2.0]],
        ])),
    )


def student_bad() -> st.SearchStrategy:
    ok = np.tanh
    return st.one_of(
        tag("range", st.text(max_size=8).filter(lambda s: s not in ss.STUDENTS)),
        tag("type", st.sampled_from([None, 1.5, np.tanh, (np.tanh,), (np.tanh, np.tanh, np.tanh), ("tanh", "tanh")])),
        tag("callable", st.sampled_from([ZeroDivisionError, RuntimeError, Boom]).map(lambda e: (raiser(e), ok))),
        tag("callable", st.sampled_from([ZeroDivisionError, RuntimeError, Boom]).map(lambda e: (ok, raiser(e)))),
        tag("callable", st.sampled_from([
            (lambda h: np.full(np.shape(h), np.nan), ok),
            (ok, lambda h: np.full(np.shape(h), np.inf)),
            (lambda h: np.asarray(h) + 1j, ok),
            (lambda h: np.ones(3), ok),
            (ok, lambda h: None),
        ])),
    )


def _rule(name: str, step=None) -> SimpleNamespace:
    """A user optimizer object: ``init`` returns no state; ``step(F, G)`` (when given) gives what ``step`` returns."""
    rule = SimpleNamespace(name=name, init=lambda F, G: None)
    if step is not None:
        rule.step = lambda F, G, batch, state: step(F, G)
    return rule


def _boom(F, G):
    raise ZeroDivisionError("boom")


_NO_STEP = _rule("nostep")


def algorithm_bad(*, objects: bool = True) -> st.SearchStrategy:
    options = [
        tag("range", st.text(max_size=8).filter(lambda s: s not in so.REGISTRY)),
        tag("type", st.sampled_from([None, 1, 1.5, _NO_STEP, ["kfac"], so.SGD])),
    ]
    if objects:
        options.append(tag("callable", st.sampled_from([
            _rule("raising", _boom), _rule("junk", lambda F, G: None), _rule("junk", lambda F, G: (F, G)),
            _rule("junk", lambda F, G: (F, "G", None)), _rule("junk", lambda F, G: (F, G[:, :-1], None)),
            _rule("junk", lambda F, G: (F + 0j, G, None)),
        ])))
    return st.one_of(*options)


def _batch_raiser(exc: type[BaseException]):
    """An ``on_batch(t, batch)`` that raises ``exc``."""
    def on_batch(t, b):
        raise exc("boom")

    return on_batch


def seed_bad() -> st.SearchStrategy:
    return st.one_of(
        tag("integer", st.integers(-10**30, -1)),
        tag("integer", st.sampled_from([True, 1.5, 2.0, "0", 1j])),
        tag("type", st.sampled_from([None, [], [1, 2], {"a": 1}, np.random.default_rng(0)])),
    )


def spec_list_bad(ok: list) -> st.SearchStrategy:
    return st.one_of(
        tag("type", st.sampled_from([None, [], (), "kfac", ["kfac"], [("a", "kfac", 0.1)], 3])),
        tag("range", st.just([ok[0], ok[0]])),
    )


# ============================================================================================
# every public function: a valid call and the bad values of each argument
# ============================================================================================

def _functions() -> list[Fn]:  # noqa: PLR0915 - one entry per public function
    rng = np.random.default_rng(3)
    p = sd.linrep_problem(6, 3, 2, kappa_x=10.0, kappa_F=2.0, noise_std=0.1, rng=rng)
    Sx, Sq = p.Sigma_x, p.Sigma_x_sqrt
    out: list[Fn] = []

    def add(label, call, valid, bad, **kw):
        out.append(Fn(label, call, valid, bad, **kw))

    def structure(**strategies):
        out[-1].structure.update(strategies)

    # ---------------------------------------------------------------- simulate.data
    add("haar_orthogonal", sd.haar_orthogonal, dict(d=4, rng=rng), dict(d=size_bad(1), rng=RNG_BAD))
    add("geometric_spectrum", sd.geometric_spectrum, dict(d=4, kappa=10.0, mean_one=True),
        dict(d=size_bad(1), kappa=real_bad(1, valid=10.0), mean_one=flag_bad()))
    add("two_level_spectrum", sd.two_level_spectrum, dict(d=4, eps=0.5),
        dict(d=size_bad(1), eps=real_bad(0, 1, high_open=True)))
    cov = dict(d=4, rng=rng, rotate=True)
    cov_bad = dict(d=size_bad(1), rng=RNG_BAD, rotate=flag_bad())
    add("conditioned_covariance", sd.conditioned_covariance, dict(cov, kappa=10.0),
        dict(cov_bad, kappa=real_bad(1, valid=10.0)))
    add("anisotropic_covariance", sd.anisotropic_covariance, dict(cov, eps=0.5),
        dict(cov_bad, eps=real_bad(0, 1, high_open=True)))
    add("orthonormal_rows", sd.orthonormal_rows, dict(k=2, d=4, rng=rng),
        dict(k=st.one_of(size_bad(1), tag("range", st.integers(5, 100))), d=size_bad(1), rng=RNG_BAD))
    add("conditioned_head", sd.conditioned_head, dict(d_y=3, k=2, kappa=2.0, rng=rng),
        dict(d_y=st.one_of(size_bad(2), tag("range", st.just(1))), k=size_bad(1), kappa=real_bad(1, valid=2.0),
             rng=RNG_BAD))
    add("symmetric_sqrt", sd.symmetric_sqrt, dict(Sigma=Sx), dict(Sigma=spd_bad(Sx)))
    structure(Sigma=spd_bad(Sx, structure_only=True))
    add("standard_inputs", sd.standard_inputs, dict(n=5, d=4, law="gaussian", rng=rng),
        dict(n=size_bad(1), d=size_bad(1), law=choice_bad(sd.LAWS), rng=RNG_BAD))
    add("sample_inputs", sd.sample_inputs, dict(n=5, Sigma_sqrt=Sq, law="gaussian", rng=rng),
        dict(n=size_bad(1), Sigma_sqrt=spd_bad(Sq), law=choice_bad(sd.LAWS), rng=RNG_BAD))
    structure(Sigma_sqrt=spd_bad(Sq, structure_only=True))
    F32 = np.array([[1.0, 0.0], [0.0, 0.5], [0.2, 0.1]])
    add("linrep_problem", sd.linrep_problem,
        dict(d_x=6, d_y=3, k=2, kappa_x=10.0, kappa_F=2.0, noise_std=0.1, rng=rng, law="rademacher", rotate=True,
             F_star=F32),
        dict(d_x=size_bad(1), d_y=size_bad(2), k=st.one_of(size_bad(1), tag("range", st.integers(7, 10**6))),
             kappa_x=real_bad(1, valid=10.0), kappa_F=real_bad(1, valid=2.0), noise_std=real_bad(0), rng=RNG_BAD,
             law=choice_bad(sd.LAWS), rotate=flag_bad(),
             F_star=optional(st.one_of(matrix_bad(F32, F32.shape), rank_bad(F32, rows=False)))))
    structure(F_star=rank_bad(F32, rows=False))
    pb = dict(problem=p, n=5, rng=rng)
    pbad = dict(problem=OBJECT_BAD, n=size_bad(1), rng=RNG_BAD)
    add("draw_batch", sd.draw_batch, dict(pb), dict(pbad))
    add("draw_batch_fast", sd.draw_batch_fast, dict(pb), dict(pbad))
    add("draw_batch_moments", sd.draw_batch_moments, dict(pb, means=True), dict(pbad, means=flag_bad()))
    add("random_bits", sd.random_bits, dict(nbits=100, rng=rng), dict(nbits=size_bad(1), rng=RNG_BAD))
    add("rademacher_signs", sd.rademacher_signs, dict(n=5, d=4, rng=rng, dtype=np.float64),
        dict(n=size_bad(1), d=size_bad(1), rng=RNG_BAD,
             dtype=tag("type", st.sampled_from([np.int8, "abc", None, np.complex128, bool, object]))))
    add("BatchSampler", sd.BatchSampler, dict(problem=p, n=5, means=True),
        dict(problem=OBJECT_BAD, n=size_bad(1), means=flag_bad()))
    add("BatchSampler.draw", sd.BatchSampler(p, 5).draw, dict(rng=rng), dict(rng=RNG_BAD))
    nonorth = p.G_star.copy()
    nonorth[0] *= 2.0
    add("LinRepProblem", sd.LinRepProblem,
        dict(G_star=p.G_star, F_star=p.F_star, Sigma_x=Sx, Sigma_x_sqrt=Sq, noise_std=0.1, law="gaussian",
             F_test=p.F_test, Sigma_test=p.Sigma_test),
        dict(G_star=st.one_of(matrix_bad(p.G_star), rank_bad(p.G_star, rows=True), tag("range", st.just(nonorth))),
             F_star=st.one_of(matrix_bad(p.F_star, (None, 2)), rank_bad(p.F_star, rows=False)),
             Sigma_x=spd_bad(Sx), Sigma_x_sqrt=spd_bad(Sq), noise_std=real_bad(0), law=choice_bad(sd.LAWS),
             F_test=matrix_bad(p.F_test, p.F_test.shape), Sigma_test=spd_bad(p.Sigma_test)))
    structure(Sigma_x=spd_bad(Sx, structure_only=True), Sigma_test=spd_bad(p.Sigma_test, structure_only=True))

    # ---------------------------------------------------------------- simulate.trials
    add("spawn_seeds", stl.spawn_seeds, dict(seed=0, n=3), dict(seed=seed_bad(), n=size_bad(0)))
    add("spawn_generators", stl.spawn_generators, dict(seed=0, n=3), dict(seed=seed_bad(), n=size_bad(0)))

    # ---------------------------------------------------------------- simulate.linrep
    F0, G0 = sl.initial_point(p, rng=np.random.default_rng(0))
    grow = lambda v, fixed=None: st.one_of(matrix_bad(v, fixed), rank_bad(v, rows=True))  # noqa: E731
    for name in ("principal_angles", "principal_tangents"):
        add(name, getattr(sl, name), dict(A=G0, B=p.G_star), dict(A=grow(G0), B=grow(p.G_star, (None, 6))),
            alt=("A", "B"))
    I6 = np.eye(6)
    add("transfer_loss", sl.transfer_loss, dict(G=G0, problem=p, Sigma_test_sqrt=I6),
        dict(G=grow(G0, G0.shape), problem=OBJECT_BAD, Sigma_test_sqrt=optional(spd_bad(I6))))
    add("initial_point", sl.initial_point, dict(problem=p, rng=rng), dict(problem=OBJECT_BAD, rng=RNG_BAD))
    pop = so.Batch.population(Sx, p.M, 0.1)
    batch_bad = st.one_of(OBJECT_BAD, tag("shape-relative", st.just(so.Batch.population(np.eye(3), np.ones((3, 3)),
                                                                                         0.1))))
    add("least_squares_head", sl.least_squares_head, dict(G=G0, batch=pop),
        dict(G=grow(G0, (None, 6)), batch=batch_bad), alt=("G", "batch"))
    kfac_inner = dict(options=("*",))
    lam_bad = {"lam_G": real_bad(0)}
    add("run", sl.run, dict(problem=p, algorithm="kfac", steps=3, lr=0.1, batch=None, rng=rng,
                            options={"lam_G": 0.0}, F0=F0, G0=G0, init_head=None, on_batch=None),
        dict(problem=OBJECT_BAD, algorithm=algorithm_bad(), steps=size_bad(0), lr=real_bad(0, low_open=True),
             batch=optional(st.one_of(size_bad(1), tag("range", st.integers(1, 5)))), rng=RNG_BAD,
             options=options_bad(out_of_range=lam_bad), F0=optional(matrix_bad(F0, F0.shape)),
             G0=optional(grow(G0, G0.shape)), init_head=optional(choice_bad(("least_squares",))),
             on_batch=st.one_of(optional(OBJECT_BAD), tag("type", st.sampled_from([dict, so.Batch])),
                                tag("callable", st.sampled_from([ZeroDivisionError, Boom]).map(_batch_raiser)))),
        inner=kfac_inner, inner_funcs=("optimizer 'kfac'",))
    add("transfer_data", sl.transfer_data, dict(problem=p, n_t=5, rng=rng, n_eval=5, noise_std=0.1),
        dict(problem=OBJECT_BAD, n_t=size_bad(1), rng=RNG_BAD, n_eval=optional(size_bad(1)),
             noise_std=optional(real_bad(0))))
    td = sl.transfer_data(p, n_t=5, rng=rng, n_eval=5)
    other = sl.transfer_data(sd.linrep_problem(4, 3, 2, kappa_x=2.0, kappa_F=2.0, noise_std=0.1, rng=rng), n_t=5,
                             rng=rng)
    add("finite_transfer_loss", sl.finite_transfer_loss, dict(G=G0, problem=p, data=td, Sigma_test_sqrt=I6),
        dict(G=grow(G0, G0.shape), problem=OBJECT_BAD, data=st.one_of(OBJECT_BAD, tag("shape", st.just(other))),
             Sigma_test_sqrt=optional(spd_bad(I6))))
    add("OptimizerSpec", sl.OptimizerSpec, dict(label="a", name="kfac", lr=0.1, options=(("lam_G", 0.1),)),
        dict(label=tag("type", st.sampled_from([None, "", 1, b"a"])),
             name=st.one_of(tag("type", st.sampled_from([None, 1])),
                            tag("range", st.text(max_size=8).filter(lambda s: s not in so.REGISTRY))),
             lr=real_bad(0, low_open=True),
             options=st.one_of(tag("type", st.sampled_from([None, "abc", [1, 2], ((1, 2),), {"lam_G": 0.1}])),
                               tag("range", st.sampled_from([(("bogus", 1.0),), (("lam_G", -1.0),),
                                                             (("eta_F", 5.0),)])))),
        inner={"options": ("*",)}, inner_funcs=("optimizer 'kfac'",))
    specs_ok = [sl.OptimizerSpec("a", "kfac", 0.1), sl.OptimizerSpec("b", "sgd", 0.1)]
    cr = sl.run_common(p, specs_ok, steps=2, batch=None, rng=rng)
    add("CommonRun.index", cr.index, dict(label="a"),
        dict(label=st.one_of(tag("range", st.text(max_size=5).filter(lambda s: s not in ("a", "b"))),
                             tag("type", st.sampled_from([None, 1, ["a"]])))))
    add("run_common", sl.run_common,
        dict(problem=p, specs=specs_ok, steps=3, batch=None, rng=rng, record_every=1, transfer_samples=5,
             transfer_eval=None, blowup=1e6, F0=F0, G0=G0, stack=True, check_every=1),
        dict(problem=OBJECT_BAD, specs=spec_list_bad(specs_ok), steps=size_bad(0), batch=optional(size_bad(1)),
             rng=RNG_BAD, record_every=integer_bad(1), transfer_samples=optional(size_bad(1)),
             transfer_eval=optional(size_bad(1)), blowup=real_bad(1, low_open=True, valid=1e6),
             F0=optional(matrix_bad(F0, F0.shape)), G0=optional(grow(G0, G0.shape)), stack=flag_bad(),
             check_every=integer_bad(1)))

    # ---------------------------------------------------------------- simulate.single_index
    tt = np.array([0.5, 1.0, 1.5, 2.0])
    beta = np.array([1.0, 0.5, 0.0, -0.5])
    Q = orth(5, 4)
    Sig = 0.5 * ((Q * tt) @ Q.T + ((Q * tt) @ Q.T).T)
    sig_bad = st.one_of(spd_bad(Sig, allow_1d=True), vector_bad(tt, positive=True, exact=False))
    ridges = st.one_of(
        tag("range", st.floats(-1e300, -1e-300)), tag("shape", st.sampled_from([np.zeros(0), np.full((2, 2), 0.1)])),
        tag("nonfinite", st.sampled_from([np.nan, np.inf, [0.1, np.nan]])),
        tag("dtype", st.sampled_from([1j, True, np.array([0.1, 0.2]) + 0j, np.array([True])])), TYPE_BAD)
    one = dict(Sigma=Sig, beta_star=beta, n=8, N=4, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=2, seed=0,
               student="tanh", blas_threads=None)
    one_bad = dict(Sigma=sig_bad, beta_star=vector_bad(beta, nonzero=True), n=size_bad(1), N=size_bad(1),
                   lam_G=ridges, teacher=teacher_bad(ss.TEACHERS), noise_std=real_bad(0), trials=size_bad(1),
                   seed=seed_bad(), student=student_bad(), blas_threads=optional(integer_bad(1)))
    powers_bad = st.one_of(
        tag("range", st.sampled_from([(1.5,), (-0.5,), np.array([0.5, 2.0])])),
        tag("nonfinite", st.just((np.nan,))), tag("dtype", st.sampled_from([(0.5j,), True, np.array([True])])),
        tag("type", st.sampled_from(["abc", None])), tag("shape", st.just(np.full((2, 2), 0.5))))
    add("one_step", ss.one_step,
        dict(one, network=True, population=True, method="auto", lanczos_tol=1e-10, max_steps=60, powers=(0.5,),
             muon=False),
        dict(one_bad, network=flag_bad(), population=flag_bad(), method=choice_bad(("auto", "eigh", "solve")),
             lanczos_tol=real_bad(0, 1, low_open=True, high_open=True, valid=1e-10), max_steps=integer_bad(1),
             powers=powers_bad, muon=flag_bad()))
    structure(Sigma=spd_bad(Sig, structure_only=True))
    add("one_step_test_error", ss.one_step_test_error, dict(one, n_head=8, n_test=8, lam_F=0.1, spike_norm=5.0),
        dict(one_bad, n_head=size_bad(1), n_test=size_bad(1), lam_F=real_bad(0, low_open=True),
             spike_norm=real_bad(0, low_open=True, valid=5.0)))
    U = np.random.default_rng(1).standard_normal((5, 4))
    add("orthogonalised_direction", ss.orthogonalised_direction,
        dict(update=U, steps=5, exact_polar=False, reference=np.ones(4)),
        dict(update=st.one_of(matrix_bad(U), tag("range", st.just(np.zeros((5, 4))))), steps=integer_bad(1, 100),
             exact_polar=flag_bad(), reference=optional(vector_bad(np.ones(4), nonzero=True))))
    A = np.diag([3.0, 2.0, 1.0])
    add("top_singular_pairs", ss.top_singular_pairs,
        dict(apply=lambda Qb: A @ Qb, start=np.ones((3, 2)), tol=1e-10, max_steps=10),
        dict(apply=st.one_of(tag("type", st.sampled_from([None, 1.5, "A"])),
                             tag("callable", st.sampled_from([ZeroDivisionError, Boom]).map(raiser)),
                             tag("callable", st.sampled_from([
                                 lambda Qb: np.full(np.shape(Qb), np.nan), lambda Qb: np.ones(2),
                                 lambda Qb: Qb + 1j, lambda Qb: None, lambda Qb: Qb[:, :1]]))),
             start=st.one_of(matrix_bad(np.ones((3, 2))), tag("range", st.just(np.zeros((3, 2))))),
             tol=real_bad(0, 1, low_open=True, high_open=True, valid=1e-10), max_steps=integer_bad(1)))
    add("trial_generator", ss.trial_generator, dict(seed_seq=np.random.SeedSequence(0)),
        dict(seed_seq=tag("type", st.sampled_from([None, "abc", 1.5, 0, -1, np.random.default_rng(0)]))))
    res = ss.one_step(tt, beta, n=8, N=4, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=2, seed=0)
    add("concatenate", ss.concatenate, dict(parts=[res, res]),
        dict(parts=tag("type", st.sampled_from([None, [], (), [1, 2], [res, specs_ok[0]], res, "ab"]))))

    # ---------------------------------------------------------------- simulate.jacobian
    Z = np.full((2, 4), 0.01)
    jalg = st.one_of(algorithm_bad(objects=False), tag("range", st.sampled_from(["kfac", "sgd", "adam"])))
    jinner = dict(inner={"options": ("*",)}, inner_funcs=("optimizer 'kfac_ls'",))
    add("complement", sj.complement, dict(G_star=p.G_star), dict(G_star=grow(p.G_star)))
    add("tangent_start", sj.tangent_start, dict(problem=p, Z=Z), dict(problem=OBJECT_BAD, Z=matrix_bad(Z, Z.shape)))
    jbase = dict(problem=p, algorithm="kfac_ls", lr=0.5, options=None)
    jbad = dict(problem=OBJECT_BAD, algorithm=jalg, lr=real_bad(0, low_open=True),
                options=optional(options_bad(out_of_range=lam_bad)))
    add("tangent_step", sj.tangent_step, dict(jbase, Z=Z), dict(jbad, Z=matrix_bad(Z, Z.shape)), **jinner)
    add("step_jacobian", sj.step_jacobian, dict(jbase, h=1e-3, gauge_probes=2, rng=None),
        dict(jbad, h=real_bad(0, 0.1, low_open=True, valid=1e-3), gauge_probes=integer_bad(1, 1000),
             rng=optional(RNG_BAD)), **jinner)
    add("quadratic_term", sj.quadratic_term, dict(jbase, Z=Z, h=1e-3),
        dict(jbad, Z=matrix_bad(Z, Z.shape), h=real_bad(0, 0.1, low_open=True, valid=1e-3)), **jinner)
    jac = sj.step_jacobian(p, "kfac_ls", lr=0.5)
    add("StepJacobian.mode", jac.mode, dict(which=0), dict(which=integer_bad(0, jac.n - 1)))

    # ---------------------------------------------------------------- simulate.optimizers
    X = np.random.default_rng(2).standard_normal((10, 6))
    Y = np.random.default_rng(3).standard_normal((10, 3))
    add("Batch.from_samples", so.Batch.from_samples, dict(X=X, Y=Y),
        dict(X=matrix_bad(X), Y=st.one_of(matrix_bad(Y), tag("shape-relative", st.just(Y[:-1])))), alt=("X", "Y"))
    add("Batch.from_moments", so.Batch.from_moments, dict(m=sd.draw_batch_moments(p, 8, rng=rng)),
        dict(m=OBJECT_BAD))
    add("Batch.population", so.Batch.population, dict(Sigma_x=Sx, M=p.M, noise_std=0.1),
        dict(Sigma_x=spd_bad(Sx), M=matrix_bad(p.M, (None, 6)), noise_std=real_bad(0)))
    structure(Sigma_x=spd_bad(Sx, structure_only=True))
    fgb_bad = dict(F=matrix_bad(F0, (3, None)), G=matrix_bad(G0, (2, 6)), batch=batch_bad)
    for name in ("batch_loss", "grad_G", "grad_F", "gauss_newton_blocks", "exact_hessian"):
        add(name, getattr(so, name), dict(F=F0, G=G0, batch=pop), dict(fgb_bad), alt=("F", "G", "batch"))
    F3, G3 = np.stack([F0, F0]), np.stack([G0, G0])
    for name in ("grads_stacked", "batch_loss_stacked"):
        add(name, getattr(so, name), dict(F=F3, G=G3, batch=pop),
            dict(F=st.one_of(dtype_bad(F3), TYPE_BAD, nonfinite_bad(F3), tag("shape", st.just(F0))),
                 G=st.one_of(dtype_bad(G3), TYPE_BAD, nonfinite_bad(G3), tag("shape", st.just(G0))), batch=batch_bad),
            alt=("F", "G", "batch"))
    add("kfac_head_step", so.kfac_head_step, dict(F=F0, G=G0, X=X, Y=Y, eta_F=0.5, activation="tanh"),
        dict(F=matrix_bad(F0, (3, None)), G=matrix_bad(G0, G0.shape), X=matrix_bad(X, (10, 6)),
             Y=matrix_bad(Y, Y.shape), eta_F=real_bad(0, 1, low_open=True), activation=choice_bad(("identity", "tanh"))),
        alt=("F", "G", "X", "Y"))
    add("stacked", so.stacked, dict(opts=[so.make("kfac", lr=0.1), so.make("kfac", lr=0.2)]),
        dict(opts=tag("type", st.sampled_from([None, [], (), ["kfac"], 3, [so.make("kfac", lr=0.1), None]]))))
    add("register", so.register, dict(name="hyp_rule", factory=lambda **o: so.SGD(**o), replace=True),
        dict(name=tag("type", st.sampled_from([None, "", 1, b"x"])),
             factory=st.one_of(tag("type", st.sampled_from([None, "sgd", 1.5])),
                               tag("callable", st.sampled_from([lambda **o: None, lambda **o: _NO_STEP,
                                                                lambda **o: 1 / 0, lambda lr, beta: None]))),
             replace=flag_bad()))
    add("make", lambda name, **o: so.make(name, **o), dict(name="kfac", lr=0.1),
        dict(name=st.one_of(tag("range", st.text(max_size=8).filter(lambda s: s not in so.REGISTRY)),
                            tag("type", st.sampled_from([None, 1, ["kfac"]])))))

    # ---------------------------------------------------------------- simulate.matrix_optimizers
    add("inverse_root", mo.inverse_root, dict(S=Sx, ridge=1e-3, p=4),
        dict(S=spd_bad(Sx).filter(lambda cv: cv[0] != "singular"), ridge=real_bad(0, low_open=True, valid=1e-3),
             p=real_bad(0, low_open=True, valid=4.0)))
    add("newton_schulz", mo.newton_schulz, dict(u=U, steps=5), dict(u=matrix_bad(U), steps=integer_bad(0, 100)))
    add("polar_factor", mo.polar_factor, dict(u=U), dict(u=matrix_bad(U)))
    return out


FUNCTIONS = _functions()

#: the built-in optimizers (a test may register more) and their options: each factory lists the options it
#: takes (``factory.options``); the valid call gives each its default (``lr = 0.1``)
BUILTIN = sorted(n for n, f in so.REGISTRY.items()
                 if getattr(f, "__module__", "").startswith("simulate.") and not n.startswith(("test_", "hyp_", "tally_")))


def _defaults(name: str) -> dict:
    opt = so.make(name, lr=0.1)
    return {k: getattr(opt, k) for k in so.REGISTRY[name].options if k != "lr"}


def _option_table(name: str) -> dict[str, st.SearchStrategy]:
    """The bad values of each option of optimizer ``name``."""
    unit_open = real_bad(0, 1, high_open=True)
    return {
        "eta_F": optional(real_bad(0, 1, low_open=True)), "lam_G": real_bad(0),
        "head_right": choice_bad(("Sigma_z", "identity")), "beta1": unit_open,
        "beta2": optional(real_bad(0, 1, low_open=True, high_open=True)) if name == "shampoo" else unit_open,
        "eps": real_bad(0, low_open=True, valid=1e-8),
        "momentum": real_bad(0, 1, low_open=True) if name == "amgd_bn" else unit_open,
        "affine": flag_bad(), "damping": real_bad(0, valid=1e-3), "solver": choice_bad(("structured", "dense")),
        "nesterov": flag_bad(), "ns_steps": integer_bad(1, 100), "exact_polar": flag_bad(),
        "betas": st.one_of(tag("shape", st.sampled_from([(0.9,), (0.9, 0.9, 0.9)])), TYPE_BAD,
                           unit_open.map(lambda cv: (cv[0], (0.9, cv[1])))),
        "shampoo_beta": optional(unit_open), "precondition_frequency": integer_bad(1),
        "refresh": choice_bad(("eigh", "power_qr")),
    }


_MISSING = object()


def _factory_fn(name: str) -> Fn:
    valid = {"lr": 0.1, **_defaults(name)}
    bad = {"lr": st.one_of(real_bad(0, low_open=True), tag("missing", st.just(_MISSING)))}
    table = _option_table(name)
    bad.update({key: table[key] for key in valid if key in table})  # a key not in table: the coverage test fails
    bad["bogus"] = tag("unknown", st.floats(-1.0, 1.0))
    bad["name"] = tag("fixed", st.text(max_size=6))  # the registered name is not an option

    def call(**options):
        return so.make(name, **{k: v for k, v in options.items() if v is not _MISSING})

    return Fn(f"optimizer '{name}'", call, valid, bad)


FACTORIES = [_factory_fn(n) for n in BUILTIN]


# ============================================================================================
# the tests
# ============================================================================================

def test_every_public_function_and_factory_is_covered():
    """Each public function (with arguments) of simulate's modules and each registered optimizer has
    a strategy above."""
    covered = {f.label for f in FUNCTIONS}
    missing = []
    for mod in (sd, sl, so, mo, ss, stl, sj):
        names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
        for n in names:
            obj = getattr(mod, n)
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__ and inspect.signature(obj).parameters \
                    and n not in covered:
                missing.append(f"{mod.__name__}.{n}")
    assert not missing, f"public functions with arguments but no bad-input strategy: {missing}"
    for name in BUILTIN:
        missing = set(so.REGISTRY[name].options) - {"lr"} - set(_option_table(name))
        assert not missing, f"options of {name!r} without a bad-value strategy: {sorted(missing)}"


#: examples per function (77 functions and factories)
EXAMPLES = examples(8)


def _run(fn: Fn, n: int) -> None:
    arg_cls_value = st.sampled_from(sorted(fn.bad)).flatmap(lambda a: fn.bad[a].map(lambda cv: (a, cv[0], cv[1])))

    @settings(PROPERTY, max_examples=n)
    @given(arg_cls_value)
    def run(acv):
        check(fn, *acv)

    run()


@pytest.mark.parametrize("fn", FUNCTIONS, ids=[f.label for f in FUNCTIONS])
def test_bad_input_raises_named_value_error(fn: Fn):
    _run(fn, EXAMPLES)


@pytest.mark.parametrize("fn", FACTORIES, ids=[f.label for f in FACTORIES])
def test_bad_option_raises_named_value_error(fn: Fn):
    _run(fn, EXAMPLES)


STRUCTURE = [(fn, arg) for fn in FUNCTIONS for arg in sorted(fn.structure)]


@pytest.mark.parametrize("fn, arg", STRUCTURE, ids=[f"{f.label}-{a}" for f, a in STRUCTURE])
def test_matrix_property_violation_raises_named_value_error(fn: Fn, arg: str):
    """Nonsymmetric, exactly singular (at scales 2^-400..2^400), indefinite and rank-deficient matrices
    are rejected by the relative thresholds of simulate._validate."""
    @settings(PROPERTY, max_examples=examples(6))
    @given(fn.structure[arg])
    def run(cv):
        check(fn, arg, *cv)

    run()


# --------------------------------------------------------------------------------------------
# the cases of the issue, pinned
# --------------------------------------------------------------------------------------------

_P = sd.linrep_problem(6, 3, 2, kappa_x=10.0, kappa_F=2.0, noise_std=0.1, rng=np.random.default_rng(0))
_ONE = dict(n=8, N=4, lam_G=[0.1], teacher="tanh", noise_std=0.1, trials=2, seed=0)
_T, _B = np.array([0.5, 1.0, 1.5]), np.array([1.0, 0.5, 0.2])


@pytest.mark.parametrize("call, func, name", [
    (lambda: so.make("sgd", lr=-0.1), "optimizer 'sgd'", "lr"),
    (lambda: so.make("kfac", lr=float("nan")), "optimizer 'kfac'", "lr"),
    (lambda: so.make("kfac", lr="abc"), "optimizer 'kfac'", "lr"),
    (lambda: so.make("kfac", lr=0.1, eta_F=5), "optimizer 'kfac'", "eta_F"),
    (lambda: so.make("kfac", lr=0.1, bogus=1), "optimizer 'kfac'", "bogus"),
    (lambda: so.make("kfac"), "optimizer 'kfac'", "lr"),
    (lambda: so.register("none_rule", lambda **o: None), "register", "factory"),
    (lambda: sl.run(None, "kfac", steps=1, lr=0.1, batch=None, rng=np.random.default_rng(0)), "run", "problem"),
    (lambda: sl.run(_P, "kfac", steps=2**70, lr=0.1, batch=None, rng=np.random.default_rng(0)), "run", "steps"),
    (lambda: ss.one_step(_T, _B, **{**_ONE, "trials": 2**40}), "one_step", "trials"),
    (lambda: ss.one_step(_T, _B, **_ONE, max_steps=-1), "one_step", "max_steps"),
    (lambda: ss.one_step(_T, _B, **{**_ONE, "teacher": lambda z: 1 / 0}), "one_step", "teacher"),
    (lambda: ss.one_step(_T, _B, **{**_ONE, "teacher": lambda z: np.full_like(z, np.nan)}), "one_step", "teacher"),
    (lambda: sd.symmetric_sqrt(np.array([[2.0, 1.0], [0.0, 2.0]])), "symmetric_sqrt", "Sigma"),
    (lambda: sd.symmetric_sqrt(np.array([[np.inf, 0.0], [0.0, 1.0]])), "symmetric_sqrt", "Sigma"),
    (lambda: sd.symmetric_sqrt(np.zeros((0, 0))), "symmetric_sqrt", "Sigma"),
    (lambda: sd.symmetric_sqrt(np.outer([0.7, 0.2], [0.7, 0.2])), "symmetric_sqrt", "Sigma"),
    (lambda: sd.conditioned_covariance(2**63, kappa=10, rng=np.random.default_rng(0)), "conditioned_covariance", "d"),
    (lambda: sd.sample_inputs(5, np.ones((2, 3)), law="gaussian", rng=np.random.default_rng(0)), "sample_inputs",
     "Sigma_sqrt"),
    (lambda: sd.sample_inputs(5, np.array([[np.nan, 0.0], [0.0, 1.0]]), law="gaussian", rng=np.random.default_rng(0)),
     "sample_inputs", "Sigma_sqrt"),
    (lambda: sd.linrep_problem(6, 3, 2, kappa_x=0.5, kappa_F=2.0, noise_std=0.1, rng=np.random.default_rng(0)),
     "linrep_problem", "kappa_x"),
])
def test_reported_cases(call, func, name):
    with pytest.raises(ValueError, match=rf"^{func}: argument '{name}' must "):
        call()
    assert "none_rule" not in so.REGISTRY


def test_sizes_that_cannot_fit_name_the_memory_they_would_need():
    with pytest.raises(ValueError, match=r"^run: argument 'steps' must be small enough that .* fit in memory "
                                         r"\(.*\); got 1180591620717411303424 \(it would need .*\)\.$"):
        sl.run(_P, "kfac", steps=2**70, lr=0.1, batch=None, rng=np.random.default_rng(0))


def test_a_user_step_that_raises_is_named():
    with pytest.raises(ValueError, match=r"^run: argument 'algorithm' must be an optimizer whose step.*; got "
                                         r"'raising', whose step raised ZeroDivisionError: boom\.$"):
        sl.run(_P, _rule("raising", _boom), steps=2, lr=0.1, batch=None, rng=np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# legal extremes: finite answers
# --------------------------------------------------------------------------------------------

@settings(PROPERTY, max_examples=examples(30))
@given(d=st.integers(1, 12), log_kappa=st.floats(0.0, 6.0), seed=st.integers(0, 2**32 - 1), rotate=st.booleans())
def test_conditioned_covariances_up_to_1e6_are_accepted_and_have_finite_roots(d, log_kappa, seed, rotate):
    rng = np.random.default_rng(seed)
    S = sd.conditioned_covariance(d, kappa=10.0 ** log_kappa, rng=rng, rotate=rotate)
    R = sd.symmetric_sqrt(S)
    X = sd.sample_inputs(7, R, law="rademacher", rng=rng)
    assert np.all(np.isfinite(R)) and np.all(np.isfinite(X))
    err = np.abs(R @ R - S).max()
    assert err <= 1e3 * d * EPS * np.abs(S).max(), f"|R^2 - S| = {err:.3e} for kappa = 1e{log_kappa:.2f}, d = {d}"


@settings(PROPERTY, max_examples=examples(30))
@given(d=st.integers(2, 10), log_cond=st.floats(0.0, 12.0), k=st.integers(-300, 300), seed=st.integers(0, 2**32 - 1))
def test_the_relative_threshold_accepts_any_well_determined_matrix_and_rejects_numerically_singular(d, log_cond, k,
                                                                                                    seed):
    """Eigenvalues from 1 down to 1e-12 at any scale 2^k pass; a smallest eigenvalue at d eps/4 times the
    largest (below the threshold d eps) is numerically singular and refused by name."""
    Q = orth(seed % 2**32, d)
    lam = np.geomspace(1.0, 10.0 ** -log_cond, d) * 2.0 ** k
    S = (Q * lam) @ Q.T
    S = 0.5 * (S + S.T)
    assert np.all(np.isfinite(sd.symmetric_sqrt(S)))
    lam_bad = lam.copy()
    lam_bad[-1] = 0.25 * d * EPS * lam[0]
    B = (Q * lam_bad) @ Q.T
    with pytest.raises(ValueError, match=r"^symmetric_sqrt: argument 'Sigma' must be positive-definite"):
        sd.symmetric_sqrt(0.5 * (B + B.T))


@settings(PROPERTY, max_examples=examples(8))
@given(log_kappa=st.floats(0.0, 6.0), algorithm=st.sampled_from(["kfac", "kfac_ls", "amgd", "sgd"]),
       seed=st.integers(0, 2**32 - 1))
def test_training_on_a_problem_conditioned_up_to_1e6_is_finite(log_kappa, algorithm, seed):
    rng = np.random.default_rng(seed)
    p = sd.linrep_problem(8, 3, 2, kappa_x=10.0 ** log_kappa, kappa_F=10.0, noise_std=0.1, rng=rng)
    lr = 1e-3 if algorithm == "sgd" else 0.5
    tr = sl.run(p, algorithm, steps=5, lr=lr, batch=16, rng=rng)
    for key in ("train_loss", "subspace_distance", "transfer_loss"):
        assert np.all(np.isfinite(getattr(tr, key))), f"{key} of {algorithm} at kappa_x = 1e{log_kappa:.2f}"


@settings(PROPERTY, max_examples=examples(10))
@given(log_kappa=st.floats(0.0, 6.0), log_lam=st.floats(-8.0, 4.0), teacher=st.sampled_from(sorted(ss.TEACHERS)),
       seed=st.integers(0, 2**32 - 1))
def test_one_step_with_condition_up_to_1e6_and_ridges_1e_8_to_1e4_is_finite(log_kappa, log_lam, teacher, seed):
    if teacher in ("abs", "he2"):  # information exponent 2: refused by name (no signal), tested above
        teacher = "tanh"
    t = np.geomspace(1.0, 10.0 ** -log_kappa, 6)
    res = ss.one_step(t, np.ones(6), n=10, N=3, lam_G=[10.0 ** log_lam, 0.0], teacher=teacher, noise_std=0.1,
                      trials=2, seed=seed)
    for key in ("sgd", "kfac", "population", "sgd_network", "kfac_network"):
        assert np.all(np.isfinite(getattr(res, key))), f"{key} at kappa = 1e{log_kappa:.2f}, lam_G = 1e{log_lam:.2f}"
