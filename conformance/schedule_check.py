"""Compare a backend's learning-rate schedules with the exact schedule specs.

Every lr (and momentum, where the schedule cycles it) a backend reports gets
a verdict against ``reference.schedule``: the exact value is ``lr_sequence``
(closed form, correctly rounded), the tolerance is ``lr_error_bounds`` for
the form torch evaluates (``ScheduleSpec.torch_form``: the recursion for the
chainable schedulers, with its error carried from step to step).

* ``ok``: within the bound; ``fail``: outside it (or not finite);
* ``limited``: the tolerance model has no finite bound there (a divisor
  within its error of zero): any value is accepted and counted.

Each value also carries its ULP error (binary64, at the exact value) and, for
the recursive schedulers, its error over the bound a *closed-form*
evaluation would meet: above 1 is the recursion's drift beyond what the
closed formula allows (the known deviation
``cosine-recursive-drift`` of ``conformance/known_deviations.py``),
reported in the drift table, not a failure.

A failure prints its first departing value in hex and a ``replay_schedule``
call (arguments as exact Python literals) that re-runs it standalone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import mpmath
import numpy as np

import spec as spec_pkg
from reference.bound import trajectory_bounds
from reference.formats import get_format, to_hex
from reference.schedule import lr_error_bounds, lr_sequence, momentum_sequence
from reference.step import Element, trajectory
from reference.ulp import ulp_error
from spec.schedules import SCHEDULES

from . import backends
from .backend import for_backend
from .check import Report, Verdicts, _compare_step
from .replay import decode, encode_array
from .schedule_strategies import ScheduleCase
from .strategies import HELD

_CTX = mpmath.MPContext()
_CTX.prec = 300


# --------------------------------------------------------------------------- findings


@dataclass
class ValueFinding:
    step: int
    quantity: str  # "lr" or "momentum"
    got: float
    exact: object  # Fraction or mpf
    bound: object  # mpf, may be inf
    ulp: float
    ratio: float  # error / bound
    verdict: str  # ok, fail, limited
    closed_ratio: Optional[float] = None  # error / closed-form bound (recursive schedules)

    def describe(self) -> str:
        ex = _mp(self.exact)
        return (f"step {self.step}, {self.quantity}: got {to_hex(np.float64(self.got))} ({self.got!r}), exact "
                f"{mpmath.nstr(ex, 20)}, error {self.ulp:.4g} ulp, bound {mpmath.nstr(self.bound, 4)} → "
                f"{self.ratio:.3g}× the bound")


@dataclass
class ScheduleReport(Verdicts):
    case: ScheduleCase
    findings: list = field(default_factory=list)

    def counts(self) -> dict:
        out = {}
        for f in self.findings:
            out[f.verdict] = out.get(f.verdict, 0) + 1
        return out

    def max_ratio(self) -> float:
        return max((f.ratio for f in self.findings if f.verdict != "limited"), default=0.0)

    def worst(self) -> Optional[ValueFinding]:
        return max((f for f in self.findings if f.verdict != "limited"), key=lambda f: (f.ratio, f.ulp), default=None)

    def summary(self, limit: int = 6) -> str:
        c = self.case
        lines = [f"{c.schedule} {c.hyper} η₀={c.eta0!r}, {c.steps} steps: {len(self.failures)} of "
                 f"{len(self.findings)} values outside the tolerance; verdicts {self.counts()}"]
        if self.failures:
            lines.append("first departure: " + min(self.failures, key=lambda f: (f.step, f.quantity)).describe())
            for f in sorted(self.failures, key=lambda f: -f.ratio)[:limit]:
                lines.append("  " + f.describe())
        return "\n".join(lines)


def _mp(x):
    if isinstance(x, Fraction):
        return _CTX.mpf(x.numerator) / x.denominator
    return _CTX.mpf(x)


def _finding(n, quantity, got, element, bound, closed_bound=None) -> ValueFinding:
    value = element.value
    slack = 0 if isinstance(value, Fraction) else abs(_mp(value)) * _CTX.mpf(2) ** -100  # the reference's interval
    if isinstance(got, float) and not math.isfinite(got):
        # No finite bound (an overflow the model found, as LinearLR's 1/start_factor for a subnormal
        # start_factor): binary64 cannot carry this computation, and a non-finite value is its limitation.
        verdict = "limited" if not mpmath.isfinite(bound) else "fail"
        return ValueFinding(n, quantity, got, value, bound, math.inf, math.inf if verdict == "fail" else math.nan,
                            verdict)
    if not isinstance(got, float):
        return ValueFinding(n, quantity, got, value, bound, math.inf, math.inf, "fail")
    err = abs(_mp(Fraction(got)) - _mp(value)) if isinstance(value, Fraction) else abs(_CTX.mpf(got) - _mp(value))
    err = max(err - slack, _CTX.zero)
    u = ulp_error(np.float64(got), value, "float64")
    if not mpmath.isfinite(bound):
        return ValueFinding(n, quantity, got, value, bound, u, math.nan, "limited")
    ratio = float(err / bound) if bound > 0 else (0.0 if err == 0 else math.inf)
    closed = None
    if closed_bound is not None and mpmath.isfinite(closed_bound):
        closed = float(err / closed_bound) if closed_bound > 0 else (0.0 if err == 0 else math.inf)
    return ValueFinding(n, quantity, got, value, bound, u, ratio, "ok" if ratio <= 1 else "fail", closed)


def check_values(case: ScheduleCase, lrs: list, momenta: Optional[list] = None) -> ScheduleReport:
    """Verdicts for a backend's ``lrs`` (and ``momenta``) at steps 0 … len−1 of ``case``."""
    spec = SCHEDULES[case.schedule]
    hyper = spec.complete(case.hyper)
    steps = len(lrs)
    report = ScheduleReport(case)
    exact_lrs = lr_sequence(spec, hyper, case.eta0, steps)
    bounds = lr_error_bounds(spec, hyper, case.eta0, steps)
    closed = lr_error_bounds(spec, hyper, case.eta0, steps, form="closed") if spec.torch_form == "recursive" \
        else [None] * steps
    for n in range(steps):
        report.findings.append(_finding(n, "lr", lrs[n], exact_lrs[n], bounds[n], closed[n]))
    if momenta is not None:
        exact_m = momentum_sequence(spec, hyper, steps)
        bounds_m = lr_error_bounds(spec, hyper, case.eta0, steps, quantity="momentum")
        for n in range(steps):
            report.findings.append(_finding(n, "momentum", momenta[n], exact_m[n], bounds_m[n]))
    return report


def cycles_momentum(schedule: str, hyper: dict) -> bool:
    return SCHEDULES[schedule].momentum_form is not None and bool(hyper.get("cycle_momentum"))


def check_schedule(case: ScheduleCase, output) -> ScheduleReport:
    """Verdicts for a backend's ``ScheduleOutput``; a wrong length or a missing momentum list fails outright."""
    if len(output.lrs) != case.steps:
        raise AssertionError(f"backend returned {len(output.lrs)} lrs for {case.steps} steps")
    momenta = output.momenta
    if cycles_momentum(case.schedule, case.hyper):
        if momenta is None or len(momenta) != case.steps:
            raise AssertionError(f"{case.schedule} cycles momentum, but the backend returned momenta={momenta!r:.80}")
    else:
        momenta = None
    return check_values(case, [float(x) for x in output.lrs], momenta and [float(x) for x in momenta])


# --------------------------------------------------------------------------- reproductions


def _hex_args(case: ScheduleCase) -> str:
    floats = {"eta0": case.eta0, **{k: v for k, v in case.hyper.items() if isinstance(v, float)}}
    return ", ".join(f"{k}={to_hex(np.float64(v))}" for k, v in floats.items())


def reproduction(case: ScheduleCase, backend: str) -> str:
    """Python source that re-runs ``case`` on ``backend`` and prints the comparison (floats exact: repr)."""
    return ("from conformance.schedule_check import replay_schedule\n"
            f"# floats in hex: {_hex_args(case)}\n"
            f"replay_schedule(backend={backend!r}, schedule={case.schedule!r}, hyper={case.hyper!r}, "
            f"eta0={case.eta0!r}, steps={case.steps!r})\n")


def replay_schedule(backend: str, schedule: str, hyper: dict, eta0: float, steps: int,
                    quiet: bool = False) -> ScheduleReport:
    """Re-run a printed schedule case and return its report (printed unless ``quiet``)."""
    impl = backends.load(backend)
    case = ScheduleCase(schedule, SCHEDULES[schedule].complete(hyper), eta0, steps)
    report = check_schedule(case, impl.run_schedule(schedule, case.hyper, eta0, steps))
    if not quiet:
        print(report.summary())
    return report


# --------------------------------------------------------------------------- optimizer + schedule trajectories


def cycled_name(optimizer: str) -> Optional[str]:
    """The hyperparameter a momentum-cycling schedule sets in this optimizer: momentum, beta1, or None."""
    names = {h.name for h in spec_pkg.get(optimizer).hyperparameters}
    return "momentum" if "momentum" in names else "beta1" if "beta1" in names else None


def check_scheduled(data, schedule: str, hyper: dict, run) -> tuple:
    """(schedule report per group, trajectory ``check.Report``) for a backend's ``ScheduledRun``.

    (a) The lr (and cycled momentum/β₁) each group stepped with are checked
    against the exact schedule from that group's initial lr, as
    ``check_values`` does; a momentum/β₁ the schedule does not cycle must stay
    exactly the group's own.  (b) The parameters and state are checked against
    the exact trajectory fed exactly the values the backend reported
    (``trajectory(hypers=...)``), with ``trajectory_bounds`` as tolerance, so
    a wrong lr is caught by (a) and a wrong use of a right lr by (b).
    """
    spec = spec_pkg.get(data.optimizer)
    fmt = get_format(data.dtype)
    steps = len(data.grads)
    if len(run.used) != steps or len(run.outputs) != steps:
        raise AssertionError(f"backend returned {len(run.outputs)} outputs and {len(run.used)} used-hyperparameter "
                             f"rows for {steps} steps")
    cycled = cycled_name(data.optimizer) if cycles_momentum(schedule, hyper) else None
    schedule_reports, report = [], Report(data.optimizer, data.dtype, "trajectory")
    for i, (h, params) in enumerate(data.groups):
        used = [run.used[s][i] for s in range(steps)]
        case = ScheduleCase(schedule, hyper, h["lr"], steps)
        sched = check_values(case, [float(u["lr"]) for u in used],
                             [float(u[cycled]) for u in used] if cycled else None)
        for name in ("momentum", "beta1"):
            # untouched by the schedule: exactly the group's value (a --hold one is no key of the class's groups)
            if name in h and name != cycled and name not in HELD.get(data.optimizer, {}):
                fixed = Element(Fraction(h[name]), {"float64": np.float64(h[name])})
                sched.findings += [_finding(s, name, float(u.get(name, math.nan)), fixed, _CTX.zero)
                                   for s, u in enumerate(used)]
        schedule_reports.append(sched)
        hypers = [{k: float(v) for k, v in u.items() if k in h} for u in used]
        # A step taken with a non-finite lr or momentum (LinearLR's recursive form overflows for start_factor =
        # 5e-324) has no exact reference; (a) judged that value, and (b) stops before it.
        stop = next((s for s, x in enumerate(hypers) if not all(math.isfinite(v) for v in x.values())), steps)
        if stop < steps:
            report.notes.append(f"group {i}: steps from {stop + 1} on not checked, the backend stepped with "
                                f"{hypers[stop]}")
        for j, p0 in enumerate(params):
            grads = [data.grads[s][i][j] for s in range(stop)]
            if not grads:
                continue
            # The values the backend stepped with, even where its scheduler's rounding left the domain
            # (checked against the schedule in (a) above).
            ref = trajectory(spec, h, p0, grads, hypers=hypers[:stop], formats=(fmt.name,), validate=False)
            bnd = trajectory_bounds(spec, h, p0, grads, fmt, hypers=hypers[:stop], validate=False)
            for s, out in enumerate(run.outputs[:stop]):
                prev = p0 if s == 0 else run.outputs[s - 1].params[i][j]
                _compare_step(report, s, i, j, ref[s], bnd[s], out, fmt, prev)
    return schedule_reports, report


def scheduled_reproduction(data, backend: str, path: str, schedule: str, hyper: dict) -> str:

    groups = [(h, [encode_array(p) for p in ps]) for h, ps in data.groups]
    grads = [[[None if g is None else encode_array(g) for g in row] for row in step] for step in data.grads]
    return ("from conformance.schedule_check import replay_scheduled\n"
            f"replay_scheduled(backend={backend!r}, optimizer={data.optimizer!r}, path={path!r}, "
            f"dtype={data.dtype!r},\n                 schedule={schedule!r}, hyper={hyper!r},\n"
            f"                 groups={groups!r},\n                 grads={grads!r})\n")


def replay_scheduled(backend: str, optimizer: str, path: str, dtype: str, schedule: str, hyper: dict, groups, grads,
                     quiet: bool = False) -> tuple:
    """Re-run a printed optimizer + schedule case; returns (schedule reports, trajectory report)."""
    impl = backends.load(backend)
    data = decode(optimizer, dtype, groups, grads, None)
    hyper = SCHEDULES[schedule].complete(hyper)
    reports = check_scheduled(data, schedule, hyper, impl.run_scheduled(for_backend(data, path), schedule, hyper))
    if not quiet:
        for r in reports[0]:
            print(r.summary())
        print(reports[1].summary())
    return reports
