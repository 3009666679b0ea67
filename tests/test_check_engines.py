"""The fast engine of ``conformance.check`` gives the interval engine's verdicts, failures and first departure.

Cases are drawn with ``conformance.strategies.cases`` under a fixed seed (derandomized Hypothesis) for every
optimizer of the numpy backend and each dtype, and run by a faithful backend (numpy) and by deliberately
broken optimizers (``tests.broken_optimizers`` through the torch backend), in both modes.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, reject, settings, strategies as st

import spec as spec_pkg
from conformance.backend import BackendError, for_backend
from conformance.backends import load
from conformance.check import check
from conformance.strategies import cases

NUMPY = load("numpy")
OPTIMIZERS = [name for name in spec_pkg.OPTIMIZERS if NUMPY.paths(name)]
DTYPES = ("float64", "float32", "float16", "bfloat16")
SETTINGS = settings(max_examples=3, derandomize=True, database=None, deadline=None, phases=(Phase.generate,),
                    suppress_health_check=list(HealthCheck))


def _per_element(report) -> dict:
    """(step, group, param, quantity, verdict) → count of "ok" and "limited" values, from findings and bulk."""
    out = {}
    for f in report.findings:
        if f.verdict in ("ok", "limited"):
            key = (f.step, f.group, f.param, f.quantity, f.verdict)
            out[key] = out.get(key, 0) + 1
    for b in report.bulk:
        key = (b.step, b.group, b.param, b.quantity, b.verdict)
        out[key] = out.get(key, 0) + b.count
    return out




def assert_same(data, outputs, mode):
    old = check(data, outputs, mode, engine="interval")
    # no budget for the exact comparison of undecided values (EXACT_LIMIT would leave the rest "unchecked", which
    # tests/test_check_limits.py holds, and LOST_LIMIT would estimate lost updates): here every value is compared, so
    # that each has the interval engine's verdict and lost status
    new = check(data, outputs, mode, engine="fast", exact_limit=10 ** 9, lost_limit=10 ** 9)
    assert not old.bulk
    # every value the fast engine compared exactly has the interval engine's verdict, numbers and reasons
    exact = {(f.step, f.group, f.param, f.index, f.quantity): f for f in old.findings}
    for f in new.findings:
        o = exact[(f.step, f.group, f.param, f.index, f.quantity)]
        assert (f.verdict, f.why, f.lost_update) == (o.verdict, o.why, o.lost_update)
        assert f.describe(data.dtype) == o.describe(data.dtype)
    # the rest the interval engine finds "ok" or "limited" (bulk limited values carry a scalar's reasons, or a
    # reason without the element's numbers), counts agreeing element for element
    assert _per_element(new) == _per_element(old)
    assert all(b.why for b in new.bulk if b.verdict == "limited")
    assert new.counts() == old.counts() and new.values() == len(old.findings)
    assert [f.describe(data.dtype) for f in new.failures] == [f.describe(data.dtype) for f in old.failures]
    assert new.summary() == old.summary()
    assert new.limited_reason() is None or old.limited_reason() is not None
    assert new.lost_updates() == old.lost_updates()
    assert new.max_ratio() <= old.max_ratio()
    return new


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_faithful_numpy(optimizer, dtype):
    @SETTINGS
    @given(st.data())
    def run(data):
        case = data.draw(cases(spec_pkg.get(optimizer), dtype, min_steps=2))
        outputs = NUMPY.run(for_backend(case, "for-loop"))
        for mode in ("trajectory", "step"):
            assert_same(case, outputs, mode)
    run()


def _broken():
    from tests.broken_optimizers import BROKEN
    return sorted(BROKEN.items())


@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize("name,optimizer", _broken())
def test_broken_torch(name, optimizer, dtype):
    _run_broken(name, optimizer, dtype)


def _run_broken(name, optimizer, dtype) -> list:
    """Both engines agree on cases drawn for a broken optimizer; per case and mode, whether it failed."""
    pytest.importorskip("torch")
    import tests.broken_optimizers as broken

    backend = load("torch-cpu", overrides={optimizer: getattr(broken, name)})
    failed = []

    @SETTINGS
    @given(st.data())
    def run(data):
        case = data.draw(cases(spec_pkg.get(optimizer), dtype, min_steps=2))
        try:
            outputs = backend.run(for_backend(case, "custom"))
        except BackendError as e:  # NoMuScheduleNAdam divides by 1 − μ-product, which can be 0, and
            if not isinstance(e.__cause__, ZeroDivisionError):  # Float32ScalarsAdam by 1 − float32(β₁) = 0
                raise
            reject()
        for mode in ("trajectory", "step"):
            failed.append(not assert_same(case, outputs, mode).ok)
    run()
    return failed


def test_broken_cases_fail():
    """The drawn cases of the broken optimizers do fail (so failures are compared), at least for some."""
    pytest.importorskip("torch")
    failed = [any(_run_broken(name, opt, "float64")) for name, opt in _broken()[:6]]
    assert sum(failed) >= 3, failed
