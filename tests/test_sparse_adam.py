"""SparseAdam (spec/sparse_adam.py), the first spec with sparse gradients: what the reference makes of an index set,
held against values worked out by hand, torch's own class, the NumPy port and the torch backend's sparse tensors.

A sparse gradient is a ``numpy.ma.MaskedArray`` masked outside its index set (``OptimizerSpec.sparse_gradients``)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import spec as spec_pkg
from conformance.backend import Case, Group, for_backend, lay_out
from conformance.backends import load
from conformance.check import check
from conformance.replay import decode_array, encode_array
from reference.step import trajectory

SPARSE_ADAM = spec_pkg.get("sparse_adam")


def _sparse(values, held, dtype="float64"):
    return np.ma.MaskedArray(np.array(values, dtype=dtype), mask=~np.array(held, dtype=bool))


def _exact(p, grads, hyper, name="theta"):
    rows = trajectory(SPARSE_ADAM, SPARSE_ADAM.complete(hyper), np.array(p), grads, formats=("float64",))
    return [row.values(name) for row in rows]


def test_elements_outside_the_index_set_keep_theta_and_state_and_t_counts_the_tensors_steps():
    # θ = (1, 2); step 1 holds element 0 only, step 2 both.  Element 1's first update is at the tensor's step 2, so it
    # is bias-corrected with t = 2 although its moments have one update (torch's "lazy" Adam).
    lr, b1, b2, eps = Fraction(1, 10), Fraction(9, 10), Fraction(999, 1000), Fraction(1, 10 ** 8)
    grads = [_sparse([0.5, 7.0], [True, False]), _sparse([-1.0, 0.25], [True, True])]
    theta = _exact([1.0, 2.0], grads, {"lr": 0.1})
    m = _exact([1.0, 2.0], grads, {"lr": 0.1}, "exp_avg")
    assert theta[0][1] == 2 and m[0][1] == 0  # not held at step 1: θ and m exactly as they were
    g = Fraction(1, 4)
    m1, v1 = g * (1 - b1), g * g * (1 - b2)  # element 1's first update
    s = lr * math.sqrt(1 - b2 ** 2) / (1 - b1 ** 2)  # t = 2, the tensor's count
    want = 2 - s * float(m1) / (math.sqrt(v1) + float(eps))
    assert float(theta[1][1]) == pytest.approx(want, rel=1e-12)
    own = 2 - float(lr) * math.sqrt(1 - b2) / (1 - b1) * float(m1) / (math.sqrt(v1) + float(eps))  # t = 1
    assert abs(float(theta[1][1]) - own) > 1e-3


def test_a_held_zero_decays_the_moments_and_an_empty_gradient_counts_a_step():
    grads = [_sparse([2.0], [True]), _sparse([0.0], [True]), _sparse([5.0], [False]), _sparse([1.0], [True])]
    m = _exact([0.0], grads, {"lr": 0.1}, "exp_avg")
    assert [float(x[0]) for x in m[:3]] == pytest.approx([0.2, 0.18, 0.18])  # 0 held: m decays; not held: kept
    rows = trajectory(SPARSE_ADAM, SPARSE_ADAM.complete({"lr": 0.1}), np.array([0.0]), grads)
    assert [r.t for r in rows] == [1, 2, 3, 4]  # the empty step 3 counts too


def test_dense_gradients_are_refused_for_other_specs():
    with pytest.raises(ValueError, match="takes dense gradients"):
        trajectory(spec_pkg.get("adam"), {}, np.array([1.0]), [_sparse([1.0], [True])])


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_torch_sparse_adam_and_the_numpy_port_conform_on_a_fixed_case(dtype):
    # rows of a 2-D tensor (nn.Embedding(sparse=True)), single elements of a 1-D one, a 0-d one, an empty gradient
    rng = np.random.default_rng(5)
    fmt = {"bfloat16": "float32"}.get(dtype, dtype)
    a, b, c = (rng.standard_normal(shape).astype(fmt) for shape in ((4, 3), (6,), ()))
    grads = []
    for held_rows, held_elems, held_0d in (([1, 0, 1, 0], [1, 1, 0, 0, 1, 0], True),
                                           ([0, 0, 0, 0], [0, 1, 1, 1, 0, 1], False),
                                           ([1, 1, 0, 1], [1, 0, 1, 0, 1, 1], True)):
        rows = np.broadcast_to(np.array(held_rows, bool)[:, None], (4, 3))
        grads.append([[_sparse(rng.standard_normal((4, 3)), rows, fmt),
                       _sparse(rng.standard_normal(6), held_elems, fmt),
                       _sparse(rng.standard_normal(()), held_0d, fmt)]])
    if dtype == "bfloat16":
        import ml_dtypes
        cast = lambda x: x.astype(ml_dtypes.bfloat16)  # noqa: E731
        a, b, c = cast(a), cast(b), cast(c)
        grads = [[[np.ma.MaskedArray(cast(np.ma.getdata(g)), mask=np.ma.getmaskarray(g)) for g in row[0]]]
                 for row in grads]
    data = Case("sparse_adam", dtype, [Group(SPARSE_ADAM.complete({"lr": 0.05, "beta1": 0.8}), [a, b, c])], grads)
    for name in ("numpy", "torch-cpu"):
        outputs = load(name).run(for_backend(data, "for-loop"))
        for mode in ("trajectory", "step"):
            report = check(data, outputs, mode, scalars="float64")
            assert report.ok, (name, mode, report.summary())


def test_a_dense_update_of_a_sparse_gradient_fails():
    # the port with the mask dropped: elements outside the index set step with g = 0
    import conformance.backends.numpy_backend as nb
    grads = [[[_sparse([1.0, 3.0], [True, True])]], [[_sparse([-2.0, 4.0], [True, False])]]]
    data = Case("sparse_adam", "float64", [Group(SPARSE_ADAM.complete({"lr": 0.1}), [np.array([1.0, 1.0])])], grads)
    saved = nb._STEPS["sparse_adam"]
    nb._STEPS["sparse_adam"] = lambda k, p, g, st, h, r: saved(k, p, np.ma.MaskedArray(np.ma.getdata(g)), st, h, r)
    try:
        outputs = load("numpy").run(for_backend(data, "for-loop"))
    finally:
        nb._STEPS["sparse_adam"] = saved
    report = check(data, outputs)
    assert not report.ok
    assert report.failures[0].step == 1 and report.failures[0].index == (1,)


def test_a_sparse_gradient_travels_through_layouts_and_replays():
    g = _sparse([[1.0, 2.0], [3.0, 4.0]], [[True, False], [False, True]])
    for layout in ("contiguous", "strided", "transposed"):
        laid = lay_out(g, layout)
        assert isinstance(laid, np.ma.MaskedArray)
        assert np.array_equal(np.ma.getmaskarray(laid), np.ma.getmaskarray(g))
        assert np.array_equal(np.ma.getdata(laid), np.ma.getdata(g))
    back = decode_array(encode_array(g), "float64")
    assert isinstance(back, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(back), np.ma.getmaskarray(g))
    assert np.array_equal(np.ma.getdata(back), np.ma.getdata(g))
    assert not isinstance(decode_array(encode_array(np.ones(2)), "float64"), np.ma.MaskedArray)


@pytest.mark.parametrize("fmt", ["float16", "bfloat16", "float32", "float64"])
def test_a_gradient_holding_nothing_moves_nothing_and_costs_no_error(fmt):
    # SparseAdam's stand-in for tests/test_reference.py's lr = 0 tests, which its lr domain excludes
    from reference.bound import trajectory_bounds
    from reference.formats import FORMATS, exact

    f = FORMATS[fmt]
    param = np.array([0.5, -1.25, 3.0, 0.0], dtype=f.dtype)
    empty = np.ma.MaskedArray(np.array([0.25, 1.0, -2.0, 0.75], dtype=f.dtype), mask=True)
    snaps = trajectory(SPARSE_ADAM, SPARSE_ADAM.complete({}), param, [empty, empty], formats=(fmt,))
    assert [s.t for s in snaps] == [1, 2]
    for snap in snaps:
        assert all(e.exact and e.value == exact(x) for e, x in zip(snap.theta, param))
    for step in trajectory_bounds(SPARSE_ADAM, SPARSE_ADAM.complete({}), param, [empty, empty], f):
        assert all(e.error == 0 and e.limited == () for e in step["theta"])
