"""Realistic-size cases: the simplest draw has a tensor past 65,536 elements, and large cases replay bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import conformance.profiles  # noqa: F401  (registers the ci profile)
import spec as spec_pkg
from conformance.backend import for_backend, scalar_precision
from conformance.check import check
from conformance.replay import reproduction
from conformance.strategies import LARGE, VALUE_BYTES, bulk_array, cases, decode_values
from reference.formats import get_format


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


@pytest.mark.parametrize("dtype", ("float16", "bfloat16", "float32", "float64"))
def test_decoded_values_keep_the_spread_of_the_old_draws(dtype):
    """``decode_values`` (what ``array`` and a bulk array's spots draw) gives, from uniform bytes, every class of
    value the suite's tensors always had, in about its share: ±0, ±1 and 0.5 (one in six), subnormals (one in six, and
    more in float16, whose normal binades reach below 2⁻¹⁴), values past 2¹² (the wide class), short significands;
    values of the dtype, finite but where the wide class rounds past the largest finite value; and all-zero bytes
    are 0.0, the value Hypothesis shrinks toward."""
    fmt = get_format(dtype)
    assert decode_values(bytes(VALUE_BYTES), dtype)[0] == 0
    assert not np.signbit(decode_values(bytes(VALUE_BYTES), dtype)[0])
    v = decode_values(np.random.default_rng(0).integers(0, 256, 60_000 * VALUE_BYTES, dtype=np.uint8).tobytes(),
                      dtype)
    assert v.dtype == fmt.dtype and v.shape == (60_000,)
    x = v.astype(np.float64)
    a = np.abs(x)
    assert not np.isnan(x).any()
    tiny = float(fmt.min_normal)
    share = {"zero": np.mean(x == 0), "negative zero": np.mean((x == 0) & np.signbit(x)), "one": np.mean(a == 1),
             "subnormal": np.mean((a > 0) & (a < tiny)), "past 2^12": np.mean(np.isfinite(x) & (a >= 2.0 ** 13)),
             "negative": np.mean(x < 0),
             "short": np.mean(np.isfinite(x) & (a > 0) & (np.frexp(a)[0] * 2 ** 11 % 1 == 0))}
    assert 0.05 < share["zero"] < 0.09 and 0.02 < share["negative zero"] < 0.05, share
    assert 0.03 < share["one"] < 0.2, share
    assert 0.15 < share["subnormal"] < 0.45, share
    # the wide class spreads over the dtype's exponents: float16's reach only 2¹⁵, three of its forty past 2¹²
    assert (0.005 if dtype == "float16" else 0.02) < share["past 2^12"] < 0.17, share
    assert 0.4 < share["negative"] < 0.5, share
    assert 0.25 < share["short"], share
    assert np.isinf(x).mean() < 0.01
