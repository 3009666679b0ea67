"""Identities between update rules, stated as data and proved by SymPy.

Each ``Identity`` says one exact thing about the specs (two rules agree, a
rule reduces to a closed form under some hyperparameters, or two forms that
look alike do *not* agree) and carries a ``proof`` that builds the
expressions from the specs' own statements and asks SymPy to decide it.
``proof()`` returns True when SymPy shows the two sides equal and False when
it shows them different (by an exact counterexample); it raises when it can
do neither, so an identity is never decided by a timeout or a float.

Multi-step claims are unrolled with ``run_symbolic``: the statements are
substituted step after step, with the step counter ``t`` replaced by the
integers 1, 2, … so that branches on ``t`` (SGD's first step, RAdam's ρ_t > 5)
and on concrete hyperparameter values collapse to the branch taken.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import sympy as sp

from . import adagrad as _adagrad
from . import adam as _adam
from . import adan as _adan
from . import ademamix as _ademamix
from . import common
from . import lion as _lion
from . import nadam as _nadam
from . import radam as _radam
from . import rmsprop as _rmsprop
from . import schedulefree as _sf
from . import schedulefree_sgd as _sfsgd
from . import sgd as _sgd
from .core import Assign, OptimizerSpec, g, py_float, t, theta


@dataclass(frozen=True)
class Identity:
    """``statement`` in words; ``holds`` whether it is true; ``proof()`` SymPy's verdict."""

    name: str
    statement: str
    holds: bool
    proof: Callable[[], bool]
    specs: tuple = ()  # the specs it concerns, where its name does not say (reports.docs lists it on these pages only)


class Undecided(AssertionError):
    """SymPy could neither show the two sides equal nor exhibit a difference."""


THETA0 = sp.Symbol("theta_0", real=True)

Grad = Union[sp.Expr, Callable[[sp.Expr], sp.Expr]]


# --------------------------------------------------------------------------- helpers


def run_symbolic(spec: OptimizerSpec, hyper_flags: dict, steps: int, grads_symbols: Sequence[Grad],
                 lr_symbols: Optional[Sequence[sp.Expr]] = None, *, subs: Optional[dict] = None,
                 theta0: sp.Expr = THETA0, return_state: bool = False):
    """θ_k after ``steps`` steps of ``spec`` from ``theta0`` and the spec's initial state.

    ``grads_symbols[k-1]`` is the gradient of step k: an expression, or a
    function of the current parameter (evaluated at θ_{k-1}, for gradients
    that depend on where they are taken).  ``lr_symbols[k-1]`` replaces the
    lr symbol at step k (a schedule); without it lr is the spec's constant
    symbol.  ``subs`` maps hyperparameter symbols to values or to symbols
    with stronger assumptions (positive μ, …) for every step.  The step
    counter ``t`` is the integer k, so Piecewise conditions on it collapse.
    With ``return_state`` the result is ``(θ_k, {state name: value})``.
    """
    if len(grads_symbols) < steps or (lr_symbols is not None and len(lr_symbols) < steps):
        raise ValueError(f"need {steps} gradients (and learning rates if given)")
    subs = dict(subs or {})
    statements = spec.statements(hyper_flags)
    lr_sym = spec.hyper("lr").symbol
    tracked = [s for s in spec.state if s.name != "step"]
    state = {s.symbol: sp.sympify(s.init).xreplace(subs) for s in tracked}
    current = theta0
    for k in range(1, steps + 1):
        grad = grads_symbols[k - 1]
        grad = grad(current) if callable(grad) else sp.sympify(grad)
        env = {**subs, **state, theta: current, g: grad, t: sp.Integer(k)}
        if lr_symbols is not None:
            env[lr_sym] = sp.sympify(lr_symbols[k - 1])
        for stmt in statements:
            env[stmt.target] = stmt.expr.xreplace(env)  # rebuilt, so decided conditions collapse
        current = env[theta]
        state = {sym: env[sym] for sym in state}
    if return_state:
        return current, {s.name: state[s.symbol] for s in tracked}
    return current


def statement_values(spec: OptimizerSpec, flags: dict, subs: Optional[dict] = None) -> dict:
    """Every target (temporaries included) → its value after the whole rule, as expressions of the inputs."""
    env = dict(subs or {})
    for stmt in spec.statements(flags):
        env[stmt.target] = stmt.expr.xreplace(env)
    return env


def is_zero(expr: sp.Expr) -> bool:
    """SymPy shows ``expr`` ≡ 0: structurally, after expansion, or after ``simplify`` (in that order)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    expr = sp.expand(expr)
    if expr == 0:
        return True
    return sp.simplify(expr) == 0


def equal(a: sp.Expr, b: sp.Expr) -> bool:
    return is_zero(sp.sympify(a) - sp.sympify(b))


def _flag_combinations(spec: OptimizerSpec, fixed: Optional[dict] = None):
    fixed = fixed or {}
    free = [h.name for h in spec.flags if h.name not in fixed]
    for values in itertools.product((False, True), repeat=len(free)):
        yield {**fixed, **dict(zip(free, values))}


def _final(spec: OptimizerSpec, flags: dict, subs: dict) -> dict:
    """Output name → final expression (θ and every state), with ``subs`` applied (conditions collapse)."""
    values = statement_values(spec, flags)
    out = {"theta": values.get(theta, theta)}
    out.update({s.name: values.get(s.symbol, s.symbol) for s in spec.state if s.name != "step"})
    return {k: v.xreplace(subs) for k, v in out.items()}


def _grads(n: int, **assumptions):
    return sp.symbols(f"g_1:{n + 1}", real=True, **assumptions)


# --------------------------------------------------------------------------- 1. Nesterov

def _nesterov_proof() -> bool:
    """Three steps of torch's Nesterov SGD against classic look-ahead Nesterov, f' undefined."""
    fprime = sp.Function("fprime", real=True)
    mu = sp.Symbol("mu", positive=True)
    eta = _sgd.eta
    steps = 3
    torch_theta, state = run_symbolic(
        _sgd.SGD, {"nesterov": True, "maximize": False}, steps, [fprime] * steps,
        subs={_sgd.mu: mu, _sgd.tau: sp.Integer(0), _sgd.lam: sp.Integer(0)}, return_state=True)
    classic, velocity = THETA0, sp.Integer(0)
    for _ in range(steps):
        velocity = mu * velocity - eta * fprime(classic + mu * velocity)  # gradient at the look-ahead point
        classic = classic + velocity
    return equal(torch_theta, classic + mu * velocity) and is_zero(-eta * state["momentum_buffer"] - velocity)


# --------------------------------------------------------------------------- 2, 3. Adam / AdamW

def _adamw_zero_decay_is_adam() -> bool:
    zero = {_adam.lam: sp.Integer(0)}
    for flags in _flag_combinations(_adam.ADAM):
        adam = _final(_adam.ADAM, flags, zero)
        adamw = _final(_adam.ADAMW, {k: v for k, v in flags.items() if k != "decoupled_weight_decay"}, zero)
        if adam.keys() != adamw.keys() or not all(equal(adam[k], adamw[k]) for k in adam):
            return False
    return True


def _adam_decoupled_is_adamw() -> bool:
    for flags in _flag_combinations(_adam.ADAMW):
        adam = _final(_adam.ADAM, {**flags, "decoupled_weight_decay": True}, {})
        adamw = _final(_adam.ADAMW, flags, {})
        if adam.keys() != adamw.keys() or not all(equal(adam[k], adamw[k]) for k in adam):
            return False
    return True


# --------------------------------------------------------------------------- 4. RMSprop lr placement

def _rmsprop_lr_inside_rule(f: dict) -> list:
    """RMSprop with momentum written with lr inside the buffer: b ← μb + η·g/avg; θ ← θ − b."""
    statements = _rmsprop.rule(f)
    *head, buf, step = statements
    assert buf.target == _rmsprop.b and step.target == theta, "RMSprop's rule no longer ends buffer, step"
    mu, eta, avg = _rmsprop.mu, _rmsprop.eta, _rmsprop.avg
    return head + [
        Assign(_rmsprop.b, sp.Piecewise((mu * _rmsprop.b + eta * g / avg, mu > 0), (_rmsprop.b, True)),
               "buffer of lr-scaled normalised gradients"),
        Assign(theta, sp.Piecewise((theta - _rmsprop.b, mu > 0), (theta - eta * g / avg, True)),
               "the buffer is the step"),
    ]


RMSPROP_LR_INSIDE = dataclasses.replace(_rmsprop.RMSPROP, name="rmsprop_lr_inside", rule=_rmsprop_lr_inside_rule,
                                        dialect="identity")
_RMS_MU = sp.Symbol("mu", positive=True)


def _rmsprop_lr_inside_constant_lr() -> bool:
    subs = {_rmsprop.mu: _RMS_MU}
    grads = _grads(3)
    for centered, maximize in itertools.product((False, True), repeat=2):
        flags = {"centered": centered, "maximize": maximize}
        outside, s_out = run_symbolic(_rmsprop.RMSPROP, flags, 3, grads, subs=subs, return_state=True)
        inside, s_in = run_symbolic(RMSPROP_LR_INSIDE, flags, 3, grads, subs=subs, return_state=True)
        if not (equal(outside, inside) and equal(_rmsprop.eta * s_out["momentum_buffer"], s_in["momentum_buffer"])):
            return False
    return True


def _rmsprop_lr_inside_changing_lr() -> bool:
    """Shows the two forms differ once lr changes: an exact closed form after 2 steps, and a rational counterexample."""
    flags = {"centered": False, "maximize": False}
    subs = {_rmsprop.mu: _RMS_MU, _rmsprop.lam: sp.Integer(0)}
    lrs = sp.symbols("eta_1:4", positive=True)
    grads = _grads(3)
    diff3 = (run_symbolic(_rmsprop.RMSPROP, flags, 3, grads, lrs, subs=subs)
             - run_symbolic(RMSPROP_LR_INSIDE, flags, 3, grads, lrs, subs=subs))
    if is_zero(diff3):
        return True
    # After two steps the forms differ by exactly μ·(η₁ − η₂)·g₁/a₁, a₁ = √((1−α)·g₁²) + ε the first
    # denominator: nonzero whenever μ > 0, g₁ ≠ 0 and η₁ ≠ η₂.
    diff2 = (run_symbolic(_rmsprop.RMSPROP, flags, 2, grads, lrs, subs=subs)
             - run_symbolic(RMSPROP_LR_INSIDE, flags, 2, grads, lrs, subs=subs))
    a1 = sp.sqrt((1 - _rmsprop.alpha) * grads[0] ** 2) + _rmsprop.eps
    if not equal(diff2, _RMS_MU * (lrs[0] - lrs[1]) * grads[0] / a1):
        raise Undecided("RMSprop lr placement: two-step difference is not the expected closed form")
    # An exact counterexample for three steps (α = 0 keeps every root rational).
    point = {_rmsprop.alpha: 0, _rmsprop.eps: 1, _RMS_MU: sp.Rational(1, 2), THETA0: 0,
             grads[0]: 1, grads[1]: 2, grads[2]: 3, lrs[0]: 1, lrs[1]: 2, lrs[2]: 3}
    value = sp.nsimplify(diff3.subs(point))
    if value.is_Rational and value != 0:
        return False
    raise Undecided(f"RMSprop lr placement: counterexample evaluated to {value}")


# --------------------------------------------------------------------------- 5. SGD

def _sgd_no_momentum_is_gd() -> bool:
    g1 = sp.Symbol("g_1", real=True)
    for maximize in (False, True):
        stepped = run_symbolic(_sgd.SGD, {"nesterov": False, "maximize": maximize}, 1, [g1],
                               subs={_sgd.mu: sp.Integer(0), _sgd.lam: sp.Integer(0)})
        # later steps take the same branch: the step direction is g whenever μ = 0, whatever the buffer holds
        later = _final(_sgd.SGD, {"nesterov": False, "maximize": maximize},
                       {_sgd.mu: sp.Integer(0), _sgd.lam: sp.Integer(0), t: sp.Symbol("k", integer=True, nonnegative=True) + 2})
        sign = 1 if maximize else -1
        if not (equal(stepped, THETA0 + sign * _sgd.eta * g1) and equal(later["theta"], theta + sign * _sgd.eta * g)):
            return False
    return True


def _sgd_momentum_closed_form() -> bool:
    k = 4
    mu = sp.Symbol("mu", positive=True)
    grads = _grads(k)
    stepped = run_symbolic(_sgd.SGD, {"nesterov": False, "maximize": False}, k, grads,
                           subs={_sgd.mu: mu, _sgd.tau: sp.Integer(0), _sgd.lam: sp.Integer(0)})
    closed = THETA0 - _sgd.eta * sum(grads[j - 1] * sum(mu ** i for i in range(k - j + 1)) for j in range(1, k + 1))
    return equal(stepped, closed)


# --------------------------------------------------------------------------- 6. Adam's first step

def _adam_first_step_is_sign() -> bool:
    c1, c2 = sp.symbols("c_1 c_2", positive=True)  # 1 − β₁ and 1 − β₂, both in (0, 1] on Adam's domain
    g1 = sp.Symbol("g_1", real=True, nonzero=True)
    subs = {_adam.beta1: 1 - c1, _adam.beta2: 1 - c2, _adam.eps: sp.Integer(0), _adam.lam: sp.Integer(0)}
    for flags in _flag_combinations(_adam.ADAM):
        stepped = run_symbolic(_adam.ADAM, flags, 1, [g1], subs=subs)
        sign = 1 if flags["maximize"] else -1
        if not equal(stepped, THETA0 + sign * _adam.eta * g1 / sp.Abs(g1)):
            return False
    return True


# --------------------------------------------------------------------------- 7. NAdam

def _nadam_no_decay_constant_mu() -> bool:
    subs = {_nadam.psi: sp.Integer(0)}
    for flags in _flag_combinations(_nadam.NADAM):
        values = statement_values(_nadam.NADAM, flags)
        mu_t = values[_nadam.mu_t].xreplace(subs)
        mu_next = values[_nadam.mu_next].xreplace(subs)
        if not (equal(mu_t, _nadam.beta1 / 2) and equal(mu_next, _nadam.beta1 / 2)):
            return False
    # and so the product state after k steps is (β₁/2)^k
    _, state = run_symbolic(_nadam.NADAM, {"decoupled_weight_decay": False, "maximize": False}, 3, _grads(3),
                            subs=subs, return_state=True)
    return equal(state["mu_product"], (_nadam.beta1 / 2) ** 3)


# --------------------------------------------------------------------------- 8. Adagrad

def _adagrad_first_step() -> bool:
    g1 = sp.Symbol("g_1", real=True)
    subs = {_adagrad.delta: sp.Integer(0), _adagrad.INIT.symbol: sp.Integer(0), _adagrad.lam: sp.Integer(0)}
    stepped = run_symbolic(_adagrad.ADAGRAD, {"maximize": False}, 1, [g1], subs=subs)
    return equal(stepped, THETA0 - _adagrad.eta * g1 / (sp.Abs(g1) + _adagrad.eps))


# --------------------------------------------------------------------------- 9. RAdam's first rectified step

def _radam_default_beta2_switch() -> bool:
    """With β₂ = binary64(0.999): steps 1–5 take the un-rectified branch, step 6 the rectified one."""
    flags = {"decoupled_weight_decay": False, "maximize": False}
    beta2 = py_float(0.999)
    values = statement_values(_radam.RADAM, flags)
    step = values[theta]
    if not (isinstance(step, sp.Piecewise) and len(step.args) == 2 and step.args[1].cond is sp.true):
        raise Undecided(f"RAdam's step is not a two-branch Piecewise: {step}")
    (rectified, cond), (unrectified, _) = step.args
    m_new = values[_radam.m]
    if not equal(unrectified, theta - _radam.eta * m_new / (1 - _radam.beta1 ** t)):
        return False
    for k in range(1, 7):
        decided = cond.xreplace({_radam.beta2: beta2, t: sp.Integer(k)})
        if decided not in (sp.true, sp.false):
            raise Undecided(f"RAdam: the condition at t={k} did not collapse: {decided}")
        if bool(decided) != (k >= 6):
            return False
    return True


# --------------------------------------------------------------------------- Lion: the paper's form and the code's

def _lion_paper_order_is_reference_order() -> bool:
    """Each sign piece of the spec's step, after its decay statement, against Algorithm 2's θ − η·(s + λ·θ)."""
    decay, _, signed, _ = _lion.LION.statements({})
    pieces = [e for e, cond in signed.expr.args]  # c > 0, c < 0, otherwise (c = 0; NaN: torch.sign is 0)
    lam_pos = sp.Symbol("lambda_pos", positive=True)
    for lam in (sp.Integer(0), lam_pos):
        decayed = decay.expr.xreplace({_lion.lam: lam})
        for piece, s in zip(pieces, (1, -1, 0)):
            paper = theta - _lion.eta * (s + lam * theta)
            if not equal(piece.xreplace({theta: decayed}).xreplace({_lion.lam: lam}), paper):
                return False
    return True


def _lion_lerp_is_weighted_sum() -> bool:
    """pytorch-optimizer's lerp forms of c and m against the spec's weighted sums."""
    values = statement_values(_lion.LION, {})
    m0 = _lion.m  # the old m: the spec's c reads it before the momentum statement reassigns it
    c_spec = _lion.LION.statements({})[1].expr
    return (equal(common.lerp(m0, g, 1 - _lion.beta1), c_spec)
            and equal(common.lerp(m0, g, 1 - _lion.beta2), values[_lion.m]))


# --------------------------------------------------------------------------- Adan: Algorithm 1 and the code

def _adan_algorithm_1_is_code_without_bias_correction() -> bool:
    """The spec's θ at a step t ≥ 2 with every βᵗ taken to 0 (bias corrections 1), against Algorithm 1's line 7 with
    the paper's β′ = 1 − β, for λ = 0 and every λ > 0."""
    a = _adan
    k = sp.Symbol("k", integer=True, nonnegative=True)
    lam_pos = sp.Symbol("lambda_pos", positive=True)
    b1, b2, b3 = (1 - a.beta1, 1 - a.beta2, 1 - a.beta3)  # the paper's β′
    g_prev = -a.neg_prev
    m_k = (1 - b1) * a.m + b1 * g
    v_k = (1 - b2) * a.v + b2 * (g - g_prev)
    n_k = (1 - b3) * a.n + b3 * (g + (1 - b2) * (g - g_prev)) ** 2
    for lam in (sp.Integer(0), lam_pos):
        values = statement_values(a.ADAN, {"no_prox": False}, {t: k + 2, a.lam: lam})
        ours = values[theta].replace(lambda e: e.is_Pow and e.exp == k + 2, lambda e: sp.Integer(0))
        paper = (theta - a.eta / (sp.sqrt(n_k) + a.eps) * (m_k + (1 - b2) * v_k)) / (1 + lam * a.eta)
        if not equal(ours, paper):
            return False
    return True


# --------------------------------------------------------------------------- AdEMAMix: the paper's schedule and the code's

def _ademamix_beta3_schedule_is_papers() -> bool:
    """The warm-up piece of the spec's β₃(t) with the code's 10⁻⁸ set to 0, against the paper's closed form.

    Both are exp(·) of a rational function of ln β₁, ln β₃ and ln 2 (the code's is ½^(1/(x + 1)) = exp(−ln 2/(x + 1))),
    so the logarithms are compared with those three logarithms as symbols of their own."""
    then = _ademamix.schedules()[3].expr.args[0][0]  # the t < T piece
    code = then.xreplace({_ademamix.HALF_LIFE_EPS: 0})
    if not (isinstance(code, sp.Pow) and code.base == sp.Rational(1, 2)):
        raise Undecided(f"the warm-up piece is not a power of ½: {code}")
    l1, l2, l3 = sp.symbols("L_1 L_2 L_3", negative=True)  # ln β₁, ln ½, ln β₃ (β in (0, 1))
    logs = {sp.log(_ademamix.beta1): l1, sp.log(_ademamix.beta3): l3, sp.log(2): -l2}
    a = t / _ademamix.T_b3
    paper = l1 * l3 / ((1 - a) * l3 + a * l1)
    return equal((l2 * code.exp).xreplace(logs), paper)


def _ademamix_beta3_schedule_ends_above_beta3() -> bool:
    """The spec's warm-up piece at a = t/T = 1 against β₃: f⁻¹(f(β₃)) = β₃ + 10⁻⁸ ≠ β₃."""
    then = _ademamix.schedules()[3].expr.args[0][0]
    end = then.xreplace({t: _ademamix.T_b3, _ademamix.beta3: sp.Rational(9999, 10000),
                         _ademamix.beta1: sp.Rational(9, 10)})
    if not equal(end, sp.Rational(9999, 10000) + _ademamix.HALF_LIFE_EPS):  # shown exactly: β₃ + 10⁻⁸
        raise Undecided(f"the warm-up's end is not shown to be β₃ + 10⁻⁸: {end}")
    return False  # β₃ + 10⁻⁸ ≠ β₃


# --------------------------------------------------------------------------- Schedule-Free: the y form and the reference form

def _run(statements, env: dict) -> dict:
    env = dict(env)
    for stmt in statements:
        env[stmt.target] = stmt.expr.xreplace(env)
    return env


def _schedulefree_y_form_is_reference_form() -> bool:
    """One step of each form's tensor statements from y = β₁·x + (1 − β₁)·z, the group scalars (γ_t, c, bc₂)
    left as symbols (both forms compute them with the same statements), for λ = 0 and every λ > 0."""
    lam_pos = sp.Symbol("lambda_pos", positive=True)
    for lam in (sp.Integer(0), lam_pos):
        start = {theta: _sf.beta1 * _sf.x + (1 - _sf.beta1) * _sf.z, _sf.lam: lam}
        ref = _run(_sf.reference_steps(), start)
        yf = _run([*_sf.denominator(), *_sf.y_form_steps()], start)
        ref = {k: v.xreplace({_sf.lam: lam}) for k, v in ref.items()}
        yf = {k: v.xreplace({_sf.lam: lam}) for k, v in yf.items()}
        if not (equal(ref[theta], yf[theta]) and equal(ref[_sf.z], yf[_sf.z])):
            return False
    return True


def _schedulefree_sgd_y_form_is_reference_form() -> bool:
    """As for AdamW: one step of SGDScheduleFree's and SGDScheduleFreeReference's tensor statements from
    y = β·x + (1 − β)·z, γ_t and c left as symbols, for λ = 0 and every λ > 0."""
    lam_pos = sp.Symbol("lambda_pos", positive=True)
    for lam in (sp.Integer(0), lam_pos):
        start = {theta: _sfsgd.beta * _sfsgd.x + (1 - _sfsgd.beta) * _sfsgd.z, _sfsgd.lam: lam}
        ref = _run(_sfsgd.reference_steps(), start)
        yf = _run(_sfsgd.y_form_steps(), start)
        ref = {k: v.xreplace({_sfsgd.lam: lam}) for k, v in ref.items()}
        yf = {k: v.xreplace({_sfsgd.lam: lam}) for k, v in yf.items()}
        if not (equal(ref[theta], yf[theta]) and equal(ref[_sfsgd.z], yf[_sfsgd.z])):
            return False
    return True


# --------------------------------------------------------------------------- the list

IDENTITIES: tuple[Identity, ...] = (
    Identity(
        "nesterov_torch_is_classic_lookahead",
        "With momentum μ > 0, dampening 0, weight decay 0, maximize off and a constant lr η, three steps of "
        "SGD(nesterov=True) from θ₀ with gradient g = f'(θ) at its own iterate (f' an arbitrary function) give "
        "θ₃ = ϑ₃ + μ·v₃ and momentum_buffer b₃ = −v₃/η, where classic look-ahead Nesterov runs "
        "v ← μ·v − η·f'(ϑ + μ·v), ϑ ← ϑ + v from ϑ₀ = θ₀, v₀ = 0.",
        True, _nesterov_proof),
    Identity(
        "adamw_zero_decay_is_adam",
        "For every combination of amsgrad, maximize and decoupled_weight_decay, AdamW with weight_decay λ = 0 and "
        "Adam with λ = 0 have identical final expressions for θ and for every state variable.",
        True, _adamw_zero_decay_is_adam),
    Identity(
        "adam_decoupled_is_adamw",
        "For every combination of amsgrad and maximize and every λ, Adam with decoupled_weight_decay=True and "
        "AdamW have identical final expressions for θ and for every state variable.",
        True, _adam_decoupled_is_adamw),
    Identity(
        "rmsprop_lr_inside_buffer_constant_lr",
        "With momentum μ > 0 and the same lr η at every step, three RMSprop steps (centered or not, maximize or "
        "not, any α, ε, λ) give the same θ₃ as the form b ← μ·b + η·g/avg; θ ← θ − b, whose buffer is η times "
        "torch's buffer.",
        True, _rmsprop_lr_inside_constant_lr),
    Identity(
        "rmsprop_lr_inside_buffer_changing_lr",
        "With momentum μ > 0 and learning rates η₁, η₂, η₃ that differ between steps, RMSprop (torch: lr outside "
        "the buffer) and the form b ← μ·b + η_k·g/avg; θ ← θ − b give the same θ₃; this is false: after two "
        "steps they differ by μ·(η₁ − η₂)·g₁/(√((1−α)·g₁²) + ε).",
        False, _rmsprop_lr_inside_changing_lr),
    Identity(
        "sgd_no_momentum_is_gradient_descent",
        "SGD with momentum 0, weight decay 0 and nesterov off, for any dampening τ, updates θ ← θ − η·g at every "
        "step (θ ← θ + η·g with maximize).",
        True, _sgd_no_momentum_is_gd),
    Identity(
        "sgd_momentum_closed_form",
        "SGD with momentum μ > 0, dampening 0, weight decay 0 and a constant lr η gives after four steps "
        "θ₄ = θ₀ − η·Σ_{j=1..4} g_j·(1 + μ + … + μ^(4−j)).",
        True, _sgd_momentum_closed_form),
    Identity(
        "adam_first_step_is_sign_step",
        "For any β₁, β₂ in [0, 1), ε = 0, λ = 0 and a gradient g ≠ 0, Adam's first step (any amsgrad, maximize, "
        "decoupled_weight_decay) is θ₁ = θ₀ − η·g/|g| (θ₀ + η·g/|g| with maximize).",
        True, _adam_first_step_is_sign),
    Identity(
        "nadam_no_momentum_decay_constant_mu",
        "NAdam with momentum_decay ψ = 0 has μ_t = μ_{t+1} = β₁/2 for every step t, so its mu_product after k "
        "steps is (β₁/2)^k (checked for k = 3).",
        True, _nadam_no_decay_constant_mu),
    Identity(
        "adagrad_first_step",
        "Adagrad with lr_decay 0, initial_accumulator_value 0, weight decay 0 and maximize off takes the first "
        "step θ₁ = θ₀ − η·g/(|g| + ε).",
        True, _adagrad_first_step),
    Identity(
        "radam_default_beta2_rectifies_from_step_6",
        "With β₂ equal to the binary64 value of 0.999 (torch's default), RAdam takes the un-rectified step "
        "θ ← θ − η·m/(1 − β₁ᵗ) at steps t = 1, …, 5 (ρ₅ ≈ 4.996 ≤ 5) and the rectified step at t = 6 "
        "(ρ₆ ≈ 5.994 > 5).",
        True, _radam_default_beta2_switch),
    Identity(
        "lion_paper_order_is_reference_order",
        "Lion's step as the authors' reference code orders it (θ ← θ·(1 − η·λ), then θ ← θ − η·sign(c); the "
        "spec) equals Algorithm 2's θ ← θ − η·(sign(c) + λ·θ) with the old θ, for each sign of c (+1, −1, 0) "
        "and for λ = 0 and every λ > 0: the two differ in rounding only.",
        True, _lion_paper_order_is_reference_order),
    Identity(
        "lion_lerp_is_weighted_sum",
        "Lion's c = β₁·m + (1 − β₁)·g and m ← β₂·m + (1 − β₂)·g (the reference code's weighted sums) equal the "
        "lerps m + (1 − β₁)·(g − m) and m + (1 − β₂)·(g − m) that pytorch-optimizer evaluates "
        "(exp_avg.lerp(grad, 1 − β)): the same exact values, a different rounding.",
        True, _lion_lerp_is_weighted_sum),
    Identity(
        "adan_algorithm_1_is_code_without_bias_correction",
        "Adan's step as the reference code computes it (the spec), at any step t ≥ 2 and with each bias "
        "correction 1 − βᵗ taken to 1, equals Algorithm 1's θ ← (θ − η/(√n + ε)·(m + (1 − β′₂)·v))/(1 + λη) "
        "with the paper's β′ = 1 − β (m = (1 − β′₁)·m + β′₁·g, v = (1 − β′₂)·v + β′₂·(g − g_prev), n = "
        "(1 − β′₃)·n + β′₃·(g + (1 − β′₂)(g − g_prev))²), for λ = 0 and every λ > 0: the code's β is the "
        "paper's 1 − β, and the code adds bias corrections.",
        True, _adan_algorithm_1_is_code_without_bias_correction),
    Identity(
        "ademamix_beta3_schedule_is_papers",
        "During the warm-up (t < T), the reference code's β₃(t) = f⁻¹((1 − a)·f(β₁) + a·f(β₃)), a = t/T, "
        "f(β) = ln ½/ln(β + 10⁻⁸) − 1, f⁻¹(x) = ½^(1/(x + 1)) (the spec), with 10⁻⁸ replaced by 0, equals the "
        "paper's exp(ln β₁·ln β₃/((1 − a)·ln β₃ + a·ln β₁)) for β₁, β₃ in (0, 1): the two differ by the code's "
        "10⁻⁸ and by rounding.",
        True, _ademamix_beta3_schedule_is_papers),
    Identity(
        "ademamix_beta3_schedule_ends_at_beta3",
        "The reference code's warm-up piece of β₃(t) reaches β₃ at its end (a = t/T = 1); false: it reaches "
        "f⁻¹(f(β₃)) = β₃ + 10⁻⁸ (the 10⁻⁸ inside f's logarithm), so at t = T the schedule drops from about "
        "β₃ + 10⁻⁸ to β₃ (witness β₁ = 0.9, β₃ = 0.9999).",
        False, _ademamix_beta3_schedule_ends_above_beta3),
    Identity(
        "schedulefree_y_form_is_reference_form",
        "The Schedule-Free y form (schedulefree.AdamWScheduleFree: u = g/d + λ·y, y ← lerp(y, z, c) + "
        "γ_t·(β₁·(1 − c) − 1)·u, z ← z − γ_t·u) and its reference form (AdamWScheduleFreeReference: "
        "z ← z − γ_t·λ·y − γ_t·g/d, x ← (1 − c)·x + c·z, y = β₁·x + (1 − β₁)·z) give the same new y and z "
        "from any state with y = β₁·x + (1 − β₁)·z, for λ = 0 and every λ > 0, the group scalars γ_t, c and d "
        "being the same: the same exact values (the invariant carries over), a different rounding.",
        True, _schedulefree_y_form_is_reference_form,
        specs=("schedulefree_adamw", "schedulefree_adamw@schedulefree", "schedulefree_adamw@pytorch-optimizer")),
    Identity(
        "schedulefree_sgd_y_form_is_reference_form",
        "The Schedule-Free SGD y form (schedulefree.SGDScheduleFree and pytorch_optimizer.ScheduleFreeSGD: "
        "u = g + λ·y, y ← lerp(y, z, c) + γ_t·(β·(1 − c) − 1)·u, z ← z − γ_t·u) and its reference form "
        "(SGDScheduleFreeReference: z ← z − γ_t·u, x ← (1 − c)·x + c·z, y = β·x + (1 − β)·z) give the same new y "
        "and z from any state with y = β·x + (1 − β)·z, for λ = 0 and every λ > 0, γ_t and c being the same: the "
        "same exact values (the invariant carries over), a different rounding.",
        True, _schedulefree_sgd_y_form_is_reference_form,
        specs=("schedulefree_sgd", "schedulefree_sgd@schedulefree")),
)
