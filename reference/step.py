"""Exact optimizer steps and trajectories, correctly rounded to binary formats.

Inputs are binary floats (parameters, gradients and state as NumPy arrays of
float16, bfloat16, float32 or float64; hyperparameters as Python floats), and
every one is converted exactly.  The trajectory is then computed in exact real
arithmetic: no rounding happens between steps, so the reference of step 100 is
the exact spec applied 100 times, and its only rounding is the final one to
the requested formats.

Precision is escalated in Ziv's manner (``reference.driver``, shared with the
schedules).  Each element's trajectory is evaluated in interval arithmetic at
``prec`` bits; if, at every step, both ends of every output's interval round
to the same value in every requested format, those values are the correctly
rounded exact results.  Otherwise the element is recomputed at twice the
precision, up to ``MAX_PREC`` bits, then once in exact arithmetic where it can
be (``reference.exact``); an element that still does not settle (its exact
value sits on a rounding boundary that interval arithmetic cannot resolve)
raises ``Unstable``.

Steps whose inputs are not all finite, or whose exact value is not a real
number (``0/0`` when ε = 0 and v = 0), follow IEEE 754's rules instead
(``arith.Special``); their values are marked ``exact=False`` in the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import mpmath
from mpmath import libmp
import numpy as np

from spec import OptimizerSpec
from . import arith
from .driver import (MAX_PREC, START_PREC, Element, Unstable, escalate, hyper_schedule, initial_state, is_finite,
                     prepare, raw, rounded_stably, steps)
from .exact import ExactInterval
from .formats import FORMATS, get_format, round_to_format
from .tensor import Lifted, all_finite, object_array

__all__ = ["Element", "Snapshot", "Unstable", "hyper_schedule", "initial_state", "is_finite", "step_once",
           "trajectory", "START_PREC", "MAX_PREC"]

# START_PREC and MAX_PREC are re-exported for reading; the escalation reads ``reference.driver``'s.


@dataclass
class Snapshot:
    """The exact state after one step: ``theta`` and each state variable, as arrays of ``Element``."""

    t: int
    theta: np.ndarray
    state: dict
    stepped: bool = True  # False when the gradient was None and nothing moved

    def rounded(self, name: str, fmt: str) -> np.ndarray:
        """The correctly rounded values of output ``name`` ("theta" or a state name) in ``fmt``."""
        arr = self.theta if name == "theta" else self.state[name]
        out = np.empty(arr.shape, dtype=get_format(fmt).dtype)
        for idx, e in np.ndenumerate(arr):
            out[idx] = e.rounded[fmt]
        return out

    def values(self, name: str) -> np.ndarray:
        arr = self.theta if name == "theta" else self.state[name]
        out = np.empty(arr.shape, dtype=object)
        for idx, e in np.ndenumerate(arr):
            out[idx] = e.value
        return out


def trajectory(spec: OptimizerSpec, hyper: dict, param, grads: Sequence, *, state: Optional[dict] = None,
               step: int = 0, lrs: Optional[Sequence] = None, hypers: Optional[Sequence] = None,
               formats: Sequence[str] = ("float64",), validate: bool = True,
               observed: Optional[Sequence] = None) -> list:
    """The exact trajectory: one ``Snapshot`` per gradient.

    ``param`` is an array of a binary format; ``grads[s]`` an array of the same
    shape or ``None`` (no gradient at step s: nothing moves and the step counter
    does not advance).  ``state`` maps state names to arrays (default: the
    spec's initial values) and ``step`` is the number of steps already taken.
    ``lrs[s]``, when given, replaces the learning rate before step ``s`` and
    stays in force for later steps until the next entry that is not ``None``
    (torch: setting ``group["lr"]``); ``hypers[s]`` does the same for any
    numeric hyperparameters (a schedule cycling ``momentum`` or ``beta1``),
    see ``hyper_schedule`` (and its ``validate``).  ``observed[s]``: the values of the spec's observed state
    (``State.observed``) at step ``s``, as the implementation reported them (``reference.driver.prepare``).
    """
    run = prepare(spec, hyper, param, grads, state=state, step=step, lrs=lrs, hypers=hypers, validate=validate,
                  observed=observed)
    formats = tuple(get_format(f).name for f in formats)
    if spec.reduces:  # the elements depend on each other: the whole tensor escalates together
        per_step = escalate(lambda prec: _run_tensor(run, formats, prec),
                            last_resort=lambda prec: _run_tensor(run, formats, prec, exact=True),
                            context=lambda: f"a tensor of shape {run.shape}, hyperparameters {run.hypers}: ")
        return _snapshots(run, per_step, grads)

    def element_trajectory(start, element_grads):
        return escalate(lambda prec: _run(run, start, element_grads, formats, prec),
                        last_resort=lambda prec: _run(run, start, element_grads, formats, prec, exact=True),
                        context=lambda: f"inputs {start}, gradients {element_grads}, "
                                        f"hyperparameters {run.hypers}: ")

    return _snapshots(run, run.per_element(element_trajectory), grads)


def _snapshots(run, per_step, grads) -> list:
    names = run.program.outputs
    return [Snapshot(t=run.ts[s], theta=per_step[s]["theta"], state={n: per_step[s][n] for n in names if n != "theta"},
                     stepped=grads[s] is not None) for s in range(len(grads))]


def step_once(spec: OptimizerSpec, hyper: dict, param, grad, *, state=None, step=0, formats=("float64",)) -> Snapshot:
    """One exact step from the given state (``trajectory`` with one gradient)."""
    return trajectory(spec, hyper, param, [grad], state=state, step=step, formats=formats)[0]


def _run(run, inputs, grads, formats, prec, exact=False) -> list:
    """One attempt at ``prec`` bits; raises ``NotStable``/``Undecided`` to ask for more.

    ``exact``: keep rationals and square roots of rationals exact (``reference.exact``),
    intervals only for the rest.  The last resort, when no precision decides: a value
    that is exactly a rounding boundary or exactly 0 under a square root, reached
    through rounded intervals, straddles it at any precision (centered RMSprop with
    α = 0: v − ḡ² = g² − g²; AdaDelta with ρ = 1: √ε/√ε = 1 on a tie).
    """
    a = _Arithmetic(run.program, ExactInterval(prec) if exact else arith.Interval(prec), formats)
    return steps(a.advance, a.row, a.start(inputs), grads, run.hypers, run.ts)


class _Arithmetic:
    """Interval (or exact) arithmetic, switching for good to IEEE's special-value rules (``arith.Special``)
    at the first step whose inputs are not all finite or whose exact value is not real."""

    def __init__(self, program, O, formats):
        self.program, self.O, self.formats = program, O, formats
        self.S = None

    def _special(self):
        self.S = arith.Special(max(256, self.O.prec))
        return self.S

    def start(self, inputs: dict) -> dict:
        if all(is_finite(v) for v in inputs.values()):
            return {k: self.O.input(v) for k, v in inputs.items()}
        S = self._special()
        return {k: S.input(v) for k, v in inputs.items()}

    def advance(self, current: dict, g, t: int, h: dict) -> dict:
        O = self.O
        if self.S is None and is_finite(g):
            values = {**current, "g": O.input(g), "t": O.input(t), **{k: O.input(v) for k, v in h.items()}}
            try:
                return {k: arith.check_real(v) for k, v in self.program(O, values).items()}
            except arith.NotReal:
                pass
        if self.S is None:
            self._special()
            current = {k: self.S.input(v if isinstance(v, Fraction) else _to_fraction(raw(_interval(O, v).mid._mpi_[0])))
                       for k, v in current.items()}
        S = self.S
        values = {**current, "g": S.input(g), "t": S.input(t), **{k: S.input(v) for k, v in h.items()}}
        return self.program(S, values)

    def row(self, current: dict) -> dict:
        return {n: self._element(current[n]) for n in self.program.outputs}

    def _element(self, v) -> Element:
        formats = self.formats
        if self.S is not None:
            v = raw(v._mpf_)  # Special's numbers belong to its own mpmath context: make them plain mpf
            return Element(v, {f: round_to_format(v, FORMATS[f]) for f in formats}, exact=False, prec=self.S.ctx.prec)
        O = self.O
        v = _interval(O, v)
        if isinstance(v, Fraction):  # exact arithmetic (``_run(exact=True)``)
            value = mpmath.mp.make_mpf(libmp.from_rational(v.numerator, v.denominator, O.prec, libmp.round_nearest))
            return Element(value, {f: round_to_format(v, FORMATS[f]) for f in formats}, exact=True, prec=O.prec)
        return rounded_stably(v, formats, O.prec)


def _run_tensor(run, formats, prec, exact=False) -> list:
    """``_run`` for a whole tensor (a spec that reduces): per step, output name → object array of ``Element``.

    A tie that only symbolic arithmetic could settle stays undecided (``Unstable``): LAMB with lr = 1 on a
    one-element tensor steps θ − |θ|·u/|u| = 0 exactly, and the next step's ‖θ‖ > 0 is then asked of an interval
    around 0 (``conformance.check`` reports such a tensor as unchecked)."""
    a = _TensorArithmetic(run, ExactInterval(prec) if exact else arith.Interval(prec), formats)
    start = {"theta": run.theta, **run.state}
    return steps(a.advance, a.row, a.start(start), run.grads, run.hypers, run.ts, run.observed, a.observe)


class _TensorArithmetic(_Arithmetic):
    """``_Arithmetic`` over a whole tensor (``reference.tensor.Lifted``): a reduction mixes every element, so the
    first step with an input that is not finite anywhere, or a value that is not real anywhere, switches the
    whole tensor to IEEE's special-value rules (an inf in one element makes ‖θ‖ inf for all of them)."""

    def __init__(self, run, O, formats):
        super().__init__(run.program, O, formats)
        self.shape = run.shape

    def start(self, inputs: dict) -> dict:
        O = self.O if all_finite(inputs.values()) else self._special()
        L = Lifted(O, self.shape)
        return {k: L.each(O.input, v) for k, v in inputs.items()}

    def advance(self, current: dict, g, t: int, h: dict) -> dict:
        O = self.O
        if self.S is None and all_finite([g]):
            L = Lifted(O, self.shape)
            values = {**current, "g": L.each(O.input, g), "t": O.input(t), **{k: O.input(v) for k, v in h.items()}}
            try:
                out = self.program(L, values)
                for v in out.values():
                    for x in object_array(v, self.shape).flat:
                        arith.check_real(x)
                return out
            except arith.NotReal:
                pass
        if self.S is None:
            self._special()
            L = Lifted(self.S, self.shape)
            current = {k: L.each(lambda x: self.S.input(self._fraction(x)), v) for k, v in current.items()}
        S = self.S
        L = Lifted(S, self.shape)
        values = {**current, "g": L.each(S.input, g), "t": S.input(t), **{k: S.input(v) for k, v in h.items()}}
        return self.program(L, values)

    def observe(self, current: dict, values: dict) -> dict:
        """``current`` with the step's observed values (exact inputs); a non-finite one switches to IEEE's rules, as
        a non-finite gradient does."""
        if self.S is None and not all_finite(values.values()):
            self._special()
            L = Lifted(self.S, self.shape)
            current = {k: L.each(lambda x: self.S.input(self._fraction(x)), v) for k, v in current.items()}
        A = self.O if self.S is None else self.S
        L = Lifted(A, self.shape)
        return {**current, **{k: L.each(A.input, v) for k, v in values.items()}}

    def _fraction(self, x) -> Fraction:
        """An exact value, or the midpoint of its enclosure, as a Fraction (where IEEE's rules take over)."""
        return x if isinstance(x, Fraction) else _to_fraction(raw(_interval(self.O, x).mid._mpi_[0]))

    def row(self, current: dict) -> dict:
        L = Lifted(self.O, self.shape)
        return {n: L.each(self._element, object_array(current[n], self.shape)) for n in self.program.outputs}


def _interval(O, v):
    """An exact non-rational value of ``ExactInterval`` (r·√q, π·q) as an interval; anything else as it is."""
    return v if isinstance(v, Fraction) or not isinstance(O, ExactInterval) else O._iv(v)


def _to_fraction(x):
    x = mpmath.mpf(x)
    if not mpmath.isfinite(x):
        return float(x)
    sign, man, exp, _ = x._mpf_
    return Fraction((-1) ** sign * man) * (Fraction(2) ** exp)
