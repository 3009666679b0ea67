"""Reproductions of what the suite found in third-party optimizer libraries (docs/measured/third-party.md).

Each test states the finding as an assertion about the library's behaviour at the pinned version (the ``audits``
extra of pyproject.toml) against the spec's exact value (``reference.step``), never against the library itself,
so it fails once the library is fixed: then update the pin, the record and this file.  Without the library
installed the tests skip (``pip install -e '.[audits]'``; ``.ci/run`` installs it)."""
from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

import spec
from reference.step import trajectory

torch = pytest.importorskip("torch")
po = pytest.importorskip("pytorch_optimizer")
PINNED = "4.1.0"


@pytest.fixture(autouse=True)
def _pinned():
    assert metadata.version("pytorch_optimizer") == PINNED, (
        f"pytorch-optimizer {metadata.version('pytorch_optimizer')} installed; these findings were measured on "
        f"{PINNED}: rerun the audit (docs/measured/third-party.md) and update the pin")


ADAMAX = spec.OPTIMIZERS["adamax"]


def _exact_theta(hyper: dict, theta0: float, grads: list) -> float:
    """θ after the steps of ``grads`` (None: no gradient at that step), exact, rounded to float64."""
    rows = trajectory(ADAMAX, ADAMAX.complete(hyper), np.array([theta0]),
                      [None if g is None else np.array([g]) for g in grads], formats=("float64",))
    return float(rows[-1].rounded("theta", "float64")[0])


def test_adamax_bias_corrects_a_parameter_with_its_groups_step_count():
    """Finding 7: a parameter whose first gradient comes at the group's second step is bias-corrected with t = 2.

    θ₀ = 0, g = −1 at step 2 only, lr = 1: the spec (and torch.optim.Adamax) takes its first step, t = 1:
    θ = 10·0.1/(1 + 1e-8) ≈ 1.0; pytorch-optimizer uses the group's t = 2: 0.52632."""
    a, b = (torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in range(2))
    opt = po.AdaMax([a, b], lr=1.0)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()  # b has no gradient: the group's step count becomes 1, b's own stays 0
    b.grad = -torch.ones(1, dtype=torch.float64)
    opt.step()
    exact = _exact_theta({"lr": 1.0}, 0.0, [None, -1.0])
    assert abs(exact - 1.0) < 1e-7
    t2 = (1 - 0.9) / (1 - 0.9 ** 2) / (1 + 1e-8)  # lr·m/(1 − β₁ᵗ)/u with the group's t = 2
    assert abs(b.item() - t2) < 1e-12 and abs(b.item() - exact) > 0.4


def test_adamax_ignores_a_groups_own_maximize():
    """Finding 8: the constructor's ``maximize`` applies to every group; a group's ``maximize=True`` is ignored."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = po.AdaMax([{"params": [p], "maximize": True}], lr=0.002)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    exact = _exact_theta({"lr": 0.002, "maximize": True}, 1.0, [1.0])
    assert exact > 1.0  # maximizing: θ moves up the gradient
    assert p.item() < 1.0  # pytorch-optimizer descends


def test_adamax_maximize_negates_the_callers_gradient_in_place():
    """Finding 11: with ``maximize=True`` ``step()`` negates ``p.grad`` itself (``grad.neg_()``, both its per-parameter
    and foreach paths); torch.optim.Adamax leaves the gradient as it was, as every torch.optim optimizer does."""
    for foreach in (False, True):
        p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        opt = po.AdaMax([p], lr=0.002, maximize=True, foreach=foreach)
        p.grad = torch.tensor([1.0, -3.0])
        opt.step()
        assert p.grad.tolist() == [-1.0, 3.0], foreach
    q = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    reference = torch.optim.Adamax([q], lr=0.002, maximize=True)
    q.grad = torch.tensor([1.0, -3.0])
    reference.step()
    assert q.grad.tolist() == [1.0, -3.0]


# --------------------------------------------------------------------------- Lion (spec/lion.py)

LION = spec.OPTIMIZERS["lion"]
LION_PYTORCH = "0.2.5"


def _exact_lion_theta(hyper: dict, theta0: list, grads: list) -> list:
    rows = trajectory(LION, LION.complete(hyper), np.array(theta0), [np.array(g) for g in grads],
                      formats=("float64",))
    return [float(x) for x in rows[-1].rounded("theta", "float64")]


def test_lion_pytorch_refuses_lr_0():
    """Known deviation lion-pytorch-refuses-lr-0: ``assert lr > 0.`` in the constructor, where the spec (and the Lion
    authors' reference code, ``0.0 <= lr``) accept lr = 0, a step that leaves θ where it is."""
    lp = pytest.importorskip("lion_pytorch")
    assert metadata.version("lion-pytorch") == LION_PYTORCH
    assert _exact_lion_theta({"lr": 0.0}, [1.0], [[1.0]]) == [1.0]
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    with pytest.raises(AssertionError):
        lp.Lion([p], lr=0.0)


def test_pytorch_optimizer_lion_ignores_a_groups_own_maximize():
    """As AdaMax (finding 8): Lion's ``maximize`` is the constructor's, read for every group.  The spec has no
    maximize (nor has the paper); torch.optim's convention, which the class's API follows, is the group's flag: a
    maximizing step is the spec's step on −g."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = po.Lion([{"params": [p], "maximize": True}], lr=0.1)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert _exact_lion_theta({"lr": 0.1}, [1.0], [[-1.0]]) == [1.1]  # the step on −g ascends
    assert p.item() == 0.9  # pytorch-optimizer descends


@pytest.mark.parametrize("foreach", [False, True])
def test_pytorch_optimizer_lion_writes_into_the_callers_gradient(foreach):
    """As AdaMax (finding 11), on both paths: ``maximize=True`` negates ``p.grad`` in place, and
    ``weight_decouple=False`` adds λ·θ to it in place (``grad.add_(p, alpha=λ)``, ``torch._foreach_add_(grads,
    params, …)``).  torch.optim leaves ``p.grad`` as it was; so does the Lion authors' reference code."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.Lion([p], lr=0.1, maximize=True, foreach=foreach)
    p.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert p.grad.tolist() == [-1.0, 3.0]
    q = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.Lion([q], lr=0.1, weight_decay=0.5, weight_decouple=False, foreach=foreach)
    q.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert q.grad.tolist() == [1.5, -2.0]  # g + λ·θ₀


# --------------------------------------------------------------------------- schedulefree 1.4.1

SCHEDULEFREE_PINNED = "1.4.1"
SCHEDULEFREE_ADAMW = spec.get("schedulefree_adamw")


def _schedulefree():
    sf = pytest.importorskip("schedulefree")
    assert metadata.version("schedulefree") == SCHEDULEFREE_PINNED, (
        f"schedulefree {metadata.version('schedulefree')} installed; these findings were measured on "
        f"{SCHEDULEFREE_PINNED}: rerun the audit (docs/measured/third-party.md) and update the pin")
    return sf


@pytest.mark.parametrize("name", ["AdamWScheduleFreeReference", "AdamWScheduleFree"])
def test_schedulefree_accepts_hyperparameters_outside_the_specs_domains(name):
    """Known deviation schedulefree-accepts-any-hyperparameter: no argument is checked.  ε = −1, λ = −1 and
    warmup_steps = −1 construct; lr = −1 with β₁ = 1.5 constructs and steps, and θ = 0 moves up a positive
    gradient (to y = 1.5·x − 0.5·z with x = z ≈ 1 after the first step)."""
    sf = _schedulefree()
    cls = getattr(sf, name)
    for bad in (dict(lr=-1.0, beta1=1.5), dict(eps=-1.0), dict(weight_decay=-1.0), dict(warmup_steps=-1)):
        with pytest.raises(spec.InvalidHyperparameter):
            SCHEDULEFREE_ADAMW.complete(bad)
    for kwargs in (dict(eps=-1.0), dict(weight_decay=-1.0), dict(warmup_steps=-1)):
        cls([torch.zeros(1)], **kwargs)
    p = torch.zeros(1, dtype=torch.float64)
    opt = cls([p], lr=-1.0, betas=(1.5, 0.9))
    opt.train()
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.item() > 0.99  # a descent method with a valid lr moves θ = 0 down a positive gradient


@pytest.mark.parametrize("foreach", [False, True])
def test_schedulefree_writes_the_normalised_gradient_into_the_callers_grad(foreach):
    """AdamWScheduleFree divides p.grad in place (``grad.div_(denom)``, "reuse grad buffer for memory efficiency")
    and adds λ·y to it: after step() the caller's gradient is u = g/(√(v/bc₂) + ε) + λ·y, not g.  g = 1 at the
    first step gives v/bc₂ = 1 exactly, so u = 1/(1 + ε) + λ·θ₀.  The reference class leaves p.grad alone."""
    sf = _schedulefree()
    p = torch.full((1,), 2.0, dtype=torch.float64)
    opt = sf.AdamWScheduleFree([p], lr=0.1, eps=0.5, weight_decay=0.25, foreach=foreach)
    opt.train()
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.grad.item() == 1 / 1.5 + 0.25 * 2.0  # would be 1.0, the caller's gradient, if left alone
    q = torch.full((1,), 2.0, dtype=torch.float64)
    ref = sf.AdamWScheduleFreeReference([q], lr=0.1, eps=0.5, weight_decay=0.25)
    ref.train()
    q.grad = torch.ones(1, dtype=torch.float64)
    ref.step()
    assert q.grad.item() == 1.0


def test_schedulefree_eval_train_round_trip_is_not_exact():
    """spec/schedulefree.py, train/eval switching: AdamWScheduleFree stores no x, so eval() computes
    x = lerp(y, z, 1 − 1/β₁) and train() y = lerp(x, z, 1 − β₁), each rounded; y does not come back bit for bit
    (float32, β₁ = 0.9: y = −0x1.fe8c2ep-3, z = −0x1.410aeep-3 comes back as −0x1.fe8c30p-3, one ulp away).
    The reference class copies its stored x and y and restores y exactly."""
    sf = _schedulefree()
    y, z = float.fromhex("-0x1.fe8c2ep-3"), float.fromhex("-0x1.410aeep-3")
    p = torch.tensor([y], dtype=torch.float32)
    opt = sf.AdamWScheduleFree([p])
    opt.state[p]["z"] = torch.tensor([z], dtype=torch.float32)
    opt.param_groups[0]["train_mode"] = True
    opt.eval()
    opt.train()
    assert p.item() == float.fromhex("-0x1.fe8c30p-3") != y


def test_pytorch_optimizer_schedulefree_accepts_a_negative_warmup():
    """Known deviation pytorch-optimizer-schedulefree-accepts-negative-warmup: warmup_steps is not validated."""
    with pytest.raises(spec.InvalidHyperparameter):
        spec.get("schedulefree_adamw@pytorch-optimizer").complete({"warmup_steps": -1})
    with pytest.raises(ValueError):  # its neighbours are validated
        po.ScheduleFreeAdamW([torch.zeros(1)], eps=-1.0)
    po.ScheduleFreeAdamW([torch.zeros(1)], warmup_steps=-1)


@pytest.mark.parametrize("foreach", [False, True])
def test_pytorch_optimizer_schedulefree_writes_into_the_callers_gradient(foreach):
    """As schedulefree's AdamWScheduleFree: p.grad becomes u = g/(√(v/bc₂ + 10⁻¹⁵) + ε) + λ·y after step()."""
    p = torch.full((1,), 2.0, dtype=torch.float64)
    opt = po.ScheduleFreeAdamW([p], lr=0.1, eps=0.5, weight_decay=0.25, foreach=foreach)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.grad.item() != 1.0  # u ≈ 1/1.5 + 0.25·2: the caller's gradient 1 is gone
