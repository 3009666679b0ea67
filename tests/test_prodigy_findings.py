"""Findings 89–93 (docs/measured/third-party.md, "Prodigy: prodigyopt 1.1.2 and pytorch-optimizer 4.1.0 against
`prodigy`"), each reproduced on the pinned version; each test fails once the library is fixed."""
from __future__ import annotations

import pytest

from tests.library_pin import pinned

torch = pytest.importorskip("torch")
prodigyopt = pytest.importorskip("prodigyopt")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

_pin_prodigyopt = pinned("prodigyopt", "1.1.2")
_pin_pytorch_optimizer = pinned("pytorch_optimizer", "4.1.0", "pytorch-optimizer")


def _two_groups(cls, frozen_lr=0.0, steps=2, **kw):
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0])
    opt = cls([{"params": [a]}, {"params": [b], "lr": frozen_lr}], lr=1.0, **kw)
    for _ in range(steps):
        a.grad, b.grad = torch.tensor([0.5, -0.5]), torch.tensor([0.25, 0.25])
        opt.step()
    return a, b


def test_89_prodigyopt_group_with_lr_zero_still_steps():
    """A group with lr = 0 (the one value the "equal or 0" rule allows) is not frozen: the second loop steps it
    with the global dlr.  β₁ = 0: θ − dlr·d·g/(√0 + d·ε) = θ − dlr·g/ε, here 50 per step; with decay, θ·(1 − λ·dlr)."""
    _, b = _two_groups(prodigyopt.Prodigy, betas=(0.0, 0.999))
    assert b.tolist() == [-47.0, -51.0]  # the spec of a frozen group (lr 0): [3, −1] unchanged
    _, b = _two_groups(prodigyopt.Prodigy, weight_decay=0.5)
    assert not torch.equal(b, torch.tensor([3.0, -1.0]))


def test_90_prodigyopt_accepts_growth_rate_and_d_coef_that_stop_or_reverse_training():
    """growth_rate ≤ 0 makes d ≤ 0 (d = min(d_max, d·growth_rate)): −1 flips d's sign every step, so dlr < 0 is
    an ascent; 0 makes d = 0 and θ never moves again.  d_coef ≤ 0, λ < 0, β₃ ∉ [0, 1] and slice_p < 1 pass the
    constructor too (slice_p = 0 fails inside step with Python's slice error)."""
    p = torch.tensor([1.0, 2.0])
    opt = prodigyopt.Prodigy([p], growth_rate=-1.0)
    p.grad = p.detach().clone()
    opt.step()
    assert opt.param_groups[0]["d"] == -1e-6
    for kw in (dict(growth_rate=0.0), dict(d_coef=-1.0), dict(weight_decay=-1.0), dict(beta3=2.0), dict(slice_p=0)):
        prodigyopt.Prodigy([torch.zeros(2)], **kw)  # accepted
    opt = prodigyopt.Prodigy([p], slice_p=0)
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        opt.step()


def test_91_pytorch_optimizer_coupled_weight_decay_changes_nothing():
    """weight_decouple=False adds λθ to p.grad in the second loop, after m, v, s and d used the gradient: θ is
    bit for bit what λ = 0 gives (prodigyopt's coupled decay, before the moments, changes θ)."""
    out = {}
    for wd in (0.0, 0.5):
        p = torch.tensor([1.0, 2.0])
        opt = pytorch_optimizer.Prodigy([p], weight_decay=wd, weight_decouple=False)
        for _ in range(3):
            p.grad = torch.tensor([0.5, -0.5])
            opt.step()
        out[wd] = p.clone()
    assert torch.equal(out[0.0], out[0.5])


def test_92_pytorch_optimizer_ignores_every_groups_lr_but_the_first():
    """d_lr = d·param_groups[0]["lr"] steps every group: a group's own lr (0 to freeze it, or another value) is
    ignored without an error (prodigyopt raises RuntimeError for unequal lrs and skips lr = 0 groups' moments)."""
    _, b = _two_groups(pytorch_optimizer.Prodigy, steps=3)
    assert not torch.equal(b, torch.tensor([3.0, -1.0]))
    _, b2 = _two_groups(pytorch_optimizer.Prodigy, frozen_lr=5.0, steps=3)
    assert torch.equal(b, b2)  # lr 0 and lr 5 for the second group: the same θ


def test_93_pytorch_optimizer_accepts_d0_zero_nan_lr_and_any_keyword():
    """d0 = 0 passes the constructor and fails inside step (ZeroDivisionError in d/d0); lr = NaN and ε = 0 pass
    too (prodigyopt refuses all three); and ``**kwargs`` swallows any keyword, prodigyopt's own names included:
    ``use_bias_correction=True`` (its name: bias_correction) leaves bias correction off, without a word."""
    p = torch.tensor([1.0, 2.0])
    opt = pytorch_optimizer.Prodigy([p], d0=0.0)
    p.grad = torch.ones(2)
    with pytest.raises(ZeroDivisionError):
        opt.step()
    pytorch_optimizer.Prodigy([p], lr=float("nan"))
    pytorch_optimizer.Prodigy([p], eps=0.0)
    opt = pytorch_optimizer.Prodigy([p], use_bias_correction=True, decouple=False, slice_p=11)
    assert opt.param_groups[0]["bias_correction"] is False and opt.param_groups[0]["weight_decouple"] is True
