"""Resolution (issue 16): how small a slip a check can see, per θ value, and the blind share in the run report."""
from __future__ import annotations

import numpy as np
import pytest

from conformance.check import RESOLUTION_RANGE, Report
from conformance.run_report import DriftCollector, _blind_share, _median_bin, _pow2


def _report(bound, value, prev) -> Report:
    r = Report("sgd", "float32", "trajectory")
    r.add_resolution(np.array(bound), np.array(value), np.array(prev, dtype=np.float32))
    return r


def test_each_value_counts_in_the_bin_of_bound_over_change():
    # changes 1, 1, 1, 0.5, 0 and bounds 2^-20, 0.75, 1, 0.5, 2^-30: bins −20, −1, 0, 0 and the top (no change)
    r = _report([2.0 ** -20, 0.75, 1.0, 0.5, 2.0 ** -30], [1.0, 2.0, 3.0, 3.5, 4.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    assert r.resolution == {-20: 1, -1: 1, 0: 2, RESOLUTION_RANGE[1]: 1}
    assert _blind_share(r.resolution) == 3 / 5  # the bound is at least the change: 1 = 1, 0.5 = 0.5, any > 0


def test_values_without_a_finite_bound_and_exact_values_are_left_out():
    r = _report([np.inf, np.nan, 0.0, 0.0], [1.0, 1.0, 2.0, 5.0], [0.0, 0.0, 2.0, 4.0])
    assert r.resolution == {RESOLUTION_RANGE[0]: 1}  # bound 0 with a change of 1: exact, the lowest bin


def test_the_run_report_adds_merges_and_prints_the_resolution():
    a, b = _report([2.0 ** -10], [1.0], [0.0]), _report([2.0, 2.0 ** -10, 2.0 ** -12], [1.0] * 3, [0.0] * 3)
    c = DriftCollector()
    for r in (a, b):
        c.add("conformance/test_conformance.py::test_trajectory[sgd-for-loop-float32]", "numpy", "for-loop", None, r)
    row = c.to_dict()["entries"][0]
    assert row["resolution"] == {"-12": 1, "-10": 2, "1": 1}
    assert (row["resolution_median"], row["resolution_worst"], row["blind_share"]) == (-10, 1, 0.25)
    again = DriftCollector.from_json(c.to_json())
    assert again.to_dict()["entries"][0]["resolution"] == row["resolution"]
    assert "2^-10" in c.table() and "25.0%" in c.table()


def test_median_bin_and_labels():
    assert _median_bin({}) is None and _median_bin({-3: 1, 0: 1, 2: 5}) == 2
    lo, hi = RESOLUTION_RANGE
    assert (_pow2(None), _pow2(-7), _pow2(hi), _pow2(lo)) == ("-", "2^-7", f"≥2^{hi}", f"<2^{lo + 1}")


def test_state_variables_count_apart_from_theta():
    r = Report("adam", "float32", "trajectory")
    r.add_resolution(np.array([2.0 ** -5]), np.array([1.0]), np.array([0.0], dtype=np.float32), "exp_avg")
    assert r.resolution == {} and r.state_resolution == {"exp_avg": {-5: 1}}
    c = DriftCollector()
    c.add("conformance/test_conformance.py::test_trajectory[adam-for-loop-float32]", "numpy", "for-loop", None, r)
    row = c.to_dict()["entries"][0]
    assert row["state_resolution"] == {"exp_avg": {"-5": 1}} and row["state_blind_share"] == {"exp_avg": 0.0}
    again = DriftCollector.from_json(c.to_json())
    assert again.to_dict()["entries"][0]["state_resolution"] == row["state_resolution"]
    assert "exp_avg 0" in c.table()


def test_a_checked_trajectory_measures_each_exposed_state_from_its_second_step():
    # Adam, float32, θ = 1 and g = 1 for three steps: m goes 0.1, 0.19, 0.271 and v 0.001, 0.001999, 0.002997;
    # the second and third steps' changes (0.09, 0.081; ~0.000999) are far above float32's rounding, so no value of
    # either is blind, and the first step (state before it not exposed) is not counted.
    from conformance.backend import Case, Group, for_backend
    from conformance.backends import load
    from conformance.check import check

    data = Case("adam", "float32", [Group({"lr": 1e-3}, [np.ones(4, dtype=np.float32)])],
                [[[np.ones(4, dtype=np.float32)]] for _ in range(3)])
    report = check(data, load("numpy").run(for_backend(data, "for-loop")), scalars="float64")
    assert report.ok
    assert set(report.state_resolution) == {"exp_avg", "exp_avg_sq"}
    for name, hist in report.state_resolution.items():
        assert sum(hist.values()) == 2 * 4, name  # steps 2 and 3, four elements
        assert _blind_share(hist) == 0.0 and max(hist) < -10, (name, hist)
    assert sum(report.resolution.values()) == 3 * 4


@pytest.mark.parametrize("optimizer, hyper", [("adam", {"lr": 1e-3}), ("sgd", {"lr": 0.1, "momentum": 0.9})])
@pytest.mark.parametrize("mode", ["trajectory", "step"])
def test_the_interval_engine_counts_the_same_resolution_as_the_fast_engine(optimizer, hyper, mode):
    # The element-by-element engine (every check of a spec that reduces) used to count no resolution at all.
    from conformance.backend import Case, Group, for_backend
    from conformance.backends import load
    from conformance.check import check

    rng = np.random.default_rng(1)
    data = Case(optimizer, "float32", [Group(hyper, [rng.standard_normal(6).astype(np.float32)])],
                [[[rng.standard_normal(6).astype(np.float32)]] for _ in range(3)])
    outputs = load("numpy").run(for_backend(data, "for-loop"))
    fast, interval = (check(data, outputs, mode, engine=e, scalars="float64") for e in ("fast", "interval"))
    assert fast.ok and interval.ok
    assert sum(interval.resolution.values()) == 3 * 6
    assert interval.resolution == fast.resolution
    assert interval.state_resolution == fast.state_resolution


def test_a_spec_that_reduces_has_resolution_figures():
    from conformance.backend import Case, Group, for_backend
    from conformance.backends import load
    from conformance.check import check

    rng = np.random.default_rng(2)
    data = Case("lamb", "float32", [Group({"lr": 1e-2, "weight_decay": 0.01}, [rng.standard_normal(5).astype(np.float32)])],
                [[[rng.standard_normal(5).astype(np.float32)]] for _ in range(2)])
    report = check(data, load("numpy").run(for_backend(data, "for-loop")), scalars="float64")
    assert report.ok
    assert sum(report.resolution.values()) == 2 * 5 and max(report.resolution) < -5
    assert set(report.state_resolution) == {"exp_avg", "exp_avg_sq"}
