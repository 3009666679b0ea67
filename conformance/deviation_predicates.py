"""Predicates of the input-specific known deviations (``conformance.known_deviations``): which drawn cases a
torch deviation can touch.  Each takes a ``Case`` and is deliberately coarse where the deviation's trigger
is (a bound on the case, not a prediction), so that no affected case slips through; each is reproduced in
``tests/test_known_deviations.py``.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

import spec as spec_pkg
from reference.formats import get_format, round_to_format
from reference.step import hyper_schedule, is_finite, trajectory
from spec.core import t as step
from spec.radam import BETA2, rect, rho_inf, rho_t


def _is_zero_in(x, dtype) -> bool:
    """x rounds to 0 in dtype (torch converts the scalar ε to the tensor's dtype before adding it)."""
    return x is not None and round_to_format(Fraction(x), get_format(dtype)) == 0


def _step_size_overflows(data) -> bool:
    """Some lr/(1 - beta1) of the case exceeds the dtype's largest finite value."""
    top = float(get_format(data.dtype).max_finite)
    for i, (h, _) in enumerate(data.groups):
        lrs = [h["lr"]] + ([row[i] for row in data.lrs if row[i] is not None] if data.lrs else [])
        if h["beta1"] < 1 and max(lrs) / (1 - h["beta1"]) > top:
            return True
    return False


def _has_non_dense_tensor(data) -> bool:
    """The case is laid out ``strided`` (``conformance.backend.lay_out``) and has a tensor of 2 or more elements:
    one whose elements have gaps between them in memory."""
    return getattr(data, "layout", "contiguous") == "strided" and any(
        np.size(a) >= 2 for _, params in data.groups for a in params)


def _largest_abs(arrays) -> float:
    """max |x| over the (non-None, non-empty) arrays, in float64; 0 if there are none."""
    return max((float(np.max(np.abs(np.asarray(a, np.float64)))) for a in arrays if a is not None and np.size(a)),
               default=0.0)


def _largest_gradient(data, group: int) -> float:
    return _largest_abs(g for step in data.grads for g in step[group])


def _second_moment_overflows(data) -> bool:
    """Some (1 − β₂)·g² of the case exceeds the dtype's largest finite value, so v is inf (or NaN) there."""
    top = float(get_format(data.dtype).max_finite)
    for i, (h, _) in enumerate(data.groups):
        if h["beta2"] >= 1:
            continue  # v never takes g²
        limit = math.sqrt(top) / math.sqrt(1 - h["beta2"])  # |g| beyond this: (1 − β₂)·g² > top (float64: no overflow)
        if _largest_gradient(data, i) > limit:
            return True
    return False


def _rprop_etaminus_rounds_to_0_or_1(data) -> bool:
    """Some group's η₋, rounded to the case's dtype (as torch stores it in its factor tensor), is 0 or 1."""
    fmt = get_format(data.dtype)
    return any(round_to_format(Fraction(h["etaminus"]), fmt) in (0, 1) for h, _ in data.groups)


def _constructor_lr_is_zero(data) -> bool:
    """The constructor's lr is 0: the torch backend passes group 0's hyperparameters as the constructor's
    defaults (a schedule changes the groups' lr later, which no constructor check sees)."""
    return bool(data.groups) and data.groups[0][0].get("lr") == 0


def _groups_differ_in(name):
    return lambda data: len({h.get(name) for h, _ in data.groups}) > 1


def _any_group(pred):
    return lambda data: any(pred(h) for h, _ in data.groups)


def _momentum_with_missing_grad(data) -> bool:
    return any(h.get("momentum", 0) != 0 and any(step[i][j] is None for step in data.grads for j in range(len(ps)))
               for i, (h, ps) in enumerate(data.groups))



def _half_tensor_of_a_vector_or_more(data) -> bool:
    """float16/bfloat16 with a tensor of 8 or more elements: a whole SIMD vector of the CPU's half type (8 lanes
    on 128-bit NEON, 16 on AVX2, 32 on AVX-512: 8 is the least)."""
    return data.dtype in ("float16", "bfloat16") and any(np.size(x) >= 8 for _, ps in data.groups for x in ps)


def _amsgrad_may_meet_nan(data) -> bool:
    """AMSGrad with a NaN possible in v: a non-finite input, ε zero in the dtype (0/0 when v = 0), or v overflowing
    (then β₂·inf with β₂ = 0, or inf − inf, is NaN)."""
    if not any(h.get("amsgrad") for h, _ in data.groups):
        return False
    arrays = [p for _, ps in data.groups for p in ps] + [g for step in data.grads for row in step for g in row
                                                          if g is not None]
    return (any(not np.all(np.isfinite(np.asarray(a, np.float64))) for a in arrays)
            or any(_is_zero_in(h.get("eps"), data.dtype) for h, _ in data.groups)
            or _second_moment_overflows(data) or _decayed_gradient_may_overflow(data))


def _decayed_gradient_may_overflow(data) -> bool:
    """|g| + λ·|θ₀| beyond √(largest finite) of the dtype: g + λθ or its square may overflow (seed 3: float16,
    θ = −47616, λ = 2.24).  Coarse on purpose: θ moves, so this is a bound on the case, not a prediction."""
    root = math.sqrt(float(get_format(data.dtype).max_finite))
    return any(_decayed_gradient_bound(data, i) > root for i in range(len(data.groups)))


def _decayed_gradient_bound(data, group: int) -> float:
    """max |g| + λ·max |θ₀| over the group: a bound on |g + λθ| at the first step (θ moves later)."""
    h, params = data.groups[group]
    return _largest_gradient(data, group) + abs(h.get("weight_decay", 0.0)) * _largest_abs(params)



def _momentum_buffer_created_beside_others(data) -> bool:
    """SGD with momentum in a half format, where at some step one parameter of a group has a gradient for the first
    time while another already has a momentum buffer (so foreach SGD takes its per-tensor fallback)."""
    if data.dtype not in ("float16", "bfloat16"):
        return False
    for i, (h, params) in enumerate(data.groups):
        if h.get("momentum", 0) == 0 or len(params) < 2:
            continue
        seen = [False] * len(params)
        for step in data.grads:
            has = [g is not None for g in step[i]]
            if any(has[j] and not seen[j] for j in range(len(params))) and any(seen):
                return True
            seen = [a or b for a, b in zip(seen, has)]
    return False



_MP = mpmath.MPContext()
_MP.prec = 64  # D and the range edges: only which side of an edge a value lies on matters


@functools.lru_cache(maxsize=None)
def _radam_rho_and_rectifier():
    """(ρ_t, r_t) as functions of (β₂, t), composed from the spec's own statements (spec/radam.py)."""
    exprs = {}
    for statement in spec_pkg.get("radam").statements({}):
        if statement.target in (rho_inf, rho_t, rect):
            exprs[statement.target] = statement.expr.subs(exprs)
    return tuple(sp.lambdify((BETA2.symbol, step), exprs[x], "mpmath") for x in (rho_t, rect))


def _radam_rectifier(beta2: float, t: int):
    """RAdam's rectifier r_t at β₂ and step count t (an mpf), or None while ρ_t ≤ 5 (no rectified step)."""
    rho, rectifier = _radam_rho_and_rectifier()
    with mpmath.workprec(_MP.prec):  # the lambdified functions evaluate in mpmath's global context
        b2 = mpmath.mpf(beta2)
        return _MP.mpf(rectifier(b2, t)) if rho(b2, t) > 5 else None


def _in_force(spec, data, group: int) -> tuple:
    """(lrs, hyperparameters in force at each step) of a group: ``data.lrs`` as torch's group["lr"] writes."""
    lrs = None if data.lrs is None else [row[group] for row in data.lrs]
    return lrs, hyper_schedule(spec, data.groups[group][0], len(data.grads), lrs=lrs, validate=False)


def _capturable_denominator(optimizer: str, h: dict, snap) -> list:
    """(D, m) per element: the denominator D (mpf) that torch's capturable path forms, in the parameter's dtype,
    at the step that gave ``snap`` (the exact state after it), with the hyperparameters ``h`` in force, and the
    first moment m it divides:

    * Adam/AdamW: (√v̂/√bc₂ + ε)·bc₁/lr, v̂ = v or v_max (single tensor: √v/(√bc₂·(−lr/bc₁)) + ε/(−lr/bc₁);
      foreach: (√v/√bc₂ + ε)/(−lr/bc₁));
    * Adamax: u·bc₁/lr (exp_inf·((β₁^t − 1)/lr));
    * RAdam (foreach): (√v + ε)·bc₁/(√bc₂·lr·r_t) while ρ_t > 5, then m times its reciprocal; none while ρ_t ≤ 5.

    The spec's lr·m/d has no such quantity: D is lr's step size folded into the denominator."""
    t = snap.t
    lr, b1, b2, eps = (_MP.mpf(h[k]) for k in ("lr", "beta1", "beta2", "eps"))
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    name = {"adamax": "exp_inf", "radam": "exp_avg_sq"}.get(optimizer, "max_exp_avg_sq" if h.get("amsgrad")
                                                                  else "exp_avg_sq")
    pairs = [(_MP.mpf(x.value), _MP.mpf(m.value)) for x, m in zip(snap.state[name].flat, snap.state["exp_avg"].flat)
             if is_finite(x.value) and is_finite(m.value)]
    if lr == 0:
        # D = ±inf and m/D = 0, the exact step; but Adam's single-tensor √v/(√bc₂·(−0)) + ε/(−0) is NaN where
        # v = 0 or ε is 0 in float32 (the step tensor's dtype: ε = 2.2e-309 is), although d = √v/√bc₂ + ε may be
        # > 0 (where d = 0 the spec's 0·m/0 is NaN too).  Adamax u·(−inf), RAdam's reciprocal of ±inf: as exact.
        nan = optimizer in ("adam", "adamw") and (_is_zero_in(h["eps"], "float32") or any(x == 0 for x, _ in pairs))
        return [(_MP.nan, _MP.one)] if nan else []
    if optimizer == "adamax":
        return [(bc1 * u / lr, m) for u, m in pairs]
    if optimizer in ("adam", "adamw"):
        return [((_MP.sqrt(v) / _MP.sqrt(bc2) + eps) * bc1 / lr, m) for v, m in pairs if v >= 0]
    rect = _radam_rectifier(h["beta2"], t)
    if rect is None:
        return []
    return [((_MP.sqrt(v) + eps) * bc1 / (_MP.sqrt(bc2) * lr * rect), m) for v, m in pairs if v >= 0]


def _capturable_denominator_leaves_range(data) -> bool:
    """Some exact D of the case (``_capturable_denominator``; NaN for Adam's lr = 0 with v = 0 or ε = 0 in
    float32) that divides an m ≠ 0 is outside [2·smallest normal, largest finite/2] of the dtype, or one that
    divides m = 0 is below the smallest subnormal and may round to 0 (0/0).  D = 0 exactly is d = 0, as special
    in the spec's m/d.

    Outside that range D overflows (float16: 65504) or loses its relative precision to underflow, which the spec,
    having no D, cannot charge; the factor 2 keeps D's own rounding error (a few ulps) from crossing the edge.
    Computed from the exact trajectory (reference.step), so the predicate follows θ and the moments."""
    fmt = get_format(data.dtype)
    tiny = _MP.mpf(2) ** fmt.emin
    low, high, least = 2 * tiny, _MP.mpf(float(fmt.max_finite)) / 2, tiny * _MP.mpf(2) ** (1 - fmt.precision)

    def outside(d, m) -> bool:
        return d != 0 and (not low <= d <= high if m != 0 else not d >= least)

    spec = spec_pkg.get(data.optimizer)
    for i, (h, params) in enumerate(data.groups):
        lrs, in_force = _in_force(spec, data, i)
        for j, p0 in enumerate(params):
            grads = [row[i][j] for row in data.grads]
            for s, snap in enumerate(trajectory(spec, h, p0, grads, lrs=lrs, formats=("float64",), validate=False)):
                if snap.stepped and any(outside(d, m) for d, m in
                                        _capturable_denominator(data.optimizer, in_force[s], snap)):
                    return True
    return False


def _capturable_factors(optimizer: str, h: dict, t: int) -> list:
    """The 0-dim float32 factors torch's capturable paths compute from the step counter at step count t (both
    paths' for Adam/AdamW): Adam −lr/bc₁ (foreach), √bc₂·(−lr/bc₁) (single tensor); Adamax
    (β₁^t − 1)/lr; RAdam (foreach) −√bc₂·lr·r_t/bc₁ while ρ_t > 5, else −lr/bc₁.  Magnitudes, as floats."""
    lr, b1, b2 = h["lr"], h["beta1"], h["beta2"]
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t  # > 0: β < 1 (spec.core.UNIT) and t ≥ 1
    if lr == 0:
        return []  # _capturable_denominator_leaves_range
    if optimizer == "adamax":
        return [bc1 / lr]
    if optimizer in ("adam", "adamw"):
        # Not ε/(−lr/bc₁): rounded, it is off by at most half a subnormal, a relative u·2^emin/D ≤ u/2 of a D
        # that _capturable_denominator_leaves_range keeps above 2·2^emin.
        return [lr / bc1, math.sqrt(bc2) * lr / bc1]
    rect = _radam_rectifier(b2, t)
    return [lr / bc1] if rect is None else [math.sqrt(bc2) * lr * float(rect) / bc1]


def _capturable_factor_leaves_range(data) -> bool:
    """Some nonzero factor of ``_capturable_factors`` (lr in force, step count t of each parameter) is outside
    [2·smallest normal, largest finite/2] of the dtype, where rounding it to the dtype overflows or underflows."""
    fmt = get_format(data.dtype)
    low, high = 2 * 2.0 ** fmt.emin, float(fmt.max_finite) / 2
    spec = spec_pkg.get(data.optimizer)
    for i, (h, params) in enumerate(data.groups):
        _, in_force = _in_force(spec, data, i)
        for j in range(len(params)):
            t = 0
            for s, row in enumerate(data.grads):
                if row[i][j] is None:
                    continue
                t += 1
                if any(f != 0 and not low <= f <= high for f in _capturable_factors(data.optimizer, in_force[s], t)):
                    return True
    return False


def _sequential_milestone_not_positive(case) -> bool:
    """A SequentialLR case whose milestone is ≤ 0 (the second scheduler rules from step 0)."""
    return case.hyper["milestone"] <= 0


def _radam_adaptive_term_not_finite(data) -> bool:
    """ε zero in the dtype (1/0 where v = 0), or v or g + λθ overflowing: foreach RAdam's adaptive term is not
    finite somewhere, and times rect = 0 it is NaN."""
    return (any(_is_zero_in(h.get("eps"), data.dtype) for h, _ in data.groups)
            or _second_moment_overflows(data) or _decayed_gradient_may_overflow(data))
