"""Prodigy as prodigyopt 1.1.2's ``Prodigy.step`` (konstmish/prodigy, the authors' reference code) computes it.

**Two parts.**  Prodigy is Adam whose step size d·lr is estimated from the whole model: each step reduces over
every tensor of every parameter group to two numbers, so it is not element-wise.  The spec states it in two parts,
as ``spec/muon.py`` does for Muon's orthogonalisation:

* the **group scalars** (``group_scalars`` below; binary64 Python floats in prodigyopt), one set per ``step()``,
  stored by prodigyopt in every group's dict and so observable: ``d_numerator``, ``d_denom``, ``d_hat``, ``d_max``
  and ``d``;
* the **element-wise rule** (``PRODIGY``, a regular spec): exp_avg, exp_avg_sq, s and θ of each tensor, given the
  group's d before the step (hyperparameter ``d``) and after it (``d_next``) as observed inputs of the step.

"Conforms" (``tests/prodigy_check.py``) means: the group scalars agree with ``group_scalars`` evaluated on the
implementation's own tensors (θ before the step, p0, g, the s after the step) within the bound of any-order
summation (the tolerance model's n-ary ``Bound.add``: n − 1 roundings, each at most u·Σ|terms|, Higham §4.2), and
each element of each tensor agrees with ``PRODIGY``'s rule within the derived element-wise bound, given the d and
d_next the implementation had.  d_max and d are exact functions (max, min, one binary64 product) of the observed
d_hat, so they are compared exactly.

**prodigyopt's step, statement for statement** (Python floats unless marked *tensor*; k = group 0's ``k``, the
number of completed steps; lr = max over groups of ``group['lr']``, each of which must be lr or 0 (RuntimeError
otherwise); β₃ = ``math.sqrt(β₂)`` when ``beta3`` is None)::

    bc  = √(1 − β₂^(k+1)) / (1 − β₁^(k+1))  if use_bias_correction  else 1      (``(…)**0.5``)
    dlr = d·lr·bc
    N   = β₃·d_numerator;  Δ = 0;  D = 0
    for each group, each tensor with a gradient:
        g ← g + λθ                           if λ ≠ 0 and not decouple     (tensor; mutates p.grad in place)
        first time: step = 0, s = 0, p0 = θ (flattened, [::slice_p]; a 0-d zero when θ is all zero), m = v = 0
        if the group's lr > 0:
            Δ += (d/d0)·dlr·dot(g, p0 − θ).item()      (dot: tensor, in θ's dtype; every [::slice_p]-th element)
            m = β₁·m + (d·(1 − β₁))·g                   (tensor, ``mul_`` then ``add_(alpha=)``; no m if β₁ = 0)
            v = β₂·v + (d·d·(1 − β₂))·g·g              (tensor, ``addcmul_``)
            s = β₃·s + ((d/d0)·(d if safeguard_warmup else dlr))·g      (tensor, sliced)
            D += Σ|s|.item()
    if D == 0: return                          (early: m, v, s, p.grad already changed; θ, k, d, N are not)
    N ← N + Δ;  d̂ = d_coef·N/D
    if d == d0: d ← max(d, d̂)                  (d0 of the *last* group)
    d_max ← max(d_max, d̂);  d ← min(d_max, d·growth_rate)
    every group stores d_numerator = N, d_denom = D, d, d_max, d_hat = d̂
    for each group, each tensor with a gradient:            (the lr = 0 groups too, with the global dlr)
        step += 1;  den = √v + d·ε              (the *new* d)
        θ = θ + (−λ·dlr)·θ                      if λ ≠ 0 and decouple
        θ = θ + (−dlr)·m/den  if β₁ > 0,  else  θ + (−dlr·d)·g/den      (the new d again)
    every group: k ← k + 1

**Against the paper** (Mishchenko & Defazio 2023, arXiv:2306.06101, the Adam version of Section 5, Algorithm 3 or 4
depending on the arXiv version; as we read it: m, v, then
r_{k+1} = √β₂·r_k + (1 − √β₂)·γ_k·d_k²·⟨g_k, x₀ − x_k⟩, s_{k+1} = √β₂·s_k + (1 − √β₂)·γ_k·d_k²·g_k,
d̂_{k+1} = r_{k+1}/‖s_{k+1}‖₁, d_{k+1} = max(d_k, d̂_{k+1}), x_{k+1} = x_k − γ_k·d_k·m_{k+1}/(√v_{k+1} + d_k·ε)):
the code drops the common factor (1 − √β₂) of r and s and scales both by 1/d0 (equal ratio in exact arithmetic);
it adds d_coef, the growth limit (d_max, growth_rate; with growth_rate = ∞, d = max(d0, max d̂), the paper's
rule), bias correction, safeguard_warmup (γ_k left out of s), weight decay, slice_p; and its ε term is d_{k+1}·ε,
not d_k·ε; with β₁ = 0 its numerator is dlr·d_{k+1}·g where the paper's m_{k+1} = d_k·g gives dlr·d_k·g (a step
d_{k+1}/d_k times the paper's).  A growth limit has one exception: while d is still d0, d jumps to d̂ at once.

**slice_p** > 1: s and p0 exist for every slice_p-th element of the flattened tensor only; the rule of s is the
same there, and the reductions read those elements only (``group_scalars`` takes them as given).
**Not in this spec**: fsdp_in_use (torch.distributed).  A group with lr = 0 beside groups with
lr > 0 is in it: flag ``lr_zero`` states what the code does to it (finding 89).
"""
from __future__ import annotations

import math

import sympy as sp

from . import common
from .core import (REALS, UNIT, Assign, Hyperparameter, Interval, OptimizerSpec, State, g, t, theta,
                   unless_zero, when)

POSITIVE = Interval(0.0, None, False)
LR = Hyperparameter("lr", 1.0, POSITIVE, "the largest group lr (prodigyopt refuses lr ≤ 0 in the constructor; a "
                    "group's lr must equal it or be 0)", latex="eta")
BETA1 = Hyperparameter("beta1", 0.9, UNIT, "decay of m (betas[0]); 0 keeps no m", latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.999, UNIT, "decay of v (betas[1])", latex="beta_2")
BETA3 = Hyperparameter("beta3", math.sqrt(0.999), REALS, "decay of s and of d_numerator; None means "
                       "math.sqrt(β₂) in binary64 (``resolve``); prodigyopt checks no value", latex="beta_3",
                       fuzz=Interval(0.0, 1.0, True, True), fuzz_why="outside [0, 1] the EMA extrapolates")
EPS = Hyperparameter("eps", 1e-8, POSITIVE, "added to √v, times the new d (prodigyopt refuses ε ≤ 0)",
                     latex="epsilon")
WD = Hyperparameter("weight_decay", 0.0, REALS, "λ; prodigyopt checks no value (a negative λ grows θ)",
                    latex="lambda", fuzz=Interval(0.0, 2.0), fuzz_why="a negative λ (accepted: finding 90) grows θ")
D0 = Hyperparameter("d0", 1e-6, POSITIVE, "initial d; s and d_numerator are scaled by d/d0", latex="d_0")
D = Hyperparameter("d", 1e-6, REALS, "observed: the group's d before this step (checked by group_scalars)",
                   latex="d")
D_NEXT = Hyperparameter("d_next", 1e-6, REALS, "observed: the group's d after this step (checked by "
                        "group_scalars); ε's factor and, with β₁ = 0, the step's", latex="d'")
DECOUPLE = common.flag("decouple", "decay θ by λ·dlr (AdamW style) instead of adding λθ to g", True)
BIAS = common.flag("use_bias_correction", "dlr = d·lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)")
SAFEGUARD = common.flag("safeguard_warmup", "s accumulates (d/d0)·d·g, without lr and bias correction")
LR_ZERO = common.flag("lr_zero", "this group's lr is 0 while another's is not: m, v, s are left alone, θ still "
                      "steps with the global dlr (finding 89)")

m = sp.Symbol("m", real=True)
v = sp.Symbol("v", real=True)
s = sp.Symbol("s", real=True)
bc = sp.Symbol("bc", real=True)
dlr = sp.Symbol("dlr", real=True)
den = sp.Symbol("den", real=True)
eta, b1, b2, b3, eps, lam = LR.symbol, BETA1.symbol, BETA2.symbol, BETA3.symbol, EPS.symbol, WD.symbol
d0, d, dn = D0.symbol, D.symbol, D_NEXT.symbol


def rule(f: dict) -> list:
    out = [] if f["decouple"] else [Assign(g, unless_zero(lam, g + lam * theta, g),
                                           "coupled decay: ``grad.add_(p, alpha=decay)``, before everything")]
    out += [
        Assign(bc, sp.sqrt(1 - b2 ** t) / (1 - b1 ** t) if f["use_bias_correction"] else sp.Integer(1),
               "bias correction (binary64), t = k + 1"),
        Assign(dlr, d * eta * bc, "dlr = d·lr·bc (binary64)"),
    ]
    if not f["lr_zero"]:
        out += [
            Assign(m, b1 * m + (d * (1 - b1)) * g, "``exp_avg.mul_(β₁).add_(grad, alpha=d·(1 − β₁))``"),
            Assign(v, b2 * v + (d * d * (1 - b2)) * g * g, "``exp_avg_sq.mul_(β₂).addcmul_(g, g, value=d·d·(1 − β₂))``"),
            Assign(s, b3 * s + ((d / d0) * (d if f["safeguard_warmup"] else dlr)) * g,
                   "``s.mul_(β₃).add_(g, alpha=(d/d0)·(d or dlr))``"),
        ]
    if f["decouple"]:
        out.append(Assign(theta, unless_zero(lam, theta + (-lam * dlr) * theta, theta),
                          "``p.add_(p, alpha=-decay·dlr)``, the old d's dlr"))
    return out + [
        Assign(den, sp.sqrt(v) + dn * eps, "``exp_avg_sq.sqrt().add_(d·eps)``: the new d"),
        Assign(theta, when(b1 > 0, theta - dlr * m / den, theta - (dlr * dn) * g / den),
               "``addcdiv_(exp_avg, den, value=-dlr)``; β₁ = 0: ``addcdiv_(grad, den, value=-dlr·d)``, the new d"),
    ]


PRODIGY = OptimizerSpec(
    name="prodigy",
    title="Prodigy (Adam with the distance estimate d)",
    hyperparameters=(LR, BETA1, BETA2, BETA3, EPS, WD, D0, D, D_NEXT, DECOUPLE, BIAS, SAFEGUARD, LR_ZERO),
    state=(State("exp_avg", sp.Integer(0), "m (absent when β₁ = 0)", latex="m"),
           State("exp_avg_sq", sp.Integer(0), "v", latex="v"),
           State("s", sp.Integer(0), "s: the EMA of the scaled gradients whose ‖·‖₁ is D", latex="s")),
    rule=rule,
    torch_class="prodigyopt.Prodigy",
    dialect="prodigyopt",
    doc=__doc__,
    paths_doc="One path (prodigyopt has no foreach or fused step).",
    edge_doc="D = 0 (every s exactly 0: zero gradients, or all lrs 0) returns before θ moves, after m, v, s.",
)


def resolve(hyper: dict) -> dict:
    """The spec's hyperparameters with beta3 None (prodigyopt's default) replaced by ``math.sqrt(beta2)``."""
    h = dict(hyper)
    if h.get("beta3", None) is None:
        h["beta3"] = math.sqrt(h.get("beta2", BETA2.default))
    return h


# ---------------------------------------------------------------------------------------- the group scalars

#: d_coef and growth_rate enter the group scalars only, and slice_p which elements they read (s and p0 are kept for
#: every slice_p-th element of the flattened tensor only); prodigyopt checks none of them (finding 90).
GROUP_DEFAULTS = {"d_coef": 1.0, "growth_rate": float("inf"), "slice_p": 1}


def group_scalars(O, h: dict, before: dict, tensors: list, bias_divides: bool = False):
    """The group scalars of one step in the arithmetic ``O`` (``reference.bound.Bound``: exact value and error
    bound), in prodigyopt's order of operations.

    ``h``: resolved hyperparameters (lr the global one, d_coef, growth_rate); ``before``: the group's d, d_max,
    d_numerator, k before the step, and d0 (of the last group); ``tensors``: per tensor of a group with lr > 0,
    ``dot`` (an ``O`` value: dot(g, p0 − θ) as its dtype computes it, converted exactly by ``.item()``) and
    ``l1`` (an ``O`` value: Σ|s| of the new s).  ``O.hyper`` values are binary64 Python floats.
    The stored d_numerator enters as a value of ``O``'s format (a Python float, or pytorch-optimizer's float32
    tensor), so that β₃·N is charged as that format computes it.  ``bias_divides``: pytorch-optimizer's
    d·lr/((1 − β₁ᵗ)/√(1 − β₂ᵗ)) in place of prodigyopt's d·lr·(√(1 − β₂ᵗ)/(1 − β₁ᵗ)).
    Returns N and D (``O`` values); d̂ = d_coef·N/D, and ``next_d`` gives d_max and d from the observed d̂.
    """
    H = O.hyper
    k1 = O.step_counter(before["k"] + 1)
    if not h["use_bias_correction"]:
        dlr_ = O.mul(H(before["d"]), H(h["lr"]))
    else:
        root = O.sqrt(O.sub(H(1.0), O.pow(H(h["beta2"]), k1)))
        first = O.sub(H(1.0), O.pow(H(h["beta1"]), k1))
        dlr_ = (O.div(O.mul(H(before["d"]), H(h["lr"])), O.div(first, root)) if bias_divides else
                O.mul(O.mul(H(before["d"]), H(h["lr"])), O.div(root, first)))
    coef = O.mul(O.div(H(before["d"]), H(before["d0"])), dlr_)
    numerator = O.mul(H(h["beta3"]), O.input(before["d_numerator"]))
    delta, denom = H(0.0), H(0.0)
    for x in tensors:
        delta = O.add(delta, O.mul(coef, x["dot"]))
        denom = O.add(denom, x["l1"])
    return O.add(numerator, delta), denom


def next_d(h: dict, before: dict, d_hat: float) -> tuple:
    """(d_max, d) after the step from the observed d̂: Python's max and min and one binary64 product, exact."""
    d_ = max(before["d"], d_hat) if before["d"] == before["d0"] else before["d"]
    d_max = max(before["d_max"], d_hat)
    return d_max, min(d_max, d_ * h["growth_rate"])


# ------------------------------------------------------------------------------ pytorch-optimizer's dialect

def _rule_pytorch_optimizer(f: dict) -> list:
    """pytorch-optimizer 4.1.0's ``Prodigy.step`` (for-loop path): m is kept for β₁ = 0 too (m = d·g, so the step
    is dlr·d·g/den with the *old* d, the paper's), and the decoupled decay is ``p.mul_(1 − λ·dlr)``.  Coupled decay
    is stated as its docstring means it (λθ added to g before the moments); the code adds it after them, where it
    changes nothing (finding 91)."""
    out = [s_ for s_ in rule({**f, "lr_zero": False}) if s_.target not in (theta, den, bc, dlr)]
    at = 0 if f["decouple"] else 1  # after the coupled decay of g
    out[at:at] = [
        Assign(bc, (1 - b1 ** t) / sp.sqrt(1 - b2 ** t) if f["use_bias_correction"] else sp.Integer(1),
               "``debias(β₁, step) / √debias(β₂, step)`` (binary64, ``math.pow``)"),
        Assign(dlr, d * eta / bc, "``d_lr = d·lr/bias_correction``"),
    ]
    if f["decouple"]:
        out.append(Assign(theta, unless_zero(lam, theta * (1 - lam * dlr), theta), "``p.mul_(1 − λ·dlr)``"))
    return out + [
        Assign(den, sp.sqrt(v) + dn * eps, "``exp_avg_sq.sqrt()``, ``add_(d·eps)``: the new d"),
        Assign(theta, theta - dlr * m / den, "``p.addcdiv_(exp_avg, den, value=-d_lr)`` for every β₁"),
    ]


PRODIGY_PYTORCH_OPTIMIZER = PRODIGY.variant(
    "prodigy@pytorch-optimizer", dialect="pytorch-optimizer", title="Prodigy (pytorch-optimizer 4.1.0)",
    rule=_rule_pytorch_optimizer,
    hyperparameters=tuple(h for h in PRODIGY.hyperparameters if h.name != "lr_zero"),
    torch_class="pytorch_optimizer.Prodigy",
    doc=("pytorch-optimizer 4.1.0's Prodigy: the group scalars d_numerator, d_de_nom and d_hat are float32 tensors "
         "(``torch.tensor([0.0])``), not binary64; the rule keeps m for β₁ = 0 (the old d in the step); the "
         "decoupled decay multiplies by 1 − λ·dlr; no slice_p, no per-group lr (finding 92); eps=None (atan2) "
         "and fixed_decay are not specified."),
)
