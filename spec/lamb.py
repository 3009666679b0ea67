"""LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", Algorithm 2):
Adam's direction plus decoupled decay, scaled per tensor by a trust ratio.

torch.optim has no LAMB.  This spec follows the paper's Algorithm 2 with bias correction, φ the identity (the
paper's experiments and every implementation we read), and its defaults for the moments (β₁ = 0.9, β₂ = 0.999,
ε = 1e-6) with λ = 0 by default.  Per element: m ← β₁·m + (1 − β₁)·g, v ← β₂·v + (1 − β₂)·g²,
u = (m/(1 − β₁ᵗ))/(√(v/(1 − β₂ᵗ)) + ε) + λ·θ; per tensor: w = ‖θ‖₂ and q = ‖u‖₂ over every element of the
parameter tensor, the trust ratio r = w/q; then θ ← θ − (η·r)·u.

**Zero norms.**  Algorithm 2 divides by ‖u‖ and is silent where a norm is 0.  The spec takes r = 1 unless both
norms are positive, the convention of the TensorFlow reference (tensorflow/addons ``lamb.py``:
``tf.where(w_norm > 0, tf.where(g_norm > 0, w_norm / g_norm, 1.0), 1.0)``) that the PyTorch ports copy: a zero
θ (a fresh bias) takes the plain Adam step, and a zero u leaves θ where it is.

**Reductions.**  w and q are sums over the whole tensor (``spec.reductions``); implementations sum in the order of
their kernels, and the tolerance model charges the bound of any order.  NaN or ±inf anywhere in the tensor makes
a norm non-finite, so every element's step then follows IEEE's rules.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, UNIT, Assign, Hyperparameter, OptimizerSpec, State, g, t, theta, unless_zero
from .reductions import Norm

LR = common.lr(1e-3)
BETA1 = Hyperparameter("beta1", 0.9, UNIT, "decay of the first moment m (betas[0])", latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.999, UNIT, "decay of the second moment v (betas[1])", latex="beta_2")
EPS = common.eps(1e-6, "added to the bias-corrected root of v (the paper's ε = 1e-6)")
WD = common.weight_decay(0.0, "decoupled decay λ: λ·θ is part of the direction u that the trust ratio scales")

m = sp.Symbol("m", real=True)
v = sp.Symbol("v", real=True)
u = sp.Symbol("u", real=True)
w = sp.Symbol("w", real=True)  # ‖θ‖₂ of the tensor
q = sp.Symbol("q", real=True)  # ‖u‖₂ of the tensor
r = sp.Symbol("r", real=True)  # the trust ratio
eta, beta1, beta2, eps, lam = LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol, WD.symbol


def rule(f: dict) -> list:
    return [
        Assign(m, beta1 * m + (1 - beta1) * g, "first moment"),
        Assign(v, beta2 * v + (1 - beta2) * g ** 2, "second moment"),
        Assign(u, (m / (1 - beta1 ** t)) / (sp.sqrt(v / (1 - beta2 ** t)) + eps),
               "Adam's bias-corrected direction"),
        Assign(u, unless_zero(lam, u + lam * theta, u),
               "plus the decoupled decay λ·θ (``if weight_decay != 0``: 0·θ is NaN for an infinite θ)"),
        Assign(w, Norm(theta), "‖θ‖₂ over the tensor, before the step"),
        Assign(q, Norm(u), "‖u‖₂ over the tensor"),
        Assign(r, sp.Piecewise((w / q, sp.And(w > 0, q > 0)), (1, True)),
               "the trust ratio; 1 where either norm is 0 (tensorflow/addons)"),
        Assign(theta, theta - (eta * r) * u, "θ − (η·r)·u"),
    ]


LAMB = OptimizerSpec(
    name="lamb",
    title="LAMB (layer-wise adaptive moments)",
    hyperparameters=(LR, BETA1, BETA2, EPS, WD),
    state=(STEP, State("exp_avg", sp.Integer(0), "first moment m", latex="m"),
           State("exp_avg_sq", sp.Integer(0), "second moment v", latex="v")),
    rule=rule,
    torch_class="",
    doc=__doc__,
    paths_doc=("No torch.optim class: the torch backend runs LAMB only as a class given by "
               "`--optimizer lamb=module:Class` (path `custom`)."),
    edge_doc=("A zero θ tensor or a zero u tensor takes r = 1.  A non-finite element anywhere makes both norms "
              "non-finite for the whole tensor."),
)
