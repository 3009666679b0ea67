"""Single-step mode never invents state the backend did not report.

``check(mode="step")`` restarts the exact reference at each step from the backend's own previous state.  A state
variable that step reads but the backend did not report used to fall back to the spec's initial value (v = 0), which
failed a faithful implementation (or could pass a wrong one).  Now such a step is not checked: its values count as
``unchecked``, ``Report.state_unknown`` and a note name the parameter, the step, the missing and the reported state.
State absent before the parameter's first gradient (torch creates it lazily) and state the rule does not read for
these hyperparameters (max_exp_avg_sq without amsgrad, SGD's buffer with μ = 0) are no reason to stop.

The outputs are the NumPy backend's, with state taken out as a backend that does not expose it would.
"""
from __future__ import annotations

import numpy as np
import pytest

import spec as spec_pkg
from conformance.backend import Case, Group, StepOutput, for_backend
from conformance.backends import load
from conformance.check import check
from conformance.run_report import DriftCollector
from reference.program import state_read

NUMPY = load("numpy")
ENGINES = ("fast", "interval")


def _case(optimizer, hyper, grads, dtype="float32"):
    """One group, one parameter of 3 elements, one gradient (or None) per step."""
    p = np.array([0.75, -1.5, 3.0], dtype=dtype)
    rows = [[[None if g is None else np.array(g, dtype=dtype)]] for g in grads]
    return Case(optimizer, dtype, [Group(hyper, [p])], rows)


GRADS = [[0.5, -0.25, 2.0], [-1.0, 0.125, 1.5], [0.75, 0.5, -3.0]]


def _run(case):
    return NUMPY.run(for_backend(case, "for-loop"))


def _without(outputs, *names, state_none=False):
    """``outputs`` as a backend that reports no ``names`` (or no state at all) gives them."""
    return [StepOutput(o.params, None if state_none else
                       [[{k: v for k, v in st.items() if k not in names} for st in row] for row in o.state])
            for o in outputs]


def _unchecked_steps(report):
    return sorted({b.step for b in report.bulk if b.verdict == "unchecked"})


@pytest.mark.parametrize("engine", ENGINES)
def test_a_missing_state_variable_is_reported_not_invented(engine):
    case = _case("adam", {"lr": 0.1}, GRADS)
    outputs = _without(_run(case), "exp_avg_sq")
    report = check(case, outputs, "step", engine=engine)
    # before: steps 2 and 3 restarted from v = 0 and failed a faithful implementation
    assert report.ok, report.summary()
    assert [(u.step, u.group, u.param, u.missing) for u in report.state_unknown] == \
        [(1, 0, 0, ("exp_avg_sq",)), (2, 0, 0, ("exp_avg_sq",))]
    assert report.state_unknown[0].reported == ("exp_avg", "step")
    assert _unchecked_steps(report) == [1, 2]
    # their θ and the reported exp_avg: 2 steps × 2 quantities × 3 elements, none with a verdict
    assert report.counts()["unchecked"] == 12
    assert not [f for f in report.findings if f.step > 0]
    # the first step (state: the spec's initial values) is checked
    assert report.counts()["ok"] >= 3 * 2
    note, = report.notes
    for text in ("group 0, param 0", "step(s) 2, 3", "exp_avg_sq", "reported exp_avg, step", "trajectory mode"):
        assert text in note
    assert "note: group 0, param 0" in report.summary()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wrong_step_from_reported_state_still_fails(engine):
    # the other parameters and steps are checked as before: a slip at step 2 with all state reported fails
    case = _case("adam", {"lr": 0.1}, GRADS)
    outputs = _run(case)
    bad = [StepOutput([[np.where(np.arange(3) == 1, -o.params[0][0], o.params[0][0])]], o.state) if s == 1 else o
           for s, o in enumerate(outputs)]
    report = check(case, bad, "step", engine=engine)
    assert not report.ok and report.first_failure().step == 1 and not report.state_unknown


def test_no_state_at_all_is_visible():
    case = _case("adam", {"lr": 0.1}, GRADS)
    report = check(case, _without(_run(case), state_none=True), "step")
    assert report.ok and _unchecked_steps(report) == [1, 2]
    assert [u.missing for u in report.state_unknown] == [("exp_avg", "exp_avg_sq")] * 2
    assert "it reported nothing" in report.notes[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_state_absent_before_the_first_gradient_is_the_initial_value(engine):
    # no gradient at step 1: torch has created no state yet; step 2 starts from the spec's initial state
    case = _case("adam", {"lr": 0.1}, [None, GRADS[0], GRADS[1]])
    outputs = _run(case)
    assert outputs[0].state[0][0] == {}
    report = check(case, outputs, "step", engine=engine)
    assert report.ok and not report.state_unknown and "unchecked" not in report.counts()
    # with no state at all, steps 1 and 2 are still checked: neither reads any
    report = check(case, _without(outputs, state_none=True), "step", engine=engine)
    assert report.ok and _unchecked_steps(report) == [2]


@pytest.mark.parametrize("optimizer, hyper, absent", [
    ("adam", {"lr": 0.1, "amsgrad": False}, "max_exp_avg_sq"),  # a variable the flags leave unused
    ("sgd", {"lr": 0.1, "momentum": 0.0}, "momentum_buffer"),  # the μ ≠ 0 guard: torch keeps no buffer for μ = 0
    ("rmsprop", {"lr": 0.1, "momentum": 0.0, "centered": False}, "grad_avg"),
])
def test_state_the_rule_does_not_read_may_be_absent(optimizer, hyper, absent):
    case = _case(optimizer, hyper, GRADS)
    report = check(case, _without(_run(case), absent), "step")
    assert report.ok and not report.state_unknown and "unchecked" not in report.counts()


@pytest.mark.parametrize("optimizer, hyper, absent", [
    ("adam", {"lr": 0.1, "amsgrad": True}, "max_exp_avg_sq"),
    ("sgd", {"lr": 0.1, "momentum": 0.5}, "momentum_buffer"),
    ("rmsprop", {"lr": 0.1, "momentum": 0.0, "centered": True}, "grad_avg"),
])
def test_state_the_rule_reads_may_not(optimizer, hyper, absent):
    case = _case(optimizer, hyper, GRADS)
    report = check(case, _without(_run(case), absent), "step")
    assert {u.missing for u in report.state_unknown} == {(absent,)} and _unchecked_steps(report) == [1, 2]


def test_a_scalar_reported_0d_counts_as_reported():
    # NAdam's mu_product is a per-parameter scalar, reported as a float (broadcast by the check)
    case = _case("nadam", {"lr": 0.1}, GRADS)
    outputs = _run(case)
    assert np.ndim(outputs[0].state[0][0]["mu_product"]) == 0
    report = check(case, outputs, "step")
    assert report.ok and not report.state_unknown


def test_state_read_follows_flags_guards_and_the_step():
    def reads(name, hyper, t, outputs=("theta",)):
        s = spec_pkg.get(name)
        return set(state_read(s, s.complete(hyper), outputs, t))

    assert reads("adam", {}, 2) == {"exp_avg", "exp_avg_sq"}
    assert reads("adam", {"amsgrad": True}, 2) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert reads("adam", {}, 2, ("max_exp_avg_sq",)) == {"max_exp_avg_sq"}  # left alone: it reads itself
    assert reads("sgd", {"momentum": 0.0}, 2) == set()
    assert reads("sgd", {"momentum": 0.5}, 2) == {"momentum_buffer"}
    assert reads("sgd", {"momentum": 0.5}, 1) == set()  # the first step's buffer is the gradient
    assert reads("radam", {}, 2) == {"exp_avg"}  # ρ_t ≤ 5: no adaptive term
    assert reads("radam", {}, 7) == {"exp_avg", "exp_avg_sq"}
    assert reads("asgd", {}, 3) == {"eta"}


def test_run_report_lists_the_steps_not_checked():
    case = _case("adam", {"lr": 0.1}, GRADS)
    report = check(case, _without(_run(case), "exp_avg_sq"), "step")
    c = DriftCollector()
    c.add("conformance/test_conformance.py::test_single_steps[adam-for-loop-float32]", "numpy", "for-loop", case,
          report)
    merged = DriftCollector().merge(c.to_json())
    e = merged.to_dict()["entries"][0]
    assert e["state_unexposed"] == {"exp_avg_sq": 2} and e["unchecked"] == 12
    assert "adam for-loop float32: single steps not checked" in merged.table("numpy")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_single_step_takes_the_lr_in_force_when_lrs_leaves_it_unchanged(engine):
    # lrs[s][i] = None means "group['lr'] unchanged" (backend.Case); single-step mode used to restart such a step
    # from the group's constructor lr, failing a faithful backend that kept the lr set before.
    case = _case("sgd", {"lr": 0.1, "momentum": 0.5}, GRADS)
    case = Case(case.optimizer, case.dtype, case.groups, case.grads, [[0.5], [None], [None]])
    outputs = _run(case)
    assert check(case, outputs, "trajectory", engine=engine).ok
    report = check(case, outputs, "step", engine=engine)
    assert report.ok, report.summary()
    # the same outputs against a case whose lr went back to 0.1 after step 0 must fail: the check reads the lr
    back = Case(case.optimizer, case.dtype, case.groups, case.grads, [[0.5], [0.1], [None]])
    assert not check(back, outputs, "step", engine=engine).ok
