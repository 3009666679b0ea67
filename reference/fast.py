"""A fast certified reference: the compiled program over whole NumPy arrays, exact path only where needed.

Ziv's strategy in two phases (issue 12).

Phase 1 runs the spec's compiled program (``reference.program``) over every
element at once in binary64 (``FastInterval``).  Each tensor value is a
midpoint ``x`` and a radius ``r`` (float64 arrays) with |exact − x| ≤ r
guaranteed, by these rules (U = 2⁻⁵³, and ``_up`` rounds a radius outward:
×(1 + 2⁻⁴⁸) + 2⁻¹⁰²², which covers the few roundings of the radius
computation itself, relative and subnormal)::

    a ± b       r = up(rₐ + r_b + U·|s|)                        s = fl(a ± b)
    a · b       r = up(|a|·r_b + |b|·rₐ + rₐ·r_b + U·|p| + 2⁻¹⁰²²)
    a / b       r = up((rₐ + |q|·r_b)/(|b| − r_b)↓ + U·|q| + 2⁻¹⁰²²)  (∞ unless |b| − r_b > 0)
    √a          r = up(rₐ/√a + U·√a)                          (∞ unless a − rₐ > 0; √ of an exact 0 is 0)
    −a, |a|     r = rₐ;   max, min: r = max(rₐ, r_b)  (exact operations, 1-Lipschitz)

(U·|fl(z)| + 2⁻¹⁰⁷⁵ bounds the rounding error of one IEEE binary64 operation,
normal or subnormal, and NumPy's +, −, ×, ÷ and √ on float64 are IEEE's.)
A value whose radius is not finite (overflow, 0·∞, a divisor within its
radius of zero, √ of an interval reaching below zero, an operation with no
rule here such as a power of a tensor) is not certified.  Comparisons of
tensors decide where the intervals are disjoint (or both exact) and leave the
element undecided otherwise; ``select`` takes the branch per element, so a
non-real value in the branch not taken (RAdam before ρ_t > 5) costs nothing,
as in ``arith.Interval``.

Values that depend only on hyperparameters and the step counter (bias
corrections, step sizes, NAdam's μ products, RAdam's ρ_t) are scalars: they
are computed once per step by ``arith.Interval`` at ``SCALAR_PREC`` bits, and
enter tensor operations as the binary64 enclosure of their interval.

An element is certified when, at every step, every output's enclosure
[x − r, x + r] (its ends rounded outward) rounds to one value in every
requested format (``fast_round.round_exact``).  Its rounded values are then
the correctly rounded exact values, as ``reference.step`` would give them.
The elements binary64 does not certify, and every element of a float64
target (which binary64 cannot certify), run again in double-double
(``fast_dd``: a radius near 2⁻⁹⁷ relative, not 2⁻⁵³).  Every element still
not certified (an exact tie, non-finite inputs or results, a divisor or √
argument within its radius of 0, undecided comparisons) goes to phase 2:
``reference.step.trajectory`` for those elements only, whose values replace
phase 1's.

The tolerance model runs in the same pass (``fast_bound``).  Elements are
independent, so phase 1 runs in chunks of ``CHUNK`` elements, whose arrays
stay in the cache.  With numba installed, the commonest operations, the
recording of each output and the verdicts run as compiled loops
(``fast_kernels``) that compute the same bits as the NumPy code here.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

import numpy as np
from mpmath import libmp

from spec import OptimizerSpec
from . import arith, fast_kernels
from .driver import creation_hyper
from .fast_round import has_zero, next_toward, round_exact, some
from .formats import FORMATS, get_format
from .program import compile_rule
from .step import hyper_schedule, initial_state, trajectory

U = 2.0 ** -53
TINY = 2.0 ** -1022  # absolute slack: the smallest normal, so that radii never become slow subnormals
SCALAR_PREC = 128


def _float_toward(x, direction: float) -> float:
    """The mpf tuple ``x`` as a float64 rounded toward ``direction`` (±inf).

    mpmath's directed conversion does not direct subnormal results (it rounds them to nearest), so
    those are stepped one subnormal further, which is never less far.
    """
    out = libmp.to_float(x, rnd=libmp.round_floor if direction < 0 else libmp.round_ceiling)
    return float(np.nextafter(out, direction)) if abs(out) < 2.0 ** -1022 and x != libmp.fzero else out


def _up(r):
    """An upper bound of a radius computed with a few roundings (≤ 30): relative and subnormal slack."""
    return r * (1 + 2.0 ** -48) + TINY


@dataclass
class T:
    """A tensor value: |exact − x| ≤ r elementwise (r = inf or NaN: no enclosure, not certified).

    ``ax`` is |x|, computed once (the interval and the bound arithmetic each need it)."""

    x: np.ndarray
    r: np.ndarray

    @functools.cached_property
    def ax(self):
        return np.abs(self.x)

    @staticmethod
    def with_abs(x, r, ax) -> "T":
        """``T(x, r)`` whose |x| (``ax``) the caller has already computed."""
        t = T(x, r)
        t.__dict__["ax"] = ax
        return t


@dataclass
class TC:
    """A tensor comparison: its truth where decided, and the elements it could not decide."""

    holds: np.ndarray
    undecided: np.ndarray


class NoTensorRule:
    """The operations the fast arithmetics have no vectorised rule for (no spec applies them to tensors today):
    each is left to ``_no_rule`` of the arithmetic, which sends the elements concerned to phase 2."""

    def pow(self, a, b):
        return self._no_rule("pow", a, b)

    def cos(self, a):
        return self._no_rule("cos", a)

    def sin(self, a):
        return self._no_rule("sin", a)

    def exp(self, a):
        return self._no_rule("exp", a)

    def log(self, a):
        return self._no_rule("log", a)

    def floor(self, a):
        return self._no_rule("floor", a)

    def ceil(self, a):
        return self._no_rule("ceil", a)

    def mod(self, a, b):
        return self._no_rule("mod", a, b)


class FastInterval(NoTensorRule):
    """Midpoint-radius arithmetic over float64 arrays; scalars delegated to ``arith.Interval``.

    Overflow, 0·∞ and 0/0 are expected (they mark elements not certified): callers run the arithmetic under
    ``np.errstate(all="ignore")``, as ``_phase1`` does, rather than each operation entering it again."""

    def __init__(self, prec: int = SCALAR_PREC):
        self.iv = arith.Interval(prec)
        self._cache = {}  # scalar operations, computed once per step whatever the number of chunks

    def _scalar(self, name, *xs):
        key = (name, *map(id, xs))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = (getattr(self.iv, name)(*xs), xs)  # xs kept alive: their ids stay unique
        return hit[0]

    # -- conversions -----------------------------------------------------------------
    def hyper(self, x):
        """A hyperparameter (Fraction, int, float): an exact scalar interval."""
        return self.iv.input(x)

    step_counter = hyper

    @staticmethod
    def initial(q: Fraction) -> T:
        """A state's exact initial value, the same for every element (shape ())."""
        x = float(q)
        r = 0.0 if Fraction(x) == q else _up(U * abs(x) + TINY)
        return T(np.float64(x), np.float64(r))

    def as_tensor(self, v, n: int) -> T:
        """An output as a tensor value of ``n`` elements."""
        v = self._t(v)
        return v if np.shape(v.x) == (n,) else T(np.broadcast_to(v.x, (n,)), np.broadcast_to(v.r, (n,)))

    def shaped(self, v, n: int) -> T:
        """``as_tensor(v, n)``, or ``v`` as a value of shape () where every element has that one value (a state
        still at its initial value, Adam's max_exp_avg_sq without amsgrad): what is done with it then is done
        once, and broadcast where it is stored."""
        t = self._t(v)
        return t if np.ndim(t.x) == 0 and np.ndim(t.r) == 0 else self.as_tensor(t, n)

    @staticmethod
    def value(v: T) -> T:
        return v

    def tensor(self, x: np.ndarray) -> T:
        """An array of exact binary inputs (any binary format, so exact in float64)."""
        x = np.asarray(x, dtype=np.float64)
        return T(x, np.where(np.isfinite(x), 0.0, np.inf))

    def given(self, x: np.ndarray) -> T:
        """Given state: exact values, as ``tensor`` (``FastBound.given`` charges those not of the format)."""
        return self.tensor(x)

    def const(self, p, q):
        return self.iv.const(p, q)

    @staticmethod
    def _is_scalar(v) -> bool:
        return not isinstance(v, (T, TC))

    def _t(self, v) -> T:
        """A scalar interval (or a non-real scalar) as a tensor value of shape ()."""
        if isinstance(v, T):
            return v
        hit = self._cache.get(("_t", id(v)))
        if hit is None:
            hit = self._cache[("_t", id(v))] = (self._to_tensor(v), v)
        return hit[0]

    @staticmethod
    def _to_tensor(v) -> T:
        if isinstance(v, arith._NotRealValue):
            return T(np.float64(np.nan), np.float64(np.inf))
        lo = _float_toward(v._mpi_[0], -math.inf)
        hi = _float_toward(v._mpi_[1], math.inf)
        x = lo if lo == hi else 0.5 * lo + 0.5 * hi
        r = 0.0 if lo == hi else _up(max(hi - x, x - lo))
        if not (math.isfinite(x) and math.isfinite(r)):
            r = math.inf
        return T(np.float64(x), np.float64(r))

    def _all_scalar(self, xs) -> bool:
        return all(self._is_scalar(x) for x in xs)

    # -- arithmetic -------------------------------------------------------------------
    def add(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("add", *xs)
        ts = [self._t(x) for x in xs]
        # A sum of exact values that binary64 holds exactly is exact (Rprop's θ ∓ Δ at its first steps): radius
        # 0, so that a tie of the target format (a binary64 midpoint) is certified by rounding it, not left open.
        # Where some term has no exact element (a radius > 0 throughout: most sums), none is, unchecked.
        maybe_exact = all(has_zero(t.r) for t in ts)
        s, r, err, a = ts[0].x, ts[0].r, 0.0, None
        exact = ts[0].r == 0
        for t in ts[1:]:
            total = s + t.x
            if maybe_exact:
                back = total - s  # TwoSum: (s − (total − back)) + (t.x − back) is the rounding error of s + t.x
                exact = exact & (t.r == 0) & ((s - (total - back)) + (t.x - back) == 0) & np.isfinite(total)
            s = total
            r = r + t.r
            a = np.abs(s)
            err = err + a
        r = _up(r + U * err)
        r = np.where(exact, 0.0, r) if maybe_exact else r
        return T(s, r) if a is None else T.with_abs(s, r, a)

    def sub(self, a, b):
        if self._all_scalar((a, b)):
            return self._scalar("sub", a, b)
        return self.add(a, self.neg(b))

    def neg(self, a):
        if self._is_scalar(a):
            return self._scalar("neg", a)
        return T(-a.x, a.r)

    def mul(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("mul", *xs)
        ts = [self._t(x) for x in xs]
        p, r, a = ts[0].x, ts[0].r, ts[0].ax
        for t in ts[1:]:
            prop = a * t.r + t.ax * r + r * t.r
            p = p * t.x
            a = np.abs(p)
            r = _up(prop + U * a + TINY)
        # An exact 0 times finite values is exactly 0 (Rprop's g·g_prev at its first step), and stays decidable.
        if any(has_zero(t.x) for t in ts):
            zero = functools.reduce(np.logical_or, [(t.x == 0) & (t.r == 0) for t in ts])
            finite = functools.reduce(np.logical_and, [np.isfinite(t.x) & np.isfinite(t.r) for t in ts])
            r = np.where(zero & finite, 0.0, r)
        return T.with_abs(p, r, a)

    def lerp(self, a, b, w):
        """``a + w·(b − a)``, as ``arith.Interval`` evaluates it (exact values: every form is the same)."""
        return self.add(a, self.mul(w, self.sub(b, a)))

    def div(self, a, b):
        if self._all_scalar((a, b)):
            return self._scalar("div", a, b)
        a, b = self._t(a), self._t(b)
        q = a.x / b.x
        d = (b.ax - b.r) * (1 - 2.0 ** -50)  # a lower bound of min |b| over its interval
        abs_q = np.abs(q)
        aq = abs_q * (1 + 2.0 ** -50) + TINY  # an upper bound of |a.x / b.x|
        r = _up((a.r + aq * b.r) / d + U * abs_q + TINY)
        r = np.where(d > 0, r, np.inf)
        return T.with_abs(q, r, abs_q)

    def sqrt(self, a):
        if self._is_scalar(a):
            return self._scalar("sqrt", a)
        s = np.sqrt(np.maximum(a.x, 0.0))
        r = _up(a.r * (1 + 2.0 ** -50) / s + U * s)
        exact_zero = (a.x == 0) & (a.r == 0)
        r = np.where(a.x - a.r > 0, r, np.where(exact_zero, 0.0, np.inf))
        return T(s, r)

    def abs(self, a):
        if self._is_scalar(a):
            return self._scalar("abs", a)
        return T(a.ax, a.r)

    def max(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("max", *xs)
        return functools.reduce(lambda a, b: self._pick(a, b, np.maximum), [self._t(x) for x in xs])

    def min(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("min", *xs)
        return functools.reduce(lambda a, b: self._pick(a, b, np.minimum), [self._t(x) for x in xs])

    @staticmethod
    def _pick(a, b, extremum) -> T:
        """max or min of two enclosures: the larger radius, or, where they are disjoint, the chosen one's own
        (a clamp to an exact bound, Rprop's Δ_min, stays exact)."""
        x = extremum(a.x, b.x)
        apart = np.abs(a.x - b.x) * (1 - 2.0 ** -50) > _up(a.r + b.r)
        return T(x, np.where(apart, np.where(x == a.x, a.r, b.r), np.maximum(a.r, b.r)))

    def _no_rule(self, name, *xs):
        """An operation on tensors with no rule here: every element goes to phase 2."""
        if self._all_scalar(xs):
            return self._scalar(name, *xs)
        shape = np.broadcast_shapes(*(np.shape(self._t(x).x) for x in xs))
        return T(np.full(shape, np.nan), np.full(shape, np.inf))

    # -- comparisons and branches --------------------------------------------------------
    def _cmp(self, op, a, b) -> TC:
        a, b = self._t(a), self._t(b)
        d = a.x - b.x
        rd = _up(a.r + b.r + U * np.abs(d))
        exact = (a.r == 0) & (b.r == 0) & np.isfinite(d)  # fl(a − b) has the sign of a − b, and is 0 iff a = b
        decided = exact | (np.abs(d) > rd)
        return TC(op(d), ~decided)

    def gt(self, a, b):
        return self._scalar("gt", a, b) if self._all_scalar((a, b)) else self._cmp(lambda d: d > 0, a, b)

    def lt(self, a, b):
        return self._scalar("lt", a, b) if self._all_scalar((a, b)) else self._cmp(lambda d: d < 0, a, b)

    def ge(self, a, b):
        return self._scalar("ge", a, b) if self._all_scalar((a, b)) else self._cmp(lambda d: d >= 0, a, b)

    def le(self, a, b):
        return self._scalar("le", a, b) if self._all_scalar((a, b)) else self._cmp(lambda d: d <= 0, a, b)

    def eq(self, a, b):
        return self._scalar("eq", a, b) if self._all_scalar((a, b)) else self._cmp(lambda d: d == 0, a, b)

    def ne(self, a, b):
        if self._all_scalar((a, b)):
            return self._scalar("ne", a, b)
        c = self.eq(a, b)
        return TC(~c.holds, c.undecided)

    @staticmethod
    def _tc(c) -> TC:
        return c if isinstance(c, TC) else TC(np.bool_(c), np.bool_(False))

    def all_(self, *cs):
        if all(not isinstance(c, TC) for c in cs):
            return all(cs)
        cs = [self._tc(c) for c in cs]
        return TC(functools.reduce(np.logical_and, [c.holds for c in cs]),
                  functools.reduce(np.logical_or, [c.undecided for c in cs]))

    def any_(self, *cs):
        if all(not isinstance(c, TC) for c in cs):
            return any(cs)
        cs = [self._tc(c) for c in cs]
        return TC(functools.reduce(np.logical_or, [c.holds for c in cs]),
                  functools.reduce(np.logical_or, [c.undecided for c in cs]))

    def select(self, cond, then, otherwise):
        if not isinstance(cond, TC):
            return then if cond else otherwise
        a, b = self._t(then), self._t(otherwise)
        x = np.where(cond.holds, a.x, b.x)
        r = np.where(cond.undecided, np.inf, np.where(cond.holds, a.r, b.r))
        return T(x, r)


# ------------------------------------------------------------------------------------------- trajectories

CHUNK = 1 << 14  # elements per pass: the arrays of one pass stay in cache, and chunks reuse their memory


@dataclass
class FastSnapshot:
    """The exact state after one step, for every element at once.

    ``rounded[fmt][name]``: the correctly rounded values of output ``name`` (``"theta"`` or a state
    name) in format ``fmt``, as ``Snapshot.rounded`` gives them (a rounded zero's sign is not
    specified, as there).  ``value[name]``: the exact value as a float64 (phase 1: the midpoint of
    an enclosure, |exact − value| ≤ ``radius[name]``; phase 2: the nearest float64 of
    ``Element.value``, radius inf: use ``elements``).  ``exact[name]``: False where the IEEE
    special-value rules gave the value (``Element.exact``).  ``phase2``: the elements recomputed by
    ``reference.step``; ``elements[name]`` maps their flat index to that ``Element``.
    """

    t: int
    stepped: bool
    rounded: dict
    value: dict
    radius: dict
    exact: dict
    phase2: np.ndarray
    elements: dict = field(default_factory=dict)


def _scalar_state(spec, hyper, name):
    """The exact initial value of state ``name`` (the same for every element)."""
    return _initial_values(spec, tuple(sorted((k, v) for k, v in hyper.items())))[name]


@functools.lru_cache(maxsize=256)
def _initial_values(spec, hyper_items: tuple) -> dict:
    return {k: v[0] for k, v in initial_state(spec, dict(hyper_items), (1,)).items()}


_ARITHMETICS = {}  # kept across calls: a step's scalars are computed once for all the tensors of a group
_CACHE_LIMIT = 20_000


def _arithmetic(kind, fmt=None, scalars="float32"):
    """The shared arithmetic object of a kind (and format and scalar precision), renewed when its scalar cache
    grows large."""
    from .fast_bound import FastBound
    from .fast_dd import FastDD

    key = (kind, None if fmt is None else fmt.name, scalars)
    O = _ARITHMETICS.get(key)
    if O is None or len(O._cache) > _CACHE_LIMIT:
        O = _ARITHMETICS[key] = ({"interval": FastInterval, "dd": FastDD}[kind]() if fmt is None else
                                 FastBound(fmt, scalars))
        O._steps = {}
    return O


def _step_scalars(O, pb: "_Problem") -> list:
    """Per step, the scalar inputs (step counter and numeric hyperparameters), the same objects across calls."""
    numeric = [h.name for h in pb.spec.numeric]
    out = []
    for gr, h, t in zip(pb.grads, pb.in_force, pb.ts):
        if gr is None:
            out.append(None)
            continue
        key = (t, tuple((k, h[k]) for k in numeric))
        if key not in O._steps:
            O._steps[key] = {"t": O.step_counter(t), **{k: O.hyper(h[k]) for k in numeric}}
        out.append(O._steps[key])
    return out


def _initial_tensors(O, pb: "_Problem") -> dict:
    """The initial values of the states not given, as values of ``O``, computed once per spec and hyperparameters."""
    created = creation_hyper(pb.hyper, pb.in_force, pb.grads)
    key = ("initial", id(pb.spec), tuple(sorted(created.items())))  # id: a spec's own hash walks all its fields
    hit = O._steps.get(key)
    if hit is None or hit[0] is not pb.spec:  # the spec is kept with its values, so its id stays its own
        hit = O._steps[key] = (pb.spec, {name: O.initial(_scalar_state(pb.spec, created, name))
                                         for name in pb.program.outputs[1:]})
    return {k: v for k, v in hit[1].items() if k not in pb.state}


def _certify(t: T, fmt) -> tuple:
    """(rounded values as float64, certified mask) of a tensor value in ``fmt``."""
    lo = next_toward(t.x - t.r, up=False)
    hi = next_toward(t.x + t.r, up=True)
    rl = round_exact(lo, fmt, quiet=True)  # under _phase1's np.errstate
    ok = (rl == round_exact(hi, fmt, quiet=True)) & np.isfinite(t.r) & np.isfinite(t.x)
    exact = (t.r == 0) & np.isfinite(t.x)  # x is the exact value: its correct rounding, ties included
    if some(exact & ~ok):
        rl = np.where(exact, round_exact(np.asarray(t.x, dtype=np.float64), fmt), rl)
        ok = ok | exact
    return rl, ok


@dataclass
class _Problem:
    """A trajectory's inputs, flattened and checked (what ``reference.step.trajectory`` takes)."""

    spec: object
    hyper: dict
    program: object
    shape: tuple
    param: np.ndarray
    grads: list
    state: dict
    step: int
    lrs: object
    hypers: object
    in_force: list
    ts: list
    validate: bool

    @property
    def n(self):
        return self.param.size


_PROGRAMS = {}  # (id(spec), flags) → (spec, program): compile_rule's own cache hashes the spec, all its fields


def _program(spec, hyper, shape) -> object:
    """``compile_rule(spec, hyper, shape)``, looked up by the spec's identity (and the flags, tensor flags too)."""
    key = (id(spec), tuple(sorted(spec.rule_flags(hyper, shape).items())))
    hit = _PROGRAMS.get(key)
    if hit is None or hit[0] is not spec:  # the spec is kept with its program, so its id stays its own
        if len(_PROGRAMS) > 256:  # specs made on the fly (tests) are not kept forever
            _PROGRAMS.clear()
        hit = _PROGRAMS[key] = (spec, compile_rule(spec, hyper, shape))
    return hit[1]


def _problem(spec, hyper, param, grads, state, step, lrs, hypers, validate) -> _Problem:
    hyper = spec.complete(hyper)
    in_force = hyper_schedule(spec, hyper, len(grads), lrs=lrs, hypers=hypers, validate=validate)
    program = _program(spec, hyper, np.shape(param))
    param = np.asarray(param)
    shape = param.shape
    for s, gr in enumerate(grads):
        if gr is not None and np.shape(gr) != shape:
            raise ValueError(f"grad of step {s} has shape {np.shape(gr)}, the parameter {shape}")
    flat_state = {}
    for name, arr in (state or {}).items():
        if name == "step":
            continue
        if name not in program.outputs[1:]:
            raise KeyError(f"{spec.name} has no state variable {name!r}")
        flat_state[name] = np.broadcast_to(np.asarray(arr), shape).reshape(-1)
    ts, t = [], step
    for gr in grads:
        t += gr is not None
        ts.append(t)
    return _Problem(spec, hyper, program, shape, param.reshape(-1),
                    [None if gr is None else np.asarray(gr).reshape(-1) for gr in grads], flat_state, step,
                    lrs, hypers, in_force, ts, validate)


def _phase1(pb: _Problem, formats: tuple, bound_fmt=None, scalars="float32"):
    """Phase 1 over all elements, chunk by chunk.

    Returns (x, r, rounded, certified, e, bound_ok): per step s and output name the midpoints
    ``x[s][name]`` and radii, ``rounded[s][f][name]`` (float64 values of format f), the mask of
    elements certified at every step in every format; with ``bound_fmt``, the error bounds
    ``e[s][name]`` (upper bounds of ``reference.bound``'s), ``e[s]["limited", name]`` the mask of
    elements format-limited for the reasons of the scalars they were computed from (the dict keys of
    ``e[s]["why", name]``), and the mask of elements whose bound phase 1 settled (the rest need
    ``reference.bound``).
    """
    n, program = pb.n, pb.program
    names = program.outputs
    O = _arithmetic("interval") if bound_fmt is None else _arithmetic("bound", bound_fmt, scalars)
    scalars = _step_scalars(O, pb)
    init = _initial_tensors(O, pb)
    steps = len(pb.grads)
    x = [{k: np.empty(n) for k in names} for _ in range(steps)]
    r = [{k: np.empty(n) for k in names} for _ in range(steps)]
    rounded = [{f: {k: np.empty(n) for k in names} for f in formats} for _ in range(steps)]
    e = None
    if bound_fmt is not None:
        e = [{**{k: np.empty(n) for k in names}, **{("limited", k): np.zeros(n, dtype=bool) for k in names},
              **{("why", k): {} for k in names}} for _ in range(steps)]
    certified = np.ones(n, dtype=bool)
    bound_ok = np.ones(n, dtype=bool)
    with np.errstate(all="ignore"):  # inf and NaN are expected: they mark elements phase 1 does not certify
        _chunks(pb, O, formats, scalars, init, x, r, rounded, certified, e, bound_ok)
        todo = np.flatnonzero(~certified & _finite_inputs(pb)) if formats and not certified.all() else ()
        if len(todo):
            _dd_tier(pb, todo, formats, x, r, rounded, certified)
    return x, r, rounded, certified, e, bound_ok


def _finite_inputs(pb: _Problem) -> np.ndarray:
    """The elements whose parameter, given state and gradients are all finite."""
    finite = np.isfinite(pb.param)
    for arr in [*pb.state.values(), *(gr for gr in pb.grads if gr is not None)]:
        finite &= np.isfinite(arr)
    return finite


def _dd_tier(pb: _Problem, todo: np.ndarray, formats, x, r, rounded, certified):
    """The elements ``todo`` again, in double-double (``fast_dd``); those it certifies leave phase 2."""
    from .fast_dd import certify

    O = _arithmetic("dd")
    names = pb.program.outputs
    scalars = _step_scalars(O, pb)
    init = _initial_tensors(O, pb)
    for lo in range(0, todo.size, CHUNK):
        idx = todo[lo:lo + CHUNK]
        m = idx.size
        current = {"theta": O.tensor(pb.param[idx])}
        for name in names[1:]:
            current[name] = O.tensor(pb.state[name][idx]) if name in pb.state else init[name]
        ok = np.ones(m, dtype=bool)
        rows = []
        for s, gr in enumerate(pb.grads):
            if gr is not None:
                out = pb.program(O, {**current, "g": O.tensor(gr[idx]), **scalars[s]})
                current = {k: O.as_tensor(v, m) for k, v in out.items()}
            row = {}
            for k in names:
                v = O.shaped(current[k], m)  # a state still at its initial scalar (no gradient yet): shape ()
                for f in formats:
                    rl, good = certify(v, FORMATS[f])
                    row[f, k] = _full(rl, m)
                    ok &= good
                row["x", k], row["r", k] = _full(v.h, m), _full(_up(np.abs(v.l) + v.r), m)
            rows.append(row)
        done = idx[ok]
        for s, row in enumerate(rows):
            for k in names:
                x[s][k][done], r[s][k][done] = row["x", k][ok], row["r", k][ok]
                for f in formats:
                    rounded[s][f][k][done] = row[f, k][ok]
        certified[done] = True


def _full(a, n: int) -> np.ndarray:
    """``a`` as an array of ``n`` elements (broadcast when of shape ())."""
    return a if np.shape(a) == (n,) else np.broadcast_to(a, (n,))


def _chunks(pb, O, formats, scalars, init, x, r, rounded, certified, e, bound_ok):
    program, names = pb.program, pb.program.outputs
    n = pb.n
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        finite = np.isfinite(pb.param[lo:hi])  # Bound: an element with a non-finite input has no bound
        for arr in [*pb.state.values(), *(gr for gr in pb.grads if gr is not None)]:
            finite &= np.isfinite(arr[lo:hi])
        bound_ok[lo:hi] &= finite
        # Non-finite inputs take IEEE's rules (arith.Special) in the reference: phase 2, even where a decided
        # branch (Rprop's zeroed gradient after g = ±inf) would give phase 1 a finite enclosure.
        certified[lo:hi] &= finite
        current = {"theta": O.tensor(pb.param[lo:hi])}
        for name in names[1:]:
            current[name] = O.given(pb.state[name][lo:hi]) if name in pb.state else init[name]
        for s, gr in enumerate(pb.grads):
            if gr is not None:
                # A state the step computed from scalars alone (ASGD's η and μ) stays a scalar for the next
                # step, as in reference.bound, whose charges differ for scalars (a scalar meeting a tensor is
                # charged its conversion); it is made a tensor only to be recorded.
                current = program(O, {**current, "g": O.tensor(gr[lo:hi]), **scalars[s]})
            for k in names:
                current_k = O.shaped(current[k], hi - lo)
                if fast_kernels.KERNELS and len(formats) <= 1 and _record(current_k, e, s, k, lo, hi, x, r, rounded,
                                                                          formats, certified, bound_ok, finite):
                    continue
                t = O.value(current_k)
                x[s][k][lo:hi] = t.x
                r[s][k][lo:hi] = t.r
                for f in formats:
                    fmt = FORMATS[f]
                    if fmt.precision == 53:  # binary64 cannot certify binary64: the double-double tier
                        rounded[s][f][k][lo:hi] = t.x
                        certified[lo:hi] = False
                    else:
                        rl, ok = _certify(t, fmt)
                        rounded[s][f][k][lo:hi] = rl
                        certified[lo:hi] &= ok
                if e is not None:
                    e[s][k][lo:hi], settled, limited, why = O.error(current_k)
                    bound_ok[lo:hi] &= settled
                    limited = limited & finite  # Bound compares the classes of elements with non-finite inputs
                    e[s]["limited", k][lo:hi] = limited
                    if some(limited):
                        e[s]["why", k].update(dict.fromkeys(why))


@functools.lru_cache(maxsize=None)
def _max_finite(name: str) -> float:
    return float(FORMATS[name].max_finite)


def _record(v, e, s, k, lo, hi, x, r, rounded, formats, certified, bound_ok, finite) -> bool:
    """What ``_chunks`` does with output ``k`` of step ``s``, in one compiled loop (``fast_kernels.record``);
    False where the value is not of 1-d or 0-d arrays or scalars (the NumPy code then runs)."""
    bound = e is not None
    t = v.t if bound else v
    fields = (t.x, t.r, v.e, v.esc, v.lim) if bound else (t.x, t.r)
    if any(np.ndim(a) > 1 for a in fields):
        return False
    fmt = FORMATS[formats[0]] if formats else None
    none = np.empty(0)
    anylim = fast_kernels.record(
        hi - lo, t.x, t.r, v.e if bound else 0.0, v.esc if bound else False, v.lim if bound else False, finite,
        x[s][k][lo:hi], r[s][k][lo:hi], rounded[s][fmt.name][k][lo:hi] if fmt else none, certified[lo:hi],
        e[s][k][lo:hi] if bound else none, e[s]["limited", k][lo:hi] if bound else np.empty(0, dtype=bool),
        bound_ok[lo:hi], fmt.precision if fmt else 53, fmt.emin if fmt else 0, _max_finite(fmt.name) if fmt else 0.0,
        fmt is not None and fmt.name == "float32", fmt is not None, bound)
    if anylim:
        e[s]["why", k].update(dict.fromkeys(v.why))
    return True


def _phase2_reference(pb: _Problem, idx: np.ndarray, formats):
    return trajectory(pb.spec, pb.hyper, pb.param[idx], [None if gr is None else gr[idx] for gr in pb.grads],
                      state={k: v[idx] for k, v in pb.state.items()}, step=pb.step, lrs=pb.lrs, hypers=pb.hypers,
                      formats=formats, validate=pb.validate)


def _elements(snapshot, name):
    arr = snapshot.theta if name == "theta" else snapshot.state[name]
    return list(arr.reshape(-1))


def _snapshots(pb: _Problem, formats, x, r, rounded, certified, skip=None) -> list:
    """Per step, the ``FastSnapshot``; the uncertified elements in ``skip`` keep phase 1's enclosure."""
    escalated = np.flatnonzero(~certified)
    if skip is not None:
        escalated = np.setdiff1d(escalated, skip, assume_unique=True)
    exact_rows = _phase2_reference(pb, escalated, formats) if escalated.size else None
    snaps = []
    for s in range(len(pb.grads)):
        rnd, value, radius, exact, elements = {f: {} for f in formats}, {}, {}, {}, {}
        for name in pb.program.outputs:
            value[name], radius[name] = x[s][name], r[s][name]
            exact[name] = np.ones(pb.n, dtype=bool)
            if exact_rows is not None:
                els = _elements(exact_rows[s], name)
                value[name][escalated] = [float(el.value) for el in els]
                radius[name][escalated] = np.inf
                exact[name][escalated] = [el.exact for el in els]
                elements[name] = dict(zip(escalated.tolist(), els))
                for f in formats:
                    rounded[s][f][name][escalated] = [float(el.rounded[f]) for el in els]
            for f in formats:
                rnd[f][name] = rounded[s][f][name].astype(FORMATS[f].dtype).reshape(pb.shape)
            value[name], radius[name], exact[name] = (a.reshape(pb.shape) for a in
                                                      (value[name], radius[name], exact[name]))
        snaps.append(FastSnapshot(t=pb.ts[s], stepped=pb.grads[s] is not None, rounded=rnd, value=value,
                                  radius=radius, exact=exact, phase2=(~certified).reshape(pb.shape),
                                  elements=elements))
    return snaps


def fast_trajectory(spec: OptimizerSpec, hyper: dict, param, grads: Sequence, *, state: Optional[dict] = None,
                    step: int = 0, lrs: Optional[Sequence] = None, hypers: Optional[Sequence] = None,
                    formats: Sequence[str] = ("float64",), validate: bool = True) -> list:
    """``reference.step.trajectory``'s result in two phases: one ``FastSnapshot`` per gradient.

    The inputs mean what they mean there.  Certified elements come from phase 1, the rest from
    ``reference.step.trajectory`` run on those elements alone.
    """
    formats = tuple(get_format(f).name for f in formats)
    pb = _problem(spec, hyper, param, grads, state, step, lrs, hypers, validate)
    try:
        x, r, rounded, certified, _, _ = _phase1(pb, formats)
    except (arith.Undecided, arith.NotReal):  # a scalar comparison phase 1 cannot decide: all to phase 2
        x, r, rounded, certified = _all_phase2(pb, formats)
    return _snapshots(pb, formats, x, r, rounded, certified)


def _all_phase2(pb, formats):
    steps, names = len(pb.grads), pb.program.outputs
    x = [{k: np.zeros(pb.n) for k in names} for _ in range(steps)]
    r = [{k: np.zeros(pb.n) for k in names} for _ in range(steps)]
    rounded = [{f: {k: np.zeros(pb.n) for k in names} for f in formats} for _ in range(steps)]
    return x, r, rounded, np.zeros(pb.n, dtype=bool)


@dataclass
class FastBounds:
    """The error bounds after one step, for every element (``reference.bound.trajectory_bounds``'s).

    ``error[name]``: float64 upper bounds, element by element, of ``reference.bound``'s error bound
    of output ``name`` (inf where it has none).  ``phase2``: the elements whose bound
    ``reference.bound`` computed itself (a format limitation of the element, a non-finite input, a
    decision phase 1 could not take); ``elements[name]`` maps their flat index to its ``ElementBound``,
    with the reasons.  ``limited[name]``: the other elements that ``reference.bound`` certainly finds
    format-limited (a scalar they were computed from is: a bias correction 1 − β₂ᵗ that the format
    cannot tell from 0, a power that underflows; or a divisor or √ argument of theirs lies within
    its error of 0 for sure: a square that underflows), with an infinite ``error``; ``why[name]``
    reasons for them, joined (without an element's numbers).  All other elements are
    ``ElementBound(error, (), True)``.
    """

    error: dict
    phase2: np.ndarray
    elements: dict = field(default_factory=dict)
    limited: dict = field(default_factory=dict)
    why: dict = field(default_factory=dict)


def _bounds(pb: _Problem, fmt, e, bound_ok, skip=None, scalars="float32") -> list:
    """Per step, the ``FastBounds``; the unsettled elements in ``skip`` get an infinite bound, undecided."""
    from .bound import trajectory_bounds
    from .fast_bound import _upf

    escalated = np.flatnonzero(~bound_ok)
    if skip is not None:
        for s in range(len(pb.grads)):
            for name in pb.program.outputs:
                e[s][name][skip] = np.inf
        escalated = np.setdiff1d(escalated, skip, assume_unique=True)
    exact_rows = None
    if escalated.size:
        exact_rows = trajectory_bounds(pb.spec, pb.hyper, pb.param[escalated],
                                       [None if gr is None else gr[escalated] for gr in pb.grads], fmt,
                                       state={k: v[escalated] for k, v in pb.state.items()}, step=pb.step,
                                       lrs=pb.lrs, hypers=pb.hypers, validate=pb.validate, scalars=scalars)
    out = []
    for s in range(len(pb.grads)):
        error, elements, limited, why = {}, {}, {}, {}
        for name in pb.program.outputs:
            err = e[s][name]
            limited[name] = e[s].get(("limited", name), np.zeros(pb.n, dtype=bool)).copy().reshape(pb.shape)
            err[limited[name].reshape(-1)] = np.inf  # no bound applies to a limited value (Bound's may be finite)
            why[name] = "; ".join(e[s].get(("why", name), ()))
            if exact_rows is not None:
                els = list(exact_rows[s][name].reshape(-1))
                err[escalated] = [_upf(el.error) for el in els]
                limited[name].reshape(-1)[escalated] = False  # their reasons are in ``elements``
                elements[name] = dict(zip(escalated.tolist(), els))
            error[name] = err.reshape(pb.shape)
        out.append(FastBounds(error, (~bound_ok).reshape(pb.shape), elements, limited, why))
    return out


def fast_trajectory_bounds(spec: OptimizerSpec, hyper: dict, param, grads: Sequence, fmt, *,
                           state: Optional[dict] = None, step: int = 0, lrs: Optional[Sequence] = None,
                           hypers: Optional[Sequence] = None, validate: bool = True,
                           scalars: str = "float32") -> list:
    """``reference.bound.trajectory_bounds``'s bounds, or provably larger ones: one ``FastBounds`` per step."""
    return fast_reference_and_bounds(spec, hyper, param, grads, fmt, state=state, step=step, lrs=lrs,
                                     hypers=hypers, validate=validate, reference=False, scalars=scalars)[1]


def fast_reference_and_bounds(spec: OptimizerSpec, hyper: dict, param, grads: Sequence, fmt, *,
                              state: Optional[dict] = None, step: int = 0, lrs: Optional[Sequence] = None,
                              hypers: Optional[Sequence] = None, validate: bool = True, reference: bool = True,
                              phase2_limit: Optional[int] = None, scalars: str = "float32"):
    """(``fast_trajectory`` in ``fmt``, ``fast_trajectory_bounds`` in ``fmt``) from one phase-1 pass.

    What a check needs: the correctly rounded trajectory and the tolerance, for the same inputs.
    With ``reference=False`` the first item is None (phase 2 of the reference is skipped).
    ``phase2_limit``: run phase 2 (reference and bound) for at most this many elements, those of
    the lowest flat indices among the ones phase 1 leaves; the others stay undecided (``phase2``
    set, no exact element, an infinite bound), for a caller that compares only the first ones.
    ``scalars``: the format of the implementation's per-step scalars (``reference.bound.SCALAR_PRECISIONS``).
    """
    fmt = get_format(fmt)
    pb = _problem(spec, hyper, param, grads, state, step, lrs, hypers, validate)
    formats = (fmt.name,) if reference else ()
    try:
        x, r, rounded, certified, e, bound_ok = _phase1(pb, formats, bound_fmt=fmt, scalars=scalars)
    except (arith.Undecided, arith.NotReal):  # a scalar comparison phase 1 cannot decide: all to phase 2
        x, r, rounded, certified = _all_phase2(pb, formats)
        e = [{k: np.zeros(pb.n) for k in pb.program.outputs} for _ in pb.grads]
        bound_ok = np.zeros(pb.n, dtype=bool)
    skip = None
    if phase2_limit is not None:
        left = np.flatnonzero(~certified | ~bound_ok) if reference else np.flatnonzero(~bound_ok)
        if left.size > phase2_limit:
            skip = left[phase2_limit:]
            certified[skip] = False  # undecided on both sides
            bound_ok[skip] = False
    snaps = _snapshots(pb, formats, x, r, rounded, certified, skip) if reference else None
    return snaps, _bounds(pb, fmt, e, bound_ok, skip, scalars)


def fast_verdicts(got, snapshot: FastSnapshot, bounds: FastBounds, name: str, fmt) -> np.ndarray:
    """Per element of output ``name``: 1 within the bound, −1 outside it, 0 for the exact comparison.

    ``got`` holds an implementation's values (any binary format); the error |got − exact| lies within
    |got − value| ± radius, so an element is decided here when that whole range is on one side of
    its bound (``bounds.error``, at least ``reference.bound``'s).  0 marks what needs
    ``conformance.check``'s comparison element by element: phase-2 elements of either side
    (non-finite values, format limitations), non-finite ``got``, and errors within the enclosure's
    radius of the bound; and the elements of ``bounds.limited`` (format-limited: any value is
    accepted, ``conformance.check`` says so in bulk).
    """
    fmt = get_format(fmt)
    got = np.asarray(got).astype(np.float64)
    arrays = (got, snapshot.value[name], snapshot.radius[name], bounds.error[name], snapshot.phase2, bounds.phase2,
              snapshot.exact[name], bounds.limited.get(name, bounds.phase2))
    if fast_kernels.KERNELS and all(np.shape(a) == got.shape for a in arrays):
        flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
        return fast_kernels.verdicts(got.size, *flat, name in bounds.limited).reshape(got.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        dist = np.abs(got - snapshot.value[name])  # rounded: checked against the radius, widened below
        r = _up(snapshot.radius[name] + U * dist)
        bound = bounds.error[name]
        ok = dist + r <= bound
        fail = dist - r > bound
        plain = ~snapshot.phase2 & ~bounds.phase2 & np.isfinite(got) & snapshot.exact[name]
        if name in bounds.limited:
            plain &= ~bounds.limited[name]
    return np.where(plain & ok, 1, np.where(plain & fail, -1, 0)).astype(np.int8)


def _part(a: np.ndarray, lo: int, hi: int, shape: tuple) -> np.ndarray:
    return a.reshape(-1)[lo:hi].reshape(shape)


def _part_elements(elements: dict, lo: int, hi: int) -> dict:
    return {name: {k - lo: v for k, v in d.items() if lo <= k < hi} for name, d in elements.items()}


def fast_reference_and_bounds_many(spec: OptimizerSpec, hyper: dict, params: Sequence, grads: Sequence, fmt, *,
                                   states: Optional[Sequence] = None, steps: Optional[Sequence[int]] = None,
                                   lrs: Optional[Sequence] = None, phase2_limit: Optional[int] = None,
                                   scalars: str = "float32") -> list:
    """``fast_reference_and_bounds`` of several parameters sharing ``hyper`` and ``lrs`` (one group's):
    ``grads[j]`` the gradients of ``params[j]``, ``states[j]`` its given state, ``steps[j]`` its step counter
    before (0 when not given).  One result per parameter.

    Parameters whose gradients are missing at the same steps run as one array (the fixed cost of a call,
    per-step scalars and the Python dispatch of the program, is paid once); ``phase2_limit`` applies to
    each such concatenation, parameters in order."""
    states = states if states is not None else [None] * len(params)
    steps = steps if steps is not None else [0] * len(params)
    parts = {}
    for j, gs in enumerate(grads):
        key = (tuple(g is None for g in gs), tuple(sorted((states[j] or {}).keys())), steps[j])
        parts.setdefault(key, []).append(j)
    out = [None] * len(params)
    for (missing, names, step), members in parts.items():
        shapes = [np.shape(params[j]) for j in members]
        sizes = [int(np.prod(sh)) if sh else 1 for sh in shapes]
        bounds = np.cumsum([0, *sizes])
        flat = np.concatenate([np.asarray(params[j]).reshape(-1) for j in members])
        flat_grads = [None if miss else np.concatenate([np.asarray(grads[j][s]).reshape(-1) for j in members])
                      for s, miss in enumerate(missing)]
        flat_state = {k: np.concatenate([np.broadcast_to(np.asarray(states[j][k]), shapes[n]).reshape(-1)
                                         for n, j in enumerate(members)]) for k in names} or None
        snaps, bnds = fast_reference_and_bounds(spec, hyper, flat, flat_grads, fmt, state=flat_state, step=step,
                                                lrs=lrs, phase2_limit=phase2_limit, scalars=scalars)
        for n, j in enumerate(members):
            lo, hi, sh = int(bounds[n]), int(bounds[n + 1]), shapes[n]
            out[j] = ([FastSnapshot(t=sn.t, stepped=sn.stepped,
                                    rounded={f: {k: _part(v, lo, hi, sh) for k, v in d.items()}
                                             for f, d in sn.rounded.items()},
                                    value={k: _part(v, lo, hi, sh) for k, v in sn.value.items()},
                                    radius={k: _part(v, lo, hi, sh) for k, v in sn.radius.items()},
                                    exact={k: _part(v, lo, hi, sh) for k, v in sn.exact.items()},
                                    phase2=_part(sn.phase2, lo, hi, sh),
                                    elements=_part_elements(sn.elements, lo, hi)) for sn in snaps],
                      [FastBounds(error={k: _part(v, lo, hi, sh) for k, v in b.error.items()},
                                  phase2=_part(b.phase2, lo, hi, sh),
                                  elements=_part_elements(b.elements, lo, hi),
                                  limited={k: _part(v, lo, hi, sh) for k, v in b.limited.items()},
                                  why=dict(b.why)) for b in bnds])
    return out
