"""Error metrics between a computed format value and an exact or computed one.

``ulp_error`` measures a result against the exact real it approximates, in
units of the format's spacing at that real (a correctly rounded result is
within 0.5).  ``ulp_distance`` counts the format values between two results
(0 = bitwise-equal up to the sign of zero), via ``ordinal``.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Union

from .formats import _coerce, _floor_log2, _parts, bits, exact, from_bits, get_format, round_to_format

__all__ = ["ulp_error", "ordinal", "from_ordinal", "ulp_distance"]

# Binades past the format's range beyond which ulp_error stops using the exact
# value itself: the float result is then known (inf) or unchanged by a small
# proxy.  This keeps mpf values such as 2**(10**9) from building huge
# Fractions.  1100 exceeds the 1074 binades below 1.0 that a float resolves.
_MARGIN = 1100


def ulp_error(computed, exact_value, fmt) -> float:
    """|computed - exact_value| / fmt.ulp(exact_value), as a Python float.

    ``computed`` is a value of ``fmt`` (numpy scalar, or a float exactly
    representable in ``fmt``); ``exact_value`` is the unrounded real
    (Fraction, int, mpmath.mpf, a binary float) or nan/±inf for a special
    exact result.  The ratio is computed exactly and rounded once to float
    (inf if it exceeds the float range; never raises).  Rules:

    * both NaN -> 0.0; exactly one NaN -> inf;
    * computed ±inf equal to exact ±inf -> 0.0; infinities of opposite sign,
      or a finite computed value against an infinite exact one -> inf;
    * computed ±inf against a finite exact value -> 0.0 if that inf is the
      correctly rounded result (overflow is the right answer), else inf;
    * +0 and -0 are the same value.
    """
    fmt, c = _coerce(computed, get_format(fmt))
    c = exact(c)
    v = _parts(exact_value)
    c_nan = isinstance(c, float) and math.isnan(c)
    v_nan = isinstance(v, float) and math.isnan(v)
    if c_nan or v_nan:
        return 0.0 if c_nan and v_nan else math.inf
    if isinstance(v, float):  # exact ±inf
        return 0.0 if c == v else math.inf
    if isinstance(c, float):  # computed ±inf, exact finite
        return 0.0 if exact(round_to_format(exact_value, fmt)) == c else math.inf
    neg, num, den, exp2 = v
    if num == 0:
        return _to_float(abs(c) / fmt.min_subnormal)
    e = exp2 + _floor_log2(num, den)
    if e > fmt.emax + _MARGIN:
        # |c| < 2**(emax+1) <= |v|/2, so the ratio is > 2**(e-1) / ulp(max_finite)
        # > 2**1024: it overflows a float.
        return math.inf
    ulp_exp = max(e, fmt.emin) - fmt.precision + 1
    if e < ulp_exp - _MARGIN:
        # |v| / ulp < 2**-1100: c is a multiple of min_subnormal, so only the
        # sign of v can change how the float result rounds; keep just that.
        num, den, exp2 = 1, 1, ulp_exp - _MARGIN
    v_exact = Fraction(num * (1 << max(exp2, 0)), den << max(-exp2, 0))
    diff = abs(c - (-v_exact if neg else v_exact))
    return _to_float(diff / fmt.ulp(v_exact))


def ordinal(x, fmt=None) -> int:
    """Position of format value ``x`` on the number line, as a Python int.

    Consecutive format values have consecutive ordinals: ±0 -> 0,
    ±min_subnormal -> ±1, ±max_finite -> ±N, ±inf -> ±(N + 1).  NaN raises
    ValueError.  ``fmt`` defaults to the dtype of ``x``.
    """
    fmt, v = _coerce(x, fmt)
    b = bits(v, fmt)
    sign = 1 << (fmt.width - 1)
    mag = b & (sign - 1)
    if mag > fmt.inf_bits:
        raise ValueError("NaN has no ordinal")
    # IEEE magnitudes are ordered like their bit patterns, inf just past max.
    return -mag if b & sign else mag


def from_ordinal(n: int, fmt):
    """The format value with ordinal ``n`` (inverse of ``ordinal``; 0 -> +0)."""
    fmt = get_format(fmt)
    if abs(n) > fmt.inf_bits:
        raise ValueError(f"ordinal {n} is beyond ±inf of {fmt.name}")
    return from_bits(-n | (1 << (fmt.width - 1)) if n < 0 else n, fmt)


def ulp_distance(a, b, fmt=None) -> Union[int, float]:
    """|ordinal(a) - ordinal(b)|: how many format steps apart ``a`` and ``b`` are.

    NaN vs NaN -> 0; NaN vs non-NaN -> math.inf; ±inf sit one step beyond
    ±max_finite; +0 and -0 are 0 apart.  ``fmt`` defaults to the dtype of ``a``.
    """
    fmt, a = _coerce(a, fmt)
    _, b = _coerce(b, fmt)
    a_nan, b_nan = _is_nan(a), _is_nan(b)
    if a_nan or b_nan:
        return 0 if a_nan and b_nan else math.inf
    return abs(ordinal(a, fmt) - ordinal(b, fmt))


def _is_nan(x) -> bool:
    v = exact(x)
    return isinstance(v, float) and math.isnan(v)


def _to_float(q: Fraction) -> float:
    """q rounded once to a float; inf when beyond the float range."""
    try:
        return float(q)
    except OverflowError:
        return math.inf
