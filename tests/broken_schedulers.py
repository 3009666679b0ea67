"""Schedule backends for tests/test_schedule_conformance.py: torch's schedulers, faithful and broken.

Each object is a backend for ``pytest conformance --backend=tests.broken_schedulers:NAME``
that offers the schedule part of the protocol only (no optimizers).  ``faithful``
runs torch.optim.lr_scheduler through ``TorchBackend``; each broken one changes
one schedule by one small, plausible bug and leaves the others faithful.
"""
from __future__ import annotations

import math

import torch

from conformance.backend import ScheduleOutput
from conformance.backends.torch_backend import TorchBackend

L = torch.optim.lr_scheduler


class _Schedules(TorchBackend):
    """TorchBackend's schedules, no optimizers; ``broken`` (schedule name) runs ``scheduler(opt, hyper)`` instead."""

    broken: str = ""

    def __init__(self):
        super().__init__("cpu")
        self.name = type(self).__name__

    def paths(self, optimizer):
        return ()

    def run_schedule(self, schedule, hyper, eta0, steps):
        if schedule != self.broken:
            return super().run_schedule(schedule, hyper, eta0, steps)
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=eta0, momentum=0.0)
        return ScheduleOutput(self.values(hyper, opt, steps), None)

    def values(self, hyper, opt, steps):  # pragma: no cover - overridden
        raise NotImplementedError


class OffByOneCosine(_Schedules):
    """CosineAnnealingLR evaluated one step ahead: cos(π(n+1)/T_max)."""

    broken = "cosine"

    def values(self, h, opt, steps):
        eta0, T, m = opt.param_groups[0]["lr"], h["T_max"], h["eta_min"]
        return [m + (eta0 - m) * (1 + math.cos(math.pi * (n + 1) / T)) / 2 for n in range(steps)]


class LateStepLR(_Schedules):
    """StepLR that decays one step late: γ^⌊(n−1)/step_size⌋."""

    broken = "step"

    def values(self, h, opt, steps):
        eta0, s, g = opt.param_groups[0]["lr"], abs(h["step_size"]), h["gamma"]
        return [eta0 * g ** ((n - 1) // s) if n else eta0 for n in range(steps)]


class Triangular2NoHalving(_Schedules):
    """CyclicLR whose triangular2 amplitude halves one cycle late (1/2^(cycle−2) after the first)."""

    broken = "cyclic"

    def run_schedule(self, schedule, hyper, eta0, steps):
        if schedule != "cyclic" or hyper["mode"] != "triangular2":
            return super(_Schedules, self).run_schedule(schedule, hyper, eta0, steps)
        out = super(_Schedules, self).run_schedule(schedule, {**hyper, "mode": "triangular"}, eta0, steps)
        total = hyper["step_size_up"] + hyper["step_size_down"]
        base = hyper["base_lr"]
        out.lrs = [base + (lr - base) / 2.0 ** max(0, n // total - 1) for n, lr in enumerate(out.lrs)]
        return out


faithful = _Schedules()
off_by_one_cosine = OffByOneCosine()
late_step = LateStepLR()
triangular2_no_halving = Triangular2NoHalving()
