"""torch's capturable paths, fuzzed on the CPU against the reference, with the known deviations set aside.

capturable=True is refused off CUDA only by a device check (``_get_capturable_supported_devices``); lifted,
the same tensor arithmetic runs on the CPU.  CI has no GPU, so this is where the capturable entries of
conformance/known_deviations.py are held to account: a capturable departure on the CPU that no entry covers
fails here (session 4's GPU run found seven that the entries of the day missed, all reproducible on the CPU).
What the CPU cannot show is CUDA's own arithmetic (the ``torch-cuda`` entries): that needs
``pytest conformance --backend=torch-cuda`` on a GPU.
"""
from __future__ import annotations

import importlib
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, reject, settings, strategies as st

torch = pytest.importorskip("torch")

import spec as spec_pkg  # noqa: E402
from conformance.harness import run_backend  # noqa: E402
from conformance.check import check  # noqa: E402
from conformance.known_deviations import affecting, find  # noqa: E402
from conformance.replay import reproduction  # noqa: E402
from conformance.strategies import cases  # noqa: E402

OPTIMIZERS = ("adam", "adamw", "adamax", "radam")
PATHS = ("capturable", "capturable-foreach")
DTYPES = ("float16", "bfloat16", "float32")  # float64: a whole-(path, dtype) known deviation (float32 step counter)


def _capturable_cpu_backend():
    from conformance.backends.torch_backend import TorchBackend

    class CapturableOnCPU(TorchBackend):
        def paths(self, optimizer):
            return list(super().paths(optimizer)) + list(PATHS)

    return CapturableOnCPU("cpu")


def _lift_device_check():
    patches = []
    for name in OPTIMIZERS:
        module = importlib.import_module(f"torch.optim.{name}")
        if hasattr(module, "_get_capturable_supported_devices"):
            patches.append(mock.patch.object(module, "_get_capturable_supported_devices",
                                             lambda supports_xla=True: ["cpu", "cuda"]))
    return patches


BACKEND = _capturable_cpu_backend()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_capturable_trajectory_on_cpu(optimizer, path, dtype):
    """Trajectories of a capturable path stay within the tolerance, except where a known deviation applies."""
    assert find("torch-cpu", optimizer, path, dtype) is None  # a whole-test entry would make this vacuous

    @settings(max_examples=8, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        case = data.draw(cases(spec_pkg.get(optimizer), dtype), label="case")
        if affecting("torch-cpu", optimizer, path, dtype, case):
            reject()
        patches = _lift_device_check()
        for p in patches:
            p.start()
        try:
            outputs = run_backend(BACKEND, case, path)
        finally:
            for p in patches:
                p.stop()
        report = check(case, outputs, "trajectory")
        assert report.ok, (f"{report.summary()}\n\nReproduce with (torch's capturable device check lifted, "
                           f"as tests/test_known_deviations.py's capturable_on_cpu does):\n"
                           + reproduction(case, "torch-cpu", path, "trajectory"))

    run()
