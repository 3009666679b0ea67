"""Reductions along an axis (spec/reductions.py's AxisNorm, AxisMean, Numel, Length): the interval reference
encloses them exactly, one value per fiber broadcast over it, and the bound ``Lifted`` charges covers summations
in any order, torch's own kernels, and not a reduction over the wrong axis."""
import random
from fractions import Fraction

import mpmath
from mpmath import libmp
import numpy as np
import pytest
import torch

from reference import arith
from reference.bound import Bound
from reference.formats import FORMATS
from reference.tensor import Lifted


def _data(shape, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp2(rng.integers(-12, 12, shape))).astype(dtype)


def _fraction(x) -> Fraction:
    """An mpf or an interval endpoint's bits, exactly (``mpmath.mpf(x)`` would round to 53 bits)."""
    return Fraction(*libmp.to_rational(x._mpf_))


def _encloses(iv, value: Fraction) -> bool:
    lo, hi = (Fraction(*libmp.to_rational(end)) for end in iv._mpi_)
    return lo <= value <= hi


def _exact_rms_sq(x, axis):
    """Σⱼ xⱼ² / n per fiber of ``axis``, exactly (Fractions), broadcast back."""
    sq = np.vectorize(lambda v: Fraction(float(v)) ** 2, otypes=[object])(x)
    total = sq.sum(axis=axis, keepdims=True)
    return np.broadcast_to(total / x.shape[axis], x.shape)


@pytest.mark.parametrize("axis", [-1, -2])
def test_interval_reference_encloses_the_row_and_column_means_of_squares(axis):
    x = _data((2, 3, 5), 1)
    O = arith.Interval(128)
    L = Lifted(O, x.shape)
    xs = L.each(O.input, x.astype(np.float64))
    norm = L.norm_axis(xs, axis)
    got = L.div(L.mul(norm, norm), L.length(None, axis))  # torch's norm(dim).square_().div_(size(dim))
    want = _exact_rms_sq(x, axis)
    for idx in np.ndindex(*x.shape):
        assert _encloses(got[idx], want[idx])
        assert got[idx].delta <= abs(got[idx].mid) * mpmath.mpf(2) ** -120
    # one value per fiber: constant along the reduced axis
    ref = np.moveaxis(norm, axis, -1)
    assert all(v is fiber[0] for fiber in ref.reshape(-1, ref.shape[-1]) for v in fiber)
    assert len({str(v) for v in norm.flat}) == x.size // x.shape[axis]


def test_mean_axis_is_exact_in_the_reference_and_numel_length_are_exact():
    x = _data((4, 3), 2, np.float64)
    O = arith.Interval(200)
    L = Lifted(O, x.shape)
    mean = L.mean_axis(L.each(O.input, x), -2)
    for c in range(3):
        want = sum(Fraction(float(v)) for v in x[:, c]) / 4
        for r in range(4):
            assert _encloses(mean[r, c], want)
    assert L.numel(None) == 12 and L.length(None, -1) == 3 and L.length(None, -2) == 4
    assert Lifted(O, ()).numel(None) == 1


def _bound_of_rms_sq(x, axis, fmt):
    O = Bound(FORMATS[fmt], scalars="float64")
    L = Lifted(O, x.shape)
    norm = L.norm_axis(L.each(O.input, x.astype(np.float64)), axis)
    return L.div(L.mul(norm, norm), L.length(None, axis))


@pytest.mark.parametrize("shape,axis", [((3, 17), -1), ((33, 2), -2), ((2, 5, 129), -1), ((2, 70, 3), -2)])
def test_norm_square_divide_bound_holds_for_any_summation_order(shape, axis):
    """Sequential float32 sums of the float32 squares in 20 random orders, then √, square and ÷n each rounded to
    float32 (torch's operation sequence), stay within the bound for every fiber."""
    x = _data(shape, len(shape) + shape[axis])
    b = _bound_of_rms_sq(x, axis, "float32")
    want = _exact_rms_sq(x, axis)
    moved, bm, wm = (np.moveaxis(a, axis, -1) for a in (x, b, want))
    n = shape[axis]
    for fiber, bs, ws in zip(moved.reshape(-1, n), bm.reshape(-1, n), wm.reshape(-1, n)):
        assert bs[0].e < abs(bs[0].v) * n * 2 ** -20  # a bound of a few roundings per term, not a vacuous one
        order = list(range(n))
        for seed in range(20):
            random.Random(seed).shuffle(order)
            acc = np.float32(0)
            for k in order:
                acc = np.float32(acc + np.float32(fiber[k] * fiber[k]))
            norm = np.float32(np.sqrt(acc))
            got = np.float32(np.float32(norm * norm) / np.float32(n))
            assert abs(Fraction(float(got)) - ws[0]) <= _fraction(bs[0].e)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("axis", [-1, -2])
def test_torch_norm_square_divide_is_within_the_bound(dtype, axis):
    """What torch's Adafactor computes, ``torch.norm(g, dim, keepdim=True).square_().div_(g.size(dim))``, on a
    tensor of 3·n elements, is within the bound in each format (n = 300; 40 in bfloat16, where the any-order bound
    of 300 terms, 299·2⁻⁸ of Σx², exceeds the sum itself and the format is reported as limited)."""
    fmt = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype]
    n = 40 if dtype == torch.bfloat16 else 300
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(5)).to(dtype)
    if axis == -2:
        x = x.T.contiguous()
    got = torch.norm(x, dim=axis, keepdim=True).square_().div_(x.size(axis)).expand_as(x)
    xn = x.double().numpy()
    b = _bound_of_rms_sq(xn, axis, fmt)
    want = _exact_rms_sq(xn, axis)
    for idx in np.ndindex(*xn.shape):
        assert mpmath.isfinite(b[idx].e)
        err = abs(Fraction(float(got[idx])) - want[idx])
        assert err <= _fraction(b[idx].e), (idx, float(err), b[idx].e)


def test_a_mean_over_the_wrong_axis_is_outside_the_bound():
    """The bound is a few roundings, not a licence: the column mean where the row mean belongs departs."""
    x = _data((6, 6), 9)
    b = _bound_of_rms_sq(x, -1, "float32")
    want = _exact_rms_sq(x, -1)
    wrong = _exact_rms_sq(x, -2)
    outside = [abs(wrong[idx] - want[idx]) > _fraction(b[idx].e) for idx in np.ndindex(6, 6)]
    assert sum(outside) >= 30


def test_mean_axis_bound_holds_for_any_summation_order():
    x = np.abs(_data((40, 3), 4))
    O = Bound(FORMATS["float32"], scalars="float64")
    L = Lifted(O, x.shape)
    b = L.mean_axis(L.each(O.input, x.astype(np.float64)), -2)
    for c in range(3):
        want = sum(Fraction(float(v)) for v in x[:, c]) / 40
        order = list(range(40))
        for seed in range(20):
            random.Random(seed).shuffle(order)
            acc = np.float32(0)
            for k in order:
                acc = np.float32(acc + x[k, c])
            got = np.float32(acc / np.float32(40))
            assert abs(Fraction(float(got)) - want) <= _fraction(b[0, c].e)


@pytest.mark.parametrize("shape", [(), (5,)])
def test_an_axis_reduction_of_a_tensor_without_that_axis_is_a_clear_error(shape):
    O = arith.Interval(64)
    L = Lifted(O, shape)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        L.norm_axis(L.each(O.input, np.zeros(shape)), -2)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        L.length(None, -2)
