"""Rprop (torch.optim.Rprop): resilient backpropagation, a step size per element steered by sign changes.

Each element keeps its own step size Δ and its previous gradient g_prev.  The
sign of the product g·g_prev (as torch computes it: ``grad.mul(prev).sign()``)
picks a factor: η₊ when positive (the same direction again: grow Δ), η₋ when
negative (the direction flipped: shrink Δ, and forget this gradient, so that
the next step sees no sign change), 1 when zero.  Δ ← clamp(Δ·factor, Δ_min,
Δ_max), and θ moves by Δ against the sign of the (possibly zeroed) gradient.
The learning rate enters only as Δ's initial value: torch fills ``step_size``
with the group's lr when it creates the state (at the parameter's first step
with a gradient); changing the group's lr afterwards changes nothing.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import NONNEGATIVE, REALS, STEP, Assign, Hyperparameter, Interval, OptimizerSpec, State, g, theta, when

LR = Hyperparameter("lr", 1e-2, NONNEGATIVE,
                    "initial step size Δ: read once, when a parameter's state is created; "
                    "a later change of the group's lr has no effect", latex="eta")
ETAMINUS = Hyperparameter("etaminus", 0.5, Interval(0.0, 1.0, False, False),
                          "factor that shrinks Δ after a sign change (torch: etas[0])", latex="eta_-")
ETAPLUS = Hyperparameter("etaplus", 1.2, Interval(1.0, None, False, False),
                         "factor that grows Δ while the sign holds (torch: etas[1])", latex="eta_+",
                         fuzz=Interval(1.0, 10.0, False, True), fuzz_why="η₊ > 10 only reaches Δ_max sooner")
STEP_MIN = Hyperparameter("step_size_min", 1e-6, REALS,
                          "lower clamp of Δ (torch: step_sizes[0]; not validated)", latex="Delta_min",
                          fuzz=Interval(0.0, 1.0, True, True),
                          fuzz_why="torch accepts any value; a negative or large bound has no use")
STEP_MAX = Hyperparameter("step_size_max", 50.0, REALS,
                          "upper clamp of Δ, applied after the lower one, so it wins when Δ_min > Δ_max "
                          "(torch: step_sizes[1]; not validated)", latex="Delta_max",
                          fuzz=Interval(0.0, 100.0, True, True),
                          fuzz_why="torch accepts any value; a negative bound has no use")

prev = sp.Symbol("g_prev", real=True)
delta = sp.Symbol("Delta", real=True)
product = sp.Symbol("p", real=True)
kept = sp.Symbol("d", real=True)
eta_minus, eta_plus, delta_min, delta_max = ETAMINUS.symbol, ETAPLUS.symbol, STEP_MIN.symbol, STEP_MAX.symbol


def by_sign(x, positive, negative, zero):
    """torch's ``x.sign()`` used as a selector: ``positive`` if x > 0, ``negative`` if x < 0, ``zero`` otherwise.

    Otherwise is x = 0 (either zero) and NaN: ATen's sign is ``c10::signum``, (0 < x) − (x < 0), on the CPU and in
    CUDA's ``sign_kernel_cuda`` alike, so ``torch.sign(nan)`` is 0, not NaN (measured on torch 2.13 CPU in every
    float dtype; pytorch/pytorch#41245).  IEEE and NumPy would give NaN; the spec follows torch's code.
    """
    return sp.Piecewise((positive, x > 0), (negative, x < 0), (zero, True))


def rule(f: dict) -> list:
    # torch multiplies Δ by a factor tensor (η₊, η₋ or 1, rounded to the dtype) and θ by sign(g)·Δ; each piece
    # here is that product for one sign (Δ·1 = Δ and θ − 0·Δ = θ exactly), so the pieces are tensors.
    return [
        *common.maximize(f),
        Assign(product, g * prev, "torch: grad.mul(prev), rounded to the parameter's dtype; its sign decides"),
        Assign(delta, sp.Min(sp.Max(by_sign(product, delta * eta_plus, delta * eta_minus, delta), delta_min),
                             delta_max),
               "Δ times η₊ (same sign), η₋ (sign flipped) or 1 (a zero or NaN product), then clamped: torch's "
               "step_size.mul_(factor).clamp_(Δ_min, Δ_max), the upper bound last"),
        Assign(kept, when(product < 0, 0, g), "the gradient, forgotten (0) after a sign change"),
        Assign(theta, by_sign(kept, theta - delta, theta + delta, theta),
               "θ − sign(d)·Δ: torch's param.addcmul_(grad.sign(), Δ, value=-1); sign(0) = sign(NaN) = 0"),
        Assign(prev, kept, "for the next step"),
    ]


RPROP = OptimizerSpec(
    name="rprop",
    title="Rprop",
    hyperparameters=(LR, ETAMINUS, ETAPLUS, STEP_MIN, STEP_MAX, common.MAXIMIZE),
    state=(STEP,
           State("prev", sp.Integer(0), "the previous step's gradient, zeroed after a sign change",
                 latex="g_prev"),
           State("step_size", LR.symbol, "per-element step size Δ; torch fills it with the group's lr "
                 "when it creates the state (the first step with a gradient)", latex="Delta")),
    rule=rule,
    torch_class="torch.optim.Rprop",
    doc=__doc__,
    paths_doc=("foreach: the same operations over lists of tensors (maximize negates the product g·g_prev "
               "instead of g: the same value); capturable (CUDA): torch.where instead of masked assignment, "
               "the same values. torch 2.13 has no fused Rprop."),
    edge_doc=(
        "The sign test is on the product g·g_prev rounded to the parameter's dtype.  Where the exact "
        "product is nonzero but its rounding underflows to ±0 (float16 gradients of 1e-4 already do), a "
        "faithful implementation takes the zero branch (factor 1, g kept); the tolerance model treats that "
        "comparison as ambiguous and accepts either branch, and since the branch then decides g_prev, every "
        "later step of that element is accepted within both branches' hull (docs/tolerance.md).  "
        "NaN: torch.sign(NaN) is 0 (ATen's c10::signum, (0 < x) − (x < 0), on the CPU and in CUDA), so a NaN "
        "product g·g_prev (an infinite g meeting g_prev = 0, as at every first step, or g = 0 after an infinite "
        "g_prev, or any NaN g) counts as 'no sign change': the factor is 1, Δ stays finite, g is kept, and a NaN "
        "kept g leaves θ alone while an infinite one moves it by Δ.  The kept g (NaN or ±inf) becomes g_prev.  "
        "An infinite g with a nonzero g_prev is an ordinary sign.  (Before this was read in ATen's code the spec took "
        "sign(NaN) as NaN, IEEE's and NumPy's answer, and torch's CPU behaviour was a known deviation.)  "
        "Δ_min > Δ_max is accepted and gives Δ = Δ_max.  "
        "torch's docstring clamps Δ·η₊ only from above, Δ·η₋ only from below and leaves Δ alone for a zero "
        "product; the code clamps every branch on both sides, so a zero product (every first step) still "
        "clamps lr into [Δ_min, Δ_max] (lr = 100 starts at Δ = 50 by default).  "
        "The hyperparameters the update reads are η₋, η₊, Δ_min and Δ_max at each step; lr only at "
        "state creation.  torch recovers the 'sign flipped' branch by comparing the stored factor with "
        "η₋ (grad[sign.eq(etaminus)] = 0), which goes wrong where η₋ rounds in the dtype to 0 (then "
        "taken for a zero sign) or to 1 (then every zero sign looks flipped): a known deviation "
        "(conformance/known_deviations.py)."),
)
