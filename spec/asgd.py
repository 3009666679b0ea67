"""ASGD (torch.optim.ASGD): averaged SGD, Polyak–Juditsky, in PyTorch's form.

θ takes a decayed SGD step with the step size η of the *previous* step, then
the running average ā follows θ: a copy while μ = 1, afterwards
ā + μ·(θ − ā).  Only then are η and μ recomputed for the next step from this
step's count t: η = γ/(1 + λ·γ·t)^α and μ = 1/max(1, t − t₀).  So averaging
(μ < 1) starts at the step after the one where t − t₀ first exceeds 1, the
first step past t₀ + 2 (torch's docstring: "t0: point at which to start
averaging"); with the default t₀ = 10⁶, ā is a copy of θ for a million steps.

η and μ are state, not a function of t alone: η is computed with the learning
rate in force at the step that computed it, and starts at the group's lr when
torch creates the state (the parameter's first step with a gradient); μ
starts at 1 whatever t₀ is.  torch keeps both as 0-d tensors of its default
scalar dtype (float32 unless the default dtype is float64), one per
parameter: the values here are the exact ones, and an implementation that
rounds them is charged that rounding (its path's scalar precision); in float64
a float32 η and μ are a known deviation of torch.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import REALS, STEP, Assign, Hyperparameter, Interval, NONNEGATIVE, OptimizerSpec, State, g, t, theta, when

LR = Hyperparameter("lr", 1e-2, NONNEGATIVE, common.LR_DOC + "; enters the update only through η, one step late",
                    latex="gamma")
LAMBD = Hyperparameter("lambd", 1e-4, REALS, "decay term λ: θ shrinks by λ·η each step, and η decays with λ·γ·t "
                       "(torch: lambd; not validated)", latex="lambda",
                       fuzz=Interval(0.0, 1.0, True, True),
                       fuzz_why="torch accepts any value; λ < 0 can make 1 + λ·γ·t negative, whose power α is "
                                "complex in Python")
ALPHA = Hyperparameter("alpha", 0.75, REALS, "power of the η decay (not validated)", latex="alpha",
                       fuzz=Interval(0.0, 2.0, True, True),
                       fuzz_why="torch accepts any value; α outside [0, 2] only makes η decay faster or grow")
T0 = Hyperparameter("t0", 1e6, REALS, "the step count after which averaging starts: μ = 1/max(1, t − t₀) "
                    "(not validated)", latex="t_0",
                    fuzz=Interval(-4.0, 6.0, True, True),
                    fuzz_why="the default 10⁶ keeps ā a copy of θ for a million steps: drawn within the 6 steps "
                             "of a case, so averaging starts in it; t₀ < −1 makes μ jump from its initial 1")
WD = Hyperparameter("weight_decay", 0.0, NONNEGATIVE, "L2 penalty coefficient", latex="w")

eta = sp.Symbol("eta", real=True)
mu = sp.Symbol("mu", real=True)
ax = sp.Symbol("thetabar", real=True)
gap = sp.Symbol("d_avg", real=True)
gamma, lam, alpha, t0, w = LR.symbol, LAMBD.symbol, ALPHA.symbol, T0.symbol, WD.symbol


def rule(f: dict) -> list:
    return [
        *common.maximize(f),
        *common.coupled_weight_decay(w),
        Assign(theta, theta * (1 - lam * eta) - eta * g,
               "decay and descend with the previous step's η (torch: param.mul_(1 − λ·η); "
               "param.add_(grad, alpha=−η))"),
        # a statement of its own: torch computes param.sub(ax).mul_(mu) and adds it, not torch.lerp, whose
        # b − (b − a)·(1 − w) form for w ≥ ½ gives NaN where θ is infinite and ā is not
        Assign(gap, theta - ax, "θ − ā (torch: param.sub(ax))"),
        Assign(ax, when(sp.Ne(mu, 1), ax + mu * gap, theta),
               "average, with the previous step's μ: a copy while μ = 1 (torch's for-loop tests "
               "mu.item() != 1), else ā + μ·(θ − ā)"),
        Assign(eta, gamma / (1 + lam * gamma * t) ** alpha, "η for the next step, from this step's count"),
        Assign(mu, 1 / sp.Max(1, t - t0), "μ for the next step"),
    ]


ASGD = OptimizerSpec(
    name="asgd",
    title="ASGD (averaged SGD)",
    hyperparameters=(LR, LAMBD, ALPHA, T0, WD, common.MAXIMIZE),
    state=(STEP,
           State("eta", gamma, "step size η of the next step; torch fills it with the group's lr when it "
                 "creates the state (a 0-d float32 tensor per parameter)", latex="eta"),
           State("mu", sp.Integer(1), "averaging weight μ of the next step (a 0-d float32 tensor per parameter)",
                 latex="mu"),
           State("ax", sp.Integer(0), "the running average ā of θ (torch: ax); the optimizer's result, "
                 "never read by the θ update", latex="thetabar")),
    rule=rule,
    torch_class="torch.optim.ASGD",
    doc=__doc__,
    paths_doc=(
        "foreach: folds the decay into the gradient, θ − η·(g + λθ) (torch._foreach_addcmul_ with the 0-d η "
        "tensors), which loses θ·(1 − λη) where λη is near 1 (a known deviation), and always averages "
        "ā + μ·(θ − ā), without the for-loop's copy while μ = 1 (the same value there: θ is one rounding from "
        "ā, so θ − ā is exact); η and μ are Python floats copied into the float32 tensors, as in the for-loop.  "
        "capturable (CUDA): the for-loop's or foreach's form with η, μ and the step counter in float32 tensor "
        "arithmetic on the device, and the average always ā + μ·(θ − ā), which on the single-tensor path "
        "differs from the copy (a known deviation).  torch 2.13 has no fused ASGD."),
    edge_doc=(
        "torch's constructor checks lr ≥ 0 and weight_decay ≥ 0 (NaN refused: `not 0.0 <= x`) and nothing "
        "else: any λ, α and t₀ is accepted, including λ < 0 where 1 + λ·γ·t < 0 makes Python's power "
        "complex (torch then copies its real part into η with a UserWarning: λ = −2, lr = 1 gives η = −0.7071).  "
        "With μ = 1 the copy ā ← θ and the average ā + 1·(θ − ā) are equal in exact arithmetic but not in "
        "the format where θ is two roundings from ā (θ·(1 − λη), then − η·g): θ − ā is rounded and the "
        "average loses θ's low bits (torch's single-tensor capturable path, a known deviation).  "
        "μ = 1/max(1, t − t₀) is exactly 1 while t − t₀ ≤ 1; an implementation's float32 μ is also 1 "
        "for t − t₀ ≤ 1 + 2⁻²⁴ (the tolerance model accepts either branch there).  "
        "The η that moves θ at a step was computed at the parameter's previous step, with the lr then in "
        "force: a learning rate set before a step acts from the step after it (the first step uses the lr "
        "η was created with).  "
        "torch's docstring describes the arguments only (t₀: 'point at which to start averaging'); the "
        "update above is read from its code (_single_tensor_asgd)."),
)
