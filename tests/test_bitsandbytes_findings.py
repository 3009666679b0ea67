"""Reproductions of what the suite found in bitsandbytes' 32-bit optimizers on the CPU (docs/measured/third-party.md,
findings 75-80, 85, 88).

bitsandbytes 0.50.2 steps CPU tensors with the ``default`` backend's ``_optimizer_update_32bit``
(bitsandbytes/backends/default/ops.py).  Each test states the finding against the spec's exact value
(``reference.step``), never against bitsandbytes itself, so it fails once the library is fixed: then update the
pin, the record and this file.  Without bitsandbytes installed (CI does not install it) the tests skip."""
from __future__ import annotations


import numpy as np
import pytest

import spec
from reference.step import trajectory
from tests.library_pin import pinned

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")
PINNED = "0.50.2"


_pinned = pinned("bitsandbytes", PINNED)


def exact(name: str, hyper: dict, theta0: list, grads: list) -> np.ndarray:
    """θ after ``grads`` under spec ``name``, exact, rounded to float64."""
    s = spec.get(name)
    rows = trajectory(s, s.complete(hyper), np.array(theta0), [np.array(g) for g in grads], formats=("float64",))
    return rows[-1].rounded("theta", "float64")


def stepped(cls, theta0: list, grads: list, dtype=torch.float32, **kw) -> np.ndarray:
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=dtype))
    opt = cls([p], **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    return p.detach().to(torch.float64).numpy()


def close(a, b, rel=1e-6) -> bool:
    """Within float32 rounding of a few operations (the test's margin, far below the differences it checks)."""
    return bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(b), 1e-30)))


THETA, GRADS = [1.0, -2.0], [[1.0, -1.0], [0.1, -0.1], [0.1, 0.1]]  # |g| falls: with β₂ = 0.5 AMSGrad's max matters


def test_adam_amsgrad_is_accepted_and_ignored():
    """Finding 75: ``amsgrad=True`` (documented: "the AMSGrad variant") is never passed on to the update."""
    got = stepped(bnb.optim.Adam, THETA, GRADS, lr=0.1, betas=(0.9, 0.5), amsgrad=True)
    ams, plain = (exact("adam", {"lr": 0.1, "beta2": 0.5, "amsgrad": a}, THETA, GRADS) for a in (True, False))
    assert not close(ams, plain, 1e-3)
    assert close(got, plain) and not close(got, ams, 1e-3)


def test_adam_weight_decay_is_decoupled():
    """Finding 76: ``bnb.optim.Adam``'s weight decay is AdamW's θ·(1 − lr·λ), not torch.optim.Adam's L2 term."""
    got = stepped(bnb.optim.Adam, THETA, GRADS, lr=0.1, weight_decay=0.5)
    l2, decoupled = (exact("adam", {"lr": 0.1, "weight_decay": 0.5, "decoupled_weight_decay": d}, THETA, GRADS)
                     for d in (False, True))
    assert close(got, decoupled) and not close(got, l2, 1e-3)


@pytest.mark.parametrize("option", [{"nesterov": True}, {"dampening": 0.5}])
def test_sgd_nesterov_and_dampening_are_accepted_and_ignored(option):
    """Finding 77: ``SGD(nesterov=True)`` and ``SGD(dampening=d)`` step as plain heavy-ball momentum."""
    got = stepped(bnb.optim.SGD, THETA, GRADS, lr=0.1, momentum=0.9, **option)
    asked, plain = (exact("sgd", {"lr": 0.1, "momentum": 0.9, **o}, THETA, GRADS) for o in (option, {}))
    assert close(got, plain) and not close(got, asked, 1e-3)


def test_rmsprop_momentum_is_accepted_and_ignored():
    """Finding 78: ``RMSprop(momentum=μ)`` steps as RMSprop without momentum (μ reaches the kernel as β₂, unread)."""
    got = stepped(bnb.optim.RMSprop, THETA, GRADS, lr=0.01, momentum=0.9)
    asked, plain = (exact("rmsprop", {"lr": 0.01, "momentum": m}, THETA, GRADS) for m in (0.9, 0.0))
    assert close(got, plain) and not close(got, asked, 1e-3)


def test_float64_parameters_are_stepped_in_float32():
    """Finding 79: a float64 parameter is stepped in float32 (``p.float()``, float32 state): its result carries
    float32's rounding, and a gradient whose square overflows float32 leaves θ where it was."""
    third = [1 / 3]
    got = stepped(bnb.optim.Adam, third, [[1e-3]], dtype=torch.float64, lr=1e-3)
    want = exact("adam", {"lr": 1e-3}, third, [[1e-3]])
    assert got[0] == float(np.float32(got[0])) and abs(got[0] - want[0]) > 1e-9  # float64 would be within 1e-16
    big = stepped(bnb.optim.Adam, [1.0], [[1e30]], dtype=torch.float64, lr=0.1)
    assert big[0] == 1.0 and abs(exact("adam", {"lr": 0.1}, [1.0], [[1e30]])[0] - 0.9) < 1e-12


def test_lamb_is_not_lambs_trust_ratio():
    """Finding 80: ``bnb.optim.LAMB`` scales the Adam direction by min(1, max_unorm·‖θ‖/n) for a norm n that is
    not the Adam update's (the kernel's ``unorm_vec``), never by LAMB's ratio ‖θ‖/‖u‖ above 1.  θ = [1, −2],
    g = [1, 10⁻³], lr = 0.1: LAMB moves each element 0.158, Adam 0.1, bitsandbytes 0.05."""
    theta, grads = [1.0, -2.0], [[1.0, 1e-3]]
    got = stepped(bnb.optim.LAMB, theta, grads, lr=0.1)
    lamb = exact("lamb", {"lr": 0.1}, theta, grads)
    adam = exact("adam", {"lr": 0.1, "eps": 1e-6}, theta, grads)
    assert abs(lamb[0] - 0.8418) < 1e-4 and abs(adam[0] - 0.9) < 1e-6
    assert close(got, np.array([0.95, -2.05]), 1e-5) and not close(got, lamb, 1e-2)


def test_ademamix_warms_beta3_up_by_the_papers_closed_form():
    """Finding 85: with β₃ < β₁ and a β₃ warm-up, the first step's β₃ is the paper's min(…, β₃) = β₃, not the
    reference code's (the spec's) half-life interpolation, 0.791 here; β₁ = 0 with a warm-up raises."""
    hyper = {"lr": 0.1, "beta1": 0.875, "beta2": 0.5, "beta3": 0.005, "alpha": 1.0, "beta3_warmup": 2.27,
             "weight_decay": 0.0}
    got = stepped(bnb.optim.AdEMAMix, THETA, GRADS[:1], lr=0.1, betas=(0.875, 0.5, 0.005), alpha=1.0,
                  t_beta3=2.27, weight_decay=0.0)
    spec_value = exact("ademamix", hyper, THETA, GRADS[:1])
    paper = exact("ademamix", {**hyper, "beta3_warmup": 0.0}, THETA, GRADS[:1])  # β₃ itself from step 1
    assert not close(spec_value, paper, 1e-3)
    assert close(got, paper) and not close(got, spec_value, 1e-3)
    with pytest.raises(ValueError):
        stepped(bnb.optim.AdEMAMix, THETA, GRADS[:1], betas=(0.0, 0.5, 0.9999), t_beta3=10)


def test_rmsprop_and_sgd_ignore_a_groups_own_alpha_and_momentum():
    """Finding 88: the classes pass (alpha, momentum) and (momentum, dampening) to the base class as the
    constructor's ``betas``, and every group steps with ``group['betas']``: a group's own alpha (RMSprop) or
    momentum (SGD) is never read.  A group with alpha = 0 under the default 0.99 steps 10× too far (√(0.01 g²))."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = bnb.optim.RMSprop([{"params": [p], "alpha": 0.0}], lr=1e-3)
    p.grad = torch.ones(1)
    opt.step()
    own = exact("rmsprop", {"lr": 1e-3, "alpha": 0.0}, [0.0], [[1.0]])
    constructors = exact("rmsprop", {"lr": 1e-3, "alpha": 0.99}, [0.0], [[1.0]])
    assert close(p.detach().double().numpy(), constructors) and not close(p.detach().double().numpy(), own, 1e-2)
    q = torch.nn.Parameter(torch.zeros(1))
    sgd = bnb.optim.SGD([{"params": [q], "momentum": 0.5}], lr=0.1, momentum=0.9)
    for _ in range(2):
        q.grad = torch.ones(1)
        sgd.step()
    own = exact("sgd", {"lr": 0.1, "momentum": 0.5}, [0.0], [[1.0], [1.0]])
    constructors = exact("sgd", {"lr": 0.1, "momentum": 0.9}, [0.0], [[1.0], [1.0]])
    assert close(q.detach().double().numpy(), constructors) and not close(q.detach().double().numpy(), own, 1e-2)
