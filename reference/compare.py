"""How each dialect relates to its torch spec, decided by SymPy and shown by the exact reference.

(In the reference layer because its witnesses run ``reference.step``; the
specs it compares come from ``spec``.)

For every pair (torch spec, dialect spec) in ``PAIRS`` and every ``Case`` of
it (a flag combination with some hyperparameters fixed: the core update,
momentum, weight decay, ...), ``decide`` returns one of four verdicts:

``equal``
    SymPy proves the two updates equal.  The proof is an induction: the first
    step from the two specs' initial states gives the same θ and the same
    shared state variables, and so does one step at any later t (t = k + 2,
    k ≥ 0 an integer) from an *arbitrary* common state; the state variables
    only one side keeps may hold anything.
``equal under mapping``
    the same proof after substituting a stated hyperparameter mapping into
    the dialect (Keras Adam's ε̂ = ε·√(1 − β₂ᵗ)) or fixing a torch
    hyperparameter to the dialect's built-in value (Keras NAdam: ψ = 1).
``equal for constant lr``
    not equal step for step (a buffer holds lr·g on one side and g on the
    other), but three steps from the initial state with symbolic gradients
    and one symbolic learning rate η give the same θ₃; with η₁ ≠ η₂ the
    two-step difference is shown in closed form.
``different``
    none of the above: SymPy's difference is not zero.

Every verdict other than ``equal`` comes with a numeric witness from the
reference (``reference.step.trajectory``, exact arithmetic rounded once to
float64) on a one-element float64 input: the two rules' exact θ after each of
three steps, with the same hyperparameter values on both sides (the mapping
not applied), or with changing learning rates for ``equal for constant lr``.

Before any symbolic simplification the two sides are compared at a few exact
rational points (a screen): where they differ, the verdict cannot be an
equality, and where they agree but SymPy cannot show it, ``Undecided`` is
raised rather than a verdict guessed.  Domain facts used by the proofs:
``1 − βᵗ > 0`` for a decay β in [0, 1) and t ≥ 1 (it is replaced by a positive
symbol, which lets SymPy split √(v/(1 − βᵗ)) into √v/√(1 − βᵗ)).

Specs that reduce over the tensor (LAMB's norms): a proof keeps each reduction as a non-negative unknown (one per
argument shown equal on both sides) and checks the cases = 0 and > 0 of each, so it holds for tensors of any size;
the screen and the witness use one-element tensors, where ‖x‖ = |x|; three-step symbolic unrolling is skipped and
a difference is decided by the exact witness.
"""
from __future__ import annotations

import dataclasses
import functools
import random
import time
from dataclasses import dataclass, field
from typing import Optional

import mpmath
import numpy as np
import sympy as sp

from spec import dialects as _dialects
from spec import get as _get
from spec.core import UNIT, Assign, OptimizerSpec, py_float, t, theta
from spec.identities import Undecided, is_zero, run_symbolic
from spec.reductions import REDUCTIONS, AxisMean, AxisNorm, Length, MaxAbs, Norm, Numel, SumSq
from .step import trajectory

EQUAL = "equal"
MAPPED = "equal under mapping"
CONSTANT_LR = "equal for constant lr"
DIFFERENT = "different"
VERDICTS = (EQUAL, MAPPED, CONSTANT_LR, DIFFERENT)

K = sp.Symbol("k", integer=True, nonnegative=True)  # t = k + 2 in the inductive step
THETA0 = sp.Symbol("theta_0", real=True)
MU = sp.Symbol("mu", positive=True)  # a momentum known to be > 0, so `μ > 0` branches collapse
LAM = sp.Symbol("lambda", positive=True)
ETA = sp.Symbol("eta", positive=True)  # a learning rate known to be > 0: max(γ, lr_max₀) is γ for lr_max₀ ∈ {−1, 0}
STEPS = 3
WITNESS_PARAM = 0.5
WITNESS_GRADS = (1.0, -0.25, 0.5)
WITNESS_LRS = (0.1, 0.01, 0.1)


@dataclass(frozen=True)
class Case:
    """One comparison: flags and fixed values on each side, an optional mapping, and what it shows.

    ``torch_fixed``/``dialect_fixed`` map hyperparameter names to numbers (exact binary64 values) or
    SymPy expressions (``MU``: a positive momentum).  ``mapping`` maps a dialect hyperparameter name
    to a SymPy expression of the torch spec's symbols and ``t``.  ``witness`` / ``dialect_witness``
    override hyperparameter values for the numeric witness only.
    """

    label: str
    torch_flags: dict = field(default_factory=dict)
    dialect_flags: dict = field(default_factory=dict)
    torch_fixed: dict = field(default_factory=dict)
    dialect_fixed: dict = field(default_factory=dict)
    mapping: dict = field(default_factory=dict)
    mapping_doc: str = ""
    witness: dict = field(default_factory=dict)
    dialect_witness: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pair:
    torch: str
    dialect: str
    cases: tuple
    note: str = ""


@dataclass
class Witness:
    """Exact θ after each step for both rules on the same float64 input."""

    torch_hyper: dict
    dialect_hyper: dict
    param: float
    grads: tuple
    lrs: Optional[tuple]
    torch_theta: list  # per step: (exact value as a 17-digit string, float64 result)
    dialect_theta: list
    constant_lr_theta: Optional[tuple] = None  # (torch, dialect) θ₃ with a constant lr, for CONSTANT_LR


@dataclass
class Result:
    pair: Pair
    case: Case
    verdict: str
    proof: str
    difference: Optional[sp.Expr] = None  # the two-step difference with changing lr (CONSTANT_LR)
    witness: Optional[Witness] = None


# --------------------------------------------------------------------------- setting up both sides

def _value(x):
    if isinstance(x, sp.Basic):
        return x
    if isinstance(x, bool):
        raise TypeError("flags go in torch_flags/dialect_flags")
    return sp.Integer(x) if isinstance(x, int) else py_float(float(x))


def _flags(spec: OptimizerSpec, given: dict) -> dict:
    """The rule's flags: hyperparameter flags (defaults, maximize off) and tensor flags (``spec.core.TensorFlag``:
    Adafactor's ``factored``, off unless given: a vector's program)."""
    unknown = set(given) - {h.name for h in spec.flags} - {f.name for f in spec.tensor_flags}
    if unknown:
        raise KeyError(f"{spec.name}: no flag(s) {sorted(unknown)}")
    out = {h.name: bool(given.get(h.name, False if h.name == "maximize" else h.default)) for h in spec.flags}
    return {**out, **{f.name: bool(given.get(f.name, False)) for f in spec.tensor_flags}}


def _subs(spec: OptimizerSpec, fixed: dict) -> dict:
    out = {}
    for name, value in fixed.items():
        out[spec.hyper(name).symbol] = _value(value)
    return out


def _mapped(spec: OptimizerSpec, mapping: dict) -> OptimizerSpec:
    """``spec`` with each mapped hyperparameter's symbol replaced, in every statement, by its expression."""
    if not mapping:
        return spec
    repl = {spec.hyper(name).symbol: expr for name, expr in mapping.items()}

    def rule(f, _rule=spec.rule):
        return [Assign(s.target, s.expr.xreplace(repl), s.doc) for s in _rule(f)]

    return dataclasses.replace(spec, name=spec.name + "~mapped", rule=rule)


def _decays(*specs) -> set:
    return {h.symbol for s in specs for h in s.numeric if h.domain == UNIT}


@functools.lru_cache(maxsize=None)
def _positive(name: str) -> sp.Symbol:
    return sp.Symbol(name, positive=True)


def _domain_facts(expr: sp.Expr, decays: set) -> sp.Expr:
    """Replace each ``1 − βᵉ`` (β a decay in [0, 1), e ≥ 1) by a positive symbol: it is positive on the domain."""

    def is_bias(e):
        if not isinstance(e, sp.Add) or len(e.args) != 2 or sp.Integer(1) not in e.args:
            return False
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        base = (-other)
        return isinstance(base, sp.Pow) and base.base in decays

    def positive(e):
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        base = -other
        return _positive(f"P_{{{base.base}^{{{sp.sstr(base.exp)}}}}}")

    return expr.replace(is_bias, positive)


def _opaque_reductions(expr: sp.Expr, decays: set) -> sp.Expr:
    """Each whole-tensor reduction (LAMB's ‖θ‖, ‖u‖) as a non-negative symbol of its own, one symbol for reductions
    of the same kind whose arguments SymPy shows equal element by element (so ‖β₁m + (1 − β₁)g‖ and the lerp's
    ‖m + (1 − β₁)(g − m)‖ are one): an identity in those symbols holds whatever values the tensor gives them, so a
    proof that treats them as independent is a proof for tensors of any size."""
    expr = sp.sympify(expr)
    found = sorted(expr.atoms(*REDUCTIONS), key=sp.default_sort_key)
    classes: list = []  # [(representative, symbol)]
    repl = {}
    for k, r in enumerate(x for x in found if isinstance(x, (Numel, Length))):  # sizes: positive, never split
        repl[r] = sp.Symbol(f"N_{{{k}}}", positive=True)
    for r in (x for x in found if not isinstance(x, (Numel, Length))):
        same = next((sym for rep, sym in classes
                     if type(rep) is type(r) and _equal_plain(rep.args[0] - r.args[0], decays)), None)
        if same is None:
            same = sp.Symbol(f"R_{{{len(classes)}}}", nonnegative=True)
            classes.append((r, same))
        repl[r] = same
    return expr.xreplace(repl)


def _one_element(expr: sp.Expr) -> sp.Expr:
    """A reduction's value on a one-element tensor (‖x‖ = max|x| = |x|, Σx² = x²): what the screen evaluates.  A
    one-element tensor is a tensor, so a difference found there is a difference; an agreement proves nothing."""
    return sp.sympify(expr).replace(lambda e: isinstance(e, (Norm, MaxAbs, AxisNorm)), lambda e: sp.Abs(e.args[0])
                                    ).replace(lambda e: isinstance(e, SumSq), lambda e: e.args[0] ** 2).replace(
        lambda e: isinstance(e, AxisMean), lambda e: e.args[0]).replace(
        lambda e: isinstance(e, (Numel, Length)), lambda e: sp.Integer(1))


def _equal(a: sp.Expr, b: sp.Expr, decays: set) -> bool:
    """SymPy shows a − b ≡ 0: structurally, after expansion, over a common denominator, or by ``simplify``.  A
    reduction R ≥ 0 is split into its two cases, R = 0 and R > 0, which decide the rules' zero-norm branches."""
    d = _opaque_reductions(sp.sympify(a) - sp.sympify(b), decays)
    norms = sorted((x for x in d.free_symbols if x.name.startswith("R_{")), key=sp.default_sort_key)
    if norms:
        cases = [{}]
        for r in norms:
            cases = [{**c, r: v} for c in cases for v in (sp.Integer(0), sp.Symbol(r.name, positive=True))]
        return all(_equal_plain(d.xreplace(c), decays) for c in cases)
    return _equal_plain(d, decays)


def _equal_plain(d: sp.Expr, decays: set) -> bool:
    if d == 0:
        return True
    d = _domain_facts(d, decays)
    for attempt in (sp.expand, lambda e: sp.together(sp.expand(e)), lambda e: sp.cancel(sp.together(e))):
        if attempt(d) == 0:
            return True
    return is_zero(d)


# --------------------------------------------------------------------------- the numeric screen

def _screen_points(symbols, n: int = 3, seed: int = 0) -> list:
    """Exact rational points: decays in (0, 1), other hyperparameters and state > 0, θ and g of both signs."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        point = {}
        for s in sorted(symbols, key=str):
            if s == K:
                point[s] = sp.Integer(rng.randint(0, 3))
            elif str(s).startswith(("theta", "g")):
                point[s] = sp.Rational(rng.randint(-40, 40) or 1, rng.randint(1, 16))
            elif str(s).startswith(("beta", "alpha", "rho")):
                point[s] = sp.Rational(rng.randint(1, 15), 16)
            else:
                point[s] = sp.Rational(rng.randint(1, 40), rng.randint(1, 16))
        out.append(point)
    return out


def _numerically_equal(a: sp.Expr, b: sp.Expr, seed: int = 0) -> bool:
    a, b = _one_element(a), _one_element(b)
    symbols = sp.sympify(a).free_symbols | sp.sympify(b).free_symbols
    for point in _screen_points(symbols, seed=seed):
        va, vb = (sp.sympify(x).xreplace(point).evalf(60) for x in (a, b))
        if not (va.is_number and vb.is_number):
            raise Undecided(f"screen: could not evaluate {a} or {b} at {point}")
        if abs(va - vb) > sp.Float(10, 60) ** -40 * (1 + abs(va)):
            return False
    return True


# --------------------------------------------------------------------------- one step and k steps

def _one_step(spec: OptimizerSpec, flags: dict, subs: dict, start: dict) -> dict:
    """θ and every state after one step, with ``subs`` (hyperparameters, t) and ``start`` (state) substituted."""
    env = dict(start)
    for stmt in spec.statements(flags):
        env[stmt.target] = stmt.expr.xreplace(subs).xreplace(env)
    out = {"theta": env.get(theta, theta)}
    for s in spec.state:
        if s.name != "step":
            out[s.name] = env.get(s.symbol, start.get(s.symbol, s.symbol))
    return out


def _initial(spec: OptimizerSpec, subs: dict) -> dict:
    return {s.symbol: sp.sympify(s.init).xreplace(subs) for s in spec.state if s.name != "step"}


def _kept(state, flags: dict, fixed: dict) -> bool:
    """Whether the dialect keeps ``state`` for these flags and fixed values (``State.when``, e.g. "momentum > 0")."""
    names = {**flags}
    for k, v in fixed.items():
        names[k] = 0.5 if isinstance(v, sp.Symbol) else float(v)  # a positive symbol (μ, λ) is some x > 0
    return state.kept_for(names)


def _inductive(T, tf, tsubs, D, df, dsubs, decays, tfixed=None, dfixed=None) -> tuple:
    """(screen agrees, proved): the first step from the initial states and a step at t = k + 2 from a common state."""
    kept_d = {x.name for x in D.state if _kept(x, df, dfixed or {})}
    shared = [s.name for s in T.state
              if s.name != "step" and s.name in kept_d and _kept(s, tf, tfixed or {})]
    checks = []
    first_t = _one_step(T, tf, {**tsubs, t: sp.Integer(1)}, _initial(T, tsubs))
    first_d = _one_step(D, df, {**dsubs, t: sp.Integer(1)}, _initial(D, dsubs))
    for name in ["theta", *shared]:
        checks.append((first_t[name], first_d[name]))
    # the same state symbol on both sides for the shared state: the spec modules share their symbols
    sym_t = {s.name: s.symbol for s in T.state}
    sym_d = {s.name: s.symbol for s in D.state}
    common = {sym_d[n]: sym_t[n] for n in shared}
    later_t = _one_step(T, tf, {**tsubs, t: K + 2}, {})
    later_d = _one_step(D, df, {**dsubs, t: K + 2}, common)
    for name in ["theta", *shared]:
        checks.append((later_t[name], later_d[name]))
    if not all(_numerically_equal(a, b, seed=i) for i, (a, b) in enumerate(checks)):
        return False, False
    return True, all(_equal(a, b, decays) for a, b in checks)


def _unrolled(T, tf, tsubs, D, df, dsubs, steps, lrs=None) -> tuple:
    grads = sp.symbols(f"g_1:{steps + 1}", real=True)
    a = run_symbolic(T, tf, steps, grads, lrs, subs=tsubs, theta0=THETA0)
    b = run_symbolic(D, df, steps, grads, lrs, subs=dsubs, theta0=THETA0)
    return a, b


# --------------------------------------------------------------------------- the witness

def _num(x) -> float:
    return float(x) if not isinstance(x, sp.Basic) else float(x.evalf(30))


def _witness_hyper(spec: OptimizerSpec, fixed: dict, extra: dict) -> dict:
    out = {}
    for h in spec.hyperparameters:
        if h.is_flag:
            continue
        v = h.default
        if h.name == "lr":
            v = 0.1
        elif h.name == "eps":
            v = 0.01
        elif h.name == "momentum" and h.name in fixed:
            v = 0.5
        if h.name in fixed and not isinstance(fixed[h.name], sp.Symbol):
            v = _num(fixed[h.name]) if isinstance(fixed[h.name], sp.Basic) else fixed[h.name]
        if h.name == "weight_decay" and h.name in fixed and isinstance(fixed[h.name], sp.Symbol):
            v = 0.1
        out[h.name] = v
    out.update(extra)
    return out


def _exact_thetas(spec, hyper, lrs, shape=(1,)) -> list:
    """The exact θ of a one-element tensor of ``shape`` ((1, 1) for a matrix's program: Adafactor's factored one)."""
    snaps = trajectory(spec, hyper, np.full(shape, WITNESS_PARAM), [np.full(shape, x) for x in WITNESS_GRADS],
                       lrs=None if lrs is None else list(lrs))
    first = [np.asarray(s.theta, dtype=object).reshape(-1)[0] for s in snaps]
    return [(mpmath.nstr(x.value, 17), float(x.rounded["float64"])) for x in first]


def witness(pair: Pair, case: Case, verdict: str) -> Witness:
    T, D = _get(pair.torch), _dialects.get(pair.dialect)
    tf, df = _flags(T, case.torch_flags), _flags(D, case.dialect_flags)
    th = {**_witness_hyper(T, case.torch_fixed, case.witness), **tf}
    dh = {**_witness_hyper(D, case.dialect_fixed, case.dialect_witness), **df}
    for name in th:  # the same value for every hyperparameter the two share
        if name in dh and name not in case.dialect_witness and not isinstance(dh[name], bool):
            dh[name] = th[name]
    for f in (*T.tensor_flags, *D.tensor_flags):  # the tensor decides these: a flag asks for a shape that holds it
        th.pop(f.name, None), dh.pop(f.name, None)
    shape = (1, 1) if case.torch_flags.get("factored") else (1,)
    lrs = WITNESS_LRS if verdict == CONSTANT_LR else None
    w = Witness(th, dh, WITNESS_PARAM, WITNESS_GRADS, lrs, _exact_thetas(T, th, lrs, shape),
                _exact_thetas(D, dh, lrs, shape))
    if verdict == CONSTANT_LR:
        w.constant_lr_theta = (_exact_thetas(T, th, None)[-1], _exact_thetas(D, dh, None)[-1])
        if w.constant_lr_theta[0][0] != w.constant_lr_theta[1][0]:
            raise Undecided(f"{pair.dialect} {case.label}: constant-lr witness differs: {w.constant_lr_theta}")
    if w.torch_theta == w.dialect_theta:
        raise Undecided(f"{pair.dialect} {case.label}: the witness shows no difference")
    return w


# --------------------------------------------------------------------------- deciding

def decide(pair: Pair, case: Case) -> Result:
    T, D0 = _get(pair.torch), _dialects.get(pair.dialect)
    D = _mapped(D0, case.mapping)
    tf, df = _flags(T, case.torch_flags), _flags(D, case.dialect_flags)
    tsubs, dsubs = _subs(T, case.torch_fixed), _subs(D0, case.dialect_fixed)
    decays = _decays(T, D0)
    screened, proved = _inductive(T, tf, tsubs, D, df, dsubs, decays, case.torch_fixed, case.dialect_fixed)
    if proved:
        verdict = MAPPED if case.mapping_doc else EQUAL
        how = ("SymPy: the first step from the initial states, and one step at t = k + 2 (k ≥ 0) from an arbitrary "
               "common state, give identical θ and shared state"
               + (f", after substituting {case.mapping_doc}" if case.mapping_doc else ""))
        res = Result(pair, case, verdict, how)
        if verdict == MAPPED:
            res.witness = witness(pair, case, DIFFERENT)
        return res
    if screened:
        raise Undecided(f"{pair.dialect} {case.label}: equal at every screen point but SymPy cannot show it")
    if T.reduces or D.reduces:  # nested trust ratios over three steps are beyond SymPy: the exact witness decides
        how = ("the updates differ: the first step, or a step from a common state, differs at exact rational points "
               "(a one-element tensor), and the exact three-step trajectories below, with a constant lr, differ")
        return Result(pair, case, DIFFERENT, how, witness=witness(pair, case, DIFFERENT))
    # the step-for-step comparison failed: three steps with a constant lr, then changing lrs
    a, b = _unrolled(T, tf, tsubs, D, df, dsubs, STEPS)
    if _numerically_equal(a, b):
        if not _equal(a, b, decays):
            raise Undecided(f"{pair.dialect} {case.label}: constant-lr θ₃ equal at the screen points, not shown")
        lrs = sp.symbols("eta_1:4", positive=True)
        a2, b2 = _unrolled(T, tf, tsubs, D, df, dsubs, 2, lrs)
        diff = sp.factor(sp.simplify(a2 - b2))
        if diff == 0:
            raise Undecided(f"{pair.dialect} {case.label}: equal with changing lr after two steps; unexpected")
        how = ("SymPy: θ₃ after three steps from the initial state with symbolic gradients g₁, g₂, g₃ and one "
               "symbolic lr η is identical; with lr η₁, η₂ the two-step results differ by the expression shown")
        return Result(pair, case, CONSTANT_LR, how, difference=diff, witness=witness(pair, case, CONSTANT_LR))
    how = "the updates differ: θ₃ with symbolic gradients and a constant lr is not the same expression " \
          "(checked at exact rational points)"
    return Result(pair, case, DIFFERENT, how, witness=witness(pair, case, DIFFERENT))


# --------------------------------------------------------------------------- the pairs

# AdEMAMix's warm-ups off (the code's None), and β₁ = 0.9 (β₁ ≠ 0: the reference code keeps no m₁ for β₁ = 0; a
# positive symbol would do, but SymPy 1.14's exp() then fails on the untaken warm-up branch, t/0)
_AD_NO_WARMUP = {"alpha_warmup": 0.0, "beta3_warmup": 0.0, "beta1": 0.9}
_NO_WD = {"weight_decay": 0.0}
_adam_eps_map = {"eps": _get("adam").hyper("eps").symbol * sp.sqrt(1 - _get("adam").hyper("beta2").symbol ** t)}
_ADAM_MAP_DOC = "ε̂ = ε·√(1 − β₂ᵗ) (Keras's epsilon as a function of torch's eps and the step)"

_ADAN = _get("adan")
_adan_paper_betas = {b: 1 - _ADAN.hyper(b).symbol for b in ("beta1", "beta2", "beta3")}
_ADAN_PAPER_DOC = "β′ᵢ = 1 − βᵢ (adan-pytorch's betas are the paper's: the weight of the new term)"
_ADAN_WITNESS = {"beta1": 0.75, "beta2": 0.75, "beta3": 0.75}  # exact complements in binary64, so that
_ADAN_PAPER_WITNESS = {"beta1": 0.25, "beta2": 0.25, "beta3": 0.25}  # both sides' witnesses are the same β

_HF_TORCH = {"lr": 0.01, "weight_decay": 0.0}  # torch's ρ = min(lr, 1/√t) at transformers' relative-step cap
_HF_FIXED = {"weight_decay": 0.0, "beta1": 0.0}  # beta1 = 0: transformers' None, no first moment
_HF_WITNESS = {"eps1": 0.1, "lr": 0.01}
_adafactor_tau = _get("adafactor").hyper("beta2_decay").symbol

PAIRS: tuple = (
    Pair("adam", "adam@keras", (
        Case("core update (λ = 0)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD, mapping=_adam_eps_map,
             mapping_doc=_ADAM_MAP_DOC),
        Case("AMSGrad", {"amsgrad": True}, {"amsgrad": True}, _NO_WD, _NO_WD, _adam_eps_map, _ADAM_MAP_DOC),
        Case("weight decay λ > 0: torch's L2 (Adam) against Keras's decoupled decay",
             torch_fixed={"weight_decay": LAM}, dialect_fixed={"weight_decay": LAM}, mapping=_adam_eps_map),
        Case("weight decay λ > 0: torch's decoupled_weight_decay=True against Keras's decay",
             {"decoupled_weight_decay": True}, {}, {"weight_decay": LAM}, {"weight_decay": LAM}, _adam_eps_map,
             _ADAM_MAP_DOC),
    )),
    Pair("adamw", "adamw@keras", (
        Case("core update with decoupled decay λ", torch_fixed={"weight_decay": LAM},
             dialect_fixed={"weight_decay": LAM}, mapping=_adam_eps_map, mapping_doc=_ADAM_MAP_DOC),
    )),
    Pair("sgd", "sgd@keras", (
        Case("no momentum", torch_fixed={"momentum": 0.0, "dampening": 0.0, **_NO_WD},
             dialect_fixed={"momentum": 0.0, **_NO_WD}),
        Case("momentum μ > 0 (dampening 0)", torch_fixed={"momentum": MU, "dampening": 0.0, **_NO_WD},
             dialect_fixed={"momentum": MU, **_NO_WD}),
        Case("Nesterov, μ > 0", {"nesterov": True}, {"nesterov": True},
             {"momentum": MU, "dampening": 0.0, **_NO_WD}, {"momentum": MU, **_NO_WD}),
        Case("weight decay λ > 0, no momentum (torch: L2 in g; Keras: θ·(1 − lr·λ) first)",
             torch_fixed={"momentum": 0.0, "dampening": 0.0, "weight_decay": LAM},
             dialect_fixed={"momentum": 0.0, "weight_decay": LAM}),
        Case("weight decay λ > 0 with momentum μ > 0",
             torch_fixed={"momentum": MU, "dampening": 0.0, "weight_decay": LAM},
             dialect_fixed={"momentum": MU, "weight_decay": LAM}),
    )),
    Pair("rmsprop", "rmsprop@keras", (
        Case("core update (μ = 0, λ = 0)", torch_fixed={"momentum": 0.0, **_NO_WD},
             dialect_fixed={"momentum": 0.0, **_NO_WD}),
        Case("ε = 0, momentum μ > 0", torch_fixed={"momentum": MU, "eps": 0.0, **_NO_WD},
             dialect_fixed={"momentum": MU, "eps": 0.0, **_NO_WD}),
        Case("ε = 0, centered", {"centered": True}, {"centered": True}, {"momentum": 0.0, "eps": 0.0, **_NO_WD},
             {"momentum": 0.0, "eps": 0.0, **_NO_WD}),
    )),
    Pair("rmsprop", "rmsprop@tf", (
        Case("core update (μ = 0, λ = 0)", torch_fixed={"momentum": 0.0, **_NO_WD}, dialect_fixed={"momentum": 0.0}),
        Case("ε = 0, μ > 0", torch_fixed={"momentum": MU, "eps": 0.0, **_NO_WD},
             dialect_fixed={"momentum": MU, "eps": 0.0}),
    ), note="TF1's mean square starts at 1, so even with ε = 0 and a constant lr the trajectories differ."),
    Pair("adagrad", "adagrad@keras", (
        Case("core update (same initial sum s₀, λ = 0, no lr_decay)", torch_fixed={"lr_decay": 0.0, **_NO_WD},
             dialect_fixed=_NO_WD, witness={"initial_accumulator_value": 0.1}),
        Case("ε = 0", torch_fixed={"lr_decay": 0.0, "eps": 0.0, **_NO_WD}, dialect_fixed={"eps": 0.0, **_NO_WD}),
    )),
    Pair("adamax", "adamax@keras", (
        Case("core update (λ = 0)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("ε = 0", torch_fixed={"eps": 0.0, **_NO_WD}, dialect_fixed={"eps": 0.0, **_NO_WD}),
    )),
    Pair("nadam", "nadam@keras", (
        Case("core update (λ = 0)", torch_fixed={"momentum_decay": 1.0, **_NO_WD}, dialect_fixed=_NO_WD,
             mapping_doc="ψ = 1 (torch's momentum_decay; Keras hard-codes 0.96ᵗ)",
             witness={"momentum_decay": 0.004}),
    )),
    Pair("adadelta", "adadelta@keras", (
        Case("core update (λ = 0)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("weight decay λ > 0: L2 against decoupled decay", torch_fixed={"weight_decay": LAM},
             dialect_fixed={"weight_decay": LAM}),
    )),
    Pair("adam", "adam@optax", (
        Case("core update (λ = 0, ε_root = 0: Optax's default)", torch_fixed=_NO_WD, dialect_fixed={"eps_root": 0.0}),
    )),
    Pair("adamw", "adamw@optax", (
        Case("core update with decoupled decay λ (ε_root = 0)", torch_fixed={"weight_decay": LAM},
             dialect_fixed={"eps_root": 0.0, "weight_decay": LAM}),
    )),
    Pair("sgd", "sgd@optax", (
        Case("no momentum (momentum=None)", torch_fixed={"momentum": 0.0, "dampening": 0.0, **_NO_WD},
             dialect_fixed={"momentum": 0.0}),
        Case("momentum μ > 0 (dampening 0)", torch_fixed={"momentum": MU, "dampening": 0.0, **_NO_WD},
             dialect_fixed={"momentum": MU}),
        Case("Nesterov, μ > 0", {"nesterov": True}, {"nesterov": True},
             {"momentum": MU, "dampening": 0.0, **_NO_WD}, {"momentum": MU}),
    )),
    Pair("rmsprop", "rmsprop@optax", (
        Case("core update (eps_in_sqrt=True: Optax's default; μ = 0)", {}, {"eps_in_sqrt": True},
             {"momentum": 0.0, **_NO_WD}, {"momentum": 0.0, "initial_scale": 0.0}),
        Case("eps_in_sqrt=False, μ = 0", {}, {"eps_in_sqrt": False}, {"momentum": 0.0, **_NO_WD},
             {"momentum": 0.0, "initial_scale": 0.0}),
        Case("eps_in_sqrt=False, centered", {"centered": True}, {"eps_in_sqrt": False, "centered": True},
             {"momentum": 0.0, **_NO_WD}, {"momentum": 0.0, "initial_scale": 0.0}),
        Case("eps_in_sqrt=False, momentum μ > 0", {}, {"eps_in_sqrt": False}, {"momentum": MU, **_NO_WD},
             {"momentum": MU, "initial_scale": 0.0}),
    )),
    Pair("adagrad", "adagrad@optax", (
        Case("core update (same initial sum s₀, λ = 0, no lr_decay)", torch_fixed={"lr_decay": 0.0, **_NO_WD},
             witness={"initial_accumulator_value": 0.1}),
    )),
    Pair("adamax", "adamax@optax", (
        Case("core update (λ = 0)", torch_fixed=_NO_WD),
    )),
    Pair("nadam", "nadam@optax", (
        Case("core update (λ = 0, ε_root = 0)", torch_fixed=_NO_WD, dialect_fixed={"eps_root": 0.0}),
    )),
    Pair("adadelta", "adadelta@optax", (
        Case("core update with L2 weight decay λ", torch_fixed={"weight_decay": LAM},
             dialect_fixed={"weight_decay": LAM}),
    )),
    Pair("lion", "lion@pytorch-optimizer", (
        Case("core update (λ = 0; lerps for c and m)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("decoupled decay λ > 0 (weight_decouple=True, its default)", {}, {"weight_decouple": True},
             {"weight_decay": LAM}, {"weight_decay": LAM}),
        Case("fixed_decay=True: θ·(1 − λ), not scaled by lr", {}, {"weight_decouple": True, "fixed_decay": True},
             {"weight_decay": LAM}, {"weight_decay": LAM}),
        Case("weight_decouple=False: L2, g + λθ", {}, {"weight_decouple": False},
             {"weight_decay": LAM}, {"weight_decay": LAM}),
    ), note="Lion has no torch.optim class: the left column is the spec of the paper and its authors' code "
            "(spec/lion.py).  fixed_decay=True equals the spec under λ' = lr·λ for a constant lr only."),
    Pair("adan", "adan@pytorch-optimizer", (
        Case("core update (λ = 0; lerps for m and v)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("proximal decay λ > 0 (no_prox=False; weight_decouple=False, the defaults)", {}, {},
             {"weight_decay": LAM}, {"weight_decay": LAM}),
        Case("decay before the step (no_prox=True; weight_decouple=True)", {"no_prox": True},
             {"weight_decouple": True}, {"weight_decay": LAM}, {"weight_decay": LAM}),
    ), note="Adan has no torch.optim class: the left column is the spec of its authors' reference code "
            "(spec/adan.py).  Both count t per parameter here; the reference code and pytorch-optimizer count "
            "per group (docs/measured/third-party.md)."),
    Pair("adan", "adan@adan-pytorch", (
        Case("core update (λ = 0), β mapped to the paper's convention", torch_fixed=_NO_WD, dialect_fixed=_NO_WD,
             mapping=_adan_paper_betas, mapping_doc=_ADAN_PAPER_DOC, witness=_ADAN_WITNESS,
             dialect_witness=_ADAN_PAPER_WITNESS),
        Case("proximal decay λ > 0, β mapped", torch_fixed={"weight_decay": LAM}, dialect_fixed={"weight_decay": LAM},
             mapping=_adan_paper_betas, mapping_doc=_ADAN_PAPER_DOC, witness=_ADAN_WITNESS,
             dialect_witness=_ADAN_PAPER_WITNESS),
    ), note="adan-pytorch writes the paper's β (the weight of the new term): the comparison maps β' = 1 − β.  "
            "It leaves the moments at 0 at a parameter's first step, which moves θ only by the decay, and its "
            "bias corrections count that step: different from the first step on."),
    Pair("ademamix", "ademamix@pytorch-optimizer", (
        Case("core update (λ = 0, no warm-up, β₁ = 0.9; lerps for m₁ and m₂)",
             torch_fixed={**_NO_WD, **_AD_NO_WARMUP}, dialect_fixed={**_NO_WD, "t_alpha_beta3": 0.0, "beta1": _AD_NO_WARMUP["beta1"]}),
        Case("decoupled decay λ > 0 (weight_decouple=True), no warm-up", {}, {"weight_decouple": True},
             {"weight_decay": LAM, **_AD_NO_WARMUP}, {"weight_decay": LAM, "t_alpha_beta3": 0.0, "beta1": _AD_NO_WARMUP["beta1"]}),
        Case("weight_decouple=False (its default): L2, g + λθ, no warm-up", {}, {"weight_decouple": False},
             {"weight_decay": LAM, **_AD_NO_WARMUP}, {"weight_decay": LAM, "t_alpha_beta3": 0.0, "beta1": _AD_NO_WARMUP["beta1"]}),
        Case("fixed_decay=True: θ·(1 − λ), not scaled by lr, no warm-up", {},
             {"weight_decouple": True, "fixed_decay": True},
             {"weight_decay": LAM, **_AD_NO_WARMUP}, {"weight_decay": LAM, "t_alpha_beta3": 0.0, "beta1": _AD_NO_WARMUP["beta1"]}),
        Case("warm-ups T_α = T_β₃ = T = 8 (λ = 0): the paper's formulas against the code's", torch_fixed={
            **_NO_WD, "alpha_warmup": 8.0, "beta3_warmup": 8.0}, dialect_fixed={**_NO_WD, "t_alpha_beta3": 8.0}),
    ), note="AdEMAMix has no torch.optim class: the left column is the spec of the paper and its authors' code "
            "(spec/ademamix.py).  pytorch-optimizer's one warm-up length T stands for both of the reference "
            "code's; its defaults differ (α = 5 against 2)."),
    Pair("schedulefree_adamw@schedulefree", "schedulefree_adamw@pytorch-optimizer", (
        Case("core update (λ = 0, no warm-up, r = 0)", torch_fixed={**_NO_WD, "warmup_steps": 0.0, "r": 0.0},
             dialect_fixed={**_NO_WD, "warmup_steps": 0.0, "r": 0.0}, witness={"eps": 0.0}),
    ), note="Both keep y in the parameter (schedulefree's AdamWScheduleFree, its y form, on the left; it equals the "
            "reference form spec/schedulefree.py in exact arithmetic: spec/identities.py).  pytorch-optimizer adds "
            "10⁻¹⁵ to v/bc₂ inside the root; with that term 0 its rule is the left one statement for statement."),
    Pair("lion", "lion@optax", (
        Case("core update (λ = 0: add_decayed_weights skipped)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("decoupled decay λ > 0: θ − lr·(sign(c) + λθ) against θ·(1 − lr·λ) − lr·sign(c)",
             torch_fixed={"weight_decay": LAM}, dialect_fixed={"weight_decay": LAM}),
    ), note="Optax writes the paper's order and jnp.sign, whose NaN is NaN (torch's sign: 0); its λ defaults to "
            "1e-3, the spec's to 0."),
    Pair("adan", "adan@optax", (
        Case("core update (λ = 0, ε_root = 0)", torch_fixed=_NO_WD, dialect_fixed={**_NO_WD, "eps_root": 0.0}),
        Case("decay before the step (no_prox=True) against add_decayed_weights, λ > 0, ε_root = 0",
             {"no_prox": True}, {}, {"weight_decay": LAM}, {"weight_decay": LAM, "eps_root": 0.0}),
    ), note="Optax weighs the gradient difference by 1 − b2 where the reference code weighs it by b2 (optax PR "
            "#1715): different from the second step on, whatever ε_root."),
    Pair("ademamix", "ademamix@optax", (
        Case("core update (λ = 0, no warm-up, β₁ = 0.9, ε_root = 0)", torch_fixed={**_NO_WD, **_AD_NO_WARMUP},
             dialect_fixed={**_NO_WD, "eps_root": 0.0, "beta1": _AD_NO_WARMUP["beta1"]}),
        Case("decoupled decay λ > 0, no warm-up, ε_root = 0", torch_fixed={"weight_decay": LAM, **_AD_NO_WARMUP},
             dialect_fixed={"weight_decay": LAM, "eps_root": 0.0, "beta1": _AD_NO_WARMUP["beta1"]}),
    ), note="Optax has no warm-ups of its own (b3 and alpha may be schedules); its α defaults to 5, the reference "
            "code's to 2."),
    Pair("lamb", "lamb@pytorch-optimizer", (
        Case("core update (λ = 0): v not bias-corrected, lr/(1 − β₁ᵗ) after the trust ratio, ε added to ‖u‖",
             torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("its closest configuration: λ > 0 inside u (weight_decouple=False) and step size lr (adam_debias=True)",
             {}, {"weight_decouple": False, "adam_debias": True}, {"weight_decay": LAM}, {"weight_decay": LAM}),
    ), note="LAMB has no torch.optim class: the left column is the spec of the paper's Algorithm 2 with bias "
            "correction (spec/lamb.py).  pytorch-optimizer also clamps ‖θ‖ at 10 (not reached by the witness) and, "
            "by default, decays θ·(1 − lr·λ) before the norms, outside the trust ratio."),
    Pair("lamb", "lamb@timm", (
        Case("core update (λ = 0): timm skips the trust ratio (always_adapt=False, its default)", torch_fixed=_NO_WD,
             dialect_fixed=_NO_WD),
        Case("its default λ > 0 inside u: (m/bc₁)/(√v/√bc₂ + ε) + λθ against (m/bc₁)/(√(v/bc₂) + ε) + λθ",
             torch_fixed={"weight_decay": LAM}, dialect_fixed={"weight_decay": LAM}),
        Case("λ = 0 with always_adapt=True", {}, {"always_adapt": True}, _NO_WD, _NO_WD),
    ), note="timm's Lamb (NVIDIA's FusedLAMB form) is audited with max_grad_norm=None; its default 1.0 clips every "
            "gradient by the global norm over all groups first, which no spec here states."),
    Pair("lamb", "lamb@keras", (
        Case("core update (λ = 0; m + (g − m)·(1 − β₁), likewise v)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("weight decay λ > 0: inside u under the trust ratio against Keras's θ·(1 − λ·lr) before the step",
             torch_fixed={"weight_decay": LAM}, dialect_fixed={"weight_decay": LAM}),
    ), note="Keras computes β₁ᵗ and β₂ᵗ in the variable's dtype, which the comparison (exact arithmetic) does not "
            "see: docs/measured/third-party.md."),
    Pair("lion", "lion@keras", (
        Case("core update (λ = 0)", torch_fixed=_NO_WD, dialect_fixed=_NO_WD),
        Case("decoupled decay λ > 0", torch_fixed={"weight_decay": LAM}, dialect_fixed={"weight_decay": LAM}),
    ), note="Keras's Lion is the spec's statements; its defaults (lr = 1e-3) and domain (0 < β₁ ≤ 1) differ."),
    Pair("lamb", "lamb@optax", (
        Case("core update (λ = 0, ε_root = 0: Optax's default)", torch_fixed=_NO_WD,
             dialect_fixed={**_NO_WD, "eps_root": 0.0}),
        Case("weight decay λ > 0 inside u, before the trust ratio (ε_root = 0)", torch_fixed={"weight_decay": LAM},
             dialect_fixed={"weight_decay": LAM, "eps_root": 0.0}),
    ), note="The proofs keep each norm as a non-negative unknown and split it into = 0 and > 0: they hold for "
            "tensors of any size.  Over the reals only: at a NaN norm Optax's trust ratio is NaN, the spec's 1."),
    Pair("adafactor", "adafactor@transformers", (
        Case("a vector's whole second moment (relative step, parameter scale, λ = 0, no β₁): ε₁ added to g² "
             "against torch's floor max(V̂, ε₁²)", torch_fixed=_HF_TORCH, dialect_fixed=_HF_FIXED,
             witness=_HF_WITNESS, dialect_witness={"eps1": _HF_WITNESS["eps1"]}),
        Case("a matrix's factored moment (the same options): rsqrt(R/mean R)·rsqrt(C) of g² + ε₁ against "
             "rsqrt(max(R·C/max(mean R, ε₁), ε₁²))", {"factored": True}, {"factored": True}, _HF_TORCH,
             _HF_FIXED, witness=_HF_WITNESS, dialect_witness={"eps1": _HF_WITNESS["eps1"]}),
        Case("decay λ > 0: θ − λ·α·θ after the update is formed, α the scaled step, against θ·(1 − lr·λ) first",
             torch_fixed={**_HF_TORCH, "weight_decay": LAM}, dialect_fixed={**_HF_FIXED, "weight_decay": LAM},
             witness={"eps1": 0.0, "lr": 0.01}, dialect_witness={"eps1": 0.0}),
    ), note="torch's Adafactor on the left (spec/adafactor.py).  With relative_step and scale_parameter (the "
            "defaults) transformers' step size max(ε₂, RMS(θ))·min(10⁻², 1/√t) is torch's with lr = 10⁻²; ε₁ "
            "enters differently (added to every g² by transformers, a floor of the estimate in torch), the clip's "
            "max is torch.clamp (NaN kept) against Python's max (NaN dropped), and the decay scales by α, not lr.  "
            "The witnesses take ε₁ = 0.1 on both sides, where the two uses of ε₁ part visibly (at transformers' "
            "default 10⁻³⁰ the exact θ agree to 17 digits)."),
    Pair("adafactor", "adafactor@optax", (
        Case("a vector's whole second moment (λ = 0, no momentum, lr = 10⁻², c = −τ): ε added to g², lr a plain "
             "factor (no 1/√t cap), the parameter scale max(RMS(θ), 10⁻³) after the clip",
             torch_fixed=_HF_TORCH, dialect_fixed={"weight_decay": 0.0, "momentum": 0.0, "lr": 0.01},
             mapping={"decay_rate": -_adafactor_tau}, mapping_doc="decay_rate = −τ",
             witness=_HF_WITNESS, dialect_witness={"eps": _HF_WITNESS["eps1"], "lr": 0.01, "decay_rate": 0.8}),
    ), note="torch's Adafactor on the left.  Optax's is transformers' with relative_step=False (lr fixed), its "
            "decay exponent's sign flipped (decay_rate = 0.8 for transformers' −0.8), NaN kept by the parameter "
            "scale's floor, λ·θ not scaled by lr, and factoring only where a matrix's two largest dimensions are "
            "both ≥ 128 (docs/measured/third-party.md)."),
    Pair("schedulefree_adamw@schedulefree", "schedulefree_adamw@optax", (
        Case("core update (lr > 0, λ = 0, no warm-up, r = 0)",
             torch_fixed={"lr": ETA, **_NO_WD, "warmup_steps": 0.0, "r": 0.0},
             dialect_fixed={"lr": ETA, **_NO_WD, "warmup_steps": 0.0}, witness={"eps": 0.0}),
        Case("decay λ > 0 at y, no warm-up, r = 0",
             torch_fixed={"lr": ETA, "weight_decay": LAM, "warmup_steps": 0.0, "r": 0.0},
             dialect_fixed={"lr": ETA, "weight_decay": LAM, "warmup_steps": 0.0}),
        Case("warm-up W = 4 (λ = 0, r = 0): the z step reads the schedule one step behind the weights",
             torch_fixed={"lr": ETA, **_NO_WD, "warmup_steps": 4.0, "r": 0.0},
             dialect_fixed={"lr": ETA, **_NO_WD, "warmup_steps": 4.0}),
    ), note="Both keep y and z, not x (schedulefree's AdamWScheduleFree on the left); Optax recomputes x from them. "
            "Without a warm-up the two are the same update; with one, Optax's z step lags (optax PR #1744)."),
)


#: Dialects related to their base spec by an identity of spec/identities.py instead of a pair here: the y form
#: keeps no x, so the step-by-step induction from a common state does not apply, and the identity proves the step
#: from any state with y = β₁·x + (1 − β₁)·z.
STATED_BY_IDENTITY = {"schedulefree_adamw@schedulefree": "schedulefree_y_form_is_reference_form",
                      "schedulefree_sgd@schedulefree": "schedulefree_sgd_y_form_is_reference_form"}


def results() -> list:
    """Every case of every pair, decided (deterministic; a few seconds)."""
    return [decide(p, c) for p in PAIRS for c in p.cases]


def verdict(pair: Pair, rs: list) -> str:
    """A pair's headline verdict: its first case's (the core update)."""
    return next(r.verdict for r in rs if r.pair is pair)


if __name__ == "__main__":  # pragma: no cover - a quick look
    for p in PAIRS:
        for c in p.cases:
            t0 = time.time()
            r = decide(p, c)
            print(f"{p.torch:8s} {p.dialect:15s} {c.label[:50]:50s} {r.verdict:22s} {time.time() - t0:5.1f}s")
