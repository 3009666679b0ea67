"""Hypothesis strategies drawn from the spec: hyperparameters, tensors, whole cases.

Hyperparameters come from each spec's domain (its ``fuzz`` part where the
domain is unbounded or blows up), with the values that matter most drawn
often: the domain's ends, the default, tiny and large magnitudes, β near 0 and
near 1, ε up to order 1.  Tensors hold values spread over many binades,
with zeros of both signs and subnormals of the dtype.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
from hypothesis import reject, strategies as st

from reference.formats import get_format, round_to_format
from spec.core import Hyperparameter, Interval, InvalidHyperparameter, OptimizerSpec

from .backend import Case, Group

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
    specials = [h.default, lo, hi, 0.0, 1.0, 0.5, 1e-8, 1e-3, 0.1, 0.9, 0.99, 0.999, 1 - 2 ** -20, 2.0, 3.0]
    picks = [x for x in specials if isinstance(x, (int, float)) and _in(box, float(x))]
    magnitudes = st.builds(lambda e, m: m * 10.0 ** e, st.integers(-12, 1), st.floats(1.0, 9.99))
    near_one = st.builds(lambda k: 1 - 2.0 ** -k, st.integers(1, 30))
    uniform = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(picks), magnitudes, near_one, uniform).filter(lambda x: _in(box, x))


@st.composite
def hyperparameters(draw, spec: OptimizerSpec, lr_scale: float = 1.0) -> dict:
    """A complete, valid hyperparameter dict of ``spec`` (flags included)."""
    out = {}
    for h in spec.hyperparameters:
        if h.is_flag:
            out[h.name] = draw(st.booleans())
        elif h.name == "lr":
            out[h.name] = draw(learning_rate())
        else:
            out[h.name] = float(draw(hyper_value(h)))
    if out.get("nesterov"):
        # The constructor rejects Nesterov without momentum or with dampening; draw a valid pair instead.
        out["dampening"] = 0.0
        if out.get("momentum", 0) <= 0:
            out["momentum"] = draw(st.sampled_from([0.5, 0.9, 0.99]))
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


@functools.lru_cache(maxsize=None)
def element(dtype: str) -> st.SearchStrategy:
    """One value of ``dtype``: spread over binades, with ±0, subnormals and exact small integers."""
    fmt = get_format(dtype)
    tiny = float(fmt.min_subnormal)
    emax = min(fmt.emax, 30)
    normal = st.builds(lambda s, e, m: s * m * 2.0 ** e, st.sampled_from([-1.0, 1.0]),
                       st.integers(-24, min(emax - 1, 12)), st.floats(1.0, 2.0, exclude_max=True))
    wide = st.builds(lambda s, e, m: s * m * 2.0 ** e, st.sampled_from([-1.0, 1.0]),
                     st.integers(fmt.emin - fmt.precision + 1, fmt.emax), st.floats(1.0, 2.0, exclude_max=True))
    subnormal = st.builds(lambda s, k: s * k * tiny, st.sampled_from([-1.0, 1.0]), st.integers(1, 2 ** 4))
    value = st.one_of(normal, normal, normal, st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5]), subnormal, wide)
    return value.map(lambda x: round_to_format(Fraction(x) if math.isfinite(x) else x, fmt) if x != 0
                     else fmt.dtype.type(x))


@functools.lru_cache(maxsize=None)
def array(dtype: str, shape: tuple) -> st.SearchStrategy:
    n = int(np.prod(shape)) if shape else 1
    fmt = get_format(dtype)
    return st.lists(element(dtype), min_size=n, max_size=n).map(
        lambda xs: np.array(xs, dtype=fmt.dtype).reshape(shape))


SHAPES = [(), (1,), (3,), (2, 2), (4,)]


@st.composite
def cases(draw, spec: OptimizerSpec, dtype: str, *, max_steps: int = MAX_STEPS, min_steps: int = 1,
          max_groups: int = 2, max_params: int = 2, vary_lr: bool = True, allow_none: bool = True) -> Case:
    """A whole trajectory: 1–2 groups of 1–2 params of small shapes, gradients per step, lrs per step."""
    steps = draw(st.integers(min_steps, max_steps))
    groups = []
    for _ in range(draw(st.integers(1, max_groups))):
        hyper = draw(hyperparameters(spec))
        shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=max_params))
        groups.append(Group(hyper, [draw(array(dtype, s)) for s in shapes]))
    grads = []
    for _ in range(steps):
        row = []
        for _, params in groups:
            row.append([None if allow_none and draw(st.integers(0, 9)) == 0 else draw(array(dtype, p.shape))
                        for p in params])
        grads.append(row)
    lrs = None
    if vary_lr and draw(st.booleans()):
        lrs = [[draw(learning_rate()) for _ in groups] for _ in range(steps)]
    return Case(spec.name, dtype, groups, grads, lrs)
