"""Phase 1 in double-double: the fast reference's second tier, and its only one for float64 targets.

``FastDD`` is ``fast.FastInterval`` with each tensor value a double-double
``h + l`` (|l| ≤ ½ ulp(h)) and a radius ``r``: |exact − (h + l)| ≤ r.  The
operations are the classical error-free ones (TwoSum; TwoProd by Dekker's
split, no FMA needed), and the double-double algorithms whose relative errors
Joldes, Muller and Popescu prove (ACM TOMS 44(2), 2017): AccurateDWPlusDW
(≤ 3u²), DWTimesDW1 (≤ 7u²), DWDivDW1 (≤ 15u² + 56u³), and the Newton step
for √ (≤ 4u²), with u = 2⁻⁵³.  Each is charged ``REL`` = 2⁻⁹⁷ = 512u² of its
result, and the absolute ``TINY`` = 2⁻¹⁰²² for underflow (those proofs assume
none; an error-free transformation loses at most a few 2⁻¹⁰⁷⁴ to it).  The
radius propagates by the same rules as in binary64 (``fast`` module docstring).
An overflow in Dekker's split (|x| > 2⁹⁹⁶) gives NaN, which certifies nothing.

Rounding is certified from the enclosure [h + l − r, h + l + r]: it must lie
strictly inside the rounding interval of y = round(h + l) in the format (between
the midpoints to y's neighbours, which are binary64 values for formats of at
most 52 bits; half an ulp of ``h`` each side for float64), and the result is y.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from mpmath import libmp

from . import arith
from . import fast_kernels as K
from .fast import TC, TINY, FastInterval, _float_toward, _max_finite, _up
from .fast_round import has_zero, next_toward, round_exact

REL = 2.0 ** -97
_SPLIT = 134217729.0  # 2^27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = _SPLIT * a
    h = c - (c - a)
    return h, a - h


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@dataclass
class D:
    """A double-double tensor value h + l with radius r."""

    h: np.ndarray
    l: np.ndarray  # noqa: E741 - the usual name of the low word
    r: np.ndarray


def _exact(v: D):
    """Where ``v`` is exactly h + l (radius 0)."""
    return v.r == 0


def _mag(v: D):
    """An upper bound of |h + l|."""
    return _up(np.abs(v.h) + np.abs(v.l))


class FastDD(FastInterval):
    """Double-double midpoint-radius arithmetic over float64 arrays; scalars as in ``FastInterval``."""

    @staticmethod
    def _is_scalar(v) -> bool:
        return not isinstance(v, (D, TC))

    def _t(self, v) -> D:
        return v if isinstance(v, D) else super()._t(v)

    def tensor(self, x) -> D:
        x = np.asarray(x, dtype=np.float64)
        return D(x, np.zeros_like(x), np.where(np.isfinite(x), 0.0, np.inf))

    @staticmethod
    def initial(q: Fraction) -> D:
        h = float(q)
        low = q - Fraction(h) if math.isfinite(h) else Fraction(0)
        lo = float(low)
        r = 0.0 if Fraction(lo) == low else _up(abs(lo) * 2.0 ** -52 + TINY)
        return D(np.float64(h), np.float64(lo), np.float64(r))

    def as_tensor(self, v, n: int) -> D:
        v = self._t(v)
        if np.shape(v.h) == (n,):
            return v
        return D(*(np.broadcast_to(a, (n,)) for a in (v.h, v.l, v.r)))

    def shaped(self, v, n: int) -> D:
        t = self._t(v)
        return t if np.ndim(t.h) == 0 and np.ndim(t.l) == 0 and np.ndim(t.r) == 0 else self.as_tensor(t, n)

    @staticmethod
    def _to_tensor(v) -> D:
        if isinstance(v, arith._NotRealValue):
            return D(np.float64(np.nan), np.float64(0.0), np.float64(np.inf))
        a, b = v._mpi_
        if any(x in (libmp.finf, libmp.fninf, libmp.fnan) for x in (a, b)):
            return D(np.float64(np.nan), np.float64(0.0), np.float64(np.inf))
        mid = libmp.mpf_shift(libmp.mpf_add(a, b, 0), -1)  # exact
        # to nearest (mpmath's default truncates): |l| ≤ ½ ulp(h), the double-word form every operation's error
        # bound and ``certify`` assume; truncated, a scalar such as ASGD's μ = 1/5 or η was never certified in
        # float64
        h = libmp.to_float(mid, rnd=libmp.round_nearest)
        if not math.isfinite(h):
            return D(np.float64(np.nan), np.float64(0.0), np.float64(np.inf))
        rest = libmp.mpf_sub(mid, libmp.from_float(h), 0)
        lo = libmp.to_float(rest, rnd=libmp.round_nearest)
        center = libmp.mpf_add(libmp.from_float(h), libmp.from_float(lo), 0)
        above, below = libmp.mpf_sub(b, center, 0), libmp.mpf_sub(center, a, 0)
        dist = above if libmp.mpf_cmp(above, below) >= 0 else below
        r = _float_toward(dist, math.inf)
        return D(np.float64(h), np.float64(lo), np.float64(0.0 if r == 0 else _up(r)))

    # -- arithmetic -------------------------------------------------------------------
    def _add2(self, a: D, b: D) -> D:
        n = _length(a, b)
        if n:
            return D(*K.dd_add(n, a.h, a.l, a.r, b.h, b.l, b.r))
        sh, sl = _two_sum(a.h, b.h)
        th, tl = _two_sum(a.l, b.l)
        u = sl + th
        vh, vl = _fast_two_sum(sh, u)
        w = tl + vl
        zh, zl = _fast_two_sum(vh, w)
        r = _up(a.r + b.r + REL * np.abs(zh) + TINY)
        if not (has_zero(a.r) and has_zero(b.r)):  # no element of both exact: none is exact (below)
            return D(zh, zl, r)
        # Exact operands whose sum the algorithm forms without error: the two TwoSums are error-free, and so are
        # the FastTwoSums when u = sl + th and w = tl + vl are exact and each FastTwoSum's first argument is the
        # larger.  Then zh + zl is the exact sum and zh = fl(vh + w) its correct rounding (a tie included): radius
        # 0, as ``certify`` needs (Rprop's θ ∓ Δ, sums of a few binary64 values, are often float64 ties).
        exact = (_exact(a) & _exact(b) & (_two_sum(sl, th)[1] == 0) & (_two_sum(tl, vl)[1] == 0)
                 & (np.abs(sh) >= np.abs(u)) & (np.abs(vh) >= np.abs(w)) & np.isfinite(zh) & np.isfinite(zl))
        return D(zh, zl, np.where(exact, 0.0, r))

    def add(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("add", *xs)
        ts = [self._t(x) for x in xs]
        return functools.reduce(self._add2, ts)

    def neg(self, a):
        if self._is_scalar(a):
            return self._scalar("neg", a)
        return D(-a.h, -a.l, a.r)

    def _mul2(self, a: D, b: D) -> D:
        n = _length(a, b)
        if n:
            return D(*K.dd_mul(n, a.h, a.l, a.r, b.h, b.l, b.r))
        ch, cl1 = _two_prod(a.h, b.h)
        cl3 = cl1 + (a.h * b.l + a.l * b.h)
        zh, zl = _fast_two_sum(ch, cl3)
        ma, mb = _mag(a), _mag(b)
        r = _up(ma * b.r + mb * a.r + a.r * b.r + REL * np.abs(zh) + TINY)
        if not (has_zero(a.r) or has_zero(b.r)):  # no exact operand: no exact product (below)
            return D(zh, zl, r)
        # An exact 0 times a finite value is exactly 0 (Rprop's g·g_prev at its first step), and stays decidable.
        zero = ((_exact(a) & (a.h == 0) & np.isfinite(b.h) & np.isfinite(b.r))
                | (_exact(b) & (b.h == 0) & np.isfinite(a.h) & np.isfinite(a.r)))
        # Two exact binary64 values (low words 0), away from underflow and from the split's overflow: TwoProd is
        # error-free and ch = zh the correctly rounded product, so zh + zl is exact (Rprop's Δ·η₋ = Δ/2).
        plain = _exact(a) & _exact(b) & (a.l == 0) & (b.l == 0)
        safe = (np.abs(a.h) < 2.0 ** 995) & (np.abs(b.h) < 2.0 ** 995) & (np.abs(ch) >= 2.0 ** -960)
        return D(zh, zl, np.where(zero | (plain & safe & (cl3 == cl1)), 0.0, r))

    def mul(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("mul", *xs)
        return functools.reduce(self._mul2, [self._t(x) for x in xs])

    def div(self, a, b):
        if self._all_scalar((a, b)):
            return self._scalar("div", a, b)
        a, b = self._t(a), self._t(b)
        n = _length(a, b)
        if n:
            return D(*K.dd_div(n, a.h, a.l, a.r, b.h, b.l, b.r))
        th = a.h / b.h
        # DWTimesFP: b·th as a double-double
        ch, cl1 = _two_prod(b.h, th)
        ph, tl1 = _fast_two_sum(ch, b.l * th)
        rh, rl = _fast_two_sum(ph, tl1 + cl1)
        pih, pil = _two_sum(a.h, -rh)
        delta = pih + ((pil - rl) + a.l)
        zh, zl = _fast_two_sum(th, delta / b.h)
        d = _down(np.abs(b.h) - np.abs(b.l) - b.r)
        q = _mag(D(zh, zl, 0.0))
        r = _up((a.r + q * b.r) / d + REL * np.abs(zh) + TINY)
        return D(zh, zl, np.where(d > 0, r, np.inf))

    def sqrt(self, a):
        if self._is_scalar(a):
            return self._scalar("sqrt", a)
        n = _length(a)
        if n:
            return D(*K.dd_sqrt(n, a.h, a.l, a.r))
        s = np.sqrt(np.maximum(a.h, 0.0))
        ph, pl = _two_prod(s, s)
        zh, zl = _fast_two_sum(s, (((a.h - ph) - pl) + a.l) / (2 * s))
        lo = _down(a.h - np.abs(a.l) - a.r)  # a lower bound of the argument
        r = _up(a.r / np.sqrt(lo) + REL * np.abs(zh) + TINY)
        exact_zero = (a.h == 0) & (a.l == 0) & (a.r == 0)
        r = np.where(lo > 0, r, np.where(exact_zero, 0.0, np.inf))
        return D(np.where(exact_zero, 0.0, zh), np.where(exact_zero, 0.0, zl), r)

    def abs(self, a):
        if self._is_scalar(a):
            return self._scalar("abs", a)
        neg = a.h < 0
        return D(np.where(neg, -a.h, a.h), np.where(neg, -a.l, a.l), a.r)

    def _pick(self, xs, larger: bool) -> D:
        ts = [self._t(x) for x in xs]
        out = ts[0]
        for t in ts[1:]:
            above = (t.h > out.h) | ((t.h == out.h) & (t.l > out.l))  # exact order of normalised pairs
            take = above if larger else ~above & ~((t.h == out.h) & (t.l == out.l))
            # disjoint enclosures: the chosen one's radius (a clamp to an exact bound stays exact)
            gap = np.abs(t.h - out.h) * (1 - 2.0 ** -50) - np.abs(t.l) - np.abs(out.l)
            apart = gap > _up(t.r + out.r)
            r = np.where(apart, np.where(take, t.r, out.r), np.maximum(t.r, out.r))
            out = D(np.where(take, t.h, out.h), np.where(take, t.l, out.l), r)
        return out

    def max(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("max", *xs)
        return self._pick(xs, True)

    def min(self, *xs):
        if self._all_scalar(xs):
            return self._scalar("min", *xs)
        return self._pick(xs, False)

    def _no_rule(self, name, *xs):
        if self._all_scalar(xs):
            return self._scalar(name, *xs)
        shape = np.broadcast_shapes(*(np.shape(self._t(x).h) for x in xs))
        return D(np.full(shape, np.nan), np.zeros(shape), np.full(shape, np.inf))

    def _cmp(self, op, a, b) -> TC:
        a, b = self._t(a), self._t(b)
        d = self._add2(a, self.neg(b))
        rd = _up(d.r + np.abs(d.l))
        # Both exact: AccurateDWPlusDW's relative error is below 1, so d.h has the sign of a − b, 0 iff a = b.
        exact = _exact(a) & _exact(b) & np.isfinite(d.h)
        return TC(op(d.h), ~(exact | (np.abs(d.h) > rd)))

    def select(self, cond, then, otherwise):
        if not isinstance(cond, TC):
            return then if cond else otherwise
        a, b = self._t(then), self._t(otherwise)
        return D(np.where(cond.holds, a.h, b.h), np.where(cond.holds, a.l, b.l),
                 np.where(cond.undecided, np.inf, np.where(cond.holds, a.r, b.r)))


def _down(z):
    return z * (1 - 2.0 ** -48)


def _length(*vs) -> int:
    """The number of elements of 1-d values, for a kernel of ``reference.fast_kernels``: 0 where the kernels are
    off or no value is 1-d (the NumPy code runs)."""
    if not K.KERNELS:
        return 0
    n = 0
    for v in vs:
        for a in (v.h, v.l, v.r):
            if type(a) is np.ndarray and a.ndim:
                if a.ndim > 1:
                    return 0
                n = a.shape[0]
    return n


def certify(v: D, fmt) -> tuple:
    """(rounded values as float64, certified mask) of a double-double enclosure in ``fmt``."""
    n = _length(v)
    if n:
        return K.dd_certify(n, v.h, v.l, v.r, fmt.precision, fmt.emin, _max_finite(fmt.name), fmt.name == "float32")
    finite = np.isfinite(v.h) & np.isfinite(v.l) & np.isfinite(v.r)
    if fmt.precision < 53:
        # h + l lies within half a binary64 ulp of h, so its rounding is one of round(h) and the roundings
        # of h's binary64 neighbours (whose ties may go either way): each candidate y is certified when the
        # enclosure lies strictly between the midpoints to y's neighbours (binary64 values).
        out, good = np.zeros_like(v.h), np.zeros(np.shape(v.h), dtype=bool)
        # The three candidates at once (one row each, in this order: a later certified one is taken)
        candidates = np.stack([v.h, next_toward(v.h, up=False), next_toward(v.h, up=True)])
        ys, oks = _inside(v, round_exact(candidates, fmt, quiet=True), fmt)  # under fast._phase1's np.errstate
        for y, ok in zip(ys, oks):
            out = np.where(ok, y, out)
            good |= ok
        exact = (v.r == 0) & (v.l == 0)  # exactly the binary64 value h: its correct rounding, ties included
        out = np.where(exact & ~good, round_exact(v.h, fmt), out)
        good |= exact
        return np.where(good, out, round_exact(v.h, fmt)), good & finite
    half_up = (next_toward(v.h, up=True) - v.h) * 0.5
    half_dn = (v.h - next_toward(v.h, up=False)) * 0.5
    inside = (next_toward(half_dn + v.l, up=False) > v.r) & (next_toward(half_up - v.l, up=False) > v.r)
    normal = (np.abs(v.h) >= 2.0 ** -1020) & (np.abs(v.h) < 2.0 ** 1023)  # half an ulp is exact; no overflow
    zero = (v.h == 0) & (v.l == 0) & (v.r == 0)
    # Radius 0: h + l is exact and every operation that leaves it so (inputs, exact sums and zero products,
    # conversions of exact scalars) makes h the round-to-nearest-even binary64 value of h + l, a tie included.
    exact = (v.r == 0) & (np.abs(v.h) < 2.0 ** 1023)
    return v.h, ((inside & normal) | zero | exact) & finite


def _inside(v: D, y, fmt) -> tuple:
    """(y, whether the enclosure of ``v`` lies strictly inside y's rounding interval in ``fmt``)."""
    a = np.abs(y)
    _, e = np.frexp(a)
    binade = np.where(a == 0, fmt.emin, np.maximum(e - 1, fmt.emin))
    ulp = np.ldexp(1.0, binade - fmt.precision + 1)
    power = (a == np.ldexp(1.0, binade)) & (binade > fmt.emin)
    gap_up, gap_dn = ulp, np.where(power, ulp / 2, ulp)  # away from zero, toward zero
    m_hi = np.where(y > 0, y + gap_up / 2, np.where(y < 0, y + gap_dn / 2, ulp / 2))
    m_lo = np.where(y > 0, y - gap_dn / 2, np.where(y < 0, y - gap_up / 2, -ulp / 2))
    d_lo = next_toward(v.h - m_lo, up=False)  # lower bounds of the distances from h to the midpoints
    d_hi = next_toward(m_hi - v.h, up=False)
    inside = (next_toward(d_lo + v.l, up=False) > v.r) & (next_toward(d_hi - v.l, up=False) > v.r)
    return y, inside & np.isfinite(y)
