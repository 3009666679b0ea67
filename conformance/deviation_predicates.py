"""Predicates of the input-specific known deviations (``conformance.known_deviations``): which drawn cases a
torch deviation can touch.  Each takes a ``Case`` and is deliberately coarse where the deviation's trigger
is (a bound on the case, not a prediction), so that no affected case slips through; each is reproduced in
``tests/test_known_deviations.py``.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Callable

import mpmath
import numpy as np
import sympy as sp

import spec as spec_pkg
from reference.formats import get_format, round_to_format
from reference.step import hyper_schedule, is_finite
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


def _pytorch_optimizer_lamb_alpha_overflows(data) -> bool:
    """pytorch-optimizer's Lamb passes −lr/(1 − β₁ᵗ) (Python floats, t the group's count: every step of the case)
    as the ``alpha`` of ``torch._foreach_add_``, which refuses a scalar past the tensor dtype's largest finite
    value (RuntimeError); adam_debias=True passes −lr."""
    top = float(get_format(data.dtype).max_finite)
    for i, (h, _) in enumerate(data.groups):
        lrs = [h["lr"]] + ([row[i] for row in data.lrs if row[i] is not None] if data.lrs else [])
        for t in range(1, len(data.grads) + 1):
            bc1 = 1.0 if h.get("adam_debias") else 1.0 - math.pow(h["beta1"], t)
            if any(lr / bc1 > top for lr in lrs):
                return True
    return False


def _some_beta_rounds_to_one_in_dtype(data) -> bool:
    """Some group's β₁ or β₂ rounds to 1 in the case's dtype (bfloat16: β ≥ 1 − 2⁻⁹; float16: β ≥ 1 − 2⁻¹²), where
    Keras's 1 − cast(β, dtype)ᵗ is 0."""
    fmt = get_format(data.dtype)
    return any(round_to_format(Fraction(h[b]), fmt) == 1 for h, _ in data.groups for b in ("beta1", "beta2")
               if h.get(b) is not None)


def _has_non_dense_tensor(data) -> bool:
    """The case is laid out ``strided`` (``conformance.backend.lay_out``) and has a tensor of 2 or more elements:
    one whose elements have gaps between them in memory."""
    return getattr(data, "layout", "contiguous") == "strided" and any(
        np.size(a) >= 2 for _, params in data.groups for a in params)


def _offset_view_with_element_sparse_gradient(data) -> bool:
    """The case is laid out ``strided`` and has a one-element 1-D tensor (contiguous, at storage offset 1 in its
    buffer: ``conformance.backend.lay_out``) whose sparse gradient holds its element at some step: torch's
    ``dense.add_(sparse)`` then takes its contiguous, non-hybrid CPU path, which adds the storage offset twice."""
    if getattr(data, "layout", "contiguous") != "strided":
        return False
    return any(np.shape(a) == (1,) and any(step[i][j] is not None and bool(np.any(~np.ma.getmaskarray(step[i][j])))
                                           for step in data.grads)
               for i, (_, params) in enumerate(data.groups) for j, a in enumerate(params))


def _half_sparse_tensors_meet(data) -> bool:
    """A float16 SGD with momentum adds two sparse tensors that both hold entries: ``buf.mul_(μ).add_(g)`` at a
    tensor's later step (a buffer and a gradient with entries), or Nesterov's ``g.add(buf, alpha=μ)``.  torch's CPU
    sparse + sparse (``add_out_sparse_contiguous``, dispatched for bfloat16 but not float16) raises there."""
    if data.dtype != "float16":
        return False
    for i, (h, params) in enumerate(data.groups):
        if h.get("momentum", 0) == 0:
            continue
        for j in range(len(params)):
            buffer = None  # where the buffer holds entries, once it exists
            for row in data.grads:
                g = row[i][j]
                if g is None:
                    continue
                here = ~np.ma.getmaskarray(g)
                if here.any() and (h.get("nesterov") or (buffer is not None and buffer.any())):
                    return True
                buffer = here if buffer is None else buffer | here
    return False


def _all_elements(data) -> np.ndarray:
    """Every element of the case's one tensor."""
    return np.ones(np.shape(data.groups[0][1][0]), dtype=bool)


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


def _asgd_mu_may_be_one_after_first_step(data) -> bool:
    """A group of two steps or more whose μ, computed at a step t ≥ 1 as 1/max(1, t − t₀) and stored in float32,
    may be 1 when the next step reads it: t − t₀ ≤ 1 + 2⁻²⁴ for t = 1 means t₀ ≥ −2⁻²⁴ (−2⁻²⁰ leaves a margin
    for a float32 t − t₀).  At a parameter's first step ā is 0 and ā + (θ − ā) is θ exactly."""
    return data.steps >= 2 and any(h["t0"] >= -2.0 ** -20 for h, _ in data.groups)


def _asgd_foreach_folding_may_depart(data) -> bool:
    """A group where the foreach form θ − η·(g′ + λθ) (g′ = ±g + w·θ, formed in the dtype) may leave the bound of
    θ·(1 − λη) − η·g′: λ·η may reach 1/2, where θ·(1 − λη) cancels and λθ's rounding, up to u·λη·|θ|, is left in
    the result (below 1/2 the bound covers it); or |g′| + |λθ| may pass the dtype's largest finite value (less 2⁻⁶
    of it), so that g′ + λθ overflows where η·g′ does not.  With λ, α ≥ 0, η ≤ L, the largest lr of the group,
    and each finite θ stays within |θ₀| grown by |θ|·(1 + (λ + w)·L) + L·|g| a step (elements with a non-finite
    value are compared by IEEE class, where a NaN for an infinity is accepted); λ < 0 or α < 0: always."""
    top = float(get_format(data.dtype).max_finite) * (1 - 2.0 ** -6)
    for i, (h, params) in enumerate(data.groups):
        lr_max = max([h["lr"], *(row[i] for row in data.lrs or () if row[i] is not None)])
        if h["alpha"] < 0 or h["lambd"] < 0 or h["lambd"] * lr_max >= 0.5:
            return True
        scale, growth = h["weight_decay"] + h["lambd"], 1 + (h["weight_decay"] + h["lambd"]) * lr_max
        for j, p0 in enumerate(params):
            with np.errstate(all="ignore"):
                theta = np.abs(np.asarray(p0, np.float64)).reshape(-1)
                theta = np.where(np.isfinite(theta), theta, 0.0)
                for row in data.grads:
                    gr = row[i][j]
                    if gr is None:
                        continue
                    g = np.abs(np.asarray(gr, np.float64)).reshape(-1)
                    g = np.where(np.isfinite(g), g, 0.0)
                    if np.any(g + scale * theta > top):
                        return True
                    theta = theta * growth + lr_max * g
    return False


def _constructor_lr_is_zero(data) -> bool:
    """The constructor's lr is 0: the torch backend passes group 0's hyperparameters as the constructor's
    defaults (a schedule changes the groups' lr later, which no constructor check sees)."""
    return bool(data.groups) and data.groups[0][0].get("lr") == 0


def _adafactor_eps1_none_with_mixed_dtypes(data) -> bool:
    """A group with eps1 = None (the dtype's machine epsilon) that holds tensors of two dtypes (the mixed_dtype
    case axis): torch's Adafactor takes every tensor's ε₁ from the first tensor (or dtype group) it steps."""
    return bool(getattr(data, "mixed_dtype", False)) and any(h.get("eps1", 0.0) is None for h, _ in data.groups)


def _group_steps(data, i: int):
    """Per step of group ``i``: (the lr in force, as ``data.lrs`` sets it; [(j, t)] for each tensor j with a
    gradient at that step, t its own step counter after it)."""
    counts, lr = [0] * len(data.groups[i][1]), data.groups[i][0]["lr"]
    for s, row in enumerate(data.grads):
        if data.lrs is not None and data.lrs[s][i] is not None:
            lr = data.lrs[s][i]
        stepped = [j for j, gr in enumerate(row[i]) if gr is not None]
        for j in stepped:
            counts[j] += 1
        yield lr, [(j, counts[j]) for j in stepped]


def _adafactor_tensor_lr_mixes_scalar_types(data) -> bool:
    """A Tensor lr (the lr_tensor axis) and a group whose tensors with a gradient at some step have step counters
    on both sides of lr = 1/√t: foreach Adafactor's ρ_t = min(lr, 1/√t) is then the lr tensor for some and a
    Python float for others, and ``_foreach_mul_`` refuses the mixed list (TypeError)."""
    if not getattr(data, "lr_tensor", False):
        return False
    return any(len({1 / t ** 0.5 < lr for _, t in stepped}) > 1
               for i in range(len(data.groups)) for lr, stepped in _group_steps(data, i))


def _sparse_adam_tensor_step_size_overflows(data) -> bool:
    """A Tensor lr (the lr_tensor axis) and some step whose step size s = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) (binary64, the
    tensor's count t) exceeds the dtype's largest finite value: SparseAdam's ``-step_size * numer`` then takes s as
    a 0-d float64 tensor, converted to the parameter's dtype (±inf) before the product."""
    if not getattr(data, "lr_tensor", False):
        return False
    top = float(get_format(data.dtype).max_finite)
    for i, (h, _) in enumerate(data.groups):
        b1, b2 = h["beta1"], h["beta2"]
        for lr, stepped in _group_steps(data, i):
            if any(1 - b1 ** t != 0 and lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) >= top for _, t in stepped):
                return True
    return False


def _gradient_missing_before_a_later_one(data) -> bool:
    """Some parameter has no gradient at a step and a gradient at a later one: there a counter of the group's
    steps (advanced at every step()) is ahead of the parameter's own count t."""
    for i, (_, params) in enumerate(data.groups):
        for j in range(len(params)):
            present = [step[i][j] is not None for step in data.grads]
            if any(not a and any(present[s + 1:]) for s, a in enumerate(present)):
                return True
    return False


def _some_beta_rounds_one_minus_to_one(data) -> bool:
    """Some group's β₁, β₂ or β₃ is at most 2⁻⁵⁴, where 1 − β rounds to 1 in binary64 (2⁻⁵⁴ ties to even, 1)."""
    return any(h.get(b, 1.0) <= 2.0 ** -54 for h, _ in data.groups for b in ("beta1", "beta2", "beta3"))
def _ademamix_beta3_schedule_overflows(data) -> bool:
    """pytorch-optimizer's β₃(t) = min(exp(ln β₁·ln β₃/D), β₃), D = (1 − t/T)·ln β₃ + (t/T)·ln β₁, evaluated at
    every step (past the warm-up too): math.exp raises OverflowError where the exponent passes ln(largest
    float64) ≈ 709.78 (β₁ > β₃, just after t/T = ln β₃/(ln β₃ − ln β₁)), math.log raises ValueError for β = 0, and
    D = 0 raises ZeroDivisionError.  The step counter is the group's, so every step of the case counts."""
    for h, _ in data.groups:
        T, b1, b3 = h.get("t_alpha_beta3", 0.0), h.get("beta1", 0.9), h.get("beta3", 0.9999)
        if not T:
            continue
        if b1 == 0 or b3 == 0:
            return True
        l1, l3 = math.log(b1), math.log(b3)
        for k in range(1, len(data.grads) + 1):
            a = k / T
            d = (1.0 - a) * l3 + a * l1
            if d == 0 or l1 * l3 / d > 700:  # a margin below 709.78 for the rounding of the quotient
                return True
    return False


def _beta3_warmup_in_force(data) -> bool:
    """Some group has a β₃ warm-up that is in force at its first step (``beta3_warmup`` > 1: t/T < 1 at t = 1)."""
    return any(h.get("beta3_warmup", 0.0) > 1 for h, _ in data.groups)


def _bitsandbytes_rmsprop_alpha(data) -> bool:
    """bitsandbytes' RMSprop reads α from the constructor's betas (group 0's here): a later group's own α is
    ignored; and its constructor refuses α = 0 (NotImplementedError) and α = 1 (ValueError)."""
    alphas = [h.get("alpha", 0.99) for h, _ in data.groups]
    return len(set(alphas)) > 1 or (bool(alphas) and alphas[0] in (0.0, 1.0))


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
        for row in data.grads:
            has = [g is not None for g in row[i]]
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


def _capturable_denominator(optimizer: str, h: dict, snap, dtype: str) -> list:
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
        # v is 0 in the parameter's dtype (an exact v below twice its smallest subnormal may round to 0 there:
        # bfloat16's v of a tiny g, seed 1) or ε is 0 in float32 (the step tensor's dtype: ε = 2.2e-309 is),
        # although d = √v/√bc₂ + ε may be > 0 (where d = 0 the spec's 0·m/0 is NaN too).  Adamax u·(−inf),
        # RAdam's reciprocal of ±inf: as exact.
        small = 2 * _MP.mpf(get_format(dtype).min_subnormal.numerator) / get_format(dtype).min_subnormal.denominator
        nan = optimizer in ("adam", "adamw") and (_is_zero_in(h["eps"], "float32") or any(x < small for x, _ in pairs))
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
    divides m = 0 is below the smallest subnormal and may round to 0 (0/0), or, for RAdam (whose foreach path
    steps by m·(1/D)), below 2/largest finite, where 1/D overflows (0·inf).  D = 0 exactly is d = 0, as special
    in the spec's m/d.

    Outside that range D overflows (float16: 65504) or loses its relative precision to underflow, which the spec,
    having no D, cannot charge; the factor 2 keeps D's own rounding error (a few ulps) from crossing the edge.
    Computed from the exact trajectory over arrays (``_capturable_denominator_leaves_range_fast``: phase 1's
    enclosure, the exact path for the elements it leaves wide), so the predicate follows θ and the moments; the
    tensors of a group that step together are one array (the optimizers it serves are element-wise), one call
    for them all.  (Until session 20 a tensor of up to 4 elements went through ``reference.step`` element by
    element; that is now the definition the array path is tested against, tests/test_capturable_denominator_
    predicate.py.  The two place D alike except within 2⁻⁴⁰ of an edge of the range, which the factor 2 already
    keeps D's rounding away from.)"""
    fmt = get_format(data.dtype)
    spec = spec_pkg.get(data.optimizer)
    for i, (h, params) in enumerate(data.groups):
        lrs, in_force = _in_force(spec, data, i)
        for p0, grads in _stepping_together(params, [[row[i][j] for row in data.grads] for j in range(len(params))]):
            if _capturable_denominator_leaves_range_fast(data.optimizer, fmt, in_force, p0, grads, lrs, h):
                return True
    return False


def _stepping_together(params: list, grads: list) -> list:
    """(θ₀, gradients per step) of one group's tensors joined into flat arrays: those of one dtype whose gradients
    are missing (None) at the same steps, which therefore step together, element by element."""
    joined: dict = {}
    for p0, gs in zip(params, grads):
        key = (np.asarray(p0).dtype.str, tuple(g is None for g in gs))
        joined.setdefault(key, []).append((p0, gs))
    out = []
    for (_, missing), members in joined.items():
        p0 = np.concatenate([np.ravel(p) for p, _ in members])
        gs = [None if gone else np.concatenate([np.ravel(g[s]) for _, g in members]) for s, gone in enumerate(missing)]
        out.append((p0, gs))
    return out


def _enclosed_trajectory(spec, h, p0, grads, lrs) -> list:
    """The exact trajectory as ``reference.fast.FastSnapshot``s whose ``value`` is phase 1's midpoint (the exact
    value to within a radius of a few binary64 ulps: enough to place D against a factor-2 margin) and, for the
    elements phase 1 leaves wide or non-finite, ``reference.step``'s exact ``elements``.  Wide means: a moment
    that divides (v, max v, u) whose radius exceeds 2⁻⁴⁰ of its value, or an m whose interval does not settle
    whether it is 0; θ's value is not used, and a θ near cancellation (radius large next to it) sent nearly half
    the elements of a realistic tensor to the exact path (a minute a test).  Unlike
    ``fast_trajectory`` it certifies no rounding (in float64 none could be, and every element went to the exact
    path: minutes for a 65,537-element tensor)."""
    from reference import arith
    from reference.fast import FastSnapshot, _phase1, _phase2_reference, _problem

    pb = _problem(spec, h, p0, grads, None, 0, lrs, None, False)
    names = pb.program.outputs
    try:
        x, r, _, _, _, _ = _phase1(pb, ())
        wide = np.zeros(pb.n, dtype=bool)
        for step in range(len(grads)):
            for k in names:
                if k == "theta":
                    continue  # D is formed from the moments alone, whose radii already carry θ's
                xs, rs = x[step][k], r[step][k]
                if k == "exp_avg":  # used only as zero or not
                    sure = (rs == 0) | (rs < np.abs(xs))
                else:
                    sure = rs <= 2.0 ** -40 * np.abs(xs)
                wide |= ~np.isfinite(xs) | ~sure
    except (arith.Undecided, arith.NotReal):  # a scalar comparison phase 1 cannot decide: every element exactly
        x = [{k: np.full(pb.n, np.nan) for k in names} for _ in grads]
        wide = np.ones(pb.n, dtype=bool)
    idx = np.flatnonzero(wide)
    exact = _phase2_reference(pb, idx, ("float64",)) if idx.size else None
    snaps = []
    for step in range(len(grads)):
        value, elements = {}, {}
        for k in names:
            value[k] = x[step][k].copy()
            if exact is not None:
                els = list((exact[step].theta if k == "theta" else exact[step].state[k]).reshape(-1))
                value[k][idx] = [float(el.value) for el in els]
                elements[k] = dict(zip(idx.tolist(), els))
        snaps.append(FastSnapshot(t=pb.ts[step], stepped=grads[step] is not None, rounded={}, value=value,
                                  radius={}, exact={}, phase2=wide, elements=elements))
    return snaps


def _beyond_float64(snap, name: str, indices) -> list:
    """(v, m) as mpf for the elements at ``indices`` whose exact values are finite but not float64's (phase 2 of
    ``reference.fast`` holds them: a square past 1.8e308 of a float64 case)."""
    out = []
    for k in indices.tolist():
        ev, em = snap.elements.get(name, {}).get(k), snap.elements.get("exp_avg", {}).get(k)
        if ev is not None and em is not None and is_finite(ev.value) and is_finite(em.value):
            out.append((_MP.mpf(ev.value), _MP.mpf(em.value)))
    return out


def _sqrt(x: np.ndarray) -> np.ndarray:
    return np.sqrt(x) if x.dtype != object else np.array([_MP.sqrt(v) for v in x], dtype=object)


def _log2(x: np.ndarray) -> np.ndarray:
    if x.dtype != object:
        return np.log2(np.abs(x))
    return np.array([float(_MP.log(abs(_MP.mpf(v)), 2)) for v in x], dtype=np.float64)


def _capturable_denominator_leaves_range_fast(optimizer: str, fmt, in_force, p0, grads, lrs, h) -> bool:
    """``_capturable_denominator_leaves_range`` for one tensor, over arrays: the exact state from
    ``reference.fast.fast_trajectory`` (float64 values within a certified radius, far inside the factor-2 margins
    of the range), and D compared in log₂ so that no float64 over- or underflow decides; the step's scalars
    (bc₁, bc₂, r_t) in mpmath, as there."""
    spec = spec_pkg.get(optimizer)
    log_low, log_high = 1.0 + fmt.emin, math.log2(float(fmt.max_finite)) - 1.0
    log_least = float(fmt.emin + 1 - fmt.precision)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for s, snap in enumerate(_enclosed_trajectory(spec, h, p0, grads, lrs)):
            if not snap.stepped:
                continue
            hs, t = in_force[s], snap.t
            lr, b1, b2, eps = (_MP.mpf(hs[k]) for k in ("lr", "beta1", "beta2", "eps"))
            name = {"adamax": "exp_inf", "radam": "exp_avg_sq"}.get(optimizer, "max_exp_avg_sq" if hs.get("amsgrad")
                                                                          else "exp_avg_sq")
            x = np.asarray(snap.value[name], dtype=np.float64).ravel()
            m = np.asarray(snap.value["exp_avg"], dtype=np.float64).ravel()
            ok = np.isfinite(x) & np.isfinite(m)
            beyond = _beyond_float64(snap, name, np.flatnonzero(~ok))  # finite, past float64's range
            if beyond:
                x, m = np.append(x[ok], [v for v, _ in beyond]), np.append(m[ok], [w for _, w in beyond])
                x, m = x.astype(object), m.astype(object)  # mpf where float64 cannot hold them
            else:
                x, m = x[ok], m[ok]
            if lr == 0:
                small = 2 * float(fmt.min_subnormal)  # v that may be 0 in the dtype, as _capturable_denominator
                if optimizer in ("adam", "adamw") and (_is_zero_in(hs["eps"], "float32") or (x < small).any()):
                    return True  # NaN, as _capturable_denominator
                continue
            bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
            if optimizer == "adamax":
                numerator, scale = x, bc1 / lr
            elif optimizer in ("adam", "adamw"):
                keep = x >= 0
                x, m = x[keep], m[keep]
                numerator, scale = _sqrt(x) / math.sqrt(float(bc2)) + float(eps), bc1 / lr
            else:
                rect = _radam_rectifier(hs["beta2"], t)
                if rect is None:
                    continue
                keep = x >= 0
                x, m = x[keep], m[keep]
                numerator, scale = _sqrt(x) + float(eps), bc1 / (_MP.sqrt(bc2) * lr * rect)
            nonzero = numerator != 0  # D = 0 exactly: d = 0, as special in the spec's m/d
            log_d = _log2(numerator[nonzero]) + float(_MP.log(abs(scale), 2))
            moving = m[nonzero] != 0
            # m = 0 stays 0 unless the quotient is 0/0 or 0·inf: foreach RAdam steps by m·(1/D), so there a D
            # whose reciprocal overflows (below 2/largest finite) is NaN too; the others divide m/D
            still = max(log_least, 1.0 - math.log2(float(fmt.max_finite))) if optimizer == "radam" else log_least
            if ((log_d < log_low) | (log_d > log_high))[moving].any() or (log_d < still)[~moving].any():
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


def _some_factor_leaves_range(data, factors: Callable) -> bool:
    """Some nonzero ``factors(h, t)`` (h the hyperparameters in force at a step, t the step count of each parameter
    there) is outside [2·smallest normal, largest finite/2] of the dtype, where rounding it to the dtype overflows
    or underflows."""
    fmt = get_format(data.dtype)
    low, high = 2 * 2.0 ** fmt.emin, float(fmt.max_finite) / 2
    spec = spec_pkg.get(data.optimizer)
    for i, (_, params) in enumerate(data.groups):
        _, in_force = _in_force(spec, data, i)
        for j in range(len(params)):
            t = 0
            for s, row in enumerate(data.grads):
                if row[i][j] is None:
                    continue
                t += 1
                if any(f != 0 and not low <= abs(f) <= high for f in factors(in_force[s], t)):
                    return True
    return False


def _capturable_factor_leaves_range(data) -> bool:
    """Some nonzero factor of ``_capturable_factors`` (lr in force, step count t of each parameter) is outside
    [2·smallest normal, largest finite/2] of the dtype, where rounding it to the dtype overflows or underflows."""
    return _some_factor_leaves_range(data, lambda h, t: _capturable_factors(data.optimizer, h, t))


def _sparse_adam_tensor_factor_leaves_range(data) -> bool:
    """A ``betas_tensor`` case of SparseAdam in float16 or bfloat16 where a nonzero factor that torch's
    ``sparse_adam`` multiplies by as a 0-d float64 Tensor (1 − β₁, 1 − β₂, and s = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) at the
    step count t of each tensor) is outside [2·smallest normal, largest finite/2] of the dtype: the multiply casts a
    0-d Tensor to the parameter's dtype (a Python float stays a float32 operand), which overflows to inf or
    underflows there."""
    if not getattr(data, "betas_tensor", False) or data.dtype not in ("float16", "bfloat16"):
        return False
    return _some_factor_leaves_range(data, lambda h, t: (
        1 - h["beta1"], 1 - h["beta2"], h["lr"] * math.sqrt(1 - h["beta2"] ** t) / (1 - h["beta1"] ** t)))


def _complex_weight_decay_meets_non_finite(data) -> bool:
    """A ``complex`` case with a complex tensor (``backend.complex_shape``) in a group with λ ≠ 0 whose θ may have a
    non-finite part before some step: θ₀ or a gradient holds one, or at some step an output's exact value is not
    finite in the dtype, or the tolerance model accepts any value for it (format-limited, e.g. 0/0 where ε rounds
    to 0: the implementation may hold NaN there), by ``reference.fast.fast_reference_and_bounds`` with float32
    scalars (the wider bounds).  Where a part is ±inf or NaN, torch's single-tensor weight decay, in complex
    arithmetic before ``view_as_real``, multiplies the other part's 0 by it: NaN.

    Phase 1 only (``phase2_limit=0``): an element it cannot settle counts as one that may be non-finite (the case is
    set aside, never failed).  Phase 2 here, once per drawn example and again while shrinking, took 5 minutes on one
    centered RMSprop case of CI's derandomized run; over 240 drawn complex cases of RMSprop and Adam in 4 dtypes,
    the answer was the same with and without it."""
    from reference.fast import fast_reference_and_bounds  # here: only complex cases pay for importing it

    from .backend import complex_shape

    if not getattr(data, "complex", False):
        return False
    spec = spec_pkg.get(data.optimizer)
    fmt = get_format(data.dtype)
    for i, (h, params) in enumerate(data.groups):
        if not h.get("weight_decay"):
            continue
        lrs, _ = _in_force(spec, data, i)
        for j, p0 in enumerate(params):
            if complex_shape(np.shape(p0)) is None:
                continue
            grads = [row[i][j] for row in data.grads]
            inputs = [p0] + [g for g in grads if g is not None]
            if not all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in inputs):
                return True
            snaps, bounds = fast_reference_and_bounds(spec, h, p0, grads, fmt, lrs=lrs, validate=False,
                                                      phase2_limit=0)
            for snap, bound in zip(snaps, bounds):
                for name, rounded in snap.rounded[fmt.name].items():
                    if not np.isfinite(np.asarray(rounded, dtype=np.float64)).all() \
                            or np.isinf(np.asarray(bound.error[name], dtype=np.float64)).any():
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


def _radam_adaptive_term_not_finite_at(data) -> np.ndarray:
    """The elements of a one-tensor case where foreach RAdam's adaptive term may not be finite at an unrectified
    step (``_radam_adaptive_term_not_finite``, element by element), as a bool array of the tensor's shape:

    * a gradient that is not finite, whose (1 − β₂)·g² may overflow, or whose |g| + λ·max|θ₀| may overflow
      (the case-wide bounds, per element);
    * where ε is 0 in the dtype: v may be 0 at a step t with ρ_t ≤ 5.  Rounding is monotone and v's terms are
      ≥ 0, so the computed v_t is at least the computed chain of one term (1 − β₂)·β₂^(t−s)·g_s² alone; that
      chain takes at most 3(t − s + 1) roundings, each off by at most half the smallest subnormal or a relative
      2^−p, so v_t > 0 where the exact term exceeds 2(t − s + 1) smallest subnormals times (1 − 2^−p)^−3(t−s+1).
      With coupled weight decay (g + λθ may cancel) every element counts as covered.  The decay factor is the
      smaller of β₂ and β₂ rounded to the dtype: CPU ``_foreach_mul_`` rounds its scalar to the tensor's dtype
      first (β₂ = 1e-8 is 0 in float16, so v_t is the step's term alone), a for-loop ``mul_`` does not."""
    (h, (p0,)), grads = data.groups[0], [row[0][0] for row in data.grads]
    fmt = get_format(data.dtype)
    shape = np.shape(p0)
    covered = np.zeros(shape, dtype=bool)
    root = math.sqrt(float(fmt.max_finite))
    beta2, lam = float(h["beta2"]), abs(float(h.get("weight_decay", 0.0)))
    theta = float(np.max(np.abs(np.asarray(p0, dtype=np.float64)), initial=0.0))
    g_limit = math.sqrt(float(fmt.max_finite)) / math.sqrt(1 - beta2) if beta2 < 1 else math.inf
    with np.errstate(all="ignore"):
        for g in grads:
            if g is not None:
                a = np.abs(np.asarray(g, dtype=np.float64))
                covered |= ~np.isfinite(a) | (a > g_limit) | (a + lam * theta > root)
    if not _is_zero_in(h.get("eps"), data.dtype):
        return covered
    if lam != 0 and not h.get("decoupled_weight_decay", False):
        return np.ones(shape, dtype=bool)
    sub, rel = float(fmt.min_subnormal), 2.0 ** -fmt.precision
    decay = min(beta2, float(round_to_format(Fraction(beta2), fmt)))
    terms = []  # (step count s, g_s²) of the steps with a gradient so far
    t = 0
    with np.errstate(all="ignore"):
        for g in grads:
            if g is None:
                continue
            t += 1
            terms.append((t, np.square(np.asarray(g, dtype=np.float64))))
            if _radam_rectifier(beta2, t) is not None:
                continue  # rectified at t: no rect = 0 to multiply
            positive = np.zeros(shape, dtype=bool)
            for s, g2 in terms:
                n = t - s + 1
                need = 2 * n * sub / (1 - rel) ** (3 * n)
                positive |= (1 - beta2) * decay ** (t - s) * g2 > need
            covered |= ~positive
    return covered


#: the decays whose 1 − βᵗ an ``@optax`` spec divides by through optax.tree.bias_correction (default: β₁, β₂)
_OPTAX_BIAS_CORRECTED = {"adan@optax": ("beta1", "beta2", "beta3"), "schedulefree_adamw@optax": ("beta2",)}


def _optax_float16_bias_correction_reciprocal_overflows(data) -> bool:
    """Some bias correction 1 − βᵗ of the case (β either beta, t up to one past the steps: Optax's NAdam corrects
    m with count + 1), computed in binary64 and cast to float16 as Optax does, is below 2⁻¹⁶: its reciprocal,
    which XLA multiplies by instead of dividing, overflows float16 (or it is 0 itself)."""
    top = float(get_format("float16").max_finite)
    for h, _ in data.groups:
        for name in _OPTAX_BIAS_CORRECTED.get(data.optimizer, ("beta1", "beta2")):
            beta = h.get(name)
            if beta is None:
                continue
            for t in range(1, len(data.grads) + 2):
                c = float(round_to_format(Fraction(1 - beta ** t), get_format("float16")))
                if c == 0 or 1 / c > top:
                    return True
    return False


def _optax_schedule_free_has_warmup(data) -> bool:
    """Some group of the case has a warm-up (Optax then computes its learning rates through a float32 schedule)."""
    return any(h.get("warmup_steps", 0) for h, _ in data.groups)


def _optax_adafactor_float16_square_is_zero(data) -> bool:
    """Some tensor's step can meet a second-moment statistic of 0 in float16: Optax's ε = 1e-30 is 0 there, and
    g·0^(−½) is NaN or ±inf, which the block RMS clip spreads over the tensor.  An element's statistic
    v_t = β̂ₜ·v_{t−1} + (1 − β̂ₜ)·g_t² (β̂ₜ = 1 − t^(−c), 0 at the tensor's first step) is 0 only where its float16
    g_t² is 0 and β̂ₜ·v_{t−1} may underflow: v_{t−1}, a weighted mean of the element's earlier squares (weights
    summing to 1), is at least the least of them up to its roundings, so the case is covered where β̂ₜ times that
    least square is below float16's smallest subnormal 2⁻²⁴ (a product that rounds to 0 is at most 2⁻²⁵; the factor
    2 covers v_{t−1}'s and the product's roundings), the first step (β̂₁ = 0) included.  A factored tensor
    (Optax: both of its two largest dimensions ≥ 128; its row and column factors mix elements) is covered on any
    zero square."""
    tiny = 2.0 ** -24
    for i, (h, params) in enumerate(data.groups):
        c = h.get("decay_rate", 0.8)
        least = [np.full(np.shape(q), np.inf) for q in params]  # per element: the least earlier float16 square
        for s, (_, stepped) in enumerate(_group_steps(data, i)):
            for j, t in stepped:
                g = np.asarray(data.grads[s][i][j], dtype=np.float64)  # float16 values: exact squares
                square = np.asarray(np.asarray(g * g, dtype=np.float16), dtype=np.float64)
                zero = square == 0
                factored = len(np.shape(g)) >= 2 and sorted(np.shape(g))[-2] >= 128
                if zero.any() and (factored or t == 1 or c == 0
                                   or np.any(zero & ((1 - float(t) ** -c) * least[j] < tiny))):
                    return True
                least[j] = np.minimum(least[j], square)
    return False


def _optax_adafactor_decay_rate_inexact_in_float32(data) -> bool:
    """Some tensor takes a second step (its own count t ≥ 2) in a group with decay_rate c ≠ 0: Optax computes
    β̂ₜ = 1 − t^(−c) in float32 (at t = 1, or c = 0, it is 0 exactly), so a float64 second moment is averaged with
    a float32-rounded weight (coarse: c = 1 at t = 2 or 4 is exact too)."""
    for i, (h, _) in enumerate(data.groups):
        if h.get("decay_rate", 0.8) != 0 and any(t >= 2 for _, stepped in _group_steps(data, i) for _, t in stepped):
            return True
    return False
