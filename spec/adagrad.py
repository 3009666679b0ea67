"""AdaGrad (torch.optim.Adagrad): per-element step sizes from the sum of squared gradients."""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, Assign, Hyperparameter, NONNEGATIVE, OptimizerSpec, State, g, t, theta

LR = common.lr(1e-2)
LR_DECAY = Hyperparameter("lr_decay", 0.0, NONNEGATIVE, "lr is divided by 1 + (t − 1)·lr_decay", latex="delta")
WD = common.weight_decay()
INIT = Hyperparameter("initial_accumulator_value", 0.0, NONNEGATIVE,
                      "starting value of the sum (TensorFlow's default is 0.1)", latex="s_0")
EPS = common.eps(1e-10, "added to √sum, outside the square root")

s = sp.Symbol("s", real=True)
clr = sp.Symbol("eta_t", real=True)
eta, delta, lam, eps = LR.symbol, LR_DECAY.symbol, WD.symbol, EPS.symbol


def rule(f: dict) -> list:
    return [
        *common.maximize(f),
        *common.coupled_weight_decay(lam),
        Assign(clr, eta / (1 + (t - 1) * delta), "decayed learning rate"),
        Assign(s, s + g * g, "accumulate the squared gradient"),
        Assign(theta, theta - clr * g / (sp.sqrt(s) + eps), "ε outside the square root"),
    ]


ADAGRAD = OptimizerSpec(
    name="adagrad",
    title="AdaGrad",
    hyperparameters=(LR, LR_DECAY, WD, INIT, EPS, common.MAXIMIZE),
    state=(STEP,
           State("sum", INIT.symbol, "sum of squared gradients", latex="s")),
    rule=rule,
    torch_class="torch.optim.Adagrad",
    doc=__doc__,
    paths_doc="foreach: sqrt → add ε → addcdiv per list; fused (CPU): one kernel.",
)
