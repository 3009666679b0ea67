"""RAdam (torch.optim.RAdam): Adam with variance rectification.

ρ∞ = 2/(1 − β₂) − 1 and ρ_t = ρ∞ − 2t·β₂^t/(1 − β₂^t).  The rectified
adaptive step is taken only when ρ_t > 5 (strictly; the paper says 4, Optax
uses ≥ 5); otherwise the step is the bias-corrected momentum alone.  ε is added
to the uncorrected √v.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .adam import BETA1, BETA2, m, moments, v
from .core import STEP, Assign, OptimizerSpec, State, t, theta, when

LR = common.lr(1e-3)
EPS = common.eps(1e-8, "added to √v before bias correction")
WD = common.weight_decay()
DECOUPLED = common.flag("decoupled_weight_decay", "decay θ directly instead of adding λθ to g")

rho_inf = sp.Symbol("rho_inf", real=True)
rho_t = sp.Symbol("rho_t", real=True)
rect = sp.Symbol("r_t", real=True)
adaptive = sp.Symbol("l_t", real=True)
mhat = sp.Symbol("mhat", real=True)
eta, beta1, beta2, eps, lam = LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol, WD.symbol


def rule(f: dict) -> list:
    bc2 = 1 - beta2 ** t
    return [
        *common.maximize(f),
        *common.weight_decay_either(f, eta, lam),
        *moments(f),
        Assign(mhat, m / (1 - beta1 ** t), "bias-corrected first moment"),
        Assign(rho_inf, 2 / (1 - beta2) - 1, "maximum length of the approximated SMA"),
        Assign(rho_t, rho_inf - 2 * t * beta2 ** t / bc2, "length at step t"),
        Assign(rect, sp.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)),
               "variance rectification term (used only when ρ_t > 5)"),
        Assign(adaptive, sp.sqrt(bc2) / (sp.sqrt(v) + eps), "adaptive learning rate"),
        Assign(theta, when(rho_t > 5, theta - mhat * eta * adaptive * rect, theta - mhat * eta),
               "rectified step when the variance is tractable, else momentum SGD"),
    ]


RADAM = OptimizerSpec(
    name="radam",
    title="RAdam",
    hyperparameters=(LR, BETA1, BETA2, EPS, WD, DECOUPLED, common.MAXIMIZE),
    state=(STEP,
           State("exp_avg", sp.Integer(0), "first moment m", latex="m"),
           State("exp_avg_sq", sp.Integer(0), "second moment v", latex="v")),
    rule=rule,
    torch_class="torch.optim.RAdam",
    doc=__doc__,
)
