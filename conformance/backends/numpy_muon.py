"""A NumPy port of torch.optim.Muon (spec/muon.py), with Newton–Schulz in bfloat16 through ``ml_dtypes``.

The NumPy backend runs Muon with it (``numpy_backend._muon``: ``--backend=numpy --spec muon``, reporting U and the
applied O as the observed state ``update`` and ``ortho``), and ``tests/test_muon.py`` checks it as it checks
torch's class: element by element given the O the port applied, and its NS iterates by the derived singular-value
enclosures.  It is not bit-for-bit torch's NS: its float32 products accumulate in NumPy's order, which is why only
the enclosures, not a bit-for-bit comparison with torch's sequence, relate it to torch's.

Element-wise statements compute in the parameter's dtype, float32 for float16 and bfloat16 (torch's opmath), and
round once; a lerp follows torch's two-branch formula.  The state is the momentum buffer, a copy of its own (no
aliasing, so no finding 62).
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

BF16 = np.dtype(ml_dtypes.bfloat16)


def _opmath(dtype) -> np.dtype:
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _lerp(a, b, w):
    """torch's ``a.lerp(b, w)`` for a scalar w, in opmath, rounded to a's dtype."""
    om = _opmath(a.dtype)
    x, y, w = a.astype(om), b.astype(om), om.type(w)
    out = x + w * (y - x) if abs(w) < 0.5 else y - (y - x) * (om.type(1) - w)
    return out.astype(a.dtype)


def _bf16(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(BF16)


def _addmm(c, a, b, beta, alpha) -> np.ndarray:
    """beta·C + alpha·(A·B) in float32, rounded once to bfloat16."""
    f32 = np.float32
    return _bf16(f32(beta) * c.astype(f32) + f32(alpha) * (a.astype(f32) @ b.astype(f32)))


def newton_schulz(u, a: float, b: float, c: float, steps: int, eps: float):
    """(bfloat16(U) oriented m ≤ n, the iterates from the normalised one on, O in U's orientation)."""
    if steps >= 100:
        raise ValueError("ns_steps must be less than 100")
    # Overflow to inf and NaN from inf are the semantics ported (torch warns of neither): no RuntimeWarning.
    with np.errstate(all="ignore"):
        return _newton_schulz(u, a, b, c, steps, eps)


def _newton_schulz(u, a, b, c, steps, eps):
    x = np.asarray(u).astype(np.float32).astype(BF16)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x0 = x.copy()
    norm = _bf16(np.sqrt(np.sum(np.square(x0.astype(np.float32)), dtype=np.float32)))
    x = _bf16(x0.astype(np.float32) / max(np.float32(norm), np.float32(eps)))
    iterates = [x]
    for _ in range(steps):
        gram = _addmm(np.zeros((x.shape[0],) * 2, BF16), x, x.T, 0.0, 1.0)
        x = _addmm(x, _addmm(gram, gram, gram, b, c), x, a, 1.0)
        iterates.append(x)
    return x0, iterates, (x.T if tall else x)


def adjusted_lr(lr: float, match_rms_adamw: bool, shape) -> float:
    A, B = shape[:2]
    return lr * (0.2 * math.sqrt(max(A, B)) if match_rms_adamw else math.sqrt(max(1, A / B)))


def run(hyper: dict, param, grads: list) -> list:
    """Per step with ``hyper`` (the spec's complete hyperparameters): theta, momentum_buffer, update (U), ortho (O
    as float32), and the NS iterates (``iterates``, ``x0``); ``param`` and each gradient are 2-D arrays of one dtype."""
    p = np.array(param, copy=True)
    if p.ndim != 2:
        raise ValueError(f"Muon steps 2-D parameters only; got shape {p.shape}")
    buf = np.zeros_like(p)
    om = _opmath(p.dtype)
    rows = []
    for g in grads:
        buf = _lerp(buf, g, 1 - hyper["momentum"])
        u = _lerp(g, buf, hyper["momentum"]) if hyper["nesterov"] else buf.copy()
        x0, iterates, o = newton_schulz(u, hyper["ns_a"], hyper["ns_b"], hyper["ns_c"], hyper["ns_steps"],
                                        hyper["eps"])
        lr = hyper["lr"]
        p = (p.astype(om) * om.type(1 - lr * hyper["weight_decay"])).astype(p.dtype)
        step = om.type(-adjusted_lr(lr, hyper["match_rms_adamw"], p.shape))
        p = (p.astype(om) + step * o.astype(om)).astype(p.dtype)
        rows.append({"theta": p.copy(), "momentum_buffer": buf.copy(), "update": u,
                     "ortho": o.astype(np.float32), "x0": x0, "iterates": iterates})
    return rows
