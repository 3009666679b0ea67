"""Hypothesis strategies for learning-rate schedules, drawn from ``spec.schedules``' domains.

Every hyperparameter of a ``ScheduleSpec`` is drawn by the type of its
domain: ``Integers`` (periods, step sizes, milestones: both short and long,
negative ones where torch accepts them), ``Interval``/``FloatInterval`` (the
domain itself where it is bounded; ``FUZZ`` below where it is all the reals),
``Choice`` and flags (every option), ``IntTuple`` (milestones, repeats and
negatives included).  A draw that ``ScheduleSpec.complete`` rejects (a value
torch raises for) is rejected, so every case is one torch must compute.

Horizons mix short runs (``1 … SHORT``) with long ones (up to ``LONG``
steps), where a recursive form's rounding has time to accumulate; OneCycleLR
always runs every step torch computes (0 … ``last_step``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from hypothesis import reject, strategies as st

from spec.core import Interval, InvalidHyperparameter
from spec.schedules import SCHEDULES, Choice, FloatInterval, Integers, IntTuple

SHORT = 40
LONG = 600

# Where a real hyperparameter's domain is unbounded (all the reals), the part drawn from, and why:
# values outside make every lr overflow or underflow within LONG steps, which tests the format, not the schedule.
FUZZ = {
    ("step", "gamma"): (-1.5, 1.5),  # γ^(n/step_size) for n ≤ LONG must stay finite: |γ| ≤ 1.5 with step_size ≥ 2
    ("multistep", "gamma"): (-3.0, 3.0),  # at most a few milestones apply
    ("exponential", "gamma"): (-1.1, 1.1),  # 1.1^600 ≈ 1e25
    ("cosine", "eta_min"): (-1.0, 1.0),
    ("warm_restarts", "eta_min"): (-1.0, 1.0),
    ("cyclic", "base_lr"): (0.0, 1.0),
    ("cyclic", "max_lr"): (0.0, 2.0),
    ("cyclic", "gamma"): (0.9, 1.0),  # exp_range's γⁿ
    ("cyclic", "base_momentum"): (0.0, 0.99),  # the momentum an optimizer accepts: [0, 1)
    ("cyclic", "max_momentum"): (0.0, 0.99),
    ("onecycle", "max_lr"): (1e-4, 10.0),
    ("onecycle", "base_momentum"): (0.0, 0.99),
    ("onecycle", "max_momentum"): (0.0, 0.99),
    ("onecycle", "div_factor"): (0.5, 1e3),
    ("onecycle", "final_div_factor"): (0.5, 1e5),
    ("polynomial", "power"): (0.0, 5.0),  # power < 0 with total_iters > 0 is rejected (torch: ZeroDivisionError)
    ("sequential", "gamma"): (0.5, 1.05),
    ("sequential", "eta_min"): (-0.1, 0.5),
}
_PICKS = (0.0, 1.0, 0.5, 0.1, 0.9, 0.99, 1e-3, 2.0, -0.5)


def _reals(schedule: str, h) -> st.SearchStrategy:
    box = h.domain
    lo, hi = box.lo, box.hi
    if (schedule, h.name) in FUZZ:
        lo, hi = FUZZ[(schedule, h.name)]
    elif lo is None or hi is None:
        raise KeyError(f"{schedule}.{h.name}: an unbounded domain needs a FUZZ range")
    picks = [x for x in (h.default, lo, hi, *_PICKS) if isinstance(x, float) and lo <= x <= hi and x in box]
    inner = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(picks), inner).filter(lambda x: x in box)


def _ints(h, long: int) -> st.SearchStrategy:
    d = h.domain
    lo = -3 if d.lo is None else d.lo
    short = st.integers(lo, max(lo, 12 if d.hi is None else min(d.hi, 12)))
    wide = st.integers(lo, max(lo, long if d.hi is None else min(d.hi, long)))
    out = st.one_of(short, short, wide).filter(lambda x: x in d)
    return st.one_of(st.none(), out) if d.allow_none else out


@functools.lru_cache(maxsize=None)
def schedule_hyper(name: str, long: int = LONG // 2) -> st.SearchStrategy:
    """A complete, valid hyperparameter dict of schedule ``name`` (defaults filled in, normalized)."""
    spec = SCHEDULES[name]
    parts = {}
    for h in spec.hyperparameters:
        d = h.domain
        if h.is_flag:
            parts[h.name] = st.booleans()
        elif isinstance(d, Choice):
            parts[h.name] = st.sampled_from(d.options)
        elif isinstance(d, IntTuple):
            parts[h.name] = st.lists(st.integers(-3, long), max_size=6)
        elif isinstance(d, Integers):
            parts[h.name] = _ints(h, long)
        elif isinstance(d, FloatInterval):  # OneCycleLR's pct_start: a float in (0, 1]
            parts[h.name] = st.one_of(st.sampled_from([h.default, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0)).filter(
                lambda x, d=d: x in d)
        elif isinstance(d, Interval):
            parts[h.name] = _reals(name, h)
        else:
            raise TypeError(f"{name}.{h.name}: no strategy for the domain {d!r}")
    return st.fixed_dictionaries(parts).map(lambda hyper: _complete(name, hyper))


def _complete(name: str, hyper: dict) -> dict:
    try:
        return SCHEDULES[name].complete(hyper)
    except InvalidHyperparameter:
        reject()


def initial_lr() -> st.SearchStrategy:
    """η₀, the optimizer's lr before the scheduler is built: the usual values and anything in [1e-6, 10]."""
    return st.one_of(st.sampled_from([0.1, 1.0, 1e-3, 0.01]), st.floats(1e-6, 10.0))


@dataclass
class ScheduleCase:
    """A schedule run: ``steps`` lrs (steps 0 … steps−1) of ``schedule`` with ``hyper`` from ``eta0``."""

    schedule: str
    hyper: dict
    eta0: float
    steps: int


@st.composite
def schedule_cases(draw, name: str, *, short: int = SHORT, long: int = LONG) -> ScheduleCase:
    """Hyperparameters, η₀ and a horizon, short (1 … short) or long (up to ``long``) steps."""
    spec = SCHEDULES[name]
    hyper = draw(schedule_hyper(name, long // 2))
    eta0 = draw(initial_lr())
    last = spec.last_step(hyper)
    if last is not None:  # OneCycleLR: every step torch computes
        steps = last + 1
    else:
        steps = draw(st.one_of(st.integers(1, short), st.integers(short + 1, long)))
    return ScheduleCase(name, hyper, eta0, steps)
