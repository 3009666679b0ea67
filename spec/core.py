"""The vocabulary of a spec: hyperparameters, state, assignments, optimizers.

An optimizer spec is data.  Its update is an ordered list of ``Assign``
statements over SymPy expressions, read top to bottom like the code it
specifies: a later statement sees the values assigned by earlier ones.  Every
quantity is a real number *per element*: the optimizers here are elementwise,
so one element of a parameter tensor, its gradient and its state are updated
from each other alone, and a tensor update is that rule applied to every
element.

Numbers in a spec are exact.  A literal from the dialect's source code (PyTorch's
``0.96`` in NAdam) means the binary64 value that the code holds, so it is written
``py_float(0.96)``; hyperparameter defaults are Python floats and mean their
exact binary64 values too.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional, Sequence, Union

import sympy as sp

Number = Union[int, float]


def py_float(x: float) -> sp.Rational:
    """The exact value of a Python float literal, as a SymPy rational."""
    f = Fraction(x)
    return sp.Rational(f.numerator, f.denominator)


@dataclass(frozen=True)
class Interval:
    """A set of reals ``lo (<|<=) x (<|<=) hi``; ``None`` bounds are infinite."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_closed: bool = True
    hi_closed: bool = False

    def __contains__(self, x) -> bool:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
            return False
        if self.lo is not None and (x < self.lo or (x == self.lo and not self.lo_closed)):
            return False
        if self.hi is not None and (x > self.hi or (x == self.hi and not self.hi_closed)):
            return False
        return math.isfinite(x)  # torch accepts lr=inf; no finite spec value comes of it

    def describe(self) -> str:
        left = "(-∞" if self.lo is None else ("[" if self.lo_closed else "(") + repr(self.lo)
        right = "∞)" if self.hi is None else repr(self.hi) + ("]" if self.hi_closed else ")")
        return f"{left}, {right}"


REALS = Interval(None, None)
NONNEGATIVE = Interval(0.0, None)
UNIT = Interval(0.0, 1.0, True, False)  # [0, 1): a decay rate that must forget
CLOSED_UNIT = Interval(0.0, 1.0, True, True)


@dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter with its default and the values the dialect accepts.

    ``domain`` is what the dialect's constructor accepts (wider than what is
    sensible: torch accepts any dampening).  ``fuzz`` is the part of the
    domain the test strategies draw from; it is narrower only where the
    domain is unbounded or where values outside make every trajectory blow up,
    and the reason is in ``fuzz_why``.  ``zero_means_none``: the dialect spells this value's 0 ``None`` (AdEMAMix's
    warm-ups, off by default): the torch backend passes None for 0, and a class default None reads as 0.  Flags are
    hyperparameters whose domain is ``bool``; they select the shape of the update rather than a number in it.
    """

    name: str
    default: Union[Number, bool]
    domain: Union[Interval, type] = NONNEGATIVE
    doc: str = ""
    latex: Optional[str] = None
    fuzz: Optional[Interval] = None
    fuzz_why: str = ""
    zero_means_none: bool = False  # 0 stands for the dialect's None (an optional warm-up: off); classes get None
    integer: bool = False  # only whole numbers of the domain (a step count: Schedule-Free's warmup_steps)
    # None is a value of its own: the machine epsilon of the parameter's dtype, torch.finfo(dtype).eps (Adafactor's
    # eps1).  The spec keeps None (a tensor of each dtype has its own); the reference resolves it per tensor.
    none_means_eps: bool = False

    @property
    def is_flag(self) -> bool:
        return self.domain is bool

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.latex or self.name, real=True)

    def accepts(self, value) -> bool:
        if self.is_flag:
            return isinstance(value, bool)
        if value is None and self.none_means_eps:
            return True
        if value is None:  # a schedule's domain may hold None of its own (CyclicLR's step_size_down)
            return value in self.domain
        return value in self.domain and (not self.integer or float(value).is_integer())


@dataclass(frozen=True)
class State:
    """A per-element state variable, its initial value and torch's name for it (``reduced_axis``: kept per row or
    column by the dialect).

    ``init`` is a SymPy expression in the hyperparameters (``0`` for most;
    Adagrad's ``initial_accumulator_value``).  ``when`` names the condition under
    which the dialect keeps the variable at all (``"amsgrad"``), for docs and
    for comparing state: the spec computes it regardless.
    """

    name: str
    init: sp.Expr = sp.Integer(0)
    doc: str = ""
    latex: Optional[str] = None
    when: str = ""
    # The dialect keeps one value per fiber of this axis (−1: per row, −2: per column), in the parameter's shape with
    # that axis of length 1 (torch's keepdim tensors: Adafactor's row_var (…, R, 1) and col_var (…, 1, C)).  The spec
    # keeps it per element, constant along the axis; a backend reports the dialect's tensor as it is, and the
    # reference broadcasts it (a given state) while the harness compares it with the reference's values at index 0
    # of the axis (``dialect_shape``).
    reduced_axis: Optional[int] = None
    # A value of the step that the implementation reports, not state it keeps (Muon's O = NS(U), which no exact
    # rule computes: spec/muon.py): the rule reads it and leaves it alone.  The reference takes each step's value
    # from the backend's output of that step (``reference.driver.prepare``'s ``observed``), the harness never
    # compares it, and a backend that does not report it cannot be checked.
    observed: bool = False

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.latex or self.name, real=True)

    def kept_for(self, values: dict) -> bool:
        """Whether the dialect keeps this variable for these hyperparameter values (name → value): it has no
        ``when``, its condition on the values holds ("momentum != 0"), or its condition is in words ("the tensor
        has ≥ 2 dimensions"), which no values decide."""
        if not self.when:
            return True
        try:
            return bool(eval(self.when, {"__builtins__": {}}, dict(values)))  # noqa: S307 - the spec's own text
        except (NameError, SyntaxError):  # a condition in words
            return True

    def dialect_shape(self, param_shape: tuple) -> tuple:
        """The shape the dialect keeps this variable in for a parameter of ``param_shape``."""
        shape = tuple(param_shape)
        if self.reduced_axis is None:
            return shape
        if len(shape) < -self.reduced_axis:
            raise ValueError(f"state {self.name!r} is kept per fiber of axis {self.reduced_axis}, which a parameter "
                             f"of shape {shape} lacks")
        axis = self.reduced_axis % len(shape)
        return shape[:axis] + (1,) + shape[axis + 1:]

    def check_shape(self, value_shape: tuple, param_shape: tuple, who: str = "") -> None:
        """A clear error unless ``value_shape`` is 0-d (one value for every element) or the dialect's shape."""
        value_shape = tuple(value_shape)
        if value_shape == () or value_shape == tuple(param_shape):
            return
        try:
            want = self.dialect_shape(param_shape)
        except ValueError:
            want = None
        if value_shape != want:
            kept = "" if self.reduced_axis is None else f" or {want} (one value per fiber of axis {self.reduced_axis})"
            raise ValueError(f"{who}state {self.name!r} has shape {value_shape}; for a parameter of shape "
                             f"{tuple(param_shape)} it must be () or {tuple(param_shape)}{kept}")


@dataclass(frozen=True)
class TensorFlag:
    """A flag of the rule that the parameter tensor decides, not a hyperparameter: ``holds(shape)``.

    torch's Adafactor factors the second moment of a tensor with two or more dimensions and keeps it whole for a
    vector: the same optimizer, two programs.  The rule receives the flag beside the hyperparameter flags
    (``rule({..., "factored": True})``), both programs are compiled, and the reference picks one per tensor from
    its shape (``OptimizerSpec.tensor_flag_values``).  ``doc`` names the tensors it holds for, for the docs.
    """

    name: str
    doc: str
    holds: Callable[[tuple], bool]


@dataclass(frozen=True)
class Assign:
    """``target ← expr``: one statement of an update, with why it is there."""

    target: sp.Symbol
    expr: sp.Expr
    doc: str = ""


@dataclass(frozen=True)
class Constraint:
    """A condition across hyperparameters that the dialect's constructor enforces."""

    doc: str
    holds: Callable[[dict], bool]


# The per-element inputs every optimizer step shares.
theta = sp.Symbol("theta", real=True)  # the parameter element
g = sp.Symbol("g", real=True)  # its gradient
t = sp.Symbol("t", integer=True, positive=True)  # the step counter after incrementing

STEP = State("step", sp.Integer(0), "number of steps taken; the update reads t = step + 1", latex="step")


class HyperparameterLookup:
    """``hyper(name)`` for specs with ``name`` and ``hyperparameters`` (optimizers and schedules)."""

    def hyper(self, name: str) -> Hyperparameter:
        for h in self.hyperparameters:
            if h.name == name:
                return h
        raise KeyError(f"{self.name} has no hyperparameter {name!r}")


@dataclass(frozen=True)
class OptimizerSpec(HyperparameterLookup):
    """An optimizer: its hyperparameters, state, and ordered update rule.

    ``rule(flags)`` returns the ordered statements for one combination of the
    flag hyperparameters (a dict name → bool).  Statements assign ``theta``,
    state symbols and named temporaries; ``g`` may be reassigned (maximize,
    weight decay), as in the code it specifies.  The step counter is
    incremented before the rule runs, and the rule sees it as ``t``.
    """

    name: str
    title: str
    hyperparameters: tuple
    state: tuple
    rule: Callable[[dict], list]
    torch_class: str = ""
    dialect: str = "torch"
    doc: str = ""
    constraints: tuple = ()
    counts_steps: bool = True  # False where the dialect keeps no step counter (SGD)
    # True where the step counter and scalar state are the parameter group's, advanced at every step() whether
    # or not a parameter has a gradient (Schedule-Free): the spec keeps them per parameter, which agrees only
    # while every parameter has a gradient at every step, so the strategies draw no None gradient for it
    group_steps: bool = False
    # True where gradients are sparse (torch.optim.SparseAdam; the variants sgd_sparse and adagrad_sparse, torch's SGD
    # and Adagrad given sparse gradients): a gradient holds values for an index set, an element
    # outside it is not stepped (θ and its state unchanged), and the step counter counts the tensor's steps, with
    # an empty index set too.  The reference reads a sparse gradient as a ``numpy.ma.MaskedArray`` whose mask marks
    # the elements outside the index set (``reference.driver.prepare``).
    sparse_gradients: bool = False
    # With sparse gradients: the dialect coalesces each gradient before the update (torch's ``grad.coalesce()``), so
    # an index held twice steps once, with its two values summed in the parameter's dtype
    # (``reference.sparse.coalesce``); the strategies draw such duplicates.  False where the dialect does not
    # (torch's SGD adds the entries one by one): see ``adds_duplicates_in_turn``.
    coalesces: bool = False
    # With sparse gradients, where the dialect keeps no state and no step counter (torch's SGD without momentum:
    # ``keeps_state``; with momentum, duplicates are not specified): on a contiguous parameter the dialect adds an
    # index held twice entry by entry, so the step is the update by the first entries and then, from its rounded
    # result, the update by the second (θ + (−lr)·g₁, then + (−lr)·g₂: ``reference.driver.steps`` takes such a
    # step's gradient as a pair); on a non-contiguous one it coalesces them first, θ + (−lr)·fl(g₁ + g₂) (the
    # check coalesces such a gradient before the reference reads it: ``conformance.check``).  The strategies draw
    # duplicates for it on every layout; where neither this nor ``coalesces`` holds, duplicates are not specified
    # and not drawn.
    adds_duplicates_in_turn: bool = False
    # With sparse gradients, where the dialect keeps state (``keeps_state``: torch's SGD with momentum ≠ 0): the state
    # holds an entry for every index any earlier gradient held, and the element moves at every later step whether or
    # not the step's gradient holds it.  The spec steps such an element with gradient 0: torch's SGD adds the
    # decayed buffer entry μ·b (and no gradient term) and θ moves by −lr·b, which is the rule's value at g = 0
    # (``reference.driver.prepare``).  An element no gradient has held yet is not stepped.
    moves_where_state_held: bool = False
    # The dialect class's keywords that this spec leaves at the class's defaults, each with why (a variant for one
    # kind of input: weight decay, which torch refuses with sparse gradients): (keyword, reason) pairs.
    fixed_keywords: tuple = ()
    paths_doc: str = ""
    edge_doc: str = ""
    tensor_flags: tuple = ()  # ``TensorFlag``s: rule flags the tensor's shape decides (Adafactor's "factored")
    # The numbers of dimensions a parameter may have, where the dialect refuses others (Muon: (2,)); () for any.
    # The strategies draw only such shapes, and the backends probe with one.
    ndims: tuple = ()

    # -- lookups -----------------------------------------------------------
    def keeps_state(self, hyper: dict) -> bool:
        """Whether the dialect keeps any state variable (the step counter aside) for these hyperparameter values
        (``State.kept_for``)."""
        return any(s.name != "step" and s.kept_for(hyper) for s in self.state)

    def takes_duplicates(self, hyper: dict) -> bool:
        """Whether a sparse gradient holding an index twice is specified for these hyperparameter values: the
        dialect coalesces it, or adds the entries in turn and keeps no state (``keeps_state``: not torch's SGD
        with momentum)."""
        return self.coalesces or (self.adds_duplicates_in_turn and not self.keeps_state(hyper))

    @property
    def flags(self) -> tuple:
        return tuple(h for h in self.hyperparameters if h.is_flag)

    @property
    def numeric(self) -> tuple:
        return tuple(h for h in self.hyperparameters if not h.is_flag)

    @functools.cached_property
    def reduces(self) -> bool:
        """Some statement, for some flags, reduces over the whole tensor (``spec.reductions``): the update is
        computed tensor by tensor, not element by element."""
        from .reductions import reduces
        return any(reduces(s.expr) for f in self.flag_combinations(tensor=True) for s in self.rule(f))

    def flag_combinations(self, tensor: bool = False) -> list:
        """Every combination of the flag hyperparameters, as dicts name → bool (all False first); with ``tensor``,
        of the tensor flags too (``TensorFlag``: every program the rule has)."""
        names = [h.name for h in self.flags] + ([f.name for f in self.tensor_flags] if tensor else [])
        return [dict(zip(names, bits)) for bits in itertools.product((False, True), repeat=len(names))]

    def tensor_flag_values(self, shape) -> dict:
        """The tensor flags (name → bool) for a parameter of ``shape``; a clear error where the spec has some and
        no shape is given (the rule cannot be chosen without it)."""
        if not self.tensor_flags:
            return {}
        if shape is None:
            raise ValueError(f"{self.name}: the rule depends on the tensor's shape "
                             f"({', '.join(f.name for f in self.tensor_flags)}); give the parameter's shape")
        return {f.name: bool(f.holds(tuple(shape))) for f in self.tensor_flags}

    @property
    def observed(self) -> tuple:
        """The names of the state variables that are observed values of the step (``State.observed``)."""
        return tuple(s.name for s in self.state if s.observed)

    @property
    def defaults(self) -> dict:
        return {h.name: h.default for h in self.hyperparameters}

    def symbols(self) -> dict:
        """Name → SymPy symbol for every input of the rule."""
        out = {"theta": theta, "g": g, "t": t}
        out.update({h.name: h.symbol for h in self.numeric})
        out.update({s.name: s.symbol for s in self.state})
        return out

    # -- validation ------------------------------------------------------------
    def complete(self, hyper: dict) -> dict:
        """Defaults filled in; raise ``InvalidHyperparameter`` if any is out of its domain."""
        unknown = set(hyper) - {h.name for h in self.hyperparameters}
        if unknown:
            raise InvalidHyperparameter(f"{self.name}: unknown hyperparameter(s) {sorted(unknown)}")
        full = {**self.defaults, **hyper}
        for h in self.hyperparameters:
            if not h.accepts(full[h.name]):
                want = ("a bool" if h.is_flag else
                        f"a finite {'whole number' if h.integer else 'real'} in {h.domain.describe()}"
                        + (" or None (the dtype's machine epsilon)" if h.none_means_eps else ""))
                raise InvalidHyperparameter(f"{self.name}: {h.name}={full[h.name]!r} is invalid; expected {want}")
        for c in self.constraints:
            if not c.holds(full):
                raise InvalidHyperparameter(f"{self.name}: {c.doc} (got {_show(full)})")
        return full

    def rule_flags(self, hyper: dict, shape=None) -> dict:
        """The flags the rule receives: the flag hyperparameters of ``hyper`` (defaults filled in) and, where the
        spec has tensor flags, those of a tensor of ``shape`` (or, all of them given in ``hyper`` by name, those:
        one program of ``flag_combinations(tensor=True)``)."""
        tensor = {f.name: bool(hyper[f.name]) for f in self.tensor_flags if f.name in hyper}
        if len(tensor) < len(self.tensor_flags):
            tensor = self.tensor_flag_values(shape)
        return {**{h.name: bool(hyper.get(h.name, h.default)) for h in self.flags}, **tensor}

    def statements(self, hyper: dict, shape=None) -> list:
        """The ordered update for these hyperparameters' flags (and the tensor flags: ``rule_flags``)."""
        return self.rule(self.rule_flags(hyper, shape))

    def variant(self, name: str, *, dialect: str, title: str = "", rule=None, defaults: Optional[dict] = None,
                doc: str = "", hyperparameters: Optional[Sequence] = None, **changes) -> "OptimizerSpec":
        """A named variant (another framework's dialect) sharing everything not overridden.

        ``hyperparameters``, when given, replaces this spec's list (a dialect
        without ``maximize``, or with hyperparameters of its own); ``defaults``
        then sets the defaults of that list by name.
        """
        base = self.hyperparameters if hyperparameters is None else tuple(hyperparameters)
        unknown = set(defaults or {}) - {h.name for h in base}
        if unknown:
            raise KeyError(f"variant {name!r}: defaults for unknown hyperparameter(s) {sorted(unknown)}")
        hyper = tuple(
            dataclasses.replace(h, default=defaults[h.name]) if defaults and h.name in defaults else h
            for h in base
        )
        return dataclasses.replace(
            self, name=name, dialect=dialect, title=title or self.title, hyperparameters=hyper,
            rule=rule or self.rule, doc=doc or self.doc, **changes,
        )


class InvalidHyperparameter(ValueError):
    """A hyperparameter outside its spec domain, or an invalid combination."""


def _show(hyper: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in hyper.items())


def when(cond, then, otherwise) -> sp.Piecewise:
    """``then`` if the relation ``cond`` holds on the exact values, else ``otherwise``."""
    return sp.Piecewise((then, cond), (otherwise, True))


def unless_zero(x: sp.Expr, then: sp.Expr, otherwise: sp.Expr) -> sp.Piecewise:
    """The dialect's ``if x != 0`` guard: ``then`` when x ≠ 0, else ``otherwise``.

    Kept as a branch rather than folded into arithmetic because ``0·θ`` is not
    0 when θ is ±inf or NaN, and the code skips the term entirely.
    """
    return when(sp.Ne(x, 0), then, otherwise)
