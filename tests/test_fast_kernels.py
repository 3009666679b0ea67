"""The compiled loops of ``reference.fast_kernels`` against the NumPy code they replace, bit for bit.

Every optimizer of ``tests/test_fast_reference.CONFIGS`` (the hard hyperparameters) runs on hard values
(every binade, subnormals, ±0, ±1, the largest finite value, exact ties, NaN/±inf) in every format, once with
the kernels and once without.  The enclosures, the rounded values, the bounds and everything the check reads
(escalated elements, format-limited elements and their reasons) must be the same bits (±0 apart; every NaN
alike: nothing reads a NaN's sign or payload).  A second test puts the kernels' per-element rules under the NumPy code's array-wide shortcuts: arrays
where only some elements are 0 or ±1.  ``FAST_KERNEL_ELEMENTS=N`` runs the first test on N elements per
optimizer, configuration and format (200 by default).
"""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

import spec
from reference import fast_kernels
from reference.fast import fast_reference_and_bounds, fast_verdicts
from reference.fast_bound import TB, FastBound
from reference.fast import T
from reference.formats import FORMATS

from test_fast_reference import CONFIGS, FORMAT_NAMES, hard_values

ELEMENTS = int(os.environ.get("FAST_KERNEL_ELEMENTS", 200))  # per optimizer, configuration and format

pytestmark = pytest.mark.skipif(fast_kernels.numba is None,
                                reason="numba is not installed: the kernels are off, the NumPy code runs (pip "
                                       "install -e '.[fast]')")


def _bits(a) -> np.ndarray:
    """The bit patterns (every NaN alike: no reader tells NaNs apart), or the integer values of a bool array."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return a.astype(np.int64)
    a = a.astype(np.float64)
    return np.where(np.isnan(a), np.float64(np.nan), a).view(np.int64)


def _same_bits(a, b, where):
    a, b = np.asarray(a), np.asarray(b)
    a, b = np.broadcast_arrays(a, b)
    bad = np.flatnonzero(_bits(a).reshape(-1) != _bits(b).reshape(-1))
    assert bad.size == 0, f"{where}: differ at {bad[:5]}: {a.reshape(-1)[bad[:5]]} vs {b.reshape(-1)[bad[:5]]}"


def _run(monkeypatch, on: bool, *args):
    monkeypatch.setattr(fast_kernels, "KERNELS", on)
    return fast_reference_and_bounds(*args)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_kernels_give_the_numpy_codes_bits(name, monkeypatch):
    s = spec.OPTIMIZERS[name]
    for c, hyper in enumerate(CONFIGS[name]):
        for f, fmt in enumerate(FORMAT_NAMES):
            rng = np.random.default_rng(1000 * c + f)
            lr = s.complete(hyper)["lr"]
            n = ELEMENTS
            param = hard_values(rng, fmt, n, lr)
            grads = [hard_values(rng, fmt, n, lr) for _ in range(3)]
            grads[1] = np.where(rng.random(n) < 0.3, grads[1] * FORMATS[fmt].dtype.type(2.0 ** -60), grads[1])
            args = (s, hyper, param, grads, FORMATS[fmt])
            with np.errstate(all="ignore"):
                (snaps0, bounds0), (snaps1, bounds1) = _run(monkeypatch, False, *args), _run(monkeypatch, True, *args)
            for step, (a, b) in enumerate(zip(snaps0, snaps1)):
                where = f"{name} {hyper} {fmt} step {step}"
                _same_bits(a.phase2, b.phase2, where + " phase2")
                for out in a.value:
                    _same_bits(a.rounded[fmt][out], b.rounded[fmt][out], f"{where} {out} rounded")
                    _same_bits(a.value[out], b.value[out], f"{where} {out} value")
                    _same_bits(a.radius[out], b.radius[out], f"{where} {out} radius")
                    _same_bits(a.exact[out], b.exact[out], f"{where} {out} exact")
            for step, (a, b) in enumerate(zip(bounds0, bounds1)):
                where = f"{name} {hyper} {fmt} step {step}"
                _same_bits(a.phase2, b.phase2, where + " bound phase2")
                for out in a.error:
                    _same_bits(a.error[out], b.error[out], f"{where} {out} error")
                    _same_bits(a.limited[out], b.limited[out], f"{where} {out} limited")
                    assert a.why[out] == b.why[out], where
                    assert a.elements[out].keys() == b.elements[out].keys() if out in a.elements else True


def _counted(monkeypatch, *names) -> dict:
    """Calls of each kernel named, counted, so that a kernel never taken cannot pass for one that agrees."""
    ran = dict.fromkeys(names, 0)
    for name in names:
        def counted(*args, _name=name, _kernel=getattr(fast_kernels, name)):
            ran[_name] += 1
            return _kernel(*args)
        monkeypatch.setattr(fast_kernels, name, counted)
    return ran


def _tb(rng, n, fmt):
    """A tensor value with a mix of hard elements in every field, as a program's intermediate may have."""
    x = hard_values(rng, fmt, n).astype(np.float64)
    x[rng.random(n) < 0.1] = 1.0
    x[rng.random(n) < 0.05] = -1.0
    r = np.where(rng.random(n) < 0.5, 0.0, np.abs(x) * 2.0 ** -53 * rng.random(n))
    r[~np.isfinite(x)] = np.inf
    e = np.where(rng.random(n) < 0.4, 0.0, np.abs(x) * 2.0 ** -20 * rng.random(n))
    e[rng.random(n) < 0.03] = np.inf
    return TB(T(x, r), e, rng.random(n) < 0.05, rng.random(n) < 0.05, ("a reason",),
              elo=np.where(rng.random(n) < 0.5, 0.0, e * rng.random(n)))


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_each_kernel_gives_its_operations_bits(fmt, monkeypatch):
    from reference.fast_bound import SB
    rng = np.random.default_rng(7)
    n = 400
    ran = _counted(monkeypatch, "add2", "mul2", "div", "sqrt", "lerp")
    for trial in range(20):
        a, b = _tb(rng, n, fmt), _tb(rng, n, fmt)
        b.quot = np.where(rng.random(n) < 0.5, np.nan, np.abs(b.t.x) + 1)
        a.scale = np.where(rng.random(n) < 0.5, np.nan, rng.random(n) * 4)
        results = []
        for on in (False, True):
            monkeypatch.setattr(fast_kernels, "KERNELS", on)
            O = FastBound(FORMATS[fmt])
            lr = O.hyper(1e-3 * (trial + 1))
            with np.errstate(all="ignore"):
                z = O.initial(Fraction(trial % 3, 7))  # a state still at its initial value: shape ()
                results.append([O.add(a, b), O.mul(a, b), O.mul(lr, b), O.mul(b, lr), O.div(a, b), O.div(lr, a),
                                O.div(a, lr), O.sqrt(a), O.sqrt(O.abs(b)), O.sub(a, b), O.lerp(a, b, lr),
                                O.lerp(a, b, O.hyper(0)), O.lerp(z, b, lr), O.lerp(a, b, O.abs(b)), O.mul(z, lr),
                                O.add(z, z), O.div(z, lr), O.sqrt(z), O.add(a, z), O.mul(z, b)])
            assert isinstance(lr, SB)
        for k, (p, q) in enumerate(zip(*results)):
            where = f"{fmt} trial {trial} operation {k}"
            for field in ("e", "esc", "lim", "elo", "quot", "scale"):
                u, v = getattr(p, field), getattr(q, field)
                assert (u is None) == (v is None), f"{where} {field}"
                if u is not None:
                    _same_bits(u, v, f"{where} {field}")
            _same_bits(p.t.x, q.t.x, where + " x")
            _same_bits(p.t.r, q.t.r, where + " r")
            _same_bits(p.t.ax, q.t.ax, where + " |x|")
            assert p.why == q.why, where
    assert all(ran.values()), ran


def _dd(rng, n, fmt):
    """A double-double value with a mix of hard elements: exact binary64 values, low words, radii 0 or not."""
    from reference.fast_dd import D
    h = hard_values(rng, fmt, n).astype(np.float64)
    h[rng.random(n) < 0.1] = 1.0
    low = np.where(rng.random(n) < 0.5, 0.0, h * 2.0 ** -60 * (rng.random(n) - 0.5))
    low[~np.isfinite(h)] = 0.0
    r = np.where(rng.random(n) < 0.5, 0.0, np.abs(h) * 2.0 ** -100 * rng.random(n))
    r[~np.isfinite(h)] = np.inf
    return D(h, low, r)


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_each_double_double_kernel_gives_its_operations_bits(fmt, monkeypatch):
    from reference.fast_dd import FastDD, certify
    rng = np.random.default_rng(11)
    n = 400
    ran = _counted(monkeypatch, "dd_add", "dd_mul", "dd_div", "dd_sqrt", "dd_certify")
    for trial in range(20):
        a, b = _dd(rng, n, fmt), _dd(rng, n, fmt)
        results = []
        for on in (False, True):
            monkeypatch.setattr(fast_kernels, "KERNELS", on)
            O = FastDD()
            lr = O.hyper(1e-3 * (trial + 1))
            with np.errstate(all="ignore"):
                ops = [O.add(a, b), O.mul(a, b), O.mul(lr, b), O.div(a, b), O.div(lr, a), O.div(a, lr), O.sqrt(a),
                       O.sqrt(O.abs(b)), O.sub(a, b), O.add(a, O.neg(a))]
                results.append([(v.h, v.l, v.r) for v in ops] + [certify(v, FORMATS[fmt]) for v in (a, b, *ops)])
        for k, (p, q) in enumerate(zip(*results)):
            for j, (u, v) in enumerate(zip(p, q)):
                _same_bits(u, v, f"{fmt} trial {trial} result {k} field {j}")
    assert all(ran.values()), ran


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_recording_and_verdicts_give_the_numpy_codes_bits(fmt, monkeypatch):
    """``record`` and ``verdicts`` (what ``_chunks`` and ``fast_verdicts`` do per output), on the hard values, for
    the reference alone, the bound alone and both, and verdicts of values off by 0, 1 and many ulps."""
    ran = _counted(monkeypatch, "record", "verdicts")
    s = spec.OPTIMIZERS["adam"]
    rng = np.random.default_rng(3)
    param = hard_values(rng, fmt, 300)
    grads = [hard_values(rng, fmt, 300) for _ in range(2)]
    f = FORMATS[fmt]
    from reference.fast import fast_trajectory
    results = []
    for on in (False, True):
        monkeypatch.setattr(fast_kernels, "KERNELS", on)
        with np.errstate(all="ignore"):
            snaps, bounds = fast_reference_and_bounds(s, {"eps": 0.0}, param, grads, f)
            alone = fast_trajectory(s, {"eps": 0.0}, param, grads, formats=(fmt,))
            verdicts = []
            for k in (0, 1, 1000):
                for name, want in snaps[-1].rounded[fmt].items():
                    got = (want.astype(np.float64) * (1 + k * 2.0 ** -f.precision)).astype(want.dtype)
                    verdicts.append(fast_verdicts(got, snaps[-1], bounds[-1], name, f))
        results.append((snaps, bounds, alone, verdicts))
    (s0, b0, a0, v0), (s1, b1, a1, v1) = results
    for step in range(2):
        for out in s0[step].value:
            for field in ("value", "radius", "exact"):
                _same_bits(getattr(s0[step], field)[out], getattr(s1[step], field)[out], f"{step} {out} {field}")
                _same_bits(getattr(a0[step], field)[out], getattr(a1[step], field)[out], f"alone {step} {out}")
            _same_bits(s0[step].rounded[fmt][out], s1[step].rounded[fmt][out], f"{step} {out} rounded")
            _same_bits(b0[step].error[out], b1[step].error[out], f"{step} {out} error")
            _same_bits(b0[step].limited[out], b1[step].limited[out], f"{step} {out} limited")
            assert b0[step].why[out] == b1[step].why[out]
        _same_bits(s0[step].phase2, s1[step].phase2, f"{step} phase2")
        _same_bits(b0[step].phase2, b1[step].phase2, f"{step} bound phase2")
    for k, (u, v) in enumerate(zip(v0, v1)):
        _same_bits(u, v, f"verdicts {k}")
        assert u.dtype == v.dtype
    assert all(ran.values()), ran
