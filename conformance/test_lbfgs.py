"""L-BFGS (``spec/lbfgs.py``) checked by properties on quadratics, against the backend's implementation.

The backend's L-BFGS: ``--backend=numpy`` the NumPy port, ``torch-cpu``/``torch-cuda`` ``torch.optim.LBFGS``, and
``--optimizer lbfgs=module:Class`` that class (torch's API; a subclass of the NumPy port runs as one).  All in
binary64.  Each test states what it checks; ``docs/optimizers/lbfgs.md`` says what is not checked.  Values are
compared with a bound on what any binary64 evaluation of the spec's expression in any summation order can give
(``conformance.lbfgs.Bounded``), bookkeeping bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note, strategies as st

from spec import lbfgs as spec

from . import lbfgs as lb
from .backends.numpy_lbfgs import NumpyLBFGS


# --------------------------------------------------------------------------- the implementation under test

def factory(config):
    """(make(parts, hyper) -> runner, label) for the run's backend, or (None, why not)."""
    name = config.getoption("--backend")
    if name == "numpy":
        return (lambda parts, hyper: lb.NumpyRunner(NumpyLBFGS, parts, hyper)), "the NumPy port"
    impl = config._conformance_backend
    if not name.startswith("torch-"):
        return None, f"backend {name} has no L-BFGS (it runs element-wise cases only)"
    import torch
    cls = getattr(impl, "overrides", {}).get("lbfgs", torch.optim.LBFGS)
    if isinstance(cls, type) and issubclass(cls, NumpyLBFGS):
        return (lambda parts, hyper: lb.NumpyRunner(cls, parts, hyper)), cls.__qualname__
    return (lambda parts, hyper: lb.TorchRunner(cls, parts, hyper, impl.device_spec)), cls.__qualname__


@pytest.fixture
def make(request):
    made, why = factory(request.config)
    if made is None:
        pytest.skip(why)
    return made


def _state(runner):
    try:
        return runner.state()
    except lb.StateMissing as e:  # a class without torch's state: the state checks cannot run, and say so
        pytest.skip(f"the implementation keeps no state {e.args[0]!r} (torch.optim.LBFGS's names are read)")


def _read(state, key):
    try:
        return state[key]
    except lb.StateMissing:
        pytest.skip(f"the implementation keeps no state {key!r} (torch.optim.LBFGS's names are read)")


class Recording(lb.Quadratic):
    """A quadratic that remembers every gradient it returned."""

    def __init__(self, q: lb.Quadratic):
        super().__init__(q.A, q.b)
        self.grads = []

    def __call__(self, x):
        loss, g = super().__call__(x)
        self.grads.append(g)
        return loss, g


@st.composite
def problems(draw, n_min=1, n_max=6):
    """(quadratic, x0): A = I + MᵀM/n, b and x0 of a drawn scale (‖g‖₁ on both sides of 1)."""
    n = draw(st.integers(n_min, n_max), label="n")
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]), label="scale")
    return lb.Quadratic.draw(rng, n, scale), rng.uniform(-scale, scale, n)


def _fail(what: str, got, b: lb.Bounded, bad) -> None:
    raise AssertionError(f"{what}: {int(np.sum(bad))} value(s) outside the bound; got {np.asarray(got)[bad]}, "
                         f"binary64 evaluation {np.asarray(b.v)[bad]}, bound {np.asarray(b.e)[bad]}")


def _check(what, got, b, exact_value=None):
    bad = np.atleast_1d(lb.outside(got, b, exact_value))
    if bad.any():
        _fail(what, np.atleast_1d(got), lb.Bounded(np.atleast_1d(b.v), np.atleast_1d(b.e)), bad)


# --------------------------------------------------------------------------- the first step

@given(problem=problems(n_min=2), lr=st.sampled_from([1.0, 0.5, 1e-3, 1.75]))  # n = 1: ‖g‖₁ = ‖g‖₂
def test_first_step_is_minus_g_scaled_by_its_l1_norm(make, problem, lr):
    """The first iteration ever: d = −g exactly, t = min(1, 1/‖g‖₁)·lr with the L1 norm (``abs().sum()``),
    θ₁ = θ₀ + t·d within the bound; one closure call, n_iter = 1, no pair stored."""
    q, x0 = problem
    run = make([x0], dict(lr=lr, max_iter=1, tolerance_grad=0.0, tolerance_change=0.0))
    g = q(x0)[1]
    q.calls = 0
    run.step(q)
    st_ = _state(run)
    t = lb.first_step(g, lr)
    assert np.array_equal(_read(st_, "d"), -g), "the first direction is not −g"
    _check("t of the first step", _read(st_, "t"), t)
    _check("θ after the first step", run.flat_x(), lb.add(lb.exact(x0), lb.mul(t, lb.exact(-g))))
    assert q.calls == 1 and _read(st_, "func_evals") == 1 and _read(st_, "n_iter") == 1
    assert _read(st_, "old_dirs") == []


# --------------------------------------------------------------------------- the two-loop recursion

def _check_direction(st_, grads):
    dirs, stps = _read(st_, "old_dirs"), _read(st_, "old_stps")
    g = _read(st_, "prev_flat_grad")
    assert any(np.array_equal(g, x) for x in grads), "prev_flat_grad is no gradient the closure returned"
    _check("d = −H·prev_flat_grad (two-loop recursion)", _read(st_, "d"), lb.two_loop(g, dirs, stps))
    for i, (y, s) in enumerate(zip(dirs, stps)):
        _check(f"ro[{i}] = 1/yᵀs", _read(st_, "ro")[i], lb.curvature(y, s)[0])
    if dirs:
        _check("H_diag = yᵀs/yᵀy of the newest pair", _read(st_, "H_diag"), lb.curvature(dirs[-1], stps[-1])[1])


@given(problem=problems(n_min=2), history_size=st.integers(2, 4), max_iter=st.integers(2, 5),  # several pairs
       line_search=st.sampled_from([None, "strong_wolfe"]), steps=st.integers(1, 4))
def test_direction_is_the_two_loop_recursion_of_the_stored_pairs(make, problem, history_size, max_iter,
                                                                 line_search, steps):
    """After every ``step()``, in both line-search modes: state d is −H·g for g = prev_flat_grad (one of the
    closure's gradients, bit for bit) and H the L-BFGS matrix of the stored pairs on H₀ = γI, torch's order;
    ρᵢ = 1/yᵢᵀsᵢ and γ = yᵀs/yᵀy of the newest pair; all within the bound."""
    q, x0 = problem
    rec = Recording(q)
    run = make([x0], dict(max_iter=max_iter, history_size=history_size, line_search_fn=line_search,
                          tolerance_grad=0.0, tolerance_change=0.0))
    for k in range(steps):
        run.step(rec)
        st_ = _state(run)
        note(f"step {k}: {len(_read(st_, 'old_dirs'))} pairs")
        assert len(_read(st_, "old_dirs")) <= history_size
        _check_direction(st_, rec.grads)


@given(problem=problems(), history_size=st.integers(1, 3), line_search=st.sampled_from([None, "strong_wolfe"]))
def test_pairs_are_stored_and_dropped_as_stated(make, problem, history_size, line_search):
    """With max_iter = 1 each ``step()`` is one iteration: y = g − g_prev and s = t·d (both correctly rounded,
    so bit for bit) are appended iff yᵀs > 1e-10 (either way where yᵀs is within its bound of 1e-10), the oldest
    dropped beyond history_size, in the order they came."""
    q, x0 = problem
    rec = Recording(q)
    run = make([x0], dict(max_iter=1, history_size=history_size, line_search_fn=line_search,
                          tolerance_grad=0.0, tolerance_change=0.0))
    expected, prev, n_iter = [], None, 0  # prev: (g at the start of the last step, d, t)
    for _ in range(6):
        first = len(rec.grads)
        run.step(rec)
        st_ = _state(run)
        g = rec.grads[first]
        if _read(st_, "n_iter") == n_iter:  # g = 0 exactly: returned before iterating, nothing stored
            assert not np.any(g) and len(_read(st_, "old_dirs")) == len(expected)
            continue
        n_iter = _read(st_, "n_iter")
        if prev is not None:
            y, s = g - prev[0], prev[1] * prev[2]
            ys = lb.dot(lb.exact(y), lb.exact(s))
            stored = len(_read(st_, "old_dirs")) and np.array_equal(_read(st_, "old_dirs")[-1], y) \
                and np.array_equal(_read(st_, "old_stps")[-1], s)
            if ys.v - 2 * ys.e > spec.CURVATURE_EPS or (stored and ys.v + 2 * ys.e > spec.CURVATURE_EPS):
                expected = [*expected, (y, s)][-history_size:]
        dirs, stps = _read(st_, "old_dirs"), _read(st_, "old_stps")
        assert len(dirs) == len(stps) == len(expected), f"{len(dirs)} pairs stored, expected {len(expected)}"
        for i, (y, s) in enumerate(expected):
            assert np.array_equal(dirs[i], y) and np.array_equal(stps[i], s), f"pair {i} differs"
        prev = (g, _read(st_, "d"), _read(st_, "t"))


def test_the_threshold_cases_lie_on_both_sides_of_1e_10():
    """Not an implementation check (see the one below): the two values it uses lie on both sides of 1e-10."""
    assert 900719 * 2.0 ** -53 < 1e-10 < 900720 * 2.0 ** -53


@pytest.mark.parametrize("k, stored", [(900719, False), (900720, True)])
def test_a_pair_is_stored_only_above_the_curvature_threshold(make, k, stored):
    """f = ½Y·x² − x from x₀ = 0 with lr = 1: g₀ = −1, so d = 1, t = 1, s = 1, g₁ = Y − 1 exactly and yᵀs = Y.
    Y = k·2⁻⁵³ just below 1e-10 is not stored, just above it is."""
    q = lb.Quadratic(np.array([[k * 2.0 ** -53]]), np.array([1.0]))
    run = make([np.array([0.0])], dict(max_iter=1, tolerance_grad=0.0, tolerance_change=0.0))
    run.step(q)
    run.step(q)
    assert len(_read(_state(run), "old_dirs")) == int(stored), f"yᵀs = {k}·2⁻⁵³: stored must be {stored}"


@given(problem=problems(), history_size=st.integers(1, 4), steps=st.integers(1, 4))
def test_secant_equation_for_the_newest_pair(make, problem, history_size, steps):
    """H·yₖ = sₖ for the newest pair, through the implementation's own recursion: a step with lr = 0 stores
    the pair (yₖ, sₖ) without moving; the next ``step()``'s closure returns yₖ as the gradient, whose pair has
    s = 0 (not stored), so its direction is −H·yₖ, exactly −sₖ in exact arithmetic; within the bound."""
    q, x0 = problem
    run = make([x0], dict(max_iter=1, history_size=history_size, tolerance_grad=0.0, tolerance_change=0.0))
    for _ in range(steps):
        run.step(q)
    run.set_lr(0.0)
    n_iter = _read(_state(run), "n_iter")
    run.step(q)
    st_ = _state(run)
    dirs, stps = _read(st_, "old_dirs"), _read(st_, "old_stps")
    if _read(st_, "n_iter") == n_iter or not dirs:
        return  # g = 0 exactly (the minimum: no iteration), or no pair passed the curvature test: nothing to check
    assert _read(st_, "t") == 0, "a step with lr = 0 has t ≠ 0"
    y, s = dirs[-1], stps[-1]
    run.step(lambda x: (0.0, y))
    st_ = _state(run)
    assert len(_read(st_, "old_dirs")) == len(dirs), "a pair with s = 0 was stored"
    _check("H·y = s for the newest pair", -_read(st_, "d"), lb.two_loop(y, dirs, stps), exact_value=s)


# --------------------------------------------------------------------------- stopping and counting

@given(problem=problems(), strict=st.booleans())
def test_a_gradient_at_tolerance_stops_before_any_iteration(make, problem, strict):
    """max|g| ≤ tolerance_grad at the first call: one closure call, θ and n_iter unchanged, the loss returned;
    with tolerance_grad just below max|g| (``strict``) the step iterates."""
    q, x0 = problem
    loss0, g0 = q(x0)
    tol = float(np.abs(g0).max())
    run = make([x0], dict(tolerance_grad=np.nextafter(tol, 0) if strict else tol))
    q.calls = 0
    loss = run.step(q)
    st_ = _state(run)
    if strict:
        assert _read(st_, "n_iter") >= 1 and q.calls >= 1
        return
    assert q.calls == 1 and _read(st_, "func_evals") == 1 and _read(st_, "n_iter") == 0
    assert float(loss) == loss0 and np.array_equal(run.flat_x(), x0)


@given(problem=problems(), max_iter=st.integers(0, 6), max_eval=st.one_of(st.none(), st.integers(1, 8)),
       line_search=st.sampled_from([None, "strong_wolfe"]))
def test_closure_calls_are_bounded_and_counted(make, problem, max_iter, max_eval, line_search):
    """Per ``step()``: calls ≤ ``spec.lbfgs.max_closure_calls`` (max_eval defaults to ⌊5·max_iter/4⌋; it can
    be exceeded by one: see the docs), state func_evals grows by the calls, n_iter by at most max_iter, and the
    loss returned is the first call's."""
    q, x0 = problem
    hyper = dict(max_iter=max_iter, max_eval=max_eval, line_search_fn=line_search, tolerance_grad=0.0,
                 tolerance_change=0.0)
    if line_search and (max_iter * 5 // 4 if max_eval is None else max_eval) < 1:
        return  # max_eval ≤ 0 with strong Wolfe raises UnboundLocalError in torch (finding 66)
    run = make([x0], hyper)
    bound = spec.max_closure_calls(max_iter, max_iter * 5 // 4 if max_eval is None else max_eval, bool(line_search))
    evals = n_iter = 0
    for _ in range(2):
        q.calls = 0
        first = q(run.flat_x())[0]
        q.calls = 0
        loss = run.step(q)
        st_ = _state(run)
        assert 1 <= q.calls <= bound, f"{q.calls} closure calls, at most {bound} expected"
        assert _read(st_, "func_evals") - evals == q.calls, "func_evals does not count the calls"
        assert 0 <= _read(st_, "n_iter") - n_iter <= max_iter
        assert float(loss) == first, "the loss returned is not the first call's"
        evals, n_iter = _read(st_, "func_evals"), _read(st_, "n_iter")


@given(problem=problems())
def test_no_descent_within_tolerance_change_stops_before_moving(make, problem):
    """gᵀd > −tolerance_change (here the first d = −g, tolerance_change > ‖g‖²) stops the iteration before θ
    moves: θ unchanged, one call, n_iter = 1."""
    q, x0 = problem
    g = q(x0)[1]
    run = make([x0], dict(tolerance_change=2 * float(g @ g) + 1, tolerance_grad=0.0))
    q.calls = 0
    run.step(q)
    assert np.array_equal(run.flat_x(), x0) and q.calls == 1 and _read(_state(run), "n_iter") == 1


# --------------------------------------------------------------------------- the flat vector

@given(problem=problems(n_max=1), line_search=st.sampled_from([None, "strong_wolfe"]))
def test_parameters_are_one_vector_in_parameter_order(make, problem, line_search):
    """A 9-element problem stepped as one vector and as a complex (2,) tensor (its real view: re, im), a (2, 2)
    tensor and a (1,) tensor gives the same iterates and state d bit for bit: gradients are flattened and
    concatenated in parameter order, and every dot product is over the whole vector."""
    _, x = problem
    rng = np.random.default_rng(int(abs(x[0]) * 2 ** 30))
    q = lb.Quadratic.draw(rng, 9)
    x0 = rng.uniform(-1, 1, 9)
    hyper = dict(max_iter=3, line_search_fn=line_search, tolerance_grad=0.0, tolerance_change=0.0)
    flat = make([x0], hyper)
    parts = make([x0[:4].view(np.complex128).copy(), x0[4:8].reshape(2, 2).copy(), x0[8:].copy()], hyper)
    for _ in range(3):
        assert float(flat.step(q)) == float(parts.step(q))
        assert np.array_equal(flat.flat_x(), parts.flat_x()), "the split parameters move differently"
    assert np.array_equal(_read(_state(flat), "d"), _read(_state(parts), "d"))
