"""Running torch's capturable optimizer paths on the CPU.

capturable=True is refused off CUDA/XLA by a device check only (``_get_capturable_supported_devices``); the
arithmetic is ordinary tensor ops, so with the check lifted the same code runs on the CPU.  Used by
tests/test_known_deviations.py (direct reproductions) and tests/test_capturable_on_cpu.py (fuzzing).
"""
import contextlib
import importlib
from unittest import mock

OPTIMIZERS = ("adam", "adamw", "adamax", "radam", "rprop", "asgd")


@contextlib.contextmanager
def capturable_on_cpu():
    """Within the block, torch.optim's capturable device check accepts the CPU."""
    with contextlib.ExitStack() as stack:
        for name in OPTIMIZERS:
            module = importlib.import_module(f"torch.optim.{name}")
            if hasattr(module, "_get_capturable_supported_devices"):
                stack.enter_context(mock.patch.object(module, "_get_capturable_supported_devices",
                                                      lambda supports_xla=True: ["cpu", "cuda"]))
        yield
