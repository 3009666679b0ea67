"""Correct rounding of whole binary64 arrays to a binary format, in one step.

``round_array(x, fmt)`` is ``formats.round_to_format`` applied to every element
of a float64 array (round to nearest, ties to even, IEEE overflow and gradual
underflow), vectorised: each element is scaled by a power of two so that one
ulp of ``fmt`` at its binade is 1, rounded to an integer by ``np.rint`` (ties
to even) and scaled back.  Both scalings are exact in binary64 for every
format here, so the only rounding is the one to ``fmt``: never a detour
through float32, whose double rounding is wrong near ties
(1 + 2⁻⁸ + 2⁻³⁰ → bfloat16 is 1.0078125, through float32 it is 1.0).
Float32 itself is IEEE's binary64 → binary32 conversion, which is one
correct rounding (checked against ``round_to_format`` in the tests).
"""
from __future__ import annotations

import numpy as np

try:  # np.count_nonzero without its Python wrapper, which costs as much as the count on small arrays
    from numpy._core.multiarray import count_nonzero as _count_nonzero
except ImportError:  # pragma: no cover - other NumPy layouts
    _count_nonzero = np.count_nonzero

from .formats import Format, get_format


def round_array(x, fmt) -> np.ndarray:
    """``x`` (float64 array) correctly rounded, element by element, to ``fmt``; an array of ``fmt.dtype``.

    ±0, ±inf and NaN are kept (a NaN becomes the format's NaN); a value that
    rounds to zero keeps its sign, as ``round_to_format`` does.
    """
    fmt = get_format(fmt)
    x = np.asarray(x, dtype=np.float64)
    return round_exact(x, fmt).astype(fmt.dtype)  # exact: every value is already one of fmt's


def some(mask) -> bool:
    """``mask.any()`` (a bool array, or one bool): ``np.count_nonzero``, which is cheaper on small arrays."""
    return _count_nonzero(mask) != 0


def has_zero(x) -> bool:
    """``(x == 0).any()`` for a float array (NaN is not 0), without the temporary mask."""
    return _count_nonzero(x) != np.size(x)


def next_toward(x: np.ndarray, up: bool) -> np.ndarray:
    """``np.nextafter(x, ±inf)`` bit for bit (float64 array; ``up``: toward +inf), about 4× faster on finite values.

    A finite non-zero float64's neighbour away from or toward zero is its bit pattern, read as an integer, plus or
    minus 1; ±0, ±inf and NaN (where that is wrong) are left to ``np.nextafter`` itself.
    """
    x = np.asarray(x, dtype=np.float64)
    i = x.view(np.int64)
    step = (i >> 63) | 1  # −1 for a negative value, 1 otherwise: away from zero for +1
    y = (i + step if up else i - step).view(np.float64)
    odd = ~np.isfinite(x) | (x == 0)
    if some(odd):
        y = np.where(odd, np.nextafter(x, np.inf if up else -np.inf), y)
    return y


def round_exact(x: np.ndarray, fmt: Format, quiet: bool = False) -> np.ndarray:
    """``round_array`` as float64 values (each exactly a value of ``fmt``, or ±inf/NaN).

    ``quiet``: the caller has already silenced NumPy's overflow warnings (``np.errstate``), which then costs
    more than a float32 rounding of a small array to enter again."""
    if fmt.precision == 53:
        return np.array(x, dtype=np.float64)
    if fmt.name == "float32":  # IEEE's float64 → float32 conversion is one correct rounding (and 4× faster)
        if quiet:
            return x.astype(np.float32).astype(np.float64)
        with np.errstate(over="ignore"):
            return x.astype(np.float32).astype(np.float64)
    _, e = np.frexp(x)  # |x| = m·2^e with ½ ≤ m < 1, so the binade is 2^(e−1); 0 for 0, inf, nan
    k = np.maximum(e - 1, fmt.emin) - (fmt.precision - 1)  # exponent of one ulp of fmt at x
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.ldexp(np.rint(np.ldexp(x, -k)), k)  # the scalings are exact: no under- or overflow in binary64
        top = float(fmt.max_finite)
        y = np.where(np.abs(y) > top, np.copysign(np.inf, x), y)
    return np.where(np.isfinite(x), y, x)
