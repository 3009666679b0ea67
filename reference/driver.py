"""What the reference's runs share: driving a compiled program over a trajectory, and stable rounding.

``prepare`` turns a trajectory's inputs (a parameter, gradients, state, the
hyperparameters in force at each step) into exact values once; ``Run.per_element``
runs each element's trajectory with ``steps``, which feeds the program the
gradient, the step counter and the state of every step, in any arithmetic
(intervals in ``reference.step``, error bounds in ``reference.bound``).

``rounded_stably`` decides whether an interval determines the correctly
rounded value in each requested format, and ``escalate`` retries at twice
the precision, Ziv's way, until it does (``reference.step`` for optimizer
steps, ``reference.schedule`` for learning-rate schedules).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional, Sequence

import mpmath
import numpy as np
import sympy as sp

from spec import OptimizerSpec
from . import arith
from .formats import FORMATS, exact as exact_value, get_format, round_to_format
from .sparse import coalesce, duplicates, first_entries
from .program import Program, compile_rule

START_PREC = 128
MAX_PREC = 8192


class Unstable(ArithmeticError):
    """No precision up to MAX_PREC gave a stable rounding."""


class NotStable(Exception):
    """An interval's ends round to different values: ask for more precision."""


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


def is_finite(x) -> bool:
    """False for a float or mpf NaN or ±inf; True for any other exact value (Fraction, int, finite float or mpf).

    Snapshots hold mpf values, NaN included (an mpf is told by its ``_mpf_``, in any mpmath context)."""
    if isinstance(x, float):
        return math.isfinite(x)
    return not hasattr(x, "_mpf_") or bool(mpmath.isfinite(x))


# --------------------------------------------------------------------------- driving a program over steps


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


def initial_state(spec: OptimizerSpec, hyper: dict, shape) -> dict:
    """State name → object array of exact initial values (SymPy ``init`` evaluated exactly)."""
    out = {}
    symbols = {h.symbol: _rational(Fraction(hyper[h.name])) for h in spec.numeric
               if hyper[h.name] is not None}  # None: a per-tensor value no initial value reads (Adafactor's ε₁)
    for s in spec.state:
        if s.name == "step":
            continue
        v = s.init.xreplace(symbols)
        arr = np.empty(shape, dtype=object)
        arr.fill(Fraction(int(v.p), int(v.q)))
        out[s.name] = arr
    return out


def creation_hyper(hyper: dict, in_force: Sequence, grads: Sequence) -> dict:
    """The hyperparameters a state's initial value is computed from: those in force at the first step with a
    gradient, where torch's ``_init_group`` creates the state (Rprop fills ``step_size`` with the group's lr
    then); ``hyper`` when no step has one."""
    return next((h for h, gr in zip(in_force, grads) if gr is not None), hyper)


def _rational(f: Fraction) -> sp.Rational:
    return sp.Rational(f.numerator, f.denominator)


def _exact_array(a) -> np.ndarray:
    """The exact values of an array; of a ``numpy.ma.MaskedArray`` (a sparse gradient), ``None`` at each masked
    element (outside the index set: no gradient there, so that element does not step)."""
    mask = np.ma.getmaskarray(a) if isinstance(a, np.ma.MaskedArray) else None
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    for idx, x in np.ndenumerate(a):
        out[idx] = None if mask is not None and mask[idx] else exact_value(a.dtype.type(x) if a.dtype != object else x)
    return out


def _exact_in_turn(g) -> np.ndarray:
    """``_exact_array`` of an uncoalesced gradient (``reference.sparse.Uncoalesced``), each element held twice as
    the pair (first value, second value) that ``steps`` applies in turn."""
    out = _exact_array(first_entries(g))
    for idx in np.ndindex(*out.shape):  # a 0-d gradient too (np.nonzero refuses 0-d arrays)
        if g.twice[idx]:
            out[idx] = (out[idx], exact_value(g.second.dtype.type(g.second[idx])))
    return out


def _zero_where_state_held(grads: list, everywhere: bool) -> list:
    """``grads`` (exact arrays, None outside a sparse gradient's index set) with 0 wherever an earlier gradient held
    the element, or everywhere when the caller gave the state (``OptimizerSpec.moves_where_state_held``): such an
    element steps as the rule at g = 0."""
    held = None
    out = []
    for gr in grads:
        if gr is None:
            out.append(None)
            continue
        here = np.vectorize(lambda x: x is not None, otypes=[bool])(gr) if gr.size else np.zeros(gr.shape, bool)
        if held is None:
            held = np.full(gr.shape, everywhere)
        gr = gr.copy()
        gr[held & ~here] = Fraction(0)
        held = held | here
        out.append(gr)
    return out


@dataclass
class Run:
    """A trajectory's inputs, exact: what every element's run needs.

    ``theta`` and ``state`` (name → array) hold the starting values, ``given``
    the names of the state variables the caller set (the others hold the spec's
    initial values); ``grads[s]`` is an array or ``None`` (no gradient: nothing
    moves); ``hypers[s]`` the numeric hyperparameters in force at step ``s``
    (name → Fraction) and ``ts[s]`` the step counter after it.
    """

    program: Program
    shape: tuple
    theta: np.ndarray
    state: dict
    given: frozenset
    grads: list
    hypers: list
    ts: list
    # per step, state name → object array of exact values: the step's observed values (``State.observed``), which
    # replace the state's before the step; None where none are given
    observed: Optional[list] = None

    def per_element(self, element_trajectory: Callable) -> list:
        """Per step, output name → object array of ``element_trajectory(start, grads)``'s rows.

        ``start`` maps "theta" and each state name to the element's exact start value,
        ``grads`` is the element's gradient of each step (``None`` where there is none),
        and ``element_trajectory`` returns one row (output name → value) per step.
        """
        names = self.program.outputs
        out = [{n: np.empty(self.shape, dtype=object) for n in names} for _ in self.grads]
        for idx in np.ndindex(*self.shape):
            start = {"theta": self.theta[idx], **{k: v[idx] for k, v in self.state.items()}}
            rows = element_trajectory(start, [None if g is None else g[idx] for g in self.grads])
            for s, row in enumerate(rows):
                for n in names:
                    out[s][n][idx] = row[n]
        return out


def prepare(spec: OptimizerSpec, hyper: dict, param, grads: Sequence, *, state: Optional[dict] = None,
            step: int = 0, lrs: Optional[Sequence] = None, hypers: Optional[Sequence] = None,
            validate: bool = True, observed: Optional[Sequence] = None) -> Run:
    """The exact inputs of a trajectory (see ``reference.step.trajectory`` for the arguments).

    ``observed[s]``: the observed state (``State.observed``, name → array like the parameter) the implementation
    reported for step ``s``, or None (a step without a gradient reads none).  Every step with a gradient must have
    every observed variable: the rule reads it and no exact value of it exists.  Only for a spec that reduces,
    whose tensors the reference steps whole (Muon's)."""
    hyper = spec.complete(hyper)
    in_force = hyper_schedule(spec, hyper, len(grads), lrs=lrs, hypers=hypers, validate=validate)
    theta0 = _exact_array(param)
    shape = theta0.shape
    program = compile_rule(spec, hyper, shape)
    state0 = initial_state(spec, creation_hyper(hyper, in_force, grads), shape)
    for name, arr in (state or {}).items():
        if name == "step":
            continue
        if name not in state0:
            raise KeyError(f"{spec.name} has no state variable {name!r}")
        _state_named(spec, name).check_shape(np.shape(arr), shape, f"{spec.name}: ")
        state0[name] = _exact_array(np.broadcast_to(arr, shape))
    for s, gr in enumerate(grads):
        if gr is not None and np.shape(gr) != shape:
            raise ValueError(f"grad of step {s} has shape {np.shape(gr)}, the parameter {shape}")
        if isinstance(gr, np.ma.MaskedArray) and not spec.sparse_gradients:
            raise ValueError(f"grad of step {s} is sparse (a masked array), but {spec.name} takes dense gradients")
        if duplicates(gr) and not spec.takes_duplicates(hyper):
            raise ValueError(f"grad of step {s} holds duplicate indices, which {spec.name} " +
                             ("adds in turn only where it keeps no state (these hyperparameters keep some)"
                              if spec.adds_duplicates_in_turn else "neither coalesces nor adds in turn") +
                             ": not specified")
    # duplicate indices: summed in the dtype first (torch's coalesce()), then stepped once; or added in turn
    grads_exact = [None if gr is None else _exact_in_turn(gr) if spec.adds_duplicates_in_turn and duplicates(gr)
                   else _exact_array(coalesce(gr)) for gr in grads]
    if spec.moves_where_state_held and spec.keeps_state(hyper):
        grads_exact = _zero_where_state_held(grads_exact, everywhere=bool(state))
    numeric = tuple(h.name for h in spec.numeric)
    hyper_steps = [{k: resolve_none(spec, k, h[k], param) for k in numeric} for h in in_force]
    ts, t = [], step  # the counter advances only on steps with a gradient
    for gr in grads:
        if gr is not None:
            t += 1
        ts.append(t)
    given = frozenset(k for k in (state or {}) if k != "step")
    return Run(program, shape, theta0, state0, given, grads_exact, hyper_steps, ts,
               _observed(spec, observed, grads, shape))


def _observed(spec: OptimizerSpec, observed: Optional[Sequence], grads: Sequence, shape) -> Optional[list]:
    """``prepare``'s ``observed`` checked and made exact (None where the spec has no observed state)."""
    names = set(spec.observed)
    if not names:
        if observed is not None and any(observed):
            raise ValueError(f"{spec.name} has no observed state; got observed values")
        return None
    if not spec.reduces:
        raise ValueError(f"{spec.name}: observed state is supported for a spec that reduces (stepped whole) only")
    if observed is None or len(observed) != len(grads):
        raise ValueError(f"{spec.name}: the observed values {', '.join(sorted(names))} of each of the {len(grads)} "
                         f"steps are needed (the rule reads them; no exact value of them exists)")
    out = []
    for s, (values, gr) in enumerate(zip(observed, grads)):
        if gr is None:
            out.append(None)
            continue
        missing = names - set(values or {})
        if missing:
            raise ValueError(f"{spec.name}: step {s} has a gradient but no observed {', '.join(sorted(missing))}")
        for name, arr in values.items():
            if name not in names:
                raise KeyError(f"{spec.name} has no observed state variable {name!r}")
            if np.shape(arr) != tuple(shape):
                raise ValueError(f"observed {name} of step {s} has shape {np.shape(arr)}, the parameter {shape}")
        out.append({name: _exact_array(values[name]) for name in sorted(names)})
    return out


def resolve_none(spec: OptimizerSpec, name: str, value, param) -> Fraction:
    """A hyperparameter's exact value for a parameter like ``param`` (an array of a binary format): None, where the
    spec lets it stand for the dtype's machine epsilon (``Hyperparameter.none_means_eps``: Adafactor's eps1), is
    2^(1 − p) of ``param``'s format, as torch.finfo(param.dtype).eps."""
    if value is None:
        if not spec.hyper(name).none_means_eps:
            raise ValueError(f"{spec.name}: {name}=None, which only a hyperparameter whose None means the dtype's "
                             f"machine epsilon may be")
        return Fraction(1, 1 << (get_format(np.asarray(param).dtype).precision - 1))
    return Fraction(value)


def _state_named(spec: OptimizerSpec, name: str):
    return next(st for st in spec.state if st.name == name)


def steps(advance: Callable, emit: Callable, current, grads: list, hypers: list, ts: list,
          observed: Optional[list] = None, observe: Optional[Callable] = None) -> list:
    """The rows ``emit(current)`` after each step of one element's trajectory.

    A step with gradient ``g`` sets ``current = advance(current, g, t, h)``
    (``t`` the step counter, ``h`` the hyperparameters in force), a pair ``g`` (an index held twice, added in
    turn: ``OptimizerSpec.adds_duplicates_in_turn``) advances by each value in turn; a step without
    one (``None``) changes nothing and repeats the last row.  ``emit`` is also
    applied to the start, so a start that cannot be rounded fails the same way.
    ``observed[s]`` (``Run.observed``), where given, enters first: ``current = observe(current, observed[s])``.
    """
    last = emit(current)
    rows = []
    for s, (g, h, t) in enumerate(zip(grads, hypers, ts)):
        if g is not None:
            if observed is not None:
                current = observe(current, observed[s])
            for part in (g if isinstance(g, tuple) else (g,)):
                current = advance(current, part, t, h)
            last = emit(current)
        rows.append(last)
    return rows


# --------------------------------------------------------------------------- rounding stably


def raw(mpf_tuple):
    """An mpf holding exactly these bits: ``mpmath.mpf(x)`` would round to the global 53 bits."""
    return mpmath.mp.make_mpf(mpf_tuple)


def same_float(a, b) -> bool:
    """The same float; ±0 count as one, since an interval around an exact 0 may straddle it."""
    return np.asarray(a).tobytes() == np.asarray(b).tobytes() or (a == 0 and b == 0)


def rounded_stably(v, formats, prec: int) -> Element:
    """The interval ``v``'s correctly rounded value in each format, if both its ends round alike in every one.

    Raises ``NotStable`` otherwise.  ``Element.value`` is the interval's midpoint, with all its bits.
    """
    rounded = {}
    for f in formats:
        lo, hi = round_to_format(raw(v._mpi_[0]), FORMATS[f]), round_to_format(raw(v._mpi_[1]), FORMATS[f])
        if not same_float(lo, hi):
            raise NotStable(f"[{v.a}, {v.b}] rounds to {lo} and {hi} in {f}")
        rounded[f] = lo
    return Element(raw(v.mid._mpi_[0]), rounded, exact=True, prec=prec)


def escalate(attempt: Callable, *, last_resort: Optional[Callable] = None, context: Callable = lambda: ""):
    """``attempt(prec)`` at ``START_PREC`` bits, then at twice the precision while it is not decided.

    Undecided means ``attempt`` raised ``NotStable`` (a rounding) or ``arith.Undecided``
    (a comparison).  Past ``MAX_PREC`` bits, ``last_resort(prec)`` is tried once
    when given; if that does not decide either, ``Unstable``, its message
    starting with ``context()`` (what was being computed).
    """
    prec = START_PREC
    while True:
        try:
            return attempt(prec)
        except (NotStable, arith.Undecided) as why:
            if prec < MAX_PREC:
                prec *= 2
                continue
            reason = why
        break
    nor = ""
    if last_resort is not None:
        nor = ", nor in exact arithmetic"
        try:
            return last_resort(prec)
        except (NotStable, arith.Undecided) as why:
            reason = why
    raise Unstable(f"{context()}no stable rounding up to {MAX_PREC} bits{nor}: {reason}") from None
