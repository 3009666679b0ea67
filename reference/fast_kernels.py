"""One compiled loop per common operation of ``FastBound``: the same float64 operations, in the same order.

``FastBound.add`` (two terms), ``mul`` (two factors), ``div``, ``sqrt`` and ``lerp``, and ``fast._chunks`` per output, each
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
same for every element); ``_at`` reads any of them.  A flag read from an array is combined with ``|``, not
``or``: the short-circuit made numba's loop about 4× slower.
"""
from __future__ import annotations

import math
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
            esc = _at(aesc, i) | _at(besc, i)
            vabs = a + r
            tot = vabs + esum
            e_r = _up(esum + c * (u * tot + eta))
            esc_r = esc | (tot > maxf)
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
            esc = _at(aesc, i) | _at(besc, i)
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
            esc_p = esc | (tot > maxf)
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
            esc = _at(aesc, i) | _at(besc, i)
            d = _down(abs(x1) - r1 - e1)
            esc = esc | (not d > 0)
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
            esc = esc | (tot > maxf)
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
            esc = _at(aesc, i) | ((not zero) & (not lo > e0))
            e = _up(e0 / (np.sqrt(_max(lo, 0.0)) + np.sqrt(_max(_down(lo - e0), 0.0))))
            if e0 == 0:
                e = 0.0
            vabs = _up(np.sqrt(x + r0))
            tot = vabs + e
            e = _up(e + c * (u * tot + eta))
            esc = esc | (tot > maxf)
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
            esc = _at(aesc, i) | _at(besc, i) | _at(wesc, i)
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
            esc = esc | (over & finite)
            tot = (sa + r) + e
            e = _up(e + c * (u * tot + eta))
            esc = esc | (tot > maxf)
            if _at(wzx, i) == 0 and _at(wze, i) == 0 and np.isfinite(e1):  # a + 0·(b − a) = a exactly
                anykeep += 1
                s, r, e, esc = x0, r0, e0, _at(aesc, i)
            s_[i], r_[i], a_[i], e_[i], esc_[i] = s, r, abs(s), e, esc
        return s_, r_, a_, e_, esc_, anykeep

    # -- double-double (reference.fast_dd) ----------------------------------------------------------------------
    REL = 2.0 ** -97
    SPLIT = 134217729.0

    @numba.njit(inline="always")
    def _two_sum(a, b):
        s = a + b
        bb = s - a
        return s, (a - (s - bb)) + (b - bb)

    @numba.njit(inline="always")
    def _fast_two_sum(a, b):
        s = a + b
        return s, b - (s - a)

    @numba.njit(inline="always")
    def _two_prod(a, b):
        p = a * b
        c = SPLIT * a
        ah = c - (c - a)
        al = a - ah
        c = SPLIT * b
        bh = c - (c - b)
        bl = b - bh
        return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl

    @_jit
    def dd_add(n, ah, al, ar, bh, bl, br):
        """``FastDD._add2``."""
        zh_ = np.empty(n)
        zl_ = np.empty(n)
        r_ = np.empty(n)
        for i in range(n):
            r0, r1 = _at(ar, i), _at(br, i)
            sh, sl = _two_sum(_at(ah, i), _at(bh, i))
            th, tl = _two_sum(_at(al, i), _at(bl, i))
            u = sl + th
            vh, vl = _fast_two_sum(sh, u)
            w = tl + vl
            zh, zl = _fast_two_sum(vh, w)
            r = _up(r0 + r1 + REL * abs(zh) + TINY)
            if (r0 == 0 and r1 == 0 and _two_sum(sl, th)[1] == 0 and _two_sum(tl, vl)[1] == 0
                    and abs(sh) >= abs(u) and abs(vh) >= abs(w) and np.isfinite(zh) and np.isfinite(zl)):
                r = 0.0
            zh_[i], zl_[i], r_[i] = zh, zl, r
        return zh_, zl_, r_

    @_jit
    def dd_mul(n, ah, al, ar, bh, bl, br):
        """``FastDD._mul2``."""
        zh_ = np.empty(n)
        zl_ = np.empty(n)
        r_ = np.empty(n)
        for i in range(n):
            h0, l0, r0 = _at(ah, i), _at(al, i), _at(ar, i)
            h1, l1, r1 = _at(bh, i), _at(bl, i), _at(br, i)
            ch, cl1 = _two_prod(h0, h1)
            cl3 = cl1 + (h0 * l1 + l0 * h1)
            zh, zl = _fast_two_sum(ch, cl3)
            ma = _up(abs(h0) + abs(l0))
            mb = _up(abs(h1) + abs(l1))
            r = _up(ma * r1 + mb * r0 + r0 * r1 + REL * abs(zh) + TINY)
            zero = ((r0 == 0 and h0 == 0 and np.isfinite(h1) and np.isfinite(r1))
                    or (r1 == 0 and h1 == 0 and np.isfinite(h0) and np.isfinite(r0)))
            plain = r0 == 0 and r1 == 0 and l0 == 0 and l1 == 0
            safe = abs(h0) < 2.0 ** 995 and abs(h1) < 2.0 ** 995 and abs(ch) >= 2.0 ** -960
            if zero or (plain and safe and cl3 == cl1):
                r = 0.0
            zh_[i], zl_[i], r_[i] = zh, zl, r
        return zh_, zl_, r_

    @_jit
    def dd_div(n, ah, al, ar, bh, bl, br):
        """``FastDD.div``."""
        zh_ = np.empty(n)
        zl_ = np.empty(n)
        r_ = np.empty(n)
        for i in range(n):
            h0, l0, r0 = _at(ah, i), _at(al, i), _at(ar, i)
            h1, l1, r1 = _at(bh, i), _at(bl, i), _at(br, i)
            th = h0 / h1
            ch, cl1 = _two_prod(h1, th)
            ph, tl1 = _fast_two_sum(ch, l1 * th)
            rh, rl = _fast_two_sum(ph, tl1 + cl1)
            pih, pil = _two_sum(h0, -rh)
            delta = pih + ((pil - rl) + l0)
            zh, zl = _fast_two_sum(th, delta / h1)
            d = _down(abs(h1) - abs(l1) - r1)
            q = _up(abs(zh) + abs(zl))
            r = _up((r0 + q * r1) / d + REL * abs(zh) + TINY)
            zh_[i], zl_[i], r_[i] = zh, zl, (r if d > 0 else np.inf)
        return zh_, zl_, r_

    @_jit
    def dd_sqrt(n, ah, al, ar):
        """``FastDD.sqrt``."""
        zh_ = np.empty(n)
        zl_ = np.empty(n)
        r_ = np.empty(n)
        for i in range(n):
            h, l, r0 = _at(ah, i), _at(al, i), _at(ar, i)
            s = np.sqrt(_max(h, 0.0))
            ph, pl = _two_prod(s, s)
            zh, zl = _fast_two_sum(s, (((h - ph) - pl) + l) / (2 * s))
            lo = _down(h - abs(l) - r0)
            r = _up(r0 / np.sqrt(lo) + REL * abs(zh) + TINY)
            exact_zero = h == 0 and l == 0 and r0 == 0
            if not lo > 0:
                r = 0.0 if exact_zero else np.inf
            if exact_zero:
                zh, zl = 0.0, 0.0
            zh_[i], zl_[i], r_[i] = zh, zl, r
        return zh_, zl_, r_

    @numba.njit(inline="always")
    def _round_to(x, prec, emin, maxf, is32):
        """``fast_round.round_exact`` of one value."""
        if prec == 53:
            return x
        if is32:
            return np.float64(np.float32(x))
        if not np.isfinite(x):
            return x
        _, e = math.frexp(x)
        k = max(e - 1, emin) - (prec - 1)
        y = math.ldexp(np.rint(math.ldexp(x, -k)), k)
        if abs(y) > maxf:
            y = np.copysign(np.inf, x)
        return y

    @numba.njit(inline="always")
    def _inside(h, l, r, y, prec, emin):
        """``fast_dd._inside`` of one candidate."""
        a = abs(y)
        _, e = math.frexp(a)
        binade = emin if a == 0 else max(e - 1, emin)
        ulp = math.ldexp(1.0, binade - prec + 1)
        power = a == math.ldexp(1.0, binade) and binade > emin
        gap_up = ulp
        gap_dn = ulp / 2 if power else ulp
        m_hi = y + gap_up / 2 if y > 0 else (y + gap_dn / 2 if y < 0 else ulp / 2)
        m_lo = y - gap_dn / 2 if y > 0 else (y - gap_up / 2 if y < 0 else -ulp / 2)
        d_lo = np.nextafter(h - m_lo, -np.inf)
        d_hi = np.nextafter(m_hi - h, -np.inf)
        return (np.nextafter(d_lo + l, -np.inf) > r and np.nextafter(d_hi - l, -np.inf) > r) and np.isfinite(y)

    @_jit
    def dd_certify(n, vh, vl, vr, prec, emin, maxf, is32):
        """``fast_dd.certify``: (rounded values as float64, certified)."""
        out_ = np.empty(n)
        ok_ = np.empty(n, dtype=np.bool_)
        for i in range(n):
            h, l, r = _at(vh, i), _at(vl, i), _at(vr, i)
            finite = np.isfinite(h) and np.isfinite(l) and np.isfinite(r)
            if prec < 53:
                out, good = 0.0, False
                for y0 in (h, np.nextafter(h, -np.inf), np.nextafter(h, np.inf)):  # a later certified one is taken
                    y = _round_to(y0, prec, emin, maxf, is32)
                    if _inside(h, l, r, y, prec, emin):
                        out, good = y, True
                if r == 0 and l == 0 and not good:
                    out = _round_to(h, prec, emin, maxf, is32)
                good = good or (r == 0 and l == 0)
                out_[i] = out if good else _round_to(h, prec, emin, maxf, is32)
                ok_[i] = good and finite
            else:
                half_up = (np.nextafter(h, np.inf) - h) * 0.5
                half_dn = (h - np.nextafter(h, -np.inf)) * 0.5
                inside = np.nextafter(half_dn + l, -np.inf) > r and np.nextafter(half_up - l, -np.inf) > r
                normal = abs(h) >= 2.0 ** -1020 and abs(h) < 2.0 ** 1023
                zero = h == 0 and l == 0 and r == 0
                exact = r == 0 and abs(h) < 2.0 ** 1023
                out_[i] = h
                ok_[i] = ((inside and normal) or zero or exact) and finite
        return out_, ok_

    # -- recording a step's outputs (fast._chunks) and verdicts (fast.fast_verdicts) ---------------------------
    @_jit
    def record(n, tx, tr, te, tesc, tlim, finite, x_out, r_out, rnd_out, certified, e_out, lim_out, bound_ok,
               prec, emin, maxf, is32, has_fmt, has_bound):
        """One output of one step of ``fast._chunks``: its midpoints and radii stored, its rounding certified in
        the format (``has_fmt``: ``_certify``; precision 53: stored and left to the double-double tier), and
        (``has_bound``) ``FastBound.error``'s bounds, settled and limited elements stored.  Returns whether some
        element is limited."""
        reround = False
        anylim = False
        for i in range(n):
            x, r = _at(tx, i), _at(tr, i)
            x_out[i], r_out[i] = x, r
            if has_fmt:
                if prec == 53:
                    rnd_out[i] = x
                    certified[i] = False
                else:
                    lo = np.nextafter(x - r, -np.inf)
                    hi = np.nextafter(x + r, np.inf)
                    rl = _round_to(lo, prec, emin, maxf, is32)
                    ok = (rl == _round_to(hi, prec, emin, maxf, is32)) & np.isfinite(r) & np.isfinite(x)
                    reround = reround | ((r == 0) & np.isfinite(x) & (not ok))
                    rnd_out[i] = rl
                    certified[i] = certified[i] & (ok | ((r == 0) & np.isfinite(x)))
            if has_bound:
                e = _at(te, i)
                lim = _at(tlim, i)
                e_out[i] = np.inf if np.isnan(e) else e
                bound_ok[i] = bound_ok[i] & (((not _at(tesc, i)) & np.isfinite(e)) | lim)
                lim = lim & finite[i]
                lim_out[i] = lim
                anylim = anylim | lim
        if reround:  # as _certify: every exact element is rounded from its value then (the sign of a zero)
            for i in range(n):
                x = _at(tx, i)
                if (_at(tr, i) == 0) & np.isfinite(x):
                    rnd_out[i] = _round_to(x, prec, emin, maxf, is32)
        return anylim

    @_jit
    def verdicts(n, got, value, radius, error, phase2_ref, phase2_bound, exact, limited, has_limited):
        """``fast.fast_verdicts``: 1 within the bound, −1 outside it, 0 for the exact comparison."""
        out = np.empty(n, dtype=np.int8)
        for i in range(n):
            g = got[i]
            dist = abs(g - value[i])
            r = _up(radius[i] + U * dist)
            bound = error[i]
            plain = (not phase2_ref[i]) & (not phase2_bound[i]) & np.isfinite(g) & exact[i]
            if has_limited:
                plain = plain & (not limited[i])
            out[i] = 1 if (plain & (dist + r <= bound)) else (-1 if (plain & (dist - r > bound)) else 0)
        return out
