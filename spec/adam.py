"""Adam, AMSGrad and AdamW (torch.optim.Adam, torch.optim.AdamW).

ε is added after bias correction: ``θ ← θ − (lr/bc₁)·m / (√v/√bc₂ + ε)``.
AMSGrad keeps the running maximum of the raw (uncorrected) v and bias-corrects
that maximum.  AdamW is Adam with decoupled weight decay ``θ ← θ·(1 − lr·λ)``
applied before the moments, with λ = 1e-2 by default.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, UNIT, Assign, Hyperparameter, OptimizerSpec, State, g, t, theta

LR = common.lr(1e-3)
BETA1 = Hyperparameter("beta1", 0.9, UNIT, "decay of the first moment (torch: betas[0])", latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.999, UNIT, "decay of the second moment (torch: betas[1])", latex="beta_2")
EPS = common.eps(1e-8, "added to the bias-corrected root")
WD = common.weight_decay()
AMSGRAD = common.flag("amsgrad", "use the running maximum of v (AMSGrad)")
DECOUPLED = common.flag("decoupled_weight_decay", "decay θ directly (AdamW) instead of adding λθ to g")

m = sp.Symbol("m", real=True)
v = sp.Symbol("v", real=True)
vmax = sp.Symbol("v_max", real=True)
bc1 = sp.Symbol("bc_1", real=True)
bc2 = sp.Symbol("bc_2", real=True)
step_size = sp.Symbol("s", real=True)
denom = sp.Symbol("d", real=True)
eta, beta1, beta2, eps, lam = LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol, WD.symbol


def moments(f: dict) -> list:
    """The moment updates shared by Adam, AdamW, Adamax's m, NAdam and RAdam."""
    return [
        Assign(m, common.lerp(m, g, 1 - beta1), "first moment (torch: m.lerp_(g, 1 − β₁))"),
        Assign(v, beta2 * v + (1 - beta2) * g * g, "second moment"),
    ]


def rule(f: dict) -> list:
    root = v
    out = [*common.maximize(f), *common.weight_decay_either(f, eta, lam), *moments(f)]
    if f["amsgrad"]:
        out.append(Assign(vmax, sp.Max(vmax, v), "AMSGrad: running max of the raw v"))
        root = vmax
    return out + [
        Assign(bc1, 1 - beta1 ** t, "bias correction of m"),
        Assign(bc2, 1 - beta2 ** t, "bias correction of v"),
        Assign(step_size, eta / bc1, "step size (a scalar, as torch computes it)"),
        Assign(denom, sp.sqrt(root) / sp.sqrt(bc2) + eps, "ε after bias correction"),
        Assign(theta, theta - step_size * m / denom, "step: torch's addcdiv computes (s·m)/d"),
    ]


STATE = (STEP,
         State("exp_avg", sp.Integer(0), "first moment m", latex="m"),
         State("exp_avg_sq", sp.Integer(0), "second moment v", latex="v"),
         State("max_exp_avg_sq", sp.Integer(0), "running max of v", latex="v_max", when="amsgrad"))

ADAM = OptimizerSpec(
    name="adam",
    title="Adam (and AMSGrad)",
    hyperparameters=(LR, BETA1, BETA2, EPS, WD, AMSGRAD, common.MAXIMIZE, DECOUPLED),
    state=STATE,
    rule=rule,
    torch_class="torch.optim.Adam",
    doc=__doc__,
    paths_doc=("foreach: sqrt → divide by √bc₂ → add ε → addcdiv with a Python-float step size; "
               "capturable (CUDA) folds the step size into the denominator; fused: one kernel with "
               "β₁·m + (1−β₁)·g and float32 pow for the bias corrections."),
)

ADAMW = OptimizerSpec(
    name="adamw",
    title="AdamW",
    hyperparameters=tuple(h for h in ADAM.hyperparameters if h.name not in ("weight_decay", "decoupled_weight_decay"))
    + (common.weight_decay(1e-2, "decoupled decay coefficient, multiplied by lr"),),
    state=STATE,
    rule=lambda f: rule({**f, "decoupled_weight_decay": True}),
    torch_class="torch.optim.AdamW",
    doc=__doc__,
    paths_doc=ADAM.paths_doc,
    edge_doc="λ is scaled by lr, not by a schedule multiplier (torch issue 38853).",
)
