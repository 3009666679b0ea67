"""Each input-specific known deviation of torch, reproduced directly.

These tests assert that the deviation is still there: when torch fixes one, its test fails, and the entry
in conformance/known_deviations.py must go (the harness then checks those inputs again).
"""
import math
import re
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.optim.optimizer import _get_fused_kernels_supported_devices  # noqa: E402


def test_adagrad_ignores_per_group_initial_accumulator_value():
    a, b = torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    opt = torch.optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 2.0}],
                              initial_accumulator_value=0.5)
    assert opt.param_groups[1]["initial_accumulator_value"] == 2.0
    assert opt.state[b]["sum"].item() == 0.5  # the spec (and the group's setting) say 2.0


@pytest.mark.parametrize("flags", [dict(foreach=True), dict(foreach=True, capturable=True)],
                         ids=["foreach", "capturable-foreach"])
def test_radam_foreach_nan_with_zero_eps_before_rectification(capturable_on_cpu, flags):
    out = {}
    for name, kw in (("for-loop", dict(foreach=False)), ("tested", flags)):
        p = torch.tensor([1.0, 2.0], dtype=torch.float64)
        opt = torch.optim.RAdam([p], lr=0.1, eps=0.0, **kw)
        for _ in range(2):
            p.grad = torch.tensor([0.0, 1.0], dtype=torch.float64)
            opt.step()
        out[name] = p.clone()
    assert out["for-loop"][0].item() == 1.0  # the spec: a zero gradient leaves θ unchanged while ρ_t ≤ 5
    assert torch.isnan(out["tested"][0])


def test_radam_foreach_nan_when_v_overflows_before_rectification():
    """float16 g = −256: v = g² = 65536 overflows; with β₂ = 0 the next v is 0·inf = NaN, and foreach spreads it."""
    out = {}
    for foreach in (False, True):
        p = torch.zeros((), dtype=torch.float16)
        opt = torch.optim.RAdam([p], lr=0.0, betas=(0.9, 0.0), eps=10.0, foreach=foreach)
        for g in (-256.0, 0.0):
            p.grad = torch.tensor(g, dtype=torch.float16)
            opt.step()
        out[foreach] = p.item()
    assert out[False] == 0.0  # lr = 0: the spec (and the for-loop path) leave θ unchanged
    assert math.isnan(out[True])


@pytest.mark.skipif("cpu" not in _get_fused_kernels_supported_devices(),
                    reason="this torch has no fused CPU kernels")
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_rprop_takes_a_zero_sign_for_a_flip_where_etaminus_rounds_to_one(foreach):
    p = torch.tensor([-1.0], dtype=torch.float16)
    opt = torch.optim.Rprop([p], lr=0.01, etas=(1 - 2 ** -20, 1.2), foreach=foreach)
    p.grad = torch.tensor([-1.0], dtype=torch.float16)
    opt.step()
    assert p.item() == -1.0 and opt.state[p]["prev"].item() == 0.0  # the spec: θ = −1 + 0.01, g_prev = −1


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_rprop_keeps_a_flipped_gradient_where_etaminus_rounds_to_zero(foreach):
    p = torch.tensor([0.0], dtype=torch.float16)
    opt = torch.optim.Rprop([p], lr=0.01, etas=(1e-8, 1.2), foreach=foreach)
    for g in (1.0, -1.0):
        p.grad = torch.tensor([g], dtype=torch.float16)
        opt.step()
    # the spec: the flip zeroes g (θ stays at −Δ₁, g_prev = 0) and shrinks Δ to Δ_min
    assert p.item() == 0.0 and opt.state[p]["prev"].item() == -1.0
    assert opt.state[p]["step_size"].item() == torch.tensor(0.01, dtype=torch.float16).item()


def test_fused_sgd_raises_when_a_momentum_buffer_is_missing():
    a, b = torch.ones(2), torch.ones(1)
    opt = torch.optim.SGD([a, b], lr=0.1, momentum=0.5, fused=True)
    a.grad = torch.ones_like(a)
    opt.step()
    b.grad = torch.ones_like(b)
    with pytest.raises(TypeError, match="NoneType"):
        opt.step()


@pytest.mark.skipif("cpu" not in _get_fused_kernels_supported_devices(),
                    reason="this torch has no fused CPU kernels")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_sgd_leaves_whole_simd_blocks_of_half_parameters_unchanged(dtype):
    """pytorch/pytorch#191763: 64 elements are whole vectors on every CPU (8, 16 or 32 lanes): none moves."""
    out = {}
    for fused in (False, True):
        p = torch.ones(64, dtype=dtype, requires_grad=True)
        p.grad = torch.ones(64, dtype=dtype)
        torch.optim.SGD([p], lr=0.5, fused=fused).step()
        out[fused] = p.detach()
    assert torch.equal(out[False], torch.full((64,), 0.5, dtype=dtype))  # the spec's 1 − 0.5·1, exact
    assert torch.equal(out[True], torch.ones(64, dtype=dtype))  # fused: not updated at all
    short = torch.ones(3, dtype=dtype, requires_grad=True)  # shorter than a vector: the scalar tail is right
    short.grad = torch.ones(3, dtype=dtype)
    torch.optim.SGD([short], lr=0.5, fused=True).step()
    assert torch.equal(short.detach(), torch.full((3,), 0.5, dtype=dtype))


@pytest.mark.parametrize("flags", [dict(foreach=True), dict(foreach=True, capturable=True)],
                         ids=["foreach", "capturable-foreach"])
def test_radam_foreach_step_size_overflows_in_float16(capturable_on_cpu, flags):
    out = {}
    for name, kw in (("for-loop", dict(foreach=False)), ("tested", flags)):
        p = torch.zeros(1, dtype=torch.float16)
        opt = torch.optim.RAdam([p], lr=1.0, betas=(0.99999237, 0.999), **kw)
        p.grad = torch.tensor([-0.5], dtype=torch.float16)
        opt.step()
        out[name] = p.item()
    assert out["for-loop"] == 0.5  # unrectified first step: θ − lr·m̂ with m̂ = g = −0.5
    assert out["tested"] == float("inf")


def test_radam_foreach_loses_the_rectified_step_where_its_denominator_overflows():
    """Non-capturable foreach RAdam forms D = (√v + ε)·bc₁/(√bc₂·lr·r_t) in float16 and steps by m·(1/D): with
    lr = 1e-6 and β₂ = 0.9 the first rectified step (t = 6, r₆ ≈ 0.26) has D ≈ 2e6 > 65504, so 1/D = 0 and θ stays
    where the for-loop path (and the exact spec) moves it.  The five unrectified steps before it agree."""
    from conformance.deviation_predicates import _capturable_denominator_leaves_range

    out = {}
    for foreach in (False, True):
        p = torch.zeros(1, dtype=torch.float16)
        opt = torch.optim.RAdam([p], lr=1e-6, betas=(0.9, 0.9), foreach=foreach)
        thetas = []
        for _ in range(6):
            p.grad = torch.ones(1, dtype=torch.float16)
            opt.step()
            thetas.append(p.item())
        out[foreach] = thetas
    assert out[True][:5] == out[False][:5]
    assert out[False][5] < out[False][4]  # the rectified step moves θ down
    assert out[True][5] == out[True][4]  # foreach: m·(1/inf) = 0
    assert _capturable_denominator_leaves_range(
        _case("radam", "float16", dict(lr=1e-6, beta1=0.9, beta2=0.9), 0.0, [1.0] * 6))


def test_radam_foreach_nan_where_the_reciprocal_of_a_subnormal_denominator_overflows():
    """Seed 6 of session 24 (docs/measured/seed-campaign.md): zero gradients, so m = v = 0, and ε = 2⁻¹²⁶.  At the
    first rectified step (t = 6, ρ₆ ≈ 5.34) D = ε·bc₁/(√bc₂·lr·r₆) ≈ 1e−40 is a float32 subnormal: the for-loop
    path leaves θ alone, foreach steps by m·(1/D) = 0·inf = NaN.  The predicate must cover it, for RAdam only
    (capturable Adam divides m/D, and 0/1e−40 is 0)."""
    from conformance.deviation_predicates import _capturable_denominator_leaves_range

    hyper = dict(lr=1.3088367762343731, beta1=0.99951171875, beta2=0.8922541107951026, eps=2.0 ** -126)
    theta = [float.fromhex("0x1.f8b71p-21"), float.fromhex("-0x1.c64p+10"), float.fromhex("-0x1p-148")]
    out = {}
    for foreach in (False, True):
        p = torch.tensor(theta, dtype=torch.float32)
        opt = torch.optim.RAdam([p], lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"],
                                foreach=foreach)
        for _ in range(6):
            p.grad = torch.zeros(3)
            opt.step()
        out[foreach] = p.tolist()
    assert out[False] == torch.tensor(theta, dtype=torch.float32).tolist()
    assert all(math.isnan(x) for x in out[True])
    assert _capturable_denominator_leaves_range(_case("radam", "float32", hyper, theta[0], [0.0] * 6))
    five = _case("radam", "float32", hyper, theta[0], [0.0] * 5)  # unrectified steps only: no D at all
    assert not _capturable_denominator_leaves_range(five)


@pytest.mark.skipif("cpu" not in _get_fused_kernels_supported_devices(),
                    reason="this torch has no fused CPU kernels")
def test_fused_amsgrad_drops_nan_from_the_running_maximum():
    out = {}
    for path, flags in (("for-loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        p = torch.zeros(2)
        opt = torch.optim.Adam([p], lr=0.1, amsgrad=True, **flags)
        for g in ([1.0, 1.0], [float("nan"), 1.0]):
            p.grad = torch.tensor(g)
            opt.step()
        out[path] = opt.state[p]["max_exp_avg_sq"][0].item()
    assert math.isnan(out["for-loop"]) and math.isnan(out["foreach"])  # torch.maximum propagates NaN, as the spec
    assert out["fused"] == pytest.approx(0.001)  # fused: the old maximum survives


def test_second_moment_overflow_predicate_does_not_overflow_itself():
    """float64 gradients near 1e300: the predicate decides without a Python OverflowError (default profile, seed 2)."""
    import numpy as np
    from conformance.deviation_predicates import _second_moment_overflows
    from conformance.backend import Case, Group
    big = Case("radam", "float64", [Group({"beta2": 0.999}, [np.zeros(1)])], [[[np.array([1e300])]]])
    fine = Case("radam", "float64", [Group({"beta2": 0.999}, [np.zeros(1)])], [[[np.array([1e150])]]])
    assert _second_moment_overflows(big) and not _second_moment_overflows(fine)


def test_adagrad_foreach_maximize_is_not_bit_identical_to_negated_gradients_in_bfloat16():
    out = {}
    for foreach in (False, True):
        for maximize, g in ((True, -1.25), (False, 1.25)):
            p = torch.tensor(-1.0, dtype=torch.bfloat16)
            opt = torch.optim.Adagrad([p], lr=7.171875, eps=1e-10, maximize=maximize, foreach=foreach)
            p.grad = torch.tensor(g, dtype=torch.bfloat16)
            opt.step()
            out[foreach, maximize] = p.item()
    assert out[False, True] == out[False, False] == -8.1875  # for-loop: the property holds
    assert (out[True, True], out[True, False]) == (-8.1875, -8.125)  # foreach: it does not


def test_adagrad_foreach_maximize_is_not_bit_identical_to_negated_gradients_in_float16():
    """Default profile, seed 3 (session 23): −clr·g at lr 98.5 after two steps; the exact product is −110.2147."""
    g = torch.tensor([1.136], dtype=torch.float16)
    minus_clr = [-98.49761597465866 / (1 + 1 * 0.015), -98.49761597465866 / (1 + 2 * 0.015)]
    other = torch.tensor([6.6e-07], dtype=torch.float16)
    out_of_place = torch._foreach_mul([g, other], minus_clr)[0].item()  # maximize=False, weight_decay=0
    in_place = [g.clone(), other.clone()]
    torch._foreach_mul_(in_place, minus_clr)  # maximize=True (after _foreach_neg)
    assert (out_of_place, in_place[0].item()) == (-110.1875, -110.25)
    # the same through Adagrad: θ after the third step of one parameter among two, maximize on g vs not on −g
    out = {}
    for maximize, sign in ((True, 1), (False, -1)):
        ps = [torch.tensor([0.003176], dtype=torch.float16), torch.tensor([1.2e-06], dtype=torch.float16)]
        opt = torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.015, initial_accumulator_value=0.96875,
                                  eps=4.259536264420738e-08, maximize=maximize, foreach=True)
        for lr, gs in ((0.1, (-0.0001191, 196.9)), (0.01, (None, -8e-07)), (98.49761597465866, (-1.136, -6.6e-07))):
            opt.param_groups[0]["lr"] = lr
            for p, x in zip(ps, gs):
                p.grad = None if x is None else sign * torch.tensor([x], dtype=torch.float16)
            opt.step()
        out[maximize] = ps[0].item()
    assert (out[True], out[False]) == (-73.375, -73.3125)


# --------------------------------------------------------------------------- capturable paths (CUDA), on the CPU
# capturable=True is refused off CUDA/XLA by a device check only; the arithmetic is ordinary tensor ops, so lifting
# the check reproduces the torch-cuda findings here.  (torch's own tests do the same with the for-loop code.)

@pytest.fixture
def capturable_on_cpu():
    from tests.torch_capturable import capturable_on_cpu as lifted
    with lifted():
        yield


def _steps(cls, dtype, grads, theta=0.0, **kw):
    """θ after the steps, for a 1-element parameter (1-d: a 0-d one would promote with torch's 0-d float32 step
    tensors, and the float16 overflow would not happen)."""
    p = torch.tensor([theta], dtype=dtype)
    opt = cls([p], **kw)
    for g in grads:
        p.grad = torch.tensor([g], dtype=dtype)
        opt.step()
    return p.item()


def test_capturable_float64_steps_use_float32_bias_corrections(capturable_on_cpu):
    loop = _steps(torch.optim.Adam, torch.float64, [1.0], 1.0, lr=0.1, foreach=False)
    capt = _steps(torch.optim.Adam, torch.float64, [1.0], 1.0, lr=0.1, capturable=True, foreach=False)
    assert abs(capt - loop) > 1e-9  # float32-sized (the for-loop path is within a few float64 ulps of exact)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # _get_scalar_dtype() is then float64: the step counter too
    try:
        capt64 = _steps(torch.optim.Adam, torch.float64, [1.0], 1.0, lr=0.1, capturable=True, foreach=False)
    finally:
        torch.set_default_dtype(previous)
    assert abs(capt64 - loop) < 1e-15


def test_capturable_adam_is_nan_with_zero_lr(capturable_on_cpu):
    kw = dict(lr=0.0, betas=(0.9, 0.5), eps=0.0, foreach=False)
    assert _steps(torch.optim.Adam, torch.float32, [-4.0, 1.5], 16.0, **kw) == 16.0  # lr = 0: θ unchanged
    assert math.isnan(_steps(torch.optim.Adam, torch.float32, [-4.0, 1.5], 16.0, capturable=True, **kw))


def test_capturable_adamax_loses_the_step_when_m_over_lr_overflows_float16(capturable_on_cpu):
    kw = dict(lr=1.8e-4, foreach=False)
    loop = _steps(torch.optim.Adamax, torch.float16, [3276.0], **kw)
    assert loop == pytest.approx(-1.8e-4, rel=1e-2)  # exact: −lr·m̂/u = −lr
    assert _steps(torch.optim.Adamax, torch.float16, [3276.0], capturable=True, **kw) == 0.0


def test_cpu_foreach_mul_rounds_a_scalar_to_bfloat16_and_mul_does_not():
    """Why foreach SGD's per-tensor fallback (some momentum buffer new) differs from its _foreach_mul_ path."""
    x = torch.tensor([-0.175], dtype=torch.bfloat16)
    single = x.clone().mul_(0.175)
    listed = [x.clone()]
    torch._foreach_mul_(listed, 0.175)
    assert single.item() == float.fromhex("-0x1.f6p-6") and listed[0].item() == float.fromhex("-0x1.f4p-6")


def _case(optimizer, dtype, hyper, theta, grads, lrs=None):
    import numpy as np
    from conformance.backend import Case, Group
    import spec as spec_pkg
    np_dtype = {"float16": np.float16, "float32": np.float32}[dtype]
    return Case(optimizer, dtype, [Group(spec_pkg.get(optimizer).complete(hyper), [np.array([theta], np_dtype)])],
                [[[np.array([g], np_dtype)]] for g in grads], lrs)


ADAMAX_D_ZERO = dict(lr=3.51162054693322, beta1=0.99, beta2=0.0001246253495051735, eps=3.671532054641479e-06,
                     weight_decay=5.148000461209169)  # torch-cuda, session 4 (docs/measured/torch-cuda.md)


@pytest.mark.parametrize("foreach", [False, True])
def test_capturable_adamax_is_nan_where_the_scaled_denominator_underflows_to_zero(capturable_on_cpu, foreach):
    """θ = −2⁻²³, g = −0, λ = 5.1: u = |λθ| + ε = 4.3e-6 and D = u·bc₁/lr = 1.2e-8 rounds to 0 in float16, where
    m = −0 (its exact −6e-9 underflows): 0/0.  The for-loop path's (lr/bc₁)·m/u is 0 there."""
    from conformance.deviation_predicates import _capturable_denominator_leaves_range
    h = ADAMAX_D_ZERO
    kw = dict(lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"])
    loop = _steps(torch.optim.Adamax, torch.float16, [-0.0], -2.0 ** -23, foreach=False, **kw)
    capt = _steps(torch.optim.Adamax, torch.float16, [-0.0], -2.0 ** -23, capturable=True, foreach=foreach, **kw)
    assert math.isfinite(loop) and math.isnan(capt)
    assert _capturable_denominator_leaves_range(_case("adamax", "float16", h, -2.0 ** -23, [-0.0]))


def test_capturable_adamax_loses_precision_where_the_scaled_denominator_is_subnormal(capturable_on_cpu):
    """lr = 100, g = 2⁻¹⁰, ε = 1e-3: D = (|g| + ε)·bc₁/lr = 2e-6, a float16 subnormal with 5 significant bits;
    the step (exact −49.41) is 7 ulps off, where the for-loop path is within one.  lr = 1 keeps D normal."""
    from conformance.deviation_predicates import _capturable_denominator_leaves_range
    g = 2.0 ** -10
    exact = -100 * g / (g + 1e-3)  # lr·(m/bc₁)/u with m/bc₁ = g on the first step
    kw = dict(lr=100.0, betas=(0.9, 0.999), eps=1e-3)
    loop = _steps(torch.optim.Adamax, torch.float16, [g], foreach=False, **kw)
    capt = _steps(torch.optim.Adamax, torch.float16, [g], capturable=True, foreach=False, **kw)
    ulp = 2.0 ** -5  # float16 ulp in [32, 64)
    assert abs(loop - exact) <= ulp and abs(capt - exact) >= 4 * ulp
    hyper = dict(lr=100.0, beta1=0.9, beta2=0.999, eps=1e-3)
    assert _capturable_denominator_leaves_range(_case("adamax", "float16", hyper, 0.0, [g]))
    assert not _capturable_denominator_leaves_range(_case("adamax", "float16", {**hyper, "lr": 1.0}, 0.0, [g]))


def test_capturable_predicates_on_the_torch_cuda_adam_case():
    """The capturable-foreach Adam failure of the torch-cuda run (float16, lr = 80.5, β₁ = 1 − 2⁻¹⁵, g = −1,
    maximize: θ = −inf, exact −40.26): its exact D = 7.6e-7 is subnormal, and lr/bc₁ = 2.6e6 is past 65504,
    which a CUDA 0-dim tensor rounded to float16 makes −inf.  Adam's defaults in float32 are outside both."""
    from conformance.deviation_predicates import _capturable_denominator_leaves_range, _capturable_factor_leaves_range
    from conformance.known_deviations import affecting, torch_target
    hyper = dict(lr=80.51557018746989, beta1=1 - 2.0 ** -15, beta2=1 - 2.0 ** -16, eps=0.9999999981373549,
                 maximize=True)
    case = _case("adam", "float16", hyper, 0.0, [-1.0])
    assert _capturable_factor_leaves_range(case) and _capturable_denominator_leaves_range(case)
    plain = _case("adam", "float32", dict(lr=1e-3), 0.5, [0.25, -1.0, 0.0])
    assert not _capturable_factor_leaves_range(plain) and not _capturable_denominator_leaves_range(plain)
    assert affecting(torch_target("torch-cuda", "adam"), "adam", "capturable-foreach", "float32", plain,
                     "test_trajectory") is None
    zero_lr = _case("adam", "float32", dict(lr=0.0, eps=1e-8), 0.5, [0.0])  # single tensor: √0/(−0) = NaN
    assert _capturable_denominator_leaves_range(zero_lr)
    zero_lr_v = _case("adam", "float32", dict(lr=0.0, eps=1e-8), 0.5, [1.0])  # D = inf, m/D = 0: exact
    assert not _capturable_denominator_leaves_range(zero_lr_v)


def test_capturable_adam_is_nan_with_zero_lr_and_an_eps_that_is_zero_in_float32(capturable_on_cpu):
    """ε = 2.2e-309 is 0 in float32, the dtype of the step tensor ε/(−lr/bc₁) is computed in: 0/−0 = NaN, where
    v > 0 and lr = 0 leave θ exactly as it was (found by tests/test_capturable_on_cpu.py, 60 examples)."""
    from conformance.deviation_predicates import _capturable_denominator_leaves_range
    eps = 2.225073858507203e-309
    kw = dict(lr=0.0, eps=eps, weight_decay=0.01, foreach=False)
    assert _steps(torch.optim.AdamW, torch.float32, [-1.0], -1.0, **kw) == -1.0
    assert math.isnan(_steps(torch.optim.AdamW, torch.float32, [-1.0], -1.0, capturable=True, **kw))
    assert _capturable_denominator_leaves_range(_case("adamw", "float32", dict(lr=0.0, eps=eps), -1.0, [-1.0]))


@pytest.mark.parametrize("name", ("Adam", "AdamW", "SGD", "Adagrad"))
def test_cpu_fused_kernels_ignore_the_strides_of_a_non_dense_tensor(name):
    """{adam,adamw,sgd,adagrad}-fused-cpu-ignores-strides: p = buf[1::2] is stepped as 9 contiguous elements from
    its data pointer, gaps included; the for-loop path steps p's own elements."""
    out = {}
    for path, flags in (("for-loop", {"foreach": False}), ("fused", {"fused": True})):
        buf = torch.full((18,), 100.0)
        p = buf[1::2]
        p.copy_(torch.arange(1.0, 10.0))
        grads = torch.full((18,), 5.0)
        p.grad = grads[1::2].fill_(1.0)
        getattr(torch.optim, name)([p], lr=0.1, **flags).step()
        out[path] = buf.clone()
    assert (out["for-loop"][0::2] == 100).all() and (out["for-loop"][1::2] < torch.arange(1.0, 10.0)).all()
    fused = out["fused"]
    assert (fused[2:10:2] != 100).all()  # gaps written
    assert torch.equal(fused[11::2], torch.arange(6.0, 10.0))  # p[5:] left alone


def test_radam_foreach_nan_where_beta2_rounds_to_zero_in_the_dtype():
    """float16, β₂ = 1e-8 (0 in float16), ε = 1e-8 (0 too), g = 8 then 0: the spec's v₂ = β₂·64 > 0 and θ moves
    by the unrectified step; CPU ``_foreach_mul_(v, β₂)`` rounds β₂ to float16 first, so foreach's v₂ is 0 and
    √v + ε = 0 gives 0/0 = NaN before rect = 0 multiplies it.  The element predicate names that element (found by
    the ci profile's draws in session 15, when it still used the unrounded β₂)."""
    import numpy as np
    from conformance.deviation_predicates import _radam_adaptive_term_not_finite_at

    out = {}
    for foreach in (False, True):
        p = torch.ones(1, dtype=torch.float16)
        opt = torch.optim.RAdam([p], lr=1e-3, betas=(0.9, 1e-8), eps=1e-8, foreach=foreach)
        for g in (8.0, 0.0):
            p.grad = torch.tensor([g], dtype=torch.float16)
            opt.step()
        out[foreach] = p.item()
    assert math.isfinite(out[False])  # the for-loop's mul_ keeps β₂ = 1e-8: v₂ = 6.4e-7 rounds to a subnormal
    assert math.isnan(out[True])
    data = _case("radam", "float16", dict(lr=1e-3, beta1=0.9, beta2=1e-8, eps=1e-8), 1.0, [8.0, 0.0])
    assert np.array_equal(_radam_adaptive_term_not_finite_at(data), [True])


@pytest.mark.parametrize("beta2", [0.999, 0.5, 1e-4, 1e-8])
def test_radam_foreach_nan_before_rectification_stays_within_the_elements_its_entry_names(beta2):
    """The element predicate of radam-foreach-nan-before-rectification covers every element foreach RAdam turns
    to NaN (float16, ε = 1e-8 is 0 there; zero, subnormal and tiny gradients), and no element whose gradient
    keeps v well away from 0: the rest of such a tensor is still checked (β₂ = 1e-8: 0 in float16, as the test
    above)."""
    import numpy as np
    from conformance.deviation_predicates import _radam_adaptive_term_not_finite_at

    rng = np.random.default_rng(5)
    n = 4096
    grads = []
    for s in range(8):
        g = rng.standard_normal(n) * np.exp2(rng.integers(-30, 4, n))  # binades down to float16's subnormals
        g[rng.random(n) < 0.2] = 0.0
        g[: n // 2] = rng.uniform(0.1, 10, n // 2) * rng.choice([-1, 1], n // 2)  # ordinary gradients only
        grads.append(g.astype(np.float16))
    theta = rng.standard_normal(n).astype(np.float16)
    data = _case("radam", "float16", dict(beta1=0.9, beta2=beta2), 0.0, [0.0])
    data = type(data)(data.optimizer, data.dtype, [type(data.groups[0])(data.groups[0].hyper, [theta])],
                      [[[g]] for g in grads])
    mask = _radam_adaptive_term_not_finite_at(data)
    p = torch.tensor(theta)
    opt = torch.optim.RAdam([p], betas=(0.9, beta2), foreach=True)
    nan = np.zeros(n, dtype=bool)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        nan |= torch.isnan(p).numpy()
    assert nan.any() and not (nan & ~mask).any()  # every NaN element is named
    assert not mask[: n // 2].any()  # elements with ordinary gradients only are not


# ---- ASGD ---------------------------------------------------------------------------------------------------

def _asgd(dtype, grads, theta=1.0, **kw):
    """(θ, state) of torch.optim.ASGD after the steps, for a 1-element parameter."""
    p = torch.tensor([theta], dtype=dtype)
    opt = torch.optim.ASGD([p], **kw)
    for g in grads:
        p.grad = torch.tensor([g], dtype=dtype)
        opt.step()
    return p.item(), opt.state[p]


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
def test_asgd_float64_steps_with_a_float32_eta(foreach):
    theta, state = _asgd(torch.float64, [1.0], lr=0.1, lambd=0.0, foreach=foreach)
    assert state["eta"].dtype == state["mu"].dtype == torch.float32
    assert 1.0 - 0.1 == 0.9  # the spec's θ₁ = 1 − lr·g, correctly rounded in float64
    assert theta == 1.0 - float(torch.tensor(0.1, dtype=torch.float32))  # torch steps with float32(lr): 1.5e-9 off


def test_asgd_capturable_averages_where_mu_is_one(capturable_on_cpu):
    """λη = 1 − 2⁻²⁰: θ₁ = 2²⁰·2⁻²⁰ = 1 = ā, then θ₂ = 1·2⁻²⁰ − 2⁻⁴³, whose low bits θ₂ − ā loses in float32."""
    kw = dict(lr=1.0, lambd=1 - 2 ** -20, alpha=0.0)  # t0 = 1e6: μ = 1 throughout
    theta = 2.0 ** -20 - 2.0 ** -43
    loop, loop_state = _asgd(torch.float32, [0.0, 2.0 ** -43], 2.0 ** 20, foreach=False, **kw)
    assert loop == theta and loop_state["ax"].item() == theta  # the spec: ā is a copy of θ while μ = 1
    tested, state = _asgd(torch.float32, [0.0, 2.0 ** -43], 2.0 ** 20, foreach=False, capturable=True, **kw)
    assert tested == theta and state["ax"].item() == 2.0 ** -20  # 1 + fl(θ₂ − 1): 2 ulps from θ₂


@pytest.mark.parametrize("capturable", [False, True], ids=["foreach", "capturable-foreach"])
def test_asgd_foreach_folds_the_decay_into_the_gradient(capturable_on_cpu, capturable):
    """λη = 1 − 2⁻²⁰, θ = 1, g = 3·2⁻²⁶: the spec's θ·(1 − λη) − η·g is exactly 2⁻²⁰ − 3·2⁻²⁶ (the for-loop gets
    it); θ − η·(g + λθ) rounds g + λθ ≈ 1 to float32 first and loses g's low bits: 2¹⁸ ulps off."""
    kw = dict(lr=1.0, lambd=1 - 2 ** -20, alpha=0.0)
    loop, _ = _asgd(torch.float32, [3 * 2.0 ** -26], foreach=False, **kw)
    tested, _ = _asgd(torch.float32, [3 * 2.0 ** -26], foreach=True, capturable=capturable, **kw)
    assert loop == 2.0 ** -20 - 3 * 2.0 ** -26
    assert tested == 2.0 ** -20 - 2.0 ** -24


@pytest.mark.parametrize("capturable", [False, True], ids=["foreach", "capturable-foreach"])
def test_asgd_foreach_overflows_forming_grad_plus_lambd_param(capturable_on_cpu, capturable):
    """float16 θ = 1000, g = 65000 (65024 in float16), λ = 1, lr = 1e-3: g + λθ = 66024 overflows in float16 on
    the foreach paths; the spec's θ·(1 − λη) − η·g = 933.976 is finite (the for-loop gives 934)."""
    kw = dict(lr=1e-3, lambd=1.0)
    loop, _ = _asgd(torch.float16, [65000.0], 1000.0, foreach=False, **kw)
    tested, _ = _asgd(torch.float16, [65000.0], 1000.0, foreach=True, capturable=capturable, **kw)
    assert loop == 934.0 and tested == -math.inf


@pytest.mark.parametrize("dtype, flags", [(torch.float16, {}), (torch.bfloat16, {}),
                                          (torch.float64, {"capturable": True})],
                         ids=["float16", "bfloat16", "float64-capturable"])
def test_asgd_load_state_dict_casts_eta_and_mu_to_the_parameter_dtype(capturable_on_cpu, dtype, flags):
    """float16/bfloat16: the restored η and μ are rounded to the dtype, and so is every later η.  float64: the
    for-loop and foreach paths still copy float32 values into them (torch.as_tensor of a Python float), but the
    capturable path computes 1 − λ·η in float64 from then on."""
    import copy

    def run(resume: bool):
        p = torch.tensor([1.0], dtype=dtype)
        opt = torch.optim.ASGD([p], lr=0.1, lambd=0.5, t0=0.0, **flags)
        for k in range(3):
            if resume and k == 2:
                saved = copy.deepcopy(opt.state_dict())
                p = p.detach().clone()
                opt = torch.optim.ASGD([p], lr=0.1, lambd=0.5, t0=0.0, **flags)
                opt.load_state_dict(saved)
            p.grad = torch.ones_like(p)
            opt.step()
        return p.item(), opt.state[p]

    (theta, straight), (resumed_theta, resumed) = run(False), run(True)
    assert straight["eta"].dtype == torch.float32 and resumed["eta"].dtype == resumed["mu"].dtype == dtype
    if dtype == torch.float64:
        assert resumed_theta != theta
    else:
        assert resumed["eta"].item() != straight["eta"].item()  # the next step's η: rounded to the dtype, or not


def test_asgd_predicates_cover_the_reproductions():
    import numpy as np
    from conformance import deviation_predicates as p
    from conformance.backend import Case, Group

    def case(dtype, theta, grads, **hyper):
        h = {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0, "maximize": False, **hyper}
        return Case("asgd", dtype, [Group(h, [np.array([theta], dtype)])], [[[np.array([g], dtype)]] for g in grads])

    average = case("float32", 2.0 ** 20, [0.0, 2.0 ** -43], lr=1.0, lambd=1 - 2 ** -20, alpha=0.0)
    assert p._asgd_mu_may_be_one_after_first_step(average)
    assert not p._asgd_mu_may_be_one_after_first_step(case("float32", 1.0, [1.0, 1.0], t0=-1.0))
    assert p._asgd_foreach_folding_may_depart(case("float32", 1.0, [3 * 2.0 ** -26], lr=1.0, lambd=1 - 2 ** -20))
    assert p._asgd_foreach_folding_may_depart(case("float16", 1000.0, [65000.0], lr=1e-3, lambd=1.0))
    assert not p._asgd_foreach_folding_may_depart(case("float16", 1000.0, [1.0, 2.0], lr=1e-3, lambd=1.0))


def test_differentiable_adam_takes_the_capturable_branch():
    """differentiable=True: the float32 step counter's bias corrections (float64 θ float32-accurate) and the step
    size folded into the denominator (lr = 0, ε = 0: NaN), as capturable=True, with no device check to lift."""
    loop = _steps(torch.optim.Adam, torch.float64, [1.0], 1.0, lr=0.1, foreach=False)
    diff = _steps(torch.optim.Adam, torch.float64, [1.0], 1.0, lr=0.1, foreach=False, differentiable=True)
    assert abs(diff - loop) > 1e-9  # float32-sized
    kw = dict(lr=0.0, betas=(0.9, 0.5), eps=0.0, foreach=False)
    assert _steps(torch.optim.Adam, torch.float32, [-4.0, 1.5], 16.0, **kw) == 16.0
    assert math.isnan(_steps(torch.optim.AdamW, torch.float32, [-4.0, 1.5], 16.0, differentiable=True, **kw))


@pytest.mark.parametrize("name", ("Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "RMSprop"))
def test_for_loop_weight_decay_of_a_complex_parameter_is_complex_arithmetic(name):
    """θ = 1 + inf·i with weight decay: the single-tensor path's (c + 0i)·θ makes the real part NaN (inf·0);
    foreach, which views the parts as real first, keeps it finite."""
    def real_part(**flags):
        p = torch.view_as_complex(torch.tensor([[1.0, math.inf]]))
        opt = getattr(torch.optim, name)([p], lr=0.1, weight_decay=0.5, **flags)
        p.grad = torch.view_as_complex(torch.tensor([[0.5, 0.25]]))
        opt.step()
        return torch.view_as_real(p.detach())[0, 0].item()

    assert math.isfinite(real_part(foreach=True))
    assert math.isnan(real_part(foreach=False))
    assert math.isnan(real_part(foreach=False, differentiable=True))


@pytest.mark.parametrize("dtype, plain, rounded", [(torch.bfloat16, 0.10009765625, 0.1015625),
                                                    (torch.float16, 0.0999755859375, 0.10009765625),
                                                    (torch.float32, 0.10000000149011612, 0.10000002384185791)])
@pytest.mark.parametrize("name", ("Adam", "AdamW"))
def test_tensor_beta1_is_rounded_to_the_parameter_dtype(name, dtype, plain, rounded):
    """m after one step of g = 1 is 1 − β₁: with float betas the correctly rounded 0.1; with Tensor betas (float64,
    exact) 1 − β₁ rounded to the dtype first (beta1.to(param.dtype), the workaround of pytorch issue 140601)."""
    def first_moment(betas):
        p = torch.zeros(1, dtype=dtype)
        opt = getattr(torch.optim, name)([p], lr=1.0, betas=betas, foreach=False)
        p.grad = torch.ones(1, dtype=dtype)
        opt.step()
        return opt.state[p]["exp_avg"].item()

    assert first_moment((0.9, 0.999)) == plain
    assert first_moment((torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.999, dtype=torch.float64))) == rounded


@pytest.mark.parametrize("name, error, message", [
    ("Adamax", TypeError, "_foreach_addcdiv_() received an invalid combination of arguments"),
    ("NAdam", RuntimeError, "Expected packed scalar Tensor to be of dimension 1"),
    ("RAdam", RuntimeError, "Expected packed scalar Tensor to be of dimension 1"),
])
def test_foreach_tensor_betas_fail_at_the_first_step(name, error, message):
    """Finding 108: Adam and AdamW refuse Tensor betas with foreach=True in the constructor (ValueError "betas[0] as a
    Tensor is not supported for capturable=False and foreach=True"); Adamax, NAdam and RAdam build the optimizer and
    fail at the first step, from inside a _foreach op."""
    betas = (torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.999, dtype=torch.float64))
    with pytest.raises(ValueError, match=re.escape("betas[0] as a Tensor is not supported")):
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], betas=betas, foreach=True)
    p = torch.zeros(2, requires_grad=True)
    opt = getattr(torch.optim, name)([p], betas=betas, foreach=True)
    p.grad = torch.ones(2)
    with pytest.raises(error, match=re.escape(message)):
        opt.step()


def test_denominator_predicate_over_arrays_agrees_with_the_exact_path():
    """``_capturable_denominator_leaves_range`` decides over arrays (phase 1's midpoints, exact only where phase 1
    is wide); its definition (``test_capturable_denominator_predicate.leaves_range_by_definition``) element by
    element through ``reference.step``.  The optimizers are elementwise, so the array answer for a 6-element tensor
    must be the OR of the definition's answers for its elements alone.  Seeded draws near the range's edges (lr
    down to 1e-6, ε = 0, θ that λθ cancels against g), each answer both ways at least once."""
    import numpy as np
    from conformance.backend import Case, Group
    from conformance import deviation_predicates as dp
    import spec as spec_pkg
    from test_capturable_denominator_predicate import leaves_range_by_definition

    rng = np.random.default_rng(2026)
    seen = set()
    for k in range(36):
        optimizer = ("radam", "adam", "adamax")[k % 3]
        spec = spec_pkg.get(optimizer)
        hyper = dict(lr=float(rng.choice([1e-6, 1e-3, 1.0, 80.5])), beta1=float(rng.choice([0.0, 0.9, 1 - 2 ** -15])),
                     beta2=float(rng.choice([0.5, 0.9, 0.999])), eps=float(rng.choice([0.0, 1e-8, 1e-3])),
                     weight_decay=float(rng.choice([0.0, 0.5])))
        h = spec.complete({n: v for n, v in hyper.items() if n in spec.defaults})
        theta = np.float16(rng.choice([0.0, 1.0, -2.0 ** -23, 3.5], size=6)) * np.float16(rng.choice([1, -1], size=6))
        grads = [np.float16(rng.choice([0.0, 1.0, -0.5, 2.0 ** -20, 6e4], size=6)) for _ in range(int(rng.integers(1, 8)))]

        def case(sel):
            return Case(optimizer, "float16", [Group(h, [theta[sel].copy()])], [[[g[sel].copy()]] for g in grads])

        whole = dp._capturable_denominator_leaves_range(case(slice(None)))
        alone = any(leaves_range_by_definition(case(slice(i, i + 1))) for i in range(6))
        assert whole == alone, (optimizer, h, theta, grads)
        seen.add(whole)
    assert seen == {True, False}


def test_cpu_dense_add_of_an_element_sparse_tensor_adds_the_storage_offset_twice():
    """Known deviation sparse-adam-add-sparse-doubles-storage-offset: ``add_dense_sparse_worker_non_hybrid_cpu``
    (aten/src/ATen/native/sparse/SparseTensorMath.cpp) indexes ``r.data_ptr()``, which already points at the storage
    offset, with ``r.storage_offset() + Σ stride·index``.  The hybrid worker (``nn.Embedding(sparse=True)``'s row
    gradients) and the non-contiguous path index correctly."""
    one = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([2.0], dtype=torch.float64), (1,))
    buf = torch.arange(6, dtype=torch.float64) * 10
    buf[1:2].add_(one)  # a contiguous view at storage offset 1
    assert buf.tolist() == [0, 10, 22, 30, 40, 50]  # fixed: [0, 12, 20, 30, 40, 50]
    rows = torch.arange(6, dtype=torch.float64).reshape(3, 2) * 10
    rows[1:2].add_(torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([[2.0, 3.0]], dtype=torch.float64),
                                           (1, 2)))
    assert rows.tolist() == [[0, 10], [22, 33], [40, 50]]  # the hybrid worker is right

    # SparseAdam on such a parameter: θ stays, the element after it in the buffer takes the step
    buf = torch.zeros(3, dtype=torch.float64)
    p = buf[1:2]
    opt = torch.optim.SparseAdam([p], lr=0.1)
    p.grad = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([1.0], dtype=torch.float64), (1,))
    opt.step()
    assert p.item() == 0.0 and buf[2].item() == pytest.approx(-0.1)  # fixed: p = −0.1, buf[2] = 0


@pytest.mark.parametrize("cls", ["SGD", "Adagrad"])
def test_sgd_and_adagrad_sparse_steps_add_the_storage_offset_twice(cls):
    """Known deviations sgd-sparse-add-sparse-doubles-storage-offset and adagrad-sparse-add-sparse-doubles-storage-
    offset (finding 100): the same kernel as SparseAdam's, through ``param.add_(sparse, alpha=-lr)`` (SGD: a
    one-entry gradient counts as coalesced) and Adagrad's ``param.add_(sparse(g/std), alpha=-clr)`` after
    ``coalesce()``; Adagrad's sum is a fresh tensor at offset 0 and is right."""
    buf = torch.zeros(3, dtype=torch.float64)
    p = buf[1:2]
    opt = getattr(torch.optim, cls)([p], lr=0.1)
    p.grad = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([1.0], dtype=torch.float64), (1,))
    opt.step()
    assert p.item() == 0.0 and buf[2].item() == pytest.approx(-0.1)  # fixed: p = −0.1, buf[2] = 0
    if cls == "Adagrad":
        assert opt.state[p]["sum"].tolist() == [1.0]


@pytest.mark.parametrize("foreach", [False, True])
def test_sgd_sparse_momentum_float16_raises_where_sparse_tensors_meet(foreach):
    """Known deviation sgd-sparse-momentum-float16-raises (finding 111): CPU sparse + sparse
    (``add_out_sparse_contiguous``) is dispatched for bfloat16 but not float16, so SGD with momentum raises at the
    first step whose buffer and gradient both hold entries, or at Nesterov's first ``grad.add(buf)``; where one of
    them holds none, torch copies or scales instead and does not raise (the entry's predicate says exactly that)."""
    from conformance.backend import Case, Group
    from conformance.deviation_predicates import _half_sparse_tensors_meet

    def coo(idx, dtype):
        return torch.sparse_coo_tensor(torch.tensor([idx], dtype=torch.long).reshape(1, -1),
                                       torch.ones(len(idx), dtype=dtype), (2,), check_invariants=True)

    def run(dtype, idx_per_step, **kw):
        p = torch.ones(2, dtype=dtype)
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.5, foreach=foreach, **kw)
        for idx in idx_per_step:
            p.grad = coo(idx, dtype)
            opt.step()

    def meet(steps, **kw):
        grads = [[[np.ma.MaskedArray(np.ones(2, np.float16), mask=[k not in idx for k in range(2)])]]
                 for idx in steps]
        return _half_sparse_tensors_meet(Case("sgd_sparse", "float16", [Group({"momentum": 0.5, **kw},
                                                                              [np.ones(2, np.float16)])], grads))

    for steps, kw in ((([0], [1]), {}), (([0],), {"nesterov": True})):
        assert meet(steps, **kw)
        with pytest.raises(NotImplementedError, match="cadd_sparse"):  # fixed: no exception
            run(torch.float16, steps, **kw)
        run(torch.bfloat16, steps, **kw)
    for steps in (([0], []), ([], [1]), ([0],)):  # one side without entries: copied or scaled, no sum
        assert not meet(steps)
        run(torch.float16, steps)


@pytest.mark.parametrize("foreach", [False, True])
def test_adafactor_default_eps1_comes_from_another_dtype_in_a_mixed_group(foreach):
    """eps=(None, 1e-3): each tensor's ε₁ should be its own dtype's machine epsilon; torch takes the first
    tensor's (for-loop) or the first dtype group's (foreach) for the whole group (finding 60)."""
    def run(params):
        opt = torch.optim.Adafactor(params, lr=0.01, foreach=foreach)
        for q, g in zip(params, (1e-6, 1e-12) if params[0].dtype == torch.float16 else (1e-12, 1e-6)):
            q.grad = torch.full_like(q, g)
        opt.step()
        return [q.item() for q in params]

    def pair():
        return torch.ones(1, dtype=torch.float16), torch.ones(1, dtype=torch.float64)

    half_alone, double_alone = run([pair()[0]])[0], run([pair()[1]])[0]
    assert (half_alone, double_alone) == (1.0, float.fromhex("0x1.fae147ae147aep-1"))  # the spec's values
    h, d = pair()
    mixed = run([h, d]) + run(list(reversed(pair())))  # [f16, f64] then [f64, f16]
    got = {"f16 first": (mixed[0], mixed[1]), "f64 first": (mixed[3], mixed[2])}  # (f16 θ, f64 θ)
    departs = [k for k, (half, double) in got.items() if not (half == half_alone and double == double_alone)]
    assert departs, got  # fails once torch resolves eps1 per tensor
    assert any(math.isnan(half) for half, _ in got.values())  # float64's ε₁² rounds to 0 in float16: rsqrt(0)


def test_adafactor_foreach_tensor_lr_fails_when_a_groups_steps_straddle_it():
    """lr a 0-d tensor, one tensor a step behind: ρ_t = min(lr, 1/√t) is a tensor for one and a float for the
    other, and foreach's _foreach_mul_ refuses the mix (finding 61); the for-loop steps."""
    def run(foreach):
        a, b = torch.ones(2), torch.ones(2)
        opt = torch.optim.Adafactor([a, b], lr=torch.tensor(0.6, dtype=torch.float64), foreach=foreach)
        for s in range(3):  # t = 3 and 2 at the third step: 1/√3 < 0.6 ≤ 1/√2
            a.grad, b.grad = torch.full_like(a, 0.5), None if s == 0 else torch.full_like(b, 0.5)
            opt.step()
        return a

    run(foreach=False)
    with pytest.raises(TypeError, match="expected Tensor as element"):
        run(foreach=True)


def test_sparse_adam_tensor_lr_step_size_is_converted_to_the_parameter_dtype():
    """Known deviation sparse-adam-tensor-lr-step-size-in-parameter-dtype: with lr a 0-d tensor, ``_to_scalar`` keeps
    it a tensor, so step_size = lr·√bc₂/bc₁ is a 0-d float64 tensor, and ``-step_size * numer`` (a float16 tensor)
    converts it to float16 first; a Python-float lr stays a float32 scalar in the kernel.  β₁ = 1 − 2⁻²⁴, lr = 0.1:
    s ≈ 2.1e5 > 65504."""
    def step(lr):
        p = torch.tensor([0.5], dtype=torch.float16)
        opt = torch.optim.SparseAdam([p], lr=lr, betas=(1 - 2 ** -24, 0.984375), eps=0.99609375)
        p.grad = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([1.0], dtype=torch.float16), (1,))
        opt.step()
        return p.item()

    assert step(0.1) == pytest.approx(0.4875, abs=1e-3)  # the spec's value, finite
    assert step(torch.tensor(0.1, dtype=torch.float64)) == -math.inf  # fixed: the same 0.4875


def _lbfgs_step(param, **kw):
    opt = torch.optim.LBFGS([param], **kw)

    def closure():
        opt.zero_grad()
        loss = (param ** 2).sum()
        loss.backward()
        return loss
    return opt.step(closure)


def test_lbfgs_raises_for_a_non_contiguous_parameter():
    """lbfgs-non-contiguous-parameter (finding 65): p.grad.view(-1) of a gradient with a transposed leaf's strides."""
    p = torch.nn.Parameter(torch.arange(12., dtype=torch.float64).reshape(3, 4).t())
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        _lbfgs_step(p)
    q = torch.nn.Parameter(p.detach().contiguous())  # the same values, contiguous: steps
    _lbfgs_step(q, max_iter=1)
    assert not torch.equal(q, p.detach())


def test_lbfgs_fails_late_on_arguments_it_does_not_validate():
    """lbfgs-unvalidated-arguments (finding 66): the constructor accepts them, step() fails deep inside."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(UnboundLocalError):
        _lbfgs_step(p, max_eval=0, line_search_fn="strong_wolfe")
    with pytest.raises(IndexError):
        _lbfgs_step(p, history_size=0)


# ------------------------------------------------------------------ Muon (findings 62 and 63 are entries of
# conformance/known_deviations.py, muon-bfloat16-buffer-normalised-in-place and muon-validation-only-at-step; 64 is
# not: the element-wise check takes O as applied, and the NS property test does not model ‖U‖ ≥ 2⁶³)


def test_muon_bfloat16_without_nesterov_normalises_its_momentum_buffer():
    """Finding 62: NS's ``grad.bfloat16()`` is the buffer itself for a bfloat16 parameter, and ``div_`` divides it
    in place by its Frobenius norm; the spec's buffer after one step with μ = 0 is g itself."""
    p = torch.tensor([[3.0, 4.0]], dtype=torch.bfloat16)
    p.grad = torch.tensor([[3.0, 4.0]], dtype=torch.bfloat16)
    opt = torch.optim.Muon([p], lr=0.0, momentum=0.0, nesterov=False, weight_decay=0.0)
    opt.step()
    assert opt.state[p]["momentum_buffer"].tolist() == [[0.6015625, 0.80078125]]  # the spec: [[3, 4]]


def test_muon_accepts_ns_steps_of_100_until_step():
    """Finding 63: the constructor accepts ns_steps ≥ 100 (and ns_coefficients of any length); ``step()`` refuses
    it from inside ``_zeropower_via_newtonschulz``."""
    p = torch.zeros(2, 2)
    opt = torch.optim.Muon([p], ns_steps=100)  # the spec's domain is [0, 100)
    p.grad = torch.ones(2, 2)
    with pytest.raises(ValueError, match="less than 100"):
        opt.step()


def test_muon_add_param_group_skips_the_two_d_check():
    """Finding 63 too: only the constructor refuses a non-2-D parameter; one added by ``add_param_group`` gets a
    momentum buffer and then makes ``step()`` raise from ``_single_tensor_muon``."""
    opt = torch.optim.Muon([torch.zeros(2, 2)])
    b = torch.zeros(3)
    opt.add_param_group({"params": [b]})  # the constructor refuses torch.zeros(3) with ValueError
    b.grad = torch.ones(3)
    with pytest.raises(ValueError, match="must be a 2D matrix"):
        opt.step()
    assert "momentum_buffer" in opt.state[b]


def test_muon_newton_schulz_zeroes_the_update_past_two_to_the_64():
    """Finding 64: NS divides by ``ortho_grad.norm()`` of the bfloat16 matrix, whose float32 sum of squares
    overflows once ‖U‖_F ≥ 2⁶⁴ (a value bfloat16 holds): the norm is inf, X/inf = 0, and O = 0, where the spec's
    normalised X = [[0, 1], [0, 0]] gives O ≈ [[0, 0.69], [0, 0]] (as torch gives for 2⁶³)."""
    from torch.optim._muon import _zeropower_via_newtonschulz
    coefficients = (3.4445, -4.7750, 2.0315)
    below = _zeropower_via_newtonschulz(torch.tensor([[0.0, 2.0 ** 63], [0.0, 0.0]]), coefficients, 5, 1e-7)
    at = _zeropower_via_newtonschulz(torch.tensor([[0.0, 2.0 ** 64], [0.0, 0.0]]), coefficients, 5, 1e-7)
    assert below[0, 1].item() == 0.6875
    assert at.abs().max().item() == 0.0  # the spec: 0.6875 too (NS is invariant under scaling by 2^k)


def test_sparse_adam_tensor_betas_round_factors_to_the_dtype():
    """Finding 110: SparseAdam's step size s = lr·√(1 − β₂)/(1 − β₁) at t = 1 is 0.01/2⁻³⁰ ≈ 1.07e7, past float16's
    largest.  With float betas it is a Python float, a float32 operand of the float16 multiply, and θ moves by a
    finite −s·m/(√v + ε); with Tensor betas it is a 0-d float64 Tensor, which the multiply casts to float16 first:
    inf, and θ becomes inf or NaN."""
    beta1 = 1 - 2.0 ** -30

    def theta(betas):
        p = torch.zeros(2, dtype=torch.float16, requires_grad=True)
        opt = torch.optim.SparseAdam([p], lr=0.01, betas=betas)
        p.grad = torch.sparse_coo_tensor([[0, 1]], torch.tensor([0.5, -2.0], dtype=torch.float16), (2,))
        opt.step()
        return p.detach()

    assert torch.isfinite(theta((beta1, 0.999))).all()
    assert not torch.isfinite(theta((torch.tensor(beta1, dtype=torch.float64),
                                     torch.tensor(0.999, dtype=torch.float64)))).any()


def test_capturable_denominator_predicate_counts_a_v_that_is_0_in_the_dtype():
    """adamw-capturable-step-size-in-denominator at lr = 0 (default-profile seed 1, test_single_steps): torch's
    √v/(√bc₂·(−0)) + ε/(−0) is NaN where v is 0 in the parameter's dtype, here a tiny g whose v underflows in
    bfloat16, although the exact v > 0.  The predicate counts such a v (below twice the smallest subnormal)."""
    import ml_dtypes
    import spec as spec_pkg
    from conformance.backend import Case, Group
    from conformance.deviation_predicates import _capturable_denominator_leaves_range

    bf16 = ml_dtypes.bfloat16
    hyper = spec_pkg.get("adamw").complete({"lr": 0.1})
    grads = [[[np.array([1e-30], bf16)]], [[np.array([1e-30], bf16)]]]
    case = Case("adamw", "bfloat16", [Group(hyper, [np.array([1.0], bf16)])], grads, [[0.1], [0.0]])
    assert _capturable_denominator_leaves_range(case)
    p = torch.ones(1, dtype=torch.bfloat16)
    opt = torch.optim.AdamW([p], lr=0.1, differentiable=True)
    for lr in (0.1, 0.0):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.full((1,), 1e-30, dtype=torch.bfloat16)
        opt.step()
    assert opt.state[p]["exp_avg_sq"].item() == 0.0 and math.isnan(p.item())  # fixed: p unchanged at lr = 0
