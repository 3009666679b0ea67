"""Reproductions of what the suite found in timm's optimizers (docs/measured/third-party.md, findings 81-84 and 105-107).

timm 1.0.29's optimizer modules are loaded by ``conformance.adapters.timm_optim`` (``import timm`` needs
torchvision).  Each test states the finding against the spec's exact value (``reference.step``) or the spec's
domain, never against timm itself, so it fails once timm is fixed: then update the pin, the record and this file.
Without timm installed (CI does not install it) the tests skip."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import spec
from reference.step import trajectory
from tests.library_pin import pinned

torch = pytest.importorskip("torch")
if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is not installed (pip install --no-deps timm==1.0.29)", allow_module_level=True)
from conformance.adapters import timm_optim  # noqa: E402  (loads timm's optimizer modules, not timm's models)
PINNED = "1.0.29"


_pinned = pinned("timm", PINNED)


@pytest.mark.parametrize("name, cls", [("lion", "Lion"), ("adan", "Adan"), ("adamw", "AdamWLegacy")])
def test_a_negative_weight_decay_is_accepted(name, cls):
    """Finding 81: the spec's domains refuse λ < 0; timm's constructors check lr, ε and the betas, not λ."""
    assert not spec.get(name).hyper("weight_decay").accepts(-1.0)
    getattr(timm_optim, cls)([torch.nn.Parameter(torch.zeros(1))], weight_decay=-1.0)


def test_adan_bias_corrects_a_parameter_with_its_groups_step_count():
    """Finding 82: a parameter whose first gradient comes at the group's second step is corrected with t = 2."""
    a, b = (torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in range(2))
    opt = timm_optim.Adan([a, b], lr=0.1)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    b.grad = torch.ones(1, dtype=torch.float64)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    s = spec.get("adan")
    rows = trajectory(s, s.complete({"lr": 0.1}), np.zeros(1), [None, np.ones(1)], formats=("float64",))
    exact = float(rows[-1].rounded("theta", "float64")[0])  # b's own first step: t = 1
    assert abs(exact + 0.1) < 1e-6
    assert abs(b.item() - exact) > 1e-3


def test_adamw_legacy_foreach_loses_a_float16_update_where_the_folded_denominator_overflows():
    """Finding 83: the foreach path divides the denominator by the step size (−lr/bc₁) before dividing m by it;
    in float16 (√v̂ + ε)·bc₁/lr passes 65504 for |g| above about 65504·lr, the denominator becomes −inf and θ
    does not move.  θ = 1.342e-4, g = 89.56, lr = 1e-3, β = (0.1, 0.1719), ε = 7.8e-6: the exact θ₁ is
    θ − lr·m̂/(√v̂ + ε) ≈ −8.66e-4."""
    hyper = {"lr": 1e-3, "beta1": 0.1, "beta2": 0.17191619610427036, "eps": 7.844820954254994e-06,
             "weight_decay": 0.0}
    theta0, g = float(np.float16(1.342e-4)), float(np.float16(89.56))
    s = spec.get("adamw")
    rows = trajectory(s, s.complete(hyper), np.array([theta0]), [np.array([g])], formats=("float64",))
    exact = float(rows[-1].rounded("theta", "float64")[0])
    assert abs(exact + 8.66e-4) < 1e-6
    for foreach, moves in ((False, True), (True, False)):
        p = torch.nn.Parameter(torch.tensor([theta0], dtype=torch.float16))
        opt = timm_optim.AdamWLegacy([p], lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"],
                                     weight_decay=0.0, foreach=foreach)
        p.grad = torch.tensor([g], dtype=torch.float16)
        opt.step()
        assert (abs(p.item() - exact) < 1e-6) == moves and (p.item() == theta0) != moves, (foreach, p.item())


def test_rmsproptf_has_a_default_lr():
    """Finding 84: TF1's RMSPropOptimizer (the dialect rmsprop@tf) has no default lr; timm's RMSpropTF has 0.01."""
    import inspect
    assert not isinstance(spec.get("rmsprop@tf").hyper("lr").default, float)
    assert inspect.signature(timm_optim.RMSpropTF).parameters["lr"].default == 0.01


@pytest.mark.parametrize("betas", [(-0.1, 0.999), (0.9, 1.0), (1.5, 0.999)])
def test_lamb_accepts_betas_outside_the_unit_interval(betas):
    """Finding 105: timm's Lamb checks lr, ε and λ (``_validate_scalar``) but not the betas, which the spec's
    domain (and timm's own NAdamW, Adan, Lion) confine to [0, 1)."""
    s = spec.get("lamb@timm")
    assert not (s.hyper("beta1").accepts(betas[0]) and s.hyper("beta2").accepts(betas[1]))
    timm_optim.Lamb([torch.nn.Parameter(torch.zeros(1))], betas=betas)


def test_lamb_bias_corrects_a_parameter_with_its_groups_step_count():
    """Finding 106: ``group['step']`` advances at every ``step()`` (before the check that any parameter has a
    gradient), so a parameter whose first gradient comes at the second call is corrected with t = 2."""
    a, b = (torch.nn.Parameter(torch.ones(1, dtype=torch.float64)) for _ in range(2))
    hyper = {"lr": 0.1, "weight_decay": 0.0}
    opt = timm_optim.LambUnclipped([a, b], **hyper)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    a.grad = b.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    s = spec.get("lamb@timm")
    rows = trajectory(s, s.complete(hyper), np.ones(1), [None, np.ones(1)], formats=("float64",))
    exact = float(rows[-1].rounded("theta", "float64")[0])  # b's own first step, t = 1: 1 − 0.1·1/(1 + 1e-6)
    assert abs(exact - 0.9) < 1e-6
    assert abs(b.item() - exact) > 1e-3, b.item()


def test_lamb_clips_the_callers_gradient_in_place():
    """Finding 107: with max_grad_norm (default 1.0) ``step()`` divides each ``p.grad`` in place by
    max(1, ‖g‖/max_grad_norm) over all groups: the caller's gradient after the step is not the one it set."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = timm_optim.Lamb([p])
    assert opt.defaults["max_grad_norm"] == 1.0
    p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    opt.step()
    assert torch.equal(p.grad, torch.tensor([3.0, 4.0], dtype=torch.float64) / 5), p.grad
