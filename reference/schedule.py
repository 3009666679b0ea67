"""Exact learning-rate schedules, correctly rounded, and the tolerance model for torch's.

``lr_sequence`` evaluates a ``spec.schedules.ScheduleSpec`` at steps
``start … start+steps−1`` in exact arithmetic and rounds each value correctly
to the requested formats.  The expressions are compiled (``compile_schedule``)
into straight-line code over an arithmetic object ``O``, with the printer of
``reference.program``, and run over ``ExactInterval``: an
``arith.Interval`` that keeps values exact (``Fraction``) as long as they are
rational — every schedule's integer and rational arithmetic, powers with
integer exponents, and ``cos(π·q)`` at the rational points where it is
rational (q ≡ 0, ±1/3, ±1/2, ±2/3, 1 mod 2) — and falls back to mpmath
intervals for the transcendental rest.  Exact values round exactly (no
double-rounding, ties included); interval values are rounded Ziv-style with
``reference.driver``, as optimizer steps are: if both ends of the interval
round to the same value in every format, that is the correctly rounded result,
otherwise the whole sequence is recomputed at twice the precision (up to
``driver.MAX_PREC``).
The recursive form is iterated without rounding between steps.

``lr_error_bounds`` is the tolerance model: a rigorous bound on
``|torch's binary64 lr − exact lr|`` for any implementation that performs the
operations of the schedule's torch form (``ScheduleSpec.torch_form``; for the
chainable schedulers the recursion, iterated from ``η₀`` with the error
carried from step to step), each basic operation with relative error ≤ 2u and
each ``cos``/``pow`` ≤ 8u (``reference.bound``), ``math.pi`` being π rounded
once.  Operations on exact operands whose exact result is a binary64 value
are exact (correct rounding; torch does its integer arithmetic in Python ints).
Comparisons within rounding of their threshold take the worse of both branches.

``optimizer_trajectory_with_schedule`` feeds a schedule's lrs (correctly
rounded to binary64, the type torch keeps in ``param_group["lr"]``), and its
momenta where it cycles momentum, into ``reference.step.trajectory``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import mpmath
from mpmath import libmp
import sympy as sp

from spec.schedules import ScheduleSpec, eta0 as ETA0, eta_prev as ETA_PREV, n as N
from . import arith, bound
from .driver import Element, NotStable, escalate, rounded_stably
from .formats import FORMATS, exact as exact_value, get_format, round_to_format
from .exact import ExactInterval, Surd, _PiTimes
from .program import _Printer, _ident
from .step import trajectory

__all__ = [
    "ScheduleError", "ScheduleProgram", "ExactInterval", "ScheduleBound", "compile_schedule",
    "lr_sequence", "momentum_sequence", "lr_error_bounds", "optimizer_trajectory_with_schedule",
]


class ScheduleError(ValueError):
    """A step torch cannot compute: past ``last_step`` or an exact division by zero."""


# --------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class ScheduleProgram:
    """``fn(O, n, eta_0, eta_prev, *numeric hyperparameters)`` → the value at step n; ``source`` for reading."""

    schedule: str
    form: str
    quantity: str
    inputs: tuple  # names of the numeric hyperparameters, in argument order
    source: str
    fn: object

    def __call__(self, O, n, eta_0, eta_prev, values: dict):
        return self.fn(O, n, eta_0, eta_prev, *(values[name] for name in self.inputs))


class _SchedulePrinter(_Printer):
    """``reference.program``'s printer, plus π, ⌊log_b x⌋, and branches that evaluate lazily.

    A Piecewise becomes ``O.choose(cond, lambda: then, lambda: otherwise)``:
    the exact arithmetic evaluates the branch taken only (the other may divide
    by zero: CyclicLR's falling branch when step_size_down = 0), the bound
    arithmetic both when the condition is within rounding of its threshold.
    """

    def __call__(self, e) -> str:
        if e is sp.pi:
            return "O.pi()"
        if isinstance(e, sp.floor):
            logs = _floor_log_args(e.args[0])
            if logs is not None:
                return f"O.floor_log({self(logs[0])}, {self(logs[1])})"
        return super().__call__(e)

    def _piecewise(self, pieces) -> str:
        (value, cond), rest = pieces[0], pieces[1:]
        if cond is sp.true or not rest:
            return self(value)
        return f"O.choose({self(cond)}, lambda: {self(value)}, lambda: {self._piecewise(rest)})"


def _floor_log_args(arg):
    """(x, b) if ``arg`` is log(x)/log(b), else None."""
    if not isinstance(arg, sp.Mul) or len(arg.args) != 2:
        return None
    logs = [f for f in arg.args if isinstance(f, sp.log)]
    inverse = [f for f in arg.args if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, sp.log)]
    if len(logs) == 1 and len(inverse) == 1:
        return logs[0].args[0], inverse[0].base.args[0]
    return None


_CACHE: dict = {}


def compile_schedule(schedule: ScheduleSpec, hyper: dict, form: str = "closed", quantity: str = "lr") -> ScheduleProgram:
    """The program of ``schedule``'s ``form`` of ``quantity`` for these hyperparameters' structure (cached)."""
    hyper = schedule.complete(hyper)
    structure = schedule.structure(hyper)
    key = (schedule.name, id(schedule), form, quantity, tuple(sorted(structure.items())))
    if key in _CACHE:
        return _CACHE[key]
    expr = schedule.expression(hyper, form, quantity)
    inputs = tuple(h.name for h in schedule.numeric)
    names = {N: "n", ETA0: "eta_0", ETA_PREV: "eta_prev"}
    names.update({h.symbol: _ident(h.name) for h in schedule.numeric})
    unknown = expr.free_symbols - set(names)
    if unknown:
        raise TypeError(f"{schedule.name}: expression has unknown symbols {sorted(map(str, unknown))}")
    body = _SchedulePrinter(names)(expr)
    args = ", ".join(["O", "n", "eta_0", "eta_prev", *(_ident(i) for i in inputs)])
    source = f"def {_ident(schedule.name)}_{form}_{quantity}({args}):\n    return {body}\n"
    namespace = {}
    exec(compile(source, f"<schedule {schedule.name} {form} {quantity}>", "exec"), namespace)  # noqa: S102
    program = ScheduleProgram(schedule.name, form, quantity, inputs, source,
                              namespace[f"{_ident(schedule.name)}_{form}_{quantity}"])
    _CACHE[key] = program
    return program


# --------------------------------------------------------------------------- the error-bound arithmetic


class ScheduleBound(bound.Bound):
    """``reference.bound.Bound`` for a schedule's scalar arithmetic in one format.

    Adds ``pi()`` (``math.pi``: π rounded once), ``floor_log`` (torch counts
    restarts in Python ints: exact), lazy ``choose``, and exactness: a basic
    operation (or an integer power) on exact operands whose exact result is a
    value of the format returns it exactly, as correct rounding (and torch's
    int arithmetic) does.  Without that, ``n % step_size`` or a cycle index
    ``⌊n/total⌋`` would look uncertain by ±1 exactly where they are integers.
    """

    def _fraction(self, v) -> Fraction:
        sign, man, exp, _ = mpmath.mpf(v)._mpf_
        return (-1) ** sign * Fraction(man) * (Fraction(2) ** exp)

    def _exact_result(self, op, xs, scalar):
        """The exact result of ``op`` on exact operands, if it is a value of the format; else None."""
        if not all(x.e == 0 and self.ctx.isfinite(x.v) for x in xs):
            return None
        ts = [x.v._mpf_ for x in xs]
        if op == "add":
            t = ts[0]
            for other in ts[1:]:
                t = libmp.mpf_add(t, other, 0)  # prec 0: exact
        elif op == "mul":
            t = ts[0]
            for other in ts[1:]:
                t = libmp.mpf_mul(t, other, 0)
        elif op == "div":
            if ts[1] == libmp.fzero:
                return None
            t = libmp.mpf_div(ts[0], ts[1], self.fmt.precision + 2, libmp.round_nearest)
            if libmp.mpf_mul(t, ts[1], 0) != ts[0]:
                return None
        else:  # "pow": an integer power, exact in Python ints or glibc's pow
            sign, man, exp, bc = ts[1]
            if exp < 0 or (man << exp) > 4096 or (ts[0] == libmp.fzero and sign):
                return None
            k = (-1) ** sign * (man << exp)
            value = self._fraction(xs[0].v) ** k
            num, den = value.numerator, value.denominator
            if den & (den - 1):
                return None
            t = libmp.from_man_exp(num, -(den.bit_length() - 1))
        if not self._representable_mpf(t):
            return None
        return bound.B(self.ctx.make_mpf(t), self.ctx.zero, scalar)

    def _representable_mpf(self, t) -> bool:
        sign, man, exp, bc = t
        if man == 0:
            return True
        top = exp + bc - 1  # 2^top ≤ |value| < 2^(top+1)
        return bc <= self.fmt.precision and exp >= self.fmt.emin - self.fmt.precision + 1 and top <= self.fmt.emax

    def _scalar(self, xs) -> bool:
        return all(x.scalar for x in xs)

    def add(self, *xs):
        return self._exact_result("add", xs, self._scalar(xs)) or super().add(*xs)

    def _is_exact_zero(self, x) -> bool:
        return x.e == 0 and x.v == 0

    def mul(self, *xs):
        if any(self._is_exact_zero(x) for x in xs) and all(self.ctx.isfinite(x.v + x.e) for x in xs):
            return bound.B(self.ctx.zero, self.ctx.zero, self._scalar(xs))  # 0·x = ±0 exactly
        return self._exact_result("mul", xs, self._scalar(xs)) or super().mul(*xs)

    def div(self, a, b):
        if self._is_exact_zero(a) and abs(b.v) > b.e and self.ctx.isfinite(b.v + b.e):
            return bound.B(self.ctx.zero, self.ctx.zero, self._scalar((a, b)))  # 0/x = ±0 exactly
        return self._exact_result("div", (a, b), self._scalar((a, b))) or super().div(a, b)

    def pow(self, a, b):
        return self._exact_result("pow", (a, b), self._scalar((a, b))) or super().pow(a, b)

    def pi(self):
        err = abs(self.ctx.mpf(math.pi) - self.ctx.pi)
        return bound.B(+self.ctx.pi, err, True)

    def floor_log(self, x, b):
        """⌊log_b x⌋ with no error: it stands for CosineAnnealingWarmRestarts' restart count, which torch
        keeps in Python ints (T_cur += 1; T_i *= T_mult), so the rounding of the argument x = 1 +
        n(T_mult − 1)/T_0 that this arithmetic would charge never happens.  x.v is exact at the restarts
        (integer powers) and at least 1/T_0 away from a power elsewhere, so its floor is the exact one."""
        if b.e == 0 and b.v >= 2 and x.v > 0 and self.ctx.isfinite(x.v):
            xv, bv = self._fraction(x.v), self._fraction(b.v)
            k, power = 0, Fraction(1)
            while power * bv <= xv:
                power, k = power * bv, k + 1
            while power > xv:
                power, k = power / bv, k - 1
            return bound.B(self.ctx.mpf(k), self.ctx.zero, x.scalar and b.scalar)
        return self._unbounded(self.ctx.nan, "restart index with an invalid base")

    def choose(self, cond, then, otherwise):
        taken = then() if cond.holds else otherwise()
        if not cond.ambiguous:
            return taken
        other = otherwise() if cond.holds else then()
        return self.select(cond, taken, other) if cond.holds else self.select(cond, other, taken)


# --------------------------------------------------------------------------- sequences


def _check_steps(schedule: ScheduleSpec, hyper: dict, start: int, steps: int):
    if start < 0 or steps < 0:
        raise ValueError(f"start and steps must be ≥ 0 (got start={start}, steps={steps})")
    last = schedule.last_step(hyper)
    if last is not None and start + steps - 1 > last:
        total = hyper.get("total_steps")
        if total is not None and last == total:
            raise ScheduleError(f"{schedule.name}: Tried to step {last + 1} times. The specified number of total "
                                f"steps is {total} (torch raises ValueError there: its lrs are steps 0…{last})")
        raise ScheduleError(f"{schedule.name}: torch computes steps 0…{last} only (it divides by zero at step "
                            f"{last + 1}); asked for steps {start}…{start + steps - 1}")


def _hyper_values(schedule: ScheduleSpec, hyper: dict) -> dict:
    return {h.name: hyper[h.name] for h in schedule.numeric}


def _element(O: ExactInterval, v, formats, where) -> Element:
    if isinstance(v, arith._NotRealValue):
        raise ScheduleError(f"{where}: the exact value is not a real number ({v.why}); torch raises "
                            f"ZeroDivisionError there")
    if isinstance(v, (_PiTimes, Surd)):
        v = O._iv(v)
    if isinstance(v, Fraction):
        return Element(v, {f: round_to_format(v, FORMATS[f]) for f in formats}, exact=True, prec=0)
    return rounded_stably(v, formats, O.prec)


def _sequence(schedule, hyper, eta_0, steps, form, quantity, formats, start) -> list:
    hyper = schedule.complete(hyper)
    _check_steps(schedule, hyper, start, steps)
    formats = tuple(get_format(f).name for f in formats)
    program = compile_schedule(schedule, hyper, form, quantity)
    values = _hyper_values(schedule, hyper)
    first = 0 if form == "recursive" else start

    def attempt(prec):
        O = ExactInterval(prec)
        inputs = {k: O.input(v) for k, v in values.items()}
        e0 = O.input(eta_0)
        prev, out = e0, []
        for k in range(first, start + steps):
            v = program(O, O.input(k), e0, prev, inputs)
            if k >= start:
                where = f"{schedule.name} {quantity} at step {k}"
                try:
                    out.append(_element(O, v, formats, where))
                except NotStable:
                    if form != "recursive":
                        raise
                    out.append(_tie_from_closed_form(O, schedule, hyper, quantity, k, e0, inputs, v, formats, where))
            prev = v
        return out

    return escalate(attempt, context=lambda: f"{schedule.name}: ")


def _tie_from_closed_form(O, schedule, hyper, quantity, k, e0, inputs, v, formats, where) -> Element:
    """A recursive value whose interval straddles a rounding boundary, resolved by the closed form.

    The recursion passes through irrational intermediates (cos(π(n−1)/T), a
    power's root) whose product can be rational again — and then it is often
    exactly a rounding tie, which no interval width can decide.  The two forms
    are equal in exact arithmetic (telescoping), so when the closed form's
    value at this step is rational (it is evaluated exactly whenever it is)
    and lies inside the recursion's interval, that rational is the value.
    Otherwise the precision is escalated as usual.
    """
    closed = compile_schedule(schedule, hyper, "closed", quantity)(O, O.input(k), e0, e0, inputs)
    if isinstance(closed, Fraction) and v.a <= O._iv(closed).a and O._iv(closed).b <= v.b:
        return _element(O, closed, formats, where)
    raise NotStable(f"{where}: the recursion's interval [{v.a}, {v.b}] straddles a rounding boundary")


def lr_sequence(schedule: ScheduleSpec, hyper: dict, eta_0, steps: int, *, form: str = "closed",
                formats: Sequence[str] = ("float64",), start: int = 0) -> list:
    """The exact lr at steps ``start … start+steps−1``, one ``reference.step.Element`` each.

    ``Element.value`` is the exact value (a ``Fraction`` when rational, else an
    mpf at the working precision) and ``Element.rounded[fmt]`` its correctly
    rounded value.  Step 0 is the lr after torch's constructor (which performs
    step 0).  ``eta_0`` is the optimizer's lr before the scheduler is built
    (ignored by CyclicLR and OneCycleLR, which overwrite it).  ``form`` is
    "closed" or "recursive" (the recursion is iterated from step 0, exactly).
    Raises ``InvalidHyperparameter`` where torch rejects the hyperparameters
    and ``ScheduleError`` for steps torch cannot compute (OneCycleLR past
    ``total_steps``).
    """
    return _sequence(schedule, hyper, eta_0, steps, form, "lr", formats, start)


def momentum_sequence(schedule: ScheduleSpec, hyper: dict, steps: int, *, formats: Sequence[str] = ("float64",),
                      start: int = 0) -> list:
    """The exact momentum (or β₁) a schedule with ``cycle_momentum`` sets at each step (CyclicLR, OneCycleLR)."""
    return _sequence(schedule, hyper, 0.0, steps, "closed", "momentum", formats, start)


def lr_error_bounds(schedule: ScheduleSpec, hyper: dict, eta_0, steps: int, *, form: Optional[str] = None,
                    quantity: str = "lr", fmt: str = "float64", start: int = 0) -> list:
    """Per step, a rigorous bound (mpf) on |computed − exact| for ``form`` evaluated in ``fmt``.

    ``form`` defaults to the form torch evaluates (``schedule.torch_form``), so
    this is the tolerance for torch's lrs; ``form="closed"`` gives what a
    closed-form implementation would achieve.  An infinite bound means the
    model cannot bound the computation (a divisor within its error of zero).
    """
    hyper = schedule.complete(hyper)
    _check_steps(schedule, hyper, start, steps)
    form = form or (schedule.torch_form if quantity == "lr" else "closed")
    program = compile_schedule(schedule, hyper, form, quantity)
    O = ScheduleBound(get_format(fmt))
    inputs = {k: O.hyper(Fraction(v)) for k, v in _hyper_values(schedule, hyper).items()}
    e0 = O.hyper(exact_value(float(eta_0)))
    prev, out = e0, []
    for k in range(0 if form == "recursive" else start, start + steps):
        v = program(O, O.step_counter(k), e0, prev, inputs)
        if k >= start:
            out.append(v.e)
        prev = v
    return out


# --------------------------------------------------------------------------- optimizer trajectories


def optimizer_trajectory_with_schedule(spec, hyper: dict, param, grads: Sequence, schedule: ScheduleSpec,
                                       schedule_hyper: dict, *, eta_0=None, form: str = "closed",
                                       state: Optional[dict] = None, step: int = 0,
                                       formats: Sequence[str] = ("float64",), lr_format: str = "float64",
                                       schedule_start: int = 0) -> list:
    """``reference.step.trajectory`` with the lr (and momentum) of step s taken from the schedule.

    The loop is torch's: ``optimizer.step()`` with the current lr, then
    ``scheduler.step()``; so gradient s sees ``lr_{schedule_start+s}``.  Each
    lr is the exact schedule value correctly rounded to ``lr_format``
    (torch keeps a Python float; its own lr may differ from this one by the
    schedule's tolerance, ``lr_error_bounds``).  ``eta_0`` defaults to the
    optimizer's ``lr``.  A schedule with ``cycle_momentum=True`` (CyclicLR,
    OneCycleLR) also sets the optimizer's ``momentum`` (SGD, RMSprop) or
    ``beta1`` (the Adam family) before every step, to the momentum sequence
    rounded the same way, as torch writes ``group["momentum"]`` /
    ``group["betas"][0]``; an optimizer with neither is refused, as torch's
    constructor refuses it (ValueError).
    """
    opt_hyper = spec.complete(hyper)
    sched_hyper = schedule.complete(schedule_hyper)
    eta = opt_hyper["lr"] if eta_0 is None else eta_0
    fmt = get_format(lr_format).name
    elements = lr_sequence(schedule, sched_hyper, eta, len(grads), form=form, formats=(fmt,), start=schedule_start)
    hypers = [{"lr": float(e.rounded[fmt])} for e in elements]
    if schedule.momentum_form is not None and sched_hyper.get("cycle_momentum"):
        cycled = [name for name in ("momentum", "beta1") if name in opt_hyper]
        if not cycled:
            raise ValueError(f"{schedule.name} with cycle_momentum=True needs an optimizer with momentum or beta1 "
                             f"({spec.name} has neither; torch raises ValueError too)")
        momenta = momentum_sequence(schedule, sched_hyper, len(grads), formats=(fmt,), start=schedule_start)
        for h, m in zip(hypers, momenta):
            h[cycled[0]] = float(m.rounded[fmt])
    return trajectory(spec, hyper, param, grads, state=state, step=step, hypers=hypers, formats=formats)
