"""Hypothesis strategies drawn from the spec: hyperparameters, tensors, whole cases.

Hyperparameters come from each spec's domain (its ``fuzz`` part where the
domain is unbounded or blows up), with the values that matter most drawn
often: the domain's ends, the default, tiny and large magnitudes, β near 0 and
near 1, ε up to order 1.  Tensors hold values spread over many binades,
with zeros of both signs and subnormals of the dtype.

With ``realistic=True`` (what ``test_trajectory`` and ``test_single_steps`` draw) a case's tensors
also take the sizes real kernels vectorise at (``SIMD_LENGTHS``: both sides of 8-, 16-,
32-, 64- and 128-wide bodies), multi-dimensional shapes (``MULTI_SHAPES``), one
tensor past a CUDA multi-tensor chunk (``LARGE``, 65,536 elements) and groups
of up to 12 tensors.  The large-case branch is the simplest choice, so the
first example Hypothesis generates (its all-simplest draw, under every profile,
``ci`` included) has one; the event "large tensor" shows it in the
statistics.  Tensors of more than ``SMALL`` elements are ``bulk_array``s: a
seeded numpy draw of normal values over the binades of ``decode_values``, with
Hypothesis-drawn ``spots`` (any value it codes: ±0, subnormals, extremes) at
drawn positions; ``recipe_of`` gives the recipe back, so a reproduction
prints a seed and the spots, not every value.  A realistic case also draws its
memory layout (``Case.layout``, ``backend.LAYOUTS``): contiguous (the simplest),
every 2nd element of a larger buffer, or transposed (≥ 2-D tensors); backends
step tensors of that layout, and reproductions carry it.  Last, the case axes a backend offers
(``Case.lr_tensor``, ``Case.complex``; ``harness.offered_axes``).
"""
from __future__ import annotations

import functools
import hashlib
import math
from typing import Optional

import numpy as np
from hypothesis import event, reject, strategies as st

from reference.fast_round import round_array
from reference.formats import from_hex, get_format, to_hex
from reference.sparse import uncoalesced
from spec.core import Hyperparameter, Interval, InvalidHyperparameter, OptimizerSpec

from .backend import LAYOUTS, Case, Group

MAX_STEPS = 6


def _in(interval: Interval, x: float) -> bool:
    return x in interval


# Strategies are built once per argument and reused: building (and validating) them anew for
# every draw cost as much as the reference computation itself.
@functools.lru_cache(maxsize=None)
def hyper_value(h: Hyperparameter) -> st.SearchStrategy:
    """Values of one numeric hyperparameter, from its fuzz range (or domain)."""
    box = h.fuzz or h.domain
    lo = box.lo if box.lo is not None else -10.0
    hi = box.hi if box.hi is not None else 10.0
    if h.integer:  # a count: whole numbers of the box, as floats (the torch API passes them on as given)
        return st.integers(math.ceil(lo), math.floor(hi)).map(float).filter(lambda x: _in(box, x))
    specials = [h.default, lo, hi, 0.0, 1.0, 0.5, 1e-8, 1e-3, 0.1, 0.9, 0.99, 0.999, 1 - 2 ** -20, 2.0, 3.0]
    picks = [x for x in specials if isinstance(x, (int, float)) and _in(box, float(x))]
    magnitudes = st.builds(lambda e, m: m * 10.0 ** e, st.integers(-12, 1), st.floats(1.0, 9.99))
    near_one = st.builds(lambda k: 1 - 2.0 ** -k, st.integers(1, 30))
    uniform = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(picks), magnitudes, near_one, uniform).filter(lambda x: _in(box, x))


#: spec name -> {hyperparameter: value} drawn only at that value: ``--hold`` (conformance/plugin.py), for an
#: ``--optimizer`` class that has no keyword for it.  Set once per run, before any draw.
HELD: dict = {}


@st.composite
def hyperparameters(draw, spec: OptimizerSpec, like: Optional[dict] = None) -> dict:
    """A complete, valid hyperparameter dict of ``spec`` (flags included; ``HELD`` values as held).

    ``like``: another group's dict, whose value each hyperparameter keeps unless drawn to differ (the simplest:
    all kept).  Real parameter groups mostly differ in one or two values (lr, weight_decay); and where an
    implementation reads a value from the constructor only (torch's Adagrad and its initial_accumulator_value, a
    known deviation), groups drawn wholly apart would nearly all be set aside."""
    out = {}
    held = HELD.get(spec.name, {})
    for h in spec.hyperparameters:
        if h.name in held:
            out[h.name] = held[h.name]
        elif like is not None and not draw(st.booleans()):
            out[h.name] = like[h.name]
        elif h.is_flag:
            out[h.name] = draw(st.booleans())
        elif h.name == "lr":
            out[h.name] = draw(learning_rate())
        elif h.none_means_eps:  # None (the dtype's machine epsilon, the default) the simplest, else a number
            value = draw(st.one_of(st.just(None), hyper_value(h)))
            out[h.name] = None if value is None else float(value)
        else:
            out[h.name] = float(draw(hyper_value(h)))
    if out.get("nesterov") and "dampening" in out:
        # SGD's constructor rejects Nesterov without momentum or with dampening; draw a valid pair instead.  (Muon
        # has no dampening and takes Nesterov with any momentum.)
        out["dampening"] = 0.0
        if out.get("momentum", 0) <= 0:
            out["momentum"] = draw(st.sampled_from([0.5, 0.9, 0.99]))
    if out.get("warmup_init") and not out.get("relative_step"):  # transformers' Adafactor refuses it (a constraint)
        out["warmup_init"] = False
    try:
        return spec.complete(out)
    except InvalidHyperparameter:
        reject()


@functools.lru_cache(maxsize=None)
def learning_rate() -> st.SearchStrategy:
    """Tiny to large learning rates, zero included."""
    return st.one_of(
        st.sampled_from([0.0, 1e-3, 1e-2, 0.1, 1.0]),
        st.builds(lambda e, m: m * 10.0 ** e, st.integers(-10, 1), st.floats(1.0, 9.99)),
    )


#: Bytes per drawn value (``decode_values``): class, sign and significand length, exponent (2), fraction (8)
VALUE_BYTES = 12
_SPECIALS = (0.0, -0.0, 1.0, -1.0, 0.5)


@functools.lru_cache(maxsize=None)
def _exponents(lo: int, hi: int) -> np.ndarray:
    """The exponents lo..hi in order of simplicity (0, -1, 1, -2, ...): a code that shrinks toward 0 picks 2⁰."""
    return np.array(sorted(range(lo, hi + 1), key=lambda e: (abs(e), e < 0)), dtype=np.int64)


def decode_values(raw: bytes, dtype: str) -> np.ndarray:
    """The values of ``dtype`` that ``raw`` codes, ``VALUE_BYTES`` bytes each (a trailing part is ignored).

    A code's first byte picks the class (those the suite's values always had): one in six from ±0, ±1 and 0.5, three
    in six normal (binades 2⁻²⁴..2¹² of ``dtype``, and none past its largest finite value), one in six
    subnormal (±k·the smallest subnormal, k = 1..16), one in six anywhere in the dtype's range; the second
    its sign and whether the significand keeps every bit, its top 3 or its top 10 (short significands make
    the exact ties and exact products that rounding boundaries need); then the exponent and the fraction.
    The value is made in binary64 (s·m·2ᵉ, one rounding) and correctly rounded once to ``dtype``.  All-zero
    bytes code 0.0, and a smaller code is a simpler value (exponent toward 0, fraction toward 1.0): what
    Hypothesis shrinks toward.  One ``st.binary`` draw holds a whole tensor's values: drawn value by value,
    Hypothesis's per-draw bookkeeping cost more than everything else a case does."""
    fmt = get_format(dtype)
    n = len(raw) // VALUE_BYTES
    b = np.frombuffer(raw, dtype=np.uint8, count=n * VALUE_BYTES).reshape(n, VALUE_BYTES)
    cls = b[:, 0] % 6
    sign = np.where(b[:, 1] & 1, -1.0, 1.0)
    short = (b[:, 1] >> 1) & 3
    code = b[:, 2].astype(np.int64) | (b[:, 3].astype(np.int64) << 8)
    frac = np.ascontiguousarray(b[:, 4:12]).view("<u8").reshape(n) >> np.uint64(12)  # 52 bits
    top3, top10 = frac & ~np.uint64((1 << 49) - 1), frac & ~np.uint64((1 << 42) - 1)
    frac = np.where(short == 2, top3, np.where(short == 3, top10, frac))
    m = 1.0 + frac.astype(np.float64) * 2.0 ** -52  # exact: 52 bits
    normal = _exponents(-24, min(min(fmt.emax, 30) - 1, 12))
    wide = _exponents(fmt.emin - fmt.precision + 1, fmt.emax)
    with np.errstate(over="ignore"):
        x = np.select(
            [cls == 0, cls == 4, cls == 5],
            [np.array(_SPECIALS)[code % len(_SPECIALS)],
             sign * (1 + code % 16) * float(fmt.min_subnormal),
             sign * np.ldexp(m, wide[code % len(wide)])],
            sign * np.ldexp(m, normal[code % len(normal)]))
    return round_array(x, fmt)


@functools.lru_cache(maxsize=None)
def array(dtype: str, shape: tuple) -> st.SearchStrategy:
    """An array of ``dtype`` and ``shape``: its values spread over binades, with ±0, subnormals and exact small
    integers, from one draw (``decode_values``)."""
    n = int(np.prod(shape)) if shape else 1
    return st.binary(min_size=n * VALUE_BYTES, max_size=n * VALUE_BYTES).map(
        lambda raw: decode_values(raw, dtype).reshape(shape))


SHAPES = [(), (1,), (3,), (2, 2), (4,)]
SIMD_LENGTHS = [7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 127, 129]
MULTI_SHAPES = [(3, 5), (2, 3, 7), (4, 17), (2, 2, 2, 9)]
#: A spec that reduces (LAMB, Adafactor) is checked by the exact (interval) engine, tensor by tensor, at about a
#: millisecond per element and step: its realistic cases keep the kinds of shapes (vectors on both sides of 8- and
#: 16-lane bodies; 2-, 3- and 4-D tensors) at sizes that engine checks in seconds, and at most
#: ``REDUCING_MAX_PARAMS`` tensors a group
REDUCING_SHAPES = [(7,), (9,), (17,), (3, 5), (2, 3, 4), (2, 2, 2, 3)]
REDUCING_MAX_PARAMS = 4
#: A spec for matrices only (``OptimizerSpec.ndims`` (2,): Muon) draws these, at most ``max_params`` a group:
#: square, wide and tall, a row and a column (no SIMD sizes: it reduces, and the exact engine checks it element by
#: element; NS runs on each tensor, and the property test re-runs it: small matrices keep CI's time)
MATRIX_SHAPES = [(2, 2), (1, 3), (3, 1), (2, 3), (4, 2), (3, 3)]
LARGE = 1 << 16  # CUDA's multi-tensor kernels work in chunks of 2^16 elements: a large tensor has more
SPOT_BYTES = 4 + VALUE_BYTES  # a bulk_array's spot: its flat index and its value's code
SMALL = 4  # tensors up to this size are drawn element by element; larger ones are bulk_arrays


def bulk_binades(fmt) -> tuple:
    """The binades of a ``bulk_array``'s values: 2^-24..2^12, narrowed to those whose squares stay normal in
    ``fmt`` (float16: 2^-7..2^6), so that most of a large tensor is checked against a bound rather than
    accepted as format-limited (a square that underflows or overflows); the extremes come as spots."""
    return max(-24, (fmt.emin + 1) // 2), min(12, fmt.emax // 2 - 1)


def bulk_array(dtype: str, shape: tuple, seed: int, spots: tuple) -> np.ndarray:
    """Normal values of ``dtype`` (sign, binade in ``bulk_binades`` and significand from numpy's PCG64
    seeded with ``seed``, correctly rounded once), then ``spots`` ((flat index, hex value), ...) written
    over them.

    A pure function of its arguments: the recipe replays bit for bit."""
    fmt = get_format(dtype)
    n = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(seed)
    lo, hi = bulk_binades(fmt)
    x = rng.choice([-1.0, 1.0], n) * rng.uniform(1.0, 2.0, n) * np.exp2(rng.integers(lo, hi + 1, n))
    out = round_array(x, fmt)
    for k, h in spots:
        out[k] = from_hex(h, fmt)
    return out.reshape(shape)


_RECIPES: dict = {}  # sha256 of an array's bytes, dtype and shape → its bulk_array recipe (this process's draws)


def _digest(a: np.ndarray) -> bytes:
    return hashlib.sha256(repr((a.dtype.str, a.shape)).encode() + np.ascontiguousarray(a).tobytes()).digest()


def recipe_of(a) -> dict | None:
    """``{"shape", "seed", "spots"}`` such that ``bulk_array(dtype, **recipe)`` equals ``a`` bit for bit, if
    ``a`` was drawn by ``bulk_arrays`` in this process; else None."""
    a = np.asarray(a)
    return _RECIPES.get(_digest(a))


@st.composite
def bulk_arrays(draw, dtype: str, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    seed = draw(st.integers(0, 2 ** 32 - 1))
    # 1..16 spots, each a 4-byte index and a value's code, in one draw (decode_values says why)
    k = draw(st.integers(1, 16))
    rows = np.frombuffer(draw(st.binary(min_size=k * SPOT_BYTES, max_size=k * SPOT_BYTES)), dtype=np.uint8)
    rows = rows.reshape(k, SPOT_BYTES)
    at = np.ascontiguousarray(rows[:, :4]).view("<u4").reshape(k) % n
    values = decode_values(rows[:, 4:].tobytes(), dtype)
    spots = tuple((int(i), to_hex(v)) for i, v in zip(at, values))
    a = bulk_array(dtype, shape, seed, spots)
    if len(_RECIPES) > 4096:  # a long run: forget the oldest draws (only a failing case's are ever printed)
        _RECIPES.pop(next(iter(_RECIPES)))
    _RECIPES[_digest(a)] = {"shape": list(shape), "seed": seed, "spots": [list(sp) for sp in spots]}
    return a


def tensor(dtype: str, shape: tuple) -> st.SearchStrategy:
    """An array of ``dtype`` and ``shape``: element by element when small, a ``bulk_array`` otherwise."""
    n = int(np.prod(shape)) if shape else 1
    return array(dtype, shape) if n <= SMALL else bulk_arrays(dtype, shape)


@st.composite
def sparse_gradient(draw, dtype: str, shape: tuple, duplicates: bool = False) -> np.ma.MaskedArray:
    """A sparse gradient (``OptimizerSpec.sparse_gradients``): values of ``dtype`` and ``shape``, masked outside the
    index set: every element held (the simplest), whole rows of the first dimension held or not (what
    ``nn.Embedding(sparse=True)`` gives), elements held one by one, or none (an empty gradient, which still
    counts a step).  Some draws hold explicit zeros (the index set is what the tensor holds, not where it is
    non-zero).  ``duplicates`` (a spec that coalesces or adds duplicates in turn: ``OptimizerSpec.coalesces``,
    ``adds_duplicates_in_turn``): some draws hold part of the index set twice (``reference.sparse.Uncoalesced``;
    whole rows where the index set is rows), the second values drawn like the first, so that coalescing must sum
    them, or the implementation add them in turn."""
    values = draw(tensor(dtype, shape))
    kind = draw(st.sampled_from(["all", "rows", "elements", "none"]))
    rows = kind == "rows" and len(shape) >= 2
    n = int(np.prod(shape)) if shape else 1

    def subset(within: np.ndarray) -> np.ndarray:  # a drawn part of ``within``, by rows where the set is rows
        if rows:
            pick = np.array(draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])), dtype=bool)
            return within & np.broadcast_to(pick.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
        return within & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool).reshape(shape)

    if kind in ("rows", "elements"):
        held = subset(np.ones(shape, dtype=bool))
    else:
        held = np.full(shape, kind == "all", dtype=bool)
    event(f"sparse gradient: {kind}")
    if held.any() and draw(st.integers(0, 3)) == 0:  # explicit zeros: held, with value ±0
        zeros = subset(held)
        values = np.where(zeros, np.zeros_like(values), values) if draw(st.booleans()) else \
            np.where(zeros, -np.zeros_like(values), values)
        event("sparse gradient: explicit zeros")
    if duplicates and held.any() and draw(st.integers(0, 2)) == 0:
        twice = subset(held)
        if twice.any():
            event("sparse gradient: duplicate indices")
            return uncoalesced(values, held, twice, draw(tensor(dtype, shape)))
    return np.ma.MaskedArray(values, mask=~held)


@functools.lru_cache(maxsize=None)
def realistic_shape() -> st.SearchStrategy:
    """Today's small shapes most often; SIMD lengths and multi-dimensional shapes too."""
    return st.one_of(st.sampled_from(SHAPES), st.sampled_from(SHAPES),
                     st.sampled_from(SIMD_LENGTHS).map(lambda n: (n,)), st.sampled_from(MULTI_SHAPES))


@st.composite
def group_shapes(draw, max_params: int, realistic: bool, large: bool, reduces: bool = False,
                 ndims: tuple = ()) -> list:
    if ndims:  # only shapes of these ranks (``OptimizerSpec.ndims``)
        pool = [sh for sh in SHAPES + (MATRIX_SHAPES if realistic else []) if len(sh) in ndims]
        return draw(st.lists(st.sampled_from(sorted(set(pool), key=pool.index)), min_size=1, max_size=max_params))
    if not realistic:
        return draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=max_params))
    if reduces:  # the exact engine's sizes (REDUCING_SHAPES)
        shape = st.one_of(st.sampled_from(SHAPES), st.sampled_from(REDUCING_SHAPES))
        return draw(st.lists(shape, min_size=1, max_size=max(max_params, REDUCING_MAX_PARAMS)))
    shapes = draw(st.lists(realistic_shape(), min_size=1, max_size=max(max_params, 12)))
    if large:  # past one chunk, by a drawn few (the simplest: one element past it)
        shapes.insert(draw(st.integers(0, len(shapes))), (LARGE + draw(st.integers(1, 64)),))
    return shapes


def gradient(spec: OptimizerSpec, dtype: str, shape: tuple, hyper: dict):
    """A gradient for a parameter of ``shape`` in a group with ``hyper``: dense (``tensor``), or sparse for a spec
    with sparse gradients (``sparse_gradient``), holding some index twice only where the spec coalesces duplicates,
    or adds them in turn and keeps no state for ``hyper`` (torch's SGD with momentum: not specified)."""
    if not spec.sparse_gradients:
        return tensor(dtype, shape)
    return sparse_gradient(dtype, shape, duplicates=spec.takes_duplicates(spec.complete(hyper)))


@st.composite
def cases(draw, spec: OptimizerSpec, dtype: str, *, max_steps: int = MAX_STEPS, min_steps: int = 1,
          max_groups: int = 2, max_params: int = 2, vary_lr: bool = True, allow_none: bool = True,
          realistic: bool = False, axes: tuple = ()) -> Case:
    """A whole trajectory: 1–2 groups of 1–2 params of small shapes, gradients per step, lrs per step.  A later
    group keeps each of the first group's hyperparameters unless drawn to differ (``hyperparameters(like=)``).

    ``realistic``: groups of 1–12 params of the sizes above, and (the simplest draw, and one in 8 of the
    others) one tensor past ``LARGE`` elements in the first group; a drawn memory layout (``LAYOUTS``,
    contiguous the simplest), drawn last: it changes no other draw of the same example.  ``axes``: the case axes
    (``backend.CASE_AXES``) the backend offers for this optimizer, path and dtype, each drawn (off the simplest)
    after everything else."""
    # A spec that reduces is checked by the exact engine, tensor by tensor (``conformance.check``), and so is one
    # with sparse gradients: no tensor past LARGE, which would take minutes there, and the exact engine's smaller
    # REDUCING_SHAPES, at most REDUCING_MAX_PARAMS tensors a group (CI's budget: three sparse specs since issue 14).
    large = realistic and not (spec.reduces or spec.sparse_gradients) and draw(st.integers(0, 7)) == 0
    allow_none = allow_none and not spec.group_steps  # its scalars are the group's: None not described
    none_pick = 9 if realistic else 0
    if large:
        event("large tensor (> 65,536 elements)")
    steps = draw(st.integers(min_steps, max_steps))
    groups = []
    for g in range(draw(st.integers(1, max_groups))):
        hyper = draw(hyperparameters(spec, like=groups[0].hyper if groups else None))
        if large and g == 0 and hyper.get("lr") == 0:  # the simplest lr is 0: let the large case move θ
            hyper = {**hyper, "lr": 1e-3}
        shapes = draw(group_shapes(max_params, realistic, large and g == 0, spec.reduces or spec.sparse_gradients,
                                   spec.ndims))
        groups.append(Group(hyper, [draw(tensor(dtype, s)) for s in shapes]))
    grads = []
    for _ in range(steps):
        row = []
        for hyper, params in groups:
            # realistic: 9, not 0, so that the simplest draw (the large case's) has every gradient
            row.append([None if allow_none and draw(st.integers(0, 9)) == none_pick else
                        draw(gradient(spec, dtype, p.shape, hyper)) for p in params])
        grads.append(row)
    lrs = None
    if vary_lr and draw(st.booleans()):
        lr_domain = spec.hyper("lr").domain  # SparseAdam's excludes 0
        lrs = [[draw(learning_rate().filter(lambda x: x in lr_domain)) for _ in groups] for _ in range(steps)]
    layout = draw(st.sampled_from(LAYOUTS)) if realistic else "contiguous"
    if layout != "contiguous":
        event(f"layout {layout}")
    flags = {axis: draw(st.booleans()) for axis in axes}
    for axis, on in flags.items():
        if on:
            event(f"case axis {axis}")
    return Case(spec.name, dtype, groups, grads, lrs, layout=layout, **flags)
