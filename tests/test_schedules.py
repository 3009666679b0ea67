"""torch.optim.lr_scheduler (float64 Python floats) against the exact schedule specs.

The tolerance
-------------
torch computes each lr with a handful of binary64 operations: the chainable
schedulers (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
PolynomialLR, SequentialLR) a few per step on the previous lr, the others
(CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR) a closed formula per step.
The tolerance for step n is ``reference.schedule.lr_error_bounds``: the
standard forward error analysis of exactly those operations (the spec's
torch form, with the recursion's error carried from step to step), each basic
operation charged 2u·(|result| + propagated error) and each cos/pow 8u
(u = 2⁻⁵³; a factor 2 to 8 above IEEE's ½ulp and glibc's < 1 ulp), math.pi
charged its own rounding, and every error propagated through the operation's
condition (a sum's error is relative to its terms, not its result; cos's
argument error enters absolutely, so near cos's zeros the bound is absolute
on the lr's scale; a quotient's error grows as its divisor nears zero).
Operations whose operands are exact and whose exact result is a double are
exact, as IEEE guarantees.  Comparisons within rounding of their threshold
(a phase boundary pct_start·N − 1 that torch rounds) take the worse branch.
Nothing is tuned per schedule or per case; the bound is the same function
of the operations for all of them.  The one place it is large — torch's
CosineAnnealingLR recursion — is measured here (test_cosine_recursive_drift) and recorded
as the known deviation ``cosine-recursive-drift`` (conformance/known_deviations.py).
"""
from __future__ import annotations

import copy
import math
import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import spec as optimizers
from conformance.backends.torch_backend import build_scheduler
from reference.bound import trajectory_bounds
from reference.formats import FORMATS, exact
from reference.schedule import (ScheduleError, compile_schedule, lr_error_bounds, lr_sequence, momentum_sequence,
                                optimizer_trajectory_with_schedule)
from reference.step import trajectory
from spec.core import InvalidHyperparameter
from conformance.known_deviations import KNOWN_DEVIATIONS, Target, by_id
from spec.schedules import SCHEDULES

L = torch.optim.lr_scheduler
U = mpmath.mpf(2) ** -53
SETTINGS = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --------------------------------------------------------------------------- torch side


def _optimizer(eta0: float, kind: str = "sgd") -> torch.optim.Optimizer:
    params = [torch.zeros(1, dtype=torch.float64, requires_grad=True)]
    if kind == "adam":
        return torch.optim.Adam(params, lr=eta0)
    return torch.optim.SGD(params, lr=eta0, momentum=0.0)


def _build(name: str, h: dict, opt) -> L.LRScheduler:
    """torch's scheduler for our hyperparameter dict (raw: defaults filled, nothing validated)."""
    return build_scheduler(name, h, opt)


def _momentum(opt) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


def torch_run(name, hyper, eta0, steps, kind="sgd"):
    """torch's lrs and momenta for steps 0 … steps−1 (step 0: after the constructor)."""
    opt = _optimizer(eta0, kind)
    sched = _build(name, hyper, opt)
    lrs, moms = [sched.get_last_lr()[0]], [_momentum(opt)]
    for _ in range(steps - 1):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        moms.append(_momentum(opt))
    return lrs, moms


# --------------------------------------------------------------------------- comparing


def _mp(value):
    with mpmath.workprec(300):
        if isinstance(value, Fraction):
            return mpmath.mpf(value.numerator) / value.denominator
        return mpmath.mpf(value)


def error_of(got: float, element) -> object:
    """|got − exact| (exactly when the exact value is rational)."""
    if isinstance(element.value, Fraction):
        d = abs(Fraction(got) - element.value)
        return _mp(d)
    with mpmath.workprec(300):
        return abs(mpmath.mpf(got) - element.value)


def slack(element):
    """The reference's own uncertainty: 0 for exact values, 2^-100 relative for interval midpoints."""
    return 0 if isinstance(element.value, Fraction) else abs(_mp(element.value)) * mpmath.mpf(2) ** -100


def assert_within(got: list, exact_values: list, bounds: list, what: str):
    for k, (g, e, b) in enumerate(zip(got, exact_values, bounds)):
        assert mpmath.isfinite(b), f"{what}: no finite error bound at step {k}"
        err = error_of(g, e)
        assert err <= b + slack(e), (f"{what}: step {k}: torch {g!r} vs exact {mpmath.nstr(_mp(e.value), 20)}: "
                                     f"error {mpmath.nstr(err, 3)} > bound {mpmath.nstr(b, 3)}")


def rounded(elements) -> list:
    return [float(e.rounded["float64"]) for e in elements]


# --------------------------------------------------------------------------- strategies

lr_values = st.one_of(st.sampled_from([0.1, 1.0, 1e-3, 0.5]), st.floats(1e-4, 10.0))
unit = st.floats(0.0, 1.0)
steps_st = st.integers(1, 40)


def _valid(name):
    def ok(case):
        try:
            SCHEDULES[name].complete(case[0])
            return True
        except InvalidHyperparameter:
            return False
    return ok


CASES = {
    "step": st.tuples(st.fixed_dictionaries({"step_size": st.integers(-6, 12).filter(bool),
                                             "gamma": st.floats(0.0, 1.5)}), lr_values, steps_st),
    "multistep": st.tuples(st.fixed_dictionaries({"milestones": st.lists(st.integers(-3, 40), max_size=6),
                                                  "gamma": st.floats(0.0, 1.5)}), lr_values, steps_st),
    "exponential": st.tuples(st.fixed_dictionaries({"gamma": st.floats(-1.2, 1.2)}), lr_values,
                             st.integers(1, 60)),
    "cosine": st.tuples(st.fixed_dictionaries({"T_max": st.integers(-20, 40).filter(bool), "eta_min": unit}),
                        lr_values, st.integers(1, 80)),
    "warm_restarts": st.tuples(st.fixed_dictionaries({"T_0": st.integers(1, 10), "T_mult": st.integers(1, 4),
                                                      "eta_min": unit}), lr_values, st.integers(1, 80)),
    "cyclic": st.tuples(st.fixed_dictionaries({
        "base_lr": unit, "max_lr": st.floats(0.0, 2.0), "step_size_up": st.integers(-3, 8).filter(bool),
        "step_size_down": st.none() | st.integers(-3, 8), "mode": st.sampled_from(["triangular", "triangular2",
                                                                                    "exp_range"]),
        "gamma": st.floats(0.5, 1.0), "cycle_momentum": st.booleans(), "base_momentum": st.floats(0.5, 0.9),
        "max_momentum": st.floats(0.85, 0.99)}), lr_values, steps_st).filter(_valid("cyclic")),
    "onecycle": st.tuples(st.fixed_dictionaries({
        "max_lr": lr_values, "total_steps": st.integers(1, 40),
        "pct_start": st.sampled_from([0.3, 0.25, 0.5, 0.0, 1.0]) | st.floats(0.0, 1.0),
        "anneal_strategy": st.sampled_from(["cos", "linear"]), "three_phase": st.booleans(),
        "div_factor": st.sampled_from([25.0]) | st.floats(1.0, 100.0),
        "final_div_factor": st.sampled_from([1e4]) | st.floats(1.0, 1e5),
        "base_momentum": st.floats(0.5, 0.9), "max_momentum": st.floats(0.85, 0.99)}),
        lr_values, st.just(0)).filter(_valid("onecycle")),
    "linear": st.tuples(st.fixed_dictionaries({"start_factor": st.floats(1e-3, 1.0), "end_factor": unit,
                                               "total_iters": st.integers(-3, 30)}), lr_values, steps_st),
    "polynomial": st.tuples(st.fixed_dictionaries({"total_iters": st.integers(-3, 30),
                                                   "power": st.sampled_from([1.0, 2.0, 0.5]) | st.floats(0.0, 5.0)}),
                            lr_values, steps_st),
    "sequential": st.tuples(st.fixed_dictionaries({
        "start_factor": st.floats(1e-3, 1.0), "end_factor": unit, "total_iters": st.integers(-2, 10),
        "milestone": st.integers(-3, 20), "decay": st.sampled_from(["exponential", "cosine"]),
        "gamma": st.floats(0.5, 1.0), "T_max": st.integers(-10, 20).filter(bool), "eta_min": st.floats(0.0, 0.1)}),
        lr_values, steps_st),
}


def _steps(name, hyper, steps):
    """OneCycleLR: all the steps torch computes (0 … last_step)."""
    if name == "onecycle":
        return SCHEDULES[name].last_step(SCHEDULES[name].complete(hyper)) + 1
    return steps


# --------------------------------------------------------------------------- the main comparison


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_torch_matches_exact_schedule(name):
    spec = SCHEDULES[name]

    @SETTINGS
    @given(CASES[name])
    def check(case):
        hyper, eta0, steps = case
        steps = _steps(name, hyper, steps)
        closed = lr_sequence(spec, hyper, eta0, steps)
        got, moms = torch_run(name, hyper, eta0, steps)
        assert_within(got, closed, lr_error_bounds(spec, hyper, eta0, steps), f"{name} {hyper} η₀={eta0}")
        if spec.recursive_form is not None:  # the spec's two forms are the same exact numbers
            assert rounded(lr_sequence(spec, hyper, eta0, steps, form="recursive")) == rounded(closed)
        if spec.momentum_form is not None and spec.complete(hyper)["cycle_momentum"]:
            assert_within(moms, momentum_sequence(spec, hyper, steps),
                          lr_error_bounds(spec, hyper, eta0, steps, quantity="momentum"), f"{name} momentum")

    check()


def test_bounds_are_a_few_ulps_for_closed_formulas():
    """The tolerance is not vacuous: for torch's closed formulas it is a few ulps of the lr's scale."""
    cases = [("warm_restarts", {"T_0": 7, "T_mult": 2, "eta_min": 0.001}, 0.1, 200),
             ("cyclic", {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 7, "step_size_down": 3}, 0.1, 200),
             ("onecycle", {"max_lr": 0.1, "total_steps": 100}, 0.1, 101),
             ("onecycle", {"max_lr": 0.1, "total_steps": 100, "three_phase": True, "anneal_strategy": "linear"},
              0.1, 101)]
    # cos(π·n/T) for n/T up to 200/7: the argument error grows.  CyclicLR's x = 1.0 + n/total − cycle rounds
    # relative to the cycle count (up to 21 here) and x/step_ratio amplifies that by up to total = 10.
    limits = {"warm_restarts": 200, "cyclic": 400, "onecycle": 200}
    for name, hyper, eta0, steps in cases:
        b = lr_error_bounds(SCHEDULES[name], hyper, eta0, steps)
        scale = max(abs(v) for v in (eta0, hyper.get("max_lr", 0), hyper.get("eta_min", 0)))
        worst = max(b) / (U * scale)
        assert worst < limits[name], (name, float(worst))


# --------------------------------------------------------------------------- edge steps


def test_warm_restarts_restart_steps():
    for T_0, T_mult, eta_min in [(1, 1, 0.0), (3, 1, 0.01), (3, 2, 0.0), (2, 3, 0.05), (5, 2, 0.5)]:
        hyper, eta0, steps = {"T_0": T_0, "T_mult": T_mult, "eta_min": eta_min}, 0.1, 120
        spec = SCHEDULES["warm_restarts"]
        opt = _optimizer(eta0)
        sched = _build("warm_restarts", hyper, opt)
        got, restarts = [sched.get_last_lr()[0]], {0}
        for k in range(1, steps):
            opt.step()
            sched.step()
            got.append(sched.get_last_lr()[0])
            if sched.T_cur == 0:
                restarts.add(k)
        expected = {T_0 * (T_mult ** i - 1) // (T_mult - 1) if T_mult > 1 else T_0 * i for i in range(200)}
        assert restarts == {k for k in expected if k < steps}
        exact_lrs = lr_sequence(spec, hyper, eta0, steps)
        # lr = η₀ exactly at the restarts and nowhere else (η_min ≠ η₀)
        assert {k for k, e in enumerate(exact_lrs) if e.value == Fraction(eta0)} == restarts
        for k in restarts - {0}:  # the step before a restart ends a cycle (T_cur = T_i − 1), unless T_i = 1
            assert (exact_lrs[k - 1].value != Fraction(eta0)) == (k - 1 not in restarts)
        assert_within(got, exact_lrs, lr_error_bounds(spec, hyper, eta0, steps), f"warm restarts {hyper}")


def test_cyclic_cycle_boundaries():
    spec = SCHEDULES["cyclic"]
    for up, down, mode in [(1, 1, "triangular"), (2, 3, "triangular2"), (4, 1, "exp_range"), (3, 0, "triangular"),
                           (5, 2, "triangular2")]:
        hyper = {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": up, "step_size_down": down, "mode": mode,
                 "gamma": 0.97}
        total, steps = up + down, 6 * (up + down) + 1
        exact_lrs = lr_sequence(spec, hyper, 0.0, steps)
        got, moms = torch_run("cyclic", hyper, 0.0, steps)
        base, top = Fraction(0.01), Fraction(0.1)
        for k in range(steps):
            cycle, pos = divmod(k, total)
            amp = {"triangular": Fraction(1), "triangular2": Fraction(1, 2 ** cycle),
                   "exp_range": Fraction(0.97) ** k}[mode]
            if pos == 0:  # a cycle starts: lr = base_lr exactly, in torch too
                assert exact_lrs[k].value == base and got[k] == 0.01
                assert moms[k] == 0.9
            if pos == up and down:  # the peak
                assert exact_lrs[k].value == base + (top - base) * amp
        assert_within(got, exact_lrs, lr_error_bounds(spec, hyper, 0.0, steps), f"cyclic {hyper}")
        assert_within(moms, momentum_sequence(spec, hyper, steps),
                      lr_error_bounds(spec, hyper, 0.0, steps, quantity="momentum"), "cyclic momentum")


def test_cyclic_momentum_with_adam_cycles_beta1():
    hyper = {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3}
    got, betas = torch_run("cyclic", hyper, 0.5, 13, kind="adam")
    spec = SCHEDULES["cyclic"]
    assert_within(betas, momentum_sequence(spec, hyper, 13),
                  lr_error_bounds(spec, hyper, 0.5, 13, quantity="momentum"), "cyclic beta1")


def test_onecycle_first_and_last_steps():
    spec = SCHEDULES["onecycle"]
    for extra in [{}, {"anneal_strategy": "linear"}, {"three_phase": True}, {"pct_start": 0.0},
                  {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.45}]:
        N = 10
        hyper = {"max_lr": 0.1, "total_steps": N, **extra}
        h = spec.complete(hyper)
        assert spec.last_step(h) == N
        exact_lrs = lr_sequence(spec, hyper, 0.0, N + 1)
        initial = Fraction(0.1) / Fraction(25.0)
        if h["pct_start"] > 0:
            assert exact_lrs[0].value == initial
        assert exact_lrs[N - 1].value == initial / Fraction(1e4)  # the last phase ends at min_lr
        got, _ = torch_run("onecycle", hyper, 0.0, N + 1)
        assert_within(got, exact_lrs, lr_error_bounds(spec, hyper, 0.0, N + 1), f"onecycle {hyper}")
        # step N is computed (it extrapolates past the last phase); step N+1 raises, in torch and here
        opt = _optimizer(0.0)
        sched = _build("onecycle", hyper, opt)
        for _ in range(N):
            sched.step()
        with pytest.raises(ValueError, match=f"Tried to step {N + 1} times"):
            sched.step()
        with pytest.raises(ScheduleError, match=f"Tried to step {N + 1} times"):
            lr_sequence(spec, hyper, 0.0, N + 2)
        lr_sequence(spec, hyper, 0.0, 1, start=N)  # fine

    # known deviation onecycle-rounded-phase-end: torch's rounded phase ends
    assert 0.1 * 10 == 1.0 and Fraction(0.1) * 10 != 1
    with pytest.raises(ZeroDivisionError):
        _build("onecycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 0.1}, _optimizer(0.0))
    with pytest.raises(InvalidHyperparameter, match="pct_start"):
        spec.complete({"max_lr": 0.1, "total_steps": 10, "pct_start": 0.1})
    empty_last = {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.0}
    assert spec.last_step(spec.complete(empty_last)) == 9
    sched = _build("onecycle", empty_last, _optimizer(0.0))
    for _ in range(9):
        sched.step()
    with pytest.raises(ZeroDivisionError):
        sched.step()
    with pytest.raises(ScheduleError, match="divides by zero at step 10"):
        lr_sequence(spec, empty_last, 0.0, 11)
    assert len(lr_sequence(spec, empty_last, 0.0, 10)) == 10


RESUME = {
    "step": {"step_size": 3, "gamma": 0.5},
    "multistep": {"milestones": (2, 5, 5, 9), "gamma": 0.3},
    "exponential": {"gamma": 0.95},
    "cosine": {"T_max": 7, "eta_min": 0.01},
    "warm_restarts": {"T_0": 3, "T_mult": 2, "eta_min": 0.001},
    "cyclic": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "step_size_down": 2, "mode": "triangular2"},
    "onecycle": {"max_lr": 0.1, "total_steps": 20, "three_phase": True},
    "linear": {"start_factor": 0.1, "total_iters": 8},
    "polynomial": {"total_iters": 12, "power": 1.5},
    "sequential": {"milestone": 4, "decay": "cosine", "T_max": 5},
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_resume_from_state_dict(name):
    spec, hyper, eta0, k, m = SCHEDULES[name], RESUME[name], 0.2, 7, 13
    straight, _ = torch_run(name, hyper, eta0, k + m)
    opt = _optimizer(eta0)
    sched = _build(name, hyper, opt)
    for _ in range(k - 1):
        opt.step()
        sched.step()
    saved_sched, saved_opt = copy.deepcopy(sched.state_dict()), copy.deepcopy(opt.state_dict())
    opt2 = _optimizer(eta0)
    sched2 = _build(name, hyper, opt2)  # the scheduler first, then the states (torch's documented order)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    resumed = []
    for _ in range(m):
        opt2.step()
        sched2.step()
        resumed.append(sched2.get_last_lr()[0])
    assert resumed == straight[k:]  # bit for bit
    forms = ["closed"] + (["recursive"] if spec.recursive_form else [])
    whole = lr_sequence(spec, hyper, eta0, k + m)
    for form in forms:
        assert rounded(lr_sequence(spec, hyper, eta0, m, start=k, form=form)) == rounded(whole[k:])
    assert_within(resumed, whole[k:], lr_error_bounds(spec, hyper, eta0, m, start=k), f"{name} resumed")


# --------------------------------------------------------------------------- the drift of the recursion


# (T_max, η₀, η_min, steps) → the largest |torch − exact| in units of u·max(|η₀|, |η_min|), the step where it
# occurs, and the largest ratio of the drift to the binary64 error bound of the closed form at the same step
# (torch 2.13.0+cpu, glibc libm; re-measured by the test, which accepts a factor 2 either way).
COSINE_DRIFT = {
    (1000, 1.0, 0.5, 2001): {"max_ulps": 9.631e4, "at": 2000, "over_closed_bound": 7071.0},
    (100, 0.1, 0.001, 1500): {"max_ulps": 2045.0, "at": 799, "over_closed_bound": 30.12},
}


def test_cosine_recursive_drift():
    """torch's recursive CosineAnnealingLR vs the exact closed form over thousands of steps.

    Asserted: the drift stays inside the recursion's derived bound (so it is
    rounding, amplified by the recursion's condition), and it exceeds what the
    closed formula evaluated in binary64 could produce by the factors
    recorded in COSINE_DRIFT (docs/measured/known-deviations.md#cosine-recursive-drift).
    """
    spec = SCHEDULES["cosine"]
    for (T, eta0, eta_min, steps), rec in COSINE_DRIFT.items():
        hyper = {"T_max": T, "eta_min": eta_min}
        got, _ = torch_run("cosine", hyper, eta0, steps)
        exact_lrs = lr_sequence(spec, hyper, eta0, steps)
        recursive_bound = lr_error_bounds(spec, hyper, eta0, steps)  # torch's own operations
        closed_bound = lr_error_bounds(spec, hyper, eta0, steps, form="closed")
        assert_within(got, exact_lrs, recursive_bound, f"cosine {hyper} recursion")
        scale = U * max(abs(eta0), abs(eta_min))
        drift = [error_of(g, e) / scale for g, e in zip(got, exact_lrs)]
        worst = max(range(steps), key=lambda k: drift[k])
        excess = max(drift[k] / (closed_bound[k] / scale) for k in range(steps) if closed_bound[k] > 0)
        assert abs(worst - rec["at"]) <= T, (T, worst, float(drift[worst]))  # the same half-cycle
        assert 0.5 <= drift[worst] / rec["max_ulps"] <= 2, (T, float(drift[worst]), rec)
        assert excess > 1 and 0.5 <= excess / rec["over_closed_bound"] <= 2, (T, float(excess), rec)


def test_sequential_milestone_zero_starts_with_the_decay():
    """Known deviation sequential-milestone-zero-before-2-13: from torch 2.13 a milestone 0 starts the decay at
    step 0 (η₀, as the spec says); before, the warm-up's η₀·start_factor.  The harness sets those cases aside only
    on torch < 2.13 (the entry's version range), so this test pins which side of the fix the installed torch is
    on."""
    entry = by_id("sequential-milestone-zero-before-2-13")
    before = entry.concerns(Target("torch-cpu", "torch.optim.lr_scheduler", torch.__version__))  # torch < 2.13
    hyper = dict(SCHEDULES["sequential"].complete({"start_factor": 1 / 3, "milestone": 0, "decay": "exponential",
                                                   "gamma": 0.9}))
    lrs, _ = torch_run("sequential", hyper, 0.1, 3)
    expected = [0.1 / 3, 0.1 / 3 * 0.9, 0.1 / 3 * 0.9 * 0.9] if before else [0.1, 0.1 * 0.9,
                                                                                              0.1 * 0.9 * 0.9]
    assert lrs == pytest.approx(expected, rel=1e-15)
    assert "2.13" in entry.issue


def test_schedule_deviations_name_a_test_here_and_existing_schedules():
    entries = [d for d in KNOWN_DEVIATIONS if d.implementation == ("torch.optim.lr_scheduler",)]
    assert entries
    for d in entries:
        where, _, test = d.reproduced_by.partition("::")
        assert where == "tests/test_schedules.py" and callable(globals().get(test)), d.id
        for name in (d.spec,) if isinstance(d.spec, str) else d.spec:
            assert name in SCHEDULES, (d.id, name)


# --------------------------------------------------------------------------- invalid arguments


def torch_raises(name, hyper, horizon=12) -> bool:
    """Whether torch raises in the constructor or in the first ``horizon`` steps (OneCycleLR: before step N)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            opt = _optimizer(0.1)
            sched = _build(name, hyper, opt)
            if name == "onecycle":
                horizon = hyper["total_steps"] - 1
            for _ in range(horizon):
                opt.step()
                sched.step()
        except (ValueError, ZeroDivisionError, TypeError):
            return True
    return False


def spec_raises(name, hyper) -> bool:
    try:
        SCHEDULES[name].complete(hyper)
    except InvalidHyperparameter as err:
        assert isinstance(err, ValueError) and name in str(err)
        return True
    return False


INVALID = [
    ("step", {"step_size": 0}), ("cosine", {"T_max": 0}), ("warm_restarts", {"T_0": 0}),
    ("warm_restarts", {"T_0": 3, "T_mult": 0}), ("cyclic", {"base_lr": 0.1, "max_lr": 1.0, "step_size_up": 0}),
    ("cyclic", {"base_lr": 0.1, "max_lr": 1.0, "step_size_up": 2, "step_size_down": -2}),
    ("cyclic", {"base_lr": 0.1, "max_lr": 1.0, "mode": "sawtooth"}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 0}), ("onecycle", {"max_lr": 0.1, "total_steps": -5}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.5}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "anneal_strategy": "cosine"}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "div_factor": 0.0}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "final_div_factor": 0.0}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 0.1}),
    ("linear", {"start_factor": 0.0}), ("linear", {"start_factor": 1.5}), ("linear", {"end_factor": -0.1}),
    ("polynomial", {"total_iters": 4, "power": -1.0}),
    ("sequential", {"decay": "cosine", "T_max": 0, "milestone": 2}),
]
VALID_ODDITIES = [  # torch accepts these; so does the spec
    ("step", {"step_size": -3}), ("cosine", {"T_max": -3}), ("multistep", {"milestones": [3, 3, -1, 0]}),
    ("exponential", {"gamma": -0.5}), ("cyclic", {"base_lr": 0.1, "max_lr": 1.0, "step_size_up": 3,
                                                  "step_size_down": 0}),
    ("cyclic", {"base_lr": 0.1, "max_lr": 1.0, "step_size_up": -1, "step_size_down": 3}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.0}),
    ("onecycle", {"max_lr": 0.1, "total_steps": 1}), ("linear", {"total_iters": 0}), ("linear", {"total_iters": -2}),
    ("polynomial", {"total_iters": 0, "power": -1.0}), ("polynomial", {"total_iters": 4, "power": 0.0}),
    ("sequential", {"decay": "exponential", "T_max": 0}),
]

RAW_CASES = {
    "step": st.fixed_dictionaries({"step_size": st.integers(-3, 3)}),
    "multistep": st.fixed_dictionaries({"milestones": st.lists(st.integers(-2, 5), max_size=4)}),
    "exponential": st.fixed_dictionaries({"gamma": st.floats(-2, 2)}),
    "cosine": st.fixed_dictionaries({"T_max": st.integers(-3, 3)}),
    "warm_restarts": st.fixed_dictionaries({"T_0": st.integers(-2, 3), "T_mult": st.integers(-1, 3)}),
    "cyclic": st.fixed_dictionaries({"base_lr": st.just(0.1), "max_lr": st.just(1.0),
                                     "step_size_up": st.integers(-3, 3),
                                     "step_size_down": st.none() | st.integers(-3, 3)}),
    "onecycle": st.fixed_dictionaries({
        "max_lr": st.just(0.1), "total_steps": st.integers(-2, 12),
        "pct_start": st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5, 0.55, 1.0, 1, 0, -0.1, 1.5, 0.3]),
        "div_factor": st.sampled_from([0.0, 25.0, -1.0]), "final_div_factor": st.sampled_from([0.0, 1e4]),
        "three_phase": st.booleans()}),
    "linear": st.fixed_dictionaries({"start_factor": st.sampled_from([0.0, 1e-3, 0.5, 1.0, 1.5, -0.5]),
                                     "end_factor": st.sampled_from([-0.1, 0.0, 0.5, 1.0, 1.1]),
                                     "total_iters": st.integers(-2, 4)}),
    "polynomial": st.fixed_dictionaries({"total_iters": st.integers(-2, 5),
                                         "power": st.sampled_from([-1.0, -0.5, 0.0, 0.5, 2.0])}),
    "sequential": st.fixed_dictionaries({"decay": st.sampled_from(["exponential", "cosine"]),
                                         "T_max": st.integers(-1, 2), "milestone": st.integers(-1, 4),
                                         "total_iters": st.integers(-1, 3)}),
}


def test_invalid_arguments_raise_exactly_when_torch_raises():
    for name, hyper in INVALID:
        assert torch_raises(name, hyper), (name, hyper)
        with pytest.raises(ValueError, match=name):
            SCHEDULES[name].complete(hyper)
    for name, hyper in VALID_ODDITIES:
        assert not torch_raises(name, hyper), (name, hyper)
        SCHEDULES[name].complete(hyper)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_spec_rejects_exactly_what_torch_rejects(name):
    @settings(max_examples=40, derandomize=True, deadline=None, database=None)
    @given(RAW_CASES[name])
    def check(hyper):
        assert spec_raises(name, hyper) == torch_raises(name, hyper), hyper

    check()


# --------------------------------------------------------------------------- optimizer trajectories


def test_optimizer_trajectory_with_schedule_matches_torch_sgd():
    sgd = optimizers.get("sgd")
    sched_hyper = {"step_size": 2, "gamma": 0.5}  # lrs exact in binary64: torch's equal the reference's
    param = np.array([1.0, -2.5, 0.3], dtype=np.float64)
    grads = [np.array(g, dtype=np.float64) for g in ([0.1, 0.2, -0.3], [1.0, -1.0, 0.5], [0.25, 0.0, 2.0],
                                                     [-0.5, 0.125, 1.0], [3.0, 0.5, -0.25])]
    hyper = {"lr": 0.1}
    snaps = optimizer_trajectory_with_schedule(sgd, hyper, param, grads, SCHEDULES["step"], sched_hyper)
    lrs = rounded(lr_sequence(SCHEDULES["step"], sched_hyper, 0.1, len(grads)))
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.025]
    direct = trajectory(sgd, hyper, param, grads, lrs=lrs)
    for a, b in zip(snaps, direct):
        assert np.array_equal(a.rounded("theta", "float64"), b.rounded("theta", "float64"))

    p = torch.tensor(param, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, foreach=False)
    sched = L.StepLR(opt, 2, 0.5)
    bounds = trajectory_bounds(sgd, sgd.complete(hyper), param, grads, FORMATS["float64"], lrs=lrs)
    for s, g in enumerate(grads):
        p.grad = torch.tensor(g)
        opt.step()
        sched.step()
        ours = snaps[s].values("theta")
        for i in range(len(param)):
            err = abs(_mp(exact(p.detach().numpy()[i])) - _mp(ours[i]))
            assert err <= bounds[s]["theta"][i].error, (s, i)


MOMENTUM_CYCLING = [
    ("sgd", {"lr": 0.1, "momentum": 0.9}, "cyclic",
     {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "step_size_down": 2, "mode": "triangular2"}, 12),
    ("sgd", {"lr": 0.1, "momentum": 0.0, "dampening": 0.25}, "onecycle",
     {"max_lr": 0.5, "total_steps": 9, "anneal_strategy": "linear", "three_phase": True}, 9),
    ("adam", {"lr": 0.1}, "onecycle", {"max_lr": 0.1, "total_steps": 10}, 10),
    ("adam", {"lr": 0.1, "beta2": 0.99}, "cyclic",
     {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 2, "mode": "exp_range", "gamma": 0.9,
      "base_momentum": 0.5, "max_momentum": 0.95}, 9),
]


@pytest.mark.parametrize("kind, hyper, name, sched_hyper, steps", MOMENTUM_CYCLING)
def test_momentum_cycling_schedule_matches_torch(kind, hyper, name, sched_hyper, steps):
    """CyclicLR/OneCycleLR with cycle_momentum drive SGD's momentum or Adam's β₁ every step; torch matches.

    Two separate checks, as in the conformance harness: the lr and momentum
    torch used at each step are within the schedule's tolerance of the exact
    schedule, and torch's parameters are within the optimizer's error bound of
    the exact trajectory fed those very values (``trajectory(hypers=...)``).
    ``optimizer_trajectory_with_schedule`` is that trajectory fed the exact
    schedule values instead (correctly rounded).
    """
    spec, sched = optimizers.get(kind), SCHEDULES[name]
    cycled = "beta1" if kind == "adam" else "momentum"
    param = np.array([1.0, -2.5, 0.3], dtype=np.float64)
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(3) for _ in range(steps)]

    p = torch.tensor(param, requires_grad=True)
    kwargs = {"betas": (0.9, hyper.get("beta2", 0.999))} if kind == "adam" else \
        {"momentum": hyper["momentum"], "dampening": hyper.get("dampening", 0.0)}
    opt = (torch.optim.Adam if kind == "adam" else torch.optim.SGD)([p], lr=hyper["lr"], foreach=False, **kwargs)
    scheduler = _build(name, sched_hyper, opt)
    used, thetas = [], []
    for g in grads:
        group = opt.param_groups[0]
        used.append({"lr": group["lr"], cycled: group["betas"][0] if kind == "adam" else group["momentum"]})
        p.grad = torch.tensor(g)
        opt.step()
        scheduler.step()
        thetas.append(p.detach().numpy().copy())

    assert_within([u["lr"] for u in used], lr_sequence(sched, sched_hyper, hyper["lr"], steps),
                  lr_error_bounds(sched, sched_hyper, hyper["lr"], steps), f"{name} lr")
    assert_within([u[cycled] for u in used], momentum_sequence(sched, sched_hyper, steps),
                  lr_error_bounds(sched, sched_hyper, hyper["lr"], steps, quantity="momentum"), f"{name} {cycled}")
    assert len({u[cycled] for u in used}) > 2  # it really cycles

    ref = trajectory(spec, hyper, param, grads, hypers=used)
    bounds = trajectory_bounds(spec, spec.complete(hyper), param, grads, FORMATS["float64"], hypers=used)
    for s in range(steps):
        exact_theta = ref[s].values("theta")
        for i in range(len(param)):
            err = abs(_mp(exact(thetas[s][i])) - _mp(exact_theta[i]))
            assert err <= bounds[s]["theta"][i].error, (s, i, float(err), float(bounds[s]["theta"][i].error))

    snaps = optimizer_trajectory_with_schedule(spec, hyper, param, grads, sched, sched_hyper)
    exact_values = [{"lr": lr, cycled: m} for lr, m in zip(rounded(lr_sequence(sched, sched_hyper, hyper["lr"], steps)),
                                                         rounded(momentum_sequence(sched, sched_hyper, steps)))]
    direct = trajectory(spec, hyper, param, grads, hypers=exact_values)
    for a, b in zip(snaps, direct):
        assert np.array_equal(a.rounded("theta", "float64"), b.rounded("theta", "float64"))


def test_momentum_cycling_needs_a_momentum_hyperparameter():
    with pytest.raises(ValueError, match="momentum or beta1"):
        optimizer_trajectory_with_schedule(optimizers.get("adagrad"), {"lr": 0.1}, np.zeros(1), [np.ones(1)],
                                           SCHEDULES["cyclic"], {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2})
    with pytest.raises(ValueError, match="momentum"):  # torch refuses it too
        _build("cyclic", {"base_lr": 0.01, "max_lr": 0.1}, torch.optim.Adagrad([torch.zeros(1)], lr=0.1))
    snaps = optimizer_trajectory_with_schedule(optimizers.get("adagrad"), {"lr": 0.1}, np.zeros(1), [np.ones(1)] * 3,
                                               SCHEDULES["cyclic"], {"base_lr": 0.01, "max_lr": 0.1,
                                                                     "step_size_up": 2, "cycle_momentum": False})
    assert len(snaps) == 3


def test_trajectory_hypers_generalise_lrs():
    """``hypers=[{"lr": x}]`` is ``lrs=[x]``; a changed flag is refused; values stay in force until changed."""
    sgd = optimizers.get("sgd")
    param, grads = np.array([1.0, 2.0]), [np.array([0.5, -1.0])] * 3
    by_lrs = trajectory(sgd, {"lr": 0.1, "momentum": 0.5}, param, grads, lrs=[None, 0.2, None])
    by_hypers = trajectory(sgd, {"lr": 0.1, "momentum": 0.5}, param, grads, hypers=[None, {"lr": 0.2}, {}])
    for a, b in zip(by_lrs, by_hypers):
        assert np.array_equal(a.rounded("theta", "float64"), b.rounded("theta", "float64"))
    with pytest.raises(ValueError, match="flags cannot change"):
        trajectory(sgd, {"lr": 0.1, "momentum": 0.5}, param, grads, hypers=[None, {"nesterov": True}, None])
    with pytest.raises(InvalidHyperparameter):
        trajectory(sgd, {"lr": 0.1}, param, grads, hypers=[None, {"momentum": -0.5}, None])
    # momentum 0.5 at step 1, then 0: every step moves θ by lr·g (the first step's buffer is g), exactly
    mom = trajectory(sgd, {"lr": 0.1, "momentum": 0.5}, param, grads, hypers=[None, {"momentum": 0.0}, None])
    for k, snap in enumerate(mom, start=1):
        assert abs(snap.theta[0].value - _mp(1 - k * Fraction(0.1) * Fraction(0.5))) < 1e-30
    with_momentum = trajectory(sgd, {"lr": 0.1, "momentum": 0.5}, param, grads)
    assert with_momentum[2].rounded("theta", "float64")[0] < mom[2].rounded("theta", "float64")[0]


def test_compiled_programs_are_readable_and_cached():
    p1 = compile_schedule(SCHEDULES["cosine"], {"T_max": 3}, "recursive")
    p2 = compile_schedule(SCHEDULES["cosine"], {"T_max": 9, "eta_min": 0.5}, "recursive")
    assert p1 is p2 and "O.cos" in p1.source and "O.pi()" in p1.source
    assert "O.floor_log" in compile_schedule(SCHEDULES["warm_restarts"], {"T_0": 2}).source


def test_sequential_cosine_restart_is_charged_its_two_roundings():
    """At the milestone torch sets CosineAnnealingLR's closed form at epoch 0: η_min + (η₀ − η_min), rounded twice.

    Found by the default profile (seed 1): η₀ = 0.001, η_min = −0.1 gives 0.0010000000000000009 (4 ulp); the bound
    of that step was 0 while the spec let SymPy cancel the expression to η₀.
    """
    hyper = {"start_factor": 1 / 3, "total_iters": 0, "milestone": 1, "decay": "cosine", "T_max": 1, "eta_min": -0.1}
    got = torch_run("sequential", hyper, 0.001, 2)[0]
    exact_values = lr_sequence(SCHEDULES["sequential"], hyper, 0.001, 2)
    bounds = lr_error_bounds(SCHEDULES["sequential"], hyper, 0.001, 2)
    assert got[1] == 0.0010000000000000009 and exact(exact_values[1].rounded["float64"]) == Fraction(0.001)
    assert_within(got, exact_values, bounds, "sequential cosine restart")


def test_reported_hyperparameters_may_leave_the_domain_by_rounding():
    """LinearLR to end_factor 0 gives torch an lr of about −2e-20: the reference runs with it when told not to validate."""
    sgd = optimizers.get("sgd")
    with pytest.raises(InvalidHyperparameter):
        trajectory(sgd, {"lr": 0.1}, np.ones(1), [np.ones(1)] * 2, hypers=[None, {"lr": -2e-20}])
    snaps = trajectory(sgd, {"lr": 0.1}, np.ones(1), [np.ones(1)] * 2, hypers=[None, {"lr": -2e-20}], validate=False)
    assert snaps[1].theta[0].rounded["float64"] == np.float64(0.9 + 2e-20)


def test_linear_subnormal_start_factor_is_a_binary64_limitation():
    """start_factor = 2⁻¹⁰⁷⁴: η₀·start_factor underflows to 0 and 1/start_factor overflows, so torch's recursion gives
    0·inf = NaN at step 1 where the exact lr is η₀.  The bound is infinite (a scalar overflow), so the harness
    reports it as limited, not as a failure (default profile, seed 2)."""
    from conformance.schedule_check import ScheduleCase, check_values
    hyper = {"start_factor": 5e-324, "end_factor": 1.0, "total_iters": 1}
    got = torch_run("linear", hyper, 0.1, 2)[0]
    assert got[0] == 0.0 and math.isnan(got[1])
    bounds = lr_error_bounds(SCHEDULES["linear"], hyper, 0.1, 2)
    assert not mpmath.isfinite(bounds[1])
    report = check_values(ScheduleCase("linear", SCHEDULES["linear"].complete(hyper), 0.1, 2), got, None)
    assert report.ok and [f.verdict for f in report.findings] == ["ok", "limited"]
