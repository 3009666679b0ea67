"""Exact optimizer steps and trajectories, correctly rounded to binary formats.

Inputs are binary floats (parameters, gradients and state as NumPy arrays of
float16, bfloat16, float32 or float64; hyperparameters as Python floats), and
every one is converted exactly.  The trajectory is then computed in exact real
arithmetic: no rounding happens between steps, so the reference of step 100 is
the exact spec applied 100 times, and its only rounding is the final one to
the requested formats.

Precision is escalated in Ziv's manner.  Each element's trajectory is
evaluated in interval arithmetic at ``prec`` bits; if, at every step, both
ends of every output's interval round to the same value in every requested
format, those values are the correctly rounded exact results.  Otherwise the
element is recomputed at twice the precision, up to ``MAX_PREC`` bits; an
element that still does not settle (its exact value sits on a rounding
boundary that interval arithmetic cannot resolve) raises ``Unstable``.

Steps whose inputs are not all finite, or whose exact value is not a real
number (``0/0`` when ε = 0 and v = 0), follow IEEE 754's rules instead
(``arith.Special``); their values are marked ``exact=False`` in the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

import mpmath
from mpmath import libmp
import numpy as np

from spec import OptimizerSpec
from . import arith
from .exact import ExactInterval
from .formats import FORMATS, exact as exact_value, get_format, round_to_format
from .program import compile_rule

START_PREC = 128
MAX_PREC = 8192


class Unstable(ArithmeticError):
    """No precision up to MAX_PREC gave a stable rounding."""


@dataclass
class Element:
    """One output element at one step.

    ``value`` is the unrounded result: an mpmath ``mpf`` at the working
    precision (the midpoint of an interval much narrower than an ulp of any
    requested format), or a float NaN/±inf.  ``rounded`` maps a format name to
    the correctly rounded value.  ``exact`` is False for IEEE special-value
    steps, whose finite results are not certified by interval arithmetic.
    """

    value: object
    rounded: dict
    exact: bool = True
    prec: int = 0


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


def _exact_array(a) -> np.ndarray:
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    for idx, x in np.ndenumerate(a):
        out[idx] = exact_value(a.dtype.type(x) if a.dtype != object else x)
    return out


def _is_finite(x) -> bool:
    return not (isinstance(x, float) and not math.isfinite(x))


def initial_state(spec: OptimizerSpec, hyper: dict, shape) -> dict:
    """State name → object array of exact initial values (SymPy ``init`` evaluated exactly)."""
    out = {}
    symbols = {h.symbol: Fraction(hyper[h.name]) for h in spec.numeric}
    for s in spec.state:
        if s.name == "step":
            continue
        v = s.init.xreplace({k: _sympy_rational(v) for k, v in symbols.items()})
        value = Fraction(int(v.p), int(v.q))
        arr = np.empty(shape, dtype=object)
        arr.fill(value)
        out[s.name] = arr
    return out


def _sympy_rational(f: Fraction):
    import sympy as sp
    return sp.Rational(f.numerator, f.denominator)


def hyper_schedule(spec: OptimizerSpec, hyper: dict, steps: int, *, lrs: Optional[Sequence] = None,
                   hypers: Optional[Sequence] = None, validate: bool = True) -> list:
    """The complete hyperparameters in force at each of ``steps`` steps.

    ``hypers[s]`` (a dict, or ``None`` for no change) sets hyperparameters just
    before step ``s`` (torch: writing ``group["momentum"]``, ``group["betas"]``
    — here ``beta1``/``beta2`` — or ``group["lr"]``, as a scheduler does); each
    value stays in force until it is set again.  ``lrs[s]`` is shorthand for
    ``hypers[s] = {"lr": lrs[s]}``; where both set the lr of a step, ``lrs``
    wins.  Every step's values must lie in the spec's domains
    (``InvalidHyperparameter`` otherwise), and flags cannot change: the
    compiled program depends on them.  ``validate=False`` skips the domain
    check of the changed values: for values an implementation reports it
    stepped with, which a scheduler's rounding can put just outside the
    domain its constructor checks (LinearLR to end_factor 0 gives lr ≈ −2e-20).
    """
    hyper = spec.complete(hyper)
    for name, seq in (("lrs", lrs), ("hypers", hypers)):
        if seq is not None and len(seq) != steps:
            raise ValueError(f"{name} has {len(seq)} entries for {steps} steps")
    flags = {h.name for h in spec.flags}
    out, h = [], dict(hyper)
    for s in range(steps):
        change = dict((hypers[s] or {}) if hypers is not None else {})
        if lrs is not None and lrs[s] is not None:
            change["lr"] = lrs[s]
        if change:
            moved = sorted(k for k in change if k in flags and change[k] != h[k])
            if moved:
                raise ValueError(f"{spec.name}: flags cannot change between steps ({moved} at step {s})")
            h = spec.complete({**h, **change}) if validate else {**h, **change}
        out.append(h)
    return out


def trajectory(spec: OptimizerSpec, hyper: dict, param, grads: Sequence, *, state: Optional[dict] = None,
               step: int = 0, lrs: Optional[Sequence] = None, hypers: Optional[Sequence] = None,
               formats: Sequence[str] = ("float64",), validate: bool = True) -> list:
    """The exact trajectory: one ``Snapshot`` per gradient.

    ``param`` is an array of a binary format; ``grads[s]`` an array of the same
    shape or ``None`` (no gradient at step s: nothing moves and the step counter
    does not advance).  ``state`` maps state names to arrays (default: the
    spec's initial values) and ``step`` is the number of steps already taken.
    ``lrs[s]``, when given, replaces the learning rate before step ``s`` and
    stays in force for later steps until the next entry that is not ``None``
    (torch: setting ``group["lr"]``); ``hypers[s]`` does the same for any
    numeric hyperparameters (a schedule cycling ``momentum`` or ``beta1``),
    see ``hyper_schedule`` (and its ``validate``).
    """
    hyper = spec.complete(hyper)
    in_force = hyper_schedule(spec, hyper, len(grads), lrs=lrs, hypers=hypers, validate=validate)
    formats = tuple(get_format(f).name for f in formats)
    program = compile_rule(spec, hyper)
    theta0 = _exact_array(param)
    shape = theta0.shape
    state0 = initial_state(spec, hyper, shape)
    for name, arr in (state or {}).items():
        if name == "step":
            continue
        if name not in state0:
            raise KeyError(f"{spec.name} has no state variable {name!r}")
        state0[name] = _exact_array(np.broadcast_to(arr, shape))
    grads_exact = [None if gr is None else _exact_array(np.broadcast_to(gr, shape)) for gr in grads]
    for s, gr in enumerate(grads):
        if gr is not None and np.shape(gr) != shape:
            raise ValueError(f"grad of step {s} has shape {np.shape(gr)}, the parameter {shape}")
    hyper_steps = [{k: Fraction(v) for k, v in h.items() if not isinstance(v, bool)} for h in in_force]

    # t after each step: the counter advances only on steps with a gradient.
    ts, t = [], step
    for gr in grads:
        if gr is not None:
            t += 1
        ts.append(t)

    names = program.outputs
    per_step = [{n: np.empty(shape, dtype=object) for n in names} for _ in grads]
    for idx in np.ndindex(*shape):
        inputs = {"theta": theta0[idx], **{k: v[idx] for k, v in state0.items()}}
        rows = _element_trajectory(program, inputs, [None if gr is None else gr[idx] for gr in grads_exact],
                                   hyper_steps, ts, formats)
        for s, row in enumerate(rows):
            for n in names:
                per_step[s][n][idx] = row[n]
    return [Snapshot(t=ts[s], theta=per_step[s]["theta"], state={n: per_step[s][n] for n in names if n != "theta"},
                     stepped=grads[s] is not None) for s in range(len(grads))]


def step_once(spec: OptimizerSpec, hyper: dict, param, grad, *, state=None, step=0, formats=("float64",)) -> Snapshot:
    """One exact step from the given state (``trajectory`` with one gradient)."""
    return trajectory(spec, hyper, param, [grad], state=state, step=step, formats=formats)[0]


def _element_trajectory(program, inputs: dict, grads: list, hyper_steps: list, ts: list, formats) -> list:
    prec = START_PREC
    while True:
        try:
            return _run(program, inputs, grads, hyper_steps, ts, formats, prec)
        except (_NotStable, arith.Undecided) as why:
            if prec < MAX_PREC:
                prec *= 2
                continue
            try:
                return _run(program, inputs, grads, hyper_steps, ts, formats, prec, exact=True)
            except (_NotStable, arith.Undecided):
                raise Unstable(f"no stable rounding up to {MAX_PREC} bits, nor in exact arithmetic: {why}; "
                               f"inputs {inputs}, gradients {grads}, hyperparameters {hyper_steps}") from None


class _NotStable(Exception):
    pass


def _run(program, inputs, grads, hyper_steps, ts, formats, prec, exact=False) -> list:
    """One attempt at ``prec`` bits; raises ``_NotStable``/``Undecided`` to ask for more.

    ``exact``: keep rationals and square roots of rationals exact (``reference.exact``),
    intervals only for the rest.  The last resort, when no precision decides: a value
    that is exactly a rounding boundary or exactly 0 under a square root, reached
    through rounded intervals, straddles it at any precision (centered RMSprop with
    α = 0: v − ḡ² = g² − g²; AdaDelta with ρ = 1: √ε/√ε = 1 on a tie).
    """
    if exact:
        O = ExactInterval(prec)
    else:
        O = arith.Interval(prec)
    S = None  # the Special arithmetic, once a step is not finite or not real; kept for the rest
    if all(_is_finite(v) for v in inputs.values()):
        current = {k: O.input(v) for k, v in inputs.items()}
    else:
        S = arith.Special(max(256, prec))
        current = {k: S.input(v) for k, v in inputs.items()}
    rows = []
    last = {n: _element_of(O, S, current[n], formats) for n in program.outputs}
    for gr, h, t in zip(grads, hyper_steps, ts):
        if gr is None:
            rows.append(last)
            continue
        done = False
        if S is None and _is_finite(gr):
            values = {**current, "g": O.input(gr), "t": O.input(t), **{k: O.input(v) for k, v in h.items()}}
            try:
                current = {k: arith.check_real(v) for k, v in program(O, values).items()}
                done = True
            except arith.NotReal:
                pass
        if not done:
            if S is None:
                S = arith.Special(max(256, prec))
                current = {k: S.input(v if isinstance(v, Fraction) else _to_fraction(_raw(_interval(O, v).mid._mpi_[0])))
                           for k, v in current.items()}
            values = {**current, "g": S.input(gr), "t": S.input(t), **{k: S.input(v) for k, v in h.items()}}
            current = program(S, values)
        last = {n: _element_of(O, S, current[n], formats) for n in program.outputs}
        rows.append(last)
    return rows


def _interval(O, v):
    """An exact non-rational value of ``ExactInterval`` (r·√q, π·q) as an interval; anything else as it is."""
    return v if isinstance(v, Fraction) or not isinstance(O, ExactInterval) else O._iv(v)


def _to_fraction(x):
    x = mpmath.mpf(x)
    if not mpmath.isfinite(x):
        return float(x)
    sign, man, exp, _ = x._mpf_
    return Fraction((-1) ** sign * man) * (Fraction(2) ** exp)


def _element_of(O, S, v, formats) -> Element:
    if S is not None:
        v = _raw(v._mpf_)  # Special's numbers belong to its own mpmath context: make them plain mpf
        return Element(v, {f: round_to_format(v, FORMATS[f]) for f in formats}, exact=False, prec=S.ctx.prec)
    v = _interval(O, v)
    if isinstance(v, Fraction):  # exact arithmetic (``_run(exact=True)``)
        value = mpmath.mp.make_mpf(libmp.from_rational(v.numerator, v.denominator, O.prec, libmp.round_nearest))
        return Element(value, {f: round_to_format(v, FORMATS[f]) for f in formats}, exact=True, prec=O.prec)
    rounded = {}
    for f in formats:
        lo, hi = round_to_format(_raw(v._mpi_[0]), FORMATS[f]), round_to_format(_raw(v._mpi_[1]), FORMATS[f])
        if not _same(lo, hi):
            raise _NotStable(f"[{v.a}, {v.b}] rounds to {lo} and {hi} in {f}")
        rounded[f] = lo
    return Element(_raw(v.mid._mpi_[0]), rounded, exact=True, prec=O.prec)


def _raw(mpf_tuple):
    """An mpf holding exactly these bits: ``mpmath.mpf(x)`` would round to the global 53 bits."""
    return mpmath.mp.make_mpf(mpf_tuple)


def _same(a, b) -> bool:
    """The same float; ±0 count as one, since an interval around an exact 0 may straddle it."""
    return np.asarray(a).tobytes() == np.asarray(b).tobytes() or (a == 0 and b == 0)
