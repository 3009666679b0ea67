"""Other frameworks' dialects of the torch optimizers, as variants of the torch specs.

A dialect is the same optimizer name with another framework's defaults and
update statements: Keras 3 (``keras.optimizers``; the statements follow the
torch backend's ``keras/src/backend/torch/optimizers/torch_*.py``, which is
what runs with ``KERAS_BACKEND=torch``, and agree in exact arithmetic with the
generic ``keras/src/optimizers/*.py``), TensorFlow 1's
``tf.compat.v1.train.RMSPropOptimizer`` (its C++ kernel ``ApplyRMSProp``) and
Optax (``optax/_src/alias.py`` and ``transform.py``).  Each is built with
``OptimizerSpec.variant`` of the torch spec it shadows and reuses that
module's hyperparameters, symbols and helpers, so a shared quantity is the same
SymPy symbol in both and ``reference.compare`` can decide how the two rules relate.

Conventions that hold for every dialect here:

* Hyperparameters keep the torch API's names (``lr``, ``beta1``/``beta2``,
  ``eps``, ``alpha`` for RMSprop's decay, ...) so that the harness and the
  adapters pass them the torch way; ``INFO[name].arguments`` maps each to the
  framework's own argument name (Keras ``learning_rate``, ``rho``,
  ``epsilon``; Optax ``b1``, ``decay``, ...).
* ``weight_decay = 0`` means the framework's "off" (Keras ``None``).  Keras
  decays every variable *decoupled*, before the update (torch backend:
  ``θ ← θ·(1 − λ·lr)``), whatever the optimizer; torch couples λθ into the
  gradient except in AdamW.
* Neither Keras nor Optax has ``maximize``; the dialects have no such flag.
* Step counting: the spec's ``t`` counts the steps of one parameter (torch).
  Keras counts ``iterations`` per optimizer: a variable that gets no gradient
  in a step still sees the counter advance.  Optax counts per optimizer state
  too.  The two agree when every parameter gets a gradient at every step,
  which is what the adapters arrange (one Keras optimizer per parameter).
* ``REQUIRED`` marks a hyperparameter the framework has no default for
  (Optax's learning rates).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import sympy as sp

from . import adadelta as _adadelta
from . import adagrad as _adagrad
from . import adafactor as _adafactor
from . import adam as _adam
from . import ademamix as _ademamix
from . import adamax as _adamax
from . import adan as _adan
from . import common
from . import lamb as _lamb
from . import lion as _lion
from . import get as _get_torch  # spec/__init__ defines get before anything imports this module
from . import nadam as _nadam
from . import radam as _radam  # noqa: F401 - documented as not given a dialect here
from . import rmsprop as _rmsprop
from . import schedulefree as _sf
from . import schedulefree_sgd as _sfsgd
from . import sgd as _sgd
from .reductions import AxisMean, Norm, Numel, SumSq
from .core import (CLOSED_UNIT, NONNEGATIVE, STEP, Assign, Constraint, Hyperparameter, Interval, OptimizerSpec, State,
                   TensorFlag, g, py_float, t, theta, unless_zero, when)
from .schedules import REQUIRED

KERAS = "keras"
TF1 = "tf"
OPTAX = "optax"

KERAS_VERSION = "Keras 3.15.1"
OPTAX_VERSION = "Optax 0.2.8"
PYTORCH_OPTIMIZER = "pytorch-optimizer"
PYTORCH_OPTIMIZER_VERSION = "pytorch-optimizer 4.1.0"
ADAN_PYTORCH = "adan-pytorch"
ADAN_PYTORCH_VERSION = "adan-pytorch 0.1.0"
SCHEDULEFREE = "schedulefree"
SCHEDULEFREE_VERSION = "schedulefree 1.4.1"
TRANSFORMERS = "transformers"
TRANSFORMERS_VERSION = "transformers 5.18.0"
TIMM = "timm"
TIMM_VERSION = "timm 1.0.29"
TF1_VERSION = "TensorFlow 1.x API (tf.compat.v1, kernel ApplyRMSProp in training_ops.cc)"


@dataclass(frozen=True)
class DialectInfo:
    """Where a dialect comes from: its framework, class, source files and argument names."""

    base: str  # the torch spec it shadows
    framework: str
    cls: str
    source: str
    arguments: dict = field(default_factory=dict)  # spec hyperparameter → the framework's argument name
    notes: tuple = ()


# --------------------------------------------------------------------------- shared pieces

def _hp(h: Hyperparameter, **changes) -> Hyperparameter:
    return dataclasses.replace(h, **changes)


def _hp_open_unit(closed_hi: bool = False):
    """(0, 1) or (0, 1]: a decay's fuzz box without 0."""
    from .core import Interval
    return Interval(0.0, 1.0, False, closed_hi)


def _lr(default) -> Hyperparameter:
    return _hp(common.lr(1.0), default=default)


KERAS_WD = common.weight_decay(0.0, "decoupled decay θ ← θ·(1 − λ·lr) before the update, on every Keras optimizer "
                                    "(Keras: weight_decay; 0 here means None, off)")
_lam = KERAS_WD.symbol


def keras_weight_decay(eta: sp.Symbol) -> list:
    """Keras's ``_apply_weight_decay``: the torch backend's ``θ *= 1 − λ·lr`` (generic: ``θ − θ·λ·lr``), before the step."""
    return common.decoupled_weight_decay(eta, _lam)


def _bias(beta: sp.Symbol) -> sp.Expr:
    return 1 - beta ** t


# --------------------------------------------------------------------------- Keras 3: Adam, AdamW

EPS_HAT = Hyperparameter("eps", 1e-7, NONNEGATIVE, "ε̂, added to the uncorrected √v (Keras: epsilon; the ε "
                         "\"hat\" of Kingma & Ba just before their section 2.1)", latex="epsilonhat")
_epshat = EPS_HAT.symbol
alpha_t = sp.Symbol("alpha_t", real=True)


def keras_adam_rule(f: dict) -> list:
    root = _adam.v
    out = [*keras_weight_decay(_adam.eta), *_adam.moments(f)]
    if f["amsgrad"]:
        out.append(Assign(_adam.vmax, sp.Max(_adam.vmax, _adam.v), "AMSGrad: running max of the raw v"))
        root = _adam.vmax
    return out + [
        Assign(alpha_t, _adam.eta * sp.sqrt(_bias(_adam.beta2)) / _bias(_adam.beta1),
               "step size carrying both bias corrections"),
        Assign(theta, theta - _adam.m * alpha_t / (sp.sqrt(root) + _epshat), "ε̂ added to the uncorrected √v"),
    ]


_KERAS_ADAM_HYPER = (_adam.LR, _adam.BETA1, _adam.BETA2, EPS_HAT, KERAS_WD, _adam.AMSGRAD)

ADAM_KERAS = _adam.ADAM.variant(
    "adam@keras", dialect=KERAS, title="Adam (Keras 3)", rule=keras_adam_rule,
    hyperparameters=_KERAS_ADAM_HYPER, defaults={"lr": 1e-3, "eps": 1e-7},
    doc="keras.optimizers.Adam: lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) multiplies m/(√v + ε̂), so ε̂ is added before the bias "
        "correction of v (torch adds ε after it); ε̂ = 1e-7.  Weight decay is Keras's decoupled form.",
    torch_class="", paths_doc="", edge_doc="")

ADAMW_KERAS = ADAM_KERAS.variant(
    "adamw@keras", dialect=KERAS, title="AdamW (Keras 3)", defaults={"weight_decay": 0.004},
    doc="keras.optimizers.AdamW is keras.optimizers.Adam with weight_decay = 0.004 by default "
        "(torch backend: class AdamW(torch_adam.Adam, optimizers.AdamW): pass).")

# --------------------------------------------------------------------------- Keras 3: SGD

KERAS_SGD_MOMENTUM = _hp(_sgd.MOMENTUM, domain=CLOSED_UNIT, doc="momentum factor μ (Keras raises unless 0 ≤ μ ≤ 1)")


def keras_sgd_rule(f: dict) -> list:
    b, mu, eta = _sgd.b, _sgd.mu, _sgd.eta
    stepped = theta + mu * b - eta * g if f["nesterov"] else theta + b
    return [
        *keras_weight_decay(eta),
        Assign(b, unless_zero(mu, mu * b - eta * g, b), "velocity: lr inside the buffer (Keras: momentums)"),
        Assign(theta, unless_zero(mu, stepped, theta - eta * g),
               "Nesterov: θ + μ·b − lr·g; plain momentum: θ + b; no momentum: θ − lr·g"),
    ]


SGD_KERAS = _sgd.SGD.variant(
    "sgd@keras", dialect=KERAS, title="SGD (Keras 3)", rule=keras_sgd_rule,
    hyperparameters=(_sgd.LR, KERAS_SGD_MOMENTUM, KERAS_WD, _sgd.NESTEROV),
    defaults={"lr": 1e-2},
    state=(State("momentum_buffer", sp.Integer(0), "velocity b = μ·b − lr·g, zeros from the start "
                 "(Keras: momentums)", latex="b", when="momentum != 0"),),
    constraints=(), counts_steps=False,
    doc="keras.optimizers.SGD: the velocity holds lr·g (v ← μ·v − lr·g; θ ← θ + v), so lr sits inside the "
        "buffer; no dampening; Nesterov θ ← θ + μ·v − lr·g.",
    torch_class="", paths_doc="", edge_doc="Keras accepts nesterov=True with momentum 0 (then it is plain SGD).")

# --------------------------------------------------------------------------- Keras 3 and TF1: RMSprop

KERAS_RHO = _hp(_rmsprop.ALPHA, default=0.9, doc="decay of the squared-gradient average (Keras: rho; TF1: decay)")
EPS_INSIDE = common.eps(1e-7, "added to the average inside the square root")
KERAS_RMS_MOMENTUM = _hp(_rmsprop.MOMENTUM, doc="momentum factor; the buffer holds lr-scaled steps")


def _rms_average(f: dict, eps_inside: bool, increment: bool = False) -> list:
    """v, optionally ḡ, and the denominator a, with ε inside (√(v + ε)) or outside (√v + ε) the root;
    ``increment``: the averages as TF1's kernels compute them, v + (g² − v)(1 − ρ), not ρv + (1 − ρ)g² (the two
    round differently: in float16 with ρ = 0, v = 1 and g² = 7e-5, g² − v rounds to −1 and v to 0)."""
    v, gbar, avg, alpha, eps = _rmsprop.v, _rmsprop.gbar, _rmsprop.avg, _rmsprop.alpha, _rmsprop.eps
    if increment:
        out = [Assign(v, v + (g * g - v) * (1 - alpha), "running average of g², as an increment")]
    else:
        out = [Assign(v, alpha * v + (1 - alpha) * g * g, "running average of g²")]
    if f["centered"]:
        out.append(Assign(gbar, gbar + (g - gbar) * (1 - alpha) if increment else alpha * gbar + (1 - alpha) * g,
                          "running average of g"))
        var = v - gbar ** 2
        out.append(Assign(avg, sp.sqrt(var + eps) if eps_inside else sp.sqrt(var) + eps,
                          "centered root, ε " + ("inside" if eps_inside else "outside")))
    else:
        out.append(Assign(avg, sp.sqrt(v + eps) if eps_inside else sp.sqrt(v) + eps,
                          "root, ε " + ("inside" if eps_inside else "outside")))
    return out


def keras_rmsprop_rule(f: dict) -> list:
    b, mu, eta, avg = _rmsprop.b, _rmsprop.mu, _rmsprop.eta, _rmsprop.avg
    return [
        *keras_weight_decay(eta),
        *_rms_average(f, eps_inside=True),
        Assign(b, when(mu > 0, mu * b + eta * g / avg, b), "buffer of lr-scaled steps (Keras: momentums)"),
        Assign(theta, when(mu > 0, theta - b, theta - eta * g / avg), "the buffer is the step"),
    ]


_RMS_STATE_KERAS = (STEP,
                    State("square_avg", sp.Integer(0), "running average of g² (Keras: velocities)", latex="v"),
                    State("momentum_buffer", sp.Integer(0), "lr-scaled momentum buffer (Keras: momentums)",
                          latex="b", when="momentum > 0"),
                    State("grad_avg", sp.Integer(0), "running average of g (Keras: average_gradients)",
                          latex="gbar", when="centered"))

RMSPROP_KERAS = _rmsprop.RMSPROP.variant(
    "rmsprop@keras", dialect=KERAS, title="RMSprop (Keras 3)", rule=keras_rmsprop_rule,
    hyperparameters=(_rmsprop.LR, KERAS_RHO, EPS_INSIDE, KERAS_WD, KERAS_RMS_MOMENTUM, _rmsprop.CENTERED),
    defaults={"lr": 1e-3},
    state=_RMS_STATE_KERAS,
    doc="keras.optimizers.RMSprop: ε inside the square root (√(v + ε), centered √(v + ε − ḡ²)), ρ = 0.9, "
        "ε = 1e-7; with momentum the buffer accumulates lr·g/√(…) and is subtracted whole (lr inside).",
    torch_class="", paths_doc="", edge_doc="")


def tf1_rmsprop_rule(f: dict) -> list:
    b, mu, eta, avg = _rmsprop.b, _rmsprop.mu, _rmsprop.eta, _rmsprop.avg
    return [
        *_rms_average(f, eps_inside=True, increment=True),
        Assign(b, mu * b + eta * g / avg, "mom ← μ·mom + lr·g/√(ms + ε), also when μ = 0"),
        Assign(theta, theta - b, "var ← var − mom"),
    ]


RMSPROP_TF1 = _rmsprop.RMSPROP.variant(
    "rmsprop@tf", dialect=TF1, title="RMSProp (TensorFlow 1, tf.compat.v1.train.RMSPropOptimizer)",
    rule=tf1_rmsprop_rule,
    hyperparameters=(_hp(_rmsprop.LR, default=REQUIRED), KERAS_RHO, _hp(EPS_INSIDE, default=1e-10),
                     KERAS_RMS_MOMENTUM, _rmsprop.CENTERED),
    state=(STEP,
           State("square_avg", sp.Integer(1), "mean square, initialised to ONES (TF1 slot 'rms')", latex="v"),
           State("momentum_buffer", sp.Integer(0), "lr-scaled momentum (TF1 slot 'momentum'), always kept",
                 latex="b"),
           State("grad_avg", sp.Integer(0), "mean gradient (TF1 slot 'mg')", latex="gbar", when="centered")),
    doc="tf.compat.v1.train.RMSPropOptimizer (kernel ApplyRMSProp / ApplyCenteredRMSProp): ms starts at 1, "
        "ms ← ms + (g² − ms)(1 − ρ), mom ← μ·mom + lr·g/√(ms + ε), var ← var − mom; ε = 1e-10; no weight "
        "decay.  The start at 1 damps the first steps: the first step is lr·g/√(ρ + (1 − ρ)g² + ε), not "
        "lr·g/√((1 − ρ)g²).",
    torch_class="", paths_doc="", edge_doc="")

# --------------------------------------------------------------------------- Keras 3: Adagrad

KERAS_INIT = _hp(_adagrad.INIT, default=0.1, doc="starting value of the sum (Keras and Optax: 0.1)")


def keras_adagrad_rule(f: dict) -> list:
    s, eta, eps = _adagrad.s, _adagrad.eta, _adagrad.eps
    return [
        *keras_weight_decay(eta),
        Assign(s, s + g * g, "accumulate the squared gradient (Keras: accumulators)"),
        Assign(theta, theta - eta * g / sp.sqrt(s + eps), "ε inside the square root"),
    ]


ADAGRAD_KERAS = _adagrad.ADAGRAD.variant(
    "adagrad@keras", dialect=KERAS, title="AdaGrad (Keras 3)", rule=keras_adagrad_rule,
    hyperparameters=(_adagrad.LR, KERAS_WD, KERAS_INIT, _hp(_adagrad.EPS, default=1e-7,
                                                             doc="added to the sum inside the square root")),
    defaults={"lr": 1e-3},
    doc="keras.optimizers.Adagrad: the sum starts at 0.1 and ε = 1e-7 sits inside the root: "
        "θ ← θ − lr·g/√(s + ε); no lr_decay.",
    torch_class="", paths_doc="", edge_doc="")

# --------------------------------------------------------------------------- Keras 3: Adamax

def keras_adamax_rule(f: dict) -> list:
    m, u, beta1, beta2, eta, eps = _adam.m, _adamax.u, _adamax.beta1, _adamax.beta2, _adamax.eta, _adamax.eps
    return [
        *keras_weight_decay(eta),
        _adam.moments(f)[0],
        Assign(u, sp.Max(beta2 * u, sp.Abs(g)), "infinity norm; ε is not in the max"),
        Assign(theta, theta - m * eta / ((u + eps) * _bias(beta1)), "ε added to u, then the bias correction"),
    ]


ADAMAX_KERAS = _adamax.ADAMAX.variant(
    "adamax@keras", dialect=KERAS, title="Adamax (Keras 3)", rule=keras_adamax_rule,
    hyperparameters=(_adamax.LR, _adam.BETA1, _adam.BETA2, _hp(_adamax.EPS, default=1e-7, doc="added to u"),
                     KERAS_WD),
    defaults={"lr": 1e-3},
    doc="keras.optimizers.Adamax: u ← max(β₂·u, |g|) and θ ← θ − lr·m/((u + ε)(1 − β₁ᵗ)); torch puts ε "
        "inside the max instead.",
    torch_class="", paths_doc="", edge_doc="")

# --------------------------------------------------------------------------- Keras 3: Nadam

def keras_nadam_rule(f: dict) -> list:
    n = _nadam
    return [
        *keras_weight_decay(n.eta),
        Assign(n.mu_t, n.beta1 * (1 - sp.Rational(1, 2) * n.C096 ** t), "u_t = β₁(1 − ½·0.96ᵗ): no ψ"),
        Assign(n.mu_next, n.beta1 * (1 - sp.Rational(1, 2) * n.C096 ** (t + 1)), "u_{t+1}"),
        Assign(n.prod, n.prod * n.mu_t, "running product (Keras: u_product, one per optimizer)"),
        *_adam.moments(f),
        Assign(n.denom, sp.sqrt(n.v / _bias(n.beta2)) + n.eps, "√v̂ + ε"),
        Assign(theta, theta - n.eta * (n.mu_next * n.m / (1 - n.prod * n.mu_next)
                                       + (1 - n.mu_t) * g / (1 - n.prod)) / n.denom,
               "m̂ = u_{t+1}·m/(1 − Π·u_{t+1}) + (1 − u_t)·g/(1 − Π)"),
    ]


NADAM_KERAS = _nadam.NADAM.variant(
    "nadam@keras", dialect=KERAS, title="NAdam (Keras 3)", rule=keras_nadam_rule,
    hyperparameters=(_nadam.LR, _adam.BETA1, _adam.BETA2, _hp(_nadam.EPS, default=1e-7), KERAS_WD),
    defaults={"lr": 1e-3},
    doc="keras.optimizers.Nadam: the momentum schedule is u_t = β₁(1 − ½·0.96ᵗ), i.e. torch's NAdam with "
        "momentum_decay ψ = 1 instead of 0.004; ε = 1e-7 after the bias-corrected root, as in torch.",
    torch_class="", paths_doc="", edge_doc="")

# --------------------------------------------------------------------------- Keras 3: Adadelta

def keras_adadelta_rule(f: dict) -> list:
    a = _adadelta
    return [
        *keras_weight_decay(a.eta),
        Assign(a.v, a.rho * a.v + (1 - a.rho) * g * g, "running average of g² (Keras: accumulated_grads)"),
        Assign(a.delta, -(sp.sqrt(a.u + a.eps) * g) / sp.sqrt(a.v + a.eps), "Δ = −√(u + ε)·g/√(v + ε)"),
        Assign(a.u, a.rho * a.u + (1 - a.rho) * a.delta * a.delta, "running average of Δ² (without lr)"),
        Assign(theta, theta + a.eta * a.delta, "θ ← θ + lr·Δ"),
    ]


ADADELTA_KERAS = _adadelta.ADADELTA.variant(
    "adadelta@keras", dialect=KERAS, title="AdaDelta (Keras 3)", rule=keras_adadelta_rule,
    hyperparameters=(_adadelta.LR, _adadelta.RHO, _adadelta.EPS, KERAS_WD),
    defaults={"lr": 1e-3, "rho": 0.95, "eps": 1e-7},
    doc="keras.optimizers.Adadelta: torch's update (ε inside both roots, Δ accumulated without lr) with "
        "lr = 1e-3, ρ = 0.95, ε = 1e-7.",
    torch_class="", paths_doc="", edge_doc="")

# --------------------------------------------------------------------------- Keras 3: LAMB

_keras_dm, _keras_dv = sp.symbols("d_m d_v", real=True)


def keras_lamb_rule(f: dict) -> list:
    """keras.optimizers.Lamb.update_step (keras/src/optimizers/lamb.py; the torch backend has no kernel of its own,
    so its generic ops run), after Keras's decoupled decay of every variable."""
    la = _lamb
    return [
        *keras_weight_decay(la.eta),
        # Keras's own arithmetic, not torch's lerp (which evaluates a weight ≥ 0.5 from the other end, so that
        # g = −inf gives NaN there and −inf here): the difference is a temporary of its own
        Assign(_keras_dm, g - la.m, "ops.subtract(gradient, m)"),
        Assign(la.m, la.m + _keras_dm * (1 - la.beta1), "assign_add(m, (g − m)·(1 − β₁))"),
        Assign(_keras_dv, g ** 2 - la.v, "ops.subtract(ops.square(gradient), v)"),
        Assign(la.v, la.v + _keras_dv * (1 - la.beta2), "assign_add(v, (g² − v)·(1 − β₂))"),
        Assign(la.u, (la.m / _bias(la.beta1)) / (sp.sqrt(la.v / _bias(la.beta2)) + la.eps),
               "m̂/(√v̂ + ε), β₁ᵗ and β₂ᵗ as ops.power(cast(β, dtype), t)"),
        Assign(la.w, Norm(theta), "sqrt(sum(θ²)) of the decayed θ"),
        Assign(la.q, Norm(la.u), "sqrt(sum(u²))"),
        Assign(la.r, sp.Piecewise((la.w / la.q, sp.And(la.w > 0, la.q > 0)), (1, True)),
               "where(w > 0, where(q > 0, w/q, 1), 1): tensorflow/addons' convention, the spec's"),
        Assign(theta, theta - (la.r * la.eta) * la.u, "assign_sub(θ, ratio·lr·update)"),
    ]


LAMB_KERAS = _lamb.LAMB.variant(
    "lamb@keras", dialect=KERAS, title="LAMB (Keras)", rule=keras_lamb_rule,
    hyperparameters=(_lamb.LR, _lamb.BETA1, _lamb.BETA2, _hp(_lamb.EPS, default=1e-7,
                     doc="added to √v̂ (Keras: epsilon, default 1e-7)"), KERAS_WD),
    doc="keras.optimizers.Lamb (3.15.1): the spec's update with m and v as m + (g − m)·(1 − β₁) (two roundings, "
        "not torch's lerp), ε = 1e-7, and Keras's decoupled "
        "decay θ·(1 − λ·lr) applied before the step, so ‖θ‖ is the decayed θ's and λθ is not part of u (the spec "
        "and the paper put λθ inside u, under the trust ratio).  β₁ᵗ and β₂ᵗ are computed in the variable's dtype.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- Keras 3: Lion

LION_KERAS = _lion.LION.variant(
    "lion@keras", dialect=KERAS, title="Lion (Keras)", rule=lambda f: _lion.LION.rule(f),
    hyperparameters=(_hp(_lion.LR, default=1e-3),
                     _hp(_lion.BETA1, domain=_hp_open_unit(closed_hi=True),
                         doc="weight of m in c (Keras: beta_1; it raises unless 0 < β₁ ≤ 1)"),
                     _lion.BETA2, _hp(KERAS_WD, doc="decoupled decay θ ← θ·(1 − λ·lr) before the update (Keras: "
                                      "weight_decay; 0 here means None, off)")),
    doc="keras.optimizers.Lion (3.15.1; torch backend: keras/src/backend/torch/optimizers/torch_lion.py): the "
        "spec's statements (Keras's decoupled decay is the spec's θ·(1 − lr·λ) first; c = β₁·m + (1 − β₁)·g; "
        "θ − lr·sign(c) with torch's sign; m = β₂·m + (1 − β₂)·g), with Keras's lr = 1e-3 and its domain "
        "0 < β₁ ≤ 1.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- Optax

EPS_ROOT = Hyperparameter("eps_root", 0.0, NONNEGATIVE, "added to the bias-corrected v inside the square root",
                          latex="epsilon_root")
upd = sp.Symbol("u_t", real=True)


def optax_adam_rule(f: dict, decay: bool = False) -> list:
    a = _adam
    mhat = a.m / _bias(a.beta1)
    vhat = a.v / _bias(a.beta2)
    direction = mhat / (sp.sqrt(vhat + EPS_ROOT.symbol) + a.eps)
    if decay:
        direction = direction + a.lam * theta
    return [
        *a.moments(f),
        Assign(upd, direction, "m̂/(√(v̂ + ε_root) + ε)" + (" + λθ (add_decayed_weights, old θ)" if decay else "")),
        Assign(theta, theta - a.eta * upd, "scale_by_learning_rate: −lr·u; apply_updates adds it"),
    ]


_OPTAX_LR = _hp(_adam.LR, default=REQUIRED)
ADAM_OPTAX = _adam.ADAM.variant(
    "adam@optax", dialect=OPTAX, title="Adam (Optax)", rule=optax_adam_rule,
    hyperparameters=(_OPTAX_LR, _adam.BETA1, _adam.BETA2, _adam.EPS, EPS_ROOT),
    doc="optax.adam = chain(scale_by_adam, scale_by_learning_rate): m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), "
        "u = m̂/(√(v̂ + ε_root) + ε), θ ← θ − lr·u.  ε = 1e-8 after bias correction, as torch.",
    torch_class="", paths_doc="", edge_doc="")

ADAMW_OPTAX = _adam.ADAMW.variant(
    "adamw@optax", dialect=OPTAX, title="AdamW (Optax)", rule=lambda f: optax_adam_rule(f, decay=True),
    hyperparameters=(_OPTAX_LR, _adam.BETA1, _adam.BETA2, _adam.EPS, EPS_ROOT,
                     _hp(_adam.WD, default=1e-4, doc="decoupled decay added to the update, multiplied by lr")),
    doc="optax.adamw = chain(scale_by_adam, add_decayed_weights(λ), scale_by_learning_rate): "
        "θ ← θ − lr·(m̂/(√(v̂ + ε_root) + ε) + λθ) with the old θ; λ = 1e-4.",
    torch_class="", paths_doc="", edge_doc="")


def optax_sgd_rule(f: dict) -> list:
    b, mu, eta = _sgd.b, _sgd.mu, _sgd.eta
    direction = g + mu * b if f["nesterov"] else b
    return [
        Assign(b, unless_zero(mu, g + mu * b, b), "trace: b ← g + μ·b (no dampening; momentum=None keeps none)"),
        Assign(_sgd.d, unless_zero(mu, direction, g), "Nesterov: g + μ·b"),
        Assign(theta, theta - eta * _sgd.d, "lr outside the trace, as torch"),
    ]


SGD_OPTAX = _sgd.SGD.variant(
    "sgd@optax", dialect=OPTAX, title="SGD (Optax)", rule=optax_sgd_rule,
    hyperparameters=(_hp(_sgd.LR, default=REQUIRED), _hp(_sgd.MOMENTUM, doc="trace decay μ (Optax: momentum; "
                                                                           "0 here means None)"), _sgd.NESTEROV),
    state=(State("momentum_buffer", sp.Integer(0), "Optax: trace", latex="b", when="momentum != 0"),),
    constraints=(), counts_steps=False,
    doc="optax.sgd = chain(trace(μ, nesterov), scale_by_learning_rate): torch's SGD with dampening 0 and "
        "no weight decay.",
    torch_class="", paths_doc="", edge_doc="")

EPS_IN_SQRT = common.flag("eps_in_sqrt", "ε inside the square root (Optax's default) or outside (torch's form)",
                          default=True)
OPTAX_INITIAL_SCALE = Hyperparameter("initial_scale", 0.0, NONNEGATIVE, "initial value of the squared-gradient "
                                     "average", latex="v_0")


def optax_rmsprop_rule(f: dict) -> list:
    b, mu, eta, avg = _rmsprop.b, _rmsprop.mu, _rmsprop.eta, _rmsprop.avg
    return [
        *_rms_average(f, eps_inside=f["eps_in_sqrt"]),
        Assign(b, when(mu > 0, mu * b - eta * g / avg, b), "trace after scale_by_learning_rate: lr inside"),
        Assign(theta, when(mu > 0, theta + b, theta - eta * g / avg), "apply_updates adds the trace"),
    ]


RMSPROP_OPTAX = _rmsprop.RMSPROP.variant(
    "rmsprop@optax", dialect=OPTAX, title="RMSprop (Optax)", rule=optax_rmsprop_rule,
    hyperparameters=(_hp(_rmsprop.LR, default=REQUIRED), KERAS_RHO, _hp(_rmsprop.EPS, default=1e-8,
                                                                      doc="ε, inside the root by default"),
                     OPTAX_INITIAL_SCALE, _hp(_rmsprop.MOMENTUM, doc="trace decay (Optax: momentum; 0 = None)"),
                     _rmsprop.CENTERED, EPS_IN_SQRT),
    state=(STEP,
           State("square_avg", OPTAX_INITIAL_SCALE.symbol, "Optax: nu", latex="v"),
           State("momentum_buffer", sp.Integer(0), "Optax: trace (of −lr-scaled steps)", latex="b",
                 when="momentum > 0"),
           State("grad_avg", sp.Integer(0), "Optax: mu (scale_by_stddev)", latex="gbar", when="centered")),
    doc="optax.rmsprop = chain(scale_by_rms | scale_by_stddev, scale_by_learning_rate, trace(μ)): "
        "ε inside the root unless eps_in_sqrt=False; the momentum trace is applied after the learning rate.",
    torch_class="", paths_doc="", edge_doc="")


def optax_adagrad_rule(f: dict) -> list:
    s, eta, eps = _adagrad.s, _adagrad.eta, _adagrad.eps
    return [
        Assign(s, g * g + s, "sum_of_squares ← g² + s"),
        Assign(theta, theta - eta * (when(s > 0, 1 / sp.sqrt(s + eps), 0) * g),
               "where(s > 0, rsqrt(s + ε), 0)·g: ε inside the root, 0 where nothing accumulated"),
    ]


ADAGRAD_OPTAX = _adagrad.ADAGRAD.variant(
    "adagrad@optax", dialect=OPTAX, title="AdaGrad (Optax)", rule=optax_adagrad_rule,
    hyperparameters=(_hp(_adagrad.LR, default=REQUIRED), KERAS_INIT,
                     _hp(_adagrad.EPS, default=1e-7, doc="added to the sum inside the square root")),
    doc="optax.adagrad = chain(scale_by_rss, scale_by_learning_rate): s starts at 0.1, "
        "θ ← θ − lr·g/√(s + ε) where s > 0.",
    torch_class="", paths_doc="", edge_doc="")


def optax_adamax_rule(f: dict) -> list:
    m, u, beta1, beta2, eta, eps = _adam.m, _adamax.u, _adamax.beta1, _adamax.beta2, _adamax.eta, _adamax.eps
    return [
        _adam.moments(f)[0],
        Assign(u, sp.Max(sp.Abs(g) + eps, beta2 * u), "update_infinity_moment: max(|g| + ε, β₂·u)"),
        Assign(theta, theta - eta * ((m / _bias(beta1)) / u), "m̂/u, then −lr"),
    ]


ADAMAX_OPTAX = _adamax.ADAMAX.variant(
    "adamax@optax", dialect=OPTAX, title="Adamax (Optax)", rule=optax_adamax_rule,
    hyperparameters=(_hp(_adamax.LR, default=REQUIRED), _adam.BETA1, _adam.BETA2, _adamax.EPS),
    doc="optax.adamax = chain(scale_by_adamax, scale_by_learning_rate): ε inside the max, as torch.",
    torch_class="", paths_doc="", edge_doc="")


m_next = sp.Symbol("mhat_next", real=True)
g_hat = sp.Symbol("ghat", real=True)


def optax_nadam_rule(f: dict) -> list:
    a = _adam
    return [
        *a.moments(f),
        # each bias correction divides a tensor first, as optax.tree.bias_correction does: g/(1 − β₁ᵗ) can
        # overflow where (1 − β₁)·g/(1 − β₁ᵗ) would not, and the spec must say which one Optax computes
        Assign(m_next, a.m / (1 - a.beta1 ** (t + 1)), "bias_correction(mu, b1, count + 1)"),
        Assign(g_hat, g / _bias(a.beta1), "bias_correction(updates, b1, count)"),
        Assign(upd, (a.beta1 * m_next + (1 - a.beta1) * g_hat) / (sp.sqrt(a.v / _bias(a.beta2) + EPS_ROOT.symbol)
                                                                 + a.eps),
               "Dozat's m̂ = β₁·m/(1 − β₁^{t+1}) + (1 − β₁)·g/(1 − β₁ᵗ); no μ schedule"),
        Assign(theta, theta - a.eta * upd, "−lr·u"),
    ]


NADAM_OPTAX = _nadam.NADAM.variant(
    "nadam@optax", dialect=OPTAX, title="NAdam (Optax)", rule=optax_nadam_rule,
    hyperparameters=(_hp(_nadam.LR, default=REQUIRED), _adam.BETA1, _adam.BETA2, _nadam.EPS, EPS_ROOT),
    state=(STEP,
           State("exp_avg", sp.Integer(0), "Optax: mu", latex="m"),
           State("exp_avg_sq", sp.Integer(0), "Optax: nu", latex="v")),
    doc="optax.nadam = adam(nesterov=True): Dozat's form without torch's μ_t schedule and without its "
        "running product.",
    torch_class="", paths_doc="", edge_doc="")


def optax_adadelta_rule(f: dict) -> list:
    a = _adadelta
    return [
        *common.coupled_weight_decay(a.lam),
        Assign(a.v, (1 - a.rho) * g * g + a.rho * a.v, "e_g"),
        Assign(a.delta, sp.sqrt(a.u + a.eps) / sp.sqrt(a.v + a.eps) * g, "update before lr"),
        Assign(a.u, (1 - a.rho) * a.delta * a.delta + a.rho * a.u, "e_x (without lr)"),
        Assign(theta, theta - a.eta * a.delta, "−lr·Δ"),
    ]


ADADELTA_OPTAX = _adadelta.ADADELTA.variant(
    "adadelta@optax", dialect=OPTAX, title="AdaDelta (Optax)", rule=optax_adadelta_rule,
    hyperparameters=(_hp(_adadelta.LR, default=REQUIRED, doc="learning rate.  Optax's default None skips "
                         "scale_by_learning_rate and with it the sign flip: θ ← θ + Δ, an ASCENT step "
                         "(lr = −1 in this spec's terms, outside its domain); see docs/dialects.md"),
                     _adadelta.RHO, _adadelta.EPS, _hp(_adadelta.WD, doc="coupled L2 (add_decayed_weights before "
                                                                        "scale_by_adadelta)")),
    doc="optax.adadelta = chain(add_decayed_weights(λ), scale_by_adadelta(ρ, ε), scale_by_learning_rate): "
        "torch's update, L2 weight decay included.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- pytorch-optimizer: Lion

WEIGHT_DECOUPLE = common.flag("weight_decouple", "decoupled decay θ ← θ·(1 − λ·lr) (the default); False: L2, "
                              "g ← g + λθ in place on the caller's gradient", default=True)
FIXED_DECAY = common.flag("fixed_decay", "with weight_decouple, θ ← θ·(1 − λ): the decay not scaled by lr")


def _pytorch_optimizer_decay(f: dict, lam, eta, l2_note: str) -> list:
    """pytorch-optimizer's apply_weight_decay, as its Lion and AdEMAMix call it: with weight_decouple θ·(1 − λ·lr)
    (θ·(1 − λ) with fixed_decay), else L2 in the gradient; skipped for λ = 0."""
    if f["weight_decouple"]:
        scale = 1 if f["fixed_decay"] else eta
        return [Assign(theta, unless_zero(lam, theta * (1 - lam * scale), theta),
                       "apply_weight_decay: p.mul_(1 − λ·(1 if fixed_decay else lr)); skipped for λ = 0")]
    return [Assign(g, unless_zero(lam, g + lam * theta, g),
                   f"apply_weight_decay: grad.add_(p, alpha=λ), L2 in the gradient{l2_note}")]


def pytorch_optimizer_lion_rule(f: dict) -> list:
    """pytorch_optimizer.Lion's per-parameter path (its foreach path: the same ops over lists): decay, then lerps."""
    lo = _lion
    decay = _pytorch_optimizer_decay(f, lo.lam, lo.eta, " (both c and m see it)")
    return [
        *decay,
        Assign(lo.c, common.lerp(lo.m, g, 1 - lo.beta1), "update = exp_avg.lerp(grad, 1 − β₁)"),
        Assign(theta, lo.sign_step(lo.c, theta - lo.eta, theta + lo.eta, theta),
               "p.add_(update.sign_(), alpha=−lr)"),
        Assign(lo.m, common.lerp(lo.m, g, 1 - lo.beta2), "exp_avg.lerp_(grad, 1 − β₂)"),
    ]


LION_PYTORCH_OPTIMIZER = _lion.LION.variant(
    "lion@pytorch-optimizer", dialect=PYTORCH_OPTIMIZER, title="Lion (pytorch-optimizer)",
    rule=pytorch_optimizer_lion_rule,
    hyperparameters=(_lion.LR, _lion.BETA1, _lion.BETA2,
                     _hp(_lion.WD, doc="weight decay coefficient (validated ≥ 0); its form set by the two flags"),
                     WEIGHT_DECOUPLE, FIXED_DECAY),
    doc="pytorch_optimizer.Lion (4.1.0): the spec's update with c and m as lerps (m + (1 − β)·(g − m), the same "
        "exact values as the weighted sums) and two weight-decay flags: weight_decouple (default True: the "
        "spec's decay) and fixed_decay (θ·(1 − λ)); weight_decouple=False adds λθ to g.  Its maximize is per "
        "optimizer, not per group, and negates p.grad in place: not part of this dialect "
        "(docs/measured/third-party.md).",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- pytorch-optimizer: Adan

ADAN_WEIGHT_DECOUPLE = common.flag("weight_decouple", "decay θ·(1 − lr·λ) before the step (the reference code's "
                                   "no_prox=True); False (the default): the proximal θ/(1 + lr·λ) after it")


def pytorch_optimizer_adan_rule(f: dict) -> list:
    """pytorch_optimizer.Adan (its foreach path, the default on the CPU for real tensors, and its per-parameter
    path: the same ops): the spec's statements with m and v as lerps, −g_prev kept as ``previous_grad``, the decay
    skipped for λ = 0 and chosen by weight_decouple."""
    a = _adan
    out = []
    for st in a.ADAN.rule({"no_prox": f["weight_decouple"]}):
        if st.target == a.m:
            st = Assign(a.m, common.lerp(a.m, g, 1 - a.beta1), "exp_avg.lerp_(grad, 1 − β₁)")
        elif st.target == a.v:
            st = Assign(a.v, common.lerp(a.v, a.diff, 1 - a.beta2), "exp_avg_diff.lerp_(grad_diff, 1 − β₂)")
        out.append(st)
    return out


ADAN_PYTORCH_OPTIMIZER = _adan.ADAN.variant(
    "adan@pytorch-optimizer", dialect=PYTORCH_OPTIMIZER, title="Adan (pytorch-optimizer)",
    rule=pytorch_optimizer_adan_rule,
    hyperparameters=(_adan.LR, _adan.BETA1, _adan.BETA2,
                     _hp(_adan.BETA3, domain=CLOSED_UNIT, doc="decay of n (betas[2]); validated in [0, 1], β₃ = 1 "
                         "accepted (1 − β₃ᵗ = 0: the root is divided by 0)", fuzz=_adan.BETA3.domain,
                         fuzz_why="β₃ = 1 divides √n by √(1 − 1ᵗ) = 0: NaN or inf from the first step"),
                     _adan.EPS, _hp(_adan.WD, doc="weight decay (validated ≥ 0); its form set by weight_decouple"),
                     ADAN_WEIGHT_DECOUPLE),
    state=(_adan.ADAN.state[0], *_adan.ADAN.state[1:4],
           State("previous_grad", sp.Integer(0), "−g_prev (set to −g at the first step before it is read)",
                 latex="p")),
    doc="pytorch_optimizer.Adan (4.1.0): the reference code's update (spec/adan.py) with m and v as lerps "
        "(m + (1 − β)·(x − m): the same exact values as the weighted sums), −g_prev kept as previous_grad, the "
        "decay skipped for λ = 0 and weight_decouple in place of no_prox.  It counts t per group, as the "
        "reference code does (not part of this dialect: docs/measured/third-party.md); its maximize is per "
        "optimizer and negates p.grad in place; max_grad_norm, use_gc and adanorm are not covered.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- pytorch-optimizer: LAMB

#: pytorch_optimizer.Lamb's class attribute ``clamp``: ‖θ‖ is clamped to at most this before the trust ratio
PO_LAMB_CLAMP = 10
_rd = sp.Symbol("d_inv", real=True)  # 1/(√v + ε), formed by the foreach path before it multiplies m
_step_size = sp.Symbol("s", real=True)  # the step size, a Python float: lr/(1 − β₁ᵗ), or lr
LAMB_WEIGHT_DECOUPLE = common.flag(
    "weight_decouple", "θ ← θ·(1 − λ·lr) before ‖θ‖ is taken, outside the trust ratio (the default); False: "
    "λ·θ added to u, inside it (the paper's and the spec's form)", default=True)
GRAD_AVERAGING = common.flag("grad_averaging", "m ← β₁·m + (1 − β₁)·g (the default); False: m ← β₁·m + g",
                             default=True)
ADAM_FLAG = common.flag("adam", "trust ratio 1: the step is Adam's (without √(1 − β₂ᵗ))")
ADAM_DEBIAS = common.flag("adam_debias", "the step size lr, not lr/(1 − β₁ᵗ) (through **kwargs; default False)")


def pytorch_optimizer_lamb_rule(f: dict) -> list:
    """pytorch_optimizer.Lamb's foreach path (the default on the CPU for real tensors; rectify and adanorm turn it
    off): decay, moments, u = m·(1/(√v + ε)), the trust ratio of the clamped ‖θ‖, θ − (lr/(1 − β₁ᵗ))·(r·u)."""
    la = _lamb
    eta, lam = la.eta, la.lam
    if f["weight_decouple"]:
        decay = [Assign(theta, unless_zero(lam, theta * (1 - lam * (1 if f["fixed_decay"] else eta)), theta),
                        "apply_weight_decay_foreach: p.mul_(1 − λ·(1 if fixed_decay else lr)); skipped for λ = 0")]
        l2 = []
    else:
        decay = []
        l2 = [Assign(la.u, when(lam > 0, la.u + lam * theta, la.u),
                     "``if not weight_decouple and weight_decay > 0``: u + λ·θ (the paper's place for the decay)")]
    weight = 1 - la.beta1 if f["grad_averaging"] else 1
    step = eta if f["adam_debias"] else eta / (1 - la.beta1 ** t)
    scale = [] if f["adam"] else [Assign(la.u, la.r * la.u, "_foreach_mul_(updates, trust_ratios)")]
    return [
        *decay,
        Assign(la.m, la.beta1 * la.m + weight * g,
               "exp_avg·β₁, then + β₃·g with β₃ = 1 − β₁ (grad_averaging) or 1"),
        Assign(la.v, la.beta2 * la.v + (1 - la.beta2) * g ** 2, "exp_avg_sq·β₂ + (1 − β₂)·g² (addcmul)"),
        Assign(_rd, 1 / (sp.sqrt(la.v) + la.eps), "reciprocal of √v + ε: no bias correction of v"),
        Assign(la.u, _rd * la.m, "updates = (1/(√v + ε))·m"),
        *l2,
        Assign(la.w, Norm(theta), "‖θ‖₂ of the decayed θ"),
        Assign(la.w, when(la.w > PO_LAMB_CLAMP, PO_LAMB_CLAMP, la.w),
               "clamp_(max=10) (the class attribute ``clamp``; NaN stays NaN)"),
        Assign(la.q, Norm(la.u), "‖u‖₂"),
        Assign(la.r, sp.Piecewise((1, sp.Or(sp.Eq(la.w, 0), sp.Eq(la.q, 0))), (la.w / (la.q + la.eps), True)),
               "where((w ≠ 0) & (q ≠ 0), w/(q + ε), 1): ε added to ‖u‖"),
        *scale,
        Assign(_step_size, step, "step_size = lr/bias_correction1 (apply_adam_debias; adam_debias: lr)"),
        Assign(theta, theta - _step_size * la.u, "_foreach_add_(params, updates, alpha=−step_size)"),
    ]


LAMB_PYTORCH_OPTIMIZER = _lamb.LAMB.variant(
    "lamb@pytorch-optimizer", dialect=PYTORCH_OPTIMIZER, title="LAMB (pytorch-optimizer)",
    rule=pytorch_optimizer_lamb_rule,
    hyperparameters=(_lamb.LR, _lamb.BETA1, _lamb.BETA2, _lamb.EPS,
                     _hp(_lamb.WD, doc="weight decay (validated ≥ 0); its form set by weight_decouple and "
                         "fixed_decay"),
                     LAMB_WEIGHT_DECOUPLE, FIXED_DECAY, GRAD_AVERAGING, ADAM_FLAG, ADAM_DEBIAS),
    doc="pytorch_optimizer.Lamb (4.1.0), its default configuration: the paper's moments without bias correction "
        "of v, u = m/(√v + ε), the decay θ·(1 − λ·lr) applied before the norms and outside the trust ratio, "
        "r = min(‖θ‖, 10)/(‖u‖ + ε) (1 where either norm is 0), and the step θ − (lr/(1 − β₁ᵗ))·r·u: the "
        "first moment's bias correction scales the step after the trust ratio, so it is not cancelled by it "
        "(the docstring says \"without bias correction\").  Not covered: rectify, degenerated_to_sgd, n_sma_threshold "
        "(a RAdam-like update on its per-parameter path), pre_norm and max_grad_norm (a clip by the global "
        "norm over every group), adanorm, maximize (per optimizer), foreach=False (u = m/(√v + ε) and "
        "θ − (s·r)·u: the same exact values).",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- timm: LAMB (NVIDIA's FusedLAMB form)

TIMM_BIAS_CORRECTION = common.flag("bias_correction", "m/(1 − β₁ᵗ) and √v/√(1 − β₂ᵗ) (the default); False: "
                                   "neither", default=True)
TRUST_CLIP = common.flag("trust_clip", "LAMBC: the trust ratio clamped to at most 1 (torch.clamp: NaN stays NaN)")
ALWAYS_ADAPT = common.flag("always_adapt", "the trust ratio also where λ = 0 (by default a tensor with λ = 0 takes "
                           "the plain Adam step)")
DECOUPLED_DECAY = common.flag("decoupled_decay", "θ ← θ + (−lr·λ)·θ before ‖θ‖ is taken, outside the trust ratio; "
                              "False (the default): λ·θ added to u, inside it (the paper's and the spec's form)")
_tu = sp.Symbol("d_timm", real=True)  # the denominator √v/√(1 − β₂ᵗ) + ε, a tensor of its own


def timm_lamb_rule(f: dict) -> list:
    """timm.optim.Lamb.step (1.0.29) with max_grad_norm=None, statement for statement: the moments, the
    denominator √v/√bc₂ + ε, u = (m/bc₁)/denominator, λ·θ into u (or θ decayed first), and the trust ratio only
    where λ ≠ 0 or always_adapt."""
    la = _lamb
    eta, lam = la.eta, la.lam
    bc1, bc2 = (_bias(la.beta1), _bias(la.beta2)) if f["bias_correction"] else (1, 1)
    weight = 1 - la.beta1 if f["grad_averaging"] else 1
    if f["decoupled_decay"]:
        decay = [Assign(theta, unless_zero(lam, theta + (-eta * lam) * theta, theta),
                        "_add_scaled_(p, p, −lr·λ): θ + (−lr·λ)·θ, for λ ≠ 0")]
        l2 = []
    else:
        decay = []
        l2 = [Assign(la.u, unless_zero(lam, la.u + lam * theta, la.u), "update.add_(p, alpha=λ), for λ ≠ 0")]
    both = sp.And(la.w > 0, la.q > 0, la.w <= la.q) if f["trust_clip"] else sp.And(la.w > 0, la.q > 0)
    trust = [
        Assign(la.w, Norm(theta), "p.norm(2.0), after a decoupled decay"),
        Assign(la.q, Norm(la.u), "update.norm(2.0)"),
        Assign(la.r, sp.Piecewise((la.w / la.q, both), (1, True)),
               "where(w > 0, where(q > 0, w/q, 1), 1)" + (
                   "; trust_clip: clamp(max=1.0), written as w ≤ q (the same values: w/q ≥ 1 exactly where w ≥ q, "
                   "and ∞/∞ is NaN either way)" if f["trust_clip"] else "")),
        Assign(la.u, la.r * la.u if f["always_adapt"] else unless_zero(lam, la.r * la.u, la.u),
               "update.mul_(trust_ratio)" + ("" if f["always_adapt"] else ", ``if weight_decay != 0``")),
    ]
    return [
        Assign(la.m, la.beta1 * la.m + weight * g, "exp_avg.mul_(β₁).add_(grad, alpha=β₃): β₃ = 1 − β₁ or 1"),
        Assign(la.v, la.beta2 * la.v + (1 - la.beta2) * g * g, "exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1 − β₂)"),
        Assign(_tu, sp.sqrt(la.v) / sp.sqrt(bc2) + la.eps, "(exp_avg_sq.sqrt() / bc₂**0.5).add_(eps)"),
        Assign(la.u, (la.m / bc1) / _tu, "(exp_avg / bc₁).div_(denom)"),
        *decay,
        *l2,
        *trust,
        Assign(theta, theta + (-eta) * la.u, "_add_scaled_(p, update, −lr)"),
    ]


LAMB_TIMM = _lamb.LAMB.variant(
    "lamb@timm", dialect=TIMM, title="LAMB (timm)", rule=timm_lamb_rule,
    hyperparameters=(_lamb.LR, _lamb.BETA1, _lamb.BETA2, _lamb.EPS,
                     _hp(_lamb.WD, default=0.01, doc="λ: λ·θ added to u (or, decoupled_decay, θ decayed by lr·λ); "
                         "λ = 0 also turns the trust ratio off unless always_adapt"),
                     TIMM_BIAS_CORRECTION, GRAD_AVERAGING, TRUST_CLIP, ALWAYS_ADAPT, DECOUPLED_DECAY),
    doc="timm.optim.Lamb (1.0.29), NVIDIA's FusedLAMB form, with max_grad_norm=None: the moments with bias "
        "correction of both, u = (m/bc₁)/(√v/√bc₂ + ε) + λθ, the trust ratio ‖θ‖/‖u‖ (1 where either is 0) only "
        "where λ ≠ 0 or always_adapt, θ ← θ − lr·(r·u).  With its default λ = 0.01 it is the spec's statements in "
        "another evaluation order; with λ = 0 the trust ratio is skipped (the plain Adam step), where the paper "
        "and the spec apply it.  Not covered: max_grad_norm (default 1.0: every gradient divided, in place, by "
        "max(1, ‖g‖/max_grad_norm) over all groups; audited with None), caution, corrected_weight_decay.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- adan-pytorch (lucidrains): Adan

# adan-pytorch's temporaries: its bias-correction factors, lr/(…) as reciprocal and product, the update's two terms;
# and +g_prev (the reference code keeps −g_prev), a state of its own
_AP = {name: sp.Symbol(name, real=True) for name in ("c_m", "c_v", "c_n", "r", "w", "s", "s_v")}
_G_PREV = sp.Symbol("g_prev", real=True)


def adan_pytorch_rule(f: dict) -> list:
    """adan_pytorch.Adan.step (0.1.0), statement for statement: the paper's β convention (the new term weighted by
    β), no moment update at a parameter's first step, bias corrections 1/(1 − (1 − β)ᵗ) with that first step
    counted, the proximal decay after every step."""
    a, x = _adan, _AP
    b1, b2, b3 = a.beta1, a.beta2, a.beta3
    first = sp.Eq(t, 1)
    return [
        Assign(a.m, when(first, a.m, (1 - b1) * a.m + b1 * g), "step > 0: m.mul_(1 − β₁).add_(grad, alpha=β₁)"),
        Assign(a.diff, g - _G_PREV, "grad_diff = grad − prev_grad"),
        Assign(a.v, when(first, a.v, (1 - b2) * a.v + b2 * a.diff), "v.mul_(1 − β₂).add_(grad_diff, alpha=β₂)"),
        Assign(a.u, g + (1 - b2) * a.diff, "grad + (1 − β₂)·grad_diff"),
        Assign(a.n, when(first, a.n, (1 - b3) * a.n + b3 * a.u * a.u),
               "next_n = (…)**2; n.mul_(1 − β₃).add_(next_n, alpha=β₃)"),
        Assign(x["c_m"], 1 / (1 - (1 - b1) ** t), "correct_m = 1 / (1 − (1 − β₁)**step), the first step counted"),
        Assign(x["c_v"], 1 / (1 - (1 - b2) ** t), "correct_v"),
        Assign(x["c_n"], 1 / (1 - (1 - b3) ** t), "correct_n"),
        Assign(a.denom, sp.sqrt(a.n * x["c_n"]) + a.eps, "(n * correct_n).sqrt().add_(eps)"),
        Assign(x["r"], 1 / a.denom, "lr / tensor is tensor.reciprocal() * lr (Tensor.__rtruediv__)"),
        Assign(x["w"], x["r"] * a.eta, "weighted_step_size"),
        Assign(x["s"], a.m * x["c_m"], "m * correct_m"),
        Assign(x["s_v"], (1 - b2) * a.v, "(1 − β₂) * v"),
        Assign(x["s_v"], x["s_v"] * x["c_v"], "… * correct_v"),
        Assign(x["s"], x["s"] + x["s_v"], "m·c_m + (1 − β₂)·v·c_v"),
        Assign(theta, theta - x["w"] * x["s"], "data.addcmul_(weighted_step_size, …, value=−1)"),
        Assign(theta, theta / (1 + a.lam * a.eta), ".div_(1 + weight_decay·lr), also for λ = 0 (by 1: exact)"),
        Assign(_G_PREV, g, "prev_grad.copy_(grad)"),
    ]


_PAPER_BETA = Interval(0.0, 1.0, False, True)  # β = 0: 1/(1 − (1 − 0)ᵗ) is 1/0, a ZeroDivisionError

ADAN_ADAN_PYTORCH = _adan.ADAN.variant(
    "adan@adan-pytorch", dialect=ADAN_PYTORCH, title="Adan (adan-pytorch, lucidrains)",
    rule=adan_pytorch_rule,
    hyperparameters=(_adan.LR,
                     _hp(_adan.BETA1, default=0.02, domain=_PAPER_BETA, doc="weight of g in m (betas[0]; the "
                         "paper's β₁, the spec's 1 − β₁; not validated: β = 0 raises ZeroDivisionError in the bias "
                         "correction)"),
                     _hp(_adan.BETA2, default=0.08, domain=_PAPER_BETA, doc="weight of g − g_prev in v (betas[1]; "
                         "the paper's β₂, the spec's 1 − β₂; not validated)"),
                     _hp(_adan.BETA3, default=0.01, domain=_PAPER_BETA, doc="weight of the new square in n "
                         "(betas[2]; the paper's β₃; not validated)"),
                     _adan.EPS, _hp(_adan.WD, doc="proximal decay θ/(1 + λ·lr) after every step (not validated)")),
    state=(_adan.ADAN.state[0],
           State("m", sp.Integer(0), "average of the gradient (not updated at the first step)", latex="m"),
           State("v", sp.Integer(0), "average of g − g_prev", latex="v"),
           State("n", sp.Integer(0), "average of (g + (1 − β₂)(g − g_prev))²", latex="n"),
           State("prev_grad", sp.Integer(0), "g_prev (0 before the first step)", latex="g_prev")),
    doc="adan_pytorch.Adan (0.1.0, lucidrains): the paper's β convention (β₁ = 0.02: m ← (1 − β₁)·m + β₁·g), the "
        "moments left at 0 at a parameter's first step (which therefore moves θ only by the decay), and bias "
        "corrections 1/(1 − (1 − β)ᵗ) whose t counts that first step: after t steps the moments hold t − 1 "
        "updates.  restart_cond (a callable per group) is not covered.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- pytorch-optimizer: AdEMAMix

PO_T = Hyperparameter("t_alpha_beta3", 0.0, NONNEGATIVE, "T: one warm-up length for both α and β₃ (validated ≥ 0); "
                      "0 means its None, no warm-up (a T of 0 given as 0 raises ZeroDivisionError at step(): "
                      "docs/measured/third-party.md)", latex="T", zero_means_none=True,
                      fuzz=_ademamix.WARMUP_FUZZ, fuzz_why=_ademamix.WARMUP_WHY)
PO_WEIGHT_DECOUPLE = common.flag("weight_decouple", "decoupled decay θ ← θ·(1 − λ·lr); False (the default): L2, "
                                 "g ← g + λθ in place on the caller's gradient")
_PO_LOG_WHY = ("with a warm-up, math.log(β) of β₁ = 0 or β₃ = 0 raises ValueError (docs/measured/third-party.md): "
               "β = 0 is drawn only above 0")
_T = PO_T.symbol


def pytorch_optimizer_ademamix_rule(f: dict) -> list:
    """pytorch_optimizer.AdEMAMix's per-parameter path (its foreach path: the same ops over lists)."""
    a = _ademamix
    decay = _pytorch_optimizer_decay(f, a.lam, a.eta, "; skipped for λ = 0")
    ramp = t / _T
    ln1, ln3 = sp.log(a.beta1), sp.log(a.beta3)
    return [
        Assign(a.bc1, 1 - a.beta1 ** t, "debias(β₁, step), with the group's step"),
        Assign(a.bc2, 1 - a.beta2 ** t, "debias(β₂, step); its square root divides √ν"),
        Assign(a.alpha_t, when(sp.Eq(_T, 0), a.alpha, sp.Min(t * a.alpha / _T, a.alpha)),
               "schedule_alpha: min(step·α/T, α)"),
        Assign(a.beta3_t, when(sp.Eq(_T, 0), a.beta3,
                               sp.Min(sp.exp(ln1 * ln3 / ((1 - ramp) * ln3 + ramp * ln1)), a.beta3)),
               "schedule_beta3: the paper's min(exp(ln β₁·ln β₃/((1 − t/T)·ln β₃ + (t/T)·ln β₁)), β₃)"),
        *decay,
        Assign(a.m1, common.lerp(a.m1, g, 1 - a.beta1), "exp_avg.lerp_(grad, 1 − β₁)"),
        Assign(a.nu, a.beta2 * a.nu + (1 - a.beta2) * g * g, "exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1 − β₂)"),
        Assign(a.m2, common.lerp(a.m2, g, 1 - a.beta3_t), "exp_avg_slow.lerp_(grad, 1 − β₃(t))"),
        Assign(a.denom, sp.sqrt(a.nu) / sp.sqrt(a.bc2) + a.eps, "exp_avg_sq.sqrt().div_(√bc₂).add_(ε)"),
        Assign(a.u, a.m1 / a.bc1 + a.alpha_t * a.m2, "exp_avg.div(bc₁).add_(exp_avg_slow, alpha=α(t))"),
        Assign(theta, theta - a.eta * a.u / a.denom,
               "p.addcdiv_(u, d, value=−lr) (float16/bfloat16: u.div_(d), then p.add_(u, alpha=−lr))"),
    ]


ADEMAMIX_PYTORCH_OPTIMIZER = _ademamix.ADEMAMIX.variant(
    "ademamix@pytorch-optimizer", dialect=PYTORCH_OPTIMIZER, title="AdEMAMix (pytorch-optimizer)",
    rule=pytorch_optimizer_ademamix_rule,
    hyperparameters=(_ademamix.LR,
                     _hp(_ademamix.BETA1, domain=_ademamix.BETA1.domain, fuzz=_hp_open_unit(), fuzz_why=_PO_LOG_WHY),
                     _ademamix.BETA2,
                     _hp(_ademamix.BETA3, domain=CLOSED_UNIT, fuzz=_hp_open_unit(closed_hi=True),
                         fuzz_why=_PO_LOG_WHY, doc="decay of the slow moment after its warm-up (betas[2]; "
                         "validated in [0, 1], β₃ = 1 included)"),
                     _hp(_ademamix.ALPHA, default=5.0),
                     PO_T, _ademamix.EPS,
                     _hp(_ademamix.WD, doc="weight decay coefficient (validated ≥ 0); its form set by the two flags"),
                     PO_WEIGHT_DECOUPLE, FIXED_DECAY),
    state=(_ademamix.STEP,
           State("exp_avg", sp.Integer(0), "fast first moment m₁", latex="m_1"),
           State("exp_avg_slow", sp.Integer(0), "slow first moment m₂", latex="m_2"),
           State("exp_avg_sq", sp.Integer(0), "second moment ν", latex="nu")),
    doc="pytorch_optimizer.AdEMAMix (4.1.0): the spec's moments and step with m₁ and m₂ as lerps, one warm-up "
        "length T for both α and β₃ with the paper's formulas (min(t·α/T, α), and β₃(t) = min(exp(ln β₁·ln β₃/"
        "((1 − t/T)·ln β₃ + (t/T)·ln β₁)), β₃), without the reference code's 10⁻⁸), α = 5 by default, and "
        "weight decay by flags: weight_decouple=False (the default) adds λθ to g (L2, through the moments), "
        "weight_decouple=True decays θ·(1 − λ·lr) first, fixed_decay θ·(1 − λ).  None of them is the reference "
        "code's θ − η·(u + λθ) for λ > 0.  Its step counter is per group and its maximize per optimizer: not "
        "part of this dialect (docs/measured/third-party.md).",
    torch_class="", paths_doc="", edge_doc="")

# --------------------------------------------------------------------------- Schedule-Free AdamW

_SF_NO_X = tuple(s for s in _sf.SCHEDULEFREE_ADAMW.state if s.name != "x")

SCHEDULEFREE_ADAMW_Y = _sf.SCHEDULEFREE_ADAMW.variant(
    "schedulefree_adamw@schedulefree", dialect=SCHEDULEFREE, title="Schedule-Free AdamW, y form (AdamWScheduleFree)",
    rule=_sf.y_form_rule, state=_SF_NO_X,
    doc="schedulefree.AdamWScheduleFree (1.4.1), the class the library's users run: the parameter holds y and is "
        "updated in place, x is not stored.  u = g/(√(v/bc₂) + ε) + λ·y (written into p.grad); "
        "y ← lerp(y, z, c) + γ_t·(β₁·(1 − c) − 1)·u; z ← z − γ_t·u.  With y = β₁·x + (1 − β₁)·z this is the "
        "reference form's step in exact arithmetic (spec/identities.py: schedulefree_y_form_is_reference_form); "
        "it rounds differently (the decay enters z through u, after the division, not before it).",
    torch_class="", paths_doc="", edge_doc="")

#: pytorch-optimizer's apply_ams_bound adds exp_avg_sq_eps = 1e-15 to v/bc₂ inside the root; not an argument
PYTORCH_OPTIMIZER_EPS_ROOT = py_float(1e-15)

_PO_BETA1 = _hp(_sf.BETA1, domain=Interval(0.0, 1.0, False, False),
                doc="weight of x in y (betas[0]; validated in the open interval (0, 1))")

SCHEDULEFREE_ADAMW_PYTORCH_OPTIMIZER = _sf.SCHEDULEFREE_ADAMW.variant(
    "schedulefree_adamw@pytorch-optimizer", dialect=PYTORCH_OPTIMIZER,
    title="Schedule-Free AdamW (pytorch-optimizer)",
    rule=lambda f: _sf.y_form_rule(f, eps_root=PYTORCH_OPTIMIZER_EPS_ROOT), state=_SF_NO_X,
    hyperparameters=(_sf.LR, _PO_BETA1, _sf.BETA2, _sf.EPS, _sf.WD, _sf.WARMUP, _sf.R),
    doc="pytorch_optimizer.ScheduleFreeAdamW (4.1.0): schedulefree's y form with 1e-15 added to v/bc₂ inside the "
        "root (BaseOptimizer.apply_ams_bound's exp_avg_sq_eps, not an argument): d = √(v/bc₂ + 10⁻¹⁵) + ε.  β₁ is "
        "validated in (0, 1).  Not covered: maximize (per optimizer), decoupling_c, ams_bound, use_palm.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- Schedule-Free SGD

SCHEDULEFREE_SGD_Y = _sfsgd.SCHEDULEFREE_SGD.variant(
    "schedulefree_sgd@schedulefree", dialect=SCHEDULEFREE, title="Schedule-Free SGD, y form (SGDScheduleFree)",
    rule=_sfsgd.y_form_rule, state=tuple(s for s in _sfsgd.SCHEDULEFREE_SGD.state if s.name != "x"),
    doc="schedulefree.SGDScheduleFree (1.4.1), the class the library's users run: the parameter holds y and is "
        "updated in place, x is not stored.  u = g + λ·y (written into p.grad); y ← lerp(y, z, c) + "
        "γ_t·(β·(1 − c) − 1)·u; z ← z − γ_t·u.  With y = β·x + (1 − β)·z this is the reference form's step in "
        "exact arithmetic (spec/identities.py: schedulefree_sgd_y_form_is_reference_form); it rounds differently "
        "(no x: y is moved, not recomputed).  pytorch_optimizer.ScheduleFreeSGD (4.1.0) runs the same statements "
        "(its warm-up t/W while t < W is the same numbers) and is audited against this dialect.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- Optax: Lion, Adan, AdEMAMix, Schedule-Free

_OPTAX_WD_ADDED = ("add_decayed_weights: λ·θ (the old θ) added to the update, which lr then scales; skipped for a "
                   "constant λ = 0")
sgn = sp.Symbol("sgn", real=True)


def jnp_sign(x):
    """``jnp.sign(x)``: 1 if x > 0, −1 if x < 0, 0 if x = ±0, NaN for NaN (torch's sign, spec/lion.py, gives 0 for
    NaN).  jnp.sign(−0.0) is −0.0; the spec's 0 differs from it only in the sign of a zero θ (θ = −0, λ = 0)."""
    # the last piece is reached by NaN only (every comparison with it is false)
    return sp.Piecewise((1, x > 0), (-1, x < 0), (0, sp.Eq(x, 0)), (x, True))


def optax_lion_rule(f: dict) -> list:
    lo = _lion
    return [
        Assign(lo.c, (1 - lo.beta1) * g + lo.beta1 * lo.m, "scale_by_lion: (1 − b1)·g + b1·m, with the old m"),
        Assign(sgn, jnp_sign(lo.c), "jnp.sign(c): ±1, or c itself (±0, NaN)"),
        Assign(upd, unless_zero(lo.lam, sgn + lo.lam * theta, sgn), _OPTAX_WD_ADDED),
        Assign(theta, theta - lo.eta * upd, "scale_by_learning_rate: −lr·u; apply_updates adds it"),
        Assign(lo.m, (1 - lo.beta2) * g + lo.beta2 * lo.m, "update_moment: (1 − b2)·g + b2·m, after the step"),
    ]


LION_OPTAX = _lion.LION.variant(
    "lion@optax", dialect=OPTAX, title="Lion (Optax)", rule=optax_lion_rule,
    hyperparameters=(_hp(_lion.LR, default=REQUIRED), _lion.BETA1, _lion.BETA2,
                     _hp(_lion.WD, default=1e-3, doc="λ·θ added to sign(c) before lr scales it (Optax: "
                         "weight_decay, default 1e-3; 0 skips add_decayed_weights)")),
    doc="optax.lion = chain(scale_by_lion(b1, b2), add_decayed_weights(λ), scale_by_learning_rate): "
        "θ ← θ − lr·(sign(c) + λθ), the paper's Algorithm 2 order, not the reference code's θ·(1 − lr·λ) first "
        "(the same exact value: spec/identities.py, lion_paper_order_is_reference_order).  jnp.sign(NaN) is NaN, "
        "so a NaN c makes θ NaN where torch's sign (the spec's) leaves θ at its decayed value.  λ = 1e-3 by "
        "default (the spec's 0).  mu_dtype (the momentum's dtype) is not covered: None, the parameter's dtype.",
    torch_class="", paths_doc="", edge_doc="")

ADAN_EPS_ROOT = _hp(EPS_ROOT, default=1e-8, doc="added to the bias-corrected n inside the square root "
                    "(optax.adan's default 1e-8; scale_by_adan's 0)")
prev_grad = sp.Symbol("g_prev", real=True)
sq = sp.Symbol("q", real=True)


def optax_adan_rule(f: dict) -> list:
    a = _adan
    return [
        Assign(a.diff, when(sp.Eq(t, 1), 0, g - prev_grad),
               "where(count == 0, 0, g − g_prev): 0 at the first step, even for an infinite g"),
        Assign(a.m, (1 - a.beta1) * g + a.beta1 * a.m, "update_moment(g, m, b1): (1 − b1)·g + b1·m"),
        Assign(a.v, (1 - a.beta2) * a.diff + a.beta2 * a.v, "update_moment(diff, v, b2)"),
        Assign(sq, g + (1 - a.beta2) * a.diff, "add_scale(g, 1 − b2, diff): g + (1 − b2)·(g − g_prev), where "
               "the reference code has b2·(g − g_prev)"),
        Assign(a.n, (1 - a.beta3) * sq ** 2 + a.beta3 * a.n, "update_moment_per_elem_norm(q, n, b3, 2)"),
        Assign(upd, (a.m / _bias(a.beta1) + (1 - a.beta2) * (a.v / _bias(a.beta2)))
               / (sp.sqrt(a.n / _bias(a.beta3) + EPS_ROOT.symbol) + a.eps),
               "(m̂ + (1 − b2)·v̂)/(√(n̂ + ε_root) + ε), each moment divided by its 1 − bᵗ (bias_correction); "
               "the reference code weighs v̂ by b2"),
        Assign(upd, unless_zero(a.lam, upd + a.lam * theta, upd), _OPTAX_WD_ADDED),
        Assign(theta, theta - a.eta * upd, "−lr·u; apply_updates adds it"),
        Assign(prev_grad, g, "state g ← g"),
    ]


ADAN_OPTAX = _adan.ADAN.variant(
    "adan@optax", dialect=OPTAX, title="Adan (Optax)", rule=optax_adan_rule,
    hyperparameters=(_hp(_adan.LR, default=REQUIRED), _adan.BETA1, _adan.BETA2, _adan.BETA3, _adan.EPS,
                     ADAN_EPS_ROOT,
                     _hp(_adan.WD, doc="λ·θ added to the update, which lr then scales (add_decayed_weights): the "
                         "reference code's no_prox form θ·(1 − lr·λ) − lr·u in exact arithmetic, not the proximal "
                         "θ/(1 + lr·λ) that Optax's docstring writes")),
    state=(STEP,
           State("exp_avg", sp.Integer(0), "Optax: m", latex="m"),
           State("exp_avg_diff", sp.Integer(0), "Optax: v (average of g − g_prev)", latex="v"),
           State("exp_avg_sq", sp.Integer(0), "Optax: n (average of (g + (1 − b2)·(g − g_prev))²)", latex="n"),
           State("prev_grad", sp.Integer(0), "Optax: g, the previous gradient (0 before the first step)",
                 latex="g_prev")),
    doc="optax.adan = chain(scale_by_adan(b1, b2, b3, ε, ε_root), add_decayed_weights(λ), scale_by_learning_rate). "
        "The moments are the reference code's (b the weight of the old value, defaults 0.98, 0.92, 0.99), but the "
        "gradient difference is weighted by 1 − b2 (0.08) in n's argument and in the step, where the reference "
        "code (and the paper's 1 − β₂ under β = 1 − b) weighs it by b2 (0.92): the paper's formula applied to the "
        "code's β (optax PR #1715, open).  ε_root = 1e-8 inside the root by default; the decay is added to the "
        "update (decoupled, before lr), not the docstring's proximal division.",
    torch_class="", paths_doc="", edge_doc="")


def optax_ademamix_rule(f: dict) -> list:
    a = _ademamix
    return [
        Assign(a.m1, (1 - a.beta1) * g + a.beta1 * a.m1, "update_moment(g, m1, b1): no branch for b1 = 0"),
        Assign(a.m2, (1 - a.beta3) * g + a.beta3 * a.m2, "update_moment(g, m2, b3), not bias-corrected"),
        Assign(a.nu, (1 - a.beta2) * g ** 2 + a.beta2 * a.nu, "update_moment_per_elem_norm(g, nu, b2, 2)"),
        Assign(upd, (a.m1 / _bias(a.beta1) + a.alpha * a.m2) / (sp.sqrt(a.nu / _bias(a.beta2) + EPS_ROOT.symbol)
                                                              + a.eps),
               "(m̂₁ + α·m₂)/(√(ν̂ + ε_root) + ε): ε_root inside the root of the bias-corrected ν"),
        Assign(upd, unless_zero(a.lam, upd + a.lam * theta, upd), _OPTAX_WD_ADDED),
        Assign(theta, theta - a.eta * upd, "−lr·u; apply_updates adds it"),
    ]


ADEMAMIX_OPTAX = _ademamix.ADEMAMIX.variant(
    "ademamix@optax", dialect=OPTAX, title="AdEMAMix (Optax)", rule=optax_ademamix_rule,
    hyperparameters=(_hp(_ademamix.LR, default=REQUIRED), _ademamix.BETA1, _ademamix.BETA2,
                     _hp(_ademamix.BETA3, doc="decay of the slow moment m₂ (b3; a constant here: Optax also takes "
                         "a schedule, read at the count of earlier steps)"),
                     _hp(_ademamix.ALPHA, default=5.0, doc="weight α of the slow moment (a constant here; Optax "
                         "also takes a schedule)"),
                     _ademamix.EPS, EPS_ROOT,
                     _hp(_ademamix.WD, doc="λ·θ added to the update, which lr then scales (add_decayed_weights; "
                         "skipped for λ = 0)")),
    state=(_ademamix.STEP,
           State("exp_avg_fast", sp.Integer(0), "Optax: m1", latex="m_1"),
           State("exp_avg_slow", sp.Integer(0), "Optax: m2", latex="m_2"),
           State("exp_avg_sq", sp.Integer(0), "Optax: nu", latex="nu")),
    doc="optax.contrib.ademamix = chain(scale_by_ademamix(b1, b2, b3, α, ε, ε_root), add_decayed_weights(λ), "
        "scale_by_learning_rate): the spec's update without warm-ups (Optax has no built-in warm-up: b3 and alpha "
        "may be schedules, evaluated at count_m2, the number of earlier steps, 0 at the first; not covered here), "
        "with √(ν/(1 − β₂ᵗ) + ε_root) + ε for the spec's √ν/√(1 − β₂ᵗ) + ε (equal for ε_root = 0, rounded "
        "differently), no β₁ = 0 branch (m₁ = 1·g + 0·m₁), the decay skipped for λ = 0, and α = 5 by default "
        "(the reference code's 2; scale_by_ademamix's own default is 6).  mu_dtype is not covered (None).",
    torch_class="", paths_doc="", edge_doc="")

x_prev = sp.Symbol("x_prev", real=True)
sf_lr_base = sp.Symbol("gamma_base", real=True)
sf_frac = sp.Symbol("f_t", real=True)
sf_frac_base = sp.Symbol("f_base", real=True)
sf_recip = sp.Symbol("r_d", real=True)
y_next = sp.Symbol("y_next", real=True)


def _optax_warmup_fraction(step) -> sp.Expr:
    """1 − min(step, W)/W of warmup_constant_schedule (linear_schedule: (0 − lr)·frac + lr), 0 without a warm-up."""
    return when(step < _sf.warm, 1 - step / _sf.warm, 0)


def optax_schedulefree_adamw_rule(f: dict) -> list:
    s = _sf
    return [
        Assign(s.z, when(sp.Eq(t, 1), theta, s.z), "z: a copy of the parameters at init"),
        Assign(sf_frac, _optax_warmup_fraction(t), "the weights' schedule is read at step_count, which starts at 1"),
        Assign(s.lr_t, -s.eta * sf_frac + s.eta, "γ_t = (0 − lr)·frac + lr (lr itself without warmup_steps)"),
        Assign(sf_frac_base, _optax_warmup_fraction(t - 1),
               "the base optimizer's scale_by_learning_rate reads the same schedule at its own count, from 0"),
        Assign(sf_lr_base, -s.eta * sf_frac_base + s.eta, "γ′_t: the z step's lr, γ at t − 1 (0 at the first step "
               "with a warm-up)"),
        Assign(s.lrmax, sp.Max(s.lr_t, s.lrmax), "max_lr = maximum(max_lr, γ_t), starting at 0"),
        Assign(s.weight, s.lrmax ** 2, "weight = max_lr ** weight_lr_power (2; no tʳ factor)"),
        Assign(s.wsum, s.wsum + s.weight, "weight_sum + weight"),
        Assign(s.ck, when(sp.Eq(s.wsum, 0), 0, s.weight / s.wsum), "c = nan_to_num(weight/weight_sum): 0 for 0/0"),
        Assign(s.v, (1 - s.beta2) * g ** 2 + s.beta2 * s.v, "scale_by_rms: nu ← (1 − b2)·g² + b2·nu"),
        Assign(s.denom, sp.sqrt(s.v / (1 - s.beta2 ** t)) + s.eps, "√(nu/(1 − b2ᵗ)) + ε (eps_in_sqrt=False, "
               "bias_correction=True)"),
        Assign(sf_recip, 1 / s.denom, "scaling = 1/(√ν̂ + ε), a reciprocal"),
        Assign(s.gn, sf_recip * g, "u = scaling·g"),
        Assign(s.gn, unless_zero(s.lam, s.gn + s.lam * theta, s.gn), "add_decayed_weights at y (the parameter)"),
        Assign(x_prev, (theta - (1 - s.beta1) * s.z) / s.beta1, "x recomputed from y and the old z: "
               "(y − (1 − b1)·z)/b1"),
        Assign(s.z, s.z - sf_lr_base * s.gn, "z + (−γ′_t·u)"),
        Assign(s.x, (1 - s.ck) * x_prev + s.ck * s.z, "x = (1 − c)·x_prev + c·z"),
        Assign(y_next, s.beta1 * s.x + (1 - s.beta1) * s.z, "y = b1·x + (1 − b1)·z"),
        Assign(upd, y_next - theta, "the update y_next − y"),
        Assign(theta, theta + upd, "apply_updates: y + (y_next − y)"),
    ]


SCHEDULEFREE_ADAMW_OPTAX = _sf.SCHEDULEFREE_ADAMW.variant(
    "schedulefree_adamw@optax", dialect=OPTAX, title="Schedule-Free AdamW (Optax)",
    rule=optax_schedulefree_adamw_rule,
    hyperparameters=(_sf.LR, _hp(_sf.BETA1, domain=Interval(0.0, 1.0, False, True),
                                 doc="weight of x in y (b1; must be > 0: x is recomputed as (y − (1 − b1)·z)/b1)"),
                     _sf.BETA2, _sf.EPS, _hp(_sf.WD, doc="λ·y added to the normalised gradient before lr "
                                            "(add_decayed_weights; skipped for λ = 0)"),
                     _hp(_sf.WARMUP, zero_means_none=True, doc="linear warm-up over W steps (warmup_constant_"
                         "schedule); 0 here means None: Optax's warmup_steps=0 is a constant lr of 0")),
    state=(STEP,
           State("z", sp.Integer(0), "Optax: z, a copy of the parameters at init", latex="z"),
           State("exp_avg_sq", sp.Integer(0), "Optax: base_optimizer_state[0].nu", latex="v"),
           State("weight_sum", sp.Integer(0), "Optax: weight_sum (a scalar of the parameters' dtype)",
                 latex="W_sum"),
           State("lr_max", sp.Integer(0), "Optax: max_lr, starting at 0 (a scalar of the parameters' dtype)",
                 latex="gamma_max")),
    doc="optax.contrib.schedule_free_adamw = schedule_free(chain(scale_by_rms(b2, ε, eps_in_sqrt=False, "
        "bias_correction=True), add_decayed_weights(λ), scale_by_learning_rate(lr)), lr, b1): keeps y (the "
        "parameter) and z, recomputes x = (y − (1 − b1)·z)/b1 at every step, and returns y_next − y.  Without a "
        "warm-up it is schedulefree's y form (AdamWScheduleFree) with r = 0 in exact arithmetic.  With "
        "warmup_steps = W the weights read the schedule at step_count (t, from 1) and the z step at the base "
        "optimizer's count (t − 1, from 0): γ′_t = lr·(t − 1)/W, so the first step does not move z (optax PR #1744, "
        "open).  weight_sum and max_lr are scalars of the parameters' dtype (float16 parameters: float16 "
        "weights).  weight_lr_power = 2 only, no r; state_dtype not covered.",
    torch_class="", paths_doc="", edge_doc="")


def optax_lamb_rule(f: dict) -> list:
    """optax.lamb = chain(scale_by_adam, add_decayed_weights, scale_by_trust_ratio, scale_by_learning_rate)."""
    la = _lamb
    mhat = la.m / _bias(la.beta1)
    vhat = la.v / _bias(la.beta2)
    return [
        Assign(la.m, (1 - la.beta1) * g + la.beta1 * la.m, "update_moment(g, mu, b1, 1): (1 − b1)·g + b1·m"),
        Assign(la.v, (1 - la.beta2) * g ** 2 + la.beta2 * la.v, "update_moment_per_elem_norm(g, nu, b2, 2)"),
        Assign(la.u, mhat / (sp.sqrt(vhat + EPS_ROOT.symbol) + la.eps), "scale_by_adam: m̂/(√(v̂ + ε_root) + ε)"),
        Assign(la.u, unless_zero(la.lam, la.u + la.lam * theta, la.u),
               "add_decayed_weights: u + λ·θ (skipped for a constant λ = 0)"),
        Assign(la.w, Norm(theta), "safe_norm(param, min_norm=0): ‖θ‖₂"),
        Assign(la.q, Norm(la.u), "safe_norm(update, 0): ‖u‖₂"),
        Assign(la.r, sp.Piecewise((1, sp.Or(sp.Eq(la.w, 0), sp.Eq(la.q, 0))), (la.w / la.q, True)),
               "where(w == 0 or q == 0, 1, 1.0·w/(q + 0)): NaN for a NaN norm, where the spec takes 1"),
        Assign(la.u, la.r * la.u, "scale_by_trust_ratio: update·r"),
        Assign(theta, theta - la.eta * la.u, "scale_by_learning_rate: −lr·u; apply_updates adds it"),
    ]


LAMB_OPTAX = _lamb.LAMB.variant(
    "lamb@optax", dialect=OPTAX, title="LAMB (Optax)", rule=optax_lamb_rule,
    hyperparameters=(_hp(_lamb.LR, default=REQUIRED), _lamb.BETA1, _lamb.BETA2, _lamb.EPS,
                     _hp(EPS_ROOT, doc="added to v̂ inside the square root (optax.lamb: eps_root, default 0)"),
                     _hp(_lamb.WD, doc="λ·θ added to the Adam direction before the trust ratio (Optax: "
                         "weight_decay; 0 skips add_decayed_weights)")),
    doc="optax.lamb = chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(λ, mask), "
        "scale_by_trust_ratio(), scale_by_learning_rate(lr)): the spec's u = m̂/(√(v̂ + ε_root) + ε) + λθ, "
        "r = ‖θ‖/‖u‖ (1 where either is 0; scale_by_trust_ratio's min_norm = 0, trust_coefficient = 1 and "
        "eps = 0, which optax.lamb does not expose) and θ ← θ − lr·(r·u).  A NaN norm gives r = NaN, where the "
        "spec (tensorflow/addons) takes r = 1.  mask (which parameters are decayed) is not covered.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- Hugging Face transformers: Adafactor

#: transformers' relative step: min(1e-2, 1/√t), or min(1e-6·t, 1/√t) with warmup_init (``Adafactor._get_lr``)
HF_STEP_CAP = py_float(1e-2)
HF_WARMUP_SLOPE = py_float(1e-6)
HF_LR = _hp(_adafactor.LR, default=0.0, zero_means_none=True,
            doc="the external step size, read only with relative_step=False (transformers' default None, which "
                "relative_step requires, reads 0 here)")
HF_EPS1 = Hyperparameter("eps1", 1e-30, NONNEGATIVE, "ε₁ (eps[0]): added to every g² before the statistics (not a "
                         "floor, as torch's)", latex="epsilon_1")
HF_CLIP = _hp(_adafactor.D, name="clip_threshold", domain=Interval(0.0, None, False),
              fuzz=Interval(0.1, 100.0, True, True), fuzz_why="past RMS(U) (about 1) it never clips",
              doc="d: the update is divided by max(1, RMS(U)/d) (torch.clamp: a NaN RMS gives NaN); any d > 0 "
                  "(torch's Adafactor requires d ≥ 1)")
HF_DECAY = _hp(_adafactor.BETA2_DECAY, name="decay_rate",
               doc="τ: β̂₂ₜ = 1 − t^τ (``1.0 - math.pow(step, decay_rate)``)")
HF_BETA1 = Hyperparameter("beta1", 0.0, Interval(0.0, 1.0, True, False), "β₁ of the optional first moment of the "
                          "scaled update; 0 here is transformers' None (the default: no first moment)",
                          latex="beta_1", zero_means_none=True)
HF_WD = common.weight_decay(0.0, "decoupled decay θ ← θ − λ·α·θ with α the step size of this step (after the relative "
                                 "step and parameter scale), applied after the update is formed")
HF_SCALE_PARAMETER = common.flag("scale_parameter", "α = max(ε₂, RMS(θ))·ρ (the default); False: α = ρ", default=True)
HF_RELATIVE_STEP = common.flag("relative_step", "ρ = min(1e-2, 1/√t) (the default); False: ρ = lr", default=True)
HF_WARMUP_INIT = common.flag("warmup_init", "with relative_step, ρ = min(1e-6·t, 1/√t)")
_hf_m = sp.Symbol("m", real=True)  # exp_avg: the first moment of the scaled, clipped update
_hf_b = sp.Symbol(r"\hat{\beta}_2", real=True)  # β̂₂ₜ = 1 − t^τ, a Python float
_hf_sq = sp.Symbol("G", real=True)  # g² + ε₁
_hf_a = _adafactor  # the torch spec's symbols: R, C, V, U, ρ, α, RMS(θ) are shared, so compare.py relates them


def transformers_adafactor_rule(f: dict) -> list:
    """transformers.optimization.Adafactor.step (5.18.0) for one parameter, in its order; half-precision parameters
    and gradients are computed in float32 and θ copied back (``p_data_fp32``): the spec's per-operation roundings
    are those of the parameter's dtype, which the float32 arithmetic only improves on."""
    a = _hf_a
    eps1, eps2, d, tau, eta = HF_EPS1.symbol, _adafactor.EPS2.symbol, HF_CLIP.symbol, HF_DECAY.symbol, HF_LR.symbol
    beta1, lam = HF_BETA1.symbol, HF_WD.symbol
    if f["relative_step"]:
        cap = HF_WARMUP_SLOPE * t if f["warmup_init"] else HF_STEP_CAP
        rho = [Assign(a.rho, when(1 / sp.sqrt(t) < cap, 1 / sp.sqrt(t), cap),
                      "min(1e-6·t if warmup_init else 1e-2, 1/√t) with Python's min: the cap unless 1/√t < it")]
    else:
        rho = [Assign(a.rho, eta, "the group's lr")]
    alpha = (when(a.rms > eps2, a.rms, eps2) * a.rho) if f["scale_parameter"] else a.rho
    out = [
        Assign(a.rms, Norm(theta) / sp.sqrt(Numel(theta)), "state['RMS'] = ‖θ‖₂/√numel, a tensor in the compute dtype"),
        *rho,
        Assign(a.alpha, alpha, "α = max(ε₂, RMS)·ρ with Python's max (ε₂ unless RMS > ε₂: a NaN RMS gives ε₂); "
               "scale_parameter=False: ρ"),
        Assign(_hf_b, 1 - t ** tau, "beta2t = 1.0 − math.pow(step, decay_rate) (binary64)"),
        Assign(_hf_sq, g * g + eps1, "update = grad**2 + eps[0]: ε₁ added, not a floor"),
    ]
    if f["factored"]:
        out += [
            Assign(a.R, a.R * _hf_b + (1 - _hf_b) * AxisMean(_hf_sq, -1),
                   "exp_avg_sq_row·β̂₂ₜ + (1 − β̂₂ₜ)·(row mean of g² + ε₁) (mul_, then add_ with alpha)"),
            Assign(a.C, a.C * _hf_b + (1 - _hf_b) * AxisMean(_hf_sq, -2),
                   "exp_avg_sq_col likewise with the column mean"),
            Assign(a.u, (1 / sp.sqrt(a.R / AxisMean(a.R, -2))) * (1 / sp.sqrt(a.C)),
                   "_approx_sq_grad: rsqrt(R/mean of R over the rows) · rsqrt(C), no floor"),
            Assign(a.u, a.u * g, "update.mul_(grad)"),
        ]
    else:
        out += [
            Assign(a.V, a.V * _hf_b + (1 - _hf_b) * _hf_sq, "exp_avg_sq·β̂₂ₜ + (1 − β̂₂ₜ)·(g² + ε₁)"),
            Assign(a.u, (1 / sp.sqrt(a.V)) * g, "exp_avg_sq.rsqrt().mul_(grad)"),
        ]
    out += [
        Assign(a.q, Norm(a.u) / sp.sqrt(Numel(a.u)) / d, "RMS(U)/clip_threshold"),
        Assign(a.clip, sp.Max(a.q, 1), "clamp_(min=1.0): NaN stays NaN (torch's max(1, ·) is Python's, which drops "
               "it)"),
        Assign(a.u, a.u / a.clip, "update.div_(...)"),
        Assign(a.u, a.u * a.alpha, "update.mul_(lr), lr being α"),
    ]
    out += [
        Assign(_hf_m, unless_zero(beta1, _hf_m * beta1 + (1 - beta1) * a.u, _hf_m),
               "exp_avg·β₁ + (1 − β₁)·update where beta1 is not None (0 here): it averages lr-scaled updates"),
        Assign(a.u, unless_zero(beta1, _hf_m, a.u), "update = exp_avg"),
        Assign(theta, unless_zero(lam, theta + theta * (-lam * a.alpha), theta),
               "p.add_(p, alpha=−λ·α) where λ ≠ 0: the decay uses α, the scaled step, not lr"),
        Assign(theta, theta - a.u, "p.add_(−update)"),
    ]
    return out


ADAFACTOR_TRANSFORMERS = _adafactor.ADAFACTOR.variant(
    "adafactor@transformers", dialect=TRANSFORMERS, title="Adafactor (transformers)", rule=transformers_adafactor_rule,
    hyperparameters=(HF_LR, HF_EPS1, _adafactor.EPS2, HF_CLIP, HF_DECAY, HF_BETA1, HF_WD, HF_SCALE_PARAMETER,
                     HF_RELATIVE_STEP, HF_WARMUP_INIT),
    state=(STEP,
           State("exp_avg_sq_row", sp.Integer(0), "row factor R (transformers: shape (…, R); reported (…, R, 1))",
                 latex="R", when="the tensor has ≥ 2 dimensions", reduced_axis=-1),
           State("exp_avg_sq_col", sp.Integer(0), "column factor C (transformers: shape (…, C); reported (…, 1, C))",
                 latex="C", when="the tensor has ≥ 2 dimensions", reduced_axis=-2),
           State("exp_avg_sq", sp.Integer(0), "the whole second moment of a vector or 0-d tensor", latex="V",
                 when="the tensor has < 2 dimensions"),
           State("exp_avg", sp.Integer(0), "first moment of the scaled update", latex="m", when="beta1 is not None")),
    # relative_step takes lr=None (transformers raises ValueError for a number) and never reads the group's lr, and
    # lr=None without it fails at the first step (TypeError): not a constraint of the spec, which reads lr only
    # without relative_step; conformance.adapters.transformers passes lr to the class as the spec reads it
    constraints=(Constraint("warmup_init requires relative_step (ValueError)",
                            lambda h: h["relative_step"] or not h["warmup_init"]),),
    doc="transformers.optimization.Adafactor (5.18.0; fairseq's Adafactor): ε₁ is added to g² before the row, "
        "column or whole averages (torch floors the estimate instead); β̂₂ₜ = 1 − t^τ applied as mul_ then add_; "
        "the factored estimate is rsqrt(R/mean(R))·rsqrt(C) with no floor; the update is divided by "
        "max(1, RMS(U)/d) with torch.clamp (NaN stays NaN) and multiplied by α; an optional first moment (beta1) "
        "averages these scaled updates; the decay θ − λ·α·θ uses α, not lr, and comes after the update is formed; "
        "then θ − U.  α = max(ε₂, RMS(θ))·ρ (scale_parameter) with ρ = min(1e-2, 1/√t) (relative_step), "
        "min(1e-6·t, 1/√t) (warmup_init) or lr.  Factored: tensors with ≥ 2 dimensions, over the last two.  "
        "float16 and bfloat16 parameters are computed in float32 (gradient and state too) and θ is copied back; "
        "state lives in float32 for them.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- Optax: Adafactor

#: optax.adafactor's ``min_dim_size_to_factor`` default and scale_by_param_block_rms's ``min_scale`` (not exposed)
OPTAX_MIN_DIM_TO_FACTOR = 128
OPTAX_MIN_SCALE = py_float(1e-3)
OPTAX_AF_LR = _hp(_adafactor.LR, default=1.0, doc="scale_by_learning_rate(lr) after the clip; Optax's None (its "
                  "default) scales by nothing, which is lr = 1 here")
OPTAX_AF_EPS = _hp(HF_EPS1, name="eps", doc="ε added to every g² (Optax: eps, 1e-30)")
OPTAX_AF_DECAY = Hyperparameter("decay_rate", 0.8, NONNEGATIVE, "c: β̂ₜ = 1 − t^(−c), t the count + 1, computed in "
                                "float32 (``_decay_rate_pow``)", latex="c", fuzz=Interval(0.0, 2.0, True, True),
                                fuzz_why="t^(−c) for t ≤ 6 steps: past 2 the new statistics' weight is all that varies")
OPTAX_AF_CLIP = _hp(HF_CLIP, default=1.0, domain=NONNEGATIVE, zero_means_none=True,
                    doc="d of clip_by_block_rms: U/max(1, RMS(U)/d) (jnp.maximum: NaN kept); 0 here is Optax's None, "
                        "no clip")
OPTAX_AF_MOMENTUM = _hp(HF_BETA1, name="momentum", doc="μ of ema(μ, debias=False), its accumulator in float32: "
                        "m ← (1 − μ)·U + μ·m of the scaled update; 0 here is Optax's None (the default)")
OPTAX_AF_WD = common.weight_decay(0.0, "weight_decay_rate: λ·θ added to the scaled update (not scaled by lr); 0 "
                                       "here is Optax's None")
OPTAX_AF_PARAM_SCALE = common.flag("multiply_by_parameter_scale", "U·max(RMS(θ), 1e-3) after lr (the default)",
                                   default=True)
OPTAX_AF_FACTORED = common.flag("factored", "factor the second moment of a large matrix (the default)", default=True)
LARGE_MATRIX = TensorFlag("large_matrix", f"tensors whose two largest dimensions are both ≥ {OPTAX_MIN_DIM_TO_FACTOR} "
                          "(``_factored_dims``); the spec factors over the last two, which must be those",
                          lambda shape: len(shape) >= 2 and sorted(shape)[-2] >= OPTAX_MIN_DIM_TO_FACTOR)
_ox_b = sp.Symbol(r"\hat{\beta}_t", real=True)  # 1 − t^(−c), a float32 scalar


def optax_adafactor_rule(f: dict) -> list:
    """optax.adafactor = chain(scale_by_factored_rms, clip_by_block_rms, scale_by_learning_rate,
    scale_by_param_block_rms, ema, add_decayed_weights, scale(−1)), each present as its argument says."""
    a = _hf_a
    eps, d, c, eta = OPTAX_AF_EPS.symbol, OPTAX_AF_CLIP.symbol, OPTAX_AF_DECAY.symbol, OPTAX_AF_LR.symbol
    mu, lam = OPTAX_AF_MOMENTUM.symbol, OPTAX_AF_WD.symbol
    out = [
        Assign(_ox_b, 1 - t ** (-c), "decay_rate_t = 1 − (count + 1)^(−decay_rate), in float32"),
        Assign(_hf_sq, g * g + eps, "grad_sqr = abs_sq(grad) + epsilon"),
    ]
    if f["factored"] and f["large_matrix"]:
        out += [
            Assign(a.R, _ox_b * a.R + (1 - _ox_b) * AxisMean(_hf_sq, -1), "v_row: the mean over the largest axis"),
            Assign(a.C, _ox_b * a.C + (1 - _ox_b) * AxisMean(_hf_sq, -2), "v_col: over the second largest"),
            Assign(a.u, g * (1 / sp.sqrt(a.R / AxisMean(a.R, -2))) * (1 / sp.sqrt(a.C)),
                   "grad·(v_row/mean(v_row))^(−½)·v_col^(−½)"),
        ]
    else:
        out += [
            Assign(a.V, _ox_b * a.V + (1 - _ox_b) * _hf_sq, "v = decay_rate_t·v + (1 − decay_rate_t)·grad_sqr"),
            Assign(a.u, g * (1 / sp.sqrt(a.V)), "grad·v^(−½)"),
        ]
    out += [
        Assign(a.q, sp.sqrt(SumSq(a.u) / Numel(a.u)) / d, "clip_by_block_rms: √mean(U²)/d"),
        Assign(a.u, unless_zero(d, a.u / sp.Max(a.q, 1), a.u), "U/jnp.maximum(1, ·) (NaN kept); None: no clip"),
        Assign(a.u, a.u * eta, "scale_by_learning_rate(lr, flip_sign=False)"),
    ]
    if f["multiply_by_parameter_scale"]:
        out += [
            Assign(a.rms, sp.sqrt(SumSq(theta) / Numel(theta)), "√mean(θ²)"),
            Assign(a.u, a.u * when(a.rms <= OPTAX_MIN_SCALE, OPTAX_MIN_SCALE, a.rms),
                   "safe_root_mean_squares(θ, 1e-3): where(rms ≤ 1e-3, 1e-3, rms), so a NaN RMS stays NaN"),
        ]
    return out + [
        Assign(_hf_m, unless_zero(mu, (1 - mu) * a.u + mu * _hf_m, _hf_m), "ema: (1 − μ)·U + μ·m"),
        Assign(a.u, unless_zero(mu, _hf_m, a.u), "the update is the average"),
        Assign(a.u, unless_zero(lam, a.u + lam * theta, a.u), "add_decayed_weights: U + λ·θ"),
        Assign(theta, theta - a.u, "scale(−1), then apply_updates"),
    ]


ADAFACTOR_OPTAX = _adafactor.ADAFACTOR.variant(
    "adafactor@optax", dialect=OPTAX, title="Adafactor (Optax)", rule=optax_adafactor_rule,
    hyperparameters=(OPTAX_AF_LR, OPTAX_AF_EPS, OPTAX_AF_CLIP, OPTAX_AF_DECAY, OPTAX_AF_MOMENTUM, OPTAX_AF_WD,
                     OPTAX_AF_PARAM_SCALE, OPTAX_AF_FACTORED),
    state=(STEP,
           State("v_row", sp.Integer(0), "row factor R (Optax: the largest axis removed)", latex="R",
                 when="factored, a large matrix", reduced_axis=-1),
           State("v_col", sp.Integer(0), "column factor C (the second largest axis removed)", latex="C",
                 when="factored, a large matrix", reduced_axis=-2),
           State("v", sp.Integer(0), "the whole second moment", latex="V", when="not factored"),
           State("ema", sp.Integer(0), "the momentum's average of the scaled update (float32)", latex="m",
                 when="momentum is not None")),
    tensor_flags=(LARGE_MATRIX,),
    doc="optax.adafactor (0.2.8) = chain(scale_by_factored_rms(factored, decay_rate, decay_offset=0, "
        "min_dim_size_to_factor=128, eps), clip_by_block_rms(d), scale_by_learning_rate(lr), "
        "scale_by_param_block_rms(1e-3), ema(momentum), add_decayed_weights(λ), scale(−1)).  As transformers': ε "
        "added to g², rsqrt(R/mean R)·rsqrt(C), the clip by RMS(U)/d.  Unlike it: β̂ₜ = 1 − t^(−c) with c = 0.8 "
        "positive (transformers' decay_rate is −0.8) in float32; a matrix is factored only when its two largest "
        "dimensions are both ≥ 128 (a 100 × 1000 matrix keeps a whole second moment); lr is a plain factor (no "
        "relative step); the parameter scale's floor and the clip keep a NaN RMS; λ·θ is added unscaled by lr; "
        "the momentum keeps float32.  Not covered: a large matrix whose two largest dimensions are not its last "
        "two (Optax factors over those two), min_dim_size_to_factor other than 128, decay_offset, schedules.",
    torch_class="", paths_doc="", edge_doc="")


# --------------------------------------------------------------------------- the tables

_KERAS_ARGS = {"lr": "learning_rate", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon", "alpha": "rho",
               "weight_decay": "weight_decay (0 → None)", "amsgrad": "amsgrad", "momentum": "momentum",
               "nesterov": "nesterov", "centered": "centered", "rho": "rho",
               "initial_accumulator_value": "initial_accumulator_value"}
_OPTAX_ARGS = {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps", "eps_root": "eps_root",
               "alpha": "decay", "momentum": "momentum (0 → None)", "nesterov": "nesterov", "centered": "centered",
               "eps_in_sqrt": "eps_in_sqrt", "initial_scale": "initial_scale", "weight_decay": "weight_decay",
               "rho": "rho", "initial_accumulator_value": "initial_accumulator_value"}
_KSRC = "keras/src/optimizers/{0}.py; torch backend keras/src/backend/torch/optimizers/torch_{0}.py"


def _args(spec: OptimizerSpec, table: dict) -> dict:
    return {h.name: table.get(h.name, h.name) for h in spec.hyperparameters}


DIALECTS: dict = {s.name: s for s in (
    ADAM_KERAS, ADAMW_KERAS, SGD_KERAS, RMSPROP_KERAS, RMSPROP_TF1, ADAGRAD_KERAS, ADAMAX_KERAS, NADAM_KERAS,
    ADADELTA_KERAS, LAMB_KERAS, LION_KERAS,
    ADAM_OPTAX, ADAMW_OPTAX, SGD_OPTAX, RMSPROP_OPTAX, ADAGRAD_OPTAX, ADAMAX_OPTAX, NADAM_OPTAX, ADADELTA_OPTAX,
    LION_PYTORCH_OPTIMIZER, ADAN_PYTORCH_OPTIMIZER, LAMB_PYTORCH_OPTIMIZER, ADAN_ADAN_PYTORCH, ADEMAMIX_PYTORCH_OPTIMIZER,
    SCHEDULEFREE_ADAMW_Y, SCHEDULEFREE_ADAMW_PYTORCH_OPTIMIZER, SCHEDULEFREE_SGD_Y,
    LION_OPTAX, ADAN_OPTAX, ADEMAMIX_OPTAX, SCHEDULEFREE_ADAMW_OPTAX, LAMB_OPTAX, ADAFACTOR_TRANSFORMERS,
    ADAFACTOR_OPTAX, LAMB_TIMM,
)}

_KERAS_COUNTER = ("Keras counts `iterations` per optimizer, not per variable: a variable without a gradient in "
                  "a step still sees the counter advance (the adapter uses one Keras optimizer per parameter).")
_KERAS_LR = ("Keras keeps a float learning rate in a variable of `keras.config.floatx()` (float32 by default) and "
             "casts it to the parameter's dtype: float64 parameters get a float32-rounded lr.")

INFO: dict = {
    "adam@keras": DialectInfo("adam", KERAS_VERSION, "keras.optimizers.Adam", _KSRC.format("adam"),
                              _args(ADAM_KERAS, _KERAS_ARGS), (_KERAS_COUNTER, _KERAS_LR)),
    "adamw@keras": DialectInfo("adamw", KERAS_VERSION, "keras.optimizers.AdamW", _KSRC.format("adamw"),
                               _args(ADAMW_KERAS, _KERAS_ARGS), (_KERAS_COUNTER, _KERAS_LR)),
    "sgd@keras": DialectInfo("sgd", KERAS_VERSION, "keras.optimizers.SGD", _KSRC.format("sgd"),
                             _args(SGD_KERAS, _KERAS_ARGS), (_KERAS_LR,)),
    "rmsprop@keras": DialectInfo("rmsprop", KERAS_VERSION, "keras.optimizers.RMSprop", _KSRC.format("rmsprop"),
                                 _args(RMSPROP_KERAS, _KERAS_ARGS), (_KERAS_LR,)),
    "rmsprop@tf": DialectInfo("rmsprop", TF1_VERSION, "tf.compat.v1.train.RMSPropOptimizer",
                              "tensorflow/python/training/rmsprop.py; tensorflow/core/kernels/training_ops.cc",
                              _args(RMSPROP_TF1, {**_KERAS_ARGS, "alpha": "decay"}),
                              ("Not installable here (no TensorFlow 1 runtime); specified from the kernel source.",)),
    "adagrad@keras": DialectInfo("adagrad", KERAS_VERSION, "keras.optimizers.Adagrad", _KSRC.format("adagrad"),
                                 _args(ADAGRAD_KERAS, _KERAS_ARGS), (_KERAS_LR,)),
    "adamax@keras": DialectInfo("adamax", KERAS_VERSION, "keras.optimizers.Adamax", _KSRC.format("adamax"),
                                _args(ADAMAX_KERAS, _KERAS_ARGS), (_KERAS_COUNTER, _KERAS_LR)),
    "nadam@keras": DialectInfo("nadam", KERAS_VERSION, "keras.optimizers.Nadam", _KSRC.format("nadam"),
                               _args(NADAM_KERAS, _KERAS_ARGS),
                               (_KERAS_COUNTER, "Keras keeps one u_product per optimizer, multiplied once per "
                                                "apply() call.", _KERAS_LR)),
    "adadelta@keras": DialectInfo("adadelta", KERAS_VERSION, "keras.optimizers.Adadelta", _KSRC.format("adadelta"),
                                  _args(ADADELTA_KERAS, _KERAS_ARGS), (_KERAS_LR,)),
    "lamb@keras": DialectInfo("lamb", KERAS_VERSION, "keras.optimizers.Lamb", "keras/src/optimizers/lamb.py (no "
                              "torch kernel: the generic update_step runs on the torch backend)",
                              _args(LAMB_KERAS, _KERAS_ARGS), (_KERAS_COUNTER, _KERAS_LR)),
    "lion@keras": DialectInfo("lion", KERAS_VERSION, "keras.optimizers.Lion", _KSRC.format("lion"),
                              _args(LION_KERAS, _KERAS_ARGS), (_KERAS_COUNTER, _KERAS_LR)),
    "adam@optax": DialectInfo("adam", OPTAX_VERSION, "optax.adam", "optax/_src/alias.py; optax/_src/transform.py",
                              _args(ADAM_OPTAX, _OPTAX_ARGS)),
    "adamw@optax": DialectInfo("adamw", OPTAX_VERSION, "optax.adamw", "optax/_src/alias.py; optax/_src/transform.py",
                               _args(ADAMW_OPTAX, _OPTAX_ARGS)),
    "sgd@optax": DialectInfo("sgd", OPTAX_VERSION, "optax.sgd", "optax/_src/alias.py; optax/_src/transform.py",
                             _args(SGD_OPTAX, _OPTAX_ARGS)),
    "rmsprop@optax": DialectInfo("rmsprop", OPTAX_VERSION, "optax.rmsprop",
                                 "optax/_src/alias.py; optax/_src/transform.py", _args(RMSPROP_OPTAX, _OPTAX_ARGS),
                                 ("bias_correction and nesterov are not specified here (their defaults, False).",)),
    "adagrad@optax": DialectInfo("adagrad", OPTAX_VERSION, "optax.adagrad",
                                 "optax/_src/alias.py; optax/_src/transform.py", _args(ADAGRAD_OPTAX, _OPTAX_ARGS)),
    "adamax@optax": DialectInfo("adamax", OPTAX_VERSION, "optax.adamax",
                                "optax/_src/alias.py; optax/_src/transform.py", _args(ADAMAX_OPTAX, _OPTAX_ARGS)),
    "nadam@optax": DialectInfo("nadam", OPTAX_VERSION, "optax.nadam", "optax/_src/alias.py; optax/_src/transform.py",
                               _args(NADAM_OPTAX, _OPTAX_ARGS)),
    "adadelta@optax": DialectInfo("adadelta", OPTAX_VERSION, "optax.adadelta",
                                  "optax/_src/alias.py; optax/_src/transform.py", _args(ADADELTA_OPTAX, _OPTAX_ARGS),
                                  ("learning_rate=None (the default) ascends: scale_by_learning_rate(None) is the "
                                   "identity, so the update is not negated.  See docs/dialects.md.",)),
    "lion@pytorch-optimizer": DialectInfo(
        "lion", PYTORCH_OPTIMIZER_VERSION, "pytorch_optimizer.Lion",
        "pytorch_optimizer/optimizer/lion.py; pytorch_optimizer/base/optimizer.py (apply_weight_decay)",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "weight_decay": "weight_decay",
         "weight_decouple": "weight_decouple", "fixed_decay": "fixed_decay"},
        ("Not covered: maximize (one flag per optimizer, read for every group), foreach (the same values in "
         "exact arithmetic), use_gc, adanorm, cautious (other algorithms, selected through **kwargs).",)),
    "adan@pytorch-optimizer": DialectInfo(
        "adan", PYTORCH_OPTIMIZER_VERSION, "pytorch_optimizer.Adan", "pytorch_optimizer/optimizer/adan.py",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "beta3": "betas[2]", "eps": "eps",
         "weight_decay": "weight_decay", "weight_decouple": "weight_decouple"},
        ("t is counted per parameter group (group['step'], advanced at every step() whether or not the parameter "
         "has a gradient), as in the reference code; the dialect counts per parameter, which is the same while "
         "every parameter has a gradient at every step.",
         "Not covered: maximize (one flag per optimizer, negating p.grad in place), max_grad_norm (a global "
         "clip), use_gc, adanorm.")),
    "lamb@pytorch-optimizer": DialectInfo(
        "lamb", PYTORCH_OPTIMIZER_VERSION, "pytorch_optimizer.Lamb",
        "pytorch_optimizer/optimizer/lamb.py; pytorch_optimizer/base/optimizer.py (apply_weight_decay_foreach, "
        "apply_adam_debias)",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "eps": "eps", "weight_decay": "weight_decay",
         "weight_decouple": "weight_decouple", "fixed_decay": "fixed_decay", "grad_averaging": "grad_averaging",
         "adam": "adam", "adam_debias": "adam_debias (a **kwargs group option)"},
        ("t is counted per parameter group (group['step'], advanced at every step() whether or not the parameter "
         "has a gradient); the dialect counts per parameter, the same while every parameter has a gradient at "
         "every step.",
         "Not covered: rectify, degenerated_to_sgd, n_sma_threshold, pre_norm, max_grad_norm, adanorm, maximize "
         "(one flag per optimizer, negating p.grad in place).")),
    "lamb@timm": DialectInfo(
        "lamb", TIMM_VERSION, "timm.optim.Lamb", "timm/optim/lamb.py; timm/optim/_helpers.py (_add_scaled_)",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "eps": "eps", "weight_decay": "weight_decay",
         "bias_correction": "bias_correction", "grad_averaging": "grad_averaging", "trust_clip": "trust_clip",
         "always_adapt": "always_adapt", "decoupled_decay": "decoupled_decay"},
        ("t is counted per parameter group (group['step'], advanced at every step() whether or not any parameter "
         "has a gradient); the dialect counts per parameter, the same while every parameter has a gradient at "
         "every step.",
         "Audited with max_grad_norm=None (conformance.adapters.timm_optim:LambUnclipped): its default 1.0 "
         "divides every gradient by max(1, ‖g‖/1) over all groups, a reduction the element-wise spec does not "
         "state, and does so in place on p.grad.",
         "Not covered: caution, corrected_weight_decay (lr²/max_lr).")),
    "adan@adan-pytorch": DialectInfo(
        "adan", ADAN_PYTORCH_VERSION, "adan_pytorch.Adan", "adan_pytorch/adan.py",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "beta3": "betas[2]", "eps": "eps",
         "weight_decay": "weight_decay"},
        ("betas in the paper's convention: the spec's β corresponds to 1 − β here.",
         "Not covered: restart_cond.")),
    "ademamix@pytorch-optimizer": DialectInfo(
        "ademamix", PYTORCH_OPTIMIZER_VERSION, "pytorch_optimizer.AdEMAMix",
        "pytorch_optimizer/optimizer/ademamix.py; pytorch_optimizer/base/optimizer.py (apply_weight_decay, debias)",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "beta3": "betas[2]", "alpha": "alpha",
         "t_alpha_beta3": "t_alpha_beta3 (0 → None)", "eps": "eps", "weight_decay": "weight_decay",
         "weight_decouple": "weight_decouple", "fixed_decay": "fixed_decay"},
        ("Its step counter is the group's (group['step']), not the parameter's: a parameter that had no gradient "
         "at an earlier step is bias-corrected and warmed up with the group's count (docs/measured/third-party.md).",
         "Not covered: maximize (one flag per optimizer, read for every group), foreach (the same values in "
         "exact arithmetic), cautious, stable_adamw (other algorithms, selected through **kwargs).")),
    "schedulefree_adamw@schedulefree": DialectInfo(
        "schedulefree_adamw", SCHEDULEFREE_VERSION, "schedulefree.AdamWScheduleFree",
        "schedulefree/adamw_schedulefree.py",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "eps": "eps", "weight_decay": "weight_decay",
         "warmup_steps": "warmup_steps", "r": "r"},
        ("weight_lr_power: its default 2 only (spec/schedulefree.py).  foreach (the default where torch has "
         "_foreach_mul_) runs the same ops over lists.  train()/eval() are not steps: see the spec.",)),
    "schedulefree_adamw@pytorch-optimizer": DialectInfo(
        "schedulefree_adamw", PYTORCH_OPTIMIZER_VERSION, "pytorch_optimizer.ScheduleFreeAdamW",
        "pytorch_optimizer/optimizer/schedulefree.py; pytorch_optimizer/base/optimizer.py (apply_ams_bound)",
        {"lr": "lr", "beta1": "betas[0]", "beta2": "betas[1]", "eps": "eps", "weight_decay": "weight_decay",
         "warmup_steps": "warmup_steps", "r": "r"},
        ("Starts in train mode (train_mode=True at construction).  Not covered: maximize, decoupling_c, "
         "ams_bound, weight_lr_power ≠ 2.",)),
    "schedulefree_sgd@schedulefree": DialectInfo(
        "schedulefree_sgd", SCHEDULEFREE_VERSION, "schedulefree.SGDScheduleFree", "schedulefree/sgd_schedulefree.py",
        {"lr": "lr", "momentum": "momentum", "weight_decay": "weight_decay", "warmup_steps": "warmup_steps",
         "r": "r"},
        ("weight_lr_power: its default 2 only.  foreach (the default where torch has _foreach_mul_) runs the same "
         "ops over lists.  train()/eval() are not steps: see the spec.",
         "pytorch_optimizer.ScheduleFreeSGD (4.1.0, pytorch_optimizer/optimizer/schedulefree.py) computes the same "
         "statements (group['step'] counted from 1: t/W while t < W, 1 from t = W on, the same values) and starts "
         "in train mode.  Its eps argument is validated and never used (there is no denominator).  Not covered: "
         "its maximize (per optimizer).")),
    "lion@optax": DialectInfo("lion", OPTAX_VERSION, "optax.lion", "optax/_src/alias.py; optax/_src/transform.py "
                              "(scale_by_lion, add_decayed_weights)", _args(LION_OPTAX, _OPTAX_ARGS),
                              ("Not covered: mu_dtype, mask, scale_by_lion's mode ('smooth', 'refined'), schedules "
                               "as learning rate or weight decay.",)),
    "adan@optax": DialectInfo("adan", OPTAX_VERSION, "optax.adan", "optax/_src/alias.py; optax/_src/transform.py "
                              "(scale_by_adan)", _args(ADAN_OPTAX, {**_OPTAX_ARGS, "beta3": "b3"}),
                              ("Its docstring writes the paper's convention (m ← (1 − β₁)·m + β₁·g, proximal "
                               "decay); its code the reference code's moments and a decoupled decay: the spec "
                               "follows the code.", "Not covered: mask, schedules.")),
    "ademamix@optax": DialectInfo("ademamix", OPTAX_VERSION, "optax.contrib.ademamix",
                                  "optax/contrib/_ademamix.py (scale_by_ademamix); optax/_src/transform.py",
                                  _args(ADEMAMIX_OPTAX, {**_OPTAX_ARGS, "beta3": "b3"}),
                                  ("b3 and alpha as schedules (Optax's way to warm them up) are not covered: a "
                                   "schedule is read at count_m2, the number of earlier steps, where the "
                                   "reference code's warm-ups read the step t = count_m2 + 1.",
                                   "Not covered: mu_dtype, mask.")),
    "lamb@optax": DialectInfo("lamb", OPTAX_VERSION, "optax.lamb", "optax/_src/alias.py; optax/_src/transform.py "
                              "(scale_by_adam, scale_by_trust_ratio); optax/_src/numerics.py (safe_norm); "
                              "optax/transforms/_adding.py (add_decayed_weights)", _args(LAMB_OPTAX, _OPTAX_ARGS),
                              ("Not covered: mask, schedules as learning rate or weight decay.",)),
    "schedulefree_adamw@optax": DialectInfo(
        "schedulefree_adamw", OPTAX_VERSION, "optax.contrib.schedule_free_adamw",
        "optax/contrib/_schedule_free.py (schedule_free, schedule_free_adamw); optax/_src/transform.py (scale_by_rms)",
        {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps", "weight_decay": "weight_decay",
         "warmup_steps": "warmup_steps (0 → None)"},
        ("Optax counts per optimizer state (the backend keeps one per parameter).  schedule_free_eval_params "
         "(x for evaluation) is not a step: not checked.  Not covered: weight_lr_power ≠ 2, state_dtype.",)),
    "adafactor@optax": DialectInfo(
        "adafactor", OPTAX_VERSION, "optax.adafactor", "optax/_src/alias.py; optax/_src/factorized.py "
        "(scale_by_factored_rms, _factored_dims, _decay_rate_pow); optax/transforms/_clipping.py (clip_by_block_rms); "
        "optax/_src/transform.py (scale_by_param_block_rms); optax/_src/numerics.py (safe_root_mean_squares)",
        {"lr": "learning_rate (1 → None)", "eps": "eps", "clip_threshold": "clipping_threshold (0 → None)",
         "decay_rate": "decay_rate", "momentum": "momentum (0 → None)", "weight_decay": "weight_decay_rate (0 → None)",
         "multiply_by_parameter_scale": "multiply_by_parameter_scale", "factored": "factored"},
        ("Specified from the code, checked directly (tests/test_optax_findings.py) and run through --backend=optax "
         "(one Optax state per parameter; v_row and v_col reported in the keepdim shapes, the unused factors' (1,) "
         "placeholders left out).  The suite's drawn shapes are never factored (both of the two largest "
         "dimensions ≥ 128): a factored case is checked by tests/test_optax_findings.py.  Not covered: "
         "dtype_momentum, min_dim_size_to_factor, decay_offset, weight_decay_mask, schedules.",)),
    "adafactor@transformers": DialectInfo(
        "adafactor", TRANSFORMERS_VERSION, "transformers.optimization.Adafactor", "transformers/optimization.py "
        "(Adafactor._get_lr, _approx_sq_grad, step)",
        {"lr": "lr (0 → None)", "eps1": "eps[0]", "eps2": "eps[1]", "clip_threshold": "clip_threshold",
         "decay_rate": "decay_rate", "beta1": "beta1 (0 → None)", "weight_decay": "weight_decay",
         "scale_parameter": "scale_parameter", "relative_step": "relative_step", "warmup_init": "warmup_init"},
        ("Its row and column factors have shapes (…, R) and (…, C); conformance.adapters.transformers reports them "
         "in torch's keepdim shapes (…, R, 1) and (…, 1, C).",
         "float16 and bfloat16 parameters are stepped in float32 (p_data_fp32) with float32 state, then copied "
         "back: one rounding to the parameter's dtype per step.",
         "It validates no hyperparameter.  Not covered: sparse gradients (RuntimeError), AdafactorSchedule.")),
}

assert INFO.keys() == DIALECTS.keys()


def get(name: str) -> OptimizerSpec:
    """A torch spec (``spec.OPTIMIZERS``) or a dialect (``DIALECTS``) by name."""
    if name in DIALECTS:
        return DIALECTS[name]
    return _get_torch(name)


__all__ = ["ADAN_PYTORCH", "DIALECTS", "INFO", "DialectInfo", "get", "KERAS", "OPTAX", "PYTORCH_OPTIMIZER", "TF1"]
