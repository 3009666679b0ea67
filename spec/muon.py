"""Muon as torch.optim.Muon (torch 2.13's ``_muon.py``, its one for-loop path) computes it, for 2-D parameters.

**What is element-wise and what is not.**  Per 2-D tensor of shape (A, B), at each step with a gradient:

    B_t = lerp(B_{t−1}, g, 1 − μ)                    ``buf.lerp_(grad, 1 - momentum)``: an EMA, μB + (1 − μ)g
    U   = lerp(g, B_t, μ) if nesterov else B_t       ``grad.lerp(buf, momentum)``
    O   = NS(U)                                      ``_zeropower_via_newtonschulz``: in bfloat16, the whole matrix
    η'  = η·√max(1, A/B)       (adjust_lr_fn None or "original")
        = 0.2·√max(A, B)·η     ("match_rms_adamw"; binary64 scalars, Python's ``math.sqrt`` and ``max``)
    θ   = θ·(1 − η·λ)                               ``param.mul_(1 - lr * weight_decay)``: the lr *before* adjusting
    θ   = θ + (−η')·O                               ``param.add_(update, alpha=-adjusted_lr)``

The first, second, fourth and last lines are element-wise and are this spec's rule.  O, the Newton–Schulz
orthogonalisation of the whole matrix U, is not: five quintic iterations in bfloat16 amplify the rounding of
every matrix product by orders of magnitude, by design, so no exact-arithmetic value of O is what any bfloat16
implementation computes, and O is no state torch keeps.  The spec therefore takes O as an **observed input of
the step** (the state variable ``ortho``, which the rule reads and leaves alone): the value the implementation
applied at this step, and ``update`` is the U it fed to NS.  Both are observed from outside the optimizer by
wrapping torch's module-level ``_zeropower_via_newtonschulz`` (the torch backend; ``State.observed``: the harness
takes each step's O from the backend's output of that step and never compares it).  "Conforms" for Muon
means: B_t, U and θ agree element by element with this rule, within the derived bound of the tolerance model,
given the O the implementation applied; and O itself is the bfloat16 Newton–Schulz image of U, checked by
properties, not element by element (``conformance/newton_schulz.py``, run by the harness's property test and
tests/test_muon.py: bit-for-bit agreement with a re-execution of the same bfloat16 operation sequence, each
iterate's singular values within ``reference.newton_schulz``'s derived enclosure of the previous iterate's,
invariances; docs/measured/muon.md).

**Docstring versus code.**  torch's docstring writes B_t = μB_{t−1} + g_t and the Nesterov input g_t + μB_t; the
code computes the EMA μB + (1 − μ)g and the lerp (1 − μ)g + μB_t, a factor 1 − μ (0.05 with the defaults)
smaller, which the orthogonalisation's normalisation (U/‖U‖_F) then removes but ε and the decay do not.  It
calls weight_decay an "L2 penalty"; the code decays θ decoupled, by the unadjusted lr.  The spec follows the code.

**NS.**  (``_zeropower_via_newtonschulz``; a, b, c = ns_coefficients, k = ns_steps.)  X = bfloat16(U), transposed
when A > B; X ← X/max(‖X‖_F, ε) (the norm of the bfloat16 matrix, rounded to bfloat16); k times:
G = X·Xᵀ, H = b·G + c·G·G, X = a·X + H·X (``addmm``, bfloat16); transposed back.  In exact arithmetic each
singular value σ of the normalised input becomes p^k(σ), p(σ) = aσ + bσ³ + cσ⁵, with the same singular vectors.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import (NONNEGATIVE, REALS, Assign, Hyperparameter, Interval, OptimizerSpec, State, g, py_float,
                   theta, when)
from .reductions import Length

LR = common.lr(1e-3)
WD = common.weight_decay(0.1, "decoupled decay: θ·(1 − η·λ) with the lr before the shape adjustment (torch's "
                              "docstring: \"L2 penalty\")")
MOMENTUM = Hyperparameter("momentum", 0.95, NONNEGATIVE, "μ: the buffer's EMA weight; torch accepts any μ ≥ 0 "
                          "(μ > 1 too)", latex="mu", fuzz=Interval(0.0, 1.0, True, True),
                          fuzz_why="past 1 the EMA extrapolates; torch accepts it, the tests draw [0, 1]")
NESTEROV = common.flag("nesterov", "feed NS the lerp of g toward the new buffer instead of the buffer", True)
MATCH_RMS = common.flag("match_rms_adamw", "adjust_lr_fn=\"match_rms_adamw\": η' = 0.2·√max(A, B)·η; False is "
                        "None or \"original\": η' = η·√max(1, A/B)")
NS_A = Hyperparameter("ns_a", 3.4445, REALS, "a of ns_coefficients (NS only)", latex="a")
NS_B = Hyperparameter("ns_b", -4.7750, REALS, "b of ns_coefficients (NS only)", latex="b")
NS_C = Hyperparameter("ns_c", 2.0315, REALS, "c of ns_coefficients (NS only)", latex="c")
EPS = Hyperparameter("eps", 1e-7, REALS, "floors ‖bfloat16(U)‖_F in NS (``clamp(min=eps)``; any float: torch "
                     "checks none)", latex="epsilon")
NS_STEPS = Hyperparameter("ns_steps", 5, Interval(0.0, 100.0, True, False), "k: NS iterations; torch refuses "
                          "k ≥ 100, but only at step() (finding 63)", latex="k", integer=True,
                          fuzz=Interval(0.0, 12.0, True, True),
                          fuzz_why="each iteration is three bfloat16 matrix products, checked by properties at "
                                   "every iterate; 0–12 covers none, the default 5 and past it (CI's time)")

buf = sp.Symbol("B", real=True)
upd = sp.Symbol("U", real=True)
ortho = sp.Symbol("O", real=True)
ratio = sp.Symbol("r", real=True)
lr_adj = sp.Symbol(r"\eta'", real=True)
eta, lam, mu = LR.symbol, WD.symbol, MOMENTUM.symbol


def adjusted_ratio(match_rms_adamw: bool):
    """torch's ``_adjust_lr`` ratio for a parameter of shape (A, B), in the order the code computes it."""
    A, B = Length(theta, -2), Length(theta, -1)
    if match_rms_adamw:
        return py_float(0.2) * sp.sqrt(when(B > A, B, A))  # Python's max(A, B): A unless B > A
    return sp.sqrt(when(A / B > 1, A / B, 1))  # max(1, A / B): 1 unless A / B > 1


def rule(f: dict) -> list:
    return [
        Assign(buf, common.lerp(buf, g, 1 - mu), "``buf.lerp_(grad, 1 - momentum)``: μB + (1 − μ)g as a lerp"),
        Assign(upd, common.lerp(g, buf, mu) if f["nesterov"] else buf,
               "NS's input: ``grad.lerp(buf, momentum)`` with nesterov, else the buffer"),
        Assign(ratio, adjusted_ratio(f["match_rms_adamw"]), "``_adjust_lr``'s ratio (binary64)"),
        Assign(lr_adj, eta * ratio, "η' = η·ratio (binary64)"),
        Assign(theta, theta * (1 - eta * lam), "``param.mul_(1 - lr * weight_decay)``, unconditionally"),
        Assign(theta, theta + (-lr_adj) * ortho, "``param.add_(update, alpha=-adjusted_lr)``, O = NS(U) observed"),
    ]


MUON = OptimizerSpec(
    name="muon",
    title="Muon (momentum orthogonalised by Newton–Schulz)",
    hyperparameters=(LR, WD, MOMENTUM, NESTEROV, MATCH_RMS, NS_A, NS_B, NS_C, EPS, NS_STEPS),
    state=(State("momentum_buffer", sp.Integer(0), "B: the EMA of the gradients", latex="B"),
           State("update", sp.Integer(0), "U: NS's input at this step (not torch state: observed)", latex="U"),
           State("ortho", sp.Integer(0), "O = NS(U) that this step applied (not torch state: observed, an input "
                 "of the step the rule reads and leaves alone)", latex="O", observed=True)),
    rule=rule,
    torch_class="torch.optim.Muon",
    doc=__doc__,
    counts_steps=False,
    ndims=(2,),
    paths_doc=("One path: torch's `_single_tensor_muon`; `muon(..., foreach=True)` raises RuntimeError "
               "(\"Foreach is not supported for Muon yet\") and the class has no foreach, fused or capturable "
               "argument."),
    edge_doc=("2-D parameters only: the constructor refuses others (ValueError), but a group added later with "
              "`add_param_group` is not checked until step(), which raises from inside NS."),
)
