"""What ``conformance.check``'s fast engine does with a case too large to compare element by element.

A tensor failing everywhere is described by its first failing elements and counted in bulk; undecided
elements past the case's exact-comparison limit are counted as "unchecked" and named in a note; the
interval engine (every element exact) is the oracle for the counts.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance.backend import Case, Group, StepOutput, for_backend
from conformance.backends import load
from conformance.check import DESCRIBED_FAILURES, check


def _case(n: int, dtype="float64", steps=2, grad_fill=None) -> Case:
    rng = np.random.default_rng(5)
    p = rng.normal(size=n).astype(dtype)
    grads = [rng.normal(size=n).astype(dtype) for _ in range(steps)]
    if grad_fill is not None:
        for g in grads:
            g[grad_fill[0]] = grad_fill[1]
    return Case("sgd", dtype, [Group({"lr": 0.1, "momentum": 0.9}, [p])], [[[g]] for g in grads], None)


def _off_by(case: Case, outputs: list, scale: float) -> list:
    """The outputs with every parameter value moved by ``scale`` relative: a slip everywhere."""
    return [StepOutput([[np.asarray(o.params[0][0]) * (1 + scale)]], o.state) for o in outputs]


def test_a_tensor_failing_everywhere_is_described_by_its_first_elements():
    case = _case(200)
    outputs = _off_by(case, load("numpy").run(for_backend(case, "for-loop")), 1e-6)
    fast = check(case, outputs, "trajectory")
    exact = check(case, outputs, "trajectory", engine="interval")
    assert not fast.ok and not exact.ok
    assert fast.failed_values() == exact.failed_values() == 2 * 200
    described = {f.index for f in fast.failures}
    assert len(described) <= DESCRIBED_FAILURES + 2 and (0,) in described  # the lowest indices, each step's first
    assert any(b.verdict == "fail" for b in fast.bulk)
    assert fast.first_failure().describe("float64") == exact.first_failure().describe("float64")


def test_undecided_elements_past_the_limit_are_unchecked_and_said():
    case = _case(40, grad_fill=(slice(0, 30), np.nan))  # NaN gradients: compared by class, exactly
    outputs = load("numpy").run(for_backend(case, "for-loop"))
    full = check(case, outputs, "trajectory")
    assert "unchecked" not in full.counts()  # 30 undecided elements: within the default limit
    limited = check(case, outputs, "trajectory", exact_limit=5)
    counts = limited.counts()
    assert counts.get("unchecked") == 2 * 2 * 25  # 25 elements past the limit × 2 steps × (θ, momentum buffer)
    assert any("not compared exactly" in n and "unchecked" in n for n in limited.notes)
    assert limited.ok  # unchecked is no failure, and no "ok" either
    assert counts.get("special", 0) == full.counts()["special"] - 2 * 2 * 25


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_elements_limited_for_sure_are_decided_in_bulk_as_the_interval_engine_decides(dtype):
    """Squares that underflow (g tiny) or overflow make √v or the divisor limited; phase 1 says so in bulk."""
    spec_case = _case(64, dtype)
    rng = np.random.default_rng(1)
    tiny = np.asarray(rng.uniform(1, 2, 64) * 2.0 ** -20, dtype=dtype)
    huge = np.asarray(rng.uniform(1, 2, 64) * (2.0 ** 14 if dtype == "float16" else 2.0 ** 100), dtype=dtype)
    g = np.where(np.arange(64) % 2 == 0, tiny, huge).astype(dtype)
    case = Case("adam", dtype, [Group({"lr": 1e-3}, spec_case.groups[0].params)], [[[g]]], None)
    outputs = load("numpy").run(for_backend(case, "for-loop"))
    fast = check(case, outputs, "trajectory")
    exact = check(case, outputs, "trajectory", engine="interval")
    assert any(b.verdict == "limited" for b in fast.bulk)
    assert fast.counts() == exact.counts()


def _asgd_inf_case(t0: float) -> Case:
    """ASGD in bfloat16 (maximize): g = −inf at step 2 makes θ and ā −inf.  With t₀ just below 2, the μ of step 4
    is 1/(3 − t₀) = 1 − 2⁻⁴⁹: exactly not 1, so the exact rule takes ā + μ·(θ − ā) = −inf + μ·NaN = NaN, while
    torch keeps μ in float32, where it is 1, and copies ā = θ = −inf (its ``mu.item() != 1`` test)."""
    import ml_dtypes
    bf16 = ml_dtypes.bfloat16
    hyper = {"lr": 0.01, "lambd": 0.9, "alpha": 0.999, "t0": t0, "weight_decay": 0.0, "maximize": True}
    grads = [np.array([g], dtype=bf16) for g in (1e-31, -np.inf, -1e-39, 2e-36)]
    return Case("asgd", "bfloat16", [Group(hyper, [np.array([0.5], dtype=bf16)])], [[[g]] for g in grads], None)


def test_a_class_the_implementations_scalar_rounding_may_flip_is_limited_not_failed():
    """Where a branch condition is within the implementation's rounding of its threshold (torch's float32 μ) and the
    two branches differ in IEEE class, either class is accepted as format-limited (``reference.bound``'s shadow
    step after a non-finite input); with t₀ = 1.5 the same −inf where NaN is exact still fails."""
    case = _asgd_inf_case(1.9999999999999982)
    outputs = load("torch-cpu").run(for_backend(case, "for-loop"))
    assert np.isneginf(np.asarray(outputs[3].state[0][0]["ax"], np.float64)).all()  # torch: copied
    report = check(case, outputs, "trajectory", scalars="float32")
    assert report.ok and report.counts().get("limited"), report.summary()
    assert "differ in IEEE class" in report.limited_reason()
    nan_ax = [StepOutput(o.params, [[{**o.state[0][0], "ax": np.full(1, np.nan, o.params[0][0].dtype)}]])
              if k == 3 else o for k, o in enumerate(outputs)]
    assert check(case, nan_ax, "trajectory", scalars="float32").ok  # the exact rule's NaN is accepted too
    decided = _asgd_inf_case(1.5)
    outputs = load("torch-cpu").run(for_backend(decided, "for-loop"))
    assert check(decided, outputs, "trajectory", scalars="float32").ok  # torch gives NaN there as well
    wrong = [StepOutput(o.params, [[{**o.state[0][0], "ax": np.full(1, -np.inf, o.params[0][0].dtype)}]])
             if k == 3 else o for k, o in enumerate(outputs)]
    assert not check(decided, wrong, "trajectory", scalars="float32").ok


def _tiny_updates(n: int) -> Case:
    """SGD float32 where every update is below binary64's resolution of θ (θ in [1, 2), lr·g < 10⁻²³): θ stays
    put, and phase 1 cannot tell whether the exact θ moved.  Half the gradients are 0: θ exactly unchanged, which
    phase 1 knows (a zero bound), so that those are not lost."""
    rng = np.random.default_rng(7)
    p = (1 + rng.random(n)).astype("float32")
    g = np.where(np.arange(n) % 2 == 0, rng.random(n) * 1e-20, 0.0).astype("float32")
    return Case("sgd", "float32", [Group({"lr": 1e-3}, [p])], [[[g]], [[g]]], None)


def test_undecided_lost_updates_take_no_verdict_places_and_count_as_lost_past_their_limit():
    from conformance.check import LOST_LIMIT
    case = _tiny_updates(200)
    outputs = load("numpy").run(for_backend(case, "for-loop"))
    exact = check(case, outputs, "trajectory", engine="interval")
    everything = check(case, outputs, "trajectory", lost_limit=10 ** 9, exact_limit=10 ** 9)
    fast = check(case, outputs, "trajectory")
    assert exact.ok and everything.ok and fast.ok
    assert everything.lost_updates() == exact.lost_updates() == 2 * 100  # the moved half, both steps
    assert len({f.index for f in everything.findings}) == 100  # each undecided one compared exactly
    # the default: all within the bound, none unchecked; LOST_LIMIT elements compared exactly (and the best one),
    # the others counted as lost: here each of them is
    assert fast.counts() == exact.counts() == {"ok": 2 * 200}
    assert len({f.index for f in fast.findings}) <= LOST_LIMIT + 1
    assert fast.lost_updates() == exact.lost_updates()
    # a verdict's place is not taken by them: with one place, nothing is left unchecked
    assert check(case, outputs, "trajectory", exact_limit=1).counts() == {"ok": 2 * 200}
