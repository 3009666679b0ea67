"""NAdam (torch.optim.NAdam): Adam with Nesterov momentum and Dozat's μ schedule.

μ_t = β₁·(1 − ½·0.96^(t·ψ)), with ψ = momentum_decay; the state keeps the
running product Π μ_t.  ``0.96`` is the binary64 literal of torch's code.
The for-loop path computes the root as √(v/bc₂) + ε; foreach as √v/√bc₂ + ε.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .adam import BETA1, BETA2, m, moments, v
from .core import STEP, Assign, Hyperparameter, NONNEGATIVE, OptimizerSpec, State, g, py_float, t, theta

LR = common.lr(2e-3)
EPS = common.eps(1e-8, "added to the bias-corrected root")
WD = common.weight_decay()
PSI = Hyperparameter("momentum_decay", 4e-3, NONNEGATIVE, "ψ of the momentum schedule", latex="psi")
DECOUPLED = common.flag("decoupled_weight_decay", "decay θ directly (NAdamW) instead of adding λθ to g")

mu_t = sp.Symbol("mu_t", real=True)
mu_next = sp.Symbol("mu_next", real=True)
prod = sp.Symbol("Pi", real=True)
denom = sp.Symbol("d", real=True)
c_g = sp.Symbol("c_g", real=True)
c_m = sp.Symbol("c_m", real=True)
eta, beta1, beta2, eps, lam, psi = LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol, WD.symbol, PSI.symbol
C096 = py_float(0.96)


def rule(f: dict) -> list:
    return [
        *common.maximize(f),
        *common.weight_decay_either(f, eta, lam),
        Assign(mu_t, beta1 * (1 - sp.Rational(1, 2) * C096 ** (t * psi)), "momentum coefficient of this step"),
        Assign(mu_next, beta1 * (1 - sp.Rational(1, 2) * C096 ** ((t + 1) * psi)), "and of the next"),
        Assign(prod, prod * mu_t, "running product of μ"),
        *moments(f),
        Assign(denom, sp.sqrt(v / (1 - beta2 ** t)) + eps, "bias-corrected root, ε outside"),
        Assign(c_g, eta * (1 - mu_t) / (1 - prod), "coefficient of the gradient part (a scalar)"),
        Assign(c_m, eta * mu_next / (1 - prod * mu_next), "coefficient of the look-ahead momentum part"),
        Assign(theta, theta - c_g * g / denom, "gradient part (torch's first addcdiv)"),
        Assign(theta, theta - c_m * m / denom, "momentum part (the second addcdiv)"),
    ]


NADAM = OptimizerSpec(
    name="nadam",
    title="NAdam",
    hyperparameters=(LR, BETA1, BETA2, EPS, WD, PSI, DECOUPLED, common.MAXIMIZE),
    state=(STEP,
           State("mu_product", sp.Integer(1), "running product Π μ (a scalar per parameter)", latex="Pi"),
           State("exp_avg", sp.Integer(0), "first moment m", latex="m"),
           State("exp_avg_sq", sp.Integer(0), "second moment v", latex="v")),
    rule=rule,
    torch_class="torch.optim.NAdam",
    doc=__doc__,
    paths_doc="foreach computes √v/√bc₂ + ε (PR 92699 aligned the two paths up to that order).",
)
