"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of an interpolated momentum.

torch.optim has no Lion.  This spec follows the paper's Algorithm 2 and the
authors' reference code (google/automl ``lion/lion_pytorch.py``), with their
defaults (lr = 1e-4, β₁ = 0.9, β₂ = 0.99, λ = 0).  Per element, with the
momentum m: the direction c = β₁·m + (1 − β₁)·g (an interpolation of m and g);
the step θ ← θ − η·(sign(c) + λ·θ) (Algorithm 2, θ on the right the old θ);
then m ← β₂·m + (1 − β₂)·g, updated after it was used.

Where the two differ only in evaluation order the spec follows the reference
code, which is what implementations copy: the decay comes first as its own
multiplication ``θ ← θ·(1 − η·λ)`` (``p.data.mul_(1 - lr * weight_decay)``), then
``θ ← θ − η·sign(c)`` (``p.add_(update.sign_(), alpha=-lr)``); c is the weighted
sum ``exp_avg * beta1 + grad * (1 - beta1)``, and m is
``exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)``.  In exact arithmetic the two orders are the same
update (θ − η·sign(c) − η·λ·θ = θ·(1 − η·λ) − η·sign(c)); they round differently.
The paper's algorithm box and the reference code have no ``maximize``; nor has
this spec.  There is no step counter: Lion has no bias correction.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import UNIT, Assign, Hyperparameter, OptimizerSpec, State, g, theta, unless_zero

LR = common.lr(1e-4)
BETA1 = Hyperparameter("beta1", 0.9, UNIT, "weight of m in the direction c (betas[0]; the reference code refuses "
                       "β ∉ [0, 1))", latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.99, UNIT, "decay of the momentum m (betas[1])", latex="beta_2")
WD = common.weight_decay(0.0, "decoupled decay θ ← θ·(1 − lr·λ), before the sign step (the reference code does "
                         "not validate it; the paper's λ ≥ 0)")

m = sp.Symbol("m", real=True)
c = sp.Symbol("c", real=True)
eta, beta1, beta2, lam = LR.symbol, BETA1.symbol, BETA2.symbol, WD.symbol


def sign_step(x, positive, negative, zero):
    """torch's ``sign(x)`` as a selector: ``positive`` if x > 0, ``negative`` if x < 0, ``zero`` otherwise.

    Otherwise is x = 0 (either zero) and NaN: ATen computes sign as (0 < x) − (x < 0), so ``torch.sign(nan)`` is
    0, not NaN (pytorch/pytorch#41245, measured on torch 2.13 CPU for every float dtype; NumPy's sign is NaN).
    """
    return sp.Piecewise((positive, x > 0), (negative, x < 0), (zero, True))


def rule(f: dict) -> list:
    return [
        Assign(theta, unless_zero(lam, theta * (1 - eta * lam), theta),
               "decoupled weight decay first (reference code: p.mul_(1 − lr·λ); θ·1 = θ exactly, so skipping "
               "it for λ = 0 changes no value)"),
        Assign(c, beta1 * m + (1 - beta1) * g, "the direction: m·β₁ + g·(1 − β₁), with the old m"),
        # each piece is θ − η·sign(c) for one sign (θ − η·0 = θ exactly): the pieces are the tensors
        Assign(theta, sign_step(c, theta - eta, theta + eta, theta),
               "θ − η·sign(c): p.add_(sign(c), alpha=−lr); sign(0) = sign(NaN) = 0 leaves θ where the decay "
               "put it"),
        Assign(m, beta2 * m + (1 - beta2) * g, "momentum: m·β₂ + g·(1 − β₂), after the step"),
    ]


LION = OptimizerSpec(
    name="lion",
    title="Lion (EvoLved Sign Momentum)",
    hyperparameters=(LR, BETA1, BETA2, WD),
    state=(State("exp_avg", sp.Integer(0), "momentum m, created at the first step with a gradient", latex="m"),),
    rule=rule,
    torch_class="",
    counts_steps=False,
    doc=__doc__,
    paths_doc=("No torch.optim class: the torch backend runs Lion only as a class given by "
               "`--optimizer lion=module:Class` (path `custom`).  Third-party implementations audited against this "
               "spec: docs/measured/third-party.md (lion-pytorch, pytorch-optimizer, and Optax through `--backend=optax`)."),
    edge_doc=(
        "sign(0) = 0: where c is exactly 0 (a zero gradient at the first step, or g = −β₁·m/(1 − β₁) exactly) θ "
        "keeps its decayed value; a signed zero c is 0 too.  Where c's rounding, not its exact value, is 0 or "
        "has the other sign, the tolerance model treats the comparison as ambiguous and accepts either step "
        "(docs/tolerance.md).  NaN: torch.sign(NaN) is 0, not NaN (ATen's (0 < x) − (x < 0); "
        "pytorch/pytorch#41245), and the reference code steps with torch.sign, so a NaN c (a NaN g or m, or "
        "inf − inf) leaves θ at its decayed value, while m becomes NaN and stays NaN: from then on that element "
        "only decays, silently (with NumPy's sign, NaN, θ would become NaN; the NumPy port follows torch).  "
        "An infinite g gives an infinite c of the same sign (a step of ±η) and an infinite m; a later g of the "
        "other infinite sign makes c = inf − inf = NaN.  The update's magnitude is η per element whatever the gradient's scale.  "
        "The paper's Algorithm 2 writes θ ← θ − η·(sign(c) + λ·θ); the reference code decays first: the same "
        "exact value, a different rounding (spec/identities.py: lion_paper_order_is_reference_order).  β: the reference code refuses β ∉ [0, 1); "
        "lion-pytorch accepts β = 1 too.  lr = 0 is accepted by the reference code (`0.0 <= lr`); lion-pytorch "
        "asserts lr > 0."),
)
