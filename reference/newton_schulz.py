"""Muon's Newton–Schulz orthogonalisation (``spec.muon``): the exact polynomial image of the singular values, and
derived enclosures of the singular values a bfloat16 run of torch's operation sequence produces, step by step.

In exact arithmetic NS maps the normalised input X̂ = X/‖X‖_F (X = bfloat16(U)) to p^k(X̂), p(σ) = aσ + bσ³ + cσ⁵
applied to each singular value with the singular vectors kept (``polynomial_image``).  A bfloat16 run departs from
it by design.  How far one step may depart is bounded, without tuning, from a model of each operation:

* a bfloat16 rounding costs each element at most u times its magnitude (u = 2⁻⁸);
* a product accumulated in float32 over n terms costs element (i, j) at most γₙ·(|A||B|)ᵢⱼ
  (γₙ = n·2⁻²⁴/(1 − n·2⁻²⁴)); ``addmm(C, A, B, beta, alpha)`` is charged that and three bfloat16 roundings (the
  product, its scaling, the sum), whichever of them the kernel actually rounds;
* the norm ‖X‖_F is charged u + γ_{mn} relatively, plus float32's underflow of the squares (mn·2⁻¹⁵⁰/‖X‖²; below
  ‖X‖ = 2⁻⁶³ not modelled: torch's norm may be 0), the division u per element.

Since each iterate X is known exactly (bfloat16 values), these per-element bounds are evaluated on it, and the
spectral norm of the resulting nonnegative error matrix bounds the iteration's error (``_iteration_error``).
By Weyl's inequality a perturbation E moves the i-th largest singular value by at most ‖E‖₂, so one iteration
from an iterate with singular values σᵢ yields singular values within e of the sorted |p(σᵢ)|
(``iteration_enclosure``), and the normalisation within its own error of σᵢ/‖X‖_F (``normalisation_enclosure``).
These are worst-case bounds: the intermediate terms aσ, bσ³, cσ⁵ are about 4, 7 and 4 times the result, so e is
about 0.05–0.5 while measured departures are below 0.013 (docs/measured/muon.md).  Compounded over five
iterations (each interval's image under |p| for the next) they exceed any useful size, since p is steep (|p'| up
to ≈ 3.9 on [0, 1.2]): a whole-run enclosure derived this way says nothing, which is what "five iterations
amplify bfloat16 rounding by orders of magnitude" means.  So each iteration is checked from the iterate before
it, as the harness's single-step test checks each optimizer step.  Singular values are computed in binary64 by LAPACK and
allowed 512·m·n·2⁻⁵³ of the norm, far below any bfloat16 term.
"""
from __future__ import annotations

import mpmath
import numpy as np

U_BF16 = mpmath.mpf(2) ** -8
U_F32 = mpmath.mpf(2) ** -24


def _gamma(n: int):
    return n * U_F32 / (1 - n * U_F32)


def p(sigma, a, b, c):
    """One Newton–Schulz step's polynomial on a singular value."""
    return a * sigma + b * sigma ** 3 + c * sigma ** 5


def polynomial_image(sigmas, a: float, b: float, c: float, steps: int) -> list:
    """p^k of each singular value (``sigmas``: of the normalised input), exactly (mpmath, 60 digits)."""
    with mpmath.workdps(60):
        a, b, c = (mpmath.mpf(x) for x in (a, b, c))
        out = []
        for s in sigmas:
            s = mpmath.mpf(s)
            for _ in range(steps):
                s = p(s, a, b, c)
            out.append(abs(s))
        return out


def _iteration_error(x: np.ndarray, a: float, b: float, c: float) -> float:
    """e: a bound on ‖computed X' − p(X)‖₂ for the m×n bfloat16 iterate ``x`` (m ≤ n), by the module's model, per
    element: with |·| elementwise, G* = XXᵀ, the computed G is within E_G = γₙ(1 + u)|X||X|ᵀ + u|G*| of G*; H, from
    the computed G, within E_H of H* = bG* + cG*² (E_G carried through, γₘ for the product, three roundings); X'
    within E = E_H|X| + γₘ|H||X| + three roundings of p(X)'s terms.  ‖E‖₂ bounds ‖X' − p(X)‖₂ (the spectral norm
    is monotone on nonnegative matrices).  Binary64 evaluates these sums of nonnegative terms, each rounded
    relatively by at most 2⁻⁵³ per operation: the result is scaled by 1 + 2⁻³⁰, far above that."""
    u, gm, gn = float(U_BF16), float(_gamma(x.shape[0])), float(_gamma(x.shape[1]))
    ax = np.abs(x)
    g = x @ x.T
    e_g = gn * (1 + u) * (ax @ ax.T) + u * np.abs(g) + 2.0 ** -50 * (ax @ ax.T)  # binary64's own G* error too
    gb = np.abs(g) + e_g
    ab, ac = abs(b), abs(c)
    e_h = (ab * e_g + ac * (np.abs(g) @ e_g + e_g @ np.abs(g) + e_g @ e_g) + gm * ac * (gb @ gb)
           + u * (1 + u) ** 2 * (2 * ac * (gb @ gb) + ab * gb + ac * (gb @ gb)))
    hb = np.abs(b * g + c * (g @ g)) + e_h + 2.0 ** -50 * (ab * gb + ac * (gb @ gb))
    e = (e_h @ ax + gm * (hb @ ax) + u * (1 + u) ** 2 * (3 * (hb @ ax) + abs(a) * ax)
         + 2.0 ** -50 * (abs(a) * ax + hb @ ax))
    return float(np.linalg.norm(e, 2)) * (1 + 2.0 ** -30)


def _svd_allowance(m: int, n: int):
    """What LAPACK's binary64 SVD of an m×n matrix may err by, relative to its norm: a generous p(m, n)·ε."""
    return mpmath.mpf(512) * m * n * mpmath.mpf(2) ** -53


def singular_values(x) -> list:
    """The singular values of ``x`` (binary64), largest first."""
    return [float(s) for s in np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False)]


def normalisation_enclosure(x, eps: float) -> list:
    """Per singular value (largest first), an interval holding σ of NS's normalised matrix X/‖X‖ as bfloat16
    computes it from the bfloat16 matrix ``x``: the norm relatively within u + γ_{mn}, each quotient within u."""
    x = np.asarray(x, dtype=np.float64)
    m, n = sorted(x.shape)
    with mpmath.workdps(60):
        fro = mpmath.sqrt(mpmath.fsum(mpmath.mpf(float(v)) ** 2 for v in x.flat))
        if fro == 0 or fro <= 2 * mpmath.mpf(eps):  # fro = 0 with ε ≤ 0 (torch checks no ε): 0/max(0, ε) is NaN
            raise ValueError("‖x‖_F is 0 or near ε: NS divides by max(‖x‖_F, ε), which this enclosure does not model")
        if fro >= mpmath.mpf(2) ** 63:  # Σx² near float32's overflow: torch's norm is then inf and O = 0 (finding 64)
            raise ValueError("‖x‖_F ≥ 2⁶³: the norm's float32 sum of squares may overflow, which this enclosure does "
                             "not model")
        if fro < mpmath.mpf(2) ** -63:  # every x² may be below float32's range: torch's norm is then 0, X/0 NaN
            raise ValueError("‖x‖_F < 2⁻⁶³: the norm's float32 sum of squares may underflow, which this enclosure "
                             "does not model")
        u, err = U_BF16, _svd_allowance(m, n)
        # Each x² below float32's normal range is off by up to 2⁻¹⁵⁰ absolutely: mn·2⁻¹⁵⁰/‖x‖² relatively (≤ mn·2⁻²⁴
        # above the threshold), charged to the norm whole although the square root halves it.
        rel = u + _gamma(m * n) + m * n * mpmath.mpf(2) ** -150 / fro ** 2
        q_lo, q_hi = 1 / (1 + rel), 1 / (1 - rel)  # ‖x‖_F over the norm bfloat16 divides by
        sig = [mpmath.mpf(s) / fro for s in singular_values(x)]
        return [(float(max(0, q_lo * (s - err) - u * q_hi)), float(q_hi * (s + err) + u * q_hi)) for s in sig]


def iteration_enclosure(x, a: float, b: float, c: float) -> list:
    """Per singular value (largest first), an interval holding σ of one bfloat16 iteration X ← aX + (bG + cG²)X,
    G = X·Xᵀ, from the m×n bfloat16 iterate ``x`` (oriented as NS runs it: m ≤ n): the sorted images |p(σᵢ)| of
    its singular values, widened by the one-iteration error ``_iteration_error`` (Weyl) and the SVD's allowance.
    Rigorous under the module's model; compounded over five iterations it exceeds any useful size (where p is
    steep an interval's image grows by up to |p'| ≈ 3.4–3.9 each time), so the harness checks each iteration
    from the iterate before it, as ``test_single_steps`` checks each optimizer step."""
    x = np.asarray(x, dtype=np.float64)
    m, n = x.shape
    if m > n:
        raise ValueError(f"an iterate is m×n with m ≤ n (NS transposes a tall matrix); got {x.shape}")
    with mpmath.workdps(60):
        a, b, c = mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(c)
        sig = [mpmath.mpf(s) for s in singular_values(x)]
        err = _svd_allowance(m, n) * (sig[0] if sig else 0)
        e = mpmath.mpf(_iteration_error(x, float(a), float(b), float(c)))
        images = sorted((abs(p(s, a, b, c)) for s in sig), reverse=True)
        # a perturbation of σ by err moves |p(σ)| by at most max|p'|·err over [0, σ + err]
        slope = abs(a) + 3 * abs(b) * (sig[0] + err) ** 2 + 5 * abs(c) * (sig[0] + err) ** 4 if sig else 0
        out_err = _svd_allowance(m, n) * (images[0] + e) if images else 0
        return [(float(max(0, v - slope * err - e - out_err)), float(v + slope * err + e + out_err))
                for v in images]


def normalised_singular_values(x) -> list:
    """The singular values of ``x``/‖x‖_F (binary64), largest first: the input of ``polynomial_image``."""
    x = np.asarray(x, dtype=np.float64)
    return list(np.linalg.svd(x, compute_uv=False) / np.linalg.norm(x))
