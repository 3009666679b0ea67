"""Adan (Xie et al. 2022/2024, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models").

torch.optim has no Adan.  This spec follows the authors' reference code (sail-sg/Adan ``adan.py``,
``_single_tensor_adan``), with its defaults (lr = 1e-3, betas = (0.98, 0.92, 0.99), eps = 1e-8,
weight_decay = 0, no_prox = False), statement for statement.  Per element, with g_prev the gradient of this
parameter's previous step: m ← β₁·m + (1 − β₁)·g (exp_avg); v ← β₂·v + (1 − β₂)·(g − g_prev) (exp_avg_diff);
n ← β₃·n + (1 − β₃)·(g + β₂·(g − g_prev))² (exp_avg_sq); d = √n/√(1 − β₃ᵗ) + ε; θ ← θ − (η/(1 − β₁ᵗ))·m/d, then
θ ← θ − (η·β₂/(1 − β₂ᵗ))·v/d, then θ ← θ/(1 + η·λ) (the proximal form, no_prox = False); with no_prox = True,
θ ← θ·(1 − η·λ) first and no division after.

**β convention.**  The paper's Algorithm 1 weights the *new* term by β: m_k = (1 − β₁)·m_{k−1} + β₁·g_k,
v_k = (1 − β₂)·v_{k−1} + β₂·(g_k − g_{k−1}), n_k = (1 − β₃)·n_{k−1} + β₃·[g_k + (1 − β₂)(g_k − g_{k−1})]²,
θ_{k+1} = (1 + λη)⁻¹·[θ_k − η_k∘(m_k + (1 − β₂)·v_k)], with β = (0.02, 0.08, 0.01).  The reference code (and
this spec) writes torch's convention, β the weight of the *old* value: β_code = 1 − β_paper, hence (0.98, 0.92,
0.99).  Under that mapping the moments are the same exact values.  Where they differ: the code bias-corrects
each moment (1 − βᵗ), which Algorithm 1 does not (spec/identities.py:
adan_algorithm_1_is_code_without_bias_correction); Algorithm 1 starts its moments from a gradient g₀ at θ₀
(m₀ = g₀, n₀ = g₀², v₀ = 0, v₁ = g₁ − g₀), the code from zero moments and g_prev = g at the first step;
Algorithm 1's restart condition is not in the code; ``no_prox`` (decay before the step, θ·(1 − ηλ)) is the
code's alternative to the paper's proximal form.  ``max_grad_norm`` (a global clip over all parameters) is
not elementwise and not part of this spec (the harness leaves it at its default 0: no clip).

**Step counter and first step.**  t counts this parameter's steps with a gradient (torch.optim's convention):
t = 1 at its first.  At the first step g_prev = g (the code: ``state['neg_pre_grad'] = -grad``), so
g − g_prev = g + (−g): 0 for a finite g, NaN for an infinite one, and v stays 0.  The code keeps −g_prev
(``neg_pre_grad``) and sets it to −g at the end of each step.  The reference code counts t per parameter
*group* (``group['step'] += 1`` at every ``step()``, "assume same step across group now to simplify things;
per parameter step can be easily support[ed]"): the same t while every parameter has a gradient at every step;
a parameter whose gradients skip steps is bias-corrected there with the group's count.  The spec follows the
per-parameter count, which makes each 1 − βᵗ the weight its moment has accumulated.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, UNIT, Assign, Hyperparameter, OptimizerSpec, State, g, t, theta, unless_zero, when

LR = common.lr(1e-3)
BETA1 = Hyperparameter("beta1", 0.98, UNIT, "decay of the gradient's average m (betas[0]; the paper's 1 − β₁)",
                       latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.92, UNIT, "decay of the gradient difference's average v, and the weight of "
                       "g − g_prev in n's argument and of v in the step (betas[1]; the paper's 1 − β₂)",
                       latex="beta_2")
BETA3 = Hyperparameter("beta3", 0.99, UNIT, "decay of n, the average of (g + β₂·(g − g_prev))² (betas[2]; the "
                       "paper's 1 − β₃)", latex="beta_3")
EPS = common.eps(1e-8, "added to the bias-corrected root of n")
WD = common.weight_decay(0.0, "weight decay λ: θ/(1 + η·λ) after the step, or θ·(1 − η·λ) before it (no_prox); "
                         "the reference code does not validate it, the spec's λ ≥ 0")
NO_PROX = common.flag("no_prox", "decay θ·(1 − η·λ) before the step instead of the proximal θ/(1 + η·λ) after it")

m = sp.Symbol("m", real=True)
v = sp.Symbol("v", real=True)
n = sp.Symbol("n", real=True)
neg_prev = sp.Symbol("p", real=True)  # −g_prev, as the code keeps it
diff = sp.Symbol("delta", real=True)
u = sp.Symbol("u", real=True)
bc1 = sp.Symbol("bc_1", real=True)
bc2 = sp.Symbol("bc_2", real=True)
bc3 = sp.Symbol("bc_3", real=True)
step_size = sp.Symbol("s", real=True)
step_size_diff = sp.Symbol("s_d", real=True)
denom = sp.Symbol("d", real=True)
eta, beta1, beta2, beta3, eps, lam = LR.symbol, BETA1.symbol, BETA2.symbol, BETA3.symbol, EPS.symbol, WD.symbol


def steps(f: dict) -> list:
    """The two addcdiv steps, with the decay on the side ``no_prox`` puts it."""
    descend = [
        Assign(theta, theta - step_size * m / denom, "param.addcdiv_(exp_avg, denom, value=−s)"),
        Assign(theta, theta - step_size_diff * v / denom, "param.addcdiv_(exp_avg_diff, denom, value=−s_d)"),
    ]
    if f["no_prox"]:
        return [Assign(theta, unless_zero(lam, theta * (1 - eta * lam), theta),
                       "no_prox: param.mul_(1 − lr·λ) first (by 1 for λ = 0: exact, so skipping it changes "
                       "nothing)"), *descend]
    return [*descend, Assign(theta, unless_zero(lam, theta / (1 + eta * lam), theta),
                             "proximal decay: param.div_(1 + lr·λ) after the step (by 1 for λ = 0: exact)")]


def rule(f: dict) -> list:
    return [
        Assign(neg_prev, when(sp.Eq(t, 1), -g, neg_prev),
               "first step: g_prev = g (state['neg_pre_grad'] = −grad), so g − g_prev is 0 (NaN for g = ±inf)"),
        Assign(diff, neg_prev + g, "g − g_prev: neg_grad_or_diff.add_(grad)"),
        Assign(m, beta1 * m + (1 - beta1) * g, "exp_avg.mul_(β₁).add_(grad, alpha=1 − β₁)"),
        Assign(v, beta2 * v + (1 - beta2) * diff, "exp_avg_diff.mul_(β₂).add_(diff, alpha=1 − β₂)"),
        Assign(u, beta2 * diff + g, "g + β₂·(g − g_prev): neg_grad_or_diff.mul_(β₂).add_(grad)"),
        Assign(n, beta3 * n + (1 - beta3) * u * u, "exp_avg_sq.mul_(β₃).addcmul_(u, u, value=1 − β₃)"),
        Assign(bc1, 1 - beta1 ** t, "bias correction of m (a Python float)"),
        Assign(bc2, 1 - beta2 ** t, "bias correction of v"),
        Assign(bc3, 1 - beta3 ** t, "bias correction of n"),
        Assign(denom, sp.sqrt(n) / sp.sqrt(bc3) + eps, "(exp_avg_sq.sqrt() / math.sqrt(bc₃)).add_(eps)"),
        Assign(step_size, eta / bc1, "step_size = lr / bc₁"),
        Assign(step_size_diff, eta * beta2 / bc2, "step_size_diff = lr·β₂ / bc₂"),
        *steps(f),
        Assign(neg_prev, -g, "keep −g for the next step: neg_grad_or_diff.zero_().add_(grad, alpha=−1)"),
    ]


ADAN = OptimizerSpec(
    name="adan",
    title="Adan (Adaptive Nesterov momentum)",
    hyperparameters=(LR, BETA1, BETA2, BETA3, EPS, WD, NO_PROX),
    state=(STEP,
           State("exp_avg", sp.Integer(0), "m: average of the gradient", latex="m"),
           State("exp_avg_diff", sp.Integer(0), "v: average of the gradient difference g − g_prev", latex="v"),
           State("exp_avg_sq", sp.Integer(0), "n: average of (g + β₂·(g − g_prev))²", latex="n"),
           State("neg_pre_grad", sp.Integer(0), "−g_prev: minus the previous step's gradient (set to −g at the "
                 "first step before it is read)", latex="p")),
    rule=rule,
    torch_class="",
    doc=__doc__,
    paths_doc=("No torch.optim class: the torch backend runs Adan only as a class given by "
               "`--optimizer adan=module:Class` (path `custom`).  The reference code's foreach path computes the "
               "same statements over lists.  Third-party implementations audited against this spec and its "
               "dialects: docs/measured/third-party.md (pytorch-optimizer, adan-pytorch, and Optax through `--backend=optax`)."),
    edge_doc=(
        "First step: g_prev = g, so g − g_prev = g + (−g) is 0 for a finite g and NaN for g = ±inf; m/(1 − β₁) "
        "= g exactly and the step is η·g/(|g| + ε) (v = 0).  A NaN or infinite gradient at any step makes "
        "g − g_prev NaN at that step and the next.  β = 0 is accepted (the reference code checks 0 ≤ β < 1): "
        "with β₂ = 0, v's step weight η·β₂/(1 − β₂ᵗ) is 0 and n's argument is g.  ε = 0 with n = 0 (a zero "
        "gradient from the start) divides 0 by 0: NaN, as the code computes it.  Not modelled: max_grad_norm "
        "(a clip by the global norm over every parameter; off by default) and the per-group step counter of "
        "the reference code (see the docstring)."),
)
