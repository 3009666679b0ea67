"""Tests for reference.formats: exact values, correct rounding, bits, hex text."""
from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import from_dtype

from reference.formats import (
    FORMATS,
    bits,
    exact,
    from_bits,
    from_hex,
    get_format,
    is_negative_zero,
    next_down,
    next_up,
    round_to_format,
    to_hex,
)

NAMES = ["float16", "bfloat16", "float32", "float64"]

# Hand-picked values per format, written as hex floats so that a reader can
# check them against the format's definition digit by digit.
HARD = {
    "float16": dict(
        max="0x1.ffcp+15", min_normal="0x1p-14", min_sub="0x1p-24",
        max_sub="0x1.ff8p-15", one_up="0x1.004p+0", one_down="0x1.ffcp-1",
        overflow_half="0x1.ffep+15",
        max_bits=0x7BFF, one_bits=0x3C00, inf_bits=0x7C00,
    ),
    "bfloat16": dict(
        max="0x1.fep+127", min_normal="0x1p-126", min_sub="0x1p-133",
        max_sub="0x1.fcp-127", one_up="0x1.02p+0", one_down="0x1.fep-1",
        overflow_half="0x1.ffp+127",
        max_bits=0x7F7F, one_bits=0x3F80, inf_bits=0x7F80,
    ),
    "float32": dict(
        max="0x1.fffffep+127", min_normal="0x1p-126", min_sub="0x1p-149",
        max_sub="0x1.fffffcp-127", one_up="0x1.000002p+0", one_down="0x1.fffffep-1",
        overflow_half="0x1.ffffffp+127",
        max_bits=0x7F7FFFFF, one_bits=0x3F800000, inf_bits=0x7F800000,
    ),
    "float64": dict(
        max="0x1.fffffffffffffp+1023", min_normal="0x1p-1022", min_sub="0x1p-1074",
        max_sub="0x1.ffffffffffffep-1023", one_up="0x1.0000000000001p+0",
        one_down="0x1.fffffffffffffp-1", overflow_half="0x1.fffffffffffff8p+1023",
        max_bits=0x7FEFFFFFFFFFFFFF, one_bits=0x3FF0000000000000,
        inf_bits=0x7FF0000000000000,
    ),
}


def hexq(text: str) -> Fraction:
    """Exact value of hex-float text, independent of the code under test."""
    sign = -1 if text.startswith("-") else 1
    mant, _, exp = text.lstrip("+-")[2:].partition("p")
    whole, _, frac = mant.partition(".")
    num = int(whole + frac, 16)
    return sign * Fraction(num) * Fraction(2) ** (int(exp or 0) - 4 * len(frac))


def same(a, b) -> bool:
    """Bitwise equality (so -0 != +0, and NaN == NaN of the same payload)."""
    return a.dtype == b.dtype and bits(a) == bits(b)


def finite_values(name):
    """Hypothesis strategy for every finite value of a format (subnormals, ±0)."""
    if name == "bfloat16":
        # from_dtype does not know bfloat16: draw bit patterns instead.
        return st.integers(0, 0xFFFF).filter(lambda b: b & 0x7FFF < 0x7F80).map(
            lambda b: from_bits(b, "bfloat16"))
    return from_dtype(np.dtype(name), allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------
# Format descriptions


@pytest.mark.parametrize("name", NAMES)
def test_constants_match_hand_values_and_finfo(name):
    fmt, hard = FORMATS[name], HARD[name]
    assert fmt.max_finite == hexq(hard["max"])
    assert fmt.min_normal == hexq(hard["min_normal"])
    assert fmt.min_subnormal == hexq(hard["min_sub"])
    assert fmt.unit_roundoff == Fraction(1, 2**fmt.precision)
    info = ml_dtypes.finfo(fmt.dtype)
    assert fmt.max_finite == Fraction(float(info.max))
    assert fmt.min_normal == Fraction(float(info.smallest_normal))
    assert fmt.min_subnormal == Fraction(float(info.smallest_subnormal))
    assert 2 * fmt.unit_roundoff == Fraction(float(info.eps))


@pytest.mark.parametrize("name", NAMES)
def test_get_format_accepts_names_dtypes_and_types(name):
    fmt = FORMATS[name]
    assert get_format(name) is fmt
    assert get_format(fmt) is fmt
    assert get_format(fmt.dtype) is fmt
    assert get_format(fmt.dtype.type) is fmt
    assert get_format(np.dtype(name).name) is fmt


@pytest.mark.parametrize("bad", ["int32", np.int64, "float8", "complex64"])
def test_get_format_rejects_other_types(bad):
    with pytest.raises(ValueError):
        get_format(bad)


@pytest.mark.parametrize("name", NAMES)
def test_ulp(name):
    fmt, p = FORMATS[name], FORMATS[name].precision
    assert fmt.ulp(1) == Fraction(2) ** (1 - p)
    assert fmt.ulp(Fraction(-3, 2)) == Fraction(2) ** (1 - p)
    assert fmt.ulp(hexq(HARD[name]["one_down"])) == Fraction(2) ** -p
    assert fmt.ulp(0) == fmt.min_subnormal
    assert fmt.ulp(fmt.min_subnormal / 3) == fmt.min_subnormal
    assert fmt.ulp(fmt.min_normal) == fmt.min_subnormal
    assert fmt.ulp(fmt.max_finite) == Fraction(2) ** (fmt.emax - p + 1)
    assert fmt.ulp(fmt.max_finite * 4) == fmt.ulp(fmt.max_finite)
    assert fmt.ulp(mpmath.mpf(2) ** 100000) == fmt.ulp(fmt.max_finite)
    assert fmt.ulp(mpmath.mpf("inf")) == fmt.ulp(fmt.max_finite)
    assert fmt.ulp(mpmath.mpf(1) / 3) == Fraction(2) ** (-1 - p)
    with pytest.raises(ValueError):
        fmt.ulp(mpmath.mpf("nan"))


# ----------------------------------------------------------------------------
# Special values, bits and hex text


@pytest.mark.parametrize("name", NAMES)
def test_special_values(name):
    fmt, hard = FORMATS[name], HARD[name]
    sign = 1 << (fmt.width - 1)
    inf, ninf, nan = from_hex("inf", fmt), from_hex("-inf", fmt), from_hex("nan", fmt)
    pzero, nzero = from_hex("0x0p+0", fmt), from_hex("-0x0p+0", fmt)
    assert bits(inf) == hard["inf_bits"] and bits(ninf) == hard["inf_bits"] | sign
    assert bits(pzero) == 0 and bits(nzero) == sign
    assert math.isnan(float(nan)) and nan.dtype == fmt.dtype
    assert exact(inf) == math.inf and exact(ninf) == -math.inf and math.isnan(exact(nan))
    assert exact(pzero) == 0 and exact(nzero) == 0
    assert is_negative_zero(nzero) and not is_negative_zero(pzero)
    assert [to_hex(v) for v in (inf, ninf, nan, pzero, nzero)] == [
        "inf", "-inf", "nan", "0x0p+0", "-0x0p+0"]
    assert bits(from_hex(hard["max"], fmt)) == hard["max_bits"]
    assert bits(from_hex(hard["min_sub"], fmt)) == 1
    assert bits(from_hex(hard["min_normal"], fmt)) == 1 << (fmt.precision - 1)
    assert bits(from_hex("0x1p+0", fmt)) == hard["one_bits"]
    assert bits(np.array(1, dtype=fmt.dtype)[()]) == hard["one_bits"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", ["max", "min_normal", "min_sub", "max_sub", "one_up", "one_down"])
def test_hard_values_round_trip(name, key):
    fmt, text = FORMATS[name], HARD[name][key]
    for t in (text, "-" + text):
        v = from_hex(t, fmt)
        assert exact(v) == hexq(t)
        assert to_hex(v) == t
        assert same(round_to_format(hexq(t), fmt), v)
        assert same(from_bits(bits(v), fmt), v)


def test_to_hex_examples():
    assert to_hex(-0.1875) == "-0x1.8p-3"
    assert to_hex(np.float16(1.5)) == "0x1.8p+0"
    assert to_hex(ml_dtypes.bfloat16(1.0078125)) == "0x1.02p+0"
    assert to_hex(np.float32(0.1)) == "0x1.99999ap-4"
    assert to_hex(5e-324) == "0x1p-1074"  # subnormals are written normalized
    assert to_hex(Fraction(3, 8)) == "0x1.8p-2"
    assert to_hex(mpmath.mpf(-1024)) == "-0x1p+10"
    assert to_hex(7) == "0x1.cp+2"
    with pytest.raises(ValueError):
        to_hex(Fraction(1, 3))


def test_from_hex_accepts_c99_and_python_spellings():
    assert from_hex("0x1.8000000000000p-3", "float64") == 0.1875  # float.hex style
    assert is_negative_zero(from_hex("-0x0.0p+0", "float64"))
    assert from_hex("0X.8P1", "float16") == 1.0
    assert from_hex("+0x10", "float16") == 16.0
    assert from_hex("  0x1p-24 ", "float16") == exact(from_bits(1, "float16"))
    assert math.isinf(from_hex("-Infinity", "bfloat16")) and from_hex("-INF", "bfloat16") < 0
    assert from_hex("0x1.02p+0", "bfloat16") == ml_dtypes.bfloat16(1.0078125)


@pytest.mark.parametrize("text,name", [
    ("0x1.002p+0", "float16"),   # needs 12 significand bits
    ("0x1.01p+0", "bfloat16"),   # needs 9
    ("0x1.000001p+0", "float32"),
    ("0x1.00000000000008p+0", "float64"),
    ("0x1p-25", "float16"),      # below the smallest subnormal
    ("0x1.8p-24", "float16"),    # between subnormals
    ("0x1p+16", "float16"),      # beyond max_finite
    ("0x1p+1000000000", "float64"),
    ("0x1.ffep+15", "float16"),  # rounds to inf
])
def test_from_hex_rejects_unrepresentable(text, name):
    with pytest.raises(ValueError):
        from_hex(text, name)


@pytest.mark.parametrize("text", ["", "0x", "1.5", "0x1p1.5", "1p3", "0x1p", "nan0", "0xg", "--0x1p0"])
def test_from_hex_rejects_malformed(text):
    with pytest.raises(ValueError):
        from_hex(text, "float32")


def test_bits_of_python_values_must_be_exact():
    assert bits(1.0, "bfloat16") == 0x3F80
    assert bits(-0.0, "float16") == 0x8000
    assert bits(2.0) == 0x4000000000000000
    with pytest.raises(ValueError):
        bits(0.1, "float16")
    with pytest.raises(ValueError):
        from_bits(1 << 16, "float16")


def test_exact_of_python_and_numpy_values():
    assert exact(0.1) == Fraction(0.1)
    assert exact(np.float32(0.1)) == Fraction(13421773, 2**27)
    assert exact(np.array(np.float16(0.5))) == Fraction(1, 2)
    assert exact(3) == 3 and exact(np.int64(-5)) == -5
    assert exact(-0.0) == 0 and is_negative_zero(-0.0) and not is_negative_zero(0.0)
    assert not is_negative_zero(Fraction(0))
    with pytest.raises(TypeError):
        exact("1.0")


# ----------------------------------------------------------------------------
# Neighbours


@pytest.mark.parametrize("name", NAMES)
def test_next_up_down(name):
    fmt, hard = FORMATS[name], HARD[name]
    one, mx = from_hex("0x1p+0", fmt), from_hex(hard["max"], fmt)
    min_sub, inf = from_hex(hard["min_sub"], fmt), from_hex("inf", fmt)
    pzero, nzero = from_hex("0x0p+0", fmt), from_hex("-0x0p+0", fmt)
    assert to_hex(next_up(one)) == hard["one_up"]
    assert to_hex(next_down(one)) == hard["one_down"]
    assert same(next_up(mx), inf) and same(next_up(inf), inf)
    assert same(next_up(-inf), -mx) and same(next_down(-mx), -inf)
    assert same(next_up(pzero), min_sub) and same(next_up(nzero), min_sub)
    assert same(next_down(pzero), -min_sub) and same(next_down(nzero), -min_sub)
    assert same(next_up(-min_sub), nzero) and same(next_down(min_sub), pzero)  # IEEE
    assert to_hex(next_down(from_hex(hard["min_normal"], fmt))) == hard["max_sub"]
    assert math.isnan(float(next_up(from_hex("nan", fmt))))


def test_bfloat16_neighbours_of_one():
    one = ml_dtypes.bfloat16(1.0)
    assert next_up(one) == ml_dtypes.bfloat16(1.0078125)
    assert exact(next_up(one)) == Fraction(129, 128)
    assert exact(next_down(one)) == Fraction(255, 256)
    assert next_up(one).dtype == np.dtype(ml_dtypes.bfloat16)


# ----------------------------------------------------------------------------
# Rounding: the halfway and boundary cases


@pytest.mark.parametrize("name", NAMES)
def test_round_ties_to_even(name):
    fmt = FORMATS[name]
    u = Fraction(2) ** (1 - fmt.precision)  # ulp of 1
    tiny = u / 2**40
    for s in (1, -1):
        r = lambda v: exact(round_to_format(s * v, fmt))  # noqa: E731
        assert r(1 + u / 2) == s * 1                  # tie, even is below
        assert r(1 + 3 * u / 2) == s * (1 + 2 * u)    # tie, even is above
        assert r(1 + u / 2 + tiny) == s * (1 + u)
        assert r(1 + u / 2 - tiny) == s * 1
        assert r(2 - u / 2) == s * 2                  # tie below 2: carries up a binade
        assert r(2 - u / 2 - tiny) == s * (2 - u)


@pytest.mark.parametrize("name", NAMES)
def test_round_overflow(name):
    fmt = FORMATS[name]
    half = hexq(HARD[name]["overflow_half"])
    assert half == fmt.max_finite + fmt.ulp(fmt.max_finite) / 2
    tiny = fmt.ulp(fmt.max_finite) / 2**30
    for s in (1, -1):
        assert exact(round_to_format(s * half, fmt)) == s * math.inf  # tie -> inf
        assert exact(round_to_format(s * (half + tiny), fmt)) == s * math.inf
        assert exact(round_to_format(s * (half - tiny), fmt)) == s * fmt.max_finite
        assert exact(round_to_format(s * fmt.max_finite * 2**5000, fmt)) == s * math.inf
        assert exact(round_to_format(s * mpmath.mpf(2) ** (10**9), fmt)) == s * math.inf


@pytest.mark.parametrize("name", NAMES)
def test_round_underflow(name):
    fmt = FORMATS[name]
    m = fmt.min_subnormal
    tiny = m / 2**30
    for s in (1, -1):
        zero = round_to_format(s * m / 2, fmt)  # tie between 0 and min_sub: 0 is even
        assert exact(zero) == 0 and is_negative_zero(zero) == (s < 0)
        assert exact(round_to_format(s * (m / 2 + tiny), fmt)) == s * m
        assert is_negative_zero(round_to_format(s * (m / 2 - tiny), fmt)) == (s < 0)
        assert is_negative_zero(round_to_format(s * mpmath.mpf(2) ** -(10**9), fmt)) == (s < 0)
        assert exact(round_to_format(s * 3 * m / 2, fmt)) == s * 2 * m
        assert exact(round_to_format(s * 5 * m / 2, fmt)) == s * 2 * m
        # Halfway between the largest subnormal and min_normal: carries to normal.
        assert exact(round_to_format(s * (fmt.min_normal - m / 2), fmt)) == s * fmt.min_normal
    assert not is_negative_zero(round_to_format(0, fmt))


@pytest.mark.parametrize("name", NAMES)
def test_round_specials_and_input_types(name):
    fmt = FORMATS[name]
    assert same(round_to_format(mpmath.mpf("inf"), fmt), from_hex("inf", fmt))
    assert same(round_to_format(mpmath.mpf("-inf"), fmt), from_hex("-inf", fmt))
    assert math.isnan(float(round_to_format(mpmath.mpf("nan"), fmt)))
    assert math.isnan(float(round_to_format(math.nan, fmt)))
    assert round_to_format(3, fmt) == 3 and round_to_format(3, fmt).dtype == fmt.dtype
    assert round_to_format(Fraction(-5, 4), fmt) == -1.25
    with mpmath.workprec(300):
        third = mpmath.mpf(1) / 3
        assert exact(round_to_format(third, fmt)) == exact(round_to_format(Fraction(1, 3), fmt))
    assert round_to_format(Fraction(1, 3), fmt.dtype).dtype == fmt.dtype


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_no_double_rounding_through_float64(name):
    # 1 + u/2 + 2**-70 is just above a tie; rounded to float64 first it becomes
    # the tie itself and ties-to-even would then wrongly go down to 1.
    fmt = FORMATS[name]
    u = Fraction(2) ** (1 - fmt.precision)
    v = 1 + u / 2 + Fraction(1, 2**70)
    assert exact(round_to_format(v, fmt)) == 1 + u
    with mpmath.workprec(200):
        assert exact(round_to_format(1 + mpmath.mpf(2) ** -fmt.precision + mpmath.mpf(2) ** -70, fmt)) == 1 + u
    # ml_dtypes casts float64 -> bfloat16 through float32; one rounding must not.
    assert exact(round_to_format(1 + Fraction(1, 2**8) + Fraction(1, 2**40), "bfloat16")) == Fraction(129, 128)


# ----------------------------------------------------------------------------
# Property tests over all finite values


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_round_trips_are_exact(name, data):
    fmt = FORMATS[name]
    x = data.draw(finite_values(name))
    assert x.dtype == fmt.dtype
    q = exact(x)
    r = round_to_format(q, fmt)
    # -0 has the exact value 0, which rounds back to +0.
    assert same(r, x) or (q == 0 and exact(r) == 0)
    text = to_hex(x)
    assert same(from_hex(text, fmt), x)
    assert Fraction(float.fromhex(text)) == q  # Python's own parser agrees
    assert same(from_bits(bits(x), fmt), x)
    assert Fraction(float(x)) == q


@settings(max_examples=200, deadline=None)
@given(from_dtype(np.dtype("float64"), allow_nan=False, allow_infinity=False))
def test_to_hex_matches_float_hex_value(x):
    assert float.fromhex(to_hex(x)) == x and float.fromhex(x.hex()) == exact(x)
    assert to_hex(x) == to_hex(from_hex(x.hex(), "float64"))


def _float64_near(exponents):
    """float64 values with exponents in a range, full random significands."""
    return st.builds(
        lambda s, m, e: s * math.ldexp(m, e - 52),
        st.sampled_from([1.0, -1.0]), st.integers(2**52, 2**53 - 1), st.integers(*exponents))


def _midpoints(name):
    """float64 values exactly halfway between two neighbouring format values."""
    def mid(x):
        up = next_up(x)
        return float((exact(x) + exact(up)) / 2) if np.isfinite(up) else float(exact(x))
    return finite_values(name).map(mid)


NUMPY_CAST = {"float16": np.float16, "float32": np.float32}


@pytest.mark.parametrize("name", ["float16", "float32"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_round_agrees_with_numpy_cast_from_float64(name, data):
    fmt = FORMATS[name]
    x = data.draw(st.one_of(
        from_dtype(np.dtype("float64"), allow_nan=False, allow_infinity=False),
        _float64_near((fmt.emin - fmt.precision - 2, fmt.emax + 2)),
        _midpoints(name),
    ))
    # A float64 -> float32/float16 cast is one correct rounding of x.
    with np.errstate(over="ignore"):
        expected = NUMPY_CAST[name](np.float64(x))
    assert same(round_to_format(np.float64(x), fmt), expected)
    if x != 0:  # Fraction(-0.0) has lost the sign of zero
        assert same(round_to_format(Fraction(x), fmt), expected)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    from_dtype(np.dtype("float32"), allow_nan=False, allow_infinity=False),
    _midpoints("bfloat16").map(np.float32),
))
def test_round_agrees_with_ml_dtypes_cast_from_float32(x):
    # ml_dtypes rounds float32 -> bfloat16 once, correctly (from float64 it
    # goes through float32, so only float32 sources are compared).
    with np.errstate(over="ignore"):
        expected = np.float32(x).astype(ml_dtypes.bfloat16)
    assert same(round_to_format(np.float32(x), "bfloat16"), expected)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_round_is_nearest(name, data):
    fmt = FORMATS[name]
    x = data.draw(finite_values(name).filter(lambda v: np.isfinite(next_up(v))))
    lo, hi = exact(x), exact(next_up(x))
    t = data.draw(st.fractions(0, 1))
    v = lo + t * (hi - lo)
    r = exact(round_to_format(v, fmt))
    if t < Fraction(1, 2):
        assert r == lo
    elif t > Fraction(1, 2):
        assert r == hi
    else:
        assert r in (lo, hi) and (bits(round_to_format(v, fmt)) & 1) == 0


# ----------------------------------------------------------------------------
# Double rounding (issue 12): a detour through float32 (ml_dtypes' and torch's float64 → bfloat16,
# torch's float64 → float16) rounds twice; the project's rounding, scalar and array, rounds once.

DOUBLE_ROUNDING = [
    # (exact value as hex, format, correctly rounded, what a float32 detour gives)
    ("0x1.01000004p+0", "bfloat16", "0x1.02p+0", "0x1p+0"),      # 1 + 2⁻⁸ + 2⁻³⁰: just above a bfloat16 tie
    ("-0x1.02fffffcp+0", "bfloat16", "-0x1.02p+0", "-0x1.04p+0"),  # just below a tie: float32 makes it the tie
    ("0x1.0020000001p+0", "float16", "0x1.004p+0", "0x1p+0"),    # 1 + 2⁻¹¹ + 2⁻⁴⁰: just above a float16 tie
    ("0x1.ffe0000001p+15", "float16", "inf", "inf"),              # above max + ulp/2: overflow either way
    ("0x1.0060000001p-14", "float16", "0x1.008p-14", "0x1.008p-14"),
    ("0x1.0000020000001p-24", "float16", "0x1p-24", "0x1p-24"),  # subnormal range
    ("0x1.8000000001p-25", "float16", "0x1p-24", "0x1p-24"),
    ("0x1.0000000001p-25", "float16", "0x1p-24", "0x0p+0"),      # just above half the smallest subnormal
    ("0x1.0000000001p-134", "bfloat16", "0x1p-133", "0x0p+0"),   # the same for bfloat16
]


@pytest.mark.parametrize("text,name,expected,detour", DOUBLE_ROUNDING)
def test_one_rounding_where_a_float32_detour_rounds_twice(text, name, expected, detour):
    from reference.fast_round import round_array

    fmt = FORMATS[name]
    value = hexq(text)
    x = float.fromhex(text)
    assert Fraction(x) == value  # every case is a binary64 value, so the array rounding sees it exactly
    want = math.inf if expected == "inf" else hexq(expected)
    assert exact(round_to_format(value, fmt)) == want
    assert exact(round_array(np.array([x]), fmt)[0]) == want
    with np.errstate(over="ignore"):
        via_float32 = exact(np.array([x], dtype=np.float32).astype(fmt.dtype)[0])
    assert via_float32 == (math.inf if detour == "inf" else hexq(detour))


@pytest.mark.parametrize("name", NAMES)
def test_round_array_is_round_to_format(name):
    from reference.fast_round import round_array

    fmt = FORMATS[name]
    rng = np.random.default_rng(12)
    p = fmt.precision
    # random significands over every binade, subnormals and overflow; format midpoints and their neighbours
    with np.errstate(over="ignore"):
        x = rng.standard_normal(4000) * np.exp2(rng.integers(fmt.emin - p - 3, fmt.emax + 3, 4000).astype(float))
    mids = np.ldexp(2.0 * rng.integers(2 ** (p - 1), 2 ** p, 2000) + 1, rng.integers(fmt.emin - p, fmt.emax - p + 1, 2000))
    mids = mids[np.isfinite(mids)]
    x = np.concatenate([x, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf), -mids,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, float(fmt.max_finite)]])
    got = round_array(x, fmt)
    assert got.dtype == fmt.dtype
    for a, b in zip(x, got):
        want = round_to_format(np.float64(a), fmt)
        assert same(b, want) or (np.isnan(a) and np.isnan(float(b))), (a.hex(), b, want)
