"""The L-BFGS properties catch deliberately broken ports (tests/broken_lbfgs.py) and pass the faithful one.

Each conformance test of ``conformance/test_lbfgs.py`` is run in this process on the NumPy runner of the class,
with the ``ci`` profile's settings (derandomized, 6 examples)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings

from conformance import lbfgs as lb
from conformance import test_lbfgs as props
from conformance.backends.numpy_lbfgs import NumpyLBFGS

from tests import broken_lbfgs

settings.register_profile("lbfgs-broken", max_examples=6, derandomize=True, database=None, deadline=None,
                          phases=[Phase.explicit, Phase.generate],  # the first failure is enough: no shrinking
                          suppress_health_check=list(HealthCheck))
HYPOTHESIS_TESTS = [getattr(props, n) for n in dir(props)
                    if n.startswith("test_") and hasattr(getattr(props, n), "hypothesis")]
#: what must catch each broken port (every other test may pass: a test checks its own statements)
CAUGHT_BY = {
    "L2FirstStep": {"test_first_step_is_minus_g_scaled_by_its_l1_norm"},
    "OldestPairFirst": {"test_direction_is_the_two_loop_recursion_of_the_stored_pairs",
                        "test_secant_equation_for_the_newest_pair"},
}


def _failing(cls, tests=HYPOTHESIS_TESTS) -> set:
    make = lambda parts, hyper: lb.NumpyRunner(cls, parts, hyper)  # noqa: E731
    failed, before = set(), settings.get_current_profile_name()
    settings.load_profile("lbfgs-broken")  # the ci profile's examples, whatever profile this run has
    try:
        for test in tests:
            try:
                test(make=make)
            except AssertionError:
                failed.add(test.__name__)
    finally:
        settings.load_profile(before)
    return failed


def test_the_faithful_port_passes_every_property():
    assert HYPOTHESIS_TESTS and _failing(NumpyLBFGS) == set()


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_a_broken_port_is_caught(name):
    tests = [t for t in HYPOTHESIS_TESTS if t.__name__ in CAUGHT_BY[name]]
    assert _failing(getattr(broken_lbfgs, name), tests) == CAUGHT_BY[name]
