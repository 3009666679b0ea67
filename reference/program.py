"""Compile an update rule into straight-line Python code over an abstract arithmetic.

The ordered ``Assign`` statements of a spec are substituted into each other,
so every output (the new parameter and each new state variable) becomes one
SymPy expression of the step's inputs.  Common subexpressions are shared
(``sympy.cse``) and the result is printed as Python source in which every
operation is a call on an arithmetic object ``O``::

    def step(O, theta, g, t, eta, beta_1, ...):
        x0 = O.sub(O.const(1), O.pow(beta_1, t))
        ...
        return (theta_new, exp_avg_new, ...)

The same program then runs over intervals (the reference, ``arith.Interval``),
over IEEE special values (``arith.Special``) and over error bounds
(``bound.Bound``), so all three follow the spec's operations exactly.
"""
from __future__ import annotations

import functools
import keyword
import re
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from spec.core import OptimizerSpec, theta
from spec.reductions import Reduction


@dataclass(frozen=True)
class Program:
    """A compiled update: ``fn(O, *inputs) -> outputs``, with its source for reading."""

    spec_name: str
    flags: tuple  # sorted (name, bool) pairs the rule was built for
    inputs: tuple  # names: "theta", "g", "t", numeric hyperparameters, then state
    outputs: tuple  # names: "theta", then state names
    source: str
    fn: object

    def __call__(self, O, values: dict):
        return dict(zip(self.outputs, self.fn(O, *(values[name] for name in self.inputs))))


def final_expressions(spec: OptimizerSpec, flags: dict) -> dict:
    """Output name → SymPy expression of the inputs, after substituting every statement."""
    env = {}
    for stmt in spec.rule(flags):
        env[stmt.target] = stmt.expr.xreplace(env)
    out = {"theta": env.get(theta, theta)}
    for s in spec.state:
        if s.name != "step":
            out[s.name] = env.get(s.symbol, s.symbol)
    return out


def state_read(spec: OptimizerSpec, hyper: dict, outputs, t: int, shape=None) -> frozenset:
    """The state variables (names; ``step`` is ``t``, not state) that one step of ``spec`` reads to compute
    ``outputs`` (output names: "theta" and state names, as ``final_expressions``) with the complete hyperparameters
    ``hyper`` at step counter ``t`` (after incrementing): the free symbols of those outputs' expressions for
    ``hyper``'s flags, where a ``Piecewise`` whose condition the hyperparameters and ``t`` decide contributes its
    taken branch alone (SGD's μ ≠ 0 guard: with μ = 0 the momentum buffer is not read, and torch keeps none).
    A state output that the rule leaves alone (Adam's max_exp_avg_sq without amsgrad) reads itself.  ``shape``: the
    parameter's, where the spec has tensor flags (``spec.core.TensorFlag``)."""
    flags = tuple(sorted(spec.rule_flags(hyper, shape).items()))
    values = tuple((h.name, hyper[h.name]) for h in spec.numeric)
    return _state_read(spec.name, flags, values, t, tuple(outputs), spec)


@functools.lru_cache(maxsize=256)
def _state_read(spec_name: str, flags: tuple, values: tuple, t: int, outputs: tuple, spec: OptimizerSpec):
    expressions = final_expressions(spec, dict(flags))
    symbols = spec.symbols()
    state = {s.symbol: s.name for s in spec.state if s.name != "step"}
    known = {symbols[name]: sp.Rational(Fraction(value)) for name, value in values
             if value is not None}  # None: a per-tensor value (the dtype's ε), left undecided here
    known[symbols["t"]] = sp.Integer(t)
    seen, read = set(), set()

    def decided(cond):
        try:
            c = cond.xreplace(known)
        except (TypeError, ValueError, ZeroDivisionError):  # a value the condition cannot take (zoo): undecided
            return None
        return bool(c) if c in (sp.true, sp.false) else None

    def walk(e):
        if e in seen:
            return
        seen.add(e)
        if e in state:
            read.add(state[e])
        elif isinstance(e, sp.Piecewise):
            for value, cond in e.args:
                taken = decided(cond)
                if taken is False:
                    continue
                walk(value)
                if taken:
                    return
                walk(cond)
        else:
            for a in e.args:
                walk(a)

    for name in outputs:
        walk(expressions[name])
    return frozenset(read)


def ssa_statements(spec: OptimizerSpec, flags: dict):
    """The rule as single-assignment statements, and the output name → SSA symbol map.

    Each assignment gets a fresh symbol (``g``, ``g_1``, ...), and later
    statements refer to it by name, so the program keeps the operations in the
    order and grouping the spec writes them: the error-bound arithmetic
    (``reference.bound``) charges rounding to exactly those operations.
    """
    current = {sym: sym for sym in spec.symbols().values()}
    versions = {}
    out = []
    for stmt in spec.rule(flags):
        expr = stmt.expr.xreplace(current)
        n = versions[stmt.target] = versions.get(stmt.target, 0) + 1
        ssa = sp.Symbol(f"{stmt.target.name}_{n}", real=True)
        current[stmt.target] = ssa
        out.append((ssa, expr))
    outputs = {"theta": current[theta]}
    for s in spec.state:
        if s.name != "step":
            outputs[s.name] = current[s.symbol]
    return out, outputs


class Lerp(sp.Function):
    """``Lerp(a, b, w) = a + w·(b − a)``, one operation of a program: torch's ``a.lerp_(b, w)``.

    Kept whole so the error bound sees it as one operation: in ``a + w·(b − a)``
    taken apart, ``a``'s error would be charged (1 + w) times instead of the
    (1 − w) times it really enters (``reference.bound.Bound.lerp``).
    """

    nargs = 3


def mark_lerps(expr):
    """``expr`` with every sub-expression of the shape ``a + w·(b − a)`` (``spec.common.lerp``) as ``Lerp``."""
    if not expr.args or isinstance(expr, Lerp):
        return expr
    args = [mark_lerps(a) for a in expr.args]
    if isinstance(expr, sp.Add) and len(args) == 2:
        for a, term in (args, args[::-1]):
            if not isinstance(term, sp.Mul) or a.is_Number:  # 1 + w·(t − 1) is arithmetic, not a lerp
                continue
            for k, diff in enumerate(term.args):
                if isinstance(diff, sp.Add) and -a in diff.args:
                    b = sp.Add(*(x for x in diff.args if x != -a))
                    w = sp.Mul(*(x for i, x in enumerate(term.args) if i != k))
                    return Lerp(a, b, w)
    return expr.func(*args) if args != list(expr.args) else expr


@functools.lru_cache(maxsize=None)
def _compile_cached(spec_name: str, flags: tuple, spec: OptimizerSpec) -> Program:
    statements, outputs = ssa_statements(spec, dict(flags))
    statements = [(ssa, mark_lerps(expr)) for ssa, expr in statements]
    inputs = ["theta", "g", "t"] + [h.name for h in spec.numeric] + [s.name for s in spec.state if s.name != "step"]
    symbols = spec.symbols()
    names = {symbols[n]: _ident(n) for n in inputs}
    names.update({ssa: _ident(ssa.name) for ssa, _ in statements})
    replacements, reduced = sp.cse([e for _, e in statements], symbols=sp.numbered_symbols("_x"), order="none")
    printer = _Printer(names)
    lines = [f"def step(O, {', '.join(_ident(n) for n in inputs)}):"]
    pending = dict(replacements)  # a shared subexpression is emitted just before its first use
    for sym in pending:
        names[sym] = str(sym)

    def emit_needed(expr):
        for sym in sorted(expr.free_symbols & pending.keys(), key=lambda s: int(str(s)[2:])):
            if sym in pending:
                sub = pending.pop(sym)
                emit_needed(sub)
                lines.append(f"    {sym} = {printer(sub)}")

    for (ssa, _), expr in zip(statements, reduced):
        emit_needed(expr)
        lines.append(f"    {names[ssa]} = {printer(expr)}")
    lines.append(f"    return ({', '.join(names.get(outputs[n], _ident(str(outputs[n]))) for n in outputs)},)")
    source = "\n".join(lines) + "\n"
    namespace = {}
    exec(compile(source, f"<{spec_name} {dict(flags)}>", "exec"), namespace)  # noqa: S102 - generated from the spec
    return Program(spec_name, flags, tuple(inputs), tuple(outputs), source, namespace["step"])


def compile_rule(spec: OptimizerSpec, hyper: dict, shape=None) -> Program:
    """The program of ``spec`` for the flags in ``hyper`` and, where the spec has tensor flags
    (``spec.core.TensorFlag``), for a parameter of ``shape`` (cached per flag combination)."""
    flags = tuple(sorted(spec.rule_flags(hyper, shape).items()))
    return _compile_cached(spec.name, flags, spec)


def _ident(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident + "_" if keyword.iskeyword(ident) else ident


_RELATIONS = {sp.StrictGreaterThan: "gt", sp.StrictLessThan: "lt", sp.GreaterThan: "ge",
              sp.LessThan: "le", sp.Equality: "eq", sp.Unequality: "ne"}
_FUNCTIONS = {sp.cos: "cos", sp.sin: "sin", sp.exp: "exp", sp.log: "log", sp.floor: "floor",
              sp.ceiling: "ceil", sp.Abs: "abs"}


class _Printer:
    """SymPy expression → Python source calling the arithmetic object ``O``."""

    def __init__(self, names: dict):
        self.names = names

    def __call__(self, e) -> str:
        if e in self.names:
            return self.names[e]
        if e is sp.true or e is sp.false:
            return repr(bool(e))
        if isinstance(e, sp.Rational):
            return f"O.const({e.p}, {e.q})"
        if isinstance(e, sp.Float):
            raise TypeError(f"inexact literal {e} in a spec: write py_float(x) or a Rational")
        if isinstance(e, sp.Add):
            return self._add(e)
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Pow):
            return self._pow(e)
        if isinstance(e, (sp.Max, sp.Min)):
            op = "max" if isinstance(e, sp.Max) else "min"
            return f"O.{op}({', '.join(self(a) for a in e.args)})"
        if isinstance(e, sp.Piecewise):
            return self._piecewise(e.args)
        if type(e) in _RELATIONS:
            return f"O.{_RELATIONS[type(e)]}({self(e.lhs)}, {self(e.rhs)})"
        if isinstance(e, sp.And):
            return f"O.all_({', '.join(self(a) for a in e.args)})"
        if isinstance(e, sp.Or):
            return f"O.any_({', '.join(self(a) for a in e.args)})"
        if isinstance(e, Lerp):
            return f"O.lerp({', '.join(self(a) for a in e.args)})"
        if isinstance(e, Reduction):  # one value per tensor or per fiber of an axis (``reference.tensor.Lifted``)
            return f"O.{e.op}({', '.join([self(e.args[0]), *(str(int(a)) for a in e.args[1:])])})"
        if isinstance(e, sp.Mod):
            return f"O.mod({self(e.args[0])}, {self(e.args[1])})"
        for cls, op in _FUNCTIONS.items():
            if isinstance(e, cls):
                return f"O.{op}({self(e.args[0])})"
        raise TypeError(f"cannot compile {type(e).__name__}: {e}")

    def _add(self, e) -> str:
        terms = list(e.args)
        pos = [a for a in terms if not _is_negated(a)]
        neg = [-a for a in terms if _is_negated(a)]
        if not pos:
            return f"O.neg({self._add_terms(neg)})"
        if not neg:
            return self._add_terms(pos)
        return f"O.sub({self._add_terms(pos)}, {self._add_terms(neg)})"

    def _add_terms(self, terms) -> str:
        return self(terms[0]) if len(terms) == 1 else f"O.add({', '.join(self(a) for a in terms)})"

    def _mul(self, e) -> str:
        coeff, factors = e.as_coeff_mul()
        if coeff < 0:
            return f"O.neg({self(sp.Mul(-coeff, *factors, evaluate=False) if coeff != -1 else sp.Mul(*factors))})"
        num, den = [], []
        for f in ([coeff] if coeff != 1 else []) + list(factors):
            base, exp = f.as_base_exp()
            if exp.is_Rational and exp < 0 and not isinstance(f, sp.Rational):
                den.append(base ** -exp)
            elif isinstance(f, sp.Rational) and f.p == 1 and f.q != 1:
                den.append(sp.Integer(f.q))
            else:
                num.append(f)
        top = self._product(num) if num else "O.const(1, 1)"
        return f"O.div({top}, {self._product(den)})" if den else top

    def _product(self, factors) -> str:
        return self(factors[0]) if len(factors) == 1 else f"O.mul({', '.join(self(f) for f in factors)})"

    def _pow(self, e) -> str:
        base, exp = e.args
        if exp == sp.Rational(1, 2):
            return f"O.sqrt({self(base)})"
        if exp == 2:
            return f"O.mul({self(base)}, {self(base)})"
        if exp == -1:
            return f"O.div(O.const(1, 1), {self(base)})"
        if exp == sp.Rational(-1, 2):
            return f"O.div(O.const(1, 1), O.sqrt({self(base)}))"
        return f"O.pow({self(base)}, {self(exp)})"

    def _piecewise(self, pieces) -> str:
        (value, cond), rest = pieces[0], pieces[1:]
        if cond is sp.true or not rest:
            return self(value)
        return f"O.select({self(cond)}, {self(value)}, {self._piecewise(rest)})"


def _is_negated(term) -> bool:
    return term.could_extract_minus_sign() and not isinstance(term, sp.Piecewise)
