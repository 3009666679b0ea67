"""Exact real arithmetic where it is cheap: rationals, π times a rational, and square roots of rationals.

``ExactInterval`` is an ``arith.Interval`` whose values stay exact as long as
they are ``Fraction``, ``_PiTimes`` (π·q) or ``Surd`` (r·√q), and fall back to
mpmath intervals at ``prec`` bits for the rest.  The schedules use it for
their integer and rational arithmetic and ``cos(π·q)`` at rational points
(``reference.schedule``); the optimizer reference uses it as its last resort
(``reference.step``), for a value that is exactly a rounding boundary or
exactly 0 under a square root but reached through rounded intervals, which
no precision can decide (√ε/√ε = 1 in AdaDelta with ρ = 1; v − ḡ² = 0 in
centered RMSprop with α = 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np

from . import arith
from .formats import exact as exact_value


# --------------------------------------------------------------------------- exact arithmetic


class _PiTimes:
    """The exact real π·q for a rational q (only cos, sin, × and ÷ by rationals keep it exact)."""

    __slots__ = ("q",)

    def __init__(self, q: Fraction):
        self.q = q


_COS_PI = {Fraction(0): 1, Fraction(1, 3): Fraction(1, 2), Fraction(1, 2): 0, Fraction(2, 3): Fraction(-1, 2),
           Fraction(1): -1, Fraction(4, 3): Fraction(-1, 2), Fraction(3, 2): 0, Fraction(5, 3): Fraction(1, 2)}


def _iroot(x: int, k: int) -> Optional[int]:
    """The integer k-th root of x ≥ 0 if x is a perfect k-th power, else None."""
    if x < 2:
        return x
    if k > x.bit_length():
        return None
    lo, hi = 1, 1 << (x.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid ** k <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo if lo ** k == x else None


def _exact_pow(a: Fraction, b: Fraction):
    """a**b exactly when it is rational; ``None`` when it is irrational; a not-real marker when undefined."""
    if b.denominator == 1:
        if a == 0 and b < 0:
            return arith._NotRealValue("0 raised to a negative power")
        return a ** int(b)  # 0**0 = 1, as Python's 0.0**0.0
    if a < 0:
        return arith._NotRealValue("negative base to a non-integer power")
    if a == 0:
        return Fraction(0) if b > 0 else arith._NotRealValue("0 raised to a negative power")
    num, den = _iroot(a.numerator, b.denominator), _iroot(a.denominator, b.denominator)
    if num is None or den is None:
        return None
    return Fraction(num, den) ** b.numerator


@dataclass(frozen=True)
class Surd:
    """The exact real r·√q: rationals r ≠ 0 and q > 0, q not a square of a rational (so r·√q is irrational)."""

    r: Fraction
    q: Fraction

    def reciprocal(self) -> "Surd":
        return Surd(1 / (self.r * self.q), self.q)  # 1/(r·√q) = √q/(r·q)


def _surd(r: Fraction, q: Fraction):
    """r·√q for q > 0: a ``Fraction`` when √q is rational, else a ``Surd``."""
    if r == 0:
        return Fraction(0)
    root = _exact_pow(q, Fraction(1, 2))
    return r * root if root is not None else Surd(r, q)


class ExactInterval(arith.Interval):
    """``arith.Interval`` that stays exact wherever the value is rational, π·rational or r·√q.

    Values are ``Fraction`` (exact), ``_PiTimes`` (π times a rational),
    ``Surd`` (a rational times the square root of a rational), mpmath
    intervals at ``prec`` bits, or ``arith._NotRealValue``.  Operations on
    exact values are exact where the result is of one of these kinds (products
    and quotients of surds: √ε/√ε = 1); anything else goes through the interval
    arithmetic of the base class.  Comparisons of rationals are decided
    exactly, so a schedule's branch conditions (all rational) never escalate.
    """

    def input(self, x):
        if isinstance(x, Fraction):
            return x
        if isinstance(x, (bool, np.bool_)):
            raise TypeError("a flag is not a number")
        if isinstance(x, (int, np.integer)):
            return Fraction(int(x))
        value = exact_value(x)
        if isinstance(value, float):
            raise ValueError(f"non-finite schedule input {x!r}")
        return value

    def const(self, p: int, q: int):
        return Fraction(p, q)

    def pi(self):
        return _PiTimes(Fraction(1))

    def _iv(self, x):
        if isinstance(x, Fraction):
            if x.denominator == 1:
                return self.ctx.mpf(x.numerator)
            return self.ctx.mpf(x.numerator) / self.ctx.mpf(x.denominator)
        if isinstance(x, _PiTimes):
            return self.ctx.pi * self._iv(x.q)
        if isinstance(x, Surd):
            return self._iv(x.r) * self.ctx.sqrt(self._iv(x.q))
        return x

    def _ivs(self, xs):
        return [self._iv(x) for x in xs]

    @staticmethod
    def _exact(*xs) -> bool:
        return all(isinstance(x, Fraction) for x in xs)

    def add(self, *xs):
        bad = arith._poisoned(xs)
        if bad:
            return bad
        if self._exact(*xs):
            return sum(xs, Fraction(0))
        rest = [x for x in xs if not (isinstance(x, Fraction) and x == 0)]
        if len(rest) == 1:  # 0 + x is x itself: a later x/x stays exactly 1 (Schedule-Free's first weight, w/(0 + w))
            return rest[0]
        return super().add(*self._ivs(xs))

    def sub(self, a, b):
        bad = arith._poisoned((a, b))
        if bad:
            return bad
        return a - b if self._exact(a, b) else super().sub(self._iv(a), self._iv(b))

    def neg(self, a):
        if isinstance(a, _PiTimes):
            return _PiTimes(-a.q)
        if isinstance(a, Surd):
            return Surd(-a.r, a.q)
        return -a if isinstance(a, Fraction) else super().neg(a)

    def mul(self, *xs):
        bad = arith._poisoned(xs)
        if bad:
            return bad
        if all(isinstance(x, (Fraction, Surd)) for x in xs) and any(isinstance(x, Surd) for x in xs):
            r, q = Fraction(1), Fraction(1)
            for x in xs:
                r, q = (r * x.r, q * x.q) if isinstance(x, Surd) else (r * x, q)
            return _surd(r, q)
        pis = [x for x in xs if isinstance(x, _PiTimes)]
        rest = [x for x in xs if not isinstance(x, _PiTimes)]
        if self._exact(*rest) and len(pis) <= 1:
            product = Fraction(1)
            for x in rest:
                product *= x
            return _PiTimes(pis[0].q * product) if pis else product
        return super().mul(*self._ivs(xs))

    def div(self, a, b):
        bad = arith._poisoned((a, b))
        if bad:
            return bad
        if a is b and not isinstance(a, Fraction) and not self._iv(a).a <= 0 <= self._iv(a).b:
            return Fraction(1)  # x/x for one value x known to be nonzero, whatever its enclosure's width
        if isinstance(b, Fraction):
            if b == 0:
                return arith._NotRealValue("division by an exact zero")
            if isinstance(a, Fraction):
                return a / b
            if isinstance(a, _PiTimes):
                return _PiTimes(a.q / b)
        if isinstance(b, Surd) and isinstance(a, (Fraction, Surd)):
            return self.mul(a, b.reciprocal())
        if isinstance(a, Surd) and isinstance(b, Fraction):
            return Surd(a.r / b, a.q)
        return super().div(self._iv(a), self._iv(b))

    def pow(self, a, b):
        bad = arith._poisoned((a, b))
        if bad:
            return bad
        if self._exact(a, b):
            result = _exact_pow(a, b)
            if result is not None:
                return result
        return super().pow(self._iv(a), self._iv(b))

    def sqrt(self, a):
        if isinstance(a, Fraction):
            result = _exact_pow(a, Fraction(1, 2))
            return Surd(Fraction(1), a) if result is None else result
        return super().sqrt(self._iv(a))

    def max(self, *xs):
        bad = arith._poisoned(xs)
        if bad:
            return bad
        return max(xs) if self._exact(*xs) else super().max(*self._ivs(xs))

    def min(self, *xs):
        bad = arith._poisoned(xs)
        if bad:
            return bad
        return min(xs) if self._exact(*xs) else super().min(*self._ivs(xs))

    def abs(self, a):
        if isinstance(a, Surd):
            return Surd(abs(a.r), a.q)
        return abs(a) if isinstance(a, Fraction) else super().abs(self._iv(a))

    def cos(self, a):
        if isinstance(a, _PiTimes):
            r = a.q % 2
            if r in _COS_PI:
                return Fraction(_COS_PI[r])
            return self.ctx.cos(self.ctx.pi * self._iv(r))
        if isinstance(a, Fraction) and a == 0:
            return Fraction(1)
        return super().cos(self._iv(a))

    def sin(self, a):
        if isinstance(a, _PiTimes):
            return self.cos(_PiTimes(a.q - Fraction(1, 2)))
        if isinstance(a, Fraction) and a == 0:
            return Fraction(0)
        return super().sin(self._iv(a))

    def exp(self, a):
        if isinstance(a, Fraction) and a == 0:
            return Fraction(1)
        return super().exp(self._iv(a))

    def log(self, a):
        if isinstance(a, Fraction) and a == 1:
            return Fraction(0)
        return super().log(self._iv(a))

    def floor(self, a):
        if isinstance(a, Fraction):
            return Fraction(math.floor(a))
        return super().floor(self._iv(a))

    def ceil(self, a):
        if isinstance(a, Fraction):
            return Fraction(math.ceil(a))
        return super().ceil(self._iv(a))

    def floor_log(self, x, b):
        """⌊log_b x⌋, exactly for rational x > 0 and an integer b ≥ 2."""
        bad = arith._poisoned((x, b))
        if bad:
            return bad
        if self._exact(x, b) and b.denominator == 1 and b >= 2 and x > 0:
            k, power = 0, Fraction(1)
            while power * b <= x:
                power, k = power * b, k + 1
            while power > x:
                power, k = power / b, k - 1
            return Fraction(k)
        if self._exact(b) and b <= 1:
            return arith._NotRealValue(f"logarithm to the base {b}")
        return self.floor(self.div(self.log(x), self.log(b)))

    def gt(self, a, b):
        return a > b if self._exact(a, b) else super().gt(self._iv(a), self._iv(b))

    def lt(self, a, b):
        return a < b if self._exact(a, b) else super().lt(self._iv(a), self._iv(b))

    def ge(self, a, b):
        return a >= b if self._exact(a, b) else super().ge(self._iv(a), self._iv(b))

    def le(self, a, b):
        return a <= b if self._exact(a, b) else super().le(self._iv(a), self._iv(b))

    def eq(self, a, b):
        return a == b if self._exact(a, b) else super().eq(self._iv(a), self._iv(b))

    def ne(self, a, b):
        return not self.eq(a, b)

    def choose(self, cond, then, otherwise):
        return then() if cond else otherwise()
