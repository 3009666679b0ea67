"""The tolerance model of ``reference.bound`` over whole NumPy arrays, never below it.

``FastBound`` runs a compiled program as ``reference.bound.Bound`` does, but on
every element at once: each tensor value carries the enclosure of its exact
value (``reference.fast.T``, phase 1 of the fast reference) and a float64
array ``e`` that is, element by element, at least the error bound
``reference.bound`` computes.  The rules are ``Bound``'s (see its module
docstring), evaluated with

* every magnitude |v| replaced by its upper bound |x| + r, every divisor or
  square-root argument by its lower bound (|x| − r)·(1 − 2⁻⁵⁰), and the unit
  roundoff u and the underflow term η of the format as they are (powers of
  two; η rounded up to 2⁻¹⁰⁷⁴ for binary64),
* each result's own rounding of the bound arithmetic covered by ``_up``
  (×(1 + 2⁻⁴⁸) + 2⁻¹⁰²²: every formula here is a sum of products of
  non-negative terms, a few dozen roundings at most),

so each ``e`` is an upper bound of ``Bound``'s value by monotonicity.  The
decisions ``Bound`` takes on exact values (an exact zero adds or multiplies
without rounding, a factor ±1 is dropped, an exact argument of √) are taken
here on the same exact values: an error of 0 occurs only for values obtained
exactly from the inputs, whose float64 value is then exact too.

Scalars (values of hyperparameters and the step counter) are computed by
``Bound`` itself, once per step, beside their interval (``arith.Interval``).

An element whose computation meets anything ``Bound`` would report as a
limitation of the format (overflow, a divisor or √ argument within its error of
0, a non-finite input), or a decision phase 1 cannot take on its enclosure
(an overflow threshold, a comparison near its threshold), is marked *escalated*:
``reference.bound.trajectory_bounds`` computes its bound and reasons instead.
As in ``Bound``, the branch a ``select`` does not take marks nothing.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from mpmath import libmp

from .bound import Bound, Cond
from . import fast_kernels as K
from .fast import TINY, FastInterval, NoTensorRule, T, _up
from .fast_round import has_zero, round_exact, some
from .formats import Format


def _upf(x) -> float:
    """An mpf ≥ 0 as a float64 rounded up (inf stays inf).

    mpmath's directed conversion does not direct subnormal results: those become the smallest normal.
    """
    out = libmp.to_float(x._mpf_, rnd=libmp.round_ceiling)
    return out if out >= TINY or x._mpf_ == libmp.fzero else TINY


def _down(z):
    """A lower bound of a non-negative quantity computed with a few roundings."""
    return z * (1 - 2.0 ** -48)


@dataclass
class SB:
    """A scalar: its interval (``arith.Interval``) and its ``bound.B``."""

    iv: object
    b: object


@dataclass
class SC:
    """A scalar condition: the interval arithmetic's truth and ``Bound``'s ``Cond``."""

    holds: bool
    cond: Cond


@dataclass
class TB:
    """A tensor value: enclosure ``t``, error bound ``e`` (≥ ``Bound``'s), escalated elements ``esc``.

    ``quot`` and ``scale`` mirror ``bound.B``'s fields per element (NaN where ``Bound`` has None):
    a lower bound of |d| for a tensor quotient x/d, an upper bound of |s| for a scalar times a tensor.
    """

    t: T
    e: np.ndarray
    esc: np.ndarray
    lim: object  # bool mask: elements ``Bound`` certainly marks format-limited, for (some of) the reasons ``why``
    why: tuple
    quot: Optional[np.ndarray] = None
    scale: Optional[np.ndarray] = None
    elo: object = 0.0  # a lower bound of ``Bound``'s error (0 where none is derived): decides limitations for sure


@dataclass
class TBC:
    """A tensor condition: its truth, whether ``Bound`` may find it ambiguous, escalated elements, and
    (``lim``, ``why``) as in ``TB``."""

    holds: np.ndarray
    amb: np.ndarray
    esc: np.ndarray
    lim: object
    why: tuple


def _lim(*xs):
    """(mask, reasons) of a result computed from ``xs``: ``Bound.run`` unions its arguments' reasons."""
    mask = xs[0].lim
    for x in xs[1:]:
        mask = mask | x.lim
    if not any(x.why for x in xs):  # the common case: no reasons to join
        return mask, ()
    return mask, tuple(dict.fromkeys(r for x in xs for r in x.why))


def _length(xs):
    """The number of elements of the operands, when a kernel of ``reference.fast_kernels`` takes them (1-d arrays
    and values of shape ()): 0 where all are of shape (), to be run on 1 element and given back of shape ();
    None for the NumPy code (kernels off, more dimensions, no element)."""
    if not K.KERNELS:
        return None
    n = 0
    for x in xs:
        d = np.ndim(x.t.x)
        if d == 1:
            n = x.t.x.shape[0]
            if not n:
                return None
        elif d:
            return None
    return n


def _shaped(n, *arrays):
    """A kernel's outputs: as they are, or NumPy scalars (as NumPy's own operations on values of shape () give) where
    it ran on the single element of such values."""
    return arrays if n else tuple(a[0] if isinstance(a, np.ndarray) else a for a in arrays)


class FastBound(NoTensorRule):
    """``Bound``'s arithmetic over float64 arrays, for one format."""

    def __init__(self, fmt: Format, scalars: str = "float32"):
        self.fi = FastInterval()
        self.b = Bound(fmt, scalars=scalars)
        self.fmt = fmt
        self.u = float(fmt.unit_roundoff)
        self.eta = max(float(fmt.min_subnormal / 2), 2.0 ** -1074)
        self.c = float(self.b.basic)
        self.max_finite = float(fmt.max_finite)
        self._cache = {}

    # -- inputs and outputs ---------------------------------------------------------
    def hyper(self, x) -> SB:
        return SB(self.fi.hyper(x), self.b.hyper(x))

    def step_counter(self, t) -> SB:
        return SB(self.fi.step_counter(t), self.b.step_counter(t))

    def const(self, p, q) -> SB:
        key = ("const", p, q)
        if key not in self._cache:
            self._cache[key] = SB(self.fi.const(p, q), self.b.const(p, q))
        return self._cache[key]

    def tensor(self, x) -> TB:
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        return TB(T(x, np.where(finite, 0.0, np.inf)), np.zeros(np.shape(x)), ~finite, np.bool_(False), ())

    def given(self, x) -> TB:
        """Given state (``Bound.initial``'s rule, per element): exact where a value of the format, else charged
        one rounding to it, u·|x| + η (NAdam's float32 mu_product, ASGD's η and μ, for a half-format parameter)."""
        v = self.tensor(x)
        x = v.t.x
        off = np.isfinite(x) & (round_exact(x, self.fmt) != x)
        if some(off):
            v.e = np.where(off, np.nextafter(self.u * np.abs(x) + self.eta, np.inf), 0.0)
        return v

    def initial(self, q) -> TB:
        b = self.b.initial(q)
        return TB(self.fi.initial(q), np.float64(_upf(b.e)), np.bool_(False), np.bool_(bool(b.why)), tuple(b.why))

    def as_tensor(self, v, n: int) -> TB:
        v = self._view(v)
        shape = (n,)
        if np.shape(v.t.x) == shape and np.shape(v.e) == shape and np.shape(v.esc) == shape:
            return v
        return TB(T(np.broadcast_to(v.t.x, shape), np.broadcast_to(v.t.r, shape)), np.broadcast_to(v.e, shape),
                  np.broadcast_to(v.esc, shape), np.broadcast_to(v.lim, shape), v.why)

    def shaped(self, v, n: int) -> TB:
        """``as_tensor(v, n)``, or ``v`` of shape () where every element has that one value (``FastInterval.shaped``)."""
        v = self._view(v)
        if all(np.ndim(a) == 0 for a in (v.t.x, v.t.r, v.e, v.esc, v.lim)):
            return v
        return self.as_tensor(v, n)

    @staticmethod
    def value(v: TB) -> T:
        return v.t

    @staticmethod
    def error(v: TB):
        """(error bounds, mask of the elements they settle: the rest need ``reference.bound``, mask of the
        settled elements that are format-limited, their reasons).

        A limited element is settled whatever else phase 1 could not decide about it: with finite inputs
        (the caller's to check) ``Bound`` gives it a reason (``why``, or one like them), and a check
        accepts any value of a limited element."""
        limited = v.lim if np.shape(v.lim) == np.shape(v.e) else np.broadcast_to(v.lim, np.shape(v.e))
        settled = (~v.esc & np.isfinite(v.e)) | limited
        return np.where(np.isnan(v.e), np.inf, v.e), settled, limited, v.why

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def _is_scalar(v) -> bool:
        return isinstance(v, SB)

    def _scalar(self, name, *xs):
        """An operation on scalars: ``Interval`` and ``Bound`` each once per step."""
        key = (name, *map(id, xs))
        hit = self._cache.get(key)
        if hit is None:
            iv = getattr(self.fi, name)(*(x.iv for x in xs))
            b = getattr(self.b, name)(*(x.b for x in xs))
            out = SC(iv, b) if isinstance(b, Cond) else SB(iv, b)
            hit = self._cache[key] = (out, xs)
        return hit[0]

    def _view(self, v) -> TB:
        """A value as a tensor, unconverted (a scalar keeps its own error: comparisons, ``select``)."""
        if isinstance(v, TB):
            return v
        key = ("view", id(v))
        if key not in self._cache:
            self._cache[key] = (TB(self.fi._t(v.iv), np.float64(_upf(v.b.e)), np.bool_(False),
                                   np.bool_(bool(v.b.why)), tuple(v.b.why)), v)
        return self._cache[key][0]

    def _operands(self, xs) -> list:
        """``Bound._operands``: scalars meeting tensors are charged their conversion to the format."""
        if all(isinstance(x, TB) for x in xs):
            return list(xs)
        out = []
        for x in xs:
            if isinstance(x, TB):
                out.append(x)
                continue
            key = ("operand", id(x))
            if key not in self._cache:
                b = self.b._operands([x.b, self._tensor_b])[0]  # Bound's own conversion of the scalar
                why = tuple(dict.fromkeys((*x.b.why, *b.why)))
                self._cache[key] = (TB(self.fi._t(x.iv), np.float64(_upf(b.e)), np.bool_(False), np.bool_(bool(why)),
                                       why), x)
            out.append(self._cache[key][0])
        return out

    @property
    def _tensor_b(self):
        from .bound import B
        return B(self.b.ctx.zero, self.b.ctx.zero, False)

    @staticmethod
    def _vabs(t: T):
        """An upper bound of |exact value|."""
        return t.ax + t.r

    @staticmethod
    def _low(t: T):
        """|x| − r: a lower bound of |exact value| where it is ≥ 0 (``_rounding_lo``, ``_overflow``)."""
        return t.ax - t.r

    def _rounding_lo(self, t: T, low=None):
        """A lower bound of ``Bound._round``'s own term c·(u·(|v| + e) + η) for a result enclosed by ``t``
        (``low``: ``_low(t)``, when the caller has it)."""
        vlo = np.maximum(self._low(t) if low is None else low, 0.0)
        return _down(self.c * (self.u * vlo + self.eta))

    def _certainly_limited(self, arg: TB, mag_hi, reason: str):
        """(mask, reasons): elements whose ``arg`` (a divisor, a √ argument) is, for sure, within ``Bound``'s
        error of zero: its magnitude's upper bound ``mag_hi`` at most the error's lower bound ``arg.elo``."""
        mask = (np.asarray(arg.elo) > 0) & (mag_hi <= arg.elo)
        return mask, ((reason,) if some(mask) else ())

    def _divisor_near0(self) -> str:
        return f"underflow: a divisor is within its error of zero in {self.fmt.name} (decided in bulk)"

    _SQRT_NEAR0 = "underflow/cancellation: a square-root argument is within its error of zero (decided in bulk)"

    def _overflow(self, t: T, lim, why, low=None):
        """``(lim, why)`` with the elements whose result ``t`` certainly exceeds the largest finite value added
        (``Bound._round`` finds |v| + e above it: limited); ``low``: ``_low(t)``, when the caller has it."""
        over = (self._low(t) if low is None else low) > self.max_finite
        return self._overflow_k(over, some(over), lim, why)

    def _round(self, vabs, e, esc):
        """``Bound._round`` for tensors: (bound with the result's own rounding, escalated elements)."""
        total = vabs + e
        over = total > self.max_finite  # Bound may find an overflow here: let it say so
        # NaN (from 0·inf) stands for inf: unbounded, as in Bound (``error`` settles neither)
        return _up(e + self.c * (self.u * total + self.eta)), esc | over

    @staticmethod
    def _exact_zero_scalar(v) -> bool:
        return isinstance(v, SB) and v.b.v == 0 and v.b.e == 0

    @staticmethod
    def _zero(v: TB):
        """Exactly 0 in every implementation (``Bound._is_exact_zero``): the same decision, on exact values."""
        return (v.t.x == 0) & (v.e == 0)

    @staticmethod
    def _any(*masks):
        out = masks[0]
        for m in masks[1:]:
            out = out | m
        return out

    @staticmethod
    def _sum(xs):
        """x₀ + x₁ + … in order (``sum`` without its leading 0 + x₀, an array operation of its own)."""
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    @staticmethod
    def _has_zero(xs) -> bool:
        """Whether some operand has an element 0 (only those can be exact zeros, ``_zero``)."""
        return any(has_zero(x.t.x) for x in xs)

    # -- arithmetic -------------------------------------------------------------------
    def add(self, *xs):
        if all(map(self._is_scalar, xs)):
            return self._scalar("add", *xs)
        xs = self._operands(xs)
        n = _length(xs) if len(xs) == 2 else None
        if n is not None:
            return self._add2(n, *xs)
        value = self.fi.add(*(x.t for x in xs))
        # Without an element 0 in any term, every element has len(xs) terms that are not exact zeros (and rounds)
        nonzero = self._sum([(~self._zero(x)).astype(np.int8) for x in xs]) if self._has_zero(xs) else len(xs)
        esum = self._sum([x.e for x in xs])  # exact where at most one term is not an exact zero (the others add 0)
        esc = self._any(*(x.esc for x in xs))
        e, esc_r = self._round(self._vabs(value), esum, esc)
        if len(xs) > 2:  # n terms take n − 1 roundings, each at most c·(u·partial + η)
            partial = _up(self._sum([self._vabs(x.t) for x in xs]) + esum)
            e = _up(e + np.maximum(nonzero - 2, 0) * self.c * (self.u * partial + self.eta))
        elo = _down(self._sum([np.asarray(x.elo, dtype=np.float64) for x in xs]))  # Bound adds the terms' errors
        low = self._low(value)
        lim, why = self._overflow(value, *_lim(*xs), low=low)
        elo_r = _down(elo + self._rounding_lo(value, low))
        rounds = nonzero >= 2
        if isinstance(nonzero, int):  # every element the same way
            return TB(value, e, esc_r, lim, why, elo=elo_r) if rounds else TB(value, esum, esc, lim, why, elo=elo)
        return TB(value, np.where(rounds, e, esum), np.where(rounds, esc_r, esc), lim, why,
                  elo=np.where(rounds, elo_r, elo))

    def sub(self, a, b):
        if self._is_scalar(a) and self._is_scalar(b):
            return self._scalar("sub", a, b)
        return self.add(a, self.neg(b))

    def neg(self, a):
        if self._is_scalar(a):
            return self._scalar("neg", a)
        return TB(T(-a.t.x, a.t.r), a.e, a.esc, a.lim, a.why, elo=a.elo)

    def abs(self, a):
        if self._is_scalar(a):
            return self._scalar("abs", a)
        return TB(T(a.t.ax, a.t.r), a.e, a.esc, a.lim, a.why, elo=a.elo)

    def mul(self, *xs):
        if all(map(self._is_scalar, xs)):
            return self._scalar("mul", *xs)
        scaling = len(xs) == 2 and self._is_scalar(xs[0]) != self._is_scalar(xs[1])
        if scaling:
            s_, t_ = (xs[0], xs[1]) if self._is_scalar(xs[0]) else (xs[1], xs[0])
        quot = t_.quot if scaling else None  # s·(x/d) computed as (s·x)/d: s·x's underflow, over |d|
        ops = self._operands(xs)
        n = _length(ops) if len(ops) == 2 else None
        if n is not None:
            return self._mul2(n, ops, quot, _upf(abs(s_.b.v) + s_.b.e) if scaling else None)
        value = self.fi.mul(*(x.t for x in ops))
        esc = self._any(*(x.esc for x in ops))
        zero = None  # no exact zero among the factors (none has an element 0)
        if self._has_zero(ops):
            finite = functools.reduce(np.logical_and, [np.isfinite(x.e) for x in ops])
            zero = self._any(*(self._zero(x) for x in ops)) & finite
        ones = [x.t.ax == 1 for x in ops]
        units = None  # no exact factor ±1, which Bound.mul skips (none has an element ±1)
        if len(ops) >= 3 or any(some(o) for o in ones):
            units = [(x.e == 0) & o for x, o in zip(ops, ones)]
        # The product chain of Bound.mul.  Where no factor is ±1 (the common case) every factor enters it, without
        # the per-element choice of which to skip.
        chain = units is None or not any(some(u) for u in units)
        if chain:
            acc_v, acc_e = self._vabs(ops[0].t), ops[0].e
            for x in ops[1:]:
                acc_v, acc_e, esc = self._chain_step(acc_v, acc_e, self._vabs(x.t), x.e, esc, quot)
            has = products = np.True_
        else:
            has = ~units[0]
            acc_v = np.where(has, self._vabs(ops[0].t), 0.0)
            acc_e = np.where(has, ops[0].e, 0.0)
            products = np.zeros(np.shape(value.x), dtype=bool)
            for x, unit in zip(ops[1:], units[1:]):
                vabs = self._vabs(x.t)
                pv, pe, esc_p = self._chain_step(acc_v, acc_e, vabs, x.e, esc, quot)
                take = ~unit & ~has
                prod = ~unit & has
                acc_v = np.where(take, vabs, np.where(prod, pv, acc_v))
                acc_e = np.where(take, x.e, np.where(prod, pe, acc_e))
                esc = np.where(prod, esc_p, esc)
                products |= prod
                has |= ~unit
        plain = chain and zero is None  # every element a product of all its factors, none an exact zero
        if zero is None:
            zero = np.False_
        e = acc_e if plain else np.where(zero | ~has, 0.0, acc_e)
        if len(ops) >= 3:  # Bound._association: another order's intermediate underflows, amplified
            k = sum((~u).astype(np.int64) for u in units)
            big = np.sort(np.stack([np.broadcast_to(np.where(u, 1.0, np.maximum(1.0, _up(self._vabs(x.t) + x.e))),
                                                    np.shape(value.x)) for x, u in zip(ops, units)]), axis=0)
            n = len(ops)
            rank = np.arange(n).reshape((n,) + (1,) * np.ndim(value.x))
            amp = np.prod(np.where(rank >= n - (k - 2), big, 1.0), axis=0)
            extra = _up(np.maximum(k - 2, 0) * self.c * self.eta * amp)
            e = np.where(zero | ~has, e, _up(e + np.where(k >= 3, extra, 0.0)))
        low = self._low(value)
        elo = self._rounding_lo(value, low)
        out = TB(value, e, esc, *self._overflow(value, *_lim(*ops), low=low),
                 elo=elo if plain else np.where(zero | ~products, 0.0, elo))
        if scaling:
            scale = _upf(abs(s_.b.v) + s_.b.e)
            out.scale = np.where(np.isfinite(e) if plain else products & ~zero & np.isfinite(e), scale, np.nan)
        return out

    def _chain_step(self, acc_v, acc_e, vabs, e, esc, quot):
        """One factor (|x| ≤ ``vabs``, error ``e``) of ``Bound.mul``'s chain: (|product| bound, its error with its
        rounding, escalated)."""
        pv = _up(acc_v * vabs)
        pe = _up(acc_v * e + vabs * acc_e + acc_e * e)
        if quot is not None:
            pe = np.where(np.isnan(quot), pe, _up(pe + self.c * self.eta / quot))
        pe, esc = self._round(pv, pe, esc)
        return pv, pe, esc

    def lerp(self, a, b, w):
        if all(map(self._is_scalar, (a, b, w))):
            return self._scalar("lerp", a, b, w)
        n = _length((a, b)) if isinstance(a, TB) and isinstance(b, TB) else None
        if n is not None:
            return self._lerp_k(n, a, b, w)
        value = self.fi.lerp(*(x.t if isinstance(x, TB) else x.iv for x in (a, b, w)))
        wv = self._view(w)
        w_zero = self._zero(wv)
        bv = self._view(b)
        a_, b_, w_ = self._operands((a, b, w))
        esc = a_.esc | b_.esc | w_.esc
        c, u = self.c, self.u
        va, vb = self._vabs(a_.t), self._vabs(b_.t)
        S = _up(va + vb + a_.e + b_.e)
        diff = _up(np.abs(b_.t.x - a_.t.x) + a_.t.r + b_.t.r)
        over = diff + a_.e + b_.e > self.max_finite
        aw = w_.t.ax + w_.t.r
        a1w = _up(np.abs(1 - w_.t.x) + w_.t.r)
        W = _up(np.maximum(aw, a1w) + w_.e)
        e = _up(a1w * a_.e + aw * b_.e + w_.e * S + 2 * c * (u * W * S * (1 + c * u) + self.eta) + c * u * a1w * S)
        finite = np.isfinite(a_.e) & np.isfinite(b_.e) & np.isfinite(w_.e)
        e = np.where(finite, e, np.inf)
        e, esc_r = self._round(self._vabs(value), e, esc | (over & finite))
        # a + 0·(b − a) = a exactly (a's error, no rounding), when b's error is finite
        keep = w_zero & np.isfinite(bv.e)
        if not some(keep):
            return TB(value, e, esc_r, *_lim(a_, b_, w_))
        av = self._view(a)
        return TB(T(np.where(keep, av.t.x, value.x), np.where(keep, av.t.r, value.r)),
                  np.where(keep, av.e, e), np.where(keep, av.esc, esc_r), *_lim(a_, b_, w_))

    def div(self, a, b):
        if self._is_scalar(a) and self._is_scalar(b):
            return self._scalar("div", a, b)
        tensor_quotient = isinstance(a, TB) and isinstance(b, TB)
        a, b = self._operands((a, b))
        n = _length((a, b))
        if n is not None:
            return self._div_k(n, a, b, tensor_quotient)
        value = self.fi.div(a.t, b.t)
        esc = a.esc | b.esc
        d = _down(b.t.ax - b.t.r - b.e)  # a lower bound of |b| − e_b
        esc = esc | ~(d > 0)  # Bound: a division by 0, or by a value within its error of 0 (unbounded)
        lim, why = _lim(a, b)
        near0, reason = self._certainly_limited(b, self._vabs(b.t), self._divisor_near0())
        a_zero = self._zero(a) if self._has_zero((a,)) else None  # None: no exact zero
        vabs = self._vabs(value)
        e = _up((a.e + vabs * b.e) / d)
        if tensor_quotient and a.scale is not None:  # (s·x)/d computed as s·(x/d): x/d's underflow, times |s|
            e = np.where(np.isnan(a.scale), e, _up(e + self.c * self.eta * a.scale))
        e, esc = self._round(vabs, e, esc)
        low = self._low(value)
        elo = self._rounding_lo(value, low)
        lim, why = self._overflow(value, lim | near0, tuple(dict.fromkeys((*why, *reason))), low=low)
        if a_zero is None:
            out = TB(value, e, esc, lim, why, elo=elo)
        else:
            out = TB(value, np.where(a_zero, 0.0, e), esc, lim, why, elo=np.where(a_zero, 0.0, elo))
        if tensor_quotient:
            out.quot = d if a_zero is None else np.where(a_zero, np.nan, d)
        return out

    def sqrt(self, a):
        if self._is_scalar(a):
            return self._scalar("sqrt", a)
        n = _length((a,))
        if n is not None:
            return self._sqrt_k(n, a)
        value = self.fi.sqrt(a.t)
        zero = self._zero(a) if self._has_zero((a,)) else None  # None: no exact zero
        lo = _down(a.t.x - a.t.r)  # a lower bound of the argument
        exact_arg = a.e == 0
        # Bound: √ of a negative value, or of one within its error of 0, is unbounded: escalate those
        esc = a.esc | (~(lo > a.e) if zero is None else ~zero & ~(lo > a.e))
        e = _up(a.e / (np.sqrt(np.maximum(lo, 0)) + np.sqrt(np.maximum(_down(lo - a.e), 0))))
        e = np.where(exact_arg, 0.0, e)
        e, esc = self._round(_up(np.sqrt(a.t.x + a.t.r)), e, esc)
        near0, reason = self._certainly_limited(a, a.t.x + a.t.r, self._SQRT_NEAR0)
        why = tuple(dict.fromkeys((*a.why, *reason)))
        if zero is None:
            return TB(value, e, esc, a.lim | near0, why, elo=self._rounding_lo(value))
        return TB(value, np.where(zero, 0.0, e), esc, a.lim | near0, why, elo=np.where(zero, 0.0, self._rounding_lo(value)))

    # -- the same, one compiled loop each (reference.fast_kernels) ----------------------------------------------
    def _add2(self, n, a, b):
        s, r, ax, e, esc, elo, over, anyover = _shaped(n, *K.add2(
            max(n, 1), a.t.x, a.t.r, a.e, a.esc, a.elo, b.t.x, b.t.r, b.e, b.esc, b.elo, self.c, self.u, self.eta,
            self.max_finite))
        lim, why = self._overflow_k(over, anyover, *_lim(a, b))
        return TB(T.with_abs(s, r, ax), e, esc, lim, why, elo=elo)

    def _mul2(self, n, ops, quot, scale):
        a, b = ops
        p, r, ax, e, esc, elo, over, sc, anyover = _shaped(n, *K.mul2(
            max(n, 1), a.t.x, a.t.r, a.e, a.esc, b.t.x, b.t.r, b.e, b.esc, np.nan if quot is None else quot,
            quot is not None, np.nan if scale is None else scale, self.c, self.u, self.eta, self.max_finite))
        out = TB(T.with_abs(p, r, ax), e, esc, *self._overflow_k(over, anyover, *_lim(a, b)), elo=elo)
        if scale is not None:
            out.scale = sc
        return out

    def _div_k(self, n, a, b, tensor_quotient):
        has_scale = tensor_quotient and a.scale is not None
        q, r, aq, e, esc, elo, over, near0, quot, anyover, anynear = _shaped(n, *K.div(
            max(n, 1), a.t.x, a.t.r, a.e, a.esc, b.t.x, b.t.r, b.e, b.esc, b.elo, a.scale if has_scale else np.nan,
            has_scale, self.c, self.u, self.eta, self.max_finite))
        lim, why = _lim(a, b)
        reason = (self._divisor_near0(),) if anynear else ()
        out = TB(T.with_abs(q, r, aq), e, esc,
                 *self._overflow_k(over, anyover, lim | near0, tuple(dict.fromkeys((*why, *reason)))), elo=elo)
        if tensor_quotient:
            out.quot = quot
        return out

    def _sqrt_k(self, n, a):
        s, r, e, esc, elo, near0, anynear = _shaped(n, *K.sqrt(
            max(n, 1), a.t.x, a.t.r, a.e, a.esc, a.elo, self.c, self.u, self.eta, self.max_finite))
        reason = (self._SQRT_NEAR0,) if anynear else ()
        return TB(T(s, r), e, esc, a.lim | near0, tuple(dict.fromkeys((*a.why, *reason))), elo=elo)

    def _lerp_k(self, n, a, b, w):
        wv = self._view(w)
        (w_,) = self._operands((w,))
        s, r, ax, e, esc, _ = _shaped(n, *K.lerp(
            max(n, 1), a.t.x, a.t.r, a.e, a.esc, b.t.x, b.t.r, b.e, b.esc, w_.t.x, w_.t.r, w_.e, w_.esc, wv.t.x, wv.e,
            self.c, self.u, self.eta, self.max_finite))
        return TB(T.with_abs(s, r, ax), e, esc, *_lim(a, b, w_))

    def _overflow_k(self, over, anyover, lim, why):
        """``(lim, why)`` with ``over``, the mask of results that certainly exceed the largest finite value, added
        (``anyover``: whether it has any; a kernel counts them as it goes)."""
        if not anyover:
            return lim, why
        return lim | over, tuple(dict.fromkeys((*why, f"overflow: a value exceeds the largest {self.fmt.name} "
                                                      f"(decided in bulk)")))

    def _extremum(self, name, xs):
        """max or min: exact, so ``Bound``'s error is the largest of the operands' (and at least the largest
        of their lower bounds)."""
        if all(map(self._is_scalar, xs)):
            return self._scalar(name, *xs)
        xs = self._operands(xs)
        return TB(getattr(self.fi, name)(*(x.t for x in xs)), functools.reduce(np.maximum, [x.e for x in xs]),
                  self._any(*(x.esc for x in xs)), *_lim(*xs), elo=functools.reduce(np.maximum, [x.elo for x in xs]))

    def max(self, *xs):
        return self._extremum("max", xs)

    def min(self, *xs):
        return self._extremum("min", xs)

    def _no_rule(self, name, *xs):
        """An operation on tensors with no vectorised rule: ``reference.bound`` for every element."""
        if all(map(self._is_scalar, xs)):
            return self._scalar(name, *xs)
        value = getattr(self.fi, name)(*(x.t if isinstance(x, TB) else x.iv for x in xs))
        shape = np.shape(value.x)
        return TB(value, np.full(shape, np.inf), np.ones(shape, dtype=bool), np.bool_(False), ())

    # -- comparisons and branches ---------------------------------------------------------
    def _cmp(self, name, a, b, equality=False):
        if self._is_scalar(a) and self._is_scalar(b):
            return self._scalar(name, a, b)
        a, b = self._view(a), self._view(b)
        tc = getattr(self.fi, name)(a.t, b.t)
        d = a.t.x - b.t.x
        gap = _down(np.abs(d) - _up(a.t.r + b.t.r + 2.0 ** -53 * np.abs(d)))  # a lower bound of |a − b|
        margin = _up(a.e + b.e)
        # Bound's ambiguity, or possibly so; none where both errors are 0 (Bound's margin is then 0, and _up's
        # 2⁻¹⁰²² must not make a tie of exact values, Rprop's g·g_prev = 0 at its first step, ambiguous)
        amb = ((a.e > 0) | (b.e > 0)) & ~(gap > margin)
        if equality:
            amb &= ~((a.e == 0) & (b.e == 0))
        return TBC(tc.holds, amb, a.esc | b.esc | tc.undecided, *_lim(a, b))

    def gt(self, a, b):
        return self._cmp("gt", a, b)

    def lt(self, a, b):
        return self._cmp("lt", a, b)

    def ge(self, a, b):
        return self._cmp("ge", a, b)

    def le(self, a, b):
        return self._cmp("le", a, b)

    def eq(self, a, b):
        return self._cmp("eq", a, b, equality=True)

    def ne(self, a, b):
        c = self._cmp("ne", a, b, equality=True)
        return c

    def _tbc(self, c) -> TBC:
        if isinstance(c, TBC):
            return c
        return TBC(np.bool_(c.cond.holds), np.bool_(c.cond.ambiguous), np.bool_(c.holds != c.cond.holds),
                   np.bool_(bool(c.cond.why)), tuple(c.cond.why))

    def _connect(self, cs, scalar_op, tensor_op, bound_op):
        """A conjunction or disjunction: of scalar conditions by ``Bound``, of tensor ones element-wise."""
        if all(isinstance(c, SC) for c in cs):
            return SC(scalar_op(c.holds for c in cs), bound_op(*(c.cond for c in cs)))
        cs = [self._tbc(c) for c in cs]
        return TBC(functools.reduce(tensor_op, [c.holds for c in cs]), self._any(*(c.amb for c in cs)),
                   self._any(*(c.esc for c in cs)), *_lim(*cs))

    def all_(self, *cs):
        return self._connect(cs, all, np.logical_and, self.b.all_)

    def any_(self, *cs):
        return self._connect(cs, any, np.logical_or, self.b.any_)

    def select(self, cond, then, otherwise):
        if isinstance(cond, SC) and self._is_scalar(then) and self._is_scalar(otherwise):
            iv = then.iv if cond.holds else otherwise.iv
            return SB(iv, self.b.select(cond.cond, then.b, otherwise.b))
        c = self._tbc(cond)
        if isinstance(cond, SC) and not cond.cond.ambiguous and cond.holds == cond.cond.holds:
            taken = then if cond.holds else otherwise  # Bound keeps the taken value whole (its quot and scale)
            if not cond.cond.why:
                return taken
            v = self._view(taken)
            return replace(v, lim=v.lim | True, why=tuple(dict.fromkeys((*cond.cond.why, *v.why))))
        a, b = self._view(then), self._view(otherwise)
        # A scalar branch under a tensor condition would stay a scalar in Bound, per element: escalate it, unless
        # it is an exact 0 (Rprop's forgotten gradient), which every later operation of Bound treats as a tensor
        # 0 (it adds nothing, multiplies to an exact 0, has no conversion to charge).
        scalar_branch = np.where(c.holds, self._is_scalar(then) and not self._exact_zero_scalar(then),
                                 self._is_scalar(otherwise) and not self._exact_zero_scalar(otherwise))
        x = np.where(c.holds, a.t.x, b.t.x)
        r = np.where(c.holds, a.t.r, b.t.r)
        taken_e = np.where(c.holds, a.e, b.e)
        other_e = np.where(c.holds, b.e, a.e)
        other_x, other_r = np.where(c.holds, b.t.x, a.t.x), np.where(c.holds, b.t.r, a.t.r)
        spread = _up(np.abs(other_x - x) + other_r + r + other_e)
        amb_e = np.maximum(taken_e, np.where(np.isfinite(spread), spread, np.inf))
        e = np.where(c.amb, amb_e, taken_e)
        esc = c.esc | scalar_branch | np.where(c.holds, a.esc, b.esc)
        # ambiguous: both branches' reasons, and an unbounded result if the other branch is not real
        esc = esc | (c.amb & (np.where(c.holds, b.esc, a.esc) | ~np.isfinite(other_x) | ~np.isfinite(other_r)))
        # Bound: the condition's reasons and the taken branch's (both branches' when ambiguous): certain where
        # the condition is decided, or where both branches carry some
        lim = c.lim | (a.lim & b.lim) | (np.where(c.holds, a.lim, b.lim) & ~c.esc)
        out = TB(T(x, r), e, esc, lim, tuple(dict.fromkeys((*c.why, *a.why, *b.why))))
        if a.quot is not None or b.quot is not None:
            qa = a.quot if a.quot is not None else np.nan
            qb = b.quot if b.quot is not None else np.nan
            out.quot = np.where(c.amb, np.nan, np.where(c.holds, qa, qb))
        if a.scale is not None or b.scale is not None:
            sa = a.scale if a.scale is not None else np.nan
            sb = b.scale if b.scale is not None else np.nan
            out.scale = np.where(c.amb, np.nan, np.where(c.holds, sa, sb))
        return out
