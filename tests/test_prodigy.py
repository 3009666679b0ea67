"""Prodigy (spec/prodigy.py): prodigyopt 1.1.2's class, pytorch-optimizer 4.1.0's (its dialect) and the NumPy port.

What is checked, per step, from the implementation's own previous step (tests/prodigy_check.py): the group scalars
d_numerator, d_denom and d̂ within the any-order summation bound of the tolerance model, d_max and d exactly from
the observed d̂, and exp_avg, exp_avg_sq, s and θ of every tensor element by element within the derived bound given
the d the implementation had.  Two parameter groups of several tensors, gradients that keep a direction (so that
d grows), float64, float32, bfloat16 and float16 (the half formats with d0 = 10⁻² and a larger ε: with the
default d0 = 10⁻⁶, d²(1 − β₂)g² underflows in float16 and the steps round away in bfloat16, so d never leaves
d0, a limitation of the formats that the drawn cases meet too).  The findings are in tests/test_prodigy_findings.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

torch = pytest.importorskip("torch")
prodigyopt = pytest.importorskip("prodigyopt")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

from conformance.backends import numpy_prodigy  # noqa: E402
from spec.prodigy import PRODIGY  # noqa: E402
from tests import prodigy_check as pc  # noqa: E402

SHAPES = [[(3,), (2, 2)], [(4,), (1,)]]
CLASSES = {"prodigyopt": prodigyopt.Prodigy, "pytorch_optimizer": pytorch_optimizer.Prodigy}
HALF = dict(d0=1e-2, eps=1e-4)  # the half formats: see the module's docstring
HALVES = ("float16", "bfloat16")
#: torch refuses a Python-float alpha beyond float16's range (s's (d/d0)·dlr once d has grown): a format limit
HALF_OVERFLOW = "cannot be converted to type c10::Half without overflow"


def _case(seed: int, dtype: str, steps: int = 5, shapes=SHAPES):
    """Groups of θ₀ and gradients ``base + noise`` (a direction kept, so dot(g, p0 − θ) > 0 and d grows), all of
    ``dtype``'s values as float64 arrays."""
    rng = np.random.default_rng(seed)

    def q(a):
        return torch.tensor(a, dtype=pc.DTYPES[dtype]).double().numpy()

    groups = [[q(rng.standard_normal(s)) for s in grp] for grp in shapes]
    base = [[rng.standard_normal(s) for s in grp] for grp in shapes]
    grads = [[[q(b + 0.3 * rng.standard_normal(b.shape)) for b in grp] for grp in base] for _ in range(steps)]
    return groups, grads


def _np_dtype(dtype):
    return pc._to_numpy(torch.zeros(1, dtype=pc.DTYPES[dtype])).dtype


def _run(library, hyper, groups, grads, dtype, group_lrs=None, broken=""):
    if library == "numpy":
        d = _np_dtype(dtype)
        return numpy_prodigy.run(pc.complete(hyper), [[a.astype(d) for a in g] for g in groups], grads,
                                 group_lrs=group_lrs, broken=broken)
    return pc.run(CLASSES[library], library, hyper, groups, grads, dtype, group_lrs=group_lrs)


def _check(library, hyper, dtype, seed, steps=5, group_lrs=None, broken=""):
    groups, grads = _case(seed, dtype, steps)
    rows = _run(library, hyper, groups, grads, dtype, group_lrs, broken)
    return rows, pc.check_steps(library, hyper, groups, grads, rows, dtype, group_lrs=group_lrs)


FIXED = [dict(),
         dict(weight_decay=0.1, use_bias_correction=True),
         dict(weight_decay=0.05, decouple=False, beta1=0.0, safeguard_warmup=True),
         dict(lr=0.5, growth_rate=1.02, d_coef=2.0, beta3=0.9)]


@pytest.mark.parametrize("library", ["prodigyopt", "pytorch_optimizer", "numpy"])
@pytest.mark.parametrize("dtype", list(pc.DTYPES))
def test_fixed_cases_conform(library, dtype):
    for k, hyper in enumerate(FIXED):
        if dtype in HALVES and k % 2:
            continue  # the half formats: two of the four (the CI budget), the coupled-decay β₁ = 0 one among them
        if library == "pytorch_optimizer" and not hyper.get("decouple", True):
            hyper = {**hyper, "decouple": True}  # its coupled decay changes nothing: finding 91
        hyper = {**hyper, **(HALF if dtype in HALVES else {})}
        rows, failures = _check(library, hyper, dtype, seed=k, steps=4)
        assert not failures, (hyper, failures[:4])
        if dtype in ("float32", "float64"):
            assert rows[-1]["scalars"]["d"] > rows[0]["scalars"]["d"], "d never grew: the case checks too little"


@pytest.mark.parametrize("library", ["prodigyopt", "numpy"])
def test_slice_p_reads_every_pth_element(library):
    """slice_p = 3: s and p0 are kept for elements 0, 3, 6, … of the flattened tensor only, and the reductions read
    those; the check follows (pytorch-optimizer has no slice_p: finding 93)."""
    hyper = dict(slice_p=3, use_bias_correction=True)
    groups, grads = _case(6, "float32", 4, shapes=[[(7,), (2, 4)], [(5,)]])
    rows = _run(library, hyper, groups, grads, "float32")
    assert not pc.check_steps(library, hyper, groups, grads, rows, "float32")
    assert rows[-1]["scalars"]["d"] > rows[0]["scalars"]["d"]
    assert pc.check_steps(library, {**hyper, "slice_p": 1}, groups, grads, rows, "float32"), "slice_p unseen"


def test_a_nan_gradient_freezes_d():
    """One NaN element at step 2: N and d̂ are NaN from then on, max(d_max, NaN) keeps d_max, so d stops adapting;
    the other elements step on, and the check (NaN where the exact IEEE rules give NaN) passes."""
    groups, grads = _case(1, "float32", 4)
    grads[1][0][0] = grads[1][0][0].copy()
    grads[1][0][0][1] = float("nan")
    for library in ("prodigyopt", "pytorch_optimizer", "numpy"):
        with np.errstate(invalid="ignore"):
            rows = _run(library, {}, groups, grads, "float32")
        assert not pc.check_steps(library, {}, groups, grads, rows, "float32"), library
        assert all(np.isnan(r["scalars"]["d_hat"]) for r in rows[1:])
        assert len({r["scalars"]["d"] for r in rows[1:]}) == 1
        assert np.isfinite(rows[-1]["tensors"][1][0]["theta"]).all()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pytorch_optimizers_foreach_path_conforms(dtype):
    """pytorch-optimizer's foreach path (``_step_foreach``, ``_apply_update_foreach``), asked for on the CPU."""
    for k, hyper in enumerate(FIXED[:2]):
        hyper = {**hyper, **(HALF if dtype in HALVES else {})}
        groups, grads = _case(k, dtype, 4)
        rows = pc.run(pytorch_optimizer.Prodigy, "pytorch_optimizer", hyper, groups, grads, dtype, foreach=True)
        assert not pc.check_steps("pytorch_optimizer", hyper, groups, grads, rows, dtype)


def test_p0_is_the_initial_parameter_and_a_zero_scalar_for_a_zero_tensor():
    a, z = torch.tensor([1.0, -2.0]), torch.zeros(3)
    opt = prodigyopt.Prodigy([a, z])
    a.grad, z.grad = torch.ones(2), torch.ones(3)
    opt.step()
    assert torch.equal(opt.state[a]["p0"], torch.tensor([1.0, -2.0]))
    assert opt.state[z]["p0"].shape == () and opt.state[z]["p0"].item() == 0.0


def test_early_return_when_every_gradient_is_zero():
    """D = 0: prodigyopt returns before θ, k and the group scalars move (m, v, s were already updated: zeros)."""
    hyper = dict()
    groups, grads = _case(3, "float64", steps=3)
    grads[1] = [[np.zeros_like(g) for g in grp] for grp in grads[1]]
    grads[0] = [[np.zeros_like(g) for g in grp] for grp in grads[0]]
    for library in ("prodigyopt", "pytorch_optimizer", "numpy"):
        rows = _run(library, hyper, groups, grads, "float64")
        assert not pc.check_steps(library, hyper, groups, grads, rows, "float64")
        assert rows[1]["scalars"]["k"] == (0 if library != "pytorch_optimizer" else 2)


@pytest.mark.parametrize("broken", list(numpy_prodigy.BROKEN))
def test_each_broken_port_is_caught(broken):
    hyper = dict(use_bias_correction=True, growth_rate=1.5)
    assert not _check("numpy", hyper, "float64", seed=7, steps=6)[1]
    assert _check("numpy", hyper, "float64", seed=7, steps=6, broken=broken)[1], f"{broken} passed"


def test_the_dialects_group_scalars_are_float32_witness():
    """pytorch-optimizer keeps d_numerator and d_de_nom in float32 tensors: its d̂ is a float32 value, outside
    binary64's bound (prodigyopt's) but within float32's (its dialect)."""
    groups, grads = _case(1, "float64")
    rows = pc.run(pytorch_optimizer.Prodigy, "pytorch_optimizer", {}, groups, grads, "float64")
    assert all(float(np.float32(r["scalars"]["d_hat"])) == r["scalars"]["d_hat"] for r in rows)
    assert not pc.check_steps("pytorch_optimizer", {}, groups, grads, rows, "float64")
    assert any("d_hat" in f for f in pc.check_steps("prodigyopt", {}, groups, grads, rows, "float64"))


def test_the_dialects_beta1_zero_step_uses_the_old_d_witness():
    """β₁ = 0: prodigyopt steps by dlr·d_{k+1}·g/den, pytorch-optimizer by dlr·(d_k·g)/den (m = d_k·g, the paper's):
    once d grows, each fails the other's rule."""
    hyper = dict(beta1=0.0)
    groups, grads = _case(2, "float64")
    theirs = pc.run(pytorch_optimizer.Prodigy, "pytorch_optimizer", hyper, groups, grads, "float64")
    ours = pc.run(prodigyopt.Prodigy, "prodigyopt", hyper, groups, grads, "float64")
    assert not pc.check_steps("pytorch_optimizer", hyper, groups, grads, theirs, "float64")
    assert not pc.check_steps("prodigyopt", hyper, groups, grads, ours, "float64")
    crossed = pc.check_steps("numpy", hyper, groups, grads, theirs, "float64")  # the canonical rule on theirs
    assert any(" theta[" in f for f in crossed)


@pytest.mark.parametrize("kw", [dict(lr=0.0), dict(lr=float("nan")), dict(eps=0.0), dict(d0=0.0),
                                dict(betas=(1.0, 0.999)), dict(betas=(0.9, -0.1))])
def test_refused_hyperparameters(kw):
    """prodigyopt refuses lr, ε, d0 ≤ 0 (NaN too) and β₁, β₂ outside [0, 1); the spec refuses the same."""
    with pytest.raises(ValueError):
        prodigyopt.Prodigy([torch.zeros(2)], **kw)
    spec_kw = {("beta1" if i == 0 else "beta2"): b for i, b in enumerate(kw.pop("betas", ()))} | kw
    with pytest.raises(ValueError):
        PRODIGY.complete(spec_kw)


@pytest.mark.parametrize("library", ["prodigyopt", "numpy"])
def test_a_group_with_lr_zero_follows_the_code_flag_lr_zero(library):
    """The spec states what prodigyopt does to a group with lr = 0 (flag ``lr_zero``: no moments, no share of d, θ
    still stepped with the global dlr; finding 89), and the check tells it from a frozen group."""
    hyper = dict(beta1=0.0, weight_decay=0.1)
    rows, failures = _check(library, hyper, "float64", seed=4, steps=4, group_lrs=[1.0, 0.0])
    assert not failures, failures[:4]
    groups, _ = _case(4, "float64", 4)
    assert not np.array_equal(rows[-1]["tensors"][1][0]["theta"], groups[1][0])  # the lr = 0 group moved


def test_unequal_group_lrs_are_refused_at_step():
    opt = prodigyopt.Prodigy([{"params": [torch.ones(2)]}, {"params": [torch.ones(2)], "lr": 0.5}])
    for p in (q for grp in opt.param_groups for q in grp["params"]):
        p.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="different lr values"):
        opt.step()
    with pytest.raises(RuntimeError, match="different lr values"):
        numpy_prodigy.run(pc.complete({}), [[np.ones(2)], [np.ones(2)]], [[[np.ones(2)], [np.ones(2)]]],
                          group_lrs=[1.0, 0.5])


@st.composite
def _drawn(draw):
    """A dtype, hyperparameters and 2–4 steps over two groups of 1–3 tensors of 1–4 elements, finite values."""
    dtype = draw(st.sampled_from(list(pc.DTYPES)))
    shapes = [[(draw(st.integers(1, 4)),) for _ in range(draw(st.integers(1, 3)))] for _ in range(2)]
    hyper = dict(lr=draw(st.sampled_from([1.0, 0.5, 3.0])), beta1=draw(st.sampled_from([0.0, 0.9])),
                 weight_decay=draw(st.sampled_from([0.0, 0.1])), decouple=draw(st.booleans()),
                 use_bias_correction=draw(st.booleans()), safeguard_warmup=draw(st.booleans()),
                 growth_rate=draw(st.sampled_from([float("inf"), 1.02])), d_coef=draw(st.sampled_from([1.0, 0.5])))
    if dtype in HALVES:
        hyper.update(HALF)
    return dtype, hyper, draw(st.integers(0, 2 ** 16)), shapes, draw(st.integers(2, 4))


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(_drawn())
def test_drawn_cases_conform(case):
    dtype, hyper, seed, shapes, steps = case
    groups, grads = _case(seed, dtype, steps, shapes)
    for library in ("prodigyopt", "pytorch_optimizer", "numpy"):
        h = {**hyper, "decouple": True} if library == "pytorch_optimizer" else hyper  # finding 91
        try:
            rows = _run(library, h, groups, grads, dtype)
        except RuntimeError as e:
            if dtype == "float16" and HALF_OVERFLOW in str(e):
                event("float16: a scalar beyond the format's range (torch refuses it)")
                continue
            raise
        assert not pc.check_steps(library, h, groups, grads, rows, dtype), library
