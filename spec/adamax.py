"""Adamax (torch.optim.Adamax): the infinity-norm variant of Adam, ε inside the max."""
from __future__ import annotations

import sympy as sp

from . import common
from .adam import BETA1, BETA2, m, moments
from .core import STEP, Assign, OptimizerSpec, State, g, t, theta

LR = common.lr(2e-3)
EPS = common.eps(1e-8, "added to |g| inside the max")
WD = common.weight_decay()
u = sp.Symbol("u", real=True)
clr = sp.Symbol("eta_t", real=True)
eta, beta1, beta2, eps, lam = LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol, WD.symbol


def rule(f: dict) -> list:
    return [
        *common.maximize(f),
        *common.coupled_weight_decay(lam),
        moments(f)[0],
        Assign(u, sp.Max(beta2 * u, sp.Abs(g) + eps), "exponentially weighted infinity norm; ε inside the max"),
        Assign(clr, eta / (1 - beta1 ** t), "bias-corrected step size; only m is corrected"),
        Assign(theta, theta - clr * m / u, "torch's addcdiv computes (clr·m)/u"),
    ]


ADAMAX = OptimizerSpec(
    name="adamax",
    title="Adamax",
    hyperparameters=(LR, BETA1, BETA2, EPS, WD, common.MAXIMIZE),
    state=(STEP,
           State("exp_avg", sp.Integer(0), "first moment m", latex="m"),
           State("exp_inf", sp.Integer(0), "infinity norm u", latex="u")),
    rule=rule,
    torch_class="torch.optim.Adamax",
    doc=__doc__,
)
