"""Schedule-Free SGD (Defazio et al. 2024, "The Road Less Scheduled"), as schedulefree 1.4.1 computes it.

torch.optim has no Schedule-Free optimizer.  This spec follows the explicit
form of schedulefree 1.4.1's ``SGDScheduleFreeReference``
(``sgd_schedulefree_reference.py``), with the three sequences of
spec/schedulefree.py: z (the SGD iterate), x (the weighted average of z, the
point to evaluate) and y (where the gradient is taken; the parameter θ holds y
in train mode):

    y = (1 − β)·z + β·x,  z ← z − γ_t·(g + λ·y),  x ← (1 − c)·x + c·z.

β is the ``momentum`` argument.  Per step of a parameter group (k its step
count before the step, t = k + 1), the group scalars are Schedule-Free
AdamW's (spec/schedulefree.py: ``average_weights``): γ_t = lr·t/W while
k < W, else lr; lr_max = max(γ_t, lr_max), starting at −1; weight =
tʳ·lr_max²; weight_sum ← weight_sum + weight; c = weight/weight_sum (0 when
weight_sum = 0).  There is no second moment and no ε.  Then:

* u = g + λ·y (``grad.add_(y, alpha=weight_decay)``, skipped when λ = 0): the
  decay is L2 in the gradient, at y, and it is written into the caller's
  ``p.grad`` (docs/measured/third-party.md);
* z ← z − γ_t·u, x ← x·(1 − c) + c·z, y ← x·β + z·(1 − β).

Unlike Schedule-Free AdamW's reference class (``z.sub_(y, alpha=lr*decay)``
before the gradient step), the SGD reference class folds the decay into the
gradient, so the reference form and the y form round the decay alike.  The
constructor checks lr ≥ 0, λ ≥ 0 and 0 < β < 1 (the domains here; the
docstring says "between 0 and 1 exclusive"), and not warmup_steps, which the
spec takes as a whole number ≥ 0, as for AdamW.  As there, the group scalars
are kept per parameter (``group_steps``: the harness draws no None gradient),
``weight_lr_power`` is its default 2, and z and x start as copies of the
parameter at its first step.

Train/eval switching is not a step.  ``SGDScheduleFree`` (the y form, no
stored x) computes x = lerp(y, z, 1 − 1/β) in ``eval()`` and y = lerp(x, z,
1 − β) in ``train()``, each rounded; the reference class copies its stored x
and y.  The harness steps in train mode only.
"""
from __future__ import annotations

import sympy as sp

from . import common
from . import schedulefree as _sf
from .core import Assign, Hyperparameter, Interval, OptimizerSpec, g, t, theta, unless_zero, when

LR = common.lr(1.0)
MOMENTUM = Hyperparameter("momentum", 0.9, Interval(0.0, 1.0, False, False),
                          "β, the weight of x in y = (1 − β)·z + β·x (validated in the open interval (0, 1))",
                          latex="beta")
WD = common.weight_decay(0.0, "L2 decay at y, in the gradient: u = g + λ·y")
WARMUP, R = _sf.WARMUP, _sf.R

beta, lam = MOMENTUM.symbol, WD.symbol
z, x, u, lr_t, ck, dz = _sf.z, _sf.x, _sf.gn, _sf.lr_t, _sf.ck, _sf.dz


def decayed_gradient() -> list:
    return [Assign(u, unless_zero(lam, g + lam * theta, g), "u = grad.add_(y, alpha=λ) (in place: p.grad becomes u)")]


def reference_steps() -> list:
    """SGDScheduleFreeReference's tensor statements after the group scalars: z, then x, then y from them."""
    return [
        *decayed_gradient(),
        Assign(z, z - lr_t * u, "z.sub_(u, alpha=γ_t)"),
        Assign(x, x * (1 - ck) + ck * z, "x.mul_(1 − c).add_(z, alpha=c): a weighted sum, not a lerp"),
        Assign(theta, beta * x + (1 - beta) * z, "y = x.mul(β).add_(z, alpha=1 − β), copied into the parameter"),
    ]


def y_form_steps() -> list:
    """SGDScheduleFree's tensor statements (its for-loop; foreach the same ops over lists): y in place, no x."""
    return [
        *decayed_gradient(),
        Assign(theta, common.lerp(theta, z, ck), "y.lerp_(end=z, weight=c)"),
        Assign(dz, lr_t * (beta * (1 - ck) - 1), "γ_t·(β·(1 − c) − 1), a Python float"),
        Assign(theta, theta + dz * u, "y.add_(u, alpha=γ_t·(β·(1 − c) − 1))"),
        Assign(z, z - lr_t * u, "z.sub_(u, alpha=γ_t)"),
    ]


def rule(f: dict) -> list:
    return [*_sf.created(), Assign(x, when(sp.Eq(t, 1), theta, x), "so is x"), *_sf.average_weights(),
            *reference_steps()]


def y_form_rule(f: dict) -> list:
    return [*_sf.created(), *_sf.average_weights(), *y_form_steps()]


SCHEDULEFREE_SGD = OptimizerSpec(
    name="schedulefree_sgd",
    title="Schedule-Free SGD",
    hyperparameters=(LR, MOMENTUM, WD, WARMUP, R),
    state=_sf.averaging_state("SGD"),
    rule=rule,
    torch_class="",
    doc=__doc__,
    group_steps=True,
    paths_doc=("No torch.optim class: the torch backend runs it only as a class given by "
               "`--optimizer schedulefree_sgd=module:Class` (path `custom`); the schedulefree classes need "
               "`train()` before a step, which `conformance.adapters.schedulefree` calls.  Third-party "
               "implementations audited against this spec: docs/measured/third-party.md."),
    edge_doc=(
        "c = 0 while weight_sum = 0 (every γ so far 0): x keeps its value.  The first step has c = 1 whenever "
        "γ₁ > 0, so x = z after it.  y = β·x + (1 − β)·z is recomputed at every step and rounds even where "
        "x = z (lr = 0 does not return θ bit for bit; β = 0, which would make y = z, is outside the domain the "
        "library validates).  Decay at y in the gradient: with λ > 0 and y infinite, z becomes infinite.  "
        "warmup_steps is not validated by the library (a known deviation of its classes)."),
)
