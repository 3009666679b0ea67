"""torch's capturable paths, fuzzed on the CPU against the reference, with the known deviations set aside.

capturable=True is refused off CUDA only by a device check; lifted (tests/torch_capturable.py), the same
tensor arithmetic runs on the CPU.  CI has no GPU, so this is where the capturable entries of
conformance/known_deviations.py are held to account: a capturable departure on the CPU that no entry covers
fails here (session 4's GPU run found seven that the entries of the day missed, all reproducible on the CPU).
What the CPU cannot show is CUDA's own arithmetic (the ``torch-cuda`` entries): that needs
``pytest conformance --backend=torch-cuda`` on a GPU.
"""
from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given, reject, settings, strategies as st

torch = pytest.importorskip("torch")

import spec as spec_pkg  # noqa: E402
from conformance import backends  # noqa: E402
from conformance.harness import run_backend  # noqa: E402
from conformance.check import check  # noqa: E402
from conformance.known_deviations import affecting, find, torch_target  # noqa: E402
from conformance.replay import reproduction  # noqa: E402
from conformance.strategies import cases  # noqa: E402
from tests.torch_capturable import OPTIMIZERS, capturable_on_cpu  # noqa: E402

PATHS = ("capturable", "capturable-foreach")
DTYPES = ("float16", "bfloat16", "float32")  # float64: a whole-(path, dtype) known deviation (float32 step counter)


BACKEND = backends.load("torch-cpu")  # it runs any built-in path it is given; paths() lists the CPU's own


# Rprop keeps no step-dependent scalar, so its float64 capturable paths have no such entry: checked too.
CASES = [(o, p, d) for o in OPTIMIZERS for p in PATHS for d in DTYPES + (("float64",) if o == "rprop" else ())]


@pytest.mark.parametrize("optimizer, path, dtype", CASES)
def test_capturable_trajectory_on_cpu(optimizer, path, dtype):
    """Trajectories of a capturable path stay within the tolerance, except where a known deviation applies."""
    target = torch_target("torch-cpu", optimizer)
    assert find(target, optimizer, path, dtype, "test_trajectory") is None  # a whole-test entry: vacuous

    @settings(max_examples=8, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        case = data.draw(cases(spec_pkg.get(optimizer), dtype), label="case")
        if affecting(target, optimizer, path, dtype, case, "test_trajectory"):
            reject()
        with capturable_on_cpu():
            outputs = run_backend(BACKEND, case, path)
        report = check(case, outputs, "trajectory")
        assert report.ok, (f"{report.summary()}\n\nReproduce with:\nfrom tests.torch_capturable import "
                           f"capturable_on_cpu\nwith capturable_on_cpu():\n"
                           + textwrap.indent(reproduction(case, "torch-cpu", path, "trajectory"), "    "))

    run()
