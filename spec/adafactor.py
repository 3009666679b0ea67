"""Adafactor as torch.optim.Adafactor (torch 2.13's ``_adafactor.py``) computes it: Shazeer and Stern's factored
second moment with a relative step size, in torch's own dialect (its docstring's notes say where it departs from
the paper: lr caps the relative step and scales the decay; ε₁ is applied to the estimate, not to the factors;
means, not sums, of squared gradients).

**Factored or not, by the tensor's shape.**  A tensor with two or more dimensions (``grad.dim() > 1``) keeps the
second moment factored over its last two dimensions: a row factor R (one value per row: torch's ``row_var`` of
shape (…, R, 1)) and a column factor C (one per column: ``col_var``, (…, 1, C)); the estimate of an element is
R·C / max(mean of R over the rows, ε₁).  A vector or a 0-d tensor keeps the whole second moment (``variance``).
The rule receives this as the tensor flag ``factored`` (``spec.core.TensorFlag``), and the spec keeps R and C per
element, constant along the reduced dimension (``State.reduced_axis``).

**The order of the code, not of the docstring.**  Per tensor, at step t (the counter after incrementing):
ρ_t = min(lr, 1/√t) and α = max(ε₂, ‖θ‖₂/√numel)·ρ_t are computed first, from θ before the decay (binary64
scalars: ``step.item()``, ``param.norm(2).item()``); then θ·(1 − lr·λ) when λ ≠ 0; the factors by lerps of
weight t^τ (τ = beta2_decay; ``step**beta2_decay``, so 1 − β̂₂ₜ = t^τ); the row mean of g² as torch computes it,
``norm(g, dim=-1)² / size(-1)`` (a norm, then a square, then a division), and the column mean likewise; the update
U = g·(max(V̂, ε₁²))^(−½) (``clamp_(min=eps1*eps1).rsqrt_()``, ε₁² a binary64 product); the clip
max(1, ‖U‖₂/(√numel·d)); and θ + (−α/clip)·U.  The docstring writes U = G/max(√V̂, ε₁), which is the code's value
only where √ is exact: the spec follows the code.

**ε₁ = None** (the default) means the machine epsilon of the parameter's dtype (``torch.finfo(param.dtype).eps``):
the spec keeps None and the reference resolves it per tensor (``Hyperparameter.none_means_eps``).

**Python's max.**  α's floor and the clip are Python's ``max(a, b)`` of binary64 numbers, which returns ``a``
unless ``b > a``: a NaN norm (a NaN anywhere in θ or U) gives ε₂ and 1, not NaN, so a NaN element does not spread
to the rest of the tensor through α or the clip; the spec writes these as comparisons, as the code runs them.

**Reductions.**  ‖θ‖, ‖U‖ and the row and column norms are sums in whatever order the kernel takes; the tolerance
model charges the bound of any order (``spec.reductions``).  A non-finite element anywhere in the tensor makes the
whole tensor's step follow IEEE's rules.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import (STEP, NONNEGATIVE, Assign, Hyperparameter, Interval, OptimizerSpec, State, TensorFlag, g, t,
                   theta, when)
from .reductions import AxisMean, AxisNorm, Length, Norm, Numel

LR = Hyperparameter("lr", 1e-2, NONNEGATIVE, "caps the relative step size ρ_t = min(lr, 1/√t) and scales the "
                    "decoupled decay (torch's departure from the paper, which fixes 0.01)", latex="eta")
BETA2_DECAY = Hyperparameter("beta2_decay", -0.8, Interval(None, 0.0, True, True),
                             "τ: the moments' weight of the new statistics is t^τ (1 − β̂₂ₜ)", latex="tau",
                             fuzz=Interval(-2.0, 0.0, True, True),
                             fuzz_why="t^τ for t ≤ 6 steps: below −2 the new statistics' weight is all that varies")
EPS1 = Hyperparameter("eps1", None, NONNEGATIVE, "ε₁ (torch: eps[0]): floors the estimate at ε₁² and the row "
                      "factors' mean at ε₁; None is the dtype's machine epsilon", latex="epsilon_1",
                      none_means_eps=True)
EPS2 = Hyperparameter("eps2", 1e-3, NONNEGATIVE, "ε₂ (torch: eps[1]): floors RMS(θ) in the step size α",
                      latex="epsilon_2")
D = Hyperparameter("d", 1.0, Interval(1.0, None), "the clipping threshold: U is scaled down where RMS(U) > d",
                   latex="d", fuzz=Interval(1.0, 100.0, True, True), fuzz_why="past RMS(U) (about 1) it never clips")
WD = common.weight_decay(0.0, "decoupled decay coefficient, multiplied by lr")

R = sp.Symbol("R", real=True)  # row factor, per element (constant along the last dimension)
C = sp.Symbol("C", real=True)  # column factor, per element (constant along the second-to-last)
V = sp.Symbol("V", real=True)  # the whole second moment of a vector
nr = sp.Symbol("n_r", real=True)  # a row's norm of g, per element
nc = sp.Symbol("n_c", real=True)  # a column's norm of g, per element
rho = sp.Symbol("rho", real=True)
alpha = sp.Symbol("alpha", real=True)
w = sp.Symbol("w", real=True)  # t^τ, the lerps' weight
vhat = sp.Symbol(r"\hat{V}", real=True)
u = sp.Symbol("U", real=True)
clip = sp.Symbol("c", real=True)
rms = sp.Symbol("r", real=True)  # RMS(θ)
q = sp.Symbol("q", real=True)  # RMS(U)/d
s = sp.Symbol("s", real=True)  # −α/clip, the scalar of the final add
eta, tau, eps1, eps2, d, lam = (h.symbol for h in (LR, BETA2_DECAY, EPS1, EPS2, D, WD))

FACTORED = TensorFlag("factored", "tensors with two or more dimensions, torch's `grad.dim() > 1`",
                      lambda shape: len(shape) >= 2)


def rule(f: dict) -> list:
    out = [
        *common.maximize(f),
        Assign(rho, when(1 / sp.sqrt(t) < eta, 1 / sp.sqrt(t), eta),
               "relative step size ρ_t = min(lr, 1/√t) with Python's min: lr unless 1/√t < lr (binary64)"),
        Assign(rms, Norm(theta) / sp.sqrt(Numel(theta)), "RMS(θ) = ‖θ‖₂/√numel of θ as the step receives it "
               "(``param.norm(2).item() / (param.numel() ** 0.5)``)"),
        Assign(alpha, when(rms > eps2, rms, eps2) * rho,
               "α = max(ε₂, RMS(θ))·ρ_t with Python's max: ε₂ unless RMS(θ) > ε₂, so a NaN RMS gives ε₂"),
        *common.decoupled_weight_decay(eta, lam),
        Assign(w, t ** tau, "the lerps' weight 1 − β̂₂ₜ = t^τ (torch's ``one_minus_beta2_t``, a Python pow)"),
    ]
    if f["factored"]:
        out += [
            Assign(nr, AxisNorm(g, -1), "each row's ‖g‖₂ (``torch.norm(grad, dim=-1, keepdim=True)``)"),
            Assign(R, common.lerp(R, nr ** 2 / Length(g, -1), w),
                   "row factor: lerp to the row mean of g², the norm squared then divided by size(-1)"),
            Assign(nc, AxisNorm(g, -2), "each column's ‖g‖₂ (``dim=-2``)"),
            Assign(C, common.lerp(C, nc ** 2 / Length(g, -2), w),
                   "column factor: lerp to the column mean of g², the norm squared then divided by size(-2)"),
            Assign(vhat, R * C / sp.Max(AxisMean(R, -2), eps1),
                   "the estimate R·C (``row_var @ col_var``) over the rows' mean of R, floored at ε₁"),
        ]
    else:
        out.append(Assign(V, common.lerp(V, g * g, w), "the whole second moment: lerp to g²"))
        out.append(Assign(vhat, V, "the estimate is V itself (a copy)"))
    return out + [
        Assign(u, 1 / sp.sqrt(sp.Max(vhat, eps1 ** 2)), "``clamp_(min=eps1*eps1).rsqrt_()``: ε₁² in binary64"),
        Assign(u, u * g, "U = g·(max(V̂, ε₁²))^(−½)"),
        Assign(q, Norm(u) / (sp.sqrt(Numel(u)) * d), "RMS(U)/d (``update.norm(2).item() / (numel ** 0.5 * d)``)"),
        Assign(clip, when(q > 1, q, 1), "the clip max(1, RMS(U)/d) with Python's max: 1 unless RMS(U)/d > 1, so a "
               "NaN gives 1"),
        Assign(s, -alpha / clip, "the scalar −α/clip (binary64)"),
        Assign(theta, theta + s * u, "``param.add_(update, alpha=-alpha/denom)``"),
    ]


ADAFACTOR = OptimizerSpec(
    name="adafactor",
    title="Adafactor",
    hyperparameters=(LR, BETA2_DECAY, EPS1, EPS2, D, WD, common.MAXIMIZE),
    state=(STEP,
           State("row_var", sp.Integer(0), "row factor R of the second moment (torch: shape (…, R, 1))", latex="R",
                 when="the tensor has ≥ 2 dimensions", reduced_axis=-1),
           State("col_var", sp.Integer(0), "column factor C of the second moment (torch: shape (…, 1, C))",
                 latex="C", when="the tensor has ≥ 2 dimensions", reduced_axis=-2),
           State("variance", sp.Integer(0), "the whole second moment of a vector or 0-d tensor", latex="V",
                 when="the tensor has < 2 dimensions")),
    rule=rule,
    torch_class="torch.optim.Adafactor",
    doc=__doc__,
    tensor_flags=(FACTORED,),
    paths_doc=("for-loop (the default: torch picks it unless `foreach=True`) and foreach, which groups tensors by "
               "device, dtype and whether they are factored, computes the same scalars in binary64 per tensor, "
               "and applies the step as two roundings, `_foreach_mul_(updates, -α/clip)` then "
               "`_foreach_add_(params, updates)`, where the for-loop's `add_(update, alpha=)` rounds once.  "
               "torch has no fused, capturable or differentiable Adafactor (no such arguments)."),
    edge_doc=("A zero gradient row or column with ε₁ = 0 gives 0·rsqrt(0) = NaN, as torch computes.  ε₁ = None "
              "is each tensor's own dtype epsilon in the spec; torch's code assigns it once per step and group "
              "(see the known deviations)."),
)
