"""The broken optimizers of realistic size (``REALISTIC`` in tests/broken_optimizers.py) are their faithful base,
bit for bit, on every small case (``strategies.cases(realistic=False)``: ≤ 4 elements, ≤ 2 tensors a group), so
a suite of small cases cannot catch them; on a case just large enough for each slip they depart, and only where
the slip says.  That the ``ci`` profile catches each is ``tests/test_harness_catches_bugs.py``'s audit.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

torch = pytest.importorskip("torch")

import spec as spec_pkg  # noqa: E402
import tests.broken_optimizers as bo  # noqa: E402
from conformance.backend import Case, Group, for_backend  # noqa: E402
from conformance.backends.torch_backend import TorchBackend  # noqa: E402
from conformance.strategies import cases  # noqa: E402


def _faithful_base(cls):
    return next(b for b in cls.__mro__ if b.__name__ in bo.FAITHFUL)


def _run(cls, case):
    spec = bo.BROKEN.get(cls.__name__) or bo.FAITHFUL[cls.__name__]
    return TorchBackend("cpu", overrides={spec: cls}).run(for_backend(case, "custom"))


def _bits(outputs) -> list:
    """Every parameter and state value of a run, as bytes (floats as their repr)."""
    out = []
    for o in outputs:
        out += [np.asarray(p).tobytes() for ps in o.params for p in ps]
        out += [repr(v) if isinstance(v, float) else np.asarray(v).tobytes()
                for sts in o.state for st_ in sts for _, v in sorted(st_.items())]
    return out


@pytest.mark.parametrize("name", sorted(bo.REALISTIC))
def test_small_cases_cannot_tell_it_from_its_faithful_base(name):
    cls = getattr(bo, name)
    base = _faithful_base(cls)
    spec = spec_pkg.get(bo.REALISTIC[name])

    @settings(max_examples=40, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["float64", "float32", "bfloat16", "float16"]), st.data())
    def run(dtype, data):
        case = data.draw(cases(spec, dtype, realistic=False), label="case")
        assert _bits(_run(cls, case)) == _bits(_run(base, case))

    run()


def _one_group(shapes, dtype="float64"):
    """Adam (defaults, lr 0.01), one step, θ = 1 and g = 1e-6 everywhere: ε = 1e-8 matters next to √v = 1e-6."""
    hyper = spec_pkg.get("adam").complete({"lr": 0.01})
    return Case("adam", dtype, [Group(hyper, [np.ones(s, dtype) for s in shapes])],
                [[[np.full(s, 1e-6, dtype) for s in shapes]]])


SLIPS = {  # class -> (a case just large enough, the elements that must depart: [tensor][flat mask])
    "VectorBodyEpsInsideSqrtAdam": (_one_group([(17,)]), [np.arange(17) < 16]),
    "SecondChunkNoBiasCorrectionVAdam": (_one_group([(bo.CHUNK + 3,)]), [np.arange(bo.CHUNK + 3) >= bo.CHUNK]),
    "LaterTensorsDoubleStepAdam": (_one_group([(2,)] * 6), [np.full(2, k >= bo.BATCH) for k in range(6)]),
}


@pytest.mark.parametrize("name", sorted(bo.REALISTIC))
def test_it_departs_exactly_where_its_slip_is(name):
    assert set(SLIPS) == set(bo.REALISTIC)
    case, departs = SLIPS[name]
    got = _run(getattr(bo, name), case)[0].params[0]
    want = _run(_faithful_base(getattr(bo, name)), case)[0].params[0]
    for g, w, mask in zip(got, want, departs):
        assert np.array_equal(g.ravel() != w.ravel(), mask)
