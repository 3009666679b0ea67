"""Schedule-Free AdamW (Defazio et al. 2024, "The Road Less Scheduled"), as schedulefree 1.4.1 computes it.

torch.optim has no Schedule-Free optimizer.  This spec follows the authors'
library, facebookresearch/schedule_free, version 1.4.1: the explicit form of
``AdamWScheduleFreeReference`` (``adamw_schedulefree_reference.py``), which
keeps three sequences per element: z (the base AdamW-like iterate), x (the
weighted average of z, the point to evaluate) and y (the point where the
gradient is taken, and what the parameter holds in train mode):

    y = (1 − β₁)·z + β₁·x,  z ← z − γ_t·g/(√(v/bc₂) + ε),  x ← (1 − c)·x + c·z.

The parameter θ is y: in train mode both of the library's classes keep y in
the parameter.  Per step of a parameter group (k the group's step count before
the step, t = k + 1):

* γ_t = lr·t/W while k < W (linear warm-up over W = ``warmup_steps``), else lr;
* bc₂ = 1 − β₂ᵗ inside the root: d = √(v/bc₂) + ε (ε outside the root, after
  bias correction).  Earlier releases folded √bc₂ into the learning rate
  instead, γ_t = lr·schedule·√bc₂ with d = √v + ε, and that γ_t also set
  lr_max and so the weights c (facebookresearch/schedule_free#38, July 2024,
  lists the forms); 1.4.1 computes neither way, and this spec is 1.4.1's;
* lr_max = max(γ_t, lr_max), starting at −1; weight = tʳ·lr_max²;
  weight_sum ← weight_sum + weight; c = weight/weight_sum (0 when
  weight_sum = 0, the library's ZeroDivisionError);
* weight decay λ at y: z ← z − γ_t·λ·y, before the gradient step (the
  reference code's ``z.sub_(y, alpha=lr*decay)``; ``decay_at_z`` = False);
* v ← β₂·v + (1 − β₂)·g², z ← z − γ_t·(g/d), x ← x·(1 − c) + c·z,
  y ← β₁·x + (1 − β₁)·z.

The library keeps k, lr_max and weight_sum once per parameter group and
advances them at every ``step()``, whether or not a parameter has a gradient.
A spec here is per element, so the spec keeps them as state of each
parameter (``step``, ``lr_max``, ``weight_sum``): the two agree while every
parameter of a group has a gradient at every step, which is what the harness
draws for this spec (``OptimizerSpec.group_steps``); a parameter whose gradient
is None at some step while others step is not described.  The weighting power
(``weight_lr_power``) is the library's default 2, a constant here: the tolerance
model has no vectorised power of a state value, so other powers are not checked.
z and x start as copies of the parameter at its first step (the rule's first
statements, at t = 1).

Train/eval switching is an operation of its own, not part of a step.
``eval()`` puts x into the parameter, ``train()`` puts y back.  The reference
class copies its stored x and y, so a round trip restores y bit for bit.  The
efficient class ``AdamWScheduleFree`` stores no x: ``eval()`` computes
x = lerp(y, z, 1 − 1/β₁) and ``train()`` computes y = lerp(x, z, 1 − β₁), each
rounded, so a round trip y → x → y is not exact in floating point, and
β₁ = 0 makes eval() divide by zero.  The harness steps in train mode only:
the switch is not checked (docs/optimizers/schedulefree_adamw.md).
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import REALS, STEP, UNIT, Assign, Hyperparameter, Interval, NONNEGATIVE, OptimizerSpec, State, g, t, \
    theta, unless_zero, when

LR = common.lr(0.0025)
BETA1 = Hyperparameter("beta1", 0.9, UNIT, "weight of x in y = (1 − β₁)·z + β₁·x (betas[0]; the library checks "
                       "nothing)", latex="beta_1")
BETA2 = Hyperparameter("beta2", 0.999, UNIT, "decay of the second moment v (betas[1])", latex="beta_2")
EPS = common.eps(1e-8, "added to the bias-corrected root: √(v/bc₂) + ε")
WD = common.weight_decay(0.0, "decay λ evaluated at y and applied to z: z ← z − γ_t·λ·y")
WARMUP = Hyperparameter("warmup_steps", 0, NONNEGATIVE, "linear warm-up: γ_t = lr·t/W while the group's step "
                        "count k < W; a whole number (the library's documented int: a W in (0, 1) makes lr·t/W "
                        "overflow, and the library raises)", latex="W", integer=True,
                        fuzz=Interval(0.0, 8.0, True, True),
                        fuzz_why="a case has at most 6 steps: W up to 8 covers warm-up ending inside and after it")
R = Hyperparameter("r", 0.0, REALS, "polynomial weighting of the average: weight = tʳ·lr_max²", latex="r",
                   fuzz=Interval(0.0, 2.0, True, True),
                   fuzz_why="the library accepts any r; r < 0 favours early iterates and large r only sharpens "
                            "the weights")

#: the library's default ``weight_lr_power``, fixed (module docstring)
WEIGHT_LR_POWER = 2

z = sp.Symbol("z", real=True)
x = sp.Symbol("x", real=True)
v = sp.Symbol("v", real=True)
wsum = sp.Symbol("W_sum", real=True)
lrmax = sp.Symbol("gamma_max", real=True)
sched = sp.Symbol("s", real=True)
lr_t = sp.Symbol("gamma_t", real=True)
weight = sp.Symbol("w", real=True)
ck = sp.Symbol("c", real=True)
dz = sp.Symbol("delta", real=True)
bc2 = sp.Symbol("bc_2", real=True)
vhat = sp.Symbol("vhat", real=True)
denom = sp.Symbol("d", real=True)
gn = sp.Symbol("u", real=True)
eta, beta1, beta2, eps, lam, warm, r = (LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol, WD.symbol,
                                        WARMUP.symbol, R.symbol)


def average_weights() -> list:
    """The warm-up and the averaging weight c of one step, the same in every schedulefree class (Python floats,
    computed once per group)."""
    return [
        # k < W is t ≤ W for a whole W, and written so: t − 1 would be charged a rounding the integer k never has,
        # which made the tie k = W ambiguous to the tolerance model (both branches, a γ_t off by half)
        Assign(sched, when(t <= warm, t / warm, 1), "warm-up factor: (k + 1)/W while k < W (t ≤ W), else 1"),
        Assign(lr_t, eta * sched, "γ_t = lr·schedule (group['scheduled_lr'])"),
        Assign(lrmax, sp.Max(lr_t, lrmax), "lr_max = max(γ_t, lr_max)"),
        Assign(weight, t ** r * (lrmax * lrmax), "weight = (k + 1)ʳ·lr_max^weight_lr_power (power 2)"),
        Assign(wsum, wsum + weight, "weight_sum += weight"),
        # the guard's value is an exact 0: a constant 1 under this (per-element) condition would send every element
        # to the tolerance model's per-element path (reference.fast_bound.select), 60 times slower
        Assign(ck, when(sp.Eq(wsum, 0), 0, weight / wsum), "c = weight/weight_sum; 0 on ZeroDivisionError"),
    ]


def group_scalars() -> list:
    """The per-group scalars of one step (the library computes them once per group, in Python floats)."""
    return [*average_weights(), Assign(bc2, 1 - beta2 ** t, "bias correction of v")]


def created() -> list:
    """z (and, in the reference form, x) are created as copies of the parameter at its first step."""
    return [Assign(z, when(sp.Eq(t, 1), theta, z), "z is created as a copy of the parameter at its first step")]


def denominator(eps_root=0) -> list:
    """v and the denominator √(v/bc₂ + ε_root) + ε (ε_root: pytorch-optimizer's 1e-15; 0 in schedulefree)."""
    return [
        Assign(v, beta2 * v + (1 - beta2) * g * g, "second moment: v·β₂ + (1 − β₂)·g·g"),
        Assign(vhat, v / bc2, "exp_avg_sq.div(bias_correction2)"),
        Assign(denom, sp.sqrt(vhat + eps_root) + eps, "√(v/bc₂) + ε" if eps_root == 0 else
               "√(v/bc₂ + ε_root) + ε (apply_ams_bound: exp_avg_sq.add(1e-15).sqrt_().add_(eps))"),
    ]


def reference_steps() -> list:
    """AdamWScheduleFreeReference's tensor statements after the group scalars: z, then x, then y from them."""
    return [
        Assign(dz, lr_t * lam, "decay coefficient γ_t·λ (a Python float)"),
        Assign(z, unless_zero(lam, z - dz * theta, z), "decay at y: z.sub_(y, alpha=γ_t·λ), before the step"),
        *denominator(),
        Assign(z, z - lr_t * g / denom, "z.addcdiv_(g, d, value=−γ_t)"),
        Assign(x, x * (1 - ck) + ck * z, "x.mul_(1 − c).add_(z, alpha=c): a weighted sum, not a lerp"),
        Assign(theta, beta1 * x + (1 - beta1) * z, "y = x·β₁ + z·(1 − β₁), copied into the parameter"),
    ]


def y_form_steps() -> list:
    """AdamWScheduleFree's tensor statements (its for-loop; foreach the same ops over lists): y updated in place
    without x, the decay folded into the normalised gradient u, which is written into p.grad."""
    return [
        Assign(gn, g / denom, "u = grad.div_(denom) (in place: the caller's p.grad becomes u)"),
        Assign(gn, unless_zero(lam, gn + lam * theta, gn), "decay at y: u.add_(y, alpha=λ)"),
        Assign(theta, common.lerp(theta, z, ck), "y.lerp_(end=z, weight=c)"),
        Assign(dz, lr_t * (beta1 * (1 - ck) - 1), "γ_t·(β₁·(1 − c) − 1), a Python float"),
        Assign(theta, theta + dz * gn, "y.add_(u, alpha=γ_t·(β₁·(1 − c) − 1))"),
        Assign(z, z - lr_t * gn, "z.sub_(u, alpha=γ_t)"),
    ]


def averaging_state(kind: str, *moments) -> tuple:
    """The state of ``{kind}ScheduleFreeReference``: STEP, z, x, the ``moments``, then the averaging's scalars."""
    return (STEP,
            State("z", sp.Integer(0), "the base sequence z; a copy of the parameter at its first step", latex="z"),
            State("x", sp.Integer(0), "the average x of z, the point to evaluate; a copy of the parameter at its "
                  f"first step ({kind}ScheduleFreeReference keeps it; {kind}ScheduleFree does not)", latex="x"),
            *moments,
            State("weight_sum", sp.Integer(0), "Σ weights so far (the library's group['weight_sum'], a Python "
                  "float per group)", latex="W_sum"),
            State("lr_max", sp.Integer(-1), "largest γ_t so far, −1 before the first step (group['lr_max'])",
                  latex="gamma_max"))


def rule(f: dict) -> list:
    return [*created(), Assign(x, when(sp.Eq(t, 1), theta, x), "so is x"), *group_scalars(), *reference_steps()]


def y_form_rule(f: dict, eps_root=0) -> list:
    return [*created(), *group_scalars(), *denominator(eps_root), *y_form_steps()]


SCHEDULEFREE_ADAMW = OptimizerSpec(
    name="schedulefree_adamw",
    title="Schedule-Free AdamW",
    hyperparameters=(LR, BETA1, BETA2, EPS, WD, WARMUP, R),
    state=averaging_state("AdamW", State("exp_avg_sq", sp.Integer(0), "second moment v", latex="v")),
    rule=rule,
    torch_class="",
    doc=__doc__,
    group_steps=True,
    paths_doc=("No torch.optim class: the torch backend runs it only as a class given by "
               "`--optimizer schedulefree_adamw=module:Class` (path `custom`); the schedulefree classes need "
               "`train()` before a step, which `conformance.adapters.schedulefree` calls.  Third-party "
               "implementations audited against this spec: docs/measured/third-party.md."),
    edge_doc=(
        "c = 0 while weight_sum = 0 (every γ so far 0): x keeps its value.  The first step has c = 1 whenever "
        "γ₁ > 0 (weight = weight_sum), so x = z after it.  lr_max starts at −1, so γ₁ = 0 sets it to 0.  "
        "ε outside the root of the bias-corrected v, as in 1.4.1 (earlier releases scaled the step size by "
        "√bc₂ instead, and in lr_max).  `lr = max(group['lr'], eps)` in the reference class is dead code: lr is reassigned "
        "before use.  Decay at y (the parameter before the step), applied to z: with λ > 0 and y infinite z "
        "becomes infinite.  The library validates no hyperparameter (β ≥ 1, lr < 0 are accepted); the spec's "
        "domains are those the method is defined on.  Train/eval switching: module docstring.  "
        "After steps with lr = 0 (weight_sum = 0) the first nonzero weight gives c = w/(0 + w) = 1 exactly, as "
        "IEEE's w/w; with r not a whole number w (tʳ) is irrational, and the exact reference keeps it exact by "
        "taking 0 + w as w itself and w/w as 1 (reference/exact.py)."),
)
