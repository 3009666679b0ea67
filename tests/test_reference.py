"""The reference tested on itself: exact inputs, correct rounding, Ziv escalation, IEEE cases, the bound.

* exact input conversion: an lr = 0 step (or a zero gradient that leaves θ
  unchanged) returns θ exactly, in all four formats, subnormals, ±0 and the
  largest finite value included;
* correct rounding: one SGD step θ − lr·g of binary inputs has a rational
  exact value, computed here with ``Fraction``; ``Element.rounded`` must be
  ``round_to_format`` of it in every format (Hypothesis);
* escalation: exact values within 2⁻²⁰⁰ of a float32 rounding boundary need
  more than 128 bits, and get them; an exact dyadic midpoint is a zero-width
  interval, stops at once and rounds ties-to-even;
* NaN/inf inputs and 0/0 follow IEEE 754 and are marked ``exact=False``; a
  ``None`` gradient moves nothing, not even the step counter;
* ``Unstable`` when the precision cap is hit, naming the inputs;
* the compiled programs are deterministic and hold no float literals;
* the error bound is 0 for no-op steps, finite and positive for ordinary
  ones, infinite with a reason where the format cannot carry the computation.
"""
from __future__ import annotations

import ast
import hashlib
import io
import itertools
import math
import os
import subprocess
import sys
import tokenize
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import spec
import reference.driver as driver
from reference.bound import trajectory_bounds
from reference.formats import FORMATS, exact, from_bits, round_to_format
from reference.program import _compile_cached, compile_rule
from reference.step import START_PREC, Unstable, step_once, trajectory

FORMAT_NAMES = tuple(FORMATS)
SPECS = tuple(spec.OPTIMIZERS.values())
SPEC_IDS = tuple(spec.OPTIMIZERS)
SGD, ADAM, ADAGRAD, RADAM, RMSPROP = (spec.OPTIMIZERS[n] for n in ("sgd", "adam", "adagrad", "radam", "rmsprop"))
ROOT = Path(__file__).resolve().parents[1]


def special_values(fmt: str) -> np.ndarray:
    """±0, ±min subnormal, the largest subnormal, the smallest normal, ±max finite, and a few ordinary values."""
    f = FORMATS[fmt]
    sign = 1 << (f.width - 1)
    largest_subnormal = (1 << (f.precision - 1)) - 1
    patterns = [0, sign, 1, sign | 1, 3, largest_subnormal, sign | largest_subnormal, 1 << (f.precision - 1),
                f.inf_bits - 1, sign | (f.inf_bits - 1)]
    ordinary = [from_bits(b, f) for b in patterns] + [f.dtype.type(x) for x in (1.0, -1.5, 0.3, 1000.0)]
    return np.array(ordinary, dtype=f.dtype)


def same_value(a, b) -> bool:
    """Equal format values, with +0 and −0 the same (the exact value of both is 0); NaN equals NaN."""
    ea, eb = exact(a), exact(b)
    if isinstance(ea, float) and math.isnan(ea):
        return isinstance(eb, float) and math.isnan(eb)
    return ea == eb


def as_fraction(x) -> Fraction:
    """The exact value of a finite mpf (``mpf == Fraction`` would compare at 53 bits)."""
    sign, man, exp, _ = mpmath.mpf(x)._mpf_ if not isinstance(x, mpmath.mpf) else x._mpf_
    return (-1) ** sign * Fraction(man) * Fraction(2) ** exp


def sgd_exact(theta, lr: float, g) -> Fraction:
    return exact(theta) - Fraction(lr) * exact(g)


# --------------------------------------------------------------------------- exact input conversion


#: Hyperparameters under which a spec never moves θ: lr = 0, and for Rprop (whose lr is only Δ's start, clamped
#: into [Δ_min, Δ_max] at once) Δ_min = 0 too.
NO_STEP = {"rprop": {"lr": 0.0, "step_size_min": 0.0},
           # y = β₁·x + (1 − β₁)·z is recomputed every step and rounds even when x = z = θ (β₁ = 0.9: θ comes back
           # within a rounding, as in the library): with β₁ = 0, y = z, and lr = 0 leaves z alone
           "schedulefree_adamw": {"lr": 0.0, "beta1": 0.0}}
#: Specs that recompute θ from state at every step, rounding even when nothing moves, with no in-domain setting that
#: avoids it: Schedule-Free SGD's y = β·x + (1 − β)·z, β in (0, 1) (the exact value is θ: the test above holds)
ROUNDS_WITHOUT_A_STEP = {"schedulefree_sgd"}
#: Specs whose lr domain excludes 0 (SparseAdam's constructor refuses it): a step that moves nothing is one whose
#: sparse gradient holds no element, tested in tests/test_sparse_adam.py.
NO_LR_ZERO = {name for name, s in spec.OPTIMIZERS.items() if not s.hyper("lr").accepts(0.0)}
#: Decay terms besides weight_decay: ASGD shrinks θ by λ·η every step, whatever g.
NO_DECAY = {"asgd": {"lambd": 0.0}}


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_lr_zero_returns_theta_exactly(s, fmt):
    if s.name in NO_LR_ZERO:
        pytest.skip(f"{s.name} refuses lr = 0 (NO_LR_ZERO)")
    param = special_values(fmt)
    grads = [param[::-1].copy(), np.full_like(param, 0.5)]
    snaps = trajectory(s, NO_STEP.get(s.name, {"lr": 0.0}), param, grads, formats=(fmt,))
    for snap in snaps:
        got = snap.rounded("theta", fmt)
        for i, x in enumerate(param):
            e = snap.theta[i]
            assert e.exact and as_fraction(e.value) == exact(x), (i, x, e)
            assert same_value(got[i], x), (i, x, got[i])
    assert [snap.t for snap in snaps] == [1, 2]


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_zero_gradient_leaves_theta_exactly(s, fmt):
    """With zero state and no weight decay, g = 0 moves nothing (m = 0, so every step is 0·something)."""
    param = special_values(fmt)
    zeros = np.zeros_like(param)
    no_decay = {"weight_decay": 0.0} if "weight_decay" in s.defaults else {}  # Rprop has none
    no_decay.update(NO_DECAY.get(s.name, {}))
    snaps = trajectory(s, no_decay, param, [zeros, zeros, zeros], formats=FORMAT_NAMES)
    for snap in snaps:
        for i, x in enumerate(param):
            e = snap.theta[i]
            assert e.exact and as_fraction(e.value) == exact(x), (i, x, e)
            assert same_value(e.rounded[fmt], x)
            for other in FORMAT_NAMES:  # and rounded correctly to every other format
                assert same_value(e.rounded[other], round_to_format(exact(x), FORMATS[other]))


# --------------------------------------------------------------------------- correct rounding


def format_values(fmt: str):
    """Every finite value of the format by bit pattern (subnormals, extremes), and small ordinary ones."""
    f = FORMATS[fmt]
    by_bits = st.integers(0, (1 << f.width) - 1).map(lambda b: from_bits(b, f)).filter(
        lambda x: math.isfinite(float(x)))
    small = st.integers(-4096, 4096).map(lambda k: f.dtype.type(k / 256))
    return st.one_of(by_bits, small)


LRS = st.one_of(st.floats(0.0, 8.0), st.sampled_from([0.0, 1.0, 0.5, 1e-3]),
                st.floats(min_value=0.0, allow_nan=False, allow_infinity=False))


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_sgd_step_correctly_rounded(fmt, data):
    theta = data.draw(format_values(fmt), label="theta")
    g = data.draw(format_values(fmt), label="g")
    lr = data.draw(LRS, label="lr")
    f = FORMATS[fmt]
    snap = step_once(SGD, {"lr": lr}, np.array([theta], dtype=f.dtype), np.array([g], dtype=f.dtype),
                     formats=FORMAT_NAMES)
    e = snap.theta[0]
    want = sgd_exact(theta, lr, g)
    assert e.exact
    for name in FORMAT_NAMES:
        expected = round_to_format(want, FORMATS[name])
        assert same_value(e.rounded[name], expected), (name, e.rounded[name], expected, want)


# --------------------------------------------------------------------------- Ziv escalation

# Float32 midpoints near 1.  A midpoint itself rounds to its even neighbour, so a value just *above* a
# midpoint that rounds down at a tie (F32_MID), or just *below* one that rounds up (F32_MID_UP), is
# where a 128-bit interval around the value has ends that round differently.
F32_ULP1 = Fraction(1, 2 ** 23)
F32_MID = 1 + F32_ULP1 / 2  # between 1 and 1 + 2⁻²³; a tie rounds down to 1
F32_MID_UP = 1 + 3 * F32_ULP1 / 2  # between 1 + 2⁻²³ and 1 + 2⁻²²; a tie rounds up to 1 + 2⁻²²


@pytest.mark.parametrize("k, prec", [(200, 256), (300, 512)])
@pytest.mark.parametrize("mid, direction, expected", [(F32_MID, +1, 1 + F32_ULP1), (F32_MID_UP, -1, 1 + F32_ULP1)],
                         ids=["above-tie-down", "below-tie-up"])
def test_sgd_near_midpoint_escalates(k, prec, mid, direction, expected):
    """θ − lr·g = midpoint ± 2⁻ᵏ: the 128-bit interval reaches the midpoint; 2k bits make it exact."""
    theta = np.array([float(mid)])
    lr = 2.0 ** -100
    g = np.array([-direction * 2.0 ** (100 - k)])
    e = step_once(SGD, {"lr": lr}, theta, g, formats=("float32", "float64")).theta[0]
    value = mid + direction * Fraction(1, 2 ** k)
    assert e.exact and e.prec == prec > START_PREC
    assert as_fraction(e.value) == value  # exact at that precision
    assert exact(e.rounded["float32"]) == expected
    assert e.rounded["float32"] == round_to_format(value, FORMATS["float32"])
    assert e.rounded["float64"] == np.float64(float(mid))
    # On the other side of the midpoint the 128-bit interval is already decisive (the tie rounds that way).
    e = step_once(SGD, {"lr": lr}, theta, -g, formats=("float32",)).theta[0]
    assert e.prec == START_PREC and e.rounded["float32"] == round_to_format(mid, FORMATS["float32"])


@pytest.mark.parametrize("mid, g", [(F32_MID, -1.0), (F32_MID_UP, 1.0)], ids=["above-tie-down", "below-tie-up"])
def test_adagrad_sqrt_near_midpoint_escalates(mid, g):
    """θ − lr·g/(√(s₀ + g²) + ε), θ a float32 midpoint, lr = 2⁻²⁰⁰: irrational, about 2⁻²⁰¹ from the midpoint."""
    hyper = {"lr": 2.0 ** -200, "initial_accumulator_value": 2.0}
    e = step_once(ADAGRAD, hyper, np.array([float(mid)]), np.array([g]), formats=("float32",)).theta[0]
    assert e.exact and e.prec > START_PREC
    assert exact(e.rounded["float32"]) == 1 + F32_ULP1
    # Independently: the exact value at a precision far beyond the reference's, on the expected side.
    with mpmath.workprec(2000):
        delta = -mpmath.mpf(2) ** -200 * g / (mpmath.sqrt(3) + mpmath.mpf(1e-10))
        assert (delta > 0) == (g < 0)
        value = mpmath.mpf(mid.numerator) / mid.denominator + delta
        assert abs(mpmath.mpf(e.value) - value) < mpmath.mpf(2) ** -(e.prec - 8)


@pytest.mark.parametrize("fmt", FORMAT_NAMES[:3])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_exact_midpoint_stops_at_once_and_ties_to_even(fmt, k):
    """θ − lr·g = 1 + (k + ½)·ulp exactly: zero-width interval at 128 bits, rounded to the even neighbour."""
    f = FORMATS[fmt]
    ulp = Fraction(1, 2 ** (f.precision - 1))
    value = 1 + (k + Fraction(1, 2)) * ulp
    g = np.array([-float((k + Fraction(1, 2)) * ulp)])
    e = step_once(SGD, {"lr": 1.0}, np.array([1.0]), g, formats=(fmt,)).theta[0]
    assert e.exact and e.prec == START_PREC and as_fraction(e.value) == value
    even = k if k % 2 == 0 else k + 1  # the neighbour with an even last significand bit
    assert exact(e.rounded[fmt]) == 1 + even * ulp
    # and negative: −1 − (k + ½)·ulp
    e = step_once(SGD, {"lr": 1.0}, np.array([-1.0]), -g, formats=(fmt,)).theta[0]
    assert e.prec == START_PREC and exact(e.rounded[fmt]) == -(1 + even * ulp)


# --------------------------------------------------------------------------- IEEE special values, None gradients


def test_nan_gradient_gives_nan_in_adam():
    snaps = trajectory(ADAM, {}, np.array([1.0, 2.0]), [np.array([math.nan, 0.5]), np.array([0.25, 0.25])],
                       formats=FORMAT_NAMES)
    for snap in snaps:
        e = snap.theta[0]
        assert not e.exact
        assert all(np.isnan(float(e.rounded[f])) for f in FORMAT_NAMES)
        for name in ("exp_avg", "exp_avg_sq"):
            assert np.isnan(float(snap.state[name][0].rounded["float64"]))
        assert snap.theta[1].exact and math.isfinite(float(snap.theta[1].rounded["float64"]))  # other element
    assert [s.t for s in snaps] == [1, 2]  # the step counter still advances


def test_infinite_inputs_follow_ieee():
    # Adam with g = ∞: m̂/(√v̂ + ε) = ∞/∞ = NaN.
    e = step_once(ADAM, {}, np.array([1.0]), np.array([math.inf])).theta[0]
    assert not e.exact and math.isnan(float(e.rounded["float64"]))
    # SGD with θ = −∞ and a finite step stays −∞; with g = ∞, θ − lr·∞ = −∞.
    e = step_once(SGD, {"lr": 0.1}, np.array([-math.inf]), np.array([1.0])).theta[0]
    assert not e.exact and float(e.rounded["float64"]) == -math.inf
    e = step_once(SGD, {"lr": 0.1}, np.array([1.0]), np.array([math.inf])).theta[0]
    assert not e.exact and float(e.rounded["float64"]) == -math.inf
    # ∞ − ∞ = NaN: θ = ∞, g = ∞.
    e = step_once(SGD, {"lr": 0.1}, np.array([math.inf]), np.array([math.inf])).theta[0]
    assert math.isnan(float(e.rounded["float64"]))


def test_adam_eps_zero_zero_gradient_is_nan():
    """ε = 0, g = 0 and zero state: θ − (lr/bc₁)·0/(√0 + 0) = 0/0 = NaN, by the Special path."""
    snap = step_once(ADAM, {"eps": 0.0}, np.array([1.0]), np.array([0.0]), formats=FORMAT_NAMES)
    e = snap.theta[0]
    assert not e.exact
    assert all(np.isnan(float(e.rounded[f])) for f in FORMAT_NAMES)
    assert float(snap.state["exp_avg"][0].rounded["float64"]) == 0.0
    # with g ≠ 0 it is an ordinary exact step
    e = step_once(ADAM, {"eps": 0.0}, np.array([1.0]), np.array([0.5])).theta[0]
    assert e.exact and as_fraction(e.value) == 1 - Fraction(1e-3)  # first step: θ − lr·g/|g|


@pytest.mark.parametrize("s", [SGD, ADAM, RADAM], ids=["sgd", "adam", "radam"])
def test_none_gradient_moves_nothing(s):
    param = np.array([0.5, -1.25])
    g1, g2 = np.array([0.25, 1.0]), np.array([-0.5, 2.0])
    with_none = trajectory(s, {"momentum": 0.9} if s is SGD else {}, param, [None, g1, None, g2])
    without = trajectory(s, {"momentum": 0.9} if s is SGD else {}, param, [g1, g2])
    assert [snap.stepped for snap in with_none] == [False, True, False, True]
    assert [snap.t for snap in with_none] == [0, 1, 1, 2]
    first = with_none[0]
    for i, x in enumerate(param):
        assert as_fraction(first.theta[i].value) == exact(x) and first.theta[i].rounded["float64"] == x
    for name, arr in first.state.items():  # initial state, unchanged
        assert all(e.value == 0 and e.exact for e in arr), name
    for a, b in [(with_none[1], with_none[2]), (with_none[1], without[0]), (with_none[3], without[1])]:
        assert a.t == b.t
        for name in ("theta", *a.state):
            assert np.array_equal(a.rounded(name, "float64"), b.rounded(name, "float64"), equal_nan=True), name
            assert all(x == y for x, y in zip(a.values(name), b.values(name))), name


def test_lr_change_holds_until_the_next():
    """lrs[s] sets the lr before step s, and it stays (torch: group["lr"] = x), in the reference and the bound."""
    param, grads = np.array([0.5, -1.0]), [np.array([0.25, 1.0])] * 4
    sparse, full = [None, 0.5, None, None], [1e-3, 0.5, 0.5, 0.5]
    a = trajectory(SGD, {}, param, grads, lrs=sparse)
    b = trajectory(SGD, {}, param, grads, lrs=full)
    assert [x.values("theta").tolist() for x in a] == [x.values("theta").tolist() for x in b]
    assert as_fraction(a[-1].theta[0].value) == Fraction(0.5) - 3 * Fraction(0.5) * Fraction(0.25) - Fraction(1e-3) * Fraction(0.25)
    ba = trajectory_bounds(SGD, SGD.complete({}), param, grads, FORMATS["float32"], lrs=sparse)
    bb = trajectory_bounds(SGD, SGD.complete({}), param, grads, FORMATS["float32"], lrs=full)
    assert [[e.error for e in s["theta"]] for s in ba] == [[e.error for e in s["theta"]] for s in bb]


# --------------------------------------------------------------------------- Unstable


def test_unstable_when_the_precision_cap_is_hit(monkeypatch):
    """Adagrad's θ − lr·g/(√3 + ε) about 2⁻²⁰¹ from a float32 midpoint: irrational, so no fallback decides it."""
    theta, g = np.array([float(F32_MID)]), np.array([-1.0])
    hyper = {"lr": 2.0 ** -200, "initial_accumulator_value": 2.0}
    monkeypatch.setattr(driver, "MAX_PREC", START_PREC)
    with pytest.raises(Unstable) as info:
        step_once(ADAGRAD, hyper, theta, g, formats=("float32",))
    msg = str(info.value)
    assert f"{START_PREC} bits, nor in exact arithmetic" in msg and "float32" in msg
    assert "theta" in msg and repr(F32_MID) in msg  # the parameter
    assert repr(Fraction(-1)) in msg  # the gradient
    assert repr(Fraction(1, 2 ** 200)) in msg  # the learning rate
    monkeypatch.setattr(driver, "MAX_PREC", 512)
    assert START_PREC < step_once(ADAGRAD, hyper, theta, g, formats=("float32",)).theta[0].prec <= 512


def test_rational_arithmetic_decides_what_no_precision_can(monkeypatch):
    """A rational step at the precision cap is decided in exact rational arithmetic, not reported unstable.

    SGD's θ − lr·g = midpoint + 2⁻²⁰⁰ needs 256 bits; with the cap at 128 the ``Fraction`` fallback gives it exactly.
    """
    theta, g = np.array([float(F32_MID)]), np.array([-2.0 ** -100])
    monkeypatch.setattr(driver, "MAX_PREC", START_PREC)
    e = step_once(SGD, {"lr": 2.0 ** -100}, theta, g, formats=("float32",)).theta[0]
    assert e.exact and exact(e.rounded["float32"]) == 1 + F32_ULP1


def test_centered_rmsprop_alpha_zero_has_an_exact_zero_variance():
    """α = 0: v = g², ḡ = g, so v − ḡ² = 0 exactly, yet as intervals it straddles 0 at every precision.

    Found by the default profile (numpy backend, seed 1).  Rational arithmetic decides it: √0 = 0, θ − lr·g/ε.
    """
    hyper = RMSPROP.complete({"lr": 1.0, "alpha": 0.0, "eps": 1e-8, "weight_decay": 10.0, "centered": True})
    snaps = trajectory(RMSPROP, hyper, np.array([-1.0], np.float32), [np.array([-1.0], np.float32),
                                                                       np.array([0.0], np.float32)],
                       formats=("float32",))
    theta1 = Fraction(-1) + 11 / Fraction(1e-8)  # g = −1 + 10·(−1) = −11, √(121 − 121) = 0
    assert abs(as_fraction(snaps[0].theta[0].value) - theta1) <= theta1 * Fraction(1, 2 ** 1000)
    assert snaps[0].theta[0].rounded["float32"] == round_to_format(theta1, FORMATS["float32"])
    g2 = 10 * theta1
    assert snaps[1].theta[0].rounded["float32"] == round_to_format(theta1 - g2 / Fraction(1e-8), FORMATS["float32"])


# --------------------------------------------------------------------------- compiled programs


def _flag_combinations(s):
    names = [f.name for f in s.flags]
    for combo in itertools.product((False, True), repeat=len(names)):
        flags = dict(zip(names, combo))
        extra = {"momentum": 0.9} if s.name in ("sgd", "sgd_sparse") and flags.get("nesterov") else {}
        yield s.complete({**extra, **flags})


def _all_sources() -> dict:
    """Every program: each flag combination and, for a spec with tensor flags, each of theirs (given by name)."""
    out = {}
    for s in SPECS:
        for h in _flag_combinations(s):
            for bits in itertools.product((False, True), repeat=len(s.tensor_flags)):
                t = {f.name: b for f, b in zip(s.tensor_flags, bits)}
                key = (s.name, tuple(sorted((k, v) for k, v in {**h, **t}.items() if isinstance(v, bool))))
                out[key] = compile_rule(s, {**h, **t}).source
    return out


def test_compiled_source_has_no_float_literals():
    sources = _all_sources()
    assert len(sources) == sum(2 ** (len(s.flags) + len(s.tensor_flags)) for s in SPECS)  # SGD's nesterov ones with momentum 0.9
    for key, source in sources.items():
        tree = ast.parse(source)
        floats = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, (float, complex))]
        assert not floats, (key, floats)
        numbers = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                   if tok.type == tokenize.NUMBER]
        # integers only: O.const(p, q); sgd_sparse's θ + (−η)·g has no constant at all
        assert all(n.isdigit() for n in numbers) and (numbers or key[0] == "sgd_sparse"), (key, numbers)


_HASH_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {root!r})
import tests.test_reference as t
print(hashlib.sha256(repr(sorted(t._all_sources().items())).encode()).hexdigest())
"""


def test_compiled_source_is_deterministic():
    first = _all_sources()
    _compile_cached.cache_clear()
    assert _all_sources() == first
    here = hashlib.sha256(repr(sorted(first.items())).encode()).hexdigest()
    for seed in ("0", "12345"):  # other processes, other string hashes
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _HASH_SCRIPT.format(root=str(ROOT))], capture_output=True,
                             text=True, env=env, cwd=ROOT, check=True)
        assert out.stdout.strip() == here, out.stderr


# --------------------------------------------------------------------------- the error bound


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_bound_is_zero_for_lr_zero(s, fmt):
    """No step (lr = 0; ``NO_STEP``), no error."""
    if s.name in ROUNDS_WITHOUT_A_STEP:
        pytest.skip(f"{s.name} rounds θ at every step, lr = 0 too (ROUNDS_WITHOUT_A_STEP)")
    if s.name in NO_LR_ZERO:
        pytest.skip(f"{s.name} refuses lr = 0 (NO_LR_ZERO)")
    f = FORMATS[fmt]
    param = np.array([0.5, -1.25, 3.0, 0.0], dtype=f.dtype)
    g = np.array([0.25, 1.0, -2.0, 0.75], dtype=f.dtype)
    for step in trajectory_bounds(s, s.complete(NO_STEP.get(s.name, {"lr": 0.0})), param, [g, g, g], f):
        for e in step["theta"]:
            assert e.error == 0 and e.limited == (), e


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_bound_finite_positive_for_ordinary_steps(s, fmt):
    f = FORMATS[fmt]
    param = np.array([0.5, -1.25, 3.0], dtype=f.dtype)
    grads = [np.array([0.25, 1.0, -2.0], dtype=f.dtype), np.array([-0.3, 0.7, 1.1], dtype=f.dtype)] * 4
    hyper = s.complete({"momentum": 0.9} if "momentum" in s.defaults else {})
    for step in trajectory_bounds(s, hyper, param, grads, f):
        for e in step["theta"]:
            assert 0 < e.error < math.inf and e.limited == (), e
        for name, arr in step.items():
            assert all(e.limited == () and mpmath.isfinite(e.error) for e in arr), name


def test_bound_radam_untaken_branch_is_not_limited():
    """RAdam's rectifier is √(negative) while ρ_t < 4; the branch is not taken, so nothing is limited."""
    param, g = np.array([0.5]), np.array([0.25])
    bounds = trajectory_bounds(RADAM, RADAM.complete({}), param, [g] * 8, FORMATS["float64"])
    for step in bounds:
        assert all(e.limited == () and mpmath.isfinite(e.error) for arr in step.values() for e in arr)


def test_bound_float16_adam_eps_underflow():
    """ε = 1e-8 is below float16's smallest subnormal: with g = 0 the denominator is within its error of 0."""
    param, g = np.array([1.0], dtype=np.float16), np.array([0.0], dtype=np.float16)
    e = trajectory_bounds(ADAM, ADAM.complete({}), param, [g], FORMATS["float16"])[0]["theta"][0]
    assert e.error == math.inf
    assert e.limited and any("underflow" in r and "divisor" in r for r in e.limited), e.limited
    # The same step in float32 is an ordinary one: ε is a normal float32 number.
    e32 = trajectory_bounds(ADAM, ADAM.complete({}), param.astype(np.float32), [g.astype(np.float32)],
                            FORMATS["float32"])[0]["theta"][0]
    assert e32.limited == () and 0 <= e32.error < math.inf


def test_bound_amsgrad_max_propagates_nan():
    """ε = 0, θ = 0, g = 0: step 1 makes θ = 0/0 = NaN; step 2's g + λθ is NaN and max(v_max, NaN) is NaN (as
    torch.maximum and the exact reference), unbounded rather than a crash (a numpy default-profile seed found it)."""
    hyper = ADAM.complete({"lr": 0.0, "eps": 0.0, "weight_decay": 0.5, "amsgrad": True})
    param, g = np.array([0.0]), np.array([0.0])
    steps = trajectory_bounds(ADAM, hyper, param, [g, np.array([-1.0])], FORMATS["float64"])
    e = steps[1]["max_exp_avg_sq"][0]
    assert e.error == math.inf


def test_bound_float16_adam_overflow_in_g_squared():
    """g = 300 in float16: g·g = 90000 exceeds 65504; v and θ are limited, m (which has no g²) is not."""
    param, g = np.array([1.0], dtype=np.float16), np.array([300.0], dtype=np.float16)
    step = trajectory_bounds(ADAM, ADAM.complete({}), param, [g], FORMATS["float16"])[0]
    for name in ("exp_avg_sq", "theta"):
        e = step[name][0]
        assert any(r.startswith("overflow") and "65504" in r for r in e.limited), (name, e.limited)
    assert step["exp_avg"][0].limited == ()


# --------------------------------------------------------------------------- the lerp rule


def test_lerp_is_one_operation_of_the_programs():
    """``spec.common.lerp`` compiles to ``O.lerp``; ``1 + (t − 1)·lr_decay`` (a number as start) does not."""
    adam = compile_rule(ADAM, ADAM.complete({})).source
    assert "m_1 = O.lerp(exp_avg, g_1, O.sub(O.const(1, 1), beta1))" in adam, adam
    assert "O.lerp" not in compile_rule(ADAGRAD, ADAGRAD.complete({})).source


def _lerp_forms(a, b, beta, dtype):
    """The three ways implementations evaluate a + w·(b − a) with w = 1 − β, each op rounded to ``dtype``."""
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    w = np.asarray(1.0 - beta, dtype)  # the scalar 1 − β in binary64, converted to the format
    complement = np.asarray(beta, dtype)
    return {
        "a + w·(b − a)": a + w * (b - a),
        "b − (1 − w)·(b − a)": b - (np.asarray(1, dtype) - w) * (b - a),  # torch's lerp for w ≥ ½
        "β·a + w·b": complement * a + w * b,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(["float16", "bfloat16", "float32"]),
       a=st.floats(-100, 100), b=st.floats(-100, 100), da=st.floats(-1, 1), db=st.floats(-1, 1),
       beta=st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1 - 2.0 ** -20]))
def test_bound_lerp_covers_every_evaluation_form(fmt, a, b, da, db, beta):
    """Inputs off by up to eₐ, e_b, evaluated in any of the three forms, stay within ``Bound.lerp``'s bound."""
    from reference.bound import B, Bound
    f = FORMATS[fmt]
    O = Bound(f)
    a_exact, b_exact = (exact(round_to_format(Fraction(x), f)) for x in (a, b))
    # The inputs an implementation holds: the exact values moved by up to a few ulps (then rounded to the format).
    a_held, b_held = (round_to_format(x + Fraction(d) * abs(x) / 2 ** 6, f) for x, d in ((a_exact, da), (b_exact, db)))
    err_a, err_b = abs(exact(a_held) - a_exact), abs(exact(b_held) - b_exact)
    w = O.sub(O.const(1, 1), O.hyper(beta))
    out = O.lerp(B(O._mpf(a_exact), O._mpf(err_a)), B(O._mpf(b_exact), O._mpf(err_b)), w)
    exact_value = a_exact + (1 - Fraction(beta)) * (b_exact - a_exact)
    for form, got in _lerp_forms(a_held, b_held, beta, f.dtype).items():
        if not np.isfinite(np.float64(got)):
            continue
        err = abs(exact(got) - exact_value)
        assert err <= as_fraction(out.e), (form, fmt, a_held, b_held, beta, float(err), float(out.e))


def _tiny_or_any(fmt):
    f = FORMATS[fmt]
    top = float(f.min_normal) * 2.0 ** f.precision
    return st.one_of(st.floats(-top, top), st.floats(-1e3, 1e3)).map(lambda x: float(round_to_format(Fraction(x), f)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fmt=st.sampled_from(["float32", "float64"]),
       s=st.sampled_from([1e-3, 0.3, 1.0, 3.0, 9.563383796044638, 1e3]))
def test_bound_scaled_quotient_covers_both_associations(data, fmt, s):
    """s·x/d with a scalar s: torch's CPU addcdiv computes (s·x)/d, CUDA's s·(x/d).  Near the subnormal range the
    two differ by more than a rounding (an underflow times |s| or over |d|); the bound of either spec grouping
    covers both (seed 4, numpy: Adagrad lr = 10, g = 2⁻¹⁰⁷⁴; CUDA: the same with lr 9.56)."""
    from reference.bound import B, Bound
    f = FORMATS[fmt]
    x = data.draw(_tiny_or_any(fmt), label="x")
    d = data.draw(st.floats(1e-6, 1e6).map(lambda v: float(round_to_format(Fraction(v), f))), label="d")
    O = Bound(f)
    sB, xB, dB = O.hyper(s), B(O._mpf(Fraction(x)), O._mpf(0)), B(O._mpf(Fraction(d)), O._mpf(0))
    bounds = {"(s·x)/d": O.div(O.mul(sB, xB), dB).e, "s·(x/d)": O.mul(O.div(xB, dB), sB).e}
    exact_value = Fraction(s) * Fraction(x) / Fraction(d)
    s_, x_, d_ = (np.asarray(v, f.dtype) for v in (s, x, d))
    for form, got in {"(s·x)/d": s_ * x_ / d_, "s·(x/d)": s_ * (x_ / d_)}.items():
        err = abs(exact(got) - exact_value)
        for grouping, e in bounds.items():
            assert err <= as_fraction(e), (form, grouping, fmt, s, x, d, float(err), float(e))


def test_adam_bound_grows_linearly_not_geometrically():
    """The first moment's error enters each step β₁ times, not (2 − β₁) times: over 200 steps the bound grows ~linearly.

    Charged as ``m + w·(g − m)`` taken apart, m's error would grow by (1 + w) = 1.1× a step: 1.1¹⁰⁰ ≈ 10⁴ from
    step 100 to 200.  Linear growth of the accumulated roundings doubles it.
    """
    f = FORMATS["float32"]
    rng = np.random.default_rng(0)
    param = np.array([0.5, -1.25], dtype=np.float32)
    grads = [rng.standard_normal(2).astype(np.float32) for _ in range(200)]
    bounds = trajectory_bounds(ADAM, ADAM.complete({}), param, grads, f)
    e100 = max(float(e.error) for e in bounds[99]["exp_avg"])
    e200 = max(float(e.error) for e in bounds[199]["exp_avg"])
    assert 0 < e200 < 3 * e100, (e100, e200)


def test_adadelta_rho_one_tie_is_decided_with_exact_square_roots():
    """ρ = 1: v stays 0 and Δ = √(0 + ε)/√(0 + ε)·g = g exactly; θ − lr·g is then a float64 tie.

    As intervals √ε/√ε straddles 1 at every precision, so the tie cannot be decided; in exact arithmetic
    (``reference.exact.Surd``) it is 1.  Found by the default profile (numpy backend, seed 2).
    """
    adadelta = spec.OPTIMIZERS["adadelta"]
    lr, eps = 5764607523034235 / 2 ** 59, 4722366482869645 / 4722366482869645213696
    hyper = adadelta.complete({"lr": lr, "rho": 1.0, "eps": eps})
    e = step_once(adadelta, hyper, np.array([-1.0]), np.array([64.0]), formats=("float64",)).theta[0]
    value = -1 - 64 * Fraction(lr)  # θ − lr·Δ with Δ = g = 64: lr's odd last bit makes it a float64 tie
    ulp = Fraction(1, 2 ** 52)
    assert (value + 1) % ulp == ulp / 2  # a tie: half an ulp past a float64
    assert e.rounded["float64"] == round_to_format(value, FORMATS["float64"])


def test_exact_arithmetic_keeps_square_roots_of_rationals():
    from reference.exact import ExactInterval, Surd
    O = ExactInterval(128)
    two = O.sqrt(Fraction(2))
    assert two == Surd(Fraction(1), Fraction(2))
    assert O.mul(two, two) == 2 and O.div(two, two) == 1 and O.div(Fraction(1), two) == Surd(Fraction(1, 2), Fraction(2))
    assert O.neg(two) == Surd(Fraction(-1), Fraction(2)) and O.sqrt(Fraction(9, 4)) == Fraction(3, 2)
    assert O.gt(two, Fraction(141, 100)) and O.lt(two, Fraction(142, 100))  # compared as intervals


def test_exact_arithmetic_keeps_zero_plus_x_and_x_over_x():
    """0 + x is x itself and x/x is exactly 1 for an irrational x (Schedule-Free's first nonzero weight,
    c = w/(0 + w) with w = 2ʳ): an enclosure would leave a tie on a rounding boundary undecided."""
    from reference.exact import ExactInterval
    O = ExactInterval(128)
    w = O.pow(Fraction(2), Fraction(1, 3))  # irrational: an interval
    assert not isinstance(w, Fraction)
    total = O.add(Fraction(0), w)
    assert total is w and O.div(w, total) == Fraction(1)
    zero = O.sub(w, w)  # an enclosure of 0: x/x is not 1 there, and the shortcut is not taken
    from reference.arith import Undecided
    with pytest.raises(Undecided):
        O.div(zero, zero)
