"""Each input-specific known deviation of torch, reproduced directly.

These tests assert that the deviation is still there: when torch fixes one, its test fails, and the entry
in conformance/known_deviations.py must go (the harness then checks those inputs again).
"""
import math
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
def test_fused_sgd_raises_when_a_momentum_buffer_is_missing():
    a, b = torch.ones(2), torch.ones(1)
    opt = torch.optim.SGD([a, b], lr=0.1, momentum=0.5, fused=True)
    a.grad = torch.ones_like(a)
    opt.step()
    b.grad = torch.ones_like(b)
    with pytest.raises(TypeError, match="NoneType"):
        opt.step()


def test_radam_foreach_step_size_overflows_in_float16():
    out = {}
    for foreach in (False, True):
        p = torch.zeros(1, dtype=torch.float16)
        opt = torch.optim.RAdam([p], lr=1.0, betas=(0.99999237, 0.999), foreach=foreach)
        p.grad = torch.tensor([-0.5], dtype=torch.float16)
        opt.step()
        out[foreach] = p.item()
    assert out[False] == 0.5  # unrectified first step: θ − lr·m̂ with m̂ = g = −0.5
    assert out[True] == float("inf")


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
    from conformance.known_deviations import _second_moment_overflows
    from conformance.strategies import CaseData
    big = CaseData("radam", "float64", [({"beta2": 0.999}, [np.zeros(1)])], [[[np.array([1e300])]]], None)
    fine = CaseData("radam", "float64", [({"beta2": 0.999}, [np.zeros(1)])], [[[np.array([1e150])]]], None)
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


# --------------------------------------------------------------------------- capturable paths (CUDA), on the CPU
# capturable=True is refused off CUDA/XLA by a device check only; the arithmetic is ordinary tensor ops, so lifting
# the check reproduces the torch-cuda findings here.  (torch's own tests do the same with the for-loop code.)

@pytest.fixture
def capturable_on_cpu(monkeypatch):
    import importlib
    for name in ("adam", "adamw", "adamax", "radam"):
        module = importlib.import_module(f"torch.optim.{name}")
        if hasattr(module, "_get_capturable_supported_devices"):
            monkeypatch.setattr(module, "_get_capturable_supported_devices",
                                lambda supports_xla=True: ["cpu", "cuda"])


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
