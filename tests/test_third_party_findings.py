"""Reproductions of what the suite found in third-party optimizer libraries (docs/measured/third-party.md).

Each test states the finding as an assertion about the library's behaviour at the pinned version (the ``audits``
extra of pyproject.toml) against the spec's exact value (``reference.step``), never against the library itself,
so it fails once the library is fixed: then update the pin, the record and this file.  Without the library
installed the tests skip (``pip install -e '.[audits]'``; ``.ci/run`` installs it)."""
from __future__ import annotations

import math
from importlib import metadata

import numpy as np
import pytest

import spec
from reference.step import trajectory
from tests.library_pin import pinned

torch = pytest.importorskip("torch")
po = pytest.importorskip("pytorch_optimizer")
PINNED = "4.1.0"


_pinned = pinned("pytorch_optimizer", PINNED, "pytorch-optimizer")


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


# --------------------------------------------------------------------------- Adan (spec/adan.py)

ADAN_PYTORCH = "0.1.0"


def _exact_adan_theta(name: str, hyper: dict, theta0: list, grads: list) -> list:
    """θ after the steps of ``grads`` under the spec ``name`` (``adan`` or a dialect), exact, rounded to float64."""
    s = spec.get(name)
    rows = trajectory(s, s.complete(hyper), np.array(theta0), [None if g is None else np.array(g) for g in grads],
                      formats=("float64",))
    return [float(x) for x in rows[-1].rounded("theta", "float64")]


def test_pytorch_optimizer_adan_bias_corrects_with_its_groups_step_count():
    """Known deviation pytorch-optimizer-adan-counts-steps-per-group (as AdaMax, finding 7; the reference code
    does the same).  θ₀ = 0, g = −1 at the group's second step only, lr = 1: the spec takes the parameter's first
    step, m/(1 − β₁) = g and √(n/(1 − β₃)) = |g|: θ = 1/(1 + 1e-8); with the group's t = 2, m/(1 − β₁²) =
    −0.02/0.0396 and √(0.01/0.0199): θ ≈ 0.712."""
    a, b = (torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in range(2))
    opt = po.Adan([a, b], lr=1.0)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()  # b has no gradient: the group's count becomes 1, b's own stays 0
    b.grad = -torch.ones(1, dtype=torch.float64)
    opt.step()
    exact = _exact_adan_theta("adan", {"lr": 1.0}, [0.0], [None, [-1.0]])[0]
    assert abs(exact - 1.0) < 1e-7
    t2 = (0.02 / (1 - 0.98 ** 2)) / ((0.01 / (1 - 0.99 ** 2)) ** 0.5 + 1e-8)
    assert abs(b.item() - t2) < 1e-12 and abs(b.item() - exact) > 0.2


def test_pytorch_optimizer_adan_per_parameter_path_negates_the_callers_gradient():
    """``_step_per_param`` ends with ``grad.neg_()`` on ``p.grad`` itself (to store −g as previous_grad), with or
    without maximize: after a step ``p.grad`` holds −g.  That path runs with foreach=False, for complex parameters,
    use_gc and adanorm; the foreach path (the CPU default for real tensors) copies.  The reference code leaves
    ``p.grad`` as it was (clip 1)."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.Adan([p], lr=0.1, foreach=False)
    p.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert p.grad.tolist() == [-1.0, 3.0]
    q = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.Adan([q], lr=0.1, foreach=True)
    q.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert q.grad.tolist() == [1.0, -3.0]
    # maximize: the foreach path negates p.grad in place (findings 11, 16); on this path the two negations cancel
    r = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.Adan([r], lr=0.1, foreach=True, maximize=True)
    r.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert r.grad.tolist() == [-1.0, 3.0]


def test_pytorch_optimizer_adan_takes_no_prox_and_ignores_it():
    """The reference code's ``no_prox=True`` goes into ``**kwargs`` without an error and changes nothing: the step
    is the proximal form (pytorch-optimizer's flag is ``weight_decouple``).  θ₀ = 1, g = 1, lr = 0.1, λ = 0.5:
    no_prox gives 1·(1 − 0.05) − 0.1/(1 + 1e-8) ≈ 0.85, the proximal form (1 − 0.1/(1 + 1e-8))/1.05 ≈ 0.857."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = po.Adan([p], lr=0.1, weight_decay=0.5, no_prox=True)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    hyper = {"lr": 0.1, "weight_decay": 0.5}
    no_prox = _exact_adan_theta("adan", {**hyper, "no_prox": True}, [1.0], [[1.0]])[0]
    prox = _exact_adan_theta("adan", hyper, [1.0], [[1.0]])[0]
    assert abs(no_prox - 0.85) < 1e-7 and abs(prox - 0.9 / 1.05) < 1e-7
    assert abs(p.item() - prox) < 1e-15 and abs(p.item() - no_prox) > 1e-3


@pytest.fixture
def adan_pytorch():
    ap = pytest.importorskip("adan_pytorch")
    assert metadata.version("adan-pytorch") == ADAN_PYTORCH
    return ap


def test_adan_pytorch_first_step_ignores_the_gradient(adan_pytorch):
    """adan-pytorch updates m, v and n only from a parameter's second step on (``if step > 0``), yet its bias
    corrections count the first: the first step leaves θ where it is (λ = 0), and later steps are short (the
    moments hold t − 1 updates, corrected as if t).  θ₀ = 1, g = 1, 1, lr = 0.1: the spec steps 0.1 each time
    (θ = 0.8), adan-pytorch 0 and then 0.1·(0.02/(1 − 0.98²))/√(0.01/(1 − 0.99²)) ≈ 0.0712."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = adan_pytorch.Adan([p], lr=0.1)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.item() == 1.0
    assert abs(_exact_adan_theta("adan", {"lr": 0.1}, [1.0], [[1.0]])[0] - 0.9) < 1e-8
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert abs(_exact_adan_theta("adan", {"lr": 0.1}, [1.0], [[1.0], [1.0]])[0] - 0.8) < 1e-8
    short = 0.1 * (0.02 / (1 - 0.98 ** 2)) / ((0.01 / (1 - 0.99 ** 2)) ** 0.5 + 1e-8)
    assert abs(p.item() - (1.0 - short)) < 1e-12


def test_adan_pytorch_float16_first_step_is_nan(adan_pytorch):
    """At the first step n = 0 and float16's ``add_(1e-8)`` adds 0 (ε rounds to 0 in float16): lr/0 = inf, times the
    zero update, is NaN, in every element, whatever the gradient.  The spec's (and its own dialect's) first step
    leaves θ as it is."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float16))
    opt = adan_pytorch.Adan([p], lr=0.1)
    p.grad = torch.tensor([1.0, 0.0], dtype=torch.float16)
    opt.step()
    assert _exact_adan_theta("adan@adan-pytorch", {"lr": 0.1}, [1.0, 2.0], [[1.0, 0.0]]) == [1.0, 2.0]
    assert torch.isnan(p).all()


def test_adan_pytorch_tiny_beta_divides_by_zero(adan_pytorch):
    """Known deviation adan-pytorch-zero-division-for-tiny-beta: ``1 / (1 - (1 - beta) ** step)`` with Python
    floats; for β ≤ 2⁻⁵⁴, 1 − β rounds to 1 and the step raises ZeroDivisionError.  The exact correction is finite
    (about 1/(t·β)), and so is the dialect's θ."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = adan_pytorch.Adan([p], lr=0.1, betas=(2.0 ** -54, 0.08, 0.01))
    p.grad = torch.ones(1, dtype=torch.float64)
    with pytest.raises(ZeroDivisionError):
        opt.step()
    assert _exact_adan_theta("adan@adan-pytorch", {"lr": 0.1, "beta1": 2.0 ** -54}, [1.0], [[1.0]]) == [1.0]


def test_adan_pytorch_accepts_any_hyperparameter(adan_pytorch):
    """Known deviation adan-pytorch-accepts-any-hyperparameter: the constructor asserts ``len(betas) == 3`` and
    nothing else, so a negative lr (an ascent), ε or λ and β outside (0, 1] are taken; the reference code refuses
    each with ValueError (λ aside, which it does not check either)."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    adan_pytorch.Adan([p], lr=-1.0, betas=(2.0, -0.5, 0.01), eps=-1.0, weight_decay=-1.0)
    for bad in ({"lr": -1.0}, {"beta1": 2.0}, {"eps": -1.0}):
        with pytest.raises(spec.InvalidHyperparameter):
            spec.get("adan@adan-pytorch").complete(bad)


# --------------------------------------------------------------------------- pytorch-optimizer's AdEMAMix

ADEMAMIX = spec.OPTIMIZERS["ademamix"]
ADEMAMIX_PO = spec.get("ademamix@pytorch-optimizer")


def _exact_ademamix_theta(s, hyper: dict, theta0: float, grads: list) -> float:
    """θ after the steps of ``grads`` (None: no gradient at that step) under spec ``s``, exact, rounded to float64."""
    rows = trajectory(s, s.complete(hyper), np.array([theta0]), [None if g is None else np.array([g]) for g in grads],
                      formats=("float64",))
    return float(rows[-1].rounded("theta", "float64")[0])


def test_pytorch_optimizer_ademamix_corrects_with_its_groups_step_count():
    """Known deviation pytorch-optimizer-ademamix-step-per-group: a parameter whose first gradient comes at the
    group's second step is bias-corrected with t = 2.  θ₀ = 0, g = −1 at step 2 only, lr = 1, no warm-up: its own
    first step (t = 1) gives θ = (1 + 5·10⁻⁴)/(1 + 10⁻⁸) ≈ 1.0005; with t = 2, m₁/bc₁ = 0.1/0.19 and √(ν/bc₂) = 0.7074."""
    a, b = (torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in range(2))
    opt = po.AdEMAMix([a, b], lr=1.0)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    b.grad = -torch.ones(1, dtype=torch.float64)
    opt.step()
    exact = _exact_ademamix_theta(ADEMAMIX_PO, {"lr": 1.0}, 0.0, [None, -1.0])
    assert abs(exact - 1.0005) < 1e-7
    t2 = (0.1 / (1 - 0.9 ** 2) + 5 * 1e-4) / (math.sqrt(1e-3 / (1 - 0.999 ** 2)) + 1e-8)
    assert abs(b.item() - t2) < 1e-12 and abs(b.item() - exact) > 0.2


def test_pytorch_optimizer_ademamix_beta3_schedule_runs_past_its_warmup():
    """Known deviation pytorch-optimizer-ademamix-beta3-schedule-raises: β₃(t) is the paper's formula at every step,
    also past the warm-up (t > T), where the reference code (and the spec) take β₃.  β₁ = 0.9 > β₃ = 0.5, T = 10: at
    t = 11 the slow moment decays with 0.2085, not 0.5 (its first step after a state at 0 leaves m₂ = (1 − β₃(t))·g);
    at T = 10000, t = 11793 math.exp overflows and step() raises OverflowError."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = po.AdEMAMix([p], betas=(0.9, 0.999, 0.5), t_alpha_beta3=10.0)
    opt.param_groups[0]["step"] = 10  # as a restored state_dict would set it: the next step is t = 11
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    slow = opt.state[p]["exp_avg_slow"].item()
    assert abs(slow - (1 - 0.5)) > 0.2 and abs(slow - (1 - 0.20849)) < 1e-4
    opt.param_groups[0].update(step=11792, t_alpha_beta3=10000.0)
    with pytest.raises(OverflowError):
        opt.step()


@pytest.mark.parametrize("betas", [(0.0, 0.999, 0.9999), (0.9, 0.999, 0.0)])
def test_pytorch_optimizer_ademamix_warmup_with_a_zero_beta_raises(betas):
    """The same schedule takes math.log(β₁) and math.log(β₃): with a warm-up, β₁ = 0 or β₃ = 0 (accepted by its
    validation, and by the spec) raises ValueError at the first step.  The reference code adds 10⁻⁸ inside its
    logarithm for exactly this."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = po.AdEMAMix([p], betas=betas, t_alpha_beta3=10.0)
    p.grad = torch.ones(1, dtype=torch.float64)
    with pytest.raises(ValueError, match="math domain error"):
        opt.step()


def test_pytorch_optimizer_ademamix_accepts_a_zero_warmup_and_then_divides_by_it():
    """t_alpha_beta3 = 0 passes its validation (``validate_non_negative``) and step() raises ZeroDivisionError
    (step·α/0); the spec's warm-up 0 (the reference code's 0 or None) is no warm-up."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = po.AdEMAMix([p], t_alpha_beta3=0.0)
    p.grad = torch.ones(1, dtype=torch.float64)
    with pytest.raises(ZeroDivisionError):
        opt.step()
    assert _exact_ademamix_theta(ADEMAMIX, {"lr": 1.0, "alpha_warmup": 0.0, "beta3_warmup": 0.0}, 0.0, [1.0]) < 0


def test_pytorch_optimizer_ademamix_ignores_the_reference_codes_warmup_arguments():
    """Its constructor takes ``**kwargs`` into the group defaults: the reference code's ``alpha_warmup`` and
    ``beta3_warmup`` are accepted and ignored (its warm-up is ``t_alpha_beta3``), so a port of reference-code
    settings runs without a warm-up and no error says so.  lr = 1, α = 2, T_α = 4: the spec's first step uses
    α(1) = 0.5; pytorch-optimizer's uses α = 2."""
    def run(**kw):
        p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = po.AdEMAMix([p], lr=1.0, alpha=2.0, **kw)
        p.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        return p.item()

    assert run(alpha_warmup=4, beta3_warmup=4) == run()
    exact = _exact_ademamix_theta(ADEMAMIX, {"lr": 1.0, "alpha": 2.0, "alpha_warmup": 4.0}, 0.0, [1.0])
    assert abs(run() - exact) > 1e-4


@pytest.mark.parametrize("foreach", [False, True])
def test_pytorch_optimizer_ademamix_maximize_is_per_optimizer_and_writes_into_the_gradient(foreach):
    """As its AdaMax and Lion (findings 8, 11, 16): the constructor's ``maximize`` is read for every group (a
    group's own is ignored), and ``maximize=True`` and ``weight_decouple=False`` (its default) write −g and g + λθ
    into ``p.grad``."""
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = po.AdEMAMix([{"params": [p], "maximize": True}], lr=0.1, foreach=foreach)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.item() < 1.0  # descended: the group's maximize=True was ignored
    q = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.AdEMAMix([q], lr=0.1, weight_decay=0.5, foreach=foreach)
    q.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert q.grad.tolist() == [1.5, -2.0]  # g + λ·θ₀, in place
    r = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = po.AdEMAMix([r], lr=0.1, maximize=True, foreach=foreach)
    r.grad = torch.tensor([1.0, -3.0])
    opt.step()
    assert r.grad.tolist() == [-1.0, 3.0]


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


# --------------------------------------------------------------------------- Schedule-Free SGD (schedulefree 1.4.1,
# pytorch-optimizer 4.1.0)

SCHEDULEFREE_SGD = spec.get("schedulefree_sgd")
SF_SGD_CLASSES = ["SGDScheduleFreeReference", "SGDScheduleFree"]


def _sgd_first_step(opt, p, grad: float) -> None:
    opt.train()
    p.grad = torch.full_like(p, grad)
    opt.step()


@pytest.mark.parametrize("name", SF_SGD_CLASSES)
def test_schedulefree_sgd_accepts_a_fractional_or_negative_warmup(name):
    """Known deviation schedulefree-sgd-accepts-any-warmup: lr, weight_decay and momentum are checked, warmup_steps
    is not.  A fractional W makes the warm-up overshoot: W = ½ gives γ₁ = lr·1/W = 2·lr, so the first step from
    θ = 0 with g = 1, lr = 1 lands at y = z = −2 (c = 1 at the first step: x = z), where every whole W ≥ 0 steps at
    most lr."""
    sf = _schedulefree()
    cls = getattr(sf, name)
    for bad in (dict(warmup_steps=0.5), dict(warmup_steps=-1)):
        with pytest.raises(spec.InvalidHyperparameter):
            SCHEDULEFREE_SGD.complete(bad)
    for refused in (dict(lr=-1.0), dict(momentum=0.0), dict(momentum=1.0), dict(weight_decay=-1.0)):
        with pytest.raises(ValueError):  # its neighbours are checked
            cls([torch.zeros(1)], **refused)
    cls([torch.zeros(1)], warmup_steps=-1)
    p = torch.zeros(1, dtype=torch.float64)
    _sgd_first_step(cls([p], lr=1.0, warmup_steps=0.5), p, 1.0)
    assert p.item() == -2.0


@pytest.mark.parametrize("name, foreach", [("SGDScheduleFreeReference", False), ("SGDScheduleFree", False),
                                           ("SGDScheduleFree", True)])
def test_schedulefree_sgd_writes_the_decayed_gradient_into_the_callers_grad(name, foreach):
    """Both SGD classes, the reference one too (unlike AdamWScheduleFreeReference), add λ·y to p.grad in place
    (``grad.add_(y, alpha=weight_decay)``, grad = p.grad): after step() the caller's gradient is g + λ·y.
    θ₀ = 2, g = 1, λ = ¼: 1.5 (1.0 if left alone).  The step itself is the spec's: z = 2 − ½·1.5 = 1.25."""
    sf = _schedulefree()
    p = torch.full((1,), 2.0, dtype=torch.float64)
    _sgd_first_step(getattr(sf, name)([p], lr=0.5, weight_decay=0.25, foreach=foreach), p, 1.0)
    assert p.grad.item() == 1.0 + 0.25 * 2.0
    assert p.item() == 2.0 - 0.5 * 1.5


@pytest.mark.parametrize("foreach", [False, True])
def test_pytorch_optimizer_schedulefree_sgd_accepts_a_fractional_or_negative_warmup(foreach):
    """Known deviation pytorch-optimizer-schedulefree-sgd-accepts-any-warmup: lr, momentum, weight_decay and eps are
    validated, warmup_steps is not.  Its warm-up tests the step count from 1 (t/W while t < W), so W = ½ means no
    warm-up here (θ = 0, g = 1, lr = 1: −1), where schedulefree's k < W doubles the first step (−2)."""
    with pytest.raises(ValueError):
        po.ScheduleFreeSGD([torch.zeros(1)], momentum=1.0)
    po.ScheduleFreeSGD([torch.zeros(1)], warmup_steps=-1)
    p = torch.zeros(1, dtype=torch.float64)
    _sgd_first_step(po.ScheduleFreeSGD([p], lr=1.0, warmup_steps=0.5, foreach=foreach), p, 1.0)
    assert p.item() == -1.0


@pytest.mark.parametrize("foreach", [False, True])
def test_pytorch_optimizer_schedulefree_sgd_writes_the_decayed_gradient_into_the_callers_grad(foreach):
    """As schedulefree's SGD classes: apply_weight_decay adds λ·y to p.grad in place (1 + ¼·2 = 1.5)."""
    p = torch.full((1,), 2.0, dtype=torch.float64)
    _sgd_first_step(po.ScheduleFreeSGD([p], lr=0.5, weight_decay=0.25, foreach=foreach), p, 1.0)
    assert p.grad.item() == 1.5
    assert p.item() == 1.25


@pytest.mark.parametrize("foreach", [False, True])
def test_pytorch_optimizer_schedulefree_sgd_ignores_eps(foreach):
    """ScheduleFreeSGD documents eps as "Term added to denominator to improve numerical stability" and validates it
    (≥ 0), but its update has no denominator and never reads group['eps']: three steps with eps = 0 and eps = 10⁶
    are bit for bit the same."""
    with pytest.raises(ValueError):
        po.ScheduleFreeSGD([torch.zeros(1)], eps=-1.0)
    runs = []
    for eps in (0.0, 1e6):
        q = torch.linspace(-1.0, 1.0, 7, dtype=torch.float32)
        opt = po.ScheduleFreeSGD([q], lr=0.1, eps=eps, weight_decay=0.01, foreach=foreach)
        for i in range(3):
            q.grad = torch.sin(3 * q + i)
            opt.step()
        runs.append(q.clone())
    assert torch.equal(runs[0], runs[1])
    assert "eps" in po.ScheduleFreeSGD.__doc__ and "denominator" in po.ScheduleFreeSGD.__doc__


def test_adamax_default_lr_is_half_torchs():
    """Finding 10 (known deviation pytorch-optimizer-adamax-default-lr): ``AdaMax()``'s default lr is 1e-3, the spec's
    (torch.optim.Adamax's) 2e-3."""
    p = torch.nn.Parameter(torch.ones(1))
    assert ADAMAX.complete({})["lr"] == 2e-3
    assert po.AdaMax([p]).defaults["lr"] == 1e-3


# --------------------------------------------------------------------------- pytorch-optimizer 4.1.0: Lamb

LAMB = spec.get("lamb")


def _exact_lamb(hyper: dict, theta0: list, grads: list) -> np.ndarray:
    """The spec's θ (spec/lamb.py, the paper's Algorithm 2) after ``grads``, exact, rounded to float64."""
    rows = trajectory(LAMB, LAMB.complete(hyper), np.array(theta0),
                      [None if g is None else np.array(g) for g in grads], formats=("float64",))
    return rows[-1].rounded("theta", "float64")


@pytest.mark.parametrize("foreach", [None, False])
def test_pytorch_optimizer_lamb_scales_the_trust_ratio_step_by_the_first_bias_correction(foreach):
    """Finding 50: the step is lr/(1 − β₁ᵗ)·r·u with u = m/(√v + ε): the first moment's bias correction multiplies
    the step after the trust ratio, which therefore does not cancel it, so the first step is 1/(1 − β₁) = 10 times
    the paper's (whose m̂ sits inside u, under the ratio) and the docstring's ("without bias correction").
    θ₀ = [3, 4] (‖θ‖ = 5), g = [1, 1], lr = 0.01: the spec moves θ by lr·‖θ‖ = 0.05 in norm, to
    [2.96464, 3.96464]; pytorch-optimizer by 0.5, to [2.64645, 3.64645]; adam_debias=True gives the paper's."""
    theta = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    opt = po.Lamb([theta], lr=0.01, foreach=foreach)
    theta.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    exact = _exact_lamb({"lr": 0.01}, [3.0, 4.0], [[1.0, 1.0]])
    np.testing.assert_allclose(exact, np.array([3.0, 4.0]) - 0.01 * 5 / math.sqrt(2), rtol=1e-15)  # r·u = 5/√2 each
    moved, paper = np.linalg.norm(theta.detach().numpy() - [3, 4]), np.linalg.norm(exact - [3, 4])
    assert abs(paper - 0.05) < 1e-6 and abs(moved / paper - 10) < 1e-4
    fixed = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    opt = po.Lamb([fixed], lr=0.01, foreach=foreach, adam_debias=True)
    fixed.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    np.testing.assert_allclose(fixed.detach().numpy(), exact, rtol=1e-8)


def test_pytorch_optimizer_lamb_bias_corrects_with_its_groups_step_count():
    """Finding 53 (known deviation pytorch-optimizer-lamb-counts-steps-per-group): a parameter whose first gradient
    comes at the group's second step is scaled by lr/(1 − β₁²) (t = 2) where its own t = 1 gives lr/(1 − β₁)."""
    a, b = (torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64)) for _ in range(2))
    opt = po.Lamb([a, b], lr=0.01)
    a.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    b.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    moved = np.linalg.norm(b.detach().numpy() - [3, 4])
    # r·u has the norm of θ (5, up to ε); the step size is lr/(1 − β₁ᵗ)
    assert abs(moved - 0.01 / (1 - 0.9 ** 2) * 5) < 1e-5 and abs(moved - 0.01 / (1 - 0.9) * 5) > 0.2


def test_pytorch_optimizer_lamb_float16_fails_where_the_step_size_passes_65504():
    """Finding 54 (known deviation pytorch-optimizer-lamb-float16-step-size-raises): lr = 0.01, β₁ = 1 − 1e-7,
    θ = 1e-3 (float16), g = 1: s = lr/(1 − β₁) = 83,886 exceeds float16's 65,504, though the step s·r·u is about
    76 (its dialect's exact θ₁ = −76.0038, −76 in float16).  The foreach path (the default on the CPU) passes −s
    as torch._foreach_add_'s alpha, which must fit the dtype: RuntimeError.  The per-parameter path forms
    −s·r (r ≈ 208) as a float16 tensor first: −inf, so θ₁ = −inf."""
    dialect = spec.get("lamb@pytorch-optimizer")
    hyper = dialect.complete({"lr": 0.01, "beta1": 1 - 1e-7})
    rows = trajectory(dialect, hyper, np.array([float(np.float16(1e-3))]), [np.array([1.0])],
                      formats=("float16",))
    assert rows[-1].rounded("theta", "float16")[0] == -76.0

    def step(foreach):
        p = torch.nn.Parameter(torch.tensor([1e-3], dtype=torch.float16))
        opt = po.Lamb([p], lr=0.01, betas=(1 - 1e-7, 0.999), foreach=foreach)
        p.grad = torch.ones(1, dtype=torch.float16)
        opt.step()
        return p.item()

    with pytest.raises(RuntimeError, match="cannot be converted to type c10::Half without overflow"):
        step(None)
    assert step(False) == -math.inf


@pytest.mark.parametrize("foreach", [None, False])
def test_pytorch_optimizer_lamb_maximize_is_per_optimizer_and_writes_into_the_gradient(foreach):
    """Finding 55: as its AdaMax and Lion (findings 8, 11, 15, 16): a group's maximize=True is ignored, the
    optimizer's negates the caller's p.grad in place, and pre_norm scales p.grad in place."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = po.Lamb([{"params": [p], "maximize": True}], lr=0.01, foreach=foreach)
    p.grad = torch.tensor([1.0, -3.0], dtype=torch.float64)
    opt.step()
    assert p[0].item() < 1 and p[1].item() > 2  # descended: the group's maximize was not read
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = po.Lamb([p], lr=0.01, maximize=True, foreach=foreach)
    p.grad = torch.tensor([1.0, -3.0], dtype=torch.float64)
    opt.step()
    assert p.grad.tolist() == [-1.0, 3.0]
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = po.Lamb([p], lr=0.01, pre_norm=True, foreach=foreach)
    p.grad = torch.tensor([1.0, -3.0], dtype=torch.float64)
    opt.step()
    # scaled by max_grad_norm/(‖g‖ + ε), a float32 factor
    np.testing.assert_allclose(p.grad.numpy(), np.array([1.0, -3.0]) / (math.sqrt(10) + 1e-6), rtol=1e-6)
