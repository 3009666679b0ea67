"""Realistic-size cases: the simplest draw has a tensor past 65,536 elements, and large cases replay bit for bit."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

import conformance.profiles  # noqa: F401  (registers the ci profile)
import spec as spec_pkg
from conformance.backend import for_backend, scalar_precision
from conformance.check import check
from conformance.replay import reproduction
from conformance.strategies import LARGE, bulk_array, cases


@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
def test_ci_profile_draws_a_large_case_first(dtype):
    sizes = []

    @settings(settings.get_profile("ci"))
    @given(st.data())
    def run(data):
        case = data.draw(cases(spec_pkg.get("adam"), dtype, realistic=True))
        sizes.append(max(p.size for _, ps in case.groups for p in ps))
    run()
    assert sizes[0] > LARGE and any(s > 8 for s in sizes[1:])


def test_bulk_array_is_a_pure_function():
    a = bulk_array("bfloat16", (70000,), 7, ((3, "0x0p+0"), (69999, "-0x1p-133")))
    b = bulk_array("bfloat16", (70000,), 7, ((3, "0x0p+0"), (69999, "-0x1p-133")))
    assert a.tobytes() == b.tobytes() and a[3] == 0 and float(a[69999]) == -2.0 ** -133


def test_large_failing_case_replays():
    """A broken optimizer's failure on a large drawn case: the printed reproduction (a seed and the drawn
    values, not 65,537 hex values) replays to the same first departure."""
    pytest.importorskip("torch")
    from conformance.backends import load
    from tests.broken_optimizers import EpsInsideSqrtAdam

    backend = load("torch-cpu", overrides={"adam": EpsInsideSqrtAdam})
    drawn = []

    @settings(settings.get_profile("ci"), max_examples=1)
    @given(st.data())
    def run(data):
        drawn.append(data.draw(cases(spec_pkg.get("adam"), "float32", realistic=True)))
    run()
    case = drawn[0]
    assert max(p.size for _, ps in case.groups for p in ps) > LARGE
    report = check(case, backend.run(for_backend(case, "custom")), scalars=scalar_precision(backend, "adam", "custom"))
    assert not report.ok
    repro = reproduction(case, "torch-cpu", "custom", "trajectory",
                         {"adam": "tests.broken_optimizers:EpsInsideSqrtAdam"})
    assert len(repro) < 20000  # a recipe, not every value
    ns = {}
    exec(repro.replace("replay(", "report = replay(quiet=True, ", 1), ns)  # noqa: S102
    again = ns["report"]
    assert again.first_failure().describe("float32") == report.first_failure().describe("float32")
    assert again.summary() == report.summary()


@pytest.mark.parametrize("realistic", (True, False))
def test_realistic_cases_draw_every_layout_and_small_ones_none(realistic):
    """Realistic cases come in every memory layout; small cases stay contiguous.

    The layouts of up to 300 derandomized draws are collected without shrinking (``hypothesis.find`` shrank each
    large match, most of this test's former 144 s); realistic draws stop once every layout is seen (all 300 took
    43 s more).
    """
    from hypothesis import Phase

    from conformance.backend import LAYOUTS

    seen = set()

    class AllSeen(Exception):
        pass

    @settings(max_examples=300, database=None, derandomize=True, deadline=None, phases=[Phase.generate])
    @given(cases(spec_pkg.get("sgd"), "float32", realistic=realistic))
    def collect(case):
        seen.add(case.layout)
        if seen == set(LAYOUTS):
            raise AllSeen

    try:
        collect()
    except AllSeen:
        pass
    assert seen == (set(LAYOUTS) if realistic else {"contiguous"})
