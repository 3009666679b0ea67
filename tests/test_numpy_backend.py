"""Tests for conformance.backends.numpy_backend: a cross-check against torch.optim's for-loop path."""
from __future__ import annotations

from dataclasses import replace

import ml_dtypes
import numpy as np
import pytest
import torch

from conformance.backend import DTYPES, Case, Group, check_output
from conformance.backends.numpy_backend import DEFAULTS, NumpyBackend, backend
from conformance.backends.torch_backend import sparse_coo
from conformance.optimizers import get, names, torch_kwargs
from spec import get as spec_get

OPTIMIZERS = names()
STATE_OF = {name: {st.name: st for st in get(name).spec.state} for name in OPTIMIZERS}
TORCH_OPTIMIZERS = tuple(name for name in OPTIMIZERS if get(name).torch)  # what the port is checked against
STEPS = 8  # RAdam's rectified branch needs step 6 or later (see its group_pairs in conformance/optimizers.py)
SCALAR_STATE = ("step", "mu_product", "eta", "mu",  # 0-d tensors of torch's default dtype, reported as floats
                "weight_sum", "lr_max")  # Schedule-Free's group scalars, Python floats
SHAPES = [[(3, 4), (5,), ()], [(2, 3, 2), (4,)]]  # two groups; a 0-d param included
NP_DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}

# (group 0, group 1) hyperparameters per case: the registry's group_pairs.
CASES = {name: get(name).group_pairs for name in OPTIMIZERS}
CASE_IDS = [(opt, n) for opt in TORCH_OPTIMIZERS for n in range(len(CASES[opt]))]


def torch_class(optimizer):
    return getattr(torch.optim, get(optimizer).torch)


def make_case(optimizer, hypers, dtype="float64", seed=0, shapes=SHAPES):
    """Random params and grads; a param without grad at some steps; lr changed twice."""
    rng = np.random.default_rng(seed)
    dt = NP_DTYPES[dtype]
    groups = [Group(dict(h), [rng.standard_normal(s).astype(dt) for s in group_shapes])
              for h, group_shapes in zip(hypers, shapes)]
    steps = STEPS
    grads = [[[rng.standard_normal(s).astype(dt) for s in group_shapes] for group_shapes in shapes]
             for _ in range(steps)]
    if spec_get(optimizer).sparse_gradients:  # SparseAdam: about half of the elements in each index set
        grads = [[[np.ma.MaskedArray(g, mask=rng.random(g.shape) < 0.5) for g in row] for row in step]
                 for step in grads]
    grads[0][0][1] = None  # group 0 param 1 starts late: its state is created at step 1
    grads[2][0][1] = None  # ... and skips step 2 once it has state
    for s in range(steps):
        grads[s][1][1] = None  # group 1 param 1 never gets a gradient
    lrs = [None, None, [None, 0.02], [0.07, 0.03]] + [None] * (steps - 4)
    return Case(optimizer, dtype, groups, grads, lrs, path="for-loop")


def torch_run(case: Case, to_numpy=lambda t: t.detach().numpy().copy()):
    """The same trajectory through torch.optim (foreach=False), as numpy arrays."""
    def kwargs(h):  # completed with the defaults: torch would fill gaps from group 0's values
        return torch_kwargs({**DEFAULTS[case.optimizer], **h})

    def as_tensor(a):
        if isinstance(a, np.ma.MaskedArray):  # a sparse gradient: its unmasked elements, as torch's COO tensor
            return sparse_coo(as_tensor(np.ma.getdata(a)), ~np.ma.getmaskarray(a))
        return a.clone() if torch.is_tensor(a) else torch.tensor(a)

    params = [[as_tensor(p).requires_grad_() for p in g.params] for g in case.groups]
    foreach = {"foreach": False} if get(case.optimizer).foreach else {}  # SparseAdam has one loop, no argument
    opt = torch_class(case.optimizer)(
        [{"params": ps, **kwargs(g.hyper)} for ps, g in zip(params, case.groups)],
        **kwargs(case.groups[0].hyper), **foreach,
    )
    out = []
    for s in range(case.steps):
        for i, ps in enumerate(params):
            if case.lrs is not None and case.lrs[s] is not None and case.lrs[s][i] is not None:
                opt.param_groups[i]["lr"] = case.lrs[s][i]
            for j, p in enumerate(ps):
                g = case.grads[s][i][j]
                p.grad = None if g is None else as_tensor(g)
        opt.step()
        out.append((
            [[to_numpy(p) for p in ps] for ps in params],
            # a sparse state (SGD's momentum buffer with sparse gradients) densified: 0 where it holds no entry
            [[{k: float(v) if k in SCALAR_STATE else to_numpy(v.to_dense() if v.is_sparse else v)
               for k, v in opt.state[p].items()} for p in ps]
             for ps in params],
        ))
    return out


# Tolerance of the float64 cross-check.  Both sides evaluate the same sequence of
# binary64 operations, each correctly rounded, so they would agree bit for bit but
# for torch's CPU kernels fusing `a + alpha*b` (add with alpha, addcmul, lerp) into
# an FMA, in vectorized and scalar loops alike (checked against an exact FMA for
# add), which this port does not do: a difference of one rounding (~1e-16 relative
# to the operands) in such an op, carried through later steps.  They are indeed not
# bit-identical: about 15% of the elements compared here differ in their last bits.
# rtol=1e-12 covers that; atol=1e-15 covers the elements where a subtraction of
# O(1) operands (the data are standard normal, lr <= 0.1) cancels to ~1e-6, so that
# one rounding of the operands (~1e-17 absolute) is ~1e-11 relative to the result.
# Any real divergence (a wrong operation order, a missing term, a float32
# rounding) shows at 1e-8 relative or above.
RTOL, ATOL = 1e-12, 1e-15


def compare(case, ours, theirs, rtol=RTOL, atol=ATOL):
    for s, (out, (t_params, t_state)) in enumerate(zip(ours, theirs)):
        for i in range(len(case.groups)):
            for j in range(len(case.groups[i].params)):
                where = f"{case.optimizer} {case.groups[0].hyper} step {s} group {i} param {j}"
                assert out.params[i][j].dtype == t_params[i][j].dtype, where
                np.testing.assert_allclose(out.params[i][j], t_params[i][j], rtol=rtol, atol=atol, err_msg=where)
                ours_st, theirs_st = out.state[i][j], t_state[i][j]
                assert set(ours_st) == set(theirs_st), f"{where}: state keys {set(ours_st)} != {set(theirs_st)}"
                for key in theirs_st:
                    if isinstance(theirs_st[key], float):
                        assert isinstance(ours_st[key], float), f"{where} {key}"
                        # step counts are exact; mu_product, eta and mu are float32 on both sides
                        assert ours_st[key] == theirs_st[key], f"{where} {key}: {ours_st[key]} != {theirs_st[key]}"
                    else:
                        np.testing.assert_allclose(ours_st[key], theirs_st[key], rtol=rtol, atol=atol,
                                                   err_msg=f"{where} {key}")


@pytest.mark.parametrize("optimizer,n", CASE_IDS, ids=[f"{o}-{n}" for o, n in CASE_IDS])
def test_matches_torch_float64(optimizer, n):
    case = make_case(optimizer, CASES[optimizer][n], seed=n)
    # torch keeps NAdam's mu_product and ASGD's eta and mu in float32 (known deviations from the spec); the
    # module's backend follows the spec (float64), so compare torch with the port configured like torch.
    ours = (NumpyBackend(scalar_dtype="float32") if optimizer in ("nadam", "asgd") else backend).run(case)
    check_output(case, ours)
    compare(case, ours, torch_run(case))
    # the param that never had a gradient is untouched, and stateless but for Adagrad (its sparse variant too)
    last = ours[-1]
    np.testing.assert_array_equal(last.params[1][1], case.groups[1].params[1])
    assert (last.state[1][1] == {}) == (optimizer not in ("adagrad", "adagrad_sparse"))


def test_nadam_float64_scalars_match_torch_float64_default():
    """With torch's default dtype float64, mu_product is a double: scalar_dtype='float64'."""
    case = make_case("nadam", CASES["nadam"][1], seed=7)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theirs = torch_run(case)
    finally:
        torch.set_default_dtype(old)
    compare(case, NumpyBackend(scalar_dtype="float64").run(case), theirs)
    # ... and the float32 default differs from it by far more than the tolerance
    with pytest.raises(AssertionError):
        compare(case, NumpyBackend(scalar_dtype="float32").run(case), theirs)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_low_precision_dtypes_and_shapes(optimizer, dtype):
    hypers = CASES[optimizer][-1]
    case = make_case(optimizer, hypers, dtype=dtype, seed=3)
    ours = backend.run(case)
    check_output(case, ours)
    want = np.dtype(NP_DTYPES[dtype])
    for out in ours:
        for i, group in enumerate(case.groups):
            for j, p0 in enumerate(group.params):
                assert out.params[i][j].dtype == want and out.params[i][j].shape == p0.shape
                for key, v in out.state[i][j].items():
                    if isinstance(v, float):
                        assert key in SCALAR_STATE
                    else:  # the parameter's shape, or the dialect's per-row/column one (Adafactor's row_var)
                        shapes = (p0.shape, STATE_OF[optimizer][key].dialect_shape(p0.shape))
                        assert v.dtype == want and v.shape in shapes, (key, v.dtype, v.shape)
    # it moved (not necessarily to finite values: in float16, eps = 1e-8 rounds to 0)
    assert not np.array_equal(ours[-1].params[0][0], case.groups[0].params[0])


def _torch_lowp(case):
    """torch_run for float16/bfloat16/float32 (bfloat16 has no numpy bridge in torch)."""
    tdt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[case.dtype]
    def to_t(a):  # exact; a sparse gradient stays sparse
        if isinstance(a, np.ma.MaskedArray):
            return sparse_coo(to_t(np.ma.getdata(a)), ~np.ma.getmaskarray(a))
        return torch.tensor(np.asarray(a, dtype=np.float64)).to(tdt)

    lowp = replace(case, dtype="float64", groups=[Group(g.hyper, [to_t(p) for p in g.params]) for g in case.groups],
                   grads=[[[None if g is None else to_t(g) for g in gs] for gs in step] for step in case.grads])
    return [([[p.astype(NP_DTYPES[case.dtype]) for p in ps] for ps in params], None)
            for params, _ in torch_run(lowp, to_numpy=lambda t: t.detach().double().numpy())]


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="the agreement below is that of torch's AVX2/AVX512 vectorized loops")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_types_match_torch_vectorized_loops(dtype):
    """On tensors that torch's vectorized loops cover entirely, the half types agree almost bit for bit.

    Sizes are multiples of 128 elements, so no element falls in a scalar tail (see
    numpy_backend's docstring on ``add``).  What remains are float32 FMAs in torch's
    addcmul/lerp whose double rounding to the half type differs in rare elements:
    none here, about 1 in 100,000 over larger runs, hence the small allowance.  A
    wrong scalar conversion (say ``lr`` to float32 where torch rounds it to the half
    type) shows in percents of the elements.
    """
    shapes = [[(16, 32), (256,)], [(4, 8, 4), (384,)]]
    for optimizer in TORCH_OPTIMIZERS:
        for n, hypers in enumerate(CASES[optimizer]):
            if optimizer == "sgd_sparse" and dtype == "float16" and any(h.get("momentum") for h in hypers):
                continue  # torch raises: known deviation sgd-sparse-momentum-float16-raises (finding 111)
            case = make_case(optimizer, hypers, dtype=dtype, seed=11 + n, shapes=shapes)
            ours, theirs = backend.run(case), _torch_lowp(case)
            differ = total = 0
            for out, (t_params, _) in zip(ours, theirs):
                for a, b in zip(sum(out.params, []), sum(t_params, [])):
                    a, b = a.astype(np.float64), b.astype(np.float64)
                    differ += np.sum((a != b) & ~(np.isnan(a) & np.isnan(b)))
                    total += a.size
            assert differ <= 1e-3 * total, f"{optimizer} {n} {dtype}: {differ}/{total} elements differ from torch"


def test_protocol():
    assert backend.name == "numpy"
    for opt in OPTIMIZERS:
        assert tuple(backend.paths(opt)) == ("for-loop",)
        assert tuple(backend.dtypes(opt, "for-loop")) == tuple(DTYPES)
    assert tuple(backend.paths("sophia")) == ()


def test_inputs_not_modified_and_zero_dim():
    case = make_case("adam", CASES["adam"][1])
    before = [[p.copy() for p in g.params] for g in case.groups]
    backend.run(case)
    for g, b in zip(case.groups, before):
        for p, q in zip(g.params, b):
            np.testing.assert_array_equal(p, q)
    assert backend.run(case)[0].params[0][2].shape == ()


# (optimizer, hyperparameters, the exception torch raises): this port must raise the same.
INVALID = [(name, dict(i.hyper), i.torch_error) for name in OPTIMIZERS for i in get(name).invalid if i.torch_error]
# Accepted by torch's constructors although odd: the same conditions must accept them here.
ODD_BUT_VALID = [(name, dict(h)) for name in OPTIMIZERS
                 for h in [i.hyper for i in get(name).invalid if not i.torch_error] + list(get(name).edge)]


def _case_with(optimizer, hyper):
    sparse = optimizer in OPTIMIZERS and spec_get(optimizer).sparse_gradients
    grad = np.ma.MaskedArray(np.ones(2), mask=False) if sparse else np.ones(2)
    return Case(optimizer, "float64", [Group(hyper, [np.ones(2)])], [[[grad]]], path="for-loop")


@pytest.mark.parametrize("optimizer,hyper,error", INVALID, ids=[f"{o}-{h}" for o, h, _ in INVALID])
def test_invalid_hyperparameters_raise(optimizer, hyper, error):
    with pytest.raises(error):
        backend.run(_case_with(optimizer, hyper))
    if get(optimizer).torch:
        with pytest.raises(error):  # torch's constructor agrees
            torch_run(_case_with(optimizer, hyper))


@pytest.mark.parametrize("optimizer,hyper", ODD_BUT_VALID, ids=[f"{o}-{h}" for o, h in ODD_BUT_VALID])
def test_odd_but_valid_hyperparameters_accepted(optimizer, hyper):
    backend.run(_case_with(optimizer, hyper))
    if get(optimizer).torch:
        torch_run(_case_with(optimizer, hyper))


def test_unknown_hyperparameter_and_case_fields_raise():
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        backend.run(_case_with("adamw", {"decoupled_weight_decay": True}))
    with pytest.raises(ValueError, match="unknown optimizer"):
        backend.run(_case_with("sophia", {}))
    case = replace(_case_with("adam", {}), path="fused")
    with pytest.raises(ValueError, match="path"):
        backend.run(case)
