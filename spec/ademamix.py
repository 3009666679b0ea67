"""AdEMAMix (Pagliardini, Ablin, Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older"): Adam with a
second, slow first moment.

torch.optim has no AdEMAMix.  This spec follows the paper's Algorithm 1 and the authors' reference code
(apple/ml-ademamix ``pytorch/ademamix.py``, class ``AdEMAMix``), with that code's defaults (lr = 1e-3,
betas = (0.9, 0.999, 0.9999), α = 2, no warm-ups, ε = 1e-8, λ = 0).  Per element, at step t:
the fast moment m₁ ← β₁·m₁ + (1 − β₁)·g (bias-corrected by 1 − β₁ᵗ), the slow moment
m₂ ← β₃(t)·m₂ + (1 − β₃(t))·g (not bias-corrected), ν ← β₂·ν + (1 − β₂)·g² (bias-corrected by 1 − β₂ᵗ), and
θ ← θ − η·((m₁/(1 − β₁ᵗ) + α(t)·m₂)/(√ν/√(1 − β₂ᵗ) + ε) + λ·θ).

The warm-ups are the reference code's schedulers, computed once per step (Python floats there):
α(t) = (t/T_α)·α for t < T_α, else α (``linear_warmup_scheduler`` from 0); β₃(t) = f⁻¹((1 − a)·f(β₁) + a·f(β₃))
with a = t/T_β₃ for t < T_β₃, else β₃ (``linear_hl_warmup_scheduler`` from β₁), where f(β) = ln ½/ln(β + 10⁻⁸) − 1
is the half-life of the EMA of β and f⁻¹(x) = ½^(1/(x + 1)).  The paper writes
β₃(t) = min(exp(ln β₁·ln β₃/((1 − t/T)·ln β₃ + (t/T)·ln β₁)), β₃) and α(t) = min(t·α/T, α): for t < T the
same values but for the code's 10⁻⁸ inside the logarithm (spec/identities.py: ademamix_beta3_schedule_is_papers),
and where the two differ the spec follows the code, which is what runs.  The code's warm-up ``None`` (the default)
is 0 here: its test ``step < warmup`` never holds for warm-up 0, so both give α and β₃ at every step.

Where the paper and the code differ only in evaluation order the spec follows the code: the moments as
``mul_(β).add_(g, alpha=1 − β)`` and ``mul_(β₂).addcmul_(g, g, value=1 − β₂)``, the denominator
``√ν/√(1 − β₂ᵗ) + ε`` (ε after the bias correction, as Algorithm 1 and torch's Adam), the update
``(m₁/bc₁ + α(t)·m₂)/d``, then ``update.add_(p, alpha=λ)`` (not skipped for λ = 0: 0·θ is NaN for an infinite θ)
and ``p.add_(−lr·update)``: decoupled weight decay scaled by lr, as in Algorithm 1's θ − η·(… + λθ).  With
β₁ = 0 the code keeps no m₁ (``exp_avg_fast`` is None) and uses the gradient itself.  Neither the paper nor
the code has ``maximize``; nor has this spec.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import NONNEGATIVE, STEP, UNIT, Assign, Hyperparameter, Interval, OptimizerSpec, State, g, py_float, t, \
    theta, when

LR = common.lr(1e-3)
BETA1 = Hyperparameter("beta1", 0.9, UNIT, "decay of the fast moment m₁ (betas[0]); also the slow moment's "
                       "warm-up start", latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.999, UNIT, "decay of the second moment ν (betas[1])", latex="beta_2")
BETA3 = Hyperparameter("beta3", 0.9999, UNIT, "decay of the slow moment m₂ after its warm-up (betas[2])",
                       latex="beta_3")
ALPHA = Hyperparameter("alpha", 2.0, NONNEGATIVE, "weight α of the slow moment after its warm-up (the reference "
                       "code's default 2; the paper's runs use 5 to 10)", latex="alpha")
WARMUP_FUZZ = Interval(0.0, 3.0, True, True)
WARMUP_WHY = ("cases have at most 6 steps: T ≤ 3 puts steps inside the warm-up and after it in one case, and keeps a "
              "branch case (three groups per root T = t of each warm-up, conformance/branches.py) small enough to draw")
T_BETA3 = Hyperparameter("beta3_warmup", 0.0, NONNEGATIVE, "T_β₃: steps over which β₃(t) rises from β₁ to β₃ in "
                         "half-life; 0 means the code's None, no warm-up (the code does not validate it; the spec "
                         "asks T ≥ 0)", latex="T_beta3", zero_means_none=True,
                         fuzz=WARMUP_FUZZ, fuzz_why=WARMUP_WHY)
T_ALPHA = Hyperparameter("alpha_warmup", 0.0, NONNEGATIVE, "T_α: steps over which α(t) rises linearly from 0 to α; "
                         "0 means the code's None, no warm-up", latex="T_alpha", zero_means_none=True,
                         fuzz=WARMUP_FUZZ, fuzz_why=WARMUP_WHY)
EPS = common.eps(1e-8, "added to the bias-corrected root")
WD = common.weight_decay(0.0, "decoupled decay: λ·θ added to the update, which lr then scales (the reference code "
                              "checks λ ≥ 0)")

m1 = sp.Symbol("m_1", real=True)
m2 = sp.Symbol("m_2", real=True)
nu = sp.Symbol("nu", real=True)
bc1 = sp.Symbol("bc_1", real=True)
bc2 = sp.Symbol("bc_2", real=True)
alpha_t = sp.Symbol("alpha_t", real=True)
beta3_t = sp.Symbol("beta_3t", real=True)
denom = sp.Symbol("d", real=True)
u = sp.Symbol("u", real=True)
eta, beta1, beta2, beta3, alpha, T_b3, T_a, eps, lam = (h.symbol for h in (
    LR, BETA1, BETA2, BETA3, ALPHA, T_BETA3, T_ALPHA, EPS, WD))

HALF_LIFE_EPS = py_float(1e-8)  # the literal of the reference code's f(beta, eps=1e-8)
LN_HALF = sp.log(sp.Rational(1, 2))  # math.log(0.5)


def half_life(beta):
    """The reference code's f(β) = ln ½/ln(β + 10⁻⁸) − 1: the half-life, in steps, of an EMA of decay β."""
    return LN_HALF / sp.log(beta + HALF_LIFE_EPS) - 1


def decay_of_half_life(x):
    """The reference code's f⁻¹(x) = ½^(1/(x + 1)): the decay whose EMA has half-life x."""
    return sp.Rational(1, 2) ** (1 / (x + 1))


def ramp(T):
    """a = t/T, the warm-up's progress (``step / float(warmup)``), read only where t < T: for T = 0 (the code's
    None) the branch that divides by it is not taken."""
    return t / T


def schedules() -> list:
    """The per-step scalars: both bias corrections and both warm-ups, as the reference code computes them."""
    a_b3 = ramp(T_b3)
    return [
        Assign(bc1, 1 - beta1 ** t, "bias correction of m₁"),
        Assign(bc2, 1 - beta2 ** t, "bias correction of ν"),
        Assign(alpha_t, when(t < T_a, ramp(T_a) * alpha, alpha),
               "α(t): linear_warmup_scheduler from 0, (1 − a)·0 + a·α with a = t/T_α"),
        Assign(beta3_t, when(t < T_b3, decay_of_half_life((1 - a_b3) * half_life(beta1) + a_b3 * half_life(beta3)),
                             beta3),
               "β₃(t): linear_hl_warmup_scheduler from β₁, linear in half-life"),
    ]


def rule(f: dict) -> list:
    return [
        *schedules(),
        Assign(m1, when(sp.Ne(beta1, 0), beta1 * m1 + (1 - beta1) * g, g),
               "fast moment: m₁·β₁ + g·(1 − β₁); for β₁ = 0 the code uses g itself (no m₁ kept)"),
        Assign(m2, beta3_t * m2 + (1 - beta3_t) * g, "slow moment: m₂·β₃(t) + g·(1 − β₃(t)), not bias-corrected"),
        Assign(nu, beta2 * nu + (1 - beta2) * g * g, "second moment: ν·β₂ + g·g·(1 − β₂)"),
        Assign(denom, sp.sqrt(nu) / sp.sqrt(bc2) + eps, "ε after bias correction: √ν/√bc₂ + ε"),
        Assign(u, (m1 / bc1 + alpha_t * m2) / denom, "(m₁/bc₁ + α(t)·m₂)/d"),
        Assign(u, u + lam * theta, "update.add_(p, alpha=λ): not skipped for λ = 0"),
        Assign(theta, theta - eta * u, "p.add_(−lr·update)"),
    ]


ADEMAMIX = OptimizerSpec(
    name="ademamix",
    title="AdEMAMix",
    hyperparameters=(LR, BETA1, BETA2, BETA3, ALPHA, T_BETA3, T_ALPHA, EPS, WD),
    state=(STEP,
           State("exp_avg_fast", sp.Integer(0), "fast first moment m₁ (the code keeps none for β₁ = 0)",
                 latex="m_1"),
           State("exp_avg_slow", sp.Integer(0), "slow first moment m₂", latex="m_2"),
           State("exp_avg_sq", sp.Integer(0), "second moment ν", latex="nu")),
    rule=rule,
    torch_class="",
    doc=__doc__,
    paths_doc=("No torch.optim class: the torch backend runs AdEMAMix only as a class given by "
               "`--optimizer ademamix=module:Class` (path `custom`).  Third-party implementations audited against "
               "this spec or its dialects: docs/measured/third-party.md (pytorch-optimizer, and Optax through `--backend=optax`)."),
    edge_doc=(
        "The step counter is per parameter (the code's state['step']), as torch's.  β₁ = 0: m₁ is g (the code "
        "skips the EMA, so an infinite g does not leave an infinite m₁ behind to meet 0·inf later), and "
        "bc₁ = 1.  λ = 0 still adds 0·θ, so an infinite θ becomes NaN (torch's add_ with alpha = 0 multiplies).  "
        "The warm-ups are read only while t < T; a warm-up T ≤ 1 is no warm-up (t ≥ 1).  f(β) adds 10⁻⁸ inside "
        "the logarithm, so for β ≥ 1 − 10⁻⁸ the half-life is negative and β₃(t) can exceed 1 during the warm-up "
        "(the code computes exactly that; where ln(β + 10⁻⁸) rounds to 0 it raises ZeroDivisionError).  The slow "
        "moment is never bias-corrected, so early steps weigh α·m₂ ≈ α·(1 − β₃)·g: the warm-ups exist for that."),
)
