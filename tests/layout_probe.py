"""``RecordingAdam``: ``FaithfulAdam`` that records the memory layout of every parameter and gradient it steps.

For ``tests/test_layouts.py``, which passes it as an ``--optimizer`` class (also through a printed
reproduction, which loads it by name: read ``seen`` from the class ``load_class`` returns).
"""
from tests.broken_optimizers import FaithfulAdam


class RecordingAdam(FaithfulAdam):
    """Appends ``(shape, param strides, param offset, param is_contiguous, grad strides)`` per update to ``seen``."""

    seen: list = []

    def _update(self, p, grad, state, group):
        RecordingAdam.seen.append((tuple(p.shape), p.stride(), p.storage_offset(), p.is_contiguous(), grad.stride()))
        super()._update(p, grad, state, group)
