"""Learning-rate schedules as data: torch.optim.lr_scheduler (torch 2.13) as exact SymPy.

A schedule is the sequence of learning rates ``lr_0, lr_1, ...`` that torch's
scheduler leaves in ``param_group["lr"]``: ``lr_0`` after the constructor
(which performs step 0 itself), ``lr_n`` after the n-th call of ``step()``.
Each schedule is given twice:

* ``closed_form``: ``lr_n`` as a SymPy expression of the step index ``n``
  (an integer ≥ 0), the optimizer's initial lr ``eta_0`` and the numeric
  hyperparameters, piecewise in ``n``;
* ``recursive_form`` (the chainable schedulers only): ``lr_n`` in terms of
  ``eta_prev = lr_{n-1}`` (with ``lr_{-1} = eta_0``, the lr the optimizer had
  before the constructor ran), exactly as torch's ``get_lr`` computes it.

Both are exact real arithmetic: a Python float in torch's code or in a
hyperparameter means its exact binary64 value, integer arithmetic (``//``,
``%``) is ``floor``/``Mod``, and ``math.pi`` means π (its rounding is one of
torch's rounding errors, charged in the tolerance model of
``reference.schedule.lr_error_bounds``).  In exact arithmetic the two forms
agree; in floating point they do not (torch's measured deviations are recorded in
``conformance/known_deviations.py``, with evidence in ``docs/measured/known-deviations.md``).

``ScheduleSpec.torch_form`` says which of the two torch evaluates on its
normal path (``scheduler.step()`` without an epoch): the chainable schedulers
(StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
PolynomialLR, and SequentialLR built of them) update ``group["lr"]`` from its
previous value; CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR compute
each lr afresh from base values.

Hyperparameters use ``spec.core.Hyperparameter``.  Their domains are what
torch accepts without raising, in the constructor *or at any later step*:
torch's constructors validate little, and several invalid values only fail at
the first ``step()`` (``StepLR(step_size=0)`` and ``CosineAnnealingLR(T_max=0)``
raise ``ZeroDivisionError`` at step 1).  ``ScheduleSpec.complete`` raises
``InvalidHyperparameter`` (a ``ValueError``) for exactly those values, naming
what torch does.  Where torch annotates an argument ``int`` but duck-types
floats, the domain is the integers; non-finite floats are outside every
domain.  Callable arguments (``LambdaLR``, CyclicLR's ``scale_fn``) are not
specified.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import sympy as sp

from .core import (CLOSED_UNIT, REALS, Constraint, Hyperparameter, HyperparameterLookup, Interval, InvalidHyperparameter,
                   py_float, when)

__all__ = [
    "n", "eta0", "eta_prev", "REQUIRED", "Integers", "FloatInterval", "Choice", "IntTuple",
    "ScheduleSpec", "SCHEDULES", "get",
]

# The inputs every schedule expression shares.
n = sp.Symbol("n", integer=True, nonnegative=True)  # the step index: lr_n is the lr after n calls of step()
eta0 = sp.Symbol("eta_0", real=True)  # the optimizer's lr before the scheduler was built (torch: initial_lr)
eta_prev = sp.Symbol("eta_prev", real=True)  # lr_{n-1} in a recursive form; lr_{-1} = eta_0


# --------------------------------------------------------------------------- domains


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()  # the default of a hyperparameter torch has no default for


@dataclass(frozen=True)
class Integers:
    """Python ints (not bools) in ``[lo, hi]``, minus ``exclude``; ``allow_none`` admits None."""

    lo: Optional[int] = None
    hi: Optional[int] = None
    exclude: tuple = ()
    allow_none: bool = False

    def __contains__(self, x) -> bool:
        if x is None:
            return self.allow_none
        if isinstance(x, bool) or not isinstance(x, int):
            return False
        if (self.lo is not None and x < self.lo) or (self.hi is not None and x > self.hi):
            return False
        return x not in self.exclude

    def describe(self) -> str:
        lo = "-∞" if self.lo is None else str(self.lo)
        hi = "∞" if self.hi is None else str(self.hi)
        out = f"an int in [{lo}, {hi}]"
        if self.exclude:
            out += " other than " + ", ".join(map(str, self.exclude))
        return out + (" or None" if self.allow_none else "")


@dataclass(frozen=True)
class FloatInterval(Interval):
    """An ``Interval`` that admits Python floats only (OneCycleLR checks ``isinstance(pct_start, float)``)."""

    def __contains__(self, x) -> bool:
        return isinstance(x, float) and Interval.__contains__(self, x)

    def describe(self) -> str:
        return "a float in " + Interval.describe(self)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings."""

    options: tuple

    def __contains__(self, x) -> bool:
        return isinstance(x, str) and x in self.options

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class IntTuple:
    """A list or tuple of ints (MultiStepLR's milestones; order and repeats allowed)."""

    def __contains__(self, x) -> bool:
        return isinstance(x, (list, tuple)) and all(isinstance(m, int) and not isinstance(m, bool) for m in x)

    def describe(self) -> str:
        return "a list or tuple of ints"


def _is_symbolic(h: Hyperparameter) -> bool:
    """Numeric hyperparameters appear as symbols; flags, choices and tuples shape the expression."""
    return isinstance(h.domain, (Interval, Integers))


# --------------------------------------------------------------------------- the spec type


@dataclass(frozen=True)
class ScheduleSpec(HyperparameterLookup):
    """A learning-rate schedule: its hyperparameters and its lr at step ``n``, exactly.

    ``closed_form(structure)`` and ``recursive_form(structure)`` return SymPy
    expressions for the values of the *structural* hyperparameters (flags,
    choices, tuples: a dict name → value); numeric hyperparameters appear in
    them as their ``Hyperparameter.symbol``.  ``momentum_form`` is the
    momentum (or β₁) a schedule with ``cycle_momentum`` writes into the
    optimizer.  ``last_step(hyper)`` is the largest ``n`` torch computes
    (``None``: unbounded).
    """

    name: str
    title: str
    torch_class: str
    hyperparameters: tuple
    closed_form: Callable[[dict], sp.Expr]
    recursive_form: Optional[Callable[[dict], sp.Expr]] = None
    doc: str = ""
    torch_form: str = "closed"  # which form torch's step() evaluates: "closed" or "recursive"
    constraints: tuple = ()
    momentum_form: Optional[Callable[[dict], sp.Expr]] = None
    last_step: Callable[[dict], Optional[int]] = field(default=lambda hyper: None)
    normalize: Callable[[dict], dict] = field(default=lambda hyper: hyper)
    uses_eta0: bool = True  # False where torch overwrites the optimizer's lr (CyclicLR, OneCycleLR)
    edge_doc: str = ""

    # -- lookups -----------------------------------------------------------
    @property
    def numeric(self) -> tuple:
        return tuple(h for h in self.hyperparameters if _is_symbolic(h))

    @property
    def structural(self) -> tuple:
        return tuple(h for h in self.hyperparameters if not _is_symbolic(h))

    @property
    def defaults(self) -> dict:
        return {h.name: h.default for h in self.hyperparameters if h.default is not REQUIRED}

    def symbols(self) -> dict:
        """Name → SymPy symbol of every input of the expressions."""
        out = {"n": n, "eta0": eta0, "eta_prev": eta_prev}
        out.update({h.name: h.symbol for h in self.numeric})
        return out

    # -- validation ----------------------------------------------------------
    def complete(self, hyper: dict) -> dict:
        """Defaults filled in and normalized; ``InvalidHyperparameter`` exactly where torch would raise."""
        unknown = set(hyper) - {h.name for h in self.hyperparameters}
        if unknown:
            raise InvalidHyperparameter(f"{self.name}: unknown hyperparameter(s) {sorted(unknown)}")
        full = {**self.defaults, **hyper}
        for h in self.hyperparameters:
            if h.name not in full:
                raise InvalidHyperparameter(f"{self.name}: {h.name} is required (torch has no default)")
            value = full[h.name]
            if not h.accepts(value):
                want = "a bool" if h.is_flag else h.domain.describe()
                if isinstance(h.domain, Interval) and not isinstance(h.domain, FloatInterval):
                    want = f"a finite real in {h.domain.describe()}"
                raise InvalidHyperparameter(f"{self.name}: {h.name}={value!r} is invalid; expected {want} "
                                            f"({h.name}: {h.doc})")
            if isinstance(h.domain, IntTuple):
                full[h.name] = tuple(value)
        full = self.normalize(full)
        for c in self.constraints:
            if not c.holds(full):
                raise InvalidHyperparameter(f"{self.name}: {c.doc} (got "
                                            + ", ".join(f"{k}={v!r}" for k, v in full.items()) + ")")
        return full

    def structure(self, hyper: dict) -> dict:
        """The structural hyperparameters' values (what the expressions' shape depends on)."""
        return {h.name: hyper[h.name] for h in self.structural}

    # -- expressions -----------------------------------------------------------
    def expression(self, hyper: dict, form: str = "closed", quantity: str = "lr") -> sp.Expr:
        """The expression of ``quantity`` ("lr" or "momentum") in ``form`` for these hyperparameters."""
        hyper = self.complete(hyper)
        s = self.structure(hyper)
        if quantity == "momentum":
            if self.momentum_form is None or not hyper.get("cycle_momentum", False):
                raise ValueError(f"{self.name} cycles no momentum for these hyperparameters")
            return self.momentum_form(s)
        if quantity != "lr":
            raise ValueError(f"quantity must be 'lr' or 'momentum', not {quantity!r}")
        if form == "closed":
            return self.closed_form(s)
        if form == "recursive":
            if self.recursive_form is None:
                raise ValueError(f"{self.name} has no recursive form: torch computes each lr from base values")
            return self.recursive_form(s)
        raise ValueError(f"form must be 'closed' or 'recursive', not {form!r}")

    def substituted(self, hyper: dict, form: str = "closed", quantity: str = "lr", eta_0=None) -> sp.Expr:
        """The expression with the hyperparameters' exact values (and ``eta_0``, if given) substituted."""
        hyper = self.complete(hyper)
        subs = {h.symbol: (sp.Integer(hyper[h.name]) if isinstance(hyper[h.name], int) else py_float(hyper[h.name]))
                for h in self.numeric}
        if eta_0 is not None:
            subs[eta0] = py_float(float(eta_0))
        return self.expression(hyper, form, quantity).xreplace(subs)


def _int(name, default, domain, doc, why="") -> Hyperparameter:
    return Hyperparameter(name, default, domain, f"{doc}. {why}" if why else doc)


def _real(name, default, doc, domain=REALS, latex=None) -> Hyperparameter:
    return Hyperparameter(name, default, domain, doc, latex=latex)


def _flag(name, default, doc) -> Hyperparameter:
    return Hyperparameter(name, default, bool, doc)


def _cos_pi(x):
    """cos(π·x), as torch's ``math.cos(math.pi * x)``."""
    return sp.cos(sp.pi * x)


# --------------------------------------------------------------------------- StepLR

STEP_SIZE = _int("step_size", REQUIRED, Integers(exclude=(0,)), "period of the decay, in steps",
                 "torch accepts step_size=0 in the constructor (its step 0 short-circuits) and raises "
                 "ZeroDivisionError ('integer modulo by zero') at the first step()")
GAMMA_STEP = _real("gamma", 0.1, "multiplicative decay factor (any real: torch checks nothing)")
_s, _gamma = STEP_SIZE.symbol, GAMMA_STEP.symbol

STEP_LR = ScheduleSpec(
    name="step",
    title="StepLR",
    torch_class="torch.optim.lr_scheduler.StepLR",
    hyperparameters=(STEP_SIZE, GAMMA_STEP),
    # n % s == 0 iff |s| divides n, also for the negative step sizes torch accepts.
    closed_form=lambda s: eta0 * _gamma ** sp.floor(n / sp.Abs(_s)),
    recursive_form=lambda s: sp.Piecewise(
        (eta_prev, sp.Or(sp.Eq(n, 0), sp.Ne(sp.Mod(n, _s), 0))),
        (eta_prev * _gamma, True)),
    torch_form="recursive",
    doc="lr·γ whenever n is a nonzero multiple of step_size (torch: `last_epoch % step_size`); "
        "lr_n = η₀·γ^⌊n/|step_size|⌋.  A negative step_size behaves as its absolute value.",
)

# --------------------------------------------------------------------------- MultiStepLR

MILESTONES = Hyperparameter("milestones", REQUIRED, IntTuple(),
                            "steps at which lr is multiplied by γ; torch keeps a Counter, so a milestone "
                            "listed k times multiplies by γ^k; order does not matter; a milestone 0 "
                            "applies in the constructor; negative milestones never apply")
GAMMA_MULTI = _real("gamma", 0.1, "multiplicative decay factor")


def _multistep_closed(s):
    return eta0 * sp.Mul(*[when(n >= m, _gamma, 1) for m in s["milestones"] if m >= 0])


def _multistep_recursive(s):
    counts = {}
    for m in s["milestones"]:
        counts[m] = counts.get(m, 0) + 1
    factors = [when(sp.Eq(n, m), _gamma ** c, 1) for m, c in sorted(counts.items()) if m >= 0]
    return eta_prev * sp.Mul(*factors)


MULTI_STEP_LR = ScheduleSpec(
    name="multistep",
    title="MultiStepLR",
    torch_class="torch.optim.lr_scheduler.MultiStepLR",
    hyperparameters=(MILESTONES, GAMMA_MULTI),
    closed_form=_multistep_closed,
    recursive_form=_multistep_recursive,
    torch_form="recursive",
    doc="lr_n = η₀·γ^(number of milestones m ≤ n, with multiplicity).  torch: "
        "`group['lr'] * gamma ** milestones[last_epoch]` at a milestone (one pow and one multiply).",
)

# --------------------------------------------------------------------------- ExponentialLR

GAMMA_EXP = _real("gamma", REQUIRED, "multiplicative factor per step (any real; negative alternates the sign)")

EXPONENTIAL_LR = ScheduleSpec(
    name="exponential",
    title="ExponentialLR",
    torch_class="torch.optim.lr_scheduler.ExponentialLR",
    hyperparameters=(GAMMA_EXP,),
    closed_form=lambda s: eta0 * _gamma ** n,
    recursive_form=lambda s: when(sp.Eq(n, 0), eta_prev, eta_prev * _gamma),
    torch_form="recursive",
    doc="lr_n = η₀·γⁿ; torch multiplies by γ once per step, so lr_n carries n roundings.",
)

# --------------------------------------------------------------------------- CosineAnnealingLR

T_MAX = _int("T_max", REQUIRED, Integers(exclude=(0,)), "half period of the cosine, in steps",
             "torch's constructor accepts T_max=0 and its first step() raises ZeroDivisionError "
             "('integer modulo by zero'); a negative T_max behaves as |T_max| (cos is even)")
ETA_MIN = _real("eta_min", 0.0, "the lr at odd multiples of T_max (may exceed η₀: the cosine is then inverted)")
_T, _eta_min = T_MAX.symbol, ETA_MIN.symbol


def _cosine_closed(s):
    return _eta_min + (eta0 - _eta_min) * (1 + _cos_pi(n / _T)) / 2


def _cosine_recursive(s):
    return sp.Piecewise(
        (eta_prev, sp.Eq(n, 0)),  # _is_initial: the constructor leaves lr alone
        # (n − 1 − T) % 2T == 0: the denominator below would be 1 + cos((2k+1)π) = 0 (pytorch issue 17913)
        (eta_prev + (eta0 - _eta_min) * (1 - sp.cos(sp.pi / _T)) / 2, sp.Eq(sp.Mod(n - 1 - _T, 2 * _T), 0)),
        ((1 + _cos_pi(n / _T)) / (1 + _cos_pi((n - 1) / _T)) * (eta_prev - _eta_min) + _eta_min, True))


COSINE_ANNEALING_LR = ScheduleSpec(
    name="cosine",
    title="CosineAnnealingLR",
    torch_class="torch.optim.lr_scheduler.CosineAnnealingLR",
    hyperparameters=(T_MAX, ETA_MIN),
    closed_form=_cosine_closed,
    recursive_form=_cosine_recursive,
    torch_form="recursive",
    doc="lr_n = η_min + (η₀ − η_min)(1 + cos(πn/T_max))/2, periodic with period 2·T_max (no restarts: "
        "the lr rises again after T_max).  torch evaluates the chainable recursion "
        "lr_n = η_min + (lr_{n−1} − η_min)(1 + cos(πn/T))/(1 + cos(π(n−1)/T)), with the additive branch "
        "lr_{n−1} + (η₀ − η_min)(1 − cos(π/T))/2 right after each trough, where the ratio is 0/0.  The two "
        "agree exactly but not in floating point (measured: the known deviation cosine-recursive-drift).",
    edge_doc="A scheduler built with last_epoch ≥ 0 (resuming without load_state_dict) takes the closed form "
             "on its first step (`_step_count == 1 and last_epoch > 0`); load_state_dict resumes the recursion.",
)

# --------------------------------------------------------------------------- CosineAnnealingWarmRestarts

T_0 = _int("T_0", REQUIRED, Integers(lo=1), "length of the first cycle",
           "torch raises ValueError('Expected positive integer T_0') in the constructor")
T_MULT = _int("T_mult", 1, Integers(lo=1), "factor by which each cycle is longer than the previous",
              "torch raises ValueError('Expected integer T_mult >= 1') in the constructor")
ETA_MIN_WR = _real("eta_min", 0.0, "the lr approached at the end of each cycle")
_T0, _Tm = T_0.symbol, T_MULT.symbol


def _restart_index():
    """k = the number of restarts up to step n: the largest k with T₀(T_multᵏ − 1)/(T_mult − 1) ≤ n."""
    return sp.floor(sp.log(1 + n * (_Tm - 1) / _T0) / sp.log(_Tm))


def _warm_restarts_closed(s):
    k = _restart_index()
    t_cur_geometric = n - _T0 * (_Tm ** k - 1) / (_Tm - 1)
    t_i_geometric = _T0 * _Tm ** k
    lr = lambda t_cur, t_i: ETA_MIN_WR.symbol + (eta0 - ETA_MIN_WR.symbol) * (1 + _cos_pi(t_cur / t_i)) / 2
    return when(sp.Eq(_Tm, 1), lr(sp.Mod(n, _T0), _T0), lr(t_cur_geometric, t_i_geometric))


WARM_RESTARTS = ScheduleSpec(
    name="warm_restarts",
    title="CosineAnnealingWarmRestarts",
    torch_class="torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
    hyperparameters=(T_0, T_MULT, ETA_MIN_WR),
    closed_form=_warm_restarts_closed,
    torch_form="closed",
    doc="SGDR: lr_n = η_min + (η₀ − η_min)(1 + cos(π·T_cur/T_i))/2 with T_cur the steps since the last "
        "restart and T_i the current cycle length.  Restarts happen at n = T₀(T_multᵏ − 1)/(T_mult − 1) "
        "(n = k·T₀ when T_mult = 1), where lr = η₀ again.  torch tracks T_cur and T_i with Python ints "
        "(T_cur += 1; at T_cur ≥ T_i: T_cur %= T_i, T_i *= T_mult), so only the final formula rounds.",
    edge_doc="step(epoch) with an explicit epoch takes int(math.log(epoch/T_0·(T_mult−1)+1, T_mult)), which "
             "misplaces restarts where math.log rounds below an integer (e.g. log(1000, 10) = 2.9999999999999996); "
             "that deprecated path is not specified here.",
)

# --------------------------------------------------------------------------- CyclicLR

BASE_LR = _real("base_lr", REQUIRED, "lower end of the cycle; torch overwrites the optimizer's lr with it")
MAX_LR = _real("max_lr", REQUIRED, "upper end of the cycle (scaled by the mode's amplitude factor)")
STEP_UP = _int("step_size_up", 2000, Integers(exclude=(0,)), "steps in the rising half",
               "torch raises ZeroDivisionError in the constructor when step_size_up is 0")
STEP_DOWN = _int("step_size_down", None, Integers(allow_none=True), "steps in the falling half (None: step_size_up)")
MODE = Hyperparameter("mode", "triangular", Choice(("triangular", "triangular2", "exp_range")),
                      "amplitude scaling: constant, halved each cycle, or γⁿ per step")
GAMMA_CYC = _real("gamma", 1.0, "exp_range's factor: amplitude·γⁿ")
CYCLE_MOMENTUM = _flag("cycle_momentum", True, "cycle momentum (or Adam's β₁) inversely to the lr")
BASE_MOMENTUM_C = _real("base_momentum", 0.8, "momentum at the lr's peak")
MAX_MOMENTUM_C = _real("max_momentum", 0.9, "momentum at the cycle's start (torch writes it in the constructor)")
_base, _max, _up, _down, _gamma_c = BASE_LR.symbol, MAX_LR.symbol, STEP_UP.symbol, STEP_DOWN.symbol, GAMMA_CYC.symbol
_bm, _mm = BASE_MOMENTUM_C.symbol, MAX_MOMENTUM_C.symbol


def _cyclic_parts(s):
    total = _up + _down
    ratio = _up / total
    cycle = sp.floor(1 + n / total)
    # Kept unevaluated in torch's grouping (x = 1.0 + n/total − cycle; x/step_ratio; (x − 1)/(step_ratio − 1)):
    # SymPy would cancel the 1s and write x/ratio as total·x/up, and the tolerance model would then miss the
    # cancellation torch's 1.0 + n/total − cycle suffers when x is small (CyclicLR(1, 62): 3 ulp in momentum).
    x = sp.Add(sp.Add(1, n / total, evaluate=False), -cycle, evaluate=False)  # position in the cycle, in [0, 1)
    scale = sp.Piecewise((sp.Mul(x, sp.Pow(ratio, -1, evaluate=False), evaluate=False), x <= ratio),
                         (sp.Mul(sp.Add(x, -1, evaluate=False), sp.Pow(ratio - 1, -1, evaluate=False),
                                 evaluate=False), True))
    amplitude = {"triangular": sp.Integer(1),
                 "triangular2": 1 / sp.Integer(2) ** (cycle - 1),
                 "exp_range": _gamma_c ** n}[s["mode"]]
    return scale, amplitude


def _cyclic_closed(s):
    scale, amplitude = _cyclic_parts(s)
    return _base + (_max - _base) * scale * amplitude


def _cyclic_momentum(s):
    scale, amplitude = _cyclic_parts(s)
    return _mm - (_mm - _bm) * scale * amplitude


def _cyclic_normalize(h):
    return {**h, "step_size_down": h["step_size_up"] if h["step_size_down"] is None else h["step_size_down"]}


CYCLIC_LR = ScheduleSpec(
    name="cyclic",
    title="CyclicLR",
    torch_class="torch.optim.lr_scheduler.CyclicLR",
    hyperparameters=(BASE_LR, MAX_LR, STEP_UP, STEP_DOWN, MODE, GAMMA_CYC, CYCLE_MOMENTUM,
                     BASE_MOMENTUM_C, MAX_MOMENTUM_C),
    closed_form=_cyclic_closed,
    momentum_form=_cyclic_momentum,
    constraints=(Constraint("step_size_up + step_size_down must not be 0: torch raises ZeroDivisionError "
                            "in the constructor (step_ratio = up / total)",
                            lambda h: h["step_size_up"] + h["step_size_down"] != 0),),
    normalize=_cyclic_normalize,
    torch_form="closed",
    uses_eta0=False,
    doc="total = up + down; cycle = ⌊1 + n/total⌋; x = 1 + n/total − cycle; scale = x/(up/total) while "
        "x ≤ up/total, else (x − 1)/(up/total − 1); lr = base_lr + (max_lr − base_lr)·scale·amplitude, "
        "amplitude = 1 (triangular), 1/2^(cycle−1) (triangular2), γⁿ (exp_range).  So lr = base_lr at "
        "n ≡ 0 (mod total) and peaks at n ≡ up.  The optimizer's lr is overwritten by base_lr (η₀ unused).  "
        "Momentum: with cycle_momentum (the default) torch requires the optimizer to have 'momentum' or "
        "'betas' in its defaults (else ValueError), writes max_momentum into group['momentum'] (SGD, even "
        "one built with momentum=0, which turns plain SGD into heavy-ball SGD) or betas[0] (Adam family) in "
        "the constructor, and on every step sets it to max_momentum − (max_momentum − base_momentum)·scale·"
        "amplitude: the mirror image of the lr (momentum_form).",
    edge_doc="Custom scale_fn/scale_mode are callables and not specified.  Negative step sizes are accepted "
             "by torch and follow the same formula.",
)

# --------------------------------------------------------------------------- OneCycleLR

MAX_LR_1C = _real("max_lr", REQUIRED, "peak lr; the lr starts at max_lr/div_factor")
TOTAL_STEPS = _int("total_steps", REQUIRED, Integers(lo=1), "steps in the cycle (torch also accepts "
                   "epochs·steps_per_epoch, validated the same way)",
                   "torch raises ValueError('Expected positive integer total_steps') in the constructor")
PCT_START = Hyperparameter("pct_start", 0.3, FloatInterval(0.0, 1.0, True, True),
                           "fraction of the steps spent rising; torch raises ValueError('Expected float between 0 "
                           "and 1 pct_start') otherwise, the int 1 included")
ANNEAL = Hyperparameter("anneal_strategy", "cos", Choice(("cos", "linear")), "interpolation within a phase")
CYCLE_MOMENTUM_1C = _flag("cycle_momentum", True, "anneal momentum (or β₁) inversely to the lr")
BASE_MOMENTUM_1C = _real("base_momentum", 0.85, "momentum at the peak lr")
MAX_MOMENTUM_1C = _real("max_momentum", 0.95, "momentum at the start and the end")
DIV = _real("div_factor", 25.0, "initial lr = max_lr/div_factor (0: torch raises ZeroDivisionError)")
FINAL_DIV = _real("final_div_factor", 1e4, "min lr = initial lr/final_div_factor (0: ZeroDivisionError)")
THREE_PHASE = _flag("three_phase", False, "rise, fall back to the initial lr, then anneal to the minimum")
_mlr, _N, _p = MAX_LR_1C.symbol, TOTAL_STEPS.symbol, PCT_START.symbol
_div, _fdiv, _bm1, _mm1 = DIV.symbol, FINAL_DIV.symbol, BASE_MOMENTUM_1C.symbol, MAX_MOMENTUM_1C.symbol


def _onecycle_phases(s, quantity):
    """[(end_step, start value, end value)], as torch's _schedule_phases (exact products)."""
    initial = _mlr / _div
    minimum = initial / _fdiv
    if quantity == "lr":
        values = [(initial, _mlr), (_mlr, initial), (initial, minimum)] if s["three_phase"] \
            else [(initial, _mlr), (_mlr, minimum)]
    else:
        values = [(_mm1, _bm1), (_bm1, _mm1), (_mm1, _mm1)] if s["three_phase"] else [(_mm1, _bm1), (_bm1, _mm1)]
    ends = [_p * _N - 1, 2 * _p * _N - 2, _N - 1] if s["three_phase"] else [_p * _N - 1, _N - 1]
    return list(zip(ends, values))


def _anneal(strategy, start, end, pct):
    if strategy == "cos":
        return end + (start - end) / 2 * (_cos_pi(pct) + 1)  # torch: cos_out = cos(π·pct) + 1
    return (end - start) * pct + start


def _onecycle(s, quantity):
    pieces, start_step = [], sp.Integer(0)
    phases = _onecycle_phases(s, quantity)
    for i, (end_step, (a, b)) in enumerate(phases):
        value = _anneal(s["anneal_strategy"], a, b, (n - start_step) / (end_step - start_step))
        pieces.append((value, True if i == len(phases) - 1 else n <= end_step))
        start_step = end_step
    return sp.Piecewise(*pieces)


def _onecycle_float_ends(h) -> list:
    """torch's phase ends, in its own float arithmetic (they decide where it divides by zero)."""
    N, p = h["total_steps"], h["pct_start"]
    if h["three_phase"]:
        return [float(p * N) - 1, float(2 * p * N) - 2, N - 1]
    return [float(p * N) - 1, N - 1]


def _onecycle_torch_divides_by_zero(h, step: int) -> bool:
    """Whether torch's get_lr at ``step`` meets a phase of zero length (ZeroDivisionError)."""
    ends, start = _onecycle_float_ends(h), 0.0
    for i, end in enumerate(ends):
        if step <= end or i == len(ends) - 1:
            return end - start == 0
        start = end
    return False


def _onecycle_last_step(h) -> int:
    N = h["total_steps"]
    return N - 1 if _onecycle_torch_divides_by_zero(h, N) else N


ONE_CYCLE_LR = ScheduleSpec(
    name="onecycle",
    title="OneCycleLR",
    torch_class="torch.optim.lr_scheduler.OneCycleLR",
    hyperparameters=(MAX_LR_1C, TOTAL_STEPS, PCT_START, ANNEAL, CYCLE_MOMENTUM_1C, BASE_MOMENTUM_1C,
                     MAX_MOMENTUM_1C, DIV, FINAL_DIV, THREE_PHASE),
    closed_form=lambda s: _onecycle(s, "lr"),
    momentum_form=lambda s: _onecycle(s, "momentum"),
    constraints=(
        Constraint("div_factor must not be 0: torch raises ZeroDivisionError in the constructor",
                   lambda h: h["div_factor"] != 0),
        Constraint("final_div_factor must not be 0: torch raises ZeroDivisionError in the constructor",
                   lambda h: h["final_div_factor"] != 0),
        Constraint("float(pct_start * total_steps) must not be 1: the first phase is then empty and torch's "
                   "constructor divides 0 by 0 (ZeroDivisionError); torch rounds the product, so e.g. "
                   "pct_start=0.1, total_steps=10 fails although the exact product is 1 + 5.6e-17",
                   lambda h: not _onecycle_torch_divides_by_zero(h, 0)),
    ),
    last_step=_onecycle_last_step,
    torch_form="closed",
    uses_eta0=False,
    doc="Phases end at steps pct_start·N − 1, (three-phase: 2·pct_start·N − 2,) N − 1; step n lies in the "
        "first phase whose end is ≥ n (the last phase takes everything after).  Within a phase from "
        "step a to b the lr goes from its start value to its end value at pct = (n − a)/(b − a): "
        "cos: end + (start − end)/2·(cos(π·pct) + 1); linear: (end − start)·pct + start.  Values: "
        "initial = max_lr/div_factor, min = initial/final_div_factor; two-phase initial→max→min; "
        "three-phase initial→max→initial→min.  Momentum (cycle_momentum, as in CyclicLR) goes "
        "max→base→max (two-phase) or max→base→max→max (three-phase).  The optimizer's lr is overwritten.",
    edge_doc="torch computes the lr for n = 0 … total_steps (total_steps + 1 values: the last one extrapolates "
             "past the final phase, e.g. 0.00495 > min_lr = 4e-7 for cos and a negative lr for linear with the "
             "defaults) and raises ValueError('Tried to step N+1 times...') beyond; where float(pct_start·N) "
             "makes the last phase empty (pct_start = 1.0; three-phase pct_start·N = (N+1)/2) it raises "
             "ZeroDivisionError at n = total_steps, so last_step is total_steps − 1 there.",
)

# --------------------------------------------------------------------------- LinearLR

START_FACTOR = _real("start_factor", 1.0 / 3, "factor at step 0", Interval(0.0, 1.0, False, True))
END_FACTOR = _real("end_factor", 1.0, "factor from step total_iters on", CLOSED_UNIT)
TOTAL_ITERS_LIN = _int("total_iters", 5, Integers(), "steps of the ramp (≤ 0: the lr stays at start_factor·η₀)")
_sf, _ef, _Tl = START_FACTOR.symbol, END_FACTOR.symbol, TOTAL_ITERS_LIN.symbol


def _linear_closed(s, index=n, base=eta0):
    return sp.Piecewise((base * _sf, _Tl <= 0),
                        (base * (_sf + (_ef - _sf) * sp.Min(index, _Tl) / _Tl), True))


def _linear_recursive(s, index=n):
    return sp.Piecewise(
        (eta_prev * _sf, sp.Eq(index, 0)),
        (eta_prev, index > _Tl),
        (eta_prev * (1 + (_ef - _sf) / (_Tl * _sf + (index - 1) * (_ef - _sf))), True))


LINEAR_LR = ScheduleSpec(
    name="linear",
    title="LinearLR",
    torch_class="torch.optim.lr_scheduler.LinearLR",
    hyperparameters=(START_FACTOR, END_FACTOR, TOTAL_ITERS_LIN),
    closed_form=_linear_closed,
    recursive_form=_linear_recursive,
    torch_form="recursive",
    doc="lr_n = η₀·(start + (end − start)·min(n, T)/T).  torch multiplies by start_factor in the "
        "constructor and then by 1 + (end − start)/(T·start + (n − 1)(end − start)) for 1 ≤ n ≤ T.  torch "
        "checks 0 < start_factor ≤ 1 and 0 ≤ end_factor ≤ 1 (ValueError) but not total_iters: with T ≤ 0 "
        "the lr stays start_factor·η₀ for ever.",
)

# --------------------------------------------------------------------------- PolynomialLR

TOTAL_ITERS_POLY = _int("total_iters", 5, Integers(), "steps of the decay (≤ 0: the lr stays η₀)")
POWER = _real("power", 1.0, "exponent of the decay")
_Tp, _pow = TOTAL_ITERS_POLY.symbol, POWER.symbol

POLYNOMIAL_LR = ScheduleSpec(
    name="polynomial",
    title="PolynomialLR",
    torch_class="torch.optim.lr_scheduler.PolynomialLR",
    hyperparameters=(TOTAL_ITERS_POLY, POWER),
    closed_form=lambda s: sp.Piecewise((eta0, _Tp <= 0), (eta0 * (1 - sp.Min(n, _Tp) / _Tp) ** _pow, True)),
    recursive_form=lambda s: sp.Piecewise(
        (eta_prev, sp.Or(sp.Eq(n, 0), n > _Tp)),
        (eta_prev * ((1 - n / _Tp) / (1 - (n - 1) / _Tp)) ** _pow, True)),
    constraints=(Constraint("power < 0 with total_iters > 0: torch raises ZeroDivisionError "
                            "('0.0 cannot be raised to a negative power') at step total_iters",
                            lambda h: not (h["power"] < 0 and h["total_iters"] > 0)),),
    torch_form="recursive",
    doc="lr_n = η₀·(1 − min(n, T)/T)^power; torch multiplies by ((1 − n/T)/(1 − (n−1)/T))^power for "
        "1 ≤ n ≤ T.  power = 0 keeps η₀ (0.0**0.0 = 1 at n = T); T ≤ 0 keeps η₀.",
)

# --------------------------------------------------------------------------- SequentialLR

MILESTONE = _int("milestone", 5, Integers(), "the step at which the decay takes over (≤ 0: from the start)")
DECAY = Hyperparameter("decay", "exponential", Choice(("exponential", "cosine")),
                       "the scheduler after the warm-up: ExponentialLR(gamma) or CosineAnnealingLR(T_max, eta_min)")
GAMMA_SEQ = _real("gamma", 0.9, "ExponentialLR's factor (decay='exponential')")
T_MAX_SEQ = _int("T_max", 10, Integers(), "CosineAnnealingLR's T_max (decay='cosine')")
ETA_MIN_SEQ = _real("eta_min", 0.0, "CosineAnnealingLR's eta_min (decay='cosine')")
_m = MILESTONE.symbol


def _sequential(s, form):
    k = n - sp.Max(_m, 0)  # the decay scheduler's own step index
    if s["decay"] == "exponential":
        decay_closed, decay_rec = eta0 * _gamma ** k, when(sp.Eq(k, 0), eta_prev, eta_prev * _gamma)
    else:
        decay_closed = _cosine_closed(s).xreplace({n: k})
        decay_rec = _cosine_recursive(s).xreplace({n: k})
    if form == "closed":
        return sp.Piecewise((_linear_closed(s), n < _m), (decay_closed, True))
    # At the milestone torch sets the decay's lr with its _get_closed_form_lr at epoch 0: η₀·γ⁰ = η₀ exactly for
    # ExponentialLR, but η_min + (η₀ − η_min)·(1 + cos 0)/2 for CosineAnnealingLR, which rounds twice: kept
    # unevaluated (SymPy would cancel it to η₀) so that the tolerance model charges both roundings.
    restart = eta0 if s["decay"] == "exponential" else \
        sp.Add(_eta_min, sp.Add(eta0, -_eta_min, evaluate=False), evaluate=False)
    return sp.Piecewise((_linear_recursive(s), n < _m), (restart, sp.Eq(n, _m)), (decay_rec, True))


SEQUENTIAL_LR = ScheduleSpec(
    name="sequential",
    title="SequentialLR (LinearLR warm-up, then a decay)",
    torch_class="torch.optim.lr_scheduler.SequentialLR",
    hyperparameters=(START_FACTOR, END_FACTOR, TOTAL_ITERS_LIN, MILESTONE, DECAY, GAMMA_SEQ, T_MAX_SEQ, ETA_MIN_SEQ),
    closed_form=lambda s: _sequential(s, "closed"),
    recursive_form=lambda s: _sequential(s, "recursive"),
    constraints=(Constraint("T_max must not be 0 with decay='cosine': CosineAnnealingLR accepts it and raises "
                            "ZeroDivisionError at its first step()",
                            lambda h: h["decay"] != "cosine" or h["T_max"] != 0),),
    torch_form="recursive",
    doc="SequentialLR(optimizer, [LinearLR(start_factor, end_factor, total_iters), decay], milestones=[m]): "
        "lr_n = LinearLR's lr_n for n < m, then the decay's lr_{n−max(m,0)} — restarted from η₀, not from "
        "the warm-up's last value (torch resets the decay with _get_closed_form_lr at epoch 0).",
)

SCHEDULES: dict = {s.name: s for s in (STEP_LR, MULTI_STEP_LR, EXPONENTIAL_LR, COSINE_ANNEALING_LR, WARM_RESTARTS,
                                       CYCLIC_LR, ONE_CYCLE_LR, LINEAR_LR, POLYNOMIAL_LR, SEQUENTIAL_LR)}


def get(name: str) -> ScheduleSpec:
    """The schedule called ``name``; a clear error listing the known names otherwise."""
    try:
        return SCHEDULES[name]
    except KeyError:
        raise KeyError(f"no schedule spec named {name!r}; known: {', '.join(SCHEDULES)}") from None
