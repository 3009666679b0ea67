"""Muon's observed O = NS(U) (spec/muon.py, ``State.observed``), checked by properties rather than element by element.

Five bfloat16 iterations amplify rounding by design, so no exact value of O is what an implementation computes
(docs/measured/muon.md).  What is checked of each (U, O) a backend reports:

* ``check_applied``: O is bit for bit the output of the backend's own NS sequence re-executed on U (the backend's
  optional ``newton_schulz``: the torch backend re-executes torch's bfloat16 operation sequence statement for
  statement, with the same kernels, so that any other order or coefficient shows; the NumPy backend its port), and
  each iterate's singular values lie within the derived enclosure of the previous iterate's
  (``reference.newton_schulz``: the normalisation's, then one per iteration);
* ``invariance_failures``: the sequence is exactly invariant under U·2ᵏ, Uᵀ (a non-square U) and sign flips of
  rows and columns (bit for bit), so the applied O, which is its output, is too.
"""
from __future__ import annotations

import math

import numpy as np

from reference import newton_schulz as nsr

BF16_MAX = 3.3895313892515355e38  # bfloat16's largest finite value, (2 − 2⁻⁷)·2¹²⁷
BF16_TINY = 2.0 ** -126  # its smallest normal value


def rerun_torch(u, a: float, b: float, c: float, steps: int, eps: float):
    """torch 2.13's ``_zeropower_via_newtonschulz``, statement for statement, written out again: (X = bfloat16(U)
    oriented m ≤ n, the iterates from the normalised one on, the output in U's orientation), as torch tensors
    (``u`` a tensor or an array)."""
    import torch

    x = u if isinstance(u, torch.Tensor) else torch.from_numpy(np.asarray(u, dtype=np.float64))
    x = x.bfloat16()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x0 = x.clone()
    x = x / x.norm().clamp(min=eps)
    iterates = [x]
    for _ in range(int(steps)):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
        iterates.append(x)
    return x0, iterates, (x.T if tall else x)


def _f64(x) -> np.ndarray:
    if hasattr(x, "double") and hasattr(x, "numpy"):  # a torch tensor
        return x.double().numpy()
    return np.asarray(x, dtype=np.float64)


def check_enclosures(x0, iterates, a: float, b: float, c: float, eps: float) -> list:
    """Failures (strings): the normalised iterate's and each later iterate's singular values outside their derived
    enclosures (``reference.newton_schulz``); arrays or tensors of bfloat16 values, oriented m ≤ n.  None where
    ‖X‖ is at or below the clamp 2ε, ≥ 2⁶³ (the norm's overflow, finding 64) or below 2⁻⁶³ (its
    squares' underflow: torch's norm of a bfloat16 matrix is then 0 and X/‖X‖ NaN): not modelled; nor from the
    first iterate whose enclosure reaches bfloat16's overflow threshold (coefficients and step counts drawn from
    the spec's whole domain can make NS diverge), nor a singular value whose enclosure lies below bfloat16's
    normal range (underflow: tiny coefficients).  The enclosures of the iterates are computed as they are
    checked."""
    failures = []
    try:
        enclosures = [nsr.normalisation_enclosure(_f64(x0), eps)]
    except ValueError:
        return failures
    for j, x in enumerate(iterates):
        if j:
            prev = _f64(iterates[j - 1])
            if not np.isfinite(prev).all():
                break
            enc = nsr.iteration_enclosure(prev, a, b, c)
        else:
            enc = enclosures[0]
        if not all(math.isfinite(hi) and hi < BF16_MAX for _, hi in enc):
            break  # the iterate may overflow bfloat16 (drawn coefficients, many steps): the format's limit, not modelled
        if not np.isfinite(_f64(x)).all():
            if j and _intermediates_may_overflow(_f64(iterates[j - 1]), a, b, c):
                break  # G·G or (bG + cG²)·X past bfloat16's range inside the iteration: not modelled either
            failures.append(f"iterate {j} is not finite where its enclosure and the iteration's products are")
            break
        for i, ((lo, hi), sv) in enumerate(zip(enc, nsr.singular_values(_f64(x)))):
            if hi < BF16_TINY:  # below bfloat16's normal range: underflow, which the enclosure does not model
                continue
            if not lo <= sv <= hi:
                failures.append(f"iterate {j}: σ{i} = {sv!r} outside its enclosure [{lo!r}, {hi!r}]")
    return failures


def _intermediates_may_overflow(x: np.ndarray, a: float, b: float, c: float) -> bool:
    """Whether an intermediate of one iteration from ``x`` (G = XXᵀ, G·G, bG + cG², that times X, aX) may reach
    half of bfloat16's largest value: bounds from ‖X‖₂ (its largest singular value, ‖G‖₂ = ‖X‖₂²)."""
    n = float(np.linalg.norm(x, 2)) if x.size else 0.0
    h = abs(b) * n * n + abs(c) * n ** 4
    return max(n * n, n ** 4, abs(b) * n * n, abs(c) * n ** 4, h, h * n, abs(a) * n) > BF16_MAX / 2


def _same(x, y) -> bool:
    x, y = _f64(x), _f64(y)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def check_applied(sequence, u, o, a: float, b: float, c: float, steps: int, eps: float) -> list:
    """Failures (strings) of one applied ``o`` for input ``u`` (arrays): bit for bit ``sequence``'s output, and its
    iterates within the enclosures (where U is finite)."""
    x0, iterates, again = sequence(u, a, b, c, steps, eps)
    if not _same(o, again):
        diff = np.abs(_f64(o) - _f64(again))
        return [f"O is not the output of the backend's NS sequence re-executed on U (max |ΔO| "
                f"{float(np.nanmax(diff)) if diff.size else 0.0:.3g})"]
    if not np.isfinite(_f64(u)).all():
        return []
    return check_enclosures(x0, iterates, a, b, c, eps)


def invariance_failures(sequence, u, a: float, b: float, c: float, steps: int, eps: float) -> list:
    """Failures (strings) of the exact invariances of ``sequence`` at ``u``: U·2ᵏ (k = ±3, where bfloat16(U·2ᵏ) is
    bfloat16(U)·2ᵏ, U's non-zero values being normal both ways (a subnormal of float32 that bfloat16 flushes to 0
    need not flush at 8 times its size), and the norm stays within the clamp and float32's range), Uᵀ (non-square)
    and sign flips of alternate rows and columns give O·1, Oᵀ and the same flips of O, bit for bit."""
    u = _f64(u)
    if not np.isfinite(u).all():
        return []
    o = _f64(sequence(u, a, b, c, steps, eps)[2])
    failures = []
    x = _f64(rerun_bf16(u))
    norm = float(np.sqrt(np.sum(x * x)))
    small = np.abs(u[u != 0]).min() if np.any(u != 0) else 0.0
    if 2.0 ** -60 < norm < 2.0 ** 60 and small >= 2.0 ** -120 and norm > 16 * eps:
        for k in (-3, 3):
            if not _same(sequence(u * 2.0 ** k, a, b, c, steps, eps)[2], o):
                failures.append(f"NS(U·2^{k}) is not NS(U)")
    if u.shape[0] != u.shape[1] and not _same(_f64(sequence(u.T.copy(), a, b, c, steps, eps)[2]).T, o):
        failures.append("NS(Uᵀ) is not NS(U)ᵀ")
    rows = np.where(np.arange(u.shape[0]) % 2, -1.0, 1.0)[:, None]
    cols = np.where(np.arange(u.shape[1]) % 3 == 1, -1.0, 1.0)[None, :]
    if not _same(sequence(rows * u * cols, a, b, c, steps, eps)[2], rows * o * cols):
        failures.append("NS(S·U·T) is not S·NS(U)·T for sign flips S, T")
    return failures


def rerun_bf16(u) -> np.ndarray:
    """U rounded to bfloat16 (through float32, as ``Tensor.bfloat16()``), as float64."""
    import ml_dtypes

    with np.errstate(over="ignore"):  # past float32's range: inf, as the cast in torch
        return np.asarray(u, dtype=np.float64).astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
