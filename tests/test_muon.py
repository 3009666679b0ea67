"""torch.optim.Muon against spec/muon.py: element by element given the applied O, and NS by properties.

What is checked (docs/measured/muon.md says it for readers):

* **element-wise** (``muon_check.check_steps``): each step's momentum buffer, NS input U and θ against the exact
  reference within the derived bound (reference/bound.py, binary64 scalars), from the implementation's own θ and
  buffer before the step and the O it applied, in all four dtypes, nesterov on and off, both ``adjust_lr_fn``s,
  square, wide and tall shapes, with decay; fixed cases, and 40 drawn ones (Hypothesis, derandomized) whose
  elements span 2⁻¹⁵⁰…2¹²⁷ with ±0, ±inf and NaN; torch's class and the NumPy port
  (conformance/backends/numpy_muon.py) alike;
* **NS** (``muon_check.check_newton_schulz``): every applied O is bit for bit the bfloat16 operation sequence
  re-executed on the observed U, and each iterate's singular values lie within the derived enclosure
  (reference/newton_schulz.py) of the previous iterate's; invariances: scaling U by 2^k and transposing a
  non-square U are exact (bit for bit), as are sign flips of rows and columns; a general orthogonal factor only
  within the enclosures; the exact polynomial image p^k(σ) is what binary64 arithmetic gives the matrix sequence;
* **refusals**: the constructor's errors for invalid hyperparameters and non-2-D parameters, foreach's
  RuntimeError, and the two deliberately broken versions that the element-wise check must catch.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

torch = pytest.importorskip("torch")

from conformance import newton_schulz as cns  # noqa: E402
from conformance.backends import numpy_muon  # noqa: E402
from reference import newton_schulz as nsr  # noqa: E402
from spec.muon import MUON  # noqa: E402
from tests import muon_check as mc  # noqa: E402

COEFFS = (3.4445, -4.7750, 2.0315)
SHAPES = ((2, 3), (3, 3), (4, 2))


def _case(seed: int, shape, dtype: str, steps: int = 3):
    """θ₀ and gradients of ``dtype``'s values (as float64 arrays), N(0, 1) at a seeded scale."""
    rng = np.random.default_rng(seed)
    scale = 2.0 ** int(rng.integers(-6, 6))

    def values(x):
        return torch.tensor(x, dtype=mc.DTYPES[dtype]).double().numpy()

    return values(rng.standard_normal(shape)), [values(scale * rng.standard_normal(shape)) for _ in range(steps)]


def _run_and_check(cls, hyper, shape, dtype, seed):
    p0, grads = _case(seed, shape, dtype)
    rows = mc.run(cls, hyper, p0, grads, dtype)
    return rows, mc.check_steps(hyper, p0.astype(rows[0]["theta"].dtype), grads, rows, dtype)


def _known(failures, hyper, dtype):
    """Leave out the buffer of bfloat16 without Nesterov, which NS divides in place (finding 62,
    tests/test_known_deviations.py); its θ and U are still checked."""
    if dtype == "bfloat16" and not hyper.get("nesterov", True):
        return [f for f in failures if " momentum_buffer[" not in f]
    return failures


@pytest.mark.parametrize("dtype", list(mc.DTYPES))
@pytest.mark.parametrize("nesterov, match", [(True, False), (False, True)])
def test_torch_muon_conforms_element_by_element(dtype, nesterov, match):
    for k, shape in enumerate(SHAPES):
        hyper = dict(lr=0.05, weight_decay=0.3, momentum=0.9, nesterov=nesterov, match_rms_adamw=match)
        rows, failures = _run_and_check(torch.optim.Muon, hyper, shape, dtype, seed=k)
        assert not _known(failures, hyper, dtype), failures[:4]
        for row in rows:  # and the O it applied is NS(U)
            u = torch.tensor(np.asarray(row["update"], dtype=np.float64), dtype=mc.DTYPES[dtype])
            o = torch.tensor(row["ortho"]).bfloat16()
            assert not mc.check_newton_schulz(u, o, *COEFFS, 5, 1e-7)


@pytest.mark.parametrize("dtype", list(mc.DTYPES))
def test_the_numpy_port_conforms_element_by_element_and_its_iterates_stay_in_the_enclosures(dtype):
    hyper = dict(lr=0.05, weight_decay=0.3, momentum=0.9, nesterov=dtype != "float32", match_rms_adamw=True)
    for k, shape in enumerate(SHAPES):
        p0, grads = _case(10 + k, shape, dtype)
        np_dtype = mc._to_numpy(torch.zeros(1, dtype=mc.DTYPES[dtype])).dtype
        rows = numpy_muon.run(MUON.complete(hyper), p0.astype(np_dtype), [g.astype(np_dtype) for g in grads])
        assert not mc.check_steps(hyper, p0.astype(np_dtype), grads, rows, dtype)
        for row in rows:
            assert not mc.check_enclosures(row["x0"], row["iterates"], *COEFFS, 1e-7)


def test_the_faithful_rewrite_passes_and_each_broken_version_is_caught():
    """Decay 0.3 and a tall shape (√(A/B) = √2 ≠ 1) make the adjusted-lr decay show; float64 keeps it fast."""
    hyper = dict(lr=0.05, weight_decay=0.3, momentum=0.9)
    assert not _run_and_check(mc.FaithfulMuon, hyper, (4, 2), "float64", seed=5)[1]
    for cls in mc.BROKEN:
        failures = _run_and_check(cls, hyper, (4, 2), "float64", seed=5)[1]
        assert failures, f"{cls.__name__} passed"


def test_lerp_weights_rounded_to_the_dtype_are_within_the_bound():
    """torch rounds a lerp's Python-float weight to the tensor's dtype (bfloat16: 1 − 0.9 → 0.10009765625): the
    tolerance model charges a scalar meeting a tensor that conversion, so a large momentum passes."""
    hyper = dict(lr=0.01, weight_decay=0.0, momentum=0.999, nesterov=True)
    assert not _run_and_check(torch.optim.Muon, hyper, (2, 3), "bfloat16", seed=7)[1]


def _ns(u, steps=5, coeffs=COEFFS, eps=1e-7):
    from torch.optim._muon import _zeropower_via_newtonschulz
    return _zeropower_via_newtonschulz(u, coeffs, steps, eps)


@pytest.mark.parametrize("shape", [(1, 4), (2, 3), (3, 3), (4, 6), (5, 2)])
def test_newton_schulz_properties(shape):
    rng = np.random.default_rng(sum(shape))
    u = torch.tensor(rng.standard_normal(shape), dtype=torch.float32)
    o = _ns(u)
    assert not mc.check_newton_schulz(u, o, *COEFFS, 5, 1e-7)
    for k in (-7, 3):  # a power of two scales the bfloat16 input, its norm and so the quotient exactly
        assert torch.equal(_ns(u * 2.0 ** k), o)
    signs_r = torch.tensor(rng.choice([-1.0, 1.0], shape[0]), dtype=torch.float32)
    signs_c = torch.tensor(rng.choice([-1.0, 1.0], shape[1]), dtype=torch.float32)
    assert torch.equal(_ns(signs_r[:, None] * u * signs_c[None, :]), signs_r[:, None].bfloat16() * o
                       * signs_c[None, :].bfloat16())  # sign flips: the same magnitudes in the same order
    if shape[0] != shape[1]:  # NS orients a tall matrix as wide itself: the same sequence on the same matrix
        assert torch.equal(_ns(u.T.contiguous()), o.T)
    q, _ = np.linalg.qr(rng.standard_normal((shape[0], shape[0])))
    rotated = torch.tensor(q @ u.double().numpy(), dtype=torch.float32)
    assert not mc.check_newton_schulz(rotated, _ns(rotated), *COEFFS, 5, 1e-7)


def test_the_polynomial_image_is_the_matrix_sequence_in_binary64():
    """p^k(σ) on the normalised singular values is what the sequence computes in binary64 (no bfloat16): the
    exact image ``reference.newton_schulz`` compares against is the right one."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5))
    x = x / np.linalg.norm(x)
    y = x.copy()
    a, b, c = COEFFS
    for _ in range(5):
        gram = y @ y.T
        y = a * y + (b * gram + c * gram @ gram) @ y
    exact = sorted((float(s) for s in nsr.polynomial_image(nsr.normalised_singular_values(x), a, b, c, 5)),
                   reverse=True)
    assert np.allclose(nsr.singular_values(y), exact, rtol=0, atol=1e-12)


def test_the_enclosures_refuse_other_coefficients():
    """The per-iteration enclosure is narrow enough to tell a different polynomial: iterates of the classic cubic
    (1.5, −0.5, 0), run in bfloat16, leave the enclosures of Muon's quintic (and stay in their own)."""
    u = torch.tensor(np.random.default_rng(4).standard_normal((3, 4)), dtype=torch.float32)
    _, iterates, _ = mc.rerun_newton_schulz(u, 1.5, -0.5, 0.0, 5, 1e-7)

    def outside(coeffs):
        return sum(not lo <= s <= hi
                   for x, y in zip(iterates, iterates[1:])
                   for (lo, hi), s in zip(nsr.iteration_enclosure(x.double().numpy(), *coeffs),
                                          nsr.singular_values(y.double().numpy())))

    assert outside((1.5, -0.5, 0.0)) == 0
    assert outside(COEFFS) > 0


@pytest.mark.parametrize("hyper", [dict(lr=-1.0), dict(momentum=-0.1), dict(weight_decay=-1.0),
                                   dict(adjust_lr_fn="sqrt"), dict(lr=float("nan"))])
def test_invalid_hyperparameters_are_refused_by_the_constructor(hyper):
    with pytest.raises(ValueError):
        torch.optim.Muon([torch.zeros(2, 2)], **hyper)
    spec_hyper = {k: v for k, v in hyper.items() if k != "adjust_lr_fn"}
    if spec_hyper:
        with pytest.raises(ValueError):  # spec.InvalidHyperparameter is a ValueError
            MUON.complete(spec_hyper)


def test_ns_steps_domain_and_two_d_only():
    with pytest.raises(ValueError):
        MUON.complete({"ns_steps": 100})
    with pytest.raises(ValueError, match="only supports 2D parameters"):
        torch.optim.Muon([torch.zeros(3)])
    with pytest.raises(RuntimeError, match="Foreach is not supported"):
        torch.optim._muon.muon([], [], [], foreach=True, lr=0.1, weight_decay=0.0, momentum=0.9, nesterov=True,
                               ns_coefficients=COEFFS, ns_steps=5, eps=1e-7, adjust_lr_fn=None, has_complex=False)


@st.composite
def _drawn(draw):
    """A dtype, hyperparameters (momentum up to 1, lr up to 3, decay up to 2) and a 1–3-step trajectory of 2-D
    tensors whose elements span 2⁻¹⁵⁰…2¹²⁷ with ±0, ±inf and NaN, rounded to the dtype."""
    dtype = draw(st.sampled_from(list(mc.DTYPES)))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)))
    n = shape[0] * shape[1]

    def array():
        element = st.one_of(st.just(0.0), st.sampled_from([float("inf"), -float("inf"), float("nan")]),
                            st.builds(lambda m, e: m * 2.0 ** e, st.floats(-2, 2), st.integers(-150, 127)))
        a = np.array(draw(st.lists(element, min_size=n, max_size=n))).reshape(shape)
        return torch.tensor(a, dtype=mc.DTYPES[dtype]).double().numpy()

    hyper = dict(lr=draw(st.sampled_from([0.0, 1e-6, 0.01, 0.5, 3.0])),
                 weight_decay=draw(st.sampled_from([0.0, 0.1, 2.0])),
                 momentum=draw(st.sampled_from([0.0, 0.5, 0.9, 0.999, 1.0])), nesterov=draw(st.booleans()),
                 match_rms_adamw=draw(st.booleans()))
    return dtype, hyper, array(), [array() for _ in range(draw(st.integers(1, 3)))]


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(_drawn())
def test_drawn_trajectories_conform(case):
    """The element-wise check and NS's properties on drawn inputs, non-finite ones included (NS is then only
    checked where U is finite)."""
    dtype, hyper, p0, grads = case
    rows = mc.run(torch.optim.Muon, hyper, p0, grads, dtype)
    assert not _known(mc.check_steps(hyper, p0.astype(rows[0]["theta"].dtype), grads, rows, dtype), hyper, dtype)
    for row in rows:
        u = torch.tensor(np.asarray(row["update"], dtype=np.float64), dtype=mc.DTYPES[dtype])
        if torch.isfinite(u).all():
            assert not mc.check_newton_schulz(u, torch.tensor(row["ortho"]).bfloat16(), *COEFFS, 5, 1e-7)


#: -k selection of the harness runs below: single steps in float64 (the tightest bound; each step from the class's
#: own state, where both slips show at the first step with decay or momentum)
HARNESS_SELECTION = "test_single_steps and float64"


@pytest.mark.parametrize("cls", [c.__name__ for c in mc.BROKEN])
def test_the_harness_catches_each_broken_muon(cls):
    """``--optimizer muon=tests.muon_check:Class`` through the conformance harness's command line, as
    tests/test_harness_catches_bugs.py does for the other optimizers: each broken re-implementation fails with a
    reproduction (``ci-noshrink``: ``ci``'s examples, no minimising).  The faithful one and torch's own class pass
    the same harness: tests/test_muon.py's element-wise tests and the torch-cpu conformance job."""
    from tests.harness_profiles import run_pytest

    proc = run_pytest(["conformance", "--backend=torch-cpu", "--optimizer", f"muon=tests.muon_check:{cls}",
                       "--spec", "muon", "-k", HARNESS_SELECTION, "-q", "-x"], "ci-noshrink")
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 1, f"{cls}: exit {proc.returncode}, expected 1 (a failure)\n{tail}"
    assert "Reproduce with" in proc.stdout and "FAILED conformance/test_conformance.py::" in proc.stdout, tail


def test_the_invariances_are_not_claimed_where_bfloat16_flushes_a_subnormal_of_u():
    """U holding float32 subnormals that bfloat16 flushes to 0 at their size but not at 8 times it (a ci draw of
    session 15): bfloat16(U·8) is not bfloat16(U)·8, so NS(U·8) = NS(U) is no invariance there and is not checked;
    the same U scaled into the normal range is checked, and passes."""
    from conformance import newton_schulz as cns
    tiny = np.array([[float.fromhex(x) for x in row] for row in (("-0x1.cccccp-3", "-0x1p-149"),
                                                                   ("-0x1.cccccp-1", "-0x1.c598p-135"))],
                    dtype=np.float32)  # U = 0.9·g of that draw's first step
    assert cns.rerun_bf16(tiny)[1, 1] == 0 and cns.rerun_bf16(tiny * 8)[1, 1] != 0
    assert not np.array_equal(cns._f64(cns.rerun_torch(tiny * 8, *COEFFS, 0, 1e-7)[2]),
                              cns._f64(cns.rerun_torch(tiny, *COEFFS, 0, 1e-7)[2]))  # no invariance to claim
    assert not cns.invariance_failures(cns.rerun_torch, tiny, *COEFFS, 0, 1e-7)
    normal = tiny * np.float32(2.0 ** 100)
    assert not cns.invariance_failures(cns.rerun_torch, normal, *COEFFS, 0, 1e-7)


def test_the_normalisation_enclosure_refuses_a_zero_matrix_whatever_eps():
    """X = 0 with ε ≤ 0 (torch checks no ε): NS computes 0/max(0, ε), which the enclosure does not model; it says
    so (ValueError, which the harness takes as "not checked") instead of dividing by ‖X‖ = 0."""
    for eps in (-1.0, 0.0, 1e-7):
        with pytest.raises(ValueError, match="not model"):
            nsr.normalisation_enclosure(np.zeros((2, 2)), eps)


def test_the_normalisation_enclosure_models_the_norms_underflow():
    """torch's norm of a bfloat16 matrix sums float32 squares: below 2⁻⁷⁵ each square is 0 and so may ‖X‖ be
    (NS's X/‖X‖ is then NaN; numpy seed 2 of the default profile drew X with one such element).  The enclosure
    refuses ‖X‖ < 2⁻⁶³ and, above it, holds the σ of X/‖X‖ as torch computes it where the squares are subnormal."""
    torch = pytest.importorskip("torch")
    lone = np.array([[0.0, 0.0], [float.fromhex("0x1.78p-79"), 0.0]])
    assert float(torch.from_numpy(lone).bfloat16().norm()) == 0.0  # ...and NS's normalised iterate is NaN
    with pytest.raises(ValueError, match="underflow"):
        nsr.normalisation_enclosure(lone, -1.0)
    rng = np.random.default_rng(5)
    for scale in (2.0 ** -63, 2.0 ** -60, 2.0 ** -50):
        x = torch.from_numpy(rng.standard_normal((4, 6)) * scale).bfloat16()
        normalised = cns._f64(x / x.norm().clamp(min=1e-30))
        enc = nsr.normalisation_enclosure(cns._f64(x), 1e-30)
        for (lo, hi), sv in zip(enc, nsr.singular_values(normalised)):
            assert lo <= sv <= hi, (scale, lo, sv, hi)
