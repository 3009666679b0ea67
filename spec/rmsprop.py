"""RMSprop (torch.optim.RMSprop): plain, centered, and with momentum.

ε is added outside the square root (TensorFlow puts it inside).  With momentum
the buffer accumulates ``g/avg`` and lr multiplies the buffer, so lr sits
outside it: equal to the "lr inside the buffer" form only while lr is constant.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, Assign, Hyperparameter, Interval, NONNEGATIVE, OptimizerSpec, State, g, theta, when

LR = common.lr(1e-2)
ALPHA = Hyperparameter("alpha", 0.99, NONNEGATIVE, "smoothing constant of the squared-gradient average",
                       latex="alpha", fuzz=Interval(0.0, 1.0, True, True),
                       fuzz_why="torch accepts α > 1, which makes the average grow and go negative-weighted")
EPS = common.eps(1e-8, "added to the root, outside it")
WD = common.weight_decay()
MOMENTUM = Hyperparameter("momentum", 0.0, NONNEGATIVE, "momentum factor", latex="mu",
                          fuzz=Interval(0.0, 1.0, True, False), fuzz_why="μ ≥ 1 makes the buffer grow without bound")
CENTERED = common.flag("centered", "normalise by an estimate of the variance: √(v − ḡ²)")

v = sp.Symbol("v", real=True)
gbar = sp.Symbol("gbar", real=True)
b = sp.Symbol("b", real=True)
avg = sp.Symbol("a", real=True)
eta, alpha, eps, lam, mu = LR.symbol, ALPHA.symbol, EPS.symbol, WD.symbol, MOMENTUM.symbol


def rule(f: dict) -> list:
    out = [
        *common.maximize(f),
        *common.coupled_weight_decay(lam),
        Assign(v, alpha * v + (1 - alpha) * g * g, "running average of g²"),
    ]
    if f["centered"]:
        out += [
            Assign(gbar, common.lerp(gbar, g, 1 - alpha), "running average of g (torch: ḡ.lerp_(g, 1 − α))"),
            Assign(avg, sp.sqrt(v - gbar ** 2) + eps, "centered root, ε outside"),
        ]
    else:
        out += [Assign(avg, sp.sqrt(v) + eps, "root, ε outside")]
    return out + [
        Assign(b, when(mu > 0, mu * b + g / avg, b), "momentum buffer of normalised gradients"),
        Assign(theta, when(mu > 0, theta - eta * b, theta - eta * g / avg), "lr multiplies the buffer"),
    ]


RMSPROP = OptimizerSpec(
    name="rmsprop",
    title="RMSprop",
    hyperparameters=(LR, ALPHA, EPS, WD, MOMENTUM, CENTERED, common.MAXIMIZE),
    state=(STEP,
           State("square_avg", sp.Integer(0), "running average of g²", latex="v"),
           State("momentum_buffer", sp.Integer(0), "momentum buffer", latex="b", when="momentum > 0"),
           State("grad_avg", sp.Integer(0), "running average of g", latex="gbar", when="centered")),
    rule=rule,
    torch_class="torch.optim.RMSprop",
    doc=__doc__,
    paths_doc="foreach: the same formulas over tensor lists; capturable (CUDA) keeps step on device.",
)
