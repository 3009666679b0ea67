"""Tests for reference.ulp: ulp_error, ordinal and ulp_distance."""
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

from reference.formats import FORMATS, bits, exact, from_bits, from_hex, next_down, next_up, round_to_format
from reference.ulp import from_ordinal, ordinal, ulp_distance, ulp_error

NAMES = ["float16", "bfloat16", "float32", "float64"]

# Smallest subnormal and largest finite of each format, as hex floats.
MIN_SUB = {"float16": "0x1p-24", "bfloat16": "0x1p-133", "float32": "0x1p-149", "float64": "0x1p-1074"}
MAX = {"float16": "0x1.ffcp+15", "bfloat16": "0x1.fep+127",
       "float32": "0x1.fffffep+127", "float64": "0x1.fffffffffffffp+1023"}


def finite_values(name):
    """Hypothesis strategy for every finite value of a format (subnormals, ±0)."""
    if name == "bfloat16":
        return st.integers(0, 0xFFFF).filter(lambda b: b & 0x7FFF < 0x7F80).map(
            lambda b: from_bits(b, "bfloat16"))
    return from_dtype(np.dtype(name), allow_nan=False, allow_infinity=False)


def values(name, *texts):
    return [from_hex(t, name) for t in texts]


# ----------------------------------------------------------------------------
# ordinal / ulp_distance


@pytest.mark.parametrize("name", NAMES)
def test_ordinal_landmarks(name):
    fmt = FORMATS[name]
    ms, mx = MIN_SUB[name], MAX[name]
    pz, nz, sub, nsub, big, nbig, inf, ninf = values(
        name, "0x0p+0", "-0x0p+0", ms, "-" + ms, mx, "-" + mx, "inf", "-inf")
    assert ordinal(pz) == 0 and ordinal(nz) == 0
    assert ordinal(sub) == 1 and ordinal(nsub) == -1
    n = ordinal(big)
    assert n == bits(big) and ordinal(nbig) == -n
    assert ordinal(inf) == n + 1 and ordinal(ninf) == -(n + 1)
    assert ordinal(from_hex("0x1p+0", name)) == bits(from_hex("0x1p+0", name))
    assert isinstance(ordinal(big), int)
    with pytest.raises(ValueError):
        ordinal(from_hex("nan", fmt))
    for k in (0, 1, -1, n, -n, n + 1, -(n + 1)):
        assert ordinal(from_ordinal(k, fmt)) == k
    with pytest.raises(ValueError):
        from_ordinal(n + 2, fmt)


@pytest.mark.parametrize("name", NAMES)
def test_ulp_distance_known_cases(name):
    ms, mx = MIN_SUB[name], MAX[name]
    one, sub, nsub, pz, nz, big, inf, ninf, nan = values(
        name, "0x1p+0", ms, "-" + ms, "0x0p+0", "-0x0p+0", mx, "inf", "-inf", "nan")
    assert ulp_distance(one, next_up(one)) == 1
    assert ulp_distance(next_up(one), one) == 1
    assert ulp_distance(next_down(one), next_up(one)) == 2
    assert ulp_distance(nsub, sub) == 2  # across zero: -min_sub, 0, +min_sub
    assert ulp_distance(pz, nz) == 0
    assert ulp_distance(big, inf) == 1
    assert ulp_distance(ninf, inf) == 2 * (ordinal(big) + 1)
    assert ulp_distance(nan, nan) == 0
    assert ulp_distance(nan, one) == math.inf and ulp_distance(inf, nan) == math.inf
    assert ulp_distance(1.0, 2.0, name) == bits(from_hex("0x1p+1", name)) - bits(one)


def test_ulp_distance_bfloat16_and_python_floats():
    one = ml_dtypes.bfloat16(1.0)
    assert ulp_distance(one, ml_dtypes.bfloat16(1.0078125)) == 1
    assert ulp_distance(1.0, 1.0078125, "bfloat16") == 1
    assert ulp_distance(1.0, 1.0 + 2**-52) == 1  # Python floats: float64
    with pytest.raises(ValueError):
        ulp_distance(1.0, 1.001, "bfloat16")  # 1.001 is no bfloat16 value


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_ordinal_is_monotone_and_consecutive(name, data):
    fmt = FORMATS[name]
    a = data.draw(finite_values(name))
    b = data.draw(finite_values(name))
    oa, ob = ordinal(a), ordinal(b)
    assert (oa > ob) == (exact(a) > exact(b)) and (oa == ob) == (exact(a) == exact(b))
    assert ordinal(next_up(a)) == oa + 1 or exact(a) == 0 and ordinal(next_up(a)) == 1
    assert ordinal(next_down(a)) == oa - 1 or exact(a) == 0 and ordinal(next_down(a)) == -1
    assert exact(from_ordinal(oa, fmt)) == exact(a)
    assert ulp_distance(a, b) == abs(oa - ob)


# ----------------------------------------------------------------------------
# ulp_error: known cases


@pytest.mark.parametrize("name", NAMES)
def test_ulp_error_known_cases(name):
    fmt = FORMATS[name]
    one, sub, big = values(name, "0x1p+0", MIN_SUB[name], MAX[name])
    assert ulp_error(one, 1, fmt) == 0.0
    assert ulp_error(next_up(one), 1, fmt) == 1.0
    assert ulp_error(next_down(one), 1, fmt) == 0.5  # spacing below 1 is half an ulp(1)
    half = (exact(one) + exact(next_up(one))) / 2
    assert ulp_error(one, half, fmt) == 0.5 and ulp_error(next_up(one), half, fmt) == 0.5
    assert ulp_error(sub, 0, fmt) == 1.0
    assert ulp_error(-sub, 0, fmt) == 1.0
    assert ulp_error(from_hex("-0x0p+0", fmt), 0, fmt) == 0.0  # -0 == +0
    assert ulp_error(from_hex("0x0p+0", fmt), fmt.min_subnormal / 2, fmt) == 0.5
    assert ulp_error(big, fmt.max_finite + fmt.ulp(fmt.max_finite) / 2, fmt) == 0.5
    assert ulp_error(one, Fraction(1, 3), fmt) == float(
        Fraction(2, 3) / fmt.ulp(Fraction(1, 3)))
    assert ulp_error(1.0, 1, name) == 0.0  # a Python float that is a format value
    with mpmath.workprec(fmt.precision + 64):
        third = mpmath.mpf(1) / 3
        err = ulp_error(round_to_format(third, fmt), third, fmt)
    assert 0 < err <= 0.5


@pytest.mark.parametrize("name", NAMES)
def test_ulp_error_special_rules(name):
    fmt = FORMATS[name]
    one, big, inf, ninf, nan = values(name, "0x1p+0", MAX[name], "inf", "-inf", "nan")
    overflow = fmt.max_finite + fmt.ulp(fmt.max_finite) / 2  # rounds to inf
    assert ulp_error(nan, math.nan, fmt) == 0.0
    assert ulp_error(nan, mpmath.mpf("nan"), fmt) == 0.0
    assert ulp_error(nan, 1, fmt) == math.inf
    assert ulp_error(one, math.nan, fmt) == math.inf
    assert ulp_error(inf, math.inf, fmt) == 0.0
    assert ulp_error(ninf, mpmath.mpf("-inf"), fmt) == 0.0
    assert ulp_error(inf, -math.inf, fmt) == math.inf
    assert ulp_error(big, math.inf, fmt) == math.inf
    assert ulp_error(inf, overflow, fmt) == 0.0       # overflow is correctly rounded
    assert ulp_error(ninf, -overflow, fmt) == 0.0
    assert ulp_error(inf, -overflow, fmt) == math.inf
    assert ulp_error(inf, overflow - fmt.min_subnormal, fmt) == math.inf  # rounds to max
    assert ulp_error(inf, 1, fmt) == math.inf


@pytest.mark.parametrize("name", NAMES)
def test_ulp_error_never_overflows(name):
    fmt = FORMATS[name]
    zero, sub, big = values(name, "0x0p+0", MIN_SUB[name], MAX[name])
    assert ulp_error(big, -fmt.max_finite * 2**2000, fmt) == math.inf
    assert ulp_error(zero, mpmath.mpf(2) ** (10**9), fmt) == math.inf
    assert ulp_error(zero, mpmath.mpf(2) ** -(10**9), fmt) == 0.0
    assert ulp_error(sub, -mpmath.mpf(2) ** -(10**9), fmt) == 1.0
    assert ulp_error(zero, Fraction(1, 2**3000), fmt) == 0.0
    huge = ulp_error(-big, fmt.max_finite, fmt)
    assert huge == 2 * float(fmt.max_finite / fmt.ulp(fmt.max_finite))
    assert isinstance(huge, float)


def test_ulp_error_rejects_values_outside_the_format():
    with pytest.raises(ValueError):
        ulp_error(0.1, Fraction(1, 10), "float16")


# ----------------------------------------------------------------------------
# ulp_error: properties


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_neighbour_is_one_ulp_and_midpoint_half(name, data):
    fmt = FORMATS[name]
    x = data.draw(finite_values(name))
    # Away from zero the spacing above |x| is ulp(x); step outwards from x.
    outward = next_up(x) if exact(x) > 0 or bits(x) == 0 else next_down(x)
    if not np.isfinite(outward):
        return
    assert ulp_error(outward, exact(x), fmt) == 1.0
    assert ulp_error(x, exact(x), fmt) == 0.0
    mid = (exact(x) + exact(outward)) / 2
    assert ulp_error(x, mid, fmt) == 0.5 and ulp_error(outward, mid, fmt) == 0.5


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_correct_rounding_is_within_half_ulp(name, data):
    fmt = FORMATS[name]
    x = data.draw(finite_values(name))
    t = data.draw(st.fractions(-1, 1))
    v = exact(x) * (1 + t / 2**fmt.precision) + t * fmt.min_subnormal
    r = round_to_format(v, fmt)
    if not np.isfinite(r):
        assert ulp_error(r, v, fmt) == 0.0
        return
    err = ulp_error(r, v, fmt)
    assert err <= 0.5
    # Neither neighbour of the rounded value is closer.
    for other in (next_up(r), next_down(r)):
        if np.isfinite(other):
            assert ulp_error(other, v, fmt) >= err
