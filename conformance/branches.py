"""Both sides of every branch of a spec: boundaries derived from the spec, and cases drawn on both sides.

Each comparison in an update rule splits the input space: a relation in a ``Piecewise`` condition (``when``,
``unless_zero``) and each pair of arguments of a ``Max`` or ``Min``.  Its *boundary function* is
f = lhs − rhs (for ``Max(a, b)``: a − b), with every earlier statement of the rule substituted, so that f is
in terms of the hyperparameters, t, the state before the step, θ and ``G``: the gradient as it stands at the
comparison (after ``maximize`` and coupled weight decay; all specs here assign ``g`` before they read it).
``boundaries(spec)`` walks ``spec.rule(flags)`` for every flag combination and sorts each f by what it depends on:

* ``hyper`` (hyperparameters and t only): f = 0 is solved exactly, for each numeric hyperparameter in f (the
  others at their defaults) at each t = 1..``MAX_STEPS``: the real roots of f's numerator, a polynomial in that
  hyperparameter, inside its fuzz box.  A case gives one parameter group to each value root·(1 ± δ) for δ in
  ``OFFSETS`` (±δ when the root is 0) that lies in the box, and to the root itself when it is a float64, so a
  moved threshold is met on its near side whatever the move, not only a flipped ``>``.  A boundary with a
  root at several steps (ASGD's max(1, t − t₀): t₀ = t − 1 at each t) gives, at each, the root and one
  drawn δ on each side, so that a case stays small: the examples cover every δ between them.
* ``grad`` (involves G): f = 0 is solved for G symbolically.  At each step k of the trajectory some elements
  of one tensor get, in place of their drawn gradient, the raw gradient that makes G = G*·(1 ± δ), with G* from
  that element's state after k − 1 steps (the float64 midpoints of ``reference.fast.fast_trajectory``: enough to
  place, since the check compares with the exact spec whatever side an element lands on), rounded to the
  dtype, one ulp away from G* where δ is below the dtype's resolution.
* ``step`` (t only, SGD's first step ``t = 1``): every trajectory of two steps or more has both sides; nothing
  to place.
* ``sign`` (involves G, whose only root is G = 0: Rprop's sign of G·g_prev): every drawn tensor holds ±0 and
  both signs, and g_prev starts at 0, so every trajectory has both sides and the root itself; nothing to place.
* ``other``: recorded, not drawn (Rprop's clamps of Δ·factor, which SymPy cannot solve for G, and its tests
  of the kept gradient, a Piecewise in G).
* ``reduced``: involves G in a spec that reduces (Adafactor's floors max(V̂, ε₁²), max(mean R, ε₁) and its clip):
  recorded, not drawn, as placing G reads the elementwise fast reference.  A spec with tensor flags
  (``spec.core.TensorFlag``) is walked in every program; a boundary lists the flag hyperparameters under which
  some program has it.

Where ``>`` and ``≥`` differ at all (``Boundary.note`` says it for each):

* RAdam's ρ_t > 5 holds only at t = 6 within six steps (ρ_t < t for every β₂ < 1); its root in β₂,
  ≈ 0.83977, is a root of 3β⁵ + 2β⁴ + β³ − β − 2, irrational: no float β₂ makes the exact ρ_6 equal 5,
  so ``>`` versus ``≥`` cannot be observed against the exact spec (an implementation's rounded ρ_t may hit
  5.0, and the tolerance model accepts either branch within ρ_t's rounding error).  A moved threshold can.
* The guards λ ≠ 0 and μ ≠ 0 and RMSprop's μ > 0 have the root 0, a float and the end of the domain: the
  false side is the root itself (λ = 0, μ = 0; ``hyper_value`` draws them too) and the true side is
  δ > 0; the other side of 0 is outside the domain.
* ``Max`` (AMSGrad's v_max vs v, Adamax's β₂u vs |g| + ε) is the same on a tie whichever argument wins:
  only a moved boundary is observable, and the elements on both sides near it show one.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np
import sympy as sp
from hypothesis import event, strategies as st

import spec as spec_pkg
from reference.fast import fast_trajectory
from reference.formats import get_format, next_down, next_up, round_to_format
from spec.core import InvalidHyperparameter, OptimizerSpec, g, t, theta
from spec.schedules import REQUIRED

from .backend import Case, Group
from .strategies import HELD, MAX_STEPS, SHAPES, gradient, hyperparameters, tensor

OFFSETS = (2.0 ** -50, 2.0 ** -30, 2.0 ** -20, 2.0 ** -10, 2.0 ** -4)  # relative; absolute for a root at 0
G = sp.Symbol("G", real=True)  # the gradient as it stands at a comparison


@dataclass(frozen=True)
class HyperRoot:
    """f = 0 at ``hyper`` = ``root`` (exact) at step ``t`` (None: f does not depend on t); ``values``: the
    drawn (float value, sign of f there) pairs, the root itself first when it is a float64."""

    hyper: str
    t: Optional[int]
    root: sp.Expr
    representable: bool
    values: tuple


@dataclass(frozen=True)
class Boundary:
    """One comparison of a spec: its text (as the rule writes it), kind, boundary function and solutions.

    ``f`` is in the inputs described in the module docstring; ``flags``: the flag combinations whose rule
    has it (dicts); ``roots``: ``HyperRoot``s (kind ``hyper``); ``solutions``: G as expressions of the state,
    θ, hyperparameters and t (kind ``grad``); ``inverses[i]``: the raw gradient as an expression of G under
    ``flags[i]`` and ``chains[i]`` G as an expression of the raw gradient (kind ``grad``); ``note``: what is drawn, and where ``>`` vs ``≥`` is observable."""

    spec: str
    text: str
    kind: str
    f: sp.Expr
    flags: tuple
    roots: tuple = ()
    solutions: tuple = ()
    inverses: tuple = ()
    chains: tuple = ()
    note: str = ""


def _comparisons(expr) -> list:
    """(text, lhs − rhs) for each relation of a Piecewise condition and each argument pair of a Max/Min."""
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                for rel in ([cond] if isinstance(cond, sp.core.relational.Relational)
                            else sorted(cond.atoms(sp.core.relational.Relational), key=sp.srepr)):
                    out.append((sp.sstr(rel), rel.lhs - rel.rhs))
        elif isinstance(node, (sp.Max, sp.Min)):
            for a, b in itertools.combinations(node.args, 2):
                out.append((sp.sstr(node), a - b))
    return out


def _walk(spec: OptimizerSpec, flags: dict) -> list:
    """(text, f, chain) for every comparison of ``spec.rule(flags)``; ``chain``: G as an expression of the raw g."""
    env, chain, found = {}, g, []
    for st_ in spec.rule(flags):
        if st_.target == g:
            if any(e.has(G) for e in env.values()):
                raise ValueError(f"{spec.name}: g is reassigned after it is read; boundaries need G fixed")
            for text, f in _comparisons(st_.expr):
                found.append((text, f.xreplace({**env, g: chain}), None))
            chain = st_.expr.xreplace({**env, g: chain})
            continue
        for text, f in _comparisons(st_.expr):
            found.append((text, f.xreplace({**env, g: G}), chain))
        env[st_.target] = st_.expr.xreplace({**env, g: G})
    return found


def _kind(spec: OptimizerSpec, f) -> str:
    free = f.free_symbols
    hyper = {h.symbol for h in spec.numeric}
    if G in free:
        return "grad"
    if free <= {t}:
        return "step"
    if free <= hyper | {t}:
        return "hyper"
    return "other"


def _box(h):
    return h.fuzz or h.domain


def _representable(r) -> bool:
    if not r.is_Rational:
        return False
    q = Fraction(int(r.p), int(r.q))
    return q.denominator & (q.denominator - 1) == 0 and float(q) == q


def _side(f, h_sym, x: float) -> int:
    return int(sp.sign(f.xreplace({h_sym: sp.Rational(Fraction(x))})))


def _hyper_roots(spec: OptimizerSpec, f) -> tuple:
    out = []
    steps = range(1, MAX_STEPS + 1) if t in f.free_symbols else [None]
    for h in spec.numeric:
        if h.symbol not in f.free_symbols:
            continue
        others = {o.symbol: sp.Rational(Fraction(o.default)) for o in spec.numeric
                  if o is not h and o.symbol in f.free_symbols}
        box = _box(h)
        for tv in steps:
            fe = f.xreplace(others)
            fe = fe.subs(t, tv) if tv is not None else fe
            if fe.has(sp.zoo, sp.nan):
                continue  # not finite at the others' defaults (t/T with T = 0, a warm-up's None): nothing to solve
            num, den = sp.fraction(sp.together(fe))
            try:
                poly = sp.Poly(sp.expand(num), h.symbol)
            except sp.PolynomialError:
                continue  # not polynomial: left unsolved (Boundary.note says so)
            if poly.degree() < 1:
                continue  # constant at this t: no boundary
            try:
                real_roots = poly.real_roots()
            except NotImplementedError:  # irrational coefficients (Adafactor's lr = 1/√t): solved symbolically
                real_roots = [r for r in sp.solve(num, h.symbol) if r.is_real]
            for r in dict.fromkeys(real_roots):
                x = float(r.evalf(30))
                if x not in box or den.subs(h.symbol, r) == 0:
                    continue
                exact = _representable(r)
                cands = ([x] if exact else [])
                for d in OFFSETS:
                    cands += [s * d for s in (-1, 1)] if r == 0 else \
                        [float((r * (1 + s * sp.Rational(Fraction(d)))).evalf(30)) for s in (-1, 1)]
                vals = tuple((c, _side(fe, h.symbol, c)) for c in dict.fromkeys(cands) if c in box)
                out.append(HyperRoot(h.name, tv, r, exact, vals))
    return tuple(out)


def _note(b_kind, text, roots, f=sp.Integer(0)) -> str:
    if b_kind == "step":
        return "t only: every trajectory of two or more steps has both sides; nothing placed"
    if b_kind == "other":
        return ("involves G only through a conditional expression (Rprop's clamp of Δ times its sign factor, "
                "its kept gradient): no closed form of G, not drawn; its sides are met as the sign's are"
                if G in f.free_symbols else "depends on state or θ without G: not drawn")
    if b_kind == "reduced":
        return ("involves G in a spec that reduces over the tensor: G is not placed (placing reads the elementwise "
                "fast reference); drawn gradients meet its sides as they fall")
    if b_kind == "sign":
        return ("the sign of a product with G: its root is G = 0 (or a zero state), where > and ≥ differ; "
                "drawn tensors hold ±0 and both signs, and the state starts at 0, so every trajectory meets "
                "both sides and the root itself: nothing to place")
    if b_kind == "grad":
        return ("G placed at G*·(1 ± δ) at each step; a tie takes either argument to the same value, so only "
                "a moved boundary is observable" if text.startswith(("Max", "Min"))
                else "G placed at G*·(1 ± δ) at each step")
    if not roots:
        return "no root in the fuzz box within MAX_STEPS steps (or f is not polynomial): not drawn"
    parts = []
    for r in roots:
        at = f" at t = {r.t}" if r.t is not None else ""
        how = ("a float64: the root itself is drawn, so > vs ≥ is observable" if r.representable
               else "irrational: > vs ≥ is not observable, a moved threshold is")
        parts.append(f"{r.hyper} = {sp.nsimplify(r.root) if r.representable else float(r.root.evalf(20))!r}{at}"
                     f" ({how})")
    return "; ".join(parts)


def _inverse(chain):
    """The raw g as an expression of G, from ``chain`` (G in the raw g) with each guard's guarded branch
    (``unless_zero(λ, g + λθ, g)``: g + λθ, which is g when λ = 0 and θ is finite); None unless unique."""
    guarded = chain.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])
    inv = sp.solve(sp.Eq(guarded, G), g)
    return inv[0] if len(inv) == 1 else None


@functools.lru_cache(maxsize=None)
def boundaries(name: str) -> tuple:
    """The ``Boundary``s of the spec called ``name``, deduplicated over its flag combinations."""
    spec = spec_pkg.get(name)
    seen = {}
    hyper_flags = {h.name for h in spec.flags}
    for program in spec.flag_combinations(tensor=True):  # every program; a tensor flag is the drawn shape's
        flags = {k: v for k, v in program.items() if k in hyper_flags}
        for text, f, chain in _walk(spec, program):
            key = (text, sp.srepr(f))
            if key not in seen:
                seen[key] = {"text": text, "f": f, "flags": [], "chains": []}
            if flags not in seen[key]["flags"]:
                seen[key]["flags"].append(flags)
                seen[key]["chains"].append(chain)
    out = []
    for item in seen.values():
        f, text = item["f"], item["text"]
        kind = _kind(spec, f)
        roots, sols, inverses = (), (), ()
        if kind == "hyper":
            roots = _hyper_roots(spec, f)
        elif kind == "grad" and spec.reduces:
            kind = "reduced"  # placing G needs the elementwise fast reference (fast_trajectory), which has no reductions
        elif kind == "grad":
            try:
                # G inside a branch (Rprop's factor and kept gradient): solve ignores the conditions
                sols = () if f.has(sp.Piecewise) else tuple(sp.solve(f, G))
            except NotImplementedError:  # SymPy cannot solve it: not drawn
                sols = ()
            inverses = tuple(_inverse(chain) for chain in item["chains"])
            if not sols or any(inv is None for inv in inverses):
                kind, sols, inverses = "other", (), ()
            elif all(sol == 0 or _imaginary_where_positive(sol) for sol in sols):
                # G = 0, or a root that is real only where a state is 0 (Optax's Adagrad: G² + s > 0, root
                # ±√−s): the same single point, met by every trajectory that starts from zero
                kind, sols, inverses = "sign", (), ()
        chains = tuple(item["chains"]) if kind == "grad" else ()
        out.append(Boundary(name, text, kind, f, tuple(item["flags"]), roots, sols, inverses, chains,
                            _note(kind, text, roots, f)))
    return tuple(out)


def _imaginary_where_positive(sol) -> bool:
    """``sol`` is certainly not real when every symbol in it is positive (SymPy decides; unknown is False)."""
    positive = {x: sp.Symbol(f"_{x.name}", positive=True) for x in sol.free_symbols}
    return sp.simplify(sol.xreplace(positive)).is_real is False


def drawn(name: str) -> tuple:
    """The boundaries a case of ``name`` places inputs at (kinds ``hyper`` with a root, and ``grad``)."""
    return tuple(b for b in boundaries(name) if (b.kind == "hyper" and b.roots) or b.kind == "grad")


# ------------------------------------------------------------------------------------------ drawing


def _complete(spec, hyper: dict, name: str, value: float) -> Optional[dict]:
    """``hyper`` with ``name`` = ``value``, else the defaults (same flags, then none) with it; None if invalid."""
    for base in (hyper, {**spec.defaults, **{h.name: hyper[h.name] for h in spec.flags}}, spec.defaults):
        try:
            return spec.complete({**base, name: value})
        except InvalidHyperparameter:
            continue
    return None


def _state_before(spec, hyper, param, snaps, k) -> dict:
    """Symbol → float64 array of each input of f before step k (1-based): θ, the state and, as scalars, the
    hyperparameters and t."""
    n = param.size
    vals = {t: float(k)}
    vals.update({h.symbol: float(hyper[h.name]) for h in spec.numeric})
    if k == 1:
        vals[theta] = param.astype(np.float64).reshape(-1)
        for s in spec.state:
            if s.name != "step":
                init = s.init.xreplace({h.symbol: sp.Rational(Fraction(hyper[h.name])) for h in spec.numeric})
                vals[s.symbol] = np.full(n, float(init))
    else:
        snap = snaps[k - 2]
        vals[theta] = snap.value["theta"].reshape(-1)
        for s in spec.state:
            if s.name in snap.value:
                vals[s.symbol] = snap.value[s.name].reshape(-1)
    return vals


@functools.lru_cache(maxsize=None)
def _numeric(expr, symbols: tuple):
    return sp.lambdify(symbols, expr, modules="numpy")


def _eval(expr, vals: dict) -> np.ndarray:
    syms = tuple(sorted(expr.free_symbols, key=lambda s: s.name))
    with np.errstate(all="ignore"):
        return np.asarray(_numeric(expr, syms)(*(vals[s] for s in syms)), dtype=np.float64)


def _round(x: float, fmt):
    return round_to_format(Fraction(x), fmt) if math.isfinite(x) else fmt.dtype.type(x)


def place(spec: OptimizerSpec, b: Boundary, hyper: dict, param: np.ndarray, grads: list, dtype: str) -> dict:
    """Overwrite gradient elements of one parameter so that G sits at G*·(1 ± δ) at each step (module
    docstring); ``grads[s]`` are that parameter's arrays, changed in place.  Returns, per sign of f (by the
    float64 midpoints), how many placed elements have it whose G came within 2⁻³·|G*| of G*: where the dtype
    cannot resolve G near G* (G* far below λθ, which the raw gradient must cancel) an element lands elsewhere.

    Element e is placed at most once, at step k = 1 + e // per_step, so the state each placement reads (after
    k − 1 steps) is that of the drawn gradients: one trajectory serves every step."""
    fmt = get_format(dtype)
    combo = b.flags.index({h.name: hyper[h.name] for h in spec.flags})
    inverse, chain = b.inverses[combo], b.chains[combo]
    slots = [(j, s, d) for j in range(len(b.solutions)) for s in (-1, 1) for d in grad_offsets(dtype)]
    snaps = fast_trajectory(spec, hyper, param, grads, formats=(dtype,))
    flat_grads = [gr.reshape(-1) for gr in grads]
    sides = {}
    for k in range(1, len(grads) + 1):
        vals = _state_before(spec, hyper, param, snaps, k)
        stars = [np.broadcast_to(_eval(sol, vals), (param.size,)) for sol in b.solutions]
        for n, (j, s, d) in enumerate(slots):
            e = (k - 1) * len(slots) + n
            if e >= param.size:
                return sides
            star = float(stars[j][e])
            if not math.isfinite(star) or star == 0:
                continue
            at = {**{sym: (v[e] if isinstance(v, np.ndarray) else v) for sym, v in vals.items()}}
            raw_star = float(_eval(inverse, {**at, G: star}))
            raw = float(_eval(inverse, {**at, G: star * (1 + s * d)}))
            x, x_star = _round(raw, fmt), _round(raw_star, fmt)
            if x == x_star:  # δ below the dtype's resolution: the neighbour on that side
                x = next_up(x_star, fmt) if raw > raw_star or (raw == raw_star and s > 0) else next_down(x_star, fmt)
            if not np.isfinite(x):
                continue
            flat_grads[k - 1][e] = x
            got = float(_eval(chain, {**at, g: float(x)}))
            if abs(got - star) <= abs(star) / 8:
                side = int(np.sign(_eval(b.f, {**at, G: got})))
                sides[side] = sides.get(side, 0) + 1
    return sides


def grad_offsets(dtype: str) -> tuple:
    """``OFFSETS`` the dtype resolves (δ ≥ 2⁻ᵖ), and 0 for the neighbour one ulp from G* where it resolves
    fewer than all: below 2⁻ᵖ every δ would round to that same neighbour."""
    p = get_format(dtype).precision
    kept = tuple(d for d in OFFSETS if d >= 2.0 ** -p)
    return kept if len(kept) == len(OFFSETS) else (0.0,) + kept


def slots_per_step(b: Boundary, dtype: str) -> int:
    return len(b.solutions) * 2 * len(grad_offsets(dtype))


def _below_square_root_of_range(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` with each element above √(largest finite)/4 in magnitude scaled by a power of two (exactly) to below
    it: where g² or g·θ overflows, v or u is infinite and no gradient sits near the boundary (float16's 2¹²)."""
    lim = math.sqrt(float(get_format(dtype).max_finite)) / 4
    x = a.astype(np.float64)
    big = np.isfinite(x) & (np.abs(x) > lim)
    e = np.zeros(x.shape)
    e[big] = np.ceil(np.log2(np.abs(x[big]) / lim))
    return np.ldexp(x, -e.astype(int)).astype(a.dtype)


PER_SIDE = 2  # placed elements a gradient boundary needs on each side; fewer: the defaults' numbers instead


def _both_sides(sides: dict) -> bool:
    return min(sides.get(-1, 0), sides.get(1, 0)) >= PER_SIDE


@st.composite
def boundary_cases(draw, spec: OptimizerSpec, dtype: str) -> Case:
    """A ``MAX_STEPS``-step case with a group per value of each hyperparameter boundary (one small tensor
    each), and per gradient boundary a group whose one tensor has elements placed at G*·(1 ± δ) at every step.

    Every group draws its other hyperparameters as ``cases`` does (a later one keeping each of the first group's
    unless drawn to differ), with flags under which its boundary
    exists; the gradient group's values are kept below √(largest finite)/4 (``_below_square_root_of_range``);
    a gradient boundary whose both sides its drawn hyperparameters do not let ``place`` reach, each at least
    ``PER_SIDE`` times (Adamax with ε above nearly every β₂u, or a tiny G* beside a large λθ), is placed with the
    spec's default numbers instead.
    ``hypothesis.event`` names each boundary drawn."""
    groups, places = [], []
    held = HELD.get(spec.name, {})

    def group_hyper(flags):  # a later group keeps each of the first's values unless drawn to differ
        return {**draw(hyperparameters(spec, like=groups[0].hyper if groups else None)), **flags}

    for b in drawn(spec.name):
        usable = [f for f in b.flags if all(held.get(k, v) == v for k, v in f.items())]
        if not usable or (b.kind == "hyper" and any(r.hyper in held for r in b.roots)):
            event(f"boundary {b.text}: not drawn, the --optimizer class's --hold excludes it")
            continue
        flags = draw(st.sampled_from(usable))
        if b.kind == "hyper":
            for r in b.roots:
                values = r.values
                if r.root == 0:  # the domain ends at 0: the root itself and one drawn δ > 0 are its two sides
                    values = (values[0], draw(st.sampled_from(values[1:])))
                elif len(b.roots) > 1:  # a root at each of several steps: the root and one δ on each side
                    values = tuple([v for v in values if v[1] == 0] +
                                   [draw(st.sampled_from([v for v in values if v[1] == side]))
                                    for side in (-1, 1) if any(v[1] == side for v in values)])
                for value, side in values:
                    hyper = _complete(spec, group_hyper(flags), r.hyper, value)
                    if hyper is None:
                        continue
                    groups.append(Group(hyper, [draw(tensor(dtype, draw(st.sampled_from(SHAPES))))]))
                    event(f"boundary {b.text}: {r.hyper} on side {side:+d}")
        else:
            hyper = spec.complete(group_hyper(flags))
            n = MAX_STEPS * slots_per_step(b, dtype)
            groups.append(Group(hyper, [_below_square_root_of_range(draw(tensor(dtype, (n,))), dtype)]))
            places.append((len(groups) - 1, b))
    grads = [[[draw(gradient(spec, dtype, p.shape, h)) for p in params] for h, params in groups]
             for _ in range(MAX_STEPS)]
    for i, _ in places:
        for row in grads:
            row[i][0] = _below_square_root_of_range(row[i][0], dtype)
    for i, b in places:
        hyper, (param,) = groups[i]
        mine = [grads[s][i][0] for s in range(MAX_STEPS)]
        if not _both_sides(place(spec, b, hyper, param, mine, dtype)):
            # the defaults, with the drawn flags; a hyperparameter without a default (Optax's lr) keeps its draw
            fallback = spec.complete({**{k: v for k, v in spec.defaults.items() if v is not REQUIRED},
                                      **{h.name: hyper[h.name] for h in spec.flags},
                                      **{k: hyper[k] for k, v in spec.defaults.items() if v is REQUIRED}})
            groups[i] = Group(fallback, [param])
            if not _both_sides(place(spec, b, fallback, param, mine, dtype)):
                raise AssertionError(f"{spec.name}: could not place gradients on both sides of {b.text}")
        event(f"boundary {b.text}: gradients placed")
    return Case(spec.name, dtype, groups, grads)
