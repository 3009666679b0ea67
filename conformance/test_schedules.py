"""The backend's learning-rate schedules against the exact schedule specs (``spec/schedules.py``).

* ``test_schedule_values``: Hypothesis draws a schedule's hyperparameters from
  the spec's domains, η₀ and a horizon (short, or long: up to
  ``schedule_strategies.LONG`` steps); every lr (and momentum, where the
  schedule cycles it) must be within ``reference.schedule.lr_error_bounds``
  of the exact value.
* ``test_schedule_long_horizon``: one fixed long run per schedule
  (``LONG_RUNS``), where a recursive form's rounding accumulates; it feeds the
  drift table's rows.
* ``test_scheduled_trajectory``: the backend's optimizer driven by its
  scheduler; the lr/momentum it stepped with are checked against the schedule,
  its trajectory against the exact one fed exactly those values.

Backends without the protocol's optional schedule part (``conformance/backend.py``)
skip with the reason.  ``conformance.schedule_check`` holds the comparison;
torch's schedule deviations are entries of ``conformance/known_deviations.py``
(whole-schedule ones are xfail marks put by ``plugin.py``).
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import event, given, note, reject, strategies as st, target

import spec as spec_pkg
from reference.schedule import lr_error_bounds, lr_sequence, momentum_sequence
from spec.schedules import SCHEDULES

from . import optimizers
from .backend import Group, for_backend
from .harness import known_deviation_for
from .known_deviations import drift_deviations, target_of, xfail_reason
from .schedule_check import check_schedule, check_scheduled, reproduction, scheduled_reproduction
from .schedule_strategies import SHORT, ScheduleCase, schedule_cases, schedule_hyper
from .strategies import cases

# One long run per schedule: horizons of several periods, where a recursion's rounding has time to accumulate
# (the cosine one is the second evidence case of the known deviation cosine-recursive-drift).
LONG_RUNS = {
    "step": ({"step_size": 3, "gamma": 0.99}, 0.1, 1200),
    "multistep": ({"milestones": (100, 400, 400, 1200), "gamma": 0.3}, 0.1, 1500),
    "exponential": ({"gamma": 0.997}, 0.1, 1000),  # γⁿ's exact value has 53·n bits: the reference's cost grows as n²
    "cosine": ({"T_max": 100, "eta_min": 0.001}, 0.1, 1500),
    "warm_restarts": ({"T_0": 10, "T_mult": 2, "eta_min": 0.001}, 0.1, 1500),
    "cyclic": ({"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 70, "step_size_down": 31, "mode": "triangular2"},
               0.1, 1500),
    "onecycle": ({"max_lr": 0.1, "total_steps": 1499, "three_phase": True}, 0.1, 1500),
    "linear": ({"start_factor": 0.01, "end_factor": 1.0, "total_iters": 1400}, 0.1, 1500),
    "polynomial": ({"total_iters": 1400, "power": 1.7}, 0.1, 1500),
    "sequential": ({"start_factor": 0.1, "total_iters": 50, "milestone": 50, "decay": "cosine", "T_max": 300,
                    "eta_min": 1e-4}, 0.1, 1500),
}

TRAJECTORY_OPTIMIZERS = tuple(name for name, info in optimizers.OPTIMIZERS.items() if info.scheduled)
TRAJECTORY_STEPS = 8
TEST_SCHEDULED = "test_scheduled_trajectory"


def _backend_name(request) -> str:
    return request.config.getoption("--backend")


def schedule_params(config, needs: str) -> list:
    """One param per schedule, with a reason-carrying skip where the backend lacks ``needs`` or the schedule."""
    impl = config._conformance_backend
    name = config.getoption("--backend")
    lacking = [m for m in ("schedulers", needs) if not callable(getattr(impl, m, None))]
    offered = () if lacking else tuple(impl.schedulers())
    out = []
    for schedule in SCHEDULES:
        marks = []
        if lacking:
            marks.append(pytest.mark.skip(reason=f"backend {name} does not implement learning-rate schedules "
                                                 f"(no {'/'.join(m + '()' for m in lacking)}; see conformance/backend.py)"))
        elif schedule not in offered:
            marks.append(pytest.mark.skip(reason=f"backend {name} does not implement the {schedule} schedule"))
        out.append(pytest.param(schedule, marks=marks, id=schedule))
    return out


def pytest_generate_tests(metafunc):
    if "schedule" in metafunc.fixturenames:
        needs = "run_scheduled" if metafunc.function.__name__ == "test_scheduled_trajectory" else "run_schedule"
        metafunc.parametrize("schedule", schedule_params(metafunc.config, needs))


def _collector(request):
    return getattr(request.config, "_drift_collector", None)


def run_and_check_schedule(request, backend, case: ScheduleCase, drawn: bool = True):
    """Run the backend's scheduler, check every value, record it in the drift report, fail with a reproduction.

    ``drawn``: the case comes from Hypothesis (events, targets and set-asides go to it)."""
    name = _backend_name(request)
    known = known_deviation_for(request.config, request.node.originalname, case.schedule, "-", "-", case)
    if known:
        if not drawn:
            pytest.xfail(xfail_reason(known.id))
        event(f"set aside, known deviation {known.id}")
        reject()
    report = check_schedule(case, backend.run_schedule(case.schedule, case.hyper, case.eta0, case.steps))
    if drawn:
        ratio = report.max_ratio()
        target(min(math.log2(1 + ratio), 1e6) if math.isfinite(ratio) else 1e6, label="log2(1 + error/bound)")
        event(f"horizon {'long' if case.steps > SHORT else 'short'}")
        if report.counts().get("limited"):
            event("no finite bound for some values (limited)")
    repro = reproduction(case, name)
    collector = _collector(request)
    if collector is not None:
        notes = drift_deviations(target_of(backend, name, case.schedule, None), case.schedule)
        collector.add_schedule(request.node.nodeid, name, report, repro, drift_note=", ".join(notes) or None)
    if not report.ok:
        note(report.summary())
        raise AssertionError(f"{report.summary()}\n\nReproduce with:\n{repro}")
    return report


@given(data=st.data())
def test_schedule_values(req, backend, schedule, data):
    """Every lr (and cycled momentum) of a drawn schedule run is within the schedule's error bound."""
    run_and_check_schedule(req, backend, data.draw(schedule_cases(schedule), label="case"))


def test_schedule_long_horizon(request, backend, schedule):
    """A fixed long run per schedule: the recursive forms' accumulated rounding stays within the bound."""
    hyper, eta0, steps = LONG_RUNS[schedule]
    case = ScheduleCase(schedule, SCHEDULES[schedule].complete(hyper), eta0, steps)
    run_and_check_schedule(request, backend, case, drawn=False)


@st.composite
def scheduled_cases(draw, config, schedule: str):
    """(Case, path, schedule hyperparameters): an optimizer of TRAJECTORY_OPTIMIZERS, short periods."""
    backend = config._conformance_backend
    optimizer = draw(st.sampled_from([o for o in TRAJECTORY_OPTIMIZERS if backend.paths(o)]))
    path = draw(st.sampled_from(list(backend.paths(optimizer))))
    dtype = draw(st.sampled_from([d for d in backend.dtypes(optimizer, path) if d in ("float32", "float64")]))
    hyper = draw(schedule_hyper(schedule, 12))
    schedule_spec = SCHEDULES[schedule]
    last = schedule_spec.last_step(hyper)
    if last is not None and last < 1:
        reject()
    # The scheduler steps after each optimizer step, so K optimizer steps make it compute lr_K: K ≤ last_step.
    steps = draw(st.integers(1, TRAJECTORY_STEPS if last is None else min(TRAJECTORY_STEPS, last)))
    data = draw(cases(spec_pkg.get(optimizer), dtype, min_steps=steps, max_steps=steps, max_params=1,
                      vary_lr=False, allow_none=False))
    # A schedule deviation of this backend (torch 2.11's SequentialLR with a milestone ≤ 0, say) is the schedule
    # tests' finding, not this test's: set aside as run_and_check_schedule does (torch-cuda run, session 4).
    known = known_deviation_for(config, TEST_SCHEDULED, schedule, "-", "-",
                                ScheduleCase(schedule, hyper, data.groups[0][0]["lr"], steps))
    if known:
        event(f"set aside, known deviation {known.id}")
        reject()
    # The values the schedule sets must be ones the optimizer spec accepts (torch checks lr ≥ 0 and the
    # momenta only in the constructor): no negative lr (η_min < 0, a linear OneCycleLR past its end, ...).
    group_lrs = [[e.value for e in lr_sequence(schedule_spec, hyper, h["lr"], steps)] for h, _ in data.groups]
    if any(v < 0 for lrs in group_lrs for v in lrs):
        reject()
    if hyper.get("cycle_momentum") and schedule_spec.momentum_form is not None:
        # A cycle between positive momenta: torch creates SGD's and RMSprop's momentum buffer on the first
        # step with momentum != 0 (the spec: on step 1), and checks SGD's nesterov (momentum > 0) only in the
        # constructor (the spec: on every step); a cycle through 0 is outside what the spec states.
        if min(hyper["base_momentum"], hyper["max_momentum"]) <= 0:
            reject()
        # Nor one whose binary64 evaluation may give exactly 0 (seed 7: max_momentum = 1.5e-290, base 0.85:
        # torch's 0.85 + (1.5e-290 − 0.85) is 0.0 at step 0, so it makes no buffer there, as the spec would).
        exact_m = momentum_sequence(schedule_spec, hyper, steps)
        bounds = lr_error_bounds(schedule_spec, hyper, 0.0, steps, quantity="momentum")
        if any(abs(float(e.value)) <= float(b) for e, b in zip(exact_m, bounds)):
            reject()
        data = replace(data, groups=[Group({**h, "nesterov": False} if "nesterov" in h else h, ps)
                                     for h, ps in data.groups])
    # The known deviations are judged with the lrs the schedule will set (capturable Adam's lr = 0, say).
    scheduled = replace(data, lrs=[[float(lrs[s]) for lrs in group_lrs] for s in range(steps)])
    if known_deviation_for(config, TEST_SCHEDULED, optimizer, path, dtype, scheduled, whole=True):
        reject()  # an optimizer deviation (conformance/known_deviations.py), not the schedule's
    return data, path, hyper


@given(data=st.data())
def test_scheduled_trajectory(req, backend, schedule, data):
    """optimizer.step(); scheduler.step(): the values used match the schedule, the steps match the spec."""
    name = _backend_name(req)
    if not any(backend.paths(o) for o in TRAJECTORY_OPTIMIZERS):
        pytest.skip(f"backend {name} implements none of {', '.join(TRAJECTORY_OPTIMIZERS)}")
    case, path, hyper = data.draw(scheduled_cases(req.config, schedule), label="case")
    event(f"{case.optimizer} {path} {case.dtype}")
    run = backend.run_scheduled(for_backend(case, path), schedule, hyper)
    schedule_reports, report = check_scheduled(case, schedule, hyper, run)
    if report.notes:
        event("trajectory checked only up to a non-finite scheduled value")
        note("\n".join(report.notes))
    failures = [r.summary() for r in schedule_reports if not r.ok] + ([report.summary()] if not report.ok else [])
    if failures:
        repro = scheduled_reproduction(case, name, path, schedule, hyper)
        text = "\n".join(failures)
        note(text)
        raise AssertionError(f"{text}\n\nReproduce with:\n{repro}")
