"""Deliberately broken NumPy ports of L-BFGS: each changes one statement of ``NumpyLBFGS`` and must be caught by
``conformance/test_lbfgs.py`` (``tests/test_lbfgs_broken.py``); also runnable as ``--backend=torch-cpu
--optimizer lbfgs=tests.broken_lbfgs:NAME``."""
from __future__ import annotations

import numpy as np

from conformance.backends.numpy_lbfgs import NumpyLBFGS


class L2FirstStep(NumpyLBFGS):
    """The first step scaled by 1/‖g‖₂ instead of torch's 1/‖g‖₁."""

    def first_step_size(self, flat_grad, lr):
        return min(1.0, 1.0 / np.sqrt(flat_grad @ flat_grad)) * lr


class OldestPairFirst(NumpyLBFGS):
    """The two-loop recursion's loops in the wrong order: the first from the oldest pair, the second from the
    newest (one pair: no difference)."""

    def direction(self, flat_grad, old_dirs, old_stps, ro, H_diag, al):
        q = -flat_grad
        n = len(old_dirs)
        for i in range(n):
            al[i] = (old_stps[i] @ q) * ro[i]
            q = q + (-al[i]) * old_dirs[i]
        r = q * H_diag
        for i in reversed(range(n)):
            be_i = (old_dirs[i] @ r) * ro[i]
            r = r + (al[i] - be_i) * old_stps[i]
        return r
