"""One compiled loop per common operation of ``FastBound``: the same float64 operations, in the same order.

``FastBound.add`` (two terms), ``mul`` (two factors), ``div`` and ``sqrt`` and ``fast._certify`` (float32) each
make two to four dozen NumPy calls.  On 2¹⁰ elements those calls, not the arithmetic, are the cost: about
1 µs each whatever the size.  The kernels here do, element by element, what those NumPy calls do to whole
arrays, in one pass: the enclosure of ``FastInterval`` and the bound of ``FastBound`` together.

They are the NumPy code's twins, not a second model: every formula is the one there, evaluated in the same
order with the same binary64 operations (numba compiles without fast-math, so nothing is reassociated or
contracted into a fused multiply-add), and where the NumPy code takes a shortcut over a whole array (``if
has_zero(...)``, ``if some(...)``) the kernel takes the per-element rule that shortcut stands for.
``tests/test_fast_kernels.py`` holds them to the NumPy code bit for bit on hard inputs.

numba is optional (``pip install -e '.[fast]'``): without it, or with ``OPTCONF_KERNELS=0`` in the environment,
``KERNELS`` is False and the NumPy code runs.  A field may be a 1-d array, a 0-d array or a scalar (a value the
same for every element); ``_at`` reads any of them.
"""
from __future__ import annotations

import os

import numpy as np

try:
    import numba
    from numba import types
    from numba.extending import overload
except ImportError:  # pragma: no cover - numba is an optional extra
    numba = None

KERNELS = numba is not None and os.environ.get("OPTCONF_KERNELS", "1") != "0"

TINY = 2.0 ** -1022
U = 2.0 ** -53
UP = 1 + 2.0 ** -48
DOWN = 1 - 2.0 ** -48
SLACK = 1 + 2.0 ** -50
SHRINK = 1 - 2.0 ** -50


if numba is not None:
    def _at(a, i):  # pragma: no cover - replaced by the overload in compiled code
        raise NotImplementedError

    @overload(_at, inline="always")
    def _at_impl(a, i):
        if isinstance(a, types.Array) and a.ndim == 0:
            return lambda a, i: a[()]
        if isinstance(a, types.Array):
            return lambda a, i: a[i]
        return lambda a, i: a

    _jit = numba.njit(cache=True, nogil=True, error_model="numpy")

    @numba.njit(inline="always")
    def _up(r):
        return r * UP + TINY

    @numba.njit(inline="always")
    def _down(z):
        return z * DOWN

    @numba.njit(inline="always")
    def _max(a, b):
        """np.maximum, as NumPy computes it: NaN wins, and of two equal values (±0) the second."""
        return a if (a > b or a != a) else b

    @numba.njit(inline="always")
    def _round_lo(low, c, u, eta):
        """``FastBound._rounding_lo``."""
        return _down(c * (u * _max(low, 0.0) + eta))

    @_jit
    def add2(n, ax, ar, ae, aesc, aelo, bx, br, be, besc, belo, c, u, eta, maxf):
        """``FastBound.add`` of two terms (and ``FastInterval.add`` inside it)."""
        s_ = np.empty(n)
        r_ = np.empty(n)
        a_ = np.empty(n)
        e_ = np.empty(n)
        esc_ = np.empty(n, dtype=np.bool_)
        elo_ = np.empty(n)
        over_ = np.empty(n, dtype=np.bool_)
        anyover = 0
        for i in range(n):
            x0, r0, e0 = _at(ax, i), _at(ar, i), _at(ae, i)
            x1, r1, e1 = _at(bx, i), _at(br, i), _at(be, i)
            total = x0 + x1
            back = total - x0
            exact = (r0 == 0) and (r1 == 0) and ((x0 - (total - back)) + (x1 - back) == 0) and np.isfinite(total)
            a = abs(total)
            err = 0.0 + a
            r = _up((r0 + r1) + U * err)
            if exact:
                r = 0.0
            nonzero = (0 if (x0 == 0 and e0 == 0) else 1) + (0 if (x1 == 0 and e1 == 0) else 1)
            esum = e0 + e1
            esc = _at(aesc, i) or _at(besc, i)
            vabs = a + r
            tot = vabs + esum
            e_r = _up(esum + c * (u * tot + eta))
            esc_r = esc or tot > maxf
            elo = _down(_at(aelo, i) + _at(belo, i))
            low = a - r
            over = low > maxf
            anyover += over
            elo_r = _down(elo + _round_lo(low, c, u, eta))
            s_[i], r_[i], a_[i], over_[i] = total, r, a, over
            if nonzero >= 2:
                e_[i], esc_[i], elo_[i] = e_r, esc_r, elo_r
            else:
                e_[i], esc_[i], elo_[i] = esum, esc, elo
        return s_, r_, a_, e_, esc_, elo_, over_, anyover

    @_jit
    def mul2(n, ax, ar, ae, aesc, bx, br, be, besc, quot, has_quot, scale, c, u, eta, maxf):
        """``FastBound.mul`` of two factors (and ``FastInterval.mul`` inside it); ``scale``: NaN unless a scalar
        times a tensor."""
        p_ = np.empty(n)
        r_ = np.empty(n)
        a_ = np.empty(n)
        e_ = np.empty(n)
        esc_ = np.empty(n, dtype=np.bool_)
        elo_ = np.empty(n)
        over_ = np.empty(n, dtype=np.bool_)
        sc_ = np.empty(n)
        anyover = 0
        for i in range(n):
            x0, r0, e0 = _at(ax, i), _at(ar, i), _at(ae, i)
            x1, r1, e1 = _at(bx, i), _at(br, i), _at(be, i)
            # FastInterval.mul
            prop = abs(x0) * r1 + abs(x1) * r0 + r0 * r1
            p = x0 * x1
            a = abs(p)
            r = _up(prop + U * a + TINY)
            if ((x0 == 0 and r0 == 0) or (x1 == 0 and r1 == 0)) and (
                    np.isfinite(x0) and np.isfinite(r0) and np.isfinite(x1) and np.isfinite(r1)):
                r = 0.0
            # FastBound.mul: the chain over the factors that are not an exact ±1
            esc = _at(aesc, i) or _at(besc, i)
            zero = ((x0 == 0 and e0 == 0) or (x1 == 0 and e1 == 0)) and np.isfinite(e0) and np.isfinite(e1)
            unit0 = e0 == 0 and abs(x0) == 1
            unit1 = e1 == 0 and abs(x1) == 1
            v0 = abs(x0) + r0
            v1 = abs(x1) + r1
            has = not unit0
            acc_v = v0 if has else 0.0
            acc_e = e0 if has else 0.0
            pv = _up(acc_v * v1)
            pe = _up(acc_v * e1 + v1 * acc_e + acc_e * e1)
            if has_quot:
                q = _at(quot, i)
                if not np.isnan(q):
                    pe = _up(pe + c * eta / q)
            tot = pv + pe
            pe = _up(pe + c * (u * tot + eta))
            esc_p = esc or tot > maxf
            products = (not unit1) and has
            if (not unit1) and (not has):
                acc_e = e1
            elif products:
                acc_e = pe
                esc = esc_p
            has = has or not unit1
            e = 0.0 if (zero or not has) else acc_e
            low = a - r
            over = low > maxf
            anyover += over
            elo = 0.0 if (zero or not products) else _round_lo(low, c, u, eta)
            p_[i], r_[i], a_[i], e_[i], esc_[i], elo_[i], over_[i] = p, r, a, e, esc, elo, over
            sc_[i] = scale if (products and not zero and np.isfinite(e)) else np.nan
        return p_, r_, a_, e_, esc_, elo_, over_, sc_, anyover

    @_jit
    def div(n, ax, ar, ae, aesc, bx, br, be, besc, belo, scale, has_scale, c, u, eta, maxf):
        """``FastBound.div`` (and ``FastInterval.div`` inside it); ``scale``: the dividend's, with ``has_scale``
        for a tensor quotient whose dividend has one."""
        q_ = np.empty(n)
        r_ = np.empty(n)
        a_ = np.empty(n)
        e_ = np.empty(n)
        esc_ = np.empty(n, dtype=np.bool_)
        elo_ = np.empty(n)
        over_ = np.empty(n, dtype=np.bool_)
        near_ = np.empty(n, dtype=np.bool_)
        quot_ = np.empty(n)
        anyover = 0
        anynear = 0
        for i in range(n):
            x0, r0, e0 = _at(ax, i), _at(ar, i), _at(ae, i)
            x1, r1, e1 = _at(bx, i), _at(br, i), _at(be, i)
            # FastInterval.div
            q = x0 / x1
            dd = (abs(x1) - r1) * SHRINK
            abs_q = abs(q)
            aq = abs_q * SLACK + TINY
            r = _up((r0 + aq * r1) / dd + U * abs_q + TINY)
            if not dd > 0:
                r = np.inf
            # FastBound.div
            esc = _at(aesc, i) or _at(besc, i)
            d = _down(abs(x1) - r1 - e1)
            esc = esc or not d > 0
            lo1 = _at(belo, i)
            near = lo1 > 0 and abs(x1) + r1 <= lo1
            anynear += near
            a_zero = x0 == 0 and e0 == 0
            vabs = abs_q + r
            e = _up((e0 + vabs * e1) / d)
            if has_scale:
                s = _at(scale, i)
                if not np.isnan(s):
                    e = _up(e + c * eta * s)
            tot = vabs + e
            e = _up(e + c * (u * tot + eta))
            esc = esc or tot > maxf
            low = abs_q - r
            over = low > maxf
            anyover += over
            elo = _round_lo(low, c, u, eta)
            q_[i], r_[i], a_[i], esc_[i], over_[i], near_[i] = q, r, abs_q, esc, over, near
            e_[i] = 0.0 if a_zero else e
            elo_[i] = 0.0 if a_zero else elo
            quot_[i] = np.nan if a_zero else d
        return q_, r_, a_, e_, esc_, elo_, over_, near_, quot_, anyover, anynear

    @_jit
    def sqrt(n, ax, ar, ae, aesc, aelo, c, u, eta, maxf):
        """``FastBound.sqrt`` (and ``FastInterval.sqrt`` inside it)."""
        s_ = np.empty(n)
        r_ = np.empty(n)
        e_ = np.empty(n)
        esc_ = np.empty(n, dtype=np.bool_)
        elo_ = np.empty(n)
        near_ = np.empty(n, dtype=np.bool_)
        anynear = 0
        for i in range(n):
            x, r0, e0 = _at(ax, i), _at(ar, i), _at(ae, i)
            # FastInterval.sqrt
            s = np.sqrt(_max(x, 0.0))
            r = _up(r0 * SLACK / s + U * s)
            if not x - r0 > 0:
                r = 0.0 if (x == 0 and r0 == 0) else np.inf
            # FastBound.sqrt
            zero = x == 0 and e0 == 0
            lo = _down(x - r0)
            esc = _at(aesc, i) or (not zero and not lo > e0)
            e = _up(e0 / (np.sqrt(_max(lo, 0.0)) + np.sqrt(_max(_down(lo - e0), 0.0))))
            if e0 == 0:
                e = 0.0
            vabs = _up(np.sqrt(x + r0))
            tot = vabs + e
            e = _up(e + c * (u * tot + eta))
            esc = esc or tot > maxf
            lo0 = _at(aelo, i)
            near = lo0 > 0 and x + r0 <= lo0
            anynear += near
            s_[i], r_[i], esc_[i], near_[i] = s, r, esc, near
            e_[i] = 0.0 if zero else e
            elo_[i] = 0.0 if zero else _round_lo(abs(s) - r, c, u, eta)
        return s_, r_, e_, esc_, elo_, near_, anynear

    @_jit
    def lerp(n, ax, ar, ae, aesc, bx, br, be, besc, wx, wr, we, wesc, wzx, wze, c, u, eta, maxf):
        """``FastBound.lerp`` of tensors ``a`` and ``b`` (and ``FastInterval``'s a + w·(b − a) inside it);
        (``wzx``, ``wze``): ``w``'s own value and error, which decide an exact w = 0."""
        s_ = np.empty(n)
        r_ = np.empty(n)
        a_ = np.empty(n)
        e_ = np.empty(n)
        esc_ = np.empty(n, dtype=np.bool_)
        anykeep = 0
        cu = c * u
        for i in range(n):
            x0, r0, e0 = _at(ax, i), _at(ar, i), _at(ae, i)
            x1, r1, e1 = _at(bx, i), _at(br, i), _at(be, i)
            w, rw, ew = _at(wx, i), _at(wr, i), _at(we, i)
            # FastInterval: d = b − a (b + (−a)), p = w·d, a + p
            na = -x0
            d = x1 + na
            back = d - x1
            dr = _up((r1 + r0) + U * (0.0 + abs(d)))
            if r1 == 0 and r0 == 0 and ((x1 - (d - back)) + (na - back) == 0) and np.isfinite(d):
                dr = 0.0
            prop = abs(w) * dr + abs(d) * rw + rw * dr
            p = w * d
            pr = _up(prop + U * abs(p) + TINY)
            if ((w == 0 and rw == 0) or (d == 0 and dr == 0)) and (
                    np.isfinite(w) and np.isfinite(rw) and np.isfinite(d) and np.isfinite(dr)):
                pr = 0.0
            s = x0 + p
            back = s - x0
            sa = abs(s)
            r = _up((r0 + pr) + U * (0.0 + sa))
            if r0 == 0 and pr == 0 and ((x0 - (s - back)) + (p - back) == 0) and np.isfinite(s):
                r = 0.0
            # FastBound.lerp
            esc = _at(aesc, i) or _at(besc, i) or _at(wesc, i)
            va = abs(x0) + r0
            vb = abs(x1) + r1
            S = _up(va + vb + e0 + e1)
            diff = _up(abs(x1 - x0) + r0 + r1)
            over = diff + e0 + e1 > maxf
            aw = abs(w) + rw
            a1w = _up(abs(1 - w) + rw)
            W = _up(_max(aw, a1w) + ew)
            e = _up(a1w * e0 + aw * e1 + ew * S + 2 * c * (u * W * S * (1 + cu) + eta) + cu * a1w * S)
            finite = np.isfinite(e0) and np.isfinite(e1) and np.isfinite(ew)
            if not finite:
                e = np.inf
            esc = esc or (over and finite)
            tot = (sa + r) + e
            e = _up(e + c * (u * tot + eta))
            esc = esc or tot > maxf
            if _at(wzx, i) == 0 and _at(wze, i) == 0 and np.isfinite(e1):  # a + 0·(b − a) = a exactly
                anykeep += 1
                s, r, e, esc = x0, r0, e0, _at(aesc, i)
            s_[i], r_[i], a_[i], e_[i], esc_[i] = s, r, abs(s), e, esc
        return s_, r_, a_, e_, esc_, anykeep

    @_jit
    def certify32(n, x, r):
        """``fast._certify`` for float32 targets: (rounded values as float64, certified)."""
        rl_ = np.empty(n)
        ok_ = np.empty(n, dtype=np.bool_)
        reround = False
        for i in range(n):
            xi, ri = _at(x, i), _at(r, i)
            lo = np.nextafter(xi - ri, -np.inf)
            hi = np.nextafter(xi + ri, np.inf)
            rl = np.float64(np.float32(lo))
            ok = rl == np.float64(np.float32(hi)) and np.isfinite(ri) and np.isfinite(xi)
            reround = reround or (ri == 0 and np.isfinite(xi) and not ok)
            rl_[i], ok_[i] = rl, ok
        if reround:  # as _certify: every exact element is rounded from its value then (the sign of a zero)
            for i in range(n):
                xi = _at(x, i)
                if _at(r, i) == 0 and np.isfinite(xi):
                    rl_[i] = np.float64(np.float32(xi))
                    ok_[i] = True
        return rl_, ok_
