"""The arithmetics a compiled program runs over.

``Interval(prec)`` evaluates with mpmath interval arithmetic at ``prec`` bits:
every result is an interval that provably contains the exact real value, and
exact operations give zero-width intervals.  That is what makes Ziv's test
rigorous (``reference.step``): when both ends of the final interval round to
the same float, that float is the correctly rounded exact result.

``Special`` evaluates with plain mpmath numbers and IEEE 754's rules for the
non-finite cases (``inf − inf = NaN``, ``0·inf = NaN``, ``x/0 = ±inf``,
``√(negative) = NaN``, NaN-propagating max).  It is used only for steps whose
inputs are not all finite, or whose exact result is not a real number
(a division by an exact zero): such a step has an IEEE answer but no real one.
"""
from __future__ import annotations

import functools
import math

import mpmath
from mpmath.ctx_iv import MPIntervalContext


class Undecided(Exception):
    """A comparison whose operands' intervals overlap: more precision is needed."""


class NotReal(Exception):
    """The exact result is not a real number (x/0, √negative): evaluate with ``Special``."""


class _NotRealValue:
    """What a non-real operation yields inside ``Interval``.

    It propagates through every operation and is only an error if it reaches an
    output: both branches of a ``select`` are evaluated, and the one not taken
    may well be non-real (RAdam's rectifier before ρ_t exceeds 4).
    """

    def __init__(self, why: str):
        self.why = why

    def __repr__(self):
        return f"<not real: {self.why}>"


def _poisoned(xs):
    for x in xs:
        if isinstance(x, _NotRealValue):
            return x
    return None


def check_real(x):
    """Raise ``NotReal`` if an output of an ``Interval`` program is not a real number."""
    if isinstance(x, _NotRealValue):
        raise NotReal(x.why)
    return x


@functools.lru_cache(maxsize=None)
def interval_context(prec: int) -> MPIntervalContext:
    """One shared mpmath interval context per precision (creating one costs ~1 ms; never change its prec)."""
    ctx = MPIntervalContext()
    ctx.prec = prec
    return ctx


@functools.lru_cache(maxsize=None)
def mp_context(prec: int) -> mpmath.MPContext:
    """One shared mpmath context per precision (never change its prec)."""
    ctx = mpmath.MPContext()
    ctx.prec = prec
    return ctx


class Interval:
    """Interval arithmetic at a fixed precision; comparisons decide or raise ``Undecided``."""

    def __init__(self, prec: int):
        self.ctx = interval_context(prec)
        self.prec = prec
        self._consts = {}

    def input(self, x) -> object:
        """An exact input (Fraction, int or finite float) as a zero-width interval."""
        if hasattr(x, "numerator") and not isinstance(x, (int, float)):
            return self.ctx.mpf(x.numerator) / self.ctx.mpf(x.denominator) if x.denominator != 1 \
                else self.ctx.mpf(x.numerator)
        return self.ctx.mpf(x)

    def const(self, p: int, q: int):
        key = (p, q)
        if key not in self._consts:
            self._consts[key] = self.ctx.mpf(p) / self.ctx.mpf(q) if q != 1 else self.ctx.mpf(p)
        return self._consts[key]

    def add(self, *xs):
        bad = _poisoned(xs)
        if bad:
            return bad
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def sub(self, a, b):
        return _poisoned((a, b)) or a - b

    def neg(self, a):
        return _poisoned((a,)) or -a

    def mul(self, *xs):
        bad = _poisoned(xs)
        if bad:
            return bad
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out

    def lerp(self, a, b, w):
        """``a + w·(b − a)`` (``reference.program.Lerp``): for finite values every form of it is the same number."""
        return self.add(a, self.mul(w, self.sub(b, a)))

    def div(self, a, b):
        bad = _poisoned((a, b))
        if bad:
            return bad
        if b.a <= 0 <= b.b:
            if b.a == 0 == b.b:
                return _NotRealValue("division by an exact zero")
            raise Undecided("divisor interval contains 0")
        return a / b

    def sqrt(self, a):
        if _poisoned((a,)):
            return a
        if a.b < 0:
            return _NotRealValue("square root of a negative number")
        if a.a < 0:
            raise Undecided("square root of an interval that straddles 0")
        return self.ctx.sqrt(a)

    def pow(self, a, b):
        bad = _poisoned((a, b))
        if bad:
            return bad
        if a.a <= 0:
            if a.a == 0 == a.b and b.a > 0:
                return self.const(0, 1)
            if a.b < 0 or a.a == a.b:
                return _NotRealValue("power of a non-positive base")
            raise Undecided("power of an interval that straddles 0")
        return a ** b

    def max(self, *xs):
        bad = _poisoned(xs)
        if bad:
            return bad
        return self.ctx.mpf([max(x.a for x in xs), max(x.b for x in xs)])

    def min(self, *xs):
        bad = _poisoned(xs)
        if bad:
            return bad
        return self.ctx.mpf([min(x.a for x in xs), min(x.b for x in xs)])

    def abs(self, a):
        return _poisoned((a,)) or abs(a)

    def cos(self, a):
        return _poisoned((a,)) or self.ctx.cos(a)

    def sin(self, a):
        return _poisoned((a,)) or self.ctx.sin(a)

    def exp(self, a):
        return _poisoned((a,)) or self.ctx.exp(a)

    def log(self, a):
        if _poisoned((a,)):
            return a
        if a.b <= 0:
            return _NotRealValue("logarithm of a non-positive number")
        if a.a <= 0:
            raise Undecided("logarithm of an interval that reaches 0")
        return self.ctx.log(a)

    def floor(self, a):
        if _poisoned((a,)):
            return a
        lo, hi = (math.floor(mpmath.mp.make_mpf(x)) for x in a._mpi_)
        if lo != hi:
            raise Undecided("floor of an interval that straddles an integer")
        return self.ctx.mpf(lo)

    def ceil(self, a):
        if _poisoned((a,)):
            return a
        lo, hi = (math.ceil(mpmath.mp.make_mpf(x)) for x in a._mpi_)
        if lo != hi:
            raise Undecided("ceil of an interval that straddles an integer")
        return self.ctx.mpf(lo)

    def mod(self, a, b):
        return self.sub(a, self.mul(b, self.floor(self.div(a, b))))

    # Comparisons return a bool, or raise when the intervals overlap.
    def _decide(self, result):
        if isinstance(result, _NotRealValue):
            raise NotReal(result.why)
        if result is None:
            raise Undecided("comparison of overlapping intervals")
        return result

    def gt(self, a, b):
        return self._decide(_poisoned((a, b)) or a > b)

    def lt(self, a, b):
        return self._decide(_poisoned((a, b)) or a < b)

    def ge(self, a, b):
        return self._decide(_poisoned((a, b)) or a >= b)

    def le(self, a, b):
        return self._decide(_poisoned((a, b)) or a <= b)

    def eq(self, a, b):
        self._decide(_poisoned((a, b)) or True)
        if a.a == a.b == b.a == b.b:
            return True
        if a.b < b.a or b.b < a.a:
            return False
        raise Undecided("equality of overlapping intervals")

    def ne(self, a, b):
        return not self.eq(a, b)

    def all_(self, *cs):
        return all(cs)

    def any_(self, *cs):
        return any(cs)

    def select(self, cond, then, otherwise):
        return then if cond else otherwise


class Special:
    """mpmath numbers with IEEE 754's non-finite rules, for steps with non-finite values.

    Zeros carry no sign here: an exact zero divisor is taken as +0.
    """

    def lerp(self, a, b, w):
        """torch's lerp (ATen): ``a + w·(b − a)`` for |w| < ½, else ``b − (b − a)·(1 − w)``.

        The same value for finite operands; with an infinite ``a`` they differ (``−inf + w·inf`` is NaN,
        ``b − inf·(1 − w)`` is −inf), and the spec follows torch's code.
        """
        if abs(w) < 0.5:
            return self.add(a, self.mul(w, self.sub(b, a)))
        return self.sub(b, self.mul(self.sub(b, a), self.sub(self.ctx.one, w)))

    def __init__(self, prec: int = 256):
        self.ctx = mp_context(prec)

    def input(self, x):
        if isinstance(x, float) and not math.isfinite(x):
            return self.ctx.mpf(x)
        if hasattr(x, "numerator") and not isinstance(x, (int, float)):
            return self.ctx.mpf(x.numerator) / x.denominator
        return self.ctx.mpf(x)

    def const(self, p, q):
        return self.ctx.mpf(p) / q

    def add(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def sub(self, a, b):
        return a - b

    def neg(self, a):
        return -a

    def mul(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out

    def div(self, a, b):
        if b == 0:
            if a == 0 or self.ctx.isnan(a):
                return self.ctx.nan
            return self.ctx.inf if a > 0 else -self.ctx.inf
        return a / b

    def sqrt(self, a):
        if self.ctx.isnan(a) or a < 0:
            return self.ctx.nan
        return self.ctx.sqrt(a)

    def pow(self, a, b):
        if self.ctx.isnan(a) or self.ctx.isnan(b) or a < 0:
            return self.ctx.nan
        return a ** b

    def max(self, *xs):
        if any(self.ctx.isnan(x) for x in xs):
            return self.ctx.nan
        return max(xs)

    def min(self, *xs):
        if any(self.ctx.isnan(x) for x in xs):
            return self.ctx.nan
        return min(xs)

    def abs(self, a):
        return abs(a)

    def cos(self, a):
        return self.ctx.cos(a) if self.ctx.isfinite(a) else self.ctx.nan

    def sin(self, a):
        return self.ctx.sin(a) if self.ctx.isfinite(a) else self.ctx.nan

    def exp(self, a):
        return self.ctx.exp(a)

    def log(self, a):
        if self.ctx.isnan(a) or a < 0:
            return self.ctx.nan
        return self.ctx.log(a) if a > 0 else -self.ctx.inf

    def floor(self, a):
        return self.ctx.floor(a)

    def ceil(self, a):
        return self.ctx.ceil(a)

    def mod(self, a, b):
        return a - b * self.ctx.floor(a / b)

    # IEEE comparisons: anything with NaN is false, except !=.
    def gt(self, a, b):
        return bool(a > b)

    def lt(self, a, b):
        return bool(a < b)

    def ge(self, a, b):
        return bool(a >= b)

    def le(self, a, b):
        return bool(a <= b)

    def eq(self, a, b):
        return bool(a == b)

    def ne(self, a, b):
        return not bool(a == b)

    def all_(self, *cs):
        return all(cs)

    def any_(self, *cs):
        return any(cs)

    def select(self, cond, then, otherwise):
        return then if cond else otherwise
