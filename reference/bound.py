"""A rigorous running error bound for evaluating a spec in a binary format.

This is the tolerance model.  It answers: if an implementation performs the
spec's operations (the compiled program of ``reference.program``, in the
spec's order and grouping) in a format with unit roundoff ``u`` and smallest
subnormal ``2η``, each operation's result having a relative error of at most
``c·u`` plus an absolute error of at most ``c·η``, how far can its result be
from the exact one?

Every value is carried as ``B(v, e)``: ``v`` the exact value (computed at high
precision) and ``e`` a bound on |computed − exact| for *any* such
implementation.  The rules are the standard forward error rules, kept to all
orders (not only the first), so the bound holds exactly rather than
approximately::

    a ± b   e = eₐ + e_b                          + c·(u·(|v| + e) + η)
    a · b   e = |a|·e_b + |b|·eₐ + eₐ·e_b          + c·(u·(|v| + e) + η)
    a / b   e = (eₐ + |v|·e_b) / (|b| − e_b)       + c·(u·(|v| + e) + η)   (∞ if |b| ≤ e_b)
    √a      e = eₐ / (√a + √max(a − eₐ, 0))       + c·(u·(|v| + e) + η)   (∞ if a ≤ eₐ: may be √negative)
    aᵇ      e = |b·v/a|·eₐ + |v·ln a|·e_b + O(e²) + c_f·(u·(|v| + e) + η)
    lerp(a,b,w) e = |1−w|·eₐ + |w|·e_b + e_w·S + 2c·(u·W·S + η) + …   (see ``Bound.lerp``)
    s·x/d   (a scalar s, tensors x, d) either association: the other one's underflow is charged too,
            c·η·|s| to (s·x)/d and c·η/|d| to s·(x/d) (torch's CPU addcdiv scales first, CUDA's divides first)
    max, |·|, −a: exact operations, e = max of the operands' e / unchanged
    x ± 0, x·0, x·(±1), 0/b, √0 with an exact 0 or 1 (and finite e): exact, no
             rounding (IEEE gives these exactly), so an lr = 0 step leaves θ's bound unchanged
    if cond: the branch taken; when the comparison is within the operands'
             errors the other branch is possible too, and e covers both.

``c = BASIC`` for + − × ÷ √ (correctly rounded in IEEE 754, and ``c = 2``
covers implementations that split one spec operation into two roundings:
a lerp for a weighted sum, ``addcdiv``'s separate quotient, a reciprocal
then a multiply, a fused multiply-add or not); ``c_f = TRANSCENDENTAL`` for pow,
exp, log, cos (CUDA documents powf within 4 ulp = 8u; glibc's pow is within
1 ulp).  Inputs that are values of the format (parameters, gradients, state) are exact.

Scalars (values that depend on hyperparameters and the step counter alone:
``1 − β₂ᵗ``, ``lr/bc₁``, NAdam's μ_t) are computed by every implementation we
know once per step, in binary64 (torch's for-loop and foreach paths, NumPy
ports) or float32 (torch's capturable and fused CUDA paths), never in a half
format.  So scalar operations are charged the unit roundoff of the scalars'
format (``scalars``: float32 unless the path is declared to compute them in
binary64, ``SCALAR_PRECISIONS``) or of the format, whichever is smaller, and
a scalar entering an operation on
tensor values is charged one more rounding to the format (a port may convert
it first).  A port that computes ``1 − β₂`` in float16 loses up to half of
``1 − 0.999`` to cancellation, and this model reports that as the
non-conformance it is.

A result whose bound is infinite, or whose computation may leave the finite
range, is not a conformance failure but a limitation of the format: it is
classified (``Bound.limited``) and reported as such.  The reasons travel with
the values they concern (``B.why``): an output is limited only if it was
computed from a limited value, and the branch a ``select`` does not take
(RAdam's rectifier while ρ_t ≤ 5, a square root of a negative number) does not
make its result limited.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from fractions import Fraction

import mpmath

from .arith import mp_context
from .driver import is_finite, prepare, steps
from .formats import FORMATS, Format, exact, round_to_format
from .tensor import Lifted, all_finite, object_array

BASIC = 2
TRANSCENDENTAL = 8
#: The formats an implementation may compute its per-step scalars in (``Bound(scalars=)``): "float32" (torch's
#: fused and capturable paths; the default, since it covers both) or "float64" (Python floats: torch's for-loop
#: and foreach paths, NumPy ports), as the backend declares for each path (``backend.scalar_precision``).
SCALAR_PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class B:
    """A value and a bound on the error of any implementation's value for it.

    ``scalar`` marks values that depend on hyperparameters and the step
    counter alone (bias corrections, step sizes): implementations compute
    those once per step, in Python floats or in float32 on a device, not in
    the parameter's format.
    """

    v: object  # mpmath mpf
    e: object  # mpmath mpf, may be +inf
    scalar: bool = False
    why: tuple = ()  # the format-limitation reasons of this value and of the values it was computed from
    # For a scalar times a tensor quotient, s·x/d, implementations associate either way ((s·x)/d: torch's CPU
    # addcdiv; s·(x/d): CUDA's).  The rounding is the same relative error both ways, but an underflow is not:
    # the spec's association is bounded, the other one is charged its own absolute term (``mul``, ``div``).
    quot: object = None   # a tensor quotient x/d: a lower bound on |d|
    scale: object = None  # a scalar times a tensor, s·x: an upper bound on |s|


@dataclass(frozen=True)
class Cond:
    """A comparison's truth on exact values, and whether rounding could flip it."""

    holds: bool
    ambiguous: bool
    why: tuple = ()


def _union(*whys) -> tuple:
    return tuple(dict.fromkeys(r for why in whys for r in why))


def _tracked(op):
    """Attach to an operation's result the reasons of its operands and those it found itself.

    Reasons travel with the values they concern, as ``arith.Interval``'s non-real values do: both
    branches of a ``select`` are evaluated, and the one not taken (RAdam's rectifier, a square root
    of a negative number before ρ_t exceeds 5) must not mark the result as format-limited.
    """

    @functools.wraps(op)
    def run(self, *args):
        # An operation on scalars alone is the same for every element: computed once per Bound
        key = None
        if args and all(isinstance(a, B) and a.scalar for a in args):
            key = (op.__name__, *((a.v, a.e, a.why, a.quot, a.scale) for a in args))
            hit = self._memo.get(key)
            if hit is not None:
                return hit
        start = len(self.limited)
        out = op(self, *args)
        why = _union(*(a.why for a in args if isinstance(a, (B, Cond))), self.limited[start:])
        out = out if why == out.why else dataclasses.replace(out, why=why)
        if key is not None:
            self._memo[key] = out
        return out

    return run


class Bound:
    """The arithmetic of ``B`` values for one format.  Records why a result is format-limited."""

    def __init__(self, fmt: Format, prec: int = 192, basic: int = BASIC, transcendental: int = TRANSCENDENTAL,
                 scalars: str = "float32"):
        self.ctx = mp_context(prec)
        self.fmt = fmt
        self.u = self.ctx.mpf(fmt.unit_roundoff.numerator) / fmt.unit_roundoff.denominator
        self.eta = self.ctx.mpf(fmt.min_subnormal.numerator) / fmt.min_subnormal.denominator / 2
        self.max_finite = self.ctx.mpf(fmt.max_finite.numerator) / fmt.max_finite.denominator
        if scalars not in SCALAR_PRECISIONS:
            raise ValueError(f"unknown scalar precision {scalars!r}; known: {', '.join(SCALAR_PRECISIONS)}")
        self.scalars = FORMATS[scalars]
        scalar_u = min(fmt.unit_roundoff, self.scalars.unit_roundoff)
        self.u_scalar = self.ctx.mpf(scalar_u.numerator) / scalar_u.denominator
        self.eta_scalar = min(self.eta, self.ctx.mpf(self.scalars.min_subnormal.numerator)
                              / self.scalars.min_subnormal.denominator / 2)
        top = self._scalar_format().max_finite
        self.max_scalar = self.ctx.mpf(top.numerator) / top.denominator
        self.basic = basic
        self.transcendental = transcendental
        self.limited = []  # reasons, in order of discovery: "overflow: ...", "underflow: ..."
        self._memo = {}  # operations on scalars (and hyperparameters) already computed: the same for every element

    # -- inputs -----------------------------------------------------------
    def input(self, x) -> B:
        """A value of the format: exact."""
        return B(self._mpf(x), self.ctx.zero)

    def initial(self, x) -> B:
        """A state's initial value (from a hyperparameter) stored in the format: one rounding.  A value past the
        format's largest (Muon's observed O, bfloat16, meeting a float16 parameter) is format-limited: what is
        computed from it may overflow there without another operation to round (θ·0 + (−1)·O)."""
        v = self._mpf(x)
        if self._representable(x, self.fmt):
            return B(v, self.ctx.zero)
        if abs(v) > self.max_finite:
            why = (f"overflow: a given value near {mpmath.nstr(v, 5)} exceeds the largest {self.fmt.name} "
                   f"{mpmath.nstr(self.max_finite, 5)}",)
            self.limited.append(why[0])
            return B(v, self.u * abs(v) + self.eta, why=why)
        return B(v, self.u * abs(v) + self.eta)

    def hyper(self, x) -> B:
        """A hyperparameter or literal (a binary64 value), a scalar; exact unless the scalars' format must round it.

        Scalars may be computed in float32 (torch's fused and capturable paths, Keras's float32
        ``1 − λ·lr``), so there a value float32 cannot hold is charged its rounding before any scalar
        operation, for float32 parameters too: with λ·lr near 1, ``1 − λ·lr`` amplifies it.
        """
        key = ("hyper", x)
        if key not in self._memo:
            v = self._mpf(x)
            self._memo[key] = (B(v, self.ctx.zero, True) if self._representable(x, self._scalar_format()) else
                               B(v, self.u_scalar * abs(v) + self.eta_scalar, True))
        return self._memo[key]

    def const(self, p: int, q: int) -> B:
        return self.hyper(Fraction(p, q))

    def _scalar_format(self):
        return self.scalars if self.u_scalar < self.u else self.fmt

    def _mpf(self, x):
        if isinstance(x, Fraction):
            return self.ctx.mpf(x.numerator) / x.denominator
        return self.ctx.mpf(x)

    def _representable(self, x, fmt) -> bool:
        x = Fraction(x)
        return x == 0 or exact(round_to_format(x, fmt)) == x

    def _operands(self, xs):
        """The operands, with scalars that meet tensor values charged their conversion to the format.

        An exact scalar that is a value of the format (0, 1, a representable lr) converts exactly.
        """
        if all(x.scalar for x in xs) or not any(x.scalar for x in xs):
            return xs
        return [B(x.v, x.e + self.u * abs(x.v) + self.eta) if x.scalar and not self._exact_in_format(x) else
                B(x.v, x.e) if x.scalar else x for x in xs]

    def _exact_in_format(self, x: B) -> bool:
        """``x`` is exact and a value of the format (mpf mantissas are odd: check its bits and exponents)."""
        if x.e != 0:
            return False
        _, man, exp, bc = x.v._mpf_
        if not man:
            return not exp  # 0 (exp 0), not inf or nan
        fmt = self.fmt
        return bc <= fmt.precision and exp + bc - 1 <= fmt.emax and exp >= fmt.emin - fmt.precision + 1

    @staticmethod
    def _is_exact_zero(x: B) -> bool:
        """Exactly 0 in every implementation: adding it or multiplying by it rounds nothing."""
        return x.v == 0 and x.e == 0

    def _round(self, v, e, c, scalar=False) -> B:
        """The result of an operation: propagated error ``e`` plus its own rounding."""
        if not self.ctx.isfinite(e):  # inf, or nan from 0·inf: unbounded either way
            return B(v, self.ctx.inf, scalar)
        if scalar:
            if abs(v) + e > self.max_scalar:  # the scalar is ±inf in the implementation: no finite bound
                top = self._scalar_format()
                out = self._unbounded(v, f"overflow: a scalar near {mpmath.nstr(v, 5)} exceeds the largest "
                                         f"{top.name} {mpmath.nstr(self.max_scalar, 5)}")
                return B(out.v, out.e, True, out.why)
            return B(v, e + c * (self.u_scalar * (abs(v) + e) + self.eta_scalar), True)
        if abs(v) + e > self.max_finite:
            self.limited.append(f"overflow: a value near {mpmath.nstr(v, 5)} exceeds the largest "
                                f"{self.fmt.name} {mpmath.nstr(self.max_finite, 5)}")
        return B(v, e + c * (self.u * (abs(v) + e) + self.eta))

    def _unbounded(self, v, why) -> B:
        self.limited.append(why)
        return B(v, self.ctx.inf, why=(why,))

    def step_counter(self, t) -> B:
        """The step counter: an exact integer scalar."""
        return B(self._mpf(t), self.ctx.zero, True)

    # -- arithmetic ---------------------------------------------------------
    @_tracked
    def add(self, *xs) -> B:
        xs = self._operands(xs)
        scalar = all(x.scalar for x in xs)
        # x + 0 is x exactly in IEEE arithmetic: exact zero terms take no rounding.
        nonzero = [x for x in xs if not self._is_exact_zero(x)]
        if len(nonzero) <= 1:
            return B(nonzero[0].v, nonzero[0].e, scalar) if nonzero else B(self.ctx.zero, self.ctx.zero, scalar)
        xs = nonzero
        v = self.ctx.fsum(x.v for x in xs)
        e = self.ctx.fsum(x.e for x in xs)
        out = self._round(v, e, self.basic, scalar)
        # n terms take n − 1 roundings; each partial sum is at most Σ|terms| (+ errors).
        partial = self.ctx.fsum(abs(x.v) for x in xs) + e
        u, eta = (self.u_scalar, self.eta_scalar) if scalar else (self.u, self.eta)
        for _ in range(len(xs) - 2):
            out = B(out.v, out.e + self.basic * (u * partial + eta), scalar)
        return out

    @_tracked
    def sub(self, a: B, b: B) -> B:
        return self.add(a, B(-b.v, b.e, b.scalar))

    @_tracked
    def neg(self, a: B) -> B:
        return B(-a.v, a.e, a.scalar)

    @_tracked
    def mul(self, *xs) -> B:
        scaling = len(xs) == 2 and xs[0].scalar != xs[1].scalar  # a scalar s times a tensor t
        if scaling:
            s_, t_ = (xs[0], xs[1]) if xs[0].scalar else (xs[1], xs[0])
        xs = self._operands(xs)
        scalar = all(x.scalar for x in xs)
        if any(self._is_exact_zero(x) for x in xs) and all(self.ctx.isfinite(x.e) for x in xs):
            return B(self.ctx.zero, self.ctx.zero, scalar)  # 0·finite = 0 exactly
        units = [x for x in xs if x.e == 0 and abs(x.v) == 1]  # x·(±1) = ±x exactly
        if units:
            sign = -1 if sum(x.v < 0 for x in units) % 2 else 1
            xs = [x for x in xs if not (x.e == 0 and abs(x.v) == 1)] or [B(self.ctx.one, self.ctx.zero, scalar)]
            xs[0] = B(sign * xs[0].v, xs[0].e, xs[0].scalar)
            if len(xs) == 1:
                return B(xs[0].v, xs[0].e, scalar)
        out = xs[0]
        for x in xs[1:]:
            v = out.v * x.v
            e = abs(out.v) * x.e + abs(x.v) * out.e + out.e * x.e
            if scaling and t_.quot is not None:
                e += self.basic * self.eta / t_.quot  # s·(x/d) computed as (s·x)/d: s·x's underflow, over |d|
            out = self._round(v, e, self.basic, out.scalar and x.scalar)
        if len(xs) >= 3 and not scalar and self.ctx.isfinite(out.e):
            out = dataclasses.replace(out, e=out.e + self._association(xs))
        if scaling and self.ctx.isfinite(out.e):
            out = dataclasses.replace(out, scale=abs(s_.v) + s_.e)
        return out

    def _association(self, xs):
        """What another order of a product of k ≥ 3 factors adds: each of its k − 2 intermediate products may
        underflow (c·η), amplified by the factors still to come, at most the k − 2 largest max(1, |x| + e)
        (NAdam's c·g/d, evaluated c·(g/d) by torch, where g/d is subnormal and c is 79)."""
        k = len(xs)
        big = sorted((max(self.ctx.one, abs(x.v) + x.e) for x in xs), reverse=True)[:k - 2]
        return (k - 2) * self.basic * self.eta * functools.reduce(lambda p, q: p * q, big, self.ctx.one)

    @_tracked
    def lerp(self, a: B, b: B, w: B) -> B:
        """``a + w·(b − a)``, evaluated by torch as ``a.lerp_(b, w)``, by others as ``(1 − w)·a + w·b``.

        The error of ``a`` enters (1 − w) times and that of ``b`` w times,
        whichever of the three forms an implementation evaluates (``a + w·(b − a)``;
        ``b − (1 − w)·(b − a)``, torch's lerp for w ≥ ½; ``β·a + (1 − β)·b`` with
        β = 1 − w).  Any of them rounds twice before the final sum, each time
        at most ``c·(u·W·S + η)`` with ``S = |a| + |b| + eₐ + e_b`` and
        ``W = max(|w|, |1 − w|) + e_w``, and the weight's error ``e_w``
        (its conversion to the format included) multiplies at most ``S``; the
        complementary weight β, if an implementation converts it to the
        format, adds ``c·u·|1 − w|·S``.
        """
        if all(x.scalar for x in (a, b, w)):
            return self.add(a, self.mul(w, self.sub(b, a)))
        if self._is_exact_zero(w) and self.ctx.isfinite(b.e):
            return B(a.v, a.e)  # a + 0·(b − a) = a exactly
        # No shortcut for a = b: β·a + (1 − β)·a need not be a when β and 1 − β are rounded separately.
        a, b, w = self._operands((a, b, w))
        if not all(self.ctx.isfinite(x.e) for x in (a, b, w)):
            return B(a.v + w.v * (b.v - a.v), self.ctx.inf)
        c = self.basic
        S = abs(a.v) + abs(b.v) + a.e + b.e
        if abs(b.v - a.v) + a.e + b.e > self.max_finite:
            self.limited.append(f"overflow: b − a in a lerp, near {mpmath.nstr(b.v - a.v, 5)}, exceeds the "
                                f"largest {self.fmt.name} {mpmath.nstr(self.max_finite, 5)}")
        W = max(abs(w.v), abs(1 - w.v)) + w.e
        e = (abs(1 - w.v) * a.e + abs(w.v) * b.e + w.e * S
             + 2 * c * (self.u * W * S * (1 + c * self.u) + self.eta) + c * self.u * abs(1 - w.v) * S)
        return self._round(a.v + w.v * (b.v - a.v), e, c)

    @_tracked
    def div(self, a: B, b: B) -> B:
        tensor_quotient = not a.scalar and not b.scalar
        a, b = self._operands((a, b))
        scalar = a.scalar and b.scalar
        if b.v == 0 and b.e == 0:
            return self._unbounded(self.ctx.nan, "division by an exact zero")
        if abs(b.v) <= b.e:
            return self._unbounded(a.v / b.v if b.v else self.ctx.nan,
                                   f"underflow: divisor {mpmath.nstr(b.v, 5)} is within its error "
                                   f"{mpmath.nstr(b.e, 3)} of zero in {self.fmt.name}")
        if self._is_exact_zero(a):
            return B(self.ctx.zero, self.ctx.zero, scalar)  # 0/b = 0 exactly for b ≠ 0
        if b.e == 0 and abs(b.v) == 1:  # a/(±1) = ±a exactly (ASGD's μ = 1/max(1, t − t₀) while t − t₀ ≤ 1)
            return B(a.v / b.v, a.e, scalar)
        v = a.v / b.v
        e = (a.e + abs(v) * b.e) / (abs(b.v) - b.e)
        if tensor_quotient and a.scale is not None:
            e += self.basic * self.eta * a.scale  # (s·x)/d computed as s·(x/d): x/d's underflow, times |s|
        out = self._round(v, e, self.basic, scalar)
        return dataclasses.replace(out, quot=abs(b.v) - b.e) if tensor_quotient else out

    @_tracked
    def sqrt(self, a: B) -> B:
        if a.v < 0:
            return self._unbounded(self.ctx.nan, "square root of a negative number")
        if self._is_exact_zero(a):
            return B(self.ctx.zero, self.ctx.zero, a.scalar)
        if a.e == 0:
            return self._round(self.ctx.sqrt(a.v), self.ctx.zero, self.basic, a.scalar)
        if a.v <= a.e:
            return self._unbounded(self.ctx.sqrt(a.v),
                                   f"underflow/cancellation: square-root argument {mpmath.nstr(a.v, 5)} is "
                                   f"within its error {mpmath.nstr(a.e, 3)} of zero (may be √negative)")
        r = self.ctx.sqrt(a.v)
        e = a.e / (r + self.ctx.sqrt(a.v - a.e))
        return self._round(r, e, self.basic, a.scalar)

    @_tracked
    def pow(self, a: B, b: B) -> B:
        a, b = self._operands((a, b))
        scalar = a.scalar and b.scalar
        if a.v <= 0:
            if a.v == 0 and a.e == 0 and b.v > 0:
                return B(self.ctx.zero, self.ctx.zero, scalar)
            return self._unbounded(self.ctx.nan, "power of a non-positive base")
        if a.e >= a.v:
            return self._unbounded(a.v ** b.v, "power of a base within its error of zero")
        v = a.v ** b.v
        # Mean-value bounds over the whole error box, so the bound is not only first-order.
        lo_a, hi_a = a.v - a.e, a.v + a.e
        lo_b, hi_b = b.v - b.e, b.v + b.e
        corners = [x ** y for x in (lo_a, hi_a) for y in (lo_b, hi_b)]
        e = max(abs(c - v) for c in corners)
        if lo_b < 0 < hi_b or (lo_a < 1 < hi_a):  # the extremes may be inside the box
            e = max(e, abs(b.v * v / a.v) * a.e * 2 + abs(v * self.ctx.log(a.v)) * b.e * 2)
        return self._round(v, e, self.transcendental, scalar)

    @_tracked
    def max(self, *xs) -> B:
        """Exact: the error of an operand the implementation may take, one whose interval reaches the largest
        one's (ASGD's max(1, t − t₀) with t − t₀ well below 1 is 1, exactly)."""
        xs = self._operands(xs)
        if any(self.ctx.isnan(x.v) for x in xs):  # NaN propagates, as torch.maximum and the exact reference
            return B(self.ctx.nan, self.ctx.inf, all(x.scalar for x in xs))
        top = max(x.v for x in xs)
        reach = top - min(x.e for x in xs if x.v == top)
        return B(top, max(x.e for x in xs if not x.v + x.e < reach), all(x.scalar for x in xs))

    @_tracked
    def min(self, *xs) -> B:
        xs = self._operands(xs)
        if any(self.ctx.isnan(x.v) for x in xs):
            return B(self.ctx.nan, self.ctx.inf, all(x.scalar for x in xs))
        low = min(x.v for x in xs)
        reach = low + min(x.e for x in xs if x.v == low)
        return B(low, max(x.e for x in xs if not x.v - x.e > reach), all(x.scalar for x in xs))

    @_tracked
    def abs(self, a: B) -> B:
        return B(abs(a.v), a.e, a.scalar)

    @_tracked
    def cos(self, a: B) -> B:
        return self._round(self.ctx.cos(a.v), min(a.e, 2 * self.ctx.one), self.transcendental, a.scalar)

    @_tracked
    def sin(self, a: B) -> B:
        return self._round(self.ctx.sin(a.v), min(a.e, 2 * self.ctx.one), self.transcendental, a.scalar)

    @_tracked
    def exp(self, a: B) -> B:
        v = self.ctx.exp(a.v)
        return self._round(v, v * (self.ctx.exp(a.e) - 1), self.transcendental, a.scalar)

    @_tracked
    def log(self, a: B) -> B:
        if a.v <= a.e:
            return self._unbounded(self.ctx.nan, "logarithm of a value within its error of zero")
        return self._round(self.ctx.log(a.v), self.ctx.log(a.v / (a.v - a.e)), self.transcendental, a.scalar)

    @_tracked
    def floor(self, a: B) -> B:
        v = self.ctx.floor(a.v)
        lo, hi = self.ctx.floor(a.v - a.e), self.ctx.floor(a.v + a.e)
        return B(v, max(v - lo, hi - v), a.scalar)

    @_tracked
    def ceil(self, a: B) -> B:
        v = self.ctx.ceil(a.v)
        lo, hi = self.ctx.ceil(a.v - a.e), self.ctx.ceil(a.v + a.e)
        return B(v, max(v - lo, hi - v), a.scalar)

    @_tracked
    def mod(self, a: B, b: B) -> B:
        return self.sub(a, self.mul(b, self.floor(self.div(a, b))))

    # -- comparisons and branches -------------------------------------------------
    def _cmp(self, holds: bool, a: B, b: B) -> Cond:
        margin = a.e + b.e
        return Cond(bool(holds), bool(margin > 0 and abs(a.v - b.v) <= margin))

    @_tracked
    def gt(self, a, b):
        return self._cmp(a.v > b.v, a, b)

    @_tracked
    def lt(self, a, b):
        return self._cmp(a.v < b.v, a, b)

    @_tracked
    def ge(self, a, b):
        return self._cmp(a.v >= b.v, a, b)

    @_tracked
    def le(self, a, b):
        return self._cmp(a.v <= b.v, a, b)

    @_tracked
    def eq(self, a, b):
        c = self._cmp(a.v == b.v, a, b)
        return Cond(c.holds, c.ambiguous and not (a.e == 0 and b.e == 0))

    @_tracked
    def ne(self, a, b):
        c = self.eq(a, b)
        return Cond(not c.holds, c.ambiguous)

    @_tracked
    def all_(self, *cs):
        return Cond(all(c.holds for c in cs), any(c.ambiguous for c in cs))

    @_tracked
    def any_(self, *cs):
        return Cond(any(c.holds for c in cs), any(c.ambiguous for c in cs))

    def select(self, cond: Cond, then: B, otherwise: B) -> B:
        """The branch taken; only its reasons (and the condition's) are the result's, unless ambiguous."""
        taken, other = (then, otherwise) if cond.holds else (otherwise, then)
        if not cond.ambiguous:
            return dataclasses.replace(taken, why=_union(cond.why, taken.why))
        why = _union(cond.why, taken.why, other.why)
        if self.ctx.isnan(other.v):
            out = self._unbounded(taken.v, "a branch condition is within rounding of its threshold "
                                           "and the other branch is not real")
            return dataclasses.replace(out, why=_union(why, out.why))
        if not (self.ctx.isfinite(taken.v) and self.ctx.isfinite(other.v)):
            if taken.v == other.v:  # the same infinity either way
                return B(taken.v, max(taken.e, other.e), taken.scalar and other.scalar, why)
            # the branches differ in IEEE class (ASGD's copy ā = θ = −inf where ā + μ·(θ − ā) is NaN, with μ a
            # float32 that rounds to 1): the implementation may take either, and no finite bound says which
            out = self._unbounded(taken.v, "a branch condition is within rounding of its threshold "
                                           "and its branches differ in IEEE class")
            return dataclasses.replace(out, why=_union(why, out.why))
        return B(taken.v, max(taken.e, abs(other.v - taken.v) + other.e), taken.scalar and other.scalar, why)


@dataclass
class ElementBound:
    """The error bound of one output element at one step, and why it may be format-limited."""

    error: object  # mpf bound on |implementation − exact|; +inf when unbounded
    limited: tuple  # reasons the format cannot represent this computation (of this output) faithfully
    finite_inputs: bool = True


def trajectory_bounds(spec, hyper: dict, param, grads, fmt: Format, *, state=None, step: int = 0, lrs=None,
                      hypers=None, validate: bool = True, scalars: str = "float32", observed=None) -> list:
    """Per step, a dict output name → object array of ``ElementBound``, for the spec run in ``fmt``.

    Mirrors ``reference.step.trajectory`` (the same driver, ``reference.driver``):
    the error of the parameter and the state carries from step to step, so the
    bound at step k is for a trajectory of k steps computed entirely in ``fmt``.
    ``lrs`` and ``hypers`` (hyperparameters changed before a step, e.g. a
    scheduled lr or momentum) mean what they mean there
    (``reference.step.hyper_schedule``).  State the caller gives, like a spec's
    initial value, is exact where it is a value of the format and charged one
    rounding to it otherwise (``initial``): torch keeps NAdam's mu_product and
    ASGD's η and μ in float32 whatever the parameter's dtype, and a float16
    step rounds them (ASGD's ``add_(grad, alpha=-η)``).
    ``scalars``: the format the implementation computes per-step scalars in
    (``SCALAR_PRECISIONS``).  ``observed``: each step's observed state (``State.observed``), as in
    ``reference.step.trajectory``; a value the implementation reported, charged like given state (``initial``).
    """
    run = prepare(spec, hyper, param, grads, state=state, step=step, lrs=lrs, hypers=hypers, validate=validate,
                  observed=observed)
    program = run.program

    O = Bound(fmt, scalars=scalars)  # one for every element: its scalar operations are computed once
    if spec.reduces:
        return _tensor_bounds(run, O)

    def element_trajectory(start, element_grads):
        # Once an input is not finite there is no bound: the check compares IEEE classes.  The step still runs on
        # the values (``_shadow``), for one thing only: a branch whose condition is within the implementation's
        # rounding of its threshold (ASGD's μ, a float32 that rounds to 1) and whose two sides differ in class
        # (copy −inf, or ā + μ·(θ − ā) = NaN): there the implementation may give either class.
        finite = all(is_finite(v) for v in start.values())
        try:
            current = (finite, {k: O.input(v) if k == "theta" else O.initial(v) for k, v in start.items()})
        except (ValueError, OverflowError):  # a non-finite start that the format's conversion refuses
            current = (False, {})

        def advance(current, g, t, h):
            finite, values = current
            inputs = {**values, "g": O.input(g), "t": O.step_counter(t), **{k: O.hyper(v) for k, v in h.items()}}
            if finite and is_finite(g):
                return True, program(O, inputs)
            return False, _shadow(program, O, inputs)

        def row(current):
            finite, values = current
            if not finite:
                return {n: ElementBound(mpmath.inf, ("non-finite input", *_either_class(values, n)),
                                        finite_inputs=False) for n in program.outputs}
            return {n: ElementBound(values[n].e, values[n].why) for n in program.outputs}

        return steps(advance, row, current, element_grads, run.hypers, run.ts)

    return run.per_element(element_trajectory)


#: The start of the reasons ``Bound.select`` gives where a branch condition is within rounding of its threshold and
#: the other side is not real or differs in IEEE class.
EITHER_BRANCH = "a branch condition is within rounding of its threshold and "


def _shadow(program, O: "Bound", inputs: dict) -> dict:
    """The step on values some of which are not finite, for the reasons it records (``_either_class``); an
    arithmetic that refuses such a value leaves none (the check then compares classes as it always does)."""
    try:
        return program(O, inputs)
    except Exception:  # noqa: BLE001 - mpmath on ±inf/NaN in an operation Bound never meets otherwise
        return {}


def _either_class(values: dict, name: str) -> tuple:
    """The reasons of output ``name`` of a shadow step saying that its class may be either branch's."""
    b = values.get(name)
    return tuple(w for w in (b.why if isinstance(b, B) else ()) if w.startswith(EITHER_BRANCH))


def _tensor_bounds(run, O: "Bound") -> list:
    """``trajectory_bounds`` for a spec that reduces (``reference.tensor.Lifted``): the whole tensor steps at once,
    and a non-finite input anywhere leaves every element without a bound from that step on (a reduction mixes
    them all)."""
    program, shape = run.program, run.shape
    L = Lifted(O, shape)
    current = None
    start = {"theta": run.theta, **run.state}
    if all_finite(start.values()):
        current = {k: L.each(O.input if k == "theta" else O.initial, v) for k, v in start.items()}

    def advance(current, g, t, h):
        if current is None or not all_finite([g]):
            return None
        return program(L, {**current, "g": L.each(O.input, g), "t": O.step_counter(t),
                           **{k: O.hyper(v) for k, v in h.items()}})

    def row(current):
        if current is None:
            unbounded = ElementBound(mpmath.inf, ("non-finite input",), finite_inputs=False)
            return {n: object_array(unbounded, shape) for n in program.outputs}
        return {n: L.each(lambda b: ElementBound(b.e, b.why), object_array(current[n], shape))
                for n in program.outputs}

    def observe(current, values):  # an observed value of the step: like given state (exact, or one rounding)
        if current is None or not all_finite(values.values()):
            return None
        return {**current, **{k: L.each(O.initial, v) for k, v in values.items()}}

    return steps(advance, row, current, run.grads, run.hypers, run.ts, run.observed, observe)
