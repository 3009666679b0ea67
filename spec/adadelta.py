"""AdaDelta (torch.optim.Adadelta): ε inside both square roots; the accumulated Δ excludes lr."""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, CLOSED_UNIT, Assign, Hyperparameter, OptimizerSpec, State, g, theta

LR = common.lr(1.0)
RHO = Hyperparameter("rho", 0.9, CLOSED_UNIT, "decay of both running averages", latex="rho")
EPS = common.eps(1e-6, "added inside both square roots")
WD = common.weight_decay()

v = sp.Symbol("v", real=True)
u = sp.Symbol("u", real=True)
delta = sp.Symbol("Delta", real=True)
ratio = sp.Symbol("r", real=True)
eta, rho, eps, lam = LR.symbol, RHO.symbol, EPS.symbol, WD.symbol


def rule(f: dict) -> list:
    return [
        *common.maximize(f),
        *common.coupled_weight_decay(lam),
        Assign(v, rho * v + (1 - rho) * g * g, "running average of g²"),
        Assign(ratio, sp.sqrt(u + eps) / sp.sqrt(v + eps), "RMS[Δ]/RMS[g] (torch: delta.div_(std))"),
        Assign(delta, ratio * g, "the unit-corrected step, before lr"),
        Assign(u, rho * u + (1 - rho) * delta * delta, "running average of Δ² (without lr)"),
        Assign(theta, theta - eta * delta, "lr scales the applied step only"),
    ]


ADADELTA = OptimizerSpec(
    name="adadelta",
    title="AdaDelta",
    hyperparameters=(LR, RHO, EPS, WD, common.MAXIMIZE),
    state=(STEP,
           State("square_avg", sp.Integer(0), "running average of g²", latex="v"),
           State("acc_delta", sp.Integer(0), "running average of Δ²", latex="u")),
    rule=rule,
    torch_class="torch.optim.Adadelta",
    doc=__doc__,
)
