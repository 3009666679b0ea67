"""Binary IEEE 754 floating-point formats, handled exactly.

Every format value maps to an exact rational (``exact``) and every exact real
(``Fraction``, ``int`` or ``mpmath.mpf`` of any precision) maps to its correctly
rounded format value (``round_to_format``, round-to-nearest ties-to-even, with
IEEE overflow and gradual underflow).  Rounding is done with integer arithmetic
straight to the target format, never through float64, because rounding twice
(exact -> float64 -> float16) is wrong near halfway points.

Values are numpy scalars of the format's dtype (``ml_dtypes.bfloat16`` for
bfloat16).  ``to_hex``/``from_hex`` print and replay them exactly as C99
hex-float text, which is how failing inputs are reported.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import ml_dtypes
import mpmath
import numpy as np

__all__ = [
    "Format",
    "FORMATS",
    "get_format",
    "exact",
    "is_negative_zero",
    "round_to_format",
    "bits",
    "from_bits",
    "to_hex",
    "from_hex",
    "next_up",
    "next_down",
]

_UINT = {16: np.uint16, 32: np.uint32, 64: np.uint64}


@dataclass(frozen=True)
class Format:
    """A binary interchange format: p significand bits, exponents emin..emax.

    ``precision`` counts the implicit leading bit; ``emin``/``emax`` are the
    unbiased exponents of the smallest normal and the largest finite value.
    The IEEE layout (sign | exponent | fraction, ``emin == 1 - emax``) is
    assumed and checked.
    """

    name: str
    precision: int
    emin: int
    emax: int
    dtype: np.dtype

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.emin != 1 - self.emax:
            raise ValueError(f"{self.name}: emin must be 1 - emax for an IEEE layout")
        if self.dtype.itemsize * 8 != self.width:
            raise ValueError(f"{self.name}: dtype {self.dtype} does not hold {self.width} bits")

    @property
    def exponent_bits(self) -> int:
        """Width of the biased exponent field."""
        return (self.emax + 1).bit_length()

    @property
    def width(self) -> int:
        """Total storage bits: sign + exponent + (precision - 1) fraction bits."""
        return self.exponent_bits + self.precision

    @property
    def inf_bits(self) -> int:
        """Bit pattern of +inf; positive patterns above it are NaN."""
        return ((1 << self.exponent_bits) - 1) << (self.precision - 1)

    @property
    def unit_roundoff(self) -> Fraction:
        """u = 2**-precision: the relative error bound of round-to-nearest."""
        return Fraction(1, 1 << self.precision)

    @property
    def max_finite(self) -> Fraction:
        """(2 - 2**(1 - precision)) * 2**emax."""
        return _pow2(self.emax + 1) - _pow2(self.emax - self.precision + 1)

    @property
    def min_normal(self) -> Fraction:
        """2**emin."""
        return _pow2(self.emin)

    @property
    def min_subnormal(self) -> Fraction:
        """2**(emin - precision + 1), the smallest positive value."""
        return _pow2(self.emin - self.precision + 1)

    def ulp(self, x) -> Fraction:
        """Spacing of the format at the exact real ``x``.

        2**(max(e, emin) - precision + 1) where 2**e <= |x| < 2**(e+1);
        ``ulp(0)`` is ``min_subnormal``; for |x| >= 2**(emax+1) (infinities
        included) it is the ulp of ``max_finite``.  NaN raises ValueError.
        """
        parts = _parts(x)
        if isinstance(parts, float):
            if math.isnan(parts):
                raise ValueError("ulp of NaN")
            e = self.emax
        else:
            _, num, den, exp2 = parts
            e = self.emin if num == 0 else min(exp2 + _floor_log2(num, den), self.emax)
        return _pow2(max(e, self.emin) - self.precision + 1)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("float16", 11, -14, 15, np.dtype(np.float16)),
        Format("bfloat16", 8, -126, 127, np.dtype(ml_dtypes.bfloat16)),
        Format("float32", 24, -126, 127, np.dtype(np.float32)),
        Format("float64", 53, -1022, 1023, np.dtype(np.float64)),
    )
}


def get_format(name_or_dtype) -> Format:
    """The Format for a name ('float16', ...), a numpy dtype, a dtype name or type."""
    if isinstance(name_or_dtype, Format):
        return name_or_dtype
    if isinstance(name_or_dtype, str) and name_or_dtype in FORMATS:
        return FORMATS[name_or_dtype]
    try:
        name = np.dtype(name_or_dtype).name
    except TypeError as err:
        raise ValueError(f"not a floating-point format: {name_or_dtype!r}") from err
    if name not in FORMATS:
        raise ValueError(f"not a supported floating-point format: {name_or_dtype!r}")
    return FORMATS[name]


# ----------------------------------------------------------------------------
# Exact values of format values


def exact(x) -> Union[Fraction, float]:
    """Exact rational value of a binary float or an integer.

    ``x`` is a numpy scalar (or 0-d array) of float16/bfloat16/float32/float64,
    a Python float, or an int.  Non-finite values are returned as the floats
    nan/inf/-inf; both zeros give Fraction(0) (see ``is_negative_zero``).
    """
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, (numbers.Integral, np.integer)):
        return Fraction(int(x))
    if isinstance(x, float):  # Python float (np.float64 is a subclass; same bits)
        x = np.float64(x)
    if isinstance(x, np.generic) and x.dtype.name in FORMATS:
        fmt = FORMATS[x.dtype.name]
        return _decode(int(x.view(_UINT[fmt.width])), fmt)
    raise TypeError(f"exact() needs a binary float or int, got {type(x).__name__}")


def is_negative_zero(x) -> bool:
    """True for a -0.0 float (numpy scalar of a supported dtype or Python float)."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, float):
        return x == 0.0 and math.copysign(1.0, x) < 0
    if isinstance(x, np.generic) and x.dtype.name in FORMATS:
        fmt = FORMATS[x.dtype.name]
        return int(x.view(_UINT[fmt.width])) == 1 << (fmt.width - 1)
    return False


def _decode(b: int, fmt: Format) -> Union[Fraction, float]:
    """Exact value of bit pattern ``b``."""
    sign = -1 if b >> (fmt.width - 1) else 1
    mag = b & ((1 << (fmt.width - 1)) - 1)
    if mag >= fmt.inf_bits:
        return sign * math.inf if mag == fmt.inf_bits else math.nan
    frac_bits = fmt.precision - 1
    biased, frac = mag >> frac_bits, mag & ((1 << frac_bits) - 1)
    # Subnormals (biased 0) share emin with biased 1 but lack the implicit bit.
    significand = frac | (1 << frac_bits) if biased else frac
    exponent = max(biased, 1) - fmt.emax - frac_bits
    return sign * significand * _pow2(exponent)


# ----------------------------------------------------------------------------
# Correct rounding


def round_to_format(value, fmt) -> np.generic:
    """``value`` correctly rounded to ``fmt`` (round to nearest, ties to even).

    ``value`` is an exact real: Fraction, int, mpmath.mpf (any precision), or a
    binary float (whose exact value is used).  mpf/float inf and nan map to
    inf and nan.  Values >= max_finite + ulp/2 in magnitude become inf
    (the halfway point too: max_finite has an odd significand).  Values of
    magnitude <= min_subnormal/2 become a zero with the sign of the value;
    subnormals are kept.  Returns a numpy scalar of ``fmt.dtype``.
    """
    fmt = get_format(fmt)
    parts = _parts(value)
    if isinstance(parts, float):
        return _special(parts, fmt)
    b, _ = _round_bits(parts, fmt)
    return from_bits(b, fmt)


def _round_bits(parts, fmt: Format) -> tuple[int, bool]:
    """Bit pattern of the correctly rounded value and whether it is inexact."""
    neg, num, den, exp2 = parts
    sign = int(neg) << (fmt.width - 1)
    if num == 0:
        return sign, False
    p = fmt.precision
    e = exp2 + _floor_log2(num, den)
    # Far outside the range: decide without building huge integers.
    if e > fmt.emax + 1:
        return sign | fmt.inf_bits, True
    if e < fmt.emin - p:  # below min_subnormal / 2
        return sign, True
    exponent = max(e, fmt.emin)
    shift = exp2 - (exponent - p + 1)  # scale so that one ulp is 1
    n, d = (num << shift, den) if shift >= 0 else (num, den << -shift)
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    # With the exponent field counted from emin, the magnitude pattern is
    # (exponent - emin) * 2**(p-1) + q for normals and subnormals alike, and a
    # carry out of q (q == 2**p) lands on the next binade automatically.
    mag = ((exponent - fmt.emin) << (p - 1)) + q
    if mag >= fmt.inf_bits:
        return sign | fmt.inf_bits, True
    return sign | mag, r != 0


def _special(x: float, fmt: Format) -> np.generic:
    """nan (canonical quiet NaN) or signed inf of ``fmt``."""
    if math.isnan(x):
        return from_bits(fmt.inf_bits | (1 << (fmt.precision - 2)), fmt)
    return from_bits((x < 0) << (fmt.width - 1) | fmt.inf_bits, fmt)


# ----------------------------------------------------------------------------
# Bits


def bits(x, fmt=None) -> int:
    """Bit pattern (unsigned Python int) of format value ``x``.

    ``x`` is a numpy scalar of ``fmt.dtype``, or any float/int whose value is
    exactly representable in ``fmt`` (else ValueError).  ``fmt`` defaults to
    the dtype of ``x`` (float64 for a Python float).
    """
    fmt, v = _coerce(x, fmt)
    return int(v.view(_UINT[fmt.width]))


def from_bits(b: int, fmt) -> np.generic:
    """The numpy scalar of ``fmt.dtype`` whose bit pattern is ``b``."""
    fmt = get_format(fmt)
    if not 0 <= b < 1 << fmt.width:
        raise ValueError(f"{b:#x} is not a {fmt.width}-bit pattern")
    return np.array(b, dtype=_UINT[fmt.width]).view(fmt.dtype)[()]


def _coerce(x, fmt) -> tuple[Format, np.generic]:
    """(format, numpy scalar of it) for a value that must be exact in the format."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if fmt is None:
        if isinstance(x, np.generic) and x.dtype.name in FORMATS:
            fmt = FORMATS[x.dtype.name]
        elif isinstance(x, (float, int)):
            fmt = FORMATS["float64"]
        else:
            raise TypeError(f"cannot infer a format for {type(x).__name__}")
    fmt = get_format(fmt)
    if isinstance(x, np.generic) and x.dtype == fmt.dtype:
        return fmt, x
    parts = _parts(x)
    if isinstance(parts, float):
        return fmt, _special(parts, fmt)
    b, inexact = _round_bits(parts, fmt)
    if inexact:
        raise ValueError(f"{x!r} is not exactly representable in {fmt.name}")
    return fmt, from_bits(b, fmt)


# ----------------------------------------------------------------------------
# Hex-float text

_HEX = re.compile(r"([+-]?)0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?[0-9]+))?", re.IGNORECASE)
_SPECIAL = re.compile(r"([+-]?)(inf|infinity|nan)", re.IGNORECASE)


def to_hex(x) -> str:
    """C99 hex-float text of the exact value of ``x``, e.g. '-0x1.8p-3'.

    Finite nonzero values are written normalized ('0x1.<hex>p<exp>', trailing
    zero digits dropped, subnormals included), so the text depends only on the
    value.  Zeros are '0x0p+0' / '-0x0p+0'; specials 'inf', '-inf', 'nan'.
    ``x`` may also be a dyadic Fraction, an int or an mpf.
    """
    parts = _parts(x)
    if isinstance(parts, float):
        return "nan" if math.isnan(parts) else ("-inf" if parts < 0 else "inf")
    neg, num, den, exp2 = parts
    sign = "-" if neg else ""
    if num == 0:
        return sign + "0x0p+0"
    if den & (den - 1):
        raise ValueError(f"{x!r} is not a dyadic rational; it has no exact hex form")
    exp2 -= den.bit_length() - 1
    tz = (num & -num).bit_length() - 1  # strip trailing zero bits: num odd
    num, exp2 = num >> tz, exp2 + tz
    n = num.bit_length() - 1  # fraction bits after the leading 1
    digits = -(-n // 4)
    frac = (num - (1 << n)) << (4 * digits - n)
    body = f"1.{frac:0{digits}x}" if digits else "1"
    return f"{sign}0x{body}p{exp2 + n:+d}"


def from_hex(text: str, fmt) -> np.generic:
    """The ``fmt`` value written as C99 hex-float ``text`` (or inf/nan).

    Accepts what ``to_hex`` and ``float.hex`` write: optional sign, '0x',
    hex digits with an optional point, optional 'p' binary exponent.  Raises
    ValueError if the text is malformed or its value is not exactly
    representable in ``fmt`` (no silent rounding: replayed inputs must be the
    exact inputs that failed).
    """
    fmt = get_format(fmt)
    s = text.strip()
    m = _SPECIAL.fullmatch(s)
    if m:
        value = math.nan if m.group(2).lower() == "nan" else math.inf
        return _special(-value if m.group(1) == "-" else value, fmt)
    m = _HEX.fullmatch(s)
    if not m or not (m.group(2) or m.group(3)):
        raise ValueError(f"not a hex float: {text!r}")
    whole, frac, exp = m.group(2), m.group(3) or "", m.group(4) or "0"
    num = int(whole + frac, 16) if whole + frac else 0
    parts = (m.group(1) == "-", num, 1, int(exp) - 4 * len(frac))
    b, inexact = _round_bits(parts, fmt)
    if inexact:
        raise ValueError(f"{text!r} is not exactly representable in {fmt.name}")
    return from_bits(b, fmt)


# ----------------------------------------------------------------------------
# Neighbours


def next_up(x, fmt=None) -> np.generic:
    """Least format value greater than ``x`` (IEEE nextUp).

    nextUp(±0) = min_subnormal, nextUp(-min_subnormal) = -0,
    nextUp(max_finite) = inf, nextUp(inf) = inf, nextUp(-inf) = -max_finite,
    nextUp(nan) = nan.
    """
    fmt, v = _coerce(x, fmt)
    b = int(v.view(_UINT[fmt.width]))
    sign = 1 << (fmt.width - 1)
    mag = b & (sign - 1)
    if mag > fmt.inf_bits or b == fmt.inf_bits:  # nan, +inf
        return v
    if mag == 0:
        return from_bits(1, fmt)
    return from_bits(b - 1 if b & sign else b + 1, fmt)


def next_down(x, fmt=None) -> np.generic:
    """Greatest format value less than ``x`` (IEEE nextDown): -next_up(-x)."""
    fmt, v = _coerce(x, fmt)
    return -next_up(-v, fmt)


# ----------------------------------------------------------------------------
# Internals


def _pow2(k: int) -> Fraction:
    return Fraction(1 << k) if k >= 0 else Fraction(1, 1 << -k)


def _floor_log2(num: int, den: int) -> int:
    """floor(log2(num / den)) for positive integers."""
    e = num.bit_length() - den.bit_length()
    # num/den lies in [2**(e-1), 2**(e+1)); one comparison settles it.
    below = num < (den << e) if e >= 0 else (num << -e) < den
    return e - 1 if below else e


def _parts(x):
    """Split an exact real into (negative, num, den, exp2): value = ±num/den*2**exp2.

    Non-finite inputs come back as the floats nan/inf/-inf.  mpf values stay
    dyadic (den 1) so huge exponents never build huge integers here.
    """
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, mpmath.mpf):
        if mpmath.isnan(x) or mpmath.isinf(x):
            return float(x)
        sign, man, exp2, _ = x._mpf_
        return bool(sign), int(man), 1, int(exp2)
    if isinstance(x, numbers.Rational) and not isinstance(x, bool):
        q = Fraction(x)
        return q < 0, abs(q.numerator), q.denominator, 0
    if isinstance(x, (float, np.generic)):
        v = exact(x)
        if isinstance(v, float):
            return v
        return (v < 0 or is_negative_zero(x)), abs(v.numerator), v.denominator, 0
    raise TypeError(f"not an exact real: {type(x).__name__}")
